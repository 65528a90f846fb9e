//! Protocol decoders: sniffing, then WebSocket, RFB and SPICE, all sans-IO.
//!
//! Every decoder implements [`StreamDecoder`]: it is fed the reassembled
//! bytes of one connection, both directions interleaved in capture order,
//! and writes timeline [`Event`]s to an [`EventSink`]. "Need more bytes" is
//! never an error: a decoder keeps a bounded carry-over and waits. Malformed
//! input becomes an `EventKind::Finding` with its location; a decoder that
//! can no longer find message boundaries says so once and then only counts
//! bytes.

pub mod pipeline;
pub mod rfb;
pub mod sniff;
pub mod spice;
pub mod stage;
pub mod tls;
pub mod ws;

use crate::timeline::{ConnectionId, Direction, Event, Micros};

pub use sniff::Protocol;

/// Where decoded events go.
pub trait EventSink {
    fn event(&mut self, event: Event);

    /// Sets the capture frame that events without one are stamped with
    /// (bytes held for sniffing are replayed under their own frames), and
    /// returns the one it replaces. Sinks that stamp nothing ignore it.
    fn set_frame(&mut self, _frame: Option<u64>) -> Option<u64> {
        None
    }
}

impl EventSink for Vec<Event> {
    fn event(&mut self, event: Event) {
        self.push(event);
    }
}

/// A run of in-order bytes in one direction.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    pub at: Micros,
    /// 1-based capture frame that carried the last of these bytes.
    pub frame: u64,
    pub direction: Direction,
    /// Offset of `bytes[0]` within this direction's stream (for a decoder
    /// fed by WebSocket, within the inner stream).
    pub stream_offset: u64,
    pub bytes: &'a [u8],
}

/// How one direction of a stream ended, as the decoder is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    Fin,
    Rst,
    EndOfCapture,
}

/// A sans-IO protocol decoder for one connection.
pub trait StreamDecoder: Send {
    /// The protocol stack below and including this decoder, e.g.
    /// `["tcp", "ws", "rfb"]` once the WebSocket decoder knows its inner
    /// protocol.
    fn stack(&self) -> Vec<&'static str>;

    /// In-order bytes of one direction.
    fn data(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink);

    /// `len` bytes of one direction were never captured. The decoder must
    /// resynchronise if it can, or report that it cannot.
    fn gap(
        &mut self,
        at: Micros,
        direction: Direction,
        stream_offset: u64,
        len: u64,
        out: &mut dyn EventSink,
    );

    /// One direction ended. Called at most once per direction.
    fn end(&mut self, at: Micros, direction: Direction, how: StreamEnd, out: &mut dyn EventSink);

    /// Which session and channel this connection carries, for protocols
    /// that have them (SPICE); read once when decoding ends.
    fn session(&self) -> Option<SessionInfo> {
        None
    }
}

/// A SPICE connection's place in its session: channels of one session
/// share `session_id` (the link connection id; main's MAIN_INIT assigns it).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct SessionInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<u8>,
    /// The link result, when the link stage was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_result: Option<String>,
    /// The reason of a DISCONNECTING message, when one was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnecting: Option<String>,
}

/// Hints a decoder may need that are not in its own bytes.
#[derive(Clone, Debug, Default)]
pub struct StreamContext {
    pub connection: ConnectionId,
    /// The stream began mid-session (no handshake captured). For SPICE this
    /// carries the channel type the port convention or a zip names.
    pub mid_stream_spice_channel: Option<u8>,
    pub limits: MessageLimits,
    /// TLS secrets (a key log, the capture's Decryption Secrets Blocks).
    pub keys: Option<std::sync::Arc<tls::keylog::KeyStore>>,
}

/// The largest message each protocol accepts. Bodies are streamed, never
/// buffered whole, so these bound trust in a length field rather than
/// memory: past one, that direction of the connection is no longer decoded
/// (finding `limit.message_size`), and everything else carries on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// SPICE message body, client to server.
    pub spice_client_body: u32,
    /// SPICE message body, server to client (display surfaces are large).
    pub spice_server_body: u32,
    /// WebSocket message: the payloads of all its frames together.
    pub ws_message: u64,
}

impl Default for MessageLimits {
    fn default() -> MessageLimits {
        MessageLimits {
            spice_client_body: spice::MAX_CLIENT_BODY,
            spice_server_body: spice::MAX_SERVER_BODY,
            ws_message: 1 << 30,
        }
    }
}

/// Builds the decoder for a sniffed protocol, or `None` for protocols
/// tether does not decode (plain HTTP, unknown): those keep their timing
/// only.
pub fn decoder_for(protocol: Protocol, ctx: &StreamContext) -> Option<Box<dyn StreamDecoder>> {
    match protocol {
        Protocol::Spice => Some(Box::new(spice::SpiceDecoder::new(ctx))),
        Protocol::Rfb => Some(Box::new(rfb::RfbDecoder::new(ctx))),
        Protocol::WebSocket => Some(Box::new(ws::WsDecoder::new(ctx))),
        Protocol::Tls => Some(Box::new(tls::TlsDecoder::new(ctx))),
        Protocol::Http | Protocol::Unknown => None,
    }
}
