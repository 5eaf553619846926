//! What one attempt goes through before it runs, as values: the call's
//! protections ([`Guards`]), what an admitted attempt holds ([`Admitted`]),
//! and why an attempt was not made ([`Refusal`]).

use crate::budget::RetryBudget;
use crate::bulkhead::{Bulkhead, BulkheadPermit};
use crate::circuit_breaker::{BreakerPermit, CircuitBreaker};
use crate::rate_limiter::RateLimiter;

/// The shared protections one call goes through. Each setter is named after
/// the attribute key and takes the type that key's expression must have, so
/// a wrong expression is reported at the user's tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guards<'g> {
    pub(super) budget: Option<&'g RetryBudget>,
    pub(super) breaker: Option<&'g CircuitBreaker>,
    pub(super) limiter: Option<&'g RateLimiter>,
    pub(super) bulkhead: Option<&'g Bulkhead>,
}

impl<'g> Guards<'g> {
    /// No protection (and no budget).
    #[must_use]
    pub const fn new() -> Self {
        Guards {
            budget: None,
            breaker: None,
            limiter: None,
            bulkhead: None,
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

    /// `concurrency`: each attempt holds a permit.
    #[must_use]
    pub const fn concurrency(mut self, bulkhead: &'g Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }
}

/// Why an attempt was not made: the call ends with `E::from(..)` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The breaker is open: `E::from(CircuitOpen)`. Only with a breaker.
    CircuitOpen,
    /// No permit or token within `max_wait`: `E::from(Rejected)`. Only with
    /// `max_wait`.
    Rejected,
    /// The deadline passed while waiting: `E::from(Elapsed)`. Only with a
    /// `deadline`.
    Elapsed,
}

/// What an admitted attempt holds until its outcome is known: the breaker's
/// permit (to record the outcome) and the bulkhead's (released when the
/// attempt ends, before any backoff sleep).
#[derive(Debug, Default)]
pub struct Admitted<'g> {
    pub(super) breaker: Option<BreakerPermit<'g>>,
    pub(super) permit: Option<BulkheadPermit<'g>>,
    /// Whether the rate limiter's token was taken (or there is no limiter).
    pub(super) token: bool,
    pub(super) timed_out: bool,
    /// `breaker_if`'s verdict on the attempt's error, when it has one.
    pub(super) breaker_failure: Option<bool>,
}

impl Admitted<'_> {
    /// The attempt ran out of time: the breaker counts it as a failure,
    /// whatever the error's classification.
    pub fn timed_out(&mut self) {
        self.timed_out = true;
    }

    /// `breaker_if`: whether the breaker counts the attempt's error as a
    /// failure, in place of the retry classification. A timed-out attempt
    /// is a failure either way.
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
