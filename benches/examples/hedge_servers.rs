//! Issue 19's real run: two servers on 127.0.0.1, each of which stalls
//! 250 ms on every 100th request it receives, called through the attribute,
//! `Policy::retry` and the tower layer, with and without `hedge`, on the
//! real clock.
//!
//! ```sh
//! cargo run --release -p steadfast-benches --example hedge_servers
//! ```
//!
//! A request is one line over a fresh TCP connection, answered with one
//! line; an attempt goes to the server its number picks, so a hedge goes to
//! the other one than the attempt it hedges (as `Attempt::number` is meant
//! for). `CALLS` calls start at a fixed rate, `PER_MS` every millisecond,
//! each in a task of its own, whether or not the earlier ones answered (an
//! open loop: a service's callers do not wait for each other). Each call's
//! first attempt alternates between the servers; each contender gets fresh
//! servers. Extra load is what the servers received per call, less one.
//! Latencies are the caller's, from the call to its answer; the machine's
//! other load shows in them, so compare the rows of one run.
//!
//! Why not a closed loop (N callers, each calling again as soon as it is
//! answered): there, a contender that cuts the stalls makes its callers
//! call faster, the machine's cores fill, and the median measures the
//! queue the contender's speed built (16 callers on 2 cores: 0.44 ms
//! hedged against 0.06 ms unhedged, whose callers spend most of the run
//! waiting out stalls), not the contender.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use steadfast::tower::{BoxError, Cloned, ResilientLayer};
use steadfast::{Attempt, Hedge, Policy, resilient};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, Service, ServiceExt};

const CALLS: usize = 20_000;
/// Calls started every millisecond: 5,000 a second.
const PER_MS: usize = 5;
/// Each server stalls on every `STALL_EVERY`th request.
const STALL_EVERY: u64 = 100;
const STALL: Duration = Duration::from_millis(250);

/// A server answering each request line with `ok`, stalling on every
/// `STALL_EVERY`th; it counts what it received.
async fn serve(received: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let received = received.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let n = received.fetch_add(1, Ordering::Relaxed) + 1;
                if n % STALL_EVERY == 0 {
                    tokio::time::sleep(STALL).await;
                }
                // The caller may have dropped the attempt: nothing to do.
                let _ = write.write_all(b"ok\n").await;
            });
        }
    });
    addr
}

/// One request to `server`.
async fn request(server: SocketAddr) -> io::Result<()> {
    let stream = TcpStream::connect(server).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    write.write_all(b"get\n").await?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    if line == "ok\n" {
        Ok(())
    } else {
        Err(io::Error::other(format!("unexpected answer {line:?}")))
    }
}

/// The server attempt `number` of a call whose first attempt goes to
/// `first` is sent to.
fn pick(servers: &[SocketAddr; 2], first: usize, number: u32) -> SocketAddr {
    servers[(first + number as usize - 1) % 2]
}

#[resilient(attempt = attempt)]
async fn unhedged(servers: &[SocketAddr; 2], first: usize) -> io::Result<()> {
    request(pick(servers, first, attempt.number())).await
}

#[resilient(hedge(after = "p95", max_extra_load = 0.05), attempt = attempt)]
async fn hedged(servers: &[SocketAddr; 2], first: usize) -> io::Result<()> {
    request(pick(servers, first, attempt.number())).await
}

/// A hedge that is never due: what the round costs a call by itself.
#[resilient(hedge(after = "1ms", max_extra_load = 0.05), attempt = attempt)]
async fn hedged_after_1ms(servers: &[SocketAddr; 2], first: usize) -> io::Result<()> {
    request(pick(servers, first, attempt.number())).await
}

#[resilient(hedge(after = "10s"), attempt = attempt)]
async fn never_due(servers: &[SocketAddr; 2], first: usize) -> io::Result<()> {
    request(pick(servers, first, attempt.number())).await
}

static POLICY: Policy<io::Error> =
    Policy::new().hedge(Hedge::after_quantile(0.95).max_extra_load(0.05));

static LAYER: Policy<BoxError> =
    Policy::new().hedge(Hedge::after_quantile(0.95).max_extra_load(0.05));

/// The tower layer's request: the servers, the call's first one, and the
/// attempt's number, which `on_attempt` sets so that a hedge goes to the
/// other server.
#[derive(Clone)]
struct Line {
    servers: Arc<[SocketAddr; 2]>,
    first: usize,
    number: u32,
}

/// Which function a contender calls.
#[derive(Clone, Copy)]
enum Door {
    Unhedged,
    Hedged,
    HedgedAfter1ms,
    NeverDue,
    Policy(&'static Policy<io::Error>),
    Layer,
}

/// Runs `CALLS` calls through `door` against two fresh servers, started
/// at a fixed rate (`PER_MS` every millisecond, whether or not the earlier
/// ones answered: an open loop, as a service's callers arrive): each
/// call's latency, and the requests the servers received.
async fn run(door: Door) -> (Vec<Duration>, u64) {
    let received = Arc::new(AtomicU64::new(0));
    let servers = Arc::new([serve(received.clone()).await, serve(received.clone()).await]);
    let layer = ResilientLayer::new(&LAYER)
        .classify(Cloned)
        .on_attempt(|line: &mut Line, attempt: &Attempt| line.number = attempt.number())
        .layer(tower::service_fn(|line: Line| async move {
            request(pick(&line.servers, line.first, line.number)).await
        }));
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    let mut calls = Vec::with_capacity(CALLS);
    for call in 0..CALLS {
        if call % PER_MS == 0 {
            ticks.tick().await;
        }
        let (servers, mut layer) = (servers.clone(), layer.clone());
        let first = call % 2;
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = match door {
                Door::Unhedged => unhedged(&servers, first).await,
                Door::Hedged => hedged(&servers, first).await,
                Door::HedgedAfter1ms => hedged_after_1ms(&servers, first).await,
                Door::NeverDue => never_due(&servers, first).await,
                Door::Policy(policy) => {
                    let servers = &*servers;
                    policy
                        .retry(|attempt| request(pick(servers, first, attempt.number())))
                        .await
                }
                Door::Layer => {
                    let line = Line {
                        servers: servers.clone(),
                        first,
                        number: 1,
                    };
                    match layer.ready().await {
                        Ok(layer) => layer.call(line).await,
                        Err(error) => Err(error),
                    }
                    .map_err(io::Error::other)
                }
            };
            result.expect("the servers answer");
            started.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(CALLS);
    for call in calls {
        latencies.push(call.await.unwrap());
    }
    latencies.sort_unstable();
    (latencies, received.load(Ordering::Relaxed))
}

fn quantile(latencies: &[Duration], q: f64) -> f64 {
    let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    println!(
        "{CALLS} calls, {PER_MS} started every millisecond; two servers on 127.0.0.1, each stalling {} ms on every {STALL_EVERY}th request\n",
        STALL.as_millis()
    );
    println!("| door | p50 | p90 | p99 | p99.9 | max | extra load |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, door) in [
        ("attribute, no hedge", Door::Unhedged),
        (
            "attribute, `hedge(after = \"p95\", max_extra_load = 0.05)`",
            Door::Hedged,
        ),
        (
            "attribute, `hedge(after = \"1ms\", max_extra_load = 0.05)`",
            Door::HedgedAfter1ms,
        ),
        (
            "attribute, `hedge(after = \"10s\")`: the round alone",
            Door::NeverDue,
        ),
        (
            "`Policy::retry`, `Hedge::after_quantile(0.95)`",
            Door::Policy(&POLICY),
        ),
        (
            "tower layer (`Cloned`), `Hedge::after_quantile(0.95)`",
            Door::Layer,
        ),
    ] {
        let (latencies, received) = run(door).await;
        let extra = received as f64 / latencies.len() as f64 - 1.0;
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} ms | {:.2}% |",
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.9),
            quantile(&latencies, 0.99),
            quantile(&latencies, 0.999),
            quantile(&latencies, 1.0),
            extra * 100.0,
        );
    }
}
