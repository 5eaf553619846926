//! `failure_rate_over(rate, period)`: the failure rate over a time window.

mod breaker_support;

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use breaker_support::{MS, NS, OPEN_FOR, SLOW, record, succeed, timed};
use retry_runtime::{CircuitBreaker, CircuitState};
use tokio::time::advance;

const PERIOD: Duration = Duration::from_secs(10);

fn over_period(rate: f64, min_calls: u32) -> CircuitBreaker {
    CircuitBreaker::new()
        .failure_rate_over(rate, PERIOD)
        .min_calls(min_calls)
}

#[tokio::test(start_paused = true)]
async fn time_window_keeps_an_outcome_until_its_bucket_leaves() {
    // 10 buckets of 1 s: a failure at 0 counts until 10 s - 1 ns.
    let breaker = over_period(1.0, 100);
    breaker.record_failure();
    advance(PERIOD - NS).await;
    assert_eq!(breaker.calls_in_window(), 1);
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
    advance(NS).await;
    assert_eq!(breaker.calls_in_window(), 0, "bucket 0 left at 10 s");
    assert_eq!(breaker.current_failure_rate(), None);
}

#[tokio::test(start_paused = true)]
async fn time_window_slides_by_whole_buckets() {
    // resilience4j `SlidingTimeWindowMetricsTest.slidingTimeWindowMetrics`,
    // with its 5 s window of 1 s buckets as 10 buckets of 500 ms.
    let breaker = CircuitBreaker::new()
        .failure_rate_over(1.0, Duration::from_secs(5))
        .min_calls(100);
    let check = |calls: u32, failures: u32| {
        assert_eq!(breaker.calls_in_window(), calls);
        assert_eq!(
            breaker.current_failure_rate(),
            Some(f64::from(failures) / f64::from(calls))
        );
    };
    breaker.record_failure();
    check(1, 1);
    advance(100 * MS).await;
    breaker.record_success();
    check(2, 1);
    advance(100 * MS).await;
    breaker.record_success();
    check(3, 1);
    for (outcome, calls, failures) in [
        (true, 4, 1),
        (true, 5, 1),
        (false, 6, 2),
        (true, 7, 2),
        (true, 5, 1),
        (true, 5, 1),
    ] {
        advance(Duration::from_secs(1)).await;
        if outcome {
            breaker.record_success();
        } else {
            breaker.record_failure();
        }
        check(calls, failures);
    }
    advance(Duration::from_secs(5)).await;
    breaker.record_success();
    check(1, 0);
}

#[tokio::test(start_paused = true)]
async fn time_window_waits_for_min_calls() {
    let breaker = over_period(0.5, 3);
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed, "min_calls - 1");
    breaker.record_success();
    assert_eq!(breaker.state(), CircuitState::Open, "2 of 3 at min_calls");
}

#[tokio::test(start_paused = true)]
async fn time_window_min_calls_defaults_to_20() {
    let breaker = CircuitBreaker::new().failure_rate_over(0.5, PERIOD);
    for _ in 0..19 {
        breaker.record_failure();
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn time_window_trips_at_the_rate_not_below() {
    let at = over_period(0.5, 4);
    let above = over_period(0.51, 4);
    for breaker in [&at, &above] {
        record(breaker, &[true, false, true, false]);
    }
    assert_eq!(at.state(), CircuitState::Open, "0.5 >= 0.5");
    assert_eq!(above.state(), CircuitState::Closed, "0.5 < 0.51");
}

#[tokio::test(start_paused = true)]
async fn time_window_forgets_failures_older_than_the_period() {
    let breaker = over_period(0.5, 4);
    record(&breaker, &[false, false, false]);
    advance(PERIOD).await;
    record(&breaker, &[false, true, true]);
    // With the old failures, 4 of 6 would have tripped it.
    assert_eq!(breaker.state(), CircuitState::Closed, "old failures left");
    assert_eq!(breaker.calls_in_window(), 3);
    breaker.record_failure();
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "2 of 4 within the period"
    );
}

#[tokio::test(start_paused = true)]
async fn time_window_starts_empty_after_a_trip_and_a_close() {
    let breaker = over_period(0.5, 2).open_for(OPEN_FOR);
    record(&breaker, &[false, false]);
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR / 2).await; // not a whole period later
    advance(OPEN_FOR / 2).await;
    succeed(&breaker); // the probe closes it
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.calls_in_window(), 0, "a fresh window");
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed, "1 call < min_calls");
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
}

#[tokio::test(start_paused = true)]
async fn time_window_is_cleared_by_reset_and_counts_while_disabled() {
    let breaker = over_period(0.5, 2);
    breaker.record_failure();
    breaker.reset();
    assert_eq!(breaker.calls_in_window(), 0);
    breaker.disable();
    record(&breaker, &[false, false, false]);
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "disabled never trips"
    );
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
    breaker.enable();
    assert_eq!(breaker.calls_in_window(), 0);
}

#[tokio::test(start_paused = true)]
async fn time_window_judges_slow_calls_too() {
    let breaker = over_period(1.0, 2).slow_call(SLOW, 0.5);
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(1.0));
    advance(PERIOD).await; // the slow call's bucket left
    assert_eq!(breaker.slow_call_rate(), None);
    timed(&breaker, Duration::ZERO, true).await;
    timed(&breaker, SLOW + NS, false).await;
    assert_eq!(breaker.state(), CircuitState::Open, "1 of 2 slow");
}

#[tokio::test(start_paused = true)]
async fn time_window_period_is_at_least_10ms() {
    let breaker = CircuitBreaker::new()
        .failure_rate_over(1.0, Duration::ZERO)
        .min_calls(100);
    assert!(format!("{breaker:?}").contains("period: 10ms"));
    breaker.record_failure();
    advance(10 * MS - NS).await;
    assert_eq!(breaker.calls_in_window(), 1);
    advance(NS).await;
    assert_eq!(breaker.calls_in_window(), 0);
}

#[test]
fn time_window_shares_outcomes_across_threads() {
    let breaker = CircuitBreaker::new()
        .failure_rate_over(1.0, Duration::from_secs(3600))
        .min_calls(u32::MAX);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = rt.enter();
    let barrier = Barrier::new(4);
    thread::scope(|s| {
        for i in 0..4 {
            let (breaker, barrier) = (&breaker, &barrier);
            let handle = rt.handle().clone();
            s.spawn(move || {
                let _guard = handle.enter();
                barrier.wait();
                for n in 0..1000 {
                    if (n + i) % 4 == 0 {
                        breaker.record_failure();
                    } else {
                        breaker.record_success();
                    }
                }
            });
        }
    });
    assert_eq!(breaker.calls_in_window(), 4000, "no outcome lost");
    assert_eq!(breaker.current_failure_rate(), Some(0.25));
}
