//! Lease renewal with a generation guard.

use crate::timeline::Micros;

/// A lease renewal timer. Every (re)acquire starts a new generation; a
/// renewal scheduled by an older generation is dropped when it fires, so
/// a stale timer cannot renew (or re-create) a lease it no longer owns.
#[derive(Clone, Debug)]
pub struct LeaseRenewal {
    pub interval: Micros,
    generation: u64,
    /// (due, generation that scheduled it)
    timers: Vec<(Micros, u64)>,
}

impl LeaseRenewal {
    pub fn new(interval: Micros) -> LeaseRenewal {
        LeaseRenewal {
            interval,
            generation: 0,
            timers: Vec::new(),
        }
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// A fresh acquire: new generation, renewal due one interval later.
    /// `keep_old_timers` models a client that forgets to cancel them.
    pub fn acquired(&mut self, now: Micros, keep_old_timers: bool) {
        self.generation += 1;
        if !keep_old_timers {
            self.timers.clear();
        }
        self.timers.push((
            Micros(now.0.saturating_add(self.interval.0)),
            self.generation,
        ));
    }
    /// The holder let go of the lease: every pending renewal is dropped.
    pub fn stop(&mut self) {
        self.timers.clear();
    }
    pub fn is_running(&self) -> bool {
        !self.timers.is_empty()
    }
    pub fn poll_timeout(&self) -> Option<Micros> {
        self.timers.iter().map(|t| t.0).min()
    }
    /// Renewals due at `now` that belong to the current generation; the
    /// rest are dropped by the guard. Returns (renew, dropped).
    pub fn handle_timeout(&mut self, now: Micros, guard: bool) -> (u32, u32) {
        let (mut renew, mut dropped) = (0, 0);
        let current = self.generation;
        let mut next = Vec::new();
        self.timers.retain(|&(due, generation)| {
            if due > now {
                return true;
            }
            if generation == current || !guard {
                renew += 1;
                next.push((Micros(now.0.saturating_add(self.interval.0)), generation));
            } else {
                dropped += 1;
            }
            false
        });
        self.timers.extend(next);
        (renew, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Micros {
        Micros(n * 1_000_000)
    }

    #[test]
    fn lease_renewal_generation_guard_drops_stale_timers() {
        let mut l = LeaseRenewal::new(s(120));
        l.acquired(s(0), false);
        // A reconnect re-acquires at 50 s but the old timer is not cancelled.
        l.acquired(s(50), true);
        assert_eq!(l.poll_timeout(), Some(s(120)));
        assert_eq!(l.handle_timeout(s(120), true), (0, 1));
        assert_eq!(l.handle_timeout(s(170), true), (1, 0));
        // Without the guard the stale timer renews too.
        let mut l = LeaseRenewal::new(s(120));
        l.acquired(s(0), false);
        l.acquired(s(50), true);
        assert_eq!(l.handle_timeout(s(120), false), (1, 0));
        assert_eq!(l.generation(), 2);
        assert!(l.is_running());
        l.stop();
        assert!(!l.is_running());
        assert_eq!(l.poll_timeout(), None);
        assert_eq!(l.handle_timeout(s(1000), true), (0, 0));
    }
}
