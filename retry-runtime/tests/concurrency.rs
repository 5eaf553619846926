//! An adaptive limit through `Policy`: each attempt is a sample, or a
//! drop as the breaker would count it, and a blocking call waits for a slot
//! as it would for a bulkhead's.

use std::time::Duration;

use retry_runtime::{AdaptiveLimit, Elapsed, Policy, Rejected};

#[derive(Debug)]
enum Failure {
    Retryable,
    Answered,
    TimedOut,
    Full,
}

impl From<Rejected> for Failure {
    fn from(_: Rejected) -> Self {
        Failure::Full
    }
}

impl From<Elapsed> for Failure {
    fn from(_: Elapsed) -> Self {
        Failure::TimedOut
    }
}

/// 5 rounds of 10 calls at once, each 2 ms long, ending as `outcome`
/// says, 100 ms apart (the limit's interval).
async fn aimd_after(policy: &'static Policy<Failure>, outcome: fn() -> Result<(), Failure>) {
    for _ in 0..5 {
        let calls = (0..10).map(|_| {
            policy.retry(move |_| async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                outcome()
            })
        });
        join_all(calls).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls every call on this task until all have ended.
async fn join_all<F: std::future::Future>(calls: impl Iterator<Item = F>) {
    let mut pending: Vec<_> = calls.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|call| call.as_mut().poll(cx).is_pending());
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

macro_rules! limited {
    ($limit:ident, $policy:ident $(, $builder:ident($value:expr))*) => {
        static $limit: AdaptiveLimit = AdaptiveLimit::aimd().initial(20);
        static $policy: Policy<Failure> = Policy::new()
            .max_attempts(1)
            .no_budget()
            .retry_if(|e| matches!(e, Failure::Retryable))
            .concurrency(&$limit)
            $(.$builder($value))*;
    };
}

limited!(SUCCEEDS, SUCCEEDING);
limited!(ANSWERS, ANSWERING);
limited!(FAILS, FAILING);
limited!(TIMES_OUT, TIMING_OUT, timeout(Duration::from_millis(1)));
limited!(
    JUDGED,
    JUDGING,
    breaker_if(|e| matches!(e, Failure::Answered))
);

#[tokio::test(start_paused = true)]
async fn an_attempt_is_a_sample_or_a_drop_as_the_breaker_would_count_it() {
    aimd_after(&SUCCEEDING, || Ok(())).await;
    aimd_after(&ANSWERING, || Err(Failure::Answered)).await;
    aimd_after(&FAILING, || Err(Failure::Retryable)).await;
    aimd_after(&TIMING_OUT, || Ok(())).await;
    aimd_after(&JUDGING, || Err(Failure::Answered)).await;
    // Samples without a drop grow the limit (its calls filled half of
    // it); drops lower it.
    assert!(SUCCEEDS.limit() > 20, "{SUCCEEDS:?}");
    assert!(ANSWERS.limit() > 20, "{ANSWERS:?}");
    assert!(FAILS.limit() < 20, "{FAILS:?}");
    assert!(TIMES_OUT.limit() < 20, "{TIMES_OUT:?}");
    assert!(JUDGED.limit() < 20, "{JUDGED:?}");
    for limit in [&SUCCEEDS, &ANSWERS, &FAILS, &TIMES_OUT, &JUDGED] {
        assert_eq!(limit.in_flight(), 0);
    }
}

limited!(FULL, WAITING_BRIEFLY, max_wait(Duration::from_millis(1)));

#[test]
fn a_blocking_call_waits_for_a_slot_of_an_adaptive_limit() {
    let held = FULL.try_acquire().expect("a slot");
    let others = (1..20).map(|_| FULL.try_acquire()).collect::<Vec<_>>();
    assert!(FULL.try_acquire().is_none(), "full");
    let refused = WAITING_BRIEFLY.retry_blocking(|_| Ok(()));
    assert!(matches!(refused, Err(Failure::Full)), "{refused:?}");
    drop((held, others));
    assert!(WAITING_BRIEFLY.retry_blocking(|_| Ok(())).is_ok());
    assert_eq!(FULL.in_flight(), 0);
}
