//! The attribute's keys with instances shared through Redis (feature
//! `redis`): the shape of the README's "Shared across replicas" example
//! (`docs/design.md`, "Beyond one machine"), `rate_limit`,
//! `circuit_breaker` and `budget` all shared, on two "replicas" (distinct
//! instances under the same keys) against a real `redis-server` started on
//! a free port. The instances are handed to the function as parameters,
//! since a `static` needs its URL at compile time and the test's server
//! has a port chosen at run time.

#![cfg(feature = "redis")]

#[path = "../retry-runtime/tests/redis_support/mod.rs"]
mod redis_support;
mod support;

use steadfast::redis::Redis;
use steadfast::{CircuitBreaker, RateLimiter, RetryBudget, resilient};
use support::TestError;

/// What one replica holds: its own instances of the three shared keys.
struct Replica {
    limit: &'static RateLimiter,
    breaker: &'static CircuitBreaker,
    budget: &'static RetryBudget,
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

impl Replica {
    fn new(redis: &'static Redis) -> Self {
        Replica {
            // 10 a second for the fleet, bursts of 5, a lease of one token so
            // the fleet's count is exact.
            limit: leak(
                RateLimiter::per_second(10)
                    .burst(5)
                    .lease(1)
                    .shared(redis, "charge"),
            ),
            breaker: leak(
                CircuitBreaker::new()
                    .failure_threshold(5)
                    .shared(redis, "charge"),
            ),
            budget: leak(RetryBudget::new().shared(redis, "charge")),
        }
    }
}

#[resilient(max_attempts = 1, max_wait = "1ms",
            rate_limit = replica.limit, circuit_breaker = replica.breaker,
            budget = replica.budget)]
async fn charge(replica: &Replica) -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_rate_limit_through_the_attribute() {
    let server = redis_support::Server::start();
    let (a, b) = (Replica::new(server.redis()), Replica::new(server.redis()));
    let mut admitted = 0u32;
    let mut refused = 0;
    let start = std::time::Instant::now();
    for i in 0..40 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match charge(replica).await {
            Ok(()) => admitted += 1,
            Err(TestError::Rejected(_)) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // The burst of 5, plus what the rate (10 a second) refilled while the
    // calls ran, plus one leased token per replica; two local limiters
    // would admit 10 at once.
    let refilled = (10.0 * start.elapsed().as_secs_f64()).ceil() as u32;
    assert!(
        admitted >= 5 && admitted <= 5 + refilled + 2,
        "admitted {admitted}, refused {refused}, {refilled} refilled"
    );
    assert_eq!(
        a.limit.degraded_decisions() + b.limit.degraded_decisions(),
        0
    );
    assert!(a.limit.redis_round_trips() + b.limit.redis_round_trips() > 0);
}
