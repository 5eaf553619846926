//! Jitter: spreading retries so clients that failed together do not retry
//! together.

// rustdoc shows these lines above the type's own documentation.
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
///
/// Defined in `retry-rules` with its names, so that the attribute, a
/// configuration file and this runtime read and name the same values.
#[doc(inline)]
pub use retry_rules::Jitter;
