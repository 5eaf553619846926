//! A [`Policy`] built at run time from configuration (feature `serde`): the
//! keys of `#[resilient]` that are values rather than code, checked by the
//! attribute's own rules (the `retry-rules` crate), in its words.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use retry_rules::{BackoffKind, JitterKind, defaults};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Policy;
use crate::backoff::Strategy;
use crate::error::Elapsed;
use crate::jitter::Jitter;

/// The keys of `#[resilient]` a configuration file can set, with the
/// attribute's names and value syntax: durations are strings with a unit,
/// names are strings.
///
/// Read it with any serde format (TOML, JSON, YAML, figment, config-rs) and
/// turn it into a policy with [`Policy::from_config`], which checks it with
/// the attribute's rules. Keys that are code or shared state (`retry_if`,
/// `retry_after`, `on_retry`, `circuit_breaker`, `concurrency`,
/// `rate_limit`, a shared `budget`, `max_wait`) are set with the builders on
/// the policy `from_config` returns.
///
/// ```
/// use retry_runtime::{Elapsed, Policy, PolicyConfig};
///
/// #[derive(Debug)]
/// struct ApiError;
/// impl From<Elapsed> for ApiError {
///     fn from(_: Elapsed) -> Self { ApiError }
/// }
///
/// let config: PolicyConfig = serde_json::from_str(
///     r#"{ "max_attempts": 5, "backoff": "fixed", "base_delay": "50ms", "timeout": "2s" }"#,
/// ).unwrap();
/// let policy: Policy<ApiError> = Policy::from_config(&config).unwrap();
/// # let _ = policy;
///
/// let typo: PolicyConfig = serde_json::from_str(r#"{ "base_delay": "50" }"#).unwrap();
/// let error = Policy::<ApiError>::from_config(&typo).unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "invalid `base_delay`: duration `\"50\"` has no unit; write e.g. `\"50ms\"` or `\"50s\"`",
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// `name`: the policy's name in events, metrics and statistics.
    pub name: Option<String>,
    /// `max_attempts`: attempts in total, the first included (3).
    pub max_attempts: Option<i64>,
    /// `backoff`: `"exponential"` (the default), `"fixed"`, `"linear"`,
    /// `"fibonacci"` or `"none"`.
    pub backoff: Option<String>,
    /// `base_delay`: the first retry's delay before jitter (`"100ms"`).
    pub base_delay: Option<String>,
    /// `max_delay`: the cap on one delay (`"20s"`).
    pub max_delay: Option<String>,
    /// `multiplier`: the growth of an exponential backoff (2.0).
    pub multiplier: Option<f64>,
    /// `jitter`: `"full"` (the default), `"equal"`, `"decorrelated"`,
    /// `"none"`, or a factor in (0, 1] such as `0.2`.
    pub jitter: Option<JitterConfig>,
    /// `timeout`: per attempt (none).
    pub timeout: Option<String>,
    /// `deadline`: for the whole call (none).
    pub deadline: Option<String>,
    /// `budget`: `"off"` for no retry budget; without it the policy has
    /// its own.
    pub budget: Option<String>,
    /// Every other key, refused by [`Policy::from_config`] with the reason:
    /// a typo is an error, not a default silently kept.
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

/// The `jitter` key's two forms.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum JitterConfig {
    /// `"full"`, `"equal"`, `"decorrelated"` or `"none"`.
    Name(String),
    /// ± this fraction of the delay.
    Factor(f64),
}

/// The keys [`PolicyConfig`] reads, for "did you mean".
const KEYS: &[&str] = &[
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
];

/// Keys of the attribute that configuration cannot set, and the builder
/// that does.
const IN_CODE: &[(&str, &str)] = &[
    ("retry_on", "retry_if"),
    ("no_retry_on", "retry_if"),
    ("retry_if", "retry_if"),
    ("breaker_if", "breaker_if"),
    ("retry_after", "retry_after"),
    ("on_retry", "on_retry"),
    ("fallback", "the result's `or_else`"),
    ("circuit_breaker", "circuit_breaker"),
    ("concurrency", "concurrency"),
    ("rate_limit", "rate_limit"),
    ("burst", "rate_limit"),
    ("max_wait", "max_wait"),
    ("attempt", "the closure's `Attempt`"),
];

/// Why a [`PolicyConfig`] was refused: every problem found, each naming its
/// key, in the words `#[resilient]` uses for the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

/// One refused key of a [`PolicyConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key, as written in the configuration.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    /// Every problem, in the order of the keys' checks.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: &str, message: String) {
        self.0.push(ConfigProblem {
            key: key.to_owned(),
            message,
        });
    }

    /// `key`'s duration, if set and well written.
    fn duration(&mut self, key: &str, text: Option<&String>) -> Option<Duration> {
        let parsed = retry_rules::duration(text?)
            .map_err(|reason| self.push(key, format!("invalid `{key}`: {reason}")))
            .ok()?;
        retry_rules::positive_duration(key, parsed)
            .map_err(|message| self.push(key, message))
            .ok()?;
        Some(parsed)
    }
}

impl<E: From<Elapsed>> Policy<E> {
    /// A policy from configuration: the attribute's defaults, then each key
    /// `config` sets, checked by the rules `#[resilient]` applies at compile
    /// time, with the same messages. Every problem is reported at once.
    ///
    /// Needs `E: From<Elapsed>`, since the configuration may set a
    /// `timeout` or a `deadline`. The policy's `name`, if set, is leaked
    /// (a policy's name is `&'static str`): build a policy once, at start-up,
    /// and keep it in a `static OnceLock` or leak it for
    /// [`retry`](Self::retry).
    pub fn from_config(config: &PolicyConfig) -> Result<Self, ConfigError> {
        let mut problems = Problems::default();
        for key in config.other.keys() {
            let message = match IN_CODE.iter().find(|(code, _)| code == key) {
                Some((_, builder)) => format!(
                    "`{key}` cannot be set from configuration: it is code or shared state; set it with `{builder}` on the policy `from_config` returns"
                ),
                None => retry_rules::unknown_key(key, None, KEYS.iter().copied()),
            };
            problems.push(key, message);
        }

        let max_attempts = config.max_attempts.and_then(|n| {
            retry_rules::at_least_one("max_attempts", n.into(), "1 means no retries")
                .map_err(|message| problems.push("max_attempts", message))
                .ok()
        });
        let backoff = config.backoff.as_deref().and_then(|name| {
            BackoffKind::named(name)
                .map_err(|message| problems.push("backoff", message))
                .ok()
        });
        let backoff_failed = config.backoff.is_some() && backoff.is_none();
        let base_delay = problems.duration("base_delay", config.base_delay.as_ref());
        let max_delay = problems.duration("max_delay", config.max_delay.as_ref());
        let delays_failed = (config.base_delay.is_some() && base_delay.is_none())
            || (config.max_delay.is_some() && max_delay.is_none());
        let timeout = problems.duration("timeout", config.timeout.as_ref());
        let deadline = problems.duration("deadline", config.deadline.as_ref());
        if !delays_failed {
            let base = base_delay.unwrap_or(defaults::BASE_DELAY);
            let max = max_delay.unwrap_or(defaults::MAX_DELAY);
            if let Err(message) = retry_rules::delays_in_order(base, max) {
                let key = if base_delay.is_some() {
                    "base_delay"
                } else {
                    "max_delay"
                };
                problems.push(key, message);
            }
        }
        if let Some(deadline) = deadline {
            if let Some(timeout) = timeout {
                if let Err(message) = retry_rules::timeout_within_deadline(timeout, deadline) {
                    problems.push("timeout", message);
                }
            }
            let retries_wait = !backoff_failed && backoff != Some(BackoffKind::None);
            if let Some(base) = base_delay.filter(|_| retries_wait) {
                if let Err(message) = retry_rules::base_delay_within_deadline(base, deadline) {
                    problems.push("base_delay", message);
                }
            }
        }
        // With an unknown `backoff` it is unknown whether these keys fit it.
        let exponential = backoff_failed || backoff.is_none_or(|b| b == BackoffKind::Exponential);
        if let Some(m) = config.multiplier {
            if let Err(message) = retry_rules::multiplier_fits(m, exponential) {
                problems.push("multiplier", message);
            }
        }
        let jitter = config.jitter.as_ref().and_then(|jitter| {
            let kind = match jitter {
                JitterConfig::Name(name) => JitterKind::named(name),
                JitterConfig::Factor(f) => Ok(JitterKind::Proportional(*f)),
            };
            kind.and_then(|kind| retry_rules::jitter_fits(kind, exponential).map(|()| kind))
                .map_err(|message| problems.push("jitter", message))
                .ok()
        });
        let budget_off = config.budget.as_deref().is_some_and(|text| {
            retry_rules::budget_off(text)
                .map_err(|message| problems.push("budget", message))
                .is_ok()
        });
        if !problems.0.is_empty() {
            return Err(ConfigError {
                problems: problems.0,
            });
        }

        let mut policy = Policy::new();
        if let Some(name) = &config.name {
            policy = policy.name(Box::leak(name.clone().into_boxed_str()));
        }
        if let Some(n) = max_attempts {
            policy = policy.max_attempts(n);
        }
        if let Some(kind) = backoff {
            policy.settings = policy.settings.backoff(match kind {
                BackoffKind::Exponential => Strategy::Exponential,
                BackoffKind::Fixed => Strategy::Fixed,
                BackoffKind::Linear => Strategy::Linear,
                BackoffKind::Fibonacci => Strategy::Fibonacci,
                BackoffKind::None => Strategy::None,
            });
        }
        if let Some(base) = base_delay {
            policy = policy.base_delay(base);
        }
        if let Some(cap) = max_delay {
            policy = policy.max_delay(cap);
        }
        if let Some(m) = config.multiplier {
            policy = policy.multiplier(m);
        }
        if let Some(kind) = jitter {
            policy = policy.jitter(match kind {
                JitterKind::None => Jitter::None,
                JitterKind::Full => Jitter::Full,
                JitterKind::Equal => Jitter::Equal,
                JitterKind::Decorrelated => Jitter::Decorrelated,
                JitterKind::Proportional(f) => Jitter::Proportional(f),
            });
        }
        if let Some(timeout) = timeout {
            policy = policy.timeout(timeout);
        }
        if let Some(deadline) = deadline {
            policy = policy.deadline(deadline);
        }
        if budget_off {
            policy = policy.no_budget();
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::defaults;
    use crate::engine::Settings;
    use crate::{Backoff, CircuitBreaker};

    /// The rules of a configuration file compare keys with the defaults
    /// `retry-rules` holds; a policy built without those keys runs on the
    /// runtime's own. They must be the same values.
    #[test]
    fn the_defaults_rules_compare_are_the_runtimes() {
        assert_eq!(defaults::MAX_ATTEMPTS, Settings::DEFAULT_MAX_ATTEMPTS);
        assert_eq!(defaults::BASE_DELAY, Backoff::new().base());
        assert_eq!(defaults::MAX_DELAY, Backoff::new().cap());
        assert_eq!(
            defaults::FAILURE_THRESHOLD,
            CircuitBreaker::DEFAULT_FAILURE_THRESHOLD
        );
    }
}
