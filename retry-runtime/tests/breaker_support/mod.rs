//! What the breaker's behaviour files share: the schedule the tests use and
//! the steps they take. Each file is its own test crate and uses a part.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use retry_runtime::{CircuitBreaker, CircuitOpen, CircuitState};
use tokio::time::advance;

pub const OPEN_FOR: Duration = Duration::from_secs(10);
pub const MS: Duration = Duration::from_millis(1);
pub const NS: Duration = Duration::from_nanos(1);

pub fn succeed(breaker: &CircuitBreaker) {
    breaker
        .try_acquire()
        .expect("breaker should admit the call")
        .success();
}

pub fn fail(breaker: &CircuitBreaker) {
    breaker
        .try_acquire()
        .expect("breaker should admit the call")
        .failure();
}

/// Records outcomes in order; `true` is a success.
pub fn record(breaker: &CircuitBreaker, outcomes: &[bool]) {
    for &ok in outcomes {
        if ok { succeed(breaker) } else { fail(breaker) }
    }
}

pub fn is_rejected(breaker: &CircuitBreaker) -> bool {
    breaker.try_acquire().err() == Some(CircuitOpen::new())
}

pub fn tripped(threshold: u32, probes: u32) -> CircuitBreaker {
    let breaker = CircuitBreaker::new()
        .failure_threshold(threshold)
        .open_for(OPEN_FOR)
        .half_open_probes(probes);
    for _ in 0..threshold {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    breaker
}

/// The `slow_call` threshold the tests use.
pub const SLOW: Duration = Duration::from_secs(1);

/// Makes one call that takes `took` on the paused clock, then reports it.
pub async fn timed(breaker: &CircuitBreaker, took: Duration, ok: bool) {
    let permit = breaker
        .try_acquire()
        .expect("breaker should admit the call");
    advance(took).await;
    if ok {
        permit.success()
    } else {
        permit.failure()
    }
}
