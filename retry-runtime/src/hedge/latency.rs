//! The latency quantile of one call site, estimated without a lock: a
//! log-linear histogram of atomic counters, read every [`REFRESH`] into a
//! cached delay, and halved then once it holds more than it needs, so that
//! recent attempts weigh most.
//!
//! # Resolution
//!
//! Latencies are counted in nanoseconds. Below 16 ns each value has a
//! bucket of its own; above, each power of two is cut into 16 buckets, so
//! a bucket is at most 1/16 of the values in it wide. The quantile is the
//! highest value of the bucket holding the sample of that rank (nearest
//! rank, as a sorted list of the samples would give): never below the true
//! sample quantile, and above it by at most 1/16 of it (6.25%). Latencies
//! of 2^40 ns (about 18 minutes) and more share the last bucket. 592
//! counters of 32 bits: 2368 bytes per call site, written with one relaxed
//! `fetch_add` per sample.
//!
//! # What is remembered
//!
//! Tower's hedge rotates two histograms by time; Finagle's backup filter
//! keeps a windowed one and reads it every few seconds. Here the first
//! call that finds the cached answer [`REFRESH`] old (3 s, Finagle's
//! refresh) computes it again, and then halves every counter if the
//! histogram holds more than [`enough`](Latency::enough) × 4 samples (at
//! least 1024): a busy site forgets in seconds, a quiet one keeps what it
//! has until it has enough. A sample recorded while the counters are halved
//! may be halved with them or not: an estimate, off by one sample at most.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::{atomic_array, const_fn};

/// Sub-buckets per power of two (2^4): a bucket is at most 1/16 of its
/// values wide.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// The largest power of two with buckets of its own: 2^39..2^40 ns.
const MAX_EXP: u32 = 39;
/// 16 exact buckets below 16 ns, then 16 per power of two from 2^4 to 2^39.
const BUCKETS: usize = SUB * (MAX_EXP - SUB_BITS + 2) as usize;
/// The largest latency with a bucket of its own; longer ones count in the
/// last bucket.
const MAX_NANOS: u64 = (1 << (MAX_EXP + 1)) - 1;

/// How often the cached quantile is computed again (Finagle's refresh).
pub(super) const REFRESH: Duration = Duration::from_secs(3);

/// The cached delay before a quantile is known.
const UNKNOWN: u64 = u64::MAX;

/// The bucket a latency of `nanos` counts in.
const fn bucket(nanos: u64) -> usize {
    let nanos = if nanos > MAX_NANOS { MAX_NANOS } else { nanos };
    if nanos < SUB as u64 {
        return nanos as usize;
    }
    let exp = 63 - nanos.leading_zeros();
    let sub = (nanos >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The highest latency counted in `index`.
const fn upper(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let group = (index / SUB) as u32;
    let sub = (index % SUB) as u64;
    let exp = group + SUB_BITS - 1;
    ((SUB as u64 + sub + 1) << (exp - SUB_BITS)) - 1
}

/// The latencies of one call site's attempts, and the quantile they give.
pub(crate) struct Latency {
    counts: [AtomicU32; BUCKETS],
    /// The quantile at the last refresh, in nanoseconds, or [`UNKNOWN`].
    cached: AtomicU64,
    /// When the cache is next due, in nanoseconds since `epoch`; 0 at first,
    /// so the first call computes it.
    due: AtomicU64,
    epoch: OnceLock<Instant>,
}

impl Latency {
    const_fn! {
        pub(crate) fn new() -> Self {
            Latency {
                counts: atomic_array![AtomicU32::new(0); BUCKETS],
                cached: AtomicU64::new(UNKNOWN),
                due: AtomicU64::new(0),
                epoch: OnceLock::new(),
            }
        }
    }

    /// Counts one attempt that took `latency`.
    #[inline]
    pub(crate) fn record(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket(nanos)].fetch_add(1, Ordering::Relaxed);
    }

    /// The samples a quantile `q` needs before it is trusted: two above
    /// it (`2 / (1 - q)`), and at least 20.
    pub(crate) fn enough(q: f64) -> u64 {
        let above = 2.0 / (1.0 - q).max(1e-6);
        (above.ceil() as u64).max(20)
    }

    /// The `q` quantile of the samples now counted (nearest rank), or
    /// `None` with fewer than `min_samples`.
    pub(crate) fn quantile(&self, q: f64, min_samples: u64) -> Option<u64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .collect();
        let total: u64 = counts.iter().sum();
        if total < min_samples.max(1) {
            return None;
        }
        // Nearest rank: the smallest sample with at least q of them at or
        // below it.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        counts.iter().enumerate().find_map(|(index, n)| {
            seen += n;
            (seen >= rank).then(|| upper(index))
        })
    }

    /// The `q` quantile as of the last refresh, computing it again (and
    /// forgetting half of the past) if it is [`REFRESH`] old, or while
    /// there is none: hedging starts with the sample that makes enough,
    /// not up to a refresh later (the sum over the counters that costs is
    /// paid only until then). One thread refreshes; the others read the
    /// answer it replaces.
    pub(crate) fn current(&self, q: f64, now: Instant) -> Option<Duration> {
        let epoch = *self.epoch.get_or_init(|| now);
        let at = u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        let due = self.due.load(Ordering::Relaxed);
        if at >= due || self.cached.load(Ordering::Relaxed) == UNKNOWN {
            let next = at.saturating_add(REFRESH.as_nanos() as u64).max(1);
            if self
                .due
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.refresh(q);
            }
        }
        match self.cached.load(Ordering::Relaxed) {
            UNKNOWN => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn refresh(&self, q: f64) {
        let enough = Self::enough(q);
        let quantile = self.quantile(q, enough);
        self.cached
            .store(quantile.unwrap_or(UNKNOWN), Ordering::Relaxed);
        if self.samples() > (enough * 4).max(1024) {
            for count in &self.counts {
                // Not a swap: samples recorded meanwhile are kept.
                let n = count.load(Ordering::Relaxed);
                count.fetch_sub(n / 2, Ordering::Relaxed);
            }
        }
    }

    /// Samples counted (after halving).
    pub(crate) fn samples(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The reference: the nearest-rank quantile of the sorted samples.
    fn reference(samples: &mut [u64], q: f64) -> u64 {
        samples.sort_unstable();
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1]
    }

    #[test]
    fn buckets_are_contiguous_and_hold_their_values() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(15), 15);
        assert_eq!(bucket(16), 16);
        assert_eq!(bucket(MAX_NANOS), BUCKETS - 1);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(upper(BUCKETS - 1), MAX_NANOS);
        for index in 0..BUCKETS {
            assert_eq!(bucket(upper(index)), index, "top of {index}");
            assert_eq!(bucket(upper(index) + 1), (index + 1).min(BUCKETS - 1));
        }
    }

    #[test]
    fn the_quantile_is_the_sorted_samples_within_one_sixteenth_above() {
        let mut rng = SmallRng::seed_from_u64(19);
        for case in 0..200 {
            let latency = Latency::new();
            let n = rng.random_range(1..3000);
            let mut samples: Vec<u64> = (0..n)
                .map(|_| match case % 4 {
                    // The model: U(5 ms, 15 ms), 1% at 250 ms.
                    0 if rng.random_bool(0.01) => 250_000_000,
                    0 => rng.random_range(5_000_000..15_000_000),
                    1 => rng.random_range(0..64),
                    2 => 1u64 << rng.random_range(0..40),
                    _ => rng.random_range(0..u64::MAX >> 20),
                })
                .collect();
            for &s in &samples {
                latency.record(Duration::from_nanos(s));
            }
            for q in [0.01, 0.5, 0.9, 0.95, 0.99, 0.999] {
                let truth = reference(&mut samples, q).min(MAX_NANOS);
                let estimate = latency.quantile(q, 1).unwrap();
                assert!(
                    truth <= estimate && estimate - truth <= truth / 16,
                    "q {q}: {estimate} against {truth} (case {case}, {n} samples)"
                );
            }
        }
    }

    #[test]
    fn too_few_samples_give_no_quantile() {
        let latency = Latency::new();
        assert_eq!(latency.quantile(0.95, 40), None);
        for _ in 0..39 {
            latency.record(Duration::from_millis(10));
        }
        assert_eq!(latency.quantile(0.95, 40), None);
        latency.record(Duration::from_millis(10));
        assert!(latency.quantile(0.95, 40).is_some());
        assert_eq!(Latency::enough(0.95), 40);
        assert_eq!(Latency::enough(0.5), 20);
        assert_eq!(Latency::enough(0.999), 2000);
    }

    /// A refresh halves the counts only once they hold more than four
    /// times what the quantile needs, and at least 1024: a quiet site's
    /// estimate keeps its samples, and a high quantile keeps enough above
    /// it.
    #[test]
    fn a_refresh_forgets_half_only_past_four_times_enough_samples() {
        // 1024 for a median (enough: 20); 8000 for q 0.999 (enough: 2000).
        for (q, keeps) in [(0.5, 1024), (0.999, 8000)] {
            let latency = Latency::new();
            for _ in 0..keeps {
                latency.record(Duration::from_millis(10));
            }
            latency.refresh(q);
            assert_eq!(latency.samples(), keeps, "q {q}: {keeps} kept");
            latency.record(Duration::from_millis(10));
            latency.refresh(q);
            assert_eq!(latency.samples(), keeps / 2 + 1, "q {q}: one more halves");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_cached_quantile_follows_a_change_within_a_few_refreshes() {
        let latency = Latency::new();
        let q = 0.5;
        assert_eq!(latency.current(q, Instant::now()), None, "nothing yet");
        // While there is no estimate, each look may make it: the 20th
        // sample is enough for a median.
        for _ in 0..19 {
            latency.record(Duration::from_millis(10));
        }
        assert_eq!(latency.current(q, Instant::now()), None, "19 samples");
        latency.record(Duration::from_millis(10));
        let ten = latency.current(q, Instant::now()).unwrap();
        assert!(ten >= Duration::from_millis(10) && ten <= Duration::from_micros(10_625));
        // Then it is cached until the refresh is due.
        for _ in 0..1980 {
            latency.record(Duration::from_millis(100));
        }
        assert_eq!(latency.current(q, Instant::now()), Some(ten), "cached");
        tokio::time::advance(REFRESH).await;
        let hundred = latency.current(q, Instant::now()).unwrap();
        assert!(hundred >= Duration::from_millis(100), "{hundred:?}");
        assert_eq!(latency.samples(), 1000, "more than 1024: halved");
        for _ in 0..3000 {
            latency.record(Duration::from_millis(10));
        }
        tokio::time::advance(REFRESH).await;
        let ten = latency.current(q, Instant::now()).unwrap();
        assert!(ten <= Duration::from_micros(10_625), "{ten:?}");
        // The site slows down: 1000 samples a refresh at 100 ms.
        let mut refreshes = 0;
        loop {
            for _ in 0..1000 {
                latency.record(Duration::from_millis(100));
            }
            tokio::time::advance(REFRESH).await;
            refreshes += 1;
            if latency.current(q, Instant::now()).unwrap() >= Duration::from_millis(100) {
                break;
            }
            assert!(
                refreshes < 3,
                "still at {ten:?} after {refreshes} refreshes"
            );
        }
        // A quiet site keeps what it has.
        let latency = Latency::new();
        for _ in 0..100 {
            latency.record(Duration::from_millis(10));
        }
        tokio::time::advance(REFRESH * 100).await;
        assert!(latency.current(q, Instant::now()).is_some());
        assert_eq!(latency.samples(), 100);
    }
}
