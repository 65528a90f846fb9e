//! Capture → reassembled bytes, against plain pcap-parser record iteration
//! and a memory copy of the same bytes, all in one run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapError};
use std::hint::black_box;
use tether::capture::generate::{GenConfig, generate};
use tether::capture::{Frame, Segments};
use tether::flow::{FlowConfig, FlowEvent, Reassembler};

fn capture(size: u64) -> Vec<u8> {
    let cfg = GenConfig {
        size,
        seed: 7,
        ..GenConfig::default()
    };
    let mut v = Vec::with_capacity(size as usize + (1 << 20));
    generate(cfg, &mut v).expect("in-memory write");
    v
}

fn pcap_parser_iterate(bytes: &[u8]) -> (u64, u64) {
    let mut reader = LegacyPcapReader::new(1 << 20, bytes).expect("pcap");
    let (mut n, mut total) = (0u64, 0u64);
    loop {
        match reader.next() {
            Ok((off, block)) => {
                if let pcap_parser::PcapBlockOwned::Legacy(b) = block {
                    n += 1;
                    total += b.data.len() as u64;
                }
                reader.consume(off);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                reader.refill().expect("refill");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    (n, total)
}

fn reassemble(bytes: &[u8]) -> (u64, u64) {
    let mut segments = Segments::new(bytes, "bench").expect("pcap");
    let mut r = Reassembler::new(FlowConfig::default());
    let mut delivered = 0u64;
    let mut sink = |e: FlowEvent<'_>| {
        if let FlowEvent::Data { bytes, .. } = e {
            delivered += bytes.len() as u64;
        }
    };
    let mut packets = 0;
    while let Some(f) = segments.next_frame() {
        if let Frame::Tcp(seg) = f {
            packets += 1;
            r.segment(&seg, &mut sink);
        }
    }
    r.finish(&mut sink);
    (packets, delivered)
}

fn bench(c: &mut Criterion) {
    let bytes = capture(64 << 20);
    let (packets, _) = pcap_parser_iterate(&bytes);
    let mut g = c.benchmark_group("capture");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(BenchmarkId::new("memcpy", "64MB"), |b| {
        let mut dst = vec![0u8; bytes.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(&bytes));
            black_box(&dst);
        })
    });
    g.bench_function(BenchmarkId::new("pcap_parser_records", "64MB"), |b| {
        b.iter(|| black_box(pcap_parser_iterate(black_box(&bytes))))
    });
    g.bench_function(BenchmarkId::new("tether_reassembled_bytes", "64MB"), |b| {
        b.iter(|| black_box(reassemble(black_box(&bytes))))
    });
    g.throughput(Throughput::Elements(packets));
    g.bench_function(
        BenchmarkId::new("tether_reassembled_packets", "64MB"),
        |b| b.iter(|| black_box(reassemble(black_box(&bytes)))),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
