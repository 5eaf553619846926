//! Limits that learn, at every door: an `AdaptiveLimit` wherever a
//! `Bulkhead` goes (shared, per key, inline), and adaptive throttling
//! inline; code written for bulkheads compiles as before.

use std::time::Duration;

use steadfast::{
    AdaptiveLimit, Bulkhead, CircuitOpen, Keyed, Policy, Rejected, resilient, retry,
};

#[derive(Debug)]
struct ApiError;

// `retry!` blocks show their error in events with `Display`.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the API failed")
    }
}

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError
    }
}

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

static DB: AdaptiveLimit = AdaptiveLimit::gradient().initial(20).min(1).max(200);
static FIXED: Bulkhead = Bulkhead::new(4);
static PER_HOST: Keyed<String, AdaptiveLimit> = Keyed::new(|_| AdaptiveLimit::aimd());
static BULKHEADS: Keyed<String, Bulkhead> = Keyed::new(|_| Bulkhead::new(2));

#[resilient(concurrency = &DB)]
async fn shared() -> Result<u32, ApiError> {
    Ok(1)
}

#[resilient(concurrency = &DB, max_wait = "50ms")]
fn shared_blocking() -> Result<u32, ApiError> {
    Ok(2)
}

#[resilient(concurrency = "adaptive")]
async fn inline() -> Result<u32, ApiError> {
    Ok(3)
}

#[resilient(concurrency = &PER_HOST.get(host))]
async fn per_host(host: &str) -> Result<u32, ApiError> {
    Ok(host.len() as u32)
}

// A per-key bulkhead, as before the adaptive limit.
#[resilient(concurrency = &BULKHEADS.get(host))]
async fn per_host_fixed(host: &str) -> Result<u32, ApiError> {
    Ok(host.len() as u32)
}

#[resilient(concurrency = &FIXED, circuit_breaker(adaptive_throttling = 2.0))]
async fn throttled() -> Result<u32, ApiError> {
    Ok(4)
}

#[resilient(circuit_breaker(adaptive_throttling = 1.5, key = host))]
async fn throttled_per_host(host: &str) -> Result<u32, ApiError> {
    Ok(host.len() as u32)
}

static POLICY: Policy<ApiError> = Policy::new()
    .concurrency(&DB)
    .max_wait(Duration::from_millis(50));
static FIXED_POLICY: Policy<ApiError> = Policy::new().concurrency(&FIXED);

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(shared().await.unwrap(), 1);
    assert_eq!(shared_blocking().unwrap(), 2);
    assert_eq!(inline().await.unwrap(), 3);
    assert_eq!(per_host("a.example").await.unwrap(), 9);
    assert_eq!(per_host_fixed("b.example").await.unwrap(), 9);
    assert_eq!(throttled().await.unwrap(), 4);
    assert_eq!(throttled_per_host("c").await.unwrap(), 1);
    let block: Result<u32, ApiError> = retry!(concurrency = &DB; async { Ok(5) }).await;
    assert_eq!(block.unwrap(), 5);
    let inline_block: Result<u32, ApiError> = retry!(concurrency = "adaptive"; { Ok(6) });
    assert_eq!(inline_block.unwrap(), 6);
    assert_eq!(POLICY.retry(|_| async { Ok(7) }).await.unwrap(), 7);
    assert_eq!(FIXED_POLICY.retry_blocking(|_| Ok(8)).unwrap(), 8);
    assert_eq!(DB.in_flight(), 0);
    assert_eq!(FIXED.available(), 4);
}
