//! A call converts only the refusals its keys can cause, each with the
//! `From` impl of that key (`retry_rules::Protections::can_refuse`): a
//! breaker's `CircuitOpen` beside a plain `fn`'s `deadline` (checked
//! between attempts, it ends no wait), a deadline's `Elapsed` where it
//! alone bounds a wait (a token that cannot come in time is `Elapsed`, not
//! `Rejected`), and `max_wait`'s `Rejected` without a deadline.

use steadfast::{CircuitBreaker, CircuitOpen, Elapsed, RateLimiter, Rejected, resilient};

#[derive(Debug, PartialEq)]
enum OpenOnly {
    Open,
}

impl From<CircuitOpen> for OpenOnly {
    fn from(_: CircuitOpen) -> Self {
        OpenOnly::Open
    }
}

static BREAKER: CircuitBreaker = CircuitBreaker::new();

#[resilient(circuit_breaker = &BREAKER, deadline = "1s")]
fn breaker_and_deadline_sync() -> Result<u32, OpenOnly> {
    Ok(1)
}

#[derive(Debug, PartialEq)]
enum TimeoutOnly {
    Timeout,
}

impl From<Elapsed> for TimeoutOnly {
    fn from(_: Elapsed) -> Self {
        TimeoutOnly::Timeout
    }
}

static ONE_A_SECOND: RateLimiter = RateLimiter::per_second(1).burst(1);

#[resilient(rate_limit = &ONE_A_SECOND, deadline = "100ms")]
async fn limited_within_a_deadline() -> Result<u32, TimeoutOnly> {
    Ok(2)
}

#[resilient(concurrency = 1, deadline = "100ms")]
fn bulkhead_within_a_deadline_sync() -> Result<u32, TimeoutOnly> {
    Ok(3)
}

#[derive(Debug, PartialEq)]
enum RejectedOnly {
    Overloaded,
}

impl From<Rejected> for RejectedOnly {
    fn from(_: Rejected) -> Self {
        RejectedOnly::Overloaded
    }
}

#[resilient(rate_limit = "1/s", max_wait = "10ms")]
fn limited_with_max_wait_sync() -> Result<u32, RejectedOnly> {
    Ok(4)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(breaker_and_deadline_sync(), Ok(1));
    assert_eq!(limited_within_a_deadline().await, Ok(2));
    assert_eq!(limited_within_a_deadline().await, Err(TimeoutOnly::Timeout));
    assert_eq!(bulkhead_within_a_deadline_sync(), Ok(3));
    assert_eq!(limited_with_max_wait_sync(), Ok(4));
    assert_eq!(limited_with_max_wait_sync(), Err(RejectedOnly::Overloaded));
}
