//! Limits that learn, at the doors: `concurrency = &LIMIT` with an
//! `AdaptiveLimit`, the inline `concurrency = "adaptive"`,
//! `Policy::concurrency(&LIMIT)`, and the inline
//! `circuit_breaker(adaptive_throttling = k)`; on tokio's paused clock,
//! with ranges (issue 20).
//!
//! | scenario | door | asserted |
//! |---|---|---|
//! | W = 16 workers of 10 ms, 3,200 requests a second for 4 s (the simulated dependency of `retry-runtime/tests/adaptive_sim`) | attribute (`&LIMIT` and `"adaptive"`), `Policy` | limit in [10, 24] over the last 2 s (where it can be read); goodput >= 0.9 of capacity; p99 <= 25 ms; the dependency never holds more than 24 |
//! | 2,000 calls, every tenth dropped mid-flight | attribute, `Policy` | `in_flight()` returns to 0 |
//! | calls cancelled mid-flight, then calls that time out | attribute, `Policy` | a cancelled call is no sample (AIMD keeps its limit); a timed-out one is a drop (AIMD lowers it), retried or not |
//! | two calls hold a host's limit of 2 | attribute, `Keyed` per host | a third to that host is shed, one to another host admitted |
//! | errors not retried, then the same counted by `breaker_if` | attribute | a sample (AIMD keeps its limit), then a drop (AIMD lowers it) |
//! | a backend refusing everything, then a healthy one | attribute (`adaptive_throttling = 2.0`) | most calls refused locally as `CircuitOpen`; none while the backend is healthy |
//! | 100 calls hang until their 5-minute `timeout` | attribute (`adaptive_throttling = 2.0`) | the window is as long as the timeout: the calls after them are mostly refused |

#[path = "../retry-runtime/tests/adaptive_sim/mod.rs"]
mod adaptive_sim;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adaptive_sim::{Run, Scenario, Server, run};
use steadfast::{AdaptiveLimit, CircuitOpen, Elapsed, Keyed, Policy, Rejected, resilient};

const S: Duration = Duration::from_millis(10);

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
enum CallError {
    Shed(Rejected),
    TimedOut(Elapsed),
    Throttled(CircuitOpen),
    Refused,
}

impl From<Rejected> for CallError {
    fn from(e: Rejected) -> Self {
        CallError::Shed(e)
    }
}

impl From<Elapsed> for CallError {
    fn from(e: Elapsed) -> Self {
        CallError::TimedOut(e)
    }
}

impl From<CircuitOpen> for CallError {
    fn from(e: CircuitOpen) -> Self {
        CallError::Throttled(e)
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Issue 20's ranges for W = 16, S = 10 ms under twice its capacity;
/// `limit` is checked when the run could read it.
fn assert_settles(name: &str, run: &Run) {
    let last = run.window(secs(2.0), secs(4.0));
    let whole = run.window(secs(0.0), secs(4.0));
    println!(
        "{name}: goodput {:.0}/s, p99 {:?}, peak {}, limit {:?}",
        whole.goodput, whole.p99, whole.peak_outstanding, last.limit
    );
    if let Some((lo, hi)) = last.limit {
        assert!(
            lo >= 10 && hi <= 24,
            "{name}: limit {lo}..={hi} over the last 2 s"
        );
    }
    assert!(
        whole.goodput >= 0.9 * 1_600.0,
        "{name}: goodput {}",
        whole.goodput
    );
    assert!(
        last.goodput >= 0.9 * 1_600.0,
        "{name}: goodput {}",
        last.goodput
    );
    assert!(whole.p99 <= S * 5 / 2, "{name}: p99 {:?}", whole.p99);
    assert!(
        whole.peak_outstanding <= 24,
        "{name}: peak {}",
        whole.peak_outstanding
    );
}

// A request the limit cannot admit within a millisecond is shed: the
// attribute waits for a permit, and `max_wait` is how it sheds.

static SHARED: AdaptiveLimit = AdaptiveLimit::gradient();

#[resilient(concurrency = &SHARED, max_wait = "1ms", max_attempts = 1, budget = "off")]
async fn through_a_shared_limit(server: Rc<Server>) -> Result<(), CallError> {
    server.serve().await;
    Ok(())
}

#[resilient(
    concurrency = "adaptive",
    max_wait = "1ms",
    max_attempts = 1,
    budget = "off"
)]
async fn through_an_inline_limit(server: Rc<Server>) -> Result<(), CallError> {
    server.serve().await;
    Ok(())
}

static POLICY_LIMIT: AdaptiveLimit = AdaptiveLimit::gradient();
static POLICY: Policy<CallError> = Policy::new()
    .max_attempts(1)
    .no_budget()
    .concurrency(&POLICY_LIMIT)
    .max_wait(Duration::from_millis(1));

#[tokio::test(start_paused = true)]
async fn the_attribute_with_a_shared_adaptive_limit_settles_near_the_workers() {
    let run = run(
        Scenario::OVERLOAD,
        || Some(SHARED.limit()),
        |server| async move { through_a_shared_limit(server).await.is_ok() },
    )
    .await;
    assert_settles("concurrency = &SHARED", &run);
    assert_eq!(SHARED.in_flight(), 0);
    assert!(
        SHARED.min_rtt().is_some(),
        "the limit learnt from the calls"
    );
}

#[tokio::test(start_paused = true)]
async fn the_inline_adaptive_limit_settles_near_the_workers() {
    let run = run(
        Scenario::OVERLOAD,
        || None,
        |server| async move { through_an_inline_limit(server).await.is_ok() },
    )
    .await;
    assert_settles("concurrency = \"adaptive\"", &run);
}

#[tokio::test(start_paused = true)]
async fn a_policy_with_an_adaptive_limit_settles_near_the_workers() {
    let run = run(
        Scenario::OVERLOAD,
        || Some(POLICY_LIMIT.limit()),
        |server| async move {
            POLICY
                .retry(|_| {
                    let server = server.clone();
                    async move {
                        server.serve().await;
                        Ok(())
                    }
                })
                .await
                .is_ok()
        },
    )
    .await;
    assert_settles("Policy::concurrency", &run);
    assert_eq!(POLICY_LIMIT.in_flight(), 0);
}

// 2,000 calls, one every 250 µs, each 10 ms long; every tenth is dropped
// 3 ms in (while it runs, or while it waits for a slot).

static DROPPED: AdaptiveLimit = AdaptiveLimit::gradient();

#[resilient(concurrency = &DROPPED, max_wait = "5ms", max_attempts = 1, budget = "off")]
async fn ten_milliseconds() -> Result<(), CallError> {
    tokio::time::sleep(S).await;
    Ok(())
}

static DROPPED_BY_POLICY: AdaptiveLimit = AdaptiveLimit::gradient();
static DROPPING: Policy<CallError> = Policy::new()
    .max_attempts(1)
    .no_budget()
    .concurrency(&DROPPED_BY_POLICY)
    .max_wait(Duration::from_millis(5));

async fn every_tenth_dropped<F>(call: fn() -> F) -> usize
where
    F: Future<Output = Result<(), CallError>> + Send + 'static,
{
    let shed = std::sync::Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..2_000u64)
        .map(|n| {
            let shed = shed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(250 * n)).await;
                let call = async {
                    if let Err(CallError::Shed(_)) = call().await {
                        shed.fetch_add(1, Ordering::Relaxed);
                    }
                };
                if n % 10 == 0 {
                    let _ = tokio::time::timeout(Duration::from_millis(3), call).await;
                } else {
                    call.await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a call's task");
    }
    shed.load(Ordering::Relaxed)
}

#[tokio::test(start_paused = true)]
async fn calls_dropped_mid_flight_through_the_attribute_leak_no_slot() {
    let shed = every_tenth_dropped(ten_milliseconds).await;
    assert_eq!(DROPPED.in_flight(), 0, "{DROPPED:?}");
    assert!(format!("{DROPPED:?}").contains("waiting: 0"), "{DROPPED:?}");
    assert!(
        shed > 0,
        "the limit was full at times: waits were cut short"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_dropped_mid_flight_through_a_policy_leak_no_slot() {
    let shed = every_tenth_dropped(|| {
        DROPPING.retry(|_| async {
            tokio::time::sleep(S).await;
            Ok(())
        })
    })
    .await;
    assert_eq!(DROPPED_BY_POLICY.in_flight(), 0, "{DROPPED_BY_POLICY:?}");
    assert!(
        shed > 0,
        "the limit was full at times: waits were cut short"
    );
}

// AIMD lowers its limit on any drop and keeps it without samples: what
// it does after cancelled calls and after timed-out ones tells which of
// the two each was taken for.

static CANCELLED: AdaptiveLimit = AdaptiveLimit::aimd().initial(20);
static TIMED_OUT: AdaptiveLimit = AdaptiveLimit::aimd().initial(20);

#[resilient(concurrency = &CANCELLED, max_attempts = 1, budget = "off")]
async fn cancelled() -> Result<(), CallError> {
    tokio::time::sleep(S).await;
    Ok(())
}

// A timeout is a drop even when the error it becomes is not retried.
#[resilient(concurrency = &TIMED_OUT, timeout = "5ms", retry_on = [Refused], max_attempts = 1, budget = "off")]
async fn timed_out() -> Result<(), CallError> {
    tokio::time::sleep(S).await;
    Ok(())
}

static CANCELLED_BY_POLICY: AdaptiveLimit = AdaptiveLimit::aimd().initial(20);
static TIMED_OUT_BY_POLICY: AdaptiveLimit = AdaptiveLimit::aimd().initial(20);
static CANCELLING: Policy<CallError> = Policy::new()
    .max_attempts(1)
    .no_budget()
    .concurrency(&CANCELLED_BY_POLICY);
static TIMING_OUT: Policy<CallError> = Policy::new()
    .max_attempts(1)
    .retry_if(|e| matches!(e, CallError::Refused))
    .no_budget()
    .concurrency(&TIMED_OUT_BY_POLICY)
    .timeout(Duration::from_millis(5));

/// 300 calls, 10 at a time for 30 intervals of the limit's 100 ms, each
/// cut short at 5 ms by the caller (`cancel`), or ending in an error
/// (its own `timeout`'s, or its body's).
async fn cut_short<F: Future<Output = Result<(), CallError>>>(call: fn() -> F, cancel: bool) {
    for _ in 0..30 {
        let batch = (0..10).map(|_| async {
            if cancel {
                let _ = tokio::time::timeout(Duration::from_millis(5), call()).await;
            } else {
                assert!(call().await.is_err());
            }
        });
        futures_join_all(batch).await;
        tokio::time::sleep(Duration::from_millis(95)).await;
    }
}

/// Runs the futures at once on this task.
async fn futures_join_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    std::future::poll_fn(|cx| {
        set.retain_mut(|future| future.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_is_no_sample_and_a_timed_out_one_a_drop_through_the_attribute() {
    cut_short(cancelled, true).await;
    assert_eq!(CANCELLED.limit(), 20, "cancelled calls moved the limit");
    assert_eq!(CANCELLED.in_flight(), 0);
    cut_short(timed_out, false).await;
    assert!(
        TIMED_OUT.limit() <= 10,
        "timeouts are drops: {}",
        TIMED_OUT.limit()
    );
    assert_eq!(TIMED_OUT.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_is_no_sample_and_a_timed_out_one_a_drop_through_a_policy() {
    cut_short(
        || {
            CANCELLING.retry(|_| async {
                tokio::time::sleep(S).await;
                Ok(())
            })
        },
        true,
    )
    .await;
    assert_eq!(CANCELLED_BY_POLICY.limit(), 20);
    cut_short(
        || {
            TIMING_OUT.retry(|_| async {
                tokio::time::sleep(S).await;
                Ok(())
            })
        },
        false,
    )
    .await;
    assert!(
        TIMED_OUT_BY_POLICY.limit() <= 10,
        "{}",
        TIMED_OUT_BY_POLICY.limit()
    );
}

// An error is judged as the breaker judges it: one that is not retried
// shows the dependency answered (a sample), unless `breaker_if` counts it.

static ANSWERED: AdaptiveLimit = AdaptiveLimit::aimd().initial(20);
static COUNTED: AdaptiveLimit = AdaptiveLimit::aimd().initial(20);

#[resilient(concurrency = &ANSWERED, retry_on = [TimedOut], max_attempts = 1, budget = "off")]
async fn answered_with_an_error() -> Result<(), CallError> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    Err(CallError::Refused)
}

#[resilient(concurrency = &COUNTED, retry_on = [TimedOut], max_attempts = 1, budget = "off",
            circuit_breaker(failure_threshold = 100_000),
            breaker_if = |e: &CallError| matches!(e, CallError::Refused))]
async fn refused_for_load() -> Result<(), CallError> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    Err(CallError::Refused)
}

#[tokio::test(start_paused = true)]
async fn errors_are_samples_or_drops_as_the_breaker_would_count_them() {
    cut_short(answered_with_an_error, false).await;
    assert!(ANSWERED.limit() >= 20, "{ANSWERED:?}");
    cut_short(refused_for_load, false).await;
    assert!(COUNTED.limit() <= 10, "{COUNTED:?}");
}

// One limit per host: a `Keyed` of adaptive limits through the same key.

static PER_HOST: Keyed<String, AdaptiveLimit> = Keyed::new(|_| AdaptiveLimit::aimd().initial(2));

#[resilient(concurrency = &PER_HOST.get(host), max_wait = "1ms", max_attempts = 1, budget = "off")]
async fn to_host(host: &str) -> Result<(), CallError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_keyed_adaptive_limit_is_one_limit_per_host() {
    let busy: Vec<_> = (0..2).map(|_| tokio::spawn(to_host("a.example"))).collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(PER_HOST.get("a.example").in_flight(), 2);
    assert!(matches!(
        to_host("a.example").await,
        Err(CallError::Shed(_))
    ));
    assert!(
        to_host("b.example").await.is_ok(),
        "another host has its own limit"
    );
    for call in busy {
        assert!(call.await.expect("a call").is_ok());
    }
    assert_eq!(PER_HOST.get("a.example").in_flight(), 0);
}

// Adaptive throttling inline: one breaker for the function, refusing with
// the SRE formula.

static HEALTHY: AtomicUsize = AtomicUsize::new(0);
static REACHED: AtomicUsize = AtomicUsize::new(0);

#[resilient(
    circuit_breaker(adaptive_throttling = 2.0),
    max_attempts = 1,
    budget = "off"
)]
async fn throttled() -> Result<(), CallError> {
    REACHED.fetch_add(1, Ordering::Relaxed);
    if HEALTHY.load(Ordering::Relaxed) == 1 {
        Ok(())
    } else {
        Err(CallError::Refused)
    }
}

#[tokio::test(start_paused = true)]
async fn inline_adaptive_throttling_refuses_locally_while_the_backend_refuses() {
    let mut throttled_calls = 0;
    for _ in 0..1_000 {
        if let Err(CallError::Throttled(_)) = throttled().await {
            throttled_calls += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reached = REACHED.swap(0, Ordering::Relaxed);
    assert!(throttled_calls > 900, "{throttled_calls} refused locally");
    assert_eq!(reached + throttled_calls, 1_000);
    // Healthy, after the window (2 minutes) has forgotten the outage.
    HEALTHY.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(130)).await;
    for _ in 0..1_000 {
        assert!(
            throttled().await.is_ok(),
            "a healthy backend is not throttled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// An attempt longer than the throttling window: the window is made as long
// as the attempt's `timeout`, so that the requests that hang are still
// counted when they time out.

static HANGING: AtomicUsize = AtomicUsize::new(1);

#[resilient(
    circuit_breaker(adaptive_throttling = 2.0),
    timeout = "5min",
    max_attempts = 1,
    budget = "off"
)]
async fn slow_to_fail() -> Result<(), CallError> {
    if HANGING.load(Ordering::Relaxed) == 1 {
        std::future::pending::<()>().await;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn inline_throttling_counts_requests_for_as_long_as_an_attempt_lasts() {
    let hung: Vec<_> = (0..100).map(|_| tokio::spawn(slow_to_fail())).collect();
    for call in hung {
        assert!(matches!(
            call.await.expect("a call"),
            Err(CallError::TimedOut(_))
        ));
    }
    HANGING.store(0, Ordering::Relaxed);
    let mut refused = 0;
    for _ in 0..20 {
        if let Err(CallError::Throttled(_)) = slow_to_fail().await {
            refused += 1;
        }
    }
    assert!(refused >= 10, "{refused} of 20 refused after 100 timeouts");
}
