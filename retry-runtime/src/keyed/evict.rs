//! Making room: which entries go, and when.
//!
//! Runs with the map's insert lock held, so nothing is inserted meanwhile
//! and the count of entries is exact; hits go on, under the shards' read
//! locks. Two passes over the shards, one shard locked at a time:
//!
//! 1. under each read lock, collect the recency stamps of the entries that
//!    are not idle, and count the idle ones;
//! 2. pick the stamp below which the least recently used `batch` entries
//!    lie (`select_nth_unstable`, linear), then under each write lock drop
//!    the idle entries and those.
//!
//! A full map gives up `1/BATCH_SHARE` of its entries at once (at least one),
//! so the two passes, which visit every entry, happen once per that many
//! inserts rather than on each: an insert into a full map of 10,000 costs
//! about 32 entry visits, amortised. Idle entries are swept when the map is
//! full, and otherwise at most twice per `idle_for`.

use super::shard::{Map, Shard};

/// A full map evicts this share of its entries at once.
const BATCH_SHARE: usize = 32;

/// Guarded by the insert lock.
pub(super) struct Book {
    /// Milliseconds since the epoch of the last sweep for idle entries.
    last_sweep: u64,
}

impl Book {
    pub(super) const fn new() -> Self {
        Book { last_sweep: 0 }
    }
}

/// When entries count as idle: unused for `ms` milliseconds at `now`.
#[derive(Clone, Copy)]
pub(super) struct Idle {
    pub(super) now: u64,
    pub(super) ms: u64,
}

impl Idle {
    fn holds(self, seen: u64) -> bool {
        self.now.saturating_sub(seen) >= self.ms
    }
}

/// Evicts what must go before one more entry is inserted; returns how many
/// entries it removed. With `len` entries and room for `max_keys`: nothing
/// unless the map is full or a sweep for idle entries is due.
///
/// May remove none from a full map if every entry it picked was used while
/// it ran; the caller calls again (the entries then share the newest stamp,
/// and are picked regardless).
pub(super) fn make_room<K: Eq, T>(
    shards: &[Shard<K, T>],
    book: &mut Book,
    len: usize,
    max_keys: usize,
    idle: Option<Idle>,
) -> usize {
    let full = len >= max_keys;
    let idle = idle.filter(|idle| {
        // Twice per `idle_for`, so an entry goes at most 1.5 × `idle_for`
        // after its last use (given an insert then).
        full || idle.now.saturating_sub(book.last_sweep) >= (idle.ms / 2).max(1)
    });
    if let Some(idle) = idle {
        book.last_sweep = idle.now;
    }
    if !full && idle.is_none() {
        return 0;
    }

    let mut stamps = Vec::new();
    let mut idle_count = 0;
    for shard in shards {
        for slot in shard.read().values() {
            if idle.is_some_and(|idle| idle.holds(slot.seen())) {
                idle_count += 1;
            } else if full {
                stamps.push(slot.used());
            }
        }
    }
    let batch = if full {
        (max_keys / BATCH_SHARE).max(1)
    } else {
        0
    };
    let mut cut = Cut::new(&mut stamps, batch.saturating_sub(idle_count));

    let mut removed = 0;
    for shard in shards {
        let mut map = shard.write();
        let before = map.len();
        map.retain(|_, slot| {
            let idle = idle.is_some_and(|idle| idle.holds(slot.seen()));
            !(idle || cut.as_mut().is_some_and(|cut| cut.takes(slot.used())))
        });
        removed += before - map.len();
        shrink(&mut map);
    }
    removed
}

/// Which stamps go: every one below `below`, and the first `ties` met that
/// equal it.
struct Cut {
    below: u64,
    ties: usize,
}

impl Cut {
    /// The cut that takes the `n` smallest of `stamps` (all of them if
    /// there are fewer); `None` when `n` is 0.
    fn new(stamps: &mut [u64], n: usize) -> Option<Cut> {
        let n = n.min(stamps.len());
        if n == 0 {
            return None;
        }
        let (lower, &mut below, _) = stamps.select_nth_unstable(n - 1);
        let under = lower.iter().filter(|&&stamp| stamp < below).count();
        Some(Cut {
            below,
            ties: n - under,
        })
    }

    /// Whether an entry last used at `stamp` goes. An entry used since the
    /// first pass has a newer stamp and stays.
    fn takes(&mut self, stamp: u64) -> bool {
        if stamp < self.below {
            true
        } else if stamp == self.below && self.ties > 0 {
            self.ties -= 1;
            true
        } else {
            false
        }
    }
}

/// Gives memory back once a map holds a quarter of what it has room for,
/// after idle entries went: the bound holds for what is allocated, not just
/// for what is live.
fn shrink<K: Eq, T>(map: &mut Map<K, T>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::hashed::{BuildPassThrough, Seed, Stored};
    use super::super::shard::{Map, Shard, Slot};
    use super::{Book, Idle, make_room, shrink};

    /// Puts `key` in `map`, last seen at `seen`.
    fn insert(map: &mut Map<u64, ()>, seed: &Seed, key: u64, seen: u64) {
        map.insert(
            Stored::new(seed.hash(&key), key),
            Slot::new(Arc::new(()), key, seen),
        );
    }

    /// One shard holding `keys` entries, of which the first `fresh` were
    /// seen at `now` and the rest at 0; with its capacity once filled.
    fn filled(keys: u64, fresh: u64, now: u64) -> (Shard<u64, ()>, usize) {
        let seed = Seed::new();
        let shard = Shard::new();
        {
            let mut map = shard.write();
            for key in 0..keys {
                insert(&mut map, &seed, key, if key < fresh { now } else { 0 });
            }
        }
        let capacity = shard.read().capacity();
        (shard, capacity)
    }

    /// Sweeps `shard` for entries unused for a second, at `now`.
    fn sweep(shard: &Shard<u64, ()>, now: u64) -> usize {
        let len = shard.read().len();
        let idle = Idle { now, ms: 1_000 };
        make_room(
            std::slice::from_ref(shard),
            &mut Book::new(),
            len,
            1 << 20,
            Some(idle),
        )
    }

    #[test]
    fn a_map_left_with_under_a_quarter_of_its_room_gives_memory_back() {
        let now = 10_000;
        let (shard, before) = filled(1_000, 100, now);
        assert_eq!(sweep(&shard, now), 900);
        let map = shard.read();
        assert_eq!(map.len(), 100);
        assert!(
            map.capacity() < before / 4,
            "room for {} entries kept after 900 of 1,000 went (was {before})",
            map.capacity()
        );
    }

    /// Giving memory back rehashes every entry left: a map that still holds
    /// a quarter of its room keeps it, so that a map swept down to a steady
    /// size does not reallocate on every sweep. Built without removals: a
    /// removal may leave a tombstone, which `capacity` does not count, so a
    /// swept map's room is known only up to its tombstones.
    #[test]
    fn a_map_that_still_holds_a_quarter_of_its_room_keeps_it() {
        let mut map = Map::with_capacity_and_hasher(1_000, BuildPassThrough);
        let room = map.capacity();
        let seed = Seed::new();
        for key in 0..(room / 4) as u64 {
            insert(&mut map, &seed, key, 0);
        }
        shrink(&mut map);
        assert_eq!(map.capacity(), room);
    }
}
