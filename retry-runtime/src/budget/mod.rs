//! Retry budgets: a cap on the extra load retries put on a dependency.
//!
//! # Why a budget and not only `max_attempts`
//!
//! `max_attempts` bounds the retries of one call, not of a service. When a
//! dependency fails, every call retries: with 3 attempts per call it receives
//! 3x its usual load at the moment it is least able to serve it, and the
//! retries of each layer above multiply (a retry storm). A budget bounds
//! retries across all calls instead: at most `ratio` of the calls plus
//! `min_per_second` per second may be retried, so a failing dependency sees
//! at most `1 + ratio` times the usual load (plus a small constant), however
//! many attempts each call would be allowed.
//!
//! This is the design of Finagle's `RetryBudget` and tower's `TpsBudget`: a
//! token bucket over a sliding window of `ttl`, kept in ten slots of
//! `ttl / 10` each. A withdrawal succeeds iff
//! `reserve + ratio × deposits − withdrawals ≥ 1` over the window, with
//! `reserve = min_per_second × ttl`. Both deposits and withdrawals expire
//! when they are `ttl` old, so the reserve is not spent once: it refills as
//! old withdrawals leave the window. Unlike tower, which drops a whole slot
//! when it ends (so a deposit may count for only `0.9 × ttl`), the window's
//! far edge cuts its oldest slot, which counts in part (`window.rs`).
//!
//! # What a call costs
//!
//! `deposit` runs on every call's happy path, so it must cost little more
//! than the clock read that dates it:
//!
//! - **One clock read.** A call counts for `ttl` from when it was made, so
//!   it must know when that was, to within a slot (`ttl / 10`). Reading
//!   the clock is the only way to tell, on one thread, 7 calls followed by
//!   a 1.5 s silence and 2 more from 9 calls at once, and that difference
//!   is the budget's promise: after an idle gap of `ttl` and two slots, a
//!   budget decides exactly as a fresh one. (An earlier design read no
//!   clock and spread the calls evenly between two withdrawals; after a
//!   quiet period it credited calls that had expired and missed fresh
//!   ones.) tower's `TpsBudget` and Finagle's `RetryBudget` read the clock
//!   on every deposit too.
//! - **No shared write.** Even an uncontended atomic read-modify-write costs
//!   several plain calls, and a contended one bounces a cache line between
//!   cores on every call. So each thread counts its calls in a small
//!   thread-local cache (plain `Cell`s, no atomics): a batch of at most 31
//!   calls inside one slot, with the times of its first and last call. The
//!   batch is placed in the budget's window (under its lock) when its slot
//!   ends, when it is full, when the thread withdraws from the budget, when
//!   the entry is evicted, or when the thread exits; the window places it
//!   at the time its calls were made, however late it arrives.
//!
//!   So on one thread the window is always exact to within a slot. Across
//!   threads, a withdrawal does not yet see the calls another thread holds
//!   in its current batch: **at most `BATCH − 1` (31) per other live
//!   thread that called through this budget**, only those of its current
//!   slot, and only until its next call in a later slot, its 32nd call, its
//!   own withdrawal or its exit. That is an undercount (it errs on refusing
//!   a retry, never on allowing one): a cached call counts *late*, never
//!   longer than `ttl` after it was made (to within a slot) and never
//!   earlier than it was made. A thread's batch is placed when it exits
//!   (its thread-local destructors run; note that `std::thread::scope` may
//!   return before they have, `join` waits for them), and when the budget's
//!   cache entry is evicted because the thread went on to use more budgets
//!   than the cache holds (16, or fewer if their ids collide).
//!
//!   The cache is keyed by an id the budget gets on its first use, unique
//!   in the process (never an address, which a later budget could reuse),
//!   and an entry holds a reference-counted handle on the budget's window,
//!   allocated then too (the only allocation a budget ever makes): an entry
//!   can outlive its budget without dangling. The hot path is one clock
//!   read, one load from the budget and one thread-local entry: no atomic
//!   read-modify-write, no lock, no allocation.
//!
//! Amounts are fixed-point integers (`SCALE` units per retry), so there are
//! no float atomics and ratios such as 0.3 are exact rather than rounded to
//! a whole number of deposits per retry.

#[cfg(not(steadfast_loom))]
mod cache;
#[cfg(all(feature = "redis", not(steadfast_loom)))]
mod fleet;
mod shared;
mod window;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

// The id is bookkeeping outside the loom models, and must be constructible
// in a `const fn`.
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering};

use tokio::time::Instant;

use crate::sync::const_fn;
use shared::{Batch, Shared};

/// Fixed-point units per retry. Decimal, so that the ratios people write
/// (0.2, 0.05, 0.3) convert exactly; 9 digits keep `1000 × SCALE` well
/// inside `u64`.
const SCALE: u64 = 1_000_000_000;

/// Largest accepted ratio, as in Finagle and tower.
const MAX_RATIO: f64 = 1000.0;

/// A retry budget: each call deposits, each retry withdraws, and a retry is
/// allowed only while the budget has a whole retry left.
///
/// Over a sliding window of `ttl` (10 s by default) at most
/// `min_per_second × ttl + ratio × calls` retries are allowed. The defaults
/// (`ratio` 0.2, `min_per_second` 10) allow 20% of the calls to be retried
/// plus 10 retries per second, so a fresh budget allows 100 retries before
/// any call has been counted. Retries then become available again as old
/// ones leave the window: the reserve is a rate, not a one-off allowance.
///
/// Why a budget at all: `max_attempts = 3` lets each call triple its load on
/// a failing dependency; a budget caps the extra load at `ratio` of the calls
/// plus `min_per_second`, whatever the number of attempts. See Finagle's
/// `RetryBudget` and tower's `TpsBudget`, whose design this follows.
///
/// A call counts for `ttl` from when it was made, to within a tenth of
/// `ttl`; a retry likewise. So after an idle gap of `ttl` and two tenths,
/// a budget decides exactly as a fresh one, whatever came before.
///
/// `deposit` reads the clock once, takes no lock and, but for one call in
/// 32 or per tenth of `ttl` (and a thread's first call through the
/// budget), writes no shared memory: each thread counts its calls locally
/// and places them in the budget's window in batches. So a budget costs
/// about one clock read on calls that succeed, even with many threads
/// calling. A withdrawal always sees its own thread's calls, but may miss
/// up to 31 recent calls of each other thread (fewer retries allowed, never
/// more); those count late, never longer. A thread's batch is placed when
/// it exits.
///
/// Time is read through [`tokio::time::Instant`], so tests on tokio's
/// paused clock drive the window; outside a runtime the system's monotonic
/// clock is used.
///
/// # Examples
///
/// A budget shared by several functions, declared as a `static`
/// (`#[resilient(budget = &BACKEND)]`):
///
/// ```
/// use retry_runtime::RetryBudget;
///
/// static BACKEND: RetryBudget = RetryBudget::new().ratio(0.1).min_per_second(5);
///
/// // A fresh budget holds the reserve: 5 retries/s × 10 s.
/// for _ in 0..50 {
///     assert!(BACKEND.withdraw());
/// }
/// assert!(!BACKEND.withdraw());
///
/// // Then every 10 calls fund one more retry.
/// for _ in 0..10 {
///     BACKEND.deposit();
/// }
/// assert!(BACKEND.withdraw());
/// assert!(!BACKEND.withdraw());
/// ```
///
/// Without a reserve, retries are only a fraction of the calls:
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::RetryBudget;
///
/// let budget = RetryBudget::new()
///     .min_per_second(0)
///     .ratio(0.5)
///     .ttl(Duration::from_secs(30));
/// assert!(!budget.withdraw());
///
/// for _ in 0..4 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw());
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw());
/// ```
pub struct RetryBudget {
    /// Kept for `Debug`; the arithmetic uses `deposit_amount`.
    ratio: f64,
    /// `ratio × SCALE`: what one call adds, in the units where a retry costs
    /// `SCALE`.
    deposit_amount: u64,
    min_per_second: u32,
    ttl: Duration,
    /// The window, created by the first call or retry: it is what the
    /// per-thread caches hold on to.
    shared: OnceLock<Arc<Shared>>,
    /// This budget's key in the per-thread deposit caches, unique in the
    /// process; 0 until the first use creates `shared`. Consecutive ids
    /// fall in different sets of the caches.
    id: StdAtomicUsize,
    /// Sharing through Redis (`fleet.rs`): unused unless `.shared(..)`.
    #[cfg(all(feature = "redis", not(steadfast_loom)))]
    fleet: fleet::Fleet,
}

impl RetryBudget {
    const_fn! {
        /// A budget allowing 20% of the calls to be retried plus 10 retries
        /// per second, over a 10 s window (so 100 retries before any
        /// deposit).
        ///
        /// ```
        /// use retry_runtime::RetryBudget;
        ///
        /// static BUDGET: RetryBudget = RetryBudget::new();
        /// let allowed = (0..1000).filter(|_| BUDGET.withdraw()).count();
        /// assert_eq!(allowed, 100);
        /// ```
        #[must_use]
        pub fn new() -> Self {
            RetryBudget {
                ratio: 0.2,
                deposit_amount: ratio_to_amount(0.2),
                min_per_second: 10,
                ttl: Duration::from_secs(10),
                shared: OnceLock::new(),
                id: StdAtomicUsize::new(0),
                #[cfg(all(feature = "redis", not(steadfast_loom)))]
                fleet: fleet::Fleet::new(),
            }
        }
    }

    /// The fraction of calls that may be retried, on top of
    /// [`min_per_second`](Self::min_per_second): `0.2` lets one call in five
    /// be retried once, `2.0` lets each call be retried twice.
    ///
    /// Clamped to `[0, 1000]` as in Finagle and tower; a negative value or
    /// NaN means 0, i.e. only the `min_per_second` reserve is available.
    /// Precise to 1e-9.
    ///
    /// ```
    /// use retry_runtime::RetryBudget;
    ///
    /// let budget = RetryBudget::new().min_per_second(0).ratio(0.25);
    /// for _ in 0..8 {
    ///     budget.deposit();
    /// }
    /// assert!(budget.withdraw());
    /// assert!(budget.withdraw());
    /// assert!(!budget.withdraw()); // 8 calls fund 2 retries
    /// ```
    #[must_use]
    pub const fn ratio(mut self, r: f64) -> Self {
        // NaN fails both comparisons and lands on 0.
        let r = if r > MAX_RATIO {
            MAX_RATIO
        } else if r >= 0.0 {
            r
        } else {
            0.0
        };
        self.ratio = r;
        self.deposit_amount = ratio_to_amount(r);
        self
    }

    /// Retries allowed per second regardless of the number of calls, so that
    /// services with few calls can still retry. Averaged over the window: a
    /// fresh budget allows `n × ttl` retries at once.
    ///
    /// ```
    /// use retry_runtime::RetryBudget;
    ///
    /// // 2 per second over the default 10 s window: 20 at once, no calls needed.
    /// let budget = RetryBudget::new().min_per_second(2);
    /// assert_eq!((0..100).filter(|_| budget.withdraw()).count(), 20);
    /// ```
    #[must_use]
    pub const fn min_per_second(mut self, n: u32) -> Self {
        self.min_per_second = n;
        self
    }

    /// How long a deposit or a withdrawal counts (10 s by default): it
    /// leaves the window when it is `ttl` old. A longer window smooths
    /// bursts; the reserve grows with it (`min_per_second × ttl`). A zero
    /// window keeps nothing, so no retry is ever allowed.
    ///
    /// The window is kept in tenths of `ttl`. In the oldest tenth, which the
    /// window's edge cuts, the calls and retries of that tenth are taken to
    /// be spread evenly over the part of it they were made in: exact for
    /// calls or retries made at one instant and for steady traffic, an
    /// estimate within that tenth otherwise. So a call counts for `ttl`
    /// to within a tenth of it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::RetryBudget;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let budget = RetryBudget::new().min_per_second(5).ttl(Duration::from_secs(2));
    /// assert_eq!((0..100).filter(|_| budget.withdraw()).count(), 10);
    /// tokio::time::advance(Duration::from_secs(2)).await;
    /// // The first 10 retries are 2 s old: they no longer count.
    /// assert_eq!((0..100).filter(|_| budget.withdraw()).count(), 10);
    /// # }
    /// ```
    #[must_use]
    pub const fn ttl(mut self, window: Duration) -> Self {
        self.ttl = window;
        self
    }

    /// Counts one call (its first attempt). Cheap enough for every call: it
    /// reads the clock and adds one to a thread-local batch, which reaches
    /// the budget's window only once per 32 calls or per tenth of `ttl`.
    #[inline]
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// [`deposit`](Self::deposit) of a call made at `now`, for a caller
    /// that has read the clock already.
    #[inline]
    pub(crate) fn deposit_at(&self, now: Instant) {
        // The hot path reads one field of the budget and this thread's
        // cache entry for it; everything else is out of line.
        #[cfg(not(steadfast_loom))]
        {
            let id = self.id.load(Ordering::Relaxed);
            if id != 0 && cache::try_deposit(id, now) {
                return;
            }
        }
        self.deposit_slow(now);
    }

    /// The first call (which creates the window and the id), a batch that
    /// is full or whose slot ended, a budget not in the thread's cache, or
    /// a thread exiting.
    #[cold]
    #[inline(never)]
    fn deposit_slow(&self, now: Instant) {
        let shared = self.counter(now);
        #[cfg(not(steadfast_loom))]
        let counted = cache::deposit_slow(self.id.load(Ordering::Relaxed), shared, now);
        #[cfg(steadfast_loom)]
        let counted = false;
        if !counted {
            shared.deposit(Batch::one(now));
        }
        // A shared budget sends its deposits once enough are waiting.
        #[cfg(all(feature = "redis", not(steadfast_loom)))]
        self.fleet.deposited(self);
    }

    /// The window, created (with the budget's id) on first use, at `now`.
    fn counter(&self, now: Instant) -> &Arc<Shared> {
        self.shared.get_or_init(|| {
            static NEXT_ID: StdAtomicUsize = StdAtomicUsize::new(1);
            // Never 0 (which means "no id yet") and never reused, short of
            // wrapping a `usize`: an id in a thread's cache can only be
            // this budget's.
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).max(1);
            // Stored before the `OnceLock` completes: a thread that sees the
            // id but not yet `shared` waits in `get_or_init`.
            self.id.store(id, Ordering::Relaxed);
            Arc::new(Shared::new(self.ttl, now))
        })
    }

    /// Ends this thread's batch of calls for the window to place: a
    /// withdrawal always sees its own thread's calls.
    fn own_batch(&self) -> Option<Batch> {
        #[cfg(not(steadfast_loom))]
        return cache::take(self.id.load(Ordering::Relaxed));
        #[cfg(steadfast_loom)]
        None
    }

    /// `min_per_second × ttl`, in `SCALE` units.
    fn reserve(&self) -> u128 {
        // `SCALE` is 1e9 and ttl is counted in nanoseconds, so
        // `min_per_second × ttl_nanos` is the reserve in `SCALE` units.
        const _: () = assert!(SCALE == 1_000_000_000);
        u128::from(self.min_per_second).saturating_mul(self.ttl.as_nanos())
    }

    /// Asks for one retry: returns `true` and counts it if the budget allows
    /// it, `false` (counting nothing) if the caller should give up.
    pub fn withdraw(&self) -> bool {
        #[cfg(all(feature = "redis", not(steadfast_loom)))]
        if self.fleet.is_shared() {
            return self.fleet.withdraw(self);
        }
        if self.ttl.is_zero() {
            return false;
        }
        let shared = self.counter(Instant::now());
        shared.withdraw(
            self.own_batch(),
            true,
            self.reserve(),
            self.deposit_amount,
            SCALE,
        )
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No lock: Debug must not block behind (or deadlock with) a withdrawal.
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio)
            .field("min_per_second", &self.min_per_second)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// `r` is already clamped to `[0, MAX_RATIO]`; the `as` cast saturates anyway.
const fn ratio_to_amount(r: f64) -> u64 {
    // `f64::round` is not const on the MSRV; r >= 0, so +0.5 and truncation
    // round to nearest.
    (r * SCALE as f64 + 0.5) as u64
}
