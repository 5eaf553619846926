//! The annotated function: its signature, parsed, and its body, kept as
//! tokens. The body is only ever spliced back as one block, so it is not
//! parsed: a half-typed body in an editor gets rustc's own error at the
//! mistake (tokio-macros and tracing-attributes do the same).

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, GenericArgument, PathArguments, ReturnType, Signature, Type, Visibility};

use crate::instrumented::lend_arguments;
use crate::operation::{Door, Operation};

/// The annotated function and the facts read from its signature.
pub(crate) struct Function {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// `#![...]` at the top of the body: they belong to the whole function,
    /// not to one attempt.
    pub(crate) inner_attrs: TokenStream,
    /// The body, and what the signature says of its result.
    pub(crate) operation: Operation,
    /// Set when `#[async_trait]` expanded the function first: the body is
    /// then `Box::pin(async move { <prelude> <attempt> })`, and only the
    /// attempt part is retried.
    pub(crate) boxed: Option<Boxed>,
}

/// What `#[async_trait]` wrapped around a method's body.
pub(crate) struct Boxed {
    /// `Box::pin`, as the expansion spelled it.
    pub(crate) callee: TokenStream,
    /// Its statements that run once per call: the arguments moved into the
    /// future (`let x = x;`), which an attempt must not move again.
    pub(crate) prelude: TokenStream,
}

impl Parse for Function {
    /// Input:  `#[attrs] vis sig { body }`.
    /// Output: the parts, the body's tokens untouched but for its leading
    ///         inner attributes.
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let block: Group = input.parse()?;
        if block.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(
                block.span(),
                "expected the function's body `{ ... }`",
            ));
        }
        let (inner_attrs, statements) = split_inner_attrs(block.stream());
        let mut body = Group::new(Delimiter::Brace, statements);
        body.set_span(block.span());
        let (result, error) = match &sig.output {
            ReturnType::Type(_, ty) => read_result(ty),
            ReturnType::Default => (None, None),
        };
        let ident = sig.ident.to_string();
        let mut operation = Operation {
            body,
            is_async: sig.asyncness.is_some(),
            result,
            error,
            default_name: quote!(::core::concat!(::core::module_path!(), "::", #ident)),
            door: Door::Attribute,
        };
        let mut boxed = if operation.is_async {
            None
        } else {
            boxed_future(&sig, &mut operation)
        };
        // `#[tracing::instrument]` written above expanded first.
        if let Some(lent) = lend_arguments(&operation.body, boxed.is_some()) {
            operation.body = lent.body;
            if let Some(boxed) = &mut boxed {
                boxed.prelude.extend(lent.once);
            }
        }
        Ok(Function {
            attrs,
            vis,
            sig,
            inner_attrs,
            operation,
            boxed,
        })
    }
}

impl Function {
    /// Where errors about the return type point: the type, or the name when
    /// there is none.
    pub(crate) fn return_span(&self) -> Span {
        match &self.sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => self.sig.ident.span(),
        }
    }
}

/// Input:  what `#[async_trait]` made of an `async fn`:
///         `fn m(..) -> Pin<Box<dyn Future<Output = R> + Send + '_>> {
///              Box::pin(async move { let __self = self; let x = x; <body> })
///          }`
/// Output: the attempt (`<body>`, async, returning `R`) in `operation`, and
///         the wrapping; `None` for any other shape.
fn boxed_future(sig: &Signature, operation: &mut Operation) -> Option<Boxed> {
    let ReturnType::Type(_, output) = &sig.output else {
        return None;
    };
    let result = future_output(output)?;
    let block: syn::Block = syn::parse2(operation.body.to_token_stream()).ok()?;
    let [syn::Stmt::Expr(syn::Expr::Call(call), None)] = block.stmts.as_slice() else {
        return None;
    };
    let syn::Expr::Path(callee) = &*call.func else {
        return None;
    };
    let mut segments = callee.path.segments.iter().rev();
    let is_box_pin = segments.next().is_some_and(|s| s.ident == "pin")
        && segments.next().is_some_and(|s| s.ident == "Box");
    let [syn::Expr::Async(future)] = call.args.iter().collect::<Vec<_>>().as_slice() else {
        return None;
    };
    if !is_box_pin || future.capture.is_none() {
        return None;
    }
    // The arguments async-trait moves into the future, and its type hint
    // (`if let Some(__ret) = None::<R> { return __ret; }`), run once.
    let once = future
        .block
        .stmts
        .iter()
        .take_while(|stmt| match stmt {
            syn::Stmt::Local(local) => local.init.as_ref().is_some_and(|init| {
                init.diverge.is_none()
                    && matches!(&*init.expr, syn::Expr::Path(p) if p.path.get_ident().is_some())
            }),
            syn::Stmt::Expr(syn::Expr::If(guard), None) => {
                matches!(&*guard.cond, syn::Expr::Let(_))
            }
            _ => false,
        })
        .count();
    let (prelude, attempt) = future.block.stmts.split_at(once);
    let mut body = Group::new(Delimiter::Brace, quote!(#(#attempt)*));
    body.set_span(future.block.brace_token.span.join());
    let (result, error) = read_result(&result);
    operation.body = body;
    operation.is_async = true;
    operation.result = result;
    operation.error = error;
    Some(Boxed {
        callee: callee.to_token_stream(),
        prelude: quote!(#(#prelude)*),
    })
}

/// `R` of `Pin<Box<dyn Future<Output = R> + ..>>`.
fn future_output(ty: &Type) -> Option<Type> {
    let inner = |ty: &Type, name: &str| -> Option<Type> {
        let Type::Path(path) = peel(ty) else {
            return None;
        };
        let last = path.path.segments.last().filter(|s| s.ident == name)?;
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty.clone()),
            _ => None,
        })
    };
    let boxed = inner(ty, "Pin")?;
    let Type::TraitObject(object) = peel(&inner(&boxed, "Box")?).clone() else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last().filter(|s| s.ident == "Future")?;
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
            _ => None,
        })
    })
}

/// Input:  the body's tokens, `#![allow(x)] let a = 1; ...`.
/// Output: `#![allow(x)]`, and `let a = 1; ...`.
fn split_inner_attrs(body: TokenStream) -> (TokenStream, TokenStream) {
    let mut tokens = body.into_iter().peekable();
    let mut inner = Vec::new();
    loop {
        let mut ahead = tokens.clone();
        match (ahead.next(), ahead.next(), ahead.next()) {
            (
                Some(TokenTree::Punct(pound)),
                Some(TokenTree::Punct(bang)),
                Some(TokenTree::Group(g)),
            ) if pound.as_char() == '#'
                && bang.as_char() == '!'
                && g.delimiter() == Delimiter::Bracket =>
            {
                inner.extend(tokens.by_ref().take(3));
            }
            _ => return (inner.into_iter().collect(), tokens.collect()),
        }
    }
}

/// A `Result` is recognised by name: `Result<T, E>`, `io::Result<T>`,
/// `anyhow::Result<T>`, or an alias whose name ends in `Result`. Only the
/// two-argument form tells which `E` bare variant names belong to.
fn read_result(ty: &Type) -> (Option<Type>, Option<Type>) {
    let Type::Path(path) = peel(ty) else {
        return (None, None);
    };
    let Some(last) = path.path.segments.last() else {
        return (None, None);
    };
    if !last.ident.to_string().ends_with("Result") {
        return (None, None);
    }
    let error = match &last.arguments {
        PathArguments::AngleBracketed(args) => {
            let types: Vec<&Type> = args
                .args
                .iter()
                .filter_map(|arg| match arg {
                    GenericArgument::Type(ty) => Some(ty),
                    _ => None,
                })
                .collect();
            match types.as_slice() {
                [_, error] => Some((*error).clone()),
                _ => None,
            }
        }
        _ => None,
    };
    let mut annotation = ty.clone();
    erase_impl_trait(&mut annotation);
    (Some(annotation), error)
}

fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => peel(&group.elem),
        Type::Paren(paren) => peel(&paren.elem),
        other => other,
    }
}

/// `impl Trait` may not annotate a `let` or a closure; `_` lets inference
/// recover the same type from the body. Types nest through generic
/// arguments, references, tuples, arrays, slices and pointers.
fn erase_impl_trait(ty: &mut Type) {
    match ty {
        Type::ImplTrait(impl_trait) => {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.impl_token.span),
            });
        }
        Type::Path(path) => {
            for segment in &mut path.path.segments {
                if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    for arg in &mut args.args {
                        if let GenericArgument::Type(ty) = arg {
                            erase_impl_trait(ty);
                        }
                    }
                }
            }
        }
        Type::Reference(r) => erase_impl_trait(&mut r.elem),
        Type::Ptr(p) => erase_impl_trait(&mut p.elem),
        Type::Slice(s) => erase_impl_trait(&mut s.elem),
        Type::Array(a) => erase_impl_trait(&mut a.elem),
        Type::Paren(p) => erase_impl_trait(&mut p.elem),
        Type::Group(g) => erase_impl_trait(&mut g.elem),
        Type::Tuple(t) => t.elems.iter_mut().for_each(erase_impl_trait),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{ToTokens, quote};

    fn read(item: TokenStream) -> (Option<String>, Option<String>) {
        let function: Function = syn::parse2(item).unwrap();
        let operation = function.operation;
        (
            operation.result.map(|t| t.to_token_stream().to_string()),
            operation.error.map(|t| t.to_token_stream().to_string()),
        )
    }

    #[test]
    fn reads_the_error_type_of_a_full_result() {
        let (result, error) = read(quote!(
            fn f() -> Result<u8, FetchError> {
                todo!()
            }
        ));
        assert_eq!(result.as_deref(), Some("Result < u8 , FetchError >"));
        assert_eq!(error.as_deref(), Some("FetchError"));
    }

    #[test]
    fn io_result_is_a_result_without_a_readable_error() {
        let (result, error) = read(quote!(
            fn f() -> std::io::Result<u8> {
                todo!()
            }
        ));
        assert!(result.is_some());
        assert!(error.is_none());
    }

    #[test]
    fn non_results_are_not_recognised() {
        assert_eq!(
            read(quote!(
                fn f() -> u8 {
                    1
                }
            )),
            (None, None)
        );
        assert_eq!(
            read(quote!(
                fn f() {}
            )),
            (None, None)
        );
        assert_eq!(
            read(quote!(
                fn f() -> Option<u8> {
                    None
                }
            )),
            (None, None)
        );
    }

    #[test]
    fn impl_trait_is_erased_for_annotations() {
        let (result, _) = read(quote!(
            fn f() -> Result<(Vec<impl Display>, &'static [impl Debug]), E> {
                todo!()
            }
        ));
        assert_eq!(
            result.as_deref(),
            Some("Result < (Vec < _ > , & 'static [_]) , E >")
        );
    }

    #[test]
    fn an_async_trait_method_is_retried_inside_its_boxed_future() {
        let function: Function = syn::parse2(quote!(
            fn get<'life0, 'async_trait>(
                &'life0 self,
                key: String,
            ) -> ::core::pin::Pin<
                Box<dyn ::core::future::Future<Output = Result<String, E>> + Send + 'async_trait>,
            > {
                Box::pin(async move {
                    let __self = self;
                    let key = key;
                    let __ret: Result<String, E> = { Ok(key) };
                    __ret
                })
            }
        ))
        .unwrap();
        let boxed = function.boxed.expect("the async-trait shape");
        assert_eq!(boxed.callee.to_string(), "Box :: pin");
        assert_eq!(
            boxed.prelude.to_string(),
            "let __self = self ; let key = key ;"
        );
        let operation = function.operation;
        assert!(operation.is_async);
        assert_eq!(
            operation.result.unwrap().to_token_stream().to_string(),
            "Result < String , E >"
        );
        assert_eq!(operation.error.unwrap().to_token_stream().to_string(), "E");
        assert!(operation.body.stream().to_string().starts_with("let __ret"));
    }

    #[test]
    fn instrument_above_an_async_trait_method_moves_the_arguments_in_once() {
        let function: Function = syn::parse2(quote!(
            fn get<'life0, 'async_trait>(
                &'life0 self,
                key: String,
            ) -> ::core::pin::Pin<
                Box<dyn ::core::future::Future<Output = Result<String, E>> + Send + 'async_trait>,
            > {
                ::std::boxed::Box::pin(async move {
                    let __tracing_attr_span = ::tracing::span!(Level::INFO, "get");
                    let __tracing_instrument_future = async move {
                        let __self = self;
                        let key = key;
                        let __ret: Result<String, E> = { Ok(key) };
                        __ret
                    };
                    __tracing_instrument_future.await
                })
            }
        ))
        .unwrap();
        let boxed = function.boxed.expect("the async-trait shape");
        assert_eq!(
            boxed.prelude.to_string(),
            "let __self = self ; let key = key ;"
        );
        let body = function.operation.body.stream().to_string();
        assert!(
            body.contains("__tracing_instrument_future = async { let __ret"),
            "{body}"
        );
    }

    #[test]
    fn the_body_is_kept_as_tokens_even_when_it_does_not_parse() {
        let function: Function = syn::parse2(quote!(
            async fn f() -> Result<(), E> {
                #![allow(unused)]
                let x = ;
                Ok(())
            }
        ))
        .unwrap();
        assert_eq!(function.inner_attrs.to_string(), "# ! [allow (unused)]");
        assert_eq!(
            function.operation.body.stream().to_string(),
            "let x = ; Ok (())"
        );
    }
}
