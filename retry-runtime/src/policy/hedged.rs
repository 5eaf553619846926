//! `Policy::retry` with `hedge`: the loop of `run.rs`, with a hedged round
//! (`hedge/round.rs`) where that runs one attempt, settled by the same
//! `settle`.

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;

use super::Policy;
use super::run::Judge;
use crate::engine::{Attempt, Call, Refusal};
use crate::hedge::Hedge;
use crate::hedge::round::{Race, Round, Verdict, Verdicts};

/// A policy's verdicts: its judge, its `breaker_if`, and its conversion of
/// a timeout. Each round owns one (see `Race::verdicts`).
struct ByJudge<E: 'static, J> {
    policy: &'static Policy<E>,
    judge: J,
}

impl<T, E: fmt::Debug, J: Judge<T, E>> Verdicts<T, E> for ByJudge<E, J> {
    fn elapsed(&self) -> E {
        self.policy.refused(Refusal::Elapsed)
    }

    fn judge(&self, outcome: &Result<T, E>) -> Option<Verdict> {
        let breaker = |error: &E| self.policy.breaker_if.map(|counts| counts(error));
        match outcome {
            Ok(value) => self.judge.value(value).map(|failed| Verdict {
                retryable: failed.retryable,
                retry_after: failed.retry_after,
                breaker: breaker(&failed.error),
            }),
            Err(error) => {
                let (retryable, retry_after) = self.judge.error(self.policy, error);
                Some(Verdict {
                    retryable,
                    retry_after,
                    breaker: breaker(error),
                })
            }
        }
    }
}

impl<E: fmt::Debug> Policy<E> {
    /// `retry`'s loop with `hedge`: as the plain loop in `run.rs`, with a
    /// round where that runs one attempt.
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` stores its arguments twice"
    )]
    pub(super) fn run_hedged<T, F, Fut, J>(
        &'static self,
        hedge: &'static Hedge,
        mut operation: F,
        judge: J,
    ) -> impl Future<Output = Result<T, E>> + use<T, F, Fut, J, E>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        J: Judge<T, E>,
    {
        async move {
            let mut call = Call::start(&self.settings, self.guards());
            judge.call_started(&mut call);
            loop {
                let delay = {
                    let race = Race {
                        hedge,
                        guards: self.guards(),
                        admits: self.protections.admits(),
                        bounds_waits: self.protections.bounds_waits(),
                        verdicts: ByJudge {
                            policy: self,
                            judge: judge.clone(),
                        },
                    };
                    let (admitted, outcome) = match race.run(&mut call, &mut operation).await {
                        Round::Settle(admitted, outcome) => (admitted, outcome),
                        Round::Refused(refusal) => return Err(self.refused(refusal)),
                    };
                    match self.settle(&mut call, admitted, outcome, &judge) {
                        ControlFlow::Continue(delay) => delay,
                        ControlFlow::Break(result) => return result,
                    }
                };
                call.backoff(delay).await;
            }
        }
    }
}
