//! The service: each call runs the policy's loop around the inner service.

use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::{BoxError, Classify, Cloned};
use crate::Policy;
use crate::engine::Call;
use crate::policy::{Failed, Judge};

/// A service wrapped by [`ResilientLayer`](super::ResilientLayer).
#[derive(Debug)]
pub struct Resilient<S, C = Cloned> {
    inner: S,
    policy: &'static Policy<BoxError>,
    classify: C,
}

impl<S, C> Resilient<S, C> {
    /// Wraps `inner` in `policy`, classifying with `classify`; the same as
    /// applying a [`ResilientLayer`](super::ResilientLayer).
    pub const fn new(inner: S, policy: &'static Policy<BoxError>, classify: C) -> Self {
        Resilient {
            inner,
            policy,
            classify,
        }
    }

    /// The inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C: Clone> Clone for Resilient<S, C> {
    fn clone(&self) -> Self {
        Resilient {
            inner: self.inner.clone(),
            policy: self.policy,
            classify: self.classify.clone(),
        }
    }
}

impl<S, C, Req> Service<Req> for Resilient<S, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    C: Classify<Req, S::Response> + Clone + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // No permit of the policy is taken here: see the module's
        // "Readiness".
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // tower's rule: the service `poll_ready` readied is the one to call;
        // a clone of it is left in its place for the next caller.
        let spare = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, spare.clone());
        let copy = self.classify.replay(&request);
        let classify = self.classify.clone();
        let policy = self.policy;
        let judge = ByClassify {
            classify: classify.clone(),
            replayable: copy.is_some(),
            request: PhantomData,
        };
        let mut first = Some((ready, request));
        // Owns all it uses, so that the future needs `Send` of them, not
        // `Sync`.
        let attempts = move |_| {
            let next = first.take().or_else(|| {
                let request = classify.replay(copy.as_ref()?)?;
                Some((spare.clone(), request))
            });
            send(next)
        };
        Box::pin(policy.run(attempts, judge))
    }
}

/// One attempt: waits for the service to be ready (it already is for the
/// first attempt), then sends.
async fn send<S, Req>(next: Option<(S, Req)>) -> Result<S::Response, BoxError>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    // Unreachable: a request with no copy is judged not retryable, so no
    // second attempt asks for one. An error, not a panic, if it ever did.
    let (mut service, request) = next.ok_or("steadfast: a request without a copy was retried")?;
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    service.call(request).await.map_err(Into::into)
}

/// The layer's judge: responses as the classification says, errors as the
/// policy says; nothing is retried that cannot be replayed.
struct ByClassify<C, Req> {
    classify: C,
    replayable: bool,
    request: PhantomData<fn(&Req)>,
}

impl<C, Req, Res> Judge<Res, BoxError> for ByClassify<C, Req>
where
    C: Classify<Req, Res>,
{
    #[inline(always)]
    fn begin_attempt(&self, call: &mut Call) {
        if C::HTTP {
            call.begin_http_attempt();
        } else {
            call.begin_attempt();
        }
    }

    fn value(&self, response: &Res) -> Option<Failed<BoxError>> {
        let failed = self.classify.response(response)?;
        Some(Failed {
            error: failed.error,
            retryable: self.replayable,
            retry_after: failed.retry_after,
        })
    }

    fn error(&self, policy: &Policy<BoxError>, error: &BoxError) -> (bool, Option<Duration>) {
        let (retryable, retry_after) = policy.judge_error(error);
        (retryable && self.replayable, retry_after)
    }
}
