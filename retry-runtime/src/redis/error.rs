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
    /// Redis could not be reached: connecting failed (refused,
    /// unreachable) or the connection broke (reset, closed mid-call): the
    /// network failed, not the command.
    Connect {
        /// What the `redis` crate said.
        reason: String,
    },
    /// No answer within [`Redis::timeout`](super::Redis::timeout).
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// Redis answered, with an error (a script's, a wrong type's) or with
    /// a reply that could not be read.
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

    /// A connection that breaks mid-call is Redis out of reach, as a
    /// refused one is: the network failed, not the command.
    #[test]
    fn a_broken_connection_is_a_connect_error_and_an_answer_a_command_error() {
        use std::io::{Error as Io, ErrorKind};
        let timeout = Duration::from_millis(50);
        let sort = |error: ::redis::RedisError| Error::from_redis(&error, timeout);
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
        ] {
            let sorted = sort(Io::new(kind, "gone").into());
            assert!(
                matches!(sorted, Error::Connect { .. }),
                "{kind:?}: {sorted:?}"
            );
        }
        assert_eq!(
            sort(Io::new(ErrorKind::TimedOut, "slow").into()),
            Error::Timeout { after: timeout }
        );
        for answer in [
            ::redis::ErrorKind::Server(::redis::ServerErrorKind::ResponseError),
            ::redis::ErrorKind::Parse,
        ] {
            let sorted = sort((answer, "WRONGTYPE").into());
            assert!(matches!(sorted, Error::Command { .. }), "{sorted:?}");
        }
    }
}
