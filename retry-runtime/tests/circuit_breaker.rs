//! State-machine tests for `CircuitBreaker`'s defaults (consecutive
//! failures), in the style of resilience4j's
//! `CircuitBreakerStateMachineTest`: each test drives the breaker through a
//! timeline on tokio's paused clock and checks the state after every step.
//! Each option has a file of its own beside this one (`circuit_breaker_*.rs`).

mod breaker_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use breaker_support::{MS, OPEN_FOR, fail, is_rejected, record, succeed, tripped};
use retry_runtime::{CircuitBreaker, CircuitOpen, CircuitState};
use tokio::time::advance;

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
