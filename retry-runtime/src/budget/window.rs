//! The sliding window of a budget: how many calls and retries happened in
//! the last `ttl`.
//!
//! The window is kept in slots of `ttl / SLOTS`, on a grid that starts at
//! the first call or retry the window sees. Every call and retry carries
//! its time: a retry is placed at the instant it was granted; calls arrive
//! in batches from the per-thread caches, each batch made inside one slot
//! and placed with the span of time its calls were made in.
//!
//! # The window's far edge
//!
//! The window is `(now - ttl, now]`: a call counts until it is `ttl` old.
//! Its far edge falls *inside* a slot, not on a boundary, so the ring
//! keeps one slot more than the window spans, and a slot the edge cuts
//! counts in part: its calls and its retries each count for the share of
//! their time span that is still inside the window, taken to be spread
//! evenly over it. So calls made at one instant, or a burst of retries
//! made at one instant, leave at once, exactly `ttl` later, and a steady
//! flow leaves as steadily as it came. Within one slot the spread is an
//! estimate, so a call counts for `ttl` to within one slot; across slots
//! it is exact.
//!
//! Dropping the oldest slot whole at its boundary instead, as tower's
//! `TpsBudget` does, makes a deposit count for as little as `0.9 × ttl`.
//!
//! # After a quiet period
//!
//! When the window moves by a whole ring or more, nothing in it is younger
//! than `ttl` any more: it starts again exactly as a fresh window does,
//! its grid from the event that moved it. So a budget left idle for
//! `ttl` and two slots decides everything after the gap as a new budget
//! would, whatever came before.

use std::time::Duration;

/// Slots the window spans, each `ttl / SLOTS` long, as in tower.
pub(super) const SLOTS: u64 = 10;
/// The ring holds one more: the oldest, which the window's far edge cuts.
const RING: usize = SLOTS as usize + 1;

/// Times are nanoseconds since the budget's origin (see `Shared`).
pub(super) struct Window {
    /// A ring; `slots[head]` started at `head_start`, and
    /// `slots[head + 1]` is the oldest.
    slots: [Slot; RING],
    head: usize,
    /// `None` until the first call or retry: the grid starts there.
    head_start: Option<u64>,
}

/// What one slot holds: the deposits and the withdrawals made in it.
#[derive(Clone, Copy)]
struct Slot {
    deposits: Spread,
    withdrawals: Spread,
}

/// `n` events taken to be spread evenly over `(from, to]`, or to sit at
/// `to` if the two are equal.
#[derive(Clone, Copy)]
struct Spread {
    n: u64,
    from: u64,
    to: u64,
}

impl Slot {
    const EMPTY: Slot = Slot {
        deposits: Spread::NONE,
        withdrawals: Spread::NONE,
    };
}

impl Spread {
    const NONE: Spread = Spread {
        n: 0,
        from: 0,
        to: 0,
    };

    /// Adds `n` events spread over `(from, to]`; the span grows to cover
    /// both, and the events are taken to be spread evenly over it.
    fn add(&mut self, n: u64, from: u64, to: u64) {
        if n == 0 {
            return;
        }
        if self.n == 0 {
            (self.from, self.to) = (from, to);
        } else {
            self.from = self.from.min(from);
            self.to = self.to.max(to);
        }
        self.n = self.n.saturating_add(n);
    }

    /// The events, `unit` each, all of them.
    fn all(&self, unit: u64) -> u128 {
        u128::from(self.n) * u128::from(unit)
    }

    /// The events, `unit` each, made after `edge`.
    fn after(&self, edge: u64, unit: u64) -> u128 {
        if self.to <= edge {
            0
        } else if self.from >= edge {
            self.all(unit)
        } else {
            // The share after the edge, without overflow: whole events
            // first, then the remainder's fraction.
            let (inside, span) = (u128::from(self.to - edge), u128::from(self.to - self.from));
            let share = u128::from(self.n) * inside;
            (share / span) * u128::from(unit) + (share % span) * u128::from(unit) / span
        }
    }
}

impl Window {
    pub(super) const EMPTY: Window = Window {
        slots: [Slot::EMPTY; RING],
        head: 0,
        head_start: None,
    };

    /// Moves the head to the slot holding `t`, if `t` is past the head
    /// slot, and returns the head slot's start. A move of a whole ring or
    /// more leaves nothing younger than `ttl`: the window is then a fresh
    /// one, its grid starting at `t`, as a new budget's would.
    fn advance(&mut self, t: u64, slot: u64) -> u64 {
        let start = match self.head_start {
            Some(start) if t.saturating_sub(start) < slot => return start,
            Some(start) if (t - start) / slot < RING as u64 => {
                let steps = (t - start) / slot;
                for _ in 0..steps {
                    self.head = (self.head + 1) % RING;
                    self.slots[self.head] = Slot::EMPTY;
                }
                start + steps * slot
            }
            _ => {
                *self = Window::EMPTY;
                t
            }
        };
        self.head_start = Some(start);
        start
    }

    /// The slot holding time `t` (moving the window to it first) and that
    /// slot's start, or `None` if `t` is older than the ring, i.e. expired.
    fn slot_at(&mut self, t: u64, slot: u64) -> Option<(&mut Slot, u64)> {
        let head_start = self.advance(t, slot);
        // Slots back from the head: 0 when `t` is in the head slot.
        let back = head_start.saturating_sub(t).div_ceil(slot);
        if back >= RING as u64 {
            return None;
        }
        let idx = (self.head + RING - back as usize) % RING;
        Some((&mut self.slots[idx], head_start - back * slot))
    }

    /// Where the slot holding `t` ends: a thread's batch of calls started
    /// at `t` may grow until then without asking the window.
    // The per-thread cache (not in the loom models) is the only caller.
    #[cfg_attr(steadfast_loom, allow(dead_code))]
    pub(super) fn slot_end(&mut self, t: u64, slot: u64) -> u64 {
        match self.slot_at(t, slot) {
            Some((_, start)) => start.saturating_add(slot),
            // Already expired: the next call starts a new batch.
            None => t,
        }
    }

    /// Places `n` calls made over `[from, to]`, normally inside one slot.
    /// A batch that started before the slot holding `to` (only when another
    /// thread restarted the grid meanwhile) is placed from that slot's
    /// start: its earliest calls count less than a slot longer than they
    /// should, so the window stays exact to within one slot.
    pub(super) fn deposit(&mut self, n: u64, from: u64, to: u64, slot: u64) {
        if let Some((held, start)) = self.slot_at(to, slot) {
            held.deposits.add(n, from.clamp(start, to), to);
        }
    }

    /// Counts a withdrawal made at `now`.
    pub(super) fn withdraw(&mut self, now: u64, slot: u64) {
        if let Some((held, _)) = self.slot_at(now, slot) {
            held.withdrawals.add(1, now, now);
        }
    }

    /// Deposits (`amount` units each) and withdrawals (`scale` units each)
    /// inside the window `(now - SLOTS × slot, now]`, moving the window to
    /// `now` first: every slot counts the part of its span after the edge
    /// (all of it but in the slot the edge cuts).
    pub(super) fn totals(&mut self, now: u64, slot: u64, amount: u64, scale: u64) -> (u128, u128) {
        self.advance(now, slot);
        // Before a whole window has passed since time zero, nothing has
        // expired.
        let edge = now.checked_sub(slot.saturating_mul(SLOTS));
        self.slots.iter().fold((0u128, 0u128), |(d, w), held| {
            let (deposits, withdrawals) = match edge {
                Some(edge) => (
                    held.deposits.after(edge, amount),
                    held.withdrawals.after(edge, scale),
                ),
                None => (held.deposits.all(amount), held.withdrawals.all(scale)),
            };
            (d.saturating_add(deposits), w.saturating_add(withdrawals))
        })
    }
}

/// The length of one slot of a `ttl` window, in nanoseconds: at least 1,
/// and capped where a `u64` of nanoseconds (584 years) ends.
pub(super) fn slot_nanos(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos() / u128::from(SLOTS))
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_at_one_instant_leave_together_exactly_at_the_edge() {
        let mut spread = Spread::NONE;
        spread.add(4, 99, 99);
        assert_eq!(spread.after(98, 10), 40);
        assert_eq!(spread.after(99, 10), 0, "ttl old: expired");
    }

    #[test]
    fn evenly_spread_events_leave_in_proportion() {
        let mut spread = Spread::NONE;
        spread.add(10, 0, 100);
        assert_eq!(spread.after(0, 1), 10);
        assert_eq!(spread.after(50, 1), 5);
        // Fractions of an event are kept in units, not rounded away.
        assert_eq!(spread.after(95, 1_000), 500);
        assert_eq!(spread.after(100, 1), 0);
        // The same proportion for a span that does not start at zero.
        let mut later = Spread::NONE;
        later.add(10, 100, 200);
        assert_eq!(later.after(150, 1), 5);
        assert_eq!(later.after(175, 4), 10);
    }

    #[test]
    fn spans_grow_to_cover_every_batch() {
        let mut spread = Spread::NONE;
        spread.add(0, 0, 50); // nothing placed: the span stays empty
        spread.add(1, 60, 60);
        spread.add(1, 70, 80);
        assert_eq!((spread.n, spread.from, spread.to), (2, 60, 80));
    }

    /// A thread's batch made in a slot the window has since moved past
    /// (another thread moved it) counts in its own slot, and leaves the
    /// window as that slot does.
    #[test]
    fn a_batch_placed_after_the_window_moved_on_counts_in_its_own_slot() {
        let slot = 100;
        let mut window = Window::EMPTY;
        window.withdraw(0, slot); // the grid starts at 0
        window.withdraw(350, slot); // the head moves to [300, 400)
        assert_eq!(window.slot_end(150, slot), 200);
        window.deposit(4, 120, 180, slot); // made in [100, 200)
        assert_eq!(window.totals(1_050, slot, 1, 1).0, 4);
        // The far edge at 150: half of the batch's span is inside.
        assert_eq!(window.totals(1_150, slot, 1, 1).0, 2);
        assert_eq!(window.totals(1_180, slot, 1, 1).0, 0);
    }

    #[test]
    fn huge_counts_and_spans_do_not_overflow() {
        let mut spread = Spread::NONE;
        spread.add(u64::MAX, 0, u64::MAX);
        let half = spread.after(u64::MAX / 2, 1_000_000_000_000);
        let all = spread.all(1_000_000_000_000);
        assert!(
            half.abs_diff(all / 2) <= 1_000_000_000_000,
            "{half} vs {all}"
        );
    }
}
