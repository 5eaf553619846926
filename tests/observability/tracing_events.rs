//! The `tracing` feature: what a subscriber sees.
#![cfg(feature = "tracing")]

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use steadfast::{CircuitBreaker, resilient};
use support::TestError;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One captured event: level, target and fields as text.
#[derive(Debug, Clone)]
struct Captured {
    level: tracing::Level,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("<missing>", String::as_str)
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    fn events(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }
}

struct FieldsToText<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldsToText<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldsToText(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
}

/// Runs `f` with a capturing subscriber on this thread.
fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Captured>) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let result = tracing::subscriber::with_default(subscriber, f);
    (result, capture.events())
}

/// An error with `Display`, so events show its message.
#[derive(Debug)]
struct Refused(u32);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused with code {}", self.0)
    }
}

#[resilient(
    name = "inventory.reserve",
    max_attempts = 3,
    backoff = "fixed",
    base_delay = "250ms",
    jitter = "none",
    budget = "off"
)]
fn reserve(fail: u32, calls: &mut u32) -> Result<(), Refused> {
    *calls += 1;
    if *calls <= fail {
        Err(Refused(503))
    } else {
        Ok(())
    }
}

#[test]
fn retries_and_give_ups_are_warnings_with_fields() {
    let _fast = steadfast::testing::no_delays();
    let mut calls = 0;
    let (result, events) = capture(|| reserve(5, &mut calls));
    assert!(result.is_err());
    assert_eq!(events.len(), 3, "two retries, one give-up: {events:#?}");
    for (n, retry) in events[..2].iter().enumerate() {
        assert_eq!(retry.level, tracing::Level::WARN);
        assert_eq!(retry.target, "steadfast");
        assert_eq!(retry.field("site"), "inventory.reserve");
        assert_eq!(retry.field("attempt"), (n + 1).to_string());
        assert_eq!(
            retry.field("error"),
            "refused with code 503",
            "the error's Display"
        );
        assert_eq!(retry.field("delay_ms"), "250");
        // The backoffs skipped under `no_delays` count, as slept ones would.
        assert!(elapsed_ms(retry) >= 250 * n as u64, "{retry:#?}");
    }
    let give_up = &events[2];
    assert_eq!(give_up.level, tracing::Level::WARN);
    assert_eq!(give_up.field("reason"), "exhausted");
    assert_eq!(give_up.field("attempts"), "3");
    assert_eq!(give_up.field("error"), "refused with code 503");
    assert!(elapsed_ms(give_up) >= 500, "{give_up:#?}");
}

/// The call's time so far, as an event reports it.
fn elapsed_ms(event: &Captured) -> u64 {
    event
        .field("elapsed_ms")
        .parse()
        .expect("elapsed_ms in whole ms")
}

#[test]
fn no_event_on_a_first_attempt_success() {
    let mut calls = 0;
    let (result, events) = capture(|| reserve(0, &mut calls));
    assert!(result.is_ok());
    assert!(events.is_empty(), "{events:#?}");
}

#[resilient(retry_on = [Io], budget = "off")]
fn not_retryable() -> Result<(), TestError> {
    Err(TestError::Fatal("bad request"))
}

#[test]
fn a_non_retryable_error_gives_up_with_its_reason_and_debug_form() {
    let (_, events) = capture(not_retryable);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].field("reason"), "not_retryable");
    assert_eq!(events[0].field("attempts"), "1");
    assert_eq!(
        events[0].field("error"),
        "Fatal(\"bad request\")",
        "Debug when there is no Display"
    );
}

#[resilient(backoff = "none", max_attempts = 10, budget = &TINY)]
fn budgeted() -> Result<(), TestError> {
    Err(TestError::Io)
}

static TINY: steadfast::RetryBudget = steadfast::RetryBudget::new().min_per_second(0).ratio(0.0);

#[test]
fn an_empty_budget_is_the_reason() {
    let (_, events) = capture(budgeted);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].field("reason"), "budget");
}

static BREAKER: CircuitBreaker = CircuitBreaker::new().failure_threshold(1).name("payments");

#[resilient(circuit_breaker = &BREAKER, max_attempts = 1)]
fn guarded() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[test]
fn breaker_transitions_and_rejections_are_reported() {
    let (_, events) = capture(|| {
        let _ = guarded();
        let _ = guarded();
    });
    let transition = events
        .iter()
        .find(|e| e.fields.contains_key("from"))
        .expect("a transition event");
    assert_eq!(transition.level, tracing::Level::WARN);
    assert_eq!(transition.field("breaker"), "payments");
    assert_eq!(
        (transition.field("from"), transition.field("to")),
        ("Closed", "Open")
    );
    let rejection = events
        .iter()
        .find(|e| e.fields.contains_key("kind"))
        .expect("a rejection event");
    assert_eq!(rejection.level, tracing::Level::DEBUG);
    assert_eq!(rejection.field("kind"), "circuit_open");
    assert!(rejection.field("site").ends_with("::guarded"));
}

#[tokio::test(start_paused = true)]
async fn hedges_sent_won_and_refused_are_debug_events() {
    let capture = Capture::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    support::two_slow_hedged_calls().await;
    let events = capture.events();
    let seen: Vec<_> = events
        .iter()
        .map(|event| {
            assert_eq!(event.level, tracing::Level::DEBUG);
            assert_eq!(event.target, "steadfast");
            assert_eq!(event.field("site"), "search.query");
            (event.field("message"), event.field("attempt"))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("hedge refused by the budget", "2"),
            ("hedge sent", "2"),
            ("hedge won", "2"),
        ],
        "{events:#?}"
    );
}

/// An adaptive limit reports an update only when it moved the limit: a
/// `DEBUG` event per move, saying from where to where; an interval that
/// holds the limit is silent, so a steady service logs nothing.
#[tokio::test(start_paused = true)]
async fn an_adaptive_limit_reports_each_move_and_no_hold() {
    let capture = Capture::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let limit = steadfast::AdaptiveLimit::aimd()
        .initial(4)
        .min_samples(1)
        .name("search.backend");
    // The first sample starts the first interval.
    limit.try_acquire().unwrap().success();
    // Two intervals with half the limit in flight: AIMD grows by one each.
    for _ in 0..2 {
        let half = limit.limit().div_ceil(2);
        let permits: Vec<_> = (0..half).map(|_| limit.try_acquire().unwrap()).collect();
        tokio::time::advance(std::time::Duration::from_millis(100)).await;
        permits.into_iter().rev().for_each(|p| p.success());
    }
    // Three intervals of one call at a time: under half of 6, held.
    for _ in 0..3 {
        tokio::time::advance(std::time::Duration::from_millis(100)).await;
        limit.try_acquire().unwrap().success();
    }
    assert_eq!(limit.limit(), 6);
    let events = capture.events();
    let moves: Vec<_> = events
        .iter()
        .filter(|event| event.field("limiter") == "search.backend")
        .map(|event| {
            assert_eq!(
                (event.level, event.target.as_str()),
                (tracing::Level::DEBUG, "steadfast")
            );
            (
                event.field("message"),
                event.field("from"),
                event.field("to"),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("adaptive limit changed", "4", "5"),
            ("adaptive limit changed", "5", "6"),
        ],
        "{events:#?}"
    );
}
