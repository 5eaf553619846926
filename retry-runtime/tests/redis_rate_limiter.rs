//! Shared rate limiters against a real `redis-server` (feature `redis`):
//! each test starts its own on a free port (`redis_support`). Redis's clock
//! is real time, so these run on the real clock: rates of tens to hundreds
//! a second, assertions on counts within the stated accuracy, and only
//! generous bounds on durations.

#![cfg(feature = "redis")]

mod redis_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_support::Server;
use retry_runtime::redis::{Error, Fallback, Redis};
use retry_runtime::{InsufficientCapacity, Policy, RateLimiter, Rejected};

fn leak(limiter: RateLimiter) -> &'static RateLimiter {
    Box::leak(Box::new(limiter))
}

/// Two "replicas" (distinct instances, one key) calling `try_acquire` as
/// fast as they can for `run`: what each admitted.
async fn hammer(replicas: [&'static RateLimiter; 2], run: Duration) -> [u64; 2] {
    let tasks = replicas.map(|limiter| {
        tokio::spawn(async move {
            let start = Instant::now();
            let mut admitted = 0;
            while start.elapsed() < run {
                if limiter.try_acquire() {
                    admitted += 1;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            admitted
        })
    });
    let [a, b] = tasks;
    [a.await.unwrap(), b.await.unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_limit_within_the_stated_accuracy() {
    let server = Server::start();
    let redis = server.redis();
    // 100/s, burst 20, default lease min(20/4, 10) = 5.
    let a = leak(RateLimiter::per_second(100).burst(20).shared(redis, "api"));
    let b = leak(RateLimiter::per_second(100).burst(20).shared(redis, "api"));
    let start = Instant::now();
    let [from_a, from_b] = hammer([a, b], Duration::from_secs(1)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let total = from_a + from_b;
    // The global bucket grants at most burst + rate × elapsed; the leases
    // add at most replicas × lease = 2 × 5.
    let bound = 20.0 + 100.0 * elapsed + 10.0;
    println!("a {from_a}, b {from_b}, total {total}, bound {bound:.0}, elapsed {elapsed:.3}s");
    assert!((total as f64) <= bound, "{total} admitted, bound {bound}");
    // Local limiters would admit 2 × (20 + 100) = 240; shared, not much less
    // than the global limit.
    assert!(total >= 90, "only {total} admitted");
    assert!(from_a > 0 && from_b > 0);
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
    // What a log of the client shows: the kind of connection it made.
    assert!(
        format!("{redis:?}").contains("Connection::Single"),
        "{redis:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_costs_far_fewer_round_trips_than_calls() {
    let server = Server::start();
    let redis = server.redis();
    // Lease min(400 / 4, 10) = 10.
    let a = leak(
        RateLimiter::per_second(1000)
            .burst(400)
            .shared(redis, "steady"),
    );
    let b = leak(
        RateLimiter::per_second(1000)
            .burst(400)
            .shared(redis, "steady"),
    );
    let [from_a, from_b] = hammer([a, b], Duration::from_millis(500)).await;
    let admitted = from_a + from_b;
    let trips = a.redis_round_trips() + b.redis_round_trips();
    let scripts = server.calls("evalsha") + server.calls("eval");
    let ratio = trips as f64 / admitted as f64;
    println!(
        "admitted {admitted}, round trips {trips} (server: {scripts} script calls), {ratio:.3} per admitted call"
    );
    assert!(admitted > 500);
    assert!(ratio <= 0.15, "{ratio} round trips per admitted call");
    assert!(scripts <= trips + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_takes_share_the_bucket() {
    let server = Server::start();
    let redis = server.redis();
    // 10 a minute: nothing refills during the test, so counts are exact.
    // Lease 1: each replica holds at most one token ahead.
    let a = leak(RateLimiter::per_minute(10).lease(1).shared(redis, "bulk"));
    let b = leak(RateLimiter::per_minute(10).lease(1).shared(redis, "bulk"));
    assert_eq!(a.acquire_n(11).await, Err(InsufficientCapacity::new(10)));
    assert_eq!(a.acquire_n(6).await, Ok(()));
    // A's refill ahead (one token) lands in the background.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 10 - 6 - 1 = 3 left: 3 granted to B, then 4 more refused at once (a
    // 6 s wait, which B remembers: no round trip for its next refusal).
    let budget = Duration::from_millis(200);
    assert_eq!(b.acquire_n_timeout(3, budget).await, Ok(Ok(())));
    assert_eq!(
        b.acquire_n_timeout(4, budget).await,
        Ok(Err(Rejected::new()))
    );
    let trips = b.redis_round_trips();
    assert!(!b.try_acquire_n(1));
    assert_eq!(b.redis_round_trips(), trips);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(a.try_acquire(), "a's token held ahead");
    assert!(!a.try_acquire());
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_waits_for_the_shared_bucket() {
    let server = Server::start();
    let redis = server.redis();
    let a = leak(RateLimiter::per_second(20).burst(2).shared(redis, "slow"));
    let b = leak(RateLimiter::per_second(20).burst(2).shared(redis, "slow"));
    let admitted = AtomicU64::new(0);
    let run = Duration::from_millis(500);
    let start = Instant::now();
    let admitted = &admitted;
    let each = |limiter: &'static RateLimiter| async move {
        while start.elapsed() < run {
            if limiter.acquire_timeout(run).await.is_ok() && start.elapsed() < run {
                admitted.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    tokio::join!(each(a), each(b));
    let total = admitted.load(Ordering::Relaxed);
    // 2 + 20 × 0.5 = 12 globally, plus 2 × lease 1; each replica alone
    // would have admitted 12.
    println!("admitted {total} in {run:?}");
    assert!((8..=15).contains(&total), "{total} admitted");
}

/// A shared limiter's `acquire_timeout` keeps its promise as a local
/// one's does: a refusal that lasts longer than `max_wait` is refused, and
/// one within it is waited out. (Here the clock is Redis's and the wall's,
/// not tokio's paused one: that the refusal did not sleep first shows as
/// the pause still in force after it, not as a measured time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_acquire_waits_out_only_a_refusal_within_its_max_wait() {
    let server = Server::start();
    let limiter = RateLimiter::per_second(100)
        .burst(10)
        .shared(server.redis(), "max-wait");
    assert!(limiter.try_acquire());
    limiter.pause(Duration::from_millis(300));
    let start = Instant::now();
    // The pause holds here at once, before it reaches Redis (and without
    // asking Redis for a token it would refuse).
    let not_until = limiter.check().unwrap_err();
    let wait = not_until.wait_time_from(tokio::time::Instant::now());
    assert!(wait > Duration::from_millis(250), "{wait:?}");
    assert_eq!(
        limiter.acquire_timeout(Duration::from_millis(100)).await,
        Err(Rejected::new())
    );
    // Still the pause's wait, not a refill's 1 ms poll once it is over.
    let not_until = limiter.check().unwrap_err();
    let wait = not_until.wait_time_from(tokio::time::Instant::now());
    assert!(wait > Duration::from_millis(1), "slept out the pause first");
    assert_eq!(
        limiter.acquire_timeout(Duration::from_secs(5)).await,
        Ok(())
    );
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "taken during the pause"
    );
}

#[test]
fn blocking_callers_share_without_a_runtime_of_their_own() {
    let server = Server::start();
    let redis = server.redis();
    let a = leak(RateLimiter::per_second(40).burst(4).shared(redis, "sync"));
    let b = leak(RateLimiter::per_second(40).burst(4).shared(redis, "sync"));
    let run = Duration::from_millis(500);
    let start = Instant::now();
    let threads = [a, b].map(|limiter| {
        std::thread::spawn(move || {
            let mut admitted = 0;
            while start.elapsed() < run {
                if limiter.acquire_blocking_timeout(run).is_ok() && start.elapsed() < run {
                    admitted += 1;
                }
            }
            admitted
        })
    });
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // 4 + 40 × 0.5 = 24 globally, plus 2 × lease 1.
    println!("admitted {total}");
    assert!((18..=28).contains(&total), "{total} admitted");
}

#[test]
fn the_policy_engine_takes_shared_tokens_async_and_blocking() {
    let server = Server::start();
    let redis = server.redis();
    let limiter = leak(RateLimiter::per_minute(5).lease(1).shared(redis, "engine"));
    let other = leak(RateLimiter::per_minute(5).lease(1).shared(redis, "engine"));
    let policy: &'static Policy<std::io::Error> = Box::leak(Box::new(
        Policy::new()
            .rate_limit(limiter)
            .max_wait(Duration::from_millis(300)),
    ));
    for _ in 0..3 {
        assert_eq!(
            policy
                .retry_blocking(|_| Ok::<_, std::io::Error>(1))
                .unwrap(),
            1
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(
            policy
                .retry(|_| async { Ok::<_, std::io::Error>(2) })
                .await
                .unwrap(),
            2
        );
    });
    // 5 a minute: 4 taken by the policy and 1 held ahead by its limiter,
    // so the other replica gets none.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!other.try_acquire());
    assert_eq!(
        other.acquire_blocking_timeout(Duration::from_millis(200)),
        Err(Rejected::new())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noscript_after_a_script_flush_reloads_the_script() {
    let server = Server::start();
    let redis = server.redis();
    let limiter = leak(
        RateLimiter::per_second(1000)
            .lease(1)
            .shared(redis, "flush"),
    );
    limiter.acquire().await;
    assert_eq!(server.command("SCRIPT FLUSH").trim(), "+OK");
    for _ in 0..5 {
        assert_eq!(
            limiter.acquire_timeout(Duration::from_millis(500)).await,
            Ok(())
        );
    }
    assert_eq!(limiter.degraded_decisions(), 0);
    // EVALSHA failed with NOSCRIPT once; the script was loaded again.
    assert!(server.command("INFO errorstats").contains("NOSCRIPT"));
    assert!(server.calls("script|load") + server.calls("eval") >= 2);
}

/// With Redis cut off: how many tokens `limiter` still gives, which is
/// what its lease held (a take that empties it starts a top-up that cannot
/// land, and the next is refused).
fn spend_the_lease(limiter: &RateLimiter) -> usize {
    std::iter::from_fn(|| limiter.try_acquire().then_some(())).count()
}

/// Every decision of `limiter` during `run`: (admitted, refused, slowest).
fn decide_for(limiter: &RateLimiter, run: Duration) -> (u64, u64, Duration) {
    let (mut admitted, mut refused, mut slowest) = (0, 0, Duration::ZERO);
    let start = Instant::now();
    while start.elapsed() < run {
        let before = Instant::now();
        if limiter.try_acquire() {
            admitted += 1;
        } else {
            refused += 1;
        }
        slowest = slowest.max(before.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    (admitted, refused, slowest)
}

#[test]
fn redis_killed_then_restarted_follows_the_policy_and_recovers() {
    let mut server = Server::start();
    let redis = server.quick_redis();
    let local = leak(RateLimiter::per_second(50).burst(5).shared(redis, "outage"));
    let allow = leak(
        RateLimiter::per_second(50)
            .burst(5)
            .shared(redis, "outage-allow")
            .when_redis_fails(Fallback::Allow),
    );
    let deny = leak(
        RateLimiter::per_second(50)
            .burst(5)
            .shared(redis, "outage-deny")
            .when_redis_fails(Fallback::Deny),
    );
    for limiter in [local, allow, deny] {
        assert!(
            limiter
                .acquire_blocking_timeout(Duration::from_secs(1))
                .is_ok()
        );
    }
    server.kill();

    let run = Duration::from_millis(300);
    let trips = local.redis_round_trips();
    let (admitted, _, slowest) = decide_for(local, run);
    let trips = local.redis_round_trips() - trips;
    println!("local: admitted {admitted}, slowest decision {slowest:?}, {trips} round trips");
    assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    assert!(local.degraded_decisions() > 0);
    // The one that found Redis gone, then a probe every `retry_after`
    // (200 ms): not a round trip for each of some 300 decisions.
    assert!(trips <= 3, "{trips} round trips while Redis was down");
    // The local limit, bounded: burst 5 + 50/s × 0.3 s, plus its lease.
    assert!((5..=22).contains(&admitted), "{admitted}");
    assert!(
        matches!(redis.last_error(), Some(Error::Connect { .. })),
        "{:?}",
        redis.last_error()
    );

    let (admitted, refused, slowest) = decide_for(allow, run);
    println!("allow: admitted {admitted}, refused {refused}, slowest {slowest:?}");
    assert!(slowest < Duration::from_millis(50));
    assert!(refused <= 2, "{refused}");

    let (admitted, _, slowest) = decide_for(deny, run);
    println!("deny: admitted {admitted}, slowest {slowest:?}");
    assert!(slowest < Duration::from_millis(50));
    // Only what its lease held before the outage.
    assert!(admitted <= 1, "{admitted}");
    // Waiting calls are bounded too: refused within their max_wait.
    let before = Instant::now();
    assert!(
        deny.acquire_blocking_timeout(Duration::from_millis(20))
            .is_err()
    );
    assert!(before.elapsed() < Duration::from_millis(50));

    server.restart();
    let start = Instant::now();
    let degraded = loop {
        let degraded = local.degraded_decisions();
        let _ = local.acquire_blocking_timeout(Duration::from_millis(100));
        if redis.is_available() && local.degraded_decisions() == degraded {
            break degraded;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no recovery");
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("recovered after {:?}", start.elapsed());
    // Shared again: another replica sees what this one takes.
    let other = leak(RateLimiter::per_second(50).burst(5).shared(redis, "outage"));
    let (a, _, _) = decide_for(local, Duration::from_millis(200));
    let (b, _, _) = decide_for(other, Duration::from_millis(200));
    assert!(a + b <= 5 + 50 * 4 / 10 + 2 + 2, "{a} + {b}");
    assert_eq!(local.degraded_decisions(), degraded);
    assert_eq!(other.degraded_decisions(), 0);
    assert!(redis.last_error().is_none());
}

/// The circuit around Redis is the client's: while Redis is down, the
/// limiters sharing a client send one probe every `retry_after` between
/// them, not one each, and a denied decision says when the next may go.
#[test]
fn the_limiters_of_a_client_share_its_probes() {
    let mut server = Server::start();
    // `retry_after` 200 ms.
    let redis = server.quick_redis();
    let limiters: Vec<&'static RateLimiter> = (0..4)
        .map(|n| {
            leak(
                RateLimiter::per_second(50)
                    .burst(5)
                    .lease(1)
                    .shared_as(redis, format!("probes-{n}"))
                    .when_redis_fails(Fallback::Deny),
            )
        })
        .collect();
    for limiter in &limiters {
        assert!(
            limiter
                .acquire_blocking_timeout(Duration::from_secs(1))
                .is_ok()
        );
    }
    server.kill();
    redis_support::eventually("Redis found gone", Duration::from_secs(2), || {
        for limiter in &limiters {
            let _ = limiter.try_acquire();
        }
        !redis.is_available()
    });
    let trips = || limiters.iter().map(|l| l.redis_round_trips()).sum::<u64>();
    let before = trips();
    let (start, mut longest) = (Instant::now(), Duration::ZERO);
    while start.elapsed() < Duration::from_millis(450) {
        for limiter in &limiters {
            if let Err(not_until) = limiter.check() {
                longest = longest.max(not_until.wait_time_from(tokio::time::Instant::now()));
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let probes = trips() - before;
    assert!(probes <= 3, "{probes} probes in 450 ms");
    assert!(longest > Duration::from_millis(100), "{longest:?}");
}

/// The probe that finds Redis back asks for what the take lacks and for
/// the lease topped up: enough to serve it when the fleet has that much
/// left, and never more than the lease (the stated accuracy bound).
#[test]
fn the_probe_after_an_outage_asks_for_what_the_lease_lacks() {
    let mut server = Server::start();
    // One client each, so that each replica's probe is its own; per hour,
    // so that nothing refills a fleet's 40 tokens during the test.
    let (full, low) = (server.quick_redis(), server.quick_redis());
    let replica = |redis, key| {
        leak(
            RateLimiter::per_hour(40)
                .burst(40)
                .lease(8)
                .shared(redis, key),
        )
    };
    let (a, b) = (replica(full, "probe-full"), replica(low, "probe-low"));
    for limiter in [a, b] {
        for _ in 0..5 {
            assert!(limiter.try_acquire());
        }
    }
    server.kill();
    // 2 left: the top-up each asks for finds Redis gone.
    assert!(a.try_acquire() && b.try_acquire());
    redis_support::eventually("both top-ups failed", Duration::from_secs(2), || {
        !full.is_available() && !low.is_available()
    });
    // Back, empty: each fleet has 40 tokens again, and another replica
    // leaves `probe-low`'s fleet 2 of them.
    server.restart();
    let drain = RateLimiter::per_hour(40)
        .burst(40)
        .lease(38)
        .shared(server.redis(), "probe-low");
    assert!(drain.try_acquire());
    // Every `retry_after` (200 ms), a take of 3 sends a probe (and is
    // decided by the fallback meanwhile), until one finds Redis back.
    for (limiter, redis) in [(a, full), (b, low)] {
        redis_support::eventually("a probe answered", Duration::from_secs(5), || {
            redis.is_available() || {
                let _ = limiter.try_acquire_n(3);
                false
            }
        });
    }
    // Its answer lands in the lease just after the client hears it.
    std::thread::sleep(Duration::from_millis(50));
    let _paused = server.pause();
    // The lease topped up to 8, not past it; the 2 left in the low fleet,
    // which serve a take of 1 more than it held.
    assert_eq!((spend_the_lease(a), spend_the_lease(b)), (8, 4));
}

#[test]
fn a_paused_redis_costs_one_timeout_then_decisions_are_immediate() {
    let server = Server::start();
    let redis = server.quick_redis();
    let limiter = leak(
        RateLimiter::per_second(100)
            .burst(10)
            .shared(redis, "paused"),
    );
    assert!(
        limiter
            .acquire_blocking_timeout(Duration::from_secs(1))
            .is_ok()
    );
    let paused = server.pause();
    let mut slowest_blocking = Duration::ZERO;
    for _ in 0..20 {
        let before = Instant::now();
        let _ = limiter.acquire_blocking_timeout(Duration::from_secs(1));
        slowest_blocking = slowest_blocking.max(before.elapsed());
    }
    let (_, _, slowest) = decide_for(limiter, Duration::from_millis(200));
    drop(paused);
    println!("slowest waiting decision {slowest_blocking:?}, slowest try {slowest:?}");
    // At most one refill's timeouts (connect and call, 50 ms each).
    assert!(
        slowest_blocking < Duration::from_millis(150),
        "{slowest_blocking:?}"
    );
    assert!(slowest < Duration::from_millis(50));
    assert!(limiter.degraded_decisions() > 0);
    assert!(matches!(
        redis.last_error(),
        Some(Error::Timeout { .. } | Error::Connect { .. })
    ));
}

#[test]
fn from_env_with_a_missing_variable_is_degraded_not_a_panic() {
    static REDIS: Redis = Redis::from_env("STEADFAST_TEST_SURELY_UNSET_REDIS_URL");
    static LIMIT: RateLimiter = RateLimiter::per_second(10).burst(2).shared(&REDIS, "env");
    // The local limit decides: burst 2 at once, then refusals.
    let before = Instant::now();
    let admitted = (0..10)
        .filter(|_| {
            LIMIT
                .acquire_blocking_timeout(Duration::from_millis(10))
                .is_ok()
        })
        .count();
    assert!(before.elapsed() < Duration::from_secs(1));
    assert_eq!(admitted, 2);
    assert!(LIMIT.degraded_decisions() >= 9);
    assert_eq!(
        REDIS.last_error(),
        Some(Error::MissingUrl {
            var: "STEADFAST_TEST_SURELY_UNSET_REDIS_URL"
        })
    );
}

/// The child role of `processes_share_one_limit`: run against the URL in
/// `STEADFAST_REDIS_CHILD` for 1 s and print what was admitted.
#[test]
fn process_sharing_child() {
    let Ok(url) = std::env::var("STEADFAST_REDIS_CHILD") else {
        return;
    };
    let redis: &'static Redis = Box::leak(Box::new(Redis::new(Box::leak(url.into_boxed_str()))));
    let limiter = leak(
        RateLimiter::per_second(100)
            .burst(20)
            .shared(redis, "fleet"),
    );
    let start = Instant::now();
    let mut admitted = 0;
    while start.elapsed() < Duration::from_secs(1) {
        if limiter.try_acquire() {
            admitted += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    println!(
        "ADMITTED={admitted} DEGRADED={}",
        limiter.degraded_decisions()
    );
}

#[test]
fn four_processes_share_one_limit() {
    if std::env::var_os("STEADFAST_REDIS_CHILD").is_some() {
        return;
    }
    let server = Server::start();
    let children: Vec<_> = (0..4)
        .map(|_| {
            redis_support::spawn_child("process_sharing_child", "STEADFAST_REDIS_CHILD", server.url)
        })
        .collect();
    let mut total = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|line| line.find("ADMITTED=").map(|at| &line[at..]))
            .expect(&stdout);
        println!("{line}");
        let mut fields = line.split(' ');
        let admitted: u64 = fields.next().unwrap()["ADMITTED=".len()..].parse().unwrap();
        let degraded: u64 = fields.next().unwrap()["DEGRADED=".len()..].parse().unwrap();
        assert_eq!(degraded, 0);
        total += admitted;
    }
    // Each child runs 1 s (they start within a few hundred ms of each
    // other): globally at most burst 20 + 100/s over the span, plus 4 × lease
    // 5; four local limiters would have admitted 4 × 120 = 480.
    println!("total {total}");
    assert!(total <= 20 + 150 + 20, "{total}");
    assert!(total >= 90, "{total}");
}

/// Shared backpressure across replicas: a pause heard by replica A (a 429
/// with `Retry-After`, through `pause_on_retry_after`, or `pause` by hand)
/// keeps replica B from the global bucket until it ends; B spends at most
/// what its lease held.
#[test]
fn a_pause_on_one_replica_holds_back_every_replica() {
    let server = Server::start();
    let redis = server.redis();
    let replica = || {
        leak(
            RateLimiter::per_second(100)
                .burst(5)
                .lease(1)
                .shared(redis, "paused"),
        )
    };
    let (a, b) = (replica(), replica());
    b.acquire_blocking();
    // Let B's top-up land: it may hold one token from before the pause.
    std::thread::sleep(Duration::from_millis(50));
    a.pause(Duration::from_millis(600));
    // The pause reaches Redis in the background.
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    b.acquire_blocking(); // at most the token B's lease held
    b.acquire_blocking();
    let waited = start.elapsed();
    println!("B waited {waited:?} for its second token");
    assert!(
        waited >= Duration::from_millis(400),
        "B took a token from the global bucket during A's pause ({waited:?})"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_keys_first_decisions_are_not_refusals() {
    let server = Server::start();
    let redis = server.redis();
    // A new instance's first take waits for Redis's first answer instead
    // of refusing while it is in flight: a new tenant's first requests are
    // not refused with the fleet far under its limit, whatever the lease.
    for (key, lease) in [("default-lease", 0), ("lease-of-one", 1)] {
        let limiter = RateLimiter::per_second(10)
            .burst(10)
            .lease(lease)
            .shared(redis, key);
        assert!(limiter.try_acquire(), "{key}: the first take refused");
        // The first answer brought a whole lease (min(10 / 4, 16) = 2 by
        // default): the next take is served from it, with no wait.
        if lease == 0 {
            assert!(limiter.try_acquire(), "{key}: the lease's second token");
        }
        assert_eq!(limiter.degraded_decisions(), 0);
    }
    // The same for a key built at run time, as a `Keyed` factory does, and
    // for `check`.
    let tenant = RateLimiter::per_second(10).shared_as(redis, format!("tenant:{}", 42));
    assert!(tenant.try_acquire());
    let fresh = RateLimiter::per_second(10).shared_as(redis, "tenant:43");
    assert!(fresh.check().is_ok());
    // Only the first take waits: an exhausted fleet is still a refusal.
    let spent = RateLimiter::per_hour(1).burst(1).shared(redis, "spent");
    assert!(spent.try_acquire());
    let other = RateLimiter::per_hour(1).burst(1).shared(redis, "spent");
    let started = Instant::now();
    assert!(!other.try_acquire());
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Only an instance's first take waits for an answer: once one has
/// landed, a take that finds the lease empty and a refill in flight is
/// refused at once, as `try_acquire` promises, and the refill serves the
/// next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_first_answer_an_empty_lease_refuses_without_waiting() {
    let server = Server::start();
    let limiter = RateLimiter::per_second(10)
        .burst(10)
        .lease(2)
        .shared(server.quick_redis(), "later")
        .when_redis_fails(Fallback::Local);
    // The first answer brings two tokens; one is left, too many for a
    // top-up (a quarter of the lease), so nothing is in flight.
    assert!(limiter.try_acquire());
    assert_eq!(limiter.redis_round_trips(), 1);
    let _paused = server.pause();
    // The last token; the top-up it starts cannot land.
    assert!(limiter.try_acquire());
    assert_eq!(limiter.redis_round_trips(), 2);
    // Waiting for that refill (as a first take would) would end at its
    // bound and admit by the local fallback.
    assert!(!limiter.try_acquire(), "waited for the refill in flight");
    assert_eq!(limiter.degraded_decisions(), 0);
}

/// A new instance's first take waits for Redis's first answer as long as
/// one can still come (a connect and a call, each within the client's
/// timeout): a slow first answer is Redis's decision, not the fallback's.
#[test]
fn a_first_take_waits_for_a_slow_first_answer() {
    let server = Server::start();
    // A timeout of 1 s: the answer comes after 700 ms.
    let limiter = RateLimiter::per_second(10).shared(server.redis(), "slow-first");
    let paused = server.pause();
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(paused);
    });
    let start = Instant::now();
    assert!(limiter.try_acquire());
    resume.join().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(700));
    assert_eq!(limiter.degraded_decisions(), 0, "decided by the fallback");
}

/// A new instance's first take waits for Redis's first answer only while
/// one can still come: once its round trip has failed (nothing listens),
/// it decides by the fallback, counted as degraded, without waiting out
/// the client's timeout (here a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_take_with_redis_unreachable_decides_by_the_fallback_at_once() {
    let nobody: &'static str =
        Box::leak(format!("redis://127.0.0.1:{}", redis_support::free_port()).into_boxed_str());
    let redis: &'static Redis = Box::leak(Box::new(
        Redis::new(nobody).timeout(Duration::from_secs(60)),
    ));
    let limiter = RateLimiter::per_second(10)
        .shared_as(redis, "unreachable")
        .when_redis_fails(Fallback::Local);
    let started = Instant::now();
    assert!(limiter.try_acquire(), "the local fallback admits");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited {:?} for an answer that could not come",
        started.elapsed()
    );
    assert_eq!(limiter.degraded_decisions(), 1);
}

/// The `check_n(n)` of `limiter` once the refill in flight (if any) has
/// landed: a refill in flight answers "1 ms" while Redis decides.
async fn settled_check(limiter: &RateLimiter, n: u32) -> Result<(), retry_runtime::NotUntil> {
    for _ in 0..500 {
        match limiter.check_n(n).expect("n within the burst") {
            Err(not_until)
                if not_until.wait_time_from(tokio::time::Instant::now())
                    <= Duration::from_millis(1) =>
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            other => return other,
        }
    }
    panic!("no answer from Redis in a second");
}

/// A refusal Redis answered is cached: while it holds, spending what the
/// lease still has asks for no top-up, which Redis would refuse again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_top_up_is_not_asked_again_while_the_refusal_holds() {
    let server = Server::start();
    let redis = server.redis();
    // A lease of 8: topped up once 2 or fewer are left.
    let replica = |lease| {
        leak(
            RateLimiter::per_second(10)
                .burst(40)
                .lease(lease)
                .shared(redis, "cached"),
        )
    };
    let (a, b, probe) = (replica(8), replica(8), replica(1));
    for _ in 0..5 {
        assert!(a.try_acquire());
    }
    assert_eq!(a.redis_round_trips(), 1, "one lease, 3 tokens left");
    b.pause(Duration::from_secs(60));
    // The pause reaches Redis in the background: the probe's takes are
    // refused once it has.
    while settled_check(probe, 1).await.is_ok() {}

    // 2 left: the top-up is asked for, and refused by the pause (a check
    // for 3 asks nothing more of Redis, and waits for that answer).
    assert!(a.try_acquire());
    assert!(settled_check(a, 3).await.is_err());
    assert_eq!(a.redis_round_trips(), 2);
    assert!(a.try_acquire());
    assert!(a.try_acquire());
    assert!(!a.try_acquire(), "the lease is spent, the fleet paused");
    assert_eq!(a.redis_round_trips(), 2, "no top-up while refused");
}

/// A top-up fills the lease and no more: a replica holds at most `lease`
/// tokens the fleet granted it (the stated accuracy bound), so one cut off
/// from Redis spends no more than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topped_up_lease_holds_the_lease_and_no_more() {
    let server = Server::start();
    // Per hour: nothing refills the fleet's 40 tokens during the test.
    let limiter = RateLimiter::per_hour(40)
        .burst(40)
        .lease(8)
        .shared(server.redis(), "topped");
    for _ in 0..6 {
        assert!(limiter.try_acquire());
    }
    assert_eq!(limiter.redis_round_trips(), 2, "2 left: a top-up of 6");
    // Let the top-up land, then cut Redis off.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _paused = server.pause();
    assert_eq!(spend_the_lease(&limiter), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_redis_rates_cases_hold_on_the_shared_path() {
    let server = Server::start();
    let redis = server.redis();
    // 10 a second; a lease of one, so every take is a round trip, as each
    // of redis_rate's is.
    let limiter = RateLimiter::per_second(10)
        .lease(1)
        .shared(redis, "redis_rate");
    let max_wait = Duration::from_millis(500);
    let mut taken = 0;
    for n in [1, 2, 7] {
        assert_eq!(
            limiter.acquire_n_timeout(n, max_wait).await,
            Ok(Ok(())),
            "take {n}"
        );
        taken += n;
        // What is left, as Redis last answered: one more if a token came
        // back during a slow round trip.
        let remaining = limiter.quota().remaining();
        assert!(
            (10 - taken..=11 - taken).contains(&remaining),
            "{remaining} left after {taken}"
        );
    }
    // The 10 are spent: refused, with a retry after about 100 ms (one
    // token at 10 a second).
    let not_until = settled_check(&limiter, 1).await.unwrap_err();
    let wait = not_until.wait_time_from(tokio::time::Instant::now());
    assert!(
        wait > Duration::from_millis(50) && wait <= Duration::from_millis(100),
        "{wait:?}"
    );
    let quota = limiter.quota();
    assert_eq!((quota.limit(), quota.remaining()), (10, 0));
    assert!(
        quota.full_in() <= Duration::from_secs(1) && quota.full_in() > Duration::from_millis(800)
    );
    // Taking 0 takes nothing, and asks nothing of Redis.
    let trips = limiter.redis_round_trips();
    assert_eq!(limiter.acquire_n_timeout(0, max_wait).await, Ok(Ok(())));
    assert_eq!(limiter.redis_round_trips(), trips);
    // Where redis_rate says "retry in ~99 s" for more than the burst, here
    // it can never be served: an error at once.
    assert_eq!(
        limiter.acquire_n_timeout(11, max_wait).await,
        Err(InsufficientCapacity::new(10))
    );

    // One a millisecond, burst 1: never told to wait more than that.
    let fast = RateLimiter::per_second(1000)
        .burst(1)
        .lease(1)
        .shared(redis, "fast");
    for _ in 0..200 {
        if let Err(not_until) = fast.check() {
            let wait = not_until.wait_time_from(tokio::time::Instant::now());
            assert!(wait <= Duration::from_millis(1), "{wait:?}");
        }
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tenants_leave_no_key_behind() {
    let server = Server::start();
    let redis = server.redis();
    // Each tenant's bucket is full again 100 ms after its one take: Redis
    // forgets the key then, so tenants used once leave nothing.
    for tenant in 0..1000 {
        let limiter = RateLimiter::per_second(10)
            .lease(1)
            .shared_as(redis, format!("tenant:{tenant}"));
        assert!(limiter.try_acquire(), "tenant {tenant}");
    }
    let keys = |server: &Server| {
        let reply = server.command("DBSIZE");
        reply.trim().trim_start_matches(':').parse::<u64>().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while keys(&server) > 0 {
        assert!(Instant::now() < deadline, "{} keys left", keys(&server));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every tenant wrote its key, and Redis expired each: not a count of
    // keys present at one moment, which on a loaded machine loses the
    // first tenants' keys to their expiry before the last are written.
    let expired = server
        .command("INFO stats")
        .lines()
        .find_map(|line| line.strip_prefix("expired_keys:"))
        .and_then(|count| count.trim().parse::<u64>().ok())
        .expect("INFO stats has expired_keys");
    assert!(expired >= 1000, "{expired} keys expired");
}
