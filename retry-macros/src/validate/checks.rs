//! One `check_*` per rule that relates keys to the code they wrap, or to
//! keys that are code (the rules between values are `retry_rules::check`,
//! which configuration files obey too); each pushes its errors and returns
//! nothing.

use quote::ToTokens;
use syn::{Expr, FnArg, Type};

use super::{Errors, error, spanned};
use crate::args::{Args, HedgeArg};
use crate::item::Function;
use crate::operation::Operation;
use crate::values::RateArg;

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

/// `timeout` needs async code: a running plain `fn` or block cannot be
/// cancelled.
pub(super) fn check_time_limit(args: &Args, operation: &Operation, errors: &mut Errors) {
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

/// Two attempts of a hedged call run at once: only futures can, and they
/// can share what the body borrows but not what it borrows mutably.
pub(super) fn check_hedge(
    args: &Args,
    operation: &Operation,
    function: Option<&Function>,
    errors: &mut Errors,
) {
    let Some(hedge) = &args.hedge else {
        return;
    };
    let span = match hedge {
        HedgeArg::Inline(_, span) => *span,
        HedgeArg::Shared(expr) => syn::spanned::Spanned::span(expr),
    };
    if !operation.is_async {
        let message = if operation.is_function() {
            "`hedge` needs an `async fn`: a hedge runs beside the attempt it hedges, which only futures can do; make the function `async` or remove `hedge`"
        } else {
            "`hedge` needs an `async` block: a hedge runs beside the attempt it hedges, which only futures can do; write `retry!(...; async { .. })` or remove `hedge`"
        };
        errors.push(spanned(span, message));
    }
    let Some(function) = function else {
        return;
    };
    for input in &function.sig.inputs {
        let (at, name): (&dyn ToTokens, String) = match input {
            FnArg::Receiver(receiver)
                if receiver.reference.is_some() && receiver.mutability.is_some() =>
            {
                (receiver, "self".to_owned())
            }
            FnArg::Typed(typed) => match &*typed.ty {
                Type::Reference(reference) if reference.mutability.is_some() => {
                    let pat = &typed.pat;
                    (typed, quote::quote!(#pat).to_string())
                }
                _ => continue,
            },
            FnArg::Receiver(_) => continue,
        };
        errors.push(error(
            at,
            format!(
                "`hedge` runs attempts at once, and they cannot all borrow `{name}`, a `&mut` reference; take a shared reference (with interior mutability if the attempts must write), or remove `hedge`"
            ),
        ));
    }
}
