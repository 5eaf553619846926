//! A breaker shared by replicas through Redis (feature `redis`): the fleet
//! shares *evidence* of outages, never raw counters.
//!
//! Each replica keeps its own breaker, judged on its own calls, and shares
//! one fact, **"replica R opened, until T"**; a replica opens on the fleet's
//! word only when a [`quorum`](CircuitBreaker::quorum) of replicas holds
//! live evidence at once. Why evidence and not counters, and the
//! trade-offs: `docs/design.md`, "Beyond one machine", circuit breaker.
//!
//! # Keys
//!
//! One hash-tagged key per breaker, so the script never crosses Cluster
//! slots:
//!
//! - `{steadfast:cb:<key>}`: a sorted set, member = replica id (a random
//!   `u64` per breaker *instance*, so two instances in one process are two
//!   replicas), score = the end of that replica's open period in
//!   milliseconds on **Redis's clock** (`TIME`, inside the script: replicas'
//!   clocks do not matter). Expired members are removed by every script
//!   run; the key's TTL is kept at no less than twice the longest of
//!   `open_for` and the evidence just written, so it always outlives the
//!   open periods it records.
//! - `{steadfast:cb:<key>}:probe`: the half-open probe lease,
//!   `SET NX PX <ttl>` with the replica id, `ttl = max(open_for, 100 ms)`.
//!
//! # When a replica opens, probes, closes
//!
//! - **Its own trip** (or a failed probe's reopen, or `force_open_for`)
//!   publishes "opened until T". `force_open` (held until `reset`)
//!   publishes `open_for` of evidence, renewed while held.
//! - **The fleet's quorum**: a closed replica that sees at least `quorum`
//!   live pieces of evidence opens locally until the `quorum`-th latest
//!   expiry (the moment the quorum would lapse), and publishes nothing: an
//!   opening caused by the fleet is not new evidence, or the fleet would
//!   keep itself open. While so opened it follows the evidence: extended
//!   when the evidence is, and **closed** (its own state was closed) as
//!   soon as the evidence drops below the quorum, at the latest when the
//!   deadline it was opened for passes. It does not probe: the replicas
//!   that saw the failures do.
//! - **Half-open probes** need the fleet's lease: when a replica's own open
//!   period ends, its next call asks for the lease in the background and is
//!   refused until the lease is held (one round trip; a lease held by
//!   another replica is asked for again once its TTL ends or one `interval`
//!   later, whichever is sooner, not per call). So one
//!   replica probes at a time, and a crashed prober (or a probe permit
//!   dropped and never retried) blocks the others for one lease TTL at
//!   most. While it waits or probes, a replica keeps its evidence alive
//!   (for one lease TTL at a time), so the fleet stays open while the
//!   openers take turns. A successful probe closes the replica, withdraws
//!   its evidence and gives the lease back; a failed one reopens it with
//!   fresh evidence and gives the lease back.
//! - `disable`, `reset`, `enable` and a close withdraw the replica's
//!   evidence. A disabled or forced-open breaker is never opened by the
//!   fleet.
//!
//! # Round trips
//!
//! **None per call.** Each shared breaker has one task on the Redis client's
//! runtime that runs one script per wake-up: every `interval =
//! clamp(open_for / 10, 10 ms, 250 ms)` (the fleet's evidence is seen at
//! most that late), at once after a local transition (publishing it), and
//! when a probe wants the lease. The script publishes or withdraws this
//! replica's evidence, takes or gives back the lease, and returns the live
//! evidence; the task turns that into an *order* (open until, or close)
//! that the next call applies. So a shared breaker costs about
//! `1 / interval` round trips a second (4 a second with the default
//! `open_for`), whatever its traffic.
//!
//! Admitting a call stays lock-free and clock-free: a shared breaker reads
//! its `OnceLock`'s state, the order word and its state word (three atomic
//! loads, no write; a pending order costs one swap and one transition).
//!
//! # When Redis fails
//!
//! Each script run is bounded by [`Redis::timeout`], and the circuit around
//! Redis skips runs after a failure for [`Redis::retry_after`] (one
//! background probe then). Meanwhile, by default
//! ([`Fallback::Local`]), the breaker acts on its **local state only**: its
//! own trips still open it, a probe is admitted without the fleet's lease,
//! and a breaker opened by the fleet closes (its own state was closed).
//! With [`Fallback::Deny`]
//! ([`when_redis_fails`](CircuitBreaker::when_redis_fails)) it keeps what
//! the fleet decided instead: a fleet opening lasts to the deadline the
//! fleet gave it, and a replica whose open period ended stays open until it
//! can take the lease again; its own trips still open it, and Redis's
//! outage alone opens nothing. Calls never wait on Redis either way. Each
//! such decision (a missed refresh of the fleet's view, a probe admitted or
//! refused without the lease, a fleet opening dropped) is counted and
//! reported by the shared component (`redis/share.rs`), as for every
//! primitive shared through Redis.
//!
//! # Limits
//!
//! Besides the fleet's lag and `quorum(1)` (`docs/design.md`): a shared
//! breaker follows real time (Redis's clock and the OS's), not a paused
//! tokio test clock, and opening by the fleet clears the replica's own
//! counts (a failure streak in progress starts over when it closes).

mod script;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::CircuitBreaker;
use super::config::Config;
use super::state::{Gate, HELD, Order, State};
use super::view::{
    CLOSED, DISABLED, HALF_OPEN, OPEN_FLEET, OPEN_HELD, OPEN_LOCAL, Sent, Turn, View,
};
use crate::redis::share::{self, Kind, Link, Share};
use crate::redis::{Fallback, Redis};

/// Hashed once (see `share::script`).
static SYNC: LazyLock<redis::Script> = LazyLock::new(|| share::script(script::SYNC));

/// Replicas with live evidence that open a closed replica by default.
const DEFAULT_QUORUM: u32 = 2;

// Orders from the background task to the next call.
const NO_ORDER: u64 = 0;
const ORDER_CLOSE: u64 = 1;
/// An order to open until `born + (order - ORDER_OPEN)` nanoseconds.
const ORDER_OPEN: u64 = 2;

/// The part of a breaker that makes it shared: empty (and unused) for a
/// local one. Its knob is the quorum.
///
/// The machine (`machine.rs`) calls it with plain values (its `Config`, its
/// clock) and applies the [`Order`]s it returns, so this file needs nothing
/// of the machine's: the two do not import each other.
pub(super) type Shared = Share<Inner>;

static KIND: Kind = Kind {
    prefix: "cb",
    primitive: "circuit_breaker",
    degraded: "shared circuit breaker degraded: Redis unavailable, deciding without the fleet",
};

/// A shared breaker's own state on its link.
pub(super) struct Inner {
    /// This instance's id in the evidence and the lease.
    replica: String,
    quorum: u32,
    open_ms: u64,
    lease_ms: u64,
    interval: Duration,
    /// Wakes the background task: a transition, or a probe wanting the
    /// lease.
    wake: Notify,
    /// From the task to the next call: `NO_ORDER`, `ORDER_CLOSE`, or
    /// `ORDER_OPEN + deadline`.
    order: AtomicU64,
    /// The machine's mode, set after each transition, and the probe lease
    /// (`view.rs`).
    view: View,
    /// The end of this replica's own open period (`OPEN_LOCAL`).
    deadline: AtomicU64,
    /// The deadline of the fleet's opening taken last.
    fleet_deadline: AtomicU64,
}

impl CircuitBreaker {
    /// The replicas with live "opened" evidence that open a closed shared
    /// breaker: 2, so that one bad replica alone opens no other.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    ///
    /// assert_eq!(CircuitBreaker::DEFAULT_QUORUM, 2);
    /// ```
    pub const DEFAULT_QUORUM: u32 = DEFAULT_QUORUM;

    /// Shares this breaker's *evidence* with every instance, in any process,
    /// declared with the same `key` on the same Redis: each replica still
    /// trips on its own calls only, publishes "opened until T" when it
    /// does, and opens without failures of its own when
    /// [`quorum`](CircuitBreaker::quorum) replicas have live evidence;
    /// half-open probes take turns across the fleet through a lease. A
    /// `const fn`, so the breaker stays a `static`; nothing connects before
    /// the first call.
    ///
    /// Raw counters are not shared, so one bad replica cannot open the
    /// others: with the default quorum of 2, one replica opening alone
    /// opens no other. The evidence is one sorted set per key,
    /// `{steadfast:cb:<key>}` (replica id → end of its open period, on
    /// Redis's clock, expired members removed, the key kept alive for at
    /// least twice `open_for`), and the probe lease
    /// `{steadfast:cb:<key>}:probe` (`SET NX PX`, TTL `max(open_for,
    /// 100 ms)`): when a replica's open period ends, it probes only once it
    /// holds the lease, so one replica probes at a time and a crashed
    /// prober blocks the others for one TTL at most. A replica opened by
    /// the fleet does not probe: it closes as soon as the evidence drops
    /// below the quorum (a prober succeeded, or the openers' periods
    /// ended). Every instance sharing a key should have the same `open_for`
    /// and `quorum`.
    ///
    /// No call waits on Redis or pays a round trip: one background task
    /// per breaker refreshes the fleet's view every
    /// `clamp(open_for / 10, 10 ms, 250 ms)` (250 ms for the default
    /// `open_for`), at once after a local transition, and when a probe
    /// wants the lease; the next call applies what it found. When Redis is
    /// unavailable (bounded by [`Redis::timeout`], then skipped for
    /// [`Redis::retry_after`]) the breaker acts on its local state only:
    /// its own trips still open it, probes go without the lease, a fleet
    /// opening is dropped (or, with
    /// [`when_redis_fails(Fallback::Deny)`](CircuitBreaker::when_redis_fails),
    /// it keeps the fleet's opening and waits for the lease). Each such decision is counted in
    /// [`degraded_decisions`](CircuitBreaker::degraded_decisions) and
    /// reported (a `WARN` event at most once a second; the metric
    /// `steadfast_redis_degraded_decisions_total{primitive, key, fallback}`),
    /// and sharing resumes by itself. A shared breaker follows real time,
    /// not a paused tokio clock.
    ///
    /// ```no_run
    /// use retry_runtime::CircuitBreaker;
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env("REDIS_URL");
    /// static DB: CircuitBreaker = CircuitBreaker::new().failure_threshold(5).shared(&REDIS, "db");
    ///
    /// let permit = DB.try_acquire().expect("closed");
    /// permit.success();
    /// ```
    #[must_use]
    pub const fn shared(mut self, redis: &'static Redis, key: &'static str) -> Self {
        self.machine.shared.set(redis, key);
        self
    }

    /// [`shared`](CircuitBreaker::shared) for a key known only at run time: a
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
    /// use retry_runtime::{CircuitBreaker, Keyed};
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env("REDIS_URL");
    /// // One breaker per downstream host, its evidence shared by the fleet.
    /// static PER_HOST: Keyed<String, CircuitBreaker> =
    ///     Keyed::new(|host| CircuitBreaker::new().shared_as(&REDIS, format!("host:{host}")));
    ///
    /// let _ = PER_HOST.get("db.internal").try_acquire();
    /// ```
    #[must_use]
    pub fn shared_as(mut self, redis: &'static Redis, key: impl Into<String>) -> Self {
        self.machine.shared.set_owned(redis, key.into());
        self
    }

    /// How many replicas must hold live "opened" evidence at once for a
    /// closed shared breaker to open without failures of its own
    /// ([`DEFAULT_QUORUM`](CircuitBreaker::DEFAULT_QUORUM) = 2; at least
    /// 1). `1` lets any single replica open the fleet. No effect on a
    /// breaker that is not shared.
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::new("redis://127.0.0.1:6379");
    /// // Open every replica once three of them have opened.
    /// static DB: CircuitBreaker = CircuitBreaker::new().shared(&REDIS, "db").quorum(3);
    /// ```
    #[must_use]
    pub const fn quorum(mut self, n: u32) -> Self {
        self.machine.shared.set_size(if n == 0 { 1 } else { n });
        self
    }

    /// What this shared breaker does with the *fleet's* part of a decision
    /// while Redis cannot be reached, times out or errors. Its own trips
    /// open it either way (they need no Redis), and a closed replica is
    /// never opened because Redis is down: an outage of Redis is no
    /// evidence of an outage of the dependency, and opening on it would
    /// turn Redis's outage into the fleet's. No effect on a breaker that is
    /// not shared; admitting a call costs the same either way.
    ///
    /// - [`Fallback::Local`] (the default): decide on the local state
    ///   alone. A replica opened by the fleet closes (its own state was
    ///   closed), and a replica whose own open period ended probes without
    ///   the fleet's lease. Availability first: while Redis is down every
    ///   replica may probe at once, as unshared breakers do.
    /// - [`Fallback::Deny`]: do not let go of what the fleet decided while
    ///   the fleet cannot be consulted. A replica opened by the fleet stays
    ///   open until the deadline the fleet last gave it (when the quorum
    ///   would have lapsed, had no replica recovered sooner), and a replica
    ///   whose own open period ended stays open, refusing calls, until it
    ///   can take the lease again (a lease it already holds is used to its
    ///   TTL). Protection of the dependency first: at most one probe at a
    ///   time across the fleet, even through an outage of Redis, at the
    ///   price of every opened replica staying open for the outage.
    /// - [`Fallback::Allow`] is taken as `Local`: for a breaker "allow"
    ///   cannot mean admitting every call (that would disable the breaker
    ///   whenever Redis fails), and `Local` already resolves everything the
    ///   fleet decides towards admitting. It is reported as `local`.
    ///
    /// Each decision taken without the fleet is counted in
    /// [`degraded_decisions`](CircuitBreaker::degraded_decisions) and
    /// reported with this fallback's name (`fallback = "local"` or
    /// `"deny"`).
    ///
    /// ```
    /// use retry_runtime::CircuitBreaker;
    /// use retry_runtime::redis::{Fallback, Redis};
    ///
    /// static REDIS: Redis = Redis::new("redis://127.0.0.1:6379");
    /// // A fragile dependency: never let the whole fleet probe it at once.
    /// static LEDGER: CircuitBreaker = CircuitBreaker::new()
    ///     .shared(&REDIS, "ledger")
    ///     .when_redis_fails(Fallback::Deny);
    /// ```
    #[must_use]
    pub const fn when_redis_fails(mut self, fallback: Fallback) -> Self {
        self.machine.shared.set_fallback(match fallback {
            Fallback::Deny => Fallback::Deny,
            _ => Fallback::Local,
        });
        self
    }

    /// How many decisions this shared breaker took without the fleet
    /// because Redis was unavailable: refreshes of the fleet's view (or
    /// publications of its own evidence) that could not run, probes
    /// admitted without the fleet's lease (or, with
    /// [`Fallback::Deny`], refused for want of it), and fleet openings
    /// dropped.
    /// Always 0 for a breaker that is not shared.
    pub fn degraded_decisions(&self) -> u64 {
        self.machine.shared.degraded_decisions()
    }

    /// How many round trips to Redis this shared breaker has started (one
    /// per background refresh, transition or lease request; none per call).
    /// Always 0 for a breaker that is not shared.
    pub fn redis_round_trips(&self) -> u64 {
        self.machine.shared.round_trips()
    }
}

impl Shared {
    #[inline]
    fn inner(&self, config: &Config) -> &Arc<Link<Inner>> {
        match self.get() {
            Some(inner) => inner,
            None => self.start(config),
        }
    }

    /// First use: the state, and the background task that keeps the fleet's
    /// view.
    #[cold]
    fn start(&self, config: &Config) -> &Arc<Link<Inner>> {
        let mut first = false;
        let inner = self.link(&KIND, || {
            first = true;
            Inner::new(self.size_or(DEFAULT_QUORUM), config.open_for_nanos)
        });
        if first {
            inner.spawn_task(run);
        }
        inner
    }

    /// Before a call (or a look at the state): the background task's order,
    /// if any, for the machine to apply. One atomic load when there is
    /// none; `now_nanos` (the machine's clock) is read only for an opening.
    #[inline]
    pub(super) fn order(&self, config: &Config, now_nanos: impl FnOnce() -> u64) -> Option<Order> {
        let inner = self.inner(config);
        if inner.order.load(Ordering::Acquire) == NO_ORDER {
            return None;
        }
        Self::take_order(inner, now_nanos)
    }

    #[cold]
    fn take_order(inner: &Link<Inner>, now_nanos: impl FnOnce() -> u64) -> Option<Order> {
        match inner.order.swap(NO_ORDER, Ordering::AcqRel) {
            NO_ORDER => None,
            ORDER_CLOSE => Some(Order::Close),
            order => {
                let deadline = order - ORDER_OPEN;
                let now = inner.since_born(Instant::now());
                if deadline <= now {
                    return None;
                }
                inner.fleet_deadline.store(deadline, Ordering::Relaxed);
                Some(Order::Open {
                    until: now_nanos().saturating_add(deadline - now),
                })
            }
        }
    }

    /// After every swap of the state word: keep the background task's view
    /// of the machine, and wake it when the fleet must hear of a change.
    /// `now_nanos` is the machine's clock and `current` reads its word.
    pub(super) fn moved(
        &self,
        config: &Config,
        old: State,
        new: State,
        now_nanos: impl Fn() -> u64,
        current: impl Fn() -> State,
    ) {
        // Counts moving within a closed, disabled or half-open period are
        // nothing the fleet hears of: the common case, and cheap.
        let same_period = matches!(
            (old, new),
            (State::Closed { .. }, State::Closed { .. })
                | (State::Disabled { .. }, State::Disabled { .. })
                | (State::HalfOpen { .. }, State::HalfOpen { .. })
        );
        if same_period {
            return;
        }
        let inner = self.inner(config);
        if matches!(new, State::Closed { .. } | State::Disabled { .. }) {
            // An order the task posted before this close (a `reset`, a
            // probe that succeeded) speaks of a fleet seen before it; the
            // next refresh posts it again if the quorum still holds.
            inner.order.store(NO_ORDER, Ordering::Release);
        }
        // Another caller's swap may land between this one and the view
        // stored here, its own hook running first: the view must end as
        // the word is, not as whichever hook stored last. So it is stored,
        // then checked against the word, until they agree.
        let mut seen = new;
        loop {
            inner.follow(seen, &now_nanos);
            let now = current();
            let agrees = match (now, seen) {
                (State::Open { until: a }, State::Open { until: b }) => a == b,
                _ => mode_of(now) == mode_of(seen),
            };
            if agrees {
                return;
            }
            seen = now;
        }
    }

    /// The breaker's open period (ending at `until` on its clock) is over:
    /// may the next call probe?
    pub(super) fn gate_open(&self, config: &Config, until: u64) -> Gate {
        if State::by_fleet(until) {
            return Gate::Close;
        }
        if Self::may_probe(self.inner(config)) {
            Gate::Probe
        } else {
            Gate::Wait
        }
    }

    /// A half-open breaker has a free probe slot: may this call take it?
    pub(super) fn gate_half_open(&self, config: &Config) -> bool {
        Self::may_probe(self.inner(config))
    }

    fn may_probe(inner: &Link<Inner>) -> bool {
        let redis = inner.redis();
        let now = Instant::now();
        let at = inner.since_born(now);
        if !redis.health().is_healthy() {
            // Decided without the fleet: no lease can be had. The
            // background task's next run probes Redis.
            inner.went_alone();
            return match inner.fallback() {
                // A lease already held (Redis granted it, for its TTL) is
                // still good; none is taken without Redis.
                Fallback::Deny => inner.view.held_at(at),
                _ => true,
            };
        }
        match inner.view.turn(at) {
            Turn::Probe => true,
            Turn::Wait => false,
            Turn::Ask => {
                inner.wake.notify_one();
                false
            }
        }
    }
}

/// What the background task needs to know of a state.
fn mode_of(state: State) -> u8 {
    match state {
        State::Closed { .. } => CLOSED,
        State::Disabled { .. } => DISABLED,
        State::HalfOpen { .. } => HALF_OPEN,
        State::Open { until } if until == HELD => OPEN_HELD,
        State::Open { until } if State::by_fleet(until) => OPEN_FLEET,
        State::Open { .. } => OPEN_LOCAL,
    }
}

impl Inner {
    fn new(quorum: u32, open_for_nanos: u64) -> Self {
        let open_ms = open_for_nanos.div_ceil(1_000_000).max(1);
        let interval = Duration::from_nanos(open_for_nanos / 10)
            .clamp(Duration::from_millis(10), Duration::from_millis(250));
        let replica = crate::rng::with_thread_rng(rand::RngCore::next_u64);
        Inner {
            replica: format!("{replica:016x}"),
            quorum,
            open_ms,
            lease_ms: open_ms.max(100),
            interval,
            wake: Notify::new(),
            order: AtomicU64::new(NO_ORDER),
            view: View::new(),
            deadline: AtomicU64::new(0),
            fleet_deadline: AtomicU64::new(0),
        }
    }
}

impl Link<Inner> {
    /// Nanoseconds since the link was made: the times above.
    fn since_born(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.born()).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Makes the task's view that of `state`, and wakes the task if the
    /// fleet must hear of it.
    fn follow(&self, state: State, now_nanos: impl Fn() -> u64) {
        let mode = mode_of(state);
        if let (OPEN_LOCAL, State::Open { until }) = (mode, state) {
            let left = until.saturating_sub(now_nanos());
            let now = self.since_born(Instant::now());
            self.deadline
                .store(now.saturating_add(left), Ordering::Relaxed);
        }
        // A half-open period that ended gives the lease back (the next run
        // of the script deletes it if still ours).
        let previous = self.view.follow(mode);
        if previous != mode || mode == OPEN_LOCAL {
            self.wake.notify_one();
        }
    }

    /// One run of the script: publish what this replica is, take or give
    /// back the lease, and read the fleet's evidence.
    async fn sync(&self) {
        let started = Instant::now();
        if !self.may_ask(started) {
            self.went_alone();
            return;
        }
        let now = self.since_born(started);
        let sent = self.view.send();
        let Sent {
            mode,
            wanted,
            held_until: lease_until,
            ..
        } = sent;
        let evidence: i64 = match mode {
            OPEN_LOCAL => {
                let deadline = self.deadline.load(Ordering::Relaxed);
                if deadline > now {
                    ms_ceil(deadline - now)
                } else if wanted {
                    // Past its open period and asking to probe: still open.
                    ms(self.lease_ms)
                } else {
                    -1
                }
            }
            OPEN_HELD => ms(self.open_ms),
            HALF_OPEN if lease_until > now => ms_ceil(lease_until - now),
            HALF_OPEN => -1,
            _ => 0,
        };
        let lease_op: u8 = match mode {
            OPEN_LOCAL | HALF_OPEN if wanted => 1,
            HALF_OPEN => 2,
            _ => 0,
        };
        self.count_round_trip();
        let (key, probe_key, replica) = (
            self.key().to_owned(),
            format!("{}:probe", self.key()),
            self.replica.clone(),
        );
        let (open_ms, lease_ms) = (self.open_ms, self.lease_ms);
        let answer: Result<Vec<i64>, _> = self
            .redis()
            .call(|mut connection| async move {
                SYNC.key(key)
                    .key(probe_key)
                    .arg(replica)
                    .arg(evidence)
                    .arg(open_ms)
                    .arg(lease_op)
                    .arg(lease_ms)
                    .invoke_async(&mut connection)
                    .await
            })
            .await;
        match answer {
            Ok(reply) => self.landed(&reply, started, lease_op, &sent),
            Err(_) => self.went_alone(),
        }
    }

    /// The script's answer: the lease, and the order the fleet's evidence
    /// calls for.
    fn landed(&self, reply: &[i64], started: Instant, lease_op: u8, asked: &Sent) {
        let [now_ms, lease, scores @ ..] = reply else {
            return;
        };
        let sent = self.since_born(started);
        match lease_op {
            // Counted from before the request: this replica's view of the
            // lease ends no later than Redis's. Dropped if the lease was
            // given back since the request was sent.
            1 if *lease > 0 => self.view.granted(asked, sent + millis(*lease)),
            1 if *lease < 0 => {
                // Asked again when the holder's TTL ends, or after one
                // interval if sooner (the holder may give it back early).
                let at = self.since_born(Instant::now());
                let busy = millis(-*lease).min(duration_nanos(self.interval));
                self.view.refused(at + busy);
            }
            0 => self.view.released(),
            _ => {}
        }
        let mode = self.view.mode();
        let mut live: Vec<i64> = scores.iter().copied().filter(|s| s > now_ms).collect();
        let quorum = self.quorum as usize;
        match mode {
            CLOSED | OPEN_FLEET if live.len() >= quorum => {
                // The moment the quorum lapses: the quorum-th latest expiry.
                live.sort_unstable_by(|a, b| b.cmp(a));
                let left = millis(live[quorum - 1] - now_ms);
                let deadline = sent.saturating_add(left);
                let applied = self.fleet_deadline.load(Ordering::Relaxed);
                if mode == CLOSED || deadline > applied + 1_000_000 {
                    self.order.store(ORDER_OPEN + deadline, Ordering::Release);
                }
            }
            OPEN_FLEET => self.order.store(ORDER_CLOSE, Ordering::Release),
            _ => {}
        }
    }

    /// Redis could not be consulted: this replica decides alone. A fleet
    /// opening is dropped (its own state was closed), unless the fallback
    /// is `Deny`: then it is kept to the deadline the fleet last gave it.
    fn went_alone(&self) {
        if self.fallback() != Fallback::Deny && self.view.mode() == OPEN_FLEET {
            self.order.store(ORDER_CLOSE, Ordering::Release);
        }
        self.degraded();
    }
}

/// The background task of one shared breaker: a run of the script at once,
/// then on every wake-up or `interval`, until the breaker is dropped.
async fn run(inner: Weak<Link<Inner>>) {
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.sync().await;
        let _ = tokio::time::timeout(inner.interval, inner.wake.notified()).await;
    }
}

fn ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn ms_ceil(nanos: u64) -> i64 {
    ms(nanos.div_ceil(1_000_000).max(1))
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Milliseconds (non-negative) as nanoseconds.
fn millis(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}
