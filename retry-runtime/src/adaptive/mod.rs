//! An adaptive concurrency limit: a bulkhead whose size is learnt from the
//! latency and the drops of the calls it admits.
//!
//! # Algorithms
//!
//! | here | what moves the limit | peer |
//! |---|---|---|
//! | [`gradient`](AdaptiveLimit::gradient) (the default) | `(min_rtt · (1 + buffer)) / p90`, clamped to 0.5..2, times the limit, plus its square root, every 100 ms | Envoy's adaptive concurrency filter (the same formula, minRTT measured the same way); Netflix's Gradient2 (same shape, a smoothed long-term latency instead of a measured minimum, tolerance 1.5) |
//! | [`aimd`](AdaptiveLimit::aimd) | a drop: × 0.9; otherwise + 1 per interval | Netflix's `AIMDLimit` (per window, as under its `WindowedLimit`) |
//! | [`vegas`](AdaptiveLimit::vegas) | the queue `limit · (1 - min_rtt / latency)` against `3·log10(limit)` and `6·log10(limit)` | Netflix's `VegasLimit`, TCP Vegas |
//!
//! `docs/design.md` ("Adaptive concurrency") sets the peers' choices side
//! by side, and explains each default; the scenario tests
//! (`tests/adaptive_scenarios.rs`) hold them to ranges.
//!
//! # Where things are
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`AdaptiveLimit`]: its `const` builders and public methods |
//! | `config.rs` | what the builders set, clamped, and the defaults |
//! | `gate.rs` | in-flight and limit in one word: admission (one compare-and-swap), release, waiting (async and blocking) |
//! | `samples.rs` | the interval's latency histogram, recorded without a lock |
//! | `control.rs` | when the limit moves: one update per interval, and the measurement of the no-load latency |
//! | `gradient.rs`, `aimd.rs`, `vegas.rs` | each algorithm: an interval's samples in, a limit out |
//! | `permit.rs` | [`AdaptivePermit`]: reporting one call's outcome |
//! | `report.rs` | `tracing` events and `metrics` for updates |
//!
//! Dependencies point one way: `mod.rs` → `control.rs` → `gate.rs`,
//! `samples.rs`, the algorithms, `report.rs`; `permit.rs` reaches the
//! state through `control.rs`.

mod aimd;
mod config;
mod control;
mod gate;
mod gradient;
mod judged;
mod permit;
mod report;
mod samples;
mod vegas;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::error::Rejected;
use crate::sync::const_fn;
use config::{Algorithm, Config};
use control::Controller;

pub use permit::AdaptivePermit;

/// A concurrency limit that adapts to the dependency it guards: it admits
/// calls while fewer than [`limit`](Self::limit) are in flight, as a
/// [`Bulkhead`](crate::Bulkhead) does, and moves the limit every 100 ms
/// from the latency and the drops its calls report.
///
/// ```
/// use retry_runtime::AdaptiveLimit;
///
/// static DB: AdaptiveLimit = AdaptiveLimit::gradient().initial(20).min(1).max(200);
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let permit = DB.acquire().await;
/// // ... one call to the database ...
/// permit.success(); // its latency is a sample
/// assert_eq!(DB.in_flight(), 0);
/// # }
/// ```
///
/// Every builder is a `const fn`, so a limit lives in a `static` shared by
/// every caller; its state is atomics inside the one instance, so every
/// reference to it (a `&'static`, an `Arc`'s clones) shares one count and
/// one limit. It is not `Clone`: a copy with counts of its own would admit
/// a second limit's worth of calls (the bug tower-resilience's adaptive
/// limiter had). Share it by reference, or in an `Arc`.
///
/// Calls take a slot with [`try_acquire`](Self::try_acquire) (refused at
/// once when full), [`acquire`](Self::acquire) (waits),
/// [`acquire_timeout`](Self::acquire_timeout) (waits up to a `max_wait`,
/// then [`Rejected`]), or their blocking forms for plain functions; all
/// share one count and one line of waiters. Each slot is an
/// [`AdaptivePermit`]: report the call with
/// [`success`](AdaptivePermit::success) (a latency sample) or
/// [`dropped`](AdaptivePermit::dropped) (a timeout or an overload
/// refusal), or drop it to give the slot back with no sample.
///
/// # How it learns
///
/// - **[`gradient`](Self::gradient)** (the default): Envoy's gradient
///   controller. It measures the latency without load (`min_rtt`) at a
///   low limit when it starts and every minute, then each interval sets
///   `limit = g · limit + sqrt(g · limit)` with
///   `g = min_rtt / p90 latency` (clamped to 0.5..2). A dependency with W
///   workers that queues the rest gets about `W + sqrt(W)` calls: enough
///   to keep it busy, with a short queue.
/// - **[`aimd`](Self::aimd)**: backs off by a factor on a drop, grows by
///   one otherwise; needs drops (timeouts, refusals) to see overload.
/// - **[`vegas`](Self::vegas)**: estimates the dependency's queue from
///   the latency and keeps it between two bounds.
///
/// The limit stays within [`min`](Self::min) and [`max`](Self::max), and
/// does not grow while its calls fill less than half of it. Reading it
/// ([`limit`](Self::limit), [`in_flight`](Self::in_flight)) is one atomic
/// load.
///
/// # Cost
///
/// Admission is one compare-and-swap on the word holding both counts, and
/// one clock read to time the call; the outcome is a `fetch_sub` (the
/// slot), a clock read, and a `fetch_add` in the latency histogram. Once
/// per interval one completing call runs the update. Nothing allocates.
pub struct AdaptiveLimit {
    control: Controller,
}

impl AdaptiveLimit {
    const_fn! {
        /// Envoy's gradient controller, in the manner of Netflix's Gradient2:
        /// the default algorithm. Starts by measuring the no-load latency at a
        /// limit of 3 ([`min_rtt_limit`](Self::min_rtt_limit)), then goes to
        /// [`initial`](Self::initial) (20) and follows
        /// `limit = g · limit + sqrt(g · limit)`, `g = min_rtt · (1 + buffer) /
        /// p90`, clamped to `0.5..=2`, every 100 ms; an interval in which
        /// more than a tenth of the calls dropped halves it.
        ///
        /// Defaults: initial 20, min 1, max 200, interval 100 ms, p90, buffer
        /// 0, `min_rtt` measured over 50 calls at a limit of 3, every 60 s plus
        /// up to 15% jitter.
        ///
        /// ```
        /// use retry_runtime::AdaptiveLimit;
        ///
        /// static DB: AdaptiveLimit = AdaptiveLimit::gradient();
        /// assert_eq!(DB.limit(), 3); // measuring its no-load latency first
        /// ```
        #[must_use]
        pub fn gradient() -> Self {
            AdaptiveLimit {
                control: Controller::new(Config::new(Algorithm::Gradient)),
            }
        }
    }

    const_fn! {
        /// Additive increase, multiplicative decrease, as Netflix's
        /// `AIMDLimit`: each interval with a drop multiplies the limit by
        /// [`backoff`](Self::backoff) (0.9); each without grows it by one
        /// (unless its calls filled less than half of it). A success slower
        /// than [`drop_above`](Self::drop_above) (5 s by default, Netflix's
        /// timeout) counts as a drop. Starts at [`initial`](Self::initial)
        /// (20).
        ///
        /// ```
        /// use retry_runtime::AdaptiveLimit;
        ///
        /// static API: AdaptiveLimit = AdaptiveLimit::aimd().initial(10).max(50);
        /// assert_eq!(API.limit(), 10);
        /// ```
        #[must_use]
        pub fn aimd() -> Self {
            AdaptiveLimit {
                control: Controller::new(Config::new(Algorithm::Aimd)),
            }
        }
    }

    const_fn! {
        /// TCP Vegas, as Netflix's `VegasLimit`: estimates the dependency's
        /// queue as `limit · (1 - min_rtt / p90)` and grows the limit while it
        /// is under `3 · log10(limit)`, shrinks it above `6 · log10(limit)` or
        /// on a drop. Measures `min_rtt` as [`gradient`](Self::gradient) does.
        ///
        /// ```
        /// use retry_runtime::AdaptiveLimit;
        ///
        /// static CACHE: AdaptiveLimit = AdaptiveLimit::vegas().max(100);
        /// # let _ = &CACHE;
        /// ```
        #[must_use]
        pub fn vegas() -> Self {
            AdaptiveLimit {
                control: Controller::new(Config::new(Algorithm::Vegas)),
            }
        }
    }

    /// The limit to start from: at once for [`aimd`](Self::aimd), and once
    /// the no-load latency is measured for the gradient and Vegas; 20 by
    /// default (Netflix's). Clamped to `1..=2^30`, then to
    /// [`min`](Self::min)..=[`max`](Self::max).
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// assert_eq!(AdaptiveLimit::aimd().initial(8).limit(), 8);
    /// ```
    #[must_use]
    pub const fn initial(mut self, n: u32) -> Self {
        self.control.config = self.control.config.initial(n);
        self
    }

    /// The lowest the limit goes; 1 by default. Clamped to `1..=2^30`.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// assert_eq!(AdaptiveLimit::aimd().initial(2).min(4).limit(), 4);
    /// ```
    #[must_use]
    pub const fn min(mut self, n: u32) -> Self {
        self.control.config = self.control.config.min(n);
        self
    }

    /// The highest the limit goes; 200 by default (Netflix's). Clamped to
    /// `1..=2^30`; a `max` below [`min`](Self::min) counts as `min`.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// assert_eq!(AdaptiveLimit::aimd().initial(50).max(10).limit(), 10);
    /// ```
    #[must_use]
    pub const fn max(mut self, n: u32) -> Self {
        self.control.config = self.control.config.max(n);
        self
    }

    /// How often the limit is updated from the calls completed since;
    /// 100 ms by default (Envoy's `concurrency_update_interval`). At least
    /// 1 ms. An interval with fewer than [`min_samples`](Self::min_samples)
    /// calls is stretched until it has them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static SLOW: AdaptiveLimit = AdaptiveLimit::gradient().interval(Duration::from_secs(1));
    /// # let _ = &SLOW;
    /// ```
    #[must_use]
    pub const fn interval(mut self, d: Duration) -> Self {
        self.control.config = self.control.config.interval(d);
        self
    }

    /// The fewest completed calls an update judges; 10 by default (Netflix's
    /// `WindowedLimit`). At least 1.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static API: AdaptiveLimit = AdaptiveLimit::gradient().min_samples(20);
    /// # let _ = &API;
    /// ```
    #[must_use]
    pub const fn min_samples(mut self, n: u32) -> Self {
        self.control.config = self.control.config.min_samples(n);
        self
    }

    /// The quantile of an interval's latencies that the gradient and Vegas
    /// judge it by (and of the no-load measurement); 0.9 by default. Clamped
    /// to `0.01..=1.0`, NaN as 1.0. A dropped call counts as slower than any
    /// answer.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static MEDIAN: AdaptiveLimit = AdaptiveLimit::gradient().percentile(0.5);
    /// # let _ = &MEDIAN;
    /// ```
    #[must_use]
    pub const fn percentile(mut self, p: f64) -> Self {
        self.control.config = self.control.config.percentile(p);
        self
    }

    /// Gradient only: how far above the no-load latency the sampled one may
    /// be before the limit shrinks, as a share of it; 0 by default (Envoy's
    /// `buffer` is 25%). A buffer raises the settled limit by that share:
    /// with W workers, about `W · (1 + buffer) + sqrt(W · (1 + buffer))`.
    /// Clamped to `0.0..=10.0`.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static NOISY: AdaptiveLimit = AdaptiveLimit::gradient().buffer(0.1);
    /// # let _ = &NOISY;
    /// ```
    #[must_use]
    pub const fn buffer(mut self, share: f64) -> Self {
        self.control.config = self.control.config.buffer(share);
        self
    }

    /// AIMD only: the factor an interval with a drop multiplies the limit
    /// by; 0.9 by default (Netflix's). Clamped to `0.1..=0.99`.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static API: AdaptiveLimit = AdaptiveLimit::aimd().backoff(0.5);
    /// # let _ = &API;
    /// ```
    #[must_use]
    pub const fn backoff(mut self, ratio: f64) -> Self {
        self.control.config = self.control.config.backoff(ratio);
        self
    }

    /// A success slower than `d` counts as a drop; for a dependency that
    /// queues rather than refuses, with no timeout to drop calls. Off by
    /// default for the gradient and Vegas, 5 s for AIMD; `Duration::ZERO`
    /// turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static API: AdaptiveLimit = AdaptiveLimit::aimd().drop_above(Duration::from_millis(250));
    /// # let _ = &API;
    /// ```
    #[must_use]
    pub const fn drop_above(mut self, d: Duration) -> Self {
        self.control.config = self.control.config.drop_above(Some(d));
        self
    }

    /// Gradient and Vegas: how often the no-load latency is measured again
    /// (plus up to 15% jitter); 60 s by default (Envoy's). At least one
    /// [`interval`](Self::interval). Each measurement holds the limit at
    /// [`min_rtt_limit`](Self::min_rtt_limit) for
    /// [`min_rtt_samples`](Self::min_rtt_samples) calls: at 10 ms a call
    /// and the defaults, about 170 ms a minute.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static DB: AdaptiveLimit = AdaptiveLimit::gradient().min_rtt_every(Duration::from_secs(300));
    /// # let _ = &DB;
    /// ```
    #[must_use]
    pub const fn min_rtt_every(mut self, d: Duration) -> Self {
        self.control.config = self.control.config.min_rtt_every(d);
        self
    }

    /// Gradient and Vegas: the calls a measurement of the no-load latency
    /// takes; 50 by default (Envoy's `request_count`). At least 1.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static DB: AdaptiveLimit = AdaptiveLimit::gradient().min_rtt_samples(20);
    /// # let _ = &DB;
    /// ```
    #[must_use]
    pub const fn min_rtt_samples(mut self, n: u32) -> Self {
        self.control.config = self.control.config.min_rtt_samples(n);
        self
    }

    /// Gradient and Vegas: the limit held while measuring the no-load
    /// latency; 3 by default (Envoy's `min_concurrency`), within
    /// [`min`](Self::min)..=[`max`](Self::max).
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// assert_eq!(AdaptiveLimit::gradient().min_rtt_limit(5).limit(), 5);
    /// ```
    #[must_use]
    pub const fn min_rtt_limit(mut self, n: u32) -> Self {
        self.control.config = self.control.config.min_rtt_limit(n);
        self
    }

    /// Names the limit in events and metrics (the `limiter` field of the
    /// `tracing` events, the `site` label of the `metrics` series); a
    /// `static` without a name is reported as `"adaptive_limit"`.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static DB: AdaptiveLimit = AdaptiveLimit::gradient().name("orders-db");
    /// # let _ = &DB;
    /// ```
    #[must_use]
    pub const fn name(mut self, name: &'static str) -> Self {
        self.control.config.name = name;
        self
    }

    /// The limit now: at most this many calls are admitted at once.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// assert_eq!(AdaptiveLimit::aimd().limit(), 20);
    /// ```
    pub fn limit(&self) -> usize {
        self.control.limit() as usize
    }

    /// The calls admitted and not yet ended (reported, or their permit
    /// dropped). It may be above [`limit`](Self::limit) just after the
    /// limit fell: a lower limit revokes nothing, it admits no one until
    /// enough calls have ended.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// let limit = AdaptiveLimit::aimd();
    /// let permit = limit.try_acquire().unwrap();
    /// assert_eq!(limit.in_flight(), 1);
    /// drop(permit);
    /// assert_eq!(limit.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.control.gate.load().0 as usize
    }

    /// The no-load latency the gradient and Vegas compare with, once
    /// measured; `None` before that, and always for AIMD.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// assert_eq!(AdaptiveLimit::gradient().min_rtt(), None);
    /// ```
    pub fn min_rtt(&self) -> Option<std::time::Duration> {
        self.control.min_rtt()
    }

    /// Takes a slot if fewer than [`limit`](Self::limit) calls are in
    /// flight, without waiting: one compare-and-swap, and a clock read to
    /// time the call.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// let limit = AdaptiveLimit::aimd().initial(1);
    /// let permit = limit.try_acquire().expect("a free slot");
    /// assert!(limit.try_acquire().is_none());
    /// permit.success();
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<AdaptivePermit<'_>> {
        let in_flight = self.control.try_take()?;
        Some(AdaptivePermit::new(&self.control, in_flight))
    }

    /// Waits for a slot.
    ///
    /// Cancel-safe: the future holds no slot until it resolves, so
    /// dropping it takes nothing (and a wake-up it had received goes to
    /// the next waiter). Waiters are woken in arrival order, but a caller
    /// arriving as a slot frees may take it first.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static API: AdaptiveLimit = AdaptiveLimit::aimd().initial(4);
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let permit = API.acquire().await;
    /// permit.success();
    /// # }
    /// ```
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` stores its arguments twice"
    )]
    pub fn acquire(&self) -> impl Future<Output = AdaptivePermit<'_>> {
        async move {
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            let in_flight = self.control.gate.wait(self.control.first()).await;
            AdaptivePermit::new(&self.control, in_flight)
        }
    }

    /// Waits up to `max_wait` for a slot, then gives up with [`Rejected`]:
    /// what `max_wait` does with a bulkhead. A free slot is taken without
    /// reading the clock for the wait; the wait is on tokio's clock, so a
    /// paused test clock drives it (it needs a runtime with the time driver).
    /// Cancel-safe, like [`acquire`](Self::acquire).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static API: AdaptiveLimit = AdaptiveLimit::aimd().initial(1);
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let held = API.acquire().await;
    /// assert!(API.acquire_timeout(Duration::from_millis(50)).await.is_err());
    /// drop(held);
    /// assert!(API.acquire_timeout(Duration::from_millis(50)).await.is_ok());
    /// # }
    /// ```
    pub async fn acquire_timeout(
        &self,
        max_wait: Duration,
    ) -> Result<AdaptivePermit<'_>, Rejected> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        match tokio::time::timeout(max_wait, self.control.gate.wait(self.control.first())).await {
            Ok(in_flight) => Ok(AdaptivePermit::new(&self.control, in_flight)),
            Err(_) => Err(Rejected::new()),
        }
    }

    /// Blocks the thread until a slot is free; for plain functions. Shares
    /// the count and the line of waiters with the async methods.
    ///
    /// Do not call it inside an async task: it blocks the executor's thread,
    /// and if the slots are held by tasks on that thread they are never
    /// given back. Use [`acquire`](Self::acquire) there.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// static FILES: AdaptiveLimit = AdaptiveLimit::aimd().initial(2);
    ///
    /// let threads: Vec<_> = (0..4)
    ///     .map(|_| std::thread::spawn(|| FILES.acquire_blocking().success()))
    ///     .collect();
    /// for thread in threads {
    ///     thread.join().unwrap();
    /// }
    /// assert_eq!(FILES.in_flight(), 0);
    /// ```
    pub fn acquire_blocking(&self) -> AdaptivePermit<'_> {
        if let Some(permit) = self.try_acquire() {
            return permit;
        }
        loop {
            if let Some(in_flight) = self.control.gate.wait_blocking(self.control.first(), None) {
                return AdaptivePermit::new(&self.control, in_flight);
            }
        }
    }

    /// Blocks the thread up to `max_wait` for a slot, then gives up with
    /// [`Rejected`]. The wait is on the wall clock (a blocked thread cannot
    /// take part in a paused tokio clock); the same caveat as
    /// [`acquire_blocking`](Self::acquire_blocking) applies.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// let limit = AdaptiveLimit::aimd().initial(1);
    /// let held = limit.acquire_blocking();
    /// assert!(limit.acquire_blocking_timeout(Duration::from_millis(1)).is_err());
    /// drop(held);
    /// assert!(limit.acquire_blocking_timeout(Duration::from_millis(1)).is_ok());
    /// ```
    pub fn acquire_blocking_timeout(
        &self,
        max_wait: Duration,
    ) -> Result<AdaptivePermit<'_>, Rejected> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        // A `max_wait` too large to be an instant is a wait without one.
        let deadline = std::time::Instant::now().checked_add(max_wait);
        match deadline {
            Some(deadline) => self
                .control
                .gate
                .wait_blocking(self.control.first(), Some(deadline))
                .map(|in_flight| AdaptivePermit::new(&self.control, in_flight))
                .ok_or(Rejected::new()),
            None => Ok(self.acquire_blocking()),
        }
    }
}

impl Default for AdaptiveLimit {
    /// [`AdaptiveLimit::gradient`].
    fn default() -> Self {
        Self::gradient()
    }
}

impl fmt::Debug for AdaptiveLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.control.config;
        let (min, max) = config.bounds();
        let mut s = f.debug_struct("AdaptiveLimit");
        s.field("algorithm", &config.algorithm)
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("waiting", &self.control.gate.waiters())
            .field("min", &min)
            .field("max", &max);
        if config.measures_min_rtt() {
            s.field("measuring", &self.control.is_measuring())
                .field("min_rtt", &self.min_rtt());
        }
        s.field("name", &config.name).finish_non_exhaustive()
    }
}
