//! The whole decode pipeline (records → link → TCP reassembly → sniffing →
//! WebSocket → RFB, or SPICE) on generated captures, against a memory copy
//! of the same bytes in the same run; and TLS decryption on a recorded
//! session against its plaintext twin and the AEAD primitive. Inputs start at several alignments,
//! since a capture read from a pipe or a zip lands wherever it lands.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tether::capture::generate::{Content, GenConfig, generate};
use tether::decode::pipeline::{DecodeOptions, decode_capture};

const SIZE: u64 = 64 << 20;

fn capture(content: Content) -> (Vec<u8>, u64) {
    let cfg = GenConfig {
        size: SIZE,
        seed: 11,
        content,
        ..GenConfig::default()
    };
    let mut v = Vec::with_capacity(SIZE as usize + (1 << 20));
    let stats = generate(cfg, &mut v).expect("in-memory write");
    (v, stats.packets)
}

fn decode(bytes: &[u8]) -> usize {
    let report = decode_capture(bytes, "bench", DecodeOptions::default()).expect("capture");
    report.connections.len()
}

fn bench(c: &mut Criterion) {
    for (name, content) in [
        ("novnc_ws_rfb", Content::Novnc),
        ("vnc_rfb", Content::Vnc),
        ("spice", Content::Spice),
        ("mix", Content::Realistic),
    ] {
        let (bytes, packets) = capture(content);
        let mut g = c.benchmark_group(format!("pipeline_{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(BenchmarkId::new("memcpy", "64MB"), |b| {
            let mut dst = vec![0u8; bytes.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(&bytes));
                black_box(&dst);
            })
        });
        for misalign in [0usize, 1, 3] {
            let mut shifted = vec![0u8; bytes.len() + misalign];
            shifted[misalign..].copy_from_slice(&bytes);
            g.bench_function(BenchmarkId::new("decode_bytes", misalign), |b| {
                b.iter(|| black_box(decode(black_box(&shifted[misalign..]))))
            });
        }
        g.throughput(Throughput::Elements(packets));
        g.bench_function(BenchmarkId::new("decode_packets", "64MB"), |b| {
            b.iter(|| black_box(decode(black_box(&bytes))))
        });
        g.finish();
    }
}

/// TLS: a recorded noVNC session over wss (TLS 1.2, AES-128-GCM) decoded
/// with its key log, without it, and its plaintext twin, against a memory
/// copy and the AEAD primitive alone (AES-128-GCM opening 16 KiB records)
/// over as many bytes, all in the same run.
fn tls(c: &mut Criterion) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use std::sync::Arc;
    use tether::decode::tls::keylog::{KeyLog, KeyStore};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/record/tls");
    let read = |n: &str| std::fs::read(dir.join(n)).expect("recorded TLS capture");
    let encrypted = read("novnc-wss-tls12.pcap");
    let plain = read("novnc-ws-plain.pcap");
    let log = KeyLog::parse(&read("novnc-wss-tls12.keys"), "keys", &mut Vec::new());
    let with_keys = || DecodeOptions {
        keys: Some(Arc::new(KeyStore::new(log.clone()))),
        ..DecodeOptions::default()
    };
    let mut g = c.benchmark_group("pipeline_tls");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(encrypted.len() as u64));
    g.bench_function("memcpy", |b| {
        let mut dst = vec![0u8; encrypted.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(&encrypted));
            black_box(&dst);
        })
    });
    g.bench_function("aes128gcm_open_16k_records", |b| {
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(&[7; 16]).expect("key");
        let nonce = aes_gcm::Nonce::from_slice(&[1; 12]);
        let mut record = vec![0u8; 16384];
        let tag = cipher
            .encrypt_in_place_detached(nonce, b"", &mut record)
            .expect("seal");
        let sealed = record.clone();
        let records = encrypted.len().div_ceil(16384);
        b.iter(|| {
            for _ in 0..records {
                record.copy_from_slice(&sealed);
                cipher
                    .decrypt_in_place_detached(nonce, b"", &mut record, &tag)
                    .expect("open");
            }
            black_box(&record);
        })
    });
    g.bench_function("decode_decrypting", |b| {
        b.iter(|| {
            let r =
                decode_capture(black_box(&encrypted[..]), "bench", with_keys()).expect("capture");
            black_box(r.connections.len())
        })
    });
    g.bench_function("decode_without_keys", |b| {
        b.iter(|| black_box(decode(black_box(&encrypted))))
    });
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("decode_plaintext_twin", |b| {
        b.iter(|| black_box(decode(black_box(&plain))))
    });
    g.finish();
}

criterion_group!(benches, bench, tls);
criterion_main!(benches);
