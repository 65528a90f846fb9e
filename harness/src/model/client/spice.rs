//! The sans-IO SPICE client built from the blocks: channels linked main
//! first, pings answered, a liveness deadline and keep-alive per channel,
//! and the reconnect policy. User activity reaches it as `handle_user_*`.

use super::liveness::{IdleKeepalive, LivenessDeadline};
use super::reconnect::{Reconnect, ReconnectDecision, ReconnectPolicy};
use crate::model::env::spice_server::SpiceMsg;
use crate::timeline::Micros;
use crate::timeline::synthetic::ChannelKind;
use std::collections::VecDeque;

/// How a channel's connection ended, as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedHow {
    /// Orderly EOF from the peer.
    Fin,
    Reset,
    /// TCP keepalive probes went unanswered.
    KeepaliveTimeout,
    /// Unacknowledged data hit the retransmission limit.
    RetransmissionTimeout,
}

impl ClosedHow {
    pub fn code(self) -> &'static str {
        match self {
            ClosedHow::Fin => "tcp.fin_from_server",
            ClosedHow::Reset => "tcp.reset",
            ClosedHow::KeepaliveTimeout => "tcp.keepalive_timeout",
            ClosedHow::RetransmissionTimeout => "tcp.retransmission_timeout",
        }
    }
}

/// Why a dial or link failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkFailure {
    Refused,
    ConnectTimeout,
    /// The server refused the login: PERMISSION_DENIED, whether the
    /// ticket was spent, expired or wrong (protocol-facts §1.7).
    TicketRejected(&'static str),
    /// A secondary channel for a session the server does not have
    /// (SPICE_LINK_ERR_BAD_CONNECTION_ID).
    NoSuchSession,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveKind {
    /// A PONG nobody asked for: legal, ignored by the server, but bytes.
    SpuriousPong,
    /// KEY_MODIFIERS on inputs: legal application data.
    KeyModifiers,
    /// A client→server PING, which SPICE does not have (§1.12).
    ClientPing,
}

impl KeepaliveKind {
    pub fn msg(self) -> SpiceMsg {
        match self {
            KeepaliveKind::SpuriousPong => SpiceMsg::Pong { id: 0 },
            // KEY_MODIFIERS: a u16 (§1.13).
            KeepaliveKind::KeyModifiers => SpiceMsg::Data { bytes: 2 },
            // No such message type exists; whatever number is used, the
            // server's parser does not know it.
            KeepaliveKind::ClientPing => SpiceMsg::Unknown { code: 0 },
        }
    }
}

/// What a SPICE client profile is made of.
#[derive(Clone, Debug)]
pub struct SpiceClientConfig {
    pub channels: Vec<ChannelKind>,
    /// The client's own "no data on main" timeout.
    pub main_liveness_timeout: Option<Micros>,
    pub idle_keepalive: Vec<(ChannelKind, KeepaliveKind, Micros)>,
    pub reconnect: Option<ReconnectPolicy>,
    /// Refuse to retry when the ticket is single-use or past its validity.
    pub honours_ticket_limits: bool,
    pub ticket_single_use: bool,
    pub ticket_valid_until: Option<Micros>,
}

/// A client-side event worth a line in the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientNote {
    SessionUp {
        generation: u64,
    },
    /// The session is lost; `cause` is a stable code.
    SessionLost {
        channel: ChannelKind,
        cause: String,
    },
    LivenessTimeout {
        channel: ChannelKind,
    },
    KeepaliveSent {
        channel: ChannelKind,
    },
    AttemptScheduled {
        attempt: u64,
        at: Micros,
        delay: Micros,
    },
    AttemptStarted {
        attempt: u64,
        credential: String,
    },
    AttemptFailed {
        attempt: u64,
        why: String,
    },
    GaveUp {
        reason: String,
    },
    UserClosed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    Dial { channel: usize, credential: String },
    Send { channel: usize, msg: SpiceMsg },
    Close { channel: usize },
    Note(ClientNote),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Up,
    WaitingToRetry,
    Closed,
    GaveUp,
}

#[derive(Clone, Debug)]
struct ClientChannel {
    kind: ChannelKind,
    open: bool,
    linked: bool,
    last_rx: Micros,
    last_tx: Micros,
    ack_window: u32,
    ack_countdown: u32,
    /// The profile's timers for this channel, resolved once: the liveness
    /// timeout (main only) and the idle keepalive with the shortest period,
    /// whose deadline is the earliest of the channel's keepalives.
    liveness_timeout: Option<Micros>,
    earliest_keepalive: Option<IdleKeepalive>,
}

/// A SPICE client: answers PINGs, acks SET_ACK windows, optionally runs
/// a liveness deadline, idle keepalives and a reconnect machine.
pub struct SpiceClient {
    cfg: SpiceClientConfig,
    phase: Phase,
    channels: Vec<ClientChannel>,
    reconnect: Option<Reconnect>,
    retry_at: Option<Micros>,
    attempt: u64,
    generation: u64,
    out: VecDeque<ClientOutput>,
}

impl SpiceClient {
    pub fn new(cfg: SpiceClientConfig) -> SpiceClient {
        let channels = cfg
            .channels
            .iter()
            .map(|&kind| ClientChannel {
                kind,
                open: false,
                linked: false,
                last_rx: Micros::ZERO,
                last_tx: Micros::ZERO,
                ack_window: 0,
                ack_countdown: 0,
                liveness_timeout: cfg
                    .main_liveness_timeout
                    .filter(|_| kind == ChannelKind::Main),
                earliest_keepalive: cfg
                    .idle_keepalive
                    .iter()
                    .filter(|(k, _, _)| *k == kind)
                    .min_by_key(|(_, _, idle)| *idle)
                    .map(|&(_, k, idle)| IdleKeepalive { idle, msg: k.msg() }),
            })
            .collect();
        let reconnect = cfg.reconnect.clone().map(Reconnect::new);
        SpiceClient {
            cfg,
            phase: Phase::Connecting,
            channels,
            reconnect,
            retry_at: None,
            attempt: 0,
            generation: 0,
            out: VecDeque::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn channel_kind(&self, channel: usize) -> ChannelKind {
        self.channels[channel].kind
    }
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    fn credential(&self) -> String {
        let mut c = String::from("vv-ticket");
        if self.cfg.ticket_single_use {
            c.push_str(" (single-use)");
        }
        if self.generation > 0 {
            c.push_str(", reused from generation 1");
        }
        c
    }

    /// Opens main. Called once at the start of the run.
    pub fn start(&mut self, now: Micros) {
        self.dial_main(now);
    }

    fn dial_main(&mut self, _now: Micros) {
        self.phase = Phase::Connecting;
        let credential = self.credential();
        if self.attempt > 0 {
            self.out
                .push_back(ClientOutput::Note(ClientNote::AttemptStarted {
                    attempt: self.attempt,
                    credential: credential.clone(),
                }));
        }
        let main = self
            .channels
            .iter()
            .position(|c| c.kind == ChannelKind::Main)
            .unwrap_or(0);
        self.channels[main].open = true;
        self.out.push_back(ClientOutput::Dial {
            channel: main,
            credential,
        });
    }

    pub fn handle_linked(&mut self, now: Micros, channel: usize) {
        if self.phase != Phase::Connecting {
            return;
        }
        let c = &mut self.channels[channel];
        c.linked = true;
        c.last_rx = now;
        c.last_tx = now;
        c.ack_window = 0;
        if c.kind == ChannelKind::Main {
            let credential = self.credential();
            for i in 0..self.channels.len() {
                if self.channels[i].kind != ChannelKind::Main {
                    self.channels[i].open = true;
                    self.out.push_back(ClientOutput::Dial {
                        channel: i,
                        credential: credential.clone(),
                    });
                }
            }
        }
        if self.channels.iter().all(|c| c.linked) {
            self.phase = Phase::Up;
            self.generation += 1;
            self.out
                .push_back(ClientOutput::Note(ClientNote::SessionUp {
                    generation: self.generation,
                }));
        }
    }

    pub fn handle_link_failed(&mut self, now: Micros, channel: usize, why: LinkFailure) {
        if self.phase != Phase::Connecting {
            return;
        }
        self.channels[channel].open = false;
        let why_text = match &why {
            LinkFailure::Refused => "connection refused".to_string(),
            LinkFailure::ConnectTimeout => "connect timed out".to_string(),
            LinkFailure::TicketRejected(r) => format!("link error: {r}"),
            LinkFailure::NoSuchSession => "link error: BAD_CONNECTION_ID: no such session".into(),
        };
        let cause = match why {
            LinkFailure::Refused => "tcp.refused",
            LinkFailure::ConnectTimeout => "tcp.no_answer",
            LinkFailure::TicketRejected(_) => "auth.refused",
            LinkFailure::NoSuchSession => "spice.no_such_session",
        };
        self.lose_session(now, channel, cause.to_string(), Some(why_text));
    }

    pub fn handle_message(&mut self, now: Micros, channel: usize, msg: SpiceMsg) {
        let c = &mut self.channels[channel];
        if !c.open {
            return;
        }
        c.last_rx = now;
        if c.ack_window > 0 {
            c.ack_countdown = c.ack_countdown.saturating_sub(1);
            if c.ack_countdown == 0 {
                c.ack_countdown = c.ack_window;
                self.send(now, channel, SpiceMsg::Ack);
            }
        }
        match msg {
            SpiceMsg::Ping { id } => self.send(now, channel, SpiceMsg::Pong { id }),
            SpiceMsg::SetAck { generation, window } => {
                let c = &mut self.channels[channel];
                c.ack_window = window;
                c.ack_countdown = window;
                self.send(now, channel, SpiceMsg::AckSync { generation });
            }
            _ => {}
        }
    }

    fn send(&mut self, now: Micros, channel: usize, msg: SpiceMsg) {
        self.channels[channel].last_tx = now;
        self.out.push_back(ClientOutput::Send { channel, msg });
    }

    pub fn handle_closed(&mut self, now: Micros, channel: usize, how: ClosedHow) {
        if !self.channels[channel].open {
            return;
        }
        self.channels[channel].open = false;
        if matches!(self.phase, Phase::Up | Phase::Connecting) {
            self.lose_session(now, channel, how.code().to_string(), None);
        }
    }

    /// A keystroke or pointer move: goes out on inputs when up.
    pub fn handle_user_input(&mut self, now: Micros) {
        if self.phase != Phase::Up {
            return;
        }
        if let Some(i) = self
            .channels
            .iter()
            .position(|c| c.kind == ChannelKind::Inputs && c.open)
        {
            // KEY_DOWN: a u32 scancode (§1.13).
            self.send(now, i, SpiceMsg::Data { bytes: 4 });
        }
    }

    pub fn handle_user_close(&mut self, _now: Micros) {
        if matches!(self.phase, Phase::Closed | Phase::GaveUp) {
            return;
        }
        self.close_all();
        self.phase = Phase::Closed;
        self.retry_at = None;
        self.out
            .push_back(ClientOutput::Note(ClientNote::UserClosed));
    }

    fn close_all(&mut self) {
        for i in 0..self.channels.len() {
            let c = &mut self.channels[i];
            if c.open {
                c.open = false;
                self.out.push_back(ClientOutput::Close { channel: i });
            }
            self.channels[i].linked = false;
        }
    }

    fn forbid_retry(&self, now: Micros) -> Option<String> {
        if !self.cfg.honours_ticket_limits {
            return None;
        }
        if self.cfg.ticket_single_use {
            return Some("single-use ticket (delete-this-file=1): retry is doomed".into());
        }
        if self.cfg.ticket_valid_until.is_some_and(|v| now >= v) {
            return Some("ticket-valid-until has passed".into());
        }
        None
    }

    fn lose_session(&mut self, now: Micros, channel: usize, cause: String, why: Option<String>) {
        let was_up = self.phase == Phase::Up;
        if !was_up && self.attempt > 0 {
            self.out
                .push_back(ClientOutput::Note(ClientNote::AttemptFailed {
                    attempt: self.attempt,
                    why: why.unwrap_or_else(|| cause.clone()),
                }));
        }
        self.close_all();
        if was_up || self.attempt == 0 {
            self.out
                .push_back(ClientOutput::Note(ClientNote::SessionLost {
                    channel: self.channels[channel].kind,
                    cause,
                }));
        }
        let forbid = self.forbid_retry(now);
        let decision = match &mut self.reconnect {
            None => ReconnectDecision::GiveUp {
                reason: "no automatic reconnect in this profile".into(),
            },
            Some(r) if !was_up && self.attempt > 0 => r.on_attempt_failed(now, forbid),
            Some(r) => r.on_failure(now, forbid),
        };
        match decision {
            ReconnectDecision::Retry { attempt, at, delay } => {
                self.phase = Phase::WaitingToRetry;
                self.retry_at = Some(at);
                self.attempt = attempt;
                self.out
                    .push_back(ClientOutput::Note(ClientNote::AttemptScheduled {
                        attempt,
                        at,
                        delay,
                    }));
            }
            ReconnectDecision::GiveUp { reason } => {
                self.phase = Phase::GaveUp;
                self.retry_at = None;
                self.out
                    .push_back(ClientOutput::Note(ClientNote::GaveUp { reason }));
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Micros> {
        match self.phase {
            Phase::WaitingToRetry => self.retry_at,
            Phase::Up => {
                let mut next: Option<Micros> = None;
                let mut consider = |t: Micros| next = Some(next.map_or(t, |n| n.min(t)));
                for c in self.channels.iter().filter(|c| c.open) {
                    if let Some(timeout) = c.liveness_timeout {
                        consider(
                            LivenessDeadline {
                                timeout,
                                last_rx: c.last_rx,
                            }
                            .deadline(),
                        );
                    }
                    if let Some(k) = c.earliest_keepalive {
                        consider(k.deadline(c.last_rx, c.last_tx));
                    }
                }
                next
            }
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Micros) {
        match self.phase {
            Phase::WaitingToRetry if self.retry_at.is_some_and(|t| t <= now) => {
                self.retry_at = None;
                self.dial_main(now);
            }
            Phase::Up => {
                for i in 0..self.channels.len() {
                    let c = &self.channels[i];
                    if !c.open {
                        continue;
                    }
                    if c.kind == ChannelKind::Main
                        && let Some(timeout) = self.cfg.main_liveness_timeout
                        && (LivenessDeadline {
                            timeout,
                            last_rx: c.last_rx,
                        })
                        .deadline()
                            <= now
                    {
                        self.out
                            .push_back(ClientOutput::Note(ClientNote::LivenessTimeout {
                                channel: ChannelKind::Main,
                            }));
                        self.lose_session(now, i, "client.liveness_timeout".into(), None);
                        return;
                    }
                    let kind = c.kind;
                    let due = self.cfg.idle_keepalive.iter().find(|(k, _, idle)| {
                        *k == kind
                            && Micros(c.last_rx.max(c.last_tx).0.saturating_add(idle.0)) <= now
                    });
                    if let Some(&(_, k, _)) = due {
                        self.send(now, i, k.msg());
                        self.out
                            .push_back(ClientOutput::Note(ClientNote::KeepaliveSent {
                                channel: kind,
                            }));
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Micros {
        Micros(n * 1_000_000)
    }

    fn client(reconnect: bool) -> SpiceClient {
        SpiceClient::new(SpiceClientConfig {
            channels: vec![ChannelKind::Main, ChannelKind::Inputs],
            main_liveness_timeout: Some(s(30)),
            idle_keepalive: vec![(ChannelKind::Inputs, KeepaliveKind::KeyModifiers, s(15))],
            reconnect: reconnect.then(|| ReconnectPolicy {
                backoff: vec![s(1), s(4), s(16)],
                budget: 3,
                cluster_window: s(300),
            }),
            honours_ticket_limits: true,
            ticket_single_use: false,
            ticket_valid_until: None,
        })
    }

    fn drain(c: &mut SpiceClient) -> Vec<ClientOutput> {
        std::iter::from_fn(|| c.poll_output()).collect()
    }

    #[test]
    fn client_links_main_first_answers_pings_and_times_out_a_silent_main() {
        let mut c = client(false);
        c.start(Micros::ZERO);
        assert_eq!(
            drain(&mut c),
            vec![ClientOutput::Dial {
                channel: 0,
                credential: "vv-ticket".into()
            }]
        );
        c.handle_linked(s(1), 0);
        assert_eq!(
            drain(&mut c),
            vec![ClientOutput::Dial {
                channel: 1,
                credential: "vv-ticket".into()
            }]
        );
        c.handle_linked(s(1), 1);
        assert_eq!(c.phase(), Phase::Up);
        drain(&mut c);
        c.handle_message(s(2), 0, SpiceMsg::Ping { id: 7 });
        assert_eq!(
            drain(&mut c),
            vec![ClientOutput::Send {
                channel: 0,
                msg: SpiceMsg::Pong { id: 7 }
            }]
        );
        // Inputs idle since 1 s: keepalive at 16 s; main silent since 2 s: timeout at 32 s.
        assert_eq!(c.poll_timeout(), Some(s(16)));
        c.handle_timeout(s(16));
        assert!(drain(&mut c).contains(&ClientOutput::Send {
            channel: 1,
            msg: SpiceMsg::Data { bytes: 2 }
        }));
        assert_eq!(c.poll_timeout(), Some(s(31)));
        c.handle_timeout(s(31));
        drain(&mut c);
        assert_eq!(c.poll_timeout(), Some(s(32)));
        c.handle_timeout(s(32));
        let out = drain(&mut c);
        assert!(
            out.contains(&ClientOutput::Note(ClientNote::SessionLost {
                channel: ChannelKind::Main,
                cause: "client.liveness_timeout".into()
            })),
            "{out:?}"
        );
        assert_eq!(c.phase(), Phase::GaveUp);
    }

    #[test]
    fn single_use_ticket_forbids_retry_when_honoured() {
        let mut cfg = client(true).cfg.clone();
        cfg.ticket_single_use = true;
        let mut c = SpiceClient::new(cfg.clone());
        c.start(Micros::ZERO);
        c.handle_linked(s(1), 0);
        c.handle_linked(s(1), 1);
        c.handle_closed(s(5), 1, ClosedHow::Reset);
        assert_eq!(c.phase(), Phase::GaveUp);
        cfg.honours_ticket_limits = false;
        let mut c = SpiceClient::new(cfg);
        c.start(Micros::ZERO);
        c.handle_linked(s(1), 0);
        c.handle_linked(s(1), 1);
        c.handle_closed(s(5), 1, ClosedHow::Reset);
        assert_eq!(c.phase(), Phase::WaitingToRetry);
        assert_eq!(c.poll_timeout(), Some(s(6)));
    }
}
