//! Issue 20's scenarios for adaptive concurrency, every contender in one
//! run on tokio's paused clock: steadfast's `AdaptiveLimit` (gradient,
//! Vegas, AIMD), a model of Netflix's Gradient2 with its stock tolerance,
//! fixed `Bulkhead`s set too high and too low, and tower's
//! `ConcurrencyLimit` (alone, which queues callers, and under `LoadShed`,
//! which sheds them).
//!
//! ```sh
//! cargo run --release -p steadfast-benches --example adaptive_simulation                 # tables + chart
//! cargo run --release -p steadfast-benches --example adaptive_simulation -- --svg docs/adaptive_simulation.svg
//! ```
//!
//! The dependency and the load are `retry-runtime/tests/adaptive_sim`, the
//! module the scenario tests (`tests/adaptive_scenarios.rs`) assert ranges
//! with: 16 workers of 10 ms each (1,600/s) that queue what they cannot
//! serve, 3,200 requests a second arriving open loop for 6 s, and at 4 s
//! half the workers leave (800/s). Every contender but tower's queueing
//! `ConcurrencyLimit` takes its slot without waiting and sheds the request
//! when refused. Simulated time: 6 s per contender, about a second of CPU
//! for all of them in release.
//!
//! # The Gradient2 model
//!
//! Netflix's `Gradient2Limit._update`, per sample, with its defaults
//! (initial 20, max 200, smoothing 0.2, queue size 4, tolerance 1.5, a long
//! RTT averaged over 600 samples after 10 of warm-up, decayed by 5% when it
//! is more than twice the sample), except `minLimit`: its stock 20 would
//! keep it above the scenario's 12 after the drop by construction, so the
//! model's is 1, as ours.
//!
//! # Output
//!
//! Two markdown tables (before and after the drop) on standard output, and
//! a two-panel SVG (the limit, and the p99 latency of each 100 ms, over
//! time) at `target/adaptive_simulation.svg` under the workspace root,
//! unless `--svg PATH` says otherwise; `docs/adaptive_simulation.svg` is it
//! for this run.

#[path = "../../retry-runtime/tests/adaptive_sim/mod.rs"]
mod adaptive_sim;

use std::cell::RefCell;
use std::convert::Infallible;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use adaptive_sim::{Run, Scenario, Server, run};
use plotters::prelude::*;
use steadfast::{AdaptiveLimit, Bulkhead};
use tower::{Service, ServiceExt};

const S: Duration = Duration::from_millis(10);

/// One contender: its name, its color, and how it runs the scenario.
struct Contender {
    name: &'static str,
    color: RGBColor,
    kind: Kind,
}

enum Kind {
    Adaptive(fn() -> AdaptiveLimit),
    Gradient2,
    Bulkhead(usize),
    TowerQueue(usize),
    TowerShed(usize),
}

fn contenders() -> Vec<Contender> {
    vec![
        Contender {
            name: "AdaptiveLimit::gradient()",
            color: RGBColor(0, 90, 200),
            kind: Kind::Adaptive(AdaptiveLimit::gradient),
        },
        Contender {
            name: "AdaptiveLimit::vegas()",
            color: RGBColor(0, 150, 110),
            kind: Kind::Adaptive(AdaptiveLimit::vegas),
        },
        Contender {
            name: "AdaptiveLimit::aimd().drop_above(25 ms)",
            color: RGBColor(150, 80, 190),
            kind: Kind::Adaptive(|| AdaptiveLimit::aimd().drop_above(S * 5 / 2)),
        },
        Contender {
            name: "Gradient2 model (tolerance 1.5)",
            color: RGBColor(220, 120, 0),
            kind: Kind::Gradient2,
        },
        Contender {
            name: "Bulkhead::new(64) (too high)",
            color: RGBColor(200, 30, 30),
            kind: Kind::Bulkhead(64),
        },
        Contender {
            name: "Bulkhead::new(4) (too low)",
            color: RGBColor(120, 120, 120),
            kind: Kind::Bulkhead(4),
        },
        Contender {
            name: "tower ConcurrencyLimit(16), queueing",
            color: RGBColor(90, 60, 30),
            kind: Kind::TowerQueue(16),
        },
        Contender {
            name: "tower LoadShed + ConcurrencyLimit(16)",
            color: RGBColor(200, 160, 0),
            kind: Kind::TowerShed(16),
        },
    ]
}

// ---------------------------------------------------------------------------
// The Gradient2 model

/// Netflix's `ExpAvgMeasurement`: a plain average over the warm-up, then
/// an exponential one with factor `2 / (window + 1)`.
struct ExpAvg {
    value: f64,
    sum: f64,
    count: u32,
}

impl ExpAvg {
    const WINDOW: f64 = 600.0;
    const WARMUP: u32 = 10;

    fn add(&mut self, sample: f64) -> f64 {
        if self.count < Self::WARMUP {
            self.count += 1;
            self.sum += sample;
            self.value = self.sum / f64::from(self.count);
        } else {
            let factor = 2.0 / (Self::WINDOW + 1.0);
            self.value = self.value * (1.0 - factor) + sample * factor;
        }
        self.value
    }
}

struct Gradient2 {
    estimated: f64,
    long_rtt: ExpAvg,
    in_flight: usize,
}

impl Gradient2 {
    const TOLERANCE: f64 = 1.5;
    const SMOOTHING: f64 = 0.2;
    const QUEUE: f64 = 4.0;
    const MIN: f64 = 1.0;
    const MAX: f64 = 200.0;

    fn new() -> Self {
        Gradient2 {
            estimated: 20.0,
            long_rtt: ExpAvg {
                value: 0.0,
                sum: 0.0,
                count: 0,
            },
            in_flight: 0,
        }
    }

    /// `Gradient2Limit._update(startTime, rtt, inflight, didDrop)`.
    fn update(&mut self, rtt: f64, in_flight: usize) {
        let short = rtt;
        let long = self.long_rtt.add(rtt);
        if long / short > 2.0 {
            self.long_rtt.value *= 0.95;
        }
        if (in_flight as f64) < self.estimated / 2.0 {
            return;
        }
        let gradient = (Self::TOLERANCE * long / short).clamp(0.5, 1.0);
        let new = self.estimated * gradient + Self::QUEUE;
        let new = self.estimated * (1.0 - Self::SMOOTHING) + new * Self::SMOOTHING;
        self.estimated = new.clamp(Self::MIN, Self::MAX);
    }
}

// ---------------------------------------------------------------------------
// Running

async fn simulate(contender: &Contender, scenario: Scenario) -> Run {
    match contender.kind {
        Kind::Adaptive(build) => {
            let limit: &'static AdaptiveLimit = Box::leak(Box::new(build()));
            run(
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
            .await
        }
        Kind::Gradient2 => {
            let model = Rc::new(RefCell::new(Gradient2::new()));
            let read = model.clone();
            run(
                scenario,
                move || Some(read.borrow().estimated as usize),
                move |server: Rc<Server>| {
                    let model = model.clone();
                    async move {
                        let in_flight = {
                            let mut m = model.borrow_mut();
                            if m.in_flight >= m.estimated as usize {
                                return false;
                            }
                            m.in_flight += 1;
                            m.in_flight
                        };
                        let started = tokio::time::Instant::now();
                        server.serve().await;
                        let mut m = model.borrow_mut();
                        m.in_flight -= 1;
                        m.update(started.elapsed().as_secs_f64(), in_flight);
                        true
                    }
                },
            )
            .await
        }
        Kind::Bulkhead(n) => {
            let bulkhead: &'static Bulkhead = Box::leak(Box::new(Bulkhead::new(n)));
            run(
                scenario,
                move || Some(n),
                move |server: Rc<Server>| async move {
                    let Some(_permit) = bulkhead.try_acquire() else {
                        return false;
                    };
                    server.serve().await;
                    true
                },
            )
            .await
        }
        Kind::TowerQueue(n) => {
            let service = tower::limit::ConcurrencyLimit::new(serve(), n);
            run(
                scenario,
                move || Some(n),
                move |server: Rc<Server>| {
                    let mut service = service.clone();
                    async move {
                        let ready = service.ready().await.expect("never fails");
                        ready.call(server).await.is_ok()
                    }
                },
            )
            .await
        }
        Kind::TowerShed(n) => {
            // One `LoadShed` per request, each around a clone of the limit
            // (clones share its semaphore).
            let limit = tower::limit::ConcurrencyLimit::new(serve(), n);
            run(
                scenario,
                move || Some(n),
                move |server: Rc<Server>| {
                    let mut service = tower::load_shed::LoadShed::new(limit.clone());
                    async move {
                        let ready = service.ready().await.expect("load shed is always ready");
                        ready.call(server).await.is_ok()
                    }
                },
            )
            .await
        }
    }
}

/// The simulated dependency as a tower service.
fn serve() -> impl Service<
    Rc<Server>,
    Response = (),
    Error = Infallible,
    Future = impl Future<Output = Result<(), Infallible>>,
> + Clone {
    tower::service_fn(|server: Rc<Server>| async move {
        server.serve().await;
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Tables

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn range((lo, hi): (usize, usize)) -> String {
    if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}–{hi}")
    }
}

fn tables(runs: &[(&Contender, Run)]) {
    println!(
        "W = 16, S = 10 ms (1,600/s), offered 3,200/s: 0–4 s (ranges asserted for the \
         gradient: limit in [10, 24] over 2–4 s, goodput >= 0.9, p99 <= 25 ms, peak <= 24)\n"
    );
    println!(
        "| contender | limit, 2–4 s | goodput 0–4 s | goodput 2–4 s | p99 0–4 s | peak at the server 0–4 s | shed 2–4 s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (contender, run) in runs {
        let whole = run.window(secs(0.0), secs(4.0));
        let last = run.window(secs(2.0), secs(4.0));
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} | {:.0}% |",
            contender.name,
            last.limit.map_or("—".into(), range),
            whole.goodput / 1_600.0,
            last.goodput / 1_600.0,
            ms(whole.p99),
            whole.peak_outstanding,
            last.shed * 100.0,
        );
    }
    println!(
        "\nAt 4 s W drops to 8 (800/s) (asserted for the gradient: limit <= 12 from 5 s, \
         goodput over 5–6 s >= 0.85)\n"
    );
    println!(
        "| contender | limit <= 12 from | limit, 5–6 s | goodput 4–5 s | goodput 5–6 s | p99 4–5 s | p99 5–6 s | peak at the server 5–6 s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (contender, run) in runs {
        let drop = run.window(secs(4.0), secs(5.0));
        let after = run.window(secs(5.0), secs(6.0));
        let settled = run
            .settled_under(12, secs(4.0), secs(6.0))
            .map_or("never".into(), |t| format!("{:.2} s", t.as_secs_f64()));
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {} |",
            contender.name,
            settled,
            after.limit.map_or("—".into(), range),
            drop.goodput / 800.0,
            after.goodput / 800.0,
            ms(drop.p99),
            ms(after.p99),
            after.peak_outstanding,
        );
    }
}

// ---------------------------------------------------------------------------
// Chart

/// p99 of the calls served in each 100 ms of the run, in milliseconds.
fn p99_series(run: &Run, end: Duration) -> Vec<(f64, f64)> {
    let step = Duration::from_millis(100);
    let mut at = Duration::ZERO;
    let mut series = Vec::new();
    while at < end {
        let window = run.window(at, at + step);
        if window.goodput > 0.0 {
            series.push((
                (at + step / 2).as_secs_f64(),
                window.p99.as_secs_f64() * 1e3,
            ));
        }
        at += step;
    }
    series
}

fn draw(path: &Path, runs: &[(&Contender, Run)], end: Duration) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "16 workers of 10 ms, 3,200 requests/s offered; half the workers leave at 4 s",
        ("sans-serif", 20),
    )?;
    let (top, bottom) = root.split_vertically(450);
    let x = 0.0..end.as_secs_f64();

    let mut limits = ChartBuilder::on(&top)
        .caption(
            "Concurrency limit (dashed: the workers, 16 then 8)",
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x.clone(), 0.0..150.0)?;
    limits
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("limit")
        .draw()?;
    for (contender, run) in runs {
        let style = contender.color.stroke_width(2);
        let series = run
            .ticks
            .iter()
            .filter_map(|t| Some((t.at.as_secs_f64(), t.limit? as f64)));
        limits
            .draw_series(LineSeries::new(series, style))?
            .label(contender.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    // The first contender (ours) once more, on top of the others.
    if let Some((contender, run)) = runs.first() {
        let series = run
            .ticks
            .iter()
            .filter_map(|t| Some((t.at.as_secs_f64(), t.limit? as f64)));
        limits.draw_series(LineSeries::new(series, contender.color.stroke_width(2)))?;
    }
    for (workers, from, to) in [(16.0, 0.0, 4.0), (8.0, 4.0, end.as_secs_f64())] {
        limits.draw_series(DashedLineSeries::new(
            [(from, workers), (to, workers)],
            6,
            4,
            BLACK.stroke_width(1),
        ))?;
    }
    limits
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    let mut latency = ChartBuilder::on(&bottom)
        .caption(
            "p99 latency of the calls served in each 100 ms (log scale; dashed: the 25 ms target)",
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x, (5.0..5_000.0).log_scale())?;
    latency
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("p99 (ms)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (contender, run) in runs.iter().chain(runs.first()) {
        let style = contender.color.stroke_width(2);
        latency.draw_series(LineSeries::new(p99_series(run, end), style))?;
    }
    latency.draw_series(DashedLineSeries::new(
        [(0.0, 25.0), (end.as_secs_f64(), 25.0)],
        6,
        4,
        BLACK.stroke_width(1),
    ))?;
    root.present()?;
    Ok(())
}

fn workspace_root() -> &'static Path {
    let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
    benches.parent().unwrap_or(benches)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut svg = Some(workspace_root().join("target/adaptive_simulation.svg"));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--svg" => svg = Some(PathBuf::from(args.next().ok_or("--svg needs a path")?)),
            "--no-svg" => svg = None,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let contenders = contenders();
    let scenario = Scenario::CAPACITY_DROP;
    let started = std::time::Instant::now();
    let runs: Vec<_> = contenders
        .iter()
        .map(|contender| (contender, runtime.block_on(simulate(contender, scenario))))
        .collect();
    eprintln!("simulated in {:.2?}", started.elapsed());
    tables(&runs);
    if let Some(path) = svg {
        draw(&path, &runs, scenario.duration)?;
        eprintln!("chart: {}", path.display());
    }
    Ok(())
}
