//! The tower layer's spans (feature `tracing`), against a real axum server
//! on 127.0.0.1: one `steadfast.call` span per request, one
//! `steadfast.attempt` span per time the request is sent, and on the
//! resends OpenTelemetry's `http.request.resend_count`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use steadfast::tower::{BoxError, Cloned, Http, ResilientLayer};
use steadfast::{Backoff, Policy};
use tower::{Service, ServiceBuilder, ServiceExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span: its name, its parent's index among the spans seen, its fields.
#[derive(Debug, Clone)]
struct Seen {
    name: &'static str,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

/// The spans seen, and the index of each live one (the registry reuses
/// closed spans' ids).
type Spans = (Vec<Seen>, HashMap<Id, usize>);

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Spans>>);

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
            .and_then(|parent| seen.1.get(&parent.id()).copied());
        let at = seen.0.len();
        seen.0.push(Seen {
            name: attrs.metadata().name(),
            parent,
            fields,
        });
        seen.1.insert(id.clone(), at);
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        self.0.lock().unwrap().1.remove(&id);
    }
}

impl Recorder {
    /// The library's spans: the one call span's fields, and each attempt
    /// span's (all of them children of the call's).
    fn call(&self) -> (BTreeMap<String, String>, Vec<BTreeMap<String, String>>) {
        let seen = self.0.lock().unwrap().0.clone();
        let calls: Vec<usize> = (0..seen.len())
            .filter(|&at| seen[at].name == "steadfast.call")
            .collect();
        assert_eq!(calls.len(), 1, "{seen:#?}");
        let attempts = seen
            .iter()
            .filter(|span| span.name == "steadfast.attempt")
            .map(|span| {
                assert_eq!(span.parent, Some(calls[0]), "{seen:#?}");
                span.fields.clone()
            })
            .collect();
        (seen[calls[0]].fields.clone(), attempts)
    }
}

/// What a server does with its first request; it answers 200 at once to
/// the others.
#[derive(Clone, Copy)]
enum First {
    /// Answers 503.
    Unavailable,
    /// Answers after 10 s.
    Stalls,
}

/// A server on 127.0.0.1, and how many requests it received.
async fn serve(first: First) -> (SocketAddr, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let app = Router::new().fallback(move || {
        let is_first = counted.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let mut response = Response::new(String::new());
            match first {
                _ if !is_first => {}
                First::Unavailable => *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE,
                First::Stalls => tokio::time::sleep(std::time::Duration::from_secs(10)).await,
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

/// A GET of `addr` through the layer with `policy` and `Http`: the
/// response's status, and the fields of the call's attempt spans.
async fn get_through(
    policy: &'static Policy<BoxError>,
    addr: SocketAddr,
    recorder: &Recorder,
) -> (StatusCode, Vec<BTreeMap<String, String>>) {
    let mut service = ServiceBuilder::new()
        .layer(ResilientLayer::new(policy).classify(Http))
        .service(Client::builder(TokioExecutor::new()).build_http());
    let response = service
        .ready()
        .await
        .unwrap()
        .call(get(addr))
        .await
        .unwrap();
    let (call, attempts) = recorder.call();
    assert_eq!(call["site"], "items.get");
    (response.status(), attempts)
}

fn get(addr: SocketAddr) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::GET)
        .uri(format!("http://{addr}/item"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

static POLICY: Policy<BoxError> = Policy::new()
    .name("items.get")
    .max_attempts(3)
    .backoff(Backoff::none());

/// The fields an attempt span has, as `(attempt, hedge, resend count)`.
fn numbered(attempts: &[BTreeMap<String, String>]) -> Vec<(&str, &str, Option<&str>)> {
    attempts
        .iter()
        .map(|fields| {
            (
                fields["attempt"].as_str(),
                fields["hedge"].as_str(),
                fields.get("http.request.resend_count").map(String::as_str),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_resent_request_is_an_attempt_span_with_its_resend_count() {
    let recorder = Recorder::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let (addr, hits) = serve(First::Unavailable).await;
    let (status, attempts) = get_through(&POLICY, addr, &recorder).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Recommended "if and only if request was retried": absent on the first.
    assert_eq!(
        numbered(&attempts),
        [("1", "false", None), ("2", "false", Some("1"))]
    );
}

#[tokio::test(start_paused = true)]
async fn requests_that_are_not_http_have_no_resend_count() {
    let recorder = Recorder::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let flaky = tower::service_fn(move |request: u32| {
        let busy = seen.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if busy {
                Err(BoxError::from("busy"))
            } else {
                Ok(request)
            }
        }
    });
    let mut service = ServiceBuilder::new()
        .layer(ResilientLayer::new(&POLICY).classify(Cloned))
        .service(flaky);

    assert_eq!(service.ready().await.unwrap().call(7).await.unwrap(), 7);
    let (_, attempts) = recorder.call();
    assert_eq!(
        numbered(&attempts),
        [("1", "false", None), ("2", "false", None)]
    );
}

static HEDGED: Policy<BoxError> = Policy::new()
    .name("items.get")
    .hedge(steadfast::Hedge::after(std::time::Duration::from_millis(50)).max_extra_load(1.0));

#[tokio::test(start_paused = true)]
async fn a_hedge_is_a_resend_and_its_span_says_so() {
    let recorder = Recorder::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    // The first request stalls; the hedge sent after 50 ms is answered.
    let (addr, hits) = serve(First::Stalls).await;
    let (status, attempts) = get_through(&HEDGED, addr, &recorder).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(
        numbered(&attempts),
        [("1", "false", None), ("2", "true", Some("1"))]
    );
}
