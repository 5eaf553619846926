//! The protection primitives on their own, against the crates users would
//! pick instead, on one thread and on two threads hammering one shared
//! instance (this machine has two cores).
//!
//! - `CircuitBreaker` admit + record success vs failsafe and recloser;
//! - `RateLimiter` check, allowed (huge rate) and rejected (exhausted
//!   bucket), vs governor; next to the allowed path, the clock read both
//!   make once per call (tokio's `Instant::now`, which ours reads so that a
//!   paused test clock drives it, and std's, which governor reads): the
//!   floor under both;
//! - `RetryBudget` deposit, and deposit + withdraw, vs tower's `TpsBudget`;
//! - `Bulkhead` try_acquire + release vs tokio's `Semaphore`.
//!
//! `cargo bench -p steadfast-benches --bench primitives`

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use common::{Row, goal, row};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use failsafe::CircuitBreaker as _;
use steadfast::{Bulkhead, CircuitBreaker, RateLimiter, RetryBudget};
use tower::retry::budget::{Budget as _, TpsBudget};

/// A contender: a name, and one operation on a shared instance.
struct Contender<'a> {
    id: &'static str,
    op: Box<dyn Fn() + Sync + 'a>,
}

fn contender<'a>(id: &'static str, op: impl Fn() + Sync + 'a) -> Contender<'a> {
    Contender {
        id,
        op: Box::new(op),
    }
}

/// Benchmarks each contender alone (`<name>`) and with two threads doing the
/// same at once on the same instance (`<name>_2_threads`).
fn compare(c: &mut Criterion, name: &str, contenders: &[Contender<'_>]) {
    let mut group: BenchmarkGroup<'_, WallTime> = c.benchmark_group(format!("primitives/{name}"));
    for contender in contenders {
        group.bench_function(contender.id, |b| b.iter(|| (contender.op)()));
    }
    group.finish();
    let mut group = c.benchmark_group(format!("primitives/{name}_2_threads"));
    for contender in contenders {
        group.bench_function(contender.id, |b| {
            b.iter_custom(|iters| common::contended(&(), 2, iters, |()| (contender.op)()))
        });
    }
    group.finish();
}

const GROUPS: &[(&str, &[&str])] = &[
    (
        "breaker",
        &[
            "steadfast",
            "steadfast_failure_rate",
            "failsafe",
            "recloser",
        ],
    ),
    (
        "rate_limiter_allowed",
        &[
            "steadfast",
            "governor",
            "tokio_clock_read",
            "std_clock_read",
        ],
    ),
    ("rate_limiter_rejected", &["steadfast", "governor"]),
    ("budget_deposit", &["steadfast", "tower_tps_budget"]),
    (
        "budget_deposit_withdraw",
        &["steadfast", "tower_tps_budget"],
    ),
    ("bulkhead", &["steadfast", "tokio_semaphore"]),
];

/// Goals checked in the tables (group, contender, compared with, largest
/// ratio that meets the goal), on one and two threads alike.
const GOALS: &[(&str, &str, &str, f64)] = &[("rate_limiter_allowed", "steadfast", "governor", 1.0)];

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion();

    // ------------------------------------------------------------ breakers
    let ours = CircuitBreaker::new();
    let ours_rate = CircuitBreaker::new().failure_rate(0.5, 20);
    let failsafe = failsafe::Config::new().build();
    let recloser = recloser::Recloser::default();
    compare(
        &mut c,
        "breaker",
        &[
            contender("steadfast", || {
                if let Ok(permit) = black_box(&ours).try_acquire() {
                    permit.success();
                }
            }),
            contender("steadfast_failure_rate", || {
                if let Ok(permit) = black_box(&ours_rate).try_acquire() {
                    permit.success();
                }
            }),
            contender("failsafe", || {
                let _ = black_box(&failsafe).call(|| Ok::<(), ()>(()));
            }),
            contender("recloser", || {
                let _ = black_box(&recloser).call(|| Ok::<(), ()>(()));
            }),
        ],
    );

    // -------------------------------------------------------- rate limiters
    let ours = RateLimiter::per_second(u32::MAX).burst(u32::MAX);
    let governor = governor::RateLimiter::direct(governor::Quota::per_second(NonZeroU32::MAX));
    compare(
        &mut c,
        "rate_limiter_allowed",
        &[
            contender("steadfast", || {
                black_box(black_box(&ours).try_acquire());
            }),
            contender("governor", || {
                black_box(black_box(&governor).check().is_ok());
            }),
            contender("tokio_clock_read", || {
                black_box(tokio::time::Instant::now());
            }),
            contender("std_clock_read", || {
                black_box(std::time::Instant::now());
            }),
        ],
    );
    let ours = RateLimiter::per_hour(1);
    assert!(ours.try_acquire());
    let governor = governor::RateLimiter::direct(governor::Quota::per_hour(NonZeroU32::MIN));
    assert!(governor.check().is_ok());
    compare(
        &mut c,
        "rate_limiter_rejected",
        &[
            contender("steadfast", || {
                assert!(!black_box(&ours).try_acquire());
            }),
            contender("governor", || {
                assert!(black_box(&governor).check().is_err());
            }),
        ],
    );

    // ------------------------------------------------------------- budgets
    // Both run on tokio's clock; no runtime is needed outside a paused test.
    let ours = RetryBudget::new();
    let tower = TpsBudget::default();
    compare(
        &mut c,
        "budget_deposit",
        &[
            contender("steadfast", || black_box(&ours).deposit()),
            contender("tower_tps_budget", || black_box(&tower).deposit()),
        ],
    );
    // Ratio 1 and no reserve: every deposit funds the withdrawal after it,
    // so the withdrawal always succeeds and the budgets stay balanced.
    let ours = RetryBudget::new().ratio(1.0).min_per_second(0);
    let tower = TpsBudget::new(Duration::from_secs(10), 0, 1.0);
    compare(
        &mut c,
        "budget_deposit_withdraw",
        &[
            contender("steadfast", || {
                let budget = black_box(&ours);
                budget.deposit();
                black_box(budget.withdraw());
            }),
            contender("tower_tps_budget", || {
                let budget = black_box(&tower);
                budget.deposit();
                black_box(budget.withdraw());
            }),
        ],
    );

    // ------------------------------------------------------------ bulkheads
    let ours = Bulkhead::new(64);
    let tokio = tokio::sync::Semaphore::new(64);
    compare(
        &mut c,
        "bulkhead",
        &[
            contender("steadfast", || {
                drop(black_box(black_box(&ours).try_acquire()));
            }),
            contender("tokio_semaphore", || {
                drop(black_box(black_box(&tokio).try_acquire()));
            }),
        ],
    );

    c.final_summary();
    for &(name, ids) in GROUPS {
        let rows: Vec<Row<'_>> = ids
            .iter()
            .map(|&id| {
                match GOALS
                    .iter()
                    .find(|&&(g, ours, _, _)| (g, ours) == (name, id))
                {
                    Some(&(_, _, against, ratio)) => goal(id, against, ratio),
                    None => row(id),
                }
            })
            .collect();
        for suffix in ["", "_2_threads"] {
            common::print_table(&format!("primitives/{name}{suffix}"), ids[0], &rows, since);
        }
    }
}
