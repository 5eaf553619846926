//! Helpers for testing code that uses steadfast without waiting.
//!
//! - `async` functions: run the test on tokio's paused clock
//!   (`#[tokio::test(start_paused = true)]`); backoff sleeps, timeouts and
//!   deadlines then advance virtual time instantly and deterministically.
//! - plain functions: hold a [`no_delays`] guard; backoff sleeps on this
//!   thread are skipped, while attempts, budgets and deadlines behave as if
//!   the time had passed.
//! - exact schedules: call [`seed_jitter`] so jittered delays repeat run to run.
//!
//! See the `steadfast` crate's docs for an annotated function under test.

use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    static NO_DELAYS: Cell<u32> = const { Cell::new(0) };
}

/// Makes jitter drawn on the current thread reproducible: after this call the
/// same sequence of retries gets the same jittered delays.
///
/// ```
/// use retry_runtime::{Backoff, testing};
///
/// testing::seed_jitter(42);
/// let first: Vec<_> = Backoff::new().take(3).collect();
/// testing::seed_jitter(42);
/// let again: Vec<_> = Backoff::new().take(3).collect();
/// assert_eq!(first, again);
/// ```
pub fn seed_jitter(seed: u64) {
    crate::rng::seed_thread_rng(seed);
}

/// Skips backoff sleeps on the current thread while the returned guard lives.
///
/// Attempts, budgets and deadlines still count, and hooks still report the
/// delay that would have been slept: the skipped time is added to the call's
/// elapsed time, so a `deadline` gives up exactly as it would have.
#[must_use = "delays are skipped only while the guard lives"]
pub fn no_delays() -> NoDelays {
    NO_DELAYS.with(|depth| depth.set(depth.get() + 1));
    NoDelays {
        _not_send: PhantomData,
    }
}

/// The guard returned by [`no_delays`]; dropping it restores real sleeps.
#[derive(Debug)]
pub struct NoDelays {
    // The setting is per thread, so the guard must be dropped on that thread.
    _not_send: PhantomData<*const ()>,
}

impl Drop for NoDelays {
    fn drop(&mut self) {
        NO_DELAYS.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

/// Whether a [`no_delays`] guard is alive on this thread.
pub(crate) fn delays_skipped() -> bool {
    NO_DELAYS.with(Cell::get) > 0
}
