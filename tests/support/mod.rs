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

impl From<CircuitOpen> for TestError {
    fn from(open: CircuitOpen) -> Self {
        TestError::Open(open)
    }
}

impl From<Rejected> for TestError {
    fn from(rejected: Rejected) -> Self {
        TestError::Rejected(rejected)
    }
}

impl From<Elapsed> for TestError {
    fn from(elapsed: Elapsed) -> Self {
        TestError::Timeout(elapsed)
    }
}

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
