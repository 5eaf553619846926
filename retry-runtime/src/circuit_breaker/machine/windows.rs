//! The rules that record ordinary outcomes in a window: the count-based
//! ring (rate mode, and consecutive mode with slow calls) and the
//! time-based buckets. Each state change goes through
//! [`Machine::transition`] like every other rule.

use super::{Machine, WindowSnapshot};
use crate::circuit_breaker::config::Mode;
use crate::circuit_breaker::state::State;
use crate::circuit_breaker::window::{next_index, pack, unpack};

impl Machine {
    /// The window of the current closed or disabled period; `None` in
    /// other states and without a window.
    pub(in crate::circuit_breaker) fn window(&self) -> Option<WindowSnapshot> {
        let config = &self.config;
        if config.mode == Mode::Time {
            return match self.current() {
                State::Closed { .. } | State::Disabled { .. } => {
                    let totals = self.time.totals(self.bucket_now());
                    Some(WindowSnapshot {
                        calls: totals.calls,
                        failures: totals.failures,
                        slow: totals.slow,
                    })
                }
                _ => None,
            };
        }
        if !config.counts_in_ring() {
            return None;
        }
        let packed = config.mode == Mode::Consecutive;
        let calls = match self.current() {
            State::Closed { count, .. } | State::Disabled { count, .. } => {
                unpack(count, packed).0.min(config.window)
            }
            _ => return None,
        };
        Some(WindowSnapshot {
            calls,
            failures: self.ring.failures_in_first(calls),
            slow: self.slow_ring.failures_in_first(calls),
        })
    }

    /// Records an outcome in the count-based ring of failures (rate mode
    /// without slow calls: the path the other modes must not slow down).
    /// A success past `min_calls` is one swap of the count and one read of
    /// its slot's bit.
    pub(super) fn record_in_window(&self, generation: u32, failed: bool) {
        let window = self.config.window;
        // The slot is claimed by the same compare-and-swap that checks the
        // generation, so a stale call cannot take a slot of a later one.
        let Some((before, index)) =
            self.advance_tally(generation, |index| next_index(index, window))
        else {
            return;
        };
        self.ring.write(index, window, failed);
        // A success cannot raise the rate, but the call that reaches
        // min_calls is the first one allowed to act on it (`min_calls` is
        // at most the window, so only in the first lap). A disabled breaker
        // never trips.
        if State::is_closed(before)
            && (failed || (index < window && index + 1 == self.config.min_calls()))
        {
            self.trip_on_rate(generation);
        }
    }

    /// Records an outcome in the count-based rings with slow calls. In
    /// consecutive mode the same swap extends or ends the failure streak,
    /// and trips on it.
    pub(super) fn record_with_slow(&self, generation: u32, failed: bool, slow: bool) {
        let config = &self.config;
        let window = config.window;
        let packed = config.mode == Mode::Consecutive;
        let mut open = None;
        // The slot is claimed by the same compare-and-swap that checks the
        // generation, so a stale call cannot take a slot of a later one.
        let claimed = self.transition(|state| {
            let (index, streak) = unpack(state.tally(generation)?, packed);
            let streak = if failed { streak.saturating_add(1) } else { 0 };
            if packed
                && streak >= config.streak_threshold()
                && state.closed_count(generation).is_some()
            {
                return Some(*open.get_or_insert_with(|| self.trip_state()));
            }
            Some(state.with_tally(pack(next_index(index, window), streak, packed)))
        });
        let Ok((before, after)) = claimed else {
            return;
        };
        let Some(count) = before.tally(generation) else {
            return;
        };
        if matches!(after, State::Open { .. }) {
            return;
        }
        let index = unpack(count, packed).0;
        if !packed {
            self.ring.write(index, window, failed);
        }
        if config.slow.is_some() {
            self.slow_ring.write(index, window, slow);
        }
        // A plain success cannot raise a rate, but the call that reaches
        // min_calls is the first one allowed to act on it. A disabled
        // breaker never trips.
        let closed = before.closed_count(generation).is_some();
        let raises = (failed && !packed) || slow;
        if closed && (raises || index.saturating_add(1) == config.min_calls()) {
            self.trip_on_rate(generation);
        }
    }

    fn trip_on_rate(&self, generation: u32) {
        #[cfg(test)]
        self.judged
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = &self.config;
        let packed = config.mode == Mode::Consecutive;
        let mut open = None;
        let _ = self.transition(|state| {
            let count = state.closed_count(generation)?;
            let calls = unpack(count, packed).0.min(config.window);
            let failures = if packed {
                0
            } else {
                self.ring.failures_in_first(calls)
            };
            let slow = if config.slow.is_some() {
                self.slow_ring.failures_in_first(calls)
            } else {
                0
            };
            config
                .window_trips(calls, failures, slow)
                .then(|| *open.get_or_insert_with(|| self.trip_state()))
        });
    }

    /// Records an outcome in the time-based window, if `generation` is
    /// still counting, and trips a closed breaker whose window now calls
    /// for it. The state word is only read, unless the breaker trips.
    pub(super) fn record_in_time(&self, generation: u32, failed: bool, slow: bool) {
        let before = self.current();
        if before.tally(generation).is_none() {
            return;
        }
        let bucket = self.bucket_now();
        self.time.record(bucket, failed, slow);
        if before.closed_count(generation).is_none() {
            return;
        }
        let config = &self.config;
        let mut open = None;
        let _ = self.transition(|state| {
            state.closed_count(generation)?;
            let totals = self.time.totals(bucket);
            config
                .window_trips(totals.calls, totals.failures, totals.slow)
                .then(|| *open.get_or_insert_with(|| self.trip_state()))
        });
    }

    /// The number of the time-based window's current bucket.
    pub(super) fn bucket_now(&self) -> u64 {
        self.now_nanos() / self.config.bucket_nanos().max(1)
    }
}
