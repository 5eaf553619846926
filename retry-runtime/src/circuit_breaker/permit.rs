//! The permit a breaker hands out for one call, and the report of its
//! outcome.

use std::fmt;
use std::mem::ManuallyDrop;

use super::machine::{Admitted, Machine};

/// Permission from [`CircuitBreaker::try_acquire`](super::CircuitBreaker::try_acquire)
/// to make one call; report how it went with [`success`](Self::success) or
/// [`failure`](Self::failure).
///
/// Dropping it without either counts nothing: use that when the call was
/// cancelled, or ended in a way that says nothing about the dependency's
/// health. A half-open probe's slot is then freed for another probe.
///
/// A permit from an earlier state (say, a slow call admitted before the
/// breaker opened) is recognised as stale and its outcome ignored.
///
/// ```
/// use retry_runtime::{CircuitBreaker, CircuitState};
///
/// let breaker = CircuitBreaker::new().failure_threshold(1);
/// let slow = breaker.try_acquire().unwrap();
/// breaker.try_acquire().unwrap().failure();
/// assert_eq!(breaker.state(), CircuitState::Open);
/// slow.success(); // admitted before the breaker opened: ignored
/// assert_eq!(breaker.state(), CircuitState::Open);
/// ```
#[must_use = "report the call's outcome with `success()` or `failure()`"]
pub struct BreakerPermit<'a> {
    machine: &'a Machine,
    // The machine's `Admitted`, unpacked: a permit is in every protected
    // call's future. `success` and `failure` consume the permit without
    // running `Drop` (which frees the slot of a probe that reported
    // nothing), so no flag says whether it has reported.
    generation: u32,
    probe: bool,
    /// With `slow_call`: when the call was admitted, in nanoseconds since
    /// the breaker's epoch, plus one; 0 without `slow_call`, which reads
    /// no clock. With adaptive throttling: the bucket its request was
    /// counted in, plus one (the breaker has no `slow_call` then). A `u64`
    /// rather than an `Option<Instant>` keeps the permit at 24 bytes.
    started: u64,
}

impl<'a> BreakerPermit<'a> {
    #[inline]
    pub(super) fn new(machine: &'a Machine, call: Admitted) -> Self {
        let started = match machine.config.slow {
            Some(_) => machine.timed_start(),
            None => 0,
        };
        BreakerPermit {
            machine,
            generation: call.generation,
            probe: call.probe,
            started,
        }
    }

    /// A throttling breaker's permit for a request counted in `bucket`.
    pub(super) fn throttled(machine: &'a Machine, call: Admitted, bucket: u64) -> Self {
        BreakerPermit {
            machine,
            generation: call.generation,
            probe: call.probe,
            started: bucket.saturating_add(1),
        }
    }

    /// Reports the outcome, consuming the permit without dropping it (its
    /// `Drop` is for a permit that reports nothing); a call timed for
    /// `slow_call` reads the clock to tell whether it was slow.
    #[inline]
    fn report(self, failed: bool) {
        let this = ManuallyDrop::new(self);
        this.machine.report(this.call(), failed, this.started);
    }

    fn call(&self) -> Admitted {
        Admitted {
            generation: self.generation,
            probe: self.probe,
        }
    }
}

impl BreakerPermit<'_> {
    /// The call succeeded (or failed in a way that shows the dependency is
    /// answering). Resets the failure streak, counts a success in the rate
    /// window, or, for a half-open probe, counts towards closing the
    /// breaker, which closes once all of its `half_open_probes` have
    /// succeeded. With [`slow_call`](super::CircuitBreaker::slow_call), a
    /// call that took longer than its threshold since
    /// [`try_acquire`](super::CircuitBreaker::try_acquire) is also counted
    /// as slow (and a slow probe as a failed one).
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.try_acquire().unwrap().success();
    /// ```
    #[inline]
    pub fn success(self) {
        self.report(false);
    }

    /// The call failed. Counts towards tripping the breaker, or, for a
    /// half-open probe, opens it again for a fresh `open_for`. With
    /// [`slow_call`](super::CircuitBreaker::slow_call), a failure slower
    /// than the threshold counts as slow too, as in resilience4j.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitState};
    ///
    /// let breaker = CircuitBreaker::new().failure_threshold(1);
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// ```
    #[inline]
    pub fn failure(self) {
        self.report(true);
    }

    /// Whether this permit is one of the half-open breaker's trial calls.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new().open_for(Duration::ZERO);
    /// assert!(!breaker.try_acquire().unwrap().is_probe());
    /// breaker.force_open_for(Duration::ZERO);
    /// assert!(breaker.try_acquire().unwrap().is_probe());
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for BreakerPermit<'_> {
    /// Reached only by a permit that reported nothing.
    #[inline]
    fn drop(&mut self) {
        if self.probe {
            self.machine.release_probe(self.generation);
        } else if self.started != 0 {
            self.machine.cancelled(self.generation, self.started);
        }
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("generation", &self.generation)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::CircuitBreaker;

    #[test]
    fn a_permit_stays_small() {
        assert_eq!(size_of::<super::BreakerPermit<'_>>(), 24);
    }

    #[test]
    fn a_permit_shows_whether_it_is_a_probe() {
        let breaker = CircuitBreaker::new();
        let permit = breaker.try_acquire().unwrap();
        let shown = format!("{permit:?}");
        assert!(
            shown.starts_with("BreakerPermit {") && shown.contains("probe: false"),
            "{shown}"
        );
        permit.success();
    }
}
