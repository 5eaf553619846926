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
//! `deposit` runs on every call's happy path, so it is one relaxed atomic
//! add: it reads no clock and takes no lock. Deposits therefore carry no
//! time; `withdraw` collects the ones made since the previous withdrawal and
//! assumes they arrived evenly between the two withdrawals:
//!
//! - when retries are frequent the gap is short and the attribution is exact
//!   to within a slot;
//! - under steady traffic it is exact whatever the gap;
//! - after a long quiet gap (longer than `ttl`) only the share of the
//!   deposits that would fall inside the window counts. If those calls were
//!   really made long ago this is slightly generous (bounded by the share
//!   `ttl / gap`); if they were a burst just before the withdrawal it is
//!   stingy, for that one withdrawal only, and the reserve still applies.
//!   Either way a day of healthy traffic cannot fund a flood of retries when
//!   the dependency then fails, which counting them all as fresh would.
//! - the first withdrawal has no earlier one to measure from, so it counts
//!   every deposit made before it as fresh. That credit expires after one
//!   `ttl` like any other.
//!
//! Amounts are fixed-point integers (`SCALE` units per retry), so there are
//! no float atomics and ratios such as 0.3 are exact rather than rounded to
//! a whole number of deposits per retry.

use std::fmt;
use crate::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

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
/// `deposit` is a single relaxed atomic add (no clock, no lock), so a budget
/// costs nothing measurable on calls that succeed. The price is that
/// deposits carry no timestamp: `withdraw` spreads the deposits made since
/// the previous withdrawal evenly over the time between the two. This is
/// exact under steady traffic or frequent retries; after a quiet period
/// longer than `ttl` it credits only the share of those deposits that falls
/// inside the window. The very first withdrawal counts every earlier deposit
/// as fresh (for one `ttl`).
///
/// Time is read through [`tokio::time::Instant`], only in `withdraw`, so
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
    /// Calls since the last withdrawal, not yet placed in a slot.
    pending: AtomicUsize,
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
    pub const fn new() -> Self {
        RetryBudget {
            ratio: 0.2,
            deposit_amount: ratio_to_amount(0.2),
            min_per_second: 10,
            ttl: Duration::from_secs(10),
            pending: AtomicUsize::new(0),
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

    /// Counts one call (its first attempt). Cheap enough for every call: one
    /// relaxed atomic add.
    pub fn deposit(&self) {
        // Relaxed is enough: the counter is only ever drained by an atomic
        // swap, and read-modify-writes of one atomic never lose an update.
        // Wrapping (after `usize::MAX` calls without a single retry) only
        // ever undercounts, which errs on the safe side.
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Asks for one retry: returns `true` and counts it if the budget allows
    /// it, `false` (counting nothing) if the caller should give up.
    pub fn withdraw(&self) -> bool {
        // A panic cannot leave the window inconsistent (every update is a
        // plain store or a saturating add), so a poisoned lock is usable.
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        // Read under the lock so successive withdrawals see the clock in
        // order, and drain under it so no batch of deposits is placed by two
        // withdrawals at once.
        let now = Instant::now();
        let pending = self.pending.swap(0, Ordering::Relaxed) as u64;
        if self.ttl.is_zero() {
            return false;
        }
        let slot_nanos = (self.ttl.as_nanos() / SLOTS as u128).max(1);
        window.record(now, pending, slot_nanos);

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
            .field("pending_deposits", &self.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
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
    fn record(&mut self, now: Instant, pending: u64, slot_nanos: u128) {
        let Some(clock) = &mut self.clock else {
            self.clock = Some(Clock {
                head_start: now,
                last_withdraw: now,
            });
            // No earlier withdrawal to measure from: count them as fresh.
            self.add_deposits(self.head, pending);
            return;
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
