//! Quickstart: `#[resilient]` against a deliberately flaky TCP service.
//!
//! Run it with `cargo run --example quickstart` (it takes about two seconds).
//!
//! The program starts a tiny key-value server on 127.0.0.1 that fails on a
//! fixed script (hangs up, answers `ERR busy`, or stalls), then calls it
//! through annotated clients to show:
//!
//! 1. transient faults retried with exponential backoff and a per-attempt timeout;
//! 2. a permanent error (`NotFound`) returned at once, without retrying;
//! 3. a call that keeps failing and gives up after `max_attempts`;
//! 4. a plain (blocking) `fn` bounded by a `deadline`, rescued by a `fallback`.
//!
//! Server lines start with `server:`, the `on_retry` hook's lines with
//! `retry:`. Jitter is seeded, so the delays are the same on every run.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steadfast::{Elapsed, resilient};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What can go wrong in one request. `retry_on` below names the transient
/// variants; `NotFound` is permanent, retrying it cannot help.
#[derive(Debug)]
enum ClientError {
    Io(io::Error),
    Busy,
    Timeout(Elapsed),
    NotFound,
}

impl From<io::Error> for ClientError {
    fn from(err: io::Error) -> Self {
        ClientError::Io(err)
    }
}

// Required by `timeout` (and `deadline`): a cancelled attempt fails with
// `ClientError::from(Elapsed)`.
impl From<Elapsed> for ClientError {
    fn from(err: Elapsed) -> Self {
        ClientError::Timeout(err)
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(err) => write!(f, "i/o error: {err}"),
            ClientError::Busy => f.write_str("server busy"),
            ClientError::Timeout(_) => f.write_str("timed out"),
            ClientError::NotFound => f.write_str("key not found"),
        }
    }
}

impl std::error::Error for ClientError {}

/// One attempt: connect, send `GET <key>`, read one reply line. `?` and
/// `return` end this attempt; the attribute decides whether another follows.
#[resilient(
    max_attempts = 4,
    base_delay = "100ms", // exponential: 100 ms, 200 ms, 400 ms, then full jitter
    timeout = "300ms",    // per attempt: a stalled server cannot hang us
    retry_on = [Io, Busy, Timeout],
    on_retry = |event| println!(
        "  retry:  attempt {} failed: {}; sleeping {} ms",
        event.attempt(), event.error(), event.delay().as_millis(),
    ),
)]
async fn get(addr: SocketAddr, key: &str) -> Result<String, ClientError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {key}\n").as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await?;
    parse_reply(&reply)
}

/// The same request from blocking code. A plain `fn` cannot be cancelled, so
/// a socket read timeout bounds each attempt, while `deadline` bounds the
/// whole call (checked between attempts). If the call still fails,
/// `fallback` turns the error into a stale-but-useful answer.
#[resilient(
    max_attempts = 5,
    backoff = "fixed",
    base_delay = "100ms",
    jitter = "none",
    deadline = "750ms",
    retry_on = [Io, Busy],
    on_retry = |event| println!(
        "  retry:  attempt {} failed: {}; sleeping {} ms ({} ms into the call)",
        event.attempt(), event.error(), event.delay().as_millis(), event.elapsed().as_millis(),
    ),
    fallback = |err| {
        println!("  fallback: gave up ({err}); serving the cached value");
        Ok("(cached) hello, world".to_owned())
    },
)]
fn get_blocking(addr: SocketAddr, key: &str) -> Result<String, ClientError> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_millis(300)))?;
    stream.write_all(format!("GET {key}\n").as_bytes())?;
    let mut reply = String::new();
    io::BufReader::new(stream)
        .read_line(&mut reply)
        // An expired read timeout is `WouldBlock` on Unix, `TimedOut` on Windows.
        .map_err(|err| match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, "no reply within 300 ms")
            }
            _ => err,
        })?;
    parse_reply(&reply)
}

fn parse_reply(reply: &str) -> Result<String, ClientError> {
    match reply.trim_end().split_once(' ') {
        Some(("OK", value)) => Ok(value.to_owned()),
        Some(("ERR", "busy")) => Err(ClientError::Busy),
        Some(("ERR", "not_found")) => Err(ClientError::NotFound),
        _ if reply.is_empty() => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection without a reply",
        )
        .into()),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {reply:?}")).into()),
    }
}

/// The fault script: the `n`th request for a key (from 1) decides its fate.
fn fate(key: &str, n: u32) -> &'static str {
    match (key, n) {
        ("greeting", 1) => "hang up",
        ("greeting", 2) | ("hot", _) => "ERR busy",
        ("greeting", 3) | ("slow", _) => "stall",
        ("greeting", _) => "OK hello, world",
        _ => "ERR not_found",
    }
}

async fn serve(listener: TcpListener) {
    let requests: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    while let Ok((stream, _)) = listener.accept().await {
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            let mut stream = BufReader::new(stream);
            let mut line = String::new();
            if stream.read_line(&mut line).await.is_err() {
                return;
            }
            let key = line
                .trim_end()
                .strip_prefix("GET ")
                .unwrap_or_default()
                .to_owned();
            let n = {
                let mut requests = requests.lock().unwrap();
                let n = requests.entry(key.clone()).or_default();
                *n += 1;
                *n
            };
            let fate = fate(&key, n);
            println!("  server: request #{n} for {key:?} -> {fate}");
            match fate {
                // Dropping the stream closes the connection with no reply.
                "hang up" => {}
                // Say nothing until the client gives up and closes its end.
                "stall" => while stream.read_line(&mut line).await.is_ok_and(|read| read > 0) {},
                reply => {
                    let _ = stream.write_all(format!("{reply}\n").as_bytes()).await;
                }
            }
        });
    }
}

fn report(started: Instant, result: &Result<String, ClientError>) {
    let ms = started.elapsed().as_millis();
    match result {
        Ok(value) => println!("  => Ok({value:?}) after {ms} ms\n"),
        Err(err) => println!("  => Err({err}) after {ms} ms\n"),
    }
}

// A current-thread runtime keeps every jittered delay on the thread seeded below.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    steadfast::testing::seed_jitter(7);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener));
    println!("flaky server listening on {addr}\n");

    println!("1. Transient faults (hang-up, busy, stall) are retried with backoff.");
    println!("   Delays grow 100, 200, 400 ms; full jitter picks each in [0, d).");
    let started = Instant::now();
    report(started, &get(addr, "greeting").await);

    println!("2. A permanent error is returned at once: NotFound is not in retry_on.");
    let started = Instant::now();
    report(started, &get(addr, "no-such-key").await);

    println!("3. A server that stays busy: the call gives up after max_attempts = 4.");
    let started = Instant::now();
    report(started, &get(addr, "hot").await);

    println!("4. A blocking fn against a stalled server, with deadline = 750 ms.");
    println!("   A third attempt would start after it, so the fallback answers.");
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || get_blocking(addr, "slow")).await?;
    report(started, &result);
    Ok(())
}
