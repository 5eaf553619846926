//! An axum server that limits each tenant (the `x-tenant` header) with
//! `steadfast::tower::RateLimitLayer`: over its limit, a tenant is answered
//! `429` with `Retry-After`; every answer carries the IETF `RateLimit` and
//! `RateLimit-Policy` fields.
//!
//!   cargo run -p steadfast-protocol-tests --example inbound_server
//!   cargo run -p steadfast-protocol-tests --example inbound_server -- --port 8080
//!   cargo run -p steadfast-protocol-tests --example inbound_server -- --once
//!
//! It listens on 127.0.0.1:3000 until Ctrl-C and prints `curl` commands
//! to try. With `--once` it listens on a free port, sends its own requests,
//! prints what came back and exits (non-zero if an answer was not the one
//! expected).
//!
//! With `REDIS_URL` set (e.g. `redis://127.0.0.1:6379`), the limits are
//! shared through Redis: start two of these on two ports and a tenant's
//! limit holds for both together. (`--once` ignores it: its requests would
//! meet the buckets other runs left on Redis.)

use std::error::Error;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::routing::get;
use steadfast::redis::Redis;
use steadfast::tower::RateLimitLayer;
use steadfast::{Keyed, RateLimiter};

/// A tenant's limit from its plan, which here its name tells: `pro-`
/// tenants get 10 requests a second, the others 3 every 10 seconds.
static PER_TENANT: Keyed<String, RateLimiter> = Keyed::new(|tenant| {
    let limit = if tenant.starts_with("pro-") {
        RateLimiter::per_second(10)
    } else {
        RateLimiter::per_period(3, Duration::from_secs(10))
    };
    if sharing() {
        limit.shared_as(&REDIS, format!("example:tenant:{tenant}"))
    } else {
        limit
    }
});

/// Requests without a tenant, all together: 2 every 10 seconds. (Without
/// `.keyless(..)`, they would be answered `400 Bad Request`.)
static ANONYMOUS: LazyLock<RateLimiter> = LazyLock::new(|| {
    let limit = RateLimiter::per_period(2, Duration::from_secs(10));
    if sharing() {
        limit.shared(&REDIS, "example:anonymous")
    } else {
        limit
    }
});

static REDIS: Redis = Redis::from_env("REDIS_URL");

/// Whether the limits are shared through Redis: set once, in `main`.
static SHARING: OnceLock<bool> = OnceLock::new();

fn sharing() -> bool {
    *SHARING.get_or_init(|| false)
}

/// The key: the `x-tenant` header, if present and not empty.
fn tenant_of(request: &Parts) -> Option<String> {
    let tenant = request.headers.get("x-tenant")?.to_str().ok()?;
    (!tenant.is_empty()).then(|| tenant.to_owned())
}

async fn hello(headers: HeaderMap) -> String {
    match headers.get("x-tenant").and_then(|t| t.to_str().ok()) {
        Some(tenant) => format!("hello, {tenant}\n"),
        None => "hello, stranger\n".to_owned(),
    }
}

fn app() -> Router {
    Router::new()
        .route("/", get(hello))
        .layer(RateLimitLayer::new(&PER_TENANT, tenant_of).keyless(&ANONYMOUS))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|arg| arg == "--once");
    let port = match args.iter().position(|arg| arg == "--port") {
        Some(at) => args.get(at + 1).ok_or("--port needs a number")?.parse()?,
        None if once => 0,
        None => 3000,
    };
    SHARING.get_or_init(|| !once && std::env::var_os("REDIS_URL").is_some());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("127.0.0.1:{port}: {e} (try --port 0 for any free port)"))?;
    let url = format!("http://{}/", listener.local_addr()?);
    let shared = if sharing() {
        "shared through REDIS_URL"
    } else {
        "local to this process"
    };
    if once {
        tokio::spawn(async move { axum::serve(listener, app()).await });
        return self_test(&url).await;
    }
    println!("listening on {url} (limits {shared}); Ctrl-C to stop. Try:\n");
    println!("  curl -i -H 'x-tenant: acme' {url}       # 3 every 10 s: the 4th is a 429");
    println!("  curl -i -H 'x-tenant: pro-acme' {url}   # 10 a second");
    println!("  curl -i {url}                           # no tenant: 2 every 10 s, all together");
    println!(
        "\n  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{{http_code}} %header{{ratelimit}} %header{{retry-after}}\\n' -H 'x-tenant: acme' {url}; done"
    );
    axum::serve(listener, app()).await?;
    Ok(())
}

/// Sends the requests a newcomer would try with curl, prints what came
/// back, and checks each status.
async fn self_test(url: &str) -> Result<(), Box<dyn Error>> {
    let client = reqwest::Client::new();
    let expected: &[(Option<&str>, u16)] = &[
        (Some("acme"), 200),
        (Some("acme"), 200),
        (Some("acme"), 200),
        (Some("acme"), 429),
        (Some("pro-acme"), 200),
        (None, 200),
        (None, 200),
        (None, 429),
    ];
    let mut wrong = 0;
    for (tenant, status) in expected {
        let mut request = client.get(url);
        if let Some(tenant) = tenant {
            request = request.header("x-tenant", *tenant);
        }
        let response = request.send().await?;
        let field = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        println!(
            "x-tenant: {:<9} -> {} | ratelimit-policy: {} | ratelimit: {} | retry-after: {}",
            tenant.unwrap_or("(none)"),
            response.status(),
            field("ratelimit-policy"),
            field("ratelimit"),
            field("retry-after"),
        );
        if response.status().as_u16() != *status {
            println!("  expected {status}");
            wrong += 1;
        }
    }
    if wrong > 0 {
        return Err(format!("{wrong} answers were not the expected ones").into());
    }
    println!("all {} answers as expected", expected.len());
    Ok(())
}
