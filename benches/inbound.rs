//! The inbound layer, `steadfast::tower::RateLimitLayer`, against
//! tower_governor's `GovernorLayer` (the layer axum users reach for: a
//! governor keyed limiter, a `DashMap` of GCRA states), each around the
//! same axum-typed inner service, called in process through
//! `tower::Service::call` (no network), with the same per-key limit and
//! the same key (an `x-tenant` header read into a `String`).
//!
//! - `inbound/admit`: a huge rate, so every call is admitted and the inner
//!   service answers; `inbound/refuse`: an exhausted key, so every call is
//!   answered by the layer. Both layers add their headers (tower_governor
//!   with `use_headers()`: `x-ratelimit-limit`/`-remaining`, and on a
//!   refusal `retry-after`; ours the IETF `RateLimit`/`RateLimit-Policy`,
//!   and `Retry-After`); `tower_governor_no_headers` is its default
//!   configuration, without them. `bare` is the inner service alone, with
//!   the request built the same way.
//! - `inbound/shared`: not criterion. The layer with a `Keyed` of limiters
//!   shared through Redis (a `redis-server` of its own on a free port, or
//!   `REDIS_URL`), each call timed: p50, p99, p99.9, and the share
//!   admitted, at full speed and paced at one call per 100 µs.
//!
//! `cargo bench -p steadfast-benches --bench inbound`

mod common;
#[path = "common/inbound.rs"]
mod parts;

use std::convert::Infallible;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use common::row;
use http::{Request, Response, StatusCode};
use parts::{Handler, Tenant, request, tenant_of};
use steadfast::redis::Redis;
use steadfast::tower::RateLimitLayer;
use steadfast::{Keyed, RateLimiter};
use tower::{Layer, Service};
use tower_governor::governor::GovernorConfigBuilder;

fn unlimited() -> RateLimiter {
    RateLimiter::per_second(u32::MAX).burst(u32::MAX)
}

static ADMITTING: Keyed<String, RateLimiter> = Keyed::new(|_| unlimited());
static REFUSING: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_hour(1));

/// One call of a ready service with a fresh request; the response is
/// checked, so that no contender is measured doing something else.
#[inline(always)]
fn call<S>(service: &mut S, status: StatusCode)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let response = common::ready(service.call(black_box(request()))).unwrap();
    debug_assert_eq!(response.status(), status);
    black_box(response);
}

macro_rules! governor {
    ($builder:expr) => {{
        let config = $builder.key_extractor(Tenant).finish().expect("a config");
        tower_governor::GovernorLayer::new(config).layer(Handler)
    }};
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion();

    for (group, status) in [
        ("inbound/admit", StatusCode::OK),
        ("inbound/refuse", StatusCode::TOO_MANY_REQUESTS),
    ] {
        let admit = status == StatusCode::OK;
        let keyed = if admit { &ADMITTING } else { &REFUSING };
        let mut ours = RateLimitLayer::new(keyed, tenant_of).layer(Handler);
        // One nanosecond a token with a burst of u32::MAX, or one an hour.
        let (period, burst) = if admit {
            (Duration::from_nanos(1), u32::MAX)
        } else {
            (Duration::from_secs(3600), 1)
        };
        let mut governor = governor!(
            GovernorConfigBuilder::default()
                .period(period)
                .burst_size(burst)
                .use_headers()
        );
        let mut governor_plain = governor!(
            GovernorConfigBuilder::default()
                .period(period)
                .burst_size(burst)
        );
        if !admit {
            // Spend the one token, so that every measured call is refused.
            let _ = common::ready(ours.call(request()));
            let _ = common::ready(governor.call(request()));
            let _ = common::ready(governor_plain.call(request()));
        }
        let mut g = c.benchmark_group(group);
        g.bench_function("bare", |b| b.iter(|| call(&mut Handler, StatusCode::OK)));
        g.bench_function("steadfast", |b| b.iter(|| call(&mut ours, status)));
        g.bench_function("tower_governor", |b| b.iter(|| call(&mut governor, status)));
        g.bench_function("tower_governor_no_headers", |b| {
            b.iter(|| call(&mut governor_plain, status))
        });
        g.finish();

        let group = format!("{group}_2_threads");
        let mut g = c.benchmark_group(&group);
        g.bench_function("steadfast", |b| {
            b.iter_custom(|iters| {
                common::contended_with(2, iters, || ours.clone(), |s| call(s, status))
            })
        });
        g.bench_function("tower_governor", |b| {
            b.iter_custom(|iters| {
                common::contended_with(2, iters, || governor.clone(), |s| call(s, status))
            })
        });
        g.finish();
    }

    c.final_summary();
    let rows = [
        row("bare"),
        row("steadfast"),
        row("tower_governor"),
        row("tower_governor_no_headers"),
    ];
    for group in [
        "inbound/admit",
        "inbound/admit_2_threads",
        "inbound/refuse",
        "inbound/refuse_2_threads",
    ] {
        common::print_table(group, "tower_governor", &rows, since);
    }

    shared();
}

// ------------------------------------------------------ shared by Redis

/// Calls timed per contender and pace.
const CALLS: usize = 20_000;

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

/// `REDIS_URL`, or a server started on a free port; `None` if neither.
fn server() -> Option<(&'static str, Server)> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Some((Box::leak(url.into_boxed_str()), Server(None)));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(Some(child));
    let start = Instant::now();
    while !pong(port) {
        if start.elapsed() > Duration::from_secs(5) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let url = Box::leak(format!("redis://127.0.0.1:{port}").into_boxed_str());
    Some((url, server))
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

static URL: OnceLock<&'static str> = OnceLock::new();
/// A longer timeout than the default 50 ms: on a loaded 2-core machine a
/// round trip can take that long, and a decision taken without Redis
/// (counted in the `degraded` column) would not be the shared one.
static REDIS: LazyLock<Redis> =
    LazyLock::new(|| Redis::new(URL.get().expect("set first")).timeout(Duration::from_millis(250)));

fn shared_as(limit: RateLimiter, tenant: &str) -> RateLimiter {
    let run = std::process::id();
    limit.shared_as(&REDIS, format!("bench-inbound:{run}:{tenant}"))
}

static LOCAL: Keyed<String, RateLimiter> = Keyed::new(|_| unlimited());
static LEASED: Keyed<String, RateLimiter> = Keyed::new(|tenant| shared_as(unlimited(), tenant));
static PER_CALL: Keyed<String, RateLimiter> =
    Keyed::new(|tenant| shared_as(unlimited().lease(1), tenant));

/// Times `CALLS` calls, one every `pace` (zero: back to back): the sorted
/// times, how many were admitted, and how many decisions were taken
/// without Redis.
fn timed(
    keyed: &'static Keyed<String, RateLimiter>,
    pace: Duration,
) -> (Vec<Duration>, usize, u64) {
    let mut service = RateLimitLayer::new(keyed, tenant_of).layer(Handler);
    // The first call of a new key waits for Redis's first answer.
    for _ in 0..100 {
        let _ = common::ready(service.call(request()));
        std::thread::sleep(Duration::from_micros(200));
    }
    let degraded = || keyed.get("tenant-42").degraded_decisions();
    let degraded_before = degraded();
    let mut admitted = 0;
    let mut next = Instant::now();
    let mut times: Vec<Duration> = (0..CALLS)
        .map(|_| {
            while Instant::now() < next {
                std::hint::spin_loop();
            }
            next += pace;
            let start = Instant::now();
            let response = common::ready(service.call(request())).unwrap();
            let took = start.elapsed();
            admitted += usize::from(response.status() == StatusCode::OK);
            took
        })
        .collect();
    times.sort();
    (times, admitted, degraded() - degraded_before)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn shared() {
    let Some((url, _server)) = server() else {
        println!("\ninbound/shared: skipped (no REDIS_URL, and no redis-server to start)");
        return;
    };
    URL.set(url).expect("once");
    println!("\n### inbound/shared ({CALLS} calls each, one key, Redis on loopback)\n");
    println!("| limiters | pace | p50 | p99 | p99.9 | admitted | decided without Redis |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (pace, label) in [
        (Duration::ZERO, "back to back"),
        (Duration::from_micros(100), "one per 100 µs"),
    ] {
        for (keyed, id) in [
            (&LOCAL, "local `Keyed`"),
            (&LEASED, "shared, default lease (16)"),
            (&PER_CALL, "shared, `lease(1)`"),
        ] {
            let (times, admitted, degraded) = timed(keyed, pace);
            println!(
                "| {id} | {label} | {:.2?} | {:.2?} | {:.2?} | {:.1}% | {degraded} |",
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                percentile(&times, 0.999),
                100.0 * admitted as f64 / CALLS as f64
            );
        }
    }
    if let Some(error) = REDIS.last_error() {
        println!("\nlast Redis error: {error}");
    }
}
