//! Shared helpers for the WebSocket tests: build a conversation as logical
//! writes, deliver it to a `WsDecoder` in any chopping, and describe the
//! resulting events without times or packet numbers (which depend on the
//! chopping) so different choppings compare equal.
#![allow(dead_code)]

use std::borrow::Cow;
use tether::decode::ws::WsDecoder;
use tether::decode::ws::frame::FrameSpec;
use tether::decode::ws::inner::InnerFactory;
use tether::decode::{Chunk, EventSink, StreamContext, StreamDecoder, StreamEnd};
use tether::timeline::{Direction, Event, EventKind, Micros};

pub const C2S: Direction = Direction::ClientToServer;
pub const S2C: Direction = Direction::ServerToClient;

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub fn request(extra: &str) -> Vec<u8> {
    format!(
        "GET /chat?token=t0k HTTP/1.1\r\nHost: 127.0.0.1:16080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nOrigin: http://127.0.0.1\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

pub fn response(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A conversation: the handshake, then writes each way in order.
#[derive(Clone, Debug, Default)]
pub struct Conv {
    pub writes: Vec<(Direction, Vec<u8>)>,
}

impl Conv {
    /// Upgrade with no subprotocol or extension.
    pub fn upgraded() -> Conv {
        Conv::with_headers("", "")
    }
    pub fn with_headers(req: &str, resp: &str) -> Conv {
        Conv {
            writes: vec![(C2S, request(req)), (S2C, response(resp))],
        }
    }
    /// A client frame, masked as a client must.
    pub fn client(mut self, f: FrameSpec) -> Conv {
        let f = if f.mask.is_none() { f.masked(MASK) } else { f };
        self.writes.push((C2S, f.encode()));
        self
    }
    /// A client frame exactly as given (masked or not).
    pub fn client_raw(mut self, f: FrameSpec) -> Conv {
        self.writes.push((C2S, f.encode()));
        self
    }
    pub fn server(mut self, f: FrameSpec) -> Conv {
        self.writes.push((S2C, f.encode()));
        self
    }
    pub fn bytes(mut self, dir: Direction, b: Vec<u8>) -> Conv {
        self.writes.push((dir, b));
        self
    }
}

/// How writes become chunks.
#[derive(Clone, Copy, Debug)]
pub enum Chop {
    /// One chunk per write.
    Writes,
    /// One byte per chunk.
    Octets,
    /// Each direction's bytes concatenated (keeping the order of writes
    /// between directions) and cut every `n` bytes.
    Every(usize),
}

pub struct Run {
    pub events: Vec<Event>,
    pub decoder: WsDecoder,
}

/// Feeds `conv` chopped as asked; each chunk is one capture frame, 1 ms
/// apart. `end` closes both directions at the end with FIN.
pub fn run_with(
    conv: &Conv,
    chop: Chop,
    end: Option<StreamEnd>,
    factory: Option<InnerFactory>,
) -> Run {
    let ctx = StreamContext::default();
    let mut decoder = match factory {
        Some(f) => WsDecoder::with_inner_factory(&ctx, f),
        None => WsDecoder::new(&ctx),
    };
    let mut events: Vec<Event> = Vec::new();
    let mut offsets = [0u64; 2];
    let mut frame = 0u64;
    let mut feed = |dir: Direction, bytes: &[u8], dec: &mut WsDecoder, events: &mut Vec<Event>| {
        frame += 1;
        dec.data(
            Chunk {
                at: Micros(frame * 1000),
                frame,
                direction: dir,
                stream_offset: offsets[dir.index()],
                bytes,
            },
            events,
        );
        offsets[dir.index()] += bytes.len() as u64;
    };
    for (dir, bytes) in &conv.writes {
        match chop {
            Chop::Writes => feed(*dir, bytes, &mut decoder, &mut events),
            Chop::Octets => {
                for b in bytes.chunks(1) {
                    feed(*dir, b, &mut decoder, &mut events);
                }
            }
            Chop::Every(n) => {
                for b in bytes.chunks(n.max(1)) {
                    feed(*dir, b, &mut decoder, &mut events);
                }
            }
        }
    }
    if let Some(how) = end {
        let at = Micros((frame + 1) * 1000);
        decoder.end(at, C2S, how, &mut events);
        decoder.end(at, S2C, how, &mut events);
    }
    Run { events, decoder }
}

pub fn run(conv: &Conv, chop: Chop) -> Vec<Event> {
    run_with(conv, chop, None, None).events
}

pub fn detail<'a>(e: &'a Event, key: &str) -> Option<&'a serde_json::Value> {
    match &e.kind {
        EventKind::Message { detail, .. } => detail.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

pub fn name(e: &Event) -> Option<&str> {
    match &e.kind {
        EventKind::Message { name, .. } => Some(name.as_ref()),
        _ => None,
    }
}

/// Finding codes in order.
pub fn codes(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.code.to_string()),
            _ => None,
        })
        .collect()
}

/// The frame events (`text`, `binary`, ... `close`) in order.
pub fn frames(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| {
            matches!(
                name(e),
                Some(
                    "text"
                        | "binary"
                        | "continuation"
                        | "ping"
                        | "pong"
                        | "close"
                        | "reserved_opcode"
                )
            )
        })
        .collect()
}

/// Everything about the events except time and capture frame numbers.
pub fn normalized(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let dir = e.direction.map_or("-", |d| d.as_str());
            let kind = match &e.kind {
                EventKind::Finding(f) => {
                    format!(
                        "finding {} {:?} @{:?}",
                        f.code, f.severity, f.location.stream_offset
                    )
                }
                EventKind::Pong {
                    payload_len, rtt, ..
                } => format!("pong {payload_len} paired={}", rtt.is_some()),
                other => serde_json::to_string(other).unwrap(),
            };
            format!("{dir} {kind}")
        })
        .collect()
}

pub fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// An inner decoder that reports every chunk it gets, to test the plumbing
/// without RFB or SPICE.
pub struct Recorder {
    pub label: &'static str,
}

impl StreamDecoder for Recorder {
    fn stack(&self) -> Vec<&'static str> {
        vec!["tcp", self.label]
    }
    fn data(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) {
        out.event(Event {
            frame: None,
            at: chunk.at,
            connection: Default::default(),
            channel: None,
            direction: Some(chunk.direction),
            kind: EventKind::Message {
                protocol: "inner",
                name: Cow::Borrowed("chunk"),
                len: chunk.bytes.len() as u64,
                detail: vec![
                    (Cow::Borrowed("frame"), chunk.frame.into()),
                    (Cow::Borrowed("offset"), chunk.stream_offset.into()),
                    (
                        Cow::Borrowed("bytes"),
                        String::from_utf8_lossy(chunk.bytes).into_owned().into(),
                    ),
                    (
                        Cow::Borrowed("hex"),
                        chunk
                            .bytes
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>()
                            .into(),
                    ),
                ],
            },
        });
    }
    fn gap(&mut self, at: Micros, d: Direction, o: u64, len: u64, out: &mut dyn EventSink) {
        out.event(Event {
            frame: None,
            at,
            connection: Default::default(),
            channel: None,
            direction: Some(d),
            kind: EventKind::Message {
                protocol: "inner",
                name: Cow::Borrowed("gap"),
                len,
                detail: vec![(Cow::Borrowed("offset"), o.into())],
            },
        });
    }
    fn end(&mut self, _at: Micros, _d: Direction, _how: StreamEnd, _out: &mut dyn EventSink) {}
}

pub fn recorder_factory(
    protocol: tether::decode::Protocol,
    _ctx: &StreamContext,
) -> Option<Box<dyn StreamDecoder>> {
    let label = match protocol {
        tether::decode::Protocol::Rfb => "rfb",
        tether::decode::Protocol::Spice => "spice",
        _ => "unknown",
    };
    Some(Box::new(Recorder { label }))
}

/// The inner chunks the recorder saw, as (direction, offset, bytes).
pub fn inner_chunks(events: &[Event]) -> Vec<(Direction, u64, String)> {
    events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Message { protocol: "inner", name, .. } if name == "chunk"))
        .map(|e| {
            (
                e.direction.unwrap(),
                detail(e, "offset").unwrap().as_u64().unwrap(),
                detail(e, "bytes").unwrap().as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The exact bytes the recorder saw one way, in order.
pub fn inner_bytes(events: &[Event], dir: Direction) -> Vec<u8> {
    events
        .iter()
        .filter(|e| e.direction == Some(dir))
        .filter(|e| matches!(&e.kind, EventKind::Message { protocol: "inner", name, .. } if name == "chunk"))
        .flat_map(|e| {
            let hex = detail(e, "hex").unwrap().as_str().unwrap().to_string();
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        })
        .collect()
}
