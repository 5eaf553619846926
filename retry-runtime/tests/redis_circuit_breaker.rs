//! Shared circuit breakers against a real `redis-server` (feature `redis`):
//! each test starts its own on a free port (`redis_support`). "Replicas"
//! are distinct breaker instances with one key (each has its own replica
//! id), or separate processes. Redis's clock is real time, so open periods
//! are short, and every wait is a poll with a generous bound rather than a
//! tight wall-clock assertion.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::{Duration, Instant};

use redis_support::Server;
use retry_runtime::redis::Redis;
use retry_runtime::{CircuitBreaker, CircuitState};

fn leak(breaker: CircuitBreaker) -> &'static CircuitBreaker {
    Box::leak(Box::new(breaker))
}

/// A replica that trips on its first failure.
fn replica(
    redis: &'static Redis,
    key: &'static str,
    open_for: Duration,
) -> &'static CircuitBreaker {
    leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .shared(redis, key),
    )
}

fn trip(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("closed: admitted").failure();
    assert_eq!(breaker.state(), CircuitState::Open);
}

/// Polls `done` every 5 ms until it holds; panics after `bound`. Returns
/// how long it took.
fn eventually(what: &str, bound: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if done() {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn evidence(server: &Server, key: &str) -> u64 {
    let reply = server.command(&format!("ZCARD {{steadfast:cb:{key}}}"));
    reply.trim().trim_start_matches(':').parse().unwrap()
}

fn lease_holder(server: &Server, key: &str) -> String {
    server
        .command(&format!("GET {{steadfast:cb:{key}}}:probe"))
        .trim()
        .to_owned()
}

#[test]
fn one_replica_opening_alone_does_not_open_another() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_secs(2);
    let a = replica(redis, "alone", open_for);
    let b = replica(redis, "alone", open_for);
    b.try_acquire().unwrap().success();
    trip(a);
    eventually("a's evidence published", Duration::from_secs(2), || {
        evidence(&server, "alone") == 1
    });
    // Several refreshes of b's view (every 200 ms here): still closed.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(b.state(), CircuitState::Closed);
    for _ in 0..100 {
        b.try_acquire().expect("b stays closed").success();
    }
    assert_eq!(a.state(), CircuitState::Open);
    // The key outlives the open period: TTL at least 2 × open_for, less
    // the time gone by.
    let ttl: i64 = server
        .command("PTTL {steadfast:cb:alone}")
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!(ttl > 2 * 2000 - 1500, "{ttl}");
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
}

#[test]
fn a_quorum_of_replicas_opens_a_third_without_any_failure_and_calls_pay_no_round_trip() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_secs(2);
    let a = replica(redis, "quorum", open_for);
    let b = replica(redis, "quorum", open_for);
    let c = replica(redis, "quorum", open_for);
    c.try_acquire().unwrap().success();
    // Closed and idle, c's admissions cost no round trip at all.
    std::thread::sleep(Duration::from_millis(50));
    let trips = c.redis_round_trips();
    let start = Instant::now();
    for _ in 0..100_000 {
        c.try_acquire().unwrap().success();
    }
    let elapsed = start.elapsed();
    let during = c.redis_round_trips() - trips;
    println!("100000 calls in {elapsed:?}: {during} round trips");
    // One background refresh per 200 ms at most (plus one in flight).
    assert!(
        during as f64 <= elapsed.as_secs_f64() / 0.2 + 2.0,
        "{during} round trips in {elapsed:?}"
    );

    trip(a);
    trip(b);
    let took = eventually("c opened by the quorum", Duration::from_secs(2), || {
        c.state() == CircuitState::Open
    });
    println!("c opened {took:?} after the quorum");
    assert!(c.try_acquire().is_err());
    // No evidence of c's own: the fleet's opening is not new evidence.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(evidence(&server, "quorum"), 2);
    assert_eq!(
        a.degraded_decisions() + b.degraded_decisions() + c.degraded_decisions(),
        0
    );
}

#[test]
fn evidence_expires_after_the_open_period_and_the_fleet_closes() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(600);
    let a = replica(redis, "expiry", open_for);
    let b = replica(redis, "expiry", open_for);
    let c = replica(redis, "expiry", open_for);
    c.try_acquire().unwrap().success();
    let tripped = Instant::now();
    trip(a);
    trip(b);
    eventually("c opened by the quorum", Duration::from_secs(2), || {
        c.state() == CircuitState::Open
    });
    // a and b receive no calls: their evidence lapses with their open
    // period, and c, whose own state was closed, closes.
    eventually("c closed", Duration::from_secs(3), || {
        c.state() == CircuitState::Closed
    });
    let closed_after = tripped.elapsed();
    println!("c closed {closed_after:?} after the trips");
    assert!(
        closed_after >= Duration::from_millis(400),
        "{closed_after:?}"
    );
    assert!(c.try_acquire().unwrap().success_is_ordinary());
    eventually("evidence gone", Duration::from_secs(2), || {
        evidence(&server, "expiry") == 0
    });
    // a and b are still open on their own state until a call probes.
    assert_eq!(a.state(), CircuitState::Open);
    assert_eq!(b.state(), CircuitState::Open);
}

/// `success()` on an ordinary (not probe) permit; `true` if it was one.
trait Ordinary {
    fn success_is_ordinary(self) -> bool;
}

impl Ordinary for retry_runtime::BreakerPermit<'_> {
    fn success_is_ordinary(self) -> bool {
        let ordinary = !self.is_probe();
        self.success();
        ordinary
    }
}

#[test]
fn only_one_replica_at_a_time_holds_the_probe_lease() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(400);
    let a = replica(redis, "lease", open_for);
    let b = replica(redis, "lease", open_for);
    trip(a);
    trip(b);
    // After the open period, both ask; one gets the lease and probes.
    let mut first = None;
    eventually("a probe", Duration::from_secs(3), || {
        for (name, breaker) in [("a", a), ("b", b)] {
            if let Ok(permit) = breaker.try_acquire() {
                assert!(permit.is_probe());
                first = Some((name, permit));
                return true;
            }
        }
        false
    });
    let (name, probe) = first.unwrap();
    let (prober, other) = if name == "a" { (a, b) } else { (b, a) };
    assert!(!lease_holder(&server, "lease").is_empty());
    // While the probe is out, the other replica is refused (its open
    // period is over too): the lease is not its own.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        assert!(other.try_acquire().is_err(), "two probes at once");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The probe succeeds: the prober closes, gives the lease back, and
    // withdraws its evidence; then the other gets its turn.
    probe.success();
    assert_eq!(prober.state(), CircuitState::Closed);
    let waited = eventually(
        "the other replica's probe",
        Duration::from_secs(3),
        || match other.try_acquire() {
            Ok(permit) => {
                assert!(permit.is_probe());
                permit.success();
                true
            }
            Err(_) => false,
        },
    );
    println!("second probe {waited:?} after the first succeeded");
    assert_eq!(other.state(), CircuitState::Closed);
    eventually("lease and evidence gone", Duration::from_secs(2), || {
        lease_holder(&server, "lease").is_empty() && evidence(&server, "lease") == 0
    });
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
}

#[test]
fn an_abandoned_probe_lease_expires() {
    let server = Server::start();
    let redis = server.redis();
    // The lease lives max(open_for, 100 ms) = 400 ms.
    let open_for = Duration::from_millis(400);
    let a = replica(redis, "abandon", open_for);
    let b = replica(redis, "abandon", open_for);
    trip(a);
    trip(b);
    std::thread::sleep(open_for);
    // a takes the lease and drops its probe without an outcome, then goes
    // quiet (as a crashed prober would).
    let granted = {
        let probe = loop {
            if let Ok(permit) = a.try_acquire() {
                break permit;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert!(probe.is_probe());
        drop(probe);
        Instant::now()
    };
    let waited = eventually(
        "b's probe once a's lease expired",
        Duration::from_secs(3),
        || match b.try_acquire() {
            Ok(permit) => {
                assert!(permit.is_probe());
                permit.success();
                true
            }
            Err(_) => false,
        },
    );
    println!("b probed {waited:?} after a abandoned its lease");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(granted.elapsed() < Duration::from_secs(3));

    // A lease left by a crashed process: b waits for its TTL, no longer.
    let c = replica(redis, "crashed", open_for);
    trip(c);
    assert_eq!(
        server
            .command("SET {steadfast:cb:crashed}:probe deadbeef PX 700")
            .trim(),
        "+OK"
    );
    let start = Instant::now();
    eventually(
        "c's probe after the crashed lease",
        Duration::from_secs(3),
        || {
            c.try_acquire().is_ok_and(|permit| {
                permit.success();
                true
            })
        },
    );
    let waited = start.elapsed();
    println!("c probed {waited:?} after the crashed lease was set");
    assert!(waited >= Duration::from_millis(550), "{waited:?}");
    assert_eq!(c.degraded_decisions(), 0);
}

/// The slowest of `try_acquire` decisions over `run`.
fn slowest_decision(breaker: &CircuitBreaker, run: Duration) -> Duration {
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    while start.elapsed() < run {
        let before = Instant::now();
        let _ = breaker.try_acquire();
        slowest = slowest.max(before.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    slowest
}

#[test]
fn redis_killed_means_local_state_only_then_sharing_resumes() {
    let mut server = Server::start();
    let redis = server.redis();
    // Long enough for a and b to stay open through the outage.
    let open_for = Duration::from_secs(6);
    let a = replica(redis, "outage", open_for);
    let b = replica(redis, "outage", open_for);
    let c = replica(redis, "outage", open_for);
    c.try_acquire().unwrap().success();
    trip(a);
    trip(b);
    eventually("c opened by the quorum", Duration::from_secs(2), || {
        c.state() == CircuitState::Open
    });

    server.kill();
    // c's own state was closed: without the fleet's view it closes.
    let took = eventually("c back on its local state", Duration::from_secs(3), || {
        c.state() == CircuitState::Closed
    });
    println!("c closed {took:?} after Redis died");
    let slowest = slowest_decision(c, Duration::from_millis(300));
    println!("slowest decision while Redis is down: {slowest:?}");
    assert!(slowest < Duration::from_millis(20), "{slowest:?}");
    assert!(c.degraded_decisions() > 0);
    // Local trips still work.
    let d = replica(redis, "outage", open_for);
    trip(d);
    assert!(d.try_acquire().is_err());
    assert!(redis.last_error().is_some());

    server.restart();
    // a and b publish their evidence again; c opens from the fleet again.
    let took = eventually("sharing resumed", Duration::from_secs(4), || {
        c.state() == CircuitState::Open
    });
    println!("sharing resumed {took:?} after the restart");
    assert!(redis.last_error().is_none());
    let degraded = c.degraded_decisions();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.degraded_decisions(), degraded, "no longer degraded");
    assert!(evidence(&server, "outage") >= 2);
}

#[test]
fn from_env_with_a_missing_variable_is_local_not_a_panic() {
    static REDIS: Redis = Redis::from_env("STEADFAST_TEST_SURELY_UNSET_REDIS_URL_CB");
    static DB: CircuitBreaker = CircuitBreaker::new()
        .failure_threshold(2)
        .open_for(Duration::from_millis(50))
        .shared(&REDIS, "env");
    DB.try_acquire().unwrap().failure();
    DB.try_acquire().unwrap().failure();
    assert_eq!(DB.state(), CircuitState::Open);
    std::thread::sleep(Duration::from_millis(60));
    // No lease can be had: the probe is the local breaker's, counted.
    let probe = DB.try_acquire().expect("local probe");
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(DB.state(), CircuitState::Closed);
    eventually("degraded counted", Duration::from_secs(2), || {
        DB.degraded_decisions() > 0
    });
}

/// The child role of `two_processes_share_the_evidence`: trips its replica
/// of the breaker at `STEADFAST_CB_CHILD`, and stays alive (open) a while.
#[test]
fn breaker_sharing_child() {
    let Ok(url) = std::env::var("STEADFAST_CB_CHILD") else {
        return;
    };
    let redis: &'static Redis = Box::leak(Box::new(Redis::new(Box::leak(url.into_boxed_str()))));
    let breaker = replica(redis, "fleet", Duration::from_millis(1500));
    trip(breaker);
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "CHILD_STATE={:?} DEGRADED={}",
        breaker.state(),
        breaker.degraded_decisions()
    );
}

#[test]
fn two_processes_share_the_evidence() {
    if std::env::var_os("STEADFAST_CB_CHILD").is_some() {
        return;
    }
    let server = Server::start();
    let redis = server.redis();
    let parent = replica(redis, "fleet", Duration::from_millis(1500));
    parent.try_acquire().unwrap().success();
    let exe = std::env::current_exe().unwrap();
    let spawn = || {
        std::process::Command::new(&exe)
            .args([
                "--exact",
                "breaker_sharing_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("STEADFAST_CB_CHILD", server.url)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let check = |child: std::process::Child| {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("CHILD_STATE=Open DEGRADED=0"), "{stdout}");
    };
    // One process opening: below the quorum of 2, the parent stays closed.
    let first = spawn();
    eventually("the first child's evidence", Duration::from_secs(5), || {
        evidence(&server, "fleet") == 1
    });
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(parent.state(), CircuitState::Closed);
    // A second process opening: the quorum, and the parent opens without
    // a failure of its own.
    let second = spawn();
    let took = eventually(
        "the parent opened by two processes",
        Duration::from_secs(5),
        || parent.state() == CircuitState::Open,
    );
    println!("parent opened {took:?} after the second child started");
    check(first);
    check(second);
    // The children are gone; their evidence lapses with their open period
    // and the parent closes.
    eventually("the parent closed", Duration::from_secs(4), || {
        parent.state() == CircuitState::Closed
    });
    assert_eq!(parent.degraded_decisions(), 0);
}

#[test]
fn withdrawn_evidence_closes_the_fleet_before_its_deadline() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(500);
    let a = replica(redis, "withdrawn", open_for);
    let b = replica(redis, "withdrawn", open_for);
    let c = replica(redis, "withdrawn", open_for);
    c.try_acquire().unwrap().success();
    // Opened by hand for 10 s: evidence until then.
    a.force_open_for(Duration::from_secs(10));
    b.force_open_for(Duration::from_secs(10));
    eventually("c opened by the quorum", Duration::from_secs(2), || {
        c.state() == CircuitState::Open
    });
    // b recovers (here by hand; a successful probe does the same): its
    // evidence is withdrawn, the quorum lapses, and c closes at its next
    // refresh, long before the 10 s.
    b.reset();
    let took = eventually("c closed", Duration::from_secs(2), || {
        c.state() == CircuitState::Closed
    });
    println!("c closed {took:?} after the evidence was withdrawn");
    assert_eq!(evidence(&server, "withdrawn"), 1);
    assert_eq!(a.state(), CircuitState::Open);
    assert!(c.try_acquire().is_ok());
}

#[derive(Debug, PartialEq)]
enum CallError {
    Down,
    Open,
}

impl From<retry_runtime::CircuitOpen> for CallError {
    fn from(_: retry_runtime::CircuitOpen) -> Self {
        CallError::Open
    }
}

/// The engine's door (the attribute's keys and `Policy` admit the same
/// way): a replica opened by the fleet refuses a `Policy`'s call with
/// `E::from(CircuitOpen)`, without running it.
#[test]
fn a_policy_through_a_fleet_opened_breaker_is_refused_without_running() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_secs(2);
    let tripping = replica(redis, "through-policy", open_for);
    let guarded = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .shared(redis, "through-policy")
            .quorum(1),
    );
    let policy: &'static retry_runtime::Policy<CallError> = Box::leak(Box::new(
        retry_runtime::Policy::new()
            .max_attempts(1)
            .circuit_breaker(guarded),
    ));
    let mut ran = 0;
    assert_eq!(
        policy.retry_blocking(|_| {
            ran += 1;
            Ok::<_, CallError>(())
        }),
        Ok(())
    );
    trip(tripping);
    eventually(
        "the fleet's evidence opens the guarded replica",
        Duration::from_secs(2),
        || guarded.state() == CircuitState::Open,
    );
    let refused = policy.retry_blocking(|_| {
        ran += 1;
        Err::<(), _>(CallError::Down)
    });
    assert_eq!(refused, Err(CallError::Open));
    assert_eq!(ran, 1, "the refused call did not run");
}
