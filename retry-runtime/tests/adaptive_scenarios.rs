//! Issue 20's scenarios for `AdaptiveLimit`, on tokio's paused clock:
//! ranges, not exact values (the tables are in BENCHMARKS.md, printed by
//! `cargo run --release -p steadfast-benches --example adaptive_simulation`).
//!
//! The dependency (`adaptive_sim`) has W workers of S = 10 ms each and
//! queues what it cannot serve; requests arrive open loop, take the limit
//! with `try_acquire` (a refusal sheds them) and report their latency.
//!
//! | scenario | asserted |
//! |---|---|
//! | W = 16 (1,600/s), offered 3,200/s for 4 s | limit in [10, 24] over the last 2 s; goodput >= 0.9 of capacity over the run and over the last 2 s; p99 of served calls <= 2.5 S; the server never holds more than 24 |
//! | then W = 8 at 4 s | the limit <= 12 from 5 s on; goodput over 5..6 s >= 0.85 of the new capacity |
//! | W = 16, every call twice as slow from 2 s (not in the issue) | the no-load latency measured again: from 4 s, goodput >= 0.85 of the new capacity, limit in [10, 24], p99 <= 2.5 × the new service time |

mod adaptive_sim;

use std::rc::Rc;
use std::time::Duration;

use adaptive_sim::{Run, Scenario, Server, run};
use retry_runtime::AdaptiveLimit;

const S: Duration = Duration::from_millis(10);

async fn with_limit(limit: AdaptiveLimit, scenario: Scenario) -> Run {
    let limit: &'static AdaptiveLimit = Box::leak(Box::new(limit));
    let run = run(
        scenario,
        move || Some(limit.limit()),
        move |server: Rc<Server>| async move {
            let Some(permit) = limit.try_acquire() else {
                return false;
            };
            server.serve().await;
            permit.success();
            true
        },
    )
    .await;
    assert_eq!(limit.in_flight(), 0);
    run
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn show(name: &str, run: &Run, from: f64, to: f64) {
    let w = run.window(secs(from), secs(to));
    println!(
        "{name} {from}..{to}s: goodput {:.0}/s, shed {:.2}, p50 {:?}, p99 {:?}, peak {}, limit {:?}",
        w.goodput, w.shed, w.p50, w.p99, w.peak_outstanding, w.limit
    );
}

#[tokio::test(start_paused = true)]
async fn gradient_under_twice_the_capacity_settles_near_the_workers() {
    let run = with_limit(AdaptiveLimit::gradient(), Scenario::OVERLOAD).await;
    show("gradient", &run, 0.0, 4.0);
    show("gradient", &run, 2.0, 4.0);
    let last = run.window(secs(2.0), secs(4.0));
    let whole = run.window(secs(0.0), secs(4.0));
    let (lo, hi) = last.limit.expect("a limit");
    assert!(lo >= 10 && hi <= 24, "limit {lo}..={hi} over the last 2 s");
    assert!(whole.goodput >= 0.9 * 1_600.0, "goodput {}", whole.goodput);
    assert!(last.goodput >= 0.9 * 1_600.0, "goodput {}", last.goodput);
    assert!(whole.p99 <= S * 5 / 2, "p99 {:?}", whole.p99);
    assert!(
        whole.peak_outstanding <= 24,
        "peak {}",
        whole.peak_outstanding
    );
}

#[tokio::test(start_paused = true)]
async fn gradient_follows_a_capacity_drop_within_a_second() {
    let run = with_limit(AdaptiveLimit::gradient(), Scenario::CAPACITY_DROP).await;
    show("gradient", &run, 4.0, 5.0);
    show("gradient", &run, 5.0, 6.0);
    let settled = run.settled_under(12, secs(4.0), secs(6.0));
    println!("settled under 12 at {settled:?}");
    let after = run.window(secs(5.0), secs(6.0));
    let (_, hi) = after.limit.expect("a limit");
    assert!(hi <= 12, "limit up to {hi} a second after the drop");
    assert!(after.goodput >= 0.85 * 800.0, "goodput {}", after.goodput);
}

#[tokio::test(start_paused = true)]
async fn vegas_holds_the_same_ranges() {
    let run = with_limit(AdaptiveLimit::vegas(), Scenario::CAPACITY_DROP).await;
    for (from, to) in [(0.0, 4.0), (2.0, 4.0), (4.0, 5.0), (5.0, 6.0)] {
        show("vegas", &run, from, to);
    }
    let (whole, last) = (
        run.window(secs(0.0), secs(4.0)),
        run.window(secs(2.0), secs(4.0)),
    );
    let (lo, hi) = last.limit.expect("a limit");
    assert!(lo >= 10 && hi <= 24, "limit {lo}..={hi} over the last 2 s");
    assert!(whole.goodput >= 0.9 * 1_600.0, "goodput {}", whole.goodput);
    assert!(whole.p99 <= S * 5 / 2, "p99 {:?}", whole.p99);
    assert!(
        whole.peak_outstanding <= 24,
        "peak {}",
        whole.peak_outstanding
    );
    let after = run.window(secs(5.0), secs(6.0));
    assert!(after.limit.expect("a limit").1 <= 12);
    assert!(after.goodput >= 0.85 * 800.0, "goodput {}", after.goodput);
}

/// AIMD sees no overload from a dependency that queues rather than
/// refuses, until a latency counts as a drop: with `drop_above` at the p99
/// target it fills the queue up to it (so it misses the peak of 24 the
/// gradient keeps), then backs off. Its range is its own: goodput near
/// capacity, latency near `drop_above`.
#[tokio::test(start_paused = true)]
async fn aimd_fills_the_queue_up_to_its_drop_latency() {
    let drop_above = S * 5 / 2;
    let run = with_limit(
        AdaptiveLimit::aimd().drop_above(drop_above),
        Scenario::CAPACITY_DROP,
    )
    .await;
    for (from, to) in [(0.0, 4.0), (2.0, 4.0), (4.0, 5.0), (5.0, 6.0)] {
        show("aimd", &run, from, to);
    }
    let whole = run.window(secs(0.0), secs(4.0));
    assert!(whole.goodput >= 0.95 * 1_600.0, "goodput {}", whole.goodput);
    assert!(whole.p99 <= drop_above + S, "p99 {:?}", whole.p99);
    assert!(
        whole.peak_outstanding > 24,
        "AIMD queues up to its drop latency"
    );
    let after = run.window(secs(5.0), secs(6.0));
    assert!(after.goodput >= 0.85 * 800.0, "goodput {}", after.goodput);
    assert!(after.p99 <= drop_above + S, "p99 {:?}", after.p99);
}

/// Not in the issue: every call becomes twice as slow for good at 2 s
/// (capacity 800/s), so the no-load latency itself moved, and the queue
/// the gradient sees is a phantom. It halves the limit towards 2; once the
/// limit has sat at or under the measuring limit (3) for 5 intervals it
/// measures the no-load latency again (about 3.1 s here), as Envoy's filter
/// does, rather than waiting for the next scheduled measurement a minute
/// later, and grows back to W + sqrt(W) = 20 by 4.2 s. Without the
/// re-measurement it stayed at 2: an eighth of the capacity.
#[tokio::test(start_paused = true)]
async fn gradient_measures_again_when_the_dependency_slows_for_good() {
    let scenario = Scenario {
        duration: Duration::from_secs(5),
        ..Scenario::SLOWDOWN
    };
    let run = with_limit(AdaptiveLimit::gradient(), scenario).await;
    for (from, to) in [(2.0, 3.0), (3.0, 4.0), (4.0, 5.0)] {
        show("gradient, slowdown", &run, from, to);
    }
    let last = run.window(secs(4.0), secs(5.0));
    assert!(last.goodput >= 0.85 * 800.0, "goodput {}", last.goodput);
    let (lo, hi) = last.limit.expect("a limit");
    assert!(lo >= 10 && hi <= 24, "limit {lo}..={hi}");
    assert!(last.p99 <= Duration::from_millis(50), "p99 {:?}", last.p99);
}
