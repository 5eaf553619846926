//! State-machine tests for `CircuitBreaker`, in the style of resilience4j's
//! `CircuitBreakerStateMachineTest`: each test drives the breaker through a
//! timeline on tokio's paused clock and checks the state after every step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use retry_runtime::{CircuitBreaker, CircuitOpen, CircuitState};
use tokio::time::advance;

const OPEN_FOR: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

fn succeed(breaker: &CircuitBreaker) {
    breaker
        .try_acquire()
        .expect("breaker should admit the call")
        .success();
}

fn fail(breaker: &CircuitBreaker) {
    breaker
        .try_acquire()
        .expect("breaker should admit the call")
        .failure();
}

/// Records outcomes in order; `true` is a success.
fn record(breaker: &CircuitBreaker, outcomes: &[bool]) {
    for &ok in outcomes {
        if ok { succeed(breaker) } else { fail(breaker) }
    }
}

fn is_rejected(breaker: &CircuitBreaker) -> bool {
    breaker.try_acquire().err() == Some(CircuitOpen::new())
}

fn tripped(threshold: u32, probes: u32) -> CircuitBreaker {
    let breaker = CircuitBreaker::new()
        .failure_threshold(threshold)
        .open_for(OPEN_FOR)
        .half_open_probes(probes);
    for _ in 0..threshold {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    breaker
}

#[test]
fn starts_closed_with_documented_defaults() {
    let breaker = CircuitBreaker::new();
    assert_eq!(breaker.state(), CircuitState::Closed);
    let debug = format!("{breaker:?}");
    assert!(debug.contains("failure_threshold: 5"), "{debug}");
    assert!(debug.contains("open_for: 30s"), "{debug}");
    assert!(debug.contains("half_open_probes: 1"), "{debug}");
    assert_eq!(format!("{:?}", CircuitBreaker::default()), debug);
}

#[tokio::test(start_paused = true)]
async fn trips_at_exactly_the_failure_threshold() {
    let breaker = CircuitBreaker::new().failure_threshold(3);
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn default_threshold_is_five() {
    let breaker = CircuitBreaker::new();
    record(&breaker, &[false; 4]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_failure_streak() {
    let breaker = CircuitBreaker::new().failure_threshold(3);
    record(&breaker, &[false, false, true, false, false]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_closed_permit_counts_nothing() {
    let breaker = CircuitBreaker::new().failure_threshold(2);
    fail(&breaker);
    drop(breaker.try_acquire().unwrap());
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // the streak was not reset by the dropped permit
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rejects_while_open() {
    let breaker = tripped(1, 1);
    for _ in 0..10 {
        assert_eq!(breaker.try_acquire().err(), Some(CircuitOpen::new()));
        advance(OPEN_FOR / 20).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn half_opens_on_the_first_acquire_after_exactly_open_for() {
    let breaker = tripped(1, 1);
    advance(OPEN_FOR - MS).await;
    assert!(is_rejected(&breaker));
    assert_eq!(breaker.state(), CircuitState::Open);

    advance(MS).await;
    // The clock alone does not move it; the next acquire does.
    assert_eq!(breaker.state(), CircuitState::Open);
    let probe = breaker.try_acquire().expect("open_for has passed");
    assert!(probe.is_probe());
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    probe.success();
}

#[tokio::test(start_paused = true)]
async fn admits_exactly_half_open_probes_at_once() {
    let breaker = tripped(1, 3);
    advance(OPEN_FOR).await;
    let probes: Vec<_> = (0..3)
        .map(|_| breaker.try_acquire().expect("probe slot"))
        .collect();
    assert!(probes.iter().all(|p| p.is_probe()));
    assert!(is_rejected(&breaker));
    assert!(is_rejected(&breaker));
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    for probe in probes {
        probe.success();
    }
}

#[tokio::test(start_paused = true)]
async fn closes_when_all_probes_succeed_with_counts_cleared() {
    let breaker = tripped(2, 2);
    advance(OPEN_FOR).await;
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    first.success();
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    // A slot used by a successful probe is not handed out again.
    assert!(is_rejected(&breaker));
    second.success();
    assert_eq!(breaker.state(), CircuitState::Closed);

    let permit = breaker.try_acquire().unwrap();
    assert!(!permit.is_probe());
    permit.failure();
    assert_eq!(breaker.state(), CircuitState::Closed, "streak starts at 0");
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn one_probe_failure_reopens_for_a_fresh_open_for() {
    let breaker = tripped(1, 2);
    advance(OPEN_FOR).await;
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    advance(Duration::from_secs(3)).await;
    first.failure();
    assert_eq!(breaker.state(), CircuitState::Open);

    // The other probe, still running, belongs to the old half-open period.
    second.success();
    assert_eq!(breaker.state(), CircuitState::Open);

    advance(OPEN_FOR - MS).await;
    assert!(is_rejected(&breaker));
    advance(MS).await;
    let probe = breaker.try_acquire().expect("fresh open_for has passed");
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    probe.success();
}

#[tokio::test(start_paused = true)]
async fn dropping_a_probe_frees_its_slot_without_counting() {
    let breaker = tripped(1, 2);
    advance(OPEN_FOR).await;
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert!(is_rejected(&breaker));

    drop(first); // cancelled
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    let third = breaker.try_acquire().expect("the dropped probe's slot");
    assert!(is_rejected(&breaker));

    second.success();
    assert_eq!(
        breaker.state(),
        CircuitState::HalfOpen,
        "the drop was no success"
    );
    third.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_never_trips_below_min_calls() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 10)
        .min_calls(5)
        .open_for(OPEN_FOR);
    record(&breaker, &[false; 4]);
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "100% of 4 < min_calls"
    );
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_min_calls_defaults_to_the_window() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[false; 3]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);

    // min_calls may also come first, and is clamped to the window.
    let breaker = CircuitBreaker::new().min_calls(100).failure_rate(1.0, 2);
    record(&breaker, &[false]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn default_window_is_the_last_20_calls() {
    // What `#[resilient(circuit_breaker(failure_rate = 0.5))]` builds.
    assert_eq!(CircuitBreaker::DEFAULT_WINDOW, 20);
    let breaker = CircuitBreaker::new().failure_rate(0.5, CircuitBreaker::DEFAULT_WINDOW);
    // 19 calls are fewer than the window, so even all failing stays closed.
    record(&breaker, &[false; 19]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_trips_exactly_when_the_rate_is_reached() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[true, false, true]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false]); // 2 of 4
    assert_eq!(breaker.state(), CircuitState::Open);

    let breaker = CircuitBreaker::new().failure_rate(0.6, 5);
    record(&breaker, &[false, true, false, true, true]); // 2 of 5 = 0.4
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false]); // window [T F T T F] = 0.4
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false]); // window [F T T F F] = 0.6
    assert_eq!(breaker.state(), CircuitState::Open);

    let breaker = CircuitBreaker::new().failure_rate(0.3, 10);
    record(
        &breaker,
        &[true, true, true, true, true, true, true, true, false, false],
    );
    assert_eq!(breaker.state(), CircuitState::Closed, "0.2 < 0.3");
    record(&breaker, &[false]); // the oldest success slides out: 0.3
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_can_trip_on_the_success_that_reaches_min_calls() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[false, false, true]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    succeed(&breaker); // 2 of 4 failed, and now there are enough calls
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_old_outcomes_slide_out_of_the_window() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 4);
    record(&breaker, &[false, true, true, true]);
    record(&breaker, &[true, true, true, true]); // the failure has slid out
    fail(&breaker); // [T T T F]: 1 of 4
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // [T T F F]: 2 of 4
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_slides_over_many_laps_of_a_large_window() {
    let breaker = CircuitBreaker::new().failure_rate(0.5, 100);
    for lap in 0..5 {
        // 49 failures then 51 successes: every window of 100 has 49 failures.
        for i in 0..100 {
            if i < 49 {
                fail(&breaker)
            } else {
                succeed(&breaker)
            }
        }
        assert_eq!(breaker.state(), CircuitState::Closed, "lap {lap}");
    }
    // The window is now 49 F then 51 S; one more failure replaces an F.
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
    // So do the next 48; only replacing the first success changes the count.
    record(&breaker, &[false; 48]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // replaces the first success: 50 of 100
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_clamps_the_window() {
    let breaker = CircuitBreaker::new().failure_rate(1.0, u32::MAX);
    assert!(format!("{breaker:?}").contains("window: 1024"));
    record(&breaker, &[false; 1023]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn rate_mode_starts_a_fresh_window_after_closing() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 4)
        .open_for(OPEN_FOR);
    record(&breaker, &[false; 4]);
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR).await;
    succeed(&breaker); // the probe
    assert_eq!(breaker.state(), CircuitState::Closed);
    // The four old failures are not in the new window.
    record(&breaker, &[false, true, true]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    succeed(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn rate_of_zero_trips_on_any_failure_but_not_on_successes() {
    let breaker = CircuitBreaker::new().failure_rate(0.0, 3);
    record(&breaker, &[true; 10]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn stale_closed_permit_does_not_affect_a_later_generation() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(2)
        .open_for(OPEN_FOR);
    let slow_success = breaker.try_acquire().unwrap();
    let slow_failure = breaker.try_acquire().unwrap();
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);

    // Finishing while open: must not close it.
    slow_success.success();
    assert_eq!(breaker.state(), CircuitState::Open);

    advance(OPEN_FOR).await;
    succeed(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);

    fail(&breaker);
    // Finishing in a later closed period: must not add to its streak.
    slow_failure.failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_rate_permit_does_not_enter_a_later_window() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 2)
        .open_for(OPEN_FOR);
    let slow = breaker.try_acquire().unwrap();
    record(&breaker, &[false, false]);
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR).await;
    succeed(&breaker);
    succeed(&breaker);
    slow.failure();
    succeed(&breaker); // [S S] if the stale failure was ignored
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_probe_neither_counts_nor_frees_a_slot() {
    let breaker = tripped(1, 2);
    advance(OPEN_FOR).await;
    let failing = breaker.try_acquire().unwrap();
    let stale = breaker.try_acquire().unwrap();
    failing.failure();
    advance(OPEN_FOR).await;

    // Both slots of the new half-open period.
    let a = breaker.try_acquire().unwrap();
    let b = breaker.try_acquire().unwrap();
    stale.success();
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert!(is_rejected(&breaker), "a stale success frees no new slot");
    a.success();
    assert_eq!(
        breaker.state(),
        CircuitState::HalfOpen,
        "needs both new probes"
    );
    b.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_probe_failure_does_not_reopen_a_later_period() {
    let breaker = tripped(1, 2);
    advance(OPEN_FOR).await;
    let failing = breaker.try_acquire().unwrap();
    let stale = breaker.try_acquire().unwrap();
    failing.failure();
    advance(OPEN_FOR).await;

    let a = breaker.try_acquire().unwrap();
    stale.failure();
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    let b = breaker.try_acquire().unwrap();
    a.success();
    b.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_probe_drop_frees_no_slot_of_a_later_period() {
    let breaker = tripped(1, 1);
    advance(OPEN_FOR).await;
    let stale = breaker.try_acquire().unwrap();
    breaker.force_open_for(OPEN_FOR);
    advance(OPEN_FOR).await;
    let fresh = breaker.try_acquire().unwrap();
    drop(stale);
    assert!(is_rejected(&breaker));
    fresh.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn reset_closes_and_clears_counts() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(3)
        .open_for(OPEN_FOR);
    record(&breaker, &[false, false]);
    breaker.reset();
    record(&breaker, &[false, false]);
    assert_eq!(breaker.state(), CircuitState::Closed, "streak was cleared");
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);

    breaker.reset();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert!(breaker.try_acquire().is_ok());

    // From half-open, outstanding probes become stale.
    breaker.force_open_for(OPEN_FOR);
    advance(OPEN_FOR).await;
    let probe = breaker.try_acquire().unwrap();
    breaker.reset();
    probe.failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn force_open_for_opens_now_and_starts_over_when_repeated() {
    let breaker = CircuitBreaker::new().open_for(OPEN_FOR);
    breaker.force_open_for(OPEN_FOR);
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(is_rejected(&breaker));

    advance(OPEN_FOR / 2).await;
    breaker.force_open_for(OPEN_FOR); // starts open_for over
    advance(OPEN_FOR - MS).await;
    assert!(is_rejected(&breaker));
    advance(MS).await;
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn zero_open_for_half_opens_on_the_next_acquire() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(Duration::ZERO);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn huge_open_for_saturates_instead_of_panicking() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(Duration::MAX);
    fail(&breaker);
    advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert!(is_rejected(&breaker));
}

static TRANSITIONS: Mutex<Vec<(CircuitState, CircuitState)>> = Mutex::new(Vec::new());

fn log_transition(from: CircuitState, to: CircuitState) {
    TRANSITIONS.lock().unwrap().push((from, to));
}

#[tokio::test(start_paused = true)]
async fn on_state_change_sees_every_transition() {
    use CircuitState::{Closed, HalfOpen, Open};

    let breaker = CircuitBreaker::new()
        .failure_threshold(2)
        .open_for(OPEN_FOR)
        .on_state_change(log_transition);
    record(&breaker, &[false, false]); // Closed -> Open
    assert!(is_rejected(&breaker));
    advance(OPEN_FOR).await;
    fail(&breaker); // Open -> HalfOpen -> Open
    advance(OPEN_FOR).await;
    succeed(&breaker); // Open -> HalfOpen -> Closed
    breaker.reset(); // already closed: no transition
    breaker.force_open(); // Closed -> Open
    breaker.force_open(); // already open: no transition
    breaker.reset(); // Open -> Closed

    assert_eq!(
        *TRANSITIONS.lock().unwrap(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, Open),
            (Open, Closed),
        ]
    );
}

static BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_threshold(3)
    .open_for(Duration::from_secs(10));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_breaker_is_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&BREAKER);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async {
                // The permit is held across an await in a spawned task.
                let permit = BREAKER.try_acquire()?;
                tokio::task::yield_now().await;
                permit.success();
                Ok::<_, CircuitOpen>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(BREAKER.state(), CircuitState::Closed);
}

/// After the threads are done no permit is outstanding, so a half-open
/// breaker must have all of its unused probe slots free, and using them
/// must close it.
fn assert_no_leaked_probe_slots(breaker: &CircuitBreaker) {
    if breaker.state() == CircuitState::Open {
        // open_for is zero in the stress tests.
        breaker
            .try_acquire()
            .expect("open_for has passed")
            .success();
    }
    if breaker.state() == CircuitState::HalfOpen {
        let mut probes = Vec::new();
        while let Ok(probe) = breaker.try_acquire() {
            assert!(probe.is_probe());
            probes.push(probe);
        }
        assert!(!probes.is_empty(), "all probe slots leaked");
        for probe in probes {
            probe.success();
        }
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// A deterministic xorshift, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Stress {
    threads: u64,
    admitted_per_thread: u64,
    probes: u32,
    probes_fail: bool,
}

impl Stress {
    /// Every thread acquires and records until it has had
    /// `admitted_per_thread` calls admitted; returns the most probes seen
    /// running at once, and how many probes were admitted in all. A probe is counted from after it was admitted until
    /// before its outcome is recorded, a subset of the time it holds its
    /// slot, so the count can never exceed what the breaker let in.
    fn run(&self, breaker: &CircuitBreaker) -> (usize, usize) {
        let in_flight = AtomicUsize::new(0);
        let max_in_flight = AtomicUsize::new(0);
        let admitted = AtomicUsize::new(0);
        let rejected = AtomicUsize::new(0);
        let probes = AtomicUsize::new(0);
        // Without it the first thread may be done before the last starts.
        let start = Barrier::new(self.threads as usize);
        thread::scope(|scope| {
            for t in 0..self.threads {
                let (in_flight, max_in_flight) = (&in_flight, &max_in_flight);
                let (admitted, rejected, probes) = (&admitted, &rejected, &probes);
                let start = &start;
                scope.spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                    start.wait();
                    // Counting admitted calls, not attempts, keeps the amount
                    // of half-open traffic independent of how long a probe
                    // holder is descheduled while the others are rejected.
                    let mut done = 0;
                    while done < self.admitted_per_thread {
                        let Ok(permit) = breaker.try_acquire() else {
                            let n = rejected.fetch_add(1, Ordering::Relaxed);
                            // A leaked probe slot would reject forever.
                            assert!(n < 10_000_000, "stuck rejecting: {breaker:?}");
                            thread::yield_now();
                            continue;
                        };
                        done += 1;
                        admitted.fetch_add(1, Ordering::Relaxed);
                        let probe = permit.is_probe();
                        if probe {
                            probes.fetch_add(1, Ordering::Relaxed);
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            max_in_flight.fetch_max(now, Ordering::SeqCst);
                            thread::yield_now();
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                        }
                        match rng.below(10) {
                            0 => drop(permit),
                            1..=3 if !probe || self.probes_fail => permit.failure(),
                            _ => permit.success(),
                        }
                    }
                });
            }
        });
        assert_eq!(
            admitted.into_inner() as u64,
            self.threads * self.admitted_per_thread
        );
        assert!(rejected.into_inner() > 0, "never open or half-open");
        (max_in_flight.into_inner(), probes.into_inner())
    }
}

#[test]
fn stress_two_threads_never_exceed_one_probe() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .failure_threshold(2)
        .open_for(Duration::ZERO)
        .half_open_probes(1);
    let stress = Stress {
        threads: 2,
        admitted_per_thread: 50_000,
        probes: 1,
        probes_fail: true,
    };
    let (max, probes) = stress.run(&BREAKER);
    assert!(max <= stress.probes as usize, "{max} probes at once");
    assert!(
        probes > 100,
        "only {probes} probes: half-open was barely exercised"
    );
    assert_no_leaked_probe_slots(&BREAKER);
}

#[test]
fn stress_many_threads_never_exceed_half_open_probes() {
    // Probes only succeed or are dropped here: a failed probe would leave
    // the others running as stale calls next to the next period's probes,
    // which the breaker rightly ignores but this count could not tell apart.
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(Duration::ZERO)
        .half_open_probes(3);
    let stress = Stress {
        threads: 6,
        admitted_per_thread: 20_000,
        probes: 3,
        probes_fail: false,
    };
    let (max, probes) = stress.run(&BREAKER);
    assert!(max <= stress.probes as usize, "{max} probes at once");
    assert!(
        probes > 100,
        "only {probes} probes: half-open was barely exercised"
    );
    assert_no_leaked_probe_slots(&BREAKER);
}

#[test]
fn stress_rate_mode_ends_consistent() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .failure_rate(0.25, 16)
        .min_calls(8)
        .open_for(Duration::ZERO)
        .half_open_probes(1);
    let stress = Stress {
        threads: 4,
        admitted_per_thread: 20_000,
        probes: 1,
        probes_fail: true,
    };
    let (_, probes) = stress.run(&BREAKER);
    assert!(
        probes > 100,
        "only {probes} probes: half-open was barely exercised"
    );
    assert_no_leaked_probe_slots(&BREAKER);
    // The window still works after all that.
    BREAKER.reset();
    record(&BREAKER, &[true; 12]);
    record(&BREAKER, &[false; 3]); // 3 of 15 = 0.2
    assert_eq!(BREAKER.state(), CircuitState::Closed);
    fail(&BREAKER); // 4 of 16 = 0.25
    assert_eq!(BREAKER.state(), CircuitState::Open);
}

// ---------------------------------------------------------------------------
// Forced and disabled states.

const NS: Duration = Duration::from_nanos(1);

/// resilience4j `CircuitBreakerStateMachineTest.shouldStayInForcedOpenState`
/// (no time moves a FORCED_OPEN breaker), Polly's `Isolate` tests.
#[tokio::test(start_paused = true)]
async fn force_open_holds_open_past_open_for_until_reset() {
    let breaker = CircuitBreaker::new().open_for(OPEN_FOR);
    breaker.force_open();
    assert_eq!(breaker.state(), CircuitState::Open);
    assert!(breaker.is_forced_open());
    for _ in 0..3 {
        advance(OPEN_FOR * 10).await;
        assert!(is_rejected(&breaker));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    breaker.reset();
    assert!(!breaker.is_forced_open());
    succeed(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn force_open_ignores_calls_admitted_before_it() {
    let breaker = tripped(1, 1);
    advance(OPEN_FOR).await;
    let probe = breaker.try_acquire().unwrap();
    breaker.force_open();
    probe.success(); // the half-open period it belonged to is over
    assert!(breaker.is_forced_open());
    assert!(is_rejected(&breaker));
}

#[tokio::test(start_paused = true)]
async fn force_open_for_opens_for_exactly_that_long() {
    let breaker = CircuitBreaker::new().open_for(OPEN_FOR);
    let d = Duration::from_secs(3);
    breaker.force_open_for(d);
    advance(d - NS).await;
    assert!(is_rejected(&breaker));
    advance(NS).await;
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(breaker.state(), CircuitState::Closed);

    // It also ends an isolation, which then runs out like any open.
    breaker.force_open();
    breaker.force_open_for(d);
    assert!(!breaker.is_forced_open());
    advance(d).await;
    assert!(breaker.try_acquire().unwrap().is_probe());
}

/// resilience4j `shouldStayInMetricsOnlyStateAndRecordCalls`: admits, counts,
/// never trips.
#[tokio::test(start_paused = true)]
async fn a_disabled_breaker_admits_and_counts_but_never_trips() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 4)
        .open_for(OPEN_FOR);
    breaker.disable();
    assert!(breaker.is_disabled());
    assert_eq!(breaker.state(), CircuitState::Closed);
    record(&breaker, &[false; 10]);
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.calls_in_window(), 4);
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.rejected_count(), 0);

    let consecutive = CircuitBreaker::new().failure_threshold(1);
    consecutive.disable();
    record(&consecutive, &[false; 5]);
    assert_eq!(consecutive.state(), CircuitState::Closed);
}

/// `disable` on a disabled breaker leaves it as it is: an operator's switch
/// flipped twice (two admin requests, a config reload) must not wipe the
/// counts that disabling keeps for observation, nor make the calls already
/// admitted stale.
#[tokio::test(start_paused = true)]
async fn disabling_twice_keeps_the_counts_and_the_calls_in_flight() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 10)
        .open_for(OPEN_FOR);
    breaker.disable();
    record(&breaker, &[false, true, false]);
    let in_flight = breaker.try_acquire().unwrap();
    breaker.disable();
    assert!(breaker.is_disabled());
    assert_eq!(breaker.calls_in_window(), 3);
    in_flight.failure();
    assert_eq!(breaker.calls_in_window(), 4, "still of this period");
    assert_eq!(breaker.current_failure_rate(), Some(0.75));
}

#[tokio::test(start_paused = true)]
async fn enable_closes_a_disabled_breaker_with_fresh_counts() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(2)
        .open_for(OPEN_FOR);
    breaker.disable();
    let before = breaker.try_acquire().unwrap();
    record(&breaker, &[false, false, false]);
    breaker.enable();
    assert!(!breaker.is_disabled());
    before.failure(); // admitted while disabled: stale
    fail(&breaker); // threshold - 1: the disabled streak was not carried over
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // threshold
    assert_eq!(breaker.state(), CircuitState::Open);

    breaker.enable(); // not disabled: left open
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn disable_admits_at_once_from_open_and_reset_ends_it() {
    let breaker = tripped(1, 1);
    breaker.disable();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert!(!breaker.try_acquire().unwrap().is_probe());
    breaker.reset();
    assert!(!breaker.is_disabled());
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
    // A forced open takes it out of disabled too.
    breaker.disable();
    breaker.force_open();
    assert!(!breaker.is_disabled());
    assert!(is_rejected(&breaker));
}

// ---------------------------------------------------------------------------
// Observation without a permit.

/// failsafe `CircuitBreakerTest.testRecordFailure` / resilience4j `onError`.
#[tokio::test(start_paused = true)]
async fn record_failure_trips_at_exactly_the_threshold() {
    let breaker = CircuitBreaker::new().failure_threshold(3);
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
    breaker.record_success(); // ends the streak
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn outcomes_without_a_permit_are_ignored_while_open_or_half_open() {
    let breaker = tripped(1, 1);
    breaker.record_success();
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR).await;
    let probe = breaker.try_acquire().unwrap();
    breaker.record_failure(); // does not reopen
    breaker.record_success(); // does not close
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    probe.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// resilience4j `CircuitBreakerMetricsTest`: failure rate and buffered calls.
#[tokio::test(start_paused = true)]
async fn the_window_reports_its_failure_rate_and_calls() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.75, 4)
        .open_for(OPEN_FOR);
    assert_eq!(breaker.current_failure_rate(), None);
    assert_eq!(breaker.calls_in_window(), 0);
    record(&breaker, &[true, false]);
    assert_eq!(breaker.current_failure_rate(), Some(0.5));
    assert_eq!(breaker.calls_in_window(), 2);
    record(&breaker, &[true, true, true]); // the first success slides out
    assert_eq!(breaker.calls_in_window(), 4);
    assert_eq!(breaker.current_failure_rate(), Some(0.25));
    record(&breaker, &[false, false]); // 2 of 4: below 0.75
    assert_eq!(breaker.current_failure_rate(), Some(0.5));
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker); // 3 of 4: at the rate, trips
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.current_failure_rate(), None, "no window while open");
    assert_eq!(breaker.calls_in_window(), 0);

    let consecutive = CircuitBreaker::new();
    consecutive.record_failure();
    assert_eq!(consecutive.current_failure_rate(), None);
    assert_eq!(consecutive.calls_in_window(), 0);
}

/// resilience4j `getNumberOfNotPermittedCalls`.
#[tokio::test(start_paused = true)]
async fn rejected_count_counts_refusals_only() {
    let breaker = tripped(1, 2);
    assert_eq!(breaker.rejected_count(), 0);
    assert!(is_rejected(&breaker));
    advance(OPEN_FOR - NS).await;
    assert!(is_rejected(&breaker));
    assert_eq!(breaker.rejected_count(), 2);
    advance(NS).await;
    let a = breaker.try_acquire().unwrap();
    let b = breaker.try_acquire().unwrap();
    assert!(is_rejected(&breaker)); // both probe slots taken
    assert_eq!(breaker.rejected_count(), 3);
    a.success();
    b.success();
    succeed(&breaker);
    breaker.reset();
    assert_eq!(
        breaker.rejected_count(),
        3,
        "admitted calls and resets add nothing"
    );
}

// ---------------------------------------------------------------------------
// Open-duration backoff.

/// Polly `BreakDurationGenerator` (failure count -> duration), failsafe
/// `withDelayFn`: each reopen in a row multiplies the open time, up to the
/// cap; a close starts over.
#[tokio::test(start_paused = true)]
async fn each_reopen_in_a_row_stays_open_longer_up_to_the_cap() {
    let s = Duration::from_secs;
    let breaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(s(10))
        .open_for_backoff(2.0, s(35));

    async fn open_exactly(
        breaker: &CircuitBreaker,
        d: Duration,
    ) -> retry_runtime::BreakerPermit<'_> {
        advance(d - NS).await;
        assert!(is_rejected(breaker), "open for less than {d:?}");
        advance(NS).await;
        let probe = breaker.try_acquire().expect("half-open after {d:?}");
        assert!(probe.is_probe());
        probe
    }

    fail(&breaker); // trip from closed: open_for
    for d in [s(10), s(20), s(35), s(35)] {
        open_exactly(&breaker, d).await.failure();
    }
    open_exactly(&breaker, s(35)).await.success();
    assert_eq!(breaker.state(), CircuitState::Closed);

    fail(&breaker); // closed in between: back to open_for
    open_exactly(&breaker, s(10)).await.failure();
    open_exactly(&breaker, s(20)).await.failure();
    breaker.reset(); // a reset starts over too
    fail(&breaker);
    open_exactly(&breaker, s(10)).await.failure();
    open_exactly(&breaker, s(20)).await.success();
}

#[tokio::test(start_paused = true)]
async fn without_backoff_every_reopen_lasts_open_for() {
    let breaker = tripped(1, 1);
    for _ in 0..3 {
        advance(OPEN_FOR).await;
        fail(&breaker);
        advance(OPEN_FOR - NS).await;
        assert!(is_rejected(&breaker));
        advance(NS).await;
        assert!(breaker.try_acquire().is_ok());
        breaker.force_open_for(OPEN_FOR);
    }
}

// ---------------------------------------------------------------------------
// Half-open judged by a rate.

fn judged(probes: u32, rate: f64) -> CircuitBreaker {
    let breaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(OPEN_FOR)
        .half_open_probes(probes)
        .half_open_failure_rate(rate);
    fail(&breaker);
    breaker
}

/// Reports `failures` failed probes, then successes, out of `probes`.
fn probe_round(breaker: &CircuitBreaker, probes: u32, failures: u32) {
    let permits: Vec<_> = (0..probes)
        .map(|_| breaker.try_acquire().unwrap())
        .collect();
    assert!(is_rejected(breaker), "only {probes} probes");
    for (i, permit) in permits.into_iter().enumerate() {
        assert!(permit.is_probe());
        assert_eq!(
            breaker.state(),
            CircuitState::HalfOpen,
            "judged before all reported"
        );
        if (i as u32) < failures {
            permit.failure()
        } else {
            permit.success()
        }
    }
}

/// resilience4j `shouldTransitionToClosedStateWhenFailureRateBelowThreshold...`
/// and `...ToOpenStateIfFailureRateAboveThreshold` in the half-open state.
#[tokio::test(start_paused = true)]
async fn a_half_open_rate_judges_all_probes_at_exactly_the_rate() {
    // 4 probes at 0.5: 1 failure (below) closes, 2 (at the rate) reopen.
    let breaker = judged(4, 0.5);
    advance(OPEN_FOR).await;
    probe_round(&breaker, 4, 1);
    assert_eq!(breaker.state(), CircuitState::Closed);

    let breaker = judged(4, 0.5);
    advance(OPEN_FOR).await;
    probe_round(&breaker, 4, 2);
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR - NS).await;
    assert!(is_rejected(&breaker), "reopened for a fresh open_for");
    advance(NS).await;
    probe_round(&breaker, 4, 0);
    assert_eq!(breaker.state(), CircuitState::Closed);

    // A rate of 0.0 reopens on any failure; 1.0 only when all fail.
    let strict = judged(3, 0.0);
    advance(OPEN_FOR).await;
    probe_round(&strict, 3, 1);
    assert_eq!(strict.state(), CircuitState::Open);
    let lenient = judged(3, 1.0);
    advance(OPEN_FOR).await;
    probe_round(&lenient, 3, 2);
    assert_eq!(lenient.state(), CircuitState::Closed);
    let lenient = judged(3, 1.0);
    advance(OPEN_FOR).await;
    probe_round(&lenient, 3, 3);
    assert_eq!(lenient.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_frees_its_slot_under_a_half_open_rate() {
    let breaker = judged(2, 0.5);
    advance(OPEN_FOR).await;
    let failed = breaker.try_acquire().unwrap();
    let dropped = breaker.try_acquire().unwrap();
    failed.failure();
    assert!(is_rejected(&breaker), "a failed probe keeps its slot");
    drop(dropped);
    let again = breaker.try_acquire().unwrap();
    assert!(again.is_probe());
    again.success();
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "1 of 2 failed: rate 0.5 reached"
    );
}

#[test]
fn debug_shows_the_new_options_only_when_set() {
    let plain = format!("{:?}", CircuitBreaker::new());
    assert!(!plain.contains("open_multiplier") && !plain.contains("half_open_failure_rate"));
    let set = format!(
        "{:?}",
        CircuitBreaker::new()
            .open_for_backoff(2.0, Duration::from_secs(60))
            .half_open_failure_rate(0.5)
    );
    assert!(set.contains("open_multiplier: 2.0"), "{set}");
    assert!(set.contains("open_max: 60s"), "{set}");
    assert!(set.contains("half_open_failure_rate: 0.5"), "{set}");
}

// ---- Slow calls (`slow_call`) ----

const SLOW: Duration = Duration::from_secs(1);

/// Makes one call that takes `took` on the paused clock, then reports it.
async fn timed(breaker: &CircuitBreaker, took: Duration, ok: bool) {
    let permit = breaker
        .try_acquire()
        .expect("breaker should admit the call");
    advance(took).await;
    if ok {
        permit.success()
    } else {
        permit.failure()
    }
}

#[tokio::test(start_paused = true)]
async fn slow_call_threshold_is_exclusive() {
    // resilience4j `CircuitBreakerMetrics.onSuccess`: slow when
    // `duration > slowCallDurationThreshold`.
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 10)
        .slow_call(SLOW, 1.0);
    timed(&breaker, SLOW - NS, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(0.0));
    timed(&breaker, SLOW, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(0.0), "exactly the threshold");
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(1.0 / 3.0));
    assert_eq!(breaker.state(), CircuitState::Closed, "below min_calls");
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_trips_at_the_rate_not_below() {
    // resilience4j `CircuitBreakerStateMachineTest`
    // `shouldOpenWhenSlowCallRateAboveThreshold` in spirit: 2 of 4 slow.
    let at = CircuitBreaker::new()
        .failure_rate(1.0, 4)
        .slow_call(SLOW, 0.5);
    let above = CircuitBreaker::new()
        .failure_rate(1.0, 4)
        .slow_call(SLOW, 0.51);
    for breaker in [&at, &above] {
        timed(breaker, SLOW + NS, true).await;
        timed(breaker, Duration::ZERO, true).await;
        timed(breaker, SLOW + NS, true).await;
        assert_eq!(breaker.state(), CircuitState::Closed, "3 calls < window");
        timed(breaker, Duration::ZERO, true).await;
    }
    assert_eq!(at.state(), CircuitState::Open, "0.5 >= 0.5");
    assert_eq!(above.state(), CircuitState::Closed, "0.5 < 0.51");
    assert_eq!(above.slow_call_rate(), Some(0.5));
    assert_eq!(above.current_failure_rate(), Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_waits_for_min_calls() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 10)
        .min_calls(3)
        .slow_call(SLOW, 0.5);
    timed(&breaker, SLOW + NS, true).await;
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.state(), CircuitState::Closed, "min_calls - 1");
    assert_eq!(breaker.slow_call_rate(), Some(1.0));
    // A fast success that reaches min_calls may trip on the slow calls
    // before it: 2 of 3.
    timed(&breaker, Duration::ZERO, true).await;
    assert_eq!(breaker.state(), CircuitState::Open, "min_calls");
}

#[tokio::test(start_paused = true)]
async fn a_slow_failure_counts_as_both() {
    // resilience4j `SlidingTimeWindowMetricsTest.slowCallsPercentage`:
    // a SLOW_ERROR is a failed call and a slow call.
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 10)
        .slow_call(SLOW, 1.0);
    timed(&breaker, SLOW * 10, true).await;
    timed(&breaker, SLOW * 10, false).await;
    for _ in 0..3 {
        timed(&breaker, Duration::from_millis(100), true).await;
    }
    assert_eq!(breaker.calls_in_window(), 5);
    assert_eq!(breaker.slow_call_rate(), Some(0.4));
    assert_eq!(breaker.current_failure_rate(), Some(0.2));
}

#[tokio::test(start_paused = true)]
async fn slow_calls_slide_out_of_the_count_window() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 3)
        .slow_call(SLOW, 1.0);
    timed(&breaker, SLOW + NS, true).await;
    timed(&breaker, Duration::ZERO, true).await;
    timed(&breaker, Duration::ZERO, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(1.0 / 3.0));
    timed(&breaker, Duration::ZERO, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(0.0), "the slow call left");
}

#[tokio::test(start_paused = true)]
async fn either_rate_trips_the_breaker() {
    let breaker = CircuitBreaker::new()
        .failure_rate(0.5, 2)
        .slow_call(SLOW, 1.0);
    timed(&breaker, Duration::ZERO, true).await;
    timed(&breaker, Duration::ZERO, false).await;
    assert_eq!(breaker.state(), CircuitState::Open, "failure rate 0.5");
}

#[tokio::test(start_paused = true)]
async fn consecutive_mode_judges_slow_calls_over_a_window_of_their_own() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(3)
        .min_calls(4)
        .slow_call(SLOW, 0.5);
    assert_eq!(breaker.current_failure_rate(), None, "no failure rate");
    timed(&breaker, SLOW + NS, true).await;
    timed(&breaker, Duration::ZERO, false).await;
    timed(&breaker, SLOW + NS, false).await;
    assert_eq!(breaker.calls_in_window(), 3);
    assert_eq!(breaker.slow_call_rate(), Some(2.0 / 3.0));
    assert_eq!(breaker.state(), CircuitState::Closed, "3 calls < min_calls");
    timed(&breaker, Duration::ZERO, true).await; // ends the streak at 2
    assert_eq!(breaker.state(), CircuitState::Open, "2 of 4 slow");
}

#[tokio::test(start_paused = true)]
async fn consecutive_mode_with_slow_calls_still_trips_on_the_streak() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(3)
        .slow_call(SLOW, 0.5);
    fail(&breaker);
    fail(&breaker);
    succeed(&breaker); // the streak starts over
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.slow_call_rate(), None, "open: no window");
    assert!(format!("{breaker:?}").contains("slow_call: (1s, 0.5)"));
}

#[tokio::test(start_paused = true)]
async fn a_slow_probe_counts_as_a_failed_one() {
    let breaker = CircuitBreaker::new()
        .failure_threshold(1)
        .open_for(OPEN_FOR)
        .slow_call(SLOW, 1.0);
    fail(&breaker);
    advance(OPEN_FOR).await;
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.state(), CircuitState::Open, "slow probe reopens");
    advance(OPEN_FOR).await;
    timed(&breaker, SLOW, true).await;
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "a probe at the threshold"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_slow_call_does_not_enter_a_later_window() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 2)
        .slow_call(SLOW, 0.5);
    let stale = breaker.try_acquire().unwrap();
    breaker.reset();
    advance(SLOW * 2).await;
    stale.success();
    assert_eq!(breaker.slow_call_rate(), None);
    assert_eq!(breaker.calls_in_window(), 0);
}

#[tokio::test(start_paused = true)]
async fn outcomes_without_a_permit_are_never_slow() {
    let breaker = CircuitBreaker::new()
        .failure_rate(1.0, 2)
        .slow_call(Duration::ZERO, 0.0);
    breaker.record_success();
    breaker.record_failure();
    assert_eq!(breaker.slow_call_rate(), Some(0.0));
}

// ---- Time-based window (`failure_rate_over`) ----

const PERIOD: Duration = Duration::from_secs(10);

fn over_period(rate: f64, min_calls: u32) -> CircuitBreaker {
    CircuitBreaker::new()
        .failure_rate_over(rate, PERIOD)
        .min_calls(min_calls)
}

#[tokio::test(start_paused = true)]
async fn time_window_keeps_an_outcome_until_its_bucket_leaves() {
    // 10 buckets of 1 s: a failure at 0 counts until 10 s - 1 ns.
    let breaker = over_period(1.0, 100);
    breaker.record_failure();
    advance(PERIOD - NS).await;
    assert_eq!(breaker.calls_in_window(), 1);
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
    advance(NS).await;
    assert_eq!(breaker.calls_in_window(), 0, "bucket 0 left at 10 s");
    assert_eq!(breaker.current_failure_rate(), None);
}

#[tokio::test(start_paused = true)]
async fn time_window_slides_by_whole_buckets() {
    // resilience4j `SlidingTimeWindowMetricsTest.slidingTimeWindowMetrics`,
    // with its 5 s window of 1 s buckets as 10 buckets of 500 ms.
    let breaker = CircuitBreaker::new()
        .failure_rate_over(1.0, Duration::from_secs(5))
        .min_calls(100);
    let check = |calls: u32, failures: u32| {
        assert_eq!(breaker.calls_in_window(), calls);
        assert_eq!(
            breaker.current_failure_rate(),
            Some(f64::from(failures) / f64::from(calls))
        );
    };
    breaker.record_failure();
    check(1, 1);
    advance(100 * MS).await;
    breaker.record_success();
    check(2, 1);
    advance(100 * MS).await;
    breaker.record_success();
    check(3, 1);
    for (outcome, calls, failures) in [
        (true, 4, 1),
        (true, 5, 1),
        (false, 6, 2),
        (true, 7, 2),
        (true, 5, 1),
        (true, 5, 1),
    ] {
        advance(Duration::from_secs(1)).await;
        if outcome {
            breaker.record_success();
        } else {
            breaker.record_failure();
        }
        check(calls, failures);
    }
    advance(Duration::from_secs(5)).await;
    breaker.record_success();
    check(1, 0);
}

#[tokio::test(start_paused = true)]
async fn time_window_waits_for_min_calls() {
    let breaker = over_period(0.5, 3);
    breaker.record_failure();
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed, "min_calls - 1");
    breaker.record_success();
    assert_eq!(breaker.state(), CircuitState::Open, "2 of 3 at min_calls");
}

#[tokio::test(start_paused = true)]
async fn time_window_min_calls_defaults_to_20() {
    let breaker = CircuitBreaker::new().failure_rate_over(0.5, PERIOD);
    for _ in 0..19 {
        breaker.record_failure();
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn time_window_trips_at_the_rate_not_below() {
    let at = over_period(0.5, 4);
    let above = over_period(0.51, 4);
    for breaker in [&at, &above] {
        record(breaker, &[true, false, true, false]);
    }
    assert_eq!(at.state(), CircuitState::Open, "0.5 >= 0.5");
    assert_eq!(above.state(), CircuitState::Closed, "0.5 < 0.51");
}

#[tokio::test(start_paused = true)]
async fn time_window_forgets_failures_older_than_the_period() {
    let breaker = over_period(0.5, 4);
    record(&breaker, &[false, false, false]);
    advance(PERIOD).await;
    record(&breaker, &[false, true, true]);
    // With the old failures, 4 of 6 would have tripped it.
    assert_eq!(breaker.state(), CircuitState::Closed, "old failures left");
    assert_eq!(breaker.calls_in_window(), 3);
    breaker.record_failure();
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "2 of 4 within the period"
    );
}

#[tokio::test(start_paused = true)]
async fn time_window_starts_empty_after_a_trip_and_a_close() {
    let breaker = over_period(0.5, 2).open_for(OPEN_FOR);
    record(&breaker, &[false, false]);
    assert_eq!(breaker.state(), CircuitState::Open);
    advance(OPEN_FOR / 2).await; // not a whole period later
    advance(OPEN_FOR / 2).await;
    succeed(&breaker); // the probe closes it
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.calls_in_window(), 0, "a fresh window");
    breaker.record_failure();
    assert_eq!(breaker.state(), CircuitState::Closed, "1 call < min_calls");
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
}

#[tokio::test(start_paused = true)]
async fn time_window_is_cleared_by_reset_and_counts_while_disabled() {
    let breaker = over_period(0.5, 2);
    breaker.record_failure();
    breaker.reset();
    assert_eq!(breaker.calls_in_window(), 0);
    breaker.disable();
    record(&breaker, &[false, false, false]);
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "disabled never trips"
    );
    assert_eq!(breaker.current_failure_rate(), Some(1.0));
    breaker.enable();
    assert_eq!(breaker.calls_in_window(), 0);
}

#[tokio::test(start_paused = true)]
async fn time_window_judges_slow_calls_too() {
    let breaker = over_period(1.0, 2).slow_call(SLOW, 0.5);
    timed(&breaker, SLOW + NS, true).await;
    assert_eq!(breaker.slow_call_rate(), Some(1.0));
    advance(PERIOD).await; // the slow call's bucket left
    assert_eq!(breaker.slow_call_rate(), None);
    timed(&breaker, Duration::ZERO, true).await;
    timed(&breaker, SLOW + NS, false).await;
    assert_eq!(breaker.state(), CircuitState::Open, "1 of 2 slow");
}

#[tokio::test(start_paused = true)]
async fn time_window_period_is_at_least_10ms() {
    let breaker = CircuitBreaker::new()
        .failure_rate_over(1.0, Duration::ZERO)
        .min_calls(100);
    assert!(format!("{breaker:?}").contains("period: 10ms"));
    breaker.record_failure();
    advance(10 * MS - NS).await;
    assert_eq!(breaker.calls_in_window(), 1);
    advance(NS).await;
    assert_eq!(breaker.calls_in_window(), 0);
}

#[test]
fn time_window_shares_outcomes_across_threads() {
    let breaker = CircuitBreaker::new()
        .failure_rate_over(1.0, Duration::from_secs(3600))
        .min_calls(u32::MAX);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = rt.enter();
    let barrier = Barrier::new(4);
    thread::scope(|s| {
        for i in 0..4 {
            let (breaker, barrier) = (&breaker, &barrier);
            let handle = rt.handle().clone();
            s.spawn(move || {
                let _guard = handle.enter();
                barrier.wait();
                for n in 0..1000 {
                    if (n + i) % 4 == 0 {
                        breaker.record_failure();
                    } else {
                        breaker.record_success();
                    }
                }
            });
        }
    });
    assert_eq!(breaker.calls_in_window(), 4000, "no outcome lost");
    assert_eq!(breaker.current_failure_rate(), Some(0.25));
}
