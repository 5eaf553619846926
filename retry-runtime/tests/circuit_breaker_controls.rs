//! What an operator does to a breaker: `force_open`, `force_open_for`,
//! `disable`, `enable`, and outcomes recorded without a permit
//! (`record_failure`, `record_success`), with the counts it reports.

mod breaker_support;

use std::time::Duration;

use breaker_support::{MS, NS, OPEN_FOR, fail, is_rejected, record, succeed, tripped};
use retry_runtime::{CircuitBreaker, CircuitState};
use tokio::time::advance;

#[tokio::test(start_paused = true)]
async fn force_open_for_opens_now_and_starts_over_when_repeated() {
    let breaker = CircuitBreaker::new().open_for(OPEN_FOR);
    breaker.force_open_for(OPEN_FOR);
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(is_rejected(&breaker));

    advance(OPEN_FOR / 2).await;
    breaker.force_open_for(OPEN_FOR); // starts open_for over
    advance(OPEN_FOR - MS).await;
    assert!(is_rejected(&breaker));
    advance(MS).await;
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

// ---------------------------------------------------------------------------
// Forced and disabled states.

/// resilience4j `CircuitBreakerStateMachineTest.shouldStayInForcedOpenState`
/// (no time moves a FORCED_OPEN breaker), Polly's `Isolate` tests.
#[tokio::test(start_paused = true)]
async fn force_open_holds_open_past_open_for_until_reset() {
    let breaker = CircuitBreaker::new().open_for(OPEN_FOR);
    breaker.force_open();
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(breaker.is_forced_open());
    for _ in 0..3 {
        advance(OPEN_FOR * 10).await;
        assert!(is_rejected(&breaker));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    breaker.reset();
    assert!(!breaker.is_forced_open());
    succeed(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn force_open_ignores_calls_admitted_before_it() {
    let breaker = tripped(1, 1);
    advance(OPEN_FOR).await;
    let probe = breaker.try_acquire().unwrap();
    breaker.force_open();
    probe.success(); // the half-open period it belonged to is over
    assert!(breaker.is_forced_open());
    assert!(is_rejected(&breaker));
}

#[tokio::test(start_paused = true)]
async fn force_open_for_opens_for_exactly_that_long() {
    let breaker = CircuitBreaker::new().open_for(OPEN_FOR);
    let d = Duration::from_secs(3);
    breaker.force_open_for(d);
    advance(d - NS).await;
    assert!(is_rejected(&breaker));
    advance(NS).await;
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(breaker.state(), CircuitState::Closed);

    // It also ends an isolation, which then runs out like any open.
    breaker.force_open();
    breaker.force_open_for(d);
    assert!(!breaker.is_forced_open());
    advance(d).await;
    assert!(breaker.try_acquire().unwrap().is_probe());
}

/// resilience4j `shouldStayInMetricsOnlyStateAndRecordCalls`: admits, counts,
/// never trips.
#[tokio::test(start_paused = true)]
async fn a_disabled_breaker_admits_and_counts_but_never_trips() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 4)
        .open_for(OPEN_FOR);
    breaker.disable();
    assert!(breaker.is_disabled());
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false; 10]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.calls_in_window(), 4);
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.rejected_count(), 0);

    let consecutive = CircuitBreaker::new().failure_threshold(1);
    consecutive.disable();
    record(&consecutive, &[false; 5]);
    assert_eq!(consecutive.state(), CircuitState::Closed);
}

/// `disable` on a disabled breaker leaves it as it is: an operator's switch
/// flipped twice (two admin requests, a config reload) must not wipe the
/// counts that disabling keeps for observation, nor make the calls already
/// admitted stale.
#[tokio::test(start_paused = true)]
async fn disabling_twice_keeps_the_counts_and_the_calls_in_flight() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 10)
        .open_for(OPEN_FOR);
    breaker.disable();
    record(&breaker, &[false, true, false]);
    let in_flight = breaker.try_acquire().unwrap();
    breaker.disable();
    assert!(breaker.is_disabled());
    assert_eq!(breaker.calls_in_window(), 3);
    in_flight.failure();
    assert_eq!(breaker.calls_in_window(), 4, "still of this period");
    assert_eq!(breaker.current_failure_rate(), Some(0.75));
}

#[tokio::test(start_paused = true)]
async fn enable_closes_a_disabled_breaker_with_fresh_counts() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(2)
        .open_for(OPEN_FOR);
    breaker.disable();
    let before = breaker.try_acquire().unwrap();
    record(&breaker, &[false, false, false]);
    breaker.enable();
    assert!(!breaker.is_disabled());
    before.failure(); // admitted while disabled: stale
    fail(&breaker); // threshold - 1: the disabled streak was not carried over
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // threshold
    assert_eq!(breaker.state(), CircuitState::Open);

    breaker.enable(); // not disabled: left open
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn disable_admits_at_once_from_open_and_reset_ends_it() {
    let breaker = tripped(1, 1);
    breaker.disable();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert!(!breaker.try_acquire().unwrap().is_probe());
    breaker.reset();
    assert!(!breaker.is_disabled());
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
    // A forced open takes it out of disabled too.
    breaker.disable();
    breaker.force_open();
    assert!(!breaker.is_disabled());
    assert!(is_rejected(&breaker));
}

// ---------------------------------------------------------------------------
// Observation without a permit.

/// failsafe `CircuitBreakerTest.testRecordFailure` / resilience4j `onError`.
#[tokio::test(start_paused = true)]
async fn record_failure_trips_at_exactly_the_threshold() {
    let breaker = CircuitBreaker::new().failure_threshold(3);
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
    breaker.record_success(); // ends the streak
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn outcomes_without_a_permit_are_ignored_while_open_or_half_open() {
    let breaker = tripped(1, 1);
    breaker.record_success();
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR).await;
    let probe = breaker.try_acquire().unwrap();
    breaker.record_failure(); // does not reopen
    breaker.record_success(); // does not close
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    probe.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// resilience4j `CircuitBreakerMetricsTest`: failure rate and buffered calls.
#[tokio::test(start_paused = true)]
async fn the_window_reports_its_failure_rate_and_calls() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.75, 4)
        .open_for(OPEN_FOR);
    assert_eq!(breaker.current_failure_rate(), None);
    assert_eq!(breaker.calls_in_window(), 0);
    record(&breaker, &[true, false]);
    assert_eq!(breaker.current_failure_rate(), Some(0.5));
    assert_eq!(breaker.calls_in_window(), 2);
    record(&breaker, &[true, true, true]); // the first success slides out
    assert_eq!(breaker.calls_in_window(), 4);
    assert_eq!(breaker.current_failure_rate(), Some(0.25));
    record(&breaker, &[false, false]); // 2 of 4: below 0.75
    assert_eq!(breaker.current_failure_rate(), Some(0.5));
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // 3 of 4: at the rate, trips
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.current_failure_rate(), None, "no window while open");
    assert_eq!(breaker.calls_in_window(), 0);

    let consecutive = CircuitBreaker::new();
    consecutive.record_failure();
    assert_eq!(consecutive.current_failure_rate(), None);
    assert_eq!(consecutive.calls_in_window(), 0);
}

/// resilience4j `getNumberOfNotPermittedCalls`.
#[tokio::test(start_paused = true)]
async fn rejected_count_counts_refusals_only() {
    let breaker = tripped(1, 2);
    assert_eq!(breaker.rejected_count(), 0);
    assert!(is_rejected(&breaker));
    advance(OPEN_FOR - NS).await;
    assert!(is_rejected(&breaker));
    assert_eq!(breaker.rejected_count(), 2);
    advance(NS).await;
    let a = breaker.try_acquire().unwrap();
    let b = breaker.try_acquire().unwrap();
    assert!(is_rejected(&breaker)); // both probe slots taken
    assert_eq!(breaker.rejected_count(), 3);
    a.success();
    b.success();
    succeed(&breaker);
    breaker.reset();
    assert_eq!(
        breaker.rejected_count(),
        3,
        "admitted calls and resets add nothing"
    );
}
