//! What a policy's protections do to an attempt, decided once for every
//! door: the macro asks at expansion time (which admission to emit, whose
//! future is larger, which of the library's errors a call can end with), a
//! `Policy` asks at run time, and the runtime's admission refuses only in
//! the ways [`Protections::can_refuse`] says (its tests hold it to that).

/// Why an attempt was not made: the call ends with `E::from(..)` of the
/// library's error of that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The breaker is open: `E::from(CircuitOpen)`; caused by `circuit_breaker`.
    CircuitOpen,
    /// No permit or token within `max_wait`: `E::from(Rejected)`; caused by
    /// `max_wait`.
    Rejected,
    /// The deadline came, or would have, while waiting for a permit or a
    /// token: `E::from(Elapsed)`; caused by `deadline`.
    Elapsed,
}

impl Refusal {
    /// Every refusal.
    pub const ALL: [Refusal; 3] = [Refusal::CircuitOpen, Refusal::Rejected, Refusal::Elapsed];

    /// The key whose setting causes it, where a missing `From` impl is
    /// reported.
    pub const fn key(self) -> &'static str {
        match self {
            Refusal::CircuitOpen => "circuit_breaker",
            Refusal::Rejected => "max_wait",
            Refusal::Elapsed => "deadline",
        }
    }
}

/// Which of the keys that shape an attempt a policy has: a breaker, a rate
/// limit, a concurrency limit, a bound on waits, a deadline, a timeout.
///
/// ```
/// use retry_rules::{Protections, Refusal};
///
/// let limited = Protections::NONE.rate_limit().deadline();
/// assert!(limited.admits() && limited.waits() && limited.bounds_waits());
/// assert!(limited.can_refuse(Refusal::Elapsed));
/// assert!(!limited.can_refuse(Refusal::Rejected), "no `max_wait`: the deadline bounds the wait");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Protections(u8);

const CIRCUIT_BREAKER: u8 = 1;
const RATE_LIMIT: u8 = 1 << 1;
const CONCURRENCY: u8 = 1 << 2;
const MAX_WAIT: u8 = 1 << 3;
const DEADLINE: u8 = 1 << 4;
const TIMEOUT: u8 = 1 << 5;

impl Protections {
    /// None of them.
    pub const NONE: Self = Protections(0);

    /// With a `circuit_breaker`.
    #[must_use]
    pub const fn circuit_breaker(self) -> Self {
        Protections(self.0 | CIRCUIT_BREAKER)
    }

    /// With a `rate_limit`.
    #[must_use]
    pub const fn rate_limit(self) -> Self {
        Protections(self.0 | RATE_LIMIT)
    }

    /// With a `concurrency` limit.
    #[must_use]
    pub const fn concurrency(self) -> Self {
        Protections(self.0 | CONCURRENCY)
    }

    /// With `max_wait`.
    #[must_use]
    pub const fn max_wait(self) -> Self {
        Protections(self.0 | MAX_WAIT)
    }

    /// With a `deadline`.
    #[must_use]
    pub const fn deadline(self) -> Self {
        Protections(self.0 | DEADLINE)
    }

    /// With a `timeout`.
    #[must_use]
    pub const fn timeout(self) -> Self {
        Protections(self.0 | TIMEOUT)
    }

    const fn has(self, keys: u8) -> bool {
        self.0 & keys != 0
    }

    /// Each attempt is admitted first: by a breaker, a rate limit or a
    /// concurrency limit.
    pub const fn admits(self) -> bool {
        self.has(CIRCUIT_BREAKER | RATE_LIMIT | CONCURRENCY)
    }

    /// An admission can wait, for a token or a permit.
    pub const fn waits(self) -> bool {
        self.has(RATE_LIMIT | CONCURRENCY)
    }

    /// A wait is bounded, by `max_wait` or by the deadline, and so needs
    /// timers (a larger future).
    pub const fn bounds_waits(self) -> bool {
        self.waits() && self.has(MAX_WAIT | DEADLINE)
    }

    /// An attempt runs under a time limit: its `timeout`, or what is left
    /// of the `deadline`.
    pub const fn limits_time(self) -> bool {
        self.has(TIMEOUT | DEADLINE)
    }

    /// Whether admitting an attempt can end the call with `refusal`: an open
    /// breaker with `CircuitOpen`; a bounded wait with `Rejected` when
    /// `max_wait` bounds it and `Elapsed` when the deadline does.
    pub const fn can_refuse(self, refusal: Refusal) -> bool {
        match refusal {
            Refusal::CircuitOpen => self.has(CIRCUIT_BREAKER),
            Refusal::Rejected => self.waits() && self.has(MAX_WAIT),
            Refusal::Elapsed => self.waits() && self.has(DEADLINE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breaker_admits_without_waiting() {
        let breaker = Protections::NONE.circuit_breaker().deadline().max_wait();
        assert!(breaker.admits() && !breaker.waits() && !breaker.bounds_waits());
        assert!(breaker.can_refuse(Refusal::CircuitOpen));
        assert!(!breaker.can_refuse(Refusal::Rejected) && !breaker.can_refuse(Refusal::Elapsed));
    }

    #[test]
    fn waits_are_bounded_by_max_wait_or_the_deadline() {
        for limit in [
            Protections::NONE.rate_limit(),
            Protections::NONE.concurrency(),
        ] {
            assert!(limit.admits() && limit.waits() && !limit.bounds_waits());
            assert!(Refusal::ALL.iter().all(|r| !limit.can_refuse(*r)));
            let max_wait = limit.max_wait();
            assert!(max_wait.bounds_waits() && max_wait.can_refuse(Refusal::Rejected));
            assert!(!max_wait.can_refuse(Refusal::Elapsed));
            let both = max_wait.deadline();
            assert!(both.can_refuse(Refusal::Rejected) && both.can_refuse(Refusal::Elapsed));
            assert!(!both.can_refuse(Refusal::CircuitOpen));
        }
    }

    #[test]
    fn time_limits_come_from_timeout_or_deadline() {
        assert!(!Protections::NONE.limits_time() && !Protections::NONE.admits());
        assert!(Protections::NONE.timeout().limits_time());
        assert!(Protections::NONE.deadline().limits_time());
        assert!(!Protections::NONE.timeout().bounds_waits());
        assert!(!Protections::NONE.rate_limit().timeout().bounds_waits());
    }

    /// The builders set flags and never toggle them: "with a breaker" twice
    /// is still with a breaker, whichever door builds the set and however.
    #[test]
    fn a_key_given_twice_is_kept() {
        type With = fn(Protections) -> Protections;
        type Has = fn(Protections) -> bool;
        let keys: [(With, Has); 6] = [
            (Protections::circuit_breaker, |p| {
                p.can_refuse(Refusal::CircuitOpen)
            }),
            (Protections::rate_limit, |p| p.waits()),
            (Protections::concurrency, |p| p.waits()),
            (Protections::max_wait, |p| {
                p.rate_limit().can_refuse(Refusal::Rejected)
            }),
            (Protections::deadline, |p| {
                p.rate_limit().can_refuse(Refusal::Elapsed)
            }),
            (Protections::timeout, |p| p.limits_time()),
        ];
        for (with, has) in keys {
            let twice = with(with(Protections::NONE));
            assert!(has(twice), "{twice:?}");
            assert_eq!(twice, with(Protections::NONE));
        }
    }

    #[test]
    fn each_refusal_names_the_key_that_causes_it() {
        let keys: Vec<_> = Refusal::ALL.iter().map(|r| r.key()).collect();
        assert_eq!(keys, ["circuit_breaker", "max_wait", "deadline"]);
    }
}
