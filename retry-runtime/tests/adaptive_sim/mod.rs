//! A simulated dependency under open-loop load, on tokio's paused clock:
//! the scenarios of issue 20, shared by `tests/adaptive_scenarios.rs` (the
//! ranges) and `benches/examples/adaptive_simulation.rs` (the tables and
//! the picture).
//!
//! The server has `workers` workers and a service time; a request it
//! cannot serve at once waits in its queue (FIFO, unbounded), so its
//! latency is the wait plus the service time. Requests arrive at a fixed
//! rate whatever happens to earlier ones (open loop), each in a task of
//! its own; a contender decides whether a request reaches the server (a
//! limit's refusal sheds it) and reports its outcome. Capacity can drop
//! mid-run: the server then takes back `drop` of its workers.
//!
//! Everything runs in one `LocalSet` on a current-thread runtime whose
//! clock is paused, so a run of seconds of simulated time takes well under
//! a second, and its numbers are the same at every run (tokio's timer has
//! a 1 ms resolution: arrivals come in bursts of a few per millisecond).

#![allow(dead_code, reason = "each includer uses part of it")]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep, sleep_until};

/// What a run is made of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) workers: usize,
    pub(crate) service: Duration,
    /// Requests per second, open loop.
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    /// At this time, `drop_workers` workers leave for good.
    pub(crate) capacity_drop: Option<(Duration, usize)>,
    /// At this time, the service time becomes this, for good.
    pub(crate) slowdown: Option<(Duration, Duration)>,
}

impl Scenario {
    /// Issue 20's first scenario: 16 workers, 10 ms, twice the capacity
    /// (3,200/s against 1,600/s) for 4 s.
    pub(crate) const OVERLOAD: Scenario = Scenario {
        workers: 16,
        service: Duration::from_millis(10),
        rate: 3_200.0,
        duration: Duration::from_secs(4),
        capacity_drop: None,
        slowdown: None,
    };

    /// The same, then at 2 s every call becomes twice as slow, for good
    /// (capacity 800/s): the no-load latency itself moved.
    pub(crate) const SLOWDOWN: Scenario = Scenario {
        slowdown: Some((Duration::from_secs(2), Duration::from_millis(20))),
        ..Scenario::OVERLOAD
    };

    /// The same, then half the workers leave at 4 s; 2 s more.
    pub(crate) const CAPACITY_DROP: Scenario = Scenario {
        duration: Duration::from_secs(6),
        capacity_drop: Some((Duration::from_secs(4), 8)),
        ..Scenario::OVERLOAD
    };
}

/// The simulated dependency.
pub(crate) struct Server {
    workers: Semaphore,
    service: Cell<Duration>,
    start: Instant,
    /// Requests at the server now (queued or served), and the most in each
    /// 10 ms bucket of the run.
    outstanding: Cell<usize>,
    peaks: RefCell<Vec<usize>>,
}

const BUCKET: Duration = Duration::from_millis(10);

impl Server {
    /// Serves one request: queues for a worker, then holds it for the
    /// service time.
    pub(crate) async fn serve(&self) {
        let now = self.outstanding.get() + 1;
        self.outstanding.set(now);
        let bucket = (self.start.elapsed().as_nanos() / BUCKET.as_nanos()) as usize;
        {
            let mut peaks = self.peaks.borrow_mut();
            if peaks.len() <= bucket {
                peaks.resize(bucket + 1, 0);
            }
            peaks[bucket] = peaks[bucket].max(now);
        }
        // Leave the count however the request ends (a contender may drop it).
        struct Leave<'a>(&'a Cell<usize>);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        let _leave = Leave(&self.outstanding);
        let _worker = self.workers.acquire().await.expect("never closed");
        sleep(self.service.get()).await;
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.get()
    }
}

/// One request's fate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    pub(crate) arrived: Duration,
    /// When it completed and whether it was served; `None`: shed.
    pub(crate) served: Option<Duration>,
}

/// A sample of the contender's limit (if it has one) and the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tick {
    pub(crate) at: Duration,
    pub(crate) limit: Option<usize>,
    pub(crate) outstanding: usize,
}

/// Everything a run recorded.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) requests: Vec<Request>,
    pub(crate) ticks: Vec<Tick>,
    /// The most requests at the server in each 10 ms bucket.
    pub(crate) peaks: Vec<usize>,
}

/// Runs `scenario` with `call` deciding each request's fate (`true`:
/// served; `false`: shed), sampling `limit` every 10 ms. Must run on a
/// current-thread runtime with a paused clock.
pub(crate) async fn run<F, Fut>(
    scenario: Scenario,
    limit: impl Fn() -> Option<usize> + 'static,
    call: F,
) -> Run
where
    F: Fn(Rc<Server>) -> Fut + 'static,
    Fut: Future<Output = bool> + 'static,
{
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let start = Instant::now();
            let server = Rc::new(Server {
                workers: Semaphore::new(scenario.workers),
                service: Cell::new(scenario.service),
                start,
                outstanding: Cell::new(0),
                peaks: RefCell::new(Vec::new()),
            });
            let requests = Rc::new(RefCell::new(Vec::new()));
            let ticks = Rc::new(RefCell::new(Vec::new()));
            let end = start + scenario.duration;

            let monitor = {
                let (server, ticks) = (server.clone(), ticks.clone());
                tokio::task::spawn_local(async move {
                    let mut at = start;
                    while at < end {
                        sleep_until(at).await;
                        ticks.borrow_mut().push(Tick {
                            at: at - start,
                            limit: limit(),
                            outstanding: server.outstanding(),
                        });
                        at += BUCKET;
                    }
                })
            };
            if let Some((when, leave)) = scenario.capacity_drop {
                let server = server.clone();
                tokio::task::spawn_local(async move {
                    sleep_until(start + when).await;
                    server
                        .workers
                        .acquire_many(leave as u32)
                        .await
                        .expect("never closed")
                        .forget();
                });
            }
            if let Some((when, service)) = scenario.slowdown {
                let server = server.clone();
                tokio::task::spawn_local(async move {
                    sleep_until(start + when).await;
                    server.service.set(service);
                });
            }
            let call = Rc::new(call);
            let gap = Duration::from_secs_f64(1.0 / scenario.rate);
            let mut tasks = Vec::new();
            for n in 0u32.. {
                let at = start + gap * n;
                if at >= end {
                    break;
                }
                sleep_until(at).await;
                let (server, requests, call) = (server.clone(), requests.clone(), call.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let arrived = Instant::now();
                    let served = call(server).await;
                    requests.borrow_mut().push(Request {
                        arrived: arrived - start,
                        served: served.then(|| arrived.elapsed() + (arrived - start)),
                    });
                }));
            }
            for task in tasks {
                task.await.expect("a request's task");
            }
            monitor.await.expect("the monitor");
            let peaks = server.peaks.borrow().clone();
            Run {
                requests: requests.take(),
                ticks: ticks.take(),
                peaks,
            }
        })
        .await
}

/// What a run shows over a window of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Requests served (completed in the window) per second.
    pub(crate) goodput: f64,
    /// Requests that arrived in the window and were shed, as a share.
    pub(crate) shed: f64,
    /// Latency quantiles of the requests served in the window.
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// The most requests at the server at once.
    pub(crate) peak_outstanding: usize,
    /// The lowest and highest limit sampled (`None` without a limit).
    pub(crate) limit: Option<(usize, usize)>,
}

impl Run {
    /// The run between `from` and `to`.
    pub(crate) fn window(&self, from: Duration, to: Duration) -> Window {
        let inside = |t: Duration| t >= from && t < to;
        let mut latencies: Vec<Duration> = self
            .requests
            .iter()
            .filter_map(|r| {
                r.served
                    .filter(|&done| inside(done))
                    .map(|done| done - r.arrived)
            })
            .collect();
        latencies.sort();
        let quantile = |q: f64| {
            if latencies.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            latencies[rank - 1]
        };
        let arrived: Vec<_> = self.requests.iter().filter(|r| inside(r.arrived)).collect();
        let shed = arrived.iter().filter(|r| r.served.is_none()).count();
        let limits: Vec<usize> = self
            .ticks
            .iter()
            .filter(|t| inside(t.at))
            .filter_map(|t| t.limit)
            .collect();
        let first = (from.as_nanos() / BUCKET.as_nanos()) as usize;
        let last = (to.as_nanos() / BUCKET.as_nanos()) as usize;
        Window {
            goodput: latencies.len() as f64 / (to - from).as_secs_f64(),
            shed: shed as f64 / arrived.len().max(1) as f64,
            p50: quantile(0.5),
            p99: quantile(0.99),
            peak_outstanding: self
                .peaks
                .iter()
                .skip(first)
                .take(last.saturating_sub(first))
                .copied()
                .max()
                .unwrap_or(0),
            limit: limits
                .iter()
                .min()
                .zip(limits.iter().max())
                .map(|(&lo, &hi)| (lo, hi)),
        }
    }

    /// The first time at or after `from` from which every sampled limit
    /// stays at or under `ceiling` until `to`.
    pub(crate) fn settled_under(
        &self,
        ceiling: usize,
        from: Duration,
        to: Duration,
    ) -> Option<Duration> {
        let ticks: Vec<_> = self
            .ticks
            .iter()
            .filter(|t| t.at >= from && t.at < to)
            .collect();
        let last_above = ticks
            .iter()
            .rposition(|t| t.limit.is_some_and(|l| l > ceiling));
        match last_above {
            None => ticks.first().map(|t| t.at),
            Some(i) => ticks.get(i + 1).map(|t| t.at),
        }
    }
}
