//! What the layer must know of a service's requests and responses: how to
//! replay a request, and which responses are failures.

use std::time::Duration;

use super::{BodyReplay, BoxError, NotReplayed, NotRetried};

/// How [`ResilientLayer`](super::ResilientLayer) treats a service's
/// requests and responses.
///
/// Implement it for a protocol of your own; [`Cloned`], [`SendOnce`] and
/// (with feature `http`) `Http` cover the common cases.
pub trait Classify<Req, Res> {
    /// Whether the requests are HTTP: with feature `tracing`, each
    /// attempt's `steadfast.attempt` span then carries OpenTelemetry's
    /// `http.request.resend_count` (attempt number − 1, absent on the first
    /// attempt). `false` unless said; `Http` says `true`.
    const HTTP: bool = false;

    /// A copy of `request` to send again if the first attempt fails, or
    /// `None`: the request is sent once and never retried.
    ///
    /// Called once per call, before the first attempt.
    fn replay(&self, request: &Req) -> Option<Req>;

    /// Whether `response` is a failure to retry, and the server's hint.
    /// `None` (the usual answer) is a success.
    fn response(&self, response: &Res) -> Option<FailedResponse>;

    /// [`replay`](Self::replay), with the layer's limits on what a body
    /// may buffer ([`max_replay_body`](super::ResilientLayer::max_replay_body),
    /// the [`ReplayPool`](super::ReplayPool)) and the request itself, for
    /// a classification that makes its body keep what it sends (`Http`
    /// arms a `ReplayBody` here). What the layer calls; by default,
    /// `replay`.
    fn replay_within(&self, request: &mut Req, body: &mut BodyReplay) -> Option<Req> {
        let _ = body;
        self.replay(request)
    }

    /// What the caller gets when an attempt failed in a way the policy
    /// retries but its body could not be sent again (`why`): by default,
    /// an error wrapped in [`NotRetried`], a response as it is (`Http`
    /// puts `why` in its extensions).
    fn not_replayed(
        &self,
        outcome: Result<Res, BoxError>,
        why: NotReplayed,
    ) -> Result<Res, BoxError> {
        outcome.map_err(|error| Box::new(NotRetried::new(why, error)) as BoxError)
    }
}

/// A response that is a failure: what events and the `on_retry` hook see
/// for it, and how long the server asked to wait.
#[derive(Debug)]
pub struct FailedResponse {
    /// The error that stands for the response in events and hooks (the
    /// caller still gets the response itself if the policy gives up).
    pub error: BoxError,
    /// The server's suggested delay, e.g. from `Retry-After`; it replaces
    /// the backoff's and is capped by `max_delay`.
    pub retry_after: Option<Duration>,
}

/// Replays any `Req: Clone`; every response is a success.
///
/// The default for [`ResilientLayer::new`](super::ResilientLayer::new).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cloned;

impl<Req: Clone, Res> Classify<Req, Res> for Cloned {
    fn replay(&self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }

    fn response(&self, _: &Res) -> Option<FailedResponse> {
        None
    }
}

/// Sends every request once and takes every response as a success: the
/// layer protects the service (breaker, rate limit, bulkhead, timeout,
/// deadline) but never retries.
///
/// For services whose requests cannot be copied, such as a tonic
/// `Channel` (its request bodies are streams). Retry a gRPC call with
/// [`Policy::retry`](crate::Policy::retry) around the generated client's
/// method instead, where the request is built again for each attempt.
///
/// ```
/// use retry_runtime::Policy;
/// use retry_runtime::tower::{BoxError, ResilientLayer, SendOnce};
///
/// static GUARD: Policy<BoxError> = Policy::new().max_attempts(1);
/// let layer = ResilientLayer::new(&GUARD).classify(SendOnce);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOnce;

impl<Req, Res> Classify<Req, Res> for SendOnce {
    fn replay(&self, _: &Req) -> Option<Req> {
        None
    }

    fn response(&self, _: &Res) -> Option<FailedResponse> {
        None
    }
}
