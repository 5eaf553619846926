//! `failure_rate(rate, window)`: a breaker judged by the failure rate over
//! its last calls.

mod breaker_support;

use breaker_support::{OPEN_FOR, fail, record, succeed};
use retry_runtime::{CircuitBreaker, CircuitState};
use tokio::time::advance;

#[tokio::test(start_paused = true)]
async fn rate_mode_never_trips_below_min_calls() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 10)
        .min_calls(5)
        .open_for(OPEN_FOR);
    record(&breaker, &[false; 4]);
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "100% of 4 < min_calls"
    );
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_min_calls_defaults_to_the_window() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[false; 3]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);

    // min_calls may also come first, and is clamped to the window.
    let breaker = CircuitBreaker::new().min_calls(100).failure_rate(1.0, 2);
    record(&breaker, &[false]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn default_window_is_the_last_20_calls() {
    // What `#[resilient(circuit_breaker(failure_rate = 0.5))]` builds.
    assert_eq!(CircuitBreaker::DEFAULT_WINDOW, 20);
    let breaker = CircuitBreaker::new().failure_rate(0.5, CircuitBreaker::DEFAULT_WINDOW);
    // 19 calls are fewer than the window, so even all failing stays closed.
    record(&breaker, &[false; 19]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_trips_exactly_when_the_rate_is_reached() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[true, false, true]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false]); // 2 of 4
    assert_eq!(breaker.state(), CircuitState::Open);

    let breaker = CircuitBreaker::new().failure_rate(0.6, 5);
    record(&breaker, &[false, true, false, true, true]); // 2 of 5 = 0.4
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false]); // window [T F T T F] = 0.4
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false]); // window [F T T F F] = 0.6
    assert_eq!(breaker.state(), CircuitState::Open);

    let breaker = CircuitBreaker::new().failure_rate(0.3, 10);
    record(
        &breaker,
        &[true, true, true, true, true, true, true, true, false, false],
    );
    assert_eq!(breaker.state(), CircuitState::Closed, "0.2 < 0.3");
    record(&breaker, &[false]); // the oldest success slides out: 0.3
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_can_trip_on_the_success_that_reaches_min_calls() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[false, false, true]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    succeed(&breaker); // 2 of 4 failed, and now there are enough calls
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_old_outcomes_slide_out_of_the_window() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[false, true, true, true]);
    record(&breaker, &[true, true, true, true]); // the failure has slid out
    fail(&breaker); // [T T T F]: 1 of 4
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // [T T F F]: 2 of 4
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_slides_over_many_laps_of_a_large_window() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 100);
    for lap in 0..5 {
        // 49 failures then 51 successes: every window of 100 has 49 failures.
        for i in 0..100 {
            if i < 49 {
                fail(&breaker)
            } else {
                succeed(&breaker)
            }
        }
        assert_eq!(breaker.state(), CircuitState::Closed, "lap {lap}");
    }
    // The window is now 49 F then 51 S; one more failure replaces an F.
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
    // So do the next 48; only replacing the first success changes the count.
    record(&breaker, &[false; 48]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // replaces the first success: 50 of 100
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_clamps_the_window() {
    let breaker = CircuitBreaker::new().failure_rate(1.0, u32::MAX);
    assert!(format!("{breaker:?}").contains("window: 1024"));
    record(&breaker, &[false; 1023]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_starts_a_fresh_window_after_closing() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 4)
        .open_for(OPEN_FOR);
    record(&breaker, &[false; 4]);
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR).await;
    succeed(&breaker); // the probe
    assert_eq!(breaker.state(), CircuitState::Closed);
    // The four old failures are not in the new window.
    record(&breaker, &[false, true, true]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    succeed(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn rate_of_zero_trips_on_any_failure_but_not_on_successes() {
    let breaker = CircuitBreaker::new().failure_rate(0.0, 3);
    record(&breaker, &[true; 10]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}
