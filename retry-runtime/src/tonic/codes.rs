//! Which gRPC status codes are worth another attempt.

use std::fmt;

use tonic::{Code, Status};

/// A set of gRPC status codes to retry: gRPC's own `retryableStatusCodes`
/// (gRFC A6), as a value that fits in a `static`.
///
/// [`DEFAULT`](Self::DEFAULT) holds the two codes by which a server says
/// "not now" without having done the work: `Unavailable` and
/// `ResourceExhausted`. Two more are retryable in some services and not in
/// others, so they are yours to add:
///
/// - **`DeadlineExceeded`**: the server may have done the work and only the
///   answer came too late, so a retry repeats it; and when the deadline is
///   the call's own (gRPC's `grpc-timeout`), it is spent, so another attempt
///   has no time left. Add it when the operation is idempotent and each
///   attempt has its own time limit: steadfast's `timeout`, whose expiry is
///   `DeadlineExceeded` too (see `From<Elapsed> for Status` in the
///   [module docs](super)).
/// - **`Aborted`**: a concurrency conflict (a failed transaction, a stale
///   version). Retrying the same request usually conflicts again; the
///   remedy is a new read-modify-write cycle one level up. Add it when the
///   retried operation does the whole cycle.
///
/// ```
/// use retry_runtime::tonic::RetryCodes;
/// use tonic::{Code, Status};
///
/// // An idempotent read with a per-attempt timeout: late answers are retried too.
/// static READS: RetryCodes = RetryCodes::DEFAULT.with(Code::DeadlineExceeded);
///
/// assert!(READS.is_retryable(&Status::deadline_exceeded("slow replica")));
/// assert!(READS.is_retryable(&Status::unavailable("connection reset")));
/// assert!(!READS.is_retryable(&Status::not_found("no such key")));
/// assert!(!RetryCodes::DEFAULT.contains(Code::DeadlineExceeded));
/// ```
///
/// As a hook, it goes in a closure: `#[resilient(retry_if = |status|
/// CODES.is_retryable(status))]`, or a `Policy`'s, which must capture
/// nothing (a `static` is not captured):
///
/// ```
/// use retry_runtime::Policy;
/// use retry_runtime::tonic::RetryCodes;
/// use tonic::{Code, Status};
///
/// static CODES: RetryCodes = RetryCodes::DEFAULT.with(Code::Aborted);
/// static POLICY: Policy<Status> = Policy::new().retry_if(|status| CODES.is_retryable(status));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryCodes {
    /// Bit `n` set: the code whose number is `n` (gRPC numbers them 0 to 16).
    bits: u32,
}

impl RetryCodes {
    /// No code: nothing is retried.
    pub const NONE: RetryCodes = RetryCodes { bits: 0 };

    /// `Unavailable` and `ResourceExhausted`: what [`super::is_retryable`]
    /// retries.
    pub const DEFAULT: RetryCodes = RetryCodes::NONE
        .with(Code::Unavailable)
        .with(Code::ResourceExhausted);

    /// This set and `code`.
    #[must_use]
    pub const fn with(self, code: Code) -> Self {
        RetryCodes {
            bits: self.bits | bit(code),
        }
    }

    /// This set without `code`.
    ///
    /// ```
    /// use retry_runtime::tonic::RetryCodes;
    /// use tonic::Code;
    ///
    /// // A quota that resets daily: waiting a few seconds will not help.
    /// static CODES: RetryCodes = RetryCodes::DEFAULT.without(Code::ResourceExhausted);
    /// assert!(!CODES.contains(Code::ResourceExhausted));
    /// ```
    #[must_use]
    pub const fn without(self, code: Code) -> Self {
        RetryCodes {
            bits: self.bits & !bit(code),
        }
    }

    /// Whether `code` is in the set.
    pub const fn contains(&self, code: Code) -> bool {
        self.bits & bit(code) != 0
    }

    /// Whether `status` has a code in the set: a `retry_if` hook.
    ///
    /// The code alone decides. A server's "do not retry" in
    /// `grpc-retry-pushback-ms` is read by [`super::retry_after`], so use
    /// both hooks.
    pub fn is_retryable(&self, status: &Status) -> bool {
        self.contains(status.code())
    }
}

impl Default for RetryCodes {
    /// [`RetryCodes::DEFAULT`].
    fn default() -> Self {
        RetryCodes::DEFAULT
    }
}

/// Lists the codes, e.g. `{Unavailable, ResourceExhausted}`.
impl fmt::Debug for RetryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes = (0..=16)
            .map(Code::from_i32)
            .filter(|&code| self.contains(code));
        f.debug_set().entries(codes).finish()
    }
}

/// The code's bit: gRPC codes are numbered 0 to 16 and `Code` is a
/// field-less enum with those numbers as discriminants.
const fn bit(code: Code) -> u32 {
    1 << (code as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    #[test]
    fn the_default_is_unavailable_and_resource_exhausted_only() {
        let retried: Vec<Code> = ALL
            .into_iter()
            .filter(|&code| RetryCodes::DEFAULT.contains(code))
            .collect();
        assert_eq!(retried, [Code::ResourceExhausted, Code::Unavailable]);
        assert_eq!(RetryCodes::default(), RetryCodes::DEFAULT);
    }

    #[test]
    fn every_code_has_a_bit_of_its_own() {
        for code in ALL {
            let one = RetryCodes::NONE.with(code);
            for other in ALL {
                assert_eq!(one.contains(other), code == other, "{code:?} vs {other:?}");
            }
            assert_eq!(one.without(code), RetryCodes::NONE);
        }
    }

    #[test]
    fn with_and_without_compose() {
        let codes = RetryCodes::DEFAULT
            .with(Code::Aborted)
            .with(Code::Aborted)
            .without(Code::Unavailable)
            .without(Code::NotFound);
        assert!(codes.contains(Code::Aborted));
        assert!(codes.contains(Code::ResourceExhausted));
        assert!(!codes.contains(Code::Unavailable));
        assert_eq!(format!("{codes:?}"), "{ResourceExhausted, Aborted}");
        assert_eq!(format!("{:?}", RetryCodes::NONE), "{}");
    }

    #[test]
    fn a_status_is_judged_by_its_code() {
        let codes = RetryCodes::NONE.with(Code::DeadlineExceeded);
        assert!(codes.is_retryable(&Status::deadline_exceeded("late")));
        assert!(!codes.is_retryable(&Status::unavailable("down")));
    }
}
