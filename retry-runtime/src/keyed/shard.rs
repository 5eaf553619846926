//! One shard: a map from keys to instances behind a read-write lock, and
//! the entry it holds per key.
//!
//! A hit takes the read lock only, and records the use in the entry's own
//! atomics, so hits on one shard from several threads run side by side.
//! Only inserts and evictions take the write lock. Each shard is padded to
//! its own pair of cache lines, so that threads on different shards do not
//! contend for the line that holds their lock words.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use super::hashed::{BuildPassThrough, Stored};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::const_fn;
use crate::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Shards per map: a power of two, so that a shard is picked by masking.
pub(super) const SHARDS: usize = 16;

/// The map a shard holds.
pub(super) type Map<K, T> = HashMap<Stored<K>, Slot<T>, BuildPassThrough>;

/// A shard, aligned to 128 bytes (two cache lines: x86 fetches lines in
/// pairs) so that no two shards' locks share a line.
#[repr(align(128))]
pub(super) struct Shard<K, T> {
    map: RwLock<Map<K, T>>,
}

impl<K, T> Shard<K, T> {
    const_fn! {
        pub(super) fn new() -> Self {
            Shard {
                map: RwLock::new(HashMap::with_hasher(BuildPassThrough)),
            }
        }
    }

    /// The map, for a lookup. A panic while the lock was held (in a key's
    /// `Eq`, say) leaves the map consistent, so a poisoned lock is used as is.
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Map<K, T>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The map, to insert into or evict from.
    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Map<K, T>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One key's entry: its instance, and when it was last used.
pub(super) struct Slot<T> {
    pub(super) value: Arc<T>,
    /// The insert count when last used: recency for eviction.
    used: AtomicU64,
    /// Milliseconds since the map's epoch when last used; written only when
    /// the map has an `idle_for`.
    seen: AtomicU64,
}

impl<T> Slot<T> {
    pub(super) fn new(value: Arc<T>, used: u64, seen: u64) -> Self {
        Slot {
            value,
            used: AtomicU64::new(used),
            seen: AtomicU64::new(seen),
        }
    }

    /// Records a use. Relaxed throughout: the stamps order nothing else, and
    /// eviction reads them under the shard's lock. Each is written only when
    /// it changes, so hits on a hot key from several threads read a shared
    /// cache line instead of passing it back and forth.
    pub(super) fn touch(&self, used: u64, seen: Option<u64>) {
        if self.used.load(Ordering::Relaxed) != used {
            self.used.store(used, Ordering::Relaxed);
        }
        // Not a let-chain: the MSRV (1.85) predates them.
        if let Some(seen) = seen {
            if self.seen.load(Ordering::Relaxed) != seen {
                self.seen.store(seen, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub(super) fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}
