//! `fallback` and `on_retry` as async closures, awaited in place.

mod support;

use std::sync::Mutex;

use steadfast::{resilient, retry};
use support::{TestError, ms};
use tokio::time::{Instant, sleep};

async fn from_mirror(id: u32) -> Result<String, TestError> {
    sleep(ms(30)).await;
    Ok(format!("mirror {id}"))
}

#[resilient(max_attempts = 2, base_delay = "100ms", jitter = "none", budget = "off",
            fallback = async |_| from_mirror(id).await)]
async fn fetch(id: u32) -> Result<String, TestError> {
    Err(TestError::Io)
}

#[tokio::test(start_paused = true)]
async fn an_async_fallback_is_awaited() {
    let start = Instant::now();
    assert_eq!(fetch(7).await, Ok("mirror 7".to_owned()));
    assert_eq!(
        start.elapsed(),
        ms(130),
        "one backoff sleep, then the mirror's 30 ms"
    );
}

static LOG: Mutex<Vec<u32>> = Mutex::new(Vec::new());

async fn record(attempt: u32) {
    sleep(ms(5)).await;
    LOG.lock().unwrap().push(attempt);
}

#[resilient(max_attempts = 3, backoff = "none", budget = "off",
            on_retry = async |event| record(event.attempt()).await)]
async fn logged(calls: &Mutex<u32>) -> Result<u32, TestError> {
    let mut n = calls.lock().unwrap();
    *n += 1;
    if *n < 3 { Err(TestError::Io) } else { Ok(*n) }
}

#[tokio::test(start_paused = true)]
async fn an_async_on_retry_runs_before_each_retry() {
    LOG.lock().unwrap().clear();
    let start = Instant::now();
    let calls = Mutex::new(0);
    assert_eq!(logged(&calls).await, Ok(3));
    assert_eq!(*LOG.lock().unwrap(), [1, 2]);
    assert_eq!(start.elapsed(), ms(10), "each hook was awaited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_with_async_hooks_can_be_spawned() {
    let handle = tokio::spawn(fetch(3));
    assert_eq!(handle.await.unwrap(), Ok("mirror 3".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn blocks_take_async_hooks_too() {
    let value = retry!(max_attempts = 1, fallback = async |_| from_mirror(9).await;
                       async { Err::<String, _>(TestError::Io) })
    .await;
    assert_eq!(value, Ok("mirror 9".to_owned()));
}
