//! One function per rule a value obeys, returning the message that states
//! the fix. Rules that need several keys take the values they compare.

use std::time::Duration;

use crate::{HedgeAfter, Jitter};

/// A duration with a unit: `"250ms"`, `"2s"`, `"1m30s"`.
///
/// Parsed by humantime; the message states the fix, and a number without a
/// unit, the likeliest slip, gets its own.
pub fn duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "duration `\"{text}\"` has no unit; write e.g. `\"{trimmed}ms\"` or `\"{trimmed}s\"`"
        ));
    }
    humantime::parse_duration(trimmed).map_err(|_| {
        format!("`\"{text}\"` is not a duration; write a number with a unit, e.g. `\"250ms\"`, `\"2s\"` or `\"1m30s\"`")
    })
}

/// A delay or limit must be positive: zero would mean no delay, or no time
/// at all, which the key cannot have been written for.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(
///     retry_rules::positive_duration("timeout", Duration::ZERO).unwrap_err(),
///     "`timeout` must be greater than zero; remove the key for no limit",
/// );
/// ```
pub fn positive_duration(key: &str, value: Duration) -> Result<(), String> {
    if !value.is_zero() {
        return Ok(());
    }
    let fix = match key {
        "base_delay" | "max_delay" => "; use `backoff = \"none\"` to retry at once",
        _ => "; remove the key for no limit",
    };
    Err(format!("`{key}` must be greater than zero{fix}"))
}

/// A lower bound on delays cannot exceed an upper one: `base_delay` (the
/// first delay) the cap `max_delay`, or any floor the cap.
///
/// ```
/// use std::time::Duration;
///
/// let s = Duration::from_secs;
/// assert_eq!(retry_rules::delays_in_order(("base_delay", s(1)), ("max_delay", s(1))), Ok(()));
/// assert_eq!(
///     retry_rules::delays_in_order(("base_delay", s(2)), ("max_delay", s(1))).unwrap_err(),
///     "`base_delay` (2s) is longer than `max_delay` (1s); lower `base_delay` or raise `max_delay`",
/// );
/// ```
pub fn delays_in_order(
    (lower_key, lower): (&str, Duration),
    (upper_key, upper): (&str, Duration),
) -> Result<(), String> {
    if lower <= upper {
        return Ok(());
    }
    Err(format!(
        "`{lower_key}` ({}) is longer than `{upper_key}` ({}); lower `{lower_key}` or raise `{upper_key}`",
        humantime::format_duration(lower),
        humantime::format_duration(upper),
    ))
}

/// `timeout` must leave an attempt room before the call's `deadline`.
///
/// ```
/// use std::time::Duration;
///
/// let s = Duration::from_secs;
/// assert_eq!(retry_rules::timeout_within_deadline(s(1), s(5)), Ok(()));
/// assert_eq!(
///     retry_rules::timeout_within_deadline(s(5), s(5)).unwrap_err(),
///     "`timeout` (5s) is not shorter than `deadline` (5s): the deadline always ends the call first; lower `timeout` or raise `deadline`",
/// );
/// ```
pub fn timeout_within_deadline(timeout: Duration, deadline: Duration) -> Result<(), String> {
    if timeout < deadline {
        return Ok(());
    }
    Err(format!(
        "`timeout` ({}) is not shorter than `deadline` ({}): the deadline always ends the call first; lower `timeout` or raise `deadline`",
        humantime::format_duration(timeout),
        humantime::format_duration(deadline),
    ))
}

/// `base_delay` must leave a retry room before the call's `deadline`.
///
/// ```
/// use std::time::Duration;
///
/// let s = Duration::from_secs;
/// assert_eq!(
///     retry_rules::base_delay_within_deadline(s(10), s(2)).unwrap_err(),
///     "`base_delay` (10s) is not shorter than `deadline` (2s): the first retry would wait past the deadline; lower `base_delay` or raise `deadline`",
/// );
/// ```
pub fn base_delay_within_deadline(base: Duration, deadline: Duration) -> Result<(), String> {
    if base < deadline {
        return Ok(());
    }
    Err(format!(
        "`base_delay` ({}) is not shorter than `deadline` ({}): the first retry would wait past the deadline; lower `base_delay` or raise `deadline`",
        humantime::format_duration(base),
        humantime::format_duration(deadline),
    ))
}

/// A breaker guarding one function must survive one failing call: with
/// retries and a `failure_threshold` at or below `max_attempts`, a single
/// call that fails every attempt opens it. `default` says the threshold
/// was not written.
///
/// ```
/// assert_eq!(retry_rules::breaker_outlasts_a_call(6, 5, false), Ok(()));
/// // Without retries, a threshold of 1 opens on one failure, as asked.
/// assert_eq!(retry_rules::breaker_outlasts_a_call(1, 1, false), Ok(()));
/// assert_eq!(
///     retry_rules::breaker_outlasts_a_call(3, 3, false).unwrap_err(),
///     "`failure_threshold` (3) is not above `max_attempts` (3): one call failing every attempt opens the breaker; raise `failure_threshold` above 3 or lower `max_attempts`",
/// );
/// ```
pub fn breaker_outlasts_a_call(
    threshold: u32,
    max_attempts: u32,
    default: bool,
) -> Result<(), String> {
    // Without retries one call is one failure, and a threshold of 1 is
    // simply what it says.
    if threshold > max_attempts || max_attempts == 1 {
        return Ok(());
    }
    let (which, fix) = if default {
        (
            "the breaker's default `failure_threshold`",
            "set `failure_threshold`",
        )
    } else {
        ("`failure_threshold`", "raise `failure_threshold`")
    };
    Err(format!(
        "{which} ({threshold}) is not above `max_attempts` ({max_attempts}): one call failing every attempt opens the breaker; {fix} above {max_attempts} or lower `max_attempts`",
    ))
}

/// A count of at least one that fits a `u32`; `why` says what the count is.
///
/// ```
/// assert_eq!(retry_rules::at_least_one("max_attempts", 3, "1 means no retries"), Ok(3));
/// assert_eq!(
///     retry_rules::at_least_one("max_attempts", 0, "1 means no retries").unwrap_err(),
///     "`max_attempts` must be at least 1 (got 0); 1 means no retries",
/// );
/// ```
pub fn at_least_one(key: &str, value: i128, why: &str) -> Result<u32, String> {
    match u32::try_from(value) {
        Ok(count) if count >= 1 => Ok(count),
        _ if value < 1 => Err(format!("`{key}` must be at least 1 (got {value}); {why}")),
        _ => Err(format!("`{key}` is too large (at most {})", u32::MAX)),
    }
}

/// The one budget written as a string is `"off"`; a shared one is a
/// `&RetryBudget`, which each door takes in its own syntax.
///
/// ```
/// assert_eq!(retry_rules::budget_off("off"), Ok(()));
/// assert!(retry_rules::budget_off("none").unwrap_err().starts_with("unknown budget `\"none\"`"));
/// ```
pub fn budget_off(text: &str) -> Result<(), String> {
    if text == "off" {
        return Ok(());
    }
    Err(format!(
        "unknown budget `\"{text}\"`; write `budget = \"off\"` for none, or share a `&RetryBudget` (`budget = &MY_BUDGET` in the attribute, `.budget(&MY_BUDGET)` on a `Policy`)"
    ))
}

/// `concurrency = "adaptive"`: the one word the key takes as text, an
/// `AdaptiveLimit` with its defaults for this call site.
///
/// ```
/// assert_eq!(retry_rules::concurrency_text("adaptive"), Ok(()));
/// assert!(retry_rules::concurrency_text("3").unwrap_err().starts_with("invalid `concurrency`"));
/// ```
pub fn concurrency_text(text: &str) -> Result<(), String> {
    if text == "adaptive" {
        return Ok(());
    }
    Err(format!(
        "invalid `concurrency`: `\"{text}\"` is neither a number of concurrent attempts such as `3` nor `\"adaptive\"`; or share a `&Bulkhead` or `&AdaptiveLimit`"
    ))
}

/// `adaptive_throttling = k`: the requests the backend may receive per
/// request it accepts. Below 1 the client would refuse calls the backend
/// accepts all of (the runtime would clamp it to 1, silently), and
/// infinity or NaN is no number of requests.
///
/// ```
/// assert_eq!(retry_rules::adaptive_throttling(2.0), Ok(()));
/// assert!(retry_rules::adaptive_throttling(0.0).unwrap_err().contains("at least 1.0"));
/// ```
pub fn adaptive_throttling(k: f64) -> Result<(), String> {
    if k >= 1.0 && k.is_finite() {
        return Ok(());
    }
    Err(format!(
        "`adaptive_throttling` must be at least 1.0 (got {k}); it is how many requests the backend may receive for each it accepts, e.g. `adaptive_throttling = 2.0` (Google SRE's)"
    ))
}

/// A breaker key written beside `adaptive_throttling`, a mode that refuses
/// calls by probability and never opens by itself: the key would have
/// nothing to act on (`min_calls`, `half_open_probes`, `open_for`), or
/// would replace the mode (`failure_threshold`, `failure_rate`).
///
/// ```
/// assert!(retry_rules::throttling_alone("failure_threshold").starts_with("`failure_threshold` does not apply"));
/// ```
pub fn throttling_alone(key: &str) -> String {
    format!(
        "`{key}` does not apply to `adaptive_throttling`, which refuses calls by probability and never opens by itself; remove `{key}` or `adaptive_throttling`"
    )
}

/// `multiplier` grows an exponential backoff, so it is at least 1 and only
/// means something for one.
pub fn multiplier_fits(value: f64, exponential: bool) -> Result<(), String> {
    if !(value >= 1.0 && value.is_finite()) {
        return Err(format!(
            "`multiplier` must be at least 1.0 (got {value}); a smaller factor would shrink delays"
        ));
    }
    if !exponential {
        return Err(
            "`multiplier` only applies to `backoff = \"exponential\"`; remove it or switch the backoff"
                .to_owned(),
        );
    }
    Ok(())
}

/// Decorrelated jitter grows the delay itself, from an exponential
/// backoff's; a jitter factor is a fraction of the delay.
pub fn jitter_fits(jitter: Jitter, exponential: bool) -> Result<(), String> {
    match jitter {
        Jitter::Decorrelated if !exponential => Err(
            "`jitter = \"decorrelated\"` needs `backoff = \"exponential\"`: it grows from the previous delay itself"
                .to_owned(),
        ),
        Jitter::Proportional(f) if !(f > 0.0 && f <= 1.0) => Err(format!(
            "`jitter` factor must be in (0, 1] (got {f}), e.g. `jitter = 0.2` for ±20%"
        )),
        _ => Ok(()),
    }
}

/// `hedge(after = ..)`: `"pNN"` (a quantile of the site's latency, range
/// checked by [`hedge_quantile`]) or a duration. The message is the
/// reason; each door says which key it is about.
///
/// ```
/// use std::time::Duration;
/// use retry_rules::{HedgeAfter, hedge_after};
///
/// assert_eq!(hedge_after("p99.9"), Ok(HedgeAfter::Quantile(0.999)));
/// assert_eq!(hedge_after("40ms"), Ok(HedgeAfter::Delay(Duration::from_millis(40))));
/// assert!(hedge_after("p9x").unwrap_err().contains("neither a latency quantile"));
/// ```
pub fn hedge_after(text: &str) -> Result<HedgeAfter, String> {
    let trimmed = text.trim();
    if let Some(percent) = trimmed.strip_prefix('p') {
        // Shifted as text, so that "p99.9" is exactly the 0.999 written
        // (99.9 / 100 is 0.9990000000000001, outside the range).
        return match format!("{percent}e-2").parse::<f64>() {
            Ok(q) if q.is_finite() => Ok(HedgeAfter::Quantile(q)),
            _ => Err(format!(
                "`\"{text}\"` is neither a latency quantile such as `\"p95\"` nor a duration such as `\"40ms\"`"
            )),
        };
    }
    duration(trimmed)
        .map(HedgeAfter::Delay)
        .map_err(|reason| format!("{reason}, or a latency quantile such as `\"p95\"`"))
}

/// A hedge's quantile is from p1 to p99.9: beyond p99.9 too few attempts
/// are slower to learn the quantile from in a window, and below p1 every
/// attempt is hedged (a fixed `after` says that better).
///
/// ```
/// assert_eq!(retry_rules::hedge_quantile(0.95), Ok(()));
/// assert!(retry_rules::hedge_quantile(1.0).unwrap_err().starts_with("`after` must be a quantile from p1 to p99.9 (got p100)"));
/// ```
pub fn hedge_quantile(q: f64) -> Result<(), String> {
    if (0.01..=0.999).contains(&q) {
        return Ok(());
    }
    let percent = (q * 100_000.0).round() / 1000.0;
    Err(format!(
        "`after` must be a quantile from p1 to p99.9 (got p{percent}); e.g. `after = \"p95\"` hedges the slowest 5% of attempts"
    ))
}

/// `max_hedges`: at least one (otherwise `hedge` does nothing) and at most
/// [`HEDGE_LIMIT`](crate::defaults::HEDGE_LIMIT).
///
/// ```
/// assert_eq!(retry_rules::hedge_count(2), Ok(()));
/// assert!(retry_rules::hedge_count(0).unwrap_err().starts_with("`max_hedges` must be at least 1 (got 0)"));
/// assert!(retry_rules::hedge_count(11).unwrap_err().starts_with("`max_hedges` is at most 10 (got 11)"));
/// ```
pub fn hedge_count(n: i128) -> Result<(), String> {
    let limit = crate::defaults::HEDGE_LIMIT;
    if n < 1 {
        return Err(format!(
            "`max_hedges` must be at least 1 (got {n}); 0 sends no hedge: remove `hedge` for none"
        ));
    }
    if n > i128::from(limit) {
        return Err(format!(
            "`max_hedges` is at most {limit} (got {n}); each hedge is one more attempt at once on a dependency that is already slow"
        ));
    }
    Ok(())
}

/// `max_extra_load`: the hedges per call a window may send, in (0, 1].
///
/// ```
/// assert_eq!(retry_rules::hedge_extra_load(0.05), Ok(()));
/// assert!(retry_rules::hedge_extra_load(0.0).unwrap_err().starts_with("`max_extra_load` must be in (0, 1] (got 0)"));
/// ```
pub fn hedge_extra_load(f: f64) -> Result<(), String> {
    if f > 0.0 && f <= 1.0 {
        return Ok(());
    }
    Err(format!(
        "`max_extra_load` must be in (0, 1] (got {f}); it is the hedges per call over a window, e.g. `0.05` for at most 5% more attempts than calls"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_too_large_for_a_number_is_not_one() {
        // 400 nines parse as infinity: not a quantile, rather than one
        // reported as "pinf" out of range.
        let huge = format!("p{}", "9".repeat(400));
        let error = hedge_after(&huge).unwrap_err();
        assert!(error.contains("is neither a latency quantile"), "{error}");
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(duration(" 2s "), Ok(Duration::from_secs(2)));
        assert_eq!(
            duration("1.5").unwrap_err(),
            "duration `\"1.5\"` has no unit; write e.g. `\"1.5ms\"` or `\"1.5s\"`"
        );
        assert_eq!(
            duration("soon").unwrap_err(),
            "`\"soon\"` is not a duration; write a number with a unit, e.g. `\"250ms\"`, `\"2s\"` or `\"1m30s\"`"
        );
    }

    #[test]
    fn a_zero_delay_points_at_backoff_none() {
        assert_eq!(
            positive_duration("base_delay", Duration::ZERO).unwrap_err(),
            "`base_delay` must be greater than zero; use `backoff = \"none\"` to retry at once"
        );
        assert_eq!(
            positive_duration("deadline", Duration::from_nanos(1)),
            Ok(())
        );
    }

    #[test]
    fn delays_in_order_allows_equal_ones() {
        let second = Duration::from_secs(1);
        let (base, max) = (("base_delay", second), ("max_delay", second));
        assert_eq!(delays_in_order(base, max), Ok(()));
        assert_eq!(
            delays_in_order(("base_delay", second * 2), max).unwrap_err(),
            "`base_delay` (2s) is longer than `max_delay` (1s); lower `base_delay` or raise `max_delay`"
        );
    }

    /// Unlike two delays in order, a first retry or an attempt's timeout
    /// that equals the deadline leaves no room: the attempt before it has
    /// taken some time, so the deadline comes first.
    #[test]
    fn what_ends_at_the_deadline_is_not_shorter_than_it() {
        let second = Duration::from_secs(1);
        assert!(base_delay_within_deadline(second, second).is_err());
        assert_eq!(base_delay_within_deadline(second, second * 2), Ok(()));
        assert!(timeout_within_deadline(second, second).is_err());
    }

    #[test]
    fn counts_are_bounded_both_ways() {
        assert_eq!(
            at_least_one("burst", -1, "why").unwrap_err(),
            "`burst` must be at least 1 (got -1); why"
        );
        assert_eq!(
            at_least_one("burst", i128::from(u32::MAX) + 1, "why").unwrap_err(),
            "`burst` is too large (at most 4294967295)"
        );
        assert_eq!(at_least_one("burst", u32::MAX.into(), "why"), Ok(u32::MAX));
    }

    #[test]
    fn multiplier_is_checked_before_its_backoff() {
        assert!(
            multiplier_fits(0.5, false)
                .unwrap_err()
                .contains("at least 1.0")
        );
        assert!(multiplier_fits(f64::NAN, true).is_err());
        assert!(
            multiplier_fits(1.0, false)
                .unwrap_err()
                .contains("only applies")
        );
        assert_eq!(multiplier_fits(1.5, true), Ok(()));
    }

    #[test]
    fn jitter_factor_is_a_fraction() {
        assert!(jitter_fits(Jitter::Proportional(0.0), true).is_err());
        assert_eq!(jitter_fits(Jitter::Proportional(1.0), false), Ok(()));
        assert!(jitter_fits(Jitter::Decorrelated, false).is_err());
        assert_eq!(jitter_fits(Jitter::Decorrelated, true), Ok(()));
    }
}
