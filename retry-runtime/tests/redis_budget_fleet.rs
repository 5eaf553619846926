//! What a shared retry budget's background flush sends, against a real
//! `redis-server` (feature `redis`; `redis_support` starts one per test).
//! `redis_retry_budget.rs` covers the fleet's bound, funding across
//! replicas and outages; this file pins the flush's own promise, which a
//! mutation pass found unjudged there: a replica sends what it collected
//! and tops its lease up, and nothing else (none for an idle replica); a
//! withdrawal tops the lease up once half of it is spent, and not before.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::{Duration, Instant};

use redis_support::{Server, eventually};
use retry_runtime::RetryBudget;

/// The deposits the fleet's window holds for `key` (the `d<slot>` fields).
fn deposits_in_redis(server: &Server, key: &str) -> u64 {
    let reply = server.command(&format!(
        "EVAL \"local t = redis.call('HGETALL', KEYS[1]) local n = 0 \
         for i = 1, #t, 2 do if string.sub(t[i], 1, 1) == 'd' then \
         n = n + tonumber(t[i + 1]) end end return n\" 1 {{steadfast:rb:{key}}}"
    ));
    reply
        .trim()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("EVAL answered {reply:?}"))
}

/// "None for an idle replica" (the module docs' cost of the batched
/// deposits): once the lease is full and nothing was collected, the
/// periodic flush sends nothing. And deposits do not wait for a lease to
/// need a top-up or for 256 of them: the next periodic flush sends them.
#[test]
fn a_replica_with_a_full_lease_flushes_what_it_collected_and_nothing_else() {
    let server = Server::start();
    let redis = server.redis();
    let budget: &'static RetryBudget = Box::leak(Box::new(
        RetryBudget::new()
            .ttl(Duration::from_secs(10))
            .shared(redis, "idle"),
    ));
    // The first withdrawal finds no lease yet; it starts the first round
    // trip, which leases 4 of the fleet's 100 reserved retries.
    assert!(!budget.withdraw());
    eventually("the first lease", Duration::from_secs(3), || {
        budget.fleet_allowance() == Some(96)
    });
    let trips = budget.redis_round_trips();
    // Ten periodic flushes (every 100 ms) with a full lease and nothing
    // collected: no round trip.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(budget.redis_round_trips(), trips, "round trips while idle");

    // 64 calls on a thread that then exits (its per-thread count is handed
    // over): far below the 256 that start a flush of their own, and the
    // lease still full.
    std::thread::spawn(move || {
        for _ in 0..64 {
            budget.deposit();
        }
    })
    .join()
    .unwrap();
    eventually(
        "the deposits in the fleet's window",
        Duration::from_secs(3),
        || deposits_in_redis(&server, "idle") == 64,
    );
    assert!(budget.redis_round_trips() > trips);
}

/// A lease of 8 from a window of 60 s (slots of 6 s: no grant leaves it
/// during the test), whose reserve (600) no test here spends.
const RESERVE: i64 = 600;
const LEASE: u32 = 8;

/// Waits until every retry the fleet granted is held or was `spent`: the
/// lease is full and no round trip is in flight (the allowance is what
/// the window allows after all the grants).
fn full_lease(budget: &RetryBudget, spent: i64) {
    eventually("a full lease", Duration::from_secs(3), || {
        budget.fleet_allowance() == Some(RESERVE - i64::from(LEASE) - spent)
    });
}

/// "Top up once half is spent, so a steady retrier rarely finds the lease
/// empty" (`Fleet::withdraw`), and the periodic flush fills a lease that
/// is only partly spent. A round trip is counted when it is started, in
/// the withdrawal that starts it, so which withdrawal started one is seen
/// at once, on no clock.
#[test]
fn a_withdrawal_tops_the_lease_up_once_half_is_spent_and_the_flush_fills_it() {
    let server = Server::start();
    let budget: &'static RetryBudget = Box::leak(Box::new(
        RetryBudget::new()
            .min_per_second(10)
            .ttl(Duration::from_secs(60))
            .lease(LEASE)
            .shared(server.redis(), "half"),
    ));
    assert!(!budget.withdraw(), "no lease before the first answer");
    full_lease(budget, 0);

    // One spent of 8: no top-up from the withdrawal; the next flush (every
    // 100 ms) fills the lease.
    let trips = budget.redis_round_trips();
    assert!(budget.withdraw());
    assert_eq!(budget.redis_round_trips(), trips, "a top-up at 7 of 8");
    full_lease(budget, 1);

    // Four spent in a row: the fourth leaves half the lease and starts the
    // top-up (a flush may start it first, once the first is spent; never
    // before, with the lease full).
    let trips = budget.redis_round_trips();
    let started: Vec<u64> = (0..4)
        .map(|_| {
            assert!(budget.withdraw());
            budget.redis_round_trips() - trips
        })
        .collect();
    assert_eq!(started[0], 0, "a top-up at 7 of 8: {started:?}");
    assert_eq!(started[3], 1, "no top-up at 4 of 8: {started:?}");
    full_lease(budget, 5);
}

/// "How long an exhausted fleet is not asked again" (`State::cooldown`: a
/// flush period here): a replica whose fleet granted less than it asked
/// asks again once per cooldown, from a withdrawal or the flush, not once
/// per withdrawal. An upper bound on round trips for the time that
/// passed, which a slow machine only loosens.
#[test]
fn an_exhausted_fleet_is_asked_again_once_per_cooldown() {
    let server = Server::start();
    // A reserve of 1/s × 4 s = 4 against a lease of 8: the first answer
    // grants 4 of the 8 asked, and every later one none.
    let budget: &'static RetryBudget = Box::leak(Box::new(
        RetryBudget::new()
            .min_per_second(1)
            .ratio(0.0)
            .ttl(Duration::from_secs(4))
            .lease(LEASE)
            .shared(server.redis(), "exhausted"),
    ));
    assert!(!budget.withdraw());
    eventually("the first answer", Duration::from_secs(3), || {
        budget.fleet_allowance() == Some(0)
    });
    let start = Instant::now();
    let trips = budget.redis_round_trips();
    let mut allowed = 0;
    for _ in 0..300 {
        if budget.withdraw() {
            allowed += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let trips = budget.redis_round_trips() - trips;
    let cooldowns = start.elapsed().as_millis() / 100;
    assert_eq!(allowed, 4, "the 4 granted, then nothing");
    assert!(
        u128::from(trips) <= cooldowns + 2,
        "{trips} round trips in {cooldowns} cooldowns"
    );
}
