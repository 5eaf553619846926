//! What the retry loop wraps, whichever door it came through: the body of an
//! annotated function, or the block of a `retry!`.

use proc_macro2::{Group, TokenStream};
use syn::Type;

/// One attempt's code and what is known of its result.
pub(crate) struct Operation {
    /// The statements, with the span of their braces.
    pub(crate) body: Group,
    pub(crate) is_async: bool,
    /// `Result<T, E>` with `impl Trait` replaced by `_`, when the signature
    /// says so; a block's is inferred.
    pub(crate) result: Option<Type>,
    /// The declared `E`, so that bare `retry_on` variants can be resolved as
    /// `E::Variant`; `None` when nothing spells it.
    pub(crate) error: Option<Type>,
    /// The site's name when the `name` key is not given: a `&'static str`
    /// expression.
    pub(crate) default_name: TokenStream,
    pub(crate) door: Door,
}

/// How the code reached the macro, which decides how the loop ends the
/// call and how mistakes are worded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    /// `#[resilient]` on a function: the loop `return`s from it.
    Attribute,
    /// `retry!(...; async { .. })`: the loop `return`s from the async block.
    AsyncBlock,
    /// `retry!(...; { .. })`: the loop `break`s out of a labelled block, so
    /// that a `return` never leaves the caller's function.
    Block,
}

impl Operation {
    /// Whether the code is an annotated function's body (mistakes are
    /// worded for it), rather than a `retry!` block.
    pub(crate) fn is_function(&self) -> bool {
        self.door == Door::Attribute
    }
}
