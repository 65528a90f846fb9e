//! Environment actors the next profiles (noVNC display tab, runner attach,
//! wormhole panes) compose: a websockify-like WebSocket proxy, a lease and
//! token service, and a sandbox host that sleeps when idle. All sans-IO:
//! `handle_*(now, ..)`, `poll_*`, `poll_timeout`. The SPICE server, the
//! network and the load balancer live in `spice_server` and `sim`.

use crate::timeline::Micros;
use std::collections::VecDeque;

/// What the proxy sends to the browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsProxyOutput {
    Ping,
    Pong,
    Close { code: u16, reason: &'static str },
}

/// websockify (protocol-facts §3.8, §4.3): optional heartbeat PING every
/// `heartbeat` after connect regardless of traffic, answers client PINGs,
/// ignores PONGs, never closes a silent client by itself.
pub struct WsProxy {
    heartbeat: Option<Micros>,
    next_ping: Option<Micros>,
    open: bool,
    out: VecDeque<WsProxyOutput>,
}

impl WsProxy {
    /// `heartbeat` of zero is websockify's default: off.
    pub fn new(heartbeat: Micros) -> WsProxy {
        WsProxy {
            heartbeat: (heartbeat > Micros::ZERO).then_some(heartbeat),
            next_ping: None,
            open: false,
            out: VecDeque::new(),
        }
    }
    pub fn handle_connect(&mut self, now: Micros) {
        self.open = true;
        self.next_ping = self.heartbeat.map(|h| Micros(now.0.saturating_add(h.0)));
    }
    pub fn handle_client_ping(&mut self, _now: Micros) {
        if self.open {
            self.out.push_back(WsProxyOutput::Pong);
        }
    }
    /// Ignored: there is no pong deadline.
    pub fn handle_client_pong(&mut self, _now: Micros) {}
    /// The VNC server closed: flush, then close 1000 "Target closed".
    pub fn handle_target_closed(&mut self, _now: Micros) {
        if self.open {
            self.open = false;
            self.next_ping = None;
            self.out.push_back(WsProxyOutput::Close {
                code: 1000,
                reason: "Target closed",
            });
        }
    }
    pub fn poll_timeout(&self) -> Option<Micros> {
        self.next_ping
    }
    pub fn handle_timeout(&mut self, now: Micros) {
        if let (Some(at), Some(h)) = (self.next_ping, self.heartbeat)
            && at <= now
        {
            self.out.push_back(WsProxyOutput::Ping);
            self.next_ping = Some(Micros(now.0.saturating_add(h.0)));
        }
    }
    pub fn poll_output(&mut self) -> Option<WsProxyOutput> {
        self.out.pop_front()
    }
}

/// A session token: signed with an expiry the holder cannot extend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub id: u64,
    pub holder: String,
    pub expires_at: Micros,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseError {
    /// Someone else holds it (the user is blocked until `until`).
    HeldBy { holder: String, until: Micros },
    /// HTTP 401: the token's expiry has passed.
    StaleToken { expired_at: Micros },
}

/// A lease/token service: one lease with a TTL; acquiring again as the
/// same holder extends it (upsert); tokens carry an expiry bound to the
/// lease's at signing time (and `token_ttl`); a stale token gets 401.
pub struct LeaseService {
    pub lease_ttl: Micros,
    pub token_ttl: Micros,
    lease: Option<(String, Micros)>,
    next_token: u64,
    history: Vec<(Micros, String)>,
}

impl LeaseService {
    pub fn new(lease_ttl: Micros, token_ttl: Micros) -> LeaseService {
        LeaseService {
            lease_ttl,
            token_ttl,
            lease: None,
            next_token: 1,
            history: Vec::new(),
        }
    }

    fn expire(&mut self, now: Micros) {
        if let Some((holder, until)) = &self.lease
            && *until <= now
        {
            self.history
                .push((*until, format!("lease of {holder} expired")));
            self.lease = None;
        }
    }

    /// Acquire or renew (the same call: an upsert keyed by holder).
    pub fn acquire(&mut self, now: Micros, holder: &str) -> Result<Token, LeaseError> {
        self.expire(now);
        if let Some((h, until)) = &self.lease
            && h != holder
        {
            return Err(LeaseError::HeldBy {
                holder: h.clone(),
                until: *until,
            });
        }
        let renewed = self.lease.is_some();
        let until = Micros(now.0.saturating_add(self.lease_ttl.0));
        self.lease = Some((holder.to_string(), until));
        self.history.push((
            now,
            format!(
                "{} by {holder} until {}",
                if renewed { "renewed" } else { "acquired" },
                super::duration::format_duration(until)
            ),
        ));
        let id = self.next_token;
        self.next_token += 1;
        Ok(Token {
            id,
            holder: holder.to_string(),
            expires_at: Micros(now.0.saturating_add(self.token_ttl.0)).min(until),
        })
    }

    /// A request presenting `token`.
    pub fn check(&mut self, now: Micros, token: &Token) -> Result<(), LeaseError> {
        if now >= token.expires_at {
            self.history.push((
                now,
                format!("401 for {} (token {} stale)", token.holder, token.id),
            ));
            return Err(LeaseError::StaleToken {
                expired_at: token.expires_at,
            });
        }
        Ok(())
    }

    pub fn release(&mut self, now: Micros, holder: &str) {
        if self.lease.as_ref().is_some_and(|(h, _)| h == holder) {
            self.lease = None;
            self.history.push((now, format!("released by {holder}")));
        }
    }

    pub fn holder(&mut self, now: Micros) -> Option<&str> {
        self.expire(now);
        self.lease.as_ref().map(|(h, _)| h.as_str())
    }

    pub fn poll_timeout(&self) -> Option<Micros> {
        self.lease.as_ref().map(|(_, until)| *until)
    }
    pub fn handle_timeout(&mut self, now: Micros) {
        self.expire(now);
    }
    /// (time, what) for the verdict's lease history.
    pub fn history(&self) -> &[(Micros, String)] {
        &self.history
    }
}

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
    fn websockify_heartbeat_pings_on_schedule_and_never_closes_a_silent_client() {
        let mut p = WsProxy::new(s(30));
        p.handle_connect(s(5));
        let mut pings = Vec::new();
        while let Some(t) = p.poll_timeout() {
            if t > s(3600) {
                break;
            }
            p.handle_timeout(t);
            while let Some(o) = p.poll_output() {
                assert_eq!(o, WsProxyOutput::Ping, "only pings: no pong deadline");
                pings.push(t);
            }
        }
        assert_eq!(pings.first(), Some(&s(35)));
        assert_eq!(pings.len(), 119);
        assert!(pings.windows(2).all(|w| w[1].0 - w[0].0 == 30_000_000));
        p.handle_client_ping(s(10));
        assert_eq!(p.poll_output(), Some(WsProxyOutput::Pong));
        p.handle_client_pong(s(11));
        assert_eq!(p.poll_output(), None);
        p.handle_target_closed(s(12));
        assert_eq!(
            p.poll_output(),
            Some(WsProxyOutput::Close {
                code: 1000,
                reason: "Target closed"
            })
        );
        assert_eq!(p.poll_timeout(), None);
        // Default: no heartbeat at all.
        let mut off = WsProxy::new(Micros::ZERO);
        off.handle_connect(s(0));
        assert_eq!(off.poll_timeout(), None);
    }

    #[test]
    fn lease_upsert_extends_and_blocks_others_and_stale_tokens_get_401() {
        let mut l = LeaseService::new(s(300), s(3600));
        let t1 = l.acquire(s(0), "tab-a").unwrap();
        assert_eq!(t1.expires_at, s(300), "token bound to the lease expiry");
        assert_eq!(
            l.acquire(s(10), "tab-b"),
            Err(LeaseError::HeldBy {
                holder: "tab-a".into(),
                until: s(300)
            })
        );
        let t2 = l.acquire(s(120), "tab-a").unwrap();
        assert_eq!(t2.expires_at, s(420));
        // The old token still carries its own expiry: renewal does not extend it.
        assert_eq!(
            l.check(s(301), &t1),
            Err(LeaseError::StaleToken { expired_at: s(300) })
        );
        assert_eq!(l.check(s(301), &t2), Ok(()));
        // Nobody renews: the lease lapses and another holder may take it.
        assert_eq!(l.poll_timeout(), Some(s(420)));
        l.handle_timeout(s(420));
        assert_eq!(l.holder(s(420)), None);
        assert!(l.acquire(s(421), "tab-b").is_ok());
        let h: Vec<&str> = l.history().iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(
            h,
            [
                "acquired by tab-a until 5m",
                "renewed by tab-a until 7m",
                "401 for tab-a (token 1 stale)",
                "lease of tab-a expired",
                "acquired by tab-b until 721s"
            ]
        );
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
