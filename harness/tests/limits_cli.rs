//! `--max-...` flags on `tether decode` and `tether flows`: a small limit
//! is reported as a located `limit.*` finding on the connection that hit
//! it, and every other connection decodes exactly as without the limit.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn corpus(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn tether_json(args: &[&str]) -> Value {
    tether_json_exit(args, 0)
}

/// A limit on a decoder is a finding (exit 0); one that refuses part of a
/// bug-report zip leaves the input not fully read (exit 2).
fn tether_json_exit(args: &[&str], code: i32) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // decode: one capture's report; flows: the rows as they are.
    match v.get("captures").and_then(|c| c.get(0)) {
        Some(c) if v["bug_reports"].as_array().is_some_and(|b| b.is_empty()) => c.clone(),
        _ => v,
    }
}

fn codes(conn: &Value) -> Vec<String> {
    conn["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `decode` with and without `flags`; returns both reports.
fn with_and_without(file: &str, flags: &[&str]) -> (Value, Value) {
    let path = corpus(file);
    let mut args = vec!["decode", "--threads", "1", path.as_str()];
    let plain = tether_json(&args);
    args.extend_from_slice(flags);
    (plain, tether_json(&args))
}

#[test]
fn a_small_spice_message_limit_stops_only_the_main_server_side() {
    let (plain, limited) = with_and_without(
        "recorded/spice-plain.pcap",
        &["--max-spice-server-message", "64KiB"],
    );
    let (p, l) = (
        plain["connections"].as_array().unwrap(),
        limited["connections"].as_array().unwrap(),
    );
    assert_eq!(p.len(), 4);
    assert_eq!(l.len(), 4);
    // Connection 0 is main: its bandwidth-test PING carries 256 KiB; no
    // other channel sends a message over 7 KB.
    assert!(codes(&p[0]).is_empty(), "{:?}", codes(&p[0]));
    assert_eq!(codes(&l[0]), ["limit.message_size"]);
    let f = &l[0]["findings"][0];
    assert_eq!(f["location"]["direction"], "s2c");
    assert_eq!(f["location"]["connection"], 0);
    assert!(f["location"]["frame"].as_u64().is_some());
    assert!(f["message"].as_str().unwrap().contains("65536-byte limit"));
    // Its client side decodes as before (the PONGs to PINGs never decoded
    // are not blamed on the client); display, inputs and cursor are
    // identical.
    assert_eq!(l[0]["counts"]["c2s"], p[0]["counts"]["c2s"]);
    assert_ne!(l[0]["counts"]["s2c"], p[0]["counts"]["s2c"]);
    for i in 1..4 {
        assert_eq!(l[i], p[i], "connection {i}");
    }
}

#[test]
fn a_small_websocket_message_limit_stops_only_the_websocket_leg() {
    let (plain, limited) =
        with_and_without("recorded/rfb-novnc-legs.pcap", &["--max-ws-message", "64"]);
    let (p, l) = (
        plain["connections"].as_array().unwrap(),
        limited["connections"].as_array().unwrap(),
    );
    assert!(codes(&p[0]).is_empty());
    let c = codes(&l[0]);
    assert!(c.iter().all(|c| c == "limit.message_size"), "{c:?}");
    // One per direction at most: each stops at its first big message.
    assert!((1..=2).contains(&c.len()), "{c:?}");
    // The plain RFB leg of the same session is unchanged.
    assert_eq!(l[1], p[1]);
}

#[test]
fn a_connection_limit_skips_later_connections_and_keeps_the_first() {
    let (plain, limited) =
        with_and_without("recorded/spice-plain.pcap", &["--max-connections", "2"]);
    let l = limited["connections"].as_array().unwrap();
    assert_eq!(l.len(), 2);
    for i in 0..2 {
        assert_eq!(l[i], plain["connections"][i], "connection {i}");
    }
    let d = limited["diagnostics"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["code"], "limit.connections");
    assert!(d[0]["location"]["frame"].as_u64().is_some());
    // `flows` takes the same flag.
    let path = corpus("recorded/spice-plain.pcap");
    let rows = tether_json(&["flows", &path, "--max-connections", "2"]);
    assert_eq!(rows.as_array().unwrap().len(), 2);
}

#[test]
fn an_out_of_order_limit_declares_the_gap_on_that_connection_only() {
    let (plain, limited) = with_and_without("hostile/ooo-flood.pcap", &["--max-ooo-bytes", "4k"]);
    let (p, l) = (
        plain["connections"].as_array().unwrap(),
        limited["connections"].as_array().unwrap(),
    );
    assert!(codes(&p[0]).is_empty());
    assert_eq!(codes(&l[0]), ["limit.ooo_bytes"]);
    assert_eq!(l[1], p[1]);
}

#[test]
fn zip_limits_reach_the_bug_report_reader() {
    let path = corpus("bugreports/ryll-disconnect-main.zip");
    let plain = tether_json(&["decode", &path]);
    let limited = tether_json_exit(&["decode", &path, "--max-zip-members", "3"], 2);
    let findings = |v: &Value| -> Vec<String> {
        v["bug_reports"][0]["report"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!findings(&plain).contains(&"limit.zip_members".to_string()));
    assert!(findings(&limited).contains(&"limit.zip_members".to_string()));
    // A bad size is refused by the argument parser, not silently ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["decode", &path, "--max-zip-bytes", "lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size"));
}
