//! `tether decode` on WebSocket captures: the text listing of events is a
//! golden snapshot, and the JSON carries connection, stack, counts per
//! direction per message name, and findings.

use std::path::Path;
use std::process::Command;

fn corpus(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn tether(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn text_listing_of_a_websocket_session() {
    for (name, rel) in [
        (
            "message-too-big-status",
            "public/zeek-websocket/message-too-big-status.pcap",
        ),
        (
            "control-frag",
            "public/suricata-verify/websocket-control-frag/input.pcap",
        ),
        (
            "oversized-close-frame",
            "public/zeek-websocket/oversized-close-frame.pcapng",
        ),
    ] {
        let path = corpus(rel);
        let text = tether(&["decode", "--events", "--threads", "1", &path]);
        // The file name printed is the path given; keep the snapshot stable.
        let text = text.replace(&path, rel);
        insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(format!("ws__cli__{name}"), text);
        });
    }
}

#[test]
fn json_has_connection_stack_counts_and_findings() {
    let json = tether(&[
        "decode",
        "--format",
        "json",
        &corpus("recorded/ws-novnc.pcap"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = &v["captures"][0]["connections"][0];
    assert_eq!(c["connection"], 0);
    assert_eq!(c["stack"], serde_json::json!(["tcp", "ws", "rfb"]));
    // Frame counts equal tshark's (corpora/recorded/ws-novnc.pcap.tshark.txt).
    assert_eq!(c["counts"]["c2s"]["binary"], 14);
    assert_eq!(c["counts"]["s2c"]["binary"], 8);
    assert_eq!(c["counts"]["s2c"]["ping"], 7);
    assert_eq!(c["counts"]["c2s"]["pong"], 7);
    assert_eq!(c["counts"]["c2s"]["close"], 1);
    assert_eq!(c["counts"]["s2c"]["close"], 1);
    assert_eq!(c["findings"], serde_json::json!([]));
}

/// Every event carries the capture frame that completed it, numbered as
/// Wireshark numbers them: the frames of tether's WebSocket frame events
/// are exactly the packets tshark shows WebSocket frames in
/// (`corpora/recorded/ws-novnc.pcap.tshark.txt`).
#[test]
fn events_carry_wireshark_frame_numbers() {
    let json = tether(&[
        "decode",
        "--events",
        "--format",
        "json",
        &corpus("recorded/ws-novnc.pcap"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let events = v["captures"][0]["connections"][0]["events"]
        .as_array()
        .unwrap();
    assert!(events.iter().all(|e| e["frame"].as_u64().is_some()));
    let mut ours: Vec<u64> = events
        .iter()
        .filter(|e| {
            e["protocol"] == "ws"
                && (e["kind"] == "ping"
                    || e["kind"] == "pong"
                    || (e["kind"] == "message" && e["detail"][2][0] == "opcode"))
        })
        .map(|e| e["frame"].as_u64().unwrap())
        .collect();
    ours.dedup();
    let oracle = std::fs::read_to_string(corpus("recorded/ws-novnc.pcap.tshark.txt")).unwrap();
    let section = oracle
        .split("## WebSocket frames")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let theirs: Vec<u64> = section
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').next()?.parse().ok())
        .collect();
    assert!(!theirs.is_empty());
    assert_eq!(ours, theirs);
}
