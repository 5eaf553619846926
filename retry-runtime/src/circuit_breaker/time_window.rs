//! The time-based window (`failure_rate_over`): the calls, failures and
//! slow calls of the last `period`, in [`BUCKETS`] buckets of `period /
//! BUCKETS` each, on the tokio clock.
//!
//! Time is cut into buckets numbered from the breaker's epoch; bucket `n`
//! lives in slot `n % BUCKETS`. The window at bucket `now` is buckets
//! `now - BUCKETS + 1 ..= now`: the current, partial bucket and the
//! `BUCKETS - 1` whole ones before it. So it covers the last `period` to
//! one bucket's width: between `period - width` and `period` of history,
//! the oldest bucket leaving whole. This is resilience4j's
//! `SlidingTimeWindowMetrics` (one bucket per second of the window).
//!
//! Each slot is three words, calls, failures and slow calls, each holding
//! the low 32 bits of its bucket number (the stamp) above a 32-bit count.
//! A word whose stamp is not the bucket its slot should hold now is stale
//! and counts as zero, so stale buckets need no sweeping: the first outcome
//! of a new bucket replaces the word with a count of one, by
//! compare-and-swap, without a lock. The three words of a call are written
//! one after the other, so a reader may see a call before its failure;
//! counts saturate at `u32::MAX` per bucket. A stamp is ambiguous only
//! after 2^32 buckets (at least 49 days, see the period's floor in
//! `config.rs`) without an outcome in that slot.
//!
//! The window belongs to one closed (or disabled) period: the thread whose
//! swap ends such a period [`clear`](TimeRing::clear)s it (see
//! `machine.rs`), by stamping every word with a bucket that is already out
//! of the window. An outcome that read a still-current generation just
//! before that swap may land after the clear, and count in the next
//! period: off by one call, as in the count-based window.

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{atomic_array, const_fn};

/// Buckets in the time-based window.
pub(super) const BUCKETS: usize = 10;
const CALLS: usize = 0;
const FAILURES: usize = 1;
const SLOW: usize = 2;
/// Adaptive throttling keeps its requests where the failure rate keeps its
/// calls (`Totals::calls`), its accepts where the failures are
/// (`Totals::failures`), and its requests still pending where the slow
/// calls are: the two modes never share a breaker. All three are counted
/// in the bucket the request started in.
pub(super) const REQUESTS: usize = CALLS;
pub(super) const ACCEPTS: usize = FAILURES;
pub(super) const PENDING: usize = SLOW;

/// What the time-based window holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Totals {
    pub(super) calls: u32,
    pub(super) failures: u32,
    pub(super) slow: u32,
}

pub(super) struct TimeRing([AtomicU64; BUCKETS * 3]);

impl TimeRing {
    const_fn! {
        pub(super) fn new() -> Self {
            TimeRing(atomic_array![AtomicU64::new(0); BUCKETS * 3])
        }
    }

    /// Counts one call in bucket `bucket`.
    pub(super) fn record(&self, bucket: u64, failed: bool, slow: bool) {
        let slot = slot(bucket);
        let stamp = stamp(bucket);
        self.bump(slot + CALLS, stamp);
        if failed {
            self.bump(slot + FAILURES, stamp);
        }
        if slow {
            self.bump(slot + SLOW, stamp);
        }
    }

    /// Counts one in `field` of bucket `bucket`, the current one (an older
    /// stamp in its slot is replaced).
    pub(super) fn add(&self, bucket: u64, field: usize) {
        self.bump(slot(bucket) + field, stamp(bucket));
    }

    /// Counts one in `field` of bucket `bucket` (`up`), or takes one back,
    /// as long as that bucket has not left its slot to a later one: a
    /// request's later events (its accept, its end) go to the bucket it
    /// started in. Counting up replaces an older bucket's word (the first
    /// accept of a bucket finds the stamp of ten buckets before); a word of
    /// a later bucket is left alone, and so is one with nothing to take
    /// back. Never below zero, never past the count's maximum.
    pub(super) fn adjust(&self, bucket: u64, field: usize, up: bool) {
        let Some(cell) = self.0.get(slot(bucket) + field) else {
            return;
        };
        let stamp = stamp(bucket);
        let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            let count = word & COUNT_MASK;
            // Stamps are bucket numbers modulo 2^32: the word's bucket is
            // older when `bucket` is ahead of it by less than half the range.
            let ahead = (stamp.wrapping_sub(word & !COUNT_MASK) >> 32) as u32;
            match (ahead, up) {
                (0, true) if count < COUNT_MASK => Some(word + 1),
                (0, false) if count > 0 => Some(word - 1),
                (1.., true) if ahead < 1 << 31 => Some(stamp | 1),
                _ => None,
            }
        });
    }

    /// What `field` of bucket `bucket` holds (0 once stale).
    pub(super) fn count(&self, bucket: u64, field: usize) -> u32 {
        self.0.get(slot(bucket) + field).map_or(0, |cell| {
            let word = cell.load(Ordering::Acquire);
            if word & !COUNT_MASK == stamp(bucket) {
                (word & COUNT_MASK) as u32
            } else {
                0
            }
        })
    }

    fn bump(&self, index: usize, stamp: u64) {
        let Some(cell) = self.0.get(index) else {
            return;
        };
        let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
            Some(if word & !COUNT_MASK == stamp {
                word + u64::from(word & COUNT_MASK < COUNT_MASK)
            } else {
                stamp | 1
            })
        });
    }

    /// The totals of the window ending with bucket `now`.
    pub(super) fn totals(&self, now: u64) -> Totals {
        let mut totals = Totals::default();
        for back in 0..(BUCKETS as u64).min(now + 1) {
            let bucket = now - back;
            let (slot, stamp) = (slot(bucket), stamp(bucket));
            let count = |field: usize| {
                self.0.get(slot + field).map_or(0, |cell| {
                    let word = cell.load(Ordering::Acquire);
                    if word & !COUNT_MASK == stamp {
                        (word & COUNT_MASK) as u32
                    } else {
                        0
                    }
                })
            };
            totals.calls = totals.calls.saturating_add(count(CALLS));
            totals.failures = totals.failures.saturating_add(count(FAILURES));
            totals.slow = totals.slow.saturating_add(count(SLOW));
        }
        totals
    }

    /// Empties the window as seen from bucket `now` on: every word gets
    /// the stamp of a bucket already out of it.
    pub(super) fn clear(&self, now: u64) {
        let stale = stamp(now.wrapping_sub(BUCKETS as u64));
        for cell in &self.0 {
            cell.store(stale, Ordering::Release);
        }
    }
}

const COUNT_MASK: u64 = u32::MAX as u64;

/// The first of the three words of `bucket`'s slot.
const fn slot(bucket: u64) -> usize {
    (bucket % BUCKETS as u64) as usize * 3
}

/// `bucket`'s stamp, in place above the count.
const fn stamp(bucket: u64) -> u64 {
    bucket << 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_counts_until_its_slot_is_reused() {
        let ring = TimeRing::new();
        ring.record(0, true, false);
        ring.record(0, false, true);
        ring.record(3, false, false);
        let at = |now| ring.totals(now);
        let all = Totals {
            calls: 3,
            failures: 1,
            slow: 1,
        };
        assert_eq!(at(3), all);
        assert_eq!(at(9), all, "bucket 0 is the oldest in the window");
        assert_eq!(
            at(10),
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            },
            "bucket 0 left whole"
        );
        // Bucket 10 reuses bucket 0's slot and starts from one.
        ring.record(10, false, false);
        assert_eq!(at(10).calls, 2);
        assert_eq!(at(13).calls, 1, "bucket 3 left, bucket 10 stays");
        assert_eq!(at(20), Totals::default());
    }

    #[test]
    fn clear_empties_the_window_for_later_buckets() {
        let ring = TimeRing::new();
        for bucket in 0..12 {
            ring.record(bucket, true, true);
        }
        assert_eq!(ring.totals(11).calls, 10);
        ring.clear(11);
        assert_eq!(ring.totals(11), Totals::default());
        assert_eq!(ring.totals(20), Totals::default());
        ring.record(12, false, false);
        assert_eq!(ring.totals(12).calls, 1);
    }

    #[test]
    fn a_request_is_adjusted_only_in_its_own_bucket() {
        let ring = TimeRing::new();
        ring.add(3, REQUESTS);
        ring.add(3, REQUESTS);
        // The first accept of bucket 3 replaces the word of an older one.
        ring.adjust(3, ACCEPTS, true);
        assert_eq!(ring.count(3, ACCEPTS), 1);
        ring.adjust(3, ACCEPTS, true);
        assert_eq!((ring.totals(4).calls, ring.totals(4).failures), (2, 2));
        // Taking back from a word of an older bucket takes nothing.
        ring.adjust(3, SLOW, false);
        assert_eq!(ring.count(3, SLOW), 0);
        ring.adjust(3, REQUESTS, false);
        assert_eq!(ring.totals(4).calls, 1);
        assert_eq!(ring.count(3, REQUESTS), 1);
        // Bucket 13 reuses bucket 3's slot: 3's count is gone, and
        // adjusting 3 then must not touch 13's.
        ring.add(13, REQUESTS);
        ring.adjust(3, REQUESTS, false);
        ring.adjust(3, REQUESTS, true);
        assert_eq!(ring.totals(13).calls, 1);
        assert_eq!(ring.count(3, REQUESTS), 0);
        ring.adjust(13, REQUESTS, false);
        ring.adjust(13, REQUESTS, false);
        assert_eq!(ring.totals(13).calls, 0, "never below zero");
        ring.0[slot(13) + REQUESTS].store(stamp(13) | COUNT_MASK, Ordering::Relaxed);
        ring.adjust(13, REQUESTS, true);
        assert_eq!(ring.count(13, REQUESTS), u32::MAX, "never past the maximum");
    }

    #[test]
    fn counts_saturate_instead_of_spilling_into_the_stamp() {
        let ring = TimeRing::new();
        ring.0[CALLS].store(stamp(0) | COUNT_MASK, Ordering::Relaxed);
        ring.record(0, false, false);
        assert_eq!(ring.totals(0).calls, u32::MAX);
    }
}
