//! The response fields: `Retry-After`, and the IETF `RateLimit-Policy` and
//! `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-11, written
//! as RFC 9651 structured fields.

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
        let policy = [(b'q', u64::from(quota.limit())), (b'w', window_secs(quota))];
        headers.insert(RATELIMIT_POLICY, item(policy));
        let (remaining, reset) = match self.retry_after {
            // Nothing before the next token: the effective window ends
            // with it, so that `Retry-After` does not point before its end
            // (the draft's section 6).
            Some(seconds) => (0, seconds),
            None => (quota.remaining(), ceil_secs(quota.full_in())),
        };
        headers.insert(RATELIMIT, item([(b'r', remaining.into()), (b't', reset)]));
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
}

/// `"default";<a>=<x>;<b>=<y>`: a List of one Item (RFC 9651), the String
/// `"default"` with two Integer parameters, each at most [`MAX_INTEGER`].
/// Written on the stack by hand and copied once into the value:
/// `core::fmt` took half of an admitted request's cost in the layer.
fn item(params: [(u8, u64); 2]) -> HeaderValue {
    const NAME: &[u8] = b"\"default\"";
    // 9 bytes of name, then twice `;k=` and at most 15 digits: 45.
    let mut bytes = [0u8; 48];
    bytes[..NAME.len()].copy_from_slice(NAME);
    let mut len = NAME.len();
    for (key, value) in params {
        bytes[len..len + 3].copy_from_slice(&[b';', key, b'=']);
        len += 3;
        len += integer(&mut bytes[len..], value.min(MAX_INTEGER));
    }
    // Visible ASCII only: cannot fail.
    HeaderValue::from_bytes(&bytes[..len])
        .unwrap_or_else(|_| HeaderValue::from_static("\"default\""))
}

/// Writes `n` in decimal at the start of `out`; returns the digits written.
fn integer(out: &mut [u8], mut n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &digits[start..];
    out[..digits.len()].copy_from_slice(digits);
    digits.len()
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
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 100, 4_294_967_295, MAX_INTEGER, u64::MAX] {
            let mut out = [b'x'; 24];
            let len = integer(&mut out, n);
            assert_eq!(&out[..len], n.to_string().as_bytes());
            assert_eq!(out[len], b'x', "nothing written past the digits");
        }
        assert_eq!(item([(b'q', 100), (b'w', 60)]), "\"default\";q=100;w=60");
        assert_eq!(
            item([(b'r', 0), (b't', u64::MAX)]),
            "\"default\";r=0;t=999999999999999"
        );
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
