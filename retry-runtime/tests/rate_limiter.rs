//! Behaviour of `RateLimiter`: bursts, pacing on tokio's paused clock,
//! weighted requests, bounded and cancelled waits, and exact accounting
//! under contention.

use std::future::Future;
use std::pin::pin;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::thread;
use std::time::Duration;

use retry_runtime::{RateLimiter, Rejected};
use tokio::time::{Instant, advance};

/// One tick of tokio's timer wheel: the resolution of a virtual-time sleep.
const TICK: Duration = Duration::from_millis(1);

fn assert_close(actual: Duration, expected: Duration) {
    let diff = actual.abs_diff(expected);
    assert!(
        diff <= TICK,
        "took {actual:?}, expected {expected:?} (± {TICK:?})"
    );
}

#[test]
fn constructible_in_a_static() {
    static PER_SECOND: RateLimiter = RateLimiter::per_second(10).burst(20);
    static PER_MINUTE: RateLimiter = RateLimiter::per_minute(10);
    static PER_HOUR: RateLimiter = RateLimiter::per_hour(10);
    assert!(PER_SECOND.try_acquire_n(20));
    assert!(PER_MINUTE.try_acquire_n(10));
    assert!(PER_HOUR.try_acquire_n(10));
}

#[tokio::test(start_paused = true)]
async fn burst_is_admitted_at_once_then_refused() {
    let limiter = RateLimiter::per_second(5);
    for _ in 0..5 {
        assert!(limiter.try_acquire());
    }
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(199)).await;
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(1)).await;
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());
}

#[tokio::test(start_paused = true)]
async fn explicit_burst_overrides_the_default() {
    let limiter = RateLimiter::per_second(5).burst(2);
    assert!(limiter.try_acquire());
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());

    // A quiet spell refills at most the burst.
    advance(Duration::from_secs(60)).await;
    assert!(limiter.try_acquire_n(2));
    assert!(!limiter.try_acquire());
}

#[tokio::test(start_paused = true)]
async fn zero_rate_and_zero_burst_are_treated_as_one() {
    let limiter = RateLimiter::per_second(0);
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());
    advance(Duration::from_secs(1)).await;
    assert!(limiter.try_acquire());

    let limiter = RateLimiter::per_second(10).burst(0);
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());
}

#[tokio::test(start_paused = true)]
async fn per_period_takes_any_period() {
    // 3 tokens every 1.5 s: one every 500 ms, 3 at once.
    let limiter = RateLimiter::per_period(3, Duration::from_millis(1_500));
    assert!(limiter.try_acquire_n(3));
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(499)).await;
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(1)).await;
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());

    static SAME_AS_PER_MINUTE: RateLimiter = RateLimiter::per_period(30, Duration::from_secs(60));
    assert_eq!(
        format!("{SAME_AS_PER_MINUTE:?}"),
        format!("{:?}", RateLimiter::per_minute(30))
    );
}

#[tokio::test(start_paused = true)]
async fn per_period_with_zero_n_or_zero_period_does_not_panic() {
    // n = 0 is one token per period.
    let limiter = RateLimiter::per_period(0, Duration::from_secs(2));
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());
    advance(Duration::from_secs(2)).await;
    assert!(limiter.try_acquire());

    // A zero period is 1 ns: the fastest rate a limiter accounts, so n
    // tokens at once and one more every nanosecond.
    let limiter = RateLimiter::per_period(4, Duration::ZERO);
    assert!(limiter.try_acquire_n(4));
    assert!(!limiter.try_acquire());
    advance(Duration::from_nanos(1)).await;
    assert!(limiter.try_acquire());

    let limiter = RateLimiter::per_period(0, Duration::ZERO);
    assert!(limiter.try_acquire());
}

#[tokio::test(start_paused = true)]
async fn pacing_100_acquires_at_10_per_second_take_9_9s() {
    let limiter = RateLimiter::per_second(10).burst(1);
    let start = Instant::now();
    for _ in 0..100 {
        limiter.acquire().await;
    }
    assert_close(start.elapsed(), Duration::from_millis(9900));
}

#[tokio::test(start_paused = true)]
async fn pacing_after_the_burst_is_spent() {
    let limiter = RateLimiter::per_second(4);
    let start = Instant::now();
    for _ in 0..4 {
        limiter.acquire().await;
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    for _ in 0..8 {
        limiter.acquire().await;
    }
    assert_close(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn uneven_interval_never_exceeds_the_rate() {
    // 3/s is an interval of 333_333_334ns (rounded up).
    let limiter = RateLimiter::per_second(3).burst(1);
    let start = Instant::now();
    for _ in 0..31 {
        limiter.acquire().await;
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(10), "took {elapsed:?}");
    // Each wake lands on the next whole tick (334ms); GCRA gives no credit
    // for a late arrival, so the error is at most one tick per token.
    assert!(
        elapsed <= 30 * Duration::from_millis(334),
        "took {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn per_minute_refills_one_token_per_interval() {
    let limiter = RateLimiter::per_minute(2);
    assert!(limiter.try_acquire());
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(29_999)).await;
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(1)).await;
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());

    let start = Instant::now();
    limiter.acquire().await;
    assert_close(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn per_hour_refills_one_token_per_interval() {
    let limiter = RateLimiter::per_hour(3);
    assert!(limiter.try_acquire_n(3));
    assert!(!limiter.try_acquire());
    advance(Duration::from_secs(20 * 60) - Duration::from_millis(1)).await;
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(1)).await;
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());

    let start = Instant::now();
    limiter.acquire().await;
    assert_close(start.elapsed(), Duration::from_secs(20 * 60));
}

#[tokio::test(start_paused = true)]
async fn try_acquire_n_is_weighted_and_all_or_nothing() {
    let limiter = RateLimiter::per_second(10);
    assert!(limiter.try_acquire_n(4));
    assert!(limiter.try_acquire_n(4));
    assert!(!limiter.try_acquire_n(4)); // 2 left: takes nothing
    assert!(limiter.try_acquire_n(2));
    assert!(!limiter.try_acquire());
    assert!(limiter.try_acquire_n(0));

    advance(Duration::from_millis(300)).await;
    assert!(!limiter.try_acquire_n(4));
    assert!(limiter.try_acquire_n(3));
    assert!(!limiter.try_acquire());

    assert!(!limiter.try_acquire_n(11)); // more than the burst, ever
    advance(Duration::from_secs(3600)).await;
    assert!(!limiter.try_acquire_n(11));
    assert!(limiter.try_acquire_n(10));
}

#[tokio::test(start_paused = true)]
async fn acquire_n_waits_for_all_tokens() {
    let limiter = RateLimiter::per_second(10);
    assert_eq!(limiter.acquire_n(10).await, Ok(()));
    let start = Instant::now();
    assert_eq!(limiter.acquire_n(5).await, Ok(()));
    assert_close(start.elapsed(), Duration::from_millis(500));
    assert_eq!(limiter.acquire_n(0).await, Ok(()));
    assert_close(start.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn acquire_n_over_burst_is_rejected_at_once() {
    let limiter = RateLimiter::per_second(10).burst(3);
    let start = Instant::now();
    assert_eq!(limiter.acquire_n(4).await, Err(Rejected::new()));
    assert_eq!(start.elapsed(), Duration::ZERO);
    // Nothing was taken.
    assert!(limiter.try_acquire_n(3));
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_rejects_at_once_when_the_wait_is_too_long() {
    let limiter = RateLimiter::per_second(1).burst(1);
    assert!(limiter.try_acquire());
    let start = Instant::now();
    let result = limiter.acquire_timeout(Duration::from_millis(999)).await;
    assert_eq!(result, Err(Rejected::new()));
    assert_eq!(start.elapsed(), Duration::ZERO, "must not sleep in vain");
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_waits_when_the_token_arrives_in_time() {
    let limiter = RateLimiter::per_second(1).burst(1);
    assert!(limiter.try_acquire());
    let start = Instant::now();
    assert_eq!(
        limiter.acquire_timeout(Duration::from_secs(1)).await,
        Ok(())
    );
    assert_close(start.elapsed(), Duration::from_secs(1));
    assert!(!limiter.try_acquire());

    // A free token needs no time at all, even with a zero max_wait.
    advance(Duration::from_secs(1)).await;
    let start = Instant::now();
    assert_eq!(limiter.acquire_timeout(Duration::ZERO).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_gives_up_if_another_caller_takes_the_token() {
    // 3/s: the next token is due 333_333_334ns after the first. A sleeping
    // waiter wakes on a whole timer tick (334ms); the thief advances the
    // clock exactly to the token and takes it before the waiter wakes.
    let limiter = RateLimiter::per_second(3).burst(1);
    let token_due = Duration::from_nanos(333_333_334);
    assert!(limiter.try_acquire());
    let start = Instant::now();
    let thief = async {
        // Let the waiter start its sleep first.
        tokio::time::sleep(TICK).await;
        advance(token_due - TICK).await;
        assert!(limiter.try_acquire());
    };
    let (_, result) = tokio::join!(thief, limiter.acquire_timeout(Duration::from_millis(400)));
    // On waking, the next token is ~333ms away, past the 400ms budget.
    assert_eq!(result, Err(Rejected::new()));
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(400), "took {elapsed:?}");
    assert_close(elapsed, token_due);
}

#[tokio::test(start_paused = true)]
async fn cancelled_acquire_does_not_consume_a_token() {
    let limiter = RateLimiter::per_second(1).burst(1);
    assert!(limiter.try_acquire());
    {
        let mut waiting = pin!(limiter.acquire());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
    } // dropped after one poll
    advance(Duration::from_secs(1)).await;
    assert!(limiter.try_acquire(), "the cancelled wait took the token");
    assert!(!limiter.try_acquire());
}

#[tokio::test(start_paused = true)]
async fn acquire_cancelled_by_timeout_does_not_consume_a_token() {
    let limiter = RateLimiter::per_second(1).burst(1);
    assert!(limiter.try_acquire());
    for _ in 0..3 {
        let cancelled = tokio::time::timeout(Duration::from_millis(300), limiter.acquire()).await;
        assert!(cancelled.is_err());
    }
    assert!(!limiter.try_acquire());
    advance(Duration::from_millis(100)).await;
    // 1s has passed: exactly one token (the refill) is available.
    assert!(limiter.try_acquire());
    assert!(!limiter.try_acquire());
}

#[test]
fn concurrent_try_acquire_grants_exactly_the_bucket() {
    for threads in [2, 4] {
        // One refill takes 3.6s, far longer than this test runs.
        let limiter = RateLimiter::per_hour(1).burst(1000);
        let granted = AtomicUsize::new(0);
        let start = Barrier::new(threads);
        thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    start.wait();
                    for _ in 0..1000 {
                        if limiter.try_acquire() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::Relaxed), 1000, "{threads} threads");
    }
}

#[test]
fn concurrent_weighted_grants_never_exceed_the_bucket() {
    let limiter = RateLimiter::per_hour(1).burst(1000);
    let granted = AtomicUsize::new(0);
    let start = Barrier::new(2);
    thread::scope(|scope| {
        for weight in [3u32, 7] {
            let (limiter, granted, start) = (&limiter, &granted, &start);
            scope.spawn(move || {
                start.wait();
                for _ in 0..500 {
                    if limiter.try_acquire_n(weight) {
                        granted.fetch_add(weight as usize, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let granted = granted.load(Ordering::Relaxed);
    // Every 3 fits until fewer than 3 tokens remain.
    assert!((998..=1000).contains(&granted), "granted {granted}");
}

#[test]
fn acquire_blocking_paces_the_thread() {
    let limiter = RateLimiter::per_second(1000).burst(1);
    let start = std::time::Instant::now();
    for _ in 0..3 {
        limiter.acquire_blocking();
    }
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(2), "waited {waited:?}");
}

#[test]
fn acquire_blocking_timeout_rejects_at_once_when_the_wait_is_too_long() {
    let limiter = RateLimiter::per_hour(1).burst(1);
    assert_eq!(limiter.acquire_blocking_timeout(Duration::ZERO), Ok(()));
    let start = std::time::Instant::now();
    let result = limiter.acquire_blocking_timeout(Duration::from_secs(60));
    assert_eq!(result, Err(Rejected::new()));
    assert!(start.elapsed() < Duration::from_secs(1), "slept in vain");
}

#[test]
fn acquire_blocking_timeout_waits_when_the_token_arrives_in_time() {
    let limiter = RateLimiter::per_second(500).burst(1);
    assert!(limiter.try_acquire());
    let start = std::time::Instant::now();
    assert_eq!(
        limiter.acquire_blocking_timeout(Duration::from_millis(500)),
        Ok(())
    );
    let waited = start.elapsed();
    assert!(waited < Duration::from_millis(500), "waited {waited:?}");
    assert!(!limiter.try_acquire());
}

#[test]
fn blocking_threads_share_the_rate() {
    let limiter = RateLimiter::per_second(2000).burst(1);
    let start = std::time::Instant::now();
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..3 {
                    limiter.acquire_blocking();
                }
            });
        }
    });
    // 6 tokens at one per 0.5ms: the last one is at least 2.5ms after the first.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_micros(2500), "waited {waited:?}");
}

#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn sync<T: Sync>() {}
    sync::<RateLimiter>();
    let limiter = RateLimiter::per_second(1);
    send(&limiter.acquire());
    send(&limiter.acquire_n(1));
    send(&limiter.acquire_timeout(Duration::from_secs(1)));
}
