//! What one attempt goes through before it runs, as values: the call's
//! protections ([`Guards`]), what an admitted attempt holds ([`Admitted`]),
//! and why an attempt was not made ([`Refusal`]).

use std::fmt;

use crate::budget::RetryBudget;
use crate::circuit_breaker::{BreakerPermit, CircuitBreaker};
use crate::concurrency::{Concurrency, ConcurrencyLimit, ConcurrencyPermit};
use crate::rate_limiter::RateLimiter;

/// The shared protections one call goes through. Each setter is named after
/// the attribute key and takes the type that key's expression must have, so
/// a wrong expression is reported at the user's tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guards<'g> {
    pub(super) budget: Option<&'g RetryBudget>,
    pub(super) breaker: Option<&'g CircuitBreaker>,
    pub(super) limiter: Option<&'g RateLimiter>,
    pub(super) concurrency: Option<Concurrency<'g>>,
}

impl<'g> Guards<'g> {
    /// The retry budget, which a hedge also spends from.
    pub(crate) const fn retry_budget(&self) -> Option<&'g RetryBudget> {
        self.budget
    }

    /// No protection (and no budget).
    #[must_use]
    pub const fn new() -> Self {
        Guards {
            budget: None,
            breaker: None,
            limiter: None,
            concurrency: None,
        }
    }

    /// `budget`: each call deposits, each retry withdraws.
    #[must_use]
    pub const fn budget(mut self, budget: &'g RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// `circuit_breaker`.
    #[must_use]
    pub const fn circuit_breaker(mut self, breaker: &'g CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// `rate_limit`: each attempt takes a token.
    #[must_use]
    pub const fn rate_limit(mut self, limiter: &'g RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// `concurrency`: each attempt holds a permit of a `Bulkhead` or an
    /// `AdaptiveLimit` (the trait says which, so the expansion need not).
    #[must_use]
    #[inline]
    pub fn concurrency<L: ConcurrencyLimit + ?Sized>(mut self, limit: &'g L) -> Self {
        self.concurrency = Some(limit.concurrency());
        self
    }
}

/// Why an attempt was not made: the call ends with `E::from(..)` of it.
/// Which refusals a configuration can meet is `retry_rules::Protections`'
/// to say, for every door; admission keeps to it.
pub use retry_rules::Refusal;

/// How a refusal becomes the caller's error `E`: one conversion per kind,
/// given by the key that causes it (`circuit_breaker`, `max_wait`,
/// `deadline`), so that a missing `From` impl is reported at that key, and
/// applied here, so that no door guesses which refusal it received.
pub struct Conversions<E> {
    circuit_open: Option<fn() -> E>,
    rejected: Option<fn() -> E>,
    elapsed: Option<fn() -> E>,
}

impl<E> Conversions<E> {
    /// None yet.
    #[must_use]
    pub const fn new() -> Self {
        Conversions {
            circuit_open: None,
            rejected: None,
            elapsed: None,
        }
    }

    /// `E::from(CircuitOpen)`, for `circuit_breaker`.
    #[must_use]
    pub const fn circuit_open(mut self, convert: fn() -> E) -> Self {
        self.circuit_open = Some(convert);
        self
    }

    /// `E::from(Rejected)`, for `max_wait`.
    #[must_use]
    pub const fn rejected(mut self, convert: fn() -> E) -> Self {
        self.rejected = Some(convert);
        self
    }

    /// `E::from(Elapsed)`, for `deadline` (and `timeout`).
    #[must_use]
    pub const fn elapsed(mut self, convert: fn() -> E) -> Self {
        self.elapsed = Some(convert);
        self
    }

    /// The caller's error for `refusal`.
    ///
    /// # Panics
    ///
    /// If `refusal` has no conversion: a protection refused in a way
    /// `Protections::can_refuse` does not allow for the keys given, which
    /// is a bug in steadfast. Loud rather than converted to another kind's
    /// error, which would hand the caller a wrong one.
    pub fn convert(&self, refusal: Refusal) -> E {
        let convert = match refusal {
            Refusal::CircuitOpen => self.circuit_open,
            Refusal::Rejected => self.rejected,
            Refusal::Elapsed => self.elapsed,
        };
        match convert {
            Some(convert) => convert(),
            None => unconvertible(refusal),
        }
    }
}

#[cold]
#[inline(never)]
fn unconvertible(refusal: Refusal) -> ! {
    panic!(
        "steadfast refused an attempt with `{refusal:?}`, which needs `{}`, a key this call does not have; this is a bug in steadfast, please report it",
        refusal.key()
    )
}

impl<E> Clone for Conversions<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Conversions<E> {}

impl<E> Default for Conversions<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for Conversions<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conversions")
            .field("circuit_open", &self.circuit_open.is_some())
            .field("rejected", &self.rejected.is_some())
            .field("elapsed", &self.elapsed.is_some())
            .finish()
    }
}

/// What an admitted attempt holds until its outcome is known: the breaker's
/// permit (to record the outcome) and the concurrency limit's (released
/// when the attempt ends, before any backoff sleep, with a sample for an
/// adaptive limit; dropped with a cancelled call, with none).
#[derive(Debug, Default)]
pub struct Admitted<'g> {
    pub(super) breaker: Option<BreakerPermit<'g>>,
    pub(super) permit: Option<ConcurrencyPermit<'g>>,
    /// Whether the rate limiter's token was taken (or there is no limiter).
    pub(super) token: bool,
    pub(super) timed_out: bool,
    /// `breaker_if`'s verdict on the attempt's error, when it has one.
    pub(super) breaker_failure: Option<bool>,
}

impl Admitted<'_> {
    /// The attempt ran out of time: the breaker counts it as a failure and
    /// an adaptive limit as a drop, whatever the error's classification.
    pub fn timed_out(&mut self) {
        self.timed_out = true;
    }

    /// `breaker_if`: whether the breaker counts the attempt's error as a
    /// failure (and an adaptive limit as a drop), in place of the retry
    /// classification. A timed-out attempt is a failure either way.
    #[inline]
    pub fn breaker_judges(&mut self, failure: bool) {
        self.breaker_failure = Some(failure);
    }
}

/// The answer of [`Call::try_admit`](super::Call::try_admit): admitted or refused at once, or a
/// token or permit must be waited for (with what was already taken).
#[derive(Debug)]
pub enum Admission<'g> {
    /// Nothing needed waiting.
    Done(Result<Admitted<'g>, Refusal>),
    /// Wait with [`Call::admit`](super::Call::admit) or
    /// [`Call::admit_within`](super::Call::admit_within), which complete what
    /// was taken.
    Wait(Admitted<'g>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_is_converted_by_its_own_conversion() {
        let conversions = Conversions::new()
            .circuit_open(|| "open")
            .rejected(|| "rejected")
            .elapsed(|| "elapsed");
        assert_eq!(conversions.convert(Refusal::CircuitOpen), "open");
        assert_eq!(conversions.convert(Refusal::Rejected), "rejected");
        assert_eq!(conversions.convert(Refusal::Elapsed), "elapsed");
        // `Clone` by hand (a derive would ask `E: Clone`): the same
        // conversions, as a copy has.
        #[allow(clippy::clone_on_copy)]
        let cloned = conversions.clone();
        assert_eq!(cloned.convert(Refusal::Rejected), "rejected");
        let copied = conversions;
        assert_eq!(
            format!("{copied:?}"),
            "Conversions { circuit_open: true, rejected: true, elapsed: true }"
        );
    }

    #[test]
    #[should_panic(expected = "refused an attempt with `Rejected`, which needs `max_wait`")]
    fn a_refusal_without_its_conversion_is_a_loud_bug() {
        let conversions: Conversions<&str> = Conversions::default().elapsed(|| "elapsed");
        conversions.convert(Refusal::Rejected);
    }
}
