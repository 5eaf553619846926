//! What can go wrong between a shared instance and Redis.

use std::fmt;
use std::time::Duration;

/// Why a shared instance could not consult Redis; its
/// [`Fallback`](super::Fallback) decided instead.
///
/// Messages of the `redis` crate are kept as text so that the error can be
/// cloned to every instance that reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// [`Redis::from_env`](super::Redis::from_env)'s variable is not set
    /// (or not Unicode).
    MissingUrl {
        /// The variable read.
        var: &'static str,
    },
    /// The URL could not be parsed.
    InvalidUrl {
        /// What the `redis` crate said.
        reason: String,
    },
    /// The background runtime Redis I/O runs on could not be started.
    Runtime {
        /// What tokio said.
        reason: String,
    },
    /// Connecting failed (refused, reset, unreachable).
    Connect {
        /// What the `redis` crate said.
        reason: String,
    },
    /// No answer within [`Redis::timeout`](super::Redis::timeout).
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// Redis answered with an error, or the connection broke mid-call.
    Command {
        /// What the `redis` crate said.
        reason: String,
    },
}

impl Error {
    /// Sorts an error of the `redis` crate.
    pub(crate) fn from_redis(error: &::redis::RedisError, timeout: Duration) -> Self {
        if error.is_timeout() {
            Error::Timeout { after: timeout }
        } else if error.is_connection_refusal() || error.is_connection_dropped() {
            Error::Connect {
                reason: error.to_string(),
            }
        } else {
            Error::Command {
                reason: error.to_string(),
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingUrl { var } => {
                write!(f, "Redis URL variable `{var}` is not set")
            }
            Error::InvalidUrl { reason } => write!(f, "invalid Redis URL: {reason}"),
            Error::Runtime { reason } => {
                write!(f, "could not start the Redis I/O runtime: {reason}")
            }
            Error::Connect { reason } => write!(f, "cannot connect to Redis: {reason}"),
            Error::Timeout { after } => write!(f, "Redis did not answer within {after:?}"),
            Error::Command { reason } => write!(f, "Redis call failed: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a log line or a `last_error` shows: the failure, and what the
    /// `redis` crate said of it.
    #[test]
    fn each_error_says_what_failed() {
        let cases = [
            (
                Error::MissingUrl { var: "REDIS_URL" },
                "Redis URL variable `REDIS_URL` is not set",
            ),
            (
                Error::Connect {
                    reason: "refused".to_owned(),
                },
                "cannot connect to Redis: refused",
            ),
            (
                Error::Timeout {
                    after: Duration::from_millis(50),
                },
                "Redis did not answer within 50ms",
            ),
            (
                Error::Command {
                    reason: "NOSCRIPT".to_owned(),
                },
                "Redis call failed: NOSCRIPT",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }
}
