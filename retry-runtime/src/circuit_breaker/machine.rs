//! The state machine behind a breaker: the state word and every rule that
//! changes it.
//!
//! Every change goes through [`Machine::transition`], one compare-and-swap
//! loop in the manner of governor's `measure_and_replace_one`: a rule sees
//! the decoded current state and returns the next one, or `None` to leave
//! it; the loop publishes the result and re-runs the rule on the newer state
//! whenever another thread got there first, and reports a change of public
//! state once, from the thread whose swap made it. So each rule below is the
//! rule and nothing else, and no reader ever sees half a transition.
//!
//! The rules that record outcomes in a window (count- or time-based, with
//! slow calls) are in the child module `windows.rs`, and adaptive
//! throttling's admission and outcomes in `throttle.rs`; they change the state
//! through the same [`Machine::transition`], except the count-based
//! window's claim of a slot, which moves the count within a period and
//! nothing else: [`Machine::advance_tally`], the same loop without the
//! hooks a transition runs after its swap.
//!
//! What a rule computes lazily (a reopen time, which reads the clock; a
//! fresh generation, which takes one from a counter) it computes once per
//! call and reuses if the swap has to be retried.

use std::sync::OnceLock;

use tokio::time::Instant;

use super::config::{Config, Recorder};
use super::half_open::Verdict;
use super::report;
use super::shared::Shared;
use super::state::{CircuitState, Gate, HELD, Order, State};
use super::time_window::TimeRing;
use super::window::Ring;
use crate::error::CircuitOpen;
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::const_fn;

pub(super) struct Machine {
    /// On a cache line of its own: under contention every outcome in
    /// rate mode swaps it, and the fields around it (the configuration,
    /// the rings) are read on every call, so sharing its line would make
    /// each of those reads a miss too.
    state: CacheLine<AtomicU64>,
    /// Generations come from here, touched only on transitions; the state
    /// word holds the current one. Steps of two, so that each takes the
    /// parity of the mode (odd: throttling; see `state.rs`).
    next_generation: AtomicU32,
    ring: Ring,
    /// Slow calls, at the same indices as `ring` (with `slow_call`).
    slow_ring: Ring,
    /// The time-based window (`failure_rate_over`), or adaptive
    /// throttling's requests and accepts.
    time: TimeRing,
    /// Calls refused while open or half-open, or by the throttle; written
    /// only on refusal.
    rejected: AtomicU64,
    /// The open time of the latest reopen after a failed half-open period,
    /// in nanoseconds (0: none since the breaker last closed). Read and
    /// written only around transitions, and only with
    /// `open_for_backoff`; see [`Machine::probe_reopened`].
    reopened_for: AtomicU64,
    /// Set when the breaker first needs the clock, which keeps construction
    /// `const`; reopen times are nanoseconds since it.
    epoch: OnceLock<Instant>,
    pub(super) config: Config,
    /// Redis, the key and the fleet's view when shared
    /// (`.shared(&REDIS, key)`, `shared.rs`); unused otherwise.
    pub(super) shared: Shared,
    /// Swaps published, so unit tests can see which paths write.
    #[cfg(test)]
    writes: std::sync::atomic::AtomicU32,
    /// Times a count-based window was judged for a trip, so unit tests can
    /// see which outcomes skip it.
    #[cfg(test)]
    pub(super) judged: std::sync::atomic::AtomicU32,
}

/// A value alone on its cache line (64 bytes, as on x86-64 and most
/// ARM cores).
#[repr(align(64))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// What a permit remembers about its admission.
#[derive(Debug, Clone, Copy)]
pub(super) struct Admitted {
    pub(super) generation: u32,
    pub(super) probe: bool,
}

/// What the window holds for the current closed (or disabled) period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WindowSnapshot {
    pub(super) calls: u32,
    pub(super) failures: u32,
    pub(super) slow: u32,
}

impl Machine {
    const_fn! {
        pub(super) fn new(config: Config) -> Self {
            Machine {
                // Generation 0 (1 when throttling) is the initial closed
                // period.
                state: CacheLine(AtomicU64::new(
                    State::closed(State::generation_for(0, config.throttles())).encode(),
                )),
                next_generation: AtomicU32::new(2),
                ring: Ring::new(),
                slow_ring: Ring::new(),
                time: TimeRing::new(),
                rejected: AtomicU64::new(0),
                reopened_for: AtomicU64::new(0),
                epoch: OnceLock::new(),
                config,
                shared: Shared::new(),
                #[cfg(test)]
                writes: std::sync::atomic::AtomicU32::new(0),
                #[cfg(test)]
                judged: std::sync::atomic::AtomicU32::new(0),
            }
        }
    }

    pub(super) fn state(&self) -> CircuitState {
        if self.shared.is_shared() {
            self.obey_fleet();
        }
        State::public_of(self.state.load(Ordering::Acquire))
    }

    /// Whether the breaker is disabled (admitting and counting, never
    /// tripping).
    pub(super) fn is_disabled(&self) -> bool {
        matches!(self.current(), State::Disabled { .. })
    }

    /// Whether the breaker is held open until `reset`.
    pub(super) fn is_forced_open(&self) -> bool {
        self.current() == State::Open { until: HELD }
    }

    /// The state word now.
    pub(super) fn word(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    fn current(&self) -> State {
        State::decode(self.state.load(Ordering::Acquire))
    }

    /// The one way the state changes; see the module docs. Returns the
    /// states before and after the swap, or the state the rule declined.
    #[inline]
    fn transition(
        &self,
        rule: impl FnMut(State) -> Option<State>,
    ) -> Result<(State, State), State> {
        self.transition_from(self.state.load(Ordering::Acquire), rule)
    }

    /// [`transition`](Self::transition) from a word the caller has just
    /// loaded, so that it is not loaded twice.
    #[inline]
    fn transition_from(
        &self,
        mut word: u64,
        mut rule: impl FnMut(State) -> Option<State>,
    ) -> Result<(State, State), State> {
        loop {
            let old = State::decode(word);
            let new = rule(old).ok_or(old)?;
            match self.state.compare_exchange(
                word,
                new.encode(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    #[cfg(test)]
                    self.writes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.period_ended(old, new);
                    if self.shared.is_shared() {
                        self.shared.moved(
                            &self.config,
                            old,
                            new,
                            || self.now_nanos(),
                            || self.current(),
                        );
                    }
                    self.notify(old.public(), new.public());
                    return Ok((old, new));
                }
                Err(current) => word = current,
            }
        }
    }

    /// Moves the count of a closed or disabled word of `generation` to
    /// `next(count)`, and returns the word it replaced and that count; or
    /// `None`, writing nothing, when the state is another (a stale call).
    ///
    /// The one swap that is not a [`transition`](Self::transition): it
    /// changes neither the phase nor the generation, so no period ends, the
    /// public state stays, and a shared breaker's fleet hears of nothing
    /// (`Shared::moved` ignores such a swap): there is nothing for the
    /// transition's hooks to do, and an outcome in rate mode, which swaps
    /// on every call, should not pay for asking them.
    #[inline]
    pub(super) fn advance_tally(
        &self,
        generation: u32,
        next: impl Fn(u32) -> u32,
    ) -> Option<(u64, u32)> {
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let count = State::tally_of(word, generation)?;
            match self.state.compare_exchange(
                word,
                State::with_tally_of(word, next(count)),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    #[cfg(test)]
                    self.writes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Some((word, count));
                }
                Err(current) => word = current,
            }
        }
    }

    /// Admits a call, or refuses it while open or with every probe slot
    /// taken: [`admit_free`](Self::admit_free), then
    /// [`acquire_probe`](Self::acquire_probe). `CircuitBreaker::try_acquire`
    /// takes the two steps itself, so that an ordinary permit is built
    /// apart from a probe's; this is the tests' door.
    #[cfg(test)]
    pub(super) fn acquire(&self) -> Result<Admitted, CircuitOpen> {
        match self.admit_free() {
            Ok(generation) => Ok(Admitted {
                generation,
                probe: false,
            }),
            Err(word) => self.acquire_probe(word),
        }
    }

    /// The admission fast path: the generation of a closed (or disabled)
    /// breaker, which admits without a probe slot; or the word that says
    /// it is open or half-open, for [`acquire_probe`](Self::acquire_probe).
    #[inline]
    pub(super) fn admit_free(&self) -> Result<u32, u64> {
        // Shared: first apply what the fleet's view ordered (one more load
        // when nothing).
        if self.shared.is_shared() {
            self.obey_fleet();
        }
        // Closed (or disabled): one load, no clock, no write.
        let word = self.state.load(Ordering::Acquire);
        State::free_generation(word).ok_or(word)
    }

    /// Admission while the word read said open or half-open: perhaps a
    /// probe, perhaps a refusal.
    pub(super) fn acquire_probe(&self, word: u64) -> Result<Admitted, CircuitOpen> {
        let probes = self.config.half_open_probes;
        let mut fresh = None;
        let taken = self.transition_from(word, |state| match state {
            // A period numbered for throttling in a breaker that no longer
            // throttles (built by `adaptive_throttling`, then given
            // another mode): renumbered once, so that admission takes the
            // fast path again. Only the first period can be: every later
            // one, disabled ones included, is numbered for the breaker's
            // final mode.
            State::Closed { generation, .. } if self.misnumbered(generation) => Some(
                State::closed(*fresh.get_or_insert_with(|| self.fresh_generation())),
            ),
            State::Closed { .. } | State::Disabled { .. } => None,
            // `open_for` has passed: half-open, with this call as a probe.
            // A held breaker waits for `reset`, whatever the clock says.
            State::Open { until } => {
                if until == HELD || self.now_nanos() < until {
                    return None;
                }
                let fresh = *fresh.get_or_insert_with(|| self.fresh_generation());
                match self.gate_open(until) {
                    Gate::Probe => Some(State::half_open(fresh)),
                    Gate::Close => Some(State::closed(fresh)),
                    Gate::Wait => None,
                }
            }
            State::HalfOpen {
                generation,
                in_flight,
                succeeded,
                failed,
            } => (in_flight.saturating_add(succeeded).saturating_add(failed) < probes
                && self.gate_half_open())
            .then_some(State::HalfOpen {
                generation,
                in_flight: in_flight + 1,
                succeeded,
                failed,
            }),
        });
        match taken {
            Ok((_, State::HalfOpen { generation, .. })) => Ok(Admitted {
                generation,
                probe: true,
            }),
            // Opened by a shared breaker's fleet, whose evidence has lapsed:
            // closed again, and this an ordinary call (or renumbered).
            Ok((_, State::Closed { generation, .. })) => {
                self.closed_again();
                Ok(Admitted {
                    generation,
                    probe: false,
                })
            }
            // Closed (or disabled) again by the time the word was read: an
            // ordinary call.
            Err(State::Closed { generation, .. } | State::Disabled { generation, .. }) => {
                Ok(Admitted {
                    generation,
                    probe: false,
                })
            }
            _ => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(CircuitOpen::new())
            }
        }
    }

    /// Whether `generation` has the parity of the other kind of breaker
    /// (see `state.rs`): only after `adaptive_throttling` was followed by
    /// a builder of another mode.
    fn misnumbered(&self, generation: u32) -> bool {
        generation != State::generation_for(generation, self.config.throttles())
    }

    /// May a breaker whose open period (until `until`) has passed
    /// half-open now? Always, unless shared: then the fleet's probe lease
    /// decides, and an opening by the fleet closes instead.
    #[inline]
    fn gate_open(&self, until: u64) -> Gate {
        if self.shared.is_shared() {
            return self.shared.gate_open(&self.config, until);
        }
        let _ = until;
        Gate::Probe
    }

    /// May a half-open breaker with a free slot admit one more probe?
    /// Always, unless shared: then only while it holds the fleet's lease.
    #[inline]
    fn gate_half_open(&self) -> bool {
        if self.shared.is_shared() {
            return self.shared.gate_half_open(&self.config);
        }
        true
    }

    /// Applies what a shared breaker's fleet ordered, if anything.
    #[inline]
    fn obey_fleet(&self) {
        if let Some(order) = self.shared.order(&self.config, || self.now_nanos()) {
            self.apply(order);
        }
    }

    /// Applies one order of a shared breaker's fleet.
    pub(super) fn apply(&self, order: Order) {
        match order {
            Order::Close => self.fleet_close(),
            Order::Open { until } => self.fleet_open(until),
        }
    }

    /// A shared breaker's fleet has a quorum of "opened" evidence: open
    /// until `until` a closed breaker, or extend an opening of the fleet's.
    /// Never shortened: of two orders applied out of turn by two callers,
    /// the older (an earlier deadline) changes nothing.
    fn fleet_open(&self, until: u64) {
        let opening = State::opened_by_fleet(until);
        let _ = self.transition(|state| match (state, opening) {
            (State::Closed { .. }, _) => Some(opening),
            (State::Open { until: current }, State::Open { until })
                if State::by_fleet(current) && until > current =>
            {
                Some(opening)
            }
            _ => None,
        });
    }

    /// A shared breaker's fleet evidence has dropped below the quorum: a
    /// breaker the fleet opened closes.
    fn fleet_close(&self) {
        let mut fresh = None;
        let closed = self.transition(|state| match state {
            State::Open { until } if State::by_fleet(until) => Some(State::closed(
                *fresh.get_or_insert_with(|| self.fresh_generation()),
            )),
            _ => None,
        });
        if closed.is_ok() {
            self.closed_again();
        }
    }

    /// The admitted call succeeded.
    pub(super) fn success(&self, call: Admitted) {
        self.report(call, false, 0);
    }

    /// The admitted call failed.
    pub(super) fn failure(&self, call: Admitted) {
        self.report(call, true, 0);
    }

    /// The admitted call ended, failed or not; `started` is when it was
    /// admitted, from [`timed_start`](Self::timed_start), for a call timed
    /// for `slow_call` (0: untimed). The two plain modes are handled
    /// inline; probes, slow calls and the time-based window out of line,
    /// so that the plain paths stay as small as they were without them.
    #[inline]
    pub(super) fn report(&self, call: Admitted, failed: bool, started: u64) {
        match (call.probe, self.config.recorder) {
            (false, Recorder::Streak) if failed => self.extend_streak(call.generation),
            (false, Recorder::Streak) => self.end_streak(call.generation),
            (false, Recorder::Ring) => self.record_in_window(call.generation, failed),
            _ => self.report_other(call, failed, started),
        }
    }

    /// [`report`](Self::report) for the rest: a call timed from `started`
    /// is slow when more than the `slow_call` threshold has passed, and a
    /// slow probe counts as a failed one.
    #[inline(never)]
    fn report_other(&self, call: Admitted, failed: bool, started: u64) {
        let slow = started != 0
            && self.config.slow.is_some_and(|slow| {
                self.now_nanos().saturating_sub(started - 1) > slow.threshold_nanos
            });
        let generation = call.generation;
        match (call.probe, self.config.recorder) {
            (true, _) => self.probe_reported(generation, failed || slow),
            (false, Recorder::Streak | Recorder::Ring) => {
                unreachable!("`report` records the plain modes' calls inline")
            }
            (false, Recorder::SlowRing) => self.record_with_slow(generation, failed, slow),
            (false, Recorder::Time) => self.record_in_time(generation, failed, slow),
            (false, Recorder::Throttle) => self.throttle_outcome(generation, failed, started),
        }
    }

    /// When a call timed for `slow_call` starts: [`now_nanos`] plus one,
    /// so that 0 can mean "not timed". Out of line, so that the untimed
    /// path stays as small as without `slow_call`.
    ///
    /// [`now_nanos`]: Self::now_nanos
    #[inline(never)]
    pub(super) fn timed_start(&self) -> u64 {
        self.now_nanos().saturating_add(1)
    }

    /// An outcome observed without a permit: counted as a call of the
    /// current closed (or disabled) period, ignored in any other state.
    pub(super) fn record(&self, failed: bool) {
        if self.config.recorder == Recorder::Throttle {
            return self.throttle_record(failed);
        }
        let word = self.state.load(Ordering::Acquire);
        if let Some(generation) = State::free_generation(word) {
            let call = Admitted {
                generation,
                probe: false,
            };
            if failed {
                self.failure(call);
            } else {
                self.success(call);
            }
        }
    }

    /// An ordinary call of `generation` admitted at `started` (see
    /// `BreakerPermit`) ended without an outcome: a throttling breaker
    /// takes its request back; nothing else has anything to undo.
    pub(super) fn cancelled(&self, generation: u32, started: u64) {
        if self.config.recorder == Recorder::Throttle {
            self.throttle_cancelled(generation, started - 1);
        }
    }

    /// A probe ended without an outcome: its slot is free for another.
    pub(super) fn release_probe(&self, generation: u32) {
        let _ = self.transition(|state| {
            let (in_flight, succeeded, failed) = state.probes(generation)?;
            Some(State::HalfOpen {
                generation,
                in_flight: in_flight.saturating_sub(1),
                succeeded,
                failed,
            })
        });
    }

    pub(super) fn reset(&self) {
        let closed = State::closed(self.fresh_generation());
        if self.transition(|_| Some(closed)).is_ok() {
            self.closed_again();
        }
    }

    /// Open from now for `nanos`, whatever the state.
    pub(super) fn force_open_for(&self, nanos: u64) {
        let open = self.open_state(nanos);
        let _ = self.transition(|_| Some(open));
    }

    /// Open until [`reset`](Self::reset), whatever the state.
    pub(super) fn isolate(&self) {
        let _ = self.transition(|_| Some(State::Open { until: HELD }));
    }

    /// Admit every call and keep counting, but never trip, whatever the
    /// state; a disabled breaker stays as it is.
    pub(super) fn disable(&self) {
        let mut fresh = None;
        let _ = self.transition(|state| match state {
            State::Disabled { .. } => None,
            _ => Some(State::Disabled {
                generation: *fresh.get_or_insert_with(|| self.fresh_generation()),
                count: 0,
            }),
        });
    }

    /// A disabled breaker closes with its counts cleared; any other state is
    /// left alone.
    pub(super) fn enable(&self) {
        let mut fresh = None;
        let enabled = self.transition(|state| match state {
            State::Disabled { .. } => Some(State::closed(
                *fresh.get_or_insert_with(|| self.fresh_generation()),
            )),
            _ => None,
        });
        if enabled.is_ok() {
            self.closed_again();
        }
    }

    pub(super) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// A success in consecutive mode. Inline: the happy path, a streak of
    /// zero (or a stale call), needs no write at all, and is told from the
    /// word with one load.
    #[inline]
    fn end_streak(&self, generation: u32) {
        let word = self.state.load(Ordering::Acquire);
        if let None | Some(0) = State::tally_of(word, generation) {
            return;
        }
        self.end_streak_from(word, generation);
    }

    #[inline(never)]
    fn end_streak_from(&self, word: u64, generation: u32) {
        let _ = self.transition_from(word, |state| match state.tally(generation)? {
            0 => None,
            _ => Some(state.with_tally(0)),
        });
    }

    fn extend_streak(&self, generation: u32) {
        let mut open = None;
        let _ = self.transition(|state| {
            let count = state.tally(generation)?.saturating_add(1);
            Some(
                if count >= self.config.failure_threshold
                    && state.closed_count(generation).is_some()
                {
                    *open.get_or_insert_with(|| self.trip_state())
                } else {
                    state.with_tally(count)
                },
            )
        });
    }

    /// A probe of `generation` succeeded or failed: the half-open period
    /// goes on, closes, or reopens (see [`Verdict`]).
    fn probe_reported(&self, generation: u32, failed: bool) {
        let mut fresh = None;
        let mut reopen = None;
        let moved = self.transition(|state| {
            let (in_flight, succeeded, failures) = state.probes(generation)?;
            let (succeeded, failures) = if failed {
                (succeeded, failures.saturating_add(1))
            } else {
                (succeeded.saturating_add(1), failures)
            };
            Some(match self.config.verdict(succeeded, failures) {
                Verdict::Close => {
                    State::closed(*fresh.get_or_insert_with(|| self.fresh_generation()))
                }
                Verdict::Reopen => reopen.get_or_insert_with(|| self.reopen_state()).0,
                Verdict::Wait => State::HalfOpen {
                    generation,
                    in_flight: in_flight.saturating_sub(1),
                    succeeded,
                    failed: failures,
                },
            })
        });
        match moved {
            Ok((_, State::Closed { .. })) => self.closed_again(),
            Ok((_, State::Open { .. })) => self.probe_reopened(reopen),
            _ => {}
        }
    }

    /// Bookkeeping after a swap that closed the breaker: the next reopen
    /// starts from `open_for` again.
    fn closed_again(&self) {
        self.reopened_for.store(0, Ordering::Relaxed);
    }

    /// Bookkeeping after a failed half-open period reopened the breaker:
    /// remember the open time it got, for the next reopen to grow from.
    ///
    /// This is a second atomic, written after the swap, not part of the
    /// state word (which has no bits to spare in half-open). The only
    /// writers are this and [`closed_again`](Self::closed_again), each
    /// after a swap out of a half-open period that only one thread can win,
    /// or after a reset. So it is exact unless a reset races with a failing
    /// probe, or a zero-length open lets the next probe fail before this
    /// store lands: then one open time may be a step too long or short.
    fn probe_reopened(&self, reopen: Option<(State, u64)>) {
        if let Some((_, nanos)) = reopen {
            self.reopened_for.store(nanos, Ordering::Relaxed);
        }
    }

    fn fresh_generation(&self) -> u32 {
        // Wrapping is harmless: a permit would have to outlive 2^31
        // transitions to be mistaken for a current one.
        State::generation_for(
            self.next_generation.fetch_add(2, Ordering::Relaxed),
            self.config.throttles(),
        )
    }

    /// Open from now for `open_for`: the trip of a closed breaker.
    fn trip_state(&self) -> State {
        self.open_state(self.config.open_for_nanos)
    }

    /// Open again after a failed half-open period: for `open_for`, or with
    /// `open_for_backoff` for the previous reopen's time multiplied. Returns
    /// the time chosen too.
    fn reopen_state(&self) -> (State, u64) {
        // `reopen_nanos` is `open_for` without `open_for_backoff`, and
        // grows from `open_for` after a close (0).
        let nanos = self
            .config
            .reopen_nanos(self.reopened_for.load(Ordering::Relaxed));
        (self.open_state(nanos), nanos)
    }

    /// Open from now for `nanos`.
    fn open_state(&self, nanos: u64) -> State {
        State::opened_here(self.now_nanos().saturating_add(nanos))
    }

    /// Nanoseconds since the breaker's epoch on the tokio clock.
    pub(super) fn now_nanos(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        let elapsed = Instant::now().saturating_duration_since(epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    /// After a swap from `old` to `new`: the thread whose swap ends a
    /// closed or disabled period empties the time-based window (or the
    /// throttle's counts), so that the next period starts from nothing
    /// (see `time_window.rs`). The
    /// count-based window needs nothing: a new generation starts at index 0.
    fn period_ended(&self, old: State, new: State) {
        let counting = |state: State| match state {
            State::Closed { generation, .. } | State::Disabled { generation, .. } => {
                Some(generation)
            }
            _ => None,
        };
        if matches!(
            self.config.mode,
            super::config::Mode::Time | super::config::Mode::Throttle
        ) && counting(old).is_some()
            && counting(old) != counting(new)
        {
            self.time.clear(self.bucket_now());
        }
    }

    fn notify(&self, from: CircuitState, to: CircuitState) {
        if from != to {
            report::transition(self.config.name, from, to);
            if let Some(hook) = self.config.on_state_change {
                hook(from, to);
            }
        }
    }
}

mod throttle;
mod windows;

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(machine: &Machine) -> u32 {
        machine.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn a_success_without_a_streak_writes_nothing() {
        let machine = Machine::new(Config::DEFAULT);
        for _ in 0..3 {
            let call = machine.acquire().unwrap();
            machine.success(call);
        }
        assert_eq!(writes(&machine), 0, "the happy path only reads");
        // A failure starts a streak (one write) and a success ends it (one).
        let call = machine.acquire().unwrap();
        machine.failure(call);
        let call = machine.acquire().unwrap();
        machine.success(call);
        assert_eq!(writes(&machine), 2);
    }

    #[test]
    fn a_success_in_rate_mode_is_one_swap_and_a_stale_one_is_none() {
        let machine = Machine::new(Config::DEFAULT.failure_rate(0.5, 4));
        for _ in 0..10 {
            let call = machine.acquire().unwrap();
            machine.success(call);
        }
        assert_eq!(writes(&machine), 10, "one claim of a slot per outcome");
        let full = WindowSnapshot {
            calls: 4,
            failures: 0,
            slow: 0,
        };
        assert_eq!(machine.window(), Some(full));
        let stale = machine.acquire().unwrap();
        machine.reset();
        let before = writes(&machine);
        machine.failure(stale);
        assert_eq!(writes(&machine), before, "a stale outcome writes nothing");
        assert_eq!(machine.window().map(|w| w.calls), Some(0));
    }

    /// With the failure rate alone (the ring's recorder) or with
    /// `slow_call` beside it (the slow ring's).
    #[test]
    fn only_failures_and_the_call_reaching_min_calls_judge_the_window() {
        let judged = |machine: &Machine| machine.judged.load(std::sync::atomic::Ordering::Relaxed);
        let rate = Config::DEFAULT.failure_rate(0.5, 4).with_min_calls(2);
        let slow = rate.slow_call(std::time::Duration::from_secs(60), 0.5);
        for config in [rate, slow] {
            let machine = Machine::new(config);
            for _ in 0..10 {
                let call = machine.acquire().unwrap();
                machine.success(call);
            }
            assert_eq!(judged(&machine), 1, "the second call reached min_calls");
            let call = machine.acquire().unwrap();
            machine.failure(call);
            assert_eq!(judged(&machine), 2, "a failure may raise the rate");
            machine.disable();
            for _ in 0..4 {
                let call = machine.acquire().unwrap();
                machine.failure(call);
            }
            assert_eq!(judged(&machine), 2, "a disabled breaker never trips");
        }
    }

    /// A throttling breaker's call admitted without its request counted
    /// (`started` 0: closed again between the load and the swap, and no
    /// longer throttled when the throttle looked): its success is an
    /// accept, its failure nothing.
    #[test]
    fn an_uncounted_call_of_a_throttling_breaker_counts_its_success_only() {
        let machine = Machine::new(Config::DEFAULT.adaptive_throttling(2.0));
        for _ in 0..4 {
            machine.record(true);
        }
        assert_eq!(
            machine.throttle_probability_now(),
            0.8,
            "4 requests, 0 accepts"
        );
        let call = machine.acquire().unwrap();
        machine.failure(call);
        assert_eq!(
            machine.throttle_probability_now(),
            0.8,
            "a failure is no accept"
        );
        let call = machine.acquire().unwrap();
        machine.success(call);
        assert_eq!(machine.throttle_probability_now(), 0.4, "a success is one");
    }

    #[test]
    fn outcomes_land_in_their_slots_lap_after_lap() {
        let machine = Machine::new(Config::DEFAULT.failure_rate(1.0, 3));
        // Laps of three: each outcome replaces the one three calls before.
        let outcomes = [true, false, false, false, true, true, false, false, true];
        let failures_after = [1, 1, 1, 0, 1, 2, 2, 1, 1];
        for (n, (failed, expected)) in outcomes.into_iter().zip(failures_after).enumerate() {
            let call = machine.acquire().unwrap();
            if failed {
                machine.failure(call);
            } else {
                machine.success(call);
            }
            assert_eq!(
                machine.window().unwrap().failures,
                expected,
                "after call {n}"
            );
        }
        assert_eq!(machine.state(), CircuitState::Closed);
    }

    #[test]
    fn a_call_that_read_a_stale_open_word_is_admitted_once_closed() {
        let machine = Machine::new(Config::DEFAULT);
        // The word said open and past `open_for`; by the swap, the breaker
        // was closed again: the call is an ordinary one, not a probe, and
        // not refused.
        let period = machine.admit_free().unwrap();
        let stale = State::Open { until: 0 }.encode();
        let call = machine.acquire_probe(stale).unwrap();
        assert!(!call.probe);
        assert_eq!(machine.state(), CircuitState::Closed);
        assert_eq!(call.generation, period, "the closed period goes on");
        assert_eq!(machine.admit_free(), Ok(period));
    }

    /// A breaker built for throttling and then given another mode starts
    /// with a period numbered for throttling: its first call renumbers it,
    /// and admission takes the fast path from then on.
    #[test]
    fn a_period_numbered_for_throttling_is_renumbered_by_the_first_call() {
        // As `CircuitBreaker::adaptive_throttling(2.0).failure_rate(..)`.
        let mut machine = Machine::new(Config::DEFAULT.adaptive_throttling(2.0));
        machine.config = machine.config.failure_rate(0.5, 4);
        assert!(machine.admit_free().is_err(), "numbered for throttling");
        let call = machine.acquire().unwrap();
        assert!(!call.probe);
        assert_eq!(machine.admit_free(), Ok(call.generation), "renumbered");
        let next = machine.acquire().unwrap();
        assert_eq!(next.generation, call.generation, "renumbered once");
        machine.success(call);
        machine.success(next);
        assert_eq!(machine.rejected(), 0);
        assert_eq!(machine.window().map(|w| w.calls), Some(2));
    }

    #[test]
    fn disabled_admission_and_successes_write_nothing_either() {
        let machine = Machine::new(Config::DEFAULT);
        machine.disable();
        let before = writes(&machine);
        for _ in 0..3 {
            let call = machine.acquire().unwrap();
            assert!(!call.probe);
            machine.success(call);
        }
        machine.record(false);
        assert_eq!(writes(&machine), before, "disabled is as cheap as closed");
        assert_eq!(machine.rejected(), 0);
    }

    #[test]
    fn a_held_open_word_never_half_opens() {
        let machine = Machine::new(Config::DEFAULT.open_for(std::time::Duration::ZERO));
        machine.isolate();
        assert!(machine.acquire().is_err());
        assert!(machine.is_forced_open());
        assert_eq!(machine.rejected(), 1);
    }
}
