//! PIXEL_FORMAT (rfbproto "ServerInit" and "SetPixelFormat") and the pixel
//! sizes encodings derive from it.

use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

impl PixelFormat {
    pub const LEN: usize = 16;

    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.bits_per_pixel;
        b[1] = self.depth;
        b[2] = self.big_endian as u8;
        b[3] = self.true_colour as u8;
        b[4..6].copy_from_slice(&self.red_max.to_be_bytes());
        b[6..8].copy_from_slice(&self.green_max.to_be_bytes());
        b[8..10].copy_from_slice(&self.blue_max.to_be_bytes());
        b[10] = self.red_shift;
        b[11] = self.green_shift;
        b[12] = self.blue_shift;
        b
    }

    /// Bytes per pixel, or `None` when bits-per-pixel is not 8, 16 or 32
    /// (then no pixel-carrying rectangle can be framed).
    pub fn bytes_per_pixel(&self) -> Option<u64> {
        match self.bits_per_pixel {
            8 => Some(1),
            16 => Some(2),
            32 => Some(4),
            _ => None,
        }
    }

    /// CPIXEL of TRLE/ZRLE: 3 bytes when a 32-bit true-colour pixel of
    /// depth ≤ 24 keeps all its colour bits in the low or the high 3 bytes.
    pub fn cpixel(&self) -> Option<u64> {
        let bpp = self.bytes_per_pixel()?;
        if bpp == 4 && self.true_colour && self.depth <= 24 {
            let bits = |max: u16, shift: u8| (max as u64).checked_shl(shift as u32).unwrap_or(0);
            let used = bits(self.red_max, self.red_shift)
                | bits(self.green_max, self.green_shift)
                | bits(self.blue_max, self.blue_shift);
            if used & !0x00ff_ffff == 0 || used & !0xffff_ff00 == 0 {
                return Some(3);
            }
        }
        Some(bpp)
    }

    /// TPIXEL of Tight: 3 bytes for 32-bit true colour of depth 24 with
    /// 8 bits per channel.
    pub fn tpixel(&self) -> Option<u64> {
        let bpp = self.bytes_per_pixel()?;
        if bpp == 4
            && self.true_colour
            && self.depth == 24
            && self.red_max == 255
            && self.green_max == 255
            && self.blue_max == 255
        {
            return Some(3);
        }
        Some(bpp)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "bits_per_pixel": self.bits_per_pixel,
            "depth": self.depth,
            "big_endian": self.big_endian,
            "true_colour": self.true_colour,
            "max": [self.red_max, self.green_max, self.blue_max],
            "shift": [self.red_shift, self.green_shift, self.blue_shift],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(bpp: u8, depth: u8, shifts: [u8; 3]) -> PixelFormat {
        PixelFormat {
            bits_per_pixel: bpp,
            depth,
            big_endian: false,
            true_colour: true,
            red_max: 255,
            green_max: 255,
            blue_max: 255,
            red_shift: shifts[0],
            green_shift: shifts[1],
            blue_shift: shifts[2],
        }
    }

    #[test]
    fn pixel_sizes_follow_the_format() {
        let rgb888 = pf(32, 24, [16, 8, 0]);
        assert_eq!(rgb888.bytes_per_pixel(), Some(4));
        assert_eq!(rgb888.cpixel(), Some(3));
        assert_eq!(rgb888.tpixel(), Some(3));
        // Colours in the high three bytes still fit a 3-byte CPIXEL.
        assert_eq!(pf(32, 24, [24, 16, 8]).cpixel(), Some(3));
        // Spread over all four bytes: no.
        assert_eq!(pf(32, 24, [24, 8, 0]).cpixel(), Some(4));
        assert_eq!(pf(32, 32, [16, 8, 0]).tpixel(), Some(4));
        let mut rgb565 = pf(16, 16, [11, 5, 0]);
        rgb565.red_max = 31;
        rgb565.green_max = 63;
        rgb565.blue_max = 31;
        assert_eq!(rgb565.cpixel(), Some(2));
        assert_eq!(pf(24, 24, [16, 8, 0]).bytes_per_pixel(), None);
        assert_eq!(
            super::super::wire::pixel_format(&rgb888.encode()).map(|(_, pf)| pf),
            Ok(rgb888)
        );
    }
}
