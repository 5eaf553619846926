//! `concurrency` and `max_wait`: a bulkhead around each attempt.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::{Bulkhead, Elapsed, Rejected, resilient};
use support::{InFlight, TestError, ms};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep};

#[derive(Debug)]
#[allow(dead_code)]
enum FetchError {
    Io(std::io::Error),
    Timeout(Elapsed),
}

impl From<Elapsed> for FetchError {
    fn from(elapsed: Elapsed) -> Self {
        FetchError::Timeout(elapsed)
    }
}

static FETCHING: InFlight = InFlight::new();

/// The design card's example.
#[resilient(max_attempts = 5, backoff = "exponential", jitter = "full",
            timeout = "2s", concurrency = 3, retry_on = [Io, Timeout])]
async fn fetch(url: &'static str) -> Result<usize, FetchError> {
    let _in_flight = FETCHING.enter();
    sleep(ms(100)).await;
    Ok(url.len())
}

#[tokio::test(start_paused = true)]
async fn the_design_card_caps_concurrency_at_three() {
    let start = Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..20 {
        calls.spawn(fetch("https://example.com"));
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.unwrap().unwrap(), 19);
    }
    assert_eq!(FETCHING.peak(), 3);
    // 20 calls, 3 at a time, 100 ms each: 7 rounds
    assert_eq!(start.elapsed(), ms(700));
}

static POOL: Bulkhead = Bulkhead::new(1);

#[resilient(concurrency = &POOL, backoff = "fixed", base_delay = "1s", jitter = "none")]
async fn fails_once(calls: &AtomicU32) -> Result<(), TestError> {
    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
        Err(TestError::Io)
    } else {
        Ok(())
    }
}

#[resilient(concurrency = &POOL)]
async fn quick() -> Result<Instant, TestError> {
    Ok(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn the_permit_is_not_held_during_backoff_sleeps() {
    let start = Instant::now();
    let calls = AtomicU32::new(0);
    let (slow, fast) = tokio::join!(fails_once(&calls), async {
        sleep(ms(10)).await;
        quick().await
    });
    slow.unwrap();
    assert_eq!(
        fast.unwrap() - start,
        ms(10),
        "ran while the other call slept"
    );
    assert_eq!(POOL.available(), 1);
}

static NARROW: Bulkhead = Bulkhead::new(1);

#[resilient(concurrency = &NARROW, max_wait = "50ms", fallback = |e| match e {
    TestError::Rejected(_) => Ok("shed"),
    other => Err(other),
})]
async fn guarded(hold: u64, bodies: &AtomicU32) -> Result<&'static str, TestError> {
    bodies.fetch_add(1, Ordering::SeqCst);
    sleep(ms(hold)).await;
    Ok("done")
}

#[tokio::test(start_paused = true)]
async fn max_wait_rejects_and_the_fallback_sees_it() {
    let bodies = AtomicU32::new(0);
    let start = Instant::now();
    let (first, second) = tokio::join!(guarded(1_000, &bodies), async {
        sleep(ms(1)).await;
        let result = guarded(0, &bodies).await;
        (result, start.elapsed())
    });
    assert_eq!(first, Ok("done"));
    assert_eq!(
        second,
        (Ok("shed"), ms(51)),
        "rejected after max_wait, not retried"
    );
    assert_eq!(
        bodies.load(Ordering::SeqCst),
        1,
        "the rejected call never ran its body"
    );
}

#[resilient(concurrency = 1, max_wait = "10ms")]
async fn rejected_plainly() -> Result<(), TestError> {
    sleep(ms(100)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_rejection_is_a_typed_error() {
    let (a, b) = tokio::join!(rejected_plainly(), rejected_plainly());
    assert_eq!(a, Ok(()));
    assert_eq!(b, Err(TestError::Rejected(Rejected::new())));
}

static THREADS: InFlight = InFlight::new();

#[resilient(concurrency = 2)]
fn blocking_work() -> Result<(), TestError> {
    let _in_flight = THREADS.enter();
    std::thread::sleep(std::time::Duration::from_millis(1));
    Ok(())
}

#[test]
fn plain_functions_share_the_limit_across_threads() {
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for _ in 0..10 {
                    blocking_work().unwrap();
                }
            });
        }
    });
    assert_eq!(THREADS.peak(), 2);
}

static PANICKY: Bulkhead = Bulkhead::new(1);

#[resilient(concurrency = &PANICKY)]
fn panics() -> Result<(), TestError> {
    panic!("the body panicked");
}

#[test]
fn a_panicking_body_returns_its_permit() {
    assert!(std::panic::catch_unwind(panics).is_err());
    assert_eq!(PANICKY.available(), 1);
}
