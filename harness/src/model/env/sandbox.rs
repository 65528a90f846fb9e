//! A sandbox host that sleeps when idle.

use crate::timeline::Micros;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxState {
    Awake { last_activity: Micros },
    Asleep,
    Waking { ready_at: Micros },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxOutput {
    /// Went to sleep: every connection to it is gone.
    Slept,
    Ready,
}

/// A sandbox host for terminal panes: sleeps after `idle_sleep` without
/// activity, wakes on demand taking `wake_time`.
pub struct SandboxHost {
    pub idle_sleep: Micros,
    pub wake_time: Micros,
    state: SandboxState,
    out: VecDeque<SandboxOutput>,
}

impl SandboxHost {
    pub fn new(now: Micros, idle_sleep: Micros, wake_time: Micros) -> SandboxHost {
        SandboxHost {
            idle_sleep,
            wake_time,
            state: SandboxState::Awake { last_activity: now },
            out: VecDeque::new(),
        }
    }
    pub fn state(&self) -> SandboxState {
        self.state
    }
    /// Traffic or a connect. Returns when it can serve: now, or later.
    pub fn handle_activity(&mut self, now: Micros) -> Micros {
        match self.state {
            SandboxState::Awake { .. } => {
                self.state = SandboxState::Awake { last_activity: now };
                now
            }
            SandboxState::Asleep => {
                let ready_at = Micros(now.0.saturating_add(self.wake_time.0));
                self.state = SandboxState::Waking { ready_at };
                ready_at
            }
            SandboxState::Waking { ready_at } => ready_at,
        }
    }
    /// Only an explicit sleep event from a script; idle sleep is a timer.
    pub fn force_sleep(&mut self) {
        if self.state != SandboxState::Asleep {
            self.state = SandboxState::Asleep;
            self.out.push_back(SandboxOutput::Slept);
        }
    }
    pub fn poll_timeout(&self) -> Option<Micros> {
        match self.state {
            SandboxState::Awake { last_activity } => {
                Some(Micros(last_activity.0.saturating_add(self.idle_sleep.0)))
            }
            SandboxState::Asleep => None,
            SandboxState::Waking { ready_at } => Some(ready_at),
        }
    }
    pub fn handle_timeout(&mut self, now: Micros) {
        match self.poll_timeout() {
            Some(t) if t <= now => {}
            _ => return,
        }
        match self.state {
            SandboxState::Awake { .. } => self.force_sleep(),
            SandboxState::Waking { .. } => {
                self.state = SandboxState::Awake { last_activity: now };
                self.out.push_back(SandboxOutput::Ready);
            }
            SandboxState::Asleep => {}
        }
    }
    pub fn poll_output(&mut self) -> Option<SandboxOutput> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Micros {
        Micros(n * 1_000_000)
    }

    #[test]
    fn sandbox_sleeps_after_idle_and_wakes_on_demand() {
        let mut h = SandboxHost::new(s(0), s(600), s(3));
        assert_eq!(h.handle_activity(s(100)), s(100));
        assert_eq!(h.poll_timeout(), Some(s(700)));
        h.handle_timeout(s(699));
        assert_eq!(h.poll_output(), None);
        h.handle_timeout(s(700));
        assert_eq!(h.poll_output(), Some(SandboxOutput::Slept));
        assert_eq!(h.state(), SandboxState::Asleep);
        assert_eq!(h.handle_activity(s(800)), s(803));
        assert_eq!(h.handle_activity(s(801)), s(803));
        h.handle_timeout(s(803));
        assert_eq!(h.poll_output(), Some(SandboxOutput::Ready));
        assert_eq!(
            h.state(),
            SandboxState::Awake {
                last_activity: s(803)
            }
        );
    }
}
