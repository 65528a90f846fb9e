//! RFB FramebufferUpdate framing throughput on `tcp/rfb`, for Raw-, Hextile-
//! and ZRLE/Tight-heavy server streams fed in 64 KiB chunks (websockify's
//! read size), against a memory copy of the same bytes in the same run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tether::decode::rfb::RfbDecoder;
use tether::decode::{Chunk, EventSink, StreamContext, StreamDecoder};
use tether::timeline::{Direction, Event, EventKind, Micros};

const TARGET: usize = 32 << 20;
const CHUNK: usize = 64 << 10;

fn rect(w: u16, h: u16, enc: i32, body: &[u8], out: &mut Vec<u8>) {
    for v in [0u16, 0, w, h] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&enc.to_be_bytes());
    out.extend_from_slice(body);
}

fn update(rects: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(rects as u16).to_be_bytes());
}

fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Server stream after the handshake: updates from `one` until `TARGET`.
fn stream(one: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut s = Vec::with_capacity(TARGET + (1 << 20));
    while s.len() < TARGET {
        one(&mut s);
    }
    s
}

fn raw_stream() -> Vec<u8> {
    let body = noise(256 * 64 * 4, 1);
    stream(|s| {
        update(4, s);
        for _ in 0..4 {
            rect(256, 64, 0, &body, s);
        }
    })
}

/// Hextile with a mix of tiles: raw, background + coloured subrects, and
/// solid ones, as a desktop with text gives.
fn hextile_stream() -> Vec<u8> {
    let (w, h) = (256u16, 128u16);
    let mut body = Vec::new();
    let px = noise(16 * 16 * 4, 2);
    for i in 0..(w as usize / 16) * (h as usize / 16) {
        match i % 4 {
            0 => {
                body.push(1);
                body.extend_from_slice(&px);
            }
            1 => {
                body.extend_from_slice(&[2 | 8 | 16, 1, 2, 3, 4, 12]);
                for k in 0..12u8 {
                    body.extend_from_slice(&[k, k, k, 0, k, 0x11]);
                }
            }
            2 => body.extend_from_slice(&[2 | 4 | 8, 9, 9, 9, 0, 7, 7, 7, 0, 20]),
            _ => body.push(0),
        }
        if i % 4 == 2 {
            body.extend(std::iter::repeat_n(0x21, 40));
        }
    }
    stream(|s| {
        update(2, s);
        rect(w, h, 5, &body, s);
        rect(w, h, 5, &body, s);
    })
}

/// ZRLE and Tight rectangles: length-prefixed compressed data of typical
/// sizes, Tight with palette and JPEG variants.
fn zrle_tight_stream() -> Vec<u8> {
    let data = noise(6000, 3);
    let mut zrle = (data.len() as u32).to_be_bytes().to_vec();
    zrle.extend_from_slice(&data);
    let mut tight_palette = vec![0x40, 1, 3];
    tight_palette.extend(noise(4 * 3, 4));
    tight_palette.extend_from_slice(&[0x80 | (3000 & 0x7f) as u8, (3000 >> 7) as u8]);
    tight_palette.extend(noise(3000, 5));
    let mut jpeg = vec![0x90, 0x80 | (9000 & 0x7f) as u8, (9000 >> 7) as u8];
    jpeg.extend(noise(9000, 6));
    stream(|s| {
        update(12, s);
        for _ in 0..4 {
            rect(64, 64, 16, &zrle, s);
            rect(64, 64, 7, &tight_palette, s);
            rect(64, 64, 7, &jpeg, s);
        }
    })
}

fn handshake() -> [(Direction, Vec<u8>); 9] {
    let mut init = vec![1, 0, 0, 200];
    init.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    init.extend_from_slice(&4u32.to_be_bytes());
    init.extend_from_slice(b"desk");
    [
        (Direction::ServerToClient, b"RFB 003.008\n".to_vec()),
        (Direction::ClientToServer, b"RFB 003.008\n".to_vec()),
        (Direction::ServerToClient, vec![1, 2]),
        (Direction::ClientToServer, vec![2]),
        (Direction::ServerToClient, vec![7; 16]),
        (Direction::ClientToServer, vec![8; 16]),
        (Direction::ServerToClient, vec![0; 4]),
        (Direction::ClientToServer, vec![1]),
        (Direction::ServerToClient, init),
    ]
}

/// Counts updates and findings, keeps nothing.
#[derive(Default)]
struct Count {
    updates: u64,
    findings: u64,
}

impl EventSink for Count {
    fn event(&mut self, e: Event) {
        match e.kind {
            EventKind::Message { name, .. } if name == "FramebufferUpdate" => self.updates += 1,
            EventKind::Finding(_) => self.findings += 1,
            _ => {}
        }
    }
}

fn decode(server: &[u8]) -> Count {
    let mut dec = RfbDecoder::new(&StreamContext::default());
    let mut sink = Count::default();
    let mut offsets = [0u64; 2];
    for (d, b) in handshake() {
        dec.data(
            Chunk {
                at: Micros(1),
                frame: 1,
                direction: d,
                stream_offset: offsets[d.index()],
                bytes: &b,
            },
            &mut sink,
        );
        offsets[d.index()] += b.len() as u64;
    }
    for (i, c) in server.chunks(CHUNK).enumerate() {
        dec.data(
            Chunk {
                at: Micros(2 + i as u64),
                frame: 2 + i as u64,
                direction: Direction::ServerToClient,
                stream_offset: offsets[1],
                bytes: c,
            },
            &mut sink,
        );
        offsets[1] += c.len() as u64;
    }
    sink
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rfb");
    g.sample_size(10);
    for (name, bytes) in [
        ("raw", raw_stream()),
        ("hextile", hextile_stream()),
        ("zrle_tight", zrle_tight_stream()),
    ] {
        let check = decode(&bytes);
        assert_eq!(check.findings, 0, "{name}");
        assert!(check.updates > 0, "{name}");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(BenchmarkId::new("memcpy", name), |b| {
            let mut dst = vec![0u8; bytes.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(&bytes));
                black_box(&dst);
            })
        });
        g.bench_function(BenchmarkId::new("tcp_rfb_framing", name), |b| {
            b.iter(|| black_box(decode(black_box(&bytes)).updates))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
