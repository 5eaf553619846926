//! The pipeline: parse -> validate -> expand. On any error the function is
//! still emitted, unchanged, next to the errors, so its callers keep
//! compiling and rust-analyzer keeps working.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::args::Args;
use crate::expand::expand;
use crate::function::Function;
use crate::validate::validate;

/// Input:  the attribute's tokens and the annotated item.
/// Output: the expanded function, or the item as written plus every error.
pub(crate) fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                "`#[resilient]` applies to a function with a body: an `async fn` or a plain `fn`",
            );
            return with_errors(item, error.to_compile_error());
        }
    };
    let function = Function::read(item_fn);
    let mut errors = darling::Error::accumulator();
    let args = errors.handle(Args::parse(args)).unwrap_or_default();
    let config = errors.handle(validate(args, &function));
    match (errors.finish(), config) {
        (Ok(()), Some(config)) => expand(&function, &config),
        (Err(errors), _) => with_errors(item, rustc_style(errors)),
        (Ok(()), None) => item,
    }
}

fn with_errors(item: TokenStream, errors: TokenStream) -> TokenStream {
    quote!(#item #errors)
}

/// darling words its own messages ("Unknown field: `x`. Did you mean `y`?");
/// rustc's style is lowercase with no trailing period.
fn rustc_style(errors: darling::Error) -> TokenStream {
    errors
        .flatten()
        .into_iter()
        .map(|error| {
            let span = error.span();
            let message = error
                .to_string()
                .replace("Unknown field:", "unknown key")
                .replace("Duplicate field", "duplicate key")
                .replace(". Did you mean", "; did you mean")
                .replace(" at circuit_breaker", " in `circuit_breaker(...)`");
            let mut chars = message.chars();
            let message: String = match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => message,
            };
            syn::Error::new(span, message.trim_end_matches('.')).to_compile_error()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(args: TokenStream, item: TokenStream) -> Vec<String> {
        let output = resilient(args, item).to_string();
        output
            .match_indices("compile_error")
            .map(|(at, _)| output[at..].split(')').next().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn the_function_survives_every_error() {
        let output = resilient(
            quote!(max_attemps = 3),
            quote!(pub async fn fetch() -> Result<u8, E> { Ok(1) }),
        )
        .to_string();
        assert!(output.contains("pub async fn fetch"), "{output}");
        assert!(output.contains("compile_error"), "{output}");
    }

    #[test]
    fn messages_are_in_rustc_style() {
        let errors = errors_of(quote!(max_attemps = 3, timeout = "1s", timeout = "2s"), quote!(
            async fn f() -> Result<(), E> { Ok(()) }
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("unknown key `max_attemps`; did you mean `max_attempts`?"), "{errors:?}");
        assert!(errors[1].contains("duplicate key `timeout`"), "{errors:?}");
    }

    #[test]
    fn parse_and_rule_errors_are_reported_together() {
        let errors = errors_of(quote!(bogus = 1), quote!(const fn f() -> u8 { 1 }));
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn non_functions_are_rejected_and_kept() {
        let output = resilient(quote!(), quote!(struct S;)).to_string();
        assert!(output.contains("struct S"), "{output}");
        assert!(output.contains("applies to a function with a body"), "{output}");
    }

    #[test]
    fn a_valid_function_expands_into_a_loop() {
        let output = resilient(quote!(), quote!(async fn f() -> Result<(), E> { Ok(()) })).to_string();
        assert!(output.contains("loop"), "{output}");
        assert!(!output.contains("compile_error"), "{output}");
    }
}
