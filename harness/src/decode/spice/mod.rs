//! The SPICE decoder: link stage both ways, then the data stage with the
//! header the capabilities negotiated (protocol-facts §1).
//!
//! One TCP connection is one SPICE channel. Each direction is framed on
//! its own; bodies are streamed through, keeping only the few leading
//! bytes a message's detail needs, so main's 256 KB net-test PING costs no
//! buffering. Streams that start mid-session (ryll bug-report rings) are
//! framed from their first byte with the mini header, the channel named
//! by [`StreamContext::mid_stream_spice_channel`].
//!
//! Events carry the time of a message's last byte; a PONG's round trip is
//! from its PING's last byte to its own, so main's 256 KB net-test PING
//! does not count its own transfer time.

pub mod findings;
pub mod names;
pub mod report;
pub mod wire;

use crate::decode::{
    Chunk, EventSink, MessageLimits, SessionInfo, StreamContext, StreamDecoder, StreamEnd,
};
use crate::timeline::kinds::FindingKind;
use crate::timeline::{CloseKind, ConnectionId, Direction, Event, EventKind, Location, Micros};
use findings::SpiceFinding;
use names::*;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::VecDeque;

pub use wire::{FULL_HEADER_LEN, LINK_HEADER_LEN, MINI_HEADER_LEN};

/// Largest link message (header size field) a server accepts from a
/// client (SS reds.cpp:2249-2253); tether holds server replies to the same
/// bound since a real reply is 178 bytes plus a few caps words.
pub const MAX_LINK_SIZE: u32 = 4096;
/// Client messages bigger than this are not framing we believe: the
/// largest a stock client sends is agent data of a few KiB. Tether's
/// bound, not a server constant.
pub const MAX_CLIENT_BODY: u32 = 1 << 20;
/// Server messages bigger than this mean the framing is lost (an
/// uncompressed 4K frame is ~33 MB). Tether's bound.
pub const MAX_SERVER_BODY: u32 = 128 << 20;
/// Leading body bytes kept for a message's detail; the rest is skipped.
const MAX_DETAIL_PREFIX: u32 = 512;
/// Outstanding PINGs remembered per channel (the server keeps one pair).
const MAX_OUTSTANDING_PINGS: usize = 64;
/// Encrypted ticket length for AUTH_SPICE (RSA-1024).
const TICKET_LEN: usize = 128;

const CAP_AUTH_SELECTION: u32 = 1 << 0;
const CAP_MINI_HEADER: u32 = 1 << 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    LinkHeader,
    LinkBody {
        size: u32,
    },
    /// After the client's link message: auth mechanism or ticket, decided
    /// when the bytes come, by then the server's reply is known.
    AuthChoice,
    AuthMechanism,
    Ticket,
    LinkResult,
    Header,
    Body {
        ty: u16,
        size: u32,
        header_len: u8,
        prefix: u32,
        skip: u64,
        prefix_done: bool,
    },
    /// Framing is gone (bad magic, absurd size, gap, SASL, failed link):
    /// bytes are only counted.
    Lost,
    /// A mid-stream ring with no SPICE framing (ryll's playback bodies).
    Unframed,
}

struct Half {
    state: State,
    /// Bytes of the unit being gathered (a header, a link body, a detail
    /// prefix); never more than `MAX_LINK_SIZE + LINK_HEADER_LEN`.
    buf: Vec<u8>,
    /// Stream offset where the current unit (message) began.
    unit_start: u64,
    mini: bool,
    next_serial: Option<u64>,
    ended: bool,
}

impl Half {
    fn new(state: State, mini: bool) -> Half {
        Half {
            state,
            buf: Vec::new(),
            unit_start: 0,
            mini,
            next_serial: None,
            ended: false,
        }
    }
    fn header_len(&self) -> usize {
        if self.mini {
            MINI_HEADER_LEN
        } else {
            FULL_HEADER_LEN
        }
    }
}

struct OutstandingPing {
    id: u32,
    at: Micros,
    /// Server messages the client had received when this PING was sent.
    received: u64,
}

/// SET_ACK flow-control bookkeeping of one channel.
struct AckWindow {
    generation: u32,
    window: u32,
    /// Server messages since the SET_ACK, the SET_ACK included.
    received: u64,
    acks: u64,
    synced: bool,
    reported_missing: bool,
}

/// Where the bytes being handled sit, for events and findings.
#[derive(Clone, Copy)]
struct Here {
    at: Micros,
    frame: u64,
    dir: Direction,
}

/// A complete message as its body readers see it.
#[derive(Clone, Copy)]
struct Msg<'a> {
    here: Here,
    start: u64,
    size: u32,
    name: &'a Cow<'static, str>,
    /// The body's leading bytes, as many as its detail needs.
    prefix: &'a [u8],
}

/// What a message's body says: its detail fields, the event it also is (a
/// PING, a PONG, a close), or the fixed part it was too short for.
#[derive(Default)]
struct Body {
    detail: Vec<(Cow<'static, str>, Value)>,
    follow: Option<EventKind>,
    too_short: Option<usize>,
}

pub struct SpiceDecoder {
    conn: ConnectionId,
    channel_type: Option<u8>,
    channel_id: Option<u8>,
    session_id: Option<u32>,
    mid_stream: bool,
    halves: [Half; 2],
    client_common_caps: Option<u32>,
    server_common_caps: Option<u32>,
    link_result: Option<u32>,
    disconnect_reason: Option<&'static str>,
    pings: VecDeque<OutstandingPing>,
    server_messages: u64,
    ack: Option<AckWindow>,
    main_pings_seen: u32,
    limits: MessageLimits,
}

impl SpiceDecoder {
    pub fn new(ctx: &StreamContext) -> SpiceDecoder {
        let mid = ctx.mid_stream_spice_channel;
        let (c2s, s2c) = match mid {
            // ryll's rings record whole messages with the mini header.
            Some(_) => (
                Half::new(State::Header, true),
                Half::new(State::Header, true),
            ),
            None => (
                Half::new(State::LinkHeader, true),
                Half::new(State::LinkHeader, true),
            ),
        };
        let mut halves = [c2s, s2c];
        // ryll's playback ring holds bodies without headers (ryll-bugreport
        // §2.1): nothing to frame, said once at the first byte.
        if mid == Some(PLAYBACK) {
            for h in &mut halves {
                h.state = State::Unframed;
            }
        }
        SpiceDecoder {
            conn: ctx.connection,
            channel_type: mid,
            channel_id: None,
            session_id: None,
            mid_stream: mid.is_some(),
            halves,
            client_common_caps: None,
            server_common_caps: None,
            link_result: None,
            disconnect_reason: None,
            pings: VecDeque::new(),
            server_messages: 0,
            ack: None,
            main_pings_seen: 0,
            limits: ctx.limits,
        }
    }

    fn channel(&self) -> Option<Cow<'static, str>> {
        self.channel_type.and_then(channel_name).map(Cow::Borrowed)
    }

    fn location(&self, here: Here, stream_offset: u64) -> Location {
        Location {
            frame: Some(here.frame),
            connection: Some(self.conn),
            direction: Some(here.dir),
            stream_offset: Some(stream_offset),
            ..Location::default()
        }
    }

    fn emit(&self, here: Here, kind: EventKind, out: &mut dyn EventSink) {
        out.event(Event {
            frame: None,
            at: here.at,
            connection: self.conn,
            channel: self.channel(),
            direction: Some(here.dir),
            kind,
        });
    }

    fn finding(
        &self,
        here: Here,
        offset: u64,
        kind: SpiceFinding,
        message: String,
        out: &mut dyn EventSink,
    ) {
        let f = kind.at(message, self.location(here, offset));
        self.emit(here, EventKind::Finding(f), out);
    }

    fn message(
        &self,
        here: Here,
        name: Cow<'static, str>,
        len: u64,
        detail: Vec<(Cow<'static, str>, Value)>,
        out: &mut dyn EventSink,
    ) {
        self.emit(
            here,
            EventKind::Message {
                protocol: "spice",
                name,
                len,
                detail,
            },
            out,
        );
    }

    /// Bytes the current unit of `dir` needs gathered, 0 when skipping.
    fn need(&mut self, dir: Direction) -> usize {
        let server_caps = self.server_common_caps;
        let client_caps = self.client_common_caps;
        let h = &mut self.halves[dir.index()];
        match h.state {
            State::LinkHeader => LINK_HEADER_LEN,
            State::LinkBody { size } => size as usize,
            State::AuthChoice => {
                // The client sends the mechanism word only when both sides
                // advertise AUTH_SELECTION (protocol-facts §1.2 step 3).
                let client = client_caps.unwrap_or(0) & CAP_AUTH_SELECTION != 0;
                let server = server_caps.is_none_or(|c| c & CAP_AUTH_SELECTION != 0);
                h.state = if client && server {
                    State::AuthMechanism
                } else {
                    State::Ticket
                };
                if h.state == State::AuthMechanism {
                    4
                } else {
                    TICKET_LEN
                }
            }
            State::AuthMechanism | State::LinkResult => 4,
            State::Ticket => TICKET_LEN,
            State::Header => h.header_len(),
            State::Body {
                prefix,
                prefix_done,
                ..
            } => {
                if prefix_done {
                    0
                } else {
                    prefix as usize
                }
            }
            State::Lost | State::Unframed => 0,
        }
    }

    fn feed(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) {
        let dir = chunk.direction;
        let i = dir.index();
        let here = Here {
            at: chunk.at,
            frame: chunk.frame,
            dir,
        };
        let mut bytes = chunk.bytes;
        let mut pos = chunk.stream_offset;
        while !bytes.is_empty() {
            if let State::Body {
                skip, prefix_done, ..
            } = &mut self.halves[i].state
                && *prefix_done
            {
                let n = (*skip).min(bytes.len() as u64);
                *skip -= n;
                bytes = &bytes[n as usize..];
                pos += n;
                if *skip == 0 {
                    let prefix = std::mem::take(&mut self.halves[i].buf);
                    self.complete_message(here, &prefix, out);
                    self.halves[i].buf = prefix;
                    self.halves[i].buf.clear();
                }
                continue;
            }
            if self.halves[i].state == State::Unframed {
                self.halves[i].state = State::Lost;
                self.finding(
                    here,
                    pos,
                    SpiceFinding::UnframedRing,
                    "ryll's playback ring records message bodies without headers; this direction is counted, not framed".to_string(),
                    out,
                );
                return;
            }
            if self.halves[i].state == State::Lost {
                return;
            }
            let need = self.need(dir);
            let h = &mut self.halves[i];
            if h.buf.is_empty() {
                h.unit_start = match h.state {
                    State::Body { .. } => h.unit_start,
                    _ => pos,
                };
                if bytes.len() >= need {
                    let (unit, rest) = bytes.split_at(need);
                    bytes = rest;
                    pos += need as u64;
                    self.unit(here, unit, out);
                    continue;
                }
            }
            let take = (need - h.buf.len()).min(bytes.len());
            h.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            pos += take as u64;
            if h.buf.len() == need {
                let unit = std::mem::take(&mut h.buf);
                self.unit(here, &unit, out);
                let h = &mut self.halves[i];
                // A body prefix that is still waiting for its skip keeps `buf`.
                if h.buf.is_empty() {
                    h.buf = unit;
                    h.buf.clear();
                }
            }
        }
    }

    /// One complete unit (of the length [`Self::need`] asked for).
    fn unit(&mut self, here: Here, unit: &[u8], out: &mut dyn EventSink) {
        let i = here.dir.index();
        let start = self.halves[i].unit_start;
        match self.halves[i].state {
            State::LinkHeader => self.link_header(here, start, unit, out),
            State::LinkBody { .. } => match here.dir {
                Direction::ClientToServer => self.link_mess(here, start, unit, out),
                Direction::ServerToClient => self.link_reply(here, start, unit, out),
            },
            State::AuthChoice => {}
            State::AuthMechanism => self.auth_mechanism(here, start, unit, out),
            State::Ticket => {
                self.message(
                    here,
                    Cow::Borrowed("SPICE_LINK_ENCRYPTED_TICKET"),
                    TICKET_LEN as u64,
                    Vec::new(),
                    out,
                );
                let mini = self.mini_negotiated();
                let h = &mut self.halves[i];
                h.mini = mini;
                h.state = State::Header;
            }
            State::LinkResult => self.link_result(here, unit, out),
            State::Header => self.data_header(here, start, unit, out),
            State::Body {
                ty,
                size,
                header_len,
                prefix,
                skip,
                ..
            } => {
                if skip == 0 {
                    self.complete_message(here, unit, out);
                } else {
                    self.halves[i].buf.extend_from_slice(unit);
                    self.halves[i].state = State::Body {
                        ty,
                        size,
                        header_len,
                        prefix,
                        skip,
                        prefix_done: true,
                    };
                }
            }
            State::Lost | State::Unframed => {}
        }
    }

    /// SpiceLinkAuthMechanism: SPICE's ticket follows; SASL is not framed.
    fn auth_mechanism(&mut self, here: Here, start: u64, unit: &[u8], out: &mut dyn EventSink) {
        let i = here.dir.index();
        let mech = wire::word(unit).map_or(0, |(_, m)| m);
        let name = match mech {
            1 => "SPICE",
            2 => "SASL",
            _ => "UNKNOWN",
        };
        self.message(
            here,
            Cow::Borrowed("SPICE_LINK_AUTH_MECHANISM"),
            4,
            vec![
                ("mechanism".into(), json!(mech)),
                ("name".into(), json!(name)),
            ],
            out,
        );
        if mech == 1 {
            self.halves[i].state = State::Ticket;
        } else {
            // SASL exchanges are not framed here; both ways go dark.
            self.finding(
                here,
                start,
                SpiceFinding::AuthNotDecoded,
                format!(
                    "auth mechanism {mech} ({name}) is not decoded; the channel is counted only"
                ),
                out,
            );
            self.halves[0].state = State::Lost;
            self.halves[1].state = State::Lost;
        }
    }

    /// The server's link result after the ticket: data messages follow,
    /// or the link failed.
    fn link_result(&mut self, here: Here, unit: &[u8], out: &mut dyn EventSink) {
        let i = here.dir.index();
        let code = wire::word(unit).map_or(0, |(_, c)| c);
        self.link_result = Some(code);
        self.message(
            here,
            Cow::Borrowed("SPICE_LINK_RESULT"),
            4,
            vec![
                ("result".into(), json!(code)),
                ("name".into(), json!(link_err_name(code))),
            ],
            out,
        );
        if code == 0 {
            let mini = self.mini_negotiated();
            let h = &mut self.halves[i];
            h.mini = mini;
            h.state = State::Header;
        } else {
            self.link_failed(here, code, out);
        }
    }

    /// The server frames both ways with the mini header iff the client
    /// advertised it; a client uses it iff the server did (protocol-facts
    /// §1.5). A side we did not see is taken to advertise it, as every
    /// known implementation does.
    fn mini_negotiated(&self) -> bool {
        let has = |caps: Option<u32>| caps.is_none_or(|c| c & CAP_MINI_HEADER != 0);
        has(self.client_common_caps) && has(self.server_common_caps)
    }

    fn link_failed(&mut self, here: Here, code: u32, out: &mut dyn EventSink) {
        let name = format!("SPICE_LINK_ERR_{}", link_err_name(code));
        self.emit(
            here,
            EventKind::Close(CloseKind::Protocol {
                name: Cow::Owned(name),
            }),
            out,
        );
        self.halves[0].state = State::Lost;
        self.halves[1].state = State::Lost;
    }

    fn link_header(&mut self, here: Here, start: u64, unit: &[u8], out: &mut dyn EventSink) {
        let i = here.dir.index();
        // The framer hands over whole units; a short one cannot occur, and
        // reads as zeros (a bad magic) rather than panicking.
        let h = wire::link_header(unit).map_or(
            wire::LinkHeader {
                magic: [0; 4],
                major: 0,
                minor: 0,
                size: 0,
            },
            |(_, h)| h,
        );
        if &h.magic != b"REDQ" {
            self.finding(
                here,
                start,
                SpiceFinding::BadMagic,
                format!("link header magic is {:02x?}, not REDQ; the rest of this direction is not decoded", h.magic),
                out,
            );
            self.halves[i].state = State::Lost;
            return;
        }
        if h.major != 2 {
            self.finding(
                here,
                start,
                SpiceFinding::VersionMismatch,
                format!(
                    "protocol version {}.{}; servers accept only major 2",
                    h.major, h.minor
                ),
                out,
            );
        }
        let min = match here.dir {
            Direction::ClientToServer => wire::LINK_MESS_LEN as u32,
            Direction::ServerToClient => wire::LINK_REPLY_ERROR_LEN as u32,
        };
        if h.size < min || h.size > MAX_LINK_SIZE {
            self.finding(
                here,
                start,
                SpiceFinding::LinkSizeOutOfRange,
                format!(
                    "link message size {} outside {min}..={MAX_LINK_SIZE}; the rest of this direction is not decoded",
                    h.size
                ),
                out,
            );
            self.halves[i].state = State::Lost;
            return;
        }
        self.halves[i].state = State::LinkBody { size: h.size };
    }

    /// Reads the caps words a link message or reply points at, or reports
    /// that they do not fit.
    fn caps(
        &self,
        here: Here,
        start: u64,
        body: &[u8],
        counts: (u32, u32),
        caps_offset: u32,
        out: &mut dyn EventSink,
    ) -> Option<(Vec<u32>, Vec<u32>)> {
        let words = u64::from(counts.0) + u64::from(counts.1);
        let end = u64::from(caps_offset) + 4 * words;
        if end > body.len() as u64 {
            self.finding(
                here,
                start,
                SpiceFinding::LinkCapsOverflow,
                format!(
                    "{} common + {} channel caps words at offset {caps_offset} do not fit in a {}-byte link message",
                    counts.0,
                    counts.1,
                    body.len()
                ),
                out,
            );
            return None;
        }
        wire::caps(body, caps_offset, counts.0, counts.1)
            .ok()
            .map(|(_, caps)| caps)
    }

    fn link_mess(&mut self, here: Here, start: u64, body: &[u8], out: &mut dyn EventSink) {
        // The framer holds at least the fixed part (the header's size was
        // checked against it).
        let Ok((_, m)) = wire::link_mess(body) else {
            self.halves[here.dir.index()].state = State::Lost;
            return;
        };
        self.channel_type = Some(m.channel_type);
        self.channel_id = Some(m.channel_id);
        if m.channel_type != MAIN {
            self.session_id = Some(m.connection_id);
        }
        let caps = self.caps(
            here,
            start,
            body,
            (m.num_common_caps, m.num_channel_caps),
            m.caps_offset,
            out,
        );
        let (common, channel) = caps.clone().unwrap_or_default();
        self.client_common_caps = Some(common.first().copied().unwrap_or(0));
        let mut detail: Vec<(Cow<'static, str>, Value)> = vec![
            ("connection_id".into(), json!(m.connection_id)),
            ("channel_type".into(), json!(m.channel_type)),
            ("channel_id".into(), json!(m.channel_id)),
            ("common_caps".into(), json!(common)),
            ("channel_caps".into(), json!(channel)),
        ];
        if channel_name(m.channel_type).is_none() {
            detail.push(("unknown_channel".into(), json!(true)));
        }
        self.message(
            here,
            Cow::Borrowed("SPICE_LINK_MESS"),
            (LINK_HEADER_LEN + body.len()) as u64,
            detail,
            out,
        );
        self.halves[here.dir.index()].state = if caps.is_some() {
            State::AuthChoice
        } else {
            State::Lost
        };
    }

    fn link_reply(&mut self, here: Here, start: u64, body: &[u8], out: &mut dyn EventSink) {
        let len = (LINK_HEADER_LEN + body.len()) as u64;
        let reply = wire::link_reply(body).ok().map(|(_, r)| r);
        let error = wire::word(body).map_or(0, |(_, e)| e);
        let Some(r) = reply.filter(|_| error == 0) else {
            self.message(
                here,
                Cow::Borrowed("SPICE_LINK_REPLY"),
                len,
                vec![
                    ("error".into(), json!(error)),
                    ("name".into(), json!(link_err_name(error))),
                ],
                out,
            );
            if error != 0 {
                self.link_result = Some(error);
                self.link_failed(here, error, out);
            } else {
                self.finding(
                    here,
                    start,
                    SpiceFinding::LinkReplyShort,
                    format!(
                        "successful link reply of {} bytes, shorter than {}",
                        body.len(),
                        wire::LINK_REPLY_LEN
                    ),
                    out,
                );
                self.halves[here.dir.index()].state = State::Lost;
            }
            return;
        };
        let caps = self.caps(
            here,
            start,
            body,
            (r.num_common_caps, r.num_channel_caps),
            r.caps_offset,
            out,
        );
        let (common, channel) = caps.clone().unwrap_or_default();
        self.server_common_caps = Some(common.first().copied().unwrap_or(0));
        self.message(
            here,
            Cow::Borrowed("SPICE_LINK_REPLY"),
            len,
            vec![
                ("error".into(), json!(0)),
                ("name".into(), json!("OK")),
                ("pub_key_len".into(), json!(wire::PUB_KEY_LEN)),
                ("common_caps".into(), json!(common)),
                ("channel_caps".into(), json!(channel)),
            ],
            out,
        );
        self.halves[here.dir.index()].state = if caps.is_some() {
            State::LinkResult
        } else {
            State::Lost
        };
    }

    fn data_header(&mut self, here: Here, start: u64, unit: &[u8], out: &mut dyn EventSink) {
        let i = here.dir.index();
        let parsed = if self.halves[i].mini {
            wire::mini_header(unit)
        } else {
            wire::full_header(unit)
        };
        // Whole units only (see `need`); a short one reads as zeros.
        let h = parsed.map_or_else(|_| wire::DataHeader::default(), |(_, h)| h);
        if let Some(serial) = h.serial {
            if let Some(expected) = self.halves[i].next_serial
                && serial != expected
            {
                self.finding(
                    here,
                    start,
                    SpiceFinding::SerialOutOfOrder,
                    format!("message serial {serial}, expected {expected}"),
                    out,
                );
            }
            self.halves[i].next_serial = Some(serial.wrapping_add(1));
        }
        let limit = match here.dir {
            Direction::ClientToServer => self.limits.spice_client_body,
            Direction::ServerToClient => self.limits.spice_server_body,
        };
        if h.size > limit {
            self.finding(
                here,
                start,
                SpiceFinding::MessageTooLarge,
                format!(
                    "message type {} claims {} body bytes, over the {limit}-byte limit; the rest of this direction is not decoded",
                    h.ty, h.size
                ),
                out,
            );
            self.halves[i].state = State::Lost;
            return;
        }
        let prefix = h.size.min(detail_prefix(self.channel_type, here.dir, h.ty));
        let header_len = unit.len() as u8;
        if h.size == 0 {
            self.halves[i].state = State::Body {
                ty: h.ty,
                size: 0,
                header_len,
                prefix: 0,
                skip: 0,
                prefix_done: true,
            };
            self.complete_message(here, &[], out);
            return;
        }
        self.halves[i].state = State::Body {
            ty: h.ty,
            size: h.size,
            header_len,
            prefix,
            skip: u64::from(h.size - prefix),
            prefix_done: prefix == 0,
        };
    }

    /// A data message's name, reporting a type its channel does not define.
    fn message_name(
        &mut self,
        here: Here,
        start: u64,
        ty: u16,
        out: &mut dyn EventSink,
    ) -> Cow<'static, str> {
        match message_name(self.channel_type, here.dir, ty) {
            Some(n) => Cow::Borrowed(n),
            None => {
                let channel = self.channel_type.and_then(channel_name);
                if let Some(channel) = channel {
                    match here.dir {
                        Direction::ClientToServer => self.finding(
                            here,
                            start,
                            SpiceFinding::UnknownClientMessage,
                            format!("client message type {ty} is not defined on the {channel} channel; the server disconnects the channel for it"),
                            out,
                        ),
                        Direction::ServerToClient => self.finding(
                            here,
                            start,
                            SpiceFinding::UnknownServerMessage,
                            format!("server message type {ty} is not defined on the {channel} channel"),
                            out,
                        ),
                    }
                }
                Cow::Owned(match here.dir {
                    Direction::ClientToServer => format!("SPICE_MSGC_UNKNOWN_{ty}"),
                    Direction::ServerToClient => format!("SPICE_MSG_UNKNOWN_{ty}"),
                })
            }
        }
    }

    /// A data message is complete; `prefix` is its leading body bytes.
    fn complete_message(&mut self, here: Here, prefix: &[u8], out: &mut dyn EventSink) {
        let i = here.dir.index();
        let State::Body {
            ty,
            size,
            header_len,
            ..
        } = self.halves[i].state
        else {
            return;
        };
        let start = self.halves[i].unit_start;
        self.halves[i].state = State::Header;
        let len = u64::from(header_len) + u64::from(size);
        let name = self.message_name(here, start, ty, out);
        let server = here.dir == Direction::ServerToClient;
        let mut body = Body::default();
        let msg = Msg {
            here,
            start,
            size,
            name: &name,
            prefix,
        };
        if server {
            self.server_messages += 1;
            if let Some(ack) = &mut self.ack {
                ack.received += 1;
            }
        }
        match (server, ty) {
            (true, MSG_SET_ACK) => self.set_ack_body(&msg, &mut body),
            (true, MSG_PING) => self.ping_body(&msg, &mut body),
            (true, MSG_NOTIFY) => self.notify_body(&msg, &mut body),
            (true, MSG_DISCONNECTING) | (false, MSGC_DISCONNECTING) => {
                self.disconnecting_body(&msg, &mut body)
            }
            (true, MSG_WAIT_FOR_CHANNELS) => self.wait_for_channels_body(&msg, &mut body),
            (true, MSG_MIGRATE) => self.migrate_body(&msg, &mut body),
            (true, MSG_MAIN_INIT) if self.channel_type == Some(MAIN) => {
                self.main_init_body(&msg, &mut body)
            }
            (true, MSG_MAIN_CHANNELS_LIST) if self.channel_type == Some(MAIN) => {
                self.channels_list_body(&msg, &mut body)
            }
            (false, MSGC_ACK_SYNC) => self.ack_sync_body(&msg, &mut body, out),
            (false, MSGC_ACK) => self.check_ack(here, start, out),
            (false, MSGC_PONG) => self.pong_body(&msg, &mut body, out),
            _ => {}
        }
        let Body {
            detail,
            follow,
            too_short,
        } = body;
        if let Some(need) = too_short {
            self.finding(
                here,
                start,
                SpiceFinding::MessageTooShort,
                format!("{name} has a {size}-byte body, shorter than its {need}-byte fixed part"),
                out,
            );
        }
        if server {
            self.check_ack_missing(here, start, out);
        }
        self.message(here, name, len, detail, out);
        if let Some(kind) = follow {
            self.emit(here, kind, out);
        }
    }

    fn set_ack_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg { prefix, .. } = *m;
        match wire::set_ack(prefix) {
            Err(_) => b.too_short = Some(wire::SET_ACK_LEN),
            Ok((_, wire::SetAck { generation, window })) => {
                b.detail.push(("generation".into(), json!(generation)));
                b.detail.push(("window".into(), json!(window)));
                self.ack = Some(AckWindow {
                    generation,
                    window,
                    received: 1,
                    acks: 0,
                    synced: false,
                    reported_missing: false,
                });
            }
        }
    }

    fn ping_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg {
            here, size, prefix, ..
        } = *m;
        match wire::ping(prefix) {
            Err(_) => b.too_short = Some(wire::PING_LEN),
            Ok((_, wire::Ping { id, timestamp })) => {
                let payload = u64::from(size) - 12;
                b.detail.push(("id".into(), json!(id)));
                b.detail.push(("timestamp".into(), json!(timestamp)));
                b.detail.push(("payload_size".into(), json!(payload)));
                if self.channel_type == Some(MAIN) {
                    self.main_pings_seen += 1;
                    // The main channel's first three pings are the
                    // bandwidth test (ids 1, 2, 3), µs timestamps.
                    if !self.mid_stream && self.main_pings_seen <= 3 && id == self.main_pings_seen {
                        b.detail.push(("purpose".into(), json!("net_test")));
                    }
                }
                if self.pings.len() == MAX_OUTSTANDING_PINGS {
                    self.pings.pop_front();
                }
                self.pings.push_back(OutstandingPing {
                    id,
                    at: here.at,
                    // Messages before this PING, the SET_ACK included.
                    received: self.ack.as_ref().map_or(0, |a| a.received - 1),
                });
                b.follow = Some(EventKind::Ping {
                    protocol: "spice",
                    id: Some(u64::from(id)),
                    payload_len: payload,
                });
            }
        }
    }

    fn notify_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg { prefix, .. } = *m;
        match wire::notify(prefix) {
            Err(_) => b.too_short = Some(wire::NOTIFY_LEN),
            Ok((_, n)) => {
                let text = n.text.strip_suffix(&[0]).unwrap_or(n.text);
                b.detail.push(("timestamp".into(), json!(n.timestamp)));
                b.detail.push(("severity".into(), json!(n.severity)));
                b.detail.push(("visibility".into(), json!(n.visibility)));
                b.detail.push(("what".into(), json!(n.what)));
                b.detail
                    .push(("message".into(), json!(String::from_utf8_lossy(text))));
            }
        }
    }

    fn disconnecting_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg { name, prefix, .. } = *m;
        match wire::disconnecting(prefix) {
            Err(_) => b.too_short = Some(wire::DISCONNECTING_LEN),
            Ok((_, d)) => {
                b.detail.push(("timestamp".into(), json!(d.timestamp)));
                b.detail.push(("reason".into(), json!(d.reason)));
                b.detail
                    .push(("reason_name".into(), json!(link_err_name(d.reason))));
                self.disconnect_reason = Some(link_err_name(d.reason));
            }
        }
        b.follow = Some(EventKind::Close(CloseKind::Protocol { name: name.clone() }));
    }

    fn wait_for_channels_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg { prefix, .. } = *m;
        match wire::wait_for_channels(prefix) {
            Err(_) => b.too_short = Some(wire::WAIT_FOR_CHANNELS_LEN),
            Ok((_, (count, waits))) => {
                let waits: Vec<Value> = waits
                    .iter()
                    .map(|w| {
                        json!({
                            "channel": channel_name(w.channel_type).unwrap_or("unknown"),
                            "channel_type": w.channel_type,
                            "channel_id": w.channel_id,
                            "serial": w.serial,
                        })
                    })
                    .collect();
                b.detail.push(("count".into(), json!(count)));
                b.detail.push(("channels".into(), Value::Array(waits)));
            }
        }
    }

    fn migrate_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg { prefix, .. } = *m;
        match wire::migrate(prefix) {
            Err(_) => b.too_short = Some(wire::MIGRATE_LEN),
            Ok((_, flags)) => {
                b.detail.push(("flags".into(), json!(flags)));
                b.detail.push(("need_flush".into(), json!(flags & 1 != 0)));
                b.detail
                    .push(("need_data_transfer".into(), json!(flags & 2 != 0)));
            }
        }
    }

    fn main_init_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg { prefix, .. } = *m;
        match wire::main_init(prefix) {
            Err(_) => b.too_short = Some(wire::MAIN_INIT_LEN),
            Ok((_, m)) => {
                self.session_id = Some(m.session_id);
                b.detail.push(("session_id".into(), json!(m.session_id)));
                b.detail.push((
                    "display_channels_hint".into(),
                    json!(m.display_channels_hint),
                ));
                b.detail
                    .push(("current_mouse_mode".into(), json!(m.current_mouse_mode)));
                b.detail
                    .push(("agent_connected".into(), json!(m.agent_connected)));
            }
        }
    }

    fn channels_list_body(&mut self, m: &Msg<'_>, b: &mut Body) {
        let Msg { prefix, .. } = *m;
        match wire::channels_list(prefix) {
            Err(_) => b.too_short = Some(wire::CHANNELS_LIST_LEN),
            Ok((_, (n, channels))) => {
                let list: Vec<Value> = channels
                    .iter()
                    .map(|(ty, id)| {
                        json!(format!("{}:{id}", channel_name(*ty).unwrap_or("unknown")))
                    })
                    .collect();
                b.detail.push(("count".into(), json!(n)));
                b.detail.push(("channels".into(), Value::Array(list)));
            }
        }
    }

    fn ack_sync_body(&mut self, m: &Msg<'_>, b: &mut Body, out: &mut dyn EventSink) {
        let Msg {
            here,
            start,
            prefix,
            ..
        } = *m;
        match wire::ack_sync(prefix) {
            Err(_) => b.too_short = Some(wire::ACK_SYNC_LEN),
            Ok((_, generation)) => {
                b.detail.push(("generation".into(), json!(generation)));
                if let Some(ack) = &mut self.ack {
                    let expected = ack.generation;
                    ack.synced = true;
                    if generation != expected {
                        self.finding(
                        here,
                        start,
                        SpiceFinding::AckSyncGeneration,
                        format!("ACK_SYNC generation {generation}, but the last SET_ACK was generation {expected}"),
                        out,
                    );
                    }
                }
            }
        }
    }

    fn pong_body(&mut self, m: &Msg<'_>, b: &mut Body, out: &mut dyn EventSink) {
        let Msg {
            here,
            start,
            size,
            prefix,
            ..
        } = *m;
        match wire::ping(prefix) {
            Err(_) => b.too_short = Some(wire::PING_LEN),
            Ok((_, wire::Ping { id, timestamp })) => {
                b.detail.push(("id".into(), json!(id)));
                b.detail.push(("timestamp".into(), json!(timestamp)));
                let rtt = self.answer_ping(here, start, id, out);
                if let Some(rtt) = rtt {
                    b.detail.push(("rtt_us".into(), json!(rtt.0)));
                }
                b.follow = Some(EventKind::Pong {
                    protocol: "spice",
                    id: Some(u64::from(id)),
                    payload_len: u64::from(size) - 12,
                    rtt,
                });
            }
        }
    }

    /// A PONG must answer an outstanding PING of this channel.
    fn answer_ping(
        &mut self,
        here: Here,
        start: u64,
        id: u32,
        out: &mut dyn EventSink,
    ) -> Option<Micros> {
        let Some(k) = self.pings.iter().position(|p| p.id == id) else {
            // The PING went by undecoded once the other direction was
            // given up (a limit hit, lost framing): nothing to say.
            if matches!(self.halves[1 - here.dir.index()].state, State::Lost) {
                return None;
            }
            // A ring that starts mid-session may have lost the PING.
            let kind = if self.mid_stream {
                SpiceFinding::PongWithoutPingMidStream
            } else {
                SpiceFinding::PongWithoutPing
            };
            self.finding(
                here,
                start,
                kind,
                format!("PONG id {id} answers no outstanding PING on this channel"),
                out,
            );
            return None;
        };
        let ping = self.pings.remove(k)?;
        // The client answers in order, so every server message before the
        // PING has been handled: its ACKs must be out by now.
        if let Some(ack) = &self.ack
            && ack.window > 0
        {
            // spice-gtk counts each message down before handling it, and
            // the SET_ACK itself not at all (its handler resets the count),
            // so its ACKs for everything up to and including the PING are
            // out; ryll's playback counts the SET_ACK too. One message of
            // slack covers both.
            let due = ping.received.saturating_sub(1) / u64::from(ack.window);
            if ack.acks < due && !ack.reported_missing {
                let (acks, window) = (ack.acks, ack.window);
                self.finding(
                    here,
                    start,
                    SpiceFinding::AckMissing,
                    format!("client answered a PING after {} server messages with window {window} but has sent only {acks} ACKs (due: {due})", ping.received),
                    out,
                );
                if let Some(a) = &mut self.ack {
                    a.reported_missing = true;
                }
            }
        }
        Some(here.at.saturating_sub(ping.at))
    }

    fn check_ack(&mut self, here: Here, start: u64, out: &mut dyn EventSink) {
        let Some(ack) = &mut self.ack else {
            if !self.mid_stream {
                self.finding(
                    here,
                    start,
                    SpiceFinding::AckWithoutSetAck,
                    "ACK on a channel that never received SET_ACK".to_string(),
                    out,
                );
            }
            return;
        };
        ack.acks += 1;
        let (acks, window, received) = (ack.acks, u64::from(ack.window), ack.received);
        if acks * window > received {
            self.finding(
                here,
                start,
                SpiceFinding::AckTooEarly,
                format!("ACK number {acks} with window {window} after only {received} server messages since SET_ACK"),
                out,
            );
        }
    }

    /// The server stops sending at 2×window unacknowledged messages
    /// (protocol-facts §1.15): more than that on the wire means the server
    /// ignored the window.
    fn check_ack_missing(&mut self, here: Here, start: u64, out: &mut dyn EventSink) {
        let Some(ack) = &mut self.ack else { return };
        let window = u64::from(ack.window);
        if window == 0 || ack.reported_missing {
            return;
        }
        let in_flight = ack.received.saturating_sub(ack.acks * window);
        if in_flight > 2 * window + 1 {
            ack.reported_missing = true;
            self.finding(
                here,
                start,
                SpiceFinding::AckWindowExceeded,
                format!(
                    "{in_flight} server messages without an ACK, over twice the window of {window}"
                ),
                out,
            );
        }
    }
}

/// Leading body bytes the detail of a message needs.
fn detail_prefix(channel: Option<u8>, dir: Direction, ty: u16) -> u32 {
    let server = dir == Direction::ServerToClient;
    match (server, ty) {
        (true, MSG_SET_ACK) => 8,
        (true, MSG_PING) | (false, MSGC_PONG) => 12,
        (true, MSG_NOTIFY) | (true, MSG_WAIT_FOR_CHANNELS) => MAX_DETAIL_PREFIX,
        (true, MSG_DISCONNECTING) | (false, MSGC_DISCONNECTING) => 12,
        (true, MSG_MIGRATE) | (false, MSGC_ACK_SYNC) => 4,
        (true, MSG_MAIN_INIT) if channel == Some(MAIN) => 32,
        (true, MSG_MAIN_CHANNELS_LIST) if channel == Some(MAIN) => MAX_DETAIL_PREFIX,
        _ => 0,
    }
}

impl StreamDecoder for SpiceDecoder {
    fn stack(&self) -> Vec<&'static str> {
        vec!["tcp", "spice"]
    }

    fn data(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) {
        self.feed(chunk, out);
    }

    fn gap(
        &mut self,
        at: Micros,
        direction: Direction,
        stream_offset: u64,
        len: u64,
        out: &mut dyn EventSink,
    ) {
        let i = direction.index();
        // A gap inside bytes we were skipping anyway costs nothing.
        if let State::Body {
            skip, prefix_done, ..
        } = &mut self.halves[i].state
            && *prefix_done
            && len < *skip
        {
            *skip -= len;
            return;
        }
        if matches!(self.halves[i].state, State::Lost | State::Unframed) {
            return;
        }
        self.halves[i].state = State::Lost;
        let here = Here {
            at,
            frame: 0,
            dir: direction,
        };
        let mut loc = self.location(here, stream_offset);
        loc.frame = None;
        self.emit(
            here,
            EventKind::Finding(SpiceFinding::LostSync.at(format!("{len} bytes missing from the capture; message boundaries in this direction are lost"),
                loc,
            )),
            out,
        );
    }

    fn end(&mut self, at: Micros, direction: Direction, how: StreamEnd, out: &mut dyn EventSink) {
        let i = direction.index();
        if self.halves[i].ended {
            return;
        }
        self.halves[i].ended = true;
        let inside = match self.halves[i].state {
            State::Body { .. } => true,
            State::Lost | State::Unframed => false,
            _ => !self.halves[i].buf.is_empty(),
        };
        if inside && how != StreamEnd::EndOfCapture {
            let here = Here {
                at,
                frame: 0,
                dir: direction,
            };
            let mut loc = self.location(here, self.halves[i].unit_start);
            loc.frame = None;
            self.emit(
                here,
                EventKind::Finding(
                    SpiceFinding::TruncatedMessage
                        .at("the stream ended inside a message".to_string(), loc),
                ),
                out,
            );
        }
    }

    fn session(&self) -> Option<SessionInfo> {
        Some(SessionInfo {
            session_id: self.session_id.map(u64::from),
            channel: self.channel_type.map(|t| {
                channel_name(t)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("type{t}"))
            }),
            channel_id: self.channel_id,
            link_result: self.link_result.map(|c| link_err_name(c).to_string()),
            disconnecting: self.disconnect_reason.map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests;
