//! The keys of a policy, which door can set each, and the rules relating
//! the keys that are values, composed once: the attribute (at compile time,
//! each problem on the offending token) and `Policy::from_config` (at run
//! time, each problem under its key's name) fill the same [`Values`] and
//! call the same [`check`], so they apply the same rules, skip the same
//! ones after the same unreadable values, and say the same words.
//!
//! ```
//! use std::time::Duration;
//! use retry_rules::{Values, Written, check};
//!
//! // A configuration file's `base_delay = "30s"`, problems filed by key.
//! let values = Values {
//!     base_delay: Written::Value(Duration::from_secs(30), "base_delay"),
//!     ..Values::default()
//! };
//! let problems = check(&values);
//! assert_eq!(problems[0].at, "base_delay");
//! assert_eq!(
//!     problems[0].message,
//!     "`base_delay` (30s) is longer than `max_delay` (20s); lower `base_delay` or raise `max_delay`",
//! );
//! ```

use std::time::Duration;

use crate::{BackoffKind, HedgeAfter, Jitter, defaults, rules};

/// The keys a configuration file can set: the fields of the runtime's
/// `PolicyConfig`, named as in the attribute.
pub const CONFIG: &[&str] = &[
    "name",
    "max_attempts",
    "backoff",
    "base_delay",
    "max_delay",
    "multiplier",
    "jitter",
    "timeout",
    "deadline",
    "budget",
    "hedge",
];

/// The keys of the `hedge` table a configuration file can set (the
/// attribute's `hedge(...)`).
pub const HEDGE_CONFIG: &[&str] = &["after", "max_hedges", "max_extra_load"];

/// The attribute's keys a configuration file cannot set, since their value
/// is code or shared state, each with what to do instead. Every key of the
/// attribute is in this list or in [`CONFIG`] (the macro's tests check it).
pub const IN_CODE: &[(&str, &str)] = &[
    (
        "retry_on",
        "set it with `retry_if` on the policy `from_config` returns",
    ),
    (
        "no_retry_on",
        "set it with `retry_if` on the policy `from_config` returns",
    ),
    (
        "retry_if",
        "set it with `retry_if` on the policy `from_config` returns",
    ),
    (
        "breaker_if",
        "set it with `breaker_if` on the policy `from_config` returns",
    ),
    (
        "retry_after",
        "set it with `retry_after` on the policy `from_config` returns",
    ),
    (
        "on_retry",
        "set it with `on_retry` on the policy `from_config` returns",
    ),
    (
        "fallback",
        "apply it to the result of the policy's `retry`, e.g. with `or_else`",
    ),
    (
        "circuit_breaker",
        "set it with `circuit_breaker` on the policy `from_config` returns",
    ),
    (
        "concurrency",
        "set it with `concurrency` on the policy `from_config` returns",
    ),
    (
        "rate_limit",
        "set it with `rate_limit` on the policy `from_config` returns",
    ),
    (
        "burst",
        "set it with `rate_limit` on the policy `from_config` returns",
    ),
    (
        "max_wait",
        "set it with `max_wait` on the policy `from_config` returns",
    ),
    (
        "attempt",
        "the policy's closure receives each attempt's `Attempt`",
    ),
    (
        "crate",
        "a `Policy` needs none: it tells the attribute's expansion where the runtime is",
    ),
];

/// Why configuration cannot set `key`, if it is one of [`IN_CODE`].
///
/// ```
/// assert_eq!(
///     retry_rules::in_code("retry_on").unwrap(),
///     "`retry_on` cannot be set from configuration: it is code or shared state; set it with `retry_if` on the policy `from_config` returns",
/// );
/// assert_eq!(retry_rules::in_code("timeout"), None);
/// ```
pub fn in_code(key: &str) -> Option<String> {
    let (key, instead) = IN_CODE.iter().find(|(code, _)| *code == key)?;
    Some(format!(
        "`{key}` cannot be set from configuration: it is code or shared state; {instead}"
    ))
}

/// What a door read for one key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Written<T, At> {
    /// Not written: its default applies.
    Absent,
    /// Written, but its value did not parse (the door reported why): the
    /// rules that read it are skipped, so one typo does not cause a
    /// cascade of wrong errors.
    Unreadable,
    /// Written as `T`, at `At`: where a problem with it is reported (a
    /// token's span in the attribute, the key's name in a file).
    Value(T, At),
}

impl<T: Copy, At: Copy> Written<T, At> {
    /// The value, if one was read.
    pub fn value(&self) -> Option<T> {
        match *self {
            Written::Value(value, _) => Some(value),
            _ => None,
        }
    }

    /// Where it was written, if it was read.
    pub fn at(&self) -> Option<At> {
        match *self {
            Written::Value(_, at) => Some(at),
            _ => None,
        }
    }

    /// The value, or `default` when the key was not written. `None` when
    /// it was written but not read: nothing can be said of it.
    pub fn or_default(&self, default: T) -> Option<T> {
        match *self {
            Written::Absent => Some(default),
            Written::Unreadable => None,
            Written::Value(value, _) => Some(value),
        }
    }
}

/// The value keys of one policy, as a door read them.
#[derive(Debug, Clone, PartialEq)]
pub struct Values<At> {
    /// `max_attempts`, as written (a negative one gets its own message).
    pub max_attempts: Written<i128, At>,
    /// `backoff`.
    pub backoff: Written<BackoffKind, At>,
    /// `base_delay`.
    pub base_delay: Written<Duration, At>,
    /// `max_delay`.
    pub max_delay: Written<Duration, At>,
    /// `multiplier`.
    pub multiplier: Written<f64, At>,
    /// `jitter`.
    pub jitter: Written<Jitter, At>,
    /// `timeout`.
    pub timeout: Written<Duration, At>,
    /// `deadline`.
    pub deadline: Written<Duration, At>,
    /// `max_wait` (the attribute's only: configuration leaves it to code).
    pub max_wait: Written<Duration, At>,
    /// An inline breaker counting consecutive failures (the attribute's
    /// only).
    pub breaker: Option<ConsecutiveBreaker<At>>,
    /// `hedge(..)`, if written.
    pub hedge: Option<HedgeValues<At>>,
}

/// `hedge(after = .., max_hedges = .., max_extra_load = ..)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeValues<At> {
    /// `after`.
    pub after: Written<HedgeAfter, At>,
    /// `max_hedges`, as written.
    pub max_hedges: Written<i128, At>,
    /// `max_extra_load`.
    pub max_extra_load: Written<f64, At>,
}

/// An inline `circuit_breaker` that counts consecutive failures (no
/// `failure_rate`), written at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsecutiveBreaker<At> {
    /// Where the breaker was written: a default threshold's problem goes here.
    pub at: At,
    /// `failure_threshold`.
    pub failure_threshold: Written<i128, At>,
}

impl<At> Default for Values<At> {
    /// Nothing written.
    fn default() -> Self {
        Values {
            max_attempts: Written::Absent,
            backoff: Written::Absent,
            base_delay: Written::Absent,
            max_delay: Written::Absent,
            multiplier: Written::Absent,
            jitter: Written::Absent,
            timeout: Written::Absent,
            deadline: Written::Absent,
            max_wait: Written::Absent,
            breaker: None,
            hedge: None,
        }
    }
}

/// A broken rule: its message, and where the door reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem<At> {
    /// Where: the token or the key the message is about.
    pub at: At,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every rule the written values break, in a fixed order: each duration on
/// its own, then the rules relating keys (compared with the defaults of
/// keys not written), then the counts.
pub fn check<At: Copy>(values: &Values<At>) -> Vec<Problem<At>> {
    let mut problems = Vec::new();
    let mut push = |at: At, verdict: Result<(), String>| {
        if let Err(message) = verdict {
            problems.push(Problem { at, message });
        }
    };
    for (key, written) in [
        ("base_delay", values.base_delay),
        ("max_delay", values.max_delay),
        ("timeout", values.timeout),
        ("deadline", values.deadline),
        ("max_wait", values.max_wait),
    ] {
        if let Written::Value(duration, at) = written {
            push(at, rules::positive_duration(key, duration));
        }
    }

    // With defaults, only a written key can be out of order.
    let base = values.base_delay.or_default(defaults::BASE_DELAY);
    let max = values.max_delay.or_default(defaults::MAX_DELAY);
    let written = values.base_delay.at().or(values.max_delay.at());
    if let (Some(base), Some(max), Some(at)) = (base, max, written) {
        push(
            at,
            rules::delays_in_order(("base_delay", base), ("max_delay", max)),
        );
    }

    // What is written to happen before the deadline must fit before it.
    // Only keys written are compared: a default `base_delay` with full
    // jitter may well fit a short deadline.
    if let Some(deadline) = values.deadline.value().filter(|d| !d.is_zero()) {
        if let Written::Value(timeout, at) = values.timeout {
            push(at, rules::timeout_within_deadline(timeout, deadline));
        }
        let retries_wait = values
            .backoff
            .or_default(defaults::BACKOFF)
            .is_some_and(|kind| kind != BackoffKind::None);
        if let (Written::Value(base, at), true) = (values.base_delay, retries_wait) {
            push(at, rules::base_delay_within_deadline(base, deadline));
        }
    }

    // With an unreadable `backoff` it is unknown whether these keys fit it.
    let exponential = values
        .backoff
        .or_default(defaults::BACKOFF)
        .is_none_or(|kind| kind == BackoffKind::Exponential);
    if let Written::Value(multiplier, at) = values.multiplier {
        push(at, rules::multiplier_fits(multiplier, exponential));
    }
    if let Written::Value(jitter, at) = values.jitter {
        push(at, rules::jitter_fits(jitter, exponential));
    }

    if let Written::Value(n, at) = values.max_attempts {
        push(
            at,
            rules::at_least_one("max_attempts", n, "1 means no retries").map(drop),
        );
    }
    if let Some(breaker) = &values.breaker {
        let max_attempts = match values.max_attempts {
            Written::Absent => Some(defaults::MAX_ATTEMPTS),
            Written::Unreadable => None,
            Written::Value(n, _) => valid_count(n),
        };
        let threshold = match breaker.failure_threshold {
            Written::Absent => Some((defaults::FAILURE_THRESHOLD, breaker.at, true)),
            Written::Unreadable => None,
            Written::Value(n, at) => valid_count(n).map(|n| (n, at, false)),
        };
        // An unreadable or out-of-range count is reported on its own.
        if let (Some(max_attempts), Some((threshold, at, default))) = (max_attempts, threshold) {
            push(
                at,
                rules::breaker_outlasts_a_call(threshold, max_attempts, default),
            );
        }
    }
    if let Some(hedge) = &values.hedge {
        if let Written::Value(HedgeAfter::Quantile(q), at) = hedge.after {
            push(at, rules::hedge_quantile(q));
        }
        if let Written::Value(n, at) = hedge.max_hedges {
            push(at, rules::hedge_count(n));
        }
        if let Written::Value(f, at) = hedge.max_extra_load {
            push(at, rules::hedge_extra_load(f));
        }
    }
    problems
}

/// A count as the runtime takes it, if it is one.
fn valid_count(n: i128) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| *n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn messages(values: &Values<&'static str>) -> Vec<(&'static str, String)> {
        check(values)
            .into_iter()
            .map(|problem| (problem.at, problem.message))
            .collect()
    }

    fn keys(values: &Values<&'static str>) -> Vec<&'static str> {
        check(values)
            .into_iter()
            .map(|problem| problem.at)
            .collect()
    }

    #[test]
    fn nothing_written_breaks_nothing() {
        assert!(check(&Values::<()>::default()).is_empty());
    }

    #[test]
    fn a_written_delay_is_compared_with_the_others_default() {
        let max = Values {
            max_delay: Written::Value(Duration::from_millis(50), "max_delay"),
            ..Values::default()
        };
        assert_eq!(
            messages(&max),
            [(
                "max_delay",
                "`base_delay` (100ms) is longer than `max_delay` (50ms); lower `base_delay` or raise `max_delay`".to_owned()
            )]
        );
        let both = Values {
            base_delay: Written::Value(S(2), "base_delay"),
            ..max
        };
        assert_eq!(keys(&both), ["base_delay"]);
        let unreadable = Values {
            base_delay: Written::Unreadable,
            ..max
        };
        assert!(
            check(&unreadable).is_empty(),
            "nothing is known of the base"
        );
    }

    #[test]
    fn zero_durations_are_refused_each_under_its_key() {
        let zero = |key| Written::Value(Duration::ZERO, key);
        let values = Values {
            base_delay: zero("base_delay"),
            max_delay: zero("max_delay"),
            timeout: zero("timeout"),
            deadline: zero("deadline"),
            max_wait: zero("max_wait"),
            ..Values::default()
        };
        assert_eq!(
            keys(&values),
            ["base_delay", "max_delay", "timeout", "deadline", "max_wait"]
        );
    }

    #[test]
    fn what_must_happen_before_the_deadline_fits_before_it() {
        let values = Values {
            deadline: Written::Value(S(2), "deadline"),
            timeout: Written::Value(S(2), "timeout"),
            base_delay: Written::Value(S(3), "base_delay"),
            ..Values::default()
        };
        assert_eq!(keys(&values), ["timeout", "base_delay"]);
        for no_wait in [
            Written::Value(BackoffKind::None, "backoff"),
            Written::Unreadable,
        ] {
            let values = Values {
                backoff: no_wait,
                ..values
            };
            assert_eq!(keys(&values), ["timeout"], "{no_wait:?}");
        }
        let zero = Values {
            deadline: Written::Value(Duration::ZERO, "deadline"),
            ..values
        };
        assert_eq!(keys(&zero), ["deadline"], "only that it is zero");
        let fits = Values {
            timeout: Written::Value(Duration::from_millis(1999), "timeout"),
            base_delay: Written::Value(Duration::from_millis(1999), "base_delay"),
            ..values
        };
        assert!(check(&fits).is_empty());
    }

    #[test]
    fn the_growth_keys_need_an_exponential_backoff_unless_it_is_unreadable() {
        let values = Values {
            backoff: Written::Value(BackoffKind::Fixed, "backoff"),
            multiplier: Written::Value(3.0, "multiplier"),
            jitter: Written::Value(Jitter::Decorrelated, "jitter"),
            ..Values::default()
        };
        assert_eq!(keys(&values), ["multiplier", "jitter"]);
        for exponential in [
            Written::Absent,
            Written::Unreadable,
            Written::Value(BackoffKind::Exponential, "backoff"),
        ] {
            let values = Values {
                backoff: exponential,
                ..values
            };
            assert!(check(&values).is_empty(), "{exponential:?}");
        }
    }

    #[test]
    fn max_attempts_counts_from_one() {
        let values = Values {
            max_attempts: Written::Value(0, "max_attempts"),
            ..Values::default()
        };
        assert_eq!(
            messages(&values),
            [(
                "max_attempts",
                "`max_attempts` must be at least 1 (got 0); 1 means no retries".to_owned()
            )]
        );
        let one = Values {
            max_attempts: Written::Value(1, "max_attempts"),
            ..Values::default()
        };
        assert!(check(&one).is_empty());
    }

    #[test]
    fn a_consecutive_breaker_outlasts_a_failing_call() {
        let breaker = |failure_threshold| {
            Some(ConsecutiveBreaker {
                at: "circuit_breaker",
                failure_threshold,
            })
        };
        let attempts = |n| Written::Value(n, "max_attempts");
        let values = |max_attempts, threshold| Values {
            max_attempts,
            breaker: breaker(threshold),
            ..Values::default()
        };
        // The defaults (3 attempts, a threshold of 5) are fine.
        assert!(check(&values(Written::Absent, Written::Absent)).is_empty());
        assert_eq!(
            messages(&values(attempts(5), Written::Absent)),
            [(
                "circuit_breaker",
                "the breaker's default `failure_threshold` (5) is not above `max_attempts` (5): one call failing every attempt opens the breaker; set `failure_threshold` above 5 or lower `max_attempts`".to_owned()
            )]
        );
        let threshold = Written::Value(3, "failure_threshold");
        assert_eq!(
            keys(&values(Written::Absent, threshold)),
            ["failure_threshold"]
        );
        assert!(check(&values(attempts(2), threshold)).is_empty());
        // Unreadable or out-of-range counts are not compared.
        assert!(check(&values(Written::Unreadable, threshold)).is_empty());
        assert!(check(&values(attempts(5), Written::Unreadable)).is_empty());
        assert_eq!(keys(&values(attempts(0), threshold)), ["max_attempts"]);
        let zero = Written::Value(0, "failure_threshold");
        assert!(check(&values(attempts(5), zero)).is_empty());
    }

    #[test]
    fn problems_come_in_a_fixed_order() {
        let values = Values {
            max_attempts: Written::Value(0, "max_attempts"),
            jitter: Written::Value(Jitter::Proportional(2.0), "jitter"),
            multiplier: Written::Value(0.5, "multiplier"),
            base_delay: Written::Value(S(30), "base_delay"),
            timeout: Written::Value(Duration::ZERO, "timeout"),
            ..Values::default()
        };
        assert_eq!(
            keys(&values),
            [
                "timeout",
                "base_delay",
                "multiplier",
                "jitter",
                "max_attempts"
            ]
        );
    }

    #[test]
    fn a_hedges_values_are_each_in_range() {
        let hedge = |after, max_hedges, max_extra_load| Values {
            hedge: Some(HedgeValues {
                after: Written::Value(after, "after"),
                max_hedges: Written::Value(max_hedges, "max_hedges"),
                max_extra_load: Written::Value(max_extra_load, "max_extra_load"),
            }),
            ..Values::default()
        };
        let p = HedgeAfter::Quantile;
        assert!(check(&hedge(p(0.95), 1, 0.05)).is_empty());
        assert!(check(&hedge(p(0.01), 10, 1.0)).is_empty(), "the bounds");
        assert!(check(&hedge(p(0.999), 1, 1.0)).is_empty(), "p99.9");
        let fixed = HedgeAfter::Delay(Duration::ZERO);
        assert!(check(&hedge(fixed, 1, 0.05)).is_empty(), "hedges at once");
        assert_eq!(
            keys(&hedge(p(0.0099), 0, 0.0)),
            ["after", "max_hedges", "max_extra_load"]
        );
        assert_eq!(
            keys(&hedge(p(0.9991), 11, 1.01)),
            ["after", "max_hedges", "max_extra_load"]
        );
        assert_eq!(
            keys(&hedge(p(f64::NAN), 1, f64::NAN)),
            ["after", "max_extra_load"]
        );
        assert_eq!(
            messages(&hedge(p(1.0), 1, 0.05)),
            [(
                "after",
                "`after` must be a quantile from p1 to p99.9 (got p100); e.g. `after = \"p95\"` hedges the slowest 5% of attempts".to_owned()
            )]
        );
    }

    #[test]
    fn every_key_in_code_says_what_to_do_instead() {
        for (key, _) in IN_CODE {
            assert!(!CONFIG.contains(key), "{key} is in both lists");
            let message = in_code(key).unwrap();
            assert!(message.starts_with(&format!("`{key}` cannot be set from configuration")));
        }
        assert_eq!(in_code("max_attempts"), None);
    }
}
