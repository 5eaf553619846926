//! What the expansion needs to know about the annotated function, read from
//! its signature alone.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{GenericArgument, ItemFn, PathArguments, ReturnType, Type};

/// The annotated function and the facts read from its signature.
pub(crate) struct Function {
    pub(crate) item: ItemFn,
    /// `Result<T, E>` with `impl Trait` replaced by `_`, so it can annotate a
    /// `let` or a closure's return type; `None` when the function does not
    /// visibly return a `Result`.
    pub(crate) result: Option<Type>,
    /// The declared `E`, when the signature spells it (`Result<T, E>`), so
    /// bare `retry_on` variants can be resolved as `E::Variant`.
    pub(crate) error: Option<Type>,
}

impl Function {
    /// Input:  the item under `#[resilient]`.
    /// Output: the function and what its signature says, or `None` if the
    ///         item is not a function with a body.
    pub(crate) fn read(item: ItemFn) -> Self {
        let (result, error) = match &item.sig.output {
            ReturnType::Type(_, ty) => read_result(ty),
            ReturnType::Default => (None, None),
        };
        Function {
            item,
            result,
            error,
        }
    }

    pub(crate) fn is_async(&self) -> bool {
        self.item.sig.asyncness.is_some()
    }

    /// Where errors about the return type point: the type, or the name when
    /// there is none.
    pub(crate) fn return_span(&self) -> Span {
        match &self.item.sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => self.item.sig.ident.span(),
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
    ImplTraitEraser.visit_type_mut(&mut annotation);
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
/// recover the same type from the body.
struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.impl_token.span),
            });
        } else {
            visit_mut::visit_type_mut(self, ty);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::parse_quote;

    fn read(item: ItemFn) -> (Option<String>, Option<String>) {
        let function = Function::read(item);
        (
            function.result.map(|t| t.to_token_stream().to_string()),
            function.error.map(|t| t.to_token_stream().to_string()),
        )
    }

    #[test]
    fn reads_the_error_type_of_a_full_result() {
        let (result, error) = read(parse_quote!(
            fn f() -> Result<u8, FetchError> {
                todo!()
            }
        ));
        assert_eq!(result.as_deref(), Some("Result < u8 , FetchError >"));
        assert_eq!(error.as_deref(), Some("FetchError"));
    }

    #[test]
    fn io_result_is_a_result_without_a_readable_error() {
        let (result, error) = read(parse_quote!(
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
            read(parse_quote!(
                fn f() -> u8 {
                    1
                }
            )),
            (None, None)
        );
        assert_eq!(
            read(parse_quote!(
                fn f() {}
            )),
            (None, None)
        );
        assert_eq!(
            read(parse_quote!(
                fn f() -> Option<u8> {
                    None
                }
            )),
            (None, None)
        );
    }

    #[test]
    fn impl_trait_is_erased_for_annotations() {
        let (result, _) = read(parse_quote!(
            fn f() -> Result<impl Display, E> {
                todo!()
            }
        ));
        assert_eq!(result.as_deref(), Some("Result < _ , E >"));
    }
}
