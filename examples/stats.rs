//! Per-function statistics (`--features stats`): drive a flaky in-process
//! service through three annotated functions, then print what
//! `steadfast::stats::snapshot()` recorded.
//!
//! ```sh
//! cargo run --example stats --features stats
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use steadfast::{CircuitBreaker, CircuitOpen, resilient, stats};

/// A service that fails a fixed share of requests, decided by a counter so
/// the run is the same every time: request k fails when `k * percent % 100`
/// wraps, which spreads failures evenly.
struct FlakyService {
    requests: AtomicU64,
    failure_percent: u64,
}

impl FlakyService {
    const fn new(failure_percent: u64) -> Self {
        FlakyService {
            requests: AtomicU64::new(0),
            failure_percent,
        }
    }

    async fn request(&self) -> Result<u64, ServiceError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let k = self.requests.fetch_add(1, Ordering::Relaxed);
        let fails = (k * self.failure_percent) % 100 + self.failure_percent >= 100;
        if fails {
            Err(ServiceError::Unavailable)
        } else {
            Ok(k)
        }
    }
}

#[derive(Debug)]
enum ServiceError {
    Unavailable,
    Open,
}

impl From<CircuitOpen> for ServiceError {
    fn from(_: CircuitOpen) -> Self {
        ServiceError::Open
    }
}

static MOSTLY_UP: FlakyService = FlakyService::new(20);
static STRUGGLING: FlakyService = FlakyService::new(60);
static DOWN: FlakyService = FlakyService::new(100);
static DOWN_BREAKER: CircuitBreaker = CircuitBreaker::new().failure_threshold(5).name("inventory");

#[resilient(name = "catalog.lookup", max_attempts = 3, backoff = "none")]
async fn lookup() -> Result<u64, ServiceError> {
    MOSTLY_UP.request().await
}

#[resilient(name = "pricing.quote", max_attempts = 4, backoff = "none")]
async fn quote() -> Result<u64, ServiceError> {
    STRUGGLING.request().await
}

#[resilient(name = "inventory.check", max_attempts = 3, backoff = "none", circuit_breaker = &DOWN_BREAKER)]
async fn check() -> Result<u64, ServiceError> {
    DOWN.request().await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    for _ in 0..200 {
        let _ = tokio::join!(lookup(), quote(), check());
    }

    println!(
        "{:<16} {:>6} {:>8} {:>8} {:>9} {:>9} {:>8}  successes on attempt 1, 2, 3, ...",
        "site", "calls", "success", "attempts", "mean att.", "retries", "rejected"
    );
    for site in stats::snapshot() {
        println!(
            "{:<16} {:>6} {:>7.1}% {:>8} {:>9.2} {:>9} {:>8}  {:?}",
            site.name,
            site.calls,
            100.0 * site.success_rate(),
            site.attempts,
            site.mean_attempts(),
            site.retries,
            site.rejected,
            site.successes_at_attempt,
        );
    }
    println!(
        "\ncatalog.lookup: at 20% failures, one retry in four calls recovers them all.\n\
         pricing.quote: at 60% failures the default retry budget stops at its 100-retry reserve \
         plus 20% of calls (140 retries), so a struggling service is not hammered.\n\
         inventory.check: the breaker opens after 5 failures; every later call is rejected at once."
    );
}
