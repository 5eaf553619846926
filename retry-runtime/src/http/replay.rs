//! Whether a request may be sent again after a failure that may have
//! reached the server.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::CallKey;

/// Whether the method is idempotent (RFC 9110 §9.2.2): `GET`, `HEAD`,
/// `OPTIONS`, `TRACE`, `PUT` and `DELETE`. Sending such a request twice
/// leaves the server as sending it once does, so it may be retried after
/// a failure that may have reached the server (a reset connection, a
/// timeout, a 502 from a proxy).
///
/// `POST`, `PATCH`, `CONNECT` and extension methods are not: a `POST`
/// whose response was lost may have charged the card. Send those with an
/// [`IDEMPOTENCY_KEY`] header for the server to recognise the replay, or
/// retry them only on failures that prove the server never saw them.
///
/// ```
/// use http::Method;
/// use retry_runtime::http::is_idempotent;
///
/// assert!(is_idempotent(&Method::PUT));
/// assert!(!is_idempotent(&Method::POST));
/// ```
pub fn is_idempotent(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// The `Idempotency-Key` request header: a key the client chooses, the same
/// for every attempt of one operation, so that the server performs the
/// operation once however many attempts reach it. Stripe, Adyen and others
/// accept it; the IETF's httpapi working group is standardising it.
///
/// [`idempotency_key`] makes its value from an attempt's
/// [`key`](crate::Attempt::key).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Whether a request may be sent again after a failure that may have
/// reached the server: its method is idempotent ([`is_idempotent`]), or it
/// carries an [`IDEMPOTENCY_KEY`] header, which leaves recognising the
/// replay to the server.
///
/// This looks at the request's head only. Its body must be replayable too,
/// which it is when each attempt builds the request anew; a streamed body
/// the first attempt consumed is gone.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method};
/// use retry_runtime::http::{IDEMPOTENCY_KEY, is_replayable};
///
/// let mut headers = HeaderMap::new();
/// assert!(is_replayable(&Method::GET, &headers));
/// assert!(!is_replayable(&Method::POST, &headers));
///
/// headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("order-1234"));
/// assert!(is_replayable(&Method::POST, &headers));
/// ```
pub fn is_replayable(method: &Method, headers: &HeaderMap) -> bool {
    is_idempotent(method) || headers.contains_key(IDEMPOTENCY_KEY)
}

/// An [`IDEMPOTENCY_KEY`] header value naming one call: an attempt's
/// [`key`](crate::Attempt::key), the same for every attempt of the call
/// and different for every other call, as 32 lowercase hex digits.
///
/// The value is the bare token, as Stripe and most APIs take it. The IETF
/// draft writes the key as a structured-field string, in quotes; for a
/// server that insists on them, quote it yourself:
/// `HeaderValue::from_str(&format!("\"{}\"", attempt.key()))`.
///
/// ```
/// use retry_runtime::Policy;
/// use retry_runtime::http::{IDEMPOTENCY_KEY, idempotency_key};
///
/// static POLICY: Policy<String> = Policy::new().max_attempts(3);
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let mut sent = Vec::new();
/// let result = POLICY
///     .retry(|attempt| {
///         // With reqwest: `.header(IDEMPOTENCY_KEY, idempotency_key(attempt.key()))`.
///         let request = http::Request::post("https://pay.example/charges")
///             .header(IDEMPOTENCY_KEY, idempotency_key(attempt.key()))
///             .body(())
///             .unwrap();
///         sent.push(request.headers()[IDEMPOTENCY_KEY].clone());
///         async move { if attempt.is_retry() { Ok(()) } else { Err("reset".to_string()) } }
///     })
///     .await;
/// assert_eq!(result, Ok(()));
/// assert_eq!(sent[0], sent[1], "the server sees one charge, sent twice");
/// # }
/// ```
pub fn idempotency_key(key: CallKey) -> HeaderValue {
    HeaderValue::try_from(key.to_string()).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rfc_s_idempotent_methods() {
        let idempotent = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];
        for name in [
            "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH", "CONNECT", "PURGE",
        ] {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(is_idempotent(&method), idempotent.contains(&name), "{name}");
        }
    }

    #[test]
    fn the_key_is_its_hex_digits() {
        static POLICY: crate::Policy<()> = crate::Policy::new();
        let key = POLICY.retry_blocking(|attempt| Ok(attempt.key())).unwrap();
        let value = idempotency_key(key);
        assert_eq!(value.to_str().unwrap(), key.to_string());
        assert_eq!(value.len(), 32);
        assert_eq!(IDEMPOTENCY_KEY.as_str(), "idempotency-key");
    }
}
