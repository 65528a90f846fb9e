//! TCP reassembly: directional byte streams plus open/FIN/RST/gap events.
//!
//! Sans-IO: segments go in through [`Reassembler::segment`], ordered
//! [`FlowEvent`]s come out through a [`FlowSink`]. Bytes are delivered
//! exactly once per direction, in sequence order; the first bytes seen for
//! a sequence range win, and a later copy that differs is reported. Bytes
//! that never appear become a `Gap` and the stream carries on after them.

mod assembler;
pub mod findings;

use crate::capture::TcpSegment;
use crate::timeline::kinds::FindingKind;
use crate::timeline::{ConnectionId, Direction, Finding, Location, Micros, OpenKind};
use assembler::Assembler;
use findings::FlowFinding;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::net::SocketAddr;

/// Limits that keep memory bounded whatever the capture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Out-of-order bytes held per direction before the hole in front of
    /// them is declared a gap.
    pub max_out_of_order_bytes: usize,
    /// Connections tracked at once; later ones are counted and skipped.
    pub max_connections: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_out_of_order_bytes: 4 << 20,
            max_connections: 1 << 18,
        }
    }
}

/// A connection reports at most this many inconsistent overlaps.
const MAX_OVERLAP_REPORTS: u32 = 8;

/// What happened on a connection, in capture order, with its bytes
/// borrowed from the reassembler.
pub type FlowEvent<'a> = FlowEventOf<&'a [u8]>;

/// A flow event holding its bytes as `B`: borrowed as the reassembler
/// hands them out, or owned to cross to a worker thread.
#[derive(Debug, Clone)]
pub enum FlowEventOf<B> {
    Open {
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        client: SocketAddr,
        server: SocketAddr,
        how: OpenKind,
    },
    Data {
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        bytes: B,
    },
    Gap {
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        len: u64,
    },
    Fin {
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        dir: Direction,
    },
    Rst {
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        dir: Direction,
    },
    /// The capture ended with this connection still open (no RST and not
    /// both FINs), or it was superseded by a new connection on its 4-tuple.
    End {
        conn: ConnectionId,
        at: Micros,
    },
    /// A closed connection let go of (twice the segment lifetime after its
    /// last segment): no event for it follows, so what was kept for it can go.
    Released {
        conn: ConnectionId,
    },
    Diagnostic(Finding),
}

impl<B> FlowEventOf<B> {
    /// The same event with its bytes turned into `C`.
    pub fn map_bytes<C>(self, f: impl FnOnce(B) -> C) -> FlowEventOf<C> {
        use FlowEventOf::*;
        match self {
            Open {
                conn,
                at,
                frame,
                client,
                server,
                how,
            } => Open {
                conn,
                at,
                frame,
                client,
                server,
                how,
            },
            Data {
                conn,
                at,
                frame,
                dir,
                offset,
                bytes,
            } => Data {
                conn,
                at,
                frame,
                dir,
                offset,
                bytes: f(bytes),
            },
            Gap {
                conn,
                at,
                frame,
                dir,
                offset,
                len,
            } => Gap {
                conn,
                at,
                frame,
                dir,
                offset,
                len,
            },
            Fin {
                conn,
                at,
                frame,
                dir,
            } => Fin {
                conn,
                at,
                frame,
                dir,
            },
            Rst {
                conn,
                at,
                frame,
                dir,
            } => Rst {
                conn,
                at,
                frame,
                dir,
            },
            End { conn, at } => End { conn, at },
            Released { conn } => Released { conn },
            Diagnostic(f) => Diagnostic(f),
        }
    }

    /// The connection it is about (a diagnostic may be about none).
    pub fn conn(&self) -> Option<ConnectionId> {
        use FlowEventOf::*;
        match self {
            Open { conn, .. }
            | Data { conn, .. }
            | Gap { conn, .. }
            | Fin { conn, .. }
            | Rst { conn, .. }
            | End { conn, .. }
            | Released { conn } => Some(*conn),
            Diagnostic(f) => f.location.connection,
        }
    }
}

pub trait FlowSink {
    fn flow_event(&mut self, event: FlowEvent<'_>);
}

impl<F: FnMut(FlowEvent<'_>)> FlowSink for F {
    fn flow_event(&mut self, event: FlowEvent<'_>) {
        self(event)
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndKind {
    Fin,
    Rst,
    Open,
}

/// Per-direction counters of one connection.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct DirStats {
    /// Payload bytes delivered in order (retransmissions counted once).
    pub bytes: u64,
    /// TCP segments, every one captured, as tshark counts frames.
    pub segments: u64,
    /// Frame bytes on the wire, as tshark's conversation table counts.
    pub wire_bytes: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub retransmitted_bytes: u64,
}

/// Everything `tether flows` says about one connection.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConnSummary {
    pub id: ConnectionId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub opened: OpenKind,
    pub start: Micros,
    pub last: Micros,
    pub first_frame: u64,
    pub c2s: DirStats,
    pub s2c: DirStats,
    pub end: EndKind,
    /// Who sent the first FIN or RST.
    pub closed_by: Option<Direction>,
    /// What TCP itself says about each sender, by `Direction::index`.
    #[serde(skip)]
    pub tcp: [TcpSide; 2],
}

/// What TCP alone says about one side of a connection: the tests
/// Wireshark's `tcp_analyze_sequence_number` makes, kept as the times
/// triage's evidence rules need. A frozen process's kernel still
/// acknowledges and answers keep-alives (its ACK number advances); a dead
/// path acknowledges nothing and the sender retransmits with backoff
/// (RFC 6298 §5); a receiver that stopped reading advertises a zero window
/// (RFC 9293 §3.8.6.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpSide {
    pub first_fin: Option<Micros>,
    pub first_rst: Option<Micros>,
    /// Segments that carried only bytes (or a FIN) already sent.
    pub retransmissions: u32,
    pub first_retransmission: Option<Micros>,
    pub last_retransmission: Option<Micros>,
    /// Keep-alive probes: no new data, sequence number one below the next
    /// (RFC 9293 §3.8.4).
    pub keepalives: u32,
    pub last_keepalive: Option<Micros>,
    /// The last probe the peer's kernel answered with an ACK (RFC 9293
    /// §3.8.4): something on the path holds the connection open, which a
    /// dead path does not.
    pub last_keepalive_answered: Option<Micros>,
    /// A probe not answered yet.
    probe_out: Option<Micros>,
    /// Segments advertising a zero receive window.
    pub zero_windows: u32,
    pub first_zero_window: Option<Micros>,
    pub last_zero_window: Option<Micros>,
    /// Last time this side's ACK number advanced: its kernel took new bytes.
    pub last_ack_advance: Option<Micros>,
    /// Last segment of any kind from this side.
    pub last_segment: Option<Micros>,
    /// Last segment carrying new payload.
    pub last_payload: Option<Micros>,
    /// When this side's oldest byte the peer has not acknowledged was sent;
    /// `None` while everything sent is acknowledged.
    pub unacked_since: Option<Micros>,
    /// The longest spell from sending bytes that then had to be
    /// retransmitted to their acknowledgement: a path that stopped
    /// delivering and came back (start, end).
    pub longest_stall: Option<(Micros, Micros)>,
    /// Retransmitted since `unacked_since`.
    retransmitted_since_unacked: bool,
    /// Stream offset one past the highest byte (or FIN) sent.
    sent_hi: u64,
    /// Highest stream offset of this side the peer acknowledged.
    acked_hi: u64,
}

#[derive(Default)]
struct Half {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    asm: Assembler,
    fin_at: Option<u64>,
    fin_done: bool,
    rst: bool,
    last_frame: u64,
}

impl Half {
    /// Stream offset of a sequence number, unwrapped around `next`.
    fn offset_of(&self, seq: u32) -> Option<i64> {
        let base = self.base?;
        let next = self.asm.next();
        let next_seq = base.wrapping_add(next as u32);
        let delta = seq.wrapping_sub(next_seq) as i32;
        Some(next as i64 + i64::from(delta))
    }
}

struct Conn {
    id: ConnectionId,
    client: SocketAddr,
    halves: [Half; 2],
    client_isn: Option<u32>,
    overlap_reports: u32,
    closed: bool,
}

impl Conn {
    /// Nothing left to flush: no held bytes and no FIN still ahead of the
    /// delivery point, so finishing it now says what the capture's end would.
    fn settled(&self) -> bool {
        self.halves
            .iter()
            .all(|h| h.asm.held_bytes() == 0 && (h.fin_at.is_none() || h.fin_done))
    }
}

pub struct Reassembler {
    config: FlowConfig,
    /// Fx, not SipHash: keys come from a capture, not from a network peer
    /// that could aim collisions at us, and hashing was a fifth of the
    /// pipeline's time.
    /// Each open connection with its summary, boxed: the table moves its
    /// entries as it grows.
    active: FxHashMap<(SocketAddr, SocketAddr), (Conn, Box<ConnSummary>)>,
    /// Summaries of the connections finished, in the order they finished
    /// until [`Reassembler::finish`] sorts them by id; a streaming reader
    /// takes them as they come ([`Reassembler::take_finished`]).
    finished: Vec<ConnSummary>,
    next_id: u32,
    dropped_connections: u64,
    last_ts: Micros,
    /// When closed connections are next looked for and let go.
    next_sweep: Micros,
}

/// How long a closed connection is still matched with late segments (and
/// a late copy of its data still checked against what was delivered):
/// twice the maximum segment lifetime (RFC 9293 §3.4.2, MSL = 2 minutes),
/// longer than the TIME-WAIT of any stack (Linux's is 60 s, `TCP_TIMEWAIT_LEN`).
/// Past it a segment for the same addresses belongs to a new connection.
/// It is also twice the longest a live sender waits between
/// retransmissions (see [`abandoned`]).
const CLOSED_KEPT: Micros = Micros(240_000_000);

/// Whether a connection, quiet longer than [`CLOSED_KEPT`], was given up
/// by its own TCP: a side was retransmitting bytes the peer never
/// acknowledged, and a sender that had not given up would have sent them
/// again within its maximum retransmission timeout (Linux `TCP_RTO_MAX`,
/// 120 s; RFC 6298 §2.5). Linux drops a connection whose retransmissions
/// ran out (`tcp_retries2`) without a segment, so nothing on the wire
/// closes it. Bytes merely unacknowledged are not enough: a capture
/// without the pure ACKs (a ring buffer's) leaves them so on a live
/// connection.
pub fn abandoned(summary: &ConnSummary) -> bool {
    summary.tcp.iter().any(|t| {
        t.unacked_since
            .is_some_and(|u| t.last_retransmission.is_some_and(|r| r >= u))
    })
}

/// Ports that are servers when a connection is first seen mid-stream.
fn is_server_port(port: u16) -> bool {
    matches!(port, 80 | 443 | 5900..=5999 | 5700..=5799 | 6080 | 8080 | 8443 | 3000 | 8000 | 8888)
        || port < 1024
}

impl Reassembler {
    pub fn new(config: FlowConfig) -> Reassembler {
        Reassembler {
            config,
            active: FxHashMap::default(),
            finished: Vec::new(),
            next_id: 0,
            dropped_connections: 0,
            last_ts: Micros::ZERO,
            next_sweep: Micros::ZERO,
        }
    }

    /// Every connection's summary, by id, once [`Reassembler::finish`]
    /// ran (less any taken by [`Reassembler::take_finished`]).
    pub fn summaries(&self) -> &[ConnSummary] {
        &self.finished
    }

    pub fn into_summaries(self) -> Vec<ConnSummary> {
        self.finished
    }

    /// The summaries of connections finished since the last call: a
    /// reader of hours of clients lets them go as it goes.
    pub fn take_finished(&mut self) -> Vec<ConnSummary> {
        std::mem::take(&mut self.finished)
    }

    /// The connections still open, as they stand.
    pub fn open_connections(&self) -> impl Iterator<Item = &ConnSummary> {
        self.active.values().map(|(_, s)| &**s)
    }

    /// The latest frame time read.
    pub fn now(&self) -> Micros {
        self.last_ts
    }

    /// Connections skipped because `max_connections` were open.
    pub fn dropped_connections(&self) -> u64 {
        self.dropped_connections
    }

    fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
        if a <= b { (a, b) } else { (b, a) }
    }

    pub fn segment(&mut self, seg: &TcpSegment<'_>, sink: &mut dyn FlowSink) {
        self.last_ts = self.last_ts.max(seg.ts);
        if self.last_ts >= self.next_sweep {
            self.let_go_of_closed(sink);
        }
        let key = Self::key(seg.src, seg.dst);
        let is_new_syn = seg.syn && !seg.ack_flag;
        if let Some((conn, _)) = self.active.get(&key) {
            let replaced = is_new_syn
                && (conn.closed
                    || conn.client_isn.is_none()
                    || conn.client_isn != Some(seg.seq)
                    || conn.client != seg.src);
            if replaced && let Some((old, summary)) = self.active.remove(&key) {
                self.finish_conn(old, summary, seg.ts, sink);
            }
        }
        if !self.active.contains_key(&key) && !self.open(key, seg, sink) {
            return;
        }
        let Some((conn, summary)) = self.active.get_mut(&key) else {
            return;
        };
        let dir = if seg.src == conn.client {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        summary.last = summary.last.max(seg.ts);
        {
            let stats = match dir {
                Direction::ClientToServer => &mut summary.c2s,
                Direction::ServerToClient => &mut summary.s2c,
            };
            stats.segments += 1;
            stats.wire_bytes += u64::from(seg.wire_len);
        }
        handle_segment(&self.config, conn, summary, dir, seg, sink);
    }

    /// Opens a connection for `seg`'s endpoints; false when too many are
    /// open and it is skipped.
    fn open(
        &mut self,
        key: (SocketAddr, SocketAddr),
        seg: &TcpSegment<'_>,
        sink: &mut dyn FlowSink,
    ) -> bool {
        if self.active.len() >= self.config.max_connections {
            self.dropped_connections += 1;
            if self.dropped_connections == 1 {
                sink.flow_event(FlowEvent::Diagnostic(FlowFinding::TooManyConnections.at(
                    format!(
                        "more than {} connections open at once; later ones are skipped",
                        self.config.max_connections
                    ),
                    Location {
                        frame: Some(seg.frame),
                        ..Location::default()
                    },
                )));
            }
            return false;
        }
        let (client, server, how) = roles(seg);
        let id = ConnectionId(self.next_id);
        // Four billion connections in one capture wrap, as a count would.
        self.next_id = self.next_id.wrapping_add(1);
        let summary = Box::new(ConnSummary {
            id,
            client,
            server,
            opened: how,
            start: seg.ts,
            last: seg.ts,
            first_frame: seg.frame,
            c2s: DirStats::default(),
            s2c: DirStats::default(),
            end: EndKind::Open,
            closed_by: None,
            tcp: [TcpSide::default(); 2],
        });
        self.active.insert(
            key,
            (
                Conn {
                    id,
                    client,
                    halves: [Half::default(), Half::default()],
                    client_isn: if how == OpenKind::Syn {
                        Some(seg.seq)
                    } else {
                        None
                    },
                    overlap_reports: 0,
                    closed: false,
                },
                summary,
            ),
        );
        sink.flow_event(FlowEvent::Open {
            conn: id,
            at: seg.ts,
            frame: seg.frame,
            client,
            server,
            how,
        });
        true
    }

    /// Finishes the connections closed longer than [`CLOSED_KEPT`] ago, so
    /// that a capture of many clients over hours holds the open ones, not
    /// every one it saw. Looked for once a minute of capture time.
    fn let_go_of_closed(&mut self, sink: &mut dyn FlowSink) {
        let now = self.last_ts;
        self.next_sweep = Micros(now.0.saturating_add(60_000_000));
        let mut done: Vec<(ConnectionId, (SocketAddr, SocketAddr))> = self
            .active
            .iter()
            .filter(|(_, (c, summary))| {
                // Half-closed counts: Linux drops an orphaned socket's
                // FIN-WAIT-2 after `tcp_fin_timeout` (60 s), well inside it.
                (c.closed || summary.end != EndKind::Open || abandoned(summary))
                    && c.settled()
                    && summary.last.0.saturating_add(CLOSED_KEPT.0) < now.0
            })
            .map(|(k, (c, _))| (c.id, *k))
            .collect();
        done.sort();
        for (_, key) in done {
            if let Some((conn, summary)) = self.active.remove(&key) {
                let at = summary.last;
                let id = conn.id;
                self.finish_conn(conn, summary, at, sink);
                sink.flow_event(FlowEvent::Released { conn: id });
            }
        }
    }

    /// Ends the capture: flushes held bytes (as gaps where holes remain)
    /// and reports connections still open.
    pub fn finish(&mut self, sink: &mut dyn FlowSink) {
        let mut open: Vec<(Conn, Box<ConnSummary>)> = self.active.drain().map(|(_, c)| c).collect();
        open.sort_by_key(|(c, _)| c.id);
        let at = self.last_ts;
        for (conn, summary) in open {
            self.finish_conn(conn, summary, at, sink);
        }
        self.finished.sort_by_key(|s| s.id);
    }

    /// Flushes a connection and files its summary among the finished.
    fn finish_conn(
        &mut self,
        mut conn: Conn,
        mut summary: Box<ConnSummary>,
        at: Micros,
        sink: &mut dyn FlowSink,
    ) {
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let frame = conn.halves[dir.index()].last_frame;
            flush_all(&mut conn, &mut summary, dir, at, frame, sink);
        }
        self.finished.push(*summary);
        let both_fin = conn.halves.iter().all(|h| h.fin_done);
        let any_rst = conn.halves.iter().any(|h| h.rst);
        if !both_fin && !any_rst {
            sink.flow_event(FlowEvent::End { conn: conn.id, at });
        }
    }
}

/// Which end is the client, and how the connection was first seen: the
/// SYN's sender, the SYN-ACK's receiver, or (mid-stream) the end that is
/// not on a well-known server port, else the higher port.
fn roles(seg: &TcpSegment<'_>) -> (SocketAddr, SocketAddr, OpenKind) {
    if seg.syn && !seg.ack_flag {
        (seg.src, seg.dst, OpenKind::Syn)
    } else if seg.syn {
        (seg.dst, seg.src, OpenKind::SynAck)
    } else if is_server_port(seg.src.port()) && !is_server_port(seg.dst.port()) {
        (seg.dst, seg.src, OpenKind::MidStream)
    } else if is_server_port(seg.dst.port()) && !is_server_port(seg.src.port()) {
        (seg.src, seg.dst, OpenKind::MidStream)
    } else if seg.src.port() < seg.dst.port() {
        (seg.dst, seg.src, OpenKind::MidStream)
    } else {
        (seg.src, seg.dst, OpenKind::MidStream)
    }
}

fn stats_mut(summary: &mut ConnSummary, dir: Direction) -> &mut DirStats {
    match dir {
        Direction::ClientToServer => &mut summary.c2s,
        Direction::ServerToClient => &mut summary.s2c,
    }
}

/// The peer acknowledging bytes we never saw means they were lost from
/// the capture, not from the connection: they will not come, so the
/// `peer` side's stream gets its gap now instead of waiting for them.
fn settle_unseen_acked(
    conn: &mut Conn,
    summary: &mut ConnSummary,
    peer: Direction,
    seg: &TcpSegment<'_>,
    sink: &mut dyn FlowSink,
) {
    let peer_half = &conn.halves[peer.index()];
    if let Some(acked) = peer_half.offset_of(seg.ack) {
        let mut limit = acked;
        if let Some(fin) = peer_half.fin_at {
            limit = limit.min(fin as i64);
        }
        let next = peer_half.asm.next() as i64;
        let first_held = peer_half.asm.first_held().map(|o| o as i64);
        let lost = limit > next + 1 || first_held.is_some_and(|f| f <= limit && limit > next);
        if lost && limit - next < (1 << 30) {
            let limit = limit as u64;
            while let Some(first) = conn.halves[peer.index()].asm.first_held() {
                if first > limit {
                    break;
                }
                gap_to(conn, summary, peer, first, seg.ts, seg.frame, sink);
                drain(conn, summary, peer, seg.ts, seg.frame, sink);
            }
            if limit > conn.halves[peer.index()].asm.next() + 1 {
                gap_to(conn, summary, peer, limit, seg.ts, seg.frame, sink);
            }
        }
    }
}

/// A FIN after the stream's bytes up to `end`: where that side's stream
/// ends, and who closed first.
fn on_fin(
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    seg: &TcpSegment<'_>,
    end: i64,
    sink: &mut dyn FlowSink,
) {
    let fin_at = (end + i64::from(seg.missing_tail)).max(0) as u64;
    let half = &mut conn.halves[dir.index()];
    if half.fin_at.is_none() {
        half.fin_at = Some(fin_at);
    }
    if summary.closed_by.is_none() {
        summary.closed_by = Some(dir);
        summary.end = EndKind::Fin;
    }
    maybe_fin(conn, dir, seg.ts, seg.frame, sink);
}

/// A RST: held bytes are flushed (nothing more will come) and it decides
/// how the connection ended.
fn on_rst(
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    seg: &TcpSegment<'_>,
    sink: &mut dyn FlowSink,
) {
    flush_all(conn, summary, dir, seg.ts, seg.frame, sink);
    let half = &mut conn.halves[dir.index()];
    if !half.rst {
        half.rst = true;
        sink.flow_event(FlowEvent::Rst {
            conn: conn.id,
            at: seg.ts,
            frame: seg.frame,
            dir,
        });
    }
    if summary.end != EndKind::Rst && (summary.closed_by.is_none() || summary.end == EndKind::Fin) {
        // A RST decides how the connection ended even after a FIN; the
        // side that closed first stays whoever sent the first FIN.
        summary.end = EndKind::Rst;
        if summary.closed_by.is_none() {
            summary.closed_by = Some(dir);
        }
    }
    conn.closed = true;
}

fn handle_segment(
    config: &FlowConfig,
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    seg: &TcpSegment<'_>,
    sink: &mut dyn FlowSink,
) {
    {
        let half = &mut conn.halves[dir.index()];
        half.last_frame = seg.frame;
        if seg.syn {
            if half.base.is_none() || half.asm.is_untouched() {
                half.base = Some(seg.seq.wrapping_add(1));
            }
        } else if half.base.is_none() {
            half.base = Some(seg.seq);
        }
    }

    if seg.ack_flag {
        settle_unseen_acked(conn, summary, dir.reverse(), seg, sink);
    }

    let payload_len = seg.payload.len() as u64;
    let seq = if seg.syn {
        seg.seq.wrapping_add(1)
    } else {
        seg.seq
    };
    let Some(offset) = conn.halves[dir.index()].offset_of(seq) else {
        return;
    };
    note_tcp_evidence(conn, summary, dir, seg, offset);
    if payload_len > 0 || seg.missing_tail > 0 {
        accept(config, conn, summary, dir, offset, seg, sink);
    }
    if seg.fin {
        on_fin(conn, summary, dir, seg, offset + payload_len as i64, sink);
    }
    if seg.rst {
        on_rst(conn, summary, dir, seg, sink);
    }
    if conn.halves.iter().all(|h| h.fin_done) {
        conn.closed = true;
    }
}

/// Updates what TCP says about the sender of `seg` and, through its ACK,
/// about the peer's unacknowledged bytes.
fn note_tcp_evidence(
    conn: &Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    seg: &TcpSegment<'_>,
    offset: i64,
) {
    let ts = seg.ts;
    let peer = dir.reverse();
    if seg.ack_flag && !seg.rst && summary.tcp[peer.index()].probe_out.take().is_some() {
        summary.tcp[peer.index()].last_keepalive_answered = Some(ts);
    }
    if seg.ack_flag
        && let Some(acked) = conn.halves[peer.index()].offset_of(seg.ack)
        && acked >= 0
    {
        let acked = acked as u64;
        let theirs = &mut summary.tcp[peer.index()];
        if acked > theirs.acked_hi {
            theirs.acked_hi = acked;
            summary.tcp[dir.index()].last_ack_advance = Some(ts);
        }
        let theirs = &mut summary.tcp[peer.index()];
        if theirs.acked_hi >= theirs.sent_hi {
            if let Some(u) = theirs.unacked_since
                && theirs.retransmitted_since_unacked
                && theirs
                    .longest_stall
                    // Saturating: a capture's clock can step back.
                    .is_none_or(|(a, b)| b.0.saturating_sub(a.0) < ts.0.saturating_sub(u.0))
            {
                theirs.longest_stall = Some((u, ts));
            }
            theirs.unacked_since = None;
            theirs.retransmitted_since_unacked = false;
        }
    }
    let side = &mut summary.tcp[dir.index()];
    side.last_segment = Some(ts);
    if seg.window == 0 && !seg.rst && !seg.syn {
        side.zero_windows += 1;
        side.first_zero_window.get_or_insert(ts);
        side.last_zero_window = Some(ts);
    }
    if seg.rst {
        side.first_rst.get_or_insert(ts);
        return;
    }
    if seg.syn {
        return;
    }
    let len = seg.payload.len() as u64 + u64::from(seg.missing_tail) + u64::from(seg.fin);
    let end = offset.max(0) as u64 + len;
    let next = conn.halves[dir.index()].asm.next() as i64;
    let keepalive = len <= 1 && !seg.fin && offset == next - 1 && side.sent_hi == next as u64;
    if keepalive {
        side.keepalives += 1;
        side.last_keepalive = Some(ts);
        side.probe_out = Some(ts);
        return;
    }
    if seg.fin {
        side.first_fin.get_or_insert(ts);
    }
    if len == 0 {
        return;
    }
    if end <= side.sent_hi {
        side.retransmissions += 1;
        side.retransmitted_since_unacked = side.unacked_since.is_some();
        side.first_retransmission.get_or_insert(ts);
        side.last_retransmission = Some(ts);
    } else {
        if seg.payload.len() as u64 + u64::from(seg.missing_tail) > 0 {
            side.last_payload = Some(ts);
        }
        if side.unacked_since.is_none() {
            side.unacked_since = Some(ts);
        }
        side.sent_hi = end;
    }
}

fn maybe_fin(conn: &mut Conn, dir: Direction, at: Micros, frame: u64, sink: &mut dyn FlowSink) {
    let half = &mut conn.halves[dir.index()];
    if let Some(fin) = half.fin_at
        && !half.fin_done
        && half.asm.next() >= fin
    {
        half.fin_done = true;
        sink.flow_event(FlowEvent::Fin {
            conn: conn.id,
            at,
            frame,
            dir,
        });
    }
}

/// Takes one segment's payload at stream `offset`.
fn accept(
    config: &FlowConfig,
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    offset: i64,
    seg: &TcpSegment<'_>,
    sink: &mut dyn FlowSink,
) {
    let id = conn.id;
    let old = conn.halves[dir.index()].asm.old(offset, seg.payload);
    stats_mut(summary, dir).retransmitted_bytes += old.retransmitted;
    if let Some(at) = old.mismatch_at {
        report_overlap(conn, dir, at, seg, sink);
    }
    let Some((offset, bytes)) = old.rest else {
        return;
    };
    if offset == conn.halves[dir.index()].asm.next() {
        deliver(conn, summary, dir, bytes, seg.ts, seg.frame, sink);
        if seg.missing_tail > 0 {
            let to = conn.halves[dir.index()].asm.next() + u64::from(seg.missing_tail);
            gap_to(conn, summary, dir, to, seg.ts, seg.frame, sink);
        }
        drain(conn, summary, dir, seg.ts, seg.frame, sink);
    } else {
        if let Some(at) = conn.halves[dir.index()].asm.hold(offset, bytes) {
            report_overlap(conn, dir, at, seg, sink);
        }
        if conn.halves[dir.index()].asm.held_bytes() > config.max_out_of_order_bytes {
            // Too much waiting on a hole: the hole is a gap.
            if let Some(first) = conn.halves[dir.index()].asm.first_held() {
                sink.flow_event(FlowEvent::Diagnostic(FlowFinding::OutOfOrderBytes.at(
                    format!(
                        "more than {} bytes held behind a hole; declaring it a gap",
                        config.max_out_of_order_bytes
                    ),
                    Location {
                        frame: Some(seg.frame),
                        connection: Some(id),
                        direction: Some(dir),
                        stream_offset: Some(conn.halves[dir.index()].asm.next()),
                        ..Location::default()
                    },
                )));
                gap_to(conn, summary, dir, first, seg.ts, seg.frame, sink);
                drain(conn, summary, dir, seg.ts, seg.frame, sink);
            }
        }
    }
    maybe_fin(conn, dir, seg.ts, seg.frame, sink);
}

fn report_overlap(
    conn: &mut Conn,
    dir: Direction,
    at_offset: u64,
    seg: &TcpSegment<'_>,
    sink: &mut dyn FlowSink,
) {
    conn.overlap_reports += 1;
    if conn.overlap_reports > MAX_OVERLAP_REPORTS {
        return;
    }
    sink.flow_event(FlowEvent::Diagnostic(FlowFinding::InconsistentOverlap.at("a retransmitted or overlapping segment carries different bytes; the first-seen bytes were kept",
        Location {
            frame: Some(seg.frame),
            connection: Some(conn.id),
            direction: Some(dir),
            stream_offset: Some(at_offset),
            ..Location::default()
        },
    )));
}

fn deliver(
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    bytes: &[u8],
    at: Micros,
    frame: u64,
    sink: &mut dyn FlowSink,
) {
    if bytes.is_empty() {
        return;
    }
    let offset = conn.halves[dir.index()].asm.advance(bytes);
    stats_mut(summary, dir).bytes += bytes.len() as u64;
    sink.flow_event(FlowEvent::Data {
        conn: conn.id,
        at,
        frame,
        dir,
        offset,
        bytes,
    });
}

/// Delivers held bytes that have become contiguous.
fn drain(
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    at: Micros,
    frame: u64,
    sink: &mut dyn FlowSink,
) {
    while let Some(bytes) = conn.halves[dir.index()].asm.take_ready() {
        deliver(conn, summary, dir, &bytes, at, frame, sink);
    }
    maybe_fin(conn, dir, at, frame, sink);
}

/// Declares `[next, to)` missing and moves past it.
fn gap_to(
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    to: u64,
    at: Micros,
    frame: u64,
    sink: &mut dyn FlowSink,
) {
    let Some((offset, len)) = conn.halves[dir.index()].asm.skip_to(to) else {
        return;
    };
    let st = stats_mut(summary, dir);
    st.gaps += 1;
    st.gap_bytes += len;
    sink.flow_event(FlowEvent::Gap {
        conn: conn.id,
        at,
        frame,
        dir,
        offset,
        len,
    });
}

/// Delivers everything held, with gaps for the holes, then a pending FIN.
fn flush_all(
    conn: &mut Conn,
    summary: &mut ConnSummary,
    dir: Direction,
    at: Micros,
    frame: u64,
    sink: &mut dyn FlowSink,
) {
    while let Some(first) = conn.halves[dir.index()].asm.first_held() {
        gap_to(conn, summary, dir, first, at, frame, sink);
        drain(conn, summary, dir, at, frame, sink);
    }
    let half = &conn.halves[dir.index()];
    if let Some(fin) = half.fin_at
        && !half.fin_done
        && half.asm.next() < fin
    {
        gap_to(conn, summary, dir, fin, at, frame, sink);
    }
    maybe_fin(conn, dir, at, frame, sink);
}
