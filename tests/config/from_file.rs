//! A `Policy` read from a TOML file behaves as the attribute with the same
//! keys would, and a broken file is refused with every problem at once.

use std::sync::Mutex;
use std::time::Duration;

use steadfast::{Elapsed, Policy, PolicyConfig, RetryEvent};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Busy,
    TimedOut,
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError::TimedOut
    }
}

/// The `[table]` of `fixtures/payments.toml`.
fn table(name: &str) -> PolicyConfig {
    let text = include_str!("fixtures/payments.toml");
    let mut tables: toml::Table = toml::from_str(text).expect("the fixture is TOML");
    let table = tables.remove(name).expect("the fixture has the table");
    table.try_into().expect("the table is a PolicyConfig")
}

/// Each retry the hook heard of: (name, attempt, delay).
static HEARD: Mutex<Vec<(&'static str, u32, Duration)>> = Mutex::new(Vec::new());

fn record(event: &RetryEvent<'_, ApiError>) {
    HEARD
        .lock()
        .unwrap()
        .push((event.name(), event.attempt(), event.delay()));
}

#[tokio::test(start_paused = true)]
async fn a_policy_from_a_file_retries_on_the_files_schedule() {
    let policy: &'static Policy<ApiError> = Box::leak(Box::new(
        Policy::from_config(&table("payments"))
            .expect("a valid file")
            .on_retry(record),
    ));
    let start = Instant::now();
    let mut attempts = 0;
    let result: Result<(), ApiError> = policy
        .retry(|_| {
            attempts += 1;
            async { Err(ApiError::Busy) }
        })
        .await;
    assert_eq!(result, Err(ApiError::Busy));
    assert_eq!(attempts, 4, "max_attempts = 4");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(750),
        "three fixed 250 ms sleeps, no jitter"
    );
    let quarter = Duration::from_millis(250);
    assert_eq!(
        *HEARD.lock().unwrap(),
        [
            ("payments.charge", 1, quarter),
            ("payments.charge", 2, quarter),
            ("payments.charge", 3, quarter),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_files_deadline_bounds_the_whole_call() {
    let config: PolicyConfig = toml::from_str(
        r#"
        max_attempts = 100
        backoff = "fixed"
        base_delay = "1s"
        jitter = "none"
        deadline = "2500ms"
        "#,
    )
    .unwrap();
    let policy: &'static Policy<ApiError> =
        Box::leak(Box::new(Policy::from_config(&config).unwrap()));
    let start = Instant::now();
    let mut attempts = 0;
    let result: Result<(), ApiError> = policy
        .retry(|_| {
            attempts += 1;
            async { Err(ApiError::Busy) }
        })
        .await;
    assert_eq!(
        result,
        Err(ApiError::Busy),
        "the last error, as the attribute gives"
    );
    assert_eq!(
        attempts, 3,
        "no sleep starts that would end after the deadline"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[test]
fn a_broken_file_is_refused_with_every_problem_at_once() {
    let error = match Policy::<ApiError>::from_config(&table("broken")) {
        Ok(_) => panic!("a broken file was accepted"),
        Err(error) => error,
    };
    // Keys configuration does not read, then values that do not read, then
    // the rules the others break.
    let problems: Vec<(&str, &str)> = error
        .problems()
        .iter()
        .map(|p| (p.key.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (
                "max_attemps",
                "unknown key `max_attemps`; did you mean `max_attempts`?"
            ),
            (
                "retry_on",
                "`retry_on` cannot be set from configuration: it is code or shared state; set it with `retry_if` on the policy `from_config` returns"
            ),
            (
                "backoff",
                "unknown backoff `\"exponental\"`; did you mean `\"exponential\"`?"
            ),
            (
                "base_delay",
                "invalid `base_delay`: duration `\"100\"` has no unit; write e.g. `\"100ms\"` or `\"100s\"`"
            ),
            (
                "timeout",
                "invalid `timeout`: `\"soon\"` is not a duration; write a number with a unit, e.g. `\"250ms\"`, `\"2s\"` or `\"1m30s\"`"
            ),
            (
                "max_attempts",
                "`max_attempts` must be at least 1 (got 0); 1 means no retries"
            ),
        ]
    );
    assert_eq!(
        error.to_string().lines().count(),
        6,
        "one problem per line: {error}"
    );
}

#[test]
fn an_empty_configuration_is_the_attributes_defaults() {
    let config: PolicyConfig = toml::from_str("").unwrap();
    let policy = Policy::<ApiError>::from_config(&config).unwrap();
    let defaults = Policy::<ApiError>::new();
    assert_eq!(format!("{policy:?}"), format!("{defaults:?}"));
}

#[tokio::test(start_paused = true)]
async fn a_files_hedge_table_hedges_a_slow_call() {
    let config: PolicyConfig =
        toml::from_str(r#"hedge = { after = "10ms", max_extra_load = 1.0 }"#).unwrap();
    let policy: &'static Policy<ApiError> =
        Box::leak(Box::new(Policy::from_config(&config).unwrap()));
    let start = Instant::now();
    let answer = policy
        .retry(|attempt| async move {
            let took = if attempt.is_hedge() { 5 } else { 1000 };
            tokio::time::sleep(Duration::from_millis(took)).await;
            Ok::<_, ApiError>(attempt.number())
        })
        .await;
    assert_eq!(answer, Ok(2), "the hedge sent at 10 ms answered first");
    assert_eq!(start.elapsed(), Duration::from_millis(15));
}

#[test]
fn a_hedge_tables_problems_are_named_by_their_path() {
    let config: PolicyConfig =
        toml::from_str(r#"hedge = { after = "p100", max_hedge = 2, max_extra_load = 2.0 }"#)
            .unwrap();
    let error = Policy::<ApiError>::from_config(&config).err().unwrap();
    let keys: Vec<&str> = error.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["hedge.max_hedge", "hedge.after", "hedge.max_extra_load"]
    );
    assert_eq!(
        error.problems()[0].message,
        "unknown key `max_hedge` in `hedge(...)`; did you mean `max_hedges`?"
    );
    // An empty table hedges with the defaults.
    let empty: PolicyConfig = toml::from_str("hedge = {}").unwrap();
    let policy = Policy::<ApiError>::from_config(&empty).unwrap();
    assert_eq!(
        format!("{:?}", policy.hedging().unwrap()),
        format!("{:?}", steadfast::Hedge::after_quantile(0.95))
    );
}
