//! Issue 19's hedging simulation: how much of the tail a hedge cuts, and at
//! what extra load, for steadfast's quantile hedge beside no hedge, tower's
//! `hedge` middleware and a fixed-delay hedge, every contender in one run on
//! tokio's paused clock (so the numbers are the same at every run and on any
//! machine).
//!
//! ```sh
//! cargo run --release -p steadfast-benches --example hedge_simulation                 # tables + chart
//! cargo run --release -p steadfast-benches --example hedge_simulation -- --svg docs/hedge_simulation.svg
//! cargo run --release -p steadfast-benches --example hedge_simulation -- --seed 7 --no-svg
//! ```
//!
//! # The model
//!
//! One dependency, called by one caller in sequence: 10^5 calls, each
//! started when the one before it answered. No concurrency, so nothing
//! queues: an attempt takes its own draw whatever else runs. Each attempt
//! (a hedge as much as a first attempt) draws its latency on its own:
//! U(5 ms, 15 ms) with probability 0.99, 250 ms with probability 0.01. The
//! draws are seeded per (seed, call, attempt number), so the first attempt
//! of call `i` takes the same time for every contender, and the hedge of
//! call `i` too: what differs between the contenders is when they hedge.
//!
//! tokio's timer counts whole milliseconds, and the paused clock jumps from
//! one timer to the next, so every sleep ends on the next whole
//! millisecond: an attempt drawn at 7.3 ms answers at 8 ms. As run, the
//! fast mode is 6 to 15 ms in whole milliseconds (0.099 each), and a hedge
//! timer's delay is rounded up the same way.
//!
//! The scenarios:
//!
//! - **model**: the model above, fresh contenders;
//! - **all slow**: every attempt takes 250 ms, fresh contenders (what a
//!   site that is slow from its first call does);
//! - **turns slow**: the contenders of *model*, with the estimates and
//!   budgets that run left them, then every attempt 250 ms for 10^5 more
//!   calls. The onset is what a load budget is for: a delay learnt on a
//!   fast site says "hedge" for every call until the estimate catches up.
//!
//! # The contenders
//!
//! - **no hedge**: the first attempt alone.
//! - **steadfast p95**: `Policy::new().hedge(Hedge::after_quantile(0.95)
//!   .max_extra_load(0.05))` (`after = "p95", max_extra_load = 0.05`), one
//!   hedge at most, the policy's default retry budget beside the hedge
//!   budget (20% of calls plus 10/s: it never binds here).
//! - **tower hedge p95**: tower 0.5's `hedge::Hedge::new(backend, policy,
//!   40, 0.95, 3 s)`. Tower has no load budget: its `Policy::can_retry` is
//!   where one would go, and here it always says yes, as the percentile is
//!   the only bound tower itself puts on the extra load (hedging after its
//!   p95 hedges at most about 5% of calls while latencies do not change).
//!   The settings are the closest to steadfast's: percentile 0.95; 40 min
//!   data points, the samples steadfast waits for at p95 (max(20, 2 /
//!   (1 − q))); a rotation period of 3 s, steadfast's refresh, so both
//!   estimates are first known 3 s in and then move every 3 s (tower reads
//!   the last full period's histogram, steadfast a histogram it halves when
//!   it holds more than 1024 samples). Tower records in whole milliseconds
//!   (rounded up), which loses nothing here since the clock's are whole.
//!   `clone_request` clones every request (all are replayable).
//! - **steadfast fixed 15 ms**: `Hedge::after(Duration::from_millis(15))`,
//!   with its default budget (5%, as the quantile's), so that it differs
//!   from the p95 contender in *when* only. 15 ms is the top of the fast
//!   mode: the best fixed delay for this model, which a real operator would
//!   have to know (gRPC A6's `hedgingDelay`, Polly's and tower-resilience's
//!   delay are fixed like this one).
//!
//! # Reading the output
//!
//! One markdown table per scenario on standard output: the call latency
//! (from the call's start to its answer, nearest rank) at p50, p90, p99,
//! p99.9 and its max; the extra load, attempts / calls − 1 over the whole
//! run, and the worst over the run's whole 10 s windows (counted by the
//! calls' starts); when hedges were sent, after how long (the range seen);
//! how many hedges answered first; and for steadfast, how many hedges its
//! budgets refused. Then the issue's goals for steadfast p95, measured.
//! Mind the p99: the model's two modes meet there (1 − 0.01), so no
//! hedge's p99 is 250 ms when the seed draws more than 1% slow first
//! attempts, and 15 ms, which no hedge can beat, when it draws fewer;
//! p99.9 is the steadier reading of the tail.
//!
//! The chart, the latency CDF of *model* (left) and the share of calls
//! slower than each latency (right, log scale: the tail), goes to
//! `target/hedge_simulation.svg` under the workspace root unless `--svg
//! PATH` says otherwise (`--no-svg` skips it); `docs/hedge_simulation.svg`
//! is it for the default seed. About 2.5 s of CPU in release for the
//! 3 × 4 × 10^5 calls.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use steadfast::{Hedge, Policy};
use tokio::time::{Instant, sleep};
use tower::{Service, ServiceExt};

const CALLS: u64 = 100_000;
const DEFAULT_SEED: u64 = 19;
/// The fast mode, in nanoseconds.
const FAST_NANOS: std::ops::Range<u64> = 5_000_000..15_000_000;
const SLOW: Duration = Duration::from_millis(250);
const P_SLOW: f64 = 0.01;
/// The window the extra load's worst is measured over: steadfast's hedge
/// budget's.
const WINDOW: Duration = Duration::from_secs(10);

const TOWER_MIN_DATA_POINTS: u64 = 40;
const TOWER_PERCENTILE: f32 = 0.95;
const TOWER_PERIOD: Duration = Duration::from_secs(3);
const FIXED_DELAY: Duration = Duration::from_millis(15);

const USAGE: &str = "\
usage: hedge_simulation [--svg PATH | --no-svg] [--seed S] [--calls N]
  --svg PATH   write the chart to PATH (default: <workspace>/target/hedge_simulation.svg)
  --no-svg     do not write the chart
  --seed S     the latency draws' seed (default 19)
  --calls N    calls per scenario (default 100000)";

// ---------------------------------------------------------------------------
// The model

#[derive(Clone, Copy)]
enum Model {
    Bimodal { seed: u64 },
    Slow,
}

impl Model {
    /// The latency of attempt `number` (1 for the first) of call `call`:
    /// a pure function of them, so that every contender draws the same.
    fn latency(self, call: u64, number: u32) -> Duration {
        match self {
            Model::Slow => SLOW,
            Model::Bimodal { seed } => {
                let seed = splitmix(splitmix(splitmix(seed) ^ call) ^ u64::from(number));
                let mut rng = SmallRng::seed_from_u64(seed);
                if rng.random_bool(P_SLOW) {
                    SLOW
                } else {
                    Duration::from_nanos(rng.random_range(FAST_NANOS))
                }
            }
        }
    }
}

/// SplitMix64's finaliser: turns nearby inputs into unrelated seeds.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One call, as every contender's attempts see it. Cloned for a hedge
/// (tower's `clone_request`); the clones share the count of attempts
/// started, which numbers them.
#[derive(Clone)]
struct Request {
    call: u64,
    model: Model,
    started: Instant,
    attempts: Rc<Cell<u32>>,
}

/// What every contender's attempts count, the same way for all.
#[derive(Default)]
struct Counters {
    attempts: Cell<u64>,
    /// Hedges by the whole milliseconds after the call's start they were
    /// sent at.
    hedged_after: RefCell<BTreeMap<u64, u64>>,
}

impl Counters {
    /// Attempt `number` of `request` starts: counts it and draws its
    /// latency.
    fn attempt(&self, request: &Request, number: u32) -> Duration {
        self.attempts.set(self.attempts.get() + 1);
        if number > 1 {
            let after = request.started.elapsed().as_millis() as u64;
            *self.hedged_after.borrow_mut().entry(after).or_default() += 1;
        }
        request.model.latency(request.call, number)
    }
}

/// The dependency behind tower's hedge: each call is one attempt, which
/// answers with its number.
#[derive(Clone)]
struct Backend {
    counters: Rc<Counters>,
}

impl Service<Request> for Backend {
    type Response = u32;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<u32, Infallible>>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let number = request.attempts.get() + 1;
        request.attempts.set(number);
        let latency = self.counters.attempt(&request, number);
        Box::pin(async move {
            sleep(latency).await;
            Ok(number)
        })
    }
}

/// Tower's hedge policy: every request may be replayed, and every hedge
/// is allowed (tower has no load budget of its own to ask).
#[derive(Clone)]
struct Replayable;

impl tower::hedge::Policy<Request> for Replayable {
    fn clone_request(&self, request: &Request) -> Option<Request> {
        Some(request.clone())
    }

    fn can_retry(&self, _: &Request) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------
// The contenders

struct Contender {
    name: &'static str,
    color: RGBColor,
    /// The chart's line width: the three hedges' lines nearly coincide, so
    /// the wider ones are drawn first and show around the narrower.
    width: u32,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    NoHedge,
    Quantile,
    Tower,
    Fixed,
}

fn contenders() -> [Contender; 4] {
    [
        Contender {
            name: "no hedge",
            color: RGBColor(120, 120, 120),
            width: 2,
            kind: Kind::NoHedge,
        },
        Contender {
            name: "steadfast `after_quantile(0.95).max_extra_load(0.05)`",
            color: RGBColor(0, 90, 200),
            width: 2,
            kind: Kind::Quantile,
        },
        Contender {
            name: "tower `Hedge::new(_, _, 40, 0.95, 3 s)`",
            color: RGBColor(220, 120, 0),
            width: 7,
            kind: Kind::Tower,
        },
        Contender {
            name: "steadfast `after(15 ms)` (budget 5%)",
            color: RGBColor(0, 150, 110),
            width: 4,
            kind: Kind::Fixed,
        },
    ]
}

/// A contender, ready to call: its state (estimate, budget) lives as long
/// as it does.
enum Caller {
    NoHedge,
    Steadfast(&'static Policy<Infallible>),
    Tower(tower::hedge::Hedge<Backend, Replayable>),
}

impl Caller {
    /// Made inside the runtime: tower's histogram and steadfast's budget
    /// read the paused clock from their first use.
    fn new(kind: Kind, counters: &Rc<Counters>) -> Self {
        let leak = |hedge| Caller::Steadfast(Box::leak(Box::new(Policy::new().hedge(hedge))));
        match kind {
            Kind::NoHedge => Caller::NoHedge,
            Kind::Quantile => leak(Hedge::after_quantile(0.95).max_extra_load(0.05)),
            Kind::Fixed => leak(Hedge::after(FIXED_DELAY)),
            Kind::Tower => Caller::Tower(tower::hedge::Hedge::new(
                Backend {
                    counters: counters.clone(),
                },
                Replayable,
                TOWER_MIN_DATA_POINTS,
                TOWER_PERCENTILE,
                TOWER_PERIOD,
            )),
        }
    }

    /// One call: the number of the attempt that answered it.
    async fn call(&mut self, counters: &Counters, request: Request) -> u32 {
        match self {
            Caller::NoHedge => {
                sleep(counters.attempt(&request, 1)).await;
                1
            }
            Caller::Steadfast(policy) => {
                let answered = policy
                    .retry(|attempt| {
                        let number = attempt.number();
                        let latency = counters.attempt(&request, number);
                        async move {
                            sleep(latency).await;
                            Ok::<_, Infallible>(number)
                        }
                    })
                    .await;
                match answered {
                    Ok(number) => number,
                    Err(never) => match never {},
                }
            }
            Caller::Tower(hedge) => {
                let ready = hedge.ready().await.expect("the backend is always ready");
                ready.call(request).await.expect("the backend never fails")
            }
        }
    }

    /// Steadfast's own counts so far: hedges sent, won, and refused by the
    /// budgets.
    fn counts(&self) -> Option<(u64, u64, u64)> {
        match self {
            Caller::Steadfast(policy) => policy
                .hedging()
                .map(|hedge| (hedge.sent(), hedge.won(), hedge.refused())),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// A run

/// What one contender measured in one scenario.
struct Run {
    /// Every call's latency, sorted.
    latencies: Vec<Duration>,
    attempts: u64,
    /// Calls and attempts per whole window of the run.
    windows: Vec<(u64, u64)>,
    hedged_after: BTreeMap<u64, u64>,
    /// Calls answered by a hedge.
    won: u64,
    refused: Option<u64>,
}

async fn run(caller: &mut Caller, counters: &Counters, model: Model, calls: u64) -> Run {
    let origin = Instant::now();
    let attempts_before = counters.attempts.get();
    let counts_before = caller.counts();
    counters.hedged_after.borrow_mut().clear();
    let mut latencies = Vec::with_capacity(calls as usize);
    let mut windows: Vec<(u64, u64)> = Vec::new();
    let mut won = 0;
    for call in 0..calls {
        let started = Instant::now();
        let window = (started.duration_since(origin).as_nanos() / WINDOW.as_nanos()) as usize;
        if windows.len() <= window {
            windows.resize(window + 1, (0, 0));
        }
        let before = counters.attempts.get();
        let request = Request {
            call,
            model,
            started,
            attempts: Rc::new(Cell::new(0)),
        };
        if caller.call(counters, request).await > 1 {
            won += 1;
        }
        latencies.push(started.elapsed());
        windows[window].0 += 1;
        windows[window].1 += counters.attempts.get() - before;
    }
    // The last window is cut short by the run's end.
    windows.pop();
    latencies.sort_unstable();
    let attempts = counters.attempts.get() - attempts_before;
    let counts = caller
        .counts()
        .zip(counts_before)
        .map(|(after, before)| (after.0 - before.0, after.1 - before.1, after.2 - before.2));
    if let Some((sent, hedges_won, _)) = counts {
        // Steadfast's counters agree with what the dependency saw.
        assert_eq!((sent, hedges_won), (attempts - calls, won));
    }
    Run {
        latencies,
        attempts,
        windows,
        hedged_after: counters.hedged_after.take(),
        won,
        refused: counts.map(|(_, _, refused)| refused),
    }
}

impl Run {
    fn calls(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// Nearest rank, as a sorted list gives it.
    fn quantile(&self, q: f64) -> Duration {
        let n = self.latencies.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies[rank - 1]
    }

    fn extra_load(&self) -> f64 {
        self.attempts as f64 / self.calls() as f64 - 1.0
    }

    fn worst_window(&self) -> Option<f64> {
        self.windows
            .iter()
            .filter(|(calls, _)| *calls > 0)
            .map(|&(calls, attempts)| attempts as f64 / calls as f64 - 1.0)
            .reduce(f64::max)
    }
}

// ---------------------------------------------------------------------------
// Output

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms.fract() == 0.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// `100000` as `100,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn percent(f: f64) -> String {
    format!("{:.2}%", f * 100.0)
}

fn table(title: &str, runs: &[(&Contender, &Run)]) {
    println!("{title}\n");
    println!(
        "| contender | p50 | p90 | p99 | p99.9 | max | extra load | worst 10 s | hedged after | hedge answered first | refused by the budget |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (contender, run) in runs {
        let after = match (
            run.hedged_after.keys().next(),
            run.hedged_after.keys().next_back(),
        ) {
            (Some(lo), Some(hi)) if lo == hi => format!("{lo} ms"),
            (Some(lo), Some(hi)) => format!("{lo}–{hi} ms"),
            _ => "—".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            contender.name,
            ms(run.quantile(0.5)),
            ms(run.quantile(0.9)),
            ms(run.quantile(0.99)),
            ms(run.quantile(0.999)),
            ms(run.quantile(1.0)),
            percent(run.extra_load()),
            run.worst_window().map_or("—".into(), percent),
            after,
            run.won,
            run.refused.map_or("—".into(), |n| n.to_string()),
        );
    }
    println!();
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

/// The issue's goals for steadfast p95, against no hedge in the same run.
fn goals(plain: &Run, ours: &Run, slow: &Run, turns: &Run) {
    let ratio = |q| ours.quantile(q).as_secs_f64() / plain.quantile(q).as_secs_f64();
    let p50 = ratio(0.5) - 1.0;
    // The model's p99 is where its two modes meet (1 − 0.01): no hedge's
    // is 250 ms when more than 1% of its calls drew the slow mode, and
    // the fast mode's top, 15 ms, otherwise, which no hedge can beat.
    let slowest = plain.latencies.iter().filter(|&&l| l >= SLOW).count();
    println!("Goals for steadfast p95:\n");
    println!(
        "- p99 at most 0.3x no hedge's: {} against {}, {:.2}x: {} ({slowest} of no hedge's {} \
         calls at 250 ms; p99.9: {} against {}, {:.2}x)",
        ms(ours.quantile(0.99)),
        ms(plain.quantile(0.99)),
        ratio(0.99),
        verdict(ratio(0.99) <= 0.3),
        thousands(plain.calls()),
        ms(ours.quantile(0.999)),
        ms(plain.quantile(0.999)),
        ratio(0.999),
    );
    println!(
        "- p50 within 2% of no hedge's: {} against {}, {:+.2}%: {}",
        ms(ours.quantile(0.5)),
        ms(plain.quantile(0.5)),
        p50 * 100.0,
        verdict(p50.abs() <= 0.02),
    );
    println!(
        "- extra load at most 5.5%: {}: {}",
        percent(ours.extra_load()),
        verdict(ours.extra_load() <= 0.055),
    );
    println!(
        "- every attempt slow, extra load at most the budget (5%): {} from the first call: {}; \
         {} when the site turns slow: {}",
        percent(slow.extra_load()),
        verdict(slow.extra_load() <= 0.055),
        percent(turns.extra_load()),
        verdict(turns.extra_load() <= 0.055),
    );
    // A sequential caller's calls slow down with the site, while the
    // budget's window still holds the fast calls of the 10 s before.
    if let Some(&(calls, attempts)) = turns.windows.first() {
        println!(
            "  (turns slow, its first 10 s: {} hedges for {calls} calls, paid for by the calls \
             of the 10 s before the turn)",
            attempts - calls,
        );
    }
    println!();
}

/// The steps of a CDF from sorted latencies, in milliseconds: `(x, share
/// of calls at or below x)` at each distinct latency.
fn cdf(run: &Run) -> Vec<(f64, f64)> {
    let n = run.latencies.len() as f64;
    let mut steps = Vec::new();
    let mut below = 0.0;
    let mut i = 0;
    while i < run.latencies.len() {
        let value = run.latencies[i];
        let mut j = i;
        while j < run.latencies.len() && run.latencies[j] == value {
            j += 1;
        }
        let x = value.as_secs_f64() * 1e3;
        steps.push((x, below));
        below = j as f64 / n;
        steps.push((x, below));
        i = j;
    }
    steps
}

const X_MS: std::ops::Range<f64> = 4.0..400.0;
/// The tail panel's floor: below one call in 10^5.
const TAIL_FLOOR: f64 = 5e-6;

fn draw(path: &Path, runs: &[(&Contender, &Run)], seed: u64) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "Call latency, {} sequential calls; each attempt U(5, 15) ms, or 250 ms with p = 0.01 (seed {seed})",
            thousands(runs.first().map_or(0, |(_, run)| run.calls()))
        ),
        ("sans-serif", 20),
    )?;
    let (left, right) = root.split_horizontally(600);
    let mut widest_first = runs.to_vec();
    widest_first.sort_by_key(|(contender, _)| std::cmp::Reverse(contender.width));
    let mut chart = panel(
        &left,
        "CDF (latency on a log scale)",
        0.0..1.0,
        "share of calls at or below",
    )?;
    for (contender, run) in &widest_first {
        let style = contender.color.stroke_width(contender.width);
        chart.draw_series(LineSeries::new(cdf(run), style))?;
    }
    // The legend in the tables' order.
    for (contender, _) in runs {
        let style = contender.color.stroke_width(contender.width);
        chart
            .draw_series(LineSeries::new(std::iter::empty(), style))?
            .label(contender.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    let mut tail = panel(
        &right,
        "The tail: share of calls slower than x (log-log)",
        (TAIL_FLOOR..1.0).log_scale(),
        "share of calls slower",
    )?;
    for (contender, run) in &widest_first {
        let steps = cdf(run)
            .into_iter()
            .map(|(x, below)| (x, (1.0 - below).max(TAIL_FLOOR)));
        let style = contender.color.stroke_width(contender.width);
        tail.draw_series(LineSeries::new(steps, style))?;
    }
    root.present()?;
    Ok(())
}

type Panel<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, Y>>;

/// One panel, latency (ms, log scale) across.
fn panel<'a, 'b, R>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    y: R,
    y_desc: &str,
) -> Result<Panel<'a, 'b, R::CoordDescType>, Box<dyn Error>>
where
    R: AsRangedCoord<Value = f64>,
    R::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(X_MS.log_scale(), y)?;
    chart
        .configure_mesh()
        .x_desc("call latency (ms)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    Ok(chart)
}

fn side_by_side<'a>(contenders: &'a [Contender], runs: &'a [Run]) -> Vec<(&'a Contender, &'a Run)> {
    contenders.iter().zip(runs).collect()
}

fn workspace_root() -> &'static Path {
    let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
    benches.parent().unwrap_or(benches)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut svg = Some(workspace_root().join("target/hedge_simulation.svg"));
    let mut seed = DEFAULT_SEED;
    let mut calls = CALLS;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--svg" => svg = Some(PathBuf::from(value("--svg")?)),
            "--no-svg" => svg = None,
            "--seed" => seed = value("--seed")?.parse()?,
            "--calls" => calls = value("--calls")?.parse()?,
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let contenders = contenders();
    let started = std::time::Instant::now();
    let mut model = Vec::new();
    let mut turns = Vec::new();
    let mut slow = Vec::new();
    for contender in &contenders {
        runtime.block_on(async {
            let counters = Rc::new(Counters::default());
            let mut caller = Caller::new(contender.kind, &counters);
            model.push(run(&mut caller, &counters, Model::Bimodal { seed }, calls).await);
            // The same caller: the site turns slow under it.
            turns.push(run(&mut caller, &counters, Model::Slow, calls).await);
            let counters = Rc::new(Counters::default());
            let mut caller = Caller::new(contender.kind, &counters);
            slow.push(run(&mut caller, &counters, Model::Slow, calls).await);
        });
    }
    eprintln!("simulated in {:.2?}", started.elapsed());
    let side_by_side = |runs| side_by_side(&contenders, runs);
    table(
        &format!(
            "Model: U(5, 15) ms, 250 ms with p = 0.01, {} calls (seed {seed})",
            thousands(calls)
        ),
        &side_by_side(&model),
    );
    table(
        &format!(
            "All slow: every attempt 250 ms from the first call, {} calls",
            thousands(calls)
        ),
        &side_by_side(&slow),
    );
    table(
        &format!(
            "Turns slow: after the model's run, every attempt 250 ms, {} calls",
            thousands(calls)
        ),
        &side_by_side(&turns),
    );
    goals(&model[0], &model[1], &slow[1], &turns[1]);
    if let Some(path) = svg {
        draw(&path, &side_by_side(&model), seed)?;
        eprintln!("chart: {}", path.display());
    }
    Ok(())
}
