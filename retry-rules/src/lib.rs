//! The rules a steadfast policy's values obey, and the words that explain a
//! broken one.
//!
//! Two doors check a policy's values: `#[resilient]` and `retry!` at
//! compile time (the `retry-macros` crate spans each message on the
//! offending token), and `Policy::from_config` at run time (the
//! `retry-runtime` crate, feature `serde`, names the key). Both call these
//! functions, so a value is accepted or refused by one rule, in the same
//! words, wherever it is written. Every function returns the message as a
//! `String`; where it goes is the door's business.
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
mod names;
mod rules;

pub use names::{BackoffKind, JitterKind, did_you_mean, one_of, quoted_list, unknown_key};
pub use rules::{
    at_least_one, base_delay_within_deadline, breaker_outlasts_a_call, budget_off, delays_in_order,
    duration, jitter_fits, multiplier_fits, positive_duration, timeout_within_deadline,
};
