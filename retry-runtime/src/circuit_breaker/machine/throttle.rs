//! Adaptive throttling (Google SRE, "Handling Overload"): a closed breaker
//! that refuses each request with probability
//! `max(0, (requests - k · accepts) / (requests + 1))` over the last
//! `window`, so that the dependency sees about `k` times the requests it
//! accepts, and refusing costs the client nothing but a draw.
//!
//! Requests, accepts and pending requests live in the time-based window's
//! buckets (`time_window.rs`), each request's three in the bucket it
//! started in, so that a bucket leaving the window takes its requests and
//! their outcomes together. A request is counted when it starts, before
//! the draw, whether it is refused or admitted (go-zero's first mistake
//! was to count it only when it returned: a dependency that hangs then
//! looks healthy for a whole timeout). But a request still pending in the
//! current bucket is not judged yet: counted, it would be a request
//! without an accept, so a burst of calls at start-up, or any call slower
//! than the gap between calls, would make the throttle refuse a healthy
//! dependency (the first call of a fresh breaker, still in flight, makes
//! the second's probability 1/2). Once its bucket is no longer the
//! current one (`window / 10`, 12 s by default) a pending request counts,
//! so a hang shows within a bucket, not a timeout. A request whose permit
//! is dropped without an outcome is taken back out of its bucket, as a
//! cancelled call counts nothing in the other modes: a hedge that lost, or
//! a caller that went away, says nothing about the dependency. Refusals
//! are `CircuitOpen`, counted in `rejected_count`.
//!
//! Admission reads the clock and the window's ten buckets, writes two
//! words (the request, and it pending), and draws from the thread's
//! generator only when the probability is above zero; the outcome writes
//! two more. It runs out of line (the state word's odd generation sends it
//! there, see `state.rs`), so the other modes' admissions are unchanged.

use rand::Rng;

use super::{Admitted, Machine};
use crate::circuit_breaker::report;
use crate::circuit_breaker::state::State;
use crate::circuit_breaker::time_window::{ACCEPTS, PENDING, REQUESTS};
use crate::error::CircuitOpen;
use crate::rng::with_thread_rng;
use crate::sync::atomic::Ordering;

impl Machine {
    /// Admission of a throttling breaker whose word `word` is closed or
    /// disabled: the call with the bucket its request was counted in, or a
    /// refusal. `None` for any other word (open, half-open), which the
    /// ordinary gate decides, and for a breaker that does not throttle.
    pub(in crate::circuit_breaker) fn throttle(
        &self,
        word: u64,
    ) -> Option<Result<(Admitted, u64), CircuitOpen>> {
        if !(self.config.throttles() && State::is_throttled(word)) {
            return None;
        }
        let (generation, disabled) = match State::decode(word) {
            State::Closed { generation, .. } => (generation, false),
            State::Disabled { generation, .. } => (generation, true),
            _ => return None,
        };
        let bucket = self.bucket_now();
        let p = self.throttle_probability_at(bucket);
        self.time.add(bucket, REQUESTS);
        // A disabled breaker counts, and never refuses.
        if !disabled && p > 0.0 && with_thread_rng(|rng| rng.random::<f64>()) < p {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            report::throttled(self.config.name);
            return Some(Err(CircuitOpen::new()));
        }
        self.time.add(bucket, PENDING);
        Some(Ok((
            Admitted {
                generation,
                probe: false,
            },
            bucket,
        )))
    }

    /// The probability a request is refused now; for
    /// `CircuitBreaker::throttle_probability`.
    pub(in crate::circuit_breaker) fn throttle_probability_now(&self) -> f64 {
        self.throttle_probability_at(self.bucket_now())
    }

    /// The probability in bucket `bucket`: the window's requests, less
    /// those still pending in this bucket (not judged yet), against its
    /// accepts.
    fn throttle_probability_at(&self, bucket: u64) -> f64 {
        let totals = self.time.totals(bucket);
        let young = self.time.count(bucket, PENDING);
        self.config
            .throttle_probability(totals.calls.saturating_sub(young), totals.failures)
    }

    /// An admitted request of `generation`, counted in bucket `started - 1`
    /// (0: not counted, see `BreakerPermit`), ended; a success is an
    /// accept. Outcomes of an earlier period (before a reset) are ignored.
    pub(super) fn throttle_outcome(&self, generation: u32, failed: bool, started: u64) {
        if self.current().tally(generation).is_none() {
            return;
        }
        let Some(bucket) = started.checked_sub(1) else {
            if !failed {
                self.time.add(self.bucket_now(), ACCEPTS);
            }
            return;
        };
        self.time.adjust(bucket, PENDING, false);
        if !failed {
            self.time.adjust(bucket, ACCEPTS, true);
        }
    }

    /// An admitted request of `generation`, counted in `bucket`, ended
    /// without an outcome: it is taken back.
    pub(in crate::circuit_breaker) fn throttle_cancelled(&self, generation: u32, bucket: u64) {
        if self.current().tally(generation).is_some() {
            self.time.adjust(bucket, PENDING, false);
            self.time.adjust(bucket, REQUESTS, false);
        }
    }

    /// An outcome observed without a permit: a request, and an accept if
    /// it succeeded, now; ignored while open or half-open.
    pub(super) fn throttle_record(&self, failed: bool) {
        if !matches!(
            self.current(),
            State::Closed { .. } | State::Disabled { .. }
        ) {
            return;
        }
        let bucket = self.bucket_now();
        self.time.add(bucket, REQUESTS);
        if !failed {
            self.time.add(bucket, ACCEPTS);
        }
    }
}
