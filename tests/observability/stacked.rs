//! `#[resilient]` stacked with `#[tracing::instrument]`, in both orders.
//!
//! Above: instrument's span covers the whole call, and the call's
//! `steadfast.call` span and its `steadfast.attempt` spans are inside it.
//! Below (instrument written first, so expanded first): instrument's span
//! is made once per attempt, inside that attempt's `steadfast.attempt`
//! span, each attempt borrowing the arguments, owned ones included.
#![cfg(feature = "tracing")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use steadfast::resilient;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, PartialEq)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("busy")
    }
}

/// What a subscriber saw, in order: spans opened and closed, by name, and
/// this file's events with the span they were in.
#[derive(Clone, Default)]
struct Timeline(Arc<Mutex<Vec<String>>>);

impl Timeline {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Timeline {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx.span(id).and_then(|span| span.parent());
        let parent = parent.as_ref().map_or("none", |parent| parent.name());
        self.push(format!("open {} in {parent}", attrs.metadata().name()));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let name = ctx.span(&id).map_or("?", |span| span.name());
        self.push(format!("close {name}"));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        // The library's own retry warnings are not what is tested here.
        if event.metadata().target() != module_path!() {
            return;
        }
        let mut fields = String::new();
        event.record(&mut Fields(&mut fields));
        let span = ctx.event_span(event).map_or("none", |span| span.name());
        self.push(format!("{fields} in {span}"));
    }
}

/// An event's fields as `name=value`.
struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?}", field.name()));
    }
}

/// A subscriber on this thread until the guard drops.
fn watch() -> (Timeline, tracing::subscriber::DefaultGuard) {
    let timeline = Timeline::default();
    let subscriber = tracing_subscriber::registry().with(timeline.clone());
    (timeline, tracing::subscriber::set_default(subscriber))
}

/// The timeline of a call whose attempts each ran instrument's span: the
/// call's span, in it one `steadfast.attempt` span per attempt, and in each
/// of those an instrument `span` with the attempt's lines.
fn one_span_per_attempt<const N: usize>(span: &str, attempts: [&[&str]; N]) -> Vec<String> {
    let each = attempts.iter().flat_map(|events| {
        [
            "open steadfast.attempt in steadfast.call".to_owned(),
            format!("open {span} in steadfast.attempt"),
        ]
        .into_iter()
        .chain(events.iter().map(|event| format!("{event} in {span}")))
        .chain([
            format!("close {span}"),
            "close steadfast.attempt".to_owned(),
        ])
    });
    std::iter::once("open steadfast.call in none".to_owned())
        .chain(each)
        .chain(std::iter::once("close steadfast.call".to_owned()))
        .collect()
}

const ATTEMPT: &str = "message=attempt";

static GREETINGS: AtomicU32 = AtomicU32::new(0);

#[resilient(max_attempts = 3, backoff = "none", budget = "off")]
#[tracing::instrument(skip_all, fields(len = name.len()))]
async fn greet(name: String) -> Result<String, Busy> {
    tracing::info!("attempt");
    if GREETINGS.fetch_add(1, Ordering::SeqCst) < 2 {
        Err(Busy)
    } else {
        Ok(format!("hello {name}"))
    }
}

#[tokio::test]
async fn resilient_above_instrument_retries_an_owned_argument_in_one_span() {
    let (timeline, _guard) = watch();
    assert_eq!(greet("ada".to_owned()).await, Ok("hello ada".to_owned()));
    assert_eq!(GREETINGS.load(Ordering::SeqCst), 3);
    // instrument's span is the call's parent; each attempt is in the call.
    let attempt = [
        "open steadfast.attempt in steadfast.call",
        "message=attempt in steadfast.attempt",
        "close steadfast.attempt",
    ];
    let expected: Vec<&str> = ["open greet in none", "open steadfast.call in greet"]
        .into_iter()
        .chain(attempt.repeat(3))
        .chain(["close steadfast.call", "close greet"])
        .collect();
    assert_eq!(timeline.seen(), expected);
}

struct Catalog {
    calls: AtomicU32,
}

impl Catalog {
    /// The shape that compiled before the check on instrument's order:
    /// every argument borrowed or `Copy`.
    #[tracing::instrument(skip(self))]
    #[resilient(max_attempts = 3, backoff = "none", budget = "off")]
    async fn lookup(&self, id: &str, k: u32) -> Result<String, Busy> {
        tracing::info!("attempt");
        if self.calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(Busy)
        } else {
            Ok(format!("{id}/{k}"))
        }
    }

    /// With `err`, instrument wraps the body in a second `async move`.
    #[tracing::instrument(skip(self), err)]
    #[resilient(max_attempts = 3, backoff = "none", budget = "off")]
    async fn fetch(&self, owned: String, k: u32) -> Result<String, Busy> {
        tracing::info!("attempt");
        if self.calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(Busy)
        } else {
            Ok(format!("{owned}/{k}"))
        }
    }

    /// A plain method, with `ret`: instrument runs the body in a `move`
    /// closure, and reports each attempt's result.
    #[tracing::instrument(skip(self), ret)]
    #[resilient(max_attempts = 3, backoff = "none", budget = "off")]
    fn read(&self, owned: String) -> Result<usize, Busy> {
        tracing::info!("attempt");
        if self.calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(Busy)
        } else {
            Ok(owned.len())
        }
    }
}

fn catalog() -> Catalog {
    Catalog {
        calls: AtomicU32::new(0),
    }
}

#[tokio::test]
async fn instrument_above_resilient_opens_one_span_per_attempt() {
    let (timeline, _guard) = watch();
    let catalog = catalog();
    assert_eq!(catalog.lookup("sku", 7).await, Ok("sku/7".to_owned()));
    assert_eq!(
        timeline.seen(),
        one_span_per_attempt("lookup", [&[ATTEMPT], &[ATTEMPT], &[ATTEMPT]])
    );
}

#[tokio::test]
async fn each_attempt_borrows_an_owned_argument() {
    let (timeline, _guard) = watch();
    let catalog = catalog();
    let future = catalog.fetch("sku".to_owned(), 7);
    assert_send(&future);
    assert_eq!(future.await, Ok("sku/7".to_owned()));
    assert_eq!(catalog.calls.load(Ordering::SeqCst), 3);
    // `err` reports each failed attempt, in that attempt's span.
    let failed: &[&str] = &[ATTEMPT, "error=busy"];
    assert_eq!(
        timeline.seen(),
        one_span_per_attempt("fetch", [failed, failed, &[ATTEMPT]])
    );
}

#[test]
fn a_plain_fn_opens_one_span_per_attempt_too() {
    let _fast = steadfast::testing::no_delays();
    let (timeline, _guard) = watch();
    let catalog = catalog();
    assert_eq!(catalog.read("sku".to_owned()), Ok(3));
    assert_eq!(
        timeline.seen(),
        one_span_per_attempt(
            "read",
            [
                &[ATTEMPT, "return=Err(Busy)"],
                &[ATTEMPT, "return=Err(Busy)"],
                &[ATTEMPT, "return=Ok(3)"]
            ]
        )
    );
}

#[async_trait::async_trait]
trait Store {
    async fn get(&self, key: String, k: u32) -> Result<String, Busy>;
}

#[async_trait::async_trait]
impl Store for Catalog {
    /// async-trait moves `key` into its future; the move runs once per
    /// call, and each attempt borrows it.
    #[tracing::instrument(skip(self))]
    #[resilient(max_attempts = 3, backoff = "none", budget = "off")]
    async fn get(&self, key: String, k: u32) -> Result<String, Busy> {
        tracing::info!("attempt");
        if self.calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(Busy)
        } else {
            Ok(format!("{key}/{k}"))
        }
    }
}

#[tokio::test]
async fn an_async_trait_method_opens_one_span_per_attempt() {
    let (timeline, _guard) = watch();
    let catalog = catalog();
    let store: &(dyn Store + Sync) = &catalog;
    assert_eq!(store.get("sku".to_owned(), 7).await, Ok("sku/7".to_owned()));
    assert_eq!(
        timeline.seen(),
        one_span_per_attempt("get", [&[ATTEMPT], &[ATTEMPT], &[ATTEMPT]])
    );
}

fn assert_send<T: Send>(_: &T) {}
