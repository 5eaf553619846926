//! The shared keys' expressions (`rate_limit = ..`, `concurrency = ..`,
//! `circuit_breaker = ..`, `budget = ..`) are evaluated once per call,
//! however many attempts it makes and whether it waits for a token or not:
//! an expression that looks a limiter up (`&PER_TENANT.get(&tenant)`) pays
//! for one lookup, and one with a side effect has it once. Its value, and
//! any temporary it borrows, lives for the whole call.

mod support;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use steadfast::{Bulkhead, CircuitBreaker, Keyed, RateLimiter, RetryBudget, resilient, retry};
use support::{TestError, ms};
use tokio::time::Instant;

/// A primitive in a `static`, and how many times the expression naming it
/// was evaluated.
struct Counted<T: 'static> {
    primitive: T,
    evaluations: AtomicUsize,
}

impl<T> Counted<T> {
    const fn new(primitive: T) -> Self {
        Counted {
            primitive,
            evaluations: AtomicUsize::new(0),
        }
    }

    /// The expression the keys below are given.
    fn get(&'static self) -> &'static T {
        self.evaluations.fetch_add(1, Ordering::SeqCst);
        &self.primitive
    }

    fn evaluations(&self) -> usize {
        self.evaluations.load(Ordering::SeqCst)
    }
}

/// Fails the first two attempts of each call: three attempts a call.
fn third_time_lucky(attempts: &AtomicU32) -> Result<u32, TestError> {
    match attempts.fetch_add(1, Ordering::SeqCst) % 3 {
        2 => Ok(3),
        _ => Err(TestError::Io),
    }
}

/// For one key: an `async fn` and a plain `fn` naming their primitive
/// through a counting expression, each called twice, three attempts a call.
macro_rules! evaluated_once_per_call {
    ($key:ident: $ty:ty = $primitive:expr) => {
        mod $key {
            use super::*;

            // One each: the tests run in parallel.
            static ASYNC: Counted<$ty> = Counted::new($primitive);
            static BLOCKING: Counted<$ty> = Counted::new($primitive);

            #[resilient($key = ASYNC.get())]
            async fn call(attempts: &AtomicU32) -> Result<u32, TestError> {
                third_time_lucky(attempts)
            }

            #[resilient($key = BLOCKING.get())]
            fn call_blocking(attempts: &AtomicU32) -> Result<u32, TestError> {
                third_time_lucky(attempts)
            }

            #[tokio::test(start_paused = true)]
            async fn is_evaluated_once_per_call_of_an_async_fn() {
                let attempts = AtomicU32::new(0);
                for calls in 1..=2 {
                    assert_eq!(call(&attempts).await, Ok(3));
                    assert_eq!(attempts.load(Ordering::SeqCst), 3 * calls);
                    assert_eq!(ASYNC.evaluations(), calls as usize);
                }
            }

            #[test]
            fn is_evaluated_once_per_call_of_a_plain_fn() {
                let _fast = steadfast::testing::no_delays();
                let attempts = AtomicU32::new(0);
                for calls in 1..=2 {
                    assert_eq!(call_blocking(&attempts), Ok(3));
                    assert_eq!(attempts.load(Ordering::SeqCst), 3 * calls);
                    assert_eq!(BLOCKING.evaluations(), calls as usize);
                }
            }
        }
    };
}

evaluated_once_per_call!(rate_limit: RateLimiter = RateLimiter::per_second(1000));
evaluated_once_per_call!(concurrency: Bulkhead = Bulkhead::new(4));
// Above `max_attempts`, so that no call opens it.
evaluated_once_per_call!(circuit_breaker: CircuitBreaker = CircuitBreaker::new().failure_threshold(100));
evaluated_once_per_call!(budget: RetryBudget = RetryBudget::new());

/// Every key at once, in both `retry!` doors.
mod retry_blocks {
    use super::*;

    static LIMITER: Counted<RateLimiter> = Counted::new(RateLimiter::per_second(1000));
    static BULKHEAD: Counted<Bulkhead> = Counted::new(Bulkhead::new(4));
    static BREAKER: Counted<CircuitBreaker> =
        Counted::new(CircuitBreaker::new().failure_threshold(100));
    static BUDGET: Counted<RetryBudget> = Counted::new(RetryBudget::new());
    static LIMITER_SYNC: Counted<RateLimiter> = Counted::new(RateLimiter::per_second(1000));
    static BULKHEAD_SYNC: Counted<Bulkhead> = Counted::new(Bulkhead::new(4));
    static BREAKER_SYNC: Counted<CircuitBreaker> =
        Counted::new(CircuitBreaker::new().failure_threshold(100));
    static BUDGET_SYNC: Counted<RetryBudget> = Counted::new(RetryBudget::new());

    #[tokio::test(start_paused = true)]
    async fn an_async_block_evaluates_each_key_once_per_call() {
        let attempts = AtomicU32::new(0);
        let result = retry!(rate_limit = LIMITER.get(), concurrency = BULKHEAD.get(),
                            circuit_breaker = BREAKER.get(), budget = BUDGET.get();
                            async { third_time_lucky(&attempts) })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        let evaluations = [&LIMITER.evaluations, &BULKHEAD.evaluations];
        assert_eq!(evaluations.map(|e| e.load(Ordering::SeqCst)), [1, 1]);
        assert_eq!([BREAKER.evaluations(), BUDGET.evaluations()], [1, 1]);
    }

    #[test]
    fn a_plain_block_evaluates_each_key_once_per_call() {
        let _fast = steadfast::testing::no_delays();
        let attempts = AtomicU32::new(0);
        let result = retry!(rate_limit = LIMITER_SYNC.get(), concurrency = BULKHEAD_SYNC.get(),
                            circuit_breaker = BREAKER_SYNC.get(), budget = BUDGET_SYNC.get();
                            { third_time_lucky(&attempts) });
        assert_eq!(result, Ok(3));
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(
            [
                LIMITER_SYNC.evaluations(),
                BULKHEAD_SYNC.evaluations(),
                BREAKER_SYNC.evaluations(),
                BUDGET_SYNC.evaluations()
            ],
            [1, 1, 1, 1]
        );
    }
}

/// Attempts that wait for their token go through the admission's slow
/// path, which names the limiter again.
mod waiting {
    use super::*;

    // One token, then one every 100 ms: the second and third attempts wait.
    static SLOW: Counted<RateLimiter> = Counted::new(RateLimiter::per_second(10).burst(1));
    static SLOW_BOUNDED: Counted<RateLimiter> = Counted::new(RateLimiter::per_second(10).burst(1));
    // A plain fn waits on the wall clock: one token every millisecond.
    static SLOW_SYNC: Counted<RateLimiter> = Counted::new(RateLimiter::per_second(1000).burst(1));

    #[resilient(rate_limit = SLOW.get(), backoff = "none")]
    async fn unbounded(attempts: &AtomicU32) -> Result<u32, TestError> {
        third_time_lucky(attempts)
    }

    #[resilient(rate_limit = SLOW_BOUNDED.get(), backoff = "none", max_wait = "1s")]
    async fn bounded(attempts: &AtomicU32) -> Result<u32, TestError> {
        third_time_lucky(attempts)
    }

    #[resilient(rate_limit = SLOW_SYNC.get(), backoff = "none")]
    fn blocking(attempts: &AtomicU32) -> Result<u32, TestError> {
        third_time_lucky(attempts)
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_waits_evaluates_once() {
        let attempts = AtomicU32::new(0);
        let start = Instant::now();
        assert_eq!(unbounded(&attempts).await, Ok(3));
        assert_eq!(start.elapsed(), ms(200), "two attempts waited");
        assert_eq!(SLOW.evaluations(), 1);

        let attempts = AtomicU32::new(0);
        let start = Instant::now();
        assert_eq!(bounded(&attempts).await, Ok(3));
        assert_eq!(start.elapsed(), ms(200), "two attempts waited");
        assert_eq!(SLOW_BOUNDED.evaluations(), 1);
    }

    #[test]
    fn a_blocking_call_that_waits_evaluates_once() {
        let attempts = AtomicU32::new(0);
        let start = std::time::Instant::now();
        assert_eq!(blocking(&attempts), Ok(3));
        assert!(
            start.elapsed() >= ms(1),
            "the attempts after the first waited"
        );
        assert_eq!(SLOW_SYNC.evaluations(), 1);
    }
}

/// The expression may borrow the arguments and return a temporary: the
/// `Arc` a `Keyed` lookup returns is kept for the whole call.
mod per_key {
    use super::*;

    static QUOTAS: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_second(1000));
    static POOLS: Keyed<String, Bulkhead> = Keyed::new(|_| Bulkhead::new(4));

    #[resilient(rate_limit = &QUOTAS.get(tenant), concurrency = &POOLS.get(tenant))]
    async fn send(tenant: &str, attempts: &AtomicU32) -> Result<u32, TestError> {
        // The attempt holds a permit of this tenant's bulkhead.
        assert_eq!(POOLS.get(tenant).available(), 3);
        third_time_lucky(attempts)
    }

    #[tokio::test(start_paused = true)]
    async fn a_looked_up_limiter_lives_for_the_call_and_the_future_is_send() {
        static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
        let call = tokio::spawn(send("acme", &ATTEMPTS));
        assert_eq!(call.await.unwrap(), Ok(3));
        assert_eq!(ATTEMPTS.load(Ordering::SeqCst), 3);
        assert_eq!(POOLS.get("acme").available(), 4, "every permit returned");
    }
}
