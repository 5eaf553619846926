//! Behaviour of `RetryBudget` on tokio's paused clock (and without a runtime).

use std::time::Duration;

use retry_runtime::RetryBudget;
use tokio::time::advance;

/// Withdraws until refused (bounded, so a broken budget fails the test
/// instead of hanging it) and returns how many were allowed.
fn drain(budget: &RetryBudget) -> u32 {
    let mut allowed = 0;
    while allowed < 1_000_000 && budget.withdraw() {
        allowed += 1;
    }
    allowed
}

fn deposit_n(budget: &RetryBudget, n: u32) {
    for _ in 0..n {
        budget.deposit();
    }
}

#[tokio::test(start_paused = true)]
async fn fresh_default_budget_allows_the_reserve_then_refuses() {
    let budget = RetryBudget::new();
    // min_per_second 10 × ttl 10 s.
    assert_eq!(drain(&budget), 100);
    assert!(!budget.withdraw());
}

#[tokio::test(start_paused = true)]
async fn default_is_new() {
    let budget = RetryBudget::default();
    assert_eq!(drain(&budget), 100);
    deposit_n(&budget, 50);
    // 20% of 50 calls.
    assert_eq!(drain(&budget), 10);
}

#[tokio::test(start_paused = true)]
async fn deposits_fund_a_ratio_of_retries() {
    let budget = RetryBudget::new().min_per_second(0).ratio(0.5);
    deposit_n(&budget, 10);
    assert_eq!(drain(&budget), 5);
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_without_reserve_refuses() {
    let budget = RetryBudget::new().min_per_second(0);
    assert!(!budget.withdraw());
    // Four calls at 20% are less than one retry.
    deposit_n(&budget, 4);
    assert!(!budget.withdraw());
    budget.deposit();
    assert!(budget.withdraw());
    assert!(!budget.withdraw());
}

#[tokio::test(start_paused = true)]
async fn ratios_are_not_rounded_to_whole_deposits_per_retry() {
    // tower's integer scheme would charge 3 deposits per retry (33 retries).
    let budget = RetryBudget::new().min_per_second(0).ratio(0.3);
    deposit_n(&budget, 100);
    assert_eq!(drain(&budget), 30);
}

#[tokio::test(start_paused = true)]
async fn ratio_above_one_allows_several_retries_per_call() {
    let budget = RetryBudget::new().min_per_second(0).ratio(2.5);
    deposit_n(&budget, 4);
    assert_eq!(drain(&budget), 10);
}

#[tokio::test(start_paused = true)]
async fn ratio_is_clamped_and_nan_means_zero() {
    let huge = RetryBudget::new().min_per_second(0).ratio(1e12);
    huge.deposit();
    assert_eq!(drain(&huge), 1000);

    let infinite = RetryBudget::new().min_per_second(0).ratio(f64::INFINITY);
    infinite.deposit();
    assert_eq!(drain(&infinite), 1000);

    for r in [f64::NAN, -0.5, f64::NEG_INFINITY] {
        let budget = RetryBudget::new().min_per_second(0).ratio(r);
        deposit_n(&budget, 1000);
        assert_eq!(drain(&budget), 0, "ratio {r}");
    }
}

#[tokio::test(start_paused = true)]
async fn ratio_zero_leaves_only_the_reserve() {
    let budget = RetryBudget::new().ratio(0.0).min_per_second(2);
    deposit_n(&budget, 10_000);
    assert_eq!(drain(&budget), 20);
    deposit_n(&budget, 10_000);
    assert!(!budget.withdraw());
}

#[tokio::test(start_paused = true)]
async fn withdrawals_expire_after_ttl() {
    let budget = RetryBudget::new();
    assert_eq!(drain(&budget), 100);

    advance(Duration::from_millis(9_999)).await;
    assert!(!budget.withdraw(), "still inside the window");

    advance(Duration::from_millis(1)).await;
    assert_eq!(drain(&budget), 100, "the reserve is back after ttl");
}

#[tokio::test(start_paused = true)]
async fn withdrawals_expire_slot_by_slot() {
    // Reserve of 10 per second: spend 10 in each of the first two seconds.
    let budget = RetryBudget::new().ratio(0.0).min_per_second(2);
    assert_eq!(drain(&budget), 20);
    advance(Duration::from_secs(1)).await;
    assert!(!budget.withdraw());

    // At 10 s the withdrawals of second 0 leave the window, not those of
    // later ones.
    advance(Duration::from_secs(9)).await;
    assert_eq!(drain(&budget), 20);
    advance(Duration::from_secs(5)).await;
    assert!(!budget.withdraw());
    advance(Duration::from_secs(5)).await;
    assert_eq!(drain(&budget), 20);
}

#[tokio::test(start_paused = true)]
async fn deposits_expire_after_ttl() {
    let budget = RetryBudget::new().min_per_second(0).ratio(1.0);
    deposit_n(&budget, 4);
    assert!(budget.withdraw());

    advance(Duration::from_secs(9)).await;
    assert!(budget.withdraw(), "3 retries left inside the window");

    // Had the deposits stayed while the withdrawals expired, 4 would be left.
    advance(Duration::from_secs(1)).await;
    assert!(!budget.withdraw());
}

/// A budget with a 1 s window (so 100 ms slots) in which two calls and one
/// retry were made at exactly 99 ms, just before the end of the first slot;
/// asks for a second retry `age` later and returns whether it was allowed.
/// With ratio 1 that retry is funded iff both calls still count (the first
/// retry counts for as long as they do).
async fn second_retry_after(age: Duration) -> bool {
    let budget = RetryBudget::new()
        .ttl(Duration::from_secs(1))
        .min_per_second(0)
        .ratio(1.0);
    assert!(!budget.withdraw(), "t = 0: starts the window's clock");
    advance(Duration::from_millis(99)).await;
    // A withdrawal places the calls made since the previous one evenly over
    // the time between the two: with no time between, exactly at 99 ms.
    assert!(!budget.withdraw());
    budget.deposit();
    budget.deposit();
    assert!(budget.withdraw(), "the first retry, at 99 ms");
    advance(age).await;
    budget.withdraw()
}

#[tokio::test(start_paused = true)]
async fn a_deposit_counts_until_it_is_ttl_old() {
    // tower's TpsBudget drops a slot's deposits when the slot ends, up to a
    // tenth of ttl early; this budget used to as well, so these two calls
    // stopped counting at 1 s, when they were 901 ms old.
    assert!(
        second_retry_after(Duration::from_millis(901)).await,
        "901 ms old, ttl 1 s: both calls still count"
    );
    assert!(
        second_retry_after(Duration::from_millis(999)).await,
        "999 ms old: both calls still count"
    );
    assert!(
        !second_retry_after(Duration::from_millis(1_000)).await,
        "1 s old: both calls (and the first retry) have expired"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_before_the_first_retry_count_for_ttl() {
    // ttl 1 s, ratio 0.5: two calls fund one retry. The first withdrawal
    // spreads earlier calls over the time since the first of them, here
    // the last 901 ms, all inside the window.
    let budget = RetryBudget::new()
        .ttl(Duration::from_secs(1))
        .min_per_second(0)
        .ratio(0.5);
    budget.deposit();
    budget.deposit();
    advance(Duration::from_millis(901)).await;
    assert!(budget.withdraw(), "both calls are younger than ttl");

    // Spread over the last 2 s, only half of two calls is inside the window.
    let budget = RetryBudget::new()
        .ttl(Duration::from_secs(1))
        .min_per_second(0)
        .ratio(0.5);
    budget.deposit();
    budget.deposit();
    advance(Duration::from_secs(2)).await;
    assert!(!budget.withdraw(), "half a retry");
}

#[tokio::test(start_paused = true)]
async fn calls_count_from_when_they_were_made_not_from_the_last_retry() {
    let budget = RetryBudget::new().min_per_second(0).ratio(1.0);
    assert!(!budget.withdraw());

    advance(Duration::from_secs(5)).await;
    deposit_n(&budget, 100);
    advance(Duration::from_secs(6)).await;
    // All 100 calls are 6 s old, inside the 10 s window. (When calls
    // carried no time, they were spread over the 11 s since the previous
    // withdrawal and only 90 counted.)
    assert_eq!(drain(&budget), 100);
    deposit_n(&budget, 100);
    assert_eq!(drain(&budget), 100);
    // 10 s after they were made, the first 100 calls leave the window; the
    // 200 retries, and the 100 calls made with them, stay 6 s more.
    advance(Duration::from_secs(4)).await;
    deposit_n(&budget, 99);
    assert_eq!(drain(&budget), 0, "100 calls + 99 for 200 retries");
    deposit_n(&budget, 1);
    assert_eq!(drain(&budget), 0, "100 calls + 100 for 200 retries");
    deposit_n(&budget, 1);
    assert_eq!(drain(&budget), 1);
}

#[tokio::test(start_paused = true)]
async fn after_an_hour_of_healthy_traffic_only_the_last_ttl_counts() {
    let budget = RetryBudget::new().min_per_second(0).ratio(1.0);
    // An hour of 100 calls a second, without a single retry...
    for _ in 0..3_600 {
        deposit_n(&budget, 100);
        advance(Duration::from_secs(1)).await;
    }
    // ...funds retries like the calls of the last 10 s (the calls of 9 s
    // ago are the oldest still younger than ttl), not like the whole hour.
    assert_eq!(drain(&budget), 900);
}

#[tokio::test(start_paused = true)]
async fn ttl_sets_the_window_and_the_reserve() {
    let budget = RetryBudget::new()
        .ttl(Duration::from_secs(2))
        .min_per_second(5);
    assert_eq!(drain(&budget), 10);
    advance(Duration::from_secs(2)).await;
    assert_eq!(drain(&budget), 10);

    let zero = RetryBudget::new().ttl(Duration::ZERO);
    zero.deposit();
    assert!(!zero.withdraw());
}

static SHARED: RetryBudget = RetryBudget::new().ratio(0.1).min_per_second(5);

#[tokio::test(start_paused = true)]
async fn a_static_budget_works() {
    assert_eq!(drain(&SHARED), 50);
    deposit_n(&SHARED, 30);
    assert_eq!(drain(&SHARED), 3);
    advance(Duration::from_secs(10)).await;
    assert_eq!(drain(&SHARED), 50);
}

#[test]
fn concurrent_deposits_are_not_lost() {
    let budget = RetryBudget::new().min_per_second(0).ratio(0.01);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| s.spawn(|| deposit_n(&budget, 100_050)))
            .collect();
        // Joined explicitly: each thread counts its deposits locally and
        // hands the last (< 32) to the budget when it exits, and the end of
        // a `scope` does not wait for a thread's exit (its thread-local
        // destructors), only for its closure; `join` waits for both.
        for thread in threads {
            thread.join().unwrap();
        }
    });
    // 1% of 200 100 calls. Runs on the real clock, which cannot expire
    // anything within the 10 s window in the time this takes.
    assert_eq!(drain(&budget), 2_001);
}

/// Upper bound on the deposits of another thread a withdrawal may not see
/// yet (the per-thread batch, minus one).
const UNFLUSHED_PER_THREAD: u32 = 31;

#[test]
fn a_live_thread_hides_at_most_a_batch_and_its_exit_flushes_the_rest() {
    use std::sync::mpsc;

    static BUDGET: RetryBudget = RetryBudget::new().min_per_second(0).ratio(1.0);
    let (deposited, wait_deposited) = mpsc::channel();
    let (exit, wait_exit) = mpsc::channel::<()>();
    let depositor = std::thread::spawn(move || {
        deposit_n(&BUDGET, 1_017);
        deposited.send(()).unwrap();
        wait_exit.recv().unwrap();
    });
    wait_deposited.recv().unwrap();

    // The depositor is alive and may still hold part of its last batch.
    let seen = drain(&BUDGET);
    assert!(
        (1_017 - UNFLUSHED_PER_THREAD..=1_017).contains(&seen),
        "saw {seen} of 1017 deposits"
    );

    // Once it has exited, every deposit has been counted exactly once.
    exit.send(()).unwrap();
    depositor.join().unwrap();
    assert_eq!(seen + drain(&BUDGET), 1_017);
}

#[test]
fn two_threads_depositing_and_withdrawing_stay_exact() {
    // Ratio 1: every deposit funds exactly one retry, so over the whole run
    // the retries allowed must equal the calls, whatever the interleaving:
    // none lost, none counted twice.
    static BUDGET: RetryBudget = RetryBudget::new().min_per_second(0).ratio(1.0);
    const CALLS: u32 = 200_003;
    let threads: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let mut allowed = 0;
                for call in 0..CALLS {
                    BUDGET.deposit();
                    // A third of the calls ask for a retry; their own
                    // deposits are always visible to them.
                    if call % 3 == 0 {
                        assert!(BUDGET.withdraw(), "own deposit not seen at call {call}");
                        allowed += 1;
                    }
                }
                allowed
            })
        })
        .collect();
    let allowed: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(allowed + drain(&BUDGET), 2 * CALLS);
}

#[test]
fn many_budgets_on_one_thread_are_each_exact() {
    // More budgets than a thread's deposit cache holds, used round-robin,
    // so entries are evicted (and flushed) all the time.
    let budgets: Vec<RetryBudget> = (0..40)
        .map(|_| RetryBudget::new().min_per_second(0).ratio(1.0))
        .collect();
    for round in 0..100 {
        for (i, budget) in budgets.iter().enumerate() {
            if round % (i + 1) == 0 {
                budget.deposit();
            }
        }
    }
    for (i, budget) in budgets.iter().enumerate() {
        let expected = (0..100).filter(|round| round % (i + 1) == 0).count() as u32;
        assert_eq!(drain(budget), expected, "budget {i}");
    }
}

#[test]
fn a_new_budget_never_inherits_the_deposits_of_a_dropped_one() {
    // Budgets made and dropped in a loop usually reuse one address; the
    // deposits counted for an earlier one must not fund the next.
    for _ in 0..100 {
        let budget = RetryBudget::new().min_per_second(0).ratio(1.0);
        assert!(!budget.withdraw());
        deposit_n(&budget, 7);
        let boxed = Box::new(RetryBudget::new().min_per_second(0).ratio(1.0));
        deposit_n(&boxed, 3);
        drop(boxed);
        assert_eq!(drain(&budget), 7);
    }
    for _ in 0..100 {
        let boxed = Box::new(RetryBudget::new().min_per_second(0).ratio(1.0));
        assert!(!boxed.withdraw());
        deposit_n(&boxed, 5);
    }
}

#[test]
fn works_outside_a_tokio_runtime() {
    let budget = RetryBudget::new();
    assert_eq!(drain(&budget), 100);
    deposit_n(&budget, 10);
    assert_eq!(drain(&budget), 2);
    assert!(format!("{budget:?}").starts_with("RetryBudget"));
}

#[tokio::test(start_paused = true)]
async fn steady_failure_is_capped_at_ratio_plus_min_per_second() {
    // 100 calls/s for 200 s, every attempt fails, and each call wants two
    // retries (max_attempts = 3): 200 retries/s are wanted.
    const CALLS_PER_SECOND: u32 = 100;
    const SECONDS: u32 = 200;
    let budget = RetryBudget::new();
    let mut retries = 0u32;
    for _ in 0..CALLS_PER_SECOND * SECONDS {
        budget.deposit();
        for _ in 0..2 {
            if !budget.withdraw() {
                break;
            }
            retries += 1;
        }
        advance(Duration::from_secs(1) / CALLS_PER_SECOND).await;
    }
    // 20% of 100 calls/s + 10/s = 30/s.
    let expected = 30 * SECONDS;
    let tolerance = expected / 100; // 1%
    assert!(
        retries.abs_diff(expected) <= tolerance,
        "retries {retries}, expected {expected} ± {tolerance}"
    );
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync + std::fmt::Debug + Default>() {}
    check::<RetryBudget>();
}

#[test]
fn another_threads_deposits_are_seen_exactly_when_its_batch_of_31_is_full() {
    use std::sync::mpsc;

    // Ratio 1, no reserve: each deposit a withdrawal sees funds one retry.
    static BUDGET: RetryBudget = RetryBudget::new().min_per_second(0).ratio(1.0);
    let (deposit, deposits) = mpsc::channel::<u32>();
    let (deposited, wait_deposited) = mpsc::channel();
    let depositor = std::thread::spawn(move || {
        for n in deposits {
            deposit_n(&BUDGET, n);
            deposited.send(()).unwrap();
        }
    });

    // The edge of "at most 31 unflushed": all of them hidden while the
    // depositor lives...
    deposit.send(UNFLUSHED_PER_THREAD).unwrap();
    wait_deposited.recv().unwrap();
    assert_eq!(drain(&BUDGET), 0, "31 deposits stay on their thread");
    // ...and the 32nd places the whole batch at once, and starts the next.
    deposit.send(1).unwrap();
    wait_deposited.recv().unwrap();
    assert_eq!(drain(&BUDGET), UNFLUSHED_PER_THREAD);

    drop(deposit);
    depositor.join().unwrap();
}

/// The budget of the idle-gap cases: a 1 s window (100 ms slots), no
/// reserve, two calls fund one retry.
fn half_per_call() -> RetryBudget {
    RetryBudget::new()
        .ttl(Duration::from_secs(1))
        .min_per_second(0)
        .ratio(0.5)
}

#[tokio::test(start_paused = true)]
async fn calls_older_than_ttl_do_not_count_after_an_idle_gap() {
    // 7 calls, 1.5 s of silence, 2 calls: only the last 2 are inside the
    // window, so one retry, as a fresh budget gives.
    let budget = half_per_call();
    deposit_n(&budget, 7);
    advance(Duration::from_millis(1_500)).await;
    deposit_n(&budget, 2);
    assert_eq!(drain(&budget), 1);
}

#[tokio::test(start_paused = true)]
async fn calls_after_an_idle_gap_all_count() {
    for (after_gap, retries) in [(100, 50), (64, 32)] {
        let budget = half_per_call();
        deposit_n(&budget, 2);
        advance(Duration::from_secs(2)).await;
        deposit_n(&budget, after_gap);
        assert_eq!(drain(&budget), retries, "{after_gap} calls after the gap");
    }
}

#[tokio::test(start_paused = true)]
async fn an_earlier_retry_does_not_hide_calls_made_after_a_gap() {
    for gap_ms in [1_100, 1_500, 2_000, 5_000, 20_000] {
        let budget = half_per_call();
        deposit_n(&budget, 2);
        assert!(budget.withdraw());
        advance(Duration::from_millis(gap_ms)).await;
        deposit_n(&budget, 2);
        assert_eq!(drain(&budget), 1, "after a gap of {gap_ms} ms");
    }
}

#[tokio::test(start_paused = true)]
async fn towers_tps_slots_case() {
    // tower's own `tps_slots` test of `TpsBudget`, with the same numbers.
    let budget = half_per_call();
    budget.deposit();
    budget.deposit();
    advance(Duration::from_millis(901)).await;
    assert!(budget.withdraw(), "901 ms later both calls still count");

    // A blank slate: the calls and the retry above have expired.
    advance(Duration::from_millis(2_001)).await;
    budget.deposit();
    advance(Duration::from_millis(301)).await;
    budget.deposit();
    advance(Duration::from_millis(801)).await;
    budget.deposit();
    // The calls are 1 102, 801 and 0 ms old: the first has expired, the
    // other two fund one retry.
    assert!(budget.withdraw());
    assert!(!budget.withdraw());
}
