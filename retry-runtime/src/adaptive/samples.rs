//! The samples of one interval: a latency histogram recorded without a
//! lock, and what an update reads from it.
//!
//! Each completed call adds one to the slot of its latency (one relaxed
//! `fetch_add`) and raises the interval's peak in-flight count if it saw a
//! higher one (a load, and a `fetch_max` only then). The update that ends
//! the interval swaps every slot back to zero and reads the counts it
//! took; a call recording at that moment lands in this interval or the
//! next, never in neither.
//!
//! The slots are log-linear, as HdrHistogram's: latencies in nanoseconds,
//! exact below 8 ns, then 8 slots per power of two, so each slot is at most
//! 1/8 wide relative to its lower bound and a quantile read at a slot's
//! middle is within about 6% of the true value. Latencies from 2^36 ns
//! (about 69 s) up share the last latency slot. One more slot counts the
//! calls reported dropped: they sort above every latency, so a quantile
//! falls among them once more than its complement of the calls dropped.
//! 273 slots of 4 bytes: about 1.1 KiB per limit.

use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::{atomic_array, const_fn};

const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// The largest latency with a slot of its own, in nanoseconds.
const LATENCY_MAX: u64 = (1 << 36) - 1;
/// Slots for latencies: the exact ones below `SUB`, then `SUB` per power of
/// two up to `LATENCY_MAX`.
const LATENCY_SLOTS: usize = slot_of(LATENCY_MAX) + 1;
/// The slot of dropped calls.
const DROPPED: usize = LATENCY_SLOTS;
const SLOTS: usize = LATENCY_SLOTS + 1;

pub(super) struct Samples {
    slots: [AtomicU32; SLOTS],
    peak_in_flight: AtomicU32,
}

/// The slot of a latency of `nanos`.
const fn slot_of(nanos: u64) -> usize {
    let v = if nanos > LATENCY_MAX {
        LATENCY_MAX
    } else {
        nanos
    };
    if v < SUB as u64 {
        return v as usize;
    }
    let top = 63 - v.leading_zeros();
    let sub = (v >> (top - SUB_BITS)) as usize & (SUB - 1);
    (top - SUB_BITS + 1) as usize * SUB + sub
}

/// The latency a slot stands for: the middle of its range.
const fn middle_of(slot: usize) -> u64 {
    if slot < SUB {
        return slot as u64;
    }
    let top = (slot / SUB) as u32 + SUB_BITS - 1;
    let width = 1u64 << (top - SUB_BITS);
    let lower = (SUB as u64 + (slot % SUB) as u64) << (top - SUB_BITS);
    lower + width / 2
}

impl Samples {
    const_fn! {
        pub(super) fn new() -> Self {
            Samples {
                slots: atomic_array![AtomicU32::new(0); SLOTS],
                peak_in_flight: AtomicU32::new(0),
            }
        }
    }

    /// Counts one completed call: its latency, or a drop, and the calls in
    /// flight when it was admitted.
    #[inline]
    pub(super) fn record(&self, nanos: u64, dropped: bool, in_flight: u32) {
        let slot = if dropped { DROPPED } else { slot_of(nanos) };
        if let Some(count) = self.slots.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if in_flight > self.peak_in_flight.load(Ordering::Relaxed) {
            self.peak_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        }
    }

    /// The calls counted so far, and how many of them dropped, without
    /// taking them.
    pub(super) fn count(&self) -> (u64, u64) {
        let all = self
            .slots
            .iter()
            .map(|count| u64::from(count.load(Ordering::Relaxed)))
            .sum();
        let dropped = u64::from(self.slots[DROPPED].load(Ordering::Relaxed));
        (all, dropped)
    }

    /// Takes the interval's samples, leaving the histogram empty.
    pub(super) fn take(&self) -> Interval {
        let mut counts = [0u32; SLOTS];
        for (taken, count) in counts.iter_mut().zip(&self.slots) {
            *taken = count.swap(0, Ordering::Relaxed);
        }
        Interval {
            counts,
            peak_in_flight: self.peak_in_flight.swap(0, Ordering::Relaxed),
        }
    }
}

/// The samples of one interval, taken.
pub(super) struct Interval {
    counts: [u32; SLOTS],
    /// The most calls in flight any of them was admitted with.
    pub(super) peak_in_flight: u32,
}

impl Interval {
    /// All the calls counted, dropped ones included.
    pub(super) fn calls(&self) -> u64 {
        self.counts.iter().map(|&n| u64::from(n)).sum()
    }

    pub(super) fn dropped(&self) -> u64 {
        u64::from(self.counts[DROPPED])
    }

    /// The `p` quantile of every call's latency, in nanoseconds; `None`
    /// when it falls among the dropped calls (more than `1 - p` of them
    /// dropped) or there are none.
    pub(super) fn quantile(&self, p: f64) -> Option<u64> {
        self.quantile_among(self.calls(), p)
    }

    /// The `p` quantile of the latencies of the calls that were not
    /// dropped; `None` without any.
    pub(super) fn quantile_of_successes(&self, p: f64) -> Option<u64> {
        self.quantile_among(self.calls() - self.dropped(), p)
    }

    fn quantile_among(&self, calls: u64, p: f64) -> Option<u64> {
        if calls == 0 {
            return None;
        }
        // The rank of the quantile among `calls`, 1-based: at least the
        // first call, at most the last.
        let rank = ((p * calls as f64).ceil() as u64).clamp(1, calls);
        let mut seen = 0;
        for (slot, &count) in self.counts[..LATENCY_SLOTS].iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return Some(middle_of(slot));
            }
        }
        None
    }
}

#[cfg(all(test, not(steadfast_loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exact_below_eight_then_eight_per_power_of_two() {
        for n in 0..8 {
            assert_eq!(slot_of(n), n as usize);
            assert_eq!(middle_of(n as usize), n);
        }
        assert_eq!(slot_of(8), 8);
        assert_eq!(slot_of(15), 15);
        assert_eq!(slot_of(16), 16);
        assert_eq!(slot_of(17), 16);
        assert_eq!(slot_of(18), 17);
        assert_eq!(slot_of(LATENCY_MAX), LATENCY_SLOTS - 1);
        assert_eq!(slot_of(u64::MAX), LATENCY_SLOTS - 1);
        assert_eq!(SLOTS, 273);
        // Every slot's middle lies in the slot, and within 1/16 of any
        // latency in it.
        for nanos in [
            9,
            100,
            1_000,
            12_345,
            10_000_000,
            12_500_000,
            60_000_000_000,
        ] {
            let middle = middle_of(slot_of(nanos));
            assert_eq!(slot_of(middle), slot_of(nanos), "{nanos}");
            let error = (middle as f64 - nanos as f64).abs() / nanos as f64;
            assert!(error <= 1.0 / 16.0, "{nanos}: {middle}");
        }
    }

    #[test]
    fn slots_increase_with_latency() {
        let mut last = 0;
        for shift in 0..40 {
            for extra in [0u64, 1, 3] {
                let nanos = (1u64 << shift) + extra * (1u64 << shift) / 4;
                let slot = slot_of(nanos);
                assert!(slot >= last, "{nanos}");
                last = slot;
            }
        }
    }

    #[test]
    fn quantiles_read_the_taken_interval_and_drops_sort_last() {
        let samples = Samples::new();
        for n in 1..=100u64 {
            samples.record(n * 1_000_000, false, n as u32);
        }
        assert_eq!(samples.count(), (100, 0));
        let interval = samples.take();
        assert_eq!(samples.count(), (0, 0), "taken");
        assert_eq!(interval.calls(), 100);
        assert_eq!(interval.peak_in_flight, 100);
        let p90 = interval.quantile(0.9).unwrap() as f64;
        assert!((p90 - 90e6).abs() / 90e6 < 0.07, "{p90}");
        let p50 = interval.quantile(0.5).unwrap() as f64;
        assert!((p50 - 50e6).abs() / 50e6 < 0.07, "{p50}");

        // 20 drops of 100: the 0.9 quantile is among them.
        for n in 1..=80u64 {
            samples.record(n * 1_000, false, 1);
        }
        for _ in 0..20 {
            samples.record(0, true, 1);
        }
        assert_eq!(samples.count(), (100, 20));
        let interval = samples.take();
        assert_eq!(interval.dropped(), 20);
        assert_eq!(interval.quantile(0.9), None);
        assert!(interval.quantile(0.5).is_some());
        let p90 = interval.quantile_of_successes(0.9).unwrap() as f64;
        assert!((p90 - 72e3).abs() / 72e3 < 0.07, "{p90}");
    }

    #[test]
    fn an_empty_interval_has_no_quantile() {
        let interval = Samples::new().take();
        assert_eq!(interval.quantile(0.5), None);
        assert_eq!(interval.quantile_of_successes(0.5), None);
        let samples = Samples::new();
        samples.record(5, true, 1);
        assert_eq!(samples.take().quantile_of_successes(0.5), None);
    }
}
