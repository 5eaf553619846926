//! `jitter`: every delay stays within its bounds and under the cap, and
//! `testing::seed_jitter` makes a schedule reproducible.

mod support;

use std::time::Duration;

use steadfast::{resilient, testing};
use support::{Delays, TestError, ms};

macro_rules! jittered {
    ($name:ident, $($key:tt)*) => {
        #[resilient(max_attempts = 5, budget = "off", base_delay = "100ms", max_delay = "500ms",
                    $($key)*, on_retry = |event| $name::DELAYS.push(event.delay()))]
        fn $name() -> Result<(), TestError> {
            Err(TestError::Io)
        }
        mod $name {
            pub(crate) static DELAYS: super::Delays = super::Delays::new();
        }
    };
}

jittered!(full, jitter = "full");
jittered!(equal, jitter = "equal");
jittered!(decorrelated, jitter = "decorrelated");
jittered!(proportional, jitter = 0.5);
jittered!(seeded, jitter = "full");

/// The un-jittered delays before retries 1..=4: 100, 200, 400, 500 (capped).
const CAPPED: [u64; 4] = [100, 200, 400, 500];
const SAMPLES: usize = 2_000;

/// Runs `call` many times; returns the delays grouped by retry number.
fn sample(call: fn() -> Result<(), TestError>, delays: &Delays) -> Vec<Vec<Duration>> {
    let _fast = testing::no_delays();
    let mut by_retry = vec![Vec::new(); CAPPED.len()];
    for _ in 0..SAMPLES {
        assert_eq!(call(), Err(TestError::Io));
        for (retry, delay) in delays.take().into_iter().enumerate() {
            by_retry[retry].push(delay);
        }
    }
    by_retry
}

fn mean(delays: &[Duration]) -> f64 {
    delays.iter().map(Duration::as_secs_f64).sum::<f64>() / delays.len() as f64
}

#[test]
fn full_jitter_is_uniform_below_the_delay() {
    for (delays, d) in sample(full, &full::DELAYS).iter().zip(CAPPED.map(ms)) {
        assert!(delays.iter().all(|delay| *delay <= d));
        // U(0, d) has mean d/2 and sd d/√12; 2000 samples: 5 standard errors ≈ 3.2% of d.
        assert!((mean(delays) - d.as_secs_f64() / 2.0).abs() < 0.035 * d.as_secs_f64());
    }
}

#[test]
fn equal_jitter_keeps_at_least_half() {
    for (delays, d) in sample(equal, &equal::DELAYS).iter().zip(CAPPED.map(ms)) {
        assert!(delays.iter().all(|delay| *delay >= d / 2 && *delay <= d));
        assert!((mean(delays) - 0.75 * d.as_secs_f64()).abs() < 0.02 * d.as_secs_f64());
    }
}

#[test]
fn decorrelated_jitter_stays_between_base_and_cap() {
    let by_retry = sample(decorrelated, &decorrelated::DELAYS);
    for delays in &by_retry {
        assert!(
            delays
                .iter()
                .all(|delay| *delay >= ms(100) && *delay <= ms(500))
        );
    }
    // The first draw is U(base, 3·base).
    assert!(by_retry[0].iter().all(|delay| *delay <= ms(300)));
}

#[test]
fn proportional_jitter_spreads_around_the_delay_under_the_cap() {
    for (delays, d) in sample(proportional, &proportional::DELAYS)
        .iter()
        .zip(CAPPED.map(ms))
    {
        assert!(
            delays
                .iter()
                .all(|delay| *delay >= d / 2 && *delay <= (d * 3 / 2).min(ms(500)))
        );
    }
}

#[test]
fn seeded_jitter_repeats_exactly() {
    let _fast = testing::no_delays();
    let mut runs = Vec::new();
    for seed in [7, 7, 8] {
        testing::seed_jitter(seed);
        for _ in 0..3 {
            let _ = seeded();
        }
        runs.push(seeded::DELAYS.take());
    }
    assert_eq!(runs[0], runs[1], "same seed, same schedule");
    assert_ne!(runs[0], runs[2], "another seed, another schedule");
}
