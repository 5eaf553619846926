//! What the three benchmark targets share: one way to drive a future, one
//! criterion configuration, and the ratio tables printed after a run.
//!
//! Not a bench target itself: `benches/Cargo.toml` lists the targets.

#![allow(dead_code)] // each target uses a different part

mod driving;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::Criterion;

#[allow(unused_imports)] // `primitives` and `keyed` drive no futures
pub(crate) use driving::*;

/// Short runs, so the whole suite takes a few minutes: command-line flags
/// (`--warm-up-time`, `--measurement-time`, `--sample-size`) still override.
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

/// Where criterion writes its estimates: the same rule criterion 0.5 uses,
/// `$CRITERION_HOME`, else `criterion/` in the target directory (criterion
/// asks `cargo metadata`; the directory `CARGO_TARGET_TMPDIR` sits in is the
/// same one, and unlike `target/` it does not depend on the working
/// directory, which `cargo bench` sets to this package's, `benches/`).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("criterion"),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).with_file_name("criterion"),
    }
}

/// The typical time (ns) of one benchmark, as criterion prints it (the
/// slope when it has one, else the mean), if it was measured in this
/// process, i.e. its estimates were written after `since`.
pub(crate) fn estimate(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()
        .join(group.replace('/', "_"))
        .join(id.replace('/', "_"))
        .join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let number = |key: &str| -> Option<f64> {
        // `"slope":{"confidence_interval":{...},"point_estimate":12.3,...}`:
        // the first point estimate after the key.
        let start = text.find(&format!("\"{key}\":{{"))?;
        let rest = &text[start..];
        let at = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
        let rest = &rest[at..];
        let end = rest.find([',', '}'])?;
        rest[..end].trim().parse().ok()
    };
    number("slope").or_else(|| number("mean"))
}

/// One row of a ratio table: an id, and optionally the id it is compared to
/// in a goal (`goal_ratio`: the largest ratio that meets the goal).
pub(crate) struct Row<'a> {
    pub(crate) id: &'a str,
    pub(crate) goal: Option<(&'a str, f64)>,
}

pub(crate) const fn row(id: &str) -> Row<'_> {
    Row { id, goal: None }
}

pub(crate) const fn goal<'a>(id: &'a str, against: &'a str, ratio: f64) -> Row<'a> {
    Row {
        id,
        goal: Some((against, ratio)),
    }
}

/// Prints a markdown table of `rows` of `group`: time, ratio to `baseline`,
/// and the goal ratio where one is set.
pub(crate) fn print_table(group: &str, baseline: &str, rows: &[Row<'_>], since: SystemTime) {
    let Some(base) = estimate(group, baseline, since) else {
        return;
    };
    println!("\n### {group}\n");
    println!("| contender | time | vs `{baseline}` | goal |");
    println!("|---|---:|---:|---|");
    for row in rows {
        let Some(time) = estimate(group, row.id, since) else {
            continue;
        };
        let goal = match row.goal {
            Some((against, limit)) => match estimate(group, against, since) {
                Some(other) => {
                    let ratio = time / other;
                    let verdict = if ratio <= limit { "met" } else { "MISSED" };
                    format!("{ratio:.2}x `{against}` (≤ {limit}x: {verdict})")
                }
                None => String::new(),
            },
            None => String::new(),
        };
        println!(
            "| `{}` | {} | {:.2}x | {} |",
            row.id,
            format_ns(time),
            time / base,
            goal
        );
    }
}

pub(crate) fn format_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else {
        format!("{:.2} µs", ns / 1_000.0)
    }
}

/// Runs `f` on `threads` threads at once, each `iters` times, and returns
/// the wall time of the slowest: with criterion's linear sampling the
/// thread start-up is a constant that the slope leaves out, so the estimate
/// is the time of one operation while the other threads contend.
pub(crate) fn contended<T: Sync>(
    shared: &T,
    threads: usize,
    iters: u64,
    f: impl Fn(&T) + Sync,
) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        f(shared);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}

/// [`contended`] with per-thread state: each thread makes its own with
/// `make` (e.g. a clone of a shared service, a runtime context) before the
/// clock starts.
pub(crate) fn contended_with<S>(
    threads: usize,
    iters: u64,
    make: impl Fn() -> S + Sync,
    f: impl Fn(&mut S) + Sync,
) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut state = make();
                    barrier.wait();
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        f(&mut state);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}
