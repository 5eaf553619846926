//! Hedged requests through `steadfast::tower::ResilientLayer` with `Http`,
//! against a real axum server on 127.0.0.1 started in the test, on the
//! paused clock: the rules of a hedged round as the layer's classification
//! reads responses (a 503 is retried, a 400 is an answer, `Retry-After` is
//! pushback).
//!
//! The server answers each request from a script (how long it waits, its
//! status, its `Retry-After`), then 200 at once; every answer's body is the
//! request's number, so a test sees which attempt answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use steadfast::tower::{BoxError, Http, ResilientLayer};
use steadfast::{Hedge, Policy};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};

/// How the server answers one request: after `wait`, with `status` and,
/// if any, this `Retry-After`.
#[derive(Clone, Copy)]
struct Answer {
    wait: Duration,
    status: u16,
    retry_after: Option<&'static str>,
}

const STALL: Answer = Answer {
    wait: Duration::from_secs(10),
    status: 200,
    retry_after: None,
};

const fn at_once(status: u16) -> Answer {
    Answer {
        wait: Duration::ZERO,
        status,
        retry_after: None,
    }
}

/// A server answering its requests from `script`, then 200 at once; and
/// how many requests it received.
async fn serve(script: &[Answer]) -> (SocketAddr, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0));
    let (counted, script) = (hits.clone(), script.to_vec());
    let app = Router::new().fallback(move || {
        let (hits, script) = (counted.clone(), script.clone());
        async move {
            let n = {
                let mut hits = hits.lock().unwrap();
                *hits += 1;
                *hits
            };
            let answer = script.get(n - 1).copied().unwrap_or(at_once(200));
            tokio::time::sleep(answer.wait).await;
            let mut response = Response::new(n.to_string());
            *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
            if let Some(seconds) = answer.retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.parse().unwrap());
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

/// What a caller of the layer saw: the status, which request answered,
/// and when (from the call's start).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    answered_by: String,
    after: Duration,
}

/// One `method` request to `addr` through the layer with `policy`.
async fn call(policy: &'static Policy<BoxError>, method: Method, addr: SocketAddr) -> Seen {
    let mut service = ServiceBuilder::new()
        .layer(ResilientLayer::new(policy).classify(Http))
        .service(Client::builder(TokioExecutor::new()).build_http());
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}/item"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let started = Instant::now();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Seen {
        status,
        answered_by: String::from_utf8(body.to_vec()).unwrap(),
        after: started.elapsed(),
    }
}

/// A policy hedging 50 ms after the last attempt started, up to
/// `max_hedges` a round, one round a call. Each test has its own, as the
/// hedge budget is the policy's.
const fn hedging(max_hedges: u32) -> Policy<BoxError> {
    Policy::new().max_attempts(1).hedge(
        Hedge::after(Duration::from_millis(50))
            .max_hedges(max_hedges)
            .max_extra_load(1.0),
    )
}

/// `calls` calls answered at once, each paying one hedge into the
/// policy's budget (`max_extra_load(1.0)`), none spent.
async fn pay_for_hedges(policy: &'static Policy<BoxError>, calls: usize) {
    let (addr, _) = serve(&[]).await;
    for _ in 0..calls {
        assert_eq!(call(policy, Method::GET, addr).await.status, 200);
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_request_that_can_be_sent_again_is_hedged_and_the_first_answer_wins() {
    static POLICY: Policy<BoxError> = hedging(1);
    let (addr, hits) = serve(&[STALL]).await;
    let seen = call(&POLICY, Method::GET, addr).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.answered_by, "2", "the hedge answered");
    assert!(seen.after < Duration::from_millis(100), "{:?}", seen.after);
    assert_eq!(*hits.lock().unwrap(), 2, "the stalled request was dropped");
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_sent_twice_is_not_hedged() {
    static POLICY: Policy<BoxError> = hedging(1);
    // A POST without an idempotency key: it waits out the stall.
    let (addr, hits) = serve(&[STALL]).await;
    let seen = call(&POLICY, Method::POST, addr).await;
    assert_eq!((seen.status, seen.answered_by.as_str()), (200, "1"));
    assert_eq!(*hits.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_503_sends_the_next_hedge_at_once() {
    static POLICY: Policy<BoxError> = hedging(2);
    pay_for_hedges(&POLICY, 2).await;
    // The first stalls; the hedge at 50 ms gets a 503, so the second hedge
    // goes at once, not 50 ms later.
    let (addr, hits) = serve(&[STALL, at_once(503)]).await;
    let seen = call(&POLICY, Method::GET, addr).await;
    assert_eq!((seen.status, seen.answered_by.as_str()), (200, "3"));
    assert!(seen.after < Duration::from_millis(60), "{:?}", seen.after);
    assert_eq!(*hits.lock().unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_is_not_retried_ends_the_round_and_drops_the_others() {
    static POLICY: Policy<BoxError> = hedging(2);
    pay_for_hedges(&POLICY, 2).await;
    // A 400 is the caller's answer: the stalled first attempt is dropped,
    // and no second hedge is sent.
    let (addr, hits) = serve(&[STALL, at_once(400)]).await;
    let seen = call(&POLICY, Method::GET, addr).await;
    assert_eq!((seen.status, seen.answered_by.as_str()), (400, "2"));
    assert!(seen.after < Duration::from_millis(100), "{:?}", seen.after);
    assert_eq!(*hits.lock().unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_a_hedge_stops_the_rounds_hedging() {
    static POLICY: Policy<BoxError> = hedging(2);
    pay_for_hedges(&POLICY, 2).await;
    // The hedge's 503 asks for a pause: no second hedge, and the round
    // waits for its first attempt.
    let pushback = Answer {
        retry_after: Some("1"),
        ..at_once(503)
    };
    let (addr, hits) = serve(&[STALL, pushback]).await;
    let seen = call(&POLICY, Method::GET, addr).await;
    assert_eq!((seen.status, seen.answered_by.as_str()), (200, "1"));
    assert!(seen.after >= Duration::from_secs(10), "{:?}", seen.after);
    assert_eq!(*hits.lock().unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_is_sent_before_calls_have_paid_for_it() {
    // The default hedge budget: 5% of the calls. The first call of a fresh
    // policy has paid 0.05 of a hedge.
    static POLICY: Policy<BoxError> = Policy::new()
        .max_attempts(1)
        .hedge(Hedge::after(Duration::from_millis(50)));
    let (addr, hits) = serve(&[STALL]).await;
    let seen = call(&POLICY, Method::GET, addr).await;
    assert_eq!((seen.status, seen.answered_by.as_str()), (200, "1"));
    assert_eq!(*hits.lock().unwrap(), 1);
    assert_eq!(POLICY.hedging().map(|hedge| hedge.refused()), Some(1));
}
