//! The sliding window of a budget: how many calls and retries happened in
//! the last `ttl`.
//!
//! The window is kept in slots of `ttl / SLOTS`, on a grid that starts at
//! the budget's first withdrawal. Withdrawals are counted in the slot they
//! are made in. Deposits carry no time (see the budget's essay): each
//! withdrawal spreads the deposits collected since the previous one evenly
//! over the time between the two, slot by slot.
//!
//! # The window's far edge
//!
//! The window is `(now - ttl, now]`: a deposit counts until it is `ttl`
//! old. Its far edge falls *inside* a slot, not on a boundary, so the ring
//! keeps one slot more than the window spans, and that oldest slot counts
//! in part:
//!
//! its deposits and its withdrawals each count for the share of their time
//! span that is still inside the window. Each slot keeps the span its
//! deposits were placed over and the span its withdrawals were made in, and
//! takes them to be spread evenly over it: so deposits placed at one
//! instant, or a burst of retries made at one instant, leave at once,
//! exactly `ttl` later, and a steady flow leaves as steadily as it came.
//! Within one slot the spread is an estimate; across slots it is exact.
//!
//! Dropping the oldest slot whole at its boundary instead, as tower's
//! `TpsBudget` does, makes a deposit count for as little as `0.9 × ttl`.

use std::time::Duration;

use tokio::time::Instant;

/// Slots the window spans, each `ttl / SLOTS` long, as in tower.
pub(super) const SLOTS: u64 = 10;
/// The ring holds one more: the oldest, which the window's far edge cuts.
const RING: usize = SLOTS as usize + 1;

pub(super) struct Window {
    /// A ring; `slots[head]` started at `Clock::head_start`, and
    /// `slots[head + 1]` is the oldest.
    slots: [Slot; RING],
    head: usize,
    /// `None` until the first withdrawal: an `Instant` cannot be made in a
    /// `const fn`, and the window only matters once something withdraws.
    clock: Option<Clock>,
}

/// What one slot holds: the deposits and the withdrawals made in it.
#[derive(Clone, Copy)]
struct Slot {
    deposits: Spread,
    withdrawals: Spread,
}

/// `n` events taken to be spread evenly over `(from, to]`, or to sit at
/// `to` if the two are equal. Times are nanoseconds since `Clock::origin`.
#[derive(Clone, Copy)]
struct Spread {
    n: u64,
    from: u64,
    to: u64,
}

#[derive(Clone, Copy)]
struct Clock {
    /// Time zero of the window: the budget's first deposit, or its first
    /// withdrawal if that came first.
    origin: Instant,
    /// When the head slot started. Slots stay on the grid of the first
    /// withdrawal rather than restarting at each one, so that expiry does
    /// not drift later with every withdrawal.
    head_start: u64,
    last_withdraw: u64,
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
        clock: None,
    };

    /// Moves the window to `now` and places the `pending` deposits made
    /// since the previous withdrawal (since `first_deposit` for the first
    /// one). Returns `now` on the window's clock, for `totals` and
    /// `withdraw`.
    pub(super) fn record(
        &mut self,
        now: Instant,
        pending: u64,
        slot: u64,
        first_deposit: Option<Instant>,
    ) -> u64 {
        let clock = self.clock.get_or_insert_with(|| {
            let origin = first_deposit.map_or(now, |first| first.min(now));
            Clock {
                origin,
                head_start: nanos_between(origin, now),
                last_withdraw: 0,
            }
        });
        let now = nanos_between(clock.origin, now);
        let steps = now.saturating_sub(clock.head_start) / slot;
        clock.head_start = clock.head_start.saturating_add(steps.saturating_mul(slot));
        let since = std::mem::replace(&mut clock.last_withdraw, now);
        let head_start = clock.head_start;
        for _ in 0..steps.min(RING as u64) {
            self.head = (self.head + 1) % RING;
            self.slots[self.head] = Slot::EMPTY;
        }
        self.place(pending, since, now, head_start, slot);
        now
    }

    /// Spreads `pending` evenly over `(since, now]`, slot by slot from the
    /// newest. Rounding the cumulative share (rather than each slot's) loses
    /// nothing that falls inside the ring; deposits older than its oldest
    /// slot are dropped, as they have expired.
    fn place(&mut self, pending: u64, since: u64, now: u64, head_start: u64, slot: u64) {
        let gap = now.saturating_sub(since);
        if gap == 0 {
            return self.slots[self.head].deposits.add(pending, now, now);
        }
        let mut placed = 0;
        let mut end = now;
        for back in 0..RING {
            let start = head_start
                .saturating_sub(slot.saturating_mul(back as u64))
                .max(since);
            // cumulative <= pending, so it fits in u64.
            let cumulative =
                (u128::from(pending) * u128::from(now - start) / u128::from(gap)) as u64;
            let idx = (self.head + RING - back) % RING;
            self.slots[idx]
                .deposits
                .add(cumulative - placed, start, end);
            placed = cumulative;
            if start <= since {
                break;
            }
            end = start;
        }
    }

    /// Deposits (`amount` units each) and withdrawals (`scale` units each)
    /// inside the window `(now - SLOTS × slot, now]`: every slot but the
    /// oldest whole, the oldest in part (see the module docs).
    pub(super) fn totals(&self, now: u64, slot: u64, amount: u64, scale: u64) -> (u128, u128) {
        let oldest = (self.head + 1) % RING;
        // Before a whole window has passed, nothing has expired.
        let edge = now.checked_sub(slot.saturating_mul(SLOTS));
        let mut totals = (0u128, 0u128);
        for (idx, slot) in self.slots.iter().enumerate() {
            let (deposits, withdrawals) = match edge {
                Some(edge) if idx == oldest => (
                    slot.deposits.after(edge, amount),
                    slot.withdrawals.after(edge, scale),
                ),
                _ => (slot.deposits.all(amount), slot.withdrawals.all(scale)),
            };
            totals.0 = totals.0.saturating_add(deposits);
            totals.1 = totals.1.saturating_add(withdrawals);
        }
        totals
    }

    /// Counts a withdrawal made at `now` (as returned by `record`).
    pub(super) fn withdraw(&mut self, now: u64) {
        self.slots[self.head].withdrawals.add(1, now, now);
    }
}

/// The length of one slot of a `ttl` window, in nanoseconds: at least 1,
/// and capped where a `u64` of nanoseconds (584 years) ends.
pub(super) fn slot_nanos(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos() / u128::from(SLOTS))
        .unwrap_or(u64::MAX)
        .max(1)
}

fn nanos_between(earlier: Instant, later: Instant) -> u64 {
    u64::try_from(later.saturating_duration_since(earlier).as_nanos()).unwrap_or(u64::MAX)
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
