//! `hedge(..)` at the attribute and `retry!` doors, on tokio's paused
//! clock: each rule of a hedged call (`retry-runtime/tests/hedge.rs` holds
//! them for `Policy`), as a function's callers see it. Each test has a
//! function of its own: a site's hedge budget and latency estimate are its
//! own, shared by its callers.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use steadfast::{Attempt, Hedge, RetryBudget, resilient, retry};
use support::TestError;
use tokio::time::{Instant, sleep};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the body saw: each attempt's number, whether it was a hedge, when
/// it started (ms after the log was made), and whether it ran to its end or
/// was dropped.
struct Log {
    origin: Instant,
    seen: Mutex<Vec<(u32, bool, u64, bool)>>,
}

impl Log {
    fn new() -> Self {
        Log {
            origin: Instant::now(),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// One attempt that takes `took` ms and returns `result`.
    async fn attempt<T>(
        &self,
        a: Attempt,
        took: u64,
        result: Result<T, TestError>,
    ) -> Result<T, TestError> {
        let index = {
            let mut seen = self.seen.lock().unwrap();
            let at = self.origin.elapsed().as_millis() as u64;
            seen.push((a.number(), a.is_hedge(), at, false));
            seen.len() - 1
        };
        sleep(ms(took)).await;
        self.seen.lock().unwrap()[index].3 = true;
        result
    }

    fn seen(&self) -> Vec<(u32, bool, u64, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Attempt `n` takes `plan[n - 1].0` ms and returns `plan[n - 1].1`.
type Plan = [(u64, Result<u32, TestError>)];

/// A call whose first attempt succeeds at once.
const QUICK: &Plan = &[(0, Ok(0))];

/// `n` quick calls of a site, so that its hedge budget has `n ×
/// max_extra_load` hedges to give.
async fn warm<F: Future<Output = Result<u32, TestError>>>(
    n: u32,
    call: impl Fn(&'static Log) -> F,
) {
    let log = Box::leak(Box::new(Log::new()));
    for _ in 0..n {
        call(log).await.unwrap();
    }
}

#[resilient(
    hedge(after = "10ms", max_hedges = 2, max_extra_load = 1.0),
    budget = "off",
    attempt = attempt
)]
async fn wins(key: &str, log: &Log, plan: &Plan) -> Result<u32, TestError> {
    assert_eq!(key, "k", "every attempt borrows the arguments");
    let (took, result) = plan[attempt.number() as usize - 1].clone();
    log.attempt(attempt, took, result).await
}

#[tokio::test(start_paused = true)]
async fn the_first_success_wins_and_the_losers_are_dropped() {
    warm(10, |log| wins("k", log, QUICK)).await;
    let log = Log::new();
    // The first attempt stalls, the first hedge is slow, the second quick.
    let plan = [(1000, Ok(1)), (50, Ok(2)), (5, Ok(3))];
    assert_eq!(wins("k", &log, &plan).await, Ok(3));
    assert_eq!(
        log.origin.elapsed(),
        ms(25),
        "the second hedge, sent at 20 ms"
    );
    assert_eq!(
        log.seen(),
        [
            (1, false, 0, false),
            (2, true, 10, false),
            (3, true, 20, true)
        ],
        "the losers were dropped when the winner answered"
    );
}

#[resilient(
    hedge(after = "10ms", max_extra_load = 1.0),
    retry_on = [Io],
    budget = "off",
    attempt = attempt
)]
async fn fatal(log: &Log, plan: &Plan) -> Result<u32, TestError> {
    let (took, result) = plan[attempt.number() as usize - 1].clone();
    log.attempt(attempt, took, result).await
}

#[tokio::test(start_paused = true)]
async fn an_error_not_retried_ends_the_call_and_cancels_the_others() {
    let log = Log::new();
    let plan = [(1000, Ok(1)), (5, Err(TestError::Fatal("gone")))];
    assert_eq!(fatal(&log, &plan).await, Err(TestError::Fatal("gone")));
    assert_eq!(log.origin.elapsed(), ms(15));
    assert_eq!(log.seen(), [(1, false, 0, false), (2, true, 10, true)]);
}

#[resilient(
    hedge(after = "100ms", max_hedges = 2, max_extra_load = 1.0),
    base_delay = "100ms",
    backoff = "fixed",
    jitter = "none",
    budget = "off",
    attempt = attempt
)]
async fn busy(log: &Log, plan: &Plan) -> Result<u32, TestError> {
    let (took, result) = plan[attempt.number() as usize - 1].clone();
    log.attempt(attempt, took, result).await
}

#[tokio::test(start_paused = true)]
async fn a_retried_error_sends_the_next_hedge_at_once_and_a_failed_round_is_retried() {
    warm(10, |log| busy(log, QUICK)).await;
    let log = Log::new();
    let plan = [
        (150, Err(TestError::Io)),
        (5, Err(TestError::Io)),
        (20, Err(TestError::Io)),
        (1, Ok(4)),
    ];
    assert_eq!(busy(&log, &plan).await, Ok(4));
    assert_eq!(
        log.seen(),
        [
            (1, false, 0, true),
            (2, true, 100, true),
            // At once when the first hedge failed, not 100 ms later.
            (3, true, 105, true),
            // The round failed at 150 ms: the retry, after the backoff.
            (4, false, 250, true),
        ]
    );
}

static EMPTY: RetryBudget = RetryBudget::new().min_per_second(0).ratio(0.0);

#[resilient(hedge(after = "10ms", max_extra_load = 0.5), budget = "off", attempt = attempt)]
async fn half_a_hedge(log: &Log) -> Result<u32, TestError> {
    let took = if attempt.is_hedge() { 5 } else { 100 };
    log.attempt(attempt, took, Ok(attempt.number())).await
}

#[resilient(hedge(after = "10ms", max_extra_load = 1.0), budget = &EMPTY, attempt = attempt)]
async fn no_retries_left(log: &Log) -> Result<u32, TestError> {
    let took = if attempt.is_hedge() { 5 } else { 100 };
    log.attempt(attempt, took, Ok(attempt.number())).await
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_hedge_budget_or_the_retry_budget_is_empty() {
    let log = Log::new();
    // Half a hedge after one call; the retry budget never has one.
    assert_eq!(half_a_hedge(&log).await, Ok(1));
    assert_eq!(no_retries_left(&log).await, Ok(1));
    assert_eq!(log.seen(), [(1, false, 0, true), (1, false, 100, true)]);
    let log = Log::new();
    assert_eq!(
        half_a_hedge(&log).await,
        Ok(2),
        "the second call's hedge won"
    );
    assert_eq!(log.seen(), [(1, false, 0, false), (2, true, 10, true)]);
}

fn hint(error: &TestError) -> Option<Duration> {
    match error {
        TestError::Busy { retry_in } => *retry_in,
        _ => None,
    }
}

#[resilient(
    hedge(after = "10ms", max_hedges = 3, max_extra_load = 1.0),
    retry_after = hint,
    base_delay = "100ms",
    backoff = "fixed",
    jitter = "none",
    budget = "off",
    attempt = attempt
)]
async fn pushed_back(log: &Log, plan: &Plan) -> Result<u32, TestError> {
    let (took, result) = plan[attempt.number() as usize - 1].clone();
    log.attempt(attempt, took, result).await
}

#[tokio::test(start_paused = true)]
async fn a_pushback_stops_the_hedges() {
    warm(10, |log| pushed_back(log, QUICK)).await;
    let log = Log::new();
    let pause = TestError::Busy {
        retry_in: Some(ms(200)),
    };
    let plan = [(30, Err(TestError::Io)), (5, Err(pause)), (1, Ok(3))];
    assert_eq!(pushed_back(&log, &plan).await, Ok(3));
    // No hedge at 20 ms after the pushback at 15, nor when the first
    // attempt fails at 30: the round fails, and is retried after the
    // backoff (its last failure brought no hint).
    assert_eq!(
        log.seen(),
        [
            (1, false, 0, true),
            (2, true, 10, true),
            (3, false, 130, true)
        ]
    );
}

#[resilient(
    hedge(after = "10ms", max_hedges = 3, max_extra_load = 1.0),
    deadline = "100ms",
    budget = "off",
    attempt = attempt
)]
async fn stalls(log: &Log, took: u64) -> Result<u32, TestError> {
    log.attempt(attempt, took, Ok(attempt.number())).await
}

#[tokio::test(start_paused = true)]
async fn the_deadline_covers_every_attempt() {
    warm(10, |log| stalls(log, 0)).await;
    let log = Log::new();
    let result = stalls(&log, 1000).await;
    assert!(matches!(result, Err(TestError::Timeout(_))), "{result:?}");
    assert_eq!(log.origin.elapsed(), ms(100));
    assert_eq!(
        log.seen(),
        [
            (1, false, 0, false),
            (2, true, 10, false),
            (3, true, 20, false),
            (4, true, 30, false),
        ]
    );
}

#[resilient(hedge(after = "p50", max_extra_load = 1.0), budget = "off", attempt = attempt)]
async fn learns(log: &Log, took: u64) -> Result<u32, TestError> {
    let took = if attempt.is_hedge() { 1 } else { took };
    log.attempt(attempt, took, Ok(attempt.number())).await
}

#[tokio::test(start_paused = true)]
async fn the_delay_follows_the_sites_latency_quantile() {
    // No hedge before the median has 20 samples; the next call hedges.
    for n in 0..20u64 {
        let log = Log::new();
        learns(&log, if n == 19 { 1000 } else { 10 + n % 2 })
            .await
            .unwrap();
        assert_eq!(log.seen().len(), 1, "call {n} hedged");
    }
    let log = Log::new();
    assert_eq!(learns(&log, 1000).await, Ok(2), "the hedge answered first");
    // The median, 10 to 11 ms (within its bucket's 1/16), on the timer's
    // next whole millisecond.
    let hedge = log.seen()[1];
    assert!(hedge.1 && (10..=12).contains(&hedge.2), "{hedge:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_block_hedges_too() {
    let log = &Log::new();
    let key = String::from("k");
    let result =
        retry!(hedge(after = "10ms", max_extra_load = 1.0), budget = "off", attempt = a; async {
            let took = if a.is_hedge() { 5 } else { 1000 };
            log.attempt(a, took, Ok(key.len() as u32 + a.number())).await
        })
        .await;
    // The first call has one hedge to give.
    assert_eq!(result, Ok(3));
    assert_eq!(log.seen(), [(1, false, 0, false), (2, true, 10, true)]);
}

/// One `Hedge` for two functions: their calls pay into one budget.
static SHARED: Hedge = Hedge::after(ms(10)).max_extra_load(0.5);

#[resilient(hedge = &SHARED, budget = "off", attempt = attempt)]
async fn shares_one(log: &Log) -> Result<u32, TestError> {
    let took = if attempt.is_hedge() { 5 } else { 100 };
    log.attempt(attempt, took, Ok(attempt.number())).await
}

#[resilient(hedge = &SHARED, budget = "off", attempt = attempt)]
async fn shares_two(log: &Log) -> Result<u32, TestError> {
    let took = if attempt.is_hedge() { 5 } else { 100 };
    log.attempt(attempt, took, Ok(attempt.number())).await
}

#[tokio::test(start_paused = true)]
async fn a_shared_hedge_spends_one_budget_for_its_sites() {
    // Half a hedge each: the first site's call alone pays for none, the
    // second site's call makes it one, which the second site spends.
    let log = Log::new();
    assert_eq!(shares_one(&log).await, Ok(1));
    assert_eq!(shares_two(&log).await, Ok(2));
    assert_eq!(
        log.seen(),
        [
            (1, false, 0, true),
            (1, false, 100, false),
            (2, true, 110, true)
        ]
    );
    assert_eq!((SHARED.sent(), SHARED.won(), SHARED.refused()), (1, 1, 1));
}
