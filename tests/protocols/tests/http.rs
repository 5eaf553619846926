//! `steadfast::http`: retryable statuses, `Retry-After`, replay safety.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use proptest::prelude::*;
use steadfast::Policy;
use steadfast::http::{
    IDEMPOTENCY_KEY, idempotency_key, is_idempotent, is_replayable, is_retryable_status,
    retry_after, retry_after_at,
};

/// Sun, 06 Nov 1994 08:49:37 GMT: RFC 9110's example date.
fn rfc_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(784_111_777)
}

fn headers(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
    }
    headers
}

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

#[test]
fn the_retryable_statuses_are_the_passing_failures() {
    for code in [408, 429, 500, 502, 503, 504] {
        assert!(
            is_retryable_status(StatusCode::from_u16(code).unwrap()),
            "{code}"
        );
    }
    for code in [
        200, 204, 301, 304, 400, 401, 403, 404, 409, 413, 422, 425, 501, 505, 511,
    ] {
        assert!(
            !is_retryable_status(StatusCode::from_u16(code).unwrap()),
            "{code}"
        );
    }
}

#[test]
fn is_retryable_status_over_every_code_matches_the_list() {
    for code in 100..=999 {
        let status = StatusCode::from_u16(code).unwrap();
        let listed = [408, 429, 500, 502, 503, 504].contains(&code);
        assert_eq!(is_retryable_status(status), listed, "{code}");
    }
}

#[test]
fn retry_after_reads_delta_seconds() {
    assert_eq!(retry_after(&headers(&["0"])), Some(Duration::ZERO));
    assert_eq!(retry_after(&headers(&["1"])), secs(1));
    assert_eq!(retry_after(&headers(&["120"])), secs(120));
    assert_eq!(
        retry_after(&headers(&["  30\t"])),
        secs(30),
        "OWS is not part of the value"
    );
}

#[test]
fn retry_after_reads_the_three_http_date_formats() {
    let now = rfc_now();
    for date in [
        "Sun, 06 Nov 1994 08:51:37 GMT",
        "Sunday, 06-Nov-94 08:51:37 GMT",
        "Sun Nov  6 08:51:37 1994",
    ] {
        assert_eq!(retry_after_at(&headers(&[date]), now), secs(120), "{date}");
    }
}

#[test]
fn a_date_in_the_past_is_zero() {
    let now = rfc_now();
    assert_eq!(
        retry_after_at(&headers(&["Sun, 06 Nov 1994 08:49:36 GMT"]), now),
        Some(Duration::ZERO)
    );
    assert_eq!(
        retry_after(&headers(&["Sun, 06 Nov 1994 08:49:37 GMT"])),
        Some(Duration::ZERO)
    );
}

#[test]
fn a_date_counts_from_now_with_its_fraction_of_a_second() {
    let now = rfc_now() + Duration::from_millis(250);
    assert_eq!(
        retry_after_at(&headers(&["Sun, 06 Nov 1994 08:49:38 GMT"]), now),
        Some(Duration::from_millis(750))
    );
}

#[test]
fn garbage_negatives_and_overflow_are_none() {
    for value in [
        "",
        "soon",
        "-1",
        "-0",
        "+1",
        "1.5",
        "1e3",
        "5s",
        "1 2",
        "0x1f",
        "120, 120",
        "99999999999999999999",
        "18446744073709551616",
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
    ] {
        assert_eq!(
            retry_after_at(&headers(&[value]), rfc_now()),
            None,
            "{value:?}"
        );
    }
    assert_eq!(retry_after(&HeaderMap::new()), None);
    let mut not_text = HeaderMap::new();
    not_text.insert(
        RETRY_AFTER,
        HeaderValue::from_bytes(b"\xe2\x82\xac5").unwrap(),
    );
    assert_eq!(retry_after(&not_text), None);
}

#[test]
fn several_retry_after_fields_count_only_when_they_agree() {
    let now = rfc_now();
    assert_eq!(retry_after_at(&headers(&["5", "5"]), now), secs(5));
    assert_eq!(
        retry_after_at(&headers(&["60", "Sun, 06 Nov 1994 08:50:37 GMT"]), now),
        secs(60),
        "the same instant, written two ways"
    );
    assert_eq!(retry_after_at(&headers(&["5", "10"]), now), None);
    assert_eq!(retry_after_at(&headers(&["5", "later"]), now), None);
}

#[test]
fn idempotent_methods_are_rfc_9110_s() {
    for method in [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ] {
        assert!(is_idempotent(&method), "{method}");
    }
    let purge = Method::from_bytes(b"PURGE").unwrap();
    for method in [Method::POST, Method::PATCH, Method::CONNECT, purge] {
        assert!(!is_idempotent(&method), "{method}");
    }
}

#[test]
fn a_post_is_replayable_with_an_idempotency_key() {
    let mut keyed = HeaderMap::new();
    assert!(is_replayable(&Method::DELETE, &keyed));
    assert!(!is_replayable(&Method::POST, &keyed));
    assert!(!is_replayable(&Method::PATCH, &keyed));
    keyed.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("charge-42"));
    assert!(is_replayable(&Method::POST, &keyed));
    assert!(is_replayable(&Method::PATCH, &keyed));
    let mut spelled = HeaderMap::new();
    spelled.insert("Idempotency-Key", HeaderValue::from_static("charge-42"));
    assert!(
        is_replayable(&Method::POST, &spelled),
        "header names are case-insensitive"
    );
}

#[test]
fn the_idempotency_key_is_the_same_across_the_attempts_of_a_call() {
    static POLICY: Policy<()> = Policy::new().max_attempts(3).no_budget();
    fn call() -> Vec<HeaderValue> {
        let mut keys = Vec::new();
        POLICY
            .retry_blocking(|attempt| {
                keys.push(idempotency_key(attempt.key()));
                if attempt.number() < 3 {
                    Err(())
                } else {
                    Ok(())
                }
            })
            .unwrap();
        keys
    }
    let _fast = steadfast::testing::no_delays();
    let (first, second) = (call(), call());
    assert_eq!(first.len(), 3);
    assert!(
        first.iter().all(|key| *key == first[0]),
        "one key per call: {first:?}"
    );
    assert_ne!(second[0], first[0], "another call, another key");
    let text = first[0].to_str().unwrap();
    assert!(
        text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()),
        "{text}"
    );
}

/// HTTP-dates httpdate can write: 1970 to 9999.
const LAST_DATE: u64 = 253_402_300_799;

proptest! {
    #[test]
    fn retry_after_never_panics_on_any_header_bytes(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
        now in 0..=LAST_DATE,
    ) {
        let mut headers = HeaderMap::new();
        for bytes in &values {
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                headers.append(RETRY_AFTER, value);
            }
        }
        let _ = retry_after_at(&headers, UNIX_EPOCH + Duration::from_secs(now));
        let _ = retry_after(&headers);
    }

    #[test]
    fn retry_after_never_panics_on_any_string(value in "\\PC*", digits in "[ \t]*[0-9]{0,30}[ \t]*") {
        for value in [value, digits] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(RETRY_AFTER, value);
                let _ = retry_after(&headers);
            }
        }
    }

    #[test]
    fn retry_after_never_panics_on_date_shaped_strings(
        value in "[A-Za-z]{3,9},? [0-9]{1,2}[ -][A-Za-z]{3}[ -][0-9]{2,5} [0-9]{2}:[0-9]{2}:[0-9]{2}( GMT)?",
    ) {
        let _ = retry_after(&headers(&[&value]));
    }

    #[test]
    fn delta_seconds_round_trip(seconds in any::<u64>(), padding in "[ \t]{0,3}") {
        let value = format!("{padding}{seconds}{padding}");
        prop_assert_eq!(retry_after(&headers(&[&value])), secs(seconds));
    }

    #[test]
    fn http_dates_in_the_past_are_zero(date in 0..=LAST_DATE, before in 0..=LAST_DATE) {
        let now = UNIX_EPOCH + Duration::from_secs(date.max(before));
        let value = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(date.min(before)));
        prop_assert_eq!(retry_after_at(&headers(&[&value]), now), Some(Duration::ZERO));
    }

    #[test]
    fn http_dates_in_the_future_are_the_time_until_them(now in 0..LAST_DATE, ahead in 0..=1_000_000u64) {
        let date = (now + ahead).min(LAST_DATE);
        let value = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(date));
        prop_assert_eq!(
            retry_after_at(&headers(&[&value]), UNIX_EPOCH + Duration::from_secs(now)),
            secs(date - now)
        );
    }
}
