//! `steadfast::tower::RateLimitLayer` in front of a real axum server on
//! 127.0.0.1, called with reqwest: limits per tenant, the fields of
//! admitted and refused responses (parsed back as RFC 9651 items), requests
//! without a tenant, and one limit shared by two servers through a real
//! `redis-server`.
//!
//! The clock is the real one: the limits are per minute, so no token comes
//! back while a test runs, and values in whole seconds rounded up do not
//! depend on the milliseconds a request takes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode};
use steadfast::redis::Redis;
use steadfast::tower::RateLimitLayer;
use steadfast::{Keyed, RateLimiter};
use tower::{Layer, Service, ServiceExt};

/// The tenant a request is for: its `x-tenant` header, if present and not
/// empty.
fn tenant_of(request: &Parts) -> Option<String> {
    let tenant = request.headers.get("x-tenant")?.to_str().ok()?;
    (!tenant.is_empty()).then(|| tenant.to_owned())
}

/// An app whose one handler counts the requests that reach it.
struct App {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl App {
    /// Serves `Router::new().fallback(..).layer(layer)` on a free port.
    async fn start<F>(layer: RateLimitLayer<String, F>) -> App
    where
        F: Fn(&Parts) -> Option<String> + Clone + Send + Sync + 'static,
    {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = Router::new()
            .fallback(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { "hello" }
            })
            .layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        App { url, hits }
    }

    /// A GET for `tenant` (no `x-tenant` header for `None`).
    async fn get(&self, tenant: Option<&str>) -> Answer {
        let mut request = client().get(&self.url);
        if let Some(tenant) = tenant {
            request = request.header("x-tenant", tenant);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(reqwest::Client::new);
    &CLIENT
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// `RateLimit-Policy` parsed: `(q, w)` of the `"default"` policy.
    fn policy(&self) -> (u64, u64) {
        let params = item(&self.headers, "ratelimit-policy");
        assert_eq!(params.len(), 2, "{params:?}");
        (params["q"], params["w"])
    }

    /// `RateLimit` parsed: `(r, t)` of the `"default"` policy.
    fn limit(&self) -> (u64, u64) {
        let params = item(&self.headers, "ratelimit");
        assert_eq!(params.len(), 2, "{params:?}");
        (params["r"], params["t"])
    }

    fn retry_after(&self) -> Option<u64> {
        let value = self.headers.get("retry-after")?;
        Some(value.to_str().unwrap().parse().unwrap())
    }

    fn has_fields(&self) -> bool {
        ["ratelimit-policy", "ratelimit", "retry-after"]
            .iter()
            .any(|name| self.headers.contains_key(*name))
    }
}

/// Parses the one field line `name` as an RFC 9651 List holding one Item:
/// the String `"default"` with Integer parameters, e.g.
/// `"default";q=100;w=60`. Panics on anything else, so that a malformed
/// field fails the test that reads it.
fn item(headers: &HeaderMap, name: &str) -> BTreeMap<String, u64> {
    let lines: Vec<_> = headers.get_all(name).iter().collect();
    assert_eq!(lines.len(), 1, "one `{name}` field line: {lines:?}");
    let line = lines[0].to_str().unwrap();
    let rest = line
        .strip_prefix("\"default\"")
        .unwrap_or_else(|| panic!("`{name}: {line}` does not start with the String \"default\""));
    let mut params = BTreeMap::new();
    for param in rest.split(';').skip(1) {
        let (key, value) = param
            .split_once('=')
            .unwrap_or_else(|| panic!("`{param}` in `{line}` is not key=value"));
        // An sf-integer: at most 15 digits, no sign here (all are
        // non-negative), no leading `+`, no spaces.
        assert!(
            key.bytes().all(|b| b.is_ascii_lowercase()) && !key.is_empty(),
            "key `{key}` in `{line}`"
        );
        assert!(
            !value.is_empty() && value.len() <= 15 && value.bytes().all(|b| b.is_ascii_digit()),
            "integer `{value}` in `{line}`"
        );
        let old = params.insert(key.to_owned(), value.parse().unwrap());
        assert!(old.is_none(), "`{key}` twice in `{line}`");
    }
    assert!(
        !rest.is_empty() && rest.starts_with(';'),
        "`{line}`: parameters"
    );
    params
}

// ------------------------------------------------------------------ local

static ISOLATED: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_minute(3));

#[tokio::test]
async fn each_tenant_has_a_limit_of_its_own() {
    let app = App::start(RateLimitLayer::new(&ISOLATED, tenant_of)).await;

    for _ in 0..3 {
        assert_eq!(app.get(Some("acme")).await.status, StatusCode::OK);
    }
    let refused = app.get(Some("acme")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.hits(), 3, "a refused request never reaches the handler");

    // acme's exhausted bucket is acme's alone.
    let other = app.get(Some("globex")).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, "hello");
    assert_eq!(other.limit().0, 2);
    assert_eq!(app.hits(), 4);
    assert_eq!(
        app.get(Some("acme")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

static COUNTED: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_minute(3));

#[tokio::test]
async fn admitted_responses_carry_the_policy_and_what_remains() {
    let app = App::start(RateLimitLayer::new(&COUNTED, tenant_of)).await;

    // 3 a minute: a token every 20 s, a bucket of 3 that fills in 60 s.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let answer = app.get(Some("acme")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.policy(), (3, 60));
        assert_eq!(answer.retry_after(), None, "no Retry-After on a 200");
        seen.push(answer.limit());
    }
    // r: what is left after this request; t: seconds until the bucket is
    // full again, rounded up.
    assert_eq!(seen, [(2, 20), (1, 40), (0, 60)]);

    // The exact bytes, as a client's parser would see them.
    let answer = app.get(Some("initech")).await;
    assert_eq!(answer.headers["ratelimit-policy"], r#""default";q=3;w=60"#);
    assert_eq!(answer.headers["ratelimit"], r#""default";r=2;t=20"#);
}

static REFUSING: Keyed<String, RateLimiter> = Keyed::new(|tenant| {
    // The factory is given the key: one tenant is on a per-second plan.
    if tenant == "fast" {
        RateLimiter::per_second(10).burst(1)
    } else if tenant == "tens" {
        RateLimiter::per_period(3, Duration::from_secs(10))
    } else {
        RateLimiter::per_minute(3)
    }
});

#[tokio::test]
async fn a_refused_request_is_told_when_to_come_back() {
    let app = App::start(RateLimitLayer::new(&REFUSING, tenant_of)).await;
    for _ in 0..3 {
        app.get(Some("acme")).await;
    }

    let refused = app.get(Some("acme")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body, "", "the 429 has no body");
    assert_eq!(refused.headers["content-length"], "0");
    // The next token is 20 s away (less the time the requests took),
    // rounded up.
    assert_eq!(refused.retry_after(), Some(20));
    assert_eq!(refused.policy(), (3, 60));
    // Nothing left, and the effective window ends when Retry-After does.
    assert_eq!(refused.limit(), (0, 20));
    assert_eq!(app.hits(), 3);

    // 10 a second with a burst of 1: the next token is 100 ms away, which
    // is said as 1 s (delay-seconds are whole, and 0 would invite a retry
    // at once); the window, a tenth of a second, is said as 1 s too.
    assert_eq!(app.get(Some("fast")).await.status, StatusCode::OK);
    let refused = app.get(Some("fast")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.retry_after(), Some(1));
    assert_eq!(refused.policy(), (1, 1));
    assert_eq!(refused.limit(), (0, 1));

    // 3 every 10 s is said as such, though the limiter's interval is
    // 3.333333334 s (rounded up to the nanosecond); the next token is
    // 3.33 s away, said as 4.
    let answer = app.get(Some("tens")).await;
    assert_eq!((answer.policy(), answer.limit()), ((3, 10), (2, 4)));

    // Told 1 s, a client that waits that long is served.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.get(Some("fast")).await.status, StatusCode::OK);
}

static STRICT: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_minute(100));

#[tokio::test]
async fn requests_without_a_key_are_refused_by_default() {
    let app = App::start(RateLimitLayer::new(&STRICT, tenant_of)).await;

    for tenant in [None, Some("")] {
        let answer = app.get(tenant).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{tenant:?}");
        assert_eq!(answer.body, "");
        assert!(!answer.has_fields(), "no policy applies to it");
    }
    assert_eq!(app.hits(), 0);
    assert_eq!(STRICT.len(), 0, "a keyless request makes no entry");
    assert_eq!(app.get(Some("acme")).await.status, StatusCode::OK);
}

static TENANTS: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_minute(100));
static ANONYMOUS: RateLimiter = RateLimiter::per_minute(2);

#[tokio::test]
async fn requests_without_a_key_share_the_keyless_bucket() {
    let app = App::start(RateLimitLayer::new(&TENANTS, tenant_of).keyless(&ANONYMOUS)).await;

    // Two of them a minute, all together, with the fields of their bucket.
    let first = app.get(None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!((first.policy(), first.limit()), ((2, 60), (1, 30)));
    assert_eq!(app.get(Some("")).await.status, StatusCode::OK);
    let refused = app.get(None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.retry_after(), Some(30));
    assert_eq!(app.hits(), 2);

    // Tenants are not in that bucket, whatever they are called.
    for tenant in ["acme", "anonymous", "default"] {
        let answer = app.get(Some(tenant)).await;
        assert_eq!(answer.status, StatusCode::OK, "{tenant}");
        assert_eq!(answer.policy(), (100, 60));
    }
    assert_eq!(TENANTS.len(), 3);
}

// --------------------------------------------------------------- as tower

/// A service that is not ready until told, then answers or fails as told.
#[derive(Clone)]
struct Gate {
    ready: Arc<AtomicUsize>,
    fail: bool,
}

impl Service<Request<String>> for Gate {
    type Response = Response<String>;
    type Error = &'static str;
    type Future = Ready<Result<Response<String>, &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
        match self.ready.load(Ordering::SeqCst) {
            0 => Poll::Pending,
            1 => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err("closed")),
        }
    }

    fn call(&mut self, _: Request<String>) -> Self::Future {
        ready(if self.fail {
            Err("failed")
        } else {
            Ok(Response::new("served".into()))
        })
    }
}

static GATED: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_minute(1));

fn for_tenant(tenant: &str) -> Request<String> {
    Request::builder()
        .header("x-tenant", tenant)
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn readiness_and_errors_are_the_inner_services() {
    let ready = Arc::new(AtomicUsize::new(0));
    let gate = Gate {
        ready: ready.clone(),
        fail: false,
    };
    let mut service = RateLimitLayer::new(&GATED, tenant_of).layer(gate);
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);

    assert!(service.poll_ready(&mut cx).is_pending());
    ready.store(1, Ordering::SeqCst);
    assert_eq!(service.poll_ready(&mut cx), Poll::Ready(Ok(())));
    let served = service.call(for_tenant("acme")).await.unwrap();
    assert_eq!(served.body(), "served");
    // The layer's own answer needs no ready inner service.
    let refused = service.call(for_tenant("acme")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    ready.store(2, Ordering::SeqCst);
    assert_eq!(service.poll_ready(&mut cx), Poll::Ready(Err("closed")));

    // An inner error is the caller's, with no fields to carry.
    let failing = Gate {
        ready: Arc::new(AtomicUsize::new(1)),
        fail: true,
    };
    let service = RateLimitLayer::new(&GATED, tenant_of).layer(failing);
    let error = service.oneshot(for_tenant("globex")).await.unwrap_err();
    assert_eq!(error, "failed");
}

static REPLACING: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_minute(5));

#[tokio::test]
async fn the_fields_replace_those_the_inner_service_set() {
    let inner = tower::service_fn(|_: Request<String>| async {
        let mut response = Response::new(String::new());
        let headers = response.headers_mut();
        headers.insert("ratelimit", "\"default\";r=1000;t=0".parse().unwrap());
        headers.insert("ratelimit-policy", "\"default\";q=1000".parse().unwrap());
        Ok::<_, Infallible>(response)
    });
    let service = RateLimitLayer::new(&REPLACING, tenant_of).layer(inner);
    let response = service.oneshot(for_tenant("acme")).await.unwrap();
    let answer = Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::new(),
    };
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!((answer.policy(), answer.limit()), ((5, 60), (4, 12)));
}

// ------------------------------------------------------- shared by Redis

/// A `redis-server` of the test's own on a free port, killed on drop.
struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> (RedisServer, &'static str) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (`cargo xtask test` installs it)");
    let server = RedisServer(child);
    let start = Instant::now();
    loop {
        let mut reply = [0u8; 5];
        let pong = TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut stream| {
            stream.write_all(b"PING\r\n").is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG"
        });
        if pong {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let url = Box::leak(format!("redis://127.0.0.1:{port}").into_boxed_str());
    (server, url)
}

/// The URL of the test's server, set before the first limiter is made.
static REDIS_URL: OnceLock<&'static str> = OnceLock::new();
static REDIS: LazyLock<Redis> = LazyLock::new(|| Redis::new(REDIS_URL.get().expect("set first")));

/// Ten a minute per tenant for the fleet; each replica holds at most one
/// token it has not spent (`lease(1)`), so the fleet's count is exact.
fn fleet_limit(tenant: &str) -> RateLimiter {
    RateLimiter::per_minute(10)
        .lease(1)
        .shared_as(&REDIS, format!("inbound-test:tenant:{tenant}"))
}

/// Two replicas: two maps, as two processes would have.
static REPLICA_A: Keyed<String, RateLimiter> = Keyed::new(|tenant| fleet_limit(tenant));
static REPLICA_B: Keyed<String, RateLimiter> = Keyed::new(|tenant| fleet_limit(tenant));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_shared_through_redis_holds_across_two_servers() {
    let (_server, url) = start_redis();
    REDIS_URL.set(url).unwrap();
    let a = App::start(RateLimitLayer::new(&REPLICA_A, tenant_of)).await;
    let b = App::start(RateLimitLayer::new(&REPLICA_B, tenant_of)).await;

    let mut admitted = [0; 2];
    for round in 0..15 {
        for (replica, app) in [&a, &b].into_iter().enumerate() {
            let answer = app.get(Some("acme")).await;
            match answer.status {
                StatusCode::OK => {
                    admitted[replica] += 1;
                    let (remaining, _) = answer.limit();
                    assert!(remaining < 10, "round {round}: r={remaining}");
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(answer.retry_after().is_some_and(|s| s >= 1));
                    assert_eq!(answer.limit().0, 0);
                }
                other => panic!("round {round}: {other}"),
            }
            assert_eq!(answer.policy(), (10, 60));
            // Time for the lease's top-up to land: a request that meets a
            // round trip in flight is refused for a millisecond.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let total = admitted[0] + admitted[1];
    // Two local limits would admit 20; the fleet's admits 10, less what
    // a replica's lease may still hold unspent at the end.
    assert!((8..=10).contains(&total), "admitted {admitted:?}");
    assert!(
        admitted.iter().all(|&n| n >= 3),
        "both served: {admitted:?}"
    );
    assert_eq!(a.hits() + b.hits(), total);

    // Another tenant is still served by either.
    assert_eq!(b.get(Some("globex")).await.status, StatusCode::OK);
}

static DESCRIBED: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_minute(1));
static DESCRIBED_KEYLESS: RateLimiter = RateLimiter::per_minute(1);

#[tokio::test]
async fn layers_services_and_futures_say_what_they_are() {
    let layer = RateLimitLayer::new(&DESCRIBED, tenant_of).keyless(&DESCRIBED_KEYLESS);
    let text = format!("{:?}", layer.clone());
    assert!(
        text.starts_with("RateLimitLayer { limits: Keyed { len: 0"),
        "{text}"
    );
    assert!(text.contains("keyless: Some(RateLimiter {"), "{text}");

    let mut service = layer.layer(Gate {
        ready: Arc::new(AtomicUsize::new(1)),
        fail: false,
    });
    assert_eq!(service.get_ref().ready.load(Ordering::SeqCst), 1);
    let future = service.call(for_tenant("acme"));
    assert_eq!(format!("{future:?}"), "RateLimitFuture { .. }");
    assert_eq!(future.await.unwrap().body(), "served");
    struct Named;
    impl std::fmt::Debug for Named {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Named")
        }
    }
    let text = format!(
        "{:?}",
        RateLimitLayer::new(&DESCRIBED, tenant_of).layer(Named)
    );
    assert!(
        text.starts_with("RateLimited { inner: Named, limits: Keyed { len: 1"),
        "{text}"
    );
    assert!(text.ends_with("keyless: None, .. }"), "{text}");
    let gate = service.clone().into_inner();
    assert!(!gate.fail);
}
