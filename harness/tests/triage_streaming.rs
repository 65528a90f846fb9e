//! Triage folds each connection's events as the capture streams and keeps
//! none of them. These tests hold the fold to what keeping every event
//! gave: the same sessions on every real capture, and the same triage for
//! any number of decoder threads.

use std::path::{Path, PathBuf};
use tether::decode::pipeline::{DecodeOptions, decode_capture};
use tether::timeline::Micros;
use tether::triage::session::{ChannelFold, sessions};
use tether::triage::{TriageOptions, triage_reader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every capture of the committed corpus (bug-report zips have their own
/// clock and are covered by the triage tests).
fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [
        "corpora/lab",
        "corpora/recorded",
        "corpora/public",
        "corpora/synthetic",
    ] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn sessions_json(path: &Path, keep_events: bool) -> String {
    let bytes = std::fs::read(path).unwrap();
    let options = DecodeOptions {
        keep_events,
        fold: (!keep_events).then(ChannelFold::maker),
        ..DecodeOptions::default()
    };
    let mut report = decode_capture(&bytes[..], "x", options).unwrap();
    if !keep_events {
        assert!(
            report.connections.iter().all(|c| c.events.is_empty()),
            "{}: events kept",
            path.display()
        );
    }
    let origin = report.start.unwrap_or(Micros::ZERO);
    // Debug, not JSON: the marks, density and ACK facts are not serialised.
    format!("{:#?}", sessions(&mut report, origin, false))
}

#[test]
fn folded_sessions_equal_those_built_from_kept_events() {
    let all = captures();
    assert!(all.len() >= 60, "corpus not found: {} captures", all.len());
    for path in all {
        let kept = sessions_json(&path, true);
        let folded = sessions_json(&path, false);
        assert!(
            kept == folded,
            "{}: the fold differs from the kept events",
            path.display()
        );
    }
}

#[test]
fn triage_is_the_same_for_any_number_of_threads() {
    for rel in [
        "corpora/lab/spice-haproxy-idle.pcap",
        "corpora/lab/novnc-relay-killed.pcap",
        "corpora/lab/spicy-wrong-ticket-twice.pcap",
        "corpora/lab/vnc-x11vnc-server-killed.pcap",
    ] {
        let bytes = std::fs::read(root().join(rel)).unwrap();
        let json = |threads: usize| {
            let options = TriageOptions {
                threads,
                ..TriageOptions::default()
            };
            let t = triage_reader(&bytes[..], rel, false, &options).unwrap();
            serde_json::to_string(&t).unwrap()
        };
        let one = json(1);
        assert!(one.contains("\"outcome\""), "{rel}: {one}");
        for threads in [2, 3, 8] {
            assert!(json(threads) == one, "{rel}: {threads} threads differ");
        }
    }
}
