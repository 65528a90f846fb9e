//! Reassembly properties: any segmentation, reordering and duplication of
//! a byte stream reassembles to exactly the original bytes, with a gap
//! event exactly where bytes never arrived.

use proptest::prelude::*;
use std::net::SocketAddr;
use tether::capture::TcpSegment;
use tether::flow::{FlowConfig, FlowEvent, FlowSink, Reassembler};
use tether::timeline::{Direction, Micros};

fn seg<'a>(frame: u64, seq: u32, syn: bool, fin: bool, payload: &'a [u8]) -> TcpSegment<'a> {
    TcpSegment {
        ts: Micros(frame),
        ack_flag: false,
        ..between(
            frame,
            ("10.0.0.1:1234", "10.0.0.2:80"),
            seq,
            (syn, fin),
            payload,
        )
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Data(u64, Vec<u8>),
    Gap(u64, u64),
    Fin,
}

fn reassemble(isn: u32, stream_len: usize, pieces: &[(usize, Vec<u8>)]) -> Vec<Out> {
    let mut out = Vec::new();
    let mut sink = |e: FlowEvent<'_>| match e {
        FlowEvent::Data {
            dir, offset, bytes, ..
        } => {
            assert_eq!(dir, Direction::ClientToServer);
            out.push(Out::Data(offset, bytes.to_vec()));
        }
        FlowEvent::Gap { offset, len, .. } => out.push(Out::Gap(offset, len)),
        FlowEvent::Fin { .. } => out.push(Out::Fin),
        _ => {}
    };
    let mut r = Reassembler::new(FlowConfig::default());
    r.segment(&seg(0, isn, true, false, b""), &mut sink);
    for (i, (off, bytes)) in pieces.iter().enumerate() {
        let seq = isn.wrapping_add(1).wrapping_add(*off as u32);
        r.segment(&seg(i as u64 + 1, seq, false, false, bytes), &mut sink);
    }
    let fin_seq = isn.wrapping_add(1).wrapping_add(stream_len as u32);
    r.segment(
        &seg(pieces.len() as u64 + 1, fin_seq, false, true, b""),
        &mut sink,
    );
    r.finish(&mut sink);
    out
}

/// Cuts `data` into segments, drops some, duplicates some (re-cut), and
/// shuffles within a window.
/// (initial sequence number, original stream, segments as (offset, bytes))
type Scenario = (u32, Vec<u8>, Vec<(usize, Vec<u8>)>);

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just(u32::MAX - 700), any::<u32>()],
        prop::collection::vec(any::<u8>(), 1..3000),
        prop::collection::vec(1usize..400, 1..40),
        prop::collection::vec((any::<bool>(), any::<bool>(), 0usize..5), 1..40),
        any::<u64>(),
    )
        .prop_map(|(isn, data, cuts, fates, seed)| {
            let mut pieces = Vec::new();
            let mut off = 0;
            let mut i = 0;
            while off < data.len() {
                let len = cuts[i % cuts.len()].min(data.len() - off);
                let (drop, dup, shift) = fates[i % fates.len()];
                if !drop || i % 3 != 0 {
                    pieces.push((off, data[off..off + len].to_vec()));
                }
                if dup {
                    // A retransmission cut differently: overlaps its neighbours.
                    let from = off.saturating_sub(shift * 7);
                    let to = (off + len + shift * 5).min(data.len());
                    pieces.push((from, data[from..to].to_vec()));
                }
                off += len;
                i += 1;
            }
            // Deterministic shuffle within windows of 4 segments.
            let mut s = seed;
            for w in pieces.chunks_mut(4) {
                for k in (1..w.len()).rev() {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    w.swap(k, (s >> 33) as usize % (k + 1));
                }
            }
            (isn, data, pieces)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn reassembles_exactly_with_gaps_where_bytes_are_missing((isn, data, pieces) in scenario()) {
        let mut covered = vec![false; data.len()];
        for (off, b) in &pieces {
            for c in &mut covered[*off..*off + b.len()] { *c = true; }
        }
        let out = reassemble(isn, data.len(), &pieces);

        // Rebuild: data runs must carry the original bytes at their offsets,
        // gaps must be exactly the uncovered runs, in order, once each.
        let mut pos = 0u64;
        let mut expected_gaps = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if !covered[i] {
                let start = i;
                while i < data.len() && !covered[i] { i += 1; }
                expected_gaps.push((start as u64, (i - start) as u64));
            } else { i += 1; }
        }
        let mut gaps = Vec::new();
        let mut saw_fin = false;
        for o in &out {
            match o {
                Out::Data(off, b) => {
                    prop_assert_eq!(*off, pos, "data out of order");
                    prop_assert_eq!(&b[..], &data[*off as usize..*off as usize + b.len()]);
                    pos += b.len() as u64;
                }
                Out::Gap(off, len) => {
                    prop_assert_eq!(*off, pos, "gap out of order");
                    gaps.push((*off, *len));
                    pos += len;
                }
                Out::Fin => { saw_fin = true; prop_assert_eq!(pos, data.len() as u64); }
            }
        }
        prop_assert_eq!(pos, data.len() as u64);
        prop_assert!(saw_fin);
        prop_assert_eq!(gaps, expected_gaps);
    }
}

#[test]
fn inconsistent_retransmission_is_reported_and_first_bytes_win() {
    let mut diags = Vec::new();
    let mut data = Vec::new();
    let mut sink = |e: FlowEvent<'_>| match e {
        FlowEvent::Data { bytes, .. } => data.extend_from_slice(bytes),
        FlowEvent::Diagnostic(f) => diags.push(f),
        _ => {}
    };
    let mut r = Reassembler::new(FlowConfig::default());
    r.segment(&seg(1, 99, true, false, b""), &mut sink);
    r.segment(&seg(2, 100, false, false, b"hello"), &mut sink);
    r.segment(&seg(3, 100, false, false, b"HELLO"), &mut sink);
    // Out of order, then an overlapping copy that disagrees.
    r.segment(&seg(4, 110, false, false, b"world"), &mut sink);
    r.segment(&seg(5, 108, false, false, b"xxWORLD"), &mut sink);
    r.finish(&mut sink);
    // Bytes 5..8 never arrived (a gap); 8..10 came only in the second copy.
    assert_eq!(data, b"helloxxworld");
    let codes: Vec<_> = diags
        .iter()
        .map(|d| (d.code.as_ref(), d.location.frame, d.location.stream_offset))
        .collect();
    assert_eq!(
        codes,
        [
            ("flow.inconsistent_overlap", Some(3), Some(0)),
            ("flow.inconsistent_overlap", Some(5), Some(10))
        ]
    );
}

#[test]
fn new_syn_on_a_closed_four_tuple_is_a_new_connection() {
    let mut opens = 0;
    let mut sink = |e: FlowEvent<'_>| {
        if let FlowEvent::Open { .. } = e {
            opens += 1
        }
    };
    let mut r = Reassembler::new(FlowConfig::default());
    r.segment(&seg(1, 10, true, false, b""), &mut sink);
    r.segment(&seg(2, 10, true, false, b""), &mut sink); // SYN retransmission
    r.segment(&seg(3, 11, false, false, b"abc"), &mut sink);
    r.segment(&seg(4, 14, false, true, b""), &mut sink);
    r.segment(&seg(5, 5000, true, false, b""), &mut sink); // port reuse
    r.segment(&seg(6, 5001, false, false, b"de"), &mut sink);
    r.finish(&mut sink);
    assert_eq!(opens, 2);
    let s = r.summaries();
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].c2s.bytes, s[1].c2s.bytes), (3, 2));
}

#[test]
fn acked_but_never_captured_bytes_become_a_gap_at_once() {
    let mut events = Vec::new();
    let mut sink = |e: FlowEvent<'_>| match e {
        FlowEvent::Gap {
            offset, len, frame, ..
        } => events.push(format!("gap {offset}+{len} @{frame}")),
        FlowEvent::Data {
            offset,
            bytes,
            frame,
            ..
        } => events.push(format!("data {offset}+{} @{frame}", bytes.len())),
        _ => {}
    };
    let mut r = Reassembler::new(FlowConfig::default());
    r.segment(&seg(1, 99, true, false, b""), &mut sink);
    r.segment(&seg(2, 100, false, false, b"0123"), &mut sink);
    // Bytes 4..8 are lost from the capture; 8..12 arrive and wait.
    r.segment(&seg(3, 108, false, false, b"89ab"), &mut sink);
    // The server acknowledges everything up to 12.
    let mut ack = seg(4, 7000, false, false, b"");
    std::mem::swap(&mut ack.src, &mut ack.dst);
    ack.ack_flag = true;
    ack.ack = 112;
    r.segment(&ack, &mut sink);
    assert_eq!(events, ["data 0+4 @2", "gap 4+4 @4", "data 8+4 @4"]);
}

/// A segment between two addresses at a time, with the flags given.
fn between<'a>(
    at_s: u64,
    (src, dst): (&str, &str),
    seq: u32,
    (syn, fin): (bool, bool),
    payload: &'a [u8],
) -> TcpSegment<'a> {
    TcpSegment {
        frame: at_s,
        ts: Micros(at_s * 1_000_000),
        src: src.parse::<SocketAddr>().unwrap(),
        dst: dst.parse::<SocketAddr>().unwrap(),
        seq,
        ack: 0,
        syn,
        // Only a client's SYN lacks the ACK flag.
        ack_flag: !syn || src.starts_with("10.0.0.2"),
        fin,
        rst: false,
        payload,
        missing_tail: 0,
        window: 1024,
        wire_len: 54 + payload.len() as u32,
    }
}

/// A closed connection is still matched for twice the maximum segment
/// lifetime (240 s); after that it is let go of, and a segment on its
/// addresses opens a new connection, as a new incarnation would.
#[test]
fn closed_connections_are_let_go_after_twice_the_segment_lifetime() {
    const C: &str = "10.0.0.1:1234";
    const S: &str = "10.0.0.2:80";
    const OTHER: (&str, &str) = ("10.0.0.3:999", "10.0.0.2:80");
    for (late_at, opens) in [(100, 2), (400, 3)] {
        let mut open_ids = Vec::new();
        let mut sink = |e: FlowEvent<'_>| {
            if let FlowEvent::Open { conn, .. } = e {
                open_ids.push(conn.0);
            }
        };
        let mut r = Reassembler::new(FlowConfig::default());
        r.segment(&between(1, (C, S), 10, (true, false), b""), &mut sink);
        r.segment(&between(1, (S, C), 70, (true, false), b""), &mut sink);
        r.segment(&between(2, (C, S), 11, (false, false), b"abc"), &mut sink);
        r.segment(&between(3, (C, S), 14, (false, true), b""), &mut sink);
        r.segment(&between(3, (S, C), 71, (false, true), b""), &mut sink);
        // Another client keeps the capture going.
        for t in (10..late_at).step_by(30) {
            r.segment(
                &between(t, OTHER, t as u32, (false, false), b"x"),
                &mut sink,
            );
        }
        // A late copy of the client's data.
        r.segment(
            &between(late_at, (C, S), 11, (false, false), b"abc"),
            &mut sink,
        );
        r.finish(&mut sink);
        assert_eq!(open_ids.len(), opens, "late segment at {late_at} s");
        assert_eq!(r.summaries()[0].c2s.bytes, 3);
    }
}

/// A segment with its acknowledgement number.
fn acked<'a>(
    at_s: u64,
    (src, dst): (&str, &str),
    seq: u32,
    ack: u32,
    payload: &'a [u8],
) -> TcpSegment<'a> {
    TcpSegment {
        ack,
        ack_flag: true,
        ..between(at_s, (src, dst), seq, (false, false), payload)
    }
}

/// Opens a connection with a full handshake at 1 s (client ISN 10,
/// server's 70).
fn handshake(r: &mut Reassembler, sink: &mut dyn FlowSink, client: &str, server: &str) {
    r.segment(&between(1, (client, server), 10, (true, false), b""), sink);
    let mut syn_ack = between(1, (server, client), 70, (true, false), b"");
    syn_ack.ack = 11;
    r.segment(&syn_ack, sink);
    r.segment(&acked(1, (client, server), 11, 71, b""), sink);
}

/// Another client's traffic every 30 s from `from` to `to`, so the
/// capture goes on; the connections let go of are in `released`, none
/// before `not_before`.
fn capture_goes_on(
    r: &mut Reassembler,
    sink: &mut dyn FlowSink,
    released: &std::cell::RefCell<Vec<u32>>,
    (from, to): (u64, u64),
    not_before: u64,
) {
    for t in (from..to).step_by(30) {
        let other = ("10.0.0.9:999", "10.0.0.2:80");
        r.segment(&between(t, other, t as u32, (false, false), b"x"), sink);
        if t < not_before {
            assert!(released.borrow().is_empty(), "let go of at {t} s");
        }
    }
}

/// Records the connections let go of.
fn releases(released: &std::cell::RefCell<Vec<u32>>) -> impl FnMut(FlowEvent<'_>) + '_ {
    |e: FlowEvent<'_>| {
        if let FlowEvent::Released { conn } = e {
            released.borrow_mut().push(conn.0);
        }
    }
}

/// An open connection whose sender retransmitted unacknowledged bytes and
/// then fell silent was given up by its TCP (a live sender retransmits
/// within TCP_RTO_MAX, 120 s): it is let go of 240 s after its last
/// segment, as a closed one is. One whose bytes were all acknowledged
/// stays however long it idles (a VNC viewer with nothing to draw).
#[test]
fn a_connection_its_sender_gave_up_on_is_let_go_of_as_a_closed_one() {
    const S: &str = "10.0.0.2:5900";
    let released = std::cell::RefCell::new(Vec::new());
    let mut sink = releases(&released);
    let mut r = Reassembler::new(FlowConfig::default());
    for (client, retransmits) in [("10.0.0.1:1000", true), ("10.0.0.3:1000", false)] {
        handshake(&mut r, &mut sink, client, S);
        r.segment(&acked(2, (S, client), 71, 11, b"RFB 003.008\n"), &mut sink);
        if retransmits {
            // The path died: the server's bytes go unacknowledged and are
            // sent again with backoff, then nothing.
            for t in [3, 5, 9, 17] {
                r.segment(&acked(t, (S, client), 71, 11, b"RFB 003.008\n"), &mut sink);
            }
        } else {
            r.segment(&acked(2, (client, S), 11, 83, b""), &mut sink);
        }
    }
    // Let go of once quiet 240 s past its last retransmission, not before.
    capture_goes_on(&mut r, &mut sink, &released, (20, 1000), 17 + 240);
    assert_eq!(
        *released.borrow(),
        [0],
        "only the given-up connection is let go of"
    );
    r.finish(&mut sink);
    assert!(tether::flow::abandoned(&r.summaries()[0]));
    assert!(!tether::flow::abandoned(&r.summaries()[1]));
}

/// A connection one side closed (its FIN acknowledged) and the other
/// never did (a frozen client after its server's timer closed) is let go
/// of 240 s after its last segment: the closing side's kernel drops an
/// orphaned FIN-WAIT-2 after tcp_fin_timeout (60 s).
#[test]
fn a_half_closed_quiet_connection_is_let_go_of() {
    const C: &str = "10.0.0.1:1000";
    const S: &str = "10.0.0.2:5930";
    let released = std::cell::RefCell::new(Vec::new());
    let mut sink = releases(&released);
    let mut r = Reassembler::new(FlowConfig::default());
    handshake(&mut r, &mut sink, C, S);
    let mut fin = acked(60, (S, C), 71, 11, b"");
    fin.fin = true;
    r.segment(&fin, &mut sink);
    r.segment(&acked(60, (C, S), 11, 72, b""), &mut sink);
    capture_goes_on(&mut r, &mut sink, &released, (70, 600), 60 + 240);
    assert_eq!(*released.borrow(), [0]);
}
