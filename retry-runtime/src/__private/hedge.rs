//! A hedged round for the attribute's expansion: the round `Policy::retry`
//! runs (`hedge/round.rs`), with the expansion's own verdicts.

use std::future::Future;
use std::time::Duration;

use crate::engine::{Attempt, Call, Conversions, Guards, Refusal};
use crate::hedge::Hedge;
use crate::hedge::round::{Race, Round, Verdict, Verdicts};

/// The attempt a hedged body is run with. Not `Copy`, unlike [`Attempt`]:
/// the expansion's `async { let attempt = a.get(); body }` moves it into
/// the body's future, which borrows everything else the body uses.
#[derive(Debug)]
pub struct HedgeAttempt(Attempt);

impl HedgeAttempt {
    /// The attempt, for the `attempt` key's binding.
    #[inline]
    pub fn get(self) -> Attempt {
        self.0
    }
}

/// The expansion's verdicts: its `retry_on`/`retry_if`, `retry_after` and
/// `breaker_if` in one closure, and its conversions (`E::from(Elapsed)` at
/// the time key).
struct ByExpansion<E, J> {
    conversions: Conversions<E>,
    judge: J,
}

impl<T, E, J> Verdicts<T, E> for ByExpansion<E, J>
where
    J: Fn(&E) -> (bool, Option<Duration>, Option<bool>),
{
    fn elapsed(&self) -> E {
        self.conversions.convert(Refusal::Elapsed)
    }

    fn judge(&self, outcome: &Result<T, E>) -> Option<Verdict> {
        let error = outcome.as_ref().err()?;
        let (retryable, retry_after, breaker) = (self.judge)(error);
        Some(Verdict {
            retryable,
            retry_after,
            breaker,
        })
    }
}

/// Runs one hedged round of `body` (the attempt, and up to the hedge's
/// `max_hedges` beside it). `admits` and `bounds_waits` are the
/// expansion's `Protections`; `conversions` has `elapsed` when the
/// attempts have a time limit; `judge` answers `(retryable, retry_after,
/// breaker_if)` for an error, as the unhedged expansion does after an
/// attempt. The round's result is settled as one unhedged attempt's.
#[allow(clippy::too_many_arguments)]
pub async fn hedged_round<'g, T, E, F, Fut>(
    hedge: &'static Hedge,
    call: &mut Call,
    guards: Guards<'g>,
    (admits, bounds_waits): (bool, bool),
    mut body: F,
    conversions: Conversions<E>,
    judge: impl Fn(&E) -> (bool, Option<Duration>, Option<bool>),
) -> Round<'g, T, E>
where
    F: FnMut(HedgeAttempt) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let race = Race {
        hedge,
        guards,
        admits,
        bounds_waits,
        verdicts: ByExpansion { conversions, judge },
    };
    race.run(call, &mut |attempt| body(HedgeAttempt(attempt)))
        .await
}
