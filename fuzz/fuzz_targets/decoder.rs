//! Any bytes, cut into any chunks in either direction, into each protocol
//! decoder (WebSocket hands its inner stream on to RFB or SPICE): never a
//! panic, and every finding is located. Chunking invariance is proptested
//! per decoder, where equal timestamps can be arranged.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tether::decode::{Chunk, MessageLimits, Protocol, StreamContext, StreamEnd, decoder_for};
use tether::timeline::{Direction, Event, Micros};

#[derive(Arbitrary, Debug)]
struct Input {
    protocol: u8,
    mid_stream_channel: Option<u8>,
    /// Tiny message limits, so the limit paths run too.
    small_limits: bool,
    /// Where each piece ends, as offsets modulo the stream length.
    cuts: Vec<u16>,
    /// Which direction each piece goes; the pieces of one direction keep
    /// their order.
    directions: Vec<bool>,
    bytes: Vec<u8>,
}

fn protocol(n: u8) -> Protocol {
    match n % 3 {
        0 => Protocol::WebSocket,
        1 => Protocol::Rfb,
        _ => Protocol::Spice,
    }
}

fn run(input: &Input, cuts: &[usize]) -> Vec<Event> {
    let limits = if input.small_limits {
        MessageLimits {
            spice_client_body: 64,
            spice_server_body: 256,
            ws_message: 128,
        }
    } else {
        MessageLimits::default()
    };
    let ctx = StreamContext {
        mid_stream_spice_channel: input.mid_stream_channel,
        limits,
        ..StreamContext::default()
    };
    let Some(mut decoder) = decoder_for(protocol(input.protocol), &ctx) else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let mut offsets = [0u64; 2];
    let mut start = 0;
    for (i, &end) in cuts.iter().enumerate() {
        let direction = if input.directions.get(i).copied().unwrap_or(i % 2 == 0) {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        let bytes = &input.bytes[start..end];
        decoder.data(
            Chunk {
                at: Micros(1_000 * i as u64),
                frame: i as u64 + 1,
                direction,
                stream_offset: offsets[direction.index()],
                bytes,
            },
            &mut events,
        );
        offsets[direction.index()] += bytes.len() as u64;
        start = end;
    }
    let end = Micros(1_000 * cuts.len() as u64);
    decoder.end(end, Direction::ClientToServer, StreamEnd::Fin, &mut events);
    decoder.end(end, Direction::ServerToClient, StreamEnd::EndOfCapture, &mut events);
    events
}

fuzz_target!(|input: Input| {
    let len = input.bytes.len();
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| if len == 0 { 0 } else { usize::from(c) % (len + 1) })
        .collect();
    cuts.push(len);
    cuts.sort_unstable();
    cuts.dedup();
    for event in run(&input, &cuts) {
        if let tether::timeline::EventKind::Finding(f) = &event.kind {
            assert!(f.location.stream_offset.is_some() || f.location.frame.is_some());
        }
    }
});
