//! One call's state, and the decisions between its attempts.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::event::RetryEvent;
use crate::report::{self, Site};
use crate::spans::{AttemptSpan, Kind, Spans};
use crate::testing;

use super::attempt::{Attempt, CallKey};
use super::decision::{Decision, GiveUp};
use super::describe::Description;
use super::guards::{Admitted, Guards, Refusal};
use super::settings::Settings;

/// The state of one call of an annotated function.
///
/// Small and `Send`: it lives in the function's future across awaits. The
/// [`Guards`] are passed to each step that needs them rather than kept here:
/// for the usual `static`s they cost no space in the future. A call whose
/// first attempt succeeds touches [`start`](Self::start),
/// [`succeeded`](Self::succeeded) and nothing else.
#[derive(Debug)]
pub struct Call {
    pub(super) settings: &'static Settings,
    attempts: u32,
    /// The last decorrelated delay, in nanoseconds (as the skipped time
    /// below: a `Duration` takes twice the room in every call's future).
    decorrelated_prev: u64,
    start: Option<Instant>,
    // Sleeps skipped under `testing::no_delays` still count towards the
    // deadline and `elapsed`, so a test sees the call give up when it would.
    skipped: u64,
    /// The call's key number, made when an attempt first asks for it and
    /// kept for the others; 0 until then. A number, not the whole key: the
    /// call lives in the function's future, which should stay small.
    key: u64,
    /// Hedges sent by the call's earlier rounds (`Policy::hedge`), so that
    /// every attempt has a number of its own; `attempts` counts rounds.
    hedges: u32,
    /// With `tracing`, the call's span and its attempt's; nothing without.
    spans: Spans,
}

impl Call {
    /// Starts a call: deposits in the budget, and reads the clock only if
    /// the budget (which dates the call), the settings or reporting needs the
    /// start: once for all of them.
    #[inline]
    pub fn start(settings: &'static Settings, guards: Guards<'_>) -> Self {
        let needs_start = settings.reads_clock || report::NEEDS_START;
        let start = match guards.budget {
            Some(budget) => {
                let now = Instant::now();
                budget.deposit_at(now);
                needs_start.then_some(now)
            }
            None => needs_start.then(Instant::now),
        };
        Call {
            settings,
            attempts: 1,
            decorrelated_prev: 0,
            start,
            skipped: 0,
            key: 0,
            hedges: 0,
            spans: Spans::start(settings.site.name),
        }
    }

    /// The attempt the loop is making starts (before its admission): with
    /// `tracing`, its `steadfast.attempt` span is made, in which the attempt
    /// runs ([`instrument`](Self::instrument), [`in_attempt`](Self::in_attempt))
    /// and what it leads to is reported. Nothing without the feature.
    #[inline(always)]
    pub fn begin_attempt(&mut self) {
        self.spans.begin_attempt(self.attempts, Kind::Attempt);
    }

    /// The call is a request of the tower layer with `Http`: its
    /// attempts' spans, hedges' included, carry `http.request.resend_count`.
    #[cfg(feature = "tower")]
    pub(crate) fn mark_http(&mut self) {
        self.spans.mark_http();
    }

    /// The attempt's future, run in the attempt's span (entered at each
    /// poll, never across an await); without `tracing`, the future itself.
    #[inline(always)]
    pub fn instrument<F: Future>(&self, attempt: F) -> impl Future<Output = F::Output> + use<F> {
        self.spans.attempt().instrument(attempt)
    }

    /// Runs a plain function's attempt in the attempt's span; without
    /// `tracing`, runs it.
    #[inline(always)]
    pub fn in_attempt<R>(&self, attempt: impl FnOnce() -> R) -> R {
        self.spans.in_attempt(attempt)
    }

    /// What the attempt being made knows of its call. Only code that asks
    /// for it (the `attempt` key, a `Policy`'s closure) pays for the key.
    #[inline]
    pub fn attempt(&mut self) -> Attempt {
        if self.key == 0 {
            self.key = CallKey::next_number();
        }
        Attempt::new(self.attempts, self.deadline_at(), self.key)
    }

    /// When the call started, if it read the clock then (see
    /// `Settings::hedged`), or now.
    pub(crate) fn started_at(&self) -> Instant {
        self.start.unwrap_or_else(Instant::now)
    }

    fn elapsed(&self) -> Duration {
        self.start.map_or(Duration::ZERO, |start| {
            start.elapsed() + Duration::from_nanos(self.skipped)
        })
    }

    /// The elapsed time observers need; without any reporting feature they
    /// need none, and the happy path must not read the clock for it.
    #[inline]
    fn reported_elapsed(&self) -> Duration {
        if report::NEEDS_START {
            self.elapsed()
        } else {
            Duration::ZERO
        }
    }

    /// Whether an attempt runs under a time limit (`Protections::limits_time`
    /// of the settings). Asked of the call, which the attempt's future
    /// borrows anyway, so that it borrows nothing more.
    #[inline]
    pub fn limits_time(&self) -> bool {
        self.settings.protections.limits_time()
    }

    #[inline]
    pub(super) fn deadline_at(&self) -> Option<Instant> {
        let start = self.start?;
        let deadline = self.settings.deadline?;
        Some(
            (start + deadline)
                .checked_sub(Duration::from_nanos(self.skipped))
                .unwrap_or(start),
        )
    }

    pub(super) fn time_to_deadline(&self) -> Option<Duration> {
        self.deadline_at()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Runs one attempt, cancelling it at the earlier of its `timeout` and
    /// the call's `deadline`. Expansions call it only when one is set. A
    /// plain function, not an `async fn`: that would hold the attempt's
    /// future twice in the caller's.
    #[inline]
    pub fn with_time_limit<F: Future>(&self, attempt: F) -> tokio::time::Timeout<F> {
        let by_timeout = self.settings.timeout.map(|t| Instant::now() + t);
        let limit = match (by_timeout, self.deadline_at()) {
            (Some(t), Some(d)) => t.min(d),
            (Some(t), None) => t,
            (None, Some(d)) => d,
            // Not reached from expansions; a far limit keeps it harmless.
            (None, None) => Instant::now() + Duration::from_secs(86_400 * 365),
        };
        tokio::time::timeout_at(limit, attempt)
    }

    /// The call returns `Ok`: the breaker counts a success, and the enabled
    /// observers hear of it (nothing happens without the `tracing`,
    /// `metrics` or `stats` features). Always inlined: without a breaker
    /// (known where the expansion calls it) it is nothing at all, and the
    /// compiler, seeing the breaker's success path grow, stopped inlining
    /// it and made every call pay one out-of-line call (20 instructions).
    #[inline(always)]
    pub fn succeeded(&self, admitted: Admitted<'_>) {
        if let Some(permit) = admitted.breaker {
            permit.success();
        }
        if let Some(permit) = admitted.permit {
            permit.ended(false);
        }
        // Only the duration histogram reads a success's elapsed time: with
        // `tracing` alone (no event on success) that clock read was wasted.
        let elapsed = if report::SUCCESS_NEEDS_ELAPSED {
            self.reported_elapsed()
        } else {
            Duration::ZERO
        };
        report::succeeded(&self.settings.site, self.attempts, elapsed);
    }

    /// A protection refused the attempt: the call ends.
    pub(super) fn refused(&self, refusal: Refusal, kind: &'static str) {
        let site = &self.settings.site;
        let elapsed = self.reported_elapsed();
        if refusal == Refusal::Elapsed {
            let waited = "the deadline passed while waiting for a permit or token";
            let attempts = self.attempts.saturating_sub(1);
            self.spans.in_call(|| {
                report::gave_up(site, GiveUp::Deadline.as_str(), attempts, &waited, elapsed);
            });
        } else {
            self.spans
                .in_attempt(|| report::rejected(site, kind, self.attempts, elapsed));
        }
    }

    /// Decides what follows a failed attempt, records the attempt's outcome
    /// in the breaker, and reports the retry or the give-up with `error` as
    /// events show it.
    ///
    /// `retryable` is the classification of the error. The breaker counts a
    /// failure, and an adaptive concurrency limit a drop, when the error is
    /// retryable (or `breaker_if` said so, see [`Admitted::breaker_judges`])
    /// or the attempt timed out: other errors show the dependency answered,
    /// and are a latency sample like a success. `retry_after` is the server's
    /// suggested delay, which replaces the computed one, and pauses every
    /// caller of the rate limiter if it was asked to
    /// (`RateLimiter::pause_on_retry_after`).
    pub fn after_error(
        &mut self,
        guards: Guards<'_>,
        admitted: Admitted<'_>,
        retryable: bool,
        retry_after: Option<Duration>,
        error: Description<'_>,
    ) -> Decision {
        // In the attempt's span: what the breaker and the limiter make of
        // it, and the retry it leads to; giving up is the call's.
        let span = self.spans.attempt();
        let decision = span.in_scope(|| {
            self.attempt_failed(guards, admitted, retryable, retry_after);
            self.decide(guards, retryable, retry_after)
        });
        let site = &self.settings.site;
        match decision {
            Decision::Retry(delay) => span.in_scope(|| {
                report::retrying(site, self.attempts, &error, delay, self.reported_elapsed());
            }),
            Decision::GiveUp(reason) => self.spans.in_call(|| {
                let elapsed = self.reported_elapsed();
                report::gave_up(site, reason.as_str(), self.attempts, &error, elapsed);
            }),
        }
        decision
    }

    /// What a failed attempt tells the shared protections, whether or not
    /// the call goes on: the breaker's verdict, and a `retry_after` hint
    /// for every caller of the rate limiter (before deciding: a hint too
    /// long to wait out ends this call, but the quota it speaks of is every
    /// caller's). Also what a hedged round does for an attempt that failed
    /// while another still runs.
    pub(crate) fn attempt_failed(
        &self,
        guards: Guards<'_>,
        admitted: Admitted<'_>,
        retryable: bool,
        retry_after: Option<Duration>,
    ) {
        // One verdict for the breaker and an adaptive limit: an error the
        // breaker counts, or a timeout, is an adaptive limit's drop.
        let failure = admitted.breaker_failure.unwrap_or(retryable) || admitted.timed_out;
        if let Some(permit) = admitted.breaker {
            if failure {
                permit.failure();
            } else {
                permit.success();
            }
        }
        if let Some(permit) = admitted.permit {
            permit.ended(failure);
        }
        // Before deciding: a hint too long to wait out ends this call, but
        // the quota it speaks of is every caller's.
        if let (Some(hint), Some(limiter)) = (retry_after, guards.limiter) {
            limiter.hinted(hint);
        }
    }

    /// A hedged round is about to start: the call's key is made now, as
    /// its attempts will read it through a shared borrow; `true` for the
    /// call's first round.
    pub(crate) fn start_round(&mut self) -> bool {
        if self.key == 0 {
            self.key = CallKey::next_number();
        }
        self.attempts == 1
    }

    /// The span of the `k`-th attempt of a hedged round (see
    /// `round_attempt`).
    pub(crate) fn round_span(&self, k: u32) -> AttemptSpan {
        let kind = if k == 0 { Kind::Attempt } else { Kind::Hedge };
        self.spans.attempt_span(self.round_number(k), kind)
    }

    /// A hedged round settled on the attempt of `span`: the call's events
    /// about it (the retry) are reported in it.
    pub(crate) fn settle_round(&mut self, span: AttemptSpan) {
        self.spans.settle_on(span);
    }

    /// Runs `f` in the call's span: what a hedged round reports of the
    /// call (a hedge sent or refused).
    pub(crate) fn in_call_span<R>(&self, f: impl FnOnce() -> R) -> R {
        self.spans.in_call(f)
    }

    /// The `k`-th attempt of a hedged round (0 for its first, which is not
    /// a hedge), numbered after every attempt the call started before.
    pub(crate) fn round_attempt(&self, k: u32) -> Attempt {
        let attempt = Attempt::new(self.round_number(k), self.deadline_at(), self.key);
        if k == 0 { attempt } else { attempt.hedged() }
    }

    /// The number of the `k`-th attempt of a hedged round (see
    /// `round_attempt`).
    pub(crate) fn round_number(&self, k: u32) -> u32 {
        self.attempts.saturating_add(self.hedges).saturating_add(k)
    }

    /// Where the call reports (its events, metrics and stats).
    pub(crate) fn site(&self) -> &'static Site {
        &self.settings.site
    }

    /// A hedged round sent `sent` hedges.
    pub(crate) fn count_hedges(&mut self, sent: u32) {
        self.hedges = self.hedges.saturating_add(sent);
    }

    /// Whether the call's deadline has passed at `now`.
    pub(crate) fn past_deadline(&self, now: Instant) -> bool {
        self.deadline_at().is_some_and(|deadline| now >= deadline)
    }

    /// The budget is asked last, so a retry that would not happen anyway
    /// costs no token.
    fn decide(
        &mut self,
        guards: Guards<'_>,
        retryable: bool,
        retry_after: Option<Duration>,
    ) -> Decision {
        if !retryable {
            return Decision::GiveUp(GiveUp::NotRetryable);
        }
        let deadline = self.deadline_at();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Decision::GiveUp(GiveUp::Deadline);
        }
        if self.attempts >= self.settings.max_attempts {
            return Decision::GiveUp(GiveUp::Exhausted);
        }
        let delay = match retry_after {
            // A hostile or confused server must not park its clients: a
            // pause longer than `max_delay` is an answer, not a delay.
            Some(hint) if hint > self.settings.schedule.cap() => {
                return Decision::GiveUp(GiveUp::RetryAfter);
            }
            Some(hint) => hint,
            None => self
                .settings
                .schedule
                .delay(self.attempts, &mut self.decorrelated_prev),
        };
        if deadline.is_some_and(|d| Instant::now() + delay >= d) {
            return Decision::GiveUp(GiveUp::Deadline);
        }
        if guards.budget.is_some_and(|b| !b.withdraw()) {
            return Decision::GiveUp(GiveUp::Budget);
        }
        Decision::Retry(delay)
    }

    /// The event an `on_retry` hook sees for the attempt that just failed.
    pub fn event<'e, E>(&self, error: &'e E, delay: Duration) -> RetryEvent<'e, E> {
        RetryEvent {
            name: self.settings.site.name,
            attempt: self.attempts,
            error,
            delay,
            elapsed: self.elapsed(),
        }
    }

    /// Counts the next attempt and returns the sleep before it (async).
    ///
    /// The future borrows nothing and holds only the sleep: it lives in
    /// every call's future, beside the call itself. (Counting before the
    /// sleep ends is safe: a call whose sleep is dropped is dropped too.)
    pub fn backoff(&mut self, delay: Duration) -> impl Future<Output = ()> + use<> {
        let sleep = if testing::delays_skipped() {
            self.skipped = self.skipped.saturating_add(nanos(delay));
            None
        } else {
            Some(delay).filter(|delay| !delay.is_zero())
        };
        self.spans.end_attempt();
        self.attempts += 1;
        async move {
            if let Some(delay) = sleep {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// Sleeps the thread before the next attempt (sync), then counts it.
    pub fn backoff_blocking(&mut self, delay: Duration) {
        self.spans.end_attempt();
        if testing::delays_skipped() {
            self.skipped = self.skipped.saturating_add(nanos(delay));
        } else if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.attempts += 1;
    }
}

/// A duration in whole nanoseconds, saturating (at 584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
