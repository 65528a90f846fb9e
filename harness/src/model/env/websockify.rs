//! websockify as the model runs it.

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
}
