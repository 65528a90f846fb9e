//! `tether gen --content server`: a server host's capture of many client
//! sessions with its truth file. The key check: triage's verdict on every
//! generated session is the truth the generator wrote.

use std::path::Path;
use tether::capture::generate::server::{ServerConfig, generate_server};
use tether::replay::score::{Truth, parse_truth, score_recording};
use tether::timeline::Micros;
use tether::triage::{TriageOptions, triage_path};

const SEC: u64 = 1_000_000;

fn config(sessions: u64, minutes: u64, seed: u64) -> ServerConfig {
    ServerConfig {
        sessions,
        duration: Micros(minutes * 60 * SEC),
        seed,
        capture_name: "mix.pcap".into(),
        script: format!(
            "tether gen --content server --sessions {sessions} --duration {minutes}m --seed {seed}"
        ),
        ..ServerConfig::default()
    }
}

/// Generates into `dir/mix.pcap` and `dir/mix.truth.toml` as `tether gen`
/// does; returns the truth.
fn generate_into(dir: &Path, cfg: &ServerConfig) -> Truth {
    let f = std::fs::File::create(dir.join("mix.pcap")).unwrap();
    let (_, truth) = generate_server(cfg, std::io::BufWriter::new(f)).unwrap();
    let text = toml::to_string(&truth).unwrap();
    std::fs::write(dir.join("mix.truth.toml"), &text).unwrap();
    // The file parses back under the truth schema (deny_unknown_fields).
    parse_truth(&text).unwrap()
}

fn options() -> TriageOptions {
    TriageOptions {
        no_what_if: true,
        ..TriageOptions::default()
    }
}

#[test]
fn same_seed_same_bytes_and_truth() {
    let run = |seed| {
        let mut out = Vec::new();
        let (_, truth) = generate_server(&config(30, 10, seed), &mut out).unwrap();
        (out, toml::to_string(&truth).unwrap())
    };
    let (a, ta) = run(7);
    let (b, tb) = run(7);
    assert!(a.len() > 1 << 20, "only {} bytes", a.len());
    assert!(a == b, "same seed, different bytes");
    assert_eq!(ta, tb);
    let (c, _) = run(8);
    assert!(a != c, "another seed, same bytes");
}

/// Every session's verdict equals its truth: outcome, cause, origin,
/// window, channel, closed_by, attempts.
#[test]
fn triage_agrees_with_the_truth_of_every_session() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_into(dir.path(), &config(80, 20, 1));
    assert_eq!(truth.sessions.len(), 80);
    let causes: std::collections::BTreeSet<Option<&str>> =
        truth.sessions.iter().map(|s| s.cause.as_deref()).collect();
    // The mix holds more than the user's close.
    for c in [
        Some("client.closed"),
        Some("auth.refused"),
        Some("server.connectivity_timeout"),
        Some("network.outage"),
        None,
    ] {
        assert!(causes.contains(&c), "no {c:?} in {causes:?}");
    }
    let score = score_recording(&dir.path().join("mix.truth.toml"), &options());
    assert_eq!(score.error, None);
    let wrong: Vec<String> = score
        .sessions
        .iter()
        .filter(|s| !s.ok)
        .map(|s| {
            let checks: Vec<String> = s
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{} {} (expected {})", c.what, c.found, c.expected))
                .collect();
            format!("{}: {}", s.session, checks.join("; "))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(score.sessions.len(), 80);
}

/// Frames leave in timestamp order, and triage finds exactly one session
/// per generated client.
#[test]
fn frames_in_time_order_and_one_session_per_client() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_into(dir.path(), &config(60, 15, 2));
    let bytes = std::fs::read(dir.path().join("mix.pcap")).unwrap();
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let mut at = 24;
    let mut last = 0u64;
    let mut first = None;
    let mut frames = 0;
    while at + 16 <= bytes.len() {
        let u = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        let ts = u64::from(u(0)) * SEC + u64::from(u(4));
        assert!(ts >= last, "frame {frames} at {ts} before {last}");
        last = ts;
        first.get_or_insert(ts);
        at += 16 + u(8) as usize;
        frames += 1;
    }
    assert_eq!(at, bytes.len());
    // Truth times count from the first frame.
    assert_eq!(first.unwrap() as f64 / SEC as f64, truth.capture_start);
    let tr = triage_path(&dir.path().join("mix.pcap"), &options()).unwrap();
    assert_eq!(tr.sessions.len(), 60);
    let clients: std::collections::BTreeSet<String> = tr
        .sessions
        .iter()
        .map(|s| {
            s.session
                .client
                .rsplit_once(':')
                .map_or(s.session.client.clone(), |(ip, _)| ip.to_string())
        })
        .collect();
    assert_eq!(clients.len(), 60);
}

/// The truth lands beside the capture from the command line, and `-o -`
/// without `--truth` is refused.
#[test]
fn cli_writes_the_truth_beside_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli.pcap");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["gen", "--content", "server", "--sessions", "12"])
        .args(["--duration", "5m", "--seed", "4", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let t =
        parse_truth(&std::fs::read_to_string(dir.path().join("cli.truth.toml")).unwrap()).unwrap();
    assert_eq!(t.capture, "cli.pcap");
    assert_eq!(t.fault, "server-mix");
    assert_eq!(t.sessions.len(), 12);
    assert!(
        t.script
            .as_deref()
            .unwrap()
            .starts_with("tether gen --content server --sessions 12 --duration 5m --seed 4")
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["gen", "--content", "server", "-o", "-"])
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
