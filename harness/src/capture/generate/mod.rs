//! Deterministic large captures for streaming, memory and throughput
//! tests: many concurrent TCP connections carrying what real sessions
//! carry (noVNC through websockify, plain VNC, SPICE main, display and
//! inputs channels), cut into MSS and TSO-sized segments with some
//! reordering and retransmission. The same seed gives the same bytes.

mod pixels;
pub mod rfb;
pub mod server;
pub mod spice;
pub mod ws;

use super::writer::{Flags, PcapWriter, tcp_frame};
use crate::timeline::Micros;
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use rfb::{RfbSession, Write as AppWrite};
use spice::SpiceChannel;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};

/// What the connections carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Content {
    /// A mix of noVNC-through-websockify, VNC and SPICE sessions.
    #[default]
    Realistic,
    /// noVNC through websockify only (`tcp/ws/rfb`).
    Novnc,
    /// VNC over TCP only (`tcp/rfb`).
    Vnc,
    /// SPICE sessions only (main, display, inputs).
    Spice,
    /// Random bytes: large server bursts, small client messages.
    Opaque,
    /// One server host's day: `--sessions` clients over `--duration`,
    /// noVNC, VNC and SPICE, each ending its own way, with a truth file.
    Server,
}

#[derive(Debug, Clone, Copy)]
pub struct GenConfig {
    /// Stop once this many bytes of capture are written.
    pub size: u64,
    pub seed: u64,
    /// Connections open at once.
    pub concurrent: usize,
    /// Payload bytes a connection carries before it closes.
    pub bytes_per_connection: u64,
    pub content: Content,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            size: 100 << 20,
            seed: 1,
            concurrent: 32,
            bytes_per_connection: 8 << 20,
            content: Content::Realistic,
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

/// The application on one connection.
enum App {
    NoVnc(Box<RfbSession>),
    Vnc(Box<RfbSession>),
    Spice(Box<SpiceChannel>),
    Opaque,
}

struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    cseq: u32,
    sseq: u32,
    sent: u64,
    app: App,
    started: bool,
    rounds: u32,
}

/// Exchanges after which a connection closes even if it carried little
/// (SPICE main and inputs), so that they do not pile up and turn a large
/// capture into one of tiny packets.
const MAX_ROUNDS: u32 = 1500;

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

    fn tick(&mut self, rng: &mut XorShiftRng, max_us: u64) {
        self.now = Micros(self.now.0 + rng.random_range(1..max_us));
    }
}

const ACK: Flags = Flags::ACK;

const MSS: usize = 1448;

impl Conn {
    fn open<W: Write>(
        out: &mut Out<W>,
        rng: &mut XorShiftRng,
        n: u64,
        server_port: u16,
        app: App,
    ) -> io::Result<Conn> {
        let client = SocketAddr::new(
            Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8).into(),
            20000 + (n % 40000) as u16,
        );
        let server = SocketAddr::new(
            Ipv4Addr::new(10, 2, 0, 1 + (n % 4) as u8).into(),
            server_port,
        );
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
            app,
            started: false,
            rounds: 0,
        })
    }

    /// One application write, cut into segments the way a sender's TCP
    /// stack and the capture see them: MSS-sized, sometimes TSO-sized,
    /// now and then two swapped or one sent twice.
    fn send<W: Write>(
        &mut self,
        out: &mut Out<W>,
        rng: &mut XorShiftRng,
        from_client: bool,
        bytes: &[u8],
    ) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.cseq, self.sseq)
        } else {
            (self.server, self.client, self.sseq, self.cseq)
        };
        let seg_size = if bytes.len() > 4 * MSS && rng.random_bool(0.05) {
            16 * MSS
        } else {
            MSS
        };
        let mut segs: Vec<(usize, usize)> = (0..bytes.len())
            .step_by(seg_size)
            .map(|off| (off, seg_size.min(bytes.len() - off)))
            .collect();
        if segs.len() > 2 && rng.random_bool(0.05) {
            let k = rng.random_range(0..segs.len() - 1);
            segs.swap(k, k + 1);
        }
        if rng.random_bool(0.01) {
            segs.push(segs[0]);
        }
        for (off, len) in segs {
            let flags = Flags {
                psh: off + len == bytes.len(),
                ..ACK
            };
            let fr = tcp_frame(
                src,
                dst,
                seq.wrapping_add(off as u32),
                ack,
                flags,
                &bytes[off..off + len],
            );
            out.frame(&fr)?;
        }
        let n = bytes.len() as u32;
        if from_client {
            self.cseq = self.cseq.wrapping_add(n);
        } else {
            self.sseq = self.sseq.wrapping_add(n);
        }
        self.sent += bytes.len() as u64;
        out.stats.payload_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Puts the application's writes on the wire, in WebSocket frames
    /// where the session is noVNC's.
    fn play<W: Write>(
        &mut self,
        out: &mut Out<W>,
        rng: &mut XorShiftRng,
        writes: &mut Vec<AppWrite>,
    ) -> io::Result<()> {
        let in_ws = matches!(self.app, App::NoVnc(_));
        for w in writes.drain(..) {
            out.tick(rng, 400);
            match w {
                AppWrite::Client(b) if b.is_empty() => {}
                AppWrite::Server(b) if b.is_empty() => {}
                AppWrite::Client(b) if in_ws => {
                    let framed = ws::client_frames(rng, ws::OP_BINARY, &b);
                    self.send(out, rng, true, &framed)?;
                }
                AppWrite::Server(b) if in_ws => {
                    let framed = ws::server_frames(rng, &b);
                    self.send(out, rng, false, &framed)?;
                }
                AppWrite::Client(b) => self.send(out, rng, true, &b)?,
                AppWrite::Server(b) => self.send(out, rng, false, &b)?,
            }
        }
        Ok(())
    }

    /// The next exchange on this connection.
    fn step<W: Write>(
        &mut self,
        out: &mut Out<W>,
        rng: &mut XorShiftRng,
        writes: &mut Vec<AppWrite>,
        noise: &[u8],
    ) -> io::Result<()> {
        let first = !self.started;
        self.started = true;
        self.rounds += 1;
        if first && matches!(self.app, App::NoVnc(_)) {
            // The HTTP upgrade goes out unframed, before any RFB.
            let (req, resp) = ws::upgrade(rng, self.server.port());
            self.send(out, rng, true, &req)?;
            out.tick(rng, 2_000);
            self.send(out, rng, false, &resp)?;
        }
        match &mut self.app {
            App::NoVnc(s) => {
                if first {
                    s.handshake(rng, writes);
                } else {
                    s.round(rng, writes);
                    if rng.random_bool(0.02) {
                        // websockify's heartbeat and the browser's pong.
                        let mut ping = Vec::new();
                        ws::frame(ws::OP_PING, b"", None, &mut ping);
                        self.send(out, rng, false, &ping)?;
                        let pong = ws::client_frames(rng, ws::OP_PONG, b"");
                        self.send(out, rng, true, &pong)?;
                    }
                }
            }
            App::Vnc(s) => {
                if first {
                    s.handshake(rng, writes);
                } else {
                    s.round(rng, writes);
                }
            }
            App::Spice(s) => {
                if first {
                    s.link(rng, writes);
                } else {
                    s.round(rng, writes);
                }
            }
            App::Opaque => {
                let burst = rng.random_range(1..48 * 1024usize);
                let start = rng.random_range(0..noise.len() - burst);
                writes.push(AppWrite::Server(noise[start..start + burst].to_vec()));
                let msg = rng.random_range(6..64usize);
                writes.push(AppWrite::Client(noise[..msg].to_vec()));
            }
        }
        self.play(out, rng, writes)
    }

    fn close<W: Write>(mut self, out: &mut Out<W>, rng: &mut XorShiftRng) -> io::Result<()> {
        if matches!(self.app, App::NoVnc(_)) {
            let (client, server) = ws::close_pair(rng);
            self.send(out, rng, true, &client)?;
            out.tick(rng, 2_000);
            self.send(out, rng, false, &server)?;
        }
        let fin = Flags {
            fin: true,
            ack: true,
            ..Flags::default()
        };
        let c = self;
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
        ))
    }
}

/// Writes a capture of about `cfg.size` bytes to `w`.
pub fn generate<W: Write>(cfg: GenConfig, w: W) -> io::Result<GenStats> {
    let mut rng = XorShiftRng::seed_from_u64(cfg.seed);
    let mut out = Out {
        w: PcapWriter::new(w, 1, false, false)?,
        stats: GenStats::default(),
        now: Micros(1_700_000_000_000_000),
    };
    let mut noise = vec![0u8; 65536];
    rng.fill(&mut noise[..]);
    let mut conns: Vec<Conn> = Vec::new();
    let mut writes = Vec::new();
    let mut opened = 0u64;
    while out.stats.bytes < cfg.size {
        if conns.len() < cfg.concurrent.max(1) {
            let app_mix = match cfg.content {
                Content::Realistic | Content::Server => rng.random_range(0..10u8),
                Content::Novnc => 0,
                Content::Vnc => 5,
                Content::Spice => 7,
                Content::Opaque => u8::MAX,
            };
            match app_mix {
                0..=4 => {
                    let s = RfbSession::new(&mut rng, false);
                    conns.push(Conn::open(
                        &mut out,
                        &mut rng,
                        opened,
                        6080,
                        App::NoVnc(Box::new(s)),
                    )?);
                    opened += 1;
                }
                5..=6 => {
                    let auth = rng.random_bool(0.5);
                    let s = RfbSession::new(&mut rng, auth);
                    conns.push(Conn::open(
                        &mut out,
                        &mut rng,
                        opened,
                        5900,
                        App::Vnc(Box::new(s)),
                    )?);
                    opened += 1;
                }
                7..=9 => {
                    // A SPICE session: main links first and hands out the
                    // session id the other channels link with.
                    let session_id = rng.random::<u32>() | 1;
                    for channel in [spice::MAIN, spice::DISPLAY, spice::INPUTS] {
                        let ch = SpiceChannel::new(&mut rng, channel, session_id);
                        let mut c =
                            Conn::open(&mut out, &mut rng, opened, 5930, App::Spice(Box::new(ch)))?;
                        opened += 1;
                        c.step(&mut out, &mut rng, &mut writes, &noise)?;
                        conns.push(c);
                    }
                }
                _ => {
                    conns.push(Conn::open(&mut out, &mut rng, opened, 5900, App::Opaque)?);
                    opened += 1;
                }
            }
            continue;
        }
        let i = rng.random_range(0..conns.len());
        out.tick(&mut rng, 2_000);
        conns[i].step(&mut out, &mut rng, &mut writes, &noise)?;
        if conns[i].sent >= cfg.bytes_per_connection || conns[i].rounds >= MAX_ROUNDS {
            conns.swap_remove(i).close(&mut out, &mut rng)?;
        }
    }
    out.w.into_inner().flush()?;
    Ok(out.stats)
}
