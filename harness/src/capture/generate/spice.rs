//! SPICE channels as QEMU's server and spice-gtk write them: the link
//! stage with mini-header caps, main's INIT and net-test PINGs (the last
//! one 256 000 bytes), ping pairs, display drawing under a SET_ACK window
//! of 20 with the client's ACK every 20 messages, inputs with the server's
//! motion ACK every 4 motions. Every integer little-endian.

use super::rfb::Write;
use rand::RngExt;
use rand_xorshift::XorShiftRng;

pub const MAIN: u8 = 1;
pub const DISPLAY: u8 = 2;
pub const INPUTS: u8 = 3;
pub const CURSOR: u8 = 4;

pub const PING: u16 = 4;
pub const PONG: u16 = 3;
const SET_ACK: u16 = 3;
const ACK_SYNC: u16 = 1;
pub const ACK: u16 = 2;
pub const ACK_WINDOW: u32 = 20;

pub struct SpiceChannel {
    channel: u8,
    session_id: u32,
    ping_id: u32,
    /// Messages the client has received since its last ACK.
    unacked: u32,
    motions: u32,
    clock_ns: u64,
    noise: Vec<u8>,
}

/// One data-stage message with the mini header (u16 type, u32 size).
pub fn message(kind: u16, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
}

impl SpiceChannel {
    pub fn new(rng: &mut XorShiftRng, channel: u8, session_id: u32) -> SpiceChannel {
        let mut noise = vec![0u8; 64 << 10];
        rng.fill(&mut noise[..]);
        SpiceChannel {
            channel,
            session_id,
            ping_id: rng.random(),
            unacked: 0,
            motions: 0,
            clock_ns: rng.random_range(1_000_000_000..1_000_000_000_000),
            noise,
        }
    }

    /// A channel for its link stage only ([`SpiceChannel::link`]), without
    /// the drawing noise [`SpiceChannel::round`] needs: what a generator
    /// holding thousands of channels at once can afford.
    pub fn for_link(rng: &mut XorShiftRng, channel: u8, session_id: u32) -> SpiceChannel {
        SpiceChannel {
            channel,
            session_id,
            ping_id: 0,
            unacked: 0,
            motions: 0,
            clock_ns: rng.random_range(1_000_000_000..1_000_000_000_000),
            noise: Vec::new(),
        }
    }

    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// Link stage, then what each channel says first.
    pub fn link(&mut self, rng: &mut XorShiftRng, out: &mut Vec<Write>) {
        let channel_caps: u32 = match self.channel {
            MAIN => 0b1111,
            DISPLAY => 0b1_0111_0011,
            _ => 1,
        };
        let mut mess = Vec::with_capacity(16 + 26);
        mess.extend_from_slice(b"REDQ");
        for v in [2u32, 2, 18 + 8] {
            mess.extend_from_slice(&v.to_le_bytes());
        }
        let connection_id = if self.channel == MAIN {
            0
        } else {
            self.session_id
        };
        mess.extend_from_slice(&connection_id.to_le_bytes());
        mess.extend_from_slice(&[self.channel, 0]);
        for v in [1u32, 1, 18, 0x09, channel_caps] {
            mess.extend_from_slice(&v.to_le_bytes());
        }
        out.push(Write::Client(mess));

        let mut reply = Vec::with_capacity(16 + 186);
        reply.extend_from_slice(b"REDQ");
        for v in [2u32, 2, 178 + 8, 0] {
            reply.extend_from_slice(&v.to_le_bytes());
        }
        // DER SubjectPublicKeyInfo of a 1024-bit RSA key: fixed prefix,
        // random modulus, e = 65537.
        let mut key = vec![
            0x30, 0x81, 0x9f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
            0x01, 0x01, 0x05, 0x00, 0x03, 0x81, 0x8d, 0x00, 0x30, 0x81, 0x89, 0x02, 0x81, 0x81,
            0x00,
        ];
        key.extend((0..128).map(|_| rng.random::<u8>()));
        key.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        debug_assert_eq!(key.len(), 162);
        reply.extend_from_slice(&key);
        for v in [1u32, 1, 178, 0x0b, channel_caps] {
            reply.extend_from_slice(&v.to_le_bytes());
        }
        out.push(Write::Server(reply));
        out.push(Write::Client(1u32.to_le_bytes().to_vec()));
        out.push(Write::Client(
            (0..128).map(|_| rng.random::<u8>()).collect(),
        ));
        out.push(Write::Server(0u32.to_le_bytes().to_vec()));

        match self.channel {
            MAIN => {
                let mut s = Vec::new();
                let mut init = Vec::with_capacity(32);
                for v in [self.session_id, 1, 3, 2, 0, 0, rng.random(), 0] {
                    init.extend_from_slice(&v.to_le_bytes());
                }
                message(103, &init, &mut s);
                out.push(Write::Server(s));
                out.push(Write::Client({
                    let mut c = Vec::new();
                    message(104, &[], &mut c);
                    c
                }));
                // The net test: ids 1, 2, 3 with 0, 0 and 250 KiB of zeros,
                // timestamps in microseconds.
                let now_us = self.clock_ns / 1000;
                let zeros = vec![0u8; 250 * 1024];
                for (id, data) in [(1u32, 0usize), (2, 0), (3, zeros.len())] {
                    let mut body = Vec::with_capacity(12 + data);
                    body.extend_from_slice(&id.to_le_bytes());
                    body.extend_from_slice(&now_us.to_le_bytes());
                    body.extend_from_slice(&zeros[..data]);
                    let mut s = Vec::new();
                    message(PING, &body, &mut s);
                    out.push(Write::Server(s));
                    let mut c = Vec::new();
                    message(PONG, &body[..12], &mut c);
                    out.push(Write::Client(c));
                }
                let mut s = Vec::new();
                message(104, &[2, 0, 0, 0, DISPLAY, 0, INPUTS, 0], &mut s);
                out.push(Write::Server(s));
            }
            DISPLAY => {
                let mut s = Vec::new();
                let mut body = Vec::new();
                body.extend_from_slice(&1u32.to_le_bytes());
                body.extend_from_slice(&ACK_WINDOW.to_le_bytes());
                message(SET_ACK, &body, &mut s);
                out.push(Write::Server(s));
                self.unacked = 0;
                let mut c = Vec::new();
                message(ACK_SYNC, &1u32.to_le_bytes(), &mut c);
                message(101, &[1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x40], &mut c);
                out.push(Write::Client(c));
                let mut s = Vec::new();
                let mut surface = Vec::new();
                for v in [0u32, 1024, 768, 32, 1] {
                    surface.extend_from_slice(&v.to_le_bytes());
                }
                message(314, &surface, &mut s);
                message(102, &[], &mut s);
                out.push(Write::Server(s));
                self.server_sent(2, out);
            }
            CURSOR => {
                // CURSOR_INIT: position, trail length and frequency,
                // visible, then a cursor with the NONE flag (no shape).
                let mut s = Vec::new();
                message(101, &[0, 2, 0, 1, 0, 0, 0, 0, 1, 1, 0], &mut s);
                out.push(Write::Server(s));
            }
            _ => {
                let mut s = Vec::new();
                message(101, &[0, 0], &mut s);
                out.push(Write::Server(s));
            }
        }
    }

    /// Counts messages the client received on an ACK-windowed channel and
    /// writes its ACK each time the window is used up.
    fn server_sent(&mut self, n: u32, out: &mut Vec<Write>) {
        if self.channel != DISPLAY {
            return;
        }
        for _ in 0..n {
            self.unacked += 1;
            if self.unacked == ACK_WINDOW {
                self.unacked = 0;
                let mut c = Vec::new();
                message(ACK, &[], &mut c);
                out.push(Write::Client(c));
            }
        }
    }

    pub fn round(&mut self, rng: &mut XorShiftRng, out: &mut Vec<Write>) {
        self.clock_ns += rng.random_range(1_000_000..500_000_000);
        if rng.random_bool(0.1) {
            // A ping pair with one id; the client answers each at once.
            self.ping_id = self.ping_id.wrapping_add(1);
            let mut body = Vec::with_capacity(12);
            body.extend_from_slice(&self.ping_id.to_le_bytes());
            body.extend_from_slice(&self.clock_ns.to_le_bytes());
            for _ in 0..2 {
                let mut s = Vec::new();
                message(PING, &body, &mut s);
                out.push(Write::Server(s));
                self.server_sent(1, out);
                let mut c = Vec::new();
                message(PONG, &body, &mut c);
                out.push(Write::Client(c));
            }
        }
        match self.channel {
            MAIN => {
                let mut s = Vec::new();
                message(106, &(self.clock_ns as u32).to_le_bytes(), &mut s);
                out.push(Write::Server(s));
            }
            DISPLAY => {
                let n = rng.random_range(1..12u32);
                let mut s = Vec::new();
                for _ in 0..n {
                    let (kind, len) = match rng.random_range(0..10u8) {
                        0..=4 => (304u16, rng.random_range(200..160_000usize)),
                        5..=6 => (302, rng.random_range(40..90)),
                        7 => (104, rng.random_range(30..60)),
                        _ => (123, rng.random_range(1_000..64_000)),
                    };
                    let start = rng.random_range(0..self.noise.len() - 1);
                    let mut body = Vec::with_capacity(len);
                    while body.len() < len {
                        let take = (len - body.len()).min(self.noise.len() - start);
                        body.extend_from_slice(&self.noise[start..start + take]);
                    }
                    message(kind, &body, &mut s);
                }
                out.push(Write::Server(s));
                self.server_sent(n, out);
            }
            _ => {
                let mut c = Vec::new();
                let n = rng.random_range(1..8u32);
                for _ in 0..n {
                    let mut body = Vec::with_capacity(11);
                    body.extend_from_slice(&rng.random_range(0..1024u32).to_le_bytes());
                    body.extend_from_slice(&rng.random_range(0..768u32).to_le_bytes());
                    body.extend_from_slice(&[0, 0, 0]);
                    message(112, &body, &mut c);
                }
                out.push(Write::Client(c));
                for _ in 0..n {
                    self.motions += 1;
                    if self.motions.is_multiple_of(4) {
                        let mut s = Vec::new();
                        message(111, &[], &mut s);
                        out.push(Write::Server(s));
                    }
                }
            }
        }
    }
}
