//! Properties of the SPICE decoder: headers and common messages round
//! trip through the writers and the decoder, and any chunking of the same
//! streams gives identical events.

mod support;

use proptest::prelude::*;
use support::all_prefixes_incomplete;
use tether::decode::spice::SpiceDecoder;
use tether::decode::spice::wire::{self, DataHeader, LinkHeader, build};
use tether::decode::{Chunk, StreamContext, StreamDecoder};
use tether::timeline::{Direction, Event, EventKind, Micros};

const S2C: Direction = Direction::ServerToClient;
const C2S: Direction = Direction::ClientToServer;

/// A linked display channel: link both ways, then `msgs` (mini header).
fn session(msgs: &[(Direction, Vec<u8>)]) -> Vec<(Direction, Vec<u8>)> {
    let mut units = vec![
        (C2S, build::link_mess(42, 2, 0, &[0x0B], &[0x1FF])),
        (S2C, build::link_reply(0, &[0x0B], &[0x5])),
        (C2S, 1u32.to_le_bytes().to_vec()),
        (C2S, vec![0x5A; 128]),
        (S2C, 0u32.to_le_bytes().to_vec()),
    ];
    units.extend_from_slice(msgs);
    units
}

/// Feeds each direction's bytes cut at `cuts` (fractions of the stream),
/// interleaving directions in unit order. Every chunk of unit `k` carries
/// time and frame `k`, so events must not depend on the cutting at all.
fn decode_cut(units: &[(Direction, Vec<u8>)], cuts: &[u16]) -> Vec<Event> {
    let mut d = SpiceDecoder::new(&StreamContext::default());
    let mut out = Vec::new();
    let mut offsets = [0u64; 2];
    for (k, (dir, bytes)) in units.iter().enumerate() {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| usize::from(*c) % (bytes.len() + 1))
            .collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        points.dedup();
        for w in points.windows(2) {
            d.data(
                Chunk {
                    at: Micros(k as u64),
                    frame: k as u64,
                    direction: *dir,
                    stream_offset: offsets[dir.index()] + w[0] as u64,
                    bytes: &bytes[w[0]..w[1]],
                },
                &mut out,
            );
        }
        offsets[dir.index()] += bytes.len() as u64;
    }
    out
}

fn display_traffic(seed: &[(u16, u16)]) -> Vec<(Direction, Vec<u8>)> {
    let mut msgs = vec![(S2C, build::mini(3, &build::set_ack_body(1, 20)))];
    msgs.push((C2S, build::mini(1, &1u32.to_le_bytes())));
    for (i, (ty, len)) in seed.iter().enumerate() {
        let ty = [302u16, 304, 314, 102, 123][usize::from(*ty) % 5];
        msgs.push((S2C, build::mini(ty, &vec![i as u8; usize::from(*len)])));
    }
    msgs.push((S2C, build::mini(4, &build::ping_body(7, 123, 3000))));
    msgs.push((C2S, build::mini(3, &build::ping_body(7, 123, 0))));
    msgs
}

proptest! {
    #[test]
    fn any_chunking_gives_identical_events(
        seed in proptest::collection::vec((0u16..5, 0u16..5000), 0..19),
        cuts in proptest::collection::vec(any::<u16>(), 0..6),
    ) {
        let units = session(&display_traffic(&seed));
        let whole = decode_cut(&units, &[]);
        let cut = decode_cut(&units, &cuts);
        // Byte-at-a-time too: the worst case for carry-over.
        let all: Vec<u16> = (0..6000).collect();
        let bytewise = decode_cut(&units, &all);
        prop_assert_eq!(&whole, &cut);
        prop_assert_eq!(&whole, &bytewise);
        prop_assert_eq!(
            whole.iter().filter(|e| matches!(e.kind, EventKind::Message { .. })).count(),
            units.len()
        );
        prop_assert!(!whole.iter().any(|e| matches!(e.kind, EventKind::Finding(_))));
    }

    #[test]
    fn headers_round_trip(serial in any::<u64>(), ty in any::<u16>(), size in any::<u32>(), sub in any::<u32>(), mini in any::<bool>()) {
        let h = DataHeader { serial: (!mini).then_some(serial), ty, size, sub_list: if mini { 0 } else { sub } };
        let mut b = Vec::new();
        h.write(&mut b);
        let parse = if mini { wire::mini_header } else { wire::full_header };
        prop_assert_eq!(parse(&b).unwrap(), (&[][..], h));
        all_prefixes_incomplete!(parse, &b);
        let l = LinkHeader { magic: *b"REDQ", major: ty.into(), minor: sub, size };
        let mut b = Vec::new();
        l.write(&mut b);
        prop_assert_eq!(wire::link_header(&b).unwrap(), (&[][..], l));
        all_prefixes_incomplete!(wire::link_header, &b);
    }

    #[test]
    fn common_messages_round_trip(id in any::<u32>(), ts in any::<u64>(), payload in 0usize..70_000, generation in any::<u32>(), window in 1u32..100) {
        let units = session(&[
            (S2C, build::mini(3, &build::set_ack_body(generation, window))),
            (C2S, build::mini(1, &generation.to_le_bytes())),
            (S2C, build::mini(4, &build::ping_body(id, ts, payload))),
            (C2S, build::mini(3, &build::ping_body(id, ts, 0))),
        ]);
        let ev = decode_cut(&units, &[]);
        let detail = |name: &str| ev.iter().find_map(|e| match &e.kind {
            EventKind::Message { name: n, detail, .. } if n == name => Some(detail.clone()),
            _ => None,
        }).unwrap();
        let get = |d: &Vec<(std::borrow::Cow<'static, str>, serde_json::Value)>, k: &str| d.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        let set_ack = detail("SPICE_MSG_SET_ACK");
        prop_assert_eq!(get(&set_ack, "generation"), serde_json::json!(generation));
        prop_assert_eq!(get(&set_ack, "window"), serde_json::json!(window));
        prop_assert_eq!(get(&detail("SPICE_MSGC_ACK_SYNC"), "generation"), serde_json::json!(generation));
        let ping = detail("SPICE_MSG_PING");
        prop_assert_eq!(get(&ping, "id"), serde_json::json!(id));
        prop_assert_eq!(get(&ping, "timestamp"), serde_json::json!(ts));
        prop_assert_eq!(get(&ping, "payload_size"), serde_json::json!(payload));
        let pong = detail("SPICE_MSGC_PONG");
        prop_assert_eq!(get(&pong, "id"), serde_json::json!(id));
        prop_assert_eq!(get(&pong, "timestamp"), serde_json::json!(ts));
        prop_assert!(!ev.iter().any(|e| matches!(e.kind, EventKind::Finding(_))));
    }
}

proptest! {
    /// Hostile bytes: never a panic, and a link-stage start or a
    /// mid-stream start alike end in messages or located findings.
    #[test]
    fn arbitrary_bytes_never_panic(
        c2s in proptest::collection::vec(any::<u8>(), 0..3000),
        s2c in proptest::collection::vec(any::<u8>(), 0..3000),
        redq in any::<bool>(),
        mid in proptest::option::of(0u8..13),
    ) {
        let mut c = c2s.clone();
        if redq {
            let mut link = build::link_mess(1, 2, 0, &[0x0B], &[]);
            link.extend_from_slice(&c);
            c = link;
        }
        let ctx = StreamContext { mid_stream_spice_channel: mid, ..StreamContext::default() };
        let mut d = SpiceDecoder::new(&ctx);
        let mut out: Vec<Event> = Vec::new();
        for (k, (dir, bytes)) in [(C2S, &c), (S2C, &s2c)].into_iter().enumerate() {
            for (j, part) in bytes.chunks(97).enumerate() {
                d.data(Chunk { at: Micros(k as u64), frame: j as u64, direction: dir, stream_offset: (j * 97) as u64, bytes: part }, &mut out);
            }
            d.end(Micros(9), dir, tether::decode::StreamEnd::Fin, &mut out);
        }
        for e in &out {
            if let EventKind::Finding(f) = &e.kind {
                prop_assert!(f.location.connection.is_some() && f.location.stream_offset.is_some(), "{f}");
            }
        }
    }
}

fn le(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

proptest! {
    // Each message parser: encode the fields (written here, not by the
    // crate's writers), parse them back exactly with nothing left over, and
    // every prefix shorter than the fixed part is Incomplete. Lists and
    // texts are read as far as they were kept, so a prefix that holds the
    // fixed part parses (with fewer entries).
    #[test]
    fn link_stage_messages_round_trip(
        conn in any::<u32>(), ty in any::<u8>(), id in any::<u8>(),
        common in proptest::collection::vec(any::<u32>(), 0..4),
        channel in proptest::collection::vec(any::<u32>(), 0..4),
        error in any::<u32>(), key in proptest::collection::vec(any::<u8>(), 162),
    ) {
        let caps: Vec<u8> = common.iter().chain(&channel).flat_map(|w| w.to_le_bytes()).collect();
        let mess = le(&[&conn.to_le_bytes(), &[ty, id], &(common.len() as u32).to_le_bytes(),
            &(channel.len() as u32).to_le_bytes(), &18u32.to_le_bytes(), &caps]);
        let (rest, m) = wire::link_mess(&mess).unwrap();
        prop_assert_eq!(rest, &caps[..]);
        prop_assert_eq!((m.connection_id, m.channel_type, m.channel_id, m.caps_offset), (conn, ty, id, 18));
        all_prefixes_incomplete!(wire::link_mess, &mess[..18]);
        let (_, (c, ch)) = wire::caps(&mess, m.caps_offset, m.num_common_caps, m.num_channel_caps).unwrap();
        prop_assert_eq!((&c, &ch), (&common, &channel));
        all_prefixes_incomplete!(|b| wire::caps(b, 18, common.len() as u32, channel.len() as u32), &mess);

        let reply = le(&[&error.to_le_bytes(), &key, &(common.len() as u32).to_le_bytes(),
            &(channel.len() as u32).to_le_bytes(), &178u32.to_le_bytes(), &caps]);
        let (rest, r) = wire::link_reply(&reply).unwrap();
        prop_assert_eq!(rest, &caps[..]);
        prop_assert_eq!((r.error, r.pub_key, r.caps_offset), (error, &key[..], 178));
        all_prefixes_incomplete!(wire::link_reply, &reply[..178]);
        prop_assert_eq!(wire::word(&reply).unwrap().1, error);
        all_prefixes_incomplete!(wire::word, &reply[..4]);
    }

    #[test]
    fn data_stage_messages_round_trip(
        a in any::<u32>(), b in any::<u32>(), c in any::<u32>(), d in any::<u32>(),
        t in any::<u64>(), text in proptest::collection::vec(any::<u8>(), 0..40),
        waits in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u64>()), 0..5),
        list in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..8),
        init in proptest::collection::vec(any::<u32>(), 8),
    ) {
        let set_ack = le(&[&a.to_le_bytes(), &b.to_le_bytes()]);
        prop_assert_eq!(wire::set_ack(&set_ack).unwrap(), (&[][..], wire::SetAck { generation: a, window: b }));
        all_prefixes_incomplete!(wire::set_ack, &set_ack);

        let ping = le(&[&a.to_le_bytes(), &t.to_le_bytes(), &text]);
        prop_assert_eq!(wire::ping(&ping).unwrap(), (&text[..], wire::Ping { id: a, timestamp: t }));
        all_prefixes_incomplete!(wire::ping, &ping[..wire::PING_LEN]);

        let notify = le(&[&t.to_le_bytes(), &a.to_le_bytes(), &b.to_le_bytes(), &c.to_le_bytes(),
            &(text.len() as u32).to_le_bytes(), &text]);
        let (rest, n) = wire::notify(&notify).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!((n.timestamp, n.severity, n.visibility, n.what, n.text), (t, a, b, c, &text[..]));
        all_prefixes_incomplete!(wire::notify, &notify[..wire::NOTIFY_LEN]);

        let disc = le(&[&t.to_le_bytes(), &d.to_le_bytes()]);
        prop_assert_eq!(wire::disconnecting(&disc).unwrap(), (&[][..], wire::Disconnecting { timestamp: t, reason: d }));
        all_prefixes_incomplete!(wire::disconnecting, &disc);

        let mut w = vec![waits.len() as u8];
        for (ty, id, serial) in &waits {
            w.extend_from_slice(&[*ty, *id]);
            w.extend_from_slice(&serial.to_le_bytes());
        }
        let (rest, (count, got)) = wire::wait_for_channels(&w).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(count as usize, waits.len());
        let got: Vec<(u8, u8, u64)> = got.iter().map(|w| (w.channel_type, w.channel_id, w.serial)).collect();
        prop_assert_eq!(&got, &waits);
        all_prefixes_incomplete!(wire::wait_for_channels, &w[..wire::WAIT_FOR_CHANNELS_LEN]);

        let mut l = (list.len() as u32).to_le_bytes().to_vec();
        for (ty, id) in &list {
            l.extend_from_slice(&[*ty, *id]);
        }
        let (rest, (n, got)) = wire::channels_list(&l).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!((n as usize, &got), (list.len(), &list));
        all_prefixes_incomplete!(wire::channels_list, &l[..wire::CHANNELS_LIST_LEN]);

        let mi: Vec<u8> = init.iter().flat_map(|w| w.to_le_bytes()).collect();
        let (rest, m) = wire::main_init(&mi).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(
            [m.session_id, m.display_channels_hint, m.supported_mouse_modes, m.current_mouse_mode,
             m.agent_connected, m.agent_tokens, m.multi_media_time, m.ram_hint],
            [init[0], init[1], init[2], init[3], init[4], init[5], init[6], init[7]]
        );
        all_prefixes_incomplete!(wire::main_init, &mi);

        let word = a.to_le_bytes();
        for parse in [wire::ack_sync, wire::migrate] {
            prop_assert_eq!(parse(&word).unwrap(), (&[][..], a));
            all_prefixes_incomplete!(parse, &word);
        }
    }
}
