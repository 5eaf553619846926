//! Code generation: the annotated function keeps its signature; its body
//! becomes a short retry loop around one attempt of the original body.
//!
//! Generated code reaches the runtime only through `#krate::__private` (the
//! contract listed in `retry-runtime/src/__private/mod.rs`), and its locals
//! are `Span::mixed_site()` idents the body cannot see or shadow.

mod attempt;
mod hedged;
mod paths;
mod statics;

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use crate::item::Function;
use crate::operation::{Door, Operation};
use crate::validate::Config;

/// The contract version this expansion is written against; the runtime's
/// `__private::CONTRACT` must be the same.
const CONTRACT: u32 = 6;

/// Input:  `#[resilient(...)] async fn f(x: &str) -> Result<T, E> { body }`
/// Output: ```ignore
///         async fn f(x: &str) -> Result<T, E> {
///             const _: () = assert!(__private::CONTRACT == 2, "...");
///             static SETTINGS: Settings = Settings::new(NAME).max_attempts(5)...;  // only the keys set
///             static BREAKER: CircuitBreaker = ...;      // + BUDGET, ... when inline
///             let mut call = Call::start(&POLICY, Guards::new().budget(&BUDGET)...);
///             loop {
///                 let delay = {                          // one attempt: nothing in here
///                     let mut admitted = match call.admit().await {   // outlives the sleep
///                         Ok(admitted) => admitted,
///                         Err(refusal) => return <fallback>(Conversions::new()
///                             .circuit_open(circuit_open)...convert(refusal)),  // one per key that can refuse
///                     };
///                     let outcome: Result<T, E> = <time limit>(async { body }).await;
///                     let error = match outcome { Ok(v) => { call.succeeded(admitted); return Ok(v) }, Err(e) => e };
///                     match call.after_error(admitted, <retry_on>(&error), <retry_after>, <describe>(&error)) {
///                         Retry(delay) => { <on_retry>; delay }
///                         GiveUp(_) => return <fallback>(error),
///                     }
///                 };
///                 call.backoff(delay).await;
///             }
///         }
///         ```
///         A plain `fn` is the same with the body in an immediately called
///         closure (so `return` and `?` end one attempt) and blocking waits.
///         When a shared key's expression computes something
///         (`rate_limit = limiter()`), the guards are built once per call:
///         `match Guards::new()..rate_limit(limiter()) { guards => { <start,
///         loop> } }`, each step passing `guards`; otherwise each step
///         builds them, and for `static`s they fold to constants.
pub(crate) fn expand(function: &Function, config: &Config) -> TokenStream {
    let (attrs, vis, sig) = (&function.attrs, &function.vis, &function.sig);
    let inner_attrs = &function.inner_attrs;
    let mut statements = Body::new(&function.operation, config).statements();
    // `#[async_trait]` expanded first: the loop goes inside its future, after
    // the statements that move the arguments in.
    if let Some(boxed) = &function.boxed {
        let (callee, prelude) = (&boxed.callee, &boxed.prelude);
        statements = quote!(#callee(async move { #prelude #statements }));
    }
    // The braces keep the span of the user's body: with call-site braces
    // rustc would stop reporting the function as dead code.
    let mut block = Group::new(Delimiter::Brace, quote!(#inner_attrs #statements));
    block.set_span(function.operation.body.span());
    quote! {
        #(#attrs)*
        #vis #sig #block
    }
}

/// Input:  `retry!(keys...; async { body })` or `retry!(keys...; { body })`.
/// Output: `async { <the loop> }`, a future; or `'retry: { <the loop> }`, a
///         value, whose loop `break`s out with the result (a `return` would
///         leave the caller's function).
pub(crate) fn expand_block(operation: &Operation, config: &Config) -> TokenStream {
    let body = Body::new(operation, config);
    let statements = body.statements();
    match operation.door {
        Door::Block => {
            let label = &body.label;
            quote!(#label: { #statements })
        }
        Door::AsyncBlock | Door::Attribute => quote!(async { #statements }),
    }
}

/// What the generated body is made of: the function, its configuration and
/// the hygienic names of the generated locals.
struct Body<'a> {
    operation: &'a Operation,
    config: &'a Config,
    krate: &'a syn::Path,
    call: Ident,
    admitted: Ident,
    outcome: Ident,
    error: Ident,
    delay: Ident,
    /// The call's `Guards`, when a shared expression built them once.
    guards: Ident,
    /// The block a plain `retry!` breaks out of.
    label: syn::Lifetime,
}

fn local(name: &str) -> Ident {
    format_ident!("__resilient_{}", name, span = Span::mixed_site())
}

impl<'a> Body<'a> {
    fn new(operation: &'a Operation, config: &'a Config) -> Self {
        Body {
            operation,
            config,
            krate: &config.krate,
            call: local("call"),
            admitted: local("admitted"),
            outcome: local("outcome"),
            error: local("error"),
            delay: local("delay"),
            guards: local("guards"),
            label: syn::Lifetime {
                apostrophe: Span::mixed_site(),
                ident: format_ident!("__resilient_call", span = Span::mixed_site()),
            },
        }
    }

    fn is_async(&self) -> bool {
        self.operation.is_async
    }

    /// The statements of the call: the statics, the start, and the loop.
    fn statements(&self) -> TokenStream {
        let statics = self.statics();
        let keyed = self.keyed();
        let start = self.start();
        let attempt = if self.config.hedge.is_some() {
            self.hedged_attempt()
        } else {
            self.attempt()
        };
        let decide = self.decide();
        let backoff = self.backoff();
        let delay = &self.delay;
        let call = quote! {
            #start
            loop {
                // Everything of one attempt (its result, error, permits)
                // lives in this block, so nothing of it is held across the
                // backoff sleep: the future stays `Send` for a `!Send` error.
                #[allow(unreachable_code)]
                let #delay = {
                    #attempt
                    #decide
                };
                #backoff
            }
        };
        if !self.computes_guards() {
            return quote!(#statics #keyed #call);
        }
        // The shared keys' expressions, evaluated once per call. A `match`
        // rather than a `let`: the temporaries of its scrutinee (the `Arc`
        // of `&PER_TENANT.get(&tenant)`) live until it ends, after the
        // last attempt.
        let (guards, built) = (&self.guards, self.build_guards());
        quote! {
            #statics
            #keyed
            match #built {
                #guards => { #call }
            }
        }
    }

    /// Ends the call with `value`: `return` from the function or the async
    /// block, `break` out of a plain block.
    fn exit(&self, value: TokenStream) -> TokenStream {
        match self.operation.door {
            Door::Block => {
                let label = &self.label;
                quote!(break #label #value)
            }
            Door::Attribute | Door::AsyncBlock => quote!(return #value),
        }
    }

    /// `call.backoff(delay)`: sleeps (or parks the thread) before the next
    /// attempt.
    fn backoff(&self) -> TokenStream {
        let (call, delay) = (&self.call, &self.delay);
        if self.is_async() {
            quote!(#call.backoff(#delay).await;)
        } else {
            quote!(#call.backoff_blocking(#delay);)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Args, Keys};
    use crate::validate::validate;
    use crate::values::Settings;

    fn expansion(args: TokenStream, item: TokenStream) -> String {
        let function: Function = syn::parse2(item).unwrap();
        let mut errors = Vec::new();
        let args = Args::parse(args, &mut errors);
        let config = validate(args, &function.operation, Some(&function), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        expand(&function, &config).to_string()
    }

    /// The names an expansion reaches through `__private`.
    fn contract_names(expansion: &str) -> Vec<String> {
        let mut names: Vec<String> = expansion
            .split("__private ::")
            .skip(1)
            .map(|rest| {
                rest.trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// `key = <a value>`, with what it needs beside it to be valid.
    fn alone(key: &str) -> TokenStream {
        let sample = Args::sample(key);
        let needs = match key {
            "burst" => quote!(, rate_limit = "1/s"),
            "max_wait" => quote!(, concurrency = 1),
            "breaker_if" => quote!(, circuit_breaker),
            _ => quote!(),
        };
        quote!(#sample #needs)
    }

    #[test]
    fn expansions_name_only_the_documented_contract() {
        let contract = include_str!("../../../retry-runtime/src/__private/mod.rs");
        let every_key = [
            (
                quote!(
                    max_attempts = 4,
                    backoff = "fixed",
                    base_delay = "10ms",
                    max_delay = "1s",
                    jitter = 0.5,
                    timeout = "1s",
                    deadline = "5s",
                    retry_on = [Busy],
                    retry_after = |_| None,
                    budget = &B,
                    concurrency = &K,
                    rate_limit = &R,
                    max_wait = "10ms",
                    circuit_breaker = &C,
                    on_retry = |_| {},
                    fallback = |e| Err(e),
                    name = "n",
                    attempt = a
                ),
                quote!(
                    async fn f() -> Result<(), E> {
                        Ok(())
                    }
                ),
            ),
            (
                quote!(
                    multiplier = 3.0,
                    jitter = "none",
                    no_retry_on = [Fatal],
                    concurrency = 2,
                    rate_limit = "5/s",
                    burst = 2,
                    circuit_breaker(
                        failure_rate = 0.5,
                        open_for = "1s",
                        half_open_probes = 2,
                        key = "h"
                    )
                ),
                quote!(
                    fn f() -> Result<(), E> {
                        Ok(())
                    }
                ),
            ),
            (
                quote!(
                    retry_if = |_| true,
                    breaker_if = |_| true,
                    budget = "off",
                    circuit_breaker(failure_threshold = 5),
                    concurrency = "adaptive",
                    on_retry = async |_| {},
                    fallback = async |e| Err(e)
                ),
                quote!(
                    async fn f() -> Result<(), E> {
                        Ok(())
                    }
                ),
            ),
        ];
        // And each key alone (with what it needs beside it), so that a new
        // key is covered without being listed here.
        let each_key = Args::KEYS.iter().map(|key| {
            let item = quote!(
                async fn f() -> Result<(), E> {
                    Ok(())
                }
            );
            (alone(key), item)
        });
        for (args, item) in every_key.into_iter().chain(each_key) {
            for name in contract_names(&expansion(args, item)) {
                assert!(
                    contract.contains(&format!("[`{name}`]")),
                    "`__private::{name}` is not in the contract table of retry-runtime/src/__private/mod.rs"
                );
            }
        }
    }

    #[test]
    fn defaults_are_not_spelled_out() {
        let output = expansion(
            quote!(),
            quote!(
                async fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(output.contains("Settings :: new"), "{output}");
        let item = quote!(
            async fn f() -> Result<(), E> {
                Ok(())
            }
        );
        // The `static SETTINGS: Settings = Settings::new(NAME) ...;` statement.
        let settings = |expansion: &str| {
            let start = expansion.find("Settings :: new (").unwrap();
            expansion[start..].split(';').next().unwrap().to_owned()
        };
        let output = settings(&output);
        let mut builders = 0;
        for key in Args::KEYS {
            let mut errors = Vec::new();
            let set = Args::parse(Args::sample(key), &mut errors).settings(&syn::parse_quote!(k));
            if set.is_empty() {
                continue;
            }
            builders += 1;
            let builder = format!(". {key} (");
            assert!(!output.contains(&builder), "{key}: {output}");
            let written = settings(&expansion(alone(key), item.clone()));
            assert_eq!(written.matches(&builder).count(), 1, "{key}: {written}");
        }
        assert!(builders >= 8, "the value keys set their builders");
    }

    #[test]
    fn a_computed_shared_expression_is_evaluated_once_per_call() {
        for key in ["budget", "circuit_breaker", "rate_limit", "concurrency"] {
            let key = Ident::new(key, Span::call_site());
            for item in [
                quote!(
                    async fn f() -> Result<(), E> {
                        Ok(())
                    }
                ),
                quote!(
                    fn f() -> Result<(), E> {
                        Ok(())
                    }
                ),
            ] {
                // With `max_wait`, the admission's slow path names the guards too.
                let waits = (key == "rate_limit" || key == "concurrency")
                    .then(|| quote!(, max_wait = "1s"));
                let output = expansion(quote!(#key = lookup(&TABLE) #waits), item);
                assert_eq!(output.matches("lookup").count(), 1, "{key}: {output}");
                assert!(
                    output.contains(&format!(". {key} (lookup (& TABLE))")),
                    "passed to its setter: {output}"
                );
                // Every step is handed the guards built once.
                let guards = output.matches("__resilient_guards").count();
                assert!(guards >= 3, "{key}: {output}");
            }
        }
    }

    #[test]
    fn a_named_place_is_named_again_at_each_step() {
        for value in [
            quote!(&LIMITER),
            quote!(quota),
            quote!(&self.limiter),
            quote!((&LIMITER)),
        ] {
            let output = expansion(
                quote!(rate_limit = #value),
                quote!(
                    fn f() -> Result<(), E> {
                        Ok(())
                    }
                ),
            );
            assert!(!output.contains("__resilient_guards"), "{output}");
            // At the start, the admission and the decision after an error.
            let named = format!(". rate_limit ({value})");
            assert_eq!(output.matches(&named).count(), 3, "{named}: {output}");
        }
        let computed = expansion(
            quote!(budget = &LIMITERS[0]),
            quote!(
                fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(computed.contains("__resilient_guards"), "{computed}");
    }

    #[test]
    fn a_place_passed_through_a_macro_is_a_place() {
        let grouped: syn::Expr = syn::Expr::Group(syn::ExprGroup {
            attrs: Vec::new(),
            group_token: syn::token::Group::default(),
            expr: Box::new(syn::parse_quote!(&LIMITER)),
        });
        assert!(statics::names_a_place(&grouped));
        assert!(!statics::names_a_place(&syn::parse_quote!(&*LIMITER)));
        assert!(!statics::names_a_place(&syn::parse_quote!(limiter())));
    }

    /// What an expansion says about the limits that learn: the inline
    /// `static`s, and a timed-out attempt flagged for whatever judges it.
    fn expanded(args: TokenStream) -> String {
        expansion(
            args,
            quote!(
                async fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        )
    }

    #[test]
    fn an_inline_adaptive_limit_is_a_gradient_named_after_its_function() {
        let output = expanded(quote!(concurrency = "adaptive"));
        assert!(
            output.contains("AdaptiveLimit :: gradient () . name (__RESILIENT_NAME)"),
            "{output}"
        );
        assert!(
            output.contains(". concurrency (& __RESILIENT_ADAPTIVE)"),
            "{output}"
        );
        assert!(!output.contains("Bulkhead"), "{output}");
    }

    #[test]
    fn a_timed_out_attempt_is_flagged_for_a_limit_or_a_breaker() {
        let flagged = |args: TokenStream| expanded(args).contains(". timed_out ()");
        assert!(flagged(quote!(timeout = "1s", concurrency = &LIMIT)));
        assert!(flagged(quote!(timeout = "1s", circuit_breaker)));
        assert!(!flagged(quote!(timeout = "1s", rate_limit = "5/s")));
    }

    #[test]
    fn what_was_admitted_is_mutable_only_when_an_outcome_is_flagged_on_it() {
        let mutable = |args: TokenStream| {
            let output = expanded(args);
            assert!(output.contains("__resilient_admitted ="), "{output}");
            output.contains("let mut __resilient_admitted =")
        };
        assert!(mutable(quote!(timeout = "1s", concurrency = &LIMIT)));
        assert!(mutable(quote!(circuit_breaker, breaker_if = |_| true)));
        assert!(!mutable(quote!(concurrency = &LIMIT)));
        assert!(!mutable(quote!(timeout = "1s", rate_limit = "5/s")));
    }

    #[test]
    fn an_inline_throttling_window_outlasts_the_longest_attempt() {
        let window = |args: TokenStream| {
            let output = expanded(args);
            assert!(output.contains("adaptive_throttling (2f64)"), "{output}");
            output
                .split(". throttling_window (")
                .nth(1)
                .map(|rest| rest.split(')').next().unwrap_or_default().to_owned())
        };
        // 5 min + a tenth: 330 s.
        let long = window(quote!(
            timeout = "5min",
            circuit_breaker(adaptive_throttling = 2.0)
        ));
        assert!(
            long.as_deref().is_some_and(|w| w.contains("330u64")),
            "{long:?}"
        );
        let by_deadline = window(quote!(
            deadline = "10min",
            circuit_breaker(adaptive_throttling = 2.0)
        ));
        assert!(
            by_deadline.as_deref().is_some_and(|w| w.contains("660u64")),
            "{by_deadline:?}"
        );
        // Up to the default (120 s) once lengthened: the default stands.
        for short in [
            quote!(timeout = "109s", circuit_breaker(adaptive_throttling = 2.0)),
            quote!(timeout = "1s", circuit_breaker(adaptive_throttling = 2.0)),
            quote!(circuit_breaker(adaptive_throttling = 2.0)),
        ] {
            assert_eq!(window(short), None);
        }
        // 110 s + 11 s is past it.
        assert!(
            window(quote!(
                timeout = "110s",
                circuit_breaker(adaptive_throttling = 2.0)
            ))
            .is_some()
        );
        let counting = expanded(quote!(
            timeout = "5min",
            circuit_breaker(failure_threshold = 9)
        ));
        assert!(!counting.contains("throttling_window"), "{counting}");
    }

    #[test]
    fn an_inline_breaker_is_named_after_its_function() {
        let output = expansion(
            quote!(circuit_breaker),
            quote!(
                async fn charge() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(output.contains(". name (__RESILIENT_NAME)"), "{output}");
    }
}
