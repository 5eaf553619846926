//! `hedge` at every async door, with what hedged bodies may borrow: shared
//! references, arguments by value (each attempt borrows them), `&self`,
//! and the other keys an attempt meets.

use std::time::Duration;

use steadfast::{Attempt, CircuitOpen, Elapsed, Hedge, Rejected, resilient, retry};

#[derive(Debug)]
struct ApiError;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the API failed")
    }
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError
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

static READS: Hedge = Hedge::after(Duration::from_millis(40));

#[resilient(hedge)]
async fn defaults(key: &str) -> Result<usize, ApiError> {
    Ok(key.len())
}

#[resilient(hedge(after = "p99.9", max_hedges = 10, max_extra_load = 1.0), attempt = attempt)]
async fn by_value(key: String, replicas: Vec<String>) -> Result<usize, ApiError> {
    let replica = &replicas[attempt.number() as usize % replicas.len()];
    Ok(key.len() + replica.len())
}

#[resilient(
    hedge = &READS,
    timeout = "1s",
    deadline = "3s",
    concurrency = 4,
    max_wait = "100ms",
    rate_limit = "100/s",
    circuit_breaker,
    breaker_if = |_: &ApiError| true,
    retry_after = |_: &ApiError| None,
)]
async fn shared_hedge(key: &str) -> Result<usize, ApiError> {
    Ok(key.len())
}

struct Store {
    name: String,
}

impl Store {
    #[resilient(hedge(after = "5ms"))]
    async fn get(&self, key: &str) -> Result<usize, ApiError> {
        Ok(self.name.len() + key.len())
    }
}

// async-trait's boxed future must be `Send`: the hedged round is, for a
// body that is.
#[async_trait::async_trait]
trait Lookup {
    async fn lookup(&self, key: &str) -> Result<usize, ApiError>;
}

#[async_trait::async_trait]
impl Lookup for Store {
    #[resilient(hedge(after = "p99"))]
    async fn lookup(&self, key: &str) -> Result<usize, ApiError> {
        Ok(self.name.len() + key.len())
    }
}

async fn block(key: &str) -> Result<u32, ApiError> {
    retry!(hedge(after = "p95"), attempt = a; async {
        let a: Attempt = a;
        Ok(key.len() as u32 + a.number())
    })
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(defaults("k").await.unwrap(), 1);
    assert_eq!(by_value("k".into(), vec!["r1".into()]).await.unwrap(), 3);
    assert_eq!(shared_hedge("k").await.unwrap(), 1);
    let store = Store { name: "s".into() };
    assert_eq!(store.get("k").await.unwrap(), 2);
    assert_eq!(store.lookup("k").await.unwrap(), 2);
    assert_eq!(block("k").await.unwrap(), 2);
}
