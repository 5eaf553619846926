//! The `Retry-After` header (RFC 9110 §10.2.3) as a delay.

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue};

/// How long the server asked the client to wait, from the `Retry-After`
/// header: `None` when there is none, or none that can be trusted.
///
/// The value is either delta-seconds (`Retry-After: 120`) or an HTTP-date
/// (`Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`, or either of RFC 9110's
/// two obsolete date formats). A date is read against the local wall clock
/// ([`SystemTime::now`]); one that has already passed is
/// [`Duration::ZERO`]: the server's wait is over. [`retry_after_at`] takes
/// the time as an argument instead.
///
/// Made for the `retry_after` key, whose delay replaces the backoff's; a
/// hint longer than `max_delay` ends the call instead of parking it, so a
/// server asking for an hour cannot hold the caller for one.
///
/// Nothing a server sends makes this panic. What is not one of the two
/// forms is `None`, and the backoff applies, as if the header were absent:
///
/// - Spaces and tabs around the value are ignored, as HTTP ignores them
///   around any field value; anything else extra (`"5s"`, `"+5"`, `"5.0"`,
///   `"1 2"`) makes the value unreadable.
/// - Negative numbers, and numbers of seconds that do not fit in a `u64`
///   (over 584 billion years), are not delays a server meant.
/// - A value that is not ASCII text (obs-text bytes) is unreadable.
/// - `Retry-After` holds one value. Several `Retry-After` fields count
///   only if they all say the same (a proxy repeating the server's); when
///   they disagree there is no telling which the server meant, and taking
///   the smallest or the largest would be a guess. One field listing
///   several values (`"5, 5"`) is unreadable: an HTTP-date has a comma of
///   its own, so such a list cannot be split reliably.
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderValue, header::RETRY_AFTER};
/// use retry_runtime::http::retry_after;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(retry_after(&headers), None);
///
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
///
/// // Long gone: retry now.
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
/// assert_eq!(retry_after(&headers), Some(Duration::ZERO));
///
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
/// assert_eq!(retry_after(&headers), None);
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] with the wall-clock time passed in, so that an
/// HTTP-date can be tested without waiting for the calendar: the delay is
/// from `now` to the date, or zero once it has passed.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use http::{HeaderMap, HeaderValue, header::RETRY_AFTER};
/// use retry_runtime::http::retry_after_at;
///
/// // Sun, 06 Nov 1994 08:49:37 GMT
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// let mut headers = HeaderMap::new();
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:50:07 GMT"));
/// assert_eq!(retry_after_at(&headers, now), Some(Duration::from_secs(30)));
/// ```
pub fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut values = headers.get_all(RETRY_AFTER).iter();
    let first = delay(values.next()?, now)?;
    values
        .all(|value| delay(value, now) == Some(first))
        .then_some(first)
}

/// One field's delay from `now`.
fn delay(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim_matches([' ', '\t']);
    // `u64::from_str` would also take a sign; delta-seconds is digits only.
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text.parse().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(RETRY_AFTER, HeaderValue::from_static(value));
        }
        headers
    }

    fn read(values: &[&'static str]) -> Option<Duration> {
        // Sun, 06 Nov 1994 08:49:37 GMT
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        retry_after_at(&with(values), now)
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(read(&["0"]), Some(Duration::ZERO));
        assert_eq!(read(&["007"]), Some(Duration::from_secs(7)));
        assert_eq!(read(&[" \t5 "]), Some(Duration::from_secs(5)));
        let most = u64::MAX.to_string().leak();
        assert_eq!(read(&[most]), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn the_three_date_formats() {
        let thirty = Some(Duration::from_secs(30));
        assert_eq!(read(&["Sun, 06 Nov 1994 08:50:07 GMT"]), thirty);
        assert_eq!(read(&["Sunday, 06-Nov-94 08:50:07 GMT"]), thirty);
        assert_eq!(read(&["Sun Nov  6 08:50:07 1994"]), thirty);
        assert_eq!(
            read(&["Sun, 06 Nov 1994 08:49:37 GMT"]),
            Some(Duration::ZERO)
        );
        assert_eq!(
            read(&["Thu, 01 Jan 1970 00:00:00 GMT"]),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn what_is_not_a_delay_is_none() {
        for garbage in [
            "",
            " ",
            "-1",
            "+5",
            "5s",
            "5.0",
            "1 2",
            "0x10",
            "soon",
            "99999999999999999999",
            "18446744073709551616",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(read(&[garbage]), None, "{garbage:?}");
        }
        let not_ascii = HeaderValue::from_bytes(b"12\xff").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, not_ascii);
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn several_fields_count_only_when_they_agree() {
        assert_eq!(read(&["5", "5"]), Some(Duration::from_secs(5)));
        assert_eq!(
            read(&["30", "Sun, 06 Nov 1994 08:50:07 GMT"]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(read(&["5", "6"]), None);
        assert_eq!(read(&["5", "soon"]), None);
        assert_eq!(read(&["5, 5"]), None, "a folded list is not one value");
    }
}
