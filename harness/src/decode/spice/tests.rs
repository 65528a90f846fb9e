use super::wire::build;
use super::*;
use crate::timeline::Direction::{ClientToServer as C2S, ServerToClient as S2C};
use crate::timeline::Severity;

const COMMON: u32 = 0x0B; // AUTH_SELECTION | AUTH_SPICE | MINI_HEADER

/// Feeds `(direction, bytes)` units, each as one chunk, 1 ms apart.
fn run(ctx: &StreamContext, units: &[(Direction, Vec<u8>)]) -> Vec<Event> {
    let mut d = SpiceDecoder::new(ctx);
    let mut out = Vec::new();
    let mut offsets = [0u64; 2];
    for (k, (dir, bytes)) in units.iter().enumerate() {
        d.data(
            Chunk {
                at: Micros(1000 * k as u64),
                frame: k as u64 + 1,
                direction: *dir,
                stream_offset: offsets[dir.index()],
                bytes,
            },
            &mut out,
        );
        offsets[dir.index()] += bytes.len() as u64;
    }
    out
}

fn link(channel: u8, conn_id: u32, client_common: u32) -> Vec<(Direction, Vec<u8>)> {
    vec![
        (
            C2S,
            build::link_mess(conn_id, channel, 0, &[client_common], &[]),
        ),
        (S2C, build::link_reply(0, &[COMMON], &[0x5])),
        (C2S, 1u32.to_le_bytes().to_vec()),
        (C2S, vec![0xA5; 128]),
        (S2C, 0u32.to_le_bytes().to_vec()),
    ]
}

fn names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message { name, .. } => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

fn codes(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.code.to_string()),
            _ => None,
        })
        .collect()
}

fn linked_ctx() -> StreamContext {
    StreamContext::default()
}

#[test]
fn link_stage_then_mini_header_data() {
    let mut units = link(MAIN, 0, COMMON);
    let mut init = 0x1234_5678u32.to_le_bytes().to_vec();
    init.resize(32, 0);
    units.push((S2C, build::mini(103, &init)));
    units.push((S2C, build::mini(4, &build::ping_body(1, 99, 0))));
    units.push((C2S, build::mini(3, &build::ping_body(1, 99, 0))));
    units.push((S2C, build::mini(4, &build::ping_body(3, 100, 256_000))));
    units.push((C2S, build::mini(3, &build::ping_body(3, 100, 0))));
    let ev = run(&linked_ctx(), &units);
    assert_eq!(
        names(&ev),
        [
            "SPICE_LINK_MESS",
            "SPICE_LINK_REPLY",
            "SPICE_LINK_AUTH_MECHANISM",
            "SPICE_LINK_ENCRYPTED_TICKET",
            "SPICE_LINK_RESULT",
            "SPICE_MSG_MAIN_INIT",
            "SPICE_MSG_PING",
            "SPICE_MSGC_PONG",
            "SPICE_MSG_PING",
            "SPICE_MSGC_PONG",
        ]
    );
    assert!(codes(&ev).is_empty(), "{:?}", codes(&ev));
    let pongs: Vec<(Option<u64>, Option<Micros>)> = ev
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Pong { id, rtt, .. } => Some((*id, *rtt)),
            _ => None,
        })
        .collect();
    assert_eq!(
        pongs,
        [(Some(1), Some(Micros(1000))), (Some(3), Some(Micros(1000)))]
    );
    assert!(ev.iter().all(|e| e.channel.as_deref() == Some("main")));
    let big = ev
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Ping {
                id: Some(3),
                payload_len,
                ..
            } => Some(*payload_len),
            _ => None,
        })
        .unwrap();
    assert_eq!(big, 256_000);
}

#[test]
fn session_id_comes_from_main_init_or_the_link() {
    let mut units = link(MAIN, 0, COMMON);
    let mut init = 77u32.to_le_bytes().to_vec();
    init.resize(32, 0);
    units.push((S2C, build::mini(103, &init)));
    let mut d = SpiceDecoder::new(&linked_ctx());
    let mut out = Vec::new();
    let mut off = [0u64; 2];
    for (dir, b) in &units {
        d.data(
            Chunk {
                at: Micros(0),
                frame: 1,
                direction: *dir,
                stream_offset: off[dir.index()],
                bytes: b,
            },
            &mut out,
        );
        off[dir.index()] += b.len() as u64;
    }
    let s = d.session().unwrap();
    assert_eq!(s.session_id, Some(77));
    assert_eq!(s.channel.as_deref(), Some("main"));
    let mut d2 = SpiceDecoder::new(&linked_ctx());
    d2.data(
        Chunk {
            at: Micros(0),
            frame: 1,
            direction: C2S,
            stream_offset: 0,
            bytes: &build::link_mess(77, DISPLAY, 0, &[COMMON], &[]),
        },
        &mut out,
    );
    assert_eq!(d2.session().unwrap().session_id, Some(77));
    assert_eq!(d2.session().unwrap().channel.as_deref(), Some("display"));
}

#[test]
fn full_header_when_the_client_did_not_ask_for_mini() {
    // AUTH_SELECTION | AUTH_SPICE only.
    let mut units = link(DISPLAY, 5, 0x03);
    units.push((S2C, build::full(1, 3, &build::set_ack_body(1, 20))));
    units.push((C2S, build::full(1, 1, &1u32.to_le_bytes())));
    units.push((S2C, build::full(2, 304, &[0; 40])));
    units.push((S2C, build::full(4, 304, &[0; 40])));
    let ev = run(&linked_ctx(), &units);
    assert_eq!(
        &names(&ev)[5..],
        [
            "SPICE_MSG_SET_ACK",
            "SPICE_MSGC_ACK_SYNC",
            "SPICE_MSG_DISPLAY_DRAW_COPY",
            "SPICE_MSG_DISPLAY_DRAW_COPY"
        ]
    );
    assert_eq!(codes(&ev), ["spice.serial_out_of_order"]);
}

#[test]
fn unknown_client_message_is_a_located_finding() {
    let mut units = link(INPUTS, 5, COMMON);
    units.push((C2S, build::mini(103, &2u16.to_le_bytes())));
    units.push((C2S, build::mini(150, &[1, 2, 3])));
    let ev = run(&linked_ctx(), &units);
    let f = ev
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(f.code, "spice.unknown_client_message");
    // Link mess (16+18+4) + auth word + ticket + KEY_MODIFIERS (6+2).
    assert_eq!(f.location.stream_offset, Some(38 + 4 + 128 + 8));
    assert_eq!(f.location.direction, Some(C2S));
    assert_eq!(f.location.frame, Some(7));
    assert!(names(&ev).contains(&"SPICE_MSGC_UNKNOWN_150".to_string()));
}

#[test]
fn oversized_messages_and_bad_magic_stop_framing_once() {
    let mut units = link(MAIN, 0, COMMON);
    let mut huge = Vec::new();
    wire::DataHeader {
        serial: None,
        ty: 107,
        size: MAX_CLIENT_BODY + 1,
        sub_list: 0,
    }
    .write(&mut huge);
    units.push((C2S, huge));
    units.push((C2S, vec![0; 64]));
    let ev = run(&linked_ctx(), &units);
    assert_eq!(codes(&ev), ["limit.message_size"]);

    let ev = run(
        &linked_ctx(),
        &[(C2S, b"RFB 003.008\nxxxxxxxxxxxxxxxx".to_vec())],
    );
    assert_eq!(codes(&ev), ["spice.bad_magic"]);
}

#[test]
fn a_configured_message_limit_stops_that_direction_only() {
    let ctx = StreamContext {
        limits: crate::decode::MessageLimits {
            spice_client_body: 16,
            ..Default::default()
        },
        ..linked_ctx()
    };
    let mut units = link(MAIN, 0, COMMON);
    // 17 body bytes: one over the limit, far under the default.
    units.push((S2C, build::mini(4, &build::ping_body(1, 99, 0))));
    units.push((C2S, build::mini(107, &[0; 17])));
    units.push((C2S, build::mini(3, &build::ping_body(1, 99, 0))));
    let ev = run(&ctx, &units);
    assert_eq!(codes(&ev), ["limit.message_size"]);
    let f = ev
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(f.location.direction, Some(C2S));
    assert!(f.message.contains("16-byte limit"), "{}", f.message);
    // The server's PING still decodes; the client's PONG after the big
    // message does not.
    let n = names(&ev);
    assert!(n.contains(&"SPICE_MSG_PING".to_string()), "{n:?}");
    assert!(!n.iter().any(|m| m.starts_with("SPICE_MSGC_PONG")), "{n:?}");
    // The same bytes under the default limit decode both ways.
    let ev = run(&linked_ctx(), &units);
    assert!(codes(&ev).is_empty(), "{:?}", codes(&ev));
}

#[test]
fn pong_must_answer_an_outstanding_ping() {
    let mut units = link(CURSOR, 5, COMMON);
    units.push((S2C, build::mini(4, &build::ping_body(9, 1, 0))));
    units.push((C2S, build::mini(3, &build::ping_body(8, 1, 0))));
    units.push((C2S, build::mini(3, &build::ping_body(9, 1, 0))));
    units.push((C2S, build::mini(3, &build::ping_body(9, 1, 0))));
    let ev = run(&linked_ctx(), &units);
    assert_eq!(
        codes(&ev),
        ["spice.pong_without_ping", "spice.pong_without_ping"]
    );
}

#[test]
fn client_must_ack_once_per_window() {
    // Window 2: by the time the client answers a PING sent after 7 server
    // messages it owes 3 ACKs; it sent 1.
    let mut units = link(DISPLAY, 5, COMMON);
    units.push((S2C, build::mini(3, &build::set_ack_body(1, 2))));
    units.push((C2S, build::mini(1, &1u32.to_le_bytes())));
    for _ in 0..2 {
        units.push((S2C, build::mini(102, &[])));
    }
    units.push((C2S, build::mini(2, &[])));
    for _ in 0..3 {
        units.push((S2C, build::mini(102, &[])));
    }
    units.push((S2C, build::mini(4, &build::ping_body(5, 1, 0))));
    units.push((C2S, build::mini(3, &build::ping_body(5, 1, 0))));
    let ev = run(&linked_ctx(), &units);
    assert_eq!(codes(&ev), ["spice.ack_missing"]);

    // The same with the client keeping up: no finding.
    let mut units = link(DISPLAY, 5, COMMON);
    units.push((S2C, build::mini(3, &build::set_ack_body(1, 2))));
    units.push((C2S, build::mini(1, &1u32.to_le_bytes())));
    units.push((S2C, build::mini(102, &[])));
    units.push((C2S, build::mini(2, &[])));
    units.push((S2C, build::mini(102, &[])));
    units.push((S2C, build::mini(102, &[])));
    units.push((C2S, build::mini(2, &[])));
    units.push((S2C, build::mini(4, &build::ping_body(5, 1, 0))));
    units.push((C2S, build::mini(3, &build::ping_body(5, 1, 0))));
    let ev = run(&linked_ctx(), &units);
    assert!(codes(&ev).is_empty(), "{:?}", codes(&ev));

    // An ACK before a window's worth of messages, and a wrong ACK_SYNC.
    let mut units = link(DISPLAY, 5, COMMON);
    units.push((S2C, build::mini(3, &build::set_ack_body(4, 10))));
    units.push((C2S, build::mini(1, &3u32.to_le_bytes())));
    units.push((C2S, build::mini(2, &[])));
    let ev = run(&linked_ctx(), &units);
    assert_eq!(
        codes(&ev),
        ["spice.ack_sync_generation", "spice.ack_too_early"]
    );
}

#[test]
fn disconnecting_is_a_protocol_close() {
    let mut units = link(MAIN, 0, COMMON);
    let mut body = 5u64.to_le_bytes().to_vec();
    body.extend_from_slice(&1u32.to_le_bytes());
    units.push((S2C, build::mini(6, &body)));
    let mut d = SpiceDecoder::new(&linked_ctx());
    let mut ev = Vec::new();
    let mut off = [0u64; 2];
    for (dir, b) in &units {
        d.data(
            Chunk {
                at: Micros(0),
                frame: 1,
                direction: *dir,
                stream_offset: off[dir.index()],
                bytes: b,
            },
            &mut ev,
        );
        off[dir.index()] += b.len() as u64;
    }
    assert!(ev.iter().any(|e| e.kind
        == EventKind::Close(CloseKind::Protocol {
            name: "SPICE_MSG_DISCONNECTING".into()
        })));
    assert_eq!(d.session().unwrap().disconnecting.as_deref(), Some("ERROR"));
}

#[test]
fn failed_link_closes_with_its_error() {
    let units = vec![
        (C2S, build::link_mess(0, MAIN, 0, &[COMMON], &[])),
        (S2C, build::link_reply(0, &[COMMON], &[])),
        (C2S, 1u32.to_le_bytes().to_vec()),
        (C2S, vec![0; 128]),
        (S2C, 7u32.to_le_bytes().to_vec()),
        (S2C, vec![1, 2, 3]),
    ];
    let ev = run(&linked_ctx(), &units);
    assert!(ev.iter().any(|e| e.kind
        == EventKind::Close(CloseKind::Protocol {
            name: "SPICE_LINK_ERR_PERMISSION_DENIED".into()
        })));
    assert!(codes(&ev).is_empty());
}

#[test]
fn mid_stream_ring_decodes_from_its_first_header() {
    let ctx = StreamContext {
        mid_stream_spice_channel: Some(MAIN),
        ..StreamContext::default()
    };
    let units = vec![
        (S2C, build::mini(4, &build::ping_body(40, 1, 0))),
        (C2S, build::mini(3, &build::ping_body(40, 1, 0))),
        // Its PING was evicted from the ring: only informational.
        (C2S, build::mini(3, &build::ping_body(39, 1, 0))),
        (S2C, build::mini(106, &7u32.to_le_bytes())),
    ];
    let ev = run(&ctx, &units);
    assert_eq!(
        names(&ev),
        [
            "SPICE_MSG_PING",
            "SPICE_MSGC_PONG",
            "SPICE_MSGC_PONG",
            "SPICE_MSG_MAIN_MULTI_MEDIA_TIME"
        ]
    );
    let f: Vec<Severity> = ev
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.severity),
            _ => None,
        })
        .collect();
    assert_eq!(f, [Severity::Info]);
}

#[test]
fn a_gap_inside_a_skipped_body_keeps_framing() {
    let ctx = StreamContext {
        mid_stream_spice_channel: Some(DISPLAY),
        ..StreamContext::default()
    };
    let mut d = SpiceDecoder::new(&ctx);
    let mut ev = Vec::new();
    let msg = build::mini(304, &[7; 1000]);
    d.data(
        Chunk {
            at: Micros(0),
            frame: 1,
            direction: S2C,
            stream_offset: 0,
            bytes: &msg[..100],
        },
        &mut ev,
    );
    d.gap(Micros(1), S2C, 100, 500, &mut ev);
    d.data(
        Chunk {
            at: Micros(2),
            frame: 2,
            direction: S2C,
            stream_offset: 600,
            bytes: &msg[600..],
        },
        &mut ev,
    );
    d.data(
        Chunk {
            at: Micros(3),
            frame: 3,
            direction: S2C,
            stream_offset: 1006,
            bytes: &build::mini(102, &[]),
        },
        &mut ev,
    );
    assert_eq!(
        names(&ev),
        ["SPICE_MSG_DISPLAY_DRAW_COPY", "SPICE_MSG_DISPLAY_MARK"]
    );
    // A gap across a header loses the direction, said once.
    d.gap(Micros(4), S2C, 1012, 3, &mut ev);
    d.gap(Micros(5), S2C, 1015, 3, &mut ev);
    assert_eq!(codes(&ev), ["spice.lost_sync"]);
}

#[test]
fn notify_and_wait_for_channels_carry_their_detail() {
    let ctx = StreamContext {
        mid_stream_spice_channel: Some(MAIN),
        ..StreamContext::default()
    };
    let mut notify = 7u64.to_le_bytes().to_vec();
    for v in [1u32, 2, 0, 6] {
        notify.extend_from_slice(&v.to_le_bytes());
    }
    notify.extend_from_slice(b"hello\0");
    let mut wait = vec![2u8];
    wait.extend_from_slice(&[2, 0]);
    wait.extend_from_slice(&9u64.to_le_bytes());
    wait.extend_from_slice(&[4, 1]);
    wait.extend_from_slice(&10u64.to_le_bytes());
    let ev = run(
        &ctx,
        &[
            (S2C, build::mini(7, &notify)),
            (S2C, build::mini(5, &wait)),
            (S2C, build::mini(1, &3u32.to_le_bytes())),
            (S2C, build::mini(3, &[1, 2])),
        ],
    );
    let details: Vec<String> = ev
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message { detail, .. } => Some(serde_json::to_string(detail).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(
        details,
        [
            r#"[["timestamp",7],["severity",1],["visibility",2],["what",0],["message","hello"]]"#,
            r#"[["count",2],["channels",[{"channel":"display","channel_id":0,"channel_type":2,"serial":9},{"channel":"cursor","channel_id":1,"channel_type":4,"serial":10}]]]"#,
            r#"[["flags",3],["need_flush",true],["need_data_transfer",true]]"#,
            "[]",
        ]
    );
    // A SET_ACK with a 2-byte body is too short for its fixed part.
    assert_eq!(codes(&ev), ["spice.message_too_short"]);
}

#[test]
fn playback_ring_is_counted_not_framed() {
    let ctx = StreamContext {
        mid_stream_spice_channel: Some(PLAYBACK),
        ..StreamContext::default()
    };
    let ev = run(&ctx, &[(S2C, vec![0xAB; 4000]), (S2C, vec![0xCD; 100])]);
    assert!(names(&ev).is_empty());
    assert_eq!(codes(&ev), ["spice.unframed_ring"]);
}

#[test]
fn a_stream_closed_inside_a_message_is_reported() {
    let ctx = StreamContext {
        mid_stream_spice_channel: Some(DISPLAY),
        ..StreamContext::default()
    };
    let mut d = SpiceDecoder::new(&ctx);
    let mut ev = Vec::new();
    let msg = build::mini(304, &[1; 500]);
    d.data(
        Chunk {
            at: Micros(0),
            frame: 1,
            direction: S2C,
            stream_offset: 0,
            bytes: &msg[..200],
        },
        &mut ev,
    );
    d.end(Micros(1), S2C, StreamEnd::Fin, &mut ev);
    // Only a FIN or RST counts: a capture that just stops is not the peer's doing.
    d.end(Micros(1), C2S, StreamEnd::EndOfCapture, &mut ev);
    assert_eq!(codes(&ev), ["spice.truncated_message"]);
}

#[test]
fn sasl_leaves_the_channel_counted_only() {
    let units = vec![
        (C2S, build::link_mess(0, MAIN, 0, &[0x0D], &[])),
        (S2C, build::link_reply(0, &[0x0D], &[])),
        (C2S, 2u32.to_le_bytes().to_vec()),
        (C2S, b"sasl exchange".to_vec()),
        (S2C, b"sasl reply".to_vec()),
    ];
    let ev = run(&linked_ctx(), &units);
    assert_eq!(
        names(&ev),
        [
            "SPICE_LINK_MESS",
            "SPICE_LINK_REPLY",
            "SPICE_LINK_AUTH_MECHANISM"
        ]
    );
    assert_eq!(codes(&ev), ["spice.auth_not_decoded"]);
}
