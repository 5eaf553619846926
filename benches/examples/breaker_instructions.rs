//! Instructions per `try_acquire` + `success` of the circuit breakers, next
//! to recloser's `call` with the equivalent policy, counted by callgrind in
//! one run (load-independent, unlike the times of `--bench primitives`).
//!
//! ```text
//! cargo run --release -p steadfast-benches --example breaker_instructions
//! ```
//!
//! Run so, it runs itself again under
//! `valgrind --tool=callgrind --collect-atstart=no` with
//! `--toggle-collect` and `--dump-after` on each `measure_*` function, so
//! that callgrind writes one dump per contender holding only the
//! instructions of its [`ITERATIONS`] calls (after a warm-up that is not
//! counted), and prints a table. With `--run` it only runs the contenders
//! (what callgrind is given); for a profile of one of them, e.g.
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!   --toggle-collect=breaker_instructions::measure_failure_rate --dump-instr=yes \
//!   target/release/examples/breaker_instructions --run
//! callgrind_annotate --auto=yes --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Each contender is one `#[inline(never)]` function doing one admission
//! and one success report on a shared instance (`black_box`ed, so nothing
//! is hoisted out of the loop). `measure_loop_only` calls a function that
//! does nothing, so the call and the loop around it can be subtracted.
//! The "net" column is what a caller pays for the breaker itself.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use steadfast::CircuitBreaker;

/// Counted calls per contender.
const ITERATIONS: u64 = 100_000;
/// Calls per contender before counting: thread-locals (recloser's epoch
/// pin), the breaker's clock epoch and the like are set up here.
const WARM_UP: u64 = 1_000;

/// The breakers measured, each a `static` as a breaker usually is (and
/// so that the two contenders' code differs: identical functions would be
/// merged into one symbol).
static CONSECUTIVE: CircuitBreaker = CircuitBreaker::new();
static FAILURE_RATE: CircuitBreaker = CircuitBreaker::new().failure_rate(0.5, 20);

#[inline(never)]
fn nothing() {
    black_box(());
}

#[inline(never)]
fn consecutive() {
    if let Ok(permit) = black_box(&CONSECUTIVE).try_acquire() {
        permit.success();
    }
}

#[inline(never)]
fn failure_rate() {
    if let Ok(permit) = black_box(&FAILURE_RATE).try_acquire() {
        permit.success();
    }
}

#[inline(never)]
fn recloser(breaker: &recloser::Recloser) {
    let _ = black_box(breaker).call(|| Ok::<(), ()>(()));
}

// One function per contender, the only code callgrind collects in: each
// calls its contender `ITERATIONS` times.
#[inline(never)]
fn measure_loop_only() {
    for _ in 0..ITERATIONS {
        nothing();
    }
}

#[inline(never)]
fn measure_consecutive() {
    for _ in 0..ITERATIONS {
        consecutive();
    }
}

#[inline(never)]
fn measure_failure_rate() {
    for _ in 0..ITERATIONS {
        failure_rate();
    }
}

#[inline(never)]
fn measure_recloser(peer: &recloser::Recloser) {
    for _ in 0..ITERATIONS {
        recloser(peer);
    }
}

/// The contenders, in the order their dumps are written.
const CONTENDERS: &[(&str, &str)] = &[
    (
        "measure_loop_only",
        "the call and loop alone (subtracted below)",
    ),
    (
        "measure_consecutive",
        "`CircuitBreaker::new()` (5 consecutive failures)",
    ),
    (
        "measure_failure_rate",
        "`CircuitBreaker::new().failure_rate(0.5, 20)`",
    ),
    (
        "measure_recloser",
        "recloser `call`, `error_rate(0.5).closed_len(20)`",
    ),
];

fn run() {
    // The same policy as `FAILURE_RATE`: trip at a failure rate of 0.5
    // over the last 20 calls, judged once 20 have been recorded; one
    // probe; open for 30 s.
    let peer = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(20)
        .half_open_len(1)
        .open_wait(Duration::from_secs(30))
        .build();
    for _ in 0..WARM_UP {
        nothing();
        consecutive();
        failure_rate();
        recloser(&peer);
    }
    measure_loop_only();
    measure_consecutive();
    measure_failure_rate();
    measure_recloser(&peer);
    assert_eq!(CONSECUTIVE.state(), steadfast::CircuitState::Closed);
    assert_eq!(FAILURE_RATE.state(), steadfast::CircuitState::Closed);
}

/// The `totals:` (or `summary:`) line of a callgrind dump: instructions.
fn total(dump: &Path) -> u64 {
    let text = std::fs::read_to_string(dump).expect("a callgrind dump");
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", dump.display()))
}

fn main() {
    if std::env::args().any(|arg| arg == "--run") {
        run();
        return;
    }
    let dir = std::env::temp_dir().join(format!("breaker_instructions.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let out = dir.join("callgrind.out");
    let exe = std::env::current_exe().expect("this binary's path");
    let mut valgrind = Command::new("valgrind");
    valgrind
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg("--toggle-collect=breaker_instructions::measure_*");
    // One `--dump-after` per name (callgrind 3.19 honours several of
    // them, but not a wildcard there, nor several `--toggle-collect`s
    // next to them).
    for (name, _) in CONTENDERS {
        valgrind.arg(format!("--dump-after=breaker_instructions::{name}"));
    }
    let status = valgrind
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .arg("--run")
        .status()
        .expect("valgrind (apt-get install valgrind)");
    assert!(status.success(), "callgrind failed: {status}");
    // `--dump-after` writes `<out>.1`, `<out>.2`, ... in the order the
    // functions return, then the final dump to `<out>` (nothing collected).
    let dumps: Vec<PathBuf> = (1..=CONTENDERS.len())
        .map(|n| PathBuf::from(format!("{}.{n}", out.display())))
        .collect();
    let totals: Vec<u64> = dumps.iter().map(|dump| total(dump)).collect();
    let per_call = |total: u64| total as f64 / ITERATIONS as f64;
    let overhead = per_call(totals[0]);
    let net: Vec<f64> = totals.iter().map(|&t| per_call(t) - overhead).collect();
    let recloser = net[CONTENDERS.len() - 1];
    println!(
        "instructions per call, {ITERATIONS} calls each after {WARM_UP} uncounted, \
         one callgrind run\n"
    );
    println!("| contender | with the call and loop | net | vs recloser |");
    println!("|---|---:|---:|---:|");
    for (i, (((_, label), &total), &net)) in CONTENDERS.iter().zip(&totals).zip(&net).enumerate() {
        let ratio = if i == 0 {
            "".to_string()
        } else {
            format!("{:.2}x", net / recloser)
        };
        println!("| {label} | {:.1} | {net:.1} | {ratio} |", per_call(total));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
