//! The pipeline: parse -> validate -> expand. On any error the function is
//! still emitted, unchanged, next to the errors, so its callers keep
//! compiling and rust-analyzer keeps working.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;

use crate::args::Args;
use crate::expand::{expand, expand_block};
use crate::item::Function;
use crate::operation::Door;
use crate::validate::validate;

/// Input:  the attribute's tokens and the annotated item.
/// Output: the expanded function, or the item as written plus every error.
pub(crate) fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: Function = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => return with_errors(item.clone(), not_a_function(&item, error)),
    };
    if let Some(too_deep) = nested_too_deeply(args.clone(), MAX_NESTING) {
        let error = syn::Error::new(
            too_deep,
            "`#[resilient]` arguments nest too deeply; no key needs more than a few levels",
        );
        return with_errors(item, error.to_compile_error());
    }
    let mut errors = Vec::new();
    let args = Args::parse(args, &mut errors);
    let config = validate(args, &function.operation, Some(&function), &mut errors);
    if errors.is_empty() {
        expand(&function, &config)
    } else {
        with_errors(
            item,
            errors.iter().map(syn::Error::to_compile_error).collect(),
        )
    }
}

/// Input:  the tokens inside `retry!(...)`.
/// Output: the block's retry loop as an expression, or the block as
///         written (so types still flow to the caller) plus every error.
pub(crate) fn retry(input: TokenStream) -> TokenStream {
    let (args, operation) = match crate::block::parse(input) {
        Ok(parsed) => parsed,
        Err(error) => return error.to_compile_error(),
    };
    // As the expansion runs it, so `return` and `?` mean the same.
    let unchanged = {
        let body = &operation.body;
        match operation.door {
            Door::AsyncBlock => quote!(async #body),
            Door::Block | Door::Attribute => quote! {{
                #[allow(clippy::redundant_closure_call)]
                let value = (|| #body)();
                value
            }},
        }
    };
    if let Some(too_deep) = nested_too_deeply(args.clone(), MAX_NESTING) {
        let error = syn::Error::new(
            too_deep,
            "`retry!` keys nest too deeply; no key needs more than a few levels",
        );
        return with_errors_around(unchanged, error.to_compile_error());
    }
    let mut errors = Vec::new();
    let args = Args::parse(args, &mut errors);
    let config = validate(args, &operation, None, &mut errors);
    if errors.is_empty() {
        expand_block(&operation, &config)
    } else {
        with_errors_around(
            unchanged,
            errors.iter().map(syn::Error::to_compile_error).collect(),
        )
    }
}

/// An expression keeps its value: the errors are statements before it.
fn with_errors_around(expression: TokenStream, errors: TokenStream) -> TokenStream {
    quote!({ #errors #expression })
}

/// An item that is not a function gets our message; a function whose
/// signature does not parse (half-typed in an editor) gets syn's own.
fn not_a_function(item: &TokenStream, error: syn::Error) -> TokenStream {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(_)) | Err(_) => error.to_compile_error(),
        Ok(other) => syn::Error::new_spanned(
            other,
            "`#[resilient]` applies to a function with a body: an `async fn` or a plain `fn`",
        )
        .to_compile_error(),
    }
}

/// syn parses nested groups recursively; hundreds of levels would overflow
/// rustc's stack instead of reporting an error. Real arguments nest two or
/// three levels (`circuit_breaker(...)`, a closure's block).
const MAX_NESTING: usize = 64;

/// The span of a group nested deeper than `limit`, if any.
fn nested_too_deeply(tokens: TokenStream, limit: usize) -> Option<Span> {
    tokens.into_iter().find_map(|token| match token {
        TokenTree::Group(group) if limit == 0 => Some(group.span()),
        TokenTree::Group(group) => nested_too_deeply(group.stream(), limit - 1),
        _ => None,
    })
}

fn with_errors(item: TokenStream, errors: TokenStream) -> TokenStream {
    quote!(#item #errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(args: TokenStream, item: TokenStream) -> Vec<String> {
        let output = resilient(args, item).to_string();
        output
            .match_indices("compile_error")
            .map(|(at, _)| {
                output[at..]
                    .split(')')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn the_function_survives_every_error() {
        let output = resilient(
            quote!(max_attemps = 3),
            quote!(
                pub async fn fetch() -> Result<u8, E> {
                    Ok(1)
                }
            ),
        )
        .to_string();
        assert!(output.contains("pub async fn fetch"), "{output}");
        assert!(output.contains("compile_error"), "{output}");
    }

    #[test]
    fn messages_are_in_rustc_style() {
        let errors = errors_of(
            quote!(max_attemps = 3, timeout = "1s", timeout = "2s"),
            quote!(
                async fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("unknown key `max_attemps`; did you mean `max_attempts`?"),
            "{errors:?}"
        );
        assert!(errors[1].contains("duplicate key `timeout`"), "{errors:?}");
    }

    #[test]
    fn parse_and_rule_errors_are_reported_together() {
        let errors = errors_of(
            quote!(bogus = 1),
            quote!(
                const fn f() -> u8 {
                    1
                }
            ),
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut value = quote!(1);
        for _ in 0..(MAX_NESTING + 1) {
            value = quote!([#value]);
        }
        let errors = errors_of(
            quote!(retry_on = #value),
            quote!(
                fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("nest too deeply"), "{errors:?}");
    }

    #[test]
    fn non_functions_are_rejected_and_kept() {
        let output = resilient(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(output.contains("struct S"), "{output}");
        assert!(
            output.contains("applies to a function with a body"),
            "{output}"
        );
    }

    #[test]
    fn a_half_typed_signature_gets_syns_error() {
        let errors = errors_of(
            quote!(),
            quote!(
                fn f(x: ) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(!errors[0].contains("applies to a function"), "{errors:?}");
    }

    #[test]
    fn a_half_typed_body_still_expands() {
        let output = resilient(
            quote!(),
            quote!(
                async fn f() -> Result<(), E> {
                    let x = ;
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(output.contains("loop"), "{output}");
        assert!(!output.contains("compile_error"), "{output}");
    }

    #[test]
    fn a_valid_function_expands_into_a_loop() {
        let output = resilient(
            quote!(),
            quote!(
                async fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(output.contains("loop"), "{output}");
        assert!(!output.contains("compile_error"), "{output}");
    }
}
