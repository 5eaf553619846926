//! Rate limiter: a lock-free GCRA token bucket.
//!
//! A [`RateLimiter`] admits `n` tokens per period with bursts of up to
//! `burst` tokens. It implements GCRA, the generic cell rate algorithm: the
//! whole state is one `AtomicU64` holding the *theoretical arrival time*
//! (TAT), the instant at which the bucket would be full again, in nanoseconds
//! since a per-instance epoch. Taking `k` tokens at time `t` moves the TAT to
//! `max(TAT, t) + k * interval` and is allowed when that lands no further than
//! `burst * interval` ahead of `t`; one compare-and-swap publishes it. No
//! background refill, no lock, no allocation.
//!
//! # Why not `governor`
//!
//! [`governor`](https://docs.rs/governor) is the usual choice and uses the
//! same algorithm, but it does not fit this crate's contract:
//!
//! - **`static`s.** Shared limiters are declared as
//!   `static LIMIT: RateLimiter = RateLimiter::per_second(10);`. A governor
//!   limiter is built at run time (`RateLimiter::direct(quota)` creates its
//!   clock and state), so it would need a `LazyLock` and a different API.
//! - **Paused clock.** Every delay in this crate follows tokio's clock so that
//!   `#[tokio::test(start_paused = true)]` tests are deterministic. governor
//!   reads its own clocks (quanta or `std::time::Instant`) and its async waits
//!   use their own timer, so virtual time would not move it.
//! - **Weighted, bounded waits.** `acquire_timeout` must refuse at once when
//!   the wait it would need exceeds `max_wait`, instead of sleeping in vain,
//!   and a cancelled wait must not consume a token.
//!
//! `benches/primitives.rs` measures it against governor's direct limiter
//! (`BENCHMARKS.md`, "Primitives"). Both read the clock once and do one
//! compare-and-swap, and the clock read is most of either: about 23 ns of
//! an allowed take's 31 ns on the benchmark machine. Ours reads tokio's
//! clock, so that a paused test clock drives it; that costs one atomic load
//! (tokio's "was the clock ever paused" flag) and two calls more than std's
//! read, about 0.5 ns (47 instructions against 34), and is the cheapest read
//! that follows the paused clock. The rest of a take is cheaper than
//! governor's: nanoseconds since the epoch in `u64` (not `as_nanos`'s 128
//! bits), the capacity computed once by the builders, and no capacity check
//! when the bucket is full, as it is whenever calls come no faster than
//! the rate. An allowed take is about 140 instructions against governor's
//! 160 (a refused one 146 against 155), about 0.96x its time on one thread
//! and on two.
//!
//! How waits behave (no reservation, hence cancel safety but no queue) and
//! which clock they follow is documented on [`RateLimiter`] itself, since
//! users see that page and not this module's.
//!
//! ```
//! use retry_runtime::RateLimiter;
//!
//! // 10 calls a second on average, up to 20 at once after a quiet spell.
//! static API: RateLimiter = RateLimiter::per_second(10).burst(20);
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! API.acquire().await;
//! assert!(API.try_acquire());
//! # }
//! ```

use crate::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{InsufficientCapacity, Rejected};
use crate::sync::const_fn;

const NANOS_PER_SEC: u64 = 1_000_000_000;

mod check;
mod pause;
mod quota;
#[cfg(feature = "redis")]
mod shared;

pub use check::NotUntil;
pub use quota::Quota;

/// Admits at most `n` tokens per period, in bursts of at most `burst`.
///
/// Each attempt takes one token ([`try_acquire`](RateLimiter::try_acquire),
/// [`acquire`](RateLimiter::acquire), ...); heavier operations can take
/// several at once ([`try_acquire_n`](RateLimiter::try_acquire_n),
/// [`acquire_n`](RateLimiter::acquire_n)). The bucket starts full and refills
/// continuously, one token every `period / n`; the period can be any
/// [`Duration`] ([`per_period`](RateLimiter::per_period)).
///
/// # The calls
///
/// | | one token | `n` tokens |
/// |---|---|---|
/// | now or never | [`try_acquire`](RateLimiter::try_acquire) `-> bool` | [`try_acquire_n`](RateLimiter::try_acquire_n) `-> bool` |
/// | now, or when | [`check`](RateLimiter::check) | [`check_n`](RateLimiter::check_n) |
/// | wait | [`acquire`](RateLimiter::acquire) | [`acquire_n`](RateLimiter::acquire_n) |
/// | wait up to `max_wait` | [`acquire_timeout`](RateLimiter::acquire_timeout) | [`acquire_n_timeout`](RateLimiter::acquire_n_timeout) |
/// | block the thread | [`acquire_blocking`](RateLimiter::acquire_blocking) | [`acquire_n_blocking`](RateLimiter::acquire_n_blocking) |
/// | block up to `max_wait` | [`acquire_blocking_timeout`](RateLimiter::acquire_blocking_timeout) | [`acquire_n_blocking_timeout`](RateLimiter::acquire_n_blocking_timeout) |
///
/// The weighted calls, except `try_acquire_n`, fail at once with
/// [`InsufficientCapacity`] when `n` exceeds the burst, since no wait could
/// ever admit it. Those that can also fail for want of time (`check_n`,
/// `acquire_n_timeout`, `acquire_n_blocking_timeout`) return it as the
/// outer error and [`NotUntil`] or [`Rejected`] as the inner one, as
/// governor's `check_n` does: `limiter.acquire_n_timeout(n, max_wait).await??`
/// in a function returning `io::Result` propagates either.
///
/// All constructors are `const fn`, so a limiter can be a `static` shared by
/// several functions, e.g. through `#[resilient(rate_limit = &API)]`. The
/// limiter is lock-free and usable from async and sync code alike.
///
/// ```
/// use retry_runtime::RateLimiter;
///
/// static SEARCH: RateLimiter = RateLimiter::per_minute(30).burst(5);
///
/// for _ in 0..5 {
///     assert!(SEARCH.try_acquire());
/// }
/// assert!(!SEARCH.try_acquire()); // the burst is spent; one token every 2s
/// ```
///
/// # Waiting and fairness
///
/// Waits reserve nothing: a waiter computes how long until enough tokens are
/// available, sleeps that long, and then competes for them again with one
/// compare-and-swap. That is what makes every wait cancel-safe (a dropped
/// future has taken nothing, so it has nothing to give back). The price is
/// fairness: there is no queue, so a caller arriving just as tokens become
/// available can take them ahead of a waiter that has slept longer, and
/// under sustained contention a waiter may sleep more than once. `max_wait`
/// still bounds the total wait.
///
/// # Time
///
/// The clock is read through [`tokio::time::Instant`], so tests on tokio's
/// paused clock drive refills; async waits sleep with [`tokio::time::sleep`]
/// and blocking waits sleep the thread. Outside a paused runtime tokio's
/// clock is the monotonic wall clock, so async and blocking callers can share
/// one limiter. (Blocking callers and a *paused* test clock should not share a
/// limiter: the paused clock does not follow the wall clock.)
///
/// Async waits end on tokio's 1ms timer tick, never early. GCRA gives no
/// credit for arriving late, so with `burst(1)` and an interval that is not a
/// whole number of milliseconds a paced waiter runs up to 1ms per token below
/// the configured rate; a larger burst absorbs the rounding.
#[derive(Debug)]
pub struct RateLimiter {
    /// Nanoseconds per token, at least 1.
    interval_ns: u64,
    /// `interval_ns * burst`, saturated: how far ahead of now a take may
    /// push the TAT. Kept next to the burst (both set by the builders) so
    /// that a take does not multiply them again.
    capacity_ns: u64,
    /// Bucket size in tokens, at least 1.
    burst: u32,
    /// Theoretical arrival time, in nanoseconds since `epoch`.
    tat: AtomicU64,
    /// Set on first use, because `const fn` cannot read a clock; a per-instance
    /// epoch also keeps the nanosecond counter small enough for a `u64`
    /// (584 years). A reading of tokio's clock, kept as the `std` instant it
    /// wraps so that a take calls std's subtraction directly.
    epoch: OnceLock<std::time::Instant>,
    /// The longest pause a `Retry-After` hint may impose on every caller
    /// (`pause_on_retry_after`); zero when hints pause no one.
    max_pause_ns: u64,
    /// Redis, the key and the lease when shared (`.shared(&REDIS, key)`):
    /// then `take` and the waits go through `shared.rs`, and the GCRA above
    /// serves only the `Fallback::Local` policy.
    #[cfg(feature = "redis")]
    shared: shared::Shared,
}

impl RateLimiter {
    const_fn! {
        /// `n` tokens per `period`, for any period (`250ms`, `10s`, a day);
        /// the burst defaults to `n`. The other constructors are this with a
        /// fixed period, and an inline `rate_limit = "N/s"` builds the same.
        /// A `const fn`, so any period fits in a `static`.
        ///
        /// Neither argument panics: `n = 0` is treated as `1` (a limiter that
        /// never admits anything would make every caller wait forever; the
        /// `#[resilient]` attribute rejects a zero rate at compile time), and
        /// a zero `period` as 1 ns. Tokens are accounted in whole nanoseconds,
        /// rounded so that the limiter never admits more than asked: a rate
        /// above one token per nanosecond (10⁹ per second) behaves as one per
        /// nanosecond, and periods beyond 584 years are 584 years.
        ///
        /// ```
        /// use std::time::Duration;
        /// use retry_runtime::RateLimiter;
        ///
        /// // 5 calls every 10 seconds (one every 2 s), at most 5 at once.
        /// static REPORTS: RateLimiter = RateLimiter::per_period(5, Duration::from_secs(10));
        ///
        /// assert!(REPORTS.try_acquire_n(5));
        /// assert!(!REPORTS.try_acquire());
        /// ```
        #[must_use]
        pub fn per_period(n: u32, period: Duration) -> Self {
            let n = if n == 0 { 1 } else { n };
            let period_ns = period.as_nanos();
            let period_ns = if period_ns == 0 {
                1
            } else if period_ns > u64::MAX as u128 {
                u64::MAX
            } else {
                period_ns as u64
            };
            // Rounding the interval up errs on the side of admitting slightly
            // less than the configured rate, never more; it is at least 1
            // because the period is.
            let interval_ns = period_ns.div_ceil(n as u64);
            RateLimiter {
                interval_ns,
                capacity_ns: interval_ns.saturating_mul(n as u64),
                burst: n,
                tat: AtomicU64::new(0),
                epoch: OnceLock::new(),
                max_pause_ns: 0,
                #[cfg(feature = "redis")]
                shared: shared::Shared::new(),
            }
        }
    }

    const_fn! {
        /// `n` tokens per second; the burst defaults to `n`.
        ///
        /// `n = 0` is treated as `1`, as for [`per_period`](RateLimiter::per_period).
        ///
        /// ```
        /// use retry_runtime::RateLimiter;
        ///
        /// static PINGS: RateLimiter = RateLimiter::per_second(2);
        ///
        /// assert!(PINGS.try_acquire());
        /// assert!(PINGS.try_acquire());
        /// assert!(!PINGS.try_acquire());
        /// ```
        #[must_use]
        pub fn per_second(n: u32) -> Self {
            Self::per_period(n, Duration::from_secs(1))
        }
    }

    const_fn! {
        /// `n` tokens per minute; the burst defaults to `n`.
        ///
        /// `n = 0` is treated as `1`, as for [`per_period`](RateLimiter::per_period).
        ///
        /// ```
        /// use retry_runtime::RateLimiter;
        ///
        /// // One token every 2 seconds, at most 5 at once.
        /// static SEARCH: RateLimiter = RateLimiter::per_minute(30).burst(5);
        /// assert!(SEARCH.try_acquire());
        /// ```
        #[must_use]
        pub fn per_minute(n: u32) -> Self {
            Self::per_period(n, Duration::from_secs(60))
        }
    }

    const_fn! {
        /// `n` tokens per hour; the burst defaults to `n`.
        ///
        /// `n = 0` is treated as `1`, as for [`per_period`](RateLimiter::per_period).
        ///
        /// ```
        /// use retry_runtime::RateLimiter;
        ///
        /// // A quota of 1000 calls an hour, all usable at once.
        /// static QUOTA: RateLimiter = RateLimiter::per_hour(1000);
        /// assert!(QUOTA.try_acquire_n(1000));
        /// assert!(!QUOTA.try_acquire());
        /// ```
        #[must_use]
        pub fn per_hour(n: u32) -> Self {
            Self::per_period(n, Duration::from_secs(3600))
        }
    }

    /// Sets the bucket size: how many tokens can be taken at once after a
    /// quiet spell. The average rate is unchanged.
    ///
    /// `n = 0` is treated as `1`. A burst of `1` spaces every token evenly.
    ///
    /// ```
    /// use retry_runtime::RateLimiter;
    ///
    /// // 100 a second on average, but never two within 10ms.
    /// static EVEN: RateLimiter = RateLimiter::per_second(100).burst(1);
    ///
    /// assert!(EVEN.try_acquire());
    /// assert!(!EVEN.try_acquire());
    /// ```
    #[must_use]
    pub const fn burst(mut self, n: u32) -> Self {
        self.burst = if n == 0 { 1 } else { n };
        self.capacity_ns = self.interval_ns.saturating_mul(self.burst as u64);
        self
    }

    /// Takes one token if one is available now, without waiting.
    ///
    /// ```
    /// use retry_runtime::RateLimiter;
    ///
    /// let limiter = RateLimiter::per_second(1);
    /// assert!(limiter.try_acquire());
    /// assert!(!limiter.try_acquire());
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> bool {
        // One token is within every burst: nothing for `needs_tokens` to refuse.
        self.take_one().is_ok()
    }

    /// Takes `n` tokens at once if they are all available now, without
    /// waiting; takes nothing otherwise.
    ///
    /// `n = 0` always succeeds. `n` greater than the burst never does, and
    /// returns `false` like a bucket that is merely empty; use
    /// [`check_n`](RateLimiter::check_n) to tell the two apart (and to learn
    /// how long until the tokens).
    ///
    /// ```
    /// use retry_runtime::RateLimiter;
    ///
    /// let limiter = RateLimiter::per_second(10);
    /// assert!(limiter.try_acquire_n(6));
    /// assert!(!limiter.try_acquire_n(6)); // only 4 left
    /// assert!(limiter.try_acquire_n(4));
    /// ```
    pub fn try_acquire_n(&self, n: u32) -> bool {
        match self.needs_tokens(n) {
            Err(InsufficientCapacity { .. }) => false,
            Ok(false) => true,
            Ok(true) => self.take(n, Instant::now()).is_ok(),
        }
    }

    /// Waits until a token is available and takes it.
    ///
    /// Sleeps with [`tokio::time::sleep`] (a tokio runtime with the time
    /// driver is needed when the limiter is exhausted). Cancel-safe: a dropped
    /// future has taken nothing. See [waiting and fairness](RateLimiter#waiting-and-fairness).
    ///
    /// ```
    /// use retry_runtime::RateLimiter;
    ///
    /// static API: RateLimiter = RateLimiter::per_second(10).burst(1);
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let start = tokio::time::Instant::now();
    /// API.acquire().await; // at once
    /// API.acquire().await; // 100ms later
    /// assert!(start.elapsed() >= std::time::Duration::from_millis(100));
    /// # }
    /// ```
    pub async fn acquire(&self) {
        // No `max_wait`, so no refusal; one token is within every burst.
        let _always_ok: Result<(), Rejected> = self.wait_async(1, None).await;
    }

    /// Waits until `n` tokens are available and takes them all at once.
    ///
    /// Returns [`InsufficientCapacity`] at once, without waiting or taking
    /// anything, when `n` exceeds the burst: such a request could never be
    /// admitted (governor's `until_n_ready`). That is its only failure.
    /// `n = 0` returns `Ok` at once. Cancel-safe, like
    /// [`acquire`](RateLimiter::acquire).
    ///
    /// ```
    /// use retry_runtime::{InsufficientCapacity, RateLimiter};
    ///
    /// static BYTES: RateLimiter = RateLimiter::per_second(1000);
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(BYTES.acquire_n(512).await, Ok(()));
    /// // Larger than the burst: refused at once.
    /// assert_eq!(BYTES.acquire_n(5000).await, Err(InsufficientCapacity::new(1000)));
    /// # }
    /// ```
    pub async fn acquire_n(&self, n: u32) -> Result<(), InsufficientCapacity> {
        if self.needs_tokens(n)? {
            // No `max_wait`, so no refusal.
            let _always_ok: Result<(), Rejected> = self.wait_async(n, None).await;
        }
        Ok(())
    }

    /// Waits up to `max_wait` for `n` tokens and takes them all at once:
    /// [`acquire_timeout`](RateLimiter::acquire_timeout) for weighted calls.
    ///
    /// - `Err(InsufficientCapacity)` at once when `n` exceeds the burst.
    /// - `Ok(Err(Rejected))` when the tokens are not available within
    ///   `max_wait`: at once, without sleeping, when the wait needed already
    ///   exceeds it (a wait of exactly `max_wait` is accepted), or after
    ///   sleeping if other callers took the tokens first.
    /// - `Ok(Ok(()))` when all `n` were taken (at once for `n = 0`).
    ///
    /// Time is tokio's clock. Cancel-safe: a dropped wait has taken nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{InsufficientCapacity, RateLimiter, Rejected};
    ///
    /// static UPLOADS: RateLimiter = RateLimiter::per_second(100); // burst 100
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let second = Duration::from_secs(1);
    /// assert_eq!(UPLOADS.acquire_n_timeout(101, second).await, Err(InsufficientCapacity::new(100)));
    /// assert_eq!(UPLOADS.acquire_n_timeout(100, second).await, Ok(Ok(())));
    /// // 50 tokens are 500ms away: refused at once with a 400ms budget...
    /// let budget = Duration::from_millis(400);
    /// assert_eq!(UPLOADS.acquire_n_timeout(50, budget).await, Ok(Err(Rejected::new())));
    /// // ... waited for with a 500ms one.
    /// let budget = Duration::from_millis(500);
    /// assert_eq!(UPLOADS.acquire_n_timeout(50, budget).await, Ok(Ok(())));
    /// # }
    /// ```
    pub async fn acquire_n_timeout(
        &self,
        n: u32,
        max_wait: Duration,
    ) -> Result<Result<(), Rejected>, InsufficientCapacity> {
        if !self.needs_tokens(n)? {
            return Ok(Ok(()));
        }
        Ok(self.wait_async(n, Some(max_wait)).await)
    }

    /// Waits up to `max_wait` for a token; fails with [`Rejected`] otherwise.
    ///
    /// When the wait needed already exceeds `max_wait`, this returns
    /// `Err(Rejected)` at once instead of sleeping in vain. If other callers
    /// take the token first, it waits again as long as `max_wait` allows.
    /// Time is tokio's clock, so a paused test clock drives it. Cancel-safe.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::RateLimiter;
    ///
    /// static API: RateLimiter = RateLimiter::per_second(1);
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// API.acquire().await;
    /// // The next token is 1s away: refused at once, without sleeping.
    /// assert!(API.acquire_timeout(Duration::from_millis(100)).await.is_err());
    /// // Within the allowed wait: sleeps 1s, then succeeds.
    /// assert!(API.acquire_timeout(Duration::from_secs(2)).await.is_ok());
    /// # }
    /// ```
    pub async fn acquire_timeout(&self, max_wait: Duration) -> Result<(), Rejected> {
        // One token is within every burst.
        self.wait_async(1, Some(max_wait)).await
    }

    /// Blocks the current thread until a token is available and takes it; for
    /// sync functions.
    ///
    /// Sleeps the thread with [`std::thread::sleep`]; do not call it from
    /// inside an async task (use [`acquire`](RateLimiter::acquire) there).
    ///
    /// ```
    /// use retry_runtime::RateLimiter;
    ///
    /// static DISK: RateLimiter = RateLimiter::per_second(1000).burst(1);
    ///
    /// let start = std::time::Instant::now();
    /// DISK.acquire_blocking();
    /// DISK.acquire_blocking(); // about 1ms later
    /// assert!(start.elapsed() >= std::time::Duration::from_micros(900));
    /// ```
    pub fn acquire_blocking(&self) {
        // No `max_wait`, so no refusal; one token is within every burst.
        let _always_ok: Result<(), Rejected> = self.wait_blocking(1, None);
    }

    /// Blocks the current thread for up to `max_wait` waiting for a token;
    /// fails with [`Rejected`] otherwise.
    ///
    /// As with [`acquire_timeout`](RateLimiter::acquire_timeout), a wait that
    /// would exceed `max_wait` is refused at once. `max_wait` is measured on
    /// the wall clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::RateLimiter;
    ///
    /// static REPORTS: RateLimiter = RateLimiter::per_hour(1);
    ///
    /// assert!(REPORTS.acquire_blocking_timeout(Duration::from_secs(1)).is_ok());
    /// // The next token is an hour away: refused at once.
    /// assert!(REPORTS.acquire_blocking_timeout(Duration::from_secs(1)).is_err());
    /// ```
    pub fn acquire_blocking_timeout(&self, max_wait: Duration) -> Result<(), Rejected> {
        self.wait_blocking(1, Some(max_wait))
    }

    /// Blocks the current thread until `n` tokens are available and takes
    /// them all at once: [`acquire_n`](RateLimiter::acquire_n) for sync
    /// functions.
    ///
    /// Fails only with [`InsufficientCapacity`], at once, when `n` exceeds
    /// the burst. Sleeps the thread with [`std::thread::sleep`], as
    /// [`acquire_blocking`](RateLimiter::acquire_blocking) does.
    ///
    /// ```
    /// use retry_runtime::{InsufficientCapacity, RateLimiter};
    ///
    /// static DISK: RateLimiter = RateLimiter::per_second(1000).burst(64);
    ///
    /// assert_eq!(DISK.acquire_n_blocking(64), Ok(()));
    /// assert_eq!(DISK.acquire_n_blocking(65), Err(InsufficientCapacity::new(64)));
    /// ```
    pub fn acquire_n_blocking(&self, n: u32) -> Result<(), InsufficientCapacity> {
        if self.needs_tokens(n)? {
            // No `max_wait`, so no refusal.
            let _always_ok: Result<(), Rejected> = self.wait_blocking(n, None);
        }
        Ok(())
    }

    /// Blocks the current thread for up to `max_wait` waiting for `n`
    /// tokens; the results of [`acquire_n_timeout`](RateLimiter::acquire_n_timeout).
    ///
    /// `Err(InsufficientCapacity)` at once when `n` exceeds the burst;
    /// `Ok(Err(Rejected))` at once when the wait needed exceeds `max_wait`,
    /// or later if other callers took the tokens first. `max_wait` is
    /// measured on the wall clock, as for
    /// [`acquire_blocking_timeout`](RateLimiter::acquire_blocking_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{InsufficientCapacity, RateLimiter, Rejected};
    ///
    /// static EXPORTS: RateLimiter = RateLimiter::per_hour(10);
    ///
    /// let second = Duration::from_secs(1);
    /// assert_eq!(EXPORTS.acquire_n_blocking_timeout(11, second), Err(InsufficientCapacity::new(10)));
    /// assert_eq!(EXPORTS.acquire_n_blocking_timeout(10, second), Ok(Ok(())));
    /// // The next tokens are minutes away: refused at once.
    /// assert_eq!(EXPORTS.acquire_n_blocking_timeout(2, second), Ok(Err(Rejected::new())));
    /// ```
    pub fn acquire_n_blocking_timeout(
        &self,
        n: u32,
        max_wait: Duration,
    ) -> Result<Result<(), Rejected>, InsufficientCapacity> {
        if !self.needs_tokens(n)? {
            return Ok(Ok(()));
        }
        Ok(self.wait_blocking(n, Some(max_wait)))
    }

    /// `Err` if `n` can never be admitted, `Ok(false)` if it is trivially
    /// admitted (zero tokens), `Ok(true)` if the bucket must be consulted.
    fn needs_tokens(&self, n: u32) -> Result<bool, InsufficientCapacity> {
        if n > self.burst {
            Err(InsufficientCapacity::new(self.burst))
        } else {
            Ok(n != 0)
        }
    }

    /// `now` in nanoseconds since this limiter's epoch (its first reading).
    ///
    /// Saturates instead of wrapping: 584 years after the epoch, or a clock
    /// reading from before it (another thread set the epoch first) reads as
    /// the epoch. In `u64` from the seconds and the sub-second nanoseconds:
    /// `Duration::as_nanos` would compute the same in 128 bits only to
    /// narrow it again.
    #[inline]
    fn nanos_since_epoch(&self, now: Instant) -> u64 {
        let now = now.into_std();
        let epoch = *self.epoch.get_or_init(|| now);
        let since = now.saturating_duration_since(epoch);
        since
            .as_secs()
            .saturating_mul(NANOS_PER_SEC)
            .saturating_add(u64::from(since.subsec_nanos()))
    }

    /// Takes one token now, or says how long until one would be available
    /// if nobody else takes it first: a wait loop of one `Sleep`, for
    /// callers whose futures must stay small.
    #[inline]
    pub(crate) fn take_one(&self) -> Result<(), Duration> {
        self.take(1, Instant::now())
    }

    /// The GCRA step: takes `n` tokens at `now`, `1 <= n <= burst` (checked
    /// by every caller), or says how long until they would be available if
    /// nobody else takes them first.
    #[inline]
    fn take(&self, n: u32, now: Instant) -> Result<(), Duration> {
        #[cfg(feature = "redis")]
        if self.shared.is_shared() {
            return self.shared.take(self, n);
        }
        self.take_local(n, now)
    }

    /// The local GCRA step behind [`take`](Self::take): the whole limiter
    /// when local, the `Fallback::Local` policy when shared.
    #[inline]
    fn take_local(&self, n: u32, now: Instant) -> Result<(), Duration> {
        debug_assert!(
            1 <= n && n <= self.burst,
            "take({n}) outside 1..={}",
            self.burst
        );
        let now = self.nanos_since_epoch(now);
        // `n <= burst`, so `cost <= capacity` (both saturate alike).
        let cost = self.interval_ns.saturating_mul(u64::from(n));
        // Relaxed is enough: the TAT is the only shared state and publishes
        // no other memory, and read-modify-writes of one atomic are totally
        // ordered, so no two callers can spend the same tokens.
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = if tat <= now {
                // The bucket is full: the take lands `cost` ahead of now,
                // within the capacity, so there is nothing to check.
                now.saturating_add(cost)
            } else {
                let new_tat = tat.saturating_add(cost);
                // `new_tat > now`: no underflow.
                let ahead = new_tat - now;
                if ahead > self.capacity_ns {
                    return Err(Duration::from_nanos(ahead - self.capacity_ns));
                }
                new_tat
            };
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }

    /// Waits for `n` tokens, `1 <= n <= burst` (checked by the caller), for
    /// up to `max_wait`.
    async fn wait_async(&self, n: u32, max_wait: Option<Duration>) -> Result<(), Rejected> {
        #[cfg(feature = "redis")]
        if self.shared.is_shared() {
            // Boxed, so that a local limiter's wait stays as small as ever.
            return Box::pin(self.shared.wait_async(self, n, max_wait)).await;
        }
        let mut now = Instant::now();
        // A `max_wait` too large to represent as an instant is no limit.
        let deadline = max_wait.and_then(|max_wait| now.checked_add(max_wait));
        loop {
            let wait = match self.take(n, now) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            if let Some(deadline) = deadline {
                if now.checked_add(wait).is_none_or(|ready| ready > deadline) {
                    return Err(Rejected::new());
                }
            }
            // Sleep without holding a reservation (cancel safety, see the
            // module docs), then compete for the tokens again.
            tokio::time::sleep(wait).await;
            now = Instant::now();
        }
    }

    /// Blocks for `n` tokens, `1 <= n <= burst` (checked by the caller), for
    /// up to `max_wait`.
    fn wait_blocking(&self, n: u32, max_wait: Option<Duration>) -> Result<(), Rejected> {
        #[cfg(feature = "redis")]
        if self.shared.is_shared() {
            return self.shared.wait_blocking(self, n, max_wait);
        }
        // A blocked thread is not on tokio's (possibly paused) clock, so the
        // caller's `max_wait` is measured on the wall clock; the bucket itself
        // still reads tokio's clock, the time base all callers share.
        let deadline =
            max_wait.and_then(|max_wait| std::time::Instant::now().checked_add(max_wait));
        loop {
            let wait = match self.take(n, Instant::now()) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if wait > left {
                    return Err(Rejected::new());
                }
            }
            std::thread::sleep(wait);
        }
    }
}
