//! gRPC awareness (feature `tonic`): which [`tonic::Status`] codes are worth
//! another attempt, and how long the server asked the client to wait.
//!
//! Two hooks, for `#[resilient]`'s keys of the same names and for
//! [`Policy`](crate::Policy)'s builders:
//!
//! - [`is_retryable`] retries `Unavailable` and `ResourceExhausted`, the
//!   codes by which a server says "not now" without having done the work.
//!   [`RetryCodes`] is the set to use for other codes (gRPC's own
//!   `retryableStatusCodes`): its docs say why `DeadlineExceeded` and
//!   `Aborted` are not retried unless you add them.
//! - [`retry_after`] reads the server's wait: gRPC's retry pushback
//!   (`grpc-retry-pushback-ms`), else the `google.rpc.RetryInfo` in the
//!   status details. A server's "do not retry" ends the call.
//!
//! ```text
//! #[resilient(retry_if = steadfast::tonic::is_retryable,
//!             retry_after = steadfast::tonic::retry_after)]
//! async fn check(client: &HealthClient<Channel>) -> Result<HealthCheckResponse, Status> {
//!     Ok(client.clone().check(HealthCheckRequest::default()).await?.into_inner())
//! }
//! ```
//!
//! The same as a value: the server sheds the first call and asks for 250 ms,
//! and the retry comes 250 ms later, with no backoff or jitter of the
//! client's own.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use retry_runtime::Policy;
//! use retry_runtime::tonic::{is_retryable, retry_after};
//! use tonic::Status;
//!
//! static POLICY: Policy<Status> = Policy::new()
//!     .retry_if(is_retryable)
//!     .retry_after(retry_after)
//!     .on_retry(|event| assert_eq!(event.delay(), Duration::from_millis(250)));
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let calls = AtomicU32::new(0);
//! let reply = POLICY
//!     .retry(|_| async {
//!         if calls.fetch_add(1, Ordering::Relaxed) == 0 {
//!             let mut busy = Status::unavailable("shedding load");
//!             busy.metadata_mut().insert("grpc-retry-pushback-ms", "250".parse().unwrap());
//!             return Err(busy);
//!         }
//!         Ok("SERVING")
//!     })
//!     .await;
//! assert_eq!(reply.ok(), Some("SERVING"));
//! assert_eq!(calls.load(Ordering::Relaxed), 2);
//! # }
//! ```
//!
//! # The library's own errors as statuses
//!
//! A function that returns `Result<T, Status>` can use `timeout`,
//! `deadline`, `circuit_breaker` and `max_wait`: this module converts the
//! errors they produce, which only this crate can do (neither type is
//! yours). Each status keeps the error as its
//! [`source`](std::error::Error::source), so a caller can tell it from the
//! server's.
//!
//! | error | code | why |
//! |---|---|---|
//! | [`Elapsed`] | `DeadlineExceeded` | gRPC's code for a deadline the client enforced |
//! | [`CircuitOpen`] | `Unavailable` | as far as this client knows, the service is down; a caller may try again later |
//! | [`Rejected`] | `ResourceExhausted` | a local limit ran out, as gRPC reports a client's own exhausted resources |
//!
//! The library does not retry its own refusals, whatever their code. A
//! per-attempt `timeout` is retried only if `DeadlineExceeded` is in the
//! set: with a timeout per attempt, the call's time is not spent when one
//! attempt's is, so add it for idempotent calls.
//!
//! ```
//! use std::time::Duration;
//! use retry_runtime::Policy;
//! use retry_runtime::tonic::RetryCodes;
//! use tonic::{Code, Status};
//!
//! static CODES: RetryCodes = RetryCodes::DEFAULT.with(Code::DeadlineExceeded);
//! static POLICY: Policy<Status> = Policy::new()
//!     .timeout(Duration::from_millis(100))
//!     .retry_if(|status| CODES.is_retryable(status));
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mut attempts = 0;
//! let status = POLICY
//!     .retry(|_| {
//!         attempts += 1;
//!         std::future::pending::<Result<(), Status>>()
//!     })
//!     .await
//!     .unwrap_err();
//! assert_eq!(status.code(), Code::DeadlineExceeded);
//! assert_eq!(attempts, 3, "each attempt timed out and was retried");
//! # }
//! ```

mod codes;
mod retry_info;

use std::sync::Arc;
use std::time::Duration;

use tonic::Status;

pub use codes::RetryCodes;

use crate::error::{CircuitOpen, Elapsed, Rejected};

/// Whether `status` is worth another attempt: `Unavailable` or
/// `ResourceExhausted`. A `retry_if` hook; [`RetryCodes::DEFAULT`]'s
/// [`is_retryable`](RetryCodes::is_retryable).
///
/// gRPC's own code for "try again" is `Unavailable` (a connection refused or
/// reset, a server shutting down or shedding load); `ResourceExhausted` is a
/// quota or a full queue, which frees up with time, so it is retried too,
/// best after the server's [`retry_after`]. Every other code says that the
/// request itself is at fault, so a retry gets the same answer, or that the
/// server may have acted on it (`Unknown`, `Internal`, `DataLoss`), so a
/// retry could do the work twice. `DeadlineExceeded` and `Aborted` are
/// sometimes worth it; [`RetryCodes`] says when.
///
/// A tonic client reports its own failures as statuses too: a refused
/// connection, or a proxy's 429, 502, 503 or 504, is `Unavailable`
/// (retried); tonic's own request `timeout` is `Cancelled` (not retried:
/// use steadfast's `timeout` instead, see the [module docs](self)).
///
/// ```
/// use retry_runtime::tonic::is_retryable;
/// use tonic::Status;
///
/// assert!(is_retryable(&Status::unavailable("connection refused")));
/// assert!(is_retryable(&Status::resource_exhausted("quota")));
/// assert!(!is_retryable(&Status::invalid_argument("empty name")));
/// assert!(!is_retryable(&Status::deadline_exceeded("too slow")));
/// ```
pub fn is_retryable(status: &Status) -> bool {
    RetryCodes::DEFAULT.is_retryable(status)
}

/// How long the server asked the client to wait before retrying: a
/// `retry_after` hook. `None` when it did not say, and `Some(Duration::MAX)`
/// when it said not to retry at all.
///
/// Two places say it, and the first found decides:
///
/// 1. **`grpc-retry-pushback-ms`**, gRPC's retry pushback (gRFC A6): a
///    non-negative integer of milliseconds is the wait. A negative one, or
///    one that does not parse (or more than one value), is the server asking
///    the client not to retry at all; A6 reads it so, and so do gRPC's own
///    clients.
/// 2. **`google.rpc.RetryInfo`** in the status details
///    (`grpc-status-details-bin`, e.g. written with `tonic-types`'
///    `StatusExt::with_error_details`): its `retry_delay`, the least the
///    client should wait. A zero or negative delay is no hint: the hint
///    replaces the backoff rather than adding to it, so "at least nothing"
///    would retry at once. Details that do not decode are no hint.
///
/// Pushback goes first because it is gRPC's word on retrying this call, the
/// one every gRPC client honours, and it can forbid the retry, which a
/// `RetryInfo` must not overrule; reading it is also one metadata lookup,
/// where the details need decoding.
///
/// # "Do not retry"
///
/// A hook can only suggest a delay, so "do not retry" is the longest delay
/// there is. steadfast gives up on a hint longer than `max_delay` (20 s by
/// default) with the give-up reason `retry_after` and the server's status,
/// so `Duration::MAX` ends the call at once under any cap. A hint over the
/// cap ends it too: the server said "not before then", and waiting that
/// long is not the client's call to make. With a
/// [`RateLimiter::pause_on_retry_after`](crate::RateLimiter::pause_on_retry_after),
/// a "do not retry" pauses the limiter for its whole `max_pause`, as any
/// hint longer than that does.
///
/// Whatever the server sends, this never panics.
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::tonic::retry_after;
/// use tonic::{Code, Status};
/// use tonic_types::{ErrorDetails, StatusExt};
///
/// let mut pushed_back = Status::unavailable("draining");
/// pushed_back.metadata_mut().insert("grpc-retry-pushback-ms", "1500".parse().unwrap());
/// assert_eq!(retry_after(&pushed_back), Some(Duration::from_millis(1500)));
///
/// let mut stop = Status::resource_exhausted("overloaded");
/// stop.metadata_mut().insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
/// assert_eq!(retry_after(&stop), Some(Duration::MAX));
///
/// let quota = Status::with_error_details(
///     Code::ResourceExhausted,
///     "quota",
///     ErrorDetails::with_retry_info(Some(Duration::from_secs(2))),
/// );
/// assert_eq!(retry_after(&quota), Some(Duration::from_secs(2)));
///
/// assert_eq!(retry_after(&Status::unavailable("no hint")), None);
/// ```
pub fn retry_after(status: &Status) -> Option<Duration> {
    pushback(status).or_else(|| retry_info::retry_delay(status.details()))
}

/// gRPC's retry pushback header (gRFC A6), read from the trailers.
const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// The pushback's wait, `Duration::MAX` for "do not retry".
fn pushback(status: &Status) -> Option<Duration> {
    let mut values = status.metadata().get_all(PUSHBACK).iter();
    let value = values.next()?;
    if values.next().is_some() {
        // Two answers are no answer: gRPC-Go does not retry either.
        return Some(Duration::MAX);
    }
    // A6: "an ASCII encoded signed 32-bit integer".
    let millis = value
        .to_str()
        .ok()
        .and_then(|text| text.parse::<i32>().ok());
    match millis.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => Some(Duration::from_millis(ms)),
        None => Some(Duration::MAX),
    }
}

/// `DeadlineExceeded`, with the [`Elapsed`] as its source (see the
/// [module docs](self)).
impl From<Elapsed> for Status {
    fn from(err: Elapsed) -> Self {
        with_source(Status::deadline_exceeded(err.to_string()), err)
    }
}

/// `Unavailable`, with the [`CircuitOpen`] as its source (see the
/// [module docs](self)).
impl From<CircuitOpen> for Status {
    fn from(err: CircuitOpen) -> Self {
        with_source(Status::unavailable(err.to_string()), err)
    }
}

/// `ResourceExhausted`, with the [`Rejected`] as its source (see the
/// [module docs](self)).
impl From<Rejected> for Status {
    fn from(err: Rejected) -> Self {
        with_source(Status::resource_exhausted(err.to_string()), err)
    }
}

fn with_source(
    mut status: Status,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Status {
    status.set_source(Arc::new(source));
    status
}

#[cfg(test)]
mod tests {
    use super::retry_info::tests::wire;
    use super::*;
    use std::error::Error as _;
    use tonic::Code;
    use tonic::metadata::MetadataValue;
    use tonic_types::{ErrorDetails, StatusExt};

    fn pushed_back(values: &[&str]) -> Status {
        let mut status = Status::unavailable("busy");
        for value in values {
            let value = MetadataValue::try_from(*value).expect("visible ASCII");
            status.metadata_mut().append(PUSHBACK, value);
        }
        status
    }

    fn with_retry_info(delay: Duration) -> Status {
        Status::with_error_details(
            Code::ResourceExhausted,
            "quota",
            ErrorDetails::with_retry_info(Some(delay)),
        )
    }

    #[test]
    fn only_unavailable_and_resource_exhausted_are_retried_by_default() {
        let retried: Vec<Code> = (0..=16)
            .map(Code::from_i32)
            .filter(|&code| is_retryable(&Status::new(code, "")))
            .collect();
        assert_eq!(retried, [Code::ResourceExhausted, Code::Unavailable]);
    }

    #[test]
    fn pushback_is_a_wait_in_milliseconds() {
        let cases = [("0", 0), ("1", 1), ("250", 250), ("+7", 7), ("0042", 42)];
        for (value, ms) in cases {
            let wait = retry_after(&pushed_back(&[value]));
            assert_eq!(wait, Some(Duration::from_millis(ms)), "{value:?}");
        }
        let longest = retry_after(&pushed_back(&["2147483647"]));
        assert_eq!(longest, Some(Duration::from_millis(i32::MAX as u64)));
    }

    #[test]
    fn a_negative_or_unreadable_pushback_means_do_not_retry() {
        let refusals: [&[&str]; 10] = [
            &["-1"],
            &["-2147483648"],
            &["2147483648"],
            &["1.5"],
            &["1s"],
            &[" 5"],
            &[""],
            &["soon"],
            &["99999999999999999999999"],
            &["100", "200"],
        ];
        for values in refusals {
            assert_eq!(
                retry_after(&pushed_back(values)),
                Some(Duration::MAX),
                "{values:?}"
            );
        }
        let mut opaque = Status::unavailable("busy");
        let bytes = MetadataValue::try_from(b"\x80\xff").expect("obs-text is a valid value");
        opaque.metadata_mut().insert(PUSHBACK, bytes);
        assert_eq!(retry_after(&opaque), Some(Duration::MAX));
    }

    #[test]
    fn retry_info_is_read_when_there_is_no_pushback() {
        let status = with_retry_info(Duration::from_millis(1200));
        assert_eq!(retry_after(&status), Some(Duration::from_millis(1200)));
    }

    #[test]
    fn pushback_wins_over_retry_info() {
        let mut status = with_retry_info(Duration::from_secs(5));
        status
            .metadata_mut()
            .insert(PUSHBACK, MetadataValue::from_static("100"));
        assert_eq!(retry_after(&status), Some(Duration::from_millis(100)));
        status
            .metadata_mut()
            .insert(PUSHBACK, MetadataValue::from_static("-1"));
        assert_eq!(
            retry_after(&status),
            Some(Duration::MAX),
            "RetryInfo does not overrule"
        );
    }

    #[test]
    fn garbage_details_are_no_hint() {
        for details in [
            &b"\xff\xff\xff"[..],
            b"\x1a\x05ab",
            &wire::status_with_delay(i64::MIN, 0),
        ] {
            let status = Status::with_details(Code::Unavailable, "busy", details.to_vec().into());
            assert_eq!(retry_after(&status), None, "{details:?}");
        }
    }

    #[test]
    fn the_library_errors_become_statuses_that_keep_them() {
        let elapsed = Status::from(Elapsed::new());
        assert_eq!(elapsed.code(), Code::DeadlineExceeded);
        assert_eq!(elapsed.message(), "timed out");
        assert!(elapsed.source().is_some_and(|s| s.is::<Elapsed>()));

        let open = Status::from(CircuitOpen::new());
        assert_eq!(open.code(), Code::Unavailable);
        assert!(open.source().is_some_and(|s| s.is::<CircuitOpen>()));

        let rejected = Status::from(Rejected::new());
        assert_eq!(rejected.code(), Code::ResourceExhausted);
        assert!(rejected.source().is_some_and(|s| s.is::<Rejected>()));
    }
}
