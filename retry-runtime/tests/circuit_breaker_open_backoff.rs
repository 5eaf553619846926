//! `open_for_backoff(multiplier, max)`: each reopen in a row stays open
//! longer.

mod breaker_support;

use std::time::Duration;

use breaker_support::{NS, OPEN_FOR, fail, is_rejected, tripped};
use retry_runtime::{CircuitBreaker, CircuitState};
use tokio::time::advance;

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
