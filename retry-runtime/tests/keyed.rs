//! `Keyed`: one instance per key, at most `max_keys` of them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use retry_runtime::{Bulkhead, CircuitBreaker, CircuitState, Keyed, RateLimiter};

/// Live-instance counters, one per test that counts, since tests run in
/// parallel in this binary.
static LIVE: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

/// An instance that counts itself in `LIVE[ID]` while it lives.
struct Tracked<const ID: usize>;

impl<const ID: usize> Tracked<ID> {
    fn new() -> Self {
        LIVE[ID].fetch_add(1, Ordering::Relaxed);
        Tracked
    }

    fn live() -> usize {
        LIVE[ID].load(Ordering::Relaxed)
    }
}

impl<const ID: usize> Drop for Tracked<ID> {
    fn drop(&mut self) {
        LIVE[ID].fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a `Keyed` shows of itself in logs: how full it is and its
/// settings, not the keys (which may be tenants' or users' names).
#[test]
fn debug_shows_the_count_and_the_settings_not_the_keys() {
    let per_tenant: Keyed<String, Bulkhead> = Keyed::new(|_| Bulkhead::new(8))
        .max_keys(100)
        .idle_for(Duration::from_secs(2));
    let _ = per_tenant.get("acme");
    assert_eq!(
        format!("{per_tenant:?}"),
        "Keyed { len: 1, max_keys: 100, idle_for: Some(2s), .. }"
    );
    let plain: Keyed<u32, Bulkhead> = Keyed::new(|_| Bulkhead::new(8));
    assert!(format!("{plain:?}").contains("idle_for: None"), "{plain:?}");
}

/// Threads churning three keys through a map of two, each using the keys
/// the others insert: an insert whose eviction found every entry it picked
/// used meanwhile evicts again, and the map never holds more than its cap.
#[test]
fn a_full_map_raced_by_its_users_stays_within_the_cap() {
    let keyed: Arc<Keyed<u32, Bulkhead>> = Arc::new(Keyed::new(|_| Bulkhead::new(1)).max_keys(2));
    let over = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (keyed, over) = (Arc::clone(&keyed), Arc::clone(&over));
            thread::spawn(move || {
                for i in 0..20_000u32 {
                    let _ = keyed.get(&((i + t) % 3));
                    if keyed.len() > 2 {
                        over.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(over.load(Ordering::Relaxed), 0, "seen over the cap");
    assert!(keyed.len() <= 2);
}

#[test]
fn the_same_key_gets_the_same_instance() {
    static PER_HOST: Keyed<String, CircuitBreaker> =
        Keyed::new(|_| CircuitBreaker::new().failure_threshold(5)).max_keys(10_000);

    let first = PER_HOST.get("a.example.com");
    let by_str = PER_HOST.get("a.example.com");
    let by_string = PER_HOST.get(&String::from("a.example.com"));
    assert!(Arc::ptr_eq(&first, &by_str));
    assert!(Arc::ptr_eq(&first, &by_string));
    assert!(!Arc::ptr_eq(&first, &PER_HOST.get("b.example.com")));
    assert_eq!(PER_HOST.len(), 2);
}

#[test]
fn keys_are_independent() {
    let per_host: Keyed<String, CircuitBreaker> =
        Keyed::new(|_| CircuitBreaker::new().failure_threshold(2));

    for _ in 0..2 {
        per_host
            .get("down.example.com")
            .try_acquire()
            .unwrap()
            .failure();
    }
    assert_eq!(per_host.get("down.example.com").state(), CircuitState::Open);
    assert!(per_host.get("down.example.com").try_acquire().is_err());

    let up = per_host.get("up.example.com");
    assert_eq!(up.state(), CircuitState::Closed);
    up.try_acquire()
        .expect("another key's breaker is closed")
        .success();

    per_host.get("up.example.com").force_open();
    assert!(per_host.get("up.example.com").try_acquire().is_err());
    per_host.get("down.example.com").reset();
    assert!(per_host.get("down.example.com").try_acquire().is_ok());
}

#[test]
fn works_for_every_primitive() {
    let limiters: Keyed<u32, RateLimiter> = Keyed::new(|_| RateLimiter::per_second(1));
    assert!(limiters.get(&1).try_acquire());
    assert!(!limiters.get(&1).try_acquire());
    assert!(limiters.get(&2).try_acquire());

    let bulkheads: Keyed<(String, u16), Bulkhead> = Keyed::new(|_| Bulkhead::new(1));
    let key = (String::from("db"), 5432);
    let held = bulkheads.get(&key);
    let _permit = held.try_acquire().expect("one slot");
    assert!(bulkheads.get(&key).try_acquire().is_none());
    assert!(
        bulkheads
            .get(&(String::from("db"), 5433))
            .try_acquire()
            .is_some()
    );
}

#[test]
fn a_hundred_thousand_keys_stay_within_the_cap() {
    type T = Tracked<0>;
    let keyed: Keyed<String, T> = Keyed::new(|_| T::new()).max_keys(1000);

    let mut peak = 0;
    for i in 0..100_000 {
        let instance = keyed.get(&format!("attacker-{i}"));
        peak = peak.max(keyed.len());
        // The map's instances plus the one held here.
        assert!(T::live() <= 1000 + 1, "{} live at key {i}", T::live());
        drop(instance);
    }
    assert_eq!(peak, 1000);
    assert!(keyed.len() <= 1000);
    // Nothing held outside the map: every evicted instance was freed.
    assert_eq!(T::live(), keyed.len());
    drop(keyed);
    assert_eq!(T::live(), 0);
}

#[test]
fn a_full_map_evicts_the_least_recently_used() {
    let keyed: Keyed<&str, CircuitBreaker> = Keyed::new(|_| CircuitBreaker::new()).max_keys(3);
    let a = keyed.get(&"a");
    let b = keyed.get(&"b");
    let c = keyed.get(&"c");
    let _ = keyed.get(&"a");
    assert_eq!(keyed.len(), 3);

    let d = keyed.get(&"d");
    assert_eq!(keyed.len(), 3);
    // Hits: `a`, `c` and `d` are still there.
    assert!(Arc::ptr_eq(&a, &keyed.get(&"a")));
    assert!(Arc::ptr_eq(&c, &keyed.get(&"c")));
    assert!(Arc::ptr_eq(&d, &keyed.get(&"d")));
    // `b` went: a fresh one (which evicts another).
    assert!(!Arc::ptr_eq(&b, &keyed.get(&"b")));
    assert_eq!(keyed.len(), 3);
}

#[test]
fn eviction_follows_recency_over_many_inserts() {
    let keyed: Keyed<u32, CircuitBreaker> = Keyed::new(|_| CircuitBreaker::new()).max_keys(64);
    let hot: Vec<_> = (0..8).map(|k| keyed.get(&k)).collect();
    for cold in 1000..1200 {
        let _ = keyed.get(&cold);
        // Keep the first 8 keys in use between inserts.
        for (k, instance) in (0..8).zip(&hot) {
            assert!(Arc::ptr_eq(instance, &keyed.get(&k)), "hot key {k} evicted");
        }
        assert!(keyed.len() <= 64);
    }
}

#[test]
fn max_keys_of_zero_keeps_one() {
    let keyed: Keyed<u8, Bulkhead> = Keyed::new(|_| Bulkhead::new(1)).max_keys(0);
    let one = keyed.get(&1);
    assert!(Arc::ptr_eq(&one, &keyed.get(&1)));
    let _ = keyed.get(&2);
    assert_eq!(keyed.len(), 1);
    assert!(!Arc::ptr_eq(&one, &keyed.get(&1)));
}

#[test]
fn an_evicted_instance_stays_usable_by_its_holders() {
    let per_host: Keyed<String, CircuitBreaker> = Keyed::new(|_| CircuitBreaker::new()).max_keys(1);

    let held = per_host.get("flaky.example.com");
    held.force_open();
    let _ = per_host.get("other.example.com");
    assert_eq!(per_host.len(), 1);

    // The holder's breaker is still open and still works.
    assert_eq!(Arc::strong_count(&held), 1);
    assert!(held.try_acquire().is_err());
    held.reset();
    held.try_acquire().unwrap().success();

    // The map forgot it: the key's next breaker is a fresh, closed one.
    let fresh = per_host.get("flaky.example.com");
    assert!(!Arc::ptr_eq(&held, &fresh));
    assert_eq!(fresh.state(), CircuitState::Closed);
}

#[test]
fn two_threads_with_many_keys_keep_the_bound() {
    type T = Tracked<1>;
    let keyed: Keyed<u64, T> = Keyed::new(|_| T::new()).max_keys(500);

    thread::scope(|scope| {
        for thread in 0..2_u64 {
            let keyed = &keyed;
            scope.spawn(move || {
                for i in 0..50_000_u64 {
                    // Half the keys shared by both threads, half their own;
                    // a few hot keys hit throughout.
                    let key = if i % 2 == 0 {
                        i
                    } else {
                        (thread + 1) << 40 | i
                    };
                    let instance = keyed.get(&key);
                    assert!(keyed.len() <= 500);
                    let _ = keyed.get(&(i % 4));
                    // The map's, plus at most two held per thread (an evicted
                    // `instance`, and a hot key's evicted while fetched).
                    assert!(T::live() <= 500 + 4, "{} live", T::live());
                    drop(instance);
                }
            });
        }
    });
    assert!(keyed.len() <= 500);
    assert_eq!(T::live(), keyed.len());
}

#[test]
fn two_threads_get_one_instance_per_key() {
    let keyed: Keyed<u32, CircuitBreaker> = Keyed::new(|_| CircuitBreaker::new());
    let got: Vec<Vec<Arc<CircuitBreaker>>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| (0..2000).map(|k| keyed.get(&k)).collect()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (first, second) in got[0].iter().zip(&got[1]) {
        assert!(Arc::ptr_eq(first, second));
    }
    assert_eq!(keyed.len(), 2000);
}

/// A map that is not full is swept by an insert only once `idle / 2` has
/// passed since the last sweep (the documented cost: at most two sweeps
/// per `idle_for`), so an idle entry can outlive `idle` until then.
#[tokio::test(start_paused = true)]
async fn a_map_not_full_is_swept_at_most_twice_per_idle_period() {
    let keyed: Keyed<&str, Bulkhead> =
        Keyed::new(|_| Bulkhead::new(1)).idle_for(Duration::from_secs(10));
    let _ = keyed.get(&"a");
    tokio::time::advance(Duration::from_secs(6)).await;
    let _ = keyed.get(&"b"); // sweeps: `a` is idle for 6 s and stays
    tokio::time::advance(Duration::from_millis(4500)).await;
    let _ = keyed.get(&"c"); // 4.5 s since that sweep: none
    assert_eq!(
        keyed.len(),
        3,
        "`a`, idle for 10.5 s, waits for the next sweep"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let _ = keyed.get(&"d"); // 5.5 s since: sweeps `a` out
    assert_eq!(keyed.len(), 3);
    let fresh = keyed.get(&"a");
    assert_eq!(keyed.len(), 4, "`a` was gone: {fresh:?}");
}

/// A full map gives up a batch of 1/32 of its entries, idle ones first and
/// counted in it: with two idle entries in a full map of 64 (a batch of
/// two), those two go and no recently used one does.
#[tokio::test(start_paused = true)]
async fn a_full_map_counts_its_idle_entries_in_the_batch_it_gives_up() {
    let keyed: Keyed<u32, Bulkhead> = Keyed::new(|_| Bulkhead::new(1))
        .max_keys(64)
        .idle_for(Duration::from_secs(10));
    let _ = keyed.get(&0);
    let _ = keyed.get(&1);
    tokio::time::advance(Duration::from_secs(4)).await;
    for key in 2..64 {
        let _ = keyed.get(&key);
    }
    tokio::time::advance(Duration::from_millis(6500)).await;
    let _ = keyed.get(&64); // full: `0` and `1`, idle for 10.5 s, go
    assert_eq!(keyed.len(), 63);
}

#[tokio::test(start_paused = true)]
async fn idle_entries_go_at_the_next_insert() {
    type T = Tracked<2>;
    let keyed: Keyed<&str, T> = Keyed::new(|_| T::new()).idle_for(Duration::from_secs(10));

    let a = keyed.get(&"a");
    drop(keyed.get(&"b"));
    tokio::time::advance(Duration::from_secs(6)).await;
    let _ = keyed.get(&"a"); // used: stays
    tokio::time::advance(Duration::from_secs(6)).await;

    // `b`, idle for 12 s, goes with this insert; `a`, idle for 6 s, stays.
    drop(keyed.get(&"c"));
    assert_eq!(keyed.len(), 2);
    assert!(Arc::ptr_eq(&a, &keyed.get(&"a")));
    assert_eq!(T::live(), 2);

    // No insert, no sweep: lookups never evict.
    tokio::time::advance(Duration::from_secs(100)).await;
    let _ = keyed.get(&"a");
    let _ = keyed.get(&"c");
    assert_eq!(keyed.len(), 2);
    tokio::time::advance(Duration::from_secs(100)).await;

    // Both idle for 100 s now; `a` is only kept alive by the holder here.
    drop(keyed.get(&"d"));
    assert_eq!(keyed.len(), 1);
    assert_eq!(T::live(), 2);
    assert!(!Arc::ptr_eq(&a, &keyed.get(&"a")));
}

#[tokio::test(start_paused = true)]
async fn an_entry_in_use_is_never_idle() {
    let keyed: Keyed<u32, Bulkhead> =
        Keyed::new(|_| Bulkhead::new(1)).idle_for(Duration::from_millis(100));
    let kept = keyed.get(&0);
    for key in 1..1000 {
        tokio::time::advance(Duration::from_millis(30)).await;
        assert!(Arc::ptr_eq(&kept, &keyed.get(&0)));
        drop(keyed.get(&key));
        // Key 0 and the keys of the last 100 ms or so.
        assert!(keyed.len() <= 6, "{} keys", keyed.len());
    }
}

/// An idle limit past `u64::MAX` milliseconds is "never idle", not the
/// milliseconds wrapped around (here 2^64 ms + 384 ms would be 384 ms);
/// and the map is not empty while it holds one entry.
#[tokio::test(start_paused = true)]
async fn an_idle_limit_past_every_clock_never_sweeps() {
    let past_u64_ms = Duration::from_secs(18_446_744_073_709_552);
    let keyed: Keyed<u32, Bulkhead> = Keyed::new(|_| Bulkhead::new(1)).idle_for(past_u64_ms);
    assert!(keyed.is_empty());
    drop(keyed.get(&0));
    assert!(!keyed.is_empty());
    tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
    drop(keyed.get(&1));
    assert_eq!(keyed.len(), 2);
}

#[test]
fn a_panicking_factory_leaves_the_map_usable() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    fn flaky() -> u32 {
        assert!(
            CALLS.fetch_add(1, Ordering::Relaxed) > 0,
            "first call fails"
        );
        7
    }
    let keyed: Keyed<u32, u32> = Keyed::new(|_| flaky()).max_keys(1);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| keyed.get(&1)));
    assert!(caught.is_err());
    assert!(keyed.is_empty());
    assert_eq!(*keyed.get(&1), 7);
    assert_eq!(*keyed.get(&2), 7);
    assert_eq!(keyed.len(), 1);
}

/// Nanoseconds per call per thread of `call(thread, i)` run `CALLS` times
/// on each of `threads` threads: the best of 5 runs, as other processes
/// share the machine.
fn per_call(threads: usize, call: impl Fn(usize, usize) + Sync) -> f64 {
    const CALLS: usize = 2_000_000;
    (0..5)
        .map(|_| {
            let start = Instant::now();
            thread::scope(|scope| {
                for t in 0..threads {
                    let call = &call;
                    scope.spawn(move || (0..CALLS).for_each(|i| call(t, i)));
                }
            });
            start.elapsed().as_nanos() as f64 / CALLS as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Prints what a hit costs and what a key weighs:
/// `cargo test -p retry-runtime --release --test keyed -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure() {
    use std::collections::HashMap;
    use std::hint::black_box;
    use std::sync::RwLock;

    const KEYS: usize = 1000;
    let hosts: Vec<String> = (0..KEYS).map(|i| format!("host-{i}.example.com")).collect();
    // Both threads over all keys, or each over its own half.
    let shared = |t: usize, i: usize| &hosts[(i * 7 + t * 500) % KEYS];
    let own = |t: usize, i: usize| &hosts[(i * 7) % 500 + t * 500];

    let keyed = Keyed::<String, CircuitBreaker>::new(|_| CircuitBreaker::new());
    let idle = Keyed::<String, CircuitBreaker>::new(|_| CircuitBreaker::new())
        .idle_for(Duration::from_secs(60));
    let naive: RwLock<HashMap<String, Arc<CircuitBreaker>>> = RwLock::default();
    for host in &hosts {
        let _ = keyed.get(host.as_str());
        let _ = idle.get(host.as_str());
        naive
            .write()
            .unwrap()
            .insert(host.clone(), Arc::new(CircuitBreaker::new()));
    }
    let one = Arc::new(CircuitBreaker::new());
    let naive_get = |host: &String| Arc::clone(&naive.read().unwrap()[host.as_str()]);

    for (label, threads, ns) in [
        (
            "Keyed hit",
            1,
            per_call(1, |t, i| drop(black_box(keyed.get(shared(t, i).as_str())))),
        ),
        (
            "Keyed hit, all keys",
            2,
            per_call(2, |t, i| drop(black_box(keyed.get(shared(t, i).as_str())))),
        ),
        (
            "Keyed hit, own keys",
            2,
            per_call(2, |t, i| drop(black_box(keyed.get(own(t, i).as_str())))),
        ),
        (
            "Keyed hit, idle_for",
            1,
            per_call(1, |t, i| drop(black_box(idle.get(shared(t, i).as_str())))),
        ),
        (
            "Keyed hit, idle_for, own keys",
            2,
            per_call(2, |t, i| drop(black_box(idle.get(own(t, i).as_str())))),
        ),
        (
            "one RwLock<HashMap>",
            1,
            per_call(1, |t, i| drop(black_box(naive_get(shared(t, i))))),
        ),
        (
            "one RwLock<HashMap>, own keys",
            2,
            per_call(2, |t, i| drop(black_box(naive_get(own(t, i))))),
        ),
        (
            "Arc::clone of one Arc",
            2,
            per_call(2, |_, _| drop(black_box(Arc::clone(&one)))),
        ),
    ] {
        println!("{label}, {threads} thread(s): {ns:.1} ns per call per thread");
    }

    let start = Instant::now();
    let full: Keyed<u64, CircuitBreaker> = Keyed::new(|_| CircuitBreaker::new()).max_keys(10_000);
    for key in 0..1_000_000_u64 {
        black_box(full.get(&key));
    }
    let per_miss = start.elapsed().as_nanos() as f64 / 1e6;
    println!("miss into a full map of 10,000 (evicting): {per_miss:.0} ns per call");

    println!(
        "size_of: String {}, CircuitBreaker {}, RateLimiter {}, Bulkhead {}, Keyed {}",
        size_of::<String>(),
        size_of::<CircuitBreaker>(),
        size_of::<RateLimiter>(),
        size_of::<Bulkhead>(),
        size_of::<Keyed<String, CircuitBreaker>>(),
    );

    let rss = || -> usize {
        let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: usize = status
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        pages * 4096
    };
    let keys: Vec<String> = (0..100_000).map(|i| format!("tenant-{i:08}")).collect();
    let before = rss();
    let keyed: Keyed<String, CircuitBreaker> =
        Keyed::new(|_| CircuitBreaker::new()).max_keys(100_000);
    keys.iter().for_each(|key| drop(keyed.get(key.as_str())));
    println!(
        "resident memory per key (a 15-byte String, a CircuitBreaker): {} bytes",
        (rss() - before) / keys.len()
    );
    let distinct: HashSet<_> = keys
        .iter()
        .map(|k| Arc::as_ptr(&keyed.get(k.as_str())))
        .collect();
    assert_eq!(distinct.len(), keys.len());
}

#[test]
fn the_factory_is_given_the_key() {
    // A tenant's plan decides its burst: the factory sees which tenant.
    let per_tenant: Keyed<String, RateLimiter> = Keyed::new(|tenant| {
        let burst = if tenant.starts_with("gold:") { 5 } else { 1 };
        RateLimiter::per_hour(1).burst(burst)
    });
    let taken = |tenant: &str| {
        let limiter = per_tenant.get(tenant);
        (0..10).filter(|_| limiter.try_acquire()).count()
    };
    assert_eq!(taken("gold:acme"), 5);
    assert_eq!(taken("free:bob"), 1);
    // Made once per key: the gold tenant's bucket is still empty.
    assert_eq!(taken("gold:acme"), 0);
}
