//! Behaviour of `Bulkhead`: the limit holds for async and blocking callers,
//! and every way an attempt can end gives its permit back.

use std::future::Future;
use std::panic;
use std::pin::Pin;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use retry_runtime::{Bulkhead, Rejected};
use tokio::time::Instant;

/// Counts attempts in flight and remembers the most seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    fn enter(&self) -> usize {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        now
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn constructible_in_a_static() {
    static SHARED: Bulkhead = Bulkhead::new(3);
    assert_eq!(SHARED.max_concurrent(), 3);
    assert_eq!(SHARED.available(), 3);
}

#[test]
fn zero_is_treated_as_one() {
    let bulkhead = Bulkhead::new(0);
    assert_eq!(bulkhead.max_concurrent(), 1);
    let permit = bulkhead.try_acquire();
    assert!(permit.is_some());
    assert!(bulkhead.try_acquire().is_none());
}

#[test]
fn huge_limit_is_clamped_not_a_panic() {
    let bulkhead = Bulkhead::new(usize::MAX);
    assert_eq!(
        bulkhead.max_concurrent(),
        tokio::sync::Semaphore::MAX_PERMITS
    );
}

#[test]
fn available_counts_permits_out() {
    let bulkhead = Bulkhead::new(3);
    let a = bulkhead.try_acquire().unwrap();
    assert_eq!(bulkhead.available(), 2);
    let b = bulkhead.try_acquire().unwrap();
    let c = bulkhead.try_acquire().unwrap();
    assert_eq!(bulkhead.available(), 0);
    assert!(bulkhead.try_acquire().is_none());
    drop(b);
    assert_eq!(bulkhead.available(), 1);
    drop((a, c));
    assert_eq!(bulkhead.available(), 3);
}

#[test]
fn futures_and_permits_are_send_and_sync() {
    fn send<T: Send>(_: &T) {}
    fn sync<T: Sync>() {}
    sync::<Bulkhead>();
    sync::<retry_runtime::Bulkhead>();
    let bulkhead = Bulkhead::new(1);
    send(&bulkhead.acquire());
    send(&bulkhead.acquire_timeout(Duration::from_secs(1)));
    let permit = bulkhead.try_acquire().unwrap();
    send(&permit);
}

#[tokio::test(start_paused = true)]
async fn peak_in_flight_equals_limit_with_50_async_callers() {
    static BULKHEAD: Bulkhead = Bulkhead::new(4);
    static IN_FLIGHT: InFlight = InFlight {
        now: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    };
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            tokio::spawn(async move {
                let _permit = BULKHEAD.acquire().await;
                IN_FLIGHT.enter();
                tokio::time::sleep(Duration::from_millis(10 + i % 7)).await;
                IN_FLIGHT.leave();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(IN_FLIGHT.peak(), 4);
    assert_eq!(BULKHEAD.available(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limit_holds_on_a_multi_thread_runtime() {
    static BULKHEAD: Bulkhead = Bulkhead::new(3);
    static IN_FLIGHT: InFlight = InFlight {
        now: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    };
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..20 {
                    let _permit = BULKHEAD.acquire().await;
                    IN_FLIGHT.enter();
                    tokio::task::yield_now().await;
                    IN_FLIGHT.leave();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(IN_FLIGHT.peak() <= 3, "peak {}", IN_FLIGHT.peak());
    assert_eq!(BULKHEAD.available(), 3);
}

#[test]
fn peak_in_flight_equals_limit_with_8_blocking_threads() {
    const LIMIT: usize = 3;
    let bulkhead = Bulkhead::new(LIMIT);
    let in_flight = InFlight::default();
    let start = Barrier::new(8);
    thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                for _ in 0..50 {
                    let _permit = bulkhead.acquire_blocking();
                    in_flight.enter();
                    // Hold the permit until the bulkhead is full (so the peak
                    // is reached for sure) or for a bounded spin; no sleeping.
                    let spin_until = std::time::Instant::now() + Duration::from_millis(2);
                    while in_flight.now.load(Ordering::SeqCst) < LIMIT
                        && std::time::Instant::now() < spin_until
                    {
                        thread::yield_now();
                    }
                    in_flight.leave();
                }
            });
        }
    });
    assert_eq!(in_flight.peak(), LIMIT);
    assert_eq!(bulkhead.available(), LIMIT);
}

#[test]
fn cancelled_waiters_take_nothing() {
    for k in 1..=5 {
        let bulkhead = Bulkhead::new(2);
        let held_a = bulkhead.try_acquire().unwrap();
        let held_b = bulkhead.try_acquire().unwrap();

        // A waiter that stays pending for k polls, then is dropped.
        let mut waiter = Box::pin(bulkhead.acquire());
        for _ in 0..k {
            assert!(poll_once(waiter.as_mut()).is_pending());
        }
        drop(waiter);
        drop((held_a, held_b));
        assert_eq!(bulkhead.available(), 2, "k = {k}");
    }
}

#[test]
fn cancelled_waiter_returns_a_permit_handed_to_it() {
    for k in 1..=5 {
        let bulkhead = Bulkhead::new(2);
        let held_a = bulkhead.try_acquire().unwrap();
        let held_b = bulkhead.try_acquire().unwrap();

        let mut waiter = Box::pin(bulkhead.acquire());
        for _ in 0..k {
            assert!(poll_once(waiter.as_mut()).is_pending());
        }
        // The released permit goes to the queued waiter, which is then
        // dropped before it is polled again: the permit must come back.
        drop(held_a);
        drop(waiter);
        assert_eq!(bulkhead.available(), 1, "k = {k}");
        drop(held_b);
        assert_eq!(bulkhead.available(), 2, "k = {k}");
    }
}

#[test]
fn attempt_dropped_mid_body_returns_its_permit() {
    let bulkhead = Bulkhead::new(2);
    let mut attempt = Box::pin(async {
        let _permit = bulkhead.acquire().await;
        std::future::pending::<()>().await;
    });
    assert!(poll_once(attempt.as_mut()).is_pending());
    assert_eq!(bulkhead.available(), 1);
    drop(attempt);
    assert_eq!(bulkhead.available(), 2);
}

#[tokio::test(start_paused = true)]
async fn attempt_cancelled_by_timeout_returns_its_permit() {
    let bulkhead = Bulkhead::new(1);
    let attempt = async {
        let _permit = bulkhead.acquire().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    let result = tokio::time::timeout(Duration::from_secs(1), attempt).await;
    assert!(result.is_err());
    assert_eq!(bulkhead.available(), 1);
}

#[test]
fn panicking_attempt_returns_its_permit() {
    let bulkhead = Bulkhead::new(1);
    thread::scope(|scope| {
        let outcome = scope
            .spawn(|| {
                panic::catch_unwind(panic::AssertUnwindSafe(|| {
                    let _permit = bulkhead.acquire_blocking();
                    assert_eq!(bulkhead.available(), 0);
                    panic!("attempt panicked while holding a permit");
                }))
            })
            .join()
            .unwrap();
        assert!(outcome.is_err());
    });
    assert_eq!(bulkhead.available(), 1);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_rejects_after_max_wait() {
    let bulkhead = Bulkhead::new(1);
    let _held = bulkhead.acquire().await;
    let start = Instant::now();
    let result = bulkhead.acquire_timeout(Duration::from_millis(250)).await;
    assert_eq!(result.err(), Some(Rejected::new()));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert_eq!(bulkhead.available(), 0);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_zero_takes_a_free_permit_and_rejects_otherwise() {
    let bulkhead = Bulkhead::new(1);
    let held = bulkhead.acquire_timeout(Duration::ZERO).await;
    assert!(held.is_ok());
    let start = Instant::now();
    assert!(bulkhead.acquire_timeout(Duration::ZERO).await.is_err());
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_succeeds_when_a_permit_frees_in_time() {
    let bulkhead = Bulkhead::new(1);
    let held = bulkhead.acquire().await;
    let start = Instant::now();
    let release = async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        drop(held);
    };
    let (_, result) = tokio::join!(
        release,
        bulkhead.acquire_timeout(Duration::from_millis(100))
    );
    let permit = result.expect("a permit was freed after 40ms");
    assert_eq!(start.elapsed(), Duration::from_millis(40));
    assert_eq!(bulkhead.available(), 0);
    drop(permit);
    assert_eq!(bulkhead.available(), 1);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_with_huge_max_wait_still_waits() {
    let bulkhead = Bulkhead::new(1);
    let held = bulkhead.acquire().await;
    let release = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(held);
    };
    let (_, result) = tokio::join!(release, bulkhead.acquire_timeout(Duration::MAX));
    assert!(result.is_ok());
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let bulkhead = Bulkhead::new(1);
    let order = std::sync::Mutex::new(Vec::new());
    let held = bulkhead.acquire().await;
    let waiter = |id: usize| {
        let bulkhead = &bulkhead;
        let order = &order;
        async move {
            let _permit = bulkhead.acquire().await;
            order.lock().unwrap().push(id);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let release = async {
        tokio::task::yield_now().await;
        drop(held);
    };
    tokio::join!(waiter(0), waiter(1), waiter(2), release);
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
}

#[test]
fn acquire_blocking_timeout_rejects_after_max_wait() {
    let bulkhead = Bulkhead::new(1);
    let _held = bulkhead.acquire_blocking();
    let start = std::time::Instant::now();
    let result = bulkhead.acquire_blocking_timeout(Duration::from_millis(3));
    assert_eq!(result.err(), Some(Rejected::new()));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(3), "waited {waited:?}");
    assert_eq!(bulkhead.available(), 0);
}

#[test]
fn acquire_blocking_timeout_succeeds_when_a_permit_frees_in_time() {
    let bulkhead = Bulkhead::new(1);
    let held = bulkhead.acquire_blocking();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            bulkhead
                .acquire_blocking_timeout(Duration::from_secs(30))
                .map(drop)
        });
        // Release once the waiter is (very likely) parked; correctness does
        // not depend on it, only which path is exercised.
        thread::sleep(Duration::from_millis(2));
        drop(held);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    });
    assert_eq!(bulkhead.available(), 1);
}

#[test]
fn blocking_and_async_callers_share_one_count() {
    static SHARED: Bulkhead = Bulkhead::new(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // An async holder blocks a thread; releasing it wakes the thread.
    let held = runtime.block_on(SHARED.acquire());
    thread::scope(|scope| {
        let blocked = scope.spawn(|| {
            let _permit = SHARED.acquire_blocking();
            assert_eq!(SHARED.available(), 0);
        });
        thread::sleep(Duration::from_millis(2));
        assert!(!blocked.is_finished());
        drop(held);
        blocked.join().unwrap();
    });
    assert_eq!(SHARED.available(), 1);

    // A blocking holder makes async callers wait.
    let held = SHARED.acquire_blocking();
    runtime.block_on(async {
        assert!(SHARED.try_acquire().is_none());
        assert!(
            SHARED
                .acquire_timeout(Duration::from_millis(1))
                .await
                .is_err()
        );
    });
    drop(held);
    runtime.block_on(async {
        let _permit = SHARED.acquire().await;
    });
    assert_eq!(SHARED.available(), 1);
}
