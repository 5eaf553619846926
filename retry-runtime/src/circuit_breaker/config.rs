//! What the builders set: how the breaker trips, how long it stays open,
//! how many probes it admits. Plain data, `Copy` and `const`, so that a
//! breaker built in a `static` carries it by value.
//!
//! Each setter here applies the clamping its public builder documents; the
//! builders in `mod.rs` only forward to them.

use std::time::Duration;

use super::state::{COUNT_MAX, CircuitState, PROBE_MAX, TIME_MAX};
use super::time_window::BUCKETS;
use super::window::{MAX_WINDOW, STREAK_MAX};

/// Consecutive failures that trip a default breaker.
pub(super) const DEFAULT_THRESHOLD: u32 = 5;
/// How long a default breaker stays open.
const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);
/// The failure-rate window when none is given; public as
/// `CircuitBreaker::DEFAULT_WINDOW`.
pub(super) const DEFAULT_WINDOW: u32 = 20;

/// The shortest time-based window: 10 ms, so 1 ms buckets (see
/// `time_window.rs` on why buckets should not be shorter).
const MIN_PERIOD_NANOS: u64 = 10_000_000;
/// Adaptive throttling's window when none is given: the two minutes of
/// Google's SRE book, longer than any call's timeout we expect (a window
/// shorter than the timeout is go-zero's second mistake: a call that times
/// out outlives its request's count).
pub(super) const DEFAULT_THROTTLING_WINDOW: Duration = retry_rules::defaults::THROTTLING_WINDOW;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Consecutive,
    /// Count-based window: the last `window` calls.
    Rate,
    /// Time-based window: the calls of the last `period_nanos`.
    Time,
    /// Adaptive throttling (Google SRE): requests and accepts over the last
    /// `period_nanos`, refusing with probability
    /// `max(0, (requests - k · accepts) / (requests + 1))`.
    Throttle,
}

/// Where an ordinary outcome goes, derived from the mode and `slow` by
/// [`Config::derive`] so that the outcome path branches once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorder {
    /// The failure streak in the state word.
    Streak,
    /// The count-based ring of failures (rate mode without slow calls).
    Ring,
    /// The count-based rings with slow calls (rate mode, or consecutive
    /// mode whose slow calls get a window of their own).
    SlowRing,
    /// The time-based buckets.
    Time,
    /// The throttle's requests and accepts, in the time-based buckets.
    Throttle,
}

/// `slow_call`: calls slower than `threshold_nanos` are slow, and the
/// breaker trips when their share in the window reaches `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SlowCalls {
    pub(super) threshold_nanos: u64,
    pub(super) rate: f64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub(super) mode: Mode,
    pub(super) recorder: Recorder,
    pub(super) failure_threshold: u32,
    pub(super) failure_rate: f64,
    pub(super) window: u32,
    /// The time-based window's length, in nanoseconds (`Mode::Time` and
    /// `Mode::Throttle`).
    pub(super) period_nanos: u64,
    /// Adaptive throttling's multiplier `k` (`Mode::Throttle`).
    pub(super) throttle_k: f64,
    pub(super) slow: Option<SlowCalls>,
    /// `None` until set, so that `min_calls` may come before or after
    /// `failure_rate` and still default to the window.
    min_calls: Option<u32>,
    pub(super) open_for_nanos: u64,
    pub(super) half_open_probes: u32,
    /// Each reopen after a failed half-open period multiplies the open time
    /// by this, up to `open_max_nanos`; 1.0 (no growth) by default.
    pub(super) open_multiplier: f64,
    pub(super) open_max_nanos: u64,
    /// `Some(rate)`: a half-open period ends when all its probes have
    /// reported, and reopens when `failed / probes >= rate`. `None`: the
    /// first failed probe reopens.
    pub(super) half_open_rate: Option<f64>,
    pub(super) on_state_change: Option<fn(CircuitState, CircuitState)>,
    pub(super) name: &'static str,
}

impl Config {
    /// 5 consecutive failures, open for 30 s, 1 probe.
    pub(super) const DEFAULT: Config = Config {
        mode: Mode::Consecutive,
        recorder: Recorder::Streak,
        failure_threshold: DEFAULT_THRESHOLD,
        failure_rate: 0.5,
        window: DEFAULT_WINDOW,
        period_nanos: 0,
        throttle_k: 2.0,
        slow: None,
        min_calls: None,
        open_for_nanos: DEFAULT_OPEN_FOR.as_nanos() as u64,
        half_open_probes: 1,
        open_multiplier: 1.0,
        open_max_nanos: DEFAULT_OPEN_FOR.as_nanos() as u64,
        half_open_rate: None,
        on_state_change: None,
        name: "circuit_breaker",
    };

    #[must_use]
    pub(super) const fn failure_threshold(mut self, n: u32) -> Self {
        self.mode = Mode::Consecutive;
        self.failure_threshold = clamp(n, 1, COUNT_MAX);
        self.derive()
    }

    #[must_use]
    pub(super) const fn failure_rate(mut self, rate: f64, window: u32) -> Self {
        self.mode = Mode::Rate;
        self.failure_rate = unit_rate(rate);
        self.window = clamp(window, 1, MAX_WINDOW);
        self.derive()
    }

    #[must_use]
    pub(super) const fn failure_rate_over(mut self, rate: f64, period: Duration) -> Self {
        self.mode = Mode::Time;
        self.failure_rate = unit_rate(rate);
        let nanos = nanos(period);
        self.period_nanos = if nanos < MIN_PERIOD_NANOS {
            MIN_PERIOD_NANOS
        } else {
            nanos
        };
        self.derive()
    }

    /// Adaptive throttling with multiplier `k` over the default window.
    #[must_use]
    pub(super) const fn adaptive_throttling(mut self, k: f64) -> Self {
        self.mode = Mode::Throttle;
        self.throttle_k = if k.is_nan() {
            2.0
        } else if k < 1.0 {
            1.0
        } else {
            k
        };
        self.period_nanos = nanos(DEFAULT_THROTTLING_WINDOW);
        self.derive()
    }

    /// The window adaptive throttling counts over; at least 10 ms.
    #[must_use]
    pub(super) const fn throttling_window(mut self, period: Duration) -> Self {
        let nanos = nanos(period);
        self.period_nanos = if nanos < MIN_PERIOD_NANOS {
            MIN_PERIOD_NANOS
        } else {
            nanos
        };
        self
    }

    /// Whether the breaker throttles: its periods take odd generations.
    pub(super) const fn throttles(&self) -> bool {
        matches!(self.mode, Mode::Throttle)
    }

    /// Adaptive throttling's probability of refusing a request, given the
    /// requests and accepts of the window: Google SRE's
    /// `max(0, (requests - k · accepts) / (requests + 1))`.
    pub(super) fn throttle_probability(&self, requests: u32, accepts: u32) -> f64 {
        let requests = f64::from(requests);
        ((requests - self.throttle_k * f64::from(accepts)) / (requests + 1.0)).max(0.0)
    }

    #[must_use]
    pub(super) const fn slow_call(mut self, threshold: Duration, rate: f64) -> Self {
        self.slow = Some(SlowCalls {
            threshold_nanos: nanos(threshold),
            rate: unit_rate(rate),
        });
        self.derive()
    }

    /// Sets `recorder` from the mode and `slow`; every builder that
    /// changes either ends with it.
    const fn derive(mut self) -> Self {
        self.recorder = match (self.mode, self.slow.is_some()) {
            (Mode::Throttle, _) => Recorder::Throttle,
            (Mode::Time, _) => Recorder::Time,
            (_, true) => Recorder::SlowRing,
            (Mode::Rate, false) => Recorder::Ring,
            (Mode::Consecutive, false) => Recorder::Streak,
        };
        self
    }

    /// The width of one bucket of the time-based window, in nanoseconds.
    pub(super) const fn bucket_nanos(&self) -> u64 {
        self.period_nanos / BUCKETS as u64
    }

    /// Whether outcomes go to the count-based ring: in rate mode, and in
    /// consecutive mode with slow calls (which then have a window of their
    /// own, the failure streak sharing the state word's count with it).
    pub(super) const fn counts_in_ring(&self) -> bool {
        matches!(self.recorder, Recorder::Ring | Recorder::SlowRing)
    }

    /// The failure streak that trips in consecutive mode: as set, and at
    /// most [`STREAK_MAX`] when it shares the count with a slow-call window.
    pub(super) const fn streak_threshold(&self) -> u32 {
        if self.slow.is_some() && self.failure_threshold > STREAK_MAX {
            STREAK_MAX
        } else {
            self.failure_threshold
        }
    }

    /// Whether a window holding `calls` calls, `failures` of them failed
    /// and `slow` slow, trips the breaker: at least `min_calls` calls, and
    /// the failure rate (not judged in consecutive mode, where the streak
    /// is) or the slow-call rate reached, with at least one such call.
    pub(super) fn window_trips(&self, calls: u32, failures: u32, slow: u32) -> bool {
        if calls == 0 || calls < self.min_calls() {
            return false;
        }
        let reached = |n: u32, rate: f64| n > 0 && f64::from(n) / f64::from(calls) >= rate;
        let failing = self.mode != Mode::Consecutive && reached(failures, self.failure_rate);
        failing || self.slow.is_some_and(|s| reached(slow, s.rate))
    }

    #[must_use]
    pub(super) const fn with_min_calls(mut self, n: u32) -> Self {
        self.min_calls = Some(if n == 0 { 1 } else { n });
        self
    }

    #[must_use]
    pub(super) const fn open_for(mut self, d: Duration) -> Self {
        self.open_for_nanos = nanos(d);
        self
    }

    #[must_use]
    pub(super) const fn open_for_backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.open_multiplier = if multiplier >= 1.0 { multiplier } else { 1.0 };
        self.open_max_nanos = nanos(max);
        self
    }

    #[must_use]
    pub(super) const fn half_open_failure_rate(mut self, rate: f64) -> Self {
        self.half_open_rate = Some(unit_rate(rate));
        self
    }

    /// How long to stay open after a half-open period failed, when the
    /// previous open time was `previous` nanoseconds: `previous *
    /// multiplier`, at most the larger of the cap and `open_for`, at least
    /// `open_for`.
    pub(super) fn reopen_nanos(&self, previous: u64) -> u64 {
        let base = self.open_for_nanos;
        if self.open_multiplier <= 1.0 {
            return base;
        }
        let cap = self.open_max_nanos.max(base);
        let grown = previous.max(base) as f64 * self.open_multiplier;
        // `as` saturates, and NaN cannot occur: both factors are finite or
        // the product is +inf.
        (grown as u64).clamp(base, cap)
    }

    #[must_use]
    pub(super) const fn half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = clamp(n, 1, PROBE_MAX);
        self
    }

    /// The fewest calls before the rate may trip: as set, but never more
    /// than the window, and the whole window when not set. A time-based
    /// window has no size to bound it: as set, or `DEFAULT_WINDOW`.
    pub(super) const fn min_calls(&self) -> u32 {
        if let Mode::Time | Mode::Throttle = self.mode {
            return match self.min_calls {
                Some(n) => n,
                None => DEFAULT_WINDOW,
            };
        }
        match self.min_calls {
            Some(n) if n < self.window => n,
            _ => self.window,
        }
    }
}

/// `rate` clamped to `0.0..=1.0`, NaN as `1.0`.
const fn unit_rate(rate: f64) -> f64 {
    if rate.is_nan() || rate > 1.0 {
        1.0
    } else if rate < 0.0 {
        0.0
    } else {
        rate
    }
}

/// `d` in nanoseconds, saturating at the longest timed open the state word
/// holds.
pub(super) const fn nanos(d: Duration) -> u64 {
    let nanos = d.as_nanos();
    if nanos > TIME_MAX as u128 {
        TIME_MAX
    } else {
        nanos as u64
    }
}

const fn clamp(n: u32, lo: u32, hi: u32) -> u32 {
    if n < lo {
        lo
    } else if n > hi {
        hi
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_are_clamped_as_documented() {
        let rate = |r: f64| Config::DEFAULT.failure_rate(r, 10).failure_rate;
        assert_eq!(rate(-0.5), 0.0);
        assert_eq!(rate(1.5), 1.0);
        assert_eq!(rate(f64::NAN), 1.0);
        assert_eq!(rate(0.25), 0.25);
        assert_eq!(Config::DEFAULT.failure_rate(0.5, 0).window, 1);
        assert_eq!(
            Config::DEFAULT.failure_rate(0.5, u32::MAX).window,
            MAX_WINDOW
        );
        assert_eq!(
            Config::DEFAULT
                .failure_rate(0.5, 10)
                .with_min_calls(50)
                .min_calls(),
            10
        );
        assert_eq!(
            Config::DEFAULT
                .failure_rate(0.5, 10)
                .with_min_calls(3)
                .min_calls(),
            3
        );
        assert_eq!(
            Config::DEFAULT.open_for(Duration::MAX).open_for_nanos,
            TIME_MAX
        );
        assert_eq!(
            Config::DEFAULT
                .open_for(Duration::from_nanos(7))
                .open_for_nanos,
            7
        );
        assert_eq!(Config::DEFAULT.half_open_probes(0).half_open_probes, 1);
        assert_eq!(
            Config::DEFAULT.half_open_probes(u32::MAX).half_open_probes,
            PROBE_MAX
        );
        assert_eq!(Config::DEFAULT.failure_threshold(0).failure_threshold, 1);
        let half_open = |r: f64| Config::DEFAULT.half_open_failure_rate(r).half_open_rate;
        assert_eq!(half_open(-1.0), Some(0.0));
        assert_eq!(half_open(f64::NAN), Some(1.0));
        assert_eq!(half_open(0.5), Some(0.5));
        let backoff = Config::DEFAULT.open_for_backoff(0.5, Duration::MAX);
        assert_eq!(backoff.open_multiplier, 1.0);
        assert_eq!(backoff.open_max_nanos, TIME_MAX);
        assert_eq!(
            Config::DEFAULT
                .failure_threshold(u32::MAX)
                .failure_threshold,
            COUNT_MAX
        );
    }

    #[test]
    fn throttling_follows_the_sre_formula_with_k_clamped() {
        let config = Config::DEFAULT.adaptive_throttling(2.0);
        assert_eq!(config.mode, Mode::Throttle);
        assert_eq!(config.recorder, Recorder::Throttle);
        assert_eq!(config.period_nanos, 120_000_000_000);
        assert_eq!(config.throttle_probability(0, 0), 0.0);
        assert_eq!(config.throttle_probability(99, 0), 0.99);
        assert_eq!(config.throttle_probability(100, 50), 0.0);
        assert_eq!(config.throttle_probability(100, 60), 0.0);
        assert_eq!(config.throttle_probability(199, 50), 0.495);
        assert_eq!(Config::DEFAULT.adaptive_throttling(0.5).throttle_k, 1.0);
        assert_eq!(
            Config::DEFAULT.adaptive_throttling(f64::NAN).throttle_k,
            2.0
        );
        assert_eq!(Config::DEFAULT.adaptive_throttling(1.5).throttle_k, 1.5);
        assert_eq!(
            config.throttling_window(Duration::ZERO).period_nanos,
            MIN_PERIOD_NANOS
        );
        assert_eq!(
            config
                .throttling_window(Duration::from_secs(30))
                .period_nanos,
            30_000_000_000
        );
        // slow_call does not take it out of throttling.
        let slow = config.slow_call(Duration::from_secs(1), 0.5);
        assert_eq!(slow.recorder, Recorder::Throttle);
        assert!(config.throttles() && !Config::DEFAULT.throttles());
    }

    #[test]
    fn reopen_times_grow_by_the_multiplier_between_open_for_and_the_cap() {
        let s = |n: u64| Duration::from_secs(n).as_nanos() as u64;
        let config = Config::DEFAULT
            .open_for(Duration::from_secs(10))
            .open_for_backoff(2.0, Duration::from_secs(35));
        assert_eq!(config.reopen_nanos(0), s(20));
        assert_eq!(config.reopen_nanos(s(10)), s(20));
        assert_eq!(config.reopen_nanos(s(20)), s(35));
        assert_eq!(config.reopen_nanos(s(35)), s(35));
        // A cap below open_for never shortens it.
        let short_cap = config.open_for_backoff(3.0, Duration::from_secs(1));
        assert_eq!(short_cap.reopen_nanos(s(10)), s(10));
        // No backoff: always open_for.
        let plain = Config::DEFAULT.open_for(Duration::from_secs(10));
        assert_eq!(plain.reopen_nanos(s(40)), s(10));
        // Huge values saturate.
        let huge = config.open_for_backoff(f64::MAX, Duration::MAX);
        assert_eq!(huge.reopen_nanos(s(10)), TIME_MAX);
    }
}
