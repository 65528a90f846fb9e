//! The WebSocket decoder (RFC 6455): the HTTP upgrade, then frames in both
//! directions, decoded incrementally over any chunking, with one finding
//! per broken rule, and the data messages handed on as an inner byte
//! stream (RFB through websockify, SPICE through spice-html5, ...).
//!
//! Memory per direction is bounded: a 14-byte header carry-over, a control
//! payload of at most 125 bytes, a 120-byte text preview, a 16 KiB HTTP
//! head, and a fixed inflate buffer. Data payloads stream through.
//!
//! Findings are the kinds of [`findings::WsFinding`], each located by
//! frame, direction and stream offset.
//!
//! Event names follow tshark's opcode names in lower case (`text`,
//! `binary`, `continuation`, `ping`, `pong`, `close`), one `Message` per
//! frame, so per-name counts compare with tshark's frame counts. Ping, pong
//! and close frames also give `Ping`/`Pong`/`Close` events for the model.

pub mod findings;
pub mod frame;
pub mod handshake;
pub mod inner;
pub mod utf8;

use crate::decode::{Chunk, EventSink, MessageLimits, StreamContext, StreamDecoder, StreamEnd};
use crate::timeline::kinds::FindingKind;
use crate::timeline::{CloseKind, ConnectionId, Direction, Event, EventKind, Location, Micros};
use base64::Engine;
use findings::WsFinding;
use flate2::{Decompress, FlushDecompress, Status};
use frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use handshake::MAX_HEAD_LEN;
use inner::{InnerFactory, InnerStream};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use utf8::Utf8Stream;

/// Control frames may carry at most this much (6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;
/// Text kept from the start of each text message for the timeline.
const PREVIEW_LEN: usize = 120;
/// Pings remembered per direction for pairing with pongs.
const MAX_PENDING_PINGS: usize = 16;
/// Occurrences of one rule reported per direction; later ones are counted
/// in the last report's message rather than flooding the timeline.
const MAX_REPORTS_PER_RULE: u32 = 8;
const INFLATE_BUF: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Reading the HTTP request or response head.
    Head,
    Frames,
    /// Nothing more can be decoded this way (refused upgrade, lost framing).
    Opaque,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PayloadSink {
    Control,
    Message,
    Discard,
}

/// A frame whose payload is complete, as its finishers see it.
struct Done {
    at: Micros,
    frame_no: u64,
    dir: Direction,
    h: FrameHeader,
    loc: Location,
}

impl Done {
    fn wire_len(&self) -> u64 {
        self.h.header_len as u64 + self.h.payload_len
    }
}

struct FrameState {
    h: FrameHeader,
    /// Stream offset of the header's first byte.
    start: u64,
    payload_done: u64,
    sink: PayloadSink,
}

struct Msg {
    opcode: OpCode,
    compressed: bool,
    /// Payload bytes on the wire over all fragments.
    wire_len: u64,
    /// Application bytes (after inflating).
    plain_len: u64,
    fragments: u32,
    utf8: Utf8Stream,
    utf8_bad: bool,
    preview: Vec<u8>,
    /// Hand the bytes to the inner stream (binary, or base64 text).
    inner: bool,
    base64: bool,
    b64_carry: Vec<u8>,
    b64_bad: bool,
    /// Lost bytes (a capture gap): content checks are off for the rest.
    lossy: bool,
}

struct Dir {
    mode: Mode,
    head: Vec<u8>,
    head_start: u64,
    hdr: [u8; MAX_HEADER_LEN],
    hdr_fill: usize,
    hdr_start: u64,
    frame: Option<FrameState>,
    msg: Option<Msg>,
    ctrl: Vec<u8>,
    /// Part of the current control payload was never captured.
    ctrl_lossy: bool,
    close_sent: bool,
    pings: VecDeque<(Vec<u8>, Micros)>,
    inflater: Option<Decompress>,
    no_context_takeover: bool,
    inflate_broken: bool,
    reported: BTreeMap<&'static str, u32>,
    last_frame: u64,
    last_offset: u64,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            mode: Mode::Head,
            head: Vec::new(),
            head_start: 0,
            hdr: [0; MAX_HEADER_LEN],
            hdr_fill: 0,
            hdr_start: 0,
            frame: None,
            msg: None,
            ctrl: Vec::new(),
            ctrl_lossy: false,
            close_sent: false,
            pings: VecDeque::new(),
            inflater: None,
            no_context_takeover: false,
            inflate_broken: false,
            reported: BTreeMap::new(),
            last_frame: 0,
            last_offset: 0,
        }
    }
}

/// What the handshake negotiated.
#[derive(Default)]
struct Negotiated {
    upgraded: bool,
    deflate: bool,
    /// An extension we do not know: RSV bits and payloads are its business.
    unknown_extension: bool,
    base64: bool,
}

pub struct WsDecoder {
    conn: ConnectionId,
    dirs: [Dir; 2],
    key: Option<String>,
    offered_protocols: Vec<String>,
    offered_extensions: Vec<String>,
    neg: Negotiated,
    inner: InnerStream,
    scratch: Vec<u8>,
    inflate_buf: Vec<u8>,
    abnormal_reported: bool,
    limits: MessageLimits,
}

impl WsDecoder {
    pub fn new(ctx: &StreamContext) -> WsDecoder {
        WsDecoder::with_inner_factory(ctx, inner::default_factory)
    }

    /// Like [`WsDecoder::new`], building inner decoders with `factory`.
    pub fn with_inner_factory(ctx: &StreamContext, factory: InnerFactory) -> WsDecoder {
        WsDecoder {
            conn: ctx.connection,
            dirs: [Dir::new(), Dir::new()],
            key: None,
            offered_protocols: Vec::new(),
            offered_extensions: Vec::new(),
            neg: Negotiated::default(),
            inner: InnerStream::new(ctx.clone(), factory),
            scratch: Vec::new(),
            inflate_buf: Vec::new(),
            abnormal_reported: false,
            limits: ctx.limits,
        }
    }

    fn loc(&self, frame: u64, dir: Direction, offset: u64) -> Location {
        Location {
            frame: (frame > 0).then_some(frame),
            connection: Some(self.conn),
            direction: Some(dir),
            stream_offset: Some(offset),
            ..Location::default()
        }
    }

    fn emit(&self, out: &mut dyn EventSink, at: Micros, dir: Direction, kind: EventKind) {
        out.event(Event {
            frame: None,
            at,
            connection: self.conn,
            channel: None,
            direction: Some(dir),
            kind,
        });
    }

    fn message(
        &self,
        out: &mut dyn EventSink,
        at: Micros,
        dir: Direction,
        name: &'static str,
        len: u64,
        detail: Detail,
    ) {
        self.emit(
            out,
            at,
            dir,
            EventKind::Message {
                protocol: "ws",
                name: Cow::Borrowed(name),
                len,
                detail,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &mut self,
        out: &mut dyn EventSink,
        at: Micros,
        dir: Direction,
        kind: WsFinding,
        message: String,
        location: Location,
    ) {
        let n = self.dirs[dir.index()]
            .reported
            .entry(kind.code())
            .or_insert(0);
        *n += 1;
        let n = *n;
        if n > MAX_REPORTS_PER_RULE {
            return;
        }
        let message = if n == MAX_REPORTS_PER_RULE {
            format!("{message} (further occurrences this way are not reported)")
        } else {
            message
        };
        self.emit(out, at, dir, EventKind::Finding(kind.at(message, location)));
    }

    // ---- handshake ----

    fn head_bytes(&mut self, chunk: &Chunk<'_>, pos: usize, out: &mut dyn EventSink) -> usize {
        let d = chunk.direction.index();
        let rest = &chunk.bytes[pos..];
        let dir = &mut self.dirs[d];
        if dir.head.is_empty() {
            dir.head_start = chunk.stream_offset + pos as u64;
        }
        let search_from = dir.head.len().saturating_sub(3);
        let take = rest.len().min(MAX_HEAD_LEN - dir.head.len());
        dir.head.extend_from_slice(&rest[..take]);
        if let Some(i) = find(&dir.head[search_from..], b"\r\n\r\n") {
            let end = search_from + i + 4;
            let consumed = take - (dir.head.len() - end);
            let mut head = std::mem::take(&mut dir.head);
            head.truncate(end - 4);
            let start = dir.head_start;
            self.head_complete(chunk, &head, start, end as u64, out);
            return consumed;
        }
        if dir.head.len() >= MAX_HEAD_LEN {
            let start = dir.head_start;
            dir.mode = Mode::Opaque;
            dir.head = Vec::new();
            let loc = self.loc(chunk.frame, chunk.direction, start);
            self.finding(
                out,
                chunk.at,
                chunk.direction,
                WsFinding::HttpHeadTooLong,
                format!("no end of the HTTP head within {MAX_HEAD_LEN} bytes"),
                loc,
            );
        }
        take
    }

    fn head_complete(
        &mut self,
        chunk: &Chunk<'_>,
        head: &[u8],
        start: u64,
        wire_len: u64,
        out: &mut dyn EventSink,
    ) {
        let dir = chunk.direction;
        let loc = self.loc(chunk.frame, dir, start);
        let Some(parsed) = handshake::parse_head(head) else {
            self.dirs[dir.index()].mode = Mode::Opaque;
            self.finding(
                out,
                chunk.at,
                dir,
                WsFinding::MalformedHttpHead,
                "the HTTP head has a line that is not a header".into(),
                loc,
            );
            return;
        };
        match dir {
            Direction::ClientToServer => self.request_head(chunk, &parsed, wire_len, loc, out),
            Direction::ServerToClient => self.response_head(chunk, &parsed, wire_len, loc, out),
        }
    }

    fn request_head(
        &mut self,
        chunk: &Chunk<'_>,
        head: &handshake::Head,
        wire_len: u64,
        loc: Location,
        out: &mut dyn EventSink,
    ) {
        let dir = chunk.direction;
        let r = handshake::request(head);
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let detail = vec![
            (k("method"), json!(r.method)),
            (k("path"), json!(r.path)),
            (k("query"), opt(&r.query)),
            (k("host"), opt(&r.host)),
            (k("origin"), opt(&r.origin)),
            (k("key"), opt(&r.key)),
            (k("version"), opt(&r.ws_version)),
            (k("protocols"), json!(r.protocols)),
            (
                k("extensions"),
                json!(
                    r.extensions
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                ),
            ),
        ];
        self.message(out, chunk.at, dir, "upgrade_request", wire_len, detail);
        let mut problems = Vec::new();
        if r.method != "GET" {
            problems.push(format!("method {} is not GET", r.method));
        }
        if r.version != "HTTP/1.1" {
            problems.push(format!("version {:?} is not HTTP/1.1", r.version));
        }
        let key_ok = r.key.as_deref().is_some_and(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .is_ok_and(|b| b.len() == 16)
        });
        if !key_ok {
            problems.push("Sec-WebSocket-Key is missing or not base64 of 16 bytes".into());
        }
        if r.ws_version.as_deref().map(str::trim) != Some("13") {
            problems.push(format!(
                "Sec-WebSocket-Version is {:?}, not 13",
                r.ws_version
            ));
        }
        if !problems.is_empty() {
            self.finding(
                out,
                chunk.at,
                dir,
                WsFinding::BadUpgradeRequest,
                problems.join("; "),
                loc,
            );
        }
        self.key = r.key;
        self.offered_protocols = r.protocols;
        self.offered_extensions = r.extensions.into_iter().map(|e| e.name).collect();
        self.dirs[dir.index()].mode = Mode::Frames;
    }

    fn response_head(
        &mut self,
        chunk: &Chunk<'_>,
        head: &handshake::Head,
        wire_len: u64,
        loc: Location,
        out: &mut dyn EventSink,
    ) {
        let dir = chunk.direction;
        let r = handshake::response(head);
        let accepted = r.status == Some(101);
        let expected = self.key.as_deref().map(handshake::expected_accept);
        let accept_valid = match (&expected, &r.accept) {
            (Some(e), Some(a)) => Some(e == a.trim()),
            _ => None,
        };
        let detail = vec![
            (k("status"), json!(r.status)),
            (k("reason"), json!(r.reason)),
            (k("accept_valid"), json!(accept_valid)),
            (k("protocol"), json!(r.protocol)),
            (
                k("extensions"),
                json!(
                    r.extensions
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                ),
            ),
        ];
        self.message(out, chunk.at, dir, "upgrade_response", wire_len, detail);
        if !accepted {
            // A refused upgrade (401/403/404/502...) is plain HTTP from here.
            for d in &mut self.dirs {
                d.mode = Mode::Opaque;
            }
            return;
        }
        self.negotiated(chunk, &r, expected, accept_valid, loc, out);
        self.neg.upgraded = true;
        self.dirs[dir.index()].mode = Mode::Frames;
    }

    /// What an accepted upgrade settles (6455 §4.1, §9.1): the accept key,
    /// the subprotocol and extensions chosen from those offered, and the
    /// inflaters permessage-deflate (RFC 7692) needs.
    fn negotiated(
        &mut self,
        chunk: &Chunk<'_>,
        r: &handshake::Response,
        expected: Option<String>,
        accept_valid: Option<bool>,
        loc: Location,
        out: &mut dyn EventSink,
    ) {
        let dir = chunk.direction;
        if accept_valid == Some(false) || (r.accept.is_none() && expected.is_some()) {
            self.finding(
                out,
                chunk.at,
                dir,
                WsFinding::BadAccept,
                format!(
                    "Sec-WebSocket-Accept is {:?}, the key gives {:?}",
                    r.accept.clone().unwrap_or_default(),
                    expected.unwrap_or_default()
                ),
                loc.clone(),
            );
        }
        if let Some(p) = &r.protocol
            && !self.offered_protocols.iter().any(|o| o == p)
        {
            self.finding(
                out,
                chunk.at,
                dir,
                WsFinding::UnofferedSubprotocol,
                format!("server chose subprotocol {p:?}, not offered by the client"),
                loc.clone(),
            );
        }
        self.neg.base64 = r.protocol.as_deref() == Some("base64");
        for e in &r.extensions {
            if !self.offered_extensions.contains(&e.name) {
                self.finding(
                    out,
                    chunk.at,
                    dir,
                    WsFinding::UnofferedExtension,
                    format!("server accepted extension {:?}, not offered", e.name),
                    loc.clone(),
                );
            }
            if e.name == "permessage-deflate" {
                self.neg.deflate = true;
                let c = &mut self.dirs[Direction::ClientToServer.index()];
                c.inflater = Some(Decompress::new(false));
                c.no_context_takeover = e.has("client_no_context_takeover");
                let s = &mut self.dirs[Direction::ServerToClient.index()];
                s.inflater = Some(Decompress::new(false));
                s.no_context_takeover = e.has("server_no_context_takeover");
            } else {
                self.neg.unknown_extension = true;
            }
        }
    }

    // ---- frames ----

    fn frame_bytes(&mut self, chunk: &Chunk<'_>, pos: usize, out: &mut dyn EventSink) -> usize {
        let d = chunk.direction.index();
        let avail = chunk.bytes.len() - pos;
        if let Some(f) = &self.dirs[d].frame {
            let remaining = f.h.payload_len - f.payload_done;
            let take = remaining.min(avail as u64) as usize;
            let offset = chunk.stream_offset + pos as u64;
            self.payload(chunk, &chunk.bytes[pos..pos + take], offset, out);
            let done = self.dirs[d].frame.as_mut().is_some_and(|f| {
                f.payload_done += take as u64;
                f.payload_done == f.h.payload_len
            });
            if done {
                self.finish_frame(chunk.at, chunk.frame, chunk.direction, out);
            }
            return take;
        }
        let dir = &mut self.dirs[d];
        if dir.hdr_fill == 0 {
            dir.hdr_start = chunk.stream_offset + pos as u64;
        }
        let mut used = 0;
        loop {
            let need = if dir.hdr_fill < 2 {
                2
            } else {
                frame::header_len([dir.hdr[0], dir.hdr[1]])
            };
            if dir.hdr_fill == need && need > 2 || dir.hdr_fill == 2 && need == 2 {
                break;
            }
            if used == avail {
                return used;
            }
            let take = (need - dir.hdr_fill).min(avail - used);
            dir.hdr[dir.hdr_fill..dir.hdr_fill + take]
                .copy_from_slice(&chunk.bytes[pos + used..pos + used + take]);
            dir.hdr_fill += take;
            used += take;
        }
        let fill = dir.hdr_fill;
        dir.hdr_fill = 0;
        if let Some(h) = frame::parse_header(&dir.hdr[..fill]) {
            self.start_frame(chunk, h, out);
        }
        used
    }

    fn start_frame(&mut self, chunk: &Chunk<'_>, h: FrameHeader, out: &mut dyn EventSink) {
        let dir = chunk.direction;
        let d = dir.index();
        let start = self.dirs[d].hdr_start;
        let loc = self.loc(chunk.frame, dir, start);
        let at = chunk.at;
        if !self.header_rules(&h, at, dir, &loc, out) {
            return;
        }
        let sink = if h.is_control() {
            self.control_sink(&h, at, dir, loc, out)
        } else {
            self.data_sink(&h, at, dir, loc, out)
        };
        if matches!(sink, PayloadSink::Message)
            && let Some(m) = &self.dirs[d].msg
            && m.wire_len > self.limits.ws_message
        {
            let message = format!(
                "{} message reaches {} payload bytes, over the {}-byte limit; the rest of this direction is not decoded",
                m.opcode.name(),
                m.wire_len,
                self.limits.ws_message
            );
            let loc = self.loc(chunk.frame, dir, start);
            let finding = WsFinding::MessageTooLarge.at(message, loc);
            self.emit(out, at, dir, EventKind::Finding(finding));
            self.dirs[d].msg = None;
            self.dirs[d].mode = Mode::Opaque;
            return;
        }
        let empty = h.payload_len == 0;
        self.dirs[d].frame = Some(FrameState {
            h,
            start,
            payload_done: 0,
            sink,
        });
        if empty {
            self.finish_frame(at, chunk.frame, dir, out);
        }
    }

    /// The rules a frame header alone can break (6455 §4.1, §5.1, §5.2).
    /// False when framing is lost.
    fn header_rules(
        &mut self,
        h: &FrameHeader,
        at: Micros,
        dir: Direction,
        loc: &Location,
        out: &mut dyn EventSink,
    ) -> bool {
        self.order_and_mask_rules(h, at, dir, loc, out);
        let d = dir.index();
        let name = h.opcode.name();
        let loc = loc.clone();
        if h.length_top_bit() {
            self.finding(
                out,
                at,
                dir,
                WsFinding::LengthTopBit,
                format!(
                    "64-bit payload length {:#x} has its most significant bit set; framing is lost",
                    h.payload_len
                ),
                loc,
            );
            self.dirs[d].mode = Mode::Opaque;
            return false;
        }
        if h.non_minimal_length() {
            self.finding(
                out,
                at,
                dir,
                WsFinding::NonMinimalLength,
                format!(
                    "payload length {} sent in the {:?} form, not the shortest",
                    h.payload_len, h.form
                ),
                loc.clone(),
            );
        }
        let data_start = h.opcode == OpCode::Text || h.opcode == OpCode::Binary;
        let allowed_rsv = if self.neg.unknown_extension {
            0x7
        } else if self.neg.deflate && data_start {
            0x4
        } else {
            0
        };
        if h.rsv & !allowed_rsv != 0 {
            self.finding(
                out,
                at,
                dir,
                WsFinding::ReservedBits,
                format!(
                    "{name} frame has RSV bits {:03b} that no negotiated extension defines",
                    h.rsv
                ),
                loc.clone(),
            );
        }
        true
    }

    /// When a frame may come, and how it must be masked (6455 §4.1, §5.1,
    /// §5.5.1): findings only, framing goes on.
    fn order_and_mask_rules(
        &mut self,
        h: &FrameHeader,
        at: Micros,
        dir: Direction,
        loc: &Location,
        out: &mut dyn EventSink,
    ) {
        let d = dir.index();
        let name = h.opcode.name();
        // 6455 §4.1: the client sends no data before it has the response.
        if dir == Direction::ClientToServer
            && !self.neg.upgraded
            && self.dirs[Direction::ServerToClient.index()].mode == Mode::Head
        {
            self.finding(
                out,
                at,
                dir,
                WsFinding::DataBeforeUpgradeResponse,
                format!("client {name} frame before the server's upgrade response"),
                loc.clone(),
            );
        }
        if self.dirs[d].close_sent {
            self.finding(
                out,
                at,
                dir,
                WsFinding::DataAfterClose,
                format!("{name} frame after this side sent a close frame"),
                loc.clone(),
            );
        }
        match (dir, h.mask.is_some()) {
            (Direction::ClientToServer, false) => self.finding(
                out,
                at,
                dir,
                WsFinding::UnmaskedClientFrame,
                format!("client {name} frame is not masked"),
                loc.clone(),
            ),
            (Direction::ServerToClient, true) => self.finding(
                out,
                at,
                dir,
                WsFinding::MaskedServerFrame,
                format!("server {name} frame is masked"),
                loc.clone(),
            ),
            _ => {}
        }
    }

    /// Where a control frame's payload goes, and the rules it breaks (§5.5).
    fn control_sink(
        &mut self,
        h: &FrameHeader,
        at: Micros,
        dir: Direction,
        loc: Location,
        out: &mut dyn EventSink,
    ) -> PayloadSink {
        let d = dir.index();
        let name = h.opcode.name();
        if !h.fin {
            self.finding(
                out,
                at,
                dir,
                WsFinding::FragmentedControlFrame,
                format!("{name} frame has FIN=0; control frames cannot be fragmented"),
                loc.clone(),
            );
        }
        if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
            self.finding(
                out,
                at,
                dir,
                WsFinding::ControlFrameTooLong,
                format!(
                    "{name} frame carries {} bytes; control frames carry at most 125",
                    h.payload_len
                ),
                loc.clone(),
            );
        }
        if matches!(h.opcode, OpCode::Close | OpCode::Ping | OpCode::Pong) {
            self.dirs[d].ctrl.clear();
            self.dirs[d].ctrl_lossy = false;
            PayloadSink::Control
        } else {
            self.reserved_opcode(out, at, dir, h.opcode, loc);
            PayloadSink::Discard
        }
    }

    /// Where a data frame's payload goes: a new message, the one being
    /// fragmented, or nowhere (§5.4).
    fn data_sink(
        &mut self,
        h: &FrameHeader,
        at: Micros,
        dir: Direction,
        loc: Location,
        out: &mut dyn EventSink,
    ) -> PayloadSink {
        let d = dir.index();
        let name = h.opcode.name();
        match h.opcode {
            OpCode::Continuation => match &mut self.dirs[d].msg {
                Some(m) => {
                    m.fragments += 1;
                    m.wire_len = m.wire_len.saturating_add(h.payload_len);
                    PayloadSink::Message
                }
                None => {
                    self.finding(
                        out,
                        at,
                        dir,
                        WsFinding::ContinuationWithoutStart,
                        "continuation frame with no fragmented message in progress".into(),
                        loc,
                    );
                    PayloadSink::Discard
                }
            },
            OpCode::Text | OpCode::Binary => {
                if let Some(old) = &self.dirs[d].msg {
                    let old_name = old.opcode.name();
                    self.finding(
                        out,
                        at,
                        dir,
                        WsFinding::DataInsideFragmentedMessage,
                        format!(
                            "new {name} message while a fragmented {old_name} message is unfinished; the unfinished one is dropped"
                        ),
                        loc,
                    );
                }
                let base64 = self.neg.base64 && h.opcode == OpCode::Text;
                self.dirs[d].msg = Some(Msg {
                    opcode: h.opcode,
                    compressed: self.neg.deflate && h.rsv & 0x4 != 0,
                    wire_len: h.payload_len,
                    plain_len: 0,
                    fragments: 1,
                    utf8: Utf8Stream::default(),
                    utf8_bad: false,
                    preview: Vec::new(),
                    inner: h.opcode == OpCode::Binary || base64,
                    base64,
                    b64_carry: Vec::new(),
                    b64_bad: false,
                    lossy: false,
                });
                PayloadSink::Message
            }
            _ => {
                self.reserved_opcode(out, at, dir, h.opcode, loc);
                PayloadSink::Discard
            }
        }
    }

    fn reserved_opcode(
        &mut self,
        out: &mut dyn EventSink,
        at: Micros,
        dir: Direction,
        opcode: OpCode,
        loc: Location,
    ) {
        self.finding(
            out,
            at,
            dir,
            WsFinding::ReservedOpcode,
            format!("opcode {:#x} is reserved", u8::from(opcode)),
            loc,
        );
    }

    fn payload(&mut self, chunk: &Chunk<'_>, data: &[u8], offset: u64, out: &mut dyn EventSink) {
        let d = chunk.direction.index();
        let Some(f) = &self.dirs[d].frame else {
            return;
        };
        let (sink, mask, phase) = (f.sink, f.h.mask, (f.payload_done % 4) as usize);
        if sink == PayloadSink::Discard {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let plain: &[u8] = match mask {
            Some(key) => {
                scratch.clear();
                scratch.extend_from_slice(data);
                frame::unmask(&mut scratch, key, phase);
                &scratch
            }
            None => data,
        };
        match sink {
            PayloadSink::Control => {
                let ctrl = &mut self.dirs[d].ctrl;
                let room = MAX_CONTROL_PAYLOAD.saturating_sub(ctrl.len());
                ctrl.extend_from_slice(&plain[..plain.len().min(room)]);
            }
            PayloadSink::Message => self.message_bytes(chunk, plain, offset, out),
            PayloadSink::Discard => {}
        }
        self.scratch = scratch;
    }

    fn message_bytes(
        &mut self,
        chunk: &Chunk<'_>,
        plain: &[u8],
        offset: u64,
        out: &mut dyn EventSink,
    ) {
        let d = chunk.direction.index();
        let Some(m) = &self.dirs[d].msg else { return };
        if !m.compressed {
            self.message_plain(
                chunk.at,
                chunk.frame,
                chunk.direction,
                plain,
                Some(offset),
                out,
            );
            return;
        }
        if let Err(e) = self.inflate(chunk.at, chunk.frame, chunk.direction, plain, false, out) {
            let start = self.dirs[d].frame.as_ref().map_or(offset, |f| f.start);
            let loc = self.loc(chunk.frame, chunk.direction, start);
            self.finding(
                out,
                chunk.at,
                chunk.direction,
                WsFinding::InflateFailed,
                format!(
                    "permessage-deflate payload does not inflate ({e}); compressed messages this way are opaque from here"
                ),
                loc,
            );
        }
    }

    /// Inflates `input` (or the message's closing `00 00 ff ff` when
    /// `end`), passing the output on as it comes.
    fn inflate(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        input: &[u8],
        end: bool,
        out: &mut dyn EventSink,
    ) -> Result<(), String> {
        let d = dir.index();
        if self.dirs[d].inflate_broken {
            return Ok(());
        }
        let Some(mut inf) = self.dirs[d].inflater.take() else {
            return Ok(());
        };
        let mut buf = std::mem::take(&mut self.inflate_buf);
        buf.resize(INFLATE_BUF, 0);
        let mut input = input;
        let flush = if end {
            FlushDecompress::Sync
        } else {
            FlushDecompress::None
        };
        let mut result = Ok(());
        loop {
            let (in0, out0) = (inf.total_in(), inf.total_out());
            let status = inf.decompress(input, &mut buf, flush);
            let consumed = (inf.total_in() - in0) as usize;
            let produced = (inf.total_out() - out0) as usize;
            input = &input[consumed..];
            if produced > 0 {
                self.message_plain(at, frame, dir, &buf[..produced], None, out);
            }
            match status {
                Ok(Status::StreamEnd) => {
                    // A final deflate block: the next message starts afresh.
                    inf.reset(false);
                    if input.is_empty() {
                        break;
                    }
                }
                Ok(_) => {
                    if (input.is_empty() && produced < buf.len())
                        || (consumed == 0 && produced == 0)
                    {
                        break;
                    }
                }
                Err(e) => {
                    self.dirs[d].inflate_broken = true;
                    result = Err(e.to_string());
                    break;
                }
            }
        }
        self.inflate_buf = buf;
        self.dirs[d].inflater = Some(inf);
        result
    }

    /// Application bytes of the current data message.
    fn message_plain(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        bytes: &[u8],
        wire_offset: Option<u64>,
        out: &mut dyn EventSink,
    ) {
        let d = dir.index();
        let frame_start = self.dirs[d].frame.as_ref().map_or(0, |f| f.start);
        let Some(m) = &mut self.dirs[d].msg else {
            return;
        };
        m.plain_len += bytes.len() as u64;
        if m.preview.len() < PREVIEW_LEN && m.opcode == OpCode::Text {
            let n = (PREVIEW_LEN - m.preview.len()).min(bytes.len());
            m.preview.extend_from_slice(&bytes[..n]);
        }
        let mut bad_utf8 = None;
        if m.opcode == OpCode::Text
            && !m.utf8_bad
            && !m.lossy
            && let Err(i) = m.utf8.feed(bytes)
        {
            m.utf8_bad = true;
            bad_utf8 = Some(wire_offset.map_or(frame_start, |o| o + i as u64));
        }
        let mut decoded = None;
        let mut bad_b64 = false;
        if m.base64 && !m.b64_bad {
            let mut joined = std::mem::take(&mut m.b64_carry);
            joined.extend_from_slice(bytes);
            let whole = joined.len() - joined.len() % 4;
            match base64::engine::general_purpose::STANDARD.decode(&joined[..whole]) {
                Ok(v) => decoded = Some(v),
                Err(_) => {
                    m.b64_bad = true;
                    bad_b64 = true;
                }
            }
            m.b64_carry = joined[whole..].to_vec();
        }
        let to_inner = m.inner && !m.base64;
        if let Some(off) = bad_utf8 {
            let loc = self.loc(frame, dir, off);
            self.finding(
                out,
                at,
                dir,
                WsFinding::InvalidUtf8Text,
                "text message is not valid UTF-8".into(),
                loc,
            );
        }
        if bad_b64 {
            let loc = self.loc(frame, dir, frame_start);
            self.finding(
                out,
                at,
                dir,
                WsFinding::InvalidBase64,
                "text message on the base64 subprotocol is not base64".into(),
                loc,
            );
        }
        if to_inner {
            self.inner.data(at, frame, dir, bytes, out);
        } else if let Some(v) = decoded {
            self.inner.data(at, frame, dir, &v, out);
        }
    }

    fn finish_frame(&mut self, at: Micros, frame_no: u64, dir: Direction, out: &mut dyn EventSink) {
        let d = dir.index();
        let Some(f) = self.dirs[d].frame.take() else {
            return;
        };
        let h = f.h;
        let loc = self.loc(frame_no, dir, f.start);
        let mut detail = Vec::with_capacity(12);
        detail.extend([
            (k("fin"), json!(h.fin)),
            (k("rsv"), json!(h.rsv)),
            (k("opcode"), json!(u8::from(h.opcode))),
            (k("masked"), json!(h.mask.is_some())),
            (k("payload_len"), json!(h.payload_len)),
        ]);
        let done = Done {
            at,
            frame_no,
            dir,
            h,
            loc,
        };
        match (f.sink, h.opcode) {
            (PayloadSink::Control, OpCode::Ping) => self.finish_ping(&done, detail, out),
            (PayloadSink::Control, OpCode::Pong) => self.finish_pong(&done, detail, out),
            (PayloadSink::Control, OpCode::Close) => self.finish_close(&done, detail, out),
            (PayloadSink::Message, _) if h.fin => self.finish_message(&done, detail, out),
            _ => self.message(out, at, dir, h.opcode.name(), done.wire_len(), detail),
        }
    }

    fn finish_ping(&mut self, f: &Done, mut detail: Detail, out: &mut dyn EventSink) {
        let Done { at, dir, h, .. } = *f;
        let (d, name, wire_len) = (dir.index(), h.opcode.name(), f.wire_len());
        let payload = std::mem::take(&mut self.dirs[d].ctrl);
        detail.push((k("payload"), payload_repr(&payload)));
        self.message(out, at, dir, name, wire_len, detail);
        self.emit(
            out,
            at,
            dir,
            EventKind::Ping {
                protocol: "ws",
                id: None,
                payload_len: h.payload_len,
            },
        );
        let pings = &mut self.dirs[d].pings;
        if pings.len() == MAX_PENDING_PINGS {
            pings.pop_front();
        }
        pings.push_back((payload, at));
    }

    fn finish_pong(&mut self, f: &Done, mut detail: Detail, out: &mut dyn EventSink) {
        let Done { at, dir, h, .. } = *f;
        let (d, name, wire_len) = (dir.index(), h.opcode.name(), f.wire_len());
        let payload = std::mem::take(&mut self.dirs[d].ctrl);
        // A pong answers the matching ping from the other side; a
        // peer may answer only the latest, so older ones are dropped.
        let pings = &mut self.dirs[dir.reverse().index()].pings;
        let rtt = pings.iter().position(|(p, _)| *p == payload).map(|i| {
            let sent = pings[i].1;
            pings.drain(..=i);
            at.saturating_sub(sent)
        });
        detail.push((k("payload"), payload_repr(&payload)));
        detail.push((k("solicited"), json!(rtt.is_some())));
        self.message(out, at, dir, name, wire_len, detail);
        self.emit(
            out,
            at,
            dir,
            EventKind::Pong {
                protocol: "ws",
                id: None,
                payload_len: h.payload_len,
                rtt,
            },
        );
    }

    fn finish_close(&mut self, f: &Done, mut detail: Detail, out: &mut dyn EventSink) {
        let Done { at, dir, h, .. } = *f;
        let (d, name, wire_len, loc) = (dir.index(), h.opcode.name(), f.wire_len(), &f.loc);
        let body = std::mem::take(&mut self.dirs[d].ctrl);
        // A close body with bytes missing cannot be judged.
        let (code, reason) = if self.dirs[d].ctrl_lossy {
            detail.push((k("lost_bytes"), json!(true)));
            (None, String::new())
        } else {
            self.close_body(at, dir, &body, h.payload_len, loc, out)
        };
        let reply = self.dirs[dir.reverse().index()].close_sent;
        detail.push((k("code"), json!(code)));
        detail.push((k("reason"), json!(reason)));
        detail.push((k("reply"), json!(reply)));
        self.message(out, at, dir, name, wire_len, detail);
        self.emit(
            out,
            at,
            dir,
            EventKind::Close(CloseKind::WsClose { code, reason }),
        );
        self.dirs[d].close_sent = true;
    }

    /// The last frame of a data message: the message's own detail, and
    /// what an unfinished UTF-8 or base64 tail says.
    fn finish_message(&mut self, f: &Done, mut detail: Detail, out: &mut dyn EventSink) {
        let Done {
            at,
            frame_no,
            dir,
            h,
            ..
        } = *f;
        let (d, name, wire_len, loc) = (dir.index(), h.opcode.name(), f.wire_len(), &f.loc);
        if let Some(m) = self.dirs[d].msg.as_ref()
            && m.compressed
            && let Err(e) = self.inflate(at, frame_no, dir, &[0, 0, 0xFF, 0xFF], true, out)
        {
            self.finding(
                out,
                at,
                dir,
                WsFinding::InflateFailed,
                format!(
                    "permessage-deflate message does not inflate ({e}); compressed messages this way are opaque from here"
                ),
                loc.clone(),
            );
        }
        let dirst = &mut self.dirs[d];
        if let Some(m) = dirst.msg.as_ref()
            && m.compressed
            && dirst.no_context_takeover
            && let Some(inf) = &mut dirst.inflater
        {
            inf.reset(false);
        }
        let inflate_broken = dirst.inflate_broken;
        if let Some(m) = dirst.msg.take() {
            let utf8_incomplete =
                m.opcode == OpCode::Text && !m.utf8_bad && !m.lossy && !m.utf8.is_complete();
            let b64_leftover = m.base64 && !m.b64_bad && !m.b64_carry.is_empty();
            if m.fragments > 1 {
                detail.push((k("message_opcode"), json!(u8::from(m.opcode))));
                detail.push((k("message_wire_len"), json!(m.wire_len)));
                detail.push((k("fragments"), json!(m.fragments)));
            }
            if m.compressed {
                detail.push((k("compressed"), json!(true)));
                detail.push((k("inflated"), json!(!inflate_broken)));
            }
            if !(m.compressed && inflate_broken) {
                detail.push((k("message_len"), json!(m.plain_len)));
            }
            if m.opcode == OpCode::Text && !m.preview.is_empty() {
                detail.push((k("text"), json!(String::from_utf8_lossy(&m.preview))));
            }
            if utf8_incomplete {
                self.finding(
                    out,
                    at,
                    dir,
                    WsFinding::InvalidUtf8Text,
                    "text message ends inside a UTF-8 sequence".into(),
                    loc.clone(),
                );
            }
            if b64_leftover {
                self.finding(
                    out,
                    at,
                    dir,
                    WsFinding::InvalidBase64,
                    "base64 text message length is not a multiple of 4".into(),
                    loc.clone(),
                );
            }
        }
        self.message(out, at, dir, name, wire_len, detail);
    }

    /// Code and reason of a close frame body, with its findings.
    fn close_body(
        &mut self,
        at: Micros,
        dir: Direction,
        body: &[u8],
        payload_len: u64,
        loc: &Location,
        out: &mut dyn EventSink,
    ) -> (Option<u16>, String) {
        if body.is_empty() {
            return (None, String::new());
        }
        if body.len() == 1 {
            self.finding(
                out,
                at,
                dir,
                WsFinding::ClosePayloadOneByte,
                "close frame body is 1 byte; it must be empty or start with a 2-byte code".into(),
                loc.clone(),
            );
            return (None, String::new());
        }
        let Ok((reason_bytes, code)) = frame::close_code(body) else {
            return (None, String::new());
        };
        // An oversized close was cut at 125 bytes, maybe inside a character.
        let truncated = payload_len > body.len() as u64;
        let reason_ok = match std::str::from_utf8(reason_bytes) {
            Ok(_) => true,
            Err(e) => truncated && e.error_len().is_none(),
        };
        if !reason_ok {
            self.finding(
                out,
                at,
                dir,
                WsFinding::InvalidUtf8CloseReason,
                "close reason is not valid UTF-8".into(),
                loc.clone(),
            );
        }
        match code {
            1005 | 1006 | 1015 => self.finding(
                out,
                at,
                dir,
                WsFinding::CloseCodeNeverSent,
                format!("close code {code} is reserved for reporting and must never be sent"),
                loc.clone(),
            ),
            1000..=1003 | 1007..=1014 | 3000..=4999 => {}
            5000.. => self.finding(
                out,
                at,
                dir,
                WsFinding::CloseCodePastRanges,
                format!("close code {code} is outside every defined range"),
                loc.clone(),
            ),
            _ => self.finding(
                out,
                at,
                dir,
                WsFinding::CloseCodeUnassigned,
                format!("close code {code} is not in use or reserved"),
                loc.clone(),
            ),
        }
        (
            Some(code),
            String::from_utf8_lossy(reason_bytes).into_owned(),
        )
    }
}

impl StreamDecoder for WsDecoder {
    fn stack(&self) -> Vec<&'static str> {
        let mut s = vec!["tcp", "ws"];
        s.extend(self.inner.stack_tail());
        s
    }

    fn data(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) {
        let d = chunk.direction.index();
        self.dirs[d].last_frame = chunk.frame;
        self.dirs[d].last_offset = chunk.stream_offset + chunk.bytes.len() as u64;
        let mut pos = 0;
        while pos < chunk.bytes.len() {
            let used = match self.dirs[d].mode {
                Mode::Opaque => return,
                Mode::Head => self.head_bytes(&chunk, pos, out),
                Mode::Frames => self.frame_bytes(&chunk, pos, out),
            };
            pos += used;
        }
    }

    fn gap(
        &mut self,
        at: Micros,
        dir: Direction,
        stream_offset: u64,
        len: u64,
        out: &mut dyn EventSink,
    ) {
        let d = dir.index();
        let frame_no = self.dirs[d].last_frame;
        let dirst = &mut self.dirs[d];
        if dirst.mode == Mode::Opaque {
            return;
        }
        // A gap inside one frame's payload keeps the framing: skip it.
        if dirst.mode == Mode::Frames
            && dirst.hdr_fill == 0
            && let Some(f) = &mut dirst.frame
            && f.h.payload_len - f.payload_done >= len
        {
            f.payload_done += len;
            let done = f.payload_done == f.h.payload_len;
            let in_message = f.sink == PayloadSink::Message;
            if f.sink == PayloadSink::Control {
                dirst.ctrl_lossy = true;
            }
            let to_inner = in_message && dirst.msg.as_ref().is_some_and(|m| m.inner && !m.base64);
            if in_message && let Some(m) = &mut dirst.msg {
                m.lossy = true;
                if m.compressed {
                    dirst.inflate_broken = true;
                }
            }
            if to_inner {
                self.inner.gap(at, dir, len, out);
            }
            if done {
                self.finish_frame(at, frame_no, dir, out);
            }
            return;
        }
        dirst.mode = Mode::Opaque;
        let loc = self.loc(frame_no, dir, stream_offset);
        self.finding(
            out,
            at,
            dir,
            WsFinding::GapLostFraming,
            format!("{len} bytes missing outside a frame payload; the rest of this direction is not decoded"),
            loc,
        );
    }

    fn end(&mut self, at: Micros, dir: Direction, how: StreamEnd, out: &mut dyn EventSink) {
        let d = dir.index();
        let frame_no = self.dirs[d].last_frame;
        let offset = self.dirs[d].last_offset;
        let dirst = &self.dirs[d];
        if how != StreamEnd::EndOfCapture && dirst.mode == Mode::Frames {
            let partial = dirst.frame.is_some() || dirst.hdr_fill > 0;
            let unfinished = dirst.msg.is_some();
            if partial || unfinished {
                let loc = self.loc(frame_no, dir, offset);
                self.finding(
                    out,
                    at,
                    dir,
                    WsFinding::IncompleteAtEnd,
                    format!(
                        "TCP ended inside a {}",
                        if partial {
                            "frame"
                        } else {
                            "fragmented message"
                        }
                    ),
                    loc,
                );
            }
        }
        // A direction whose framing was lost may have closed unseen: no
        // claims about the closing handshake then.
        let blind = self.dirs.iter().any(|x| x.mode == Mode::Opaque);
        if self.neg.upgraded && how != StreamEnd::EndOfCapture && !blind {
            let sent = self.dirs[d].close_sent;
            let other_sent = self.dirs[dir.reverse().index()].close_sent;
            if !sent && !other_sent && !self.abnormal_reported {
                self.abnormal_reported = true;
                let how_s = if how == StreamEnd::Rst { "rst" } else { "fin" };
                self.message(
                    out,
                    at,
                    dir,
                    "abnormal_closure",
                    0,
                    vec![
                        (k("code"), json!(1006)),
                        (k("tcp"), json!(how_s)),
                        (k("ended_by"), json!(dir.sender())),
                    ],
                );
            }
            if other_sent && !sent {
                let loc = self.loc(frame_no, dir, offset);
                self.finding(
                    out,
                    at,
                    dir,
                    WsFinding::CloseNotAnswered,
                    format!(
                        "the {} closed TCP without answering the {}'s close frame",
                        dir.sender(),
                        dir.reverse().sender()
                    ),
                    loc,
                );
            }
        }
        self.inner.end(at, dir, how, out);
    }
}

type Detail = Vec<(Cow<'static, str>, Value)>;

fn k(key: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(key)
}

/// Ping/pong payloads: text if they are printable UTF-8, else hex.
fn payload_repr(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => json!(s),
        _ => json!({ "hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
