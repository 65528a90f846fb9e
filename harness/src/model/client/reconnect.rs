//! The reconnect state machine: backoff schedule, attempt budget,
//! cluster window, and the conditions that forbid a retry.

use crate::timeline::Micros;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delay before attempt n (the last entry repeats).
    pub backoff: Vec<Micros>,
    /// Attempts allowed per cluster of disconnects.
    pub budget: u64,
    /// Disconnects within this window of a cluster's first one share its
    /// budget (a flapping server cannot extend it).
    pub cluster_window: Micros,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReconnectDecision {
    Retry {
        attempt: u64,
        at: Micros,
        delay: Micros,
    },
    GiveUp {
        reason: String,
    },
}

/// The reconnect state machine.
#[derive(Clone, Debug)]
pub struct Reconnect {
    pub policy: ReconnectPolicy,
    cluster_start: Option<Micros>,
    used: u64,
}

impl Reconnect {
    pub fn new(policy: ReconnectPolicy) -> Reconnect {
        Reconnect {
            policy,
            cluster_start: None,
            used: 0,
        }
    }

    /// A disconnect of a working session. `forbid` names a condition that
    /// makes any retry pointless (single-use ticket, expired ticket).
    pub fn on_failure(&mut self, now: Micros, forbid: Option<String>) -> ReconnectDecision {
        self.decide(now, forbid, true)
    }

    /// A reconnect attempt failed: same sequence, same budget, whatever
    /// the time (the cluster window only groups disconnects).
    pub fn on_attempt_failed(&mut self, now: Micros, forbid: Option<String>) -> ReconnectDecision {
        self.decide(now, forbid, false)
    }

    fn decide(
        &mut self,
        now: Micros,
        forbid: Option<String>,
        disconnect: bool,
    ) -> ReconnectDecision {
        if let Some(reason) = forbid {
            return ReconnectDecision::GiveUp { reason };
        }
        let new_cluster = disconnect
            && self
                .cluster_start
                .is_none_or(|s| now.0 - s.0.min(now.0) > self.policy.cluster_window.0);
        if new_cluster {
            self.cluster_start = Some(now);
            self.used = 0;
        }
        if self.used >= self.policy.budget || self.policy.backoff.is_empty() {
            return ReconnectDecision::GiveUp {
                reason: format!(
                    "attempt budget exhausted ({} in this {} cluster)",
                    self.used,
                    crate::model::duration::format_duration(self.policy.cluster_window)
                ),
            };
        }
        let delay = self.policy.backoff[(self.used as usize).min(self.policy.backoff.len() - 1)];
        self.used += 1;
        ReconnectDecision::Retry {
            attempt: self.used,
            at: Micros(now.0.saturating_add(delay.0)),
            delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Micros {
        Micros(n * 1_000_000)
    }

    #[test]
    fn reconnect_follows_backoff_then_budget_then_new_cluster() {
        let mut r = Reconnect::new(ReconnectPolicy {
            backoff: vec![s(1), s(4), s(16)],
            budget: 3,
            cluster_window: s(300),
        });
        let at = |d: ReconnectDecision| match d {
            ReconnectDecision::Retry { attempt, at, .. } => (attempt, at),
            g => panic!("{g:?}"),
        };
        assert_eq!(at(r.on_failure(s(100), None)), (1, s(101)));
        assert_eq!(at(r.on_failure(s(101), None)), (2, s(105)));
        assert_eq!(at(r.on_failure(s(105), None)), (3, s(121)));
        assert!(matches!(
            r.on_failure(s(121), None),
            ReconnectDecision::GiveUp { .. }
        ));
        // A disconnect inside the window still has no budget...
        assert!(matches!(
            r.on_failure(s(350), None),
            ReconnectDecision::GiveUp { .. }
        ));
        // ...one after it starts a new cluster, but a failed attempt never does.
        let mut r2 = r.clone();
        assert_eq!(at(r2.on_failure(s(1000), None)), (1, s(1001)));
        assert_eq!(at(r2.on_attempt_failed(s(1400), None)), (2, s(1404)));
        assert_eq!(at(r2.on_attempt_failed(s(1800), None)), (3, s(1816)));
        assert!(matches!(
            r2.on_attempt_failed(s(2200), None),
            ReconnectDecision::GiveUp { .. }
        ));
        assert_eq!(at(r.on_failure(s(401), None)), (1, s(402)));
        assert_eq!(
            r.on_failure(s(402), Some("single-use ticket".into())),
            ReconnectDecision::GiveUp {
                reason: "single-use ticket".into()
            }
        );
    }
}
