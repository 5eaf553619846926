//! Retry budgets shared by replicas through a real `redis-server` (feature
//! `redis`): each test starts its own on a free port (`redis_support`).
//! Redis's clock is real time, so these run on the real clock with short
//! windows (1–2 s), bounds on counts (the shared budget plus the stated
//! lease bound) and only generous bounds on durations.

#![cfg(feature = "redis")]

mod redis_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_support::{Server, eventually};
use retry_runtime::redis::{Fallback, Redis};
use retry_runtime::{Backoff, Policy, RetryBudget};

/// The default lease: what each replica may hold beyond the shared budget.
const LEASE: u64 = 4;

fn leak(budget: RetryBudget) -> &'static RetryBudget {
    Box::leak(Box::new(budget))
}

/// One replica during an outage, on a thread of its own: `calls` calls,
/// each deposits and then asks for a retry. Returns the retries allowed.
fn outage(
    budget: &'static RetryBudget,
    calls: u32,
    pace: Duration,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut allowed = 0;
        for _ in 0..calls {
            budget.deposit();
            if budget.withdraw() {
                allowed += 1;
            }
            std::thread::sleep(pace);
        }
        allowed
    })
}

/// Withdraws every `pace` for `run`: allowed, refused and the slowest
/// decision.
fn withdraw_for(budget: &RetryBudget, run: Duration, pace: Duration) -> (u64, u64, Duration) {
    let (mut allowed, mut refused, mut slowest) = (0, 0, Duration::ZERO);
    let start = Instant::now();
    while start.elapsed() < run {
        let before = Instant::now();
        if budget.withdraw() {
            allowed += 1;
        } else {
            refused += 1;
        }
        slowest = slowest.max(before.elapsed());
        std::thread::sleep(pace);
    }
    (allowed, refused, slowest)
}

/// Withdraws until the budget refuses `quiet` times in a row (the lease
/// top-ups having had time to land): how many were allowed.
fn drain(budget: &RetryBudget, quiet: u32) -> u64 {
    let (mut allowed, mut refusals) = (0, 0);
    while refusals < quiet {
        if budget.withdraw() {
            allowed += 1;
            refusals = 0;
        } else {
            refusals += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    allowed
}

#[test]
fn an_outage_on_two_replicas_is_bounded_by_one_shared_budget() {
    let server = Server::start();
    let redis = server.redis();
    // Reserve 50/s × 2 s = 100 retries, plus 10% of the calls: for the
    // fleet, not for each replica.
    let replica = || {
        leak(
            RetryBudget::new()
                .min_per_second(50)
                .ratio(0.1)
                .ttl(Duration::from_secs(2))
                .shared(redis, "outage"),
        )
    };
    let (a, b) = (replica(), replica());
    let calls = 200;
    let start = Instant::now();
    let (from_a, from_b) = (
        outage(a, calls, Duration::from_millis(1)),
        outage(b, calls, Duration::from_millis(1)),
    );
    let (from_a, from_b) = (from_a.join().unwrap(), from_b.join().unwrap());
    let elapsed = start.elapsed();
    let total = from_a + from_b;
    // Within one window, the script grants at most the reserve plus 10% of
    // the (flushed) calls; the leases add at most 2 × 4.
    let budget = 100 + 2 * u64::from(calls) / 10;
    let bound = budget + 2 * LEASE;
    println!(
        "a {from_a}, b {from_b}, total {total}, budget {budget}, bound {bound}, elapsed {elapsed:?}, \
         round trips {} + {}",
        a.redis_round_trips(),
        b.redis_round_trips()
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "the run outlived the window"
    );
    assert!(total <= bound, "{total} retries, bound {bound}");
    // Two local budgets would allow 2 × (100 + 20) = 240.
    assert!(total >= 100, "only {total} retries");
    assert!(from_a > 0 && from_b > 0);
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
    // Far fewer round trips than calls: deposits go in batches, retries
    // in leases.
    let trips = a.redis_round_trips() + b.redis_round_trips();
    assert!(trips < u64::from(calls), "{trips} round trips");
    let scripts = server.calls("evalsha") + server.calls("eval");
    assert!(
        scripts <= trips + 2,
        "{scripts} script calls, {trips} trips"
    );
}

#[test]
fn deposits_on_one_replica_fund_retries_on_the_other() {
    let server = Server::start();
    let redis = server.redis();
    // No reserve: only calls fund retries, one per two calls.
    let replica = || {
        leak(
            RetryBudget::new()
                .min_per_second(0)
                .ratio(0.5)
                .ttl(Duration::from_secs(2))
                .shared(redis, "funding"),
        )
    };
    let (a, b) = (replica(), replica());
    // A's calls succeed: 100 deposits, on a thread that exits (so its
    // per-thread count is handed over), sent within a flush interval.
    std::thread::spawn(move || {
        for _ in 0..100 {
            a.deposit();
        }
    })
    .join()
    .unwrap();
    // B never called: its retries are funded by A's calls.
    let start = Instant::now();
    let mut from_b = 0;
    while start.elapsed() < Duration::from_millis(600) {
        if b.withdraw() {
            from_b += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // What A holds in its lease is A's to spend, and the rest is gone.
    let from_a = drain(a, 20);
    let from_b_after = drain(b, 20);
    println!(
        "b {from_b} (+{from_b_after}), a {from_a}, allowance {:?}",
        b.fleet_allowance()
    );
    assert!(from_b >= 50 - LEASE, "b allowed only {from_b}");
    assert_eq!(from_a + from_b + from_b_after, 50);
    assert_eq!(b.fleet_allowance(), Some(0));
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "outlived the window"
    );
}

#[test]
fn the_policy_engine_spends_the_shared_budget() {
    let server = Server::start();
    let redis = server.redis();
    // Reserve 10/s × 2 s = 20, no ratio: the fleet retries 20 times (plus
    // at most the leases), however many calls fail on how many replicas.
    let replica = || {
        leak(
            RetryBudget::new()
                .min_per_second(10)
                .ratio(0.0)
                .ttl(Duration::from_secs(2))
                .shared(redis, "engine"),
        )
    };
    let policy = |budget| -> &'static Policy<std::io::Error> {
        Box::leak(Box::new(
            Policy::new()
                .max_attempts(3)
                .backoff(Backoff::none())
                .budget(budget),
        ))
    };
    let (a, b) = (replica(), replica());
    let (pa, pb) = (policy(a), policy(b));
    static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
    let calls = 30;
    let failing = |policy: &'static Policy<std::io::Error>| {
        std::thread::spawn(move || {
            for _ in 0..calls {
                let result = policy.retry_blocking(|_| {
                    ATTEMPTS.fetch_add(1, Ordering::Relaxed);
                    Err::<(), _>(std::io::Error::other("down"))
                });
                assert!(result.is_err());
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let start = Instant::now();
    let (ta, tb) = (failing(pa), failing(pb));
    ta.join().unwrap();
    tb.join().unwrap();
    let retries = ATTEMPTS.load(Ordering::Relaxed) - 2 * calls;
    println!("{retries} retries in {:?}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "outlived the window"
    );
    // Two local budgets would allow 2 × 20 = 40 (and max_attempts 120).
    assert!(retries <= 20 + 2 * LEASE, "{retries} retries");
    assert!(retries >= 15, "only {retries} retries");
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
}

#[test]
fn redis_killed_falls_back_to_the_local_budget_then_sharing_resumes() {
    let mut server = Server::start();
    let redis = server.quick_redis();
    // Reserve 20/s × 1 s = 20: the fleet's, and each replica's alone when
    // Redis is down.
    let shape = || {
        RetryBudget::new()
            .min_per_second(20)
            .ratio(0.0)
            .ttl(Duration::from_secs(1))
    };
    let local = leak(shape().shared(redis, "killed"));
    let allow = leak(
        shape()
            .shared(redis, "killed-allow")
            .when_redis_fails(Fallback::Allow),
    );
    let deny = leak(
        shape()
            .shared(redis, "killed-deny")
            .when_redis_fails(Fallback::Deny),
    );
    // Leases taken while Redis answers.
    for budget in [local, allow, deny] {
        let start = Instant::now();
        while !budget.withdraw() {
            assert!(start.elapsed() < Duration::from_secs(1), "no lease");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let trips = || {
        [local, allow, deny]
            .map(|b| b.redis_round_trips())
            .iter()
            .sum::<u64>()
    };
    server.kill();
    let (down, trips_before) = (Instant::now(), trips());

    let run = Duration::from_millis(300);
    let pace = Duration::from_millis(1);
    let (allowed, refused, slowest) = withdraw_for(local, run, pace);
    println!("local: allowed {allowed}, refused {refused}, slowest {slowest:?}");
    // Decisions never wait on Redis.
    assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    assert!(local.degraded_decisions() > 0);
    assert!(!redis.is_available());
    // The rest of the lease, then the local window, which counted every
    // retry of this replica, leased or not: 20 in all, the first included.
    assert!((10..=19).contains(&allowed), "{allowed}");

    let (allowed, refused, slowest) = withdraw_for(allow, run, pace);
    println!("allow: allowed {allowed}, refused {refused}, slowest {slowest:?}");
    assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    assert_eq!(refused, 0);

    let (allowed, refused, slowest) = withdraw_for(deny, run, pace);
    println!("deny: allowed {allowed}, refused {refused}, slowest {slowest:?}");
    assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    // Only what its lease held before the outage.
    assert!(allowed < LEASE, "{allowed}");
    assert!(deny.degraded_decisions() > 0);
    // While Redis is down, the three budgets' decisions and flushes probe
    // it once per `retry_after` (200 ms) between them, on the client's
    // circuit: not once per withdrawal, nor once per flush. The first
    // round trip of each may find it gone.
    let trips = trips() - trips_before;
    let probes = down.elapsed().as_millis() / 200;
    println!("{trips} round trips while Redis was down, {probes} probes due");
    assert!(
        u128::from(trips) <= 3 + probes + 1,
        "{trips} round trips while Redis was down, {probes} probes due"
    );

    // Found back by the flushes' probes, with no withdrawal to probe.
    server.restart();
    eventually("Redis found back", Duration::from_secs(5), || {
        redis.is_available()
    });
    let start = Instant::now();
    let degraded = loop {
        let degraded = local.degraded_decisions();
        let _ = local.withdraw();
        if redis.is_available() && local.degraded_decisions() == degraded {
            break degraded;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no recovery");
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("recovered after {:?}", start.elapsed());
    // Shared again: a second replica and this one share one reserve.
    let other = leak(shape().shared(redis, "killed"));
    let from_other = outage(other, 300, pace);
    let (from_local, _, _) = withdraw_for(local, Duration::from_millis(300), pace);
    let from_other = from_other.join().unwrap();
    println!("after recovery: local {from_local}, other {from_other}");
    // One window's reserve (20) and two leases, not 2 × 20.
    assert!(from_local + from_other <= 20 + 2 * LEASE);
    assert_eq!(local.degraded_decisions(), degraded);
    assert_eq!(other.degraded_decisions(), 0);
    assert!(redis.last_error().is_none());
    assert!(
        server
            .command("EXISTS {steadfast:rb:killed}")
            .starts_with(":1")
    );
}

#[test]
fn a_flushed_script_cache_is_reloaded() {
    let server = Server::start();
    let redis = server.redis();
    let budget = leak(
        RetryBudget::new()
            .min_per_second(100)
            .ttl(Duration::from_secs(1))
            .shared(redis, "noscript"),
    );
    let start = Instant::now();
    while !budget.withdraw() {
        assert!(start.elapsed() < Duration::from_secs(1), "no lease");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(server.command("SCRIPT FLUSH").starts_with("+OK"));
    // More than one lease: top-ups after the flush reached the script.
    let allowed = drain(budget, 5);
    println!("allowed {allowed} after the flush");
    assert!(allowed > LEASE, "{allowed}");
    assert_eq!(budget.degraded_decisions(), 0);
}

/// The fleet's window is `ttl` long: retries granted leave it after `ttl`,
/// and the reserve is there again for the next outage.
#[test]
fn the_fleets_reserve_returns_a_ttl_after_it_was_spent() {
    let server = Server::start();
    let ttl = Duration::from_millis(500);
    // Reserve 8/s × 0.5 s = 4: one lease.
    let budget = leak(
        RetryBudget::new()
            .min_per_second(8)
            .ratio(0.0)
            .ttl(ttl)
            .shared(server.redis(), "returns"),
    );
    let spent = drain(budget, 5);
    assert!(spent >= 4, "{spent}");
    // Past the window and its oldest slot (ttl / 10): every grant of the
    // drain has left it.
    std::thread::sleep(ttl + ttl / 5);
    let again = drain(budget, 5);
    assert!(
        again >= 4,
        "{again} retries a ttl after the reserve was spent"
    );
}

/// `shared_as`: a key known only at run time (a host, a tenant) shares
/// one window, as a `&'static str` key does.
#[test]
fn budgets_shared_under_one_run_time_key_share_one_reserve() {
    let server = Server::start();
    let redis = server.redis();
    // Reserve 4/s × 10 s = 40, for the fleet.
    let replica = |host: &str| {
        leak(
            RetryBudget::new()
                .min_per_second(4)
                .ratio(0.0)
                .ttl(Duration::from_secs(10))
                .shared_as(redis, format!("host:{host}")),
        )
    };
    let (a, b) = (replica("db"), replica("db"));
    let (from_a, from_b) = (drain(a, 5), drain(b, 5));
    assert!(from_a > 0, "the budget allows retries");
    assert!(
        from_a + from_b <= 40,
        "{from_a} + {from_b}: one reserve, not two"
    );
    assert!(
        server
            .command("EXISTS {steadfast:rb:host:db}")
            .starts_with(":1")
    );
}

#[test]
fn a_local_budget_never_touches_redis() {
    let budget = RetryBudget::new().min_per_second(1);
    budget.deposit();
    assert!(budget.withdraw());
    assert_eq!(budget.redis_round_trips(), 0);
    assert_eq!(budget.degraded_decisions(), 0);
    assert_eq!(budget.fleet_allowance(), None);
}

#[test]
fn healthy_traffic_costs_a_round_trip_per_flush_not_per_call() {
    let server = Server::start();
    let redis = server.redis();
    let budget = leak(
        RetryBudget::new()
            .ttl(Duration::from_secs(2))
            .shared(redis, "steady"),
    );
    // 4 threads × 2500 calls that succeed, over about half a second.
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for i in 0..2500 {
                    budget.deposit();
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // The last deposits go with the next periodic flush.
    std::thread::sleep(Duration::from_millis(250));
    let trips = budget.redis_round_trips();
    let elapsed = start.elapsed();
    let ratio = trips as f64 / 10_000.0;
    println!("10000 calls in {elapsed:?}: {trips} round trips, {ratio:.4} per call");
    // At most one per flush interval plus one per 256 calls (and the first
    // lease): about 8 + 40 here.
    let flushes = elapsed.as_millis() as u64 / 100 + 1;
    assert!(trips <= flushes + 10_000 / 256 + 2, "{trips} round trips");
    // Every call reached the fleet's window: 10 retries/s × 2 s + 20% of
    // 10 000 = 2 020, less the first lease of 4 (this replica's).
    assert_eq!(budget.fleet_allowance(), Some(2020 - LEASE as i64));
    assert_eq!(budget.degraded_decisions(), 0);
}

/// Sums the fields of the budget hash whose name starts with `kind` (`w`:
/// retries granted, `d`: deposits flushed), as Redis holds them now.
fn fleet_sum(server: &Server, key: &str, kind: char) -> u64 {
    let reply = server.command(&format!(
        "EVAL \"local t = redis.call('HGETALL', KEYS[1]) local n = 0 \
         for i = 1, #t, 2 do if string.sub(t[i], 1, 1) == '{kind}' then \
         n = n + tonumber(t[i + 1]) end end return n\" 1 {{steadfast:rb:{key}}}"
    ));
    reply
        .trim()
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("EVAL answered {reply:?}"))
}

/// The retries granted in the budget's window as the script counts them
/// now, on Redis's clock: the last ten slots of `ttl / 10` whole, and the
/// share of the eleventh still inside the window. A test that outlives a
/// slot sees grants leave the window (and the reserve refill) gradually,
/// which a plain sum of the fields would not show.
fn window_granted(server: &Server, key: &str, ttl: Duration) -> f64 {
    let slot = ttl.as_micros() / 10;
    let reply = server.command(&format!(
        "EVAL \"local t = redis.call('TIME') local now = t[1] * 1000000 + t[2] \
         local cur = math.floor(now / {slot}) local share = ((cur + 1) * {slot} - now) / {slot} \
         local f = redis.call('HGETALL', KEYS[1]) local n = 0 \
         for i = 1, #f, 2 do local s = tonumber(string.sub(f[i], 2)) \
         if string.sub(f[i], 1, 1) == 'w' and s >= cur - 10 then \
         local k = tonumber(f[i + 1]) if s == cur - 10 then k = k * share end n = n + k end end \
         return tostring(n)\" 1 {{steadfast:rb:{key}}}"
    ));
    reply
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("EVAL answered {reply:?}"))
}

/// Calls per child process in `three_processes_share_one_budget`.
const CHILD_CALLS: u32 = 200;

/// The child role of `three_processes_share_one_budget`: one replica in its
/// own process, against the URL in `STEADFAST_RB_CHILD`, during an outage
/// (every call fails and asks for a retry); prints what it was allowed.
#[test]
fn budget_sharing_child() {
    let Ok(url) = std::env::var("STEADFAST_RB_CHILD") else {
        return;
    };
    // A generous timeout: the children and the parent's tests share the
    // machine, and this test is about the bound, not about degrading.
    let redis: &'static Redis = Box::leak(Box::new(
        Redis::new(Box::leak(url.into_boxed_str())).timeout(Duration::from_millis(500)),
    ));
    let budget = leak(
        RetryBudget::new()
            .min_per_second(20)
            .ratio(0.1)
            .ttl(Duration::from_secs(5))
            .shared(redis, "processes"),
    );
    let allowed = outage(budget, CHILD_CALLS, Duration::from_millis(1))
        .join()
        .unwrap();
    // The deposits of the last calls reach Redis with the next flush.
    std::thread::sleep(Duration::from_millis(250));
    println!(
        "ALLOWED={allowed} DEGRADED={} TRIPS={}",
        budget.degraded_decisions(),
        budget.redis_round_trips()
    );
}

#[test]
fn three_processes_share_one_budget() {
    if std::env::var_os("STEADFAST_RB_CHILD").is_some() {
        return;
    }
    let server = Server::start();
    let replicas = 3;
    let start = Instant::now();
    let children: Vec<_> = (0..replicas)
        .map(|_| {
            redis_support::spawn_child("budget_sharing_child", "STEADFAST_RB_CHILD", server.url)
        })
        .collect();
    let mut total = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}");
        let line = stdout
            .lines()
            .find_map(|line| line.find("ALLOWED=").map(|at| &line[at..]))
            .unwrap_or_else(|| panic!("no count from the child: {stdout}"));
        println!("{line}");
        let field = |name: &str| -> u64 {
            line.split(' ')
                .find_map(|field| field.strip_prefix(name))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {line}"))
        };
        let (allowed, degraded) = (field("ALLOWED="), field("DEGRADED="));
        assert_eq!(degraded, 0, "a child decided without Redis");
        assert!(allowed > 0, "a child was allowed nothing: {line}");
        total += allowed;
    }
    let elapsed = start.elapsed();
    // What Redis recorded: every retry allowed was granted, and the grants
    // are within the window's allowance.
    let (granted, deposits) = (
        fleet_sum(&server, "processes", 'w'),
        fleet_sum(&server, "processes", 'd'),
    );
    // Reserve 20/s × 5 s = 100, plus 10% of every call: for the fleet.
    let calls = u64::from(CHILD_CALLS) * replicas;
    let budget = 100 + calls / 10;
    let bound = budget + replicas * LEASE;
    let local = replicas * (100 + u64::from(CHILD_CALLS) / 10);
    println!(
        "{replicas} processes: total {total}, granted {granted}, deposits {deposits}/{calls}, \
         budget {budget}, bound {bound}, {replicas} local budgets {local}, elapsed {elapsed:?}"
    );
    // Every child ran within one window (5 s) of the first grant.
    assert!(
        elapsed < Duration::from_secs(5),
        "the run outlived the window"
    );
    assert!(total <= bound, "{total} retries, bound {bound}");
    assert!(total <= granted, "{total} allowed, {granted} granted");
    assert!(
        granted as f64 <= 100.0 + 0.1 * deposits as f64 + 1e-9,
        "{granted} granted for {deposits} deposits"
    );
    // The demand (600 retries) far exceeds the budget: it is spent, but for
    // what the leases still hold and deposits that arrived late.
    assert!(total >= 100, "only {total} retries");
}

#[test]
fn a_paused_redis_never_blocks_a_withdrawal_then_sharing_resumes() {
    let server = Server::start();
    let redis = server.quick_redis();
    // Reserve 10/s × 2 s = 20: the fleet's, and each replica's alone when
    // Redis does not answer.
    const WINDOW: Duration = Duration::from_secs(2);
    let shape = || RetryBudget::new().min_per_second(10).ratio(0.0).ttl(WINDOW);
    let local = leak(shape().shared(redis, "paused"));
    let allow = leak(
        shape()
            .shared(redis, "paused-allow")
            .when_redis_fails(Fallback::Allow),
    );
    let deny = leak(
        shape()
            .shared(redis, "paused-deny")
            .when_redis_fails(Fallback::Deny),
    );
    // A lease for each, and one retry taken from it.
    for budget in [local, allow, deny] {
        let start = Instant::now();
        while !budget.withdraw() {
            assert!(start.elapsed() < Duration::from_secs(1), "no lease");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let granted_before = fleet_sum(&server, "paused", 'w');
    let resume = server.pause();

    // The server holds the connection open and answers nothing: every
    // round trip waits out the 50 ms timeout, in the background.
    let run = Duration::from_millis(400);
    let pace = Duration::from_millis(1);
    let (from_local, refused_local, slowest_local) = withdraw_for(local, run, pace);
    let (from_allow, refused_allow, slowest_allow) = withdraw_for(allow, run, pace);
    let (from_deny, refused_deny, slowest_deny) = withdraw_for(deny, run, pace);
    let paused_error = redis.last_error();
    let was_available = redis.is_available();
    drop(resume);
    println!(
        "paused: local {from_local}/{refused_local} refused, slowest {slowest_local:?}, \
         degraded {}; allow {from_allow}/{refused_allow}, slowest {slowest_allow:?}, degraded {}; \
         deny {from_deny}/{refused_deny}, slowest {slowest_deny:?}, degraded {}; error {paused_error:?}",
        local.degraded_decisions(),
        allow.degraded_decisions(),
        deny.degraded_decisions(),
    );
    // Decisions never wait on the paused server.
    for slowest in [slowest_local, slowest_allow, slowest_deny] {
        assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    }
    assert!(!was_available);
    assert!(matches!(
        paused_error,
        Some(
            retry_runtime::redis::Error::Timeout { .. }
                | retry_runtime::redis::Error::Connect { .. }
        )
    ));
    // Every budget decided by its fallback, and counted it.
    for budget in [local, allow, deny] {
        assert!(budget.degraded_decisions() > 0);
    }
    // Local: the rest of the lease, then this replica's own window, which
    // counted every retry of this replica: 20 in all, the first included.
    assert!((10..=19).contains(&from_local), "{from_local}");
    // Allow: every degraded decision allowed (refusals only before the
    // first timeout marked Redis down, with the lease spent).
    assert!(
        from_allow >= allow.degraded_decisions(),
        "{from_allow} allowed, {} degraded",
        allow.degraded_decisions()
    );
    assert!(refused_allow < 100, "{refused_allow} refused");
    // Deny: only what the lease held at the pause: what was left of the
    // first, or a whole lease if a top-up landed after the first retry
    // (on a loaded machine it can).
    assert!(from_deny <= LEASE, "{from_deny}");

    // Resumed: the probe restores sharing.
    let start = Instant::now();
    let degraded = loop {
        let degraded = local.degraded_decisions();
        let _ = local.withdraw();
        if redis.is_available() && local.degraded_decisions() == degraded {
            break degraded;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no recovery");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Round trips that timed out while the server was stopped still ran
    // when it resumed: their grants count in the window, held by no lease
    // (the safe side: fewer retries for the fleet, until they leave it).
    let granted_resumed = window_granted(&server, "paused", WINDOW);
    println!(
        "sharing resumed after {:?}; granted in the window {granted_before} before the pause, \
         {granted_resumed} after it",
        start.elapsed()
    );
    assert!(granted_resumed <= 20.0, "{granted_resumed} granted");
    // Shared again: a second replica and this one share one reserve (what
    // the fleet granted before and during the pause still counts).
    // The new replica first: run beside this one (whose lease is warm), it
    // could find the reserve spent before its first answer came back.
    let other = leak(shape().shared(redis, "paused"));
    let from_other = outage(other, 300, pace).join().unwrap();
    let (after_local, _, _) = withdraw_for(local, Duration::from_millis(300), pace);
    // The window's count, not the sum of every grant: on a loaded machine
    // the test can outlive a slot, and the grants of before the pause then
    // leave the window in proportion, as the script counts them.
    let granted = window_granted(&server, "paused", WINDOW);
    println!(
        "after the pause: local {after_local}, other {from_other}, granted in the window {granted}"
    );
    // One window's reserve (20) and two leases, not 2 × 20.
    assert!(after_local + from_other <= 20 + 2 * LEASE);
    assert!(
        from_other > 0 || granted_resumed > 19.0,
        "the other replica got nothing of a reserve with {} left",
        20.0 - granted_resumed
    );
    assert!(granted <= 20.0, "{granted} granted");
    assert_eq!(local.degraded_decisions(), degraded);
    assert_eq!(other.degraded_decisions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_engine_spends_the_shared_budget() {
    let server = Server::start();
    let redis = server.redis();
    // Reserve 10/s × 2 s = 20, no ratio: the fleet retries 20 times (plus
    // at most the leases), however many calls fail on how many replicas.
    let replica = || {
        leak(
            RetryBudget::new()
                .min_per_second(10)
                .ratio(0.0)
                .ttl(Duration::from_secs(2))
                .shared(redis, "async-engine"),
        )
    };
    let policy = |budget| -> &'static Policy<std::io::Error> {
        Box::leak(Box::new(
            Policy::new()
                .max_attempts(3)
                .backoff(Backoff::none())
                .budget(budget),
        ))
    };
    let (a, b) = (replica(), replica());
    static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
    let calls = 30;
    let failing = |policy: &'static Policy<std::io::Error>| {
        tokio::spawn(async move {
            for _ in 0..calls {
                let result = policy
                    .retry(|_| async {
                        ATTEMPTS.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                        Err::<(), _>(std::io::Error::other("down"))
                    })
                    .await;
                assert!(result.is_err());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let start = Instant::now();
    let (ta, tb) = (failing(policy(a)), failing(policy(b)));
    ta.await.unwrap();
    tb.await.unwrap();
    let elapsed = start.elapsed();
    let retries = ATTEMPTS.load(Ordering::Relaxed) - 2 * calls;
    let granted = fleet_sum(&server, "async-engine", 'w');
    println!(
        "{retries} retries ({} degraded decisions) in {elapsed:?}, granted {granted}, \
         round trips {} + {}",
        a.degraded_decisions() + b.degraded_decisions(),
        a.redis_round_trips(),
        b.redis_round_trips()
    );
    assert!(elapsed < Duration::from_secs(2), "outlived the window");
    // Two local budgets would allow 2 × 20 = 40 (and max_attempts 120).
    assert!(retries <= 20 + 2 * LEASE, "{retries} retries");
    assert!(retries <= granted, "{retries} retries, {granted} granted");
    assert!(retries >= 15, "only {retries} retries");
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
}
