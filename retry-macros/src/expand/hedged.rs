//! A hedged attempt: the round of `__private::hedged_round` (the attempt
//! and its hedges, raced by the runtime) in place of one attempt; its
//! result is decided as one attempt's.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Body;
use crate::validate::Hedging;

impl Body<'_> {
    /// The `Hedge` of an inline `hedge(..)`, built with its public `const`
    /// builders (the runtime holds the defaults of the keys not written).
    pub(super) fn inline_hedge(&self) -> Option<TokenStream> {
        let krate = self.krate;
        let Some(Hedging::Inline {
            after,
            max_hedges,
            max_extra_load,
        }) = &self.config.hedge
        else {
            return None;
        };
        let after = match after {
            retry_rules::HedgeAfter::Quantile(q) => quote!(after_quantile(#q)),
            retry_rules::HedgeAfter::Delay(delay) => {
                let delay = crate::values::duration(*delay);
                quote!(after(#delay))
            }
        };
        let max_hedges = max_hedges.map(|n| quote!(.max_hedges(#n)));
        let max_extra_load = max_extra_load.map(|f| quote!(.max_extra_load(#f)));
        Some(quote! {
            static __RESILIENT_HEDGE: #krate::__private::Hedge =
                #krate::__private::Hedge::#after #max_hedges #max_extra_load;
        })
    }

    /// Input:  the body `{ ... }`, with `hedge`.
    /// Output: `let (admitted, outcome) = match hedged_round(..).await {
    ///         Settle(admitted, outcome) => (admitted, outcome),
    ///         Refused(refusal) => return <fallback>(convert(refusal)) };`:
    ///         the attempts of one round, each admitted by the protections
    ///         and under its time limit, judged by the same classification
    ///         as an unhedged attempt. The body is a closure's `async` block
    ///         that owns its `Attempt` and borrows the rest, so hedges share
    ///         the function's arguments.
    pub(super) fn hedged_attempt(&self) -> TokenStream {
        let krate = self.krate;
        let config = self.config;
        let (call, admitted, outcome) = (&self.call, &self.admitted, &self.outcome);
        let hedge = match &config.hedge {
            // Passed as written: a wrong type is reported at it.
            Some(Hedging::Shared(expr)) => quote_spanned!(expr.span()=> #expr),
            _ => quote!(&__RESILIENT_HEDGE),
        };
        let protections = config.protections();
        let (admits, bounds_waits) = (protections.admits(), protections.bounds_waits());
        let guards = self.guards();
        let conversions = self.conversions(true);
        let error = super::local("error");
        let error_ref = quote!(#error);
        let classify = self.classify(&error_ref);
        let retry_after = self.retry_after(&error_ref);
        let breaker_if = match self.breaker_if(&error_ref) {
            Some(counts) => quote!(::core::option::Option::Some(#counts)),
            None => quote!(::core::option::Option::None),
        };
        let body = self.hedged_body();
        let refusal = super::local("refusal");
        let refused = self.exit(self.give_up(self.refused(&refusal)));
        let annotation = self
            .operation
            .result
            .as_ref()
            .map(|result| quote!(: (_, #result)));
        let mutable = config.breaker_if.as_ref().map(|_| quote!(mut));
        let binding = if admits {
            quote!(#mutable #admitted)
        } else {
            quote!(_)
        };
        quote! {
            let (#binding, #outcome) #annotation = match #krate::__private::hedged_round(
                #hedge,
                &mut #call,
                #guards,
                (#admits, #bounds_waits),
                #body,
                #conversions,
                |#error| (#classify, #retry_after, #breaker_if),
            )
            .await
            {
                #krate::__private::HedgedRound::Settle(#admitted, #outcome) => (#admitted, #outcome),
                #krate::__private::HedgedRound::Refused(#refusal) => #refused,
            };
        }
    }

    /// `|a| async { let attempt = a.get(); body }`, or `|_| async { body }`
    /// when the body does not ask for its `Attempt`; spanned at the body,
    /// so that a borrow error points into the user's code.
    fn hedged_body(&self) -> TokenStream {
        let krate = self.krate;
        let body = &self.operation.body;
        let span = body.span();
        match &self.config.attempt {
            Some(name) => {
                let given = super::local("given");
                quote_spanned! {span=>
                    |#given: #krate::__private::HedgeAttempt| async {
                        let #name: #krate::__private::Attempt = #given.get();
                        #body
                    }
                }
            }
            None => quote_spanned!(span=> |_| async #body),
        }
    }
}
