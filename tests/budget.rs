//! `budget`: retries are limited to a share of calls, so a failing
//! dependency is not hammered with `max_attempts` times its load.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::{RetryBudget, resilient};
use support::TestError;

// No time passes between calls (`backoff = "none"`), so the budget's window
// holds every call: reserve (10/s × 10 s = 100) + 20% of calls.

#[resilient(backoff = "none")]
async fn default_budget(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Io)
}

#[tokio::test(start_paused = true)]
async fn the_default_budget_caps_retries_of_a_failing_dependency() {
    let attempts = AtomicU32::new(0);
    for _ in 0..1_000 {
        assert_eq!(default_budget(&attempts).await, Err(TestError::Io));
    }
    // 1000 calls + 100 reserve + 20% of 1000 = 1300, not 3000
    assert_eq!(attempts.load(Ordering::SeqCst), 1_300);
}

#[resilient(backoff = "none", budget = "off")]
async fn unbudgeted(attempts: &AtomicU32) -> Result<(), TestError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Io)
}

#[tokio::test(start_paused = true)]
async fn without_a_budget_every_call_makes_max_attempts() {
    let attempts = AtomicU32::new(0);
    for _ in 0..1_000 {
        let _ = unbudgeted(&attempts).await;
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 3_000);
}

static SHARED: RetryBudget = RetryBudget::new().min_per_second(0).ratio(0.5);

#[resilient(backoff = "none", budget = &SHARED)]
fn healthy() -> Result<(), TestError> {
    Ok(())
}

#[resilient(backoff = "none", budget = &SHARED, max_attempts = 100)]
fn failing(attempts: &mut u32) -> Result<(), TestError> {
    *attempts += 1;
    Err(TestError::Io)
}

#[test]
fn a_shared_budget_is_funded_by_every_function_using_it() {
    for _ in 0..20 {
        healthy().unwrap();
    }
    let mut attempts = 0;
    assert_eq!(failing(&mut attempts), Err(TestError::Io));
    // 21 calls deposited; half of them may be retried: 10 retries
    assert_eq!(attempts, 11);
}
