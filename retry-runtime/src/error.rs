//! The errors the library itself produces.
//!
//! An annotated function keeps its own error type `E`; these reach the caller
//! as `E::from(Elapsed)`, `E::from(CircuitOpen)` or `E::from(Rejected)`, so `E`
//! needs the matching `From` impl only for the keys that can produce them.
//! Each converts into `std::io::Error`, so `io::Result` functions work as is.

use std::fmt;
use std::io;

/// An attempt ran past its `timeout`, or the call ran past its `deadline`.
///
/// Converts into [`io::Error`] with [`io::ErrorKind::TimedOut`].
///
/// ```
/// use retry_runtime::Elapsed;
///
/// let err = std::io::Error::from(Elapsed::new());
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Elapsed(());

impl Elapsed {
    /// Creates the error, e.g. to test an `impl From<Elapsed> for MyError`.
    pub const fn new() -> Self {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(err: Elapsed) -> Self {
        io::Error::new(io::ErrorKind::TimedOut, err)
    }
}

/// A circuit breaker was open and refused the attempt without running it.
///
/// Converts into [`io::Error`] with [`io::ErrorKind::Other`].
///
/// ```
/// use retry_runtime::CircuitOpen;
///
/// let err = std::io::Error::from(CircuitOpen::new());
/// assert_eq!(err.to_string(), "circuit breaker is open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CircuitOpen(());

impl CircuitOpen {
    /// Creates the error, e.g. to test an `impl From<CircuitOpen> for MyError`.
    pub const fn new() -> Self {
        CircuitOpen(())
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit breaker is open")
    }
}

impl std::error::Error for CircuitOpen {}

impl From<CircuitOpen> for io::Error {
    fn from(err: CircuitOpen) -> Self {
        io::Error::other(err)
    }
}

/// A concurrency permit or a rate-limit token was not available within
/// `max_wait`, so the attempt was refused without running.
///
/// Converts into [`io::Error`] with [`io::ErrorKind::WouldBlock`]: the caller
/// may try again later, as with a full non-blocking queue.
///
/// ```
/// use retry_runtime::Rejected;
///
/// let err = std::io::Error::from(Rejected::new());
/// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rejected(());

impl Rejected {
    /// Creates the error, e.g. to test an `impl From<Rejected> for MyError`.
    pub const fn new() -> Self {
        Rejected(())
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rejected: no permit or token within `max_wait`")
    }
}

impl std::error::Error for Rejected {}

impl From<Rejected> for io::Error {
    fn from(err: Rejected) -> Self {
        io::Error::new(io::ErrorKind::WouldBlock, err)
    }
}

/// A rate limiter was asked for more tokens at once than its burst: a
/// request that could never be admitted, however long it waited.
///
/// The weighted calls of [`RateLimiter`](crate::RateLimiter)
/// ([`acquire_n`](crate::RateLimiter::acquire_n),
/// [`check_n`](crate::RateLimiter::check_n), ...) return it at once, without
/// waiting and without taking anything, as governor's error of the same name
/// does. It carries the burst that was exceeded.
///
/// Converts into [`io::Error`] with [`io::ErrorKind::InvalidInput`]: trying
/// again will not help, unlike [`Rejected`].
///
/// ```
/// use retry_runtime::{InsufficientCapacity, RateLimiter};
///
/// let limiter = RateLimiter::per_second(10).burst(5);
/// let err = limiter.check_n(6).unwrap_err();
/// assert_eq!(err, InsufficientCapacity::new(5));
/// assert_eq!(err.burst(), 5);
/// assert_eq!(
///     std::io::Error::from(err).kind(),
///     std::io::ErrorKind::InvalidInput
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InsufficientCapacity {
    burst: u32,
}

impl InsufficientCapacity {
    /// Creates the error for a limiter whose burst is `burst`, e.g. to test an
    /// `impl From<InsufficientCapacity> for MyError`.
    pub const fn new(burst: u32) -> Self {
        InsufficientCapacity { burst }
    }

    /// The burst the request exceeded: the most tokens the limiter can ever
    /// give at once.
    pub const fn burst(&self) -> u32 {
        self.burst
    }
}

impl fmt::Display for InsufficientCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "insufficient capacity: more tokens requested than the rate limiter's burst of {}",
            self.burst
        )
    }
}

impl std::error::Error for InsufficientCapacity {}

impl From<InsufficientCapacity> for io::Error {
    fn from(err: InsufficientCapacity) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_says_what_happened() {
        assert_eq!(Elapsed::new().to_string(), "timed out");
        assert_eq!(CircuitOpen::new().to_string(), "circuit breaker is open");
        assert_eq!(
            Rejected::new().to_string(),
            "rejected: no permit or token within `max_wait`"
        );
        assert_eq!(
            io::Error::from(Rejected::new()).to_string(),
            Rejected::new().to_string()
        );
        assert_eq!(
            InsufficientCapacity::new(5).to_string(),
            "insufficient capacity: more tokens requested than the rate limiter's burst of 5"
        );
    }
}
