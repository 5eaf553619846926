//! Make a function resilient with one attribute.
//!
//! ```
//! use steadfast::{Elapsed, resilient};
//!
//! #[derive(Debug)]
//! enum FetchError { Io(std::io::Error), Timeout(Elapsed) }
//! impl From<Elapsed> for FetchError {
//!     fn from(e: Elapsed) -> Self { FetchError::Timeout(e) }
//! }
//!
//! #[resilient(max_attempts = 5, backoff = "exponential", jitter = "full",
//!             timeout = "2s", retry_on = [Io, Timeout])]
//! async fn fetch(url: &str) -> Result<String, FetchError> {
//!     Ok(format!("contents of {url}"))
//! }
//! ```
//!
//! [`resilient`] checks its configuration at compile time and expands the
//! function into a short retry loop that asks this crate's runtime what to
//! do after each failed attempt. The runtime is usable on its own:
//!
//! - [`Backoff`] and [`Jitter`]: delay schedules, an `Iterator<Item =
//!   Duration>` you can preview and seed;
//! - [`RetryBudget`]: retries as a share of calls, so a failing dependency
//!   is not hammered;
//! - [`Elapsed`], [`CircuitOpen`], [`Rejected`]: the errors the library
//!   produces, each convertible into `std::io::Error`;
//! - [`RetryEvent`]: what an `on_retry` hook sees;
//! - [`testing`]: seeded jitter and skipped sleeps for tests.
//!
//! # Defaults, and why
//!
//! Three attempts with exponential backoff from 100 ms, capped at 20 s, with
//! full jitter (the fewest total calls when many clients fail together), and
//! a retry budget per function (retries limited to 20% of calls plus 10 per
//! second), so that an outage does not turn into a retry storm.
//!
//! # Testing code that uses it
//!
//! Run async tests on tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`): backoff sleeps, timeouts and
//! deadlines advance virtual time. For plain functions hold a
//! [`testing::no_delays`] guard. Call [`testing::seed_jitter`] for exact
//! schedules.
//!
//! ```
//! use steadfast::{resilient, testing};
//!
//! #[resilient(max_attempts = 4, base_delay = "1s")]
//! fn flaky(calls: &mut u32) -> Result<u32, String> {
//!     *calls += 1;
//!     if *calls < 3 { Err("busy".into()) } else { Ok(*calls) }
//! }
//!
//! let _no_sleeping = testing::no_delays();
//! let mut calls = 0;
//! assert_eq!(flaky(&mut calls), Ok(3));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use retry_macros::resilient;
pub use retry_runtime::*;

/// What `#[resilient]` expansions call; not public API.
#[doc(hidden)]
pub mod __private {
    pub use retry_runtime::__private::*;
}
