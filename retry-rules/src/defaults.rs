//! The attribute's defaults, for the rules that compare a key with one not
//! written (`base_delay` with the default `max_delay`, a breaker's
//! `failure_threshold` with the default `max_attempts`). Only those: a
//! default no rule compares is the runtime's alone. The runtime's
//! constructors hold the same values; a test in each door checks that
//! every one of them agrees (`retry-macros`' validate tests, and
//! `retry-runtime`'s `policy::config` tests).

use std::time::Duration;

/// Attempts in total, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry's delay before jitter.
pub const BASE_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(20);
/// The consecutive failures that open an inline `circuit_breaker`.
pub const FAILURE_THRESHOLD: u32 = 5;
