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
    pub pixel_format: &'a [u8],
    pub name: Text<'a>,
}

pub fn server_init(i: &[u8]) -> IResult<&[u8], ServerInit<'_>> {
    let (i, width) = be_u16(i)?;
    let (i, height) = be_u16(i)?;
    let (i, pixel_format) = take(16usize)(i)?;
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

/// Tight's interaction capabilities after ServerInit: server message,
/// client message and encoding counts, and padding (16-byte entries follow).
pub fn tight_init_caps(i: &[u8]) -> IResult<&[u8], (u16, u16, u16)> {
    let (i, server) = be_u16(i)?;
    let (i, client) = be_u16(i)?;
    let (i, encodings) = be_u16(i)?;
    let (i, _pad) = be_u16(i)?;
    Ok((i, (server, client, encodings)))
}
