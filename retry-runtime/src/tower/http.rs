//! [`Classify`] for HTTP: replay only what is safe to send twice, retry
//! the statuses that say "try again", honour `Retry-After`.

use std::fmt;

use super::{Classify, FailedResponse};

/// HTTP over tower: replays only requests safe to send twice, and retries
/// responses with a retryable status, honouring `Retry-After`.
///
/// - A request is replayed when [`is_replayable`](crate::http::is_replayable)
///   says so (an idempotent method, or an `Idempotency-Key` header) and
///   its body is `Clone` (`String`, `Bytes`, `http_body_util::Full`, ...).
///   The copy keeps the method, URI, version, headers and extensions.
/// - A response whose status [`is_retryable_status`](crate::http::is_retryable_status)
///   (408, 429, 500, 502, 503, 504) is a failure; its
///   [`retry_after`](crate::http::retry_after) is the hint.
///
/// ```
/// use retry_runtime::Policy;
/// use retry_runtime::tower::{BoxError, Http, ResilientLayer};
///
/// static POLICY: Policy<BoxError> = Policy::new().max_attempts(4);
/// let layer = ResilientLayer::new(&POLICY).classify(Http);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Http;

impl<B: Clone, R> Classify<http::Request<B>, http::Response<R>> for Http {
    const HTTP: bool = true;

    fn replay(&self, request: &http::Request<B>) -> Option<http::Request<B>> {
        if !crate::http::is_replayable(request.method(), request.headers()) {
            return None;
        }
        let mut copy = http::Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }

    fn response(&self, response: &http::Response<R>) -> Option<FailedResponse> {
        let status = response.status();
        crate::http::is_retryable_status(status).then(|| FailedResponse {
            error: Box::new(RetryableStatus(status)),
            retry_after: crate::http::retry_after(response.headers()),
        })
    }
}

/// The error that stands for a response with a retryable status in events
/// and `on_retry` hooks: `503 Service Unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryableStatus(pub http::StatusCode);

impl fmt::Display for RetryableStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server answered {}", self.0)
    }
}

impl std::error::Error for RetryableStatus {}
