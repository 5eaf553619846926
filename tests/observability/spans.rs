//! The `tracing` feature's spans: one `steadfast.call` span per call, one
//! `steadfast.attempt` span per attempt in it (hedges included), and each
//! event in the span it is about, at every door.
#![cfg(feature = "tracing")]

#[path = "../support/span_recorder.rs"]
mod span_recorder;
#[path = "../support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use span_recorder::{Call, Recorder};
use steadfast::{Hedge, Policy, resilient, retry};
use support::TestError;
use tokio::time::Instant;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const RETRYING: &str = "retrying after a failed attempt";
const GIVING_UP: &str = "giving up";
const BODY: &str = "body";

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Fails until it has been called `fail` times, with an event in the
/// body's span each time.
fn flaky(calls: &AtomicU32, fail: u32) -> Result<u32, TestError> {
    tracing::info!("body");
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n <= fail { Err(TestError::Io) } else { Ok(n) }
}

/// A call that failed twice and then succeeded: three attempts, the two
/// retries each in the attempt that failed, nothing in the call's span.
fn assert_twice_then_success(call: &Call) {
    assert_eq!(
        call.numbered(),
        pairs(&[("1", "false"), ("2", "false"), ("3", "false")]),
        "{call:#?}"
    );
    assert_eq!(
        call.per_attempt(),
        [vec![BODY, RETRYING], vec![BODY, RETRYING], vec![BODY]],
        "{call:#?}"
    );
    assert_eq!(call.library_attempts(RETRYING), ["1", "2"]);
    assert!(call.in_call().is_empty(), "{call:#?}");
}

#[resilient(
    name = "inventory.reserve",
    max_attempts = 3,
    backoff = "none",
    budget = "off"
)]
async fn reserve(calls: &AtomicU32, fail: u32) -> Result<u32, TestError> {
    let n = flaky(calls, fail)?;
    tokio::task::yield_now().await;
    Ok(n)
}

#[tokio::test]
async fn the_attribute_makes_one_call_span_and_a_span_per_attempt() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    assert_eq!(reserve(&calls, 2).await, Ok(3));
    let call = recorder.call();
    assert_eq!(
        call.field(call.call, "site"),
        Some("inventory.reserve"),
        "{call:#?}"
    );
    assert_twice_then_success(&call);
}

#[tokio::test]
async fn giving_up_is_reported_in_the_calls_span() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    assert_eq!(reserve(&calls, 5).await, Err(TestError::Io));
    let call = recorder.call();
    assert_eq!(
        call.per_attempt(),
        [vec![BODY, RETRYING], vec![BODY, RETRYING], vec![BODY]],
        "{call:#?}"
    );
    assert_eq!(call.in_call(), [GIVING_UP], "{call:#?}");
}

#[resilient(
    max_attempts = 2,
    backoff = "fixed",
    base_delay = "100ms",
    jitter = "none",
    budget = "off"
)]
async fn reserve_after_a_pause(calls: &AtomicU32) -> Result<u32, TestError> {
    flaky(calls, 1)
}

/// A trace shows how long each attempt took and, between two attempts'
/// spans, the backoff: an attempt's span closes when the attempt has
/// failed, not when the next one starts.
#[tokio::test(start_paused = true)]
async fn an_attempts_span_ends_before_the_backoff_after_it() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(reserve_after_a_pause(&calls).await, Ok(2));
    let call = recorder.call();
    let [first, second] = call.attempts[..] else {
        panic!("two attempt spans: {call:#?}");
    };
    assert_eq!(call.spans[first].closed, Some(start), "{call:#?}");
    assert_eq!(
        call.spans[second].opened,
        start + Duration::from_millis(100),
        "{call:#?}"
    );
}

#[resilient(max_attempts = 3, backoff = "none", budget = "off")]
fn reserve_blocking(calls: &AtomicU32) -> Result<u32, TestError> {
    flaky(calls, 2)
}

#[test]
fn a_plain_fn_makes_the_same_spans() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    assert_eq!(reserve_blocking(&calls), Ok(3));
    let call = recorder.call();
    assert!(
        call.field(call.call, "site")
            .is_some_and(|site| site.ends_with("::reserve_blocking")),
        "{call:#?}"
    );
    assert_twice_then_success(&call);
}

#[tokio::test]
async fn a_retry_block_makes_the_same_spans() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    let result = retry!(max_attempts = 3, backoff = "none", budget = "off"; async {
        let n = flaky(&calls, 2)?;
        tokio::task::yield_now().await;
        Ok::<_, TestError>(n)
    })
    .await;
    assert_eq!(result, Ok(3));
    assert_twice_then_success(&recorder.call());
}

#[test]
fn a_plain_retry_block_makes_the_same_spans() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    let result = retry!(max_attempts = 3, backoff = "none", budget = "off"; { flaky(&calls, 2) });
    assert_eq!(result, Ok(3));
    assert_twice_then_success(&recorder.call());
}

static POLICY: Policy<TestError> = Policy::new()
    .name("policy.reserve")
    .max_attempts(3)
    .backoff(steadfast::Backoff::none())
    .no_budget();

#[tokio::test]
async fn a_policy_makes_the_same_spans() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    let result = POLICY
        .retry(|attempt| {
            // The closure's own code runs in the attempt's span too.
            tracing::info!(number = attempt.number(), "closure");
            let n = flaky(&calls, 2);
            async move {
                tokio::task::yield_now().await;
                n
            }
        })
        .await;
    assert_eq!(result, Ok(3));
    let call = recorder.call();
    assert_eq!(call.field(call.call, "site"), Some("policy.reserve"));
    assert_eq!(
        call.per_attempt(),
        [
            vec!["closure", BODY, RETRYING],
            vec!["closure", BODY, RETRYING],
            vec!["closure", BODY]
        ],
        "{call:#?}"
    );
    assert_eq!(
        call.numbered(),
        pairs(&[("1", "false"), ("2", "false"), ("3", "false")])
    );
}

#[test]
fn a_blocking_policy_makes_the_same_spans() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    assert_eq!(POLICY.retry_blocking(|_| flaky(&calls, 2)), Ok(3));
    assert_twice_then_success(&recorder.call());
}

/// The first attempt takes 100 ms, a hedge 5: the hedge, sent at 10 ms,
/// wins.
#[resilient(
    name = "search.hedged",
    hedge(after = "10ms", max_extra_load = 1.0),
    budget = "off",
    attempt = attempt
)]
async fn hedged() -> Result<u32, TestError> {
    tracing::info!("body");
    let ms = if attempt.is_hedge() { 5 } else { 100 };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(attempt.number())
}

#[tokio::test(start_paused = true)]
async fn a_hedge_is_an_attempt_span_of_its_own() {
    let (recorder, _guard) = Recorder::install();
    assert_eq!(hedged().await, Ok(2));
    let call = recorder.call();
    assert_eq!(
        call.numbered(),
        pairs(&[("1", "false"), ("2", "true")]),
        "{call:#?}"
    );
    // Sending the hedge is the call's decision; its win is the hedge's.
    assert_eq!(call.in_call(), ["hedge sent"], "{call:#?}");
    assert_eq!(
        call.per_attempt(),
        [vec![BODY], vec![BODY, "hedge won"]],
        "{call:#?}"
    );
}

/// Fails at once with a retryable error for its first two attempts (the
/// first attempt and the hedge it sends at once), then succeeds.
#[resilient(
    hedge(after = "10ms", max_extra_load = 1.0),
    max_attempts = 2,
    backoff = "none",
    budget = "off",
    attempt = attempt
)]
async fn hedged_round_fails(calls: &AtomicU32) -> Result<u32, TestError> {
    assert_eq!(attempt.is_hedge(), attempt.number() == 2);
    flaky(calls, 2)
}

#[tokio::test(start_paused = true)]
async fn a_failed_rounds_retry_is_reported_in_its_last_attempt() {
    let (recorder, _guard) = Recorder::install();
    let calls = AtomicU32::new(0);
    assert_eq!(hedged_round_fails(&calls).await, Ok(3));
    let call = recorder.call();
    assert_eq!(
        call.numbered(),
        pairs(&[("1", "false"), ("2", "true"), ("3", "false")]),
        "{call:#?}"
    );
    assert_eq!(
        call.per_attempt(),
        [vec![BODY], vec![BODY, RETRYING], vec![BODY]],
        "the round's last failure (the hedge) is the one retried: {call:#?}"
    );
    assert_eq!(call.in_call(), ["hedge sent"], "{call:#?}");
}

static HEDGED_POLICY: Policy<TestError> = Policy::new()
    .name("policy.hedged")
    .hedge(Hedge::after(Duration::from_millis(10)).max_extra_load(1.0))
    .no_budget();

#[tokio::test(start_paused = true)]
async fn a_policys_hedge_is_an_attempt_span_of_its_own() {
    let (recorder, _guard) = Recorder::install();
    let result = HEDGED_POLICY
        .retry(|attempt| async move {
            tracing::info!("body");
            let ms = if attempt.is_hedge() { 5 } else { 100 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, TestError>(attempt.number())
        })
        .await;
    assert_eq!(result, Ok(2));
    let call = recorder.call();
    assert_eq!(call.numbered(), pairs(&[("1", "false"), ("2", "true")]));
    assert_eq!(
        call.per_attempt(),
        [vec![BODY], vec![BODY, "hedge won"]],
        "{call:#?}"
    );
}

static ONE_AT_A_TIME: steadfast::CircuitBreaker = steadfast::CircuitBreaker::new()
    .failure_threshold(1)
    .name("spans.breaker");

#[resilient(circuit_breaker = &ONE_AT_A_TIME, max_attempts = 1)]
fn guarded() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[test]
fn a_breakers_verdict_and_a_rejection_are_in_their_attempts_span() {
    // The first call's failure opens the breaker, in its attempt; the
    // second call's attempt is refused, in its own.
    let (recorder, _guard) = Recorder::install();
    let _ = guarded();
    let first = recorder.call();
    assert_eq!(first.in_call(), [GIVING_UP], "{first:#?}");
    let transition = first
        .events
        .iter()
        .find(|event| event.fields.contains_key("from"))
        .expect("the breaker opened");
    assert_eq!(transition.span, Some(first.attempts[0]), "{first:#?}");
    drop(_guard);
    let (recorder, _guard) = Recorder::install();
    let _ = guarded();
    let second = recorder.call();
    assert_eq!(
        second.per_attempt(),
        [vec!["attempt rejected"]],
        "{second:#?}"
    );
}

#[tokio::test]
async fn the_spans_are_debug_spans_on_the_steadfast_target() {
    let calls = AtomicU32::new(0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    struct Levels(Arc<Mutex<Vec<(String, String, tracing::Level)>>>);
    impl<S: tracing::Subscriber> Layer<S> for Levels {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            let meta = attrs.metadata();
            self.0.lock().unwrap().push((
                meta.name().to_owned(),
                meta.target().to_owned(),
                *meta.level(),
            ));
        }
    }
    let subscriber = tracing_subscriber::registry().with(Levels(seen.clone()));
    let _levels = tracing::subscriber::set_default(subscriber);
    let _ = reserve(&calls, 0).await;
    let seen = seen.lock().unwrap().clone();
    let debug = |name: &str| {
        (
            name.to_owned(),
            "steadfast".to_owned(),
            tracing::Level::DEBUG,
        )
    };
    assert_eq!(seen, [debug("steadfast.call"), debug("steadfast.attempt")]);
}

#[tokio::test]
async fn a_subscriber_above_debug_sees_the_events_where_they_were() {
    // A subscriber that keeps INFO and above: no steadfast span, and the
    // retries are in the caller's span, not made roots.
    let (recorder, _guard) = {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(
            recorder
                .clone()
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        );
        (recorder, tracing::subscriber::set_default(subscriber))
    };
    let calls = AtomicU32::new(0);
    let outer = tracing::info_span!("request");
    let result = tracing::Instrument::instrument(reserve(&calls, 1), outer).await;
    assert_eq!(result, Ok(2));
    let seen = recorder.0.lock().unwrap();
    assert_eq!(
        seen.spans.iter().map(|span| span.name).collect::<Vec<_>>(),
        ["request"]
    );
    let retry = seen
        .events
        .iter()
        .find(|event| event.fields.get("message").map(String::as_str) == Some(RETRYING))
        .expect("a retry");
    assert_eq!(retry.span, Some(0), "{:#?}", seen.events);
}
