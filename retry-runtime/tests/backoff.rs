//! Behaviour of `Backoff` schedules: exact growth, the cap, saturation,
//! jitter bounds and distribution, and seeding.

use std::time::Duration;

use retry_runtime::{Backoff, Jitter};

const MS: Duration = Duration::from_millis(1);
const SAMPLES: usize = 10_000;

fn ms(values: &[u64]) -> Vec<Duration> {
    values.iter().map(|&v| Duration::from_millis(v)).collect()
}

fn exact(b: Backoff, n: usize) -> Vec<Duration> {
    b.jitter(Jitter::None).take(n).collect()
}

fn mean(delays: &[Duration]) -> Duration {
    delays.iter().sum::<Duration>() / delays.len() as u32
}

#[test]
fn exponential_doubles_from_base() {
    assert_eq!(
        exact(Backoff::exponential(100 * MS), 5),
        ms(&[100, 200, 400, 800, 1600])
    );
}

#[test]
fn fixed_repeats_base() {
    assert_eq!(
        exact(Backoff::fixed(250 * MS), 4),
        ms(&[250, 250, 250, 250])
    );
}

#[test]
fn linear_grows_by_base() {
    assert_eq!(
        exact(Backoff::linear(100 * MS), 5),
        ms(&[100, 200, 300, 400, 500])
    );
}

#[test]
fn fibonacci_starts_one_one() {
    assert_eq!(
        exact(Backoff::fibonacci(100 * MS), 8),
        ms(&[100, 100, 200, 300, 500, 800, 1300, 2100])
    );
}

#[test]
fn none_is_always_zero_even_with_jitter() {
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
        Jitter::Proportional(0.5),
    ] {
        assert!(Backoff::none().jitter(jitter).take(20).all(|d| d.is_zero()));
    }
    assert_eq!(
        Backoff::none().delay_before_jitter(u32::MAX),
        Duration::ZERO
    );
}

#[test]
fn multiplier_one_and_a_half() {
    let b = Backoff::exponential(100 * MS).multiplier(1.5);
    assert_eq!(
        exact(b, 4),
        [100 * MS, 150 * MS, 225 * MS, Duration::from_micros(337_500)]
    );
}

#[test]
fn invalid_multipliers_do_not_shrink_or_panic() {
    for m in [0.5, 0.0, -3.0, f64::NAN] {
        let b = Backoff::exponential(100 * MS).multiplier(m);
        assert_eq!(exact(b, 3), ms(&[100, 100, 100]), "multiplier {m}");
    }
    let b = Backoff::exponential(100 * MS).multiplier(f64::INFINITY);
    assert_eq!(
        exact(b, 3),
        [100 * MS, Duration::from_secs(20), Duration::from_secs(20)]
    );
}

#[test]
fn retry_zero_is_retry_one() {
    let b = Backoff::linear(100 * MS);
    assert_eq!(b.delay_before_jitter(0), b.delay_before_jitter(1));
}

#[test]
fn defaults_match_the_attribute() {
    let b = Backoff::new();
    assert_eq!(b.base(), 100 * MS);
    assert_eq!(b.cap(), Duration::from_secs(20));
    assert_eq!(b.delay_before_jitter(2), 200 * MS);
    assert_eq!(format!("{b:?}"), format!("{:?}", Backoff::default()));
    assert!(format!("{b:?}").contains("Full"));
    // The other constructors keep the default cap, multiplier and jitter.
    let f = Backoff::fibonacci(MS);
    assert_eq!(f.cap(), Duration::from_secs(20));
    assert!(format!("{f:?}").contains("multiplier: 2.0"));
    assert!(format!("{f:?}").contains("Full"));
}

#[test]
fn builds_in_a_static() {
    static SCHEDULE: Backoff = Backoff::fibonacci(Duration::from_millis(10))
        .max_delay(Duration::from_millis(40))
        .multiplier(3.0)
        .jitter(Jitter::None)
        .with_seed(1);
    const BASE: Duration = SCHEDULE.base();
    assert_eq!(BASE, 10 * MS);
    let got: Vec<_> = SCHEDULE.clone().take(6).collect();
    assert_eq!(got, ms(&[10, 10, 20, 30, 40, 40]));
}

#[test]
fn cap_applies_before_jitter() {
    let cap = Duration::from_secs(5);
    let b = Backoff::exponential(Duration::from_secs(1)).max_delay(cap);
    assert_eq!(
        exact(b.clone(), 6),
        ms(&[1000, 2000, 4000, 5000, 5000, 5000])
    );

    // Far past the cap, full jitter spreads over U(0, cap): were the cap
    // applied after jitter, most draws of U(0, 2^29 s) would sit at the cap.
    let late: Vec<_> = b
        .jitter(Jitter::Full)
        .with_seed(5)
        .skip(30)
        .take(SAMPLES)
        .collect();
    assert!(late.iter().all(|&d| d <= cap));
    let m = mean(&late);
    assert!(
        m > Duration::from_millis(2300) && m < Duration::from_millis(2700),
        "{m:?}"
    );
}

#[test]
fn u32_max_saturates_to_the_cap_for_every_strategy() {
    let cap = Duration::from_secs(20);
    for b in [
        Backoff::exponential(100 * MS),
        Backoff::exponential(100 * MS).multiplier(1.000_001),
        Backoff::fixed(Duration::from_secs(60)),
        Backoff::linear(MS),
        Backoff::fibonacci(Duration::from_nanos(1)),
    ] {
        assert_eq!(b.delay_before_jitter(u32::MAX), cap, "{b:?}");
        assert_eq!(b.delay_before_jitter(u32::MAX - 1), cap, "{b:?}");
    }
    // A multiplier of exactly 1.0 never grows, even at u32::MAX.
    let flat = Backoff::exponential(100 * MS).multiplier(1.0);
    assert_eq!(flat.delay_before_jitter(u32::MAX), 100 * MS);
}

#[test]
fn extreme_durations_saturate_without_panicking() {
    for b in [
        Backoff::exponential(Duration::MAX),
        Backoff::exponential(Duration::from_secs(u64::MAX / 3)).multiplier(f64::MAX),
        Backoff::fixed(Duration::MAX),
        Backoff::linear(Duration::MAX),
        Backoff::fibonacci(Duration::MAX),
    ] {
        let b = b.max_delay(Duration::MAX);
        for retry in [0, 1, 2, 3, 200, u32::MAX] {
            let d = b.delay_before_jitter(retry);
            assert!(d <= Duration::MAX);
        }
        assert_eq!(b.delay_before_jitter(u32::MAX), Duration::MAX);
        for jitter in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::Proportional(1.0),
        ] {
            // Exercises draws over ranges wider than u64 nanoseconds.
            let delays: Vec<_> = b.clone().jitter(jitter).with_seed(2).take(50).collect();
            assert_eq!(delays.len(), 50);
        }
    }
    // A zero cap wins over any base.
    let zero = Backoff::exponential(Duration::MAX).max_delay(Duration::ZERO);
    assert!(zero.take(10).all(|d| d.is_zero()));
}

/// Draws `SAMPLES` delays before retry `retry`, each from a fresh seeded
/// schedule so decorrelated state does not build up.
fn draws_at(b: &Backoff, retry: usize) -> Vec<Duration> {
    (0..SAMPLES as u64)
        .map(|seed| b.clone().with_seed(seed).nth(retry - 1).unwrap())
        .collect()
}

#[test]
fn full_jitter_stays_in_zero_to_d_with_mean_half() {
    let b = Backoff::fixed(Duration::from_secs(1)).jitter(Jitter::Full);
    let delays: Vec<_> = b.with_seed(1).take(SAMPLES).collect();
    assert!(delays.iter().all(|&d| d <= Duration::from_secs(1)));
    // U(0, 1s) has a standard deviation of ~289ms, so the mean of 10_000
    // draws has one of ~2.9ms; 20ms is ~7 of them.
    let m = mean(&delays);
    assert!(m.abs_diff(500 * MS) < 20 * MS, "{m:?}");
    // The draws do spread over the range rather than clustering.
    assert!(delays.iter().any(|&d| d < 50 * MS));
    assert!(delays.iter().any(|&d| d > 950 * MS));
}

#[test]
fn equal_jitter_stays_in_half_d_to_d_with_mean_three_quarters() {
    let b = Backoff::fixed(Duration::from_secs(1)).jitter(Jitter::Equal);
    let delays: Vec<_> = b.with_seed(2).take(SAMPLES).collect();
    assert!(
        delays
            .iter()
            .all(|&d| d >= 500 * MS && d <= Duration::from_secs(1))
    );
    // Standard deviation of U(0, 500ms) is ~144ms: ~1.4ms for the mean.
    let m = mean(&delays);
    assert!(m.abs_diff(750 * MS) < 10 * MS, "{m:?}");
}

#[test]
fn jitter_bounds_hold_along_an_exponential_schedule() {
    let cap = Duration::from_secs(3);
    let base = Backoff::exponential(100 * MS).max_delay(cap);
    for retry in [1, 3, 5, 8] {
        let d = base.delay_before_jitter(retry as u32);
        for (jitter, lo, hi) in [
            (Jitter::Full, Duration::ZERO, d),
            (Jitter::Equal, d / 2, d),
            (
                Jitter::Proportional(0.25),
                d.mul_f64(0.75),
                d.mul_f64(1.25).min(cap),
            ),
        ] {
            let delays = draws_at(&base.clone().jitter(jitter), retry);
            for delay in delays {
                assert!(
                    delay >= lo && delay <= hi && delay <= cap,
                    "{jitter:?} retry {retry}: {delay:?} not in {lo:?}..={hi:?}"
                );
            }
        }
    }
}

#[test]
fn proportional_jitter_is_clamped_to_the_cap() {
    let cap = Duration::from_secs(1);
    let b = Backoff::fixed(cap)
        .max_delay(cap)
        .jitter(Jitter::Proportional(0.5));
    let delays: Vec<_> = b.with_seed(3).take(SAMPLES).collect();
    assert!(delays.iter().all(|&d| d >= 500 * MS && d <= cap));
    // Half the draws would land above the cap and are clamped onto it.
    let at_cap = delays.iter().filter(|&&d| d == cap).count();
    assert!((4_000..6_000).contains(&at_cap), "{at_cap}");
}

#[test]
fn proportional_factor_out_of_range_is_clamped() {
    let d = Duration::from_secs(1);
    let roomy = Backoff::fixed(d).max_delay(Duration::from_secs(10));
    for f in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
        let b = roomy.clone().jitter(Jitter::Proportional(f));
        assert!(b.take(100).all(|x| x == d), "factor {f}");
    }
    for f in [1.0, 2.0, f64::INFINITY] {
        let b = roomy.clone().jitter(Jitter::Proportional(f)).with_seed(4);
        let delays: Vec<_> = b.take(SAMPLES).collect();
        assert!(delays.iter().all(|&x| x <= 2 * d), "factor {f}");
        assert!(delays.iter().any(|&x| x < 100 * MS), "factor {f}");
        assert!(delays.iter().any(|&x| x > 1900 * MS), "factor {f}");
    }
}

#[test]
fn decorrelated_stays_between_base_and_cap() {
    let base = 100 * MS;
    let cap = Duration::from_secs(2);
    let b = Backoff::exponential(base)
        .max_delay(cap)
        .jitter(Jitter::Decorrelated)
        .with_seed(9);
    let delays: Vec<_> = b.take(SAMPLES).collect();
    let mut prev = base;
    for &d in &delays {
        assert!(d >= base && d <= cap, "{d:?}");
        assert!(d <= prev * 3, "{d:?} after {prev:?}");
        prev = d;
    }
    // It does climb to the cap and back down, unlike a fixed schedule.
    assert!(delays.contains(&cap));
    assert!(delays.iter().any(|&d| d < 200 * MS));
}

#[test]
fn decorrelated_first_draw_is_within_base_and_three_base() {
    let b = Backoff::exponential(100 * MS).jitter(Jitter::Decorrelated);
    for delay in draws_at(&b, 1) {
        assert!(delay >= 100 * MS && delay <= 300 * MS, "{delay:?}");
    }
}

#[test]
fn same_seed_same_schedule() {
    for jitter in [
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
        Jitter::Proportional(0.3),
    ] {
        let b = Backoff::new().jitter(jitter);
        let a: Vec<_> = b.clone().with_seed(7).take(50).collect();
        let again: Vec<_> = b.clone().with_seed(7).take(50).collect();
        let other: Vec<_> = b.clone().with_seed(8).take(50).collect();
        assert_eq!(a, again, "{jitter:?}");
        assert_ne!(a, other, "{jitter:?}");
    }
}

#[test]
fn a_clone_continues_the_same_schedule() {
    let mut b = Backoff::new().with_seed(12);
    b.nth(3);
    let rest: Vec<_> = b.clone().take(10).collect();
    assert_eq!(rest, b.take(10).collect::<Vec<_>>());
}

#[test]
fn unseeded_schedules_follow_the_thread_seed() {
    retry_runtime::testing::seed_jitter(42);
    let first: Vec<_> = Backoff::new().take(20).collect();
    retry_runtime::testing::seed_jitter(42);
    let again: Vec<_> = Backoff::new().take(20).collect();
    assert_eq!(first, again);
}

#[test]
fn never_ends() {
    let mut b = Backoff::fixed(MS).jitter(Jitter::None);
    assert_eq!(b.size_hint(), (usize::MAX, None));
    assert_eq!(b.by_ref().take(100_000).count(), 100_000);
    assert_eq!(b.next(), Some(MS));
}
