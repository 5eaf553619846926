//! What `on_retry` hooks see.

use std::time::Duration;

/// A retry about to happen: passed to the `on_retry` hook before the backoff
/// sleep.
///
/// ```
/// use retry_runtime::RetryEvent;
///
/// // With `#[resilient(on_retry = log_retry)]` this runs before each backoff sleep.
/// fn log_retry(event: &RetryEvent<'_, std::io::Error>) {
///     eprintln!(
///         "{}: attempt {} failed ({}); retrying in {:?} ({:?} since the call started)",
///         event.name(), event.attempt(), event.error(), event.delay(), event.elapsed(),
///     );
/// }
/// ```
#[derive(Debug)]
pub struct RetryEvent<'a, E> {
    pub(crate) name: &'static str,
    pub(crate) attempt: u32,
    pub(crate) error: &'a E,
    pub(crate) delay: Duration,
    pub(crate) elapsed: Duration,
}

impl<'a, E> RetryEvent<'a, E> {
    /// The attempt that just failed, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The error the attempt failed with.
    pub fn error(&self) -> &'a E {
        self.error
    }

    /// The delay chosen before the next attempt (after jitter, or the
    /// server's `retry_after`).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Time since the call started. Measured only when the configuration
    /// reads the clock anyway (`deadline` or `on_retry`).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The call site's name: the `name` key, or `module_path::fn_name`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}
