//! The pipeline: parse -> validate -> expand. On any error the function is
//! still emitted, unchanged, next to the errors, so its callers keep
//! compiling and rust-analyzer keeps working.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::args::{Args, KEYS};
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
    if let Some(too_deep) = nested_too_deeply(args.clone(), MAX_NESTING) {
        let error = syn::Error::new(
            too_deep,
            "`#[resilient]` arguments nest too deeply; no key needs more than a few levels",
        );
        return with_errors(item, error.to_compile_error());
    }
    let mut errors = darling::Error::accumulator();
    let args = Args::parse(args, &mut errors);
    let config = errors.handle(validate(args, &function));
    match (errors.finish(), config) {
        (Ok(()), Some(config)) => expand(&function, &config),
        (Err(errors), _) => with_errors(item, rustc_style(errors)),
        (Ok(()), None) => item,
    }
}

/// syn parses nested groups recursively; hundreds of levels would overflow
/// rustc's stack instead of reporting an error. Real arguments nest two or
/// three levels (`circuit_breaker(...)`, a closure's block).
const MAX_NESTING: usize = 64;

/// The span of a group nested deeper than `limit`, if any.
fn nested_too_deeply(tokens: TokenStream, limit: usize) -> Option<proc_macro2::Span> {
    tokens.into_iter().find_map(|token| match token {
        proc_macro2::TokenTree::Group(group) if limit == 0 => Some(group.span()),
        proc_macro2::TokenTree::Group(group) => nested_too_deeply(group.stream(), limit - 1),
        _ => None,
    })
}

fn with_errors(item: TokenStream, errors: TokenStream) -> TokenStream {
    quote!(#item #errors)
}

/// darling words its own messages ("Unknown field: `x`. Did you mean `y`?")
/// and appends where the error is (" at max_attempts"); rustc's style is
/// lowercase, names the key up front and has no trailing period.
fn rustc_style(errors: darling::Error) -> TokenStream {
    errors
        .flatten()
        .into_iter()
        .map(|error| {
            let span = error.span();
            let message = reword(&error.to_string());
            syn::Error::new(span, message).to_compile_error()
        })
        .collect()
}

fn reword(message: &str) -> String {
    let (message, location) = split_location(message);
    let mut message = message
        .replace("Unknown field:", "unknown key")
        .replace("Duplicate field", "duplicate key")
        .replace(". Did you mean", "; did you mean");
    if let Some(first) = message.get(..1) {
        message = first.to_lowercase() + &message[1..];
    }
    let message = message.trim_end_matches('.').to_owned();
    let Some(location) = location else {
        return message;
    };
    // `circuit_breaker/window`: the key is the last part, nested in the first.
    let (key, within) = match location.rsplit_once('/') {
        Some((outer, key)) => (key, format!(" in `{outer}(...)`")),
        None => (location, String::new()),
    };
    if let Some(rest) = message.strip_prefix("unknown key ") {
        // darling's location of an unknown nested key is the enclosing key.
        let (name, hint) = rest.split_once(';').unwrap_or((rest, ""));
        return format!("unknown key {name} in `{location}(...)`;{hint}")
            .trim_end_matches(';')
            .to_owned();
    }
    if message.starts_with("unexpected meta-item format `word`") {
        return format!("`{key}`{within} needs a value, e.g. `{key} = ...`");
    }
    if message.starts_with("unexpected type") || message.starts_with("unexpected literal type") {
        return format!(
            "`{key}`{within} expects a string literal, e.g. `{key} = \"billing.charge\"`"
        );
    }
    if message.contains(&format!("`{key}`")) || message.starts_with(&format!("unknown {key}")) {
        return message;
    }
    format!("invalid `{key}`{within}: {message}")
}

/// Splits darling's trailing " at key/nested_key" off a message.
fn split_location(message: &str) -> (&str, Option<&str>) {
    match message.rsplit_once(" at ") {
        Some((text, location)) if location.split('/').all(|key| KEYS.contains(&key)) => {
            (text, Some(location))
        }
        _ => (message, None),
    }
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
    fn darling_locations_become_key_names() {
        assert_eq!(
            reword("expected an integer, e.g. `3` at max_attempts"),
            "invalid `max_attempts`: expected an integer, e.g. `3`"
        );
        assert_eq!(
            reword(
                "Unknown field: `failure_treshold`. Did you mean `failure_threshold`? at circuit_breaker"
            ),
            "unknown key `failure_treshold` in `circuit_breaker(...)`; did you mean `failure_threshold`?"
        );
        assert_eq!(
            reword("Unexpected meta-item format `word` at circuit_breaker/window"),
            "`window` in `circuit_breaker(...)` needs a value, e.g. `window = ...`"
        );
        assert_eq!(
            reword("unknown backoff `\"expo\"`; expected one of `\"fixed\"` at backoff"),
            "unknown backoff `\"expo\"`; expected one of `\"fixed\"`"
        );
        assert_eq!(
            reword("`max_attempts` must be at least 1 (got 0)"),
            "`max_attempts` must be at least 1 (got 0)"
        );
        assert_eq!(
            reword("allowed in flight at once"),
            "allowed in flight at once",
            "not a location"
        );
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
