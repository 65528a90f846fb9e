//! WebSocket hot paths on masked binary frames of 16 B, 1 KiB and 64 KiB:
//! unmasking alone (word-at-a-time, and the byte-at-a-time reference), and
//! whole-frame decoding through `WsDecoder` (header, unmask, events, inner
//! stream), each against a copy of the same bytes in the same frame-sized
//! pieces, in the same run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tether::decode::ws::WsDecoder;
use tether::decode::ws::frame::{FrameSpec, OpCode, unmask, unmask_bytewise};
use tether::decode::{Chunk, EventSink, StreamContext, StreamDecoder};
use tether::timeline::{Direction, Event, Micros};

/// Bytes of frames per iteration.
const STREAM: usize = 8 << 20;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const REQUEST: &[u8] = b"GET /websockify HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

struct Count(u64);

impl EventSink for Count {
    fn event(&mut self, _e: Event) {
        self.0 += 1;
    }
}

/// Client frames of `size` payload bytes, about STREAM bytes in all.
fn frames(size: usize) -> (Vec<u8>, u64) {
    let one = FrameSpec::new(
        OpCode::Binary,
        (0..size).map(|i| i as u8).collect::<Vec<u8>>(),
    )
    .masked(KEY)
    .encode();
    let n = (STREAM / one.len()).max(1);
    let mut v = Vec::with_capacity(n * one.len());
    for _ in 0..n {
        v.extend_from_slice(&one);
    }
    (v, n as u64)
}

fn decode(stream: &[u8]) -> u64 {
    let mut d = WsDecoder::new(&StreamContext::default());
    let mut sink = Count(0);
    let chunk = |dir, off, bytes| Chunk {
        at: Micros(1),
        frame: 1,
        direction: dir,
        stream_offset: off,
        bytes,
    };
    d.data(chunk(Direction::ClientToServer, 0, REQUEST), &mut sink);
    d.data(chunk(Direction::ServerToClient, 0, RESPONSE), &mut sink);
    // Reassembly hands over runs of segments; 64 KiB pieces cut frames at
    // arbitrary points, as real captures do.
    let mut off = REQUEST.len() as u64;
    for piece in stream.chunks(64 * 1024) {
        d.data(chunk(Direction::ClientToServer, off, piece), &mut sink);
        off += piece.len() as u64;
    }
    sink.0
}

fn bench(c: &mut Criterion) {
    for size in [16usize, 1024, 65536] {
        let label = match size {
            16 => "16B",
            1024 => "1KiB",
            _ => "64KiB",
        };
        let payload: Vec<u8> = (0..STREAM).map(|i| i as u8).collect();
        let mut g = c.benchmark_group(format!("ws_unmask_{label}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function(BenchmarkId::new("memcpy", label), |b| {
            let mut dst = vec![0u8; payload.len()];
            b.iter(|| {
                for (d, s) in dst.chunks_mut(size).zip(payload.chunks(size)) {
                    d.copy_from_slice(black_box(s));
                }
                black_box(&dst);
            })
        });
        g.bench_function(BenchmarkId::new("unmask", label), |b| {
            let mut buf = payload.clone();
            b.iter(|| {
                for p in buf.chunks_mut(size) {
                    unmask(black_box(p), KEY, 0);
                }
                black_box(&buf);
            })
        });
        g.bench_function(BenchmarkId::new("unmask_bytewise", label), |b| {
            let mut buf = payload.clone();
            b.iter(|| {
                for p in buf.chunks_mut(size) {
                    unmask_bytewise(black_box(p), KEY, 0);
                }
                black_box(&buf);
            })
        });
        g.finish();

        let (stream, n) = frames(size);
        let mut g = c.benchmark_group(format!("ws_decode_{label}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function(BenchmarkId::new("memcpy", label), |b| {
            let mut dst = vec![0u8; stream.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(&stream));
                black_box(&dst);
            })
        });
        g.bench_function(BenchmarkId::new("decode_bytes", label), |b| {
            b.iter(|| black_box(decode(black_box(&stream))))
        });
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::new("decode_frames", label), |b| {
            b.iter(|| black_box(decode(black_box(&stream))))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
