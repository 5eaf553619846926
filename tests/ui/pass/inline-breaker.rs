//! An inline breaker: configured, and as a bare word with the defaults.

use steadfast::resilient;

#[resilient(circuit_breaker(
    failure_rate = 0.5,
    window = 20,
    min_calls = 10,
    open_for = "30s",
    half_open_probes = 2
))]
async fn by_rate() -> std::io::Result<u8> {
    Ok(1)
}

#[resilient(circuit_breaker(failure_threshold = 4, open_for = "1m30s"))]
fn by_threshold() -> std::io::Result<u8> {
    Ok(2)
}

#[resilient(circuit_breaker)]
async fn with_defaults() -> std::io::Result<u8> {
    Ok(3)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(by_rate().await.unwrap(), 1);
    assert_eq!(by_threshold().unwrap(), 2);
    assert_eq!(with_defaults().await.unwrap(), 3);
}
