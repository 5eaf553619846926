//! reqwest awareness (feature `reqwest`): which `reqwest` failures are
//! worth another attempt, and the server's `Retry-After` kept with an error
//! response.
//!
//! Two ways in, depending on the error type the retried code returns:
//!
//! - **`reqwest::Error` as it is**: [`is_transient`] is the classification
//!   (`retry_if = steadfast::reqwest::is_transient`), and [`retry_after`]
//!   reads the hint off a [`Response`] you hold.
//! - **[`Error`]**, this module's error type, for code that turns error
//!   statuses into errors. reqwest's own [`Response::error_for_status`]
//!   drops the response's headers, and with them `Retry-After`; this
//!   module's [`error_for_status`] keeps them in a [`StatusError`]. [`Error`]
//!   holds either kind of failure, and the library's own (`Elapsed`,
//!   `CircuitOpen`, `Rejected`), so every key works with it, and its
//!   [`is_transient`](Error::is_transient) and
//!   [`retry_after`](Error::retry_after) methods fit the `retry_if` and
//!   `retry_after` keys and the [`Policy`](crate::Policy) builders of the
//!   same names.
//!
//! ```no_run
//! use retry_runtime::Policy;
//! use retry_runtime::reqwest::{Error, error_for_status};
//!
//! static POLICY: Policy<Error> = Policy::new()
//!     .max_attempts(4)
//!     .retry_if(Error::is_transient)
//!     .retry_after(Error::retry_after);
//!
//! async fn price(client: &reqwest::Client, item: u64) -> Result<String, Error> {
//!     POLICY
//!         .retry(|_| async move {
//!             let response = client
//!                 .get(format!("http://shop.example/items/{item}/price"))
//!                 .send()
//!                 .await?;
//!             Ok(error_for_status(response)?.text().await?)
//!         })
//!         .await
//! }
//! ```
//!
//! With the attribute, the same pair of keys:
//! `#[resilient(retry_if = Error::is_transient, retry_after = Error::retry_after)]`.
//!
//! The classification looks at the failure, not the request: a reset
//! connection is transient, but whether a `POST` that may have reached the
//! server can be sent again is for [`http::is_replayable`](crate::http::is_replayable)
//! to say, or for an [`Idempotency-Key`](crate::http::IDEMPOTENCY_KEY) to
//! make safe.
//!
//! # With reqwest's own retries
//!
//! reqwest 0.13 retries too, inside `send()`, by the policy given to
//! `ClientBuilder::retry`. Its default retries only protocol NACKs (an
//! HTTP/2 stream the server refused before processing it, at most twice,
//! at once): requests the server never saw, which stacks harmlessly under
//! ours. A policy of its own (`reqwest::retry::for_host(..)` with a
//! classifier of statuses or errors) retries again inside each of our
//! attempts: 4 attempts of ours over 2 retries of reqwest's are up to 12
//! requests per call, the extra ones without backoff, outside our budget,
//! breaker and rate limit, and invisible to `on_retry`. Retry a call in one
//! place: under steadfast, build the client with
//! `.retry(reqwest::retry::never())` (what our examples do) so that one
//! attempt is one request, or leave reqwest's default; keep a `for_host`
//! policy for clients steadfast does not wrap.
//!
//! ```
//! // One attempt, one request: steadfast's policy does all the retrying.
//! let client = reqwest::Client::builder()
//!     .retry(reqwest::retry::never())
//!     .build();
//! # let _ = client;
//! ```

use std::error::Error as _;
use std::fmt;
use std::io;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use reqwest::{Response, Url};

use crate::error::{CircuitOpen, Elapsed, Rejected};
use crate::http::is_retryable_status;

/// Whether a `reqwest` failure is worth another attempt: for
/// `retry_if = steadfast::reqwest::is_transient`.
///
/// | failure | transient |
/// |---|---|
/// | could not connect (refused, DNS, TLS handshake), timed out | yes |
/// | the connection broke while sending the request or reading the response (`is_request`, `is_body`, and a `bytes()`/`text()` cut short) | yes |
/// | an error status, from [`Response::error_for_status`] | [`is_retryable_status`] |
/// | the request could not be built (`is_builder`), a redirect loop (`is_redirect`), a body that arrived but does not decode (`json()`) | no |
///
/// A TLS certificate the client rejects is a connect error too, and so is
/// retried, up to `max_attempts`; reqwest does not tell it apart from a
/// refused connection without its TLS backend's types.
///
/// ```
/// use retry_runtime::reqwest::is_transient;
///
/// // A URL reqwest cannot parse: a builder error, the same on every attempt.
/// let error = reqwest::Client::new().get("http://[::1").build().unwrap_err();
/// assert!(error.is_builder());
/// assert!(!is_transient(&error));
/// ```
pub fn is_transient(error: &reqwest::Error) -> bool {
    if let Some(status) = error.status() {
        return is_retryable_status(status);
    }
    if error.is_connect() || error.is_timeout() || error.is_request() || error.is_body() {
        return true;
    }
    // `bytes()`, `text()` and `chunk()` report a body cut short as a
    // decode error, caused by the connection's I/O error (through hyper's,
    // or a reqwest body error); a body that arrived whole but does not
    // parse, or does not decompress, has some other cause.
    error.is_decode() && connection_broke(error)
}

/// Whether an error was caused by the connection breaking.
fn connection_broke(error: &reqwest::Error) -> bool {
    let mut cause = error.source();
    while let Some(inner) = cause {
        if let Some(inner) = inner.downcast_ref::<reqwest::Error>() {
            return is_transient(inner);
        }
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotConnected
            );
        }
        cause = inner.source();
    }
    false
}

/// The response's `Retry-After` as a delay, read as
/// [`http::retry_after`](crate::http::retry_after) reads it: delta-seconds
/// or an HTTP-date, `None` when absent or unreadable.
///
/// ```no_run
/// # async fn run(client: reqwest::Client) -> Result<(), reqwest::Error> {
/// use retry_runtime::reqwest::retry_after;
///
/// let response = client.get("http://api.example/jobs/7").send().await?;
/// if let Some(wait) = retry_after(&response) {
///     println!("the server asks for {wait:?}");
/// }
/// # Ok(()) }
/// ```
pub fn retry_after(response: &Response) -> Option<Duration> {
    crate::http::retry_after(response.headers())
}

/// [`Response::error_for_status`], keeping what the response said: a
/// client or server error status (4xx, 5xx) becomes a [`StatusError`] with
/// the status, the headers and the `Retry-After` hint; any other response
/// is returned as it is.
///
/// The error response's body is dropped, as reqwest's is; read it first
/// (with [`error_for_status_ref`]) when the server explains itself there.
pub fn error_for_status(response: Response) -> Result<Response, StatusError> {
    match StatusError::of(&response) {
        Some(error) => Err(error),
        None => Ok(response),
    }
}

/// [`error_for_status`] for a borrowed response, which stays the caller's
/// to read.
pub fn error_for_status_ref(response: &Response) -> Result<&Response, StatusError> {
    match StatusError::of(response) {
        Some(error) => Err(error),
        None => Ok(response),
    }
}

/// An error status (4xx or 5xx), with what the response said about retrying:
/// made by [`error_for_status`].
///
/// Unlike a status `reqwest::Error`, it keeps the response's headers, so
/// [`retry_after`](Self::retry_after) can honour the server's
/// `Retry-After`. The hint is read when the response arrives, so an
/// HTTP-date counts from then.
#[derive(Debug, Clone)]
pub struct StatusError {
    /// Boxed, as reqwest boxes its error: what the error path keeps should
    /// not make every `Result` carrying it two hundred bytes wide.
    inner: Box<Received>,
}

/// What a [`StatusError`] keeps of its response.
#[derive(Debug, Clone)]
struct Received {
    status: StatusCode,
    retry_after: Option<Duration>,
    headers: HeaderMap,
    url: Url,
}

impl StatusError {
    /// The error of a 4xx or 5xx response; `None` for any other.
    fn of(response: &Response) -> Option<Self> {
        let status = response.status();
        (status.is_client_error() || status.is_server_error()).then(|| StatusError {
            inner: Box::new(Received {
                status,
                retry_after: retry_after(response),
                headers: response.headers().clone(),
                url: response.url().clone(),
            }),
        })
    }

    /// The response's status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The server's `Retry-After`, as [`http::retry_after`](crate::http::retry_after)
    /// read it when the response arrived.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Whether the status is worth another attempt
    /// ([`is_retryable_status`]).
    pub fn is_transient(&self) -> bool {
        is_retryable_status(self.inner.status)
    }

    /// The response's headers, for what else the server said (a request id,
    /// rate-limit counters).
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The URL of the response, after redirects.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // reqwest's words for the same failure, so logs read alike.
        let side = if self.inner.status.is_client_error() {
            "client"
        } else {
            "server"
        };
        write!(
            f,
            "HTTP status {side} error ({}) for url ({})",
            self.inner.status, self.inner.url
        )?;
        if let Some(wait) = self.inner.retry_after {
            write!(f, ", retry after {wait:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StatusError {}

/// The failure of an HTTP call made with reqwest, as the error type of the
/// code being retried: reqwest's own errors, error statuses with their
/// `Retry-After` ([`StatusError`]), and the library's own refusals, so that
/// `timeout`, `deadline`, `circuit_breaker` and `max_wait` work with it.
///
/// `?` converts each of them. [`Error::is_transient`] and
/// [`Error::retry_after`] are the classification and the hint:
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::{Backoff, Policy};
/// use retry_runtime::reqwest::Error;
///
/// static POLICY: Policy<Error> = Policy::new()
///     .max_attempts(5)
///     .backoff(Backoff::exponential(Duration::from_millis(200)))
///     .timeout(Duration::from_secs(2))
///     .retry_if(Error::is_transient)
///     .retry_after(Error::retry_after);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// reqwest failed: no response, a body that could not be read, or an
    /// error status from reqwest's own `error_for_status` (without its
    /// headers).
    Reqwest(reqwest::Error),
    /// The server answered with an error status.
    Status(StatusError),
    /// An attempt ran past its `timeout`, or the call past its `deadline`.
    Elapsed(Elapsed),
    /// An open circuit breaker refused the attempt.
    CircuitOpen(CircuitOpen),
    /// No concurrency permit or rate-limit token came within `max_wait`.
    Rejected(Rejected),
}

impl Error {
    /// Whether another attempt may succeed: for `retry_if`.
    ///
    /// reqwest's errors as [`is_transient`] judges them, error statuses as
    /// [`is_retryable_status`] does, and an attempt's `timeout`, like
    /// reqwest's own timeouts, is transient. The library's refusals end the
    /// call whatever this says.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Reqwest(error) => is_transient(error),
            Error::Status(error) => error.is_transient(),
            Error::Elapsed(_) => true,
            Error::CircuitOpen(_) | Error::Rejected(_) => false,
        }
    }

    /// The server's `Retry-After`, when the error is a response that had
    /// one: for `retry_after`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status(error) => error.retry_after(),
            _ => None,
        }
    }

    /// The response's status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Reqwest(error) => error.status(),
            Error::Status(error) => Some(error.status()),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Reqwest(error) => fmt::Display::fmt(error, f),
            Error::Status(error) => fmt::Display::fmt(error, f),
            Error::Elapsed(error) => fmt::Display::fmt(error, f),
            Error::CircuitOpen(error) => fmt::Display::fmt(error, f),
            Error::Rejected(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl std::error::Error for Error {
    /// What the wrapped error's own `source` is: `Error` adds no words of
    /// its own to the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Reqwest(error) => error.source(),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Self {
        Error::Reqwest(error)
    }
}

impl From<StatusError> for Error {
    fn from(error: StatusError) -> Self {
        Error::Status(error)
    }
}

impl From<Elapsed> for Error {
    fn from(error: Elapsed) -> Self {
        Error::Elapsed(error)
    }
}

impl From<CircuitOpen> for Error {
    fn from(error: CircuitOpen) -> Self {
        Error::CircuitOpen(error)
    }
}

impl From<Rejected> for Error {
    fn from(error: Rejected) -> Self {
        Error::Rejected(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_two_words_wide() {
        // Every `Result` through a retried call carries one.
        assert!(size_of::<Error>() <= 2 * size_of::<usize>());
    }
}
