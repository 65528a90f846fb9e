//! `tether flows`: the flow table, sniffed (or decoded with keys).

use super::{DecodeOptions, FlowRow, FlowTable, decode_capture};
use crate::capture::{CaptureError, Frame, Segments};
use crate::decode::sniff::{self, MAX_SNIFF_BYTES, Protocol, Sniff};
use crate::flow::{ConnSummary, FlowConfig, FlowEvent, FlowSink, Reassembler};
use crate::timeline::{Direction, Finding, Micros, OpenKind};
use std::io::Read;

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
