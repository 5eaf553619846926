//! `retry_after`: a server-suggested delay replaces the computed one.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use steadfast::resilient;
use support::{Delays, TestError, ms};
use tokio::time::Instant;

fn suggested(error: &TestError) -> Option<Duration> {
    match error {
        TestError::Busy { retry_in } => *retry_in,
        _ => None,
    }
}

/// Busy once (with the server's suggestion, if any), then succeeds.
macro_rules! throttled {
    ($name:ident) => {
        #[resilient(max_attempts = 3, budget = "off", retry_after = suggested,
                                            on_retry = |event| $name::DELAYS.push(event.delay()))]
        async fn $name(attempts: &AtomicU32, retry_in: Option<Duration>) -> Result<(), TestError> {
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(TestError::Busy { retry_in })
            } else {
                Ok(())
            }
        }
        mod $name {
            pub(crate) static DELAYS: super::Delays = super::Delays::new();
        }
    };
}

throttled!(suggesting);
throttled!(not_suggesting);

#[tokio::test(start_paused = true)]
async fn the_suggested_delay_is_slept_exactly() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(suggesting(&attempts, Some(ms(5_000))).await, Ok(()));
    assert_eq!(start.elapsed(), ms(5_000), "no backoff, no jitter on top");
    assert_eq!(suggesting::DELAYS.take(), [ms(5_000)]);
}

#[tokio::test(start_paused = true)]
async fn without_a_suggestion_the_backoff_applies() {
    let attempts = AtomicU32::new(0);
    assert_eq!(not_suggesting(&attempts, None).await, Ok(()));
    let delays = not_suggesting::DELAYS.take();
    assert!(
        delays.len() == 1 && delays[0] <= ms(100),
        "full jitter of the 100ms base: {delays:?}"
    );
}

#[resilient(deadline = "3s", budget = "off", retry_after = suggested)]
async fn throttled_with_deadline(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Busy {
        retry_in: Some(ms(5_000)),
    })
}

#[tokio::test(start_paused = true)]
async fn a_suggestion_past_the_deadline_gives_up_at_once() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    assert!(matches!(
        throttled_with_deadline(&attempts).await,
        Err(TestError::Busy { .. })
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// Busy with an hour's Retry-After: longer than any `max_delay` allows.
fn an_hour(_: &TestError) -> Option<Duration> {
    Some(Duration::from_secs(3600))
}

#[resilient(max_attempts = 3, budget = "off", max_delay = "10s", retry_after = an_hour)]
async fn parked(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Busy { retry_in: None })
}

#[resilient(max_attempts = 3, budget = "off", max_delay = "10s", retry_after = an_hour)]
fn parked_blocking(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Busy { retry_in: None })
}

#[resilient(max_attempts = 2, budget = "off", max_delay = "10s", retry_after = |_| Some(ms(10_000)))]
fn at_the_cap(attempts: &AtomicU32) -> Result<(), TestError> {
    match attempts.fetch_add(1, Ordering::SeqCst) {
        0 => Err(TestError::Busy { retry_in: None }),
        _ => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_suggestion_longer_than_max_delay_gives_up_instead_of_parking() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    assert!(matches!(
        parked(&attempts).await,
        Err(TestError::Busy { .. })
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "no retry after the cap");
    assert_eq!(start.elapsed(), Duration::ZERO, "no pause at all");
}

#[test]
fn a_plain_fn_does_not_park_its_thread_for_a_long_suggestion() {
    // A retry would come after a sleep; with none, there is no second attempt.
    let _fast = steadfast::testing::no_delays();
    let attempts = AtomicU32::new(0);
    assert!(matches!(
        parked_blocking(&attempts),
        Err(TestError::Busy { .. })
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "no retry after the cap");
}

#[test]
fn a_suggestion_at_the_cap_is_slept() {
    let _fast = steadfast::testing::no_delays();
    let attempts = AtomicU32::new(0);
    assert_eq!(at_the_cap(&attempts), Ok(()));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}
