//! Temporary: breaker transitions, until the breaker reports its own.

use crate::circuit_breaker::CircuitState;

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
