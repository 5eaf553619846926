//! The extra load hedges may add: `max_extra_load` hedges per call, over a
//! window, and a token of the call's retry budget for each.
//!
//! Finagle's `BackupRequestFilter` builds its own budget as a `RetryBudget`
//! whose ratio is `maxExtraLoad` and whose reserve is nothing, and asks the
//! client's retry budget too; so does this. A [`RetryBudget`] already is a
//! token bucket over a sliding window of calls (each call deposits `ratio`,
//! each withdrawal costs one) that forgets calls `ttl` old, so an idle gap
//! leaves it as a fresh one: with no reserve, no hedge until calls have paid
//! for it. Each hedged call deposits once, when it starts; each hedge asks
//! the hedge budget first, then the retry budget, as Finagle does. A hedge
//! the retry budget refuses has spent its hedge token: the load it would
//! have added is not added, so the budget errs on fewer hedges.

use std::time::Duration;

use tokio::time::Instant;

use crate::budget::RetryBudget;
use crate::sync::const_fn;

/// The window hedges are counted over (a `RetryBudget`'s default `ttl`).
pub(super) const WINDOW: Duration = Duration::from_secs(10);

/// The hedge budget of one call site.
pub(crate) struct Load {
    budget: RetryBudget,
}

impl Load {
    const_fn! {
        /// `max_extra_load` hedges per call, over [`WINDOW`], no reserve.
        pub(crate) fn new(max_extra_load: f64) -> Self {
            Load {
                budget: RetryBudget::new().min_per_second(0).ttl(WINDOW).ratio(max_extra_load),
            }
        }
    }

    /// A hedged call started at `now`: it pays for `max_extra_load` hedges.
    #[inline]
    pub(crate) fn call_started(&self, now: Instant) {
        self.budget.deposit_at(now);
    }

    /// Whether one more hedge may be sent: a token of this budget, then one
    /// of the call's `retry_budget`, if it has one.
    pub(crate) fn spend(&self, retry_budget: Option<&RetryBudget>) -> bool {
        self.budget.withdraw() && retry_budget.is_none_or(RetryBudget::withdraw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference model of the window: the calls and hedges of the last
    /// `WINDOW`, exactly. The budget keeps the window in tenths, so it may
    /// count a call up to a tenth longer or shorter than the model.
    struct Model {
        calls: Vec<Instant>,
        hedges: Vec<Instant>,
    }

    impl Model {
        fn allowed(&self, now: Instant, f: f64, slack: Duration) -> (f64, f64) {
            let live = |t: &&Instant| now.duration_since(**t) < WINDOW + slack;
            let sure = |t: &&Instant| now.duration_since(**t) + slack < WINDOW;
            let calls_max = self.calls.iter().filter(live).count() as f64;
            let calls_min = self.calls.iter().filter(sure).count() as f64;
            let hedges_min = self.hedges.iter().filter(sure).count() as f64;
            let hedges_max = self.hedges.iter().filter(live).count() as f64;
            (f * calls_min - hedges_max, f * calls_max - hedges_min)
        }
    }

    /// Over bursts, steady traffic and idle gaps longer than the window,
    /// every decision agrees with the model's: a hedge is sent when the
    /// model has a whole token for it even at the window's far edge, and
    /// refused when it has none even at the near one.
    #[tokio::test(start_paused = true)]
    async fn hedges_spend_max_extra_load_of_the_calls_in_the_window() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(7);
        let f = 0.05;
        let load = Load::new(f);
        let mut model = Model {
            calls: Vec::new(),
            hedges: Vec::new(),
        };
        let slack = WINDOW / 10;
        let (mut sent, mut calls) = (0u32, 0u32);
        for step in 0..20_000 {
            let now = Instant::now();
            load.call_started(now);
            model.calls.push(now);
            calls += 1;
            if rng.random_bool(0.2) {
                let (low, high) = model.allowed(now, f, slack);
                let spent = load.spend(None);
                if spent {
                    model.hedges.push(now);
                    sent += 1;
                }
                assert!(
                    !spent || high >= 1.0 - 1e-9,
                    "step {step}: sent with {high}"
                );
                assert!(spent || low < 1.0 + 1e-9, "step {step}: refused with {low}");
            }
            let pause = match step % 5000 {
                // An idle gap of an hour: the budget starts again from nothing.
                4999 => Duration::from_secs(3600),
                _ => Duration::from_millis(rng.random_range(0..4)),
            };
            tokio::time::advance(pause).await;
        }
        assert!(
            f64::from(sent) <= f64::from(calls) * f + 4.0,
            "{sent} of {calls}"
        );
        assert!(
            f64::from(sent) >= f64::from(calls) * f * 0.8,
            "{sent} of {calls}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_idle_gap_no_hedge_until_calls_pay_for_it() {
        let load = Load::new(0.1);
        for _ in 0..100 {
            load.call_started(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(!load.spend(None), "the calls an hour ago no longer count");
        for _ in 0..10 {
            load.call_started(Instant::now());
        }
        assert!(load.spend(None));
        assert!(!load.spend(None), "10 calls at 0.1 pay for one hedge");
    }

    #[test]
    fn a_hedge_needs_a_token_of_the_retry_budget_too() {
        let load = Load::new(1.0);
        let retry_budget = RetryBudget::new().min_per_second(0).ratio(0.5);
        for _ in 0..4 {
            load.call_started(Instant::now());
            retry_budget.deposit();
        }
        assert!(load.spend(Some(&retry_budget)));
        assert!(load.spend(Some(&retry_budget)));
        assert!(!load.spend(Some(&retry_budget)), "4 calls at 0.5 pay for 2");
        assert!(load.spend(None), "the hedge budget still had tokens");
    }
}
