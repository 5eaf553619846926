//! Hedged requests: when an attempt is slow, start another of the same
//! call beside it; the first success wins and the others are dropped.
//!
//! "The Tail at Scale" (Dean and Barroso) cut a BigTable read's p99.9 from
//! 1,800 ms to 74 ms by sending a second request after 10 ms, for 2% more
//! requests. Two things make that safe, and both are here:
//!
//! - **When**: after a latency quantile of this call site's recent attempts
//!   ([`Hedge::after_quantile`], `latency.rs`), so only the slowest few
//!   percent are hedged whatever the service's speed, or after a fixed
//!   delay ([`Hedge::after`]).
//! - **How many**: hedges spend from a load budget of `max_extra_load`
//!   hedges per call over a window, and from the call's retry budget
//!   (`load.rs`): when every attempt is slow, the hedges stay at the budget
//!   instead of doubling the load on a service that is already struggling.
//!
//! The engine (`policy/hedged.rs`) runs the attempts; what a hedge is to
//! the other keys, and how hedges compose with retries, is in
//! `docs/design.md` ("Hedged requests").
//!
//! | | steadfast | Finagle `BackupRequestFilter` | gRPC A6 | Polly 8 | tower `hedge` |
//! |---|---|---|---|---|---|
//! | when | quantile of the site, or fixed | p(1 − maxExtraLoad) | fixed `hedgingDelay` | fixed, or a generator | a percentile |
//! | hedges | `max_hedges` (1 to 10) | 1 | `maxAttempts − 1` | up to 10 | 1 |
//! | budget | `max_extra_load` and the retry budget | its own and the retry budget | retry throttling | none | none |
//! | estimate | lock-free, ns, successes and timeouts | windowed histogram, ms | — | — | histogram behind a lock, ms |
//! | losers | dropped at once | cancelled if asked | cancelled | cancelled | dropped |

mod counts;
mod invalid;
mod latency;
mod load;
pub(crate) mod round;

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

pub use invalid::InvalidHedge;

use crate::budget::RetryBudget;
use crate::report::{self, Hedged, Site};
use crate::sync::const_fn;
use counts::Counts;
use latency::Latency;
use load::Load;

/// When a hedge is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum After {
    Fixed(Duration),
    Quantile(f64),
}

/// Hedging for a [`Policy`](crate::Policy): when an attempt has not
/// answered after a delay, another attempt of the same call starts beside
/// it; the first success is the call's, and the attempts still running are
/// dropped (cancelled) at once. Async only.
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{Hedge, Policy};
///
/// #[derive(Debug)]
/// struct StoreError;
///
/// // After this call site's p95 latency, at most one hedge per call and at
/// // most 5% more attempts than calls.
/// static READS: Policy<StoreError> =
///     Policy::new().hedge(Hedge::after_quantile(0.95).max_hedges(1).max_extra_load(0.05));
/// // Or after a fixed delay.
/// static WRITES: Policy<StoreError> = Policy::new().hedge(Hedge::after(Duration::from_millis(40)));
/// ```
///
/// A hedge is an attempt like any other for `concurrency`, `rate_limit`,
/// `circuit_breaker` and `timeout`, and the `deadline` covers them all. The
/// body must be safe to run twice at once: [`Attempt::is_hedge`] tells a
/// hedge from the first attempt and from a retry, and
/// [`Attempt::number`] tells them apart, so a hedge can go to another
/// replica.
///
/// # Invalid values
///
/// The builders are `const`, so they clamp a value out of range instead of
/// failing (`after_quantile` to 0.01..=0.999, `max_hedges` to
/// 1..=[`MAX_HEDGES`](Self::MAX_HEDGES), `max_extra_load` to (0, 1]) and
/// keep the first such value for [`problem`](Self::problem).
///
/// [`Attempt::is_hedge`]: crate::Attempt::is_hedge
/// [`Attempt::number`]: crate::Attempt::number
pub struct Hedge {
    after: After,
    max_hedges: u32,
    max_extra_load: f64,
    load: Load,
    latency: Latency,
    counts: Counts,
    problem: Option<InvalidHedge>,
}

impl Hedge {
    /// The most hedges one attempt may have (Polly's limit).
    pub const MAX_HEDGES: u32 = retry_rules::defaults::HEDGE_LIMIT;

    /// The extra load a hedge policy adds by default: 5% more attempts than
    /// calls, over a window of 10 s.
    pub const DEFAULT_MAX_EXTRA_LOAD: f64 = retry_rules::defaults::MAX_EXTRA_LOAD;

    /// The shortest delay a quantile gives: a site answering in
    /// microseconds is not hedged after a few of them.
    pub const MIN_DELAY: Duration = Duration::from_millis(1);

    const_fn! {
        /// Hedges after a fixed delay (`after = "40ms"`): one hedge, and at
        /// most [`DEFAULT_MAX_EXTRA_LOAD`](Self::DEFAULT_MAX_EXTRA_LOAD).
        /// A zero delay sends the hedges with the first attempt, as far as
        /// the budget allows.
        #[must_use]
        pub fn after(delay: Duration) -> Self {
            Self::with(After::Fixed(delay))
        }
    }

    const_fn! {
        /// Hedges after the `q` quantile of this call site's recent
        /// attempts (`after = "p95"` is `0.95`), at least
        /// [`MIN_DELAY`](Self::MIN_DELAY): only successes and timed-out
        /// attempts are counted (a failure's latency says nothing of a
        /// success's; an attempt dropped because another won is counted by
        /// the winner). Until the site has `max(20, 2 / (1 - q))` attempts
        /// counted (40 for p95), no hedge is sent: a delay guessed from a
        /// handful of attempts would hedge too often or never.
        ///
        /// `q` is clamped to 0.01..=0.999 (p1 to p99.9).
        #[must_use]
        pub fn after_quantile(q: f64) -> Self {
            // NaN fails both comparisons.
            let (q, problem) = if q >= 0.01 && q <= 0.999 {
                (q, None)
            } else if q > 0.999 {
                (0.999, Some(InvalidHedge::Quantile(q)))
            } else {
                (0.01, Some(InvalidHedge::Quantile(q)))
            };
            let mut hedge = Self::with(After::Quantile(q));
            hedge.problem = problem;
            hedge
        }
    }

    const_fn! {
        fn with(after: After) -> Self {
            Hedge {
                after,
                max_hedges: retry_rules::defaults::MAX_HEDGES,
                max_extra_load: Self::DEFAULT_MAX_EXTRA_LOAD,
                load: Load::new(Self::DEFAULT_MAX_EXTRA_LOAD),
                latency: Latency::new(),
                counts: Counts::new(),
                problem: None,
            }
        }
    }

    /// At most `n` hedges beside each attempt (1 by default), one each
    /// delay after the last, or at once when an attempt fails with an error
    /// that would be retried. Clamped to 1..=[`MAX_HEDGES`](Self::MAX_HEDGES).
    #[must_use]
    pub const fn max_hedges(mut self, n: u32) -> Self {
        self.max_hedges = if n == 0 {
            self.problem = first(self.problem, InvalidHedge::NoHedges);
            1
        } else if n > Self::MAX_HEDGES {
            self.problem = first(self.problem, InvalidHedge::TooManyHedges(n));
            Self::MAX_HEDGES
        } else {
            n
        };
        self
    }

    const_fn! {
        /// At most `f` hedges per call, over a window of 10 s (0.05: 5% more
        /// attempts than calls); when the budget is empty, no hedge is sent.
        /// Clamped to (0, 1]: 0 and below, or NaN, is taken as 0.001.
        #[must_use]
        pub fn max_extra_load(mut self, f: f64) -> Self {
            // NaN fails both comparisons.
            let max_extra_load = if f > 0.0 && f <= 1.0 {
                f
            } else {
                self.problem = first(self.problem, InvalidHedge::ExtraLoad(f));
                if f > 1.0 { 1.0 } else { 0.001 }
            };
            self.max_extra_load = max_extra_load;
            // Replaced, not assigned: a `const fn` may not drop the budget an
            // assignment would. The one forgotten was made by `with` and never
            // used, so it holds no allocation.
            std::mem::forget(std::mem::replace(&mut self.load, Load::new(max_extra_load)));
            self
        }
    }

    /// The first value a builder had to clamp, if any: a policy built from
    /// run-time values can refuse to start with it rather than run with a
    /// setting it was not given.
    ///
    /// ```
    /// use retry_runtime::{Hedge, InvalidHedge};
    ///
    /// assert_eq!(Hedge::after_quantile(0.95).problem(), None);
    /// assert_eq!(Hedge::after_quantile(95.0).problem(), Some(InvalidHedge::Quantile(95.0)));
    /// assert_eq!(Hedge::after_quantile(0.95).max_hedges(0).problem(), Some(InvalidHedge::NoHedges));
    /// ```
    pub const fn problem(&self) -> Option<InvalidHedge> {
        self.problem
    }

    /// Hedges sent, over the life of the process.
    pub fn sent(&self) -> u64 {
        self.counts.sent()
    }

    /// Calls whose success came from a hedge rather than from the attempt
    /// it was sent beside.
    pub fn won(&self) -> u64 {
        self.counts.won()
    }

    /// Hedges that were due but not sent: the hedge budget or the retry
    /// budget was empty.
    pub fn refused(&self) -> u64 {
        self.counts.refused()
    }

    pub(crate) const fn hedges(&self) -> u32 {
        self.max_hedges
    }

    /// A hedged call started at `now`: it pays into the hedge budget.
    #[inline]
    pub(crate) fn call_started(&self, now: Instant) {
        self.load.call_started(now);
    }

    /// The delay before a hedge for an attempt started at `now`, or `None`
    /// when none is to be sent (a quantile without enough samples yet).
    pub(crate) fn delay(&self, now: Instant) -> Option<Duration> {
        match self.after {
            After::Fixed(delay) => Some(delay),
            After::Quantile(q) => self
                .latency
                .current(q, now)
                .map(|delay| delay.max(Self::MIN_DELAY)),
        }
    }

    /// Whether attempts' latencies are recorded: only a quantile needs them.
    pub(crate) const fn learns(&self) -> bool {
        matches!(self.after, After::Quantile(_))
    }

    /// A successful or timed-out attempt took `latency`.
    pub(crate) fn record(&self, latency: Duration) {
        self.latency.record(latency);
    }

    /// Asks the budgets for the hedge numbered `attempt`, counting and
    /// reporting it sent or refused.
    pub(crate) fn spend(
        &self,
        site: &Site,
        attempt: u32,
        retry_budget: Option<&RetryBudget>,
    ) -> bool {
        let spent = self.load.spend(retry_budget);
        self.counts.spent(spent);
        let what = if spent { Hedged::Sent } else { Hedged::Refused };
        report::hedged(site, what, attempt);
        spent
    }

    /// The hedge numbered `attempt` answered first: its success is the
    /// call's.
    pub(crate) fn hedge_won(&self, site: &Site, attempt: u32) {
        self.counts.won_one();
        report::hedged(site, Hedged::Won, attempt);
    }
}

const fn first(problem: Option<InvalidHedge>, new: InvalidHedge) -> Option<InvalidHedge> {
    match problem {
        Some(problem) => Some(problem),
        None => Some(new),
    }
}

impl fmt::Debug for Hedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Hedge");
        match self.after {
            After::Fixed(delay) => s.field("after", &delay),
            After::Quantile(q) => s.field("after_quantile", &q),
        };
        s.field("max_hedges", &self.max_hedges)
            .field("max_extra_load", &self.max_extra_load)
            .field("sent", &self.sent())
            .field("won", &self.won())
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_clamp_and_keep_the_first_problem() {
        let hedge = Hedge::after_quantile(1.5).max_hedges(0).max_extra_load(2.0);
        assert_eq!(hedge.after, After::Quantile(0.999));
        assert_eq!(hedge.max_hedges, 1);
        assert_eq!(hedge.max_extra_load, 1.0);
        assert_eq!(hedge.problem(), Some(InvalidHedge::Quantile(1.5)));
        let hedge = Hedge::after_quantile(0.0);
        assert_eq!(hedge.after, After::Quantile(0.01));
        assert!(matches!(
            Hedge::after_quantile(f64::NAN).problem(),
            Some(InvalidHedge::Quantile(q)) if q.is_nan()
        ));
        let hedge = Hedge::after(Duration::ZERO)
            .max_hedges(11)
            .max_extra_load(0.0);
        assert_eq!(hedge.max_hedges, Hedge::MAX_HEDGES);
        assert_eq!(hedge.max_extra_load, 0.001);
        assert_eq!(hedge.problem(), Some(InvalidHedge::TooManyHedges(11)));
        assert_eq!(
            Hedge::after(Duration::ZERO)
                .max_extra_load(f64::NAN)
                .max_extra_load,
            0.001
        );
        let fine = Hedge::after_quantile(0.999)
            .max_hedges(Hedge::MAX_HEDGES)
            .max_extra_load(1.0);
        assert_eq!(fine.problem(), None);
        assert_eq!(Hedge::after_quantile(0.01).problem(), None);
        assert_eq!(
            InvalidHedge::ExtraLoad(2.0).to_string(),
            "`max_extra_load` 2 is outside (0, 1]"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quantile_delay_waits_for_samples_and_has_a_floor() {
        let hedge = Hedge::after_quantile(0.5);
        assert_eq!(hedge.delay(Instant::now()), None);
        for _ in 0..Latency::enough(0.5) {
            hedge.record(Duration::from_micros(30));
        }
        tokio::time::advance(latency::REFRESH).await;
        assert_eq!(hedge.delay(Instant::now()), Some(Hedge::MIN_DELAY));
        assert!(hedge.learns());
        let fixed = Hedge::after(Duration::from_millis(40));
        assert!(!fixed.learns());
        assert_eq!(fixed.delay(Instant::now()), Some(Duration::from_millis(40)));
    }

    #[test]
    fn spending_counts_sent_and_refused() {
        let hedge = Hedge::after(Duration::ZERO).max_extra_load(0.5);
        hedge.call_started(Instant::now());
        hedge.call_started(Instant::now());
        static SITE: Site = Site::new("hedged");
        assert!(hedge.spend(&SITE, 2, None));
        assert!(!hedge.spend(&SITE, 3, None));
        hedge.hedge_won(&SITE, 2);
        assert_eq!((hedge.sent(), hedge.won(), hedge.refused()), (1, 1, 1));
        assert_eq!(
            format!("{hedge:?}"),
            "Hedge { after: 0ns, max_hedges: 1, max_extra_load: 0.5, sent: 1, won: 1, refused: 1, .. }"
        );
    }
}
