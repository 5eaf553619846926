//! The gradient controller (`AdaptiveLimit::gradient`), in the manner of
//! Envoy's adaptive concurrency filter and of Netflix's Gradient2.
//!
//! ```text
//! gradient  = clamp((min_rtt · (1 + buffer)) / sample, 0.5, 2.0)
//! new limit = gradient · limit + sqrt(gradient · limit)
//! ```
//!
//! `sample` is the interval's quantile latency (p90 by default), and
//! `min_rtt` the no-load latency, measured at a low limit (see
//! `control.rs`). While calls queue at the dependency, `sample` grows with
//! the queue, and `gradient · limit` is about what the dependency serves
//! without a queue: the limit settles at that plus its square root, a
//! small standing queue that keeps it busy. With a dependency of W workers
//! that queues the rest, the fixed point is W · (1 + buffer) + sqrt(W ·
//! (1 + buffer)): 20 for W = 16, 10.8 for W = 8 with the default buffer of
//! 0.
//!
//! Two rules beyond Envoy's: an interval in which the quantile falls among
//! dropped calls (more than 1 - p of them dropped) has the smallest
//! gradient, 0.5; and an interval whose calls never filled half the limit
//! (Gradient2's "app-limited") may lower the limit but not raise it, so a
//! quiet hour does not grow it to `max` for the next burst to meet.

use super::config::Config;
use super::judged::Judged;

/// The gradient's bounds, Envoy's: one interval at most halves or doubles
/// the limit before its headroom.
const GRADIENT_MIN: f64 = 0.5;
const GRADIENT_MAX: f64 = 2.0;

pub(super) fn next(config: &Config, judged: &Judged) -> f64 {
    let gradient = match judged.latency {
        None => GRADIENT_MIN,
        Some(latency) => (judged.min_rtt * (1.0 + config.buffer) / latency.max(1.0))
            .clamp(GRADIENT_MIN, GRADIENT_MAX),
    };
    let scaled = judged.limit * gradient;
    let next = scaled + scaled.sqrt();
    if judged.app_limited {
        next.min(judged.limit)
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::config::Algorithm;

    fn judged(limit: f64, latency: Option<f64>, app_limited: bool) -> Judged {
        Judged {
            limit,
            latency,
            dropped: 0,
            app_limited,
            min_rtt: 10.0,
        }
    }

    #[test]
    fn a_queue_brings_the_limit_to_the_workers_plus_their_root() {
        let config = Config::new(Algorithm::Gradient);
        // 16 workers, 20 in flight: latency 12.5 against 10.
        assert_eq!(next(&config, &judged(20.0, Some(12.5), false)), 20.0);
        // No queue: grows by its root.
        assert_eq!(next(&config, &judged(9.0, Some(10.0), false)), 12.0);
        // A buffer tolerates latency above the minimum.
        let buffered = config.buffer(0.25);
        assert_eq!(next(&buffered, &judged(16.0, Some(12.5), false)), 20.0);
    }

    #[test]
    fn the_gradient_is_bounded_and_drops_halve() {
        let config = Config::new(Algorithm::Gradient);
        // Far slower: at most halved (plus the root of the half).
        assert_eq!(next(&config, &judged(32.0, Some(1000.0), false)), 20.0);
        // Far faster: at most doubled.
        assert_eq!(next(&config, &judged(8.0, Some(1.0), false)), 20.0);
        assert_eq!(next(&config, &judged(32.0, None, false)), 20.0);
        // A zero latency is taken as 1 ns, not a division by zero.
        assert_eq!(next(&config, &judged(8.0, Some(0.0), false)), 20.0);
    }

    #[test]
    fn an_app_limited_interval_never_raises_the_limit() {
        let config = Config::new(Algorithm::Gradient);
        assert_eq!(next(&config, &judged(9.0, Some(10.0), true)), 9.0);
        assert_eq!(next(&config, &judged(32.0, Some(1000.0), true)), 20.0);
    }
}
