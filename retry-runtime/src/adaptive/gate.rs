//! The gate: how many calls are in flight, how many may be, and the line
//! of callers waiting for a slot.
//!
//! Both counts live in one `AtomicU64`, the in-flight count in the low 32
//! bits and the limit in the high 32, so admission is one
//! compare-and-swap that sees the two together: a call is admitted only
//! if the count it increments is below the limit of the same word. A
//! release is one `fetch_sub`; a new limit replaces the high half with
//! one swap and never touches the count, so a lower limit revokes
//! nothing (calls already admitted finish) and admits no one until
//! enough of them have.
//!
//! A limit of 0 in the word means "not yet set": a `const` constructor
//! cannot choose the first limit from builders that come after it, so
//! the first refusal (every call is refused by a zero limit) sets it, out
//! of line, and admission pays nothing for it.
//!
//! # Waiting
//!
//! Waiters register with a [`Notify`] and count themselves in `waiters`;
//! a release (or a raised limit) that frees a slot wakes one of them for
//! each slot, only when some are counted, so a release without waiters
//! costs one load more than the `fetch_sub`. No wake-up is lost: a waiter
//! counts itself, registers, and then tries again, while a release frees
//! its slot and then reads the count, both sequentially consistent, so
//! either the waiter's try sees the slot or the release sees the waiter
//! (and a `notify_one` with nobody registered yet is kept by the `Notify`
//! for the next to register). A woken waiter takes the slot with the same
//! compare-and-swap as anyone; a caller arriving at that moment may take
//! it first (no strict order, unlike the bulkhead's queue), and the
//! waiter then waits again. A waiter dropped after it was woken passes its
//! wake-up on to the next (tokio's `Notified` does that), so cancelling a
//! wait leaks neither a slot nor a wake-up.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use tokio::sync::Notify;

use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::const_fn;

const IN_FLIGHT_MASK: u64 = u32::MAX as u64;
const LIMIT_SHIFT: u32 = 32;

pub(super) struct Gate {
    /// On a cache line of its own: every admission and release writes it,
    /// and the configuration and samples next to it are read on every call.
    word: CacheLine<AtomicU64>,
    waiters: AtomicUsize,
    notify: Notify,
}

/// A value alone on its cache line (64 bytes, as on x86-64 and most ARM
/// cores).
#[repr(align(64))]
struct CacheLine<T>(T);

const fn pack(in_flight: u32, limit: u32) -> u64 {
    (limit as u64) << LIMIT_SHIFT | in_flight as u64
}

pub(super) const fn unpack(word: u64) -> (u32, u32) {
    ((word & IN_FLIGHT_MASK) as u32, (word >> LIMIT_SHIFT) as u32)
}

impl Gate {
    const_fn! {
        pub(super) fn new() -> Self {
            Gate {
                word: CacheLine(AtomicU64::new(pack(0, 0))),
                waiters: AtomicUsize::new(0),
                notify: Notify::const_new(),
            }
        }
    }

    /// The in-flight count and the limit (0: not yet set).
    pub(super) fn load(&self) -> (u32, u32) {
        unpack(self.word.0.load(Ordering::Acquire))
    }

    /// Admits a call if one is below the limit: the in-flight count it
    /// made (itself included). `first` gives the first limit, asked only
    /// when none is set yet.
    #[inline]
    pub(super) fn try_take(&self, first: impl FnOnce() -> u32) -> Option<u32> {
        // Sequentially consistent, as the waiters' protocol needs (see the
        // module docs); on x86 the same instructions as acquire/release.
        let mut word = self.word.0.load(Ordering::SeqCst);
        loop {
            let (in_flight, limit) = unpack(word);
            if in_flight >= limit {
                if limit == 0 {
                    return self.take_first(first());
                }
                return None;
            }
            match self.word.0.compare_exchange_weak(
                word,
                word + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(in_flight + 1),
                Err(current) => word = current,
            }
        }
    }

    /// Sets the first limit if none is set yet, then admits as
    /// [`try_take`](Self::try_take) does.
    #[cold]
    #[inline(never)]
    fn take_first(&self, first: u32) -> Option<u32> {
        let _ = self
            .word
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
                let (in_flight, limit) = unpack(word);
                (limit == 0).then_some(pack(in_flight, first.max(1)))
            });
        self.try_take(|| first)
    }

    /// Gives a slot back, and wakes a waiter if the slot is free for one
    /// (not when a lowered limit still has more calls in flight than it
    /// allows).
    #[inline]
    pub(super) fn release(&self) {
        let (in_flight, limit) = unpack(self.word.0.fetch_sub(1, Ordering::SeqCst));
        debug_assert!(in_flight > 0, "a release without an admission");
        if in_flight <= limit && self.waiters.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// Publishes a new limit and returns the one it replaced; wakes a
    /// waiter for each slot a higher limit frees.
    pub(super) fn set_limit(&self, limit: u32) -> u32 {
        let limit = limit.max(1);
        let before = self
            .word
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
                let (in_flight, _) = unpack(word);
                Some(pack(in_flight, limit))
            })
            // The closure always returns `Some`.
            .unwrap_or_else(|word| word);
        let (in_flight, old) = unpack(before);
        let freed = limit.saturating_sub(old.max(in_flight));
        if freed > 0 {
            let waiters = self.waiters.load(Ordering::SeqCst);
            for _ in 0..waiters.min(freed as usize) {
                self.notify.notify_one();
            }
        }
        old
    }

    /// Waits for a slot, in line with other waiters; resolves to the
    /// in-flight count made, as [`try_take`](Self::try_take). Holds
    /// nothing until it resolves: dropping it takes nothing (see the
    /// module docs).
    pub(super) async fn wait(&self, first: impl Fn() -> u32 + Copy) -> u32 {
        let _counted = Counted::enter(&self.waiters);
        loop {
            let mut notified = pin!(self.notify.notified());
            // Registered before the try: a release from here on wakes this
            // waiter, or the try below sees its slot.
            notified.as_mut().enable();
            if let Some(in_flight) = self.try_take(first) {
                return in_flight;
            }
            notified.await;
        }
    }

    /// Blocks the thread for a slot, until `deadline` if there is one
    /// (`None` past it), in the same line as async waiters: the thread
    /// drives [`wait`](Self::wait)'s future, parking between polls, as the
    /// bulkhead's blocking acquire does.
    pub(super) fn wait_blocking(
        &self,
        first: impl Fn() -> u32 + Copy,
        deadline: Option<std::time::Instant>,
    ) -> Option<u32> {
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut wait = pin!(self.wait(first));
        loop {
            if let Poll::Ready(in_flight) = wait.as_mut().poll(&mut cx) {
                return Some(in_flight);
            }
            // Parking may return spuriously or on a stale unpark; the next
            // poll tells whether a slot really came.
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// Callers waiting right now.
    pub(super) fn waiters(&self) -> usize {
        self.waiters.load(Ordering::Relaxed)
    }
}

/// One waiter counted in `waiters` while it waits, however it stops.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn enter(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        Counted(waiters)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wakes a thread parked in [`Gate::wait_blocking`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(all(test, not(steadfast_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_sets_the_first_limit() {
        let gate = Gate::new();
        assert_eq!(gate.load(), (0, 0));
        assert_eq!(gate.try_take(|| 2), Some(1));
        assert_eq!(gate.try_take(|| unreachable!("set already")), Some(2));
        assert_eq!(gate.try_take(|| unreachable!("set already")), None);
        assert_eq!(gate.load(), (2, 2));
    }

    #[test]
    fn a_lower_limit_revokes_nothing_and_admits_no_one_until_below_it() {
        let gate = Gate::new();
        for _ in 0..4 {
            gate.try_take(|| 4).unwrap();
        }
        assert_eq!(gate.set_limit(2), 4);
        assert_eq!(gate.load(), (4, 2));
        assert_eq!(gate.try_take(|| 4), None);
        gate.release();
        gate.release();
        assert_eq!(gate.try_take(|| 4), None, "2 in flight, limit 2");
        gate.release();
        assert_eq!(gate.try_take(|| 4), Some(2));
    }

    #[test]
    fn a_zero_limit_is_one() {
        let gate = Gate::new();
        gate.set_limit(0);
        assert_eq!(gate.load(), (0, 1));
        assert_eq!(gate.try_take(|| 5), Some(1));
        assert_eq!(gate.try_take(|| 5), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_raised_limit_wakes_as_many_waiters_as_it_frees() {
        let gate: &'static Gate = Box::leak(Box::new(Gate::new()));
        gate.set_limit(1);
        assert_eq!(gate.try_take(|| 1), Some(1));
        let waiting: Vec<_> = (0..3).map(|_| tokio::spawn(gate.wait(|| 1))).collect();
        tokio::task::yield_now().await;
        assert_eq!(gate.waiters(), 3);
        gate.set_limit(3);
        tokio::task::yield_now().await;
        let done = waiting.iter().filter(|w| w.is_finished()).count();
        assert_eq!(done, 2, "two slots freed, two waiters in");
        assert_eq!(gate.load(), (3, 3));
        gate.release();
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(gate.waiters(), 0);
    }
}

/// loom models of the gate (see `tests/loom.rs` for how they run): a new
/// limit published while calls are admitted and released loses neither,
/// and admission never passes the limit of the word it swapped.
#[cfg(all(test, steadfast_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;
    use std::sync::atomic::Ordering::SeqCst;

    use super::*;

    #[test]
    fn a_new_limit_loses_no_release_and_caps_later_admissions() {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(|| {
            let gate = Arc::new(Gate::new());
            gate.set_limit(2);
            let peak = Arc::new(AtomicUsize::new(0));
            let held = Arc::new(AtomicUsize::new(0));
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let (gate, held, peak) = (gate.clone(), held.clone(), peak.clone());
                    thread::spawn(move || {
                        if gate.try_take(|| 2).is_some() {
                            let now = held.fetch_add(1, SeqCst) + 1;
                            peak.fetch_max(now, SeqCst);
                            held.fetch_sub(1, SeqCst);
                            gate.release();
                        }
                    })
                })
                .collect();
            let updater = {
                let gate = gate.clone();
                thread::spawn(move || {
                    gate.set_limit(1);
                })
            };
            for caller in callers {
                caller.join().unwrap();
            }
            updater.join().unwrap();
            assert!(peak.load(SeqCst) <= 2);
            assert_eq!(gate.load(), (0, 1), "a release or the new limit was lost");
            // The new limit holds for whoever comes next.
            assert_eq!(gate.try_take(|| 2), Some(1));
            assert_eq!(gate.try_take(|| 2), None);
        });
    }
}
