//! The `metrics` feature: the series a recorder sees.
#![cfg(feature = "metrics")]

#[path = "../support/mod.rs"]
mod support;

use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use steadfast::{CircuitBreaker, resilient, testing};
use support::TestError;

/// One snapshot of every series (a snapshot drains histogram samples, so
/// a test takes one and queries it).
type Series = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// The value of one series, by name and labels.
fn value<'a>(series: &'a Series, name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    series.iter().find_map(|(key, _, _, value)| {
        let key = key.key();
        let matches = key.name() == name
            && labels
                .iter()
                .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v));
        matches.then_some(value)
    })
}

fn counter(series: &Series, name: &str, labels: &[(&str, &str)]) -> u64 {
    match value(series, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

#[resilient(name = "orders.fetch", max_attempts = 3, budget = "off")]
fn fetch(fail: u32, calls: &mut u32) -> Result<u32, TestError> {
    *calls += 1;
    if *calls <= fail {
        Err(TestError::Io)
    } else {
        Ok(*calls)
    }
}

#[test]
fn calls_attempts_retries_give_ups_and_durations_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let _fast = testing::no_delays();
        for fail in [0, 1, 2, 5] {
            let mut calls = 0;
            let _ = fetch(fail, &mut calls);
        }
    });
    let snapshotter = snapshotter.snapshot().into_vec();
    let site = ("site", "orders.fetch");
    assert_eq!(
        counter(
            &snapshotter,
            "steadfast_calls_total",
            &[site, ("outcome", "success")]
        ),
        3
    );
    assert_eq!(
        counter(
            &snapshotter,
            "steadfast_calls_total",
            &[site, ("outcome", "failure")]
        ),
        1
    );
    // 1 + 2 + 3 + 3 attempts; 0 + 1 + 2 + 2 retries
    assert_eq!(
        counter(&snapshotter, "steadfast_attempts_total", &[site]),
        9
    );
    assert_eq!(counter(&snapshotter, "steadfast_retries_total", &[site]), 5);
    assert_eq!(
        counter(
            &snapshotter,
            "steadfast_giveups_total",
            &[site, ("reason", "exhausted")]
        ),
        1
    );
    match value(&snapshotter, "steadfast_call_duration_seconds", &[site]) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 4),
        other => panic!("duration histogram: {other:?}"),
    }
}

static BREAKER: CircuitBreaker = CircuitBreaker::new().failure_threshold(1).name("ledger");

#[resilient(name = "ledger.append", circuit_breaker = &BREAKER, max_attempts = 1)]
fn append() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[test]
fn rejections_and_the_breaker_state_are_exported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let _ = append();
        let _ = append();
    });
    let snapshotter = snapshotter.snapshot().into_vec();
    let site = ("site", "ledger.append");
    assert_eq!(
        counter(
            &snapshotter,
            "steadfast_calls_total",
            &[site, ("outcome", "failure")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snapshotter,
            "steadfast_calls_total",
            &[site, ("outcome", "rejected")]
        ),
        1
    );
    match value(
        &snapshotter,
        "steadfast_circuit_state",
        &[("site", "ledger")],
    ) {
        Some(DebugValue::Gauge(state)) => assert_eq!(state.into_inner(), 2.0, "open"),
        other => panic!("breaker gauge: {other:?}"),
    }
}

/// A throttling breaker's refusals are counted in
/// `steadfast_circuit_throttled_total`, as many as `rejected_count` says.
#[test]
fn throttled_requests_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let breaker = CircuitBreaker::adaptive_throttling(2.0).name("search.query");
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..200 {
            if let Ok(permit) = breaker.try_acquire() {
                permit.failure();
            }
        }
    });
    let refused = breaker.rejected_count();
    assert!(refused > 100, "{refused} refused");
    let series = snapshotter.snapshot().into_vec();
    assert_eq!(
        counter(
            &series,
            "steadfast_circuit_throttled_total",
            &[("site", "search.query")]
        ),
        refused
    );
}

#[resilient(circuit_breaker(failure_threshold = 1), max_attempts = 1)]
fn charge() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[resilient(
    name = "refunds.issue",
    circuit_breaker(failure_threshold = 1),
    max_attempts = 1
)]
fn refund() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[test]
fn inline_breakers_are_named_after_their_function() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let _ = charge();
        let _ = refund();
    });
    let series = snapshotter.snapshot().into_vec();
    let gauge = |site: &str| match value(&series, "steadfast_circuit_state", &[("site", site)]) {
        Some(DebugValue::Gauge(state)) => Some(state.into_inner()),
        _ => None,
    };
    // Each opened: two gauges, one per function, not one shared name.
    assert_eq!(gauge("metrics::charge"), Some(2.0), "module_path::fn_name");
    assert_eq!(gauge("refunds.issue"), Some(2.0), "the `name` key");
    assert_eq!(gauge("circuit_breaker"), None);
}

#[resilient(
    name = "orders.paced",
    max_attempts = 3,
    backoff = "fixed",
    base_delay = "100ms",
    jitter = "none",
    budget = "off"
)]
async fn paced(fail: u32, calls: &std::sync::atomic::AtomicU32) -> Result<u32, TestError> {
    let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if n <= fail { Err(TestError::Io) } else { Ok(n) }
}

#[test]
fn the_duration_is_the_calls_time_on_the_clock_it_ran_on() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let calls = std::sync::atomic::AtomicU32::new(0);
        // Two failures, two sleeps of 100 ms on the paused clock.
        assert_eq!(runtime.block_on(paced(2, &calls)), Ok(3));
    });
    let series = snapshotter.snapshot().into_vec();
    match value(
        &series,
        "steadfast_call_duration_seconds",
        &[("site", "orders.paced")],
    ) {
        Some(DebugValue::Histogram(samples)) => {
            let seconds: Vec<f64> = samples.iter().map(|s| s.into_inner()).collect();
            assert_eq!(seconds, [0.2]);
        }
        other => panic!("duration histogram: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn hedges_sent_won_and_refused_are_counted_by_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    {
        let _recorder = metrics::set_default_local_recorder(&recorder);
        support::two_slow_hedged_calls().await;
    }
    let series = snapshotter.snapshot().into_vec();
    let site = ("site", "search.query");
    for outcome in ["sent", "won", "refused"] {
        assert_eq!(
            counter(
                &series,
                "steadfast_hedges_total",
                &[site, ("outcome", outcome)]
            ),
            1,
            "{outcome}"
        );
    }
    // Two calls, one round each: a hedge is not a retry.
    assert_eq!(counter(&series, "steadfast_attempts_total", &[site]), 2);
    assert_eq!(counter(&series, "steadfast_retries_total", &[site]), 0);
}
