//! A value a [`Hedge`](super::Hedge) builder could not take as given.

use std::fmt;

/// A value given to a [`Hedge`](super::Hedge) builder that is out of its
/// range. The builders are `const` (a policy is a `static`), so they cannot
/// fail: they clamp the value into range, as [`RetryBudget::ratio`] does,
/// and keep the first such value here, for
/// [`Hedge::problem`](super::Hedge::problem) to report at run time.
///
/// [`RetryBudget::ratio`]: crate::RetryBudget::ratio
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum InvalidHedge {
    /// `after_quantile(q)` with `q` outside 0.01..=0.999 (p1 to p99.9), or
    /// NaN.
    Quantile(f64),
    /// `max_hedges(0)`: a hedge policy that sends no hedge.
    NoHedges,
    /// `max_hedges(n)` above [`Hedge::MAX_HEDGES`](super::Hedge::MAX_HEDGES).
    TooManyHedges(u32),
    /// `max_extra_load(f)` with `f` outside (0, 1], or NaN.
    ExtraLoad(f64),
}

impl fmt::Display for InvalidHedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InvalidHedge::Quantile(q) => write!(
                f,
                "`after` quantile {q} is outside p1..p99.9 (0.01..=0.999)"
            ),
            InvalidHedge::NoHedges => f.write_str("`max_hedges` must be at least 1"),
            InvalidHedge::TooManyHedges(n) => write!(
                f,
                "`max_hedges` {n} is more than {}",
                super::Hedge::MAX_HEDGES
            ),
            InvalidHedge::ExtraLoad(load) => {
                write!(f, "`max_extra_load` {load} is outside (0, 1]")
            }
        }
    }
}

impl std::error::Error for InvalidHedge {}
