//! Sessions per client in a capture taken at the server: connections of
//! one endpoint split by client (host, and overlap in time for a
//! single-stream protocol), a later connection from the same host after a
//! drop being that client's next generation.

use std::net::SocketAddr;
use tether::capture::writer::{Flags, PcapWriter, tcp_frame};
use tether::timeline::Micros;
use tether::triage::{TriageOptions, triage_reader};

const SERVER: &str = "10.9.0.1:5900";
const T0: u64 = 1_700_000_000_000_000;

/// One short RFB connection: handshake, version exchange, client FIN at
/// `close_s`, then the server's FIN.
fn rfb_connection(client: &str, open_s: f64, close_s: f64) -> Vec<(Micros, Vec<u8>)> {
    let c: SocketAddr = client.parse().unwrap();
    let s: SocketAddr = SERVER.parse().unwrap();
    let f = |syn, ack, fin| Flags {
        syn,
        ack,
        fin,
        ..Flags::default()
    };
    let at = |secs: f64| Micros(T0 + (secs * 1e6) as u64);
    vec![
        (
            at(open_s),
            tcp_frame(c, s, 100, 0, f(true, false, false), b""),
        ),
        (
            at(open_s + 0.001),
            tcp_frame(s, c, 500, 101, f(true, true, false), b""),
        ),
        (
            at(open_s + 0.002),
            tcp_frame(c, s, 101, 501, f(false, true, false), b""),
        ),
        (
            at(open_s + 0.003),
            tcp_frame(s, c, 501, 101, f(false, true, false), b"RFB 003.008\n"),
        ),
        (
            at(open_s + 0.004),
            tcp_frame(c, s, 101, 513, f(false, true, false), b"RFB 003.008\n"),
        ),
        (
            at(close_s),
            tcp_frame(c, s, 113, 513, f(false, true, true), b""),
        ),
        (
            at(close_s + 0.001),
            tcp_frame(s, c, 513, 114, f(false, true, true), b""),
        ),
        (
            at(close_s + 0.002),
            tcp_frame(c, s, 114, 514, f(false, true, false), b""),
        ),
    ]
}

#[test]
fn clients_of_one_server_are_sessions_of_their_own() {
    let mut frames = Vec::new();
    // Client A, then A again from another port after its close: a next
    // generation of A. Client A2 overlaps A from the same host: another
    // client. Client B comes from another host after A closed: another client.
    frames.extend(rfb_connection("10.0.0.1:40001", 0.0, 10.0));
    frames.extend(rfb_connection("10.0.0.1:40002", 5.0, 8.0));
    frames.extend(rfb_connection("10.0.0.2:41001", 12.0, 20.0));
    frames.extend(rfb_connection("10.0.0.1:40003", 40.0, 50.0));
    frames.sort_by_key(|f| f.0);
    let mut w = PcapWriter::new(Vec::new(), 1, false, false).unwrap();
    for (ts, f) in &frames {
        w.write_packet(*ts, f).unwrap();
    }
    let bytes = w.into_inner();
    let tr = triage_reader(&bytes[..], "clients.pcap", false, &TriageOptions::default()).unwrap();
    let mut seen: Vec<(String, usize)> = tr
        .sessions
        .iter()
        .map(|s| (s.session.client.clone(), s.session.generations.len()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("10.0.0.1:40001".to_string(), 2),
            ("10.0.0.1:40002".to_string(), 1),
            ("10.0.0.2:41001".to_string(), 1),
        ]
    );
    for s in &tr.sessions {
        assert_eq!(
            s.diagnosis.cause.as_deref(),
            Some("client.closed"),
            "{}",
            s.session.client
        );
    }
}

/// The server-side view: one row per client session on the capture's
/// clock, in order of start, counted by ending, whatever the selection.
#[test]
fn a_server_capture_is_summarised_per_client() {
    let mut frames = Vec::new();
    frames.extend(rfb_connection("10.0.0.1:40001", 1.0, 10.0));
    frames.extend(rfb_connection("10.0.0.1:40002", 5.0, 8.0));
    frames.extend(rfb_connection("10.0.0.2:41001", 12.0, 20.0));
    frames.sort_by_key(|f| f.0);
    let mut w = PcapWriter::new(Vec::new(), 1, false, false).unwrap();
    for (ts, f) in &frames {
        w.write_packet(*ts, f).unwrap();
    }
    let bytes = w.into_inner();
    let mut tr =
        triage_reader(&bytes[..], "clients.pcap", false, &TriageOptions::default()).unwrap();
    assert_eq!(tr.start, Some(Micros(T0 + 1_000_000)));
    let rows: Vec<(&str, f64)> = tr
        .summary
        .iter()
        .map(|r| (r.client.as_str(), r.start))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("10.0.0.1:40001", 0.0),
            ("10.0.0.1:40002", 4.0),
            ("10.0.0.2:41001", 11.0)
        ]
    );
    assert!(tr.summary.iter().all(|r| r.outcome == "disconnected"));
    let counts: Vec<(&str, usize)> = tr
        .counts
        .iter()
        .map(|c| (c.ending.as_str(), c.sessions))
        .collect();
    assert_eq!(counts, vec![("client.closed", 3)]);
    tr.select(|st| st.number == 2);
    assert_eq!(tr.sessions.len(), 1);
    assert_eq!(tr.summary.len(), 3);
}

/// `--summary` prints the counts and the table only; `--outcome` keeps the
/// sessions that ended that way.
#[test]
fn summary_and_outcome_flags() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tether = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(args)
            .current_dir(&root)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let pcap = "corpora/lab/ws2-several-clients-one-frozen.pcap";
    let text = tether(&["triage", "--no-what-if", "--summary", pcap]);
    assert!(
        text.contains("3 sessions: 2 client.closed, 1 server.closed"),
        "{text}"
    );
    assert!(!text.contains("\nsession "), "{text}");
    assert_eq!(text.matches(" disconnected ").count(), 3, "{text}");
    let json = tether(&[
        "triage",
        "--no-what-if",
        "--format",
        "json",
        "--outcome",
        "disconnected",
        pcap,
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["sessions"].as_array().unwrap().len(), 3);
    let json = tether(&[
        "triage",
        "--no-what-if",
        "--format",
        "json",
        "--outcome",
        "open",
        pcap,
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v[0]["sessions"].as_array().unwrap().is_empty());
    assert_eq!(v[0]["summary"].as_array().unwrap().len(), 3);
}
