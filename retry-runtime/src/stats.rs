//! In-process statistics per annotated function (the `stats` feature).
//!
//! Each annotated function counts its calls in relaxed atomics kept in its
//! own `static`; its first finished call adds it to a global list (the only
//! time a lock is taken on its behalf), and [`snapshot`] reads that list.
//!
//! `examples/stats.rs` in the steadfast repository prints a table of these
//! after driving a flaky service; the `steadfast` crate's docs show a test.

use std::sync::{Mutex, PoisonError};

// std atomics, not `crate::sync`: statistics are not part of the loom models.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Calls that succeeded on attempt `n` are counted in slot `n - 1`; the last
/// slot also takes every later attempt.
const SUCCESS_SLOTS: usize = 16;

/// The counters of one annotated function.
#[derive(Debug)]
pub(crate) struct Counters {
    name: &'static str,
    calls: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    rejected: AtomicU64,
    hedges_sent: AtomicU64,
    hedges_won: AtomicU64,
    hedges_refused: AtomicU64,
    successes_at: [AtomicU64; SUCCESS_SLOTS],
    registered: AtomicBool,
}

/// Every site that has finished a call, in the order they first did. Only
/// plain data lives in a site itself, so that the settings holding it stay
/// buildable by `const fn`s that replace parts of them.
static SITES: Mutex<Vec<&'static Counters>> = Mutex::new(Vec::new());

impl Counters {
    pub(crate) const fn new(name: &'static str) -> Self {
        Counters {
            name,
            calls: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            hedges_sent: AtomicU64::new(0),
            hedges_won: AtomicU64::new(0),
            hedges_refused: AtomicU64::new(0),
            successes_at: [const { AtomicU64::new(0) }; SUCCESS_SLOTS],
            registered: AtomicBool::new(false),
        }
    }

    pub(crate) fn succeeded(&'static self, attempts: u32) {
        self.finished(attempts);
        self.successes.fetch_add(1, Relaxed);
        let slot = (attempts.max(1) as usize - 1).min(SUCCESS_SLOTS - 1);
        self.successes_at[slot].fetch_add(1, Relaxed);
    }

    pub(crate) fn failed(&'static self, attempts: u32) {
        self.finished(attempts);
        self.failures.fetch_add(1, Relaxed);
    }

    /// `attempt` was refused before running, so it is not counted.
    pub(crate) fn rejected(&'static self, attempt: u32) {
        self.finished(attempt.saturating_sub(1));
        self.rejected.fetch_add(1, Relaxed);
    }

    /// A hedge was sent (`sent`), or refused by a budget.
    pub(crate) fn hedge_spent(&self, sent: bool) {
        let counter = if sent {
            &self.hedges_sent
        } else {
            &self.hedges_refused
        };
        counter.fetch_add(1, Relaxed);
    }

    /// A hedge answered first.
    pub(crate) fn hedge_won(&self) {
        self.hedges_won.fetch_add(1, Relaxed);
    }

    fn finished(&'static self, attempts: u32) {
        if !self.registered.load(Relaxed) && !self.registered.swap(true, Relaxed) {
            register(self);
        }
        self.calls.fetch_add(1, Relaxed);
        self.attempts.fetch_add(u64::from(attempts), Relaxed);
        self.retries
            .fetch_add(u64::from(attempts.saturating_sub(1)), Relaxed);
    }
}

/// Adds `site` to the list; called once per site (its `registered` flag).
fn register(site: &'static Counters) {
    SITES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(site);
}

/// What one annotated function has done since the process started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteStats {
    /// The call site's name: the `name` key, or `module_path::fn_name`.
    pub name: &'static str,
    /// Calls that finished.
    pub calls: u64,
    /// Calls that returned `Ok`.
    pub successes: u64,
    /// Calls that returned the body's error (after retrying, or not).
    pub failures: u64,
    /// Attempts made, the first of each call included; a hedged call
    /// counts one per round, its hedges in `hedges_sent`.
    pub attempts: u64,
    /// Attempts after the first of each call.
    pub retries: u64,
    /// Calls refused by the library itself (open breaker, no permit or token).
    pub rejected: u64,
    /// Hedges sent beside a slow attempt (a `Policy` with `hedge`).
    pub hedges_sent: u64,
    /// Hedges whose success was the call's: they answered first.
    pub hedges_won: u64,
    /// Hedges due but not sent: the hedge budget or the retry budget was
    /// empty.
    pub hedges_refused: u64,
    /// `successes_at_attempt[n - 1]` calls succeeded on attempt `n`; the last
    /// entry also counts later attempts when there are more than 16. Trailing
    /// zeros are trimmed.
    pub successes_at_attempt: Vec<u64>,
}

impl SiteStats {
    /// Successes per finished call, from 0.0 to 1.0 (1.0 before any call).
    pub fn success_rate(&self) -> f64 {
        if self.calls == 0 {
            1.0
        } else {
            self.successes as f64 / self.calls as f64
        }
    }

    /// Attempts per finished call (0.0 before any call).
    pub fn mean_attempts(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.attempts as f64 / self.calls as f64
        }
    }
}

/// One entry per annotated function that has finished at least one call,
/// in the order they first did.
pub fn snapshot() -> Vec<SiteStats> {
    // Copied out first: reading the counters needs no lock.
    let registered = SITES.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut sites = Vec::with_capacity(registered.len());
    for stats in registered {
        let mut successes_at_attempt: Vec<u64> =
            stats.successes_at.iter().map(|n| n.load(Relaxed)).collect();
        while successes_at_attempt.last() == Some(&0) {
            successes_at_attempt.pop();
        }
        sites.push(SiteStats {
            name: stats.name,
            calls: stats.calls.load(Relaxed),
            successes: stats.successes.load(Relaxed),
            failures: stats.failures.load(Relaxed),
            attempts: stats.attempts.load(Relaxed),
            retries: stats.retries.load(Relaxed),
            rejected: stats.rejected.load(Relaxed),
            hedges_sent: stats.hedges_sent.load(Relaxed),
            hedges_won: stats.hedges_won.load(Relaxed),
            hedges_refused: stats.hedges_refused.load(Relaxed),
            successes_at_attempt,
        });
    }
    sites
}
