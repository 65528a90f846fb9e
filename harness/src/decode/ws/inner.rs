//! The byte stream carried inside WebSocket data messages (or TLS
//! records), handed to an inner decoder (RFB, SPICE, ...) picked by the
//! same sniffing stage the pipeline runs on raw TCP.

use crate::decode::sniff::Protocol;
use crate::decode::stage::{DecoderFactory, SniffStage};
use crate::decode::{Chunk, EventSink, StreamContext, StreamDecoder, StreamEnd, decoder_for};
use crate::timeline::{Direction, Micros};

/// Builds the inner decoder once the protocol is known. The default is
/// [`decoder_for`]; tests substitute a recorder.
pub type InnerFactory = DecoderFactory;

pub struct InnerStream {
    stage: SniffStage,
    /// Bytes handed on so far each way: the inner stream offsets.
    offsets: [u64; 2],
    ended: [bool; 2],
}

impl InnerStream {
    pub fn new(ctx: StreamContext, factory: InnerFactory) -> InnerStream {
        InnerStream {
            stage: SniffStage::new(ctx, factory),
            offsets: [0, 0],
            ended: [false, false],
        }
    }

    /// A stream whose protocol is known beforehand: no sniffing.
    pub fn with_decoder(ctx: StreamContext, decoder: Box<dyn StreamDecoder>) -> InnerStream {
        InnerStream {
            stage: SniffStage::decoding(ctx, decoder),
            offsets: [0, 0],
            ended: [false, false],
        }
    }

    /// The inner decoder's stack without its "tcp", or what sniffing named.
    pub fn stack_tail(&self) -> Vec<&'static str> {
        if let Some(d) = self.stage.decoder() {
            return d.stack().into_iter().filter(|s| *s != "tcp").collect();
        }
        match self.stage.opaque() {
            Some(Protocol::Tls) => vec!["tls"],
            Some(Protocol::Http) => vec!["http"],
            _ => Vec::new(),
        }
    }

    pub fn data(
        &mut self,
        at: Micros,
        frame: u64,
        dir: Direction,
        bytes: &[u8],
        out: &mut dyn EventSink,
    ) {
        if bytes.is_empty() {
            return;
        }
        let offset = self.offsets[dir.index()];
        self.offsets[dir.index()] += bytes.len() as u64;
        let chunk = Chunk {
            at,
            frame,
            direction: dir,
            stream_offset: offset,
            bytes,
        };
        self.stage.data(chunk, out);
    }

    /// Inner bytes were lost (a gap inside a data frame's payload).
    pub fn gap(&mut self, at: Micros, dir: Direction, len: u64, out: &mut dyn EventSink) {
        let offset = self.offsets[dir.index()];
        self.offsets[dir.index()] += len;
        self.stage.gap(at, dir, offset, len, out);
    }

    pub fn end(&mut self, at: Micros, dir: Direction, how: StreamEnd, out: &mut dyn EventSink) {
        if self.ended[dir.index()] {
            return;
        }
        self.ended[dir.index()] = true;
        self.stage.end(at, dir, how, out);
    }

    /// The inner decoder's session and channel (SPICE inside TLS).
    pub fn session(&self) -> Option<crate::decode::SessionInfo> {
        self.stage.decoder().and_then(|d| d.session())
    }
}

/// The production factory.
pub fn default_factory(protocol: Protocol, ctx: &StreamContext) -> Option<Box<dyn StreamDecoder>> {
    decoder_for(protocol, ctx)
}
