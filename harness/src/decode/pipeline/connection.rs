//! Decoding each connection: the sniffing stage, the protocol decoder,
//! and the report its events are counted into.

use super::{Activity, ConnectionReport, Counts, DecodeOptions, EventFold};
use crate::decode::sniff::{self, Protocol};
use crate::decode::stage::SniffStage;
use crate::decode::{Chunk, EventSink, StreamContext, StreamEnd, decoder_for};
use crate::flow::{FlowEvent, FlowSink};
use crate::timeline::{
    CloseKind, ConnectionId, Direction, Event, EventKind, Finding, Micros, OpenKind,
};

struct ConnState {
    report: ConnectionReport,
    fold: Option<Box<dyn EventFold>>,
    stage: SniffStage,
    ended: [bool; 2],
}

/// What a connection's report keeps besides activity and findings.
#[derive(Clone, Copy)]
struct Keep {
    events: bool,
    counts: bool,
}

/// Counts and optionally keeps the events of one connection.
struct ReportSink<'a> {
    report: &'a mut ConnectionReport,
    fold: &'a mut Option<Box<dyn EventFold>>,
    keep: Keep,
    /// The frame being fed: every event it completes carries it.
    frame: Option<u64>,
}

impl EventSink for ReportSink<'_> {
    fn set_frame(&mut self, frame: Option<u64>) -> Option<u64> {
        std::mem::replace(&mut self.frame, frame)
    }

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
                if let Some(counts) = counts.filter(|_| self.keep.counts) {
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
        if let Some(fold) = self.fold.as_mut() {
            fold.event(&ev);
        }
        if self.keep.events {
            self.report.events.push(ev);
        }
    }
}

/// The decode stage as a [`FlowSink`]: feed it flow events, then call
/// [`Decoder::finish`].
pub struct Decoder {
    options: DecodeOptions,
    /// By connection id; boxed, so that each connection the capture ever
    /// held costs a pointer once it is let go of.
    conns: Vec<Option<Box<ConnState>>>,
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

    fn keep(&self) -> Keep {
        Keep {
            events: self.options.keep_events,
            counts: !self.options.drop_counts,
        }
    }

    fn state(&mut self, conn: ConnectionId) -> Option<&mut ConnState> {
        self.conns
            .get_mut(conn.0 as usize)
            .and_then(Option::as_mut)
            .map(|b| &mut **b)
    }

    /// A connection as decoded so far, with its current protocol stack
    /// (for live mode, which reports while the connection runs).
    pub fn peek(&self, conn: ConnectionId) -> Option<(&ConnectionReport, Vec<&'static str>)> {
        let state = self.conns.get(conn.0 as usize)?.as_ref()?;
        let stack = match state.stage.decoder() {
            Some(d) => d.stack(),
            None => state.report.stack.clone(),
        };
        Some((&state.report, stack))
    }

    /// The reports of connections let go of since the last call.
    pub fn take_done(&mut self) -> Vec<ConnectionReport> {
        std::mem::take(&mut self.done)
    }

    pub fn finish(mut self) -> (Vec<ConnectionReport>, Vec<Finding>) {
        for state in std::mem::take(&mut self.conns).into_iter().flatten() {
            self.done.push(state.into_report());
        }
        self.done.sort_by_key(|r| r.connection);
        (self.done, self.diagnostics)
    }

    /// The reassembler let go of a closed connection: nothing more comes
    /// for it, so its report is final and its decoder (buffers, inflate
    /// state) is freed now, not at the end of a capture that may run hours
    /// of other clients longer.
    fn release(&mut self, conn: ConnectionId) {
        if let Some(state) = self.conns.get_mut(conn.0 as usize).and_then(Option::take) {
            self.done.push(state.into_report());
        }
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
            folded: None,
        };
        let mut stage = None;
        // Bug-report captures have no handshake; their ports name the channel.
        if how == OpenKind::MidStream
            && let Some(ch) = sniff::ryll_port_channel(client.port(), server.port())
                .or(self.options.spice_channel_hint)
        {
            ctx.mid_stream_spice_channel = Some(ch);
            if let Some(d) = decoder_for(Protocol::Spice, &ctx) {
                report.protocol = Protocol::Spice;
                report.stack = d.stack();
                stage = Some(SniffStage::decoding(ctx.clone(), d));
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
        let stage = stage.unwrap_or_else(|| SniffStage::new(ctx, decoder_for));
        let fold = self.options.fold.as_ref().map(|f| (f.0)());
        self.conns[idx] = Some(Box::new(ConnState {
            report,
            fold,
            stage,
            ended: [false, false],
        }));
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
    fn into_report(mut self) -> ConnectionReport {
        if let Some(d) = self.stage.decoder() {
            // A layered decoder (WebSocket) learns its inner protocol late.
            self.report.stack = d.stack();
            self.report.session = d.session();
        }
        self.report.folded = self.fold.map(|f| f.finish());
        self.report
    }

    fn data(&mut self, chunk: Chunk<'_>, keep: Keep) {
        touch(&mut self.report, chunk.direction, chunk.at);
        let mut sink = ReportSink {
            report: &mut self.report,
            fold: &mut self.fold,
            keep,
            frame: Some(chunk.frame),
        };
        if let Some(protocol) = self.stage.data(chunk, &mut sink) {
            self.started(protocol);
        }
    }

    /// Sniffing named the protocol: the report says so.
    fn started(&mut self, protocol: Protocol) {
        self.report.protocol = protocol;
        match self.stage.decoder() {
            Some(d) => self.report.stack = d.stack(),
            None if protocol == Protocol::Tls => self.report.stack = vec!["tcp", "tls"],
            None => {}
        }
    }

    /// Sniffing cannot wait any longer (gap or end): decide on what we have.
    /// Bytes the capture lost: a gap event, then the decoder told.
    #[allow(clippy::too_many_arguments)]
    fn gap(
        &mut self,
        conn: ConnectionId,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        len: u64,
        keep: Keep,
    ) {
        self.settle(keep);
        let mut sink = ReportSink {
            report: &mut self.report,
            fold: &mut self.fold,
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
        self.stage.gap(at, dir, offset, len, &mut sink);
    }

    fn settle(&mut self, keep: Keep) {
        let mut sink = ReportSink {
            report: &mut self.report,
            fold: &mut self.fold,
            keep,
            frame: None,
        };
        if let Some(protocol) = self.stage.settle(&mut sink) {
            self.started(protocol);
        }
    }
}

impl FlowSink for Decoder {
    fn flow_event(&mut self, event: FlowEvent<'_>) {
        let keep = self.keep();
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
                    st.gap(conn, at, frame, dir, offset, len, keep);
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
            FlowEvent::Released { conn } => self.release(conn),
            FlowEvent::Diagnostic(f) => self.diagnostic(f),
        }
    }
}

impl Decoder {
    /// A finding of the flow layer: its connection's, or the input's.
    fn diagnostic(&mut self, mut f: Finding) {
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

    fn end(
        &mut self,
        conn: ConnectionId,
        at: Micros,
        frame: Option<u64>,
        dir: Option<Direction>,
        how: StreamEnd,
    ) {
        let keep = self.keep();
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
            fold: &mut st.fold,
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
            st.stage.end(at, d, how, &mut sink);
        }
    }
}
