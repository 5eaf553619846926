//! The count-based window: rings of up to 1024 outcome bits, one for
//! failures and one for slow calls.
//!
//! In rate mode the closed count in the state word is the index of the next
//! slot. A call claims its slot by advancing that index with the same
//! compare-and-swap that checks its generation (see `machine.rs`), then
//! writes its bit here, a set bit meaning failure. The failure count is the
//! population count of the valid slots, read only when a failure (or the
//! call that reaches `min_calls`) could trip the breaker, so it cannot drift
//! from the ring as a separately kept counter could. A new generation starts
//! at index 0 and only counts the slots it has written since, so the ring
//! never needs clearing.
//!
//! The claim and the bit write are two steps, so under contention a bit may
//! briefly lag behind its claim, and a thread descheduled between them for a
//! whole open/half-open cycle may write one stale bit into the next
//! generation's ring: the rate is then off by that one call until the slot
//! is reused. Trading that for a lock on every call is not worth it.
//!
//! A slow call sets its bit in the slow-call ring, at the same index. In
//! consecutive mode with slow calls the failure streak shares the count
//! with the index: the index in the low [`INDEX_BITS`] bits (it stays below
//! `2 * MAX_WINDOW`), the streak above, up to [`STREAK_MAX`].

use super::state::COUNT_MAX;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{atomic_array, const_fn};

/// The largest failure-rate window; larger windows are clamped to it.
pub(super) const MAX_WINDOW: u32 = 1024;
const WORDS: usize = (MAX_WINDOW / 64) as usize;
/// Bits of a packed count that hold the ring index.
const INDEX_BITS: u32 = 11;
/// The longest failure streak a packed count holds.
pub(super) const STREAK_MAX: u32 = COUNT_MAX >> INDEX_BITS;

pub(super) struct Ring([AtomicU64; WORDS]);

impl Ring {
    const_fn! {
        pub(super) fn new() -> Self {
            Ring(atomic_array![AtomicU64::new(0); WORDS])
        }
    }

    /// Records the outcome of the call that claimed `index`.
    pub(super) fn write(&self, index: u32, window: u32, failed: bool) {
        let slot = slot(index, window) as usize;
        let bit = 1u64 << (slot % 64);
        if let Some(cell) = self.0.get(slot / 64) {
            // Most outcomes repeat what the slot held a lap ago (a success
            // where a success was): then the bit is already right, and a
            // read, which leaves the line shared between cores, does.
            if (cell.load(Ordering::Acquire) & bit != 0) == failed {
                return;
            }
            if failed {
                cell.fetch_or(bit, Ordering::AcqRel);
            } else {
                cell.fetch_and(!bit, Ordering::AcqRel);
            }
        }
    }

    /// Failures among ring slots `0..n`: in the first lap of a generation
    /// only those slots are its own.
    pub(super) fn failures_in_first(&self, n: u32) -> u32 {
        let n = n.min(MAX_WINDOW) as usize;
        let full = &self.0[..n / 64];
        let mut failures: u32 = full
            .iter()
            .map(|cell| cell.load(Ordering::Acquire).count_ones())
            .sum();
        if let Some(cell) = self.0.get(n / 64) {
            let mask = (1u64 << (n % 64)) - 1;
            failures += (cell.load(Ordering::Acquire) & mask).count_ones();
        }
        failures
    }
}

/// The index after `index` in a window of `window` slots. Once past the
/// first lap it stays in `[window, 2 * window)`: the slot is the same modulo
/// `window`, the count stays small, and `index >= window` still says "a
/// whole window has been recorded".
pub(super) const fn next_index(index: u32, window: u32) -> u32 {
    let next = index.saturating_add(1);
    if next >= window.saturating_mul(2) {
        next - window
    } else {
        next
    }
}

/// The ring slot of `index`: `index % window`, by one comparison and
/// subtraction for the indices [`next_index`] makes (below `2 * window`),
/// not a division.
const fn slot(index: u32, window: u32) -> u32 {
    if index < window {
        index
    } else if index - window < window {
        index - window
    } else {
        index % window
    }
}

/// `(index, streak)` of a count: the whole count is the index unless
/// `packed` (consecutive mode with slow calls).
pub(super) const fn unpack(count: u32, packed: bool) -> (u32, u32) {
    if packed {
        (count & ((1 << INDEX_BITS) - 1), count >> INDEX_BITS)
    } else {
        (count, 0)
    }
}

/// The count holding `index` and `streak` (saturated at [`STREAK_MAX`]).
pub(super) const fn pack(index: u32, streak: u32, packed: bool) -> u32 {
    if packed {
        let streak = if streak < STREAK_MAX {
            streak
        } else {
            STREAK_MAX
        };
        streak << INDEX_BITS | index
    } else {
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_count_masks_unclaimed_slots() {
        let ring = Ring::new();
        ring.0[0].store(u64::MAX, Ordering::Relaxed);
        ring.0[1].store(u64::MAX, Ordering::Relaxed);
        assert_eq!(ring.failures_in_first(0), 0);
        assert_eq!(ring.failures_in_first(3), 3);
        assert_eq!(ring.failures_in_first(64), 64);
        assert_eq!(ring.failures_in_first(70), 70);
        assert_eq!(ring.failures_in_first(1024), 128);
        assert_eq!(ring.failures_in_first(u32::MAX), 128);
    }

    #[test]
    fn a_packed_count_keeps_index_and_streak_apart() {
        let count = pack(2 * MAX_WINDOW - 1, 7, true);
        assert_eq!(unpack(count, true), (2 * MAX_WINDOW - 1, 7));
        assert_eq!(unpack(pack(5, u32::MAX, true), true), (5, STREAK_MAX));
        assert!(pack(2 * MAX_WINDOW - 1, u32::MAX, true) <= COUNT_MAX);
        assert_eq!(unpack(pack(9, 3, false), false), (9, 0));
    }

    #[test]
    fn a_slot_is_the_index_modulo_the_window() {
        for window in [1, 2, 3, 20, 64, MAX_WINDOW] {
            for index in (0..4 * window).chain([u32::MAX - 1, u32::MAX]) {
                assert_eq!(slot(index, window), index % window, "{index} in {window}");
            }
        }
    }

    #[test]
    fn the_index_laps_within_two_windows() {
        assert_eq!(next_index(0, 3), 1);
        assert_eq!(next_index(4, 3), 5);
        assert_eq!(next_index(5, 3), 3);
        assert_eq!(next_index(2047, MAX_WINDOW), MAX_WINDOW);
    }
}
