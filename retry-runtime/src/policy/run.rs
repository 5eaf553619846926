//! Running a [`Policy`]: the attribute's loop, written once for closures,
//! asking the same [`Call`] what to do at each step.

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use super::Policy;
use crate::engine::describe::Description;
use crate::engine::{Admission, Admitted, Attempt, Call, Decision, Refusal};

impl<E: fmt::Debug> Policy<E> {
    /// Runs `operation` until it succeeds or the policy gives up, returning
    /// its last result. The closure is called once per attempt with what the
    /// attempt knows of its call; it is `FnMut`, so it may use `&mut` state.
    /// The future is `Send` when the closure's futures are.
    ///
    /// Needs `&'static self`, like the attribute's statics: a policy lives
    /// in a `static`, or is built at run time and leaked or kept in a
    /// `OnceLock`.
    pub fn retry<T, F, Fut>(
        &'static self,
        operation: F,
    ) -> impl Future<Output = Result<T, E>> + use<T, F, Fut, E>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(operation, ByPolicy)
    }

    /// [`retry`](Self::retry)'s loop, with `judge` saying which outcomes
    /// fail: the one loop behind `retry` (the policy's own classification)
    /// and the tower layer (which also fails on some responses).
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` stores its arguments twice"
    )]
    pub(crate) fn run<T, F, Fut, J>(
        &'static self,
        mut operation: F,
        judge: J,
    ) -> impl Future<Output = Result<T, E>> + use<T, F, Fut, J, E>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        J: Judge<T, E>,
    {
        // Laid out for the size of the future, which every call pays to
        // build and move: an `async` block rather than an `async fn` (whose
        // arguments would be stored twice), the guards made again where
        // needed rather than kept, and one await per step so that what an
        // attempt holds shares its room with the backoff's sleep.
        async move {
            // Asked once, before the call starts: a policy without `hedge`
            // runs the loop below as it did before hedges existed, and a
            // hedged one runs its own, boxed, so that its room is not in
            // every call's future.
            if let (true, Some(hedge)) = (judge.hedges(), &self.hedge) {
                return Box::pin(self.run_hedged(hedge, operation, judge)).await;
            }
            let mut call = Call::start(&self.settings, self.guards());
            judge.call_started(&mut call);
            loop {
                let delay = {
                    call.begin_attempt();
                    let mut admitted = if self.protections.admits() {
                        match self.admit(&call).await {
                            Ok(admitted) => admitted,
                            Err(refusal) => return Err(self.refused(refusal)),
                        }
                    } else {
                        Admitted::default()
                    };
                    let timed = async {
                        // Made and run in the attempt's span (a closure's
                        // own code before its future counts too). In a
                        // block of its own: a local the closure borrows
                        // and still in scope at the await below would be
                        // kept in the future (10 instructions a call).
                        let attempt = {
                            let this = call.attempt();
                            call.in_attempt(|| operation(this))
                        };
                        let attempt = call.instrument(attempt);
                        // Asked of the call: `self` here would be one more
                        // borrow in every call's future.
                        if call.limits_time() {
                            call.with_time_limit(attempt).await
                        } else {
                            Ok(attempt.await)
                        }
                    }
                    .await;
                    let outcome = timed.unwrap_or_else(|_| {
                        admitted.timed_out();
                        Err(self.refused(Refusal::Elapsed))
                    });
                    match self.settle(&mut call, admitted, outcome, &judge) {
                        ControlFlow::Continue(delay) => delay,
                        ControlFlow::Break(result) => return result,
                    }
                };
                call.backoff(delay).await;
            }
        }
    }

    /// Takes what an attempt needs from the breaker, limiter and bulkhead.
    /// A wait is rare and holds timers: it is boxed, so that every call's
    /// future does not carry room for it.
    pub(super) async fn admit(&'static self, call: &Call) -> Result<Admitted<'static>, Refusal> {
        match call.try_admit(self.guards()) {
            Admission::Done(done) => done,
            Admission::Wait(mut waiting) => {
                Box::pin(async {
                    if self.protections.bounds_waits() {
                        call.admit_within(self.guards(), &mut waiting).await?;
                    } else {
                        call.admit(self.guards(), &mut waiting).await;
                    }
                    Ok(waiting)
                })
                .await
            }
        }
    }

    /// [`retry`](Self::retry) for blocking code: backoff sleeps and waits
    /// park the thread. A `timeout` does not apply (a running closure cannot
    /// be cancelled); the `deadline` is checked between attempts.
    #[inline]
    pub fn retry_blocking<T>(
        &'static self,
        operation: impl FnMut(Attempt) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.protections.admits() {
            self.run_blocking::<true, _>(operation)
        } else {
            self.run_blocking::<false, _>(operation)
        }
    }

    #[inline]
    fn run_blocking<const ADMITS: bool, T>(
        &'static self,
        mut operation: impl FnMut(Attempt) -> Result<T, E>,
    ) -> Result<T, E> {
        let guards = self.guards();
        let mut call = Call::start(&self.settings, guards);
        loop {
            let delay = {
                call.begin_attempt();
                let admitted = if ADMITS {
                    match call.admit_blocking(guards) {
                        Ok(admitted) => Some(admitted),
                        Err(refusal) => return Err(self.refused(refusal)),
                    }
                } else {
                    None
                };
                let attempt = call.attempt();
                let outcome = call.in_attempt(|| operation(attempt));
                // Made after the attempt: one made before it lives in memory
                // the attempt's code may touch, and its fields are read back
                // (10 instructions a call) rather than known to be empty.
                let admitted = admitted.unwrap_or_default();
                match self.settle(&mut call, admitted, outcome, &ByPolicy) {
                    ControlFlow::Continue(delay) => delay,
                    ControlFlow::Break(result) => return result,
                }
            };
            call.backoff_blocking(delay);
        }
    }

    /// After an attempt: the call's result, or the delay before the next
    /// attempt. The error does not outlive this, so nothing of the attempt is
    /// held across the backoff sleep.
    ///
    /// Always inlined: on the happy path all of it but `succeeded` folds
    /// away, and a call costs about 20% more instructions when it does not.
    #[inline(always)]
    pub(super) fn settle<T>(
        &self,
        call: &mut Call,
        admitted: Admitted<'_>,
        outcome: Result<T, E>,
        judge: &impl Judge<T, E>,
    ) -> ControlFlow<Result<T, E>, Duration> {
        match outcome {
            Ok(value) => match judge.value(&value) {
                None => {
                    call.succeeded(admitted);
                    ControlFlow::Break(Ok(value))
                }
                // A value that is a failure (a 503 response) is retried like
                // an error, and is the call's result if it is the last.
                Some(failed) => {
                    let judged = (failed.retryable, failed.retry_after);
                    match self.decide(call, admitted, &failed.error, judged) {
                        Some(delay) => ControlFlow::Continue(delay),
                        None => ControlFlow::Break(Ok(value)),
                    }
                }
            },
            Err(error) => {
                let judged = judge.error(self, &error);
                match self.decide(call, admitted, &error, judged) {
                    Some(delay) => ControlFlow::Continue(delay),
                    None => ControlFlow::Break(Err(error)),
                }
            }
        }
    }

    /// After a failed attempt judged `(retryable, retry_after)`: the delay
    /// before the next, or `None` to give up; the `on_retry` hook hears of
    /// a retry.
    fn decide(
        &self,
        call: &mut Call,
        mut admitted: Admitted<'_>,
        error: &E,
        (retryable, retry_after): (bool, Option<Duration>),
    ) -> Option<Duration> {
        if let Some(breaker_if) = self.breaker_if {
            admitted.breaker_judges(breaker_if(error));
        }
        let description = Description::Debug(error);
        match call.after_error(self.guards(), admitted, retryable, retry_after, description) {
            Decision::Retry(delay) => {
                if let Some(hook) = self.on_retry {
                    hook(&call.event(error, delay));
                }
                Some(delay)
            }
            Decision::GiveUp(_) => None,
        }
    }

    /// The policy's own classification: `retry_if` and `retry_after`.
    pub(crate) fn judge_error(&self, error: &E) -> (bool, Option<Duration>) {
        let retryable = self.retry_if.is_none_or(|retryable| retryable(error));
        let retry_after = self.retry_after.and_then(|suggest| suggest(error));
        (retryable, retry_after)
    }

    /// `E::from(..)` of the library's own refusal, by the conversion the
    /// builder of the key that causes it set.
    pub(super) fn refused(&self, refusal: Refusal) -> E {
        self.conversions.convert(refusal)
    }
}

/// Which outcomes of an attempt are failures, and how to treat them.
/// `Clone`, so that each hedged round owns one (see `Race::verdicts`).
pub(crate) trait Judge<T, E>: Clone {
    /// Whether a policy's `hedge` applies to this call: its attempts can
    /// run at once (`Policy::retry`'s always can; the tower layer's when
    /// the request is replayable before the first attempt is sent).
    fn hedges(&self) -> bool;

    /// The call starts: the judge may say what its spans (with `tracing`)
    /// should carry.
    #[inline(always)]
    fn call_started(&self, _call: &mut Call) {}

    /// A value the operation returned: `None` if it is a success, or what
    /// stands for it as a failure.
    fn value(&self, value: &T) -> Option<Failed<E>>;

    /// An error: whether to retry it, and the server's hint.
    fn error(&self, policy: &Policy<E>, error: &E) -> (bool, Option<Duration>);
}

/// A value judged a failure: the error events and hooks see for it, whether
/// to retry, and the server's hint.
pub(crate) struct Failed<E> {
    pub(crate) error: E,
    pub(crate) retryable: bool,
    pub(crate) retry_after: Option<Duration>,
}

/// `Policy::retry`'s judge: every value succeeds, errors as the policy says.
#[derive(Clone, Copy)]
pub(super) struct ByPolicy;

impl<T, E: fmt::Debug> Judge<T, E> for ByPolicy {
    #[inline]
    fn hedges(&self) -> bool {
        true
    }

    #[inline]
    fn value(&self, _: &T) -> Option<Failed<E>> {
        None
    }

    #[inline]
    fn error(&self, policy: &Policy<E>, error: &E) -> (bool, Option<Duration>) {
        policy.judge_error(error)
    }
}
