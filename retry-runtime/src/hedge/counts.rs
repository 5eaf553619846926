//! How many hedges a call site sent, won and was refused: plain counters,
//! touched only when a hedge is due, so a call that needs none pays nothing.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::const_fn;

pub(super) struct Counts {
    sent: AtomicU64,
    won: AtomicU64,
    refused: AtomicU64,
}

impl Counts {
    const_fn! {
        pub(super) fn new() -> Self {
            Counts {
                sent: AtomicU64::new(0),
                won: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }
        }
    }

    /// A hedge was due: sent if the budgets allowed it, refused if not.
    pub(super) fn spent(&self, sent: bool) {
        let counter = if sent { &self.sent } else { &self.refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn won_one(&self) {
        self.won.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub(super) fn won(&self) -> u64 {
        self.won.load(Ordering::Relaxed)
    }

    pub(super) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}
