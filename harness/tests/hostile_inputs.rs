//! `corpora/hostile/` beyond damaged capture files: zip bombs, hostile
//! member names, malformed JSON in each bug-report member, a truncated
//! zip, 4 GiB SPICE and 2^62/2^63 WebSocket lengths, an out-of-order flood,
//! timelines that go backwards or past their horizon, and replay specs with
//! bad fields. Each gets a golden snapshot of the diagnostics tether gives.
//!
//! The binary fixtures are written by [`fixtures`] from the committed
//! bug-report zip; the test below checks the committed bytes are exactly
//! what it writes (`TETHER_REGENERATE=1` rewrites them).

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tether::capture::bugreport::{Limits, write_zip};
use tether::capture::writer::{Flags, PcapWriter, tcp_frame};
use tether::decode::pipeline::{DecodeOptions, decode_capture};
use tether::decode::spice::report::decode_bugreport;
use tether::decode::spice::wire::build;
use tether::flow::FlowConfig;
use tether::replay::spec::{check_expectations, load_spec, run_spec};
use tether::timeline::Micros;
use tether::timeline::synthetic::{Timeline, TimelineLimits};

fn hostile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/hostile")
}

/// The members of the committed ryll bug report, in order.
fn good_members() -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/bugreports/ryll-disconnect-main.zip");
    let mut zip = zip::ZipArchive::new(Cursor::new(std::fs::read(path).unwrap())).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

fn zip_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, Vec<u8>)> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    write_zip(&refs)
}

/// The good report with one member's bytes replaced.
fn with_member(name: &str, data: &[u8]) -> Vec<u8> {
    let mut members = good_members();
    let slot = members.iter_mut().find(|(n, _)| n == name).unwrap();
    slot.1 = data.to_vec();
    zip_of(&members)
}

/// Sets a member's declared uncompressed size in its local header and its
/// central directory entry, leaving its data as it is.
fn declare_size(zip: &mut [u8], name: &str, size: u32) {
    let find = |zip: &[u8], sig: &[u8; 4], name_len_at: usize, name_at: usize| {
        (0..zip.len().saturating_sub(name_at + name.len()))
            .find(|&i| {
                zip[i..i + 4] == *sig
                    && usize::from(u16::from_le_bytes([
                        zip[i + name_len_at],
                        zip[i + name_len_at + 1],
                    ])) == name.len()
                    && &zip[i + name_at..i + name_at + name.len()] == name.as_bytes()
            })
            .unwrap()
    };
    let local = find(zip, b"PK\x03\x04", 26, 30);
    zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
    let central = find(zip, b"PK\x01\x02", 28, 46);
    zip[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Client port, server port, what each side sends, hole before the
/// client's first bytes.
type Conn<'a> = (u16, u16, &'a [(bool, Vec<u8>)], u32);

/// A pcap of TCP connections, each a list of (client sends?, bytes), with
/// the three-way handshake and in-order sequence numbers; `skip` leaves a
/// hole of that many bytes before a connection's first client bytes.
fn capture(conns: &[Conn<'_>]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1, false, false).unwrap();
    let mut t = 1_000_000u64;
    for &(cport, sport, units, skip) in conns {
        let c = addr(&format!("127.0.0.1:{cport}"));
        let s = addr(&format!("127.0.0.1:{sport}"));
        let (mut cseq, mut sseq) = (1000u32, 5000u32);
        let mut put = |w: &mut PcapWriter<Vec<u8>>, frame: Vec<u8>| {
            t += 1000;
            w.write_packet(Micros(t), &frame).unwrap();
        };
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        let synack = Flags {
            syn: true,
            ack: true,
            ..Flags::default()
        };
        let ack = Flags {
            ack: true,
            ..Flags::default()
        };
        put(&mut w, tcp_frame(c, s, cseq, 0, syn, &[]));
        put(&mut w, tcp_frame(s, c, sseq, cseq + 1, synack, &[]));
        cseq += 1;
        sseq += 1;
        put(&mut w, tcp_frame(c, s, cseq, sseq, ack, &[]));
        cseq += skip;
        for (from_client, bytes) in units {
            for piece in bytes.chunks(1400) {
                if *from_client {
                    put(&mut w, tcp_frame(c, s, cseq, sseq, ack, piece));
                    cseq = cseq.wrapping_add(piece.len() as u32);
                } else {
                    put(&mut w, tcp_frame(s, c, sseq, cseq, ack, piece));
                    sseq = sseq.wrapping_add(piece.len() as u32);
                }
            }
        }
    }
    w.into_inner()
}

/// A SPICE link stage (mini headers, no auth on the wire beyond the
/// ticket), as the client and server send it.
fn spice_link(channel: u8) -> Vec<(bool, Vec<u8>)> {
    const COMMON: u32 = 0x0B;
    vec![
        (true, build::link_mess(7, channel, 0, &[COMMON], &[])),
        (false, build::link_reply(0, &[COMMON], &[0x5])),
        (true, 1u32.to_le_bytes().to_vec()),
        (true, vec![0xA5; 128]),
        (false, 0u32.to_le_bytes().to_vec()),
    ]
}

/// A WebSocket upgrade, then a binary server frame whose 64-bit length is
/// `len`, then a few payload bytes.
fn ws_huge_frame(len: u64) -> Vec<(bool, Vec<u8>)> {
    let request = "GET /websockify HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let mut frame = vec![0x82, 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(b"RFB 003.008\n");
    // A small client frame after it (four zero bytes under the mask
    // 01 02 03 04): that direction still decodes.
    let client = vec![0x82, 0x84, 1, 2, 3, 4, 1, 2, 3, 4];
    vec![
        (true, request.as_bytes().to_vec()),
        (false, response.as_bytes().to_vec()),
        (false, frame),
        (true, client),
    ]
}

/// Every generated binary fixture, by file name.
fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let good = zip_of(&good_members());
    let mut out = Vec::new();

    // 16 MiB of one byte deflates to a few KiB: a ratio far over 100.
    let members: Vec<(String, Vec<u8>)> = good_members()
        .into_iter()
        .filter(|(n, _)| n != "traffic.pcap")
        .collect();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let deflated = stored.compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in &members {
        w.start_file(name.as_str(), stored).unwrap();
        w.write_all(data).unwrap();
    }
    w.start_file("traffic.pcap", deflated).unwrap();
    w.write_all(&vec![0u8; 16 << 20]).unwrap();
    out.push(("zip-bomb-ratio.zip", w.finish().unwrap().into_inner()));

    // A member that declares 4 GiB uncompressed.
    let mut declared = good.clone();
    declare_size(&mut declared, "traffic.pcap", 0xFFFF_FFF0);
    out.push(("zip-bomb-declared-4gib.zip", declared));

    // Too many members: the report's own come first and are still read.
    let mut members = good_members();
    for i in 0..70 {
        members.push((format!("pad/{i:03}.txt"), vec![b'x']));
    }
    out.push(("zip-too-many-members.zip", zip_of(&members)));

    let mut named = good_members();
    named.push((
        "../../.ssh/authorized_keys".into(),
        b"ssh-ed25519 AAAA".to_vec(),
    ));
    out.push(("zip-member-dotdot.zip", zip_of(&named)));
    let mut named = good_members();
    named.insert(
        0,
        ("/etc/cron.d/evil".into(), b"* * * * * root sh".to_vec()),
    );
    out.push(("zip-member-absolute.zip", zip_of(&named)));

    // Malformed JSON in each member, each malformed its own way.
    let original = |name: &str| {
        good_members()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
    };
    let meta = original("metadata.json");
    out.push((
        "zip-bad-json-metadata.zip",
        with_member("metadata.json", &meta[..meta.len() * 2 / 3]),
    ));
    let cause = String::from_utf8(original("disconnect-cause.json")).unwrap();
    let cause = cause.replacen("\"channel\": \"main\"", "\"channel\": 7", 1);
    assert!(cause.contains("\"channel\": 7"));
    out.push((
        "zip-bad-json-disconnect-cause.zip",
        with_member("disconnect-cause.json", cause.as_bytes()),
    ));
    let mut session = original("session.json");
    session.extend_from_slice(b"\n{\"again\": true}\n");
    out.push((
        "zip-bad-json-session.zip",
        with_member("session.json", &session),
    ));
    out.push((
        "zip-bad-json-channel-state.zip",
        with_member("channel-state.json", b"{\"main\": \"\xff\xfe not utf-8\"}"),
    ));

    out.push(("zip-truncated.zip", good[..good.len() * 3 / 5].to_vec()));

    // SPICE: main decodes; display's server claims a 4 GiB message.
    let mut main = spice_link(1);
    main.push((false, build::mini(4, &build::ping_body(1, 99, 0))));
    main.push((true, build::mini(3, &build::ping_body(1, 99, 0))));
    let mut display = spice_link(2);
    let mut huge = Vec::new();
    huge.extend_from_slice(&302u16.to_le_bytes());
    huge.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    huge.extend_from_slice(&[0x55; 64]);
    display.push((false, huge));
    display.push((true, build::mini(101, &[0; 14])));
    out.push((
        "spice-4gib-message.pcap",
        capture(&[(40001, 5900, &main, 0), (40002, 5900, &display, 0)]),
    ));

    out.push((
        "ws-length-2pow62.pcap",
        capture(&[(40011, 6080, &ws_huge_frame(1 << 62), 0)]),
    ));
    out.push((
        "ws-length-2pow63.pcap",
        capture(&[(40021, 6080, &ws_huge_frame(1 << 63), 0)]),
    ));

    // Connection A's first 100 client bytes never appear, and 8 KiB wait
    // behind the hole; connection B is an ordinary RFB greeting.
    let flood: Vec<(bool, Vec<u8>)> = (0..8u8).map(|i| (true, vec![b'a' + i; 1024])).collect();
    let rfb = vec![
        (false, b"RFB 003.008\n".to_vec()),
        (true, b"RFB 003.008\n".to_vec()),
    ];
    out.push((
        "ooo-flood.pcap",
        capture(&[(40031, 5901, &flood, 100), (40032, 5901, &rfb, 0)]),
    ));
    out
}

#[test]
fn committed_fixtures_are_what_the_generator_writes() {
    let regenerate = std::env::var_os("TETHER_REGENERATE").is_some();
    for (name, bytes) in fixtures() {
        let path = hostile_dir().join(name);
        assert!(bytes.len() < 256 << 10, "{name}: {} bytes", bytes.len());
        if regenerate {
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(committed == bytes, "{name}: rerun with TETHER_REGENERATE=1");
    }
}

fn snapshot(name: &str, value: &serde_json::Value) {
    insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(format!("hostile__{name}"), value);
    });
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(hostile_dir().join(name)).unwrap()
}

#[test]
fn hostile_zips_give_located_findings_and_keep_the_rest() {
    let names = [
        "zip-bomb-ratio.zip",
        "zip-bomb-declared-4gib.zip",
        "zip-too-many-members.zip",
        "zip-member-dotdot.zip",
        "zip-member-absolute.zip",
        "zip-bad-json-metadata.zip",
        "zip-bad-json-disconnect-cause.zip",
        "zip-bad-json-session.zip",
        "zip-bad-json-channel-state.zip",
        "zip-truncated.zip",
    ];
    for name in names {
        let value = match decode_bugreport(
            &read(name)[..],
            name,
            DecodeOptions::default(),
            Limits::default(),
        ) {
            Ok(z) => {
                for f in &z.report.findings {
                    assert!(f.location.file.is_some(), "{name}: unlocated {f}");
                }
                serde_json::json!({
                    "members": z.report.members.len(),
                    "read": {
                        "metadata": z.report.metadata.is_some(),
                        "session": z.report.session.is_some(),
                        "channel_state": z.report.channel_state.is_some(),
                        "disconnect_cause": z.report.disconnect_cause.is_some(),
                        "pcap_connections": z.pcap.as_ref().map(|p| p.connections.len()),
                    },
                    "findings": z.report.findings.iter().map(|f| format!("{} {}: {}", f.code, f.location, f.message)).collect::<Vec<_>>(),
                })
            }
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        snapshot(name.trim_end_matches(".zip"), &value);
    }
}

/// Per connection: its stack, message counts and findings.
fn decode_summary(bytes: &[u8], name: &str, options: DecodeOptions) -> serde_json::Value {
    let r = decode_capture(bytes, name, options).unwrap();
    serde_json::json!({
        "diagnostics": r.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "connections": r.connections.iter().map(|c| serde_json::json!({
            "connection": c.connection.0,
            "stack": c.stack.join("/"),
            "counts": c.counts,
            "findings": c.findings.iter().map(|f| format!("{} {}: {}", f.code, f.location, f.message)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[test]
fn huge_lengths_stop_one_direction_and_nothing_else() {
    for name in [
        "spice-4gib-message.pcap",
        "ws-length-2pow62.pcap",
        "ws-length-2pow63.pcap",
    ] {
        let value = decode_summary(&read(name), name, DecodeOptions::default());
        snapshot(name.trim_end_matches(".pcap"), &value);
    }
    // The shape the snapshots show, asserted: the 4 GiB SPICE message is a
    // limit hit on display's server side only; main decodes its ping.
    let r = decode_capture(
        &read("spice-4gib-message.pcap")[..],
        "s",
        DecodeOptions::default(),
    )
    .unwrap();
    let codes = |i: usize| -> Vec<&str> {
        r.connections[i]
            .findings
            .iter()
            .map(|f| f.code.as_ref())
            .collect()
    };
    assert!(codes(0).is_empty(), "{:?}", codes(0));
    assert_eq!(r.connections[0].counts.s2c.get("SPICE_MSG_PING"), Some(&1));
    assert_eq!(codes(1), ["limit.message_size"]);
    // The client side of display still decodes.
    assert_eq!(
        r.connections[1].counts.c2s.get("SPICE_MSGC_DISPLAY_INIT"),
        Some(&1)
    );
}

#[test]
fn an_out_of_order_flood_hits_its_limit_on_one_connection() {
    let bytes = read("ooo-flood.pcap");
    let small = DecodeOptions {
        flow: FlowConfig {
            max_out_of_order_bytes: 4096,
            ..FlowConfig::default()
        },
        ..DecodeOptions::default()
    };
    let value = serde_json::json!({
        "default_limits": decode_summary(&bytes, "ooo-flood.pcap", DecodeOptions::default()),
        "max_ooo_bytes_4096": decode_summary(&bytes, "ooo-flood.pcap", small.clone()),
    });
    snapshot("ooo-flood", &value);
    let r = decode_capture(&bytes[..], "o", small).unwrap();
    let all: Vec<&str> = r
        .connections
        .iter()
        .flat_map(|c| c.findings.iter().map(|f| f.code.as_ref()))
        .chain(r.diagnostics.iter().map(|f| f.code.as_ref()))
        .collect();
    assert!(all.contains(&"limit.ooo_bytes"), "{all:?}");
    assert_eq!(r.connections[1].stack, ["tcp", "rfb"]);
    assert_eq!(r.connections[1].counts.c2s.get("ProtocolVersion"), Some(&1));
}

fn hostile_files(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(hostile_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn hostile_timelines_are_located_errors() {
    let files = hostile_files("timeline-");
    assert!(files.len() >= 8, "{files:?}");
    let mut errors = BTreeMap::new();
    for name in files {
        let text = String::from_utf8(read(&name)).unwrap();
        let e = Timeline::parse(&text, &name).expect_err(&name);
        assert!(e.line >= 1 && e.column >= 1, "{name}: {e}");
        errors.insert(name, e.to_string());
    }
    snapshot("timelines", &serde_json::json!(errors));
}

#[test]
fn timeline_length_is_limited() {
    let mut text = String::from("horizon = \"1h\"\n");
    for i in 0..5 {
        text.push_str(&format!(
            "\n[[event]]\nkind = \"keystroke\"\nat = \"{i}m\"\n"
        ));
    }
    let limits = TimelineLimits {
        max_events: 4,
        ..TimelineLimits::default()
    };
    let e = Timeline::parse_with(&text, "t.toml", limits).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.toml:19:1: field `event`: limit.timeline_events: 5 events, over the limit of 4"
    );
    assert!(Timeline::parse(&text, "t.toml").is_ok());
}

#[test]
fn hostile_replay_specs_are_located_errors() {
    let files = hostile_files("replay-");
    assert!(files.len() >= 9, "{files:?}");
    let mut errors = BTreeMap::new();
    for name in files {
        // Relative to the package, so the message is the same everywhere.
        let path = Path::new("../corpora/hostile").join(&name);
        let e = load_spec(&path)
            .and_then(|spec| {
                let verdict = run_spec(&spec)?;
                check_expectations(&spec, &verdict).map(|_| ())
            })
            .expect_err(&name);
        errors.insert(name, e.to_string());
    }
    snapshot("replay_specs", &serde_json::json!(errors));
}

/// Found by the timeline fuzzer (a 2 s timeout under the sanitizers):
/// typing every 14 ms for 40 minutes. Dense, not a hang: the model runs
/// it to a verdict in linear work, well inside its step bound.
#[test]
fn a_dense_typing_script_runs_to_a_verdict() {
    let name = "fuzz-timeline-dense-typing.toml";
    let text = String::from_utf8(read(name)).unwrap();
    let t = Timeline::parse(&text, name).unwrap();
    let v = tether::model::registry::run_timeline(&t, name, "spice-ryll", &[]).unwrap();
    assert!(v.steps > 150_000 && v.steps < 5_000_000, "{}", v.steps);
    assert!(
        v.violations.iter().all(|x| x.code != "model.step_bound"),
        "{:?}",
        v.violations
    );
    // Same bytes, same verdict.
    let again = tether::model::registry::run_timeline(&t, name, "spice-ryll", &[]).unwrap();
    assert_eq!(format!("{v:?}"), format!("{again:?}"));
}
