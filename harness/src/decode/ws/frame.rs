//! RFC 6455 §5.2 frame headers: parsing from at most 14 bytes, encoding
//! (for tests, benches and generated captures), and unmasking.

/// Longest possible frame header: 2 + 8 (64-bit length) + 4 (mask key).
pub const MAX_HEADER_LEN: usize = 14;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

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
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    pub form: LengthForm,
    pub header_len: usize,
}

impl FrameHeader {
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
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

/// Parses a complete header. `None` if `b` is shorter than the header.
pub fn parse_header(b: &[u8]) -> Option<FrameHeader> {
    if b.len() < 2 {
        return None;
    }
    let len = header_len([b[0], b[1]]);
    if b.len() < len {
        return None;
    }
    let (payload_len, form, mut at) = match b[1] & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes([b[2], b[3]])),
            LengthForm::Ext16,
            4,
        ),
        127 => {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(w), LengthForm::Ext64, 10)
        }
        n => (u64::from(n), LengthForm::Short, 2),
    };
    let mask = if b[1] & 0x80 != 0 {
        let k = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        Some(k)
    } else {
        None
    };
    Some(FrameHeader {
        fin: b[0] & 0x80 != 0,
        rsv: (b[0] >> 4) & 0x7,
        opcode: b[0] & 0x0F,
        mask,
        payload_len,
        form,
        header_len: at,
    })
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
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> FrameSpec {
        FrameSpec {
            fin: true,
            rsv: 0,
            opcode,
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
            (true, 1, 5, 2)
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
