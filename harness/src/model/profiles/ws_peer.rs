//! A WebSocket client and the peer it dials, on the virtual clock: the
//! loop the library profiles (`novnc`, `websocket`) share. What differs
//! between them is in [`Knobs`], each read from the profile's constants:
//! who pings and how long each side waits for the pong, how the client
//! reconnects, and the TCP keep-alive on its socket.
//!
//! The session is lost by what the environment does to it: the server
//! process killed (its kernel's FIN), the server's own goodbye, a load
//! balancer's idle cut, a keep-alive or ping timeout. A timeout that fires
//! while the path is dead is the outage's doing: the verdict names
//! `network.outage` at the outage's start, and the chain says which timer
//! noticed and when.
//!
//! The stream is a connection of `net`: the path, the load balancer, the
//! client socket's keep-alive and the kernel's retransmission of what the
//! client sends into a dead path are the network's. Frames a live path
//! carries are answered at once (the round trip is below every timer
//! here); a ping held for retransmission is answered when it gets through.

use super::super::clock::{self, EventQueue, MAX_STEPS, TimerName, Timers};
use super::super::constants::Constants;
use super::super::duration::format_duration;
use super::super::net::{CLIENT, Frame, Keepalive, Net, NetTimer, Probe, Retransmit, SERVER};
use super::super::profile::Variant;
use crate::timeline::Micros;
use crate::timeline::synthetic::{Dur, LbExpiry, ScriptEvent, Timeline};
use crate::verdict::{
    Basis, ChainEntry, ChannelSummary, Outcome, ReconnectAttempt, Verdict, Violation, secs,
};
use std::collections::BTreeMap;

/// What differs between the WebSocket peers this loop runs.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    pub profile: &'static str,
    /// The channel name the verdict uses.
    pub channel: &'static str,
    pub reconnect: bool,
    pub reconnect_delay: u64,
    /// noVNC: one retry per drop, and a failed retry ends retrying; a
    /// reconnect loop otherwise retries every delay until it gets in.
    pub retry_once: bool,
    /// (interval, timeout): the client's pings and how long it waits for
    /// the pong; a zero timeout is never enforced.
    pub client_ping: Option<(u64, u64)>,
    pub server_ping: Option<(u64, u64)>,
    /// When the first connection's first server ping comes (0: one
    /// interval after the connect). A server with one heartbeat timer for
    /// every client pings each at that timer's phase.
    pub server_ping_first: u64,
    /// What the verdict calls the server's close when its ping goes
    /// unanswered: its own liveness timer, by that timer's name.
    pub server_ping_cause: &'static str,
    /// TCP keep-alive on the client's socket: idle, interval, probes.
    pub keepalive: Option<(u64, u64, u64)>,
}

impl Knobs {
    /// A ping setting from an interval and a timeout constant (zero
    /// interval: no pings).
    pub fn pings(c: &Constants, interval: &str, timeout: &str) -> Option<(u64, u64)> {
        let i = c.duration(interval).0;
        (i > 0).then(|| (i, c.value(timeout).map_or(0, |_| c.duration(timeout).0)))
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Unmodelled(&'static str),
    ServerKilled,
    ServerRestarted,
    ServerCloses,
    ServerFreezes,
    ClientStalls { until: Option<u64> },
    ClientResumes,
    PathDown { until: u64 },
    PathUp,
    UserClose,
    AuthRefused,
}

/// The peers' timers. A connection's own are stopped when it ends, so
/// none can fire for a stream that is gone; the retry outlives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    ClientPing,
    /// The client's wait for the pong to its ping.
    ClientPongDeadline,
    ServerPing,
    ServerPongDeadline,
    /// The answer to a ping a relay held arrives at the hold's end.
    ClientPongHeld,
    ServerPongHeld,
    Retry,
}

impl TimerName for Timer {
    const ALL: &'static [Timer] = &[
        Timer::ClientPing,
        Timer::ClientPongDeadline,
        Timer::ServerPing,
        Timer::ServerPongDeadline,
        Timer::ClientPongHeld,
        Timer::ServerPongHeld,
        Timer::Retry,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// What is due next: a script event (first at equal times), a peer's
/// timer, or the network's.
enum Due {
    Script(Ev),
    Timer(Timer),
    Net,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Connected,
    /// Closed; a retry may be due.
    Closed,
    /// A retry failed and the client stopped retrying.
    Failed,
    UserClosed,
}

struct Run<'a> {
    k: Knobs,
    q: EventQueue<Ev>,
    timers: Timers<Timer>,
    /// When the unanswered pings were sent, for their deadlines' notes.
    client_ping_sent: u64,
    server_ping_sent: u64,
    now: u64,
    horizon: u64,
    net: Net<(), Frame>,
    /// The stream's connection in `net`.
    conn: Option<usize>,
    stream: Stream,
    server_up: bool,
    server_frozen: bool,
    client_frozen_until: Option<Option<u64>>,
    /// The first loss: when and why.
    lost: Option<(u64, String)>,
    user_closed: Option<u64>,
    /// From then on the server refuses the client's login (a state of the
    /// server, read at every connect).
    login_refused_from: Option<u64>,
    sessions: u64,
    chain: Vec<ChainEntry>,
    reconnects: Vec<ReconnectAttempt>,
    violations: Vec<Violation>,
    summary: ChannelSummary,
    steps: u64,
    c: &'a Constants,
}

/// Retries kept in the verdict; a reconnect loop against a dead server
/// would otherwise list one every delay to the horizon.
const RECORDED_ATTEMPTS: usize = 10;

/// Runs `t` with the peer `k` describes.
pub fn run(k: Knobs, c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let mut r = Run {
        k,
        q: EventQueue::new(),
        timers: Timers::default(),
        client_ping_sent: 0,
        server_ping_sent: 0,
        now: 0,
        horizon: t.horizon.0.0,
        net: Net::new(
            c,
            t,
            k.keepalive
                .map_or(Keepalive::OFF, |(idle, interval, count)| Keepalive {
                    idle: Micros(idle),
                    interval: Micros(interval),
                    count,
                }),
            Keepalive::OFF,
        ),
        conn: None,
        stream: Stream::Closed,
        server_up: true,
        server_frozen: false,
        client_frozen_until: None,
        lost: None,
        user_closed: None,
        login_refused_from: t
            .events
            .iter()
            .filter_map(|e| match e {
                ScriptEvent::AuthRefused { at } => Some(at.0.0),
                _ => None,
            })
            .min(),
        sessions: 0,
        chain: Vec::new(),
        reconnects: Vec::new(),
        violations: Vec::new(),
        summary: ChannelSummary {
            channel: k.channel.into(),
            ..ChannelSummary::default()
        },
        steps: 0,
        c,
    };
    for e in &t.events {
        let (at, ev) = match *e {
            ScriptEvent::ServerKilled { at } => (at, Ev::ServerKilled),
            ScriptEvent::ServerRestarted { at } => (at, Ev::ServerRestarted),
            ScriptEvent::ServerCloses { at } => (at, Ev::ServerCloses),
            ScriptEvent::ServerStopsAnswering { at, .. } => (at, Ev::ServerFreezes),
            ScriptEvent::Blackhole { from, to } => (from, Ev::PathDown { until: to.0.0 }),
            ScriptEvent::UserClose { at } => (at, Ev::UserClose),
            ScriptEvent::AuthRefused { at } => (at, Ev::AuthRefused),
            ScriptEvent::ClientStalls { at, until } => (
                at,
                Ev::ClientStalls {
                    until: until.map(|u| u.0.0),
                },
            ),
            // The network takes and holds every frame (net.rs); the pings
            // below learn of it through `held_until`.
            ScriptEvent::RelayHolds { .. } => continue,
            // Display traffic keeps nothing alive that this model times.
            ScriptEvent::UserActive { .. }
            | ScriptEvent::Keystroke { .. }
            | ScriptEvent::ServerData { .. } => continue,
            ref other => (Dur(Micros::ZERO), Ev::Unmodelled(other.name())),
        };
        r.q.push(at.0, ev);
    }
    r.first_connect();
    let horizon = r.horizon;
    let (steps, bound) = clock::drive(&mut r, Micros(horizon), MAX_STEPS);
    r.steps = steps;
    r.violations.extend(bound);
    r.finish(variant, t, input)
}

impl clock::Stepper for Run<'_> {
    type Ev = Due;
    fn next_event(&mut self) -> Option<(Micros, Due)> {
        let script = self.q.peek_time();
        let timer = self.timers.earliest();
        let net = self.net.next_deadline().map(|t| t.max(Micros(self.now)));
        // At equal times: the script, then the peers' timers, then the network.
        let first_timer = timer.filter(|&(t, _)| script.is_none_or(|s| t < s));
        let before_net = |t: Micros| net.is_none_or(|n| t <= n);
        match (script, first_timer) {
            (_, Some((t, timer))) if before_net(t) => Some((t, Due::Timer(timer))),
            (Some(s), _) if before_net(s) => self.q.pop().map(|(at, ev)| (at, Due::Script(ev))),
            _ => net.map(|n| (n, Due::Net)),
        }
    }
    fn step(&mut self, now: Micros, due: Due) {
        self.now = now.0;
        match due {
            Due::Script(ev) => self.handle(ev),
            Due::Timer(timer) => {
                self.timers.stop(timer);
                self.handle_timeout(timer);
            }
            Due::Net => self.handle_net_timeout(),
        }
    }
}

impl Run<'_> {
    fn note(&mut self, actor: &'static str, what: impl Into<String>, script: bool) {
        self.chain.push(ChainEntry {
            at: secs(Micros(self.now)),
            actor,
            what: what.into(),
            basis: if script { Basis::Script } else { Basis::Model },
        });
    }

    /// Whether the stream's path carries packets now.
    fn path_up(&self) -> bool {
        match self.conn {
            Some(k) => self.net.path_up(Micros(self.now), k),
            None => self.net.path_clear(Micros(self.now)),
        }
    }

    /// Sends a frame on the stream: it gets through now, or waits in the
    /// sender's socket for the path to come back.
    fn send(&mut self, from: usize, frame: Frame) -> bool {
        let Some(k) = self.conn else { return false };
        self.net.transmit(Micros(self.now), k, from, frame)
    }

    /// The stream's connection ends: the network forgets it.
    fn close_conn(&mut self) {
        self.net.close_link(&mut self.conn);
    }

    fn client_frozen(&self) -> bool {
        self.client_frozen_until
            .is_some_and(|until| until.is_none_or(|u| self.now < u))
    }

    fn login_refused(&self) -> bool {
        self.login_refused_from.is_some_and(|t| self.now >= t)
    }

    /// The client's first connect. A refused login ends it: noVNC's
    /// `securityfailure` is unclean, so no reconnect (protocol-facts §4.1,
    /// NV core/rfb.js:2125-2145), and the lab's viewers left an error
    /// dialog and no retry (vnc-xvnc-wrong-password-retry).
    fn first_connect(&mut self) {
        if !self.login_refused() {
            self.connect();
            return;
        }
        self.note(
            "server",
            "the server refuses the client's login: the session never comes up",
            false,
        );
        self.stream = Stream::Failed;
        self.summary.last_closed_at = Some(secs(Micros(self.now)));
        self.summary.last_closed_by = Some("auth.refused".into());
        self.lost.get_or_insert((self.now, "auth.refused".into()));
    }

    /// Sets `timer` to fire `after` from now.
    fn arm(&mut self, timer: Timer, after: u64) {
        self.timers
            .set(timer, Micros(self.now.saturating_add(after)));
    }

    /// The connected stream's timers end with it; a retry may follow.
    fn stop_stream_timers(&mut self) {
        let retry = self.timers.get(Timer::Retry);
        self.timers.stop_all();
        if let Some(at) = retry {
            self.timers.set(Timer::Retry, at);
        }
    }

    fn connect(&mut self) {
        self.stop_stream_timers();
        self.close_conn();
        self.conn = Some(self.net.open_established((), Micros(self.now)));
        self.stream = Stream::Connected;
        self.sessions += 1;
        self.summary.generations += 1;
        if let Some((interval, _)) = self.k.client_ping {
            self.arm(Timer::ClientPing, interval);
        }
        if let Some((interval, _)) = self.k.server_ping {
            let first = match self.k.server_ping_first {
                f if f > 0 && self.sessions == 1 => f,
                _ => interval,
            };
            self.arm(Timer::ServerPing, first);
        }
    }

    /// The connected stream ends. A timer that found the path dead names
    /// the outage, at its start.
    fn closed(&mut self, cause: &str, what: String, actor: &'static str) {
        self.note(actor, what, false);
        self.stream = Stream::Closed;
        self.stop_stream_timers();
        self.close_conn();
        // A close from the far side that a relay holds reaches the client
        // at the hold's end.
        let seen = match actor {
            "client" => self.now,
            _ => self.held_until().unwrap_or(self.now),
        };
        self.summary.last_closed_at = Some(secs(Micros(seen)));
        self.summary.last_closed_by = Some(cause.into());
        let loss = match self.net.outage_start(Micros(self.now)) {
            Some(from) => (from.0, "network.outage".to_string()),
            None => (self.now, cause.to_string()),
        };
        self.lost.get_or_insert(loss);
        if self.k.reconnect {
            self.arm(Timer::Retry, self.k.reconnect_delay);
        }
    }

    fn handle(&mut self, ev: Ev) {
        let connected = self.stream == Stream::Connected;
        match ev {
            Ev::Unmodelled(name) => {
                self.note("model", super::unmodelled_note(name, self.k.profile), true)
            }
            Ev::ServerKilled => {
                self.note("server", "the server process dies", true);
                self.server_up = false;
                if connected {
                    let what = "its kernel closes the stream (FIN)";
                    self.closed("server.killed", what.into(), "server");
                }
            }
            Ev::ServerRestarted => {
                self.note("server", "the server is back", true);
                self.server_up = true;
                self.server_frozen = false;
            }
            Ev::ServerCloses => {
                if connected {
                    self.note("server", "the server says goodbye and closes", true);
                    self.closed("server.closed", "the client's stream ends".into(), "client");
                }
            }
            Ev::ServerFreezes => {
                self.note(
                    "server",
                    "the server process stops answering (its kernel still ACKs)",
                    true,
                );
                self.server_frozen = true;
            }
            Ev::ClientStalls { until } => {
                self.note(
                    "client",
                    "the client stops answering (its kernel still ACKs)",
                    true,
                );
                self.client_frozen_until = Some(until);
                if let Some(u) = until {
                    self.q.push(Micros(u), Ev::ClientResumes);
                }
            }
            Ev::ClientResumes => self.note("client", "the client answers again", true),
            Ev::PathDown { until } => {
                self.note("network", "nothing crosses the path", true);
                self.q.push(Micros(until), Ev::PathUp);
            }
            Ev::PathUp => {
                if self.path_up() {
                    self.note("network", "the path carries packets again", true);
                }
            }
            Ev::UserClose => {
                if connected {
                    self.note(
                        "user",
                        "the user closes the session: a close frame, then FIN",
                        true,
                    );
                    self.stream = Stream::UserClosed;
                    self.user_closed = Some(self.now);
                    self.stop_stream_timers();
                    self.close_conn();
                }
            }
            Ev::AuthRefused => self.note(
                "server",
                "the server refuses the client's login from now on",
                true,
            ),
        }
    }

    /// One match over the timer that fired.
    fn handle_timeout(&mut self, timer: Timer) {
        match timer {
            Timer::ClientPing => self.client_ping(),
            Timer::ClientPongDeadline => self.client_ping_deadline(),
            Timer::ServerPing => self.server_ping(),
            Timer::ServerPongDeadline => self.server_ping_deadline(),
            Timer::ClientPongHeld => {
                if self.stream == Stream::Connected && self.server_answers() {
                    self.pong_to_client();
                }
            }
            Timer::ServerPongHeld => self.server_pong_held(),
            Timer::Retry => self.retry(),
        }
    }

    /// The client pings; the server's pong comes back at once unless the
    /// server is frozen, or when the ping gets through a dead path.
    fn client_ping(&mut self) {
        let Some((interval, timeout)) = self.k.client_ping else {
            return;
        };
        // A frozen client sends nothing; its timer fires again later.
        if self.client_frozen() {
            self.arm(Timer::ClientPing, interval);
            return;
        }
        self.client_ping_sent = self.now;
        if let Some(end) = self.held_until() {
            if timeout > 0 {
                self.arm(Timer::ClientPongDeadline, timeout);
            }
            self.arm(Timer::ClientPongHeld, end - self.now);
        } else if self.send(CLIENT, Frame::Ping) && self.server_answers() {
            self.pong_to_client();
        } else if timeout > 0 {
            self.arm(Timer::ClientPongDeadline, timeout);
        }
    }

    fn server_answers(&self) -> bool {
        self.server_up && !self.server_frozen
    }

    /// The server's pong to the client's ping reaches the client.
    fn pong_to_client(&mut self) {
        let Some((interval, _)) = self.k.client_ping else {
            return;
        };
        if self.send(SERVER, Frame::Ping) {
            self.summary.pongs_sent += 1;
            self.timers.stop(Timer::ClientPongDeadline);
            self.arm(Timer::ClientPing, interval);
        }
    }

    fn client_ping_deadline(&mut self) {
        if self.stream != Stream::Connected {
            return;
        }
        let what = format!(
            "no pong to the ping sent at T+{:.3}: the client closes (1011)",
            secs(Micros(self.client_ping_sent))
        );
        self.closed("client.liveness_timeout", what, "client");
    }

    /// The server pings; the client's pong comes back at once unless the
    /// client is frozen or the path dead.
    fn server_ping(&mut self) {
        let Some((interval, timeout)) = self.k.server_ping else {
            return;
        };
        if self.server_frozen || !self.server_up {
            return;
        }
        // A relay took the ping and holds it: any answer comes at the
        // hold's end, which the server's deadline may not wait for.
        if let Some(end) = self.held_until() {
            self.server_ping_sent = self.now;
            if timeout > 0 {
                self.arm(Timer::ServerPongDeadline, timeout);
            }
            self.arm(Timer::ServerPongHeld, end - self.now);
            return;
        }
        // The server's own retransmission into a dead path is not timed:
        // it gives up only after the client's timers here have run.
        let answered = self.path_up()
            && self.send(SERVER, Frame::Ping)
            && !self.client_frozen()
            && self.send(CLIENT, Frame::Ping);
        if answered {
            self.summary.pings_received += 1;
            self.summary.pongs_sent += 1;
        }
        if answered || timeout == 0 {
            self.arm(Timer::ServerPing, interval);
        } else {
            self.server_ping_sent = self.now;
            self.arm(Timer::ServerPongDeadline, timeout);
        }
    }

    /// The hold ended: the client answers the held ping, unless frozen.
    fn server_pong_held(&mut self) {
        let Some((interval, timeout)) = self.k.server_ping else {
            return;
        };
        if self.stream != Stream::Connected {
            return;
        }
        if !self.client_frozen() {
            self.timers.stop(Timer::ServerPongDeadline);
            self.summary.pings_received += 1;
            self.summary.pongs_sent += 1;
            self.arm(Timer::ServerPing, interval);
        } else if timeout == 0 {
            self.arm(Timer::ServerPing, interval);
        }
    }

    /// The end of a relay's hold covering now, if one does.
    fn held_until(&self) -> Option<u64> {
        self.net
            .held_until(Micros(self.now))
            .map(|end| end.0)
            .filter(|&end| end > self.now)
    }

    fn server_ping_deadline(&mut self) {
        if self.stream != Stream::Connected {
            return;
        }
        let what = format!(
            "no pong to the server's ping sent at T+{:.3}: the server closes ({})",
            secs(Micros(self.server_ping_sent)),
            self.k.server_ping_cause
        );
        self.closed(self.k.server_ping_cause, what, "server");
    }

    /// The network's timers: the load balancer's idle cut, the client
    /// socket's keep-alive, the kernel's retransmission of a held ping.
    fn handle_net_timeout(&mut self) {
        let now = Micros(self.now);
        let mut due = self.net.due_timers();
        while let Some((k, timer)) = due.next(&self.net, now) {
            self.net_timer(k, timer);
        }
    }

    fn net_timer(&mut self, k: usize, timer: NetTimer) {
        let now = Micros(self.now);
        let current = self.conn == Some(k);
        match timer {
            NetTimer::LbIdle => {
                let Some((idle, how)) = self.net.lb_expire(k) else {
                    return;
                };
                if current {
                    let what = format!(
                        "load balancer idle {} expires: {}",
                        format_duration(idle),
                        match how {
                            LbExpiry::FinRst => "FIN to the client, RST to the server",
                            LbExpiry::Rst => "RST to both ends",
                            // The client's next segment would draw a RST.
                            LbExpiry::Silent => "the flow is forgotten",
                        }
                    );
                    self.closed("lb.idle_timeout", what, "lb");
                }
            }
            NetTimer::Keepalive(e) => {
                let probe = self.net.keepalive_probe(now, k, e);
                if current && e == CLIENT && probe == Probe::Exhausted {
                    let probes = self.net.client_ka.count;
                    let what = format!(
                        "{probes} keep-alive probes unanswered: the kernel aborts the socket"
                    );
                    self.closed("tcp.keepalive_timeout", what, "client");
                }
            }
            NetTimer::Retransmit(from) => match self.net.retransmit(now, k, from) {
                Retransmit::GaveUp if current => {
                    let what = format!(
                        "{} retransmissions of the ping sent at T+{:.3} unanswered: the kernel aborts the socket",
                        self.net.retries2,
                        secs(Micros(self.client_ping_sent))
                    );
                    self.closed("tcp.retransmission_timeout", what, "client");
                }
                Retransmit::Flushed(..) if current && from == CLIENT => {
                    // The held ping gets through: both kernels hear it.
                    self.net.delivered(now, k);
                    if self.server_answers() {
                        self.pong_to_client();
                    }
                }
                _ => {}
            },
        }
    }

    fn retry(&mut self) {
        if self.stream != Stream::Closed {
            return;
        }
        // A stopped process dials nothing; its timer runs when it resumes.
        if self.client_frozen() {
            if let Some(Some(until)) = self.client_frozen_until {
                self.timers.set(Timer::Retry, Micros(until));
            }
            return;
        }
        let attempt = self.reconnects.len() as u64 + 1;
        let result = if !self.path_up() {
            "failed: no answer to its SYN"
        } else if !self.server_up {
            "failed: refused (RST to its SYN, or closed while connecting)"
        } else if self.login_refused() {
            "refused: the server refuses the login"
        } else {
            "connected"
        };
        if self.reconnects.len() < RECORDED_ATTEMPTS || result == "connected" {
            self.reconnects.push(ReconnectAttempt {
                attempt,
                scheduled_at: secs(Micros(self.now)),
                delay: format_duration(Micros(self.k.reconnect_delay)),
                started_at: Some(secs(Micros(self.now))),
                credential: None,
                result: result.into(),
            });
        }
        if result == "connected" {
            self.note("client", format!("retry #{attempt} connects"), false);
            self.connect();
        } else if self.k.retry_once {
            let what = format!("retry #{attempt} {result}: unclean, so the client stops retrying");
            self.note("client", what, false);
            self.stream = Stream::Failed;
        } else {
            self.arm(Timer::Retry, self.k.reconnect_delay);
        }
    }

    fn finish(self, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
        let (outcome, at, cause) = match (self.stream, self.user_closed, self.lost.clone()) {
            (Stream::UserClosed, Some(u), None) => (
                Outcome::Survived,
                Some(secs(Micros(u))),
                Some("client.closed".to_string()),
            ),
            // Back after a drop (and maybe closed by the user later): the
            // drop is what the run reports.
            (Stream::Connected | Stream::UserClosed, _, Some((at, cause))) if self.sessions > 1 => {
                (Outcome::Survived, Some(secs(Micros(at))), Some(cause))
            }
            (Stream::Connected, _, _) => (Outcome::Survived, None, None),
            (Stream::Failed, _, Some((at, cause))) if self.sessions == 0 => {
                (Outcome::Refused, Some(secs(Micros(at))), Some(cause))
            }
            (Stream::Failed, _, lost) => {
                let (at, cause) = lost.unwrap_or((self.now, "client.connect_failed".into()));
                (Outcome::DeadSession, Some(secs(Micros(at))), Some(cause))
            }
            (_, _, lost) => {
                let (at, cause) = lost.unwrap_or((self.now, "unknown".into()));
                (Outcome::Disconnected, Some(secs(Micros(at))), Some(cause))
            }
        };
        let mut environment = BTreeMap::new();
        environment.insert(
            "lb".into(),
            self.net.lb.map_or("none".into(), |(idle, _)| {
                format!("idle {}", format_duration(idle))
            }),
        );
        Verdict {
            outcome,
            at,
            cause,
            channel: (outcome != Outcome::Survived || self.sessions > 1)
                .then(|| self.k.channel.into()),
            violations: self.violations,
            environment,
            sessions: self.sessions,
            chain: self.chain,
            reconnects: self.reconnects,
            channels: vec![self.summary],
            steps: self.steps,
            ..super::run_verdict(self.k.profile, self.c, variant, t, input)
        }
    }
}
