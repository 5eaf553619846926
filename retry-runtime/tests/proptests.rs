//! Property tests for [`Backoff`] and [`Jitter`]: random configurations
//! (every strategy and jitter, bases and caps from zero to `Duration::MAX`,
//! multipliers including NaN, infinity and values below 1, attempt numbers
//! over all of `u32`), each checked against the keys table of docs/design.md; and
//! for [`CircuitBreaker`]: random timelines checked, step by step, against
//! a plain model of its documented state machine.
//!
//! | property | cases | figure asserted |
//! |---|---|---|
//! | `every_delay_is_within_zero_and_the_cap` | 5000 | 0 <= delay <= `max_delay` for 64 draws of each config, and inside the jitter's own range around `d` |
//! | `the_schedule_is_the_documented_formula` | 10000 | `delay_before_jitter(n)` == min(cap, base·m^(n-1) / base / base·n / base·fib(n) / 0), any `n` in `u32`; exact but for exponential (1e-6 relative, exponent stopped at 2^31 - 1 accepted) |
//! | `no_attempt_number_overflows_or_panics` | 2000 | `delay_before_jitter` at the edges of `u32` (and `i32`) returns a delay <= cap |
//! | `delays_never_decrease_without_jitter` | 10000 | d(n) <= d(n+1) for random `n`, and along the first 200 delays (exponential bases above 2^53 ns included: see the regression below) |
//! | `seeded_schedules_are_reproducible` | 2000 | same seed, same 64 delays; a clone continues the same; `seed_jitter` repeats unseeded ones |
//! | `jitter_means_match_d_over_2_and_3d_over_4` | 40, fixed | mean of 4000 draws, 40 random d: full 0.5·d ± 0.02·d, equal 0.75·d ± 0.01·d, proportional(f) d ± 0.04·f·d |
//! | `iterating_past_u32_max_saturates` (ignored: 2^32 steps) | 1 | the iterator's retry counter saturates: no overflow panic, delays stay at the cap |
//! | `exponential_base_above_2_pow_53_does_not_decrease` | 1 | regression: exponential d(2) < d(1) for a base above 2^53 ns, found by the property above |
//! | `the_breaker_follows_its_documented_state_machine` | 2000 | up to 200 steps (acquire, success, failure, drop, advance the paused clock, reset, force open) on either trip mode, builder inputs out of range included: every admission (and whether it is a probe) and every state equal to the model's, stale permits included |
//!
//! The first five and the last are `proptest!` properties. Each run draws fresh inputs;
//! a failure is shrunk to a minimal input, which is printed and saved to
//! `tests/proptests.proptest-regressions` next to this file: commit that
//! file, and every later run replays the saved cases first.
//! `PROPTEST_CASES=n` runs `n` cases of each property (a longer pass),
//! `PROPTEST_RNG_SEED=n` repeats one sequence of inputs. The mean test is a
//! plain test with a fixed seed and case count: a statistical bound checked
//! on ever-new inputs would be exceeded by chance now and then.
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release -p retry-runtime --test proptests
//! CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
//!     cargo test --release -p retry-runtime --test proptests -- --ignored iterating
//! ```

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{FailurePersistence, FileFailurePersistence, TestCaseError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use retry_runtime::{Backoff, CircuitBreaker, CircuitState, Jitter};

/// The fixed seed of the mean test: case `i` draws from `SEED + i`.
const SEED: u64 = 0x5EED_F457;

/// `cases` cases (`PROPTEST_CASES` overrides it), failures saved to
/// `proptests.proptest-regressions` beside this file.
///
/// proptest's default, `SourceParallel`, looks for a `lib.rs` above the test
/// file, finds none for `tests/`, and falls back to the same file with a
/// warning; naming it here avoids the detour.
/// `PROPTEST_DISABLE_FAILURE_PERSISTENCE` still turns it off.
fn proptest_config(cases: u32) -> ProptestConfig {
    let defaults = ProptestConfig::default();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    let persistence: Option<Box<dyn FailurePersistence>> = defaults
        .failure_persistence
        .is_some()
        .then(|| Box::new(FileFailurePersistence::WithSource("proptest-regressions")) as _);
    ProptestConfig {
        cases,
        failure_persistence: persistence,
        ..defaults
    }
}

// ---------------------------------------------------------------- inputs

/// The growth strategy (named `Kind`: `Strategy` is proptest's trait).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Exponential,
    Fixed,
    Linear,
    Fibonacci,
    None,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    kind: Kind,
    base: Duration,
    cap: Duration,
    multiplier: f64,
    jitter: Jitter,
    seed: u64,
}

impl Config {
    fn backoff(&self) -> Backoff {
        let backoff = match self.kind {
            Kind::Exponential => Backoff::exponential(self.base),
            Kind::Fixed => Backoff::fixed(self.base),
            Kind::Linear => Backoff::linear(self.base),
            Kind::Fibonacci => Backoff::fibonacci(self.base),
            Kind::None => Backoff::none(),
        };
        backoff
            .max_delay(self.cap)
            .multiplier(self.multiplier)
            .jitter(self.jitter)
    }

    /// The multiplier as the builder takes it: below 1 (or NaN) means 1.
    fn effective_multiplier(&self) -> f64 {
        if self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        }
    }

    fn base(&self) -> Duration {
        match self.kind {
            Kind::None => Duration::ZERO,
            _ => self.base,
        }
    }
}

fn kinds() -> impl Strategy<Value = Kind> {
    const KINDS: [Kind; 5] = [
        Kind::Exponential,
        Kind::Fixed,
        Kind::Linear,
        Kind::Fibonacci,
        Kind::None,
    ];
    select(&KINDS[..])
}

/// Durations from zero to `Duration::MAX`: edge values, or a random count
/// of nanoseconds of random magnitude.
fn durations() -> impl Strategy<Value = Duration> {
    const EDGES: [Duration; 10] = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_nanos(3),
        Duration::from_millis(1),
        Duration::from_millis(100),
        Duration::from_secs(20),
        Duration::from_secs(u32::MAX as u64),
        Duration::from_nanos(u64::MAX),
        Duration::new(u64::MAX, 0),
        Duration::MAX,
    ];
    prop_oneof![
        1 => select(&EDGES[..]),
        1 => (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
        2 => (0..=64u32)
            .prop_flat_map(|bits| match bits {
                64 => any::<u64>().boxed(),
                _ => (0..=(1u64 << bits)).boxed(),
            })
            .prop_map(Duration::from_nanos),
    ]
}

fn multipliers() -> impl Strategy<Value = f64> {
    const EDGES: [f64; 14] = [
        f64::NAN,
        f64::NEG_INFINITY,
        -1.0,
        0.0,
        0.5,
        1.0,
        1.0 + f64::EPSILON,
        1.000_000_1,
        1.5,
        2.0,
        10.0,
        1e300,
        f64::MAX,
        f64::INFINITY,
    ];
    prop_oneof![select(&EDGES[..]), 1.0..16.0f64]
}

/// Proportional jitter's factor: edges (NaN, negative, zero, above 1,
/// infinite) or uniform in `[0, 1]`.
fn factors() -> impl Strategy<Value = f64> {
    const EDGES: [f64; 9] = [
        f64::NAN,
        -1.0,
        0.0,
        1e-12,
        0.1,
        0.5,
        1.0,
        2.0,
        f64::INFINITY,
    ];
    prop_oneof![select(&EDGES[..]), 0.0..=1.0f64]
}

fn jitters() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        factors().prop_map(Jitter::Proportional),
    ]
}

fn configs() -> impl Strategy<Value = Config> {
    (
        kinds(),
        durations(),
        durations(),
        multipliers(),
        jitters(),
        any::<u64>(),
    )
        .prop_map(|(kind, base, cap, multiplier, jitter, seed)| Config {
            kind,
            base,
            cap,
            multiplier,
            jitter,
            seed,
        })
}

/// Attempt numbers over all of `u32`, a third of them edges (0, 1, 2,
/// where Fibonacci and the exponent saturate, around `i32::MAX`, and
/// `u32::MAX - 1`, `u32::MAX`).
fn retry_numbers() -> impl Strategy<Value = u32> {
    const EDGES: [u32; 16] = [
        0,
        1,
        2,
        3,
        31,
        64,
        93,
        186,
        187,
        1_000,
        i32::MAX as u32 - 1,
        i32::MAX as u32,
        i32::MAX as u32 + 1,
        i32::MAX as u32 + 2,
        u32::MAX - 1,
        u32::MAX,
    ];
    prop_oneof![select(&EDGES[..]), 0..300u32, any::<u32>()]
}

fn nanos(d: Duration) -> u128 {
    d.as_nanos()
}

// ---------------------------------------------------------------- the model

/// fib(1) = fib(2) = 1, saturating.
fn fib(n: u32) -> u128 {
    let (mut prev, mut fib) = (1u128, 1u128);
    for _ in 2..n.min(200) {
        (prev, fib) = (fib, prev.saturating_add(fib));
    }
    if n >= 200 { u128::MAX } else { fib }
}

/// The `backoff` row of docs/design.md's keys table, in nanoseconds, for retry `n` (0 counts as 1).
/// Exponential growth is computed in `f64`, so it comes with a tolerance.
fn expected(config: &Config, n: u32) -> (u128, u128) {
    let n = n.max(1);
    let base = nanos(config.base());
    let cap = nanos(config.cap);
    let exact = |d: u128| (d.min(cap), d.min(cap));
    if base == 0 || cap == 0 {
        return (0, 0);
    }
    match config.kind {
        Kind::None => (0, 0),
        Kind::Fixed => exact(base),
        Kind::Linear => exact(base.saturating_mul(u128::from(n))),
        Kind::Fibonacci => exact(base.saturating_mul(fib(n))),
        Kind::Exponential => {
            if n == 1 {
                return exact(base);
            }
            let m = config.effective_multiplier();
            // The runtime stops the exponent at i32::MAX ("infinite anyway"),
            // which is only true for m >= 1 + 1e-8: closer to 1, the delay
            // plateaus at base·m^(2^31 - 1), up to 5e-7 below the formula.
            // Either value is accepted, so the test also passes once that is
            // made exact.
            let clamped = base as f64 * m.powf(f64::from((n - 1).min(i32::MAX as u32)));
            let formula = base as f64 * m.powf(f64::from(n - 1));
            let (lo, hi) = (clamped.min(formula), clamped.max(formula));
            // `powi` squares its way up: for exponents up to 2^32 its
            // relative error stays far below 1e-6.
            let to_nanos = |d: f64| {
                if d >= cap as f64 {
                    cap
                } else {
                    (d.max(0.0) as u128).min(cap)
                }
            };
            (
                to_nanos(lo - lo * 1e-6 - 2.0),
                to_nanos(hi + hi * 1e-6 + 2.0),
            )
        }
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(proptest_config(5_000))]

    #[test]
    fn every_delay_is_within_zero_and_the_cap(config in configs()) {
        let cap = config.cap;
        let backoff = config.backoff();
        let mut prev = Duration::ZERO;
        for (i, delay) in backoff.clone().with_seed(config.seed).take(64).enumerate() {
            let n = i as u32 + 1;
            let d = backoff.delay_before_jitter(n);
            prop_assert!(delay <= cap, "retry {n}: {delay:?} above the cap {cap:?}");
            prop_assert!(d <= cap, "retry {n}: d = {d:?} above the cap {cap:?}");
            if d.is_zero() {
                prop_assert!(
                    delay.is_zero(),
                    "retry {n}: a zero delay jittered to {delay:?}"
                );
                continue;
            }
            match config.jitter {
                Jitter::None => prop_assert!(delay == d, "retry {n}: {delay:?} != d {d:?}"),
                Jitter::Full => prop_assert!(delay <= d, "retry {n}: {delay:?} above d {d:?}"),
                Jitter::Equal => prop_assert!(
                    delay >= d / 2 && delay <= d,
                    "retry {n}: {delay:?} outside [d/2, d], d = {d:?}"
                ),
                Jitter::Proportional(f) => {
                    let f = if f > 0.0 { f.min(1.0) } else { 0.0 };
                    let d = nanos(d) as f64;
                    let got = nanos(delay) as f64;
                    let slack = d * 1e-9 + 2.0;
                    prop_assert!(
                        got >= d * (1.0 - f) - slack && got <= d * (1.0 + f) + slack,
                        "retry {n}: {delay:?} outside d·[1-f, 1+f], d = {d} ns, f = {f}"
                    );
                }
                Jitter::Decorrelated => {
                    let floor = config.base().min(cap);
                    let last = if prev.is_zero() { config.base() } else { prev };
                    let ceiling = last.saturating_mul(3).max(config.base()).min(cap);
                    prop_assert!(
                        delay >= floor && delay <= ceiling,
                        "retry {n}: {delay:?} outside [base, min(cap, 3·prev)] = [{floor:?}, {ceiling:?}]"
                    );
                }
            }
            prev = delay;
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(10_000))]

    #[test]
    fn the_schedule_is_the_documented_formula(config in configs(), n in retry_numbers()) {
        let got = nanos(config.backoff().delay_before_jitter(n));
        let (lo, hi) = expected(&config, n);
        prop_assert!(
            lo <= got && got <= hi,
            "retry {n}: {got} ns, expected {lo}..={hi} ns"
        );
    }
}

proptest! {
    #![proptest_config(proptest_config(2_000))]

    #[test]
    fn no_attempt_number_overflows_or_panics(config in configs()) {
        const EDGES: [u32; 8] = [
            0,
            1,
            i32::MAX as u32,
            i32::MAX as u32 + 1,
            i32::MAX as u32 + 2,
            u32::MAX / 2,
            u32::MAX - 1,
            u32::MAX,
        ];
        let backoff = config.backoff();
        for n in EDGES {
            let d = backoff.delay_before_jitter(n);
            prop_assert!(d <= config.cap, "retry {n}: {d:?} above the cap");
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(10_000))]

    #[test]
    fn delays_never_decrease_without_jitter(
        config in configs().prop_map(|config| Config { jitter: Jitter::None, ..config }),
        n in retry_numbers(),
    ) {
        let backoff = config.backoff();
        let n = n.min(u32::MAX - 1);
        let (this, next) = (
            backoff.delay_before_jitter(n),
            backoff.delay_before_jitter(n + 1),
        );
        prop_assert!(this <= next, "d({n}) = {this:?} > d({}) = {next:?}", n + 1);
        let schedule: Vec<_> = backoff.take(200).collect();
        if let Some(i) = schedule.windows(2).position(|w| w[0] > w[1]) {
            return Err(TestCaseError::fail(format!(
                "delay {} = {:?} > delay {} = {:?}",
                i + 1,
                schedule[i],
                i + 2,
                schedule[i + 1]
            )));
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(2_000))]

    #[test]
    fn seeded_schedules_are_reproducible(config in configs(), split in 0..64usize) {
        let seeded = config.backoff().with_seed(config.seed);
        let first: Vec<_> = seeded.clone().take(64).collect();
        let second: Vec<_> = seeded.clone().take(64).collect();
        prop_assert!(first == second, "same seed, different schedules");

        // A clone taken midway continues exactly where the original is.
        let mut original = seeded;
        original.by_ref().take(split).for_each(drop);
        let rest: Vec<_> = original.clone().take(64 - split).collect();
        prop_assert!(
            rest == first[split..],
            "a clone after {split} delays diverged"
        );

        // Unseeded schedules draw from the thread's generator, which
        // `testing::seed_jitter` makes reproducible.
        let unseeded = config.backoff();
        retry_runtime::testing::seed_jitter(config.seed);
        let a: Vec<_> = unseeded.clone().take(16).collect();
        retry_runtime::testing::seed_jitter(config.seed);
        let b: Vec<_> = unseeded.take(16).collect();
        prop_assert!(a == b, "seed_jitter did not repeat the schedule");
    }
}

/// Regression: exponential growth goes through an `f64`, which cannot hold
/// a base above 2^53 ns exactly; with a multiplier of 1 the second delay
/// used to round *below* the first (the exact base).
#[test]
fn exponential_base_above_2_pow_53_does_not_decrease() {
    let base = Duration::from_nanos((1 << 53) + 1);
    let backoff = Backoff::exponential(base)
        .multiplier(1.0)
        .max_delay(Duration::MAX)
        .jitter(Jitter::None);
    assert!(
        backoff.delay_before_jitter(1) <= backoff.delay_before_jitter(2),
        "d(1) = {:?}, d(2) = {:?}",
        backoff.delay_before_jitter(1),
        backoff.delay_before_jitter(2)
    );
}

/// Mean of `samples` draws of the jittered delay `d`, as a fraction of `d`.
fn mean_fraction(jitter: Jitter, d: Duration, cap: Duration, seed: u64, samples: usize) -> f64 {
    let draws = Backoff::fixed(d)
        .max_delay(cap)
        .jitter(jitter)
        .with_seed(seed);
    let sum: f64 = draws.take(samples).map(|x| x.as_secs_f64()).sum();
    sum / samples as f64 / d.as_secs_f64()
}

#[test]
fn jitter_means_match_d_over_2_and_3d_over_4() {
    // 4000 uniform draws: the standard error of the mean is 0.0046·d for
    // full jitter (sd d/√12), 0.0023·d for equal (d/√48) and 0.0091·d·f for
    // proportional (2fd/√12); each tolerance is 4.4 standard errors, and the
    // seeds are fixed, so the test is deterministic. The case count is
    // fixed too: a statistical bound checked 10^5 times would be exceeded
    // by chance (4.4 SE: about once in 10^5 draws). Hence a plain test, not
    // a proptest, whose inputs change from run to run.
    const SAMPLES: usize = 4_000;
    const CASES: u64 = 40;
    for case in 0..CASES {
        let mut rng = SmallRng::seed_from_u64(SEED + case);
        let d = Duration::from_nanos(rng.random_range(1_000_000..=3_600_000_000_000));
        let f: f64 = rng.random_range(0.05..=1.0);
        let seed: u64 = rng.random();
        let input = format!("case {case}: d = {d:?}, f = {f}, seed = {seed}");

        let full = mean_fraction(Jitter::Full, d, d, seed, SAMPLES);
        assert!(
            (full - 0.5).abs() <= 0.02,
            "{input}: full jitter mean {full}·d, expected 0.5·d"
        );
        let equal = mean_fraction(Jitter::Equal, d, d, seed, SAMPLES);
        assert!(
            (equal - 0.75).abs() <= 0.01,
            "{input}: equal jitter mean {equal}·d, expected 0.75·d"
        );
        // With room above d, proportional jitter is centred on d.
        let proportional = mean_fraction(Jitter::Proportional(f), d, d * 2, seed, SAMPLES);
        assert!(
            (proportional - 1.0).abs() <= 0.04 * f,
            "{input}: proportional({f}) jitter mean {proportional}·d, expected d"
        );
    }
}

/// 2^32 steps: minutes in a debug build, about half a minute in release.
/// Run it with overflow checks on, so a `+ 1` that wraps would panic:
/// `CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true cargo test --release -p
/// retry-runtime --test proptests -- --ignored iterating`.
#[test]
#[ignore = "2^32 iterations; run in release with overflow checks (see the doc comment)"]
fn iterating_past_u32_max_saturates() {
    let cap = Duration::from_millis(5);
    let mut schedule = Backoff::linear(Duration::from_nanos(1))
        .max_delay(cap)
        .jitter(Jitter::None);
    let steps = u64::from(u32::MAX) + 16;
    let mut last = Duration::ZERO;
    for _ in 0..steps {
        last = schedule.next().expect("a backoff never ends");
    }
    assert_eq!(last, cap);
    assert_eq!(schedule.next(), Some(cap));
}

// ------------------------------------------------ circuit breaker vs a model

/// How the breaker under test trips.
#[derive(Debug, Clone, Copy)]
enum Trip {
    Consecutive(u32),
    Rate {
        rate: f64,
        window: u32,
        min_calls: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy)]
struct BreakerConfig {
    trip: Trip,
    open_for_ms: u64,
    probes: u32,
}

impl BreakerConfig {
    fn breaker(&self) -> CircuitBreaker {
        let breaker = CircuitBreaker::new()
            .open_for(Duration::from_millis(self.open_for_ms))
            .half_open_probes(self.probes);
        match self.trip {
            Trip::Consecutive(n) => breaker.failure_threshold(n),
            Trip::Rate {
                rate,
                window,
                min_calls: None,
            } => breaker.failure_rate(rate, window),
            Trip::Rate {
                rate,
                window,
                min_calls: Some(n),
            } => breaker.failure_rate(rate, window).min_calls(n),
        }
    }
}

/// One step of a single-threaded timeline. Permits are held in a list;
/// `Success(i)`, `Failure(i)` and `Drop(i)` report on permit `i` modulo its
/// length (nothing when it is empty), and remove it.
#[derive(Debug, Clone, Copy)]
enum Op {
    Acquire,
    Success(usize),
    Failure(usize),
    Drop(usize),
    AdvanceMs(u64),
    Reset,
    ForceOpen,
}

/// The breaker's documented behaviour, written as plainly as possible: no
/// packing, no atomics, every outcome of every generation kept.
#[derive(Debug, Clone, PartialEq)]
enum ModelState {
    Closed {
        generation: u64,
        streak: u32,
        outcomes: Vec<bool>,
    },
    Open {
        until_ms: u64,
    },
    HalfOpen {
        generation: u64,
        in_flight: u32,
        succeeded: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct ModelPermit {
    generation: u64,
    probe: bool,
}

struct Model {
    config: BreakerConfig,
    now_ms: u64,
    state: ModelState,
    generations: u64,
}

impl Model {
    fn new(config: BreakerConfig) -> Self {
        Model {
            config,
            now_ms: 0,
            state: Self::closed(0),
            generations: 1,
        }
    }

    fn closed(generation: u64) -> ModelState {
        ModelState::Closed {
            generation,
            streak: 0,
            outcomes: Vec::new(),
        }
    }

    fn fresh(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    fn public(&self) -> CircuitState {
        match self.state {
            ModelState::Closed { .. } => CircuitState::Closed,
            ModelState::Open { .. } => CircuitState::Open,
            ModelState::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn open(&mut self) {
        self.state = ModelState::Open {
            until_ms: self.now_ms + self.config.open_for_ms,
        };
    }

    fn acquire(&mut self) -> Option<ModelPermit> {
        let probes = self.config.probes.clamp(1, 32_767);
        match self.state {
            ModelState::Closed { generation, .. } => Some(ModelPermit {
                generation,
                probe: false,
            }),
            ModelState::Open { until_ms } if self.now_ms >= until_ms => {
                let generation = self.fresh();
                self.state = ModelState::HalfOpen {
                    generation,
                    in_flight: 1,
                    succeeded: 0,
                };
                Some(ModelPermit {
                    generation,
                    probe: true,
                })
            }
            ModelState::Open { .. } => None,
            ModelState::HalfOpen {
                generation,
                ref mut in_flight,
                succeeded,
            } if *in_flight + succeeded < probes => {
                *in_flight += 1;
                Some(ModelPermit {
                    generation,
                    probe: true,
                })
            }
            ModelState::HalfOpen { .. } => None,
        }
    }

    fn report(&mut self, permit: ModelPermit, outcome: Option<bool>) {
        let probes = self.config.probes.clamp(1, 32_767);
        match (&mut self.state, outcome) {
            (
                ModelState::HalfOpen {
                    generation,
                    in_flight,
                    succeeded,
                },
                _,
            ) if permit.probe && *generation == permit.generation => match outcome {
                Some(true) if *succeeded + 1 >= probes => {
                    let generation = self.fresh();
                    self.state = Self::closed(generation);
                }
                Some(true) => {
                    *succeeded += 1;
                    *in_flight -= 1;
                }
                Some(false) => self.open(),
                None => *in_flight -= 1,
            },
            (
                ModelState::Closed {
                    generation,
                    streak,
                    outcomes,
                },
                Some(ok),
            ) if !permit.probe && *generation == permit.generation => match self.config.trip {
                Trip::Consecutive(threshold) => {
                    *streak = if ok { 0 } else { *streak + 1 };
                    if *streak >= threshold.max(1) {
                        self.open();
                    }
                }
                Trip::Rate {
                    rate,
                    window,
                    min_calls,
                } => {
                    let rate = if rate.is_nan() {
                        1.0
                    } else {
                        rate.clamp(0.0, 1.0)
                    };
                    let window = window.clamp(1, 1024) as usize;
                    let min_calls = min_calls.map_or(window, |n| (n.max(1) as usize).min(window));
                    outcomes.push(!ok);
                    // The rate is judged on a failure, and on the call that
                    // reaches min_calls: a success cannot raise it.
                    if !ok || outcomes.len() == min_calls {
                        let calls = outcomes.len().min(window);
                        let failures = outcomes[outcomes.len() - calls..]
                            .iter()
                            .filter(|&&failed| failed)
                            .count();
                        if calls >= min_calls
                            && failures > 0
                            && failures as f64 / calls as f64 >= rate
                        {
                            self.open();
                        }
                    }
                }
            },
            // Stale, or a closed permit dropped without an outcome.
            _ => {}
        }
    }
}

fn breaker_configs() -> impl Strategy<Value = BreakerConfig> {
    let trip = prop_oneof![
        (0..=6u32).prop_map(Trip::Consecutive),
        (
            prop_oneof![
                select(vec![0.0, 0.25, 0.5, 1.0, f64::NAN, 1.5]),
                0.0..=1.0f64
            ],
            0..=10u32,
            proptest::option::of(0..=12u32),
        )
            .prop_map(|(rate, window, min_calls)| Trip::Rate {
                rate,
                window,
                min_calls,
            }),
    ];
    (trip, 0..=40u64, 0..=3u32).prop_map(|(trip, open_for_ms, probes)| BreakerConfig {
        trip,
        open_for_ms,
        probes,
    })
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        5 => Just(Op::Acquire),
        4 => any::<usize>().prop_map(Op::Success),
        4 => any::<usize>().prop_map(Op::Failure),
        1 => any::<usize>().prop_map(Op::Drop),
        3 => (0..=25u64).prop_map(Op::AdvanceMs),
        1 => Just(Op::Reset),
        1 => Just(Op::ForceOpen),
    ];
    proptest::collection::vec(op, 0..200)
}

proptest! {
    #![proptest_config(proptest_config(2_000))]

    #[test]
    fn the_breaker_follows_its_documented_state_machine(
        config in breaker_configs(),
        ops in ops(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let breaker = config.breaker();
            let mut model = Model::new(config);
            let mut permits = Vec::new();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Acquire => {
                        let real = breaker.try_acquire();
                        let expected = model.acquire();
                        prop_assert_eq!(
                            real.as_ref().ok().map(|p| p.is_probe()),
                            expected.map(|p| p.probe),
                            "step {}: admitted?", step
                        );
                        if let (Ok(real), Some(expected)) = (real, expected) {
                            permits.push((real, expected));
                        }
                    }
                    Op::Success(i) | Op::Failure(i) | Op::Drop(i) if !permits.is_empty() => {
                        let (real, expected) = permits.remove(i % permits.len());
                        let outcome = match op {
                            Op::Success(_) => Some(true),
                            Op::Failure(_) => Some(false),
                            _ => None,
                        };
                        match outcome {
                            Some(true) => real.success(),
                            Some(false) => real.failure(),
                            None => drop(real),
                        }
                        model.report(expected, outcome);
                    }
                    Op::Success(_) | Op::Failure(_) | Op::Drop(_) => {}
                    Op::AdvanceMs(ms) => {
                        tokio::time::advance(Duration::from_millis(ms)).await;
                        model.now_ms += ms;
                    }
                    Op::Reset => {
                        breaker.reset();
                        let generation = model.fresh();
                        model.state = Model::closed(generation);
                    }
                    Op::ForceOpen => {
                        // The timed open the model knows: as after a trip.
                        breaker.force_open_for(Duration::from_millis(config.open_for_ms));
                        model.open();
                    }
                }
                prop_assert_eq!(breaker.state(), model.public(), "step {}: {:?}", step, op);
            }
            Ok(())
        })?;
    }
}
