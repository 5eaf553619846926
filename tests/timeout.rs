//! `timeout`: a slow attempt is cancelled (its future dropped, so cleanup in
//! the body runs) and fails with `E::from(Elapsed)`.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::{Elapsed, resilient};
use support::{TestError, ms};
use tokio::time::{Instant, sleep};

/// Counts drops: proves the cancelled attempt's state was cleaned up.
struct Cleanup<'a>(&'a AtomicU32);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[resilient(timeout = "1s", jitter = "none", budget = "off")]
async fn slow(work: u64, cleanups: &AtomicU32, attempts: &AtomicU32) -> Result<u64, TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    let _cleanup = Cleanup(cleanups);
    sleep(ms(work)).await;
    Ok(work)
}

#[tokio::test(start_paused = true)]
async fn slow_attempts_are_cancelled_and_retried() {
    let (cleanups, attempts) = (AtomicU32::new(0), AtomicU32::new(0));
    let start = Instant::now();
    assert_eq!(
        slow(5_000, &cleanups, &attempts).await,
        Err(TestError::Timeout(Elapsed::new()))
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        cleanups.load(Ordering::SeqCst),
        3,
        "every cancelled attempt was dropped"
    );
    // three 1s attempts, with 100ms and 200ms backoff between them
    assert_eq!(start.elapsed(), ms(3_300));
}

#[tokio::test(start_paused = true)]
async fn fast_attempts_are_untouched() {
    let (cleanups, attempts) = (AtomicU32::new(0), AtomicU32::new(0));
    let start = Instant::now();
    assert_eq!(slow(999, &cleanups, &attempts).await, Ok(999));
    assert_eq!(start.elapsed(), ms(999));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[resilient(timeout = "100ms", max_attempts = 2, backoff = "none")]
async fn io_timeout() -> std::io::Result<()> {
    sleep(ms(1_000)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn io_results_time_out_as_timed_out() {
    let err = io_timeout().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[resilient(timeout = "1s", retry_on = [Io], jitter = "none")]
async fn timeouts_not_retried(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    sleep(ms(2_000)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried_only_if_classified_so() {
    let attempts = AtomicU32::new(0);
    assert!(matches!(
        timeouts_not_retried(&attempts).await,
        Err(TestError::Timeout(_))
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}
