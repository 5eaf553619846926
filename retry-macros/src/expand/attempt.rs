//! One attempt: admitted by the protections, run (within its time limit),
//! and judged.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Body;
use super::paths::krate_at;
use retry_rules::Refusal;

use crate::validate::Classify;

impl Body<'_> {
    /// Input:  the body `{ ... }`.
    /// Output: `call.begin_attempt(); let admitted = ...; let outcome:
    ///         Result<T, E> = ...;`: the attempt's span is made (with the
    ///         runtime's `tracing`; nothing without), the breaker, rate
    ///         limiter and bulkhead admit the attempt (or the call ends with
    ///         `E::from` of the refusal), then the body runs in the span,
    ///         cancelled at its time limit when there is one.
    pub(super) fn attempt(&self) -> TokenStream {
        let (outcome, call) = (&self.outcome, &self.call);
        // A block's result type is inferred from the block.
        let annotation = self
            .operation
            .result
            .as_ref()
            .map(|result| quote!(: #result));
        let admit = self.admit();
        let run = self.run();
        // Bound under the user's name, so the body sees it; made only when
        // asked for, so an attempt that does not ask costs nothing.
        let binding = self.config.attempt.as_ref().map(|name| {
            let (krate, call) = (self.krate, &self.call);
            quote!(let #name: #krate::__private::Attempt = #call.attempt();)
        });
        quote! {
            #call.begin_attempt();
            #admit
            #[allow(unreachable_code)]
            let #outcome #annotation = {
                #binding
                #run
            };
        }
    }

    /// What the attempt was admitted with: nothing to carry when no
    /// protection admits it, so the value is made where it is consumed and
    /// never held across the body's awaits.
    fn admitted(&self) -> TokenStream {
        if self.config.protections().admits() {
            let admitted = &self.admitted;
            quote!(#admitted)
        } else {
            quote!(::core::default::Default::default())
        }
    }

    /// Whether something admitting the attempt judges its outcome: a
    /// breaker counts a timeout as a failure, an adaptive limit (any
    /// `concurrency` may be one) as a drop.
    pub(super) fn judges_outcome(&self) -> bool {
        self.config.circuit_breaker.is_some() || self.config.concurrency.is_some()
    }

    /// Whether an attempt can be cut short by `timeout` or `deadline`.
    fn can_time_out(&self) -> bool {
        self.is_async() && self.config.protections().limits_time()
    }

    fn admit(&self) -> TokenStream {
        let krate = self.krate;
        let (call, admitted) = (&self.call, &self.admitted);
        let config = self.config;
        let protections = config.protections();
        if !protections.admits() {
            return TokenStream::new();
        }
        let judged = self.can_time_out() || config.breaker_if.is_some();
        let mutable = (self.judges_outcome() && judged).then(|| quote!(mut));
        let guards = self.guards();
        // The waits' futures are polled only when a token or permit is not
        // free at once; a plain fn, or a breaker alone, never awaits.
        let admit = if self.is_async() && protections.waits() {
            let waiting = super::local("waiting");
            // Bounded waits need timers; unbounded ones do without, and
            // their futures are half the size.
            let wait = if protections.bounds_waits() {
                quote!(#call.admit_within(#guards, &mut #waiting).await.map(|()| #waiting))
            } else {
                quote! {{
                    #call.admit(#guards, &mut #waiting).await;
                    ::core::result::Result::Ok(#waiting)
                }}
            };
            // The admission is matched in a `let` of its own, so that it is
            // not kept in the future across the wait as a `match` temporary.
            let label = syn::Lifetime {
                apostrophe: Span::mixed_site(),
                ident: super::local("admit"),
            };
            quote! {
                #label: {
                    let mut #waiting = match #call.try_admit(#guards) {
                        #krate::__private::Admission::Done(#admitted) => break #label #admitted,
                        #krate::__private::Admission::Wait(#waiting) => #waiting,
                    };
                    #wait
                }
            }
        } else {
            quote!(#call.admit_blocking(#guards))
        };
        let refusal = super::local("refusal");
        let refused = self.exit(self.give_up(self.refused(&refusal)));
        quote! {
            let #mutable #admitted = match #admit {
                ::core::result::Result::Ok(#admitted) => #admitted,
                ::core::result::Result::Err(#refusal) => #refused,
            };
        }
    }

    /// Input:  the refusal admission returned.
    /// Output: `Conversions::new().circuit_open(circuit_open)...convert(refusal)`:
    ///         the runtime turns the refusal into `E`, with a conversion from
    ///         each key that can cause one (`Protections::can_refuse`, which
    ///         the runtime's admission keeps to), passed at that key so that
    ///         a missing `From` impl is reported there.
    pub(super) fn refused(&self, refusal: &syn::Ident) -> TokenStream {
        let conversions = self.conversions(false);
        quote!(#conversions.convert(#refusal))
    }

    /// `Conversions::new().circuit_open(..)...`: one conversion per key that
    /// can refuse an attempt, and with `timed_out` one for an attempt that
    /// runs out of time (at `timeout`, else `deadline`), which a hedged
    /// round converts itself.
    pub(super) fn conversions(&self, timed_out: bool) -> TokenStream {
        let krate = self.krate;
        let config = self.config;
        let protections = config.protections();
        let time_limit = config.timeout.or(config.deadline).filter(|_| timed_out);
        let conversions = Refusal::ALL.into_iter().filter_map(|refusal| {
            let can = protections.can_refuse(refusal);
            let (conversion, span) = match refusal {
                Refusal::CircuitOpen if can => ("circuit_open", config.breaker_span()),
                Refusal::Rejected if can => ("rejected", config.max_wait.map(|d| d.span)),
                Refusal::Elapsed if can => ("elapsed", config.deadline.map(|d| d.span)),
                Refusal::Elapsed => ("elapsed", Some(time_limit?.span)),
                _ => return None,
            };
            let span = span.unwrap_or_else(Span::call_site);
            let at = krate_at(krate, span);
            let conversion = syn::Ident::new(conversion, span);
            Some(quote_spanned!(span=> .#conversion(#at::__private::#conversion)))
        });
        quote! {
            #krate::__private::Conversions::new() #(#conversions)*
        }
    }

    fn run(&self) -> TokenStream {
        let krate = self.krate;
        let (call, admitted) = (&self.call, &self.admitted);
        let body = &self.operation.body;
        // Spanned at the body, so a borrow error ("value moved here, in
        // previous iteration of loop") points into the user's code.
        let body_span = body.span();
        if !self.is_async() {
            let result = self
                .operation
                .result
                .as_ref()
                .map(|result| quote!(-> #result));
            return quote_spanned! {body_span=>
                #call.in_attempt(|| #result #body)
            };
        }
        let attempt = quote_spanned!(body_span=> #call.instrument(async #body));
        let Some(limit) = self.config.timeout.or(self.config.deadline) else {
            return quote!(#attempt.await);
        };
        let at = krate_at(krate, limit.span);
        let elapsed = quote_spanned!(limit.span=> #at::__private::elapsed());
        let flag = self
            .judges_outcome()
            .then(|| quote!(#admitted.timed_out();));
        quote! {
            match #call.with_time_limit(#attempt).await {
                ::core::result::Result::Ok(#admitted) => #admitted,
                ::core::result::Result::Err(_) => {
                    #flag
                    ::core::result::Result::Err(#elapsed)
                }
            }
        }
    }

    /// Input:  the attempt's outcome.
    /// Output: statements that return on success or when giving up, ending
    ///         in the delay before the next attempt.
    pub(super) fn decide(&self) -> TokenStream {
        let krate = self.krate;
        let (outcome, error, delay, call) = (&self.outcome, &self.error, &self.delay, &self.call);
        let admitted = self.admitted();
        let guards = self.guards();
        let retryable = super::local("retryable");
        let description = super::local("description");
        let error_ref = quote!(&#error);
        let classify = self.classify(&error_ref);
        let retry_after = self.retry_after(&error_ref);
        // Judged before `after_error`, which records the breaker's outcome.
        let breaker_if = self
            .breaker_if(&error_ref)
            .map(|counts| quote!(#admitted.breaker_judges(#counts);));
        let on_retry = self.config.on_retry.as_ref().map(|hook| {
            let at = krate_at(krate, hook.span());
            if self.config.on_retry_is_async {
                quote_spanned! {hook.span()=>
                    #at::__private::on_retry_async(&#call.event(&#error, #delay), #hook).await;
                }
            } else {
                quote_spanned! {hook.span()=>
                    #at::__private::on_retry(&#call.event(&#error, #delay), #hook);
                }
            }
        });
        let give_up = self.exit(self.give_up(quote!(#error)));
        let succeed = self.exit(quote!(::core::result::Result::Ok(#outcome)));
        quote! {
            let #error = match #outcome {
                ::core::result::Result::Ok(#outcome) => {
                    #call.succeeded(#admitted);
                    #succeed;
                }
                ::core::result::Result::Err(#error) => #error,
            };
            let #retryable: bool = #classify;
            let #description = {
                use #krate::__private::describe::*;
                (&&&ErrorRef(&#error)).describe()
            };
            #breaker_if
            match #call.after_error(#guards, #admitted, #retryable, #retry_after, #description) {
                #krate::__private::Decision::Retry(#delay) => {
                    #on_retry
                    #delay
                }
                #krate::__private::Decision::GiveUp(_) => #give_up,
            }
        }
    }

    /// Input:  `error`, an expression of type `&E`.
    /// Output: whether it is retried (`retry_on`, `no_retry_on`,
    ///         `retry_if`), a `bool`.
    pub(super) fn classify(&self, error: &TokenStream) -> TokenStream {
        let krate = self.krate;
        match &self.config.classify {
            Classify::Every => quote!(true),
            Classify::Only(patterns) => quote!(::core::matches!(*#error, #(#patterns)|*)),
            Classify::Except(patterns) => quote!(!::core::matches!(*#error, #(#patterns)|*)),
            Classify::Predicate(expr) => {
                let at = krate_at(krate, expr.span());
                quote_spanned! {expr.span()=> #at::__private::retry_if(#error, #expr) }
            }
        }
    }

    /// Input:  `error`, an expression of type `&E`.
    /// Output: the server's hint (`retry_after`), an `Option<Duration>`.
    pub(super) fn retry_after(&self, error: &TokenStream) -> TokenStream {
        match &self.config.retry_after {
            Some(expr) => {
                let at = krate_at(self.krate, expr.span());
                quote_spanned! {expr.span()=> #at::__private::retry_after(#error, #expr) }
            }
            None => quote!(::core::option::Option::None),
        }
    }

    /// Input:  `error`, an expression of type `&E`.
    /// Output: whether the breaker counts it (`breaker_if`), a `bool`, if
    ///         the key is written.
    pub(super) fn breaker_if(&self, error: &TokenStream) -> Option<TokenStream> {
        self.config.breaker_if.as_ref().map(|expr| {
            let at = krate_at(self.krate, expr.span());
            quote_spanned! {expr.span()=> #at::__private::breaker_if(#error, #expr) }
        })
    }

    /// `return`s the final error, through `fallback` when there is one.
    pub(super) fn give_up(&self, error: TokenStream) -> TokenStream {
        let krate = self.krate;
        match &self.config.fallback {
            Some(fallback) if self.config.fallback_is_async => {
                let at = krate_at(krate, fallback.span());
                quote_spanned! {fallback.span()=> #at::__private::fallback_async(#error, #fallback).await }
            }
            Some(fallback) => {
                let at = krate_at(krate, fallback.span());
                quote_spanned! {fallback.span()=> #at::__private::fallback(#error, #fallback) }
            }
            None => quote!(::core::result::Result::Err(#error)),
        }
    }
}
