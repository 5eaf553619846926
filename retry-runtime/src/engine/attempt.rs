//! What one attempt knows about its call: which attempt it is, how long the
//! call has left, and a key that names the call.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One attempt of a call, as the code being retried sees it: passed to a
/// [`Policy`](crate::Policy)'s closure, and bound in an annotated function
/// or a `retry!` block by the `attempt` key (`#[resilient(attempt = a)]`).
///
/// ```
/// use std::time::Duration;
/// use retry_runtime::Attempt;
///
/// /// What a request sent by this attempt carries.
/// fn request_headers(attempt: &Attempt) -> Vec<(&'static str, String)> {
///     // The same key on every attempt: the server sees one payment.
///     let mut headers = vec![("Idempotency-Key", attempt.key().to_string())];
///     // Let the server give up when the caller will have.
///     if let Some(left) = attempt.time_left() {
///         headers.push(("Request-Timeout-Ms", left.as_millis().to_string()));
///     }
///     headers
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    number: u32,
    /// Started beside an attempt still running (`hedge`), not after one
    /// failed. Beside `number`, in what was padding.
    hedge: bool,
    deadline: Option<Instant>,
    /// The call's key number; the process's half is added when the key is
    /// read, so an attempt that never reads it never touches it.
    call: u64,
}

impl Attempt {
    pub(super) const fn new(number: u32, deadline: Option<Instant>, call: u64) -> Self {
        Attempt {
            number,
            hedge: false,
            deadline,
            call,
        }
    }

    /// The same attempt, as a hedge.
    pub(super) const fn hedged(mut self) -> Self {
        self.hedge = true;
        self
    }

    /// Which attempt this is: 1 for the first, 2 for the first retry...
    /// With `hedge`, every attempt started counts, hedges included, so no
    /// two attempts of a call share a number: a hedge beside the first
    /// attempt is 2, and a retry after both failed is 3.
    pub const fn number(&self) -> u32 {
        self.number
    }

    /// Whether this is a retry: started after every attempt before it had
    /// failed (not the first attempt, not a hedge).
    pub const fn is_retry(&self) -> bool {
        self.number > 1 && !self.hedge
    }

    /// Whether this is a hedge: started beside an attempt of the call that
    /// was still running (it was slow, or another hedge failed), so that
    /// the body can send it to another replica. Never set without
    /// [`Policy::hedge`](crate::Policy::hedge).
    pub const fn is_hedge(&self) -> bool {
        self.hedge
    }

    /// The time left before the call's `deadline`, so that an inner call can
    /// bound itself by it (zero once passed); `None` without a deadline.
    /// Read on tokio's clock, as the deadline itself is.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// A key that stays the same across the attempts of one call and differs
    /// between calls (and processes): what an `Idempotency-Key` header needs
    /// for a server to recognise a replay.
    pub fn key(&self) -> CallKey {
        CallKey::of(self.call)
    }
}

/// The name of one call, the same for all its attempts: 128 bits, 64 of
/// them drawn once per process and 64 counting the calls that asked for a
/// key. `Display` is 32 lowercase hex digits.
///
/// ```
/// # use retry_runtime::CallKey;
/// fn header(key: CallKey) -> String {
///     format!("Idempotency-Key: {key}")
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    process: u64,
    /// Never 0: a call keeps 0 for "no key yet".
    number: u64,
}

impl CallKey {
    /// The number of a call no other call of this process has had, never 0.
    /// Cheap: a per-thread count, which takes a block of numbers from a
    /// shared counter once per `BLOCK` keys.
    #[inline]
    pub(super) fn next_number() -> u64 {
        const BLOCK: u64 = 1 << 16;
        // From 1: a call keeps 0 for "no key yet".
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static NEXT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        NEXT.with(|next| {
            let (mut at, mut end) = next.get();
            if at == end {
                at = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = at + BLOCK;
            }
            next.set((at + 1, end));
            at
        })
    }

    /// The key of the call numbered `number`: with the process's half,
    /// drawn from the OS once.
    pub(super) fn of(number: u64) -> Self {
        static PROCESS: OnceLock<u64> = OnceLock::new();
        let process = *PROCESS.get_or_init(|| {
            use rand::{RngCore, SeedableRng};
            rand::rngs::SmallRng::from_os_rng().next_u64()
        });
        CallKey { process, number }
    }

    /// A fresh key.
    #[cfg(test)]
    pub(super) fn next() -> Self {
        Self::of(Self::next_number())
    }

    /// The key as a number: the process's half above, the call's below.
    pub const fn as_u128(&self) -> u128 {
        (self.process as u128) << 64 | self.number as u128
    }
}

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.as_u128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_between_calls_and_threads_and_share_the_process_half() {
        let here: Vec<CallKey> = (0..1000).map(|_| CallKey::next()).collect();
        let there = std::thread::spawn(|| (0..1000).map(|_| CallKey::next()).collect::<Vec<_>>())
            .join()
            .unwrap();
        let mut all: Vec<u128> = here.iter().chain(&there).map(CallKey::as_u128).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2000, "no key was handed out twice");
        assert!(all.iter().all(|k| k >> 64 == all[0] >> 64));
        assert_ne!(all[0] >> 64, 0, "the process's half is in the high bits");
        assert_eq!(here[0].to_string().len(), 32);
    }

    #[test]
    fn threads_never_share_numbers_past_their_first_block() {
        use std::collections::HashSet;
        use std::sync::mpsc;
        // Two threads each outgrow their first block of 2^16 numbers, one
        // after the other: each must move to a block no one holds, not run
        // on into the next one's.
        let (taken, first_taken) = mpsc::channel();
        let (go, wait) = mpsc::channel::<()>();
        let first = std::thread::spawn(move || {
            let mut keys = HashSet::from([CallKey::next_number()]);
            taken.send(()).unwrap();
            wait.recv().unwrap();
            keys.extend((0..70_000).map(|_| CallKey::next_number()));
            keys
        });
        first_taken.recv().unwrap();
        let here: HashSet<u64> = (0..70_000).map(|_| CallKey::next_number()).collect();
        go.send(()).unwrap();
        let there = first.join().unwrap();
        assert_eq!((here.len(), there.len()), (70_000, 70_001));
        assert!(here.is_disjoint(&there), "two calls got the same number");
    }

    #[tokio::test(start_paused = true)]
    async fn time_left_counts_down_to_zero() {
        let deadline = Instant::now() + Duration::from_secs(2);
        let attempt = Attempt::new(1, Some(deadline), CallKey::next_number());
        assert_eq!(attempt.time_left(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(attempt.time_left(), Some(Duration::ZERO));
        assert_eq!(Attempt::new(2, None, 7).time_left(), None);
        assert!(!attempt.is_retry());
    }

    #[test]
    fn a_hedge_is_not_a_retry() {
        let hedge = Attempt::new(2, None, 7).hedged();
        assert!(hedge.is_hedge() && !hedge.is_retry());
        let retry = Attempt::new(3, None, 7);
        assert!(retry.is_retry() && !retry.is_hedge());
        assert!(!Attempt::new(1, None, 7).is_hedge());
    }
}
