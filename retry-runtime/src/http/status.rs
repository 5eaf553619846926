//! Which response statuses are worth another attempt.

use http::StatusCode;

/// Whether a response with this status is worth retrying: `true` for
/// 408 Request Timeout, 429 Too Many Requests, 500 Internal Server Error,
/// 502 Bad Gateway, 503 Service Unavailable and 504 Gateway Timeout.
///
/// These say the server, or something in front of it, could not answer
/// *now*. Every other status is an answer: another 4xx would come back the
/// same for the same request, 501 Not Implemented means the method will
/// never be supported, and 505–511 describe the connection or the client's
/// setup rather than a passing state. 1xx, 2xx and 3xx are not failures.
///
/// Whether the request may be sent again is a separate question: see
/// [`is_replayable`](super::is_replayable).
///
/// ```
/// use http::StatusCode;
/// use retry_runtime::http::is_retryable_status;
///
/// assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
/// assert!(is_retryable_status(StatusCode::BAD_GATEWAY));
/// assert!(!is_retryable_status(StatusCode::NOT_FOUND));
/// assert!(!is_retryable_status(StatusCode::NOT_IMPLEMENTED));
/// ```
pub const fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_passing_failures_are_retryable() {
        let retryable: Vec<u16> = (100..=999)
            .filter(|&code| is_retryable_status(StatusCode::from_u16(code).unwrap()))
            .collect();
        assert_eq!(retryable, [408, 429, 500, 502, 503, 504]);
    }
}
