//! Shared circuit breakers against a real `redis-server` (feature `redis`):
//! each test starts its own on a free port (`redis_support`). "Replicas"
//! are distinct breaker instances with one key (each has its own replica
//! id), or separate processes. Redis's clock is real time, so open periods
//! are short, and every wait is a poll with a generous bound rather than a
//! tight wall-clock assertion.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::{Duration, Instant};

use redis_support::breakers::{evidence, leak, replica, trip, tripped_pair};
use redis_support::{Server, eventually};
use retry_runtime::redis::{Fallback, Redis};
use retry_runtime::{CircuitBreaker, CircuitState};

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

/// `shared_as`: breakers under a key known only at run time (a host)
/// share one fleet, as under a `&'static str` key.
#[test]
fn breakers_shared_under_one_run_time_key_open_by_the_fleets_quorum() {
    let server = Server::start();
    let redis = server.redis();
    let host = |name: &str| {
        leak(
            CircuitBreaker::new()
                .failure_threshold(1)
                .open_for(Duration::from_secs(2))
                .shared_as(redis, format!("host:{name}")),
        )
    };
    let (a, b, c) = (host("db"), host("db"), host("db"));
    trip(a);
    trip(b);
    eventually("c opened by the quorum", Duration::from_secs(2), || {
        c.state() == CircuitState::Open
    });
    assert_eq!(evidence(&server, "host:db"), 2);
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
    let (a, b) = tripped_pair(redis, "lease", open_for);
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
    let (a, b) = tripped_pair(redis, "abandon", open_for);
    std::thread::sleep(open_for);
    // a takes the lease and drops its probe without an outcome, then goes
    // quiet (as a crashed prober would).
    let granted = {
        // Bounded, as every wait here: a breaker that never grants the
        // lease fails the test rather than hanging it.
        let mut probe = None;
        eventually("a's probe", Duration::from_secs(3), || {
            probe = a.try_acquire().ok();
            probe.is_some()
        });
        let probe = probe.unwrap();
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
    let redis = server.quick_redis();
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
    let spawn =
        || redis_support::spawn_child("breaker_sharing_child", "STEADFAST_CB_CHILD", server.url);
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

    // A new quorum whose opening ends before the one c applied last (d's
    // 5 s against a's 10 s): a closed replica opens all the same.
    let d = replica(redis, "withdrawn", open_for);
    d.force_open_for(Duration::from_secs(5));
    eventually("c opened by the new quorum", Duration::from_secs(2), || {
        c.state() == CircuitState::Open
    });
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

/// `PTTL` of `key`: -2 when it does not exist, -1 when it never expires.
fn pttl(server: &Server, key: &str) -> i64 {
    server
        .command(&format!("PTTL {key}"))
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap()
}

/// Neither key of `name` is left without an expiry: the evidence set and
/// the probe lease are gone or have a TTL.
fn nothing_leaked(server: &Server, name: &str) {
    let evidence_ttl = pttl(server, &format!("{{steadfast:cb:{name}}}"));
    assert_ne!(evidence_ttl, -1, "evidence of {name} without a TTL");
    let lease_ttl = pttl(server, &format!("{{steadfast:cb:{name}}}:probe"));
    assert_ne!(lease_ttl, -1, "probe lease of {name} without a TTL");
}

/// Times every `try_acquire` of `breakers` while `until` does not hold
/// (bounded by `bound`); returns the slowest decision and how many there
/// were.
fn time_decisions(
    breakers: &[&CircuitBreaker],
    bound: Duration,
    mut until: impl FnMut() -> bool,
) -> (Duration, u64) {
    let start = Instant::now();
    let (mut slowest, mut decisions) = (Duration::ZERO, 0);
    while !until() {
        assert!(start.elapsed() < bound, "not within {bound:?}");
        for breaker in breakers {
            let before = Instant::now();
            // Dropped without an outcome: a probe permit dropped so is
            // given back, an ordinary one records nothing.
            drop(breaker.try_acquire());
            slowest = slowest.max(before.elapsed());
            decisions += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (slowest, decisions)
}

#[test]
fn a_paused_redis_leaves_each_replica_on_its_local_state_then_sharing_resumes() {
    let server = Server::start();
    let redis = server.quick_redis();
    // Long enough for a and b to stay open through the pause.
    let open_for = Duration::from_secs(6);
    let a = replica(redis, "paused", open_for);
    let b = replica(redis, "paused", open_for);
    let c = replica(redis, "paused", open_for);
    let d = replica(redis, "paused", open_for);
    c.try_acquire().unwrap().success();
    d.try_acquire().unwrap().success();
    trip(a);
    trip(b);
    eventually("c opened by the quorum", Duration::from_secs(2), || {
        c.state() == CircuitState::Open && d.state() == CircuitState::Open
    });
    // A replica of another breaker holds the probe lease when Redis stops.
    let lease_open_for = Duration::from_millis(400);
    let prober = replica(redis, "paused-lease", lease_open_for);
    trip(prober);
    let mut probe = None;
    eventually("the prober's lease", Duration::from_secs(3), || {
        probe = prober.try_acquire().ok();
        probe.is_some()
    });
    let probe = probe.unwrap();
    assert!(probe.is_probe());
    let lease_ttl = pttl(&server, "{steadfast:cb:paused-lease}:probe");
    assert!((1..=400).contains(&lease_ttl), "{lease_ttl}");
    let degraded_before = c.degraded_decisions();
    assert_eq!(degraded_before, 0);

    let paused = server.pause();
    let stopped = Instant::now();
    // c's own state was closed: once the fleet cannot be consulted it
    // closes, and every decision meanwhile is local and immediate.
    let (slowest_closing, n) = time_decisions(&[a, c], Duration::from_secs(3), || {
        c.state() == CircuitState::Closed
    });
    let closed_after = stopped.elapsed();
    println!(
        "c closed {closed_after:?} after the pause; slowest of {n} decisions: {slowest_closing:?}"
    );
    assert!(c.try_acquire().unwrap().success_is_ordinary());
    // a's own trip still holds it open; d trips on its own call.
    assert_eq!(a.state(), CircuitState::Open);
    assert!(a.try_acquire().is_err());
    d.reset();
    trip(d);
    assert!(d.try_acquire().is_err());
    // The probe out during the pause succeeds: the prober closes on its
    // own (its evidence and lease cannot be given back yet).
    probe.success();
    assert_eq!(prober.state(), CircuitState::Closed);
    let (slowest_paused, n) = {
        let start = Instant::now();
        time_decisions(&[a, c, d, prober], Duration::from_secs(1), || {
            start.elapsed() >= Duration::from_millis(400)
        })
    };
    println!("slowest of {n} decisions while paused: {slowest_paused:?}");
    assert!(
        slowest_closing < Duration::from_millis(50),
        "{slowest_closing:?}"
    );
    assert!(
        slowest_paused < Duration::from_millis(50),
        "{slowest_paused:?}"
    );
    assert!(c.degraded_decisions() > 0);
    assert!(d.degraded_decisions() > 0);
    assert!(redis.last_error().is_some());
    assert_eq!(c.state(), CircuitState::Closed);

    drop(paused);
    let paused_for = stopped.elapsed();
    // a, b and now d publish again; c opens from the fleet again.
    let took = eventually("sharing resumed", Duration::from_secs(4), || {
        c.state() == CircuitState::Open
    });
    println!("paused {paused_for:?}; sharing resumed {took:?} after CONT");
    eventually("d's evidence published", Duration::from_secs(2), || {
        evidence(&server, "paused") == 3
    });
    assert!(redis.last_error().is_none());
    let degraded = c.degraded_decisions();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.degraded_decisions(), degraded, "no longer degraded");
    // The prober closed: its evidence is withdrawn and the lease is gone
    // (given back, or expired with its TTL).
    eventually(
        "the prober's lease and evidence gone",
        Duration::from_secs(2),
        || {
            lease_holder(&server, "paused-lease").is_empty()
                && evidence(&server, "paused-lease") == 0
        },
    );
    nothing_leaked(&server, "paused");
    nothing_leaked(&server, "paused-lease");
}

#[test]
fn a_script_flush_mid_run_reloads_the_script_and_evidence_still_flows() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(800);
    let a = replica(redis, "flush", open_for);
    let b = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .shared(redis, "flush")
            .quorum(1),
    );
    a.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    // Both have run the script (it is cached on the server).
    eventually("the script ran", Duration::from_secs(2), || {
        a.redis_round_trips() >= 2 && b.redis_round_trips() >= 2
    });
    assert_eq!(server.command("SCRIPT FLUSH").trim(), "+OK");
    // The next refresh of each meets NOSCRIPT and loads the script again:
    // a's trip still reaches b.
    trip(a);
    let (slowest, n) = time_decisions(&[b], Duration::from_secs(2), || {
        b.state() == CircuitState::Open
    });
    println!("b opened by a's trip after the flush; slowest of {n} decisions: {slowest:?}");
    assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    assert_eq!(evidence(&server, "flush"), 1);
    assert!(server.command("INFO errorstats").contains("NOSCRIPT"));

    // Flushed again while a waits out its open period: the lease request
    // reloads it too, a probes, and the fleet closes with it.
    assert_eq!(server.command("SCRIPT FLUSH").trim(), "+OK");
    eventually("a's probe", Duration::from_secs(3), || {
        a.try_acquire().is_ok_and(|permit| {
            assert!(permit.is_probe());
            permit.success();
            true
        })
    });
    assert_eq!(a.state(), CircuitState::Closed);
    eventually("b closed", Duration::from_secs(2), || {
        b.state() == CircuitState::Closed
    });
    eventually("lease and evidence gone", Duration::from_secs(2), || {
        lease_holder(&server, "flush").is_empty() && evidence(&server, "flush") == 0
    });
    nothing_leaked(&server, "flush");
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
    assert!(server.calls("script|load") + server.calls("eval") >= 2);
}

#[test]
fn deny_keeps_the_fleets_opening_and_waits_for_the_lease_while_redis_is_down() {
    let mut server = Server::start();
    let redis = server.quick_redis();
    let open_for = Duration::from_millis(1000);
    let deny = |key: &'static str| {
        leak(
            CircuitBreaker::new()
                .failure_threshold(1)
                .open_for(open_for)
                .shared(redis, key)
                .when_redis_fails(Fallback::Deny),
        )
    };
    let a = deny("deny");
    let b = replica(redis, "deny", open_for);
    let c = deny("deny");
    let local = replica(redis, "deny", open_for);
    // `Allow` is taken as `Local` by a breaker.
    let allowing = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .shared(redis, "deny")
            .when_redis_fails(Fallback::Allow),
    );
    for breaker in [c, local, allowing] {
        breaker.try_acquire().unwrap().success();
    }
    let tripped = Instant::now();
    trip(a);
    trip(b);
    eventually(
        "c, local and allowing opened by the quorum",
        Duration::from_secs(2),
        || {
            [c, local, allowing]
                .iter()
                .all(|breaker| breaker.state() == CircuitState::Open)
        },
    );

    server.kill();
    // Fleet openings: `Local` (and `Allow`) drop their own, `Deny` keeps
    // its own, through its degraded refreshes.
    let (slowest_local, n) = time_decisions(&[c, local, allowing], Duration::from_secs(2), || {
        local.state() == CircuitState::Closed
            && allowing.state() == CircuitState::Closed
            && c.degraded_decisions() > 0
    });
    println!("local and allow closed; slowest of {n} decisions: {slowest_local:?}");
    assert_eq!(c.state(), CircuitState::Open);
    assert!(c.try_acquire().is_err());
    // ... to the deadline the fleet gave it (a's and b's evidence lapse
    // 1 s after their trips), then c closes, Redis still down.
    let (slowest_deny, n) = time_decisions(&[c], Duration::from_secs(3), || {
        c.state() == CircuitState::Closed
    });
    let closed_after = tripped.elapsed();
    println!(
        "c (deny) closed {closed_after:?} after the trips; slowest of {n} decisions: {slowest_deny:?}"
    );
    assert!(
        closed_after >= Duration::from_millis(900),
        "{closed_after:?}"
    );
    assert!(c.try_acquire().unwrap().success_is_ordinary());
    assert!(c.degraded_decisions() > 0);
    assert!(local.degraded_decisions() > 0);

    // Own open periods over (Redis still down): b (`Local`) probes without
    // the lease; a (`Deny`) stays open, refusing, until it can take it.
    // c counts its deadline from when its refresh was sent, before Redis
    // read its clock, so c may close a moment before b's own period ends:
    // b is polled, not asked once.
    let mut probe = None;
    eventually("b probes alone", Duration::from_secs(2), || {
        probe = b.try_acquire().ok();
        probe.is_some()
    });
    let probe = probe.unwrap();
    assert!(probe.is_probe());
    probe.success();
    let refused_before = a.degraded_decisions();
    let (slowest_waiting, n) = {
        let start = Instant::now();
        time_decisions(&[a], Duration::from_secs(1), || {
            start.elapsed() >= Duration::from_millis(300)
        })
    };
    println!("a (deny) refused {n} calls while Redis is down; slowest: {slowest_waiting:?}");
    assert_eq!(a.state(), CircuitState::Open);
    assert!(a.try_acquire().is_err());
    assert!(a.degraded_decisions() >= refused_before + n);
    for slowest in [slowest_local, slowest_deny, slowest_waiting] {
        assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    }

    server.restart();
    let took = eventually("a's probe with the lease", Duration::from_secs(4), || {
        a.try_acquire().is_ok_and(|permit| {
            assert!(permit.is_probe());
            permit.success();
            true
        })
    });
    println!("a probed {took:?} after the restart");
    assert_eq!(a.state(), CircuitState::Closed);
    eventually("lease and evidence gone", Duration::from_secs(2), || {
        lease_holder(&server, "deny").is_empty() && evidence(&server, "deny") == 0
    });
    nothing_leaked(&server, "deny");
}

#[test]
fn deny_and_allow_share_as_usual_while_redis_answers() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(400);
    let with = |fallback| {
        leak(
            CircuitBreaker::new()
                .failure_threshold(1)
                .open_for(open_for)
                .shared(redis, "fallbacks")
                .quorum(1)
                .when_redis_fails(fallback),
        )
    };
    let (deny, allow) = (with(Fallback::Deny), with(Fallback::Allow));
    allow.try_acquire().unwrap().success();
    // Redis answers: a `Deny` breaker shares as any other.
    trip(deny);
    eventually(
        "allow opened by deny's trip",
        Duration::from_secs(2),
        || allow.state() == CircuitState::Open,
    );
    eventually(
        "deny's probe with the lease",
        Duration::from_secs(3),
        || {
            deny.try_acquire().is_ok_and(|permit| {
                assert!(permit.is_probe());
                permit.success();
                true
            })
        },
    );
    eventually("allow closed with it", Duration::from_secs(2), || {
        allow.state() == CircuitState::Closed
    });
    assert_eq!(deny.degraded_decisions() + allow.degraded_decisions(), 0);
}
