//! A `steadfast::Policy` as tower middleware around hyper-util's HTTP
//! client, calling a flaky server started in this process.
//!
//!   cargo run -p steadfast-protocol-tests --example tower_client
//!
//! The server answers `503` with `Retry-After: 1`, then `502`, then `200`.
//! The layer retries the GET (safe to replay) after the server's hint, then
//! after the backoff's delay; a POST without an `Idempotency-Key` is sent
//! once and its `503` handed back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use steadfast::tower::{BoxError, Http, ResilientLayer};
use steadfast::{Policy, RetryEvent};
use tower::{Service, ServiceBuilder, ServiceExt};

static POLICY: Policy<BoxError> = Policy::new()
    .max_attempts(4)
    .base_delay(Duration::from_millis(200))
    .timeout(Duration::from_secs(2))
    .on_retry(print_retry);

fn print_retry(event: &RetryEvent<'_, BoxError>) {
    println!(
        "  attempt {} failed ({}); next in {:?}",
        event.attempt(),
        event.error(),
        event.delay()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = Router::new().fallback(move || {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut response = Response::new(String::new());
            match n {
                0 | 3 => {
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    response
                        .headers_mut()
                        .insert("retry-after", "1".parse().unwrap());
                }
                1 => *response.status_mut() = StatusCode::BAD_GATEWAY,
                _ => *response.body_mut() = "hello".into(),
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut service = ServiceBuilder::new()
        .layer(ResilientLayer::new(&POLICY).classify(Http))
        .service(client);

    for method in [Method::GET, Method::POST] {
        println!("{method} http://{addr}/");
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))?;
        let started = tokio::time::Instant::now();
        let response = service.ready().await?.call(request).await?;
        println!(
            "  -> {} after {:.1?} ({} requests reached the server so far)",
            response.status(),
            started.elapsed(),
            calls.load(Ordering::SeqCst)
        );
    }
    Ok(())
}
