//! Backoff schedules: how long to wait before each retry.
//!
//! A [`Backoff`] is an [`Iterator`] of delays, as in `backon`, rather than an
//! opaque policy object: a schedule can be previewed with `.take(n)`, asserted
//! on in a test, and fed to any loop, with or without the `#[resilient]`
//! attribute. The attribute's expansion uses the same type through
//! [`Backoff::delay_for_call`], which keeps the per-call state outside the
//! (shared, often `static`) configuration.
//!
//! All arithmetic is done on `u128` nanoseconds and saturates at the cap, so
//! no retry number, base, multiplier or cap can make it panic or overflow.

use std::iter::FusedIterator;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use retry_rules::defaults;

use crate::jitter::Jitter;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// How the un-jittered delay grows from one retry to the next: the
/// attribute's `backoff` key, defined with its names in `retry-rules` so
/// that every door reads and names the same kinds. Public only to
/// `#[resilient]` expansions; users pick one with the [`Backoff`]
/// constructors.
pub use retry_rules::BackoffKind as Strategy;

/// A retry delay schedule: a growth strategy, a cap and a [`Jitter`].
///
/// The delay before retry `n` (`n = 1, 2, ...`, the first attempt is not a
/// retry) is first computed by the strategy, then capped at
/// [`max_delay`](Self::max_delay), then jittered. Jitter never exceeds the cap.
///
/// | constructor | delay before retry `n` |
/// |---|---|
/// | [`exponential(base)`](Self::exponential) | `base * multiplier^(n-1)` |
/// | [`fixed(delay)`](Self::fixed) | `delay` |
/// | [`linear(base)`](Self::linear) | `base * n` |
/// | [`fibonacci(base)`](Self::fibonacci) | `base * fib(n)`, with `fib(1) = fib(2) = 1` |
/// | [`none()`](Self::none) | zero |
///
/// As an [`Iterator`], a `Backoff` yields the jittered delay before retry 1,
/// then retry 2, and so on. **It never ends**: bound it with
/// [`take`](Iterator::take) or by counting attempts.
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{Backoff, Jitter};
///
/// let schedule: Vec<_> = Backoff::exponential(Duration::from_millis(100))
///     .max_delay(Duration::from_millis(500))
///     .jitter(Jitter::None)
///     .take(5)
///     .collect();
/// let ms = |n| Duration::from_millis(n);
/// assert_eq!(schedule, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
/// ```
///
/// Every builder is a `const fn`, so a schedule can live in a `static` and be
/// shared by functions; clone it to iterate:
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{Backoff, Jitter};
///
/// static SLOW: Backoff = Backoff::linear(Duration::from_secs(1))
///     .max_delay(Duration::from_secs(10))
///     .jitter(Jitter::Equal);
///
/// for (n, delay) in SLOW.clone().take(20).enumerate() {
///     let d = SLOW.delay_before_jitter(n as u32 + 1);
///     assert!(delay >= d / 2 && delay <= d && delay <= SLOW.cap());
/// }
/// ```
///
/// # Default
///
/// [`Backoff::new()`] and [`Backoff::default()`] match the attribute's
/// defaults: exponential growth from a 100 ms base with multiplier 2.0, a
/// 20 s cap and [`Jitter::Full`]. The other strategy constructors keep the
/// 20 s cap, the 2.0 multiplier and full jitter.
///
/// # Randomness
///
/// Unless [`with_seed`](Self::with_seed) is used, jitter is drawn from a
/// per-thread generator that [`testing::seed_jitter`](crate::testing::seed_jitter)
/// can seed. A clone carries the iterator's position, decorrelated state and
/// seeded generator, so it continues with the same delays.
#[derive(Debug, Clone)]
pub struct Backoff {
    strategy: Strategy,
    base: Duration,
    max: Duration,
    multiplier: f64,
    jitter: Jitter,
    seed: Option<u64>,
    // Created on the first draw so that `with_seed` stays a `const fn`.
    rng: Option<SmallRng>,
    // The last retry number the iterator yielded; 0 before the first `next`.
    retry: u32,
    // Decorrelated jitter's previous delay; zero means "not yet drawn".
    prev: Duration,
}

impl Backoff {
    /// A schedule of the attribute's defaults (written once, in
    /// `retry-rules`) but for its growth and base.
    const fn with_strategy(strategy: Strategy, base: Duration) -> Self {
        Self {
            strategy,
            base,
            max: defaults::MAX_DELAY,
            multiplier: defaults::MULTIPLIER,
            jitter: defaults::JITTER,
            seed: None,
            rng: None,
            retry: 0,
            prev: Duration::ZERO,
        }
    }

    /// The attribute's default schedule: exponential from 100 ms, multiplier
    /// 2.0, capped at 20 s, with [`Jitter::Full`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// let b = Backoff::new();
    /// assert_eq!(b.base(), Duration::from_millis(100));
    /// assert_eq!(b.cap(), Duration::from_secs(20));
    /// assert_eq!(b.delay_before_jitter(3), Duration::from_millis(400));
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Self::with_strategy(defaults::BACKOFF, defaults::BASE_DELAY)
    }

    /// Exponential growth: `base * multiplier^(n-1)` before retry `n`.
    ///
    /// The multiplier is 2.0 unless set with [`multiplier`](Self::multiplier).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// let b = Backoff::exponential(Duration::from_millis(50));
    /// assert_eq!(b.delay_before_jitter(1), Duration::from_millis(50));
    /// assert_eq!(b.delay_before_jitter(4), Duration::from_millis(400));
    /// ```
    #[must_use]
    pub const fn exponential(base: Duration) -> Self {
        Self::with_strategy(Strategy::Exponential, base)
    }

    /// The same delay before every retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// let b = Backoff::fixed(Duration::from_secs(1));
    /// assert_eq!(b.delay_before_jitter(1), Duration::from_secs(1));
    /// assert_eq!(b.delay_before_jitter(9), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub const fn fixed(delay: Duration) -> Self {
        Self::with_strategy(Strategy::Fixed, delay)
    }

    /// Linear growth: `base * n` before retry `n`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// let b = Backoff::linear(Duration::from_millis(100));
    /// assert_eq!(b.delay_before_jitter(3), Duration::from_millis(300));
    /// ```
    #[must_use]
    pub const fn linear(base: Duration) -> Self {
        Self::with_strategy(Strategy::Linear, base)
    }

    /// Fibonacci growth: `base * fib(n)` before retry `n`, where
    /// `fib(1) = 1, fib(2) = 1, fib(3) = 2, fib(4) = 3, fib(5) = 5, ...`
    ///
    /// The sequence starts at 1, 1 (not 0, 1) so that the first retry waits
    /// `base`, like every other strategy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{Backoff, Jitter};
    ///
    /// let ms: Vec<u128> = Backoff::fibonacci(Duration::from_millis(100))
    ///     .jitter(Jitter::None)
    ///     .take(6)
    ///     .map(|d| d.as_millis())
    ///     .collect();
    /// assert_eq!(ms, [100, 100, 200, 300, 500, 800]);
    /// ```
    #[must_use]
    pub const fn fibonacci(base: Duration) -> Self {
        Self::with_strategy(Strategy::Fibonacci, base)
    }

    /// No delay at all: every retry happens at once, whatever the jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// assert!(Backoff::none().take(10).all(|d| d == Duration::ZERO));
    /// ```
    #[must_use]
    pub const fn none() -> Self {
        Self::with_strategy(Strategy::None, Duration::ZERO)
    }

    /// Caps every delay at `cap` (20 s by default).
    ///
    /// The cap applies to the un-jittered delay, and jitter never exceeds it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// let b = Backoff::exponential(Duration::from_secs(1)).max_delay(Duration::from_secs(5));
    /// assert_eq!(b.delay_before_jitter(10), Duration::from_secs(5));
    /// assert!(b.take(100).all(|d| d <= Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub const fn max_delay(mut self, cap: Duration) -> Self {
        self.max = cap;
        self
    }

    /// Sets the growth factor of an exponential schedule (2.0 by default).
    ///
    /// Only [`exponential`](Self::exponential) schedules use it. A delay never
    /// shrinks from one retry to the next, so a factor below 1.0, or NaN, is
    /// taken as 1.0 (a constant delay); an infinite one jumps to the cap from
    /// the second retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// let b = Backoff::exponential(Duration::from_millis(100)).multiplier(1.5);
    /// assert_eq!(b.delay_before_jitter(3), Duration::from_millis(225));
    /// ```
    #[must_use]
    pub const fn multiplier(mut self, m: f64) -> Self {
        // Written as `>=` so that NaN, which compares false, also falls back.
        self.multiplier = if m >= 1.0 { m } else { 1.0 };
        self
    }

    /// Sets how each delay is randomised ([`Jitter::Full`] by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{Backoff, Jitter};
    ///
    /// let exact = Backoff::fixed(Duration::from_secs(1)).jitter(Jitter::None);
    /// assert!(exact.take(3).all(|d| d == Duration::from_secs(1)));
    /// ```
    #[must_use]
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Makes the iterator draw its jitter from its own generator seeded with
    /// `seed`, instead of the per-thread one, so the schedule it yields is the
    /// same on every run and thread.
    ///
    /// Setting a seed restarts the random stream; it does not affect the
    /// delays `#[resilient]` functions draw, which come from the per-thread
    /// generator (seed that with
    /// [`testing::seed_jitter`](crate::testing::seed_jitter)).
    ///
    /// ```
    /// use retry_runtime::Backoff;
    ///
    /// let a: Vec<_> = Backoff::new().with_seed(7).take(8).collect();
    /// let b: Vec<_> = Backoff::new().with_seed(7).take(8).collect();
    /// assert_eq!(a, b);
    /// ```
    #[must_use]
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.rng = None;
        self
    }

    /// The same schedule with another growth strategy, keeping the base,
    /// cap, multiplier and jitter: the attribute sets each key on its own.
    pub(crate) const fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The same schedule from another first delay.
    pub(crate) const fn base_delay(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// The first retry's delay before jitter, as given to the constructor
    /// (zero for [`none`](Self::none)).
    #[must_use]
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The cap on one delay, set with [`max_delay`](Self::max_delay).
    #[must_use]
    pub const fn cap(&self) -> Duration {
        self.max
    }

    /// The capped delay before retry `retry` (1-based), before jitter.
    ///
    /// Retry 0 is treated as retry 1. Any `retry`, up to `u32::MAX`, is valid:
    /// a delay that would grow past the cap is the cap.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Backoff;
    ///
    /// let b = Backoff::new();
    /// assert_eq!(b.delay_before_jitter(0), Duration::from_millis(100));
    /// assert_eq!(b.delay_before_jitter(u32::MAX), Duration::from_secs(20));
    /// ```
    #[must_use]
    pub fn delay_before_jitter(&self, retry: u32) -> Duration {
        nanos_to_duration(self.capped_nanos(retry))
    }

    /// Jittered delay before retry `retry` (1-based) for one call, whose
    /// decorrelated state is `prev`.
    ///
    /// The caller starts `prev` at `Duration::ZERO`, meaning "not yet set",
    /// which decorrelated jitter reads as the base delay. Draws from the
    /// thread's generator only when there is something to randomise (jitter is
    /// not `None` and the delay is non-zero), so a configuration without
    /// jitter never touches it.
    pub(crate) fn delay_for_call(&self, retry: u32, prev: &mut Duration) -> Duration {
        self.jittered(retry, prev, |lo, hi| {
            crate::rng::with_thread_rng(|rng| sample(rng, lo, hi))
        })
    }

    /// The capped, un-jittered delay in nanoseconds.
    fn capped_nanos(&self, retry: u32) -> u128 {
        let n = retry.max(1);
        let base = self.base.as_nanos();
        let cap = self.max.as_nanos();
        // Zero is a fixed point of every strategy; returning early also keeps
        // `0 * inf` (NaN) out of the exponential branch and bounds the
        // Fibonacci loop below.
        if base == 0 || cap == 0 {
            return 0;
        }
        let delay = match self.strategy {
            Strategy::None => 0,
            Strategy::Fixed => base,
            Strategy::Linear => base.saturating_mul(u128::from(n)),
            Strategy::Exponential => {
                let exponent = n - 1;
                if exponent == 0 {
                    // Exact even for bases too large for an f64 to hold in ns.
                    base
                } else {
                    // An exponent past i32::MAX with a multiplier above 1.0 is
                    // infinite anyway; with exactly 1.0 it is 1.0 either way.
                    let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
                    // Never NaN: the base is not zero here, and `multiplier`
                    // turns NaN into 1.0.
                    let nanos = base as f64 * self.multiplier.powi(exponent);
                    if nanos >= cap as f64 {
                        return cap;
                    }
                    // Above 2^53 ns an f64 cannot hold the base exactly, and
                    // rounding could make this delay shorter than the first.
                    (nanos.round() as u128).max(base)
                }
            }
            Strategy::Fibonacci => {
                let (mut prev, mut fib) = (1u128, 1u128);
                // base >= 1 ns and cap < 2^95 ns (Duration::MAX), so the loop
                // reaches the cap within ~140 steps even for retry u32::MAX.
                for _ in 2..n {
                    (prev, fib) = (fib, prev.saturating_add(fib));
                    if base.saturating_mul(fib) >= cap {
                        return cap;
                    }
                }
                base.saturating_mul(fib)
            }
        };
        delay.min(cap)
    }

    /// Applies the jitter to the delay before `retry`, calling `draw(lo, hi)`
    /// for a uniform value in `lo..=hi` only when `lo < hi`.
    fn jittered(
        &self,
        retry: u32,
        prev: &mut Duration,
        draw: impl FnOnce(u128, u128) -> u128,
    ) -> Duration {
        let delay = self.capped_nanos(retry);
        if delay == 0 {
            return Duration::ZERO;
        }
        let cap = self.max.as_nanos();
        let (lo, hi) = match self.jitter {
            Jitter::None => (delay, delay),
            Jitter::Full => (0, delay),
            Jitter::Equal => (delay / 2, delay),
            Jitter::Proportional(f) => {
                // Clamp into [0, 1]; NaN compares false and means no spread.
                let f = if f > 0.0 { f.min(1.0) } else { 0.0 };
                let spread = ((delay as f64 * f) as u128).min(delay);
                (delay - spread, delay + spread)
            }
            Jitter::Decorrelated => {
                let base = self.base.as_nanos();
                let last = if prev.is_zero() {
                    base
                } else {
                    prev.as_nanos()
                };
                (base, last.saturating_mul(3).max(base))
            }
        };
        let nanos = if lo < hi { draw(lo, hi) } else { lo }.min(cap);
        let delay = nanos_to_duration(nanos);
        if matches!(self.jitter, Jitter::Decorrelated) {
            *prev = delay;
        }
        delay
    }
}

/// The keys of the delay schedule, each the builder of its name above.
/// `Settings` (what `#[resilient]` expansions build) and `Policy` pass each
/// on from this list (`settings.rs` and `policy/mod.rs` expand it with
/// their own body), so that a schedule key is a builder and a line here.
/// Each line is the key, the type it takes, and `Policy`'s documentation
/// of it.
macro_rules! schedule_keys {
    ($define:ident) => {
        $define! {
            /// `base_delay`: the first retry's delay before jitter (100 ms).
            base_delay(Duration),
            /// `max_delay`: the cap on one delay, and on a `retry_after` hint (20 s).
            max_delay(Duration),
            /// `multiplier`: the growth of an exponential schedule (2.0).
            multiplier(f64),
            /// `jitter` ([`Jitter::Full`]).
            jitter(Jitter),
        }
    };
}
pub(crate) use schedule_keys;

impl Default for Backoff {
    /// Same as [`Backoff::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    /// The jittered delay before the next retry: retry 1 on the first call,
    /// then 2, and so on. Never returns `None`.
    fn next(&mut self) -> Option<Duration> {
        self.retry = self.retry.saturating_add(1);
        let mut prev = self.prev;
        let delay = match self.seed {
            None => self.delay_for_call(self.retry, &mut prev),
            Some(seed) => {
                let mut rng = self.rng.take();
                let delay = self.jittered(self.retry, &mut prev, |lo, hi| {
                    let rng = rng.get_or_insert_with(|| SmallRng::seed_from_u64(seed));
                    sample(rng, lo, hi)
                });
                self.rng = rng;
                delay
            }
        };
        self.prev = prev;
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl FusedIterator for Backoff {}

/// A uniform value in `lo..=hi` (`lo <= hi`).
fn sample(rng: &mut SmallRng, lo: u128, hi: u128) -> u128 {
    // Realistic delays fit in u64 nanoseconds (584 years); sampling a u64 takes
    // one word from the generator instead of two.
    match (u64::try_from(lo), u64::try_from(hi)) {
        (Ok(lo), Ok(hi)) => u128::from(rng.random_range(lo..=hi)),
        _ => rng.random_range(lo..=hi),
    }
}

/// `Duration::from_nanos` for u128, saturating at `Duration::MAX`.
fn nanos_to_duration(nanos: u128) -> Duration {
    let subsec = (nanos % NANOS_PER_SEC) as u32;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, subsec),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delay_for_call_without_jitter_is_exact() {
        let b = Backoff::exponential(100 * MS).jitter(Jitter::None);
        let mut prev = Duration::ZERO;
        let got: Vec<_> = (1..=5).map(|n| b.delay_for_call(n, &mut prev)).collect();
        assert_eq!(got, [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1600 * MS]);
        // Only decorrelated jitter keeps state.
        assert_eq!(prev, Duration::ZERO);
    }

    #[test]
    fn delay_for_call_carries_decorrelated_prev() {
        let b = Backoff::exponential(100 * MS)
            .max_delay(Duration::from_secs(60))
            .jitter(Jitter::Decorrelated);
        crate::rng::seed_thread_rng(3);
        let mut prev = Duration::ZERO;
        for n in 1..=50 {
            let before = if prev.is_zero() { 100 * MS } else { prev };
            let delay = b.delay_for_call(n, &mut prev);
            assert_eq!(prev, delay);
            assert!(delay >= 100 * MS && delay <= (before * 3).min(Duration::from_secs(60)));
        }
    }

    #[test]
    fn decorrelated_prev_is_reused_not_restarted() {
        // With prev far above the base, the draw's range is [base, 3 * prev];
        // a restart from the base would stay within [base, 3 * base].
        let b = Backoff::exponential(MS)
            .max_delay(Duration::from_secs(3600))
            .jitter(Jitter::Decorrelated);
        crate::rng::seed_thread_rng(11);
        let mut prev = Duration::from_secs(100);
        let delay = b.delay_for_call(7, &mut prev);
        assert_eq!(prev, delay);
        assert!(delay > 3 * MS && delay <= Duration::from_secs(300));
    }

    #[test]
    fn no_jitter_and_zero_delays_do_not_draw() {
        let mut drew = false;
        let mut prev = Duration::ZERO;
        let exact = Backoff::fixed(MS).jitter(Jitter::None);
        exact.jittered(1, &mut prev, |lo, _| {
            drew = true;
            lo
        });
        let zero = Backoff::none().jitter(Jitter::Full);
        zero.jittered(1, &mut prev, |lo, _| {
            drew = true;
            lo
        });
        assert!(!drew);
    }

    #[test]
    fn a_zero_base_stays_zero_even_with_an_infinite_multiplier() {
        // 0 × ∞ is NaN, which would otherwise read as "past the cap".
        let b = Backoff::exponential(Duration::ZERO)
            .multiplier(f64::INFINITY)
            .jitter(Jitter::None);
        assert_eq!(b.delay_before_jitter(2), Duration::ZERO);
        assert_eq!(b.delay_before_jitter(u32::MAX), Duration::ZERO);
        // A Fibonacci schedule from zero must not walk to retry u32::MAX.
        let f = Backoff::fibonacci(Duration::ZERO).jitter(Jitter::None);
        assert_eq!(f.delay_before_jitter(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn a_delay_that_fits_in_u64_nanoseconds_draws_one_word() {
        use rand::RngCore;
        // Sampling a u64 takes one word from the generator, a u128 two: the
        // cheaper draw is kept whenever the delay allows it.
        let mut sampled = SmallRng::seed_from_u64(9);
        sample(&mut sampled, 0, u128::from(u64::MAX));
        let mut reference = SmallRng::seed_from_u64(9);
        reference.next_u64();
        assert_eq!(sampled.next_u64(), reference.next_u64());
    }

    #[test]
    fn nanos_to_duration_saturates() {
        assert_eq!(nanos_to_duration(u128::MAX), Duration::MAX);
        assert_eq!(nanos_to_duration(Duration::MAX.as_nanos()), Duration::MAX);
        assert_eq!(
            nanos_to_duration(1_500_000_001),
            Duration::new(1, 500_000_001)
        );
    }
}
