//! Streaming record reader for classic pcap and pcapng over any `Read`.
//!
//! pcap-parser parses each record or block; this layer owns the buffer, so
//! it knows every record's file offset, can tell a truncated file from a
//! corrupt header, and can scan forward to the next plausible record after
//! corruption instead of giving up on the rest of the file.

use crate::capture::findings::CaptureFinding;
use crate::timeline::kinds::FindingKind;
use crate::timeline::{Finding, Location, Micros};
use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le};
use std::io::{self, Read};

/// Largest record or block tether will hold. Real snap lengths are at most
/// 256 KiB; anything far beyond is a corrupt length field, never an
/// allocation.
pub const MAX_RECORD_LEN: usize = 16 << 20;
const READ_CHUNK: usize = 1 << 20;
/// How far past a corrupt header tether scans for the next good record.
const MAX_RESYNC_SCAN: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{file}: not a pcap or pcapng file (first bytes {magic})")]
    NotACapture { file: String, magic: String },
    #[error("{file}: file ends inside the pcap file header ({have} of 24 bytes)")]
    TruncatedHeader { file: String, have: usize },
    #[error("{file}: empty file")]
    Empty { file: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
}

/// One captured link-layer frame.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// 1-based, counting every packet record as Wireshark does.
    pub frame: u64,
    pub file_offset: u64,
    pub ts: Micros,
    pub linktype: i32,
    pub data: &'a [u8],
    /// Length on the wire (may exceed `data.len()` when snapped).
    pub orig_len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap { big_endian: bool, nanos: bool },
    PcapNg,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: i32,
    /// Timestamp units per second (if_tsresol).
    units_per_sec: u64,
    /// if_tsoffset, seconds.
    offset_secs: i64,
}

enum State {
    Pcap {
        big_endian: bool,
        nanos: bool,
        linktype: i32,
        snaplen: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Reads records one at a time; `next_packet` lends the packet bytes until
/// the next call. Diagnostics (truncation, corruption, unknown blocks) go
/// to the caller's list with their file offset and packet number.
pub struct CaptureReader<R: Read> {
    src: R,
    name: String,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    state: State,
    frames: u64,
    last_ts: Micros,
    pending_consume: usize,
    format: Format,
    /// TLS key logs from Decryption Secrets Blocks read since the last
    /// [`CaptureReader::take_secrets`].
    secrets: Vec<Vec<u8>>,
}

impl<R: Read> CaptureReader<R> {
    /// The TLS key log text of Decryption Secrets Blocks met so far
    /// (`editcap --inject-secrets tls,...` writes them before the packets).
    pub fn take_secrets(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.secrets)
    }

    /// Reads the file header. `name` is used in diagnostics.
    pub fn new(src: R, name: &str) -> Result<CaptureReader<R>, CaptureError> {
        let mut r = CaptureReader {
            src,
            name: name.to_string(),
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            state: State::PcapNg {
                big_endian: false,
                interfaces: Vec::new(),
            },
            frames: 0,
            last_ts: Micros::ZERO,
            pending_consume: 0,
            format: Format::PcapNg,
            secrets: Vec::new(),
        };
        r.fill(24).map_err(|source| CaptureError::Io {
            file: r.name.clone(),
            source,
        })?;
        let head = &r.buf[r.start..r.end];
        if head.is_empty() {
            return Err(CaptureError::Empty { file: r.name });
        }
        if head.len() >= 4 && head[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            // Section header blocks are handled as blocks; nothing consumed.
            return Ok(r);
        }
        let magic_le = head
            .get(..4)
            .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        let pcap_magic = matches!(
            magic_le,
            Some(0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1)
        );
        if pcap_magic && head.len() < 24 {
            return Err(CaptureError::TruncatedHeader {
                file: r.name,
                have: head.len(),
            });
        }
        match parse_pcap_header(head) {
            Ok((_, h)) => {
                let big_endian = h.is_bigendian();
                let nanos = h.is_nanosecond_precision();
                r.state = State::Pcap {
                    big_endian,
                    nanos,
                    linktype: h.network.0,
                    snaplen: h.snaplen,
                };
                r.format = Format::Pcap { big_endian, nanos };
                r.start += 24;
                r.offset = 24;
                Ok(r)
            }
            Err(_) => {
                let magic = head
                    .iter()
                    .take(4)
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                Err(CaptureError::NotACapture {
                    file: r.name,
                    magic,
                })
            }
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Packets read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn location(&self, file_offset: u64) -> Location {
        Location {
            file: Some(self.name.clone()),
            frame: Some(self.frames + 1),
            file_offset: Some(file_offset),
            ..Location::default()
        }
    }

    /// Makes at least `want` bytes available unless the file ends first.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        while self.end - self.start < want && !self.eof {
            if self.start > 0
                && (self.buf.len() - self.end < READ_CHUNK / 4 || self.start == self.end)
            {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let needed = self.start + want;
            if self.buf.len() < needed.max(self.end + READ_CHUNK / 4) {
                let new_len = (needed.max(self.end + READ_CHUNK)).next_power_of_two();
                self.buf.resize(new_len, 0);
            }
            let n = loop {
                match self.src.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// The next packet, or `None` at the end of the file. Records that
    /// cannot be read are reported in `diags` and skipped.
    pub fn next_packet(&mut self, diags: &mut Vec<Finding>) -> Option<RawPacket<'_>> {
        if self.pending_consume > 0 {
            let n = self.pending_consume;
            self.pending_consume = 0;
            self.consume(n);
        }
        loop {
            match self.step(diags) {
                Step::Packet {
                    len,
                    data_at,
                    data_len,
                    ts,
                    linktype,
                    orig_len,
                } => {
                    self.frames += 1;
                    self.last_ts = ts;
                    let file_offset = self.offset;
                    self.pending_consume = len;
                    let data = &self.buf[self.start + data_at..self.start + data_at + data_len];
                    return Some(RawPacket {
                        frame: self.frames,
                        file_offset,
                        ts,
                        linktype,
                        data,
                        orig_len,
                    });
                }
                Step::Skipped => continue,
                Step::End => return None,
            }
        }
    }

    fn io_fail(&mut self, e: io::Error, diags: &mut Vec<Finding>) -> Step {
        diags.push(
            CaptureFinding::ReadError.at(format!("read failed: {e}"), self.location(self.offset)),
        );
        self.eof = true;
        self.start = self.end;
        Step::End
    }

    fn step(&mut self, diags: &mut Vec<Finding>) -> Step {
        if let Err(e) = self.fill(16) {
            return self.io_fail(e, diags);
        }
        let avail = self.end - self.start;
        if avail == 0 {
            return Step::End;
        }
        match self.state {
            State::Pcap {
                big_endian,
                nanos,
                linktype,
                snaplen,
            } => self.step_pcap(big_endian, nanos, linktype, snaplen, diags),
            State::PcapNg { big_endian, .. } => self.step_pcapng(big_endian, diags),
        }
    }

    fn truncated(
        &mut self,
        what: &str,
        have: usize,
        need: usize,
        diags: &mut Vec<Finding>,
    ) -> Step {
        diags.push(CaptureFinding::TruncatedRecord.at(
            format!("file ends inside a {what}: {have} of {need} bytes present"),
            self.location(self.offset),
        ));
        self.start = self.end;
        Step::End
    }

    fn step_pcap(
        &mut self,
        big_endian: bool,
        nanos: bool,
        linktype: i32,
        snaplen: u32,
        diags: &mut Vec<Finding>,
    ) -> Step {
        let avail = self.end - self.start;
        if avail < 16 {
            return self.truncated("record header", avail, 16, diags);
        }
        let hdr = &self.buf[self.start..self.start + 16];
        let rd = |i: usize| {
            let b = [hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (caplen, origlen, frac) = (rd(8) as usize, rd(12), rd(4));
        let frac_limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        let cap_limit = (snaplen as usize).clamp(65_535, MAX_RECORD_LEN);
        if caplen > cap_limit || frac >= frac_limit {
            diags.push(CaptureFinding::CorruptRecordHeader.at(format!(
                    "record header is implausible (captured length {caplen}, fraction {frac}); scanning for the next record"
                ),
                self.location(self.offset),
            ));
            return self.resync(diags);
        }
        if let Err(e) = self.fill(16 + caplen) {
            return self.io_fail(e, diags);
        }
        let avail = self.end - self.start;
        if avail < 16 + caplen {
            return self.truncated("packet record", avail, 16 + caplen, diags);
        }
        let rec = &self.buf[self.start..self.start + 16 + caplen];
        let parsed = if big_endian {
            parse_pcap_frame_be(rec)
        } else {
            parse_pcap_frame(rec)
        };
        match parsed {
            Ok((_, block)) => {
                let frac_us = if nanos {
                    u64::from(block.ts_usec) / 1000
                } else {
                    u64::from(block.ts_usec)
                };
                let ts = Micros(u64::from(block.ts_sec) * 1_000_000 + frac_us);
                Step::Packet {
                    len: 16 + caplen,
                    data_at: 16,
                    data_len: caplen,
                    ts,
                    linktype,
                    orig_len: origlen.max(caplen as u32),
                }
            }
            Err(_) => self.resync(diags),
        }
    }

    /// Scans forward for something that looks like the next record: a sane
    /// header whose successor is also sane (or the end of the file).
    fn resync(&mut self, diags: &mut Vec<Finding>) -> Step {
        let from = self.offset;
        let mut scanned = 1usize;
        self.consume(1);
        loop {
            if scanned > MAX_RESYNC_SCAN {
                break;
            }
            if let Err(e) = self.fill(64 * 1024) {
                return self.io_fail(e, diags);
            }
            let avail = self.end - self.start;
            if avail < 16 {
                break;
            }
            if self.plausible_at(0) {
                diags.push(CaptureFinding::Resynchronised.at(
                    format!(
                        "skipped {} corrupt bytes from file offset {from}",
                        self.offset - from
                    ),
                    self.location(self.offset),
                ));
                return Step::Skipped;
            }
            self.consume(1);
            scanned += 1;
        }
        diags.push(CaptureFinding::Unrecoverable.at(
            format!("no readable record after file offset {from}; rest of file skipped"),
            self.location(from),
        ));
        self.start = self.end;
        Step::End
    }

    fn plausible_at(&self, rel: usize) -> bool {
        let base = self.start + rel;
        let avail = self.end.saturating_sub(base);
        match self.state {
            State::Pcap {
                big_endian,
                nanos,
                snaplen,
                ..
            } => {
                if avail < 16 {
                    return false;
                }
                let rd = |i: usize| {
                    let b = [
                        self.buf[base + i],
                        self.buf[base + i + 1],
                        self.buf[base + i + 2],
                        self.buf[base + i + 3],
                    ];
                    if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                };
                let ts = u64::from(rd(0));
                let frac = rd(4);
                let caplen = rd(8) as usize;
                let orig = rd(12) as usize;
                let frac_limit = if nanos { 1_000_000_000 } else { 1_000_000 };
                let cap_limit = (snaplen as usize).clamp(65_535, MAX_RECORD_LEN);
                let last = self.last_ts.0 / 1_000_000;
                let ts_ok = self.last_ts == Micros::ZERO || ts.abs_diff(last) <= 86_400;
                if frac >= frac_limit
                    || caplen == 0
                    || caplen > cap_limit
                    || orig < caplen
                    || !ts_ok
                {
                    return false;
                }
                let next = rel + 16 + caplen;
                if base + 16 + caplen >= self.end {
                    return self.eof && base + 16 + caplen == self.end;
                }
                // One more sane header after this record makes a false match unlikely.
                if self.end - (self.start + next) < 16 {
                    return true;
                }
                let nb = self.start + next;
                let rd2 = |i: usize| {
                    let b = [
                        self.buf[nb + i],
                        self.buf[nb + i + 1],
                        self.buf[nb + i + 2],
                        self.buf[nb + i + 3],
                    ];
                    if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                };
                rd2(4) < frac_limit && (rd2(8) as usize) <= cap_limit && rd2(12) >= rd2(8)
            }
            State::PcapNg { big_endian, .. } => {
                if avail < 12 {
                    return false;
                }
                let rd = |i: usize| {
                    let b = [
                        self.buf[base + i],
                        self.buf[base + i + 1],
                        self.buf[base + i + 2],
                        self.buf[base + i + 3],
                    ];
                    if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                };
                let kind = rd(0);
                let len = rd(4) as usize;
                let known = matches!(kind, 1..=6 | 0x0A0D_0D0A);
                if !known
                    || len < 12
                    || !len.is_multiple_of(4)
                    || len > MAX_RECORD_LEN
                    || len > avail
                {
                    return false;
                }
                rd(len - 4) as usize == len
            }
        }
    }

    fn step_pcapng(&mut self, big_endian: bool, diags: &mut Vec<Finding>) -> Step {
        let avail = self.end - self.start;
        if avail < 12 {
            return self.truncated("block header", avail, 12, diags);
        }
        let head = &self.buf[self.start..self.start + 12];
        let kind_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        // A section header carries its own byte order in its magic.
        let section_be = if kind_le == 0x0A0D_0D0A {
            match u32::from_le_bytes([head[8], head[9], head[10], head[11]]) {
                0x1A2B_3C4D => false,
                0x4D3C_2B1A => true,
                _ => {
                    diags.push(CaptureFinding::CorruptBlock.at(
                        "section header with an invalid byte-order magic",
                        self.location(self.offset),
                    ));
                    return self.resync(diags);
                }
            }
        } else {
            big_endian
        };
        let rd_len = |be: bool| {
            let b = [head[4], head[5], head[6], head[7]];
            if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let len = rd_len(section_be) as usize;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_RECORD_LEN {
            diags.push(CaptureFinding::CorruptBlock.at(
                format!("block length {len} is invalid; scanning for the next block"),
                self.location(self.offset),
            ));
            return self.resync(diags);
        }
        if let Err(e) = self.fill(len) {
            return self.io_fail(e, diags);
        }
        let avail = self.end - self.start;
        if avail < len {
            return self.truncated("block", avail, len, diags);
        }
        let bytes = &self.buf[self.start..self.start + len];
        let parsed = if section_be {
            parse_block_be(bytes)
        } else {
            parse_block_le(bytes)
        };
        let block = match parsed {
            Ok((_, b)) => b,
            Err(_) => {
                diags.push(CaptureFinding::CorruptBlock.at(
                    format!("block of {len} bytes does not parse; skipped"),
                    self.location(self.offset),
                ));
                self.consume(len);
                return Step::Skipped;
            }
        };
        let start = self.start;
        let data_pos = |d: &[u8]| (d.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
        match block {
            Block::SectionHeader(_) => {
                self.state = State::PcapNg {
                    big_endian: section_be,
                    interfaces: Vec::new(),
                };
                self.consume(len);
                Step::Skipped
            }
            Block::InterfaceDescription(idb) => {
                let units = match units_per_second(idb.if_tsresol) {
                    Some(u) => u,
                    None => {
                        diags.push(CaptureFinding::BadTsresol.at(format!(
                                "interface if_tsresol {:#04x} is out of range; assuming microseconds",
                                idb.if_tsresol
                            ),
                            self.location(self.offset),
                        ));
                        1_000_000
                    }
                };
                let iface = Interface {
                    linktype: idb.linktype.0,
                    units_per_sec: units,
                    offset_secs: idb.if_tsoffset,
                };
                if let State::PcapNg { interfaces, .. } = &mut self.state {
                    interfaces.push(iface);
                }
                self.consume(len);
                Step::Skipped
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = self.interface(epb.if_id as usize) else {
                    diags.push(CaptureFinding::UnknownInterface.at(
                        format!(
                            "packet names interface {} which no interface block described",
                            epb.if_id
                        ),
                        self.location(self.offset),
                    ));
                    self.frames += 1;
                    self.consume(len);
                    return Step::Skipped;
                };
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let us = (u128::from(raw) * 1_000_000 / u128::from(iface.units_per_sec)) as i128
                    + i128::from(iface.offset_secs) * 1_000_000;
                let ts = Micros(us.clamp(0, i128::from(u64::MAX)) as u64);
                let data_at = data_pos(epb.data);
                let data_len = epb.data.len().min(epb.caplen as usize);
                let _ = start;
                Step::Packet {
                    len,
                    data_at,
                    data_len,
                    ts,
                    linktype: iface.linktype,
                    orig_len: epb.origlen,
                }
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = self.interface(0) else {
                    diags.push(CaptureFinding::UnknownInterface.at(
                        "simple packet block before any interface block",
                        self.location(self.offset),
                    ));
                    self.frames += 1;
                    self.consume(len);
                    return Step::Skipped;
                };
                // Simple packet blocks carry no timestamp: keep the last one.
                let data_at = data_pos(spb.data);
                let data_len = spb.data.len().min(spb.origlen as usize);
                Step::Packet {
                    len,
                    data_at,
                    data_len,
                    ts: self.last_ts,
                    linktype: iface.linktype,
                    orig_len: spb.origlen,
                }
            }
            Block::DecryptionSecrets(dsb) => {
                if dsb.secrets_type == pcap_parser::SecretsType::TlsKeyLog {
                    self.secrets.push(dsb.data.to_vec());
                }
                self.consume(len);
                Step::Skipped
            }
            _ => {
                self.consume(len);
                Step::Skipped
            }
        }
    }

    fn interface(&self, id: usize) -> Option<Interface> {
        match &self.state {
            State::PcapNg { interfaces, .. } => interfaces.get(id).copied(),
            State::Pcap { .. } => None,
        }
    }
}

/// Timestamp units per second for an `if_tsresol` byte: 10^n, or 2^n when
/// the top bit is set. (pcap-parser 0.16's `ts_resolution` rejects every
/// power-of-two resolution, so tether decodes the byte itself.)
fn units_per_second(tsresol: u8) -> Option<u64> {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 != 0 {
        (n <= 63).then(|| 1u64 << n)
    } else {
        10u64.checked_pow(n)
    }
}

enum Step {
    Packet {
        len: usize,
        data_at: usize,
        data_len: usize,
        ts: Micros,
        linktype: i32,
        orig_len: u32,
    },
    Skipped,
    End,
}
