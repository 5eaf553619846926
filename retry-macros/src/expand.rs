//! Code generation: the annotated function keeps its signature; its body
//! becomes a short retry loop around one attempt of the original body.
//!
//! Generated code reaches the runtime only through `#krate::__private`, and
//! its locals are `Span::mixed_site()` idents the body cannot see or shadow.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use crate::args::{BackoffKind, JitterKind, RatePeriod};
use crate::function::Function;
use crate::validate::{Breaker, Budget, Classify, Config, Limit, RateLimit};

/// Input:  `#[resilient(...)] async fn f(x: &str) -> Result<T, E> { body }`
/// Output: ```ignore
///         async fn f(x: &str) -> Result<T, E> {
///             static POLICY: Policy = ...;            // + BUDGET, BREAKER, ... when inline
///             deposit(&BUDGET);
///             let mut call = Call::start(&POLICY);
///             loop {
///                 let delay = {                       // one attempt: nothing in here
///                     <admit: breaker, rate token, bulkhead permit>   // outlives the sleep
///                     let outcome: Result<T, E> = <timeout>(async { body }).await;
///                     let error = match outcome { Ok(v) => { call.succeeded(); return Ok(v) }, Err(e) => e };
///                     match call.after_error(<retry_on>(&error), <retry_after>, <budget>, <describe>(&error)) {
///                         Retry(delay) => { <on_retry>; delay }
///                         GiveUp(_) => return <fallback>(error),
///                     }
///                 };
///                 call.backoff(delay).await;
///             }
///         }
///         ```
///         A plain `fn` is the same with the body in an immediately called
///         closure (so `return` and `?` end one attempt) and blocking sleeps.
pub(crate) fn expand(function: &Function, config: &Config) -> TokenStream {
    let item = &function.item;
    let (attrs, vis, sig) = (&item.attrs, &item.vis, &item.sig);
    let body = Body::new(function, config);
    let statics = body.statics();
    let start = body.start();
    let attempt = body.attempt();
    let decide = body.decide();
    let delay = &body.delay;
    let backoff = body.backoff();
    // The braces keep the span of the user's body: with call-site braces
    // rustc would stop reporting the function as dead code.
    let mut block = Group::new(
        Delimiter::Brace,
        quote! {
            #statics
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
        },
    );
    block.set_span(item.block.brace_token.span.join());
    quote! {
        #(#attrs)*
        #vis #sig #block
    }
}

struct Body<'a> {
    function: &'a Function,
    config: &'a Config,
    krate: &'a syn::Path,
    call: Ident,
    outcome: Ident,
    timed_out: Ident,
    error: Ident,
    delay: Ident,
    breaker_permit: Ident,
}

fn local(name: &str) -> Ident {
    format_ident!("__resilient_{}", name, span = Span::mixed_site())
}

impl<'a> Body<'a> {
    fn new(function: &'a Function, config: &'a Config) -> Self {
        Body {
            function,
            config,
            krate: &config.krate,
            call: local("call"),
            outcome: local("outcome"),
            timed_out: local("timed_out"),
            error: local("error"),
            delay: local("delay"),
            breaker_permit: local("breaker_permit"),
        }
    }

    fn is_async(&self) -> bool {
        self.function.is_async()
    }

    /// One `static` per annotated function for the policy and for every
    /// inline primitive, shared by all callers.
    fn statics(&self) -> TokenStream {
        let krate = self.krate;
        let config = self.config;
        let name = self.site_name();
        let max_attempts = config.max_attempts;
        let backoff = self.backoff_schedule();
        let timeout = config.timeout.map(|t| {
            let t = duration(krate, t.value);
            quote!(.timeout(#t))
        });
        let deadline = config.deadline.map(|d| {
            let d = duration(krate, d.value);
            quote!(.deadline(#d))
        });
        let reports_elapsed = config.on_retry.as_ref().map(|_| quote!(.reports_elapsed()));
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
            _ => None,
        };
        let rate_limiter = match &config.rate_limit {
            Some(RateLimit::Inline { count, per, burst }) => {
                let constructor = match per {
                    RatePeriod::Second => quote!(per_second),
                    RatePeriod::Minute => quote!(per_minute),
                    RatePeriod::Hour => quote!(per_hour),
                };
                let burst = burst.map(|b| quote!(.burst(#b)));
                Some(quote! {
                    static __RESILIENT_RATE_LIMITER: #krate::__private::RateLimiter =
                        #krate::__private::RateLimiter::#constructor(#count) #burst;
                })
            }
            _ => None,
        };
        let breaker = match &config.circuit_breaker {
            Some(Breaker::Inline(inline)) => {
                let threshold = inline
                    .failure_threshold
                    .map(|n| quote!(.failure_threshold(#n)));
                let rate = inline
                    .failure_rate
                    .map(|(rate, window)| quote!(.failure_rate(#rate, #window)));
                let min_calls = inline.min_calls.map(|n| quote!(.min_calls(#n)));
                let open_for = inline.open_for.map(|d| {
                    let d = duration(krate, d);
                    quote!(.open_for(#d))
                });
                let probes = inline
                    .half_open_probes
                    .map(|n| quote!(.half_open_probes(#n)));
                Some(quote! {
                    static __RESILIENT_BREAKER: #krate::__private::CircuitBreaker =
                        #krate::__private::CircuitBreaker::new()
                            #threshold #rate #min_calls #open_for #probes;
                })
            }
            _ => None,
        };
        quote! {
            static __RESILIENT_POLICY: #krate::__private::Policy = #krate::__private::Policy::new(
                #name, #max_attempts, #backoff,
            ) #timeout #deadline #reports_elapsed;
            #budget
            #bulkhead
            #rate_limiter
            #breaker
        }
    }

    /// The `name` key, or `module_path::fn_name`: a `&'static str` constant.
    fn site_name(&self) -> TokenStream {
        match &self.config.name {
            Some(name) => quote!(#name),
            None => {
                let ident = self.function.item.sig.ident.to_string();
                quote!(::core::concat!(::core::module_path!(), "::", #ident))
            }
        }
    }

    fn backoff_schedule(&self) -> TokenStream {
        let krate = self.krate;
        let config = self.config;
        let base = duration(krate, config.base_delay);
        let constructor = match config.backoff {
            BackoffKind::Exponential => quote!(exponential(#base)),
            BackoffKind::Fixed => quote!(fixed(#base)),
            BackoffKind::Linear => quote!(linear(#base)),
            BackoffKind::Fibonacci => quote!(fibonacci(#base)),
            BackoffKind::None => quote!(none()),
        };
        let max = duration(krate, config.max_delay);
        let multiplier = config.multiplier;
        let jitter = match config.jitter {
            JitterKind::None => quote!(None),
            JitterKind::Full => quote!(Full),
            JitterKind::Equal => quote!(Equal),
            JitterKind::Decorrelated => quote!(Decorrelated),
            JitterKind::Proportional(f) => quote!(Proportional(#f)),
        };
        quote! {
            #krate::__private::Backoff::#constructor
                .max_delay(#max)
                .multiplier(#multiplier)
                .jitter(#krate::__private::Jitter::#jitter)
        }
    }

    fn budget_ref(&self) -> Option<TokenStream> {
        let krate = self.krate;
        match &self.config.budget {
            Budget::PerFunction => Some(quote!(&__RESILIENT_BUDGET)),
            Budget::Off => None,
            Budget::Shared(expr) => Some(typed(krate, "budget", expr)),
        }
    }

    fn start(&self) -> TokenStream {
        let krate = self.krate;
        let call = &self.call;
        let deposit = self
            .budget_ref()
            .map(|budget| quote!(#krate::__private::deposit(#budget);));
        quote! {
            #deposit
            let mut #call = #krate::__private::Call::start(&__RESILIENT_POLICY);
        }
    }

    /// Input:  the body `{ ... }`.
    /// Output: `let outcome: Result<T, E> = ...;`, with
    ///         the breaker, rate limiter and bulkhead admitting the attempt
    ///         first (composition order: breaker, rate limit, concurrency,
    ///         timeout, body) and the bulkhead permit released at its end.
    fn attempt(&self) -> TokenStream {
        let krate = self.krate;
        let (outcome, timed_out, call) = (&self.outcome, &self.timed_out, &self.call);
        let result = self
            .function
            .result
            .as_ref()
            .expect("validated: returns a Result");
        let block = &self.function.item.block;
        // Spanned at the body, so a borrow error ("value moved here, in
        // previous iteration of loop") points into the user's code.
        let body_span = block.span();
        let attempt_block = if self.is_async() {
            quote_spanned!(body_span=> async #block)
        } else {
            quote_spanned!(body_span=> || -> #result #block)
        };
        let breaker = self.admit_breaker();
        let rate = self.admit_rate();
        let permit = self.admit_bulkhead();
        // Whether the attempt timed out matters only to a breaker, which
        // counts timeouts as failures whatever the error classification.
        let track_timeout = self.config.circuit_breaker.is_some();
        let run = if self.is_async() {
            let timeout_span = self.config.timeout.or(self.config.deadline).map(|d| d.span);
            match timeout_span {
                Some(span) => {
                    let elapsed = local("elapsed");
                    let at = krate_at(krate, span);
                    let timed_out_error =
                        quote_spanned!(span=> #at::__private::timed_out(#elapsed));
                    let flag = track_timeout.then(|| quote!(#timed_out = true;));
                    quote! {
                        match #krate::__private::with_deadline(#call.attempt_deadline(), #attempt_block).await {
                            ::core::result::Result::Ok(#outcome) => #outcome,
                            ::core::result::Result::Err(#elapsed) => {
                                #flag
                                #timed_out_error
                            }
                        }
                    }
                }
                None => quote!(#attempt_block.await),
            }
        } else {
            quote! {
                #[allow(clippy::redundant_closure_call)]
                (#attempt_block)()
            }
        };
        let can_time_out =
            self.is_async() && (self.config.timeout.is_some() || self.config.deadline.is_some());
        let flag = match (track_timeout, can_time_out) {
            (true, true) => Some(quote!(let mut #timed_out = false;)),
            (true, false) => Some(quote!(let #timed_out = false;)),
            (false, _) => None,
        };
        quote! {
            #breaker
            #flag
            #[allow(unreachable_code)]
            let #outcome: #result = {
                #rate
                #permit
                #run
            };
        }
    }

    fn admit_breaker(&self) -> Option<TokenStream> {
        let krate = self.krate;
        let breaker = self.breaker_ref()?;
        let span = match &self.config.circuit_breaker {
            Some(Breaker::Shared(expr)) => expr.span(),
            Some(Breaker::Inline(inline)) => inline.span,
            None => Span::call_site(),
        };
        let permit = &self.breaker_permit;
        let call = &self.call;
        let at = krate_at(krate, span);
        let open = self.give_up(quote_spanned!(span=> #at::__private::circuit_open()));
        Some(quote! {
            let #permit = match #krate::__private::CircuitBreaker::try_acquire(#breaker) {
                ::core::result::Result::Ok(#permit) => #permit,
                ::core::result::Result::Err(_) => {
                    #call.rejected(#krate::__private::Rejection::CircuitOpen);
                    return #open;
                }
            };
        })
    }

    fn breaker_ref(&self) -> Option<TokenStream> {
        match self.config.circuit_breaker.as_ref()? {
            Breaker::Inline(_) => Some(quote!(&__RESILIENT_BREAKER)),
            Breaker::Shared(expr) => Some(typed(self.krate, "circuit_breaker", expr)),
        }
    }

    /// The error a bounded permit or token wait ends with: `Rejected` past
    /// `max_wait`, `Elapsed` at the deadline; `None` when the wait is
    /// unbounded (and so cannot fail, nor require a `From` impl).
    fn wait_error(&self) -> Option<TokenStream> {
        let krate = self.krate;
        let call = &self.call;
        let rejected = self.config.max_wait.map(|w| {
            let at = krate_at(krate, w.span);
            quote_spanned!(w.span=> #at::__private::rejected())
        });
        let elapsed = self.config.deadline.map(|d| {
            let at = krate_at(krate, d.span);
            quote_spanned!(d.span=> #at::__private::deadline_elapsed())
        });
        match (rejected, elapsed) {
            (Some(rejected), Some(elapsed)) => {
                Some(quote!(if #call.past_deadline() { #elapsed } else { #rejected }))
            }
            (rejected, elapsed) => rejected.or(elapsed),
        }
    }

    /// `&call, max_wait`: what a bounded wait needs to compute its limit,
    /// which it does only when there is no permit or token at once.
    fn wait_args(&self) -> TokenStream {
        let krate = self.krate;
        let call = &self.call;
        let max_wait = match self.config.max_wait {
            Some(w) => {
                let w = duration(krate, w.value);
                quote!(::core::option::Option::Some(#w))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(&#call, #max_wait)
    }

    fn admit_rate(&self) -> Option<TokenStream> {
        let krate = self.krate;
        let limiter = match self.config.rate_limit.as_ref()? {
            RateLimit::Inline { .. } => quote!(&__RESILIENT_RATE_LIMITER),
            RateLimit::Shared(expr) => typed(krate, "rate_limiter", expr),
        };
        let Some(error) = self.wait_error() else {
            return Some(if self.is_async() {
                quote!(#krate::__private::RateLimiter::acquire(#limiter).await;)
            } else {
                quote!(#krate::__private::RateLimiter::acquire_blocking(#limiter);)
            });
        };
        let wait_args = self.wait_args();
        let refused = self.give_up(error);
        let wait = if self.is_async() {
            quote!(#krate::__private::rate_token(#limiter, #wait_args).await)
        } else {
            quote!(#krate::__private::rate_token_blocking(#limiter, #wait_args))
        };
        let call = &self.call;
        Some(quote! {
            if !#wait {
                #call.wait_refused(#krate::__private::Rejection::RateLimit);
                return #refused;
            }
        })
    }

    fn admit_bulkhead(&self) -> Option<TokenStream> {
        let krate = self.krate;
        let bulkhead = match self.config.concurrency.as_ref()? {
            Limit::Inline(_) => quote!(&__RESILIENT_BULKHEAD),
            Limit::Shared(expr) => typed(krate, "bulkhead", expr),
        };
        let permit = local("bulkhead_permit");
        let Some(error) = self.wait_error() else {
            return Some(if self.is_async() {
                quote!(let #permit = #krate::__private::Bulkhead::acquire(#bulkhead).await;)
            } else {
                quote!(let #permit = #krate::__private::Bulkhead::acquire_blocking(#bulkhead);)
            });
        };
        let wait_args = self.wait_args();
        let refused = self.give_up(error);
        let wait = if self.is_async() {
            quote!(#krate::__private::bulkhead_permit(#bulkhead, #wait_args).await)
        } else {
            quote!(#krate::__private::bulkhead_permit_blocking(#bulkhead, #wait_args))
        };
        let call = &self.call;
        Some(quote! {
            let #permit = match #wait {
                ::core::option::Option::Some(#permit) => #permit,
                ::core::option::Option::None => {
                    #call.wait_refused(#krate::__private::Rejection::Bulkhead);
                    return #refused;
                }
            };
        })
    }

    /// Input:  the attempt's outcome.
    /// Output: statements that return on success or when giving up, ending
    ///         in the delay before the next attempt.
    fn decide(&self) -> TokenStream {
        let krate = self.krate;
        let (outcome, error, delay, call) = (&self.outcome, &self.error, &self.delay, &self.call);
        let retryable_ident = local("retryable");
        let description = local("description");
        let retryable = self.classify();
        let retry_after = match &self.config.retry_after {
            Some(expr) => {
                let at = krate_at(krate, expr.span());
                quote_spanned! {expr.span()=> #at::__private::retry_after(&#error, #expr) }
            }
            None => quote!(::core::option::Option::None),
        };
        let budget = match self.budget_ref() {
            Some(budget) => quote!(::core::option::Option::Some(#budget)),
            None => quote!(::core::option::Option::None),
        };
        let on_retry = self.config.on_retry.as_ref().map(|hook| {
            let at = krate_at(krate, hook.span());
            quote_spanned! {hook.span()=>
                #at::__private::on_retry(&#call.event(&#error, #delay), #hook);
            }
        });
        let give_up = self.give_up(quote!(#error));
        let (record_success, record_outcome) = match self.breaker_ref() {
            Some(_) => {
                let permit = &self.breaker_permit;
                let timed_out = &self.timed_out;
                (
                    Some(quote!(#permit.success();)),
                    Some(quote! {
                        if #retryable_ident || #timed_out { #permit.failure(); } else { #permit.success(); }
                    }),
                )
            }
            None => (None, None),
        };
        quote! {
                let #error = match #outcome {
                    ::core::result::Result::Ok(#outcome) => {
                        #record_success
                        #call.succeeded();
                        return ::core::result::Result::Ok(#outcome);
                    }
                    ::core::result::Result::Err(#error) => #error,
                };
                let #retryable_ident: bool = #retryable;
                #record_outcome
                let #description = {
                    use #krate::__private::{DescribeDebug as _, DescribeDisplay as _, DescribeOpaque as _};
                    (&&&#krate::__private::ErrorRef(&#error)).describe()
                };
                match #call.after_error(#retryable_ident, #retry_after, #budget, #description) {
                    #krate::__private::Decision::Retry(#delay) => {
                        #on_retry
                        #delay
                    }
                    #krate::__private::Decision::GiveUp(_) => return #give_up,
                }
        }
    }

    fn classify(&self) -> TokenStream {
        let krate = self.krate;
        let error = &self.error;
        match &self.config.classify {
            Classify::Every => quote!(true),
            Classify::Only(patterns) => quote!(::core::matches!(#error, #(#patterns)|*)),
            Classify::Except(patterns) => quote!(!::core::matches!(#error, #(#patterns)|*)),
            Classify::Predicate(expr) => {
                let at = krate_at(krate, expr.span());
                quote_spanned! {expr.span()=> #at::__private::retry_if(&#error, #expr) }
            }
        }
    }

    /// `return`s the final error, through `fallback` when there is one.
    fn give_up(&self, error: TokenStream) -> TokenStream {
        let krate = self.krate;
        match &self.config.fallback {
            Some(fallback) => {
                let at = krate_at(krate, fallback.span());
                quote_spanned! {fallback.span()=> #at::__private::fallback(#error, #fallback) }
            }
            None => quote!(::core::result::Result::Err(#error)),
        }
    }

    fn backoff(&self) -> TokenStream {
        let (call, delay) = (&self.call, &self.delay);
        if self.is_async() {
            quote!(#call.backoff(#delay).await;)
        } else {
            quote!(#call.backoff_blocking(#delay);)
        }
    }
}

/// A user expression passed through an identity function of the expected
/// type, spanned at the expression so a type error points there.
fn typed(krate: &syn::Path, check: &str, expr: &Expr) -> TokenStream {
    let check = Ident::new(check, Span::call_site());
    let krate = krate_at(krate, expr.span());
    quote_spanned!(expr.span()=> #krate::__private::#check(#expr))
}

/// The runtime path, located at `span`: rustc underlines a whole call path,
/// so with call-site tokens an error about a key's value would cover the
/// entire attribute instead of the value.
fn krate_at(krate: &syn::Path, span: Span) -> TokenStream {
    let located = Span::call_site().located_at(span);
    respan(quote!(#krate), located)
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

fn duration(krate: &syn::Path, d: std::time::Duration) -> TokenStream {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    quote!(#krate::__private::duration(#secs, #nanos))
}
