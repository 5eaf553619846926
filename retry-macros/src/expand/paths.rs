//! Paths into the runtime, located at the user's tokens.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::quote;

/// The runtime path, located at `span`: rustc underlines a whole call path,
/// so with call-site tokens an error about a key's value would cover the
/// entire attribute instead of the value.
pub(super) fn krate_at(krate: &syn::Path, span: Span) -> TokenStream {
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
