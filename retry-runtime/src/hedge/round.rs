//! One round of a hedged call: an attempt, and the hedges sent beside it,
//! raced in the call's own future (no task is spawned, so the call's future
//! is `Send` whenever the body's futures are). Written once for every door:
//! `Policy::retry` and the attribute's expansion (through `__private`) say
//! what an outcome means with [`Verdicts`], and settle the round's result
//! as they settle one unhedged attempt.
//!
//! The round ends with the first success (the attempts still running are
//! dropped at once), with the first error that would not be retried (the
//! same), or when every attempt of it has failed and no hedge can be sent:
//! then the last failure is the round's. A hedge is sent when the delay has
//! passed since the last attempt started, or at once when an attempt fails
//! with an error that would be retried, if the round has hedges left, the
//! deadline has not passed, no attempt brought a `retry_after` hint, and
//! the hedge budget and the retry budget both give a token. A hedge the
//! budgets refuse stops the round's hedging.
//!
//! Each attempt is admitted as an unhedged one is (breaker, rate limiter,
//! concurrency) and runs under the same time limit. An attempt that fails
//! while another runs tells the breaker and the rate limiter what it learnt
//! at once ([`Call::attempt_failed`]). A hedge the breaker, the limiter or
//! the concurrency limit refuses stops the round's hedging, and ends the
//! call as a refusal does only when nothing else of the round runs.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::Hedge;
use crate::engine::{Admission, Admitted, Attempt, Call, Guards, Refusal};
use crate::spans::AttemptSpan;

/// How a round ended.
pub enum Round<'g, T, E> {
    /// An attempt to settle as the door settles an unhedged one: a success,
    /// an error not to retry, or the last failure of the round.
    Settle(Admitted<'g>, Result<T, E>),
    /// An attempt was refused, and nothing else of the round ran.
    Refused(Refusal),
}

/// What a door says of its attempts' outcomes.
pub(crate) trait Verdicts<T, E> {
    /// The error of an attempt that ran out of time.
    fn elapsed(&self) -> E;

    /// `None` for a success; for a failure, whether it would be retried,
    /// the server's hint, and `breaker_if`'s verdict if the door has one.
    fn judge(&self, outcome: &Result<T, E>) -> Option<Verdict>;
}

/// A failed attempt, as its door judges it.
pub(crate) struct Verdict {
    pub(crate) retryable: bool,
    pub(crate) retry_after: Option<Duration>,
    /// Whether the breaker counts it, when `breaker_if` says.
    pub(crate) breaker: Option<bool>,
}

/// What a round needs besides the body and the call: the hedge, the
/// call's shared protections (whose retry budget hedges also spend from)
/// and whether they admit or bound waits (the door knows), and the door's
/// verdicts.
pub(crate) struct Race<'g, V> {
    pub(crate) hedge: &'static Hedge,
    pub(crate) guards: Guards<'g>,
    pub(crate) admits: bool,
    pub(crate) bounds_waits: bool,
    /// Owned, as the round's future owns everything it holds across an
    /// await: held by reference, the verdicts would have to be `Sync` for
    /// the call's future to be `Send` (a tower classifier need not be).
    pub(crate) verdicts: V,
}

/// An attempt of the round that is running.
struct Running<'g> {
    admitted: Admitted<'g>,
    started: Instant,
    /// `Some(number)` for a hedge, `None` for the round's first attempt.
    hedge: Option<u32>,
    /// Its `steadfast.attempt` span (with `tracing`), in which its future
    /// runs and what it leads to is reported.
    span: AttemptSpan,
}

/// A hedge: waiting to be admitted (the `k`-th of the round, in its span),
/// running, or over.
enum Slot<'g, A, R> {
    Admitting(Pin<Box<A>>, u32, AttemptSpan),
    Running(Pin<Box<R>>, Running<'g>),
    Gone,
}

/// What one finished attempt means for the round (with the attempt's span).
enum Finished<'g, T, E> {
    Ends(Round<'g, T, E>, AttemptSpan),
    /// Failed with an error that would be retried (and its hint).
    Failed(Admitted<'g>, Result<T, E>, Option<Duration>, AttemptSpan),
}

/// The attempts of a round still under way: the first, if it runs, and
/// the hedges admitted or waiting to be.
fn under_way<A, R>(first: bool, hedges: &[Slot<'_, A, R>]) -> usize {
    usize::from(first) + hedges.iter().filter(|s| !matches!(s, Slot::Gone)).count()
}

/// Sets the round's timer to fire at `at`, making it if it is not made yet.
fn arm(mut timer: Pin<&mut Option<tokio::time::Sleep>>, at: Instant) {
    match timer.as_mut().as_pin_mut() {
        Some(made) => made.reset(at),
        None => timer.set(Some(tokio::time::sleep_until(at))),
    }
}

/// Runs an attempt under the call's time limit, if it has one; `None` if
/// the attempt ran out of time.
async fn timed<Fut: Future>(call: &Call, attempt: Fut) -> Option<Fut::Output> {
    if call.limits_time() {
        call.with_time_limit(attempt).await.ok()
    } else {
        Some(attempt.await)
    }
}

/// Takes what an attempt needs from the breaker, limiter and concurrency
/// limit, waiting (within `max_wait` and the deadline, if `bounded`) when
/// one is not free at once.
pub(crate) async fn admit<'g>(
    call: &Call,
    guards: Guards<'g>,
    bounded: bool,
) -> Result<Admitted<'g>, Refusal> {
    match call.try_admit(guards) {
        Admission::Done(done) => done,
        Admission::Wait(mut waiting) => {
            if bounded {
                call.admit_within(guards, &mut waiting).await?;
            } else {
                call.admit(guards, &mut waiting).await;
            }
            Ok(waiting)
        }
    }
}

impl<'g, V> Race<'g, V> {
    /// Runs one round of `call`, and counts its hedges in it.
    pub(crate) async fn run<T, E, F, Fut>(
        self,
        call: &mut Call,
        operation: &mut F,
    ) -> Round<'g, T, E>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        V: Verdicts<T, E>,
    {
        let first_round = call.start_round();
        if first_round {
            // Dated as the call's budget dated it: no second clock read.
            self.hedge.call_started(call.started_at());
        }
        let (round, sent, span) = self.race(call, first_round, operation).await;
        call.count_hedges(sent);
        call.settle_round(span);
        round
    }

    fn admit<'c>(
        &self,
        call: &'c Call,
    ) -> impl Future<Output = Result<Admitted<'g>, Refusal>> + use<'c, 'g, V> {
        admit(call, self.guards, self.bounds_waits)
    }

    /// The round itself; also returns how many hedges it sent, and the span
    /// of the attempt the round ended with.
    async fn race<T, E, F, Fut>(
        self,
        call: &Call,
        first_round: bool,
        operation: &mut F,
    ) -> (Round<'g, T, E>, u32, AttemptSpan)
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        V: Verdicts<T, E>,
    {
        let hedge = self.hedge;
        // Each attempt's admission, its closure's call and its future run
        // in its span.
        let span = call.round_span(0);
        let admitted = if self.admits {
            match span.instrument(self.admit(call)).await {
                Ok(admitted) => admitted,
                Err(refusal) => return (Round::Refused(refusal), 0, span),
            }
        } else {
            Admitted::default()
        };
        // The call's first attempt, admitted by nothing that could wait,
        // starts when its call does: its start is read once for both.
        let started = if first_round && !self.admits {
            call.started_at()
        } else {
            Instant::now()
        };
        let delay = hedge.delay(started);
        let attempt = span.in_scope(|| operation(call.round_attempt(0)));
        let mut first_attempt = pin!(timed(call, span.instrument(attempt)));
        let mut first = Some(Running {
            admitted,
            started,
            hedge: None,
            span,
        });
        // Made when the round first waits for it: a first attempt that
        // answers at its first poll never makes one (nor registers it with
        // the runtime's driver, nor drops it).
        let mut timer = pin!(None::<tokio::time::Sleep>);
        let mut hedges = Vec::new();
        let mut sent = 0u32;
        // No delay (a quantile without enough samples yet): no hedge.
        let mut stopped = delay.is_none();
        // `move`: the closure owns `self`, so the future holds no reference
        // to it across the await (see `Race::verdicts`).
        poll_fn(move |cx| {
            // Sends the next hedge if the round may: `true` if it did.
            macro_rules! send_hedge {
                () => {{
                    let now = Instant::now();
                    // Sending a hedge (or not) is the call's decision,
                    // reported in its span.
                    if stopped
                        || sent >= hedge.hedges()
                        || call.past_deadline(now)
                        || !call.in_call_span(|| {
                            hedge.spend(
                                call.site(),
                                call.round_number(sent + 1),
                                self.guards.retry_budget(),
                            )
                        })
                    {
                        stopped = true;
                        false
                    } else {
                        sent += 1;
                        let span = call.round_span(sent);
                        hedges.push(if self.admits {
                            Slot::Admitting(Box::pin(span.instrument(self.admit(call))), sent, span)
                        } else {
                            let attempt = span.in_scope(|| operation(call.round_attempt(sent)));
                            let attempt = timed(call, span.instrument(attempt));
                            let running = Running {
                                admitted: Admitted::default(),
                                started: now,
                                hedge: Some(call.round_number(sent)),
                                span,
                            };
                            Slot::Running(Box::pin(attempt), running)
                        });
                        if let Some(delay) = delay {
                            arm(timer.as_mut(), now + delay);
                        }
                        true
                    }
                }};
            }
            // An attempt failed with an error that would be retried: the
            // round goes on if another attempt runs or a hedge is sent.
            macro_rules! failed {
                ($admitted:expr, $outcome:expr, $hint:expr, $span:expr) => {{
                    let span: AttemptSpan = $span;
                    let hint: Option<Duration> = $hint;
                    if hint.is_some() {
                        // The server asked for a pause: no more hedges.
                        stopped = true;
                    }
                    let running = under_way(first.is_some(), &hedges);
                    if send_hedge!() || running > 0 {
                        span.in_scope(|| call.attempt_failed(self.guards, $admitted, true, hint));
                    } else {
                        return Poll::Ready((Round::Settle($admitted, $outcome), sent, span));
                    }
                }};
            }
            loop {
                let mut progressed = false;
                if first.is_some() {
                    if let Poll::Ready(timed) = first_attempt.as_mut().poll(cx) {
                        progressed = true;
                        if let Some(running) = first.take() {
                            match self.finish(call, running, timed) {
                                Finished::Ends(round, span) => {
                                    return Poll::Ready((round, sent, span));
                                }
                                Finished::Failed(admitted, outcome, hint, span) => {
                                    failed!(admitted, outcome, hint, span);
                                }
                            }
                        }
                    }
                }
                for index in 0..hedges.len() {
                    match &mut hedges[index] {
                        Slot::Admitting(admission, _, _) => {
                            let Poll::Ready(admission) = admission.as_mut().poll(cx) else {
                                continue;
                            };
                            progressed = true;
                            let Slot::Admitting(_, k, span) =
                                std::mem::replace(&mut hedges[index], Slot::Gone)
                            else {
                                unreachable!("matched as admitting above");
                            };
                            match admission {
                                Ok(admitted) => {
                                    let attempt =
                                        span.in_scope(|| operation(call.round_attempt(k)));
                                    let attempt = timed(call, span.instrument(attempt));
                                    let running = Running {
                                        admitted,
                                        started: Instant::now(),
                                        hedge: Some(call.round_number(k)),
                                        span,
                                    };
                                    hedges[index] = Slot::Running(Box::pin(attempt), running);
                                }
                                Err(refusal) => {
                                    stopped = true;
                                    let running = under_way(first.is_some(), &hedges);
                                    if running == 0 {
                                        return Poll::Ready((Round::Refused(refusal), sent, span));
                                    }
                                }
                            }
                        }
                        Slot::Running(attempt, _) => {
                            let Poll::Ready(timed) = attempt.as_mut().poll(cx) else {
                                continue;
                            };
                            progressed = true;
                            if let Slot::Running(_, running) =
                                std::mem::replace(&mut hedges[index], Slot::Gone)
                            {
                                match self.finish(call, running, timed) {
                                    Finished::Ends(round, span) => {
                                        return Poll::Ready((round, sent, span));
                                    }
                                    Finished::Failed(admitted, outcome, hint, span) => {
                                        failed!(admitted, outcome, hint, span);
                                    }
                                }
                            }
                        }
                        Slot::Gone => {}
                    }
                }
                // A timer due with no hedge left stops the round's hedging.
                if !stopped {
                    if timer.is_none() {
                        arm(timer.as_mut(), started + delay.unwrap_or_default());
                    }
                    let due = timer
                        .as_mut()
                        .as_pin_mut()
                        .is_some_and(|timer| timer.poll(cx).is_ready());
                    if due && send_hedge!() {
                        progressed = true;
                    }
                }
                if !progressed {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// What a finished attempt means: a success or an error not to retry
    /// ends the round; a success or a timeout is a latency sample.
    fn finish<T, E>(
        &self,
        call: &Call,
        running: Running<'g>,
        timed: Option<Result<T, E>>,
    ) -> Finished<'g, T, E>
    where
        V: Verdicts<T, E>,
    {
        let Running {
            mut admitted,
            started,
            hedge: hedged,
            span,
        } = running;
        let hedge = self.hedge;
        let outcome = match timed {
            Some(outcome) => outcome,
            None => {
                admitted.timed_out();
                if hedge.learns() {
                    hedge.record(started.elapsed());
                }
                Err(self.verdicts.elapsed())
            }
        };
        let Some(verdict) = self.verdicts.judge(&outcome) else {
            if hedge.learns() {
                hedge.record(started.elapsed());
            }
            if let Some(number) = hedged {
                span.in_scope(|| hedge.hedge_won(call.site(), number));
            }
            return Finished::Ends(Round::Settle(admitted, outcome), span);
        };
        if let Some(counts) = verdict.breaker {
            admitted.breaker_judges(counts);
        }
        if verdict.retryable {
            Finished::Failed(admitted, outcome, verdict.retry_after, span)
        } else {
            Finished::Ends(Round::Settle(admitted, outcome), span)
        }
    }
}
