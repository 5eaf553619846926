//! Fault injection over real TCP on 127.0.0.1: thousands of calls from many
//! concurrent callers, through `#[resilient]` async fns using a real
//! `tokio::net::TcpStream`, against the in-process fault server of
//! `support/fault_server.rs` (refuse, reset mid-request, black hole, added
//! latency, slow close, `ERR transient` / `ERR permanent` replies).
//!
//! Real sockets do not mix with tokio's paused clock, so these tests run on
//! a real-time multi-thread runtime (2 workers). Every wall-clock wait is
//! small and bounded: faults add at most a few ms, timeouts are 40-150 ms,
//! a black hole is held only until the client's timeout drops the
//! connection, the whole file takes ~3 s on 2 cores, and each test runs its
//! calls under an overall `tokio::time::timeout` so that a hang fails
//! instead of stalling CI.
//!
//! Each test states the figure it asserts in a comment and in its assert
//! messages, and prints what the server saw (`--nocapture` to read it).

#[path = "support/fault_server.rs"]
mod fault_server;
mod support;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fault_server::{Config, Fault, FaultServer, Faults};
use steadfast::{
    Bulkhead, CircuitBreaker, CircuitOpen, CircuitState, Elapsed, Rejected, resilient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------
// The client: one attempt = connect, send one line, read one line.

#[derive(Debug, Clone, PartialEq)]
#[allow(dead_code)]
enum CallError {
    Io(io::ErrorKind),
    Transient,
    Permanent,
    Garbled,
    Timeout(Elapsed),
    Open(CircuitOpen),
    Rejected(Rejected),
}

impl From<io::Error> for CallError {
    fn from(e: io::Error) -> Self {
        CallError::Io(e.kind())
    }
}
support::library_errors!(CallError);

async fn exchange(addr: SocketAddr, id: u64) -> Result<(), CallError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("REQ {id}\n").as_bytes()).await?;
    let mut reply = Vec::with_capacity(16);
    let mut buf = [0u8; 32];
    while !reply.contains(&b'\n') {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(CallError::Io(io::ErrorKind::UnexpectedEof));
        }
        reply.extend_from_slice(&buf[..n]);
    }
    match &reply[..] {
        b"OK\n" => Ok(()),
        b"ERR transient\n" => Err(CallError::Transient),
        b"ERR permanent\n" => Err(CallError::Permanent),
        _ => Err(CallError::Garbled),
    }
}

/// What one attempt saw, from inside the body. An attempt whose future was
/// dropped (timeout or deadline) stays `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Seen {
    Pending,
    Ok,
    Io,
    Transient,
    Permanent,
    Garbled,
}

/// Every attempt of one call, recorded by the body.
#[derive(Debug, Default)]
struct Trace(Mutex<Vec<Seen>>);

impl Trace {
    fn begin(&self) -> usize {
        let mut seen = self.0.lock().unwrap();
        seen.push(Seen::Pending);
        seen.len() - 1
    }

    fn end(&self, n: usize, result: &Result<(), CallError>) {
        self.0.lock().unwrap()[n] = match result {
            Ok(()) => Seen::Ok,
            Err(CallError::Io(_)) => Seen::Io,
            Err(CallError::Transient) => Seen::Transient,
            Err(CallError::Permanent) => Seen::Permanent,
            Err(_) => Seen::Garbled,
        };
    }

    fn attempts(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// Attempt bodies running at once on the client side.
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    const fn new() -> Self {
        InFlight {
            now: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    fn enter(&self) -> impl Drop + '_ {
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Leave(&self.now)
    }
}

/// One finished call.
#[derive(Debug)]
struct Done {
    result: Result<(), CallError>,
    took: Duration,
    attempts: Vec<Seen>,
}

/// Runs `calls` calls from `callers` concurrent tasks (each task makes its
/// calls one after another) and returns them all, in no particular order.
/// The whole run is bounded by `limit`.
async fn drive<F, Fut>(calls: u64, callers: u64, limit: Duration, call: F) -> Vec<Done>
where
    F: Fn(u64, Arc<Trace>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CallError>> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU32::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..callers {
        let call = call.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let mut done = Vec::new();
            loop {
                let id = u64::from(next.fetch_add(1, Ordering::SeqCst));
                if id >= calls {
                    return done;
                }
                let trace = Arc::new(Trace::default());
                let start = Instant::now();
                let result = call(id, trace.clone()).await;
                done.push(Done {
                    result,
                    took: start.elapsed(),
                    attempts: trace.attempts(),
                });
            }
        });
    }
    let all = async {
        let mut all = Vec::with_capacity(calls as usize);
        while let Some(done) = tasks.join_next().await {
            all.extend(done.unwrap());
        }
        all
    };
    let all = tokio::time::timeout(limit, all)
        .await
        .unwrap_or_else(|_| panic!("{calls} calls did not finish within {limit:?}"));
    assert_eq!(all.len() as u64, calls, "every call returned exactly once");
    all
}

fn count(done: &[Done], pred: impl Fn(&Done) -> bool) -> usize {
    done.iter().filter(|d| pred(d)).count()
}

fn histogram(done: &[Done], max: usize) -> Vec<usize> {
    (1..=max)
        .map(|n| count(done, |d| d.attempts.len() == n))
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Deadline and max_attempts under every fault at once.

/// Every fault enabled: 55% of connections get one (40% fail: refused,
/// reset, black-holed, `ERR`; 15% answer late or close slowly).
const EVERY_FAULT: Faults = Faults {
    refuse: 0.10,
    reset: 0.10,
    black_hole: 0.05,
    latency: 0.10,
    slow_close: 0.05,
    err_permanent: 0.05,
    err_transient: 0.10,
};

const DEADLINE: Duration = Duration::from_millis(250);
/// Slack allowed past the deadline, measured by the caller around the call:
/// the deadline is a tokio timer (1 ms wheel resolution) that cancels the
/// attempt future, after which the cancelled connection is dropped and the
/// calling task must be scheduled again on a 2-worker runtime shared by
/// 100 callers (and by the other tests of this file running in parallel).
/// Observed overshoot: 2-10 ms, up to 18 ms with two CPU hogs on the 2
/// cores; 50 ms absorbs a descheduled worker without hiding a real bug (a
/// missed deadline overshoots by a whole timeout, 40 ms, or a backoff, or
/// never ends).
const DEADLINE_SLACK: Duration = Duration::from_millis(50);

/// Queueing for its 10 permits makes calls hit the deadline while waiting,
/// while sleeping and while an attempt runs.
static DEADLINE_POOL: Bulkhead = Bulkhead::new(10);

/// `budget = "off"`: max_attempts, not the budget, is the bound under test
/// (the default budget would cap retries at ~25% of these 2000 calls).
#[resilient(max_attempts = 4, base_delay = "2ms", max_delay = "20ms", timeout = "40ms",
            deadline = "250ms", concurrency = &DEADLINE_POOL, budget = "off",
            no_retry_on = [Permanent])]
async fn bounded(addr: SocketAddr, id: u64, trace: &Trace) -> Result<(), CallError> {
    let n = trace.begin();
    let result = exchange(addr, id).await;
    trace.end(n, &result);
    result
}

/// 2000 calls from 100 concurrent callers, every fault enabled, 4 attempts
/// of at most 40 ms each, a 250 ms deadline, and 10 permits for the 100
/// callers (so calls also reach the deadline while queueing):
/// - every call returns within `deadline` (250 ms) + 50 ms slack;
/// - every call makes 1..=4 attempts (`max_attempts`), and some make 4;
/// - nothing is lost: server connections == client attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_within_its_deadline_and_max_attempts() {
    let mut config = Config::new(0x5eed_0001, EVERY_FAULT);
    // A slower upstream (2-6 ms) makes the 100 callers queue for the 10
    // permits, so that many calls run into the deadline.
    config.service = (Duration::from_millis(2), Duration::from_millis(6));
    let server = FaultServer::start(config).await.unwrap();
    let addr = server.addr();

    let started = Instant::now();
    let done = drive(
        2_000,
        100,
        Duration::from_secs(30),
        move |id, trace| async move { bounded(addr, id, &trace).await },
    )
    .await;
    let wall = started.elapsed();
    let attempts: usize = done.iter().map(|d| d.attempts.len()).sum();
    let stats = server.settle(attempts as u64).await;

    let worst = done.iter().map(|d| d.took).max().unwrap();
    let over = count(&done, |d| d.took > DEADLINE + DEADLINE_SLACK);
    let past_deadline = count(&done, |d| d.took > DEADLINE);
    let ok = count(&done, |d| d.result.is_ok());
    let timed_out = count(&done, |d| matches!(d.result, Err(CallError::Timeout(_))));
    println!(
        "deadline: 2000 calls, 100 callers, 10 permits, in {wall:?}\n  \
         server: {stats}\n  \
         client: {attempts} attempts, attempts/call histogram {:?}, ok {ok}, ended by timeout/deadline {timed_out}, \
         slowest call {worst:?} (deadline {DEADLINE:?}; {past_deadline} calls returned after it, by at most {:?})\n  \
         (the server's peak may exceed the 10 permits here: a request abandoned at the deadline keeps \
         running at the server while its freed permit admits another)",
        histogram(&done, 4),
        worst.saturating_sub(DEADLINE),
    );

    // figure: every call <= 250 ms deadline + 50 ms slack
    assert_eq!(
        over, 0,
        "{over} calls took longer than deadline 250 ms + 50 ms slack (slowest {worst:?})"
    );
    // figure: 1 <= attempts <= max_attempts = 4 for every call
    for d in &done {
        assert!(
            (1..=4).contains(&d.attempts.len()),
            "a call made {} attempts, max_attempts is 4: {d:?}",
            d.attempts.len()
        );
    }
    // The bound was reached (typically 8-13 calls: the deadline and the
    // queue for the bulkhead cut most retry chains short).
    assert!(
        count(&done, |d| d.attempts.len() == 4) >= 1,
        "the bound was reached: {} calls made all 4 attempts (>= 1)",
        count(&done, |d| d.attempts.len() == 4)
    );
    // The deadline was exercised: calls cut off by it return just after it
    // (typically 20-200 of the 2000).
    assert!(
        past_deadline >= 5,
        "the deadline was reached by {past_deadline} calls (>= 5)"
    );
    // figure: server connections == client attempts (no attempt lost or duplicated)
    assert_eq!(
        stats.connections, attempts as u64,
        "server connections == client attempts"
    );
    // figure: failing faults on >= 30% of connections (40% configured;
    // 4 sigma of a binomial over ~2800 connections is 3.7%)
    let injected = stats.failures_injected() as f64 / stats.connections as f64;
    assert!(
        injected >= 0.30,
        "faults injected: {} of {} connections ({injected:.3}, >= 0.30 expected)",
        stats.failures_injected(),
        stats.connections
    );
}

// ---------------------------------------------------------------------------
// 1b. The server never sees more concurrent requests than `concurrency`.

const CONCURRENCY: usize = 16;

/// Shared by every caller of `pooled`.
static POOL: Bulkhead = Bulkhead::new(CONCURRENCY);
static POOLED_IN_FLIGHT: InFlight = InFlight::new();

/// No deadline, and a 150 ms timeout, far above the upstream's 1-4 ms
/// service time plus at most 10 ms of latency: no client abandons a request
/// the upstream is still working on, so the client's bulkhead bounds what
/// the upstream sees (black holes time out, but never reach the upstream).
/// With a deadline that cancels attempts mid-request this would not hold,
/// and need not: the server keeps working on abandoned requests (see the
/// deadline test's output).
#[resilient(max_attempts = 4, base_delay = "2ms", max_delay = "20ms", timeout = "150ms",
            concurrency = &POOL, budget = "off", no_retry_on = [Permanent])]
async fn pooled(addr: SocketAddr, id: u64, trace: &Trace) -> Result<(), CallError> {
    let _in_flight = POOLED_IN_FLIGHT.enter();
    let n = trace.begin();
    let result = exchange(addr, id).await;
    trace.end(n, &result);
    result
}

/// 2000 calls from 100 concurrent callers through one shared bulkhead of
/// 16, every fault enabled (black holes at 2%, to keep the run short):
/// - the upstream never sees more than 16 requests at once, nor do the
///   attempt bodies run more than 16 at once;
/// - the limit was pressed on: the bodies reached 16.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_sees_more_than_concurrency_requests() {
    let mut config = Config::new(
        0x5eed_0005,
        Faults {
            black_hole: 0.02,
            ..EVERY_FAULT
        },
    );
    // Long enough service that requests overlap at the upstream.
    config.service = (Duration::from_millis(1), Duration::from_millis(4));
    let server = FaultServer::start(config).await.unwrap();
    let addr = server.addr();

    let started = Instant::now();
    let done = drive(
        2_000,
        100,
        Duration::from_secs(30),
        move |id, trace| async move { pooled(addr, id, &trace).await },
    )
    .await;
    let wall = started.elapsed();
    let attempts: usize = done.iter().map(|d| d.attempts.len()).sum();
    let stats = server.settle(attempts as u64).await;
    let client_peak = POOLED_IN_FLIGHT.peak.load(Ordering::SeqCst);
    println!(
        "concurrency: 2000 calls, 100 callers, concurrency {CONCURRENCY}, in {wall:?}\n  \
         server: {stats}\n  client: {attempts} attempts, ok {}, peak bodies in flight {client_peak}",
        count(&done, |d| d.result.is_ok()),
    );

    // figure: upstream peak concurrent requests <= concurrency = 16
    assert!(
        stats.peak_concurrent <= CONCURRENCY as u64,
        "the server saw {} concurrent requests, concurrency is 16",
        stats.peak_concurrent
    );
    assert!(
        client_peak <= CONCURRENCY,
        "{client_peak} attempt bodies ran at once, concurrency is 16"
    );
    // The limit was actually pressed on: 100 callers for 16 permits.
    assert!(
        stats.peak_concurrent >= 2 && client_peak == CONCURRENCY,
        "load held: server peak {} (>= 2), client peak {client_peak} (== 16)",
        stats.peak_concurrent
    );
    assert_eq!(
        stats.connections, attempts as u64,
        "server connections == client attempts"
    );
}

// ---------------------------------------------------------------------------
// 2. Classification: resets and timeouts are retried, permanent errors not.

#[resilient(max_attempts = 4, base_delay = "1ms", max_delay = "5ms", timeout = "100ms",
            budget = "off", no_retry_on = [Permanent])]
async fn classified(addr: SocketAddr, id: u64, trace: &Trace) -> Result<(), CallError> {
    let n = trace.begin();
    let result = exchange(addr, id).await;
    trace.end(n, &result);
    result
}

/// 1500 calls from 50 callers, max_attempts 4, `no_retry_on = [Permanent]`,
/// budget off (so every retryable failure is retried and the checks below
/// are exact, not statistical). For every attempt of every call:
/// - `ERR permanent` is never retried: it is always the call's last
///   attempt, and a call whose first reply is permanent makes exactly 1;
/// - a reset (refused or mid-request), a black hole (the 100 ms timeout),
///   and `ERR transient` are always retried unless it was attempt 4;
/// - the call's result is its last attempt's outcome;
/// - the client saw exactly what the server injected, fault by fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_timeouts_are_retried_permanent_errors_are_not() {
    let config = Config::new(
        0x5eed_0002,
        Faults {
            refuse: 0.10,
            reset: 0.10,
            black_hole: 0.05,
            latency: 0.10,
            slow_close: 0.05,
            err_permanent: 0.15,
            err_transient: 0.10,
        },
    );
    let server = FaultServer::start(config).await.unwrap();
    let addr = server.addr();
    let started = Instant::now();
    let done = drive(
        1_500,
        50,
        Duration::from_secs(30),
        move |id, trace| async move { classified(addr, id, &trace).await },
    )
    .await;
    let wall = started.elapsed();
    let attempts: usize = done.iter().map(|d| d.attempts.len()).sum();
    let stats = server.settle(attempts as u64).await;

    let mut seen = std::collections::HashMap::<Seen, u64>::new();
    let mut permanent_first = 0;
    let mut retried = 0;
    for d in &done {
        let a = &d.attempts;
        assert!((1..=4).contains(&a.len()), "attempts <= 4: {d:?}");
        for (i, s) in a.iter().enumerate() {
            *seen.entry(*s).or_default() += 1;
            let last = i + 1 == a.len();
            match s {
                Seen::Permanent => assert!(last, "ERR permanent was retried: {d:?}"),
                Seen::Io | Seen::Pending | Seen::Transient => {
                    assert!(
                        !last || a.len() == 4,
                        "a retryable failure ({s:?}) was not retried before attempt 4: {d:?}"
                    );
                    retried += u64::from(!last);
                }
                Seen::Ok => assert!(last, "a success was followed by another attempt: {d:?}"),
                Seen::Garbled => panic!("garbled reply: {d:?}"),
            }
        }
        if a[0] == Seen::Permanent {
            permanent_first += 1;
            assert_eq!(
                a.len(),
                1,
                "permanent on the first attempt => 1 attempt: {d:?}"
            );
        }
        let expected = match a.last().unwrap() {
            Seen::Ok => d.result.is_ok(),
            Seen::Permanent => d.result == Err(CallError::Permanent),
            Seen::Transient => d.result == Err(CallError::Transient),
            Seen::Io => matches!(d.result, Err(CallError::Io(_))),
            Seen::Pending => matches!(d.result, Err(CallError::Timeout(_))),
            Seen::Garbled => false,
        };
        assert!(expected, "the result is the last attempt's outcome: {d:?}");
    }
    let get = |s| seen.get(&s).copied().unwrap_or(0);
    println!(
        "classification: 1500 calls, 50 callers, in {wall:?}\n  server: {stats}\n  \
         client attempts by outcome: {seen:?}; retried {retried}; permanent on the first attempt {permanent_first} \
         (all with exactly 1 attempt); attempts/call histogram {:?}",
        histogram(&done, 4)
    );

    // figure: client outcomes == server's injected faults, one for one
    assert_eq!(
        get(Seen::Permanent),
        stats.count(Fault::ErrPermanent),
        "ERR permanent sent == seen"
    );
    assert_eq!(
        get(Seen::Transient),
        stats.count(Fault::ErrTransient),
        "ERR transient sent == seen"
    );
    assert_eq!(
        get(Seen::Io),
        stats.count(Fault::Refuse) + stats.count(Fault::Reset),
        "refused + reset == io errors seen"
    );
    assert_eq!(
        get(Seen::Pending),
        stats.count(Fault::BlackHole),
        "black holes == timeouts"
    );
    assert_eq!(
        get(Seen::Ok),
        stats.count(Fault::Ok) + stats.count(Fault::Latency) + stats.count(Fault::SlowClose),
        "OK replies (incl. delayed and slow-closed) == successes seen"
    );
    // ~15% of 1500 first attempts are permanent; make sure the case was exercised.
    assert!(
        permanent_first >= 100,
        "permanent-first calls: {permanent_first} (>= 100)"
    );
    assert!(
        get(Seen::Pending) >= 20,
        "timeouts exercised: {}",
        get(Seen::Pending)
    );
}

// ---------------------------------------------------------------------------
// 3. The breaker opens while the server is down and closes once it is back.

const OPEN_FOR: Duration = Duration::from_millis(500);
static BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(5)
    .open_for(OPEN_FOR)
    .on_state_change(record_transition);
/// Breaker transitions with their (real) time.
static TRANSITIONS: Mutex<Vec<(Instant, CircuitState, CircuitState)>> = Mutex::new(Vec::new());

fn record_transition(from: CircuitState, to: CircuitState) {
    TRANSITIONS.lock().unwrap().push((Instant::now(), from, to));
}

fn last_opened() -> Instant {
    let transitions = TRANSITIONS.lock().unwrap();
    let (at, ..) = transitions
        .iter()
        .rev()
        .find(|(_, _, to)| *to == CircuitState::Open)
        .expect("the breaker opened");
    *at
}

#[resilient(max_attempts = 3, backoff = "none", timeout = "100ms", budget = "off",
            circuit_breaker = &BREAKER, no_retry_on = [Permanent])]
async fn guarded(addr: SocketAddr, id: u64, trace: &Trace) -> Result<(), CallError> {
    let n = trace.begin();
    let result = exchange(addr, id).await;
    trace.end(n, &result);
    result
}

/// 50 callers against one breaker (5 consecutive failures, open 500 ms):
/// - up: 500 calls all succeed, the breaker stays Closed;
/// - down (every connection reset): the breaker reaches Open within 2 s;
/// - open: 1000 calls all fail with `CircuitOpen`, each in < 10 ms, with
///   0 new connections at the server;
/// - back up, after `open_for`: within 2 s the breaker is Closed again and
///   the next 500 calls all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_while_the_server_is_down_and_closes_when_it_is_back() {
    let server = FaultServer::start(Config::new(0x5eed_0003, Faults::NONE))
        .await
        .unwrap();
    let addr = server.addr();
    let call = move |id, trace: Arc<Trace>| async move { guarded(addr, id, &trace).await };
    let limit = Duration::from_secs(10);

    // Up.
    let done = drive(500, 50, limit, call).await;
    assert_eq!(
        count(&done, |d| d.result.is_ok()),
        500,
        "up: 500 of 500 succeed"
    );
    assert_eq!(BREAKER.state(), CircuitState::Closed);

    // Down: call until the breaker has opened (bounded).
    server.set_down(true);
    let t0 = Instant::now();
    let mut down_calls = 0;
    while BREAKER.state() != CircuitState::Open {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the breaker did not open within 2 s of the outage"
        );
        let done = drive(50, 50, limit, call).await;
        down_calls += 50;
        assert!(
            done.iter()
                .all(|d| matches!(d.result, Err(CallError::Io(_) | CallError::Open(_)))),
            "down: every call fails with a reset or CircuitOpen"
        );
    }
    let opened_at = last_opened();
    let when_open = server.stats();

    // Open: rejected fast, nothing reaches the server.
    let done = drive(1_000, 50, limit, call).await;
    let open_phase = opened_at.elapsed();
    let after_open = server.stats();
    let slowest = done.iter().map(|d| d.took).max().unwrap();
    println!(
        "breaker: opened after {down_calls} calls / {} refused connections; \
         1000 calls while open took {open_phase:?}, slowest {slowest:?}; \
         connections before/after {}/{}",
        when_open.down_refused, when_open.connections, after_open.connections
    );
    assert!(
        open_phase < OPEN_FOR,
        "precondition: the open phase ({open_phase:?} since the breaker opened) fits in open_for ({OPEN_FOR:?})"
    );
    // figure: 1000 of 1000 calls rejected with CircuitOpen, 0 attempts run
    assert!(
        done.iter()
            .all(|d| d.result == Err(CallError::Open(CircuitOpen::new())) && d.attempts.is_empty()),
        "open: every call fails with CircuitOpen without running an attempt"
    );
    // figure: each rejected in < 10 ms
    assert!(
        slowest < Duration::from_millis(10),
        "open: rejected fast, slowest {slowest:?} (< 10 ms)"
    );
    // figure: server connections and requests flat while open
    assert_eq!(
        (after_open.connections, after_open.requests),
        (when_open.connections, when_open.requests),
        "open: the server sees nothing"
    );
    assert_eq!(BREAKER.state(), CircuitState::Open);

    // Back up: after open_for a probe goes through and closes the breaker.
    server.set_down(false);
    tokio::time::sleep_until((opened_at + OPEN_FOR + Duration::from_millis(20)).into()).await;
    let t1 = Instant::now();
    let mut probes = 0;
    while BREAKER.state() != CircuitState::Closed {
        assert!(
            t1.elapsed() < Duration::from_secs(2),
            "the breaker did not close within 2 s of the recovery"
        );
        let done = drive(50, 50, limit, call).await;
        probes += count(&done, |d| !d.attempts.is_empty());
    }
    let done = drive(500, 50, limit, call).await;
    let closed = server.stats();
    let transitions: Vec<_> = TRANSITIONS
        .lock()
        .unwrap()
        .iter()
        .map(|(at, from, to)| format!("{from:?}->{to:?} at +{:?}", at.duration_since(opened_at)))
        .collect();
    println!(
        "breaker: closed {:?} after the wait for open_for, {probes} calls reached the server meanwhile; \
         500 calls after: {} ok; transitions (relative to opening) {transitions:?}\n  server: {closed}",
        t1.elapsed(),
        count(&done, |d| d.result.is_ok())
    );
    // figure: Closed again, 500 of 500 calls succeed, the server sees them
    assert_eq!(BREAKER.state(), CircuitState::Closed);
    assert_eq!(
        count(&done, |d| d.result.is_ok()),
        500,
        "closed: 500 of 500 succeed"
    );
    assert!(closed.requests >= after_open.requests + 500);
}

// ---------------------------------------------------------------------------
// 4. The success rate is 1 - p^attempts for an independent fault rate p.

const RATE_CALLS: u64 = 3_000;
const RATE_ATTEMPTS: i32 = 3;

#[resilient(max_attempts = 3, base_delay = "1ms", max_delay = "5ms", timeout = "50ms",
            budget = "off", no_retry_on = [Permanent])]
async fn independent(addr: SocketAddr, id: u64, trace: &Trace) -> Result<(), CallError> {
    let n = trace.begin();
    let result = exchange(addr, id).await;
    trace.end(n, &result);
    result
}

/// Every connection independently fails with p = 0.5 (refused 15%, reset
/// 15%, `ERR transient` 10%, black hole 10%), all retryable; 3000 calls from
/// 100 callers with max_attempts 3. A call fails only if all 3 attempts
/// fail, so the success rate is 1 - p^3 = 0.875. The number of failed calls
/// is Binomial(3000, 0.125): sigma = sqrt(3000 * 0.125 * 0.875) = 18.1
/// calls, i.e. 0.60% of the rate; the tolerance is 4 sigma = 2.42%
/// (a false alarm about once in 16 000 runs).
///
/// `budget = "off"`: with p = 0.5 a call needs 0.75 retries on average,
/// more than the default budget's 20% + 10/s allows, so the budget would
/// cut retries and confound the statistic. No deadline, for the same
/// reason: every call gets its 3 attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_success_rate_is_one_minus_p_to_the_attempts() {
    let faults = Faults {
        refuse: 0.15,
        reset: 0.15,
        err_transient: 0.10,
        black_hole: 0.10,
        ..Faults::NONE
    };
    let p = faults.total();
    let server = FaultServer::start(Config::new(0x5eed_0004, faults))
        .await
        .unwrap();
    let addr = server.addr();
    let started = Instant::now();
    let done = drive(
        RATE_CALLS,
        100,
        Duration::from_secs(30),
        move |id, trace| async move { independent(addr, id, &trace).await },
    )
    .await;
    let wall = started.elapsed();
    let attempts: usize = done.iter().map(|d| d.attempts.len()).sum();
    let stats = server.settle(attempts as u64).await;

    let n = RATE_CALLS as f64;
    let q = p.powi(RATE_ATTEMPTS);
    let expected = 1.0 - q;
    let sigma = (q * (1.0 - q) / n).sqrt();
    let tolerance = 4.0 * sigma;
    let observed = count(&done, |d| d.result.is_ok()) as f64 / n;

    // The server's own per-connection fault rate, for the record: Binomial too.
    let conns = stats.connections as f64;
    let p_seen = stats.failures_injected() as f64 / conns;
    let p_tolerance = 4.0 * (p * (1.0 - p) / conns).sqrt();
    println!(
        "success rate: {RATE_CALLS} calls, 100 callers, in {wall:?}; p = {p}, max_attempts = {RATE_ATTEMPTS}\n  \
         expected 1 - p^3 = {expected:.4}, observed {observed:.4}, diff {:+.4}, tolerance 4 sigma = {tolerance:.4} (sigma {sigma:.4})\n  \
         per-connection fault rate observed {p_seen:.4} (tolerance {p_tolerance:.4}); attempts/call {:.3} \
         (expected 1 + p + p^2 = {:.3}); histogram {:?}\n  server: {stats}",
        observed - expected,
        attempts as f64 / n,
        1.0 + p + p * p,
        histogram(&done, 3),
    );
    assert!(
        (p_seen - p).abs() <= p_tolerance,
        "injected fault rate {p_seen:.4} vs p = {p} (tolerance {p_tolerance:.4})"
    );
    // figure: success rate = 1 - 0.5^3 = 0.875 within 4 sigma = 0.0242
    assert!(
        (observed - expected).abs() <= tolerance,
        "success rate {observed:.4} vs 1 - p^3 = {expected:.4}: off by more than 4 sigma = {tolerance:.4}"
    );
    assert_eq!(
        stats.connections, attempts as u64,
        "server connections == client attempts"
    );
}
