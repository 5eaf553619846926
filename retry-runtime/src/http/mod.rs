//! HTTP awareness (feature `http`): which statuses are worth retrying, how
//! long the server asked us to wait, and which requests are safe to send
//! twice.
//!
//! Written against the `http` crate's types, which hyper, reqwest, axum,
//! tower and tonic all share, so the same three questions have the same
//! answers whichever client sends the request:
//!
//! - [`is_retryable_status`]: 408, 429, 500, 502, 503 and 504, the statuses
//!   that say "not now" rather than "not this".
//! - [`retry_after`]: the `Retry-After` header as a delay, for the
//!   `retry_after` key; [`retry_after_at`] is the same with the clock passed
//!   in, for tests.
//! - [`is_idempotent`], [`is_replayable`], [`IDEMPOTENCY_KEY`] and
//!   [`idempotency_key`]: whether a failed request may be sent again, and
//!   the header that makes a `POST` safe to replay.
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderMap, HeaderValue, Method, StatusCode, header::RETRY_AFTER};
//! use retry_runtime::http::{is_replayable, is_retryable_status, retry_after};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
//!
//! // A 503 on a GET: retry, in two seconds rather than on our own schedule.
//! assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
//! assert!(is_replayable(&Method::GET, &HeaderMap::new()));
//! assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
//! ```
//!
//! The client integrations build on these: `reqwest` (feature `reqwest`)
//! classifies `reqwest::Error` and keeps the hint of an error response.

mod replay;
mod retry_after;
mod status;

pub use replay::{IDEMPOTENCY_KEY, idempotency_key, is_idempotent, is_replayable};
pub use retry_after::{retry_after, retry_after_at};
pub use status::is_retryable_status;
