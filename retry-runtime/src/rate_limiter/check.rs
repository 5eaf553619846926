//! Takes that say when to come back: `check`, `check_n` and [`NotUntil`],
//! named and shaped as in governor so that its users find them where they
//! expect.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::RateLimiter;
use crate::error::InsufficientCapacity;

/// The answer of [`RateLimiter::check`] and [`RateLimiter::check_n`] when the
/// tokens are not available yet: the earliest instant at which they would be,
/// if nobody else takes them first.
///
/// As governor's type of the same name: [`earliest_possible`](NotUntil::earliest_possible)
/// is an instant on tokio's clock (so `tokio::time::sleep_until` can wait
/// for it, and a paused test clock drives it), and
/// [`wait_time_from`](NotUntil::wait_time_from) is how long that is from a
/// given instant. Nothing is reserved: after the wait, take the tokens again
/// (another caller may have taken them in the meantime).
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::RateLimiter;
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// static API: RateLimiter = RateLimiter::per_second(10).burst(1);
///
/// assert!(API.check().is_ok());
/// let not_until = API.check().unwrap_err();
/// assert_eq!(not_until.wait_time_from(Instant::now()), Duration::from_millis(100));
/// tokio::time::sleep_until(not_until.earliest_possible()).await;
/// assert!(API.check().is_ok());
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotUntil {
    /// When the limiter was consulted, on tokio's clock.
    at: Instant,
    /// How long after `at` the tokens would be available.
    wait: Duration,
}

impl NotUntil {
    /// The earliest instant, on tokio's clock, at which the tokens asked
    /// for would be available if nobody else takes them first.
    ///
    /// ```
    /// use retry_runtime::RateLimiter;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let limiter = RateLimiter::per_minute(1);
    /// let before = tokio::time::Instant::now();
    /// assert!(limiter.check().is_ok());
    /// let not_until = limiter.check().unwrap_err();
    /// assert_eq!(not_until.earliest_possible(), before + std::time::Duration::from_secs(60));
    /// # }
    /// ```
    pub fn earliest_possible(&self) -> Instant {
        // A wait is at most `u64::MAX` nanoseconds (584 years), which every
        // platform's monotonic instant can add without overflow.
        self.at + self.wait
    }

    /// How long from `now` until [`earliest_possible`](NotUntil::earliest_possible):
    /// zero once it has passed. Exact to the nanosecond, with no rounding to
    /// the timer's tick.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::RateLimiter;
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let limiter = RateLimiter::per_second(4).burst(1);
    /// assert!(limiter.check().is_ok());
    /// let not_until = limiter.check().unwrap_err();
    /// let now = Instant::now();
    /// assert_eq!(not_until.wait_time_from(now), Duration::from_millis(250));
    /// assert_eq!(not_until.wait_time_from(now + Duration::from_millis(100)), Duration::from_millis(150));
    /// assert_eq!(not_until.wait_time_from(now + Duration::from_secs(1)), Duration::ZERO);
    /// # }
    /// ```
    pub fn wait_time_from(&self, now: Instant) -> Duration {
        if now >= self.at {
            self.wait.saturating_sub(now - self.at)
        } else {
            self.wait.saturating_add(self.at - now)
        }
    }
}

impl fmt::Display for NotUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limited: next token in {:?}", self.wait)
    }
}

impl std::error::Error for NotUntil {}

impl RateLimiter {
    /// Takes one token if one is available now, or says when one will be:
    /// [`try_acquire`](RateLimiter::try_acquire) for callers that back off
    /// precisely (governor's `check`).
    ///
    /// Never waits. On `Err`, nothing was taken; the [`NotUntil`] gives the
    /// instant and the wait until a token, exact to the nanosecond.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::RateLimiter;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static API: RateLimiter = RateLimiter::per_second(10).burst(1);
    ///
    /// assert!(API.check().is_ok());
    /// match API.check() {
    ///     Ok(()) => unreachable!("the only token was just taken"),
    ///     Err(not_until) => {
    ///         let wait = not_until.wait_time_from(tokio::time::Instant::now());
    ///         assert_eq!(wait, Duration::from_millis(100));
    ///     }
    /// }
    /// # }
    /// ```
    pub fn check(&self) -> Result<(), NotUntil> {
        let at = Instant::now();
        self.take(1, at).map_err(|wait| NotUntil { at, wait })
    }

    /// Takes `n` tokens at once if they are all available now, or says why
    /// not: [`try_acquire_n`](RateLimiter::try_acquire_n) with reasons, in the
    /// shape of governor's `check_n`.
    ///
    /// - `Err(InsufficientCapacity)`: `n` exceeds the burst, so no wait would
    ///   ever be enough.
    /// - `Ok(Err(NotUntil))`: the tokens are not all there yet; the
    ///   [`NotUntil`] says when they will be.
    /// - `Ok(Ok(()))`: all `n` were taken (at once for `n = 0`).
    ///
    /// Never waits, and takes nothing unless it takes all `n`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{InsufficientCapacity, RateLimiter};
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let limiter = RateLimiter::per_second(10); // burst 10
    ///
    /// assert_eq!(limiter.check_n(11), Err(InsufficientCapacity::new(10)));
    /// assert_eq!(limiter.check_n(10), Ok(Ok(())));
    /// let not_until = limiter.check_n(3).unwrap().unwrap_err();
    /// assert_eq!(not_until.wait_time_from(Instant::now()), Duration::from_millis(300));
    /// # }
    /// ```
    pub fn check_n(&self, n: u32) -> Result<Result<(), NotUntil>, InsufficientCapacity> {
        if !self.needs_tokens(n)? {
            return Ok(Ok(()));
        }
        let at = Instant::now();
        Ok(self.take(n, at).map_err(|wait| NotUntil { at, wait }))
    }
}
