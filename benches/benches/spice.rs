//! SPICE message framing on a display-heavy server stream, against a
//! memory copy of the same bytes, in one run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tether::decode::spice::SpiceDecoder;
use tether::decode::spice::wire::build;
use tether::decode::{Chunk, EventSink, StreamContext, StreamDecoder};
use tether::timeline::{Direction, Event, EventKind, Micros};

/// Display traffic as a desktop session sends it: mostly small draw and
/// mark messages, some large image draws, stream data, a PING pair now
/// and then. Deterministic (a fixed LCG).
fn display_stream(size: usize) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(size + (1 << 16));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 33) as usize
    };
    let mut n = 0u64;
    let body = vec![0x5Au8; 70_000];
    while out.len() < size {
        let r = next() % 100;
        let (ty, len) = match r {
            0..=59 => (302u16, 40 + next() % 200),     // DRAW_FILL etc.
            60..=79 => (304, 200 + next() % 2_000),    // small DRAW_COPY
            80..=89 => (304, 8_000 + next() % 60_000), // image DRAW_COPY
            90..=96 => (123, 2_000 + next() % 20_000), // STREAM_DATA
            97..=98 => (102, 0),                       // MARK
            _ => (4, 12),                              // PING
        };
        out.extend_from_slice(&build::mini(ty, &body[..len]));
        n += 1;
    }
    (out, n)
}

struct Count(u64);
impl EventSink for Count {
    fn event(&mut self, e: Event) {
        if matches!(e.kind, EventKind::Message { .. }) {
            self.0 += 1;
        }
    }
}

/// Feeds the stream in 64 KiB chunks, as reassembly hands it over.
fn frame(bytes: &[u8]) -> u64 {
    let ctx = StreamContext {
        mid_stream_spice_channel: Some(2),
        ..StreamContext::default()
    };
    let mut d = SpiceDecoder::new(&ctx);
    let mut sink = Count(0);
    for (k, chunk) in bytes.chunks(64 << 10).enumerate() {
        d.data(
            Chunk {
                at: Micros(k as u64),
                frame: k as u64,
                direction: Direction::ServerToClient,
                stream_offset: (k * (64 << 10)) as u64,
                bytes: chunk,
            },
            &mut sink,
        );
    }
    sink.0
}

fn bench(c: &mut Criterion) {
    let (bytes, messages) = display_stream(32 << 20);
    assert_eq!(frame(&bytes), messages);
    let mut g = c.benchmark_group("spice");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(BenchmarkId::new("memcpy", "32MB"), |b| {
        let mut dst = vec![0u8; bytes.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(&bytes));
            black_box(&dst);
        })
    });
    g.bench_function(BenchmarkId::new("frame_display_stream", "32MB"), |b| {
        b.iter(|| black_box(frame(black_box(&bytes))))
    });
    g.throughput(Throughput::Elements(messages));
    g.bench_function(BenchmarkId::new("frame_display_messages", "32MB"), |b| {
        b.iter(|| black_box(frame(black_box(&bytes))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
