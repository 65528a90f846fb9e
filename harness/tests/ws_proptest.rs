//! Properties of the WebSocket decoder: encode → decode gives back every
//! frame; any chunking of the same bytes gives the same events; binary
//! messages, however fragmented and interleaved with control frames, give
//! back their bytes as the inner stream; arbitrary bytes never panic and
//! every finding is located.

mod ws_support;

use proptest::prelude::*;
use tether::decode::ws::frame::{FrameSpec, LengthForm, OP_BINARY, OP_CONTINUATION, OP_PING};
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
            .server(FrameSpec::new(OP_BINARY, b"RFB 003.008\n".to_vec()));
        let mut want = b"RFB 003.008\n".to_vec();
        for (payload, parts, ping) in &msgs {
            want.extend_from_slice(payload);
            let size = payload.len().div_ceil(*parts).max(1);
            let pieces: Vec<&[u8]> = if payload.is_empty() { vec![&[][..]] } else { payload.chunks(size).collect() };
            for (i, p) in pieces.iter().enumerate() {
                let op = if i == 0 { OP_BINARY } else { OP_CONTINUATION };
                conv = conv.server(FrameSpec::new(op, p.to_vec()).fin(i + 1 == pieces.len()));
                if *ping && i == 0 {
                    conv = conv.server(FrameSpec::new(OP_PING, b"hb".to_vec()));
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
