//! A [`Policy`](crate::Policy) as tower middleware (feature `tower`), and,
//! with feature `http`, an inbound rate limit by key: `RateLimitLayer`
//! answers `429` with `Retry-After` and the IETF `RateLimit` fields for
//! requests over their key's limit, in front of a server's handlers.
//!
//! [`ResilientLayer`] wraps any [`Service`](tower_service::Service) in the
//! policy's whole composition, in the attribute's order: deadline, retry
//! with backoff and budget, circuit breaker, rate limit, bulkhead, timeout,
//! then the inner service. It runs on the same loop as
//! [`Policy::retry`](crate::Policy::retry); what the layer adds is what a
//! service's requests and responses need:
//!
//! - **Replay.** A retry sends the request again, so the layer keeps a copy
//!   before the first attempt. What can be copied is the [`Classify`]'s
//!   business: [`Cloned`] (the default) replays any `Req: Clone`;
//!   `Http` (with feature `http`) replays an `http::Request<B>` whose
//!   body is `Clone`, and only when the request is safe to send twice (an
//!   idempotent method, or an `Idempotency-Key` header); [`SendOnce`]
//!   never replays (a tonic `Channel`, whose bodies are streams). A request
//!   that cannot be replayed is sent once, still guarded by the breaker,
//!   limiter, bulkhead and timeout: it is never retried.
//! - **Bodies.** With `Http`, a body that is not `Clone` (a stream) is
//!   replayed when wrapped in a `ReplayBody`: it keeps the chunks the first
//!   attempt sends, up to [`ResilientLayer::max_replay_body`] (64 KiB) and
//!   what the [`ReplayPool`] has room for; a larger body is sent once, and
//!   the caller finds [`NotReplayed`] on what it gets back
//!   ([`NotRetried`] for an error).
//! - **Each attempt's request.** [`ResilientLayer::on_attempt`] edits the
//!   request each attempt sends (another host, a fresh header, the call's
//!   idempotency key), knowing the [`Attempt`](crate::Attempt).
//! - **Responses that are failures.** With `Http`, a response with a
//!   retryable status (`503`, `429`, ...) is retried like an error,
//!   honouring its `Retry-After` (capped by `max_delay`, as the attribute's
//!   `retry_after` is); if the policy gives up, the caller gets that last
//!   response, not an error.
//! - **Errors.** The layer's error type is tower's `BoxError` (the inner
//!   service's error, or the library's own `Elapsed`, `CircuitOpen` and
//!   `Rejected`), so the policy is a `Policy<BoxError>` and its `retry_if`
//!   sees the boxed error (downcast it to classify).
//!
//! # Readiness
//!
//! `poll_ready` is the inner service's: the layer takes no permit there, so
//! a service polled ready and then dropped, or kept ready for a while,
//! holds nothing of the policy. The call's future takes the policy's
//! permits for each attempt, then (for a retry) waits for a clone of the
//! inner service to be ready, within the attempt's timeout. The first
//! attempt uses the service `poll_ready` made ready, as tower requires.
//!
//! The call's future is boxed (`Pin<Box<dyn Future + Send>>`): tower's
//! `Service` must name its future's type, and the loop's is unnameable.
//! That is one allocation per call, as with `BoxService`.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use retry_runtime::Policy;
//! use retry_runtime::tower::{BoxError, ResilientLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! static POLICY: Policy<BoxError> = Policy::new()
//!     .max_attempts(3)
//!     .timeout(Duration::from_secs(2));
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let calls = Arc::new(AtomicU32::new(0));
//! let seen = calls.clone();
//! let flaky = service_fn(move |request: u32| {
//!     let busy = seen.fetch_add(1, Ordering::SeqCst) == 0;
//!     async move { if busy { Err(BoxError::from("busy")) } else { Ok(request * 2) } }
//! });
//! let mut service = ServiceBuilder::new()
//!     .layer(ResilientLayer::new(&POLICY))
//!     .service(flaky);
//! let response = service.ready().await.unwrap().call(21).await.unwrap();
//! assert_eq!((response, calls.load(Ordering::SeqCst)), (42, 2));
//! # }
//! ```

#[cfg(feature = "http")]
mod body;
mod classify;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
mod inbound;
mod layer;
mod replay;
mod service;

#[cfg(feature = "http")]
pub use body::ReplayBody;
pub use classify::{Classify, Cloned, FailedResponse, SendOnce};
#[cfg(feature = "http")]
pub use http::{Http, ReplayableBody, RetryableStatus};
#[cfg(feature = "http")]
pub use inbound::{RateLimitFuture, RateLimitLayer, RateLimited};
pub use layer::ResilientLayer;
pub use replay::{
    BodyReplay, DEFAULT_MAX_REPLAY_BODY, DEFAULT_REPLAY_POOL, NotReplayed, NotRetried, ReplayPool,
};
pub use service::{OnAttempt, Resilient};

/// tower's error type: what the layer's service fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
