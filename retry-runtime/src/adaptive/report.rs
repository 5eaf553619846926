//! How an adaptive limit reports its updates to `tracing` and `metrics`.
//!
//! It lives with the limit, not in the crate's reporting module, so that
//! reporting depends on the primitives and never the other way round (as
//! the breaker's `report.rs`). Reports are made once per update (every
//! `interval`), never per call; with both features off the functions are
//! empty and inlined away.

/// What one update saw and did.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(
    not(feature = "tracing"),
    allow(
        dead_code,
        reason = "all read only by tracing's event; metrics reads some"
    )
)]
pub(super) struct Update {
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) in_flight: u32,
    pub(super) calls: u64,
    pub(super) dropped: u64,
    /// The interval's quantile latency in nanoseconds; `None` when it fell
    /// among dropped calls.
    pub(super) latency: Option<u64>,
    pub(super) min_rtt: u64,
}

/// An update of limit `name`: the gauges `steadfast_adaptive_limit{site}`
/// and `steadfast_adaptive_in_flight{site}`, the counter
/// `steadfast_adaptive_samples_total{site, outcome}` (`success`,
/// `dropped`) (feature `metrics`), and a `DEBUG` event on target
/// `steadfast` when the limit moved (feature `tracing`).
#[inline]
#[allow(unused_variables)]
pub(super) fn updated(name: &'static str, update: Update) {
    #[cfg(feature = "tracing")]
    if update.from != update.to {
        tracing::debug!(
            target: "steadfast",
            limiter = name,
            from = update.from,
            to = update.to,
            in_flight = update.in_flight,
            samples = update.calls,
            dropped = update.dropped,
            latency_us = update.latency.map(|n| n / 1_000),
            min_rtt_us = update.min_rtt / 1_000,
            "adaptive limit changed",
        );
    }
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("steadfast_adaptive_limit", "site" => name).set(f64::from(update.to));
        metrics::gauge!("steadfast_adaptive_in_flight", "site" => name)
            .set(f64::from(update.in_flight));
        metrics::counter!("steadfast_adaptive_samples_total", "site" => name, "outcome" => "success")
            .increment(update.calls - update.dropped);
        metrics::counter!("steadfast_adaptive_samples_total", "site" => name, "outcome" => "dropped")
            .increment(update.dropped);
    }
}

/// Limit `name` starts measuring its no-load latency (`measuring`), or has
/// measured it as `min_rtt` nanoseconds: a `DEBUG` event (feature
/// `tracing`) and the limit's gauge (feature `metrics`).
#[inline]
#[allow(unused_variables)]
pub(super) fn measuring(name: &'static str, measuring: bool, limit: u32, min_rtt: u64) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "steadfast",
        limiter = name,
        measuring,
        limit,
        min_rtt_us = min_rtt / 1_000,
        "adaptive limit measuring its no-load latency",
    );
    #[cfg(feature = "metrics")]
    metrics::gauge!("steadfast_adaptive_limit", "site" => name).set(f64::from(limit));
}
