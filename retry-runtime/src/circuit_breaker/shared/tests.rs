//! The orders between the background task and the callers, in the
//! interleavings a preempted caller produces. Taking an order and applying
//! it are two steps (`Shared::order`, `Machine::apply`), so a test can put
//! two callers' steps in any order; the background task is kept quiet (no
//! Redis answers it, and under `Fallback::Deny` it posts nothing).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Inner, NO_ORDER, OPEN_FLEET, OPEN_LOCAL, ORDER_CLOSE, ORDER_OPEN};
use crate::circuit_breaker::config::Config;
use crate::circuit_breaker::machine::Machine;
use crate::circuit_breaker::state::State;
use crate::redis::share::Link;
use crate::redis::{Fallback, Redis};

/// Nothing listens on port 1: every round trip fails at once.
static NOWHERE: Redis = Redis::new("redis://127.0.0.1:1");

fn shared_machine(key: &'static str) -> Machine {
    let mut machine = Machine::new(Config::DEFAULT);
    machine.shared.set(&NOWHERE, key);
    machine.shared.set_fallback(Fallback::Deny);
    machine
}

fn inner(machine: &Machine) -> &Link<Inner> {
    machine.shared.inner(&machine.config)
}

/// What the task posts when the fleet's quorum holds for `left` more.
fn post_open(machine: &Machine, left: Duration) {
    let inner = inner(machine);
    let deadline = inner.since_born(Instant::now()) + left.as_nanos() as u64;
    inner.order.store(ORDER_OPEN + deadline, Ordering::Release);
}

/// The order posted, taken by one caller (not yet applied).
fn take(machine: &Machine) -> super::Order {
    machine
        .shared
        .order(&machine.config, || machine.now_nanos())
        .expect("an order was posted")
}

fn opened_by_fleet_until(machine: &Machine) -> Option<u64> {
    match State::decode(machine.word()) {
        State::Open { until } if State::by_fleet(until) => Some(until),
        _ => None,
    }
}

/// The transition hook of a swap from `old` to `new`, run after the word
/// has moved on (it is what `machine.word()` says).
fn late_hook(machine: &Machine, old: State, new: State) {
    machine.shared.moved(
        &machine.config,
        old,
        new,
        || machine.now_nanos(),
        || State::decode(machine.word()),
    );
}

fn mode(machine: &Machine) -> u8 {
    inner(machine).view.mode()
}

/// Two callers take two orders in turn, the fleet's deadline moving
/// later between them, and apply them out of turn: the breaker ends open
/// by the fleet, to the later deadline, and never takes the fleet's
/// opening for evidence of its own (which it would publish, and probe).
#[test]
fn two_orders_applied_out_of_turn_leave_the_later_opening_of_the_fleet() {
    for later_first in [false, true] {
        let machine = shared_machine(if later_first {
            "out-of-turn-1"
        } else {
            "out-of-turn-2"
        });
        post_open(&machine, Duration::from_secs(10));
        let earlier = take(&machine);
        post_open(&machine, Duration::from_secs(20));
        let later = take(&machine);
        if later_first {
            machine.apply(later);
            machine.apply(earlier);
        } else {
            machine.apply(earlier);
            assert_eq!(
                mode(&machine),
                OPEN_FLEET,
                "the first opening is the fleet's"
            );
            machine.apply(later);
        }
        let until = opened_by_fleet_until(&machine).expect("open by the fleet");
        let left = Duration::from_nanos(until.saturating_sub(machine.now_nanos()));
        assert!(
            Duration::from_secs(15) < left && left <= Duration::from_secs(20),
            "{left:?}: the later deadline (later first: {later_first})"
        );
        assert_eq!(mode(&machine), OPEN_FLEET, "later first: {later_first}");
    }
}

/// A close the fleet orders ends the fleet's opening, never one of the
/// breaker's own: the word says which is which.
#[test]
fn a_close_order_ends_the_fleets_opening_only() {
    let machine = shared_machine("close-order");
    machine.force_open_for(Duration::from_secs(30).as_nanos() as u64);
    inner(&machine).order.store(ORDER_CLOSE, Ordering::Release);
    let close = take(&machine);
    machine.apply(close);
    assert!(
        matches!(State::decode(machine.word()), State::Open { until } if !State::by_fleet(until))
    );
    assert_eq!(mode(&machine), OPEN_LOCAL);

    let machine = shared_machine("close-order-2");
    post_open(&machine, Duration::from_secs(10));
    let open = take(&machine);
    machine.apply(open);
    assert_eq!(mode(&machine), OPEN_FLEET);
    inner(&machine).order.store(ORDER_CLOSE, Ordering::Release);
    let close = take(&machine);
    machine.apply(close);
    assert!(matches!(
        State::decode(machine.word()),
        State::Closed { .. }
    ));
    assert_eq!(inner(&machine).order.load(Ordering::Acquire), NO_ORDER);
}

/// A caller's hook that runs late, after another caller has swapped the
/// word again and run its own hook, leaves the task's view as the word is
/// (closed), not as the late caller's swap made it (half-open): a view
/// stuck at half-open would keep a closed replica's old evidence and
/// ignore the fleet's orders until its next transition.
#[test]
fn a_late_hook_leaves_the_tasks_view_as_the_word_is() {
    let machine = shared_machine("late-hook");
    assert_eq!(mode(&machine), super::CLOSED);
    let late = State::HalfOpen {
        generation: 2,
        in_flight: 1,
        succeeded: 0,
        failed: 0,
    };
    late_hook(&machine, State::opened_here(0), late);
    assert_eq!(mode(&machine), super::CLOSED);
}

/// Of two openings of its own (a trip, then `force_open_for`), the task's
/// view ends with the one the word holds, even when the earlier one's
/// hook runs last: its evidence is published to the right deadline.
#[test]
fn a_late_hook_leaves_the_open_period_the_word_holds() {
    let machine = shared_machine("late-hook-open");
    machine.force_open_for(Duration::from_secs(30).as_nanos() as u64);
    let earlier =
        State::opened_here(machine.now_nanos() + Duration::from_secs(5).as_nanos() as u64);
    late_hook(&machine, State::closed(0), earlier);
    assert_eq!(mode(&machine), OPEN_LOCAL);
    let inner = inner(&machine);
    let deadline = inner.deadline.load(Ordering::Relaxed);
    let left = Duration::from_nanos(deadline - inner.since_born(Instant::now()));
    assert!(
        left > Duration::from_secs(25),
        "{left:?} of the 30 s the word holds"
    );
}

/// Held open until `reset` is a mode of its own (evidence renewed while
/// held, never a deadline), whatever the reopen time's lowest bit.
#[test]
fn held_open_is_neither_the_fleets_opening_nor_a_timed_one() {
    let machine = shared_machine("held");
    machine.isolate();
    assert_eq!(mode(&machine), super::OPEN_HELD);
}
