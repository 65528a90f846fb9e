//! The same capture decodes to the same bytes every time, with one thread,
//! two, or at least as many as there are cores; every corpus file (public,
//! recorded, bug reports, hostile) is checked, zips included.

mod support;

use std::path::PathBuf;
use tether::capture::bugreport::Limits;
use tether::capture::generate::{GenConfig, generate};
use tether::decode::pipeline::{DecodeOptions, decode_capture, decode_capture_parallel};
use tether::decode::spice::report::decode_bugreport;

fn corpus() -> Vec<PathBuf> {
    support::corpus_files()
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

/// A bug-report zip: its members, findings and the decode of its pcap.
fn zip_json(bytes: &[u8]) -> String {
    let options = DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    match decode_bugreport(bytes, "input", options, Limits::default()) {
        Ok(z) => serde_json::to_string(&z).unwrap(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_corpus_file_decodes_identically_twice_and_on_any_thread_count() {
    let files = corpus();
    assert!(files.len() >= 60, "{}", files.len());
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get().max(4));
    let mut zips = 0;
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        if f.extension().is_some_and(|x| x == "zip") {
            zips += 1;
            let once = zip_json(&bytes);
            assert_eq!(once, zip_json(&bytes), "{}: run twice", f.display());
            continue;
        }
        let one = json(&bytes, 1);
        assert_eq!(one, json(&bytes, 1), "{}: run twice", f.display());
        assert_eq!(one, json(&bytes, 2), "{}: 2 threads", f.display());
        assert_eq!(one, json(&bytes, cores), "{}: {cores} threads", f.display());
    }
    assert!(zips >= 11, "{zips} zips");
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
