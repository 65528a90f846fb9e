//! A SPICE client and its environment on the one clock: the client actor,
//! the SPICE server, the script's faults, and the verdict they make. The
//! loop is `clock::drive`; what is due next is a queued event (ties broken
//! by insertion order), an actor's `poll_timeout` or the network's
//! (`net::Net`, the kernel's TCP behaviour and the path).

use super::client::{ClientNote, ClientOutput, ClosedHow, LinkFailure, Phase, SpiceClient};
use super::clock::{self, EventQueue};
use super::constants::{Constants, Value};
use super::duration::format_duration;
use super::env::spice_server::{ServerClose, ServerConfig, ServerOutput, SpiceMsg, SpiceServer};
use super::net::{
    CLIENT, Conn, Keepalive, Net, NetTimer, Pipe, Probe, Retransmit, SERVER, Segment, Sent,
};
use super::profile::{Profile, Variant};
use crate::timeline::Micros;
use crate::timeline::synthetic::{ChannelKind, LbExpiry, ScriptEvent, ServerBehaviour, Timeline};
use crate::verdict::{
    Basis, ChainEntry, ChannelSummary, Outcome, ReconnectAttempt, Verdict, Violation, secs,
};
use std::collections::{BTreeMap, VecDeque};

/// Every constant of a run: environment (defaults from protocol-facts.md
/// and the timeline), then the profile's, then the variant's.
pub fn constants_for(profile: &Profile, variant: &Variant, t: &Timeline) -> Constants {
    use Value::*;
    let ms = |n: u64| Duration(Micros(n * 1_000));
    let sec = |n: u64| Duration(Micros(n * 1_000_000));
    let mut c = Constants::default();
    c.define(
        "latency",
        Duration(t.network.latency.0),
        "timeline [network]",
    );
    c.define(
        "ping_interval",
        ms(15_000),
        "SS red-channel-client.cpp:238 PING_TEST_TIMEOUT_MS",
    );
    c.define(
        "long_ping_interval",
        ms(300_000),
        "SS red-channel-client.cpp:239 PING_TEST_LONG_TIMEOUT_MS",
    );
    c.define(
        "ping_retry",
        ms(100),
        "SS red-channel-client.cpp:240 PING_TEST_IDLE_NET_TIMEOUT_MS",
    );
    c.define(
        "connectivity_timeout",
        ms(30_000),
        "SS main-channel-client.cpp:39 CLIENT_CONNECTIVITY_TIMEOUT",
    );
    c.define(
        "ack_window",
        Count(20),
        "SS red-channel-client.cpp:39 CLIENT_ACK_WINDOW",
    );
    c.define(
        "server_tcp_keepalive_idle",
        sec(600),
        "SS reds.cpp:2326 KEEPALIVE_TIMEOUT",
    );
    c.define(
        "server_tcp_keepalive_interval",
        sec(75),
        "LX tcp.h TCP_KEEPALIVE_INTVL",
    );
    c.define(
        "server_tcp_keepalive_count",
        Count(9),
        "LX tcp.h TCP_KEEPALIVE_PROBES",
    );
    super::net::define_tcp(&mut c);
    c.define(
        "lb_idle_timeout",
        Duration(t.lb.as_ref().map_or(Micros::ZERO, |l| l.idle_timeout.0)),
        "timeline [lb]; 0s = no load balancer",
    );
    (profile.define)(&mut c);
    (variant.apply)(&mut c);
    c
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Msg(SpiceMsg),
    Fin,
}

impl Segment for Item {
    fn is_data(&self) -> bool {
        matches!(self, Item::Msg(_))
    }
    fn size(&self) -> u64 {
        match self {
            Item::Msg(m) => m.wire_bytes(),
            Item::Fin => 0,
        }
    }
}

/// What a SPICE connection of the model carries; the network holds it
/// while the path is down.
#[derive(Clone, Debug)]
struct Link {
    client_ch: usize,
    kind: ChannelKind,
    server_ch: Option<usize>,
    /// Why the server closed it, for attribution.
    server_close: Option<ServerClose>,
    /// The client application has seen this connection end.
    client_saw_end: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Script(usize),
    /// Occurrence `n` of a recurring script event.
    Recurring(usize, u64),
    Deliver {
        conn: usize,
        to: usize,
        item: Item,
    },
    Reset {
        conn: usize,
        endpoint: usize,
    },
    DialStep {
        conn: usize,
        syn: u64,
    },
    Linked {
        conn: usize,
    },
    LinkFailed {
        conn: usize,
        why: LinkFailure,
    },
    StallEnd,
}

#[derive(Default, Clone)]
struct ChannelStats {
    generations: u64,
    rx: u64,
    pings: u64,
    pongs: u64,
    keepalives: u64,
    longest_silence: Micros,
    last_rx: Option<Micros>,
    closed_at: Option<Micros>,
    closed_by: Option<String>,
}

/// A low-level chain entry, formatted only if it makes it into a verdict
/// (a day of pings would otherwise be tens of thousands of strings).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Minor {
    Ping { id: u64, kind: ChannelKind },
    Pong { id: u64, kind: ChannelKind },
    Keepalive { kind: ChannelKind },
    Text(String),
}

impl Minor {
    fn render(&self) -> String {
        match self {
            Minor::Ping { id, kind } => format!("PING id {id} on {}", kind.as_str()),
            Minor::Pong { id, kind } => format!("PONG id {id} on {}", kind.as_str()),
            Minor::Keepalive { kind } => format!("client keepalive on idle {}", kind.as_str()),
            Minor::Text(t) => t.clone(),
        }
    }
}

/// Chain entries kept in full (script, disconnects, reconnects) and a
/// ring of recent low-level ones (pings, pongs) merged in around the end.
struct Recorder {
    major: Vec<(Micros, u64, ChainEntry)>,
    minor: VecDeque<(Micros, u64, &'static str, Minor)>,
    seq: u64,
}

const MINOR_RING: usize = 12;
const MAJOR_LIMIT: usize = 400;

impl Recorder {
    fn push(&mut self, at: Micros, actor: &'static str, what: String, basis: Basis) {
        self.seq += 1;
        if self.major.len() < MAJOR_LIMIT {
            let e = ChainEntry {
                at: secs(at),
                actor,
                what,
                basis,
            };
            self.major.push((at, self.seq, e));
        }
    }

    fn push_minor(&mut self, at: Micros, actor: &'static str, what: Minor) {
        self.seq += 1;
        if self
            .minor
            .back()
            .is_some_and(|(t, _, _, last)| *t == at && *last == what)
        {
            return;
        }
        if self.minor.len() == MINOR_RING {
            self.minor.pop_front();
        }
        self.minor.push_back((at, self.seq, actor, what));
    }
}

struct Outage {
    at: Micros,
    channel: ChannelKind,
    cause: String,
}

pub struct Sim {
    now: Micros,
    horizon: Micros,
    max_steps: u64,
    steps: u64,
    /// The run stopped on a broken invariant (time went backwards).
    halted: bool,
    queue: EventQueue<Ev>,
    net: Net<Link, Item>,
    server: SpiceServer,
    server_cfg: ServerConfig,
    server_running: bool,
    server_conn: Vec<usize>,
    ticket_consumed: bool,
    single_use: bool,
    ticket_valid_until: Option<Micros>,
    /// From then on every link's password is refused (the script's
    /// `auth_refused`): a state of the server, so a link answered at the
    /// very instant is refused too.
    login_refused_from: Option<Micros>,
    client: SpiceClient,
    client_conn: Vec<Option<usize>>,
    client_stalled: Option<Option<Micros>>,
    backlog: VecDeque<(usize, Item)>,
    /// Server channels that may send what waited (an ACK came, or the
    /// socket takes writes again).
    writable: Vec<usize>,
    script: Vec<ScriptEvent>,
    rec: Recorder,
    stats: Vec<ChannelStats>,
    violations: Vec<Violation>,
    reconnects: Vec<ReconnectAttempt>,
    sessions: u64,
    outage: Option<Outage>,
    root_close: Option<(Micros, ChannelKind, ServerClose)>,
    /// Set when the connection the client just lost was closed by the server.
    lost_conn_server_close: Option<ServerClose>,
    /// When the script's user closed the session.
    user_closed: Option<Micros>,
    /// A session came up since the last outage began.
    recovered: bool,
    profile: String,
    variant: String,
    constants: BTreeMap<String, String>,
    input: String,
    environment: BTreeMap<String, String>,
}

impl Sim {
    pub fn new(
        profile: &Profile,
        variant: &Variant,
        constants: &Constants,
        timeline: &Timeline,
        input: &str,
    ) -> Sim {
        let c = constants;
        let server_cfg = ServerConfig {
            ping_interval: c.duration("ping_interval"),
            long_ping_interval: c.duration("long_ping_interval"),
            ping_retry: c.duration("ping_retry"),
            connectivity_timeout: c.duration("connectivity_timeout"),
            ack_window: c.count("ack_window").min(u32::MAX as u64 / 4) as u32,
            behaviour: timeline.server.behaviour,
        };
        let client_cfg = (profile.build)(c, timeline);
        let n = client_cfg.channels.len();
        let ka = |p: &str| Keepalive {
            idle: c.duration(&format!("{p}_tcp_keepalive_idle")),
            interval: c.duration(&format!("{p}_tcp_keepalive_interval")),
            count: c.count(&format!("{p}_tcp_keepalive_count")),
        };
        let net = Net::new(c, timeline, ka("client"), ka("server"));
        let lb = net.lb;
        let mut environment = BTreeMap::new();
        environment.insert(
            "server".to_string(),
            match timeline.server.behaviour {
                ServerBehaviour::Source => "spice-server@ee6c01a2".to_string(),
                ServerBehaviour::Seed002Belief => "spice-server@seed-002-belief".to_string(),
            },
        );
        environment.insert(
            "lb".into(),
            match lb {
                None => "none".into(),
                Some((t, e)) => format!("idle {} then {}", format_duration(t), e.as_str()),
            },
        );
        environment.insert(
            "ticket".into(),
            format!(
                "{}{}",
                if timeline.server.single_use_ticket {
                    "single-use"
                } else {
                    "reusable"
                },
                timeline
                    .server
                    .ticket_valid_until
                    .map(|v| format!(", valid until {}", format_duration(v.0)))
                    .unwrap_or_default()
            ),
        );
        let mut queue = EventQueue::new();
        for (i, ev) in timeline.events.iter().enumerate() {
            let at = match ev {
                ScriptEvent::UserActive { from, .. } | ScriptEvent::ServerData { from, .. } => {
                    queue.push(from.0, Ev::Recurring(i, 0));
                    continue;
                }
                ScriptEvent::Blackhole { from, .. } | ScriptEvent::RelayHolds { from, .. } => {
                    from.0
                }
                ScriptEvent::Keystroke { at }
                | ScriptEvent::ServerStopsAnswering { at, .. }
                | ScriptEvent::ServerStopsPinging { at, .. }
                | ScriptEvent::ClientStalls { at, .. }
                | ScriptEvent::ServerKilled { at }
                | ScriptEvent::ServerRestarted { at }
                | ScriptEvent::HalfOpen { at, .. }
                | ScriptEvent::UserClose { at }
                | ScriptEvent::ServerCloses { at }
                | ScriptEvent::AuthRefused { at } => at.0,
            };
            queue.push(at, Ev::Script(i));
        }
        Sim {
            now: Micros::ZERO,
            horizon: timeline.horizon.0,
            max_steps: clock::MAX_STEPS,
            steps: 0,
            halted: false,
            queue,
            net,
            server: SpiceServer::new(server_cfg),
            server_cfg,
            server_running: true,
            server_conn: Vec::new(),
            ticket_consumed: false,
            single_use: timeline.server.single_use_ticket,
            ticket_valid_until: timeline.server.ticket_valid_until.map(|d| d.0),
            login_refused_from: timeline
                .events
                .iter()
                .filter_map(|e| match e {
                    ScriptEvent::AuthRefused { at } => Some(at.0),
                    _ => None,
                })
                .min(),
            client: SpiceClient::new(client_cfg),
            client_conn: vec![None; n],
            client_stalled: None,
            backlog: VecDeque::new(),
            writable: Vec::new(),
            script: timeline.events.clone(),
            rec: Recorder {
                major: Vec::new(),
                minor: VecDeque::new(),
                seq: 0,
            },
            stats: vec![ChannelStats::default(); n],
            violations: Vec::new(),
            reconnects: Vec::new(),
            sessions: 0,
            outage: None,
            root_close: None,
            lost_conn_server_close: None,
            user_closed: None,
            recovered: false,
            profile: profile.name.to_string(),
            variant: variant.name.to_string(),
            constants: constants.snapshot(),
            input: input.to_string(),
            environment,
        }
    }

    /// Bounds the number of steps (a livelock guard); default 5 million (a
    /// 24 h idle session takes about 70 000).
    pub fn with_max_steps(mut self, n: u64) -> Sim {
        self.max_steps = n;
        self
    }

    fn note(&mut self, actor: &'static str, what: String, basis: Basis) {
        self.rec.push(self.now, actor, what, basis);
    }
    fn minor(&mut self, actor: &'static str, what: Minor) {
        self.rec.push_minor(self.now, actor, what);
    }

    fn violation(&mut self, code: &str, channel: Option<ChannelKind>, message: String) {
        let ch = channel.map(|c| c.as_str().to_string());
        if let Some(v) = self
            .violations
            .iter_mut()
            .find(|v| v.code == code && v.channel == ch)
        {
            v.count += 1;
            return;
        }
        self.violations.push(Violation {
            code: code.to_string(),
            at: secs(self.now),
            channel: ch,
            message,
            count: 1,
        });
    }

    // ---- the loop ----

    pub fn run(mut self) -> Verdict {
        self.client.start(Micros::ZERO);
        self.drain();
        let (horizon, max_steps) = (self.horizon, self.max_steps);
        let (steps, bound) = clock::drive(&mut Loop(&mut self), horizon, max_steps);
        self.steps = steps;
        if let Some(bound) = bound {
            self.violation(&bound.code, None, bound.message);
        }
        self.finish()
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Script(i) => self.script_event(i),
            Ev::Recurring(i, n) => self.recurring(i, n),
            Ev::Deliver { conn, to, item } => self.deliver(conn, to, item),
            Ev::Reset { conn, endpoint } => self.abort(conn, endpoint, ClosedHow::Reset),
            Ev::DialStep { conn, syn } => self.dial_step(conn, syn),
            Ev::Linked { conn } => self.linked(conn),
            Ev::LinkFailed { conn, why } => {
                let c = &mut self.net.conns[conn];
                c.open = [false, false];
                let ch = c.app.client_ch;
                if self.client_conn[ch] == Some(conn) {
                    self.client.handle_link_failed(self.now, ch, why);
                }
            }
            Ev::StallEnd => self.end_stall(),
        }
    }

    fn script_event(&mut self, i: usize) {
        let ev = self.script[i].clone();
        let what = match &ev {
            ScriptEvent::Keystroke { .. } => {
                if self.client_stalled.is_none() {
                    self.client.handle_user_input(self.now);
                }
                return;
            }
            ScriptEvent::ServerStopsAnswering { channel, .. } => {
                self.server.wedge(*channel);
                format!(
                    "server stops reading and writing {}",
                    channel.map_or("every channel", |c| c.as_str())
                )
            }
            ScriptEvent::ServerStopsPinging { channel, .. } => {
                self.server.stop_pinging(*channel);
                format!("server stops sending PINGs on {}", channel.as_str())
            }
            ScriptEvent::ClientStalls { until, .. } => {
                self.client_stalled = Some(until.map(|u| u.0));
                if let Some(u) = until {
                    self.queue.push(u.0, Ev::StallEnd);
                }
                match until {
                    Some(u) => format!("client stops reading until {}", format_duration(u.0)),
                    None => "client stops reading for good".into(),
                }
            }
            ScriptEvent::ServerKilled { .. } => {
                self.kill_server();
                "server process killed; its kernel closes every socket".into()
            }
            ScriptEvent::ServerRestarted { .. } => {
                if self.server_running {
                    self.kill_server();
                }
                self.server_running = true;
                "server (re)started, accepting connections".into()
            }
            ScriptEvent::Blackhole { to, .. } => {
                format!("network blackhole until {}", format_duration(to.0))
            }
            ScriptEvent::RelayHolds { to, .. } => format!(
                "a relay holds everything both ways until {}, acknowledging it",
                format_duration(to.0)
            ),
            ScriptEvent::HalfOpen { channel, .. } => {
                for &k in &self.net.live {
                    let c = &mut self.net.conns[k];
                    if channel.is_none_or(|ch| ch == c.app.kind) {
                        c.dead_path = true;
                    }
                }
                format!(
                    "half-open: the peer of {} vanishes without a trace",
                    channel.map_or("every connection", |c| c.as_str())
                )
            }
            ScriptEvent::UserClose { .. } => {
                self.user_closed = Some(self.now);
                self.client.handle_user_close(self.now);
                "user closes the session".into()
            }
            ScriptEvent::ServerCloses { .. } => {
                if !self.server_running {
                    return;
                }
                self.server.close_session();
                "server ends the session: closes every channel and goes on listening".into()
            }
            ScriptEvent::AuthRefused { .. } => {
                "server refuses the client's password from now on".into()
            }
            ScriptEvent::UserActive { .. } | ScriptEvent::ServerData { .. } => return,
        };
        self.note("script", what, Basis::Script);
    }

    fn recurring(&mut self, i: usize, n: u64) {
        let (from, to, every) = match &self.script[i] {
            ScriptEvent::UserActive { from, to, every } => (from.0, to.0, every.0),
            ScriptEvent::ServerData {
                from, to, every, ..
            } => (from.0, to.0, every.0),
            _ => return,
        };
        if n == 0 {
            let what = match &self.script[i] {
                ScriptEvent::UserActive { .. } => format!(
                    "user active until {}, input every {}",
                    format_duration(to),
                    format_duration(every)
                ),
                ScriptEvent::ServerData { channel, .. } => format!(
                    "server sends {} data until {} every {}",
                    channel.as_str(),
                    format_duration(to),
                    format_duration(every)
                ),
                _ => String::new(),
            };
            self.note("script", what, Basis::Script);
        }
        match self.script[i].clone() {
            ScriptEvent::UserActive { .. } if self.client_stalled.is_none() => {
                self.client.handle_user_input(self.now);
            }
            ScriptEvent::ServerData { channel, bytes, .. } => {
                let bytes = bytes.map_or(0, |b| u32::try_from(b.0).unwrap_or(u32::MAX));
                if self.server_running
                    && let Some(idx) = (0..self.server_conn.len()).rev().find(|&s| {
                        self.server.channel_kind(s) == Some(channel) && self.server.is_open(s)
                    })
                {
                    self.server.handle_app_data(self.now, idx, bytes);
                }
            }
            _ => {}
        }
        let next = Micros(from.0.saturating_add(every.0.saturating_mul(n + 1)));
        if next <= to && next > self.now {
            self.queue.push(next, Ev::Recurring(i, n + 1));
        }
    }

    fn kill_server(&mut self) {
        self.server.kill();
        self.drain();
        self.server_running = false;
        self.server = SpiceServer::new(self.server_cfg);
        self.server_conn.clear();
        self.writable.clear();
    }

    fn end_stall(&mut self) {
        if self
            .client_stalled
            .is_none_or(|u| u.is_none_or(|u| u > self.now))
        {
            return;
        }
        self.client_stalled = None;
        self.note("client", "client reads again".into(), Basis::Model);
        let mut read = Vec::new();
        while let Some((conn, item)) = self.backlog.pop_front() {
            if !read.contains(&conn) {
                read.push(conn);
            }
            self.client_receives(conn, item);
            self.drain();
        }
        // The windows open: what the server held for them follows.
        for conn in read {
            if let Some((at, held)) = self.net.read_all(self.now, conn, CLIENT) {
                for item in held {
                    self.queue.push(
                        at,
                        Ev::Deliver {
                            conn,
                            to: CLIENT,
                            item,
                        },
                    );
                }
            }
            self.sync_server_socket(conn);
        }
        self.drain();
    }

    // ---- outputs ----

    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(o) = self.server.poll_output() {
                any = true;
                self.server_output(o);
            }
            while let Some(o) = self.client.poll_output() {
                any = true;
                self.client_output(o);
            }
            if !any {
                // One waiting message per turn, so each write finds the
                // socket as the one before left it.
                match self.writable.last() {
                    Some(&s) if self.server.send_queued(self.now, s) => {}
                    Some(_) => {
                        self.writable.pop();
                    }
                    None => break,
                }
            }
        }
    }

    /// Server channel `s` may send what waited, if anything did.
    fn wake_writer(&mut self, s: usize) {
        if self.server.has_queued(s) && !self.writable.contains(&s) {
            self.writable.push(s);
        }
    }

    /// Tells the server what its socket on `conn` holds; a socket that takes
    /// writes again lets what waited go.
    fn sync_server_socket(&mut self, conn: usize) {
        let Some(s) = self.net.conns[conn].app.server_ch else {
            return;
        };
        let was_blocked = self.server.is_blocked(s);
        let busy = self.net.outq_busy(conn, SERVER);
        let blocked = self.net.write_blocked(conn, SERVER);
        self.server.set_socket_state(s, busy, blocked);
        if was_blocked && !blocked {
            self.wake_writer(s);
        }
    }

    fn server_output(&mut self, o: ServerOutput) {
        match o {
            ServerOutput::Send { channel, msg } => {
                let Some(&conn) = self.server_conn.get(channel) else {
                    return;
                };
                if let SpiceMsg::Ping { id } = msg {
                    let kind = self.net.conns[conn].app.kind;
                    self.minor("server", Minor::Ping { id, kind });
                }
                self.send(conn, SERVER, Item::Msg(msg));
            }
            ServerOutput::Close { channel, why } => {
                let Some(&conn) = self.server_conn.get(channel) else {
                    return;
                };
                let kind = self.net.conns[conn].app.kind;
                self.net.conns[conn].app.server_close = Some(why);
                // A teardown closes every channel at once; the first close
                // of an instant is the root.
                let first_now = self.root_close.is_none_or(|(t, _, _)| t != self.now);
                if why != ServerClose::MainTornDown && first_now {
                    self.root_close = Some((self.now, kind, why));
                    let detail = match why {
                        ServerClose::ConnectivityTimeout => format!(
                            "server: {} unresponsive for more than {}, disconnecting",
                            kind.as_str(),
                            format_duration(self.server_cfg.connectivity_timeout)
                        ),
                        ServerClose::UnknownMessage(code) => format!(
                            "server: unknown client message type {code} on {}, channel disconnected",
                            kind.as_str()
                        ),
                        other => format!("server closes {}: {}", kind.as_str(), other.code()),
                    };
                    self.note("server", detail, Basis::Model);
                }
                if self.net.conns[conn].open[SERVER] {
                    self.net.conns[conn].open[SERVER] = false;
                    self.send_raw(conn, SERVER, Item::Fin);
                }
            }
        }
    }

    fn client_output(&mut self, o: ClientOutput) {
        match o {
            ClientOutput::Dial {
                channel,
                credential,
            } => {
                let kind = self.client.channel_kind(channel);
                let id = self.net.conns.len();
                let link = Link {
                    client_ch: channel,
                    kind,
                    server_ch: None,
                    server_close: None,
                    client_saw_end: false,
                };
                self.net.conns.push(Conn::dialling(link, self.now));
                self.net.live.push(id);
                self.client_conn[channel] = Some(id);
                self.stats[channel].generations += 1;
                if kind == ChannelKind::Main
                    && let Some(r) = self.reconnects.last_mut()
                    && r.started_at.is_none()
                {
                    r.started_at = Some(secs(self.now));
                    r.credential = Some(credential);
                }
                self.queue.push(self.now, Ev::DialStep { conn: id, syn: 0 });
            }
            ClientOutput::Send { channel, msg } => {
                let Some(conn) = self.client_conn[channel] else {
                    return;
                };
                let kind = self.client.channel_kind(channel);
                match msg {
                    SpiceMsg::Pong { id } => {
                        self.stats[channel].pongs += 1;
                        self.minor("client", Minor::Pong { id, kind });
                    }
                    SpiceMsg::Unknown { code } => self.violation(
                        "client.unknown_message",
                        Some(kind),
                        format!(
                            "client sent message type {code}, which SPICE does not define client-to-server (there is no client PING)"
                        ),
                    ),
                    _ => {}
                }
                self.send(conn, CLIENT, Item::Msg(msg));
            }
            ClientOutput::Close { channel } => {
                let st = &mut self.stats[channel];
                if st.last_rx.is_some() {
                    st.closed_at = Some(self.now);
                    st.closed_by = Some("client.closed".into());
                    st.last_rx = None;
                }
                if let Some(conn) = self.client_conn[channel]
                    && self.net.conns[conn].open[CLIENT]
                {
                    self.net.conns[conn].open[CLIENT] = false;
                    self.send_raw(conn, CLIENT, Item::Fin);
                }
            }
            ClientOutput::Note(n) => self.client_note(n),
        }
    }

    fn client_note(&mut self, n: ClientNote) {
        let what = match n {
            ClientNote::SessionUp { generation } => {
                self.sessions += 1;
                self.recovered = true;
                if let Some(r) = self.reconnects.last_mut()
                    && r.result == "pending"
                {
                    r.result = "session up".into();
                }
                format!("session up (generation {generation})")
            }
            ClientNote::SessionLost { channel, cause } => {
                // A FIN or RST the server sent for a reason of its own: name
                // that reason, when and on which channel it started.
                let (cause, ch, at) = match (self.lost_conn_server_close.take(), self.root_close) {
                    (Some(_), Some((t, k, why))) => (why.code().to_string(), k, t),
                    _ => (cause, channel, self.now),
                };
                let what = format!(
                    "session lost: first seen on {} ({}), attributed to {} on {}",
                    channel.as_str(),
                    self.stats_closed_label(channel),
                    cause,
                    ch.as_str()
                );
                let fresh = self.outage.is_none() || self.recovered;
                if fresh {
                    self.recovered = false;
                    self.outage = Some(Outage {
                        at,
                        channel: ch,
                        cause,
                    });
                }
                what
            }
            ClientNote::LivenessTimeout { channel } => format!(
                "client: no data on {} for the liveness timeout",
                channel.as_str()
            ),
            ClientNote::KeepaliveSent { channel } => {
                if let Some(i) = (0..self.client.channel_count())
                    .find(|&i| self.client.channel_kind(i) == channel)
                {
                    self.stats[i].keepalives += 1;
                }
                self.minor("client", Minor::Keepalive { kind: channel });
                return;
            }
            ClientNote::AttemptScheduled { attempt, at, delay } => {
                self.reconnects.push(ReconnectAttempt {
                    attempt,
                    scheduled_at: secs(self.now),
                    delay: format_duration(delay),
                    started_at: None,
                    credential: None,
                    result: "pending".into(),
                });
                format!("reconnect attempt {attempt} scheduled for {}", fmt_secs(at))
            }
            ClientNote::AttemptStarted {
                attempt,
                credential,
            } => format!("reconnect attempt {attempt} dials main with {credential}"),
            ClientNote::AttemptFailed { attempt, why } => {
                if let Some(r) = self
                    .reconnects
                    .iter_mut()
                    .rev()
                    .find(|r| r.attempt == attempt)
                {
                    r.result = format!("failed: {why}");
                }
                if why.contains("single-use") {
                    self.violation(
                        "client.retry_with_consumed_ticket",
                        Some(ChannelKind::Main),
                        "reconnect reused a single-use ticket: a doomed retry".into(),
                    );
                }
                format!("reconnect attempt {attempt} failed: {why}")
            }
            ClientNote::GaveUp { reason } => format!("client gives up: {reason}"),
            ClientNote::UserClosed => "client closes every channel".into(),
        };
        self.note("client", what, Basis::Model);
    }

    fn stats_closed_label(&self, channel: ChannelKind) -> String {
        (0..self.client.channel_count())
            .find(|&i| self.client.channel_kind(i) == channel)
            .and_then(|i| self.stats[i].closed_by.clone())
            .unwrap_or_else(|| "closed".into())
    }

    // ---- network ----

    fn send(&mut self, conn: usize, from: usize, item: Item) {
        if !self.net.conns[conn].open[from] {
            return;
        }
        self.send_raw(conn, from, item);
    }

    fn send_raw(&mut self, conn: usize, from: usize, item: Item) {
        match self.net.send(self.now, conn, from, item) {
            Sent::Arrives(at, item) => self.queue.push(
                at,
                Ev::Deliver {
                    conn,
                    to: 1 - from,
                    item,
                },
            ),
            Sent::Held { .. } => {
                if from == SERVER {
                    self.sync_server_socket(conn);
                }
            }
        }
    }

    fn deliver(&mut self, conn: usize, to: usize, item: Item) {
        let from = 1 - to;
        // A stalled client's socket is open; its app just is not reading.
        let listening =
            self.net.conns[conn].open[to] || to == CLIENT && self.client_stalled.is_some();
        if !listening {
            // Nobody listens: the kernel answers with RST.
            if self.net.conns[conn].open[from] && self.net.path_up(self.now, conn) {
                self.queue.push(
                    self.net.arrival(self.now),
                    Ev::Reset {
                        conn,
                        endpoint: from,
                    },
                );
            }
            return;
        }
        self.net.delivered(self.now, conn);
        if to == SERVER {
            let Some(s) = self.net.conns[conn].app.server_ch else {
                return;
            };
            if let Item::Msg(_) = item
                && !self.server.is_reading(s)
            {
                // A wedged loop reads nothing: it stays in the buffer.
                self.net.left_unread(conn, SERVER, item.size());
                return;
            }
            match item {
                Item::Msg(m) => {
                    self.server.handle_message(self.now, s, m);
                    if m == SpiceMsg::Ack {
                        self.wake_writer(s);
                    }
                }
                Item::Fin => {
                    self.net.conns[conn].open[SERVER] = false;
                    self.server.handle_peer_closed(s);
                }
            }
        } else if self.client_stalled.is_some() {
            self.net.left_unread(conn, CLIENT, item.size());
            self.backlog.push_back((conn, item));
            self.sync_server_socket(conn);
        } else {
            self.client_receives(conn, item);
        }
    }

    fn client_receives(&mut self, conn: usize, item: Item) {
        let ch = self.net.conns[conn].app.client_ch;
        if self.client_conn[ch] != Some(conn) {
            return;
        }
        match item {
            Item::Msg(m) => {
                let st = &mut self.stats[ch];
                st.rx += 1;
                if let Some(last) = st.last_rx {
                    st.longest_silence = st.longest_silence.max(self.now.saturating_sub(last));
                }
                st.last_rx = Some(self.now);
                if let SpiceMsg::Ping { .. } = m {
                    st.pings += 1;
                }
                self.client.handle_message(self.now, ch, m);
            }
            Item::Fin => self.client_closed(conn, ClosedHow::Fin),
        }
    }

    fn client_closed(&mut self, conn: usize, how: ClosedHow) {
        let ch = self.net.conns[conn].app.client_ch;
        if self.client_conn[ch] != Some(conn) || self.net.conns[conn].app.client_saw_end {
            return;
        }
        self.net.conns[conn].app.client_saw_end = true;
        let st = &mut self.stats[ch];
        st.closed_at = Some(self.now);
        st.closed_by = Some(how.code().to_string());
        st.last_rx = None;
        let kind = self.net.conns[conn].app.kind;
        self.note(
            "network",
            format!("client's {} connection ends: {}", kind.as_str(), how.code()),
            Basis::Model,
        );
        self.net.conns[conn].open[CLIENT] = false;
        // Read when the client's SessionLost note is drained: the reason
        // the server closed this connection, if it did. A FIN or RST that
        // came from that close carries it; across a dead path (a blackhole,
        // the server still running) the client learns only by its own
        // keep-alive or retransmission limit, later, yet the server's close
        // ended the session (the lab's spice-blackhole: spice-server's
        // timer closed at T+60.0, the client's keep-alive reset at T+76.8).
        // A half-open peer is gone: its server closed nothing.
        let c = &self.net.conns[conn];
        let peer_vanished = c.dead_path || c.lb_forgot || self.net.half_open_all.is_some();
        let told = matches!(how, ClosedHow::Fin | ClosedHow::Reset);
        self.lost_conn_server_close = self.net.conns[conn]
            .app
            .server_close
            .filter(|_| told || !peer_vanished);
        self.client.handle_closed(self.now, ch, how);
    }

    /// An endpoint's socket dies (RST, keepalive or retransmission limit).
    fn abort(&mut self, conn: usize, endpoint: usize, how: ClosedHow) {
        if !self.net.conns[conn].open[endpoint] {
            return;
        }
        self.net.conns[conn].pipes[endpoint] = Pipe::default();
        if endpoint == CLIENT {
            if self.client_stalled.is_some() && how == ClosedHow::Reset {
                self.net.conns[conn].open[CLIENT] = false;
                self.backlog.push_back((conn, Item::Fin));
                return;
            }
            self.client_closed(conn, how);
        } else {
            self.net.conns[conn].open[SERVER] = false;
            let kind = self.net.conns[conn].app.kind;
            self.note(
                "network",
                format!("server's {} socket ends: {}", kind.as_str(), how.code()),
                Basis::Model,
            );
            if let Some(s) = self.net.conns[conn].app.server_ch {
                self.server.handle_peer_closed(s);
            }
        }
    }

    fn dial_step(&mut self, conn: usize, syn: u64) {
        if !self.net.conns[conn].open[CLIENT] {
            return;
        }
        let two_way = Micros(self.net.latency.0.saturating_mul(2));
        if syn > self.net.syn_retries {
            self.queue.push(
                self.now,
                Ev::LinkFailed {
                    conn,
                    why: LinkFailure::ConnectTimeout,
                },
            );
            return;
        }
        if self.net.path_up(self.now, conn) {
            let ev = if self.server_running {
                Ev::Linked { conn }
            } else {
                Ev::LinkFailed {
                    conn,
                    why: LinkFailure::Refused,
                }
            };
            // SYN/SYN-ACK, then link message and reply.
            let after = if self.server_running {
                two_way.0.saturating_mul(2)
            } else {
                two_way.0
            };
            self.queue
                .push(Micros(self.now.0.saturating_add(after)), ev);
        } else {
            let backoff = self.net.syn_backoff(syn);
            self.queue.push(
                Micros(self.now.0.saturating_add(backoff.0)),
                Ev::DialStep { conn, syn: syn + 1 },
            );
        }
    }

    fn linked(&mut self, conn: usize) {
        if !self.net.conns[conn].open[CLIENT] {
            return;
        }
        let kind = self.net.conns[conn].app.kind;
        let reject = if !self.server_running {
            Some(LinkFailure::Refused)
        } else if kind == ChannelKind::Main && self.single_use && self.ticket_consumed {
            Some(LinkFailure::TicketRejected(
                "ticket already used (single-use)",
            ))
        } else if kind == ChannelKind::Main
            && self.ticket_valid_until.is_some_and(|v| self.now >= v)
        {
            Some(LinkFailure::TicketRejected("ticket expired"))
        } else if self.login_refused_from.is_some_and(|t| self.now >= t) {
            // spice-server checks the password on every channel's link and
            // answers a wrong one with PERMISSION_DENIED (protocol-facts
            // §1.7, SS reds.cpp:2009-2065).
            Some(LinkFailure::TicketRejected(
                "PERMISSION_DENIED: the password is refused",
            ))
        } else if kind != ChannelKind::Main && !self.server.is_open(0) && !self.server_has_main() {
            Some(LinkFailure::NoSuchSession)
        } else {
            None
        };
        if let Some(why) = reject {
            self.queue.push(self.now, Ev::LinkFailed { conn, why });
            return;
        }
        if kind == ChannelKind::Main {
            self.ticket_consumed = true;
            self.server_conn.clear();
            self.server = SpiceServer::new(self.server_cfg);
            // Old connections of this client lose their server side.
            for k in self.net.live.clone() {
                if k != conn && self.net.conns[k].open[SERVER] {
                    self.net.conns[k].open[SERVER] = false;
                    self.send_raw(k, SERVER, Item::Fin);
                }
            }
        }
        let s = self.server.open_channel(self.now, kind);
        if self.server_conn.len() <= s {
            self.server_conn.resize(s + 1, usize::MAX);
        }
        self.server_conn[s] = conn;
        let c = &mut self.net.conns[conn];
        c.app.server_ch = Some(s);
        c.established = true;
        c.open[SERVER] = true;
        c.last_rx = [self.now; 2];
        c.lb_last_data = self.now;
        let ch = c.app.client_ch;
        self.stats[ch].last_rx = Some(self.now);
        self.client.handle_linked(self.now, ch);
    }

    fn server_has_main(&self) -> bool {
        (0..self.server_conn.len()).any(|s| {
            self.server.channel_kind(s) == Some(ChannelKind::Main) && self.server.is_open(s)
        })
    }

    fn handle_net_timeout(&mut self) {
        let now = self.now;
        let mut due = self.net.due_timers();
        while let Some((k, timer)) = due.next(&self.net, now) {
            match timer {
                NetTimer::Retransmit(e) => self.retransmit(k, e),
                NetTimer::Keepalive(e) => self.keepalive(k, e),
                NetTimer::LbIdle => self.lb_expire(k),
            }
        }
    }

    fn retransmit(&mut self, conn: usize, from: usize) {
        match self.net.retransmit(self.now, conn, from) {
            Retransmit::GaveUp => {
                let kind = self.net.conns[conn].app.kind;
                self.minor(
                    "network",
                    Minor::Text(format!(
                        "{} gives up retransmitting on {} after {} tries",
                        if from == CLIENT { "client" } else { "server" },
                        kind.as_str(),
                        self.net.retries2
                    )),
                );
                self.abort(conn, from, ClosedHow::RetransmissionTimeout);
            }
            Retransmit::Flushed(at, held) => {
                if from == SERVER {
                    self.sync_server_socket(conn);
                }
                for item in held {
                    self.queue.push(
                        at,
                        Ev::Deliver {
                            conn,
                            to: 1 - from,
                            item,
                        },
                    );
                }
            }
            Retransmit::Backoff => {}
            Retransmit::PeerReset => self.abort(conn, from, ClosedHow::Reset),
            Retransmit::WindowShut => {
                self.minor(
                    "network",
                    Minor::Text(format!(
                        "{}'s window probe on {} answered: the window stays shut",
                        if from == CLIENT { "client" } else { "server" },
                        self.net.conns[conn].app.kind.as_str()
                    )),
                );
            }
        }
    }

    fn keepalive(&mut self, conn: usize, e: usize) {
        match self.net.keepalive_probe(self.now, conn, e) {
            Probe::Answered | Probe::Unanswered => {}
            Probe::PeerClosed => self.abort(conn, e, ClosedHow::Reset),
            Probe::Exhausted => self.abort(conn, e, ClosedHow::KeepaliveTimeout),
        }
    }

    fn lb_expire(&mut self, conn: usize) {
        let Some((idle, expiry)) = self.net.lb_expire(conn) else {
            return;
        };
        let kind = self.net.conns[conn].app.kind;
        self.note(
            "lb",
            format!(
                "load balancer: {} idle for {}, {}",
                kind.as_str(),
                format_duration(idle),
                match expiry {
                    LbExpiry::Silent => "flow dropped silently",
                    LbExpiry::Rst => "RST to both ends",
                    LbExpiry::FinRst => "FIN to the client, RST to the server",
                }
            ),
            Basis::Model,
        );
        let at = self.net.arrival(self.now);
        match expiry {
            LbExpiry::Silent => {}
            LbExpiry::Rst => {
                for e in [CLIENT, SERVER] {
                    self.queue.push(at, Ev::Reset { conn, endpoint: e });
                }
            }
            LbExpiry::FinRst => {
                let fin = Item::Fin;
                self.queue.push(
                    at,
                    Ev::Deliver {
                        conn,
                        to: CLIENT,
                        item: fin,
                    },
                );
                self.queue.push(
                    at,
                    Ev::Reset {
                        conn,
                        endpoint: SERVER,
                    },
                );
            }
        }
    }

    // ---- verdict ----

    fn finish(mut self) -> Verdict {
        let end = self.now.max(self.horizon.min(self.now.max(self.horizon)));
        let phase = self.client.phase();
        let attempted = self.reconnects.iter().any(|r| r.started_at.is_some());
        let outcome = match phase {
            Phase::Up | Phase::Closed => Outcome::Survived,
            // No session ever came up and the client stopped trying: what
            // ended it was a refusal.
            Phase::GaveUp if self.sessions == 0 => Outcome::Refused,
            Phase::GaveUp if attempted => Outcome::DeadSession,
            _ => Outcome::Disconnected,
        };
        let (at, cause, channel) = match (&self.outage, outcome) {
            // Ended as the user asked: no fault, but no longer running.
            (_, Outcome::Survived) => match self.user_closed {
                Some(t) => (Some(secs(t)), Some("client.closed".to_string()), None),
                None => (None, None, None),
            },
            (Some(o), _) => (
                Some(secs(o.at)),
                Some(o.cause.clone()),
                Some(o.channel.as_str().to_string()),
            ),
            (None, _) => (Some(secs(end)), Some("never_connected".into()), None),
        };
        // The chain: every major entry, and the recent low-level ones that
        // led to the end.
        let cutoff = self.outage.as_ref().map_or(end, |o| o.at);
        let window = Micros(cutoff.0.saturating_sub(120_000_000));
        let mut chain: Vec<(Micros, u64, ChainEntry)> = self.rec.major.clone();
        if outcome != Outcome::Survived {
            chain.extend(
                self.rec
                    .minor
                    .iter()
                    .filter(|(t, _, _, _)| *t >= window && *t <= cutoff)
                    .map(|(t, seq, actor, m)| {
                        let e = ChainEntry {
                            at: secs(*t),
                            actor,
                            what: m.render(),
                            basis: Basis::Model,
                        };
                        (*t, *seq, e)
                    }),
            );
        }
        chain.sort_by_key(|(t, seq, _)| (*t, *seq));
        let channels = (0..self.client.channel_count())
            .map(|i| {
                let st = &mut self.stats[i];
                if let Some(last) = st.last_rx {
                    st.longest_silence = st.longest_silence.max(end.saturating_sub(last));
                }
                ChannelSummary {
                    channel: self.client.channel_kind(i).as_str().to_string(),
                    generations: st.generations,
                    messages_received: st.rx,
                    pings_received: st.pings,
                    pongs_sent: st.pongs,
                    keepalives_sent: st.keepalives,
                    longest_silence: secs(st.longest_silence),
                    last_closed_at: st.closed_at.map(secs),
                    last_closed_by: st.closed_by.clone(),
                }
            })
            .collect();
        Verdict {
            outcome,
            at,
            cause,
            channel,
            violations: self.violations,
            profile: self.profile,
            variant: self.variant,
            constants: self.constants,
            input: self.input,
            horizon: secs(self.horizon),
            environment: self.environment,
            sessions: self.sessions,
            chain: chain.into_iter().map(|(_, _, e)| e).collect(),
            reconnects: self.reconnects,
            leases: Vec::new(),
            channels,
            steps: self.steps,
            capture: None,
        }
    }
}

/// What is due next in a SPICE run: a queued event (first at equal
/// times), then the client's, the server's and the network's deadlines.
enum Due {
    Queued(Ev),
    Client,
    Server,
    Net,
}

/// The simulation as the clock drives it (private, as its events are).
struct Loop<'a>(&'a mut Sim);

impl clock::Stepper for Loop<'_> {
    type Ev = Due;

    fn next_event(&mut self) -> Option<(Micros, Due)> {
        if self.0.halted {
            return None;
        }
        // Queued events win ties, and nothing is due before now: one
        // queued for this instant goes next without asking the actors.
        if self.0.queue.peek_time() == Some(self.0.now) {
            return self.0.queue.pop().map(|(at, ev)| (at, Due::Queued(ev)));
        }
        let client_t = if self.0.client_stalled.is_some() {
            None
        } else {
            self.0.client.poll_timeout()
        };
        let server_t = if self.0.server_running {
            self.0.server.poll_timeout()
        } else {
            None
        };
        // A deadline that passed while its actor could not act (a
        // stalled client) is due now, not in the past.
        let now = self.0.now;
        let (client_t, server_t) = (client_t.map(|t| t.max(now)), server_t.map(|t| t.max(now)));
        let queue_t = self.0.queue.peek_time();
        let net_t = self.0.net.next_deadline().map(|t| t.max(now));
        // Written out: the array-iterator form compiled to a copy
        // through the stack on the hottest line of the model.
        let earliest = |a: Option<Micros>, b: Option<Micros>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        let next = earliest(earliest(queue_t, client_t), earliest(server_t, net_t))?;
        if next < self.0.now {
            self.0.violation(
                "model.time_backwards",
                None,
                format!("{next} < {}", self.0.now),
            );
            self.0.halted = true;
            return None;
        }
        let due = if queue_t == Some(next) {
            Due::Queued(self.0.queue.pop()?.1)
        } else if client_t == Some(next) {
            Due::Client
        } else if server_t == Some(next) {
            Due::Server
        } else {
            Due::Net
        };
        Some((next, due))
    }

    fn step(&mut self, now: Micros, due: Due) {
        self.0.now = now;
        match due {
            Due::Queued(ev) => self.0.dispatch(ev),
            Due::Client => self.0.client.handle_timeout(now),
            Due::Server => self.0.server.handle_timeout(now),
            Due::Net => self.0.handle_net_timeout(),
        }
        self.0.drain();
    }
}

fn fmt_secs(t: Micros) -> String {
    crate::verdict::t_plus(secs(t))
}

/// Constants that are timer periods and so may not be zero (keepalive idle
/// and timeouts of `0s` mean "off" and are not listed).
const POSITIVE_PERIODS: &[&str] = &[
    "ping_interval",
    "long_ping_interval",
    "ping_retry",
    "connectivity_timeout",
    "tcp_rto_min",
    "tcp_rto_max",
    "client_tcp_keepalive_interval",
    "server_tcp_keepalive_interval",
    "idle_keepalive_after",
];

/// Runs a SPICE profile's client on the simulation with `constants`.
pub fn run_spice(
    profile: &'static Profile,
    variant: &'static Variant,
    constants: &Constants,
    timeline: &Timeline,
    input: &str,
) -> Result<Verdict, String> {
    // Periods of zero would fire forever at one instant.
    for name in POSITIVE_PERIODS {
        if constants.duration(name) == Micros::ZERO {
            return Err(format!("{name} must be positive"));
        }
    }
    Ok(Sim::new(profile, variant, constants, timeline, input).run())
}
