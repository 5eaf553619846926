//! An in-process fault-injecting TCP server on 127.0.0.1, in the spirit of
//! toxiproxy: a proxy and its upstream in one.
//!
//! Protocol: the client connects, sends one line (`REQ <id>\n`) and reads
//! one line back: `OK\n`, `ERR transient\n` or `ERR permanent\n`.
//!
//! Each accepted connection gets one [`Fault`], drawn from a seeded RNG with
//! the probabilities of its [`Faults`] (what is left over is [`Fault::Ok`]).
//! Draws happen in accept order, so every connection's fault is an
//! independent draw with the configured probabilities, whichever client
//! made it.
//!
//! | fault | what the client sees | reaches the upstream (`requests`) |
//! |---|---|---|
//! | `Refuse` | accepted, then reset at once (RST via `SO_LINGER = 0`) | no |
//! | `Reset` | request read and served, then reset instead of the reply | yes |
//! | `BlackHole` | request swallowed; the connection stays open, silent, until the client hangs up | no |
//! | `Latency` | the reply, delayed by `latency` on its way back (downstream, as toxiproxy's default) | yes |
//! | `SlowClose` | the reply, then the connection is held open `slow_close` before closing | yes |
//! | `ErrPermanent` / `ErrTransient` | `ERR permanent` / `ERR transient` | yes |
//! | `Ok` | `OK` | yes |
//!
//! Concurrency is counted at the upstream: a request is in flight from the
//! moment its line has been read until its `service` time is over, which is
//! always *before* anything goes back to the client (reply, reset or close).
//! So the upstream can never count a request as still running after the
//! client has seen it end, and its peak is a lower bound on what the client
//! had in flight: a client-side limit of N attempts is a limit of N here.
//! (A black-holed request never reaches the upstream: the "proxy" drops it.)
//!
//! [`FaultServer::set_down`] takes the server down: every connection is then
//! refused (RST at accept) without drawing from the RNG, counted in
//! `down_refused`, until it is brought back up.
//!
//! Everything is bounded: a black hole is held at most `HOLD_MAX`, and a
//! client that never sends a full line is dropped after `READ_MAX`.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest a black-holed connection is held open waiting for the client to
/// hang up (clients always give up long before: they have timeouts).
const HOLD_MAX: Duration = Duration::from_secs(10);
/// Longest wait for a client's request line.
const READ_MAX: Duration = Duration::from_secs(5);

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    Refuse,
    Reset,
    BlackHole,
    Latency,
    SlowClose,
    ErrPermanent,
    ErrTransient,
    Ok,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Refuse,
        Fault::Reset,
        Fault::BlackHole,
        Fault::Latency,
        Fault::SlowClose,
        Fault::ErrPermanent,
        Fault::ErrTransient,
        Fault::Ok,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Per-connection probabilities of each fault; the rest is `Ok`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub refuse: f64,
    pub reset: f64,
    pub black_hole: f64,
    pub latency: f64,
    pub slow_close: f64,
    pub err_permanent: f64,
    pub err_transient: f64,
}

impl Faults {
    /// No faults: every connection is answered `OK`.
    pub const NONE: Faults = Faults {
        refuse: 0.0,
        reset: 0.0,
        black_hole: 0.0,
        latency: 0.0,
        slow_close: 0.0,
        err_permanent: 0.0,
        err_transient: 0.0,
    };

    fn table(&self) -> [(Fault, f64); 7] {
        [
            (Fault::Refuse, self.refuse),
            (Fault::Reset, self.reset),
            (Fault::BlackHole, self.black_hole),
            (Fault::Latency, self.latency),
            (Fault::SlowClose, self.slow_close),
            (Fault::ErrPermanent, self.err_permanent),
            (Fault::ErrTransient, self.err_transient),
        ]
    }

    /// Probability that a connection gets anything but `Ok`.
    pub fn total(&self) -> f64 {
        self.table().iter().map(|(_, p)| p).sum()
    }

    fn draw(&self, rng: &mut SmallRng) -> Fault {
        let x: f64 = rng.random();
        let mut acc = 0.0;
        for (fault, p) in self.table() {
            acc += p;
            if x < acc {
                return fault;
            }
        }
        Fault::Ok
    }
}

/// The server's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub seed: u64,
    pub faults: Faults,
    /// Upstream service time of every request that reaches it, drawn
    /// uniformly from this range.
    pub service: (Duration, Duration),
    /// Added downstream latency for `Fault::Latency`, drawn uniformly.
    pub latency: (Duration, Duration),
    /// How long `Fault::SlowClose` holds the connection after the reply.
    pub slow_close: Duration,
}

impl Config {
    pub fn new(seed: u64, faults: Faults) -> Self {
        Config {
            seed,
            faults,
            service: (Duration::from_micros(200), Duration::from_millis(2)),
            latency: (Duration::from_millis(2), Duration::from_millis(10)),
            slow_close: Duration::from_millis(20),
        }
    }
}

/// What the server has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted (each client attempt is one).
    pub connections: u64,
    /// Requests that reached the upstream (see the module docs).
    pub requests: u64,
    /// Most requests in flight at the upstream at once.
    pub peak_concurrent: u64,
    /// Requests in flight at the upstream now.
    pub in_flight: u64,
    /// Connections refused because the server was down.
    pub down_refused: u64,
    /// Connections whose client hung up before sending a full request.
    pub aborted: u64,
    /// Connections per drawn fault, indexed like `Fault::ALL`.
    pub faults: [u64; 8],
}

impl Stats {
    pub fn count(&self, fault: Fault) -> u64 {
        self.faults[fault.index()]
    }

    /// Faults other than `Ok`, `Latency` and `SlowClose` (which still answer `OK`).
    pub fn failures_injected(&self) -> u64 {
        [
            Fault::Refuse,
            Fault::Reset,
            Fault::BlackHole,
            Fault::ErrPermanent,
            Fault::ErrTransient,
        ]
        .iter()
        .map(|f| self.count(*f))
        .sum()
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connections {} (down-refused {}, aborted {}), upstream requests {}, peak concurrent {}; faults:",
            self.connections, self.down_refused, self.aborted, self.requests, self.peak_concurrent
        )?;
        for fault in Fault::ALL {
            write!(f, " {:?} {}", fault, self.count(fault))?;
        }
        Ok(())
    }
}

struct Shared {
    config: Config,
    rng: Mutex<SmallRng>,
    down: AtomicBool,
    connections: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
    peak: AtomicU64,
    down_refused: AtomicU64,
    aborted: AtomicU64,
    faults: [AtomicU64; 8],
}

/// A running fault server; stops accepting when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultServer {
    /// Binds 127.0.0.1:0 and starts accepting on the current runtime.
    pub async fn start(config: Config) -> io::Result<FaultServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            rng: Mutex::new(SmallRng::seed_from_u64(config.seed)),
            down: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            down_refused: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            faults: Default::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultServer {
            addr,
            shared,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Down: every connection is refused (RST), none reaches the upstream.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Forgets the peak, so that a phase of a test can measure its own.
    pub fn reset_peak(&self) {
        let now = self.shared.in_flight.load(Ordering::SeqCst);
        self.shared.peak.store(now, Ordering::SeqCst);
    }

    /// The stats once `connections` connections have been accepted, or
    /// after at most 500 ms: a connection whose client gave up while it
    /// was still in the accept queue is accepted (and counted) a moment
    /// after the client has returned.
    pub async fn settle(&self, connections: u64) -> Stats {
        let start = std::time::Instant::now();
        while self.shared.connections.load(Ordering::SeqCst) < connections
            && start.elapsed() < Duration::from_millis(500)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.stats()
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let mut faults = [0; 8];
        for (out, counter) in faults.iter_mut().zip(&s.faults) {
            *out = counter.load(Ordering::SeqCst);
        }
        Stats {
            connections: s.connections.load(Ordering::SeqCst),
            requests: s.requests.load(Ordering::SeqCst),
            peak_concurrent: s.peak.load(Ordering::SeqCst),
            in_flight: s.in_flight.load(Ordering::SeqCst),
            down_refused: s.down_refused.load(Ordering::SeqCst),
            aborted: s.aborted.load(Ordering::SeqCst),
            faults,
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Plan for one connection, drawn at accept time under one lock.
struct Plan {
    fault: Fault,
    service: Duration,
    latency: Duration,
}

fn uniform(rng: &mut SmallRng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..=hi)
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // e.g. EMFILE: back off a little rather than spin
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        if shared.down.load(Ordering::SeqCst) {
            shared.down_refused.fetch_add(1, Ordering::SeqCst);
            reset(stream);
            continue;
        }
        let plan = {
            let mut rng = shared.rng.lock().unwrap();
            let config = &shared.config;
            Plan {
                fault: config.faults.draw(&mut rng),
                service: uniform(&mut rng, config.service),
                latency: uniform(&mut rng, config.latency),
            }
        };
        shared.faults[plan.fault.index()].fetch_add(1, Ordering::SeqCst);
        if plan.fault == Fault::Refuse {
            reset(stream);
            continue;
        }
        tokio::spawn(serve(stream, plan, shared.clone()));
    }
}

/// Closes with RST instead of FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Reads one request line; `None` if the client hung up (or stalled) first.
async fn read_request(stream: &mut TcpStream) -> Option<()> {
    let mut buf = [0u8; 256];
    let mut len = 0;
    let read = async {
        loop {
            match stream.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    len += n;
                    if buf[..len].contains(&b'\n') {
                        return Some(());
                    }
                    if len == buf.len() {
                        return None;
                    }
                }
            }
        }
    };
    tokio::time::timeout(READ_MAX, read).await.ok().flatten()
}

async fn serve(mut stream: TcpStream, plan: Plan, shared: Arc<Shared>) {
    if read_request(&mut stream).await.is_none() {
        shared.aborted.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if plan.fault == Fault::BlackHole {
        // Swallow everything until the client hangs up.
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(HOLD_MAX, async {
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        return;
    }

    // The upstream: in flight from the read to the end of the service time,
    // which ends before anything is sent back (see the module docs).
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(plan.service).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);

    let reply: &[u8] = match plan.fault {
        Fault::Reset => return reset(stream),
        Fault::ErrPermanent => b"ERR permanent\n",
        Fault::ErrTransient => b"ERR transient\n",
        _ => b"OK\n",
    };
    if plan.fault == Fault::Latency {
        tokio::time::sleep(plan.latency).await;
    }
    if stream.write_all(reply).await.is_err() {
        return;
    }
    if plan.fault == Fault::SlowClose {
        tokio::time::sleep(shared.config.slow_close).await;
    }
    // The server closes first (FIN), so TIME_WAIT stays on the listening
    // port's side rather than using up the clients' ephemeral ports.
    let _ = stream.shutdown().await;
}
