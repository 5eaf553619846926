//! The engine every door to a policy runs on: what one call of a resilient
//! operation does between its attempts.
//!
//! `#[resilient]` expansions keep the retry loop inline (so the function's
//! future stays `Send` whenever its body's is) and ask a [`Call`] what to do
//! at each step; the decisions themselves live here, once:
//!
//! - [`Settings`]: the configuration, built in a `static` with one `const`
//!   builder per key the user set (the defaults, from
//!   `retry_rules::defaults`, are built in here);
//! - [`Guards`]: the shared protections a call goes through (budget,
//!   breaker, rate limiter, bulkhead);
//! - [`Call`]: one call's state: admitting an attempt, deciding what follows
//!   a failure, sleeping before the next attempt, reporting the outcome.
//!
//! Composition order (fixed): `fallback(deadline(retry + budget(
//! circuit_breaker(rate_limit(concurrency(timeout(body)))))))`. The
//! expansion owns the outer and inner ends (fallback, timeout, the body);
//! everything between is decided here.

mod admission;
mod attempt;
mod call;
mod decision;
pub(crate) mod describe;
mod guards;
mod settings;

pub use attempt::{Attempt, CallKey};
pub use call::Call;
pub use decision::{Decision, GiveUp};
pub use guards::{Admission, Admitted, Conversions, Guards, Refusal};
pub use settings::Settings;
