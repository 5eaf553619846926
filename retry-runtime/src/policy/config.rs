//! A [`Policy`] built at run time from configuration (feature `serde`): the
//! keys of `#[resilient]` that are values rather than code, checked by the
//! attribute's own rules (the `retry-rules` crate), in its words.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use retry_rules::{BackoffKind, HedgeAfter, HedgeValues, Values, Written};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Policy;
use crate::error::Elapsed;
use crate::hedge::Hedge;
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
    /// `hedge`: a table (`hedge = { after = "p95" }`); an empty one hedges
    /// with the defaults.
    pub hedge: Option<HedgeConfig>,
    /// Every other key, refused by [`Policy::from_config`] with the reason:
    /// a typo is an error, not a default silently kept.
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

/// The `hedge` table: the attribute's `hedge(...)` keys.
///
/// ```
/// use retry_runtime::{Elapsed, Policy, PolicyConfig};
///
/// #[derive(Debug)]
/// struct ReadError;
/// impl From<Elapsed> for ReadError {
///     fn from(_: Elapsed) -> Self { ReadError }
/// }
///
/// let config: PolicyConfig = serde_json::from_str(
///     r#"{ "hedge": { "after": "p95", "max_hedges": 2, "max_extra_load": 0.05 } }"#,
/// ).unwrap();
/// let policy: Policy<ReadError> = Policy::from_config(&config).unwrap();
/// assert!(policy.hedging().is_some());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HedgeConfig {
    /// `after`: a latency quantile of the site (`"p95"`, the default) or a
    /// duration (`"40ms"`).
    pub after: Option<String>,
    /// `max_hedges`: hedges beside one attempt (1).
    pub max_hedges: Option<i64>,
    /// `max_extra_load`: hedges per call over a window (0.05).
    pub max_extra_load: Option<f64>,
    /// Every other key, refused with the known ones.
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
    /// Every problem: keys configuration does not read, then values that do
    /// not read as the attribute reads them, then the rules the others
    /// break (in `retry_rules::check`'s order).
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

    /// What `key` holds: absent, or read, or unreadable (and reported).
    fn read<T>(
        &mut self,
        key: &'static str,
        parsed: Option<Result<T, String>>,
    ) -> Written<T, &'static str> {
        match parsed {
            None => Written::Absent,
            Some(Ok(value)) => Written::Value(value, key),
            Some(Err(message)) => {
                self.push(key, message);
                Written::Unreadable
            }
        }
    }

    /// `key`'s duration, read as the attribute reads one.
    fn duration(
        &mut self,
        key: &'static str,
        text: Option<&String>,
    ) -> Written<Duration, &'static str> {
        let parsed = text.map(|text| {
            retry_rules::duration(text).map_err(|reason| format!("invalid `{key}`: {reason}"))
        });
        self.read(key, parsed)
    }
}

impl Problems {
    /// The `hedge` table's values, each read as the attribute reads it;
    /// its unknown keys reported.
    fn hedge(&mut self, hedge: &HedgeConfig) -> HedgeValues<&'static str> {
        for key in hedge.other.keys() {
            let message = retry_rules::unknown_key(
                key,
                Some("hedge"),
                retry_rules::HEDGE_CONFIG.iter().copied(),
            );
            self.push(&format!("hedge.{key}"), message);
        }
        let after = hedge.after.as_ref().map(|text| {
            retry_rules::hedge_after(text)
                .map_err(|reason| format!("invalid `after` in `hedge(...)`: {reason}"))
        });
        HedgeValues {
            after: self.read("hedge.after", after),
            max_hedges: self.read("hedge.max_hedges", hedge.max_hedges.map(|n| Ok(n.into()))),
            max_extra_load: self.read("hedge.max_extra_load", hedge.max_extra_load.map(Ok)),
        }
    }
}

/// The `Hedge` of values the rules passed, with the defaults for those not
/// written.
fn hedge_of(values: &HedgeValues<&'static str>) -> Hedge {
    let mut hedge = match values
        .after
        .value()
        .unwrap_or(retry_rules::defaults::HEDGE_AFTER)
    {
        HedgeAfter::Quantile(q) => Hedge::after_quantile(q),
        HedgeAfter::Delay(delay) => Hedge::after(delay),
    };
    if let Some(Ok(n)) = values.max_hedges.value().map(u32::try_from) {
        hedge = hedge.max_hedges(n);
    }
    if let Some(f) = values.max_extra_load.value() {
        hedge = hedge.max_extra_load(f);
    }
    hedge
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
            let message = retry_rules::in_code(key).unwrap_or_else(|| {
                retry_rules::unknown_key(key, None, retry_rules::CONFIG.iter().copied())
            });
            problems.push(key, message);
        }

        // Each value read in the attribute's syntax (what does not read is
        // reported here), then every rule between them, as the attribute's.
        let values = Values {
            max_attempts: problems.read("max_attempts", config.max_attempts.map(|n| Ok(n.into()))),
            backoff: problems.read("backoff", config.backoff.as_deref().map(BackoffKind::named)),
            base_delay: problems.duration("base_delay", config.base_delay.as_ref()),
            max_delay: problems.duration("max_delay", config.max_delay.as_ref()),
            multiplier: problems.read("multiplier", config.multiplier.map(Ok)),
            jitter: problems.read(
                "jitter",
                config.jitter.as_ref().map(|jitter| match jitter {
                    JitterConfig::Name(name) => Jitter::named(name),
                    JitterConfig::Factor(f) => Ok(Jitter::Proportional(*f)),
                }),
            ),
            timeout: problems.duration("timeout", config.timeout.as_ref()),
            deadline: problems.duration("deadline", config.deadline.as_ref()),
            ..Values::default()
        };
        let budget_off = config.budget.as_deref().map(retry_rules::budget_off);
        let budget_off = problems.read("budget", budget_off).value().is_some();
        let values = Values {
            hedge: config.hedge.as_ref().map(|hedge| problems.hedge(hedge)),
            ..values
        };
        for problem in retry_rules::check(&values) {
            problems.push(problem.at, problem.message);
        }
        if !problems.0.is_empty() {
            return Err(ConfigError {
                problems: problems.0,
            });
        }

        let mut policy = Policy::new();
        if let Some(name) = &config.name {
            policy = policy.name(Box::leak(name.clone().into_boxed_str()));
        }
        if let Some(Ok(n)) = values.max_attempts.value().map(u32::try_from) {
            policy = policy.max_attempts(n);
        }
        if let Some(kind) = values.backoff.value() {
            policy.settings = policy.settings.backoff(kind);
        }
        if let Some(base) = values.base_delay.value() {
            policy = policy.base_delay(base);
        }
        if let Some(cap) = values.max_delay.value() {
            policy = policy.max_delay(cap);
        }
        if let Some(m) = values.multiplier.value() {
            policy = policy.multiplier(m);
        }
        if let Some(jitter) = values.jitter.value() {
            policy = policy.jitter(jitter);
        }
        if let Some(timeout) = values.timeout.value() {
            policy = policy.timeout(timeout);
        }
        if let Some(deadline) = values.deadline.value() {
            policy = policy.deadline(deadline);
        }
        if budget_off {
            policy = policy.no_budget();
        }
        if let Some(hedge) = &values.hedge {
            policy = policy.hedge(hedge_of(hedge));
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use retry_rules::defaults;

    use super::{Policy, PolicyConfig};
    use crate::CircuitBreaker;
    use crate::error::Elapsed;

    #[derive(Debug)]
    struct ApiError;

    impl From<Elapsed> for ApiError {
        fn from(_: Elapsed) -> Self {
            ApiError
        }
    }

    /// The runtime takes its defaults from `retry-rules`, but for the
    /// breaker's threshold, which its primitive spells itself.
    #[test]
    fn the_breakers_default_threshold_is_the_rules() {
        assert_eq!(
            defaults::FAILURE_THRESHOLD,
            CircuitBreaker::DEFAULT_FAILURE_THRESHOLD
        );
    }

    /// Every key `retry-rules` lists as configuration is a field of
    /// `PolicyConfig`, and no other key is.
    #[test]
    fn the_configuration_keys_are_the_fields() {
        for key in retry_rules::CONFIG {
            let config: PolicyConfig =
                serde_json::from_str(&format!("{{ {key:?}: null }}")).unwrap();
            assert!(
                config.other.is_empty(),
                "`{key}` is not a field of `PolicyConfig`"
            );
        }
        for (key, _) in retry_rules::IN_CODE {
            let config: PolicyConfig =
                serde_json::from_str(&format!("{{ {key:?}: null }}")).unwrap();
            assert!(
                config.other.contains_key(*key),
                "`{key}` is a field of `PolicyConfig`"
            );
            let refused = Policy::<ApiError>::from_config(&config).unwrap_err();
            assert_eq!(
                refused.problems()[0].message,
                retry_rules::in_code(key).unwrap()
            );
        }
    }
}
