//! Properties of the WebSocket decoder: encode → decode gives back every
//! frame; any chunking of the same bytes gives the same events; binary
//! messages, however fragmented and interleaved with control frames, give
//! back their bytes as the inner stream; arbitrary bytes never panic and
//! every finding is located.

mod ws_support;

use proptest::prelude::*;
use tether::decode::ws::frame::{FrameSpec, LengthForm, OpCode};
use tether::timeline::{Direction, EventKind};
use ws_support::*;

fn arb_frame() -> impl Strategy<Value = (Direction, FrameSpec)> {
    (
        any::<bool>(),
        prop_oneof![
            Just(0u8),
            Just(1),
            Just(2),
            Just(8),
            Just(9),
            Just(10),
            3u8..8,
            11u8..16
        ],
        any::<bool>(),
        0u8..8,
        proptest::option::of(any::<[u8; 4]>()),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..130),
            proptest::collection::vec(any::<u8>(), 126..400),
        ],
        0u8..3,
    )
        .prop_map(|(c2s, opcode, fin, rsv, mask, payload, form)| {
            let len = payload.len();
            let form = match form {
                0 if len <= 125 => LengthForm::Short,
                0 | 1 => LengthForm::Ext16,
                _ => LengthForm::Ext64,
            };
            let mut f = FrameSpec::new(opcode, payload).fin(fin).rsv(rsv).form(form);
            f.mask = mask;
            (if c2s { C2S } else { S2C }, f)
        })
}

fn conv_of(frames: &[(Direction, FrameSpec)]) -> Conv {
    let mut conv = Conv::upgraded();
    for (dir, f) in frames {
        conv = conv.bytes(*dir, f.encode());
    }
    conv
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_encoded_frame_is_decoded_back(frames in proptest::collection::vec(arb_frame(), 0..12)) {
        let conv = conv_of(&frames);
        let ev = run(&conv, Chop::Writes);
        let got: Vec<(Direction, bool, u64, u64, bool, u64, u64)> = ws_support::frames(&ev)
            .iter()
            .map(|e| {
                let g = |k| detail(e, k).unwrap().clone();
                let EventKind::Message { len, .. } = &e.kind else { unreachable!() };
                (
                    e.direction.unwrap(),
                    g("fin").as_bool().unwrap(),
                    g("rsv").as_u64().unwrap(),
                    g("opcode").as_u64().unwrap(),
                    g("masked").as_bool().unwrap(),
                    g("payload_len").as_u64().unwrap(),
                    *len,
                )
            })
            .collect();
        let want: Vec<_> = frames
            .iter()
            .map(|(d, f)| {
                (
                    *d,
                    f.fin,
                    u64::from(f.rsv),
                    u64::from(f.opcode),
                    f.mask.is_some(),
                    f.payload.len() as u64,
                    f.encode().len() as u64,
                )
            })
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn any_chunking_gives_identical_events(
        frames in proptest::collection::vec(arb_frame(), 0..10),
        cuts in proptest::collection::vec(1usize..40, 1..20),
    ) {
        let conv = conv_of(&frames);
        let whole = normalized(&run(&conv, Chop::Writes));
        // Re-cut every write at the given sizes, cycling through them.
        let mut recut = Conv::default();
        let mut k = 0;
        for (dir, bytes) in &conv.writes {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = cuts[k % cuts.len()].min(rest.len());
                k += 1;
                recut.writes.push((*dir, rest[..n].to_vec()));
                rest = &rest[n..];
            }
        }
        prop_assert_eq!(&whole, &normalized(&run(&recut, Chop::Writes)));
        prop_assert_eq!(&whole, &normalized(&run(&conv, Chop::Octets)));
    }

    #[test]
    fn fragmented_binary_messages_are_the_inner_stream(
        msgs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..300), 1usize..5, any::<bool>()),
            1..6,
        ),
    ) {
        let mut conv = Conv::upgraded()
            // The inner stream sniffs as RFB; everything after is opaque bytes.
            .server(FrameSpec::new(OpCode::Binary, b"RFB 003.008\n".to_vec()));
        let mut want = b"RFB 003.008\n".to_vec();
        for (payload, parts, ping) in &msgs {
            want.extend_from_slice(payload);
            let size = payload.len().div_ceil(*parts).max(1);
            let pieces: Vec<&[u8]> = if payload.is_empty() { vec![&[][..]] } else { payload.chunks(size).collect() };
            for (i, p) in pieces.iter().enumerate() {
                let op = if i == 0 { OpCode::Binary } else { OpCode::Continuation };
                conv = conv.server(FrameSpec::new(op, p.to_vec()).fin(i + 1 == pieces.len()));
                if *ping && i == 0 {
                    conv = conv.server(FrameSpec::new(OpCode::Ping, b"hb".to_vec()));
                }
            }
        }
        for chop in [Chop::Writes, Chop::Every(3)] {
            let r = run_with(&conv, chop, None, Some(recorder_factory));
            prop_assert!(codes(&r.events).is_empty(), "{:?}", codes(&r.events));
            prop_assert_eq!(inner_bytes(&r.events, S2C), want.clone());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_findings_are_located(
        c2s in proptest::collection::vec(any::<u8>(), 0..600),
        s2c in proptest::collection::vec(any::<u8>(), 0..600),
        cut in 1usize..50,
    ) {
        let conv = Conv::upgraded().bytes(C2S, c2s).bytes(S2C, s2c);
        let r = run_with(&conv, Chop::Every(cut), Some(tether::decode::StreamEnd::Fin), None);
        for e in &r.events {
            if let EventKind::Finding(f) = &e.kind {
                prop_assert!(f.location.direction.is_some() && f.location.stream_offset.is_some(), "{f}");
                // A 64-bit length over the message limit is a limit hit.
                prop_assert!(f.code.starts_with("ws.") || f.code == "limit.message_size", "{f}");
            }
        }
    }
}

/// A frame header written by hand from RFC 6455 §5.2, in the length form
/// asked (longer than needed is allowed on purpose).
fn header_bytes(
    fin: bool,
    rsv: u8,
    op: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    form: LengthForm,
) -> Vec<u8> {
    let mut b = vec![(u8::from(fin) << 7) | (rsv << 4) | op];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match form {
        LengthForm::Short => b.push(m | len as u8),
        LengthForm::Ext16 => {
            b.push(m | 126);
            b.extend((len as u16).to_be_bytes());
        }
        LengthForm::Ext64 => {
            b.push(m | 127);
            b.extend(len.to_be_bytes());
        }
    }
    if let Some(k) = mask {
        b.extend(k);
    }
    b
}

fn any_header() -> impl Strategy<Value = (bool, u8, u8, Option<[u8; 4]>, u64, LengthForm)> {
    (
        any::<bool>(),
        0u8..8,
        0u8..16,
        proptest::option::of(any::<[u8; 4]>()),
        prop_oneof![
            (0u64..126).prop_map(|n| (n, LengthForm::Short)),
            (0u64..=0xFFFF).prop_map(|n| (n, LengthForm::Ext16)),
            any::<u64>().prop_map(|n| (n, LengthForm::Ext64)),
        ],
    )
        .prop_map(|(fin, rsv, op, mask, (len, form))| (fin, rsv, op, mask, len, form))
}

proptest! {
    /// Encode, then parse with the nom parser: every field comes back,
    /// and the parser stops exactly at the header's end.
    #[test]
    fn nom_header_round_trips((fin, rsv, op, mask, len, form) in any_header(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let head = header_bytes(fin, rsv, op, mask, len, form);
        let mut bytes = head.clone();
        bytes.extend(&tail);
        let (rest, h) = tether::decode::ws::frame::header(&bytes).unwrap();
        prop_assert_eq!(rest, &tail[..]);
        prop_assert_eq!(
            (h.fin, h.rsv, h.opcode, h.mask, h.payload_len, h.form, h.header_len),
            (fin, rsv, OpCode::from(op), mask, len, form, head.len())
        );
        prop_assert_eq!(u8::from(h.opcode), op);
    }

    /// Any strict prefix of a header is `Incomplete`: never an error, never
    /// a panic, never a header read from too few bytes.
    #[test]
    fn nom_header_prefixes_are_incomplete((fin, rsv, op, mask, len, form) in any_header()) {
        let head = header_bytes(fin, rsv, op, mask, len, form);
        for k in 0..head.len() {
            let r = tether::decode::ws::frame::header(&head[..k]);
            prop_assert!(matches!(r, Err(nom::Err::Incomplete(_))), "prefix {k}: {r:?}");
        }
    }
}
