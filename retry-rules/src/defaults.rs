//! The attribute's defaults, for the rules that compare a key with one not
//! written (`base_delay` with the default `max_delay`). The runtime's
//! constructors hold the same values; a test in each door checks they agree.

use std::time::Duration;

/// Attempts in total, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry's delay before jitter.
pub const BASE_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(20);
/// The growth of an exponential backoff.
pub const MULTIPLIER: f64 = 2.0;
/// The consecutive failures that open an inline `circuit_breaker`.
pub const FAILURE_THRESHOLD: u32 = 5;
