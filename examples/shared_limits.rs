//! Two replicas sharing one quota through Redis.
//!
//! ```text
//! redis-server --port 6379 &        # or any server; REDIS_URL points elsewhere
//! cargo run --example shared_limits --features redis
//! ```
//!
//! Two limiters stand for two replicas (in production, two processes with
//! the same `static`): each calls as fast as it can for a second, and
//! together they admit what the quota allows, not twice it. Then a breaker
//! shared the same way: replica A sees the outage and opens, and replica B,
//! which saw no failure, opens too once a quorum (here 1) of replicas has.
//! With Redis down, each replica falls back to its local limit and breaker,
//! and the degraded decisions are printed instead of failing.

use std::time::{Duration, Instant};

use steadfast::redis::Redis;
use steadfast::{CircuitBreaker, CircuitState, RateLimiter};

static REDIS: Redis = Redis::from_env_or("REDIS_URL", "redis://127.0.0.1:6379");

// The partner's quota: 100 calls a second, bursts of 20, across the fleet.
static REPLICA_A: RateLimiter = RateLimiter::per_second(100)
    .burst(20)
    .shared(&REDIS, "example");
static REPLICA_B: RateLimiter = RateLimiter::per_second(100)
    .burst(20)
    .shared(&REDIS, "example");

// One breaker per replica on the same key; a quorum of one replica's
// evidence opens the others.
static BREAKER_A: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(3)
    .open_for(Duration::from_secs(2))
    .shared(&REDIS, "example")
    .quorum(1);
static BREAKER_B: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(3)
    .open_for(Duration::from_secs(2))
    .shared(&REDIS, "example")
    .quorum(1);

async fn replica(limiter: &'static RateLimiter, run: Duration) -> u64 {
    let start = Instant::now();
    let mut admitted = 0;
    while start.elapsed() < run {
        if limiter.try_acquire() {
            admitted += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    admitted
}

#[tokio::main]
async fn main() {
    let run = Duration::from_secs(1);
    let (a, b) = tokio::join!(replica(&REPLICA_A, run), replica(&REPLICA_B, run));
    println!("replica A admitted {a}, replica B admitted {b} in {run:?}");
    println!("total {} against a quota of 120 (burst 20 + 100/s)", a + b);
    let degraded = REPLICA_A.degraded_decisions() + REPLICA_B.degraded_decisions();
    if degraded > 0 {
        let error = REDIS
            .last_error()
            .map_or_else(|| "none".into(), |e| e.to_string());
        println!(
            "Redis unavailable ({error}): {degraded} decisions were taken by the local limit, each replica enforcing the full quota alone"
        );
    } else {
        println!(
            "round trips to Redis: {} for {} admitted calls",
            REPLICA_A.redis_round_trips() + REPLICA_B.redis_round_trips(),
            a + b
        );
    }

    // Replica A's dependency fails three times: its breaker opens, and
    // publishes the evidence.
    for _ in 0..3 {
        if let Ok(permit) = BREAKER_A.try_acquire() {
            permit.failure();
        }
    }
    println!("\nbreaker A after three failures: {:?}", BREAKER_A.state());
    let start = Instant::now();
    while BREAKER_B.state() != CircuitState::Open && start.elapsed() < Duration::from_secs(1) {
        let _ = BREAKER_B.try_acquire().map(|permit| permit.success());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match BREAKER_B.state() {
        CircuitState::Open => println!(
            "breaker B, which saw no failure, opened from the fleet's evidence after {:.0?}",
            start.elapsed()
        ),
        state => println!(
            "breaker B stayed {state:?}: acting on its local state ({} degraded decisions)",
            BREAKER_B.degraded_decisions()
        ),
    }
}
