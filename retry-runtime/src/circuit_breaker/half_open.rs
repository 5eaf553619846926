//! How a half-open period is judged once its probes report: by the first
//! failure (the default), or by the failure rate of all of them
//! (`half_open_failure_rate`, resilience4j's half-open state). Pure
//! arithmetic on the counts in the state word; `machine.rs` applies the
//! verdict in its one compare-and-swap.

use super::config::Config;

/// Where a half-open period stands after a probe reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Probes are still out: stay half-open.
    Wait,
    Close,
    Reopen,
}

impl Config {
    /// The verdict once `succeeded` and `failed` of the period's probes have
    /// reported.
    pub(super) fn verdict(&self, succeeded: u32, failed: u32) -> Verdict {
        let probes = self.half_open_probes;
        match self.half_open_rate {
            // The default: the first failure reopens, all successes close.
            None if failed > 0 => Verdict::Reopen,
            None if succeeded >= probes => Verdict::Close,
            None => Verdict::Wait,
            // Judged by rate: once every probe has reported.
            Some(_) if succeeded.saturating_add(failed) < probes => Verdict::Wait,
            Some(rate) if failed > 0 && f64::from(failed) / f64::from(probes) >= rate => {
                Verdict::Reopen
            }
            Some(_) => Verdict::Close,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_reopens_on_the_first_failure_and_closes_on_all_successes() {
        let config = Config::DEFAULT.half_open_probes(3);
        assert_eq!(config.verdict(0, 1), Verdict::Reopen);
        assert_eq!(config.verdict(2, 0), Verdict::Wait);
        assert_eq!(config.verdict(3, 0), Verdict::Close);
    }

    #[test]
    fn a_rate_waits_for_every_probe_then_compares_at_the_boundary() {
        let config = Config::DEFAULT
            .half_open_probes(4)
            .half_open_failure_rate(0.5);
        assert_eq!(config.verdict(0, 3), Verdict::Wait, "one probe still out");
        assert_eq!(config.verdict(3, 1), Verdict::Close, "0.25 < 0.5");
        assert_eq!(config.verdict(2, 2), Verdict::Reopen, "0.5 >= 0.5");
        let any = config.half_open_failure_rate(0.0);
        assert_eq!(
            any.verdict(4, 0),
            Verdict::Close,
            "no failure never reopens"
        );
        assert_eq!(any.verdict(3, 1), Verdict::Reopen);
    }
}
