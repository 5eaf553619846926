//! Reading values chosen by name (`backoff = "fixed"`), and the "did you
//! mean" that answers a near miss, for names and for keys.

use crate::{BackoffKind, Jitter};

impl BackoffKind {
    /// The backoff named `name`, or why there is none.
    ///
    /// ```
    /// use retry_rules::BackoffKind;
    ///
    /// assert_eq!(BackoffKind::named("fixed"), Ok(BackoffKind::Fixed));
    /// assert_eq!(
    ///     BackoffKind::named("exponental").unwrap_err(),
    ///     "unknown backoff `\"exponental\"`; did you mean `\"exponential\"`?",
    /// );
    /// ```
    pub fn named(name: &str) -> Result<Self, String> {
        one_of("backoff", name, Self::NAMES, "")
    }
}

impl Jitter {
    /// The jitter named `name`, or why there is none.
    ///
    /// ```
    /// use retry_rules::Jitter;
    ///
    /// assert_eq!(Jitter::named("equal"), Ok(Jitter::Equal));
    /// assert!(Jitter::named("fuller").unwrap_err().contains("did you mean `\"full\"`?"));
    /// ```
    pub fn named(name: &str) -> Result<Self, String> {
        one_of("jitter", name, Self::NAMES, Self::OR_FACTOR)
    }
}

/// The value `names` gives `name`, or "unknown {what}" with the closest
/// name, or the whole list followed by `otherwise`.
pub fn one_of<T: Copy>(
    what: &str,
    name: &str,
    names: &[(&str, T)],
    otherwise: &str,
) -> Result<T, String> {
    if let Some((_, value)) = names.iter().find(|(known, _)| *known == name) {
        return Ok(*value);
    }
    let known = names.iter().map(|(known, _)| *known);
    let hint = match did_you_mean(name, known.clone()) {
        Some(close) => format!("did you mean `\"{close}\"`?"),
        None => format!("expected one of {}{otherwise}", quoted_list(known)),
    };
    Err(format!("unknown {what} `\"{name}\"`; {hint}"))
}

/// "unknown key" for `key` (written inside `within(...)` if given), with
/// the closest of `known`.
///
/// ```
/// assert_eq!(
///     retry_rules::unknown_key("max_attemps", None, ["max_attempts", "timeout"].into_iter()),
///     "unknown key `max_attemps`; did you mean `max_attempts`?",
/// );
/// ```
pub fn unknown_key<'a>(
    key: &str,
    within: Option<&str>,
    known: impl Iterator<Item = &'a str>,
) -> String {
    let within = within
        .map(|outer| format!(" in `{outer}(...)`"))
        .unwrap_or_default();
    match did_you_mean(key, known) {
        Some(close) => format!("unknown key `{key}`{within}; did you mean `{close}`?"),
        None => format!("unknown key `{key}`{within}"),
    }
}

/// The closest of `known` to `given`, if close enough: the measure and
/// threshold darling and clippy use (`strsim::jaro_winkler > 0.8`).
pub fn did_you_mean<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|candidate| (strsim::jaro_winkler(given, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// `` `"a"`, `"b"` or `"c"` ``.
pub fn quoted_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|name| format!("`\"{name}\"`")).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_miss_lists_every_name() {
        assert_eq!(
            BackoffKind::named("zzz").unwrap_err(),
            "unknown backoff `\"zzz\"`; expected one of `\"exponential\"`, `\"fixed\"`, `\"linear\"`, `\"fibonacci\"` or `\"none\"`"
        );
        assert!(
            Jitter::named("zzz")
                .unwrap_err()
                .ends_with("or `\"none\"`, or a factor in (0, 1] such as `0.2`")
        );
    }

    #[test]
    fn unknown_keys_name_where_they_were_written() {
        let known = ["failure_threshold", "window"];
        assert_eq!(
            unknown_key(
                "failure_treshold",
                Some("circuit_breaker"),
                known.into_iter()
            ),
            "unknown key `failure_treshold` in `circuit_breaker(...)`; did you mean `failure_threshold`?"
        );
        assert_eq!(
            unknown_key("bogus", None, known.into_iter()),
            "unknown key `bogus`"
        );
    }

    #[test]
    fn a_list_of_one_has_no_or() {
        assert_eq!(quoted_list(["off"].into_iter()), "`\"off\"`");
        assert_eq!(quoted_list(["a", "b"].into_iter()), "`\"a\"` or `\"b\"`");
    }
}
