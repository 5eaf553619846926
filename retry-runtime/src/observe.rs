//! Where calls report what happened: `tracing` events, `metrics` series and
//! in-process `stats`, each behind its cargo feature.
//!
//! Every hook here is an `#[inline]` function whose body is compiled only
//! with its feature; with all features off they are empty, so the happy
//! path of an annotated function does no extra work (no atomic, no clock
//! read) and the expansion does not depend on the features at all.

use std::fmt;
use std::time::Duration;

use crate::circuit_breaker::CircuitState;

/// Why a call stopped retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The error is not one the classification retries.
    NotRetryable,
    /// `max_attempts` attempts were made.
    Exhausted,
    /// The next sleep (or the attempt) would end after the deadline.
    Deadline,
    /// The retry budget is empty.
    Budget,
}

impl GiveUp {
    /// The `reason` field of give-up events and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUp::NotRetryable => "not_retryable",
            GiveUp::Exhausted => "exhausted",
            GiveUp::Deadline => "deadline",
            GiveUp::Budget => "budget",
        }
    }
}

/// Which protection refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `concurrency` permit within `max_wait`.
    Bulkhead,
    /// No `rate_limit` token within `max_wait`.
    RateLimit,
    /// The circuit breaker is open.
    CircuitOpen,
}

impl Rejection {
    /// The `kind` field of rejection events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::Bulkhead => "bulkhead",
            Rejection::RateLimit => "rate_limit",
            Rejection::CircuitOpen => "circuit_open",
        }
    }
}

/// One annotated function: its name and, with `stats`, its counters.
#[derive(Debug)]
pub(crate) struct Site {
    pub(crate) name: &'static str,
    #[cfg(feature = "stats")]
    pub(crate) stats: crate::stats::Counters,
}

impl Site {
    pub(crate) const fn new(name: &'static str) -> Self {
        Site {
            name,
            #[cfg(feature = "stats")]
            stats: crate::stats::Counters::new(),
        }
    }
}

/// Whether reporting needs the call's start time (for `elapsed` in events
/// and the duration histogram) even when the configuration does not.
pub(crate) const NEEDS_START: bool = cfg!(any(feature = "tracing", feature = "metrics"));

/// A call succeeded after `attempts` attempts.
#[inline]
#[allow(unused_variables)]
pub(crate) fn succeeded(site: &'static Site, attempts: u32, elapsed: Duration) {
    #[cfg(feature = "stats")]
    site.stats.succeeded(site, attempts);
    #[cfg(feature = "metrics")]
    metrics_impl::finished(site.name, "success", attempts, elapsed);
}

/// A retry is scheduled after attempt `attempt` failed with `error`.
#[inline]
#[allow(unused_variables)]
pub(crate) fn retrying(
    site: &'static Site,
    attempt: u32,
    error: &dyn fmt::Display,
    delay: Duration,
    elapsed: Duration,
) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "steadfast",
        site = site.name,
        attempt,
        error = %error,
        delay_ms = delay.as_millis() as u64,
        elapsed_ms = elapsed.as_millis() as u64,
        "retrying after a failed attempt",
    );
}

/// A call gave up after `attempts` attempts, returning `error`.
#[inline]
#[allow(unused_variables)]
pub(crate) fn gave_up(
    site: &'static Site,
    reason: GiveUp,
    attempts: u32,
    error: &dyn fmt::Display,
    elapsed: Duration,
) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "steadfast",
        site = site.name,
        reason = reason.as_str(),
        attempts,
        error = %error,
        elapsed_ms = elapsed.as_millis() as u64,
        "giving up",
    );
    #[cfg(feature = "stats")]
    site.stats.failed(site, attempts);
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("steadfast_giveups_total", "site" => site.name, "reason" => reason.as_str())
            .increment(1);
        metrics_impl::finished(site.name, "failure", attempts, elapsed);
    }
}

/// A protection refused attempt `attempt`; the call ends.
#[inline]
#[allow(unused_variables)]
pub(crate) fn rejected(site: &'static Site, kind: Rejection, attempt: u32, elapsed: Duration) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "steadfast",
        site = site.name,
        kind = kind.as_str(),
        attempt,
        "attempt rejected",
    );
    #[cfg(feature = "stats")]
    site.stats.rejected(site, attempt);
    #[cfg(feature = "metrics")]
    metrics_impl::finished(site.name, "rejected", attempt.saturating_sub(1), elapsed);
}

/// A circuit breaker changed state.
#[inline]
#[allow(unused_variables)]
pub(crate) fn breaker_transition(name: &'static str, from: CircuitState, to: CircuitState) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "steadfast",
        breaker = name,
        from = ?from,
        to = ?to,
        "circuit breaker changed state",
    );
    #[cfg(feature = "metrics")]
    metrics::gauge!("steadfast_circuit_state", "site" => name).set(match to {
        CircuitState::Closed => 0.0,
        CircuitState::HalfOpen => 1.0,
        CircuitState::Open => 2.0,
    });
}

#[cfg(feature = "metrics")]
mod metrics_impl {
    use std::time::Duration;

    /// The series every finished call updates.
    pub(super) fn finished(
        site: &'static str,
        outcome: &'static str,
        attempts: u32,
        elapsed: Duration,
    ) {
        metrics::counter!("steadfast_calls_total", "site" => site, "outcome" => outcome)
            .increment(1);
        metrics::counter!("steadfast_attempts_total", "site" => site)
            .increment(u64::from(attempts));
        metrics::counter!("steadfast_retries_total", "site" => site)
            .increment(u64::from(attempts.saturating_sub(1)));
        metrics::histogram!("steadfast_call_duration_seconds", "site" => site)
            .record(elapsed.as_secs_f64());
    }
}

/// How an expansion shows the error in events: through `Display` when the
/// error type has it, else `Debug`, else not at all. Chosen at the call
/// site by method resolution (the most-referenced impl that applies wins),
/// so it costs nothing unless an event is emitted.
#[derive(Debug)]
pub struct ErrorRef<'a, E>(pub &'a E);

/// An error as events show it.
#[derive(Clone, Copy)]
pub enum Description<'a> {
    /// The error's `Display`.
    Display(&'a dyn fmt::Display),
    /// The error's `Debug`, for types without `Display`.
    Debug(&'a dyn fmt::Debug),
    /// Neither is implemented.
    Opaque,
}

impl fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Description::Display(error) => error.fmt(f),
            Description::Debug(error) => error.fmt(f),
            Description::Opaque => f.write_str("<error without Display or Debug>"),
        }
    }
}

/// `Display` errors (first choice).
pub trait DescribeDisplay<'a> {
    /// How events show the error.
    fn describe(&self) -> Description<'a>;
}

impl<'a, E: fmt::Display> DescribeDisplay<'a> for &&ErrorRef<'a, E> {
    fn describe(&self) -> Description<'a> {
        Description::Display(self.0)
    }
}

/// `Debug` errors (second choice).
pub trait DescribeDebug<'a> {
    /// How events show the error.
    fn describe(&self) -> Description<'a>;
}

impl<'a, E: fmt::Debug> DescribeDebug<'a> for &ErrorRef<'a, E> {
    fn describe(&self) -> Description<'a> {
        Description::Debug(self.0)
    }
}

/// Any other error.
pub trait DescribeOpaque<'a> {
    /// How events show the error.
    fn describe(&self) -> Description<'a>;
}

impl<'a, E> DescribeOpaque<'a> for ErrorRef<'a, E> {
    fn describe(&self) -> Description<'a> {
        Description::Opaque
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The references are the point: they select the impl, as in expansions.
    #[allow(clippy::needless_borrow)]
    fn display_is_preferred_then_debug_then_nothing() {
        #[derive(Debug)]
        struct OnlyDebug;
        struct Neither;
        let io = std::io::Error::other("disk on fire");
        assert_eq!((&&&ErrorRef(&io)).describe().to_string(), "disk on fire");
        assert_eq!(
            (&&&ErrorRef(&OnlyDebug)).describe().to_string(),
            "OnlyDebug"
        );
        assert_eq!(
            (&&&ErrorRef(&Neither)).describe().to_string(),
            "<error without Display or Debug>"
        );
    }

    #[test]
    #[cfg(not(feature = "stats"))]
    fn without_stats_a_site_is_only_its_name() {
        assert_eq!(size_of::<Site>(), size_of::<&'static str>());
    }
}
