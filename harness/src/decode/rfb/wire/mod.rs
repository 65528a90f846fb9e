//! RFB handshake messages as nom streaming parsers (RFC 6143 §7.1-§7.3,
//! rfbproto for Tight, VeNCrypt and ARD): one function per message, typed
//! results borrowing from the input, `Err::Incomplete` with the bytes still
//! missing when the input runs out, so any strict prefix is "need more",
//! never an error. Lists are read whole (their length first), so what is
//! asked for is the whole message, as the decoder's framing expects.

use nom::IResult;
use nom::bytes::streaming::take;
use nom::number::streaming::{be_u8, be_u16, be_u32};

use super::MAX_TEXT;
use super::pixel::PixelFormat;

pub mod rect;

/// The bytes a message takes in all when a streaming parser stopped short
/// of its end after `held` bytes: a parser only stops at the end of its
/// input, so that is everything held plus what it still lacks.
pub fn needed(held: usize, e: &nom::Err<nom::error::Error<&[u8]>>) -> usize {
    match e {
        nom::Err::Incomplete(nom::Needed::Size(n)) => held + n.get(),
        // The wire parsers only ever ask for more bytes.
        _ => held + 1,
    }
}

/// A length-prefixed string, as far as it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text<'a> {
    pub shown: &'a [u8],
    /// Bytes of it past [`MAX_TEXT`], not read.
    pub skipped: u64,
}

/// A u32 length, then the text (at most [`MAX_TEXT`] of it read).
pub fn text(i: &[u8]) -> IResult<&[u8], Text<'_>> {
    let (i, len) = be_u32(i)?;
    let shown_len = (len as usize).min(MAX_TEXT);
    let (i, shown) = take(shown_len)(i)?;
    Ok((
        i,
        Text {
            shown,
            skipped: u64::from(len) - shown_len as u64,
        },
    ))
}

/// ProtocolVersion: the 12 bytes `RFB xxx.yyy\n` (§7.1.1), checked by
/// the caller.
pub fn version(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take(12usize)(i)
}

/// The major and minor numbers of a ProtocolVersion [`version`] read,
/// `None` when it is not `RFB xxx.yyy\n` with decimal digits.
pub fn version_number(raw: &[u8]) -> Option<(u16, u16)> {
    use nom::bytes::complete::{tag, take as take_all};
    if !crate::decode::sniff::is_rfb_version(raw) {
        return None;
    }
    let number = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<u16>().ok();
    let parsed: IResult<&[u8], _> = (|i| {
        let (i, _) = tag(&b"RFB "[..])(i)?;
        let (i, major) = take_all(3usize)(i)?;
        let (i, _) = tag(&b"."[..])(i)?;
        let (i, minor) = take_all(3usize)(i)?;
        Ok((i, (major, minor)))
    })(raw);
    let (_, (major, minor)) = parsed.ok()?;
    Some((number(major)?, number(minor)?))
}

/// A big-endian u32 on its own: RFB 3.3's security type, SecurityResult,
/// the Tight tunnel and auth counts and choices, VeNCrypt's chosen subtype.
pub fn word(i: &[u8]) -> IResult<&[u8], u32> {
    be_u32(i)
}

/// One byte: a security type chosen, VeNCrypt's acks, ClientInit's
/// shared flag.
pub fn byte(i: &[u8]) -> IResult<&[u8], u8> {
    be_u8(i)
}

/// The security types a 3.7+ server offers (§7.1.2): a count and that many
/// types. An empty list is a refusal, whose reason [`text`] follows.
pub fn security_types(i: &[u8]) -> IResult<&[u8], &[u8]> {
    let (i, n) = be_u8(i)?;
    take(usize::from(n))(i)
}

/// The VNC authentication challenge or response (§7.2.2): 16 bytes.
pub fn challenge(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take(16usize)(i)
}

/// Apple Remote Desktop's Diffie-Hellman parameters: generator and key
/// length (the prime and the key follow, skipped).
pub fn ard_params(i: &[u8]) -> IResult<&[u8], (u16, u16)> {
    let (i, generator) = be_u16(i)?;
    let (i, key_len) = be_u16(i)?;
    Ok((i, (generator, key_len)))
}

/// VeNCrypt's version: major, minor.
pub fn vencrypt_version(i: &[u8]) -> IResult<&[u8], (u8, u8)> {
    let (i, major) = be_u8(i)?;
    let (i, minor) = be_u8(i)?;
    Ok((i, (major, minor)))
}

/// VeNCrypt's subtypes: a count, then that many u32s.
pub fn vencrypt_subtypes(i: &[u8]) -> IResult<&[u8], Vec<u32>> {
    let (i, n) = be_u8(i)?;
    let (i, raw) = take(4 * usize::from(n))(i)?;
    let types = raw
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    Ok((i, types))
}

/// VeNCrypt Plain's username and password lengths (the credentials
/// follow, never read).
pub fn plain_lengths(i: &[u8]) -> IResult<&[u8], (u32, u32)> {
    let (i, user) = be_u32(i)?;
    let (i, pass) = be_u32(i)?;
    Ok((i, (user, pass)))
}

/// ServerInit (§7.3.2): size, pixel format (16 bytes), name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerInit<'a> {
    pub width: u16,
    pub height: u16,
    pub pixel_format: PixelFormat,
    pub name: Text<'a>,
}

pub fn server_init(i: &[u8]) -> IResult<&[u8], ServerInit<'_>> {
    let (i, width) = be_u16(i)?;
    let (i, height) = be_u16(i)?;
    let (i, pixel_format) = pixel_format(i)?;
    let (i, name) = text(i)?;
    Ok((
        i,
        ServerInit {
            width,
            height,
            pixel_format,
            name,
        },
    ))
}

/// PIXEL_FORMAT (§7.4): 16 bytes, the last three padding.
pub fn pixel_format(i: &[u8]) -> IResult<&[u8], PixelFormat> {
    let (i, bits_per_pixel) = be_u8(i)?;
    let (i, depth) = be_u8(i)?;
    let (i, big_endian) = be_u8(i)?;
    let (i, true_colour) = be_u8(i)?;
    let (i, red_max) = be_u16(i)?;
    let (i, green_max) = be_u16(i)?;
    let (i, blue_max) = be_u16(i)?;
    let (i, red_shift) = be_u8(i)?;
    let (i, green_shift) = be_u8(i)?;
    let (i, blue_shift) = be_u8(i)?;
    let (i, _pad) = take(3usize)(i)?;
    Ok((
        i,
        PixelFormat {
            bits_per_pixel,
            depth,
            big_endian: big_endian != 0,
            true_colour: true_colour != 0,
            red_max,
            green_max,
            blue_max,
            red_shift,
            green_shift,
            blue_shift,
        },
    ))
}

/// Tight's interaction capabilities after ServerInit: server message,
/// client message and encoding counts, and padding (16-byte entries follow).
pub fn tight_init_caps(i: &[u8]) -> IResult<&[u8], (u16, u16, u16)> {
    let (i, server) = be_u16(i)?;
    let (i, client) = be_u16(i)?;
    let (i, encodings) = be_u16(i)?;
    let (i, _pad) = be_u16(i)?;
    Ok((i, (server, client, encodings)))
}

// ---- the data stage: each message whole, its type byte first ----

/// The type byte a message starts with (the decoder dispatches on it).
pub fn message_type(i: &[u8]) -> IResult<&[u8], u8> {
    be_u8(i)
}

/// A rectangle as FramebufferUpdateRequest and EnableContinuousUpdates
/// name it: x, y, width, height.
pub type Area = [u16; 4];

fn area(i: &[u8]) -> IResult<&[u8], Area> {
    let (i, x) = be_u16(i)?;
    let (i, y) = be_u16(i)?;
    let (i, w) = be_u16(i)?;
    let (i, h) = be_u16(i)?;
    Ok((i, [x, y, w, h]))
}

/// FramebufferUpdate's header (§7.6.1): its rectangle count.
pub fn framebuffer_update(i: &[u8]) -> IResult<&[u8], u16> {
    let (i, _ty_pad) = take(2usize)(i)?;
    be_u16(i)
}

/// SetColourMapEntries' header (§7.6.2): first colour, count (6 bytes per
/// colour follow).
pub fn set_colour_map_entries(i: &[u8]) -> IResult<&[u8], (u16, u16)> {
    let (i, _ty_pad) = take(2usize)(i)?;
    let (i, first) = be_u16(i)?;
    let (i, n) = be_u16(i)?;
    Ok((i, (first, n)))
}

/// ServerCutText and ClientCutText headers (§7.5.6, §7.6.4): the raw
/// length (negative: Extended Clipboard).
pub fn cut_text(i: &[u8]) -> IResult<&[u8], u32> {
    let (i, _ty_pad) = take(4usize)(i)?;
    be_u32(i)
}

/// Fence (rfbproto): flags and payload length (the payload follows).
pub fn fence(i: &[u8]) -> IResult<&[u8], (u32, u8)> {
    let (i, _ty_pad) = take(4usize)(i)?;
    let (i, flags) = be_u32(i)?;
    let (i, len) = be_u8(i)?;
    Ok((i, (flags, len)))
}

/// xvp (rfbproto): version and code.
pub fn xvp(i: &[u8]) -> IResult<&[u8], (u8, u8)> {
    let (i, _ty_pad) = take(2usize)(i)?;
    let (i, version) = be_u8(i)?;
    let (i, code) = be_u8(i)?;
    Ok((i, (version, code)))
}

/// gii (rfbproto): subtype, and the length in the byte order its
/// subtype's top bit names.
pub fn gii(i: &[u8]) -> IResult<&[u8], (u8, u16)> {
    let (i, _ty) = be_u8(i)?;
    let (i, sub) = be_u8(i)?;
    let (i, raw) = take(2usize)(i)?;
    let len = if sub & 0x80 != 0 {
        u16::from_be_bytes([raw[0], raw[1]])
    } else {
        u16::from_le_bytes([raw[0], raw[1]])
    };
    Ok((i, (sub & 0x7f, len)))
}

/// A QEMU server message's subtype and operation (rfbproto).
pub fn qemu_server(i: &[u8]) -> IResult<&[u8], (u8, u16)> {
    let (i, _ty) = be_u8(i)?;
    let (i, sub) = be_u8(i)?;
    let (i, op) = be_u16(i)?;
    Ok((i, (sub, op)))
}

/// QEMU audio data from the server: its length (the samples follow).
pub fn qemu_audio_data(i: &[u8]) -> IResult<&[u8], u32> {
    let (i, _head) = take(4usize)(i)?;
    be_u32(i)
}

/// SetPixelFormat (§7.5.1): the pixel format.
pub fn set_pixel_format(i: &[u8]) -> IResult<&[u8], PixelFormat> {
    let (i, _ty_pad) = take(4usize)(i)?;
    pixel_format(i)
}

/// SetEncodings (§7.5.2): the encodings, signed.
pub fn set_encodings(i: &[u8]) -> IResult<&[u8], Vec<i32>> {
    let (i, _ty_pad) = take(2usize)(i)?;
    let (i, n) = be_u16(i)?;
    let (i, raw) = take(4 * usize::from(n))(i)?;
    let list = raw
        .chunks_exact(4)
        .map(|w| i32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    Ok((i, list))
}

/// FramebufferUpdateRequest (§7.5.3) and EnableContinuousUpdates
/// (rfbproto): the flag and the area.
pub fn area_request(i: &[u8]) -> IResult<&[u8], (bool, Area)> {
    let (i, _ty) = be_u8(i)?;
    let (i, flag) = be_u8(i)?;
    let (i, a) = area(i)?;
    Ok((i, (flag != 0, a)))
}

/// KeyEvent (§7.5.4): down, keysym.
pub fn key_event(i: &[u8]) -> IResult<&[u8], (bool, u32)> {
    let (i, _ty) = be_u8(i)?;
    let (i, down) = be_u8(i)?;
    let (i, _pad) = take(2usize)(i)?;
    let (i, keysym) = be_u32(i)?;
    Ok((i, (down != 0, keysym)))
}

/// PointerEvent (§7.5.5): buttons, x, y; `extended` adds the
/// ExtendedMouseButtons byte (rfbproto).
pub fn pointer_event(i: &[u8], extended: bool) -> IResult<&[u8], (u8, u16, u16)> {
    let (i, _ty) = be_u8(i)?;
    let (i, buttons) = be_u8(i)?;
    let (i, x) = be_u16(i)?;
    let (i, y) = be_u16(i)?;
    let (i, _) = take(usize::from(extended))(i)?;
    Ok((i, (buttons, x, y)))
}

/// The PointerEvent's button mask alone, to know whether it is extended.
pub fn pointer_buttons(i: &[u8]) -> IResult<&[u8], u8> {
    let (i, _ty) = be_u8(i)?;
    be_u8(i)
}

/// SetDesktopSize (rfbproto): width, height, screen count (16 bytes per
/// screen follow).
pub fn set_desktop_size(i: &[u8]) -> IResult<&[u8], (u16, u16, u8)> {
    let (i, _ty_pad) = take(2usize)(i)?;
    let (i, w) = be_u16(i)?;
    let (i, h) = be_u16(i)?;
    let (i, screens) = be_u8(i)?;
    let (i, _pad) = be_u8(i)?;
    Ok((i, (w, h, screens)))
}

/// A QEMU client message's subtype.
pub fn qemu_client(i: &[u8]) -> IResult<&[u8], u8> {
    let (i, _ty) = be_u8(i)?;
    be_u8(i)
}

/// QEMU Extended Key Event: down, keysym, keycode.
pub fn qemu_extended_key(i: &[u8]) -> IResult<&[u8], (bool, u32, u32)> {
    let (i, _ty_sub) = take(2usize)(i)?;
    let (i, down) = be_u16(i)?;
    let (i, keysym) = be_u32(i)?;
    let (i, keycode) = be_u32(i)?;
    Ok((i, (down != 0, keysym, keycode)))
}

/// A QEMU audio message from the client: its operation.
pub fn qemu_client_audio(i: &[u8]) -> IResult<&[u8], u16> {
    let (i, _ty_sub) = take(2usize)(i)?;
    be_u16(i)
}

// ---- after a gap: the head of whatever message a segment starts with ----

/// The head of a message a segment after a gap may start with, read as
/// far as judging it needs: its type and the fields whose range says
/// whether it really is one. `padding_zero` is whether every padding byte
/// read was zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageHead {
    FramebufferUpdate {
        padding_zero: bool,
        rects: u16,
        first: rect::RectHeader,
    },
    SetColourMapEntries {
        padding_zero: bool,
    },
    /// Bell, and the type byte of the message after it, if any.
    Bell {
        next: Option<u8>,
    },
    CutText {
        padding_zero: bool,
        len: u32,
    },
    SetPixelFormat {
        padding_zero: bool,
        bits_per_pixel: u8,
    },
    SetEncodings {
        padding_zero: bool,
    },
    FramebufferUpdateRequest {
        incremental: u8,
        area: Area,
    },
    KeyEvent {
        down: u8,
        padding_zero: bool,
    },
    PointerEvent {
        x: u16,
        y: u16,
    },
    /// A type no check is made for.
    Other(u8),
}

fn zero_padding(n: usize) -> impl Fn(&[u8]) -> IResult<&[u8], bool> {
    move |i| {
        let (i, pad) = take(n)(i)?;
        Ok((i, pad.iter().all(|&b| b == 0)))
    }
}

/// A server message's head (§7.6).
pub fn server_message_head(i: &[u8]) -> IResult<&[u8], MessageHead> {
    let (i, t) = be_u8(i)?;
    Ok(match t {
        0 => {
            let (i, padding_zero) = zero_padding(1)(i)?;
            let (i, rects) = be_u16(i)?;
            let (i, first) = rect::rect_header(i)?;
            let head = MessageHead::FramebufferUpdate {
                padding_zero,
                rects,
                first,
            };
            (i, head)
        }
        1 => {
            let (i, padding_zero) = zero_padding(1)(i)?;
            let (i, _first_and_count) = take(4usize)(i)?;
            (i, MessageHead::SetColourMapEntries { padding_zero })
        }
        2 => (
            i,
            MessageHead::Bell {
                next: i.first().copied(),
            },
        ),
        3 => {
            let (i, padding_zero) = zero_padding(3)(i)?;
            let (i, len) = be_u32(i)?;
            (i, MessageHead::CutText { padding_zero, len })
        }
        t => (i, MessageHead::Other(t)),
    })
}

/// A client message's head (§7.5).
pub fn client_message_head(i: &[u8]) -> IResult<&[u8], MessageHead> {
    let (i, t) = be_u8(i)?;
    Ok(match t {
        0 => {
            let (i, padding_zero) = zero_padding(3)(i)?;
            let (i, bits_per_pixel) = be_u8(i)?;
            let (i, _rest) = take(15usize)(i)?;
            let head = MessageHead::SetPixelFormat {
                padding_zero,
                bits_per_pixel,
            };
            (i, head)
        }
        2 => {
            let (i, padding_zero) = zero_padding(1)(i)?;
            let (i, _count) = be_u16(i)?;
            (i, MessageHead::SetEncodings { padding_zero })
        }
        3 => {
            let (i, incremental) = be_u8(i)?;
            let (i, area) = area(i)?;
            (
                i,
                MessageHead::FramebufferUpdateRequest { incremental, area },
            )
        }
        4 => {
            let (i, down) = be_u8(i)?;
            let (i, padding_zero) = zero_padding(2)(i)?;
            let (i, _key) = be_u32(i)?;
            (i, MessageHead::KeyEvent { down, padding_zero })
        }
        5 => {
            let (i, _buttons) = be_u8(i)?;
            let (i, x) = be_u16(i)?;
            let (i, y) = be_u16(i)?;
            (i, MessageHead::PointerEvent { x, y })
        }
        6 => {
            let (i, padding_zero) = zero_padding(3)(i)?;
            let (i, len) = be_u32(i)?;
            (i, MessageHead::CutText { padding_zero, len })
        }
        t => (i, MessageHead::Other(t)),
    })
}
