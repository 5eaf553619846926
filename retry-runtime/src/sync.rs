//! Atomics the lock-free primitives use: std's, or loom's when the crate is
//! built with `--cfg steadfast_loom` (a name of our own: tokio reacts to `--cfg loom`) so that the models in `tests/loom.rs` can
//! explore every interleaving.

#[cfg(steadfast_loom)]
pub(crate) use loom::sync::atomic;
#[cfg(not(steadfast_loom))]
pub(crate) use std::sync::atomic;
