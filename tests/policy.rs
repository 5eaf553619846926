//! `Policy<E>`: the attribute's policy as a value.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use steadfast::{
    Backoff, Bulkhead, CircuitBreaker, CircuitState, Jitter, Policy, RetryEvent, testing,
};
use support::{Delays, TestError, ms};
use tokio::time::Instant;

fn transient(error: &TestError) -> bool {
    matches!(error, TestError::Io | TestError::Busy { .. })
}

static FIXED: Policy<TestError> = Policy::new()
    .max_attempts(4)
    .backoff(Backoff::fixed(Duration::from_millis(50)).jitter(Jitter::None))
    .retry_if(transient)
    .no_budget();

#[tokio::test(start_paused = true)]
async fn a_static_policy_retries_on_its_schedule() {
    let start = Instant::now();
    let result = FIXED
        .retry(|attempt| async move {
            if attempt.number() < 3 {
                Err(TestError::Io)
            } else {
                Ok(attempt.number())
            }
        })
        .await;
    assert_eq!(result, Ok(3));
    assert_eq!(start.elapsed(), ms(100), "two fixed sleeps of 50 ms");
}

#[tokio::test(start_paused = true)]
async fn errors_it_does_not_retry_end_the_call() {
    let calls = AtomicU32::new(0);
    let result: Result<(), _> = FIXED
        .retry(|_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(TestError::Fatal("no"))
        })
        .await;
    assert_eq!(result, Err(TestError::Fatal("no")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn blocking_retries_with_mut_state() {
    let _fast = testing::no_delays();
    let mut tries = Vec::new();
    let result = FIXED.retry_blocking(|attempt| {
        tries.push(attempt.number());
        if attempt.number() < 4 {
            Err(TestError::Io)
        } else {
            Ok("done")
        }
    });
    assert_eq!(result, Ok("done"));
    assert_eq!(tries, [1, 2, 3, 4]);
    let exhausted: Result<(), _> = FIXED.retry_blocking(|_| Err(TestError::Io));
    assert_eq!(
        exhausted,
        Err(TestError::Io),
        "the last error after 4 attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_futures_are_send_and_spawn() {
    let handle = tokio::spawn(async {
        FIXED
            .retry(|attempt| async move {
                tokio::task::yield_now().await;
                if attempt.number() < 2 {
                    Err(TestError::Io)
                } else {
                    Ok(attempt.key())
                }
            })
            .await
    });
    assert!(handle.await.unwrap().is_ok());
}

static TIMED: Policy<TestError> = Policy::new()
    .max_attempts(10)
    .backoff(Backoff::none())
    .timeout(Duration::from_millis(50))
    .deadline(Duration::from_millis(120))
    .no_budget();

#[tokio::test(start_paused = true)]
async fn timeouts_and_deadlines_end_in_e_from_elapsed() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<(), _> = TIMED
        .retry(|attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(attempt.time_left().unwrap() <= ms(120));
                std::future::pending::<()>().await;
                Ok(())
            }
        })
        .await;
    assert!(matches!(result, Err(TestError::Timeout(_))));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "50 + 50 + the last 20 ms");
    assert_eq!(start.elapsed(), ms(120));
}

static OPENS: CircuitBreaker = CircuitBreaker::new().failure_threshold(2);
static GUARDED: Policy<TestError> = Policy::new()
    .max_attempts(5)
    .backoff(Backoff::none())
    .circuit_breaker(&OPENS)
    .no_budget();

#[tokio::test(start_paused = true)]
async fn an_open_breaker_ends_the_call_with_e_from_circuit_open() {
    let result: Result<(), _> = GUARDED.retry(|_| async { Err(TestError::Io) }).await;
    assert!(matches!(result, Err(TestError::Open(_))), "{result:?}");
    assert_eq!(OPENS.state(), CircuitState::Open);
}

static HEALTHY: CircuitBreaker = CircuitBreaker::new().failure_threshold(2);
static THROTTLED: Policy<TestError> = Policy::new()
    .max_attempts(5)
    .backoff(Backoff::none())
    .circuit_breaker(&HEALTHY)
    .breaker_if(|e| matches!(e, TestError::Io))
    .no_budget();

#[tokio::test(start_paused = true)]
async fn breaker_if_keeps_retried_throttling_out_of_the_breaker() {
    let busy = TestError::Busy { retry_in: None };
    let result: Result<(), _> = THROTTLED.retry(|_| async { Err(busy.clone()) }).await;
    assert_eq!(result, Err(busy), "five attempts, none counted");
    assert_eq!(HEALTHY.state(), CircuitState::Closed);
    let result: Result<(), _> = THROTTLED.retry(|_| async { Err(TestError::Io) }).await;
    assert!(matches!(result, Err(TestError::Open(_))), "{result:?}");
}

static NARROW: Bulkhead = Bulkhead::new(1);
static SHEDS: Policy<TestError> = Policy::new()
    .concurrency(&NARROW)
    .max_wait(Duration::from_millis(20));

#[tokio::test(start_paused = true)]
async fn a_refused_permit_ends_the_call_with_e_from_rejected() {
    let held = NARROW.acquire().await;
    let result = SHEDS.retry(|_| async { Ok::<_, TestError>(()) }).await;
    assert!(matches!(result, Err(TestError::Rejected(_))), "{result:?}");
    drop(held);
    assert_eq!(
        SHEDS.retry(|_| async { Ok::<_, TestError>(1) }).await,
        Ok(1)
    );
}

/// An error that can stand for a timeout and nothing else of the library's:
/// a policy with a deadline but no `max_wait` needs no more.
#[derive(Debug, PartialEq)]
enum DeadlineOnly {
    Timeout,
}

impl From<steadfast::Elapsed> for DeadlineOnly {
    fn from(_: steadfast::Elapsed) -> Self {
        DeadlineOnly::Timeout
    }
}

static HOURLY: steadfast::RateLimiter = steadfast::RateLimiter::per_second(1).burst(1);
static WITHIN_DEADLINE: Policy<DeadlineOnly> = Policy::new()
    .rate_limit(&HOURLY)
    .deadline(Duration::from_millis(100));

/// A token a second away cannot come within the 100 ms left: the deadline
/// bounds the wait, so the call ends with what the deadline causes, at once
/// (it used to be refused as `Rejected`, which this policy cannot convert).
#[tokio::test(start_paused = true)]
async fn a_wait_the_deadline_cuts_short_ends_with_e_from_elapsed() {
    let start = Instant::now();
    let ok = |_| async { Ok::<_, DeadlineOnly>(()) };
    assert_eq!(WITHIN_DEADLINE.retry(ok).await, Ok(()));
    assert_eq!(WITHIN_DEADLINE.retry(ok).await, Err(DeadlineOnly::Timeout));
    assert_eq!(
        WITHIN_DEADLINE.retry_blocking(|_| Ok(())),
        Err(DeadlineOnly::Timeout)
    );
    assert_eq!(
        start.elapsed(),
        ms(0),
        "no sleep for a token that cannot come in time"
    );
}

static SLOW_TOKENS: steadfast::RateLimiter = steadfast::RateLimiter::per_second(1).burst(1);
static BOTH_BOUNDS: Policy<TestError> = Policy::new()
    .rate_limit(&SLOW_TOKENS)
    .max_wait(Duration::from_millis(500))
    .deadline(Duration::from_millis(100));
static MAX_WAIT_FIRST: Policy<TestError> = Policy::new()
    .rate_limit(&SLOW_TOKENS)
    .max_wait(Duration::from_millis(50))
    .deadline(Duration::from_secs(10));

/// Of `max_wait` and the time left, the nearer bound says how the call ends.
#[tokio::test(start_paused = true)]
async fn the_nearer_bound_of_a_wait_names_its_refusal() {
    let ok = |_| async { Ok::<_, TestError>(()) };
    assert_eq!(BOTH_BOUNDS.retry(ok).await, Ok(()));
    let by_deadline = BOTH_BOUNDS.retry(ok).await;
    assert!(
        matches!(by_deadline, Err(TestError::Timeout(_))),
        "{by_deadline:?}"
    );
    let by_max_wait = MAX_WAIT_FIRST.retry(ok).await;
    assert!(
        matches!(by_max_wait, Err(TestError::Rejected(_))),
        "{by_max_wait:?}"
    );
}

static HEARD: Delays = Delays::new();

fn hear(event: &RetryEvent<'_, TestError>) {
    HEARD.push(event.delay());
}

fn suggested(error: &TestError) -> Option<Duration> {
    match error {
        TestError::Busy { retry_in } => *retry_in,
        _ => None,
    }
}

static POLITE: Policy<TestError> = Policy::new()
    .max_attempts(3)
    .max_delay(Duration::from_secs(10))
    .retry_after(suggested)
    .on_retry(hear)
    .no_budget();

#[tokio::test(start_paused = true)]
async fn retry_after_is_obeyed_up_to_max_delay_and_heard_by_on_retry() {
    let start = Instant::now();
    let result = POLITE
        .retry(|attempt| async move {
            match attempt.number() {
                1 => Err(TestError::Busy {
                    retry_in: Some(ms(700)),
                }),
                _ => Ok(()),
            }
        })
        .await;
    assert_eq!(result, Ok(()));
    assert_eq!(start.elapsed(), ms(700));
    assert_eq!(HEARD.take(), [ms(700)]);
    let parked: Result<(), _> = POLITE
        .retry(|_| async {
            Err(TestError::Busy {
                retry_in: Some(Duration::from_secs(3600)),
            })
        })
        .await;
    assert!(
        matches!(parked, Err(TestError::Busy { .. })),
        "an hour is longer than max_delay"
    );
    assert!(HEARD.take().is_empty());
}

static BUDGETED: Policy<TestError> = Policy::new().backoff(Backoff::none());

#[tokio::test(start_paused = true)]
async fn a_policy_has_a_budget_of_its_own_by_default() {
    // A fresh budget holds 100 retries (10/s over 10 s); 60 failing calls
    // of 3 attempts want 120.
    let mut attempts = 0;
    for _ in 0..60 {
        let _ = BUDGETED
            .retry(|_| {
                attempts += 1;
                async { Err::<(), _>(TestError::Io) }
            })
            .await;
    }
    assert!(
        attempts < 180,
        "the budget stopped some retries: {attempts}"
    );
    assert!(attempts >= 160, "the reserve funded most: {attempts}");
}

#[test]
fn a_policy_shows_its_settings() {
    let shown = format!("{FIXED:?}");
    assert!(shown.starts_with("Policy {"), "{shown}");
    assert!(
        shown.contains("max_attempts: 4") && shown.contains("budget_off: true"),
        "{shown}"
    );
}

static TIMEOUT_ONLY: Policy<TestError> = Policy::new()
    .max_attempts(2)
    .backoff(Backoff::none())
    .timeout(Duration::from_millis(50))
    .no_budget();

static UNLIMITED: Policy<TestError> = Policy::new().no_budget();

#[tokio::test(start_paused = true)]
async fn a_timeout_alone_limits_each_attempt_and_none_limits_nothing() {
    let result: Result<(), _> = TIMEOUT_ONLY
        .retry(|_| async {
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
    assert!(matches!(result, Err(TestError::Timeout(_))));
    // Without a timeout or deadline an attempt may take a year and a day.
    let start = Instant::now();
    let slow = UNLIMITED
        .retry(|_| async {
            tokio::time::sleep(Duration::from_secs(366 * 86_400)).await;
            Ok::<_, TestError>("late")
        })
        .await;
    assert_eq!(slow, Ok("late"));
    assert_eq!(start.elapsed(), Duration::from_secs(366 * 86_400));
}
