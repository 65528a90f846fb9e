//! What a decode produces: the per-connection report, the capture's
//! report, the flow table's rows, and the options that shape them.

use crate::decode::MessageLimits;
use crate::decode::sniff::Protocol;
use crate::flow::{ConnSummary, EndKind, FlowConfig};
use crate::timeline::{ConnectionId, Event, Finding, Micros, OpenKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A fold over one connection's events, for a caller that needs more than
/// counts but not every event (triage): what it keeps per connection stays
/// bounded while the capture streams past.
pub trait EventFold: Send {
    /// Every event the connection's decoder completes, in order (the same
    /// events `keep_events` would keep, less the open).
    fn event(&mut self, ev: &Event);
    /// What the fold kept, once the connection's last event is in.
    fn finish(self: Box<Self>) -> Folded;
}

/// A finished fold, typed by its caller (`Folded::get`).
#[derive(Clone)]
pub struct Folded(Arc<dyn std::any::Any + Send + Sync>);

impl Folded {
    pub fn new<T: std::any::Any + Send + Sync>(value: T) -> Folded {
        Folded(Arc::new(value))
    }

    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }

    /// The value itself, when this is its only holder.
    pub fn into_inner<T: std::any::Any + Send + Sync>(self) -> Option<T> {
        Arc::try_unwrap(self.0.downcast::<T>().ok()?).ok()
    }
}

impl std::fmt::Debug for Folded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Folded")
    }
}

/// Makes one fold per connection.
#[derive(Clone)]
pub struct FoldWith(pub Arc<dyn Fn() -> Box<dyn EventFold> + Send + Sync>);

impl std::fmt::Debug for FoldWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FoldWith")
    }
}

/// What to keep while decoding.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    /// Keep every event (for `tether decode --events`, triage and tests);
    /// otherwise only counts, findings and liveness are kept.
    pub keep_events: bool,
    /// Fold each connection's events as they are decoded (see
    /// [`EventFold`]); the result is the report's `folded`.
    pub fold: Option<FoldWith>,
    /// Leave out each connection's messages counted by name (triage reads
    /// its folds instead; at a server, a map per connection adds up).
    pub drop_counts: bool,
    pub flow: FlowConfig,
    /// Largest message per protocol, past which a direction is not decoded.
    pub messages: MessageLimits,
    /// The SPICE channel type of mid-stream connections whose ports follow
    /// no known convention (a bug-report zip names its ring's channel).
    pub spice_channel_hint: Option<u8>,
    /// TLS secrets; the capture's Decryption Secrets Blocks are added as
    /// they are read.
    pub keys: Option<std::sync::Arc<crate::decode::tls::keylog::KeyStore>>,
}

/// Decoded messages by name, each way.
#[derive(Debug, Clone, Default, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Counts {
    pub c2s: BTreeMap<String, u64>,
    pub s2c: BTreeMap<String, u64>,
}

/// Per-direction activity of one connection.
#[derive(Debug, Clone, Default, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Activity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<Micros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Micros>,
    pub pings: u64,
    pub pongs: u64,
    /// Round trips of the pongs this side sent, when their pings were seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_min: Option<Micros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_max: Option<Micros>,
}

/// Everything decoded from one connection.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConnectionReport {
    pub connection: ConnectionId,
    pub client: String,
    pub server: String,
    pub protocol: Protocol,
    pub stack: Vec<&'static str>,
    pub counts: Counts,
    pub c2s: Activity,
    pub s2c: Activity,
    pub findings: Vec<Finding>,
    /// SPICE session and channel, when the decoder knows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<crate::decode::SessionInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// What `DecodeOptions::fold` made of the events.
    #[serde(skip)]
    #[schemars(skip)]
    pub folded: Option<Folded>,
}

/// A decoded capture.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DecodeReport {
    pub file: String,
    /// The capture's first frame (any frame), once per input: in JSON,
    /// seconds since the Unix epoch; every other time counts from it.
    #[serde(rename = "start_abs", skip_serializing_if = "Option::is_none")]
    pub start: Option<Micros>,
    pub stats: crate::capture::CaptureStats,
    /// Capture-level diagnostics (record and link layer).
    pub diagnostics: Vec<Finding>,
    pub flows: Vec<ConnSummary>,
    pub connections: Vec<ConnectionReport>,
}

impl DecodeReport {
    /// Re-bases every time on the capture's first frame (`start` stays
    /// absolute), the one convention of tether's output: a time then reads
    /// as Wireshark's "seconds since beginning of capture". Round trips are
    /// durations and stay as they are. A frame stamped before the first
    /// (a capture whose clock stepped back) counts as 0.
    pub fn rebase(&mut self) {
        let Some(origin) = self.start else {
            return;
        };
        let at = |t: &mut Micros| *t = t.saturating_sub(origin);
        for f in &mut self.flows {
            at(&mut f.start);
            at(&mut f.last);
        }
        for c in &mut self.connections {
            for a in [&mut c.c2s, &mut c.s2c] {
                a.first.iter_mut().chain(a.last.iter_mut()).for_each(at);
            }
            for e in &mut c.events {
                at(&mut e.at);
            }
        }
    }
}

/// One row of `tether flows`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FlowRow {
    pub connection: ConnectionId,
    pub client: String,
    pub server: String,
    /// Seconds since the capture's first packet.
    pub start: f64,
    /// Seconds since the Unix epoch (or since the client's clock origin for
    /// bug-report captures).
    pub start_abs: f64,
    pub duration: f64,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    pub segments: u64,
    pub segments_c2s: u64,
    pub segments_s2c: u64,
    /// Frame bytes on the wire each way, as tshark's conversation table counts.
    pub wire_bytes_c2s: u64,
    pub wire_bytes_s2c: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub end: EndKind,
    pub closed_by: Option<&'static str>,
    pub opened: OpenKind,
    pub protocol: Protocol,
    /// The decoded stack (`tcp/tls/ws/rfb`), when decoded (`--keylog`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// The `tether flows` table for one capture, with the capture diagnostics.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FlowTable {
    pub file: String,
    pub rows: Vec<FlowRow>,
    pub stats: crate::capture::CaptureStats,
    pub diagnostics: Vec<Finding>,
}
