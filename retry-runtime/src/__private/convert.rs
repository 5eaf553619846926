//! `E::from(..)` of the library's own errors. Each goes through a trait of
//! its own (rather than a bare `From` bound) so that a missing impl is
//! reported with a message naming the key that needs it, at that key.

use crate::error::{CircuitOpen, Elapsed, Rejected};

/// Converts the library's timeout into the function's error type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot represent a timeout, which `timeout` and `deadline` produce",
    label = "`{Self}` needs `From<Elapsed>` for this key",
    note = "if `{Self}` is your own type, add `impl From<Elapsed> for {Self}` (e.g. a `Timeout(Elapsed)` variant); if it comes from another crate, return an error of your own that wraps it (the orphan rule forbids the impl); or remove `timeout` and `deadline`"
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

/// `E::from(Elapsed)`: an attempt ran out of time, or a wait reached the
/// deadline.
pub fn elapsed<E: FromElapsed>() -> E {
    E::from_elapsed(Elapsed::new())
}

/// Converts an open breaker's refusal into the function's error type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot represent an open circuit breaker, which `circuit_breaker` produces",
    label = "`{Self}` needs `From<CircuitOpen>` for this key",
    note = "if `{Self}` is your own type, add `impl From<CircuitOpen> for {Self}` (e.g. an `Unavailable(CircuitOpen)` variant); if it comes from another crate, return an error of your own that wraps it (the orphan rule forbids the impl); or remove `circuit_breaker`"
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
    note = "if `{Self}` is your own type, add `impl From<Rejected> for {Self}` (e.g. an `Overloaded(Rejected)` variant); if it comes from another crate, return an error of your own that wraps it (the orphan rule forbids the impl); or remove `max_wait`"
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
