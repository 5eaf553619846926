//! The controller behind an [`AdaptiveLimit`](super::AdaptiveLimit): the
//! gate calls pass, the samples they leave, and the update that turns an
//! interval's samples into a new limit.
//!
//! # When the limit moves
//!
//! Admission and release never update the limit; a completed call does,
//! at most once per `interval`: the call that finds the interval due
//! claims it with one compare-and-swap of `next_update` (losers go on at
//! once), and the winner takes a lock that nobody else wants (the only
//! other taker is [`min_rtt`](Controller::min_rtt)) to run the algorithm
//! on the interval's samples and publish the result to the gate. The
//! first sample starts the first interval. An interval with fewer than
//! `min_samples` calls is stretched: it ends at the first sample after its
//! deadline that brings it to `min_samples` (each sample past the deadline
//! asks, which costs a swap and a lock only while traffic is that thin).
//! So on the call path a sample costs a clock read, a
//! `fetch_add` and two loads; the update, a few microseconds, is paid by
//! one call in each interval.
//!
//! # The no-load latency
//!
//! The gradient and Vegas compare latency with the latency the dependency
//! shows without a queue (`min_rtt`). As Envoy's filter does, they measure
//! it: a fresh limit starts at `min_rtt_limit` (3), and once
//! `min_rtt_samples` (50) calls admitted with at most that many in flight
//! have completed, their quantile is `min_rtt`; the limit then goes to
//! `initial` (the first time) or back to where it was. The measurement is
//! repeated every `min_rtt_every` (60 s) plus up to 15% jitter, so that a
//! dependency that became slower for good is not taken for a queue
//! forever, and replicas do not measure in step; and, as Envoy's filter
//! does, after 5 intervals in a row that ended at or under the measuring
//! limit, since a limit held that low by a dependency now slower for good
//! would otherwise wait a minute for its next measurement. Calls admitted with more
//! in flight than that (before the measurement began) are no sample of it,
//! and are left out.

use std::sync::OnceLock;
use std::sync::TryLockError;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::config::{Algorithm, Config};
use super::gate::Gate;
use super::judged::Judged;
use super::report::{self, Update};
use super::samples::Samples;
use super::{aimd, gradient, vegas};
use crate::rng::with_thread_rng;
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Mutex, const_fn};

/// Intervals in a row at or under the measuring limit after which the
/// no-load latency is measured again (Envoy's 5).
const LOW_INTERVALS: u32 = 5;

/// The controller's own state, behind its lock.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// Set on the first update: a `const` constructor cannot read the
    /// builders that follow it.
    started: bool,
    limit: f64,
    /// Nanoseconds; 0 until measured.
    min_rtt: u64,
    /// When to measure `min_rtt` again, in nanoseconds since the epoch.
    next_measure: u64,
    /// Intervals in a row that ended at or under the measuring limit.
    low: u32,
}

pub(super) struct Controller {
    pub(super) gate: Gate,
    samples: Samples,
    /// When the current interval ends, in nanoseconds since the epoch.
    next_update: AtomicU64,
    /// Measuring `min_rtt` (only read for the algorithms that need it).
    measuring: AtomicBool,
    estimate: Mutex<Estimate>,
    /// Set when the limit first needs the clock, which keeps construction
    /// `const`; times are nanoseconds since it.
    epoch: OnceLock<Instant>,
    pub(super) config: Config,
}

impl Controller {
    const_fn! {
        pub(super) fn new(config: Config) -> Self {
            Controller {
                gate: Gate::new(),
                samples: Samples::new(),
                next_update: AtomicU64::new(0),
                measuring: AtomicBool::new(true),
                estimate: Mutex::new(Estimate {
                    started: false,
                    limit: 0.0,
                    min_rtt: 0,
                    next_measure: 0,
                    low: 0,
                }),
                epoch: OnceLock::new(),
                config,
            }
        }
    }

    /// Admits a call if one is below the limit: the in-flight count it
    /// made.
    #[inline]
    pub(super) fn try_take(&self) -> Option<u32> {
        self.gate.try_take(|| self.config.first_limit())
    }

    /// The first limit, for the gate to set on first use.
    pub(super) fn first(&self) -> impl Fn() -> u32 + Copy + '_ {
        || self.config.first_limit()
    }

    /// The limit now.
    pub(super) fn limit(&self) -> u32 {
        match self.gate.load().1 {
            0 => self.config.first_limit(),
            limit => limit,
        }
    }

    /// The no-load latency, once measured.
    pub(super) fn min_rtt(&self) -> Option<Duration> {
        let estimate = match self.estimate.lock() {
            Ok(estimate) => *estimate,
            Err(poisoned) => *poisoned.into_inner(),
        };
        (estimate.min_rtt > 0).then(|| Duration::from_nanos(estimate.min_rtt))
    }

    /// A call admitted at `started` with `in_flight` calls in flight (itself
    /// included) completed, dropped or not; its slot is already given back.
    #[inline]
    pub(super) fn record(&self, started: u64, in_flight: u32, dropped: bool) {
        let config = &self.config;
        let now = self.now_nanos();
        let latency = now.saturating_sub(started);
        let dropped =
            dropped || (config.drop_above_nanos != 0 && latency > config.drop_above_nanos);
        let no_load_sample = !(config.measures_min_rtt()
            && self.measuring.load(Ordering::Relaxed)
            && in_flight > config.bounded(config.min_rtt_limit));
        if no_load_sample {
            self.samples.record(latency, dropped, in_flight);
        }
        if now >= self.next_update.load(Ordering::Relaxed) {
            self.update_at(now);
        }
    }

    /// The interval is due: claim it, and update if this call won. The
    /// first sample only starts the first interval.
    #[inline(never)]
    fn update_at(&self, now: u64) {
        let due = self.next_update.load(Ordering::Acquire);
        if now < due {
            return;
        }
        let next = now.saturating_add(self.config.interval_nanos);
        if self
            .next_update
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
            || due == 0
        {
            return;
        }
        let mut estimate = match self.estimate.try_lock() {
            Ok(estimate) => estimate,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Still updating from an earlier interval: skip this one.
            Err(TryLockError::WouldBlock) => return,
        };
        if !self.update(&mut estimate, now) {
            // Too few samples: the interval goes on, and the next sample
            // asks again.
            self.next_update.store(now.max(1), Ordering::Release);
        }
    }

    /// Judges the interval ending `now`; `false` if it has too few samples
    /// to judge yet.
    fn update(&self, estimate: &mut Estimate, now: u64) -> bool {
        let config = &self.config;
        if !estimate.started {
            estimate.started = true;
            estimate.limit = f64::from(config.bounded(config.initial));
        }
        if config.measures_min_rtt() {
            if self.measuring.load(Ordering::Acquire) {
                return self.measure(estimate, now);
            }
            if now >= estimate.next_measure {
                self.start_measuring(estimate);
                return true;
            }
        }
        let (calls, _) = self.samples.count();
        if calls < u64::from(config.min_samples) {
            return false;
        }
        let interval = self.samples.take();
        let (in_flight, published) = self.gate.load();
        let latency = interval.quantile(config.percentile);
        let judged = Judged {
            limit: estimate.limit,
            latency: latency.map(|n| n as f64),
            dropped: interval.dropped(),
            app_limited: u64::from(interval.peak_in_flight) * 2 < u64::from(published),
            min_rtt: estimate.min_rtt as f64,
        };
        let next = match config.algorithm {
            Algorithm::Gradient => gradient::next(config, &judged),
            Algorithm::Aimd => aimd::next(config, &judged),
            Algorithm::Vegas => vegas::next(config, &judged),
        };
        let (min, max) = config.bounds();
        estimate.limit = next.clamp(f64::from(min), f64::from(max));
        let to = config.publishable(estimate.limit);
        let from = self.gate.set_limit(to);
        if config.measures_min_rtt() {
            // Held down at the measuring limit for a while: the no-load
            // latency itself may have moved (a dependency slower for
            // good), and the queue the algorithm sees is a phantom.
            // Envoy's filter measures again then too.
            estimate.low = if to <= config.bounded(config.min_rtt_limit) {
                estimate.low + 1
            } else {
                0
            };
            if estimate.low >= LOW_INTERVALS {
                estimate.next_measure = now;
            }
        }
        report::updated(
            config.name,
            Update {
                from,
                to,
                in_flight,
                calls: interval.calls(),
                dropped: interval.dropped(),
                latency,
                min_rtt: estimate.min_rtt,
            },
        );
        true
    }

    /// While measuring: done once enough calls made at the measuring limit
    /// have completed (`false` until then); then back to the estimate.
    fn measure(&self, estimate: &mut Estimate, now: u64) -> bool {
        let config = &self.config;
        let (calls, dropped) = self.samples.count();
        if calls - dropped < u64::from(config.min_rtt_samples) {
            return false;
        }
        let Some(min_rtt) = self.samples.take().quantile_of_successes(config.percentile) else {
            return false;
        };
        estimate.min_rtt = min_rtt.max(1);
        let every = config.min_rtt_every_nanos;
        let jitter = with_thread_rng(|rng| rng.random::<f64>()) * config.min_rtt_jitter;
        estimate.next_measure = now
            .saturating_add(every)
            .saturating_add((every as f64 * jitter) as u64);
        self.measuring.store(false, Ordering::Release);
        let limit = config.publishable(estimate.limit);
        self.gate.set_limit(limit);
        report::measuring(config.name, false, limit, estimate.min_rtt);
        true
    }

    fn start_measuring(&self, estimate: &mut Estimate) {
        let config = &self.config;
        estimate.low = 0;
        self.measuring.store(true, Ordering::Release);
        let _ = self.samples.take();
        let limit = config.bounded(config.min_rtt_limit);
        self.gate.set_limit(limit);
        report::measuring(config.name, true, limit, estimate.min_rtt);
    }

    /// Nanoseconds since the limit's epoch on the tokio clock.
    #[inline]
    pub(super) fn now_nanos(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        let elapsed = Instant::now().saturating_duration_since(epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the no-load latency is being measured (for `Debug`).
    pub(super) fn is_measuring(&self) -> bool {
        self.config.measures_min_rtt() && self.measuring.load(Ordering::Relaxed)
    }
}
