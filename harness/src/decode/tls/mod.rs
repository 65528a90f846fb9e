//! TLS: the record layer and handshake as the wire shows them, and, with
//! the connection's secrets (a key log or the capture's Decryption Secrets
//! Blocks), the plaintext handed to the decoder of what it carries, picked
//! by sniffing as for raw TCP: `tcp/tls/ws/rfb`, `tcp/tls/spice`, ...
//!
//! Offsets: TLS events and findings count ciphertext (the TCP stream);
//! events of the protocol inside count its plaintext stream.
//!
//! Without keys TLS still says a good deal: the handshake (versions, the
//! cipher, SNI, ALPN, the certificate's subject and expiry in TLS 1.2),
//! each record's size and time (liveness), and how each side ended: a
//! close_notify alert before its FIN, or none ("peer closed connection
//! without sending TLS close_notify" is an error clients log).

pub mod crypto;
pub mod findings;
pub mod keylog;
mod liveness;

use crate::decode::ws::inner::{InnerStream, default_factory};
use crate::decode::{Chunk, EventSink, SessionInfo, StreamContext, StreamDecoder, StreamEnd};
use crate::timeline::kinds::FindingKind;
use crate::timeline::{CloseKind, Direction, Event, EventKind, Location, Micros};
use crypto::{OpenError, RecordCipher, Suite, TLS13};
use findings::TlsFinding;
use serde_json::{Value, json};
use std::borrow::Cow;

/// RFC 8446 §5.1: a record's payload is at most 2^14 bytes, plus 256 of
/// TLS 1.3 expansion or 2048 of TLS 1.2's; past that a peer has lost sync.
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Records that fail to decrypt are located one by one up to this many per
/// direction; the rest are counted (a wrong key fails every record).
const REPORTED_FAILURES: u64 = 3;
/// Handshake messages are reassembled up to this size (a long certificate
/// chain is tens of kB); a larger one is counted, not parsed.
const MAX_HANDSHAKE_MESSAGE: usize = 256 * 1024;
/// RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// Not yet known whether this connection can be decrypted.
    Pending,
    /// Decrypting.
    Ready,
    /// Only the wire: no key log, no entry for this connection, a suite
    /// tether does not decrypt, or a key that does not verify.
    None,
}

#[derive(Default)]
struct Side {
    /// The current record, up to its end.
    record: Vec<u8>,
    /// Stream offset of the current record's first byte.
    record_offset: u64,
    /// Stream offset just past the last byte seen.
    end_offset: u64,
    /// Handshake bytes not yet a whole message.
    handshake: Vec<u8>,
    /// Records from this side are protected.
    protected: bool,
    cipher: Option<RecordCipher>,
    /// TLS 1.3: this side's current application traffic secret, once its
    /// Finished has switched it from handshake keys.
    traffic_secret: Option<Vec<u8>>,
    /// The last record before the end, as (type, protected length).
    last_record: Option<(u8, usize)>,
    close_notify: bool,
    /// Protected records that did not open.
    failed: u64,
    /// Decoding stopped (lost sync, a gap): the rest is only counted.
    stopped: bool,
}

/// Marks the offsets of findings from the protocol inside as counting the
/// plaintext, not the TCP stream.
struct Plaintext<'a>(&'a mut dyn EventSink);

impl EventSink for Plaintext<'_> {
    fn event(&mut self, mut event: Event) {
        if let EventKind::Finding(f) = &mut event.kind
            && f.location.stream_offset.is_some()
        {
            f.location.offset_in.get_or_insert("tls_plaintext");
        }
        self.0.event(event);
    }

    fn set_frame(&mut self, frame: Option<u64>) -> Option<u64> {
        self.0.set_frame(frame)
    }
}

pub struct TlsDecoder {
    ctx: StreamContext,
    /// The frame being decoded: the secrets a capture's own blocks give
    /// are known from the frame after the block.
    frame: u64,
    sides: [Side; 2],
    client_random: Option<Vec<u8>>,
    server_random: Option<Vec<u8>>,
    /// The negotiated version (TLS 1.3 from supported_versions).
    version: Option<u16>,
    suite_id: Option<u16>,
    keys: Keys,
    secrets: Option<keylog::Secrets>,
    inner: InnerStream,
    /// Scratch for opening a record in place.
    scratch: Vec<u8>,
    /// Ping rounds read from the sizes of records that stay encrypted.
    ping_shape: liveness::PingShape,
}

fn side_name(dir: Direction) -> &'static str {
    match dir {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    }
}

fn version_name(v: u16) -> Cow<'static, str> {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("{v:#06x}").into(),
    }
}

fn suite_name(id: u16) -> Cow<'static, str> {
    match tls_parser::TlsCipherSuiteID(id).get_ciphersuite() {
        Some(s) => s.name.into(),
        None => format!("{id:#06x}").into(),
    }
}

/// RFC 8446 §6 alert descriptions worth a name in a timeline.
fn alert_name(d: u8) -> Cow<'static, str> {
    match d {
        0 => "close_notify".into(),
        10 => "unexpected_message".into(),
        20 => "bad_record_mac".into(),
        40 => "handshake_failure".into(),
        42 => "bad_certificate".into(),
        45 => "certificate_expired".into(),
        46 => "certificate_unknown".into(),
        48 => "unknown_ca".into(),
        70 => "protocol_version".into(),
        80 => "internal_error".into(),
        90 => "user_canceled".into(),
        109 => "missing_extension".into(),
        112 => "unrecognized_name".into(),
        116 => "certificate_required".into(),
        120 => "no_application_protocol".into(),
        d => format!("alert {d}").into(),
    }
}

fn handshake_name(t: u8) -> Cow<'static, str> {
    match t {
        0 => "HelloRequest".into(),
        1 => "ClientHello".into(),
        2 => "ServerHello".into(),
        4 => "NewSessionTicket".into(),
        5 => "EndOfEarlyData".into(),
        8 => "EncryptedExtensions".into(),
        11 => "Certificate".into(),
        12 => "ServerKeyExchange".into(),
        13 => "CertificateRequest".into(),
        14 => "ServerHelloDone".into(),
        15 => "CertificateVerify".into(),
        16 => "ClientKeyExchange".into(),
        20 => "Finished".into(),
        22 => "CertificateStatus".into(),
        24 => "KeyUpdate".into(),
        t => format!("handshake {t}").into(),
    }
}

impl TlsDecoder {
    pub fn new(ctx: &StreamContext) -> TlsDecoder {
        TlsDecoder {
            ctx: ctx.clone(),
            sides: [Side::default(), Side::default()],
            frame: 0,
            client_random: None,
            server_random: None,
            version: None,
            suite_id: None,
            keys: Keys::Pending,
            secrets: None,
            inner: InnerStream::new(ctx.clone(), default_factory),
            scratch: Vec::new(),
            ping_shape: liveness::PingShape::default(),
        }
    }

    /// TLS whose plaintext is already known to be `inner`'s protocol (no
    /// sniffing): VeNCrypt's RFB.
    pub fn wrapping(ctx: &StreamContext, inner: Box<dyn StreamDecoder>) -> TlsDecoder {
        TlsDecoder {
            inner: InnerStream::with_decoder(ctx.clone(), inner),
            ..TlsDecoder::new(ctx)
        }
    }

    /// The protocols inside, without "tcp".
    pub fn inner_stack(&self) -> Vec<&'static str> {
        self.inner.stack_tail()
    }

    fn emit(&self, out: &mut dyn EventSink, at: Micros, dir: Direction, kind: EventKind) {
        out.event(Event {
            at,
            connection: self.ctx.connection,
            channel: None,
            direction: Some(dir),
            frame: None,
            kind,
        });
    }

    fn message(
        &self,
        out: &mut dyn EventSink,
        at: Micros,
        dir: Direction,
        name: Cow<'static, str>,
        len: usize,
        detail: Vec<(&'static str, Value)>,
    ) {
        self.emit(
            out,
            at,
            dir,
            EventKind::Message {
                protocol: "tls",
                name,
                len: len as u64,
                detail: detail
                    .into_iter()
                    .map(|(k, v)| (Cow::Borrowed(k), v))
                    .collect(),
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        out: &mut dyn EventSink,
        at: Micros,
        dir: Direction,
        offset: Option<u64>,
        kind: TlsFinding,
        message: String,
    ) {
        let location = Location {
            connection: Some(self.ctx.connection),
            direction: Some(dir),
            stream_offset: offset,
            ..Location::default()
        };
        self.emit(out, at, dir, EventKind::Finding(kind.at(message, location)));
    }

    /// Whole records of this chunk, each processed as it completes; a
    /// partial one waits for the next chunk (at most [`MAX_RECORD`] held).
    fn records(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) {
        self.frame = chunk.frame;
        let i = chunk.direction.index();
        let mut bytes = chunk.bytes;
        let mut offset = chunk.stream_offset;
        self.sides[i].end_offset = offset + bytes.len() as u64;
        while !bytes.is_empty() && !self.sides[i].stopped {
            let side = &mut self.sides[i];
            if side.record.is_empty() {
                side.record_offset = offset;
            }
            // Complete the header first, then the payload it announces.
            let want = match record_header(&side.record) {
                Ok((_, (_, _, len))) => 5 + len - side.record.len(),
                Err(_) => 5 - side.record.len(),
            };
            let take = want.min(bytes.len());
            side.record.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            offset += take as u64;
            if side.record.len() == 5 && !self.record_header_fits(&chunk, out) {
                return;
            }
            let side = &self.sides[i];
            if record_header(&side.record)
                .is_ok_and(|(_, (_, _, len))| side.record.len() == 5 + len)
            {
                let record = std::mem::take(&mut self.sides[i].record);
                let record_offset = self.sides[i].record_offset;
                self.record(
                    chunk.at,
                    chunk.frame,
                    chunk.direction,
                    record_offset,
                    &record,
                    out,
                );
                // Keep the allocation for the next record.
                let mut record = record;
                record.clear();
                self.sides[i].record = record;
            }
        }
    }

    /// A record header just completed: TLS's (a known type, version 3.x)
    /// and within the length TLS allows, or this direction stops here.
    fn record_header_fits(&mut self, chunk: &Chunk<'_>, out: &mut dyn EventSink) -> bool {
        let i = chunk.direction.index();
        let side = &mut self.sides[i];
        let Ok((_, (ty, major, len))) = record_header(&side.record) else {
            return true;
        };
        let at_offset = side.record_offset;
        let (kind, message) = if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&ty) || major != 3 {
            let header = &side.record[..5];
            (
                TlsFinding::BadRecord,
                format!(
                    "record header {header:02x?} is not TLS (type {ty}); the rest of this direction is only counted"
                ),
            )
        } else if len > MAX_RECORD {
            (
                TlsFinding::RecordTooLong,
                format!(
                    "record claims {len} bytes, over the {MAX_RECORD} TLS allows; the rest of this direction is only counted"
                ),
            )
        } else {
            return true;
        };
        side.stopped = true;
        self.finding(
            out,
            chunk.at,
            chunk.direction,
            Some(at_offset),
            kind,
            message,
        );
        false
    }

    fn record(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        record: &[u8],
        out: &mut dyn EventSink,
    ) {
        let i = dir.index();
        let ty = record[0];
        let header: [u8; 5] = record[..5].try_into().unwrap_or_default();
        let payload = &record[5..];
        self.sides[i].last_record = Some((ty, payload.len()));
        // ChangeCipherSpec is never protected; in TLS 1.3 it is only a
        // middlebox-compatibility record (RFC 8446 §D.4), and may come
        // before the real ServerHello (after a HelloRetryRequest).
        if ty == CHANGE_CIPHER_SPEC {
            self.message(
                out,
                at,
                dir,
                "ChangeCipherSpec".into(),
                record.len(),
                vec![],
            );
            if self.version.is_some_and(|v| v != TLS13) {
                self.sides[i].protected = true;
                self.ready_tls12(at, dir, out);
            }
            return;
        }
        if !self.sides[i].protected {
            match ty {
                HANDSHAKE => self.handshake_bytes(at, dir, offset, payload, out),
                ALERT => self.alert(at, dir, payload, record.len(), false, out),
                _ => self.message(
                    out,
                    at,
                    dir,
                    "application_data".into(),
                    record.len(),
                    vec![],
                ),
            }
            return;
        }
        self.protected_record(at, frame, dir, offset, header, record, out);
    }

    /// A record under this side's keys: opened, or reported and counted as
    /// a hole in the stream inside.
    #[allow(clippy::too_many_arguments)]
    fn protected_record(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        header: [u8; 5],
        record: &[u8],
        out: &mut dyn EventSink,
    ) {
        let i = dir.index();
        let ty = record[0];
        let payload = &record[5..];
        let Some(cipher) = self.sides[i].cipher.as_mut() else {
            self.undecrypted(at, frame, dir, ty, record.len(), out);
            return;
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(payload);
        let seq = cipher.seq;
        match cipher.open(header, &mut self.scratch) {
            Ok((inner_type, len)) => {
                self.opened(at, frame, dir, offset, inner_type, len, record.len(), out)
            }
            Err(e) => {
                // The record used its sequence number; the next one is
                // tried on its own (one damaged record spoils no other).
                cipher.seq += 1;
                self.not_opened(at, frame, dir, offset, record, seq, e, out);
            }
        }
    }

    /// A record opened: its plaintext goes where its inner type says.
    #[allow(clippy::too_many_arguments)]
    fn opened(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        inner_type: u8,
        len: usize,
        wire_len: usize,
        out: &mut dyn EventSink,
    ) {
        let i = dir.index();
        let plain = std::mem::take(&mut self.scratch);
        self.sides[i].last_record = Some((inner_type, len));
        match inner_type {
            APPLICATION_DATA => {
                self.message(
                    out,
                    at,
                    dir,
                    "application_data".into(),
                    wire_len,
                    vec![("plaintext", json!(len))],
                );
                self.inner
                    .data(at, frame, dir, &plain[..len], &mut Plaintext(out));
            }
            HANDSHAKE => self.handshake_bytes(at, dir, offset, &plain[..len], out),
            ALERT => self.alert(at, dir, &plain[..len], wire_len, true, out),
            t => self.message(
                out,
                at,
                dir,
                format!("record type {t}").into(),
                wire_len,
                vec![],
            ),
        }
        self.scratch = plain;
    }

    /// A record that did not open: a hole in the stream inside when it
    /// carried application data, and a finding for the first few.
    #[allow(clippy::too_many_arguments)]
    fn not_opened(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        offset: u64,
        record: &[u8],
        seq: u64,
        e: OpenError,
        out: &mut dyn EventSink,
    ) {
        let i = dir.index();
        let ty = record[0];
        let payload = &record[5..];
        let overhead = self.sides[i].cipher.as_ref().map_or(0, |c| c.overhead());
        let lost = payload.len().saturating_sub(overhead);
        // Application data lost: the stream inside has a hole there
        // (TLS 1.3 hides the type, but after a side's Finished all
        // it sends is application data, in practice).
        let app = match self.version {
            Some(TLS13) => self.sides[i].traffic_secret.is_some(),
            _ => ty == APPLICATION_DATA,
        };
        if app {
            self.inner.gap(at, dir, lost as u64, &mut Plaintext(out));
        }
        let side = &mut self.sides[i];
        side.failed += 1;
        if side.failed > REPORTED_FAILURES {
            self.undecrypted(at, frame, dir, ty, record.len(), out);
            return;
        }
        let why = match e {
            OpenError::Short => "is shorter than its nonce and tag",
            OpenError::BadTag => {
                "does not verify with the key log's secret for this connection (a wrong or stale key, or damaged bytes)"
            }
            OpenError::NoContentType => "has no content type after its padding",
        };
        self.finding(
            out,
            at,
            dir,
            Some(offset),
            TlsFinding::DecryptFailed,
            format!("{} record {seq} {why}", side_name(dir)),
        );
        self.undecrypted(at, frame, dir, ty, record.len(), out);
    }

    /// A protected record that stays encrypted: its size and time still
    /// tell, and TLS 1.2 shows an alert's type (close_notify or a fatal
    /// alert, either way the sender closing).
    fn undecrypted(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        ty: u8,
        len: usize,
        out: &mut dyn EventSink,
    ) {
        if ty == ALERT {
            self.emit(
                out,
                at,
                dir,
                EventKind::Close(CloseKind::Protocol {
                    name: "tls_encrypted_alert".into(),
                }),
            );
        }
        let name = match ty {
            ALERT => "encrypted_alert",
            // TLS 1.2's Finished, and renegotiation.
            HANDSHAKE => "encrypted_handshake",
            _ => "application_data",
        };
        self.message(out, at, dir, name.into(), len, vec![]);
        if ty == APPLICATION_DATA {
            self.infer_liveness(at, frame, dir, len, out);
        }
    }

    /// SPICE's ping pairs and their pongs, told by record size alone
    /// ([`liveness`]); reported as pings of protocol `tls`, which has none
    /// of its own.
    fn infer_liveness(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        record_len: usize,
        out: &mut dyn EventSink,
    ) {
        let plaintext = self
            .version
            .zip(self.suite_id)
            .and_then(|(v, s)| crypto::sealed_overhead(v, s))
            .and_then(|o| record_len.checked_sub(5 + o));
        let inferred = match dir {
            Direction::ServerToClient => self.ping_shape.server_record(at, frame, plaintext),
            Direction::ClientToServer => self.ping_shape.client_record(plaintext),
        };
        match inferred {
            Some(liveness::Inferred::PingPair {
                first,
                first_frame,
                plaintext,
            }) => {
                for (at, frame) in [(first, first_frame), (at, frame)] {
                    out.event(Event {
                        at,
                        connection: self.ctx.connection,
                        channel: None,
                        direction: Some(dir),
                        frame: Some(frame),
                        kind: EventKind::Ping {
                            protocol: "tls",
                            id: None,
                            payload_len: plaintext as u64,
                        },
                    });
                }
            }
            Some(liveness::Inferred::Pong { ping, plaintext }) => self.emit(
                out,
                at,
                dir,
                EventKind::Pong {
                    protocol: "tls",
                    id: None,
                    payload_len: plaintext as u64,
                    rtt: Some(Micros(at.0.saturating_sub(ping.0))),
                },
            ),
            None => {}
        }
    }

    fn alert(
        &mut self,
        at: Micros,
        dir: Direction,
        body: &[u8],
        wire_len: usize,
        decrypted: bool,
        out: &mut dyn EventSink,
    ) {
        let (Some(&level), Some(&desc)) = (body.first(), body.get(1)) else {
            self.message(out, at, dir, "Alert".into(), wire_len, vec![]);
            return;
        };
        if desc == 0 {
            self.sides[dir.index()].close_notify = true;
        }
        // close_notify is the sender's application closing the connection
        // (RFC 8446 §6.1); a killed process's kernel sends a FIN without
        // it. Triage takes it as that side's goodbye, as a WebSocket close.
        if desc == 0 || level == 2 {
            let name = if desc == 0 {
                "tls_close_notify"
            } else {
                "tls_fatal_alert"
            };
            self.emit(
                out,
                at,
                dir,
                EventKind::Close(CloseKind::Protocol { name: name.into() }),
            );
        }
        self.message(
            out,
            at,
            dir,
            "Alert".into(),
            wire_len,
            vec![
                ("level", json!(if level == 2 { "fatal" } else { "warning" })),
                ("description", json!(alert_name(desc))),
                ("decrypted", json!(decrypted)),
            ],
        );
    }

    /// Handshake bytes of one record: whole messages are handled, a
    /// partial one waits (messages span records).
    fn handshake_bytes(
        &mut self,
        at: Micros,
        dir: Direction,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn EventSink,
    ) {
        let i = dir.index();
        self.sides[i].handshake.extend_from_slice(bytes);
        loop {
            let hs = &self.sides[i].handshake;
            if hs.len() < 4 {
                return;
            }
            let len = usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]);
            if len > MAX_HANDSHAKE_MESSAGE {
                let ty = hs[0];
                self.sides[i].handshake.clear();
                self.finding(
                    out,
                    at,
                    dir,
                    Some(offset),
                    TlsFinding::HandshakeTooLong,
                    format!(
                        "{} message of {len} bytes is over {MAX_HANDSHAKE_MESSAGE}; not parsed",
                        handshake_name(ty)
                    ),
                );
                return;
            }
            if hs.len() < 4 + len {
                return;
            }
            let msg: Vec<u8> = self.sides[i].handshake.drain(..4 + len).collect();
            self.handshake_message(at, dir, &msg, out);
        }
    }

    fn handshake_message(
        &mut self,
        at: Micros,
        dir: Direction,
        msg: &[u8],
        out: &mut dyn EventSink,
    ) {
        let ty = msg[0];
        let mut detail: Vec<(&'static str, Value)> = Vec::new();
        let mut name = handshake_name(ty);
        match ty {
            1 => {
                if let Some(ch) = hello::client_hello(&msg[4..]) {
                    self.client_random = Some(ch.random.clone());
                    detail = ch.detail();
                }
            }
            2 => {
                if let Some(sh) = hello::server_hello(&msg[4..]) {
                    if sh.random == HRR_RANDOM {
                        name = "HelloRetryRequest".into();
                    } else {
                        self.server_random = Some(sh.random.clone());
                        self.version = Some(sh.version);
                        self.suite_id = Some(sh.suite);
                        if sh.version == TLS13 {
                            self.ready_tls13(at, out);
                        }
                    }
                    detail = sh.detail();
                }
            }
            11 => detail = hello::certificate(&msg[4..], self.version == Some(TLS13), at),
            20 if self.version == Some(TLS13) => self.switch_to_application_keys(dir),
            24 if self.version == Some(TLS13) => {
                detail.push(("update_requested", json!(msg.get(4) == Some(&1))));
                self.key_update(dir);
            }
            _ => {}
        }
        self.message(out, at, dir, name, msg.len(), detail);
    }

    fn has_key_log(&self) -> bool {
        self.ctx
            .keys
            .as_ref()
            .is_some_and(|k| !k.is_empty_at(self.frame))
    }

    /// Looks the connection's secrets up once the hello says which they are.
    fn secrets(&mut self) -> Option<keylog::Secrets> {
        if self.secrets.is_none() {
            let store = self.ctx.keys.as_ref()?;
            self.secrets = store.get(self.client_random.as_deref()?, self.frame);
        }
        self.secrets.clone()
    }

    /// Why a connection cannot be decrypted, said once.
    fn no_keys(&mut self, at: Micros, why: String, out: &mut dyn EventSink) {
        if self.keys == Keys::None {
            return;
        }
        self.keys = Keys::None;
        // Without any key log the wire is all there is; that is no finding.
        if self.has_key_log() {
            let offset = self.sides[Direction::ServerToClient.index()].record_offset;
            self.finding(
                out,
                at,
                Direction::ServerToClient,
                Some(offset),
                TlsFinding::NoKey,
                why,
            );
        }
    }

    fn suite(&mut self, at: Micros, out: &mut dyn EventSink) -> Option<Suite> {
        let id = self.suite_id?;
        let s = crypto::suite(id);
        if s.is_none() {
            self.no_keys(
                at,
                format!(
                    "cipher suite {} is not one tether decrypts (AEAD suites only); records stay encrypted",
                    suite_name(id)
                ),
                out,
            );
        }
        s
    }

    fn missing_secret(&mut self, at: Micros, what: &str, out: &mut dyn EventSink) {
        let random = self
            .client_random
            .as_deref()
            .map(hex::encode)
            .unwrap_or_default();
        self.no_keys(
            at,
            format!("the key log has no {what} for client random {random}; records stay encrypted"),
            out,
        );
    }

    /// TLS 1.2: both directions' keys from the master secret, at the first
    /// ChangeCipherSpec.
    fn ready_tls12(&mut self, at: Micros, dir: Direction, out: &mut dyn EventSink) {
        if self.keys == Keys::Pending && self.has_key_log() {
            let Some(suite) = self.suite(at, out) else {
                return;
            };
            let master = self.secrets().and_then(|s| s.master);
            let (Some(master), Some(cr), Some(sr)) = (
                master,
                self.client_random.clone(),
                self.server_random.clone(),
            ) else {
                self.missing_secret(at, "CLIENT_RANDOM line", out);
                return;
            };
            match RecordCipher::tls12(suite, &master, &cr, &sr) {
                Some((c, s)) => {
                    self.sides[0].cipher = Some(c);
                    self.sides[1].cipher = Some(s);
                    self.keys = Keys::Ready;
                }
                None => self.missing_secret(at, "usable master secret", out),
            }
        }
        if self.keys != Keys::Ready {
            self.sides[dir.index()].cipher = None;
        }
    }

    /// TLS 1.3: every record after ServerHello is protected, with the
    /// handshake traffic secrets until each side's Finished.
    fn ready_tls13(&mut self, at: Micros, out: &mut dyn EventSink) {
        for s in &mut self.sides {
            s.protected = true;
        }
        if !self.has_key_log() {
            self.keys = Keys::None;
            return;
        }
        let Some(suite) = self.suite(at, out) else {
            return;
        };
        let secrets = self.secrets().unwrap_or_default();
        let (Some(c), Some(s)) = (secrets.client_handshake, secrets.server_handshake) else {
            self.missing_secret(at, "handshake traffic secrets", out);
            return;
        };
        self.sides[0].cipher = RecordCipher::tls13(suite, &c);
        self.sides[1].cipher = RecordCipher::tls13(suite, &s);
        self.keys = Keys::Ready;
    }

    /// TLS 1.3: after its Finished a side protects with its first
    /// application traffic secret (RFC 8446 §7.1, §4.4.4).
    fn switch_to_application_keys(&mut self, dir: Direction) {
        if self.keys != Keys::Ready {
            return;
        }
        let secrets = self.secrets.clone().unwrap_or_default();
        let secret = match dir {
            Direction::ClientToServer => secrets.client_traffic0,
            Direction::ServerToClient => secrets.server_traffic0,
        };
        let suite = self.suite_id.and_then(crypto::suite);
        let side = &mut self.sides[dir.index()];
        side.cipher = suite
            .zip(secret.as_deref())
            .and_then(|(s, k)| RecordCipher::tls13(s, k));
        side.traffic_secret = secret;
    }

    /// TLS 1.3 KeyUpdate: the sender's next secret (RFC 8446 §7.2).
    fn key_update(&mut self, dir: Direction) {
        let Some(suite) = self.suite_id.and_then(crypto::suite) else {
            return;
        };
        let side = &mut self.sides[dir.index()];
        let next = side.traffic_secret.as_deref().and_then(|s| {
            crypto::expand_label(suite.hash, s, "traffic upd", suite.hash.output_len())
        });
        side.cipher = next.as_deref().and_then(|k| RecordCipher::tls13(suite, k));
        side.traffic_secret = next;
    }
}

impl StreamDecoder for TlsDecoder {
    fn stack(&self) -> Vec<&'static str> {
        let mut s = vec!["tcp", "tls"];
        s.extend(self.inner_stack());
        s
    }

    fn data(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) {
        self.records(chunk, out);
    }

    fn gap(
        &mut self,
        at: Micros,
        direction: Direction,
        stream_offset: u64,
        len: u64,
        out: &mut dyn EventSink,
    ) {
        let side = &mut self.sides[direction.index()];
        if side.stopped {
            return;
        }
        side.stopped = true;
        self.finding(
            out,
            at,
            direction,
            Some(stream_offset),
            TlsFinding::Gap,
            format!(
                "{len} bytes of the {} stream were not captured; TLS records cannot be found again, so the rest of this direction is only counted",
                side_name(direction)
            ),
        );
        self.inner.gap(at, direction, len, &mut Plaintext(out));
    }

    fn end(&mut self, at: Micros, direction: Direction, how: StreamEnd, out: &mut dyn EventSink) {
        self.inner.end(at, direction, how, &mut Plaintext(out));
        let side = &self.sides[direction.index()];
        if side.failed > REPORTED_FAILURES {
            let (more, offset) = (side.failed - REPORTED_FAILURES, side.end_offset);
            self.finding(
                out,
                at,
                direction,
                Some(offset),
                TlsFinding::DecryptFailed,
                format!(
                    "{more} more {} records did not decrypt either",
                    side_name(direction)
                ),
            );
        }
        let side = &self.sides[direction.index()];
        if !side.record.is_empty() && !side.stopped {
            let (offset, held) = (side.record_offset, side.record.len());
            self.finding(
                out,
                at,
                direction,
                Some(offset),
                TlsFinding::TruncatedRecord,
                format!(
                    "the {} stream ended {held} bytes into a record",
                    side_name(direction)
                ),
            );
        }
        let side = &self.sides[direction.index()];
        if how != StreamEnd::Fin || side.close_notify || !side.protected {
            return;
        }
        // Without the key a protected alert right before the FIN is, in
        // practice, the close_notify; TLS 1.3 hides its type, but its size
        // gives it away: 2 bytes of alert, 1 of type, a 16-byte tag.
        let likely = match (self.keys, side.last_record) {
            (Keys::Ready, _) if side.failed == 0 => false,
            (_, Some((ALERT, _))) => true,
            (_, Some((APPLICATION_DATA, 19))) if self.version == Some(TLS13) => true,
            _ => false,
        };
        if likely {
            self.message(
                out,
                at,
                direction,
                "encrypted close_notify (inferred)".into(),
                0,
                vec![],
            );
            return;
        }
        let who = side_name(direction);
        let offset = side.end_offset;
        self.finding(
            out,
            at,
            direction,
            Some(offset),
            TlsFinding::NoCloseNotify,
            format!("the {who} closed the connection without sending TLS close_notify"),
        );
    }

    fn session(&self) -> Option<SessionInfo> {
        self.inner.session()
    }
}

/// The hellos and certificate, parsed by tls-parser.
mod hello {
    use super::*;
    use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

    pub struct ClientHello {
        pub random: Vec<u8>,
        sni: Option<String>,
        alpn: Vec<String>,
        versions: Vec<u16>,
    }

    impl ClientHello {
        pub fn detail(&self) -> Vec<(&'static str, Value)> {
            let mut d = Vec::new();
            if let Some(s) = &self.sni {
                d.push(("sni", json!(s)));
            }
            if !self.alpn.is_empty() {
                d.push(("alpn", json!(self.alpn)));
            }
            if !self.versions.is_empty() {
                let v: Vec<Cow<'static, str>> =
                    self.versions.iter().map(|v| version_name(*v)).collect();
                d.push(("versions", json!(v)));
            }
            d
        }
    }

    pub struct ServerHello {
        pub random: Vec<u8>,
        pub version: u16,
        pub suite: u16,
        alpn: Option<String>,
    }

    impl ServerHello {
        pub fn detail(&self) -> Vec<(&'static str, Value)> {
            let mut d = vec![
                ("version", json!(version_name(self.version))),
                ("cipher", json!(suite_name(self.suite))),
            ];
            if let Some(a) = &self.alpn {
                d.push(("alpn", json!(a)));
            }
            d
        }
    }

    /// `body` is the whole handshake message, header included.
    fn parse(msg_with_header: &[u8]) -> Option<TlsMessageHandshake<'_>> {
        match tls_parser::parse_tls_message_handshake(msg_with_header) {
            Ok((_, TlsMessage::Handshake(h))) => Some(h),
            _ => None,
        }
    }

    fn with_header(ty: u8, body: &[u8]) -> Vec<u8> {
        let len = body.len() as u32;
        let mut v = vec![ty, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        v.extend_from_slice(body);
        v
    }

    fn alpn_names(list: &[&[u8]]) -> Vec<String> {
        list.iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    pub fn client_hello(body: &[u8]) -> Option<ClientHello> {
        let msg = with_header(1, body);
        let Some(TlsMessageHandshake::ClientHello(ch)) = parse(&msg) else {
            return None;
        };
        let mut out = ClientHello {
            random: ch.random.to_vec(),
            sni: None,
            alpn: Vec::new(),
            versions: Vec::new(),
        };
        let exts = ch
            .ext
            .and_then(|e| tls_parser::parse_tls_client_hello_extensions(e).ok())
            .map(|(_, v)| v)
            .unwrap_or_default();
        for e in exts {
            match e {
                TlsExtension::SNI(names) => {
                    out.sni = names
                        .first()
                        .map(|(_, n)| String::from_utf8_lossy(n).into_owned());
                }
                TlsExtension::ALPN(list) => out.alpn = alpn_names(&list),
                TlsExtension::SupportedVersions(v) => {
                    // GREASE values (RFC 8701) say nothing.
                    out.versions = v
                        .iter()
                        .map(|v| v.0)
                        .filter(|v| v & 0x0f0f != 0x0a0a)
                        .collect();
                }
                _ => {}
            }
        }
        Some(out)
    }

    pub fn server_hello(body: &[u8]) -> Option<ServerHello> {
        let msg = with_header(2, body);
        let Some(TlsMessageHandshake::ServerHello(sh)) = parse(&msg) else {
            return None;
        };
        let mut out = ServerHello {
            random: sh.random.to_vec(),
            version: sh.version.0,
            suite: sh.cipher.0,
            alpn: None,
        };
        let exts = sh
            .ext
            .and_then(|e| tls_parser::parse_tls_server_hello_extensions(e).ok())
            .map(|(_, v)| v)
            .unwrap_or_default();
        for e in exts {
            match e {
                TlsExtension::SupportedVersions(v) => {
                    if let Some(v) = v.first() {
                        out.version = v.0;
                    }
                }
                TlsExtension::ALPN(list) => out.alpn = alpn_names(&list).into_iter().next(),
                _ => {}
            }
        }
        Some(out)
    }

    /// The leaf certificate's subject and validity. TLS 1.3 puts a request
    /// context before the list and extensions after each entry.
    pub fn certificate(body: &[u8], tls13: bool, at: Micros) -> Vec<(&'static str, Value)> {
        let list = if tls13 {
            let Some(&ctx_len) = body.first() else {
                return Vec::new();
            };
            body.get(1 + usize::from(ctx_len)..).unwrap_or_default()
        } else {
            body
        };
        // certificate_list<0..2^24-1>, then the leaf's cert_data<1..2^24-1>.
        let Some(leaf) = list.get(3..6).and_then(|l| {
            let n = usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2]);
            list.get(6..6 + n)
        }) else {
            return Vec::new();
        };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
            return vec![("certificate", json!("does not parse"))];
        };
        let not_after = cert.validity().not_after.timestamp();
        let expired = (at.0 / 1_000_000) as i64 > not_after;
        vec![
            ("subject", json!(cert.subject().to_string())),
            ("issuer", json!(cert.issuer().to_string())),
            ("not_after", json!(cert.validity().not_after.to_string())),
            ("expired", json!(expired)),
        ]
    }
}

/// A TLS record header (RFC 8446 §5.1): content type, major version (the
/// minor is not checked), payload length.
fn record_header(i: &[u8]) -> nom::IResult<&[u8], (u8, u8, usize)> {
    use nom::number::streaming::{be_u8, be_u16};
    let (i, ty) = be_u8(i)?;
    let (i, major) = be_u8(i)?;
    let (i, _minor) = be_u8(i)?;
    let (i, len) = be_u16(i)?;
    Ok((i, (ty, major, usize::from(len))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(dec: &mut TlsDecoder, dir: Direction, offset: u64, bytes: &[u8], out: &mut Vec<Event>) {
        dec.data(
            Chunk {
                at: Micros(1),
                frame: 1,
                direction: dir,
                stream_offset: offset,
                bytes,
            },
            out,
        );
    }

    fn codes(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Finding(f) => Some(format!(
                    "{}@{}",
                    f.code,
                    f.location.stream_offset.unwrap_or(u64::MAX)
                )),
                _ => None,
            })
            .collect()
    }

    fn names(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Message { name, .. } => Some(name.to_string()),
                _ => None,
            })
            .collect()
    }

    /// A ClientHello with SNI `vnc.example` and ALPN `http/1.1`.
    fn client_hello() -> Vec<u8> {
        let mut ext = Vec::new();
        let name = b"vnc.example";
        ext.extend([0, 0]); // server_name
        ext.extend(((name.len() + 5) as u16).to_be_bytes());
        ext.extend(((name.len() + 3) as u16).to_be_bytes());
        ext.push(0);
        ext.extend((name.len() as u16).to_be_bytes());
        ext.extend(name);
        let proto = b"http/1.1";
        ext.extend([0, 16]); // ALPN
        ext.extend(((proto.len() + 3) as u16).to_be_bytes());
        ext.extend(((proto.len() + 1) as u16).to_be_bytes());
        ext.push(proto.len() as u8);
        ext.extend(proto);
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]);
        body.extend([1, 0]);
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut msg = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        msg.extend(body);
        msg
    }

    /// A TLS 1.2 ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256.
    fn server_hello12() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([9u8; 32]);
        body.push(0);
        body.extend([0xC0, 0x2F, 0]);
        let mut msg = vec![2, 0, 0, body.len() as u8];
        msg.extend(body);
        msg
    }

    fn record(ty: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![ty, 3, 3];
        r.extend((payload.len() as u16).to_be_bytes());
        r.extend(payload);
        r
    }

    #[test]
    fn a_hello_split_over_records_and_chunks_is_read_whole() {
        let hello = client_hello();
        let (a, b) = hello.split_at(20);
        let wire = [record(HANDSHAKE, a), record(HANDSHAKE, b)].concat();
        let mut dec = TlsDecoder::new(&StreamContext::default());
        let mut out = Vec::new();
        // Cut inside a record header and inside a payload.
        for (start, end) in [(0, 3), (3, 30), (30, wire.len())] {
            feed(
                &mut dec,
                Direction::ClientToServer,
                start as u64,
                &wire[start..end],
                &mut out,
            );
        }
        assert_eq!(names(&out), vec!["ClientHello"]);
        let EventKind::Message { detail, .. } = &out[0].kind else {
            panic!()
        };
        assert!(
            detail.contains(&(Cow::Borrowed("sni"), json!("vnc.example"))),
            "{detail:?}"
        );
        assert!(
            detail.contains(&(Cow::Borrowed("alpn"), json!(["http/1.1"]))),
            "{detail:?}"
        );
        assert_eq!(dec.client_random.as_deref(), Some(&[7u8; 32][..]));
    }

    #[test]
    fn hostile_records_are_located_and_stop_only_their_direction() {
        let mut dec = TlsDecoder::new(&StreamContext::default());
        let mut out = Vec::new();
        // 2^16 - 1 claimed: past 2^14 + 2048.
        feed(
            &mut dec,
            Direction::ServerToClient,
            0,
            &[23, 3, 3, 0xff, 0xff, 1, 2],
            &mut out,
        );
        feed(&mut dec, Direction::ServerToClient, 7, &[0; 64], &mut out);
        // Not TLS at all.
        let wire = record(HANDSHAKE, &client_hello());
        feed(&mut dec, Direction::ClientToServer, 0, &wire, &mut out);
        feed(
            &mut dec,
            Direction::ClientToServer,
            wire.len() as u64,
            b"GET / HTTP/1.1\r\n",
            &mut out,
        );
        assert_eq!(
            codes(&out),
            vec![
                "tls.record_too_long@0".to_string(),
                format!("tls.bad_record@{}", wire.len())
            ]
        );
        assert_eq!(names(&out), vec!["ClientHello"]);
    }

    #[test]
    fn a_record_cut_by_the_end_and_a_close_without_close_notify_are_said() {
        let mut dec = TlsDecoder::new(&StreamContext::default());
        let mut out = Vec::new();
        let hello = record(HANDSHAKE, &client_hello());
        feed(&mut dec, Direction::ClientToServer, 0, &hello, &mut out);
        feed(
            &mut dec,
            Direction::ServerToClient,
            0,
            &record(HANDSHAKE, &server_hello12()),
            &mut out,
        );
        let n = hello.len() as u64;
        feed(
            &mut dec,
            Direction::ClientToServer,
            n,
            &[20, 3, 3, 0, 1, 1],
            &mut out,
        );
        feed(
            &mut dec,
            Direction::ClientToServer,
            n + 6,
            &record(APPLICATION_DATA, &[9; 40])[..20],
            &mut out,
        );
        dec.end(
            Micros(2),
            Direction::ClientToServer,
            StreamEnd::Fin,
            &mut out,
        );
        assert_eq!(
            codes(&out),
            vec![
                format!("tls.truncated_record@{}", n + 6),
                format!("tls.no_close_notify@{}", n + 26)
            ]
        );
    }

    #[test]
    fn an_encrypted_alert_before_the_fin_is_taken_for_close_notify() {
        let mut dec = TlsDecoder::new(&StreamContext::default());
        let mut out = Vec::new();
        let hello = record(HANDSHAKE, &client_hello());
        feed(&mut dec, Direction::ClientToServer, 0, &hello, &mut out);
        feed(
            &mut dec,
            Direction::ServerToClient,
            0,
            &record(HANDSHAKE, &server_hello12()),
            &mut out,
        );
        let n = hello.len() as u64;
        feed(
            &mut dec,
            Direction::ClientToServer,
            n,
            &[20, 3, 3, 0, 1, 1],
            &mut out,
        );
        // TLS 1.2 GCM: 8 explicit nonce + 2 alert + 16 tag.
        feed(
            &mut dec,
            Direction::ClientToServer,
            n + 6,
            &record(ALERT, &[5; 26]),
            &mut out,
        );
        dec.end(
            Micros(2),
            Direction::ClientToServer,
            StreamEnd::Fin,
            &mut out,
        );
        assert!(codes(&out).is_empty(), "{:?}", codes(&out));
        assert_eq!(
            names(&out),
            vec![
                "ClientHello",
                "ServerHello",
                "ChangeCipherSpec",
                "encrypted_alert",
                "encrypted close_notify (inferred)"
            ]
        );
        // The alert is the client's close, as triage reads closes.
        assert!(out.iter().any(|e| matches!(
            &e.kind,
            EventKind::Close(CloseKind::Protocol { name }) if name == "tls_encrypted_alert"
        )));
    }
}
