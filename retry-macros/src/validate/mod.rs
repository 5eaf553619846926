//! The rules that relate keys to each other and to the code they wrap (a
//! function, or a `retry!` block). Each rule
//! is one `check_*` function; all of them run, so every mistake is reported
//! in one compile. Validation checks and converts; it generates no code.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::Expr;

mod checks;
mod classify;

use checks::{
    check_classification, check_function, check_hedge, check_hooks, check_protection,
    check_time_limit, is_async_closure,
};
use classify::classification;
use retry_rules::{ConsecutiveBreaker, HedgeAfter, HedgeValues, Protections, Written};

use crate::args::{Args, BreakerArg, BreakerArgs, HedgeArg};
use crate::item::Function;
use crate::operation::Operation;
use crate::values::{
    BudgetArg, DurationArg, Float, Int, LimitArg, RateArg, Setting, Settings, WindowArg,
};

/// A configuration the expansion can trust: every value in range, and only
/// the keys the user set (the runtime holds the defaults).
pub(crate) struct Config {
    pub(crate) krate: syn::Path,
    pub(crate) name: Option<String>,
    /// `.key(value)` on `Settings`, for each value key written
    /// (`max_attempts`, `backoff`, the delays, `timeout`, ...).
    pub(crate) settings: Vec<TokenStream>,
    pub(crate) timeout: Option<DurationArg>,
    pub(crate) deadline: Option<DurationArg>,
    pub(crate) classify: Classify,
    pub(crate) retry_after: Option<Expr>,
    /// `breaker_if`: which errors the breaker counts, apart from retrying.
    pub(crate) breaker_if: Option<Expr>,
    pub(crate) budget: Budget,
    pub(crate) concurrency: Option<Limit>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) max_wait: Option<DurationArg>,
    pub(crate) circuit_breaker: Option<Breaker>,
    pub(crate) on_retry: Option<Expr>,
    pub(crate) fallback: Option<Expr>,
    /// `on_retry` / `fallback` are async closures, awaited in place.
    pub(crate) on_retry_is_async: bool,
    pub(crate) fallback_is_async: bool,
    /// The name each attempt's `Attempt` is bound to.
    pub(crate) attempt: Option<syn::Ident>,
    pub(crate) hedge: Option<Hedging>,
}

/// `hedge`: attempts beside a slow one.
pub(crate) enum Hedging {
    /// This call site's own `Hedge`: the keys written (the runtime holds
    /// the defaults of the others, but for `after`, which picks the
    /// constructor).
    Inline {
        after: HedgeAfter,
        max_hedges: Option<u32>,
        max_extra_load: Option<f64>,
    },
    /// `hedge = <expr>`: a `&'static Hedge`.
    Shared(Expr),
}

/// Which errors are retried.
pub(crate) enum Classify {
    Every,
    /// `retry_on`: patterns such as `FetchError::Io { .. }`.
    Only(Vec<TokenStream>),
    /// `no_retry_on`.
    Except(Vec<TokenStream>),
    /// `retry_if`.
    Predicate(Expr),
}

pub(crate) enum Budget {
    PerFunction,
    Off,
    Shared(Expr),
}

pub(crate) enum Limit {
    Inline(u32),
    /// `concurrency = "adaptive"`: an `AdaptiveLimit::gradient()` of this
    /// call site's.
    Adaptive,
    Shared(Expr),
}

pub(crate) enum RateLimit {
    Inline {
        count: u32,
        period: Duration,
        burst: Option<u32>,
    },
    Shared(Expr),
}

pub(crate) enum Breaker {
    Inline(InlineBreaker),
    Shared(Expr),
}

/// What a failure rate is computed over: the last calls, or the last
/// stretch of time.
#[derive(Clone, Copy)]
pub(crate) enum Window {
    Calls(u32),
    Time(Duration),
}

pub(crate) struct InlineBreaker {
    /// The `circuit_breaker` key, where a missing `From<CircuitOpen>` is reported.
    pub(crate) span: Span,
    pub(crate) failure_threshold: Option<u32>,
    /// The rate, and the window when the user set one.
    pub(crate) failure_rate: Option<(f64, Option<Window>)>,
    /// `slow_call` and `slow_call_rate` (1.0, resilience4j's default, when
    /// only the threshold is written).
    pub(crate) slow_call: Option<(Duration, f64)>,
    pub(crate) min_calls: Option<u32>,
    pub(crate) open_for: Option<Duration>,
    pub(crate) half_open_probes: Option<u32>,
    /// `adaptive_throttling = k`: Google SRE's client-side throttling,
    /// which no other key above combines with.
    pub(crate) adaptive_throttling: Option<f64>,
    /// `key = <expr>`: one breaker per value of the expression (a host, a
    /// tenant), each made on first use and kept in a bounded `Keyed`.
    pub(crate) key: Option<Expr>,
}

type Errors = Vec<syn::Error>;

/// Input:  the parsed arguments, the operation, and the function it is the
///         body of (none for a `retry!` block).
/// Output: a complete configuration, or every rule broken.
pub(crate) fn validate(
    args: Args,
    operation: &Operation,
    function: Option<&Function>,
    errors: &mut Errors,
) -> Config {
    if let Some(function) = function {
        check_function(function, errors);
    }
    // The rules on values, which configuration files obey too.
    let mut values = args.values();
    values.breaker = consecutive_breaker(&args);
    values.hedge = hedge_values(&args);
    for problem in retry_rules::check(&values) {
        errors.push(spanned(problem.at, problem.message));
    }
    // The rules on code.
    check_time_limit(&args, operation, errors);
    check_hooks(&args, operation, errors);
    check_classification(&args, errors);
    check_protection(&args, errors);
    check_hedge(&args, operation, function, errors);

    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| syn::parse_quote!(::steadfast), |k| k.0.clone());
    let settings = args.settings(&krate);
    let classify = classification(&args, operation, errors);
    let concurrency = args.concurrency.map(|limit| match limit {
        LimitArg::Inline(n) => Limit::Inline(positive_u32(
            n,
            "concurrency",
            "it is the number of attempts allowed in flight at once",
            errors,
        )),
        LimitArg::Adaptive => Limit::Adaptive,
        LimitArg::Shared(expr) => Limit::Shared(expr),
    });
    let rate_limit = args.rate_limit.map(|rate| match rate {
        RateArg::Inline(rate) => RateLimit::Inline {
            count: rate_count(rate.count, rate.span, errors),
            period: rate.period,
            burst: args.burst.map(|b| {
                positive_u32(
                    b,
                    "burst",
                    "it is the number of tokens the bucket holds",
                    errors,
                )
            }),
        },
        RateArg::Shared(expr) => RateLimit::Shared(expr),
    });
    let circuit_breaker = args.circuit_breaker.map(|breaker| match breaker {
        BreakerArg::Inline(inline, span) => Breaker::Inline(inline_breaker(*inline, span, errors)),
        BreakerArg::Shared(expr) => Breaker::Shared(expr),
    });
    // In range once the rules above passed; the runtime clamps otherwise.
    let hedge = args.hedge.map(|hedge| match hedge {
        HedgeArg::Inline(inline, _) => Hedging::Inline {
            after: inline
                .after
                .map_or(retry_rules::defaults::HEDGE_AFTER, |after| after.value),
            max_hedges: inline
                .max_hedges
                .map(|n| u32::try_from(n.value).unwrap_or(u32::MAX)),
            max_extra_load: inline.max_extra_load.map(|f| f.value),
        },
        HedgeArg::Shared(expr) => Hedging::Shared(expr),
    });

    Config {
        krate,
        name: args.name.map(|name| name.0),
        settings,
        timeout: args.timeout,
        deadline: args.deadline,
        classify,
        retry_after: args.retry_after.map(|e| e.0),
        breaker_if: args.breaker_if.map(|e| e.0),
        budget: match args.budget {
            None => Budget::PerFunction,
            Some(BudgetArg::Off) => Budget::Off,
            Some(BudgetArg::Shared(expr)) => Budget::Shared(expr),
        },
        concurrency,
        rate_limit,
        max_wait: args.max_wait,
        circuit_breaker,
        on_retry_is_async: args
            .on_retry
            .as_ref()
            .is_some_and(|e| is_async_closure(&e.0)),
        fallback_is_async: args
            .fallback
            .as_ref()
            .is_some_and(|e| is_async_closure(&e.0)),
        on_retry: args.on_retry.map(|e| e.0),
        fallback: args.fallback.map(|e| e.0),
        attempt: args.attempt.map(|binding| binding.0),
        hedge,
    }
}

/// An inline `hedge(..)`'s values, for the rules configuration obeys too.
fn hedge_values(args: &Args) -> Option<HedgeValues<Span>> {
    let Some(HedgeArg::Inline(hedge, _)) = &args.hedge else {
        return None;
    };
    let after = match (&hedge.after, hedge.failed.after) {
        (Some(after), _) => Written::Value(after.value, after.span),
        (None, true) => Written::Unreadable,
        (None, false) => Written::Absent,
    };
    Some(HedgeValues {
        after,
        max_hedges: Int::written(hedge.max_hedges.as_ref(), hedge.failed.max_hedges),
        max_extra_load: Float::written(hedge.max_extra_load.as_ref(), hedge.failed.max_extra_load),
    })
}

/// An inline breaker counting consecutive failures, for the rule that it
/// must outlast one failing call; not when its `failure_rate` is written,
/// or was and did not parse.
fn consecutive_breaker(args: &Args) -> Option<ConsecutiveBreaker<Span>> {
    match &args.circuit_breaker {
        Some(BreakerArg::Inline(breaker, span))
            if breaker.failure_rate.is_none()
                && !breaker.failed.failure_rate
                && breaker.adaptive_throttling.is_none()
                && !breaker.failed.adaptive_throttling =>
        {
            Some(ConsecutiveBreaker {
                at: *span,
                failure_threshold: Int::written(
                    breaker.failure_threshold.as_ref(),
                    breaker.failed.failure_threshold,
                ),
            })
        }
        _ => None,
    }
}

impl Config {
    /// Which of the keys that shape an attempt are set: what admits it,
    /// whether admission waits and with what bound, which refusals it can
    /// end with (decided by `retry_rules::Protections`, which a `Policy`
    /// asks too).
    pub(crate) fn protections(&self) -> Protections {
        let mut protections = Protections::NONE;
        if self.circuit_breaker.is_some() {
            protections = protections.circuit_breaker();
        }
        if self.rate_limit.is_some() {
            protections = protections.rate_limit();
        }
        if self.concurrency.is_some() {
            protections = protections.concurrency();
        }
        if self.max_wait.is_some() {
            protections = protections.max_wait();
        }
        if self.deadline.is_some() {
            protections = protections.deadline();
        }
        if self.timeout.is_some() {
            protections = protections.timeout();
        }
        protections
    }

    /// Where the `circuit_breaker` key was written, if it was.
    pub(crate) fn breaker_span(&self) -> Option<Span> {
        self.circuit_breaker.as_ref().map(|breaker| match breaker {
            Breaker::Shared(expr) => syn::spanned::Spanned::span(expr),
            Breaker::Inline(inline) => inline.span,
        })
    }
}

fn inline_breaker(args: BreakerArgs, span: Span, errors: &mut Errors) -> InlineBreaker {
    if let Some(k) = args.adaptive_throttling {
        return throttling_breaker(args, k, span, errors);
    }
    if let (Some(_), Some(rate)) = (&args.failure_threshold, &args.failure_rate) {
        errors.push(spanned(
            rate.span,
            "`failure_threshold` and `failure_rate` are two ways to trip the breaker; keep one",
        ));
    }
    if let Some(window) = args.window.filter(|_| args.failure_rate.is_none()) {
        let span = match window {
            WindowArg::Calls(n) => n.span,
            WindowArg::Time(d) => d.span,
        };
        errors.push(spanned(
            span,
            "`window` applies to `failure_rate`; add `failure_rate = 0.5` or remove it",
        ));
    }
    if let Some(n) = args
        .min_calls
        .filter(|_| args.failure_rate.is_none() && args.slow_call.is_none())
    {
        errors.push(spanned(
            n.span,
            "`min_calls` applies to `failure_rate` and `slow_call`; add one of them or remove it",
        ));
    }
    if let Some(rate) = args.slow_call_rate.filter(|_| args.slow_call.is_none()) {
        errors.push(spanned(
            rate.span,
            "`slow_call_rate` needs `slow_call`, the duration past which a call is slow, e.g. `slow_call = \"2s\"`",
        ));
    }
    let failure_rate = args.failure_rate.map(|Float { value, span }| {
        fraction("failure_rate", value, span, "half the calls", errors);
        let window = args.window.map(|window| match window {
            WindowArg::Calls(n) => Window::Calls(positive_u32(
                n,
                "window",
                "it is the number of recent calls the rate is computed over",
                errors,
            )),
            WindowArg::Time(d) => {
                if let Err(message) = retry_rules::positive_duration("window", d.value) {
                    errors.push(spanned(d.span, message));
                }
                Window::Time(d.value)
            }
        });
        (value, window)
    });
    let slow_call = args.slow_call.map(|threshold| {
        if let Err(message) = retry_rules::positive_duration("slow_call", threshold.value) {
            errors.push(spanned(threshold.span, message));
        }
        let rate = args.slow_call_rate.map_or(1.0, |Float { value, span }| {
            fraction("slow_call_rate", value, span, "half the calls", errors);
            value
        });
        (threshold.value, rate)
    });
    InlineBreaker {
        span,
        failure_threshold: args.failure_threshold.map(|n| {
            positive_u32(n, "failure_threshold", "it is the number of consecutive failures that opens the breaker", errors)
        }),
        min_calls: args.min_calls.map(|n| {
            positive_u32(n, "min_calls", "it is the number of calls needed before the rate counts", errors)
        }),
        open_for: args.open_for.map(|d| {
            if d.value.is_zero() {
                errors.push(spanned(
                    d.span,
                    "`open_for` must be greater than zero; it is how long the breaker stays open, e.g. `open_for = \"30s\"`",
                ));
            }
            d.value
        }),
        half_open_probes: args.half_open_probes.map(|n| {
            positive_u32(n, "half_open_probes", "it is the number of trial calls that decide whether to close", errors)
        }),
        failure_rate,
        slow_call,
        adaptive_throttling: None,
        key: args.key.map(|key| key.0),
    }
}

/// `circuit_breaker(adaptive_throttling = k)`: `k` by its rule, and each
/// key written beside it refused where it is written (the same rules as
/// configuration, from `retry_rules`).
fn throttling_breaker(
    args: BreakerArgs,
    k: Float,
    span: Span,
    errors: &mut Errors,
) -> InlineBreaker {
    if let Err(message) = retry_rules::adaptive_throttling(k.value) {
        errors.push(spanned(k.span, message));
    }
    let window = args.window.map(|window| match window {
        WindowArg::Calls(n) => n.span,
        WindowArg::Time(d) => d.span,
    });
    let beside = [
        ("failure_threshold", args.failure_threshold.map(|n| n.span)),
        ("failure_rate", args.failure_rate.map(|r| r.span)),
        ("window", window),
        ("min_calls", args.min_calls.map(|n| n.span)),
        ("open_for", args.open_for.map(|d| d.span)),
        ("half_open_probes", args.half_open_probes.map(|n| n.span)),
        ("slow_call", args.slow_call.map(|d| d.span)),
        ("slow_call_rate", args.slow_call_rate.map(|r| r.span)),
    ];
    for (key, at) in beside {
        if let Some(at) = at {
            errors.push(spanned(at, retry_rules::throttling_alone(key)));
        }
    }
    InlineBreaker {
        span,
        failure_threshold: None,
        failure_rate: None,
        slow_call: None,
        min_calls: None,
        open_for: None,
        half_open_probes: None,
        adaptive_throttling: Some(k.value),
        key: args.key.map(|key| key.0),
    }
}

/// A rate in (0, 1]: `example` says what 0.5 means.
fn fraction(key: &str, value: f64, span: Span, example: &str, errors: &mut Errors) {
    if !(value > 0.0 && value <= 1.0) {
        errors.push(spanned(
            span,
            format!("`{key}` must be in (0, 1] (got {value}), e.g. `{key} = 0.5` for {example}"),
        ));
    }
}

/// A count that must be at least 1 and fit the runtime's `u32`.
fn positive_u32(n: Int, key: &str, why: &str, errors: &mut Errors) -> u32 {
    retry_rules::at_least_one(key, n.value, why).unwrap_or_else(|message| {
        errors.push(spanned(n.span, message));
        // Validation goes on with the nearest valid count.
        if n.value < 1 { 1 } else { u32::MAX }
    })
}

fn rate_count(count: u64, span: Span, errors: &mut Errors) -> u32 {
    match u32::try_from(count) {
        Ok(0) => {
            errors.push(spanned(
                span,
                "a rate of 0 admits nothing; use at least `\"1/h\"`, or remove `rate_limit`",
            ));
            1
        }
        Ok(n) => n,
        Err(_) => {
            errors.push(spanned(
                span,
                format!("rate too large (at most {} per period)", u32::MAX),
            ));
            u32::MAX
        }
    }
}

fn spanned(span: Span, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, message)
}

fn error(tokens: impl ToTokens, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new_spanned(tokens, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn check(args: TokenStream, item: TokenStream) -> Result<Config, Vec<String>> {
        let function: Function = syn::parse2(item).unwrap();
        let mut errors = Vec::new();
        let args = Args::parse(args, &mut errors);
        let config = validate(args, &function.operation, Some(&function), &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.iter().map(ToString::to_string).collect())
        }
    }

    fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        check(args, item).err().unwrap_or_default()
    }

    fn fallible() -> TokenStream {
        quote!(
            async fn f() -> Result<(), FetchError> {
                Ok(())
            }
        )
    }

    #[test]
    fn only_what_the_user_set_is_configured() {
        let config = check(quote!(), fallible()).ok().unwrap();
        assert!(config.settings.is_empty());
        assert!(matches!(config.budget, Budget::PerFunction));
        assert!(matches!(config.classify, Classify::Every));
        assert!(config.krate.is_ident("steadfast") || config.krate.leading_colon.is_some());
    }

    /// The runtime builds its defaults from `retry-rules` (but for the
    /// breaker's threshold): seen from the facade, as a caller does.
    #[test]
    fn the_defaults_rules_compare_are_the_runtimes() {
        let runtime = steadfast::Backoff::new();
        assert_eq!(retry_rules::defaults::BASE_DELAY, runtime.base());
        assert_eq!(retry_rules::defaults::MAX_DELAY, runtime.cap());
        assert_eq!(
            retry_rules::defaults::FAILURE_THRESHOLD,
            steadfast::CircuitBreaker::DEFAULT_FAILURE_THRESHOLD
        );
        // The runtime's default `max_attempts`, as a caller sees it: the
        // attempts a default policy makes before it gives up.
        static DEFAULTS: steadfast::Policy<()> = steadfast::Policy::new().no_budget();
        let _no_sleeps = steadfast::testing::no_delays();
        let mut attempts = 0;
        let gave_up = DEFAULTS.retry_blocking(|_| {
            attempts += 1;
            Err::<(), ()>(())
        });
        assert_eq!(gave_up, Err(()));
        assert_eq!(retry_rules::defaults::MAX_ATTEMPTS, attempts);
    }

    #[test]
    fn all_rule_violations_are_reported_together() {
        let found = errors(
            quote!(
                max_attempts = 0,
                multiplier = 0.5,
                base_delay = "30s",
                max_delay = "1s"
            ),
            quote!(
                const fn f() -> u8 {
                    1
                }
            ),
        );
        // const fn, not a Result, max_attempts 0, multiplier < 1, base > max
        assert_eq!(found.len(), 5, "{found:?}");
    }

    #[test]
    fn multiplier_and_decorrelated_need_exponential() {
        let found = errors(
            quote!(backoff = "fixed", multiplier = 3.0, jitter = "decorrelated"),
            fallible(),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .any(|e| e.contains("`multiplier` only applies"))
        );
        assert!(found.iter().any(|e| e.contains("decorrelated")));
    }

    #[test]
    fn track_caller_is_rejected_on_plain_fns() {
        let item = quote!(
            #[track_caller]
            fn f() -> Result<(), E> {
                Ok(())
            }
        );
        assert!(errors(quote!(), item)[0].contains("`#[track_caller]` cannot reach through"));
    }

    #[test]
    fn timeout_needs_async() {
        let found = errors(
            quote!(timeout = "1s"),
            quote!(
                fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(found[0].contains("needs an `async fn`"), "{found:?}");
        assert!(
            errors(
                quote!(deadline = "1s"),
                quote!(
                    fn f() -> Result<(), E> {
                        Ok(())
                    }
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn hedge_needs_futures_that_can_share_their_borrows() {
        let hedged = |item: TokenStream| errors(quote!(hedge(after = "p99")), item);
        let sync = hedged(quote!(
            fn f() -> Result<(), E> {
                Ok(())
            }
        ));
        assert!(sync[0].contains("`hedge` needs an `async fn`"), "{sync:?}");
        let found = hedged(quote!(
            async fn f(&mut self, a: &mut u8, b: &u8, c: u8) -> Result<(), E> {
                Ok(())
            }
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("cannot all borrow `self`"), "{found:?}");
        assert!(found[1].contains("cannot all borrow `a`"), "{found:?}");
        let shared = hedged(quote!(
            async fn f(&self, mut b: &u8, c: u8) -> Result<(), E> {
                Ok(())
            }
        ));
        assert!(shared.is_empty(), "{shared:?}");
    }

    #[test]
    fn classification_keys_exclude_each_other() {
        let found = errors(quote!(retry_on = [Io], retry_if = |e| true), fallible());
        assert!(
            found[0].contains("`retry_if` cannot be combined with `retry_on`"),
            "{found:?}"
        );
        assert_eq!(
            errors(quote!(retry_on = [Io], no_retry_on = [Fatal]), fallible()).len(),
            1
        );
    }

    #[test]
    fn bare_variants_need_a_readable_error_type() {
        let io = quote!(
            fn f() -> std::io::Result<()> {
                Ok(())
            }
        );
        let found = errors(quote!(retry_on = [TimedOut]), io);
        assert!(
            found[0].contains("cannot tell which error type `TimedOut` belongs to"),
            "{found:?}"
        );
        let io = quote!(
            fn f() -> std::io::Result<()> {
                Ok(())
            }
        );
        assert!(errors(quote!(retry_on = [MyError::TimedOut]), io).is_empty());
    }

    #[test]
    fn bare_variants_resolve_against_the_error_type() {
        let item = quote!(
            fn f() -> Result<(), Wrapper<u8>> {
                Ok(())
            }
        );
        let Ok(Config {
            classify: Classify::Only(patterns),
            ..
        }) = check(quote!(retry_on = [Io]), item)
        else {
            panic!("expected patterns");
        };
        assert_eq!(patterns[0].to_string(), "Wrapper :: < u8 > :: Io { .. }");
    }

    #[test]
    fn zero_durations_and_limits_are_rejected() {
        let found = errors(
            quote!(
                timeout = "0s",
                concurrency = 0,
                rate_limit = "0/s",
                max_wait = "0ms"
            ),
            fallible(),
        );
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn protection_refinements_need_their_limit() {
        assert!(
            errors(quote!(burst = 5), fallible())[0]
                .contains("`burst` needs an inline `rate_limit`")
        );
        assert!(
            errors(quote!(max_wait = "1s"), fallible())[0].contains("`max_wait` bounds the wait")
        );
        assert!(
            errors(
                quote!(rate_limit = "5/s", burst = 10, max_wait = "1s"),
                fallible()
            )
            .is_empty()
        );
    }

    #[test]
    fn a_bad_key_does_not_hide_other_mistakes_nor_invent_some() {
        let found = errors(
            quote!(
                backoff = "fixd",
                multiplier = 0.5,
                rate_limit = "ten/s",
                burst = 3,
                max_attempts = 0
            ),
            fallible(),
        );
        // backoff, rate_limit (parse); multiplier < 1, max_attempts (rules);
        // nothing about `burst` or `multiplier` needing exponential.
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn empty_variant_lists_say_what_they_mean() {
        assert!(
            errors(quote!(retry_on = []), fallible())[0]
                .contains("`retry_on = []` retries no error")
        );
        assert!(
            errors(quote!(no_retry_on = []), fallible())[0]
                .contains("`no_retry_on = []` excludes no error")
        );
    }

    #[test]
    fn breaker_keys_are_checked() {
        let found = errors(
            quote!(circuit_breaker(
                failure_threshold = 3,
                failure_rate = 1.5,
                window = 0,
                half_open_probes = 0
            )),
            fallible(),
        );
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            errors(quote!(circuit_breaker(window = 10)), fallible())[0]
                .contains("applies to `failure_rate`")
        );
        let slow = errors(
            quote!(circuit_breaker(slow_call = "0s", slow_call_rate = 2.0)),
            fallible(),
        );
        assert_eq!(slow.len(), 2, "{slow:?}");
        assert!(
            errors(quote!(circuit_breaker(slow_call_rate = 0.5)), fallible())[0]
                .contains("`slow_call_rate` needs `slow_call`")
        );
        assert!(
            errors(
                quote!(circuit_breaker(failure_rate = 0.5, window = "0s")),
                fallible()
            )[0]
            .contains("`window` must be greater than zero")
        );
    }

    #[test]
    fn adaptive_throttling_is_a_number_of_at_least_one_and_alone() {
        let config = check(
            quote!(circuit_breaker(adaptive_throttling = 2.0, key = host)),
            fallible(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let Some(Breaker::Inline(inline)) = config.circuit_breaker else {
            panic!("an inline breaker");
        };
        assert_eq!(inline.adaptive_throttling, Some(2.0));
        assert!(inline.key.is_some());
        assert!(check(quote!(circuit_breaker(adaptive_throttling = 1)), fallible()).is_ok());
        for k in [quote!(0), quote!(0.99), quote!(-2.0)] {
            let found = errors(
                quote!(circuit_breaker(adaptive_throttling = #k)),
                fallible(),
            );
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].contains("must be at least 1.0"), "{found:?}");
        }
        let beside = errors(
            quote!(circuit_breaker(
                adaptive_throttling = 2.0,
                failure_threshold = 3,
                failure_rate = 0.5,
                window = 10,
                min_calls = 5,
                open_for = "1s",
                half_open_probes = 2,
                slow_call = "1s",
                slow_call_rate = 0.5
            )),
            fallible(),
        );
        let keys = [
            "failure_threshold",
            "failure_rate",
            "window",
            "min_calls",
            "open_for",
            "half_open_probes",
            "slow_call",
            "slow_call_rate",
        ];
        assert_eq!(
            beside.len(),
            keys.len(),
            "each once, nothing else: {beside:?}"
        );
        for (found, key) in beside.iter().zip(keys) {
            assert!(
                found.starts_with(&format!("`{key}` does not apply to `adaptive_throttling`")),
                "{found}"
            );
        }
    }

    #[test]
    fn a_throttling_breaker_is_not_a_consecutive_one() {
        // The default threshold (5) at or below `max_attempts` is an error
        // for a breaker counting consecutive failures, and not for one that
        // throttles (or whose `adaptive_throttling` did not parse).
        let consecutive = errors(
            quote!(max_attempts = 5, circuit_breaker(open_for = "1s")),
            fallible(),
        );
        assert!(
            consecutive[0].contains("failure_threshold"),
            "{consecutive:?}"
        );
        assert!(
            check(
                quote!(max_attempts = 5, circuit_breaker(adaptive_throttling = 2.0)),
                fallible()
            )
            .is_ok()
        );
        let unreadable = errors(
            quote!(max_attempts = 5, circuit_breaker(adaptive_throttling = "2")),
            fallible(),
        );
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        let rate = check(
            quote!(max_attempts = 5, circuit_breaker(failure_rate = 0.5)),
            fallible(),
        );
        assert!(rate.is_ok());
        let unreadable_rate = errors(
            quote!(max_attempts = 5, circuit_breaker(failure_rate = "x")),
            fallible(),
        );
        assert_eq!(unreadable_rate.len(), 1, "{unreadable_rate:?}");
    }

    #[test]
    fn concurrency_takes_a_count_adaptive_or_a_limit() {
        let config = |args| check(args, fallible()).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(matches!(
            config(quote!(concurrency = "adaptive")).concurrency,
            Some(Limit::Adaptive)
        ));
        assert!(matches!(
            config(quote!(concurrency = 4)).concurrency,
            Some(Limit::Inline(4))
        ));
        assert!(matches!(
            config(quote!(concurrency = &LIMIT)).concurrency,
            Some(Limit::Shared(_))
        ));
        for wrong in [quote!("Adaptive"), quote!("4"), quote!(4.5)] {
            let found = errors(quote!(concurrency = #wrong), fallible());
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].starts_with("invalid `concurrency`"), "{found:?}");
        }
    }

    #[test]
    fn counts_must_be_positive_and_fit() {
        let found = |value: TokenStream| errors(quote!(max_attempts = #value), fallible());
        assert_eq!(
            found(quote!(0)),
            ["`max_attempts` must be at least 1 (got 0); 1 means no retries"]
        );
        assert_eq!(
            found(quote!(-1)),
            ["`max_attempts` must be at least 1 (got -1); 1 means no retries"]
        );
        assert!(found(quote!(1)).is_empty());
        assert_eq!(
            found(quote!(4294967296)),
            ["`max_attempts` is too large (at most 4294967295)"]
        );
    }

    #[test]
    fn rates_are_fractions_above_zero() {
        assert!(!errors(quote!(circuit_breaker(failure_rate = 0.0)), fallible()).is_empty());
        assert!(errors(quote!(circuit_breaker(failure_rate = 1.0)), fallible()).is_empty());
    }

    #[test]
    fn zero_delays_are_pointed_at_the_backoff_that_means_it() {
        assert_eq!(
            errors(quote!(base_delay = "0s"), fallible()),
            ["`base_delay` must be greater than zero; use `backoff = \"none\"` to retry at once"]
        );
        assert_eq!(
            errors(quote!(timeout = "0s"), fallible()),
            ["`timeout` must be greater than zero; remove the key for no limit"]
        );
        assert!(errors(quote!(base_delay = "1s", max_delay = "1s"), fallible()).is_empty());
    }

    #[test]
    fn decorrelated_jitter_is_fine_with_exponential_backoff() {
        assert!(errors(quote!(jitter = "decorrelated"), fallible()).is_empty());
        assert!(
            errors(
                quote!(backoff = "exponential", jitter = "decorrelated"),
                fallible()
            )
            .is_empty()
        );
    }

    #[test]
    fn async_hooks_need_async_code() {
        let plain = quote!(
            fn f() -> Result<(), E> {
                Ok(())
            }
        );
        let found = errors(quote!(fallback = async |e| Err(e)), plain.clone());
        assert_eq!(
            found,
            [
                "an async `fallback` needs an `async fn`: a plain `fn` cannot await it; make the closure synchronous"
            ]
        );
        assert_eq!(
            errors(quote!(on_retry = (async |_| {})), plain.clone()).len(),
            1
        );
        assert!(errors(quote!(fallback = |e| Err(e)), plain).is_empty());
        let config = check(quote!(fallback = async |e| Err(e)), fallible())
            .ok()
            .unwrap();
        assert!(config.fallback_is_async && !config.on_retry_is_async);
    }

    #[test]
    fn a_body_instrument_expanded_first_is_retried_without_complaint() {
        // Recognised or not, the body is the user's to retry: an
        // unrecognised one still works with borrowed or `Copy` arguments.
        for body in [
            quote!({
                let __tracing_attr_span = span();
                let __tracing_instrument_future = async move {
                    if false {
                        let __tracing_attr_fake_return: Result<(), E> = loop {};
                    }
                    { Ok(()) }
                };
                __tracing_instrument_future.await
            }),
            quote!({
                let __tracing_attr_span = span();
                { Ok(()) }
            }),
        ] {
            let found = errors(
                quote!(),
                quote!(async fn f(name: &str) -> Result<(), E> #body),
            );
            assert!(found.is_empty(), "{found:?}");
        }
    }

    #[test]
    fn a_jitter_factor_is_a_fraction_above_zero() {
        for bad in [quote!(0.0), quote!(1.5), quote!(-0.5)] {
            assert_eq!(errors(quote!(jitter = #bad), fallible()).len(), 1, "{bad}");
        }
        assert!(errors(quote!(jitter = 1.0), fallible()).is_empty());
        assert!(errors(quote!(jitter = 0.01), fallible()).is_empty());
    }

    #[test]
    fn variants_of_a_qualified_error_type_are_spelled_through_it() {
        let item = quote!(
            fn f() -> Result<(), <T as Source>::Error> {
                Ok(())
            }
        );
        let Ok(Config {
            classify: Classify::Only(patterns),
            ..
        }) = check(quote!(retry_on = [Io]), item)
        else {
            panic!("expected patterns");
        };
        assert_eq!(
            patterns[0].to_string(),
            "< < T as Source > :: Error > :: Io { .. }"
        );
    }
}
