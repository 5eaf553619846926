//! Keys hashed once per call.
//!
//! A lookup hashes its key once, with SipHash under keys drawn at random the
//! first time the map is used ([`Seed`]): the hash picks the shard and is
//! then handed to that shard's map as is, through [`PassThrough`], instead
//! of being computed a second time. Random keys matter here: the keys are
//! often chosen by whoever sends the requests (a host, a tenant), and with a
//! fixed hash function they could pick keys that all collide.
//!
//! The map stores each key next to its hash ([`Stored`]), and is searched
//! with a borrowed form of the key (`&str` for a `String`) through a
//! [`Probe`] trait object, which is how a map keyed by one type is searched
//! with another that `Borrow` does not directly relate. Two keys with the
//! same hash are still told apart by comparing the keys.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

/// SipHash with keys drawn on first use, so that it can be built in a
/// `const fn` (a `RandomState` cannot).
pub(super) struct Seed(OnceLock<RandomState>);

impl Seed {
    pub(super) const fn new() -> Self {
        Seed(OnceLock::new())
    }

    pub(super) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.0.get_or_init(RandomState::new).hash_one(key)
    }
}

/// A key as the map holds it: with its hash, which is all the map hashes.
pub(super) struct Stored<K> {
    hash: u64,
    key: K,
}

impl<K> Stored<K> {
    pub(super) fn new(hash: u64, key: K) -> Self {
        Stored { hash, key }
    }
}

impl<K> Hash for Stored<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: Eq> PartialEq for Stored<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Stored<K> {}

/// A key in the borrowed form `Q` a lookup uses, with its hash: both a
/// [`Stored`] key and a [`Lookup`] are one, so the map can compare them.
pub(super) trait Probe<Q: ?Sized> {
    fn hash(&self) -> u64;
    fn key(&self) -> &Q;
}

impl<K: Borrow<Q>, Q: ?Sized> Probe<Q> for Stored<K> {
    fn hash(&self) -> u64 {
        self.hash
    }

    fn key(&self) -> &Q {
        self.key.borrow()
    }
}

/// What a lookup searches for: a borrowed key and its hash.
pub(super) struct Lookup<'a, Q: ?Sized> {
    pub(super) hash: u64,
    pub(super) key: &'a Q,
}

impl<Q: ?Sized> Probe<Q> for Lookup<'_, Q> {
    fn hash(&self) -> u64 {
        self.hash
    }

    fn key(&self) -> &Q {
        self.key
    }
}

// Consistent with `Stored`'s own `Hash` and `Eq`, as `Borrow` requires:
// the same hash written, and keys compared through `K: Borrow<Q>`, whose
// contract makes `K`'s equality agree with `Q`'s.
impl<Q: ?Sized> Hash for dyn Probe<Q> + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(Probe::hash(self));
    }
}

impl<Q: Eq + ?Sized> PartialEq for dyn Probe<Q> + '_ {
    fn eq(&self, other: &Self) -> bool {
        Probe::hash(self) == Probe::hash(other) && self.key() == other.key()
    }
}

impl<Q: Eq + ?Sized> Eq for dyn Probe<Q> + '_ {}

impl<'a, K: Borrow<Q> + 'a, Q: ?Sized + 'a> Borrow<dyn Probe<Q> + 'a> for Stored<K> {
    fn borrow(&self) -> &(dyn Probe<Q> + 'a) {
        self
    }
}

/// Builds [`PassThrough`] hashers; `const`, unlike `RandomState`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BuildPassThrough;

impl BuildHasher for BuildPassThrough {
    type Hasher = PassThrough;

    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// Hands on the one `u64` a [`Stored`] key or a [`Probe`] writes.
#[derive(Debug)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Never called: the map's keys only ever write one `u64`. Folding
        // the bytes in keeps it a hash rather than a panic all the same.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
}
