//! `std::io::Result` functions work as is: `std::io::Error` has
//! `From<Elapsed>`, `From<Rejected>` and `From<CircuitOpen>`.

use steadfast::resilient;

#[resilient(
    timeout = "1s",
    deadline = "5s",
    concurrency = 2,
    max_wait = "1s",
    circuit_breaker
)]
async fn read_config(path: &str) -> std::io::Result<String> {
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    Ok(path.to_owned())
}

#[resilient(deadline = "5s", rate_limit = "10/s", burst = 2, max_wait = "1s")]
fn read_sync(path: &str) -> std::io::Result<String> {
    Ok(path.to_owned())
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let error = read_config("app.toml").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(read_sync("app.toml").unwrap(), "app.toml");
}
