//! The `retry!` door: `keys...; async { .. }` or `keys...; { .. }`. The
//! keys are the attribute's; the block is kept as tokens, like a function's
//! body.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::quote;

use crate::operation::{Door, Operation};

/// Input:  the tokens inside `retry!(...)`.
/// Output: the keys' tokens, and the block as an operation whose name is
///         the call site's `module_path:line:column`.
pub(crate) fn parse(input: TokenStream) -> syn::Result<(TokenStream, Operation)> {
    let mut tokens = input.into_iter().peekable();
    let mut args = TokenStream::new();
    let mut separated = false;
    for token in tokens.by_ref() {
        if matches!(&token, TokenTree::Punct(p) if p.as_char() == ';') {
            separated = true;
            break;
        }
        args.extend([token]);
    }
    let rest: Vec<TokenTree> = tokens.collect();
    if !separated {
        return Err(syn::Error::new_spanned(
            &args,
            "`retry!` takes the keys, then `;`, then the block: `retry!(max_attempts = 3; async { .. })`",
        ));
    }
    let (is_async, block) = match rest.as_slice() {
        [TokenTree::Group(block)] => (false, block),
        [TokenTree::Ident(kw), TokenTree::Group(block)] if kw == "async" => (true, block),
        [TokenTree::Ident(kw), TokenTree::Ident(mv), ..] if kw == "async" && mv == "move" => {
            return Err(syn::Error::new(
                mv.span(),
                "`retry!` runs the block once per attempt, so the block cannot move what it captures; remove `move` (clone inside the block what an attempt must own)",
            ));
        }
        _ => {
            let span = rest
                .first()
                .map_or_else(proc_macro2::Span::call_site, TokenTree::span);
            return Err(syn::Error::new(
                span,
                "expected the block to retry after `;`: `async { .. }` for a future, or `{ .. }` to run it at once",
            ));
        }
    };
    if block.delimiter() != Delimiter::Brace {
        return Err(syn::Error::new(
            block.span(),
            "expected the block to retry after `;`: `async { .. }` for a future, or `{ .. }` to run it at once",
        ));
    }
    let mut body = Group::new(Delimiter::Brace, block.stream());
    body.set_span(block.span());
    let operation = Operation {
        body,
        is_async,
        result: None,
        error: None,
        default_name: quote!(::core::concat!(
            ::core::module_path!(),
            ":",
            ::core::line!(),
            ":",
            ::core::column!()
        )),
        door: if is_async {
            Door::AsyncBlock
        } else {
            Door::Block
        },
    };
    Ok((args, operation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_end_at_the_first_semicolon() {
        let (args, operation) =
            parse(quote!(max_attempts = 3, timeout = "1s"; async { f().await })).unwrap();
        assert_eq!(
            args.to_string(),
            quote!(max_attempts = 3, timeout = "1s").to_string()
        );
        assert!(operation.is_async);
        assert_eq!(operation.body.stream().to_string(), "f () . await");
        let (args, operation) = parse(quote!(; { read() })).unwrap();
        assert!(args.is_empty() && !operation.is_async);
    }

    #[test]
    fn mistakes_in_the_shape_say_what_is_expected() {
        let message = |input| parse(input).err().unwrap().to_string();
        assert!(message(quote!(max_attempts = 3)).contains("then `;`, then the block"));
        assert!(message(quote!(max_attempts = 3; f())).contains("expected the block"));
        assert!(message(quote!(; async move { x })).contains("remove `move`"));
    }
}
