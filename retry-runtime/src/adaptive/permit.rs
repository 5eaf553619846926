//! The permit an adaptive limit hands out for one call, and the sample its
//! outcome leaves.

use std::fmt;
use std::mem::ManuallyDrop;

use super::control::Controller;

/// One slot of an [`AdaptiveLimit`](super::AdaptiveLimit), held while a call
/// runs; report how it went with [`success`](Self::success) or
/// [`dropped`](Self::dropped).
///
/// Either gives the slot back and leaves a sample: the call's latency
/// since it was admitted, and whether it was dropped. Dropping the permit
/// without either gives the slot back and leaves **no** sample: use that
/// when the call was cancelled or ended in a way that says nothing about
/// the dependency's capacity. So a call whose future is dropped mid-flight
/// (a timeout outside it, a lost `select!`, a hedge that lost) never
/// leaks a slot and never feeds the limit a false latency; a panicking
/// call gives its slot back while unwinding.
///
/// ```
/// use retry_runtime::AdaptiveLimit;
///
/// static DB: AdaptiveLimit = AdaptiveLimit::aimd().initial(2);
///
/// let permit = DB.try_acquire().expect("2 slots free");
/// assert_eq!(DB.in_flight(), 1);
/// drop(permit); // cancelled: the slot is back, no sample
/// assert_eq!(DB.in_flight(), 0);
/// DB.try_acquire().unwrap().success(); // a sample of its latency
/// ```
#[must_use = "report the call's outcome with `success()` or `dropped()`"]
pub struct AdaptivePermit<'a> {
    control: &'a Controller,
    /// When the call was admitted, in nanoseconds since the limit's epoch.
    started: u64,
    /// Calls in flight when it was admitted, itself included.
    in_flight: u32,
}

impl<'a> AdaptivePermit<'a> {
    /// A permit for a call just admitted with `in_flight` in flight; reads
    /// the clock, to time it.
    #[inline]
    pub(super) fn new(control: &'a Controller, in_flight: u32) -> Self {
        AdaptivePermit {
            control,
            started: control.now_nanos(),
            in_flight,
        }
    }

    /// Gives the slot back and records the sample, consuming the permit
    /// without running its `Drop` (which is for a permit that reports
    /// nothing).
    #[inline]
    fn report(self, dropped: bool) {
        let this = ManuallyDrop::new(self);
        // The slot first, so that a waiter gets in while this call does the
        // bookkeeping.
        this.control.gate.release();
        this.control.record(this.started, this.in_flight, dropped);
    }
}

impl AdaptivePermit<'_> {
    /// The call got an answer: its latency since admission is a sample
    /// (a drop instead if slower than
    /// [`drop_above`](super::AdaptiveLimit::drop_above)). Use this for
    /// errors that show the dependency answered, too.
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// let limit = AdaptiveLimit::gradient();
    /// limit.try_acquire().unwrap().success();
    /// assert_eq!(limit.in_flight(), 0);
    /// ```
    #[inline]
    pub fn success(self) {
        self.report(false);
    }

    /// The call was dropped: it timed out, or the dependency refused it
    /// for being overloaded (a 503, `RESOURCE_EXHAUSTED`). A drop is the
    /// overload signal: AIMD and Vegas lower the limit on any, and the
    /// gradient counts it as slower than every answer (so when more than
    /// one call in ten is dropped, with the default p90, it halves).
    ///
    /// ```
    /// use retry_runtime::AdaptiveLimit;
    ///
    /// let limit = AdaptiveLimit::aimd();
    /// limit.try_acquire().unwrap().dropped();
    /// assert_eq!(limit.in_flight(), 0);
    /// ```
    #[inline]
    pub fn dropped(self) {
        self.report(true);
    }
}

impl Drop for AdaptivePermit<'_> {
    /// Reached only by a permit that reported nothing: the slot, no sample.
    #[inline]
    fn drop(&mut self) {
        self.control.gate.release();
    }
}

impl fmt::Debug for AdaptivePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptivePermit")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(steadfast_loom)))]
mod tests {
    #[test]
    fn a_permit_stays_small() {
        assert_eq!(size_of::<super::AdaptivePermit<'_>>(), 24);
    }
}
