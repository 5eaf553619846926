//! `max_attempts`: how many times the body runs.

mod support;

use steadfast::{resilient, testing};
use support::TestError;

#[resilient(jitter = "none")]
async fn always_failing(calls: &mut u32) -> Result<(), TestError> {
    *calls += 1;
    Err(TestError::Io)
}

#[tokio::test(start_paused = true)]
async fn three_attempts_by_default() {
    let mut calls = 0;
    assert_eq!(always_failing(&mut calls).await, Err(TestError::Io));
    assert_eq!(calls, 3);
}

#[resilient(max_attempts = 5, jitter = "none")]
async fn succeeds_on(attempt: u32, calls: &mut u32) -> Result<u32, TestError> {
    *calls += 1;
    if *calls < attempt {
        Err(TestError::Io)
    } else {
        Ok(*calls)
    }
}

#[tokio::test(start_paused = true)]
async fn stops_at_the_first_success() {
    for attempt in 1..=5 {
        let mut calls = 0;
        assert_eq!(succeeds_on(attempt, &mut calls).await, Ok(attempt));
        assert_eq!(calls, attempt);
    }
    let mut calls = 0;
    assert_eq!(succeeds_on(6, &mut calls).await, Err(TestError::Io));
    assert_eq!(calls, 5, "never more than max_attempts");
}

#[resilient(max_attempts = 1)]
fn single_attempt(calls: &mut u32) -> Result<(), TestError> {
    *calls += 1;
    Err(TestError::Io)
}

#[test]
fn one_attempt_means_no_retry() {
    let mut calls = 0;
    assert_eq!(single_attempt(&mut calls), Err(TestError::Io));
    assert_eq!(calls, 1);
}

#[resilient(max_attempts = 4, budget = "off")]
fn last_error_wins(calls: &mut u32) -> Result<(), TestError> {
    *calls += 1;
    Err(match *calls {
        1 => TestError::Io,
        2 => TestError::Busy { retry_in: None },
        _ => TestError::Fatal("the last one"),
    })
}

#[test]
fn the_call_returns_the_last_error() {
    let _fast = testing::no_delays();
    let mut calls = 0;
    assert_eq!(
        last_error_wins(&mut calls),
        Err(TestError::Fatal("the last one"))
    );
    assert_eq!(calls, 4);
}

#[resilient(max_attempts = 3, jitter = "none")]
async fn early_exits(calls: &mut u32, input: &str) -> Result<u32, TestError> {
    *calls += 1;
    if *calls == 1 {
        return Err(TestError::Io); // `return` ends this attempt only
    }
    let parsed: u32 = input
        .parse()
        .map_err(|_| TestError::Fatal("not a number"))?;
    Ok(parsed)
}

#[tokio::test(start_paused = true)]
async fn return_and_question_mark_end_one_attempt() {
    let mut calls = 0;
    assert_eq!(early_exits(&mut calls, "42").await, Ok(42));
    assert_eq!(calls, 2);
    let mut calls = 0;
    assert_eq!(
        early_exits(&mut calls, "x").await,
        Err(TestError::Fatal("not a number"))
    );
    assert_eq!(calls, 3);
}
