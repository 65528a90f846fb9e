//! Triage at the server: a generated capture of many client sessions over
//! hours (`tether gen --content server`), triaged as an operator's
//! `--summary` run does, against `tether decode` of the same file in the
//! same run. Before timing, every session's verdict is checked against the
//! generator's truth. The default is the figure, 5,000 sessions over
//! two hours (about 2 GB, written to a temporary file);
//! `TETHER_BENCH_SERVER_SESSIONS` and `TETHER_BENCH_SERVER_HOURS` shrink it.
//! Peak memory is not criterion's to measure: `benches/server_rss.sh`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::io::BufReader;
use tether::capture::generate::server::{ServerConfig, generate_server};
use tether::decode::pipeline::{DecodeOptions, decode_capture};
use tether::replay::score::score_session;
use tether::timeline::Micros;
use tether::triage::{Selection, TriageOptions, triage_reader};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open(path: &std::path::Path) -> BufReader<std::fs::File> {
    BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("capture"))
}

fn bench(c: &mut Criterion) {
    let sessions = env_or("TETHER_BENCH_SERVER_SESSIONS", 5000);
    let hours = env_or("TETHER_BENCH_SERVER_HOURS", 2);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("server.pcap");
    let cfg = ServerConfig {
        sessions,
        duration: Micros(hours * 3_600_000_000),
        seed: 1,
        size_cap: None,
        capture_name: "server.pcap".into(),
        script: "benches/server.rs".into(),
    };
    let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("capture file"));
    let (stats, truth) = generate_server(&cfg, file).expect("generated capture");

    // The answers first: a fast wrong triage is no result.
    let checked = TriageOptions {
        no_what_if: true,
        ..TriageOptions::default()
    };
    let tr = triage_reader(open(&path), "server.pcap", false, &checked).expect("triage");
    let wrong: Vec<String> = truth
        .sessions
        .iter()
        .map(|ts| score_session(&tr, &truth, ts))
        .filter(|s| !s.ok)
        .map(|s| s.session)
        .collect();
    assert!(
        wrong.is_empty(),
        "verdicts differ from the truth: {wrong:?}"
    );
    eprintln!(
        "server capture: {} bytes, {} sessions, every verdict equal to the truth",
        stats.bytes,
        truth.sessions.len()
    );

    let summary = TriageOptions {
        selection: Selection {
            none: true,
            ..Selection::default()
        },
        threads: 1,
        ..TriageOptions::default()
    };
    let mut g = c.benchmark_group("server_capture");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stats.bytes));
    let label = format!("{sessions}_sessions");
    g.bench_function(BenchmarkId::new("decode", &label), |b| {
        b.iter(|| {
            let r = decode_capture(open(&path), "server.pcap", DecodeOptions::default());
            black_box(r.expect("decode").connections.len())
        })
    });
    g.bench_function(BenchmarkId::new("triage_summary", &label), |b| {
        b.iter(|| {
            let t = triage_reader(open(&path), "server.pcap", false, &summary);
            black_box(t.expect("triage").summary.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
