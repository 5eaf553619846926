//! Parsing `#[resilient(...)]`: each key's value is turned into a typed,
//! spanned value (`values.rs`). Unknown and duplicate keys, and values of
//! the wrong shape, are rejected here, all at once; rules that relate
//! several keys or the function live in `validate/` (and, for values, in
//! `retry_rules::check`).
//!
//! The keys are declared once, as the fields of [`Args`], [`BreakerArgs`]
//! and [`HedgeArgs`]: the list of key names, the dispatch from a name to its
//! field and the per-key "failed to parse" flags are generated from that
//! declaration, and for a key marked `=> Setting` its place in the rules'
//! `Values` and its `Settings` builder call, so a key cannot be half-added. (darling's `FromMeta` derive
//! does the dispatch too, but words its own errors in English that would
//! have to be rewritten by substring; these are ours.)

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Meta};

use crate::values::{
    BackoffArg, Binding, BudgetArg, CratePath, DurationArg, Float, HedgeAfterArg, Int, JitterArg,
    Key, LimitArg, Name, RateArg, Setting, Settings, UserExpr, Value, VariantList, WindowArg,
    combine, error,
};

/// Declares a struct whose fields are keys (each an `Option` of its value
/// type), a struct of one `bool` per key (its value was written but did not
/// parse), the list of key names, and the parser that fills them.
macro_rules! keys {
    (
        $(#[$meta:meta])*
        struct $name:ident, failed: $failed:ident {
            $($field:ident $(as $key:literal)?: $ty:ty $(=> $setting:ident)?,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        pub(crate) struct $name {
            $(pub(crate) $field: Option<$ty>,)*
            /// Rules involving a key whose value did not parse are skipped,
            /// so one typo does not cause a cascade of wrong errors.
            pub(crate) failed: $failed,
        }

        #[doc = concat!("Which keys of [`", stringify!($name), "`] were written but did not parse.")]
        #[derive(Default)]
        pub(crate) struct $failed {
            $(pub(crate) $field: bool,)*
        }

        impl Keys for $name {
            const KEYS: &[&str] = &[$(keys!(@name $field $($key)?)),*];

            fn set(&mut self, key: Key<'_>, meta: &Meta) -> Option<syn::Result<()>> {
                $(
                    if key.name == keys!(@name $field $($key)?) {
                        let value = <$ty as Value>::from_meta(key, meta);
                        self.failed.$field = value.is_err();
                        return Some(value.map(|value| self.$field = Some(value)));
                    }
                )*
                None
            }
        }

        impl $name {

            /// `key = <a value of its kind>`, for the tests that go over
            /// every key.
            #[cfg(test)]
            pub(crate) fn sample(key: &str) -> TokenStream {
                $(
                    if key == keys!(@name $field $($key)?) {
                        let path = syn::parse_str::<syn::Path>(key).unwrap();
                        let value = <$ty as Value>::sample();
                        return quote::quote!(#path = #value);
                    }
                )*
                panic!("no key `{key}`")
            }
        }

        // A struct without `=> Setting` keys leaves these empty.
        #[allow(unused_mut, unused_variables)]
        impl Settings for $name {
            fn values(&self) -> retry_rules::Values<Span> {
                let mut values = retry_rules::Values::default();
                $($(
                    values.$field =
                        <$ty as $setting>::written(self.$field.as_ref(), self.failed.$field);
                )?)*
                values
            }

            fn settings(&self, krate: &syn::Path) -> Vec<TokenStream> {
                let mut builders = Vec::new();
                $($(
                    if let Some(value) = &self.$field {
                        let builder = syn::Ident::new(stringify!($field), Span::call_site());
                        let argument = <$ty as $setting>::argument(value, krate);
                        builders.push(quote::quote!(.#builder(#argument)));
                    }
                )?)*
                builders
            }
        }
    };
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $key:literal) => { $key };
}

keys! {
    /// The attribute's arguments, as written. A key marked `=> Setting` is
    /// a value the rules read (the field of `retry_rules::Values` of its
    /// name) and sets the `Settings` builder of its name: nothing else in
    /// the macro names it.
    struct Args, failed: ArgsFailed {
        max_attempts: Int => Setting,
        backoff: BackoffArg => Setting,
        base_delay: DurationArg => Setting,
        max_delay: DurationArg => Setting,
        multiplier: Float => Setting,
        jitter: JitterArg => Setting,
        timeout: DurationArg => Setting,
        deadline: DurationArg => Setting,
        retry_on: VariantList,
        no_retry_on: VariantList,
        retry_if: UserExpr,
        breaker_if: UserExpr,
        retry_after: UserExpr,
        budget: BudgetArg,
        concurrency: LimitArg,
        rate_limit: RateArg,
        burst: Int,
        max_wait: DurationArg => Setting,
        circuit_breaker: BreakerArg,
        hedge: HedgeArg,
        on_retry: UserExpr,
        fallback: UserExpr,
        name: Name,
        attempt: Binding,
        krate as "crate": CratePath,
    }
}

keys! {
    /// The inline `circuit_breaker(...)` keys.
    struct BreakerArgs, failed: BreakerArgsFailed {
        failure_threshold: Int,
        failure_rate: Float,
        window: WindowArg,
        min_calls: Int,
        open_for: DurationArg,
        half_open_probes: Int,
        slow_call: DurationArg,
        slow_call_rate: Float,
        adaptive_throttling: Float,
        key: UserExpr,
    }
}

keys! {
    /// The inline `hedge(...)` keys.
    struct HedgeArgs, failed: HedgeArgsFailed {
        after: HedgeAfterArg,
        max_hedges: Int,
        max_extra_load: Float,
    }
}

impl Args {
    /// Input:  the tokens inside `#[resilient(...)]`.
    /// Output: every key that parsed, and an error for every one that did
    ///         not (unknown, duplicate, or a bad value), in the order
    ///         written.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Vec<syn::Error>) -> Self {
        let mut args = Args::default();
        match parse_list(tokens, None, |key, meta| args.set(key, meta), Args::KEYS) {
            Ok(()) => {}
            Err(found) => errors.extend(found),
        }
        args
    }
}

/// A struct of keys declared by `keys!`: its key names, and how a key's
/// value is set from what was written.
pub(crate) trait Keys: Default {
    /// Every key, as written in the attribute.
    const KEYS: &[&str];

    /// Parses `meta` as the value of the key it names; `None` if there is
    /// no such key.
    fn set(&mut self, key: Key<'_>, meta: &Meta) -> Option<syn::Result<()>>;
}

/// A key that is a word, a list of keys of its own (`key(...)`, this call
/// site's instance) or an expression (`key = <expr>`, a shared one):
/// `circuit_breaker` and `hedge`.
pub(crate) enum Nested<A> {
    Inline(Box<A>, Span),
    Shared(Expr),
}

/// `circuit_breaker`, `circuit_breaker(...)` or `circuit_breaker = <expr>`.
pub(crate) type BreakerArg = Nested<BreakerArgs>;

/// `hedge`, `hedge(...)` (this call site's own, with the defaults for the
/// keys not written) or `hedge = <expr>` (a `&'static Hedge` shared with
/// other sites: its latency estimate and its budget).
pub(crate) type HedgeArg = Nested<HedgeArgs>;

impl<A: Keys> Value for Nested<A> {
    #[cfg(test)]
    fn sample() -> TokenStream {
        quote::quote!(&SHARED)
    }

    fn from_expr(_: Key<'_>, expr: &Expr) -> syn::Result<Self> {
        Ok(Nested::Shared(expr.clone()))
    }

    fn from_meta(key: Key<'_>, meta: &Meta) -> syn::Result<Self> {
        match meta {
            Meta::Path(path) => Ok(Nested::Inline(Box::default(), path.span())),
            Meta::List(list) => {
                let mut args = A::default();
                parse_list(
                    list.tokens.clone(),
                    Some(key.name),
                    |key, meta| args.set(key, meta),
                    A::KEYS,
                )
                .map_err(|errors| combine(errors).expect("an error was found"))?;
                Ok(Nested::Inline(Box::new(args), list.path.span()))
            }
            Meta::NameValue(nv) => Self::from_expr(key, &nv.value),
        }
    }
}

/// Parses `key = value, key(...), key, ...`, handing each item to `set`,
/// which answers `None` for an unknown key.
fn parse_list(
    tokens: TokenStream,
    within: Option<&str>,
    mut set: impl FnMut(Key<'_>, &Meta) -> Option<syn::Result<()>>,
    known: &[&str],
) -> Result<(), Vec<syn::Error>> {
    let items = Punctuated::<Meta, syn::Token![,]>::parse_terminated
        .parse2(tokens)
        .map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for meta in &items {
        let path = meta.path();
        let name = quote::quote!(#path).to_string().replace(' ', "");
        let key = Key {
            name: &name,
            within,
        };
        if seen.contains(&name) {
            errors.push(error(path, format!("duplicate key `{name}`")));
            continue;
        }
        match set(key, meta) {
            Some(Ok(())) => seen.push(name),
            Some(Err(e)) => {
                seen.push(name);
                errors.push(e);
            }
            None => errors.push(unknown_key(path, key, known)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn unknown_key(path: &syn::Path, key: Key<'_>, known: &[&str]) -> syn::Error {
    let message = retry_rules::unknown_key(key.name, key.within, known.iter().copied());
    error(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> Result<Args, Vec<String>> {
        let mut errors = Vec::new();
        let args = Args::parse(tokens, &mut errors);
        if errors.is_empty() {
            Ok(args)
        } else {
            Err(errors
                .into_iter()
                .flat_map(|e| e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>())
                .collect())
        }
    }

    fn messages(tokens: TokenStream) -> Vec<String> {
        parse(tokens).err().unwrap_or_default()
    }

    #[test]
    fn empty_attribute_is_all_defaults() {
        let args = parse(quote!()).unwrap();
        assert!(args.max_attempts.is_none() && args.backoff.is_none() && args.jitter.is_none());
    }

    #[test]
    fn every_key_is_declared_once_and_parses_with_a_value() {
        // One source: the names come from the fields, and each name reaches
        // its own field (a key listed but not dispatched would be "unknown").
        for key in Args::KEYS {
            let parsed = parse(Args::sample(key));
            assert!(parsed.is_ok(), "`{key}`: {:?}", parsed.err());
        }
        for key in BreakerArgs::KEYS {
            let sample = BreakerArgs::sample(key);
            let parsed = parse(quote!(circuit_breaker(#sample)));
            assert!(parsed.is_ok(), "`{key}`: {:?}", parsed.err());
        }
        for key in HedgeArgs::KEYS {
            let sample = HedgeArgs::sample(key);
            let parsed = parse(quote!(hedge(#sample)));
            assert!(parsed.is_ok(), "`{key}`: {:?}", parsed.err());
        }
        let mut all: Vec<&str> = Args::KEYS
            .iter()
            .chain(BreakerArgs::KEYS)
            .chain(HedgeArgs::KEYS)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            Args::KEYS.len() + BreakerArgs::KEYS.len() + HedgeArgs::KEYS.len()
        );
    }

    /// Every key of the attribute is one a configuration file can set, or
    /// one `Policy::from_config` refuses as code with what to do instead;
    /// and those lists name no key the attribute does not have.
    #[test]
    fn every_key_is_a_configuration_key_or_listed_as_code() {
        let in_code: Vec<&str> = retry_rules::IN_CODE.iter().map(|(key, _)| *key).collect();
        for key in Args::KEYS {
            let config = retry_rules::CONFIG.contains(key);
            let code = in_code.contains(key);
            assert!(
                config != code,
                "`{key}` must be in exactly one of retry_rules::CONFIG ({config}) and IN_CODE ({code})"
            );
        }
        for key in retry_rules::CONFIG.iter().chain(&in_code) {
            assert!(
                Args::KEYS.contains(key),
                "`{key}` is not a key of the attribute"
            );
        }
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
        assert_eq!(
            args.backoff.unwrap().kind,
            retry_rules::BackoffKind::Exponential
        );
        assert_eq!(args.jitter.unwrap().kind, retry_rules::Jitter::Full);
        assert_eq!(
            args.timeout.unwrap().value,
            std::time::Duration::from_secs(2)
        );
        assert!(matches!(
            args.concurrency,
            Some(LimitArg::Inline(Int { value: 3, .. }))
        ));
        assert_eq!(args.retry_on.unwrap().variants.len(), 2);
    }

    #[test]
    fn unknown_key_suggests_the_close_one() {
        assert_eq!(
            messages(quote!(max_attemps = 3)),
            ["unknown key `max_attemps`; did you mean `max_attempts`?"]
        );
        assert_eq!(messages(quote!(bogus = 3)), ["unknown key `bogus`"]);
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
        let mut errors = Vec::new();
        let args = Args::parse(
            quote!(max_attempts = 4, rate_limit = "ten/s", burst = 3),
            &mut errors,
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(args.max_attempts.unwrap().value, 4);
        assert_eq!(args.burst.unwrap().value, 3);
        assert!(args.failed.rate_limit && !args.failed.burst);
    }

    #[test]
    fn duplicate_keys_are_rejected_and_the_first_kept() {
        let mut errors = Vec::new();
        let args = Args::parse(quote!(timeout = "1s", timeout = "2s"), &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "duplicate key `timeout`");
        assert_eq!(
            args.timeout.unwrap().value,
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn a_key_without_its_value_says_so() {
        assert_eq!(
            messages(quote!(max_attempts)),
            ["`max_attempts` needs a value, e.g. `max_attempts = ...`"]
        );
        assert_eq!(
            messages(quote!(circuit_breaker(window))),
            ["`window` in `circuit_breaker(...)` needs a value, e.g. `window = ...`"]
        );
    }

    #[test]
    fn values_name_their_key() {
        assert_eq!(
            messages(quote!(max_attempts = "three")),
            ["invalid `max_attempts`: expected an integer, e.g. `3`"]
        );
        assert_eq!(
            messages(quote!(name = 5)),
            ["`name` expects a string literal, e.g. `name = \"billing.charge\"`"]
        );
        assert_eq!(
            messages(quote!(circuit_breaker(open_for = "2"))),
            [
                "invalid `open_for` in `circuit_breaker(...)`: duration `\"2\"` has no unit; write e.g. `\"2ms\"` or `\"2s\"`"
            ]
        );
    }

    #[test]
    fn unknown_backoff_suggests_a_name() {
        let errors = messages(quote!(backoff = "exponental"));
        assert_eq!(
            errors,
            ["unknown backoff `\"exponental\"`; did you mean `\"exponential\"`?"]
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
        assert_eq!(
            args.jitter.unwrap().kind,
            retry_rules::Jitter::Proportional(0.25)
        );
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
        assert_eq!(
            messages(quote!(circuit_breaker(failure_treshold = 3))),
            [
                "unknown key `failure_treshold` in `circuit_breaker(...)`; did you mean `failure_threshold`?"
            ]
        );
    }

    #[test]
    fn hedge_word_list_and_expression() {
        let word = parse(quote!(hedge)).unwrap().hedge;
        assert!(matches!(word, Some(HedgeArg::Inline(..))));
        let list = parse(quote!(hedge(after = "40ms", max_hedges = 2)))
            .unwrap()
            .hedge;
        let Some(HedgeArg::Inline(args, _)) = list else {
            panic!("expected inline")
        };
        assert_eq!(
            args.after.unwrap().value,
            retry_rules::HedgeAfter::Delay(std::time::Duration::from_millis(40))
        );
        assert_eq!(args.max_hedges.unwrap().value, 2);
        assert!(matches!(
            parse(quote!(hedge = &READS)).unwrap().hedge,
            Some(HedgeArg::Shared(_))
        ));
        assert_eq!(
            messages(quote!(hedge(after = "p9x"))),
            [
                "invalid `after` in `hedge(...)`: `\"p9x\"` is neither a latency quantile such as `\"p95\"` nor a duration such as `\"40ms\"`"
            ]
        );
        assert_eq!(
            messages(quote!(hedge(max_hedge = 2))),
            ["unknown key `max_hedge` in `hedge(...)`; did you mean `max_hedges`?"]
        );
    }

    #[test]
    fn crate_key_is_a_keyword_and_still_parses() {
        let args = parse(quote!(crate = "my_steadfast")).unwrap();
        assert!(args.krate.unwrap().0.is_ident("my_steadfast"));
    }

    #[test]
    fn malformed_lists_are_syns_error() {
        assert_eq!(messages(quote!(max_attempts: 3)), ["expected `,`"]);
    }
}
