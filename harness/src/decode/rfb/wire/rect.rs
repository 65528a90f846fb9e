//! What FramebufferUpdate's rectangles carry on the wire (rfbproto
//! "FramebufferUpdate" and "Encodings"), as nom streaming parsers: the
//! rectangle header, each encoding's fixed prefix, Hextile tile headers,
//! TRLE subencodings and runs, Tight's control byte and compact lengths.
//! Pixels are never parsed: a parser says how many payload bytes follow,
//! for the framer to skip. Values the spec leaves undefined are returned
//! as they are, so that the framer, not the parser, names the rule broken.

use nom::IResult;
use nom::bytes::streaming::take;
use nom::number::streaming::{be_i32, be_u8, be_u16, be_u32};

/// A rectangle header: position, size, encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RectHeader {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
    pub encoding: i32,
}

impl RectHeader {
    pub const LEN: usize = 12;
}

pub fn rect_header(i: &[u8]) -> IResult<&[u8], RectHeader> {
    let (i, x) = be_u16(i)?;
    let (i, y) = be_u16(i)?;
    let (i, w) = be_u16(i)?;
    let (i, h) = be_u16(i)?;
    let (i, encoding) = be_i32(i)?;
    Ok((
        i,
        RectHeader {
            x,
            y,
            w,
            h,
            encoding,
        },
    ))
}

/// RRE and CoRRE: the subrectangle count, then the background pixel of
/// `bpp` bytes (skipped).
pub fn rre_head(bpp: u64) -> impl Fn(&[u8]) -> IResult<&[u8], u32> {
    move |i| {
        let (i, subrects) = be_u32(i)?;
        let (i, _background) = take(bpp)(i)?;
        Ok((i, subrects))
    }
}

/// zlib, ZRLE and ZYWRLE: the length of the compressed data that follows.
pub fn data_length(i: &[u8]) -> IResult<&[u8], u32> {
    be_u32(i)
}

/// H.264: the data length, then flags (reset context, reset all).
pub fn h264_head(i: &[u8]) -> IResult<&[u8], (u32, u32)> {
    let (i, len) = be_u32(i)?;
    let (i, flags) = be_u32(i)?;
    Ok((i, (len, flags)))
}

/// ExtendedDesktopSize: the screen count and padding (16-byte screens
/// follow).
pub fn extended_desktop_size_head(i: &[u8]) -> IResult<&[u8], u8> {
    let (i, screens) = be_u8(i)?;
    let (i, _pad) = take(3usize)(i)?;
    Ok((i, screens))
}

/// Cursor With Alpha: the encoding its RGBA image is sent in.
pub fn cursor_with_alpha_head(i: &[u8]) -> IResult<&[u8], i32> {
    be_i32(i)
}

/// VMware cursor: the cursor type (0 classic, 1 alpha) and a pad byte.
pub fn vmware_cursor_head(i: &[u8]) -> IResult<&[u8], u8> {
    let (i, kind) = be_u8(i)?;
    let (i, _pad) = be_u8(i)?;
    Ok((i, kind))
}

/// One Hextile tile's header: the subencoding mask and whatever of
/// background, foreground and subrectangle count it announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HextileTile {
    pub mask: u8,
    /// Pixel bytes after the header: the raw tile, or the subrectangles.
    pub payload: u64,
}

impl HextileTile {
    pub const RAW: u8 = 1;
    pub const BACKGROUND: u8 = 2;
    pub const FOREGROUND: u8 = 4;
    pub const ANY_SUBRECTS: u8 = 8;
    pub const SUBRECTS_COLOURED: u8 = 16;
}

/// A tile of `tw`×`th` pixels of `bpp` bytes each.
pub fn hextile_tile(bpp: u64, tw: u64, th: u64) -> impl Fn(&[u8]) -> IResult<&[u8], HextileTile> {
    move |i| {
        let (i, mask) = be_u8(i)?;
        if mask & HextileTile::RAW != 0 {
            let payload = tw * th * bpp;
            return Ok((i, HextileTile { mask, payload }));
        }
        let colours = [HextileTile::BACKGROUND, HextileTile::FOREGROUND]
            .iter()
            .filter(|&&bit| mask & bit != 0)
            .count() as u64;
        let (i, _colours) = take(colours * bpp)(i)?;
        let (i, subrects) = if mask & HextileTile::ANY_SUBRECTS != 0 {
            be_u8(i)?
        } else {
            (i, 0)
        };
        // Each subrectangle: its pixel when coloured, then x,y and w,h nibbles.
        let each = if mask & HextileTile::SUBRECTS_COLOURED != 0 {
            bpp + 2
        } else {
            2
        };
        let payload = u64::from(subrects) * each;
        Ok((i, HextileTile { mask, payload }))
    }
}

/// A TRLE/ZRLE run length: bytes summed while they are 255, plus 1.
pub fn run_length(mut i: &[u8]) -> IResult<&[u8], u64> {
    let mut sum = 0u64;
    loop {
        let (rest, byte) = be_u8(i)?;
        i = rest;
        sum += u64::from(byte);
        if byte != 255 {
            return Ok((i, sum + 1));
        }
    }
}

/// A TRLE tile's subencoding byte.
pub fn trle_subencoding(i: &[u8]) -> IResult<&[u8], u8> {
    be_u8(i)
}

/// A plain RLE run: one CPIXEL of `cpixel` bytes (skipped), then its length.
pub fn trle_plain_run(cpixel: u64) -> impl Fn(&[u8]) -> IResult<&[u8], u64> {
    move |i| {
        let (i, _pixel) = take(cpixel)(i)?;
        run_length(i)
    }
}

/// A palette RLE run: a palette index, with a run length after it when
/// its top bit is set, else a single pixel.
pub fn trle_palette_run(i: &[u8]) -> IResult<&[u8], (u8, u64)> {
    let (i, byte) = be_u8(i)?;
    let index = byte & 0x7f;
    if byte & 0x80 == 0 {
        return Ok((i, (index, 1)));
    }
    let (i, run) = run_length(i)?;
    Ok((i, (index, run)))
}

/// Tight's compact length: 1 to 3 bytes, 7 bits each, the third 8 bits.
pub fn compact_length(i: &[u8]) -> IResult<&[u8], u64> {
    let (i, b0) = be_u8(i)?;
    let mut len = u64::from(b0 & 0x7f);
    if b0 & 0x80 == 0 {
        return Ok((i, len));
    }
    let (i, b1) = be_u8(i)?;
    len |= u64::from(b1 & 0x7f) << 7;
    if b1 & 0x80 == 0 {
        return Ok((i, len));
    }
    let (i, b2) = be_u8(i)?;
    Ok((i, len | u64::from(b2) << 14))
}

/// A Tight (or TightPNG) rectangle's head, after the rectangle header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TightRect {
    /// FillCompression: one TPIXEL.
    Fill,
    /// JPEG or PNG data of this length.
    Image { len: u64 },
    /// BasicCompression: `data` bytes follow (zlib, or raw when short).
    Basic { filter: u8, data: u64 },
    /// A control byte Tight does not define (PNG outside TightPNG included).
    BadControl(u8),
    /// A filter id Tight does not define.
    BadFilter(u8),
}

/// Data shorter than this is sent as it is, with no length and no zlib.
const TIGHT_MIN_TO_COMPRESS: u64 = 12;

/// The head of a `w`×`h` Tight rectangle of `tpixel`-byte pixels; `png`
/// when the encoding is TightPNG, where control 0xA (PNG) is allowed.
pub fn tight_rect(
    w: u64,
    h: u64,
    tpixel: u64,
    png: bool,
) -> impl Fn(&[u8]) -> IResult<&[u8], TightRect> {
    move |i| {
        let (i, control) = be_u8(i)?;
        match control >> 4 {
            8 => Ok((i, TightRect::Fill)),
            9 => image(i),
            10 if png => image(i),
            0..=7 => {
                let (i, filter) = if control & 0x40 != 0 {
                    be_u8(i)?
                } else {
                    (i, 0)
                };
                let (i, size) = match filter {
                    0 | 2 => (i, w * h * tpixel),
                    1 => {
                        let (i, colours) = be_u8(i)?;
                        let colours = u64::from(colours) + 1;
                        let (i, _palette) = take(colours * tpixel)(i)?;
                        let bits_per_pixel = if colours == 2 { 1 } else { 8 };
                        (i, (w * bits_per_pixel).div_ceil(8) * h)
                    }
                    f => return Ok((i, TightRect::BadFilter(f))),
                };
                let (i, data) = if size < TIGHT_MIN_TO_COMPRESS {
                    (i, size)
                } else {
                    compact_length(i)?
                };
                Ok((i, TightRect::Basic { filter, data }))
            }
            _ => Ok((i, TightRect::BadControl(control))),
        }
    }
}

fn image(i: &[u8]) -> IResult<&[u8], TightRect> {
    let (i, len) = compact_length(i)?;
    Ok((i, TightRect::Image { len }))
}
