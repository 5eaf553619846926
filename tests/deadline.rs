//! `deadline`: a budget of time for the whole call.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use steadfast::{Elapsed, resilient, testing};
use support::{TestError, ms};
use tokio::time::{Instant, sleep};

#[resilient(deadline = "350ms", max_attempts = 10, jitter = "none", budget = "off")]
async fn failing_fast(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Io)
}

#[tokio::test(start_paused = true)]
async fn no_sleep_starts_that_would_end_after_the_deadline() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    // attempts at 0, 100 and 300 ms; the next sleep (400 ms) would end at 700 ms
    assert_eq!(
        failing_fast(&attempts).await,
        Err(TestError::Io),
        "the last error, not Elapsed"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        start.elapsed(),
        ms(300),
        "gave up at once instead of sleeping"
    );
}

#[resilient(deadline = "1s", jitter = "none")]
async fn hanging(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    sleep(ms(60_000)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_attempt_running_at_the_deadline_is_cancelled() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(
        hanging(&attempts).await,
        Err(TestError::Timeout(Elapsed::new()))
    );
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "no attempt after the deadline"
    );
}

#[resilient(
    deadline = "1s",
    timeout = "300ms",
    max_attempts = 10,
    jitter = "none",
    budget = "off"
)]
async fn timeout_within_deadline(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    sleep(ms(60_000)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_the_last_timeout_short() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    // 0–300 timeout, sleep 100, 400–700 timeout, sleep 200, 900–1000 cut by the deadline
    assert!(matches!(
        timeout_within_deadline(&attempts).await,
        Err(TestError::Timeout(_))
    ));
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[resilient(deadline = "350ms", max_attempts = 10, jitter = "none", budget = "off")]
fn failing_sync(attempts: &mut u32) -> Result<(), TestError> {
    *attempts += 1;
    Err(TestError::Io)
}

#[test]
fn plain_functions_check_the_deadline_between_attempts() {
    // Skipped sleeps still count towards the deadline.
    let _fast = testing::no_delays();
    let mut attempts = 0;
    assert_eq!(failing_sync(&mut attempts), Err(TestError::Io));
    assert_eq!(attempts, 3);
}

/// `on_retry` sees the elapsed time, skipped sleeps included.
static SKIPPED: support::Delays = support::Delays::new();

#[resilient(deadline = "350ms", max_attempts = 10, jitter = "none", budget = "off",
            on_retry = |event| SKIPPED.push(event.elapsed()))]
async fn failing_async_skipped(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Io)
}

#[tokio::test(start_paused = true)]
async fn async_sleeps_skipped_by_no_delays_still_count_towards_the_deadline() {
    let _fast = testing::no_delays();
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    // As on the paused clock: attempts at (virtual) 0, 100 and 300 ms, and
    // the next sleep would end after the deadline; but no time passed.
    assert_eq!(failing_async_skipped(&attempts).await, Err(TestError::Io));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::ZERO, "nothing was slept");
    assert_eq!(
        SKIPPED.take(),
        [ms(0), ms(100)],
        "elapsed counts the skipped sleeps"
    );
}

#[resilient(
    max_attempts = 3,
    backoff = "fixed",
    base_delay = "5ms",
    jitter = "none",
    budget = "off"
)]
fn failing_blocking(attempts: &mut u32) -> Result<(), TestError> {
    *attempts += 1;
    Err(TestError::Io)
}

#[test]
fn plain_functions_sleep_the_thread_between_attempts() {
    // Without `no_delays`: two real sleeps of 5 ms. A sleep lasts at least
    // its duration, so this lower bound holds however loaded the machine is.
    let mut attempts = 0;
    let start = std::time::Instant::now();
    assert_eq!(failing_blocking(&mut attempts), Err(TestError::Io));
    assert_eq!(attempts, 3);
    assert!(start.elapsed() >= ms(10), "slept {:?}", start.elapsed());
}
