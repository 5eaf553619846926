//! What the controller hands an algorithm at each update: its own file,
//! so that the controller (which calls the algorithms) and the algorithms
//! (which read it) do not import each other.

/// What an algorithm judges an interval by.
#[derive(Debug, Clone, Copy)]
pub(super) struct Judged {
    /// The current estimate (a float: the published limit is its floor).
    pub(super) limit: f64,
    /// The interval's quantile latency, in nanoseconds; `None` when it fell
    /// among dropped calls.
    pub(super) latency: Option<f64>,
    pub(super) dropped: u64,
    /// The interval's calls never filled half the limit.
    pub(super) app_limited: bool,
    /// The no-load latency in nanoseconds (0 for AIMD, which has none).
    pub(super) min_rtt: f64,
}
