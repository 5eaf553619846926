//! The `tracing` feature's spans: one `steadfast.call` span per call, one
//! `steadfast.attempt` span per attempt in it (hedges included), and each
//! event in the span it is about, at every door.
#![cfg(feature = "tracing")]

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{Hedge, Policy, resilient, retry};
use support::TestError;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span a subscriber saw: its name, the index of its parent among the
/// spans seen, and its fields as text.
#[derive(Debug, Clone)]
struct SeenSpan {
    name: &'static str,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
    closed: bool,
}

/// An event: the index of the span it was in, and its fields.
#[derive(Debug, Clone)]
struct SeenEvent {
    span: Option<usize>,
    target: String,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Seen {
    spans: Vec<SeenSpan>,
    events: Vec<SeenEvent>,
    /// The index of each live span (the registry reuses closed spans' ids).
    index: HashMap<Id, usize>,
}

/// A recording subscriber's layer: the spans opened, with their parents,
/// and the events, with their spans.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock().unwrap();
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .and_then(|parent| seen.index.get(&parent.id()).copied());
        let at = seen.spans.len();
        seen.spans.push(SeenSpan {
            name: attrs.metadata().name(),
            parent,
            fields,
            closed: false,
        });
        seen.index.insert(id.clone(), at);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(&at) = seen.index.get(id) {
            values.record(&mut Fields(&mut seen.spans[at].fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock().unwrap();
        let span = ctx
            .event_span(event)
            .and_then(|span| seen.index.get(&span.id()).copied());
        seen.events.push(SeenEvent {
            span,
            target: event.metadata().target().to_owned(),
            fields,
        });
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(at) = seen.index.remove(&id) {
            seen.spans[at].closed = true;
        }
    }
}

impl Recorder {
    /// Records on this thread until the guard drops.
    fn install() -> (Recorder, tracing::subscriber::DefaultGuard) {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        (recorder, tracing::subscriber::set_default(subscriber))
    }

    /// The one `steadfast.call` span, and its attempt spans in order.
    fn call(&self) -> Call {
        let seen = self.0.lock().unwrap();
        let calls: Vec<usize> = (0..seen.spans.len())
            .filter(|&at| seen.spans[at].name == "steadfast.call")
            .collect();
        assert_eq!(calls.len(), 1, "one call span: {:#?}", seen.spans);
        let call = calls[0];
        let attempts: Vec<usize> = (0..seen.spans.len())
            .filter(|&at| seen.spans[at].name == "steadfast.attempt")
            .collect();
        for &attempt in &attempts {
            assert_eq!(
                seen.spans[attempt].parent,
                Some(call),
                "an attempt's span is in its call's: {:#?}",
                seen.spans
            );
        }
        assert!(
            seen.spans.iter().all(|span| span.closed),
            "every span closed when the call ended: {:#?}",
            seen.spans
        );
        Call {
            spans: seen.spans.clone(),
            events: seen.events.clone(),
            call,
            attempts,
        }
    }
}

/// What a call left: its span, its attempts' spans, and every event.
#[derive(Debug)]
struct Call {
    spans: Vec<SeenSpan>,
    events: Vec<SeenEvent>,
    call: usize,
    attempts: Vec<usize>,
}

impl Call {
    fn field(&self, span: usize, name: &str) -> Option<&str> {
        self.spans[span].fields.get(name).map(String::as_str)
    }

    /// Each attempt span's `(attempt, hedge)`.
    fn numbered(&self) -> Vec<(String, String)> {
        self.attempts
            .iter()
            .map(|&at| {
                let field = |name| self.field(at, name).unwrap_or("<missing>").to_owned();
                (field("attempt"), field("hedge"))
            })
            .collect()
    }

    /// The messages of the events in `span`, in order.
    fn messages_in(&self, span: usize) -> Vec<&str> {
        self.events
            .iter()
            .filter(|event| event.span == Some(span))
            .map(|event| event.fields.get("message").map_or("", String::as_str))
            .collect()
    }

    /// The messages of the events in each attempt's span.
    fn per_attempt(&self) -> Vec<Vec<&str>> {
        self.attempts
            .iter()
            .map(|&at| self.messages_in(at))
            .collect()
    }

    /// The messages of the events in the call's span itself.
    fn in_call(&self) -> Vec<&str> {
        self.messages_in(self.call)
    }

    /// The library's events' `attempt` fields, in the order they came.
    fn library_attempts(&self, message: &str) -> Vec<&str> {
        self.events
            .iter()
            .filter(|event| event.target == "steadfast")
            .filter(|event| event.fields.get("message").map(String::as_str) == Some(message))
            .map(|event| event.fields.get("attempt").map_or("", String::as_str))
            .collect()
    }
}

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
