//! The runtime of [steadfast](https://docs.rs/steadfast): everything that runs
//! when a `#[resilient]` function is called, usable without the macro.
//!
//! - [`Backoff`] and [`Jitter`]: delay schedules, an `Iterator<Item = Duration>`
//!   you can preview and seed.
//! - [`RetryBudget`]: a token bucket that stops retry storms.
//! - [`CircuitBreaker`], [`Bulkhead`], [`RateLimiter`]: protection shared by
//!   the callers of one function, or across functions via a `static`;
//!   [`AdaptiveLimit`]: a bulkhead that learns its size.
//! - [`Elapsed`], [`CircuitOpen`], [`Rejected`], [`InsufficientCapacity`]:
//!   the errors the library itself produces, each convertible into
//!   `std::io::Error`; [`NotUntil`]: when a rate limiter's token will come.
//! - [`RetryEvent`]: what an `on_retry` hook sees.
//! - [`testing`]: seeded jitter and skipped sleeps for tests.
//!
//! Cargo features `tracing`, `metrics` and `stats` report what calls do;
//! the `steadfast` crate's docs list the events, series and statistics.
//!
//! Time is read through `tokio::time::Instant` and async sleeps go through
//! `tokio::time::sleep`, so `#[tokio::test(start_paused = true)]` drives every
//! delay and deadline deterministically.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod adaptive;
mod backoff;
mod budget;
mod bulkhead;
mod circuit_breaker;
mod concurrency;
mod engine;
mod error;
mod event;
mod hedge;
#[cfg(feature = "http")]
pub mod http;
mod jitter;
mod keyed;
mod policy;
mod rate_limiter;
#[cfg(feature = "redis")]
pub mod redis;
mod report;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod rng;
mod spans;
#[cfg(feature = "stats")]
pub mod stats;
mod sync;
pub mod testing;
#[cfg(feature = "tonic")]
pub mod tonic;
#[cfg(feature = "tower")]
pub mod tower;

#[doc(hidden)]
pub mod __private;

pub use adaptive::{AdaptiveLimit, AdaptivePermit};
pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use bulkhead::{Bulkhead, BulkheadPermit};
pub use circuit_breaker::{BreakerPermit, CircuitBreaker, CircuitState};
pub use concurrency::ConcurrencyLimit;
pub use engine::{Attempt, CallKey};
pub use error::{CircuitOpen, Elapsed, InsufficientCapacity, Rejected};
pub use event::RetryEvent;
pub use hedge::{Hedge, InvalidHedge};
pub use jitter::Jitter;
pub use keyed::Keyed;
pub use policy::Policy;
#[cfg(feature = "serde")]
pub use policy::{ConfigError, ConfigProblem, HedgeConfig, JitterConfig, PolicyConfig};
pub use rate_limiter::{NotUntil, Quota, RateLimiter};
