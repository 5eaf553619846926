//! One `check_*` per rule that relates keys to each other or to the code
//! they wrap; each pushes its errors and returns nothing.

use proc_macro2::Span;
use syn::Expr;

use retry_rules::defaults;

use super::{Errors, error, spanned};
use crate::args::Args;
use crate::args::BreakerArg;
use crate::item::Function;
use crate::operation::Operation;
use crate::values::{BackoffKind, Float, RateArg};

/// The function must return a `Result` and be something a loop can repeat.
pub(super) fn check_function(function: &Function, errors: &mut Errors) {
    let sig = &function.sig;
    if let Some(constness) = &sig.constness {
        errors.push(error(
            constness,
            "`#[resilient]` cannot be applied to a `const fn`: retrying sleeps and reads the clock; remove `const`",
        ));
    }
    if let Some(track_caller) = function
        .attrs
        .iter()
        .find(|attr| attr.path().is_ident("track_caller"))
        .filter(|_| !function.operation.is_async)
    {
        errors.push(error(
            track_caller.path(),
            "`#[track_caller]` cannot reach through `#[resilient]`: each attempt runs the body in a closure, so `Location::caller()` would name the body; remove `#[track_caller]`",
        ));
    }
    if function.operation.result.is_none() {
        errors.push(spanned(
            function.return_span(),
            "`#[resilient]` needs a function that returns `Result<T, E>`: only an error can be retried",
        ));
    }
}

/// Durations must be positive, ordered, and `timeout` needs an `async fn`.
pub(super) fn check_timing(args: &Args, operation: &Operation, errors: &mut Errors) {
    for (key, value) in [
        ("base_delay", &args.base_delay),
        ("max_delay", &args.max_delay),
        ("timeout", &args.timeout),
        ("deadline", &args.deadline),
        ("max_wait", &args.max_wait),
    ] {
        if let Some(d) = value {
            if let Err(message) = retry_rules::positive_duration(key, d.value) {
                errors.push(spanned(d.span, message));
            }
        }
    }
    let base = args.base_delay.map_or(defaults::BASE_DELAY, |d| d.value);
    let max = args.max_delay.map_or(defaults::MAX_DELAY, |d| d.value);
    if !args.failed.base_delay && !args.failed.max_delay {
        if let Err(message) = retry_rules::delays_in_order(base, max) {
            let span = args
                .base_delay
                .map(|d| d.span)
                .or(args.max_delay.map(|d| d.span))
                .unwrap_or_else(Span::call_site);
            errors.push(spanned(span, message));
        }
    }
    check_deadline(args, errors);
    if let Some(timeout) = args.timeout.filter(|_| !operation.is_async) {
        let message = if operation.is_function() {
            "`timeout` needs an `async fn`: a running plain `fn` cannot be cancelled; use `deadline`, which a plain `fn` checks between attempts"
        } else {
            "`timeout` needs an `async` block: a running plain block cannot be cancelled; write `retry!(...; async { .. })`, or use `deadline`, which a plain block checks between attempts"
        };
        errors.push(spanned(timeout.span, message));
    }
}

/// An async hook is awaited in place, which only async code can do.
pub(super) fn check_hooks(args: &Args, operation: &Operation, errors: &mut Errors) {
    if operation.is_async {
        return;
    }
    for (key, hook) in [("on_retry", &args.on_retry), ("fallback", &args.fallback)] {
        if let Some(hook) = hook.as_ref().filter(|hook| is_async_closure(&hook.0)) {
            let (code, fix) = if operation.is_function() {
                ("`async fn`", "a plain `fn` cannot await it")
            } else {
                ("`async` block", "a plain block cannot await it")
            };
            errors.push(error(
                &hook.0,
                format!("an async `{key}` needs an {code}: {fix}; make the closure synchronous"),
            ));
        }
    }
}

/// `async |e| ..` or `async move |e| ..`. (A closure returning an `async`
/// block cannot lend its future the hook's argument, so it is not taken
/// for one: its type error says what it returns.)
pub(super) fn is_async_closure(expr: &Expr) -> bool {
    match expr {
        Expr::Closure(closure) => closure.asyncness.is_some(),
        Expr::Paren(paren) => is_async_closure(&paren.expr),
        _ => false,
    }
}

/// `multiplier` and decorrelated jitter only mean something for
/// exponential backoff; the jitter factor is a fraction.
pub(super) fn check_backoff(args: &Args, errors: &mut Errors) {
    // With an unparsable `backoff` it is unknown whether these keys fit it.
    let exponential =
        args.failed.backoff || args.backoff.is_none_or(|b| b == BackoffKind::Exponential);
    if let Some(Float { value, span }) = args.multiplier {
        if let Err(message) = retry_rules::multiplier_fits(value, exponential) {
            errors.push(spanned(span, message));
        }
    }
    if let Some(jitter) = args.jitter {
        if let Err(message) = retry_rules::jitter_fits(jitter.kind, exponential) {
            errors.push(spanned(jitter.span, message));
        }
    }
}

/// At most one way of choosing which errors are retried.
pub(super) fn check_classification(args: &Args, errors: &mut Errors) {
    if let (Some(retry_if), true) = (
        &args.retry_if,
        args.retry_on.is_some() || args.no_retry_on.is_some(),
    ) {
        let other = if args.retry_on.is_some() {
            "retry_on"
        } else {
            "no_retry_on"
        };
        errors.push(error(
            &retry_if.0,
            format!(
                "`retry_if` cannot be combined with `{other}`: both choose which errors are retried; keep one"
            ),
        ));
    }
    if let (Some(_), Some(no_retry_on)) = (&args.retry_on, &args.no_retry_on) {
        errors.push(spanned(
            no_retry_on.span,
            "`no_retry_on` cannot be combined with `retry_on`: list only the errors to retry, or only those not to",
        ));
    }
}

/// What is written to happen before the deadline must fit before it.
/// Only keys written are compared: a default `base_delay` with full jitter
/// may well fit a short deadline.
fn check_deadline(args: &Args, errors: &mut Errors) {
    let Some(deadline) = args.deadline.filter(|d| !d.value.is_zero()) else {
        return;
    };
    if let Some(timeout) = args.timeout {
        if let Err(message) = retry_rules::timeout_within_deadline(timeout.value, deadline.value) {
            errors.push(spanned(timeout.span, message));
        }
    }
    let retries_wait = !args.failed.backoff && args.backoff != Some(BackoffKind::None);
    if let Some(base) = args.base_delay.filter(|_| retries_wait) {
        if let Err(message) = retry_rules::base_delay_within_deadline(base.value, deadline.value) {
            errors.push(spanned(base.span, message));
        }
    }
}

/// Keys that refine a limit need the limit.
pub(super) fn check_protection(args: &Args, errors: &mut Errors) {
    if let Some(burst) = args.burst {
        if !matches!(args.rate_limit, Some(RateArg::Inline(_))) && !args.failed.rate_limit {
            errors.push(spanned(
                burst.span,
                "`burst` needs an inline `rate_limit` such as `rate_limit = \"10/s\"`; a shared `RateLimiter` sets its own with `.burst(n)`",
            ));
        }
    }
    check_breaker_threshold(args, errors);
    if let Some(breaker_if) = &args.breaker_if {
        if args.circuit_breaker.is_none() && !args.failed.circuit_breaker {
            errors.push(error(
                &breaker_if.0,
                "`breaker_if` chooses which errors a circuit breaker counts; add `circuit_breaker` or remove `breaker_if`",
            ));
        }
    }
    if let Some(max_wait) = args.max_wait {
        if args.concurrency.is_none()
            && args.rate_limit.is_none()
            && !args.failed.concurrency
            && !args.failed.rate_limit
        {
            errors.push(spanned(
                max_wait.span,
                "`max_wait` bounds the wait for a `concurrency` permit or a `rate_limit` token; add one of them or remove `max_wait`",
            ));
        }
    }
}

/// An inline breaker counting consecutive failures must outlast one call
/// that fails every attempt, or that one call opens it.
fn check_breaker_threshold(args: &Args, errors: &mut Errors) {
    let Some(BreakerArg::Inline(breaker, breaker_span)) = &args.circuit_breaker else {
        return;
    };
    let counts_consecutive = breaker.failure_rate.is_none() && !breaker.failed.failure_rate;
    if !counts_consecutive || args.failed.max_attempts || breaker.failed.failure_threshold {
        return;
    }
    let max_attempts = match args.max_attempts {
        Some(n) => match u32::try_from(n.value) {
            Ok(n) if n >= 1 => n,
            _ => return,
        },
        None => defaults::MAX_ATTEMPTS,
    };
    let (threshold, span, default) = match breaker.failure_threshold {
        Some(n) => match u32::try_from(n.value) {
            Ok(t) if t >= 1 => (t, n.span, false),
            _ => return,
        },
        None => (defaults::FAILURE_THRESHOLD, *breaker_span, true),
    };
    if let Err(message) = retry_rules::breaker_outlasts_a_call(threshold, max_attempts, default) {
        errors.push(spanned(span, message));
    }
}
