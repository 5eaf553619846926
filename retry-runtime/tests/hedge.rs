//! `Policy::hedge` on tokio's paused clock: each rule of a hedged call, as
//! the body sees it (which attempts ran, when, which were dropped).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use retry_runtime::{
    Attempt, Backoff, Bulkhead, CircuitBreaker, CircuitOpen, CircuitState, Elapsed, Hedge, Policy,
    RateLimiter, Rejected, RetryBudget,
};
use tokio::time::{Instant, sleep};

#[derive(Debug, Clone, PartialEq)]
enum Error {
    /// Worth retrying.
    Busy,
    /// Worth retrying, after the server's pause.
    Pushback(Duration),
    /// Not worth retrying.
    Fatal,
    TimedOut,
    Open,
    Refused,
}

impl From<Rejected> for Error {
    fn from(_: Rejected) -> Self {
        Error::Refused
    }
}

impl From<CircuitOpen> for Error {
    fn from(_: CircuitOpen) -> Self {
        Error::Open
    }
}

impl From<Elapsed> for Error {
    fn from(_: Elapsed) -> Self {
        Error::TimedOut
    }
}

fn retryable(error: &Error) -> bool {
    !matches!(error, Error::Fatal)
}

fn pushback(error: &Error) -> Option<Duration> {
    match error {
        Error::Pushback(pause) => Some(*pause),
        _ => None,
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A policy leaked for `retry`'s `&'static self`: a fixed delay of 10 ms,
/// a budget that never refuses, no backoff jitter.
fn policy(hedge: Hedge) -> &'static Policy<Error> {
    leak(base().hedge(hedge))
}

fn base() -> Policy<Error> {
    Policy::new()
        .retry_if(retryable)
        .retry_after(pushback)
        .backoff(Backoff::fixed(ms(100)).jitter(retry_runtime::Jitter::None))
        .no_budget()
}

fn leak(policy: Policy<Error>) -> &'static Policy<Error> {
    Box::leak(Box::new(policy))
}

/// `n` quick calls, so that the hedge budget (`max_extra_load` per call)
/// has `n × max_extra_load` hedges to give.
async fn warm(policy: &'static Policy<Error>, n: u32) {
    for _ in 0..n {
        policy.retry(|_| async { Ok(()) }).await.unwrap();
    }
}

/// What the body saw: each attempt's number, whether it was a hedge, when
/// it started, and whether it ran to its end or was dropped.
#[derive(Default)]
struct Log {
    attempts: Mutex<Vec<Seen>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    number: u32,
    hedge: bool,
    retry: bool,
    at: Duration,
    finished: bool,
}

impl Log {
    /// Runs one attempt that takes `took` and returns `result`, logging it;
    /// an attempt dropped before its end is logged as not finished.
    async fn attempt<T>(
        &self,
        origin: Instant,
        a: Attempt,
        took: Duration,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let index = {
            let mut attempts = self.attempts.lock().unwrap();
            attempts.push(Seen {
                number: a.number(),
                hedge: a.is_hedge(),
                retry: a.is_retry(),
                at: origin.elapsed(),
                finished: false,
            });
            attempts.len() - 1
        };
        sleep(took).await;
        self.attempts.lock().unwrap()[index].finished = true;
        result
    }

    fn seen(&self) -> Vec<Seen> {
        self.attempts.lock().unwrap().clone()
    }
}

/// Calls `policy` with attempts that each take 100 ms and answer their
/// number: the call's result, and what its attempts saw.
async fn each_taking_100ms(policy: &'static Policy<Error>) -> (Result<u32, Error>, Vec<Seen>) {
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(100), Ok(a.number())))
        .await;
    (result, log.seen())
}

fn seen(number: u32, hedge: bool, retry: bool, at: u64, finished: bool) -> Seen {
    Seen {
        number,
        hedge,
        retry,
        at: ms(at),
        finished,
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_success_wins_and_the_others_are_dropped() {
    let policy = policy(Hedge::after(ms(10)).max_hedges(2).max_extra_load(1.0));
    warm(policy, 10).await;
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| {
            // The first attempt stalls, the first hedge is slow, the second
            // is quick.
            let took = [ms(1000), ms(50), ms(5)][a.number() as usize - 1];
            log.attempt(origin, a, took, Ok(a.number()))
        })
        .await;
    assert_eq!(result, Ok(3));
    assert_eq!(
        origin.elapsed(),
        ms(25),
        "the second hedge, sent at 20 ms, answered at 25 ms"
    );
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, false),
            seen(2, true, false, 10, false),
            seen(3, true, false, 20, true),
        ],
        "the losers were dropped when the winner answered"
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_attempt_answering_in_time_sends_no_hedge() {
    let policy = policy(Hedge::after(ms(10)).max_extra_load(1.0));
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(9), Ok(())))
        .await;
    assert_eq!(result, Ok(()));
    assert_eq!(log.seen(), [seen(1, false, false, 0, true)]);
    let hedge = policy.hedging().unwrap();
    assert_eq!((hedge.sent(), hedge.won(), hedge.refused()), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn an_error_not_retried_ends_the_call_and_drops_the_others() {
    let policy = policy(Hedge::after(ms(10)).max_extra_load(1.0));
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| {
            let (took, result) = if a.is_hedge() {
                (ms(5), Err(Error::Fatal))
            } else {
                (ms(1000), Ok(()))
            };
            log.attempt(origin, a, took, result)
        })
        .await;
    assert_eq!(result, Err(Error::Fatal));
    assert_eq!(origin.elapsed(), ms(15));
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, false),
            seen(2, true, false, 10, true)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_that_would_be_retried_sends_the_next_hedge_at_once() {
    let policy = policy(Hedge::after(ms(100)).max_hedges(2).max_extra_load(1.0));
    warm(policy, 10).await;
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| {
            let (took, result) = match a.number() {
                1 => (ms(1000), Ok(1)),
                2 => (ms(5), Err(Error::Busy)),
                _ => (ms(20), Ok(3)),
            };
            log.attempt(origin, a, took, result)
        })
        .await;
    assert_eq!(result, Ok(3));
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, false),
            seen(2, true, false, 100, true),
            seen(3, true, false, 105, true),
        ],
        "the second hedge did not wait for the delay"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pushback_hint_stops_the_hedges_and_the_round_retries_after_it() {
    let policy = policy(Hedge::after(ms(10)).max_hedges(3).max_extra_load(1.0));
    warm(policy, 10).await;
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| {
            let (took, result) = match a.number() {
                1 => (ms(30), Err(Error::Busy)),
                2 => (ms(5), Err(Error::Pushback(ms(200)))),
                _ => (ms(1), Ok(a.number())),
            };
            log.attempt(origin, a, took, result)
        })
        .await;
    // The hedge's pushback at 15 ms: no hedge at 20 ms, nor when the first
    // attempt fails at 30 ms. The round has failed; its last failure, which
    // brought no hint, decides the retry: the backoff's 100 ms.
    assert_eq!(result, Ok(3));
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, true),
            seen(2, true, false, 10, true),
            seen(3, false, true, 130, true),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_pushback_on_the_only_attempt_ends_the_round_with_its_hint() {
    let policy = policy(Hedge::after(ms(10)).max_extra_load(1.0));
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| {
            let result = if a.number() == 1 {
                Err(Error::Pushback(ms(300)))
            } else {
                Ok(())
            };
            log.attempt(origin, a, ms(5), result)
        })
        .await;
    assert_eq!(result, Ok(()));
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, true),
            seen(2, false, true, 305, true)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_covers_every_attempt() {
    let policy = leak(
        base()
            .deadline(ms(25))
            .hedge(Hedge::after(ms(10)).max_hedges(3).max_extra_load(1.0)),
    );
    warm(policy, 10).await;
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(1000), Ok(())))
        .await;
    // Every attempt is cancelled at 25 ms; the first one's timing out there
    // sends no hedge past the deadline, though the round had one left.
    assert_eq!(result, Err(Error::TimedOut));
    assert_eq!(origin.elapsed(), ms(25));
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, false),
            seen(2, true, false, 10, false),
            seen(3, true, false, 20, false),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn each_hedge_has_its_own_timeout_and_retries_follow_a_failed_round() {
    let policy = leak(
        base()
            .timeout(ms(30))
            .max_attempts(2)
            .hedge(Hedge::after(ms(10)).max_extra_load(1.0)),
    );
    warm(policy, 10).await;
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(1000), Ok(())))
        .await;
    // Round 1: the first attempt times out at 30 ms (its hedge, at 10 ms,
    // at 40 ms); the retry after 100 ms, at 140 ms, and its hedge at 150
    // ms, time out at 170 and 180 ms: two rounds, the call's attempts.
    assert_eq!(result, Err(Error::TimedOut));
    assert_eq!(origin.elapsed(), ms(180));
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, false),
            seen(2, true, false, 10, false),
            seen(3, false, true, 140, false),
            seen(4, true, false, 150, false),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_hedge_budget_is_empty() {
    // A tenth of a hedge per call: 10 calls pay for one.
    let policy = policy(Hedge::after(ms(10)).max_extra_load(0.1));
    let hedges = AtomicU32::new(0);
    for _ in 0..20 {
        let result = policy
            .retry(|a| {
                hedges.fetch_add(u32::from(a.is_hedge()), Ordering::Relaxed);
                async move {
                    sleep(ms(50)).await;
                    Ok::<_, Error>(())
                }
            })
            .await;
        assert_eq!(result, Ok(()));
    }
    assert_eq!(hedges.load(Ordering::Relaxed), 2, "20 slow calls, 2 hedges");
    let hedge = policy.hedging().unwrap();
    assert_eq!((hedge.sent(), hedge.refused(), hedge.won()), (2, 18, 0));
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_retry_budget_is_empty() {
    static EMPTY: RetryBudget = RetryBudget::new().min_per_second(0).ratio(0.0);
    let policy = leak(
        base()
            .budget(&EMPTY)
            .hedge(Hedge::after(ms(10)).max_extra_load(1.0)),
    );
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(50), Ok(())))
        .await;
    assert_eq!(result, Ok(()));
    assert_eq!(log.seen(), [seen(1, false, false, 0, true)]);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_is_an_attempt_for_concurrency() {
    static ONE: Bulkhead = Bulkhead::new(1);
    let policy = leak(
        base()
            .concurrency(&ONE)
            .hedge(Hedge::after(ms(10)).max_extra_load(1.0)),
    );
    let (result, attempts) = each_taking_100ms(policy).await;
    // The hedge waited for the permit the first attempt held, and was
    // dropped when that attempt answered: its body never ran.
    assert_eq!(result, Ok(1));
    assert_eq!(attempts, [seen(1, false, false, 0, true)]);
    assert_eq!(ONE.available(), 1, "every permit returned");
}

/// The hedge delay counts from the first attempt's start: a call that
/// waited for its permit does not hedge sooner for having waited.
#[tokio::test(start_paused = true)]
async fn the_hedge_delay_counts_from_the_first_attempts_start() {
    static TWO: Bulkhead = Bulkhead::new(2);
    let policy = leak(
        base()
            .concurrency(&TWO)
            .hedge(Hedge::after(ms(50)).max_extra_load(1.0)),
    );
    // Both permits held: one until 40 ms, the other until 60 ms.
    for held in [ms(40), ms(60)] {
        let permit = TWO.acquire().await;
        tokio::spawn(async move {
            sleep(held).await;
            drop(permit);
        });
    }
    let (result, attempts) = each_taking_100ms(policy).await;
    // The first attempt starts at 40 ms; its hedge 50 ms later, with the
    // permit free since 60 ms, not at 60 ms (50 ms after the call began).
    assert_eq!(result, Ok(1));
    assert_eq!(
        attempts,
        [
            seen(1, false, false, 40, true),
            seen(2, true, false, 90, false)
        ]
    );
}

/// A hedge the protections refuse stops the round's hedging, but the round
/// goes on while one of its attempts runs, even when the first is over.
#[tokio::test(start_paused = true)]
async fn a_refused_hedge_leaves_the_hedges_running_to_answer() {
    static TWO: RateLimiter = RateLimiter::per_second(2).burst(2);
    let policy = leak(
        base()
            .rate_limit(&TWO)
            .max_wait(ms(1))
            .hedge(Hedge::after(ms(10)).max_hedges(2).max_extra_load(1.0)),
    );
    // Hedges paid for, and the bucket full again.
    warm(policy, 2).await;
    sleep(ms(1000)).await;
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| {
            // The first fails at 15 ms, which would send the second hedge
            // at once: the bucket's two tokens are spent, so it is refused.
            let (took, result) = match a.number() {
                1 => (ms(15), Err(Error::Busy)),
                _ => (ms(20), Ok(a.number())),
            };
            log.attempt(origin, a, took, result)
        })
        .await;
    assert_eq!(result, Ok(2), "the running hedge answered");
    assert_eq!(origin.elapsed(), ms(30));
    assert_eq!(
        log.seen(),
        [
            seen(1, false, false, 0, true),
            seen(2, true, false, 10, true)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_delay_follows_the_sites_latency_quantile() {
    let policy = policy(Hedge::after_quantile(0.5).max_extra_load(1.0));
    let hedged_at = Arc::new(Mutex::new(Vec::new()));
    let call = |took: Duration| {
        let hedged_at = hedged_at.clone();
        let origin = Instant::now();
        policy.retry(move |a| {
            if a.is_hedge() {
                hedged_at.lock().unwrap().push(origin.elapsed());
            }
            async move {
                sleep(if a.is_hedge() { ms(1) } else { took }).await;
                Ok::<_, Error>(())
            }
        })
    };
    // Too few samples (10 of the 20 a median needs): a slow call is not
    // hedged, before the estimate's refresh or after it.
    for _ in 0..10 {
        call(ms(10)).await.unwrap();
    }
    call(ms(500)).await.unwrap();
    sleep(ms(3000)).await;
    call(ms(500)).await.unwrap();
    assert!(
        hedged_at.lock().unwrap().is_empty(),
        "hedged with too few samples"
    );
    // Enough, and the estimate refreshed: the median, 10 ms (10.49 ms, the
    // top of its bucket, within 1/16), is the delay; tokio's timer fires
    // on the next whole millisecond.
    for _ in 0..20 {
        call(ms(10)).await.unwrap();
    }
    sleep(ms(3000)).await;
    call(ms(500)).await.unwrap();
    let at = hedged_at.lock().unwrap().clone();
    assert_eq!(at, [ms(11)]);
}

#[tokio::test(start_paused = true)]
async fn a_policy_without_hedge_never_runs_attempts_together() {
    let policy = leak(base());
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(1000), Ok(())))
        .await;
    assert_eq!(result, Ok(()));
    assert_eq!(log.seen(), [seen(1, false, false, 0, true)]);
}

#[tokio::test(start_paused = true)]
async fn only_a_calls_first_round_pays_into_the_hedge_budget() {
    // One call of three failed rounds pays for one hedge, not three.
    let policy = leak(
        base()
            .max_attempts(3)
            .backoff(Backoff::none())
            .hedge(Hedge::after(ms(10)).max_extra_load(1.0)),
    );
    let log = Log::default();
    let origin = Instant::now();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(20), Err::<(), _>(Error::Busy)))
        .await;
    assert_eq!(result, Err(Error::Busy));
    let hedges = log.seen().iter().filter(|s| s.hedge).count();
    assert_eq!((log.seen().len(), hedges), (4, 1), "{:?}", log.seen());
}

#[tokio::test(start_paused = true)]
async fn every_attempt_of_a_call_has_its_key() {
    let policy = policy(Hedge::after(ms(10)).max_hedges(2).max_extra_load(1.0));
    warm(policy, 10).await;
    let keys = Mutex::new(Vec::new());
    for _ in 0..2 {
        policy
            .retry(|a| {
                keys.lock().unwrap().push(a.key());
                async {
                    sleep(ms(100)).await;
                    Ok(())
                }
            })
            .await
            .unwrap();
    }
    let keys = keys.into_inner().unwrap();
    assert_eq!(keys.len(), 6, "three attempts a call");
    assert!(keys[..3].iter().all(|k| *k == keys[0]));
    assert!(keys[3..].iter().all(|k| *k == keys[3]));
    assert_ne!(keys[0], keys[3]);
    assert_ne!(keys[0].as_u128() as u64, 0, "a key was made");
}

#[tokio::test(start_paused = true)]
async fn a_hedge_failing_beside_another_attempt_counts_for_the_breaker() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().failure_threshold(2);
    let policy = leak(
        base()
            .max_attempts(1)
            .circuit_breaker(&BREAKER)
            .hedge(Hedge::after(ms(10)).max_extra_load(1.0)),
    );
    warm(policy, 1).await;
    // The first attempt fails at 30 ms while its hedge runs; the hedge
    // fails at 40 ms and ends the round: two failures.
    let origin = Instant::now();
    let log = Log::default();
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(30), Err::<(), _>(Error::Busy)))
        .await;
    assert_eq!(result, Err(Error::Busy));
    assert_eq!(log.seen().len(), 2);
    assert_eq!(BREAKER.state(), CircuitState::Open);
}

/// A limiter with one token an hour: the first attempt takes it, and a
/// hedge waiting at most 5 ms for the next is refused.
fn one_token() -> &'static RateLimiter {
    Box::leak(Box::new(RateLimiter::per_hour(1).burst(1)))
}

#[tokio::test(start_paused = true)]
async fn a_refused_hedge_leaves_the_attempt_beside_it_running() {
    let policy = leak(
        base()
            .rate_limit(one_token())
            .max_wait(ms(5))
            .hedge(Hedge::after(ms(10)).max_extra_load(1.0)),
    );
    let (result, attempts) = each_taking_100ms(policy).await;
    assert_eq!(result, Ok(1));
    assert_eq!(attempts, [seen(1, false, false, 0, true)]);
}

#[tokio::test(start_paused = true)]
async fn a_refused_hedge_with_nothing_beside_it_ends_the_call_as_a_refusal() {
    let policy = leak(
        base()
            .rate_limit(one_token())
            .max_wait(ms(5))
            .hedge(Hedge::after(ms(10)).max_extra_load(1.0)),
    );
    let log = Log::default();
    let origin = Instant::now();
    // The first attempt fails at 2 ms: the hedge it sends at once would
    // wait an hour for a token, more than `max_wait`, so it is refused at
    // once, and nothing of the round runs.
    let result = policy
        .retry(|a| log.attempt(origin, a, ms(2), Err::<(), _>(Error::Busy)))
        .await;
    assert_eq!(result, Err(Error::Refused));
    assert_eq!(origin.elapsed(), ms(2));
    assert_eq!(log.seen(), [seen(1, false, false, 0, true)]);
}
