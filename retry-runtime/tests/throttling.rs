//! Client-side adaptive throttling (`CircuitBreaker::adaptive_throttling`,
//! Google SRE) on tokio's paused clock: issue 20's scenario, go-zero's
//! two mistakes, and what the mode shares with the other breakers.
//!
//! | test | asserted |
//! |---|---|
//! | `a_backend_accepting_half_gets_at_most_k_times_its_accepts` | K = 2: a backend accepting every other request, and backends with the capacity for half and a quarter of the load: requests reaching them <= 1.05 × K × accepts; backends accepting a third or a quarter of what they receive: >= 90% refused |
//! | `after_recovery_local_rejections_fall_under_one_percent_within_a_window` | the half-accepting backend recovers: refusals under 1% within one window (2 min); after a complete outage, within 6 |
//! | `requests_count_when_they_start` | a backend that hangs for 30 s after 10 healthy seconds: refusals start before the first hung call returns |
//! | the rest | cancelled calls taken back, `disable`, `reset`, `force_open`, stale outcomes, another mode replacing it |

use std::collections::VecDeque;
use std::time::Duration;

use retry_runtime::{BreakerPermit, CircuitBreaker, CircuitOpen, CircuitState};
use tokio::time::{Instant, advance};

/// What one second of a simulation saw.
#[derive(Debug, Default, Clone, Copy)]
struct Second {
    /// Calls asked for.
    requests: u64,
    /// Calls refused locally.
    refused: u64,
    /// Calls that reached the backend, and those it accepted.
    sent: u64,
    accepted: u64,
}

/// Calls at `rate` per second for `duration`, each taking `latency` at the
/// backend, which accepts the `n`-th call it receives at second `t` when
/// `accepts(t, n)`. Returns each second's counts (a call counted in the
/// second it was asked for).
async fn simulate(
    breaker: &'static CircuitBreaker,
    rate: u32,
    duration: Duration,
    latency: Duration,
    mut accepts: impl FnMut(u64, u64) -> bool,
) -> Vec<Second> {
    let start = Instant::now();
    let gap = Duration::from_secs(1) / rate;
    let mut seconds = vec![Second::default(); duration.as_secs() as usize];
    let mut in_flight: VecDeque<(Instant, BreakerPermit<'static>, bool)> = VecDeque::new();
    let mut received = 0;
    for n in 0..u64::from(rate) * duration.as_secs() {
        let now = Instant::now();
        while in_flight.front().is_some_and(|(due, ..)| *due <= now) {
            let (_, permit, accepted) = in_flight.pop_front().unwrap();
            if accepted {
                permit.success();
            } else {
                permit.failure();
            }
        }
        let second = (now - start).as_secs();
        let counts = &mut seconds[second as usize];
        counts.requests += 1;
        match breaker.try_acquire() {
            Err(CircuitOpen { .. }) => counts.refused += 1,
            Ok(permit) => {
                counts.sent += 1;
                received += 1;
                let accepted = accepts(second, received);
                counts.accepted += u64::from(accepted);
                in_flight.push_back((now + latency, permit, accepted));
            }
        }
        let _ = n;
        advance(gap).await;
    }
    seconds
}

fn total(seconds: &[Second]) -> Second {
    seconds.iter().fold(Second::default(), |sum, s| Second {
        requests: sum.requests + s.requests,
        refused: sum.refused + s.refused,
        sent: sum.sent + s.sent,
        accepted: sum.accepted + s.accepted,
    })
}

fn leak(breaker: CircuitBreaker) -> &'static CircuitBreaker {
    Box::leak(Box::new(breaker))
}

/// Issue 20: "a backend accepting half the requests, K = 2: requests
/// reaching it at most 1.05 × K × accepts". Two readings, both held:
///
/// - a backend accepting every other request it receives: sent / accepts
///   is 2 = K whatever the throttle does; the formula is then neutral
///   (refusals count as requests without accepts, so whatever share is
///   refused stays refused, drifting with chance);
/// - a backend with the capacity for half the offered load (50 of 100 a
///   second, the rest rejected), and one for a quarter: the throttle
///   refuses until the backend sees about K × accepts.
///
/// A backend accepting a fixed share below 1 / K (a third, a quarter of
/// what it receives) always sees 1 / share times its accepts; there the
/// throttle refuses nearly everything, letting a trickle through.
#[tokio::test(start_paused = true)]
async fn a_backend_accepting_half_gets_at_most_k_times_its_accepts() {
    const K: f64 = 2.0;
    retry_runtime::testing::seed_jitter(20);
    let show = |name: &str, all: Second| {
        println!(
            "{name}: {all:?}, sent / accepts = {:.3}, refused {:.3}",
            all.sent as f64 / all.accepted as f64,
            all.refused as f64 / all.requests as f64
        );
    };
    for every in [2, 3, 4] {
        let breaker = leak(CircuitBreaker::adaptive_throttling(K));
        let seconds = simulate(
            breaker,
            100,
            Duration::from_secs(360),
            Duration::from_millis(20),
            |_, n| n % every == 0,
        )
        .await;
        let all = total(&seconds);
        show(&format!("accepting 1/{every} of what it receives"), all);
        assert_eq!(breaker.rejected_count(), all.refused);
        if every == 2 {
            assert!(all.sent as f64 <= 1.05 * K * all.accepted as f64, "{all:?}");
        } else {
            assert!(all.refused as f64 >= 0.9 * all.requests as f64, "{all:?}");
        }
    }
    for capacity in [50, 25] {
        let breaker = leak(CircuitBreaker::adaptive_throttling(K));
        let mut this_second = (u64::MAX, 0);
        let seconds = simulate(
            breaker,
            100,
            Duration::from_secs(360),
            Duration::from_millis(20),
            move |t, _| {
                if this_second.0 != t {
                    this_second = (t, 0);
                }
                this_second.1 += 1;
                this_second.1 <= capacity
            },
        )
        .await;
        // After the first window, once the throttle has a window's history.
        let all = total(&seconds[120..]);
        show(&format!("capacity {capacity}/s of 100/s offered"), all);
        assert!(all.sent as f64 <= 1.05 * K * all.accepted as f64, "{all:?}");
        assert!(
            all.accepted as f64 >= 0.9 * (capacity * 240) as f64,
            "the backend is kept busy: {all:?}"
        );
    }
}

/// The half-accepting backend recovers after 4 minutes: refusals fall as
/// the window fills with accepted requests, under 1% within one window (2
/// minutes). After a complete outage recovery takes longer, and is
/// measured here too: the window then holds nearly nothing but refusals,
/// so the trickle reaching the backend grows only by its own accepts
/// (about e-fold every K / (K - 1) × 30 s here); bounded by 6 windows.
#[tokio::test(start_paused = true)]
async fn after_recovery_local_rejections_fall_under_one_percent_within_a_window() {
    retry_runtime::testing::seed_jitter(20);
    let sick = 240;
    for (name, accepts_while_sick, within) in [("half", 2, 120), ("outage", u64::MAX, 720)] {
        let breaker = leak(CircuitBreaker::adaptive_throttling(2.0));
        let seconds = simulate(
            breaker,
            100,
            Duration::from_secs(sick + within + 60),
            Duration::from_millis(20),
            |t, n| t >= sick || n % accepts_while_sick == 0,
        )
        .await;
        let before = total(&seconds[(sick - 60) as usize..sick as usize]);
        let under = seconds[sick as usize..]
            .windows(5)
            .position(|five| {
                let five = total(five);
                five.refused as f64 <= 0.01 * five.requests as f64
            })
            .expect("refusals fall");
        let after = total(&seconds[(sick + within) as usize..]);
        println!(
            "{name}: refused {:.3} before recovery; under 1% (over 5 s) {under} s after it; \
             {after:?} from {within} s after it",
            before.refused as f64 / before.requests as f64
        );
        assert!(
            after.refused as f64 <= 0.01 * after.requests as f64,
            "{name}: {after:?}"
        );
        assert!(under <= within as usize, "{name}: {under} s");
    }
}

/// go-zero's first mistake: counting a request when it returns. After 10
/// healthy seconds (1,000 accepts), a backend hangs: each call answers
/// after 30 s, with a failure. Counted when they start (and judged once
/// their 12 s bucket is past), the hung requests pass K × accepts within
/// about 14 s, and refusals begin then, long before the first hung call
/// returns (counted when they return, nothing would move for 30 s).
#[tokio::test(start_paused = true)]
async fn requests_count_when_they_start() {
    let breaker = leak(CircuitBreaker::adaptive_throttling(2.0));
    let healthy = simulate(
        breaker,
        100,
        Duration::from_secs(10),
        Duration::from_millis(20),
        |_, _| true,
    )
    .await;
    assert_eq!(total(&healthy).refused, 0);
    let hung = simulate(
        breaker,
        100,
        Duration::from_secs(30),
        Duration::from_secs(30),
        |_, _| false,
    )
    .await;
    let first = hung
        .iter()
        .position(|s| s.refused > 0)
        .expect("refusals begin");
    println!("refusals begin {first} s into the hang; {:?}", total(&hung));
    assert!((9..30).contains(&first), "refusals began at {first} s");
}

/// A cancelled call (its permit dropped without an outcome) is taken back
/// out of the requests: a caller that gives up says nothing of the backend.
#[tokio::test(start_paused = true)]
async fn cancelled_calls_are_taken_back() {
    let breaker = CircuitBreaker::adaptive_throttling(2.0);
    for _ in 0..100 {
        drop(breaker.try_acquire().expect("nothing to refuse yet"));
        advance(Duration::from_millis(10)).await;
    }
    assert_eq!(breaker.throttle_probability(), Some(0.0));
    // Once their bucket (12 s) is no longer the current one, requests
    // still pending would count: taken back, they never do.
    advance(Duration::from_secs(12)).await;
    assert_eq!(breaker.throttle_probability(), Some(0.0));
    // The same calls failing do raise it.
    for _ in 0..100 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.failure();
        }
    }
    assert!(breaker.throttle_probability().unwrap() > 0.9);
}

#[tokio::test(start_paused = true)]
async fn a_disabled_throttle_counts_and_never_refuses_and_reset_clears_it() {
    let breaker = CircuitBreaker::adaptive_throttling(2.0);
    breaker.disable();
    for _ in 0..1_000 {
        breaker.try_acquire().expect("disabled").failure();
    }
    assert!(breaker.throttle_probability().unwrap() > 0.99);
    assert_eq!(breaker.rejected_count(), 0);
    breaker.enable();
    assert_eq!(
        breaker.throttle_probability(),
        Some(0.0),
        "a new period starts empty"
    );
    for _ in 0..1_000 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.failure();
        }
    }
    assert!(breaker.rejected_count() > 900);
    let stale = loop {
        if let Ok(permit) = breaker.try_acquire() {
            break permit;
        }
    };
    breaker.reset();
    assert_eq!(breaker.throttle_probability(), Some(0.0));
    stale.success(); // of the period before the reset: ignored
    assert_eq!(breaker.throttle_probability(), Some(0.0));
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.throttle_probability(), Some(0.5));
}

#[tokio::test(start_paused = true)]
async fn force_open_refuses_all_then_probes_and_throttles_again() {
    let breaker = CircuitBreaker::adaptive_throttling(2.0).half_open_probes(1);
    breaker.force_open_for(Duration::from_secs(1));
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(breaker.try_acquire().is_err());
    advance(Duration::from_secs(1)).await;
    let probe = breaker.try_acquire().expect("a probe");
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.throttle_probability(), Some(0.0));
    for _ in 0..1_000 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.failure();
        }
    }
    assert!(breaker.throttle_probability().unwrap() > 0.9);
    assert!(breaker.rejected_count() > 900);
}

/// Requests and accepts older than the window are forgotten.
#[tokio::test(start_paused = true)]
async fn the_window_forgets_what_is_older_than_it() {
    let breaker =
        CircuitBreaker::adaptive_throttling(2.0).throttling_window(Duration::from_secs(10));
    for _ in 0..100 {
        breaker.record_failure();
    }
    assert!(breaker.throttle_probability().unwrap() > 0.98);
    advance(Duration::from_secs(10)).await;
    assert_eq!(breaker.throttle_probability(), Some(0.0));
    assert!(format!("{breaker:?}").contains("adaptive_throttling: 2.0"));
    assert!(format!("{breaker:?}").contains("window: 10s"));
}

/// A breaker built by `adaptive_throttling` and then given another mode
/// never throttles, however long its calls go on: its first period,
/// numbered for throttling, is the other mode's.
#[tokio::test(start_paused = true)]
async fn a_breaker_given_another_mode_never_throttles() {
    let breaker = CircuitBreaker::adaptive_throttling(2.0).failure_rate(0.5, 10);
    for _ in 0..100 {
        breaker.try_acquire().expect("never throttled").success();
        advance(Duration::from_millis(500)).await;
    }
    assert_eq!(breaker.rejected_count(), 0);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// A later mode builder replaces throttling, as it replaces any mode; the
/// breaker then admits on the fast path again.
#[test]
fn another_mode_replaces_throttling() {
    let breaker = CircuitBreaker::adaptive_throttling(2.0).failure_threshold(2);
    assert_eq!(breaker.throttle_probability(), None);
    for _ in 0..3 {
        breaker.try_acquire().unwrap().success();
    }
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), CircuitState::Open);
    // throttling_window does nothing to a breaker that does not throttle.
    let timed = CircuitBreaker::new()
        .failure_rate_over(0.5, Duration::from_secs(10))
        .throttling_window(Duration::from_secs(60));
    assert!(format!("{timed:?}").contains("period: 10s"));
}
