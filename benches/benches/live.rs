//! The live proxy's per-chunk work: build the frame, write it to the pcap
//! and push it through reassembly and the WebSocket/RFB decoders
//! (`live::recorder::Recorder::data`), against a memory copy of the same
//! payload bytes in the same run. Chunks are 16 KiB (the proxy's read size)
//! and 1 KiB (interactive traffic).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::SocketAddr;
use tether::decode::ws::frame::{FrameSpec, OpCode};
use tether::live::recorder::Recorder;
use tether::timeline::{Direction, Micros};

const UPGRADE: &[u8] =
    b"GET /websockify HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const ACCEPT: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// Server-to-client WebSocket binary frames, cut into proxy-sized chunks.
fn chunks(total: usize, chunk: usize) -> Vec<Vec<u8>> {
    let mut stream = Vec::with_capacity(total + 64);
    let mut i = 0u8;
    while stream.len() < total {
        let payload: Vec<u8> = (0..4000).map(|k| (k as u8).wrapping_mul(31) ^ i).collect();
        stream.extend_from_slice(&FrameSpec::new(OpCode::Binary, payload).encode());
        i = i.wrapping_add(1);
    }
    stream.chunks(chunk).map(<[u8]>::to_vec).collect()
}

fn record(chunks: &[Vec<u8>]) -> usize {
    let client: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let server: SocketAddr = "127.0.0.1:6221".parse().expect("addr");
    let mut rec = Recorder::new(Vec::with_capacity(64 << 20), "bench").expect("vec");
    let id = rec.open(Micros(1), client, server).expect("vec");
    rec.data(id, Micros(2), Direction::ClientToServer, UPGRADE)
        .expect("vec");
    rec.data(id, Micros(3), Direction::ServerToClient, ACCEPT)
        .expect("vec");
    for (n, c) in chunks.iter().enumerate() {
        rec.data(id, Micros(4 + n as u64), Direction::ServerToClient, c)
            .expect("vec");
    }
    let (file, reports, _) = rec.finish();
    file.len() + reports.len()
}

fn bench(c: &mut Criterion) {
    let total = 32 << 20;
    let mut g = c.benchmark_group("live");
    g.sample_size(10);
    for chunk in [16 * 1024, 1024] {
        let cs = chunks(total, chunk);
        let bytes: u64 = cs.iter().map(|c| c.len() as u64).sum();
        let label = format!("32MB/{}KiB", chunk / 1024);
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(BenchmarkId::new("memcpy", &label), |b| {
            let mut dst = vec![0u8; bytes as usize];
            b.iter(|| {
                let mut at = 0;
                for c in black_box(&cs) {
                    dst[at..at + c.len()].copy_from_slice(c);
                    at += c.len();
                }
                black_box(&dst);
            })
        });
        g.bench_function(BenchmarkId::new("record_and_decode", &label), |b| {
            b.iter(|| black_box(record(black_box(&cs))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
