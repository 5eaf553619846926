//! The layer: a policy and a classification, applied to a service.

use tower_layer::Layer;

use super::replay::{DEFAULT_MAX_REPLAY_BODY, PROCESS_POOL};
use super::{BoxError, Cloned, ReplayPool, Resilient};
use crate::Policy;

/// Applies a [`Policy`] to a tower service: see the [module](super) docs.
///
/// `C` says how requests are replayed and which responses fail:
/// [`Cloned`] by default, `Http` (feature `http`) for HTTP services. `H`
/// is the [`on_attempt`](Self::on_attempt) hook, `()` for none.
#[derive(Debug)]
pub struct ResilientLayer<C = Cloned, H = ()> {
    policy: &'static Policy<BoxError>,
    classify: C,
    max_replay_body: usize,
    pool: &'static ReplayPool,
    on_attempt: H,
}

impl ResilientLayer {
    /// A layer applying `policy`, replaying requests by `Clone` and taking
    /// every response as a success.
    #[must_use]
    pub const fn new(policy: &'static Policy<BoxError>) -> Self {
        ResilientLayer {
            policy,
            classify: Cloned,
            max_replay_body: DEFAULT_MAX_REPLAY_BODY,
            pool: &PROCESS_POOL,
            on_attempt: (),
        }
    }
}

impl<C, H> ResilientLayer<C, H> {
    /// The same layer, classifying with `classify`, e.g. `Http` (feature
    /// `http`) or [`SendOnce`](super::SendOnce).
    #[must_use]
    pub fn classify<D>(self, classify: D) -> ResilientLayer<D, H> {
        ResilientLayer {
            policy: self.policy,
            classify,
            max_replay_body: self.max_replay_body,
            pool: self.pool,
            on_attempt: self.on_attempt,
        }
    }

    /// The most bytes of one request's body kept to send it again: a body
    /// over it is sent once, keeps nothing, and a failure of it is not
    /// retried, which the caller is told
    /// ([`NotReplayed`](super::NotReplayed)).
    ///
    /// Applies to bodies the layer keeps as they are sent (a `ReplayBody`,
    /// feature `http`); a `Clone` body is replayed by a clone, whatever
    /// its size.
    ///
    /// # Default
    ///
    /// [`DEFAULT_MAX_REPLAY_BODY`](super::DEFAULT_MAX_REPLAY_BODY), 64 KiB.
    ///
    /// ```
    /// use retry_runtime::Policy;
    /// use retry_runtime::tower::{BoxError, ResilientLayer};
    ///
    /// static POLICY: Policy<BoxError> = Policy::new().max_attempts(3);
    /// let layer = ResilientLayer::new(&POLICY).max_replay_body(256 * 1024);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub const fn max_replay_body(mut self, bytes: usize) -> Self {
        self.max_replay_body = bytes;
        self
    }

    /// The pool that bounds the bytes every call of this layer keeps at
    /// once, shared with every layer given the same pool: see
    /// [`ReplayPool`].
    ///
    /// # Default
    ///
    /// One pool for the process, of
    /// [`DEFAULT_REPLAY_POOL`](super::DEFAULT_REPLAY_POOL) bytes (16 MiB).
    #[must_use]
    pub const fn replay_pool(mut self, pool: &'static ReplayPool) -> Self {
        self.pool = pool;
        self
    }

    /// Calls `hook` with each attempt's request, just before it is sent,
    /// and the [`Attempt`](crate::Attempt) it is: to send a retry to
    /// another host, refresh a header, or put the call's idempotency key
    /// on every attempt. Each attempt's request is made from the original
    /// afresh, so an edit is not seen by the next attempt.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use retry_runtime::{Attempt, Policy};
    /// use retry_runtime::http::{IDEMPOTENCY_KEY, idempotency_key};
    /// use retry_runtime::tower::{BoxError, Http, ResilientLayer};
    ///
    /// static POLICY: Policy<BoxError> = Policy::new().max_attempts(3);
    ///
    /// let layer = ResilientLayer::new(&POLICY)
    ///     .classify(Http)
    ///     .on_attempt(|request: &mut http::Request<String>, attempt: &Attempt| {
    ///         let headers = request.headers_mut();
    ///         headers.insert(IDEMPOTENCY_KEY, idempotency_key(attempt.key()));
    ///         headers.insert("x-attempt", HeaderValue::from(attempt.number()));
    ///     });
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn on_attempt<F>(self, hook: F) -> ResilientLayer<C, F> {
        ResilientLayer {
            policy: self.policy,
            classify: self.classify,
            max_replay_body: self.max_replay_body,
            pool: self.pool,
            on_attempt: hook,
        }
    }
}

impl<C: Clone, H: Clone> Clone for ResilientLayer<C, H> {
    fn clone(&self) -> Self {
        ResilientLayer {
            policy: self.policy,
            classify: self.classify.clone(),
            max_replay_body: self.max_replay_body,
            pool: self.pool,
            on_attempt: self.on_attempt.clone(),
        }
    }
}

impl<S, C: Clone, H: Clone> Layer<S> for ResilientLayer<C, H> {
    type Service = Resilient<S, C, H>;

    fn layer(&self, inner: S) -> Self::Service {
        Resilient::new(inner, self.policy, self.classify.clone())
            .with_replay(self.max_replay_body, self.pool)
            .with_on_attempt(self.on_attempt.clone())
    }
}
