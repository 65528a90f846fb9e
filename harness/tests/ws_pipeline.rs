//! WebSocket through the whole pipeline on precisely constructed captures
//! with a lost segment: a loss inside a frame's payload keeps the framing
//! (the inner decoder is told of the gap); a loss that takes a frame header
//! loses the framing that way, reported once with its location, and the
//! other direction still decodes.

use std::net::SocketAddr;
use tether::capture::writer::{Flags, PcapWriter, tcp_frame};
use tether::decode::pipeline::{ConnectionReport, DecodeOptions, decode_capture};
use tether::decode::ws::frame::{FrameSpec, OpCode};
use tether::timeline::{EventKind, Micros};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Writes a capture of one connection; `drop_s2c` removes the server
/// segment with that index (0-based among server data segments).
fn capture(s2c_segments: &[Vec<u8>], drop_s2c: Option<usize>) -> Vec<u8> {
    let c: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let s: SocketAddr = "10.0.0.2:6080".parse().unwrap();
    let fl = |syn, fin| Flags {
        syn,
        ack: !syn || fin,
        fin,
        psh: false,
        rst: false,
    };
    let req = format!(
        "GET /websockify HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
    )
    .into_bytes();
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut frames = vec![
        tcp_frame(c, s, cseq, 0, fl(true, false), b""),
        tcp_frame(
            s,
            c,
            sseq,
            cseq + 1,
            Flags {
                syn: true,
                ack: true,
                ..Flags::default()
            },
            b"",
        ),
    ];
    cseq += 1;
    sseq += 1;
    frames.push(tcp_frame(c, s, cseq, sseq, fl(false, false), &req));
    cseq += req.len() as u32;
    frames.push(tcp_frame(s, c, sseq, cseq, fl(false, false), &resp));
    sseq += resp.len() as u32;
    for (i, seg) in s2c_segments.iter().enumerate() {
        if drop_s2c != Some(i) {
            frames.push(tcp_frame(s, c, sseq, cseq, fl(false, false), seg));
        }
        sseq += seg.len() as u32;
    }
    let close = FrameSpec::new(OpCode::Close, 1000u16.to_be_bytes().to_vec())
        .masked([1, 2, 3, 4])
        .encode();
    frames.push(tcp_frame(c, s, cseq, sseq, fl(false, false), &close));
    cseq += close.len() as u32;
    // The server answers the close, then both sides end TCP.
    let reply = FrameSpec::new(OpCode::Close, 1000u16.to_be_bytes().to_vec()).encode();
    frames.push(tcp_frame(s, c, sseq, cseq, fl(false, false), &reply));
    sseq += reply.len() as u32;
    frames.push(tcp_frame(c, s, cseq, sseq, fl(false, true), b""));
    frames.push(tcp_frame(s, c, sseq, cseq + 1, fl(false, true), b""));
    let mut w = PcapWriter::new(Vec::new(), 1, false, false).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(Micros(1_700_000_000_000_000 + i as u64 * 1000), f)
            .unwrap();
    }
    w.into_inner()
}

fn decode(bytes: &[u8]) -> ConnectionReport {
    let opts = DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    let mut r = decode_capture(bytes, "built.pcap", opts).unwrap();
    assert_eq!(r.connections.len(), 1);
    r.connections.remove(0)
}

/// RFB banner frame, then one 3000-byte binary frame cut into three
/// segments, then a small frame.
fn segments() -> Vec<Vec<u8>> {
    let banner = FrameSpec::new(OpCode::Binary, b"RFB 003.008\n".to_vec()).encode();
    let big = FrameSpec::new(OpCode::Binary, vec![7u8; 3000]).encode();
    let small = FrameSpec::new(OpCode::Binary, vec![9u8; 10]).encode();
    vec![
        banner,
        big[..1000].to_vec(),
        big[1000..2000].to_vec(),
        big[2000..].to_vec(),
        small,
    ]
}

fn names(c: &ConnectionReport) -> Vec<String> {
    c.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message { name, .. } => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn whole_capture_decodes_cleanly() {
    let c = decode(&capture(&segments(), None));
    assert_eq!(c.stack, vec!["tcp", "ws", "rfb"]);
    assert_eq!(c.counts.s2c.get("binary"), Some(&3));
    let ws_findings: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.code.starts_with("ws."))
        .collect();
    assert!(ws_findings.is_empty(), "{ws_findings:?}");
}

#[test]
fn loss_inside_a_payload_keeps_the_framing() {
    let c = decode(&capture(&segments(), Some(2)));
    assert!(
        c.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Gap { len: 1000 })),
        "{:?}",
        names(&c)
    );
    // All three server frames still decoded, and the client's close.
    assert_eq!(c.counts.s2c.get("binary"), Some(&3), "{:?}", names(&c));
    assert_eq!(c.counts.c2s.get("close"), Some(&1));
    assert!(
        c.findings.iter().all(|f| f.code != "ws.gap_lost_framing"),
        "{:?}",
        c.findings
    );
}

#[test]
fn loss_of_a_frame_header_is_reported_once_with_its_location() {
    // Segment 1 holds the big frame's header.
    let c = decode(&capture(&segments(), Some(1)));
    let lost: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.code == "ws.gap_lost_framing")
        .collect();
    assert_eq!(lost.len(), 1, "{:?}", c.findings);
    let loc = &lost[0].location;
    assert_eq!(
        loc.direction,
        Some(tether::timeline::Direction::ServerToClient)
    );
    assert!(loc.stream_offset.is_some() && loc.connection.is_some());
    // Only the banner was framed that way; the client side still decodes.
    assert_eq!(c.counts.s2c.get("binary"), Some(&1));
    assert_eq!(c.counts.c2s.get("close"), Some(&1));
    // The server's close reply went by unseen: no claim that it was missing.
    assert!(
        c.findings.iter().all(|f| f.code != "ws.close_not_answered"),
        "{:?}",
        c.findings
    );
}
