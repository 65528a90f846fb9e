//! The RFB (VNC) decoder: handshake to last rectangle, both directions.
//!
//! Sans-IO and streaming. Each direction is a small state machine that
//! reads one header at a time and skips payloads by count, so memory stays
//! at one header (or one SetEncodings list) whatever the rectangle sizes.
//! What one direction needs from the other (the negotiated version, the
//! chosen security type, the client's pixel format) lives in [`Session`].
//! When a direction cannot go on before the other has said something (the
//! server's reply to a security choice not yet seen), it is *blocked*: its
//! bytes wait, bounded, and are decoded as soon as the other side has
//! spoken. Events are therefore the same for any chunking of the bytes.
//!
//! Facts: `shared/protocol-facts.md` §2 and rfbproto `rfbproto.rst`.

pub mod codes;
pub mod findings;
pub mod pixel;
pub mod rect;
pub mod wire;

use crate::decode::{Chunk, EventSink, StreamContext, StreamDecoder, StreamEnd};
use crate::timeline::kinds::FindingKind;
use crate::timeline::{ConnectionId, Direction, Event, EventKind, Location, Micros};
use codes::{enc, encoding_name, security_type_name};
use findings::RfbFinding;
use pixel::PixelFormat;
use rect::{Framer, Progress};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Longest text (desktop name, failure reason) kept in an event; the rest
/// is skipped.
pub const MAX_TEXT: usize = 1024;
/// Largest header a step may ask for: SetEncodings with 65 535 entries.
const MAX_NEED: usize = 4 + 4 * 65_535;
/// Bytes a blocked direction may hold while the other side is silent.
const MAX_BLOCKED: usize = 64 * 1024;
/// SetEncodings entries shown in an event.
const MAX_SHOWN_ENCODINGS: usize = 64;

/// Text for an event: UTF-8 as is; anything else (control bytes, invalid
/// UTF-8) escaped byte by byte as `\xNN`, the way Zeek prints it.
pub fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => {
            let mut s = String::with_capacity(b.len());
            for &c in b {
                if (0x20..0x7f).contains(&c) {
                    s.push(c as char);
                } else {
                    s.push_str(&format!("\\x{c:02x}"));
                }
            }
            s
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

/// Handshake rules as the client's version selects them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rules {
    V3_3,
    V3_7,
    V3_8,
}

fn rules_for(major: u16, minor: u16) -> Rules {
    // 3.5 reads as 3.3 (rfbproto); Apple's 3.889 and 4.x/5.x follow 3.8.
    match (major, minor) {
        (3, 0..=6) => Rules::V3_3,
        (3, 7) => Rules::V3_7,
        (0..=2, _) => Rules::V3_3,
        _ => Rules::V3_8,
    }
}

/// What both directions need to know.
#[derive(Debug, Default)]
struct Session {
    server_version: Option<(u16, u16)>,
    client_version: Option<(u16, u16)>,
    /// Types the server offered (3.7+), once seen.
    offered: Option<Vec<u8>>,
    /// The security type in force: server's pick (3.3) or client's (3.7+).
    security: Option<u32>,
    ard_key_len: Option<u16>,
    tight_tunnels: Option<u32>,
    tight_auths: Option<u32>,
    tight_auth: Option<u32>,
    vencrypt_offered: bool,
    vencrypt_subtype: Option<u32>,
    /// The server refused (security failure): no more protocol.
    refused: bool,
    /// Pixel format of FramebufferUpdate pixels: ServerInit's, then the
    /// client's SetPixelFormat.
    pixel_format: Option<PixelFormat>,
    /// The client's last SetEncodings.
    encodings: Vec<i32>,
    /// Framebuffer size from ServerInit and resize rectangles; bounds the
    /// rectangles a resynchronisation will believe.
    framebuffer: (u16, u16),
    /// The server confirmed ExtendedMouseButtons with a pseudo-rectangle.
    ext_mouse_confirmed: bool,
    /// The rest of the connection is encrypted or otherwise unknown.
    opaque: bool,
}

impl Session {
    fn rules(&self) -> Option<Rules> {
        self.client_version.map(|(a, b)| rules_for(a, b))
    }
    fn client_allows(&self, encoding: i32) -> bool {
        self.encodings.contains(&encoding)
    }
    /// Apple's 3.889 servers send no reason after a failed SecurityResult
    /// (seen in Zeek's vncmac.pcap; tshark calls that message malformed).
    fn failure_has_reason(&self) -> bool {
        self.rules() == Some(Rules::V3_8) && self.server_version != Some((3, 889))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerPhase {
    Version,
    Security,
    AwaitChoice,
    VncChallenge,
    ArdParams,
    TightTunnels,
    TightAwaitTunnel,
    TightAuths,
    TightAwaitAuth,
    VeNCryptVersion,
    VeNCryptAck,
    VeNCryptSubtypes,
    VeNCryptAwaitSubtype,
    SecurityResult,
    ServerInit,
    TightInitCaps,
    Messages,
    FramebufferUpdate,
    /// VeNCrypt's TLS: every byte goes to the tunnel.
    Tunnel,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientPhase {
    Version,
    SecurityChoice,
    VncResponse,
    ArdResponse,
    TightTunnel,
    TightAuth,
    VeNCryptVersion,
    VeNCryptSubtype,
    VeNCryptPlain,
    ClientInit,
    Messages,
    /// VeNCrypt's TLS: every byte goes to the tunnel (once the server
    /// accepted the subtype).
    Tunnel,
    Closed,
}

/// The FramebufferUpdate being framed.
#[derive(Debug)]
struct Update {
    start: u64,
    announced: u16,
    left: u32,
    rects: u32,
    encodings: BTreeMap<i32, u32>,
    notes: Vec<(&'static str, Value)>,
    /// The format in force when the update began: a SetPixelFormat seen
    /// meanwhile applies to later updates only.
    pixel_format: Option<PixelFormat>,
    rect: Framer,
}

/// Per-direction stream state.
#[derive(Debug, Default)]
struct Flow {
    /// Carry-over: the start of a header not yet complete, or bytes of a
    /// blocked direction.
    buf: Vec<u8>,
    /// Payload bytes still to skip.
    skip: u64,
    /// Stream offset of the next byte to decode (buf[0] when buf is not
    /// empty).
    offset: u64,
    blocked: bool,
    stopped: bool,
    /// After a gap: waiting for a segment that starts with a plausible
    /// message.
    resync: bool,
    ended: bool,
    at: Micros,
    frame: u64,
}

impl Flow {
    /// Skips payload bytes the framer said follow, held ones first; false
    /// when there were none at hand.
    fn skip_payload(&mut self, input: &mut &[u8]) -> bool {
        let from_buf = !self.buf.is_empty();
        let avail = if from_buf {
            self.buf.len()
        } else {
            input.len()
        };
        let n = self.skip.min(avail as u64) as usize;
        if n == 0 {
            return false;
        }
        if from_buf {
            self.buf.drain(..n);
        } else {
            *input = &input[n..];
        }
        self.skip -= n as u64;
        self.offset += n as u64;
        true
    }

    /// Holds bytes towards a step that needs `n`: the carry-over grows
    /// towards `n`, or takes all the input when nothing was held. False
    /// when the input is spent and the step must wait.
    fn hold(&mut self, n: usize, from_buf: bool, input: &mut &[u8]) -> bool {
        if !from_buf {
            self.buf.extend_from_slice(input);
            return false;
        }
        let take = (n - self.buf.len()).min(input.len());
        if take == 0 {
            return false;
        }
        self.buf.extend_from_slice(&input[..take]);
        *input = &input[take..];
        true
    }
}

enum Step {
    /// Read this many bytes (0: the state moved on without input).
    Used(usize),
    Need(usize),
    /// Waits for the other direction.
    Blocked,
    /// This direction can no longer be framed.
    Stop,
}

pub struct RfbDecoder {
    connection: ConnectionId,
    ctx: StreamContext,
    stack: &'static [&'static str],
    /// VeNCrypt's TLS subtypes: the rest of the connection is TLS whose
    /// plaintext carries on the RFB handshake (`tcp/rfb/vencrypt-tls/rfb`).
    tunnel: Option<Box<crate::decode::tls::TlsDecoder>>,
    session: Session,
    server: ServerPhase,
    client: ClientPhase,
    update: Option<Update>,
    flows: [Flow; 2],
}

macro_rules! need {
    ($b:expr, $n:expr) => {
        if $b.len() < $n {
            return Step::Need($n);
        }
    };
}

/// Runs a wire parser on the bytes at hand: its value and how many bytes
/// it read, or returns `Step::Need` with how many the message takes in all
/// (`base`: bytes before `b` that the message already holds).
macro_rules! read {
    ($b:expr, $parse:expr) => {
        read!($b, $parse, 0)
    };
    ($b:expr, $parse:expr, $base:expr) => {{
        let b: &[u8] = $b;
        match $parse(b) {
            Ok((rest, v)) => (v, b.len() - rest.len()),
            Err(e) => return Step::Need($base + wire::needed(b.len(), &e)),
        }
    }};
}

impl RfbDecoder {
    /// RFB straight on TCP.
    pub fn new(ctx: &StreamContext) -> RfbDecoder {
        RfbDecoder::with_stack(ctx, &["tcp", "rfb"])
    }

    /// RFB carried in WebSocket binary messages: the WebSocket decoder feeds
    /// the inner byte stream (inner stream offsets) to this decoder.
    pub fn over_websocket(ctx: &StreamContext) -> RfbDecoder {
        RfbDecoder::with_stack(ctx, &["tcp", "ws", "rfb"])
    }

    fn with_stack(ctx: &StreamContext, stack: &'static [&'static str]) -> RfbDecoder {
        RfbDecoder {
            connection: ctx.connection,
            ctx: ctx.clone(),
            stack,
            tunnel: None,
            session: Session::default(),
            server: ServerPhase::Version,
            client: ClientPhase::Version,
            update: None,
            flows: [Flow::default(), Flow::default()],
        }
    }

    /// The RFB stream inside VeNCrypt's TLS, picking up where the subtype
    /// leaves it: SecurityResult for TLSNone/X509None, the VNC challenge
    /// for TLSVnc/X509Vnc, the plain credentials for TLSPlain/X509Plain.
    fn inside_vencrypt(&self, subtype: u32) -> RfbDecoder {
        let mut inner = RfbDecoder::with_stack(&self.ctx, &["tcp", "rfb"]);
        inner.session.server_version = self.session.server_version;
        inner.session.client_version = self.session.client_version;
        inner.session.offered = self.session.offered.clone();
        inner.session.security = self.session.security;
        inner.session.vencrypt_offered = true;
        inner.session.vencrypt_subtype = Some(subtype);
        (inner.server, inner.client) = match subtype {
            258 | 261 => (ServerPhase::VncChallenge, ClientPhase::VncResponse),
            259 | 262 => (ServerPhase::SecurityResult, ClientPhase::VeNCryptPlain),
            _ => (ServerPhase::SecurityResult, ClientPhase::ClientInit),
        };
        inner
    }

    /// Bytes of VeNCrypt's TLS, whole, to the tunnel.
    fn tunnel_bytes(
        &mut self,
        d: Direction,
        b: &[u8],
        offset: u64,
        out: &mut dyn EventSink,
    ) -> Step {
        let f = &self.flows[d.index()];
        let chunk = Chunk {
            at: f.at,
            frame: f.frame,
            direction: d,
            stream_offset: offset,
            bytes: b,
        };
        match self.tunnel.as_mut() {
            // Nothing to hand on: wait for bytes (Used(0) would spin).
            Some(_) if b.is_empty() => Step::Need(1),
            Some(t) => {
                t.data(chunk, out);
                Step::Used(b.len())
            }
            // The client's ClientHello before the server's accept was read.
            None => Step::Blocked,
        }
    }

    fn in_tunnel(&self, d: Direction) -> bool {
        match d {
            Direction::ServerToClient => self.server == ServerPhase::Tunnel,
            Direction::ClientToServer => self.client == ClientPhase::Tunnel,
        }
    }

    fn flow(&mut self, d: Direction) -> &mut Flow {
        &mut self.flows[d.index()]
    }

    fn location(&self, d: Direction, offset: u64) -> Location {
        let f = &self.flows[d.index()];
        Location {
            frame: (f.frame > 0).then_some(f.frame),
            connection: Some(self.connection),
            direction: Some(d),
            stream_offset: Some(offset),
            ..Location::default()
        }
    }

    fn emit(&self, out: &mut dyn EventSink, d: Direction, kind: EventKind) {
        out.event(Event {
            frame: None,
            at: self.flows[d.index()].at,
            connection: self.connection,
            channel: None,
            direction: Some(d),
            kind,
        });
    }

    fn message(
        &self,
        out: &mut dyn EventSink,
        d: Direction,
        name: &'static str,
        len: u64,
        detail: Vec<(&'static str, Value)>,
    ) {
        self.emit(
            out,
            d,
            EventKind::Message {
                protocol: "rfb",
                name: Cow::Borrowed(name),
                len,
                detail: detail
                    .into_iter()
                    .map(|(k, v)| (Cow::Borrowed(k), v))
                    .collect(),
            },
        );
    }

    fn finding(
        &self,
        out: &mut dyn EventSink,
        d: Direction,
        offset: u64,
        kind: RfbFinding,
        message: String,
    ) {
        let location = self.location(d, offset);
        self.emit(out, d, EventKind::Finding(kind.at(message, location)));
    }

    /// The rest of the connection cannot be read (encryption or an
    /// exchange tether does not follow): say so once, keep only timing.
    fn go_opaque(&mut self, out: &mut dyn EventSink, d: Direction, offset: u64, why: String) {
        if !self.session.opaque {
            self.session.opaque = true;
            self.finding(out, d, offset, RfbFinding::OpaqueAfterSecurity, why);
        }
        for f in &mut self.flows {
            f.stopped = true;
            f.buf = Vec::new();
        }
    }

    fn stop(
        &mut self,
        out: &mut dyn EventSink,
        d: Direction,
        offset: u64,
        kind: RfbFinding,
        message: String,
    ) -> Step {
        self.finding(out, d, offset, kind, message);
        Step::Stop
    }

    /// Feeds `input` (starting at stream offset `offset`) to direction `d`.
    fn feed(&mut self, d: Direction, mut input: &[u8], out: &mut dyn EventSink) {
        let i = d.index();
        loop {
            if self.flows[i].stopped {
                return;
            }
            let f = &mut self.flows[i];
            if f.skip > 0 {
                if !f.skip_payload(&mut input) {
                    return;
                }
                continue;
            }
            let from_buf = !f.buf.is_empty();
            let offset = f.offset;
            let buf = std::mem::take(&mut f.buf);
            let data: &[u8] = if from_buf { &buf } else { input };
            let step = self.step(d, data, offset, out);
            let f = &mut self.flows[i];
            f.buf = buf;
            match step {
                Step::Used(n) => {
                    if from_buf {
                        f.buf.drain(..n);
                    } else {
                        input = &input[n..];
                    }
                    f.offset += n as u64;
                    f.blocked = false;
                    self.wake(d.reverse(), out);
                }
                // Longer than any header RFB defines, or (a framing bug) asking
                // for bytes already held: stop rather than buffer or spin.
                Step::Need(n) if n > MAX_NEED || (from_buf && n <= f.buf.len()) => {
                    let (offset, held) = (f.offset, f.buf.len());
                    self.stop(
                        out,
                        d,
                        offset,
                        RfbFinding::OversizedHeader,
                        format!("a header of {n} bytes was asked for with {held} held; the carry-over limit is {MAX_NEED} bytes"),
                    );
                    self.flows[i].stopped = true;
                    return;
                }
                Step::Need(n) => {
                    if !f.hold(n, from_buf, &mut input) {
                        return;
                    }
                }
                Step::Blocked => {
                    f.blocked = true;
                    if f.buf.len() + input.len() > MAX_BLOCKED {
                        let offset = f.offset;
                        self.stop(out, d, offset, RfbFinding::StalledHandshake, format!(
                            "the {} sent more than {MAX_BLOCKED} bytes before the {} said what they depend on",
                            d.sender(),
                            d.reverse().sender()
                        ));
                        let f = &mut self.flows[i];
                        f.stopped = true;
                        f.buf = Vec::new();
                        return;
                    }
                    f.buf.extend_from_slice(input);
                    return;
                }
                Step::Stop => {
                    let f = &mut self.flows[i];
                    f.stopped = true;
                    f.buf = Vec::new();
                    return;
                }
            }
        }
    }

    /// The other direction may have been waiting for what `d` just decoded.
    fn wake(&mut self, d: Direction, out: &mut dyn EventSink) {
        if self.flows[d.index()].blocked && !self.flows[d.index()].stopped {
            self.flows[d.index()].blocked = false;
            self.feed(d, &[], out);
        }
    }

    fn step(&mut self, d: Direction, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        match d {
            Direction::ServerToClient => self.server_step(b, offset, out),
            Direction::ClientToServer => self.client_step(b, offset, out),
        }
    }

    fn version(
        &mut self,
        d: Direction,
        b: &[u8],
        offset: u64,
        out: &mut dyn EventSink,
    ) -> Result<(u16, u16), Step> {
        let Ok((_, raw)) = wire::version(b) else {
            return Err(Step::Need(12));
        };
        match wire::version_number(raw) {
            Some(v) => {
                self.message(
                    out,
                    d,
                    "ProtocolVersion",
                    12,
                    vec![("version", json!(format!("{:03}.{:03}", v.0, v.1)))],
                );
                Ok(v)
            }
            None => Err(self.stop(
                out,
                d,
                offset,
                RfbFinding::BadVersion,
                format!("ProtocolVersion expected, got {:?}", text(raw)),
            )),
        }
    }

    fn server_after_security(
        &mut self,
        t: u32,
        offset: u64,
        out: &mut dyn EventSink,
    ) -> ServerPhase {
        match t {
            1 => self.after_none(),
            2 => ServerPhase::VncChallenge,
            16 => ServerPhase::TightTunnels,
            19 => ServerPhase::VeNCryptVersion,
            30 => ServerPhase::ArdParams,
            _ => {
                self.go_opaque(out, Direction::ServerToClient, offset, format!(
                    "security type {t} ({}) is not followed by tether; the rest of the connection keeps its timing only",
                    security_type_name(t)
                ));
                ServerPhase::Closed
            }
        }
    }

    /// After security type None: only 3.8 sends a SecurityResult. Every
    /// real authentication ends with one, whatever the version.
    fn after_none(&self) -> ServerPhase {
        if self.session.rules() == Some(Rules::V3_8) {
            ServerPhase::SecurityResult
        } else {
            ServerPhase::ServerInit
        }
    }

    fn server_step(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        match self.server {
            ServerPhase::Version => self.server_version(b, offset, out),
            ServerPhase::Security => self.server_security(b, offset, out),
            ServerPhase::AwaitChoice => {
                let Some(t) = self.session.security else {
                    return Step::Blocked;
                };
                self.server = self.server_after_security(t, offset, out);
                Step::Used(0)
            }
            ServerPhase::VncChallenge => {
                let (c, used) = read!(b, wire::challenge);
                self.message(
                    out,
                    S,
                    "VncAuthChallenge",
                    16,
                    vec![("challenge", json!(hex(c)))],
                );
                self.server = ServerPhase::SecurityResult;
                Step::Used(used)
            }
            ServerPhase::ArdParams => {
                let ((generator, key_len), used) = read!(b, wire::ard_params);
                self.session.ard_key_len = Some(key_len);
                let len = 4 + 2 * key_len as u64;
                let detail = vec![("generator", json!(generator)), ("key_len", json!(key_len))];
                self.message(out, S, "ArdChallenge", len, detail);
                self.flow(S).skip = 2 * key_len as u64;
                self.server = ServerPhase::SecurityResult;
                Step::Used(used)
            }
            ServerPhase::TightTunnels | ServerPhase::TightAwaitTunnel => {
                self.server_tight_tunnels(b, out)
            }
            ServerPhase::TightAuths | ServerPhase::TightAwaitAuth => {
                self.server_tight_auths(b, offset, out)
            }
            ServerPhase::VeNCryptVersion
            | ServerPhase::VeNCryptAck
            | ServerPhase::VeNCryptSubtypes => self.server_vencrypt(b, out),
            ServerPhase::VeNCryptAwaitSubtype => self.server_vencrypt_subtype(b, offset, out),
            ServerPhase::Tunnel => self.tunnel_bytes(S, b, offset, out),
            ServerPhase::SecurityResult => self.server_security_result(b, out),
            ServerPhase::ServerInit => self.server_init(b, offset, out),
            ServerPhase::TightInitCaps => {
                let ((server, client, encodings), used) = read!(b, wire::tight_init_caps);
                let n = u64::from(server) + u64::from(client) + u64::from(encodings);
                self.flow(S).skip = 16 * n;
                self.server = ServerPhase::Messages;
                Step::Used(used)
            }
            ServerPhase::Messages => self.server_message(b, offset, out),
            ServerPhase::FramebufferUpdate => self.update_step(b, offset, out),
            ServerPhase::Closed => {
                need!(b, 1);
                self.stop(
                    out,
                    S,
                    offset,
                    RfbFinding::DataAfterClose,
                    "the server kept sending after refusing the connection".into(),
                )
            }
        }
    }

    fn server_version(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        let v = match self.version(S, b, offset, out) {
            Ok(v) => v,
            Err(s) => return s,
        };
        self.session.server_version = Some(v);
        if v == (0, 0) {
            self.go_opaque(
                out,
                S,
                offset,
                "RFB 000.000 is an UltraVNC repeater greeting; the relayed session is not followed"
                    .into(),
            );
            return Step::Stop;
        }
        self.server = ServerPhase::Security;
        Step::Used(12)
    }

    /// A refusal: the reason's text is read, the rest of it skipped, and
    /// the server closes.
    fn server_refused(
        &mut self,
        name: &'static str,
        mut detail: Vec<(&'static str, Value)>,
        head: usize,
        reason: wire::Text<'_>,
        out: &mut dyn EventSink,
    ) -> Step {
        const S: Direction = Direction::ServerToClient;
        let used = head + 4 + reason.shown.len();
        self.session.refused = true;
        detail.push(("reason", json!(text(reason.shown))));
        self.message(out, S, name, used as u64 + reason.skipped, detail);
        self.server = ServerPhase::Closed;
        self.flow(S).skip = reason.skipped;
        Step::Used(used)
    }

    fn server_security(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        let Some(rules) = self.session.rules() else {
            return Step::Blocked;
        };
        if rules == Rules::V3_3 {
            let (t, used) = read!(b, wire::word);
            if t == 0 {
                let (reason, _) = read!(&b[used..], wire::text, used);
                return self.server_refused(
                    "SecurityType",
                    vec![("type", json!(0))],
                    used,
                    reason,
                    out,
                );
            }
            self.session.security = Some(t);
            let detail = vec![("type", json!(t)), ("name", json!(security_type_name(t)))];
            self.message(out, S, "SecurityType", 4, detail);
            self.server = self.server_after_security(t, offset, out);
            return Step::Used(used);
        }
        let (types, used) = read!(b, wire::security_types);
        if types.is_empty() {
            let (reason, _) = read!(&b[used..], wire::text, used);
            return self.server_refused(
                "SecurityTypes",
                vec![("types", json!([]))],
                used,
                reason,
                out,
            );
        }
        let names: Vec<_> = types
            .iter()
            .map(|&t| security_type_name(t as u32))
            .collect();
        self.message(
            out,
            S,
            "SecurityTypes",
            used as u64,
            vec![("types", json!(types)), ("names", json!(names))],
        );
        self.session.offered = Some(types.to_vec());
        self.server = ServerPhase::AwaitChoice;
        Step::Used(used)
    }

    fn server_tight_tunnels(&mut self, b: &[u8], out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        if self.server == ServerPhase::TightAwaitTunnel {
            if self.client == ClientPhase::TightTunnel {
                return Step::Blocked;
            }
            self.server = ServerPhase::TightAuths;
            return Step::Used(0);
        }
        let (n, used) = read!(b, wire::word);
        self.session.tight_tunnels = Some(n);
        self.message(
            out,
            S,
            "TightTunnels",
            4 + 16 * n as u64,
            vec![("count", json!(n))],
        );
        self.flow(S).skip = 16 * n as u64;
        self.server = if n > 0 {
            ServerPhase::TightAwaitTunnel
        } else {
            ServerPhase::TightAuths
        };
        Step::Used(used)
    }

    fn server_tight_auths(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        if self.server == ServerPhase::TightAwaitAuth {
            let Some(code) = self.session.tight_auth else {
                return Step::Blocked;
            };
            self.server = match code {
                1 => self.after_none(),
                2 => ServerPhase::VncChallenge,
                _ => {
                    let why = format!("Tight authentication {code} is not followed by tether");
                    self.go_opaque(out, S, offset, why);
                    return Step::Stop;
                }
            };
            return Step::Used(0);
        }
        let (n, used) = read!(b, wire::word);
        self.session.tight_auths = Some(n);
        self.message(
            out,
            S,
            "TightAuthTypes",
            4 + 16 * n as u64,
            vec![("count", json!(n))],
        );
        self.flow(S).skip = 16 * n as u64;
        self.server = if n > 0 {
            ServerPhase::TightAwaitAuth
        } else {
            self.after_none()
        };
        Step::Used(used)
    }

    /// VeNCrypt's version, its ack and the subtypes offered.
    fn server_vencrypt(&mut self, b: &[u8], out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        match self.server {
            ServerPhase::VeNCryptVersion => {
                let ((major, minor), used) = read!(b, wire::vencrypt_version);
                let v = json!(format!("{major}.{minor}"));
                self.message(out, S, "VeNCryptVersion", 2, vec![("version", v)]);
                self.server = ServerPhase::VeNCryptAck;
                Step::Used(used)
            }
            ServerPhase::VeNCryptAck => {
                let (ack, used) = read!(b, wire::byte);
                self.message(out, S, "VeNCryptAck", 1, vec![("ok", json!(ack == 0))]);
                if ack != 0 {
                    self.session.refused = true;
                    self.server = ServerPhase::Closed;
                } else {
                    self.server = ServerPhase::VeNCryptSubtypes;
                }
                Step::Used(used)
            }
            _ => {
                let (types, used) = read!(b, wire::vencrypt_subtypes);
                self.message(
                    out,
                    S,
                    "VeNCryptSubtypes",
                    used as u64,
                    vec![("subtypes", json!(types))],
                );
                self.session.vencrypt_offered = true;
                self.server = ServerPhase::VeNCryptAwaitSubtype;
                Step::Used(used)
            }
        }
    }

    fn server_vencrypt_subtype(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        let Some(t) = self.session.vencrypt_subtype else {
            return Step::Blocked;
        };
        if t == 256 {
            self.server = ServerPhase::SecurityResult;
            return Step::Used(0);
        }
        if !(257..=262).contains(&t) {
            let why = format!(
                "VeNCrypt subtype {t} is an exchange tether does not follow; timing only from here"
            );
            self.go_opaque(out, S, offset, why);
            return Step::Stop;
        }
        // The server accepts the TLS subtype with one byte (1), and TLS
        // starts (VeNCrypt; TigerVNC's SSecurityVeNCrypt).
        let (ack, used) = read!(b, wire::byte);
        let ok = ack == 1;
        self.message(out, S, "VeNCryptSubtypeAck", 1, vec![("ok", json!(ok))]);
        if !ok {
            self.session.refused = true;
            self.server = ServerPhase::Closed;
            self.client = ClientPhase::Closed;
            return Step::Used(used);
        }
        let inner = self.inside_vencrypt(t);
        self.tunnel = Some(Box::new(crate::decode::tls::TlsDecoder::wrapping(
            &self.ctx,
            Box::new(inner),
        )));
        self.server = ServerPhase::Tunnel;
        Step::Used(used)
    }

    fn server_security_result(&mut self, b: &[u8], out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        let (result, used) = read!(b, wire::word);
        if result == 0 {
            let detail = vec![("result", json!(0)), ("ok", json!(true))];
            self.message(out, S, "SecurityResult", 4, detail);
            self.server = ServerPhase::ServerInit;
            return Step::Used(used);
        }
        let detail = vec![("result", json!(result)), ("ok", json!(false))];
        if self.session.failure_has_reason() {
            let (reason, _) = read!(&b[used..], wire::text, used);
            return self.server_refused("SecurityResult", detail, used, reason, out);
        }
        self.session.refused = true;
        self.server = ServerPhase::Closed;
        self.message(out, S, "SecurityResult", 4, detail);
        Step::Used(used)
    }

    fn server_init(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        let (init, used) = read!(b, wire::server_init);
        let pf = init.pixel_format;
        self.message(
            out,
            S,
            "ServerInit",
            used as u64 + init.name.skipped,
            vec![
                ("width", json!(init.width)),
                ("height", json!(init.height)),
                ("pixel_format", pf.to_json()),
                ("name", json!(text(init.name.shown))),
            ],
        );
        self.set_pixel_format(pf, S, offset + 4, out);
        self.session.framebuffer = (init.width, init.height);
        self.flow(S).skip = init.name.skipped;
        self.server = if self.session.security == Some(16) {
            ServerPhase::TightInitCaps
        } else {
            ServerPhase::Messages
        };
        Step::Used(used)
    }

    fn set_pixel_format(
        &mut self,
        pf: PixelFormat,
        d: Direction,
        offset: u64,
        out: &mut dyn EventSink,
    ) {
        if pf.bytes_per_pixel().is_none() {
            self.finding(out, d, offset, RfbFinding::BadPixelFormat, format!(
                "bits-per-pixel {} is not 8, 16 or 32; rectangles carrying pixels cannot be framed",
                pf.bits_per_pixel
            ));
        }
        self.session.pixel_format = Some(pf);
    }

    fn server_message(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        let (t, _) = read!(b, wire::message_type);
        let ty = ("type", json!(t));
        match t {
            0 => {
                let (n, used) = read!(b, wire::framebuffer_update);
                self.update = Some(Update {
                    start: offset,
                    announced: n,
                    left: n as u32,
                    rects: 0,
                    encodings: BTreeMap::new(),
                    notes: Vec::new(),
                    pixel_format: self.session.pixel_format,
                    rect: Framer::default(),
                });
                self.server = ServerPhase::FramebufferUpdate;
                Step::Used(used)
            }
            1 => {
                let ((first, n), used) = read!(b, wire::set_colour_map_entries);
                let n = u64::from(n);
                let detail = vec![ty, ("first", json!(first)), ("colours", json!(n))];
                self.message(out, S, "SetColourMapEntries", 6 + 6 * n, detail);
                self.flow(S).skip = 6 * n;
                Step::Used(used)
            }
            2 => {
                self.message(out, S, "Bell", 1, vec![ty]);
                Step::Used(1)
            }
            3 => {
                let (raw, used) = read!(b, wire::cut_text);
                let len = self.cut_text_len(raw);
                self.message(out, S, "ServerCutText", 8 + len, vec![ty, ("text_len", json!(len))]);
                self.flow(S).skip = len;
                Step::Used(used)
            }
            150 => {
                self.message(out, S, "EndOfContinuousUpdates", 1, vec![ty]);
                Step::Used(1)
            }
            248 => self.fence(S, "ServerFence", b, offset, out),
            250 => self.xvp(S, b, out),
            253 => self.gii(S, b, out),
            255 => self.qemu_server_message(b, offset, out),
            _ => self.stop(out, S, offset, RfbFinding::UnknownMessageType, format!("server message type {t} is not defined; the rest of this direction is only counted")),
        }
    }

    fn xvp(&mut self, d: Direction, b: &[u8], out: &mut dyn EventSink) -> Step {
        let ((version, code), used) = read!(b, wire::xvp);
        let detail = vec![
            ("type", json!(250)),
            ("version", json!(version)),
            ("code", json!(code)),
        ];
        self.message(out, d, "xvp", 4, detail);
        Step::Used(used)
    }

    fn qemu_server_message(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        let ty = ("type", json!(255));
        let ((sub, op), used) = read!(b, wire::qemu_server);
        match (sub, op) {
            (1, 0 | 1) => {
                let op = json!(if op == 0 { "end" } else { "begin" });
                self.message(out, S, "QemuAudio", 4, vec![ty, ("op", op)]);
                Step::Used(used)
            }
            (1, 2) => {
                let (len, used) = read!(b, wire::qemu_audio_data);
                let len = u64::from(len);
                let detail = vec![ty, ("op", json!("data")), ("data_len", json!(len))];
                self.message(out, S, "QemuAudio", 8 + len, detail);
                self.flow(S).skip = len;
                Step::Used(used)
            }
            _ => self.stop(out, S, offset, RfbFinding::UnknownMessageType, format!("QEMU server message subtype {sub} operation {op} is not defined; the rest of this direction is only counted")),
        }
    }

    /// Cut text length; negative means Extended Clipboard when the client
    /// asked for it.
    fn cut_text_len(&self, raw: u32) -> u64 {
        let signed = raw as i32;
        if signed < 0 && self.session.client_allows(enc::EXTENDED_CLIPBOARD) {
            signed.unsigned_abs() as u64
        } else {
            raw as u64
        }
    }

    fn fence(
        &mut self,
        d: Direction,
        name: &'static str,
        b: &[u8],
        offset: u64,
        out: &mut dyn EventSink,
    ) -> Step {
        let ((flags, len), used) = read!(b, wire::fence);
        let len = u64::from(len);
        if len > 64 {
            self.finding(
                out,
                d,
                offset,
                RfbFinding::FencePayloadTooLong,
                format!("{name} payload of {len} bytes; at most 64 are allowed"),
            );
        }
        let detail = vec![
            ("type", json!(248)),
            ("flags", json!(flags)),
            ("payload_len", json!(len)),
        ];
        self.message(out, d, name, 9 + len, detail);
        self.flow(d).skip = len;
        Step::Used(used)
    }

    fn gii(&mut self, d: Direction, b: &[u8], out: &mut dyn EventSink) -> Step {
        let ((sub, len), used) = read!(b, wire::gii);
        let len = u64::from(len);
        let detail = vec![
            ("type", json!(253)),
            ("subtype", json!(sub)),
            ("len", json!(len)),
        ];
        self.message(out, d, "gii", 4 + len, detail);
        self.flow(d).skip = len;
        Step::Used(used)
    }

    fn update_step(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const S: Direction = Direction::ServerToClient;
        // The hot path borrows the update in place; only its end and a
        // failure need the whole decoder.
        let Some(u) = self.update.as_mut() else {
            self.server = ServerPhase::Messages;
            return Step::Used(0);
        };
        if u.left == 0 {
            return self.finish_update(offset, out);
        }
        match u.rect.frame(u.pixel_format, b) {
            Progress::Need(n) => Step::Need(n),
            Progress::Fail { kind, message } => {
                self.finding(out, S, offset, kind, message);
                Step::Stop
            }
            Progress::Step {
                used,
                skip,
                done,
                header,
                note,
            } => {
                if let Some(h) = header {
                    u.rects += 1;
                    *u.encodings.entry(h.encoding).or_default() += 1;
                    if h.encoding == enc::EXTENDED_MOUSE_BUTTONS {
                        self.session.ext_mouse_confirmed = true;
                    }
                }
                if let Some(n) = note {
                    if let (Some(h), "resize") = (header, n.0) {
                        self.session.framebuffer = (h.w, h.h);
                    }
                    u.notes.push(n);
                }
                if done {
                    u.left -= 1;
                    if header.is_some_and(|h| h.encoding == enc::LAST_RECT) {
                        u.left = 0;
                    }
                }
                self.flows[S.index()].skip = skip;
                Step::Used(used)
            }
        }
    }

    fn finish_update(&mut self, offset: u64, out: &mut dyn EventSink) -> Step {
        self.server = ServerPhase::Messages;
        let Some(u) = self.update.take() else {
            return Step::Used(0);
        };
        let encodings: BTreeMap<_, _> = u
            .encodings
            .iter()
            .map(|(e, n)| (encoding_name(*e).into_owned(), *n))
            .collect();
        let mut detail = vec![
            ("type", json!(0)),
            ("rects", json!(u.rects)),
            ("encodings", json!(encodings)),
        ];
        if u.announced == 0xffff {
            detail.push(("last_rect", json!(true)));
        }
        detail.extend(u.notes);
        self.message(
            out,
            Direction::ServerToClient,
            "FramebufferUpdate",
            offset - u.start,
            detail,
        );
        Step::Used(0)
    }

    fn client_after_security(
        &mut self,
        t: u32,
        offset: u64,
        out: &mut dyn EventSink,
    ) -> ClientPhase {
        match t {
            1 => ClientPhase::ClientInit,
            2 => ClientPhase::VncResponse,
            16 => ClientPhase::TightTunnel,
            19 => ClientPhase::VeNCryptVersion,
            30 => ClientPhase::ArdResponse,
            _ => {
                self.go_opaque(out, Direction::ClientToServer, offset, format!(
                    "security type {t} ({}) is not followed by tether; the rest of the connection keeps its timing only",
                    security_type_name(t)
                ));
                ClientPhase::Closed
            }
        }
    }

    fn client_step(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const C: Direction = Direction::ClientToServer;
        match self.client {
            ClientPhase::Version => self.client_version(b, offset, out),
            ClientPhase::SecurityChoice => self.client_security_choice(b, offset, out),
            ClientPhase::VncResponse => {
                let (r, used) = read!(b, wire::challenge);
                self.message(
                    out,
                    C,
                    "VncAuthResponse",
                    16,
                    vec![("response", json!(hex(r)))],
                );
                self.client = ClientPhase::ClientInit;
                Step::Used(used)
            }
            ClientPhase::ArdResponse => {
                let Some(key_len) = self.session.ard_key_len else {
                    return Step::Blocked;
                };
                // 128 bytes of encrypted credentials, then the client's key.
                let len = 128 + key_len as usize;
                need!(b, len);
                self.message(out, C, "ArdResponse", len as u64, vec![]);
                self.client = ClientPhase::ClientInit;
                Step::Used(len)
            }
            ClientPhase::TightTunnel | ClientPhase::TightAuth => self.client_tight(b, offset, out),
            ClientPhase::VeNCryptVersion | ClientPhase::VeNCryptSubtype => {
                self.client_vencrypt(b, offset, out)
            }
            ClientPhase::Tunnel => self.tunnel_bytes(C, b, offset, out),
            ClientPhase::VeNCryptPlain => {
                let ((user, pass), used) = read!(b, wire::plain_lengths);
                let len = u64::from(user) + u64::from(pass);
                // Credentials are never put in an event.
                self.message(out, C, "VeNCryptPlainCredentials", 8 + len, vec![]);
                self.flow(C).skip = len;
                self.client = ClientPhase::ClientInit;
                Step::Used(used)
            }
            ClientPhase::ClientInit => {
                let (shared, used) = read!(b, wire::byte);
                self.message(
                    out,
                    C,
                    "ClientInit",
                    1,
                    vec![("shared", json!(shared != 0))],
                );
                self.client = ClientPhase::Messages;
                Step::Used(used)
            }
            ClientPhase::Messages => self.client_message(b, offset, out),
            ClientPhase::Closed => {
                need!(b, 1);
                if self.session.opaque {
                    return Step::Stop;
                }
                self.stop(
                    out,
                    C,
                    offset,
                    RfbFinding::DataAfterClose,
                    "the client kept sending after the server refused the connection".into(),
                )
            }
        }
    }

    fn client_version(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const C: Direction = Direction::ClientToServer;
        let v = match self.version(C, b, offset, out) {
            Ok(v) => v,
            Err(s) => return s,
        };
        if let Some(sv) = self.session.server_version
            && v > sv
            && sv != (3, 889)
        {
            self.finding(
                out,
                C,
                offset,
                RfbFinding::ClientVersionAboveServer,
                format!(
                    "client answered {}.{} to a server offering {}.{}",
                    v.0, v.1, sv.0, sv.1
                ),
            );
        }
        self.session.client_version = Some(v);
        self.client = ClientPhase::SecurityChoice;
        Step::Used(12)
    }

    fn client_security_choice(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const C: Direction = Direction::ClientToServer;
        if self.session.refused {
            self.client = ClientPhase::Closed;
            return Step::Used(0);
        }
        if self.session.rules() == Some(Rules::V3_3) {
            let Some(t) = self.session.security else {
                return Step::Blocked;
            };
            self.client = self.client_after_security(t, offset, out);
            return Step::Used(0);
        }
        let Some(offered) = &self.session.offered else {
            return Step::Blocked;
        };
        let (t, used) = read!(b, wire::byte);
        if !offered.contains(&t) {
            self.finding(
                out,
                C,
                offset,
                RfbFinding::SecurityTypeNotOffered,
                format!("client chose security type {t}, which the server did not offer"),
            );
        }
        self.session.security = Some(t as u32);
        let detail = vec![
            ("type", json!(t)),
            ("name", json!(security_type_name(t as u32))),
        ];
        self.message(out, C, "SecurityTypeSelected", 1, detail);
        self.client = self.client_after_security(t as u32, offset, out);
        Step::Used(used)
    }

    /// Tight's tunnel and authentication choices.
    fn client_tight(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const C: Direction = Direction::ClientToServer;
        if self.client == ClientPhase::TightTunnel {
            let Some(n) = self.session.tight_tunnels else {
                return Step::Blocked;
            };
            if n == 0 {
                self.client = ClientPhase::TightAuth;
                return Step::Used(0);
            }
            let (code, used) = read!(b, wire::word);
            self.message(
                out,
                C,
                "TightTunnelSelected",
                4,
                vec![("code", json!(code))],
            );
            if code != 0 {
                let why = format!("Tight tunnel {code} wraps the rest of the stream");
                self.go_opaque(out, C, offset, why);
                return Step::Stop;
            }
            self.client = ClientPhase::TightAuth;
            return Step::Used(used);
        }
        let Some(n) = self.session.tight_auths else {
            return Step::Blocked;
        };
        if n == 0 {
            self.client = ClientPhase::ClientInit;
            return Step::Used(0);
        }
        let (code, used) = read!(b, wire::word);
        self.message(out, C, "TightAuthSelected", 4, vec![("code", json!(code))]);
        self.session.tight_auth = Some(code);
        self.client = match code {
            1 => ClientPhase::ClientInit,
            2 => ClientPhase::VncResponse,
            _ => ClientPhase::Closed,
        };
        Step::Used(used)
    }

    /// VeNCrypt's version and the subtype chosen.
    fn client_vencrypt(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const C: Direction = Direction::ClientToServer;
        if self.client == ClientPhase::VeNCryptVersion {
            let ((major, minor), used) = read!(b, wire::vencrypt_version);
            let v = json!(format!("{major}.{minor}"));
            self.message(out, C, "VeNCryptVersion", 2, vec![("version", v)]);
            if (major, minor) != (0, 2) {
                let why = format!("VeNCrypt {major}.{minor} is not followed by tether (only 0.2)");
                self.go_opaque(out, C, offset, why);
                return Step::Stop;
            }
            self.client = ClientPhase::VeNCryptSubtype;
            return Step::Used(used);
        }
        if !self.session.vencrypt_offered {
            if self.session.refused {
                self.client = ClientPhase::Closed;
                return Step::Used(0);
            }
            return Step::Blocked;
        }
        let (t, used) = read!(b, wire::word);
        self.message(
            out,
            C,
            "VeNCryptSubtypeSelected",
            4,
            vec![("subtype", json!(t))],
        );
        self.session.vencrypt_subtype = Some(t);
        self.client = match t {
            256 => ClientPhase::VeNCryptPlain,
            257..=262 => ClientPhase::Tunnel,
            _ => ClientPhase::Closed,
        };
        Step::Used(used)
    }

    fn client_message(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const C: Direction = Direction::ClientToServer;
        let (t, _) = read!(b, wire::message_type);
        let ty = ("type", json!(t));
        match t {
            0 => {
                let (pf, used) = read!(b, wire::set_pixel_format);
                self.message(out, C, "SetPixelFormat", 20, vec![ty, ("pixel_format", pf.to_json())]);
                self.set_pixel_format(pf, C, offset + 4, out);
                Step::Used(used)
            }
            2 => {
                let (list, used) = read!(b, wire::set_encodings);
                let shown = &list[..list.len().min(MAX_SHOWN_ENCODINGS)];
                let detail = vec![ty, ("count", json!(list.len())), ("encodings", json!(shown))];
                self.message(out, C, "SetEncodings", used as u64, detail);
                self.session.encodings = list;
                Step::Used(used)
            }
            3 | 150 => {
                let ((flag, area), used) = read!(b, wire::area_request);
                let (name, flag_name) = match t {
                    3 => ("FramebufferUpdateRequest", "incremental"),
                    _ => ("EnableContinuousUpdates", "enable"),
                };
                let detail = vec![ty, (flag_name, json!(flag)), ("rect", json!(area))];
                self.message(out, C, name, 10, detail);
                Step::Used(used)
            }
            4 => {
                let ((down, keysym), used) = read!(b, wire::key_event);
                let detail = vec![ty, ("down", json!(down)), ("keysym", json!(keysym))];
                self.message(out, C, "KeyEvent", 8, detail);
                Step::Used(used)
            }
            5 => {
                need!(b, 6);
                let (buttons, _) = read!(b, wire::pointer_buttons);
                let extended = buttons & 0x80 != 0
                    && self.session.ext_mouse_confirmed
                    && self.session.client_allows(enc::EXTENDED_MOUSE_BUTTONS);
                let ((buttons, x, y), used) = read!(b, |i| wire::pointer_event(i, extended));
                let detail = vec![ty, ("buttons", json!(buttons)), ("x", json!(x)), ("y", json!(y))];
                self.message(out, C, "PointerEvent", used as u64, detail);
                Step::Used(used)
            }
            6 => {
                let (raw, used) = read!(b, wire::cut_text);
                let len = self.cut_text_len(raw);
                self.message(out, C, "ClientCutText", 8 + len, vec![ty, ("text_len", json!(len))]);
                self.flow(C).skip = len;
                Step::Used(used)
            }
            248 => self.fence(C, "ClientFence", b, offset, out),
            250 => self.xvp(C, b, out),
            251 => {
                let ((w, h, n), used) = read!(b, wire::set_desktop_size);
                let n = u64::from(n);
                let detail = vec![ty, ("width", json!(w)), ("height", json!(h)), ("screens", json!(n))];
                self.message(out, C, "SetDesktopSize", 8 + 16 * n, detail);
                self.flow(C).skip = 16 * n;
                Step::Used(used)
            }
            253 => self.gii(C, b, out),
            255 => self.qemu_client_message(b, offset, out),
            _ => self.stop(out, C, offset, RfbFinding::UnknownMessageType, format!("client message type {t} is not defined; the rest of this direction is only counted")),
        }
    }

    fn qemu_client_message(&mut self, b: &[u8], offset: u64, out: &mut dyn EventSink) -> Step {
        const C: Direction = Direction::ClientToServer;
        let ty = ("type", json!(255));
        let (sub, _) = read!(b, wire::qemu_client);
        match sub {
            0 => {
                let ((down, keysym, keycode), used) = read!(b, wire::qemu_extended_key);
                let detail = vec![
                    ty,
                    ("down", json!(down)),
                    ("keysym", json!(keysym)),
                    ("keycode", json!(keycode)),
                ];
                self.message(out, C, "QemuExtendedKeyEvent", 12, detail);
                Step::Used(used)
            }
            1 => {
                let (op, _) = read!(b, wire::qemu_client_audio);
                let len = match op {
                    0 | 1 => 4,
                    2 => 10,
                    _ => return self.stop(out, C, offset, RfbFinding::UnknownMessageType, format!("QEMU audio operation {op} is not defined; the rest of this direction is only counted")),
                };
                need!(b, len);
                self.message(out, C, "QemuAudio", len as u64, vec![ty, ("op", json!(op))]);
                Step::Used(len)
            }
            sub => self.stop(out, C, offset, RfbFinding::UnknownMessageType, format!("QEMU client message subtype {sub} is not defined; the rest of this direction is only counted")),
        }
    }

    /// Whether `b` (a segment after a gap) starts with a message that could
    /// really be one: a known type with fields in range.
    fn plausible_start(&self, d: Direction, b: &[u8]) -> bool {
        use wire::MessageHead as M;
        let (fw, fh) = self.session.framebuffer;
        let in_fb = |[x, y, w, h]: wire::Area| {
            u32::from(x) + u32::from(w) <= u32::from(fw)
                && u32::from(y) + u32::from(h) <= u32::from(fh)
        };
        let parse = match d {
            Direction::ServerToClient => wire::server_message_head,
            Direction::ClientToServer => wire::client_message_head,
        };
        // A head cut short by the segment's end is too little to go on.
        let Ok((_, head)) = parse(b) else {
            return false;
        };
        match head {
            M::FramebufferUpdate {
                padding_zero,
                rects,
                first: r,
            } => {
                let known = !codes::encoding_name(r.encoding).starts_with("encoding ");
                padding_zero
                    && rects > 0
                    && known
                    && (r.encoding < 0 || in_fb([r.x, r.y, r.w, r.h]))
            }
            M::SetColourMapEntries { padding_zero } | M::SetEncodings { padding_zero } => {
                padding_zero
            }
            M::Bell { next } => next.is_none_or(|t| t <= 3),
            M::CutText { padding_zero, len } => {
                padding_zero && (d == Direction::ClientToServer || len < 1 << 24)
            }
            M::SetPixelFormat {
                padding_zero,
                bits_per_pixel,
            } => padding_zero && matches!(bits_per_pixel, 8 | 16 | 32),
            M::FramebufferUpdateRequest { incremental, area } => incremental <= 1 && in_fb(area),
            M::KeyEvent { down, padding_zero } => down <= 1 && padding_zero,
            M::PointerEvent { x, y } => x < fw.max(1) && y < fh.max(1),
            M::Other(_) => false,
        }
    }

    /// True when `d` stands between messages with nothing held back.
    fn at_boundary(&self, d: Direction) -> bool {
        let f = &self.flows[d.index()];
        if f.stopped {
            return true;
        }
        if !f.buf.is_empty() || f.skip > 0 {
            return false;
        }
        d == Direction::ClientToServer || self.server != ServerPhase::FramebufferUpdate
    }
}

impl StreamDecoder for RfbDecoder {
    fn stack(&self) -> Vec<&'static str> {
        let mut s = self.stack.to_vec();
        if let Some(t) = &self.tunnel {
            s.push("vencrypt-tls");
            s.extend(t.inner_stack());
        }
        s
    }

    fn data(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) {
        let d = chunk.direction;
        let f = self.flow(d);
        if f.ended {
            return;
        }
        if f.buf.is_empty() {
            f.offset = chunk.stream_offset;
        }
        f.at = chunk.at;
        f.frame = chunk.frame;
        if f.resync {
            if !self.plausible_start(d, chunk.bytes) {
                return;
            }
            self.flow(d).resync = false;
            self.finding(out, d, chunk.stream_offset, RfbFinding::Resynchronised, format!(
                "decoding of the {} stream resumes here: this segment starts with a plausible message",
                d.sender()
            ));
        }
        self.feed(d, chunk.bytes, out);
    }

    fn gap(
        &mut self,
        at: Micros,
        direction: Direction,
        stream_offset: u64,
        len: u64,
        out: &mut dyn EventSink,
    ) {
        if self.in_tunnel(direction)
            && let Some(t) = self.tunnel.as_mut()
        {
            t.gap(at, direction, stream_offset, len, out);
            return;
        }
        let f = self.flow(direction);
        if f.stopped {
            return;
        }
        f.at = at;
        f.buf = Vec::new();
        f.skip = 0;
        f.blocked = false;
        // RFB has no resynchronisation marker. After the handshake, message
        // starts are recognisable enough to resume at a segment boundary
        // (senders write whole messages); inside the handshake they are not.
        let in_messages = match direction {
            Direction::ServerToClient => matches!(
                self.server,
                ServerPhase::Messages | ServerPhase::FramebufferUpdate
            ),
            Direction::ClientToServer => self.client == ClientPhase::Messages,
        };
        let then = if in_messages {
            "decoding resumes at the first segment that starts with a plausible message"
        } else {
            "the handshake cannot be resumed, so the rest of this direction is only counted"
        };
        self.finding(
            out,
            direction,
            stream_offset,
            RfbFinding::Gap,
            format!(
                "{len} bytes of the {} stream were not captured; {then}",
                direction.sender()
            ),
        );
        let f = self.flow(direction);
        if in_messages {
            f.resync = true;
            if direction == Direction::ServerToClient {
                self.update = None;
                self.server = ServerPhase::Messages;
            }
        } else {
            f.stopped = true;
        }
    }

    fn end(&mut self, at: Micros, direction: Direction, how: StreamEnd, out: &mut dyn EventSink) {
        if let Some(t) = self.tunnel.as_mut() {
            t.end(at, direction, how, out);
        }
        let f = self.flow(direction);
        if f.ended {
            return;
        }
        f.at = at;
        f.ended = true;
        if !self.at_boundary(direction) {
            let f = &self.flows[direction.index()];
            let offset = f.offset;
            let pending = f.buf.len() as u64 + f.skip;
            let what = if f.blocked {
                format!("waiting for the {}", direction.reverse().sender())
            } else {
                "inside a message".to_string()
            };
            self.finding(
                out,
                direction,
                offset,
                RfbFinding::EndedMidMessage,
                format!(
                    "the {} stream ended {what} ({pending} bytes held or still expected)",
                    direction.sender()
                ),
            );
        }
    }
}
