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
//!   failures among the last `window` calls reaches the rate.
//! - **Open** rejects every call with [`CircuitOpen`] until `open_for` has
//!   passed. The breaker does not move by itself: the first
//!   [`try_acquire`](CircuitBreaker::try_acquire) after that moves it to
//!   half-open and becomes its first probe.
//! - **HalfOpen** admits exactly `half_open_probes` trial calls at once and
//!   rejects the rest. One failed probe opens the breaker again for a fresh
//!   `open_for`; once all of them have succeeded it closes with its counts
//!   cleared.
//!
//! [`reset`](CircuitBreaker::reset) and [`force_open`](CircuitBreaker::force_open)
//! move it by hand.
//!
//! # Why lock-free
//!
//! A breaker sits on the happy path of every call it guards, usually as one
//! `static` shared by every caller of a function and by async and blocking
//! code alike. A mutex there would serialise all callers, could be held by a
//! thread that the OS has descheduled, and would be poisoned by a panicking
//! hook. Instead the whole state lives in one `AtomicU64`, and every
//! transition is a single compare-and-swap, so no reader ever sees a
//! half-made transition. Admitting a call while closed is one atomic load; a
//! success while closed is one more in the default mode, and a
//! compare-and-swap plus one bit write in rate mode. The clock is only read
//! while open and when tripping.
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
//! # Layout of the state word
//!
//! ```text
//! bits     63 ........... 34 33 ........ 2 1 0
//! Closed   count (30 bits)   generation    0 0   count: failure streak, or calls
//!                                                claimed in the rate window
//! HalfOpen succ(15) | inflight(15) | gen   1 0
//! Open     reopen time (62 bits, ns since the breaker's epoch)  0 1
//! ```
//!
//! Open needs no generation of its own: no permit is handed out while open,
//! and leaving Open draws a fresh one. Generations come from a separate
//! 32-bit counter that is touched only on transitions. The reopen time is
//! measured in nanoseconds since a per-breaker epoch that is set when the
//! breaker first needs the clock, which keeps `new` a `const fn` and the
//! 62 bits good for 146 years.
//!
//! # The failure-rate window
//!
//! In rate mode the closed count is the index of the next slot in a ring of
//! up to 1024 outcome bits (16 `AtomicU64`s, a set bit meaning failure). A
//! call claims its slot by advancing the index with the same
//! compare-and-swap that checks its generation, then writes its bit. The
//! failure count is the population count of the valid slots, read only when
//! a failure (or the call that reaches `min_calls`) could trip the breaker,
//! so it cannot drift from the ring as a separately kept counter could. A new
//! generation starts at index 0 and only counts the slots it has written
//! since, so the ring never needs clearing. The claim and the bit write are
//! two steps, so under contention a bit may briefly lag behind its claim, and
//! a thread descheduled between them for a whole open/half-open cycle may
//! write one stale bit into the next generation's ring: the rate is then off
//! by that one call until the slot is reused. Trading that for a lock on
//! every call is not worth it.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::CircuitOpen;

const PHASE_MASK: u64 = 0b11;
const PHASE_CLOSED: u64 = 0;
const PHASE_OPEN: u64 = 1;
const PHASE_HALF_OPEN: u64 = 2;

const GEN_SHIFT: u32 = 2;
const COUNT_SHIFT: u32 = 34;
const COUNT_MAX: u32 = (1 << 30) - 1;
const PROBE_BITS: u32 = 15;
const PROBE_MAX: u32 = (1 << PROBE_BITS) - 1;
const TIME_SHIFT: u32 = 2;
const TIME_MAX: u64 = (1 << 62) - 1;

/// The largest failure-rate window; larger windows are clamped to it.
const MAX_WINDOW: u32 = 1024;
const RING_WORDS: usize = (MAX_WINDOW / 64) as usize;

const DEFAULT_THRESHOLD: u32 = 5;
const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);

/// The state of a [`CircuitBreaker`], as reported by
/// [`CircuitBreaker::state`] and passed to
/// [`on_state_change`](CircuitBreaker::on_state_change) hooks.
///
/// ```
/// use retry_runtime::{CircuitBreaker, CircuitState};
///
/// let breaker = CircuitBreaker::new();
/// assert_eq!(breaker.state(), CircuitState::Closed);
/// breaker.force_open();
/// assert_eq!(breaker.state(), CircuitState::Open);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; outcomes are counted towards tripping.
    Closed,
    /// Calls are rejected with [`CircuitOpen`] until `open_for` has passed.
    Open,
    /// A limited number of trial calls go through to test the dependency.
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Consecutive,
    Rate,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    mode: Mode,
    failure_threshold: u32,
    failure_rate: f64,
    window: u32,
    /// `None` until set, so that `min_calls` may come before or after
    /// `failure_rate` and still default to the window.
    min_calls: Option<u32>,
    open_for_nanos: u64,
    half_open_probes: u32,
    on_state_change: Option<fn(CircuitState, CircuitState)>,
    name: &'static str,
}

impl Config {
    const fn min_calls(&self) -> u32 {
        match self.min_calls {
            Some(n) if n < self.window => n,
            _ => self.window,
        }
    }
}

/// The state word, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        generation: u32,
        count: u32,
    },
    Open {
        until: u64,
    },
    HalfOpen {
        generation: u32,
        in_flight: u32,
        succeeded: u32,
    },
}

impl State {
    const fn decode(word: u64) -> Self {
        let generation = (word >> GEN_SHIFT) as u32;
        match word & PHASE_MASK {
            PHASE_CLOSED => State::Closed {
                generation,
                count: (word >> COUNT_SHIFT) as u32,
            },
            PHASE_OPEN => State::Open {
                until: word >> TIME_SHIFT,
            },
            _ => State::HalfOpen {
                generation,
                in_flight: (word >> COUNT_SHIFT) as u32 & PROBE_MAX,
                succeeded: (word >> (COUNT_SHIFT + PROBE_BITS)) as u32 & PROBE_MAX,
            },
        }
    }

    const fn encode(self) -> u64 {
        match self {
            State::Closed { generation, count } => {
                PHASE_CLOSED
                    | (generation as u64) << GEN_SHIFT
                    | ((if count < COUNT_MAX { count } else { COUNT_MAX }) as u64) << COUNT_SHIFT
            }
            State::Open { until } => {
                PHASE_OPEN | (if until < TIME_MAX { until } else { TIME_MAX }) << TIME_SHIFT
            }
            State::HalfOpen {
                generation,
                in_flight,
                succeeded,
            } => {
                PHASE_HALF_OPEN
                    | (generation as u64) << GEN_SHIFT
                    | ((in_flight & PROBE_MAX) as u64) << COUNT_SHIFT
                    | ((succeeded & PROBE_MAX) as u64) << (COUNT_SHIFT + PROBE_BITS)
            }
        }
    }

    const fn public(word: u64) -> CircuitState {
        match word & PHASE_MASK {
            PHASE_CLOSED => CircuitState::Closed,
            PHASE_OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }
}

const fn clamp(n: u32, lo: u32, hi: u32) -> u32 {
    if n < lo {
        lo
    } else if n > hi {
        hi
    } else {
        n
    }
}

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
///   among the last `window` calls reaches the rate.
/// - **Open** rejects every call with [`CircuitOpen`] for
///   [`open_for`](Self::open_for); the first [`try_acquire`](Self::try_acquire)
///   after that moves it to half-open and becomes a probe.
/// - **HalfOpen** admits [`half_open_probes`](Self::half_open_probes) trial
///   calls at once. One failure opens it again for a fresh `open_for`; when
///   all of them have succeeded it closes, with its counts cleared.
///
/// Every call goes through [`try_acquire`](Self::try_acquire) and reports its
/// outcome on the returned [`BreakerPermit`]. The state is one atomic word,
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
    state: AtomicU64,
    next_generation: AtomicU32,
    ring: [AtomicU64; RING_WORDS],
    epoch: OnceLock<Instant>,
    config: Config,
}

impl CircuitBreaker {
    /// The window `#[resilient(circuit_breaker(failure_rate = ..))]` uses
    /// when `window` is not given.
    pub const DEFAULT_WINDOW: u32 = 20;

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
    #[cfg(not(steadfast_loom))]
    pub const fn new() -> Self {
        CircuitBreaker {
            state: AtomicU64::new(
                State::Closed {
                    generation: 0,
                    count: 0,
                }
                .encode(),
            ),
            // Generation 0 is the initial closed period.
            next_generation: AtomicU32::new(1),
            ring: [const { AtomicU64::new(0) }; RING_WORDS],
            epoch: OnceLock::new(),
            config: Config {
                mode: Mode::Consecutive,
                failure_threshold: DEFAULT_THRESHOLD,
                failure_rate: 0.5,
                window: MAX_WINDOW,
                min_calls: None,
                open_for_nanos: DEFAULT_OPEN_FOR.as_nanos() as u64,
                half_open_probes: 1,
                on_state_change: None,
                name: "circuit_breaker",
            },
        }
    }

    /// The `--cfg steadfast_loom` build of [`new`](Self::new): loom's atomics
    /// cannot be built in a `const fn`. Keep it in step with the one above.
    #[cfg(steadfast_loom)]
    pub fn new() -> Self {
        CircuitBreaker {
            state: AtomicU64::new(
                State::Closed {
                    generation: 0,
                    count: 0,
                }
                .encode(),
            ),
            next_generation: AtomicU32::new(1),
            ring: std::array::from_fn(|_| AtomicU64::new(0)),
            epoch: OnceLock::new(),
            config: Config {
                mode: Mode::Consecutive,
                failure_threshold: DEFAULT_THRESHOLD,
                failure_rate: 0.5,
                window: MAX_WINDOW,
                min_calls: None,
                open_for_nanos: DEFAULT_OPEN_FOR.as_nanos() as u64,
                half_open_probes: 1,
                on_state_change: None,
                name: "circuit_breaker",
            },
        }
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
        self.config.mode = Mode::Consecutive;
        self.config.failure_threshold = clamp(n, 1, COUNT_MAX);
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
        self.config.mode = Mode::Rate;
        self.config.failure_rate = if rate.is_nan() || rate > 1.0 {
            1.0
        } else if rate < 0.0 {
            0.0
        } else {
            rate
        };
        self.config.window = clamp(window, 1, MAX_WINDOW);
        self
    }

    /// The fewest calls in the window before
    /// [`failure_rate`](Self::failure_rate) may trip the breaker, so that
    /// one early failure is not a 100% failure rate. Defaults to the window
    /// size; `n` is clamped to `1..=window`. Ignored in
    /// [`failure_threshold`](Self::failure_threshold) mode.
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
        self.config.min_calls = Some(if n == 0 { 1 } else { n });
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
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().is_ok()); // open_for has already passed
    /// assert_eq!(breaker.state(), CircuitState::HalfOpen);
    /// ```
    #[must_use]
    pub const fn open_for(mut self, d: Duration) -> Self {
        let nanos = d.as_nanos();
        self.config.open_for_nanos = if nanos > TIME_MAX as u128 {
            TIME_MAX
        } else {
            nanos as u64
        };
        self
    }

    /// How many trial calls the half-open breaker admits at once; all of
    /// them must succeed to close it. 1 by default; `n` is clamped to
    /// `1..=32767`.
    ///
    /// A probe whose permit is dropped without an outcome (its call was
    /// cancelled) frees its slot for another probe.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().open_for(Duration::ZERO).half_open_probes(2);
    /// breaker.force_open();
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
        self.config.half_open_probes = clamp(n, 1, PROBE_MAX);
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
        self.config.on_state_change = Some(hook);
        self
    }

    /// Names the breaker in events and metrics (the `tracing` and `metrics`
    /// features); an inline `circuit_breaker` is named after its function.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// static PAYMENTS: CircuitBreaker = CircuitBreaker::new().name("payments-api");
    /// # let _ = &PAYMENTS;
    /// ```
    #[must_use]
    pub const fn name(mut self, name: &'static str) -> Self {
        self.config.name = name;
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
        State::public(self.state.load(Ordering::Acquire))
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
        let closed = State::Closed {
            generation: self.fresh_generation(),
            count: 0,
        };
        let old = self.state.swap(closed.encode(), Ordering::AcqRel);
        self.notify(State::public(old), CircuitState::Closed);
    }

    /// Opens the breaker now, for `open_for`, whatever its state; an open
    /// breaker starts its `open_for` over. Outcomes of calls admitted before
    /// are ignored.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.force_open();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// assert!(breaker.try_acquire().is_err());
    /// ```
    pub fn force_open(&self) {
        let open = State::Open {
            until: self.reopen_time(),
        };
        let old = self.state.swap(open.encode(), Ordering::AcqRel);
        self.notify(State::public(old), CircuitState::Open);
    }

    /// Asks to make one call (one attempt).
    ///
    /// Returns a [`BreakerPermit`] to report the call's outcome with, or
    /// [`CircuitOpen`] if the breaker is open, or half-open with all its
    /// probe slots taken. Closed, this is one atomic load and never reads
    /// the clock. Open, it reads the clock, and the first call after
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
        let word = self.state.load(Ordering::Acquire);
        if word & PHASE_MASK == PHASE_CLOSED {
            return Ok(self.permit((word >> GEN_SHIFT) as u32, false));
        }
        self.acquire_slow(word)
    }

    fn acquire_slow(&self, mut word: u64) -> Result<BreakerPermit<'_>, CircuitOpen> {
        let mut fresh = None;
        loop {
            let (generation, next, from) = match State::decode(word) {
                State::Closed { generation, .. } => return Ok(self.permit(generation, false)),
                State::Open { until } => {
                    if self.now_nanos() < until {
                        return Err(CircuitOpen::new());
                    }
                    let generation = *fresh.get_or_insert_with(|| self.fresh_generation());
                    let next = State::HalfOpen {
                        generation,
                        in_flight: 1,
                        succeeded: 0,
                    };
                    (generation, next, CircuitState::Open)
                }
                State::HalfOpen {
                    generation,
                    in_flight,
                    succeeded,
                } => {
                    if in_flight.saturating_add(succeeded) >= self.config.half_open_probes {
                        return Err(CircuitOpen::new());
                    }
                    let next = State::HalfOpen {
                        generation,
                        in_flight: in_flight + 1,
                        succeeded,
                    };
                    (generation, next, CircuitState::HalfOpen)
                }
            };
            match self.cas(word, next) {
                Ok(()) => {
                    self.notify(from, CircuitState::HalfOpen);
                    return Ok(self.permit(generation, true));
                }
                Err(current) => word = current,
            }
        }
    }

    fn permit(&self, generation: u32, probe: bool) -> BreakerPermit<'_> {
        BreakerPermit {
            breaker: self,
            generation,
            probe,
            pending: true,
        }
    }

    fn record_closed_success(&self, generation: u32) {
        if self.config.mode == Mode::Rate {
            return self.record_in_window(generation, false);
        }
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            match State::decode(word) {
                // The happy path: nothing to reset, so no write.
                State::Closed {
                    generation: g,
                    count,
                } if g == generation && count != 0 => {
                    match self.cas(
                        word,
                        State::Closed {
                            generation,
                            count: 0,
                        },
                    ) {
                        Ok(()) => return,
                        Err(current) => word = current,
                    }
                }
                _ => return,
            }
        }
    }

    fn record_closed_failure(&self, generation: u32) {
        if self.config.mode == Mode::Rate {
            return self.record_in_window(generation, true);
        }
        let mut until = None;
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let State::Closed {
                generation: g,
                count,
            } = State::decode(word)
            else {
                return;
            };
            if g != generation {
                return;
            }
            let count = count.saturating_add(1);
            let trips = count >= self.config.failure_threshold;
            let next = if trips {
                State::Open {
                    until: *until.get_or_insert_with(|| self.reopen_time()),
                }
            } else {
                State::Closed { generation, count }
            };
            match self.cas(word, next) {
                Ok(()) => {
                    if trips {
                        self.notify(CircuitState::Closed, CircuitState::Open);
                    }
                    return;
                }
                Err(current) => word = current,
            }
        }
    }

    fn record_in_window(&self, generation: u32, failed: bool) {
        let window = self.config.window;
        let mut word = self.state.load(Ordering::Acquire);
        // The slot is claimed by the same compare-and-swap that checks the
        // generation, so a stale call cannot take a slot of a later one.
        let index = loop {
            let State::Closed {
                generation: g,
                count: index,
            } = State::decode(word)
            else {
                return;
            };
            if g != generation {
                return;
            }
            // Once past the first lap, stay in [window, 2 * window): the
            // slot is the same modulo window, and the count stays small.
            let next = match index.saturating_add(1) {
                n if n >= window.saturating_mul(2) => n - window,
                n => n,
            };
            match self.cas(
                word,
                State::Closed {
                    generation,
                    count: next,
                },
            ) {
                Ok(()) => break index,
                Err(current) => word = current,
            }
        };
        let slot = (index % window) as usize;
        let bit = 1u64 << (slot % 64);
        if let Some(cell) = self.ring.get(slot / 64) {
            if failed {
                cell.fetch_or(bit, Ordering::AcqRel);
            } else {
                cell.fetch_and(!bit, Ordering::AcqRel);
            }
        }
        // A success cannot raise the rate, but the call that reaches
        // min_calls is the first one allowed to act on it.
        if failed || index.saturating_add(1) == self.config.min_calls() {
            self.trip_on_rate(generation);
        }
    }

    fn trip_on_rate(&self, generation: u32) {
        let mut until = None;
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let State::Closed {
                generation: g,
                count: index,
            } = State::decode(word)
            else {
                return;
            };
            if g != generation {
                return;
            }
            let calls = index.min(self.config.window);
            if calls < self.config.min_calls() {
                return;
            }
            let failures = self.failures_in_first(calls);
            if failures == 0 || (failures as f64 / calls as f64) < self.config.failure_rate {
                return;
            }
            let open = State::Open {
                until: *until.get_or_insert_with(|| self.reopen_time()),
            };
            match self.cas(word, open) {
                Ok(()) => return self.notify(CircuitState::Closed, CircuitState::Open),
                Err(current) => word = current,
            }
        }
    }

    /// Failures among ring slots `0..n`: in the first lap of a generation
    /// only those slots are its own.
    fn failures_in_first(&self, n: u32) -> u32 {
        let n = n.min(MAX_WINDOW) as usize;
        let full = &self.ring[..n / 64];
        let mut failures: u32 = full
            .iter()
            .map(|cell| cell.load(Ordering::Acquire).count_ones())
            .sum();
        if let Some(cell) = self.ring.get(n / 64) {
            let mask = (1u64 << (n % 64)) - 1;
            failures += (cell.load(Ordering::Acquire) & mask).count_ones();
        }
        failures
    }

    fn record_probe_success(&self, generation: u32) {
        let mut fresh = None;
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let State::HalfOpen {
                generation: g,
                in_flight,
                succeeded,
            } = State::decode(word)
            else {
                return;
            };
            if g != generation {
                return;
            }
            let succeeded = succeeded.saturating_add(1);
            let closes = succeeded >= self.config.half_open_probes;
            let next = if closes {
                State::Closed {
                    generation: *fresh.get_or_insert_with(|| self.fresh_generation()),
                    count: 0,
                }
            } else {
                State::HalfOpen {
                    generation,
                    in_flight: in_flight.saturating_sub(1),
                    succeeded,
                }
            };
            match self.cas(word, next) {
                Ok(()) => {
                    if closes {
                        self.notify(CircuitState::HalfOpen, CircuitState::Closed);
                    }
                    return;
                }
                Err(current) => word = current,
            }
        }
    }

    fn record_probe_failure(&self, generation: u32) {
        let mut until = None;
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            match State::decode(word) {
                State::HalfOpen { generation: g, .. } if g == generation => {
                    let open = State::Open {
                        until: *until.get_or_insert_with(|| self.reopen_time()),
                    };
                    match self.cas(word, open) {
                        Ok(()) => return self.notify(CircuitState::HalfOpen, CircuitState::Open),
                        Err(current) => word = current,
                    }
                }
                _ => return,
            }
        }
    }

    fn release_probe(&self, generation: u32) {
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let State::HalfOpen {
                generation: g,
                in_flight,
                succeeded,
            } = State::decode(word)
            else {
                return;
            };
            if g != generation {
                return;
            }
            let next = State::HalfOpen {
                generation,
                in_flight: in_flight.saturating_sub(1),
                succeeded,
            };
            match self.cas(word, next) {
                Ok(()) => return,
                Err(current) => word = current,
            }
        }
    }

    fn cas(&self, current: u64, next: State) -> Result<(), u64> {
        self.state
            .compare_exchange(current, next.encode(), Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }

    fn fresh_generation(&self) -> u32 {
        // Wrapping is harmless: a permit would have to outlive 2^32
        // transitions to be mistaken for a current one.
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    fn now_nanos(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        let elapsed = Instant::now().saturating_duration_since(epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    fn reopen_time(&self) -> u64 {
        self.now_nanos()
            .saturating_add(self.config.open_for_nanos)
            .min(TIME_MAX)
    }

    fn notify(&self, from: CircuitState, to: CircuitState) {
        if from != to {
            crate::observe::breaker_transition(self.config.name, from, to);
            if let Some(hook) = self.config.on_state_change {
                hook(from, to);
            }
        }
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.config;
        let mut s = f.debug_struct("CircuitBreaker");
        s.field("state", &self.state());
        match config.mode {
            Mode::Consecutive => s.field("failure_threshold", &config.failure_threshold),
            Mode::Rate => s
                .field("failure_rate", &config.failure_rate)
                .field("window", &config.window)
                .field("min_calls", &config.min_calls()),
        };
        s.field("open_for", &Duration::from_nanos(config.open_for_nanos))
            .field("half_open_probes", &config.half_open_probes)
            .finish_non_exhaustive()
    }
}

/// Permission from [`CircuitBreaker::try_acquire`] to make one call; report
/// how it went with [`success`](Self::success) or
/// [`failure`](Self::failure).
///
/// Dropping it without either counts nothing: use that when the call was
/// cancelled, or ended in a way that says nothing about the dependency's
/// health. A half-open probe's slot is then freed for another probe.
///
/// A permit from an earlier state (say, a slow call admitted before the
/// breaker opened) is recognised as stale and its outcome ignored.
///
/// ```
/// use retry_runtime::{CircuitBreaker, CircuitState};
///
/// let breaker = CircuitBreaker::new().failure_threshold(1);
/// let slow = breaker.try_acquire().unwrap();
/// breaker.try_acquire().unwrap().failure();
/// assert_eq!(breaker.state(), CircuitState::Open);
/// slow.success(); // admitted before the breaker opened: ignored
/// assert_eq!(breaker.state(), CircuitState::Open);
/// ```
#[must_use = "report the call's outcome with `success()` or `failure()`"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u32,
    probe: bool,
    pending: bool,
}

impl BreakerPermit<'_> {
    /// The call succeeded (or failed in a way that shows the dependency is
    /// answering). Resets the failure streak, counts a success in the rate
    /// window, or, for the last outstanding half-open probe, closes the
    /// breaker.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.try_acquire().unwrap().success();
    /// ```
    pub fn success(mut self) {
        self.pending = false;
        if self.probe {
            self.breaker.record_probe_success(self.generation);
        } else {
            self.breaker.record_closed_success(self.generation);
        }
    }

    /// The call failed. Counts towards tripping the breaker, or, for a
    /// half-open probe, opens it again for a fresh `open_for`.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().failure_threshold(1);
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// ```
    pub fn failure(mut self) {
        self.pending = false;
        if self.probe {
            self.breaker.record_probe_failure(self.generation);
        } else {
            self.breaker.record_closed_failure(self.generation);
        }
    }

    /// Whether this permit is one of the half-open breaker's trial calls.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new().open_for(Duration::ZERO);
    /// assert!(!breaker.try_acquire().unwrap().is_probe());
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().unwrap().is_probe());
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if self.pending && self.probe {
            self.breaker.release_probe(self.generation);
        }
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("generation", &self.generation)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_word_round_trips() {
        let states = [
            State::Closed {
                generation: 0,
                count: 0,
            },
            State::Closed {
                generation: u32::MAX,
                count: COUNT_MAX,
            },
            State::Open { until: 0 },
            State::Open { until: TIME_MAX },
            State::HalfOpen {
                generation: u32::MAX,
                in_flight: PROBE_MAX,
                succeeded: PROBE_MAX,
            },
            State::HalfOpen {
                generation: 7,
                in_flight: 1,
                succeeded: 2,
            },
        ];
        for state in states {
            assert_eq!(State::decode(state.encode()), state);
        }
    }

    #[test]
    fn encode_saturates_instead_of_spilling_into_other_fields() {
        let word = State::Open { until: u64::MAX }.encode();
        assert_eq!(State::decode(word), State::Open { until: TIME_MAX });
        let word = State::Closed {
            generation: 3,
            count: u32::MAX,
        }
        .encode();
        assert_eq!(
            State::decode(word),
            State::Closed {
                generation: 3,
                count: COUNT_MAX
            }
        );
    }

    #[test]
    fn failure_count_masks_unclaimed_slots() {
        let breaker = CircuitBreaker::new().failure_rate(0.5, 200);
        breaker.ring[0].store(u64::MAX, Ordering::Relaxed);
        breaker.ring[1].store(u64::MAX, Ordering::Relaxed);
        assert_eq!(breaker.failures_in_first(0), 0);
        assert_eq!(breaker.failures_in_first(3), 3);
        assert_eq!(breaker.failures_in_first(64), 64);
        assert_eq!(breaker.failures_in_first(70), 70);
        assert_eq!(breaker.failures_in_first(1024), 128);
        assert_eq!(breaker.failures_in_first(u32::MAX), 128);
    }
}
