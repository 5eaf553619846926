//! The response fields: `Retry-After`, and the IETF `RateLimit-Policy` and
//! `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-11, written
//! as RFC 9651 structured fields.

use std::fmt::{self, Write};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::Quota;

/// `RateLimit-Policy`: the quota policy, `"default";q=<limit>;w=<window>`.
pub(super) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// `RateLimit`: the service limit now, `"default";r=<remaining>;t=<seconds>`.
pub(super) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The largest Integer a structured field can hold (RFC 9651, section
/// 3.3.1: 15 digits). No limiter comes near it (a wait is at most 584
/// years, 11 digits), but a field past it would be malformed, and a
/// client must ignore a malformed field.
const MAX_INTEGER: u64 = 999_999_999_999_999;

/// Whole seconds, rounded up: what delay-seconds, `w` and `t` are made of
/// (none of them can say "half a second", and rounding down would tell a
/// client to come back before it may). At most [`MAX_INTEGER`].
pub(super) fn ceil_secs(duration: Duration) -> u64 {
    let secs = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    secs.min(MAX_INTEGER)
}

/// `w`: the window in whole seconds, rounded up, at least 1 (the draft
/// forbids 0; a window can be shorter than a second).
///
/// A limiter rounds its interval up to a whole nanosecond, so that its
/// window, `limit` intervals, can exceed the period it was given by up to
/// `limit` nanoseconds: 3 every 10 s is a window of 10.000000002 s. That
/// excess is left out before rounding, or the policy would say 11.
fn window_secs(quota: &Quota) -> u64 {
    let excess = Duration::from_nanos(u64::from(quota.limit()));
    ceil_secs(quota.window().saturating_sub(excess)).max(1)
}

/// What a response says of its limiter: the policy, what remains, and,
/// for a refusal, when to come back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    quota: Quota,
    /// `Some(seconds)` for a refused request.
    retry_after: Option<u64>,
}

impl Fields {
    /// The fields of an admitted request: the limiter's quota after its take.
    pub(super) fn admitted(quota: Quota) -> Self {
        Fields {
            quota,
            retry_after: None,
        }
    }

    /// The fields of a refused request: none remain, and the next token is
    /// `wait` away (at least one second is said: `Retry-After: 0` would
    /// invite an immediate retry that is refused again).
    pub(super) fn refused(quota: Quota, wait: Duration) -> Self {
        Fields {
            quota,
            retry_after: Some(ceil_secs(wait).max(1)),
        }
    }

    /// Writes the fields into `headers`, replacing any of the same names.
    pub(super) fn write(&self, headers: &mut HeaderMap) {
        let quota = &self.quota;
        let window = window_secs(quota);
        headers.insert(
            RATELIMIT_POLICY,
            value(format_args!("\"default\";q={};w={window}", quota.limit())),
        );
        let (remaining, reset) = match self.retry_after {
            // Nothing before the next token: the effective window ends
            // with it, so that `Retry-After` does not point before its end
            // (the draft's section 6).
            Some(seconds) => (0, seconds),
            None => (quota.remaining(), ceil_secs(quota.full_in())),
        };
        headers.insert(
            RATELIMIT,
            value(format_args!("\"default\";r={remaining};t={reset}")),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
}

/// A field value formatted on the stack and copied once into the value.
fn value(args: fmt::Arguments<'_>) -> HeaderValue {
    let mut buffer = Buffer {
        bytes: [0; 64],
        len: 0,
    };
    // The longest value, `"default";q=4294967295;w=999999999999999`, is
    // 40 bytes of visible ASCII: neither step can fail.
    let written = buffer.write_fmt(args);
    debug_assert!(written.is_ok(), "a field value over 64 bytes");
    HeaderValue::from_bytes(&buffer.bytes[..buffer.len])
        .unwrap_or_else(|_| HeaderValue::from_static("\"default\""))
}

struct Buffer {
    bytes: [u8; 64],
    len: usize,
}

impl Write for Buffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RateLimiter;

    #[test]
    fn seconds_are_rounded_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(20)), 20);
        assert_eq!(ceil_secs(Duration::new(19, 999_999_999)), 20);
        assert_eq!(ceil_secs(Duration::new(20, 1)), 21);
        assert_eq!(ceil_secs(Duration::MAX), MAX_INTEGER);
        assert_eq!(ceil_secs(Duration::from_secs(MAX_INTEGER + 1)), MAX_INTEGER);
    }

    fn window(limiter: &RateLimiter) -> u64 {
        window_secs(&limiter.quota())
    }

    #[test]
    fn the_window_is_the_period_given_in_whole_seconds() {
        assert_eq!(window(&RateLimiter::per_minute(3)), 60);
        assert_eq!(
            window(&RateLimiter::per_period(3, Duration::from_secs(10))),
            10
        );
        assert_eq!(window(&RateLimiter::per_hour(7)), 3600);
        assert_eq!(window(&RateLimiter::per_second(10).burst(1)), 1);
        assert_eq!(window(&RateLimiter::per_second(10).burst(25)), 3);
        let odd = RateLimiter::per_period(1, Duration::from_millis(1500));
        assert_eq!(window(&odd), 2);
        let tiny = RateLimiter::per_period(1, Duration::from_nanos(1));
        assert_eq!(window(&tiny), 1);
    }

    #[test]
    fn the_longest_values_fit() {
        let limiter = RateLimiter::per_period(u32::MAX, Duration::MAX).burst(u32::MAX);
        let mut headers = HeaderMap::new();
        Fields::refused(limiter.quota(), Duration::MAX).write(&mut headers);
        let policy = headers[&RATELIMIT_POLICY].to_str().unwrap();
        assert!(
            policy.starts_with("\"default\";q=4294967295;w="),
            "{policy}"
        );
        assert!(policy.len() > 30, "{policy}");
        assert_eq!(headers[RETRY_AFTER], "999999999999999");
        let limit = headers[&RATELIMIT].to_str().unwrap();
        assert_eq!(limit, "\"default\";r=0;t=999999999999999");
    }
}
