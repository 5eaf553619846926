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

use retry_runtime::{InsufficientCapacity, RateLimiter, Rejected};
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
async fn acquire_n_over_burst_is_insufficient_capacity_at_once() {
    let limiter = RateLimiter::per_second(10).burst(3);
    let start = Instant::now();
    assert_eq!(
        limiter.acquire_n(4).await,
        Err(InsufficientCapacity::new(3))
    );
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
    send(&limiter.acquire_n_timeout(1, Duration::from_secs(1)));
    send(&limiter.acquire_timeout(Duration::from_secs(1)));
}

// Capacity and wait-time answers: `check`, `check_n`, the weighted waits
// with a timeout and their blocking twins. Where governor has a matching
// test (governor/tests/direct.rs), its name is given.

/// governor: `all_capacity_check_rejects_excess` (`check_n` of burst + 1 is
/// `InsufficientCapacity(burst)`, of the burst `Ok(Ok(()))`) and
/// `rejects_too_many_all` (still refused after a quiet spell).
#[tokio::test(start_paused = true)]
async fn n_equal_to_the_burst_is_allowed_and_one_more_is_insufficient_capacity() {
    let limiter = RateLimiter::per_second(10).burst(5);
    let start = Instant::now();
    assert_eq!(limiter.check_n(6), Err(InsufficientCapacity::new(5)));
    assert_eq!(
        limiter.acquire_n(6).await,
        Err(InsufficientCapacity::new(5))
    );
    assert_eq!(
        limiter
            .acquire_n_timeout(6, Duration::from_secs(3600))
            .await,
        Err(InsufficientCapacity::new(5))
    );
    assert_eq!(
        limiter.acquire_n_blocking(6),
        Err(InsufficientCapacity::new(5))
    );
    assert_eq!(
        limiter.acquire_n_blocking_timeout(6, Duration::from_secs(3600)),
        Err(InsufficientCapacity::new(5))
    );
    assert!(!limiter.try_acquire_n(6)); // unchanged: still a plain `false`
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "capacity errors never sleep"
    );

    // Nothing was taken by any of them: the whole burst is there.
    assert_eq!(limiter.check_n(5), Ok(Ok(())));
    // Even a full bucket does not admit burst + 1.
    advance(Duration::from_secs(3600)).await;
    assert_eq!(limiter.check_n(6), Err(InsufficientCapacity::new(5)));
    assert_eq!(limiter.acquire_n(5).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

#[test]
fn insufficient_capacity_is_an_invalid_input_io_error() {
    let err = InsufficientCapacity::new(7);
    assert_eq!(err.burst(), 7);
    fn error_traits<T: std::error::Error + Clone + PartialEq + Send + Sync + 'static>() {}
    error_traits::<InsufficientCapacity>();
    error_traits::<retry_runtime::NotUntil>();
    let io = std::io::Error::from(err);
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(io.to_string(), err.to_string());
    assert!(format!("{err:?}").contains('7'));
}

/// governor: `correct_wait_time` (advancing by `NotUntil::wait_time_from`
/// lands exactly on the next token), here with the exact values.
#[tokio::test(start_paused = true)]
async fn check_reports_the_exact_wait_until_a_token() {
    let limiter = RateLimiter::per_second(10).burst(1);
    let t0 = Instant::now();
    assert_eq!(limiter.check(), Ok(()));
    let not_until = limiter.check().unwrap_err();
    assert_eq!(not_until.wait_time_from(t0), Duration::from_millis(100));
    assert_eq!(
        not_until.to_string(),
        "rate limited: next token in 100ms",
        "what a log shows of it"
    );
    assert_eq!(
        not_until.earliest_possible(),
        t0 + Duration::from_millis(100)
    );

    // 1ns short of it: still refused, and the answer counts down exactly.
    advance(Duration::from_millis(100) - Duration::from_nanos(1)).await;
    let again = limiter.check().unwrap_err();
    assert_eq!(
        again.wait_time_from(Instant::now()),
        Duration::from_nanos(1)
    );
    assert_eq!(again.earliest_possible(), not_until.earliest_possible());
    assert_eq!(
        not_until.wait_time_from(Instant::now()),
        Duration::from_nanos(1)
    );
    // Past the instant the wait is zero; before the reading it is longer.
    assert_eq!(
        not_until.wait_time_from(t0 + Duration::from_secs(1)),
        Duration::ZERO
    );

    advance(Duration::from_nanos(1)).await;
    assert_eq!(limiter.check(), Ok(()));
    assert!(limiter.check().is_err());
}

/// governor: `never_allows_more_than_capacity_all` (weighted `check_n`
/// refused once the burst is spent), with the wait it reports.
#[tokio::test(start_paused = true)]
async fn check_n_reports_the_wait_for_all_n_tokens_and_takes_nothing() {
    let limiter = RateLimiter::per_second(10);
    assert_eq!(limiter.check_n(7), Ok(Ok(())));
    // 3 left: 5 more need 2 refills, 200ms.
    let not_until = limiter.check_n(5).unwrap().unwrap_err();
    assert_eq!(
        not_until.wait_time_from(Instant::now()),
        Duration::from_millis(200)
    );
    // Refused takes took nothing: the 3 are still there.
    assert_eq!(limiter.check_n(3), Ok(Ok(())));
    assert_eq!(limiter.check_n(0), Ok(Ok(())));

    let not_until = limiter.check_n(10).unwrap().unwrap_err();
    assert_eq!(
        not_until.wait_time_from(Instant::now()),
        Duration::from_secs(1)
    );
    tokio::time::sleep_until(not_until.earliest_possible()).await;
    assert_eq!(limiter.check_n(10), Ok(Ok(())));
}

#[tokio::test(start_paused = true)]
async fn per_period_takes_a_sub_second_period_exactly() {
    // "5/250ms": one token every 50ms, 5 at once.
    let fast = RateLimiter::per_period(5, Duration::from_millis(250));
    assert_eq!(fast.check_n(5), Ok(Ok(())));
    let not_until = fast.check().unwrap_err();
    assert_eq!(
        not_until.wait_time_from(Instant::now()),
        Duration::from_millis(50)
    );
    assert_eq!(fast.check_n(6), Err(InsufficientCapacity::new(5)));
    advance(Duration::from_millis(250)).await;
    assert_eq!(fast.check_n(5), Ok(Ok(())));
}

#[tokio::test(start_paused = true)]
async fn check_sees_a_pause() {
    let limiter = RateLimiter::per_second(100);
    limiter.pause(Duration::from_secs(2));
    let not_until = limiter.check().unwrap_err();
    assert_eq!(
        not_until.wait_time_from(Instant::now()),
        Duration::from_secs(2)
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_n_timeout_refuses_at_once_when_the_wait_exceeds_max_wait() {
    let limiter = RateLimiter::per_second(10);
    assert!(limiter.try_acquire_n(10));
    let start = Instant::now();
    // 4 tokens are 400ms away.
    let result = limiter
        .acquire_n_timeout(4, Duration::from_millis(399))
        .await;
    assert_eq!(result, Ok(Err(Rejected::new())));
    assert_eq!(start.elapsed(), Duration::ZERO, "must not sleep in vain");
    // Nothing was taken: the same 4 are still exactly 400ms away.
    let not_until = limiter.check_n(4).unwrap().unwrap_err();
    assert_eq!(not_until.wait_time_from(start), Duration::from_millis(400));
}

#[tokio::test(start_paused = true)]
async fn acquire_n_timeout_waits_when_the_wait_equals_max_wait() {
    let limiter = RateLimiter::per_second(10);
    assert!(limiter.try_acquire_n(10));
    let start = Instant::now();
    let result = limiter
        .acquire_n_timeout(4, Duration::from_millis(400))
        .await;
    assert_eq!(result, Ok(Ok(())));
    assert_close(start.elapsed(), Duration::from_millis(400));
    assert!(!limiter.try_acquire());

    // Free tokens need no time, even with a zero max_wait; n = 0 is free.
    advance(Duration::from_secs(1)).await;
    let start = Instant::now();
    assert_eq!(
        limiter.acquire_n_timeout(10, Duration::ZERO).await,
        Ok(Ok(()))
    );
    assert_eq!(
        limiter.acquire_n_timeout(0, Duration::ZERO).await,
        Ok(Ok(()))
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn cancelled_acquire_n_timeout_does_not_consume_tokens() {
    let limiter = RateLimiter::per_second(10);
    assert!(limiter.try_acquire_n(10));
    {
        let mut waiting = pin!(limiter.acquire_n_timeout(5, Duration::from_secs(1)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
    } // dropped after one poll
    advance(Duration::from_millis(500)).await;
    assert!(limiter.try_acquire_n(5), "the cancelled wait took tokens");
    assert!(!limiter.try_acquire());
}

#[test]
fn acquire_n_blocking_takes_free_tokens_at_once() {
    // One refill takes 6 minutes: only the immediate paths are exercised.
    let limiter = RateLimiter::per_hour(10);
    let start = std::time::Instant::now();
    assert_eq!(limiter.acquire_n_blocking(4), Ok(()));
    assert_eq!(limiter.acquire_n_blocking(0), Ok(()));
    assert_eq!(
        limiter.acquire_n_blocking_timeout(6, Duration::ZERO),
        Ok(Ok(()))
    );
    assert!(start.elapsed() < Duration::from_secs(1), "slept");
    assert!(!limiter.try_acquire());
}

#[test]
fn acquire_n_blocking_timeout_refuses_at_once_when_the_wait_is_too_long() {
    let limiter = RateLimiter::per_hour(10);
    assert!(limiter.try_acquire_n(8));
    let start = std::time::Instant::now();
    // 3 tokens with 2 left: one refill, 6 minutes away.
    let result = limiter.acquire_n_blocking_timeout(3, Duration::from_secs(60));
    assert_eq!(result, Ok(Err(Rejected::new())));
    assert!(start.elapsed() < Duration::from_secs(1), "slept in vain");
    // Nothing was taken.
    assert!(limiter.try_acquire_n(2));
}

/// What the RateLimit fields are written from: the bucket's size and fill
/// time, the tokens left and the time until full, as the bucket drains and
/// refills on the paused clock (and never more than the bucket holds after
/// a long idle gap).
#[tokio::test(start_paused = true)]
async fn quota_follows_the_bucket_as_it_drains_and_refills() {
    let limiter = RateLimiter::per_second(10).burst(4);
    let fresh = limiter.quota();
    assert_eq!((fresh.limit(), fresh.remaining()), (4, 4));
    assert_eq!(fresh.window(), Duration::from_millis(400));
    assert_eq!(fresh.full_in(), Duration::ZERO);
    assert!(limiter.try_acquire_n(3));
    let drained = limiter.quota();
    assert_eq!(drained.remaining(), 1);
    assert_eq!(drained.full_in(), Duration::from_millis(300));
    advance(Duration::from_millis(150)).await;
    let refilling = limiter.quota();
    assert_eq!(refilling.remaining(), 2);
    assert_eq!(refilling.full_in(), Duration::from_millis(150));
    advance(Duration::from_secs(3600)).await;
    let idle = limiter.quota();
    assert_eq!((idle.remaining(), idle.full_in()), (4, Duration::ZERO));
}
