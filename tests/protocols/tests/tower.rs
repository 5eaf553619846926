//! `steadfast::tower::ResilientLayer` around hyper-util's HTTP client,
//! against a real axum server on 127.0.0.1 started in the test.
//!
//! The server answers from a script (one status and `Retry-After` per
//! request, then 200) and logs each request's method and the paused
//! clock's time, so the tests see exactly what reached the server and
//! when. Delays the policy chose are those its `on_retry` hook saw.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use steadfast::tower::{BoxError, Http, ResilientLayer};
use steadfast::{Bulkhead, Policy, RateLimiter, RetryEvent};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

/// One scripted answer: a status and an optional `Retry-After`.
type Answer = (u16, Option<&'static str>);

#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<Vec<Answer>>>,
    log: Arc<Mutex<Vec<(Method, Duration)>>>,
    start: Instant,
}

impl Script {
    /// Requests the server saw: method and time since the server started.
    fn log(&self) -> Vec<(Method, Duration)> {
        self.log.lock().unwrap().clone()
    }

    fn hits(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

async fn answer(
    State(script): State<Script>,
    request: Request<axum::body::Body>,
) -> Response<String> {
    script
        .log
        .lock()
        .unwrap()
        .push((request.method().clone(), script.start.elapsed()));
    let next = {
        let mut answers = script.answers.lock().unwrap();
        (!answers.is_empty()).then(|| answers.remove(0))
    };
    let (status, retry_after) = next.unwrap_or((200, None));
    let mut response = Response::new(format!("status {status}"));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.parse().unwrap());
    }
    response
}

/// Starts a server on a free port of 127.0.0.1 answering from `answers`.
async fn serve(answers: &[Answer]) -> (SocketAddr, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(answers.to_vec())),
        log: Arc::default(),
        start: Instant::now(),
    };
    let app = Router::new().fallback(answer).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, script)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn request(method: Method, addr: SocketAddr, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}/charge"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
}

/// One call through `service`, once it is ready: what a caller gets.
async fn send<S>(service: &mut S, request: Request<Full<Bytes>>) -> Result<S::Response, BoxError>
where
    S: Service<Request<Full<Bytes>>, Error = BoxError>,
{
    service.ready().await?.call(request).await
}

/// Delays the policies' `on_retry` hooks saw, per test.
struct Delays(Mutex<Vec<Duration>>);

impl Delays {
    const fn new() -> Self {
        Delays(Mutex::new(Vec::new()))
    }

    fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

macro_rules! policy_recording {
    ($policy:ident, $delays:ident, $builder:expr) => {
        static $delays: Delays = Delays::new();
        static $policy: Policy<BoxError> = $builder.on_retry(|event: &RetryEvent<'_, BoxError>| {
            $delays.0.lock().unwrap().push(event.delay())
        });
    };
}

policy_recording!(HINTED, HINTED_DELAYS, Policy::new().max_attempts(3));

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_after_its_retry_after_and_the_caller_gets_the_200() {
    let (addr, script) = serve(&[(503, Some("1"))]).await;
    let mut service = ServiceBuilder::new()
        .layer(ResilientLayer::new(&HINTED).classify(Http))
        .service(client());

    let response = send(&mut service, request(Method::GET, addr, &[]))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.hits(), 2);
    assert_eq!(HINTED_DELAYS.take(), [Duration::from_secs(1)]);
    let log = script.log();
    assert!(log[1].1 - log[0].1 >= Duration::from_secs(1), "{log:?}");
}

/// What the `on_retry` hook of `SAYS` was told of each failure.
static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SAYS: Policy<BoxError> =
    Policy::new()
        .max_attempts(2)
        .on_retry(|event: &RetryEvent<'_, BoxError>| {
            SAID.lock().unwrap().push(event.error().to_string())
        });

#[tokio::test(start_paused = true)]
async fn a_retried_status_reads_as_the_servers_answer_in_on_retry() {
    let (addr, _) = serve(&[(503, None)]).await;
    let mut service = ServiceBuilder::new()
        .layer(ResilientLayer::new(&SAYS).classify(Http))
        .service(client());
    let response = send(&mut service, request(Method::GET, addr, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *SAID.lock().unwrap(),
        ["the server answered 503 Service Unavailable"]
    );
}

policy_recording!(REPLAY, REPLAY_DELAYS, Policy::new().max_attempts(3));

#[tokio::test(start_paused = true)]
async fn a_post_is_sent_once_unless_it_carries_an_idempotency_key() {
    let (addr, script) = serve(&[(503, None), (503, None)]).await;
    let mut service = ServiceBuilder::new()
        .layer(ResilientLayer::new(&REPLAY).classify(Http))
        .service(client());

    let unsafe_to_replay = request(Method::POST, addr, &[]);
    let response = send(&mut service, unsafe_to_replay).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not replayable: the caller gets the server's answer"
    );
    assert_eq!(script.hits(), 1);

    let keyed = request(Method::POST, addr, &[("idempotency-key", "charge-42")]);
    let response = send(&mut service, keyed).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.hits(), 3, "the keyed POST was retried once");
    assert_eq!(REPLAY_DELAYS.take().len(), 1);
}

policy_recording!(
    GIVE_UP,
    GIVE_UP_DELAYS,
    Policy::new()
        .max_attempts(3)
        .base_delay(Duration::from_millis(10))
);

#[tokio::test(start_paused = true)]
async fn when_the_policy_gives_up_the_caller_gets_the_last_response() {
    let (addr, script) = serve(&[(503, None), (502, None), (429, None), (500, None)]).await;
    let mut service = ResilientLayer::new(&GIVE_UP).classify(Http).layer(client());
    let response = send(&mut service, request(Method::GET, addr, &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(script.hits(), 3);
    assert_eq!(GIVE_UP_DELAYS.take().len(), 2);
}

static NOT_RETRYABLE: Policy<BoxError> = Policy::new().max_attempts(3);

#[tokio::test(start_paused = true)]
async fn statuses_that_are_not_retryable_are_answers() {
    let (addr, script) = serve(&[(404, None), (501, None)]).await;
    let mut service = ResilientLayer::new(&NOT_RETRYABLE)
        .classify(Http)
        .layer(client());
    for expected in [404, 501] {
        let response = send(&mut service, request(Method::GET, addr, &[]))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    assert_eq!(script.hits(), 2, "each was sent once");
}

policy_recording!(
    UNREACHABLE,
    UNREACHABLE_DELAYS,
    Policy::new()
        .max_attempts(2)
        .base_delay(Duration::from_millis(10))
);

#[tokio::test(start_paused = true)]
async fn a_connection_nobody_accepts_is_retried_then_returned_as_the_clients_error() {
    // A port bound but not listening refuses connections, and stays ours:
    // a dropped listener's port could be another test's server by now.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let mut service = ResilientLayer::new(&UNREACHABLE)
        .classify(Http)
        .layer(client());
    let error = send(&mut service, request(Method::GET, addr, &[]))
        .await
        .unwrap_err();
    assert!(
        error
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some(),
        "the client's own error, boxed: {error:?}"
    );
    assert_eq!(UNREACHABLE_DELAYS.take().len(), 1, "retried once");
}

static POOL: Bulkhead = Bulkhead::new(1);
static GUARDED: Policy<BoxError> = Policy::new().concurrency(&POOL);

#[tokio::test(start_paused = true)]
async fn readiness_takes_no_permit_of_the_policy() {
    let (addr, _script) = serve(&[]).await;
    let mut service = ResilientLayer::new(&GUARDED).classify(Http).layer(client());
    let ready = service.ready().await.unwrap();
    assert_eq!(POOL.available(), 1, "a ready service holds no permit");
    let response = ready.call(request(Method::GET, addr, &[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(POOL.available(), 1, "the attempt's permit was given back");
}

static QUOTA: RateLimiter = RateLimiter::per_second(100)
    .burst(5)
    .pause_on_retry_after(Duration::from_secs(10));
policy_recording!(
    SHARING,
    SHARING_DELAYS,
    Policy::new().max_attempts(2).rate_limit(&QUOTA)
);

#[tokio::test(start_paused = true)]
async fn one_429_pauses_every_request_sharing_the_limiter() {
    let (addr, script) = serve(&[(429, Some("2"))]).await;
    let service = ServiceBuilder::new()
        .layer(ResilientLayer::new(&SHARING).classify(Http))
        .service(client());

    // The first request hears the 429 (its retry is scheduled) before the
    // crowd sets out.
    let mut first = service.clone();
    let first = tokio::spawn(async move {
        let request = request(Method::GET, addr, &[]);
        send(&mut first, request).await.unwrap().status()
    });
    while SHARING_DELAYS.0.lock().unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    let crowd: Vec<_> = (0..10)
        .map(|_| {
            let mut service = service.clone();
            tokio::spawn(async move {
                let request = request(Method::GET, addr, &[]);
                send(&mut service, request).await.unwrap().status()
            })
        })
        .collect();

    assert_eq!(first.await.unwrap(), StatusCode::OK);
    for caller in crowd {
        assert_eq!(caller.await.unwrap(), StatusCode::OK);
    }
    let log = script.log();
    assert_eq!(log.len(), 12, "the 429, its retry, and ten others: {log:?}");
    let refused_at = log[0].1;
    assert!(
        log[1..]
            .iter()
            .all(|(_, at)| *at >= refused_at + Duration::from_secs(2)),
        "no request reached the server during the pause: {log:?}"
    );
}
