//! The generator and the decoders were written independently from the
//! protocol documents; a generated capture decoding with zero findings,
//! with every connection's stack and message counts as the generator wrote
//! them, checks both sides.

use std::collections::BTreeMap;
use tether::capture::generate::{Content, GenConfig, generate};
use tether::decode::pipeline::{ConnectionReport, DecodeOptions, decode_capture};

fn decode(seed: u64) -> Vec<ConnectionReport> {
    let mut bytes = Vec::new();
    let cfg = GenConfig {
        size: 12 << 20,
        seed,
        concurrent: 24,
        bytes_per_connection: 1 << 20,
        content: Content::Realistic,
    };
    generate(cfg, &mut bytes).unwrap();
    let report = decode_capture(&bytes[..], "generated", DecodeOptions::default()).unwrap();
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    report.connections
}

/// Connections opened just before the generator reached its size carry
/// nothing to decode.
fn carried_data(c: &ConnectionReport) -> bool {
    c.c2s.first.is_some() || c.s2c.first.is_some()
}

fn count(c: &ConnectionReport, dir: &str, name: &str) -> u64 {
    let map = if dir == "c2s" {
        &c.counts.c2s
    } else {
        &c.counts.s2c
    };
    map.get(name).copied().unwrap_or(0)
}

#[test]
fn a_generated_capture_decodes_with_no_findings_and_the_expected_stacks() {
    for seed in [1, 2] {
        let conns = decode(seed);
        let mut stacks: BTreeMap<String, usize> = BTreeMap::new();
        for c in conns.iter().filter(|c| carried_data(c)) {
            assert!(
                c.findings.is_empty(),
                "seed {seed}, connection {}: {:#?}",
                c.connection.0,
                c.findings
            );
            *stacks.entry(c.stack.join("/")).or_default() += 1;
        }
        assert_eq!(
            stacks.keys().map(String::as_str).collect::<Vec<_>>(),
            ["tcp/rfb", "tcp/spice", "tcp/ws/rfb"],
            "seed {seed}"
        );
    }
}

#[test]
fn generated_sessions_carry_what_the_generator_wrote() {
    let conns = decode(3);
    let mut spice_sessions: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for c in conns.iter().filter(|c| carried_data(c)) {
        match c.stack.join("/").as_str() {
            "tcp/ws/rfb" | "tcp/rfb" => {
                // The handshake, then at least the full-screen repaint.
                assert_eq!(count(c, "s2c", "ServerInit"), 1);
                assert_eq!(count(c, "c2s", "SetEncodings"), 1);
                assert!(count(c, "s2c", "FramebufferUpdate") >= 1);
                // One update request per update sent, except the last
                // request may still be unanswered when the capture ends.
                let requests = count(c, "c2s", "FramebufferUpdateRequest");
                let updates = count(c, "s2c", "FramebufferUpdate");
                assert!(
                    requests == updates || requests == updates + 1,
                    "{requests} requests, {updates} updates"
                );
            }
            "tcp/spice" => {
                let s = c.session.as_ref().expect("SPICE session info");
                spice_sessions
                    .entry(s.session_id.expect("session id"))
                    .or_default()
                    .push(s.channel.clone().expect("channel"));
                // Every PING is answered by a PONG.
                assert_eq!(c.s2c.pings, c.c2s.pongs, "connection {}", c.connection.0);
            }
            other => panic!("unexpected stack {other}"),
        }
    }
    assert!(!spice_sessions.is_empty());
    for channels in spice_sessions.values() {
        let mut channels = channels.clone();
        channels.sort();
        assert_eq!(channels, ["display", "inputs", "main"]);
    }
}
