//! The contract between `#[resilient]` expansions and this runtime. Not
//! public API: `retry-macros` is pinned to this exact crate version, and
//! every expansion checks [`CONTRACT`] first, so a mismatched pair fails at
//! compile time with a message that says so.
//!
//! An expansion names only what is listed here (`docs/design.md`, "The
//! macro–runtime contract", shows an expansion in full):
//!
//! | name | what the expansion does with it |
//! |---|---|
//! | [`CONTRACT`] | `const _: () = assert!(CONTRACT == N, "...")` |
//! | [`Settings`], [`BackoffKind`], [`Jitter`] | `static SETTINGS: Settings = Settings::new(name)` + one builder per key the user set |
//! | [`RetryBudget`], [`CircuitBreaker`], [`RateLimiter`], [`Bulkhead`], [`AdaptiveLimit`] | the inline `static`s, built with their public `const` builders |
//! | [`Keyed`] | `circuit_breaker(key = ..)`: a `static Keyed<String, CircuitBreaker>`, and `get` once per call |
//! | [`Guards`] | the call's budget, breaker, limiter and concurrency limit (`concurrency` takes any `ConcurrencyLimit`); its setters type-check shared expressions; built once per call when one of them computes something (`match Guards::new()... { guards => .. }`), else at each step |
//! | [`Call`] | `start`, `begin_attempt` (first in each unhedged attempt), `try_admit`, `admit`/`admit_within`, `admit_blocking`, `attempt`, `instrument` (around an async body's future) / `in_attempt` (around a plain body's closure), `with_time_limit`, `succeeded`, `after_error`, `event`, `backoff`/`backoff_blocking` |
//! | [`Admission`], [`Admitted`], [`Refusal`], [`Decision`] | what `admit` and `after_error` answer; `Admitted::breaker_judges` takes `breaker_if`'s verdict |
//! | [`Conversions`] | how a refusal becomes `E`: built where admission refuses, with one conversion per key that can cause one, and asked to `convert` the refusal the runtime returned |
//! | [`Attempt`] | the type of the `attempt` key's binding |
//! | [`elapsed`], [`circuit_open`], [`rejected`] | `E::from(..)` of the library's own errors, with a message naming the key when `E` lacks the impl: called where an attempt times out, and handed to [`Conversions`] at the key that causes the refusal |
//! | [`retry_if`], [`breaker_if`], [`retry_after`], [`on_retry`], [`fallback`], [`on_retry_async`], [`fallback_async`] | the user's expressions, type-checked at their own tokens (the `_async` ones for async closures, awaited in place) |
//! | [`describe`] | how events show the error (`Display`, else `Debug`, else nothing) |
//! | [`Hedge`], [`hedged_round`], [`HedgeAttempt`], [`HedgedRound`] | `hedge(..)`: a `static Hedge` built with its public `const` builders; each round is `hedged_round(&HEDGE, &mut call, guards, (admits, bounds_waits), \|a\| async { let attempt = a.get(); body }, conversions, \|error\| (retryable, retry_after, breaker_if))`, whose `HedgedRound` is settled as one unhedged attempt |
//!
//! Everything else (the decisions, the reporting, the defaults) is the
//! runtime's own business, behind [`Call`].

mod convert;
mod hedge;
mod hooks;

/// The version of this contract. An expansion asserts it equals the one
/// its `retry-macros` was written against; bump it whenever an expansion
/// of the previous version would no longer compile or behave the same.
///
/// 3: refusals are converted by [`Conversions`]; a wait the deadline cuts
/// short is refused as `Elapsed` even when it is refused before it starts.
///
/// 4: `Guards::concurrency` takes any `ConcurrencyLimit` (an
/// `AdaptiveLimit` too), and an expansion with `concurrency` flags a
/// timed-out attempt (`Admitted::timed_out`) for the limit as it does for
/// a breaker: an adaptive limit counts it as a drop.
///
/// 5: each unhedged attempt starts with `Call::begin_attempt` and runs its
/// body through `Call::instrument` (async) or `Call::in_attempt` (plain),
/// so that with `tracing` it has a span of its own; an expansion of 4 would
/// report its attempts' events in the call's span, with no attempt spans.
///
/// 6: a hedged expansion's settings call `Settings::hedged`, so that its
/// round dates the call and its first attempt by the call's start (read
/// once); an expansion of 6 does not compile against a runtime of 5.
pub const CONTRACT: u32 = 6;

pub use crate::adaptive::AdaptiveLimit;
pub use crate::budget::RetryBudget;
pub use crate::bulkhead::Bulkhead;
pub use crate::circuit_breaker::CircuitBreaker;
pub use crate::engine::{
    Admission, Admitted, Attempt, Call, Conversions, Decision, GiveUp, Guards, Refusal, Settings,
};
pub use crate::hedge::Hedge;
pub use crate::hedge::round::Round as HedgedRound;
pub use crate::jitter::Jitter;
pub use crate::keyed::Keyed;
pub use crate::rate_limiter::RateLimiter;
pub use retry_rules::BackoffKind;

pub use convert::{FromCircuitOpen, FromElapsed, FromRejected, circuit_open, elapsed, rejected};
pub use hedge::{HedgeAttempt, hedged_round};
pub use hooks::{
    breaker_if, fallback, fallback_async, on_retry, on_retry_async, retry_after, retry_if,
};

/// How events show an attempt's error; used as
/// `{ use describe::*; (&&&ErrorRef(&error)).describe() }`.
pub mod describe {
    pub use crate::engine::describe::{
        DescribeDebug, DescribeDisplay, DescribeOpaque, Description, ErrorRef,
    };
}
