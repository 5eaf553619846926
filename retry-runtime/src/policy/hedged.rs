//! One round of a hedged call: an attempt, and the hedges sent beside it,
//! raced in the call's own future (no task is spawned, so the call's future
//! is `Send` whenever the closure's futures are).
//!
//! The round ends with the first success (the attempts still running are
//! dropped at once), with the first error that would not be retried (the
//! same), or when every attempt of it has failed and no hedge can be sent:
//! then the last failure is the round's, and `Policy::run_hedged`
//! settles it as `run.rs`'s loop settles one unhedged attempt (the retry,
//! its backoff, the budget), with the same `settle`. A hedge is sent when the delay has passed since the last
//! attempt started, or at once when an attempt fails with an error that
//! would be retried, if the round has hedges left, the deadline has not
//! passed, no attempt brought a `retry_after` hint, and the hedge budget
//! and the retry budget both give a token. A hedge the budgets refuse
//! stops the round's hedging.
//!
//! Each attempt is admitted as an unhedged one is (breaker, rate limiter,
//! bulkhead) and runs under the same time limit. An attempt that fails
//! while another runs tells the breaker and the rate limiter what it
//! learnt at once ([`Call::attempt_failed`]). A hedge the breaker, the
//! limiter or the bulkhead refuses stops the round's hedging, and ends the
//! call as a refusal does only when nothing else of the round runs.

use std::fmt;
use std::future::{Future, poll_fn};
use std::ops::ControlFlow;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::run::{ByPolicy, Judge};
use super::{BudgetChoice, Policy};
use crate::budget::RetryBudget;
use crate::engine::{Admitted, Attempt, Call, Refusal};
use crate::hedge::Hedge;

/// How a round ended.
enum Round<'g, T, E> {
    /// An attempt to settle as the loop settles an unhedged one: a success,
    /// an error not to retry, or the last failure of the round.
    Settle(Admitted<'g>, Result<T, E>),
    /// An attempt was refused, and nothing else of the round ran.
    Refused(Refusal),
}

/// An attempt of the round that is running.
struct Running<'g> {
    admitted: Admitted<'g>,
    started: Instant,
    /// `Some(number)` for a hedge, `None` for the round's first attempt.
    hedge: Option<u32>,
}

/// A hedge: waiting to be admitted (the `k`-th of the round), running, or
/// over.
enum Slot<A, R> {
    Admitting(Pin<Box<A>>, u32),
    Running(Pin<Box<R>>, Running<'static>),
    Gone,
}

/// What one finished attempt means for the round.
enum Finished<'g, T, E> {
    Ends(Round<'g, T, E>),
    /// Failed with an error that would be retried (and its hint).
    Failed(Admitted<'g>, Result<T, E>, Option<Duration>),
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

impl<E: fmt::Debug> Policy<E> {
    /// `retry`'s loop with `hedge`: as the plain loop in `run.rs`, with a
    /// round where that runs one attempt.
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` stores its arguments twice"
    )]
    pub(super) fn run_hedged<T, F, Fut>(
        &'static self,
        hedge: &'static Hedge,
        mut operation: F,
    ) -> impl Future<Output = Result<T, E>> + use<T, F, Fut, E>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        async move {
            let mut call = Call::start(&self.settings, self.guards());
            loop {
                let delay = {
                    let round = self.round(hedge, &mut call, &mut operation, &ByPolicy);
                    let (admitted, outcome) = match round.await {
                        Round::Settle(admitted, outcome) => (admitted, outcome),
                        Round::Refused(refusal) => return Err(self.refused(refusal)),
                    };
                    match self.settle(&mut call, admitted, outcome, &ByPolicy) {
                        ControlFlow::Continue(delay) => delay,
                        ControlFlow::Break(result) => return result,
                    }
                };
                call.backoff(delay).await;
            }
        }
    }

    /// Runs one round of a hedged call, and counts its hedges in the call.
    async fn round<T, F, Fut, J>(
        &'static self,
        hedge: &'static Hedge,
        call: &mut Call,
        operation: &mut F,
        judge: &J,
    ) -> Round<'static, T, E>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        J: Judge<T, E>,
    {
        if call.start_round() {
            hedge.call_started(Instant::now());
        }
        let (round, sent) = self.race(hedge, call, operation, judge).await;
        call.count_hedges(sent);
        round
    }

    /// The retry budget hedges also spend from.
    fn retry_budget(&self) -> Option<&RetryBudget> {
        match self.budget {
            BudgetChoice::Own => Some(&self.own_budget),
            BudgetChoice::Shared(budget) => Some(budget),
            BudgetChoice::Off => None,
        }
    }

    /// The round itself; also returns how many hedges it sent.
    async fn race<T, F, Fut, J>(
        &'static self,
        hedge: &'static Hedge,
        call: &Call,
        operation: &mut F,
        judge: &J,
    ) -> (Round<'static, T, E>, u32)
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        J: Judge<T, E>,
    {
        let admitted = if self.protections.admits() {
            match self.admit(call).await {
                Ok(admitted) => admitted,
                Err(refusal) => return (Round::Refused(refusal), 0),
            }
        } else {
            Admitted::default()
        };
        let started = Instant::now();
        let delay = hedge.delay(started);
        let retry_budget = self.retry_budget();
        let mut first = Some(Running {
            admitted,
            started,
            hedge: None,
        });
        let mut first_attempt = pin!(timed(call, operation(call.round_attempt(0))));
        let mut timer = pin!(tokio::time::sleep_until(
            started + delay.unwrap_or_default()
        ));
        let mut hedges = Vec::new();
        let mut sent = 0u32;
        // No delay (a quantile without enough samples yet): no hedge.
        let mut stopped = delay.is_none();
        poll_fn(|cx| {
            // Sends the next hedge if the round may: `true` if it did.
            macro_rules! send_hedge {
                () => {{
                    let now = Instant::now();
                    if stopped
                        || sent >= hedge.hedges()
                        || call.past_deadline(now)
                        || !hedge.spend(call.site(), call.round_number(sent + 1), retry_budget)
                    {
                        stopped = true;
                        false
                    } else {
                        sent += 1;
                        hedges.push(if self.protections.admits() {
                            Slot::Admitting(Box::pin(self.admit(call)), sent)
                        } else {
                            let attempt = operation(call.round_attempt(sent));
                            let running = Running {
                                admitted: Admitted::default(),
                                started: now,
                                hedge: Some(call.round_number(sent)),
                            };
                            Slot::Running(Box::pin(timed(call, attempt)), running)
                        });
                        if let Some(delay) = delay {
                            timer.as_mut().reset(now + delay);
                        }
                        true
                    }
                }};
            }
            // An attempt failed with an error that would be retried: the
            // round goes on if another attempt runs or a hedge is sent.
            macro_rules! failed {
                ($admitted:expr, $outcome:expr, $hint:expr) => {{
                    let hint: Option<Duration> = $hint;
                    if hint.is_some() {
                        // The server asked for a pause: no more hedges.
                        stopped = true;
                    }
                    let running = usize::from(first.is_some())
                        + hedges.iter().filter(|s| !matches!(s, Slot::Gone)).count();
                    if send_hedge!() || running > 0 {
                        call.attempt_failed(self.guards(), $admitted, true, hint);
                    } else {
                        return Poll::Ready((Round::Settle($admitted, $outcome), sent));
                    }
                }};
            }
            loop {
                let mut progressed = false;
                if first.is_some() {
                    if let Poll::Ready(timed) = first_attempt.as_mut().poll(cx) {
                        progressed = true;
                        if let Some(running) = first.take() {
                            match self.finish(hedge, running, timed, judge) {
                                Finished::Ends(round) => return Poll::Ready((round, sent)),
                                Finished::Failed(admitted, outcome, hint) => {
                                    failed!(admitted, outcome, hint);
                                }
                            }
                        }
                    }
                }
                for index in 0..hedges.len() {
                    match &mut hedges[index] {
                        Slot::Admitting(admission, k) => {
                            let k = *k;
                            let Poll::Ready(admission) = admission.as_mut().poll(cx) else {
                                continue;
                            };
                            progressed = true;
                            hedges[index] = Slot::Gone;
                            match admission {
                                Ok(admitted) => {
                                    let attempt = operation(call.round_attempt(k));
                                    let running = Running {
                                        admitted,
                                        started: Instant::now(),
                                        hedge: Some(call.round_number(k)),
                                    };
                                    hedges[index] =
                                        Slot::Running(Box::pin(timed(call, attempt)), running);
                                }
                                Err(refusal) => {
                                    stopped = true;
                                    let running = usize::from(first.is_some())
                                        + hedges
                                            .iter()
                                            .filter(|s| !matches!(s, Slot::Gone))
                                            .count();
                                    if running == 0 {
                                        return Poll::Ready((Round::Refused(refusal), sent));
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
                                match self.finish(hedge, running, timed, judge) {
                                    Finished::Ends(round) => return Poll::Ready((round, sent)),
                                    Finished::Failed(admitted, outcome, hint) => {
                                        failed!(admitted, outcome, hint);
                                    }
                                }
                            }
                        }
                        Slot::Gone => {}
                    }
                }
                // A timer due with no hedge left stops the round's hedging.
                if !stopped && timer.as_mut().poll(cx).is_ready() && send_hedge!() {
                    progressed = true;
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
    fn finish<T, J: Judge<T, E>>(
        &self,
        hedge: &Hedge,
        running: Running<'static>,
        timed: Option<Result<T, E>>,
        judge: &J,
    ) -> Finished<'static, T, E> {
        let Running {
            mut admitted,
            started,
            hedge: hedged,
        } = running;
        let outcome = match timed {
            Some(outcome) => outcome,
            None => {
                admitted.timed_out();
                if hedge.learns() {
                    hedge.record(started.elapsed());
                }
                Err(self.refused(Refusal::Elapsed))
            }
        };
        let (retryable, hint) = match &outcome {
            Ok(value) => match judge.value(value) {
                None => {
                    if hedge.learns() {
                        hedge.record(started.elapsed());
                    }
                    if let Some(number) = hedged {
                        hedge.hedge_won(self.settings.site(), number);
                    }
                    return Finished::Ends(Round::Settle(admitted, outcome));
                }
                Some(failed) => {
                    if let Some(breaker_if) = self.breaker_if {
                        admitted.breaker_judges(breaker_if(&failed.error));
                    }
                    (failed.retryable, failed.retry_after)
                }
            },
            Err(error) => {
                if let Some(breaker_if) = self.breaker_if {
                    admitted.breaker_judges(breaker_if(error));
                }
                judge.error(self, error)
            }
        };
        if retryable {
            Finished::Failed(admitted, outcome, hint)
        } else {
            Finished::Ends(Round::Settle(admitted, outcome))
        }
    }
}
