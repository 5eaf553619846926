//! What the builders set: how the breaker trips, how long it stays open,
//! how many probes it admits. Plain data, `Copy` and `const`, so that a
//! breaker built in a `static` carries it by value.
//!
//! Each setter here applies the clamping its public builder documents; the
//! builders in `mod.rs` only forward to them.

use std::time::Duration;

use super::state::{COUNT_MAX, CircuitState, PROBE_MAX, TIME_MAX};
use super::window::MAX_WINDOW;

/// Consecutive failures that trip a default breaker.
pub(super) const DEFAULT_THRESHOLD: u32 = 5;
/// How long a default breaker stays open.
const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);
/// The failure-rate window when none is given; public as
/// `CircuitBreaker::DEFAULT_WINDOW`.
pub(super) const DEFAULT_WINDOW: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Consecutive,
    Rate,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub(super) mode: Mode,
    pub(super) failure_threshold: u32,
    pub(super) failure_rate: f64,
    pub(super) window: u32,
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
        failure_threshold: DEFAULT_THRESHOLD,
        failure_rate: 0.5,
        window: DEFAULT_WINDOW,
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
        self
    }

    #[must_use]
    pub(super) const fn failure_rate(mut self, rate: f64, window: u32) -> Self {
        self.mode = Mode::Rate;
        self.failure_rate = unit_rate(rate);
        self.window = clamp(window, 1, MAX_WINDOW);
        self
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
    /// than the window, and the whole window when not set.
    pub(super) const fn min_calls(&self) -> u32 {
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
