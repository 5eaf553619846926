//! Brooker's backoff simulation ("Exponential Backoff And Jitter", AWS
//! Architecture Blog, 2015; aws-samples/aws-arch-backoff-simulator), ported to
//! Rust and driven by steadfast's own [`Backoff`] and [`Jitter`].
//!
//! ```sh
//! cargo run --release -p steadfast-benches --example jitter_simulation             # table + chart
//! cargo run --release -p steadfast-benches --example jitter_simulation -- --csv    # CSV rows only
//! cargo run --release -p steadfast-benches --example jitter_simulation -- --svg docs/jitter_simulation.svg
//! cargo run -p steadfast-benches --example jitter_simulation -- --check            # schedule checks only
//! ```
//!
//! The simulation itself takes about 3 s of CPU in release (split over the
//! available cores) and about 20 s in debug; the output is the same.
//!
//! # The model
//!
//! `N` clients race to update one row under optimistic concurrency. At t = 0
//! each client sends a read; the server answers with the row's version; the
//! client then sends a write carrying that version. The write succeeds only
//! if the version is unchanged (the server then bumps it), and that client is
//! done. Otherwise the client backs off and starts over: after failing its
//! `n`-th write, its next read reaches the server after one network delay
//! plus `backoff(n)`, counted from the failure reply. Every message takes
//! `|Normal(10 ms, sd 2 ms)|` to arrive. Only writes count as calls; the
//! completion time is the time of the last event. It is a discrete-event
//! simulation (a time-ordered `BinaryHeap`, no sleeping); every point is the
//! mean of 100 seeded runs, for `N = 10, 20, ..., 190`.
//!
//! # The strategies, as steadfast schedules
//!
//! The blog's formulas use base 5 ms, cap 2000 ms, and `n = 1` for the first
//! retry, so its exponential delay before retry `n` is
//! `min(cap, 5 ms * 2^n)`: 10 ms before the first retry. Our
//! [`Backoff::exponential`] yields `base * 2^(n-1)` before retry `n`, so the
//! same schedule is `Backoff::exponential(10 ms)`:
//!
//! | strategy | blog formula | steadfast configuration |
//! |---|---|---|
//! | `none` | 0 | `Backoff::none()` |
//! | `exponential` | `min(cap, base*2^n)` | `exponential(10 ms).max_delay(2 s).jitter(Jitter::None)` |
//! | `full` | `U(0, that)` | same, `.jitter(Jitter::Full)` |
//! | `equal` | `that/2 + U(0, that/2)` | same, `.jitter(Jitter::Equal)` |
//! | `decorrelated` | `min(cap, U(base, prev*3))`, `prev` from base | `exponential(5 ms).max_delay(2 s).jitter(Jitter::Decorrelated)` |
//!
//! Each client owns one `Backoff` (so decorrelated jitter keeps one `prev`
//! per client), seeded from (seed, N, run, client) with
//! [`Backoff::with_seed`]; its `n`-th failed write takes the iterator's
//! `n`-th value. The network draws come from one generator per run. Seeds do
//! not depend on the strategy, so all strategies start from the same network
//! draws. Before simulating, the example checks that these configurations
//! reproduce the formulas (`--check` runs only that check and prints the
//! first delays).
//!
//! # Output
//!
//! Standard output gets a table of mean write calls and mean completion time
//! per strategy and `N`, or with `--csv` only the rows
//! `strategy,clients,mean_calls,mean_time_ms` (no header). A two-panel SVG
//! chart (calls vs `N` on a linear scale, time vs `N` on a log scale, one
//! line per strategy) goes to `target/jitter_simulation.svg` under the
//! workspace root unless `--svg PATH` says otherwise (`--no-svg` skips it);
//! `docs/jitter_simulation.svg` is that chart for the default seed, made with
//! `--svg docs/jitter_simulation.svg`. Timing and the chart's path go to
//! standard error.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{self, AtomicUsize};
use std::time::{Duration, Instant};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Normal};
use steadfast::{Backoff, Jitter};

/// The blog's `base`.
const BASE: Duration = Duration::from_millis(5);
/// The blog's `cap`.
const CAP: Duration = Duration::from_millis(2000);
/// One-way network delay: `|Normal(mean, sd)|` in milliseconds.
const NET_MEAN_MS: f64 = 10.0;
const NET_SD_MS: f64 = 2.0;
/// Runs averaged per (strategy, N) point.
const DEFAULT_RUNS: u32 = 100;
/// `N = 10, 20, ..., 190`.
const CLIENTS_STEP: u32 = 10;
const CLIENTS_MAX: u32 = 190;
/// The year of the blog post.
const DEFAULT_SEED: u64 = 2015;

const USAGE: &str = "\
usage: jitter_simulation [--csv] [--svg PATH | --no-svg] [--runs N] [--seed S] [--threads T] [--check]

  --csv        print only rows `strategy,clients,mean_calls,mean_time_ms` (no header)
  --svg PATH   write the chart to PATH (default: <workspace>/target/jitter_simulation.svg)
  --no-svg     do not write the chart
  --runs N     runs per point (default 100)
  --seed S     master seed (default 2015)
  --threads T  worker threads (default: available parallelism)
  --check      only check the backoff schedules against the blog's formulas";

// ---------------------------------------------------------------------------
// Strategies

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    None,
    Exponential,
    Full,
    Equal,
    Decorrelated,
}

impl Strategy {
    const ALL: [Self; 5] = [
        Self::None,
        Self::Exponential,
        Self::Full,
        Self::Equal,
        Self::Decorrelated,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Exponential => "exponential",
            Self::Full => "full",
            Self::Equal => "equal",
            Self::Decorrelated => "decorrelated",
        }
    }

    /// The steadfast schedule reproducing the blog's formula (see the module
    /// docs): the blog's first retry waits `base * 2^1`, ours waits the base
    /// delay, hence `2 * BASE` for the exponential family. Decorrelated jitter
    /// grows from `prev` alone and draws from `[base, 3 * prev]`, so it keeps
    /// the blog's base.
    fn backoff(self) -> Backoff {
        let exponential = Backoff::exponential(BASE.saturating_mul(2)).max_delay(CAP);
        match self {
            Self::None => Backoff::none(),
            Self::Exponential => exponential.jitter(Jitter::None),
            Self::Full => exponential.jitter(Jitter::Full),
            Self::Equal => exponential.jitter(Jitter::Equal),
            Self::Decorrelated => Backoff::exponential(BASE)
                .max_delay(CAP)
                .jitter(Jitter::Decorrelated),
        }
    }

    /// Line colour in the chart.
    fn color(self) -> RGBColor {
        match self {
            Self::None => RGBColor(0x55, 0x55, 0x55),
            Self::Exponential => RGBColor(0xd6, 0x27, 0x28),
            Self::Full => RGBColor(0x1f, 0x77, 0xb4),
            Self::Equal => RGBColor(0xff, 0x7f, 0x0e),
            Self::Decorrelated => RGBColor(0x2c, 0xa0, 0x2c),
        }
    }
}

// ---------------------------------------------------------------------------
// Seeds

/// SplitMix64's finaliser: turns nearby inputs into unrelated seeds.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed for one stream of one run: `stream` is the client index, or
/// `NET_STREAM` for the network.
fn derive_seed(seed: u64, clients: u32, run: u32, stream: u64) -> u64 {
    [u64::from(clients), u64::from(run), stream]
        .into_iter()
        .fold(splitmix(seed), |acc, x| splitmix(acc ^ x))
}

const NET_STREAM: u64 = u64::MAX;

// ---------------------------------------------------------------------------
// The simulation

/// A message arriving at its destination.
#[derive(Debug, Clone, Copy)]
enum Msg {
    /// A client's read reaches the server.
    Read { client: u32 },
    /// The server's answer, carrying the version it read, reaches the client.
    ReadReply { client: u32, version: u64 },
    /// A client's write, carrying the version it read, reaches the server.
    Write { client: u32, version: u64 },
    /// The server's verdict on a write reaches the client.
    WriteReply { client: u32, ok: bool },
}

#[derive(Debug)]
struct Event {
    at_ms: f64,
    /// Insertion order, to break (improbable) ties deterministically.
    seq: u64,
    msg: Msg,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at_ms
            .total_cmp(&self.at_ms)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// The time-ordered event queue.
struct Queue {
    heap: BinaryHeap<Event>,
    seq: u64,
}

impl Queue {
    fn with_capacity(n: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(n),
            seq: 0,
        }
    }

    fn push(&mut self, at_ms: f64, msg: Msg) {
        self.seq += 1;
        self.heap.push(Event {
            at_ms,
            seq: self.seq,
            msg,
        });
    }

    fn pop(&mut self) -> Option<Event> {
        self.heap.pop()
    }
}

/// The network: every message takes `|Normal(10 ms, 2 ms)|`.
struct Net {
    rng: SmallRng,
    normal: Normal<f64>,
}

impl Net {
    fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            normal: Normal::new(NET_MEAN_MS, NET_SD_MS).expect("finite mean, positive sd"),
        }
    }

    fn delay_ms(&mut self) -> f64 {
        self.normal.sample(&mut self.rng).abs()
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One run: returns (write calls, completion time in ms).
fn simulate(strategy: Strategy, clients: u32, run: u32, seed: u64) -> (u64, f64) {
    let mut net = Net::new(derive_seed(seed, clients, run, NET_STREAM));
    // One schedule per client: its n-th failed write takes the n-th delay.
    let mut backoffs: Vec<Backoff> = (0..clients)
        .map(|c| {
            strategy
                .backoff()
                .with_seed(derive_seed(seed, clients, run, u64::from(c)))
        })
        .collect();
    let mut queue = Queue::with_capacity(clients as usize);
    for client in 0..clients {
        queue.push(net.delay_ms(), Msg::Read { client });
    }

    let mut row_version = 0u64;
    let mut calls = 0u64;
    let mut now = 0.0f64;
    while let Some(event) = queue.pop() {
        debug_assert!(event.at_ms >= now, "time must move forward");
        now = event.at_ms;
        match event.msg {
            Msg::Read { client } => {
                let version = row_version;
                queue.push(now + net.delay_ms(), Msg::ReadReply { client, version });
            }
            Msg::ReadReply { client, version } => {
                queue.push(now + net.delay_ms(), Msg::Write { client, version });
            }
            Msg::Write { client, version } => {
                calls += 1;
                let ok = version == row_version;
                if ok {
                    row_version += 1;
                }
                queue.push(now + net.delay_ms(), Msg::WriteReply { client, ok });
            }
            // This client is done.
            Msg::WriteReply { ok: true, .. } => {}
            Msg::WriteReply { client, ok: false } => {
                let wait = backoffs[client as usize]
                    .next()
                    .expect("a Backoff never ends");
                queue.push(now + net.delay_ms() + millis(wait), Msg::Read { client });
            }
        }
    }
    (calls, now)
}

#[derive(Debug, Clone, Copy)]
struct Point {
    strategy: Strategy,
    clients: u32,
    mean_calls: f64,
    mean_time_ms: f64,
}

fn simulate_point(strategy: Strategy, clients: u32, runs: u32, seed: u64) -> Point {
    let (mut calls, mut time) = (0u64, 0.0f64);
    for run in 0..runs {
        let (c, t) = simulate(strategy, clients, run, seed);
        calls += c;
        time += t;
    }
    Point {
        strategy,
        clients,
        mean_calls: calls as f64 / f64::from(runs),
        mean_time_ms: time / f64::from(runs),
    }
}

/// Every (strategy, N) point, computed on `threads` workers. Each point is
/// seeded on its own, so the result does not depend on the thread count.
fn simulate_all(runs: u32, seed: u64, threads: usize) -> Vec<Point> {
    let clients: Vec<u32> = (1..=CLIENTS_MAX / CLIENTS_STEP)
        .map(|i| i * CLIENTS_STEP)
        .collect();
    let mut jobs: Vec<(Strategy, u32)> = Strategy::ALL
        .iter()
        .flat_map(|&s| clients.iter().map(move |&n| (s, n)))
        .collect();
    // Largest N first, so the slow points do not all end up at the tail.
    jobs.sort_by_key(|&(_, n)| std::cmp::Reverse(n));

    let next = AtomicUsize::new(0);
    let mut points: Vec<Point> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, atomic::Ordering::Relaxed);
                        let Some(&(strategy, n)) = jobs.get(i) else {
                            break done;
                        };
                        done.push(simulate_point(strategy, n, runs, seed));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker panicked"))
            .collect()
    });
    let rank = |s: Strategy| Strategy::ALL.iter().position(|&x| x == s);
    points.sort_by_key(|p| (rank(p.strategy), p.clients));
    points
}

// ---------------------------------------------------------------------------
// The schedules reproduce the blog's formulas

/// The blog's un-jittered exponential delay, `min(cap, base * 2^n)`.
fn blog_expo(n: u32) -> Duration {
    BASE.saturating_mul(1 << n).min(CAP)
}

/// Panics if a strategy's schedule does not match the blog's formula. Cheap,
/// so it runs before every simulation.
fn check_schedules() {
    const RETRIES: u32 = 12; // past the cap, which is reached at n = 9
    const SEEDS: u64 = 1000;

    // none: always zero.
    for seed in 0..SEEDS {
        let b = Strategy::None.backoff().with_seed(seed);
        assert!(b.take(RETRIES as usize).all(|d| d.is_zero()), "none");
    }

    // exponential: exactly min(cap, base * 2^n), n = 1 for the first retry.
    let exact: Vec<Duration> = Strategy::Exponential
        .backoff()
        .take(RETRIES as usize)
        .collect();
    let expected: Vec<Duration> = (1..=RETRIES).map(blog_expo).collect();
    assert_eq!(exact, expected, "exponential");
    assert_eq!(exact[0], Duration::from_millis(10));
    assert_eq!(exact[8], CAP);

    // full and equal: the same un-jittered values, then drawn from
    // [0, d] and [d/2, d], spanning the whole interval across clients.
    for (strategy, lo_share) in [(Strategy::Full, 0.0), (Strategy::Equal, 0.5)] {
        let schedule = strategy.backoff();
        for n in 1..=RETRIES {
            assert_eq!(
                schedule.delay_before_jitter(n),
                blog_expo(n),
                "{strategy:?}"
            );
        }
        let draws: Vec<Vec<Duration>> = (0..SEEDS)
            .map(|seed| {
                let b = strategy.backoff().with_seed(seed);
                b.take(RETRIES as usize).collect()
            })
            .collect();
        for n in 1..=RETRIES {
            let d = millis(blog_expo(n));
            let lo = d * lo_share;
            let at_n = draws.iter().map(|v| millis(v[n as usize - 1]));
            let (min, max) = at_n.fold((f64::MAX, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
            assert!(
                min >= lo && max <= d,
                "{strategy:?} retry {n}: {min}..{max}"
            );
            let spread = d - lo;
            assert!(
                min < lo + 0.05 * spread && max > d - 0.05 * spread,
                "{strategy:?} retry {n} draws do not span [{lo}, {d}]: {min}..{max}"
            );
        }
        // Seeded: the same seed gives the same delays.
        let again: Vec<Duration> = strategy.backoff().with_seed(7).take(8).collect();
        assert_eq!(again, draws[7][..8], "{strategy:?} is not reproducible");
    }

    // decorrelated: min(cap, U(base, 3 * prev)), prev starting at base and
    // carried from retry to retry (not restarted).
    let mut above_first_range = false;
    for seed in 0..SEEDS {
        let mut prev = BASE;
        for (i, d) in Strategy::Decorrelated
            .backoff()
            .with_seed(seed)
            .take(RETRIES as usize)
            .enumerate()
        {
            let hi = prev.saturating_mul(3).min(CAP);
            assert!(d >= BASE && d <= hi, "decorrelated retry {}: {d:?}", i + 1);
            above_first_range |= d > BASE * 3;
            prev = d;
        }
    }
    assert!(above_first_range, "decorrelated does not carry prev");
}

/// `--check`: runs the checks and shows the first delays of one client.
fn print_check() {
    check_schedules();
    println!(
        "schedules match the blog's formulas (base {BASE:?}, cap {CAP:?}, n = 1 first retry)\n"
    );
    print!("{:<13}", "retry n");
    for n in 1..=10 {
        print!("{n:>8}");
    }
    println!();
    print!("{:<13}", "blog expo ms");
    for n in 1..=10 {
        print!("{:>8.1}", millis(blog_expo(n)));
    }
    println!();
    for strategy in Strategy::ALL {
        print!("{:<13}", strategy.name());
        for d in strategy.backoff().with_seed(1).take(10) {
            print!("{:>8.1}", millis(d));
        }
        println!();
    }
}

// ---------------------------------------------------------------------------
// Output

fn print_table(points: &[Point], runs: u32, seed: u64) {
    println!(
        "Brooker's OCC contention simulation on steadfast's Backoff/Jitter: base {} ms, cap {} ms,",
        BASE.as_millis(),
        CAP.as_millis()
    );
    println!(
        "network |Normal({NET_MEAN_MS} ms, sd {NET_SD_MS} ms)| per message, mean of {runs} runs per point, seed {seed}."
    );
    print_section(points, "Mean write calls per run", 1, |p| p.mean_calls);
    print_section(points, "Mean completion time per run (ms)", 0, |p| {
        p.mean_time_ms
    });
}

/// One table: a row per N, a column per strategy.
fn print_section(points: &[Point], title: &str, decimals: usize, value: fn(&Point) -> f64) {
    println!("\n{title}");
    print!("{:>7}", "clients");
    for s in Strategy::ALL {
        print!("{:>14}", s.name());
    }
    println!();
    let mut clients: Vec<u32> = points.iter().map(|p| p.clients).collect();
    clients.sort_unstable();
    clients.dedup();
    for n in clients {
        print!("{n:>7}");
        for s in Strategy::ALL {
            let p = points
                .iter()
                .find(|p| p.strategy == s && p.clients == n)
                .expect("every point is simulated");
            print!("{:>14.decimals$}", value(p));
        }
        println!();
    }
}

fn print_csv(points: &[Point]) {
    for p in points {
        println!(
            "{},{},{:.2},{:.2}",
            p.strategy.name(),
            p.clients,
            p.mean_calls,
            p.mean_time_ms
        );
    }
}

/// Two panels, one line per strategy: calls vs N on a linear scale (the
/// blow-up without jitter is the point), time vs N on a log scale (the
/// un-jittered exponential is an order of magnitude slower than the rest).
fn draw_chart(path: &Path, points: &[Point], runs: u32) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "N clients racing to update one row, with steadfast's Backoff/Jitter \
             (base 5 ms, cap 2 s, mean of {runs} runs per point)"
        ),
        ("sans-serif", 20),
    )?;
    let (left, right) = root.split_horizontally(600);

    let calls = |p: &Point| p.mean_calls;
    let max_calls = points.iter().map(calls).fold(0.0, f64::max);
    draw_panel(
        &left,
        points,
        "Write calls",
        "write calls per run",
        calls,
        0.0..max_calls * 1.05,
    )?;

    let time = |p: &Point| p.mean_time_ms;
    let (lo, hi) = points
        .iter()
        .map(time)
        .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    draw_panel(
        &right,
        points,
        "Completion time (log scale)",
        "time until the last client is done (ms)",
        time,
        (lo * 0.8..hi * 1.25).log_scale(),
    )?;
    root.present()?;
    Ok(())
}

/// One panel: `value` of every strategy's points against N.
fn draw_panel<R>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    points: &[Point],
    caption: &str,
    y_desc: &str,
    value: impl Fn(&Point) -> f64,
    y_range: R,
) -> Result<(), Box<dyn Error>>
where
    R: AsRangedCoord<Value = f64>,
    R::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0u32..CLIENTS_MAX + CLIENTS_STEP, y_range)?;
    chart
        .configure_mesh()
        .x_desc("clients (N)")
        .y_desc(y_desc)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for strategy in Strategy::ALL {
        let style = strategy.color().stroke_width(2);
        let series = points
            .iter()
            .filter(|p| p.strategy == strategy)
            .map(|p| (p.clients, value(p)));
        // Full and equal jitter make about the same number of calls: dash
        // one so that both stay visible where they overlap.
        let drawn = if strategy == Strategy::Equal {
            chart.draw_series(DashedLineSeries::new(series, 8, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(series, style))?
        };
        drawn
            .label(strategy.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Command line

struct Options {
    csv: bool,
    check_only: bool,
    svg: Option<PathBuf>,
    runs: u32,
    seed: u64,
    threads: usize,
}

/// The repository's root: this example is in the `steadfast-benches`
/// package, `benches/`.
fn workspace_root() -> &'static Path {
    let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
    benches.parent().unwrap_or(benches)
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        csv: false,
        check_only: false,
        svg: Some(workspace_root().join("target/jitter_simulation.svg")),
        runs: DEFAULT_RUNS,
        seed: DEFAULT_SEED,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--csv" => options.csv = true,
            "--check" => options.check_only = true,
            "--no-svg" => options.svg = None,
            "--svg" => options.svg = Some(PathBuf::from(value("--svg")?)),
            "--runs" => {
                options.runs = value("--runs")?
                    .parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or("--runs takes a positive integer")?;
            }
            "--seed" => {
                options.seed = value("--seed")?
                    .parse()
                    .map_err(|_| "--seed takes an unsigned integer")?;
            }
            "--threads" => {
                options.threads = value("--threads")?
                    .parse()
                    .ok()
                    .filter(|&t| t > 0)
                    .ok_or("--threads takes a positive integer")?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if message.is_empty() { 0 } else { 2 });
        }
    };
    if options.check_only {
        print_check();
        return ExitCode::SUCCESS;
    }
    check_schedules();

    let started = Instant::now();
    let points = simulate_all(options.runs, options.seed, options.threads);
    let elapsed = started.elapsed();

    if options.csv {
        print_csv(&points);
    } else {
        print_table(&points, options.runs, options.seed);
    }
    eprintln!(
        "\nsimulated {} points x {} runs in {:.1} s on {} thread(s)",
        points.len(),
        options.runs,
        elapsed.as_secs_f64(),
        options.threads
    );
    if let Some(path) = &options.svg {
        if let Err(e) = draw_chart(path, &points, options.runs) {
            eprintln!("error: could not write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("chart written to {}", path.display());
    }
    ExitCode::SUCCESS
}
