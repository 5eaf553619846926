//! Jitter: spreading retries so clients that failed together do not retry
//! together.

/// How a backoff delay `d` (already capped at `max_delay`) is randomised.
///
/// Jitter never pushes a delay above the cap, and a delay of zero stays zero
/// (nothing is drawn for it).
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{Backoff, Jitter};
///
/// let schedule = Backoff::exponential(Duration::from_millis(100))
///     .jitter(Jitter::Equal)
///     .with_seed(1);
/// for (n, delay) in schedule.take(5).enumerate() {
///     let d = Duration::from_millis(100) * 2u32.pow(n as u32);
///     assert!(delay >= d / 2 && delay <= d);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    /// The delay as computed.
    None,
    /// `U(0, d)`: the AWS "full jitter"; the fewest total calls under contention.
    #[default]
    Full,
    /// `d/2 + U(0, d/2)`: never retries sooner than half the delay.
    Equal,
    /// `min(cap, U(base, prev * 3))`, with `prev` starting at the base delay
    /// and carried from retry to retry (exponential backoff only).
    ///
    /// The growth comes from `prev`, not from the strategy's delay `d`, which
    /// is why the attribute accepts it only with exponential backoff.
    Decorrelated,
    /// `d * U(1 - f, 1 + f)` for `f` in `(0, 1]`, clamped to the cap.
    ///
    /// An `f` above 1 is taken as 1; zero, negative or NaN as no spread.
    Proportional(f64),
}
