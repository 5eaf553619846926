//! The breaker's state: the public [`CircuitState`], and the one `u64`
//! word the whole state machine lives in, with its encoding.
//!
//! ```text
//! bits     63 ........... 34 33 ........ 2 1 0
//! Closed   count (30 bits)   generation    0 0   count: failure streak, or calls
//!                                                claimed in the rate window
//! Disabled count (30 bits)   generation    1 0   as Closed, but never trips
//! HalfOpen fail(10) succ(10) inflight(10) gen 1 1
//! Open     reopen time (62 bits, ns since the breaker's epoch)  0 1
//! ```
//!
//! Bit 0 clear means "admit without a probe slot" (Closed or Disabled), so
//! the admission fast path tests one bit. With adaptive throttling every
//! admission is decided out of line (a draw against the rejection
//! probability); such a breaker numbers its periods with odd generations
//! and every other breaker with even ones, so bit 2 (the generation's
//! lowest) set in a closed or disabled word sends admission out of line,
//! and the fast path still tests one mask (`0b101`), at the same cost. Open needs no generation of its
//! own: no permit is handed out while open, and leaving Open draws a fresh
//! one. The reopen time is measured in nanoseconds since a per-breaker epoch
//! (see `machine.rs`), so 62 bits last 146 years; the largest value,
//! [`HELD`], means "until `reset`" (a forced-open breaker), and timed reopen
//! times stop one short of it. Encoding saturates every field instead of
//! letting it spill into its neighbours.
//!
//! The reopen time's lowest bit says who opened the breaker: clear when it
//! opened itself (a trip, a failed probe, `force_open_for`), set when a
//! shared breaker's fleet did (`shared.rs`). A fleet opening is no
//! evidence of the replica's own and is never probed, and the word alone
//! says which it is: a marker kept beside the word could be overwritten by
//! a concurrent transition before the swap it describes lands. Rounding a
//! reopen time by a nanosecond either way changes nothing a caller sees.

const PHASE_MASK: u64 = 0b11;
const PHASE_CLOSED: u64 = 0b00;
const PHASE_OPEN: u64 = 0b01;
const PHASE_DISABLED: u64 = 0b10;
const PHASE_HALF_OPEN: u64 = 0b11;
/// Set in the phase of the states that hand out no ordinary permits.
const PHASE_GATED: u64 = 0b01;
/// The lowest bit of the generation: set in the periods of a breaker that
/// throttles (see the module docs).
const THROTTLED: u64 = 1 << GEN_SHIFT;

const GEN_SHIFT: u32 = 2;
const COUNT_SHIFT: u32 = 34;
/// The largest closed count: failure streaks and window indices saturate here.
pub(super) const COUNT_MAX: u32 = (1 << 30) - 1;
const PROBE_BITS: u32 = 10;
/// The most half-open probes, in flight, succeeded or failed, the word can
/// count.
pub(super) const PROBE_MAX: u32 = (1 << PROBE_BITS) - 1;
const TIME_SHIFT: u32 = 2;
/// The reopen time of a breaker held open until `reset`.
pub(super) const HELD: u64 = (1 << 62) - 1;
/// The latest timed reopen time the word can hold, in nanoseconds.
pub(super) const TIME_MAX: u64 = HELD - 1;

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
    /// Admits every call and counts outcomes as Closed does, but never
    /// trips: `CircuitBreaker::disable`.
    Disabled {
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
        failed: u32,
    },
}

/// The word's fields for a closed or disabled state.
const fn counted(phase: u64, generation: u32, count: u32) -> u64 {
    phase
        | (generation as u64) << GEN_SHIFT
        | ((if count < COUNT_MAX { count } else { COUNT_MAX }) as u64) << COUNT_SHIFT
}

const fn probe_field(n: u32, at: u32) -> u64 {
    ((if n < PROBE_MAX { n } else { PROBE_MAX }) as u64) << (COUNT_SHIFT + at * PROBE_BITS)
}

impl State {
    /// The state a new (or reset) breaker starts in.
    pub(super) const fn closed(generation: u32) -> Self {
        State::Closed {
            generation,
            count: 0,
        }
    }

    /// A half-open state whose first probe is the caller.
    pub(super) const fn half_open(generation: u32) -> Self {
        State::HalfOpen {
            generation,
            in_flight: 1,
            succeeded: 0,
            failed: 0,
        }
    }

    /// Open until `until`, by the breaker's own decision (its reopen
    /// time's lowest bit clear; see the module docs).
    pub(super) const fn opened_here(until: u64) -> Self {
        let until = if until < TIME_MAX { until } else { TIME_MAX };
        State::Open { until: until & !1 }
    }

    /// Open until `until`, by a shared breaker's fleet (the lowest bit
    /// set, never reaching [`HELD`]).
    pub(super) const fn opened_by_fleet(until: u64) -> Self {
        let until = if until < TIME_MAX {
            until
        } else {
            TIME_MAX - 1
        };
        State::Open { until: until | 1 }
    }

    /// Whether an open state's reopen time is a fleet's opening.
    pub(super) const fn by_fleet(until: u64) -> bool {
        until != HELD && until & 1 == 1
    }

    pub(super) const fn decode(word: u64) -> Self {
        let generation = (word >> GEN_SHIFT) as u32;
        let count = (word >> COUNT_SHIFT) as u32;
        match word & PHASE_MASK {
            PHASE_CLOSED => State::Closed { generation, count },
            PHASE_DISABLED => State::Disabled { generation, count },
            PHASE_OPEN => State::Open {
                until: word >> TIME_SHIFT,
            },
            _ => State::HalfOpen {
                generation,
                in_flight: count & PROBE_MAX,
                succeeded: (count >> PROBE_BITS) & PROBE_MAX,
                failed: (count >> (2 * PROBE_BITS)) & PROBE_MAX,
            },
        }
    }

    pub(super) const fn encode(self) -> u64 {
        match self {
            State::Closed { generation, count } => counted(PHASE_CLOSED, generation, count),
            State::Disabled { generation, count } => counted(PHASE_DISABLED, generation, count),
            State::Open { until } => {
                PHASE_OPEN | (if until < HELD { until } else { HELD }) << TIME_SHIFT
            }
            State::HalfOpen {
                generation,
                in_flight,
                succeeded,
                failed,
            } => {
                PHASE_HALF_OPEN
                    | (generation as u64) << GEN_SHIFT
                    | probe_field(in_flight, 0)
                    | probe_field(succeeded, 1)
                    | probe_field(failed, 2)
            }
        }
    }

    /// The generation of a word that admits calls without a probe slot
    /// or a throttle's draw (closed or disabled, not throttling), without
    /// decoding the rest: the admission fast path.
    #[inline]
    pub(super) const fn free_generation(word: u64) -> Option<u32> {
        if word & (PHASE_GATED | THROTTLED) == 0 {
            Some((word >> GEN_SHIFT) as u32)
        } else {
            None
        }
    }

    /// Whether a word is a closed or disabled period of a throttling
    /// breaker, whose admissions the throttle decides.
    #[inline]
    pub(super) const fn is_throttled(word: u64) -> bool {
        word & (PHASE_GATED | THROTTLED) == THROTTLED
    }

    /// The generation a breaker's periods take after `counter`: odd when
    /// it throttles, even otherwise (see the module docs).
    #[inline]
    pub(super) const fn generation_for(counter: u32, throttles: bool) -> u32 {
        (counter & !1) | throttles as u32
    }

    /// The count of a closed or disabled word of `generation`, without
    /// decoding the rest: [`tally`](Self::tally) for the outcome fast
    /// paths.
    #[inline]
    pub(super) const fn tally_of(word: u64, generation: u32) -> Option<u32> {
        if word & PHASE_GATED == 0 && (word >> GEN_SHIFT) as u32 == generation {
            Some((word >> COUNT_SHIFT) as u32)
        } else {
            None
        }
    }

    /// A closed or disabled word with its count replaced by `count`
    /// (saturated): [`with_tally`](Self::with_tally) on the word. The
    /// phase and generation are kept as they are.
    #[inline]
    pub(super) const fn with_tally_of(word: u64, count: u32) -> u64 {
        counted(word & PHASE_MASK, (word >> GEN_SHIFT) as u32, count)
    }

    /// Whether a word is closed (not disabled, open or half-open): the
    /// states a rate may trip.
    #[inline]
    pub(super) const fn is_closed(word: u64) -> bool {
        word & PHASE_MASK == PHASE_CLOSED
    }

    /// The count of a closed state of `generation`; `None` for any other
    /// state, which must not trip.
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

    /// The count of a closed or disabled state of `generation`: the states
    /// an ordinary outcome of that generation is counted in.
    #[inline]
    pub(super) const fn tally(self, generation: u32) -> Option<u32> {
        match self {
            State::Closed {
                generation: g,
                count,
            }
            | State::Disabled {
                generation: g,
                count,
            } if g == generation => Some(count),
            _ => None,
        }
    }

    /// The same closed or disabled state with another count.
    pub(super) const fn with_tally(self, count: u32) -> Self {
        match self {
            State::Disabled { generation, .. } => State::Disabled { generation, count },
            State::Closed { generation, .. } => State::Closed { generation, count },
            other => other,
        }
    }

    /// `(in_flight, succeeded, failed)` of a half-open state of `generation`.
    #[inline]
    pub(super) const fn probes(self, generation: u32) -> Option<(u32, u32, u32)> {
        match self {
            State::HalfOpen {
                generation: g,
                in_flight,
                succeeded,
                failed,
            } if g == generation => Some((in_flight, succeeded, failed)),
            _ => None,
        }
    }

    pub(super) const fn public(self) -> CircuitState {
        Self::public_of(self.encode())
    }

    /// The public state of an encoded word, without decoding the rest. A
    /// disabled breaker reports `Closed`, a forced-open one `Open`.
    #[inline]
    pub(super) const fn public_of(word: u64) -> CircuitState {
        match word & PHASE_MASK {
            PHASE_CLOSED | PHASE_DISABLED => CircuitState::Closed,
            PHASE_OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }
}

/// What a breaker whose open period has passed does at the next call: a
/// local breaker always probes; a shared one asks its fleet (`shared.rs`).
#[cfg_attr(
    not(all(feature = "redis", not(steadfast_loom))),
    allow(dead_code, reason = "only a shared breaker closes or waits")
)]
pub(super) enum Gate {
    /// Half-open, this call being the probe.
    Probe,
    /// Close: a shared breaker opened by its fleet, whose evidence lapsed.
    Close,
    /// Stay open: a shared breaker without the fleet's probe lease (yet).
    Wait,
}

/// What the fleet's view tells the machine to do at its next call.
#[cfg_attr(
    not(all(feature = "redis", not(steadfast_loom))),
    allow(dead_code, reason = "only a shared breaker's fleet gives orders")
)]
pub(super) enum Order {
    /// Close a breaker the fleet opened: the evidence dropped below the
    /// quorum.
    Close,
    /// Open until `until` (the machine's clock) a closed breaker, or extend
    /// an opening of the fleet's to it.
    Open { until: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_tells_the_fleets_openings_from_the_breakers_own() {
        let until = |state: State| match state {
            State::Open { until } => until,
            other => panic!("{other:?}"),
        };
        for at in [0, 1, 2, 1_000_001, TIME_MAX - 2, TIME_MAX - 1] {
            let own = until(State::opened_here(at));
            let fleet = until(State::opened_by_fleet(at));
            assert!(!State::by_fleet(own) && State::by_fleet(fleet), "{at}");
            assert_eq!((own, fleet), (at & !1, at | 1), "at most a nanosecond off");
            for reopen in [own, fleet] {
                let word = State::Open { until: reopen }.encode();
                assert_eq!(State::decode(word), State::Open { until: reopen });
            }
        }
        // Past the word's range: saturated, and never read as "held".
        for at in [TIME_MAX, HELD, u64::MAX] {
            assert_eq!(until(State::opened_here(at)), TIME_MAX);
            assert_eq!(until(State::opened_by_fleet(at)), TIME_MAX - 1);
        }
        assert!(
            !State::by_fleet(HELD),
            "held open is nobody's timed opening"
        );
    }

    #[test]
    fn generations_take_the_parity_of_the_mode() {
        assert_eq!(State::generation_for(6, false), 6);
        assert_eq!(State::generation_for(7, false), 6);
        assert_eq!(State::generation_for(6, true), 7);
        assert_eq!(State::generation_for(7, true), 7);
        assert_eq!(State::generation_for(u32::MAX, false), u32::MAX - 1);
    }

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
            State::Open { until: HELD },
            State::Disabled {
                generation: 9,
                count: COUNT_MAX,
            },
            State::HalfOpen {
                generation: u32::MAX,
                in_flight: PROBE_MAX,
                succeeded: PROBE_MAX,
                failed: PROBE_MAX,
            },
            State::HalfOpen {
                generation: 7,
                in_flight: 1,
                succeeded: 2,
                failed: 3,
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
        assert_eq!(State::decode(word), State::Open { until: HELD });
        let word = State::HalfOpen {
            generation: 1,
            in_flight: u32::MAX,
            succeeded: 0,
            failed: 2,
        }
        .encode();
        assert_eq!(
            State::decode(word),
            State::HalfOpen {
                generation: 1,
                in_flight: PROBE_MAX,
                succeeded: 0,
                failed: 2
            }
        );
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
        let word = State::closed(40).encode();
        assert_eq!(State::free_generation(word), Some(40));
        let disabled = State::Disabled {
            generation: 42,
            count: 3,
        };
        assert_eq!(State::free_generation(disabled.encode()), Some(42));
        // Odd: a throttling breaker's period, decided out of line.
        assert_eq!(State::free_generation(State::closed(41).encode()), None);
        assert!(State::is_throttled(State::closed(41).encode()));
        let throttled_disabled = State::Disabled {
            generation: 43,
            count: 0,
        };
        assert!(State::is_throttled(throttled_disabled.encode()));
        assert!(!State::is_throttled(word));
        assert!(!State::is_throttled(State::half_open(43).encode()));
        assert!(!State::is_throttled(State::Open { until: 1 }.encode()));
        assert_eq!(
            State::free_generation(State::Open { until: 5 }.encode()),
            None
        );
        assert_eq!(State::free_generation(State::half_open(43).encode()), None);
    }

    #[test]
    fn the_word_helpers_agree_with_decode() {
        let states = [
            State::closed(7),
            State::Closed {
                generation: u32::MAX,
                count: COUNT_MAX,
            },
            State::Disabled {
                generation: 7,
                count: 12,
            },
            State::Open { until: 7 << 2 },
            State::Open { until: HELD },
            State::half_open(7),
            State::HalfOpen {
                generation: 7,
                in_flight: 3,
                succeeded: 2,
                failed: 1,
            },
        ];
        for state in states {
            let word = state.encode();
            for generation in [7, 8, u32::MAX] {
                assert_eq!(
                    State::tally_of(word, generation),
                    state.tally(generation),
                    "{state:?}, generation {generation}"
                );
                // Only this period's closed word may trip: a stale call's
                // judgement never reaches a later period's window.
                assert_eq!(
                    state.closed_count(generation),
                    state
                        .tally(generation)
                        .filter(|_| matches!(state, State::Closed { .. })),
                    "{state:?}, generation {generation}"
                );
            }
            assert_eq!(
                State::is_closed(word),
                matches!(state, State::Closed { .. }),
                "{state:?}"
            );
            assert_eq!(
                State::free_generation(word),
                state.tally(7).map(|_| 7).filter(|g| g % 2 == 0),
                "{state:?}"
            );
            if let Some(generation) = state.tally(7).map(|_| 7) {
                for count in [0, 1, 40, COUNT_MAX, u32::MAX] {
                    assert_eq!(
                        State::decode(State::with_tally_of(word, count)),
                        state.with_tally(count.min(COUNT_MAX)),
                        "{state:?}, count {count}"
                    );
                    assert_eq!(
                        State::tally_of(State::with_tally_of(word, count), generation),
                        Some(count.min(COUNT_MAX))
                    );
                }
            }
        }
    }
}
