//! One set of rules for both doors: every `tests/ui/fail` case whose
//! attribute could be a configuration file is read as one, and
//! `Policy::from_config` must refuse it with exactly the errors rustc
//! printed for the attribute (its reviewed `.stderr` file).
//!
//! `#[resilient(base_delay = "100")]` is TOML's inline table
//! `{ base_delay = "100" }`: the attribute's value syntax is TOML's, so no
//! fixture is written twice (`hedge(after = "p95")` is the table
//! `hedge = { after = "p95" }`). Cases whose arguments are not TOML (paths,
//! closures, `circuit_breaker(...)`) or name keys configuration refuses as
//! code are not configuration; the few that are but fail for a reason a
//! configuration cannot have are listed below with that reason.

use std::path::{Path, PathBuf};

use steadfast::{Elapsed, Policy, PolicyConfig};

#[derive(Debug)]
struct ApiError;

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError
    }
}

/// Cases configuration accepts, and why the attribute did not.
const ACCEPTED: &[(&str, &str)] = &[
    (
        "consumed-argument",
        "the function's body moves an argument; a configuration has no body",
    ),
    (
        "consumed-argument-sync",
        "the function's body moves an argument; a configuration has no body",
    ),
    (
        "dead-code-still-fires",
        "rustc's own lint on the function, not on the keys",
    ),
    (
        "instrument-above-resilient-consumes-argument",
        "the function's body moves an argument; a configuration has no body",
    ),
    (
        "not-a-function",
        "the attribute sits on something that is not a function",
    ),
    (
        "not-returning-result",
        "the function returns no `Result`; `Policy<E>` always does",
    ),
    (
        "track-caller-on-sync-fn",
        "another attribute on the function, not the keys",
    ),
    (
        "timeout-on-sync-fn",
        "a plain fn cannot be cancelled; `Policy::retry_blocking` ignores `timeout`, as documented",
    ),
    (
        "hedge-on-sync-code",
        "a plain fn cannot run an attempt beside another; `Policy::retry_blocking` does not hedge, as documented",
    ),
    (
        "missing-from-elapsed-timeout",
        "the error type lacks `From<Elapsed>`, which `from_config` requires of every policy",
    ),
    (
        "missing-from-elapsed-deadline",
        "the error type lacks `From<Elapsed>`, which `from_config` requires of every policy",
    ),
    (
        "missing-from-elapsed-foreign-error",
        "the error type lacks `From<Elapsed>`, which `from_config` requires of every policy",
    ),
];

/// Cases whose value has the wrong type for the key: the format refuses
/// them before the rules see them (`name = 42`), in its own words.
const WRONG_TYPE: &[&str] = &["name-wrong-type", "wrong-value-type"];

fn fail_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/fail")
}

/// The arguments of the case's `#[resilient(...)]`, if it has one.
fn attribute_arguments(source: &str) -> Option<String> {
    let start = source.find("#[resilient(")? + "#[resilient(".len();
    let mut depth = 1;
    for (i, c) in source[start..].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            let arguments = source[start..start + i].replace('\n', " ");
            return Some(arguments.trim().trim_end_matches(',').to_owned());
        }
    }
    None
}

/// `hedge(...)` as the table configuration writes it: `hedge = { ... }`.
fn hedge_as_table(arguments: &str) -> String {
    let Some(start) = arguments.find("hedge(") else {
        return arguments.to_owned();
    };
    let open = start + "hedge".len();
    let mut depth = 0;
    for (i, c) in arguments[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 1 => {
                let close = open + i;
                let (before, keys, after) = (
                    &arguments[..start],
                    &arguments[open + 1..close],
                    &arguments[close + 1..],
                );
                return format!("{before}hedge = {{ {keys} }}{after}");
            }
            ')' => depth -= 1,
            _ => {}
        }
    }
    arguments.to_owned()
}

/// The case's attribute as configuration: `None` when it is not one.
fn as_configuration(source: &str) -> Option<toml::Table> {
    let arguments = hedge_as_table(&attribute_arguments(source)?);
    let document: toml::Table = toml::from_str(&format!("case = {{ {arguments} }}")).ok()?;
    let toml::Value::Table(table) = document.get("case")?.clone() else {
        return None;
    };
    // Keys configuration refuses as code or shared state.
    let is_code = table.keys().any(|key| retry_rules::in_code(key).is_some());
    (!is_code && !table.is_empty()).then_some(table)
}

/// Errors about the function the attribute sits on (`const fn`, an unused
/// fn under `deny(warnings)`), which a configuration has no part in.
const ABOUT_THE_ITEM: &[&str] = &["`#[resilient]` cannot be applied to", "function `"];

/// The `error: ...` messages of a `.stderr` file about the configuration.
fn compiler_errors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("error: "))
        .filter(|message| !ABOUT_THE_ITEM.iter().any(|item| message.starts_with(item)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn configuration_refuses_what_the_attribute_refuses_in_the_same_words() {
    let mut compared = Vec::new();
    let mut accepted = Vec::new();
    let mut wrong_type = Vec::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fail_dir())
        .expect("the UI tests' fail/ directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    cases.sort();
    for case in &cases {
        let name = case.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(case).unwrap();
        let Some(table) = as_configuration(&source) else {
            continue;
        };
        let config: PolicyConfig = match table.try_into() {
            Ok(config) => config,
            Err(_) => {
                wrong_type.push(name);
                continue;
            }
        };
        let stderr = std::fs::read_to_string(case.with_extension("stderr")).unwrap();
        match Policy::<ApiError>::from_config(&config) {
            Ok(_) => accepted.push(name),
            Err(error) => {
                let mut from_config: Vec<String> =
                    error.problems().iter().map(|p| p.message.clone()).collect();
                let mut from_rustc = compiler_errors(&stderr);
                from_config.sort();
                from_rustc.sort();
                assert_eq!(
                    from_config, from_rustc,
                    "{name}: configuration and the attribute disagree"
                );
                compared.push(name);
            }
        }
    }
    let listed =
        |list: &[(&str, &str)]| list.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
    let mut expected_accepted = listed(ACCEPTED);
    expected_accepted.sort();
    accepted.sort();
    assert_eq!(accepted, expected_accepted, "accepted by configuration");
    assert_eq!(wrong_type, WRONG_TYPE, "refused by the format");
    // The comparison must not pass by comparing nothing: the value rules
    // each have a case.
    for case in [
        "base-delay-exceeds-max-delay",
        "base-delay-not-within-deadline",
        "decorrelated-without-exponential",
        "duration-unparsable",
        "duration-without-unit",
        "hedge-after-not-a-duration",
        "hedge-after-not-a-quantile",
        "hedge-after-out-of-range",
        "hedge-max-extra-load-out-of-range",
        "hedge-max-hedges-zero",
        "hedge-unknown-key",
        "hedge-values-out-of-range",
        "jitter-factor-out-of-range",
        "max-attempts-too-large",
        "max-attempts-zero",
        "multiplier-below-one",
        "multiplier-without-exponential",
        "negative-max-attempts",
        "unknown-backoff",
        "unknown-budget",
        "unknown-jitter",
        "unknown-key",
        "timeout-not-within-deadline",
        "zero-duration",
    ] {
        assert!(
            compared.iter().any(|c| c == case),
            "{case} was not compared: {compared:?}"
        );
    }
}
