//! The per-thread deposit cache: a 2-way set-associative table from a
//! budget's id to the deposits this thread has not yet added to it. Plain
//! `Cell`s: only the owning thread ever touches it. (Not built for the loom
//! models, which count every deposit on the shared counter.)
//!
//! It is split in two thread-locals so that the hot path needs no
//! registration check: `COUNTS` (ids and counts) has no destructor, so
//! reaching it is a bare thread-pointer offset; `COUNTERS` holds the shared
//! counters the counts belong to, and its destructor hands the counts over
//! when the thread exits. An entry is only ever filled after `COUNTERS` was
//! reached, i.e. registered for destruction.

use std::cell::Cell;
use std::sync::Arc;

use super::shared::Shared;

/// Deposits a thread counts locally before adding them to the budget's
/// shared counter: the amortised cost of the shared atomic add is 1/32 of
/// one, and a withdrawal misses at most `BATCH - 1` deposits per other
/// thread.
const BATCH: usize = 32;

/// Sets of the cache; two budgets (ways) per set. Budgets are given sets
/// round-robin as they are first used (their ids are consecutive), so one
/// thread counts the deposits of up to `2 × SETS` budgets locally without
/// evicting any.
const SETS: usize = 8;
const _: () = assert!(SETS.is_power_of_two());

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
                        if let Some(old) = counters.0[set + 1].replace(Some(Arc::clone(shared))) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids no real budget has: the process hands them out from 1 upwards.
    const FIRST_ID: usize = usize::MAX / 2;

    #[test]
    fn after_the_first_deposit_a_batch_takes_the_fast_path() {
        let shared = Arc::new(Shared::new());
        assert!(deposit_slow(FIRST_ID, &shared), "a live thread caches");
        // The fast path counts the rest of the batch without the shared
        // counter: 31 deposits in all stay on this thread.
        for n in 2..BATCH {
            assert!(try_deposit(FIRST_ID), "deposit {n} missed the fast path");
        }
        assert_eq!(shared.pending(), 0);
        // The 32nd is the batch's flush.
        assert!(!try_deposit(FIRST_ID));
        assert!(deposit_slow(FIRST_ID, &shared));
        assert_eq!(shared.pending(), BATCH);
    }

    #[test]
    fn consecutive_budgets_do_not_evict_each_other() {
        let budgets: Vec<(usize, Arc<Shared>)> = (0..2 * SETS)
            .map(|i| (FIRST_ID + 64 + i, Arc::new(Shared::new())))
            .collect();
        for _ in 0..3 {
            for (id, shared) in &budgets {
                if !try_deposit(*id) {
                    assert!(deposit_slow(*id, shared));
                }
            }
        }
        // 2 × SETS budgets fit: every deposit is still on this thread.
        for (_, shared) in &budgets {
            assert_eq!(shared.pending(), 0);
        }
        for (id, shared) in &budgets {
            flush(*id, shared);
            assert_eq!(shared.pending(), 3);
        }
    }
}
