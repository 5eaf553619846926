//! Shared pieces of the behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Mutex;
use std::time::Duration;

use steadfast::Elapsed;

/// The error type most tests use: one variant per kind of failure.
#[derive(Debug, Clone, PartialEq)]
pub enum TestError {
    Io,
    Busy { retry_in: Option<Duration> },
    Timeout(Elapsed),
    Fatal(&'static str),
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
