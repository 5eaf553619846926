//! Limits shared by replicas through Redis (feature `redis`).
//!
//! A [`Redis`] names a server and is a `const`, so it can be a `static` next
//! to the limiters that use it; nothing connects until the first call that
//! needs Redis. A [`RateLimiter`](crate::RateLimiter) becomes shared with
//! [`RateLimiter::shared`](crate::RateLimiter::shared):
//!
//! ```no_run
//! use retry_runtime::RateLimiter;
//! use retry_runtime::redis::{Fallback, Redis};
//!
//! static REDIS: Redis = Redis::from_env("REDIS_URL");
//! // 100 a second across every replica, bursts of 20.
//! static PARTNER: RateLimiter = RateLimiter::per_second(100)
//!     .burst(20)
//!     .shared(&REDIS, "payments-api")
//!     .when_redis_fails(Fallback::Local);
//!
//! # #[tokio::main] async fn main() {
//! PARTNER.acquire().await;
//! # }
//! ```
//!
//! # Algorithm, round trips and accuracy
//!
//! The global bucket is GCRA over one key per instance,
//! `{steadfast:rl:<key>}` (hash-tagged: the one-key script works on
//! Cluster), advanced by one Lua script on Redis's own clock (`TIME`, so
//! replicas' clocks do not matter), with the local limiter's burst
//! semantics, weighted takes included. A round trip takes a **lease** of up
//! to `lease` tokens ([`RateLimiter::lease`](crate::RateLimiter::lease),
//! default `min(burst / 4, 16)`, at least 1) that the replica hands out
//! with no I/O, and tops it up in the background once three quarters are
//! spent. When the global bucket is empty, Redis says how long until it is
//! not, and the replica refuses (or waits) without a round trip until then.
//! Measured on loopback (`benches/redis.rs`): 0.083 round trips per
//! admitted call with the default lease of 16 (0.125 with a lease of 10).
//!
//! **Accuracy**: a replica never holds more than `lease` unspent tokens and
//! every token it spends was granted by the global bucket, so the fleet
//! exceeds the global limit by at most **replicas × lease** tokens (once,
//! not per period). `lease(1)` makes it exact, at one round trip per call.
//!
//! # What an empty lease does
//!
//! `try_acquire`, `try_acquire_n` and `check` do not wait on I/O: on an
//! empty lease they start a refill in the background and refuse (`false`;
//! `check` says 1 ms), which keeps the accuracy bound; the next calls take
//! from the refill. The one exception is an instance's first decision
//! (a new key, a restart): it waits for the first answer, a round trip
//! bounded by twice the timeout, rather than refuse a fleet that is under
//! its limit. `acquire*` and the blocking calls wait for the refill
//! (woken when it lands, within their `max_wait`). The attribute's
//! `rate_limit = &LIMIT` polls it every millisecond. A shared limiter
//! follows real time (Redis's clock), not a paused tokio test clock, and
//! `pause` (and so `pause_on_retry_after`) is the fleet's: one round trip
//! moves the global bucket past the pause, so no replica gets a token
//! before it ends (each may spend what its lease held).
//!
//! # Where Redis I/O runs
//!
//! Every round trip runs on a small runtime of the client's own (one worker
//! thread, `steadfast-redis`, started on first use), never on the caller's:
//! sync functions need no tokio runtime, async callers await a notification,
//! and a caller's runtime being busy or shutting down cannot stall a
//! round trip another caller is waiting for.
//!
//! # When Redis fails
//!
//! Each round trip is bounded by a short timeout ([`Redis::timeout`],
//! 50 ms by default). After a failure (connection refused, timeout, an error
//! reply, a missing or invalid URL) the client stops sending for
//! [`Redis::retry_after`] (1 s by default) and then lets one background
//! probe through: an outage costs one timeout, not one per call. Meanwhile
//! every decision is taken locally by the instance's [`Fallback`], counted
//! and reported; the first successful probe restores sharing.
//!
//! # Cluster
//!
//! [`Redis::cluster`] names a Redis Cluster by a few seed nodes; the client
//! discovers the others and the slot map on first use, and follows the
//! cluster's topology afterwards (a `MOVED` after a resharding or a
//! failover refreshes it). Each shared instance keeps its state under **one
//! hash-tagged key** (`{steadfast:rl:<key>}`, `{steadfast:budget:<key>}`,
//! `{steadfast:cb:<key>}`), so its script runs on the one node serving that
//! slot and never crosses slots; different instances spread over the
//! masters by their keys.
//!
//! ```no_run
//! use retry_runtime::RateLimiter;
//! use retry_runtime::redis::Redis;
//!
//! static CLUSTER: Redis = Redis::cluster(&[
//!     "redis://10.0.0.1:6379",
//!     "redis://10.0.0.2:6379",
//!     "redis://10.0.0.3:6379",
//! ]);
//! static PARTNER: RateLimiter = RateLimiter::per_second(100).shared(&CLUSTER, "payments-api");
//! ```
//!
//! The timeout, the circuit and the background runtime are those of a
//! single server, and there is one circuit for the whole cluster: when the
//! node serving an instance's key fails, its calls fail within the timeout
//! (refused, timed out, or redirected back to the dead node), the circuit
//! opens for [`Redis::retry_after`] and every shared instance on that
//! `Redis` decides by its [`Fallback`] until a probe succeeds: typically
//! once the cluster has promoted a replica of the failed node (after its
//! `cluster-node-timeout`) or the node is back. A master without a replica
//! leaves its slots unserved until it returns.

mod connection;
mod error;
mod health;
mod runtime;
pub(crate) mod share;

use std::time::Duration;

pub use error::Error;

/// A Redis server shared limits are kept on: a `const`, connected on first
/// use.
///
/// One `Redis` holds one connection (a [`redis::aio::ConnectionManager`],
/// which pipelines the calls of every limiter using it, or for
/// [`Redis::cluster`] a [`redis::cluster_async::ClusterConnection`], one
/// such connection per node), the background
/// runtime its I/O runs on, and a small circuit around the server itself
/// (see the [module docs](self)). Declare it once as a `static` and share it
/// between limiters.
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::redis::Redis;
///
/// static REDIS: Redis = Redis::new("redis://127.0.0.1:6379")
///     .timeout(Duration::from_millis(20))
///     .retry_after(Duration::from_millis(500));
/// ```
#[derive(Debug)]
pub struct Redis {
    /// Where the URL comes from.
    source: Source,
    /// Bound on connecting and on every round trip.
    timeout: Duration,
    /// How long to stop sending after a failure.
    retry_after: Duration,
    /// The runtime Redis I/O runs on, started on first use.
    runtime: runtime::Background,
    /// The connection, made on first use.
    connection: connection::Slot,
    /// The circuit around the server.
    health: health::Health,
}

/// Where a [`Redis`] finds its URL.
#[derive(Debug, Clone, Copy)]
enum Source {
    Url(&'static str),
    Env(&'static str),
    EnvOr(&'static str, &'static str),
    Cluster(&'static [&'static str]),
}

impl Redis {
    /// A server at `url` (`redis://host:port/db`, `rediss://` needs a TLS
    /// feature of the `redis` crate), connected on first use.
    ///
    /// The URL is parsed at first use: an invalid one is reported as
    /// [`Error::InvalidUrl`] and the limiters fall back to their
    /// [`Fallback`]; it never panics.
    #[must_use]
    pub const fn new(url: &'static str) -> Self {
        Self::with_source(Source::Url(url))
    }

    /// A server whose URL is in the environment variable `var`, read at
    /// first use (and again at each reconnection attempt, so a variable set
    /// late is picked up).
    ///
    /// A missing variable is [`Error::MissingUrl`] at first use, reported,
    /// and handled by each limiter's [`Fallback`]; it never panics.
    ///
    /// ```
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env("REDIS_URL");
    /// ```
    #[must_use]
    pub const fn from_env(var: &'static str) -> Self {
        Self::with_source(Source::Env(var))
    }

    /// [`from_env`](Redis::from_env), with `default` as the URL when the
    /// variable is not set: for examples and local development.
    ///
    /// ```
    /// use retry_runtime::redis::Redis;
    ///
    /// static REDIS: Redis = Redis::from_env_or("REDIS_URL", "redis://127.0.0.1:6379");
    /// ```
    #[must_use]
    pub const fn from_env_or(var: &'static str, default: &'static str) -> Self {
        Self::with_source(Source::EnvOr(var, default))
    }

    /// A Redis Cluster reached through the seed `nodes`
    /// (`redis://host:port` each; one reachable node is enough, the client
    /// discovers the rest), connected on first use, with the same timeout,
    /// circuit and background runtime as a single server (see
    /// [Cluster](self#cluster)).
    ///
    /// The URLs are parsed at first use: an invalid one, or no node at all,
    /// is reported as [`Error::InvalidUrl`] and the limiters fall back to
    /// their [`Fallback`]; it never panics.
    ///
    /// ```
    /// use retry_runtime::redis::Redis;
    ///
    /// static CLUSTER: Redis = Redis::cluster(&["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
    /// ```
    #[must_use]
    pub const fn cluster(nodes: &'static [&'static str]) -> Self {
        Self::with_source(Source::Cluster(nodes))
    }

    const fn with_source(source: Source) -> Self {
        Redis {
            source,
            timeout: Duration::from_millis(50),
            retry_after: Duration::from_secs(1),
            runtime: runtime::Background::new(),
            connection: connection::Slot::new(),
            health: health::Health::new(),
        }
    }

    /// Bounds connecting and every round trip (50 ms by default): a call
    /// waiting for Redis waits at most this long before its limiter's
    /// [`Fallback`] decides. Zero is treated as 1 ms.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = if timeout.is_zero() {
            Duration::from_millis(1)
        } else {
            timeout
        };
        self
    }

    /// How long to stop sending after a failure (1 s by default) before one
    /// background probe tries again; until it succeeds, decisions follow
    /// each limiter's [`Fallback`] without waiting for Redis.
    #[must_use]
    pub const fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The last failure, if the server is currently considered down (the
    /// circuit around it is open); `None` while it answers.
    pub fn last_error(&self) -> Option<Error> {
        self.health.last_error()
    }

    /// Whether the last round trip succeeded (or none was made yet).
    pub fn is_available(&self) -> bool {
        self.health.is_healthy()
    }
}

/// What a shared instance does when Redis cannot be reached, times out, or
/// answers with an error: chosen per instance with
/// [`RateLimiter::when_redis_fails`](crate::RateLimiter::when_redis_fails).
///
/// Every decision taken this way is counted
/// ([`RateLimiter::degraded_decisions`](crate::RateLimiter::degraded_decisions))
/// and reported (feature `tracing`: a `WARN` event on target `steadfast`, at
/// most one per second per instance; feature `metrics`: the counter
/// `steadfast_redis_degraded_decisions_total{primitive, key, fallback}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Fallback {
    /// The instance's own limit, enforced by this replica alone: each
    /// replica admits up to the full rate, so the fleet admits at most
    /// replicas × rate. Bounded, not fail-open. The default.
    #[default]
    Local,
    /// Admit every call: availability over the quota.
    Allow,
    /// Refuse every call until Redis answers again: the quota over
    /// availability. Waiting calls wait for the next probe, within their
    /// `max_wait`.
    Deny,
}

impl Fallback {
    /// The name used in events and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Fallback::Local => "local",
            Fallback::Allow => "allow",
            Fallback::Deny => "deny",
        }
    }
}
