//! `circuit_breaker`: fail fast while a dependency is down.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use steadfast::{CircuitBreaker, CircuitOpen, CircuitState, resilient};
use support::{TestError, ms};
use tokio::time::{advance, sleep};

static BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(3)
    .open_for(Duration::from_secs(10));

#[resilient(circuit_breaker = &BREAKER, max_attempts = 1, retry_on = [Io, Timeout])]
async fn dependency(fail_with: Option<TestError>, bodies: &AtomicU32) -> Result<(), TestError> {
    bodies.fetch_add(1, Ordering::SeqCst);
    fail_with.clone().map_or(Ok(()), Err)
}

#[tokio::test(start_paused = true)]
async fn opens_rejects_and_recovers() {
    let bodies = AtomicU32::new(0);
    for _ in 0..2 {
        assert_eq!(
            dependency(Some(TestError::Io), &bodies).await,
            Err(TestError::Io)
        );
    }
    assert_eq!(BREAKER.state(), CircuitState::Closed);
    // errors not retried by the classification show the dependency answered
    assert!(
        dependency(Some(TestError::Fatal("bad input")), &bodies)
            .await
            .is_err()
    );
    assert_eq!(BREAKER.state(), CircuitState::Closed);
    for _ in 0..3 {
        let _ = dependency(Some(TestError::Io), &bodies).await;
    }
    assert_eq!(BREAKER.state(), CircuitState::Open);

    let before = bodies.load(Ordering::SeqCst);
    assert_eq!(
        dependency(None, &bodies).await,
        Err(TestError::Open(CircuitOpen::new()))
    );
    assert_eq!(
        bodies.load(Ordering::SeqCst),
        before,
        "rejected without running the body"
    );

    advance(Duration::from_secs(10)).await;
    assert_eq!(
        dependency(None, &bodies).await,
        Ok(()),
        "the half-open probe runs"
    );
    assert_eq!(BREAKER.state(), CircuitState::Closed);
}

// Shared, because inline this is a compile error: a threshold at or below
// `max_attempts` lets one call open the breaker, which is what this tests.
static INTO_OPEN: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(2)
    .open_for(Duration::from_secs(1));

#[resilient(
    circuit_breaker = &INTO_OPEN,
    max_attempts = 5,
    backoff = "none",
    budget = "off"
)]
async fn retried_into_an_open_breaker(bodies: &AtomicU32) -> Result<(), TestError> {
    bodies.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Io)
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_ends_the_call_at_once() {
    let bodies = AtomicU32::new(0);
    assert_eq!(
        retried_into_an_open_breaker(&bodies).await,
        Err(TestError::Open(CircuitOpen::new())),
        "the rejection is not retried"
    );
    assert_eq!(bodies.load(Ordering::SeqCst), 2);
}

#[resilient(circuit_breaker(failure_threshold = 1, open_for = "1m"), timeout = "100ms",
            max_attempts = 1, retry_on = [Io])]
async fn slow_dependency() -> Result<(), TestError> {
    sleep(ms(1_000)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_as_failures() {
    assert!(matches!(
        slow_dependency().await,
        Err(TestError::Timeout(_))
    ));
    assert_eq!(
        slow_dependency().await,
        Err(TestError::Open(CircuitOpen::new()))
    );
}

#[resilient(circuit_breaker, max_attempts = 1, fallback = |e| match e {
    TestError::Open(_) => Ok("served from cache"),
    other => Err(other),
})]
fn with_fallback(bodies: &AtomicU32) -> Result<&'static str, TestError> {
    bodies.fetch_add(1, Ordering::SeqCst);
    Err(TestError::Io)
}

#[test]
fn the_default_breaker_opens_after_five_failures_and_feeds_the_fallback() {
    let bodies = AtomicU32::new(0);
    for _ in 0..5 {
        assert_eq!(with_fallback(&bodies), Err(TestError::Io));
    }
    assert_eq!(with_fallback(&bodies), Ok("served from cache"));
    assert_eq!(bodies.load(Ordering::SeqCst), 5);
}

static SWITCHED: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(2)
    .open_for(Duration::from_secs(1));

#[resilient(circuit_breaker = &SWITCHED, max_attempts = 1, budget = "off")]
async fn switched_dependency(fail: bool, bodies: &AtomicU32) -> Result<(), TestError> {
    bodies.fetch_add(1, Ordering::SeqCst);
    if fail { Err(TestError::Io) } else { Ok(()) }
}

/// An operator's switches through the attribute: `force_open` refuses every
/// call until `reset` (resilience4j FORCED_OPEN, Polly `Isolate`), and
/// `disable` lets every call through while still counting (resilience4j
/// METRICS_ONLY).
#[tokio::test(start_paused = true)]
async fn force_open_refuses_until_reset_and_disable_never_refuses() {
    let bodies = AtomicU32::new(0);
    SWITCHED.force_open();
    advance(Duration::from_secs(3600)).await;
    assert_eq!(
        switched_dependency(false, &bodies).await,
        Err(TestError::Open(CircuitOpen::new()))
    );
    assert_eq!(bodies.load(Ordering::SeqCst), 0);
    assert_eq!(SWITCHED.rejected_count(), 1);
    SWITCHED.reset();
    assert_eq!(switched_dependency(false, &bodies).await, Ok(()));

    SWITCHED.disable();
    for _ in 0..5 {
        assert_eq!(switched_dependency(true, &bodies).await, Err(TestError::Io));
    }
    assert_eq!(bodies.load(Ordering::SeqCst), 6, "every call ran");
    assert_eq!(SWITCHED.state(), CircuitState::Closed);
    SWITCHED.enable();
    for _ in 0..2 {
        let _ = switched_dependency(true, &bodies).await;
    }
    assert_eq!(
        SWITCHED.state(),
        CircuitState::Open,
        "judged again once enabled"
    );
}

// A breaker that judges slow attempts: half of the last 2 slower than
// 100 ms trips it.
static SLOW_BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_rate(1.0, 2)
    .slow_call(Duration::from_millis(100), 0.5)
    .open_for(Duration::from_secs(10));

#[resilient(circuit_breaker = &SLOW_BREAKER, max_attempts = 1)]
async fn answers_after(delay: Duration) -> Result<(), TestError> {
    sleep(delay).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn slow_successes_trip_a_slow_call_breaker() {
    assert_eq!(answers_after(ms(100)).await, Ok(()), "at the threshold");
    assert_eq!(answers_after(ms(101)).await, Ok(()), "slow, but answered");
    assert_eq!(SLOW_BREAKER.slow_call_rate(), None, "open: no window");
    assert_eq!(SLOW_BREAKER.state(), CircuitState::Open, "1 of 2 slow");
    assert_eq!(
        answers_after(Duration::ZERO).await,
        Err(TestError::Open(CircuitOpen::new()))
    );
}

// Failures over the last 10 s, at least 3 calls.
static OVER_TIME: CircuitBreaker = CircuitBreaker::new()
    .failure_rate_over(0.5, Duration::from_secs(10))
    .min_calls(3)
    .open_for(Duration::from_secs(10));

#[resilient(circuit_breaker = &OVER_TIME, max_attempts = 1, retry_on = [Io])]
async fn over_time(fail: bool) -> Result<(), TestError> {
    if fail { Err(TestError::Io) } else { Ok(()) }
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_failures_older_than_its_period() {
    let _ = over_time(true).await;
    let _ = over_time(true).await;
    advance(Duration::from_secs(10)).await;
    assert_eq!(OVER_TIME.calls_in_window(), 0, "both left the window");
    assert_eq!(over_time(true).await, Err(TestError::Io));
    assert_eq!(over_time(false).await, Ok(()));
    assert_eq!(
        OVER_TIME.state(),
        CircuitState::Closed,
        "2 calls < min_calls"
    );
    assert_eq!(over_time(true).await, Err(TestError::Io));
    assert_eq!(OVER_TIME.state(), CircuitState::Open, "2 of 3 in 10 s");
}

// The same two options as inline keys: `slow_call` with its rate, and a
// `window` that is a duration rather than a count.
#[resilient(
    max_attempts = 1,
    circuit_breaker(
        failure_rate = 1.0,
        window = 2,
        slow_call = "100ms",
        slow_call_rate = 0.5
    )
)]
async fn inline_slow(delay: Duration) -> Result<(), TestError> {
    sleep(delay).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn inline_slow_call_keys_trip_on_slow_answers() {
    assert_eq!(inline_slow(ms(100)).await, Ok(()), "at the threshold");
    assert_eq!(inline_slow(ms(101)).await, Ok(()), "slow, but answered");
    assert_eq!(
        inline_slow(Duration::ZERO).await,
        Err(TestError::Open(CircuitOpen::new())),
        "1 of the last 2 was slow"
    );
}

#[resilient(max_attempts = 1, retry_on = [Io],
            circuit_breaker(failure_rate = 0.5, window = "10s", min_calls = 3))]
async fn inline_over_time(fail: bool) -> Result<(), TestError> {
    if fail { Err(TestError::Io) } else { Ok(()) }
}

#[tokio::test(start_paused = true)]
async fn an_inline_time_window_forgets_failures_older_than_its_period() {
    let _ = inline_over_time(true).await;
    let _ = inline_over_time(true).await;
    advance(Duration::from_secs(10)).await;
    assert_eq!(inline_over_time(true).await, Err(TestError::Io));
    assert_eq!(
        inline_over_time(false).await,
        Ok(()),
        "2 recent calls < min_calls"
    );
    assert_eq!(inline_over_time(true).await, Err(TestError::Io));
    assert_eq!(
        inline_over_time(false).await,
        Err(TestError::Open(CircuitOpen::new())),
        "2 of the last 3 in 10 s failed"
    );
}
