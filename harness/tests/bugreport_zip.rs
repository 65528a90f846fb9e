//! ryll bug-report zips: a fixture written in ryll's documented format
//! (`capture::bugreport::write_fixture`) decodes into a per-channel table
//! that agrees with its own `disconnect-cause.json`; damage to any member
//! is a located error and the rest is still read; zip bombs and hostile
//! names are skipped as located findings.

use std::io::Cursor;
use std::path::Path;
use tether::capture::bugreport::{
    BugReportError, FixtureEnd, Flavor, Limits, RingMessage, read_bugreport, write_fixture,
    write_zip,
};
use tether::decode::pipeline::DecodeOptions;
use tether::decode::spice::report::{ZipDecode, decode_bugreport};
use tether::decode::spice::wire::build;
use tether::timeline::Micros;

fn ms(n: u64) -> Micros {
    Micros(n * 1000)
}

/// A main-channel ring starting mid-session (ryll records post-link
/// messages only), plus display traffic that only the per-channel
/// diagnostics count: a disconnect zip's pcap holds the reporting
/// channel's ring alone.
fn sample() -> (Vec<RingMessage>, FixtureEnd) {
    let mut m = Vec::new();
    let mut push = |at: Micros, channel: &'static str, from_server: bool, bytes: Vec<u8>| {
        m.push(RingMessage {
            at,
            channel,
            from_server,
            bytes,
        })
    };
    let mut init = 0x00C0_FFEEu32.to_le_bytes().to_vec();
    init.resize(32, 0);
    push(ms(500), "main", true, build::mini(103, &init));
    push(ms(502), "main", false, build::mini(104, &[]));
    push(
        ms(510),
        "main",
        true,
        build::mini(104, &[2, 0, 0, 0, 2, 0, 4, 0]),
    );
    push(
        ms(520),
        "display",
        true,
        build::mini(3, &build::set_ack_body(1, 20)),
    );
    push(
        ms(521),
        "display",
        false,
        build::mini(1, &1u32.to_le_bytes()),
    );
    for k in 0..12u64 {
        push(
            ms(600 + 40 * k),
            "display",
            true,
            build::mini(304, &[k as u8; 700]),
        );
    }
    // Server pings on main every 15 s, answered at once.
    for (k, t) in [1_000u64, 16_000, 31_000].iter().enumerate() {
        let id = 100 + k as u32;
        for dt in [0, 1] {
            push(
                ms(t + dt),
                "main",
                true,
                build::mini(4, &build::ping_body(id, t * 1000, 0)),
            );
            push(
                ms(t + dt + 2),
                "main",
                false,
                build::mini(3, &build::ping_body(id, t * 1000, 0)),
            );
        }
    }
    push(
        ms(40_000),
        "main",
        true,
        build::mini(106, &40_000u32.to_le_bytes()),
    );
    (
        m,
        FixtureEnd {
            channel: "main",
            disconnect_kind: "ServerClosed",
            at: ms(47_500),
            client_port: None,
            error_message: None,
        },
    )
}

fn decode(bytes: &[u8]) -> ZipDecode {
    decode_bugreport(
        bytes,
        "ryll-disconnect-main.zip",
        DecodeOptions::default(),
        Limits::default(),
    )
    .unwrap()
}

fn render(z: &ZipDecode) -> String {
    let mut out = Vec::new();
    tether::cli::decode::render_zip(z, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn committed_fixture_is_what_the_generator_writes() {
    let (msgs, end) = sample();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/bugreports/ryll-disconnect-main.zip");
    let bytes = write_fixture(&msgs, &end, Flavor::Current);
    assert_eq!(bytes, write_fixture(&msgs, &end, Flavor::Current));
    if std::env::var_os("TETHER_REGEN").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "TETHER_REGEN=1 rewrites it"
    );
}

#[test]
fn fixture_table_agrees_with_its_disconnect_cause() {
    let (msgs, end) = sample();
    let z = decode(&write_fixture(&msgs, &end, Flavor::Current));
    assert!(z.report.findings.is_empty(), "{:?}", z.report.findings);
    assert!(z.disagreements.is_empty(), "{:?}", z.disagreements);
    let pcap = z.pcap.as_ref().unwrap();
    let findings: Vec<_> = pcap.connections.iter().flat_map(|c| &c.findings).collect();
    assert!(findings.is_empty(), "{findings:?}");
    let row = |ch: &str, src: &str| {
        z.rows
            .iter()
            .find(|r| r.channel == ch && r.source == src)
            .cloned()
            .unwrap()
    };
    let (zip, ours) = (row("main", "zip"), row("main", "pcap"));
    assert_eq!((zip.pings, zip.pongs), (Some(6), Some(6)));
    assert_eq!((ours.pings, ours.pongs), (Some(6), Some(6)));
    assert_eq!(zip.bytes_in, ours.bytes_in);
    assert_eq!(zip.bytes_out, ours.bytes_out);
    assert_eq!(ours.last_recv, Some(40.0));
    assert_eq!(zip.ended.as_deref(), Some("ended (ServerClosed)"));
    assert_eq!(ours.session, Some(0x00C0_FFEE));
    // PONGs pair with their PINGs: 2 ms round trips.
    assert_eq!((ours.rtt_min, ours.rtt_max), (Some(ms(2)), Some(ms(2))));
    // Display is only in the zip's diagnostics.
    assert_eq!(row("display", "zip").bytes_in, Some(8 + 6 + 12 * 706));
    assert!(
        !z.rows
            .iter()
            .any(|r| r.channel == "display" && r.source == "pcap")
    );
    insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("bugreport__disconnect_main", render(&z));
    });
}

#[test]
fn the_zip_names_a_ring_whose_ports_follow_no_convention() {
    let (msgs, mut end) = sample();
    end.client_port = Some(40_001);
    let z = decode(&write_fixture(&msgs, &end, Flavor::Current));
    assert!(z.disagreements.is_empty(), "{:?}", z.disagreements);
    let ours = z.rows.iter().find(|r| r.source == "pcap").unwrap();
    assert_eq!(ours.channel, "main");
    assert_eq!((ours.pings, ours.pongs), (Some(6), Some(6)));
    // Without the zip, the same pcap is not recognised as SPICE at all.
    let pcap = {
        let mut a =
            zip::ZipArchive::new(Cursor::new(write_fixture(&msgs, &end, Flavor::Current))).unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut a.by_name("traffic.pcap").unwrap(), &mut v).unwrap();
        v
    };
    let plain =
        tether::decode::pipeline::decode_capture(&pcap[..], "t.pcap", DecodeOptions::default())
            .unwrap();
    assert_ne!(
        plain.connections[0].protocol,
        tether::decode::Protocol::Spice
    );
}

#[test]
fn older_field_sets_are_read() {
    let (msgs, end) = sample();
    let z = decode(&write_fixture(&msgs, &end, Flavor::Older));
    assert!(z.report.findings.is_empty(), "{:?}", z.report.findings);
    assert!(z.disagreements.is_empty(), "{:?}", z.disagreements);
    let m = z.report.metadata.as_ref().unwrap();
    assert_eq!(m.target, None);
    assert_eq!(m.target_host.as_deref(), Some("spice.example"));
    let cause = z.report.disconnect_cause.as_ref().unwrap();
    assert_eq!(cause.disconnect_kind, None);
    assert_eq!(cause.per_channel["main"].state, None);
    assert_eq!(cause.per_channel["main"].ping_recv_count, Some(6));
}

#[test]
fn disagreements_between_zip_and_pcap_are_findings() {
    let (mut msgs, end) = sample();
    // The zip counts one more PING than its ring holds: write the fixture
    // from a list with an extra PING, then drop that PING from the pcap.
    let extra = RingMessage {
        at: ms(45_000),
        channel: "main",
        from_server: true,
        bytes: build::mini(4, &build::ping_body(999, 1, 0)),
    };
    msgs.push(extra);
    let counted = write_fixture(&msgs, &end, Flavor::Current);
    msgs.pop();
    let ring = write_fixture(&msgs, &end, Flavor::Current);
    let member = |zip: &[u8], name: &str| {
        let mut a = zip::ZipArchive::new(Cursor::new(zip.to_vec())).unwrap();
        let mut f = a.by_name(name).unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut v).unwrap();
        v
    };
    let names = [
        "metadata.json",
        "session.json",
        "channel-state.json",
        "traffic.pcap",
        "disconnect-cause.json",
    ];
    let mixed: Vec<(&str, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let from = if *n == "disconnect-cause.json" {
                &counted
            } else {
                &ring
            };
            (*n, member(from, n))
        })
        .collect();
    let z = decode(&write_zip(&mixed));
    let msgs: Vec<String> = z.disagreements.iter().map(|f| f.message.clone()).collect();
    assert_eq!(
        msgs,
        [
            "main: the zip says 7 PINGs received, the pcap shows 6",
            "main: the zip says 188 bytes received, the pcap shows 170",
            "main: the zip says last receive at 45.000000 s, the pcap at 40.000000 s",
        ]
    );
    assert!(
        z.disagreements
            .iter()
            .all(|f| f.code == "bugreport.disagreement"
                && f.location.file.as_deref()
                    == Some("ryll-disconnect-main.zip:disconnect-cause.json"))
    );
}

#[test]
fn each_damaged_member_is_located_and_the_rest_still_read() {
    let (msgs, end) = sample();
    let good = write_fixture(&msgs, &end, Flavor::Current);
    let mut archive = zip::ZipArchive::new(Cursor::new(good.clone())).unwrap();
    let spans: Vec<(String, u64, u64)> = (0..archive.len())
        .map(|i| {
            let f = archive.by_index_raw(i).unwrap();
            (f.name().to_string(), f.data_start(), f.size())
        })
        .collect();
    for (name, start, size) in &spans {
        let wanted = [
            "metadata.json",
            "session.json",
            "channel-state.json",
            "traffic.pcap",
            "disconnect-cause.json",
        ];
        if !wanted.contains(&name.as_str()) {
            continue;
        }
        let mut bad = good.clone();
        // Overwrite the middle of the member's stored bytes.
        let mid = (*start + size / 2) as usize;
        bad[mid..mid + 4].copy_from_slice(b"\xff\x00{]");
        let z = decode(&bad);
        let damaged: Vec<_> = z
            .report
            .findings
            .iter()
            .filter(|f| f.code == "bugreport.damaged_member")
            .collect();
        assert_eq!(damaged.len(), 1, "{name}: {:?}", z.report.findings);
        let loc = &damaged[0].location;
        assert_eq!(
            loc.file.as_deref(),
            Some(format!("ryll-disconnect-main.zip:{name}").as_str())
        );
        assert_eq!(loc.file_offset, Some(*start), "{name}");
        // Everything else is still there.
        let r = &z.report;
        if name != "metadata.json" {
            assert!(r.metadata.is_some(), "{name}");
        }
        if name != "disconnect-cause.json" {
            assert!(r.disconnect_cause.is_some(), "{name}");
        }
        if name != "traffic.pcap" {
            assert!(z.pcap.is_some(), "{name}");
            assert!(z.rows.iter().any(|r| r.source == "pcap"), "{name}");
        } else {
            // The pcap is still decoded as far as it goes.
            assert!(z.pcap.is_some());
        }
        if name != "session.json" {
            assert!(r.session.is_some(), "{name}");
        }
        // A damaged JSON member that no longer parses says where.
        if name.ends_with(".json") {
            let json_err = r.findings.iter().find(|f| f.code == "bugreport.bad_json");
            assert!(json_err.is_some(), "{name}: {:?}", r.findings);
            assert!(json_err.unwrap().message.contains("line"), "{name}");
        }
    }
}

#[test]
fn a_damaged_local_header_skips_that_member_only() {
    let (msgs, end) = sample();
    let mut bad = write_fixture(&msgs, &end, Flavor::Current);
    let mut archive = zip::ZipArchive::new(Cursor::new(bad.clone())).unwrap();
    let at = archive.by_name("session.json").unwrap().header_start() as usize;
    drop(archive);
    bad[at..at + 4].copy_from_slice(b"XXXX");
    let z = decode(&bad);
    let f: Vec<String> = z
        .report
        .findings
        .iter()
        .map(|f| format!("{} {}", f.code, f.location))
        .collect();
    assert_eq!(
        f,
        ["bugreport.damaged_member ryll-disconnect-main.zip:session.json"]
    );
    assert!(z.report.session.is_none());
    assert!(z.report.metadata.is_some() && z.report.disconnect_cause.is_some());
    assert!(z.disagreements.is_empty());
}

#[test]
fn hostile_names_are_skipped_and_the_rest_read() {
    for name in [
        "../evil.json",
        "/etc/passwd",
        "a/../../b",
        "C:\\x",
        "..\\up",
    ] {
        let z = write_zip(&[
            ("metadata.json", br#"{"channel":"main"}"#.to_vec()),
            (name, b"x".to_vec()),
        ]);
        let r = read_bugreport(Cursor::new(z), "h.zip", Limits::default()).unwrap();
        let hostile: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.code == "bugreport.hostile_name")
            .collect();
        assert_eq!(hostile.len(), 1, "{name}: {:?}", r.findings);
        assert!(hostile[0].message.contains(&format!("{name:?}")), "{name}");
        assert_eq!(hostile[0].location.file.as_deref(), Some("h.zip"));
        assert_eq!(r.members, ["metadata.json"], "{name}");
        assert_eq!(r.channel(), Some("main"), "{name}");
    }
}

fn deflated(members: &[(&str, usize)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, len) in members {
        w.start_file(*name, o).unwrap();
        w.write_all(&vec![b'0'; *len]).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn codes(r: &tether::capture::bugreport::BugReport) -> Vec<String> {
    r.findings
        .iter()
        .map(|f| format!("{} {}", f.code, f.location))
        .collect()
}

#[test]
fn zip_bombs_are_skipped_as_limit_findings() {
    // 8 MiB of one byte inflate from a few KiB: the ratio gives it away,
    // and the small member beside it is still read.
    let z = deflated(&[("traffic.pcap", 8 << 20), ("session.json", 2)]);
    assert!(z.len() < 64 << 10);
    let r = read_bugreport(Cursor::new(z), "b.zip", Limits::default()).unwrap();
    let c = codes(&r);
    assert!(
        c[0].starts_with("limit.zip_ratio b.zip:traffic.pcap, file offset "),
        "{c:?}"
    );
    assert!(r.traffic_pcap.is_none());
    assert!(r.findings[0].message.contains("ratio over 100"));
    // "00" is not JSON: a located bad_json finding.
    assert!(
        c.iter()
            .any(|c| c.starts_with("bugreport.bad_json b.zip:session.json")),
        "{c:?}"
    );
    // Over the absolute member cap (ratio allowed).
    let limits = Limits {
        max_member_bytes: 1 << 20,
        max_ratio: u64::MAX,
        ..Limits::default()
    };
    let r = read_bugreport(
        Cursor::new(deflated(&[("traffic.pcap", 2 << 20)])),
        "b.zip",
        limits,
    )
    .unwrap();
    assert!(codes(&r)[0].starts_with("limit.zip_uncompressed b.zip:traffic.pcap, file offset "));
    assert!(
        r.findings[0].message.contains("member limit"),
        "{:?}",
        r.findings
    );
    // Over the total: the first member fits, the second does not.
    let limits = Limits {
        max_total_bytes: 3 << 20,
        max_ratio: u64::MAX,
        ..Limits::default()
    };
    let z = deflated(&[("traffic.pcap", 2 << 20), ("metadata.json", 2 << 20)]);
    let r = read_bugreport(Cursor::new(z), "b.zip", limits).unwrap();
    assert_eq!(r.traffic_pcap.as_ref().map(Vec::len), Some(2 << 20));
    let c = codes(&r);
    assert!(
        c[0].starts_with("limit.zip_uncompressed b.zip:metadata.json, file offset "),
        "{c:?}"
    );
    assert!(r.findings[0].message.contains("in all"), "{c:?}");
    // Too many members: the first few are looked at.
    let limits = Limits {
        max_members: 2,
        ..Limits::default()
    };
    let z = write_zip(&[
        ("a", vec![]),
        ("metadata.json", b"{}".to_vec()),
        ("session.json", b"{}".to_vec()),
    ]);
    let r = read_bugreport(Cursor::new(z), "m.zip", limits).unwrap();
    assert_eq!(codes(&r)[0], "limit.zip_members m.zip");
    assert_eq!(r.members, ["a", "metadata.json"]);
    assert!(r.metadata.is_some() && r.session.is_none());
    // Not a zip at all is still refused as a whole.
    let err = read_bugreport(
        Cursor::new(b"PK\x03\x04junk".to_vec()),
        "j.zip",
        Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, BugReportError::NotAZip { .. }), "{err}");
}

fn member(zip: &[u8], name: &str) -> Vec<u8> {
    let mut a = zip::ZipArchive::new(Cursor::new(zip.to_vec())).unwrap();
    let mut f = a.by_name(name).unwrap();
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut v).unwrap();
    v
}

#[test]
fn a_truncated_ring_may_hold_less_than_the_zip_counts() {
    // The ring lost its oldest messages (the first ping pair) to eviction;
    // the diagnostics still count the whole session.
    let (msgs, end) = sample();
    let whole = write_fixture(&msgs, &end, Flavor::Current);
    let kept: Vec<RingMessage> = msgs
        .iter()
        .filter(|m| !(m.channel == "main" && m.at < ms(16_000)))
        .cloned()
        .collect();
    let ring = write_fixture(&kept, &end, Flavor::Current);
    let with_truncated = |truncated: bool| {
        let mut meta: serde_json::Value =
            serde_json::from_slice(&member(&whole, "metadata.json")).unwrap();
        meta["traffic_capture"]["truncated"] = truncated.into();
        let members = vec![
            ("metadata.json", serde_json::to_vec(&meta).unwrap()),
            ("session.json", member(&whole, "session.json")),
            ("channel-state.json", member(&whole, "channel-state.json")),
            ("traffic.pcap", member(&ring, "traffic.pcap")),
            (
                "disconnect-cause.json",
                member(&whole, "disconnect-cause.json"),
            ),
        ];
        decode(&write_zip(&members))
    };
    let z = with_truncated(true);
    assert!(z.disagreements.is_empty(), "{:?}", z.disagreements);
    let ours = z.rows.iter().find(|r| r.source == "pcap").unwrap();
    assert_eq!((ours.pings, ours.pongs), (Some(4), Some(4)));
    // The same pcap in a report that claims nothing was dropped disagrees.
    let z = with_truncated(false);
    let what: Vec<&str> = z
        .disagreements
        .iter()
        .map(|f| f.message.split(", the pcap").next().unwrap())
        .collect();
    assert_eq!(
        what,
        [
            "main: the zip says 6 PINGs received",
            "main: the zip says 6 PONGs sent",
            "main: the zip says 170 bytes received",
            "main: the zip says 114 bytes sent",
        ]
    );
}
