//! Additive increase, multiplicative decrease (`AdaptiveLimit::aimd`), as
//! Netflix's `AIMDLimit`: an interval with a drop (a call reported
//! dropped, or a success slower than `drop_above`, 5 s by default as
//! Netflix's timeout) multiplies the limit by `backoff` (0.9); one without
//! grows it by one, unless its calls never filled half of it. It needs no
//! latency model, only a drop signal: against a dependency that queues
//! rather than refuses, it grows until the latency passes `drop_above`.

use super::config::Config;
use super::judged::Judged;

pub(super) fn next(config: &Config, judged: &Judged) -> f64 {
    if judged.dropped > 0 {
        judged.limit * config.backoff
    } else if judged.app_limited {
        judged.limit
    } else {
        judged.limit + 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::config::Algorithm;

    #[test]
    fn drops_multiply_and_full_intervals_add_one() {
        let config = Config::new(Algorithm::Aimd);
        let judged = |dropped, app_limited| Judged {
            limit: 20.0,
            latency: Some(5.0),
            dropped,
            app_limited,
            min_rtt: 0.0,
        };
        assert_eq!(next(&config, &judged(0, false)), 21.0);
        assert_eq!(next(&config, &judged(0, true)), 20.0);
        assert_eq!(next(&config, &judged(1, false)), 18.0);
        assert_eq!(next(&config, &judged(3, true)), 18.0);
        assert_eq!(next(&config.backoff(0.5), &judged(1, false)), 10.0);
    }
}
