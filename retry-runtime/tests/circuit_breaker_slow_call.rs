//! `slow_call(threshold, rate)`: calls slower than a threshold count
//! against the breaker.

mod breaker_support;

use std::time::Duration;

use breaker_support::{NS, OPEN_FOR, SLOW, fail, succeed, timed};
use retry_runtime::{CircuitBreaker, CircuitState};
use tokio::time::advance;

#[tokio::test(start_paused = true)]
async fn slow_call_threshold_is_exclusive() {
    // resilience4j `CircuitBreakerMetrics.onSuccess`: slow when
    // `duration > slowCallDurationThreshold`.
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 10)
        .slow_call(SLOW, 1.0);
    timed(&breaker, SLOW - NS, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(0.0));
    timed(&breaker, SLOW, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(0.0), "exactly the threshold");
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(1.0 / 3.0));
    assert_eq!(breaker.state(), CircuitState::Closed, "below min_calls");
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_trips_at_the_rate_not_below() {
    // resilience4j `CircuitBreakerStateMachineTest`
    // `shouldOpenWhenSlowCallRateAboveThreshold` in spirit: 2 of 4 slow.
    let at = CircuitBreaker::new()
        .failure_rate(1.0, 4)
        .slow_call(SLOW, 0.5);
    let above = CircuitBreaker::new()
        .failure_rate(1.0, 4)
        .slow_call(SLOW, 0.51);
    for breaker in [&at, &above] {
        timed(breaker, SLOW + NS, true).await;
        timed(breaker, Duration::ZERO, true).await;
        timed(breaker, SLOW + NS, true).await;
        assert_eq!(breaker.state(), CircuitState::Closed, "3 calls < window");
        timed(breaker, Duration::ZERO, true).await;
    }
    assert_eq!(at.state(), CircuitState::Open, "0.5 >= 0.5");
    assert_eq!(above.state(), CircuitState::Closed, "0.5 < 0.51");
    assert_eq!(above.slow_call_rate(), Some(0.5));
    assert_eq!(above.current_failure_rate(), Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_waits_for_min_calls() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 10)
        .min_calls(3)
        .slow_call(SLOW, 0.5);
    timed(&breaker, SLOW + NS, true).await;
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.state(), CircuitState::Closed, "min_calls - 1");
    assert_eq!(breaker.slow_call_rate(), Some(1.0));
    // A fast success that reaches min_calls may trip on the slow calls
    // before it: 2 of 3.
    timed(&breaker, Duration::ZERO, true).await;
    assert_eq!(breaker.state(), CircuitState::Open, "min_calls");
}

#[tokio::test(start_paused = true)]
async fn a_slow_failure_counts_as_both() {
    // resilience4j `SlidingTimeWindowMetricsTest.slowCallsPercentage`:
    // a SLOW_ERROR is a failed call and a slow call.
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 10)
        .slow_call(SLOW, 1.0);
    timed(&breaker, SLOW * 10, true).await;
    timed(&breaker, SLOW * 10, false).await;
    for _ in 0..3 {
        timed(&breaker, Duration::from_millis(100), true).await;
    }
    assert_eq!(breaker.calls_in_window(), 5);
    assert_eq!(breaker.slow_call_rate(), Some(0.4));
    assert_eq!(breaker.current_failure_rate(), Some(0.2));
}

#[tokio::test(start_paused = true)]
async fn slow_calls_slide_out_of_the_count_window() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 3)
        .slow_call(SLOW, 1.0);
    timed(&breaker, SLOW + NS, true).await;
    timed(&breaker, Duration::ZERO, true).await;
    timed(&breaker, Duration::ZERO, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(1.0 / 3.0));
    timed(&breaker, Duration::ZERO, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(0.0), "the slow call left");
}

#[tokio::test(start_paused = true)]
async fn either_rate_trips_the_breaker() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 2)
        .slow_call(SLOW, 1.0);
    timed(&breaker, Duration::ZERO, true).await;
    timed(&breaker, Duration::ZERO, false).await;
    assert_eq!(breaker.state(), CircuitState::Open, "failure rate 0.5");
}

#[tokio::test(start_paused = true)]
async fn consecutive_mode_judges_slow_calls_over_a_window_of_their_own() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(3)
        .min_calls(4)
        .slow_call(SLOW, 0.5);
    assert_eq!(breaker.current_failure_rate(), None, "no failure rate");
    timed(&breaker, SLOW + NS, true).await;
    timed(&breaker, Duration::ZERO, false).await;
    timed(&breaker, SLOW + NS, false).await;
    assert_eq!(breaker.calls_in_window(), 3);
    assert_eq!(breaker.slow_call_rate(), Some(2.0 / 3.0));
    assert_eq!(breaker.state(), CircuitState::Closed, "3 calls < min_calls");
    timed(&breaker, Duration::ZERO, true).await; // ends the streak at 2
    assert_eq!(breaker.state(), CircuitState::Open, "2 of 4 slow");
}

#[tokio::test(start_paused = true)]
async fn consecutive_mode_with_slow_calls_still_trips_on_the_streak() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(3)
        .slow_call(SLOW, 0.5);
    fail(&breaker);
    fail(&breaker);
    succeed(&breaker); // the streak starts over
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.slow_call_rate(), None, "open: no window");
    let debug = format!("{breaker:?}");
    assert!(
        debug.contains("slow_call: (1s, 0.5), window: 20, min_calls: 20"),
        "the slow calls' own window is shown: {debug}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_probe_counts_as_a_failed_one() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(OPEN_FOR)
        .slow_call(SLOW, 1.0);
    fail(&breaker);
    advance(OPEN_FOR).await;
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.state(), CircuitState::Open, "slow probe reopens");
    advance(OPEN_FOR).await;
    timed(&breaker, SLOW, true).await;
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "a probe at the threshold"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_slow_call_does_not_enter_a_later_window() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 2)
        .slow_call(SLOW, 0.5);
    let stale = breaker.try_acquire().unwrap();
    breaker.reset();
    advance(SLOW * 2).await;
    stale.success();
    assert_eq!(breaker.slow_call_rate(), None);
    assert_eq!(breaker.calls_in_window(), 0);
}

#[tokio::test(start_paused = true)]
async fn outcomes_without_a_permit_are_never_slow() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 2)
        .slow_call(Duration::ZERO, 0.0);
    breaker.record_success();
    breaker.record_failure();
    assert_eq!(breaker.slow_call_rate(), Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn with_slow_calls_a_threshold_past_the_shared_words_range_trips_at_its_cap() {
    // `slow_call`'s documented cap on `failure_threshold`: 2^19 - 1.
    const CAP: u32 = (1 << 19) - 1;
    let breaker = CircuitBreaker::new()
        .failure_threshold(u32::MAX)
        .slow_call(SLOW, 1.0);
    for _ in 1..CAP {
        breaker.record_failure();
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    breaker.record_failure();
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "the streak reached the cap"
    );
}
