//! `steadfast::tonic` against a real gRPC server on 127.0.0.1: tonic-health's
//! `Health` service behind an interceptor that answers the first calls with
//! the statuses a loaded server sends (pushback in the trailers, `RetryInfo`
//! in the details), called through tonic-health's client over a tonic
//! `Channel`.
//!
//! The clock is paused: the sockets are real, and the backoff sleeps end as
//! soon as the runtime is idle. So no test reads the clock; each checks the
//! waits steadfast chose (`RetryEvent::delay`) and how many calls reached
//! the server.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::Policy;
use steadfast::resilient;
use steadfast::tonic::{RetryCodes, retry_after};
use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::{ErrorDetails, StatusExt};

/// A Health server that answers the first calls with `script`, one status
/// each, then serves; and a client connected to it.
struct FlakyServer {
    client: HealthClient<Channel>,
    hits: Arc<AtomicU32>,
}

impl FlakyServer {
    async fn start(script: Vec<Status>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let hits = Arc::new(AtomicU32::new(0));
        let script = Mutex::new(VecDeque::from(script));
        let (_reporter, health) = tonic_health::server::health_reporter();
        let counted = Arc::clone(&hits);
        let script = Arc::new(script);
        // Interceptors run before the service: the failure leaves as a
        // trailers-only response, as a server shedding load sends it.
        let gate = move |request: Request<()>| -> Result<Request<()>, Status> {
            counted.fetch_add(1, Ordering::SeqCst);
            match script.lock().unwrap().pop_front() {
                Some(status) => Err(status),
                None => Ok(request),
            }
        };
        // One service, so no router: tonic's `router` feature stays off.
        let service = InterceptedService::new(health, gate);
        let server = Server::builder().serve_with_incoming(service, TcpIncoming::from(listener));
        tokio::spawn(server);
        FlakyServer {
            client: HealthClient::new(connect(addr).await),
            hits,
        }
    }

    fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn connect(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("the server listens")
}

/// The waits steadfast chose before each retry of one call.
#[derive(Default)]
struct Waits(Mutex<Vec<Duration>>);

impl Waits {
    fn record(&self, wait: Duration) {
        self.0.lock().unwrap().push(wait);
    }

    fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// The defaults: the status code decides whether, the server's hint how long.
#[resilient(max_attempts = 4, budget = "off",
            retry_if = steadfast::tonic::is_retryable,
            retry_after = steadfast::tonic::retry_after,
            on_retry = |event| waits.record(event.delay()))]
async fn check(client: &HealthClient<Channel>, waits: &Waits) -> Result<ServingStatus, Status> {
    let reply = client.clone().check(HealthCheckRequest::default()).await?;
    Ok(reply.into_inner().status())
}

/// A health check is idempotent, so a late answer is worth another try.
static LATE_ANSWERS_TOO: RetryCodes = RetryCodes::DEFAULT.with(Code::DeadlineExceeded);

#[resilient(max_attempts = 4, budget = "off",
            retry_if = |status| LATE_ANSWERS_TOO.is_retryable(status),
            retry_after = steadfast::tonic::retry_after,
            on_retry = |event| waits.record(event.delay()))]
async fn check_idempotent(
    client: &HealthClient<Channel>,
    waits: &Waits,
) -> Result<ServingStatus, Status> {
    let reply = client.clone().check(HealthCheckRequest::default()).await?;
    Ok(reply.into_inner().status())
}

fn pushed_back(code: Code, millis: &'static str) -> Status {
    let mut status = Status::new(code, "shedding load");
    let value = MetadataValue::from_static(millis);
    status
        .metadata_mut()
        .insert("grpc-retry-pushback-ms", value);
    status
}

fn with_retry_info(code: Code, delay: Duration) -> Status {
    let details = ErrorDetails::with_retry_info(Some(delay));
    Status::with_error_details(code, "quota exceeded", details)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn the_pushback_is_the_wait_before_each_retry() {
    let server = FlakyServer::start(vec![
        pushed_back(Code::Unavailable, "300"),
        pushed_back(Code::Unavailable, "1200"),
    ])
    .await;
    let waits = Waits::default();
    let served = check(&server.client, &waits)
        .await
        .expect("served on the third attempt");
    assert_eq!(served, ServingStatus::Serving);
    assert_eq!(server.hits(), 3);
    assert_eq!(waits.take(), [ms(300), ms(1200)], "exactly, no jitter");
}

#[tokio::test(start_paused = true)]
async fn retry_info_is_the_wait_when_there_is_no_pushback() {
    let server = FlakyServer::start(vec![
        with_retry_info(Code::ResourceExhausted, ms(2_500)),
        with_retry_info(Code::Unavailable, ms(40)),
    ])
    .await;
    let waits = Waits::default();
    let served = check(&server.client, &waits)
        .await
        .expect("served after the wait");
    assert_eq!(served, ServingStatus::Serving);
    assert_eq!(server.hits(), 3);
    assert_eq!(waits.take(), [ms(2_500), ms(40)]);
}

#[tokio::test(start_paused = true)]
async fn the_pushback_wins_over_retry_info() {
    let mut both = with_retry_info(Code::Unavailable, Duration::from_secs(5));
    let value = MetadataValue::from_static("50");
    both.metadata_mut().insert("grpc-retry-pushback-ms", value);
    let server = FlakyServer::start(vec![both]).await;
    let waits = Waits::default();
    let served = check(&server.client, &waits)
        .await
        .expect("served after the wait");
    assert_eq!(served, ServingStatus::Serving);
    assert_eq!(waits.take(), [ms(50)]);
}

#[tokio::test(start_paused = true)]
async fn without_a_hint_the_backoff_decides() {
    let server = FlakyServer::start(vec![Status::unavailable("restarting")]).await;
    let waits = Waits::default();
    let served = check(&server.client, &waits)
        .await
        .expect("served after the wait");
    assert_eq!(served, ServingStatus::Serving);
    let waits = waits.take();
    assert!(
        waits.len() == 1 && waits[0] <= ms(100),
        "full jitter of the 100ms base: {waits:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_negative_or_unreadable_pushback_stops_retrying() {
    let server = FlakyServer::start(vec![
        pushed_back(Code::Unavailable, "-1"),
        pushed_back(Code::ResourceExhausted, "soon"),
    ])
    .await;
    let waits = Waits::default();
    for code in [Code::Unavailable, Code::ResourceExhausted] {
        let status = check(&server.client, &waits).await.unwrap_err();
        assert_eq!(status.code(), code, "the server's own status: {status:?}");
    }
    assert_eq!(server.hits(), 2, "one attempt per call");
    assert_eq!(waits.take(), []);
}

#[tokio::test(start_paused = true)]
async fn a_hint_longer_than_max_delay_stops_retrying() {
    let server = FlakyServer::start(vec![with_retry_info(
        Code::ResourceExhausted,
        Duration::from_secs(3600),
    )])
    .await;
    let waits = Waits::default();
    let status = check(&server.client, &waits).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(server.hits(), 1, "the client is not parked for an hour");
}

#[tokio::test(start_paused = true)]
async fn statuses_about_the_request_are_not_retried() {
    let script = vec![
        // A hint does not make an error retryable.
        pushed_back(Code::NotFound, "0"),
        Status::invalid_argument("unknown service"),
        Status::aborted("transaction conflict"),
        Status::deadline_exceeded("too slow"),
        Status::internal("bug"),
    ];
    let codes: Vec<Code> = script.iter().map(Status::code).collect();
    let server = FlakyServer::start(script).await;
    let waits = Waits::default();
    for code in codes {
        let status = check(&server.client, &waits).await.unwrap_err();
        assert_eq!(status.code(), code);
    }
    assert_eq!(server.hits(), 5, "one attempt per call");
    assert_eq!(waits.take(), []);
}

#[tokio::test(start_paused = true)]
async fn deadline_exceeded_is_retried_only_when_configured() {
    let server = FlakyServer::start(vec![
        Status::deadline_exceeded("replica lagging"),
        Status::deadline_exceeded("replica lagging"),
    ])
    .await;
    let waits = Waits::default();

    let status = check(&server.client, &waits).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "not by default");
    assert_eq!(server.hits(), 1);

    let served = check_idempotent(&server.client, &waits).await;
    assert_eq!(
        served.expect("served on the second attempt"),
        ServingStatus::Serving
    );
    assert_eq!(server.hits(), 3, "retried with DeadlineExceeded in the set");
    assert_eq!(waits.take().len(), 1);
}

/// The `Policy` door, with a conflict retried where the whole
/// read-modify-write cycle is the operation.
static ABORTED_TOO: RetryCodes = RetryCodes::DEFAULT.with(Code::Aborted);
static TRANSACTION: Policy<Status> = Policy::new()
    .max_attempts(3)
    .no_budget()
    .retry_if(|status| ABORTED_TOO.is_retryable(status))
    .retry_after(retry_after);

#[tokio::test(start_paused = true)]
async fn a_policy_retries_the_codes_it_is_given() {
    async fn call(client: &HealthClient<Channel>) -> Result<ServingStatus, Status> {
        let reply = TRANSACTION
            .retry(|_| {
                let mut client = client.clone();
                async move { client.check(HealthCheckRequest::default()).await }
            })
            .await?;
        Ok(reply.into_inner().status())
    }

    let server = FlakyServer::start(vec![
        Status::aborted("version conflict"),
        pushed_back(Code::Unavailable, "20"),
    ])
    .await;
    let served = call(&server.client).await;
    assert_eq!(
        served.expect("served on the third attempt"),
        ServingStatus::Serving
    );
    assert_eq!(server.hits(), 3);

    let server = FlakyServer::start(vec![Status::not_found("gone")]).await;
    let status = call(&server.client).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(server.hits(), 1, "not in the set: one attempt");
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_unavailable_and_retried() {
    // A port that was just free: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_lazy();
    let waits = Waits::default();
    let status = check(&HealthClient::new(channel), &waits)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(waits.take().len(), 3, "every attempt made");
}
