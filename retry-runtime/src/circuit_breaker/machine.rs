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
//! What a rule computes lazily (a reopen time, which reads the clock; a
//! fresh generation, which takes one from a counter) it computes once per
//! call and reuses if the swap has to be retried.

use std::sync::OnceLock;

use tokio::time::Instant;

use super::config::{Config, Mode};
use super::report;
use super::state::{CircuitState, State, TIME_MAX};
use super::window::{Ring, next_index};
use crate::error::CircuitOpen;
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::const_fn;

pub(super) struct Machine {
    state: AtomicU64,
    /// Generations come from here, touched only on transitions; the state
    /// word holds the current one.
    next_generation: AtomicU32,
    ring: Ring,
    /// Set when the breaker first needs the clock, which keeps construction
    /// `const`; reopen times are nanoseconds since it.
    epoch: OnceLock<Instant>,
    pub(super) config: Config,
    /// Swaps published, so unit tests can see which paths write.
    #[cfg(test)]
    writes: std::sync::atomic::AtomicU32,
}

/// What a permit remembers about its admission.
#[derive(Debug, Clone, Copy)]
pub(super) struct Admitted {
    pub(super) generation: u32,
    pub(super) probe: bool,
}

impl Machine {
    const_fn! {
        pub(super) fn new(config: Config) -> Self {
            Machine {
                state: AtomicU64::new(State::closed(0).encode()),
                // Generation 0 is the initial closed period.
                next_generation: AtomicU32::new(1),
                ring: Ring::new(),
                epoch: OnceLock::new(),
                config,
                #[cfg(test)]
                writes: std::sync::atomic::AtomicU32::new(0),
            }
        }
    }

    pub(super) fn state(&self) -> CircuitState {
        State::public_of(self.state.load(Ordering::Acquire))
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
                    self.notify(old.public(), new.public());
                    return Ok((old, new));
                }
                Err(current) => word = current,
            }
        }
    }

    /// Admits a call, or refuses it while open or with every probe slot
    /// taken.
    #[inline]
    pub(super) fn acquire(&self) -> Result<Admitted, CircuitOpen> {
        // Closed: one load, no clock, no write.
        let word = self.state.load(Ordering::Acquire);
        match State::closed_generation(word) {
            Some(generation) => Ok(Admitted {
                generation,
                probe: false,
            }),
            None => self.acquire_probe(word),
        }
    }

    fn acquire_probe(&self, word: u64) -> Result<Admitted, CircuitOpen> {
        let probes = self.config.half_open_probes;
        let mut fresh = None;
        let taken = self.transition_from(word, |state| match state {
            State::Closed { .. } => None,
            // `open_for` has passed: half-open, with this call as a probe.
            State::Open { until } => (self.now_nanos() >= until).then(|| State::HalfOpen {
                generation: *fresh.get_or_insert_with(|| self.fresh_generation()),
                in_flight: 1,
                succeeded: 0,
            }),
            State::HalfOpen {
                generation,
                in_flight,
                succeeded,
            } => (in_flight.saturating_add(succeeded) < probes).then_some(State::HalfOpen {
                generation,
                in_flight: in_flight + 1,
                succeeded,
            }),
        });
        match taken {
            Ok((_, State::HalfOpen { generation, .. })) => Ok(Admitted {
                generation,
                probe: true,
            }),
            // Closed again by the time the word was read: an ordinary call.
            Err(State::Closed { generation, .. }) => Ok(Admitted {
                generation,
                probe: false,
            }),
            _ => Err(CircuitOpen::new()),
        }
    }

    /// The admitted call succeeded.
    pub(super) fn success(&self, call: Admitted) {
        match (call.probe, self.config.mode) {
            (true, _) => self.probe_succeeded(call.generation),
            (false, Mode::Consecutive) => self.end_streak(call.generation),
            (false, Mode::Rate) => self.record_in_window(call.generation, false),
        }
    }

    /// The admitted call failed.
    pub(super) fn failure(&self, call: Admitted) {
        match (call.probe, self.config.mode) {
            (true, _) => self.probe_failed(call.generation),
            (false, Mode::Consecutive) => self.extend_streak(call.generation),
            (false, Mode::Rate) => self.record_in_window(call.generation, true),
        }
    }

    /// A probe ended without an outcome: its slot is free for another.
    pub(super) fn release_probe(&self, generation: u32) {
        let _ = self.transition(|state| {
            let (in_flight, succeeded) = state.probes(generation)?;
            Some(State::HalfOpen {
                generation,
                in_flight: in_flight.saturating_sub(1),
                succeeded,
            })
        });
    }

    pub(super) fn reset(&self) {
        let closed = State::closed(self.fresh_generation());
        let _ = self.transition(|_| Some(closed));
    }

    pub(super) fn force_open(&self) {
        let open = self.open_state();
        let _ = self.transition(|_| Some(open));
    }

    fn end_streak(&self, generation: u32) {
        // The happy path: a streak of zero needs no write at all.
        let _ = self.transition(|state| match state.closed_count(generation)? {
            0 => None,
            _ => Some(State::closed(generation)),
        });
    }

    fn extend_streak(&self, generation: u32) {
        let mut open = None;
        let _ = self.transition(|state| {
            let count = state.closed_count(generation)?.saturating_add(1);
            Some(if count >= self.config.failure_threshold {
                *open.get_or_insert_with(|| self.open_state())
            } else {
                State::Closed { generation, count }
            })
        });
    }

    fn record_in_window(&self, generation: u32, failed: bool) {
        let window = self.config.window;
        // The slot is claimed by the same compare-and-swap that checks the
        // generation, so a stale call cannot take a slot of a later one.
        let claimed = self.transition(|state| {
            let index = state.closed_count(generation)?;
            Some(State::Closed {
                generation,
                count: next_index(index, window),
            })
        });
        let Ok((State::Closed { count: index, .. }, _)) = claimed else {
            return;
        };
        self.ring.write(index, window, failed);
        // A success cannot raise the rate, but the call that reaches
        // min_calls is the first one allowed to act on it.
        if failed || index.saturating_add(1) == self.config.min_calls() {
            self.trip_on_rate(generation);
        }
    }

    fn trip_on_rate(&self, generation: u32) {
        let config = &self.config;
        let mut open = None;
        let _ = self.transition(|state| {
            let calls = state.closed_count(generation)?.min(config.window);
            if calls < config.min_calls() {
                return None;
            }
            let failures = self.ring.failures_in_first(calls);
            if failures == 0 || f64::from(failures) / f64::from(calls) < config.failure_rate {
                return None;
            }
            Some(*open.get_or_insert_with(|| self.open_state()))
        });
    }

    fn probe_succeeded(&self, generation: u32) {
        let mut fresh = None;
        let _ = self.transition(|state| {
            let (in_flight, succeeded) = state.probes(generation)?;
            let succeeded = succeeded.saturating_add(1);
            Some(if succeeded >= self.config.half_open_probes {
                State::closed(*fresh.get_or_insert_with(|| self.fresh_generation()))
            } else {
                State::HalfOpen {
                    generation,
                    in_flight: in_flight.saturating_sub(1),
                    succeeded,
                }
            })
        });
    }

    fn probe_failed(&self, generation: u32) {
        let mut open = None;
        let _ = self.transition(|state| {
            state.probes(generation)?;
            Some(*open.get_or_insert_with(|| self.open_state()))
        });
    }

    fn fresh_generation(&self) -> u32 {
        // Wrapping is harmless: a permit would have to outlive 2^32
        // transitions to be mistaken for a current one.
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Open from now for `open_for`.
    fn open_state(&self) -> State {
        let until = self
            .now_nanos()
            .saturating_add(self.config.open_for_nanos)
            .min(TIME_MAX);
        State::Open { until }
    }

    fn now_nanos(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        let elapsed = Instant::now().saturating_duration_since(epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
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
    fn a_call_that_read_a_stale_open_word_is_admitted_once_closed() {
        let machine = Machine::new(Config::DEFAULT);
        // The word said open and past `open_for`; by the swap, the breaker
        // was closed again: the call is an ordinary one, not a probe, and
        // not refused.
        let stale = State::Open { until: 0 }.encode();
        let call = machine.acquire_probe(stale).unwrap();
        assert!(!call.probe);
        assert_eq!(machine.state(), CircuitState::Closed);
    }
}
