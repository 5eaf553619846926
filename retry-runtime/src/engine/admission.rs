//! Admitting one attempt: the circuit breaker, then a rate-limit token, then
//! a permit of the concurrency limit (composition order), each waiting at most `max_wait`
//! and never past the call's deadline.

use std::future::Future;
use std::time::Duration;

use crate::circuit_breaker::BreakerPermit;
use crate::concurrency::{Concurrency, ConcurrencyPermit};
use crate::rate_limiter::RateLimiter;

use super::call::Call;
use super::guards::{Admission, Admitted, Guards, Refusal};

impl Call {
    /// Admits one attempt if nothing needs waiting for: the happy path
    /// takes the breaker's permit, a token and a bulkhead permit without a
    /// future, a clock read or a deadline computed.
    #[inline]
    pub fn try_admit<'g>(&self, guards: Guards<'g>) -> Admission<'g> {
        let breaker = match self.admit_breaker(guards) {
            Ok(breaker) => breaker,
            Err(refusal) => return Admission::Done(Err(refusal)),
        };
        let mut admitted = Admitted {
            breaker,
            permit: None,
            token: guards.limiter.is_none_or(RateLimiter::try_acquire),
            timed_out: false,
            breaker_failure: None,
        };
        if !admitted.token {
            return Admission::Wait(admitted);
        }
        if let Some(limit) = guards.concurrency {
            match limit.try_acquire() {
                Some(permit) => admitted.permit = Some(permit),
                None => return Admission::Wait(admitted),
            }
        }
        Admission::Done(Ok(admitted))
    }

    /// Completes an admission [`try_admit`](Self::try_admit) could not,
    /// when nothing bounds the waits (no `max_wait`, no `deadline`): waits
    /// for the token, then the permit. Takes references and holds no timer,
    /// so that its future (held in the caller's while it waits) stays small.
    pub fn admit<'g>(
        &self,
        guards: Guards<'g>,
        admitted: &mut Admitted<'g>,
    ) -> impl Future<Output = ()> {
        // An `async` block, not an `async fn`, whose arguments would be
        // stored twice in the future; it keeps only the guards that wait.
        let Guards {
            limiter,
            concurrency,
            ..
        } = guards;
        async move {
            if let (Some(limiter), false) = (limiter, admitted.token) {
                // `RateLimiter::acquire` would do, but its future is twice
                // the size of this loop's, and it would sit in every caller's.
                while let Err(wait) = limiter.take_one() {
                    tokio::time::sleep(wait).await;
                }
                admitted.token = true;
            }
            if let (Some(limit), None) = (concurrency, &admitted.permit) {
                admitted.permit = Some(match limit {
                    Concurrency::Fixed(bulkhead) => {
                        ConcurrencyPermit::Fixed(bulkhead.acquire().await)
                    }
                    // Boxed, here and below: this future sits in every
                    // caller's with a `concurrency` key, and room for the
                    // larger of the two waits would cost a bulkhead's
                    // callers 48 bytes each, for a wait that happens only
                    // when the limit is full (then one allocation).
                    Concurrency::Adaptive(limit) => {
                        ConcurrencyPermit::Adaptive(Box::pin(limit.acquire()).await)
                    }
                });
            }
        }
    }

    /// [`admit`](Self::admit) when `max_wait` or the `deadline` bounds the
    /// waits: each lasts at most `max_wait`, and never past the deadline.
    pub fn admit_within<'g>(
        &self,
        guards: Guards<'g>,
        admitted: &mut Admitted<'g>,
    ) -> impl Future<Output = Result<(), Refusal>> {
        let Guards {
            limiter,
            concurrency,
            ..
        } = guards;
        async move {
            if let (Some(limiter), false) = (limiter, admitted.token) {
                // As `RateLimiter::acquire_timeout`, in a smaller future: a
                // wait longer than what is left is refused at once, not
                // slept in vain.
                while let Err(wait) = limiter.take_one() {
                    if let Some((_, refusal)) = self.wait_bound().filter(|(left, _)| wait > *left) {
                        return Err(self.wait_refused(refusal, "rate_limit"));
                    }
                    tokio::time::sleep(wait).await;
                }
                admitted.token = true;
            }
            if let (Some(limit), None) = (concurrency, &admitted.permit) {
                let left = self.wait_bound().map_or(Duration::MAX, |(left, _)| left);
                let permit = match limit {
                    Concurrency::Fixed(bulkhead) => bulkhead
                        .acquire_timeout(left)
                        .await
                        .map(ConcurrencyPermit::Fixed),
                    Concurrency::Adaptive(limit) => Box::pin(limit.acquire_timeout(left))
                        .await
                        .map(ConcurrencyPermit::Adaptive),
                };
                match permit {
                    Ok(permit) => admitted.permit = Some(permit),
                    Err(_) => return Err(self.wait_refused(self.ran_out(), "bulkhead")),
                }
            }
            Ok(())
        }
    }

    /// Admits one attempt of a plain function: waits park the thread. Also
    /// what an `async fn` guarded by a breaker alone uses: nothing waits.
    pub fn admit_blocking<'g>(&self, guards: Guards<'g>) -> Result<Admitted<'g>, Refusal> {
        let mut admitted = match self.try_admit(guards) {
            Admission::Done(done) => return done,
            Admission::Wait(admitted) => admitted,
        };
        if let (Some(limiter), false) = (guards.limiter, admitted.token) {
            match self.wait_bound() {
                None => limiter.acquire_blocking(),
                Some((left, refusal)) => {
                    if limiter.acquire_blocking_timeout(left).is_err() {
                        return Err(self.wait_refused(refusal, "rate_limit"));
                    }
                }
            }
            admitted.token = true;
        }
        if let (Some(limit), None) = (guards.concurrency, &admitted.permit) {
            admitted.permit = Some(match limit.try_acquire() {
                Some(permit) => permit,
                None => match self.wait_bound() {
                    None => limit.acquire_blocking(),
                    Some((left, _)) => match limit.acquire_blocking_timeout(left) {
                        Ok(permit) => permit,
                        Err(_) => return Err(self.wait_refused(self.ran_out(), "bulkhead")),
                    },
                },
            });
        }
        Ok(admitted)
    }

    #[inline]
    fn admit_breaker<'g>(&self, guards: Guards<'g>) -> Result<Option<BreakerPermit<'g>>, Refusal> {
        match guards.breaker {
            None => Ok(None),
            Some(breaker) => match breaker.try_acquire() {
                Ok(permit) => Ok(Some(permit)),
                Err(_) => {
                    self.refused(Refusal::CircuitOpen, "circuit_open");
                    Err(Refusal::CircuitOpen)
                }
            },
        }
    }

    /// How long a permit or token wait may last, and what ends the call if
    /// it cannot: `max_wait` (then `Rejected`), or what is left before the
    /// deadline if that is no more (then `Elapsed`: the deadline is what the
    /// wait could not fit in); `None` waits as long as it takes. Read only
    /// when nothing was free at once. A token's wait is known in advance,
    /// and refused before it starts when it would not fit.
    fn wait_bound(&self) -> Option<(Duration, Refusal)> {
        let to_deadline = self.time_to_deadline();
        match (self.settings.max_wait, to_deadline) {
            (Some(wait), Some(left)) if wait < left => Some((wait, Refusal::Rejected)),
            (_, Some(left)) => Some((left, Refusal::Elapsed)),
            (Some(wait), None) => Some((wait, Refusal::Rejected)),
            (None, None) => None,
        }
    }

    /// What bounded a wait that ran its whole length (a permit's): past the
    /// deadline it was the deadline. Read from the clock after the wait
    /// rather than kept from [`wait_bound`](Self::wait_bound) across it,
    /// which would take room in every caller's future; the same answer,
    /// as the wait lasted until the bound.
    fn ran_out(&self) -> Refusal {
        match self.deadline_at() {
            Some(deadline) if tokio::time::Instant::now() >= deadline => Refusal::Elapsed,
            _ => Refusal::Rejected,
        }
    }

    /// A bounded wait ended, or would have ended, without a permit or token.
    fn wait_refused(&self, refusal: Refusal, waited_for: &'static str) -> Refusal {
        self.refused(refusal, waited_for);
        refusal
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use retry_rules::{Protections, Refusal};

    use super::*;
    use crate::adaptive::AdaptiveLimit;
    use crate::bulkhead::Bulkhead;
    use crate::circuit_breaker::CircuitBreaker;
    use crate::engine::Settings;

    /// The keys that shape admission, each protection refusing when asked
    /// (the breaker open, the limiter empty, the bulkhead full).
    #[derive(Clone, Copy)]
    struct Case {
        breaker: bool,
        limiter: bool,
        bulkhead: bool,
        max_wait: Option<Duration>,
        deadline: Option<Duration>,
    }

    impl Case {
        fn all() -> impl Iterator<Item = Case> {
            let ms = Duration::from_millis;
            let waits = [None, Some(ms(10)), Some(ms(10_000))];
            let deadlines = [None, Some(ms(50)), Some(ms(50_000))];
            (0..8u8).flat_map(move |on| {
                waits.into_iter().flat_map(move |max_wait| {
                    deadlines.into_iter().map(move |deadline| Case {
                        breaker: on & 1 != 0,
                        limiter: on & 2 != 0,
                        bulkhead: on & 4 != 0,
                        max_wait,
                        deadline,
                    })
                })
            })
        }

        fn protections(&self) -> Protections {
            let mut protections = Protections::NONE;
            if self.breaker {
                protections = protections.circuit_breaker();
            }
            if self.limiter {
                protections = protections.rate_limit();
            }
            if self.bulkhead {
                protections = protections.concurrency();
            }
            if self.max_wait.is_some() {
                protections = protections.max_wait();
            }
            if self.deadline.is_some() {
                protections = protections.deadline();
            }
            protections
        }

        fn settings(&self) -> &'static Settings {
            let mut settings = Settings::new("admission");
            if let Some(max_wait) = self.max_wait {
                settings = settings.max_wait(max_wait);
            }
            if let Some(deadline) = self.deadline {
                settings = settings.deadline(deadline);
            }
            Box::leak(Box::new(settings))
        }

        /// How long a blocking wait may park the thread: tests do not wait
        /// on the wall clock for long.
        fn bound(&self) -> Option<Duration> {
            match (self.max_wait, self.deadline) {
                (Some(w), Some(d)) => Some(w.min(d)),
                (w, d) => w.or(d),
            }
        }
    }

    /// When `max_wait` and the time left before the deadline are the same,
    /// the deadline is what the wait could not fit in: the call ends as
    /// `Elapsed`, as with a nearer deadline, not as `Rejected`.
    #[tokio::test(start_paused = true)]
    async fn a_wait_bounded_alike_by_max_wait_and_the_deadline_is_the_deadlines() {
        let ms = Duration::from_millis;
        let limiter = RateLimiter::per_hour(1).burst(1);
        assert!(limiter.try_acquire());
        let guards = Guards::new().rate_limit(&limiter);
        for (max_wait, refusal) in [
            (ms(49), Refusal::Rejected),
            (ms(50), Refusal::Elapsed),
            (ms(51), Refusal::Elapsed),
        ] {
            let settings = Settings::new("admission")
                .max_wait(max_wait)
                .deadline(ms(50));
            let call = Call::start(Box::leak(Box::new(settings)), guards);
            let Admission::Wait(mut waiting) = call.try_admit(guards) else {
                panic!("the only token is spent");
            };
            let admitted = call.admit_within(guards, &mut waiting).await;
            assert_eq!(admitted, Err(refusal), "max_wait {max_wait:?}");
        }
    }

    /// The expansion and `Policy` pass a conversion for each refusal
    /// `Protections::can_refuse` allows, and no other: admission must
    /// refuse in no other way, whichever protection refuses and whichever
    /// bound ends the wait.
    #[tokio::test(start_paused = true)]
    async fn admission_refuses_only_as_protections_allow() {
        let mut seen = Vec::new();
        // Each case with a full bulkhead, then a full adaptive limit.
        for (case, adaptive) in Case::all().flat_map(|case| [(case, false), (case, true)]) {
            let breaker = CircuitBreaker::new();
            breaker.force_open();
            let limiter = RateLimiter::per_second(1).burst(1);
            assert!(limiter.try_acquire());
            let bulkhead = Bulkhead::new(1);
            let _held = bulkhead.try_acquire();
            let adaptive_limit = AdaptiveLimit::aimd().initial(1);
            let _held_too = adaptive_limit.try_acquire();
            let mut guards = Guards::new();
            if case.breaker {
                guards = guards.circuit_breaker(&breaker);
            }
            if case.limiter {
                guards = guards.rate_limit(&limiter);
            }
            if case.bulkhead && adaptive {
                guards = guards.concurrency(&adaptive_limit);
            } else if case.bulkhead {
                guards = guards.concurrency(&bulkhead);
            }
            let protections = case.protections();
            let call = Call::start(case.settings(), guards);
            let admitted = match call.try_admit(guards) {
                Admission::Done(done) => done.map(drop),
                // An unbounded wait for a held permit never ends.
                Admission::Wait(_) if !protections.bounds_waits() => continue,
                Admission::Wait(mut waiting) => call.admit_within(guards, &mut waiting).await,
            };
            let blocking = case
                .bound()
                .filter(|bound| *bound <= Duration::from_millis(50))
                .map(|_| call.admit_blocking(guards).map(drop));
            for refusal in [admitted.err(), blocking.and_then(Result::err)]
                .into_iter()
                .flatten()
            {
                assert!(
                    protections.can_refuse(refusal),
                    "{refusal:?} with {protections:?}"
                );
                seen.push(refusal);
            }
        }
        for refusal in Refusal::ALL {
            assert!(seen.contains(&refusal), "no case refused with {refusal:?}");
        }
    }
}
