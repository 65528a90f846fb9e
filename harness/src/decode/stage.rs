//! Sniff, then decode: the one stage that holds a stream's first bytes
//! until [`sniff`](super::sniff) names its protocol, then replays them into
//! that protocol's decoder and passes the rest straight on. The pipeline
//! runs it on each TCP connection, and the stream carried inside WebSocket
//! or TLS runs it again on its plaintext.

use super::sniff::{self, MAX_SNIFF_BYTES, Protocol, Sniff};
use super::{Chunk, EventSink, StreamContext, StreamDecoder, StreamEnd};
use crate::timeline::{Direction, Micros};

/// Builds the decoder once the protocol is known ([`super::decoder_for`]
/// in production; tests substitute a recorder).
pub type DecoderFactory = fn(Protocol, &StreamContext) -> Option<Box<dyn StreamDecoder>>;

/// A held piece of the prefix: where its bytes came from.
struct Held {
    at: Micros,
    frame: u64,
    dir: Direction,
    offset: u64,
    len: usize,
}

enum Stage {
    Sniffing {
        prefix: [Vec<u8>; 2],
        held: Vec<Held>,
    },
    Decoding(Box<dyn StreamDecoder>),
    /// No decoder for what sniffing named (or for nothing): timing only.
    Opaque(Protocol),
}

pub struct SniffStage {
    stage: Stage,
    ctx: StreamContext,
    factory: DecoderFactory,
}

impl SniffStage {
    pub fn new(ctx: StreamContext, factory: DecoderFactory) -> SniffStage {
        SniffStage {
            stage: Stage::Sniffing {
                prefix: [Vec::new(), Vec::new()],
                held: Vec::new(),
            },
            ctx,
            factory,
        }
    }

    /// A stream whose protocol is known beforehand: no sniffing.
    pub fn decoding(ctx: StreamContext, decoder: Box<dyn StreamDecoder>) -> SniffStage {
        SniffStage {
            stage: Stage::Decoding(decoder),
            ctx,
            factory: super::decoder_for,
        }
    }

    pub fn decoder(&self) -> Option<&dyn StreamDecoder> {
        match &self.stage {
            Stage::Decoding(d) => Some(d.as_ref()),
            _ => None,
        }
    }

    /// What sniffing named when no decoder took it (`Tls` without keys).
    pub fn opaque(&self) -> Option<Protocol> {
        match self.stage {
            Stage::Opaque(p) => Some(p),
            _ => None,
        }
    }

    pub fn is_sniffing(&self) -> bool {
        matches!(self.stage, Stage::Sniffing { .. })
    }

    /// Feeds one chunk. Returns the protocol when this chunk decided it
    /// (the held bytes have then been replayed, each piece under its own
    /// frame, and `out`'s frame is the chunk's again).
    pub fn data(&mut self, chunk: Chunk<'_>, out: &mut dyn EventSink) -> Option<Protocol> {
        match &mut self.stage {
            Stage::Decoding(d) => {
                d.data(chunk, out);
                None
            }
            Stage::Opaque(_) => None,
            Stage::Sniffing { prefix, held } => {
                let p = &mut prefix[chunk.direction.index()];
                let take = chunk
                    .bytes
                    .len()
                    .min(MAX_SNIFF_BYTES.saturating_sub(p.len()));
                p.extend_from_slice(&chunk.bytes[..take]);
                held.push(Held {
                    at: chunk.at,
                    frame: chunk.frame,
                    dir: chunk.direction,
                    offset: chunk.stream_offset,
                    len: take,
                });
                let full = prefix[0].len() + prefix[1].len() >= MAX_SNIFF_BYTES;
                let protocol = match sniff::sniff(&prefix[0], &prefix[1]) {
                    Sniff::Known(p) => p,
                    Sniff::NeedMore if full || take < chunk.bytes.len() => Protocol::Unknown,
                    Sniff::NeedMore => return None,
                };
                self.start(protocol, out);
                out.set_frame(Some(chunk.frame));
                // Bytes beyond the sniffing prefix go straight on.
                if take < chunk.bytes.len()
                    && let Stage::Decoding(d) = &mut self.stage
                {
                    d.data(
                        Chunk {
                            stream_offset: chunk.stream_offset + take as u64,
                            bytes: &chunk.bytes[take..],
                            ..chunk
                        },
                        out,
                    );
                }
                Some(protocol)
            }
        }
    }

    /// Sniffing cannot wait any longer (a gap, the end): decide on what is
    /// held, if anything. Returns the protocol if this decided it.
    pub fn settle(&mut self, out: &mut dyn EventSink) -> Option<Protocol> {
        let Stage::Sniffing { prefix, .. } = &self.stage else {
            return None;
        };
        if prefix[0].is_empty() && prefix[1].is_empty() {
            return None;
        }
        let protocol = match sniff::sniff(&prefix[0], &prefix[1]) {
            Sniff::Known(p) => p,
            Sniff::NeedMore => Protocol::Unknown,
        };
        let before = out.set_frame(None);
        self.start(protocol, out);
        out.set_frame(before);
        Some(protocol)
    }

    pub fn gap(
        &mut self,
        at: Micros,
        dir: Direction,
        offset: u64,
        len: u64,
        out: &mut dyn EventSink,
    ) {
        self.settle(out);
        if let Stage::Decoding(d) = &mut self.stage {
            d.gap(at, dir, offset, len, out);
        }
    }

    pub fn end(&mut self, at: Micros, dir: Direction, how: StreamEnd, out: &mut dyn EventSink) {
        self.settle(out);
        if let Stage::Decoding(d) = &mut self.stage {
            d.end(at, dir, how, out);
        }
    }

    fn start(&mut self, protocol: Protocol, out: &mut dyn EventSink) {
        let Stage::Sniffing { prefix, held } =
            std::mem::replace(&mut self.stage, Stage::Opaque(protocol))
        else {
            return;
        };
        let Some(mut decoder) = (self.factory)(protocol, &self.ctx) else {
            return;
        };
        let mut used = [0usize; 2];
        for h in held {
            let i = h.dir.index();
            out.set_frame(Some(h.frame));
            decoder.data(
                Chunk {
                    at: h.at,
                    frame: h.frame,
                    direction: h.dir,
                    stream_offset: h.offset,
                    bytes: &prefix[i][used[i]..used[i] + h.len],
                },
                out,
            );
            used[i] += h.len;
        }
        self.stage = Stage::Decoding(decoder);
    }
}
