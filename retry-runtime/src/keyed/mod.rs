//! Keyed instances: one breaker, limiter or bulkhead per key (a host, a
//! tenant, an endpoint), in bounded memory.
//!
//! # With the attribute
//!
//! A breaker per key is built in: `circuit_breaker(key = host, ...)` keeps
//! its breakers in a `Keyed`. For a limiter or bulkhead per key, keep a
//! `Keyed` static and hand each call its own: the shared keys take any
//! expression of the function, a parameter included.
//!
//! ```text
//! static PER_TENANT: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_second(100));
//!
//! #[resilient(rate_limit = quota)]
//! async fn send(quota: &RateLimiter, ..) -> Result<(), ApiError> { .. }
//!
//! send(&PER_TENANT.get(tenant), ..).await
//! ```
//!
//! # Why bounded
//!
//! The keys usually come from the traffic itself, and a map that keeps
//! every key it has seen is a memory leak anyone can drive by sending
//! requests for random hosts or tenants (the known weakness of keyed rate
//! limiter state that is only ever pruned by hand). A [`Keyed`] map holds
//! at most `max_keys` entries; when full, it evicts the least recently used.
//! Its own memory is therefore bounded by `max_keys`, plus the instances
//! callers still hold after their entries went.
//!
//! # How a lookup runs
//!
//! The key is hashed once, with SipHash under random keys (so colliding keys
//! cannot be chosen), and the hash picks one of 16 shards, each a
//! `HashMap` behind a read-write lock on its own cache lines. A hit takes
//! the read lock only, clones the instance's `Arc`, and stamps the entry
//! with the map's insert count, a relaxed store made only when the stamp
//! changes; it reads no clock unless the map has an `idle_for`. Inserts and
//! evictions are serialised by one mutex that hits never take: they only
//! happen for keys not yet in the map.
//!
//! Recency is counted in inserts rather than read from a clock, so that a
//! hit costs no clock read and no shared write: entries used since the same
//! insert are equally recent, and which of them goes first is unspecified.
//!
//! # Where things are
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Keyed`]: its `const` builders, lookup and insert |
//! | `hashed.rs` | hashing a key once: the seeded hash, the stored key, the borrowed probe |
//! | `shard.rs` | a shard's lock and map, and the entry with its recency stamps |
//! | `evict.rs` | making room: the least recently used batch and idle entries |

mod evict;
mod hashed;
mod shard;

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Mutex, atomic_array, const_fn};
use evict::{Book, Idle};
use hashed::{Lookup, Probe, Seed, Stored};
use shard::{SHARDS, Shard, Slot};

/// One instance of `T` per key, made on first use, with at most `max_keys`
/// of them kept.
///
/// [`get`](Self::get) returns the key's instance, making it with the
/// factory the first time; the factory is given the key, so each key's
/// instance can be configured by it (a tenant's plan) or shared through
/// Redis under it ([`RateLimiter::shared_as`](crate::RateLimiter)). Instances are shared through an [`Arc`], so any
/// `T` works, and all of the library's primitives ([`CircuitBreaker`],
/// [`RateLimiter`], [`Bulkhead`]) are `Send + Sync`.
///
/// [`Keyed::new`] and its builders are `const fn` and the factory is a plain
/// `fn(&K) -> T` (a closure that captures nothing coerces to one), so the
/// map can be a `static`:
///
/// ```
/// use retry_runtime::{CircuitBreaker, Keyed};
///
/// static PER_HOST: Keyed<String, CircuitBreaker> =
///     Keyed::new(|_| CircuitBreaker::new().failure_threshold(5)).max_keys(10_000);
///
/// fn call(host: &str) -> Result<(), &'static str> {
///     let breaker = PER_HOST.get(host);
///     let permit = breaker.try_acquire().map_err(|_| "circuit open")?;
///     // ... call `host`, then report the outcome ...
///     permit.success();
///     Ok(())
/// }
///
/// assert!(call("eu.example.com").is_ok());
///
/// // One provider's outage opens its own breaker only.
/// PER_HOST.get("us.example.com").force_open();
/// assert!(call("us.example.com").is_err());
/// assert!(call("eu.example.com").is_ok());
/// ```
///
/// # Bounded memory
///
/// At most `max_keys` entries are kept ([`DEFAULT_MAX_KEYS`](Self::DEFAULT_MAX_KEYS),
/// 10,000, unless set). An insert into a full map first evicts its least
/// recently used entries: `max_keys / 32` of them at once (at least one),
/// so that the scan this takes is paid once per that many inserts. With
/// [`idle_for`](Self::idle_for), entries unused that long are dropped too.
///
/// Eviction does not wait for callers to let go: an instance still held
/// elsewhere is removed from the map all the same, and those holding it keep
/// using it, while the next `get` for its key makes a fresh one. So the map's
/// memory never exceeds the cap, whatever keys arrive, and the only instances
/// beyond it are those callers hold. The price is that an evicted instance's
/// state is forgotten: an evicted breaker that was open comes back closed,
/// and the key's calls go through until it trips again; an evicted rate
/// limiter comes back with a full burst. Set `max_keys` well above the keys
/// you expect to be active together, so that only idle or hostile keys are
/// evicted.
///
/// # Cost
///
/// A lookup of a present key hashes it once (SipHash), takes one shard's
/// read lock, and clones an `Arc`: no clock read (unless `idle_for` is set),
/// and no write to memory shared with other keys. Keys are spread over 16
/// shards, so inserts for one key do not block lookups of most others.
///
/// [`CircuitBreaker`]: crate::CircuitBreaker
/// [`RateLimiter`]: crate::RateLimiter
/// [`Bulkhead`]: crate::Bulkhead
pub struct Keyed<K, T> {
    shards: [Shard<K, T>; SHARDS],
    seed: Seed,
    factory: fn(&K) -> T,
    max_keys: usize,
    /// 0 when off.
    idle_ms: u64,
    /// Inserts so far: what a use stamps its entry with.
    clock: AtomicU64,
    /// Entries in the map; written only under `book`.
    len: AtomicUsize,
    /// Held by inserts and evictions, never by a hit.
    book: Mutex<Book>,
    /// What `idle_for` measures from: the first time read.
    epoch: OnceLock<Instant>,
}

impl<K, T> Keyed<K, T> {
    /// How many keys a map keeps unless [`max_keys`](Self::max_keys) says
    /// otherwise: 10,000.
    ///
    /// ```
    /// use retry_runtime::Keyed;
    ///
    /// assert_eq!(Keyed::<String, u8>::DEFAULT_MAX_KEYS, 10_000);
    /// ```
    pub const DEFAULT_MAX_KEYS: usize = 10_000;

    const_fn! {
        /// An empty map whose instances `factory` makes from their keys,
        /// keeping at most
        /// [`DEFAULT_MAX_KEYS`](Self::DEFAULT_MAX_KEYS) keys, with no
        /// `idle_for`. Allocates nothing until the first insert.
        ///
        /// ```
        /// use retry_runtime::{Keyed, RateLimiter};
        ///
        /// // Each tenant's limit from its plan: the factory is given the key.
        /// static PER_TENANT: Keyed<u64, RateLimiter> = Keyed::new(|tenant| {
        ///     RateLimiter::per_second(if *tenant < 1000 { 1000 } else { 100 })
        /// });
        ///
        /// let limiter = PER_TENANT.get(&42);
        /// assert!(limiter.try_acquire());
        /// assert_eq!(PER_TENANT.len(), 1);
        /// ```
        #[must_use]
        pub fn new(factory: fn(&K) -> T) -> Self {
            Keyed {
                shards: atomic_array![Shard::new(); SHARDS],
                seed: Seed::new(),
                factory,
                max_keys: Self::DEFAULT_MAX_KEYS,
                idle_ms: 0,
                clock: AtomicU64::new(0),
                len: AtomicUsize::new(0),
                book: Mutex::new(Book::new()),
                epoch: OnceLock::new(),
            }
        }
    }

    /// Keeps at most `n` keys; see [Bounded memory](Self#bounded-memory).
    /// `0` is treated as `1`.
    ///
    /// ```
    /// use retry_runtime::{Bulkhead, Keyed};
    ///
    /// static PER_ENDPOINT: Keyed<&str, Bulkhead> = Keyed::new(|_| Bulkhead::new(4)).max_keys(2);
    ///
    /// let _ = PER_ENDPOINT.get(&"/search");
    /// let _ = PER_ENDPOINT.get(&"/orders");
    /// let _ = PER_ENDPOINT.get(&"/users");
    /// assert_eq!(PER_ENDPOINT.len(), 2);
    /// ```
    #[must_use]
    pub const fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = if n == 0 { 1 } else { n };
        self
    }

    /// Drops entries unused for `idle`, so that a map that is not full
    /// still gives back the memory of keys that went quiet.
    ///
    /// Checked by inserts, never by a timer: an insert sweeps the map when
    /// it is full, or when `idle / 2` has passed since the last sweep. So
    /// an entry goes no sooner than `idle` after its last use, and at the
    /// latest with the first insert that comes `1.5 × idle` or more after
    /// it; with no inserts, nothing is dropped (nor added). `idle` is counted in whole
    /// milliseconds, rounded up (at least 1 ms), on tokio's clock, so a
    /// paused test clock drives it. With `idle_for` set, each lookup reads
    /// that clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{CircuitBreaker, Keyed};
    ///
    /// static PER_HOST: Keyed<String, CircuitBreaker> =
    ///     Keyed::new(|_| CircuitBreaker::new()).idle_for(Duration::from_secs(600));
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let _ = PER_HOST.get("a.example.com");
    /// tokio::time::advance(Duration::from_secs(601)).await;
    /// let _ = PER_HOST.get("b.example.com"); // sweeps out `a.example.com`
    /// assert_eq!(PER_HOST.len(), 1);
    /// # }
    /// ```
    #[must_use]
    pub const fn idle_for(mut self, idle: Duration) -> Self {
        let ms = idle.as_nanos().div_ceil(1_000_000);
        self.idle_ms = if ms == 0 {
            1
        } else if ms > u64::MAX as u128 {
            u64::MAX
        } else {
            ms as u64
        };
        self
    }

    /// How many keys the map holds now.
    ///
    /// At most `max_keys`; instances evicted while callers still held them
    /// are not counted.
    ///
    /// ```
    /// use retry_runtime::{Bulkhead, Keyed};
    ///
    /// let per_tenant: Keyed<u32, Bulkhead> = Keyed::new(|_| Bulkhead::new(8));
    /// let _ = per_tenant.get(&1);
    /// let _ = per_tenant.get(&1);
    /// let _ = per_tenant.get(&2);
    /// assert_eq!(per_tenant.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the map holds no key.
    ///
    /// ```
    /// use retry_runtime::{Bulkhead, Keyed};
    ///
    /// let per_tenant: Keyed<u32, Bulkhead> = Keyed::new(|_| Bulkhead::new(8));
    /// assert!(per_tenant.is_empty());
    /// let _ = per_tenant.get(&1);
    /// assert!(!per_tenant.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Milliseconds since the epoch on tokio's clock, if the map has an
    /// `idle_for`; `None`, without reading the clock, if not.
    fn now(&self) -> Option<u64> {
        if self.idle_ms == 0 {
            return None;
        }
        let now = Instant::now();
        let epoch = *self.epoch.get_or_init(|| now);
        let ms = now.saturating_duration_since(epoch).as_millis();
        Some(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

impl<K: Hash + Eq, T> Keyed<K, T> {
    /// The instance for `key`, made by the factory if the map has none.
    ///
    /// Takes the key in any borrowed form that turns back into a `K` with
    /// `to_owned` (`&str` for a `String` key), only done when inserting. A
    /// key that is itself a reference, such as a `&'static str`, is passed
    /// by reference: `get(&"/search")`. Making room for the insert
    /// may evict other keys: see [Bounded memory](Self#bounded-memory).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use retry_runtime::{CircuitBreaker, Keyed};
    ///
    /// static PER_HOST: Keyed<String, CircuitBreaker> = Keyed::new(|_| CircuitBreaker::new());
    ///
    /// let first = PER_HOST.get("db.internal");
    /// let again = PER_HOST.get(&String::from("db.internal"));
    /// assert!(Arc::ptr_eq(&first, &again));
    /// assert!(!Arc::ptr_eq(&first, &PER_HOST.get("cache.internal")));
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Arc<T>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let hash = self.seed.hash(key);
        // Bits 32 to 35: the shard's map indexes its table with the low
        // bits and tags entries with the top 7, so within a shard the
        // hashes stay as spread as they were.
        let shard = &self.shards[(hash >> 32) as usize & (SHARDS - 1)];
        let now = self.now();
        match self.find(shard, hash, key, now) {
            Some(value) => value,
            None => self.insert(shard, hash, key),
        }
    }

    fn find<Q>(&self, shard: &Shard<K, T>, hash: u64, key: &Q, now: Option<u64>) -> Option<Arc<T>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let map = shard.read();
        let probe: &dyn Probe<Q> = &Lookup { hash, key };
        let slot = map.get(probe)?;
        slot.touch(self.clock.load(Ordering::Relaxed), now);
        Some(Arc::clone(&slot.value))
    }

    #[cold]
    fn insert<Q>(&self, shard: &Shard<K, T>, hash: u64, key: &Q) -> Arc<T>
    where
        K: Borrow<Q>,
        Q: Eq + ToOwned<Owned = K> + ?Sized,
    {
        // A panic in the factory or in `K`'s `Eq` leaves nothing half done
        // (the count is stored after each change), so poison is ignored.
        let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        // Read after the lock, which may have taken a while.
        let now = self.now();
        // Another thread may have inserted it while this one waited.
        if let Some(value) = self.find(shard, hash, key, now) {
            return value;
        }
        let idle = now.map(|now| Idle {
            now,
            ms: self.idle_ms,
        });
        let mut len = self.len.load(Ordering::Relaxed);
        loop {
            len -= evict::make_room(&self.shards, &mut book, len, self.max_keys, idle);
            self.len.store(len, Ordering::Relaxed);
            if len < self.max_keys {
                break;
            }
        }
        let key = key.to_owned();
        let value = Arc::new((self.factory)(&key));
        // Only inserts write the clock, one at a time under `book`.
        let used = self.clock.load(Ordering::Relaxed) + 1;
        self.clock.store(used, Ordering::Relaxed);
        let slot = Slot::new(Arc::clone(&value), used, now.unwrap_or(0));
        shard.write().insert(Stored::new(hash, key), slot);
        self.len.store(len + 1, Ordering::Relaxed);
        value
    }
}

impl<K, T> fmt::Debug for Keyed<K, T> {
    /// The count, the cap and `idle_for`; not the keys.
    ///
    /// ```
    /// use retry_runtime::{Bulkhead, Keyed};
    ///
    /// let per_tenant: Keyed<u32, Bulkhead> = Keyed::new(|_| Bulkhead::new(8)).max_keys(100);
    /// assert_eq!(
    ///     format!("{per_tenant:?}"),
    ///     "Keyed { len: 0, max_keys: 100, idle_for: None, .. }",
    /// );
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle_for = (self.idle_ms > 0).then(|| Duration::from_millis(self.idle_ms));
        f.debug_struct("Keyed")
            .field("len", &self.len())
            .field("max_keys", &self.max_keys)
            .field("idle_for", &idle_for)
            .finish_non_exhaustive()
    }
}
