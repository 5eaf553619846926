//! A tonic client made resilient with steadfast, against a flaky gRPC server
//! started here: tonic-health's `Health` service behind a gate that answers
//! the first call `Unavailable` with `grpc-retry-pushback-ms: 300`, the
//! second `ResourceExhausted` with a `google.rpc.RetryInfo` of 700 ms, and
//! serves the third; a second check then meets a server that pushes back
//! with `-1`, gRPC's "do not retry".
//!
//!     cargo run -p steadfast-protocol-tests --example grpc_client
//!
//! Each wait is the server's, slept exactly: no backoff, no jitter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use steadfast::resilient;
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

#[resilient(max_attempts = 4,
            retry_if = steadfast::tonic::is_retryable,
            retry_after = steadfast::tonic::retry_after,
            attempt = attempt,
            on_retry = |event| println!("  waiting {:?}", event.delay()))]
async fn check(client: &HealthClient<Channel>) -> Result<ServingStatus, Status> {
    let reply = client.clone().check(HealthCheckRequest::default()).await;
    match &reply {
        Ok(_) => println!("attempt {}: Ok", attempt.number()),
        Err(status) => println!(
            "attempt {}: {:?} {:?}{}",
            attempt.number(),
            status.code(),
            status.message(),
            hint(status),
        ),
    }
    Ok(reply?.into_inner().status())
}

/// Where the server's wait came from, as the example's reader would ask.
fn hint(status: &Status) -> String {
    if let Some(pushback) = status.metadata().get("grpc-retry-pushback-ms") {
        return format!(" (grpc-retry-pushback-ms: {pushback:?})");
    }
    match status.get_details_retry_info() {
        Some(info) => format!(" (RetryInfo: {:?})", info.retry_delay),
        None => String::new(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = flaky_server().await?;
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let client = HealthClient::new(channel);

    let start = Instant::now();
    let serving = check(&client).await?;
    println!("{serving:?} after {:.1?}\n", start.elapsed());

    let start = Instant::now();
    match check(&client).await {
        Ok(serving) => println!("{serving:?}"),
        Err(status) => println!("gave up: {:?} after {:.1?}", status.code(), start.elapsed()),
    }
    Ok(())
}

/// tonic-health on 127.0.0.1, failing calls 1, 2 and 4 as a loaded server
/// would.
async fn flaky_server() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicU32::new(0));
    let gate = move |request: Request<()>| -> Result<Request<()>, Status> {
        match calls.fetch_add(1, Ordering::SeqCst) + 1 {
            1 => Err(pushed_back(Code::Unavailable, "300")),
            2 => Err(Status::with_error_details(
                Code::ResourceExhausted,
                "quota exceeded",
                ErrorDetails::with_retry_info(Some(Duration::from_millis(700))),
            )),
            4 => Err(pushed_back(Code::Unavailable, "-1")),
            _ => Ok(request),
        }
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let service = InterceptedService::new(health, gate);
    tokio::spawn(Server::builder().serve_with_incoming(service, TcpIncoming::from(listener)));
    Ok(addr)
}

fn pushed_back(code: Code, millis: &'static str) -> Status {
    let mut status = Status::new(code, "shedding load");
    let value = MetadataValue::from_static(millis);
    status
        .metadata_mut()
        .insert("grpc-retry-pushback-ms", value);
    status
}
