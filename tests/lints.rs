//! Expansions are lint-clean under strict settings, and use absolute paths
//! only: they compile in a module that shadows `core`, `std`, `steadfast`
//! and the prelude.
//!
//! Every key that generates code is used below, in async and plain
//! functions; each function is called, so `dead_code` would notice one that
//! the expansion made unreachable.

#![deny(
    unused,
    unused_qualifications,
    unused_results,
    unreachable_code,
    unreachable_pub,
    rust_2018_idioms,
    elided_lifetimes_in_paths,
    single_use_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    let_underscore_drop,
    non_ascii_idents,
    clippy::all,
    clippy::pedantic
)]

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use steadfast::{
    Bulkhead, CircuitBreaker, CircuitOpen, Elapsed, RateLimiter, Rejected, RetryBudget, resilient,
    testing,
};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Error {
    Busy,
    Throttled { retry_in: Duration },
    Invalid(&'static str),
    Timeout,
    Open,
    Refused,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<Elapsed> for Error {
    fn from(_: Elapsed) -> Self {
        Error::Timeout
    }
}

impl From<CircuitOpen> for Error {
    fn from(_: CircuitOpen) -> Self {
        Error::Open
    }
}

impl From<Rejected> for Error {
    fn from(_: Rejected) -> Self {
        Error::Refused
    }
}

static SHARED_BUDGET: RetryBudget = RetryBudget::new().ratio(0.5).min_per_second(50);
static SHARED_BULKHEAD: Bulkhead = Bulkhead::new(4);
static SHARED_LIMITER: RateLimiter = RateLimiter::per_second(1000).burst(1000);
static SHARED_BREAKER: CircuitBreaker = CircuitBreaker::new().failure_threshold(100);

fn fail_until(counter: &Cell<u32>, n: u32, error: Error) -> Result<u32, Error> {
    counter.set(counter.get() + 1);
    if counter.get() < n {
        Err(error)
    } else {
        Ok(counter.get())
    }
}

/// Every schedule key, a timeout and a deadline, variant classification,
/// a server delay, a shared budget, inline protections and a hook.
#[resilient(
    max_attempts = 4,
    backoff = "exponential",
    base_delay = "10ms",
    max_delay = "1s",
    multiplier = 3.0,
    jitter = "decorrelated",
    timeout = "1s",
    deadline = "30s",
    retry_on = [Busy, Throttled, Timeout],
    retry_after = |e: &Error| match e {
        Error::Throttled { retry_in } => Some(*retry_in),
        _ => None,
    },
    budget = &SHARED_BUDGET,
    concurrency = 2,
    rate_limit = "100/s",
    burst = 10,
    max_wait = "5s",
    circuit_breaker(failure_threshold = 50, open_for = "1s", half_open_probes = 2),
    on_retry = |event| assert!(event.attempt() < 4 && event.name() == "lints::everything_async"),
    name = "lints::everything_async",
)]
async fn everything_async(counter: &Cell<u32>) -> Result<u32, Error> {
    tokio::task::yield_now().await;
    let error = if counter.get() == 0 {
        Error::Throttled {
            retry_in: Duration::from_millis(5),
        }
    } else {
        Error::Busy
    };
    fail_until(counter, 3, error)
}

/// The same for a plain function (no `timeout`, which is async only).
#[resilient(
    max_attempts = 4,
    backoff = "fibonacci",
    base_delay = "10ms",
    max_delay = "1s",
    jitter = 0.5,
    deadline = "30s",
    no_retry_on = [Invalid],
    retry_after = |e: &Error| match e {
        Error::Throttled { retry_in } => Some(*retry_in),
        _ => None,
    },
    budget = "off",
    concurrency = 2,
    rate_limit = "600/min",
    burst = 5,
    max_wait = "5s",
    circuit_breaker(failure_rate = 0.9, window = 10, min_calls = 5, open_for = "1m"),
    on_retry = |event| assert!(!event.delay().is_zero() || event.attempt() > 0),
    fallback = |e| if e == Error::Invalid("fallback") { Ok(0) } else { Err(e) },
)]
fn everything_sync(counter: &Cell<u32>, last: &Error) -> Result<u32, Error> {
    let error = if counter.get() + 2 == 3 {
        last.clone()
    } else {
        Error::Busy
    };
    fail_until(counter, 4, error)
}

/// Shared protection primitives given as expressions.
#[resilient(
    backoff = "linear",
    jitter = "equal",
    retry_if = |e: &Error| matches!(e, Error::Busy | Error::Timeout),
    concurrency = &SHARED_BULKHEAD,
    rate_limit = &SHARED_LIMITER,
    max_wait = "1s",
    circuit_breaker = &SHARED_BREAKER,
    fallback = |e| match e {
        Error::Invalid(_) => Ok(u32::MAX),
        other => Err(other),
    },
)]
async fn shared_async(counter: &Cell<u32>, invalid: bool) -> Result<u32, Error> {
    if invalid {
        counter.set(counter.get() + 1);
        return Err(Error::Invalid("no"));
    }
    fail_until(counter, 2, Error::Busy)
}

#[resilient(
    backoff = "fixed",
    jitter = "none",
    budget = &SHARED_BUDGET,
    concurrency = &SHARED_BULKHEAD,
    rate_limit = &SHARED_LIMITER,
    circuit_breaker = &SHARED_BREAKER,
)]
fn shared_sync(counter: &Cell<u32>) -> Result<u32, Error> {
    fail_until(counter, 3, Error::Busy)
}

/// Shared primitives computed by an expression: the guards are built once
/// per call (a `match` around the loop).
fn shared<T>(primitive: &'static T) -> &'static T {
    primitive
}

#[resilient(
    budget = shared(&SHARED_BUDGET),
    concurrency = shared(&SHARED_BULKHEAD),
    rate_limit = shared(&SHARED_LIMITER),
    max_wait = "1s",
    circuit_breaker = shared(&SHARED_BREAKER),
)]
async fn computed_async(counter: &Cell<u32>) -> Result<u32, Error> {
    fail_until(counter, 2, Error::Busy)
}

#[resilient(budget = shared(&SHARED_BUDGET), rate_limit = shared(&SHARED_LIMITER))]
fn computed_sync(counter: &Cell<u32>) -> Result<u32, Error> {
    fail_until(counter, 2, Error::Busy)
}

/// Bare breaker, `rate_limit` per hour, `backoff = "none"`, and a body
/// that never succeeds (so the success path is statically dead code).
#[resilient(
    max_attempts = 2,
    backoff = "none",
    circuit_breaker,
    rate_limit = "3600/h"
)]
fn always_fails(counter: &Cell<u32>) -> Result<(), Error> {
    counter.set(counter.get() + 1);
    Err(Error::Busy)
}

/// A body that diverges: the expansion must not add `unreachable_code`.
#[resilient(max_attempts = 1)]
async fn diverges(flag: bool) -> Result<u8, Error> {
    if flag {
        return Ok(1);
    }
    panic!("never called with false")
}

#[resilient(max_attempts = 1)]
fn diverges_sync(flag: bool) -> Result<u8, Error> {
    if flag {
        return Ok(2);
    }
    unreachable!("never called with false")
}

/// Parameters named like the expansion's locals do not clash with them.
#[resilient(max_attempts = 2, timeout = "1s", deadline = "2s", on_retry = |_e| ())]
#[allow(clippy::used_underscore_binding)]
async fn named_like_locals(
    call: &Cell<u32>,
    outcome: u32,
    error: u32,
    delay: u32,
    timed_out: bool,
    __resilient_call: u32,
) -> Result<u32, Error> {
    let elapsed = call.get();
    let retryable = fail_until(call, 2, Error::Busy)?;
    Ok(outcome + error + delay + u32::from(timed_out) + __resilient_call + elapsed + retryable)
}

#[resilient(max_attempts = 2, deadline = "2s", on_retry = |_e| ())]
fn named_like_locals_sync(
    call: &Cell<u32>,
    outcome: u32,
    error: u32,
    delay: u32,
) -> Result<u32, Error> {
    let retryable = fail_until(call, 2, Error::Busy)?;
    Ok(outcome + error + delay + retryable)
}

/// `core`, `std` and `steadfast` mean something else here; so do the
/// prelude's types, traits and constructors. The expansion must not care.
mod shadowed {
    #![allow(dead_code, unused_macros, non_upper_case_globals, non_camel_case_types)]

    use ::steadfast::resilient;

    mod core {}
    mod std {}
    mod steadfast {
        pub(crate) mod __private {}
    }
    mod tokio {}

    struct Result;
    struct Option;
    struct Vec;
    struct String;
    struct Box;
    struct Duration;
    struct Instant;
    trait Send {}
    trait Sync {}
    trait Fn {}
    trait FnMut {}
    trait FnOnce {}
    trait From {}
    trait Into {}
    trait Future {}
    trait Iterator {}
    trait Drop {}
    const Ok: () = ();
    const Err: () = ();
    const Some: () = ();
    const None: () = ();
    fn drop() {}
    fn matches() {}
    macro_rules! matches {
        ($($t:tt)*) => {
            compile_error!("the expansion used a `matches!` in scope")
        };
    }
    macro_rules! concat {
        ($($t:tt)*) => {
            compile_error!("the expansion used a `concat!` in scope")
        };
    }
    macro_rules! module_path {
        ($($t:tt)*) => {
            compile_error!("the expansion used a `module_path!` in scope")
        };
    }

    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum Failure {
        Again,
        Stop,
        Timeout,
        Open,
        Refused,
    }

    impl ::core::convert::From<::steadfast::Elapsed> for Failure {
        fn from(_: ::steadfast::Elapsed) -> Self {
            Failure::Timeout
        }
    }

    impl ::core::convert::From<::steadfast::CircuitOpen> for Failure {
        fn from(_: ::steadfast::CircuitOpen) -> Self {
            Failure::Open
        }
    }

    impl ::core::convert::From<::steadfast::Rejected> for Failure {
        fn from(_: ::steadfast::Rejected) -> Self {
            Failure::Refused
        }
    }

    fn step(counter: &::core::cell::Cell<u32>) -> ::core::result::Result<u32, Failure> {
        counter.set(counter.get() + 1);
        if counter.get() < 3 {
            ::core::result::Result::Err(Failure::Again)
        } else {
            ::core::result::Result::Ok(counter.get())
        }
    }

    #[resilient(
        max_attempts = 3,
        timeout = "1s",
        deadline = "10s",
        retry_on = [Again, Timeout],
        retry_after = |_e: &Failure| ::core::option::Option::None,
        concurrency = 1,
        rate_limit = "10/s",
        max_wait = "1s",
        circuit_breaker,
        on_retry = |event| ::core::assert!(event.attempt() < 3),
        fallback = ::core::result::Result::Err,
    )]
    pub(crate) async fn shadowed_async(
        counter: &::core::cell::Cell<u32>,
    ) -> ::core::result::Result<u32, Failure> {
        step(counter)
    }

    #[resilient(
        max_attempts = 3,
        deadline = "10s",
        no_retry_on = [Stop],
        concurrency = 1,
        rate_limit = "10/s",
        max_wait = "1s",
        circuit_breaker(failure_threshold = 10),
        on_retry = |event| ::core::assert!(event.attempt() < 3),
    )]
    pub(crate) fn shadowed_sync(
        counter: &::core::cell::Cell<u32>,
    ) -> ::core::result::Result<u32, Failure> {
        step(counter)
    }

    #[resilient(retry_if = |e: &Failure| *e == Failure::Again)]
    pub(crate) fn shadowed_stop(
        counter: &::core::cell::Cell<u32>,
    ) -> ::core::result::Result<u32, Failure> {
        counter.set(counter.get() + 1);
        ::core::result::Result::Err(Failure::Stop)
    }
}

#[tokio::test(start_paused = true)]
async fn strict_lints_async() {
    let counter = Cell::new(0);
    assert_eq!(everything_async(&counter).await, Ok(3));
    assert_eq!(counter.get(), 3);

    let counter = Cell::new(0);
    assert_eq!(shared_async(&counter, false).await, Ok(2));
    let counter = Cell::new(0);
    assert_eq!(shared_async(&counter, true).await, Ok(u32::MAX));
    assert_eq!(
        counter.get(),
        1,
        "`Invalid` is not retried, then falls back"
    );

    let counter = Cell::new(0);
    assert_eq!(computed_async(&counter).await, Ok(2));

    assert_eq!(diverges(true).await, Ok(1));

    let call = Cell::new(0);
    assert_eq!(
        named_like_locals(&call, 1, 2, 3, true, 4).await,
        Ok(1 + 2 + 3 + 1 + 4 + 1 + 2)
    );
}

#[test]
fn strict_lints_sync() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(everything_sync(&counter, &Error::Busy), Ok(4));
    assert_eq!(counter.get(), 4);
    let counter = Cell::new(0);
    assert_eq!(
        everything_sync(&counter, &Error::Invalid("fallback")),
        Ok(0)
    );
    assert_eq!(counter.get(), 2);
    let counter = Cell::new(0);
    assert_eq!(
        everything_sync(&counter, &Error::Invalid("x")),
        Err(Error::Invalid("x"))
    );

    let counter = Cell::new(0);
    assert_eq!(shared_sync(&counter), Ok(3));
    let counter = Cell::new(0);
    assert_eq!(computed_sync(&counter), Ok(2));

    let counter = Cell::new(0);
    assert_eq!(always_fails(&counter), Err(Error::Busy));
    assert_eq!(counter.get(), 2);

    assert_eq!(diverges_sync(true), Ok(2));

    let call = Cell::new(0);
    assert_eq!(named_like_locals_sync(&call, 1, 2, 3), Ok(1 + 2 + 3 + 2));
}

#[tokio::test(start_paused = true)]
async fn absolute_paths_async() {
    let counter = Cell::new(0);
    assert_eq!(shadowed::shadowed_async(&counter).await, Ok(3));
    assert_eq!(counter.get(), 3);
}

#[test]
fn absolute_paths_sync() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(shadowed::shadowed_sync(&counter), Ok(3));
    let counter = Cell::new(0);
    assert_eq!(
        shadowed::shadowed_stop(&counter),
        Err(shadowed::Failure::Stop)
    );
    assert_eq!(counter.get(), 1);
}
