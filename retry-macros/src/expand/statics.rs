//! What a call starts from: the contract check, the site's name, the policy
//! and the inline primitives (one `static` each per annotated function,
//! shared by all its callers), and the call itself.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Body, CONTRACT};
use crate::validate::{Breaker, Budget, InlineBreaker, Limit, RateLimit, Window};
use crate::values::duration;

impl Body<'_> {
    /// Input:  the validated configuration.
    /// Output: `const _: () = assert!(CONTRACT == N)`, the `__RESILIENT_NAME`
    ///         constant, `static __RESILIENT_SETTINGS` with one builder call
    ///         per key the user set, and a `static` per inline primitive.
    pub(super) fn statics(&self) -> TokenStream {
        let krate = self.krate;
        let config = self.config;
        let mismatch = format!(
            "retry-macros {} expects contract {CONTRACT} of `__private` in retry-runtime; use the retry-runtime of the same version (they are released together, and `steadfast` pins both)",
            env!("CARGO_PKG_VERSION"),
        );
        let name = self.site_name();
        let policy = &config.settings;
        let reports_elapsed = config.on_retry.as_ref().map(|_| quote!(.reports_elapsed()));
        let hedged = config.hedge.as_ref().map(|_| quote!(.hedged()));
        let primitives = self.inline_primitives();
        quote! {
            const _: () = ::core::assert!(#krate::__private::CONTRACT == #CONTRACT, #mismatch);
            const __RESILIENT_NAME: &str = #name;
            static __RESILIENT_SETTINGS: #krate::__private::Settings =
                #krate::__private::Settings::new(__RESILIENT_NAME) #(#policy)* #reports_elapsed #hedged;
            #primitives
        }
    }

    /// The `name` key, or `module_path::fn_name`: a `&'static str` constant.
    fn site_name(&self) -> TokenStream {
        match &self.config.name {
            Some(name) => quote!(#name),
            None => self.operation.default_name.clone(),
        }
    }

    /// The inline budget, bulkhead or adaptive limit, rate limiter and
    /// breaker, built with the
    /// same public `const` builders a user's `static` would use.
    fn inline_primitives(&self) -> TokenStream {
        let krate = self.krate;
        let config = self.config;
        let budget = matches!(config.budget, Budget::PerFunction).then(|| {
            quote! {
                static __RESILIENT_BUDGET: #krate::__private::RetryBudget =
                    #krate::__private::RetryBudget::new();
            }
        });
        let bulkhead = match &config.concurrency {
            Some(Limit::Inline(n)) => {
                let n = *n as usize;
                Some(quote! {
                    static __RESILIENT_BULKHEAD: #krate::__private::Bulkhead =
                        #krate::__private::Bulkhead::new(#n);
                })
            }
            // Named after the site, as the inline breaker: its events and
            // metrics say whose limit moved.
            Some(Limit::Adaptive) => Some(quote! {
                static __RESILIENT_ADAPTIVE: #krate::__private::AdaptiveLimit =
                    #krate::__private::AdaptiveLimit::gradient().name(__RESILIENT_NAME);
            }),
            _ => None,
        };
        let rate_limiter = match &config.rate_limit {
            Some(RateLimit::Inline {
                count,
                period,
                burst,
            }) => {
                let period = duration(*period);
                let burst = burst.map(|b| quote!(.burst(#b)));
                Some(quote! {
                    static __RESILIENT_RATE_LIMITER: #krate::__private::RateLimiter =
                        #krate::__private::RateLimiter::per_period(#count, #period) #burst;
                })
            }
            _ => None,
        };
        let breaker = match &config.circuit_breaker {
            Some(Breaker::Inline(inline)) => {
                let threshold = inline
                    .failure_threshold
                    .map(|n| quote!(.failure_threshold(#n)));
                let rate = inline.failure_rate.map(|(rate, window)| match window {
                    Some(Window::Calls(calls)) => quote!(.failure_rate(#rate, #calls)),
                    Some(Window::Time(period)) => {
                        let period = duration(period);
                        quote!(.failure_rate_over(#rate, #period))
                    }
                    None => quote! {
                        .failure_rate(#rate, #krate::__private::CircuitBreaker::DEFAULT_WINDOW)
                    },
                });
                let slow = inline.slow_call.map(|(threshold, rate)| {
                    let threshold = duration(threshold);
                    quote!(.slow_call(#threshold, #rate))
                });
                let min_calls = inline.min_calls.map(|n| quote!(.min_calls(#n)));
                let open_for = inline.open_for.map(|d| {
                    let d = duration(d);
                    quote!(.open_for(#d))
                });
                let probes = inline
                    .half_open_probes
                    .map(|n| quote!(.half_open_probes(#n)));
                let mode = match inline.adaptive_throttling {
                    Some(k) => quote!(adaptive_throttling(#k)),
                    None => quote!(new()),
                };
                // A throttling window longer than an attempt can last, by
                // a tenth (a bucket of the window's ten), so that no attempt
                // outlives its request's count: one that ends as its
                // request's bucket leaves the window would count only as a
                // refusal's absence.
                let longest_attempt = config.timeout.or(config.deadline).map(|d| d.value);
                let window = longest_attempt
                    .map(|d| d + d / 10)
                    .filter(|d| {
                        inline.adaptive_throttling.is_some()
                            && *d > retry_rules::defaults::THROTTLING_WINDOW
                    })
                    .map(|d| {
                        let d = duration(d);
                        quote!(.throttling_window(#d))
                    });
                let breaker = quote! {
                    #krate::__private::CircuitBreaker::#mode
                        .name(__RESILIENT_NAME)
                        #threshold #rate #min_calls #open_for #probes #slow #window
                };
                Some(match &inline.key {
                    None => quote! {
                        static __RESILIENT_BREAKER: #krate::__private::CircuitBreaker = #breaker;
                    },
                    // One breaker per key, made by the same builders.
                    Some(_) => quote! {
                        static __RESILIENT_BREAKERS: #krate::__private::Keyed<
                            ::std::string::String,
                            #krate::__private::CircuitBreaker,
                        > = #krate::__private::Keyed::new(|_| #breaker);
                    },
                })
            }
            _ => None,
        };
        let hedge = self.inline_hedge();
        quote!(#budget #bulkhead #rate_limiter #breaker #hedge)
    }

    /// Whether a shared key's expression computes something (`limiter()`,
    /// `&PER_TENANT.get(&tenant)`), so that the guards are built once per
    /// call, rather than at each step.
    pub(super) fn computes_guards(&self) -> bool {
        let config = self.config;
        let budget = match &config.budget {
            Budget::Shared(expr) => Some(expr),
            _ => None,
        };
        let breaker = match &config.circuit_breaker {
            Some(Breaker::Shared(expr)) => Some(expr),
            _ => None,
        };
        let limiter = match &config.rate_limit {
            Some(RateLimit::Shared(expr)) => Some(expr),
            _ => None,
        };
        let bulkhead = match &config.concurrency {
            Some(Limit::Shared(expr)) => Some(expr),
            _ => None,
        };
        [budget, breaker, limiter, bulkhead]
            .into_iter()
            .flatten()
            .any(|expr| !names_a_place(expr))
    }

    /// The call's guards where a step needs them. When a shared expression
    /// computes something they were built once per call, so it is evaluated
    /// once however many attempts follow. Otherwise they are built afresh
    /// at each step: for `static`s they fold to constants and take no room
    /// in the function's future, and `&self.budget` borrows `self` only
    /// for the step, not across the body.
    pub(super) fn guards(&self) -> TokenStream {
        if self.computes_guards() {
            let guards = &self.guards;
            quote!(#guards)
        } else {
            self.build_guards()
        }
    }

    /// Input:  the budget and protection keys.
    /// Output: `Guards::new().budget(..).circuit_breaker(..)...`, each shared
    ///         expression passed to the setter named after its key, at the
    ///         expression's span, so a wrong type is reported there.
    pub(super) fn build_guards(&self) -> TokenStream {
        let krate = self.krate;
        let config = self.config;
        let mut guards = Vec::new();
        let mut guard = |setter: &str, inline: TokenStream, shared: Option<&syn::Expr>| {
            let setter = syn::Ident::new(setter, proc_macro2::Span::call_site());
            guards.push(match shared {
                Some(expr) => quote_spanned!(expr.span()=> .#setter(#expr)),
                None => quote!(.#setter(#inline)),
            });
        };
        let none = TokenStream::new;
        match &config.budget {
            Budget::PerFunction => guard("budget", quote!(&__RESILIENT_BUDGET), None),
            Budget::Shared(expr) => guard("budget", none(), Some(expr)),
            Budget::Off => {}
        }
        match &config.circuit_breaker {
            Some(Breaker::Inline(inline)) if inline.key.is_some() => {
                let breaker = super::local("breaker");
                guard("circuit_breaker", quote!(&#breaker), None);
            }
            Some(Breaker::Inline(_)) => {
                guard("circuit_breaker", quote!(&__RESILIENT_BREAKER), None)
            }
            Some(Breaker::Shared(expr)) => guard("circuit_breaker", none(), Some(expr)),
            None => {}
        }
        match &config.rate_limit {
            Some(RateLimit::Inline { .. }) => {
                guard("rate_limit", quote!(&__RESILIENT_RATE_LIMITER), None);
            }
            Some(RateLimit::Shared(expr)) => guard("rate_limit", none(), Some(expr)),
            None => {}
        }
        match &config.concurrency {
            Some(Limit::Inline(_)) => guard("concurrency", quote!(&__RESILIENT_BULKHEAD), None),
            Some(Limit::Adaptive) => guard("concurrency", quote!(&__RESILIENT_ADAPTIVE), None),
            Some(Limit::Shared(expr)) => guard("concurrency", none(), Some(expr)),
            None => {}
        }
        quote!(#krate::__private::Guards::new() #(#guards)*)
    }

    /// `let breaker = BREAKERS.get(key);`: the call's breaker, when there
    /// is one per key. The key is evaluated once per call, as a `&str`
    /// (a host, a tenant); the `Arc` keeps the breaker for the whole call
    /// even if it is evicted meanwhile.
    pub(super) fn keyed(&self) -> TokenStream {
        let Some(Breaker::Inline(InlineBreaker { key: Some(key), .. })) =
            &self.config.circuit_breaker
        else {
            return TokenStream::new();
        };
        let breaker = super::local("breaker");
        quote_spanned! {key.span()=>
            let #breaker = __RESILIENT_BREAKERS.get(::core::convert::AsRef::<str>::as_ref(&(#key)));
        }
    }

    /// `let mut call = Call::start(&POLICY, guards);`: the budget deposit,
    /// and the clock read if the policy needs the start.
    pub(super) fn start(&self) -> TokenStream {
        let krate = self.krate;
        let call = &self.call;
        let guards = self.guards();
        quote! {
            let mut #call = #krate::__private::Call::start(&__RESILIENT_SETTINGS, #guards);
        }
    }
}

/// `&LIMITER`, `&self.budget`, `quota`: a place, named rather than computed,
/// whose naming again has no effect and costs nothing.
pub(super) fn names_a_place(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Path(_) => true,
        syn::Expr::Reference(reference) => names_a_place(&reference.expr),
        syn::Expr::Field(field) => names_a_place(&field.base),
        syn::Expr::Paren(paren) => names_a_place(&paren.expr),
        syn::Expr::Group(group) => names_a_place(&group.expr),
        _ => false,
    }
}
