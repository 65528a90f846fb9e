//! The whole decode pipeline (records → link → TCP reassembly → sniffing →
//! WebSocket → RFB, or SPICE) on generated captures, against a memory copy
//! of the same bytes in the same run. Inputs start at several alignments,
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

criterion_group!(benches, bench);
criterion_main!(benches);
