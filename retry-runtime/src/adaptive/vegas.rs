//! TCP Vegas's estimate of the queue (`AdaptiveLimit::vegas`), as
//! Netflix's `VegasLimit`:
//!
//! ```text
//! queue = ceil(limit · (1 - min_rtt / sample))
//! log   = max(1, log10(limit)); alpha = 3 · log; beta = 6 · log
//! queue <= log   -> limit + beta        (no queue: grow fast)
//! queue <  alpha -> limit + log
//! queue >  beta  -> limit - log
//! otherwise      -> limit               (a queue between alpha and beta)
//! a drop         -> limit - log
//! ```
//!
//! Netflix's keeps the smallest latency seen as `min_rtt` and resets it
//! every 30 · limit samples (with jitter); here `min_rtt` is measured at a
//! low limit as for the gradient (`control.rs`), since under a standing
//! queue the smallest latency seen includes the queue.

use super::config::Config;
use super::judged::Judged;

pub(super) fn next(_config: &Config, judged: &Judged) -> f64 {
    let limit = judged.limit;
    let log = limit.log10().max(1.0);
    let Some(latency) = judged.latency.filter(|_| judged.dropped == 0) else {
        return limit - log;
    };
    if judged.app_limited {
        return limit;
    }
    let queue = (limit * (1.0 - judged.min_rtt / latency.max(1.0))).ceil();
    if queue <= log {
        limit + 6.0 * log
    } else if queue < 3.0 * log {
        limit + log
    } else if queue > 6.0 * log {
        limit - log
    } else {
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::config::Algorithm;

    fn judged(limit: f64, latency: f64) -> Judged {
        Judged {
            limit,
            latency: Some(latency),
            dropped: 0,
            app_limited: false,
            min_rtt: 10.0,
        }
    }

    #[test]
    fn the_queue_estimate_moves_the_limit_by_logs() {
        let config = Config::new(Algorithm::Vegas);
        // No queue: + 6 log (log10(100) = 2).
        assert_eq!(next(&config, &judged(100.0, 10.0)), 112.0);
        // A queue of about 4 at 100: between log and alpha (6): + log.
        assert_eq!(next(&config, &judged(100.0, 10.0 / 0.96)), 102.0);
        // A queue of about 9, between alpha and beta (12): held.
        assert_eq!(next(&config, &judged(100.0, 10.0 / 0.91)), 100.0);
        // A queue of 20, above beta: - log.
        assert_eq!(next(&config, &judged(100.0, 12.5)), 98.0);
        // Below 10 the log is 1.
        assert_eq!(next(&config, &judged(5.0, 10.0)), 11.0);
    }

    #[test]
    fn drops_and_app_limited_intervals() {
        let config = Config::new(Algorithm::Vegas);
        let mut dropped = judged(100.0, 10.0);
        dropped.dropped = 1;
        assert_eq!(next(&config, &dropped), 98.0);
        let mut unbounded = judged(100.0, 10.0);
        unbounded.latency = None;
        assert_eq!(next(&config, &unbounded), 98.0);
        let mut quiet = judged(100.0, 10.0);
        quiet.app_limited = true;
        assert_eq!(next(&config, &quiet), 100.0);
    }
}
