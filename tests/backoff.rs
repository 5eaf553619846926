//! `backoff`, `base_delay`, `max_delay`, `multiplier`: the delay schedule,
//! observed on tokio's paused clock and through `on_retry`.

mod support;

use std::time::Duration;

use steadfast::resilient;
use support::{Delays, TestError, ms};
use tokio::time::Instant;

macro_rules! schedule {
    ($name:ident, $($key:tt)*) => {
        #[resilient(max_attempts = 6, jitter = "none", budget = "off", $($key)*,
                    on_retry = |event| $name::DELAYS.push(event.delay()))]
        async fn $name() -> Result<(), TestError> {
            Err(TestError::Io)
        }
        mod $name {
            pub(crate) static DELAYS: super::Delays = super::Delays::new();
        }
    };
}

schedule!(exponential, backoff = "exponential", base_delay = "100ms");
schedule!(
    exponential_x3,
    backoff = "exponential",
    base_delay = "10ms",
    multiplier = 3
);
schedule!(fixed, backoff = "fixed", base_delay = "250ms");
schedule!(linear, backoff = "linear", base_delay = "100ms");
schedule!(fibonacci, backoff = "fibonacci", base_delay = "100ms");
schedule!(none, backoff = "none");
schedule!(
    capped,
    backoff = "exponential",
    base_delay = "1s",
    max_delay = "3s"
);

async fn slept(call: impl std::future::Future<Output = Result<(), TestError>>) -> Duration {
    let start = Instant::now();
    assert_eq!(call.await, Err(TestError::Io));
    start.elapsed()
}

fn total(delays: &[Duration]) -> Duration {
    delays.iter().sum()
}

#[tokio::test(start_paused = true)]
async fn exact_schedules_without_jitter() {
    let cases: [(Duration, &Delays, [u64; 5]); 6] = [
        (
            slept(exponential()).await,
            &exponential::DELAYS,
            [100, 200, 400, 800, 1600],
        ),
        (
            slept(exponential_x3()).await,
            &exponential_x3::DELAYS,
            [10, 30, 90, 270, 810],
        ),
        (
            slept(fixed()).await,
            &fixed::DELAYS,
            [250, 250, 250, 250, 250],
        ),
        (
            slept(linear()).await,
            &linear::DELAYS,
            [100, 200, 300, 400, 500],
        ),
        (
            slept(fibonacci()).await,
            &fibonacci::DELAYS,
            [100, 100, 200, 300, 500],
        ),
        (slept(none()).await, &none::DELAYS, [0, 0, 0, 0, 0]),
    ];
    for (elapsed, delays, expected) in cases {
        let delays = delays.take();
        assert_eq!(delays, expected.map(ms));
        assert_eq!(
            elapsed,
            total(&delays),
            "the call sleeps exactly the reported delays"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn max_delay_caps_each_delay() {
    let elapsed = slept(capped()).await;
    assert_eq!(
        capped::DELAYS.take(),
        [1000, 2000, 3000, 3000, 3000].map(ms)
    );
    assert_eq!(elapsed, ms(12_000));
}

#[resilient(jitter = "none", budget = "off", on_retry = |event| DEFAULTS.push(event.delay()))]
fn defaults() -> Result<(), TestError> {
    Err(TestError::Io)
}
static DEFAULTS: Delays = Delays::new();

#[test]
fn default_schedule_is_exponential_from_100ms() {
    let _fast = steadfast::testing::no_delays();
    assert_eq!(defaults(), Err(TestError::Io));
    assert_eq!(DEFAULTS.take(), [100, 200].map(ms));
}
