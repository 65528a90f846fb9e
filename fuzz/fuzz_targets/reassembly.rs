//! Arbitrary segment sequences on a few 4-tuples: reassembly never panics,
//! never delivers more bytes than it was given, and never goes backwards.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::net::SocketAddr;
use tether::capture::TcpSegment;
use tether::flow::{FlowConfig, FlowEvent, Reassembler};
use tether::timeline::Micros;

#[derive(Arbitrary, Debug)]
struct Seg {
    pair: u8,
    reverse: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    missing_tail: u8,
    window: u16,
    payload: Vec<u8>,
}

fuzz_target!(|segs: Vec<Seg>| {
    let mut r = Reassembler::new(FlowConfig {
        max_out_of_order_bytes: 4096,
        max_connections: 3,
    });
    let given: u64 = segs.iter().map(|s| s.payload.len() as u64 + u64::from(s.missing_tail)).sum();
    let mut delivered = 0u64;
    let mut next: HashMap<(u32, bool), u64> = HashMap::new();
    let mut sink = |e: FlowEvent<'_>| match e {
        FlowEvent::Data { conn, dir, offset, bytes, .. } => {
            let n = next.entry((conn.0, dir.index() == 0)).or_insert(0);
            assert_eq!(offset, *n, "data must continue where the stream is");
            *n += bytes.len() as u64;
            delivered += bytes.len() as u64;
        }
        FlowEvent::Gap { conn, dir, offset, len, .. } => {
            let n = next.entry((conn.0, dir.index() == 0)).or_insert(0);
            assert_eq!(offset, *n);
            *n += len;
        }
        _ => {}
    };
    for (i, s) in segs.iter().enumerate() {
        let a: SocketAddr = format!("10.0.0.{}:{}", s.pair % 4, 1000 + u16::from(s.pair % 3)).parse().unwrap();
        let b: SocketAddr = "10.9.9.9:5900".parse().unwrap();
        let (src, dst) = if s.reverse { (b, a) } else { (a, b) };
        let seg = TcpSegment {
            frame: i as u64 + 1,
            ts: Micros(i as u64),
            src,
            dst,
            seq: s.seq,
            ack: s.ack,
            syn: s.flags & 1 != 0,
            ack_flag: s.flags & 2 != 0,
            fin: s.flags & 4 != 0,
            rst: s.flags & 8 != 0,
            window: s.window,
            payload: &s.payload,
            missing_tail: u32::from(s.missing_tail),
            wire_len: 54,
        };
        r.segment(&seg, &mut sink);
    }
    r.finish(&mut sink);
    assert!(delivered <= given);
});
