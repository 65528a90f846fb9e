//! `tether gen --content server`: what a capture taken at one busy
//! websockify or SPICE host holds: many clients, each its own address,
//! whose sessions start over hours and end in the ways real ones do (the
//! user closes most; some are cut by a load balancer's idle timeout, some
//! clients freeze, some paths die, some logins are refused, some are still
//! open when the capture stops), and the truth of every session beside it.
//!
//! It streams: only open sessions are in memory, each a few hundred bytes
//! of state (framebuffer updates and drawing are cut from one shared noise
//! pool instead of a per-session screen). Sessions wait in a heap by their
//! next event; the frames an event writes wait in a second heap until no
//! earlier event can come, so frames leave in timestamp order. Each session
//! draws from its own generator seeded from the seed and its number, so the
//! same seed gives the same bytes.

use super::spice::{self, SpiceChannel};
use super::{GenStats, ws};
use crate::capture::generate::rfb::Write as AppWrite;
use crate::capture::writer::{Flags, PcapWriter, tcp_frame};
use crate::replay::score::{Truth, TruthSession};
use crate::timeline::Micros;
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};

/// Epoch microseconds of the first frame.
const EPOCH: u64 = 1_700_000_000_000_000;
const SEC: u64 = 1_000_000;
const MS: u64 = 1_000;
const MSS: usize = 1448;
/// The server's main-channel PING interval (spice-server's
/// PING_INTERVAL, 15 s; NOTES-spice: the first pair ≈15 s after connect).
const SPICE_PING: u64 = 15 * SEC;
/// spice-server's connectivity timer tick (30 s): a client whose PING is
/// outstanding at two ticks is dropped.
const SPICE_TICK: u64 = 30 * SEC;
/// Idle timeouts a load balancer in front of websockify or a VNC server
/// is usually configured with (a cloud LB's 60 s, HAProxy's 300 s).
const LB_TIMEOUTS: [u64; 2] = [60, 300];
/// Linux `tcp_retries2`: retransmissions before a connection is dropped.
const RETRIES: u32 = 15;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub sessions: u64,
    /// How long the capture runs.
    pub duration: Micros,
    pub seed: u64,
    /// Stop once this many bytes are written (sessions still running are
    /// then open in the truth).
    pub size_cap: Option<u64>,
    /// The capture's file name, for the truth file's `capture`.
    pub capture_name: String,
    /// The command line, for the truth file's `script`.
    pub script: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            sessions: 100,
            duration: Micros(3600 * SEC),
            seed: 1,
            size_cap: None,
            capture_name: "server.pcap".into(),
            script: "tether gen --content server".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// noVNC through websockify: `tcp/ws/rfb` on 6080.
    NoVnc,
    /// A VNC viewer straight to the server: `tcp/rfb` on 5900.
    Vnc,
    /// remote-viewer: main, display, inputs and cursor on 5930.
    Spice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The user closes: noVNC sends close 1000 and websockify echoes it;
    /// a VNC or SPICE viewer FINs every connection.
    UserClose,
    /// Still running when the capture stops.
    Open,
    /// The login is refused: SPICE link result PERMISSION_DENIED, RFB
    /// SecurityResult failed; the server closes.
    AuthRefused,
    /// Screen and user still; a load balancer in front cuts the idle
    /// connection after its timeout (seconds), counted from the last
    /// payload: HAProxy in http mode resets the websockify leg (RST), in
    /// tcp mode it sends FIN then RST (NOTES-novnc, NOTES-spice).
    LbIdle(u64),
    /// remote-viewer stops (SIGSTOP-like): its kernel still ACKs, PINGs
    /// go unanswered, spice-server's connectivity timer closes every
    /// channel.
    ClientFrozen,
    /// The path dies: nothing from the client arrives any more; the
    /// server's data is retransmitted with backoff (RTO from 200 ms plus
    /// the round trip, doubling, 15 times). Under SPICE the server's
    /// connectivity timer closes, its FINs visible only on the idle
    /// channels (NOTES-spice, blackhole).
    PathDead,
}

/// One TCP connection as the server host sees it.
struct Tcp {
    client: SocketAddr,
    server: SocketAddr,
    cseq: u32,
    sseq: u32,
    /// After the path died: the first unacknowledged segment, when it is
    /// next retransmitted, the current RTO and retransmissions so far.
    stuck: Option<Stuck>,
    /// Closed: later writes go nowhere.
    closed: bool,
    /// Per direction (0 client to server, 1 server to client): recent
    /// (time, sequence number after the write) so that a segment only
    /// acknowledges bytes already on the wire at its time; the sequence
    /// number before the oldest kept; the last segment's time, so that a
    /// direction's segments never go back in time.
    hist: [VecDeque<(u64, u32)>; 2],
    base: [u32; 2],
    last: [u64; 2],
}

struct Stuck {
    frame: Vec<u8>,
    next: u64,
    rto: u64,
    count: u32,
}

const ACK: Flags = Flags::ACK;
const FIN: Flags = Flags { fin: true, ..ACK };

/// Frames waiting for their time: (time, order written) → frame.
#[derive(Default)]
struct Sink {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    frames: HashMap<u64, Vec<u8>>,
    order: u64,
}

impl Sink {
    fn push(&mut self, t: u64, frame: Vec<u8>) {
        self.order += 1;
        self.heap.push(Reverse((t, self.order)));
        self.frames.insert(self.order, frame);
    }

    /// Writes every frame due at or before `t`.
    fn flush<W: Write>(
        &mut self,
        t: u64,
        w: &mut PcapWriter<W>,
        stats: &mut GenStats,
    ) -> io::Result<()> {
        while let Some(Reverse((ft, k))) = self.heap.peek().copied() {
            if ft > t {
                break;
            }
            self.heap.pop();
            if let Some(f) = self.frames.remove(&k) {
                w.write_packet(Micros(EPOCH + ft), &f)?;
                stats.packets += 1;
                stats.bytes += 16 + f.len() as u64;
            }
        }
        Ok(())
    }
}

impl Tcp {
    fn new(rng: &mut XorShiftRng, client: SocketAddr, server: SocketAddr) -> Tcp {
        Tcp {
            client,
            server,
            cseq: rng.random(),
            sseq: rng.random(),
            stuck: None,
            closed: false,
            hist: [VecDeque::new(), VecDeque::new()],
            base: [0, 0],
            last: [0, 0],
        }
    }

    fn seq(&self, dir: usize) -> u32 {
        if dir == 0 { self.cseq } else { self.sseq }
    }

    /// Records that `dir`'s sequence number reached its current value at `t`.
    fn advanced(&mut self, dir: usize, t: u64) {
        let seq = self.seq(dir);
        let h = &mut self.hist[dir];
        h.push_back((t, seq));
        if h.len() > 32
            && let Some((_, s)) = h.pop_front()
        {
            self.base[dir] = s;
        }
        self.last[dir] = self.last[dir].max(t);
    }

    /// What a segment from the other side of `dir` acknowledges at `t`.
    fn ack_of(&self, dir: usize, t: u64) -> u32 {
        self.hist[dir]
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map_or(self.base[dir], |(_, s)| *s)
    }

    /// A segment from side `dir` at `t` (never before that side's last).
    fn segment(
        &mut self,
        sink: &mut Sink,
        t: u64,
        dir: usize,
        seq: u32,
        flags: Flags,
        payload: &[u8],
    ) -> u64 {
        let t = t.max(self.last[dir]);
        self.last[dir] = t;
        let ack = self.ack_of(1 - dir, t);
        let (src, dst) = if dir == 0 {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        sink.push(t, tcp_frame(src, dst, seq, ack, flags, payload));
        t
    }

    /// The three-way handshake; returns when the client's ACK arrives.
    fn open(&mut self, sink: &mut Sink, t: u64, rtt: u64) -> u64 {
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        let synack = Flags { syn: true, ..ACK };
        sink.push(
            t,
            tcp_frame(self.client, self.server, self.cseq, 0, syn, b""),
        );
        self.cseq = self.cseq.wrapping_add(1);
        self.base[0] = self.cseq;
        sink.push(
            t + 30,
            tcp_frame(self.server, self.client, self.sseq, self.cseq, synack, b""),
        );
        self.sseq = self.sseq.wrapping_add(1);
        self.base[1] = self.sseq;
        self.last = [t + rtt, t + 30];
        self.advanced(0, t);
        self.advanced(1, t + 30);
        sink.push(
            t + rtt,
            tcp_frame(self.client, self.server, self.cseq, self.sseq, ACK, b""),
        );
        t + rtt
    }

    /// One write cut into MSS segments, then the receiver's ACK (the
    /// client's one round trip later). `acked` false: the path is dead,
    /// nothing comes back and the first segment is retransmitted.
    /// Returns the time of the last segment.
    fn send(
        &mut self,
        sink: &mut Sink,
        t: u64,
        from_client: bool,
        bytes: &[u8],
        rtt: u64,
        acked: bool,
    ) -> u64 {
        if bytes.is_empty() || self.closed {
            return t;
        }
        if !acked && self.stuck.is_some() {
            // Behind an unacknowledged segment with a window of one: the
            // bytes wait in the send queue, never reaching the wire.
            if from_client {
                self.cseq = self.cseq.wrapping_add(bytes.len() as u32);
            } else {
                self.sseq = self.sseq.wrapping_add(bytes.len() as u32);
            }
            return t;
        }
        let dir = usize::from(!from_client);
        let seq = self.seq(dir);
        let mut at = t.max(self.last[dir]);
        let n = bytes.len().div_ceil(MSS);
        // Without ACKs, only the initial window leaves.
        let limit = if acked { n } else { n.min(10) };
        for (i, chunk) in bytes.chunks(MSS).take(limit).enumerate() {
            let flags = Flags {
                psh: i + 1 == n,
                ..ACK
            };
            let off = (i * MSS) as u32;
            at = self.segment(sink, at, dir, seq.wrapping_add(off), flags, chunk);
            if i == 0 && !acked {
                let f = tcp_frame(
                    if dir == 0 { self.client } else { self.server },
                    if dir == 0 { self.server } else { self.client },
                    seq,
                    self.ack_of(1 - dir, at),
                    flags,
                    chunk,
                );
                self.stuck = Some(Stuck {
                    frame: f,
                    next: at + (200 * MS + rtt),
                    rto: 200 * MS + rtt,
                    count: 0,
                });
            }
            at += 12;
        }
        at -= 12;
        let end_seq = seq.wrapping_add(bytes.len() as u32);
        if from_client {
            self.cseq = end_seq;
        } else {
            self.sseq = end_seq;
        }
        self.advanced(dir, at);
        if acked {
            let back_at = if from_client { at + 150 } else { at + rtt };
            let other = 1 - dir;
            let s = self.seq(other);
            self.segment(sink, back_at, other, s, ACK, b"");
        }
        at
    }

    /// Retransmits the stuck segment if due; returns its next time.
    fn retransmit(&mut self, sink: &mut Sink, now: u64) -> Option<u64> {
        let s = self.stuck.as_mut()?;
        if s.count >= RETRIES {
            return None;
        }
        if s.next <= now {
            sink.push(s.next, s.frame.clone());
            s.count += 1;
            s.rto = (s.rto * 2).min(120 * SEC);
            s.next += s.rto;
            if s.count >= RETRIES {
                return None;
            }
        }
        Some(s.next)
    }

    /// One side's FIN; the other's kernel ACKs it.
    fn fin(&mut self, sink: &mut Sink, t: u64, from_client: bool, rtt: u64, acked: bool) {
        let dir = usize::from(!from_client);
        let seq = self.seq(dir);
        let t = self.segment(sink, t, dir, seq, FIN, b"");
        if from_client {
            self.cseq = self.cseq.wrapping_add(1);
        } else {
            self.sseq = self.sseq.wrapping_add(1);
        }
        self.advanced(dir, t);
        if acked {
            let back = if from_client { t + 60 } else { t + rtt };
            let s = self.seq(1 - dir);
            self.segment(sink, back, 1 - dir, s, ACK, b"");
        }
    }

    fn rst_from_client(&mut self, sink: &mut Sink, t: u64) {
        let rst = Flags { rst: true, ..ACK };
        let seq = self.cseq;
        self.segment(sink, t, 0, seq, rst, b"");
        self.closed = true;
    }
}

/// What one session does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Running,
    /// Screen and user still (load balancer case): only the cut remains.
    Still,
    /// Closed, but segments stuck on a dead path are still retransmitted.
    Drain,
    Done,
}

struct Session {
    n: u64,
    kind: Kind,
    ending: Ending,
    rng: XorShiftRng,
    conns: Vec<Tcp>,
    rtt: u64,
    start: u64,
    /// When the ending begins (close, freeze, death, stillness); `MAX`
    /// once it has begun, `fault_at` then says when.
    end_at: u64,
    fault_at: u64,
    phase: Phase,
    /// Next display update or drawing.
    next_update: u64,
    /// Active spell (input and frequent updates) until, or quiet until.
    active: bool,
    spell_until: u64,
    /// SPICE: next main PING pair; first unanswered PING; close time.
    next_ping: u64,
    ping_id: u32,
    unanswered: Option<u64>,
    timeout_close: Option<u64>,
    display_unacked: u32,
    motions: u32,
    /// After the client froze or the path died.
    frozen: bool,
    dead: bool,
    /// Last payload either way (the load balancer's idle clock).
    last_payload: u64,
    /// The cut, once the session went still.
    cut_at: Option<u64>,
    /// Mean bytes of a framebuffer update while active.
    update_mean: f64,
    truth: TruthSession,
}

fn ws_client(rng: &mut XorShiftRng, b: &[u8]) -> Vec<u8> {
    ws::client_frames(rng, ws::OP_BINARY, b)
}

/// Pointer and key events, then the incremental update request noVNC
/// sends after every update.
fn rfb_input(rng: &mut XorShiftRng, active: bool) -> Vec<u8> {
    let mut c = Vec::new();
    if active && rng.random_bool(0.6) {
        for _ in 0..rng.random_range(1..6) {
            let mask = u8::from(rng.random_bool(0.2));
            c.push(5);
            c.push(mask);
            c.extend_from_slice(&rng.random_range(0..1024u16).to_be_bytes());
            c.extend_from_slice(&rng.random_range(0..768u16).to_be_bytes());
        }
    }
    if active && rng.random_bool(0.3) {
        let keysym = rng.random_range(0x20..0x7fu32);
        for down in [1, 0] {
            c.extend_from_slice(&[4, down, 0, 0]);
            c.extend_from_slice(&keysym.to_be_bytes());
        }
    }
    c.extend_from_slice(&update_request(true));
    c
}

fn update_request(incremental: bool) -> Vec<u8> {
    let mut m = vec![3, u8::from(incremental)];
    for v in [0u16, 0, 1024, 768] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    m
}

/// A FramebufferUpdate of about `budget` bytes: Tight fills and JPEGs,
/// small Raw rectangles and CopyRects; every rectangle stateless for a
/// decoder (no zlib stream carried between updates).
fn rfb_update(rng: &mut XorShiftRng, noise: &[u8], budget: usize) -> Vec<u8> {
    let mut rects: Vec<Vec<u8>> = Vec::new();
    let mut left = budget as i64;
    while left > 0 || rects.is_empty() {
        let w = rng.random_range(8..=400u16);
        let h = rng.random_range(8..=300u16);
        let x = rng.random_range(0..=1024 - w);
        let y = rng.random_range(0..=768 - h);
        let mut r = Vec::new();
        for v in [x, y, w, h] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        match rng.random_range(0..10u8) {
            0..=1 => {
                r.extend_from_slice(&7i32.to_be_bytes());
                r.push(0x80);
                r.extend_from_slice(&[rng.random(), rng.random(), rng.random()]);
            }
            2 => {
                r.extend_from_slice(&1i32.to_be_bytes());
                r.extend_from_slice(&rng.random_range(0..1024 - w).to_be_bytes());
                r.extend_from_slice(&rng.random_range(0..768 - h).to_be_bytes());
            }
            3 if left < 4096 => {
                // Raw: a small rectangle, 4 bytes a pixel.
                let (w, h) = (rng.random_range(1..=16u16), rng.random_range(1..=16u16));
                r[4..8].copy_from_slice(&[0, w as u8, 0, h as u8]);
                r.extend_from_slice(&0i32.to_be_bytes());
                let len = usize::from(w) * usize::from(h) * 4;
                let off = rng.random_range(0..noise.len() - len);
                r.extend_from_slice(&noise[off..off + len]);
            }
            _ => {
                // Tight JPEG: only its length matters to a decoder.
                let len = (left.max(64) as usize).min(200_000);
                let len = rng.random_range(len / 2..=len).max(64);
                r.extend_from_slice(&7i32.to_be_bytes());
                r.push(0x90);
                super::rfb::push_compact_len(&mut r, len);
                r.extend_from_slice(&[0xff, 0xd8, 0xff, 0xe0]);
                let off = rng.random_range(0..noise.len() - len);
                r.extend_from_slice(&noise[off + 6..off + len]);
                r.extend_from_slice(&[0xff, 0xd9]);
            }
        }
        left -= r.len() as i64;
        rects.push(r);
    }
    let mut u = vec![0, 0];
    u.extend_from_slice(&(rects.len() as u16).to_be_bytes());
    for r in rects {
        u.extend_from_slice(&r);
    }
    u
}

/// An exponential draw with this mean, in microseconds.
fn exp_us(rng: &mut XorShiftRng, mean_s: f64) -> u64 {
    let u: f64 = rng.random_range(1e-9..1.0);
    (-u.ln() * mean_s * SEC as f64) as u64
}

fn secs(t: u64) -> f64 {
    t as f64 / SEC as f64
}

/// A time window rounded outward to milliseconds.
fn window(lo: u64, hi: u64) -> [f64; 2] {
    [
        (secs(lo) * 1000.0).floor() / 1000.0,
        (secs(hi) * 1000.0).ceil() / 1000.0,
    ]
}

impl Session {
    fn new(seed: u64, n: u64, start: u64, duration: u64, next_port: &mut u32) -> Session {
        let mut rng = XorShiftRng::seed_from_u64(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n.wrapping_mul(0xd1b5_4a32_d192_ed03),
        );
        let kind = match rng.random_range(0..20u8) {
            0..=8 => Kind::NoVnc,
            9..=12 => Kind::Vnc,
            _ => Kind::Spice,
        };
        // Lengths from two minutes to an hour, log-uniform.
        let len = (120.0 * 30f64.powf(rng.random_range(0.0..1.0)) * SEC as f64) as u64;
        let left = duration.saturating_sub(start);
        let roll = rng.random_range(0..100u8);
        // Most users close.
        let mut ending = match roll {
            0..=4 => Ending::AuthRefused,
            5..=11 if kind == Kind::Spice => Ending::ClientFrozen,
            5..=11 => Ending::LbIdle(LB_TIMEOUTS[rng.random_range(0..LB_TIMEOUTS.len())]),
            12..=15 => Ending::PathDead,
            _ => Ending::UserClose,
        };
        // What the ending needs after it begins, so that it completes
        // inside the capture.
        let tail = match ending {
            Ending::LbIdle(t) => t * SEC + 5 * SEC,
            Ending::ClientFrozen | Ending::PathDead => 2 * SPICE_TICK + SPICE_PING + 5 * SEC,
            _ => 5 * SEC,
        };
        let end_at = if ending == Ending::AuthRefused {
            start
        } else if len + tail + 30 * SEC <= left {
            start + len
        } else if left > tail + 60 * SEC && rng.random_bool(0.5) {
            // A session cut short by the capture's end: end it inside.
            start + rng.random_range(30 * SEC..left - tail)
        } else {
            ending = Ending::Open;
            u64::MAX
        };
        let client_ip = Ipv4Addr::new(
            10,
            1 + (n / 62_500) as u8,
            (n / 250 % 250) as u8,
            (n % 250 + 1) as u8,
        );
        let (port, channels) = match kind {
            Kind::NoVnc => (6080, 1),
            Kind::Vnc => (5900, 1),
            Kind::Spice => (5930, if ending == Ending::AuthRefused { 1 } else { 4 }),
        };
        let server = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), port);
        let mut conns = Vec::new();
        for _ in 0..channels {
            // Every connection its own port, across the whole capture.
            let p = 32768 + (*next_port % 28000) as u16;
            *next_port += 1;
            conns.push(Tcp::new(
                &mut rng,
                SocketAddr::new(client_ip.into(), p),
                server,
            ));
        }
        let rtt = rng.random_range(2 * MS..80 * MS);
        let update_mean = match kind {
            Kind::Spice => 500.0,
            _ => 1000.0,
        };
        let truth = TruthSession {
            client: Some(client_ip.to_string()),
            port: Some(conns[0].client.port()),
            outcome: String::new(),
            cause: None,
            origin: None,
            at: None,
            channel: None,
            closed_by: None,
            recovered_at: None,
            outage: None,
            attempts: Vec::new(),
            note: None,
        };
        Session {
            n,
            kind,
            ending,
            rng,
            conns,
            rtt,
            start,
            end_at,
            fault_at: end_at,
            phase: Phase::Start,
            next_update: u64::MAX,
            active: true,
            spell_until: start,
            next_ping: start + SPICE_PING + 380 * MS,
            ping_id: 0,
            unanswered: None,
            timeout_close: None,
            display_unacked: 0,
            motions: 0,
            frozen: false,
            dead: false,
            last_payload: start,
            cut_at: None,
            update_mean,
            truth,
        }
    }

    fn in_ws(&self) -> bool {
        self.kind == Kind::NoVnc
    }

    /// The next time this session has something to do.
    fn due(&self) -> Option<u64> {
        if self.phase == Phase::Done {
            return None;
        }
        if self.phase == Phase::Start {
            return Some(self.start);
        }
        let stuck = self
            .conns
            .iter()
            .filter_map(|c| {
                c.stuck
                    .as_ref()
                    .filter(|s| s.count < RETRIES)
                    .map(|s| s.next)
            })
            .min();
        if self.phase == Phase::Drain {
            return stuck;
        }
        let mut t = self.next_update.min(self.end_at);
        if self.kind == Kind::Spice {
            t = t.min(self.next_ping);
        }
        if let Some(c) = self.timeout_close {
            t = t.min(c);
        }
        if let Some(c) = self.cut_at {
            t = t.min(c);
        }
        if let Some(s) = stuck {
            t = t.min(s);
        }
        (t != u64::MAX).then_some(t)
    }

    /// Application bytes from one side on connection `i`, framed for
    /// WebSocket on noVNC; returns the time of the last frame.
    fn write(&mut self, sink: &mut Sink, t: u64, i: usize, from_client: bool, b: &[u8]) -> u64 {
        if from_client && (self.frozen || self.dead) {
            return t;
        }
        let framed;
        let bytes = if self.in_ws() {
            framed = if from_client {
                ws_client(&mut self.rng, b)
            } else {
                ws::server_frames(&mut self.rng, b)
            };
            &framed[..]
        } else {
            b
        };
        let acked = !self.dead;
        let end = self.conns[i].send(sink, t, from_client, bytes, self.rtt, acked);
        if !self.dead {
            self.last_payload = self.last_payload.max(end);
        }
        end
    }

    /// Plays app writes in order: the server's at once, the client's one
    /// round trip after what it answers.
    fn play(&mut self, sink: &mut Sink, mut t: u64, i: usize, writes: Vec<AppWrite>) -> u64 {
        let mut last_client = true;
        for w in writes {
            match w {
                AppWrite::Client(b) => {
                    if !last_client {
                        t += self.rtt;
                    }
                    t = self.write(sink, t, i, true, &b) + 100;
                    last_client = true;
                }
                AppWrite::Server(b) => {
                    if last_client {
                        t += 200;
                    }
                    t = self.write(sink, t, i, false, &b) + 50;
                    last_client = false;
                }
            }
        }
        t
    }

    fn step(&mut self, sink: &mut Sink, now: u64, noise: &[u8]) {
        match self.phase {
            Phase::Start => self.begin(sink, now, noise),
            Phase::Done => {}
            Phase::Drain => {
                for c in &mut self.conns {
                    c.retransmit(sink, now);
                }
            }
            _ => self.run(sink, now, noise),
        }
        if self.dead
            && self.phase == Phase::Running
            && self.kind != Kind::Spice
            && self.due().is_none()
        {
            // The server's TCP gave up; websockify or the VNC server drops
            // the session without a segment on this leg.
            self.set_truth(now, now);
            self.phase = Phase::Done;
        }
    }

    fn begin(&mut self, sink: &mut Sink, now: u64, noise: &[u8]) {
        let rtt = self.rtt;
        let mut t = self.conns[0].open(sink, now, rtt);
        let refused = self.ending == Ending::AuthRefused;
        match self.kind {
            Kind::NoVnc | Kind::Vnc => {
                if self.kind == Kind::NoVnc {
                    let (req, resp) = ws::upgrade(&mut self.rng, 6080);
                    t = self.conns[0].send(sink, t + 100, true, &req, rtt, true) + 900;
                    t = self.conns[0].send(sink, t, false, &resp, rtt, true) + rtt;
                }
                let mut w = vec![
                    AppWrite::Server(b"RFB 003.008\n".to_vec()),
                    AppWrite::Client(b"RFB 003.008\n".to_vec()),
                ];
                let vnc_auth = refused || self.kind == Kind::Vnc;
                if vnc_auth {
                    w.push(AppWrite::Server(vec![1, 2]));
                    w.push(AppWrite::Client(vec![2]));
                    let ch: [u8; 16] = self.rng.random();
                    w.push(AppWrite::Server(ch.to_vec()));
                    let resp: [u8; 16] = self.rng.random();
                    w.push(AppWrite::Client(resp.to_vec()));
                } else {
                    w.push(AppWrite::Server(vec![1, 1]));
                    w.push(AppWrite::Client(vec![1]));
                }
                if refused {
                    let reason = b"Authentication failure";
                    let mut r = 1u32.to_be_bytes().to_vec();
                    r.extend_from_slice(&(reason.len() as u32).to_be_bytes());
                    r.extend_from_slice(reason);
                    w.push(AppWrite::Server(r));
                    t = self.play(sink, t, 0, w);
                    self.refuse(sink, t);
                    return;
                }
                w.push(AppWrite::Server(vec![0, 0, 0, 0]));
                w.push(AppWrite::Client(vec![1]));
                let name = b"tether generated desktop";
                let mut init = Vec::new();
                init.extend_from_slice(&1024u16.to_be_bytes());
                init.extend_from_slice(&768u16.to_be_bytes());
                init.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
                init.extend_from_slice(&(name.len() as u32).to_be_bytes());
                init.extend_from_slice(name);
                w.push(AppWrite::Server(init));
                let mut c = vec![0, 0, 0, 0];
                c.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
                let encodings: [i32; 8] = [1, 7, 16, 5, 0, -26, -239, -224];
                c.extend_from_slice(&[2, 0]);
                c.extend_from_slice(&(encodings.len() as u16).to_be_bytes());
                for e in encodings {
                    c.extend_from_slice(&e.to_be_bytes());
                }
                c.extend_from_slice(&update_request(false));
                w.push(AppWrite::Client(c));
                let first = rfb_update(&mut self.rng, noise, 40_000);
                w.push(AppWrite::Server(first));
                w.push(AppWrite::Client(update_request(true)));
                t = self.play(sink, t, 0, w);
            }
            Kind::Spice => {
                let session_id = self.rng.random::<u32>() | 1;
                let mut ch = SpiceChannel::for_link(&mut self.rng, spice::MAIN, session_id);
                let mut w = Vec::new();
                ch.link(&mut self.rng, &mut w);
                if refused {
                    // Ticket answered with PERMISSION_DENIED (7), then FIN.
                    w.truncate(4);
                    w.push(AppWrite::Server(7u32.to_le_bytes().to_vec()));
                    t = self.play(sink, t, 0, w);
                    self.refuse(sink, t);
                    return;
                }
                t = self.play(sink, t, 0, w);
                for (i, c) in [spice::DISPLAY, spice::INPUTS, spice::CURSOR]
                    .into_iter()
                    .enumerate()
                {
                    let start = self.conns[i + 1].open(sink, t + 200 + i as u64 * 60, rtt);
                    let mut ch = SpiceChannel::for_link(&mut self.rng, c, session_id);
                    let mut w = Vec::new();
                    ch.link(&mut self.rng, &mut w);
                    let end = self.play(sink, start, i + 1, w);
                    t = t.max(end);
                }
                self.display_unacked = 2;
            }
        }
        self.phase = Phase::Running;
        self.spell_until = t;
        self.active = false;
        self.next_update = t + 200 * MS;
        self.last_payload = t;
        if self.ending == Ending::Open || self.ending == Ending::UserClose {
            let (lo, hi) = (self.end_at, self.end_at);
            self.set_truth(lo, hi);
        }
    }

    /// The server refused the login and closed; the client closes too.
    fn refuse(&mut self, sink: &mut Sink, t: u64) {
        let rtt = self.rtt;
        let c = &mut self.conns[0];
        c.fin(sink, t + 100, false, rtt, true);
        c.fin(sink, t + rtt + 300, true, rtt, true);
        self.phase = Phase::Done;
        self.truth.outcome = "refused".into();
        self.truth.cause = Some("auth.refused".into());
        self.truth.attempts = vec!["auth.refused".into()];
        self.truth.closed_by = Some("server".into());
        self.truth.at = Some(window(self.start.saturating_sub(SEC / 2), t + 3 * SEC));
        self.truth.note = Some(match self.kind {
            Kind::Spice => "SPICE ticket refused: link result PERMISSION_DENIED on main, server FIN".into(),
            Kind::NoVnc => "noVNC through websockify: RFB VNC auth, SecurityResult failed with a reason, server FIN".into(),
            Kind::Vnc => "VNC auth: SecurityResult failed with a reason, server FIN".into(),
        });
    }

    fn set_truth(&mut self, lo: u64, hi: u64) {
        let t = &mut self.truth;
        match self.ending {
            Ending::Open => {
                t.outcome = "open".into();
                t.note = Some("still running when the capture ends".into());
            }
            Ending::UserClose => {
                t.outcome = "disconnected".into();
                t.cause = Some("client.closed".into());
                t.closed_by = Some("client".into());
                t.at = Some(window(lo.saturating_sub(SEC), hi + SEC));
                t.note = Some(match self.kind {
                    Kind::NoVnc => "the user disconnects: noVNC sends close 1000, websockify echoes it, both FIN".into(),
                    Kind::Vnc => "the user closes the viewer: client FIN, server FIN".into(),
                    Kind::Spice => "the user closes remote-viewer: client FIN on all four channels".into(),
                });
            }
            Ending::LbIdle(timeout) => {
                t.outcome = "disconnected".into();
                t.cause = Some("lb.idle_timeout".into());
                t.closed_by = Some("client".into());
                t.at = Some(window(lo.saturating_sub(SEC), hi + SEC));
                t.note = Some(format!(
                    "screen and user still; a load balancer in front cuts the idle connection after {timeout} s: RST to the server's side"
                ));
            }
            Ending::ClientFrozen => {
                t.outcome = "disconnected".into();
                t.cause = Some("server.connectivity_timeout".into());
                t.channel = Some("main".into());
                t.closed_by = Some("server".into());
                t.at = Some(window(lo.saturating_sub(SEC), hi + SEC));
                t.note = Some(format!(
                    "remote-viewer stopped at T+{:.3}: its kernel ACKs, main PINGs go unanswered; the connectivity timer drops it and the server FINs all four channels",
                    secs(self.fault_at)
                ));
            }
            Ending::PathDead if self.kind != Kind::Spice => {
                t.outcome = "disconnected".into();
                t.cause = Some("network.outage".into());
                t.at = Some(window(self.fault_at, hi + SEC));
                t.note = Some(format!(
                    "the path died at T+{:.3}: the server's last update is retransmitted with backoff until its TCP gives up ({RETRIES} retransmissions)",
                    secs(self.fault_at)
                ));
            }
            Ending::PathDead => {
                t.outcome = "disconnected".into();
                t.cause = Some("server.connectivity_timeout".into());
                t.origin = Some("network.outage".into());
                t.channel = Some("main".into());
                t.closed_by = Some("server".into());
                t.at = Some(window(lo.saturating_sub(SEC), hi + SEC));
                t.note = Some(format!(
                    "the path died at T+{:.3}: nothing from the client arrives; the server's data is retransmitted with backoff; the connectivity timer closes (FINs visible on the idle channels only)",
                    secs(self.fault_at)
                ));
            }
            Ending::AuthRefused => {}
        }
    }

    fn run(&mut self, sink: &mut Sink, now: u64, noise: &[u8]) {
        let rtt = self.rtt;
        // Retransmissions on a dead path.
        for c in &mut self.conns {
            c.retransmit(sink, now);
        }
        if let Some(c) = self.timeout_close
            && c <= now
        {
            // spice-server's connectivity timer: FIN on every channel.
            let acked = !self.dead;
            let now = self.quiet_after(now);
            for (i, conn) in self.conns.iter_mut().enumerate() {
                if acked || conn.stuck.is_none() {
                    conn.fin(sink, now + i as u64 * 40, false, rtt, acked);
                }
                conn.closed = true;
            }
            self.set_truth(now, now);
            self.phase = if self.dead { Phase::Drain } else { Phase::Done };
            return;
        }
        if let Some(c) = self.cut_at
            && c <= now
        {
            // The load balancer cuts: RST on the server's leg (HAProxy
            // sends FIN to one side and RST to the other).
            if self.kind == Kind::Vnc {
                // mode tcp: FIN, then RST (NOTES-spice, the back leg).
                self.conns[0].fin(sink, now, true, self.rtt, true);
            }
            self.conns[0].rst_from_client(sink, now + 80);
            self.set_truth(now, now);
            self.phase = Phase::Done;
            return;
        }
        if self.end_at <= now && self.phase == Phase::Running {
            self.fault_at = now;
            self.end_at = u64::MAX;
            match self.ending {
                Ending::UserClose => {
                    self.close(sink, now);
                    return;
                }
                Ending::LbIdle(timeout) => {
                    self.phase = Phase::Still;
                    // The idle clock runs from the last payload either way.
                    let cut = self.last_payload + timeout * SEC + self.rng.random_range(1..20 * MS);
                    self.cut_at = Some(cut.max(now + MS));
                    self.next_update = u64::MAX;
                    return;
                }
                Ending::ClientFrozen => self.frozen = true,
                Ending::PathDead => self.dead = true,
                _ => {}
            }
        }
        if self.phase == Phase::Still {
            return;
        }
        if self.kind == Kind::Spice && self.next_ping <= now {
            self.ping(sink, now);
        }
        if self.next_update <= now {
            self.update(sink, now, noise);
        }
    }

    fn ping(&mut self, sink: &mut Sink, now: u64) {
        let mut t = now;
        for _ in 0..2 {
            self.ping_id = self.ping_id.wrapping_add(1);
            let mut body = Vec::with_capacity(12);
            body.extend_from_slice(&self.ping_id.to_le_bytes());
            body.extend_from_slice(&(now / 1000).to_le_bytes());
            let mut s = Vec::new();
            spice::message(spice::PING, &body, &mut s);
            t = self.write(sink, t, 0, false, &s) + 30;
            if !self.frozen && !self.dead {
                let mut c = Vec::new();
                spice::message(spice::PONG, &body, &mut c);
                self.write(sink, t + self.rtt, 0, true, &c);
            }
        }
        if (self.frozen || self.dead) && self.unanswered.is_none() {
            self.unanswered = Some(now);
            // Ticks every 30 s from the connect; the close comes at the
            // second tick that finds the PING outstanding.
            let since = now - self.start;
            let first_tick = self.start + (since / SPICE_TICK + 1) * SPICE_TICK;
            self.timeout_close = Some(first_tick + SPICE_TICK + self.rng.random_range(0..5 * MS));
        }
        self.next_ping = now + SPICE_PING + self.rng.random_range(0..3 * MS);
    }

    /// A framebuffer update (RFB) or drawing and input (SPICE), then the
    /// next one: often while the user is active, every half minute or so
    /// when quiet (a clock, a blinking cursor).
    fn update(&mut self, sink: &mut Sink, now: u64, noise: &[u8]) {
        if now >= self.spell_until {
            self.active = !self.active;
            let mean = if self.active { 90.0 } else { 40.0 };
            self.spell_until = now + exp_us(&mut self.rng, mean).max(5 * SEC);
        }
        let active = self.active && !self.frozen && !self.dead;
        let budget = if active {
            (exp_us(&mut self.rng, self.update_mean) / SEC) as usize + 100
        } else {
            self.rng.random_range(100..600)
        };
        match self.kind {
            Kind::NoVnc | Kind::Vnc => {
                if self.dead {
                    // One more update into the dead path; then nothing new
                    // (the client's request never arrives).
                    let u = rfb_update(&mut self.rng, noise, budget);
                    self.write(sink, now, 0, false, &u);
                    self.next_update = u64::MAX;
                    return;
                }
                let u = rfb_update(&mut self.rng, noise, budget);
                let t = self.write(sink, now, 0, false, &u);
                let c = rfb_input(&mut self.rng, active);
                self.write(sink, t + self.rtt, 0, true, &c);
            }
            Kind::Spice => {
                let mut t = now;
                if active {
                    // Pointer motion on inputs; the server ACKs every 4.
                    let n = self.rng.random_range(1..8u32);
                    let mut c = Vec::new();
                    for _ in 0..n {
                        let mut body = Vec::with_capacity(11);
                        body.extend_from_slice(&self.rng.random_range(0..1024u32).to_le_bytes());
                        body.extend_from_slice(&self.rng.random_range(0..768u32).to_le_bytes());
                        body.extend_from_slice(&[0, 0, 0]);
                        spice::message(112, &body, &mut c);
                    }
                    t = self.write(sink, t, 2, true, &c) + 300;
                    let mut s = Vec::new();
                    for _ in 0..n {
                        self.motions += 1;
                        if self.motions.is_multiple_of(4) {
                            spice::message(111, &[], &mut s);
                        }
                    }
                    if !self.frozen {
                        t = self.write(sink, t, 2, false, &s) + 300;
                    }
                }
                // Drawing on display, under the ACK window: a client that
                // does not ACK stops it at twice the window.
                if self.display_unacked < 2 * spice::ACK_WINDOW {
                    let n = self.rng.random_range(1..6u32);
                    let mut s = Vec::new();
                    let mut left = budget;
                    for k in 0..n {
                        let (kind, len) = if k + 1 == n {
                            (304u16, left.max(40))
                        } else {
                            let l = self.rng.random_range(40..(left / 2).max(41));
                            left = left.saturating_sub(l);
                            (302, l)
                        };
                        let len = len.min(noise.len() - 1);
                        let off = self.rng.random_range(0..noise.len() - len);
                        spice::message(kind, &noise[off..off + len], &mut s);
                    }
                    let end = self.write(sink, t, 1, false, &s);
                    let mut ack = Vec::new();
                    for _ in 0..n {
                        self.display_unacked += 1;
                        if self.display_unacked >= spice::ACK_WINDOW && !self.frozen && !self.dead {
                            self.display_unacked = 0;
                            spice::message(spice::ACK, &[], &mut ack);
                        }
                    }
                    self.write(sink, end + self.rtt, 1, true, &ack);
                }
            }
        }
        let gap = if active {
            exp_us(&mut self.rng, 2.5).clamp(30 * MS, 15 * SEC)
        } else {
            self.rng.random_range(20 * SEC..45 * SEC)
        };
        self.next_update = now + gap;
    }

    /// After every segment already written on any connection: a peer
    /// closing all its connections does so at one instant, not one of
    /// them behind a write still in flight.
    fn quiet_after(&self, now: u64) -> u64 {
        self.conns
            .iter()
            .map(|c| c.last[0].max(c.last[1]) + MS)
            .fold(now, u64::max)
    }

    /// The user closes.
    fn close(&mut self, sink: &mut Sink, now: u64) {
        let rtt = self.rtt;
        let now = self.quiet_after(now);
        let mut t = now;
        if self.kind == Kind::NoVnc {
            let (client, server) = ws::close_pair(&mut self.rng);
            t = self.conns[0].send(sink, t, true, &client, rtt, true) + 400;
            t = self.conns[0].send(sink, t, false, &server, rtt, true) + rtt;
        }
        for (i, c) in self.conns.iter_mut().enumerate() {
            let at = t + i as u64 * 150;
            c.fin(sink, at, true, rtt, true);
            c.fin(sink, at + 400, false, rtt, true);
        }
        self.set_truth(now, now);
        self.phase = Phase::Done;
    }
}

/// Writes the capture to `w` and returns what was written and the truth.
pub fn generate_server<W: Write>(cfg: &ServerConfig, w: W) -> io::Result<(GenStats, Truth)> {
    let duration = cfg.duration.0.max(120 * SEC);
    let mut rng = XorShiftRng::seed_from_u64(cfg.seed);
    let mut noise = vec![0u8; 1 << 20];
    rng.fill(&mut noise[..]);
    // Session starts spread over the capture (all but its last minute),
    // the first at T+0 so that truth times count from it.
    let mut starts: Vec<u64> = (0..cfg.sessions)
        .map(|i| {
            if i == 0 {
                0
            } else {
                rng.random_range(0..duration - 60 * SEC)
            }
        })
        .collect();
    starts.sort_unstable();

    let mut out = PcapWriter::new(w, 1, false, false)?;
    let mut stats = GenStats::default();
    let mut sink = Sink::default();
    let mut open: HashMap<u64, Session> = HashMap::new();
    let mut queue: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut truth: Vec<(u64, TruthSession)> = Vec::new();
    let mut next_port = 0u32;
    let mut arrived = 0usize;
    let mut capped = false;
    // Frames up to here are written.
    let mut written_to = 0;
    loop {
        let next_arrival = starts.get(arrived).copied();
        let next_event = queue.peek().map(|r| r.0.0);
        let now = match (next_arrival, next_event) {
            (None, None) => break,
            (Some(a), Some(e)) => a.min(e),
            (Some(a), None) => a,
            (None, Some(e)) => e,
        };
        if now > duration {
            break;
        }
        sink.flush(now, &mut out, &mut stats)?;
        written_to = now;
        if cfg.size_cap.is_some_and(|cap| stats.bytes >= cap) {
            capped = true;
            break;
        }
        let mut s = if next_arrival == Some(now) && next_event.is_none_or(|e| now <= e) {
            let n = arrived as u64;
            arrived += 1;
            stats.connections += 1;
            Session::new(cfg.seed, n, now, duration, &mut next_port)
        } else {
            let Reverse((_, n)) = queue.pop().expect("peeked");
            open.remove(&n).expect("queued sessions are open")
        };
        s.step(&mut sink, now, &noise);
        match s.due() {
            Some(t) => {
                queue.push(Reverse((t.max(now), s.n)));
                open.insert(s.n, s);
            }
            None => truth.push((s.n, s.truth)),
        }
    }
    if !capped {
        sink.flush(duration, &mut out, &mut stats)?;
        written_to = duration;
    }
    for (n, mut s) in open {
        if s.dead && s.kind != Kind::Spice {
            // Still retransmitting into the dead path at the end.
            s.set_truth(written_to, written_to);
        } else if s.phase == Phase::Drain
            && s.truth
                .at
                .is_some_and(|w| w[1] * SEC as f64 <= written_to as f64)
        {
            // Its ending (spice-server's close over a dead path) is written
            // whole before the cap; only the retransmissions went on.
        } else if capped || s.phase != Phase::Drain {
            // Ended by the capture's end (or the size cap) before its own.
            s.truth = TruthSession {
                outcome: "open".into(),
                cause: None,
                origin: None,
                at: None,
                channel: None,
                closed_by: None,
                note: Some(if capped {
                    "running when --size stopped the capture".into()
                } else {
                    "still running when the capture ends".into()
                }),
                attempts: Vec::new(),
                ..s.truth
            };
        }
        if s.phase != Phase::Start {
            truth.push((n, s.truth));
        }
    }
    truth.sort_by_key(|(n, _)| *n);
    out.into_inner().flush()?;
    let truth = Truth {
        capture: cfg.capture_name.clone(),
        peers: vec![
            "generated: noVNC through websockify (tcp/ws/rfb, 6080), VNC viewers (tcp/rfb, 5900), remote-viewer to spice-server (main, display, inputs, cursor; 5930)".into(),
        ],
        script: Some(cfg.script.clone()),
        fault: "server-mix".into(),
        recorded: None,
        capture_start: EPOCH as f64 / SEC as f64,
        actions: Vec::new(),
        sessions: truth.into_iter().map(|(_, t)| t).collect(),
    };
    Ok((stats, truth))
}
