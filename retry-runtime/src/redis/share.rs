//! What every primitive shared through Redis has in common, written once:
//! the settings `.shared(&REDIS, key)` and its builders leave in the
//! instance, the per-instance link made on first use (the key on Redis,
//! the counters, the throttled report of degraded decisions), and the way a
//! round trip is started on the client's runtime.
//!
//! A primitive plugs in with a [`Kind`] (its key prefix and names), its own
//! state `S` inside the [`Link`] (a lease, the fleet's view), its script
//! and its decisions; nothing here knows what a token, a retry or an
//! opening is. So the next primitive shared through Redis costs a script
//! and a decision, not a copy of this file.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{Fallback, Redis};

/// What every script starts with: `now_us`, Redis's own clock in
/// microseconds, so that replicas' clocks never matter (exact in Lua's
/// doubles, which hold integers up to 2^53); and, before Redis 5, effects
/// replication, which a script that reads `TIME` and writes needs.
const PRELUDE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
";

/// A primitive's script, run on Redis's clock: `body` reads `now_us` (see
/// `PRELUDE`). `redis::Script` hashes it once and retries `EVALSHA` as
/// `EVAL` after `NOSCRIPT` (a restarted or flushed server).
pub(crate) fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{PRELUDE}{body}"))
}

/// Longest key used as it is in the name on Redis; a longer one is hashed.
const MAX_PLAIN_KEY: usize = 64;

/// The name on Redis of an instance's key: `{steadfast:<prefix>:<key>}`.
///
/// Keys may come from requests (a tenant, an API key, a header), so they
/// are untrusted: a key of at most 64 bytes of letters, digits and
/// `. _ - : @ /` is used as it is (the names operators expect to see); any
/// other is replaced by `#` and the SHA-256 of its bytes in hex. No key can
/// then break the hash tag (`{`, `}`), collide with another (a plain key
/// never starts with `#`, and SHA-256 collisions are not within anyone's
/// reach), or make a name longer than 93 bytes, whatever its size.
fn redis_key(prefix: &str, key: &str) -> String {
    let plain = key.len() <= MAX_PLAIN_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:@/".contains(&b));
    if plain {
        return format!("{{steadfast:{prefix}:{key}}}");
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut name = format!("{{steadfast:{prefix}:#");
    for byte in digest {
        let _ = write!(name, "{byte:02x}");
    }
    name.push('}');
    name
}

/// Which primitive is shared: how its key is spelled on Redis and how its
/// degraded decisions are named in metrics and events.
#[derive(Debug)]
pub(crate) struct Kind {
    /// The key on Redis is `{steadfast:<prefix>:<key>}`: hash-tagged, so
    /// that a one-key script runs on one Cluster node.
    pub(crate) prefix: &'static str,
    /// The `primitive` label of `steadfast_redis_degraded_decisions_total`.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) primitive: &'static str,
    /// The `WARN` event's message when decisions are taken without Redis.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) degraded: &'static str,
}

/// The sharing settings an instance carries: none until
/// `.shared(&REDIS, key)`, then the Redis, the key, the failure policy and
/// the primitive's one sizing knob (a lease, a quorum). `const`, so the
/// instance stays a `static`; the [`Link`] is made on first use.
#[derive(Debug)]
pub(crate) struct Share<S> {
    redis: Option<&'static Redis>,
    /// As the user gave it: a `&'static str` from `shared`, or a key known
    /// only at run time from `shared_as` (a tenant, an API key).
    key: Cow<'static, str>,
    fallback: Fallback,
    /// 0: the primitive's default.
    size: u32,
    link: OnceLock<Arc<Link<S>>>,
}

/// What a shared instance keeps once used: made on first use and held in
/// an `Arc`, because background tasks and round trips in flight hold it
/// too, and an instance need not be a `static`.
#[derive(Debug)]
pub(crate) struct Link<S> {
    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
    kind: &'static Kind,
    redis: &'static Redis,
    /// The key the user gave, for metric labels and events.
    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
    name: Cow<'static, str>,
    /// `{steadfast:<prefix>:<key>}`, built once.
    key: String,
    fallback: Fallback,
    /// The first use, on the system's clock: when degraded events were
    /// last reported is counted from here.
    born: Instant,
    degraded: AtomicU64,
    round_trips: AtomicU64,
    /// Milliseconds since `born` of the last degraded event, plus one (0:
    /// none yet), so that events are at most one a second per instance.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    last_report_ms: AtomicU64,
    state: S,
}

impl<S> Share<S> {
    pub(crate) const fn new() -> Self {
        Share {
            redis: None,
            key: Cow::Borrowed(""),
            fallback: Fallback::Local,
            size: 0,
            link: OnceLock::new(),
        }
    }

    // Setters through `&mut self`, for the primitives' `const` builders: a
    // `const fn` cannot drop the `Share` a by-value builder would replace.

    /// `.shared(redis, key)`.
    pub(crate) const fn set(&mut self, redis: &'static Redis, key: &'static str) {
        self.redis = Some(redis);
        // What is replaced is a borrowed key (a `const` instance cannot
        // hold another): forgetting it frees nothing.
        std::mem::forget(std::mem::replace(&mut self.key, Cow::Borrowed(key)));
    }

    /// `.shared_as(redis, key)`: a key known only at run time.
    pub(crate) fn set_owned(&mut self, redis: &'static Redis, key: String) {
        self.redis = Some(redis);
        self.key = Cow::Owned(key);
    }

    /// `.when_redis_fails(fallback)`, as the primitive understands it.
    pub(crate) const fn set_fallback(&mut self, fallback: Fallback) {
        self.fallback = fallback;
    }

    /// The primitive's sizing knob; 0 keeps its default.
    pub(crate) const fn set_size(&mut self, size: u32) {
        self.size = size;
    }

    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// The knob, or `default` if it was not set.
    pub(crate) fn size_or(&self, default: u32) -> u32 {
        if self.size == 0 { default } else { self.size }
    }

    /// The link, made on first use with the primitive's state. Only
    /// shared instances reach the paths that call this.
    pub(crate) fn link(&self, kind: &'static Kind, state: impl FnOnce() -> S) -> &Arc<Link<S>> {
        self.link.get_or_init(|| {
            let redis = self
                .redis
                .expect("only a shared instance reaches its shared path");
            Arc::new(Link {
                kind,
                redis,
                key: redis_key(kind.prefix, &self.key),
                name: self.key.clone(),
                fallback: self.fallback,
                born: Instant::now(),
                degraded: AtomicU64::new(0),
                round_trips: AtomicU64::new(0),
                last_report_ms: AtomicU64::new(0),
                state: state(),
            })
        })
    }

    /// The link, if the instance has been used.
    pub(crate) fn get(&self) -> Option<&Arc<Link<S>>> {
        self.link.get()
    }

    /// Decisions taken without the fleet (0 before the first use, or for
    /// an instance that is not shared).
    pub(crate) fn degraded_decisions(&self) -> u64 {
        self.get()
            .map_or(0, |link| link.degraded.load(Ordering::Relaxed))
    }

    /// Round trips started (0 before the first use, or for an instance
    /// that is not shared).
    pub(crate) fn round_trips(&self) -> u64 {
        self.get()
            .map_or(0, |link| link.round_trips.load(Ordering::Relaxed))
    }
}

impl<S> Link<S> {
    pub(crate) fn redis(&self) -> &'static Redis {
        self.redis
    }

    /// `{steadfast:<prefix>:<key>}`.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn fallback(&self) -> Fallback {
        self.fallback
    }

    /// The first use, on the system's clock.
    pub(crate) fn born(&self) -> Instant {
        self.born
    }

    /// Whether the circuit around Redis lets a round trip go now: Redis
    /// is healthy, or this caller claimed the one probe of the current
    /// `retry_after`.
    pub(crate) fn may_ask(&self, now: Instant) -> bool {
        let health = self.redis.health();
        health.is_healthy() || health.claim_probe(now, self.redis.retry_after_duration())
    }

    /// Counts one round trip (made by a primitive's own background task).
    pub(crate) fn count_round_trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    /// A decision taken without the fleet: counted, and reported (the
    /// metric every time, the event at most once a second).
    pub(crate) fn degraded(&self) {
        let total = self.degraded.fetch_add(1, Ordering::Relaxed) + 1;
        self.report(total);
    }

    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn report(&self, total: u64) {
        #[cfg(feature = "metrics")]
        metrics::counter!(
            "steadfast_redis_degraded_decisions_total",
            "primitive" => self.kind.primitive,
            "key" => self.name.clone(),
            "fallback" => self.fallback.name()
        )
        .increment(1);
        #[cfg(feature = "tracing")]
        {
            let now_ms = u64::try_from(
                Instant::now()
                    .saturating_duration_since(self.born)
                    .as_millis(),
            )
            .unwrap_or(u64::MAX)
            .saturating_add(1);
            let last = self.last_report_ms.load(Ordering::Relaxed);
            if (last == 0 || now_ms.saturating_sub(last) >= 1000)
                && self
                    .last_report_ms
                    .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let error = self.redis.last_error();
                tracing::warn!(
                    target: "steadfast",
                    key = %self.name,
                    fallback = self.fallback.name(),
                    degraded_decisions = total,
                    error = error.as_ref().map(tracing::field::display),
                    "{}",
                    self.kind.degraded,
                );
            }
        }
    }
}

impl<S: Send + Sync + 'static> Link<S> {
    /// Starts `round_trip` (given this link) on the client's runtime, and
    /// counts it. `false` if that runtime cannot run: then Redis is
    /// recorded as failed, and the caller decides by its fallback.
    pub(crate) fn spawn<F, Fut>(self: &Arc<Self>, round_trip: F) -> bool
    where
        F: FnOnce(Arc<Self>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self.redis.background() {
            Ok(handle) => {
                self.count_round_trip();
                handle.spawn(round_trip(Arc::clone(self)));
                true
            }
            Err(error) => {
                self.redis
                    .health()
                    .failed(error, self.redis.retry_after_duration());
                false
            }
        }
    }

    /// Starts a task that lives as long as the instance's link (it is
    /// handed a weak reference); not counted as a round trip.
    pub(crate) fn spawn_task<F, Fut>(self: &Arc<Self>, task: F)
    where
        F: FnOnce(std::sync::Weak<Self>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match self.redis.background() {
            Ok(handle) => {
                handle.spawn(task(Arc::downgrade(self)));
            }
            Err(error) => self
                .redis
                .health()
                .failed(error, self.redis.retry_after_duration()),
        }
    }
}

/// The primitive's own state, reached through the link.
impl<S> Deref for Link<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::redis_key;

    #[test]
    fn plain_keys_keep_their_names() {
        assert_eq!(
            redis_key("rl", "payments-api"),
            "{steadfast:rl:payments-api}"
        );
        assert_eq!(
            redis_key("cb", "tenant:42/eu@v1.2_x"),
            "{steadfast:cb:tenant:42/eu@v1.2_x}"
        );
    }

    #[test]
    fn untrusted_keys_are_hashed_into_a_bounded_name() {
        let braces = redis_key("rl", "a}{b");
        let huge = redis_key("rl", &"x".repeat(1 << 20));
        let spaced = redis_key("rl", "a b");
        for name in [&braces, &huge, &spaced] {
            assert!(name.starts_with("{steadfast:rl:#"), "{name}");
            assert_eq!(name.len(), "{steadfast:rl:#}".len() + 64, "{name}");
            // One hash tag: the key's own braces cannot move the slot.
            assert_eq!(name.matches(['{', '}']).count(), 2, "{name}");
        }
        assert_ne!(braces, spaced);
        // 65 plain bytes are hashed; a key shaped like a hashed name is too,
        // so it cannot take another key's name.
        assert!(redis_key("rl", &"a".repeat(65)).contains('#'));
        let lookalike = &braces["{steadfast:rl:".len()..braces.len() - 1];
        assert_ne!(redis_key("rl", lookalike), braces);
        // Empty keys and the same key under two primitives stay apart.
        assert_ne!(redis_key("rl", "k"), redis_key("cb", "k"));
        assert_eq!(redis_key("rl", ""), "{steadfast:rl:}");
    }
}
