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

use crate::timeline::Micros;
use crate::timeline::synthetic::LbExpiry;
use std::collections::VecDeque;
use std::ops::{Index, IndexMut};

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

/// One direction's send queue: data held while the path is down.
#[derive(Clone, Debug)]
pub struct Pipe<I> {
    pub held: VecDeque<I>,
    /// Next retransmission (or the abort, after `tcp_retries2`).
    pub retry_at: Option<Micros>,
    pub retries: u64,
}

impl<I> Default for Pipe<I> {
    fn default() -> Self {
        Pipe {
            held: VecDeque::new(),
            retry_at: None,
            retries: 0,
        }
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
    /// Last segment (data, ACK or probe answer) each endpoint received.
    pub last_rx: [Micros; 2],
    pub probes: [u64; 2],
    pub lb_last_data: Micros,
    /// The load balancer forgot this flow or the peer vanished.
    pub dead_path: bool,
}

impl<A, I> Conn<A, I> {
    /// A connection the client is dialling at `now`.
    pub fn dialling(app: A, now: Micros) -> Self {
        Conn {
            app,
            open: [true, false],
            established: false,
            pipes: [Pipe::default(), Pipe::default()],
            last_rx: [now; 2],
            probes: [0; 2],
            lb_last_data: now,
            dead_path: false,
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
    pub client_ka: Keepalive,
    pub server_ka: Keepalive,
    /// A load balancer's idle timeout and what it does on expiry.
    pub lb: Option<(Micros, LbExpiry)>,
    /// Spans in which nothing crosses the path.
    pub blackholes: Vec<(Micros, Micros)>,
    /// From then on every peer is gone without a word.
    pub half_open_all: Option<Micros>,
    pub conns: Conns<A, I>,
    /// Connections with at least one open endpoint or data in flight.
    pub live: Vec<usize>,
}

impl<A, I> Net<A, I> {
    /// Whether a segment sent on `conn` at `t` arrives.
    pub fn path_up(&self, t: Micros, conn: usize) -> bool {
        let c = &self.conns[conn];
        !c.dead_path
            && self.half_open_all.is_none_or(|h| t < h)
            && !self.blackholes.iter().any(|&(a, b)| a <= t && t < b)
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
    pub fn lb_due(&self, conn: &Conn<A, I>) -> Option<Micros> {
        let (idle, _) = self.lb?;
        (!conn.dead_path && (conn.open[CLIENT] || conn.open[SERVER]) && conn.established)
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
