//! The fleet of a breaker that cannot be shared (no `redis` feature, or a
//! loom model): the hooks `shared.rs` gives the machine, doing nothing.
//! `is_shared` is `false`, so every call to them folds away.

use super::config::Config;
use super::state::{Gate, Order, State};

pub(super) struct Shared;

impl Shared {
    pub(super) const fn new() -> Self {
        Shared
    }

    #[inline]
    pub(super) const fn is_shared(&self) -> bool {
        false
    }

    pub(super) fn order(&self, _: &Config, _: impl FnOnce() -> u64) -> Option<Order> {
        None
    }

    pub(super) fn moved(
        &self,
        _: &Config,
        _: State,
        _: State,
        _: impl Fn() -> u64,
        _: impl Fn() -> State,
    ) {
    }

    pub(super) fn gate_open(&self, _: &Config, _: u64) -> Gate {
        Gate::Probe
    }

    pub(super) fn gate_half_open(&self, _: &Config) -> bool {
        true
    }
}
