//! Metastable failure, and why steadfast's defaults are what they are.
//!
//! ```sh
//! cargo run -p steadfast-benches --example metastability
//! ```
//!
//! An open-loop, discrete-event simulation (about a second of real time) of
//! a server with one FIFO queue, driven by clients that time out and retry.
//! The client side runs the real steadfast primitives, not a model of them:
//! [`RetryBudget::deposit`]/[`withdraw`](RetryBudget::withdraw) per call and
//! per retry, [`CircuitBreaker::try_acquire`] per attempt with
//! `permit.success()`/`permit.failure()` for its outcome, and [`Backoff`]
//! (the attribute's default: exponential from 100 ms, full jitter) for the
//! delay before each retry, in the order a `#[resilient]` expansion uses
//! them. Their clock is tokio's paused clock, advanced from one event to the
//! next, so the budget's window and the breaker's `open_for` see simulated
//! time.
//!
//! The scenario:
//!
//! - the server serves one request at a time in arrival order: 1 ms each,
//!   so its capacity is 1000 requests/s. It never learns that a client gave
//!   up: a request whose client timed out is still served (wasted work);
//! - clients arrive as a Poisson process at 700 calls/s (70% load), each
//!   with a 1 s timeout per attempt and up to 3 attempts (the default);
//! - the trigger: from 20 s to 25 s the server slows to 4 ms a request
//!   (250/s; say a noisy neighbour or a GC storm), then is healthy again.
//!
//! During the trigger the queue grows past 1000 requests, i.e. past 1 s of
//! work, so every attempt times out. What happens *after* the trigger
//! depends only on the clients:
//!
//! - **no budget**: every call now makes 3 attempts, ~2100 requests/s
//!   against a capacity of 1000. The queue grows by ~1000 a second, every
//!   request in it is stale by the time it is served, and goodput stays at
//!   zero for as long as the run lasts, although the server has been
//!   healthy since 25 s: a metastable failure, sustained by the retries
//!   alone;
//! - **default budget** (`RetryBudget::new()`: retries up to 20% of calls
//!   plus 10/s): once its window is warm the load is at most
//!   700 × 1.2 + 10 = 850 requests/s, below capacity, so the queue drains
//!   by at least 150 a second and goodput comes back, about 30 s after the
//!   trigger. This is the point of the `ratio` default: at 0.2 a failing
//!   dependency gets at most ~1.2x its load, which a service running below
//!   ~80% can absorb; without a budget it gets `max_attempts`x, which none
//!   can. (During the trigger itself the budget lets almost as many retries
//!   through as no budget: its very first `withdraw` counts every call made
//!   since it was created as fresh, here 20 s × 700 × 0.2 = 2800 retries.
//!   With a budget that had withdrawn once before, recovery comes ~15 s
//!   earlier.)
//! - **budget + breaker** (`CircuitBreaker::new()`, 5 consecutive failures,
//!   with `open_for` shortened to 2 s): the breaker opens on the first
//!   timeouts and calls fail fast without reaching the server, so the queue
//!   drains at full capacity; a half-open probe then finds a short queue
//!   and closes it. Goodput is back in the first bucket after the trigger.
//!   (With the default 30 s `open_for` it stays open, and goodput at zero,
//!   until ~50 s: pick `open_for` near the time the dependency needs to
//!   drain, a few timeouts, which is why the breaker is opt-in and
//!   configurable rather than on by default.)
//!
//! The first table shows goodput (calls answered within their timeout, per
//! second) in 5 s buckets for the three configurations; the second shows
//! what reached the server (requests/s) and the queue at the end of each
//! bucket. The run is deterministic (seeded arrivals and jitter).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};
use steadfast::{Backoff, BreakerPermit, CircuitBreaker, RetryBudget, testing};

/// Offered load, calls per second (Poisson arrivals).
const ARRIVALS_PER_SECOND: f64 = 700.0;
/// Service time per request while healthy: capacity 1000/s.
const SERVICE: Duration = Duration::from_millis(1);
/// Service time during the trigger: capacity 250/s.
const SERVICE_DEGRADED: Duration = Duration::from_millis(4);
const TRIGGER: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(25));
/// Per-attempt client timeout.
const TIMEOUT: Duration = Duration::from_secs(1);
const MAX_ATTEMPTS: u32 = 3;
const RUN: Duration = Duration::from_secs(80);
const BUCKET: Duration = Duration::from_secs(5);
const BUCKETS: usize = (RUN.as_secs() / BUCKET.as_secs()) as usize;
const SEED: u64 = 7;

/// A client configuration.
struct Clients {
    name: &'static str,
    budget: Option<RetryBudget>,
    breaker: Option<CircuitBreaker>,
}

/// What happened in one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    goodput: u64,
    sent: u64,
    rejected: u64,
    queue_at_end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Arrival,
    /// Start attempt `n` of a call (the first, or a retry after its backoff).
    Send {
        call: u32,
    },
    /// The client's timeout for an attempt.
    Timeout {
        attempt: u32,
    },
    /// The server finished the request it was serving.
    Served,
}

#[derive(Debug, PartialEq, Eq)]
enum Status {
    Waiting,
    Answered,
    TimedOut,
}

struct Attempt<'a> {
    call: u32,
    status: Status,
    permit: Option<BreakerPermit<'a>>,
}

struct Call {
    attempts: u32,
    backoff: Backoff,
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

fn bucket_of(t: u64) -> Option<usize> {
    let b = (t / nanos(BUCKET)) as usize;
    (b < BUCKETS).then_some(b)
}

/// Runs the scenario for one client configuration on tokio's paused clock.
async fn simulate(clients: &Clients) -> Vec<Bucket> {
    // The same arrivals and the same jitter for every configuration.
    let mut rng = SmallRng::seed_from_u64(SEED);
    testing::seed_jitter(SEED);
    let interarrival = Exp::new(ARRIVALS_PER_SECOND).unwrap();
    let start = tokio::time::Instant::now();

    let mut events = BinaryHeap::new();
    let mut seq = 0u64;
    let mut schedule = |events: &mut BinaryHeap<_>, at: u64, kind: Kind| {
        seq += 1;
        events.push(Reverse((at, seq, kind)));
    };
    let mut buckets = vec![Bucket::default(); BUCKETS];
    let mut calls: Vec<Call> = Vec::new();
    let mut attempts: Vec<Attempt<'_>> = Vec::new();
    let mut queue: VecDeque<u32> = VecDeque::new();
    let mut serving: Option<u32> = None;
    let mut clock = 0u64;
    let mut next_bucket_end = nanos(BUCKET);

    schedule(&mut events, 0, Kind::Arrival);
    while let Some(Reverse((at, _, kind))) = events.pop() {
        if at >= nanos(RUN) {
            break;
        }
        while at >= next_bucket_end {
            buckets[(next_bucket_end / nanos(BUCKET)) as usize - 1].queue_at_end = queue.len();
            next_bucket_end += nanos(BUCKET);
        }
        if at > clock {
            // The primitives read tokio's clock: move it to this event.
            tokio::time::advance(Duration::from_nanos(at - clock)).await;
            clock = at;
        }
        debug_assert_eq!(nanos(start.elapsed()), clock);
        let bucket = bucket_of(at).unwrap();

        match kind {
            Kind::Arrival => {
                let gap = interarrival.sample(&mut rng);
                schedule(&mut events, at + (gap * 1e9) as u64, Kind::Arrival);
                // Each call deposits once, as the expansion does.
                if let Some(budget) = &clients.budget {
                    budget.deposit();
                }
                let call = calls.len() as u32;
                calls.push(Call {
                    attempts: 0,
                    backoff: Backoff::new(),
                });
                schedule(&mut events, at, Kind::Send { call });
            }
            Kind::Send { call } => {
                let permit = match &clients.breaker {
                    Some(breaker) => match breaker.try_acquire() {
                        Ok(permit) => Some(permit),
                        // An open breaker ends the call at once (not retried).
                        Err(_) => {
                            buckets[bucket].rejected += 1;
                            continue;
                        }
                    },
                    None => None,
                };
                calls[call as usize].attempts += 1;
                let attempt = attempts.len() as u32;
                attempts.push(Attempt {
                    call,
                    status: Status::Waiting,
                    permit,
                });
                buckets[bucket].sent += 1;
                schedule(&mut events, at + nanos(TIMEOUT), Kind::Timeout { attempt });
                queue.push_back(attempt);
                if serving.is_none() {
                    serving = queue.pop_front();
                    schedule(&mut events, at + service_time(at), Kind::Served);
                }
            }
            Kind::Served => {
                let done = serving.take().expect("serving a request");
                let attempt = &mut attempts[done as usize];
                if attempt.status == Status::Waiting {
                    attempt.status = Status::Answered;
                    if let Some(permit) = attempt.permit.take() {
                        permit.success();
                    }
                    buckets[bucket].goodput += 1;
                }
                // else: its client gave up long ago; the work is wasted.
                if let Some(next) = queue.pop_front() {
                    serving = Some(next);
                    schedule(&mut events, at + service_time(at), Kind::Served);
                }
            }
            Kind::Timeout { attempt } => {
                let attempt = &mut attempts[attempt as usize];
                if attempt.status != Status::Waiting {
                    continue;
                }
                attempt.status = Status::TimedOut;
                if let Some(permit) = attempt.permit.take() {
                    permit.failure();
                }
                let call = &mut calls[attempt.call as usize];
                // The expansion's order: attempts left, then the budget, then
                // the backoff sleep; the breaker is asked when the retry starts.
                let retry = call.attempts < MAX_ATTEMPTS
                    && clients.budget.as_ref().is_none_or(RetryBudget::withdraw);
                if retry {
                    let delay = call.backoff.next().expect("a backoff never ends");
                    schedule(
                        &mut events,
                        at + nanos(delay),
                        Kind::Send { call: attempt.call },
                    );
                }
            }
        }
    }
    for bucket in &mut buckets[(next_bucket_end / nanos(BUCKET)) as usize - 1..] {
        bucket.queue_at_end = queue.len();
    }
    buckets
}

fn service_time(at: u64) -> u64 {
    if (nanos(TRIGGER.0)..nanos(TRIGGER.1)).contains(&at) {
        nanos(SERVICE_DEGRADED)
    } else {
        nanos(SERVICE)
    }
}

fn main() {
    let configurations = [
        Clients {
            name: "no budget",
            budget: None,
            breaker: None,
        },
        Clients {
            name: "default budget",
            budget: Some(RetryBudget::new()),
            breaker: None,
        },
        Clients {
            name: "budget + breaker",
            // 5 consecutive failures (the default); open 2 s instead of 30 s.
            budget: Some(RetryBudget::new()),
            breaker: Some(CircuitBreaker::new().open_for(Duration::from_secs(2))),
        },
    ];

    let started = std::time::Instant::now();
    let results: Vec<Vec<Bucket>> = configurations
        .iter()
        .map(|clients| {
            // A fresh paused clock per configuration.
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a tokio runtime")
                .block_on(simulate(clients))
        })
        .collect();

    println!(
        "Open-loop load {ARRIVALS_PER_SECOND} calls/s on a FIFO server of capacity {}/s \
         ({:.0}% load);\ncapacity drops to {}/s from {} s to {} s (the trigger, marked *).\n\
         Clients: {} s timeout, {MAX_ATTEMPTS} attempts, exponential backoff from 100 ms with full jitter.\n",
        1_000_000_000 / nanos(SERVICE),
        ARRIVALS_PER_SECOND / (1e9 / nanos(SERVICE) as f64) * 100.0,
        1_000_000_000 / nanos(SERVICE_DEGRADED),
        TRIGGER.0.as_secs(),
        TRIGGER.1.as_secs(),
        TIMEOUT.as_secs(),
    );

    let per_second = |n: u64| n as f64 / BUCKET.as_secs_f64();
    let label = |b: usize| {
        let (from, to) = (
            b as u64 * BUCKET.as_secs(),
            (b as u64 + 1) * BUCKET.as_secs(),
        );
        let trigger = from < TRIGGER.1.as_secs() && to > TRIGGER.0.as_secs();
        format!("{from:>3}-{to:<3}s{}", if trigger { "*" } else { " " })
    };

    println!("Goodput: calls answered within their timeout, per second");
    print!("{:<9}", "time");
    for clients in &configurations {
        print!(" | {:>16}", clients.name);
    }
    println!();
    println!("{}", "-".repeat(9 + configurations.len() * 19));
    for b in 0..BUCKETS {
        print!("{:<9}", label(b));
        for result in &results {
            print!(" | {:>16.0}", per_second(result[b].goodput));
        }
        println!();
    }

    println!(
        "\nLoad on the server (requests/s reaching it) / queue length at the end of the bucket"
    );
    print!("{:<9}", "time");
    for clients in &configurations {
        print!(" | {:>22}", clients.name);
    }
    println!();
    println!("{}", "-".repeat(9 + configurations.len() * 25));
    for b in 0..BUCKETS {
        print!("{:<9}", label(b));
        for result in &results {
            let cell = format!(
                "{:.0} / {}",
                per_second(result[b].sent),
                result[b].queue_at_end
            );
            print!(" | {cell:>22}");
        }
        println!();
    }
    let rejected: u64 = results[2].iter().map(|b| b.rejected).sum();
    println!(
        "\nThe breaker rejected {rejected} calls outright (fail fast, no load on the server).\n\
         Simulated {} s x {} configurations in {:.2?}.",
        RUN.as_secs(),
        configurations.len(),
        started.elapsed()
    );
}
