//! What a shared retry budget's background flush sends, against a real
//! `redis-server` (feature `redis`; `redis_support` starts one per test).
//! `redis_retry_budget.rs` covers the fleet's bound, funding across
//! replicas and outages; this file pins the flush's own promise, which a
//! mutation pass found unjudged there: a replica sends what it collected
//! and tops its lease up, and nothing else (none for an idle replica).

#![cfg(feature = "redis")]

mod redis_support;

use std::time::Duration;

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
