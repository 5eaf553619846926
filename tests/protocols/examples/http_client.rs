//! A reqwest client made resilient with steadfast, against a flaky server
//! started here: it answers 503 with `Retry-After: 1`, then 500, then 200.
//!
//!     cargo run -p steadfast-protocol-tests --example http_client
//!
//! The first wait is the server's Retry-After, slept exactly; the second,
//! with no hint, is the backoff's: exponential from 200 ms with full
//! jitter, so anything up to 400 ms before the second retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::IntoResponse;
use http::StatusCode;
use http::header::RETRY_AFTER;
use steadfast::reqwest::{Error, error_for_status, retry_after};
use steadfast::{Policy, RetryEvent};

static POLICY: Policy<Error> = Policy::new()
    .max_attempts(4)
    .base_delay(Duration::from_millis(200))
    // A longer Retry-After would end the call rather than park it.
    .max_delay(Duration::from_secs(2))
    .retry_if(Error::is_transient)
    .retry_after(Error::retry_after)
    .on_retry(log_retry);

fn log_retry(event: &RetryEvent<'_, Error>) {
    let why = match event.error().retry_after() {
        Some(_) => "the server's Retry-After",
        None => "backoff",
    };
    println!("  waiting {:.0?} ({why})", event.delay());
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = flaky_server().await?;
    // The policy above does the retrying: reqwest's own policy off, so
    // that each attempt is one request (see `steadfast::reqwest`, "With
    // reqwest's own retries").
    let client = reqwest::Client::builder()
        .no_proxy()
        .retry(reqwest::retry::never())
        .build()?;
    let (client, url) = (&client, url.as_str());

    let start = Instant::now();
    let body = POLICY
        .retry(|attempt| async move {
            let response = client.get(url).send().await?;
            match retry_after(&response) {
                Some(hint) => println!(
                    "attempt {}: {} (Retry-After: {hint:?})",
                    attempt.number(),
                    response.status()
                ),
                None => println!("attempt {}: {}", attempt.number(), response.status()),
            }
            Ok(error_for_status(response)?.text().await?)
        })
        .await?;
    println!("got {body:?} after {:.1?}", start.elapsed());
    Ok(())
}

/// A server on 127.0.0.1 that fails twice before answering; returns its URL.
async fn flaky_server() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/prices", listener.local_addr()?);
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new().fallback(move || {
        let hit = hits.fetch_add(1, Ordering::SeqCst);
        async move {
            match hit {
                0 => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(RETRY_AFTER, "1")],
                    "busy",
                )
                    .into_response(),
                1 => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
                _ => "fresh prices".into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
