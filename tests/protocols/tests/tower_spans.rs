//! The tower layer's spans (feature `tracing`), against a real axum server
//! on 127.0.0.1: one `steadfast.call` span per request, one
//! `steadfast.attempt` span per time the request is sent, and on the
//! resends OpenTelemetry's `http.request.resend_count`.

#[path = "../../support/span_recorder.rs"]
mod span_recorder;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use span_recorder::{Call, Recorder};
use steadfast::tower::{BoxError, Cloned, Http, ResilientLayer};
use steadfast::{Backoff, Policy};
use tower::{Service, ServiceBuilder, ServiceExt};

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
/// response's status, and the call's spans.
async fn get_through(
    policy: &'static Policy<BoxError>,
    addr: SocketAddr,
    recorder: &Recorder,
) -> (StatusCode, Call) {
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
    let call = recorder.call();
    assert_eq!(call.field(call.call, "site"), Some("items.get"));
    (response.status(), call)
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

/// Each attempt span's `(attempt, hedge, resend count)`.
fn numbered(call: &Call) -> Vec<(&str, &str, Option<&str>)> {
    call.attempts
        .iter()
        .map(|&at| {
            (
                call.field(at, "attempt").unwrap_or("<missing>"),
                call.field(at, "hedge").unwrap_or("<missing>"),
                call.field(at, "http.request.resend_count"),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_resent_request_is_an_attempt_span_with_its_resend_count() {
    let (recorder, _guard) = Recorder::install();
    let (addr, hits) = serve(First::Unavailable).await;
    let (status, call) = get_through(&POLICY, addr, &recorder).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Recommended "if and only if request was retried": absent on the first.
    assert_eq!(
        numbered(&call),
        [("1", "false", None), ("2", "false", Some("1"))]
    );
}

#[tokio::test(start_paused = true)]
async fn requests_that_are_not_http_have_no_resend_count() {
    let (recorder, _guard) = Recorder::install();
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
    let call = recorder.call();
    assert_eq!(
        numbered(&call),
        [("1", "false", None), ("2", "false", None)]
    );
}

static HEDGED: Policy<BoxError> = Policy::new()
    .name("items.get")
    .hedge(steadfast::Hedge::after(std::time::Duration::from_millis(50)).max_extra_load(1.0));

#[tokio::test(start_paused = true)]
async fn a_hedge_is_a_resend_and_its_span_says_so() {
    let (recorder, _guard) = Recorder::install();
    // The first request stalls; the hedge sent after 50 ms is answered.
    let (addr, hits) = serve(First::Stalls).await;
    let (status, call) = get_through(&HEDGED, addr, &recorder).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(
        numbered(&call),
        [("1", "false", None), ("2", "true", Some("1"))]
    );
}
