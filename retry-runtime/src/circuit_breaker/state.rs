//! The breaker's state: the public [`CircuitState`], and the one `u64`
//! word the whole state machine lives in, with its encoding.
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
//! and leaving Open draws a fresh one. The reopen time is measured in
//! nanoseconds since a per-breaker epoch (see `machine.rs`), so 62 bits last
//! 146 years. Encoding saturates every field instead of letting it spill
//! into its neighbours.

const PHASE_MASK: u64 = 0b11;
const PHASE_CLOSED: u64 = 0;
const PHASE_OPEN: u64 = 1;
const PHASE_HALF_OPEN: u64 = 2;

const GEN_SHIFT: u32 = 2;
const COUNT_SHIFT: u32 = 34;
/// The largest closed count: failure streaks and window indices saturate here.
pub(super) const COUNT_MAX: u32 = (1 << 30) - 1;
const PROBE_BITS: u32 = 15;
/// The most half-open probes, in flight or succeeded, the word can count.
pub(super) const PROBE_MAX: u32 = (1 << PROBE_BITS) - 1;
const TIME_SHIFT: u32 = 2;
/// The latest reopen time the word can hold, in nanoseconds.
pub(super) const TIME_MAX: u64 = (1 << 62) - 1;

/// The state of a [`CircuitBreaker`](super::CircuitBreaker), as reported by
/// [`CircuitBreaker::state`](super::CircuitBreaker::state) and passed to
/// [`on_state_change`](super::CircuitBreaker::on_state_change) hooks.
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
    /// Calls are rejected with [`CircuitOpen`](crate::CircuitOpen) until
    /// `open_for` has passed.
    Open,
    /// A limited number of trial calls go through to test the dependency.
    HalfOpen,
}

/// The state word, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
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
    /// The state a new (or reset) breaker starts in.
    pub(super) const fn closed(generation: u32) -> Self {
        State::Closed {
            generation,
            count: 0,
        }
    }

    pub(super) const fn decode(word: u64) -> Self {
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

    pub(super) const fn encode(self) -> u64 {
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

    /// The generation of a closed word, without decoding the rest: the
    /// admission fast path.
    #[inline]
    pub(super) const fn closed_generation(word: u64) -> Option<u32> {
        if word & PHASE_MASK == PHASE_CLOSED {
            Some((word >> GEN_SHIFT) as u32)
        } else {
            None
        }
    }

    /// The count of a closed state of `generation`; `None` for any other
    /// state, which an outcome of that generation must leave alone.
    #[inline]
    pub(super) const fn closed_count(self, generation: u32) -> Option<u32> {
        match self {
            State::Closed {
                generation: g,
                count,
            } if g == generation => Some(count),
            _ => None,
        }
    }

    /// `(in_flight, succeeded)` of a half-open state of `generation`.
    #[inline]
    pub(super) const fn probes(self, generation: u32) -> Option<(u32, u32)> {
        match self {
            State::HalfOpen {
                generation: g,
                in_flight,
                succeeded,
            } if g == generation => Some((in_flight, succeeded)),
            _ => None,
        }
    }

    pub(super) const fn public(self) -> CircuitState {
        match self {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// The public state of an encoded word, without decoding the rest.
    #[inline]
    pub(super) const fn public_of(word: u64) -> CircuitState {
        match word & PHASE_MASK {
            PHASE_CLOSED => CircuitState::Closed,
            PHASE_OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_word_round_trips() {
        let states = [
            State::closed(0),
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
            let word = state.encode();
            assert_eq!(State::decode(word), state);
            assert_eq!(State::public_of(word), state.public());
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
    fn the_fast_path_reads_the_same_generation_as_decode() {
        let word = State::closed(41).encode();
        assert_eq!(State::closed_generation(word), Some(41));
        assert_eq!(
            State::closed_generation(State::Open { until: 5 }.encode()),
            None
        );
    }
}
