//! The same policy as a value: `Policy<E>`, built with `const fn`s named
//! after the attribute's keys, run with [`Policy::retry`] or
//! [`Policy::retry_blocking`] on the engine the attribute expands onto.

#[cfg(feature = "serde")]
mod config;
mod hedged;
mod run;

#[cfg(feature = "serde")]
pub use config::{ConfigError, ConfigProblem, HedgeConfig, JitterConfig, PolicyConfig};
#[cfg(feature = "tower")]
pub(crate) use run::{Failed, Judge};

use std::fmt;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::budget::RetryBudget;
use crate::circuit_breaker::CircuitBreaker;
use crate::concurrency::ConcurrencyLimit;
use retry_rules::Protections;

use crate::__private::{circuit_open, elapsed, rejected};
use crate::engine::{Conversions, Guards, Settings};
use crate::error::{CircuitOpen, Elapsed, Rejected};
use crate::event::RetryEvent;
use crate::hedge::Hedge;
use crate::jitter::Jitter;
use crate::rate_limiter::RateLimiter;

/// A resilience policy as a value: the keys of `#[resilient]`, as `const`
/// builders taking typed values, with the attribute's defaults, semantics
/// and error model, for code that is not a whole function or whose policy is
/// chosen at run time.
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{Backoff, Policy};
///
/// #[derive(Debug, PartialEq)]
/// enum ApiError { Busy, NotFound }
/// impl ApiError {
///     fn is_transient(&self) -> bool { matches!(self, ApiError::Busy) }
/// }
///
/// static POLICY: Policy<ApiError> = Policy::new()
///     .max_attempts(4)
///     .backoff(Backoff::fixed(Duration::from_millis(50)))
///     .retry_if(ApiError::is_transient);
///
/// async fn fetch(attempt: u32) -> Result<u32, ApiError> {
///     if attempt < 3 { Err(ApiError::Busy) } else { Ok(attempt) }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let n = POLICY.retry(|attempt| async move { fetch(attempt.number()).await }).await;
/// assert_eq!(n, Ok(3));
/// let gone = POLICY.retry_blocking(|_| Err::<u32, _>(ApiError::NotFound));
/// assert_eq!(gone, Err(ApiError::NotFound), "not transient: one attempt");
/// # }
/// ```
///
/// The library's own failures reach the caller as `E::from(..)`, as with the
/// attribute; so [`timeout`](Self::timeout) and [`deadline`](Self::deadline)
/// need `E: From<Elapsed>`, [`circuit_breaker`](Self::circuit_breaker)
/// `E: From<CircuitOpen>` and [`max_wait`](Self::max_wait)
/// `E: From<Rejected>`: a missing impl is a compile error at the builder.
///
/// Hooks are plain `fn`s, so that a policy can be a `static`. There is no
/// `fallback`: apply one to the result (`.or_else(..)`). Events show the
/// error through `Debug`.
///
/// # Default
///
/// [`Policy::new`]: the attribute's defaults: 3 attempts, exponential backoff
/// from 100 ms doubling to 20 s with full jitter, every error retried, no
/// timeout or deadline, and a retry budget of the policy's own (20% of calls
/// plus 10 retries a second).
pub struct Policy<E> {
    pub(super) settings: Settings,
    /// The policy's own budget, used unless `budget` or `no_budget` chose
    /// otherwise.
    pub(super) own_budget: RetryBudget,
    pub(super) budget: BudgetChoice,
    pub(super) breaker: Option<&'static CircuitBreaker>,
    pub(super) limiter: Option<&'static RateLimiter>,
    pub(super) concurrency: Option<&'static dyn ConcurrencyLimit>,
    /// Which keys shape an attempt: whether it is admitted, waits, with a
    /// bound, under a time limit (decided by `Protections`, as for the
    /// attribute).
    pub(super) protections: Protections,
    pub(super) retry_if: Option<fn(&E) -> bool>,
    pub(super) breaker_if: Option<fn(&E) -> bool>,
    pub(super) retry_after: Option<fn(&E) -> Option<Duration>>,
    pub(super) on_retry: Option<fn(&RetryEvent<'_, E>)>,
    /// `E::from(..)` of each refusal, set by the builder whose key causes it.
    pub(super) conversions: Conversions<E>,
    /// `hedge`: attempts beside a slow one (`retry` only).
    pub(super) hedge: Option<Hedge>,
}

/// Which budget a policy's retries draw on.
#[derive(Clone, Copy)]
pub(super) enum BudgetChoice {
    /// The policy's own, as the attribute's default is one per function.
    Own,
    Shared(&'static RetryBudget),
    Off,
}

impl<E> Policy<E> {
    crate::sync::const_fn! {
        /// The attribute's defaults, reported as `"policy"` (see
        /// [`name`](Self::name)).
        #[must_use]
        pub fn new() -> Self {
            Policy {
                settings: Settings::new("policy"),
                own_budget: RetryBudget::new(),
                budget: BudgetChoice::Own,
                breaker: None,
                limiter: None,
                concurrency: None,
                protections: Protections::NONE,
                retry_if: None,
                breaker_if: None,
                retry_after: None,
                on_retry: None,
                conversions: Conversions::new(),
                hedge: None,
            }
        }
    }

    /// `max_attempts`: attempts in total, the first included (3 by default;
    /// 0 is taken as 1).
    #[must_use]
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.settings = self.settings.max_attempts(n);
        self
    }

    /// `backoff`: the whole delay schedule, with its base, cap, multiplier
    /// and jitter.
    #[must_use]
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings = self.settings.schedule(backoff.schedule());
        self
    }

    /// `retry_if`: which errors are retried (every one by default).
    #[must_use]
    pub const fn retry_if(mut self, retryable: fn(&E) -> bool) -> Self {
        self.retry_if = Some(retryable);
        self
    }

    /// `breaker_if`: which errors the circuit breaker counts as failures,
    /// when that should differ from which are retried (by default the
    /// breaker counts the errors `retry_if` retries, and timeouts).
    /// resilience4j's `recordExceptions`/`ignoreExceptions`: a `429` may be
    /// worth retrying but says nothing of the dependency's health.
    ///
    /// ```
    /// use retry_runtime::{CircuitBreaker, CircuitOpen, Policy};
    ///
    /// #[derive(Debug)]
    /// enum ApiError { Down, Throttled, Open(CircuitOpen) }
    /// impl From<CircuitOpen> for ApiError {
    ///     fn from(open: CircuitOpen) -> Self { ApiError::Open(open) }
    /// }
    ///
    /// static API_BREAKER: CircuitBreaker = CircuitBreaker::new();
    /// static API: Policy<ApiError> = Policy::new()
    ///     .circuit_breaker(&API_BREAKER)
    ///     .retry_if(|e| matches!(e, ApiError::Down | ApiError::Throttled))
    ///     .breaker_if(|e| matches!(e, ApiError::Down));
    /// ```
    #[must_use]
    pub const fn breaker_if(mut self, failure: fn(&E) -> bool) -> Self {
        self.breaker_if = Some(failure);
        self
    }

    /// `retry_after`: a server's suggested delay, which replaces the
    /// computed one; one longer than `max_delay` ends the call.
    #[must_use]
    pub const fn retry_after(mut self, suggest: fn(&E) -> Option<Duration>) -> Self {
        self.retry_after = Some(suggest);
        self
    }

    /// `on_retry`: called before each backoff sleep.
    #[must_use]
    pub const fn on_retry(mut self, hook: fn(&RetryEvent<'_, E>)) -> Self {
        self.on_retry = Some(hook);
        self.settings = self.settings.reports_elapsed();
        self
    }

    /// `budget`: a budget shared with other functions and policies.
    #[must_use]
    pub const fn budget(mut self, budget: &'static RetryBudget) -> Self {
        self.budget = BudgetChoice::Shared(budget);
        self
    }

    /// `budget = "off"`: retries limited by `max_attempts` alone.
    #[must_use]
    pub const fn no_budget(mut self) -> Self {
        self.budget = BudgetChoice::Off;
        self
    }

    /// `concurrency`: attempts in flight at once, across everything sharing
    /// the limit: a [`Bulkhead`](crate::Bulkhead), or an
    /// [`AdaptiveLimit`](crate::AdaptiveLimit), which takes each attempt's
    /// latency as a sample, and a timeout or an error the breaker would
    /// count (see [`breaker_if`](Self::breaker_if)) as a drop.
    #[must_use]
    pub const fn concurrency<L: ConcurrencyLimit>(mut self, limit: &'static L) -> Self {
        self.concurrency = Some(limit);
        self.protections = self.protections.concurrency();
        self
    }

    /// `rate_limit`: each attempt takes a token.
    #[must_use]
    pub const fn rate_limit(mut self, limiter: &'static RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self.protections = self.protections.rate_limit();
        self
    }

    /// `hedge`: when an attempt is slow, another attempt of the same call
    /// starts beside it, and the first success wins (see [`Hedge`]). Only
    /// [`retry`](Self::retry) hedges: a blocking attempt cannot be
    /// cancelled, so [`retry_blocking`](Self::retry_blocking) ignores it.
    ///
    /// The hedges of one attempt and that attempt are a round: the round
    /// fails when every attempt of it has failed, and then the policy
    /// retries as it would an attempt (`max_attempts` counts rounds). An
    /// error that would not be retried ends the call at once; one that
    /// would sends the next hedge at once; a `retry_after` hint sends no
    /// more hedges in the round.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::{Hedge, Policy};
    ///
    /// static READ: Policy<std::io::Error> =
    ///     Policy::new().hedge(Hedge::after(Duration::from_millis(10)).max_extra_load(1.0));
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let replica = READ
    ///     .retry(|attempt| async move {
    ///         // The first attempt stalls; its hedge, sent after 10 ms, answers.
    ///         let stall = if attempt.is_hedge() { 1 } else { 1000 };
    ///         tokio::time::sleep(Duration::from_millis(stall)).await;
    ///         Ok(attempt.number())
    ///     })
    ///     .await;
    /// assert_eq!(replica.unwrap(), 2);
    /// # }
    /// ```
    #[must_use]
    pub const fn hedge(mut self, hedge: Hedge) -> Self {
        // Replaced, not assigned: a `const fn` may not drop the `None` an
        // assignment would. A hedge set twice leaks the first (unused, so
        // it holds no allocation).
        std::mem::forget(self.hedge.replace(hedge));
        self.settings = self.settings.hedged();
        self
    }

    /// The policy's [`Hedge`], if it has one: its counts of hedges sent,
    /// won and refused.
    pub const fn hedging(&self) -> Option<&Hedge> {
        self.hedge.as_ref()
    }

    /// `name`: the policy's name in events, metrics and statistics.
    #[must_use]
    pub const fn name(mut self, name: &'static str) -> Self {
        self.settings = self.settings.renamed(name);
        self
    }

    /// The shared protections of one call.
    pub(super) fn guards(&self) -> Guards<'_> {
        let mut guards = Guards::new();
        match self.budget {
            BudgetChoice::Own => guards = guards.budget(&self.own_budget),
            BudgetChoice::Shared(budget) => guards = guards.budget(budget),
            BudgetChoice::Off => {}
        }
        if let Some(breaker) = self.breaker {
            guards = guards.circuit_breaker(breaker);
        }
        if let Some(limiter) = self.limiter {
            guards = guards.rate_limit(limiter);
        }
        if let Some(limit) = self.concurrency {
            guards = guards.concurrency(limit);
        }
        guards
    }
}

/// The keys of the delay schedule (`base_delay`, `max_delay`, ...), each
/// passed on to the schedule, keeping the others.
macro_rules! schedule_builders {
    ($($(#[$doc:meta])* $key:ident($value:ty),)*) => {
        impl<E> Policy<E> {
            $(
                $(#[$doc])*
                #[must_use]
                pub const fn $key(mut self, value: $value) -> Self {
                    self.settings = self.settings.$key(value);
                    self
                }
            )*
        }
    };
}

crate::backoff::schedule_keys!(schedule_builders);

impl<E: From<Elapsed>> Policy<E> {
    /// `timeout`: per attempt (async only; a blocking attempt cannot be
    /// cancelled, so [`retry_blocking`](Self::retry_blocking) ignores it).
    /// An attempt that runs out of time fails with `E::from(Elapsed)`.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.settings = self.settings.timeout(timeout);
        self.protections = self.protections.timeout();
        self.conversions = self.conversions.elapsed(elapsed::<E>);
        self
    }

    /// `deadline`: for the whole call, from its start; no sleep or attempt
    /// starts that would end after it.
    #[must_use]
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.settings = self.settings.deadline(deadline);
        self.protections = self.protections.deadline();
        self.conversions = self.conversions.elapsed(elapsed::<E>);
        self
    }
}

impl<E: From<CircuitOpen>> Policy<E> {
    /// `circuit_breaker`: an open breaker fails the attempt with
    /// `E::from(CircuitOpen)`.
    #[must_use]
    pub const fn circuit_breaker(mut self, breaker: &'static CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self.protections = self.protections.circuit_breaker();
        self.conversions = self.conversions.circuit_open(circuit_open::<E>);
        self
    }
}

impl<E: From<Rejected>> Policy<E> {
    /// `max_wait`: the longest wait for a permit or token, then
    /// `E::from(Rejected)`.
    #[must_use]
    pub const fn max_wait(mut self, max_wait: Duration) -> Self {
        self.settings = self.settings.max_wait(max_wait);
        self.protections = self.protections.max_wait();
        self.conversions = self.conversions.rejected(rejected::<E>);
        self
    }
}

impl<E> Default for Policy<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for Policy<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("settings", &self.settings)
            .field(
                "shared_budget",
                &matches!(self.budget, BudgetChoice::Shared(_)),
            )
            .field("budget_off", &matches!(self.budget, BudgetChoice::Off))
            .field("circuit_breaker", &self.breaker)
            .field("rate_limit", &self.limiter)
            .field("concurrency", &self.concurrency)
            .field("hedge", &self.hedge)
            .finish_non_exhaustive()
    }
}
