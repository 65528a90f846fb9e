//! Rectangle framing inside FramebufferUpdate: where each rectangle ends.
//!
//! Pixels are never decoded. Length-prefixed encodings (ZRLE, zlib, Tight
//! compressed data, JPEG) are skipped by their prefix; Hextile and TRLE have
//! no total length, so their tiles are walked one header at a time and the
//! pixel runs between headers are skipped. Only headers are ever buffered.

use super::codes::{enc, encoding_name};
use super::findings::RfbFinding;
use super::pixel::PixelFormat;
use super::wire::rect::{self as wire, TightRect};
use serde_json::{Value, json};

pub use super::wire::rect::RectHeader;

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

/// A wire parser stopped short: the step needs more bytes.
fn more(b: &[u8], e: nom::Err<nom::error::Error<&[u8]>>) -> Progress {
    Progress::Need(super::wire::needed(b.len(), &e))
}

/// A step's outcome before it becomes [`Progress`]: a step read, or an
/// early answer (need more, or fail).
type Framed = Result<Progress, Progress>;

impl Framer {
    /// One framing step over `b` (bytes from the current position).
    pub fn frame(&mut self, pf: Option<PixelFormat>, b: &[u8]) -> Progress {
        let pf = if self.alpha_image { Some(RGBA) } else { pf };
        let progress = match self.state {
            RectState::Header => self.header(pf, b),
            RectState::Hextile(tiles) => hextile(&mut self.state, tiles, pf, b),
            RectState::Trle {
                tiles,
                palette,
                run,
            } => trle(&mut self.state, tiles, palette, run, pf, b),
            RectState::Tight { w, h, png } => tight(&mut self.state, (w, h), png, pf, b),
        }
        .unwrap_or_else(|early| early);
        if let Progress::Step { done: true, .. } = progress {
            self.alpha_image = false;
        }
        progress
    }

    fn header(&mut self, pf: Option<PixelFormat>, b: &[u8]) -> Framed {
        let (rest, r) = wire::rect_header(b).map_err(|e| more(b, e))?;
        if r.encoding != enc::CURSOR_WITH_ALPHA {
            return body(&mut self.state, r, pf, b, rest);
        }
        // The image follows in another encoding, at 32-bit RGBA.
        let (rest, inner) = wire::cursor_with_alpha_head(rest).map_err(|e| more(b, e))?;
        if inner == enc::CURSOR_WITH_ALPHA {
            return Err(fail(
                RfbFinding::UnframeableEncoding,
                "a Cursor With Alpha rectangle says its image is in Cursor With Alpha".into(),
            ));
        }
        let image = RectHeader {
            encoding: inner,
            ..r
        };
        let mut progress = body(&mut self.state, image, Some(RGBA), b, rest)?;
        if let Progress::Step { header, done, .. } = &mut progress {
            // Counted as the cursor it is, not as its image's encoding.
            *header = Some(r);
            self.alpha_image = !*done;
        }
        Ok(progress)
    }
}

/// The rest of a rectangle whose header `r` was read from `b`, `rest`
/// what follows it: framed here when its length is known now, otherwise
/// the state that frames it over the next steps.
fn body(
    state: &mut RectState,
    r: RectHeader,
    pf: Option<PixelFormat>,
    b: &[u8],
    rest: &[u8],
) -> Framed {
    let parsed = |rest: &[u8]| b.len() - rest.len();
    let (w, h) = (u64::from(r.w), u64::from(r.h));
    let bpp = || pixel(pf, PixelFormat::bytes_per_pixel, r.encoding);
    let mut note = None;
    let mut done = true;
    let (used, skip) = match r.encoding {
        enc::RAW => (parsed(rest), w * h * bpp()?),
        enc::COPY_RECT => (parsed(rest), 4),
        enc::RRE | enc::CORRE => {
            let bpp = bpp()?;
            let (rest, n) = wire::rre_head(bpp)(rest).map_err(|e| more(b, e))?;
            let each = bpp + if r.encoding == enc::RRE { 8 } else { 4 };
            (parsed(rest), u64::from(n) * each)
        }
        enc::HEXTILE | enc::TRLE if w == 0 || h == 0 => (parsed(rest), 0),
        enc::HEXTILE | enc::TRLE | enc::TIGHT | enc::TIGHT_PNG => {
            *state = match r.encoding {
                enc::HEXTILE => RectState::Hextile(Tiles::new(r.w, r.h)),
                enc::TRLE => RectState::Trle {
                    tiles: Tiles::new(r.w, r.h),
                    palette: 0,
                    run: None,
                },
                _ => RectState::Tight {
                    w: r.w,
                    h: r.h,
                    png: r.encoding == enc::TIGHT_PNG,
                },
            };
            done = false;
            (parsed(rest), 0)
        }
        enc::ZLIB | enc::ZRLE | enc::ZYWRLE => {
            let (rest, len) = wire::data_length(rest).map_err(|e| more(b, e))?;
            (parsed(rest), u64::from(len))
        }
        enc::H264 => {
            let (rest, (len, _flags)) = wire::h264_head(rest).map_err(|e| more(b, e))?;
            (parsed(rest), u64::from(len))
        }
        _ => pseudo(r, pf, b, rest, &mut note)?,
    };
    Ok(Progress::Step {
        used,
        skip,
        done,
        header: Some(r),
        note,
    })
}

/// A pseudo-encoding's rectangle (or a cursor's): bytes read and bytes
/// to skip.
fn pseudo(
    r: RectHeader,
    pf: Option<PixelFormat>,
    b: &[u8],
    rest: &[u8],
    note: &mut Option<(&'static str, Value)>,
) -> Result<(usize, u64), Progress> {
    let parsed = |rest: &[u8]| b.len() - rest.len();
    let (w, h) = (u64::from(r.w), u64::from(r.h));
    let bpp = || pixel(pf, PixelFormat::bytes_per_pixel, r.encoding);
    let fixed = |skip: u64| Ok((parsed(rest), skip));
    match r.encoding {
        enc::DESKTOP_SIZE => {
            *note = Some(("resize", json!([r.w, r.h])));
            fixed(0)
        }
        enc::EXTENDED_DESKTOP_SIZE => {
            let (rest, screens) = wire::extended_desktop_size_head(rest).map_err(|e| more(b, e))?;
            *note = Some(("resize", json!([r.w, r.h])));
            Ok((parsed(rest), u64::from(screens) * 16))
        }
        enc::DESKTOP_NAME => {
            let (rest, name) = super::wire::text(rest).map_err(|e| more(b, e))?;
            *note = Some(("desktop_name", Value::String(super::text(name.shown))));
            Ok((parsed(rest), name.skipped))
        }
        enc::CURSOR => fixed(w * h * bpp()? + w.div_ceil(8) * h),
        enc::X_CURSOR if w * h == 0 => fixed(0),
        // Two colours, then the pixel bitmap and the mask, a bit a pixel.
        enc::X_CURSOR => fixed(6 + 2 * w.div_ceil(8) * h),
        enc::QEMU_LED_STATE => fixed(1),
        enc::VMWARE_CURSOR => {
            // Classic cursors carry AND and XOR masks in the pixel format,
            // alpha cursors RGBA.
            let (rest, kind) = wire::vmware_cursor_head(rest).map_err(|e| more(b, e))?;
            let skip = match kind {
                0 => 2 * w * h * bpp()?,
                1 => w * h * 4,
                kind => {
                    return Err(fail(
                        RfbFinding::BadVmwareCursor,
                        format!("VMware cursor type {kind} is neither 0 (classic) nor 1 (alpha)"),
                    ));
                }
            };
            Ok((parsed(rest), skip))
        }
        enc::VMWARE_CURSOR_STATE | enc::VMWARE_VM_STATE => fixed(2),
        enc::VMWARE_KEY_REPEAT => fixed(10),
        enc::VMWARE_LED_STATE => fixed(4),
        enc::LAST_RECT
        | enc::POINTER_POS
        | enc::QEMU_POINTER_MOTION_CHANGE
        | enc::QEMU_EXTENDED_KEY_EVENT
        | enc::QEMU_AUDIO
        | enc::XVP
        | enc::FENCE
        | enc::CONTINUOUS_UPDATES
        | enc::EXTENDED_MOUSE_BUTTONS
        | enc::VMWARE_CURSOR_POSITION => fixed(0),
        e => Err(fail(
            RfbFinding::UnframeableEncoding,
            format!(
                "rectangle encoding {e} ({}) has no framing tether knows; the rest of this direction is only counted",
                encoding_name(e)
            ),
        )),
    }
}

/// Hextile: every tile already in `b` in one step (tiles are small),
/// stopping at a tile whose header or pixels run past it.
fn hextile(state: &mut RectState, mut tiles: Tiles, pf: Option<PixelFormat>, b: &[u8]) -> Framed {
    if b.is_empty() {
        return Err(Progress::Need(1));
    }
    let bpp = pixel(pf, PixelFormat::bytes_per_pixel, enc::HEXTILE)?;
    let mut pos = 0usize;
    loop {
        let rest = &b[pos..];
        let (tw, th) = tiles.dims();
        let tile = match wire::hextile_tile(bpp, tw, th)(rest) {
            Ok((after, tile)) => (rest.len() - after.len(), tile.payload),
            Err(e) if pos == 0 => return Err(more(b, e)),
            Err(_) => {
                *state = RectState::Hextile(tiles);
                return Ok(step(pos, 0, false));
            }
        };
        let (head, payload) = tile;
        let done = tiles.advance();
        if done {
            *state = RectState::Header;
            return Ok(step(pos + head, payload, true));
        }
        if payload > (rest.len() - head) as u64 {
            *state = RectState::Hextile(tiles);
            return Ok(step(pos + head, payload, false));
        }
        pos += head + payload as usize;
    }
}

/// TRLE: one tile header or one run a step.
fn trle(
    state: &mut RectState,
    mut tiles: Tiles,
    mut palette: u16,
    run: Option<TrleRun>,
    pf: Option<PixelFormat>,
    b: &[u8],
) -> Framed {
    let cpixel = pixel(pf, PixelFormat::cpixel, enc::TRLE)?;
    let (used, skip, run) = match run {
        Some(TrleRun::Plain { left }) => {
            let (rest, n) = wire::trle_plain_run(cpixel)(b).map_err(|e| more(b, e))?;
            (
                b.len() - rest.len(),
                0,
                run_left(n, left)?.map(|left| TrleRun::Plain { left }),
            )
        }
        Some(TrleRun::Palette { left, size }) => {
            let (rest, (index, n)) = wire::trle_palette_run(b).map_err(|e| more(b, e))?;
            if u16::from(index) >= size {
                return Err(fail(
                    RfbFinding::TrleBadIndex,
                    format!("TRLE palette index {index} with a palette of {size}"),
                ));
            }
            let left = run_left(n, left)?;
            (
                b.len() - rest.len(),
                0,
                left.map(|left| TrleRun::Palette { left, size }),
            )
        }
        None => {
            let (rest, sub) = wire::trle_subencoding(b).map_err(|e| more(b, e))?;
            let (skip, run) = trle_tile(sub, &mut palette, tiles.dims(), cpixel)?;
            (b.len() - rest.len(), skip, run)
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
    Ok(step(used, skip, done))
}

/// Pixels left in the tile after a run of `n`, none when it is full.
fn run_left(n: u64, left: u64) -> Result<Option<u64>, Progress> {
    if n > left {
        return Err(fail(
            RfbFinding::TrleRunOverflow,
            format!("TRLE run of {n} pixels where {left} remain in the tile"),
        ));
    }
    Ok((n < left).then_some(left - n))
}

/// A TRLE tile's subencoding `sub`: the pixel bytes that follow it, and
/// the run that starts when it is run-length encoded. `palette` is the
/// palette size in force, which a new palette replaces.
fn trle_tile(
    sub: u8,
    palette: &mut u16,
    (tw, th): (u64, u64),
    cpixel: u64,
) -> Result<(u64, Option<TrleRun>), Progress> {
    let pixels = tw * th;
    Ok(match sub {
        0 => (pixels * cpixel, None),
        1 => (cpixel, None),
        2..=16 => {
            *palette = u16::from(sub);
            (u64::from(sub) * cpixel + packed_len(*palette, tw, th), None)
        }
        127 | 129 if *palette < 2 => {
            return Err(fail(
                RfbFinding::TrleNoPalette,
                format!("TRLE subencoding {sub} reuses a palette but no earlier tile sent one"),
            ));
        }
        127 => (packed_len(*palette, tw, th), None),
        128 => (0, Some(TrleRun::Plain { left: pixels })),
        129 => (
            0,
            Some(TrleRun::Palette {
                left: pixels,
                size: *palette,
            }),
        ),
        130..=255 => {
            *palette = u16::from(sub) - 128;
            (
                u64::from(*palette) * cpixel,
                Some(TrleRun::Palette {
                    left: pixels,
                    size: *palette,
                }),
            )
        }
        17..=126 => {
            return Err(fail(
                RfbFinding::TrleBadSubencoding,
                format!("TRLE tile subencoding {sub} is not defined"),
            ));
        }
    })
}

/// Tight: the control byte and what it announces, in one step.
fn tight(
    state: &mut RectState,
    (w, h): (u16, u16),
    png: bool,
    pf: Option<PixelFormat>,
    b: &[u8],
) -> Framed {
    if b.is_empty() {
        return Err(Progress::Need(1));
    }
    let tpixel = pixel(pf, PixelFormat::tpixel, enc::TIGHT)?;
    let (rest, rect) =
        wire::tight_rect(u64::from(w), u64::from(h), tpixel, png)(b).map_err(|e| more(b, e))?;
    let skip = match rect {
        TightRect::Fill => tpixel,
        TightRect::Image { len } => len,
        TightRect::Basic { data, .. } => data,
        TightRect::BadFilter(f) => {
            return Err(fail(
                RfbFinding::TightBadFilter,
                format!("Tight filter id {f} is not defined"),
            ));
        }
        TightRect::BadControl(control) => {
            return Err(fail(
                RfbFinding::TightBadControl,
                format!("Tight compression control {control:#04x} is not defined"),
            ));
        }
    };
    *state = RectState::Header;
    Ok(step(b.len() - rest.len(), skip, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_length_takes_one_to_three_bytes() {
        let len =
            |b: &'static [u8]| wire::compact_length(b).map(|(rest, n)| (n, b.len() - rest.len()));
        assert_eq!(len(&[0x05]), Ok((5, 1)));
        assert_eq!(len(&[0x90, 0x4e]), Ok((10000, 2)));
        assert_eq!(len(&[0xff, 0xff, 0xff]), Ok((4_194_303, 3)));
        let need = |b: &'static [u8]| wire::compact_length(b).map_err(|e| more(b, e)).err();
        assert_eq!(need(&[0x80]), Some(Progress::Need(2)));
        assert_eq!(need(&[]), Some(Progress::Need(1)));
    }

    #[test]
    fn run_lengths_sum_255s() {
        let len = |b: &'static [u8]| wire::run_length(b).map(|(rest, n)| (n, b.len() - rest.len()));
        assert_eq!(len(&[0]), Ok((1, 1)));
        assert_eq!(len(&[255, 0]), Ok((256, 2)));
        let need = |b: &'static [u8]| wire::run_length(b).map_err(|e| more(b, e)).err();
        assert_eq!(need(&[255, 255]), Some(Progress::Need(3)));
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
