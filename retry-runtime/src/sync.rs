//! Atomics the lock-free primitives use: std's, or loom's when the crate is
//! built with `--cfg loom` so that the models in `tests/loom.rs` can
//! explore every interleaving.

#[cfg(loom)]
pub(crate) use loom::sync::atomic;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic;
