//! `steadfast::reqwest` against a real axum server on 127.0.0.1, in this
//! process: which failures are retried, and whether `Retry-After` is slept.
//!
//! The clock is tokio's paused one, so a one-second `Retry-After` costs no
//! real second. Sockets still work on it, but tokio moves the clock forward
//! whenever the runtime is idle, a wait for the server included; so waits
//! are read from the delays `on_retry` is given, and the clock is asked only
//! for lower bounds.

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::RETRY_AFTER};
use steadfast::http::{IDEMPOTENCY_KEY, idempotency_key};
use steadfast::reqwest::{Error, error_for_status, is_transient};
use steadfast::{Backoff, Jitter, Policy, RetryEvent, resilient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// What the server answers to its n-th request: the last entry from then on.
type Script = &'static [(u16, Option<&'static str>)];

/// A server that answers by its script and remembers what it was sent.
struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
    keys: Arc<Mutex<Vec<Option<HeaderValue>>>>,
}

impl Server {
    async fn start(script: Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let keys = Arc::new(Mutex::new(Vec::new()));
        let (counter, seen) = (hits.clone(), keys.clone());
        let app = Router::new().fallback(move |request: HeaderMap| {
            let hit = counter.fetch_add(1, Ordering::SeqCst);
            seen.lock()
                .unwrap()
                .push(request.get(IDEMPOTENCY_KEY).cloned());
            let (status, retry_after) = script[hit.min(script.len() - 1)];
            let mut headers = HeaderMap::new();
            if let Some(seconds) = retry_after {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(seconds));
            }
            headers.insert(
                HeaderName::from_static("x-request-id"),
                HeaderValue::from(hit),
            );
            async move { (StatusCode::from_u16(status).unwrap(), headers, "ready") }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { url, hits, keys }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn client() -> reqwest::Client {
    // No proxy from the environment between us and 127.0.0.1, and no
    // retries of reqwest's own: each attempt the tests count is one request.
    reqwest::Client::builder()
        .no_proxy()
        .retry(reqwest::retry::never())
        .build()
        .unwrap()
}

/// Delays given to an `on_retry` hook, in order.
struct Delays(Mutex<Vec<Duration>>);

impl Delays {
    const fn new() -> Self {
        Delays(Mutex::new(Vec::new()))
    }

    fn push(&self, delay: Duration) {
        self.0.lock().unwrap().push(delay);
    }

    fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

static BUSY_DELAYS: Delays = Delays::new();

#[resilient(max_attempts = 4, budget = "off", max_delay = "5s",
            retry_if = Error::is_transient, retry_after = Error::retry_after,
            on_retry = |event| BUSY_DELAYS.push(event.delay()))]
async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, Error> {
    let response = client.get(url).send().await?;
    Ok(error_for_status(response)?.text().await?)
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_is_retried_after_the_servers_wait() {
    static SCRIPT: Script = &[(503, Some("1")), (503, Some("1")), (200, None)];
    let server = Server::start(SCRIPT).await;
    let start = Instant::now();
    let text = get_text(&client(), &server.url).await.unwrap();
    assert_eq!(text, "ready");
    assert_eq!(server.hits(), 3);
    assert_eq!(
        BUSY_DELAYS.take(),
        [secs(1), secs(1)],
        "the hint, exactly, twice"
    );
    assert!(start.elapsed() >= secs(2), "both waits were slept");
}

static BACKOFF_DELAYS: Delays = Delays::new();

fn record_backoff(event: &RetryEvent<'_, Error>) {
    BACKOFF_DELAYS.push(event.delay());
}

#[tokio::test(start_paused = true)]
async fn a_500_without_retry_after_waits_the_backoff() {
    static POLICY: Policy<Error> = Policy::new()
        .no_budget()
        .backoff(Backoff::fixed(Duration::from_millis(250)).jitter(Jitter::None))
        .retry_if(Error::is_transient)
        .retry_after(Error::retry_after)
        .on_retry(record_backoff);
    static SCRIPT: Script = &[(500, None), (200, None)];
    let server = Server::start(SCRIPT).await;
    let client = &client();
    let url = server.url.as_str();
    let text = POLICY
        .retry(|_| async move {
            let response = error_for_status(client.get(url).send().await?)?;
            Ok(response.text().await?)
        })
        .await
        .unwrap();
    assert_eq!(text, "ready");
    assert_eq!(server.hits(), 2);
    assert_eq!(BACKOFF_DELAYS.take(), [Duration::from_millis(250)]);
}

#[tokio::test(start_paused = true)]
async fn is_transient_classifies_reqwests_own_status_errors() {
    static POLICY: Policy<reqwest::Error> = Policy::new().no_budget().retry_if(is_transient);
    static SCRIPT: Script = &[(503, Some("1")), (502, None), (200, None)];
    let server = Server::start(SCRIPT).await;
    let client = &client();
    let url = server.url.as_str();
    let status = POLICY
        .retry(|_| async move { client.get(url).send().await?.error_for_status() })
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.hits(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_404_is_not_retried() {
    static SCRIPT: Script = &[(404, None)];
    let server = Server::start(SCRIPT).await;
    let error = get_text(&client(), &server.url).await.unwrap_err();
    assert_eq!(server.hits(), 1);
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert!(!error.is_transient());

    let error = client()
        .get(&server.url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap_err();
    assert!(!is_transient(&error), "nor as reqwest's own status error");
    // Wrapped in steadfast's error, it still reads as the server's answer.
    let message = error.to_string();
    let error = Error::from(error);
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(error.to_string(), message);
}

#[tokio::test(start_paused = true)]
async fn a_connection_refused_is_transient_and_retried() {
    static POLICY: Policy<reqwest::Error> = Policy::new()
        .max_attempts(3)
        .no_budget()
        .retry_if(is_transient);
    // A port bound but not listening refuses connections. Dropping a
    // listener instead would free its port for the next server any test
    // starts, which would then answer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}/", socket.local_addr().unwrap());
    let (client, url) = (&client(), url.as_str());
    let attempts = AtomicUsize::new(0);
    let attempts = &attempts;
    let error = POLICY
        .retry(|_| async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            client.get(url).send().await
        })
        .await
        .unwrap_err();
    // A request error too, as every connect error is (which makes
    // `is_connect` in `is_transient` a name for the row, see mutants.toml).
    assert!(error.is_connect() && error.is_request(), "{error:?}");
    assert!(is_transient(&error));
    // steadfast's error adds no words to the chain: its source is reqwest's.
    let cause = error.source().map(ToString::to_string);
    assert!(cause.is_some(), "{error:?}");
    let error = Error::from(error);
    assert!(error.is_transient());
    assert_eq!(error.source().map(ToString::to_string), cause);
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "every attempt was made");
}

/// What a raw server does once it has sent its bytes.
enum Then {
    HangUp,
    HoldOpen,
}

/// A server for one GET that no axum handler can play: it reads the
/// request's head, writes `reply` as it is, then hangs up or holds the
/// connection open. Returns its URL.
async fn raw_server(reply: &'static [u8], then: Then) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // The whole request first: a response before it is a protocol error.
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut buffer = [0; 1024];
            let n = socket.read(&mut buffer).await.unwrap();
            request.extend_from_slice(&buffer[..n]);
        }
        socket.write_all(reply).await.unwrap();
        if let Then::HoldOpen = then {
            std::future::pending::<()>().await;
        }
    });
    url
}

#[tokio::test(start_paused = true)]
async fn a_body_cut_short_is_transient() {
    // Promises 100 bytes, sends 5 and hangs up.
    let url = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort",
        Then::HangUp,
    )
    .await;
    let response = client().get(&url).send().await.unwrap();
    let error = response.bytes().await.unwrap_err();
    assert!(
        error.is_decode(),
        "reqwest calls it a decode error: {error:?}"
    );
    assert!(is_transient(&error), "but the connection broke: {error:?}");
}

/// A body whose framing does not parse arrived: reqwest reports a decode
/// error as for a body cut short, but nothing broke, and the same server
/// would send the same bytes again.
#[tokio::test(start_paused = true)]
async fn a_body_that_does_not_parse_is_not_transient() {
    // Held open: the error is the framing's, not a hang-up.
    let url = raw_server(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nnot a chunk size\r\n",
        Then::HoldOpen,
    )
    .await;
    let response = client().get(&url).send().await.unwrap();
    let error = response.bytes().await.unwrap_err();
    assert!(error.is_decode(), "{error:?}");
    assert!(!is_transient(&error), "nothing broke: {error:?}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_closed_before_the_answer_is_transient() {
    // Reads the whole request, then hangs up without a word: reqwest calls
    // it a request error (not a connect or timeout one).
    let url = raw_server(b"", Then::HangUp).await;
    let error = client().get(&url).send().await.unwrap_err();
    assert!(
        error.is_request() && !error.is_connect() && !error.is_timeout(),
        "{error:?}"
    );
    assert!(is_transient(&error), "the connection broke: {error:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_max_delay_gives_up_at_once() {
    static SCRIPT: Script = &[(503, Some("120")), (200, None)];
    let server = Server::start(SCRIPT).await;
    let error = get_text(&client(), &server.url).await.unwrap_err();
    assert_eq!(server.hits(), 1, "max_delay is 5s: no waiting two minutes");
    assert_eq!(error.retry_after(), Some(secs(120)));
}

#[tokio::test(start_paused = true)]
async fn error_for_status_keeps_the_status_headers_and_hint() {
    static SCRIPT: Script = &[(429, Some("7"))];
    let server = Server::start(SCRIPT).await;
    let response = client().get(&server.url).send().await.unwrap();
    assert_eq!(steadfast::reqwest::retry_after(&response), Some(secs(7)));
    let error = error_for_status(response).unwrap_err();
    assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.retry_after(), Some(secs(7)));
    assert!(error.is_transient());
    assert_eq!(error.headers()["x-request-id"], "0");
    assert_eq!(error.url().as_str(), server.url);
    assert_eq!(
        error.to_string(),
        format!(
            "HTTP status client error (429 Too Many Requests) for url ({}), retry after 7s",
            server.url
        )
    );
    let error = Error::from(error);
    assert_eq!(
        (error.status(), error.retry_after()),
        (Some(StatusCode::TOO_MANY_REQUESTS), Some(secs(7)))
    );

    let again = client().get(&server.url).send().await.unwrap();
    assert!(steadfast::reqwest::error_for_status_ref(&again).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_post_is_replayed_with_the_same_idempotency_key() {
    static POLICY: Policy<Error> = Policy::new()
        .no_budget()
        .retry_if(Error::is_transient)
        .retry_after(Error::retry_after);
    static SCRIPT: Script = &[(503, Some("1")), (502, None), (201, None)];
    let server = Server::start(SCRIPT).await;
    let client = &client();
    let url = server.url.as_str();
    let status = POLICY
        .retry(|attempt| async move {
            let request = client
                .post(url)
                .header(IDEMPOTENCY_KEY, idempotency_key(attempt.key()))
                .body("charge 42");
            Ok(error_for_status(request.send().await?)?.status())
        })
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let keys = server.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 3);
    assert!(
        keys[0].is_some() && keys.iter().all(|key| *key == keys[0]),
        "{keys:?}"
    );
}
