//! `attempt = name`: what each attempt knows of its call.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use steadfast::{Attempt, resilient, retry, testing};
use support::{TestError, ms};

/// Each attempt as it saw itself, with the time it had left then.
static SEEN: Mutex<Vec<(Attempt, Option<Duration>)>> = Mutex::new(Vec::new());

fn seen() -> Vec<(Attempt, Option<Duration>)> {
    std::mem::take(&mut *SEEN.lock().unwrap())
}

#[resilient(max_attempts = 3, base_delay = "100ms", jitter = "none", deadline = "1s",
            budget = "off", attempt = attempt)]
async fn remembers(fail: u32) -> Result<u32, TestError> {
    SEEN.lock().unwrap().push((attempt, attempt.time_left()));
    if attempt.number() <= fail {
        Err(TestError::Io)
    } else {
        Ok(attempt.number())
    }
}

#[tokio::test(start_paused = true)]
async fn numbers_count_attempts_and_the_key_names_the_call() {
    // One mutex-guarded list: these run one after the other.
    let _ = seen();
    assert_eq!(remembers(2).await, Ok(3));
    let (first_call, left): (Vec<Attempt>, Vec<_>) = seen().into_iter().unzip();
    assert_eq!(
        first_call.iter().map(Attempt::number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(!first_call[0].is_retry() && first_call[1].is_retry());
    assert!(
        first_call.iter().all(|a| a.key() == first_call[0].key()),
        "one key for all the attempts of a call"
    );
    // Time left: 1 s, then after 100 ms, then after 300 ms.
    assert_eq!(left, [Some(ms(1_000)), Some(ms(900)), Some(ms(700))]);

    assert_eq!(remembers(0).await, Ok(1));
    let second_call = seen();
    assert_ne!(
        second_call[0].0.key(),
        first_call[0].key(),
        "another call, another key"
    );
}

#[resilient(max_attempts = 2, budget = "off", attempt = a)]
fn sync_remembers() -> Result<u32, TestError> {
    if a.number() == 1 {
        Err(TestError::Io)
    } else {
        Ok(a.number())
    }
}

#[test]
fn plain_functions_and_blocks_bind_it_too() {
    let _fast = testing::no_delays();
    assert_eq!(sync_remembers(), Ok(2));
    let numbers = retry!(max_attempts = 3, budget = "off", attempt = a; {
        if a.number() < 3 { Err(TestError::Io) } else { Ok((a.number(), a.time_left())) }
    });
    assert_eq!(
        numbers,
        Ok((3, None::<Duration>)),
        "no deadline, no time left to tell"
    );
}
