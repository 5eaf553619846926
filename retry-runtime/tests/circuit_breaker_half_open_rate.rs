//! `half_open_rate`: the probes of a half-open breaker judged by a rate
//! rather than all having to succeed.

mod breaker_support;

use std::time::Duration;

use breaker_support::{NS, OPEN_FOR, fail, is_rejected};
use retry_runtime::{CircuitBreaker, CircuitState};
use tokio::time::advance;

fn judged(probes: u32, rate: f64) -> CircuitBreaker {
    let breaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(OPEN_FOR)
        .half_open_probes(probes)
        .half_open_failure_rate(rate);
    fail(&breaker);
    breaker
}

/// Reports `failures` failed probes, then successes, out of `probes`.
fn probe_round(breaker: &CircuitBreaker, probes: u32, failures: u32) {
    let permits: Vec<_> = (0..probes)
        .map(|_| breaker.try_acquire().unwrap())
        .collect();
    assert!(is_rejected(breaker), "only {probes} probes");
    for (i, permit) in permits.into_iter().enumerate() {
        assert!(permit.is_probe());
        assert_eq!(
            breaker.state(),
            CircuitState::HalfOpen,
            "judged before all reported"
        );
        if (i as u32) < failures {
            permit.failure()
        } else {
            permit.success()
        }
    }
}

/// resilience4j `shouldTransitionToClosedStateWhenFailureRateBelowThreshold...`
/// and `...ToOpenStateIfFailureRateAboveThreshold` in the half-open state.
#[tokio::test(start_paused = true)]
async fn a_half_open_rate_judges_all_probes_at_exactly_the_rate() {
    // 4 probes at 0.5: 1 failure (below) closes, 2 (at the rate) reopen.
    let breaker = judged(4, 0.5);
    advance(OPEN_FOR).await;
    probe_round(&breaker, 4, 1);
    assert_eq!(breaker.state(), CircuitState::Closed);

    let breaker = judged(4, 0.5);
    advance(OPEN_FOR).await;
    probe_round(&breaker, 4, 2);
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR - NS).await;
    assert!(is_rejected(&breaker), "reopened for a fresh open_for");
    advance(NS).await;
    probe_round(&breaker, 4, 0);
    assert_eq!(breaker.state(), CircuitState::Closed);

    // A rate of 0.0 reopens on any failure; 1.0 only when all fail.
    let strict = judged(3, 0.0);
    advance(OPEN_FOR).await;
    probe_round(&strict, 3, 1);
    assert_eq!(strict.state(), CircuitState::Open);
    let lenient = judged(3, 1.0);
    advance(OPEN_FOR).await;
    probe_round(&lenient, 3, 2);
    assert_eq!(lenient.state(), CircuitState::Closed);
    let lenient = judged(3, 1.0);
    advance(OPEN_FOR).await;
    probe_round(&lenient, 3, 3);
    assert_eq!(lenient.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_frees_its_slot_under_a_half_open_rate() {
    let breaker = judged(2, 0.5);
    advance(OPEN_FOR).await;
    let failed = breaker.try_acquire().unwrap();
    let dropped = breaker.try_acquire().unwrap();
    failed.failure();
    assert!(is_rejected(&breaker), "a failed probe keeps its slot");
    drop(dropped);
    let again = breaker.try_acquire().unwrap();
    assert!(again.is_probe());
    again.success();
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "1 of 2 failed: rate 0.5 reached"
    );
}

#[test]
fn debug_shows_the_new_options_only_when_set() {
    let plain = format!("{:?}", CircuitBreaker::new());
    assert!(!plain.contains("open_multiplier") && !plain.contains("half_open_failure_rate"));
    let set = format!(
        "{:?}",
        CircuitBreaker::new()
            .open_for_backoff(2.0, Duration::from_secs(60))
            .half_open_failure_rate(0.5)
    );
    assert!(set.contains("open_multiplier: 2.0"), "{set}");
    assert!(set.contains("open_max: 60s"), "{set}");
    assert!(set.contains("half_open_failure_rate: 0.5"), "{set}");
}
