//! The `stats` feature: `steadfast::stats::snapshot()`.
#![cfg(feature = "stats")]

mod support;

use steadfast::stats::{SiteStats, snapshot};
use steadfast::{CircuitBreaker, resilient, testing};
use support::TestError;

fn site(name: &str) -> SiteStats {
    snapshot()
        .into_iter()
        .find(|site| site.name == name)
        .unwrap_or_else(|| panic!("{name} not in the snapshot"))
}

#[resilient(name = "stats.flaky", max_attempts = 4, budget = "off")]
fn flaky(fail: u32, calls: &mut u32) -> Result<(), TestError> {
    *calls += 1;
    if *calls <= fail {
        Err(TestError::Io)
    } else {
        Ok(())
    }
}

#[test]
fn counts_calls_attempts_and_where_they_succeeded() {
    let _fast = testing::no_delays();
    for fail in [0, 0, 1, 2, 9] {
        let mut calls = 0;
        let _ = flaky(fail, &mut calls);
    }
    let stats = site("stats.flaky");
    assert_eq!(
        stats,
        SiteStats {
            name: "stats.flaky",
            calls: 5,
            successes: 4,
            failures: 1,
            attempts: 1 + 1 + 2 + 3 + 4,
            retries: 1 + 2 + 3,
            rejected: 0,
            hedges_sent: 0,
            hedges_won: 0,
            hedges_refused: 0,
            successes_at_attempt: vec![2, 1, 1],
        }
    );
    assert_eq!(stats.success_rate(), 0.8);
    assert_eq!(stats.mean_attempts(), 11.0 / 5.0);
}

static BREAKER: CircuitBreaker = CircuitBreaker::new().failure_threshold(2);

#[resilient(name = "stats.guarded", circuit_breaker = &BREAKER, max_attempts = 1)]
fn guarded() -> Result<(), TestError> {
    Err(TestError::Io)
}

#[test]
fn rejections_are_counted_apart() {
    for _ in 0..5 {
        let _ = guarded();
    }
    let stats = site("stats.guarded");
    assert_eq!(
        (stats.calls, stats.failures, stats.rejected, stats.attempts),
        (5, 2, 3, 2)
    );
}

#[resilient(name = "stats.never_called")]
fn never_called() -> Result<(), TestError> {
    Ok(())
}

#[test]
fn only_functions_that_ran_are_listed() {
    let _ = never_called as fn() -> _;
    assert!(
        snapshot()
            .iter()
            .all(|site| site.name != "stats.never_called")
    );
}

#[test]
fn registration_from_many_threads_lists_each_site_once() {
    #[resilient(name = "stats.threads")]
    fn work() -> Result<(), TestError> {
        Ok(())
    }
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..1_000 {
                    work().unwrap();
                }
            });
        }
    });
    let sites: Vec<_> = snapshot()
        .into_iter()
        .filter(|s| s.name == "stats.threads")
        .collect();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].calls, 8_000);
}

#[resilient(
    name = "stats.persistent",
    max_attempts = 20,
    backoff = "none",
    budget = "off"
)]
fn persistent(fail: u32, calls: &mut u32) -> Result<(), TestError> {
    *calls += 1;
    if *calls <= fail {
        Err(TestError::Io)
    } else {
        Ok(())
    }
}

#[test]
fn successes_after_the_sixteenth_attempt_share_the_last_slot() {
    for fail in [15, 16, 18] {
        let mut calls = 0;
        assert_eq!(persistent(fail, &mut calls), Ok(()));
    }
    let stats = site("stats.persistent");
    // Attempts 16, 17 and 19: the first in slot 16, the others with it.
    assert_eq!(stats.successes_at_attempt.len(), 16);
    assert_eq!(stats.successes_at_attempt[15], 3);
}

#[tokio::test(start_paused = true)]
async fn counts_hedges_sent_won_and_refused() {
    support::two_slow_hedged_calls().await;
    let stats = site("search.query");
    assert_eq!(
        (stats.hedges_sent, stats.hedges_won, stats.hedges_refused),
        (1, 1, 1)
    );
    assert_eq!((stats.calls, stats.attempts, stats.retries), (2, 2, 0));
}
