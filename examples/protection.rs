//! Protection against a struggling dependency: a circuit breaker that opens
//! while an in-process service is down and closes once it is back, plus a
//! bulkhead and a rate limit shared by two functions.
//!
//! ```sh
//! cargo run --example protection
//! ```
//!
//! Runs in about three seconds and prints every breaker transition.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use steadfast::{
    Bulkhead, CircuitBreaker, CircuitOpen, CircuitState, RateLimiter, Rejected, resilient,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep};

/// Whether the in-process service answers; flipped by `main` to simulate an outage.
static SERVICE_UP: AtomicBool = AtomicBool::new(true);
/// Requests that reached the service: an open breaker keeps this flat.
static REQUESTS_SEEN: AtomicU32 = AtomicU32::new(0);

/// The breaker is a `static` so the hook is a plain `fn` and every caller shares it.
static BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(3)
    .open_for(Duration::from_millis(800))
    .on_state_change(print_transition);

/// Two functions share one bulkhead and one rate limit: together they never
/// have more than 4 requests in flight, nor send more than 50 a second.
static POOL: Bulkhead = Bulkhead::new(4);
static RATE: RateLimiter = RateLimiter::per_second(50).burst(10);

fn print_transition(from: CircuitState, to: CircuitState) {
    println!("    breaker: {from:?} -> {to:?}");
}

#[derive(Debug)]
enum CallError {
    Io(std::io::Error),
    Open(CircuitOpen),
    Overloaded(Rejected),
}

impl From<std::io::Error> for CallError {
    fn from(err: std::io::Error) -> Self {
        CallError::Io(err)
    }
}

impl From<CircuitOpen> for CallError {
    fn from(open: CircuitOpen) -> Self {
        CallError::Open(open)
    }
}

impl From<Rejected> for CallError {
    fn from(rejected: Rejected) -> Self {
        CallError::Overloaded(rejected)
    }
}

/// One request over TCP. Retries stay short (`max_attempts = 2`): while the
/// dependency is down the breaker, not the retry loop, should absorb the load.
#[resilient(max_attempts = 2, base_delay = "20ms", circuit_breaker = &BREAKER,
            concurrency = &POOL, rate_limit = &RATE, max_wait = "200ms")]
async fn get_price(addr: std::net::SocketAddr, item: &str) -> Result<String, CallError> {
    request(addr, &format!("price {item}")).await
}

/// Another endpoint of the same dependency: it shares the breaker, the
/// permits and the tokens.
#[resilient(max_attempts = 2, base_delay = "20ms", circuit_breaker = &BREAKER,
            concurrency = &POOL, rate_limit = &RATE, max_wait = "200ms")]
async fn get_stock(addr: std::net::SocketAddr, item: &str) -> Result<String, CallError> {
    request(addr, &format!("stock {item}")).await
}

async fn request(addr: std::net::SocketAddr, line: &str) -> Result<String, CallError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await?;
    if reply.is_empty() {
        return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
    }
    Ok(reply.trim().to_owned())
}

/// Answers `<what> <item>` with `<what>-of-<item>`, or hangs up at once while "down".
async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            REQUESTS_SEEN.fetch_add(1, Ordering::Relaxed);
            if !SERVICE_UP.load(Ordering::Relaxed) {
                return; // dropping the stream resets the connection
            }
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(read).read_line(&mut line).await.is_ok() {
                let reply = line.trim().replacen(' ', "-of-", 1);
                let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
            }
        });
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener));
    let start = Instant::now();

    for round in 0..14 {
        let phase = match round {
            0..=2 => "up",
            3..=8 => "down",
            _ => "back up",
        };
        SERVICE_UP.store(phase != "down", Ordering::Relaxed);
        let (price, stock) = tokio::join!(get_price(addr, "tea"), get_stock(addr, "tea"));
        println!(
            "{:>5} ms  service {phase:<8} breaker {:<9} price: {:<30} stock: {:<30} (requests seen: {})",
            start.elapsed().as_millis(),
            format!("{:?}", BREAKER.state()),
            summary(&price),
            summary(&stock),
            REQUESTS_SEEN.load(Ordering::Relaxed),
        );
        sleep(Duration::from_millis(200)).await;
    }
    println!(
        "\nWhile the breaker was open, calls failed in microseconds with `CircuitOpen` and the \
         service saw no requests; one probe after `open_for` closed it again."
    );
    Ok(())
}

fn summary(result: &Result<String, CallError>) -> String {
    match result {
        Ok(value) => value.clone(),
        Err(CallError::Io(err)) => format!("io error ({})", err.kind()),
        Err(CallError::Open(_)) => "rejected: circuit open".to_owned(),
        Err(CallError::Overloaded(_)) => "rejected: overloaded".to_owned(),
    }
}
