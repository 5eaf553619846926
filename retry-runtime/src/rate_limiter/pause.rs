//! Shared backpressure: a server's "slow down" heard by one caller pauses
//! every caller of the limiter.
//!
//! A quota is usually the server's, not the caller's: when one call gets
//! `429 Too Many Requests` with `Retry-After: 2`, the other callers sharing
//! the limiter would get the same answer for the next two seconds, and
//! each of them sending anyway only spends the quota the server is trying
//! to protect. With [`RateLimiter::pause_on_retry_after`], a hint seen by
//! any call that took a token from the limiter moves the whole bucket's
//! theoretical arrival time past the hinted instant, so no token is given
//! to anyone before it. It is one `fetch_max` on the bucket's only atomic:
//! nothing is added to the path of a call that hears no hint.

use std::time::Duration;

use tokio::time::Instant;

use super::RateLimiter;
use crate::sync::atomic::Ordering;

impl RateLimiter {
    /// Lets a server's `Retry-After` hint pause every caller of this
    /// limiter, for at most `max_pause`.
    ///
    /// Opt-in: by default a hint delays only the call that heard it. With
    /// this set, when an attempt that took a token fails with a hint (the
    /// attribute's or `Policy`'s `retry_after`), the limiter gives no token
    /// to anyone until the hinted time, capped at `max_pause` so that a
    /// confused server cannot stop a service for an hour. Callers waiting
    /// in [`acquire`](RateLimiter::acquire) wait out the pause; those with a
    /// `max_wait` shorter than it are refused at once. No hint, no pause:
    /// an error without one never pauses anyone, nor does a "do not retry"
    /// (a hint of `Duration::MAX`, as `steadfast::tonic` reads a negative
    /// gRPC pushback), which speaks of one call, not of a quota. After the pause, tokens
    /// come at the limiter's rate, not as a burst, so the server does not
    /// meet every waiting caller at once. A zero `max_pause` turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::RateLimiter;
    ///
    /// // The partner's quota, shared by every call to it.
    /// static PARTNER: RateLimiter =
    ///     RateLimiter::per_second(50).pause_on_retry_after(Duration::from_secs(30));
    /// ```
    #[must_use]
    pub const fn pause_on_retry_after(mut self, max_pause: Duration) -> Self {
        let nanos = max_pause.as_nanos();
        self.max_pause_ns = if nanos > u64::MAX as u128 {
            u64::MAX
        } else {
            nanos as u64
        };
        self
    }

    /// Gives no token to anyone for `duration` from now; then tokens come
    /// at the limiter's rate.
    ///
    /// The pause only ever extends: a shorter pause than one in force
    /// changes nothing. Calls already holding a token are not affected. On
    /// a limiter shared through Redis the pause is the fleet's: no replica
    /// gets a token from the global bucket before it ends (each may still
    /// spend what its lease holds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::RateLimiter;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static API: RateLimiter = RateLimiter::per_second(100);
    ///
    /// API.pause(Duration::from_secs(2));
    /// assert!(!API.try_acquire());
    /// tokio::time::sleep(Duration::from_secs(2)).await;
    /// assert!(API.try_acquire());
    /// assert!(!API.try_acquire()); // one token at the rate, not a burst
    /// # }
    /// ```
    pub fn pause(&self, duration: Duration) {
        #[cfg(feature = "redis")]
        if self.shared.is_shared() {
            self.shared.pause(self, duration);
        }
        let now = self.nanos_since_epoch(Instant::now());
        let until = now.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        // The arrival time at which exactly one token is free at `until`:
        // before it, a one-token take lands more than the burst ahead.
        let burst_but_one = u64::from(self.burst - 1);
        let tat = until.saturating_add(self.interval_ns.saturating_mul(burst_but_one));
        // Relaxed, as every other access to the arrival time (see `take`).
        self.tat.fetch_max(tat, Ordering::Relaxed);
    }

    /// A hint heard by a call that took a token: pauses everyone if this
    /// limiter was asked to (`pause_on_retry_after`), capped.
    ///
    /// `Duration::MAX` is not a time but a server's "do not retry this
    /// call" (how `steadfast::tonic::retry_after` reads a negative gRPC
    /// pushback): it ends that call and pauses no one.
    pub(crate) fn hinted(&self, hint: Duration) {
        if self.max_pause_ns == 0 || hint.is_zero() || hint == Duration::MAX {
            return;
        }
        self.pause(hint.min(Duration::from_nanos(self.max_pause_ns)));
    }
}
