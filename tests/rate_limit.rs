//! `rate_limit`, `burst` and `max_wait`: each attempt takes a token.

mod support;

use steadfast::{RateLimiter, Rejected, resilient};
use support::{TestError, ms};
use tokio::time::Instant;

#[resilient(rate_limit = "10/s", burst = 1)]
async fn paced() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn attempts_are_paced_to_the_rate() {
    let start = Instant::now();
    for _ in 0..20 {
        paced().await.unwrap();
    }
    // the first token is there; the other 19 come every 100 ms
    assert_eq!(start.elapsed(), ms(1_900));
}

#[resilient(rate_limit = "2/250ms", burst = 1)]
async fn sub_second() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn any_period_with_its_length_is_a_rate() {
    let start = Instant::now();
    for _ in 0..5 {
        sub_second().await.unwrap();
    }
    // two tokens per 250 ms: one every 125 ms after the first
    assert_eq!(start.elapsed(), ms(500));
}

#[resilient(rate_limit = "5/s")]
async fn bursty() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_burst_defaults_to_the_rate() {
    let start = Instant::now();
    for _ in 0..5 {
        bursty().await.unwrap();
    }
    assert_eq!(start.elapsed(), ms(0));
    bursty().await.unwrap();
    assert_eq!(start.elapsed(), ms(200));
}

#[resilient(rate_limit = "1/s", max_wait = "100ms")]
async fn impatient() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_wait_longer_than_max_wait_is_rejected_at_once() {
    let start = Instant::now();
    assert_eq!(impatient().await, Ok(()));
    assert_eq!(impatient().await, Err(TestError::Rejected(Rejected::new())));
    assert_eq!(
        start.elapsed(),
        ms(0),
        "no point sleeping for a token that cannot come in time"
    );
}

#[resilient(rate_limit = "1/s", max_wait = "500ms", deadline = "100ms")]
async fn bounded_twice() -> Result<(), TestError> {
    Ok(())
}

#[resilient(rate_limit = "1/s", deadline = "100ms")]
fn bounded_by_the_deadline() -> Result<(), TestError> {
    Ok(())
}

/// The nearer bound of a wait says how the call ends: here the deadline,
/// so `E::from(Elapsed)`, though `max_wait` is written too; at once, as a
/// token a second away cannot come within it.
#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_ends_with_e_from_elapsed() {
    let start = Instant::now();
    assert_eq!(bounded_twice().await, Ok(()));
    assert!(matches!(bounded_twice().await, Err(TestError::Timeout(_))));
    assert_eq!(bounded_by_the_deadline(), Ok(()));
    assert!(matches!(
        bounded_by_the_deadline(),
        Err(TestError::Timeout(_))
    ));
    assert_eq!(start.elapsed(), ms(0));
}

static SHARED: RateLimiter = RateLimiter::per_second(2).burst(2);

#[resilient(rate_limit = &SHARED, backoff = "none", max_attempts = 3)]
async fn retried(calls: &mut u32) -> Result<(), TestError> {
    *calls += 1;
    if *calls < 3 {
        Err(TestError::Io)
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn every_attempt_takes_a_token() {
    let start = Instant::now();
    let mut calls = 0;
    retried(&mut calls).await.unwrap();
    // two tokens in the bucket, the third attempt waits 500 ms for one
    assert_eq!(start.elapsed(), ms(500));
}

static HOURLY: RateLimiter = RateLimiter::per_hour(1);

#[resilient(rate_limit = &HOURLY, max_wait = "10ms")]
fn hourly_sync() -> Result<(), TestError> {
    Ok(())
}

#[test]
fn plain_functions_take_tokens_too() {
    assert_eq!(hourly_sync(), Ok(()));
    // The next token is an hour away: rejected at once, nothing slept.
    assert_eq!(hourly_sync(), Err(TestError::Rejected(Rejected::new())));
}

#[resilient(rate_limit = "1/s", max_wait = "1s", max_attempts = 1)]
async fn waits_exactly_max_wait() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_token_exactly_max_wait_away_is_waited_for() {
    waits_exactly_max_wait().await.unwrap();
    let start = Instant::now();
    // The next token is exactly 1 s away, what max_wait allows: taken.
    assert_eq!(waits_exactly_max_wait().await, Ok(()));
    assert_eq!(start.elapsed(), ms(1_000));
}

static UPLOADS: RateLimiter = RateLimiter::per_second(10);

#[resilient(rate_limit = &UPLOADS)]
async fn upload_one() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn weighted_takes_and_attempts_share_one_limiter() {
    use steadfast::InsufficientCapacity;

    let start = Instant::now();
    // A batch of 10 takes the whole burst; 11 could never be admitted.
    assert_eq!(
        UPLOADS.acquire_n(11).await,
        Err(InsufficientCapacity::new(10))
    );
    assert_eq!(UPLOADS.acquire_n(10).await, Ok(()));
    // `check` says when the next attempt can run; it takes nothing.
    let not_until = UPLOADS.check().unwrap_err();
    assert_eq!(not_until.wait_time_from(Instant::now()), ms(100));
    upload_one().await.unwrap();
    assert_eq!(start.elapsed(), ms(100));
}
