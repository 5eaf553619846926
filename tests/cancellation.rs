//! Cancellation and panics: every future the library creates that holds a
//! permit, a token, a probe slot or a timer is dropped after 1, 2, 3 ...
//! polls (on tokio's paused clock, advanced between polls), and every shared
//! primitive must be back where it started; a panicking body, sync or async,
//! must leave them usable and consistent.
//!
//! `tests/concurrency.rs` sweeps one annotated function whose keys are
//! expressions (`&Bulkhead`, `&CircuitBreaker`) plus an inline rate limit;
//! this file sweeps the primitives' own futures and the inline keys.
//!
//! | test | cancellation points | figure asserted |
//! |---|---|---|
//! | `bulkhead_acquire_sweep` | 6 poll counts × every release point, incl. handed a slot and dropped unpolled | `available()` back to 2, two permits at once |
//! | `a_cancelled_waiter_passes_its_permit_on` | a permit handed to a waiter that is then dropped | the next waiter gets it, `available()` 1 |
//! | `bulkhead_acquire_timeout_sweep` | 8 poll counts × 4 release points (before the timer fires, after) | `available()` back to 1 |
//! | `rate_limiter_wait_sweep` | 4 waits × 7 poll counts | tokens left == an untouched twin's if cut, the twin's − n if it finished |
//! | `inline_rate_limit_sweep` | 6 poll counts | the next call gets its token at t0 + 100 ms (not t0 + 200 ms) |
//! | `inline_breaker_probe_sweep` | 8 poll counts | the next call is admitted as a probe and closes the breaker |
//! | `deadline_and_concurrency_sweep` | 12 poll counts | the next call runs at once: 2 attempts in 40 ms |
//! | `max_wait_sweep` | 8 poll counts, waiting for a held permit | the next call gets the permit at once |
//! | `a_panicking_sync_body_leaves_everything_consistent` | panic in attempt 2 | permits 2/2, breaker count 1, tokens 2 used, budget 9 left |
//! | `a_panicking_probe_frees_its_slot` | panic in a half-open probe (body, and `retry_if`) | a probe can be acquired again |
//! | `a_panicking_async_body_leaves_everything_consistent` | spawned task panics in attempt 2 / as a probe | as the sync case |

mod support;

use std::future::{Future, poll_fn};
use std::panic::catch_unwind;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::task::Poll;
use std::time::Duration;

use steadfast::{
    Bulkhead, BulkheadPermit, CircuitBreaker, CircuitState, RateLimiter, RetryBudget, resilient,
};
use support::{TestError, ms};
use tokio::time::{Instant, advance, sleep};

/// How a swept future ended.
#[derive(Debug)]
enum Cut<T> {
    Finished(T),
    Dropped,
}

/// Polls `future` at most `polls` times, advancing the paused clock by
/// `step` after each poll that leaves it pending; `before(i)` runs before
/// poll `i`, and `before(polls)` after the last one, just before the drop
/// (to release a permit at a chosen point). Drops it unfinished.
async fn poll_at_most<F: Future>(
    future: F,
    polls: usize,
    step: Duration,
    mut before: impl FnMut(usize),
) -> Cut<F::Output> {
    let mut future = pin!(future);
    for i in 0..polls {
        before(i);
        if let Poll::Ready(output) = poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
            return Cut::Finished(output);
        }
        advance(step).await;
    }
    before(polls);
    Cut::Dropped
}

/// Polls once; `Some` if ready.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    poll_fn(|cx| match std::pin::Pin::new(&mut *future).poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

// ---------------------------------------------------------------- bulkhead

#[tokio::test(start_paused = true)]
async fn bulkhead_acquire_sweep() {
    let mut cut = 0;
    for polls in 1..=6 {
        // `release_at == polls` hands the slot to the waiter after its last
        // poll, so it is dropped holding a slot it never saw; `polls + 1`
        // never releases: the waiter is dropped from the queue.
        for release_at in 0..=polls + 1 {
            let bulkhead = Bulkhead::new(2);
            let mut held: Option<BulkheadPermit<'_>> = bulkhead.try_acquire();
            let other = bulkhead.try_acquire().unwrap();
            let outcome = poll_at_most(bulkhead.acquire(), polls, ms(1), |i| {
                if i == release_at {
                    // Hands the slot to the queued waiter inside the
                    // semaphore, before the waiter is polled again.
                    held = None;
                }
            })
            .await;
            cut += u32::from(matches!(outcome, Cut::Dropped));
            drop(outcome);
            drop(held);
            drop(other);
            assert_eq!(
                bulkhead.available(),
                2,
                "slot lost: {polls} polls, released before poll {release_at}"
            );
            let (a, b) = (bulkhead.try_acquire(), bulkhead.try_acquire());
            assert!(a.is_some() && b.is_some());
        }
    }
    assert_eq!(cut, 12, "2 cut points (queued, handed a slot) × 6");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_passes_its_permit_on() {
    let bulkhead = Bulkhead::new(1);
    let held = bulkhead.try_acquire().unwrap();
    let mut first = Box::pin(bulkhead.acquire());
    let mut second = Box::pin(bulkhead.acquire());
    assert!(poll_once(&mut first).await.is_none());
    assert!(poll_once(&mut second).await.is_none());
    // The slot goes to `first` (FIFO), which is then dropped unpolled.
    drop(held);
    drop(first);
    let permit = poll_once(&mut second)
        .await
        .expect("the cancelled waiter's slot went to the next one");
    assert_eq!(bulkhead.available(), 0);
    drop(permit);
    assert_eq!(bulkhead.available(), 1);
}

#[tokio::test(start_paused = true)]
async fn bulkhead_acquire_timeout_sweep() {
    let (mut cut, mut rejected, mut admitted) = (0, 0, 0);
    for polls in 1..=8 {
        for release_at in [0, 3, polls, usize::MAX] {
            let bulkhead = Bulkhead::new(1);
            let mut held = bulkhead.try_acquire();
            // 50 ms allowed, 10 ms per poll: the timer fires between poll 5 and 6.
            let outcome = poll_at_most(bulkhead.acquire_timeout(ms(50)), polls, ms(10), |i| {
                if i == release_at {
                    held = None;
                }
            })
            .await;
            match &outcome {
                Cut::Dropped => cut += 1,
                Cut::Finished(Ok(_)) => admitted += 1,
                Cut::Finished(Err(_)) => rejected += 1,
            }
            drop(outcome);
            drop(held);
            assert_eq!(
                bulkhead.available(),
                1,
                "slot lost: {polls} polls, released before poll {release_at}"
            );
        }
    }
    assert!(
        cut > 0 && rejected > 0 && admitted > 0,
        "cut {cut}, rejected {rejected}, admitted {admitted}"
    );
}

// ---------------------------------------------------------------- rate limiter

/// How many tokens can be taken right now (at most `burst`), taking them.
fn drain(limiter: &RateLimiter, burst: u32) -> u32 {
    (0..burst).take_while(|_| limiter.try_acquire()).count() as u32
}

#[tokio::test(start_paused = true)]
async fn rate_limiter_wait_sweep() {
    // One token every 100 ms, burst 2: a wait on an empty bucket lasts 100 ms
    // (200 ms for two tokens); polls are 30 ms apart.
    const BURST: u32 = 2;
    let waits: [(&str, u32); 4] = [
        ("acquire", 1),
        ("acquire_n(2)", 2),
        ("acquire_timeout(150ms)", 1),
        ("acquire_timeout(50ms)", 1),
    ];
    let (mut cut, mut finished) = (0, 0);
    for (name, n) in waits {
        for polls in 1..=7 {
            let limiter = RateLimiter::per_second(10).burst(BURST);
            // The same history minus the swept wait.
            let twin = RateLimiter::per_second(10).burst(BURST);
            assert_eq!(drain(&limiter, BURST), BURST);
            assert_eq!(drain(&twin, BURST), BURST);
            let wait = async {
                match name {
                    "acquire" => limiter.acquire().await,
                    "acquire_n(2)" => limiter.acquire_n(2).await.unwrap(),
                    "acquire_timeout(150ms)" => limiter.acquire_timeout(ms(150)).await.unwrap(),
                    _ => {
                        // Refused at once: the next token is 100 ms away.
                        assert!(limiter.acquire_timeout(ms(50)).await.is_err());
                        return false;
                    }
                }
                true
            };
            let outcome = poll_at_most(wait, polls, ms(30), |_| {}).await;
            // Compare the two buckets at this same instant.
            let (mine, theirs) = (drain(&limiter, BURST), drain(&twin, BURST));
            match outcome {
                Cut::Dropped => {
                    cut += 1;
                    assert_eq!(mine, theirs, "{name}: a cancelled wait took tokens");
                }
                Cut::Finished(true) => {
                    finished += 1;
                    // It took exactly `n` at the instant it finished, which
                    // is now: the twin has `n` more.
                    assert_eq!(mine + n, theirs, "{name}: took other than {n}");
                }
                Cut::Finished(false) => {
                    assert_eq!(mine, theirs, "{name}: a refused wait took tokens");
                }
            }
        }
    }
    assert!(cut >= 10 && finished >= 6, "cut {cut}, finished {finished}");
}

#[resilient(rate_limit = "10/s", burst = 2, max_attempts = 1, budget = "off")]
async fn paced() -> Result<Instant, TestError> {
    Ok(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn inline_rate_limit_sweep() {
    let mut cut = 0;
    for polls in 1..=6 {
        // A full bucket: 2 tokens, then one every 100 ms.
        advance(Duration::from_secs(1)).await;
        let t0 = Instant::now();
        assert_eq!(paced().await, Ok(t0));
        assert_eq!(paced().await, Ok(t0));
        match poll_at_most(paced(), polls, ms(30), |_| {}).await {
            Cut::Dropped => {
                cut += 1;
                let cut_at = Instant::now();
                let next = paced().await.unwrap();
                // Had the cancelled wait taken the token at t0 + 100 ms, the
                // next would come at t0 + 200 ms.
                assert_eq!(
                    next - t0,
                    (cut_at - t0).max(ms(100)),
                    "a call cancelled after {polls} polls took a token"
                );
            }
            Cut::Finished(at) => {
                assert!(at.unwrap() >= t0 + ms(100));
                assert_eq!(paced().await.unwrap() - t0, ms(200));
            }
        }
    }
    assert!(cut >= 3, "{cut}");
}

// ---------------------------------------------------------------- inline breaker

#[resilient(
    circuit_breaker(failure_threshold = 1, open_for = "1s", half_open_probes = 1),
    concurrency = 1,
    timeout = "1s",
    max_attempts = 1,
    budget = "off"
)]
async fn probed(fail: bool) -> Result<(), TestError> {
    for _ in 0..3 {
        sleep(ms(5)).await;
    }
    if fail { Err(TestError::Io) } else { Ok(()) }
}

#[tokio::test(start_paused = true)]
async fn inline_breaker_probe_sweep() {
    let mut cut = 0;
    for polls in 1..=8 {
        // Trip it, and wait until it lets a probe through.
        assert_eq!(probed(true).await, Err(TestError::Io));
        assert!(matches!(probed(false).await, Err(TestError::Open(_))));
        advance(Duration::from_secs(1)).await;
        match poll_at_most(probed(false), polls, ms(3), |_| {}).await {
            Cut::Dropped => cut += 1,
            Cut::Finished(result) => assert_eq!(result, Ok(())),
        }
        // A leaked probe slot (or bulkhead permit) would reject this call.
        assert_eq!(
            probed(false).await,
            Ok(()),
            "probe slot or permit leaked after {polls} polls"
        );
        // Closed: a success now keeps it closed, one failure trips it again.
        assert_eq!(probed(false).await, Ok(()));
    }
    assert!(cut >= 4, "{cut}");
}

// ---------------------------------------------------------------- deadline

#[resilient(
    deadline = "100ms",
    concurrency = 1,
    max_attempts = 5,
    backoff = "fixed",
    base_delay = "10ms",
    jitter = "none",
    budget = "off"
)]
async fn bounded(calls: &AtomicU32) -> Result<u32, TestError> {
    let n = calls.fetch_add(1, SeqCst);
    sleep(ms(15)).await;
    if n % 2 == 0 {
        Err(TestError::Io)
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn deadline_and_concurrency_sweep() {
    let mut cut = 0;
    for polls in 1..=12 {
        // Cut in an attempt, in the backoff sleep or in the next attempt.
        let calls = AtomicU32::new(0);
        if let Cut::Dropped = poll_at_most(bounded(&calls), polls, ms(4), |_| {}).await {
            cut += 1;
        }
        // The permit is free and the deadline is this call's own: a failed
        // attempt, a 10 ms sleep and a successful one, 40 ms in all.
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        assert_eq!(bounded(&calls).await, Ok(1), "after {polls} polls");
        assert_eq!(start.elapsed(), ms(40), "after {polls} polls");
    }
    assert!(cut >= 9, "{cut}");
}

// ---------------------------------------------------------------- max_wait

#[resilient(concurrency = 1, max_wait = "150ms", max_attempts = 1, budget = "off")]
async fn gated(hold: u64) -> Result<Instant, TestError> {
    sleep(ms(hold)).await;
    Ok(Instant::now())
}

#[tokio::test(start_paused = true)]
async fn max_wait_sweep() {
    let (mut cut, mut admitted) = (0, 0);
    for polls in 1..=8 {
        // Another call holds the only permit for 100 ms; this one may wait
        // 150 ms for it (a timed wait: `acquire_timeout` under the hood).
        let holder = tokio::spawn(gated(100));
        tokio::task::yield_now().await;
        match poll_at_most(gated(0), polls, ms(20), |_| {}).await {
            Cut::Dropped => cut += 1,
            Cut::Finished(result) => {
                assert!(result.is_ok(), "{result:?}");
                admitted += 1;
            }
        }
        holder.await.unwrap().unwrap();
        // The permit is free: a call runs at once.
        let start = Instant::now();
        assert_eq!(gated(0).await, Ok(start), "permit lost after {polls} polls");
    }
    assert!(cut >= 5 && admitted >= 1, "cut {cut}, admitted {admitted}");
}

// ---------------------------------------------------------------- panics

/// Attempt 1 fails (a retryable error), attempt 2 panics.
fn fail_then_panic(calls: &AtomicU32) -> Result<(), TestError> {
    if calls.fetch_add(1, SeqCst) == 0 {
        Err(TestError::Io)
    } else {
        panic!("the body panicked")
    }
}

/// The primitives after a call whose attempt 1 failed and attempt 2
/// panicked: 2 permits free, 1 breaker failure counted (the panic counts
/// nothing), 2 rate tokens used, 1 retry withdrawn from a reserve of 10.
fn assert_consistent_after_panic(
    pool: &Bulkhead,
    breaker: &CircuitBreaker,
    limiter: &RateLimiter,
    budget: &RetryBudget,
) {
    assert_eq!(pool.available(), 2, "bulkhead permit lost");
    assert_eq!(breaker.state(), CircuitState::Closed);
    // Threshold 3, one failure recorded: two more trip it, not one.
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), CircuitState::Closed, "the panic counted");
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), CircuitState::Open, "a failure was lost");
    // 100 per hour, burst 100: the two attempts took two.
    assert!(limiter.try_acquire_n(98), "tokens lost");
    assert!(!limiter.try_acquire(), "tokens appeared");
    let left = (0..20).take_while(|_| budget.withdraw()).count();
    assert_eq!(left, 9, "budget: 10 in reserve, 1 retry taken");
}

static SYNC_POOL: Bulkhead = Bulkhead::new(2);
static SYNC_BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(3)
    .open_for(Duration::from_secs(3600));
static SYNC_LIMIT: RateLimiter = RateLimiter::per_hour(100);
// No share of calls, only a reserve of 1/s × 10 s: 10 retries.
static SYNC_BUDGET: RetryBudget = RetryBudget::new().ratio(0.0).min_per_second(1);

#[resilient(concurrency = &SYNC_POOL, circuit_breaker = &SYNC_BREAKER, rate_limit = &SYNC_LIMIT,
            budget = &SYNC_BUDGET, max_attempts = 3, backoff = "none")]
fn sync_panics(calls: &AtomicU32) -> Result<(), TestError> {
    fail_then_panic(calls)
}

#[test]
fn a_panicking_sync_body_leaves_everything_consistent() {
    let calls = AtomicU32::new(0);
    assert!(catch_unwind(|| sync_panics(&calls)).is_err());
    assert_eq!(calls.load(SeqCst), 2);
    assert_consistent_after_panic(&SYNC_POOL, &SYNC_BREAKER, &SYNC_LIMIT, &SYNC_BUDGET);
}

static PROBE_BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(1)
    .open_for(Duration::ZERO);

#[resilient(circuit_breaker = &PROBE_BREAKER, max_attempts = 1, budget = "off")]
fn probe_panics() -> Result<(), TestError> {
    panic!("the probe panicked")
}

#[resilient(circuit_breaker = &PROBE_BREAKER, max_attempts = 1, budget = "off",
            retry_if = |_: &TestError| panic!("the classifier panicked"))]
fn classifier_panics() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[test]
fn a_panicking_probe_frees_its_slot() {
    type Call = fn() -> Result<(), TestError>;
    let cases: [(&str, Call); 2] = [("body", probe_panics), ("retry_if", classifier_panics)];
    for (what, call) in cases {
        PROBE_BREAKER.force_open_for(std::time::Duration::ZERO);
        // open_for is zero: the call is the half-open breaker's only probe.
        assert!(catch_unwind(call).is_err());
        assert_eq!(PROBE_BREAKER.state(), CircuitState::HalfOpen, "{what}");
        let probe = PROBE_BREAKER
            .try_acquire()
            .unwrap_or_else(|_| panic!("a panic in the {what} kept the probe slot"));
        assert!(probe.is_probe());
        probe.success();
        assert_eq!(PROBE_BREAKER.state(), CircuitState::Closed, "{what}");
    }
}

static ASYNC_POOL: Bulkhead = Bulkhead::new(2);
static ASYNC_BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(3)
    .open_for(Duration::from_secs(3600));
static ASYNC_LIMIT: RateLimiter = RateLimiter::per_hour(100);
static ASYNC_BUDGET: RetryBudget = RetryBudget::new().ratio(0.0).min_per_second(1);
static ASYNC_CALLS: AtomicU32 = AtomicU32::new(0);

#[resilient(concurrency = &ASYNC_POOL, circuit_breaker = &ASYNC_BREAKER, rate_limit = &ASYNC_LIMIT,
            budget = &ASYNC_BUDGET, max_attempts = 3, backoff = "fixed", base_delay = "10ms",
            jitter = "none", timeout = "1s")]
async fn async_panics() -> Result<(), TestError> {
    sleep(ms(5)).await;
    fail_then_panic(&ASYNC_CALLS)
}

static ASYNC_PROBE_BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(1)
    .open_for(Duration::ZERO);

#[resilient(circuit_breaker = &ASYNC_PROBE_BREAKER, concurrency = &ASYNC_POOL,
            max_attempts = 1, budget = "off")]
async fn async_probe_panics() -> Result<(), TestError> {
    sleep(ms(5)).await;
    panic!("the probe panicked")
}

#[tokio::test(start_paused = true)]
async fn a_panicking_async_body_leaves_everything_consistent() {
    let joined = tokio::spawn(async_panics()).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(ASYNC_CALLS.load(SeqCst), 2);
    assert_consistent_after_panic(&ASYNC_POOL, &ASYNC_BREAKER, &ASYNC_LIMIT, &ASYNC_BUDGET);

    ASYNC_PROBE_BREAKER.force_open_for(std::time::Duration::ZERO);
    let joined = tokio::spawn(async_probe_panics()).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(ASYNC_POOL.available(), 2);
    assert_eq!(ASYNC_PROBE_BREAKER.state(), CircuitState::HalfOpen);
    let probe = ASYNC_PROBE_BREAKER
        .try_acquire()
        .expect("the panicking probe kept its slot");
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(ASYNC_PROBE_BREAKER.state(), CircuitState::Closed);
}
