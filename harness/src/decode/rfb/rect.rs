//! Rectangle framing inside FramebufferUpdate: where each rectangle ends.
//!
//! Pixels are never decoded. Length-prefixed encodings (ZRLE, zlib, Tight
//! compressed data, JPEG) are skipped by their prefix; Hextile and TRLE have
//! no total length, so their tiles are walked one header at a time and the
//! pixel runs between headers are skipped. Only headers are ever buffered.

use super::codes::{enc, encoding_name};
use super::findings::RfbFinding;
use super::pixel::PixelFormat;
use serde_json::{Value, json};

/// A rectangle header (rfbproto "FramebufferUpdate").
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

    pub fn parse(b: &[u8]) -> RectHeader {
        RectHeader {
            x: u16::from_be_bytes([b[0], b[1]]),
            y: u16::from_be_bytes([b[2], b[3]]),
            w: u16::from_be_bytes([b[4], b[5]]),
            h: u16::from_be_bytes([b[6], b[7]]),
            encoding: i32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// 16×16 tiles of a rectangle, left to right, top to bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiles {
    w: u16,
    h: u16,
    next: u32,
}

impl Tiles {
    const SIZE: u32 = 16;

    fn new(w: u16, h: u16) -> Tiles {
        Tiles { w, h, next: 0 }
    }
    fn across(&self) -> u32 {
        (self.w as u32).div_ceil(Self::SIZE)
    }
    fn count(&self) -> u32 {
        self.across() * (self.h as u32).div_ceil(Self::SIZE)
    }
    /// Width and height of the current tile.
    fn dims(&self) -> (u64, u64) {
        let col = self.next % self.across();
        let row = self.next / self.across();
        let tw = (self.w as u32 - col * Self::SIZE).min(Self::SIZE);
        let th = (self.h as u32 - row * Self::SIZE).min(Self::SIZE);
        (tw as u64, th as u64)
    }
    /// Moves to the next tile; true when that was the last.
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next >= self.count()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrleRun {
    /// Plain RLE: CPIXEL then a run length, until the tile is full.
    Plain { left: u64 },
    /// Palette RLE: an index byte, with a run length when its top bit is set.
    Palette { left: u64, size: u16 },
}

/// Where the framer stands inside the current rectangle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RectState {
    #[default]
    Header,
    Hextile(Tiles),
    Trle {
        tiles: Tiles,
        palette: u16,
        run: Option<TrleRun>,
    },
    Tight {
        w: u16,
        h: u16,
        /// TightPNG, where control 0xA (PNG) is allowed.
        png: bool,
    },
}

/// What one framing step found.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// This many bytes from the current position are needed to go on.
    Need(usize),
    /// `used` bytes were read, then `skip` payload bytes follow. `done`: the
    /// rectangle ends after them. `header` is set on the step that read one.
    Step {
        used: usize,
        skip: u64,
        done: bool,
        header: Option<RectHeader>,
        note: Option<(&'static str, Value)>,
    },
    /// The rectangle cannot be framed: rule code and explanation.
    Fail { kind: RfbFinding, message: String },
}

fn step(used: usize, skip: u64, done: bool) -> Progress {
    Progress::Step {
        used,
        skip,
        done,
        header: None,
        note: None,
    }
}

fn fail(kind: RfbFinding, message: String) -> Progress {
    Progress::Fail { kind, message }
}

/// Tight's compact length: 1 to 3 bytes, 7 bits each, the third 8 bits.
/// `Err(n)` asks for `n` bytes.
pub fn compact_len(b: &[u8]) -> Result<(u64, usize), usize> {
    let byte = |i: usize| b.get(i).copied().map(u64::from).ok_or(i + 1);
    let b0 = byte(0)?;
    if b0 & 0x80 == 0 {
        return Ok((b0, 1));
    }
    let b1 = byte(1)?;
    if b1 & 0x80 == 0 {
        return Ok(((b0 & 0x7f) | (b1 << 7), 2));
    }
    let b2 = byte(2)?;
    Ok(((b0 & 0x7f) | ((b1 & 0x7f) << 7) | (b2 << 14), 3))
}

/// A TRLE/ZRLE-style run length: bytes summed while they are 255, plus 1.
fn run_len(b: &[u8]) -> Result<(u64, usize), usize> {
    let mut sum = 0u64;
    for (i, &byte) in b.iter().enumerate() {
        sum += byte as u64;
        if byte != 255 {
            return Ok((sum + 1, i + 1));
        }
    }
    Err(b.len() + 1)
}

fn packed_len(palette: u16, tw: u64, th: u64) -> u64 {
    let bits = match palette {
        0..=2 => 1,
        3..=4 => 2,
        _ => 4,
    };
    (tw * bits).div_ceil(8) * th
}

fn pixel(
    pf: Option<PixelFormat>,
    size: fn(&PixelFormat) -> Option<u64>,
    what: i32,
) -> Result<u64, Progress> {
    pf.as_ref().and_then(size).ok_or_else(|| {
        fail(
            RfbFinding::UnframeableEncoding,
            format!(
                "{} rectangle with no usable pixel format (bits-per-pixel must be 8, 16 or 32)",
                encoding_name(what)
            ),
        )
    })
}

macro_rules! need {
    ($b:expr, $n:expr) => {
        if $b.len() < $n {
            return Progress::Need($n);
        }
    };
}

macro_rules! try_px {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(p) => return p,
        }
    };
}

/// Frames the rectangles of one update, one step at a time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Framer {
    state: RectState,
    /// Cursor With Alpha carries its image in another encoding at 32-bit
    /// RGBA, whatever the negotiated pixel format.
    alpha_image: bool,
}

/// Cursor With Alpha's image format: four bytes a pixel, alpha included,
/// so neither CPIXEL nor TPIXEL shrinks to three bytes.
const RGBA: PixelFormat = PixelFormat {
    bits_per_pixel: 32,
    depth: 32,
    big_endian: false,
    true_colour: true,
    red_max: 255,
    green_max: 255,
    blue_max: 255,
    red_shift: 0,
    green_shift: 8,
    blue_shift: 16,
};

impl Framer {
    /// One framing step over `b` (bytes from the current position).
    pub fn frame(&mut self, pf: Option<PixelFormat>, b: &[u8]) -> Progress {
        let pf = if self.alpha_image { Some(RGBA) } else { pf };
        let mut progress = frame(&mut self.state, pf, b);
        if let Progress::Step {
            used,
            skip,
            done,
            header: Some(h),
            ..
        } = &mut progress
            && h.encoding == enc::CURSOR_WITH_ALPHA
        {
            // The header step read the inner encoding; frame the image in it.
            let inner = RectHeader {
                encoding: i32::from_be_bytes([b[12], b[13], b[14], b[15]]),
                ..*h
            };
            let mut head = [0u8; RectHeader::LEN];
            head[..8].copy_from_slice(&b[..8]);
            head[8..].copy_from_slice(&inner.encoding.to_be_bytes());
            let mut rest = head.to_vec();
            rest.extend_from_slice(&b[16..]);
            match frame(&mut self.state, Some(RGBA), &rest) {
                Progress::Need(n) => return Progress::Need(n + 4),
                Progress::Step {
                    used: u,
                    skip: k,
                    done: d,
                    ..
                } => {
                    *used = u + 4;
                    *skip = k;
                    *done = d;
                    self.alpha_image = !d;
                }
                fail @ Progress::Fail { .. } => return fail,
            }
        } else if let Progress::Step { done: true, .. } = progress {
            self.alpha_image = false;
        }
        progress
    }
}

fn frame(state: &mut RectState, pf: Option<PixelFormat>, b: &[u8]) -> Progress {
    match *state {
        RectState::Header => header(state, pf, b),
        RectState::Hextile(mut tiles) => {
            need!(b, 1);
            let bpp = try_px!(pixel(pf, PixelFormat::bytes_per_pixel, enc::HEXTILE));
            // Walk every tile already in `b` in one step (tiles are small);
            // stop at a tile whose header or pixels run past it.
            let mut pos = 0usize;
            loop {
                let rest = &b[pos..];
                let Some(&mask) = rest.first() else {
                    *state = RectState::Hextile(tiles);
                    return step(pos, 0, false);
                };
                let (tw, th) = tiles.dims();
                let (head, payload) = if mask & 1 != 0 {
                    (1, tw * th * bpp)
                } else {
                    let mut len = 1usize;
                    if mask & 2 != 0 {
                        len += bpp as usize;
                    }
                    if mask & 4 != 0 {
                        len += bpp as usize;
                    }
                    let subrects = mask & 8 != 0;
                    if subrects {
                        len += 1;
                    }
                    if rest.len() < len {
                        *state = RectState::Hextile(tiles);
                        return if pos == 0 {
                            Progress::Need(len)
                        } else {
                            step(pos, 0, false)
                        };
                    }
                    let n = if subrects { rest[len - 1] as u64 } else { 0 };
                    let each = if mask & 16 != 0 { bpp + 2 } else { 2 };
                    (len, n * each)
                };
                let done = tiles.advance();
                if done {
                    *state = RectState::Header;
                    return step(pos + head, payload, true);
                }
                if payload > (rest.len() - head) as u64 {
                    *state = RectState::Hextile(tiles);
                    return step(pos + head, payload, false);
                }
                pos += head + payload as usize;
            }
        }
        RectState::Trle {
            mut tiles,
            mut palette,
            run,
        } => {
            let cpixel = try_px!(pixel(pf, PixelFormat::cpixel, enc::TRLE));
            let (tw, th) = tiles.dims();
            let (used, skip, run) = match run {
                Some(TrleRun::Plain { left }) => {
                    need!(b, cpixel as usize + 1);
                    let (n, k) = match run_len(&b[cpixel as usize..]) {
                        Ok(v) => v,
                        Err(more) => return Progress::Need(cpixel as usize + more),
                    };
                    if n > left {
                        return fail(
                            RfbFinding::TrleRunOverflow,
                            format!("TRLE run of {n} pixels where {left} remain in the tile"),
                        );
                    }
                    (
                        cpixel as usize + k,
                        0,
                        (n < left).then_some(TrleRun::Plain { left: left - n }),
                    )
                }
                Some(TrleRun::Palette { left, size }) => {
                    need!(b, 1);
                    let index = b[0] & 0x7f;
                    if index as u16 >= size {
                        return fail(
                            RfbFinding::TrleBadIndex,
                            format!("TRLE palette index {index} with a palette of {size}"),
                        );
                    }
                    let (n, k) = if b[0] & 0x80 != 0 {
                        match run_len(&b[1..]) {
                            Ok((n, k)) => (n, k + 1),
                            Err(more) => return Progress::Need(1 + more),
                        }
                    } else {
                        (1, 1)
                    };
                    if n > left {
                        return fail(
                            RfbFinding::TrleRunOverflow,
                            format!("TRLE run of {n} pixels where {left} remain in the tile"),
                        );
                    }
                    (
                        k,
                        0,
                        (n < left).then_some(TrleRun::Palette {
                            left: left - n,
                            size,
                        }),
                    )
                }
                None => {
                    need!(b, 1);
                    let sub = b[0];
                    let pixels = tw * th;
                    match sub {
                        0 => (1, pixels * cpixel, None),
                        1 => (1, cpixel, None),
                        2..=16 => {
                            palette = sub as u16;
                            (1, sub as u64 * cpixel + packed_len(palette, tw, th), None)
                        }
                        127 | 129 if palette < 2 => {
                            return fail(
                                RfbFinding::TrleNoPalette,
                                format!(
                                    "TRLE subencoding {sub} reuses a palette but no earlier tile sent one"
                                ),
                            );
                        }
                        127 => (1, packed_len(palette, tw, th), None),
                        128 => (1, 0, Some(TrleRun::Plain { left: pixels })),
                        129 => (
                            1,
                            0,
                            Some(TrleRun::Palette {
                                left: pixels,
                                size: palette,
                            }),
                        ),
                        130..=255 => {
                            palette = sub as u16 - 128;
                            (
                                1,
                                palette as u64 * cpixel,
                                Some(TrleRun::Palette {
                                    left: pixels,
                                    size: palette,
                                }),
                            )
                        }
                        17..=126 => {
                            return fail(
                                RfbFinding::TrleBadSubencoding,
                                format!("TRLE tile subencoding {sub} is not defined"),
                            );
                        }
                    }
                }
            };
            let done = run.is_none() && tiles.advance();
            *state = if done {
                RectState::Header
            } else {
                RectState::Trle {
                    tiles,
                    palette,
                    run,
                }
            };
            step(used, skip, done)
        }
        RectState::Tight { w, h, png } => {
            need!(b, 1);
            let tpixel = try_px!(pixel(pf, PixelFormat::tpixel, enc::TIGHT));
            let control = b[0];
            let (used, skip) = match control >> 4 {
                8 => (1, tpixel),
                9 | 10 if control >> 4 == 9 || png => match compact_len(&b[1..]) {
                    Ok((len, k)) => (1 + k, len),
                    Err(more) => return Progress::Need(1 + more),
                },
                0..=7 => {
                    let mut at = 1usize;
                    let mut filter = 0u8;
                    if control & 0x40 != 0 {
                        need!(b, at + 1);
                        filter = b[at];
                        at += 1;
                    }
                    let (w, h) = (w as u64, h as u64);
                    let size = match filter {
                        0 | 2 => w * h * tpixel,
                        1 => {
                            need!(b, at + 1);
                            let colours = b[at] as u64 + 1;
                            at += 1 + (colours * tpixel) as usize;
                            need!(b, at);
                            if colours == 2 {
                                w.div_ceil(8) * h
                            } else {
                                w * h
                            }
                        }
                        f => {
                            return fail(
                                RfbFinding::TightBadFilter,
                                format!("Tight filter id {f} is not defined"),
                            );
                        }
                    };
                    // Short data is sent as is, with no length and no zlib.
                    if size < 12 {
                        (at, size)
                    } else {
                        match compact_len(&b[at..]) {
                            Ok((len, k)) => (at + k, len),
                            Err(more) => return Progress::Need(at + more),
                        }
                    }
                }
                _ => {
                    return fail(
                        RfbFinding::TightBadControl,
                        format!("Tight compression control {control:#04x} is not defined"),
                    );
                }
            };
            *state = RectState::Header;
            step(used, skip, true)
        }
    }
}

fn header(state: &mut RectState, pf: Option<PixelFormat>, b: &[u8]) -> Progress {
    need!(b, RectHeader::LEN);
    let r = RectHeader::parse(b);
    let (w, h) = (r.w as u64, r.h as u64);
    let mut used = RectHeader::LEN;
    let mut note = None;
    let mut done = true;
    let skip = match r.encoding {
        enc::RAW => w * h * try_px!(pixel(pf, PixelFormat::bytes_per_pixel, r.encoding)),
        enc::COPY_RECT => 4,
        enc::RRE | enc::CORRE => {
            let bpp = try_px!(pixel(pf, PixelFormat::bytes_per_pixel, r.encoding));
            used += 4 + bpp as usize;
            need!(b, used);
            let n = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as u64;
            n * (bpp + if r.encoding == enc::RRE { 8 } else { 4 })
        }
        enc::HEXTILE | enc::TRLE if w == 0 || h == 0 => 0,
        enc::HEXTILE => {
            *state = RectState::Hextile(Tiles::new(r.w, r.h));
            done = false;
            0
        }
        enc::TRLE => {
            *state = RectState::Trle {
                tiles: Tiles::new(r.w, r.h),
                palette: 0,
                run: None,
            };
            done = false;
            0
        }
        enc::TIGHT | enc::TIGHT_PNG => {
            *state = RectState::Tight {
                w: r.w,
                h: r.h,
                png: r.encoding == enc::TIGHT_PNG,
            };
            done = false;
            0
        }
        enc::ZLIB | enc::ZRLE | enc::ZYWRLE => {
            used += 4;
            need!(b, used);
            u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as u64
        }
        enc::H264 => {
            used += 8;
            need!(b, used);
            u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as u64
        }
        enc::DESKTOP_SIZE => {
            note = Some(("resize", json!([r.w, r.h])));
            0
        }
        enc::EXTENDED_DESKTOP_SIZE => {
            used += 4;
            need!(b, used);
            note = Some(("resize", json!([r.w, r.h])));
            b[12] as u64 * 16
        }
        enc::DESKTOP_NAME => {
            used += 4;
            need!(b, used);
            let len = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as u64;
            let shown = len.min(super::MAX_TEXT as u64) as usize;
            need!(b, used + shown);
            note = Some((
                "desktop_name",
                Value::String(super::text(&b[used..used + shown])),
            ));
            used += shown;
            len - shown as u64
        }
        enc::CURSOR => {
            let bpp = try_px!(pixel(pf, PixelFormat::bytes_per_pixel, r.encoding));
            w * h * bpp + w.div_ceil(8) * h
        }
        enc::X_CURSOR if w * h == 0 => 0,
        enc::X_CURSOR => 6 + 2 * w.div_ceil(8) * h,
        enc::CURSOR_WITH_ALPHA => {
            // Needs the inner encoding: the Framer takes it from here.
            need!(b, used + 4);
            0
        }
        enc::QEMU_LED_STATE => 1,
        enc::VMWARE_CURSOR => {
            // U8 cursor type, U8 pad; classic cursors carry AND and XOR
            // masks in the pixel format, alpha cursors RGBA.
            used += 2;
            need!(b, used);
            match b[12] {
                0 => {
                    let bpp = try_px!(pixel(pf, PixelFormat::bytes_per_pixel, r.encoding));
                    2 * w * h * bpp
                }
                1 => w * h * 4,
                kind => {
                    return fail(
                        RfbFinding::BadVmwareCursor,
                        format!("VMware cursor type {kind} is neither 0 (classic) nor 1 (alpha)"),
                    );
                }
            }
        }
        enc::VMWARE_CURSOR_STATE | enc::VMWARE_VM_STATE => 2,
        enc::VMWARE_KEY_REPEAT => 10,
        enc::VMWARE_LED_STATE => 4,
        enc::LAST_RECT
        | enc::POINTER_POS
        | enc::QEMU_POINTER_MOTION_CHANGE
        | enc::QEMU_EXTENDED_KEY_EVENT
        | enc::QEMU_AUDIO
        | enc::XVP
        | enc::FENCE
        | enc::CONTINUOUS_UPDATES
        | enc::EXTENDED_MOUSE_BUTTONS
        | enc::VMWARE_CURSOR_POSITION => 0,
        e => {
            return fail(
                RfbFinding::UnframeableEncoding,
                format!(
                    "rectangle encoding {e} ({}) has no framing tether knows; the rest of this direction is only counted",
                    encoding_name(e)
                ),
            );
        }
    };
    Progress::Step {
        used,
        skip,
        done,
        header: Some(r),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_length_takes_one_to_three_bytes() {
        assert_eq!(compact_len(&[0x05]), Ok((5, 1)));
        assert_eq!(compact_len(&[0x90, 0x4e]), Ok((10000, 2)));
        assert_eq!(compact_len(&[0xff, 0xff, 0xff]), Ok((4_194_303, 3)));
        assert_eq!(compact_len(&[0x80]), Err(2));
        assert_eq!(compact_len(&[]), Err(1));
    }

    #[test]
    fn run_lengths_sum_255s() {
        assert_eq!(run_len(&[0]), Ok((1, 1)));
        assert_eq!(run_len(&[255, 0]), Ok((256, 2)));
        assert_eq!(run_len(&[255, 255]), Err(3));
    }

    #[test]
    fn tiles_cover_a_ragged_rectangle() {
        let mut t = Tiles::new(20, 17);
        assert_eq!(t.count(), 4);
        assert_eq!(t.dims(), (16, 16));
        assert!(!t.advance());
        assert_eq!(t.dims(), (4, 16));
        assert!(!t.advance());
        assert_eq!(t.dims(), (16, 1));
        assert!(!t.advance());
        assert_eq!(t.dims(), (4, 1));
        assert!(t.advance());
    }
}
