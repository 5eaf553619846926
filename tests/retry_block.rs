//! `retry!`: a block at the call site, with the attribute's keys and
//! behaviour.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::{retry, testing};
use support::{TestError, ms};
use tokio::time::Instant;

/// Fails with `error` until attempt `succeed_on`.
fn flaky(attempts: &AtomicU32, succeed_on: u32, error: TestError) -> Result<u32, TestError> {
    let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if n >= succeed_on { Ok(n) } else { Err(error) }
}

#[tokio::test(start_paused = true)]
async fn an_async_block_is_retried_on_the_attributes_schedule() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let result = retry!(max_attempts = 4, base_delay = "100ms", jitter = "none", budget = "off";
                        async { flaky(&attempts, 3, TestError::Io) })
    .await;
    assert_eq!(result, Ok(3));
    assert_eq!(start.elapsed(), ms(300), "slept 100 ms, then 200 ms");
}

#[test]
fn a_plain_block_runs_at_once_and_gives_up_with_the_last_error() {
    let _fast = testing::no_delays();
    let attempts = AtomicU32::new(0);
    let result = retry!(max_attempts = 3, budget = "off"; { flaky(&attempts, 10, TestError::Io) });
    assert_eq!(result, Err(TestError::Io));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[test]
fn question_mark_and_return_end_one_attempt_not_the_function() {
    fn caller(attempts: &AtomicU32) -> Result<&'static str, TestError> {
        let _fast = testing::no_delays();
        let value = retry!(max_attempts = 3, budget = "off"; {
            let n = flaky(attempts, 2, TestError::Io)?;
            if n == 2 {
                return Ok::<_, TestError>(n);
            }
            Ok(0)
        })?;
        // Reached: neither `return` nor `?` left `caller`.
        assert_eq!(value, 2);
        Ok("after the block")
    }
    let attempts = AtomicU32::new(0);
    assert_eq!(caller(&attempts), Ok("after the block"));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn classification_takes_paths() {
    let attempts = AtomicU32::new(0);
    let result = retry!(max_attempts = 5, retry_on = [TestError::Io], budget = "off";
                        async { flaky(&attempts, 10, TestError::Fatal("no")) })
    .await;
    assert_eq!(result, Err(TestError::Fatal("no")), "not retried");
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

struct Client {
    calls: u32,
}

impl Client {
    async fn call(&mut self) -> Result<u32, TestError> {
        self.calls += 1;
        if self.calls < 2 {
            Err(TestError::Io)
        } else {
            Ok(self.calls)
        }
    }

    /// The block borrows `&mut self` across attempts.
    async fn resilient_call(&mut self) -> Result<u32, TestError> {
        retry!(max_attempts = 3, budget = "off"; async { self.call().await }).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_block_may_borrow_mut_self() {
    let mut client = Client { calls: 0 };
    assert_eq!(client.resilient_call().await, Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_future_is_send_and_can_be_spawned() {
    let handle = tokio::spawn(async {
        let attempts = AtomicU32::new(0);
        retry!(max_attempts = 3, backoff = "none", budget = "off";
        async {
            tokio::task::yield_now().await;
            flaky(&attempts, 2, TestError::Io)
        })
        .await
    });
    assert_eq!(handle.await.unwrap(), Ok(2));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_and_timeout_apply_to_a_block() {
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<(), TestError> =
        retry!(timeout = "50ms", deadline = "120ms", max_attempts = 10,
        backoff = "none", budget = "off";
        async {
            attempts.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok::<(), TestError>(())
        })
        .await;
    assert!(matches!(result, Err(TestError::Timeout(_))));
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "50 + 50 + the last 20 ms"
    );
    assert_eq!(start.elapsed(), ms(120));
}

fn call_site_breaker(fail: bool) -> Result<(), TestError> {
    retry!(max_attempts = 1, circuit_breaker(failure_threshold = 1), budget = "off"; {
        if fail { Err(TestError::Io) } else { Ok(()) }
    })
}

#[test]
fn an_inline_breaker_is_one_per_call_site() {
    assert_eq!(call_site_breaker(true), Err(TestError::Io));
    // The same call site: its breaker is open now.
    assert!(matches!(call_site_breaker(false), Err(TestError::Open(_))));
    // Another call site has its own, closed breaker.
    let other = retry!(max_attempts = 1, circuit_breaker(failure_threshold = 1); {
        Ok::<(), TestError>(())
    });
    assert_eq!(other, Ok(()));
}
