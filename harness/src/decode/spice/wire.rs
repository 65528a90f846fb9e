//! SPICE wire structures: little-endian views with fixed field offsets
//! (protocol-facts §1.3–§1.9), and writers for building test streams.
//! Parsers take slices already checked to be long enough by the framer.

pub const LINK_HEADER_LEN: usize = 16;
pub const LINK_MESS_LEN: usize = 18;
/// A reply carrying only an error code still has the full fixed part.
pub const LINK_REPLY_ERROR_LEN: usize = 4;
pub const LINK_REPLY_LEN: usize = 178;
pub const PUB_KEY_LEN: usize = 162;
pub const MINI_HEADER_LEN: usize = 6;
pub const FULL_HEADER_LEN: usize = 18;

/// Little-endian u32 at `at`; 0 for bytes past the end (callers check
/// lengths first; this keeps a miscount from ever panicking).
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4))
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at.saturating_add(8)).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

pub fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at.saturating_add(2))
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkHeader {
    pub magic: [u8; 4],
    pub major: u32,
    pub minor: u32,
    pub size: u32,
}

impl LinkHeader {
    pub fn parse(b: &[u8]) -> LinkHeader {
        let mut magic = [0u8; 4];
        if let Some(m) = b.get(..4) {
            magic.copy_from_slice(m);
        }
        LinkHeader {
            magic,
            major: u32_at(b, 4),
            minor: u32_at(b, 8),
            size: u32_at(b, 12),
        }
    }
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

impl LinkMess {
    pub fn parse(b: &[u8]) -> LinkMess {
        LinkMess {
            connection_id: u32_at(b, 0),
            channel_type: b.get(4).copied().unwrap_or(0),
            channel_id: b.get(5).copied().unwrap_or(0),
            num_common_caps: u32_at(b, 6),
            num_channel_caps: u32_at(b, 10),
            caps_offset: u32_at(b, 14),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkReply {
    pub error: u32,
    pub num_common_caps: u32,
    pub num_channel_caps: u32,
    pub caps_offset: u32,
}

impl LinkReply {
    pub fn parse(b: &[u8]) -> LinkReply {
        LinkReply {
            error: u32_at(b, 0),
            num_common_caps: u32_at(b, 166),
            num_channel_caps: u32_at(b, 170),
            caps_offset: u32_at(b, 174),
        }
    }
}

/// A data-stage header, mini (no serial) or full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHeader {
    pub serial: Option<u64>,
    pub ty: u16,
    pub size: u32,
    pub sub_list: u32,
}

impl DataHeader {
    pub fn parse_mini(b: &[u8]) -> DataHeader {
        DataHeader {
            serial: None,
            ty: u16_at(b, 0),
            size: u32_at(b, 2),
            sub_list: 0,
        }
    }
    pub fn parse_full(b: &[u8]) -> DataHeader {
        DataHeader {
            serial: Some(u64_at(b, 0)),
            ty: u16_at(b, 8),
            size: u32_at(b, 10),
            sub_list: u32_at(b, 14),
        }
    }
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
