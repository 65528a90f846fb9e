//! SPICE wire messages as nom streaming parsers (protocol-facts
//! §1.3-§1.13): one function per message, typed results borrowing from the
//! input, `Err::Incomplete` when the bytes run out (so any strict prefix of
//! a message is "need more", never an error), and writers for building
//! test streams. The decoder's state machine calls these and never indexes
//! bytes itself.

use nom::IResult;
use nom::bytes::streaming::take;
use nom::multi::count;
use nom::number::streaming::{le_u8, le_u16, le_u32, le_u64};

pub const LINK_HEADER_LEN: usize = 16;
pub const LINK_MESS_LEN: usize = 18;
/// A reply carrying only an error code still has the full fixed part.
pub const LINK_REPLY_ERROR_LEN: usize = 4;
pub const LINK_REPLY_LEN: usize = 178;
pub const PUB_KEY_LEN: usize = 162;
pub const MINI_HEADER_LEN: usize = 6;
pub const FULL_HEADER_LEN: usize = 18;

/// A little-endian u32 on its own: the auth mechanism, the link result.
pub fn word(i: &[u8]) -> IResult<&[u8], u32> {
    le_u32(i)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkHeader {
    pub magic: [u8; 4],
    pub major: u32,
    pub minor: u32,
    pub size: u32,
}

/// SpiceLinkHeader (§1.3).
pub fn link_header(i: &[u8]) -> IResult<&[u8], LinkHeader> {
    let (i, magic) = take(4usize)(i)?;
    let (i, major) = le_u32(i)?;
    let (i, minor) = le_u32(i)?;
    let (i, size) = le_u32(i)?;
    let mut m = [0u8; 4];
    m.copy_from_slice(magic);
    Ok((
        i,
        LinkHeader {
            magic: m,
            major,
            minor,
            size,
        },
    ))
}

impl LinkHeader {
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.major.to_le_bytes());
        out.extend_from_slice(&self.minor.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkMess {
    pub connection_id: u32,
    pub channel_type: u8,
    pub channel_id: u8,
    pub num_common_caps: u32,
    pub num_channel_caps: u32,
    pub caps_offset: u32,
}

/// SpiceLinkMess, the client's link body's fixed part (§1.4).
pub fn link_mess(i: &[u8]) -> IResult<&[u8], LinkMess> {
    let (i, connection_id) = le_u32(i)?;
    let (i, channel_type) = le_u8(i)?;
    let (i, channel_id) = le_u8(i)?;
    let (i, num_common_caps) = le_u32(i)?;
    let (i, num_channel_caps) = le_u32(i)?;
    let (i, caps_offset) = le_u32(i)?;
    Ok((
        i,
        LinkMess {
            connection_id,
            channel_type,
            channel_id,
            num_common_caps,
            num_channel_caps,
            caps_offset,
        },
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkReply<'a> {
    pub error: u32,
    pub pub_key: &'a [u8],
    pub num_common_caps: u32,
    pub num_channel_caps: u32,
    pub caps_offset: u32,
}

/// SpiceLinkReply's fixed part (§1.6). A refusal may carry only its error
/// code: read that with [`word`].
pub fn link_reply(i: &[u8]) -> IResult<&[u8], LinkReply<'_>> {
    let (i, error) = le_u32(i)?;
    let (i, pub_key) = take(PUB_KEY_LEN)(i)?;
    let (i, num_common_caps) = le_u32(i)?;
    let (i, num_channel_caps) = le_u32(i)?;
    let (i, caps_offset) = le_u32(i)?;
    Ok((
        i,
        LinkReply {
            error,
            pub_key,
            num_common_caps,
            num_channel_caps,
            caps_offset,
        },
    ))
}

/// The capability words a link body points at: `common` then `channel`
/// words from `offset` (counted from the body's start).
pub fn caps(
    body: &[u8],
    offset: u32,
    common: u32,
    channel: u32,
) -> IResult<&[u8], (Vec<u32>, Vec<u32>)> {
    let (i, _) = take(offset as usize)(body)?;
    let (i, c) = count(le_u32, common as usize)(i)?;
    let (i, ch) = count(le_u32, channel as usize)(i)?;
    Ok((i, (c, ch)))
}

/// A data-stage header, mini (no serial) or full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DataHeader {
    pub serial: Option<u64>,
    pub ty: u16,
    pub size: u32,
    pub sub_list: u32,
}

/// SpiceMiniDataHeader (§1.9).
pub fn mini_header(i: &[u8]) -> IResult<&[u8], DataHeader> {
    let (i, ty) = le_u16(i)?;
    let (i, size) = le_u32(i)?;
    Ok((
        i,
        DataHeader {
            serial: None,
            ty,
            size,
            sub_list: 0,
        },
    ))
}

/// SpiceDataHeader, the full one with a serial (§1.9).
pub fn full_header(i: &[u8]) -> IResult<&[u8], DataHeader> {
    let (i, serial) = le_u64(i)?;
    let (i, ty) = le_u16(i)?;
    let (i, size) = le_u32(i)?;
    let (i, sub_list) = le_u32(i)?;
    Ok((
        i,
        DataHeader {
            serial: Some(serial),
            ty,
            size,
            sub_list,
        },
    ))
}

impl DataHeader {
    /// Writes the mini header when `serial` is `None`, else the full one.
    pub fn write(&self, out: &mut Vec<u8>) {
        if let Some(serial) = self.serial {
            out.extend_from_slice(&serial.to_le_bytes());
        }
        out.extend_from_slice(&self.ty.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        if self.serial.is_some() {
            out.extend_from_slice(&self.sub_list.to_le_bytes());
        }
    }
}

// ---- message bodies (fixed parts; the decoder keeps only these bytes) ----

/// Bytes each body parser reads, for "shorter than its fixed part".
pub const SET_ACK_LEN: usize = 8;
pub const PING_LEN: usize = 12;
pub const NOTIFY_LEN: usize = 24;
pub const DISCONNECTING_LEN: usize = 12;
pub const WAIT_FOR_CHANNELS_LEN: usize = 1;
pub const MIGRATE_LEN: usize = 4;
pub const MAIN_INIT_LEN: usize = 32;
pub const CHANNELS_LIST_LEN: usize = 4;
pub const ACK_SYNC_LEN: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetAck {
    pub generation: u32,
    pub window: u32,
}

/// SPICE_MSG_SET_ACK (§1.11, §1.15).
pub fn set_ack(i: &[u8]) -> IResult<&[u8], SetAck> {
    let (i, generation) = le_u32(i)?;
    let (i, window) = le_u32(i)?;
    Ok((i, SetAck { generation, window }))
}

/// SPICE_MSGC_ACK_SYNC: the generation acknowledged.
pub fn ack_sync(i: &[u8]) -> IResult<&[u8], u32> {
    le_u32(i)
}

/// SPICE_MSG_MIGRATE: its flags.
pub fn migrate(i: &[u8]) -> IResult<&[u8], u32> {
    le_u32(i)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    pub id: u32,
    pub timestamp: u64,
}

/// SPICE_MSG_PING and SPICE_MSGC_PONG's fixed part (§1.11, §1.14); a
/// PING's data follows it.
pub fn ping(i: &[u8]) -> IResult<&[u8], Ping> {
    let (i, id) = le_u32(i)?;
    let (i, timestamp) = le_u64(i)?;
    Ok((i, Ping { id, timestamp }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify<'a> {
    pub timestamp: u64,
    pub severity: u32,
    pub visibility: u32,
    pub what: u32,
    /// The text as far as it was kept (its declared length may run on).
    pub text: &'a [u8],
}

/// SPICE_MSG_NOTIFY (§1.11); the text is what follows, up to its length.
pub fn notify(i: &[u8]) -> IResult<&[u8], Notify<'_>> {
    let (i, timestamp) = le_u64(i)?;
    let (i, severity) = le_u32(i)?;
    let (i, visibility) = le_u32(i)?;
    let (i, what) = le_u32(i)?;
    let (i, text_len) = le_u32(i)?;
    let text = &i[..i.len().min(text_len as usize)];
    Ok((
        &i[text.len()..],
        Notify {
            timestamp,
            severity,
            visibility,
            what,
            text,
        },
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnecting {
    pub timestamp: u64,
    pub reason: u32,
}

/// SPICE_MSG_DISCONNECTING and SPICE_MSGC_DISCONNECTING (§1.11, §1.12).
pub fn disconnecting(i: &[u8]) -> IResult<&[u8], Disconnecting> {
    let (i, timestamp) = le_u64(i)?;
    let (i, reason) = le_u32(i)?;
    Ok((i, Disconnecting { timestamp, reason }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelWait {
    pub channel_type: u8,
    pub channel_id: u8,
    pub serial: u64,
}

/// SPICE_MSG_WAIT_FOR_CHANNELS: the count, and as many of its 10-byte
/// entries as were kept (at most the count).
pub fn wait_for_channels(i: &[u8]) -> IResult<&[u8], (u8, Vec<ChannelWait>)> {
    let (mut i, n) = le_u8(i)?;
    let mut waits = Vec::new();
    while waits.len() < usize::from(n) {
        let Ok((rest, w)) = channel_wait(i) else {
            break;
        };
        waits.push(w);
        i = rest;
    }
    Ok((i, (n, waits)))
}

fn channel_wait(i: &[u8]) -> IResult<&[u8], ChannelWait> {
    let (i, channel_type) = le_u8(i)?;
    let (i, channel_id) = le_u8(i)?;
    let (i, serial) = le_u64(i)?;
    Ok((
        i,
        ChannelWait {
            channel_type,
            channel_id,
            serial,
        },
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MainInit {
    pub session_id: u32,
    pub display_channels_hint: u32,
    pub supported_mouse_modes: u32,
    pub current_mouse_mode: u32,
    pub agent_connected: u32,
    pub agent_tokens: u32,
    pub multi_media_time: u32,
    pub ram_hint: u32,
}

/// SPICE_MSG_MAIN_INIT (§1.13).
pub fn main_init(i: &[u8]) -> IResult<&[u8], MainInit> {
    let (i, session_id) = le_u32(i)?;
    let (i, display_channels_hint) = le_u32(i)?;
    let (i, supported_mouse_modes) = le_u32(i)?;
    let (i, current_mouse_mode) = le_u32(i)?;
    let (i, agent_connected) = le_u32(i)?;
    let (i, agent_tokens) = le_u32(i)?;
    let (i, multi_media_time) = le_u32(i)?;
    let (i, ram_hint) = le_u32(i)?;
    Ok((
        i,
        MainInit {
            session_id,
            display_channels_hint,
            supported_mouse_modes,
            current_mouse_mode,
            agent_connected,
            agent_tokens,
            multi_media_time,
            ram_hint,
        },
    ))
}

/// A channel as main's list names it: (type, id).
pub type ChannelRef = (u8, u8);

/// SPICE_MSG_MAIN_CHANNELS_LIST: the count, and as many (type, id) pairs
/// as were kept (at most the count).
pub fn channels_list(i: &[u8]) -> IResult<&[u8], (u32, Vec<ChannelRef>)> {
    let (mut i, n) = le_u32(i)?;
    let mut list = Vec::new();
    while list.len() < n as usize {
        let Ok((rest, ty)) = le_u8::<_, nom::error::Error<&[u8]>>(i) else {
            break;
        };
        let Ok((rest, id)) = le_u8::<_, nom::error::Error<&[u8]>>(rest) else {
            break;
        };
        list.push((ty, id));
        i = rest;
    }
    Ok((i, (n, list)))
}

/// Builders for whole link-stage units and data messages, used by tests,
/// benches and the bug-report fixture generator.
pub mod build {
    use super::*;

    pub fn link_mess(
        connection_id: u32,
        channel_type: u8,
        channel_id: u8,
        common: &[u32],
        channel: &[u32],
    ) -> Vec<u8> {
        let size = LINK_MESS_LEN + 4 * (common.len() + channel.len());
        let mut out = Vec::with_capacity(LINK_HEADER_LEN + size);
        LinkHeader {
            magic: *b"REDQ",
            major: 2,
            minor: 2,
            size: size as u32,
        }
        .write(&mut out);
        out.extend_from_slice(&connection_id.to_le_bytes());
        out.push(channel_type);
        out.push(channel_id);
        out.extend_from_slice(&(common.len() as u32).to_le_bytes());
        out.extend_from_slice(&(channel.len() as u32).to_le_bytes());
        out.extend_from_slice(&(LINK_MESS_LEN as u32).to_le_bytes());
        for w in common.iter().chain(channel) {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    pub fn link_reply(error: u32, common: &[u32], channel: &[u32]) -> Vec<u8> {
        let size = LINK_REPLY_LEN + 4 * (common.len() + channel.len());
        let mut out = Vec::with_capacity(LINK_HEADER_LEN + size);
        LinkHeader {
            magic: *b"REDQ",
            major: 2,
            minor: 2,
            size: size as u32,
        }
        .write(&mut out);
        out.extend_from_slice(&error.to_le_bytes());
        out.extend_from_slice(&[0u8; PUB_KEY_LEN]);
        out.extend_from_slice(&(common.len() as u32).to_le_bytes());
        out.extend_from_slice(&(channel.len() as u32).to_le_bytes());
        out.extend_from_slice(&(LINK_REPLY_LEN as u32).to_le_bytes());
        for w in common.iter().chain(channel) {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// A mini-header message.
    pub fn mini(ty: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MINI_HEADER_LEN + body.len());
        DataHeader {
            serial: None,
            ty,
            size: body.len() as u32,
            sub_list: 0,
        }
        .write(&mut out);
        out.extend_from_slice(body);
        out
    }

    /// A full-header message.
    pub fn full(serial: u64, ty: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(FULL_HEADER_LEN + body.len());
        DataHeader {
            serial: Some(serial),
            ty,
            size: body.len() as u32,
            sub_list: 0,
        }
        .write(&mut out);
        out.extend_from_slice(body);
        out
    }

    pub fn ping_body(id: u32, timestamp: u64, payload: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(12 + payload);
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&timestamp.to_le_bytes());
        b.resize(12 + payload, 0);
        b
    }

    pub fn set_ack_body(generation: u32, window: u32) -> Vec<u8> {
        let mut b = generation.to_le_bytes().to_vec();
        b.extend_from_slice(&window.to_le_bytes());
        b
    }
}
