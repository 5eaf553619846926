//! Where a limiter stands: what the IETF `RateLimit` and `RateLimit-Policy`
//! fields, and a caller deciding whether to try, need to know.

use std::time::Duration;

use tokio::time::Instant;

use super::RateLimiter;

/// A limiter's standing at one instant: its policy (how many tokens fit in
/// the bucket, and how long an empty bucket takes to fill) and its state
/// (how many are left, and how long until the bucket is full again).
///
/// For a limiter shared through Redis this is this replica's view: the
/// fleet's bucket as of the last answer from Redis, refilled at the rate
/// since then, plus what this replica's lease holds; an estimate, exact
/// when the lease is empty and no other replica took tokens since.
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::RateLimiter;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let limiter = RateLimiter::per_second(10).burst(5);
/// assert!(limiter.try_acquire_n(2));
/// let quota = limiter.quota();
/// assert_eq!((quota.limit(), quota.remaining()), (5, 3));
/// assert_eq!(quota.window(), Duration::from_millis(500));
/// // Two tokens to earn back, one every 100 ms.
/// assert_eq!(quota.full_in(), Duration::from_millis(200));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    limit: u32,
    window: Duration,
    remaining: u32,
    full_in: Duration,
}

impl Quota {
    /// The bucket's size: the most tokens that can be taken at once.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How long an empty bucket takes to fill: `limit` tokens at the rate.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Tokens that could be taken now.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// How long until the bucket is full again (zero if it is).
    pub fn full_in(&self) -> Duration {
        self.full_in
    }
}

impl RateLimiter {
    /// Where this limiter stands now; see [`Quota`]. Takes nothing.
    pub fn quota(&self) -> Quota {
        #[cfg(feature = "redis")]
        if self.shared.is_shared() {
            let (ahead, held) = self.shared.standing();
            return self.quota_with(ahead, held);
        }
        let now = self.nanos_since_epoch(Instant::now());
        let tat = self.tat.load(std::sync::atomic::Ordering::Relaxed);
        self.quota_with(Duration::from_nanos(tat.saturating_sub(now)), 0)
    }

    /// The quota of a bucket whose TAT is `ahead` of now, with `held`
    /// tokens already taken out of it and not yet spent.
    pub(super) fn quota_with(&self, ahead: Duration, held: u32) -> Quota {
        let ahead_ns = u64::try_from(ahead.as_nanos()).unwrap_or(u64::MAX);
        let free = self.capacity_ns.saturating_sub(ahead_ns) / self.interval_ns.max(1);
        let free = u32::try_from(free).unwrap_or(u32::MAX);
        Quota {
            limit: self.burst,
            window: Duration::from_nanos(self.capacity_ns),
            remaining: free.saturating_add(held).min(self.burst),
            full_in: ahead,
        }
    }
}
