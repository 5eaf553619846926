//! The circuit around Redis itself: after a failure, stop sending for
//! `retry_after`, then let one probe through. Without it an outage would
//! cost every call a timeout; with it, one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Error;

#[derive(Debug)]
pub(crate) struct Health {
    /// Read on every decision, so kept apart from the details the lock
    /// guards: `true` until a failure, and again after a success.
    healthy: AtomicBool,
    details: Mutex<Details>,
}

#[derive(Debug)]
struct Details {
    /// When the next probe may go; `None` while healthy.
    next_probe: Option<Instant>,
    last_error: Option<Error>,
}

impl Health {
    pub(crate) const fn new() -> Self {
        Health {
            healthy: AtomicBool::new(true),
            details: Mutex::new(Details {
                next_probe: None,
                last_error: None,
            }),
        }
    }

    fn details(&self) -> std::sync::MutexGuard<'_, Details> {
        // The details stay consistent at every step, so a panic elsewhere
        // while holding the lock leaves nothing to repair.
        self.details.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_healthy(&self) -> bool {
        // Relaxed: a decision reading a stale value makes one more degraded
        // decision or one more round trip, both bounded.
        self.healthy.load(Ordering::Relaxed)
    }

    /// Whether a probe may go now; if so, the next one waits `retry_after`
    /// again, so that only one caller probes at a time.
    pub(crate) fn claim_probe(&self, now: Instant, retry_after: Duration) -> bool {
        let mut details = self.details();
        match details.next_probe {
            Some(at) if now < at => false,
            _ => {
                details.next_probe = Some(now + retry_after);
                true
            }
        }
    }

    /// How long until the next probe may go (zero while healthy).
    pub(crate) fn retry_in(&self, now: Instant) -> Duration {
        self.details()
            .next_probe
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now))
    }

    pub(crate) fn failed(&self, error: Error, retry_after: Duration) {
        let mut details = self.details();
        let was_healthy = self.healthy.swap(false, Ordering::Relaxed);
        // A failure does not postpone a probe already scheduled further.
        let at = Instant::now() + retry_after;
        details.next_probe = Some(details.next_probe.map_or(at, |next| next.max(at)));
        #[cfg(feature = "tracing")]
        if was_healthy {
            tracing::warn!(target: "steadfast", error = %error, retry_after_ms = retry_after.as_millis() as u64, "Redis unavailable: shared limits decide by their fallback");
        }
        let _ = was_healthy;
        details.last_error = Some(error);
    }

    pub(crate) fn succeeded(&self) {
        if self.is_healthy() {
            return;
        }
        let mut details = self.details();
        details.next_probe = None;
        details.last_error = None;
        self.healthy.store(true, Ordering::Relaxed);
        #[cfg(feature = "tracing")]
        tracing::info!(target: "steadfast", "Redis reachable again: shared limits resume");
    }

    pub(crate) fn last_error(&self) -> Option<Error> {
        if self.is_healthy() {
            return None;
        }
        self.details().last_error.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone() -> Error {
        Error::Connect {
            reason: "refused".to_owned(),
        }
    }

    /// A failure holds every probe for `retry_after` from the failure, then
    /// lets exactly one through per `retry_after`.
    #[test]
    fn a_failure_holds_probes_for_retry_after_then_lets_one_through() {
        let retry_after = Duration::from_secs(60);
        let health = Health::new();
        health.failed(gone(), retry_after);
        let failed_at = Instant::now();
        assert!(!health.is_healthy());
        assert_eq!(health.last_error(), Some(gone()));
        assert!(!health.claim_probe(failed_at, retry_after));
        assert!(health.retry_in(failed_at) > Duration::from_secs(59));

        let due = failed_at + retry_after + Duration::from_millis(1);
        assert!(health.claim_probe(due, retry_after));
        assert!(!health.claim_probe(due, retry_after), "one probe at a time");

        health.succeeded();
        assert!(health.is_healthy());
        assert_eq!(health.last_error(), None);
        assert_eq!(health.retry_in(due), Duration::ZERO);
    }
}
