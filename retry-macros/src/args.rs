//! Parsing `#[resilient(...)]`: each key's value is turned into a typed,
//! spanned value. Unknown and duplicate keys, and values of the wrong shape,
//! are rejected here by darling, all at once; rules that relate several keys
//! or the function live in `validate.rs`.

use std::collections::BTreeSet;
use std::time::Duration;

use darling::error::Accumulator;
use darling::{Error, FromMeta, ast::NestedMeta, util::SpannedValue};
use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Lit, UnOp};

/// The attribute's arguments, as written.
#[derive(Debug, Default, FromMeta)]
pub(crate) struct Args {
    pub(crate) max_attempts: Option<Int>,
    pub(crate) backoff: Option<SpannedValue<BackoffKind>>,
    pub(crate) base_delay: Option<DurationArg>,
    pub(crate) max_delay: Option<DurationArg>,
    pub(crate) multiplier: Option<Float>,
    pub(crate) jitter: Option<JitterArg>,
    pub(crate) timeout: Option<DurationArg>,
    pub(crate) deadline: Option<DurationArg>,
    pub(crate) retry_on: Option<VariantList>,
    pub(crate) no_retry_on: Option<VariantList>,
    pub(crate) retry_if: Option<UserExpr>,
    pub(crate) retry_after: Option<UserExpr>,
    pub(crate) budget: Option<BudgetArg>,
    pub(crate) concurrency: Option<LimitArg>,
    pub(crate) rate_limit: Option<RateArg>,
    pub(crate) burst: Option<Int>,
    pub(crate) max_wait: Option<DurationArg>,
    pub(crate) circuit_breaker: Option<BreakerArg>,
    pub(crate) on_retry: Option<UserExpr>,
    pub(crate) fallback: Option<UserExpr>,
    pub(crate) name: Option<SpannedValue<String>>,
    #[darling(rename = "crate")]
    pub(crate) krate: Option<syn::Path>,
    /// Keys whose value failed to parse: rules involving them are skipped,
    /// so one typo does not cause a cascade of wrong errors.
    #[darling(skip)]
    pub(crate) failed: BTreeSet<String>,
}

impl Args {
    /// Input:  the tokens inside `#[resilient(...)]`.
    /// Output: the arguments that parsed; every parse error goes to
    ///         `errors`. darling rejects the whole list if one key is bad,
    ///         so the good keys are then parsed again on their own, letting
    ///         validation report their mistakes in the same compile.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Accumulator) -> Self {
        let Some(items) = errors.handle(NestedMeta::parse_meta_list(tokens).map_err(Error::from))
        else {
            return Args::default();
        };
        let Some(error) = Args::from_list(&items).err() else {
            return Args::from_list(&items).unwrap_or_default();
        };
        errors.push(error);
        let mut failed = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let good: Vec<NestedMeta> = items
            .into_iter()
            .filter(|item| {
                let key = key_of(item);
                let parses = Args::from_list(std::slice::from_ref(item)).is_ok();
                if !parses {
                    failed.insert(key.clone());
                }
                parses && seen.insert(key)
            })
            .collect();
        Args {
            failed,
            ..Args::from_list(&good).unwrap_or_default()
        }
    }
}

fn key_of(item: &NestedMeta) -> String {
    match item {
        NestedMeta::Meta(meta) => meta
            .path()
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default(),
        NestedMeta::Lit(_) => String::new(),
    }
}

/// Every key, top-level and nested, for reading darling's error locations.
pub(crate) const KEYS: &[&str] = &[
    "max_attempts",
    "backoff",
    "base_delay",
    "max_delay",
    "multiplier",
    "jitter",
    "timeout",
    "deadline",
    "retry_on",
    "no_retry_on",
    "retry_if",
    "retry_after",
    "budget",
    "concurrency",
    "rate_limit",
    "burst",
    "max_wait",
    "circuit_breaker",
    "on_retry",
    "fallback",
    "name",
    "crate",
    "failure_threshold",
    "failure_rate",
    "window",
    "min_calls",
    "open_for",
    "half_open_probes",
];

/// The inline `circuit_breaker(...)` keys.
#[derive(Debug, Default, FromMeta)]
pub(crate) struct BreakerArgs {
    pub(crate) failure_threshold: Option<Int>,
    pub(crate) failure_rate: Option<Float>,
    pub(crate) window: Option<Int>,
    pub(crate) min_calls: Option<Int>,
    pub(crate) open_for: Option<DurationArg>,
    pub(crate) half_open_probes: Option<Int>,
}

/// An integer literal, possibly negative so that validation can say why a
/// negative value makes no sense rather than "unexpected expression".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Int {
    pub(crate) value: i128,
    pub(crate) span: Span,
}

impl FromMeta for Int {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let (negative, lit) = unwrap_negation(expr);
        match lit {
            Some(Lit::Int(int)) => {
                let value: i128 = int
                    .base10_parse()
                    .map_err(|_| Error::custom("integer too large for this key").with_span(expr))?;
                Ok(Int {
                    value: if negative { -value } else { value },
                    span: expr.span(),
                })
            }
            _ => Err(Error::custom("expected an integer, e.g. `3`").with_span(expr)),
        }
    }
}

/// A float (or integer) literal, possibly negative.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Float {
    pub(crate) value: f64,
    pub(crate) span: Span,
}

impl FromMeta for Float {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let (negative, lit) = unwrap_negation(expr);
        let value: Option<f64> = match lit {
            Some(Lit::Float(float)) => float.base10_parse().ok(),
            Some(Lit::Int(int)) => int.base10_parse().ok(),
            _ => None,
        };
        match value {
            Some(value) => Ok(Float {
                value: if negative { -value } else { value },
                span: expr.span(),
            }),
            None => Err(Error::custom("expected a number, e.g. `1.5`").with_span(expr)),
        }
    }
}

fn unwrap_negation(expr: &Expr) -> (bool, Option<&Lit>) {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => (false, Some(lit)),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit { lit, .. }) => (true, Some(lit)),
            _ => (true, None),
        },
        Expr::Group(group) => unwrap_negation(&group.expr),
        _ => (false, None),
    }
}

fn string_literal(expr: &Expr) -> Option<&syn::LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s),
        Expr::Group(group) => string_literal(&group.expr),
        _ => None,
    }
}

/// A duration string with a unit: `"250ms"`, `"2s"`, `"1m30s"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationArg {
    pub(crate) value: Duration,
    pub(crate) span: Span,
}

impl FromMeta for DurationArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let Some(text) = string_literal(expr) else {
            return Err(Error::custom(
                "expected a duration string with a unit, e.g. `\"250ms\"`, `\"2s\"` or `\"1m30s\"`",
            )
            .with_span(expr));
        };
        parse_duration(&text.value())
            .map(|value| DurationArg {
                value,
                span: text.span(),
            })
            .map_err(|reason| Error::custom(reason).with_span(text))
    }
}

/// Durations are parsed by humantime (the parser of `systemd`-style spans
/// many Rust tools accept), with a message that states the fix.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "duration `\"{text}\"` has no unit; write e.g. `\"{trimmed}ms\"` or `\"{trimmed}s\"`"
        ));
    }
    humantime::parse_duration(trimmed).map_err(|_| {
        format!("`\"{text}\"` is not a duration; write a number with a unit, e.g. `\"250ms\"`, `\"2s\"` or `\"1m30s\"`")
    })
}

/// The growth of the delay between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackoffKind {
    Exponential,
    Fixed,
    Linear,
    Fibonacci,
    None,
}

impl BackoffKind {
    const NAMES: &[(&str, BackoffKind)] = &[
        ("exponential", BackoffKind::Exponential),
        ("fixed", BackoffKind::Fixed),
        ("linear", BackoffKind::Linear),
        ("fibonacci", BackoffKind::Fibonacci),
        ("none", BackoffKind::None),
    ];
}

impl FromMeta for BackoffKind {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let Some(text) = string_literal(expr) else {
            return Err(Error::custom(
                "expected a backoff name: `\"exponential\"`, `\"fixed\"`, `\"linear\"`, `\"fibonacci\"` or `\"none\"`",
            )
            .with_span(expr));
        };
        let name = text.value();
        Self::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| {
                Error::custom(format!(
                    "unknown backoff `\"{name}\"`; {}",
                    did_you_mean(&name, Self::NAMES.iter().map(|(n, _)| *n)).unwrap_or_else(
                        || format!(
                            "expected one of {}",
                            quoted_list(Self::NAMES.iter().map(|(n, _)| *n))
                        )
                    ),
                ))
                .with_span(text)
            })
    }
}

/// A jitter name, or a proportional factor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JitterArg {
    pub(crate) kind: JitterKind,
    pub(crate) span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum JitterKind {
    None,
    Full,
    Equal,
    Decorrelated,
    Proportional(f64),
}

impl JitterKind {
    const NAMES: &[(&str, JitterKind)] = &[
        ("full", JitterKind::Full),
        ("equal", JitterKind::Equal),
        ("decorrelated", JitterKind::Decorrelated),
        ("none", JitterKind::None),
    ];
}

impl FromMeta for JitterArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        if let Some(text) = string_literal(expr) {
            let name = text.value();
            return JitterKind::NAMES
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, kind)| JitterArg {
                    kind: *kind,
                    span: text.span(),
                })
                .ok_or_else(|| {
                    Error::custom(format!(
                        "unknown jitter `\"{name}\"`; {}",
                        did_you_mean(&name, JitterKind::NAMES.iter().map(|(n, _)| *n))
                            .unwrap_or_else(|| format!(
                                "expected one of {}, or a factor in (0, 1] such as `0.2`",
                                quoted_list(JitterKind::NAMES.iter().map(|(n, _)| *n))
                            )),
                    ))
                    .with_span(text)
                });
        }
        match Float::from_expr(expr) {
            Ok(factor) => Ok(JitterArg {
                kind: JitterKind::Proportional(factor.value),
                span: factor.span,
            }),
            Err(_) => Err(Error::custom(
                "expected a jitter name (`\"full\"`, `\"equal\"`, `\"decorrelated\"`, `\"none\"`) or a factor in (0, 1] such as `0.2`",
            )
            .with_span(expr)),
        }
    }
}

/// `retry_on = [Io, Timeout, other::Error::Variant]`.
#[derive(Debug, Clone)]
pub(crate) struct VariantList {
    pub(crate) variants: Vec<syn::Path>,
    pub(crate) span: Span,
}

impl FromMeta for VariantList {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let Expr::Array(array) = expr else {
            return Err(
                Error::custom("expected a list of error variants, e.g. `[Io, Timeout]`")
                    .with_span(expr),
            );
        };
        let mut errors = Error::accumulator();
        let variants = array
            .elems
            .iter()
            .filter_map(|elem| match elem {
                Expr::Path(path) if path.qself.is_none() => Some(path.path.clone()),
                other => {
                    errors.push(
                        Error::custom(
                            "expected an error variant: a bare name such as `Io`, or a path such as `MyError::Io`",
                        )
                        .with_span(other),
                    );
                    None
                }
            })
            .collect::<Vec<_>>();
        errors.finish_with(VariantList {
            variants,
            span: expr.span(),
        })
    }
}

/// A user expression (closure, path, call): spliced into the function as
/// written and type-checked there, at its own span.
#[derive(Debug, Clone)]
pub(crate) struct UserExpr(pub(crate) Expr);

impl FromMeta for UserExpr {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        Ok(UserExpr(expr.clone()))
    }
}

/// `budget = "off"` or `budget = <expr: &RetryBudget>`.
#[derive(Debug, Clone)]
pub(crate) enum BudgetArg {
    Off,
    Shared(Expr),
}

impl FromMeta for BudgetArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        match string_literal(expr) {
            Some(text) if text.value() == "off" => Ok(BudgetArg::Off),
            Some(text) => Err(Error::custom(format!(
                "unknown budget `{}`; write `budget = \"off\"`, or an expression of type `&RetryBudget` such as `budget = &MY_BUDGET`",
                text.value()
            ))
            .with_span(text)),
            None => Ok(BudgetArg::Shared(expr.clone())),
        }
    }
}

/// `concurrency = N` (one bulkhead for this function) or
/// `concurrency = <expr: &Bulkhead>` (shared).
#[derive(Debug, Clone)]
pub(crate) enum LimitArg {
    Inline(Int),
    Shared(Expr),
}

impl FromMeta for LimitArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        match unwrap_negation(expr) {
            (_, Some(Lit::Int(_))) => Int::from_expr(expr).map(LimitArg::Inline),
            (_, Some(_)) => Err(Error::custom(
                "expected a number of concurrent attempts such as `3`, or an expression of type `&Bulkhead`",
            )
            .with_span(expr)),
            (_, None) => Ok(LimitArg::Shared(expr.clone())),
        }
    }
}

/// `rate_limit = "N/s" | "N/min" | "N/h"` or `rate_limit = <expr: &RateLimiter>`.
#[derive(Debug, Clone)]
pub(crate) enum RateArg {
    Inline(Rate),
    Shared(Expr),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    pub(crate) count: u64,
    pub(crate) per: RatePeriod,
    pub(crate) span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RatePeriod {
    Second,
    Minute,
    Hour,
}

impl FromMeta for RateArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let Some(text) = string_literal(expr) else {
            return Ok(RateArg::Shared(expr.clone()));
        };
        let value = text.value();
        let parsed = value.split_once('/').and_then(|(count, per)| {
            let count = count.trim().parse::<u64>().ok()?;
            let per = match per.trim() {
                "s" | "sec" | "second" => RatePeriod::Second,
                "min" | "m" | "minute" => RatePeriod::Minute,
                "h" | "hour" => RatePeriod::Hour,
                _ => return None,
            };
            Some((count, per))
        });
        match parsed {
            Some((count, per)) => Ok(RateArg::Inline(Rate {
                count,
                per,
                span: text.span(),
            })),
            None => Err(Error::custom(format!(
                "`\"{value}\"` is not a rate; write a count per period (`\"10/s\"`, `\"600/min\"`, `\"1000/h\"`) or a `&RateLimiter`"
            ))
            .with_span(text)),
        }
    }
}

/// `circuit_breaker`, `circuit_breaker(...)` or `circuit_breaker = <expr>`.
#[derive(Debug)]
pub(crate) enum BreakerArg {
    Inline(Box<BreakerArgs>, Span),
    Shared(Expr),
}

impl FromMeta for BreakerArg {
    fn from_meta(item: &syn::Meta) -> darling::Result<Self> {
        match item {
            syn::Meta::Path(path) => Ok(BreakerArg::Inline(Box::default(), path.span())),
            syn::Meta::List(list) => {
                let items = NestedMeta::parse_meta_list(list.tokens.clone())?;
                BreakerArgs::from_list(&items)
                    .map(|args| BreakerArg::Inline(Box::new(args), list.path.span()))
            }
            syn::Meta::NameValue(nv) => Ok(BreakerArg::Shared(nv.value.clone())),
        }
    }
}

/// `did you mean `"x"`?` when a close name exists. Uses
/// the same measure as darling's key suggestions (`strsim`, already in its
/// dependency tree).
fn did_you_mean<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> Option<String> {
    known
        .map(|candidate| (strsim::jaro_winkler(given, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!("did you mean `\"{candidate}\"`?"))
}

fn quoted_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|name| format!("`\"{name}\"`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> darling::Result<Args> {
        let mut errors = Error::accumulator();
        let args = Args::parse(tokens, &mut errors);
        errors.finish_with(args)
    }

    fn messages(tokens: TokenStream) -> Vec<String> {
        match parse(tokens) {
            Ok(_) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn empty_attribute_is_all_defaults() {
        let args = parse(quote!()).unwrap();
        assert!(args.max_attempts.is_none() && args.backoff.is_none() && args.jitter.is_none());
    }

    #[test]
    fn design_card_example_parses() {
        let args = parse(quote!(
            max_attempts = 5,
            backoff = "exponential",
            jitter = "full",
            timeout = "2s",
            concurrency = 3,
            retry_on = [Io, Timeout]
        ))
        .unwrap();
        assert_eq!(args.max_attempts.unwrap().value, 5);
        assert_eq!(*args.backoff.unwrap(), BackoffKind::Exponential);
        assert_eq!(args.jitter.unwrap().kind, JitterKind::Full);
        assert_eq!(args.timeout.unwrap().value, Duration::from_secs(2));
        assert!(matches!(
            args.concurrency,
            Some(LimitArg::Inline(Int { value: 3, .. }))
        ));
        assert_eq!(args.retry_on.unwrap().variants.len(), 2);
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("100").unwrap_err().contains("has no unit"));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("is not a duration")
        );
    }

    #[test]
    fn unknown_key_suggests_the_close_one() {
        let errors = messages(quote!(max_attemps = 3));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("max_attemps") && errors[0].contains("max_attempts"),
            "{errors:?}"
        );
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let errors = messages(quote!(
            backoff = "expo",
            jitter = "fulll",
            timeout = "2",
            max_attempts = "three",
            bogus = 1
        ));
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn good_keys_survive_a_bad_one() {
        let mut errors = Error::accumulator();
        let args = Args::parse(
            quote!(max_attempts = 4, rate_limit = "ten/s", burst = 3),
            &mut errors,
        );
        assert_eq!(errors.into_inner().len(), 1);
        assert_eq!(args.max_attempts.unwrap().value, 4);
        assert_eq!(args.burst.unwrap().value, 3);
        assert!(args.failed.contains("rate_limit"));
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let errors = messages(quote!(timeout = "1s", timeout = "2s"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_lowercase().contains("duplicate"), "{errors:?}");
    }

    #[test]
    fn unknown_backoff_suggests_a_name() {
        let errors = messages(quote!(backoff = "exponental"));
        assert!(
            errors[0].contains("; did you mean `\"exponential\"`?"),
            "{errors:?}"
        );
    }

    #[test]
    fn negative_numbers_survive_parsing_for_validation() {
        let args = parse(quote!(max_attempts = -1, multiplier = -2.5)).unwrap();
        assert_eq!(args.max_attempts.unwrap().value, -1);
        assert_eq!(args.multiplier.unwrap().value, -2.5);
    }

    #[test]
    fn jitter_accepts_a_factor() {
        let args = parse(quote!(jitter = 0.25)).unwrap();
        assert_eq!(args.jitter.unwrap().kind, JitterKind::Proportional(0.25));
    }

    #[test]
    fn retry_on_takes_bare_names_and_paths() {
        let list = parse(quote!(retry_on = [Io, crate::Error::Timeout]))
            .unwrap()
            .retry_on
            .unwrap();
        assert_eq!(list.variants[0].segments.len(), 1);
        assert_eq!(list.variants[1].segments.len(), 3);
        assert_eq!(messages(quote!(retry_on = Io)).len(), 1);
    }

    #[test]
    fn budget_is_off_or_an_expression() {
        assert!(matches!(
            parse(quote!(budget = "off")).unwrap().budget,
            Some(BudgetArg::Off)
        ));
        assert!(matches!(
            parse(quote!(budget = &BUDGET)).unwrap().budget,
            Some(BudgetArg::Shared(_))
        ));
        assert_eq!(messages(quote!(budget = "none")).len(), 1);
    }

    #[test]
    fn rates_parse_per_period() {
        let Some(RateArg::Inline(rate)) = parse(quote!(rate_limit = "600/min")).unwrap().rate_limit
        else {
            panic!("expected an inline rate");
        };
        assert_eq!((rate.count, rate.per), (600, RatePeriod::Minute));
        assert!(messages(quote!(rate_limit = "ten per second"))[0].contains("is not a rate"));
    }

    #[test]
    fn circuit_breaker_word_list_and_expression() {
        let word = parse(quote!(circuit_breaker)).unwrap().circuit_breaker;
        assert!(matches!(word, Some(BreakerArg::Inline(..))));
        let list = parse(quote!(circuit_breaker(
            failure_threshold = 3,
            open_for = "10s"
        )))
        .unwrap()
        .circuit_breaker;
        let Some(BreakerArg::Inline(args, _)) = list else {
            panic!("expected inline")
        };
        assert_eq!(args.failure_threshold.unwrap().value, 3);
        let shared = parse(quote!(circuit_breaker = &BREAKER))
            .unwrap()
            .circuit_breaker;
        assert!(matches!(shared, Some(BreakerArg::Shared(_))));
        let errors = messages(quote!(circuit_breaker(failure_treshold = 3)));
        assert!(errors[0].contains("failure_threshold"), "{errors:?}");
    }

    #[test]
    fn crate_path_accepts_a_string() {
        let args = parse(quote!(crate = "my_steadfast")).unwrap();
        assert!(args.krate.unwrap().is_ident("my_steadfast"));
    }

    #[test]
    fn suggestions_only_for_close_names() {
        let names = ["full", "equal", "decorrelated", "none"];
        assert!(
            did_you_mean("fulll", names.into_iter())
                .unwrap()
                .contains("full")
        );
        assert_eq!(did_you_mean("xyz", names.into_iter()), None);
    }
}
