//! A rate limiter shared through Redis: decision latency, round trips per
//! admitted call, and global accuracy, against the common design in other
//! ecosystems (one Lua GCRA script per call: our own limiter with
//! `lease(1)`, the same script and connection, so only the leasing
//! differs), on loopback.
//!
//! `cargo bench -p steadfast-benches --bench redis` starts its own
//! `redis-server` on a free port (or uses `REDIS_URL` when set) and runs in
//! about 15 s: a fixed number of decisions, then the accuracy run (4
//! processes for 10 s), so it fits in CI. Not criterion: what matters is the tail of each decision, so each
//! one is timed and the percentiles printed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use steadfast::RateLimiter;
use steadfast::redis::Redis;

/// Decisions timed per contender.
const DECISIONS: usize = 20_000;
/// Replicas in the accuracy run, and how long it lasts.
const REPLICAS: usize = 4;
const ACCURACY_RUN: Duration = Duration::from_secs(10);
/// The accuracy run's global limit.
const RATE: u32 = 200;
const BURST: u32 = 40;

/// A `redis-server` of the bench's own, killed on drop.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `REDIS_URL`, or a server started on a free port.
fn server() -> (&'static str, Server) {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return (Box::leak(url.into_boxed_str()), Server(None));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (apt-get install redis-server)");
    let url: &'static str = Box::leak(format!("redis://127.0.0.1:{port}").into_boxed_str());
    // Ready when it answers PING (a limiter would not tell: its fallback
    // admits while Redis is down).
    let start = Instant::now();
    while !pong(port) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (url, Server(Some(child)))
}

fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// Times `DECISIONS` blocking acquisitions on an unlimited shared limiter.
fn latencies(limiter: &RateLimiter) -> (Vec<Duration>, u64) {
    for _ in 0..100 {
        limiter.acquire_blocking();
    }
    let before = limiter.redis_round_trips();
    let mut times: Vec<Duration> = (0..DECISIONS)
        .map(|_| {
            let start = Instant::now();
            limiter.acquire_blocking();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times, limiter.redis_round_trips() - before)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Set in a replica process: the URL and the key, space-separated.
const REPLICA_ROLE: &str = "STEADFAST_BENCH_REDIS_REPLICA";

/// A replica of the accuracy run: takes tokens for `ACCURACY_RUN` and
/// prints how many it was given.
fn replica(role: &str) {
    let (url, key) = role.split_once(' ').expect("URL and key");
    let redis = leak(Redis::new(Box::leak(url.to_owned().into_boxed_str())));
    let key: &'static str = Box::leak(key.to_owned().into_boxed_str());
    let limiter = RateLimiter::per_second(RATE)
        .burst(BURST)
        .shared(redis, key);
    let start = Instant::now();
    let mut admitted = 0u64;
    while start.elapsed() < ACCURACY_RUN {
        if limiter
            .acquire_blocking_timeout(Duration::from_millis(50))
            .is_ok()
        {
            admitted += 1;
        }
    }
    println!("{admitted}");
}

fn main() {
    if let Ok(role) = std::env::var(REPLICA_ROLE) {
        return replica(&role);
    }
    let (url, _server) = server();
    let redis = leak(Redis::new(url));

    // ------------------------------------------------ latency, round trips
    let unlimited = || RateLimiter::per_second(u32::MAX).burst(u32::MAX);
    let leased = leak(unlimited().shared(redis, "bench-leased"));
    let per_call = leak(unlimited().shared(redis, "bench-per-call").lease(1));
    let (per_call_times, per_call_trips) = latencies(per_call);
    let (leased_times, leased_trips) = latencies(leased);
    for (id, limiter) in [("per_call", per_call), ("leased", leased)] {
        assert_eq!(
            limiter.degraded_decisions(),
            0,
            "{id}: Redis was not used ({:?})",
            redis.last_error()
        );
    }

    println!("\n### redis/decision ({DECISIONS} blocking acquisitions, loopback)\n");
    println!("| contender | p50 | p99 | p99.9 | round trips per admitted call | p50 vs per-call |");
    println!("|---|---:|---:|---:|---:|---:|");
    let base = percentile(&per_call_times, 0.5).as_secs_f64();
    for (id, times, trips) in [
        (
            "`per_call_lua` (lease 1: one GCRA script per call)",
            &per_call_times,
            per_call_trips,
        ),
        (
            "`steadfast` (default lease: 16 here)",
            &leased_times,
            leased_trips,
        ),
    ] {
        let p50 = percentile(times, 0.5);
        println!(
            "| {id} | {:.1?} | {:.1?} | {:.1?} | {:.3} | {:.4}x |",
            p50,
            percentile(times, 0.99),
            percentile(times, 0.999),
            trips as f64 / DECISIONS as f64,
            p50.as_secs_f64() / base,
        );
    }

    // ----------------------------------------------------- global accuracy
    // REPLICAS processes (this binary again, in the replica role), each with
    // its own limiter, taking as fast as they can for ACCURACY_RUN; the
    // limit's key is fresh for each run, so an earlier run on the same
    // server does not count.
    let key = format!("bench-accuracy-{}", std::process::id());
    let start = Instant::now();
    let children: Vec<_> = (0..REPLICAS)
        .map(|_| {
            Command::new(std::env::current_exe().expect("this binary"))
                .env(REPLICA_ROLE, format!("{url} {key}"))
                .stdout(Stdio::piped())
                .spawn()
                .expect("a replica process")
        })
        .collect();
    let admitted: u64 = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("the replica ends");
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse::<u64>()
                .expect("the replica prints its count")
        })
        .sum();
    let elapsed = start.elapsed().as_secs_f64();
    let allowed = f64::from(BURST) + f64::from(RATE) * elapsed;
    println!(
        "\n### redis/accuracy ({REPLICAS} processes, {RATE}/s burst {BURST}, {elapsed:.1} s)\n"
    );
    println!(
        "| admitted | allowed (burst + rate × time) | admitted / allowed | {REPLICAS} local limiters would admit |"
    );
    println!("|---:|---:|---:|---:|");
    println!(
        "| {admitted} | {allowed:.0} | {:.3} | {:.0} |",
        admitted as f64 / allowed,
        allowed * REPLICAS as f64
    );
}
