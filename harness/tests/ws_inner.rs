//! The inner stream: binary messages (and base64-subprotocol text) are
//! handed to an inner decoder as a byte stream, each chunk stamped with the
//! time and capture frame that carried it, with contiguous inner offsets.
//! A recording decoder stands in for RFB/SPICE; the recorded noVNC capture
//! shows the real stack becomes tcp/ws/rfb.

mod ws_support;

use base64::Engine;
use std::path::Path;
use tether::capture::{Frame, Segments};
use tether::decode::ws::WsDecoder;
use tether::decode::ws::frame::{FrameSpec, OpCode};
use tether::decode::{Chunk, StreamContext, StreamDecoder, StreamEnd};
use tether::flow::{FlowConfig, FlowEvent, FlowSink, Reassembler};
use tether::timeline::{Event, EventKind, Micros};
use ws_support::*;

fn websockify_conv() -> Conv {
    Conv::with_headers(
        "Sec-WebSocket-Protocol: binary\r\n",
        "Sec-WebSocket-Protocol: binary\r\n",
    )
    .server(FrameSpec::new(OpCode::Binary, b"RFB 003.008\n".to_vec()))
    .client(FrameSpec::new(OpCode::Binary, b"RFB 003.008\n".to_vec()))
    .server(FrameSpec::new(OpCode::Binary, vec![1, 1]))
    .client(FrameSpec::new(OpCode::Ping, b"not inner".to_vec()))
    .client(FrameSpec::new(OpCode::Text, b"not inner either".to_vec()))
    .client(FrameSpec::new(OpCode::Binary, vec![1]))
    .server(FrameSpec::new(OpCode::Binary, vec![0, 0, 0, 0]))
}

#[test]
fn binary_messages_become_the_inner_stream_with_frame_times() {
    let conv = websockify_conv();
    let r = run_with(&conv, Chop::Writes, None, Some(recorder_factory));
    assert_eq!(r.decoder.stack(), vec!["tcp", "ws", "rfb"]);
    assert!(codes(&r.events).is_empty(), "{:?}", codes(&r.events));
    let chunks = inner_chunks(&r.events);
    assert_eq!(
        chunks,
        vec![
            (S2C, 0, "RFB 003.008\n".to_string()),
            (C2S, 0, "RFB 003.008\n".to_string()),
            (S2C, 12, "\u{1}\u{1}".to_string()),
            (C2S, 12, "\u{1}".to_string()),
            (S2C, 14, "\0\0\0\0".to_string()),
        ]
    );
    // Each inner chunk carries the time and frame of the write that carried
    // it: writes are numbered from 1 (request) at 1 ms each.
    let frames_seen: Vec<(u64, Micros)> = r
        .events
        .iter()
        .filter(|e| {
            matches!(
                &e.kind,
                EventKind::Message {
                    protocol: "inner",
                    ..
                }
            )
        })
        .map(|e| (detail(e, "frame").unwrap().as_u64().unwrap(), e.at))
        .collect();
    assert_eq!(
        frames_seen,
        vec![
            (3, Micros(3000)),
            (4, Micros(4000)),
            (5, Micros(5000)),
            (8, Micros(8000)),
            (9, Micros(9000)),
        ]
    );
}

#[test]
fn any_chopping_gives_the_same_inner_bytes() {
    let conv = websockify_conv();
    let concat = |events: &[Event], dir| -> String {
        let mut next = 0;
        let mut s = String::new();
        for (_, off, b) in inner_chunks(events)
            .into_iter()
            .filter(|(d, _, _)| *d == dir)
        {
            assert_eq!(off, next, "inner offsets are contiguous");
            next += b.len() as u64;
            s.push_str(&b);
        }
        s
    };
    let whole = run_with(&conv, Chop::Writes, None, Some(recorder_factory)).events;
    for chop in [Chop::Octets, Chop::Every(5)] {
        let ev = run_with(&conv, chop, None, Some(recorder_factory)).events;
        for dir in [C2S, S2C] {
            assert_eq!(concat(&ev, dir), concat(&whole, dir), "{chop:?}");
        }
    }
}

#[test]
fn base64_subprotocol_is_decoded_for_the_inner_stream() {
    let b64 = |b: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(b)
            .into_bytes()
    };
    let conv = Conv::with_headers(
        "Sec-WebSocket-Protocol: base64\r\n",
        "Sec-WebSocket-Protocol: base64\r\n",
    )
    .server(FrameSpec::new(OpCode::Text, b64(b"RFB 003.008\n")))
    .client(FrameSpec::new(OpCode::Text, b64(b"RFB 003.003\n")))
    .server(FrameSpec::new(OpCode::Text, b64(&[1, 2, 3, 4, 5])));
    for chop in [Chop::Writes, Chop::Octets] {
        let r = run_with(&conv, chop, None, Some(recorder_factory));
        assert!(codes(&r.events).is_empty());
        assert_eq!(r.decoder.stack(), vec!["tcp", "ws", "rfb"]);
        let s2c: String = inner_chunks(&r.events)
            .into_iter()
            .filter(|(d, _, _)| *d == S2C)
            .map(|(_, _, b)| b)
            .collect();
        assert_eq!(s2c, "RFB 003.008\n\u{1}\u{2}\u{3}\u{4}\u{5}");
    }
    let bad = Conv::with_headers(
        "Sec-WebSocket-Protocol: base64\r\n",
        "Sec-WebSocket-Protocol: base64\r\n",
    )
    .server(FrameSpec::new(OpCode::Text, b"not*base64!!".to_vec()));
    assert_eq!(codes(&run(&bad, Chop::Writes)), vec!["ws.invalid_base64"]);
}

#[test]
fn a_gap_inside_a_payload_keeps_framing_and_tells_the_inner_decoder() {
    let ctx = StreamContext::default();
    let mut dec = WsDecoder::with_inner_factory(&ctx, recorder_factory);
    let mut ev: Vec<Event> = Vec::new();
    let feed = |dec: &mut WsDecoder, ev: &mut Vec<Event>, dir, off: &mut u64, b: &[u8]| {
        dec.data(
            Chunk {
                at: Micros(1),
                frame: 1,
                direction: dir,
                stream_offset: *off,
                bytes: b,
            },
            ev,
        );
        *off += b.len() as u64;
    };
    let (mut c, mut s) = (0u64, 0u64);
    feed(&mut dec, &mut ev, C2S, &mut c, &request(""));
    feed(&mut dec, &mut ev, S2C, &mut s, &response(""));
    let f1 = FrameSpec::new(OpCode::Binary, b"RFB 003.008\nABCDEFGH".to_vec()).encode();
    // Deliver header + 14 payload bytes, lose 4, deliver the last 2.
    feed(&mut dec, &mut ev, S2C, &mut s, &f1[..2 + 14]);
    dec.gap(Micros(2), S2C, s, 4, &mut ev);
    s += 4;
    feed(&mut dec, &mut ev, S2C, &mut s, &f1[2 + 18..]);
    let f2 = FrameSpec::new(OpCode::Binary, b"after".to_vec()).encode();
    feed(&mut dec, &mut ev, S2C, &mut s, &f2);
    assert!(codes(&ev).is_empty(), "{:?}", codes(&ev));
    assert_eq!(frames(&ev).len(), 2, "both frames decoded");
    let gaps: Vec<(u64, u64)> = ev
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Message { protocol: "inner", name, .. } if name == "gap"))
        .map(|e| {
            let EventKind::Message { len, .. } = &e.kind else { unreachable!() };
            (detail(e, "offset").unwrap().as_u64().unwrap(), *len)
        })
        .collect();
    assert_eq!(gaps, vec![(14, 4)]);
    let chunks = inner_chunks(&ev);
    assert_eq!(chunks.last().unwrap(), &(S2C, 20, "after".to_string()));
    // A gap inside a close body: the close is on the timeline, but its
    // code is not guessed from the bytes that remain.
    let close = FrameSpec::new(OpCode::Close, b"\x03\xe8bye".to_vec()).encode();
    feed(&mut dec, &mut ev, S2C, &mut s, &close[..3]);
    dec.gap(Micros(2), S2C, s, 3, &mut ev);
    s += 3;
    feed(&mut dec, &mut ev, S2C, &mut s, &close[6..]);
    let closes: Vec<_> = ev
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Close(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec![tether::timeline::CloseKind::WsClose {
            code: None,
            reason: String::new()
        }]
    );
    assert!(codes(&ev).is_empty(), "{:?}", codes(&ev));
    // A gap across a frame header loses the framing: reported once.
    dec.gap(Micros(3), S2C, s, 100, &mut ev);
    assert_eq!(codes(&ev), vec!["ws.gap_lost_framing"]);
    dec.end(Micros(4), S2C, StreamEnd::Fin, &mut ev);
}

fn recorded() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/recorded/ws-novnc.pcap"))
        .unwrap()
}

/// Feeds connection 0 of a capture to a WsDecoder with the recorder inside.
struct Feed {
    dec: WsDecoder,
    events: Vec<Event>,
}

impl FlowSink for Feed {
    fn flow_event(&mut self, e: FlowEvent<'_>) {
        match e {
            FlowEvent::Data {
                at,
                frame,
                dir,
                offset,
                bytes,
                ..
            } => self.dec.data(
                Chunk {
                    at,
                    frame,
                    direction: dir,
                    stream_offset: offset,
                    bytes,
                },
                &mut self.events,
            ),
            FlowEvent::Fin { at, dir, .. } => {
                self.dec.end(at, dir, StreamEnd::Fin, &mut self.events)
            }
            _ => {}
        }
    }
}

#[test]
fn recorded_novnc_session_carries_rfb_inside_websocket() {
    // The real pipeline: the stack is tcp/ws/rfb.
    let bytes = recorded();
    let report = tether::decode::pipeline::decode_capture(
        &bytes[..],
        "ws-novnc.pcap",
        tether::decode::pipeline::DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!(report.connections.len(), 1);
    assert_eq!(report.connections[0].stack, vec!["tcp", "ws", "rfb"]);
    // With the recorder inside: the inner streams start with both RFB
    // version banners, at the times of the frames that carried them.
    let mut feed = Feed {
        dec: WsDecoder::with_inner_factory(&StreamContext::default(), recorder_factory),
        events: Vec::new(),
    };
    let mut segs = Segments::new(&bytes[..], "ws-novnc.pcap").unwrap();
    let mut re = Reassembler::new(FlowConfig::default());
    while let Some(f) = segs.next_frame() {
        if let Frame::Tcp(seg) = f {
            re.segment(&seg, &mut feed);
        }
    }
    re.finish(&mut feed);
    let chunks = inner_chunks(&feed.events);
    let first = |dir| chunks.iter().find(|(d, _, _)| *d == dir).unwrap().clone();
    assert_eq!(first(S2C), (S2C, 0, "RFB 003.008\n".to_string()));
    assert_eq!(first(C2S), (C2S, 0, "RFB 003.008\n".to_string()));
    // The server's banner is the first binary frame in the tshark dump
    // (frame 8); its inner chunk is stamped with that frame.
    let banner = feed
        .events
        .iter()
        .find(|e| {
            matches!(
                &e.kind,
                EventKind::Message {
                    protocol: "inner",
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(detail(banner, "frame").unwrap().as_u64(), Some(8));
    // Every server ping (websockify --heartbeat 1) got its pong, paired.
    let (mut pings, mut paired) = (0, 0);
    for e in &feed.events {
        match &e.kind {
            EventKind::Ping { .. } => pings += 1,
            EventKind::Pong { rtt: Some(_), .. } => paired += 1,
            _ => {}
        }
    }
    assert!(pings >= 3, "{pings}");
    assert_eq!(pings, paired);
    assert!(codes(&feed.events).is_empty(), "{:?}", codes(&feed.events));
}

#[test]
fn spice_html5_style_stream_sniffs_as_spice() {
    // spice-html5 through websockify: the client speaks first with the
    // SPICE link header ("REDQ", version 2.2).
    let mut link = b"REDQ".to_vec();
    link.extend_from_slice(&2u32.to_le_bytes());
    link.extend_from_slice(&2u32.to_le_bytes());
    link.extend_from_slice(&18u32.to_le_bytes());
    let conv = Conv::with_headers(
        "Sec-WebSocket-Protocol: binary\r\n",
        "Sec-WebSocket-Protocol: binary\r\n",
    )
    .client(FrameSpec::new(OpCode::Binary, link.clone()));
    let r = run_with(&conv, Chop::Octets, None, Some(recorder_factory));
    assert_eq!(r.decoder.stack(), vec!["tcp", "ws", "spice"]);
    assert_eq!(inner_bytes(&r.events, C2S), link);
    // With the real decoders the stack names SPICE the same way.
    let r = run(&conv, Chop::Writes);
    assert!(codes(&r).is_empty());
    let real = ws_support::run_with(&conv, Chop::Writes, None, None);
    assert_eq!(real.decoder.stack(), vec!["tcp", "ws", "spice"]);
}
