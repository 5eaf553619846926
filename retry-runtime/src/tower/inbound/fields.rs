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

/// Whole seconds, rounded up: what delay-seconds, `w` and `t` are made of
/// (none of them can say "half a second", and rounding down would tell a
/// client to come back before it may).
pub(super) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
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
        // `w` must be at least 1: a limiter's window is never zero, but
        // it can be shorter than a second.
        let window = ceil_secs(quota.window()).max(1);
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
    // The longest value, `"default";q=4294967295;w=18446744073709551615`,
    // is 45 bytes of visible ASCII: neither step can fail.
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
