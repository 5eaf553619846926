//! The value of one key, typed: each kind of value parses itself from the
//! tokens after `key =` and words its own errors, naming the key, in
//! rustc's style. Rules that relate several keys live in `validate/` and
//! `retry_rules::check`.

use std::fmt;
use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use retry_rules::{BackoffKind, HedgeAfter, Jitter, Written};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Lit, Meta, UnOp};

/// Where a value was written: a key, possibly inside `circuit_breaker(...)`.
#[derive(Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) name: &'a str,
    pub(crate) within: Option<&'a str>,
}

impl fmt::Display for Key<'_> {
    /// `` `window` in `circuit_breaker(...)` ``, or `` `timeout` ``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.name)?;
        match self.within {
            Some(outer) => write!(f, " in `{outer}(...)`"),
            None => Ok(()),
        }
    }
}

/// An error at `tokens`, worded by the caller.
pub(crate) fn error(tokens: impl ToTokens, message: impl fmt::Display) -> syn::Error {
    syn::Error::new_spanned(tokens, message)
}

/// A kind of value a key takes.
pub(crate) trait Value: Sized {
    /// A value of this kind, for the tests that go over every key.
    #[cfg(test)]
    fn sample() -> TokenStream;

    /// Parses `key = <expr>`.
    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self>;

    /// Parses the key as written: most keys need `key = value`.
    fn from_meta(key: Key<'_>, meta: &Meta) -> syn::Result<Self> {
        match meta {
            Meta::NameValue(nv) => Self::from_expr(key, &nv.value),
            Meta::Path(_) | Meta::List(_) => Err(error(
                meta,
                format!("{key} needs a value, e.g. `{} = ...`", key.name),
            )),
        }
    }
}

/// An integer literal, possibly negative so that validation can say why a
/// negative value makes no sense rather than "unexpected expression".
#[derive(Clone, Copy)]
pub(crate) struct Int {
    pub(crate) value: i128,
    pub(crate) span: Span,
}

impl Value for Int {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!(1)
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let (negative, lit) = unwrap_negation(expr);
        let Some(Lit::Int(int)) = lit else {
            return Err(error(
                expr,
                format!("invalid {key}: expected an integer, e.g. `3`"),
            ));
        };
        let value: i128 = int.base10_parse().map_err(|_| {
            error(
                expr,
                format!("invalid {key}: integer too large for this key"),
            )
        })?;
        Ok(Int {
            value: if negative { -value } else { value },
            span: expr.span(),
        })
    }
}

/// A float (or integer) literal, possibly negative.
#[derive(Clone, Copy)]
pub(crate) struct Float {
    pub(crate) value: f64,
    pub(crate) span: Span,
}

impl Value for Float {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!(2.0)
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
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
            None => Err(error(
                expr,
                format!("invalid {key}: expected a number, e.g. `1.5`"),
            )),
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

/// `window = 20` (the last calls) or `window = "10s"` (the last seconds)
/// in `circuit_breaker(...)`.
#[derive(Clone, Copy)]
pub(crate) enum WindowArg {
    Calls(Int),
    Time(DurationArg),
}

impl Value for WindowArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!(20)
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        if string_literal(expr).is_some() {
            DurationArg::from_expr(key, expr).map(WindowArg::Time)
        } else {
            Int::from_expr(key, expr).map_err(|_| {
                error(
                    expr,
                    format!("invalid {key}: expected a number of calls such as `20`, or a duration such as `\"10s\"`"),
                )
            }).map(WindowArg::Calls)
        }
    }
}

/// `name = "billing.charge"`.
#[derive(Clone)]
pub(crate) struct Name(pub(crate) String);

impl Value for Name {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("x")
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        match string_literal(expr) {
            Some(text) => Ok(Name(text.value())),
            None => Err(error(
                expr,
                format!(
                    "{key} expects a string literal, e.g. `{} = \"billing.charge\"`",
                    key.name
                ),
            )),
        }
    }
}

/// `crate = "my_steadfast"` (or a bare path): where the runtime is.
pub(crate) struct CratePath(pub(crate) syn::Path);

impl Value for CratePath {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("x")
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let path = match (string_literal(expr), expr) {
            (Some(text), _) => text.parse::<syn::Path>().ok(),
            (None, Expr::Path(path)) if path.qself.is_none() => Some(path.path.clone()),
            _ => None,
        };
        path.map(CratePath).ok_or_else(|| {
            error(
                expr,
                format!("invalid {key}: expected a path, e.g. `crate = \"my_steadfast\"`"),
            )
        })
    }
}

/// A duration string with a unit: `"250ms"`, `"2s"`, `"1m30s"`.
#[derive(Clone, Copy)]
pub(crate) struct DurationArg {
    pub(crate) value: Duration,
    pub(crate) span: Span,
}

impl Value for DurationArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("1s")
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let Some(text) = string_literal(expr) else {
            return Err(error(
                expr,
                format!(
                    "invalid {key}: expected a duration string with a unit, e.g. `\"250ms\"`, `\"2s\"` or `\"1m30s\"`"
                ),
            ));
        };
        retry_rules::duration(&text.value())
            .map(|value| DurationArg {
                value,
                span: text.span(),
            })
            .map_err(|reason| error(text, format!("invalid {key}: {reason}")))
    }
}

/// `after` in `hedge(...)`: a latency quantile (`"p95"`) or a duration.
#[derive(Clone, Copy)]
pub(crate) struct HedgeAfterArg {
    pub(crate) value: HedgeAfter,
    pub(crate) span: Span,
}

impl Value for HedgeAfterArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("p95")
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let Some(text) = string_literal(expr) else {
            return Err(error(
                expr,
                format!(
                    "invalid {key}: expected a latency quantile such as `\"p95\"` or a duration such as `\"40ms\"`"
                ),
            ));
        };
        retry_rules::hedge_after(&text.value())
            .map(|value| HedgeAfterArg {
                value,
                span: text.span(),
            })
            .map_err(|reason| error(text, format!("invalid {key}: {reason}")))
    }
}

/// A string naming one of `names`, with "did you mean" for a near miss.
fn named<T: Copy>(
    expr: &Expr,
    what: &str,
    names: &[(&str, T)],
    otherwise: &str,
) -> Option<syn::Result<T>> {
    let text = string_literal(expr)?;
    Some(retry_rules::one_of(what, &text.value(), names, otherwise).map_err(|e| error(text, e)))
}

/// A `backoff` name.
#[derive(Clone, Copy)]
pub(crate) struct BackoffArg {
    pub(crate) kind: BackoffKind,
    pub(crate) span: Span,
}

impl Value for BackoffArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("fixed")
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let names = BackoffKind::NAMES;
        named(expr, "backoff", names, "").map_or_else(
            || {
                Err(error(
                    expr,
                    format!(
                        "invalid {key}: expected a backoff name: {}",
                        retry_rules::quoted_list(names.iter().map(|(n, _)| *n))
                    ),
                ))
            },
            |kind| {
                kind.map(|kind| BackoffArg {
                    kind,
                    span: expr.span(),
                })
            },
        )
    }
}

/// A jitter name, or a proportional factor.
#[derive(Clone, Copy)]
pub(crate) struct JitterArg {
    pub(crate) kind: Jitter,
    pub(crate) span: Span,
}

impl Value for JitterArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("none")
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let or_factor = Jitter::OR_FACTOR;
        if let Some(kind) = named(expr, "jitter", Jitter::NAMES, or_factor) {
            return kind.map(|kind| JitterArg {
                kind,
                span: expr.span(),
            });
        }
        match Float::from_expr(key, expr) {
            Ok(factor) => Ok(JitterArg {
                kind: Jitter::Proportional(factor.value),
                span: factor.span,
            }),
            Err(_) => Err(error(
                expr,
                format!(
                    "invalid {key}: expected a jitter name ({}){or_factor}",
                    retry_rules::quoted_list(Jitter::NAMES.iter().map(|(n, _)| *n))
                ),
            )),
        }
    }
}

/// The value of a key that the rules read (a field of `retry_rules::Values`
/// of the key's name) and that sets the `Settings` builder of that name:
/// declaring such a key in `keys!` with `=> Setting` is all it takes for
/// both.
pub(crate) trait Setting {
    /// The value as the rules read it.
    type Read: Copy;

    /// The value, and where it was written.
    fn read(&self) -> (Self::Read, Span);

    /// The builder's argument, once the rules passed.
    fn argument(&self, krate: &syn::Path) -> TokenStream;

    /// What the rules see of the key: absent, unreadable, or the value.
    fn written(value: Option<&Self>, failed: bool) -> Written<Self::Read, Span> {
        match value {
            Some(value) => {
                let (read, at) = value.read();
                Written::Value(read, at)
            }
            None if failed => Written::Unreadable,
            None => Written::Absent,
        }
    }
}

impl Setting for Int {
    type Read = i128;

    fn read(&self) -> (i128, Span) {
        (self.value, self.span)
    }

    /// A `u32`: the rules accepted it as a count.
    fn argument(&self, _: &syn::Path) -> TokenStream {
        let count = u32::try_from(self.value).unwrap_or(u32::MAX);
        quote::quote!(#count)
    }
}

impl Setting for Float {
    type Read = f64;

    fn read(&self) -> (f64, Span) {
        (self.value, self.span)
    }

    fn argument(&self, _: &syn::Path) -> TokenStream {
        self.value.to_token_stream()
    }
}

impl Setting for DurationArg {
    type Read = Duration;

    fn read(&self) -> (Duration, Span) {
        (self.value, self.span)
    }

    fn argument(&self, _: &syn::Path) -> TokenStream {
        duration(self.value)
    }
}

impl Setting for BackoffArg {
    type Read = BackoffKind;

    fn read(&self) -> (BackoffKind, Span) {
        (self.kind, self.span)
    }

    /// `__private::BackoffKind::Fixed`: the runtime computes with the kind
    /// the rules read, so its variant is named by its own (derived) `Debug`.
    fn argument(&self, krate: &syn::Path) -> TokenStream {
        let variant = syn::Ident::new(&format!("{:?}", self.kind), Span::call_site());
        quote::quote!(#krate::__private::BackoffKind::#variant)
    }
}

impl Setting for JitterArg {
    type Read = Jitter;

    fn read(&self) -> (Jitter, Span) {
        (self.kind, self.span)
    }

    /// `__private::Jitter::Full` or `__private::Jitter::Proportional(0.2)`.
    fn argument(&self, krate: &syn::Path) -> TokenStream {
        let jitter = match self.kind {
            Jitter::Proportional(f) => quote::quote!(Proportional(#f)),
            named => syn::Ident::new(&format!("{named:?}"), Span::call_site()).to_token_stream(),
        };
        quote::quote!(#krate::__private::Jitter::#jitter)
    }
}

/// The rules' view of a parsed argument list and the `Settings` builders it
/// sets, for the keys declared `=> Setting` (implemented by `keys!`).
pub(crate) trait Settings {
    /// The rules' view of the keys.
    fn values(&self) -> retry_rules::Values<Span>;

    /// `.key(value)` for each key written.
    fn settings(&self, krate: &syn::Path) -> Vec<TokenStream>;
}

/// `retry_on = [Io, Timeout, other::Error::Variant]`.
#[derive(Clone)]
pub(crate) struct VariantList {
    pub(crate) variants: Vec<syn::Path>,
    pub(crate) span: Span,
}

impl Value for VariantList {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!([Io])
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let Expr::Array(array) = expr else {
            return Err(error(
                expr,
                format!("invalid {key}: expected a list of error variants, e.g. `[Io, Timeout]`"),
            ));
        };
        let mut errors = Vec::new();
        let mut variants = Vec::new();
        for elem in &array.elems {
            match elem {
                Expr::Path(path) if path.qself.is_none() => variants.push(path.path.clone()),
                other => errors.push(error(
                    other,
                    format!("invalid {key}: expected an error variant: a bare name such as `Io`, or a path such as `MyError::Io`"),
                )),
            }
        }
        match combine(errors) {
            Some(errors) => Err(errors),
            None => Ok(VariantList {
                variants,
                span: expr.span(),
            }),
        }
    }
}

/// `attempt = a`: the name each attempt's `Attempt` is bound to.
#[derive(Clone)]
pub(crate) struct Binding(pub(crate) syn::Ident);

impl Value for Binding {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!(attempt)
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        match expr {
            Expr::Path(path) if path.qself.is_none() => match path.path.get_ident() {
                Some(ident) => Ok(Binding(ident.clone())),
                None => Err(binding_expected(key, expr)),
            },
            _ => Err(binding_expected(key, expr)),
        }
    }
}

fn binding_expected(key: Key<'_>, expr: &Expr) -> syn::Error {
    error(
        expr,
        format!(
            "invalid {key}: expected a name for the attempt, e.g. `{} = attempt`, then `attempt.number()` in the body",
            key.name
        ),
    )
}

/// A user expression (closure, path, call): spliced into the function as
/// written and type-checked there, at its own span.
#[derive(Clone)]
pub(crate) struct UserExpr(pub(crate) Expr);

impl Value for UserExpr {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!(|_| true)
    }

    fn from_expr(_: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        Ok(UserExpr(expr.clone()))
    }
}

/// `budget = "off"` or `budget = <expr: &RetryBudget>`.
#[derive(Clone)]
pub(crate) enum BudgetArg {
    Off,
    Shared(Expr),
}

impl Value for BudgetArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("off")
    }

    fn from_expr(_: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        match string_literal(expr) {
            Some(text) => retry_rules::budget_off(&text.value())
                .map(|()| BudgetArg::Off)
                .map_err(|message| error(text, message)),
            None => Ok(BudgetArg::Shared(expr.clone())),
        }
    }
}

/// `concurrency = N` (one bulkhead for this function),
/// `concurrency = "adaptive"` (one adaptive limit for this function) or
/// `concurrency = <expr: &impl ConcurrencyLimit>` (shared).
#[derive(Clone)]
pub(crate) enum LimitArg {
    Inline(Int),
    Adaptive,
    Shared(Expr),
}

impl Value for LimitArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!(1)
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        if let Some(text) = string_literal(expr) {
            return retry_rules::concurrency_text(&text.value())
                .map(|()| LimitArg::Adaptive)
                .map_err(|message| error(text, message));
        }
        match unwrap_negation(expr) {
            (_, Some(Lit::Int(_))) => Int::from_expr(key, expr).map(LimitArg::Inline),
            (_, Some(_)) => Err(error(
                expr,
                format!(
                    "invalid {key}: expected a number of concurrent attempts such as `3`, `\"adaptive\"`, or an expression of type `&Bulkhead` or `&AdaptiveLimit`"
                ),
            )),
            (_, None) => Ok(LimitArg::Shared(expr.clone())),
        }
    }
}

/// `rate_limit = "N/s" | "N/min" | "N/h" | "N/<duration>"` or
/// `rate_limit = <expr: &RateLimiter>`.
#[derive(Clone)]
pub(crate) enum RateArg {
    Inline(Rate),
    Shared(Expr),
}

#[derive(Clone, Copy)]
pub(crate) struct Rate {
    pub(crate) count: u64,
    pub(crate) period: Duration,
    pub(crate) span: Span,
}

impl Value for RateArg {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!("1/s")
    }

    fn from_expr(key: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        let Some(text) = string_literal(expr) else {
            return Ok(RateArg::Shared(expr.clone()));
        };
        let value = text.value();
        let parsed = value.split_once('/').and_then(|(count, per)| {
            let count = count.trim().parse::<u64>().ok()?;
            let period = match per.trim() {
                "s" | "sec" | "second" => Duration::from_secs(1),
                "min" | "m" | "minute" => Duration::from_secs(60),
                "h" | "hour" => Duration::from_secs(3600),
                // Any period with its length: `"5/250ms"`, `"100/10s"`.
                other => retry_rules::duration(other).ok().filter(|d| !d.is_zero())?,
            };
            Some((count, period))
        });
        match parsed {
            Some((count, period)) => Ok(RateArg::Inline(Rate {
                count,
                period,
                span: text.span(),
            })),
            None => Err(error(
                text,
                format!(
                    "invalid {key}: `\"{value}\"` is not a rate; write a count per period (`\"10/s\"`, `\"600/min\"`, `\"5/250ms\"`) or a `&RateLimiter`"
                ),
            )),
        }
    }
}

/// All of `errors` as one, or `None` if there are none.
pub(crate) fn combine(errors: impl IntoIterator<Item = syn::Error>) -> Option<syn::Error> {
    errors.into_iter().reduce(|mut all, next| {
        all.combine(next);
        all
    })
}

/// A `Duration` constant, without naming the runtime: how a duration value
/// is written into an expansion (here, beside the values, so that the
/// expansion depends on them and not the other way round).
pub(crate) fn duration(d: std::time::Duration) -> TokenStream {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    quote::quote!(::core::time::Duration::new(#secs, #nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    const KEY: Key<'static> = Key {
        name: "k",
        within: None,
    };

    #[test]
    fn keys_name_their_enclosing_list() {
        let nested = Key {
            name: "window",
            within: Some("circuit_breaker"),
        };
        assert_eq!(nested.to_string(), "`window` in `circuit_breaker(...)`");
        assert_eq!(KEY.to_string(), "`k`");
    }

    #[test]
    fn unknown_names_list_the_known_ones_when_none_is_close() {
        let Err(error) = BackoffArg::from_expr(KEY, &parse_quote!("zzz")) else {
            panic!("not a backoff");
        };
        assert!(
            error
                .to_string()
                .starts_with("unknown backoff `\"zzz\"`; expected one of `\"exponential\"`"),
            "{error}"
        );
    }

    #[test]
    fn rates_parse_per_period() {
        let Ok(RateArg::Inline(rate)) = RateArg::from_expr(KEY, &parse_quote!("600/min")) else {
            panic!("expected an inline rate");
        };
        assert_eq!((rate.count, rate.period), (600, Duration::from_secs(60)));
        let Err(error) = RateArg::from_expr(KEY, &parse_quote!("ten per second")) else {
            panic!("not a rate");
        };
        assert!(error.to_string().contains("is not a rate"), "{error}");
    }

    #[test]
    fn any_period_with_its_length_is_a_rate() {
        for (text, count, period) in [
            ("5/250ms", 5, Duration::from_millis(250)),
            ("100/10s", 100, Duration::from_secs(10)),
            ("1/1m30s", 1, Duration::from_secs(90)),
        ] {
            let Ok(RateArg::Inline(rate)) = RateArg::from_expr(KEY, &parse_quote!(#text)) else {
                panic!("{text} is a rate");
            };
            assert_eq!((rate.count, rate.period), (count, period), "{text}");
        }
        for not_a_rate in ["5/0ms", "5/250", "5/-1s"] {
            assert!(
                RateArg::from_expr(KEY, &parse_quote!(#not_a_rate)).is_err(),
                "{not_a_rate}"
            );
        }
    }

    #[test]
    fn crate_path_accepts_a_string_or_a_path() {
        let CratePath(path) = CratePath::from_expr(KEY, &parse_quote!("my_steadfast")).unwrap();
        assert!(path.is_ident("my_steadfast"));
        let CratePath(path) = CratePath::from_expr(KEY, &parse_quote!(renamed::inner)).unwrap();
        assert_eq!(path.segments.len(), 2);
        assert!(CratePath::from_expr(KEY, &parse_quote!(5)).is_err());
    }

    #[test]
    fn numbers_keep_their_sign_and_integers_are_numbers_too() {
        let negative: Expr = syn::parse_str("-2.5").unwrap();
        assert_eq!(
            Float::from_expr(KEY, &negative).ok().map(|f| f.value),
            Some(-2.5)
        );
        let whole: Expr = syn::parse_str("2").unwrap();
        assert_eq!(
            Float::from_expr(KEY, &whole).ok().map(|f| f.value),
            Some(2.0)
        );
        let negative: Expr = syn::parse_str("-3").unwrap();
        assert_eq!(
            Int::from_expr(KEY, &negative).ok().map(|n| n.value),
            Some(-3)
        );
    }

    #[test]
    fn values_inside_invisible_groups_parse_as_written() {
        // What a `macro_rules!` substitution hands over: a None-delimited group.
        let group = |inner: Expr| {
            Expr::Group(syn::ExprGroup {
                attrs: Vec::new(),
                group_token: Default::default(),
                expr: Box::new(inner),
            })
        };
        let number = group(syn::parse_str("-4").unwrap());
        assert_eq!(Int::from_expr(KEY, &number).ok().map(|n| n.value), Some(-4));
        let text = group(syn::parse_str("\"250ms\"").unwrap());
        let duration = DurationArg::from_expr(KEY, &text).ok().map(|d| d.value);
        assert_eq!(duration, Some(Duration::from_millis(250)));
    }

    #[test]
    fn qualified_paths_are_not_names_paths_or_variants() {
        let qualified: Expr = syn::parse_str("<T as Trait>::Name").unwrap();
        assert!(CratePath::from_expr(KEY, &qualified).is_err());
        assert!(Binding::from_expr(KEY, &qualified).is_err());
        let list: Expr = syn::parse_str("[<T as Trait>::Io]").unwrap();
        assert!(VariantList::from_expr(KEY, &list).is_err());
        let name: Expr = syn::parse_str("attempt").unwrap();
        assert_eq!(
            Binding::from_expr(KEY, &name)
                .ok()
                .map(|b| b.0.to_string())
                .as_deref(),
            Some("attempt")
        );
    }
}
