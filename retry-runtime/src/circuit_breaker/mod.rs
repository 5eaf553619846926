//! A lock-free circuit breaker.
//!
//! # The state machine
//!
//! ```text
//!              trip condition met                open_for elapsed,
//!   Closed ───────────────────────────▶ Open ─── next try_acquire ──▶ HalfOpen
//!     ▲                                  ▲                               │
//!     │                                  └──── any probe fails ──────────┤
//!     └──────────────────── all `half_open_probes` probes succeed ───────┘
//! ```
//!
//! - **Closed** admits every call and watches outcomes. It trips either after
//!   `failure_threshold` consecutive failures (the default, 5) or, with
//!   [`failure_rate`](CircuitBreaker::failure_rate), when the share of
//!   failures among the last `window` calls reaches the rate, or, with
//!   [`failure_rate_over`](CircuitBreaker::failure_rate_over), among the
//!   calls of the last `period`. With
//!   [`slow_call`](CircuitBreaker::slow_call) it also trips when the share
//!   of slow calls in the window reaches its rate.
//! - **Open** rejects every call with [`CircuitOpen`] until `open_for` has
//!   passed. The breaker does not move by itself: the first
//!   [`try_acquire`](CircuitBreaker::try_acquire) after that moves it to
//!   half-open and becomes its first probe.
//! - **HalfOpen** admits `half_open_probes` trial calls in all (a slot is
//!   given back only by a probe dropped without an outcome, not by one that
//!   succeeded) and rejects the rest. One failed probe opens the breaker
//!   again for a fresh `open_for`; once all of them have succeeded it closes
//!   with its counts cleared. With
//!   [`half_open_failure_rate`](CircuitBreaker::half_open_failure_rate) the
//!   period is judged instead by the failure rate of all its probes, and
//!   with [`open_for_backoff`](CircuitBreaker::open_for_backoff) each
//!   reopen in a row stays open longer.
//!
//! [`adaptive_throttling`](CircuitBreaker::adaptive_throttling) is a mode
//! of its own, Google SRE's client-side throttling: the breaker stays
//! closed and refuses each call with probability
//! `max(0, (requests - k · accepts) / (requests + 1))` over the last two
//! minutes (`machine/throttle.rs`).
//!
//! [`reset`](CircuitBreaker::reset), [`force_open`](CircuitBreaker::force_open)
//! (until `reset`) and [`force_open_for`](CircuitBreaker::force_open_for)
//! move it by hand;
//! [`disable`](CircuitBreaker::disable) takes it out of the call path while
//! it keeps counting, until [`enable`](CircuitBreaker::enable).
//!
//! # Peers
//!
//! | here | resilience4j | Polly | failsafe |
//! |---|---|---|---|
//! | `force_open` / `reset` | `transitionToForcedOpenState` / `reset` | `Isolate` / `Close` | `open` / `close` |
//! | `disable` / `enable` | `transitionToMetricsOnlyState` / `transitionToClosedState` | — | — |
//! | `record_success` / `record_failure` | `onSuccess` / `onError` | — | `recordSuccess` / `recordFailure` |
//! | `current_failure_rate()`, `calls_in_window()`, `rejected_count()` | `Metrics.getFailureRate`, `getNumberOfBufferedCalls`, `getNumberOfNotPermittedCalls` | — | `getFailureRate`, `getExecutionCount` |
//! | `open_for_backoff` | — | `BreakDurationGenerator` | `withDelayFn` |
//! | `half_open_failure_rate` | `permittedNumberOfCallsInHalfOpenState` with `failureRateThreshold` | — | `withSuccessThreshold(m, n)` |
//! | `slow_call(threshold, rate)` (tower-resilience's slow-call rate too) | `slowCallDurationThreshold` + `slowCallRateThreshold` | — | — |
//! | `slow_call_rate()` | `Metrics.getSlowCallRate` | — | — |
//! | `failure_rate_over(rate, period)` with `min_calls` | `SlidingWindowType.TIME_BASED` with `minimumNumberOfCalls` | `FailureRatio` + `SamplingDuration` + `MinimumThroughput` | `withFailureRateThreshold(rate, executions, period)` |
//! | `adaptive_throttling(k)` (gRPC's and go-zero's "Google breaker" too) | — | — | — |
//!
//! # Why lock-free
//!
//! A breaker sits on the happy path of every call it guards, usually as one
//! `static` shared by every caller of a function and by async and blocking
//! code alike. A mutex there would serialise all callers, could be held by a
//! thread that the OS has descheduled, and would be poisoned by a panicking
//! hook. Instead the whole state lives in one `AtomicU64`, and every
//! transition is a single compare-and-swap, so no reader ever sees a
//! half-made transition. Admitting a call while closed (or disabled) is one
//! atomic load; a
//! success while closed is one more in the default mode (and a write only
//! when it ends a failure streak), and a compare-and-swap plus one bit write
//! in rate mode (the bit is read first, and written only when the outcome
//! differs from the one its slot held a lap ago, so a run of successes
//! leaves the ring's cache line shared between cores). The state word has
//! a cache line to itself, so that the configuration and the rings, read
//! on every call, do not share the line every outcome in rate mode swaps.
//! The clock is only read while open and when opening. Two
//! side counters are written off the happy path only: the refusals behind
//! `rejected_count`, on each refusal, and the latest backed-off open time,
//! on a reopen or close with `open_for_backoff` (see `machine.rs` for why
//! that one is not in the word, and what that costs).
//!
//! Two options read the clock on the happy path, and only they:
//! [`slow_call`](CircuitBreaker::slow_call) at admission and at the
//! outcome (to time the call), and
//! [`failure_rate_over`](CircuitBreaker::failure_rate_over) at the outcome
//! (to find its bucket). The time-based window is a ring of its own (see
//! `time_window.rs`); a success there writes one bucket word and only
//! reads the state word.
//!
//! # Generations
//!
//! A call admitted in one state may finish in another: a slow call admitted
//! while closed can fail after the breaker has opened, half-opened and closed
//! again. Each closed and half-open period therefore gets a fresh generation
//! number, packed into the state word next to its counts, and every
//! [`BreakerPermit`] carries the generation it was admitted in. An outcome
//! whose generation is no longer current is ignored, so stale calls can
//! neither trip nor close the breaker, nor free a probe slot that belongs to
//! later probes.
//!
//! # Where things are
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`CircuitBreaker`]: its `const` builders and public methods |
//! | `config.rs` | what the builders set, clamped, and the defaults |
//! | `state.rs` | [`CircuitState`] and the packed state word: layout, encode, decode |
//! | `machine.rs` | the atomics, the one compare-and-swap loop, and every transition rule (including the reopen backoff's bookkeeping) |
//! | `machine/windows.rs` | the rules that record an outcome in a window, count- or time-based, and trip on its rates |
//! | `machine/throttle.rs` | adaptive throttling: admission by a draw, requests and accepts in the time-based buckets |
//! | `half_open.rs` | the verdict on a half-open period from its probes' counts |
//! | `window.rs` | the count-based rings of failure and slow-call bits |
//! | `time_window.rs` | the time-based window's buckets |
//! | `permit.rs` | [`BreakerPermit`]: reporting one call's outcome |
//! | `report.rs` | `tracing` events and `metrics` for transitions |
//! | `shared.rs` | feature `redis`: `.shared(&REDIS, key)`, the fleet's "opened" evidence, its quorum and the probe lease (hooks in `machine.rs`: after each swap, before each call, at the end of an open period) |
//!
//! No file imports `mod.rs`, and none imports a file that imports it back:
//! `permit.rs` reaches the state through `machine.rs`, the only file (with
//! its child `machine/windows.rs`) that touches the state word, always
//! through `Machine::transition`, or `Machine::advance_tally` for a count
//! that moves within a period (no hook has anything to do then).
//!
//! # The happy path
//!
//! What an ordinary call costs while closed, and what keeps it so (the
//! instruction counts are in BENCHMARKS.md, "Primitives"):
//! [`try_acquire`](CircuitBreaker::try_acquire) builds an ordinary permit
//! inline and leaves the open and half-open states to an out-of-line
//! function, so the caller's outcome path knows the permit is no probe;
//! [`success`](BreakerPermit::success) and
//! [`failure`](BreakerPermit::failure) consume the permit without running
//! its `Drop`, which is there for a permit that reports nothing; a success
//! in the default mode is one load, inline; an outcome in rate mode claims
//! its slot with one compare-and-swap of the count alone, without the
//! transition's hooks (period end, fleet, notification), and finds its
//! slot by a subtraction, not a division. An option that is off costs one
//! predictable branch: a shared breaker's hook at admission, `slow_call`'s
//! timing at admission, and the recorder the outcome goes to.

mod config;
mod half_open;
mod machine;
mod permit;
mod report;
// Shared through Redis (`shared.rs`), or, without the `redis` feature (and
// in the loom models), `alone.rs`: the same hooks, which do nothing, so the
// machine is written once for both builds and without a `cfg`.
#[cfg_attr(not(all(feature = "redis", not(steadfast_loom))), path = "alone.rs")]
mod shared;
mod state;
mod time_window;
// The shared breaker's view of its machine and its probe lease: plain
// atomics, so that the loom models check it without Redis.
#[cfg(any(all(feature = "redis", not(steadfast_loom)), all(test, steadfast_loom)))]
mod view;
mod window;

use std::fmt;
use std::time::Duration;

use crate::error::CircuitOpen;
use crate::sync::const_fn;
use config::{Config, Mode};
use machine::Machine;

pub use permit::BreakerPermit;
pub use state::CircuitState;

/// A lock-free circuit breaker: stops calling a dependency that keeps
/// failing, and lets a few trial calls through after a pause to see whether
/// it has recovered.
///
/// ```text
///              trip condition met                open_for elapsed,
///   Closed ───────────────────────────▶ Open ─── next try_acquire ──▶ HalfOpen
///     ▲                                  ▲                               │
///     │                                  └──── any probe fails ──────────┤
///     └──────────────────── all `half_open_probes` probes succeed ───────┘
/// ```
///
/// - **Closed** admits every call. It trips after
///   [`failure_threshold`](Self::failure_threshold) consecutive failures, or,
///   with [`failure_rate`](Self::failure_rate), when the share of failures
///   among the last `window` calls reaches the rate
///   ([`failure_rate_over`](Self::failure_rate_over): the calls of the last
///   `period`), or with [`slow_call`](Self::slow_call) when the share of
///   slow calls does.
/// - **Open** rejects every call with [`CircuitOpen`] for
///   [`open_for`](Self::open_for); the first [`try_acquire`](Self::try_acquire)
///   after that moves it to half-open and becomes a probe.
/// - **HalfOpen** admits [`half_open_probes`](Self::half_open_probes) trial
///   calls and rejects the rest. One failure opens it again for a fresh
///   `open_for`; when all of them have succeeded it closes, with its counts
///   cleared.
///
/// By hand, [`force_open`](Self::force_open) holds it open until
/// [`reset`](Self::reset), [`force_open_for`](Self::force_open_for) opens it
/// for a while, and [`disable`](Self::disable) admits every call while still
/// counting outcomes.
///
/// Every call goes through [`try_acquire`](Self::try_acquire) and reports its
/// outcome on the returned [`BreakerPermit`] (or, without a permit, with
/// [`record_success`](Self::record_success) and
/// [`record_failure`](Self::record_failure)). The state is one atomic word,
/// changed by compare-and-swap only: no lock is taken, and admitting a call
/// while closed costs one atomic load.
///
/// All builders are `const fn`, so a breaker can live in a `static` shared by
/// every caller, from async and blocking code alike:
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{CircuitBreaker, CircuitState};
///
/// static BREAKER: CircuitBreaker = CircuitBreaker::new()
///     .failure_threshold(3)
///     .open_for(Duration::from_secs(10));
///
/// fn call_dependency() -> Result<u32, &'static str> {
///     Err("connection refused")
/// }
///
/// for _ in 0..3 {
///     let permit = BREAKER.try_acquire().expect("closed: every call is admitted");
///     match call_dependency() {
///         Ok(_) => permit.success(),
///         Err(_) => permit.failure(),
///     }
/// }
/// assert_eq!(BREAKER.state(), CircuitState::Open);
/// assert!(BREAKER.try_acquire().is_err());
/// ```
///
/// # Default
///
/// [`CircuitBreaker::new`]: trips after 5 consecutive failures, stays open
/// for 30 seconds, then admits 1 probe.
pub struct CircuitBreaker {
    machine: Machine,
}

impl CircuitBreaker {
    /// The window `#[resilient(circuit_breaker(failure_rate = ..))]` uses
    /// when `window` is not given: the outcomes of the last 20 calls.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// // What `circuit_breaker(failure_rate = 0.5)` builds.
    /// static BREAKER: CircuitBreaker =
    ///     CircuitBreaker::new().failure_rate(0.5, CircuitBreaker::DEFAULT_WINDOW);
    /// assert!(format!("{BREAKER:?}").contains("window: 20"));
    /// ```
    pub const DEFAULT_WINDOW: u32 = config::DEFAULT_WINDOW;

    /// The consecutive failures that open a breaker built without
    /// `failure_threshold`: 5.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// assert_eq!(CircuitBreaker::DEFAULT_FAILURE_THRESHOLD, 5);
    /// ```
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = config::DEFAULT_THRESHOLD;

    const_fn! {
        /// A closed breaker that trips after 5 consecutive failures, stays open
        /// for 30 seconds and then admits 1 probe.
        ///
        /// ```
        /// use retry_runtime::{CircuitBreaker, CircuitState};
        ///
        /// let breaker = CircuitBreaker::new();
        /// for _ in 0..4 {
        ///     breaker.try_acquire().unwrap().failure();
        /// }
        /// assert_eq!(breaker.state(), CircuitState::Closed);
        /// breaker.try_acquire().unwrap().failure();
        /// assert_eq!(breaker.state(), CircuitState::Open);
        /// ```
        #[must_use]
        pub fn new() -> Self {
            CircuitBreaker {
                machine: Machine::new(Config::DEFAULT),
            }
        }
    }

    const_fn! {
        /// Client-side adaptive throttling, as in Google's SRE book
        /// ("Handling Overload"): the breaker stays closed and refuses each
        /// call locally, with [`CircuitOpen`], with probability
        ///
        /// ```text
        /// max(0, (requests - k · accepts) / (requests + 1))
        /// ```
        ///
        /// over the last two minutes
        /// ([`throttling_window`](Self::throttling_window)): requests are the
        /// calls asked for, refused ones included, counted when they start;
        /// accepts are the calls that reported
        /// [`success`](BreakerPermit::success). So the dependency receives
        /// about `k` times what it accepts: while it accepts everything,
        /// nothing is refused; when it rejects more than `1 - 1/k` of the
        /// calls, nearly all are refused locally, and a trickle keeps
        /// probing it. SRE's `k` is 2 (1.1 refuses sooner, more lets more
        /// through); `k` is clamped to at least 1.0, NaN counting as 2.0.
        ///
        /// Refusals are counted in [`rejected_count`](Self::rejected_count)
        /// (and reported: the `tracing` event "adaptive throttling refused a
        /// request", the `metrics` counter `steadfast_circuit_throttled_total`).
        /// A call whose permit is dropped without an outcome (cancelled) is
        /// taken back out of the requests. The breaker never opens by
        /// itself; [`force_open`](Self::force_open),
        /// [`force_open_for`](Self::force_open_for), [`disable`](Self::disable)
        /// (counts, never refuses) and [`reset`](Self::reset) (clears the
        /// counts) work as in the other modes; [`state`](Self::state) is
        /// `Closed` while throttling. [`slow_call`](Self::slow_call) and
        /// [`min_calls`](Self::min_calls) do not apply; a later
        /// [`failure_threshold`](Self::failure_threshold),
        /// [`failure_rate`](Self::failure_rate) or
        /// [`failure_rate_over`](Self::failure_rate_over) replaces it.
        ///
        /// Each admission reads tokio's clock, sums the window's ten
        /// buckets, writes one, and draws a number when the probability is
        /// above zero; the other modes' admission is not slowed by this one
        /// (it is told apart with the same one-bit test).
        ///
        /// ```
        /// use retry_runtime::CircuitBreaker;
        ///
        /// static API: CircuitBreaker = CircuitBreaker::adaptive_throttling(2.0);
        ///
        /// // A dependency rejecting every call: soon most are refused locally.
        /// let mut refused = 0;
        /// for _ in 0..1_000 {
        ///     match API.try_acquire() {
        ///         Ok(permit) => permit.failure(),
        ///         Err(_) => refused += 1,
        ///     }
        /// }
        /// assert!(refused > 900, "{refused}");
        /// assert_eq!(API.rejected_count(), refused);
        /// ```
        #[must_use]
        pub fn adaptive_throttling(k: f64) -> Self {
            CircuitBreaker {
                machine: Machine::new(Config::DEFAULT.adaptive_throttling(k)),
            }
        }
    }

    /// How far back [`adaptive_throttling`](Self::adaptive_throttling)
    /// counts requests and accepts: 2 minutes by default (the SRE book's).
    /// Keep it at least as long as the calls' timeout: a call counts as a
    /// request when it starts and as an accept when it ends, so with a
    /// window shorter than the timeout a request that times out has left
    /// the window before it is judged (go-zero's second mistake). Ten
    /// buckets of `window / 10`, as [`failure_rate_over`](Self::failure_rate_over);
    /// at least 10 ms. No effect on a breaker that does not throttle.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::CircuitBreaker;
    ///
    /// static API: CircuitBreaker =
    ///     CircuitBreaker::adaptive_throttling(2.0).throttling_window(Duration::from_secs(60));
    /// # let _ = &API;
    /// ```
    #[must_use]
    pub const fn throttling_window(mut self, window: Duration) -> Self {
        if self.machine.config.throttles() {
            self.machine.config = self.machine.config.throttling_window(window);
        }
        self
    }

    /// The probability that [`adaptive_throttling`](Self::adaptive_throttling)
    /// refuses a call now, from the requests and accepts of its window;
    /// `None` for a breaker that does not throttle.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::adaptive_throttling(2.0);
    /// assert_eq!(breaker.throttle_probability(), Some(0.0));
    /// for _ in 0..9 {
    ///     breaker.record_failure(); // 9 requests, no accept
    /// }
    /// assert_eq!(breaker.throttle_probability(), Some(0.9));
    /// assert_eq!(CircuitBreaker::new().throttle_probability(), None);
    /// ```
    pub fn throttle_probability(&self) -> Option<f64> {
        self.machine
            .config
            .throttles()
            .then(|| self.machine.throttle_probability_now())
    }

    /// Trips after `n` consecutive failures; any success resets the streak.
    /// This is the default mode, with `n = 5`, and replaces an earlier
    /// [`failure_rate`](Self::failure_rate).
    ///
    /// `n` is clamped to `1..=2^30 - 1`.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().failure_threshold(2);
    /// breaker.try_acquire().unwrap().failure();
    /// breaker.try_acquire().unwrap().success(); // the streak starts over
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// ```
    #[must_use]
    pub const fn failure_threshold(mut self, n: u32) -> Self {
        self.machine.config = self.machine.config.failure_threshold(n);
        self
    }

    /// Trips when, among the last `window` calls, `failures / calls >= rate`
    /// and at least [`min_calls`](Self::min_calls) calls have been recorded
    /// (by default, the whole window). Replaces an earlier
    /// [`failure_threshold`](Self::failure_threshold).
    ///
    /// The window counts calls, not time: it is a ring of the last `window`
    /// outcomes, and each new outcome pushes out the oldest. `window` is
    /// clamped to `1..=1024`. `rate` is clamped to `0.0..=1.0`, and NaN counts
    /// as `1.0`; the breaker never trips without at least one failure in the
    /// window, so a rate of `0.0` means "any failure".
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// // Half of the last 4 calls failed: trip.
    /// let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    /// for ok in [true, false, true] {
    ///     let permit = breaker.try_acquire().unwrap();
    ///     if ok { permit.success() } else { permit.failure() }
    /// }
    /// assert_eq!(breaker.state(), CircuitState::Closed); // only 3 calls so far
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// ```
    #[must_use]
    pub const fn failure_rate(mut self, rate: f64, window: u32) -> Self {
        self.machine.config = self.machine.config.failure_rate(rate, window);
        self
    }

    /// The fewest calls in the window before
    /// [`failure_rate`](Self::failure_rate) may trip the breaker, so that
    /// one early failure is not a 100% failure rate. Defaults to the window
    /// size; `n` is clamped to `1..=window`. With
    /// [`failure_rate_over`](Self::failure_rate_over) it defaults to 20
    /// (`DEFAULT_WINDOW`) and is at least 1. In
    /// [`failure_threshold`](Self::failure_threshold) mode it applies only
    /// to the window of [`slow_call`](Self::slow_call).
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().failure_rate(0.5, 100).min_calls(3);
    /// breaker.try_acquire().unwrap().failure();
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::Closed); // 2 calls < min_calls
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// ```
    #[must_use]
    pub const fn min_calls(mut self, n: u32) -> Self {
        self.machine.config = self.machine.config.with_min_calls(n);
        self
    }

    /// Trips when, among the calls that reported in the last `period`,
    /// `failures / calls >= rate` and at least [`min_calls`](Self::min_calls)
    /// calls have been recorded (20 by default, `DEFAULT_WINDOW`). A window
    /// over time rather than over the last calls: resilience4j's
    /// `SlidingWindowType.TIME_BASED`, Polly's `SamplingDuration`,
    /// failsafe's `withFailureRateThreshold(rate, executions, period)`.
    /// Replaces an earlier [`failure_threshold`](Self::failure_threshold) or
    /// [`failure_rate`](Self::failure_rate).
    ///
    /// The window is 10 buckets of `period / 10` on tokio's clock
    /// (`tokio::time::Instant`, so exact under a paused clock): an outcome
    /// counts in the bucket of the time it is reported, and the window is
    /// the current bucket and the 9 before it. So the rate is over the last
    /// `period` to one bucket's width: the oldest bucket leaves whole, and
    /// the window holds between `period - period / 10` and `period` of
    /// history. resilience4j's buckets are one second each; with a `period`
    /// of 10 s the two agree. Buckets go stale without being swept: a
    /// bucket's counts carry its time, and outdated ones count as zero.
    /// The window starts empty with each closed period, as the count-based
    /// one does.
    ///
    /// Each outcome reads the clock, and writes one bucket word per count
    /// it adds to (calls, failures, slow calls) with a compare-and-swap;
    /// the state word is only read, unless the breaker trips. Admission
    /// stays one load, with no clock read. The rate is checked on every
    /// outcome, a sum over the 10 buckets.
    ///
    /// `rate` is clamped as in [`failure_rate`](Self::failure_rate);
    /// `period` is at least 10 ms (1 ms buckets) and saturates at about 146
    /// years. Each bucket counts up to 2^32 - 1 calls.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Half of the calls of the last 10 s, at least 4 of them.
    /// let breaker = CircuitBreaker::new()
    ///     .failure_rate_over(0.5, Duration::from_secs(10))
    ///     .min_calls(4);
    /// breaker.record_failure();
    /// breaker.record_failure();
    /// tokio::time::advance(Duration::from_secs(10)).await; // both left the window
    /// breaker.record_failure();
    /// breaker.record_success();
    /// breaker.record_success();
    /// assert_eq!(breaker.state(), CircuitState::Closed); // 3 calls < min_calls
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), CircuitState::Open); // 2 of 4
    /// # }
    /// ```
    #[must_use]
    pub const fn failure_rate_over(mut self, rate: f64, period: Duration) -> Self {
        self.machine.config = self.machine.config.failure_rate_over(rate, period);
        self
    }

    /// Counts calls slower than `threshold` as slow, and trips when the
    /// share of slow calls in the window reaches `rate`, as the failure rate
    /// trips it: resilience4j's `slowCallDurationThreshold` and
    /// `slowCallRateThreshold` (and tower-resilience's slow-call rate).
    ///
    /// A call is slow when more than `threshold` passes between
    /// [`try_acquire`](Self::try_acquire) and its permit's
    /// [`success`](BreakerPermit::success) or
    /// [`failure`](BreakerPermit::failure); exactly `threshold` is not slow,
    /// as resilience4j compares `duration > threshold`. A slow success is
    /// slow, and a slow failure counts as both a failure and a slow call.
    /// The breaker trips when `slow / calls >= rate`, with at least one slow
    /// call, over the window the failure rate uses, with the same
    /// [`min_calls`](Self::min_calls): the last `window` calls of
    /// [`failure_rate`](Self::failure_rate), or the last `period` of
    /// [`failure_rate_over`](Self::failure_rate_over). Either rate trips
    /// it.
    ///
    /// **Consecutive-failure mode** (the default) has no window, so there
    /// slow calls get one of their own: the last 20 calls
    /// (`DEFAULT_WINDOW`), with `min_calls` (by default the whole 20). The
    /// failure streak still trips as before; the slow-call rate trips
    /// besides. The streak then shares the state word with the window's
    /// index, so [`failure_threshold`](Self::failure_threshold) is capped at
    /// 2^19 - 1, and a success writes the state word (it claims a slot in
    /// the window) where without `slow_call` it costs one load. Only the
    /// count-based and time-based windows of resilience4j exist there; this
    /// keeps the streak's meaning while judging slowness by rate.
    ///
    /// Under `#[resilient]` and `Policy` the breaker admits an attempt
    /// before its rate-limit and concurrency waits (the composition order),
    /// so the time judged includes those waits and the attempt's
    /// `timeout`, as a resilience4j breaker decorating a rate limiter or
    /// bulkhead times them too.
    ///
    /// Half-open, a slow probe counts as a failed probe. Outcomes recorded
    /// without a permit ([`record_success`](Self::record_success),
    /// [`record_failure`](Self::record_failure)) have no duration and are
    /// never slow.
    ///
    /// With `slow_call` a permit reads tokio's clock
    /// (`tokio::time::Instant`) at admission and at its outcome; without it
    /// neither does. `threshold` saturates at about 146 years; `rate` is
    /// clamped to `0.0..=1.0`, NaN counting as `1.0`, and `0.0` means "any
    /// slow call".
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Trip when half of the last 4 calls took longer than 1 s.
    /// let breaker = CircuitBreaker::new()
    ///     .failure_rate(0.5, 4)
    ///     .slow_call(Duration::from_secs(1), 0.5);
    /// for slow in [false, true, false] {
    ///     let permit = breaker.try_acquire().unwrap();
    ///     if slow {
    ///         tokio::time::advance(Duration::from_millis(1001)).await;
    ///     }
    ///     permit.success();
    /// }
    /// assert_eq!(breaker.slow_call_rate(), Some(1.0 / 3.0));
    /// let permit = breaker.try_acquire().unwrap();
    /// tokio::time::advance(Duration::from_secs(2)).await;
    /// permit.success();
    /// assert_eq!(breaker.state(), CircuitState::Open); // 2 of 4 were slow
    /// # }
    /// ```
    #[must_use]
    pub const fn slow_call(mut self, threshold: Duration, rate: f64) -> Self {
        self.machine.config = self.machine.config.slow_call(threshold, rate);
        self
    }

    /// How long the breaker stays open before admitting probes; 30 seconds
    /// by default. Saturates at about 146 years.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().open_for(Duration::ZERO);
    /// breaker.force_open_for(Duration::ZERO);
    /// assert!(breaker.try_acquire().is_ok()); // open_for has already passed
    /// assert_eq!(breaker.state(), CircuitState::HalfOpen);
    /// ```
    #[must_use]
    pub const fn open_for(mut self, d: Duration) -> Self {
        self.machine.config = self.machine.config.open_for(d);
        self
    }

    /// How many trial calls the half-open breaker admits; all of them must
    /// succeed to close it, and other calls are rejected until then. 1 by
    /// default; `n` is clamped to `1..=1023`.
    ///
    /// A probe that succeeded keeps its slot (it counts towards closing); a
    /// probe whose permit is dropped without an outcome (its call was
    /// cancelled) frees its slot for another probe.
    /// The limit of 1023 is what the state word has room for: it counts
    /// probes in flight, succeeded and failed (for
    /// [`half_open_failure_rate`](Self::half_open_failure_rate)), 10 bits
    /// each.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().open_for(Duration::ZERO).half_open_probes(2);
    /// breaker.force_open_for(Duration::ZERO);
    /// let first = breaker.try_acquire().unwrap();
    /// let second = breaker.try_acquire().unwrap();
    /// assert!(breaker.try_acquire().is_err()); // both slots taken
    /// first.success();
    /// assert_eq!(breaker.state(), CircuitState::HalfOpen);
    /// second.success();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// ```
    #[must_use]
    pub const fn half_open_probes(mut self, n: u32) -> Self {
        self.machine.config = self.machine.config.half_open_probes(n);
        self
    }

    /// Judges a half-open period by the failure rate of its probes instead
    /// of closing only when all of them succeed: the breaker waits until
    /// every one of its [`half_open_probes`](Self::half_open_probes) has
    /// reported, then reopens if `failed / probes >= rate` (and at least one
    /// failed), and closes otherwise. This is resilience4j's half-open state
    /// (`permittedNumberOfCallsInHalfOpenState` calls, judged against the
    /// failure-rate threshold) and failsafe's `withSuccessThreshold(m, n)`
    /// with `m = n - ceil(rate * n) + 1`.
    ///
    /// Without it (the default) the first failed probe reopens the breaker
    /// at once. With one probe the two are the same for any `rate`. `rate`
    /// is clamped to `0.0..=1.0`, NaN counting as `1.0`; a rate of `0.0`
    /// means "any failure", and probe slots are taken and freed as without
    /// it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// // Reopen when half or more of 4 probes fail.
    /// let breaker = CircuitBreaker::new()
    ///     .open_for(Duration::ZERO)
    ///     .half_open_probes(4)
    ///     .half_open_failure_rate(0.5);
    /// breaker.force_open_for(Duration::ZERO);
    /// let probes: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    /// let mut probes = probes.into_iter();
    /// probes.next().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::HalfOpen); // not judged yet
    /// for probe in probes {
    ///     probe.success();
    /// }
    /// assert_eq!(breaker.state(), CircuitState::Closed); // 1 of 4 < 0.5
    /// ```
    #[must_use]
    pub const fn half_open_failure_rate(mut self, rate: f64) -> Self {
        self.machine.config = self.machine.config.half_open_failure_rate(rate);
        self
    }

    /// Makes each reopen in a row last longer: when a half-open period fails
    /// and the breaker opens again, it stays open for the previous open time
    /// times `multiplier`, up to `max`. The first trip from closed opens for
    /// [`open_for`](Self::open_for); a breaker that closes (or is
    /// [`reset`](Self::reset)) starts from `open_for` again. This is Polly's
    /// `BreakDurationGenerator` fed the failure count, and failsafe's
    /// `withDelayFn`, in its common exponential form.
    ///
    /// `multiplier` below `1.0` (or NaN) counts as `1.0`, no growth; `max`
    /// below `open_for` never shortens `open_for`; both saturate at about
    /// 146 years. An `open_for` of zero stays zero. Manual opens
    /// ([`force_open`](Self::force_open), [`force_open_for`](Self::force_open_for))
    /// do not grow it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::CircuitBreaker;
    ///
    /// // Open for 10 s, then 20 s, 40 s, 60 s, 60 s... while probes fail.
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new()
    ///     .open_for(Duration::from_secs(10))
    ///     .open_for_backoff(2.0, Duration::from_secs(60));
    /// # let _ = &BREAKER;
    /// ```
    #[must_use]
    pub const fn open_for_backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.machine.config = self.machine.config.open_for_backoff(multiplier, max);
        self
    }

    /// Calls `hook(from, to)` on every change of state, e.g. to log or count
    /// them. It is a plain `fn` so that the breaker stays `const`-constructible
    /// for a `static`.
    ///
    /// The hook runs inline on the thread that made the transition, right
    /// after it took effect, inside whichever call caused it
    /// ([`try_acquire`](Self::try_acquire), a permit's outcome,
    /// [`reset`](Self::reset) or [`force_open`](Self::force_open)): keep it
    /// short and non-blocking. Transitions made concurrently by different
    /// threads may reach the hook out of order. Setting the state it is
    /// already in (e.g. `reset` while closed) is not a change and does not
    /// call it.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// static OPENED: AtomicUsize = AtomicUsize::new(0);
    ///
    /// fn count_opens(_from: CircuitState, to: CircuitState) {
    ///     if to == CircuitState::Open {
    ///         OPENED.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new().on_state_change(count_opens);
    ///
    /// BREAKER.force_open();
    /// assert_eq!(OPENED.load(Ordering::Relaxed), 1);
    /// ```
    #[must_use]
    pub const fn on_state_change(mut self, hook: fn(CircuitState, CircuitState)) -> Self {
        self.machine.config.on_state_change = Some(hook);
        self
    }

    /// Names the breaker in events and metrics (the `breaker` field of the
    /// `tracing` feature's transition events, the `site` label of the
    /// `metrics` feature's `steadfast_circuit_state` gauge). An inline
    /// `#[resilient(circuit_breaker)]` is named after its function (or the
    /// `name` key); a `static` without a name is reported as
    /// `"circuit_breaker"`.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// static PAYMENTS: CircuitBreaker = CircuitBreaker::new().name("payments-api");
    /// # let _ = &PAYMENTS;
    /// ```
    #[must_use]
    pub const fn name(mut self, name: &'static str) -> Self {
        self.machine.config.name = name;
        self
    }

    /// The current state.
    ///
    /// An open breaker reports [`CircuitState::Open`] until a
    /// [`try_acquire`](Self::try_acquire) finds that `open_for` has passed
    /// and moves it to half-open; `state` itself never reads the clock.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// ```
    pub fn state(&self) -> CircuitState {
        self.machine.state()
    }

    /// Closes the breaker and clears its counts. Outcomes of calls admitted
    /// before the reset are ignored.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// breaker.reset();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// assert!(breaker.try_acquire().is_ok());
    /// ```
    pub fn reset(&self) {
        self.machine.reset();
    }

    /// Holds the breaker open until [`reset`](Self::reset) (or
    /// [`force_open_for`](Self::force_open_for), [`disable`](Self::disable)),
    /// whatever its state: every call is rejected with [`CircuitOpen`], and
    /// no time passing half-opens it. [`state`](Self::state) reports
    /// [`CircuitState::Open`]; [`is_forced_open`](Self::is_forced_open)
    /// tells it from a timed open. Outcomes of calls admitted before are
    /// ignored.
    ///
    /// This is resilience4j's `FORCED_OPEN` state and Polly's `Isolate`: a
    /// switch for an operator who knows the dependency is down or must not
    /// be called. For a timed open, as after a trip, use
    /// [`force_open_for`](Self::force_open_for).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().open_for(Duration::ZERO);
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().is_err()); // open_for has passed, still open
    /// assert!(breaker.is_forced_open());
    /// breaker.reset();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// ```
    pub fn force_open(&self) {
        self.machine.isolate();
    }

    /// Opens the breaker now for `d`, whatever its state (a disabled or
    /// forced-open one included); an open breaker starts over with `d`.
    /// When `d` has passed it half-opens as after a trip. Outcomes of calls
    /// admitted before are ignored. `d` saturates at about 146 years.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open_for(Duration::ZERO);
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// assert!(breaker.try_acquire().unwrap().is_probe()); // zero has passed
    /// ```
    pub fn force_open_for(&self, d: Duration) {
        self.machine.force_open_for(config::nanos(d));
    }

    /// Whether the breaker is held open by [`force_open`](Self::force_open).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open_for(Duration::from_secs(30));
    /// assert!(!breaker.is_forced_open()); // open for 30 s only
    /// ```
    pub fn is_forced_open(&self) -> bool {
        self.machine.is_forced_open()
    }

    /// Takes the breaker out of the call path without losing what it sees:
    /// every call is admitted, outcomes are still counted (so
    /// [`current_failure_rate`](Self::current_failure_rate) and
    /// [`calls_in_window`](Self::calls_in_window) keep reporting), but it
    /// never trips. [`state`](Self::state) reports
    /// [`CircuitState::Closed`]; [`is_disabled`](Self::is_disabled) tells
    /// it apart. Counts start afresh, and calls admitted before count for
    /// nothing. A disabled breaker stays so until
    /// [`enable`](Self::enable) or [`reset`](Self::reset) (or
    /// [`force_open`](Self::force_open), [`force_open_for`](Self::force_open_for)).
    ///
    /// This is resilience4j's `METRICS_ONLY` state (its `DISABLED` state
    /// also stops counting). It is a run-time switch rather than a builder,
    /// so that a breaker in a `static` can be turned off and on again, e.g.
    /// from a feature flag. Admitting a call while disabled costs what it
    /// costs while closed: one atomic load.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    /// breaker.disable();
    /// for _ in 0..4 {
    ///     breaker.try_acquire().unwrap().failure();
    /// }
    /// assert_eq!(breaker.state(), CircuitState::Closed); // never trips
    /// assert_eq!(breaker.current_failure_rate(), Some(1.0)); // but still counts
    /// breaker.enable();
    /// assert!(!breaker.is_disabled());
    /// assert_eq!(breaker.current_failure_rate(), None); // a fresh window
    /// ```
    pub fn disable(&self) {
        self.machine.disable();
    }

    /// Ends [`disable`](Self::disable): a disabled breaker closes with its
    /// counts cleared, and starts judging calls again. Any other state is
    /// left as it is.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// breaker.enable(); // not disabled: nothing happens
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// ```
    pub fn enable(&self) {
        self.machine.enable();
    }

    /// Whether the breaker is [disabled](Self::disable).
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// assert!(!CircuitBreaker::new().is_disabled());
    /// ```
    pub fn is_disabled(&self) -> bool {
        self.machine.is_disabled()
    }

    /// Counts a success observed without a permit, for code that cannot hold
    /// one across the call (a callback API, outcomes read from a log). It
    /// counts as an ordinary call of the current closed (or disabled)
    /// period, as [`BreakerPermit::success`] would; while open or half-open
    /// it is ignored, since the breaker then judges the dependency by its
    /// own probes only. resilience4j's `onSuccess`, failsafe's
    /// `recordSuccess`.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().failure_threshold(2);
    /// breaker.record_failure();
    /// breaker.record_success(); // ends the streak
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), CircuitState::Closed);
    /// ```
    pub fn record_success(&self) {
        self.machine.record(false);
    }

    /// Counts a failure observed without a permit; see
    /// [`record_success`](Self::record_success). It can trip a closed
    /// breaker as a permit's [`failure`](BreakerPermit::failure) can, and is
    /// ignored while open or half-open. resilience4j's `onError`, failsafe's
    /// `recordFailure`.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().failure_threshold(1);
    /// breaker.record_failure();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// ```
    pub fn record_failure(&self) {
        self.machine.record(true);
    }

    /// The share of failures among the calls in the window, `0.0..=1.0`:
    /// what the [`failure_rate`](Self::failure_rate) builder compares with
    /// its rate (the name is taken by that builder). `None` for a breaker counting consecutive failures, while
    /// open or half-open (the window belongs to the closed period), and
    /// before any call of the current closed period has reported. Counted
    /// even below [`min_calls`](Self::min_calls). resilience4j's
    /// `Metrics.getFailureRate` (which reports -1 below its minimum).
    /// With [`failure_rate_over`](Self::failure_rate_over), over the calls
    /// of the time-based window now.
    ///
    /// The value is read from the window without a lock: under concurrent
    /// outcomes it may miss a call that has claimed its slot but not yet
    /// written its outcome.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new().failure_rate(0.5, 10);
    /// assert_eq!(breaker.current_failure_rate(), None);
    /// breaker.record_success();
    /// breaker.record_failure();
    /// assert_eq!(breaker.current_failure_rate(), Some(0.5));
    /// assert_eq!(CircuitBreaker::new().current_failure_rate(), None); // no window
    /// ```
    pub fn current_failure_rate(&self) -> Option<f64> {
        if self.machine.config.mode == Mode::Consecutive {
            return None;
        }
        let window = self.machine.window()?;
        (window.calls > 0).then(|| f64::from(window.failures) / f64::from(window.calls))
    }

    /// The calls recorded in the window of the current closed (or disabled)
    /// period, at most its size: the denominator of
    /// [`current_failure_rate`](Self::current_failure_rate) and
    /// [`slow_call_rate`](Self::slow_call_rate). With
    /// [`failure_rate_over`](Self::failure_rate_over), the calls of the
    /// time-based window now. 0 for a breaker counting consecutive failures
    /// (unless [`slow_call`](Self::slow_call) gave it a window), and while
    /// open or half-open. resilience4j's `Metrics.getNumberOfBufferedCalls`.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new().failure_rate(0.5, 2);
    /// for _ in 0..3 {
    ///     breaker.record_success();
    /// }
    /// assert_eq!(breaker.calls_in_window(), 2); // the window holds 2
    /// ```
    pub fn calls_in_window(&self) -> u32 {
        self.machine.window().map_or(0, |window| window.calls)
    }

    /// The share of slow calls among the calls in the window, `0.0..=1.0`:
    /// what [`slow_call`](Self::slow_call) compares with its rate. `None`
    /// without `slow_call`, while open or half-open, and before any call of
    /// the current closed period has reported; counted even below
    /// [`min_calls`](Self::min_calls). resilience4j's
    /// `Metrics.getSlowCallRate`. Read without a lock, as
    /// [`current_failure_rate`](Self::current_failure_rate) is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new()
    ///     .failure_rate(0.5, 10)
    ///     .slow_call(Duration::from_secs(60), 0.5);
    /// assert_eq!(breaker.slow_call_rate(), None);
    /// breaker.try_acquire().unwrap().success(); // far faster than 60 s
    /// assert_eq!(breaker.slow_call_rate(), Some(0.0));
    /// assert_eq!(CircuitBreaker::new().slow_call_rate(), None);
    /// ```
    pub fn slow_call_rate(&self) -> Option<f64> {
        self.machine.config.slow?;
        let window = self.machine.window()?;
        (window.calls > 0).then(|| f64::from(window.slow) / f64::from(window.calls))
    }

    /// How many calls [`try_acquire`](Self::try_acquire) has refused since
    /// the breaker was built: while open, and while half-open with every
    /// probe slot taken. A counter that only grows (wrapping after 2^64);
    /// [`reset`](Self::reset) does not clear it. resilience4j's
    /// `Metrics.getNumberOfNotPermittedCalls`. It is written only on a
    /// refusal, never on an admitted call.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().is_err());
    /// assert!(breaker.try_acquire().is_err());
    /// assert_eq!(breaker.rejected_count(), 2);
    /// ```
    pub fn rejected_count(&self) -> u64 {
        self.machine.rejected()
    }

    /// Asks to make one call (one attempt).
    ///
    /// Returns a [`BreakerPermit`] to report the call's outcome with, or
    /// [`CircuitOpen`] if the breaker is open, or half-open with all its
    /// probe slots taken. Closed, this is one atomic load and never reads
    /// the clock (but for [`slow_call`](Self::slow_call), which times the
    /// call from here). Open, it reads the clock, and the first call after
    /// `open_for` moves the breaker to half-open and becomes a probe.
    ///
    /// Dropping the permit without calling
    /// [`success`](BreakerPermit::success) or
    /// [`failure`](BreakerPermit::failure) (e.g. because the call's future
    /// was cancelled) counts nothing, and frees the slot of a half-open
    /// probe.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitOpen};
    ///
    /// fn guarded(breaker: &CircuitBreaker, ok: bool) -> Result<(), CircuitOpen> {
    ///     let permit = breaker.try_acquire()?;
    ///     // ... make the call ...
    ///     if ok { permit.success() } else { permit.failure() }
    ///     Ok(())
    /// }
    ///
    /// let breaker = CircuitBreaker::new().failure_threshold(1);
    /// assert_eq!(guarded(&breaker, false), Ok(()));
    /// assert_eq!(guarded(&breaker, true), Err(CircuitOpen::new()));
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, CircuitOpen> {
        // Closed: the permit is built here, as an ordinary call's, so the
        // caller's outcome path knows it is no probe.
        match self.machine.admit_free() {
            Ok(generation) => Ok(BreakerPermit::new(
                &self.machine,
                machine::Admitted {
                    generation,
                    probe: false,
                },
            )),
            Err(word) => self.try_acquire_gated(word),
        }
    }

    /// [`try_acquire`](Self::try_acquire) while open or half-open, or
    /// throttling.
    #[inline(never)]
    fn try_acquire_gated(&self, word: u64) -> Result<BreakerPermit<'_>, CircuitOpen> {
        if let Some(throttled) = self.machine.throttle(word) {
            let (call, bucket) = throttled?;
            return Ok(BreakerPermit::throttled(&self.machine, call, bucket));
        }
        let call = self.machine.acquire_probe(word)?;
        if !call.probe {
            // Closed again between the load and the swap, or by the fleet:
            // a throttling breaker's draw decides this call too.
            if let Some(throttled) = self.machine.throttle(self.machine.word()) {
                let (call, bucket) = throttled?;
                return Ok(BreakerPermit::throttled(&self.machine, call, bucket));
            }
        }
        Ok(BreakerPermit::new(&self.machine, call))
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.machine.config;
        let mut s = f.debug_struct("CircuitBreaker");
        s.field("state", &self.state());
        match config.mode {
            Mode::Consecutive => s.field("failure_threshold", &config.failure_threshold),
            Mode::Rate => s
                .field("failure_rate", &config.failure_rate)
                .field("window", &config.window)
                .field("min_calls", &config.min_calls()),
            Mode::Time => s
                .field("failure_rate", &config.failure_rate)
                .field("period", &Duration::from_nanos(config.period_nanos))
                .field("min_calls", &config.min_calls()),
            Mode::Throttle => s
                .field("adaptive_throttling", &config.throttle_k)
                .field("window", &Duration::from_nanos(config.period_nanos)),
        };
        if let Some(slow) = config.slow {
            s.field(
                "slow_call",
                &(Duration::from_nanos(slow.threshold_nanos), slow.rate),
            );
            if config.mode == Mode::Consecutive {
                s.field("window", &config.window)
                    .field("min_calls", &config.min_calls());
            }
        }
        s.field("open_for", &Duration::from_nanos(config.open_for_nanos));
        if config.open_multiplier > 1.0 {
            s.field("open_multiplier", &config.open_multiplier)
                .field("open_max", &Duration::from_nanos(config.open_max_nanos));
        }
        s.field("half_open_probes", &config.half_open_probes);
        if let Some(rate) = config.half_open_rate {
            s.field("half_open_failure_rate", &rate);
        }
        s.finish_non_exhaustive()
    }
}
