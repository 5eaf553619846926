//! [`Classify`] for HTTP: replay only what is safe to send twice, retry
//! the statuses that say "try again", honour `Retry-After`.

use std::fmt;

use bytes::Bytes;

use super::{BodyReplay, BoxError, Classify, FailedResponse, NotReplayed, NotRetried, ReplayBody};

/// HTTP over tower: replays only requests safe to send twice, and retries
/// responses with a retryable status, honouring `Retry-After`.
///
/// - A request is replayed when [`is_replayable`](crate::http::is_replayable)
///   says so (an idempotent method, or an `Idempotency-Key` header) and
///   its body can be sent again ([`ReplayableBody`]): a body that is
///   `Clone` (`String`, `Bytes`, `http_body_util::Full`, ...) by a clone,
///   any other wrapped in a [`ReplayBody`], which keeps what the first
///   attempt sends, within the layer's caps. The copy keeps the method,
///   URI, version, headers and extensions.
/// - A response whose status [`is_retryable_status`](crate::http::is_retryable_status)
///   (408, 429, 500, 502, 503, 504) is a failure; its
///   [`retry_after`](crate::http::retry_after) is the hint. One handed back
///   because its body could not be sent again carries [`NotReplayed`] in
///   its extensions.
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

impl<B: ReplayableBody, R> Classify<http::Request<B>, http::Response<R>> for Http {
    const HTTP: bool = true;

    fn replay(&self, request: &http::Request<B>) -> Option<http::Request<B>> {
        if !crate::http::is_replayable(request.method(), request.headers()) {
            return None;
        }
        Some(with_head(request, request.body().again()?))
    }

    fn replay_within(
        &self,
        request: &mut http::Request<B>,
        body: &mut BodyReplay,
    ) -> Option<http::Request<B>> {
        if !crate::http::is_replayable(request.method(), request.headers()) {
            return None;
        }
        let copy = request.body_mut().arm(body)?;
        Some(with_head(request, copy))
    }

    fn response(&self, response: &http::Response<R>) -> Option<FailedResponse> {
        let status = response.status();
        crate::http::is_retryable_status(status).then(|| FailedResponse {
            error: Box::new(RetryableStatus(status)),
            retry_after: crate::http::retry_after(response.headers()),
        })
    }

    fn not_replayed(
        &self,
        outcome: Result<http::Response<R>, BoxError>,
        why: NotReplayed,
    ) -> Result<http::Response<R>, BoxError> {
        match outcome {
            Ok(mut response) => {
                response.extensions_mut().insert(why);
                Ok(response)
            }
            Err(error) => Err(Box::new(NotRetried::new(why, error))),
        }
    }
}

/// `body` under `request`'s method, URI, version, headers and extensions.
fn with_head<B, C>(request: &http::Request<B>, body: C) -> http::Request<C> {
    let mut copy = http::Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

/// A request body [`Http`] can send again: any body that is `Clone`, by a
/// clone (no cap applies: the bytes are the caller's already, and a
/// `Bytes` clone is a reference count), and a [`ReplayBody`], by the
/// chunks it keeps as it is sent, within the layer's caps.
///
/// Sealed: wrap any other body in a [`ReplayBody`].
pub trait ReplayableBody: Sized + sealed::Sealed {
    /// Makes the body keep what it sends, if it must, and returns a copy
    /// for the next attempt.
    #[doc(hidden)]
    fn arm(&mut self, replay: &mut BodyReplay) -> Option<Self>;

    /// A copy for one more attempt.
    #[doc(hidden)]
    fn again(&self) -> Option<Self>;
}

mod sealed {
    pub trait Sealed {}
}

impl<B: Clone> sealed::Sealed for B {}

impl<B: Clone> ReplayableBody for B {
    #[inline]
    fn arm(&mut self, _: &mut BodyReplay) -> Option<Self> {
        Some(self.clone())
    }

    #[inline]
    fn again(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<B> sealed::Sealed for ReplayBody<B> {}

impl<B> ReplayableBody for ReplayBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
{
    fn arm(&mut self, replay: &mut BodyReplay) -> Option<Self> {
        ReplayBody::arm(self, replay)
    }

    fn again(&self) -> Option<Self> {
        ReplayBody::again(self)
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
