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
use crate::engine::Call;
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

// By hand: a derive would ask `Req: Clone`.
impl<C: Clone, Req> Clone for ByClassify<C, Req> {
    fn clone(&self) -> Self {
        ByClassify {
            classify: self.classify.clone(),
            replayable: self.replayable,
            watch: self.watch.clone(),
            request: PhantomData,
        }
    }
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
        let replayable = watch.replayable().is_ok();
        if !replayable {
            // Told to the caller only if the caps let the chunks go (not
            // when the body failed: its error says so).
            watch.refuse();
        }
        replayable
    }
}

impl<C, Req, Res> Judge<Res, BoxError> for ByClassify<C, Req>
where
    C: Classify<Req, Res> + Clone,
{
    /// A policy's `hedge` applies to a request copied before it is sent
    /// (a `Clone` body, one without a body): a body kept as the first
    /// attempt streams it cannot be read by a second attempt at once.
    fn hedges(&self) -> bool {
        self.replayable && self.watch.is_none()
    }

    #[inline(always)]
    fn call_started(&self, call: &mut Call) {
        if C::HTTP {
            call.mark_http();
        }
    }

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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use tower::{Layer, Service, ServiceExt, service_fn};

    use super::super::{BoxError, ResilientLayer};
    use crate::{Attempt, Policy};

    static THREE: Policy<BoxError> = Policy::new().max_attempts(3);

    #[tokio::test(start_paused = true)]
    async fn each_attempt_is_edited_afresh_from_the_original() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let flaky = service_fn(move |request: u32| {
            let mut log = log.lock().unwrap();
            log.push(request);
            let failed = log.len() < 3;
            async move {
                if failed {
                    Err(BoxError::from("busy"))
                } else {
                    Ok(request)
                }
            }
        });
        let mut service = ResilientLayer::new(&THREE)
            .on_attempt(|request: &mut u32, attempt: &Attempt| *request += 100 * attempt.number())
            .layer(flaky);
        let answer = service.ready().await.unwrap().call(1).await.unwrap();
        assert_eq!(answer, 301);
        assert_eq!(*seen.lock().unwrap(), [101, 201, 301]);
    }

    /// A service that is never ready: it says so from `poll_ready`.
    #[derive(Clone)]
    struct Overloaded;

    impl Service<u32> for Overloaded {
        type Response = u32;
        type Error = BoxError;
        type Future = std::future::Ready<Result<u32, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Err(BoxError::from("overloaded")))
        }

        fn call(&mut self, request: u32) -> Self::Future {
            std::future::ready(Ok(request))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_is_ready_when_its_service_is() {
        let mut service = ResilientLayer::new(&THREE).layer(Overloaded);
        let error = service.ready().await.err().map(|error| error.to_string());
        assert_eq!(error.as_deref(), Some("overloaded"));
    }

    #[cfg(feature = "http")]
    mod bodies {
        use bytes::Bytes;
        use http_body_util::{BodyExt, Full};

        use super::*;
        use crate::tower::{Http, NotReplayed, NotRetried, ReplayBody, ReplayPool};

        type Body = ReplayBody<Full<Bytes>>;

        /// A server in process: reads each request's body whole, logs it,
        /// and answers with the next of `statuses` (an error for 0),
        /// then 200.
        #[allow(
            clippy::type_complexity,
            reason = "the bounds the layer needs, spelt once"
        )]
        fn server(
            statuses: &[u16],
        ) -> (
            impl Service<
                http::Request<Body>,
                Response = http::Response<String>,
                Error = BoxError,
                Future: Send,
            > + Clone
            + Send
            + 'static,
            Arc<Mutex<Vec<Result<Bytes, String>>>>,
        ) {
            let log = Arc::new(Mutex::new(Vec::new()));
            let statuses = Arc::new(Mutex::new(statuses.to_vec()));
            let seen = log.clone();
            let service = service_fn(move |request: http::Request<Body>| {
                let (seen, statuses) = (seen.clone(), statuses.clone());
                async move {
                    let body = request.into_body().collect().await.map(|b| b.to_bytes());
                    seen.lock()
                        .unwrap()
                        .push(body.as_ref().map(Clone::clone).map_err(ToString::to_string));
                    body?;
                    let mut statuses = statuses.lock().unwrap();
                    let status = if statuses.is_empty() {
                        200
                    } else {
                        statuses.remove(0)
                    };
                    if status == 0 {
                        return Err(BoxError::from("reset"));
                    }
                    let mut response = http::Response::new(String::new());
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    Ok(response)
                }
            });
            (service, log)
        }

        /// One request through `service`, once it is ready.
        async fn call_ready<S>(
            service: &mut S,
            request: http::Request<Body>,
        ) -> Result<S::Response, BoxError>
        where
            S: Service<http::Request<Body>, Error = BoxError>,
        {
            service.ready().await?.call(request).await
        }

        fn put(body: &'static [u8]) -> http::Request<Body> {
            let mut request =
                http::Request::new(ReplayBody::new(Full::new(Bytes::from_static(body))));
            *request.method_mut() = http::Method::PUT;
            request
        }

        #[tokio::test(start_paused = true)]
        async fn a_kept_body_is_sent_again_and_its_bytes_given_back() {
            static POOL: ReplayPool = ReplayPool::new(1024);
            let (inner, log) = server(&[503, 0]);
            let mut service = ResilientLayer::new(&THREE)
                .classify(Http)
                .replay_pool(&POOL)
                .layer(inner);
            let response = call_ready(&mut service, put(b"order")).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.extensions().get::<NotReplayed>(), None);
            let sent: Vec<_> = log.lock().unwrap().drain(..).map(Result::unwrap).collect();
            assert_eq!(sent, [&b"order"[..]; 3]);
            assert_eq!(POOL.buffered(), 0);
        }

        #[tokio::test(start_paused = true)]
        async fn over_the_cap_an_error_is_not_retried_and_says_why() {
            let (inner, log) = server(&[0]);
            let mut service = ResilientLayer::new(&THREE)
                .classify(Http)
                .max_replay_body(4)
                .layer(inner);
            let error = call_ready(&mut service, put(b"order")).await.unwrap_err();
            let not_retried = error.downcast::<NotRetried>().expect("a NotRetried");
            assert_eq!(not_retried.why(), NotReplayed::TooLarge { max_body: 4 });
            assert_eq!(
                not_retried.to_string(),
                "not retried: the request body is larger than `max_replay_body` (4 bytes): \
                 it was sent once (reset)"
            );
            let source = std::error::Error::source(&*not_retried).map(ToString::to_string);
            assert_eq!(source.as_deref(), Some("reset"));
            assert_eq!(not_retried.into_inner().to_string(), "reset");
            assert_eq!(log.lock().unwrap().len(), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn over_the_cap_a_503_is_handed_back_and_says_why() {
            let (inner, log) = server(&[503]);
            let mut service = ResilientLayer::new(&THREE)
                .classify(Http)
                .max_replay_body(4)
                .layer(inner);
            let response = call_ready(&mut service, put(b"order")).await.unwrap();
            assert_eq!(response.status(), 503);
            let why = NotReplayed::TooLarge { max_body: 4 };
            assert_eq!(response.extensions().get::<NotReplayed>(), Some(&why));
            assert_eq!(log.lock().unwrap().len(), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn an_answer_that_is_a_success_says_nothing_of_the_cap() {
            let (inner, _) = server(&[404]);
            let mut service = ResilientLayer::new(&THREE)
                .classify(Http)
                .max_replay_body(4)
                .layer(inner);
            let response = call_ready(&mut service, put(b"order")).await.unwrap();
            assert_eq!(response.status(), 404);
            assert_eq!(response.extensions().get::<NotReplayed>(), None);
        }

        #[tokio::test(start_paused = true)]
        async fn a_post_without_a_key_is_neither_kept_nor_retried() {
            let (inner, log) = server(&[503]);
            let mut service = ResilientLayer::new(&THREE).classify(Http).layer(inner);
            let mut request = put(b"order");
            *request.method_mut() = http::Method::POST;
            let response = call_ready(&mut service, request).await.unwrap();
            assert_eq!(response.status(), 503);
            assert_eq!(response.extensions().get::<NotReplayed>(), None);
            assert_eq!(log.lock().unwrap().len(), 1);
        }
    }
}
