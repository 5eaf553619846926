//! The rules a steadfast policy's values obey, and the words that explain a
//! broken one.
//!
//! Two doors check a policy's values: `#[resilient]` and `retry!` at
//! compile time (the `retry-macros` crate spans each message on the
//! offending token), and `Policy::from_config` at run time (the
//! `retry-runtime` crate, feature `serde`, names the key). Both fill the
//! same [`Values`] and call [`check`], so a value is accepted or refused by
//! one rule, in the same words, wherever it is written. Every rule returns
//! its message as a `String`; where it goes is the door's business.
//!
//! The core of the crate has no dependencies and is what the runtime
//! computes with: the defaults ([`defaults`]), the backoff and jitter kinds,
//! and what a policy's protections do to an attempt ([`Protections`]). The
//! rules and their messages (which parse durations and suggest names) are
//! the `check` feature, on by default.
//!
//! ```
//! use std::time::Duration;
//!
//! assert_eq!(retry_rules::duration("1m30s"), Ok(Duration::from_secs(90)));
//! assert_eq!(
//!     retry_rules::duration("250").unwrap_err(),
//!     "duration `\"250\"` has no unit; write e.g. `\"250ms\"` or `\"250s\"`",
//! );
//! ```

pub mod defaults;
mod kinds;
mod protections;

pub use kinds::{BackoffKind, HedgeAfter, Jitter};
pub use protections::{Protections, Refusal};

#[cfg(feature = "check")]
mod keys;
#[cfg(feature = "check")]
mod names;
#[cfg(feature = "check")]
mod rules;

#[cfg(feature = "check")]
pub use keys::{
    CONFIG, ConsecutiveBreaker, HEDGE_CONFIG, HedgeValues, IN_CODE, Problem, Values, Written,
    check, in_code,
};
#[cfg(feature = "check")]
pub use names::{did_you_mean, one_of, quoted_list, unknown_key};
#[cfg(feature = "check")]
pub use rules::{
    adaptive_throttling, at_least_one, base_delay_within_deadline, breaker_outlasts_a_call,
    budget_off, concurrency_text, delays_in_order, duration, hedge_after, hedge_count,
    hedge_extra_load, hedge_quantile, jitter_fits, multiplier_fits, positive_duration,
    throttling_alone, timeout_within_deadline,
};
