//! RFC 6455 §5.2 frame headers: parsing from at most 14 bytes, encoding
//! (for tests, benches and generated captures), and unmasking.

use nom::IResult;
use nom::bytes::streaming::take;
use nom::combinator::map;
use nom::number::streaming::{be_u8, be_u16, be_u64};

/// Longest possible frame header: 2 + 8 (64-bit length) + 4 (mask key).
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode (RFC 6455 §5.2, §11.8), reserved values kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    /// 0x3..=0x7.
    ReservedData(u8),
    Close,
    Ping,
    Pong,
    /// 0xB..=0xF.
    ReservedControl(u8),
}

impl From<u8> for OpCode {
    /// The low four bits of the first header byte.
    fn from(op: u8) -> OpCode {
        match op & 0x0F {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            n if n < 0x8 => OpCode::ReservedData(n),
            n => OpCode::ReservedControl(n),
        }
    }
}

impl From<OpCode> for u8 {
    fn from(op: OpCode) -> u8 {
        match op {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
            OpCode::ReservedData(n) | OpCode::ReservedControl(n) => n,
        }
    }
}

impl OpCode {
    /// Control frames have the high opcode bit (6455 §5.5).
    pub fn is_control(self) -> bool {
        matches!(
            self,
            OpCode::Close | OpCode::Ping | OpCode::Pong | OpCode::ReservedControl(_)
        )
    }

    /// Frame names: tshark's opcode names in lower case.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
            OpCode::ReservedData(_) | OpCode::ReservedControl(_) => "reserved_opcode",
        }
    }
}

/// Which of the three length encodings a header used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthForm {
    /// 0..=125 in the first length byte.
    Short,
    /// 126, then 16 bits.
    Ext16,
    /// 127, then 64 bits.
    Ext64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit value, RSV1 the most significant (0b100).
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    pub form: LengthForm,
    pub header_len: usize,
}

impl FrameHeader {
    pub fn is_control(&self) -> bool {
        self.opcode.is_control()
    }
    /// The length was not written in the shortest form (6455 §5.2).
    pub fn non_minimal_length(&self) -> bool {
        match self.form {
            LengthForm::Short => false,
            LengthForm::Ext16 => self.payload_len < 126,
            LengthForm::Ext64 => self.payload_len <= 0xFFFF,
        }
    }
    /// The 64-bit length had its most significant bit set (6455 §5.2).
    pub fn length_top_bit(&self) -> bool {
        self.payload_len >> 63 != 0
    }
}

/// How many header bytes the frame starting with these two bytes has.
pub fn header_len(first_two: [u8; 2]) -> usize {
    let ext = match first_two[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// A close frame's status code (RFC 6455 §5.5.1); the reason follows.
pub fn close_code(i: &[u8]) -> IResult<&[u8], u16> {
    be_u16(i)
}

/// The frame header at the start of `i` (nom, streaming): `Incomplete`
/// until all of it is there; every bit pattern is a header, so there is
/// no other error.
pub fn header(i: &[u8]) -> IResult<&[u8], FrameHeader> {
    let start = i.len();
    let (i, b0) = be_u8(i)?;
    let (i, b1) = be_u8(i)?;
    let (i, (payload_len, form)) = match b1 & 0x7F {
        126 => map(be_u16, |n| (u64::from(n), LengthForm::Ext16))(i)?,
        127 => map(be_u64, |n| (n, LengthForm::Ext64))(i)?,
        n => (i, (u64::from(n), LengthForm::Short)),
    };
    let (i, mask) = if b1 & 0x80 != 0 {
        map(take(4usize), |k: &[u8]| Some([k[0], k[1], k[2], k[3]]))(i)?
    } else {
        (i, None)
    };
    let h = FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: OpCode::from(b0),
        mask,
        payload_len,
        form,
        header_len: start - i.len(),
    };
    Ok((i, h))
}

/// Parses a complete header. `None` if `b` is shorter than the header.
pub fn parse_header(b: &[u8]) -> Option<FrameHeader> {
    header(b).ok().map(|(_, h)| h)
}

/// A frame to encode. `form` may force a longer-than-needed length
/// encoding, to build non-conforming streams on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub form: Option<LengthForm>,
    pub payload: Vec<u8>,
}

impl FrameSpec {
    /// `opcode` an [`OpCode`] or, to build reserved ones on purpose, a raw
    /// value.
    pub fn new(opcode: impl Into<u8>, payload: impl Into<Vec<u8>>) -> FrameSpec {
        FrameSpec {
            fin: true,
            rsv: 0,
            opcode: opcode.into(),
            mask: None,
            form: None,
            payload: payload.into(),
        }
    }
    pub fn masked(mut self, key: [u8; 4]) -> FrameSpec {
        self.mask = Some(key);
        self
    }
    pub fn fin(mut self, fin: bool) -> FrameSpec {
        self.fin = fin;
        self
    }
    pub fn rsv(mut self, rsv: u8) -> FrameSpec {
        self.rsv = rsv & 0x7;
        self
    }
    pub fn form(mut self, form: LengthForm) -> FrameSpec {
        self.form = Some(form);
        self
    }

    /// The frame's bytes; the payload is masked with `mask` if set.
    pub fn encode(&self) -> Vec<u8> {
        let len = self.payload.len() as u64;
        let form = self.form.unwrap_or(if len <= 125 {
            LengthForm::Short
        } else if len <= 0xFFFF {
            LengthForm::Ext16
        } else {
            LengthForm::Ext64
        });
        let mut out = Vec::with_capacity(MAX_HEADER_LEN + self.payload.len());
        out.push((u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | (self.opcode & 0x0F));
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        match form {
            LengthForm::Short => out.push(mask_bit | (len.min(125) as u8)),
            LengthForm::Ext16 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len.min(0xFFFF) as u16).to_be_bytes());
            }
            LengthForm::Ext64 => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        let start = out.len() + self.mask.map_or(0, |_| 4);
        if let Some(k) = self.mask {
            out.extend_from_slice(&k);
        }
        out.extend_from_slice(&self.payload);
        if let Some(k) = self.mask {
            unmask(&mut out[start..], k, 0);
        }
        out
    }
}

/// XORs `buf` with the masking key in place (6455 §5.3). `phase` is the
/// offset of `buf[0]` within the frame's payload, so a payload split over
/// several chunks unmasks piece by piece. Masking and unmasking are the
/// same operation.
pub fn unmask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    // Rotate the key so byte 0 of `buf` meets key[phase % 4]; as a
    // little-endian word that is a rotation by whole bytes.
    let k32 = u32::from_le_bytes(key).rotate_right(8 * (phase % 4) as u32);
    // Eight bytes at a time: 8 is a multiple of 4, so every word sees the
    // key in the same rotation.
    let word = u64::from(k32) | (u64::from(k32) << 32);
    let (words, tail) = buf.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_le_bytes(*w) ^ word).to_le_bytes();
    }
    let k = k32.to_le_bytes();
    for (i, b) in tail.iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

/// The naive byte-at-a-time unmask, kept as the reference the fast one is
/// tested and benchmarked against.
pub fn unmask_bytewise(buf: &mut [u8], key: [u8; 4], phase: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(phase + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_parse() {
        // 6455 §5.7: unmasked "Hello" and masked "Hello".
        let h = parse_header(&[0x81, 0x05]).unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.header_len),
            (true, OpCode::Text, 5, 2)
        );
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = parse_header(&masked).unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut p = masked[6..].to_vec();
        unmask(&mut p, h.mask.unwrap(), 0);
        assert_eq!(p, b"Hello");
        // 256-byte binary with a 16-bit length, 64 KiB with a 64-bit one.
        let h = parse_header(&[0x82, 0x7E, 0x01, 0x00]).unwrap();
        assert_eq!((h.payload_len, h.form), (256, LengthForm::Ext16));
        let h = parse_header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
        assert_eq!(
            (h.payload_len, h.form, h.header_len),
            (65536, LengthForm::Ext64, 10)
        );
        assert!(parse_header(&[0x82, 0x7F, 0, 0]).is_none());
    }

    #[test]
    fn fast_unmask_matches_bytewise_at_every_phase_and_length() {
        let key = [0xA1, 0x02, 0xF3, 0x44];
        for len in 0..40 {
            for phase in 0..8 {
                let src: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                let mut a = src.clone();
                let mut b = src.clone();
                unmask(&mut a, key, phase);
                unmask_bytewise(&mut b, key, phase);
                assert_eq!(a, b, "len {len} phase {phase}");
            }
        }
    }
}
