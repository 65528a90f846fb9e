//! SPICE captures recorded between QEMU's SPICE server and spicy
//! (`corpora/record/spice-record.sh`): the channel set, per-type message
//! counts and PING/PONG counts equal tshark's SPICE decode of the same
//! files (the `.tshark.txt` dumps next to them), with zero findings.

use std::collections::BTreeMap;
use std::path::Path;
use tether::decode::pipeline::{DecodeOptions, DecodeReport, decode_capture};
use tether::decode::spice::names::{channel_name, message_name};
use tether::timeline::{Direction, EventKind};

fn corpus(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/recorded")
        .join(name)
}

fn decode(name: &str, keep_events: bool) -> DecodeReport {
    let bytes = std::fs::read(corpus(name)).unwrap();
    let options = DecodeOptions {
        keep_events,
        ..DecodeOptions::default()
    };
    decode_capture(&bytes[..], name, options).unwrap()
}

/// What tshark says about one TCP stream.
#[derive(Debug, Default, PartialEq)]
struct TsharkStream {
    channel: Option<String>,
    /// (direction, message name) -> count
    counts: BTreeMap<(&'static str, String), u64>,
    pings: u64,
    pongs: u64,
}

/// Reads the dump: frame, stream, source port, channel types, message
/// types, ping ids (tab separated, comma-joined occurrences).
fn tshark_streams(name: &str, server_port: u16) -> BTreeMap<u32, TsharkStream> {
    let text = std::fs::read_to_string(corpus(&format!("{name}.tshark.txt"))).unwrap();
    let mut streams: BTreeMap<u32, TsharkStream> = BTreeMap::new();
    let mut channel_types: BTreeMap<u32, u8> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let stream: u32 = f[1].parse().unwrap();
        let dir = if f[2].parse::<u16>().unwrap() == server_port {
            Direction::ServerToClient
        } else {
            Direction::ClientToServer
        };
        let s = streams.entry(stream).or_default();
        // The client's link message is the first to carry a channel type.
        if dir == Direction::ClientToServer
            && !f[3].is_empty()
            && !channel_types.contains_key(&stream)
        {
            let t: u8 = f[3].split(',').next().unwrap().parse().unwrap();
            channel_types.insert(stream, t);
            s.channel = channel_name(t).map(str::to_string);
        }
        if f[4].is_empty() {
            continue;
        }
        for ty in f[4].split(',') {
            let ty: u16 = ty.parse().unwrap();
            let ch = channel_types.get(&stream).copied();
            let name = message_name(ch, dir, ty)
                .unwrap_or_else(|| panic!("tshark type {ty} unnamed on {ch:?}"));
            *s.counts
                .entry((dir.as_str(), name.to_string()))
                .or_default() += 1;
            match (dir, ty) {
                (Direction::ServerToClient, 4) => s.pings += 1,
                (Direction::ClientToServer, 3) => s.pongs += 1,
                _ => {}
            }
        }
    }
    streams
}

fn tether_streams(r: &DecodeReport) -> BTreeMap<u32, TsharkStream> {
    let mut out = BTreeMap::new();
    for c in &r.connections {
        let mut s = TsharkStream {
            channel: c.session.as_ref().and_then(|s| s.channel.clone()),
            pings: c.s2c.pings,
            pongs: c.c2s.pongs,
            ..TsharkStream::default()
        };
        for (dir, counts) in [("c2s", &c.counts.c2s), ("s2c", &c.counts.s2c)] {
            for (name, n) in counts {
                // tshark gives link-stage units no message type.
                if !name.starts_with("SPICE_LINK_") {
                    s.counts.insert((dir, name.clone()), *n);
                }
            }
        }
        out.insert(c.connection.0, s);
    }
    out
}

fn check(name: &str, server_port: u16) -> DecodeReport {
    let r = decode(name, true);
    let theirs = tshark_streams(name, server_port);
    let ours = tether_streams(&r);
    assert_eq!(ours, theirs, "{name}: tether vs tshark");
    let findings: Vec<String> = r
        .connections
        .iter()
        .flat_map(|c| c.findings.iter().map(|f| f.to_string()))
        .chain(r.diagnostics.iter().map(|f| f.to_string()))
        .collect();
    assert!(findings.is_empty(), "{name}: {findings:#?}");
    // One session: every channel carries main's session id.
    let ids: Vec<Option<u64>> = r
        .connections
        .iter()
        .map(|c| c.session.as_ref().and_then(|s| s.session_id))
        .collect();
    assert!(ids[0].is_some(), "{name}: {ids:?}");
    assert!(ids.iter().all(|i| *i == ids[0]), "{name}: {ids:?}");
    let channels: Vec<&str> = r
        .connections
        .iter()
        .filter_map(|c| c.session.as_ref()?.channel.as_deref())
        .collect();
    assert_eq!(channels, ["main", "display", "inputs", "cursor"], "{name}");
    // Every PONG pairs with a PING and has a round trip.
    for c in &r.connections {
        for e in &c.events {
            if let EventKind::Pong { rtt, .. } = &e.kind {
                assert!(rtt.is_some(), "{name}: {e:?}");
            }
        }
    }
    r
}

#[test]
fn plain_session_matches_tshark() {
    let r = check("spice-plain.pcap", 36010);
    // The main channel's bandwidth test: ids 1, 2, 3, the third with
    // 256 000 payload bytes, streamed through and paired with its PONG.
    let main = &r.connections[0];
    let net_test: Vec<(u64, u64)> = main
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Ping {
                id, payload_len, ..
            } => Some((id.unwrap(), *payload_len)),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(net_test, [(1, 0), (2, 0), (3, 256_000)]);
}

#[test]
fn password_session_matches_tshark() {
    let r = check("spice-password.pcap", 36020);
    // The password travels only as the 128-byte encrypted ticket.
    let tickets = r
        .connections
        .iter()
        .map(|c| c.counts.c2s.get("SPICE_LINK_ENCRYPTED_TICKET").copied())
        .collect::<Vec<_>>();
    assert_eq!(tickets, [Some(1); 4]);
    for c in &r.connections {
        assert_eq!(
            c.session.as_ref().unwrap().link_result.as_deref(),
            Some("OK")
        );
    }
}

#[test]
fn killed_server_session_matches_tshark() {
    let r = check("spice-killed.pcap", 36030);
    // The server process died: every channel's server side closed without
    // a DISCONNECTING.
    for (c, f) in r.connections.iter().zip(&r.flows) {
        assert!(c.session.as_ref().unwrap().disconnecting.is_none());
        assert_ne!(f.end, tether::flow::EndKind::Open, "{f:?}");
        // The kernel closed the dead process's sockets: the server side
        // went first on every channel.
        assert_eq!(f.closed_by, Some(Direction::ServerToClient), "{f:?}");
    }
    // In the plain recording the client quit first.
    let plain = decode("spice-plain.pcap", false);
    for f in &plain.flows {
        assert_eq!(f.closed_by, Some(Direction::ClientToServer), "{f:?}");
    }
}

/// The decode of each recorded capture as `tether decode` prints it, per
/// session and channel, with every event: reviewed as golden snapshots.
#[test]
fn recorded_decodes_are_golden() {
    for (name, snap) in [
        ("spice-plain.pcap", "spice__plain"),
        ("spice-password.pcap", "spice__password"),
        ("spice-killed.pcap", "spice__killed"),
    ] {
        let r = decode(name, true);
        let mut out = Vec::new();
        tether::cli::decode::render_text(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(snap, text);
        });
    }
    // Message detail (link caps, MAIN_INIT, net-test PINGs, NOTIFY, PONG
    // round trips) of the plain session's main channel.
    let r = decode("spice-plain.pcap", true);
    insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!("spice__plain_main_events", r.connections[0].events);
    });
}
