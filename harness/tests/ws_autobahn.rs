//! Conformance tests built from the Autobahn|Testsuite case groups
//! (`shared/corpora/autobahn-cases.md`). The suite tests a live peer; here
//! each case's exact byte stream (the fuzzer as client, masked frames, plus
//! the echoing peer where it matters) is decoded, and the frames, messages
//! and findings tether reports are checked. Every case is also decoded in
//! three choppings (one chunk per write, one byte per chunk, 7-byte chunks)
//! and must give identical events (the suite's "chops").
//!
//! | Autobahn case(s)   | what                                       | test                                   |
//! |--------------------|--------------------------------------------|----------------------------------------|
//! | 1.1.1-1.1.8        | text, lengths 0..65536, 997-byte chops     | `case_1_framing_lengths`               |
//! | 1.2.1-1.2.8        | binary, same                               | `case_1_framing_lengths`               |
//! | 2.1-2.4, 2.6       | ping payloads up to 125, octet-wise        | `case_2_pings_answered`                |
//! | 2.5                | ping over 125 bytes                        | `case_2_5_ping_too_long`               |
//! | 2.7-2.9            | unsolicited pong (then ping)               | `case_2_7_unsolicited_pong`            |
//! | 2.10, 2.11         | 10 pings back to back, answered            | `case_2_10_ten_pings`                  |
//! | 3.1-3.7            | RSV bits without extension                 | `case_3_reserved_bits`                 |
//! | 4.1.1-4.1.5        | reserved data opcodes 3-7                  | `case_4_reserved_opcodes`              |
//! | 4.2.1-4.2.5        | reserved control opcodes 11-15             | `case_4_reserved_opcodes`              |
//! | 5.1, 5.2           | fragmented ping / pong                     | `case_5_1_fragmented_control`          |
//! | 5.3-5.5            | text in 2 fragments                        | `case_5_3_two_fragments`               |
//! | 5.6-5.8            | ping between fragments                     | `case_5_6_ping_between_fragments`      |
//! | 5.9-5.14           | continuation with nothing to continue      | `case_5_9_orphan_continuation`         |
//! | 5.15-5.17          | orphan continuation among valid messages   | `case_5_15_orphan_among_valid`         |
//! | 5.18               | second fragment with opcode text           | `case_5_18_text_inside_fragmented`     |
//! | 5.19, 5.20         | long fragmented text, pings interleaved    | `case_5_19_pings_inside_long_message`  |
//! | 6.1.1-6.1.3        | zero-length text fragments                 | `case_6_1_empty_fragments`             |
//! | 6.2.1-6.2.4        | valid UTF-8 split inside code points       | `case_6_2_valid_split_utf8`            |
//! | 6.3.1, 6.3.2       | invalid UTF-8 whole and octet-wise         | `case_6_3_invalid_utf8`                |
//! | 6.4.1-6.4.4        | fail fast on the offending octet           | `case_6_4_fail_fast`                   |
//! | 6.5-6.23 (sample)  | Kuhn-style valid and invalid sequences     | `case_6_x_sequences`                   |
//! | 7.1.1-7.1.6        | frames after close                         | `case_7_1_after_close`                 |
//! | 7.3.1-7.3.6        | close payload lengths                      | `case_7_3_close_lengths`               |
//! | 7.5.1              | close reason not UTF-8                     | `case_7_5_1_close_reason_utf8`         |
//! | 7.7.1-7.7.13       | valid close codes                          | `case_7_7_valid_codes`                 |
//! | 7.9.1-7.9.9        | invalid close codes                        | `case_7_9_invalid_codes`               |
//! | 7.13.1, 7.13.2     | codes 5000, 65535                          | `case_7_13_undefined_codes`            |
//! | 9.1-9.6 (sizes)    | big and fragmented messages, chop sizes    | `case_9_limits`                        |
//! | 10.1.1             | 64 KiB text auto-fragmented at 1300        | `case_10_1_1_auto_fragmented`          |
//! | 12.x, 13.x         | permessage-deflate, context takeover or not| `case_12_13_permessage_deflate`        |
//!
//! Beyond Autobahn (rules it cannot probe from the server side): unmasked
//! client / masked server frames, non-minimal and top-bit lengths, close
//! not answered, TCP end without close, refused upgrade, bad accept.

mod ws_support;

use tether::decode::StreamEnd;
use tether::decode::ws::frame::{FrameSpec, LengthForm, OpCode};
use tether::timeline::{CloseKind, Event, EventKind, Micros, Severity};
use ws_support::*;

/// Decodes in three choppings, checks they agree, returns the per-write run.
fn decode(conv: &Conv) -> Vec<Event> {
    let whole = run(conv, Chop::Writes);
    for chop in [Chop::Octets, Chop::Every(7)] {
        let other = run(conv, chop);
        assert_eq!(normalized(&whole), normalized(&other), "chop {chop:?}");
    }
    whole
}

fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(reason);
    b
}

fn u(e: &Event, k: &str) -> u64 {
    detail(e, k).and_then(|v| v.as_u64()).unwrap_or(u64::MAX)
}

#[test]
fn case_1_framing_lengths() {
    for op in [OpCode::Text, OpCode::Binary] {
        for len in [0usize, 125, 126, 127, 128, 65535, 65536] {
            let conv = Conv::upgraded()
                .client(FrameSpec::new(op, text(len)))
                .server(FrameSpec::new(op, text(len)));
            let ev = if len < 1000 {
                decode(&conv)
            } else {
                // 1.x.8: 997-byte chops; one byte per chunk is too slow here.
                let a = run(&conv, Chop::Writes);
                assert_eq!(normalized(&a), normalized(&run(&conv, Chop::Every(997))));
                a
            };
            assert!(codes(&ev).is_empty(), "{op:?} {len}: {:?}", codes(&ev));
            let f = frames(&ev);
            assert_eq!(f.len(), 2);
            for (fe, masked) in f.iter().zip([true, false]) {
                assert_eq!(u(fe, "payload_len"), len as u64);
                assert_eq!(u(fe, "message_len"), len as u64);
                assert_eq!(detail(fe, "masked").unwrap(), masked);
                let header = 2 + if len > 65535 {
                    8
                } else if len > 125 {
                    2
                } else {
                    0
                };
                let want = (header + if masked { 4 } else { 0 } + len) as u64;
                match &fe.kind {
                    EventKind::Message { len, .. } => assert_eq!(*len, want),
                    _ => unreachable!(),
                }
            }
        }
    }
}

fn pongs(ev: &[Event]) -> Vec<(u64, Option<Micros>)> {
    ev.iter()
        .filter_map(|e| match &e.kind {
            EventKind::Pong {
                payload_len, rtt, ..
            } => Some((*payload_len, *rtt)),
            _ => None,
        })
        .collect()
}

#[test]
fn case_2_pings_answered() {
    let payloads: [Vec<u8>; 4] = [
        vec![],
        b"Hello, world!".to_vec(),
        vec![0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff],
        vec![0xfe; 125],
    ];
    for p in payloads {
        let conv = Conv::upgraded()
            .client(FrameSpec::new(OpCode::Ping, p.clone()))
            .server(FrameSpec::new(OpCode::Pong, p.clone()));
        let ev = decode(&conv);
        assert!(codes(&ev).is_empty(), "{:?}", codes(&ev));
        // Ping in write 3 (t=3 ms), pong in write 4 (t=4 ms).
        assert_eq!(pongs(&ev), vec![(p.len() as u64, Some(Micros(1000)))]);
    }
}

#[test]
fn case_2_5_ping_too_long() {
    let conv = Conv::upgraded().client(FrameSpec::new(OpCode::Ping, vec![0xfe; 126]));
    let ev = decode(&conv);
    assert_eq!(codes(&ev), vec!["ws.control_frame_too_long"]);
    // Still a ping on the timeline; decoding goes on.
    assert_eq!(name(frames(&ev)[0]), Some("ping"));
}

#[test]
fn case_2_7_unsolicited_pong() {
    let conv = Conv::upgraded()
        .client(FrameSpec::new(OpCode::Pong, b"unsolicited".to_vec()))
        .client(FrameSpec::new(OpCode::Ping, b"then a ping".to_vec()))
        .server(FrameSpec::new(OpCode::Pong, b"then a ping".to_vec()));
    let ev = decode(&conv);
    assert!(codes(&ev).is_empty());
    assert_eq!(pongs(&ev), vec![(11, None), (11, Some(Micros(1000)))]);
    assert_eq!(detail(frames(&ev)[0], "solicited").unwrap(), false);
}

#[test]
fn case_2_10_ten_pings() {
    let mut conv = Conv::upgraded();
    for i in 0..10 {
        conv = conv.client(FrameSpec::new(
            OpCode::Ping,
            format!("payload-{i}").into_bytes(),
        ));
    }
    for i in 0..10 {
        conv = conv.server(FrameSpec::new(
            OpCode::Pong,
            format!("payload-{i}").into_bytes(),
        ));
    }
    let ev = decode(&conv);
    let p = pongs(&ev);
    assert_eq!(p.len(), 10);
    // Ping i at write 3+i, pong i at write 13+i: each 10 ms later.
    assert!(
        p.iter().all(|(_, rtt)| *rtt == Some(Micros(10_000))),
        "{p:?}"
    );
}

#[test]
fn case_3_reserved_bits() {
    for rsv in 1..=7u8 {
        for op in [OpCode::Text, OpCode::Binary, OpCode::Ping, OpCode::Close] {
            let body = if op == OpCode::Close {
                close_body(1000, b"")
            } else {
                b"Hello".to_vec()
            };
            let conv = Conv::upgraded()
                .client(FrameSpec::new(OpCode::Text, b"valid first".to_vec()))
                .client(FrameSpec::new(op, body).rsv(rsv));
            let ev = decode(&conv);
            assert_eq!(codes(&ev), vec!["ws.reserved_bits"], "rsv {rsv} op {op:?}");
            assert_eq!(u(frames(&ev)[1], "rsv"), u64::from(rsv));
        }
    }
}

#[test]
fn case_4_reserved_opcodes() {
    for op in (3..=7u8).chain(11..=15) {
        for payload in [vec![], b"reserved".to_vec()] {
            let conv = Conv::upgraded()
                .client(FrameSpec::new(OpCode::Text, b"Hello".to_vec()))
                .client(FrameSpec::new(op, payload))
                .client(FrameSpec::new(OpCode::Ping, b"after".to_vec()));
            let ev = decode(&conv);
            assert_eq!(codes(&ev), vec!["ws.reserved_opcode"], "op {op}");
            let names: Vec<_> = frames(&ev).iter().map(|e| name(e).unwrap()).collect();
            assert_eq!(names, vec!["text", "reserved_opcode", "ping"]);
        }
    }
}

#[test]
fn case_5_1_fragmented_control() {
    for op in [OpCode::Ping, OpCode::Pong] {
        let conv = Conv::upgraded()
            .client(FrameSpec::new(op, b"frag".to_vec()).fin(false))
            .client(FrameSpec::new(OpCode::Continuation, b"ment".to_vec()));
        let ev = decode(&conv);
        assert_eq!(
            codes(&ev),
            vec![
                "ws.fragmented_control_frame",
                "ws.continuation_without_start"
            ]
        );
    }
}

#[test]
fn case_5_3_two_fragments() {
    let conv = Conv::upgraded()
        .client(FrameSpec::new(OpCode::Text, b"fragment1".to_vec()).fin(false))
        .client(FrameSpec::new(OpCode::Continuation, b"fragment2".to_vec()));
    let ev = decode(&conv);
    assert!(codes(&ev).is_empty());
    let f = frames(&ev);
    assert_eq!(detail(f[1], "text").unwrap(), "fragment1fragment2");
    assert_eq!(u(f[1], "fragments"), 2);
    assert_eq!(u(f[1], "message_len"), 18);
    assert!(
        detail(f[0], "message_len").is_none(),
        "first fragment ends no message"
    );
}

#[test]
fn case_5_6_ping_between_fragments() {
    let conv = Conv::upgraded()
        .client(FrameSpec::new(OpCode::Text, b"fragment1".to_vec()).fin(false))
        .client(FrameSpec::new(OpCode::Ping, b"ping payload".to_vec()))
        .server(FrameSpec::new(OpCode::Pong, b"ping payload".to_vec()))
        .client(FrameSpec::new(OpCode::Continuation, b"fragment2".to_vec()));
    let ev = decode(&conv);
    assert!(codes(&ev).is_empty());
    // The pong comes before the message completes, and is paired.
    let names: Vec<_> = frames(&ev).iter().map(|e| name(e).unwrap()).collect();
    assert_eq!(names, vec!["text", "ping", "pong", "continuation"]);
    assert_eq!(pongs(&ev), vec![(12, Some(Micros(1000)))]);
    assert_eq!(
        detail(frames(&ev)[3], "text").unwrap(),
        "fragment1fragment2"
    );
}

#[test]
fn case_5_9_orphan_continuation() {
    for fin in [true, false] {
        let conv = Conv::upgraded()
            .client(
                FrameSpec::new(OpCode::Continuation, b"non-continuation payload".to_vec()).fin(fin),
            )
            .client(FrameSpec::new(OpCode::Text, b"Hello, world!".to_vec()));
        let ev = decode(&conv);
        assert_eq!(codes(&ev), vec!["ws.continuation_without_start"]);
        // The stream after it still decodes.
        assert_eq!(detail(frames(&ev)[1], "text").unwrap(), "Hello, world!");
    }
}

#[test]
fn case_5_15_orphan_among_valid() {
    let conv = Conv::upgraded()
        .client(FrameSpec::new(OpCode::Text, b"fragment1".to_vec()).fin(false))
        .client(FrameSpec::new(OpCode::Continuation, b"fragment2".to_vec()))
        .client(FrameSpec::new(OpCode::Continuation, b"fragment3".to_vec()).fin(false))
        .client(FrameSpec::new(OpCode::Continuation, b"fragment4".to_vec()));
    let ev = decode(&conv);
    assert_eq!(
        codes(&ev),
        vec![
            "ws.continuation_without_start",
            "ws.continuation_without_start"
        ]
    );
    assert_eq!(
        detail(frames(&ev)[1], "text").unwrap(),
        "fragment1fragment2"
    );
}

#[test]
fn case_5_18_text_inside_fragmented() {
    let conv = Conv::upgraded()
        .client(FrameSpec::new(OpCode::Text, b"fragment1".to_vec()).fin(false))
        .client(FrameSpec::new(OpCode::Text, b"fragment2".to_vec()));
    let ev = decode(&conv);
    assert_eq!(codes(&ev), vec!["ws.data_inside_fragmented_message"]);
    // The new message replaces the unfinished one.
    assert_eq!(detail(frames(&ev)[1], "text").unwrap(), "fragment2");
}

#[test]
fn case_5_19_pings_inside_long_message() {
    let mut conv = Conv::upgraded();
    for i in 0..10 {
        let op = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        conv = conv.client(FrameSpec::new(op, format!("fragment{i}").into_bytes()).fin(i == 9));
        if i == 4 || i == 8 {
            conv = conv
                .client(FrameSpec::new(
                    OpCode::Ping,
                    format!("pongme {i}").into_bytes(),
                ))
                .server(FrameSpec::new(
                    OpCode::Pong,
                    format!("pongme {i}").into_bytes(),
                ));
        }
    }
    let ev = decode(&conv);
    assert!(codes(&ev).is_empty());
    let last = *frames(&ev).last().unwrap();
    assert_eq!(u(last, "fragments"), 10);
    let want: String = (0..10).map(|i| format!("fragment{i}")).collect();
    assert_eq!(detail(last, "text").unwrap(), want.as_str());
    assert_eq!(pongs(&ev).len(), 2);
    assert!(pongs(&ev).iter().all(|(_, rtt)| rtt.is_some()));
}

#[test]
fn case_6_1_empty_fragments() {
    let conv = Conv::upgraded()
        .client(FrameSpec::new(OpCode::Text, vec![]))
        .client(FrameSpec::new(OpCode::Text, vec![]).fin(false))
        .client(FrameSpec::new(OpCode::Continuation, vec![]).fin(false))
        .client(FrameSpec::new(OpCode::Continuation, vec![]))
        .client(FrameSpec::new(OpCode::Text, vec![]).fin(false))
        .client(FrameSpec::new(OpCode::Continuation, b"middle frame payload".to_vec()).fin(false))
        .client(FrameSpec::new(OpCode::Continuation, vec![]));
    let ev = decode(&conv);
    assert!(codes(&ev).is_empty());
    let ends: Vec<u64> = frames(&ev)
        .iter()
        .filter(|e| detail(e, "message_len").is_some())
        .map(|e| u(e, "message_len"))
        .collect();
    assert_eq!(ends, vec![0, 0, 20]);
}

const HELLO_KOSME: &[u8] =
    b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!";

#[test]
fn case_6_2_valid_split_utf8() {
    // Whole, split on a code point boundary, and one octet per frame.
    let whole = Conv::upgraded().client(FrameSpec::new(OpCode::Text, HELLO_KOSME.to_vec()));
    assert!(codes(&decode(&whole)).is_empty());
    let split = Conv::upgraded()
        .client(FrameSpec::new(OpCode::Text, HELLO_KOSME[..8].to_vec()).fin(false))
        .client(FrameSpec::new(
            OpCode::Continuation,
            HELLO_KOSME[8..].to_vec(),
        ));
    assert!(codes(&decode(&split)).is_empty());
    let mut octets = Conv::upgraded();
    for (i, b) in HELLO_KOSME.iter().enumerate() {
        let op = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        octets = octets.client(FrameSpec::new(op, vec![*b]).fin(i + 1 == HELLO_KOSME.len()));
    }
    let ev = decode(&octets);
    assert!(codes(&ev).is_empty());
    assert_eq!(
        detail(frames(&ev).last().unwrap(), "text").unwrap(),
        std::str::from_utf8(HELLO_KOSME).unwrap()
    );
}

const BAD_UTF8: &[u8] =
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";

#[test]
fn case_6_3_invalid_utf8() {
    let whole = Conv::upgraded().client(FrameSpec::new(OpCode::Text, BAD_UTF8.to_vec()));
    let ev = decode(&whole);
    assert_eq!(codes(&ev), vec!["ws.invalid_utf8_text"]);
    let mut octets = Conv::upgraded();
    for (i, b) in BAD_UTF8.iter().enumerate() {
        let op = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        octets = octets.client(FrameSpec::new(op, vec![*b]).fin(i + 1 == BAD_UTF8.len()));
    }
    assert_eq!(codes(&decode(&octets)), vec!["ws.invalid_utf8_text"]);
}

#[test]
fn case_6_4_fail_fast() {
    // 6.4.3: one frame delivered in three TCP chops; the second holds the
    // byte after F4 that takes the code point over U+10FFFF.
    let part1 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5".to_vec();
    let part2 = b"\xf4\x90\x80\x80".to_vec();
    let part3 = b"\x65\x64\x69\x74\x65\x64".to_vec();
    let payload = [part1.clone(), part2.clone(), part3.clone()].concat();
    let frame = FrameSpec::new(OpCode::Text, payload).masked(MASK).encode();
    let header = frame.len() - part1.len() - part2.len() - part3.len();
    let cut1 = header + part1.len();
    let cut2 = cut1 + part2.len();
    let conv = Conv::upgraded()
        .bytes(C2S, frame[..cut1].to_vec())
        .bytes(C2S, frame[cut1..cut2].to_vec())
        .bytes(C2S, frame[cut2..].to_vec());
    let ev = run(&conv, Chop::Writes);
    let finding = ev
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(finding.code, "ws.invalid_utf8_text");
    // Reported in the chunk that carried the bad byte (frame 4), at the
    // byte right after F4, before the frame is complete (frame 5).
    assert_eq!(finding.location.frame, Some(4));
    let request_len = request("").len() as u64;
    assert_eq!(
        finding.location.stream_offset,
        Some(request_len + cut1 as u64 + 1)
    );
}

#[test]
fn case_6_x_sequences() {
    let valid: &[&[u8]] = &[
        b"\x24",
        b"\xc2\xa2",
        b"\xe2\x82\xac",
        b"\xf0\xa4\xad\xa2",
        b"\xed\x9f\xbf",
        b"\xee\x80\x80",
        b"\xef\xbf\xbd",
        b"\xf4\x8f\xbf\xbf",
        b"\xef\xbf\xbe",
    ];
    let invalid: &[&[u8]] = &[
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xfc\x84\x80\x80\x80\x80",
        b"\x80",
        b"\xbf",
        b"\xc0 ",
        b"\xe0\x80",
        b"\xfe",
        b"\xff",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xed\xa0\x80\xed\xb0\x80",
        b"\xce\xba\xe1\xbd",
    ];
    for (seqs, ok) in [(valid, true), (invalid, false)] {
        for s in seqs {
            let conv = Conv::upgraded().client(FrameSpec::new(OpCode::Text, s.to_vec()));
            let ev = decode(&conv);
            let want: Vec<&str> = if ok {
                vec![]
            } else {
                vec!["ws.invalid_utf8_text"]
            };
            assert_eq!(codes(&ev), want, "{s:x?}");
        }
    }
}

fn ws_closes(ev: &[Event]) -> Vec<(Option<u16>, String)> {
    ev.iter()
        .filter_map(|e| match &e.kind {
            EventKind::Close(CloseKind::WsClose { code, reason }) => Some((*code, reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn case_7_1_after_close() {
    let close = || FrameSpec::new(OpCode::Close, close_body(1000, b""));
    // 7.1.1: message then close, answered: clean.
    let ev = decode(
        &Conv::upgraded()
            .client(FrameSpec::new(OpCode::Text, b"Hello World!".to_vec()))
            .client(close())
            .server(close()),
    );
    assert!(codes(&ev).is_empty());
    assert_eq!(ws_closes(&ev).len(), 2);
    assert_eq!(detail(frames(&ev)[2], "reply").unwrap(), true);
    // 7.1.2-7.1.5: close, then close / ping / text / continuation.
    for after in [
        close(),
        FrameSpec::new(OpCode::Ping, vec![]),
        FrameSpec::new(OpCode::Text, b"after close".to_vec()),
        FrameSpec::new(OpCode::Continuation, b"fragment2".to_vec()),
    ] {
        let is_cont = OpCode::from(after.opcode) == OpCode::Continuation;
        let mut conv = Conv::upgraded();
        if is_cont {
            conv = conv.client(FrameSpec::new(OpCode::Text, b"fragment1".to_vec()).fin(false));
        }
        let ev = decode(&conv.client(close()).client(after));
        assert_eq!(codes(&ev), vec!["ws.data_after_close"]);
    }
    // 7.1.6: a large message immediately followed by close and a ping.
    let ev = decode(
        &Conv::upgraded()
            .client(FrameSpec::new(OpCode::Binary, text(256 * 1024)))
            .client(close())
            .client(FrameSpec::new(OpCode::Ping, vec![])),
    );
    assert_eq!(codes(&ev), vec!["ws.data_after_close"]);
}

#[test]
fn case_7_3_close_lengths() {
    let cases: Vec<(Vec<u8>, Vec<&str>, Option<u16>)> = vec![
        (vec![], vec![], None),
        (vec![0x03], vec!["ws.close_payload_one_byte"], None),
        (close_body(1000, b""), vec![], Some(1000)),
        (close_body(1000, b"Hello World!"), vec![], Some(1000)),
        (close_body(1000, &[b'*'; 123]), vec![], Some(1000)),
        (
            close_body(1000, &[b'*'; 124]),
            vec!["ws.control_frame_too_long"],
            Some(1000),
        ),
    ];
    for (body, want, code) in cases {
        let len = body.len();
        let ev = decode(&Conv::upgraded().client(FrameSpec::new(OpCode::Close, body)));
        assert_eq!(codes(&ev), want, "body of {len}");
        assert_eq!(ws_closes(&ev)[0].0, code);
    }
}

#[test]
fn case_7_5_1_close_reason_utf8() {
    let body = close_body(
        1000,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
    );
    let ev = decode(&Conv::upgraded().client(FrameSpec::new(OpCode::Close, body)));
    assert_eq!(codes(&ev), vec!["ws.invalid_utf8_close_reason"]);
}

#[test]
fn case_7_7_valid_codes() {
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let ev = decode(
            &Conv::upgraded()
                .client(FrameSpec::new(OpCode::Close, close_body(code, b"")))
                .server(FrameSpec::new(OpCode::Close, close_body(code, b""))),
        );
        assert!(codes(&ev).is_empty(), "{code}");
        assert_eq!(ws_closes(&ev)[0], (Some(code), String::new()));
    }
}

#[test]
fn case_7_9_invalid_codes() {
    for (code, want) in [
        (0, "ws.invalid_close_code"),
        (999, "ws.invalid_close_code"),
        (1004, "ws.invalid_close_code"),
        (1005, "ws.close_code_never_sent"),
        (1006, "ws.close_code_never_sent"),
        (1015, "ws.close_code_never_sent"),
        (1016, "ws.invalid_close_code"),
        (1100, "ws.invalid_close_code"),
        (2000, "ws.invalid_close_code"),
        (2999, "ws.invalid_close_code"),
    ] {
        let ev =
            decode(&Conv::upgraded().client(FrameSpec::new(OpCode::Close, close_body(code, b""))));
        assert_eq!(codes(&ev), vec![want], "{code}");
    }
}

#[test]
fn case_7_13_undefined_codes() {
    for code in [5000, 65535] {
        let ev =
            decode(&Conv::upgraded().client(FrameSpec::new(OpCode::Close, close_body(code, b""))));
        let f: Vec<_> = ev
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Finding(f) => Some((f.code.to_string(), f.severity)),
                _ => None,
            })
            .collect();
        assert_eq!(
            f,
            vec![("ws.invalid_close_code".to_string(), Severity::Warning)]
        );
    }
}

#[test]
fn case_9_limits() {
    // 9.2.x / 9.6.x: one 4 MiB binary frame in 64- and 2048-byte chops.
    let big = Conv::upgraded().client(FrameSpec::new(OpCode::Binary, text(4 << 20)));
    let a = run(&big, Chop::Every(2048));
    assert_eq!(normalized(&a), normalized(&run(&big, Chop::Every(64))));
    assert!(codes(&a).is_empty());
    assert_eq!(u(frames(&a)[0], "message_len"), 4 << 20);
    // 9.3.1: a 1 MiB text message in 64-byte fragments.
    let msg = text(1 << 20);
    let mut conv = Conv::upgraded();
    let n = msg.len() / 64;
    for (i, piece) in msg.chunks(64).enumerate() {
        let op = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        conv = conv.client(FrameSpec::new(op, piece.to_vec()).fin(i + 1 == n));
    }
    let ev = run(&conv, Chop::Every(1500));
    assert!(codes(&ev).is_empty());
    let last = *frames(&ev).last().unwrap();
    assert_eq!(u(last, "fragments"), n as u64);
    assert_eq!(u(last, "message_len"), 1 << 20);
    // The preview stays bounded whatever the message size.
    assert_eq!(detail(last, "text").unwrap().as_str().unwrap().len(), 120);
}

#[test]
fn case_10_1_1_auto_fragmented() {
    let msg = text(65536);
    let pieces: Vec<&[u8]> = msg.chunks(1300).collect();
    let mut conv = Conv::upgraded();
    for (i, p) in pieces.iter().enumerate() {
        let op = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        conv = conv.client(FrameSpec::new(op, p.to_vec()).fin(i + 1 == pieces.len()));
    }
    let ev = run(&conv, Chop::Every(1448));
    assert!(codes(&ev).is_empty());
    let last = *frames(&ev).last().unwrap();
    assert_eq!(u(last, "fragments"), pieces.len() as u64);
    assert_eq!(u(last, "message_len"), 65536);
}

/// permessage-deflate payloads (RFC 7692): raw deflate, sync-flushed, the
/// trailing 00 00 ff ff removed.
fn deflate_messages(msgs: &[&[u8]], takeover: bool) -> Vec<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::default(), false);
    msgs.iter()
        .map(|m| {
            if !takeover {
                c.reset();
            }
            let mut out = vec![0u8; m.len() + 64];
            let before = c.total_out();
            c.compress(m, &mut out, FlushCompress::Sync).unwrap();
            out.truncate((c.total_out() - before) as usize);
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
            out.truncate(out.len() - 4);
            out
        })
        .collect()
}

#[test]
fn case_12_13_permessage_deflate() {
    let msgs: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            format!("{{\"seq\":{i},\"payload\":\"the same words again and again\"}}").into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    for (takeover, resp_params) in [
        (true, "permessage-deflate"),
        (false, "permessage-deflate; server_no_context_takeover"),
    ] {
        let mut conv = Conv::with_headers(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
            &format!("Sec-WebSocket-Extensions: {resp_params}\r\n"),
        );
        for (i, z) in deflate_messages(&refs, takeover).into_iter().enumerate() {
            if i == 2 {
                // 12.x auto-fragmentation: RSV1 only on the first fragment.
                let cut = z.len() / 2;
                conv = conv
                    .server(
                        FrameSpec::new(OpCode::Text, z[..cut].to_vec())
                            .rsv(4)
                            .fin(false),
                    )
                    .server(FrameSpec::new(OpCode::Continuation, z[cut..].to_vec()));
            } else {
                conv = conv.server(FrameSpec::new(OpCode::Text, z).rsv(4));
            }
        }
        let ev = decode(&conv);
        assert!(codes(&ev).is_empty(), "{:?}", codes(&ev));
        let texts: Vec<&str> = frames(&ev)
            .iter()
            .filter_map(|e| detail(e, "text").and_then(|v| v.as_str()))
            .collect();
        let want: Vec<&str> = msgs
            .iter()
            .map(|m| std::str::from_utf8(m).unwrap())
            .collect();
        assert_eq!(texts, want, "takeover {takeover}");
    }
    // RSV1 on a continuation is still a reserved-bit violation.
    let z = deflate_messages(&[b"abc"], true).remove(0);
    let conv = Conv::with_headers(
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .server(FrameSpec::new(OpCode::Text, z).rsv(4).fin(false))
    .server(FrameSpec::new(OpCode::Continuation, vec![]).rsv(4));
    assert_eq!(codes(&decode(&conv)), vec!["ws.reserved_bits"]);
    // Garbage that does not inflate: reported once, decoding goes on.
    let conv = Conv::with_headers(
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .server(FrameSpec::new(OpCode::Text, vec![0xff; 40]).rsv(4))
    .server(FrameSpec::new(OpCode::Text, vec![0xff; 40]).rsv(4))
    .server(FrameSpec::new(OpCode::Ping, b"still here".to_vec()));
    let ev = decode(&conv);
    assert_eq!(codes(&ev), vec!["ws.inflate_failed"]);
    assert_eq!(frames(&ev).len(), 3);
}

#[test]
fn masking_and_length_encoding_rules() {
    let ev = decode(
        &Conv::upgraded()
            .client_raw(FrameSpec::new(OpCode::Text, b"unmasked".to_vec()))
            .server(FrameSpec::new(OpCode::Text, b"masked".to_vec()).masked(MASK))
            .client(FrameSpec::new(OpCode::Binary, vec![1; 124]).form(LengthForm::Ext16))
            .client(FrameSpec::new(OpCode::Binary, vec![1; 300]).form(LengthForm::Ext64)),
    );
    assert_eq!(
        codes(&ev),
        vec![
            "ws.unmasked_client_frame",
            "ws.masked_server_frame",
            "ws.non_minimal_length",
            "ws.non_minimal_length"
        ]
    );
    assert_eq!(detail(frames(&ev)[1], "text").unwrap(), "masked");
    // A 64-bit length with the top bit set: reported, then nothing more
    // can be framed that way.
    let mut bad = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
    bad.extend_from_slice(&MASK);
    bad.extend_from_slice(b"rest");
    let ev = decode(
        &Conv::upgraded()
            .bytes(C2S, bad)
            .server(FrameSpec::new(OpCode::Text, b"ok".to_vec())),
    );
    assert_eq!(codes(&ev), vec!["ws.length_top_bit"]);
    assert_eq!(frames(&ev).len(), 1, "server side still decodes");
}

#[test]
fn closing_handshake_and_tcp_ends() {
    // Client closes, server closes TCP without answering.
    let conv = Conv::upgraded().client(FrameSpec::new(OpCode::Close, close_body(1000, b"bye")));
    let ev = run_with(&conv, Chop::Writes, Some(StreamEnd::Fin), None).events;
    assert_eq!(codes(&ev), vec!["ws.close_not_answered"]);
    let f = ev
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(f.location.direction, Some(S2C));
    // No close at all: the abnormal closure a browser reports as 1006.
    let conv = Conv::upgraded().client(FrameSpec::new(OpCode::Text, b"hi".to_vec()));
    let ev = run_with(&conv, Chop::Writes, Some(StreamEnd::Rst), None).events;
    let abn: Vec<_> = ev
        .iter()
        .filter(|e| name(e) == Some("abnormal_closure"))
        .collect();
    assert_eq!(abn.len(), 1);
    assert_eq!(u(abn[0], "code"), 1006);
    assert_eq!(detail(abn[0], "tcp").unwrap(), "rst");
    // Closed cleanly both ways: neither.
    let conv = Conv::upgraded()
        .server(FrameSpec::new(
            OpCode::Close,
            close_body(1000, b"Target closed"),
        ))
        .client(FrameSpec::new(OpCode::Close, close_body(1000, b"")));
    let ev = run_with(&conv, Chop::Writes, Some(StreamEnd::Fin), None).events;
    assert!(codes(&ev).is_empty());
    assert!(ev.iter().all(|e| name(e) != Some("abnormal_closure")));
    // End of capture mid-session is not a closure.
    let conv = Conv::upgraded().client(FrameSpec::new(OpCode::Text, b"hi".to_vec()));
    let ev = run_with(&conv, Chop::Writes, Some(StreamEnd::EndOfCapture), None).events;
    assert!(codes(&ev).is_empty());
    assert!(ev.iter().all(|e| name(e) != Some("abnormal_closure")));
    // TCP FIN in the middle of a frame.
    let mut cut = FrameSpec::new(OpCode::Binary, vec![0; 100])
        .masked(MASK)
        .encode();
    cut.truncate(50);
    let conv = Conv::upgraded().bytes(C2S, cut);
    let ev = run_with(&conv, Chop::Writes, Some(StreamEnd::Fin), None).events;
    assert_eq!(codes(&ev), vec!["ws.incomplete_at_end"]);
}

#[test]
fn client_data_before_the_upgrade_response() {
    let conv = Conv {
        writes: vec![(C2S, request(""))],
    }
    .client(FrameSpec::new(OpCode::Text, b"too early".to_vec()))
    .bytes(S2C, response(""))
    .client(FrameSpec::new(OpCode::Text, b"fine".to_vec()));
    assert_eq!(
        codes(&decode(&conv)),
        vec!["ws.data_before_upgrade_response"]
    );
}

#[test]
fn upgrade_request_and_refusal() {
    // A reconnect with an expired token: 401, then plain HTTP.
    let conv = Conv {
        writes: vec![
            (C2S, request("Sec-WebSocket-Protocol: binary, base64\r\n")),
            (
                S2C,
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\ntoken expired".to_vec(),
            ),
        ],
    };
    let ev = decode(&conv);
    assert!(codes(&ev).is_empty());
    let req = &ev[0];
    assert_eq!(name(req), Some("upgrade_request"));
    assert_eq!(detail(req, "path").unwrap(), "/chat");
    assert_eq!(detail(req, "query").unwrap(), "token=t0k");
    assert_eq!(detail(req, "host").unwrap(), "127.0.0.1:16080");
    assert_eq!(detail(req, "origin").unwrap(), "http://127.0.0.1");
    assert_eq!(detail(req, "version").unwrap(), "13");
    assert_eq!(
        detail(req, "protocols").unwrap(),
        &serde_json::json!(["binary", "base64"])
    );
    let resp = &ev[1];
    assert_eq!(name(resp), Some("upgrade_response"));
    assert_eq!(u(resp, "status"), 401);
    assert_eq!(detail(resp, "reason").unwrap(), "Unauthorized");
    assert_eq!(ev.len(), 2, "nothing after a refused upgrade is framed");
    // Accepted, but with a subprotocol and an extension nobody offered and
    // a wrong accept value.
    let conv = Conv {
        writes: vec![
            (C2S, request("")),
            (
                S2C,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n".to_vec(),
            ),
        ],
    };
    assert_eq!(
        codes(&decode(&conv)),
        vec![
            "ws.bad_accept",
            "ws.unoffered_subprotocol",
            "ws.unoffered_extension"
        ]
    );
}

#[test]
fn hostile_handshakes_are_reported_not_fatal() {
    // A head that never ends: bounded, reported once, nothing more decoded.
    let mut endless = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n".to_vec();
    endless.extend(std::iter::repeat_n(b'x', 40 * 1024));
    let conv = Conv {
        writes: vec![(C2S, endless)],
    };
    let ev = run(&conv, Chop::Every(1000));
    assert_eq!(codes(&ev), vec!["ws.http_head_too_long"]);
    // A header line without a colon.
    let conv = Conv {
        writes: vec![(C2S, b"GET / HTTP/1.1\r\nUpgrade websocket\r\n\r\n".to_vec())],
    };
    assert_eq!(codes(&decode(&conv)), vec!["ws.malformed_http_head"]);
    // An old-draft request: wrong version, no key, not GET.
    let conv = Conv {
        writes: vec![(
            C2S,
            b"POST /x HTTP/1.0\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\r\n".to_vec(),
        )],
    };
    let ev = decode(&conv);
    assert_eq!(codes(&ev), vec!["ws.bad_upgrade_request"]);
    let EventKind::Finding(f) = &ev[1].kind else {
        panic!("{:?}", ev[1])
    };
    assert!(
        f.message.contains("not GET") && f.message.contains("HTTP/1.1"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("Key") && f.message.contains("\"8\""),
        "{}",
        f.message
    );
}
