//! The event vocabulary every stage shares: decoded captures and synthetic
//! timelines both end up as ordered [`Event`]s on one clock.

use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// A point in time, in microseconds. For captures it is the capture's own
/// clock (µs since the Unix epoch, as the pcap says); for the model it is
/// virtual time since the start of the run. Written out as seconds (a JSON
/// number exact to the microsecond), as every time in tether's output is;
/// capture times are first re-based on the capture's first frame
/// ([`crate::decode::pipeline::DecodeReport::rebase`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub u64);

impl Serialize for Micros {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_secs_f64())
    }
}

impl schemars::JsonSchema for Micros {
    fn schema_name() -> Cow<'static, str> {
        "Seconds".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Seconds, exact to the microsecond: since the capture's first frame for a time, or a duration.",
            "type": "number",
            "minimum": 0
        })
    }
}

impl Micros {
    pub const ZERO: Micros = Micros(0);

    pub fn from_secs_f64(secs: f64) -> Micros {
        Micros((secs * 1e6).round().max(0.0) as u64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    pub fn saturating_sub(self, other: Micros) -> Micros {
        Micros(self.0.saturating_sub(other.0))
    }
    /// An absolute capture time as RFC 3339 UTC, exact to the microsecond:
    /// how output shows the wall clock (once per input).
    pub fn utc(self) -> String {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(self.0);
        humantime::format_rfc3339_micros(at).to_string()
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// Which way bytes travel on a connection. The client is the side that
/// opened it (sent the SYN), or, for connections first seen mid-stream,
/// the side the port heuristics in `flow` pick.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
pub enum Direction {
    #[serde(rename = "c2s")]
    ClientToServer,
    #[serde(rename = "s2c")]
    ServerToClient,
}

impl Direction {
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
    pub fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }
    /// The side that sends in this direction.
    pub fn sender(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client",
            Direction::ServerToClient => "server",
        }
    }
}

/// A TCP connection within one capture, numbered from 0 in order of first
/// appearance.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct ConnectionId(pub u32);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where something was found. Every field that is known is filled in, so a
/// user can go straight to the packet (`frame` is 1-based like Wireshark's)
/// or the byte in the reassembled stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Offset within the reassembled byte stream of that direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_offset: Option<u64>,
    /// Which stream `stream_offset` counts when it is not the TCP stream
    /// (`tls_plaintext`: the decrypted bytes of a TLS connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_in: Option<&'static str>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(file) = &self.file {
            parts.push(file.clone());
        }
        if let Some(frame) = self.frame {
            parts.push(format!("frame {frame}"));
        }
        if let Some(off) = self.file_offset {
            parts.push(format!("file offset {off}"));
        }
        if let Some(c) = self.connection {
            parts.push(format!("connection {c}"));
        }
        if let Some(d) = self.direction {
            parts.push(d.as_str().to_string());
        }
        if let Some(off) = self.stream_offset {
            match self.offset_in {
                Some(stream) => parts.push(format!("{} offset {off}", stream.replace('_', " "))),
                None => parts.push(format!("stream offset {off}")),
            }
        }
        f.write_str(&parts.join(", "))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// A diagnostic or a conformance finding. `code` names the rule broken
/// (`ws.unmasked_client_frame`, `capture.truncated_record`, ...), so tests
/// and machines match on it; `message` is for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Finding {
    pub severity: Severity,
    pub code: Cow<'static, str>,
    pub message: String,
    pub location: Location,
}

impl Finding {
    /// Only through a kind ([`kinds::FindingKind::at`]), so every code is
    /// one the README lists.
    fn new(
        severity: Severity,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        location: Location,
    ) -> Finding {
        Finding {
            severity,
            code: code.into(),
            message: message.into(),
            location,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{sev}[{}]: {} ({})",
            self.code, self.message, self.location
        )
    }
}

/// How a TCP connection was first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpenKind {
    /// A SYN from the client.
    Syn,
    /// Only the SYN-ACK was captured.
    SynAck,
    /// No handshake: first seen carrying data or a bare ACK.
    MidStream,
}

/// How one direction (or a whole protocol session) ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum CloseKind {
    Fin,
    Rst,
    /// A WebSocket close frame.
    WsClose {
        code: Option<u16>,
        reason: String,
    },
    /// SPICE DISCONNECTING or a protocol-level goodbye.
    Protocol {
        name: Cow<'static, str>,
    },
    /// Still open when the capture ended.
    EndOfCapture,
}

/// What happened. Protocol decoders put protocol-specific detail in
/// `Message::detail` as ordered key/value pairs, so the vocabulary stays
/// small and every renderer can print it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventKind {
    Open {
        how: OpenKind,
    },
    Message {
        protocol: &'static str,
        name: Cow<'static, str>,
        /// Bytes on the wire for this message (header included).
        len: u64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        detail: Vec<(Cow<'static, str>, serde_json::Value)>,
    },
    Ping {
        protocol: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        payload_len: u64,
    },
    Pong {
        protocol: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        payload_len: u64,
        /// Round trip from the ping it answers, when one was seen.
        #[serde(skip_serializing_if = "Option::is_none")]
        rtt: Option<Micros>,
    },
    Close(CloseKind),
    Gap {
        len: u64,
    },
    Finding(Finding),
}

/// One entry of a timeline.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Event {
    pub at: Micros,
    pub connection: ConnectionId,
    /// SPICE channel name (`main`, `display`, ...) or `None` for protocols
    /// with one logical stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// 1-based capture frame that completed the event (its last byte, the
    /// FIN or RST), as Wireshark numbers frames; stamped by the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    #[serde(flatten)]
    pub kind: EventKind,
}

pub mod kinds;
pub mod synthetic;
