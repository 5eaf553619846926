//! Atomics and locks the primitives share state through: std's, or loom's
//! when the crate is built with `--cfg steadfast_loom` (a name of our own:
//! tokio reacts to `--cfg loom`) so that the models in `tests/loom.rs` can
//! explore every interleaving.
//!
//! # One constructor for both builds
//!
//! Every primitive is built by a `const fn`, so that it can be a `static`.
//! loom's atomics and `Mutex` cannot be made in a `const fn` (creating one
//! registers it with the running model), so under `steadfast_loom` the same
//! constructors must be plain `fn`s. Rather than writing each constructor
//! twice and keeping the copies in step by hand, a constructor is written
//! once inside [`const_fn!`], which emits it as a `const fn` in a normal
//! build and as a `fn` under loom. A normal build therefore compiles every
//! constructor body (as `const`, the stricter of the two), and loom builds
//! the very same body. [`atomic_array!`] does the same for an array of
//! atomics, which is built from a `const` block normally and element by
//! element under loom.
//!
//! ```text
//! impl Counter {
//!     crate::sync::const_fn! {
//!         /// Doc comments and attributes are kept.
//!         #[must_use]
//!         pub(crate) fn new() -> Self {
//!             Counter { hits: AtomicU64::new(0), slots: atomic_array![AtomicU64::new(0); 4] }
//!         }
//!     }
//! }
//! ```

#[cfg(steadfast_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, atomic};
#[cfg(not(steadfast_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, atomic};

/// Emits one function as a `const fn`, or as a plain `fn` under
/// `--cfg steadfast_loom`: see the module docs.
macro_rules! const_fn {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ($($params:tt)*) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        #[cfg(not(steadfast_loom))]
        $vis const fn $name($($params)*) -> $ret $body

        $(#[$meta])*
        #[cfg(steadfast_loom)]
        $vis fn $name($($params)*) -> $ret $body
    };
}
pub(crate) use const_fn;

/// `[$init; $n]` for an element that is not `Copy`, such as an atomic: a
/// repeated `const` block normally, `std::array::from_fn` under loom.
#[cfg(not(steadfast_loom))]
macro_rules! atomic_array {
    ($init:expr; $n:expr) => {
        [const { $init }; $n]
    };
}
#[cfg(steadfast_loom)]
macro_rules! atomic_array {
    ($init:expr; $n:expr) => {
        ::std::array::from_fn(|_| $init)
    };
}
pub(crate) use atomic_array;
