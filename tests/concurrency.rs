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

static SWEPT_POOL: Bulkhead = Bulkhead::new(1);
static SWEPT_BREAKER: steadfast::CircuitBreaker = steadfast::CircuitBreaker::new()
    .failure_threshold(1)
    .half_open_probes(1)
    .open_for(std::time::Duration::from_secs(1));

/// Awaits at several points while holding a permit (and, half-open, the
/// breaker's only probe slot).
#[resilient(concurrency = &SWEPT_POOL, circuit_breaker = &SWEPT_BREAKER, rate_limit = "1000/s",
            timeout = "1s", max_attempts = 3, backoff = "fixed", base_delay = "10ms", jitter = "none")]
async fn many_awaits(fail_first: bool, attempts: &AtomicU32) -> Result<(), TestError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst);
    for _ in 0..3 {
        sleep(ms(5)).await;
    }
    if fail_first && attempt == 0 {
        Err(TestError::Io)
    } else {
        Ok(())
    }
}

/// Polls `future` up to `polls` times (advancing the paused clock in
/// between), then drops it unfinished; `false` if it finished first.
async fn poll_then_drop(future: impl std::future::Future, polls: usize) -> bool {
    let mut future = std::pin::pin!(future);
    for _ in 0..polls {
        let ready =
            std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_ready()))
                .await;
        if ready {
            return false;
        }
        tokio::time::advance(ms(3)).await;
    }
    true
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_call_at_any_await_returns_every_permit_and_probe() {
    let mut cancelled = 0;
    for polls in 1..=12 {
        // Closed breaker, a retry in the middle: permits across attempts and sleeps.
        let attempts = AtomicU32::new(0);
        cancelled += u32::from(poll_then_drop(many_awaits(true, &attempts), polls).await);
        assert_eq!(
            SWEPT_POOL.available(),
            1,
            "permit leaked after {polls} polls"
        );

        // Half-open breaker: the cancelled probe frees its slot.
        SWEPT_BREAKER.force_open_for(std::time::Duration::from_secs(1));
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        poll_then_drop(many_awaits(false, &attempts), polls).await;
        assert_eq!(
            many_awaits(false, &attempts).await,
            Ok(()),
            "probe slot leaked after {polls} polls"
        );
        assert_eq!(SWEPT_BREAKER.state(), steadfast::CircuitState::Closed);
        assert_eq!(SWEPT_POOL.available(), 1);
    }
    assert!(
        cancelled >= 8,
        "the sweep must cut calls at many points, not just finish them: {cancelled}"
    );
}

static CONTESTED: Bulkhead = Bulkhead::new(1);

/// A wait bounded both by `max_wait` (100 ms) and by the deadline.
#[resilient(concurrency = &CONTESTED, max_wait = "100ms", deadline = "1s", max_attempts = 1)]
async fn max_wait_comes_first() -> Result<(), TestError> {
    Ok(())
}

#[resilient(concurrency = &CONTESTED, max_wait = "5s", deadline = "1s", max_attempts = 1)]
async fn deadline_comes_first() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_wait_ends_as_rejected_at_max_wait_and_as_elapsed_at_the_deadline() {
    let held = CONTESTED.acquire().await;
    let start = Instant::now();
    assert_eq!(
        max_wait_comes_first().await,
        Err(TestError::Rejected(Rejected::new())),
        "max_wait ran out well before the deadline"
    );
    assert_eq!(start.elapsed(), ms(100));
    let start = Instant::now();
    assert_eq!(
        deadline_comes_first().await,
        Err(TestError::Timeout(Elapsed::new())),
        "the deadline cut the wait: the call ran out of time, it was not refused"
    );
    assert_eq!(start.elapsed(), ms(1_000));
    drop(held);
}
