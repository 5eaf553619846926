//! The service: each call runs the policy's loop around the inner service.

use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::replay::{DEFAULT_MAX_REPLAY_BODY, PROCESS_POOL, Watch};
use super::{BodyReplay, BoxError, Classify, Cloned, ReplayPool};
use crate::policy::{Failed, Judge};
use crate::{Attempt, Policy};

/// A service wrapped by [`ResilientLayer`](super::ResilientLayer).
#[derive(Debug)]
pub struct Resilient<S, C = Cloned, H = ()> {
    inner: S,
    policy: &'static Policy<BoxError>,
    classify: C,
    max_replay_body: usize,
    pool: &'static ReplayPool,
    on_attempt: H,
}

impl<S, C> Resilient<S, C> {
    /// Wraps `inner` in `policy`, classifying with `classify`; the same as
    /// applying a [`ResilientLayer`](super::ResilientLayer) with its
    /// defaults.
    pub const fn new(inner: S, policy: &'static Policy<BoxError>, classify: C) -> Self {
        Resilient {
            inner,
            policy,
            classify,
            max_replay_body: DEFAULT_MAX_REPLAY_BODY,
            pool: &PROCESS_POOL,
            on_attempt: (),
        }
    }

    pub(super) fn with_on_attempt<H>(self, on_attempt: H) -> Resilient<S, C, H> {
        Resilient {
            inner: self.inner,
            policy: self.policy,
            classify: self.classify,
            max_replay_body: self.max_replay_body,
            pool: self.pool,
            on_attempt,
        }
    }
}

impl<S, C, H> Resilient<S, C, H> {
    pub(super) const fn with_replay(mut self, max_body: usize, pool: &'static ReplayPool) -> Self {
        self.max_replay_body = max_body;
        self.pool = pool;
        self
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

impl<S: Clone, C: Clone, H: Clone> Clone for Resilient<S, C, H> {
    fn clone(&self) -> Self {
        Resilient {
            inner: self.inner.clone(),
            policy: self.policy,
            classify: self.classify.clone(),
            max_replay_body: self.max_replay_body,
            pool: self.pool,
            on_attempt: self.on_attempt.clone(),
        }
    }
}

/// What [`ResilientLayer::on_attempt`](super::ResilientLayer::on_attempt)
/// takes: a closure `Fn(&mut Req, &Attempt)`, or `()` for no hook.
pub trait OnAttempt<Req> {
    /// Called with each attempt's request before it is sent.
    fn on_attempt(&self, request: &mut Req, attempt: &Attempt);
}

impl<Req> OnAttempt<Req> for () {
    #[inline(always)]
    fn on_attempt(&self, _: &mut Req, _: &Attempt) {}
}

impl<Req, F: Fn(&mut Req, &Attempt)> OnAttempt<Req> for F {
    #[inline]
    fn on_attempt(&self, request: &mut Req, attempt: &Attempt) {
        self(request, attempt);
    }
}

impl<S, C, H, Req> Service<Req> for Resilient<S, C, H>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    C: Classify<Req, S::Response> + Clone + Send + 'static,
    H: OnAttempt<Req> + Clone + Send + 'static,
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

    fn call(&mut self, mut request: Req) -> Self::Future {
        // tower's rule: the service `poll_ready` readied is the one to call;
        // a clone of it is left in its place for the next caller.
        let spare = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, spare.clone());
        let mut body = BodyReplay::new(self.max_replay_body, self.pool);
        let copy = self.classify.replay_within(&mut request, &mut body);
        // Only a body kept as it is sent has one: the others are replayable
        // or not from the start, and their calls pay for no more than that.
        let watch = body.into_watch();
        let classify = self.classify.clone();
        let policy = self.policy;
        let judge = ByClassify {
            classify: classify.clone(),
            replayable: copy.is_some(),
            watch: watch.clone(),
            request: PhantomData,
        };
        let hook = self.on_attempt.clone();
        let mut first = Some((ready, request));
        // Owns all it uses, so that the future needs `Send` of them, not
        // `Sync`.
        let attempts = move |attempt: Attempt| {
            let mut next = first.take().or_else(|| {
                let request = classify.replay(copy.as_ref()?)?;
                Some((spare.clone(), request))
            });
            if let Some((_, request)) = &mut next {
                hook.on_attempt(request, &attempt);
            }
            send(next)
        };
        let Some(watch) = watch else {
            return Box::pin(policy.run(attempts, judge));
        };
        let classify = self.classify.clone();
        Box::pin(async move {
            let outcome = policy.run(attempts, judge).await;
            match watch.refused() {
                Some(why) => classify.not_replayed(outcome, why),
                None => outcome,
            }
        })
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
    /// Whether a copy was made: the request is safe to send twice.
    replayable: bool,
    /// For a body kept as it is sent: whether it still can be.
    watch: Option<Arc<dyn Watch>>,
    request: PhantomData<fn(&Req)>,
}

impl<C, Req> ByClassify<C, Req> {
    /// Whether a failure judged `retryable` is retried: only if the
    /// request can be sent again. A retry refused for its body alone is
    /// noted, for the caller to be told.
    fn retries(&self, retryable: bool) -> bool {
        if !(retryable && self.replayable) {
            return false;
        }
        let Some(watch) = &self.watch else {
            return true;
        };
        match watch.replayable() {
            Ok(()) => true,
            Err(why) => {
                if why.is_some() {
                    watch.refuse();
                }
                false
            }
        }
    }
}

impl<C, Req, Res> Judge<Res, BoxError> for ByClassify<C, Req>
where
    C: Classify<Req, Res>,
{
    fn value(&self, response: &Res) -> Option<Failed<BoxError>> {
        let failed = self.classify.response(response)?;
        Some(Failed {
            error: failed.error,
            retryable: self.retries(true),
            retry_after: failed.retry_after,
        })
    }

    fn error(&self, policy: &Policy<BoxError>, error: &BoxError) -> (bool, Option<Duration>) {
        let (retryable, retry_after) = policy.judge_error(error);
        (self.retries(retryable), retry_after)
    }
}
