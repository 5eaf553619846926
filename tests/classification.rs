//! `retry_on`, `no_retry_on`, `retry_if`: which errors are retried; and
//! `breaker_if`: which errors a circuit breaker counts, apart from that.

mod support;

use steadfast::{resilient, testing};
use support::TestError;

fn failing_with(error: &TestError, calls: &mut u32) -> Result<(), TestError> {
    *calls += 1;
    Err(error.clone())
}

#[resilient(retry_on = [Io, Timeout], budget = "off")]
fn only_io_or_timeout(error: &TestError, calls: &mut u32) -> Result<(), TestError> {
    failing_with(error, calls)
}

#[resilient(no_retry_on = [Fatal], budget = "off")]
fn all_but_fatal(error: &TestError, calls: &mut u32) -> Result<(), TestError> {
    failing_with(error, calls)
}

#[resilient(retry_on = [support::TestError::Busy], budget = "off")]
fn by_path(error: &TestError, calls: &mut u32) -> Result<(), TestError> {
    failing_with(error, calls)
}

#[resilient(retry_if = |e| matches!(e, TestError::Fatal(reason) if reason.starts_with("flaky")), budget = "off")]
fn by_predicate(error: &TestError, calls: &mut u32) -> Result<(), TestError> {
    failing_with(error, calls)
}

fn attempts(f: fn(&TestError, &mut u32) -> Result<(), TestError>, error: TestError) -> u32 {
    let _fast = testing::no_delays();
    let mut calls = 0;
    assert_eq!(f(&error, &mut calls), Err(error));
    calls
}

#[test]
fn retry_on_matches_unit_tuple_and_struct_variants() {
    assert_eq!(attempts(only_io_or_timeout, TestError::Io), 3);
    assert_eq!(
        attempts(
            only_io_or_timeout,
            TestError::Timeout(steadfast::Elapsed::new())
        ),
        3
    );
    assert_eq!(
        attempts(only_io_or_timeout, TestError::Busy { retry_in: None }),
        1
    );
    assert_eq!(attempts(only_io_or_timeout, TestError::Fatal("x")), 1);
}

#[test]
fn no_retry_on_excludes_variants() {
    assert_eq!(attempts(all_but_fatal, TestError::Io), 3);
    assert_eq!(
        attempts(all_but_fatal, TestError::Busy { retry_in: None }),
        3
    );
    assert_eq!(attempts(all_but_fatal, TestError::Fatal("x")), 1);
}

#[test]
fn a_path_is_used_as_written() {
    assert_eq!(attempts(by_path, TestError::Busy { retry_in: None }), 3);
    assert_eq!(attempts(by_path, TestError::Io), 1);
}

#[test]
fn retry_if_decides_per_error() {
    assert_eq!(attempts(by_predicate, TestError::Fatal("flaky disk")), 3);
    assert_eq!(attempts(by_predicate, TestError::Fatal("bad request")), 1);
    assert_eq!(attempts(by_predicate, TestError::Io), 1);
}

#[resilient(retry_if = |e: &std::io::Error| e.kind() == std::io::ErrorKind::Interrupted, budget = "off")]
fn io_op(kind: std::io::ErrorKind, calls: &mut u32) -> std::io::Result<()> {
    *calls += 1;
    Err(kind.into())
}

#[test]
fn retry_if_works_on_io_errors() {
    let _fast = testing::no_delays();
    let mut calls = 0;
    assert!(io_op(std::io::ErrorKind::Interrupted, &mut calls).is_err());
    assert_eq!(calls, 3);
    let mut calls = 0;
    assert!(io_op(std::io::ErrorKind::NotFound, &mut calls).is_err());
    assert_eq!(calls, 1);
}

// ------------------------------------------------------------ breaker_if

/// Throttling is retried but says nothing of the dependency's health;
/// only `Io` counts toward the breaker (resilience4j's `ignoreExceptions`).
#[resilient(max_attempts = 3, backoff = "none", budget = "off",
            retry_on = [Io, Busy],
            breaker_if = |e| matches!(e, TestError::Io),
            circuit_breaker(failure_threshold = 4, open_for = "1m"))]
fn throttled_or_down(error: &TestError, calls: &mut u32) -> Result<(), TestError> {
    failing_with(error, calls)
}

#[test]
fn breaker_if_chooses_what_the_breaker_counts_apart_from_retrying() {
    let _guard = testing::no_delays();
    let mut calls = 0;
    let busy = TestError::Busy { retry_in: None };
    for _ in 0..10 {
        assert_eq!(throttled_or_down(&busy, &mut calls), Err(busy.clone()));
    }
    assert_eq!(
        calls, 30,
        "throttling is retried, and never opens the breaker"
    );

    // Two calls of three failing `Io` attempts: the fourth failure opens it.
    calls = 0;
    let _ = throttled_or_down(&TestError::Io, &mut calls);
    let second = throttled_or_down(&TestError::Io, &mut calls);
    assert!(matches!(second, Err(TestError::Open(_))), "{second:?}");
    assert_eq!(calls, 4);
}

/// A fatal answer is not worth retrying, but an outage shows it: counted
/// by the breaker without being retried.
#[resilient(retry_on = [Io], budget = "off",
            breaker_if = |e| matches!(e, TestError::Io | TestError::Fatal(_)),
            circuit_breaker(failure_threshold = 4, open_for = "1m"))]
fn fatal_counts(error: &TestError, calls: &mut u32) -> Result<(), TestError> {
    failing_with(error, calls)
}

#[test]
fn breaker_if_can_count_errors_that_are_not_retried() {
    let _guard = testing::no_delays();
    let mut calls = 0;
    let fatal = TestError::Fatal("down");
    for _ in 0..4 {
        assert_eq!(fatal_counts(&fatal, &mut calls), Err(fatal.clone()));
    }
    assert_eq!(calls, 4, "never retried");
    let refused = fatal_counts(&fatal, &mut calls);
    assert!(matches!(refused, Err(TestError::Open(_))), "{refused:?}");
    assert_eq!(calls, 4);
}
