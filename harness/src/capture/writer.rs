//! Writing captures: classic pcap (either byte order, µs or ns) and
//! pcapng, plus TCP/IP frame building. Used by the corpus generator, the
//! live proxy's recorder and tests that need precisely constructed input.

use crate::timeline::Micros;
use etherparse::PacketBuilder;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

pub struct PcapWriter<W: Write> {
    out: W,
    big_endian: bool,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(
        mut out: W,
        linktype: u32,
        big_endian: bool,
        nanos: bool,
    ) -> io::Result<PcapWriter<W>> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = Vec::with_capacity(24);
        let put32 = |h: &mut Vec<u8>, v: u32| {
            h.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        put32(&mut h, magic);
        let (maj, min) = (2u16, 4u16);
        for v in [maj, min] {
            h.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            });
        }
        put32(&mut h, 0);
        put32(&mut h, 0);
        put32(&mut h, 262_144);
        put32(&mut h, linktype);
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            big_endian,
            nanos,
        })
    }

    pub fn write_packet(&mut self, ts: Micros, data: &[u8]) -> io::Result<()> {
        self.write_record(ts, data, data.len() as u32)
    }

    /// A record whose frame was `orig_len` on the wire but snapped to `data`.
    pub fn write_record(&mut self, ts: Micros, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = (ts.0 / 1_000_000) as u32;
        let frac = if self.nanos {
            (ts.0 % 1_000_000) as u32 * 1000
        } else {
            (ts.0 % 1_000_000) as u32
        };
        let mut h = [0u8; 16];
        for (i, v) in [secs, frac, data.len() as u32, orig_len]
            .into_iter()
            .enumerate()
        {
            let b = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            h[i * 4..i * 4 + 4].copy_from_slice(&b);
        }
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A minimal little- or big-endian pcapng writer.
pub struct PcapNgWriter<W: Write> {
    out: W,
    big_endian: bool,
    /// Units per second of each interface, for timestamps.
    if_units: Vec<u64>,
}

impl<W: Write> PcapNgWriter<W> {
    /// Starts a section. Call again for a new section.
    pub fn new(out: W, big_endian: bool) -> io::Result<PcapNgWriter<W>> {
        let mut w = PcapNgWriter {
            out,
            big_endian,
            if_units: Vec::new(),
        };
        w.section()?;
        Ok(w)
    }

    fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn block(&mut self, kind: u32, body: &[u8]) -> io::Result<()> {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let mut b = Vec::with_capacity(len as usize);
        b.extend_from_slice(&self.u32b(kind));
        b.extend_from_slice(&self.u32b(len));
        b.extend_from_slice(body);
        b.extend(std::iter::repeat_n(0u8, pad));
        b.extend_from_slice(&self.u32b(len));
        self.out.write_all(&b)
    }

    /// A new section header; interfaces start over.
    pub fn section(&mut self) -> io::Result<()> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(0x1A2B_3C4D));
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&(-1i64).to_le_bytes());
        self.if_units.clear();
        self.block(0x0A0D_0D0A, &body)
    }

    /// Adds an interface; `tsresol` is the raw if_tsresol option byte
    /// (6 = µs, 9 = ns, 0x80|n = 2^-n). Returns its id.
    pub fn interface(&mut self, linktype: u16, tsresol: Option<u8>) -> io::Result<u32> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(linktype));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b(262_144));
        let units = match tsresol {
            None => 1_000_000,
            Some(r) if r & 0x80 != 0 => 1u64 << (r & 0x7f),
            Some(r) => 10u64.pow(u32::from(r)),
        };
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.u16b(9));
            body.extend_from_slice(&self.u16b(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&self.u16b(0));
            body.extend_from_slice(&self.u16b(0));
        }
        self.block(1, &body)?;
        self.if_units.push(units);
        Ok(self.if_units.len() as u32 - 1)
    }

    pub fn enhanced_packet(&mut self, if_id: u32, ts: Micros, data: &[u8]) -> io::Result<()> {
        let units = self
            .if_units
            .get(if_id as usize)
            .copied()
            .unwrap_or(1_000_000);
        let raw = (u128::from(ts.0) * u128::from(units) / 1_000_000) as u64;
        let mut body = Vec::with_capacity(20 + data.len());
        body.extend_from_slice(&self.u32b(if_id));
        body.extend_from_slice(&self.u32b((raw >> 32) as u32));
        body.extend_from_slice(&self.u32b(raw as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    pub fn simple_packet(&mut self, data: &[u8]) -> io::Result<()> {
        let mut body = Vec::with_capacity(4 + data.len());
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// TCP flags for [`tcp_frame`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

impl Flags {
    /// A segment of an established connection: ACK alone.
    pub const ACK: Flags = Flags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
        psh: false,
    };
}

/// An Ethernet II / IPv4-or-IPv6 / TCP frame with valid checksums.
pub fn tcp_frame(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (s, d) => {
            let to6 = |a: IpAddr| match a {
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
                IpAddr::V6(v) => v.octets(),
            };
            eth.ipv6(to6(s), to6(d), 64)
        }
    };
    let mut tcp = ip.tcp(src.port(), dst.port(), seq, 65535);
    if flags.syn {
        tcp = tcp.syn();
    }
    if flags.ack {
        tcp = tcp.ack(ack);
    }
    if flags.fin {
        tcp = tcp.fin();
    }
    if flags.rst {
        tcp = tcp.rst();
    }
    if flags.psh {
        tcp = tcp.psh();
    }
    let mut out = Vec::with_capacity(tcp.size(payload.len()));
    // Writing into a Vec cannot fail.
    let _ = tcp.write(&mut out, payload);
    out
}
