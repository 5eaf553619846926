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
//! after `ttl`, so the reserve is not spent once: it refills as old
//! withdrawals leave the window.
//!
//! # The approximation
//!
//! `deposit` runs on every call's happy path, so it must cost about as much
//! as a plain function call. Two things keep it that cheap:
//!
//! - **No time.** Deposits carry no timestamp: `withdraw` collects the ones
//!   made since the previous withdrawal and assumes they arrived evenly
//!   between the two withdrawals:
//!   - when retries are frequent the gap is short and the attribution is
//!     exact to within a slot;
//!   - under steady traffic it is exact whatever the gap;
//!   - after a long quiet gap (longer than `ttl`) only the share of the
//!     deposits that would fall inside the window counts. If those calls were
//!     really made long ago this is slightly generous (bounded by the share
//!     `ttl / gap`); if they were a burst just before the withdrawal it is
//!     stingy, for that one withdrawal only, and the reserve still applies.
//!     Either way a day of healthy traffic cannot fund a flood of retries
//!     when the dependency then fails, which counting them all as fresh
//!     would.
//!   - the first withdrawal measures from the budget's first deposit, the
//!     one call whose deposit reads the clock (when the shared counter is
//!     created): an hour of healthy traffic before the first failure is
//!     spread over that hour, so only its last `ttl` counts.
//! - **No shared write.** Even an uncontended atomic read-modify-write costs
//!   several plain calls, and a contended one bounces a cache line between
//!   cores on every call. So each thread counts its deposits in a small
//!   thread-local cache (plain `Cell`s, no atomics) and adds them to the
//!   budget's shared counter once per `BATCH` (32) deposits. `withdraw` first
//!   adds the calling thread's own count, so a single thread is always
//!   exact; what a withdrawal may miss are the deposits other threads have
//!   not flushed yet: **at most `BATCH − 1` (31) per other live thread that
//!   called through this budget**, an undercount (it errs on refusing a
//!   retry, never on allowing one). A thread flushes what it holds when it
//!   exits (its thread-local destructors run; note that `std::thread::scope`
//!   may return before they have, `join` waits for them), and when the
//!   budget's cache entry is evicted because the thread went on to use more
//!   budgets than the cache holds (16, or fewer if their ids collide).
//!
//!   The cache is keyed by an id the budget gets on its first deposit,
//!   unique in the process (never an address, which a later budget could
//!   reuse), and an entry holds a reference-counted handle on the budget's
//!   shared counter, allocated then too (the only allocation a budget ever
//!   makes): an entry can outlive its budget without dangling. The hot path
//!   is one load from the budget and one thread-local entry: no atomic
//!   read-modify-write, no clock, no allocation.
//!
//! Amounts are fixed-point integers (`SCALE` units per retry), so there are
//! no float atomics and ratios such as 0.3 are exact rather than rounded to
//! a whole number of deposits per retry.

use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError};
// loom's lock under `--cfg steadfast_loom`: a std lock held across one of
// loom's atomics would deadlock the model's scheduler.
#[cfg(steadfast_loom)]
use loom::sync::Mutex;
#[cfg(not(steadfast_loom))]
use std::sync::Mutex;
use std::time::Duration;

// The shared counter may be loom's, for the models; the id is bookkeeping
// outside the model, and must be constructible in a `const fn`.
use std::sync::atomic::AtomicUsize as StdAtomicUsize;

use crate::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

/// Number of slots the window is cut into: deposits and withdrawals expire
/// one slot (`ttl / SLOTS`) at a time, as in tower.
const SLOTS: usize = 10;

/// Fixed-point units per retry. Decimal, so that the ratios people write
/// (0.2, 0.05, 0.3) convert exactly; 9 digits keep `1000 × SCALE` well
/// inside `u64`.
const SCALE: u64 = 1_000_000_000;

/// Largest accepted ratio, as in Finagle and tower.
const MAX_RATIO: f64 = 1000.0;

/// Deposits a thread counts locally before adding them to the budget's
/// shared counter: the amortised cost of the shared atomic add is 1/32 of
/// one, and a withdrawal misses at most `BATCH - 1` deposits per other
/// thread.
#[cfg_attr(steadfast_loom, allow(dead_code))] // loom models count exactly
const BATCH: usize = 32;

/// Sets of the per-thread cache; two budgets (ways) per set. Budgets are
/// given sets round-robin as they are first used, so one thread counts the
/// deposits of up to `2 × SETS` budgets locally without evicting any.
const SETS: usize = 8;
const _: () = assert!(SETS.is_power_of_two());

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
/// `deposit` reads no clock, takes no lock and, but for one call in 32 (and
/// a thread's first call through the budget), writes no shared memory: each
/// thread counts its deposits locally and adds them to the budget in
/// batches of 32. So a budget costs next to nothing on calls that succeed,
/// even with many threads calling. A withdrawal always sees its own
/// thread's deposits, but may miss up to 31 recent deposits of each other
/// thread (fewer retries allowed, never more); a thread's count is flushed
/// when it exits. Deposits also carry no timestamp: `withdraw` spreads the
/// deposits made since the previous withdrawal evenly over the time between
/// the two. This is exact under steady traffic or frequent retries; after a
/// quiet period longer than `ttl` it credits only the share of those
/// deposits that falls inside the window. The very first withdrawal spreads
/// the deposits over the time since the budget's first call.
///
/// Time is read through [`tokio::time::Instant`], only in `withdraw` (and
/// once, on the budget's very first deposit), so
/// tests on tokio's paused clock drive the window; outside a runtime the
/// system's monotonic clock is used.
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
    /// Calls since the last withdrawal, not yet placed in a slot. Created
    /// on the first deposit: it is what the per-thread caches hold on to.
    shared: OnceLock<Arc<Shared>>,
    /// This budget's key in the per-thread deposit caches, unique in the
    /// process; 0 until the first deposit creates `shared`. Consecutive ids
    /// fall in different sets of the caches.
    id: StdAtomicUsize,
    /// Only `withdraw` locks it, i.e. only after an attempt failed, so
    /// contention is bounded by the failure rate.
    window: Mutex<Window>,
}

struct Window {
    /// A ring; `slots[head]` is the slot that started at `Clock::head_start`.
    slots: [Slot; SLOTS],
    head: usize,
    /// `None` until the first withdrawal: an `Instant` cannot be made in a
    /// `const fn`, and the window only matters once something withdraws.
    clock: Option<Clock>,
}

#[derive(Clone, Copy)]
struct Slot {
    deposits: u64,
    withdrawals: u64,
}

#[derive(Clone, Copy)]
struct Clock {
    head_start: Instant,
    last_withdraw: Instant,
}

impl Slot {
    const EMPTY: Slot = Slot {
        deposits: 0,
        withdrawals: 0,
    };
}

impl RetryBudget {
    /// A budget allowing 20% of the calls to be retried plus 10 retries per
    /// second, over a 10 s window (so 100 retries before any deposit).
    #[cfg(not(steadfast_loom))]
    pub const fn new() -> Self {
        RetryBudget {
            ratio: 0.2,
            deposit_amount: ratio_to_amount(0.2),
            min_per_second: 10,
            ttl: Duration::from_secs(10),
            shared: OnceLock::new(),
            id: StdAtomicUsize::new(0),
            window: Mutex::new(Window {
                slots: [Slot::EMPTY; SLOTS],
                head: 0,
                clock: None,
            }),
        }
    }

    /// The `--cfg steadfast_loom` build of [`new`](Self::new): loom's `Mutex`
    /// cannot be built in a `const fn`. Keep it in step with the one above.
    #[cfg(steadfast_loom)]
    pub fn new() -> Self {
        RetryBudget {
            ratio: 0.2,
            deposit_amount: ratio_to_amount(0.2),
            min_per_second: 10,
            ttl: Duration::from_secs(10),
            shared: OnceLock::new(),
            id: StdAtomicUsize::new(0),
            window: Mutex::new(Window {
                slots: [Slot::EMPTY; SLOTS],
                head: 0,
                clock: None,
            }),
        }
    }

    /// The fraction of calls that may be retried, on top of
    /// [`min_per_second`](Self::min_per_second): `0.2` lets one call in five
    /// be retried once, `2.0` lets each call be retried twice.
    ///
    /// Clamped to `[0, 1000]` as in Finagle and tower; a negative value or
    /// NaN means 0, i.e. only the `min_per_second` reserve is available.
    /// Precise to 1e-9.
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
    pub const fn min_per_second(mut self, n: u32) -> Self {
        self.min_per_second = n;
        self
    }

    /// How long a deposit or a withdrawal counts (10 s by default). Both
    /// expire in tenths of the window. A longer window smooths bursts; the
    /// reserve grows with it (`min_per_second × ttl`). A zero window keeps
    /// nothing, so no retry is ever allowed.
    pub const fn ttl(mut self, window: Duration) -> Self {
        self.ttl = window;
        self
    }

    /// Counts one call (its first attempt). Cheap enough for every call: it
    /// adds one to a thread-local count, and to the budget's shared counter
    /// only once per 32 calls of a thread.
    #[inline]
    pub fn deposit(&self) {
        // The hot path reads one field of the budget and this thread's
        // cache entry for it; everything else is out of line.
        #[cfg(not(steadfast_loom))]
        {
            let id = self.id.load(Ordering::Relaxed);
            if id != 0 && local::try_deposit(id) {
                return;
            }
        }
        self.deposit_slow();
    }

    /// The first deposit (which creates the shared counter and the id), a
    /// full batch, a budget not in the thread's cache, or a thread exiting.
    #[cold]
    #[inline(never)]
    fn deposit_slow(&self) {
        let shared = self.shared();
        #[cfg(not(steadfast_loom))]
        if local::deposit_slow(self.id.load(Ordering::Relaxed), shared) {
            return;
        }
        shared.add(1);
    }

    /// The shared counter, created (with the budget's id) on first use.
    fn shared(&self) -> &Arc<Shared> {
        self.shared.get_or_init(|| {
            static NEXT_ID: StdAtomicUsize = StdAtomicUsize::new(1);
            // Never 0 (which means "no id yet") and never reused, short of
            // wrapping a `usize`: an id in a thread's cache can only be
            // this budget's.
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).max(1);
            // Stored before the `OnceLock` completes: a thread that sees the
            // id but not yet `shared` waits in `get_or_init`.
            self.id.store(id, Ordering::Relaxed);
            Arc::new(Shared {
                pending: AtomicUsize::new(0),
                first_deposit: Instant::now(),
            })
        })
    }

    /// Asks for one retry: returns `true` and counts it if the budget allows
    /// it, `false` (counting nothing) if the caller should give up.
    pub fn withdraw(&self) -> bool {
        // Drained before taking the lock: the swap alone makes every deposit
        // placed by exactly one withdrawal, and nothing that can block (or
        // that loom cannot see) runs while the lock is held. A withdrawal
        // racing another may miss the batch the other just drained, for that
        // instant only: the same kind of undercount as unflushed deposits.
        let (pending, first_deposit) = match self.shared.get() {
            Some(shared) => {
                // This thread's own deposits are always counted; other
                // threads' unflushed ones (< BATCH each) are not.
                #[cfg(not(steadfast_loom))]
                local::flush(self.id.load(Ordering::Relaxed), shared);
                (
                    shared.pending.swap(0, Ordering::Relaxed) as u64,
                    Some(shared.first_deposit),
                )
            }
            None => (0, None),
        };
        // A panic cannot leave the window inconsistent (every update is a
        // plain store or a saturating add), so a poisoned lock is usable.
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        // Read under the lock so successive withdrawals see the clock in
        // order.
        let now = Instant::now();
        if self.ttl.is_zero() {
            return false;
        }
        let slot_nanos = (self.ttl.as_nanos() / SLOTS as u128).max(1);
        window.record(now, pending, slot_nanos, first_deposit);

        let (deposits, withdrawals) = window.totals();
        let reserve = u128::from(self.min_per_second).saturating_mul(self.ttl.as_nanos());
        // `SCALE` is 1e9 and ttl is counted in nanoseconds, so
        // `min_per_second × ttl_nanos` is the reserve in `SCALE` units.
        const _: () = assert!(SCALE == 1_000_000_000);
        let available =
            reserve.saturating_add(deposits.saturating_mul(u128::from(self.deposit_amount)));
        let needed = withdrawals
            .saturating_add(1)
            .saturating_mul(u128::from(SCALE));
        if available >= needed {
            let head = window.head;
            let slot = &mut window.slots[head];
            slot.withdrawals = slot.withdrawals.saturating_add(1);
            true
        } else {
            false
        }
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
            .field(
                "pending_deposits",
                &self
                    .shared
                    .get()
                    .map_or(0, |s| s.pending.load(Ordering::Relaxed)),
            )
            .finish_non_exhaustive()
    }
}

/// The part of a budget that per-thread caches may hold on to (and outlive
/// the budget with).
struct Shared {
    /// Flushed calls since the last withdrawal.
    pending: AtomicUsize,
    /// When the budget saw its first call (read once, on that call), so the
    /// first withdrawal can spread earlier calls over the time they really
    /// took instead of counting an hour of healthy traffic as fresh.
    first_deposit: Instant,
}

impl Shared {
    #[inline]
    fn add(&self, n: usize) {
        // Relaxed is enough: the counter is only ever drained by an atomic
        // swap, and read-modify-writes of one atomic never lose an update.
        // Wrapping (after `usize::MAX` calls without a single retry) only
        // ever undercounts, which errs on the safe side.
        self.pending.fetch_add(n, Ordering::Relaxed);
    }
}

/// The per-thread deposit cache: a 2-way set-associative table from a
/// budget's id to the deposits this thread has not yet added to it. Plain
/// `Cell`s: only the owning thread ever touches it.
///
/// It is split in two thread-locals so that the hot path needs no
/// registration check: `COUNTS` (ids and counts) has no destructor, so
/// reaching it is a bare thread-pointer offset; `COUNTERS` holds the shared
/// counters the counts belong to, and its destructor hands the counts over
/// when the thread exits. An entry is only ever filled after `COUNTERS` was
/// reached, i.e. registered for destruction.
#[cfg(not(steadfast_loom))]
mod local {
    use std::cell::Cell;

    use super::*;

    const ENTRIES: usize = 2 * SETS;

    struct Count {
        /// The budget's id (see `RetryBudget::id`), 0 when empty.
        id: Cell<usize>,
        count: Cell<usize>,
    }

    /// `[2s]` and `[2s + 1]` form set `s`; the first is the most recently
    /// used of the two.
    struct Counters([Cell<Option<Arc<Shared>>>; ENTRIES]);

    impl Drop for Counters {
        /// A thread that exits hands its counts to their budgets (and empties
        /// its entries, so a deposit made by a later thread-local destructor
        /// goes straight to the shared counter).
        fn drop(&mut self) {
            let _ = COUNTS.try_with(|counts| {
                for (count, counter) in counts.iter().zip(&self.0) {
                    count.id.set(0);
                    let n = count.count.replace(0);
                    if let Some(counter) = counter.take() {
                        if n > 0 {
                            counter.add(n);
                        }
                    }
                }
            });
        }
    }

    thread_local! {
        static COUNTS: [Count; ENTRIES] = const {
            [const {
                Count {
                    id: Cell::new(0),
                    count: Cell::new(0),
                }
            }; ENTRIES]
        };
        static COUNTERS: Counters = const { Counters([const { Cell::new(None) }; ENTRIES]) };
    }

    /// The first entry of the set of budget `id`. Ids are handed out in
    /// sequence, so consecutive budgets land in different sets.
    #[inline]
    fn set_of(id: usize) -> usize {
        (id % SETS) * 2
    }

    /// The hot path: counts one deposit if budget `id` is the most recent of
    /// its set and its batch is not full. `false` sends the caller to
    /// `deposit_slow`.
    #[inline]
    pub(super) fn try_deposit(id: usize) -> bool {
        COUNTS
            .try_with(|counts| {
                let entry = &counts[set_of(id)];
                let n = entry.count.get() + 1;
                if entry.id.get() == id && n < BATCH {
                    entry.count.set(n);
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false)
    }

    /// Everything else: a full batch (flushed to `shared`), the budget in
    /// the second way (moved to the first), not cached (the second way is
    /// evicted, flushing its count, and the budget takes the first), or the
    /// thread exiting (`false`: the caller adds to `shared` itself).
    pub(super) fn deposit_slow(id: usize, shared: &Arc<Shared>) -> bool {
        let set = set_of(id);
        COUNTERS
            .try_with(|counters| {
                COUNTS.with(|counts| {
                    let (first, second) = (&counts[set], &counts[set + 1]);
                    if first.id.get() != id {
                        if second.id.get() != id {
                            // Evict the second way.
                            let n = second.count.replace(0);
                            if let Some(old) = counters.0[set + 1].replace(Some(Arc::clone(shared)))
                            {
                                if n > 0 {
                                    old.add(n);
                                }
                            }
                            second.id.set(id);
                        }
                        first.id.swap(&second.id);
                        first.count.swap(&second.count);
                        counters.0[set].swap(&counters.0[set + 1]);
                    }
                    let n = first.count.get() + 1;
                    if n >= BATCH {
                        first.count.set(0);
                        shared.add(n);
                    } else {
                        first.count.set(n);
                    }
                })
            })
            .is_ok()
    }

    /// Adds this thread's count for budget `id` to `shared`.
    pub(super) fn flush(id: usize, shared: &Shared) {
        let set = set_of(id);
        let _ = COUNTS.try_with(|counts| {
            for entry in &counts[set..set + 2] {
                if entry.id.get() == id {
                    let n = entry.count.replace(0);
                    if n > 0 {
                        shared.add(n);
                    }
                }
            }
        });
    }
}

/// `r` is already clamped to `[0, MAX_RATIO]`; the `as` cast saturates anyway.
const fn ratio_to_amount(r: f64) -> u64 {
    // `f64::round` is not const on the MSRV; r >= 0, so +0.5 and truncation
    // round to nearest.
    (r * SCALE as f64 + 0.5) as u64
}

impl Window {
    /// Moves the window to `now` and places the `pending` deposits made since
    /// the previous withdrawal.
    fn record(
        &mut self,
        now: Instant,
        pending: u64,
        slot_nanos: u128,
        first_deposit: Option<Instant>,
    ) {
        let Some(clock) = &mut self.clock else {
            // No earlier withdrawal to measure from: the deposits so far were
            // made since the first one, and are spread over that time below.
            self.clock = Some(Clock {
                head_start: now,
                last_withdraw: first_deposit.map_or(now, |first| first.min(now)),
            });
            return self.record(now, pending, slot_nanos, None);
        };

        let since_head = now.saturating_duration_since(clock.head_start).as_nanos();
        let steps = since_head / slot_nanos;
        if steps > 0 {
            for _ in 0..steps.min(SLOTS as u128) {
                self.head = (self.head + 1) % SLOTS;
                self.slots[self.head] = Slot::EMPTY;
            }
            // Keep slot boundaries on the original grid rather than at `now`,
            // so that expiry does not drift later with each withdrawal.
            let into_slot = since_head % slot_nanos;
            clock.head_start = u64::try_from(into_slot)
                .ok()
                .and_then(|n| now.checked_sub(Duration::from_nanos(n)))
                .unwrap_or(now);
        }
        let age_of_head = now.saturating_duration_since(clock.head_start).as_nanos();
        let gap = now
            .saturating_duration_since(clock.last_withdraw)
            .as_nanos();
        clock.last_withdraw = now;

        if gap == 0 {
            self.add_deposits(self.head, pending);
            return;
        }
        // Spread `pending` evenly over the ages (0, gap], slot by slot from
        // the newest. Rounding the cumulative share (rather than each slot's)
        // loses nothing when the gap fits in the window; deposits older than
        // the window are dropped, as they would have expired.
        let pending_wide = u128::from(pending);
        let mut placed = 0;
        let mut edge = age_of_head;
        for back in 0..SLOTS {
            let cumulative = pending_wide.saturating_mul(edge.min(gap)) / gap;
            let idx = (self.head + SLOTS - back) % SLOTS;
            // cumulative <= pending, so this fits in u64.
            self.add_deposits(idx, (cumulative - placed) as u64);
            placed = cumulative;
            if edge >= gap {
                break;
            }
            edge = edge.saturating_add(slot_nanos);
        }
    }

    fn add_deposits(&mut self, idx: usize, n: u64) {
        let slot = &mut self.slots[idx];
        slot.deposits = slot.deposits.saturating_add(n);
    }

    /// Deposits and withdrawals in the window, wide enough not to overflow.
    fn totals(&self) -> (u128, u128) {
        self.slots.iter().fold((0, 0), |(d, w), slot| {
            (
                d + u128::from(slot.deposits),
                w + u128::from(slot.withdrawals),
            )
        })
    }
}
