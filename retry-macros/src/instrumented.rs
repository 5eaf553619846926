//! A body that `#[tracing::instrument]` expanded first, because it was
//! written above `#[resilient]`. Retrying that body as it stands makes one
//! span per attempt, which is what OpenTelemetry asks of a client, but
//! instrument moves the arguments into its inner `async move` block (or
//! `move ||` closure, with `err` or `ret`), so an attempt could not run
//! twice with an owned argument. Here those `move`s are taken out: each
//! attempt then borrows the arguments, as an attempt of any other body
//! does, and a body that consumes one meets rustc's own "value moved here,
//! in previous iteration of loop", as it would without instrument.
//!
//! Only the `move`s instrument wrote on the way to the user's block are
//! taken out; the user's block is kept as written. It is found by the fake
//! `return` instrument puts first in it (`if false { let
//! __tracing_attr_fake_return: R = ..; return __tracing_attr_fake_return;
//! }`), or, in an `#[async_trait]` method (where instrument wraps
//! async-trait's block instead), by async-trait's `let __ret: R = { .. };`.
//! There async-trait's own `let x = x;` statements, which move the
//! arguments into its block, are taken out of the attempt to run once per
//! call, as they do without instrument.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};

/// A body as each attempt should run it, and what runs once before them.
pub(crate) struct Lent {
    pub(crate) body: Group,
    /// async-trait's `let x = x;` statements, taken out of the body.
    pub(crate) once: TokenStream,
}

/// Input:  a body, `{ .. let __tracing_instrument_future = async move {
///             <fake return> { body } }; .. }` when instrument expanded it;
///         `boxed` when it is the inside of async-trait's `Box::pin`.
/// Output: the same body with `async {` in place of instrument's
///         `async move {` (and `||` for its `move ||`); `None` when
///         instrument did not expand it, or did in a shape not known here
///         (an older tracing-attributes, without the fake return): that
///         body is retried as it stands, which works when the arguments
///         are borrowed or `Copy`, as it did before this rewrite existed.
pub(crate) fn lend_arguments(body: &Group, boxed: bool) -> Option<Lent> {
    if !mentions_instrument(body.stream()) {
        return None;
    }
    let mut once = TokenStream::new();
    let stream = lend(body.stream(), boxed, &mut once)?;
    let mut lent = Group::new(body.delimiter(), stream);
    lent.set_span(body.span());
    Some(Lent { body: lent, once })
}

/// Whether instrument's locals are declared in the body. (In a plain fn
/// without `err` or `ret` they are in a block of their own, but there
/// instrument moves nothing.)
fn mentions_instrument(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| {
        matches!(&token, TokenTree::Ident(ident)
            if ident == "__tracing_attr_span" || ident == "__tracing_instrument_future")
    })
}

/// The tokens with the `move`s that lead to the user's block taken out, or
/// `None` when the user's block is not among them.
fn lend(tokens: TokenStream, boxed: bool, once: &mut TokenStream) -> Option<TokenStream> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    // Each token, rewritten, and whether the user's block is in it.
    let rewritten: Vec<(TokenTree, bool)> = tokens
        .iter()
        .map(|token| match token {
            TokenTree::Group(group) if is_user_block(group) => (token.clone(), true),
            TokenTree::Group(group) if boxed && is_async_trait_block(group) => {
                let (block, decls) = split_async_trait_decls(group);
                once.extend(decls);
                (TokenTree::Group(block), true)
            }
            TokenTree::Group(group) => match lend(group.stream(), boxed, once) {
                Some(stream) => {
                    let mut lent = Group::new(group.delimiter(), stream);
                    lent.set_span(group.span());
                    (TokenTree::Group(lent), true)
                }
                None => (token.clone(), false),
            },
            other => (other.clone(), false),
        })
        .collect();
    if !rewritten.iter().any(|(_, leads)| *leads) {
        return None;
    }
    let leads = |at: usize| rewritten.get(at).is_some_and(|(_, leads)| *leads);
    let is_punct = |at: usize, c: char| matches!(tokens.get(at), Some(TokenTree::Punct(p)) if p.as_char() == c);
    let after_async = |at: usize| {
        at.checked_sub(1)
            .and_then(|before| tokens.get(before))
            .is_some_and(|token| matches!(token, TokenTree::Ident(ident) if ident == "async"))
    };
    let mut out = Vec::with_capacity(rewritten.len());
    for (at, (token, _)) in rewritten.iter().enumerate() {
        let moves_the_block = matches!(token, TokenTree::Ident(ident) if ident == "move")
            && (after_async(at) && leads(at + 1)
                || is_punct(at + 1, '|') && is_punct(at + 2, '|') && leads(at + 3));
        if !moves_the_block {
            out.push(token.clone());
        }
    }
    Some(out.into_iter().collect())
}

/// `{ <fake return> { body } }`: the block instrument made of the user's
/// body, whose first statement is `if false { .. __tracing_attr_fake_return .. }`.
fn is_user_block(group: &Group) -> bool {
    group.delimiter() == Delimiter::Brace
        && group.stream().into_iter().any(|token| {
            matches!(&token, TokenTree::Group(inner)
                if inner.delimiter() == Delimiter::Brace && has_ident(inner.stream(), "__tracing_attr_fake_return"))
        })
}

/// async-trait's block: `{ if let Some(__ret) = None::<R> { return __ret; }
/// let __self = self; let x = x; let __ret: R = { body }; __ret }`.
fn is_async_trait_block(group: &Group) -> bool {
    let_ret(&group.stream().into_iter().collect::<Vec<_>>()).is_some()
}

/// Where `let __ret` starts among a block's tokens.
fn let_ret(tokens: &[TokenTree]) -> Option<usize> {
    tokens.windows(2).position(|pair| {
        matches!(&pair[0], TokenTree::Ident(ident) if ident == "let")
            && matches!(&pair[1], TokenTree::Ident(ident) if ident == "__ret")
    })
}

/// async-trait's block without the statements before `let __ret` that are
/// not its type hint (`if let .. { .. }`): the arguments moved in, with
/// their `#[cfg]`s.
fn split_async_trait_decls(group: &Group) -> (Group, TokenStream) {
    let tokens: Vec<TokenTree> = group.stream().into_iter().collect();
    let end = let_ret(&tokens).unwrap_or(tokens.len());
    // The type hint is `if let <pattern> = <expr> { .. }`: it ends at the
    // first braces.
    let start = match tokens.first() {
        Some(TokenTree::Ident(ident)) if ident == "if" => tokens[..end]
            .iter()
            .position(
                |token| matches!(token, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace),
            )
            .map_or(0, |braces| braces + 1),
        _ => 0,
    };
    let decls: TokenStream = tokens[start..end].iter().cloned().collect();
    let rest: TokenStream = tokens[..start]
        .iter()
        .chain(&tokens[end..])
        .cloned()
        .collect();
    let mut block = Group::new(Delimiter::Brace, rest);
    block.set_span(group.span());
    (block, decls)
}

fn has_ident(tokens: TokenStream, name: &str) -> bool {
    tokens
        .into_iter()
        .any(|token| matches!(&token, TokenTree::Ident(ident) if ident == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    /// The rewritten body, if it was rewritten.
    fn lent(body: TokenStream) -> Option<String> {
        let group = Group::new(Delimiter::Brace, body);
        let lent = lend_arguments(&group, false)?;
        assert!(lent.once.is_empty());
        Some(lent.body.stream().to_string())
    }

    fn user_block() -> TokenStream {
        quote!({
            #[allow(unreachable_code)]
            if false {
                let __tracing_attr_fake_return: Result<(), E> = loop {};
                return __tracing_attr_fake_return;
            }
            {
                let f = async move { name.len() };
                let g = move || name;
                Ok(())
            }
        })
    }

    #[test]
    fn an_async_body_borrows_and_the_users_moves_stay() {
        let block = user_block();
        let body = lent(quote! {
            {}
            let __tracing_attr_span = ::tracing::span!(Level::INFO, "f");
            let x = async move { 1 };
            let y = move || { 2 };
            let __tracing_instrument_future = async move #block;
            if !__tracing_attr_span.is_disabled() {
                ::tracing::Instrument::instrument(__tracing_instrument_future, __tracing_attr_span).await
            } else {
                __tracing_instrument_future.await
            }
        })
        .unwrap();
        assert!(
            body.contains("__tracing_instrument_future = async {"),
            "{body}"
        );
        assert!(
            body.contains("x = async move { 1 }"),
            "off the way to the block: {body}"
        );
        assert!(
            body.contains("y = move || { 2 }"),
            "off the way to the block: {body}"
        );
        assert!(
            body.contains("let f = async move { name . len () }"),
            "{body}"
        );
        assert!(body.contains("let g = move || name"), "{body}");
    }

    #[test]
    fn err_and_ret_wrappers_borrow_too() {
        let block = user_block();
        let body = lent(quote! {
            let __tracing_attr_span = span();
            let __tracing_instrument_future = async move {
                match async move #block.await {
                    Ok(x) => Ok(x),
                    Err(e) => { event(move || e); Err(e) }
                }
            };
            __tracing_instrument_future.await
        })
        .unwrap();
        assert!(body.contains("= async { match async {"), "{body}");
        assert!(
            body.contains("event (move || e)"),
            "off the way to the block: {body}"
        );
        assert_eq!(body.matches("move").count(), 3, "{body}");
    }

    #[test]
    fn a_plain_body_borrows_in_its_closure() {
        let block = user_block();
        let body = lent(quote! {
            let __tracing_attr_span;
            let __tracing_attr_guard;
            match (move || #block)() {
                Ok(x) => Ok(x),
                Err(e) => Err(e),
            }
        })
        .unwrap();
        assert!(body.contains("match (|| {"), "{body}");
        // `move` binds a closure only when `||` follows it.
        let body = lent(quote! {
            let __tracing_attr_span;
            (move | #block)
        })
        .unwrap();
        assert!(body.contains("(move |"), "{body}");
        let body = lent(quote! {
            let __tracing_attr_span;
            { #block }
        });
        assert!(body.is_some());
    }

    #[test]
    fn a_body_without_instrument_is_left_alone() {
        let block = user_block();
        assert_eq!(lent(quote!(let f = async move #block; Ok(()))), None);
    }

    #[test]
    fn a_body_that_only_looks_like_async_traits_is_left_alone() {
        // Without instrument's locals, nothing is rewritten, not even a
        // block of the user's that names `__ret` in an async-trait method.
        let body = Group::new(
            Delimiter::Brace,
            quote!(let f = async move { let __ret = 1; __ret }; f.await),
        );
        assert!(lend_arguments(&body, true).is_none());
    }

    #[test]
    fn instruments_locals_without_its_block_are_left_alone() {
        assert_eq!(
            lent(quote! {
                let __tracing_attr_span = span();
                let __tracing_instrument_future = async move { let key = key; Ok(key) };
                __tracing_instrument_future.await
            }),
            None
        );
        assert_eq!(
            lent(quote! {
                let __tracing_instrument_future = async move { let __ret = key; __ret };
            }),
            None,
            "async-trait's block is looked for in async-trait's methods only"
        );
    }

    #[test]
    fn an_async_trait_block_keeps_its_type_hint_and_moves_the_arguments_once() {
        let body = Group::new(
            Delimiter::Brace,
            quote! {
                let __tracing_attr_span = span();
                let __tracing_instrument_future = async move {
                    if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<R> {
                        return __ret;
                    }
                    let __self = self;
                    #[cfg(unix)]
                    let key = key;
                    let __ret: R = { Ok(key) };
                    __ret
                };
                __tracing_instrument_future.await
            },
        );
        let lent = lend_arguments(&body, true).unwrap();
        assert_eq!(
            lent.once.to_string(),
            "let __self = self ; # [cfg (unix)] let key = key ;"
        );
        let body = lent.body.stream().to_string();
        assert!(
            body.contains("= async { if let :: core :: option :: Option :: Some (__ret)"),
            "{body}"
        );
        assert!(
            body.contains("} let __ret : R = { Ok (key) } ; __ret }"),
            "{body}"
        );
        // A pattern argument's statement holds braces of its own.
        let without_hint = Group::new(
            Delimiter::Brace,
            quote! {
                let __tracing_instrument_future = async move {
                    let (a, b) = { let __arg1 = __arg1; __arg1 };
                    let __ret: R = { Ok(a + b) };
                    __ret
                };
            },
        );
        let lent = lend_arguments(&without_hint, true).unwrap();
        assert_eq!(
            lent.once.to_string(),
            "let (a , b) = { let __arg1 = __arg1 ; __arg1 } ;"
        );
    }
}
