//! Shared backpressure: a `Retry-After` hint heard by one call pauses every
//! caller of a rate limiter built with `pause_on_retry_after`, capped, and
//! nothing else pauses anyone.
//!
//! Each test drives 20 concurrent callers of one partner whose quota is
//! shared. The partner is a log of when each request was sent, on tokio's
//! paused clock, and answers the first request with "busy, retry in ...".

mod support;

use std::sync::Mutex;
use std::time::Duration;

use steadfast::{RateLimiter, resilient};
use support::{TestError, ms};
use tokio::time::Instant;

const CALLERS: usize = 20;

/// The partner: records each request's send time; the first is refused
/// with `answer`.
struct Partner {
    start: Instant,
    answer: TestError,
    sent: Mutex<Vec<Duration>>,
}

impl Partner {
    fn new(answer: TestError) -> Self {
        Partner {
            start: Instant::now(),
            answer,
            sent: Mutex::new(Vec::new()),
        }
    }

    fn request(&self) -> Result<(), TestError> {
        let mut sent = self.sent.lock().unwrap();
        sent.push(self.start.elapsed());
        if sent.len() == 1 {
            Err(self.answer.clone())
        } else {
            Ok(())
        }
    }

    /// Send times after the refused first request, in order.
    fn later_sends(&self) -> Vec<Duration> {
        let mut sent = self.sent.lock().unwrap().clone();
        sent.sort();
        sent.split_off(1)
    }
}

fn suggested(error: &TestError) -> Option<Duration> {
    match error {
        TestError::Busy { retry_in } => *retry_in,
        _ => None,
    }
}

/// Calls the partner from `CALLERS` tasks at once through `call`; returns
/// every caller's result.
async fn crowd(
    partner: &'static Partner,
    call: fn(&'static Partner) -> tokio::task::JoinHandle<Result<(), TestError>>,
) -> Vec<Result<(), TestError>> {
    let tasks: Vec<_> = (0..CALLERS).map(|_| call(partner)).collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

fn busy(retry_in: Option<Duration>) -> &'static Partner {
    Box::leak(Box::new(Partner::new(TestError::Busy { retry_in })))
}

static PAUSING: RateLimiter = RateLimiter::per_second(100)
    .burst(10)
    .pause_on_retry_after(Duration::from_secs(5));

#[resilient(rate_limit = &PAUSING, retry_after = suggested, budget = "off")]
async fn through_pausing(partner: &Partner) -> Result<(), TestError> {
    partner.request()
}

#[tokio::test(start_paused = true)]
async fn one_hint_pauses_every_caller_until_the_hinted_time() {
    let partner = busy(Some(ms(2_000)));
    let results = crowd(partner, |p| tokio::spawn(through_pausing(p))).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let later = partner.later_sends();
    assert_eq!(
        later.len(),
        CALLERS,
        "each caller sent once more, none was lost"
    );
    assert!(
        later[0] >= ms(2_000),
        "no caller sharing the limiter sent during the pause: {later:?}"
    );
    // After the pause, tokens come at the rate (10 ms apart), not at once.
    assert_eq!(later[0], ms(2_000));
    assert_eq!(
        later[CALLERS - 1],
        ms(2_000) + ms(10) * (CALLERS as u32 - 1)
    );
}

static NOT_PAUSING: RateLimiter = RateLimiter::per_second(100).burst(10);

#[resilient(rate_limit = &NOT_PAUSING, retry_after = suggested, budget = "off")]
async fn through_not_pausing(partner: &Partner) -> Result<(), TestError> {
    partner.request()
}

#[tokio::test(start_paused = true)]
async fn without_the_option_a_hint_delays_only_its_own_call() {
    let partner = busy(Some(ms(2_000)));
    let results = crowd(partner, |p| tokio::spawn(through_not_pausing(p))).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let later = partner.later_sends();
    assert_eq!(
        later[..9],
        [ms(0); 9],
        "the burst's other nine go at once: {later:?}"
    );
    // Only the caller that heard the hint waits for it.
    assert_eq!(later.iter().filter(|&&t| t >= ms(2_000)).count(), 1);
}

static PAUSING_TOO: RateLimiter = RateLimiter::per_second(100)
    .burst(10)
    .pause_on_retry_after(Duration::from_secs(5));

#[resilient(rate_limit = &PAUSING_TOO, retry_after = suggested, budget = "off")]
async fn through_pausing_too(partner: &Partner) -> Result<(), TestError> {
    partner.request()
}

#[tokio::test(start_paused = true)]
async fn an_error_without_a_hint_pauses_no_one() {
    let partner = busy(None);
    let results = crowd(partner, |p| tokio::spawn(through_pausing_too(p))).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let later = partner.later_sends();
    assert_eq!(later[0], ms(0), "no hint, no pause: {later:?}");
    assert!(later.iter().all(|&t| t < ms(2_000)));
}

static FORBIDDING: RateLimiter = RateLimiter::per_second(100)
    .burst(10)
    .pause_on_retry_after(Duration::from_secs(5));

#[resilient(rate_limit = &FORBIDDING, retry_after = suggested, budget = "off")]
async fn through_forbidding(partner: &Partner) -> Result<(), TestError> {
    partner.request()
}

#[tokio::test(start_paused = true)]
async fn a_do_not_retry_ends_its_call_and_pauses_no_one() {
    // `Duration::MAX`: how a gRPC "do not retry" (negative pushback) reads.
    let partner = busy(Some(Duration::MAX));
    let results = crowd(partner, |p| tokio::spawn(through_forbidding(p))).await;

    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    let later = partner.later_sends();
    assert_eq!(later.len(), CALLERS - 1);
    assert_eq!(later[0], ms(0), "it speaks of one call, not the quota");
    // The burst's other nine went at once; the ten behind them get a token
    // every 10 ms, unpaused.
    assert_eq!(later[CALLERS - 2], ms(100), "{later:?}");
}

static CAPPED: RateLimiter = RateLimiter::per_second(100)
    .burst(10)
    .pause_on_retry_after(Duration::from_secs(5));

#[resilient(rate_limit = &CAPPED, retry_after = suggested, budget = "off")]
async fn through_capped(partner: &Partner) -> Result<(), TestError> {
    partner.request()
}

#[tokio::test(start_paused = true)]
async fn a_long_hint_pauses_the_others_only_up_to_the_cap() {
    // An hour: longer than `max_delay`, so the call that heard it gives up
    // (the server said not before then), and longer than the limiter's cap.
    let partner = busy(Some(Duration::from_secs(3_600)));
    let results = crowd(partner, |p| tokio::spawn(through_capped(p))).await;

    let gave_up = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(gave_up, 1, "only the call that heard the hour gives up");
    let later = partner.later_sends();
    assert_eq!(later.len(), CALLERS - 1);
    assert_eq!(
        later[0],
        ms(5_000),
        "the others resume at the cap: {later:?}"
    );
}

// About 585 years: more nanoseconds than a `u64` holds, which wrapped
// around would be a cap of 290 ms.
static UNCAPPED: RateLimiter = RateLimiter::per_second(100)
    .burst(10)
    .pause_on_retry_after(Duration::from_secs(18_446_744_074));

#[resilient(rate_limit = &UNCAPPED, retry_after = suggested, budget = "off")]
async fn through_uncapped(partner: &Partner) -> Result<(), TestError> {
    partner.request()
}

#[tokio::test(start_paused = true)]
async fn a_cap_longer_than_nanoseconds_can_count_is_no_cap() {
    let partner = busy(Some(ms(2_000)));
    let results = crowd(partner, |p| tokio::spawn(through_uncapped(p))).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let later = partner.later_sends();
    assert_eq!(
        later[0],
        ms(2_000),
        "the whole hint is the pause: {later:?}"
    );
}

static WAITING: RateLimiter = RateLimiter::per_second(100)
    .burst(10)
    .pause_on_retry_after(Duration::from_secs(5));

#[resilient(rate_limit = &WAITING, max_wait = "500ms", retry_after = suggested,
            max_attempts = 1, budget = "off")]
async fn through_waiting(partner: &Partner) -> Result<(), TestError> {
    partner.request()
}

#[tokio::test(start_paused = true)]
async fn callers_that_cannot_wait_out_the_pause_are_refused_at_once() {
    let partner = busy(Some(ms(2_000)));
    let start = Instant::now();
    let results = crowd(partner, |p| tokio::spawn(through_waiting(p))).await;

    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(TestError::Rejected(_))))
        .count();
    assert_eq!(refused, CALLERS - 1, "{results:?}");
    assert_eq!(start.elapsed(), ms(0), "a refusal does not sleep first");
    assert!(partner.later_sends().is_empty());
}
