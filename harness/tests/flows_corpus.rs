//! Every public capture in `corpora/public`: connection count, frames and
//! wire bytes each way equal tshark's `-z conv,tcp`, and how each
//! connection ended equals what tshark's per-segment flags say.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use tether::decode::pipeline::{FlowRow, flow_table};
use tether::flow::{EndKind, FlowConfig};

fn captures() -> Vec<PathBuf> {
    support::files_under("corpora/public", &["pcap", "pcapng"])
}

/// First close (sender, kind), any RST, any FIN.
type StreamEnds = (Option<(String, &'static str)>, bool, bool);

#[derive(Debug)]
struct Conv {
    a: String,
    b: String,
    frames_b_to_a: u64,
    bytes_b_to_a: (u64, &'static str),
    frames_a_to_b: u64,
    bytes_a_to_b: (u64, &'static str),
}

fn unit(s: &str) -> &'static str {
    match s {
        "bytes" => "bytes",
        "kB" => "kB",
        "MB" => "MB",
        other => panic!("unknown tshark size unit {other}"),
    }
}

/// Parses the `-z conv,tcp` table of a `.tshark.txt` oracle file.
fn tshark_convs(oracle: &str) -> Vec<Conv> {
    let section = oracle
        .split("## tshark -q -z conv,tcp")
        .nth(1)
        .expect("oracle has a conv,tcp section");
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.contains("<->"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // A <-> B  frames bytes unit  frames bytes unit  ...
            Conv {
                a: f[0].to_string(),
                b: f[2].to_string(),
                frames_b_to_a: f[3].parse().unwrap(),
                bytes_b_to_a: (f[4].parse().unwrap(), unit(f[5])),
                frames_a_to_b: f[6].parse().unwrap(),
                bytes_a_to_b: (f[7].parse().unwrap(), unit(f[8])),
            }
        })
        .collect()
}

/// tshark prints sizes in SI units past 10^4 bytes, rounded.
fn size_matches(ours: u64, (n, unit): (u64, &str)) -> bool {
    let div = match unit {
        "bytes" => return ours == n,
        "kB" => 1e3,
        _ => 1e6,
    };
    ((ours as f64 / div) - n as f64).abs() < 1.0
}

fn flows(path: &Path) -> Vec<FlowRow> {
    let f = File::open(path).unwrap();
    flow_table(f, &path.display().to_string(), FlowConfig::default())
        .unwrap()
        .rows
}

#[test]
fn connection_frames_and_bytes_match_tshark_conv_tcp() {
    let caps = captures();
    assert!(caps.len() >= 20, "corpus present: {}", caps.len());
    let mut checked = 0;
    for cap in caps {
        let oracle_path = PathBuf::from(format!("{}.tshark.txt", cap.display()));
        let oracle = std::fs::read_to_string(&oracle_path).unwrap();
        let convs = tshark_convs(&oracle);
        let mut rows = flows(&cap);
        assert_eq!(
            rows.len(),
            convs.len(),
            "{}: connection count",
            cap.display()
        );
        // tshark orders conversations by first frame too, but match on
        // endpoints so a reordering would show as a clear failure.
        for conv in &convs {
            let pos = rows
                .iter()
                .position(|r| {
                    (r.client == conv.a && r.server == conv.b)
                        || (r.client == conv.b && r.server == conv.a)
                })
                .unwrap_or_else(|| {
                    panic!("{}: no connection {} <-> {}", cap.display(), conv.a, conv.b)
                });
            let r = rows.remove(pos);
            let (a_to_b_frames, a_to_b_bytes, b_to_a_frames, b_to_a_bytes) = if r.client == conv.a {
                (
                    r.segments_c2s,
                    r.wire_bytes_c2s,
                    r.segments_s2c,
                    r.wire_bytes_s2c,
                )
            } else {
                (
                    r.segments_s2c,
                    r.wire_bytes_s2c,
                    r.segments_c2s,
                    r.wire_bytes_c2s,
                )
            };
            let ctx = format!("{} {} <-> {}", cap.display(), conv.a, conv.b);
            assert_eq!(a_to_b_frames, conv.frames_a_to_b, "{ctx}: frames ->");
            assert_eq!(b_to_a_frames, conv.frames_b_to_a, "{ctx}: frames <-");
            assert!(
                size_matches(a_to_b_bytes, conv.bytes_a_to_b),
                "{ctx}: bytes -> {a_to_b_bytes} vs {:?}",
                conv.bytes_a_to_b
            );
            assert!(
                size_matches(b_to_a_bytes, conv.bytes_b_to_a),
                "{ctx}: bytes <- {b_to_a_bytes} vs {:?}",
                conv.bytes_b_to_a
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "connections checked: {checked}");
}

#[test]
fn close_kind_and_closer_match_tshark_flags() {
    let mut checked = 0;
    for cap in captures() {
        let ends_path = PathBuf::from(format!("{}.tcp-ends.txt", cap.display()));
        let text = std::fs::read_to_string(&ends_path).unwrap();
        // Per stream: kind of first close and its sender, and whether any RST.
        let mut streams: BTreeMap<u64, StreamEnds> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            let stream: u64 = f[0].parse().unwrap();
            let ip = if f[1].is_empty() {
                format!("[{}]", f[2])
            } else {
                f[1].to_string()
            };
            let sender = format!("{ip}:{}", f[3]);
            let (fin, rst) = (f[4] == "1", f[5] == "1");
            let e = streams.entry(stream).or_insert((None, false, false));
            if (fin || rst) && e.0.is_none() {
                e.0 = Some((sender, if rst { "rst" } else { "fin" }));
            }
            e.1 |= rst;
            e.2 |= fin;
        }
        let rows = flows(&cap);
        assert_eq!(rows.len(), streams.len(), "{}", cap.display());
        for (row, (_, (first, any_rst, any_fin))) in rows.iter().zip(streams) {
            let expected = if any_rst {
                EndKind::Rst
            } else if any_fin {
                EndKind::Fin
            } else {
                EndKind::Open
            };
            assert_eq!(
                row.end,
                expected,
                "{} connection {}",
                cap.display(),
                row.connection.0
            );
            let closer = row.closed_by.map(|who| {
                if who == "client" {
                    row.client.clone()
                } else {
                    row.server.clone()
                }
            });
            assert_eq!(
                closer,
                first.map(|f| f.0),
                "{} connection {}: who closed first",
                cap.display(),
                row.connection.0
            );
            checked += 1;
        }
    }
    assert!(checked >= 20);
}
