//! What the layer lets a call buffer to send its request again: a cap per
//! request, a pool shared by the calls, and what a caller is told when a
//! body could not be kept.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::BoxError;

/// The default of [`ResilientLayer::max_replay_body`](super::ResilientLayer::max_replay_body):
/// 64 KiB, as Linkerd replays.
pub const DEFAULT_MAX_REPLAY_BODY: usize = 64 * 1024;

/// The size of the pool every layer shares unless given its own
/// ([`ResilientLayer::replay_pool`](super::ResilientLayer::replay_pool)):
/// 16 MiB, gRPC's default retry buffer per channel.
pub const DEFAULT_REPLAY_POOL: usize = 16 * 1024 * 1024;

/// The pool of the process: the layers' default.
pub(super) static PROCESS_POOL: ReplayPool = ReplayPool::new(DEFAULT_REPLAY_POOL);

/// A bound on the request bytes buffered for replay at once, by every call
/// of the layers that share it, so that a burst of large uploads cannot
/// exhaust memory: a body whose bytes do not fit is sent once and not
/// retried, as one over [`max_replay_body`](super::ResilientLayer::max_replay_body) is.
///
/// Bytes are taken as a body streams to its first attempt and given back
/// when its call ends. Every layer shares one pool of
/// [`DEFAULT_REPLAY_POOL`] bytes unless given its own, which lives in a
/// `static` as the library's other shared limits do:
///
/// ```
/// use retry_runtime::Policy;
/// use retry_runtime::tower::{BoxError, Http, ReplayPool, ResilientLayer};
///
/// static POLICY: Policy<BoxError> = Policy::new().max_attempts(3);
/// static UPLOADS: ReplayPool = ReplayPool::new(4 * 1024 * 1024);
///
/// let layer = ResilientLayer::new(&POLICY).classify(Http).replay_pool(&UPLOADS);
/// assert_eq!(UPLOADS.buffered(), 0);
/// # let _ = layer;
/// ```
#[derive(Debug)]
pub struct ReplayPool {
    max: usize,
    buffered: AtomicUsize,
}

impl ReplayPool {
    /// A pool of at most `max` bytes buffered at once.
    #[must_use]
    pub const fn new(max: usize) -> Self {
        ReplayPool {
            max,
            buffered: AtomicUsize::new(0),
        }
    }

    /// The bytes buffered now, by calls still running.
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    /// The pool's size.
    pub const fn max(&self) -> usize {
        self.max
    }

    /// Takes `bytes` if they fit.
    #[cfg_attr(
        not(feature = "http"),
        allow(dead_code, reason = "only bodies take bytes")
    )]
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        self.buffered
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |buffered| {
                buffered
                    .checked_add(bytes)
                    .filter(|&after| after <= self.max)
            })
            .is_ok()
    }

    /// Gives back `bytes` taken before.
    #[cfg_attr(
        not(feature = "http"),
        allow(dead_code, reason = "only bodies take bytes")
    )]
    pub(crate) fn give_back(&self, bytes: usize) {
        self.buffered.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The layer's limits on buffering, handed to
/// [`Classify::replay_within`](super::Classify::replay_within) once per
/// call, and what it learns of the request's body: a body buffered as it
/// streams can turn out, once sent, not to be replayable.
#[derive(Debug)]
pub struct BodyReplay {
    max_body: usize,
    pool: &'static ReplayPool,
    watch: Option<Arc<dyn Watch>>,
}

impl BodyReplay {
    pub(super) const fn new(max_body: usize, pool: &'static ReplayPool) -> Self {
        BodyReplay {
            max_body,
            pool,
            watch: None,
        }
    }

    /// The most bytes of one request's body to buffer.
    pub const fn max_body(&self) -> usize {
        self.max_body
    }

    /// The pool the bytes are taken from.
    pub const fn pool(&self) -> &'static ReplayPool {
        self.pool
    }

    /// Tells the layer to ask `watch`, before each retry, whether the
    /// body can still be sent again.
    #[cfg_attr(
        not(feature = "http"),
        allow(dead_code, reason = "only bodies are watched")
    )]
    pub(crate) fn watch(&mut self, watch: Arc<dyn Watch>) {
        self.watch = Some(watch);
    }

    pub(super) fn into_watch(self) -> Option<Arc<dyn Watch>> {
        self.watch
    }
}

/// A buffered body, as the layer's judge sees it.
pub(crate) trait Watch: fmt::Debug + Send + Sync {
    /// `Ok` if the body can be sent again, or why not. `Err(None)`: it
    /// cannot, and the caller already knows (the body itself failed).
    fn replayable(&self) -> Result<(), Option<NotReplayed>>;

    /// Notes that a retry the policy wanted was refused for the body.
    fn refuse(&self);

    /// Why, if a retry was refused for want of the body's chunks.
    fn refused(&self) -> Option<NotReplayed>;
}

/// Why a failed attempt was not retried although the policy retries its
/// failure: its request's body could not be sent again.
///
/// The caller finds it on what it gets back: on an error, as
/// [`NotRetried`] wrapping the attempt's error; on a response that is a
/// failure (a `503` handed back), in the response's extensions (with
/// `Http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotReplayed {
    /// The body is larger than [`max_replay_body`](super::ResilientLayer::max_replay_body):
    /// it was sent once, not kept.
    TooLarge {
        /// The cap, in bytes.
        max_body: usize,
    },
    /// The [`ReplayPool`] was full when the body streamed: other calls held
    /// its bytes.
    PoolFull {
        /// The pool's size, in bytes.
        pool: usize,
    },
}

impl fmt::Display for NotReplayed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReplayed::TooLarge { max_body } => write!(
                f,
                "the request body is larger than `max_replay_body` ({max_body} bytes): it was sent once"
            ),
            NotReplayed::PoolFull { pool } => write!(
                f,
                "the replay pool ({pool} bytes) was full: the request body was sent once"
            ),
        }
    }
}

/// The error a caller gets when an attempt failed with an error the policy
/// retries, but its request's body could not be sent again: the attempt's
/// own error is its [`source`](std::error::Error::source) and
/// [`into_inner`](Self::into_inner).
///
/// ```
/// use retry_runtime::tower::{BoxError, NotRetried};
///
/// fn reset_without_replay(error: &BoxError) -> bool {
///     error.downcast_ref::<NotRetried>().is_some()
/// }
/// # let _ = reset_without_replay;
/// ```
#[derive(Debug)]
pub struct NotRetried {
    why: NotReplayed,
    error: BoxError,
}

impl NotRetried {
    pub(crate) fn new(why: NotReplayed, error: BoxError) -> Self {
        NotRetried { why, error }
    }

    /// Why the body could not be sent again.
    pub const fn why(&self) -> NotReplayed {
        self.why
    }

    /// The attempt's error.
    pub fn into_inner(self) -> BoxError {
        self.error
    }
}

impl fmt::Display for NotRetried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not retried: {} ({})", self.why, self.error)
    }
}

impl std::error::Error for NotRetried {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_takes_what_fits_and_gets_it_back() {
        let pool = ReplayPool::new(10);
        assert!(pool.try_take(6));
        assert!(!pool.try_take(5), "11 bytes do not fit in 10");
        assert!(pool.try_take(4), "10 do");
        assert_eq!(pool.buffered(), 10);
        pool.give_back(6);
        assert_eq!(pool.buffered(), 4);
        assert!(!pool.try_take(usize::MAX), "an overflow is a refusal");
        assert_eq!(pool.max(), 10);
    }

    #[test]
    fn why_a_body_was_not_replayed_is_said_with_its_numbers() {
        let pool = NotReplayed::PoolFull { pool: 8 };
        assert_eq!(
            pool.to_string(),
            "the replay pool (8 bytes) was full: the request body was sent once"
        );
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        // 64 KiB a request (Linkerd's), 16 MiB for the process (gRPC's).
        assert_eq!(DEFAULT_MAX_REPLAY_BODY, 65_536);
        assert_eq!(DEFAULT_REPLAY_POOL, 16_777_216);
        assert_eq!(PROCESS_POOL.max(), DEFAULT_REPLAY_POOL);
    }
}
