//! The part of a budget that per-thread caches may hold on to (and outlive
//! the budget with): the calls counted since the last withdrawal.

use tokio::time::Instant;

use crate::sync::atomic::{AtomicUsize, Ordering};

pub(super) struct Shared {
    /// Flushed calls since the last withdrawal. loom's atomic under
    /// `steadfast_loom`: this counter is what the budget's model checks.
    pending: AtomicUsize,
    /// When the budget saw its first call (read once, on that call), so the
    /// first withdrawal can spread earlier calls over the time they really
    /// took instead of counting an hour of healthy traffic as fresh.
    pub(super) first_deposit: Instant,
}

impl Shared {
    /// Created by the budget's first call, which is when it reads the clock.
    pub(super) fn new() -> Self {
        Shared {
            pending: AtomicUsize::new(0),
            first_deposit: Instant::now(),
        }
    }

    #[inline]
    pub(super) fn add(&self, n: usize) {
        // Relaxed is enough: the counter is only ever drained by an atomic
        // swap, and read-modify-writes of one atomic never lose an update.
        // Wrapping (after `usize::MAX` calls without a single retry) only
        // ever undercounts, which errs on the safe side.
        self.pending.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes every call counted so far: each is collected by exactly one
    /// withdrawal.
    pub(super) fn take(&self) -> usize {
        self.pending.swap(0, Ordering::Relaxed)
    }

    /// The calls counted so far, for `Debug`.
    pub(super) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}
