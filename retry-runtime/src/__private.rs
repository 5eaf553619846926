//! What `#[resilient]` expansions call. Not public API: names and signatures
//! here change with the macro, which is pinned to this exact crate version.
//!
//! The expansion keeps the retry loop inline (so the function's future stays
//! `Send` whenever its body's is) and asks [`Call`] what to do after each
//! failed attempt. Everything here is kept off the happy path: a call whose
//! first attempt succeeds touches [`Call::start`] and nothing else.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{CircuitOpen, Elapsed, Rejected};
use crate::event::RetryEvent;
use crate::observe::{self, Site};
use crate::testing;

pub use crate::observe::{
    DescribeDebug, DescribeDisplay, DescribeOpaque, Description, ErrorRef, GiveUp, Rejection,
};

pub use crate::backoff::Backoff;
pub use crate::budget::RetryBudget;
pub use crate::bulkhead::{Bulkhead, BulkheadPermit};
pub use crate::circuit_breaker::{BreakerPermit, CircuitBreaker};
pub use crate::jitter::Jitter;
pub use crate::rate_limiter::RateLimiter;

/// The retry configuration of one annotated function, built in a `static`.
#[derive(Debug)]
pub struct Policy {
    site: Site,
    max_attempts: u32,
    backoff: Backoff,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
    reads_clock: bool,
}

impl Policy {
    /// `max_attempts` is validated (>= 1) by the macro; 0 is treated as 1.
    pub const fn new(name: &'static str, max_attempts: u32, backoff: Backoff) -> Self {
        Policy {
            site: Site::new(name),
            max_attempts: if max_attempts == 0 { 1 } else { max_attempts },
            backoff,
            timeout: None,
            deadline: None,
            reads_clock: false,
        }
    }

    /// Per-attempt timeout (async functions only).
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Budget for the whole call, from its start.
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self.reads_clock = true;
        self
    }

    /// The call start is needed for reporting (`on_retry`'s `elapsed`).
    pub const fn reports_elapsed(mut self) -> Self {
        self.reads_clock = true;
        self
    }

    /// The call site's name.
    pub const fn name(&self) -> &'static str {
        self.site.name
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sleep this long, then make another attempt.
    Retry(Duration),
    /// Return the error (through `fallback`, if any).
    GiveUp(GiveUp),
}

/// The state of one call of an annotated function.
///
/// Small and `Send`: it lives in the function's future across awaits.
#[derive(Debug)]
pub struct Call {
    policy: &'static Policy,
    attempts: u32,
    decorrelated_prev: Duration,
    start: Option<Instant>,
    // Sleeps skipped under `testing::no_delays` still count towards the
    // deadline and `elapsed`, so a test sees the call give up when it would.
    skipped: Duration,
}

impl Call {
    /// Starts a call: reads the clock only if the policy needs the start.
    #[inline]
    pub fn start(policy: &'static Policy) -> Self {
        Call {
            policy,
            attempts: 1,
            decorrelated_prev: Duration::ZERO,
            start: (policy.reads_clock || observe::NEEDS_START).then(Instant::now),
            skipped: Duration::ZERO,
        }
    }

    /// The attempt being made, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.attempts
    }

    fn elapsed(&self) -> Duration {
        self.start
            .map_or(Duration::ZERO, |start| start.elapsed() + self.skipped)
    }

    fn deadline_at(&self) -> Option<Instant> {
        let start = self.start?;
        let deadline = self.policy.deadline?;
        Some(
            (start + deadline)
                .checked_sub(self.skipped)
                .unwrap_or(start),
        )
    }

    /// When the running attempt must be cancelled: the earlier of its
    /// `timeout` and the call's `deadline`. Only called when one is set.
    pub fn attempt_deadline(&self) -> Instant {
        let by_timeout = self.policy.timeout.map(|t| Instant::now() + t);
        match (by_timeout, self.deadline_at()) {
            (Some(t), Some(d)) => t.min(d),
            (Some(t), None) => t,
            (None, Some(d)) => d,
            // Unreachable from expansions; a far deadline keeps it harmless.
            (None, None) => Instant::now() + Duration::from_secs(86_400 * 365),
        }
    }

    /// The call returns `Ok`: reported to the enabled observers (nothing
    /// happens without the `tracing`, `metrics` or `stats` features).
    #[inline]
    pub fn succeeded(&self) {
        observe::succeeded(&self.policy.site, self.attempts, self.reported_elapsed());
    }

    /// A protection refused the attempt: the call ends.
    pub fn rejected(&self, kind: Rejection) {
        observe::rejected(
            &self.policy.site,
            kind,
            self.attempts,
            self.reported_elapsed(),
        );
    }

    /// The elapsed time observers need; without any reporting feature they
    /// need none, and the happy path must not read the clock for it.
    #[inline]
    fn reported_elapsed(&self) -> Duration {
        if observe::NEEDS_START {
            self.elapsed()
        } else {
            Duration::ZERO
        }
    }

    /// A bounded wait for a permit or token ended without one: past the
    /// deadline the call gives up, otherwise it was rejected.
    pub fn wait_refused(&self, kind: Rejection) {
        if self.past_deadline() {
            let waited = "the deadline passed while waiting for a permit or token";
            let attempts = self.attempts.saturating_sub(1);
            observe::gave_up(
                &self.policy.site,
                GiveUp::Deadline,
                attempts,
                &waited,
                self.reported_elapsed(),
            );
        } else {
            self.rejected(kind);
        }
    }

    /// Whether the call's deadline has passed.
    pub fn past_deadline(&self) -> bool {
        self.deadline_at().is_some_and(|d| Instant::now() >= d)
    }

    /// How long a permit or token wait may last: `max_wait`, or what is
    /// left before the deadline if that is less; `None` waits as long as it
    /// takes.
    fn wait_left(&self, max_wait: Option<Duration>) -> Option<Duration> {
        let to_deadline = self
            .deadline_at()
            .map(|d| d.saturating_duration_since(Instant::now()));
        match (max_wait, to_deadline) {
            (Some(w), Some(d)) => Some(w.min(d)),
            (w, d) => w.or(d),
        }
    }

    /// Decides what follows a failed attempt, and reports the retry or the
    /// give-up with `error` as events show it.
    ///
    /// `retryable` is the classification of the error; `retry_after` the
    /// server's suggested delay, which replaces the computed one. The budget
    /// is asked last, so a retry that would not happen anyway costs no token.
    pub fn after_error(
        &mut self,
        retryable: bool,
        retry_after: Option<Duration>,
        budget: Option<&RetryBudget>,
        error: Description<'_>,
    ) -> Decision {
        let decision = self.decide(retryable, retry_after, budget);
        let site = &self.policy.site;
        match decision {
            Decision::Retry(delay) => {
                observe::retrying(site, self.attempts, &error, delay, self.reported_elapsed());
            }
            Decision::GiveUp(reason) => {
                observe::gave_up(site, reason, self.attempts, &error, self.reported_elapsed());
            }
        }
        decision
    }

    fn decide(
        &mut self,
        retryable: bool,
        retry_after: Option<Duration>,
        budget: Option<&RetryBudget>,
    ) -> Decision {
        if !retryable {
            return Decision::GiveUp(GiveUp::NotRetryable);
        }
        let deadline = self.deadline_at();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Decision::GiveUp(GiveUp::Deadline);
        }
        if self.attempts >= self.policy.max_attempts {
            return Decision::GiveUp(GiveUp::Exhausted);
        }
        let delay = retry_after.unwrap_or_else(|| {
            self.policy
                .backoff
                .delay_for_call(self.attempts, &mut self.decorrelated_prev)
        });
        if deadline.is_some_and(|d| Instant::now() + delay >= d) {
            return Decision::GiveUp(GiveUp::Deadline);
        }
        if budget.is_some_and(|b| !b.withdraw()) {
            return Decision::GiveUp(GiveUp::Budget);
        }
        Decision::Retry(delay)
    }

    /// The event an `on_retry` hook sees for the attempt that just failed.
    pub fn event<'e, E>(&self, error: &'e E, delay: Duration) -> RetryEvent<'e, E> {
        RetryEvent {
            name: self.policy.site.name,
            attempt: self.attempts,
            error,
            delay,
            elapsed: self.elapsed(),
        }
    }

    /// Sleeps before the next attempt (async), then counts it.
    pub async fn backoff(&mut self, delay: Duration) {
        if testing::delays_skipped() {
            self.skipped += delay;
        } else if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.attempts += 1;
    }

    /// Sleeps the thread before the next attempt (sync), then counts it.
    pub fn backoff_blocking(&mut self, delay: Duration) {
        if testing::delays_skipped() {
            self.skipped += delay;
        } else if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.attempts += 1;
    }
}

/// Counts a call in the budget (the deposit that funds later retries).
#[inline]
pub fn deposit(budget: &RetryBudget) {
    budget.deposit();
}

/// Runs one attempt, cancelling it at `deadline`. A plain function, not an
/// `async fn`: that would hold the attempt's future twice in the caller's.
pub fn with_deadline<F: Future>(deadline: Instant, attempt: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout_at(deadline, attempt)
}

/// Takes a bulkhead permit, waiting at most `max_wait` and never past the
/// call's deadline; `None` when neither came first. A free permit is taken
/// without reading the clock.
pub async fn bulkhead_permit<'b>(
    bulkhead: &'b Bulkhead,
    call: &Call,
    max_wait: Option<Duration>,
) -> Option<BulkheadPermit<'b>> {
    if let Some(permit) = bulkhead.try_acquire() {
        return Some(permit);
    }
    match call.wait_left(max_wait) {
        None => Some(bulkhead.acquire().await),
        Some(left) => bulkhead.acquire_timeout(left).await.ok(),
    }
}

/// [`bulkhead_permit`] for plain functions: parks the thread.
pub fn bulkhead_permit_blocking<'b>(
    bulkhead: &'b Bulkhead,
    call: &Call,
    max_wait: Option<Duration>,
) -> Option<BulkheadPermit<'b>> {
    if let Some(permit) = bulkhead.try_acquire() {
        return Some(permit);
    }
    match call.wait_left(max_wait) {
        None => Some(bulkhead.acquire_blocking()),
        Some(left) => bulkhead.acquire_blocking_timeout(left).ok(),
    }
}

/// Takes a rate-limit token, waiting at most `max_wait` and never past the
/// call's deadline; `false` when neither came first (no token is taken
/// then). An available token is taken without computing a limit.
pub async fn rate_token(limiter: &RateLimiter, call: &Call, max_wait: Option<Duration>) -> bool {
    if limiter.try_acquire() {
        return true;
    }
    match call.wait_left(max_wait) {
        None => {
            limiter.acquire().await;
            true
        }
        Some(left) => limiter.acquire_timeout(left).await.is_ok(),
    }
}

/// [`rate_token`] for plain functions: sleeps the thread.
pub fn rate_token_blocking(limiter: &RateLimiter, call: &Call, max_wait: Option<Duration>) -> bool {
    if limiter.try_acquire() {
        return true;
    }
    match call.wait_left(max_wait) {
        None => {
            limiter.acquire_blocking();
            true
        }
        Some(left) => limiter.acquire_blocking_timeout(left).is_ok(),
    }
}

/// Checks a `concurrency = <expr>` expression's type at the user's expression.
#[inline]
pub fn bulkhead(bulkhead: &Bulkhead) -> &Bulkhead {
    bulkhead
}

/// Checks a `rate_limit = <expr>` expression's type at the user's expression.
#[inline]
pub fn rate_limiter(limiter: &RateLimiter) -> &RateLimiter {
    limiter
}

/// Checks a `circuit_breaker = <expr>` expression's type at the user's expression.
#[inline]
pub fn circuit_breaker(breaker: &CircuitBreaker) -> &CircuitBreaker {
    breaker
}

/// Converts the library's timeout into the function's error type.
///
/// A trait of its own (rather than a bare `From` bound) so that a missing
/// impl is reported with a message naming the key that needs it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot represent a timeout, which `timeout` and `deadline` produce",
    label = "`{Self}` needs `From<Elapsed>` for this key",
    note = "add `impl From<Elapsed> for {Self}` (e.g. a `Timeout(Elapsed)` variant), or remove `timeout` and `deadline`"
)]
pub trait FromElapsed {
    /// `Self::from(Elapsed)`.
    fn from_elapsed(elapsed: Elapsed) -> Self;
}

impl<E: From<Elapsed>> FromElapsed for E {
    fn from_elapsed(elapsed: Elapsed) -> Self {
        E::from(elapsed)
    }
}

/// `E::from(Elapsed)` for the attempt that ran out of time.
pub fn timed_out<T, E: FromElapsed>(_: tokio::time::error::Elapsed) -> Result<T, E> {
    Err(E::from_elapsed(Elapsed::new()))
}

/// `E::from(Elapsed)` for a wait cut short by the deadline.
pub fn deadline_elapsed<E: FromElapsed>() -> E {
    E::from_elapsed(Elapsed::new())
}

/// Converts an open breaker's refusal into the function's error type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot represent an open circuit breaker, which `circuit_breaker` produces",
    label = "`{Self}` needs `From<CircuitOpen>` for this key",
    note = "add `impl From<CircuitOpen> for {Self}` (e.g. an `Unavailable(CircuitOpen)` variant), or remove `circuit_breaker`"
)]
pub trait FromCircuitOpen {
    /// `Self::from(CircuitOpen)`.
    fn from_circuit_open(open: CircuitOpen) -> Self;
}

impl<E: From<CircuitOpen>> FromCircuitOpen for E {
    fn from_circuit_open(open: CircuitOpen) -> Self {
        E::from(open)
    }
}

/// `E::from(CircuitOpen)`.
pub fn circuit_open<E: FromCircuitOpen>() -> E {
    E::from_circuit_open(CircuitOpen::new())
}

/// Converts a refused permit or token into the function's error type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot represent a rejection, which `max_wait` produces when no permit or token comes in time",
    label = "`{Self}` needs `From<Rejected>` for this key",
    note = "add `impl From<Rejected> for {Self}` (e.g. an `Overloaded(Rejected)` variant), or remove `max_wait`"
)]
pub trait FromRejected {
    /// `Self::from(Rejected)`.
    fn from_rejected(rejected: Rejected) -> Self;
}

impl<E: From<Rejected>> FromRejected for E {
    fn from_rejected(rejected: Rejected) -> Self {
        E::from(rejected)
    }
}

/// `E::from(Rejected)`.
pub fn rejected<E: FromRejected>() -> E {
    E::from_rejected(Rejected::new())
}

/// Applies `retry_if` to the error; generic so the closure's parameter type
/// is inferred from the function's error type and mismatches are reported
/// on the user's expression.
#[inline]
pub fn retry_if<E>(error: &E, predicate: impl Fn(&E) -> bool) -> bool {
    predicate(error)
}

/// Applies `retry_after` to the error.
#[inline]
pub fn retry_after<E>(error: &E, suggest: impl Fn(&E) -> Option<Duration>) -> Option<Duration> {
    suggest(error)
}

/// Calls the `on_retry` hook.
#[inline]
pub fn on_retry<E>(event: &RetryEvent<'_, E>, hook: impl Fn(&RetryEvent<'_, E>)) {
    hook(event);
}

/// Applies `fallback` to the final error.
#[inline]
pub fn fallback<T, E>(error: E, fallback: impl FnOnce(E) -> Result<T, E>) -> Result<T, E> {
    fallback(error)
}

/// Checks a `budget = <expr>` expression's type at the user's expression.
#[inline]
pub fn budget(budget: &RetryBudget) -> &RetryBudget {
    budget
}

/// `Duration` constants in expansions, without naming `core` paths.
pub const fn duration(secs: u64, nanos: u32) -> Duration {
    Duration::new(secs, nanos)
}
