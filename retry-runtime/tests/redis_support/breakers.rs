//! Shared circuit breakers as the Redis tests drive them: replicas (one
//! instance each, one key), and what Redis holds for them.

use std::time::Duration;

use retry_runtime::redis::Redis;
use retry_runtime::{CircuitBreaker, CircuitState};

use super::{Server, integer};

pub fn leak(breaker: CircuitBreaker) -> &'static CircuitBreaker {
    Box::leak(Box::new(breaker))
}

/// A replica that trips on its first failure, with the default quorum (2).
pub fn replica(
    redis: &'static Redis,
    key: &'static str,
    open_for: Duration,
) -> &'static CircuitBreaker {
    leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .shared(redis, key),
    )
}

/// Two replicas under `key` (as [`replica`]), both tripped: the fleet holds
/// evidence from each.
pub fn tripped_pair(
    redis: &'static Redis,
    key: &'static str,
    open_for: Duration,
) -> (&'static CircuitBreaker, &'static CircuitBreaker) {
    let (a, b) = (replica(redis, key, open_for), replica(redis, key, open_for));
    trip(a);
    trip(b);
    (a, b)
}

pub fn trip(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("closed: admitted").failure();
    assert_eq!(breaker.state(), CircuitState::Open);
}

/// Pieces of evidence under `key` (the set, as Redis holds it now; expired
/// members are removed by the next script run, so this counts those not
/// yet removed too).
pub fn evidence(server: &Server, key: &str) -> i64 {
    integer(&server.command(&format!("ZCARD {{steadfast:cb:{key}}}")))
}
