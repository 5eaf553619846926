//! What a call does after a failed attempt, and why it stops.

use std::time::Duration;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sleep this long, then make another attempt.
    Retry(Duration),
    /// Return the error (through `fallback`, if any).
    GiveUp(GiveUp),
}

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
    /// The server asked for a pause longer than `max_delay`.
    RetryAfter,
}

impl GiveUp {
    /// The `reason` field of give-up events and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUp::NotRetryable => "not_retryable",
            GiveUp::Exhausted => "exhausted",
            GiveUp::Deadline => "deadline",
            GiveUp::Budget => "budget",
            GiveUp::RetryAfter => "retry_after",
        }
    }
}
