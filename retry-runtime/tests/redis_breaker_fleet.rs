//! The shared circuit breaker's fleet promises, one transition at a time,
//! against a real `redis-server` (feature `redis`; `redis_support` starts
//! one per test on a free port). "Replicas" are distinct breaker instances
//! under one key: each has its own replica id.
//!
//! `redis_circuit_breaker.rs` covers the main paths (quorum, lapse, lease,
//! outages); these tests pin what a mutation pass found unjudged there: the
//! quorum setting, evidence held by `force_open`, a waiting replica's
//! round trips, an order that outlives a reset, and the first call after a
//! fleet opening's deadline. They run on the real clock (Redis's clock is
//! real time): every wait is a bounded poll, and the only bounds on time
//! are lower bounds or bounds seconds wide, so a loaded machine makes them
//! slower, never red.

#![cfg(feature = "redis")]

mod redis_support;

use std::time::{Duration, Instant};

use redis_support::breakers::{evidence, leak, replica, trip, tripped_pair};
use redis_support::{Server, eventually, integer, throughout};
use retry_runtime::redis::{Fallback, Redis};
use retry_runtime::{CircuitBreaker, CircuitState};

/// Starts a replica's sharing (its first call) with a success.
fn start(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("closed: admitted").success();
}

/// Evidence under `key` that has not expired by Redis's clock.
fn live_evidence(server: &Server, key: &str) -> i64 {
    integer(&server.command(&format!(
        "EVAL \"local t = redis.call('TIME') \
         local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) \
         return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')\" 1 {{steadfast:cb:{key}}}"
    )))
}

/// How long, in milliseconds on Redis's clock, until the latest piece of
/// evidence under `key` expires (`None`: there is none).
fn evidence_left_ms(server: &Server, key: &str) -> Option<i64> {
    let reply = server.command(&format!(
        "EVAL \"local t = redis.call('TIME') \
         local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) \
         local z = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES') \
         if #z == 0 then return -1 end return tonumber(z[2]) - now\" 1 {{steadfast:cb:{key}}}"
    ));
    let left = integer(&reply);
    (left >= 0).then_some(left)
}

// ---------------------------------------------------------------------------
// The quorum setting.

/// `quorum(3)`: two replicas with evidence open no third, the third's
/// evidence opens the fourth; `quorum(0)` is taken as 1 (documented "at
/// least 1"), so one replica's trip opens another.
#[test]
fn a_quorum_of_three_needs_three_openers_and_a_quorum_of_zero_is_one() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_secs(10);
    let three = |key| {
        leak(
            CircuitBreaker::new()
                .failure_threshold(1)
                .open_for(open_for)
                .shared(redis, key)
                .quorum(3),
        )
    };
    let (a, b, c, d) = (three("q3"), three("q3"), three("q3"), three("q3"));
    start(d);
    trip(a);
    trip(b);
    eventually("two pieces of evidence", Duration::from_secs(3), || {
        evidence(&server, "q3") == 2
    });
    // Several of d's refreshes (every 250 ms here): two are not three.
    throughout(
        "d stays closed below the quorum",
        Duration::from_millis(700),
        || d.state() == CircuitState::Closed,
    );
    trip(c);
    eventually("d opened by three", Duration::from_secs(3), || {
        d.state() == CircuitState::Open
    });

    let zero = |key| {
        leak(
            CircuitBreaker::new()
                .failure_threshold(1)
                .open_for(open_for)
                .shared(redis, key)
                .quorum(0),
        )
    };
    let (e, f) = (zero("q0"), zero("q0"));
    start(f);
    trip(e);
    eventually("f opened by e alone", Duration::from_secs(3), || {
        f.state() == CircuitState::Open
    });
    assert_eq!(evidence(&server, "q0"), 1, "f's opening is not evidence");
}

// ---------------------------------------------------------------------------
// Evidence: how long it lasts.

/// A replica's evidence ends with its open period, whenever in the
/// replica's life it trips: one tripping for 500 ms two seconds after its
/// first call publishes 500 ms of evidence, not more.
#[test]
fn evidence_ends_with_the_open_period_however_old_the_replica() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(500);
    let a = replica(redis, "old", open_for);
    start(a);
    std::thread::sleep(Duration::from_secs(2));
    trip(a);
    let mut left = None;
    eventually("a's evidence", Duration::from_secs(3), || {
        left = evidence_left_ms(&server, "old");
        left.is_some()
    });
    let left = left.unwrap();
    println!("evidence published with {left} ms left");
    assert!(
        left <= 501,
        "{left} ms of evidence for a 500 ms open period"
    );
}

/// A replica waiting for the lease keeps its evidence alive while it
/// waits, though it asks only now and then (here: once): its own open
/// period is over, but the fleet must not lapse while the openers take
/// turns at probing.
#[test]
fn a_replica_waiting_for_the_lease_keeps_its_evidence_alive() {
    let server = Server::start();
    let redis = server.redis();
    // The lease, and the evidence a waiting replica publishes, live 1 s;
    // refreshes every 100 ms.
    let open_for = Duration::from_secs(1);
    let (a, b) = tripped_pair(redis, "waits", open_for);
    std::thread::sleep(open_for);
    let mut probe = None;
    eventually("a's probe, with the lease", Duration::from_secs(3), || {
        probe = a.try_acquire().ok();
        probe.is_some()
    });
    let probe = probe.unwrap();
    // b asks once, is refused, and is not called again.
    assert!(b.try_acquire().is_err());
    eventually(
        "b's evidence renewed by its request",
        Duration::from_secs(3),
        || live_evidence(&server, "waits") == 2,
    );
    // Several of b's refreshes later (none asking), both pieces still live.
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(live_evidence(&server, "waits"), 2, "b's evidence dropped");
    probe.success();
}

// ---------------------------------------------------------------------------
// Evidence held by `force_open`.

/// `force_open` (held until `reset`) is evidence for as long as it holds,
/// not for one `open_for`: it is renewed at every refresh, so a replica
/// forced open keeps counting towards the quorum after a tripped one's
/// evidence lapsed, and its `reset` withdraws it.
#[test]
fn held_open_evidence_outlives_open_for_and_reset_withdraws_it() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(600);
    let (a, b, c) = (
        replica(redis, "held", open_for),
        replica(redis, "held", open_for),
        replica(redis, "held", open_for),
    );
    start(c);
    let forced = Instant::now();
    a.force_open();
    trip(b);
    eventually("c opened by a (held) and b", Duration::from_secs(3), || {
        c.state() == CircuitState::Open
    });
    // b's evidence lapses with its open period; a's alone is below the
    // quorum: c closes.
    eventually(
        "c closed once b's evidence lapsed",
        Duration::from_secs(3),
        || c.state() == CircuitState::Closed,
    );
    // Three open periods after it was forced, a's evidence is still live.
    let wait = (3 * open_for).saturating_sub(forced.elapsed());
    std::thread::sleep(wait);
    assert_eq!(live_evidence(&server, "held"), 1, "a's held evidence");
    assert!(a.is_forced_open());
    // So a second opener is enough again.
    b.force_open_for(Duration::from_secs(10));
    eventually("c opened again by a and b", Duration::from_secs(3), || {
        c.state() == CircuitState::Open
    });
    // The quorum now lapses only when a's evidence does, which a renews
    // at every refresh: c's opening is extended with it, and c refuses
    // every call for twice open_for (its first deadline was at most one
    // open_for away).
    throughout(
        "c stays open while a's held evidence is renewed",
        2 * open_for,
        || c.try_acquire().is_err(),
    );
    // a's reset withdraws its evidence: c closes long before b's 10 s.
    a.reset();
    eventually("c closed after a's reset", Duration::from_secs(3), || {
        c.state() == CircuitState::Closed
    });
    eventually("only b's evidence left", Duration::from_secs(3), || {
        evidence(&server, "held") == 1
    });
}

/// Held evidence is renewed one `open_for` at a time, never published
/// "until reset": a replica forced open that goes away without a reset (a
/// crashed process; here the breaker dropped, which ends its background
/// task) stops counting towards the quorum one `open_for` later.
#[test]
fn held_evidence_of_a_replica_that_went_away_lapses_within_open_for() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(500);
    let gone = CircuitBreaker::new()
        .open_for(open_for)
        .shared(redis, "gone");
    gone.force_open();
    eventually("the held evidence", Duration::from_secs(3), || {
        live_evidence(&server, "gone") == 1
    });
    let dropped = Instant::now();
    drop(gone);
    // One open_for, plus a refresh interval and a round trip that may have
    // renewed it just before the drop, and a wide margin for a loaded
    // machine: far below the "until reset" a mistaken mode would publish.
    eventually("the evidence lapsed", Duration::from_secs(5), || {
        live_evidence(&server, "gone") == 0
    });
    let lapsed = dropped.elapsed();
    println!("held evidence lapsed {lapsed:?} after the drop");
    assert!(lapsed >= open_for / 2, "{lapsed:?}: withdrawn, not lapsed");
}

// ---------------------------------------------------------------------------
// The probe lease.

/// A replica whose open period ended while another holds the lease is
/// refused, and asks for the lease again when the holder's TTL ends or one
/// refresh interval later, not at every call: its calls pay no round trip.
#[test]
fn a_replica_waiting_for_anothers_lease_asks_once_an_interval_not_per_call() {
    let server = Server::start();
    let redis = server.redis();
    // Interval 200 ms; the lease lives 2 s, longer than the test holds it.
    let open_for = Duration::from_secs(2);
    let interval = Duration::from_millis(200);
    let (a, b) = (
        replica(redis, "waiting", open_for),
        replica(redis, "waiting", open_for),
    );
    trip(a);
    trip(b);
    std::thread::sleep(open_for);
    let mut probe = None;
    eventually("a's probe with the lease", Duration::from_secs(3), || {
        probe = a.try_acquire().ok();
        probe.is_some()
    });
    let probe = probe.unwrap();
    assert!(probe.is_probe());
    // b's open period is over too: it calls every millisecond.
    let trips_before = b.redis_round_trips();
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_millis(800) {
        assert!(
            b.try_acquire().is_err(),
            "a second probe while a holds the lease"
        );
        calls += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    let trips = b.redis_round_trips() - trips_before;
    println!("{calls} calls refused in {elapsed:?}: {trips} round trips");
    // A refresh per interval and a lease request per interval at most,
    // plus one of each in flight.
    let intervals = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
    assert!(
        trips <= 2 * intervals + 2,
        "{trips} round trips for {calls} calls"
    );
    probe.success();
}

/// The lease is taken for the replica's half-open period, not for one
/// call: with `half_open_probes(2)` the replica that took it admits its
/// second probe at once, and a third call is refused by the probe count.
#[test]
fn one_lease_admits_every_probe_of_the_half_open_period() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(400);
    let a = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .half_open_probes(2)
            .shared(redis, "probes"),
    );
    trip(a);
    std::thread::sleep(open_for);
    let mut first = None;
    eventually(
        "a's first probe, with the lease",
        Duration::from_secs(3),
        || {
            first = a.try_acquire().ok();
            first.is_some()
        },
    );
    let first = first.unwrap();
    assert!(first.is_probe());
    // The lease lives 400 ms from its grant: ample for the next call.
    let second = a
        .try_acquire()
        .expect("the second probe, on the same lease");
    assert!(second.is_probe());
    assert!(a.try_acquire().is_err(), "two probes at most");
    first.success();
    second.success();
    assert_eq!(a.state(), CircuitState::Closed);
    eventually("lease given back", Duration::from_secs(3), || {
        server.command("EXISTS {steadfast:cb:probes}:probe").trim() == ":0"
    });
}

/// A replica whose half-open period outlives its lease takes no further
/// probe while another replica holds the lease: the lease, not the
/// half-open state, is what lets a probe through.
#[test]
fn a_half_open_replica_whose_lease_expired_yields_to_the_new_holder() {
    let server = Server::start();
    let redis = server.redis();
    // The lease lives max(open_for, 100 ms) = 300 ms.
    let open_for = Duration::from_millis(300);
    let a = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .half_open_probes(2)
            .shared(redis, "outlived"),
    );
    let b = replica(redis, "outlived", open_for);
    trip(a);
    trip(b);
    std::thread::sleep(open_for);
    let mut first = None;
    eventually(
        "a's first probe, with the lease",
        Duration::from_secs(3),
        || {
            first = a.try_acquire().ok();
            first.is_some()
        },
    );
    let first = first.unwrap();
    assert!(first.is_probe());
    // a's probe is slow: its lease expires, and b, asking all along, takes
    // it and probes.
    let mut b_probe = None;
    eventually(
        "b's probe once a's lease expired",
        Duration::from_secs(3),
        || {
            b_probe = b.try_acquire().ok();
            b_probe.is_some()
        },
    );
    let b_probe = b_probe.unwrap();
    assert!(b_probe.is_probe());
    // a still has a free probe slot, but not the lease.
    assert!(a.try_acquire().is_err(), "a probed beside b's lease");
    // Nor does it publish evidence while its lease has run out: once its
    // last piece lapsed and was pruned, only b's is in Redis.
    eventually("a's lapsed evidence pruned", Duration::from_secs(3), || {
        evidence(&server, "outlived") <= 1
    });
    throughout("no evidence of a's", Duration::from_millis(200), || {
        evidence(&server, "outlived") <= 1
    });
    b_probe.success();
    first.success();
}

/// With `Fallback::Deny`, a probe lease Redis granted stays good for its
/// TTL when Redis goes away: the probe it was taken for goes ahead.
#[test]
fn under_deny_a_lease_granted_before_redis_went_away_is_used() {
    let mut server = Server::start();
    let redis = server.redis();
    // The lease lives 2 s: far longer than the outage takes to be noticed.
    let open_for = Duration::from_secs(2);
    let a = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .shared(redis, "deny-lease")
            .when_redis_fails(Fallback::Deny),
    );
    trip(a);
    std::thread::sleep(open_for);
    // One call asks for the lease (refused meanwhile); the next would be
    // the probe. Not made yet: Redis goes first.
    assert!(a.try_acquire().is_err());
    eventually("a holds the lease in Redis", Duration::from_secs(3), || {
        !server
            .command("GET {steadfast:cb:deny-lease}:probe")
            .trim()
            .is_empty()
    });
    // The answer that granted it lands just after Redis wrote it.
    std::thread::sleep(Duration::from_millis(50));
    server.kill();
    eventually("the outage noticed", Duration::from_secs(3), || {
        redis.last_error().is_some()
    });
    let probe = a
        .try_acquire()
        .expect("the lease granted before the outage admits the probe");
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(a.state(), CircuitState::Closed);
    assert!(a.degraded_decisions() > 0);
}

/// The first call after a replica's open period asks for the lease at once
/// (its round trip starts then), not at the next periodic refresh: the
/// call is made just after a refresh, and the lease is in Redis well
/// before the next one (250 ms later) would have asked.
#[test]
fn the_first_call_after_the_open_period_asks_for_the_lease_at_once() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(2500);
    let a = replica(redis, "ask", open_for);
    trip(a);
    std::thread::sleep(open_for);
    // A periodic refresh starts; give it 20 ms to land.
    let trips = a.redis_round_trips();
    eventually("a periodic refresh", Duration::from_secs(3), || {
        a.redis_round_trips() > trips
    });
    std::thread::sleep(Duration::from_millis(20));
    let asked = Instant::now();
    assert!(a.try_acquire().is_err(), "no lease yet: refused");
    eventually("the lease in Redis", Duration::from_secs(3), || {
        !server
            .command("GET {steadfast:cb:ask}:probe")
            .trim()
            .is_empty()
    });
    let took = asked.elapsed();
    println!("lease granted {took:?} after the call that asked");
    assert!(
        took < Duration::from_millis(150),
        "{took:?}: asked at the next refresh, not at once"
    );
}

/// A lease granted to a replica whose call then does not come is given
/// back at its next refresh, on Redis and in the replica's own view: once
/// another replica holds it, the first one's next call is refused, not a
/// second probe. (The lease lives 1 s; the refreshes come every 100 ms.)
#[test]
fn a_lease_given_back_unused_is_no_longer_held() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_secs(1);
    let (a, b) = tripped_pair(redis, "unused", open_for);
    std::thread::sleep(open_for);
    let lease = || {
        server
            .command("GET {steadfast:cb:unused}:probe")
            .trim()
            .to_owned()
    };
    assert!(a.try_acquire().is_err(), "no lease yet: refused");
    eventually("a's lease in Redis", Duration::from_secs(3), || {
        !lease().is_empty()
    });
    let a_id = lease();
    // a's call does not come: its next refresh gives the lease back.
    eventually("a's lease given back", Duration::from_secs(3), || {
        lease().is_empty()
    });
    let mut b_probe = None;
    eventually("b's probe with the lease", Duration::from_secs(3), || {
        b_probe = b.try_acquire().ok();
        b_probe.is_some()
    });
    let b_probe = b_probe.unwrap();
    assert!(b_probe.is_probe());
    assert_ne!(lease(), a_id, "b holds it");
    assert!(a.try_acquire().is_err(), "a probed beside b's lease");
    b_probe.success();
}

/// While a replica probes it keeps its evidence alive for as long as it
/// holds the lease: when a long half-open period takes the lease again,
/// its evidence is renewed to the new lease's end, so the fleet stays open
/// while the prober is still finding out.
#[test]
fn a_prober_renews_its_evidence_with_its_lease() {
    let server = Server::start();
    let redis = server.redis();
    // The lease lives 1.5 s; refreshes every 150 ms.
    let open_for = Duration::from_millis(1500);
    let a = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .half_open_probes(2)
            .shared(redis, "renew"),
    );
    trip(a);
    std::thread::sleep(open_for);
    let mut first = None;
    eventually(
        "a's first probe, with the lease",
        Duration::from_secs(3),
        || {
            first = a.try_acquire().ok();
            first.is_some()
        },
    );
    let first = first.unwrap();
    // The first probe is slow: the lease, and the evidence renewed with
    // it, lapse.
    eventually(
        "the first lease's evidence lapsed",
        Duration::from_secs(3),
        || live_evidence(&server, "renew") == 0,
    );
    // The second probe takes the lease again...
    let mut second = None;
    eventually(
        "a's second probe, with a new lease",
        Duration::from_secs(3),
        || {
            second = a.try_acquire().ok();
            second.is_some()
        },
    );
    let second = second.unwrap();
    assert!(second.is_probe());
    // Taken with the lease, not without it as when Redis fails (whose
    // probes renew nothing).
    assert_eq!(
        a.degraded_decisions(),
        0,
        "decided without Redis: {:?}",
        redis.last_error()
    );
    // ... and the evidence lives again, to the new lease's end.
    eventually("a's evidence renewed", Duration::from_millis(1200), || {
        live_evidence(&server, "renew") == 1
    });
    // To the lease's end, no further.
    let left = evidence_left_ms(&server, "renew").unwrap();
    assert!(left <= 1501, "{left} ms of evidence for a 1.5 s lease");
    first.success();
    second.success();
    eventually("withdrawn once closed", Duration::from_secs(3), || {
        evidence(&server, "renew") == 0
    });
}

// ---------------------------------------------------------------------------
// Publication of local transitions.

/// A local transition is published at once, by a round trip of its own,
/// not at the next periodic refresh (every 250 ms here): the fleet hears of
/// a forced opening, and of the reset that withdraws it, without waiting.
/// Counted in round trips rather than timed: twenty transitions 30 ms
/// apart take about three periodic refreshes, and each transition its own
/// round trip (a few may be merged if the task is slow to run).
#[test]
fn every_local_transition_is_published_by_a_round_trip_of_its_own() {
    let server = Server::start();
    let redis = server.redis();
    let interval = Duration::from_millis(250);
    let a = replica(redis, "publish", Duration::from_secs(3));
    start(a);
    eventually("the first refresh", Duration::from_secs(3), || {
        a.redis_round_trips() >= 1
    });
    let before = a.redis_round_trips();
    let started = Instant::now();
    for i in 0..20 {
        if i % 2 == 0 {
            a.force_open();
        } else {
            a.reset();
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let elapsed = started.elapsed();
    let trips = a.redis_round_trips() - before;
    let periodic = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
    println!("20 transitions in {elapsed:?}: {trips} round trips ({periodic} periodic)");
    assert!(
        trips >= periodic + 10,
        "{trips} round trips for 20 transitions in {elapsed:?}"
    );
    eventually(
        "the last reset withdrew the evidence",
        Duration::from_secs(3),
        || evidence(&server, "publish") == 0,
    );

    // Opened again while open on its own (a new `force_open_for` moves its
    // end): the same mode, a new deadline, published at once too.
    a.force_open_for(Duration::from_secs(10));
    let before = a.redis_round_trips();
    let started = Instant::now();
    for i in 0..20 {
        a.force_open_for(Duration::from_secs(10) + Duration::from_millis(i));
        std::thread::sleep(Duration::from_millis(30));
    }
    let elapsed = started.elapsed();
    let trips = a.redis_round_trips() - before;
    let periodic = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
    println!("20 new deadlines in {elapsed:?}: {trips} round trips ({periodic} periodic)");
    assert!(
        trips >= periodic + 10,
        "{trips} round trips for 20 new deadlines in {elapsed:?}"
    );
}

// ---------------------------------------------------------------------------
// Orders from the background task and the transitions that void them.

/// An order the background task posted before a reset (here: "open, the
/// fleet has a quorum", posted while c was closed and not called) speaks of
/// a fleet seen before the reset; once the evidence is withdrawn, c's first
/// call after the reset must not open it on that order.
#[test]
fn a_reset_voids_an_open_order_posted_before_it() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_secs(2);
    let (a, b, c) = (
        replica(redis, "order", open_for),
        replica(redis, "order", open_for),
        replica(redis, "order", open_for),
    );
    start(c);
    a.force_open_for(Duration::from_secs(10));
    b.force_open_for(Duration::from_secs(10));
    eventually("a's and b's evidence", Duration::from_secs(3), || {
        evidence(&server, "order") == 2
    });
    // Two more of c's round trips start: the first of them began after the
    // evidence was published and has landed by the time the second starts,
    // so an open order is waiting for c's next call. c is not called: the
    // order stays there.
    let seen = c.redis_round_trips();
    eventually("c saw the quorum", Duration::from_secs(3), || {
        c.redis_round_trips() >= seen + 2
    });
    // c is forced open (which neither reads nor clears orders), the fleet
    // recovers, and c is reset. Each step waits for Redis to hold what it
    // published, so that no refresh in flight still carries the one before.
    c.force_open();
    eventually("c's held evidence", Duration::from_secs(3), || {
        evidence(&server, "order") == 3
    });
    a.reset();
    b.reset();
    eventually(
        "a's and b's evidence withdrawn",
        Duration::from_secs(3),
        || evidence(&server, "order") == 1,
    );
    // And a refresh of c's has run since: none still in flight saw a's or
    // b's evidence (see the ignored test below for what that would do).
    let seen = c.redis_round_trips();
    eventually(
        "a refresh of c's after the withdrawals",
        Duration::from_secs(3),
        || c.redis_round_trips() >= seen + 2,
    );
    c.reset();
    let call = c.try_acquire();
    assert!(call.is_ok(), "c opened on an order from before its reset");
    call.unwrap().success();
    eventually("c's evidence withdrawn", Duration::from_secs(3), || {
        evidence(&server, "order") == 0
    });
    throughout("c stays closed", Duration::from_millis(500), || {
        c.try_acquire().is_ok_and(|permit| {
            permit.success();
            true
        })
    });
}

/// A refresh that published this replica's own evidence and lands after
/// the replica closed (here: reset while Redis was stalled) must not count
/// that evidence towards the quorum that opens the replica itself: with
/// one other replica's evidence live and a quorum of 2, the reset replica
/// is not opened by the fleet (the script leaves a replica's own
/// evidence out of what it returns).
#[test]
fn a_reset_racing_a_refresh_does_not_count_its_own_evidence_towards_the_quorum() {
    let server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_secs(2);
    let (a, c) = (
        replica(redis, "own", open_for),
        replica(redis, "own", open_for),
    );
    a.force_open_for(Duration::from_secs(10));
    c.force_open();
    eventually("a's and c's evidence", Duration::from_secs(3), || {
        evidence(&server, "own") == 2
    });
    // Redis stalls (well within the client's 1 s timeout) while one of c's
    // periodic refreshes, renewing its held evidence, is in flight.
    let paused = server.pause();
    let trips = c.redis_round_trips();
    eventually("c's refresh in flight", Duration::from_secs(3), || {
        c.redis_round_trips() > trips
    });
    c.reset();
    drop(paused);
    // The refresh lands: live = {a, c (renewed)}.
    std::thread::sleep(Duration::from_millis(100));
    let call = c.try_acquire();
    assert!(
        call.is_ok(),
        "c, reset, opened by a quorum made of a and its own old evidence"
    );
}

// ---------------------------------------------------------------------------
// Redis unavailable.

/// While Redis is unavailable a shared breaker's refreshes do not go to
/// Redis: one probe per `retry_after` does (an outage costs one timeout,
/// not one per refresh), and sharing resumes with the first that answers.
#[test]
fn during_an_outage_redis_is_probed_once_per_retry_after_not_at_every_refresh() {
    let mut server = Server::start();
    let retry_after = Duration::from_millis(500);
    let redis: &'static Redis = Box::leak(Box::new(
        Redis::new(server.url)
            .timeout(Duration::from_secs(1))
            .retry_after(retry_after),
    ));
    // Refreshes every 10 ms.
    let a = replica(redis, "outage-cadence", Duration::from_millis(100));
    start(a);
    eventually("the first refresh", Duration::from_secs(3), || {
        a.redis_round_trips() >= 1
    });
    server.kill();
    eventually("the outage noticed", Duration::from_secs(3), || {
        redis.last_error().is_some()
    });
    let before = a.redis_round_trips();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1200));
    let elapsed = started.elapsed();
    let trips = a.redis_round_trips() - before;
    let probes = (elapsed.as_secs_f64() / retry_after.as_secs_f64()).ceil() as u64;
    println!("{trips} round trips in {elapsed:?} of outage");
    assert!(
        trips <= probes + 1,
        "{trips} round trips in {elapsed:?} of outage"
    );
    assert!(a.degraded_decisions() > 0);
    server.restart();
    eventually("sharing resumed", Duration::from_secs(3), || {
        redis.last_error().is_none()
    });
}

// ---------------------------------------------------------------------------
// A fleet opening's deadline.

/// With `Fallback::Deny` and Redis gone, a replica the fleet opened stays
/// open to the deadline the fleet gave it (when the quorum's evidence
/// lapses), and the first call after that deadline is admitted as an
/// ordinary call of a closed breaker: neither refused nor a probe (the
/// fleet's replica does not probe). The replica is first used well before
/// the fleet opens it, so that its clock and the breaker's differ.
#[test]
fn under_deny_the_first_call_after_the_fleets_deadline_is_admitted_closed() {
    let mut server = Server::start();
    let redis = server.redis();
    let open_for = Duration::from_millis(1500);
    let a = replica(redis, "deadline", open_for);
    let b = replica(redis, "deadline", open_for);
    let c = leak(
        CircuitBreaker::new()
            .failure_threshold(1)
            .open_for(open_for)
            .shared(redis, "deadline")
            .when_redis_fails(Fallback::Deny),
    );
    start(c);
    std::thread::sleep(Duration::from_millis(1200));
    let tripped = Instant::now();
    trip(a);
    trip(b);
    eventually("c opened by the quorum", Duration::from_secs(3), || {
        c.state() == CircuitState::Open
    });
    server.kill();
    assert!(c.try_acquire().is_err(), "open to the fleet's deadline");
    // The evidence lapses `open_for` after the trips; c is not called
    // before then (a call past the deadline is the one under test).
    std::thread::sleep((open_for + Duration::from_millis(700)).saturating_sub(tripped.elapsed()));
    let rejected = c.rejected_count();
    let call = c
        .try_acquire()
        .expect("past the fleet's deadline: admitted");
    assert!(!call.is_probe(), "the fleet's replica does not probe");
    call.success();
    assert_eq!(c.state(), CircuitState::Closed);
    assert_eq!(c.rejected_count(), rejected);
    assert!(c.degraded_decisions() > 0);
}

// ---------------------------------------------------------------------------
// A model test of the shared part's orderings, through the public API.

/// Many threads hammer three replicas of one breaker while their
/// dependency goes down and up, and an operator flips one replica's
/// switches. The shared part coordinates more than eight atomics between
/// the calling threads and its background task (the order, the mode, the
/// fleet-opening marker, the lease and its request, ...); loom cannot run
/// it (it talks to Redis), so this checks, under real interleavings, what
/// its orderings must keep:
///
/// - c's calls always succeed: c opens only by the fleet, so it never
///   publishes evidence (at most a's and b's are in Redis) and never
///   probes (a replica the fleet opened closes instead);
/// - no replica ever has two probes out (`half_open_probes(1)`);
/// - once the dependency is healthy for good, every replica ends closed,
///   with no evidence and no lease left: no order, mode or lease request
///   is lost or left behind by a race.
#[test]
fn three_replicas_under_a_storm_keep_the_fleets_invariants_and_settle_closed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

    let server = Server::start();
    let redis = server.redis();
    // Interval 30 ms, lease TTL 300 ms: many refreshes, leases and orders
    // in a short storm.
    let open_for = Duration::from_millis(300);
    let make = || {
        leak(
            CircuitBreaker::new()
                .failure_threshold(2)
                .open_for(open_for)
                .half_open_probes(1)
                .shared(redis, "storm"),
        )
    };
    let (a, b, c) = (make(), make(), make());
    let down = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let c_opened = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for (breaker, fails) in [
        (a, true),
        (a, true),
        (b, true),
        (b, true),
        (c, false),
        (c, false),
    ] {
        let (down, stop, c_opened) = (down.clone(), stop.clone(), c_opened.clone());
        // One counter of probes out per replica, shared by its threads.
        static OUT: [AtomicU32; 3] = [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)];
        let index = if std::ptr::eq(breaker, a) {
            0
        } else if std::ptr::eq(breaker, b) {
            1
        } else {
            2
        };
        threads.push(std::thread::spawn(move || {
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match breaker.try_acquire() {
                    Ok(permit) => {
                        calls += 1;
                        if permit.is_probe() {
                            assert!(fails, "c, opened only by the fleet, probed");
                            let before = OUT[index].fetch_add(1, Ordering::SeqCst);
                            assert_eq!(before, 0, "two probes out on one replica");
                            // Given back before the outcome: the next probe
                            // of this replica can only start after it.
                            OUT[index].fetch_sub(1, Ordering::SeqCst);
                        }
                        if fails && down.load(Ordering::Relaxed) {
                            permit.failure();
                        } else {
                            permit.success();
                        }
                    }
                    Err(_) if !fails => {
                        c_opened.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {}
                }
                if calls % 8 == 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }));
    }
    // The operator: b forced open, disabled, enabled and reset now and then.
    let operator = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut step = 0u32;
            while !stop.load(Ordering::Relaxed) {
                match step % 4 {
                    0 => b.force_open(),
                    1 => b.disable(),
                    2 => b.enable(),
                    _ => b.reset(),
                }
                step += 1;
                std::thread::sleep(Duration::from_millis(70));
            }
            b.enable();
            b.reset();
        })
    };
    // The storm: down and up every 150 ms for 2.4 s, while the evidence in
    // Redis is watched.
    let storm = Instant::now();
    let mut most_evidence = 0;
    while storm.elapsed() < Duration::from_millis(2400) {
        down.store(
            (storm.elapsed().as_millis() / 150) % 2 == 0,
            Ordering::Relaxed,
        );
        let n = evidence(&server, "storm");
        most_evidence = most_evidence.max(n);
        assert!(
            n <= 2,
            "{n} pieces of evidence: c published its fleet opening"
        );
        std::thread::sleep(Duration::from_millis(3));
    }
    // Healthy for good; calls go on while the fleet settles.
    down.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    operator.join().unwrap();
    for thread in threads {
        thread.join().expect("a caller's invariant held");
    }
    println!(
        "most evidence {most_evidence}; c refused {} calls; round trips a {} b {} c {}",
        c_opened.load(Ordering::Relaxed),
        a.redis_round_trips(),
        b.redis_round_trips(),
        c.redis_round_trips()
    );
    assert!(
        c_opened.load(Ordering::Relaxed) > 0,
        "the fleet never opened c"
    );
    eventually(
        "every replica closed, no evidence, no lease",
        Duration::from_secs(5),
        || {
            for breaker in [a, b, c] {
                // Healthy calls: a probe, if one is due, succeeds.
                if let Ok(permit) = breaker.try_acquire() {
                    permit.success();
                }
            }
            [a, b, c].iter().all(|r| r.state() == CircuitState::Closed)
                && evidence(&server, "storm") == 0
                && server.command("EXISTS {steadfast:cb:storm}:probe").trim() == ":0"
        },
    );
    // And they stay so: nothing left behind reopens them.
    throughout("all stay closed", Duration::from_millis(300), || {
        [a, b, c].iter().all(|r| {
            r.try_acquire().is_ok_and(|permit| {
                let ordinary = !permit.is_probe();
                permit.success();
                ordinary
            })
        })
    });
}
