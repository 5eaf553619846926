//! The per-thread deposit cache: a 2-way set-associative table from a
//! budget's id to the batch of calls this thread has made and not yet
//! placed in the budget's window. Plain `Cell`s: only the owning thread
//! ever touches it. (Not built for the loom models, which place every call
//! in the window at once.)
//!
//! A batch is the calls of one thread inside one slot of the window, with
//! the times of its first and last call: so the window places them at the
//! time they were made, however late the batch reaches it. A batch ends
//! (is placed) when its slot ends, when it reaches `BATCH` calls, when the
//! thread withdraws from the budget, when the entry is evicted, or when the
//! thread exits.
//!
//! It is split in two thread-locals so that the hot path needs no
//! registration check: `COUNTS` (ids, counts, times) has no destructor, so
//! reaching it is a bare thread-pointer offset; `COUNTERS` holds the shared
//! parts the batches belong to, and its destructor places the batches when
//! the thread exits. An entry is only ever filled after `COUNTERS` was
//! reached, i.e. registered for destruction.

use std::cell::Cell;
use std::sync::Arc;

use tokio::time::Instant;

use super::shared::{Batch, Shared};

/// Calls a thread counts locally before placing them in the budget's
/// window: the amortised cost of the window's lock is 1/31 of one, and a
/// withdrawal misses at most `BATCH - 1` calls per other thread.
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
    /// Calls in the batch; at least 1 while `end` is set.
    count: Cell<usize>,
    first: Cell<Option<Instant>>,
    last: Cell<Option<Instant>>,
    /// When the slot the batch is in ends; `None` when there is no batch
    /// the fast path may add to.
    end: Cell<Option<Instant>>,
}

impl Count {
    /// Adds a call made at `now` to the batch, if there is one, still in
    /// its slot and not full.
    #[inline]
    fn add(&self, now: Instant) -> bool {
        let n = self.count.get() + 1;
        let fits = n < BATCH && self.end.get().is_some_and(|end| now < end);
        if fits {
            self.count.set(n);
            self.last.set(Some(now));
        }
        fits
    }

    /// Ends the entry's batch, if it has one, and returns it.
    fn take(&self) -> Option<Batch> {
        self.end.set(None);
        let calls = self.count.replace(0);
        match (calls, self.first.get(), self.last.get()) {
            (1.., Some(first), Some(last)) => Some(Batch { calls, first, last }),
            _ => None,
        }
    }

    fn start(&self, now: Instant, end: Instant) {
        self.count.set(1);
        self.first.set(Some(now));
        self.last.set(Some(now));
        self.end.set(Some(end));
    }
}

/// `[2s]` and `[2s + 1]` form set `s`; the first is the most recently
/// used of the two.
struct Counters([Cell<Option<Arc<Shared>>>; ENTRIES]);

impl Drop for Counters {
    /// A thread that exits places its batches (and empties its entries, so
    /// a deposit made by a later thread-local destructor goes straight to
    /// the window).
    fn drop(&mut self) {
        let _ = COUNTS.try_with(|counts| {
            for (count, counter) in counts.iter().zip(&self.0) {
                count.id.set(0);
                let batch = count.take();
                if let (Some(counter), Some(batch)) = (counter.take(), batch) {
                    counter.deposit(batch);
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
                first: Cell::new(None),
                last: Cell::new(None),
                end: Cell::new(None),
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

/// The hot path: counts one call made at `now` if budget `id` is the most
/// recent of its set, its batch is still in its slot and not full. `false`
/// sends the caller to `deposit_slow`.
#[inline]
pub(super) fn try_deposit(id: usize, now: Instant) -> bool {
    COUNTS
        .try_with(|counts| {
            let entry = &counts[set_of(id)];
            entry.id.get() == id && entry.add(now)
        })
        .unwrap_or(false)
}

/// Everything else: a batch that is full or whose slot ended (placed in
/// `shared`), the budget in the second way (moved to the first), not cached
/// (the second way is evicted, placing its batch, and the budget takes the
/// first), or the thread exiting (`false`: the caller places the call
/// itself). The call made at `now` starts a new batch.
pub(super) fn deposit_slow(id: usize, shared: &Arc<Shared>, now: Instant) -> bool {
    let set = set_of(id);
    COUNTERS
        .try_with(|counters| {
            COUNTS.with(|counts| {
                let (first, second) = (&counts[set], &counts[set + 1]);
                if first.id.get() != id {
                    if second.id.get() != id {
                        // Evict the second way.
                        let batch = second.take();
                        if let Some(old) = counters.0[set + 1].replace(Some(Arc::clone(shared))) {
                            if let Some(batch) = batch {
                                old.deposit(batch);
                            }
                        }
                        second.id.set(id);
                    }
                    first.id.swap(&second.id);
                    first.count.swap(&second.count);
                    first.first.swap(&second.first);
                    first.last.swap(&second.last);
                    first.end.swap(&second.end);
                    counters.0[set].swap(&counters.0[set + 1]);
                }
                if !first.add(now) {
                    let end = shared.deposit_and_slot_end(first.take(), now);
                    first.start(now, end);
                }
            })
        })
        .is_ok()
}

/// Ends this thread's batch for budget `id`, if it has one, for the caller
/// to place.
pub(super) fn take(id: usize) -> Option<Batch> {
    let set = set_of(id);
    COUNTS
        .try_with(|counts| {
            counts[set..set + 2]
                .iter()
                .find(|entry| entry.id.get() == id)
                .and_then(Count::take)
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Ids no real budget has: the process hands them out from 1 upwards.
    const FIRST_ID: usize = usize::MAX / 2;

    /// A window of 10 s, so 1 s slots.
    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn inside_one_slot_a_batch_takes_the_fast_path() {
        let now = Instant::now();
        let shared = Arc::new(Shared::new(TTL, now));
        assert!(deposit_slow(FIRST_ID, &shared, now), "a live thread caches");
        // The fast path counts the rest of the batch without the window:
        // 31 calls in all stay on this thread.
        for n in 2..BATCH {
            assert!(try_deposit(FIRST_ID, now), "call {n} missed the fast path");
        }
        assert_eq!(shared.pending(), 0);
        // The 32nd places the batch and starts the next.
        assert!(!try_deposit(FIRST_ID, now));
        assert!(deposit_slow(FIRST_ID, &shared, now));
        assert_eq!(shared.pending(), BATCH - 1);
        assert_eq!(take(FIRST_ID).map(|batch| batch.calls), Some(1));
    }

    #[test]
    fn a_batch_ends_with_its_slot() {
        let start = Instant::now();
        let shared = Arc::new(Shared::new(TTL, start));
        let id = FIRST_ID + 1;
        assert!(deposit_slow(id, &shared, start));
        let almost = start + Duration::from_millis(999);
        assert!(try_deposit(id, almost), "still inside the first 1 s slot");
        let next_slot = start + Duration::from_secs(1);
        assert!(!try_deposit(id, next_slot), "the slot ended");
        assert!(deposit_slow(id, &shared, next_slot));
        assert_eq!(shared.pending(), 2);
        let batch = take(id).expect("the call of the new slot");
        assert_eq!(
            (batch.calls, batch.first, batch.last),
            (1, next_slot, next_slot)
        );
        // Taken: the next call needs the slow path to start a batch.
        assert!(take(id).is_none());
        assert!(!try_deposit(id, next_slot));
    }

    #[test]
    fn consecutive_budgets_do_not_evict_each_other() {
        let now = Instant::now();
        let budgets: Vec<(usize, Arc<Shared>)> = (0..2 * SETS)
            .map(|i| (FIRST_ID + 64 + i, Arc::new(Shared::new(TTL, now))))
            .collect();
        for _ in 0..3 {
            for (id, shared) in &budgets {
                if !try_deposit(*id, now) {
                    assert!(deposit_slow(*id, shared, now));
                }
            }
        }
        // 2 × SETS budgets fit: every call is still on this thread.
        for (id, shared) in &budgets {
            assert_eq!(shared.pending(), 0);
            assert_eq!(take(*id).map(|batch| batch.calls), Some(3));
        }
    }
}
