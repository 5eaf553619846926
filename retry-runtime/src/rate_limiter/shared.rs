//! A rate limit shared by replicas through Redis: leases of the global
//! bucket handed out locally, cached refusals, and the fallback policy.
//! The algorithm, its round trips and its accuracy bound (replicas × lease
//! tokens over the global limit) are told for users in the `redis`
//! module's docs and for us in `docs/design.md` ("Beyond one machine");
//! what follows is what the code below must keep true.
//!
//! - Every token handed out was granted by Redis ([`script::GCRA`], on
//!   Redis's clock), and a lease never holds more than `lease` of them:
//!   that is the accuracy bound.
//! - A refusal Redis answers is cached (`over_until`): no round trip until
//!   it expires.
//! - A take on an empty lease never waits on I/O but for an instance's
//!   first (`Decision::First`): it starts a refill and refuses, since
//!   refusing keeps the bound. The first take waits for an answer that
//!   decides it (bounded by twice the Redis timeout plus 10 ms), because
//!   before any answer a refusal would be false: every new tenant's first
//!   request a 429. Deciding by the local bucket instead would let every
//!   new instance admit its whole burst on top of the fleet's limit.
//! - `acquire*` and the blocking calls wait for the refill (woken when it
//!   lands, never past their `max_wait`), then for a cached refusal to
//!   expire; the attribute's `rate_limit = &LIMIT` polls every 1 ms.

mod script;

use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::RateLimiter;
use crate::error::Rejected;
use crate::redis::share::{self, Kind, Link, Share};
use crate::redis::{Fallback, Redis};

/// The largest default lease. A top-up is asked for once three quarters
/// are spent, so a round trip brings about 12 of 16 tokens: 0.08 round
/// trips per admitted call at steady state (at 10 it was 0.125), for a
/// bound of 16 tokens per replica over the global limit.
const DEFAULT_LEASE_CAP: u32 = 16;

/// How long a caller that cannot wait for a refill in flight is told to
/// come back after (the attribute's admission loop sleeps this long).
const REFILL_POLL: Duration = Duration::from_millis(1);

/// Hashed once (see `share::script`).
static GCRA: LazyLock<redis::Script> = LazyLock::new(|| share::script(script::GCRA));
static PAUSE: LazyLock<redis::Script> = LazyLock::new(|| share::script(script::PAUSE));

/// The part of a [`RateLimiter`] that makes it shared: empty (and unused)
/// for a local one. Its knob is the lease's size.
pub(crate) type Shared = Share<State>;

static KIND: Kind = Kind {
    prefix: "rl",
    primitive: "rate_limiter",
    degraded: "shared rate limit degraded: Redis unavailable, deciding by the fallback",
};

/// A shared limiter's own state on its link: the lease, and how callers
/// waiting for a refill are woken.
#[derive(Debug)]
pub(crate) struct State {
    lease: Mutex<Lease>,
    /// Wakes blocked callers when a refill lands.
    refilled: Condvar,
    /// Wakes async callers when a refill lands.
    notify: Notify,
}

#[derive(Debug, Default)]
struct Lease {
    /// Granted by Redis, not yet handed out.
    held: u32,
    /// A round trip is in flight (at most one per instance).
    refilling: bool,
    /// Redis said the tokens last asked for are not free before this: no
    /// round trip until then.
    over_until: Option<Instant>,
    /// A round trip has landed (answered or failed): until then a take
    /// that finds the lease empty waits for it (see `first_answer`).
    landed_once: bool,
    /// When the fleet's bucket would be full again, as of the last answer
    /// (what `RateLimiter::quota` starts from).
    full_at: Option<Instant>,
}

impl State {
    fn lease(&self) -> MutexGuard<'_, Lease> {
        // Every update leaves the lease consistent: nothing to repair after
        // a panic elsewhere.
        self.lease.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refill_landed(&self) {
        self.refilled.notify_all();
        self.notify.notify_waiters();
    }
}

/// What one look at the lease decided.
enum Decision {
    Granted,
    /// Not before this long (the global bucket's answer, or the fallback's).
    Wait(Duration),
    /// A refill is in flight: its answer decides.
    Pending,
    /// A refill is in flight and none has landed yet: nothing is known of
    /// the fleet's bucket (see `first_answer`). Decided under the same lock
    /// as the look, because the refill can land before the caller acts on
    /// this answer: read afterwards, `landed_once` would turn a new
    /// instance's first take into a refusal.
    First,
}

impl RateLimiter {
    /// Shares this limit with every instance, in any process, declared with
    /// the same `key` on the same Redis: the rate and burst are then those
    /// of the fleet, not of each replica. A `const fn`, so the limiter stays
    /// a `static`; nothing connects before the first call.
    ///
    /// Every call works as on a local limiter (async, blocking, weighted,
    /// the attribute's `rate_limit = &LIMIT`); see the
    /// [`redis`](crate::redis) module for the round trips, the accuracy bound
    /// (exceeded by at most replicas × [`lease`](RateLimiter::lease) tokens)
    /// and what an empty lease does. Every instance sharing a key must be
    /// declared with the same rate and burst. Time follows Redis's clock,
    /// so a paused tokio test clock does not drive a shared limiter.
    ///
    /// ```no_run
    /// use retry_runtime::RateLimiter;
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env("REDIS_URL");
    /// static PARTNER: RateLimiter = RateLimiter::per_second(100).burst(20).shared(&REDIS, "payments-api");
    ///
    /// # #[tokio::main] async fn main() {
    /// PARTNER.acquire().await;
    /// # }
    /// ```
    #[must_use]
    pub const fn shared(mut self, redis: &'static Redis, key: &'static str) -> Self {
        self.shared.set(redis, key);
        self
    }

    /// [`shared`](RateLimiter::shared) for a key known only at run time: a
    /// tenant, an API key, a host. Not `const`; build it where the key is
    /// known, typically in a [`Keyed`](crate::Keyed) factory, which is
    /// given the key. The key may come from a request: any key works, and
    /// one that is long or holds other characters than letters, digits and
    /// `. _ - : @ /` is hashed into the name on Redis (SHA-256), so no key
    /// can break the name's hash tag, take another key's name or make a
    /// long one. Redis forgets a key once its state means nothing any more,
    /// so a million keys used once leave nothing behind.
    ///
    /// ```no_run
    /// use retry_runtime::{Keyed, RateLimiter};
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env("REDIS_URL");
    /// // 100 a second per tenant, for the whole fleet.
    /// static PER_TENANT: Keyed<String, RateLimiter> = Keyed::new(|tenant| {
    ///     RateLimiter::per_second(100).shared_as(&REDIS, format!("tenant:{tenant}"))
    /// });
    ///
    /// let _ = PER_TENANT.get("acme").try_acquire();
    /// ```
    #[must_use]
    pub fn shared_as(mut self, redis: &'static Redis, key: impl Into<String>) -> Self {
        self.shared.set_owned(redis, key.into());
        self
    }

    /// What this shared limiter does when Redis cannot be reached, times
    /// out or errors ([`Fallback::Local`] by default: this replica enforces
    /// the full limit alone). No effect on a limiter that is not shared.
    ///
    /// ```
    /// use retry_runtime::RateLimiter;
    /// use retry_runtime::redis::{Fallback, Redis};
    ///
    /// static REDIS: Redis = Redis::new("redis://127.0.0.1:6379");
    /// // A hard partner quota: better refuse than exceed it.
    /// static QUOTA: RateLimiter = RateLimiter::per_second(50)
    ///     .shared(&REDIS, "partner")
    ///     .when_redis_fails(Fallback::Deny);
    /// ```
    #[must_use]
    pub const fn when_redis_fails(mut self, fallback: Fallback) -> Self {
        self.shared.set_fallback(fallback);
        self
    }

    /// How many tokens one round trip may take for this replica to hand out
    /// locally (default `min(burst / 4, 16)`, at least 1; capped at the
    /// burst). Larger leases mean fewer round trips and a looser bound: the
    /// global limit is exceeded by at most replicas × lease. `1` makes every
    /// admitted call a round trip and the limit exact.
    #[must_use]
    pub const fn lease(mut self, tokens: u32) -> Self {
        self.shared.set_size(tokens);
        self
    }

    /// How many decisions this shared limiter took by its [`Fallback`]
    /// because Redis was unavailable; always 0 for a local limiter.
    pub fn degraded_decisions(&self) -> u64 {
        self.shared.degraded_decisions()
    }

    /// How many round trips to Redis this shared limiter has started: with
    /// [`degraded_decisions`](RateLimiter::degraded_decisions), what its
    /// sharing costs. Always 0 for a local limiter.
    pub fn redis_round_trips(&self) -> u64 {
        self.shared.round_trips()
    }
}

impl Shared {
    fn state(&self) -> &Arc<Link<State>> {
        self.link(&KIND, || State {
            lease: Mutex::new(Lease::default()),
            refilled: Condvar::new(),
            notify: Notify::new(),
        })
    }

    fn lease_size(&self, limiter: &RateLimiter) -> u32 {
        self.size_or((limiter.burst / 4).min(DEFAULT_LEASE_CAP))
            .clamp(1, limiter.burst)
    }

    /// Takes `n` tokens (`1 <= n <= burst`) without waiting on I/O: the
    /// shared counterpart of the local GCRA step.
    pub(super) fn take(&self, limiter: &RateLimiter, n: u32) -> Result<(), Duration> {
        match self.decide(limiter, n) {
            Decision::Granted => Ok(()),
            Decision::Wait(wait) => Err(wait),
            Decision::Pending => Err(REFILL_POLL),
            Decision::First => self.first_answer(limiter, n),
        }
    }

    /// A take that found the lease empty and a refill in flight: a
    /// refusal, except before the instance's first round trip has landed
    /// (a new instance, a new key, a restart). Refusing then would answer
    /// "no" with the fleet far under its limit: every new tenant's first
    /// request a 429. So that one waits for an answer that decides it,
    /// bounded like every refill (twice the Redis timeout, plus 10 ms): the
    /// first, or the next if the first failed while Redis answered other
    /// instances of the same client (the circuit around Redis is closed
    /// again, so deciding starts another refill). If the bound passes
    /// first, it decides as when Redis is down, by the fallback (counted
    /// as degraded).
    #[cold]
    fn first_answer(&self, limiter: &RateLimiter, n: u32) -> Result<(), Duration> {
        let state = self.state();
        let until = Instant::now() + self.refill_bound();
        loop {
            {
                let mut lease = state.lease();
                // Checked once even when nothing is in flight: a refill that
                // could not start leaves none to wait for.
                while lease.refilling || Instant::now() >= until {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        // No answer in time (Redis slow, or the client's
                        // runtime starved): as good as down, for this
                        // decision.
                        drop(lease);
                        return match Self::degraded(limiter, state, n) {
                            Decision::Granted => Ok(()),
                            Decision::Wait(wait) => Err(wait),
                            Decision::Pending | Decision::First => Err(REFILL_POLL),
                        };
                    }
                    lease = state
                        .refilled
                        .wait_timeout(lease, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            match self.decide(limiter, n) {
                Decision::Granted => return Ok(()),
                Decision::Wait(wait) => return Err(wait),
                // The first round trip failed and another is in flight.
                Decision::Pending | Decision::First => {}
            }
        }
    }

    fn decide(&self, limiter: &RateLimiter, n: u32) -> Decision {
        let state = self.state();
        let redis = state.redis();
        let now = Instant::now();
        let size = self.lease_size(limiter);
        let mut lease = state.lease();
        if lease.held >= n {
            lease.held -= n;
            // Top the lease up before it runs dry, so that a steady caller
            // does not meet an empty one.
            let over = lease.over_until.is_some_and(|until| now < until);
            if lease.held * 4 <= size && !lease.refilling && !over && redis.health().is_healthy() {
                let want = size - lease.held;
                self.refill(state, &mut lease, limiter, want, want);
            }
            return Decision::Granted;
        }
        if !redis.health().is_healthy() {
            // The probe that will restore sharing runs in the background;
            // this decision is the fallback's, now.
            if !lease.refilling
                && redis
                    .health()
                    .claim_probe(now, redis.retry_after_duration())
            {
                let need = n - lease.held;
                let want = size.max(n) - lease.held;
                self.refill(state, &mut lease, limiter, need, want);
            }
            drop(lease);
            return Self::degraded(limiter, state, n);
        }
        if let Some(until) = lease.over_until {
            if now < until {
                return Decision::Wait(until - now);
            }
        }
        if !lease.refilling {
            // Enough for this take and the lease topped up with it, or
            // nothing: asking for a whole lease even when fewer tokens are
            // free makes a saturated bucket cost one round trip per lease,
            // not one per token. The take itself happens when the refill
            // lands (a later look).
            let want = size.max(n) - lease.held;
            self.refill(state, &mut lease, limiter, want, want);
        }
        if lease.landed_once {
            Decision::Pending
        } else {
            Decision::First
        }
    }

    /// Starts one round trip asking for `need..=want` tokens, in the
    /// background; the answer lands in the lease and wakes waiters.
    fn refill(
        &self,
        state: &Arc<Link<State>>,
        lease: &mut Lease,
        limiter: &RateLimiter,
        need: u32,
        want: u32,
    ) {
        // Redis works in microseconds (see the script); rounding the
        // interval up admits slightly less than the rate, never more.
        let interval_us = limiter.interval_ns.div_ceil(1000).max(1);
        let capacity_us = interval_us.saturating_mul(u64::from(limiter.burst));
        // The caller holds the lease's lock: the round trip cannot land
        // before `refilling` is set.
        lease.refilling = state.spawn(move |state| async move {
            let key = state.key().to_owned();
            let answer: Result<(u32, u64, u64), _> = state
                .redis()
                .call(|mut connection| async move {
                    GCRA.key(key)
                        .arg(interval_us)
                        .arg(capacity_us)
                        .arg(need)
                        .arg(want)
                        .invoke_async(&mut connection)
                        .await
                })
                .await;
            {
                let mut lease = state.lease();
                lease.refilling = false;
                lease.landed_once = true;
                if let Ok((_, _, ahead_us)) = answer {
                    lease.full_at = Some(Instant::now() + Duration::from_micros(ahead_us));
                }
                match answer {
                    Ok((0, wait_us, _)) => {
                        lease.over_until = Some(Instant::now() + Duration::from_micros(wait_us));
                    }
                    Ok((granted, _, _)) => {
                        lease.held = lease.held.saturating_add(granted);
                        lease.over_until = None;
                    }
                    // Recorded by `call` in the circuit around Redis: the
                    // woken waiters fall back.
                    Err(_) => {}
                }
            }
            state.refill_landed();
        });
    }

    /// For [`RateLimiter::quota`]: how long until the fleet's bucket is
    /// full again, as of the last answer (a bucket never heard of is full),
    /// and the tokens this replica's lease holds.
    pub(super) fn standing(&self) -> (Duration, u32) {
        let state = self.state();
        let lease = state.lease();
        let ahead = lease.full_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        });
        (ahead, lease.held)
    }

    /// Shared backpressure (`RateLimiter::pause`, and so
    /// `pause_on_retry_after`): the global bucket gives no token to any
    /// replica before the pause ends. This replica gives up its lease and
    /// asks nothing of Redis until then; the others spend at most what
    /// their leases hold, then meet the pause at their next refill. One
    /// round trip, in the background; if Redis is down, the local bucket
    /// (the fallback's) is paused all the same.
    pub(super) fn pause(&self, limiter: &RateLimiter, duration: Duration) {
        let state = self.state();
        {
            let mut lease = state.lease();
            lease.held = 0;
            let until = Instant::now() + duration;
            lease.over_until = Some(lease.over_until.map_or(until, |over| over.max(until)));
        }
        if !state.redis().health().is_healthy() {
            return;
        }
        let pause_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let interval_us = limiter.interval_ns.div_ceil(1000).max(1);
        let capacity_us = interval_us.saturating_mul(u64::from(limiter.burst));
        state.spawn(move |state| async move {
            let key = state.key().to_owned();
            let _: Result<u32, _> = state
                .redis()
                .call(|mut connection| async move {
                    PAUSE
                        .key(key)
                        .arg(pause_us)
                        .arg(interval_us)
                        .arg(capacity_us)
                        .invoke_async(&mut connection)
                        .await
                })
                .await;
        });
    }

    /// A decision taken by the fallback policy, counted and reported.
    fn degraded(limiter: &RateLimiter, state: &Link<State>, n: u32) -> Decision {
        state.degraded();
        match state.fallback() {
            Fallback::Local => match limiter.take_local(n, tokio::time::Instant::now()) {
                Ok(()) => Decision::Granted,
                Err(wait) => Decision::Wait(wait),
            },
            Fallback::Allow => Decision::Granted,
            // Until the next probe could have restored sharing.
            Fallback::Deny => Decision::Wait(
                state
                    .redis()
                    .health()
                    .retry_in(Instant::now())
                    .max(REFILL_POLL),
            ),
        }
    }

    /// [`RateLimiter::wait_async`] for a shared limiter: sleeps for the
    /// global bucket's refusals, and wakes as soon as a refill lands.
    pub(super) async fn wait_async(
        &self,
        limiter: &RateLimiter,
        n: u32,
        max_wait: Option<Duration>,
    ) -> Result<(), Rejected> {
        let state = Arc::clone(self.state());
        let deadline = max_wait.and_then(|max_wait| Instant::now().checked_add(max_wait));
        loop {
            // Registered before looking, so a refill landing in between
            // still wakes this waiter.
            let landed = state.notify.notified();
            tokio::pin!(landed);
            landed.as_mut().enable();
            let wait = match self.decide(limiter, n) {
                Decision::Granted => return Ok(()),
                Decision::Wait(wait) => Some(wait),
                Decision::Pending | Decision::First => None,
            };
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            match wait {
                Some(wait) => {
                    if left.is_some_and(|left| wait > left) {
                        return Err(Rejected::new());
                    }
                    tokio::time::sleep(wait).await;
                }
                None => {
                    if left.is_some_and(|left| left.is_zero()) {
                        return Err(Rejected::new());
                    }
                    // A refill answers within the Redis timeout; the bound
                    // only guards against a lost wake-up.
                    let bound = self.refill_bound().min(left.unwrap_or(Duration::MAX));
                    let _ = tokio::time::timeout(bound, landed).await;
                }
            }
        }
    }

    /// [`RateLimiter::wait_blocking`] for a shared limiter.
    pub(super) fn wait_blocking(
        &self,
        limiter: &RateLimiter,
        n: u32,
        max_wait: Option<Duration>,
    ) -> Result<(), Rejected> {
        let state = Arc::clone(self.state());
        let deadline = max_wait.and_then(|max_wait| Instant::now().checked_add(max_wait));
        loop {
            let wait = match self.decide(limiter, n) {
                Decision::Granted => return Ok(()),
                Decision::Wait(wait) => Some(wait),
                Decision::Pending | Decision::First => None,
            };
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            match wait {
                Some(wait) => {
                    if left.is_some_and(|left| wait > left) {
                        return Err(Rejected::new());
                    }
                    std::thread::sleep(wait);
                }
                None => {
                    if left.is_some_and(|left| left.is_zero()) {
                        return Err(Rejected::new());
                    }
                    let bound = self.refill_bound().min(left.unwrap_or(Duration::MAX));
                    let until = Instant::now() + bound;
                    let mut lease = state.lease();
                    // The refill may have landed since `decide`: then this
                    // does not wait at all.
                    while lease.refilling {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        lease = state
                            .refilled
                            .wait_timeout(lease, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
        }
    }

    /// The longest a refill in flight can take: connecting and one call,
    /// each within the Redis timeout, and some slack.
    fn refill_bound(&self) -> Duration {
        self.state().redis().timeout_duration() * 2 + Duration::from_millis(10)
    }
}
