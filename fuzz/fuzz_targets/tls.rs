//! Any bytes as a TLS connection, cut into any chunks either way, with any
//! key log text: never a panic, every finding located, memory bounded by
//! one record and one handshake message per direction.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use tether::decode::tls::keylog::{KeyLog, KeyStore};
use tether::decode::{Chunk, Protocol, StreamContext, StreamEnd, decoder_for};
use tether::timeline::{Direction, EventKind, Micros};

#[derive(Arbitrary, Debug)]
struct Input {
    keylog: Vec<u8>,
    cuts: Vec<u16>,
    directions: Vec<bool>,
    bytes: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut findings = Vec::new();
    let log = KeyLog::parse(&input.keylog, "fuzz.keys", &mut findings);
    let ctx = StreamContext {
        keys: Some(Arc::new(KeyStore::new(log))),
        ..StreamContext::default()
    };
    let Some(mut decoder) = decoder_for(Protocol::Tls, &ctx) else {
        return;
    };
    let len = input.bytes.len();
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| if len == 0 { 0 } else { usize::from(c) % (len + 1) })
        .collect();
    cuts.push(len);
    cuts.sort_unstable();
    cuts.dedup();
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
    decoder.end(end, Direction::ServerToClient, StreamEnd::Rst, &mut events);
    for event in &events {
        if let EventKind::Finding(f) = &event.kind {
            assert!(f.location.stream_offset.is_some() || f.location.frame.is_some(), "{f:?}");
        }
    }
});
