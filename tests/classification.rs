//! `retry_on`, `no_retry_on`, `retry_if`: which errors are retried.

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
