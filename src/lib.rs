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
//! do after each failed attempt. Two more doors reach the same policy with
//! the same keys and checks: [`retry!`] retries a block at the call site, and
//! [`Policy`] is the policy as a value, in a `static` or built at run time:
//!
//! ```
//! use std::time::Duration;
//! use steadfast::{Policy, retry};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mut calls = 0;
//! let n = retry!(max_attempts = 3, base_delay = "10ms"; async {
//!     calls += 1;
//!     if calls < 2 { Err(std::io::Error::other("busy")) } else { Ok(calls) }
//! }).await;
//! assert_eq!(n.unwrap(), 2);
//!
//! static POLICY: Policy<std::io::Error> = Policy::new().max_attempts(3);
//! let n = POLICY.retry(|attempt| async move { Ok::<_, std::io::Error>(attempt.number()) }).await;
//! assert_eq!(n.unwrap(), 1);
//! # }
//! ```
//!
//! With the `serde` feature, `PolicyConfig` and `Policy::from_config` build
//! a `Policy` from a configuration file (TOML, JSON, any serde format),
//! checked by the attribute's rules and refused in its words.
//!
//! The runtime is usable on its own:
//!
//! - [`Backoff`] and [`Jitter`]: delay schedules, an `Iterator<Item =
//!   Duration>` you can preview and seed;
//! - [`RetryBudget`]: retries as a share of calls, so a failing dependency
//!   is not hammered;
//! - [`Elapsed`], [`CircuitOpen`], [`Rejected`], [`InsufficientCapacity`]:
//!   the errors the library produces, each convertible into
//!   `std::io::Error`; [`NotUntil`]: when a rate limiter's token will come;
//! - [`RetryEvent`]: what an `on_retry` hook sees;
//! - [`guide`]: walkthroughs, such as coming from Python asyncio;
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
//! Tests should not wait for backoff, and should see exactly what a user
//! would.
//!
//! - `async fn`: run the test on tokio's paused clock. Backoff sleeps,
//!   timeouts and deadlines then advance virtual time at once, and the
//!   elapsed time is exact:
//!
//! ```
//! use steadfast::resilient;
//! use std::time::Duration;
//!
//! #[resilient(max_attempts = 3, base_delay = "1s", jitter = "none")]
//! async fn flaky(calls: &mut u32) -> Result<u32, String> {
//!     *calls += 1;
//!     if *calls < 3 { Err("busy".into()) } else { Ok(*calls) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! // in a test: #[tokio::test(start_paused = true)]
//! let start = tokio::time::Instant::now();
//! let mut calls = 0;
//! assert_eq!(flaky(&mut calls).await, Ok(3));
//! assert_eq!(start.elapsed(), Duration::from_secs(3)); // slept 1 s, then 2 s
//! # }
//! ```
//!
//! - plain `fn`: hold a [`testing::no_delays`] guard. Sleeps are skipped on
//!   this thread; attempts, budgets and deadlines count as if they had
//!   passed, and hooks still see the delays:
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
//!
//! - exact jittered schedules: call [`testing::seed_jitter`] first; the
//!   same seed gives the same delays on this thread.
//!
//! # Features
//!
//! All are off by default, and with none of them an annotated function's
//! happy path does nothing for observability: no atomic, no clock read.
//!
//! - `tracing`: events on the `steadfast` target. A retry is scheduled
//!   (`WARN`: `site`, `attempt`, `error`, `delay_ms`, `elapsed_ms`); a call
//!   gives up (`WARN`: `site`, `reason` = `exhausted` | `deadline` | `budget`
//!   | `not_retryable`, `attempts`, `error`, `elapsed_ms`); a breaker changes
//!   state (`WARN`: `breaker`, `from`, `to`); an attempt is rejected
//!   (`DEBUG`: `site`, `kind` = `bulkhead` | `rate_limit` | `circuit_open`);
//!   a hedge is sent, wins (answers first) or is refused by the budget
//!   (`DEBUG`: `site`, `attempt`, the hedge's number among the call's
//!   attempts). No event on a first-attempt success. `error` is the error's `Display`,
//!   or its `Debug` when it has no `Display`.
//!
//!   And spans, at every door (the attribute, `retry!`, [`Policy`] and the
//!   tower layer), all `DEBUG` on the `steadfast` target: one
//!   `steadfast.call` per call (field `site`), in the span current when the
//!   call starts, and in it one `steadfast.attempt` per attempt (fields
//!   `attempt`, the attempt's [`number`](Attempt::number) counting hedges,
//!   and `hedge`, [`is_hedge`](Attempt::is_hedge); through the tower layer
//!   with `Http`, also OpenTelemetry's `http.request.resend_count`,
//!   `attempt - 1`, absent on the first). The body runs in its attempt's
//!   span (a hedge in its own, beside the attempt it hedges), and the
//!   events above are in the span they are about: a retry, a rejection, a
//!   breaker's transition and a hedge's win in the attempt's; a give-up
//!   and a hedge sent or refused in the call's. Under
//!   `#[tracing::instrument]` written below `#[resilient]`, instrument's
//!   span is the call's parent; written above, it is made inside each
//!   attempt's span. A subscriber that keeps `INFO` (as production filters
//!   do) makes no span: the call pays one level check. Turn them on with a
//!   filter such as `steadfast=debug`.
//! - `metrics`, through the `metrics` facade: counters
//!   `steadfast_calls_total{site, outcome}` (`success` | `failure` |
//!   `rejected`), `steadfast_attempts_total{site}`,
//!   `steadfast_retries_total{site}`, `steadfast_giveups_total{site, reason}`,
//!   `steadfast_hedges_total{site, outcome}` (`sent` | `won` | `refused`; a
//!   hedged call counts one attempt per round, its hedges here);
//!   histogram `steadfast_call_duration_seconds{site}`; gauge
//!   `steadfast_circuit_state{site}` (0 closed, 1 half-open, 2 open), where
//!   `site` is the breaker's [`name`](CircuitBreaker::name) (an inline
//!   breaker is named after its function).
//! - `stats`: `steadfast::stats::snapshot()` lists every annotated function
//!   that has finished a call, with its calls, successes, failures,
//!   attempts, retries, rejections, hedges sent, won and refused, and how
//!   many calls succeeded on each attempt; `examples/stats.rs` prints them as a table.
//!
//! `site` is the function's `name` key, or `module_path::fn_name`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use retry_macros::{resilient, retry};
pub use retry_runtime::*;

pub mod guide;

/// What `#[resilient]` expansions call; not public API.
#[doc(hidden)]
pub mod __private {
    pub use retry_runtime::__private::*;
}
