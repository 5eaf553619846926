//! `#[resilient]` on the methods of an `#[async_trait]` impl and on the
//! default methods of an `#[async_trait]` trait: async-trait expands them
//! first, into `Box::pin(async move { .. })`, and the retry loop goes inside.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use steadfast::resilient;
use support::{TestError, ms};
use tokio::time::Instant;

#[async_trait]
trait Store {
    async fn get(&self, key: String) -> Result<String, TestError>;

    /// A default method, retried like the others.
    #[resilient(
        max_attempts = 3,
        base_delay = "100ms",
        jitter = "none",
        budget = "off"
    )]
    async fn get_twice(&self, key: String) -> Result<String, TestError> {
        let value = self.get(key.clone()).await?;
        Ok(format!("{value}{value}"))
    }
}

struct Flaky {
    calls: AtomicU32,
}

#[async_trait]
impl Store for Flaky {
    #[resilient(max_attempts = 3, base_delay = "100ms", jitter = "none", budget = "off",
                retry_on = [Io])]
    async fn get(&self, key: String) -> Result<String, TestError> {
        // `key` is owned: each attempt borrows it, as in a plain async fn.
        if self.calls.fetch_add(1, Ordering::SeqCst) % 3 < 2 {
            Err(TestError::Io)
        } else {
            Ok(key.to_uppercase())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_impl_method_is_retried_inside_the_boxed_future() {
    let store = Flaky {
        calls: AtomicU32::new(0),
    };
    let start = Instant::now();
    assert_eq!(store.get("k".to_owned()).await, Ok("K".to_owned()));
    assert_eq!(store.calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), ms(300));
}

#[tokio::test(start_paused = true)]
async fn a_default_method_is_retried_and_works_through_dyn() {
    let store: Box<dyn Store + Send + Sync> = Box::new(Flaky {
        calls: AtomicU32::new(0),
    });
    // The inner `get` retries on its own: the outer call succeeds at once.
    assert_eq!(store.get_twice("a".to_owned()).await, Ok("AA".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_boxed_future_is_still_send() {
    let store = std::sync::Arc::new(Flaky {
        calls: AtomicU32::new(0),
    });
    let handle = tokio::spawn(async move { store.get("s".to_owned()).await });
    assert_eq!(handle.await.unwrap(), Ok("S".to_owned()));
}
