//! `ResilientLayer` on a tonic `Channel`, against tonic-health's server on
//! 127.0.0.1: the generated client works through the layer, and the
//! policy's protections apply to every gRPC call. A channel's request
//! bodies are streams, so the layer is used with `SendOnce`: it guards but
//! does not retry (retrying a gRPC call is `Policy::retry` around the
//! client's method; see `tonic.rs`).

use std::time::Duration;

use steadfast::tower::{BoxError, ResilientLayer, SendOnce};
use steadfast::{CircuitBreaker, CircuitOpen, Policy};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;

/// tonic-health's server on a free port of 127.0.0.1; a channel to it.
async fn health_server() -> Channel {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = Server::builder().serve_with_incoming(health, TcpIncoming::from(listener));
    tokio::spawn(server);
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

static BREAKER: CircuitBreaker = CircuitBreaker::new().open_for(Duration::from_secs(30));
static GUARD: Policy<BoxError> = Policy::new()
    .timeout(Duration::from_secs(1))
    .circuit_breaker(&BREAKER);

#[tokio::test]
async fn a_tonic_client_works_through_the_layer_and_an_open_breaker_fails_it_fast() {
    let channel = health_server().await;
    let guarded = ServiceBuilder::new()
        .layer(ResilientLayer::new(&GUARD).classify(SendOnce))
        .service(channel);
    let mut client = HealthClient::new(guarded);

    let reply = client.check(HealthCheckRequest::default()).await.unwrap();
    assert_eq!(reply.into_inner().status(), ServingStatus::Serving);

    BREAKER.force_open();
    let status = client
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    // tonic turns the layer's error into a `Status` carrying it.
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    let source = std::error::Error::source(&status).expect("the layer's error");
    assert!(source.downcast_ref::<CircuitOpen>().is_some(), "{source:?}");
}
