//! Counts, on the calling thread, the heap allocations and clock reads of
//! calls whose first attempt succeeds (through `#[resilient]`, `retry!` and
//! `Policy`), after a warm-up, and
//! checks that the jitter generator is not drawn from. Prints one line per
//! check and `N passed, N failed`; exits non-zero on a failure.
//!
//! - Allocations: a `#[global_allocator]` wrapping `System` that counts the
//!   allocations (alloc, alloc_zeroed, realloc) of the current thread.
//! - Clock reads: this binary defines `clock_gettime` itself, so every
//!   `std::time::Instant::now()` (and so every `tokio::time::Instant::now()`)
//!   in the process calls it instead of the C library's; it counts the
//!   current thread's calls and forwards them as a raw system call.
//! - RNG: seed this thread's jitter generator, draw a delay; reseed, make the
//!   calls, draw again: the same delay means the calls drew nothing.

#[cfg(feature = "bodies")]
mod bodies;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use std::time::Duration;

use steadfast::{
    Backoff, CircuitOpen, Elapsed, Jitter, Policy, Rejected, RetryBudget, resilient, retry,
};

// ------------------------------------------------------------- counting

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static CLOCK_READS: Cell<u64> = const { Cell::new(0) };
    /// Bytes this thread allocated and has not freed (negative when it
    /// frees what another thread allocated), and the most it reached.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCATIONS);
        grow(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCATIONS);
        grow(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(&ALLOCATIONS);
        grow(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grow(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn count(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    // `try_with`: allocations also happen while thread-locals are torn down.
    let _ = counter.try_with(|n| n.set(n.get() + 1));
}

fn grow(bytes: isize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + bytes);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

/// The most bytes this thread held at once while `run` ran, beyond what it
/// held before.
#[cfg_attr(not(feature = "bodies"), allow(dead_code))]
fn peak_while<T>(run: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let out = run();
    (out, (PEAK.with(Cell::get) - before).max(0) as usize)
}

static CLOCK_INTERPOSED: AtomicBool = AtomicBool::new(false);

/// Replaces the C library's `clock_gettime` for this executable.
///
/// # Safety
/// Same contract as `clock_gettime(2)`.
#[cfg(target_os = "linux")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(
    clock: libc::clockid_t,
    tp: *mut libc::timespec,
) -> libc::c_int {
    CLOCK_INTERPOSED.store(true, Ordering::Relaxed);
    count(&CLOCK_READS);
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as libc::c_int }
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn clock_reads() -> u64 {
    CLOCK_READS.with(Cell::get)
}

// ------------------------------------------------------------ functions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Error {
    Timeout,
    Open,
    Refused,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Error {}

impl From<Elapsed> for Error {
    fn from(_: Elapsed) -> Self {
        Error::Timeout
    }
}

impl From<CircuitOpen> for Error {
    fn from(_: CircuitOpen) -> Self {
        Error::Open
    }
}

impl From<Rejected> for Error {
    fn from(_: Rejected) -> Self {
        Error::Refused
    }
}

static SHARED_BUDGET: RetryBudget = RetryBudget::new();

static POLICY_HEDGED: Policy<Error> =
    Policy::new().hedge(steadfast::Hedge::after(Duration::from_millis(10)));

#[resilient]
async fn async_defaults(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(budget = "off")]
async fn async_budget_off(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(budget = &SHARED_BUDGET, jitter = "decorrelated")]
async fn async_shared_budget(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(concurrency = 4, circuit_breaker)]
async fn async_concurrency_breaker(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(timeout = "1s", concurrency = 4, circuit_breaker)]
async fn async_full_stack(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(
    timeout = "1s",
    concurrency = 4,
    circuit_breaker,
    rate_limit = "1000000000/s",
    max_wait = "1s"
)]
async fn async_full_stack_rate_limit(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(deadline = "5s")]
async fn async_deadline(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(timeout = "1s", rate_limit = "1000000000/s")]
async fn async_timeout_rate_limit(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient]
fn sync_defaults(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(budget = "off")]
fn sync_budget_off(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(concurrency = 4, circuit_breaker)]
fn sync_concurrency_breaker(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

// A hedged call whose first attempt answers at its first poll: the round
// makes no timer and no hedge.
#[resilient(hedge(after = "10ms"))]
async fn async_hedged(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

#[resilient(hedge(after = "p95"))]
async fn async_hedged_quantile(x: u64) -> Result<u64, Error> {
    Ok(black_box(x))
}

// The other two doors, on the same engine: a block at the call site and a
// policy as a value.

async fn block_defaults(x: u64) -> Result<u64, Error> {
    retry!(; async { Ok::<_, Error>(black_box(x)) }).await
}

fn block_sync_defaults(x: u64) -> Result<u64, Error> {
    retry!(; { Ok::<_, Error>(black_box(x)) })
}

static POLICY_DEFAULTS: Policy<Error> = Policy::new();
static POLICY_TIMEOUT: Policy<Error> = Policy::new().timeout(Duration::from_secs(1));

/// Polls a future that must complete at once, with a no-op waker.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a happy-path call must complete on its first poll"),
    }
}

// --------------------------------------------------------------- checks

const WARM_UP: u64 = 100;
/// Several times the budget's per-thread batch, so flushes are included.
const CALLS: u64 = 10_000;

struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    fn exit(&self) {
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed > 0 {
            std::process::exit(1);
        }
    }

    fn check(&mut self, name: &str, ok: bool, detail: String) {
        if ok {
            self.passed += 1;
            println!("ok     {name}: {detail}");
        } else {
            self.failed += 1;
            println!("FAILED {name}: {detail}");
        }
    }
}

/// The jitter a freshly seeded generator gives the first retry.
fn first_jitter() -> std::time::Duration {
    Backoff::new()
        .jitter(Jitter::Full)
        .next()
        .expect("a first delay")
}

/// Clock reads per call that the configuration needs: `reads` for the
/// keys that measure time, plus one for the retry budget when it is on
/// (it dates each call, so that a call counts for `ttl` from when it was
/// made), unless the call reads its start anyway (`deadline`): that read
/// is shared.
const fn needs(reads: u64) -> u64 {
    reads
}

/// The budget's one read per call (see `needs`).
const BUDGET: u64 = 1;

/// Runs `call` `CALLS` times after a warm-up; checks it allocated nothing,
/// read the clock exactly as often as needed, and drew no jitter.
fn measure(
    report: &mut Report,
    name: &str,
    needed: u64,
    call: impl FnMut(u64) -> Result<u64, Error>,
) {
    measure_allocating(report, name, needed, 0, call);
}

/// `measure` for a call that allocates `boxes` times by design.
fn measure_allocating(
    report: &mut Report,
    name: &str,
    needed: u64,
    boxes: u64,
    mut call: impl FnMut(u64) -> Result<u64, Error>,
) {
    for i in 0..WARM_UP {
        assert_eq!(call(i), Ok(i), "{name}: the happy path must succeed");
    }
    steadfast::testing::seed_jitter(42);
    let expected_jitter = first_jitter();
    steadfast::testing::seed_jitter(42);

    let (allocs_before, clock_before) = (allocations(), clock_reads());
    for i in 0..CALLS {
        assert_eq!(call(i), Ok(i), "{name}: the happy path must succeed");
    }
    let allocs = allocations() - allocs_before;
    let clock = clock_reads() - clock_before;
    let jitter = first_jitter();

    report.check(
        &format!("{name}: allocations"),
        allocs == boxes * CALLS,
        format!("{allocs} in {CALLS} calls; by design: {boxes} a call"),
    );
    report.check(
        &format!("{name}: clock reads"),
        clock == needed * CALLS,
        format!(
            "{:.2} per call, {clock} in {CALLS} calls; needed: {needed}",
            clock as f64 / CALLS as f64
        ),
    );
    report.check(
        &format!("{name}: jitter draws"),
        jitter == expected_jitter,
        if jitter == expected_jitter {
            "none (the generator's next value is unchanged)".to_owned()
        } else {
            "the generator moved: a call drew from it".to_owned()
        },
    );
}

fn main() {
    let mut report = Report {
        passed: 0,
        failed: 0,
    };
    // `bodies` measures the tower layer (feature `bodies`), apart from the
    // happy path, which is measured without any feature.
    if std::env::args().nth(1).as_deref() == Some("bodies") {
        #[cfg(feature = "bodies")]
        bodies::check(&mut report);
        #[cfg(not(feature = "bodies"))]
        report.check("bodies", false, "needs --features bodies".to_owned());
        return report.exit();
    }

    // The counters themselves must work, or a zero proves nothing.
    let before = allocations();
    drop(black_box(Box::new(1u8)));
    report.check(
        "the allocation counter counts",
        allocations() == before + 1,
        String::new(),
    );
    let before = clock_reads();
    black_box(std::time::Instant::now());
    let clock_counted = clock_reads() == before + 1 && CLOCK_INTERPOSED.load(Ordering::Relaxed);
    report.check(
        "the clock counter counts",
        clock_counted || !cfg!(target_os = "linux"),
        if clock_counted {
            "Instant::now() went through the interposed clock_gettime".to_owned()
        } else {
            "clock reads cannot be counted on this platform; their checks are vacuous".to_owned()
        },
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _context = runtime.enter();

    measure(&mut report, "async, defaults", needs(BUDGET), |x| {
        ready(async_defaults(x))
    });
    measure(&mut report, "async, budget = \"off\"", needs(0), |x| {
        ready(async_budget_off(x))
    });
    measure(
        &mut report,
        "async, shared budget, decorrelated jitter",
        needs(BUDGET),
        |x| ready(async_shared_budget(x)),
    );
    measure(
        &mut report,
        "async, concurrency + circuit_breaker + budget",
        needs(BUDGET),
        |x| ready(async_concurrency_breaker(x)),
    );
    measure(
        &mut report,
        "async, timeout + concurrency + circuit_breaker + budget",
        needs(1 + BUDGET),
        |x| ready(async_full_stack(x)),
    );
    // The call's start is needed for the deadline, and the budget shares
    // that read.
    measure(&mut report, "async, deadline", needs(1), |x| {
        ready(async_deadline(x))
    });
    // The rate limiter reads the clock to take a token (its rate is in
    // time); the timeout reads it for the attempt's deadline.
    measure(
        &mut report,
        "async, timeout + rate_limit",
        needs(2 + BUDGET),
        |x| ready(async_timeout_rate_limit(x)),
    );
    // With `max_wait`, a wait's limit is computed only when a permit or
    // token is not there at once: the token and the timeout read it, no more.
    measure(
        &mut report,
        "async, timeout + concurrency + circuit_breaker + rate_limit + max_wait + budget",
        needs(2 + BUDGET),
        |x| ready(async_full_stack_rate_limit(x)),
    );
    measure(&mut report, "async retry!, defaults", needs(BUDGET), |x| {
        ready(block_defaults(x))
    });
    measure(
        &mut report,
        "async Policy::retry, defaults",
        needs(BUDGET),
        |x| ready(POLICY_DEFAULTS.retry(|_| async move { Ok(black_box(x)) })),
    );
    measure(
        &mut report,
        "async Policy::retry, timeout",
        needs(1 + BUDGET),
        |x| ready(POLICY_TIMEOUT.retry(|_| async move { Ok(black_box(x)) })),
    );
    // A round dates its call for the hedge budget's window, and starts its
    // first attempt's delay, with the budget's read: no read of its own.
    measure(
        &mut report,
        "async, hedge after a delay, the first attempt wins",
        needs(BUDGET),
        |x| ready(async_hedged(x)),
    );
    // A quantile also times the attempt, its latency sample.
    measure(
        &mut report,
        "async, hedge after a quantile, the first attempt wins",
        needs(1 + BUDGET),
        |x| ready(async_hedged_quantile(x)),
    );
    // `Policy::retry` with `hedge` boxes its round loop: one allocation
    // per hedged call, so that a policy without `hedge` does not carry the
    // round's room (a hedged future is 920 bytes, an unhedged one 200).
    // Its clock reads are the attribute's.
    measure_allocating(
        &mut report,
        "async Policy::retry, hedge after a delay, the first attempt wins",
        needs(BUDGET),
        1,
        |x| ready(POLICY_HEDGED.retry(|_| async move { Ok(black_box(x)) })),
    );
    measure(&mut report, "sync, defaults", needs(BUDGET), sync_defaults);
    measure(
        &mut report,
        "sync retry!, defaults",
        needs(BUDGET),
        block_sync_defaults,
    );
    measure(
        &mut report,
        "sync Policy::retry_blocking, defaults",
        needs(BUDGET),
        |x| POLICY_DEFAULTS.retry_blocking(|_| Ok(black_box(x))),
    );
    measure(
        &mut report,
        "sync, budget = \"off\"",
        needs(0),
        sync_budget_off,
    );
    measure(
        &mut report,
        "sync, concurrency + circuit_breaker + budget",
        needs(BUDGET),
        sync_concurrency_breaker,
    );

    report.exit();
}
