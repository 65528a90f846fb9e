//! The byte stream carried inside WebSocket data messages, handed to an
//! inner decoder (RFB, SPICE, ...) picked by sniffing its first bytes,
//! exactly as the pipeline does for raw TCP.

use crate::decode::sniff::{self, MAX_SNIFF_BYTES, Protocol, Sniff};
use crate::decode::{Chunk, EventSink, StreamContext, StreamDecoder, StreamEnd, decoder_for};
use crate::timeline::{Direction, Micros};

/// Builds the inner decoder once the protocol is known. The default is
/// [`decoder_for`]; tests substitute a recorder.
pub type InnerFactory = fn(Protocol, &StreamContext) -> Option<Box<dyn StreamDecoder>>;

struct Pending {
    at: Micros,
    frame: u64,
    dir: Direction,
    offset: u64,
    len: usize,
}

enum Stage {
    Sniffing {
        prefix: [Vec<u8>; 2],
        pending: Vec<Pending>,
    },
    Decoding(Box<dyn StreamDecoder>),
    /// No decoder for it; the label (if any) still shows in the stack.
    Opaque(Option<&'static str>),
}

pub struct InnerStream {
    stage: Stage,
    /// Bytes handed on so far each way: the inner stream offsets.
    offsets: [u64; 2],
    ctx: StreamContext,
    factory: InnerFactory,
    ended: [bool; 2],
}

impl InnerStream {
    pub fn new(ctx: StreamContext, factory: InnerFactory) -> InnerStream {
        InnerStream {
            stage: Stage::Sniffing {
                prefix: [Vec::new(), Vec::new()],
                pending: Vec::new(),
            },
            offsets: [0, 0],
            ctx,
            factory,
            ended: [false, false],
        }
    }

    /// A stream whose protocol is known beforehand: no sniffing.
    pub fn with_decoder(ctx: StreamContext, decoder: Box<dyn StreamDecoder>) -> InnerStream {
        InnerStream {
            stage: Stage::Decoding(decoder),
            ..InnerStream::new(ctx, default_factory)
        }
    }

    /// The inner decoder's stack without its "tcp", or what sniffing named.
    pub fn stack_tail(&self) -> Vec<&'static str> {
        match &self.stage {
            Stage::Decoding(d) => d.stack().into_iter().filter(|s| *s != "tcp").collect(),
            Stage::Opaque(Some(label)) => vec![label],
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
        match &mut self.stage {
            Stage::Decoding(d) => d.data(chunk, out),
            Stage::Opaque(_) => {}
            Stage::Sniffing { prefix, pending } => {
                let p = &mut prefix[dir.index()];
                let take = bytes.len().min(MAX_SNIFF_BYTES.saturating_sub(p.len()));
                p.extend_from_slice(&bytes[..take]);
                pending.push(Pending {
                    at,
                    frame,
                    dir,
                    offset,
                    len: take,
                });
                let full = prefix[0].len() + prefix[1].len() >= MAX_SNIFF_BYTES;
                let protocol = match sniff::sniff(&prefix[0], &prefix[1]) {
                    Sniff::Known(p) => p,
                    Sniff::NeedMore if full || take < bytes.len() => Protocol::Unknown,
                    Sniff::NeedMore => return,
                };
                self.start(protocol, out);
                if take < bytes.len()
                    && let Stage::Decoding(d) = &mut self.stage
                {
                    d.data(
                        Chunk {
                            stream_offset: offset + take as u64,
                            bytes: &bytes[take..],
                            ..chunk
                        },
                        out,
                    );
                }
            }
        }
    }

    fn start(&mut self, protocol: Protocol, out: &mut dyn EventSink) {
        let Stage::Sniffing { prefix, pending } =
            std::mem::replace(&mut self.stage, Stage::Opaque(None))
        else {
            return;
        };
        let Some(mut decoder) = (self.factory)(protocol, &self.ctx) else {
            self.stage = Stage::Opaque(match protocol {
                Protocol::Tls => Some("tls"),
                Protocol::Http => Some("http"),
                _ => None,
            });
            return;
        };
        let mut used = [0usize; 2];
        for p in pending {
            let i = p.dir.index();
            decoder.data(
                Chunk {
                    at: p.at,
                    frame: p.frame,
                    direction: p.dir,
                    stream_offset: p.offset,
                    bytes: &prefix[i][used[i]..used[i] + p.len],
                },
                out,
            );
            used[i] += p.len;
        }
        self.stage = Stage::Decoding(decoder);
    }

    /// Inner bytes were lost (a gap inside a data frame's payload).
    pub fn gap(&mut self, at: Micros, dir: Direction, len: u64, out: &mut dyn EventSink) {
        if let Stage::Sniffing { .. } = self.stage {
            self.settle(out);
        }
        let offset = self.offsets[dir.index()];
        self.offsets[dir.index()] += len;
        if let Stage::Decoding(d) = &mut self.stage {
            d.gap(at, dir, offset, len, out);
        }
    }

    pub fn end(&mut self, at: Micros, dir: Direction, how: StreamEnd, out: &mut dyn EventSink) {
        if self.ended[dir.index()] {
            return;
        }
        self.ended[dir.index()] = true;
        self.settle(out);
        if let Stage::Decoding(d) = &mut self.stage {
            d.end(at, dir, how, out);
        }
    }

    /// Decide on what sniffing has, if it is still waiting.
    fn settle(&mut self, out: &mut dyn EventSink) {
        if let Stage::Sniffing { prefix, .. } = &self.stage {
            if prefix[0].is_empty() && prefix[1].is_empty() {
                return;
            }
            let protocol = match sniff::sniff(&prefix[0], &prefix[1]) {
                Sniff::Known(p) => p,
                Sniff::NeedMore => Protocol::Unknown,
            };
            self.start(protocol, out);
        }
    }
}

impl InnerStream {
    /// The inner decoder's session and channel (SPICE inside TLS).
    pub fn session(&self) -> Option<crate::decode::SessionInfo> {
        match &self.stage {
            Stage::Decoding(d) => d.session(),
            _ => None,
        }
    }
}

/// The production factory.
pub fn default_factory(protocol: Protocol, ctx: &StreamContext) -> Option<Box<dyn StreamDecoder>> {
    decoder_for(protocol, ctx)
}
