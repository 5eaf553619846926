//! What a shared breaker's background task knows of its machine: the mode
//! the last transition left, and the half-open probe lease it holds for it.
//!
//! Three parties touch it at once: the transition hook (`follow`), a call
//! that wants to probe (`turn`), and the task, whose round trip to Redis
//! reads the view when it is sent and writes the lease when the answer
//! lands, possibly after several transitions. The rule the code keeps:
//! **a lease answer asked for before the lease was given back is dropped.**
//! A transition out of half-open gives the lease back (the next round trip
//! deletes it on Redis); an answer landing after that, granted on Redis
//! before it, would otherwise leave this replica believing it holds a lease
//! that Redis is about to delete, and a call could probe beside the
//! replica that takes it next.
//!
//! So the mode, a count of releases and the end of the lease are one word,
//! and every change is one compare-and-swap (`update`): a release clears
//! the lease in the same step that publishes the mode, and a grant lands
//! only if no release was counted since its round trip was sent. Two words
//! (the mode, the lease) left a window loom finds: a grant written between
//! a release's two steps. Plain atomics and plain values, so the loom
//! models below run it without Redis.
//!
//! Times are nanoseconds on the link's clock (since it was made); the
//! lease's end is kept in whole milliseconds, rounded down, so that this
//! replica's view of it still ends no later than Redis's.

// Under loom the shared breaker is not built (no Redis): only the models use this.
#![cfg_attr(steadfast_loom, allow(dead_code))]

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};

// What the machine is doing, as the background task needs to know it.
pub(super) const CLOSED: u8 = 0;
pub(super) const DISABLED: u8 = 1;
pub(super) const HALF_OPEN: u8 = 2;
/// Opened by its own trip, reopen or `force_open_for`: evidence.
pub(super) const OPEN_LOCAL: u8 = 3;
/// Held open by `force_open`: evidence, renewed while held.
pub(super) const OPEN_HELD: u8 = 4;
/// Opened by the fleet's quorum: not evidence.
pub(super) const OPEN_FLEET: u8 = 5;

// The word: the mode in 3 bits, the releases (wrapping) in 13, and the end
// of the lease held, in milliseconds, in 48 (8,900 years; 0: none held).
const MODE_BITS: u32 = 3;
const RELEASE_BITS: u32 = 13;
const HELD_SHIFT: u32 = MODE_BITS + RELEASE_BITS;
const MODE_MASK: u64 = (1 << MODE_BITS) - 1;
const RELEASE_MASK: u64 = (1 << RELEASE_BITS) - 1;
const HELD_MAX: u64 = u64::MAX >> HELD_SHIFT;
const NANOS_PER_MS: u64 = 1_000_000;

#[derive(Debug)]
pub(super) struct View {
    /// Mode, releases and the lease's end, changed only through `update`.
    word: AtomicU64,
    /// Until when another replica holds the lease: no asking before. A hint
    /// (a stale value asks once more or once later), so a word of its own.
    busy_until: AtomicU64,
    /// A probe waits for the lease.
    wanted: AtomicBool,
}

/// The word, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Word {
    mode: u8,
    releases: u64,
    /// Milliseconds on the link's clock; 0: no lease held.
    held_ms: u64,
}

impl Word {
    fn unpack(word: u64) -> Self {
        Word {
            mode: (word & MODE_MASK) as u8,
            releases: (word >> MODE_BITS) & RELEASE_MASK,
            held_ms: word >> HELD_SHIFT,
        }
    }

    fn pack(self) -> u64 {
        u64::from(self.mode)
            | (self.releases & RELEASE_MASK) << MODE_BITS
            | self.held_ms.min(HELD_MAX) << HELD_SHIFT
    }

    fn held_at(self, at: u64) -> bool {
        self.held_ms.saturating_mul(NANOS_PER_MS) > at
    }
}

/// A call's turn to probe, as far as the lease says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Turn {
    /// This replica holds the lease.
    Probe,
    /// Another replica holds it, or it is asked for already.
    Wait,
    /// Nobody has asked yet: this caller wakes the task to ask.
    Ask,
}

/// What the task read when it sent a round trip.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    pub(super) mode: u8,
    /// A probe waited for the lease: this round trip asks for it.
    pub(super) wanted: bool,
    /// The end of the lease held then (0: none).
    pub(super) held_until: u64,
    releases: u64,
}

impl View {
    crate::sync::const_fn! {
        pub(super) fn new() -> Self {
            View {
                word: AtomicU64::new(CLOSED as u64),
                busy_until: AtomicU64::new(0),
                wanted: AtomicBool::new(false),
            }
        }
    }

    fn load(&self) -> Word {
        Word::unpack(self.word.load(Ordering::Acquire))
    }

    /// The one transition helper: `change` the word until the swap holds,
    /// or until `change` declines. Returns the word it changed (or found).
    fn update(&self, mut change: impl FnMut(Word) -> Option<Word>) -> Word {
        let found = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                change(Word::unpack(word)).map(Word::pack)
            })
            .unwrap_or_else(|word| word);
        Word::unpack(found)
    }

    pub(super) fn mode(&self) -> u8 {
        self.load().mode
    }

    /// The machine moved to `mode`: returns the mode it was in. Any mode
    /// but half-open gives the lease back, in the same step: counted, so
    /// that an answer the task asked for before it is dropped when it lands
    /// (see the module docs), and cleared.
    pub(super) fn follow(&self, mode: u8) -> u8 {
        let release = mode != HALF_OPEN;
        self.update(|word| {
            Some(if release {
                Word {
                    mode,
                    releases: word.releases + 1,
                    held_ms: 0,
                }
            } else {
                Word { mode, ..word }
            })
        })
        .mode
    }

    /// A call whose open period ended, or a half-open one with a free probe
    /// slot, asks whether it may probe (Redis reachable).
    pub(super) fn turn(&self, at: u64) -> Turn {
        if self.held_at(at) {
            return Turn::Probe;
        }
        if self.busy_until.load(Ordering::Relaxed) > at {
            return Turn::Wait;
        }
        if self.wanted.swap(true, Ordering::AcqRel) {
            Turn::Wait
        } else {
            Turn::Ask
        }
    }

    /// Whether this replica holds the lease at `at` (Redis granted it until
    /// later, counted from before the request).
    pub(super) fn held_at(&self, at: u64) -> bool {
        self.load().held_at(at)
    }

    /// The task sends a round trip: what it asks for and under which
    /// release.
    pub(super) fn send(&self) -> Sent {
        let word = self.load();
        Sent {
            mode: word.mode,
            wanted: self.wanted.swap(false, Ordering::AcqRel),
            held_until: word.held_ms.saturating_mul(NANOS_PER_MS),
            releases: word.releases,
        }
    }

    /// Redis granted the lease until `until`, to the round trip `sent`:
    /// held, unless the lease was given back since it was sent.
    pub(super) fn granted(&self, sent: &Sent, until: u64) {
        self.busy_until.store(0, Ordering::Relaxed);
        self.update(|word| {
            (word.releases == sent.releases).then_some(Word {
                held_ms: until / NANOS_PER_MS,
                ..word
            })
        });
    }

    /// Another replica holds the lease: asked again at `busy_until`.
    pub(super) fn refused(&self, busy_until: u64) {
        self.released();
        self.busy_until.store(busy_until, Ordering::Relaxed);
    }

    /// The round trip gave the lease back on Redis (or did not get it).
    pub(super) fn released(&self) {
        self.update(|word| (word.held_ms != 0).then_some(Word { held_ms: 0, ..word }));
    }
}

#[cfg(all(test, not(steadfast_loom)))]
mod tests {
    use super::*;

    const MS: u64 = NANOS_PER_MS;

    #[test]
    fn a_grant_landing_after_a_release_is_dropped() {
        let view = View::new();
        view.follow(HALF_OPEN);
        let sent = view.send();
        view.follow(CLOSED);
        view.granted(&sent, 100 * MS);
        assert!(!view.held_at(0));
        assert_eq!(view.mode(), CLOSED);
    }

    #[test]
    fn a_grant_survives_the_move_to_half_open_it_was_asked_for() {
        let view = View::new();
        view.follow(OPEN_LOCAL);
        assert_eq!(view.turn(0), Turn::Ask);
        assert_eq!(view.turn(0), Turn::Wait, "asked once");
        let sent = view.send();
        assert!(sent.wanted);
        assert!(!view.send().wanted, "a request is taken once");
        view.granted(&sent, 100 * MS);
        assert_eq!(view.turn(100 * MS - 1), Turn::Probe);
        assert_eq!(view.follow(HALF_OPEN), OPEN_LOCAL);
        assert!(view.held_at(100 * MS - 1));
        assert!(!view.held_at(100 * MS), "held until, not through");
        assert_eq!(view.send().held_until, 100 * MS);
        assert_eq!(view.follow(CLOSED), HALF_OPEN);
        assert!(!view.held_at(0), "a close gives it back");
    }

    #[test]
    fn a_lease_ends_on_a_whole_millisecond_no_later_than_redis_says() {
        let view = View::new();
        view.follow(OPEN_LOCAL);
        view.granted(&view.send(), 100 * MS + MS / 2);
        assert!(view.held_at(100 * MS - 1));
        assert!(!view.held_at(100 * MS));
    }

    #[test]
    fn a_busy_lease_is_not_asked_for_before_its_holder_is_done() {
        let view = View::new();
        view.follow(OPEN_LOCAL);
        view.granted(&view.send(), 100 * MS);
        view.refused(50 * MS);
        assert!(!view.held_at(0), "refused: not held");
        assert_eq!(view.turn(50 * MS - 1), Turn::Wait);
        assert_eq!(view.turn(50 * MS), Turn::Ask);
        view.granted(&view.send(), 100 * MS);
        assert_eq!(view.turn(0), Turn::Probe, "granted: no longer busy");
    }

    #[test]
    fn the_word_keeps_its_fields_apart_and_saturates_the_lease() {
        let word = Word {
            mode: OPEN_FLEET,
            releases: RELEASE_MASK,
            held_ms: u64::MAX,
        };
        let back = Word::unpack(word.pack());
        assert_eq!(back.mode, OPEN_FLEET);
        assert_eq!(back.releases, RELEASE_MASK);
        assert_eq!(back.held_ms, HELD_MAX);
        let wrapped = Word {
            releases: RELEASE_MASK + 1,
            ..back
        };
        assert_eq!(Word::unpack(wrapped.pack()).releases, 0);
        assert_eq!(Word::unpack(wrapped.pack()).mode, OPEN_FLEET);
        assert!(back.held_at(u64::MAX - 1), "saturated, held for ever");
    }
}

/// loom models of the view (see `tests/loom.rs` for how they run): the
/// task's round trips against a transition hook and probing calls.
#[cfg(all(test, steadfast_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(f);
    }

    /// A half-open replica's round trip renews its lease while its probe
    /// succeeds and the breaker closes. Whatever the order, the replica
    /// gives the lease back on Redis only once it no longer believes it
    /// holds it, and ends closed without a lease.
    #[test]
    fn a_lease_granted_around_a_close_is_not_kept() {
        model(|| {
            let view = Arc::new(View::new());
            view.follow(OPEN_LOCAL);
            view.follow(HALF_OPEN);
            let task = {
                let view = view.clone();
                thread::spawn(move || {
                    let sent = view.send();
                    if sent.mode == HALF_OPEN {
                        // Redis renewed the lease.
                        view.granted(&sent, u64::MAX);
                    }
                    // The next round trip, woken by the close.
                    let next = view.send();
                    if next.mode != HALF_OPEN {
                        assert!(
                            !view.held_at(0),
                            "gives the lease back on Redis while it believes it holds it"
                        );
                        // Redis deleted it.
                        view.released();
                    }
                })
            };
            let hook = {
                let view = view.clone();
                thread::spawn(move || {
                    view.follow(CLOSED);
                })
            };
            hook.join().unwrap();
            task.join().unwrap();
            assert_eq!(view.mode(), CLOSED);
            assert!(!view.held_at(0), "closed with a lease");
        });
    }

    /// Probes asking for the lease while a round trip is sent are heard:
    /// one of them wakes the task, a second one only if the round trip took
    /// the first one's request, and a request not taken waits for the next.
    #[test]
    fn a_probe_that_wants_the_lease_is_heard_once() {
        model(|| {
            let view = Arc::new(View::new());
            view.follow(OPEN_LOCAL);
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let view = view.clone();
                    thread::spawn(move || view.turn(0) == Turn::Ask)
                })
                .collect();
            let sent = view.send();
            let woke = callers
                .into_iter()
                .map(|caller| usize::from(caller.join().unwrap()))
                .sum::<usize>();
            assert!(
                woke == 1 || (woke == 2 && sent.wanted),
                "{woke} woke the task"
            );
            // Heard by this round trip, or waiting for the next.
            assert!(sent.wanted || view.send().wanted);
        });
    }
}
