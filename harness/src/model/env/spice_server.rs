//! A sans-IO SPICE server: per-channel PING cadence, the main channel's
//! connectivity timer, SET_ACK flow control, teardown. Behaviour from
//! spice-server ee6c01a2 as summarised in protocol-facts.md §1.12-1.16.
//!
//! Inputs arrive through `handle_*(now, ..)`; outputs are drained with
//! [`SpiceServer::poll_output`]; [`SpiceServer::poll_timeout`] is the next
//! deadline. A `handle_timeout` with nothing due changes nothing.

use crate::timeline::Micros;
use crate::timeline::synthetic::{ChannelKind, ServerBehaviour};
use std::cell::Cell;
use std::collections::VecDeque;

/// A SPICE message as the model needs it: which one, and how large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpiceMsg {
    /// S→C PING; `net_test` marks the main-channel bandwidth test.
    Ping {
        id: u64,
    },
    /// C→S PONG echoing a ping's id (a stale id is legal and ignored).
    Pong {
        id: u64,
    },
    SetAck {
        generation: u32,
        window: u32,
    },
    AckSync {
        generation: u32,
    },
    Ack,
    /// Channel-specific application data (display updates, keystrokes,
    /// KEY_MODIFIERS, agent data...) with its body's size.
    Data {
        bytes: u32,
    },
    /// A client message type the server's parser does not know, such as a
    /// client→server PING, which SPICE does not have (§1.12).
    Unknown {
        code: u16,
    },
}

impl SpiceMsg {
    /// Bytes on the wire: the 6-byte mini header and the body (§1.14,
    /// §1.15; the net test's third PING carries 256,000 bytes).
    pub fn wire_bytes(&self) -> u64 {
        const HEADER: u64 = 6;
        HEADER
            + match *self {
                // u32 id + u64 timestamp.
                SpiceMsg::Ping { id } if id == NET_TEST_IDS[2] => 12 + NET_TEST_BYTES,
                SpiceMsg::Ping { .. } | SpiceMsg::Pong { .. } => 12,
                SpiceMsg::SetAck { .. } => 8,
                SpiceMsg::AckSync { .. } => 4,
                SpiceMsg::Ack | SpiceMsg::Unknown { .. } => 0,
                SpiceMsg::Data { bytes } => u64::from(bytes),
            }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// PING_TEST_TIMEOUT_MS: display, and main once monitored.
    pub ping_interval: Micros,
    /// PING_TEST_LONG_TIMEOUT_MS: every other channel, main before monitoring.
    pub long_ping_interval: Micros,
    /// PING_TEST_IDLE_NET_TIMEOUT_MS: first ping delay and busy-socket retry.
    pub ping_retry: Micros,
    /// CLIENT_CONNECTIVITY_TIMEOUT, main only.
    pub connectivity_timeout: Micros,
    /// CLIENT_ACK_WINDOW for display and cursor.
    pub ack_window: u32,
    pub behaviour: ServerBehaviour,
}

/// Why the server closed a channel's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerClose {
    /// Main's connectivity timer: a round was outstanding (or sending was
    /// blocked) at the previous tick and nothing arrived since.
    ConnectivityTimeout,
    /// Seed 002's belief: 30 s without a received byte, on any channel.
    BeliefIdleTimeout,
    /// The client sent a message type the channel does not know.
    UnknownMessage(u16),
    /// Main went away, taking every channel of the client with it.
    MainTornDown,
    /// The process was killed; its kernel closes the sockets.
    Killed,
    /// A new main link replaced this client (single client mode).
    Replaced,
    /// The server ended the session on purpose (an administrator's or the
    /// host's disconnect) and goes on listening.
    Closed,
}

impl ServerClose {
    pub fn code(self) -> &'static str {
        match self {
            ServerClose::ConnectivityTimeout => "server.connectivity_timeout",
            ServerClose::BeliefIdleTimeout => "server.idle_timeout_seed_belief",
            ServerClose::UnknownMessage(_) => "server.unknown_client_message",
            ServerClose::MainTornDown => "server.main_torn_down",
            ServerClose::Killed => "server.killed",
            ServerClose::Replaced => "server.replaced_by_new_client",
            ServerClose::Closed => "server.closed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerOutput {
    Send { channel: usize, msg: SpiceMsg },
    Close { channel: usize, why: ServerClose },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Monitor {
    Connected,
    WaitPong,
    Blocked,
}

#[derive(Clone, Debug)]
struct Channel {
    kind: ChannelKind,
    open: bool,
    interval: Micros,
    ping_at: Option<Micros>,
    /// Id and PONGs still missing of the outstanding round.
    round: Option<(u64, u8)>,
    last_round_done: Micros,
    /// Main: net-test PONGs still expected; monitoring starts at zero.
    net_test_left: u8,
    monitor_tick: Option<Micros>,
    monitor_state: Monitor,
    received_since_tick: bool,
    sent_since_tick: bool,
    last_received: Micros,
    /// SET_ACK flow control: (generation, messages in flight).
    ack: Option<(u32, u32)>,
    /// Application messages waiting for the ACK window to open or the
    /// socket to take writes: runs of (body bytes, how many).
    queued: VecDeque<(u32, u32)>,
    /// The socket holds unsent or unacknowledged bytes (SIOCOUTQ > 0).
    socket_busy: bool,
    /// A write would block (EAGAIN): the send buffer is full.
    socket_blocked: bool,
    wedged: bool,
    pinging: bool,
}

pub struct SpiceServer {
    cfg: ServerConfig,
    channels: Vec<Channel>,
    out: VecDeque<ServerOutput>,
    next_ping_id: u64,
    /// Each channel's next deadline, kept in step with `channels` by
    /// `refresh`: the loop asks `poll_timeout` every step, and an input
    /// usually moves one channel's timers only.
    due: Vec<Option<Micros>>,
    /// The earliest of `due`, until one of them changes.
    earliest: Cell<Option<Option<Micros>>>,
}

/// Ids of the three net-test PINGs on main (§1.14).
const NET_TEST_IDS: [u64; 3] = [1, 2, 3];
/// `NET_TEST_BYTES`: the third net-test PING's payload (§1.14).
const NET_TEST_BYTES: u64 = 250 * 1024;

impl SpiceServer {
    pub fn new(cfg: ServerConfig) -> SpiceServer {
        SpiceServer {
            cfg,
            channels: Vec::new(),
            out: VecDeque::new(),
            // Generic rounds use ids above the net test's.
            next_ping_id: 100,
            due: Vec::new(),
            earliest: Cell::new(Some(None)),
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// A channel finished its link handshake. Returns its index.
    pub fn open_channel(&mut self, now: Micros, kind: ChannelKind) -> usize {
        if kind == ChannelKind::Main {
            // Single client: a new main link replaces the old client.
            self.teardown_all(ServerClose::Replaced);
        }
        let interval = if kind == ChannelKind::Display {
            self.cfg.ping_interval
        } else {
            self.cfg.long_ping_interval
        };
        let uses_ack = matches!(kind, ChannelKind::Display | ChannelKind::Cursor);
        let idx = self.channels.len();
        self.channels.push(Channel {
            kind,
            open: true,
            interval,
            ping_at: Some(Micros(now.0.saturating_add(self.cfg.ping_retry.0))),
            round: None,
            last_round_done: now,
            net_test_left: 0,
            monitor_tick: None,
            monitor_state: Monitor::Connected,
            received_since_tick: false,
            sent_since_tick: false,
            last_received: now,
            ack: None,
            queued: VecDeque::new(),
            socket_busy: false,
            socket_blocked: false,
            wedged: false,
            pinging: true,
        });
        if uses_ack {
            self.send(
                idx,
                SpiceMsg::SetAck {
                    generation: 1,
                    window: self.cfg.ack_window,
                },
            );
            self.channels[idx].ack = Some((1, 1));
        }
        if kind == ChannelKind::Main {
            self.channels[idx].net_test_left = NET_TEST_IDS.len() as u8;
            for id in NET_TEST_IDS {
                self.send(idx, SpiceMsg::Ping { id });
            }
        }
        self.due.push(None);
        self.refresh(idx);
        idx
    }

    pub fn is_open(&self, channel: usize) -> bool {
        self.channels.get(channel).is_some_and(|c| c.open)
    }

    pub fn channel_kind(&self, channel: usize) -> Option<ChannelKind> {
        self.channels.get(channel).map(|c| c.kind)
    }

    /// Whether main's connectivity monitoring has started.
    pub fn monitoring(&self, channel: usize) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|c| c.monitor_tick.is_some())
    }

    fn send(&mut self, idx: usize, msg: SpiceMsg) {
        let c = &mut self.channels[idx];
        c.sent_since_tick = true;
        if let Some((_, in_flight)) = &mut c.ack {
            *in_flight = in_flight.saturating_add(1);
        }
        self.out.push_back(ServerOutput::Send { channel: idx, msg });
    }

    fn waiting_for_ack(&self, idx: usize) -> bool {
        let c = &self.channels[idx];
        c.ack
            .is_some_and(|(_, in_flight)| in_flight > 2 * self.cfg.ack_window)
    }

    /// Any message starting to send cancels the ping timer; when the pipe
    /// drains it is re-armed for 100 ms + what is left of the interval.
    fn rearm_after_send(&mut self, now: Micros, idx: usize) {
        let retry = self.cfg.ping_retry;
        let c = &mut self.channels[idx];
        if c.round.is_none() && c.pinging {
            let since = now.saturating_sub(c.last_round_done);
            let left = c.interval.saturating_sub(since);
            c.ping_at = Some(Micros(now.0.saturating_add(retry.0).saturating_add(left.0)));
        }
    }

    /// Whether the channel's next message must wait: for the client's ACK
    /// or for its socket to take writes again.
    fn must_wait(&self, idx: usize) -> bool {
        self.channels[idx].socket_blocked || self.waiting_for_ack(idx)
    }

    /// The application has `bytes` of data for the client on `channel`.
    pub fn handle_app_data(&mut self, now: Micros, channel: usize, bytes: u32) {
        let Some(c) = self.channels.get(channel) else {
            return;
        };
        if !c.open || c.wedged {
            return;
        }
        if self.must_wait(channel) {
            let q = &mut self.channels[channel].queued;
            match q.back_mut() {
                Some((b, n)) if *b == bytes => *n = n.saturating_add(1),
                _ => q.push_back((bytes, 1)),
            }
            return;
        }
        self.send_data(now, channel, bytes);
    }

    /// Writes one application message: it cancels the ping timer, which
    /// re-arms once the pipe drains.
    fn send_data(&mut self, now: Micros, idx: usize, bytes: u32) {
        self.channels[idx].ping_at = None;
        self.send(idx, SpiceMsg::Data { bytes });
        self.rearm_after_send(now, idx);
        self.refresh(idx);
    }

    /// Sends the oldest waiting message if nothing stops it; false when
    /// nothing went.
    pub fn send_queued(&mut self, now: Micros, channel: usize) -> bool {
        let Some(c) = self.channels.get(channel) else {
            return false;
        };
        if !c.open || c.wedged || self.must_wait(channel) {
            return false;
        }
        let q = &mut self.channels[channel].queued;
        let Some((bytes, n)) = q.front_mut() else {
            return false;
        };
        let bytes = *bytes;
        *n -= 1;
        if *n == 0 {
            q.pop_front();
        }
        self.send_data(now, channel, bytes);
        true
    }

    pub fn handle_message(&mut self, now: Micros, channel: usize, msg: SpiceMsg) {
        let Some(c) = self.channels.get_mut(channel) else {
            return;
        };
        if !c.open || c.wedged {
            return;
        }
        c.received_since_tick = true;
        c.last_received = now;
        match msg {
            SpiceMsg::Pong { id } => {
                if c.net_test_left > 0 && NET_TEST_IDS.contains(&id) {
                    c.net_test_left -= 1;
                    if c.net_test_left == 0 {
                        // Monitoring starts: main pings every 15 s and the
                        // 30 s connectivity timer runs.
                        c.interval = self.cfg.ping_interval;
                        c.monitor_tick = Some(Micros(
                            now.0.saturating_add(self.cfg.connectivity_timeout.0),
                        ));
                        c.monitor_state = Monitor::Connected;
                        c.received_since_tick = false;
                        c.sent_since_tick = false;
                        if c.round.is_none() && c.pinging {
                            c.ping_at = Some(Micros(now.0.saturating_add(c.interval.0)));
                        }
                    }
                } else if let Some((rid, left)) = c.round
                    && rid == id
                {
                    if left > 1 {
                        c.round = Some((rid, left - 1));
                    } else {
                        c.round = None;
                        c.last_round_done = now;
                        if c.pinging {
                            c.ping_at = Some(Micros(now.0.saturating_add(c.interval.0)));
                        }
                    }
                }
                // Any other PONG: logged and ignored; it still counted as received.
            }
            SpiceMsg::AckSync { generation } => {
                if let Some((g, _)) = &mut c.ack {
                    *g = generation;
                }
            }
            SpiceMsg::Ack => {
                let window = self.cfg.ack_window;
                if let Some((_, in_flight)) = &mut c.ack {
                    *in_flight = in_flight.saturating_sub(window);
                }
                // The caller sends what waited ([`Self::send_queued`]),
                // one at a time, so each write can find the socket full.
            }
            SpiceMsg::Data { .. } => {}
            SpiceMsg::Unknown { code } => self.close(channel, ServerClose::UnknownMessage(code)),
            // Server-to-client messages coming from a client are messages
            // the client parser does not know either.
            SpiceMsg::Ping { .. } | SpiceMsg::SetAck { .. } => {
                self.close(channel, ServerClose::UnknownMessage(4))
            }
        }
        self.refresh(channel);
    }

    /// The client closed the socket (FIN or RST reached the server).
    pub fn handle_peer_closed(&mut self, channel: usize) {
        let Some(c) = self.channels.get_mut(channel) else {
            return;
        };
        if !c.open {
            return;
        }
        c.open = false;
        if c.kind == ChannelKind::Main {
            self.teardown_all(ServerClose::MainTornDown);
        }
        self.refresh(channel);
    }

    /// What the server's socket for `channel` holds: unsent or unacked
    /// bytes (`busy`), or a full send buffer (`blocked`).
    pub fn set_socket_state(&mut self, channel: usize, busy: bool, blocked: bool) {
        // No deadline depends on it: the timers read it when they fire.
        if let Some(c) = self.channels.get_mut(channel) {
            c.socket_busy = busy;
            c.socket_blocked = blocked;
        }
    }

    /// Whether `channel`'s loop reads what arrives.
    pub fn is_reading(&self, channel: usize) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|c| c.open && !c.wedged)
    }

    /// Whether `channel`'s socket refuses writes (EAGAIN).
    pub fn is_blocked(&self, channel: usize) -> bool {
        self.channels.get(channel).is_some_and(|c| c.socket_blocked)
    }

    /// Whether `channel` has messages waiting to be sent.
    pub fn has_queued(&self, channel: usize) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|c| !c.queued.is_empty())
    }

    pub fn wedge(&mut self, channel: Option<ChannelKind>) {
        for c in &mut self.channels {
            if channel.is_none_or(|k| k == c.kind) {
                c.wedged = true;
            }
        }
        self.refresh_all();
    }

    pub fn stop_pinging(&mut self, channel: ChannelKind) {
        for c in &mut self.channels {
            if c.kind == channel {
                c.pinging = false;
                c.ping_at = None;
            }
        }
        self.refresh_all();
    }

    /// The process dies: every socket closes.
    pub fn kill(&mut self) {
        self.teardown_all(ServerClose::Killed);
        self.channels.clear();
        self.due.clear();
        self.earliest.set(Some(None));
    }

    /// Ends the client's session on purpose: every channel closes, and the
    /// server accepts new links as before.
    pub fn close_session(&mut self) {
        self.teardown_all(ServerClose::Closed);
    }

    fn close(&mut self, idx: usize, why: ServerClose) {
        let c = &mut self.channels[idx];
        if !c.open {
            return;
        }
        c.open = false;
        c.ping_at = None;
        c.monitor_tick = None;
        self.out
            .push_back(ServerOutput::Close { channel: idx, why });
        if self.channels[idx].kind == ChannelKind::Main {
            self.teardown_all(ServerClose::MainTornDown);
        }
        self.refresh(idx);
    }

    fn teardown_all(&mut self, why: ServerClose) {
        for i in 0..self.channels.len() {
            if self.channels[i].open {
                self.channels[i].open = false;
                self.out.push_back(ServerOutput::Close { channel: i, why });
            }
        }
        self.refresh_all();
    }

    /// Brings channel `idx`'s cached deadline in step after it changed.
    fn refresh(&mut self, idx: usize) {
        let d = self.channel_deadline(&self.channels[idx]);
        if self.due[idx] != d {
            self.due[idx] = d;
            self.earliest.set(None);
        }
    }

    fn refresh_all(&mut self) {
        for idx in 0..self.channels.len() {
            self.refresh(idx);
        }
    }

    /// Whether every cached deadline is what the channels say (tests and
    /// debug builds check it on every use).
    fn cache_in_step(&self) -> bool {
        self.due.len() == self.channels.len()
            && self
                .channels
                .iter()
                .zip(&self.due)
                .all(|(c, &d)| self.channel_deadline(c) == d)
    }

    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.out.pop_front()
    }

    fn channel_deadline(&self, c: &Channel) -> Option<Micros> {
        if !c.open || c.wedged {
            return None;
        }
        let belief = (self.cfg.behaviour == ServerBehaviour::Seed002Belief).then(|| {
            Micros(
                c.last_received
                    .0
                    .saturating_add(self.cfg.connectivity_timeout.0),
            )
        });
        [c.ping_at, c.monitor_tick, belief]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_timeout(&self) -> Option<Micros> {
        debug_assert!(self.cache_in_step());
        if let Some(d) = self.earliest.get() {
            return d;
        }
        let d = self.due.iter().flatten().min().copied();
        self.earliest.set(Some(d));
        d
    }

    pub fn handle_timeout(&mut self, now: Micros) {
        debug_assert!(self.cache_in_step());
        for idx in 0..self.channels.len() {
            // A channel handled earlier in this loop may have closed this
            // one (main's teardown); the cache already says so.
            if self.due[idx].is_none_or(|due| due > now) {
                continue;
            }
            if self.cfg.behaviour == ServerBehaviour::Seed002Belief {
                let c = &self.channels[idx];
                if Micros(
                    c.last_received
                        .0
                        .saturating_add(self.cfg.connectivity_timeout.0),
                ) <= now
                {
                    self.close(idx, ServerClose::BeliefIdleTimeout);
                    continue;
                }
            }
            if self.channels[idx].monitor_tick.is_some_and(|t| t <= now) {
                self.connectivity_tick(now, idx);
                if !self.channels[idx].open {
                    continue;
                }
            }
            if self.channels[idx].ping_at.is_some_and(|t| t <= now) {
                self.ping_timer(now, idx);
            }
            self.refresh(idx);
        }
    }

    fn ping_timer(&mut self, now: Micros, idx: usize) {
        let retry = self.cfg.ping_retry;
        let c = &mut self.channels[idx];
        c.ping_at = None;
        if c.socket_busy || self.waiting_for_ack(idx) {
            self.channels[idx].ping_at = Some(Micros(now.0.saturating_add(retry.0)));
            return;
        }
        let id = self.next_ping_id;
        self.next_ping_id += 1;
        self.channels[idx].round = Some((id, 2));
        self.send(idx, SpiceMsg::Ping { id });
        self.send(idx, SpiceMsg::Ping { id });
    }

    fn connectivity_tick(&mut self, now: Micros, idx: usize) {
        // BLOCKED is a write that would block or the ACK wait, not bytes
        // merely unacknowledged (SS red-channel-client.cpp:638-731).
        let blocked = self.must_wait(idx);
        let c = &mut self.channels[idx];
        let dead = match c.monitor_state {
            Monitor::Connected => false,
            Monitor::WaitPong => !c.received_since_tick,
            Monitor::Blocked => !c.received_since_tick && !c.sent_since_tick,
        };
        if dead {
            self.close(idx, ServerClose::ConnectivityTimeout);
            return;
        }
        c.received_since_tick = false;
        c.sent_since_tick = false;
        c.monitor_state = if blocked {
            Monitor::Blocked
        } else if c.round.is_some() {
            Monitor::WaitPong
        } else {
            Monitor::Connected
        };
        c.monitor_tick = Some(Micros(
            now.0.saturating_add(self.cfg.connectivity_timeout.0),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ServerConfig {
        ServerConfig {
            ping_interval: Micros(15_000_000),
            long_ping_interval: Micros(300_000_000),
            ping_retry: Micros(100_000),
            connectivity_timeout: Micros(30_000_000),
            ack_window: 20,
            behaviour: ServerBehaviour::Source,
        }
    }

    type Closes = Vec<(Micros, usize, ServerClose)>;
    type Pings = Vec<(Micros, usize)>;

    /// Drives the server alone; `answer` decides whether a PING on a
    /// channel gets its PONG (after `rtt`). Returns what the server closed,
    /// when, and the times PINGs were sent per channel.
    fn drive(
        server: &mut SpiceServer,
        horizon: Micros,
        answer: impl Fn(Micros, usize) -> bool,
    ) -> (Closes, Pings) {
        let rtt = Micros(20_000);
        let mut pending: Vec<(Micros, usize, u64)> = Vec::new();
        let (mut closes, mut pings) = (Vec::new(), Vec::new());
        let mut now = Micros::ZERO;
        for _ in 0..1_000_000 {
            while let Some(o) = server.poll_output() {
                match o {
                    ServerOutput::Send {
                        channel,
                        msg: SpiceMsg::Ping { id },
                    } => {
                        pings.push((now, channel));
                        if answer(now, channel) {
                            pending.push((Micros(now.0.saturating_add(rtt.0)), channel, id));
                        }
                    }
                    ServerOutput::Send { .. } => {}
                    ServerOutput::Close { channel, why } => closes.push((now, channel, why)),
                }
            }
            let next_pong = pending.iter().map(|p| p.0).min();
            let next = [next_pong, server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            if next > horizon {
                break;
            }
            assert!(next >= now, "time went backwards");
            now = next;
            if next_pong == Some(now) {
                let i = pending.iter().position(|p| p.0 == now).unwrap();
                let (_, ch, id) = pending.remove(i);
                server.handle_message(now, ch, SpiceMsg::Pong { id });
            } else {
                server.handle_timeout(now);
            }
        }
        (closes, pings)
    }

    fn secs(s: u64) -> Micros {
        Micros(s * 1_000_000)
    }

    #[test]
    fn a_client_that_stops_answering_main_is_dropped_30_to_60s_after_the_unanswered_pair() {
        for stop in [100u64, 101, 107, 113, 200, 3333] {
            let mut s = SpiceServer::new(cfg());
            s.open_channel(Micros::ZERO, ChannelKind::Main);
            let (closes, pings) = drive(&mut s, secs(10_000), |t, _| t < secs(stop));
            let unanswered = pings.iter().find(|(t, _)| *t >= secs(stop)).unwrap().0;
            let (at, ch, why) = closes[0];
            assert_eq!((ch, why), (0, ServerClose::ConnectivityTimeout));
            let delay = at.0 - unanswered.0;
            assert!(
                delay > 30_000_000 && delay <= 60_000_000,
                "stop {stop}: pair at {unanswered}, dropped at {at}"
            );
        }
    }

    #[test]
    fn a_client_that_answers_is_never_dropped_and_main_pings_every_15s() {
        let mut s = SpiceServer::new(cfg());
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        let (closes, pings) = drive(&mut s, secs(86_400), |_, _| true);
        assert!(closes.is_empty(), "{closes:?}");
        // 3 net-test pings, then a pair every 15 s + one round trip.
        let pairs = (pings.len() - 3) / 2;
        assert!((5700..=5760).contains(&pairs), "{pairs}");
    }

    #[test]
    fn idle_non_main_channels_are_never_dropped_by_the_server() {
        let mut s = SpiceServer::new(cfg());
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        for k in [
            ChannelKind::Inputs,
            ChannelKind::Cursor,
            ChannelKind::Display,
        ] {
            s.open_channel(Micros::ZERO, k);
        }
        // Main answers, the others never do.
        let (closes, pings) = drive(&mut s, secs(86_400), |_, ch| ch == 0);
        assert!(closes.is_empty(), "{closes:?}");
        // Each silent channel got exactly one pair (at 100 ms) and, with
        // the round outstanding forever, no more.
        for ch in 1..4 {
            let n = pings.iter().filter(|p| p.1 == ch).count();
            assert_eq!(n, 2, "channel {ch}");
        }
    }

    #[test]
    fn inputs_pings_every_300s_display_every_15s() {
        let mut s = SpiceServer::new(cfg());
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        let inputs = s.open_channel(Micros::ZERO, ChannelKind::Inputs);
        let display = s.open_channel(Micros::ZERO, ChannelKind::Display);
        let (_, pings) = drive(&mut s, secs(3000), |_, _| true);
        let times = |ch| -> Vec<u64> {
            pings
                .iter()
                .filter(|p| p.1 == ch)
                .map(|p| p.0.0 / 1_000_000)
                .step_by(2)
                .collect()
        };
        assert_eq!(
            times(inputs),
            vec![0, 300, 600, 900, 1200, 1500, 1800, 2100, 2400, 2700]
        );
        assert_eq!(times(display)[..4], [0, 15, 30, 45]);
    }

    #[test]
    fn the_seed_belief_drops_an_idle_channel_after_30s() {
        let mut s = SpiceServer::new(ServerConfig {
            behaviour: ServerBehaviour::Seed002Belief,
            ..cfg()
        });
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        let inputs = s.open_channel(Micros::ZERO, ChannelKind::Inputs);
        let (closes, _) = drive(&mut s, secs(3000), |_, _| true);
        // Inputs answers its 100 ms ping pair, then sits idle: dropped at
        // 30 s after that PONG, which the source server would never do.
        assert_eq!(closes[0].1, inputs);
        assert_eq!(closes[0].2, ServerClose::BeliefIdleTimeout);
        assert_eq!(closes[0].0, Micros(30_120_000));
    }

    #[test]
    fn unknown_client_message_on_main_takes_every_channel() {
        let mut s = SpiceServer::new(cfg());
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        s.open_channel(Micros::ZERO, ChannelKind::Inputs);
        while s.poll_output().is_some() {}
        s.handle_message(secs(5), 0, SpiceMsg::Unknown { code: 5 });
        let outs: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
        assert_eq!(
            outs,
            vec![
                ServerOutput::Close {
                    channel: 0,
                    why: ServerClose::UnknownMessage(5)
                },
                ServerOutput::Close {
                    channel: 1,
                    why: ServerClose::MainTornDown
                },
            ]
        );
        // On a non-main channel only that channel goes.
        let mut s = SpiceServer::new(cfg());
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        s.open_channel(Micros::ZERO, ChannelKind::Inputs);
        while s.poll_output().is_some() {}
        s.handle_message(secs(5), 1, SpiceMsg::Unknown { code: 5 });
        assert!(s.is_open(0) && !s.is_open(1));
    }

    #[test]
    fn set_ack_window_stalls_display_until_the_client_acks() {
        let mut s = SpiceServer::new(cfg());
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        let d = s.open_channel(Micros::ZERO, ChannelKind::Display);
        let count = |s: &mut SpiceServer| {
            std::iter::from_fn(|| s.poll_output())
                .filter(|o| {
                    matches!(
                        o,
                        ServerOutput::Send {
                            msg: SpiceMsg::Data { .. },
                            ..
                        }
                    )
                })
                .count()
        };
        count(&mut s);
        for i in 0..100 {
            s.handle_app_data(Micros(i), d, 1000);
        }
        // SET_ACK counted as one in flight: 40 - 1 data messages go out.
        assert_eq!(count(&mut s), 40);
        s.handle_message(Micros(200), d, SpiceMsg::Ack);
        assert!(s.has_queued(d));
        // What waited goes out one write at a time, 20 before the wait.
        let mut sent = 0;
        while s.send_queued(Micros(200), d) {
            sent += count(&mut s);
        }
        assert_eq!(sent, 20);
        // A full send buffer stops it as the ACK wait does.
        s.handle_message(Micros(300), d, SpiceMsg::Ack);
        s.set_socket_state(d, true, true);
        assert!(!s.send_queued(Micros(300), d));
        s.set_socket_state(d, true, false);
        assert!(s.send_queued(Micros(300), d));
    }

    #[test]
    fn nothing_due_changes_nothing() {
        let mut s = SpiceServer::new(cfg());
        s.open_channel(Micros::ZERO, ChannelKind::Main);
        while s.poll_output().is_some() {}
        let before = s.poll_timeout();
        s.handle_timeout(Micros(50_000));
        assert_eq!(s.poll_output(), None);
        assert_eq!(s.poll_timeout(), before);
    }
}
