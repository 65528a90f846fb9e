//! The network between a client's endpoints and the environment's: the
//! kernel's TCP behaviour that decides how connections end, and the path
//! and load balancer between them. The actors above it say what they send;
//! this says when it arrives, or when a socket gives up.
//!
//! Per connection and direction: latency; data sent while the path is
//! down stays unacknowledged and is retransmitted on the Linux RTO
//! schedule (`tcp_rto_min` 200 ms doubling to `tcp_rto_max` 120 s, LX
//! tcp.h) until `tcp_retries2` retransmissions, then the sender's socket
//! aborts (LX tcp_write_timeout); keepalive probes run only on an idle
//! established socket with nothing unacknowledged, and abort it after
//! idle + interval × count without an answer (LX tcp_keepalive_timer). A
//! frozen process's kernel still ACKs and answers probes, so only the path
//! or a closed socket stops them. A load balancer's idle timer is reset by
//! application data only.
//!
//! Flow control: a receiving process that stops reading leaves what
//! arrives in its kernel's receive buffer; once that holds a window's
//! worth the window is zero, the sender keeps what follows and probes the
//! window on the RTO backoff. A kernel that answers those probes keeps the
//! connection open however long the window stays shut (RFC 1122
//! 4.2.2.17); unanswered ones count toward `tcp_retries2` (LX
//! tcp_probe_timer). Once the sender holds a send buffer's worth, its
//! writes block (EAGAIN), which is what an application above can see.

use super::constants::{Constants, Value};
use crate::timeline::Micros;
use crate::timeline::synthetic::{LbExpiry, ScriptEvent, Timeline};
use std::collections::VecDeque;
use std::ops::{Index, IndexMut};

/// Defines the kernel's TCP constants every profile's network runs with.
pub fn define_tcp(c: &mut Constants) {
    use Value::*;
    c.define(
        "tcp_rto_min",
        Duration(Micros(200_000)),
        "LX tcp.h TCP_RTO_MIN",
    );
    c.define(
        "tcp_rto_max",
        Duration(Micros(120_000_000)),
        "LX tcp.h TCP_RTO_MAX",
    );
    c.define("tcp_retries2", Count(15), "LX ip-sysctl.rst tcp_retries2");
    c.define(
        "tcp_syn_retries",
        Count(6),
        "LX ip-sysctl.rst tcp_syn_retries",
    );
    // No peer modelled sets SO_RCVBUF or SO_SNDBUF (spice-server's
    // net-utils.c sets keep-alive, TCP_NODELAY and O_NONBLOCK; spice-gtk
    // keep-alive only, protocol-facts §1.17), and a receive buffer grows
    // only while its process reads (LX tcp_rcv_space_adjust), so a reader
    // that stopped keeps the initial one.
    c.define(
        "tcp_rcv_window",
        Count(65_535),
        "LX ip-sysctl.rst tcp_rmem: default 131072 bytes, 'results in initial window of 65535'",
    );
    c.define(
        "tcp_snd_buf",
        Count(16_384),
        "LX ip-sysctl.rst tcp_wmem: default 16K, the send buffer before autotuning",
    );
}

/// The spans (from, to) under way at `t`.
#[inline]
fn covering(spans: &[(Micros, Micros)], t: Micros) -> impl Iterator<Item = &(Micros, Micros)> {
    spans.iter().filter(move |&&(a, b)| a <= t && t < b)
}

/// The two endpoints of a connection, indexing its per-side state.
pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

/// TCP keep-alive as a socket sets it (SO_KEEPALIVE with TCP_KEEPIDLE,
/// TCP_KEEPINTVL, TCP_KEEPCNT); a zero idle is keep-alive off.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    pub idle: Micros,
    pub interval: Micros,
    pub count: u64,
}

impl Keepalive {
    /// A socket without SO_KEEPALIVE.
    pub const OFF: Keepalive = Keepalive {
        idle: Micros::ZERO,
        interval: Micros::ZERO,
        count: 0,
    };
}

/// One direction's send queue: data held while the path is down or the
/// receiver's window is shut.
#[derive(Clone, Debug)]
pub struct Pipe<I> {
    pub held: VecDeque<I>,
    /// The bytes of `held`.
    pub bytes: u64,
    /// Next retransmission or window probe (or the abort, after
    /// `tcp_retries2` unanswered).
    pub retry_at: Option<Micros>,
    /// Unanswered in a row: an answered window probe starts over.
    pub retries: u64,
    /// Sent since the timer started: each doubles the wait for the next.
    pub backoff: u64,
}

impl<I> Default for Pipe<I> {
    fn default() -> Self {
        Pipe {
            held: VecDeque::new(),
            bytes: 0,
            retry_at: None,
            retries: 0,
            backoff: 0,
        }
    }
}

/// What crosses a connection: application data resets a load balancer's
/// idle timer; a FIN does not. `size` is what it takes of the receiver's
/// buffer.
pub trait Segment {
    fn is_data(&self) -> bool;
    fn size(&self) -> u64;
}

/// What a stream profile sends when its items need no more telling apart
/// than this: every frame is application data to a load balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Application messages (display updates, input, echoes).
    Data,
    /// A liveness ping or its pong.
    Ping,
}

impl Segment for Frame {
    fn is_data(&self) -> bool {
        true
    }
    /// The profiles that send frames model no reader that stops reading,
    /// so nothing of theirs is counted against a window.
    fn size(&self) -> u64 {
        0
    }
}

/// What became of a segment sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent<I> {
    /// It arrives at the peer then.
    Arrives(Micros, I),
    /// The path is down (or older data waits): held for retransmission;
    /// `first` when it started the sender's retransmission timer.
    Held { first: bool },
}

/// What a retransmission timer did.
#[derive(Debug, PartialEq, Eq)]
pub enum Retransmit<I> {
    /// `tcp_retries2` retransmissions went unanswered: the socket aborts.
    GaveUp,
    /// The path is back: everything held arrives then, in order.
    Flushed(Micros, VecDeque<I>),
    /// Still dead: the next retransmission is one RTO later.
    Backoff,
    /// The peer's kernel answered a window probe and its window is still
    /// zero: the connection stays, the next probe is one RTO later.
    WindowShut,
    /// The window probe found the peer's socket closed: RST.
    PeerReset,
}

/// What a keep-alive probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Answered,
    /// The peer's socket is closed: its kernel answers RST.
    PeerClosed,
    Unanswered,
    /// The last probe went unanswered: the socket aborts.
    Exhausted,
}

/// A connection's network timers, in the order the loop runs them when
/// several are due at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetTimer {
    Retransmit(usize),
    Keepalive(usize),
    LbIdle,
}

impl NetTimer {
    pub const ORDER: [NetTimer; 5] = [
        NetTimer::Retransmit(CLIENT),
        NetTimer::Keepalive(CLIENT),
        NetTimer::Retransmit(SERVER),
        NetTimer::Keepalive(SERVER),
        NetTimer::LbIdle,
    ];
}

/// A walk over the network's due timers: see [`Net::due_timers`].
pub struct DueTimers {
    pos: usize,
    end: usize,
}

impl DueTimers {
    /// The next timer due at `now`: its connection and which timer.
    pub fn next<A, I>(&mut self, net: &Net<A, I>, now: Micros) -> Option<(usize, NetTimer)> {
        let n = NetTimer::ORDER.len();
        while self.pos < self.end {
            let (i, t) = (self.pos / n, NetTimer::ORDER[self.pos % n]);
            self.pos += 1;
            let &k = net.live.get(i)?;
            if net.is_due(k, t, now) {
                return Some((k, t));
            }
        }
        None
    }
}

/// One TCP connection: its two sockets, what each side holds unacknowledged,
/// and `app`, what the actors above know of it.
#[derive(Clone, Debug)]
pub struct Conn<A, I> {
    pub app: A,
    /// Endpoint sockets still open: [client, server].
    pub open: [bool; 2],
    /// Past the handshake: keep-alive and the load balancer's timer run.
    pub established: bool,
    /// Indexed by sending endpoint.
    pub pipes: [Pipe<I>; 2],
    /// Bytes in each endpoint's receive buffer that its process has not
    /// read (it stopped reading), by receiving endpoint.
    pub unread: [u64; 2],
    /// Last segment (data, ACK or probe answer) each endpoint received.
    pub last_rx: [Micros; 2],
    pub probes: [u64; 2],
    pub lb_last_data: Micros,
    /// The peer vanished without a word (half-open): nothing it sent or
    /// is sent reaches it, yet a load balancer in front of it still times
    /// the flow.
    pub dead_path: bool,
    /// The load balancer forgot this flow: nothing crosses it any more.
    pub lb_forgot: bool,
}

impl<A, I> Conn<A, I> {
    /// A connection the client is dialling at `now`.
    pub fn dialling(app: A, now: Micros) -> Self {
        Conn {
            app,
            open: [true, false],
            established: false,
            pipes: [Pipe::default(), Pipe::default()],
            unread: [0; 2],
            last_rx: [now; 2],
            probes: [0; 2],
            lb_last_data: now,
            dead_path: false,
            lb_forgot: false,
        }
    }

    /// Either socket open, or data still being retransmitted.
    fn lives(&self) -> bool {
        self.open[CLIENT] || self.open[SERVER] || self.pipes.iter().any(|p| p.retry_at.is_some())
    }
}

/// The connections, each with its next network deadline (retransmission,
/// keepalive, load balancer expiry) cached. Every mutable access marks a
/// connection stale, so the cache cannot miss a change; the loop asks for
/// the earliest deadline every step and most steps touch one connection.
pub struct Conns<A, I> {
    list: Vec<Conn<A, I>>,
    due: Vec<Option<Micros>>,
    is_stale: Vec<bool>,
    stale: Vec<usize>,
}

impl<A, I> Default for Conns<A, I> {
    fn default() -> Self {
        Conns {
            list: Vec::new(),
            due: Vec::new(),
            is_stale: Vec::new(),
            stale: Vec::new(),
        }
    }
}

impl<A, I> Conns<A, I> {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn push(&mut self, c: Conn<A, I>) {
        self.list.push(c);
        self.due.push(None);
        self.is_stale.push(false);
        self.mark(self.list.len() - 1);
    }

    fn mark(&mut self, k: usize) {
        if !self.is_stale[k] {
            self.is_stale[k] = true;
            self.stale.push(k);
        }
    }
}

impl<A, I> Index<usize> for Conns<A, I> {
    type Output = Conn<A, I>;
    fn index(&self, k: usize) -> &Conn<A, I> {
        &self.list[k]
    }
}

impl<A, I> IndexMut<usize> for Conns<A, I> {
    fn index_mut(&mut self, k: usize) -> &mut Conn<A, I> {
        self.mark(k);
        &mut self.list[k]
    }
}

/// The network: its constants, the path's faults, and every connection.
pub struct Net<A, I> {
    pub latency: Micros,
    pub rto_min: Micros,
    pub rto_max: Micros,
    pub retries2: u64,
    pub syn_retries: u64,
    /// The receive window a reader's buffer offers, and the send buffer a
    /// writer fills before its writes block.
    pub rcv_window: u64,
    pub snd_buf: u64,
    pub client_ka: Keepalive,
    pub server_ka: Keepalive,
    /// A load balancer's idle timeout and what it does on expiry.
    pub lb: Option<(Micros, LbExpiry)>,
    /// Spans in which nothing crosses the path.
    pub blackholes: Vec<(Micros, Micros)>,
    /// Spans in which a relay takes everything and forwards it only at
    /// their end: senders see it acknowledged and their probes answered.
    pub holds: Vec<(Micros, Micros)>,
    /// From then on every peer is gone without a word.
    pub half_open_all: Option<Micros>,
    pub conns: Conns<A, I>,
    /// Connections with at least one open endpoint or data in flight.
    pub live: Vec<usize>,
}

impl<A, I> Net<A, I> {
    /// A network for one profile's run: the kernel's TCP constants (see
    /// [`define_tcp`]), the timeline's path and load balancer, and the
    /// keep-alive each side sets on its sockets.
    pub fn new(c: &Constants, t: &Timeline, client_ka: Keepalive, server_ka: Keepalive) -> Self {
        let mut blackholes = Vec::new();
        let mut holds = Vec::new();
        let mut half_open_all = None::<Micros>;
        for e in &t.events {
            match e {
                ScriptEvent::Blackhole { from, to } => blackholes.push((from.0, to.0)),
                ScriptEvent::RelayHolds { from, to } => holds.push((from.0, to.0)),
                ScriptEvent::HalfOpen { at, channel: None } => {
                    half_open_all = Some(half_open_all.map_or(at.0, |h| h.min(at.0)))
                }
                _ => {}
            }
        }
        // A profile may make the load balancer's idle timeout a constant
        // (to sweep it); otherwise the timeline's stands.
        let lb_idle = match c.value("lb_idle_timeout") {
            Some(_) => c.duration("lb_idle_timeout"),
            None => t.lb.as_ref().map_or(Micros::ZERO, |l| l.idle_timeout.0),
        };
        let lb = (lb_idle > Micros::ZERO).then(|| {
            (
                lb_idle,
                t.lb.as_ref().map_or(LbExpiry::Rst, |l| l.on_expiry),
            )
        });
        Net {
            latency: c.duration("latency"),
            rto_min: c.duration("tcp_rto_min").max(Micros(1)),
            rto_max: c.duration("tcp_rto_max").max(Micros(1)),
            retries2: c.count("tcp_retries2"),
            syn_retries: c.count("tcp_syn_retries").min(30),
            rcv_window: c.count("tcp_rcv_window"),
            snd_buf: c.count("tcp_snd_buf"),
            client_ka,
            server_ka,
            lb,
            blackholes,
            holds,
            half_open_all,
            conns: Conns::default(),
            live: Vec::new(),
        }
    }

    /// When the relay holding what is sent at `t` lets it go, if one is.
    #[inline]
    pub fn held_until(&self, t: Micros) -> Option<Micros> {
        covering(&self.holds, t).map(|&(_, b)| b).max()
    }

    /// A connection already past its handshake at `now` (the profiles
    /// that do not model the dial).
    pub fn open_established(&mut self, app: A, now: Micros) -> usize {
        let mut c = Conn::dialling(app, now);
        c.open = [true; 2];
        c.established = true;
        let id = self.conns.len();
        self.conns.push(c);
        self.live.push(id);
        id
    }

    /// Both sockets closed: nothing of the connection is timed any more.
    pub fn close(&mut self, conn: usize) {
        let c = &mut self.conns[conn];
        c.open = [false; 2];
        c.pipes = [Pipe::default(), Pipe::default()];
        c.unread = [0; 2];
    }

    /// Whether the path itself carries packets at `t` (no blackhole, no
    /// vanished peer), whatever became of one connection's flow.
    #[inline]
    pub fn path_clear(&self, t: Micros) -> bool {
        self.half_open_all.is_none_or(|h| t < h) && covering(&self.blackholes, t).next().is_none()
    }

    /// When the outage under way at `t` began: its blackhole's start, or
    /// when the peers vanished.
    pub fn outage_start(&self, t: Micros) -> Option<Micros> {
        covering(&self.blackholes, t)
            .map(|&(a, _)| a)
            .min()
            .or(self.half_open_all.filter(|&h| h <= t))
    }

    /// Whether a segment sent on `conn` at `t` arrives.
    #[inline]
    pub fn path_up(&self, t: Micros, conn: usize) -> bool {
        let c = &self.conns[conn];
        !c.dead_path && !c.lb_forgot && self.path_clear(t)
    }

    /// The `n`th retransmission timeout: `tcp_rto_min` doubling, capped.
    pub fn rto(&self, n: u64) -> Micros {
        let shift = n.saturating_sub(1).min(40);
        Micros(
            self.rto_min
                .0
                .saturating_mul(1u64 << shift)
                .min(self.rto_max.0),
        )
    }

    /// When a segment sent now arrives.
    #[inline]
    pub fn arrival(&self, now: Micros) -> Micros {
        Micros(now.0.saturating_add(self.latency.0))
    }

    pub fn keepalive_for(&self, endpoint: usize) -> Keepalive {
        if endpoint == CLIENT {
            self.client_ka
        } else {
            self.server_ka
        }
    }

    /// Next keepalive action of an endpoint: a probe, or the abort.
    #[inline]
    pub fn keepalive_due(&self, conn: &Conn<A, I>, e: usize) -> Option<Micros> {
        // Keepalive runs on established connections only.
        if !conn.open[e] || conn.pipes[e].retry_at.is_some() || !conn.established {
            return None;
        }
        let ka = self.keepalive_for(e);
        if ka.idle == Micros::ZERO {
            return None;
        }
        Some(Micros(
            conn.last_rx[e]
                .0
                .saturating_add(ka.idle.0)
                .saturating_add(ka.interval.0.saturating_mul(conn.probes[e])),
        ))
    }

    /// When the load balancer forgets an idle flow.
    #[inline]
    pub fn lb_due(&self, conn: &Conn<A, I>) -> Option<Micros> {
        let (idle, _) = self.lb?;
        (!conn.lb_forgot && (conn.open[CLIENT] || conn.open[SERVER]) && conn.established)
            .then(|| Micros(conn.lb_last_data.0.saturating_add(idle.0)))
    }

    /// A connection's next network deadline.
    fn conn_deadline(&self, c: &Conn<A, I>) -> Option<Micros> {
        let mut best: Option<Micros> = None;
        for e in [CLIENT, SERVER] {
            for t in [c.pipes[e].retry_at, self.keepalive_due(c, e)]
                .into_iter()
                .flatten()
            {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        if let Some(t) = self.lb_due(c) {
            best = Some(best.map_or(t, |b| b.min(t)));
        }
        best
    }

    /// The `n`th SYN retransmission's wait: 1 s doubling (TCP_TIMEOUT_INIT,
    /// LX tcp_connect and inet_csk_reset_xmit_timer).
    pub fn syn_backoff(&self, n: u64) -> Micros {
        Micros(1_000_000u64 << n.min(30))
    }

    /// How long a sender retransmits into a dead path before its socket
    /// aborts: every RTO up to `tcp_retries2` (924.6 s at Linux defaults,
    /// protocol-facts §4.5).
    pub fn give_up_after(&self) -> Micros {
        Micros(
            (1..=self.retries2.saturating_add(1))
                .map(|n| self.rto(n).0)
                .fold(0u64, u64::saturating_add),
        )
    }

    /// Whether the receiver `to` still offers window: its process reads,
    /// or what it left unread is under a window's worth.
    #[inline]
    pub fn window_open(&self, conn: usize, to: usize) -> bool {
        self.conns[conn].unread[to] < self.rcv_window
    }

    /// Bytes `from`'s socket holds that its peer has not taken: what waits
    /// for the path or the window, and what overran the last window.
    pub fn unacked_bytes(&self, conn: usize, from: usize) -> u64 {
        let c = &self.conns[conn];
        c.pipes[from]
            .bytes
            .saturating_add(c.unread[1 - from].saturating_sub(self.rcv_window))
    }

    /// Whether `from`'s socket holds anything unacknowledged (SIOCOUTQ > 0).
    pub fn outq_busy(&self, conn: usize, from: usize) -> bool {
        !self.conns[conn].pipes[from].held.is_empty() || self.unacked_bytes(conn, from) > 0
    }

    /// Whether `from`'s writes block (EAGAIN): its send buffer is full of
    /// what the peer has not taken.
    pub fn write_blocked(&self, conn: usize, from: usize) -> bool {
        self.unacked_bytes(conn, from) >= self.snd_buf
    }

    /// `from` sends `item` at `now`: it arrives after the latency, or the
    /// path is down, the receiver's window shut or older data waits, and it
    /// is held for retransmission (or the window probe). A load balancer's
    /// idle timer is reset by data it forwards.
    #[inline]
    pub fn send(&mut self, now: Micros, conn: usize, from: usize, item: I) -> Sent<I>
    where
        I: Segment,
    {
        let up = self.path_up(now, conn) && self.window_open(conn, 1 - from);
        if up && item.is_data() {
            self.conns[conn].lb_last_data = now;
        }
        if up && self.conns[conn].pipes[from].held.is_empty() {
            if let Some(end) = self.held_until(now) {
                return self.taken_by_relay(now, end, conn, from, item);
            }
            return Sent::Arrives(self.arrival(now), item);
        }
        self.hold(now, conn, from, item)
    }

    /// A holding relay's kernel ACKs `item` now; it goes on at `end`.
    #[cold]
    fn taken_by_relay(
        &mut self,
        now: Micros,
        end: Micros,
        conn: usize,
        from: usize,
        item: I,
    ) -> Sent<I> {
        let c = &mut self.conns[conn];
        c.last_rx[from] = now;
        c.probes[from] = 0;
        Sent::Arrives(self.arrival(end), item)
    }

    /// `item` waits in `from`'s socket for the path or the window; kept
    /// out of line so the hot send path stays small.
    #[cold]
    fn hold(&mut self, now: Micros, conn: usize, from: usize, item: I) -> Sent<I>
    where
        I: Segment,
    {
        let first_rto = self.rto(1);
        let p = &mut self.conns[conn].pipes[from];
        p.bytes = p.bytes.saturating_add(item.size());
        p.held.push_back(item);
        let first = p.retry_at.is_none();
        if first {
            p.retry_at = Some(Micros(now.0.saturating_add(first_rto.0)));
            p.retries = 0;
            p.backoff = 0;
        }
        Sent::Held { first }
    }

    /// What reached endpoint `e` stays in its receive buffer: its process
    /// is not reading. The window shrinks by it.
    pub fn left_unread(&mut self, conn: usize, e: usize, bytes: u64) {
        let c = &mut self.conns[conn];
        c.unread[e] = c.unread[e].saturating_add(bytes);
    }

    /// Endpoint `e`'s process reads everything buffered: its window opens
    /// and the update reaches the peer, whose held data goes out then, if
    /// the path carries it.
    pub fn read_all(&mut self, now: Micros, conn: usize, e: usize) -> Option<(Micros, VecDeque<I>)>
    where
        I: Segment,
    {
        self.conns[conn].unread[e] = 0;
        let from = 1 - e;
        if self.conns[conn].pipes[from].held.is_empty() || !self.path_up(now, conn) {
            return None;
        }
        Some(self.flush(now, conn, from))
    }

    fn flush(&mut self, now: Micros, conn: usize, from: usize) -> (Micros, VecDeque<I>)
    where
        I: Segment,
    {
        let held = std::mem::take(&mut self.conns[conn].pipes[from].held);
        self.conns[conn].pipes[from] = Pipe::default();
        if held.iter().any(Segment::is_data) {
            self.conns[conn].lb_last_data = now;
        }
        (self.arrival(now), held)
    }

    /// Sends `item`; when it gets through at once, its ACK comes back and
    /// both sockets heard something. False when the network holds it.
    #[inline]
    pub fn transmit(&mut self, now: Micros, conn: usize, from: usize, item: I) -> bool
    where
        I: Segment,
    {
        match self.send(now, conn, from, item) {
            Sent::Arrives(..) => {
                self.delivered(now, conn);
                true
            }
            Sent::Held { .. } => false,
        }
    }

    /// The connection in `link`, if any, is closed and forgotten.
    pub fn close_link(&mut self, link: &mut Option<usize>) {
        if let Some(k) = link.take() {
            self.close(k);
        }
    }

    /// A segment reached an open endpoint; its ACK reaches the sender
    /// (approximated as now). Either side's keep-alive starts over.
    #[inline]
    pub fn delivered(&mut self, now: Micros, conn: usize) {
        let c = &mut self.conns[conn];
        c.last_rx = [now; 2];
        c.probes = [0; 2];
    }

    /// `from`'s retransmission (or window-probe) timer fired: give up after
    /// `tcp_retries2` unanswered, send everything held if the path is back
    /// and the window open, or back off; a peer whose kernel answers with
    /// a shut window keeps the connection (RFC 1122 4.2.2.17).
    pub fn retransmit(&mut self, now: Micros, conn: usize, from: usize) -> Retransmit<I>
    where
        I: Segment,
    {
        let p = &self.conns[conn].pipes[from];
        if p.retries >= self.retries2 {
            self.conns[conn].pipes[from] = Pipe::default();
            return Retransmit::GaveUp;
        }
        let next = self.rto(p.backoff + 2);
        let answered = self.path_up(now, conn);
        let to = 1 - from;
        if answered && self.window_open(conn, to) {
            let (at, held) = self.flush(now, conn, from);
            return Retransmit::Flushed(at, held);
        }
        if answered && !self.conns[conn].open[to] {
            // The window never opens for a closed socket: the probe meets
            // its kernel's RST.
            self.conns[conn].pipes[from] = Pipe::default();
            return Retransmit::PeerReset;
        }
        let p = &mut self.conns[conn].pipes[from];
        p.backoff += 1;
        p.retry_at = Some(Micros(now.0.saturating_add(next.0)));
        if answered {
            p.retries = 0;
            self.delivered(now, conn);
            return Retransmit::WindowShut;
        }
        p.retries += 1;
        Retransmit::Backoff
    }

    /// Endpoint `e`'s keep-alive timer fired: a probe goes out. The peer's
    /// kernel answers it whatever its process does; a closed peer answers
    /// RST; across a dead path it counts, and after `count` unanswered
    /// probes the socket aborts (LX tcp_keepalive_timer).
    pub fn keepalive_probe(&mut self, now: Micros, conn: usize, e: usize) -> Probe {
        let ka = self.keepalive_for(e);
        if self.path_up(now, conn) {
            // A holding relay's own socket answers, whatever the far end did.
            if !self.conns[conn].open[1 - e] && self.held_until(now).is_none() {
                return Probe::PeerClosed;
            }
            let c = &mut self.conns[conn];
            c.last_rx[e] = now;
            c.probes[e] = 0;
            return Probe::Answered;
        }
        if self.conns[conn].probes[e] >= ka.count {
            return Probe::Exhausted;
        }
        self.conns[conn].probes[e] += 1;
        Probe::Unanswered
    }

    /// The load balancer forgets an idle flow: from now on nothing of it
    /// crosses. Returns its idle timeout and what it does to the ends.
    pub fn lb_expire(&mut self, conn: usize) -> Option<(Micros, LbExpiry)> {
        let lb = self.lb?;
        self.conns[conn].lb_forgot = true;
        Some(lb)
    }

    /// The network timers due now, visited lazily (each checked when the
    /// walk reaches it, after the earlier ones ran) over the connections
    /// live when the walk starts, each in [`NetTimer::ORDER`].
    pub fn due_timers(&self) -> DueTimers {
        DueTimers {
            pos: 0,
            end: self.live.len() * NetTimer::ORDER.len(),
        }
    }

    /// Whether `timer` of connection `k` is due at `now`.
    #[inline]
    pub fn is_due(&self, k: usize, timer: NetTimer, now: Micros) -> bool {
        let c = &self.conns[k];
        let due = match timer {
            NetTimer::Retransmit(e) => c.pipes[e].retry_at,
            NetTimer::Keepalive(e) => self.keepalive_due(c, e),
            NetTimer::LbIdle => self.lb_due(c),
        };
        due.is_some_and(|t| t <= now)
    }

    /// The network's `poll_timeout`: its earliest deadline over every live
    /// connection (connections that ended leave the live set here).
    pub fn next_deadline(&mut self) -> Option<Micros> {
        if !self.conns.stale.is_empty() {
            let mut stale = std::mem::take(&mut self.conns.stale);
            let mut any_ended = false;
            for &k in &stale {
                let c = &self.conns.list[k];
                any_ended |= !c.lives();
                self.conns.due[k] = self.conn_deadline(c);
                self.conns.is_stale[k] = false;
            }
            stale.clear();
            self.conns.stale = stale;
            // Only a changed connection can have left the live set.
            if any_ended {
                let conns = &self.conns;
                self.live.retain(|&k| conns[k].lives());
            }
        }
        debug_assert!(
            (0..self.conns.len())
                .all(|k| self.conns.due[k] == self.conn_deadline(&self.conns.list[k]))
        );
        self.live.iter().filter_map(|&k| self.conns.due[k]).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Seg {
        Data(u8),
        Fin,
        /// Application data of this many kilobytes.
        Kb(u64),
    }
    impl Segment for Seg {
        fn is_data(&self) -> bool {
            !matches!(self, Seg::Fin)
        }
        fn size(&self) -> u64 {
            match self {
                Seg::Kb(k) => k * 1000,
                _ => 0,
            }
        }
    }

    fn s(n: u64) -> Micros {
        Micros(n * 1_000_000)
    }
    fn ms(n: u64) -> Micros {
        Micros(n * 1_000)
    }

    /// Linux defaults: 200 ms RTO doubling to 120 s, 15 retries; keep-alive
    /// 30 s idle, 10 s apart, 3 probes; a blackhole 10 s..2000 s.
    fn net() -> Net<(), Seg> {
        let ka = Keepalive {
            idle: s(30),
            interval: s(10),
            count: 3,
        };
        let mut n = Net {
            latency: ms(5),
            rto_min: ms(200),
            rto_max: s(120),
            retries2: 15,
            syn_retries: 6,
            rcv_window: 65_535,
            snd_buf: 16_384,
            client_ka: ka,
            server_ka: ka,
            lb: Some((s(60), LbExpiry::Rst)),
            blackholes: vec![(s(10), s(2000))],
            holds: Vec::new(),
            half_open_all: None,
            conns: Conns::default(),
            live: Vec::new(),
        };
        let mut c = Conn::dialling((), Micros::ZERO);
        c.open = [true; 2];
        c.established = true;
        n.conns.push(c);
        n.live.push(0);
        n
    }

    #[test]
    fn the_kernel_gives_up_after_the_rto_schedule_sums_to_924_6_s() {
        assert_eq!(net().give_up_after(), ms(924_600));
        assert_eq!(net().syn_backoff(0), s(1));
        assert_eq!(net().syn_backoff(3), s(8));
    }

    #[test]
    fn data_into_a_dead_path_is_held_retransmitted_and_the_socket_gives_up() {
        let mut n = net();
        assert_eq!(
            n.send(s(1), 0, CLIENT, Seg::Data(1)),
            Sent::Arrives(ms(1005), Seg::Data(1))
        );
        assert_eq!(n.conns[0].lb_last_data, s(1));
        assert_eq!(
            n.send(s(20), 0, CLIENT, Seg::Data(2)),
            Sent::Held { first: true }
        );
        assert_eq!(
            n.send(s(21), 0, CLIENT, Seg::Fin),
            Sent::Held { first: false }
        );
        assert_eq!(n.conns[0].lb_last_data, s(1), "nothing crossed the path");
        // Held data stops keep-alive: the retransmission timer decides.
        assert_eq!(n.keepalive_due(&n.conns[0], CLIENT), None);
        let mut t = n.conns[0].pipes[CLIENT].retry_at.unwrap();
        let mut backoffs = 0;
        loop {
            assert!(n.is_due(0, NetTimer::Retransmit(CLIENT), t));
            match n.retransmit(t, 0, CLIENT) {
                Retransmit::Backoff => backoffs += 1,
                Retransmit::GaveUp => break,
                r => panic!("the path is dead until 2000 s: {r:?}"),
            }
            t = n.conns[0].pipes[CLIENT].retry_at.unwrap();
        }
        assert_eq!(backoffs, 15);
        assert_eq!(t, Micros(s(20).0 + n.give_up_after().0));
        assert!(n.conns[0].pipes[CLIENT].held.is_empty());
    }

    #[test]
    fn held_data_goes_out_in_order_when_the_path_returns() {
        let mut n = net();
        n.blackholes = vec![(s(10), s(11))];
        assert_eq!(
            n.send(s(10), 0, SERVER, Seg::Data(1)),
            Sent::Held { first: true }
        );
        assert_eq!(
            n.send(s(10), 0, SERVER, Seg::Data(2)),
            Sent::Held { first: false }
        );
        // 200, 400, 800 ms: the third retransmission finds the path back.
        let mut t = n.conns[0].pipes[SERVER].retry_at.unwrap();
        while n.retransmit(t, 0, SERVER) == Retransmit::Backoff {
            t = n.conns[0].pipes[SERVER].retry_at.unwrap();
        }
        assert_eq!(t, ms(11_400));
        assert_eq!(n.conns[0].lb_last_data, ms(11_400));
        assert_eq!(n.conns[0].pipes[SERVER].retry_at, None);
        let mut n2 = net();
        n2.blackholes = vec![(s(10), s(11))];
        let _ = n2.send(s(10), 0, SERVER, Seg::Data(1));
        let _ = n2.send(s(10), 0, SERVER, Seg::Data(2));
        let mut t = n2.conns[0].pipes[SERVER].retry_at.unwrap();
        loop {
            match n2.retransmit(t, 0, SERVER) {
                Retransmit::Backoff => t = n2.conns[0].pipes[SERVER].retry_at.unwrap(),
                r => {
                    let want: VecDeque<Seg> = [Seg::Data(1), Seg::Data(2)].into();
                    assert_eq!(r, Retransmit::Flushed(ms(11_405), want));
                    break;
                }
            }
        }
    }

    #[test]
    fn keepalive_probes_are_answered_by_a_live_kernel_and_abort_across_a_dead_path() {
        let mut n = net();
        n.blackholes.clear();
        assert_eq!(n.keepalive_due(&n.conns[0], CLIENT), Some(s(30)));
        assert_eq!(n.keepalive_probe(s(30), 0, CLIENT), Probe::Answered);
        assert_eq!(n.keepalive_due(&n.conns[0], CLIENT), Some(s(60)));
        n.conns[0].open[SERVER] = false;
        assert_eq!(n.keepalive_probe(s(60), 0, CLIENT), Probe::PeerClosed);
        let mut n = net();
        n.delivered(s(5), 0);
        // Idle 30 s from the last segment, then 3 probes 10 s apart.
        let mut t = n.keepalive_due(&n.conns[0], CLIENT).unwrap();
        assert_eq!(t, s(35));
        let mut unanswered = 0;
        loop {
            match n.keepalive_probe(t, 0, CLIENT) {
                Probe::Unanswered => unanswered += 1,
                Probe::Exhausted => break,
                p => panic!("dead path answered {p:?}"),
            }
            t = n.keepalive_due(&n.conns[0], CLIENT).unwrap();
        }
        assert_eq!((unanswered, t), (3, s(65)));
    }

    #[test]
    fn the_load_balancer_forgets_a_flow_idle_past_its_timeout() {
        let mut n = net();
        n.blackholes.clear();
        let _ = n.send(s(40), 0, CLIENT, Seg::Data(1));
        let _ = n.send(s(50), 0, CLIENT, Seg::Fin);
        assert!(!n.is_due(0, NetTimer::LbIdle, s(99)), "a FIN is not data");
        assert!(n.is_due(0, NetTimer::LbIdle, s(100)));
        assert_eq!(n.lb_expire(0), Some((s(60), LbExpiry::Rst)));
        assert!(!n.path_up(s(100), 0));
        assert_eq!(n.lb_due(&n.conns[0]), None);
    }

    /// A client that stops reading while the server sends 10 kB a second,
    /// the path clear.
    fn stalled_reader() -> Net<(), Seg> {
        let mut n = net();
        n.blackholes.clear();
        n.lb = None;
        n
    }

    /// Sends 10 kB from the server every second from 1 s to `until`; what
    /// arrives at the stalled client stays unread.
    fn flood(n: &mut Net<(), Seg>, until: u64) -> Vec<u64> {
        let mut held_at = Vec::new();
        for t in 1..=until {
            match n.send(s(t), 0, SERVER, Seg::Kb(10)) {
                Sent::Arrives(..) => {
                    n.delivered(s(t), 0);
                    n.left_unread(0, CLIENT, 10_000);
                }
                Sent::Held { .. } => held_at.push(t),
            }
        }
        held_at
    }

    #[test]
    fn a_reader_that_stops_reading_shuts_its_window_and_blocks_the_writer() {
        let mut n = stalled_reader();
        let held = flood(&mut n, 10);
        // 7 × 10 kB fill the 65,535-byte window; what follows waits.
        assert_eq!(held, vec![8, 9, 10]);
        assert_eq!(n.conns[0].unread[CLIENT], 70_000);
        assert!(!n.window_open(0, CLIENT));
        // 4,465 bytes overran the window, 30 kB wait: past the 16 KiB
        // send buffer, so the server's writes block.
        assert_eq!(n.unacked_bytes(0, SERVER), 34_465);
        assert!(n.outq_busy(0, SERVER) && n.write_blocked(0, SERVER));
        assert!(!n.outq_busy(0, CLIENT), "the reverse direction is free");
        // The sender's keep-alive waits behind the queued data.
        assert_eq!(n.keepalive_due(&n.conns[0], SERVER), None);
    }

    #[test]
    fn a_shut_window_probed_and_answered_never_ends_the_connection() {
        let mut n = stalled_reader();
        flood(&mut n, 10);
        // Far past the 924.6 s give-up: every probe is answered.
        let mut t = n.conns[0].pipes[SERVER].retry_at.unwrap();
        let (mut probes, mut last) = (0, t);
        while t < s(10_000) {
            assert_eq!(n.retransmit(t, 0, SERVER), Retransmit::WindowShut);
            probes += 1;
            last = t;
            t = n.conns[0].pipes[SERVER].retry_at.unwrap();
        }
        assert_eq!(n.conns[0].pipes[SERVER].retries, 0);
        // The probes back off to one every `tcp_rto_max`.
        assert!(probes > 15);
        assert_eq!(t.0 - last.0, s(120).0);
        // The reader reads: its window opens and the held data follows.
        let (at, held) = n.read_all(s(10_000), 0, CLIENT).expect("the path is clear");
        assert_eq!((at, held.len()), (Micros(s(10_000).0 + 5_000), 3));
        assert!(!n.write_blocked(0, SERVER));
        assert_eq!(n.conns[0].pipes[SERVER].retry_at, None);
    }

    #[test]
    fn a_shut_window_across_a_dead_path_gives_up_after_tcp_retries2_probes() {
        let mut n = stalled_reader();
        flood(&mut n, 10);
        n.blackholes = vec![(s(20), s(100_000))];
        let mut t = n.conns[0].pipes[SERVER].retry_at.unwrap();
        let mut unanswered = 0;
        loop {
            match n.retransmit(t, 0, SERVER) {
                Retransmit::WindowShut => assert_eq!(unanswered, 0, "answered after the cut"),
                Retransmit::Backoff => unanswered += 1,
                Retransmit::GaveUp => break,
                r => panic!("the window is shut: {r:?}"),
            }
            t = n.conns[0].pipes[SERVER].retry_at.unwrap();
        }
        assert_eq!(unanswered, 15);
        assert!(t > s(20) && t < s(20 + 15 * 120));
    }

    #[test]
    fn a_holding_relay_acks_answers_probes_and_forwards_at_the_end() {
        let mut n = net();
        n.blackholes.clear();
        n.lb = None;
        n.holds = vec![(s(10), s(200))];
        // Taken at 20 s (the sender's keep-alive starts over), on at 200 s.
        assert_eq!(
            n.send(s(20), 0, SERVER, Seg::Data(1)),
            Sent::Arrives(ms(200_005), Seg::Data(1))
        );
        assert_eq!(n.conns[0].last_rx[SERVER], s(20));
        assert_eq!(n.conns[0].pipes[SERVER].retry_at, None);
        // The client's probes are answered all through, by the relay even
        // once the server's socket is closed.
        n.conns[0].open[SERVER] = false;
        let mut t = n.keepalive_due(&n.conns[0], CLIENT).unwrap();
        while t < s(200) {
            assert_eq!(n.keepalive_probe(t, 0, CLIENT), Probe::Answered);
            t = n.keepalive_due(&n.conns[0], CLIENT).unwrap();
        }
        assert_eq!(n.keepalive_probe(t, 0, CLIENT), Probe::PeerClosed);
        assert_eq!(
            n.send(s(300), 0, CLIENT, Seg::Fin),
            Sent::Arrives(ms(300_005), Seg::Fin)
        );
    }

    #[test]
    fn a_window_probe_to_a_closed_reader_meets_a_reset() {
        let mut n = stalled_reader();
        flood(&mut n, 10);
        let t = n.conns[0].pipes[SERVER].retry_at.unwrap();
        n.conns[0].open[CLIENT] = false;
        assert_eq!(n.retransmit(t, 0, SERVER), Retransmit::PeerReset);
        assert!(n.conns[0].pipes[SERVER].held.is_empty());
        assert_eq!(n.conns[0].pipes[SERVER].retry_at, None);
    }
}
