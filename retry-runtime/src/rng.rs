//! The per-thread jitter generator.
//!
//! Jitter needs a fast, seedable generator, drawn from only when a retry is
//! scheduled. One `SmallRng` per thread, seeded from the OS once on first use,
//! avoids both a lock and a syscall per draw; `testing::seed_jitter` replaces
//! the seed so a test can reproduce a schedule.

use std::cell::RefCell;

use rand::SeedableRng;
use rand::rngs::SmallRng;

thread_local! {
    static THREAD_RNG: RefCell<Option<SmallRng>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's jitter generator, seeding it on first use.
pub(crate) fn with_thread_rng<R>(f: impl FnOnce(&mut SmallRng) -> R) -> R {
    THREAD_RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        let rng = slot.get_or_insert_with(SmallRng::from_os_rng);
        f(rng)
    })
}

/// Replaces this thread's jitter generator with one seeded from `seed`.
pub(crate) fn seed_thread_rng(seed: u64) {
    THREAD_RNG.with(|cell| *cell.borrow_mut() = Some(SmallRng::seed_from_u64(seed)));
}
