//! `on_retry`, `fallback` and `name`.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use steadfast::{resilient, testing};
use support::{TestError, ms};

#[derive(Debug, PartialEq)]
struct Seen {
    name: &'static str,
    attempt: u32,
    error: TestError,
    delay: Duration,
    elapsed: Duration,
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

#[resilient(max_attempts = 3, jitter = "none", budget = "off", on_retry = |event| {
    SEEN.lock().unwrap().push(Seen {
        name: event.name(),
        attempt: event.attempt(),
        error: event.error().clone(),
        delay: event.delay(),
        elapsed: event.elapsed(),
    });
})]
async fn observed(fail: u32, calls: &mut u32) -> Result<u32, TestError> {
    *calls += 1;
    tokio::time::sleep(ms(10)).await;
    if *calls <= fail {
        Err(TestError::Fatal("down"))
    } else {
        Ok(*calls)
    }
}

#[tokio::test(start_paused = true)]
async fn on_retry_sees_each_retry_before_its_sleep() {
    let mut calls = 0;
    assert_eq!(observed(5, &mut calls).await, Err(TestError::Fatal("down")));
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    let name = concat!(module_path!(), "::observed");
    assert_eq!(
        seen,
        [
            Seen {
                name,
                attempt: 1,
                error: TestError::Fatal("down"),
                delay: ms(100),
                elapsed: ms(10)
            },
            Seen {
                name,
                attempt: 2,
                error: TestError::Fatal("down"),
                delay: ms(200),
                elapsed: ms(120)
            },
        ],
        "no event for the final failure: it is not retried"
    );
}

static UNSEEN: Mutex<u32> = Mutex::new(0);

#[resilient(on_retry = |_| *UNSEEN.lock().unwrap() += 1)]
async fn succeeding() -> Result<u32, TestError> {
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn no_event_on_first_attempt_success() {
    assert_eq!(succeeding().await, Ok(1));
    assert_eq!(*UNSEEN.lock().unwrap(), 0);
}

static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[resilient(name = "inventory.reserve", backoff = "none", max_attempts = 2,
            on_retry = |event| NAMES.lock().unwrap().push(event.name()))]
fn named() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[test]
fn name_overrides_the_site_name() {
    let _ = named();
    assert_eq!(*NAMES.lock().unwrap(), ["inventory.reserve"]);
}

#[resilient(max_attempts = 2, retry_on = [Io], fallback = |error| match error {
    TestError::Io => Ok("cached"),
    other => Err(other),
})]
fn with_fallback(error: TestError, calls: &mut u32) -> Result<&'static str, TestError> {
    *calls += 1;
    Err(error.clone())
}

#[test]
fn fallback_gets_the_final_error_once() {
    let _fast = testing::no_delays();
    let mut calls = 0;
    assert_eq!(with_fallback(TestError::Io, &mut calls), Ok("cached"));
    assert_eq!(
        calls, 2,
        "fallback runs after the retries, not instead of them"
    );
    let mut calls = 0;
    assert_eq!(
        with_fallback(TestError::Fatal("no"), &mut calls),
        Err(TestError::Fatal("no"))
    );
    assert_eq!(calls, 1, "not retryable: straight to the fallback");
}

#[resilient(fallback = |_| Ok(0))]
fn fallback_unused() -> Result<u32, TestError> {
    Ok(7)
}

#[test]
fn fallback_is_not_applied_to_success() {
    assert_eq!(fallback_unused(), Ok(7));
}
