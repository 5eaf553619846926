//! Every retry key in one attribute.

use std::time::Duration;

use steadfast::{Elapsed, RetryBudget, RetryEvent, resilient};

#[derive(Debug)]
enum ApiError {
    Unavailable { retry_after: Option<Duration> },
    Timeout(Elapsed),
    Invalid,
}

impl From<Elapsed> for ApiError {
    fn from(elapsed: Elapsed) -> Self {
        ApiError::Timeout(elapsed)
    }
}

fn suggested(error: &ApiError) -> Option<Duration> {
    match error {
        ApiError::Unavailable { retry_after } => *retry_after,
        _ => None,
    }
}

fn log(event: &RetryEvent<'_, ApiError>) {
    println!(
        "{}: attempt {} failed with {:?}; retrying in {:?} after {:?}",
        event.name(),
        event.attempt(),
        event.error(),
        event.delay(),
        event.elapsed(),
    );
}

static BUDGET: RetryBudget = RetryBudget::new().ratio(0.5).min_per_second(20);

#[resilient(
    max_attempts = 4,
    backoff = "exponential",
    base_delay = "50ms",
    max_delay = "2s",
    multiplier = 1.5,
    jitter = "decorrelated",
    timeout = "1s",
    deadline = "10s",
    retry_on = [Unavailable, ApiError::Timeout],
    retry_after = suggested,
    budget = &BUDGET,
    on_retry = log,
    fallback = |error| match error {
        ApiError::Invalid => Ok(0),
        other => Err(other),
    },
    name = "api::get",
    crate = "steadfast",
)]
async fn get(attempts: &std::cell::Cell<u32>) -> Result<u32, ApiError> {
    attempts.set(attempts.get() + 1);
    match attempts.get() {
        1 => Err(ApiError::Unavailable {
            retry_after: Some(Duration::from_millis(300)),
        }),
        2 => Err(ApiError::Invalid),
        _ => Ok(42),
    }
}

#[resilient(no_retry_on = [Invalid], backoff = "fixed", jitter = 0.2, budget = "off")]
fn fixed(attempts: &mut u32) -> Result<u32, ApiError> {
    *attempts += 1;
    if *attempts < 3 {
        Err(ApiError::Unavailable { retry_after: None })
    } else {
        Ok(*attempts)
    }
}

#[resilient(backoff = "linear", jitter = "equal", retry_if = |error: &ApiError| !matches!(error, ApiError::Invalid))]
fn linear() -> Result<(), ApiError> {
    Ok(())
}

#[resilient(backoff = "fibonacci", jitter = "none")]
fn fibonacci() -> Result<(), ApiError> {
    Ok(())
}

#[resilient(backoff = "none", max_attempts = 1)]
fn once() -> Result<(), ApiError> {
    Ok(())
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let attempts = std::cell::Cell::new(0);
    // Attempt 1 is retried after the server's delay; attempt 2 is not
    // retryable and `fallback` turns it into `Ok(0)`.
    assert_eq!(get(&attempts).await.unwrap(), 0);
    assert_eq!(attempts.get(), 2);

    let _no_delays = steadfast::testing::no_delays();
    let mut count = 0;
    assert_eq!(fixed(&mut count).unwrap(), 3);
    linear().unwrap();
    fibonacci().unwrap();
    once().unwrap();
}
