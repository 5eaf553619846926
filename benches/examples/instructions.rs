//! Instructions per call, counted by callgrind in one run
//! (load-independent, unlike the times of the criterion benches): the
//! happy path of each door next to backon, the retry budget's deposit next
//! to tower's, the circuit breakers (adaptive throttling included) next to
//! recloser, the adaptive concurrency limit next to a `Bulkhead`, and the
//! inbound layer (`RateLimitLayer`) next to tower_governor's, admitting and
//! refusing a request (the services of `benches/inbound.rs`), and the
//! outbound layer (`ResilientLayer` with `Http`) sending a GET without a
//! body next to the same service without it, and hedged calls whose first
//! attempt wins (at its first poll, or at its second, after the hedge's
//! timer is registered) next to the same call without `hedge`.
//!
//! ```text
//! cargo run --release -p steadfast-benches --example instructions
//! cargo run --release -p steadfast-benches --example instructions --features tracing
//! ```
//!
//! The second has steadfast's `tracing` feature and a subscriber that
//! keeps `INFO` (`KeepsInfo`): what the spans and events cost a call
//! when the filter drops them, the common case in production.
//!
//! Run so, it runs itself again under
//! `valgrind --tool=callgrind --collect-atstart=no` with
//! `--toggle-collect` and `--dump-after` on each `measure_*` function, so
//! that callgrind writes one dump per contender holding only the
//! instructions of its [`ITERATIONS`] calls (after a warm-up that is not
//! counted), and prints a table per group. With `--run` it only runs the
//! contenders (what callgrind is given); for a profile of one of them, e.g.
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!   --toggle-collect=instructions::measure_failure_rate --dump-instr=yes \
//!   target/release/examples/instructions --run
//! callgrind_annotate --auto=yes --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Each contender is one `#[inline(never)]` function making one call
//! (futures polled once with a no-op waker, as in the criterion benches);
//! its arguments go through `black_box`, so nothing is hoisted out of the
//! loop. `measure_loop_only` calls a function that does nothing, so the
//! call and the loop around it can be subtracted: the "net" column is what
//! a caller pays for the contender itself, and each group's ratios are to
//! the peer it names.

#[path = "../common/driving.rs"]
mod driving;
#[path = "../common/inbound.rs"]
mod inbound;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder, Retryable};
use driving::{BenchError, Later, ready, second_poll};
use steadfast::tower::{BoxError, Http, RateLimitLayer, ResilientLayer};
use steadfast::{
    AdaptiveLimit, Bulkhead, CircuitBreaker, Hedge, Keyed, Policy, RateLimiter, RetryBudget,
    resilient, retry,
};
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service};
use tower_governor::governor::GovernorConfigBuilder;

/// Counted calls per contender, after as many uncounted (thread-locals
/// such as the budget's per-thread batch or recloser's epoch pin, the
/// breaker's clock epoch and the like are set up then).
const ITERATIONS: u64 = 100_000;

// ------------------------------------------------------------ contenders

#[inline(never)]
fn nothing() {
    black_box(());
}

#[resilient]
async fn resilient_defaults(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(budget = "off")]
async fn resilient_budget_off(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient]
fn resilient_sync_defaults(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(budget = "off")]
fn resilient_sync_budget_off(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

/// Hedged calls whose first attempt wins, next to the same call without
/// `hedge`: answering at the first poll (no timer is ever polled), or at
/// the second (`Later`: a round trip's wait, for which the hedge's timer
/// is registered, then dropped).
#[resilient(hedge(after = "1s"))]
async fn hedge_delay_ready(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(hedge)]
async fn hedge_quantile_ready(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient]
async fn plain_ready(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(hedge(after = "1s"))]
async fn hedge_delay_pending(x: u64) -> Result<u64, BenchError> {
    Later::default().await;
    Ok(black_box(x))
}

#[resilient(hedge)]
async fn hedge_quantile_pending(x: u64) -> Result<u64, BenchError> {
    Later::default().await;
    Ok(black_box(x))
}

#[resilient]
async fn plain_pending(x: u64) -> Result<u64, BenchError> {
    Later::default().await;
    Ok(black_box(x))
}

static POLICY_HEDGED: Policy<BenchError> = Policy::new().hedge(Hedge::after_quantile(0.95));

static POLICY: Policy<BenchError> = Policy::new();
static POLICY_NO_BUDGET: Policy<BenchError> = Policy::new().no_budget();

/// `concurrency` at the doors: the same call through a `Bulkhead` and an
/// `AdaptiveLimit` (each a `static` of its own, so that no two contenders
/// share code), the budget off so that the limit is all that differs from
/// `resilient_budget_off`.
static DOOR_ADAPTIVE: AdaptiveLimit = AdaptiveLimit::gradient();
static DOOR_BULKHEAD: Bulkhead = Bulkhead::new(64);
static POLICY_ADAPTIVE_LIMIT: AdaptiveLimit = AdaptiveLimit::gradient();
static POLICY_BULKHEAD_LIMIT: Bulkhead = Bulkhead::new(64);
static POLICY_ADAPTIVE: Policy<BenchError> = Policy::new()
    .no_budget()
    .concurrency(&POLICY_ADAPTIVE_LIMIT);
static POLICY_BULKHEAD: Policy<BenchError> = Policy::new()
    .no_budget()
    .concurrency(&POLICY_BULKHEAD_LIMIT);

#[resilient(budget = "off", concurrency = &DOOR_ADAPTIVE)]
async fn resilient_adaptive(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(budget = "off", concurrency = &DOOR_BULKHEAD)]
async fn resilient_bulkhead(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

/// The breakers measured, each a `static` as a breaker usually is (and
/// so that the two contenders' code differs: identical functions would be
/// merged into one symbol).
static CONSECUTIVE: CircuitBreaker = CircuitBreaker::new();
static FAILURE_RATE: CircuitBreaker = CircuitBreaker::new().failure_rate(0.5, 20);
static THROTTLING: CircuitBreaker = CircuitBreaker::adaptive_throttling(2.0);
static BUDGET: RetryBudget = RetryBudget::new();
/// The concurrency limits measured: one admitted call each, reported as a
/// success (the adaptive limit's sample) or dropped (the bulkhead's slot).
static GRADIENT: AdaptiveLimit = AdaptiveLimit::gradient();
static AIMD: AdaptiveLimit = AdaptiveLimit::aimd();
static BULKHEAD: Bulkhead = Bulkhead::new(64);

/// Defines, for each contender, `$measure`: `ITERATIONS` calls of `$call`,
/// the only code callgrind collects in.
macro_rules! measures {
    ($($measure:ident($($arg:ident: $ty:ty),*) => $call:expr;)*) => {$(
        #[inline(never)]
        fn $measure($($arg: $ty),*) {
            for i in 0..ITERATIONS {
                let _ = black_box($call(black_box(i)));
            }
        }
    )*};
}

measures! {
    measure_loop_only() => |_| nothing();
    measure_resilient_defaults() => |x| ready(resilient_defaults(x));
    measure_resilient_budget_off() => |x| ready(resilient_budget_off(x));
    measure_retry_block() => |x| ready(async move { retry!(; async { Ok::<u64, BenchError>(black_box(x)) }).await });
    measure_policy_retry() => |x| ready(POLICY.retry(|_| async move { Ok(black_box(x)) }));
    measure_backon() => |x| ready((|| async move { Ok::<u64, BenchError>(black_box(x)) }).retry(ExponentialBuilder::default()));
    measure_resilient_sync_defaults() => resilient_sync_defaults;
    measure_resilient_sync_budget_off() => resilient_sync_budget_off;
    measure_retry_block_sync() => |x| retry!(; { Ok::<u64, BenchError>(black_box(x)) });
    measure_policy_retry_blocking() => |x| POLICY.retry_blocking(|_| Ok(black_box(x)));
    measure_policy_retry_blocking_no_budget() => |x| POLICY_NO_BUDGET.retry_blocking(|_| Ok(black_box(x)));
    measure_backon_blocking() => |x| (|| Ok::<u64, BenchError>(black_box(x))).retry(ExponentialBuilder::default()).call();
    measure_resilient_adaptive() => |x| ready(resilient_adaptive(x));
    measure_resilient_bulkhead() => |x| ready(resilient_bulkhead(x));
    measure_policy_adaptive() => |x| ready(POLICY_ADAPTIVE.retry(|_| async move { Ok(black_box(x)) }));
    measure_policy_bulkhead() => |x| ready(POLICY_BULKHEAD.retry(|_| async move { Ok(black_box(x)) }));
    measure_budget_deposit() => |_: u64| black_box(&BUDGET).deposit();
    measure_tower_deposit(peer: &TpsBudget) => |_: u64| black_box(peer).deposit();
    measure_consecutive() => |_: u64| black_box(&CONSECUTIVE).try_acquire().map(|permit| permit.success());
    measure_failure_rate() => |_: u64| black_box(&FAILURE_RATE).try_acquire().map(|permit| permit.success());
    measure_throttling() => |_: u64| black_box(&THROTTLING).try_acquire().map(|permit| permit.success());
    measure_recloser(peer: &recloser::Recloser) => |_: u64| black_box(peer).call(|| Ok::<(), ()>(()));
    measure_adaptive_gradient() => |_: u64| black_box(&GRADIENT).try_acquire().map(|permit| permit.success());
    measure_adaptive_aimd() => |_: u64| black_box(&AIMD).try_acquire().map(|permit| permit.success());
    measure_adaptive_cancelled() => |_: u64| black_box(&AIMD).try_acquire().map(drop);
    measure_bulkhead() => |_: u64| black_box(&BULKHEAD).try_acquire().map(drop);
    measure_hedge_delay_ready() => |x| ready(hedge_delay_ready(x));
    measure_hedge_quantile_ready() => |x| ready(hedge_quantile_ready(x));
    measure_hedge_policy_ready() => |x| ready(POLICY_HEDGED.retry(|_| async move { Ok(black_box(x)) }));
    measure_plain_ready() => |x| ready(plain_ready(x));
    measure_hedge_delay_pending() => |x| second_poll(hedge_delay_pending(x));
    measure_hedge_quantile_pending() => |x| second_poll(hedge_quantile_pending(x));
    measure_hedge_policy_pending() => |x| second_poll(POLICY_HEDGED.retry(|_| async move { Later::default().await; Ok(black_box(x)) }));
    measure_plain_pending() => |x| second_poll(plain_pending(x));
}

/// The inbound layers: `ITERATIONS` requests through `service`, each
/// built, called and its response dropped (generic, so written out: the
/// services' types name closures and governor's middleware). Admitting
/// and refusing services have the same type: each function passes its own
/// tag through `black_box`, so that no two are merged into one symbol.
macro_rules! inbound_measures {
    ($($measure:ident = $tag:literal;)*) => {$(
        #[inline(never)]
        fn $measure<S>(service: &mut S)
        where
            S: Service<http::Request<axum::body::Body>, Response = http::Response<axum::body::Body>>,
        {
            black_box($tag);
            for _ in 0..ITERATIONS {
                let _ = black_box(ready(service.call(black_box(inbound::request()))));
            }
        }
    )*};
}

inbound_measures! {
    measure_inbound_bare = 1;
    measure_inbound_admit = 2;
    measure_governor_plain_admit = 3;
    measure_governor_admit = 4;
    measure_inbound_refuse = 5;
    measure_governor_plain_refuse = 6;
    measure_governor_refuse = 7;
}

/// The outbound layer: a GET without a body (the same request type before
/// and after bodies could be buffered: a `String` body, copied by `Clone`)
/// through `ResilientLayer` with `Http` around a service answering an
/// empty 200 at once, next to that service alone.
#[derive(Clone, Copy)]
struct Upstream;

impl Service<http::Request<String>> for Upstream {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<String>) -> Self::Future {
        black_box(&request);
        std::future::ready(Ok(http::Response::new(String::new())))
    }
}

fn get_without_body() -> http::Request<String> {
    let mut request = http::Request::new(String::new());
    *request.uri_mut() = http::Uri::from_static("http://upstream/items/42");
    request
}

static OUTBOUND: Policy<BoxError> = Policy::new();

macro_rules! outbound_measures {
    ($($measure:ident = $tag:literal;)*) => {$(
        #[inline(never)]
        fn $measure<S>(service: &mut S)
        where
            S: Service<http::Request<String>, Response = http::Response<String>>,
        {
            black_box($tag);
            for _ in 0..ITERATIONS {
                let _ = black_box(ready(service.call(black_box(get_without_body()))));
            }
        }
    )*};
}

outbound_measures! {
    measure_outbound_bare = 1;
    measure_outbound_layer = 2;
}

static ADMITTING: Keyed<String, RateLimiter> =
    Keyed::new(|_| RateLimiter::per_second(u32::MAX).burst(u32::MAX));
static REFUSING: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_hour(1));

/// The contenders, in the order they run (so their dumps are written),
/// in groups; each group's last contender is the peer its ratios are to.
const GROUPS: &[(&str, &[(&str, &str)])] = &[
    (
        "happy path, async (first attempt succeeds)",
        &[
            (
                "measure_resilient_defaults",
                "`#[resilient]` (defaults, budget on)",
            ),
            (
                "measure_resilient_budget_off",
                "`#[resilient(budget = \"off\")]`",
            ),
            ("measure_retry_block", "`retry!(; async { .. })` (defaults)"),
            ("measure_policy_retry", "`Policy::retry` (defaults)"),
            (
                "measure_backon",
                "backon `.retry(ExponentialBuilder::default())`",
            ),
        ],
    ),
    (
        "happy path, sync",
        &[
            (
                "measure_resilient_sync_defaults",
                "`#[resilient]` (defaults, budget on)",
            ),
            (
                "measure_resilient_sync_budget_off",
                "`#[resilient(budget = \"off\")]`",
            ),
            ("measure_retry_block_sync", "`retry!(; { .. })` (defaults)"),
            (
                "measure_policy_retry_blocking",
                "`Policy::retry_blocking` (defaults)",
            ),
            (
                "measure_policy_retry_blocking_no_budget",
                "`Policy::new().no_budget().retry_blocking`",
            ),
            (
                "measure_backon_blocking",
                "backon blocking `.retry(..).call()`",
            ),
        ],
    ),
    (
        "`concurrency` at the doors: one call admitted, `budget = \"off\"`",
        &[
            (
                "measure_resilient_adaptive",
                "`#[resilient(concurrency = &ADAPTIVE)]` (`AdaptiveLimit::gradient()`)",
            ),
            (
                "measure_policy_adaptive",
                "`Policy::concurrency(&ADAPTIVE)`",
            ),
            (
                "measure_policy_bulkhead",
                "`Policy::concurrency(&BULKHEAD)`",
            ),
            (
                "measure_resilient_bulkhead",
                "`#[resilient(concurrency = &BULKHEAD)]` (`Bulkhead::new(64)`)",
            ),
        ],
    ),
    (
        "retry budget: one call's deposit",
        &[
            ("measure_budget_deposit", "`RetryBudget::deposit`"),
            ("measure_tower_deposit", "tower `TpsBudget::deposit`"),
        ],
    ),
    (
        "circuit breakers: `try_acquire` + `success`",
        &[
            (
                "measure_consecutive",
                "`CircuitBreaker::new()` (5 consecutive failures)",
            ),
            (
                "measure_failure_rate",
                "`CircuitBreaker::new().failure_rate(0.5, 20)`",
            ),
            (
                "measure_throttling",
                "`CircuitBreaker::adaptive_throttling(2.0)`",
            ),
            (
                "measure_recloser",
                "recloser `call`, `error_rate(0.5).closed_len(20)`",
            ),
        ],
    ),
    (
        "concurrency limits: one admitted call (`try_acquire` + outcome)",
        &[
            (
                "measure_adaptive_gradient",
                "`AdaptiveLimit::gradient()`, `success()`",
            ),
            (
                "measure_adaptive_aimd",
                "`AdaptiveLimit::aimd()`, `success()`",
            ),
            (
                "measure_adaptive_cancelled",
                "`AdaptiveLimit::aimd()`, permit dropped (no sample)",
            ),
            ("measure_bulkhead", "`Bulkhead::new(64)`, permit dropped"),
        ],
    ),
    (
        "inbound layer: a request admitted (`x-tenant` key, handler answers)",
        &[
            (
                "measure_inbound_bare",
                "no layer (the request and the handler alone)",
            ),
            (
                "measure_inbound_admit",
                "steadfast `RateLimitLayer` (IETF `RateLimit` fields)",
            ),
            (
                "measure_governor_plain_admit",
                "tower_governor, default (no headers)",
            ),
            (
                "measure_governor_admit",
                "tower_governor `use_headers()` (`x-ratelimit-*`)",
            ),
        ],
    ),
    (
        "inbound layer: a request refused (429)",
        &[
            (
                "measure_inbound_refuse",
                "steadfast `RateLimitLayer` (`Retry-After`, IETF fields)",
            ),
            (
                "measure_governor_plain_refuse",
                "tower_governor, default (`retry-after`)",
            ),
            ("measure_governor_refuse", "tower_governor `use_headers()`"),
        ],
    ),
    (
        "outbound layer: a GET without a body, answered 200 at once",
        &[
            (
                "measure_outbound_layer",
                "`ResilientLayer::new(&POLICY).classify(Http)` (defaults)",
            ),
            (
                "measure_outbound_bare",
                "no layer (the request and the service alone)",
            ),
        ],
    ),
    (
        "hedged calls, the first attempt answers at its first poll (no timer polled)",
        &[
            (
                "measure_hedge_delay_ready",
                "`#[resilient(hedge(after = \"1s\"))]`",
            ),
            (
                "measure_hedge_quantile_ready",
                "`#[resilient(hedge)]` (p95, estimate known)",
            ),
            (
                "measure_hedge_policy_ready",
                "`Policy::retry`, `Hedge::after_quantile(0.95)`",
            ),
            ("measure_plain_ready", "`#[resilient]` (no hedge)"),
        ],
    ),
    (
        "hedged calls, the first attempt answers at its second poll (the hedge's timer registered, then dropped)",
        &[
            (
                "measure_hedge_delay_pending",
                "`#[resilient(hedge(after = \"1s\"))]`",
            ),
            (
                "measure_hedge_quantile_pending",
                "`#[resilient(hedge)]` (p95: the 1 ms floor)",
            ),
            (
                "measure_hedge_policy_pending",
                "`Policy::retry`, `Hedge::after_quantile(0.95)`",
            ),
            ("measure_plain_pending", "`#[resilient]` (no hedge)"),
        ],
    ),
];

fn run() {
    #[cfg(feature = "tracing")]
    tracing::subscriber::set_global_default(KeepsInfo).expect("the only subscriber");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _context = runtime.enter();
    // The same policy as `FAILURE_RATE`: trip at a failure rate of 0.5
    // over the last 20 calls, judged once 20 have been recorded; one
    // probe; open for 30 s.
    let recloser = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(20)
        .half_open_len(1)
        .open_wait(Duration::from_secs(30))
        .build();
    // The budget's defaults: 10 s, 10 retries a second, 20% of the calls.
    let tower = TpsBudget::new(Duration::from_secs(10), 10, 0.2);
    // The inbound layers, as in `benches/inbound.rs`: a token a nanosecond
    // and a burst of u32::MAX (every request admitted), or one token an
    // hour, spent below before counting (every request refused).
    let ours = |keyed| RateLimitLayer::new(keyed, inbound::tenant_of).layer(inbound::Handler);
    let (mut admit, mut refuse) = (ours(&ADMITTING), ours(&REFUSING));
    macro_rules! governor {
        ($period:expr, $burst:expr $(, $headers:ident)?) => {{
            let config = GovernorConfigBuilder::default()
                .period($period)
                .burst_size($burst)
                $(.$headers())?
                .key_extractor(inbound::Tenant)
                .finish()
                .expect("a config");
            tower_governor::GovernorLayer::new(config).layer(inbound::Handler)
        }};
    }
    let (nanosecond, hour) = (Duration::from_nanos(1), Duration::from_secs(3600));
    let mut governor_admit = governor!(nanosecond, u32::MAX, use_headers);
    let mut governor_admit_plain = governor!(nanosecond, u32::MAX);
    let mut governor_refuse = governor!(hour, 1, use_headers);
    let mut governor_refuse_plain = governor!(hour, 1);
    let mut outbound = ResilientLayer::new(&OUTBOUND)
        .classify(Http)
        .layer(Upstream);
    let _ = ready(refuse.call(inbound::request()));
    let _ = ready(governor_refuse.call(inbound::request()));
    let _ = ready(governor_refuse_plain.call(inbound::request()));
    // Twice: the first pass warms up (its counts are dropped below).
    for _ in 0..2 {
        measure_loop_only();
        measure_resilient_defaults();
        measure_resilient_budget_off();
        measure_retry_block();
        measure_policy_retry();
        measure_backon();
        measure_resilient_sync_defaults();
        measure_resilient_sync_budget_off();
        measure_retry_block_sync();
        measure_policy_retry_blocking();
        measure_policy_retry_blocking_no_budget();
        measure_backon_blocking();
        measure_resilient_adaptive();
        measure_policy_adaptive();
        measure_policy_bulkhead();
        measure_resilient_bulkhead();
        measure_budget_deposit();
        measure_tower_deposit(&tower);
        measure_consecutive();
        measure_failure_rate();
        measure_throttling();
        measure_recloser(&recloser);
        measure_adaptive_gradient();
        measure_adaptive_aimd();
        measure_adaptive_cancelled();
        measure_bulkhead();
        measure_inbound_bare(&mut inbound::Handler);
        measure_inbound_admit(&mut admit);
        measure_governor_plain_admit(&mut governor_admit_plain);
        measure_governor_admit(&mut governor_admit);
        measure_inbound_refuse(&mut refuse);
        measure_governor_plain_refuse(&mut governor_refuse_plain);
        measure_governor_refuse(&mut governor_refuse);
        measure_outbound_layer(&mut outbound);
        measure_outbound_bare(&mut Upstream);
        measure_hedge_delay_ready();
        measure_hedge_quantile_ready();
        measure_hedge_policy_ready();
        measure_plain_ready();
        measure_hedge_delay_pending();
        measure_hedge_quantile_pending();
        measure_hedge_policy_pending();
        measure_plain_pending();
    }
    let answered = ready(outbound.call(get_without_body())).map(|response| response.status());
    assert_eq!(answered.ok(), Some(http::StatusCode::OK));
    let status = |service: &mut dyn FnMut() -> u16| service();
    assert_eq!(
        status(&mut || ready(admit.call(inbound::request()))
            .unwrap()
            .status()
            .as_u16()),
        200
    );
    assert_eq!(
        status(&mut || ready(governor_admit.call(inbound::request()))
            .unwrap()
            .status()
            .as_u16()),
        200
    );
    assert_eq!(
        status(&mut || ready(refuse.call(inbound::request()))
            .unwrap()
            .status()
            .as_u16()),
        429
    );
    assert_eq!(
        status(&mut || ready(governor_refuse.call(inbound::request()))
            .unwrap()
            .status()
            .as_u16()),
        429
    );
    assert_eq!(CONSECUTIVE.state(), steadfast::CircuitState::Closed);
    assert_eq!(FAILURE_RATE.state(), steadfast::CircuitState::Closed);
    assert_eq!(
        THROTTLING.rejected_count(),
        0,
        "a healthy call is never throttled"
    );
    assert_eq!(GRADIENT.in_flight() + AIMD.in_flight(), 0);
    assert_eq!(
        DOOR_ADAPTIVE.in_flight() + POLICY_ADAPTIVE_LIMIT.in_flight(),
        0
    );
}

/// Every contender's name, in the order `run` calls them.
fn names() -> Vec<&'static str> {
    std::iter::once("measure_loop_only")
        .chain(
            GROUPS
                .iter()
                .flat_map(|(_, group)| group.iter().map(|(name, _)| *name)),
        )
        .collect()
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

/// With `--features tracing`: a subscriber that keeps `INFO` and above,
/// as a production filter does, and records nothing. The library's spans
/// are `DEBUG`: what a call pays for them here is their level check.
#[cfg(feature = "tracing")]
struct KeepsInfo;

#[cfg(feature = "tracing")]
impl tracing::Subscriber for KeepsInfo {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.enabled(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

fn main() {
    if std::env::args().any(|arg| arg == "--run") {
        run();
        return;
    }
    let dir = std::env::temp_dir().join(format!("instructions.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let out = dir.join("callgrind.out");
    let exe = std::env::current_exe().expect("this binary's path");
    let names = names();
    let mut valgrind = Command::new("valgrind");
    valgrind
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg("--toggle-collect=instructions::measure_*");
    // One `--dump-after` per name (callgrind 3.19 honours several of
    // them, but not a wildcard there, nor several `--toggle-collect`s
    // next to them). A name given after a longer one it begins
    // (`measure_x` after `measure_x_y`) loses the longer one its dumps:
    // no contender's name begins another that comes before it.
    for name in &names {
        valgrind.arg(format!("--dump-after=instructions::{name}"));
    }
    let status = valgrind
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .arg("--run")
        .status()
        .expect("valgrind (apt-get install valgrind)");
    assert!(status.success(), "callgrind failed: {status}");
    // `--dump-after` writes `<out>.1`, `<out>.2`, ... in the order the
    // functions return, then the final dump to `<out>` (nothing
    // collected). `run` calls every contender twice: the second pass's
    // dumps are the counted ones.
    let counted: Vec<f64> = (names.len() + 1..=2 * names.len())
        .map(|n| total(&PathBuf::from(format!("{}.{n}", out.display()))) as f64 / ITERATIONS as f64)
        .collect();
    let per_call =
        |name: &str| counted[names.iter().position(|n| *n == name).expect("a contender")];
    let overhead = per_call("measure_loop_only");
    println!(
        "instructions per call, {ITERATIONS} calls each after as many uncounted, \
         one callgrind run; the call and loop alone: {overhead:.1}\n"
    );
    for (title, group) in GROUPS {
        let (peer, _) = group[group.len() - 1];
        let peer_net = per_call(peer) - overhead;
        println!("{title}\n");
        println!("| contender | with the call and loop | net | vs the last |");
        println!("|---|---:|---:|---:|");
        for (name, label) in *group {
            let net = per_call(name) - overhead;
            println!(
                "| {label} | {:.1} | {net:.1} | {:.2}x |",
                per_call(name),
                net / peer_net
            );
        }
        println!();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
