//! The configuration of one resilient operation.

use std::time::Duration;

use retry_rules::{BackoffKind, Protections, defaults};

use crate::backoff::Schedule;
use crate::jitter::Jitter;
use crate::report::Site;

/// The retry configuration of one annotated function, built in a `static`.
///
/// Each builder is named after the attribute key it sets, and the expansion
/// calls only those the user wrote: every default is the one given here
/// (`retry_rules::defaults`' attempts and schedule, no
/// timeout, no deadline, waits for permits and tokens unbounded).
#[derive(Debug)]
pub struct Settings {
    pub(super) site: Site,
    pub(super) max_attempts: u32,
    pub(super) schedule: Schedule,
    pub(super) timeout: Option<Duration>,
    pub(super) deadline: Option<Duration>,
    pub(super) max_wait: Option<Duration>,
    /// Whether a call must read the clock when it starts: for a deadline,
    /// for the elapsed time an `on_retry` hook sees, or for a hedged round
    /// (which dates its call and its first attempt by that read).
    pub(super) reads_clock: bool,
    /// Which of `timeout`, `deadline` and `max_wait` are set (the guards
    /// hold the other keys that shape an attempt), for `Protections` to
    /// decide on: kept rather than worked out from the options, so that
    /// asking costs one load.
    pub(super) protections: Protections,
}

impl Settings {
    /// The defaults, reported under `name`.
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Settings {
            site: Site::new(name),
            max_attempts: defaults::MAX_ATTEMPTS,
            schedule: Schedule::DEFAULT,
            timeout: None,
            deadline: None,
            max_wait: None,
            reads_clock: false,
            protections: Protections::NONE,
        }
    }

    /// `max_attempts`: attempts in total, the first included. The macro
    /// rejects 0; here it is taken as 1.
    #[must_use]
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = if n == 0 { 1 } else { n };
        self
    }

    /// `backoff`: how the delay grows, keeping the other schedule keys.
    #[must_use]
    pub const fn backoff(mut self, kind: BackoffKind) -> Self {
        self.schedule = self.schedule.kind(kind);
        self
    }

    /// The whole delay schedule at once (a `Policy`'s `backoff`).
    pub(crate) const fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The site's name, changed after the fact (a `Policy`'s `name`).
    pub const fn renamed(mut self, name: &'static str) -> Self {
        self.site = Site::new(name);
        self
    }

    /// `timeout`: per attempt (async functions only).
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self.protections = self.protections.timeout();
        self
    }

    /// `deadline`: for the whole call, from its start.
    #[must_use]
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self.reads_clock = true;
        self.protections = self.protections.deadline();
        self
    }

    /// `max_wait`: the longest wait for a permit or a token.
    #[must_use]
    pub const fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self.protections = self.protections.max_wait();
        self
    }

    /// `hedge` is set: the round dates its call for the hedge budget, and
    /// starts its first attempt's delay, at the call's start, read once
    /// with the retry budget's.
    #[must_use]
    pub const fn hedged(mut self) -> Self {
        self.reads_clock = true;
        self
    }

    /// `on_retry` is set: its events carry the time since the call started.
    #[must_use]
    pub const fn reports_elapsed(mut self) -> Self {
        self.reads_clock = true;
        self
    }
}

/// `base_delay`, `max_delay`, `multiplier`, `jitter`: each sets the key of
/// the delay schedule, keeping the others.
macro_rules! schedule_builders {
    ($($(#[$doc:meta])* $key:ident($value:ty),)*) => {
        impl Settings {
            $(
                $(#[$doc])*
                #[must_use]
                pub const fn $key(mut self, value: $value) -> Self {
                    self.schedule = self.schedule.$key(value);
                    self
                }
            )*
        }
    };
}

crate::backoff::schedule_keys!(schedule_builders);
