//! Behaviour of `AdaptiveLimit` that users rely on: one count shared by
//! every reference and clone (tower-resilience's limiter over-admitted
//! with clones), no slot leaked and no sample taken by a call dropped
//! mid-flight (its second bug), waits that are cancel-safe and bounded by
//! `max_wait`, blocking and async callers in one line, and the limit
//! moving as each algorithm documents. The load scenarios are in
//! `adaptive_scenarios.rs`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use retry_runtime::{AdaptiveLimit, Rejected};

/// Counts calls in flight and remembers the most seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A limit that stays at `n`: AIMD with `min = max = n`.
fn fixed(n: u32) -> AdaptiveLimit {
    AdaptiveLimit::aimd().initial(n).min(n).max(n)
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn builders_are_const_and_the_limit_starts_where_documented() {
    static GRADIENT: AdaptiveLimit = AdaptiveLimit::gradient().initial(20).min(1).max(200);
    static AIMD: AdaptiveLimit = AdaptiveLimit::aimd().initial(12);
    static VEGAS: AdaptiveLimit = AdaptiveLimit::vegas().min_rtt_limit(4);
    // The gradient and Vegas measure the no-load latency first, at 3.
    assert_eq!(GRADIENT.limit(), 3);
    assert_eq!(VEGAS.limit(), 4);
    assert_eq!(AIMD.limit(), 12);
    assert_eq!(GRADIENT.in_flight(), 0);
    assert_eq!(GRADIENT.min_rtt(), None);
    let shown = format!("{GRADIENT:?}");
    assert!(
        shown.contains("Gradient") && shown.contains("measuring: true"),
        "{shown}"
    );
    assert!(format!("{:?}", AdaptiveLimit::default()).contains("Gradient"));
}

#[test]
fn every_arc_clone_shares_one_count_across_threads() {
    const LIMIT: usize = 3;
    let limit = Arc::new(fixed(LIMIT as u32));
    let seen = Arc::new(InFlight::default());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (limit, seen) = (Arc::clone(&limit), Arc::clone(&seen));
            thread::spawn(move || {
                for i in 0..2_000 {
                    let permit = limit.acquire_blocking();
                    seen.enter();
                    thread::yield_now();
                    seen.leave();
                    if i % 3 == 0 {
                        drop(permit);
                    } else {
                        permit.success();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(seen.peak() <= LIMIT, "{} at once", seen.peak());
    assert!(seen.peak() >= 2, "the threads did overlap");
    assert_eq!(limit.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sharing_a_static_never_over_admit() {
    static LIMIT: AdaptiveLimit = AdaptiveLimit::aimd().initial(4).min(4).max(4);
    static SEEN: InFlight = InFlight {
        now: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    };
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..200 {
                    let permit = LIMIT.acquire().await;
                    SEEN.enter();
                    tokio::task::yield_now().await;
                    SEEN.leave();
                    permit.success();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(SEEN.peak() <= 4, "{} at once", SEEN.peak());
    assert_eq!(LIMIT.in_flight(), 0);
}

/// Issue 20: "2,000 calls with every tenth dropped mid-flight:
/// `in_flight()` returns to 0", for each algorithm, with callers that
/// wait, time out waiting, and are cancelled while running.
#[tokio::test(start_paused = true)]
async fn calls_dropped_mid_flight_leak_no_slot() {
    for limit in [
        AdaptiveLimit::gradient(),
        AdaptiveLimit::aimd().initial(8),
        AdaptiveLimit::vegas(),
    ] {
        let limit: &'static AdaptiveLimit = Box::leak(Box::new(limit));
        let rejected = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..2_000u64)
            .map(|n| {
                let rejected = Arc::clone(&rejected);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_micros(250 * n)).await;
                    let call = async {
                        let permit = match limit.acquire_timeout(Duration::from_millis(5)).await {
                            Ok(permit) => permit,
                            Err(Rejected { .. }) => {
                                rejected.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        };
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        permit.success();
                    };
                    if n % 10 == 0 {
                        // Dropped mid-flight: 3 ms into the call (or its wait).
                        let _ = tokio::time::timeout(Duration::from_millis(3), call).await;
                    } else {
                        call.await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(limit.in_flight(), 0, "{limit:?}");
        assert!(format!("{limit:?}").contains("waiting: 0"), "{limit:?}");
        assert!(
            rejected.load(Ordering::Relaxed) > 0,
            "some waits hit max_wait"
        );
        // And it still admits.
        assert!(limit.try_acquire().is_some());
    }
}

/// A call cancelled after 50 ms is no sample: an AIMD limit that counts
/// any answer slower than 5 ms as a drop would back off on one, and it
/// never does; calls that answer fast grow it.
#[tokio::test(start_paused = true)]
async fn a_cancelled_call_feeds_no_sample() {
    let limit: &'static AdaptiveLimit = Box::leak(Box::new(
        AdaptiveLimit::aimd()
            .initial(4)
            .min_samples(1)
            .drop_above(Duration::from_millis(5)),
    ));
    let mut last = limit.limit();
    for round in 0..40 {
        let calls: Vec<_> = (0..4)
            .map(|i| {
                tokio::spawn(async move {
                    let permit = limit.acquire().await;
                    if i == 0 && round % 2 == 0 {
                        // Slow, and cancelled: never reported.
                        let _ = tokio::time::timeout(Duration::from_millis(50), async {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            permit.success();
                        })
                        .await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        permit.success();
                    }
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap();
        }
        let now = limit.limit();
        assert!(now >= last, "round {round}: {last} -> {now}");
        last = now;
    }
    assert!(last > 4, "fast answers grew it to {last}");
    assert_eq!(limit.in_flight(), 0);
}

/// The same calls reported as drops do lower it: what the test above
/// would see if a cancelled call were sampled.
#[tokio::test(start_paused = true)]
async fn drops_lower_an_aimd_limit() {
    let limit = AdaptiveLimit::aimd().initial(20).min_samples(1);
    for _ in 0..5 {
        tokio::time::advance(Duration::from_millis(100)).await;
        limit.try_acquire().unwrap().dropped();
    }
    // The first sample starts the first interval; each later one, an
    // interval apart, multiplies by 0.9: 20 -> 18 -> 16.2 -> 14.58 -> 13.1.
    assert_eq!(limit.limit(), 13);
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_above_drop_above_is_a_drop() {
    let limit = AdaptiveLimit::aimd()
        .initial(20)
        .min_samples(1)
        .drop_above(Duration::from_millis(5));
    limit.try_acquire().unwrap().success();
    tokio::time::advance(Duration::from_millis(100)).await;
    let permit = limit.try_acquire().unwrap();
    tokio::time::advance(Duration::from_millis(6)).await;
    permit.success();
    assert_eq!(limit.limit(), 18);
    // Exactly `drop_above` is no drop (and one in flight of 18 is
    // app-limited: held).
    tokio::time::advance(Duration::from_millis(100)).await;
    let permit = limit.try_acquire().unwrap();
    tokio::time::advance(Duration::from_millis(5)).await;
    permit.success();
    assert_eq!(limit.limit(), 18);
}

#[tokio::test(start_paused = true)]
async fn aimd_grows_by_one_an_interval_only_while_its_calls_fill_half_of_it() {
    let limit = AdaptiveLimit::aimd().initial(4).min_samples(1);
    // The first sample starts the first interval.
    limit.try_acquire().unwrap().success();
    let mut limits = Vec::new();
    for _ in 0..4 {
        // Half the limit in flight: not app-limited. The last admitted
        // reports first, so the update sees the most in flight.
        let half = limit.limit().div_ceil(2);
        let permits: Vec<_> = (0..half).map(|_| limit.try_acquire().unwrap()).collect();
        tokio::time::advance(Duration::from_millis(100)).await;
        permits.into_iter().rev().for_each(|p| p.success());
        limits.push(limit.limit());
    }
    assert_eq!(limits, [5, 6, 7, 8]);
    // One at a time fills less than half of 8: held.
    for _ in 0..3 {
        tokio::time::advance(Duration::from_millis(100)).await;
        limit.try_acquire().unwrap().success();
    }
    assert_eq!(limit.limit(), 8);
}

#[tokio::test(start_paused = true)]
async fn the_gradient_measures_its_no_load_latency_then_goes_to_initial() {
    let limit = AdaptiveLimit::gradient().initial(20).min_rtt_samples(6);
    assert_eq!(limit.limit(), 3);
    for _ in 0..2 {
        let permits: Vec<_> = (0..3).map(|_| limit.try_acquire().unwrap()).collect();
        assert!(limit.try_acquire().is_none(), "3 while measuring");
        tokio::time::advance(Duration::from_millis(10)).await;
        permits.into_iter().for_each(|p| p.success());
    }
    assert_eq!(limit.limit(), 3, "6 samples, but the interval is not over");
    tokio::time::advance(Duration::from_millis(100)).await;
    let permit = limit.try_acquire().unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    permit.success();
    assert_eq!(limit.limit(), 20);
    let min_rtt = limit.min_rtt().expect("measured");
    assert!(
        min_rtt >= Duration::from_micros(9_500) && min_rtt <= Duration::from_micros(10_500),
        "{min_rtt:?}"
    );
    assert!(format!("{limit:?}").contains("measuring: false"));
}

/// The no-load latency is measured again every `min_rtt_every` plus up to
/// 15% of it, drawn anew each time, so that replicas started together do
/// not all drop to the measuring limit in the same interval.
#[tokio::test(start_paused = true)]
async fn the_no_load_latency_is_measured_again_every_period_plus_jitter() {
    let every = Duration::from_secs(10);
    let limit = AdaptiveLimit::gradient()
        .initial(20)
        .min_rtt_samples(6)
        .min_rtt_every(every);
    let (tick, interval) = (Duration::from_millis(10), Duration::from_millis(100));
    let give_up = tokio::time::Instant::now() + every * 25;
    let (mut measuring, mut ended, mut gaps) = (true, None, Vec::new());
    while gaps.len() < 20 && tokio::time::Instant::now() < give_up {
        let permits: Vec<_> = (0..5).map_while(|_| limit.try_acquire()).collect();
        tokio::time::advance(tick).await;
        permits.into_iter().for_each(|p| p.success());
        let now = tokio::time::Instant::now();
        match (measuring, format!("{limit:?}").contains("measuring: true")) {
            (true, false) => (measuring, ended) = (false, Some(now)),
            (false, true) => {
                measuring = true;
                gaps.push(now - ended.expect("a measurement ended"));
            }
            _ => {}
        }
    }
    assert_eq!(
        gaps.len(),
        20,
        "measured again {} times: {gaps:?}",
        gaps.len()
    );
    // A measurement starts at the first update past its time.
    let latest = every.mul_f64(1.15) + interval + tick;
    assert!(
        gaps.iter().all(|gap| *gap >= every && *gap <= latest),
        "{gaps:?}"
    );
    let spread = *gaps.iter().max().unwrap() - *gaps.iter().min().unwrap();
    assert!(spread >= every.mul_f64(0.05), "no jitter: {gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn the_gradient_shrinks_on_queueing_and_halves_on_drops() {
    let limit = AdaptiveLimit::gradient()
        .initial(20)
        .min_rtt_samples(3)
        .min_samples(10);
    // Measure: 3 calls of 10 ms, and one more an interval later.
    let permits: Vec<_> = (0..3).map(|_| limit.try_acquire().unwrap()).collect();
    tokio::time::advance(Duration::from_millis(10)).await;
    permits.into_iter().for_each(|p| p.success());
    tokio::time::advance(Duration::from_millis(100)).await;
    let permit = limit.try_acquire().unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    permit.success();
    assert_eq!(limit.limit(), 20);
    // An interval of 10 calls at 20 ms, twice the no-load latency:
    // gradient 0.5, so 10 + sqrt(10) = 13.16.
    tokio::time::advance(Duration::from_millis(100)).await;
    let permits: Vec<_> = (0..10).map(|_| limit.try_acquire().unwrap()).collect();
    tokio::time::advance(Duration::from_millis(20)).await;
    permits.into_iter().for_each(|p| p.success());
    assert_eq!(limit.limit(), 13);
    // An interval whose calls all dropped: 0.5 again, 6.58 + 2.57.
    tokio::time::advance(Duration::from_millis(100)).await;
    let permits: Vec<_> = (0..10).map(|_| limit.try_acquire().unwrap()).collect();
    permits.into_iter().for_each(|p| p.dropped());
    assert_eq!(limit.limit(), 9);
}

#[tokio::test(start_paused = true)]
async fn max_wait_rejects_and_a_freed_slot_goes_to_a_waiter() {
    let limit: &'static AdaptiveLimit = Box::leak(Box::new(fixed(1)));
    let held = limit.acquire().await;
    let started = tokio::time::Instant::now();
    assert!(
        limit
            .acquire_timeout(Duration::from_millis(50))
            .await
            .is_err()
    );
    assert_eq!(started.elapsed(), Duration::from_millis(50));
    let waiter = tokio::spawn(limit.acquire_timeout(Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(held);
    let permit = waiter.await.unwrap().expect("woken by the release");
    assert_eq!(limit.in_flight(), 1);
    permit.success();
    assert_eq!(limit.in_flight(), 0);
}

/// A waiter woken by a release and then dropped before it took the slot
/// passes the wake-up on: the next waiter gets the slot.
#[test]
fn a_woken_waiter_dropped_before_it_runs_passes_the_slot_on() {
    let limit = fixed(1);
    let held = limit.try_acquire().unwrap();
    let mut first = Box::pin(limit.acquire());
    let mut second = pin!(limit.acquire());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    drop(held); // wakes `first`
    drop(first); // which never runs
    let Poll::Ready(permit) = poll_once(second.as_mut()) else {
        panic!("the wake-up was lost with the dropped waiter");
    };
    permit.success();
    assert_eq!(limit.in_flight(), 0);
}

#[test]
fn a_release_wakes_a_blocked_thread() {
    let limit: &'static AdaptiveLimit =
        Box::leak(Box::new(AdaptiveLimit::aimd().initial(1).min_samples(1)));
    let held = limit.try_acquire().unwrap();
    let waiter = thread::spawn(|| {
        limit
            .acquire_blocking_timeout(Duration::from_secs(30))
            .map(|p| p.success())
    });
    while !format!("{limit:?}").contains("waiting: 1") {
        thread::yield_now();
    }
    held.success();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    assert!(
        limit
            .acquire_blocking_timeout(Duration::from_millis(1))
            .is_ok()
    );
}

#[test]
fn a_panicking_call_gives_its_slot_back() {
    static LIMIT: AdaptiveLimit = AdaptiveLimit::aimd().initial(1);
    let result = thread::spawn(|| {
        let _permit = LIMIT.acquire_blocking();
        panic!("the call failed badly");
    })
    .join();
    assert!(result.is_err());
    assert_eq!(LIMIT.in_flight(), 0);
    assert!(LIMIT.try_acquire().is_some());
}

#[test]
fn blocking_waits_time_out_on_the_wall_clock() {
    let limit = fixed(1);
    let held = limit.acquire_blocking();
    let started = std::time::Instant::now();
    assert_eq!(
        limit
            .acquire_blocking_timeout(Duration::from_millis(20))
            .map(drop),
        Err(Rejected::new())
    );
    assert!(started.elapsed() >= Duration::from_millis(20));
    drop(held);
    // A wait too long to be an instant is a wait without a deadline.
    assert!(limit.acquire_blocking_timeout(Duration::MAX).is_ok());
}
