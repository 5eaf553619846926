//! Where calls report what happened: `tracing` events, `metrics` series and
//! in-process `stats`, each behind its cargo feature.
//!
//! Every hook here is an `#[inline]` function whose body is compiled only
//! with its feature; with all features off they are empty, so the happy
//! path of an annotated function does no extra work (no atomic, no clock
//! read) and the expansion does not depend on the features at all.

use std::fmt;
use std::time::Duration;

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
            stats: crate::stats::Counters::new(name),
        }
    }
}

/// Whether reporting needs the call's start time (for `elapsed` in events
/// and the duration histogram) even when the configuration does not.
pub(crate) const NEEDS_START: bool = cfg!(any(feature = "tracing", feature = "metrics"));

/// Whether a success is reported with its elapsed time (the `metrics`
/// duration histogram); `tracing` has no event for a success.
pub(crate) const SUCCESS_NEEDS_ELAPSED: bool = cfg!(feature = "metrics");

/// A call succeeded after `attempts` attempts.
#[inline]
#[allow(unused_variables)]
pub(crate) fn succeeded(site: &'static Site, attempts: u32, elapsed: Duration) {
    #[cfg(feature = "stats")]
    site.stats.succeeded(attempts);
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
    reason: &'static str,
    attempts: u32,
    error: &dyn fmt::Display,
    elapsed: Duration,
) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "steadfast",
        site = site.name,
        reason,
        attempts,
        error = %error,
        elapsed_ms = elapsed.as_millis() as u64,
        "giving up",
    );
    #[cfg(feature = "stats")]
    site.stats.failed(attempts);
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("steadfast_giveups_total", "site" => site.name, "reason" => reason)
            .increment(1);
        metrics_impl::finished(site.name, "failure", attempts, elapsed);
    }
}

/// A protection refused attempt `attempt`; the call ends.
#[inline]
#[allow(unused_variables)]
pub(crate) fn rejected(site: &'static Site, kind: &'static str, attempt: u32, elapsed: Duration) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "steadfast",
        site = site.name,
        kind,
        attempt,
        "attempt rejected",
    );
    #[cfg(feature = "stats")]
    site.stats.rejected(attempt);
    #[cfg(feature = "metrics")]
    metrics_impl::finished(site.name, "rejected", attempt.saturating_sub(1), elapsed);
}

/// What became of a hedge a call site's round wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hedged {
    /// Both budgets gave a token: the hedge was sent.
    Sent,
    /// The hedge's success was the call's (it answered first).
    Won,
    /// The hedge budget or the retry budget was empty: no hedge.
    Refused,
}

impl Hedged {
    /// The `outcome` label of `steadfast_hedges_total`.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Hedged::Sent => "sent",
            Hedged::Won => "won",
            Hedged::Refused => "refused",
        }
    }
}

/// A hedge numbered `attempt` (counting every attempt the call started)
/// was sent, won or refused. Only a hedged round's slow attempts get here.
#[inline]
#[allow(unused_variables)]
pub(crate) fn hedged(site: &Site, what: Hedged, attempt: u32) {
    #[cfg(feature = "tracing")]
    match what {
        Hedged::Sent => {
            tracing::debug!(target: "steadfast", site = site.name, attempt, "hedge sent");
        }
        Hedged::Won => {
            tracing::debug!(target: "steadfast", site = site.name, attempt, "hedge won");
        }
        Hedged::Refused => tracing::debug!(
            target: "steadfast",
            site = site.name,
            attempt,
            "hedge refused by the budget",
        ),
    }
    #[cfg(feature = "stats")]
    match what {
        Hedged::Sent => site.stats.hedge_spent(true),
        Hedged::Refused => site.stats.hedge_spent(false),
        Hedged::Won => site.stats.hedge_won(),
    }
    #[cfg(feature = "metrics")]
    metrics::counter!("steadfast_hedges_total", "site" => site.name, "outcome" => what.as_str())
        .increment(1);
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

#[cfg(all(test, not(feature = "stats")))]
mod tests {
    use super::*;

    #[test]
    fn without_stats_a_site_is_only_its_name() {
        assert_eq!(size_of::<Site>(), size_of::<&'static str>());
    }
}
