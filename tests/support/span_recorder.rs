//! A recording subscriber for the library's spans: every span with its
//! parent and fields, every event with the span it was in. Shared, by
//! `#[path]`, by the span tests of `tests/observability` and of
//! `tests/protocols` (two packages); each uses a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span a subscriber saw: its name, the index of its parent among the
/// spans seen, its fields as text, and when it opened and closed (tokio's
/// clock: paused in a test that pauses it).
#[derive(Debug, Clone)]
pub(crate) struct SeenSpan {
    pub(crate) name: &'static str,
    pub(crate) parent: Option<usize>,
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) opened: Instant,
    pub(crate) closed: Option<Instant>,
}

/// An event: the index of the span it was in, and its fields.
#[derive(Debug, Clone)]
pub(crate) struct SeenEvent {
    pub(crate) span: Option<usize>,
    pub(crate) target: String,
    pub(crate) fields: BTreeMap<String, String>,
}

#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) spans: Vec<SeenSpan>,
    pub(crate) events: Vec<SeenEvent>,
    /// The index of each live span (the registry reuses closed spans' ids).
    pub(crate) index: HashMap<Id, usize>,
}

/// A recording subscriber's layer: the spans opened, with their parents,
/// and the events, with their spans.
#[derive(Clone, Default)]
pub(crate) struct Recorder(pub(crate) Arc<Mutex<Seen>>);

pub(crate) struct Fields<'a>(&'a mut BTreeMap<String, String>);

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
            opened: Instant::now(),
            closed: None,
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
            seen.spans[at].closed = Some(Instant::now());
        }
    }
}

impl Recorder {
    /// Records on this thread until the guard drops.
    pub(crate) fn install() -> (Recorder, tracing::subscriber::DefaultGuard) {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        (recorder, tracing::subscriber::set_default(subscriber))
    }

    /// The one `steadfast.call` span, and its attempt spans in order.
    pub(crate) fn call(&self) -> Call {
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
            seen.spans.iter().all(|span| span.closed.is_some()),
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
pub(crate) struct Call {
    pub(crate) spans: Vec<SeenSpan>,
    pub(crate) events: Vec<SeenEvent>,
    pub(crate) call: usize,
    pub(crate) attempts: Vec<usize>,
}

impl Call {
    pub(crate) fn field(&self, span: usize, name: &str) -> Option<&str> {
        self.spans[span].fields.get(name).map(String::as_str)
    }

    /// Each attempt span's `(attempt, hedge)`.
    pub(crate) fn numbered(&self) -> Vec<(String, String)> {
        self.attempts
            .iter()
            .map(|&at| {
                let field = |name| self.field(at, name).unwrap_or("<missing>").to_owned();
                (field("attempt"), field("hedge"))
            })
            .collect()
    }

    /// The messages of the events in `span`, in order.
    pub(crate) fn messages_in(&self, span: usize) -> Vec<&str> {
        self.events
            .iter()
            .filter(|event| event.span == Some(span))
            .map(|event| event.fields.get("message").map_or("", String::as_str))
            .collect()
    }

    /// The messages of the events in each attempt's span.
    pub(crate) fn per_attempt(&self) -> Vec<Vec<&str>> {
        self.attempts
            .iter()
            .map(|&at| self.messages_in(at))
            .collect()
    }

    /// The messages of the events in the call's span itself.
    pub(crate) fn in_call(&self) -> Vec<&str> {
        self.messages_in(self.call)
    }

    /// The library's events' `attempt` fields, in the order they came.
    pub(crate) fn library_attempts(&self, message: &str) -> Vec<&str> {
        self.events
            .iter()
            .filter(|event| event.target == "steadfast")
            .filter(|event| event.fields.get("message").map(String::as_str) == Some(message))
            .map(|event| event.fields.get("attempt").map_or("", String::as_str))
            .collect()
    }
}
