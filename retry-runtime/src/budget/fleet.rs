//! A retry budget shared by replicas through Redis (feature `redis`): one
//! window for the whole fleet, fed in batches, spent from local leases.
//!
//! Why one window for the fleet (twenty local budgets allow a retry storm
//! twenty budgets wide) and what it measured: `docs/design.md`, "Beyond one
//! machine", retry budget.
//!
//! # Algorithm
//!
//! The fleet's window is one Redis hash per budget,
//! `{steadfast:rb:<key>}` (hash-tagged: one key, so the script works on
//! Cluster), with one field per tenth of `ttl` on **Redis's clock**
//! (`TIME`, so replicas' clocks do not matter): `d<slot>` counts the calls
//! flushed in that slot, `w<slot>` the retries granted in it. One Lua
//! script ([`SCRIPT`]) adds a replica's deposits, drops the slots older
//! than the window, sums the window (its oldest slot cut by the window's
//! edge, counted in proportion, as the local window does), grants up to the
//! retries asked for and returns them with the fleet's remaining allowance:
//! `min_per_second × ttl + ratio × deposits − withdrawals`.
//!
//! A call does not pay a round trip:
//!
//! - **Deposits are batched.** `deposit` is the local one, unchanged (a
//!   per-thread count added to the budget's counter every 32 calls). A
//!   replica sends what its counter collected every [`FLUSH_EVERY`]
//!   (100 ms) from a background task, and as soon as [`FLUSH_DEPOSITS`]
//!   (256) are waiting (checked when a thread's batch of 32 lands), in one
//!   `HINCRBY` inside the script: at most 10 round trips a second plus one
//!   per 256 calls, whatever the call rate, and none for an idle replica.
//! - **Retries are leased.** A round trip also tops the replica's lease up
//!   to [`RetryBudget::lease`] retries (4 by default), counted as
//!   withdrawals in Redis when granted. `withdraw` takes from the lease with
//!   no I/O; once half of it is spent, a background round trip tops it up
//!   (the periodic flush tops it up too). When the fleet has nothing left,
//!   the replica does not ask again before the next flush.
//!
//! A withdrawal never waits on I/O. On an empty lease (the budget's first
//! moments, or a fleet out of retries) it refuses, and a top-up starts in
//! the background: refusing is the side that keeps the bound.
//!
//! # Accuracy
//!
//! Every retry a replica allows while Redis answers was granted by the
//! script, and the script grants only what the fleet's window allows. A
//! replica holds at most `lease` retries granted earlier, which it may
//! spend after their grant has left the window; so over any window of
//! `ttl` **the fleet's retries exceed the shared budget by at most replicas
//! × lease** (20 replicas × 4 = 80 over a default window that allows 100 +
//! 20% of the calls, instead of 20 × 100 + 20% for twenty local budgets).
//! The same leases are what an idle replica holds back: at most replicas ×
//! lease retries of the fleet's budget sit in leases, for `ttl` after their
//! grant. Deposits reach Redis up to one flush interval (plus a thread's
//! unflushed 31) late: they fund retries later (never earlier) than they
//! would locally, and count until `ttl` after their flush, so the window
//! may credit the calls of one flush interval more than `ttl` ago.
//! Deposits collected by a flush that fails are dropped (an undercount).
//! A round trip that times out on our side may still run on a server that
//! was only slow (paused, then resumed): its grant is recorded against the
//! fleet though no replica holds it, so the fleet gets a few fewer retries
//! (measured: 6 to 10 after a 400 ms pause) until they leave the window.
//! Both errors are on the safe side; the bound holds.
//!
//! `min_per_second` is **fleet-wide**: the reserve `min_per_second × ttl`
//! is the fleet's, not each replica's, so a fleet of quiet replicas shares
//! 10 retries a second by default; raise it for a large fleet of rarely
//! called replicas. Every instance sharing a key must be declared with the
//! same `ratio`, `min_per_second` and `ttl` (the script uses the caller's).
//!
//! # When Redis fails
//!
//! Round trips are bounded by the Redis timeout and a circuit around Redis
//! (see [`crate::redis`]); they run on the client's background runtime,
//! never in `withdraw`. While Redis is unavailable, a withdrawal first
//! spends what the lease still holds (granted by the fleet), then decides
//! by the instance's [`Fallback`]: by default [`Fallback::Local`], the
//! budget's own window on this replica alone (bounded: each replica allows
//! at most its own `min_per_second × ttl + ratio × its calls`), which has
//! counted this replica's calls and retries all along, shared or not.
//! Every such decision is counted ([`RetryBudget::degraded_decisions`]) and
//! reported by the shared component (`redis/share.rs`), and a background
//! probe every `retry_after` restores sharing when Redis answers again. The
//! fleet's window follows Redis's clock; the budget's own window, as a
//! local budget's, follows tokio's.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::shared::Shared;
use super::window;
use super::{RetryBudget, SCALE};
use crate::redis::share::{self, Kind, Link, Share};
use crate::redis::{Fallback, Redis};

/// How often a replica sends its deposits (and tops its lease up) in the
/// background.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// How many collected deposits make a replica send them before the next
/// periodic flush.
pub(super) const FLUSH_DEPOSITS: usize = 256;

/// `State::allowance` before Redis first answered.
const NO_ANSWER: i64 = i64::MIN;

/// Retries a replica leases by default.
const DEFAULT_LEASE: u32 = 4;

/// The shortest slot the script works with, in microseconds (a `ttl` of
/// 10 ms).
const MIN_SLOT_US: u64 = 1_000;

/// One step of the fleet's window, run atomically by Redis.
///
/// `KEYS[1]`: the hash `{steadfast:rb:<key>}`. `ARGV`: slot length (µs),
/// deposits to add, retries wanted, ratio, reserve (`min_per_second ×
/// ttl`, in retries). Returns `{granted, allowance}`: the retries granted
/// (in `0..=wanted`) and what the fleet's window still allows after them
/// (rounded down; negative while leases exceed it).
///
/// Slot numbers are microseconds since 1970 divided by the slot length,
/// printed with `%d`: exact in Lua's doubles.
pub(super) const SCRIPT: &str = r"
local now = now_us
local slot = tonumber(ARGV[1])
local deposits = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local ratio = tonumber(ARGV[4])
local reserve = tonumber(ARGV[5])
local cur = math.floor(now / slot)
if deposits > 0 then
  redis.call('HINCRBY', KEYS[1], 'd' .. string.format('%d', cur), deposits)
end
-- The window is (now - 10 slots, now]: slots cur-9..cur whole, and the
-- oldest, cur-10, for the share of it still inside.
local oldest = cur - 10
local share = ((cur + 1) * slot - now) / slot
local d, w = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local name = fields[i]
  local s = tonumber(string.sub(name, 2))
  if s == nil or s < oldest then
    redis.call('HDEL', KEYS[1], name)
  else
    local n = tonumber(fields[i + 1])
    if s == oldest then n = n * share end
    if string.sub(name, 1, 1) == 'd' then d = d + n else w = w + n end
  end
end
local available = math.floor(reserve + ratio * d - w + 1e-9)
local granted = 0
if available > 0 and want > 0 then
  granted = math.min(available, want)
  redis.call('HINCRBY', KEYS[1], 'w' .. string.format('%d', cur), granted)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(slot * 11 / 1000) + 1000)
return {granted, available - granted}
";

/// Hashed once (see `share::script`).
static WINDOW: LazyLock<redis::Script> = LazyLock::new(|| share::script(SCRIPT));

/// The part of a [`RetryBudget`] that makes it shared: empty (and unused)
/// for a local one. Its knob is the lease's size.
pub(super) type Fleet = Share<State>;

static KIND: Kind = Kind {
    prefix: "rb",
    primitive: "retry_budget",
    degraded: "shared retry budget degraded: Redis unavailable, deciding by the fallback",
};

/// A shared budget's own state on its link.
pub(super) struct State {
    /// The budget's own window, this replica's alone: the fallback's
    /// budget, and where the calls to send to Redis are collected from.
    deposits: Arc<Shared>,
    /// Deposits collected from `deposits`, not yet sent to Redis.
    unsent: AtomicU64,
    lease: Mutex<Lease>,
    /// The fleet's remaining allowance as of the last answer
    /// ([`NO_ANSWER`] before the first).
    allowance: AtomicI64,
    /// Retries per lease, at least 1.
    lease_size: u32,
    /// `ttl / 10`, in microseconds.
    slot_us: u64,
    ratio: f64,
    /// `min_per_second × ttl`, in retries: the fleet's reserve.
    reserve: f64,
    /// How long an exhausted fleet is not asked again.
    cooldown: Duration,
}

#[derive(Debug, Default)]
struct Lease {
    /// Granted by Redis, not yet spent.
    held: u32,
    /// A round trip is in flight (at most one per budget).
    in_flight: bool,
    /// The fleet granted less than asked: no top-up before this.
    exhausted_until: Option<Instant>,
}

impl Lease {
    fn exhausted(&self, now: Instant) -> bool {
        self.exhausted_until.is_some_and(|until| now < until)
    }
}

impl Fleet {
    /// After a thread's batch of deposits landed in the budget's counter:
    /// starts a flush once enough are waiting.
    #[inline]
    pub(super) fn deposited(&self, budget: &RetryBudget) {
        if self.is_shared() {
            self.deposited_shared(budget);
        }
    }

    #[cold]
    #[inline(never)]
    fn deposited_shared(&self, budget: &RetryBudget) {
        let state = self.state(budget);
        if state.deposits.pending() >= FLUSH_DEPOSITS && state.redis().health().is_healthy() {
            state.start_round_trip();
        }
    }

    fn state(&self, budget: &RetryBudget) -> &Arc<Link<State>> {
        let mut first = false;
        let state = self.link(&KIND, || {
            first = true;
            let slot_us = u64::try_from(budget.ttl.as_micros() / u128::from(window::SLOTS))
                .unwrap_or(u64::MAX)
                .max(MIN_SLOT_US);
            State {
                deposits: Arc::clone(budget.counter(tokio::time::Instant::now())),
                unsent: AtomicU64::new(0),
                lease: Mutex::new(Lease::default()),
                allowance: AtomicI64::new(NO_ANSWER),
                lease_size: self.size_or(DEFAULT_LEASE),
                slot_us,
                ratio: budget.ratio,
                reserve: f64::from(budget.min_per_second) * budget.ttl.as_secs_f64(),
                cooldown: FLUSH_EVERY
                    .min(Duration::from_micros(slot_us))
                    .max(Duration::from_millis(1)),
            }
        });
        if first {
            state.spawn_task(flush_periodically);
            // The first lease, so that the first retry finds one.
            state.start_round_trip();
        }
        state
    }

    /// [`RetryBudget::withdraw`] for a shared budget: never waits on I/O.
    pub(super) fn withdraw(&self, budget: &RetryBudget) -> bool {
        if budget.ttl.is_zero() {
            return false;
        }
        let state = self.state(budget);
        let redis = state.redis();
        // This thread's own deposits count at once, as on a local budget.
        if let Some(batch) = budget.own_batch() {
            state.deposits.deposit(batch);
        }
        state.collect();
        let now = Instant::now();
        let healthy = redis.health().is_healthy();
        let mut lease = state.lease();
        if lease.held > 0 {
            lease.held -= 1;
            // Top up once half is spent, so a steady retrier rarely finds
            // the lease empty.
            let top_up = healthy
                && lease.held.saturating_mul(2) <= state.lease_size
                && !lease.in_flight
                && !lease.exhausted(now);
            drop(lease);
            if top_up {
                state.start_round_trip();
            }
            state.local(budget, false);
            return true;
        }
        if healthy {
            // `start_round_trip` does nothing while one is in flight.
            let ask = !lease.exhausted(now);
            drop(lease);
            if ask {
                state.start_round_trip();
            }
            return false;
        }
        // Redis is down: the probe that restores sharing runs in the
        // background; this decision is the fallback's, now.
        let probe = !lease.in_flight
            && redis
                .health()
                .claim_probe(now, redis.retry_after_duration());
        drop(lease);
        if probe {
            state.start_round_trip();
        }
        state.degraded();
        match state.fallback() {
            Fallback::Local => state.local(budget, true),
            Fallback::Allow => state.local(budget, false),
            Fallback::Deny => false,
        }
    }
}

impl State {
    fn lease(&self) -> MutexGuard<'_, Lease> {
        // Every update leaves the lease consistent: nothing to repair after
        // a panic elsewhere.
        self.lease.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the deposits the budget's window has placed to the next round
    /// trip to Redis.
    fn collect(&self) {
        let n = self.deposits.take() as u64;
        if n > 0 {
            self.unsent.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The budget's own window: decides (`decide`) as a local budget would,
    /// or only counts a retry allowed otherwise.
    fn local(&self, budget: &RetryBudget, decide: bool) -> bool {
        self.deposits
            .withdraw(None, decide, budget.reserve(), budget.deposit_amount, SCALE)
    }
}

impl Link<State> {
    /// Starts one round trip in the background unless one is in flight.
    fn start_round_trip(self: &Arc<Self>) {
        let mut lease = self.lease();
        if lease.in_flight {
            return;
        }
        // The lease stays locked until `in_flight` is set: the round trip
        // cannot land first.
        lease.in_flight = self.spawn(Self::round_trip);
    }

    /// Sends the collected deposits, and asks for the lease to be topped up
    /// unless the fleet said it is exhausted. `in_flight` is set.
    async fn round_trip(self: Arc<Self>) {
        self.collect();
        let deposits = self.unsent.swap(0, Ordering::Relaxed);
        let want = {
            let lease = self.lease();
            if lease.exhausted(Instant::now()) {
                0
            } else {
                self.lease_size.saturating_sub(lease.held)
            }
        };
        let key = self.key().to_owned();
        let (slot_us, ratio, reserve) = (self.slot_us, self.ratio, self.reserve);
        let answer: Result<(u32, i64), _> = self
            .redis()
            .call(|mut connection| async move {
                WINDOW
                    .key(key)
                    .arg(slot_us)
                    .arg(deposits)
                    .arg(want)
                    .arg(ratio)
                    .arg(reserve)
                    .invoke_async(&mut connection)
                    .await
            })
            .await;
        let mut lease = self.lease();
        lease.in_flight = false;
        // An error is recorded by `call` in the circuit around Redis; the
        // deposits it carried are dropped (an undercount, the safe side).
        if let Ok((granted, allowance)) = answer {
            lease.held = lease.held.saturating_add(granted);
            lease.exhausted_until = (granted < want).then(|| Instant::now() + self.cooldown);
            self.allowance.store(allowance, Ordering::Relaxed);
        }
    }
}

/// Sends the deposits every [`FLUSH_EVERY`], tops the lease up, and probes
/// Redis while it is down; ends when the budget is dropped.
async fn flush_periodically(state: Weak<Link<State>>) {
    let mut ticks = tokio::time::interval(FLUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        state.collect();
        let now = Instant::now();
        let redis = state.redis();
        let go = if redis.health().is_healthy() {
            let lease = state.lease();
            let top_up = lease.held < state.lease_size && !lease.exhausted(now);
            !lease.in_flight && (top_up || state.unsent.load(Ordering::Relaxed) > 0)
        } else {
            !state.lease().in_flight
                && redis
                    .health()
                    .claim_probe(now, redis.retry_after_duration())
        };
        if go {
            state.start_round_trip();
        }
    }
}

impl RetryBudget {
    /// Shares this budget with every instance, in any process, declared
    /// with the same `key` on the same Redis: the window, its deposits and
    /// its withdrawals are then the fleet's, so an outage's retries are
    /// bounded fleet-wide (`min_per_second × ttl + ratio × the fleet's
    /// calls`, plus at most replicas × [`lease`](RetryBudget::lease)). A
    /// `const fn`, so the budget stays a `static`; nothing connects before
    /// the first call.
    ///
    /// `deposit` stays a per-thread count; deposits are sent in the
    /// background every 100 ms (or 256 calls) and retries are leased a few
    /// at a time, so neither `deposit` nor `withdraw` waits on Redis. When
    /// Redis is unavailable, withdrawals follow
    /// [`when_redis_fails`](RetryBudget::when_redis_fails) (by default
    /// this replica's own window), counted and reported. Every instance
    /// sharing a key must be declared with the same `ratio`,
    /// `min_per_second` and `ttl`; `min_per_second` is the fleet's. See
    /// the module docs of [`redis`](crate::redis) for the client.
    ///
    /// ```no_run
    /// use retry_runtime::RetryBudget;
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env("REDIS_URL");
    /// static BUDGET: RetryBudget = RetryBudget::new().shared(&REDIS, "payments-api");
    ///
    /// BUDGET.deposit();
    /// if BUDGET.withdraw() {
    ///     // retry
    /// }
    /// ```
    #[must_use]
    pub const fn shared(mut self, redis: &'static Redis, key: &'static str) -> Self {
        self.fleet.set(redis, key);
        self
    }

    /// [`shared`](RetryBudget::shared) for a key known only at run time: a
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
    /// use retry_runtime::{Keyed, RetryBudget};
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env("REDIS_URL");
    /// // One retry budget per downstream host, for the whole fleet.
    /// static PER_HOST: Keyed<String, RetryBudget> =
    ///     Keyed::new(|host| RetryBudget::new().shared_as(&REDIS, format!("host:{host}")));
    ///
    /// PER_HOST.get("db.internal").deposit();
    /// ```
    #[must_use]
    pub fn shared_as(mut self, redis: &'static Redis, key: impl Into<String>) -> Self {
        self.fleet.set_owned(redis, key.into());
        self
    }

    /// What this shared budget does when Redis cannot be reached, times out
    /// or errors, once its lease is spent: [`Fallback::Local`] by default
    /// (this replica's own window, as an unshared budget),
    /// [`Fallback::Allow`] (every retry) or [`Fallback::Deny`] (none). No
    /// effect on a budget that is not shared.
    #[must_use]
    pub const fn when_redis_fails(mut self, fallback: Fallback) -> Self {
        self.fleet.set_fallback(fallback);
        self
    }

    /// How many retries one round trip may lease for this replica to allow
    /// with no I/O (4 by default, which 0 also means). Larger leases mean
    /// fewer round trips during an outage and a looser bound: the fleet's
    /// retries exceed the shared budget by at most replicas × lease per
    /// window. No effect on a budget that is not shared.
    #[must_use]
    pub const fn lease(mut self, retries: u32) -> Self {
        self.fleet.set_size(retries);
        self
    }

    /// How many withdrawals this shared budget decided by its
    /// [`Fallback`] because Redis was unavailable; always 0 for a local
    /// budget.
    pub fn degraded_decisions(&self) -> u64 {
        self.fleet.degraded_decisions()
    }

    /// How many round trips to Redis this shared budget has started; always
    /// 0 for a local budget.
    pub fn redis_round_trips(&self) -> u64 {
        self.fleet.round_trips()
    }

    /// What the fleet's window still allowed after the last round trip
    /// (retries, leases deducted; negative while leases exceed it); `None`
    /// for a local budget or before the first answer.
    pub fn fleet_allowance(&self) -> Option<i64> {
        let allowance = self.fleet.get()?.allowance.load(Ordering::Relaxed);
        (allowance != NO_ANSWER).then_some(allowance)
    }
}
