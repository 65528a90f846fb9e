//! The rfb decoder (placeholder: frames nothing yet; its own issue fills it in).

use crate::decode::{Chunk, EventSink, StreamContext, StreamDecoder, StreamEnd};
use crate::timeline::{Direction, Micros};

pub struct RfbDecoder {}

impl RfbDecoder {
    pub fn new(_ctx: &StreamContext) -> RfbDecoder {
        RfbDecoder {}
    }
}

impl StreamDecoder for RfbDecoder {
    fn stack(&self) -> Vec<&'static str> {
        vec!["tcp", "rfb"]
    }
    fn data(&mut self, _chunk: Chunk<'_>, _out: &mut dyn EventSink) {}
    fn gap(&mut self, _at: Micros, _d: Direction, _o: u64, _len: u64, _out: &mut dyn EventSink) {}
    fn end(&mut self, _at: Micros, _d: Direction, _how: StreamEnd, _out: &mut dyn EventSink) {}
}
