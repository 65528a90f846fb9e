//! Deterministic large captures for streaming, memory and throughput
//! tests: many concurrent TCP connections with realistic segment sizes,
//! some reordering and some retransmission. The same seed gives the same
//! bytes.

use super::writer::{Flags, PcapWriter, tcp_frame};
use crate::timeline::Micros;
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, Copy)]
pub struct GenConfig {
    /// Stop once this many bytes of capture are written.
    pub size: u64,
    pub seed: u64,
    /// Connections open at once.
    pub concurrent: usize,
    /// Payload bytes a connection carries before it closes.
    pub bytes_per_connection: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            size: 100 << 20,
            seed: 1,
            concurrent: 32,
            bytes_per_connection: 8 << 20,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct GenStats {
    pub bytes: u64,
    pub packets: u64,
    pub connections: u64,
    pub payload_bytes: u64,
}

struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    cseq: u32,
    sseq: u32,
    sent: u64,
}

struct Out<W: Write> {
    w: PcapWriter<W>,
    stats: GenStats,
    now: Micros,
}

impl<W: Write> Out<W> {
    fn frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.w.write_packet(self.now, frame)?;
        self.stats.packets += 1;
        self.stats.bytes += 16 + frame.len() as u64;
        Ok(())
    }
}

const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
    psh: false,
};

fn open<W: Write>(out: &mut Out<W>, rng: &mut XorShiftRng, n: u64) -> io::Result<Conn> {
    let client = SocketAddr::new(
        Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8).into(),
        20000 + (n % 40000) as u16,
    );
    let server = SocketAddr::new(Ipv4Addr::new(10, 2, 0, 1 + (n % 4) as u8).into(), 5900);
    let (cisn, sisn) = (rng.random::<u32>(), rng.random::<u32>());
    let syn = Flags {
        syn: true,
        ..Flags::default()
    };
    let synack = Flags {
        syn: true,
        ack: true,
        ..Flags::default()
    };
    out.frame(&tcp_frame(client, server, cisn, 0, syn, b""))?;
    out.frame(&tcp_frame(
        server,
        client,
        sisn,
        cisn.wrapping_add(1),
        synack,
        b"",
    ))?;
    out.frame(&tcp_frame(
        client,
        server,
        cisn.wrapping_add(1),
        sisn.wrapping_add(1),
        ACK,
        b"",
    ))?;
    out.stats.connections += 1;
    Ok(Conn {
        client,
        server,
        cseq: cisn.wrapping_add(1),
        sseq: sisn.wrapping_add(1),
        sent: 0,
    })
}

/// Writes a capture of about `cfg.size` bytes to `w`.
pub fn generate<W: Write>(cfg: GenConfig, w: W) -> io::Result<GenStats> {
    let mut rng = XorShiftRng::seed_from_u64(cfg.seed);
    let mut out = Out {
        w: PcapWriter::new(w, 1, false, false)?,
        stats: GenStats::default(),
        now: Micros(1_700_000_000_000_000),
    };
    let mut payload = vec![0u8; 65536];
    rng.fill(&mut payload[..]);
    let mut conns = Vec::new();
    let mut opened = 0u64;
    while out.stats.bytes < cfg.size {
        if conns.len() < cfg.concurrent.max(1) {
            conns.push(open(&mut out, &mut rng, opened)?);
            opened += 1;
            continue;
        }
        let i = rng.random_range(0..conns.len());
        out.now = Micros(out.now.0 + rng.random_range(1..2_000));
        let c = &mut conns[i];
        // A server burst of MSS-sized segments (sometimes one TSO-sized),
        // answered by a small client message and an ACK.
        let burst = rng.random_range(1..48 * 1024usize);
        let seg_size = if rng.random_bool(0.05) {
            16 * 1448
        } else {
            1448
        };
        let mut segs = Vec::new();
        let mut off = 0;
        while off < burst {
            let len = seg_size.min(burst - off);
            let start = rng.random_range(0..payload.len() - len);
            segs.push((c.sseq.wrapping_add(off as u32), start, len));
            off += len;
        }
        if segs.len() > 2 && rng.random_bool(0.05) {
            let k = rng.random_range(0..segs.len() - 1);
            segs.swap(k, k + 1);
        }
        for &(seq, start, len) in &segs {
            let fr = tcp_frame(
                c.server,
                c.client,
                seq,
                c.cseq,
                ACK,
                &payload[start..start + len],
            );
            out.frame(&fr)?;
        }
        if rng.random_bool(0.02) {
            let &(seq, start, len) = &segs[0];
            let fr = tcp_frame(
                c.server,
                c.client,
                seq,
                c.cseq,
                ACK,
                &payload[start..start + len],
            );
            out.frame(&fr)?;
        }
        c.sseq = c.sseq.wrapping_add(burst as u32);
        let msg = rng.random_range(6..64usize);
        let fr = tcp_frame(c.client, c.server, c.cseq, c.sseq, ACK, &payload[..msg]);
        out.frame(&fr)?;
        c.cseq = c.cseq.wrapping_add(msg as u32);
        c.sent += (burst + msg) as u64;
        out.stats.payload_bytes += (burst + msg) as u64;
        if c.sent >= cfg.bytes_per_connection {
            let fin = Flags {
                fin: true,
                ack: true,
                ..Flags::default()
            };
            let c = conns.swap_remove(i);
            out.frame(&tcp_frame(c.client, c.server, c.cseq, c.sseq, fin, b""))?;
            out.frame(&tcp_frame(
                c.server,
                c.client,
                c.sseq,
                c.cseq.wrapping_add(1),
                fin,
                b"",
            ))?;
            out.frame(&tcp_frame(
                c.client,
                c.server,
                c.cseq.wrapping_add(1),
                c.sseq.wrapping_add(1),
                ACK,
                b"",
            ))?;
        }
    }
    out.w.into_inner().flush()?;
    Ok(out.stats)
}
