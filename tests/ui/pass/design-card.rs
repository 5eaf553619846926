//! The example at the top of docs/design.md, as written there.

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::{Elapsed, resilient};

type Bytes = Vec<u8>;

#[derive(Debug)]
enum FetchError {
    Io(std::io::Error),
    Timeout(Elapsed),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Io(error) => write!(f, "i/o error: {error}"),
            FetchError::Timeout(elapsed) => write!(f, "{elapsed}"),
        }
    }
}

impl std::error::Error for FetchError {}

impl From<Elapsed> for FetchError {
    fn from(elapsed: Elapsed) -> Self {
        FetchError::Timeout(elapsed)
    }
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[resilient(max_attempts = 5, backoff = "exponential", jitter = "full",
            timeout = "2s", concurrency = 3, retry_on = [Io, Timeout])]
async fn fetch(url: &str) -> Result<Bytes, FetchError> {
    match ATTEMPTS.fetch_add(1, Ordering::SeqCst) {
        0 => Err(FetchError::Io(std::io::ErrorKind::ConnectionReset.into())),
        1 => {
            // Longer than `timeout`: this attempt is cancelled.
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            Ok(Vec::new())
        }
        _ => Ok(url.as_bytes().to_vec()),
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(
        fetch("https://example.invalid").await.unwrap(),
        b"https://example.invalid"
    );
    assert_eq!(ATTEMPTS.load(Ordering::SeqCst), 3);
}
