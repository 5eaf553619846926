//! The part of a budget that per-thread caches may hold on to (and outlive
//! the budget with): its window, with the time it counts from.

use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;

use super::window::{self, Window};
// loom's lock and atomics under `--cfg steadfast_loom`: the window is what
// the budget's model checks.
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// Calls one thread made inside one slot of the window, from `first` to
/// `last`, not yet placed in it.
#[derive(Clone, Copy)]
pub(super) struct Batch {
    pub(super) calls: usize,
    pub(super) first: Instant,
    pub(super) last: Instant,
}

impl Batch {
    pub(super) fn one(at: Instant) -> Self {
        Batch {
            calls: 1,
            first: at,
            last: at,
        }
    }
}

pub(super) struct Shared {
    /// Time zero of the window: the budget's first call or retry.
    origin: Instant,
    /// `ttl / SLOTS` in nanoseconds, at least 1.
    slot: u64,
    /// Locked for every batch placed (one per 31 calls of a thread at most,
    /// or per slot) and every withdrawal: never on a call's fast path.
    window: Mutex<Window>,
    /// Calls placed and not yet taken by a budget shared through Redis,
    /// which sends them to the fleet's window. Unused by a local budget.
    uncollected: AtomicUsize,
}

impl Shared {
    /// Made by the budget's first call or retry, at `now`.
    pub(super) fn new(ttl: Duration, now: Instant) -> Self {
        Shared {
            origin: now,
            slot: window::slot_nanos(ttl),
            window: Mutex::new(Window::EMPTY),
            uncollected: AtomicUsize::new(0),
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn window(&self) -> crate::sync::MutexGuard<'_, Window> {
        // A panic cannot leave the window inconsistent (every update is a
        // plain store or a saturating add), so a poisoned lock is usable.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn place(&self, window: &mut Window, batch: Batch) {
        let (first, last) = (self.nanos(batch.first), self.nanos(batch.last));
        window.deposit(batch.calls as u64, first, last, self.slot);
        // Relaxed: only ever drained by a swap, and read-modify-writes of
        // one atomic never lose an update.
        self.uncollected.fetch_add(batch.calls, Ordering::Relaxed);
    }

    /// Counts a batch of calls.
    pub(super) fn deposit(&self, batch: Batch) {
        let mut window = self.window();
        self.place(&mut window, batch);
    }

    /// Counts `batch` (if any) and returns when the slot holding `now`
    /// ends: the calling thread's next batch, starting at `now`, may grow
    /// until then.
    // The per-thread cache (not in the loom models) is the only caller.
    #[cfg_attr(steadfast_loom, allow(dead_code))]
    pub(super) fn deposit_and_slot_end(&self, batch: Option<Batch>, now: Instant) -> Instant {
        let end = {
            let mut window = self.window();
            if let Some(batch) = batch {
                self.place(&mut window, batch);
            }
            window.slot_end(self.nanos(now), self.slot)
        };
        // Past the end of an `Instant` (centuries away) the batch simply
        // ends at once.
        self.origin
            .checked_add(Duration::from_nanos(end))
            .unwrap_or(now)
    }

    /// Counts the calling thread's own `batch` (if any), then, at the time
    /// read under the lock (so successive withdrawals see the clock in
    /// order), grants a retry if `decide` is false or if the window holds
    /// `reserve` plus `amount` per call, minus `scale` per retry, of at
    /// least one `scale`; a granted retry is counted.
    pub(super) fn withdraw(
        &self,
        batch: Option<Batch>,
        decide: bool,
        reserve: u128,
        amount: u64,
        scale: u64,
    ) -> bool {
        let mut window = self.window();
        if let Some(batch) = batch {
            self.place(&mut window, batch);
        }
        let now = self.nanos(Instant::now());
        if decide {
            let (deposits, withdrawals) = window.totals(now, self.slot, amount, scale);
            if reserve.saturating_add(deposits) < withdrawals.saturating_add(u128::from(scale)) {
                return false;
            }
        }
        window.withdraw(now, self.slot);
        true
    }

    /// Takes the calls placed since the last time: a budget shared through
    /// Redis sends them to the fleet.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn take(&self) -> usize {
        self.uncollected.swap(0, Ordering::Relaxed)
    }

    /// The calls placed and not yet taken.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn pending(&self) -> usize {
        self.uncollected.load(Ordering::Relaxed)
    }
}
