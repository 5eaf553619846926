//! Requests with bodies through `steadfast::tower::ResilientLayer` and
//! hyper-util's client, against a server on 127.0.0.1 written on a bare
//! socket, so that it can do what a real one does at the worst moment:
//! reset the connection halfway through a body, or read all of it and
//! answer 503.
//!
//! The server logs each request it read: its path, the headers the tests
//! set, and the length and hash of the body bytes it got, so a replay is
//! checked byte for byte against what the caller sent.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use steadfast::http::{IDEMPOTENCY_KEY, idempotency_key};
use steadfast::tower::{
    BoxError, Http, NotReplayed, NotRetried, ReplayBody, ReplayPool, ResilientLayer,
};
use steadfast::{Attempt, Policy};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::{Layer, Service, ServiceExt};

/// What the server does with the next request.
#[derive(Clone)]
enum Action {
    /// Reads the head and this many bytes of the body as sent, then resets
    /// the connection.
    Reset { after: usize },
    /// Reads the whole body, then answers with this status.
    Answer(u16),
    /// Reads the whole body, waits to be told, then answers.
    Hold(Arc<Notify>, u16),
}

/// A request as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: String,
    attempt: Option<String>,
    key: Option<String>,
    /// The body bytes read (all of them unless reset).
    len: usize,
    hash: u64,
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Action>>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// A server on a free port of 127.0.0.1 acting out `script`, one
    /// action per request, then answering 200.
    async fn start(script: Vec<Action>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server {
            addr: listener.local_addr().unwrap(),
            script: Arc::new(Mutex::new(script.into())),
            log: Arc::default(),
        };
        let serving = server.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let serving = serving.clone();
                tokio::spawn(async move { serving.serve(stream).await });
            }
        });
        server
    }

    fn log(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One request per connection (the answer says `connection: close`).
    async fn serve(&self, stream: TcpStream) {
        let mut stream = BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let header = |name: &str| {
            head[1..].iter().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        let path = head[0].split(' ').nth(1).unwrap().to_string();
        let action = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Action::Answer(200));
        let mut seen = Seen {
            path,
            attempt: header("x-attempt"),
            key: header("idempotency-key"),
            len: 0,
            hash: 0,
        };
        let (status, hold) = match action {
            Action::Reset { after } => {
                let mut partial = vec![0; after];
                let _ = stream.read_exact(&mut partial).await;
                seen.len = partial.len();
                self.log.lock().unwrap().push(seen);
                let stream = stream.into_inner();
                #[allow(deprecated, reason = "zero linger: a reset, which never blocks")]
                stream.set_linger(Some(Duration::ZERO)).unwrap();
                drop(stream);
                return;
            }
            Action::Answer(status) => (status, None),
            Action::Hold(notify, status) => (status, Some(notify)),
        };
        let chunked = header("transfer-encoding").is_some_and(|te| te.contains("chunked"));
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let mut size = String::new();
                stream.read_line(&mut size).await.unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                stream.read_exact(&mut chunk).await.unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
            body
        } else {
            let length = header("content-length").map_or(0, |n| n.parse().unwrap());
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.unwrap();
            body
        };
        (seen.len, seen.hash) = (body.len(), hash(&body));
        self.log.lock().unwrap().push(seen);
        if let Some(notify) = hold {
            notify.notified().await;
        }
        let answer =
            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = stream.get_mut().write_all(answer.as_bytes()).await;
        let _ = stream.get_mut().shutdown().await;
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// `len` bytes no two runs of 256 alike, so a chunk sent twice or out of
/// order changes the hash.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A body streamed in chunks, each after a `Pending` (as a body read from
/// a file or a socket is): its size is unknown, so hyper sends it chunked.
struct Chunks(VecDeque<Bytes>, bool);

impl Chunks {
    fn of(bytes: &[u8], chunk: usize) -> Self {
        Chunks(
            bytes.chunks(chunk).map(Bytes::copy_from_slice).collect(),
            false,
        )
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.1 = !self.1;
        if self.1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

fn client<B>() -> Client<HttpConnector, ReplayBody<B>>
where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Unpin + Send + 'static,
{
    Client::builder(TokioExecutor::new()).build_http()
}

fn request<B>(method: Method, url: String, body: B) -> Request<ReplayBody<B>> {
    Request::builder()
        .method(method)
        .uri(url)
        .header(IDEMPOTENCY_KEY, "upload-1")
        .body(ReplayBody::new(body))
        .unwrap()
}

type Outcome = Result<Response<hyper::body::Incoming>, BoxError>;

/// One call through `service`, once it is ready.
async fn send<S, B>(service: &mut S, request: Request<ReplayBody<B>>) -> Outcome
where
    S: Service<
            Request<ReplayBody<B>>,
            Response = Response<hyper::body::Incoming>,
            Error = BoxError,
        >,
{
    service.ready().await?.call(request).await
}

static RETRY: Policy<BoxError> = Policy::new()
    .max_attempts(3)
    .base_delay(Duration::from_millis(10));

/// Sends `body` (whose bytes are `sent`) after `first` went wrong, and
/// checks that the retry carried the same bytes.
async fn replayed_byte_for_byte<B>(first: Action, body: B, sent: &[u8])
where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Unpin + Send + 'static,
{
    let server = Server::start(vec![first]).await;
    let mut service = ResilientLayer::new(&RETRY)
        .classify(Http)
        .layer(client::<B>());
    let response = send(
        &mut service,
        request(Method::POST, server.url("/upload"), body),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((log[1].len, log[1].hash), (sent.len(), hash(sent)));
}

#[tokio::test(start_paused = true)]
async fn a_reset_halfway_replays_a_full_body_byte_for_byte() {
    let sent = payload(32 * 1024);
    let body = Full::new(Bytes::from(sent.clone()));
    replayed_byte_for_byte(Action::Reset { after: 8 * 1024 }, body, &sent).await;
}

#[tokio::test(start_paused = true)]
async fn a_reset_halfway_replays_a_streamed_body_byte_for_byte() {
    let sent = payload(32 * 1024);
    let body = Chunks::of(&sent, 1024);
    replayed_byte_for_byte(Action::Reset { after: 8 * 1024 }, body, &sent).await;
}

#[tokio::test(start_paused = true)]
async fn a_503_after_the_whole_body_replays_a_full_body_byte_for_byte() {
    let sent = payload(32 * 1024);
    let body = Full::new(Bytes::from(sent.clone()));
    replayed_byte_for_byte(Action::Answer(503), body, &sent).await;
}

#[tokio::test(start_paused = true)]
async fn a_503_after_the_whole_body_replays_a_streamed_body_byte_for_byte() {
    let sent = payload(32 * 1024);
    let body = Chunks::of(&sent, 1024);
    replayed_byte_for_byte(Action::Answer(503), body, &sent).await;
}

/// A 1 MiB body through a layer with the default cap (64 KiB).
async fn over_the_cap<B>(first: Action, body: B, sent: &[u8]) -> (Outcome, Vec<Seen>)
where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Unpin + Send + 'static,
{
    let server = Server::start(vec![first, Action::Answer(503)]).await;
    let mut service = ResilientLayer::new(&RETRY)
        .classify(Http)
        .layer(client::<B>());
    let outcome = send(&mut service, request(Method::PUT, server.url("/big"), body)).await;
    let log = server.log();
    assert_eq!(log.len(), 1, "sent exactly once: {log:?}");
    if log[0].len == sent.len() {
        assert_eq!(log[0].hash, hash(sent));
    }
    (outcome, log)
}

const CAP: NotReplayed = NotReplayed::TooLarge {
    max_body: 64 * 1024,
};

#[tokio::test(start_paused = true)]
async fn a_body_over_the_cap_is_sent_once_and_the_503_says_why() {
    let sent = payload(1024 * 1024);
    for streamed in [false, true] {
        let (outcome, log) = if streamed {
            over_the_cap(Action::Answer(503), Chunks::of(&sent, 16 * 1024), &sent).await
        } else {
            let body = Full::new(Bytes::from(sent.clone()));
            over_the_cap(Action::Answer(503), body, &sent).await
        };
        let response = outcome.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.extensions().get::<NotReplayed>(), Some(&CAP));
        assert_eq!(log[0].len, sent.len(), "streamed: {streamed}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_cap_is_sent_once_and_the_error_says_why() {
    // Its size is known before it is sent: nothing of it is kept.
    let sent = payload(1024 * 1024);
    let body = Full::new(Bytes::from(sent.clone()));
    let (outcome, _) = over_the_cap(Action::Reset { after: 8 * 1024 }, body, &sent).await;
    let error = outcome.unwrap_err();
    let not_retried = error.downcast_ref::<NotRetried>().expect("a NotRetried");
    assert_eq!(not_retried.why(), CAP);
    assert!(
        std::error::Error::source(not_retried)
            .and_then(|source| source.downcast_ref::<hyper_util::client::legacy::Error>())
            .is_some(),
        "the client's own error inside: {error:?}"
    );
}

static SMALL: ReplayPool = ReplayPool::new(48 * 1024);

#[tokio::test(start_paused = true)]
async fn past_the_pool_a_body_is_sent_once_until_the_bytes_come_back() {
    let release = Arc::new(Notify::new());
    let server = Server::start(vec![
        Action::Hold(release.clone(), 503),
        Action::Answer(503),
        Action::Answer(200),
    ])
    .await;
    let layer = ResilientLayer::new(&RETRY)
        .classify(Http)
        .replay_pool(&SMALL);
    let service = layer.layer(client::<Full<Bytes>>());
    let sent = payload(32 * 1024);
    let body = || Full::new(Bytes::from(sent.clone()));

    // The first call's body is kept while its server holds the answer...
    let mut first = service.clone();
    let first_request = request(Method::PUT, server.url("/first"), body());
    let first = tokio::spawn(async move { send(&mut first, first_request).await });
    while server.log().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(SMALL.buffered(), 32 * 1024);

    // ... so the second's does not fit: sent once, its 503 handed back.
    let mut second = service.clone();
    let response = send(
        &mut second,
        request(Method::PUT, server.url("/second"), body()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let full = NotReplayed::PoolFull { pool: 48 * 1024 };
    assert_eq!(response.extensions().get::<NotReplayed>(), Some(&full));
    assert_eq!(
        SMALL.buffered(),
        32 * 1024,
        "the second gave its bytes back"
    );

    // The first is retried from what it kept, and gives it back.
    release.notify_one();
    let response = first.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let paths: Vec<_> = server.log().into_iter().map(|seen| seen.path).collect();
    assert_eq!(paths, ["/first", "/second", "/first"]);
    assert!(server.log().iter().all(|seen| seen.hash == hash(&sent)));
    assert_eq!(SMALL.buffered(), 0);
}

static HOOKED: Policy<BoxError> = Policy::new()
    .max_attempts(3)
    .base_delay(Duration::from_millis(10));

#[tokio::test(start_paused = true)]
async fn on_attempt_sees_each_attempt_and_its_edits_reach_the_server() {
    let busy = Server::start(vec![Action::Answer(503), Action::Reset { after: 0 }]).await;
    let spare = Server::start(vec![]).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = seen.clone();
    let spare_authority = spare.addr.to_string();
    let layer = ResilientLayer::new(&HOOKED).classify(Http).on_attempt(
        move |request: &mut Request<_>, attempt: &Attempt| {
            hook_seen
                .lock()
                .unwrap()
                .push((attempt.number(), attempt.is_hedge()));
            let headers = request.headers_mut();
            headers.insert("x-attempt", attempt.number().into());
            headers.insert(IDEMPOTENCY_KEY, idempotency_key(attempt.key()));
            // The third attempt goes to another host.
            if attempt.number() == 3 {
                let path = request.uri().path().to_string();
                *request.uri_mut() = format!("http://{spare_authority}{path}").parse().unwrap();
            }
        },
    );
    let mut service = layer.layer(client::<Full<Bytes>>());
    let sent = payload(1024);
    let body = Full::new(Bytes::from(sent.clone()));
    let response = send(&mut service, request(Method::POST, busy.url("/pay"), body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(*seen.lock().unwrap(), [(1, false), (2, false), (3, false)]);
    let (busy, spare) = (busy.log(), spare.log());
    let attempts: Vec<_> = busy
        .iter()
        .chain(&spare)
        .map(|s| s.attempt.clone())
        .collect();
    assert_eq!(
        attempts,
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );
    assert_eq!((busy.len(), spare.len()), (2, 1));
    assert_eq!((spare[0].len, spare[0].hash), (sent.len(), hash(&sent)));
    let key = &busy[0].key;
    assert!(
        key.as_ref()
            .is_some_and(|key| key.len() == 32 && key != "upload-1"),
        "the hook's key replaced the request's: {key:?}"
    );
    assert!(
        busy.iter().chain(&spare).all(|s| &s.key == key),
        "one key for the call"
    );
}

#[tokio::test(start_paused = true)]
async fn a_response_whose_body_fails_is_not_sent_again() {
    // Headers, then part of the body, then a reset: the layer has handed
    // the response to the caller, and a retry would be a second request.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            *counted.lock().unwrap() += 1;
            let mut stream = BufReader::new(stream);
            let mut line = String::new();
            while stream.read_line(&mut line).await.unwrap() > 2 {
                line.clear();
            }
            let mut stream = stream.into_inner();
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial";
            stream.write_all(head.as_bytes()).await.unwrap();
            #[allow(deprecated, reason = "zero linger: a reset, which never blocks")]
            stream.set_linger(Some(Duration::ZERO)).unwrap();
        }
    });
    let mut service = ResilientLayer::new(&RETRY)
        .classify(Http)
        .layer(client::<Full<Bytes>>());
    let body = Full::new(Bytes::new());
    let response = send(
        &mut service,
        request(Method::GET, format!("http://{addr}/"), body),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.into_body().collect().await.is_err(),
        "the body was cut"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*requests.lock().unwrap(), 1);
}
