//! Runs a capture through reassembly, sniffing and the protocol decoders.
//!
//! Per connection: the first bytes each way are held until sniffing names
//! the protocol, then replayed into the decoder in capture order; from then
//! on bytes stream straight through. Nothing here keeps more than the
//! sniffing prefix per connection, unless the caller asks for events.

use super::sniff::{self, MAX_SNIFF_BYTES, Protocol, Sniff};
use super::{
    Chunk, EventSink, MessageLimits, StreamContext, StreamDecoder, StreamEnd, decoder_for,
};
use crate::capture::{CaptureError, Frame, Segments};
use crate::decode::tls::keylog::KeyStore;
use crate::flow::{ConnSummary, EndKind, FlowConfig, FlowEvent, FlowSink, Reassembler};
use crate::timeline::{
    CloseKind, ConnectionId, Direction, Event, EventKind, Finding, Micros, OpenKind,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

/// What to keep while decoding.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Keep every event (for `tether decode --events`, triage and tests);
    /// otherwise only counts, findings and liveness are kept.
    pub keep_events: bool,
    pub flow: FlowConfig,
    /// Largest message per protocol, past which a direction is not decoded.
    pub messages: MessageLimits,
    /// The SPICE channel type of mid-stream connections whose ports follow
    /// no known convention (a bug-report zip names its ring's channel).
    pub spice_channel_hint: Option<u8>,
    /// TLS secrets; the capture's Decryption Secrets Blocks are added as
    /// they are read.
    pub keys: Option<std::sync::Arc<crate::decode::tls::keylog::KeyStore>>,
}

/// Decoded messages by name, each way.
#[derive(Debug, Clone, Default, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Counts {
    pub c2s: BTreeMap<String, u64>,
    pub s2c: BTreeMap<String, u64>,
}

/// Per-direction activity of one connection.
#[derive(Debug, Clone, Default, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Activity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<Micros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Micros>,
    pub pings: u64,
    pub pongs: u64,
    /// Round trips of the pongs this side sent, when their pings were seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_min: Option<Micros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_max: Option<Micros>,
}

/// Everything decoded from one connection.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConnectionReport {
    pub connection: ConnectionId,
    pub client: String,
    pub server: String,
    pub protocol: Protocol,
    pub stack: Vec<&'static str>,
    pub counts: Counts,
    pub c2s: Activity,
    pub s2c: Activity,
    pub findings: Vec<Finding>,
    /// SPICE session and channel, when the decoder knows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<super::SessionInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// A decoded capture.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DecodeReport {
    pub file: String,
    /// The capture's first frame (any frame), once per input: in JSON,
    /// seconds since the Unix epoch; every other time counts from it.
    #[serde(rename = "start_abs", skip_serializing_if = "Option::is_none")]
    pub start: Option<Micros>,
    pub stats: crate::capture::CaptureStats,
    /// Capture-level diagnostics (record and link layer).
    pub diagnostics: Vec<Finding>,
    pub flows: Vec<ConnSummary>,
    pub connections: Vec<ConnectionReport>,
}

impl DecodeReport {
    /// Re-bases every time on the capture's first frame (`start` stays
    /// absolute), the one convention of tether's output: a time then reads
    /// as Wireshark's "seconds since beginning of capture". Round trips are
    /// durations and stay as they are. A frame stamped before the first
    /// (a capture whose clock stepped back) counts as 0.
    pub fn rebase(&mut self) {
        let Some(origin) = self.start else {
            return;
        };
        let at = |t: &mut Micros| *t = t.saturating_sub(origin);
        for f in &mut self.flows {
            at(&mut f.start);
            at(&mut f.last);
        }
        for c in &mut self.connections {
            for a in [&mut c.c2s, &mut c.s2c] {
                a.first.iter_mut().chain(a.last.iter_mut()).for_each(at);
            }
            for e in &mut c.events {
                at(&mut e.at);
            }
        }
    }
}

struct Pending {
    at: Micros,
    frame: u64,
    dir: Direction,
    offset: u64,
    len: usize,
}

enum Stage {
    Sniffing {
        prefix: [Vec<u8>; 2],
        pending: Vec<Pending>,
    },
    Decoding(Box<dyn StreamDecoder>),
    /// Not decodable (TLS, unknown): timing only.
    Opaque,
}

struct ConnState {
    report: ConnectionReport,
    stage: Stage,
    ctx: StreamContext,
    ended: [bool; 2],
}

/// Counts and optionally keeps the events of one connection.
struct ReportSink<'a> {
    report: &'a mut ConnectionReport,
    keep: bool,
    /// The frame being fed: every event it completes carries it.
    frame: Option<u64>,
}

impl EventSink for ReportSink<'_> {
    fn event(&mut self, mut ev: Event) {
        if ev.frame.is_none() {
            // A finding names its own frame; anything else was completed
            // by the frame being fed.
            ev.frame = match &ev.kind {
                EventKind::Finding(f) => f.location.frame.or(self.frame),
                _ => self.frame,
            };
        }
        let act = match ev.direction {
            Some(Direction::ClientToServer) => Some(&mut self.report.c2s),
            Some(Direction::ServerToClient) => Some(&mut self.report.s2c),
            None => None,
        };
        match &ev.kind {
            EventKind::Message { name, .. } => {
                let counts = match ev.direction {
                    Some(Direction::ClientToServer) => Some(&mut self.report.counts.c2s),
                    Some(Direction::ServerToClient) => Some(&mut self.report.counts.s2c),
                    None => None,
                };
                if let Some(counts) = counts {
                    match counts.get_mut(name.as_ref()) {
                        Some(n) => *n += 1,
                        None => {
                            counts.insert(name.to_string(), 1);
                        }
                    }
                }
            }
            EventKind::Ping { .. } => {
                if let Some(act) = act {
                    act.pings += 1;
                }
            }
            EventKind::Pong { rtt, .. } => {
                if let Some(act) = act {
                    act.pongs += 1;
                    if let Some(rtt) = *rtt {
                        act.rtt_min = Some(act.rtt_min.map_or(rtt, |m| m.min(rtt)));
                        act.rtt_max = Some(act.rtt_max.map_or(rtt, |m| m.max(rtt)));
                    }
                }
            }
            EventKind::Finding(f) => {
                let mut f = f.clone();
                if f.location.connection.is_none() {
                    f.location.connection = Some(ev.connection);
                }
                // The listed finding names the same frame as its event, so
                // every finding can be looked up in Wireshark.
                if f.location.frame.is_none() {
                    f.location.frame = ev.frame;
                }
                self.report.findings.push(f);
            }
            _ => {}
        }
        if self.keep {
            self.report.events.push(ev);
        }
    }
}

/// The decode stage as a [`FlowSink`]: feed it flow events, then call
/// [`Decoder::finish`].
pub struct Decoder {
    options: DecodeOptions,
    conns: Vec<Option<ConnState>>,
    done: Vec<ConnectionReport>,
    diagnostics: Vec<Finding>,
    file: String,
}

impl Decoder {
    pub fn new(file: &str, options: DecodeOptions) -> Decoder {
        Decoder {
            options,
            conns: Vec::new(),
            done: Vec::new(),
            diagnostics: Vec::new(),
            file: file.to_string(),
        }
    }

    fn state(&mut self, conn: ConnectionId) -> Option<&mut ConnState> {
        self.conns.get_mut(conn.0 as usize).and_then(Option::as_mut)
    }

    /// A connection as decoded so far, with its current protocol stack
    /// (for live mode, which reports while the connection runs).
    pub fn peek(&self, conn: ConnectionId) -> Option<(&ConnectionReport, Vec<&'static str>)> {
        let state = self.conns.get(conn.0 as usize)?.as_ref()?;
        let stack = match &state.stage {
            Stage::Decoding(d) => d.stack(),
            _ => state.report.stack.clone(),
        };
        Some((&state.report, stack))
    }

    pub fn finish(mut self) -> (Vec<ConnectionReport>, Vec<Finding>) {
        for mut state in std::mem::take(&mut self.conns).into_iter().flatten() {
            if let Stage::Decoding(d) = &state.stage {
                // A layered decoder (WebSocket) learns its inner protocol late.
                state.report.stack = d.stack();
                state.report.session = d.session();
            }
            self.done.push(state.report);
        }
        self.done.sort_by_key(|r| r.connection);
        (self.done, self.diagnostics)
    }

    fn open(
        &mut self,
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
        how: OpenKind,
    ) {
        let idx = conn.0 as usize;
        if self.conns.len() <= idx {
            self.conns.resize_with(idx + 1, || None);
        }
        let mut ctx = StreamContext {
            connection: conn,
            mid_stream_spice_channel: None,
            limits: self.options.messages,
            keys: self.options.keys.clone(),
        };
        let mut report = ConnectionReport {
            connection: conn,
            client: client.to_string(),
            server: server.to_string(),
            protocol: Protocol::Unknown,
            stack: vec!["tcp"],
            counts: Counts::default(),
            c2s: Activity::default(),
            s2c: Activity::default(),
            findings: Vec::new(),
            session: None,
            events: Vec::new(),
        };
        let mut stage = Stage::Sniffing {
            prefix: [Vec::new(), Vec::new()],
            pending: Vec::new(),
        };
        // Bug-report captures have no handshake; their ports name the channel.
        if how == OpenKind::MidStream
            && let Some(ch) = sniff::ryll_port_channel(client.port(), server.port())
                .or(self.options.spice_channel_hint)
        {
            ctx.mid_stream_spice_channel = Some(ch);
            if let Some(d) = decoder_for(Protocol::Spice, &ctx) {
                report.protocol = Protocol::Spice;
                report.stack = d.stack();
                stage = Stage::Decoding(d);
            }
        }
        if self.options.keep_events {
            report.events.push(Event {
                frame: Some(frame),
                at,
                connection: conn,
                channel: None,
                direction: None,
                kind: EventKind::Open { how },
            });
        }
        self.conns[idx] = Some(ConnState {
            report,
            stage,
            ctx,
            ended: [false, false],
        });
    }
}

fn touch(report: &mut ConnectionReport, dir: Direction, at: Micros) {
    let act = match dir {
        Direction::ClientToServer => &mut report.c2s,
        Direction::ServerToClient => &mut report.s2c,
    };
    act.first.get_or_insert(at);
    act.last = Some(at);
}

impl ConnState {
    fn data(&mut self, chunk: Chunk<'_>, keep: bool) {
        touch(&mut self.report, chunk.direction, chunk.at);
        match &mut self.stage {
            Stage::Decoding(d) => {
                let mut sink = ReportSink {
                    report: &mut self.report,
                    keep,
                    frame: Some(chunk.frame),
                };
                d.data(chunk, &mut sink);
            }
            Stage::Opaque => {}
            Stage::Sniffing { prefix, pending } => {
                let p = &mut prefix[chunk.direction.index()];
                let room = MAX_SNIFF_BYTES.saturating_sub(p.len());
                let take = chunk.bytes.len().min(room);
                p.extend_from_slice(&chunk.bytes[..take]);
                pending.push(Pending {
                    at: chunk.at,
                    frame: chunk.frame,
                    dir: chunk.direction,
                    offset: chunk.stream_offset,
                    len: take,
                });
                let verdict = sniff::sniff(&prefix[0], &prefix[1]);
                let full = prefix[0].len() + prefix[1].len() >= MAX_SNIFF_BYTES;
                let protocol = match verdict {
                    Sniff::Known(p) => p,
                    Sniff::NeedMore if full || take < chunk.bytes.len() => Protocol::Unknown,
                    Sniff::NeedMore => return,
                };
                self.start_decoding(protocol, keep);
                // Bytes beyond the sniffing prefix go straight on.
                if take < chunk.bytes.len() {
                    self.data(
                        Chunk {
                            stream_offset: chunk.stream_offset + take as u64,
                            bytes: &chunk.bytes[take..],
                            ..chunk
                        },
                        keep,
                    );
                }
            }
        }
    }

    fn start_decoding(&mut self, protocol: Protocol, keep: bool) {
        let Stage::Sniffing { prefix, pending } = std::mem::replace(&mut self.stage, Stage::Opaque)
        else {
            return;
        };
        self.report.protocol = protocol;
        let Some(mut decoder) = decoder_for(protocol, &self.ctx) else {
            if protocol == Protocol::Tls {
                self.report.stack = vec!["tcp", "tls"];
            }
            return;
        };
        self.report.stack = decoder.stack();
        let mut used = [0usize; 2];
        {
            let mut sink = ReportSink {
                report: &mut self.report,
                keep,
                frame: None,
            };
            for p in pending {
                sink.frame = Some(p.frame);
                let i = p.dir.index();
                let bytes = &prefix[i][used[i]..used[i] + p.len];
                used[i] += p.len;
                decoder.data(
                    Chunk {
                        at: p.at,
                        frame: p.frame,
                        direction: p.dir,
                        stream_offset: p.offset,
                        bytes,
                    },
                    &mut sink,
                );
            }
        }
        self.report.stack = decoder.stack();
        self.stage = Stage::Decoding(decoder);
    }

    /// Sniffing cannot wait any longer (gap or end): decide on what we have.
    fn settle(&mut self, keep: bool) {
        if let Stage::Sniffing { prefix, .. } = &self.stage {
            let protocol = match sniff::sniff(&prefix[0], &prefix[1]) {
                Sniff::Known(p) => p,
                Sniff::NeedMore => Protocol::Unknown,
            };
            self.start_decoding(protocol, keep);
        }
    }
}

impl FlowSink for Decoder {
    fn flow_event(&mut self, event: FlowEvent<'_>) {
        let keep = self.options.keep_events;
        match event {
            FlowEvent::Open {
                conn,
                at,
                frame,
                client,
                server,
                how,
            } => self.open(conn, at, frame, client, server, how),
            FlowEvent::Data {
                conn,
                at,
                frame,
                dir,
                offset,
                bytes,
            } => {
                if let Some(st) = self.state(conn) {
                    st.data(
                        Chunk {
                            at,
                            frame,
                            direction: dir,
                            stream_offset: offset,
                            bytes,
                        },
                        keep,
                    );
                }
            }
            FlowEvent::Gap {
                conn,
                at,
                frame,
                dir,
                offset,
                len,
            } => {
                if let Some(st) = self.state(conn) {
                    st.settle(keep);
                    let mut sink = ReportSink {
                        report: &mut st.report,
                        keep,
                        frame: Some(frame),
                    };
                    sink.event(Event {
                        frame: None,
                        at,
                        connection: conn,
                        channel: None,
                        direction: Some(dir),
                        kind: EventKind::Gap { len },
                    });
                    if let Stage::Decoding(d) = &mut st.stage {
                        d.gap(at, dir, offset, len, &mut sink);
                    }
                }
            }
            FlowEvent::Fin {
                conn,
                at,
                frame,
                dir,
            } => self.end(conn, at, Some(frame), Some(dir), StreamEnd::Fin),
            FlowEvent::Rst {
                conn,
                at,
                frame,
                dir,
            } => self.end(conn, at, Some(frame), Some(dir), StreamEnd::Rst),
            FlowEvent::End { conn, at } => self.end(conn, at, None, None, StreamEnd::EndOfCapture),
            FlowEvent::Diagnostic(mut f) => {
                f.location.file.get_or_insert_with(|| self.file.clone());
                if let Some(st) = f
                    .location
                    .connection
                    .and_then(|c| self.conns.get_mut(c.0 as usize))
                    .and_then(Option::as_mut)
                {
                    st.report.findings.push(f);
                } else {
                    self.diagnostics.push(f);
                }
            }
        }
    }
}

impl Decoder {
    fn end(
        &mut self,
        conn: ConnectionId,
        at: Micros,
        frame: Option<u64>,
        dir: Option<Direction>,
        how: StreamEnd,
    ) {
        let keep = self.options.keep_events;
        let Some(st) = self.state(conn) else { return };
        st.settle(keep);
        let dirs: Vec<Direction> = match (dir, how) {
            // A RST ends both directions at once.
            (Some(_), StreamEnd::Rst) | (None, _) => {
                vec![Direction::ClientToServer, Direction::ServerToClient]
            }
            (Some(d), _) => vec![d],
        };
        let close = match how {
            StreamEnd::Fin => CloseKind::Fin,
            StreamEnd::Rst => CloseKind::Rst,
            StreamEnd::EndOfCapture => CloseKind::EndOfCapture,
        };
        let mut sink = ReportSink {
            report: &mut st.report,
            keep,
            frame,
        };
        sink.event(Event {
            frame: None,
            at,
            connection: conn,
            channel: None,
            direction: dir,
            kind: EventKind::Close(close),
        });
        for d in dirs {
            if st.ended[d.index()] {
                continue;
            }
            st.ended[d.index()] = true;
            if let Stage::Decoding(dec) = &mut st.stage {
                dec.end(at, d, how, &mut sink);
            }
        }
    }
}

/// The key store a decode shares: the one given, or an empty one that
/// the capture's Decryption Secrets Blocks may fill.
fn key_store(options: &mut DecodeOptions) -> Arc<KeyStore> {
    options
        .keys
        .get_or_insert_with(|| Arc::new(KeyStore::default()))
        .clone()
}

/// The next frame, once the secrets of Decryption Secrets Blocks read so
/// far are in the store (editcap writes them before the packets; a TLS
/// connection looks its keys up at its ServerHello, frames later).
fn next_frame<'s, R: Read>(segments: &'s mut Segments<R>, keys: &KeyStore) -> Option<Frame<'s>> {
    for text in segments.take_secrets() {
        let mut findings = Vec::new();
        keys.add(&text, "Decryption Secrets Block", &mut findings);
        segments.diagnostics.extend(findings);
    }
    segments.next_frame()
}

/// Reads, reassembles and decodes a whole capture.
pub fn decode_capture<R: Read>(
    src: R,
    file: &str,
    mut options: DecodeOptions,
) -> Result<DecodeReport, CaptureError> {
    let mut segments = Segments::new(src, file)?;
    let mut reassembler = Reassembler::new(options.flow);
    let keys = key_store(&mut options);
    let mut decoder = Decoder::new(file, options);
    while let Some(frame) = next_frame(&mut segments, &keys) {
        if let Frame::Tcp(seg) = frame {
            reassembler.segment(&seg, &mut decoder);
        }
    }
    reassembler.finish(&mut decoder);
    let (connections, mut flow_diags) = decoder.finish();
    let mut diagnostics = std::mem::take(&mut segments.diagnostics);
    diagnostics.append(&mut flow_diags);
    Ok(DecodeReport {
        file: file.to_string(),
        start: segments.first_ts,
        stats: segments.stats.clone(),
        diagnostics,
        flows: reassembler.into_summaries(),
        connections,
    })
}

/// One row of `tether flows`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FlowRow {
    pub connection: ConnectionId,
    pub client: String,
    pub server: String,
    /// Seconds since the capture's first packet.
    pub start: f64,
    /// Seconds since the Unix epoch (or since the client's clock origin for
    /// bug-report captures).
    pub start_abs: f64,
    pub duration: f64,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    pub segments: u64,
    pub segments_c2s: u64,
    pub segments_s2c: u64,
    /// Frame bytes on the wire each way, as tshark's conversation table counts.
    pub wire_bytes_c2s: u64,
    pub wire_bytes_s2c: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub end: EndKind,
    pub closed_by: Option<&'static str>,
    pub opened: OpenKind,
    pub protocol: Protocol,
    /// The decoded stack (`tcp/tls/ws/rfb`), when decoded (`--keylog`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// The problems that mean an input was not fully read: in a capture a
/// truncated or corrupt record, a block or link type that could not be
/// decoded, a read error; in a bug-report zip a member that could not be
/// parsed or was refused (a hostile name, past a zip limit). (A peer's
/// protocol violation is a finding about the session, not a reading
/// failure; a zip lacking a member was still read whole.)
pub fn unread_parts(findings: &[Finding]) -> impl Iterator<Item = &Finding> {
    use crate::timeline::Severity;
    findings.iter().filter(|f| {
        (f.code.starts_with("capture.") && f.severity >= Severity::Warning)
            || ((f.code.starts_with("bugreport.") || f.code.starts_with("limit.zip"))
                && f.severity == Severity::Error)
    })
}

/// The `tether flows` table for one capture, with the capture diagnostics.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FlowTable {
    pub file: String,
    pub rows: Vec<FlowRow>,
    pub stats: crate::capture::CaptureStats,
    pub diagnostics: Vec<Finding>,
}

/// Sniffs each connection from its first bytes without decoding further.
struct SniffSink {
    prefixes: Vec<[Vec<u8>; 2]>,
    spice_ports: Vec<bool>,
    diagnostics: Vec<Finding>,
}

impl FlowSink for SniffSink {
    fn flow_event(&mut self, event: FlowEvent<'_>) {
        match event {
            FlowEvent::Open {
                conn,
                client,
                server,
                how,
                ..
            } => {
                let idx = conn.0 as usize;
                if self.prefixes.len() <= idx {
                    self.prefixes.resize_with(idx + 1, Default::default);
                    self.spice_ports.resize(idx + 1, false);
                }
                self.spice_ports[idx] = how == OpenKind::MidStream
                    && sniff::ryll_port_channel(client.port(), server.port()).is_some();
            }
            FlowEvent::Data {
                conn, dir, bytes, ..
            } => {
                if let Some(p) = self.prefixes.get_mut(conn.0 as usize) {
                    let p = &mut p[dir.index()];
                    let room = MAX_SNIFF_BYTES.saturating_sub(p.len());
                    p.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            FlowEvent::Diagnostic(f) => self.diagnostics.push(f),
            _ => {}
        }
    }
}

/// One flow row; `stack` when the connection was decoded.
fn flow_row(s: &ConnSummary, origin: Micros, protocol: Protocol, stack: Option<String>) -> FlowRow {
    FlowRow {
        connection: s.id,
        client: s.client.to_string(),
        server: s.server.to_string(),
        start: s.start.saturating_sub(origin).as_secs_f64(),
        start_abs: s.start.as_secs_f64(),
        duration: s.last.saturating_sub(s.start).as_secs_f64(),
        bytes_c2s: s.c2s.bytes,
        bytes_s2c: s.s2c.bytes,
        segments: s.c2s.segments + s.s2c.segments,
        segments_c2s: s.c2s.segments,
        segments_s2c: s.s2c.segments,
        wire_bytes_c2s: s.c2s.wire_bytes,
        wire_bytes_s2c: s.s2c.wire_bytes,
        gaps: s.c2s.gaps + s.s2c.gaps,
        gap_bytes: s.c2s.gap_bytes + s.s2c.gap_bytes,
        end: s.end,
        closed_by: s.closed_by.map(Direction::sender),
        opened: s.opened,
        protocol,
        stack,
    }
}

/// The flow table from a whole decode, each row naming its decoded stack:
/// what `flows --keylog` shows, the protocols inside TLS included.
pub fn flow_table_decoded<R: Read>(
    src: R,
    file: &str,
    options: DecodeOptions,
) -> Result<FlowTable, CaptureError> {
    let r = decode_capture(src, file, options)?;
    let origin = r.start.unwrap_or_default();
    let rows = r
        .flows
        .iter()
        .map(|s| {
            let c = r.connections.iter().find(|c| c.connection == s.id);
            let protocol = c.map_or(Protocol::Unknown, |c| c.protocol);
            let stack = c.map(|c| c.stack.join("/"));
            flow_row(s, origin, protocol, stack)
        })
        .collect();
    Ok(FlowTable {
        file: file.to_string(),
        rows,
        stats: r.stats,
        diagnostics: r.diagnostics,
    })
}

/// Builds the flow table of a capture in one streaming pass.
pub fn flow_table<R: Read>(
    src: R,
    file: &str,
    config: FlowConfig,
) -> Result<FlowTable, CaptureError> {
    let mut segments = Segments::new(src, file)?;
    let mut reassembler = Reassembler::new(config);
    let mut sink = SniffSink {
        prefixes: Vec::new(),
        spice_ports: Vec::new(),
        diagnostics: Vec::new(),
    };
    while let Some(frame) = segments.next_frame() {
        if let Frame::Tcp(seg) = frame {
            reassembler.segment(&seg, &mut sink);
        }
    }
    reassembler.finish(&mut sink);
    let origin = segments.first_ts.unwrap_or_default();
    let rows = reassembler
        .summaries()
        .iter()
        .map(|s| {
            let idx = s.id.0 as usize;
            let protocol = if sink.spice_ports.get(idx).copied().unwrap_or(false) {
                Protocol::Spice
            } else {
                match sink.prefixes.get(idx) {
                    Some([c, srv]) => match sniff::sniff(c, srv) {
                        Sniff::Known(p) => p,
                        Sniff::NeedMore => Protocol::Unknown,
                    },
                    None => Protocol::Unknown,
                }
            };
            flow_row(s, origin, protocol, None)
        })
        .collect();
    let mut diagnostics = std::mem::take(&mut segments.diagnostics);
    diagnostics.extend(sink.diagnostics.into_iter().map(|mut f| {
        f.location.file.get_or_insert_with(|| file.to_string());
        f
    }));
    Ok(FlowTable {
        file: file.to_string(),
        rows,
        stats: segments.stats.clone(),
        diagnostics,
    })
}

/// A flow event that owns its bytes, to cross to a worker thread.
enum OwnedFlowEvent {
    Open {
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
        how: OpenKind,
    },
    Data {
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        bytes: Vec<u8>,
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
    End {
        conn: ConnectionId,
        at: Micros,
    },
    Diagnostic(Finding),
}

impl OwnedFlowEvent {
    fn from_borrowed(e: FlowEvent<'_>) -> OwnedFlowEvent {
        match e {
            FlowEvent::Open {
                conn,
                at,
                frame,
                client,
                server,
                how,
            } => OwnedFlowEvent::Open {
                conn,
                at,
                frame,
                client,
                server,
                how,
            },
            FlowEvent::Data {
                conn,
                at,
                frame,
                dir,
                offset,
                bytes,
            } => OwnedFlowEvent::Data {
                conn,
                at,
                frame,
                dir,
                offset,
                bytes: bytes.to_vec(),
            },
            FlowEvent::Gap {
                conn,
                at,
                frame,
                dir,
                offset,
                len,
            } => OwnedFlowEvent::Gap {
                conn,
                at,
                frame,
                dir,
                offset,
                len,
            },
            FlowEvent::Fin {
                conn,
                at,
                frame,
                dir,
            } => OwnedFlowEvent::Fin {
                conn,
                at,
                frame,
                dir,
            },
            FlowEvent::Rst {
                conn,
                at,
                frame,
                dir,
            } => OwnedFlowEvent::Rst {
                conn,
                at,
                frame,
                dir,
            },
            FlowEvent::End { conn, at } => OwnedFlowEvent::End { conn, at },
            FlowEvent::Diagnostic(f) => OwnedFlowEvent::Diagnostic(f),
        }
    }

    fn conn(&self) -> Option<ConnectionId> {
        match self {
            OwnedFlowEvent::Open { conn, .. }
            | OwnedFlowEvent::Data { conn, .. }
            | OwnedFlowEvent::Gap { conn, .. }
            | OwnedFlowEvent::Fin { conn, .. }
            | OwnedFlowEvent::Rst { conn, .. }
            | OwnedFlowEvent::End { conn, .. } => Some(*conn),
            OwnedFlowEvent::Diagnostic(f) => f.location.connection,
        }
    }

    fn replay(&self, sink: &mut dyn FlowSink) {
        let e = match self {
            OwnedFlowEvent::Open {
                conn,
                at,
                frame,
                client,
                server,
                how,
            } => FlowEvent::Open {
                conn: *conn,
                at: *at,
                frame: *frame,
                client: *client,
                server: *server,
                how: *how,
            },
            OwnedFlowEvent::Data {
                conn,
                at,
                frame,
                dir,
                offset,
                bytes,
            } => FlowEvent::Data {
                conn: *conn,
                at: *at,
                frame: *frame,
                dir: *dir,
                offset: *offset,
                bytes,
            },
            OwnedFlowEvent::Gap {
                conn,
                at,
                frame,
                dir,
                offset,
                len,
            } => FlowEvent::Gap {
                conn: *conn,
                at: *at,
                frame: *frame,
                dir: *dir,
                offset: *offset,
                len: *len,
            },
            OwnedFlowEvent::Fin {
                conn,
                at,
                frame,
                dir,
            } => FlowEvent::Fin {
                conn: *conn,
                at: *at,
                frame: *frame,
                dir: *dir,
            },
            OwnedFlowEvent::Rst {
                conn,
                at,
                frame,
                dir,
            } => FlowEvent::Rst {
                conn: *conn,
                at: *at,
                frame: *frame,
                dir: *dir,
            },
            OwnedFlowEvent::End { conn, at } => FlowEvent::End {
                conn: *conn,
                at: *at,
            },
            OwnedFlowEvent::Diagnostic(f) => FlowEvent::Diagnostic(f.clone()),
        };
        sink.flow_event(e);
    }
}

/// Bytes batched per worker before they are handed over.
const BATCH_BYTES: usize = 256 * 1024;

/// Routes each connection's events to one worker, in batches.
struct Router {
    senders: Vec<std::sync::mpsc::SyncSender<Vec<OwnedFlowEvent>>>,
    batches: Vec<Vec<OwnedFlowEvent>>,
    batch_bytes: Vec<usize>,
    diagnostics: Vec<Finding>,
}

impl Router {
    fn flush(&mut self, w: usize) {
        if !self.batches[w].is_empty() {
            let batch = std::mem::take(&mut self.batches[w]);
            self.batch_bytes[w] = 0;
            // A worker only goes away if it panicked; its report is lost either way.
            let _ = self.senders[w].send(batch);
        }
    }
}

impl FlowSink for Router {
    fn flow_event(&mut self, event: FlowEvent<'_>) {
        let owned = OwnedFlowEvent::from_borrowed(event);
        let Some(conn) = owned.conn() else {
            if let OwnedFlowEvent::Diagnostic(f) = owned {
                self.diagnostics.push(f);
            }
            return;
        };
        let w = conn.0 as usize % self.senders.len();
        if let OwnedFlowEvent::Data { bytes, .. } = &owned {
            self.batch_bytes[w] += bytes.len();
        }
        self.batch_bytes[w] += 64;
        self.batches[w].push(owned);
        if self.batch_bytes[w] >= BATCH_BYTES {
            self.flush(w);
        }
    }
}

/// Like [`decode_capture`], with connections decoded on `threads` workers
/// while this thread reads and reassembles. The report is identical to the
/// single-threaded one: each connection is decoded by one worker in
/// capture order, and reports are merged by connection number.
pub fn decode_capture_parallel<R: Read>(
    src: R,
    file: &str,
    mut options: DecodeOptions,
    threads: usize,
) -> Result<DecodeReport, CaptureError> {
    if threads <= 1 {
        return decode_capture(src, file, options);
    }
    let keys = key_store(&mut options);
    let mut segments = Segments::new(src, file)?;
    let mut reassembler = Reassembler::new(options.flow);
    let mut receivers = Vec::new();
    let mut router = Router {
        senders: Vec::new(),
        batches: Vec::new(),
        batch_bytes: Vec::new(),
        diagnostics: Vec::new(),
    };
    for _ in 0..threads {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<OwnedFlowEvent>>(4);
        router.senders.push(tx);
        router.batches.push(Vec::new());
        router.batch_bytes.push(0);
        receivers.push(rx);
    }
    let mut results: Vec<(Vec<ConnectionReport>, Vec<Finding>)> = Vec::new();
    // Scoped threads: the reader stays on this thread (it need not be Send).
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for rx in receivers {
            let done_tx = done_tx.clone();
            let file = file.to_string();
            let options = options.clone();
            scope.spawn(move || {
                let mut decoder = Decoder::new(&file, options);
                while let Ok(batch) = rx.recv() {
                    for e in &batch {
                        e.replay(&mut decoder);
                    }
                }
                let _ = done_tx.send(decoder.finish());
            });
        }
        drop(done_tx);
        while let Some(frame) = next_frame(&mut segments, &keys) {
            if let Frame::Tcp(seg) = frame {
                reassembler.segment(&seg, &mut router);
            }
        }
        reassembler.finish(&mut router);
        for w in 0..threads {
            router.flush(w);
        }
        router.senders.clear();
        results.extend(done_rx.iter());
    });
    let mut connections = Vec::new();
    let mut diagnostics = std::mem::take(&mut segments.diagnostics);
    diagnostics.append(&mut router.diagnostics);
    for (mut conns, mut diags) in results {
        connections.append(&mut conns);
        diagnostics.append(&mut diags);
    }
    connections.sort_by_key(|c| c.connection);
    Ok(DecodeReport {
        file: file.to_string(),
        start: segments.first_ts,
        stats: segments.stats.clone(),
        diagnostics,
        flows: reassembler.into_summaries(),
        connections,
    })
}
