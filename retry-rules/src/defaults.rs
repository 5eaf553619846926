//! The attribute's defaults for the keys that are values: the one place
//! they are written. The runtime builds its defaults from these
//! (`Settings::new`, `Backoff::new`, `Jitter::default`), and the rules that
//! compare a key with one not written (`base_delay` with the default
//! `max_delay`, a breaker's `failure_threshold` with the default
//! `max_attempts`) read them. The one default the runtime still spells
//! itself is the breaker's threshold (`CircuitBreaker::new` is a `const`
//! builder of a primitive that does not depend on this crate); a test in
//! each door checks it against [`FAILURE_THRESHOLD`].

use std::time::Duration;

use crate::{BackoffKind, HedgeAfter, Jitter};

/// Attempts in total, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// How the delay grows.
pub const BACKOFF: BackoffKind = BackoffKind::Exponential;
/// The first retry's delay before jitter.
pub const BASE_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(20);
/// The growth factor of an exponential backoff.
pub const MULTIPLIER: f64 = 2.0;
/// How each delay is randomised.
pub const JITTER: Jitter = Jitter::Full;
/// The consecutive failures that open an inline `circuit_breaker`.
pub const FAILURE_THRESHOLD: u32 = 5;
/// How far back `adaptive_throttling` counts requests and accepts: the two
/// minutes of Google's SRE book. An inline throttling breaker whose
/// attempts may last longer (`timeout`, else `deadline`) takes that plus a
/// tenth instead: a window no longer than an attempt forgets its request
/// before its outcome counts (go-zero's second mistake).
pub const THROTTLING_WINDOW: Duration = Duration::from_secs(120);
/// When `hedge` sends a hedge: after the site's p95 latency, so that only
/// the slowest twentieth of attempts is hedged.
pub const HEDGE_AFTER: HedgeAfter = HedgeAfter::Quantile(0.95);
/// Hedges beside one attempt (Finagle's and tower's one).
pub const MAX_HEDGES: u32 = 1;
/// Hedges per call over a window: 5% more attempts than calls.
pub const MAX_EXTRA_LOAD: f64 = 0.05;
/// Not a default but a bound: the most hedges beside one attempt (Polly's
/// limit); more would multiply the load on a slow dependency.
pub const HEDGE_LIMIT: u32 = 10;
