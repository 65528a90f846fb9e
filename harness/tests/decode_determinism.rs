//! The same capture decodes to the same bytes every time, with one thread
//! or several.

use std::path::{Path, PathBuf};
use tether::capture::generate::{GenConfig, generate};
use tether::decode::pipeline::{DecodeOptions, decode_capture, decode_capture_parallel};

fn corpus() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora"),
        &mut v,
    );
    v.sort();
    v
}

fn json(bytes: &[u8], threads: usize) -> String {
    let options = DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    match decode_capture_parallel(bytes, "input", options, threads) {
        Ok(r) => serde_json::to_string(&r).unwrap(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_corpus_file_decodes_identically_twice_and_on_any_thread_count() {
    let files = corpus();
    assert!(files.len() >= 30);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let one = json(&bytes, 1);
        assert_eq!(one, json(&bytes, 1), "{}: run twice", f.display());
        assert_eq!(one, json(&bytes, 3), "{}: 3 threads", f.display());
    }
}

#[test]
fn a_many_connection_capture_decodes_identically_on_any_thread_count() {
    let mut bytes = Vec::new();
    let cfg = GenConfig {
        size: 6 << 20,
        seed: 3,
        concurrent: 40,
        bytes_per_connection: 256 << 10,
        ..GenConfig::default()
    };
    generate(cfg, &mut bytes).unwrap();
    let single = serde_json::to_string(
        &decode_capture(&bytes[..], "input", DecodeOptions::default()).unwrap(),
    )
    .unwrap();
    let multi = serde_json::to_string(
        &decode_capture_parallel(&bytes[..], "input", DecodeOptions::default(), 4).unwrap(),
    )
    .unwrap();
    assert_eq!(single, multi);
}
