//! The happy path: the first attempt succeeds. What does wrapping a call in
//! a retry cost when no retry happens?
//!
//! Every contender runs the same trivial body (`Ok(black_box(x))`) and is
//! called through one `#[inline(never)]` function per contender, so each
//! iteration is a real call that builds the future, polls it once with a
//! no-op waker (`common::ready`: no executor in the measurement) and drops
//! it. The ratio table printed at the end compares every contender to the
//! raw call measured in the same run.
//!
//! `cargo bench -p steadfast-benches --bench happy_path` (add `-- --list` to
//! print only the future sizes).

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use backon::{BlockingRetryable, ExponentialBuilder, Retryable};
use common::{BenchError, drivers, goal, raw, ready, row};
use criterion::Criterion;
use steadfast::{Policy, resilient, retry};

// ---------------------------------------------------------------- async

/// What one writes without a library: the same schedule as the defaults
/// (3 attempts, 100 ms doubling), no jitter, no budget. A macro so that each
/// contender below gets its own copy (one shared `async fn` would be inlined
/// into neither caller).
macro_rules! hand_written_loop {
    ($x:ident) => {{
        let mut attempt = 1u32;
        loop {
            let outcome: Result<u64, BenchError> = async { Ok(black_box($x)) }.await;
            match outcome {
                Ok(value) => return Ok(value),
                Err(error) if attempt >= 3 => return Err(error),
                Err(_) => {
                    let delay = Duration::from_millis(100) * 2u32.pow(attempt - 1);
                    tokio::time::sleep(delay.min(Duration::from_secs(20))).await;
                    attempt += 1;
                }
            }
        }
    }};
}

async fn hand_written(x: u64) -> Result<u64, BenchError> {
    hand_written_loop!(x)
}

/// The hand-written loop plus one shared relaxed atomic add per call: what
/// a budget that deposits into a shared counter costs (the design the
/// per-thread batching replaced).
async fn hand_written_shared_atomic(x: u64) -> Result<u64, BenchError> {
    static DEPOSITS: AtomicUsize = AtomicUsize::new(0);
    DEPOSITS.fetch_add(1, Ordering::Relaxed);
    hand_written_loop!(x)
}

#[resilient]
async fn resilient_defaults(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(budget = "off")]
async fn resilient_budget_off(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

/// The `retry!` door with the attribute's defaults: a block at the call site.
async fn retry_block_defaults(x: u64) -> Result<u64, BenchError> {
    retry!(; async { Ok(black_box(x)) }).await
}

/// The `Policy` door with the attribute's defaults (its own budget), as a
/// `static` the way the docs show it.
static POLICY_DEFAULTS: Policy<BenchError> = Policy::new();
static POLICY_NO_BUDGET: Policy<BenchError> = Policy::new().no_budget();

async fn policy_defaults(x: u64) -> Result<u64, BenchError> {
    POLICY_DEFAULTS
        .retry(|_| async move { Ok(black_box(x)) })
        .await
}

async fn policy_no_budget(x: u64) -> Result<u64, BenchError> {
    POLICY_NO_BUDGET
        .retry(|_| async move { Ok(black_box(x)) })
        .await
}

async fn backon_default(x: u64) -> Result<u64, BenchError> {
    (|| async { Ok::<u64, BenchError>(black_box(x)) })
        .retry(ExponentialBuilder::default())
        .await
}

async fn tokio_retry2_default(x: u64) -> Result<u64, BenchError> {
    // 100 ms doubling, 2 retries: the defaults' schedule.
    let strategy = tokio_retry2::strategy::ExponentialBackoff::from_millis(2)
        .factor(50)
        .max_delay(Duration::from_secs(20))
        .take(2);
    tokio_retry2::Retry::spawn(strategy, || async {
        Ok::<u64, tokio_retry2::RetryError<BenchError>>(black_box(x))
    })
    .await
}

drivers! {
    run_raw => raw;
    run_hand_written => hand_written;
    run_hand_written_shared_atomic => hand_written_shared_atomic;
    run_resilient_defaults => resilient_defaults;
    run_resilient_budget_off => resilient_budget_off;
    run_retry_block_defaults => retry_block_defaults;
    run_policy_defaults => policy_defaults;
    run_policy_no_budget => policy_no_budget;
    run_backon => backon_default;
    run_tokio_retry2 => tokio_retry2_default;
}

type Driver = fn(u64) -> Result<u64, BenchError>;

// ------------------------------------------------------------- hedged

/// Hedged calls whose first attempt wins, next to the same call without
/// `hedge` (issue 19's goal: under 250 ns a call): answering at the first
/// poll (the hedge's timer is made, never polled), or at the second
/// (`Later`: the timer is registered with tokio's driver, then dropped).
macro_rules! hedged {
    ($($name:ident: $ready:ident, $pending:ident, #[$attr:meta];)*) => {
        $(
            #[$attr]
            async fn $ready(x: u64) -> Result<u64, BenchError> {
                Ok(black_box(x))
            }

            #[$attr]
            async fn $pending(x: u64) -> Result<u64, BenchError> {
                common::Later::default().await;
                Ok(black_box(x))
            }
        )*
        const HEDGED: &[(&str, Driver)] = &[
            $(
                (concat!(stringify!($name), "/ready"), |x| ready($ready(x))),
                (concat!(stringify!($name), "/pending"), |x| common::second_poll($pending(x))),
            )*
            ("policy_hedged/ready", |x| ready(POLICY_HEDGED.retry(|_| async move { Ok(black_box(x)) }))),
            ("policy_hedged/pending", |x| common::second_poll(POLICY_HEDGED.retry(|_| async move {
                common::Later::default().await;
                Ok(black_box(x))
            }))),
        ];
    };
}

hedged! {
    plain: plain_ready, plain_pending, #[resilient];
    hedge_after_1s: hedge_after_ready, hedge_after_pending, #[resilient(hedge(after = "1s"))];
    hedge_p95: hedge_p95_ready, hedge_p95_pending, #[resilient(hedge)];
}

static POLICY_HEDGED: Policy<BenchError> =
    Policy::new().hedge(steadfast::Hedge::after_quantile(0.95));

const ASYNC: &[(&str, Driver)] = &[
    ("raw", run_raw),
    ("hand_written", run_hand_written),
    ("hand_written+shared_atomic", run_hand_written_shared_atomic),
    ("resilient_defaults", run_resilient_defaults),
    ("resilient_budget_off", run_resilient_budget_off),
    ("retry_block_defaults", run_retry_block_defaults),
    ("policy_defaults", run_policy_defaults),
    ("policy_no_budget", run_policy_no_budget),
    ("backon", run_backon),
    ("tokio_retry2", run_tokio_retry2),
];

// ----------------------------------------------------------------- sync

fn raw_sync(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

fn hand_written_sync(x: u64) -> Result<u64, BenchError> {
    let mut attempt = 1u32;
    loop {
        let outcome: Result<u64, BenchError> = Ok(black_box(x));
        match outcome {
            Ok(value) => return Ok(value),
            Err(error) if attempt >= 3 => return Err(error),
            Err(_) => {
                let delay = Duration::from_millis(100) * 2u32.pow(attempt - 1);
                std::thread::sleep(delay.min(Duration::from_secs(20)));
                attempt += 1;
            }
        }
    }
}

#[resilient]
fn resilient_defaults_sync(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(budget = "off")]
fn resilient_budget_off_sync(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

fn retry_block_defaults_sync(x: u64) -> Result<u64, BenchError> {
    retry!(; { Ok(black_box(x)) })
}

fn policy_defaults_sync(x: u64) -> Result<u64, BenchError> {
    POLICY_DEFAULTS.retry_blocking(|_| Ok(black_box(x)))
}

fn policy_no_budget_sync(x: u64) -> Result<u64, BenchError> {
    POLICY_NO_BUDGET.retry_blocking(|_| Ok(black_box(x)))
}

fn backon_sync(x: u64) -> Result<u64, BenchError> {
    (|| Ok::<u64, BenchError>(black_box(x)))
        .retry(ExponentialBuilder::default())
        .call()
}

macro_rules! sync_drivers {
    ($($driver:ident => $function:ident;)*) => {$(
        #[inline(never)]
        fn $driver(x: u64) -> Result<u64, BenchError> {
            $function(x)
        }
    )*};
}

sync_drivers! {
    run_raw_sync => raw_sync;
    run_hand_written_sync => hand_written_sync;
    run_resilient_defaults_sync => resilient_defaults_sync;
    run_resilient_budget_off_sync => resilient_budget_off_sync;
    run_retry_block_defaults_sync => retry_block_defaults_sync;
    run_policy_defaults_sync => policy_defaults_sync;
    run_policy_no_budget_sync => policy_no_budget_sync;
    run_backon_sync => backon_sync;
}

const SYNC: &[(&str, Driver)] = &[
    ("raw", run_raw_sync),
    ("hand_written", run_hand_written_sync),
    ("resilient_defaults", run_resilient_defaults_sync),
    ("resilient_budget_off", run_resilient_budget_off_sync),
    ("retry_block_defaults", run_retry_block_defaults_sync),
    ("policy_defaults", run_policy_defaults_sync),
    ("policy_no_budget", run_policy_no_budget_sync),
    ("backon", run_backon_sync),
];

/// Contenders run on two threads at once, calling the same function (so
/// sharing its budget): the per-thread deposit batching against one shared
/// counter.
const ASYNC_2_THREADS: &[(&str, Driver)] = &[
    ("raw", run_raw),
    ("hand_written", run_hand_written),
    ("hand_written+shared_atomic", run_hand_written_shared_atomic),
    ("resilient_defaults", run_resilient_defaults),
    ("resilient_budget_off", run_resilient_budget_off),
    ("backon", run_backon),
];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("happy_path/async");
    for &(id, driver) in ASYNC {
        group.bench_function(id, |b| b.iter(|| driver(black_box(7))));
    }
    group.finish();

    let mut group = c.benchmark_group("happy_path/sync");
    for &(id, driver) in SYNC {
        group.bench_function(id, |b| b.iter(|| driver(black_box(7))));
    }
    group.finish();

    let mut group = c.benchmark_group("happy_path/hedged");
    for &(id, driver) in HEDGED {
        group.bench_function(id, |b| b.iter(|| driver(black_box(7))));
    }
    group.finish();

    let mut group = c.benchmark_group("happy_path/async_2_threads");
    for &(id, driver) in ASYNC_2_THREADS {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                common::contended(&(), 2, iters, |()| {
                    black_box(driver(black_box(7))).ok();
                })
            })
        });
    }
    group.finish();
}

// ----------------------------------------------------------------- sizes

/// Declares an annotated function and its un-annotated twin with the same
/// body, for comparing their futures' sizes.
macro_rules! twins {
    ($plain:ident, $annotated:ident, ($($key:tt)*), |$x:ident| { $($body:tt)* }) => {
        async fn $plain($x: u64) -> Result<u64, BenchError> { $($body)* }
        #[resilient($($key)*)]
        async fn $annotated($x: u64) -> Result<u64, BenchError> { $($body)* }
    };
}

twins!(plain_defaults, sized_defaults, (), |x| { Ok(black_box(x)) });
twins!(plain_budget_off, sized_budget_off, (budget = "off"), |x| {
    Ok(black_box(x))
});
twins!(plain_timeout, sized_timeout, (timeout = "1s"), |x| {
    Ok(black_box(x))
});
twins!(
    plain_stack,
    sized_stack,
    (timeout = "1s", concurrency = 64, circuit_breaker),
    |x| { Ok(black_box(x)) }
);
/// The stack above with the primitives shared through expressions, as
/// `static`s a user declares.
static SHARED_BULKHEAD: steadfast::Bulkhead = steadfast::Bulkhead::new(64);
static SHARED_BREAKER: steadfast::CircuitBreaker = steadfast::CircuitBreaker::new();
static SHARED_LIMITER: steadfast::RateLimiter = steadfast::RateLimiter::per_second(1_000_000);
static SHARED_BUDGET: steadfast::RetryBudget = steadfast::RetryBudget::new();
twins!(
    plain_shared_stack,
    sized_shared_stack,
    (
        timeout = "1s",
        concurrency = &SHARED_BULKHEAD,
        circuit_breaker = &SHARED_BREAKER
    ),
    |x| { Ok(black_box(x)) }
);
/// The same primitives reached through a call (a lookup, in real code):
/// the expressions are evaluated once per call, and the guards they make
/// are kept in the future.
fn shared<T>(primitive: &'static T) -> &'static T {
    black_box(primitive)
}
twins!(
    plain_computed_stack,
    sized_computed_stack,
    (
        timeout = "1s",
        concurrency = shared(&SHARED_BULKHEAD),
        circuit_breaker = shared(&SHARED_BREAKER)
    ),
    |x| { Ok(black_box(x)) }
);
twins!(
    plain_shared_all,
    sized_shared_all,
    (
        budget = &SHARED_BUDGET,
        concurrency = &SHARED_BULKHEAD,
        rate_limit = &SHARED_LIMITER,
        circuit_breaker = &SHARED_BREAKER
    ),
    |x| { Ok(black_box(x)) }
);
twins!(
    plain_everything,
    sized_everything,
    (
        timeout = "1s",
        deadline = "5s",
        concurrency = 64,
        rate_limit = "1000000/s",
        circuit_breaker,
        max_wait = "1s",
        on_retry = |_| {}
    ),
    |x| { Ok(black_box(x)) }
);
twins!(plain_await_1k, sized_await_1k, (), |x| {
    let buffer = [black_box(1u8); 1024];
    tokio::task::yield_now().await;
    Ok(u64::from(buffer[x as usize % 1024]))
});
twins!(
    plain_stack_await_1k,
    sized_stack_await_1k,
    (timeout = "1s", concurrency = 64, circuit_breaker),
    |x| {
        let buffer = [black_box(1u8); 1024];
        tokio::task::yield_now().await;
        Ok(u64::from(buffer[x as usize % 1024]))
    }
);

twins!(
    plain_timeout_await_1k,
    sized_timeout_await_1k,
    (timeout = "1s"),
    |x| {
        let buffer = [black_box(1u8); 1024];
        tokio::task::yield_now().await;
        Ok(u64::from(buffer[x as usize % 1024]))
    }
);
twins!(
    plain_concurrency_breaker_await_1k,
    sized_concurrency_breaker_await_1k,
    (concurrency = 64, circuit_breaker),
    |x| {
        let buffer = [black_box(1u8); 1024];
        tokio::task::yield_now().await;
        Ok(u64::from(buffer[x as usize % 1024]))
    }
);

fn print_sizes() {
    fn line(shape: &str, body: usize, wrapped: usize) {
        println!(
            "| {shape} | {body} | {wrapped} | {} |",
            wrapped as isize - body as isize
        );
    }
    println!("\n### Future sizes (bytes)\n");
    println!("| shape | body's own future | wrapped | overhead |");
    println!("|---|---:|---:|---:|");
    let raw_size = size_of_val(&raw(0));
    line(
        "`#[resilient]` (no keys; default budget)",
        size_of_val(&plain_defaults(0)),
        size_of_val(&sized_defaults(0)),
    );
    line(
        "`#[resilient(budget = \"off\")]`",
        size_of_val(&plain_budget_off(0)),
        size_of_val(&sized_budget_off(0)),
    );
    line(
        "`timeout`",
        size_of_val(&plain_timeout(0)),
        size_of_val(&sized_timeout(0)),
    );
    line(
        "`timeout + concurrency + circuit_breaker`",
        size_of_val(&plain_stack(0)),
        size_of_val(&sized_stack(0)),
    );
    line(
        "`timeout + concurrency = &STATIC + circuit_breaker = &STATIC`",
        size_of_val(&plain_shared_stack(0)),
        size_of_val(&sized_shared_stack(0)),
    );
    line(
        "`timeout + concurrency = f() + circuit_breaker = f()`",
        size_of_val(&plain_computed_stack(0)),
        size_of_val(&sized_computed_stack(0)),
    );
    line(
        "`budget`, `concurrency`, `rate_limit`, `circuit_breaker`, each `= &STATIC`",
        size_of_val(&plain_shared_all(0)),
        size_of_val(&sized_shared_all(0)),
    );
    line(
        "`timeout + deadline + concurrency + rate_limit + circuit_breaker + max_wait + on_retry`",
        size_of_val(&plain_everything(0)),
        size_of_val(&sized_everything(0)),
    );
    line(
        "no keys, body holds 1 KiB across an await",
        size_of_val(&plain_await_1k(0)),
        size_of_val(&sized_await_1k(0)),
    );
    line(
        "`timeout`, body holds 1 KiB across an await",
        size_of_val(&plain_timeout_await_1k(0)),
        size_of_val(&sized_timeout_await_1k(0)),
    );
    line(
        "`concurrency + circuit_breaker`, body holds 1 KiB across an await",
        size_of_val(&plain_concurrency_breaker_await_1k(0)),
        size_of_val(&sized_concurrency_breaker_await_1k(0)),
    );
    line(
        "`timeout + concurrency + circuit_breaker`, body holds 1 KiB across an await",
        size_of_val(&plain_stack_await_1k(0)),
        size_of_val(&sized_stack_await_1k(0)),
    );
    line(
        "hand-written loop (same schedule)",
        raw_size,
        size_of_val(&hand_written(0)),
    );
    line(
        "backon `ExponentialBuilder::default()`",
        raw_size,
        size_of_val(&backon_default(0)),
    );
    line(
        "`retry!` (no keys)",
        raw_size,
        size_of_val(&retry_block_defaults(0)),
    );
    line(
        "`Policy::new()` `.retry(..)`",
        raw_size,
        size_of_val(&policy_defaults(0)),
    );
    line(
        "tokio-retry2 `ExponentialBackoff`",
        raw_size,
        size_of_val(&tokio_retry2_default(0)),
    );
}

fn main() {
    let since = SystemTime::now();
    print_sizes();
    // Nothing on these happy paths needs a runtime, but entering one makes
    // the comparison fair should any contender look for its handle.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let _context = runtime.enter();

    let mut criterion = common::criterion();
    bench(&mut criterion);
    criterion.final_summary();

    for group in ["happy_path/async", "happy_path/sync"] {
        common::print_table(
            group,
            "raw",
            &[
                row("raw"),
                row("hand_written"),
                row("hand_written+shared_atomic"),
                goal("resilient_budget_off", "hand_written", 1.5),
                goal("resilient_defaults", "backon", 2.0),
                goal("retry_block_defaults", "resilient_defaults", 1.1),
                goal("policy_defaults", "backon", 1.0),
                row("policy_no_budget"),
                row("backon"),
                row("tokio_retry2"),
            ],
            since,
        );
    }
    common::print_table(
        "happy_path/hedged",
        "plain/ready",
        &[
            row("plain/ready"),
            row("hedge_after_1s/ready"),
            row("hedge_p95/ready"),
            row("policy_hedged/ready"),
            row("plain/pending"),
            row("hedge_after_1s/pending"),
            row("hedge_p95/pending"),
            row("policy_hedged/pending"),
        ],
        since,
    );
    common::print_table(
        "happy_path/async_2_threads",
        "raw",
        &[
            row("raw"),
            row("hand_written"),
            row("hand_written+shared_atomic"),
            goal("resilient_budget_off", "hand_written", 1.5),
            goal("resilient_defaults", "backon", 2.0),
            row("backon"),
        ],
        since,
    );
}
