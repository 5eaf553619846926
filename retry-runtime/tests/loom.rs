//! loom models of the lock-free primitives: every interleaving of a few
//! threads (up to a preemption bound) is explored, and each model asserts a
//! figure that must hold in all of them.
//!
//! ```text
//! RUSTFLAGS="--cfg steadfast_loom" cargo test -p retry-runtime --test loom --release
//! ```
//!
//! `steadfast_loom` (not `loom`: tokio reacts to that name) swaps the
//! runtime's atomics for loom's (`src/sync.rs`). The clock is not modelled:
//! every model is built so that no time needs to pass (`open_for` zero or
//! far away, rates per hour), and holds whatever the wall clock does during
//! the run. Preemptions are bounded (2 for the two largest breaker models,
//! 3 elsewhere): the whole file runs in about 7 s in release on 2 cores
//! (bound 3 everywhere: about a minute). `LOOM_MAX_PREEMPTIONS` overrides
//! the bounds set here. The budget's first deposit is made before the
//! threads start: it initialises a std `OnceLock`, which loom does not see.
//! Each model was checked against a mutant of the code it guards (probe
//! over-admission, a dropped compare-and-swap retry, a leaked probe slot, a
//! non-atomic token take, a lost deposit; for the adaptive limit, a
//! non-atomic admission and a new limit written over a concurrent
//! release), and failed on each.
//!
//! | model | figure asserted |
//! |---|---|
//! | `half_open_never_admits_more_than_its_probes` | probes held at once <= `half_open_probes` (2), 3 threads; the breaker closes afterwards |
//! | `a_failed_probe_reopens_and_nothing_leaks` | a failed probe reopens; no probe slot leaks; the breaker recovers |
//! | `no_failure_is_lost_at_the_trip_threshold` | 3 concurrent failures, threshold 3: always Open, exactly 1 Closed->Open |
//! | `no_failure_is_lost_in_the_rate_window` | 2 concurrent failures, rate 1.0 over 2 calls: always Open |
//! | `stale_outcomes_do_not_move_the_breaker` | a permit from before a concurrent trip + reset changes nothing |
//! | `rate_limiter_never_grants_more_than_the_burst` | tokens granted == burst (2) exactly, 3 threads, weighted and single |
//! | `budget_never_grants_more_than_it_holds` | ratio 1, no reserve, 2 calls racing 3 retries: granted <= 2; none lost: granted + left == 2 |
//! | `adaptive_limit_never_admits_past_its_limit` | a fresh limit of 2 (its first limit set by whichever caller is refused first), 3 threads through one `Arc`, one reporting, two cancelled: held at once <= 2; in flight 0 afterwards |
//!
//! Two models live inside the crate, beside what they check. The adaptive
//! limit's update (a new limit racing admissions and releases) needs time
//! to pass, so it is modelled on the gate itself
//! (`adaptive::gate::loom_models`). The shared breaker's view of its probe
//! lease needs Redis to be reached from the outside, so it is modelled on
//! the view (`circuit_breaker::view::loom_models`: a lease answer landing
//! around a close is dropped before the lease is given back on Redis; a
//! probe's request for the lease is heard). Both run with
//! `RUSTFLAGS="--cfg steadfast_loom" CARGO_TARGET_DIR=target/loom cargo test -p retry-runtime --lib --release loom_models`.
#![cfg(steadfast_loom)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::AtomicUsize;
use loom::thread;
use retry_runtime::{AdaptiveLimit, CircuitBreaker, CircuitState, RateLimiter, RetryBudget};

/// A bounded model: `preemption_bound` keeps each run to seconds while still
/// covering every interleaving with up to that many forced switches.
fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    builder.check(f);
}

/// Probe permits held right now, and the most ever held at once.
struct Held {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Held {
    fn new() -> Self {
        Held {
            now: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    fn enter(&self) {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

#[test]
fn half_open_never_admits_more_than_its_probes() {
    const PROBES: usize = 2;
    model(2, || {
        let breaker = Arc::new(
            CircuitBreaker::new()
                .open_for(Duration::ZERO)
                .half_open_probes(PROBES as u32),
        );
        breaker.force_open_for(Duration::ZERO);
        let held = Arc::new(Held::new());
        // Three callers: one reports success, one is cancelled (drops its
        // permit), one tries twice, so slots are freed and retaken.
        let threads: Vec<_> = (0..3)
            .map(|id| {
                let (breaker, held) = (breaker.clone(), held.clone());
                thread::spawn(move || {
                    let tries = if id == 2 { 2 } else { 1 };
                    let mut admitted = 0;
                    for _ in 0..tries {
                        let Ok(permit) = breaker.try_acquire() else {
                            continue;
                        };
                        admitted += 1;
                        if !permit.is_probe() {
                            // Closed again: an ordinary call.
                            permit.success();
                            continue;
                        }
                        held.enter();
                        held.leave();
                        match id {
                            1 => drop(permit),
                            _ => permit.success(),
                        }
                    }
                    admitted
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(admitted >= 1, "the first caller after open_for is a probe");
        assert!(
            held.peak.load(SeqCst) <= PROBES,
            "{} probes held at once, half_open_probes = {PROBES}",
            held.peak.load(SeqCst)
        );
        // Consistent end state: nothing is held, so the breaker either closed
        // or has a free probe slot, and successful probes close it.
        for _ in 0..PROBES {
            if breaker.state() == CircuitState::Closed {
                break;
            }
            assert_eq!(breaker.state(), CircuitState::HalfOpen);
            let permit = breaker.try_acquire().expect("a probe slot leaked");
            assert!(permit.is_probe());
            permit.success();
        }
        assert_eq!(breaker.state(), CircuitState::Closed);
        breaker.try_acquire().unwrap().success();
    });
}

#[test]
fn a_failed_probe_reopens_and_nothing_leaks() {
    model(2, || {
        let breaker = Arc::new(
            CircuitBreaker::new()
                .open_for(Duration::ZERO)
                .half_open_probes(2),
        );
        breaker.force_open_for(Duration::ZERO);
        let outcomes = [0u8, 1, 2]; // fail, succeed, cancel
        let threads: Vec<_> = outcomes
            .into_iter()
            .map(|outcome| {
                let breaker = breaker.clone();
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        match outcome {
                            0 => permit.failure(),
                            1 => permit.success(),
                            _ => drop(permit),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Whatever happened, no slot is held any more: open_for is zero, so
        // two successful probes in a row (the slots are all free) close it.
        for _ in 0..2 {
            if breaker.state() == CircuitState::Closed {
                break;
            }
            let permit = breaker.try_acquire().expect("a probe slot leaked");
            assert!(permit.is_probe());
            permit.success();
        }
        assert_eq!(breaker.state(), CircuitState::Closed);
    });
}

static TRIPS: StdAtomicUsize = StdAtomicUsize::new(0);

fn count_trips(from: CircuitState, to: CircuitState) {
    if from == CircuitState::Closed && to == CircuitState::Open {
        TRIPS.fetch_add(1, SeqCst);
    }
}

#[test]
fn no_failure_is_lost_at_the_trip_threshold() {
    // loom runs every execution of a model on this test's own thread, one
    // after the other, so a static reset per execution is exact.
    model(3, || {
        TRIPS.store(0, SeqCst);
        let breaker = Arc::new(
            CircuitBreaker::new()
                .failure_threshold(3)
                .open_for(Duration::from_secs(3600))
                .on_state_change(count_trips),
        );
        // Three permits admitted while closed, then failing concurrently.
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || breaker.try_acquire().unwrap().failure())
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(breaker.state(), CircuitState::Open, "a failure was lost");
        assert_eq!(TRIPS.load(SeqCst), 1, "tripped more than once");
        assert!(breaker.try_acquire().is_err());
    });
}

#[test]
fn no_failure_is_lost_in_the_rate_window() {
    model(3, || {
        let breaker = Arc::new(
            CircuitBreaker::new()
                .failure_rate(1.0, 2)
                .open_for(Duration::from_secs(3600)),
        );
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || breaker.try_acquire().unwrap().failure())
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Both failures must be seen by whichever call checks last.
        assert_eq!(breaker.state(), CircuitState::Open, "a failure was lost");
    });
}

#[test]
fn stale_outcomes_do_not_move_the_breaker() {
    model(3, || {
        let breaker = Arc::new(
            CircuitBreaker::new()
                .failure_threshold(1)
                .open_for(Duration::from_secs(3600)),
        );
        // Admitted while closed; reported after another call tripped it.
        let stale = breaker.try_acquire().unwrap();
        let tripper = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.try_acquire().unwrap().failure())
        };
        let resetter = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.reset())
        };
        tripper.join().unwrap();
        resetter.join().unwrap();
        // Closed again (reset last) or open (the trip came after the reset).
        let before = breaker.state();
        // The reset began a new generation, so the old permit's failure must
        // count for nothing, whichever order the others ran in.
        stale.failure();
        assert_eq!(breaker.state(), before, "a stale outcome moved the breaker");
        if before == CircuitState::Open {
            assert!(breaker.try_acquire().is_err(), "still open for an hour");
        } else {
            // The stale failure did not start a streak: one new failure trips.
            breaker.try_acquire().unwrap().failure();
            assert_eq!(breaker.state(), CircuitState::Open);
        }
    });
}

#[test]
fn rate_limiter_never_grants_more_than_the_burst() {
    const BURST: u32 = 2;
    model(3, || {
        // One token every 30 minutes: nothing refills during the model.
        let limiter = Arc::new(RateLimiter::per_hour(2).burst(BURST));
        let takes = [2u32, 1, 1];
        let threads: Vec<_> = takes
            .into_iter()
            .map(|n| {
                let limiter = limiter.clone();
                thread::spawn(move || if limiter.try_acquire_n(n) { n } else { 0 })
            })
            .collect();
        let granted: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(granted <= BURST, "{granted} tokens granted, burst {BURST}");
        // None lost either: the bucket is empty exactly when the burst was
        // handed out.
        let left = (1..=BURST).rev().find(|&n| limiter.try_acquire_n(n));
        assert_eq!(granted + left.unwrap_or(0), BURST, "tokens lost");
    });
}

#[test]
fn budget_never_grants_more_than_it_holds() {
    const DEPOSITS: usize = 2;
    model(3, || {
        // Each call funds exactly one retry, no reserve; an hour-long window
        // so nothing expires during the model.
        let budget = Arc::new(
            RetryBudget::new()
                .ratio(1.0)
                .min_per_second(0)
                .ttl(Duration::from_secs(3600)),
        );
        // The first deposit allocates the shared counter behind a std
        // `OnceLock`, which loom cannot see; making it before the threads
        // start gives loom the happens-before edge the `OnceLock` provides.
        budget.deposit();
        // (A grant cannot be checked against "deposits begun" as it
        // happens: the pending counter is relaxed by design, so seeing a
        // deposit does not make the depositor's other writes visible.)
        let depositor = {
            let budget = budget.clone();
            thread::spawn(move || {
                for _ in 1..DEPOSITS {
                    budget.deposit();
                }
            })
        };
        // One more retry asked for than there are calls to fund them.
        let withdrawers: Vec<_> = (0..=DEPOSITS)
            .map(|_| {
                let budget = budget.clone();
                thread::spawn(move || usize::from(budget.withdraw()))
            })
            .collect();
        let granted: usize = withdrawers.into_iter().map(|t| t.join().unwrap()).sum();
        depositor.join().unwrap();
        assert!(
            granted <= DEPOSITS,
            "{granted} retries from {DEPOSITS} calls"
        );
        // Every deposit is accounted for: what was not withdrawn is left.
        let mut left = 0;
        while budget.withdraw() {
            left += 1;
            assert!(left <= DEPOSITS, "the budget grants more than it holds");
        }
        assert_eq!(granted + left, DEPOSITS, "a deposit was lost");
    });
}

#[test]
fn adaptive_limit_never_admits_past_its_limit() {
    const LIMIT: usize = 2;
    model(2, || {
        // Fixed at 2 (AIMD within 2..=2), and an interval no model run
        // reaches, so that no update needs the clock.
        let limit = Arc::new(
            AdaptiveLimit::aimd()
                .initial(LIMIT as u32)
                .min(LIMIT as u32)
                .max(LIMIT as u32)
                .interval(Duration::from_secs(3600)),
        );
        let held = Arc::new(Held::new());
        let threads: Vec<_> = (0..3)
            .map(|id| {
                let (limit, held) = (limit.clone(), held.clone());
                thread::spawn(move || {
                    let Some(permit) = limit.try_acquire() else {
                        return 0;
                    };
                    held.enter();
                    held.leave();
                    // One reports (a release, then a sample); the others
                    // are cancelled (a release alone).
                    match id {
                        0 => permit.success(),
                        _ => drop(permit),
                    }
                    1
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(admitted >= LIMIT, "the first {LIMIT} are always admitted");
        assert!(
            held.peak.load(SeqCst) <= LIMIT,
            "{} held at once, limit {LIMIT}",
            held.peak.load(SeqCst)
        );
        assert_eq!(limit.in_flight(), 0, "a slot leaked");
        assert_eq!(limit.limit(), LIMIT);
    });
}
