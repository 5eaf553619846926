//! Which errors are retried: `retry_on`, `no_retry_on` or `retry_if`,
//! turned into patterns on the declared error type.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use super::{Classify, Errors, error, spanned};
use crate::args::Args;
use crate::operation::Operation;
use crate::values::VariantList;

/// Input:  the classification keys.
/// Output: what the expansion matches errors against.
pub(super) fn classification(args: &Args, operation: &Operation, errors: &mut Errors) -> Classify {
    if let Some(predicate) = &args.retry_if {
        return Classify::Predicate(predicate.0.clone());
    }
    if let Some(list) = &args.retry_on {
        return Classify::Only(patterns(list, "retry_on", operation, errors));
    }
    if let Some(list) = &args.no_retry_on {
        return Classify::Except(patterns(list, "no_retry_on", operation, errors));
    }
    Classify::Every
}

/// Input:  `[Io, other::Error::Timeout]` and `-> Result<T, FetchError>`.
/// Output: `FetchError::Io { .. }`, `other::Error::Timeout { .. }`. The
///         brace pattern matches unit, tuple and struct variants alike; the
///         variant keeps the user's span so rustc's "no variant named" error
///         points at it.
fn patterns(
    list: &VariantList,
    key: &str,
    operation: &Operation,
    errors: &mut Errors,
) -> Vec<TokenStream> {
    if list.variants.is_empty() {
        let meaning = if key == "retry_on" {
            "retries no error; name at least one variant, or remove `retry_on`"
        } else {
            "excludes no error; remove `no_retry_on`"
        };
        errors.push(spanned(list.span, format!("`{key} = []` {meaning}")));
    }
    list.variants
        .iter()
        .filter_map(|variant| {
            if variant.leading_colon.is_some() || variant.segments.len() > 1 {
                return Some(quote_spanned!(variant.span()=> #variant { .. }));
            }
            match &operation.error {
                Some(error) => Some(variant_of(error, variant)),
                None => {
                    let why = if operation.is_function() {
                        "the return type does not spell `Result<T, E>`"
                    } else {
                        "a `retry!` block has no signature to read it from"
                    };
                    errors.push(error(
                        variant,
                        format!(
                            "cannot tell which error type `{}` belongs to: {why}; write the full path, e.g. `{key} = [MyError::{}]`",
                            variant.to_token_stream(),
                            variant.to_token_stream(),
                        ),
                    ));
                    None
                }
            }
        })
        .collect()
}

fn variant_of(error: &Type, variant: &syn::Path) -> TokenStream {
    match error {
        Type::Path(path) if path.qself.is_none() => {
            // A type path in pattern position needs a turbofish for generics.
            let mut path = path.path.clone();
            for segment in &mut path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    args.colon2_token.get_or_insert_with(Default::default);
                }
            }
            quote!(#path::#variant { .. })
        }
        other => quote!(<#other>::#variant { .. }),
    }
}
