//! What the builders set: the algorithm, the limit's bounds, how samples
//! are gathered and judged. Plain data, `Copy` and `const`, so that a limit
//! built in a `static` carries it by value.
//!
//! Each setter applies the clamping its public builder documents; the
//! builders in `mod.rs` only forward to them.

use std::time::Duration;

/// The controller that turns an interval's samples into a new limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    /// `gradient.rs`: Envoy's gradient on the no-load and the sampled
    /// latency, with a square-root headroom.
    Gradient,
    /// `aimd.rs`: additive increase, multiplicative decrease on drops.
    Aimd,
    /// `vegas.rs`: TCP Vegas's estimate of the queue.
    Vegas,
}

/// The largest limit: far above any real concurrency, and small enough that
/// the in-flight count packed next to it never overflows.
pub(super) const LIMIT_MAX: u32 = 1 << 30;

#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub(super) algorithm: Algorithm,
    /// The limit to start from (AIMD), or to take once the first no-load
    /// latency is known (gradient, Vegas).
    pub(super) initial: u32,
    pub(super) min: u32,
    pub(super) max: u32,
    /// How often the limit is updated from the samples gathered since.
    pub(super) interval_nanos: u64,
    /// The fewest samples an update needs; fewer, and the interval is
    /// stretched until they are there.
    pub(super) min_samples: u32,
    /// The latency an interval is judged by: this quantile of its samples.
    pub(super) percentile: f64,
    /// Gradient: the share of the no-load latency a sample may exceed it
    /// by before the limit shrinks.
    pub(super) buffer: f64,
    /// AIMD: the factor a drop multiplies the limit by.
    pub(super) backoff: f64,
    /// A success slower than this counts as a drop (0: none).
    pub(super) drop_above_nanos: u64,
    /// Gradient and Vegas: how often the no-load latency is measured again,
    /// before jitter.
    pub(super) min_rtt_every_nanos: u64,
    /// The jitter added to that period: up to this share of it.
    pub(super) min_rtt_jitter: f64,
    /// The samples a measurement of the no-load latency takes.
    pub(super) min_rtt_samples: u32,
    /// The limit held while measuring it.
    pub(super) min_rtt_limit: u32,
    pub(super) name: &'static str,
}

/// Defaults, each with its reason in `docs/design.md` ("Adaptive
/// concurrency").
pub(super) const DEFAULT_INITIAL: u32 = 20;
pub(super) const DEFAULT_MIN: u32 = 1;
pub(super) const DEFAULT_MAX: u32 = 200;
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_MIN_SAMPLES: u32 = 10;
const DEFAULT_PERCENTILE: f64 = 0.9;
const DEFAULT_BUFFER: f64 = 0.0;
const DEFAULT_BACKOFF: f64 = 0.9;
/// AIMD's drop threshold, as Netflix's `AIMDLimit` timeout.
const DEFAULT_AIMD_DROP_ABOVE: Duration = Duration::from_secs(5);
const DEFAULT_MIN_RTT_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_MIN_RTT_JITTER: f64 = 0.15;
const DEFAULT_MIN_RTT_SAMPLES: u32 = 50;
const DEFAULT_MIN_RTT_LIMIT: u32 = 3;
/// The shortest interval: below a millisecond tokio's timer cannot tell
/// intervals apart, and an update per sample is what `min_samples` is for.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl Config {
    pub(super) const fn new(algorithm: Algorithm) -> Self {
        Config {
            algorithm,
            initial: DEFAULT_INITIAL,
            min: DEFAULT_MIN,
            max: DEFAULT_MAX,
            interval_nanos: nanos(DEFAULT_INTERVAL),
            min_samples: DEFAULT_MIN_SAMPLES,
            percentile: DEFAULT_PERCENTILE,
            buffer: DEFAULT_BUFFER,
            backoff: DEFAULT_BACKOFF,
            drop_above_nanos: match algorithm {
                Algorithm::Aimd => nanos(DEFAULT_AIMD_DROP_ABOVE),
                Algorithm::Gradient | Algorithm::Vegas => 0,
            },
            min_rtt_every_nanos: nanos(DEFAULT_MIN_RTT_EVERY),
            min_rtt_jitter: DEFAULT_MIN_RTT_JITTER,
            min_rtt_samples: DEFAULT_MIN_RTT_SAMPLES,
            min_rtt_limit: DEFAULT_MIN_RTT_LIMIT,
            name: "adaptive_limit",
        }
    }

    /// Whether the algorithm needs the no-load latency (and so measures it
    /// at a low limit now and then).
    pub(super) const fn measures_min_rtt(&self) -> bool {
        !matches!(self.algorithm, Algorithm::Aimd)
    }

    #[must_use]
    pub(super) const fn initial(mut self, n: u32) -> Self {
        self.initial = clamp(n, 1, LIMIT_MAX);
        self
    }

    #[must_use]
    pub(super) const fn min(mut self, n: u32) -> Self {
        self.min = clamp(n, 1, LIMIT_MAX);
        self
    }

    #[must_use]
    pub(super) const fn max(mut self, n: u32) -> Self {
        self.max = clamp(n, 1, LIMIT_MAX);
        self
    }

    #[must_use]
    pub(super) const fn interval(mut self, d: Duration) -> Self {
        let n = nanos(d);
        self.interval_nanos = if n < nanos(MIN_INTERVAL) {
            nanos(MIN_INTERVAL)
        } else {
            n
        };
        self
    }

    #[must_use]
    pub(super) const fn min_samples(mut self, n: u32) -> Self {
        self.min_samples = if n == 0 { 1 } else { n };
        self
    }

    #[must_use]
    pub(super) const fn percentile(mut self, p: f64) -> Self {
        self.percentile = if p.is_nan() || p > 1.0 {
            1.0
        } else if p < 0.01 {
            0.01
        } else {
            p
        };
        self
    }

    #[must_use]
    pub(super) const fn buffer(mut self, b: f64) -> Self {
        self.buffer = if b.is_nan() || b < 0.0 {
            0.0
        } else if b > 10.0 {
            10.0
        } else {
            b
        };
        self
    }

    #[must_use]
    pub(super) const fn backoff(mut self, ratio: f64) -> Self {
        self.backoff = if ratio.is_nan() || ratio < 0.1 {
            0.1
        } else if ratio > 0.99 {
            0.99
        } else {
            ratio
        };
        self
    }

    #[must_use]
    pub(super) const fn drop_above(mut self, d: Option<Duration>) -> Self {
        self.drop_above_nanos = match d {
            Some(d) if nanos(d) > 0 => nanos(d),
            // A zero threshold would drop every sample; "none" instead.
            _ => 0,
        };
        self
    }

    #[must_use]
    pub(super) const fn min_rtt_every(mut self, d: Duration) -> Self {
        let n = nanos(d);
        self.min_rtt_every_nanos = if n < self.interval_nanos {
            self.interval_nanos
        } else {
            n
        };
        self
    }

    #[must_use]
    pub(super) const fn min_rtt_samples(mut self, n: u32) -> Self {
        self.min_rtt_samples = if n == 0 { 1 } else { n };
        self
    }

    #[must_use]
    pub(super) const fn min_rtt_limit(mut self, n: u32) -> Self {
        self.min_rtt_limit = clamp(n, 1, LIMIT_MAX);
        self
    }

    /// The bounds as used: `max` at least `min`.
    pub(super) const fn bounds(&self) -> (u32, u32) {
        let max = if self.max < self.min {
            self.min
        } else {
            self.max
        };
        (self.min, max)
    }

    /// `n` within the bounds.
    pub(super) const fn bounded(&self, n: u32) -> u32 {
        let (min, max) = self.bounds();
        clamp(n, min, max)
    }

    /// The limit a fresh instance publishes: the measuring limit for the
    /// algorithms that start by measuring the no-load latency, `initial`
    /// for the others.
    pub(super) const fn first_limit(&self) -> u32 {
        if self.measures_min_rtt() {
            self.bounded(self.min_rtt_limit)
        } else {
            self.bounded(self.initial)
        }
    }

    /// `estimate` as a published limit: rounded down, within the bounds.
    pub(super) fn publishable(&self, estimate: f64) -> u32 {
        // `as` saturates (NaN gives 0), and the bounds clamp what it gives.
        self.bounded(estimate as u32)
    }
}

/// `d` in nanoseconds, saturating.
pub(super) const fn nanos(d: Duration) -> u64 {
    let n = d.as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
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
    fn settings_are_clamped_as_documented() {
        let c = Config::new(Algorithm::Gradient);
        assert_eq!(c.initial(0).initial, 1);
        assert_eq!(c.max(u32::MAX).max, LIMIT_MAX);
        assert_eq!(c.min(0).min, 1);
        assert_eq!(c.min(10).max(5).bounds(), (10, 10));
        assert_eq!(c.min(2).max(9).bounded(1), 2);
        assert_eq!(c.min(2).max(9).bounded(20), 9);
        assert_eq!(c.min(2).max(9).bounded(5), 5);
        assert_eq!(c.interval(Duration::ZERO).interval_nanos, 1_000_000);
        assert_eq!(
            c.interval(Duration::from_secs(1)).interval_nanos,
            1_000_000_000
        );
        assert_eq!(c.percentile(f64::NAN).percentile, 1.0);
        assert_eq!(c.percentile(2.0).percentile, 1.0);
        assert_eq!(c.percentile(0.0).percentile, 0.01);
        assert_eq!(c.percentile(0.5).percentile, 0.5);
        assert_eq!(c.buffer(-1.0).buffer, 0.0);
        assert_eq!(c.buffer(100.0).buffer, 10.0);
        assert_eq!(c.buffer(0.25).buffer, 0.25);
        assert_eq!(c.backoff(2.0).backoff, 0.99);
        assert_eq!(c.backoff(0.0).backoff, 0.1);
        assert_eq!(c.backoff(0.5).backoff, 0.5);
        assert_eq!(c.drop_above(Some(Duration::ZERO)).drop_above_nanos, 0);
        assert_eq!(
            c.drop_above(Some(Duration::from_nanos(5))).drop_above_nanos,
            5
        );
        assert_eq!(c.drop_above(None).drop_above_nanos, 0);
        assert_eq!(c.min_samples(0).min_samples, 1);
        assert_eq!(c.min_rtt_samples(0).min_rtt_samples, 1);
        assert_eq!(c.min_rtt_limit(0).min_rtt_limit, 1);
        assert_eq!(
            c.min_rtt_every(Duration::ZERO).min_rtt_every_nanos,
            c.interval_nanos
        );
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }

    #[test]
    fn the_first_limit_is_the_measuring_one_unless_aimd() {
        let gradient = Config::new(Algorithm::Gradient).initial(20);
        assert_eq!(gradient.first_limit(), DEFAULT_MIN_RTT_LIMIT);
        assert_eq!(gradient.min(5).first_limit(), 5);
        let aimd = Config::new(Algorithm::Aimd).initial(20);
        assert_eq!(aimd.first_limit(), 20);
        assert_eq!(aimd.max(10).first_limit(), 10);
        assert_eq!(aimd.drop_above_nanos, 5_000_000_000);
        assert_eq!(Config::new(Algorithm::Vegas).drop_above_nanos, 0);
    }

    #[test]
    fn estimates_are_rounded_down_within_the_bounds() {
        let c = Config::new(Algorithm::Gradient).min(2).max(50);
        assert_eq!(c.publishable(7.9), 7);
        assert_eq!(c.publishable(0.5), 2);
        assert_eq!(c.publishable(f64::NAN), 2);
        assert_eq!(c.publishable(1e12), 50);
    }
}
