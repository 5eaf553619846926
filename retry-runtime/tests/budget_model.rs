//! `RetryBudget` against a reference model: every call and retry with its
//! own timestamp, kept forever, counted exactly while it is younger than
//! `ttl`. Seeded random sequences of calls, retries and gaps from nothing
//! to 100 × ttl, on tokio's paused clock, one thread.
//!
//! What the budget promises on one thread, and what is checked here:
//!
//! - **A deposit (and a retry) counts for ttl, to within one slot**
//!   (`ttl / 10`): every decision lies between the model's decision with
//!   every lifetime shortened by a slot on the side that refuses more and
//!   lengthened by a slot on the side that grants more. Where even the
//!   stingy model grants, the budget grants; where even the generous model
//!   refuses, the budget refuses.
//! - **After an idle gap of at least ttl + 2 slots, it is a fresh budget**:
//!   whatever came before, it decides everything after the gap exactly as a
//!   new budget given the same calls and retries does.

use std::time::Duration;

use retry_runtime::RetryBudget;
use tokio::time::{Instant, advance};

/// Fixed-point units per retry, as the budget counts (ratios exact to 1e-9).
const SCALE: i128 = 1_000_000_000;

/// A small deterministic generator (splitmix64): the sequences are the
/// same on every run, and a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug)]
struct Config {
    ttl: Duration,
    ratio: f64,
    min_per_second: u32,
}

impl Config {
    fn budget(self) -> RetryBudget {
        RetryBudget::new()
            .ttl(self.ttl)
            .ratio(self.ratio)
            .min_per_second(self.min_per_second)
    }

    fn slot(self) -> Duration {
        self.ttl / 10
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Deposits(u32),
    Withdrawals(u32),
    Wait(Duration),
}

/// A random sequence: bursts of calls (often more than a thread's batch of
/// 32) and retries, separated by waits that are mostly inside a slot,
/// sometimes a few slots, and sometimes up to 100 × ttl.
fn sequence(rng: &mut Rng, config: Config, len: usize) -> Vec<Step> {
    let ttl = config.ttl.as_nanos() as u64;
    let slot = ttl / 10;
    (0..len)
        .map(|_| match rng.below(10) {
            0..=3 => {
                let most = if rng.below(4) == 0 { 80 } else { 6 };
                Step::Deposits(1 + rng.below(most) as u32)
            }
            4..=5 => Step::Withdrawals(1 + rng.below(4) as u32),
            6..=7 => Step::Wait(Duration::from_nanos(rng.below(slot))),
            8 => Step::Wait(Duration::from_nanos(rng.below(4 * ttl))),
            _ => Step::Wait(Duration::from_nanos(rng.below(100 * ttl))),
        })
        .collect()
}

/// Every call and granted retry with its time: the reference.
#[derive(Default)]
struct Model {
    deposits: Vec<Instant>,
    withdrawals: Vec<Instant>,
}

impl Model {
    /// Would a retry be granted at `now`, if calls counted while younger
    /// than `deposit_life` and retries while younger than `withdrawal_life`?
    fn grants(
        &self,
        config: Config,
        now: Instant,
        deposit_life: Duration,
        withdrawal_life: Duration,
    ) -> bool {
        let young = |times: &[Instant], life: Duration| {
            times.iter().filter(|&&t| now - t < life).count() as i128
        };
        let amount = (config.ratio * SCALE as f64).round() as i128;
        let reserve = i128::from(config.min_per_second) * config.ttl.as_nanos() as i128;
        reserve + amount * young(&self.deposits, deposit_life)
            - SCALE * young(&self.withdrawals, withdrawal_life)
            >= SCALE
    }
}

/// Runs `steps` on `budget`, checking each decision against the model's
/// envelope; returns the decisions.
async fn run_against_model(
    config: Config,
    budget: &RetryBudget,
    steps: &[Step],
    seed: u64,
) -> Vec<bool> {
    let slot = config.slot();
    let (short, long) = (config.ttl - slot, config.ttl + slot);
    let mut model = Model::default();
    let mut decisions = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Deposits(n) => {
                for _ in 0..n {
                    budget.deposit();
                    model.deposits.push(Instant::now());
                }
            }
            Step::Withdrawals(n) => {
                for _ in 0..n {
                    let now = Instant::now();
                    let stingy = model.grants(config, now, short, long);
                    let generous = model.grants(config, now, long, short);
                    let granted = budget.withdraw();
                    assert!(
                        !stingy || granted,
                        "seed {seed}, step {i} ({step:?}), {config:?}: refused a retry \
                         the model grants even with every lifetime a slot shorter"
                    );
                    assert!(
                        generous || !granted,
                        "seed {seed}, step {i} ({step:?}), {config:?}: granted a retry \
                         the model refuses even with every lifetime a slot longer"
                    );
                    if granted {
                        model.withdrawals.push(now);
                    }
                    decisions.push(granted);
                }
            }
            Step::Wait(d) => advance(d).await,
        }
    }
    decisions
}

const CONFIGS: [Config; 4] = [
    Config {
        ttl: Duration::from_secs(1),
        ratio: 0.5,
        min_per_second: 0,
    },
    Config {
        ttl: Duration::from_secs(10),
        ratio: 0.2,
        min_per_second: 1,
    },
    Config {
        ttl: Duration::from_millis(250),
        ratio: 1.0,
        min_per_second: 0,
    },
    Config {
        ttl: Duration::from_secs(3),
        ratio: 2.5,
        min_per_second: 2,
    },
];

#[tokio::test(start_paused = true)]
async fn decisions_stay_within_a_slot_of_the_reference_model() {
    for seed in 0..200 {
        let config = CONFIGS[seed as usize % CONFIGS.len()];
        let mut rng = Rng(seed);
        let steps = sequence(&mut rng, config, 120);
        let budget = config.budget();
        run_against_model(config, &budget, &steps, seed).await;
    }
}

#[tokio::test(start_paused = true)]
async fn after_an_idle_gap_of_ttl_and_two_slots_the_budget_is_fresh() {
    for seed in 0..200 {
        let config = CONFIGS[seed as usize % CONFIGS.len()];
        let mut rng = Rng(seed ^ 0xFEED);
        let before = sequence(&mut rng, config, 60);
        let after = sequence(&mut rng, config, 60);
        let old = config.budget();
        run_against_model(config, &old, &before, seed).await;

        // The gap: ttl + 2 slots, or anything longer up to 100 × ttl.
        let ttl = config.ttl.as_nanos() as u64;
        let gap = config.ttl + 2 * config.slot() + Duration::from_nanos(rng.below(100 * ttl));
        advance(gap).await;

        // The same sequence on the old budget and on a fresh one, side by
        // side: each step on one, then on the other, at the same instant.
        let fresh = config.budget();
        for (i, step) in after.iter().enumerate() {
            match *step {
                Step::Deposits(n) => {
                    for _ in 0..n {
                        old.deposit();
                        fresh.deposit();
                    }
                }
                Step::Withdrawals(n) => {
                    for _ in 0..n {
                        assert_eq!(
                            old.withdraw(),
                            fresh.withdraw(),
                            "seed {seed}, step {i} after a gap of {gap:?}, {config:?}"
                        );
                    }
                }
                Step::Wait(d) => advance(d).await,
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn after_an_idle_gap_the_slots_start_where_a_fresh_budgets_do() {
    // Inside a slot the window takes retries to be spread over the span
    // they were made in, so which retries share a slot changes a decision
    // by up to a slot's worth: the slots after a gap must begin where a
    // fresh budget's begin (at the first event), not on the old grid.
    let config = Config {
        ttl: Duration::from_secs(1),
        ratio: 0.0,
        min_per_second: 2,
    };
    // Half a slot off the old grid: after 10 s, and after exactly one
    // ring (the window's 10 slots and the one its far edge cuts), the
    // shortest move that leaves nothing younger than ttl.
    for gap in [10_050, 1_150] {
        let old = config.budget();
        assert!(old.withdraw(), "t = 0: the old grid starts here");
        advance(Duration::from_millis(gap)).await;
        let fresh = config.budget();
        for wait in [0, 90, 930] {
            advance(Duration::from_millis(wait)).await;
            assert_eq!(
                old.withdraw(),
                fresh.withdraw(),
                "{wait} ms after a gap of {gap} ms"
            );
        }
    }
}
