//! What the `concurrency` key takes: a fixed [`Bulkhead`] or an
//! [`AdaptiveLimit`], behind one trait, so that the attribute's expansion
//! and `Policy::concurrency` pass either without knowing which it is, and
//! the engine admits through one path.
//!
//! The engine sees a [`Concurrency`] (which limit) and holds a
//! [`ConcurrencyPermit`] (its slot) while an attempt runs; the permit is
//! ended with the attempt's outcome, which an adaptive limit takes as a
//! sample, and a permit dropped with its call gives the slot back and
//! leaves no sample.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use crate::adaptive::{AdaptiveLimit, AdaptivePermit};
use crate::bulkhead::{Bulkhead, BulkheadPermit};
use crate::error::Rejected;

mod sealed {
    pub trait Sealed {}
}

/// A limit on attempts in flight: what `#[resilient(concurrency = &X)]`,
/// `retry!(concurrency = &X; ..)` and [`Policy::concurrency`](crate::Policy::concurrency)
/// take. Implemented by [`Bulkhead`] (a fixed number) and [`AdaptiveLimit`]
/// (a number learnt from latency and drops), and by what points to one
/// (`Arc<AdaptiveLimit>` from a [`Keyed`](crate::Keyed), `&Bulkhead`), so
/// that a per-host limit goes through the same key.
///
/// Sealed: the engine knows how to admit through each, and how to report
/// an attempt's outcome to it.
///
/// ```
/// use retry_runtime::{AdaptiveLimit, Bulkhead, ConcurrencyLimit};
///
/// fn guarded(limit: &impl ConcurrencyLimit) -> &impl ConcurrencyLimit {
///     limit
/// }
/// static FIXED: Bulkhead = Bulkhead::new(8);
/// static LEARNT: AdaptiveLimit = AdaptiveLimit::gradient();
/// guarded(&FIXED);
/// guarded(&LEARNT);
/// ```
#[diagnostic::on_unimplemented(
    message = "`concurrency` takes a `&Bulkhead` or a `&AdaptiveLimit`, not `&{Self}`",
    label = "not a concurrency limit",
    note = "a number (`concurrency = 8`) or `\"adaptive\"` makes one for this call site"
)]
pub trait ConcurrencyLimit: fmt::Debug + Sync + sealed::Sealed {
    /// Which limit this is, for the engine.
    #[doc(hidden)]
    fn concurrency(&self) -> Concurrency<'_>;
}

impl sealed::Sealed for Bulkhead {}

impl ConcurrencyLimit for Bulkhead {
    #[inline]
    fn concurrency(&self) -> Concurrency<'_> {
        Concurrency::Fixed(self)
    }
}

impl sealed::Sealed for AdaptiveLimit {}

impl ConcurrencyLimit for AdaptiveLimit {
    #[inline]
    fn concurrency(&self) -> Concurrency<'_> {
        Concurrency::Adaptive(self)
    }
}

// What deref coercion gave `concurrency = &BULKHEADS.get(host)` when the
// setter took a `&Bulkhead`: a generic setter gets no coercion, so every
// pointer to a limit is one.
impl<P: Deref + fmt::Debug + Sync> sealed::Sealed for P where P::Target: ConcurrencyLimit {}

impl<P: Deref + fmt::Debug + Sync> ConcurrencyLimit for P
where
    P::Target: ConcurrencyLimit,
{
    #[inline]
    fn concurrency(&self) -> Concurrency<'_> {
        (**self).concurrency()
    }
}

/// The limit one call's attempts go through.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Concurrency<'a> {
    /// A [`Bulkhead`].
    Fixed(&'a Bulkhead),
    /// An [`AdaptiveLimit`].
    Adaptive(&'a AdaptiveLimit),
}

impl<'a> Concurrency<'a> {
    /// A slot if one is free, without waiting.
    #[inline]
    pub(crate) fn try_acquire(self) -> Option<ConcurrencyPermit<'a>> {
        match self {
            Concurrency::Fixed(bulkhead) => bulkhead.try_acquire().map(ConcurrencyPermit::Fixed),
            Concurrency::Adaptive(limit) => limit.try_acquire().map(ConcurrencyPermit::Adaptive),
        }
    }

    /// Parks the thread until a slot is free.
    pub(crate) fn acquire_blocking(self) -> ConcurrencyPermit<'a> {
        match self {
            Concurrency::Fixed(bulkhead) => ConcurrencyPermit::Fixed(bulkhead.acquire_blocking()),
            Concurrency::Adaptive(limit) => ConcurrencyPermit::Adaptive(limit.acquire_blocking()),
        }
    }

    /// Parks the thread up to `max_wait` for a slot, on the wall clock.
    pub(crate) fn acquire_blocking_timeout(
        self,
        max_wait: Duration,
    ) -> Result<ConcurrencyPermit<'a>, Rejected> {
        match self {
            Concurrency::Fixed(bulkhead) => bulkhead
                .acquire_blocking_timeout(max_wait)
                .map(ConcurrencyPermit::Fixed),
            Concurrency::Adaptive(limit) => limit
                .acquire_blocking_timeout(max_wait)
                .map(ConcurrencyPermit::Adaptive),
        }
    }
}

/// A slot of either limit, held while one attempt runs.
#[derive(Debug)]
pub(crate) enum ConcurrencyPermit<'a> {
    Fixed(BulkheadPermit<'a>),
    Adaptive(AdaptivePermit<'a>),
}

impl ConcurrencyPermit<'_> {
    /// The attempt ended: the slot goes back, and an adaptive limit takes
    /// its latency as a sample, `dropped` if it timed out or failed in the
    /// way the breaker counts (the same rules as `breaker_if`).
    #[inline]
    pub(crate) fn ended(self, dropped: bool) {
        match self {
            ConcurrencyPermit::Fixed(permit) => drop(permit),
            ConcurrencyPermit::Adaptive(permit) if dropped => permit.dropped(),
            ConcurrencyPermit::Adaptive(permit) => permit.success(),
        }
    }
}

#[cfg(all(test, not(steadfast_loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_limit_and_what_points_to_one_says_which_it_is() {
        let fixed = Bulkhead::new(1);
        let adaptive = Arc::new(AdaptiveLimit::aimd());
        assert!(matches!(fixed.concurrency(), Concurrency::Fixed(b) if std::ptr::eq(b, &fixed)));
        assert!(matches!(
            adaptive.concurrency(),
            Concurrency::Adaptive(a) if std::ptr::eq(a, &*adaptive)
        ));
        assert!(matches!((&&fixed).concurrency(), Concurrency::Fixed(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn either_limit_admits_and_gives_its_slot_back() {
        let fixed = Bulkhead::new(1);
        let adaptive = AdaptiveLimit::aimd().initial(1);
        for limit in [fixed.concurrency(), adaptive.concurrency()] {
            let held = limit.try_acquire().expect("a free slot");
            assert!(limit.try_acquire().is_none());
            let wait = Duration::from_millis(5);
            assert!(limit.acquire_blocking_timeout(wait).is_err());
            held.ended(false);
            limit.try_acquire().expect("free").ended(true);
            limit.acquire_blocking().ended(false);
            drop(limit.acquire_blocking_timeout(wait).expect("free"));
        }
        assert_eq!((fixed.available(), adaptive.in_flight()), (1, 0));
    }
}
