//! Per-key limits for a whole fleet (feature `redis`): a `Keyed` map of
//! limiters, each shared under its tenant's key (`shared_as`), in several
//! processes against a real `redis-server` started on a free port.

#![cfg(feature = "redis")]

mod redis_support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redis_support::Server;
use retry_runtime::redis::Redis;
use retry_runtime::{Keyed, RateLimiter};

const TENANTS: u32 = 200;
const PROCESSES: usize = 3;
const RUN: Duration = Duration::from_secs(2);

/// The environment variable that makes a test of this binary a child
/// process (a replica) of the test that spawned it.
const CHILD: &str = "STEADFAST_REDIS_TENANT_CHILD";

/// This process's Redis, the test's server (a `Keyed` factory is a plain
/// `fn`, so it reaches the Redis through a `static`, as in a service).
static REDIS: OnceLock<Redis> = OnceLock::new();

/// A client for the test's server with a timeout of a second: these tests
/// measure accuracy and round trips, and on a loaded two-core machine
/// several processes' round trips may take longer than the default 50 ms,
/// which would send decisions to the fallback (the fault tests of
/// `redis_rate_limiter.rs` cover that).
fn redis_for_a_loaded_machine(url: String) -> Redis {
    Redis::new(Box::leak(url.into_boxed_str())).timeout(Duration::from_secs(1))
}

/// One replica: every tenant's limiter (10 a second, burst 10) from one
/// `Keyed`, each shared under `tenant:<n>`; tries each tenant in turn for
/// `RUN`, then prints what each tenant was admitted.
#[test]
fn tenants_child() {
    let Ok(url) = std::env::var(CHILD) else {
        return;
    };
    REDIS.get_or_init(|| redis_for_a_loaded_machine(url));
    static PER_TENANT: Keyed<u32, RateLimiter> = Keyed::new(|tenant| {
        let redis = REDIS.get().expect("set before the first call");
        RateLimiter::per_second(10).shared_as(redis, format!("tenant:{tenant}"))
    });
    let started = Instant::now();
    let mut admitted = vec![0u32; TENANTS as usize];
    while started.elapsed() < RUN {
        for tenant in 0..TENANTS {
            if PER_TENANT.get(&tenant).try_acquire() {
                admitted[tenant as usize] += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let degraded: u64 = (0..TENANTS)
        .map(|tenant| PER_TENANT.get(&tenant).degraded_decisions())
        .sum();
    let counts: Vec<String> = admitted.iter().map(u32::to_string).collect();
    println!("DEGRADED={degraded} ADMITTED={}", counts.join(","));
}

#[test]
fn three_processes_hold_every_tenant_to_its_fleet_limit() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let server = Server::start();
    let started = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| redis_support::spawn_child("tenants_child", CHILD, server.url))
        .collect();
    let mut per_tenant = vec![0u64; TENANTS as usize];
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|line| line.find("DEGRADED=").map(|at| &line[at..]))
            .expect(&stdout);
        let (degraded, admitted) = line.split_once(' ').unwrap();
        assert_eq!(degraded, "DEGRADED=0");
        let admitted = admitted.trim_start_matches("ADMITTED=").split(',');
        for (total, count) in per_tenant.iter_mut().zip(admitted) {
            *total += count.parse::<u64>().unwrap();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Each tenant's fleet-wide bucket grants at most its burst and its
    // rate over the run (the children start within the elapsed time
    // measured here); each replica's lease (min(10 / 4, 16) = 2) adds at
    // most 2. Three local limiters would admit 3 × (10 + 10 × 2) = 90.
    let bound = 10.0 + 10.0 * elapsed + 2.0 * PROCESSES as f64;
    let (fewest, most) = (
        per_tenant.iter().min().unwrap(),
        per_tenant.iter().max().unwrap(),
    );
    println!(
        "{TENANTS} tenants over {elapsed:.2} s: {fewest} to {most} admitted each, bound {bound:.0}"
    );
    for (tenant, &total) in per_tenant.iter().enumerate() {
        assert!(
            (total as f64) <= bound,
            "tenant {tenant}: {total} admitted, bound {bound}"
        );
        // Served close to its limit: the fleet shares, it does not starve.
        assert!(total >= 20, "tenant {tenant}: only {total} admitted");
    }
}

const COLD: u32 = 10_000;

/// One replica of the hot-and-cold test: one hot tenant taken from as fast
/// as its limit allows, and 10,000 cold ones taken from once each; prints
/// the round trips each kind cost.
#[test]
fn hot_and_cold_child() {
    let Ok(url) = std::env::var(CHILD) else {
        return;
    };
    REDIS.get_or_init(|| redis_for_a_loaded_machine(url));
    static PER_TENANT: Keyed<u32, RateLimiter> = Keyed::new(|tenant| {
        let redis = REDIS.get().expect("set before the first call");
        // The hot tenant (0) has a large plan, above what the four
        // replicas take (about 5,000 a second each): a fleet held at its
        // limit pays a round trip for each empty answer, which is the
        // refused calls' cost, not the hot key's. The others a small one.
        let limiter = if *tenant == 0 {
            RateLimiter::per_second(40_000).burst(1_000)
        } else {
            RateLimiter::per_second(10)
        };
        limiter.shared_as(redis, format!("tenant:{tenant}"))
    })
    .max_keys(20_000);
    let hot = PER_TENANT.get(&0);
    let started = Instant::now();
    let mut hot_admitted = 0u64;
    while started.elapsed() < Duration::from_millis(500) {
        if hot.try_acquire() {
            hot_admitted += 1;
        }
        // Four processes on a two-core machine: spinning would starve the
        // others' round trips (and Redis) of the CPU.
        std::thread::sleep(Duration::from_micros(50));
    }
    let mut cold_admitted = 0u64;
    // A refusal says why, for the parent's assertion: what the limiter
    // knew of the fleet's bucket, and whether Redis answered it.
    let mut refused = Vec::new();
    for tenant in 1..=COLD {
        let limiter = PER_TENANT.get(&tenant);
        let asked = Instant::now();
        if limiter.try_acquire() {
            cold_admitted += 1;
        } else {
            refused.push(format!(
                "tenant:{tenant} after {:?}, {} degraded, {} round trips, {:?}",
                asked.elapsed(),
                limiter.degraded_decisions(),
                limiter.redis_round_trips(),
                limiter.quota()
            ));
        }
    }
    let cold_trips: u64 = (1..=COLD)
        .map(|tenant| PER_TENANT.get(&tenant).redis_round_trips())
        .sum();
    println!(
        "HOT={hot_admitted} HOT_TRIPS={} COLD={cold_admitted} COLD_TRIPS={cold_trips} REFUSED={:?}",
        hot.redis_round_trips(),
        // The first few say why; a line of ten thousand would say no more.
        &refused[..refused.len().min(5)]
    );
}

/// The number in `line` after `name=`.
fn field(line: &str, name: &str) -> u64 {
    let at = line.find(&format!("{name}=")).expect(line) + name.len() + 1;
    line[at..]
        .split(' ')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect(line)
}

#[test]
fn a_hot_tenant_is_cheap_and_ten_thousand_cold_ones_cost_a_round_trip_each() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let server = Server::start();
    let children: Vec<_> = (0..4)
        .map(|_| redis_support::spawn_child("hot_and_cold_child", CHILD, server.url))
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find(|line| line.contains("HOT="))
            .expect(&stdout);
        println!("{line}");
        let (hot, hot_trips) = (field(line, "HOT"), field(line, "HOT_TRIPS"));
        let (cold, cold_trips) = (field(line, "COLD"), field(line, "COLD_TRIPS"));
        // A hot key's lease (min(1000 / 4, 16) = 16) makes a round trip
        // bring about 12 tokens.
        assert!(hot > 500, "{hot} admitted on the hot key");
        assert!(
            hot_trips as f64 / hot as f64 <= 0.1,
            "{hot_trips} round trips for {hot} admitted"
        );
        // A cold key: its first take is its one round trip, which brings
        // its lease; nothing is refused while the fleet is under its limit.
        assert_eq!(cold, u64::from(COLD), "{line}");
        assert!(cold_trips <= u64::from(COLD), "{cold_trips} round trips");
    }
    // Every tenant's bucket is full again a second after its last take
    // (the hot one sooner): Redis forgets each key then.
    let keys = || {
        let reply = server.command("DBSIZE");
        reply.trim().trim_start_matches(':').parse::<u64>().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while keys() > 0 {
        assert!(Instant::now() < deadline, "{} keys left", keys());
        std::thread::sleep(Duration::from_millis(100));
    }
}
