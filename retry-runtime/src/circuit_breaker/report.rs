//! How a breaker reports its transitions to `tracing` and `metrics`.
//!
//! It lives with the breaker, not in the crate's reporting module, so that
//! reporting depends on the primitives and never the other way round. With
//! both features off the function is empty and inlined away.

use super::state::CircuitState;

/// Breaker `name` moved from `from` to `to`: a `WARN` event on target
/// `steadfast` with fields `breaker`, `from`, `to` (feature `tracing`), and
/// the gauge `steadfast_circuit_state{site}` set to 0 (closed), 1
/// (half-open) or 2 (open) (feature `metrics`).
#[inline]
#[allow(unused_variables)]
pub(super) fn transition(name: &'static str, from: CircuitState, to: CircuitState) {
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

/// Breaker `name`, throttling, refused a request: the counter
/// `steadfast_circuit_throttled_total{site}` (feature `metrics`) and a
/// `DEBUG` event on target `steadfast` (feature `tracing`). Refusals are
/// counted in `rejected_count` too.
#[inline]
#[allow(unused_variables)]
pub(super) fn throttled(name: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "steadfast",
        breaker = name,
        "adaptive throttling refused a request",
    );
    #[cfg(feature = "metrics")]
    metrics::counter!("steadfast_circuit_throttled_total", "site" => name).increment(1);
}
