//! Shared pieces of the behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Mutex;
use std::time::Duration;

use steadfast::{CircuitOpen, Elapsed, Rejected};

/// The error type most tests use: one variant per kind of failure.
#[derive(Debug, Clone, PartialEq)]
pub enum TestError {
    Io,
    Busy { retry_in: Option<Duration> },
    Timeout(Elapsed),
    Fatal(&'static str),
    Open(CircuitOpen),
    Rejected(Rejected),
}

/// The library's own errors as a test's error type holds them, in variants
/// named `Timeout`, `Open` and `Rejected`: the `From` impls every key that
/// can end a call with one of them needs, written once.
macro_rules! library_errors {
    ($error:ident) => {
        impl From<steadfast::Elapsed> for $error {
            fn from(elapsed: steadfast::Elapsed) -> Self {
                $error::Timeout(elapsed)
            }
        }

        impl From<steadfast::CircuitOpen> for $error {
            fn from(open: steadfast::CircuitOpen) -> Self {
                $error::Open(open)
            }
        }

        impl From<steadfast::Rejected> for $error {
            fn from(rejected: steadfast::Rejected) -> Self {
                $error::Rejected(rejected)
            }
        }
    };
}
// Not every test crate that includes this module converts an error of its own.
#[allow(unused_imports)]
pub(crate) use library_errors;

library_errors!(TestError);

/// Delays seen by `on_retry` hooks, in order.
#[derive(Debug, Default)]
pub struct Delays(Mutex<Vec<Duration>>);

impl Delays {
    pub const fn new() -> Self {
        Delays(Mutex::new(Vec::new()))
    }

    pub fn push(&self, delay: Duration) {
        self.0.lock().unwrap().push(delay);
    }

    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Tracks how many bodies run at once and the most seen.
#[derive(Debug, Default)]
pub struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl InFlight {
    pub const fn new() -> Self {
        InFlight {
            now: std::sync::atomic::AtomicUsize::new(0),
            peak: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Counts a body in until the guard drops.
    pub fn enter(&self) -> impl Drop + '_ {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        struct Leave<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        Leave(&self.now)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Half a hedge per call, after 10 ms: the first of two slow calls has its
/// hedge refused (half a token), the second's is sent and answers first.
static HEDGED: steadfast::Policy<TestError> = steadfast::Policy::new()
    .name("search.query")
    .hedge(steadfast::Hedge::after(Duration::from_millis(10)).max_extra_load(0.5))
    .no_budget();

/// Two calls through `search.query` whose first attempt takes 100 ms and
/// whose hedge 5 (on the paused clock): one hedge refused, one sent and
/// won, each numbered 2.
pub async fn two_slow_hedged_calls() {
    for _ in 0..2 {
        HEDGED
            .retry(|attempt| async move {
                let ms = if attempt.is_hedge() { 5 } else { 100 };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, TestError>(())
            })
            .await
            .unwrap();
    }
}
