//! The live recording: each proxied connection becomes one synthetic TCP
//! connection (client address → upstream address, handshake at accept,
//! FIN/RST at close), each forwarded chunk one Ethernet/IP/TCP frame. The
//! frame is written to the pcap and the very same bytes are parsed back
//! and pushed through reassembly and the decoders, so the live decode and
//! a later `tether decode` of the file see identical input. Sans-IO: the
//! caller supplies every timestamp.

use crate::capture::RawPacket;
use crate::capture::link::{linktype, tcp_segment};
use crate::capture::writer::{Flags, PcapWriter, tcp_frame};
use crate::decode::pipeline::{ConnectionReport, DecodeOptions, Decoder};
use crate::flow::{FlowEvent, FlowSink, Reassembler};
use crate::timeline::{ConnectionId, Direction, Finding, Micros};
use std::io::{self, Write};
use std::net::SocketAddr;

/// Largest payload per recorded frame: well inside an IPv4 datagram.
pub const MAX_FRAME_PAYLOAD: usize = 32 * 1024;

/// One recorded connection's sequence space.
#[derive(Debug, Clone)]
struct RecConn {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number each way, indexed by [`Direction::index`].
    next_seq: [u32; 2],
    flow: Option<ConnectionId>,
    /// Findings already handed out by [`Recorder::new_findings`].
    reported: usize,
}

/// A handle on a recorded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecId(pub usize);

/// Passes flow events on to the decoder and notes which connection id the
/// reassembler gave to the one just opened.
struct Tap<'a> {
    decoder: &'a mut Decoder,
    opened: Option<ConnectionId>,
}

impl FlowSink for Tap<'_> {
    fn flow_event(&mut self, event: FlowEvent<'_>) {
        if let FlowEvent::Open { conn, .. } = &event {
            self.opened = Some(*conn);
        }
        self.decoder.flow_event(event);
    }
}

pub struct Recorder<W: Write> {
    pcap: PcapWriter<W>,
    frames: u64,
    reassembler: Reassembler,
    decoder: Decoder,
    conns: Vec<RecConn>,
}

impl<W: Write> Recorder<W> {
    pub fn new(out: W, file: &str) -> io::Result<Recorder<W>> {
        let options = DecodeOptions::default();
        Ok(Recorder {
            pcap: PcapWriter::new(out, linktype::ETHERNET as u32, false, false)?,
            frames: 0,
            reassembler: Reassembler::new(options.flow),
            decoder: Decoder::new(file, options),
            conns: Vec::new(),
        })
    }

    fn frame(
        &mut self,
        id: RecId,
        at: Micros,
        dir: Direction,
        flags: Flags,
        payload: &[u8],
    ) -> io::Result<()> {
        let c = &self.conns[id.0];
        let (src, dst) = match dir {
            Direction::ClientToServer => (c.client, c.server),
            Direction::ServerToClient => (c.server, c.client),
        };
        let seq = c.next_seq[dir.index()];
        let ack = c.next_seq[dir.reverse().index()];
        let bytes = tcp_frame(src, dst, seq, ack, flags, payload);
        let c = &mut self.conns[id.0];
        let used = payload.len() as u32 + u32::from(flags.syn) + u32::from(flags.fin);
        c.next_seq[dir.index()] = seq.wrapping_add(used);
        self.pcap.write_packet(at, &bytes)?;
        self.frames += 1;
        let raw = RawPacket {
            frame: self.frames,
            file_offset: 0,
            ts: at,
            linktype: linktype::ETHERNET,
            data: &bytes,
            orig_len: bytes.len() as u32,
        };
        // The frame was built just above, so it always parses.
        if let Ok(seg) = tcp_segment(&raw) {
            let mut tap = Tap {
                decoder: &mut self.decoder,
                opened: None,
            };
            self.reassembler.segment(&seg, &mut tap);
            if let Some(flow) = tap.opened {
                self.conns[id.0].flow = Some(flow);
            }
        }
        Ok(())
    }

    /// A connection accepted at `at`: SYN, SYN-ACK, ACK.
    pub fn open(
        &mut self,
        at: Micros,
        client: SocketAddr,
        server: SocketAddr,
    ) -> io::Result<RecId> {
        let id = RecId(self.conns.len());
        // Fixed initial sequence numbers: same traffic, same file.
        let isn = [0x1000_0000u32 ^ id.0 as u32, 0x7000_0000u32 ^ id.0 as u32];
        self.conns.push(RecConn {
            client,
            server,
            next_seq: isn,
            flow: None,
            reported: 0,
        });
        let c2s = Direction::ClientToServer;
        let s2c = Direction::ServerToClient;
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        self.frame(id, at, c2s, syn, &[])?;
        self.frame(id, at, s2c, Flags { ack: true, ..syn }, &[])?;
        self.frame(id, at, c2s, ack(), &[])?;
        Ok(id)
    }

    /// Bytes delivered `dir` at `at`, one frame per [`MAX_FRAME_PAYLOAD`].
    pub fn data(&mut self, id: RecId, at: Micros, dir: Direction, bytes: &[u8]) -> io::Result<()> {
        for piece in bytes.chunks(MAX_FRAME_PAYLOAD) {
            let flags = Flags { psh: true, ..ack() };
            self.frame(id, at, dir, flags, piece)?;
        }
        Ok(())
    }

    /// A FIN sent by the `dir` sender.
    pub fn fin(&mut self, id: RecId, at: Micros, dir: Direction) -> io::Result<()> {
        self.frame(id, at, dir, Flags { fin: true, ..ack() }, &[])
    }

    /// A RST sent by the `dir` sender.
    pub fn rst(&mut self, id: RecId, at: Micros, dir: Direction) -> io::Result<()> {
        self.frame(id, at, dir, Flags { rst: true, ..ack() }, &[])
    }

    /// Findings the decoders raised on this connection since the last call.
    pub fn new_findings(&mut self, id: RecId) -> Vec<Finding> {
        let c = &mut self.conns[id.0];
        let Some(flow) = c.flow else {
            return Vec::new();
        };
        match self.decoder.peek(flow) {
            Some((report, _)) if report.findings.len() > c.reported => {
                let new = report.findings[c.reported..].to_vec();
                c.reported = report.findings.len();
                new
            }
            _ => Vec::new(),
        }
    }

    /// The protocol stack the decoders have named so far.
    pub fn stack(&self, id: RecId) -> Vec<&'static str> {
        self.conns[id.0]
            .flow
            .and_then(|f| self.decoder.peek(f))
            .map_or_else(|| vec!["tcp"], |(_, stack)| stack)
    }

    pub fn flow_id(&self, id: RecId) -> Option<ConnectionId> {
        self.conns[id.0].flow
    }

    /// Ends the recording: connections still open end with the capture,
    /// as a reader of the file would see them.
    pub fn finish(mut self) -> (W, Vec<ConnectionReport>, Vec<Finding>) {
        self.reassembler.finish(&mut self.decoder);
        let (reports, diags) = self.decoder.finish();
        (self.pcap.into_inner(), reports, diags)
    }
}

fn ack() -> Flags {
    Flags {
        ack: true,
        ..Flags::default()
    }
}

/// Decodes a recording as `tether decode` would, for checking that the
/// file and the live decode agree.
pub fn decode_recording(bytes: &[u8], file: &str) -> Result<Vec<ConnectionReport>, String> {
    crate::decode::pipeline::decode_capture(bytes, file, DecodeOptions::default())
        .map(|r| r.connections)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::ws::frame::{FrameSpec, OpCode};
    use crate::flow::EndKind;
    use crate::timeline::EventKind;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    const UPGRADE: &[u8] =
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const ACCEPT: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    /// A WebSocket session recorded live decodes the same from the file,
    /// with the RSTs where they were recorded.
    #[test]
    fn live_decode_and_file_decode_agree() {
        let mut rec = Recorder::new(Vec::new(), "live.pcap").unwrap();
        let t0 = Micros(1_700_000_000_000_000);
        let at = |ms: u64| Micros(t0.0 + ms * 1000);
        let id = rec.open(at(0), addr(40000), addr(6201)).unwrap();
        rec.data(id, at(1), Direction::ClientToServer, UPGRADE)
            .unwrap();
        rec.data(id, at(2), Direction::ServerToClient, ACCEPT)
            .unwrap();
        let key = [9, 8, 7, 6];
        let hello = FrameSpec::new(OpCode::Text, b"hello".to_vec())
            .masked(key)
            .encode();
        // Split across frames of the recording, as a proxy read may.
        rec.data(id, at(3), Direction::ClientToServer, &hello[..4])
            .unwrap();
        rec.data(id, at(4), Direction::ClientToServer, &hello[4..])
            .unwrap();
        rec.data(
            id,
            at(5),
            Direction::ServerToClient,
            &FrameSpec::new(OpCode::Text, b"hello".to_vec()).encode(),
        )
        .unwrap();
        rec.data(
            id,
            at(6),
            Direction::ServerToClient,
            &FrameSpec::new(OpCode::Ping, b"p".to_vec()).encode(),
        )
        .unwrap();
        rec.data(
            id,
            at(7),
            Direction::ClientToServer,
            &FrameSpec::new(OpCode::Pong, b"p".to_vec())
                .masked(key)
                .encode(),
        )
        .unwrap();
        // A payload over one frame's worth is split, not truncated.
        let big = FrameSpec::new(OpCode::Text, vec![b'a'; 100_000]).encode();
        rec.data(id, at(8), Direction::ServerToClient, &big)
            .unwrap();
        assert!(
            rec.stack(id).starts_with(&["tcp", "ws"]),
            "{:?}",
            rec.stack(id)
        );
        assert!(rec.new_findings(id).is_empty());
        rec.rst(id, at(2000), Direction::ServerToClient).unwrap();
        rec.rst(id, at(2000), Direction::ClientToServer).unwrap();
        let (file, live, _) = rec.finish();
        let from_file = decode_recording(&file, "live.pcap").unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(
            serde_json::to_string(&live).unwrap(),
            serde_json::to_string(&from_file).unwrap()
        );
        let c = &from_file[0];
        assert_eq!(c.counts.c2s.get("text"), Some(&1), "{:?}", c.counts);
        assert_eq!(c.counts.s2c.get("text"), Some(&2), "{:?}", c.counts);
        assert_eq!((c.s2c.pings, c.c2s.pongs), (1, 1));
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        let table = crate::decode::pipeline::flow_table(&file[..], "live.pcap", Default::default())
            .unwrap();
        assert_eq!(table.rows.len(), 1);
        let row = &table.rows[0];
        assert_eq!(row.end, EndKind::Rst);
        assert_eq!(row.bytes_s2c as usize, ACCEPT.len() + 7 + 3 + big.len());
        assert_eq!(row.start_abs, t0.as_secs_f64());
        assert!((row.duration - 2.0).abs() < 1e-9, "{}", row.duration);
        // Keep events to see the close where it was recorded.
        let full = crate::decode::pipeline::decode_capture(
            &file[..],
            "live.pcap",
            DecodeOptions {
                keep_events: true,
                ..Default::default()
            },
        )
        .unwrap();
        let closes: Vec<Micros> = full.connections[0]
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Close(crate::timeline::CloseKind::Rst)))
            .map(|e| e.at)
            .collect();
        assert_eq!(closes.first(), Some(&at(2000)));
    }
}
