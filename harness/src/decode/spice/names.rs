//! SPICE channel types and message numbers, named as spice-protocol's
//! `enums.h` names them (protocol-facts §1.10–§1.13), so counts line up
//! with other tools by name.

use crate::timeline::Direction;

pub const MAIN: u8 = 1;
pub const DISPLAY: u8 = 2;
pub const INPUTS: u8 = 3;
pub const CURSOR: u8 = 4;
pub const PLAYBACK: u8 = 5;
pub const RECORD: u8 = 6;
pub const TUNNEL: u8 = 7;
pub const SMARTCARD: u8 = 8;
pub const USBREDIR: u8 = 9;
pub const PORT: u8 = 10;
pub const WEBDAV: u8 = 11;

/// Channel name from its type number.
pub fn channel_name(channel_type: u8) -> Option<&'static str> {
    Some(match channel_type {
        MAIN => "main",
        DISPLAY => "display",
        INPUTS => "inputs",
        CURSOR => "cursor",
        PLAYBACK => "playback",
        RECORD => "record",
        TUNNEL => "tunnel",
        SMARTCARD => "smartcard",
        USBREDIR => "usbredir",
        PORT => "port",
        WEBDAV => "webdav",
        _ => return None,
    })
}

/// Channel type number from its name (the inverse of [`channel_name`]).
pub fn channel_type(name: &str) -> Option<u8> {
    (1..=11).find(|&t| channel_name(t) == Some(name))
}

// Base messages, every channel.
pub const MSG_MIGRATE: u16 = 1;
pub const MSG_SET_ACK: u16 = 3;
pub const MSG_PING: u16 = 4;
pub const MSG_WAIT_FOR_CHANNELS: u16 = 5;
pub const MSG_DISCONNECTING: u16 = 6;
pub const MSG_NOTIFY: u16 = 7;
pub const MSGC_ACK_SYNC: u16 = 1;
pub const MSGC_ACK: u16 = 2;
pub const MSGC_PONG: u16 = 3;
pub const MSGC_DISCONNECTING: u16 = 6;
pub const MSG_MAIN_INIT: u16 = 103;
pub const MSG_MAIN_CHANNELS_LIST: u16 = 104;

fn base_server(ty: u16) -> Option<&'static str> {
    Some(match ty {
        1 => "SPICE_MSG_MIGRATE",
        2 => "SPICE_MSG_MIGRATE_DATA",
        3 => "SPICE_MSG_SET_ACK",
        4 => "SPICE_MSG_PING",
        5 => "SPICE_MSG_WAIT_FOR_CHANNELS",
        6 => "SPICE_MSG_DISCONNECTING",
        7 => "SPICE_MSG_NOTIFY",
        8 => "SPICE_MSG_LIST",
        _ => return None,
    })
}

fn base_client(ty: u16) -> Option<&'static str> {
    Some(match ty {
        1 => "SPICE_MSGC_ACK_SYNC",
        2 => "SPICE_MSGC_ACK",
        3 => "SPICE_MSGC_PONG",
        4 => "SPICE_MSGC_MIGRATE_FLUSH_MARK",
        5 => "SPICE_MSGC_MIGRATE_DATA",
        6 => "SPICE_MSGC_DISCONNECTING",
        _ => return None,
    })
}

const MAIN_S2C: [&str; 18] = [
    "SPICE_MSG_MAIN_MIGRATE_BEGIN",
    "SPICE_MSG_MAIN_MIGRATE_CANCEL",
    "SPICE_MSG_MAIN_INIT",
    "SPICE_MSG_MAIN_CHANNELS_LIST",
    "SPICE_MSG_MAIN_MOUSE_MODE",
    "SPICE_MSG_MAIN_MULTI_MEDIA_TIME",
    "SPICE_MSG_MAIN_AGENT_CONNECTED",
    "SPICE_MSG_MAIN_AGENT_DISCONNECTED",
    "SPICE_MSG_MAIN_AGENT_DATA",
    "SPICE_MSG_MAIN_AGENT_TOKEN",
    "SPICE_MSG_MAIN_MIGRATE_SWITCH_HOST",
    "SPICE_MSG_MAIN_MIGRATE_END",
    "SPICE_MSG_MAIN_NAME",
    "SPICE_MSG_MAIN_UUID",
    "SPICE_MSG_MAIN_AGENT_CONNECTED_TOKENS",
    "SPICE_MSG_MAIN_MIGRATE_BEGIN_SEAMLESS",
    "SPICE_MSG_MAIN_MIGRATE_DST_SEAMLESS_ACK",
    "SPICE_MSG_MAIN_MIGRATE_DST_SEAMLESS_NACK",
];

const MAIN_C2S: [&str; 12] = [
    "SPICE_MSGC_MAIN_CLIENT_INFO",
    "SPICE_MSGC_MAIN_MIGRATE_CONNECTED",
    "SPICE_MSGC_MAIN_MIGRATE_CONNECT_ERROR",
    "SPICE_MSGC_MAIN_ATTACH_CHANNELS",
    "SPICE_MSGC_MAIN_MOUSE_MODE_REQUEST",
    "SPICE_MSGC_MAIN_AGENT_START",
    "SPICE_MSGC_MAIN_AGENT_DATA",
    "SPICE_MSGC_MAIN_AGENT_TOKEN",
    "SPICE_MSGC_MAIN_MIGRATE_END",
    "SPICE_MSGC_MAIN_MIGRATE_DST_DO_SEAMLESS",
    "SPICE_MSGC_MAIN_MIGRATE_CONNECTED_SEAMLESS",
    "SPICE_MSGC_MAIN_QUALITY_INDICATOR",
];

fn display_server(ty: u16) -> Option<&'static str> {
    Some(match ty {
        101 => "SPICE_MSG_DISPLAY_MODE",
        102 => "SPICE_MSG_DISPLAY_MARK",
        103 => "SPICE_MSG_DISPLAY_RESET",
        104 => "SPICE_MSG_DISPLAY_COPY_BITS",
        105 => "SPICE_MSG_DISPLAY_INVAL_LIST",
        106 => "SPICE_MSG_DISPLAY_INVAL_ALL_PIXMAPS",
        107 => "SPICE_MSG_DISPLAY_INVAL_PALETTE",
        108 => "SPICE_MSG_DISPLAY_INVAL_ALL_PALETTES",
        122 => "SPICE_MSG_DISPLAY_STREAM_CREATE",
        123 => "SPICE_MSG_DISPLAY_STREAM_DATA",
        124 => "SPICE_MSG_DISPLAY_STREAM_CLIP",
        125 => "SPICE_MSG_DISPLAY_STREAM_DESTROY",
        126 => "SPICE_MSG_DISPLAY_STREAM_DESTROY_ALL",
        302 => "SPICE_MSG_DISPLAY_DRAW_FILL",
        303 => "SPICE_MSG_DISPLAY_DRAW_OPAQUE",
        304 => "SPICE_MSG_DISPLAY_DRAW_COPY",
        305 => "SPICE_MSG_DISPLAY_DRAW_BLEND",
        306 => "SPICE_MSG_DISPLAY_DRAW_BLACKNESS",
        307 => "SPICE_MSG_DISPLAY_DRAW_WHITENESS",
        308 => "SPICE_MSG_DISPLAY_DRAW_INVERS",
        309 => "SPICE_MSG_DISPLAY_DRAW_ROP3",
        310 => "SPICE_MSG_DISPLAY_DRAW_STROKE",
        311 => "SPICE_MSG_DISPLAY_DRAW_TEXT",
        312 => "SPICE_MSG_DISPLAY_DRAW_TRANSPARENT",
        313 => "SPICE_MSG_DISPLAY_DRAW_ALPHA_BLEND",
        314 => "SPICE_MSG_DISPLAY_SURFACE_CREATE",
        315 => "SPICE_MSG_DISPLAY_SURFACE_DESTROY",
        316 => "SPICE_MSG_DISPLAY_STREAM_DATA_SIZED",
        317 => "SPICE_MSG_DISPLAY_MONITORS_CONFIG",
        318 => "SPICE_MSG_DISPLAY_DRAW_COMPOSITE",
        319 => "SPICE_MSG_DISPLAY_STREAM_ACTIVATE_REPORT",
        320 => "SPICE_MSG_DISPLAY_GL_SCANOUT_UNIX",
        321 => "SPICE_MSG_DISPLAY_GL_DRAW",
        322 => "SPICE_MSG_DISPLAY_QUALITY_INDICATOR",
        _ => return None,
    })
}

fn display_client(ty: u16) -> Option<&'static str> {
    Some(match ty {
        101 => "SPICE_MSGC_DISPLAY_INIT",
        102 => "SPICE_MSGC_DISPLAY_STREAM_REPORT",
        103 => "SPICE_MSGC_DISPLAY_PREFERRED_COMPRESSION",
        104 => "SPICE_MSGC_DISPLAY_GL_DRAW_DONE",
        105 => "SPICE_MSGC_DISPLAY_PREFERRED_VIDEO_CODEC_TYPE",
        _ => return None,
    })
}

fn inputs_server(ty: u16) -> Option<&'static str> {
    Some(match ty {
        101 => "SPICE_MSG_INPUTS_INIT",
        102 => "SPICE_MSG_INPUTS_KEY_MODIFIERS",
        111 => "SPICE_MSG_INPUTS_MOUSE_MOTION_ACK",
        _ => return None,
    })
}

fn inputs_client(ty: u16) -> Option<&'static str> {
    Some(match ty {
        101 => "SPICE_MSGC_INPUTS_KEY_DOWN",
        102 => "SPICE_MSGC_INPUTS_KEY_UP",
        103 => "SPICE_MSGC_INPUTS_KEY_MODIFIERS",
        104 => "SPICE_MSGC_INPUTS_KEY_SCANCODE",
        111 => "SPICE_MSGC_INPUTS_MOUSE_MOTION",
        112 => "SPICE_MSGC_INPUTS_MOUSE_POSITION",
        113 => "SPICE_MSGC_INPUTS_MOUSE_PRESS",
        114 => "SPICE_MSGC_INPUTS_MOUSE_RELEASE",
        _ => return None,
    })
}

const CURSOR_S2C: [&str; 8] = [
    "SPICE_MSG_CURSOR_INIT",
    "SPICE_MSG_CURSOR_RESET",
    "SPICE_MSG_CURSOR_SET",
    "SPICE_MSG_CURSOR_MOVE",
    "SPICE_MSG_CURSOR_HIDE",
    "SPICE_MSG_CURSOR_TRAIL",
    "SPICE_MSG_CURSOR_INVAL_ONE",
    "SPICE_MSG_CURSOR_INVAL_ALL",
];

const PLAYBACK_S2C: [&str; 7] = [
    "SPICE_MSG_PLAYBACK_DATA",
    "SPICE_MSG_PLAYBACK_MODE",
    "SPICE_MSG_PLAYBACK_START",
    "SPICE_MSG_PLAYBACK_STOP",
    "SPICE_MSG_PLAYBACK_VOLUME",
    "SPICE_MSG_PLAYBACK_MUTE",
    "SPICE_MSG_PLAYBACK_LATENCY",
];

const RECORD_S2C: [&str; 4] = [
    "SPICE_MSG_RECORD_START",
    "SPICE_MSG_RECORD_STOP",
    "SPICE_MSG_RECORD_VOLUME",
    "SPICE_MSG_RECORD_MUTE",
];

const RECORD_C2S: [&str; 3] = [
    "SPICE_MSGC_RECORD_DATA",
    "SPICE_MSGC_RECORD_MODE",
    "SPICE_MSGC_RECORD_START_MARK",
];

/// Looks up `ty` in a table of consecutive numbers starting at 101.
fn from_101(table: &[&'static str], ty: u16) -> Option<&'static str> {
    ty.checked_sub(101)
        .and_then(|i| table.get(usize::from(i)))
        .copied()
}

/// The name of message `ty` sent in `dir` on a channel of `channel_type`,
/// or `None` when that channel does not define it. With no channel type
/// known only the base messages have names.
pub fn message_name(channel_type: Option<u8>, dir: Direction, ty: u16) -> Option<&'static str> {
    let server = dir == Direction::ServerToClient;
    if ty < 100 {
        return if server {
            base_server(ty)
        } else {
            base_client(ty)
        };
    }
    let vmc_server = |ty| match ty {
        101 => Some("SPICE_MSG_SPICEVMC_DATA"),
        102 => Some("SPICE_MSG_SPICEVMC_COMPRESSED_DATA"),
        _ => None,
    };
    let vmc_client = |ty| match ty {
        101 => Some("SPICE_MSGC_SPICEVMC_DATA"),
        102 => Some("SPICE_MSGC_SPICEVMC_COMPRESSED_DATA"),
        _ => None,
    };
    match (channel_type?, server) {
        (MAIN, true) => from_101(&MAIN_S2C, ty),
        (MAIN, false) => from_101(&MAIN_C2S, ty),
        (DISPLAY, true) => display_server(ty),
        (DISPLAY, false) => display_client(ty),
        (INPUTS, true) => inputs_server(ty),
        (INPUTS, false) => inputs_client(ty),
        (CURSOR, true) => from_101(&CURSOR_S2C, ty),
        (PLAYBACK, true) => from_101(&PLAYBACK_S2C, ty),
        (RECORD, true) => from_101(&RECORD_S2C, ty),
        (RECORD, false) => from_101(&RECORD_C2S, ty),
        (SMARTCARD, true) => (ty == 101).then_some("SPICE_MSG_SMARTCARD_DATA"),
        (SMARTCARD, false) => (ty == 101).then_some("SPICE_MSGC_SMARTCARD_DATA"),
        (USBREDIR, true) => vmc_server(ty),
        (USBREDIR, false) => vmc_client(ty),
        (PORT | WEBDAV, true) => match ty {
            201 => Some("SPICE_MSG_PORT_INIT"),
            202 => Some("SPICE_MSG_PORT_EVENT"),
            _ => vmc_server(ty),
        },
        (PORT | WEBDAV, false) => match ty {
            201 => Some("SPICE_MSGC_PORT_EVENT"),
            _ => vmc_client(ty),
        },
        _ => None,
    }
}

/// SpiceLinkErr names (also the reason of DISCONNECTING).
pub fn link_err_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "ERROR",
        2 => "INVALID_MAGIC",
        3 => "INVALID_DATA",
        4 => "VERSION_MISMATCH",
        5 => "NEED_SECURED",
        6 => "NEED_UNSECURED",
        7 => "PERMISSION_DENIED",
        8 => "BAD_CONNECTION_ID",
        9 => "CHANNEL_NOT_AVAILABLE",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_depend_on_channel_and_direction() {
        let s2c = Direction::ServerToClient;
        let c2s = Direction::ClientToServer;
        assert_eq!(message_name(Some(MAIN), s2c, 4), Some("SPICE_MSG_PING"));
        assert_eq!(message_name(None, c2s, 3), Some("SPICE_MSGC_PONG"));
        assert_eq!(
            message_name(Some(MAIN), s2c, 103),
            Some("SPICE_MSG_MAIN_INIT")
        );
        assert_eq!(
            message_name(Some(MAIN), s2c, 118),
            Some("SPICE_MSG_MAIN_MIGRATE_DST_SEAMLESS_NACK")
        );
        assert_eq!(message_name(Some(MAIN), s2c, 119), None);
        assert_eq!(
            message_name(Some(DISPLAY), s2c, 304),
            Some("SPICE_MSG_DISPLAY_DRAW_COPY")
        );
        assert_eq!(
            message_name(Some(INPUTS), c2s, 103),
            Some("SPICE_MSGC_INPUTS_KEY_MODIFIERS")
        );
        assert_eq!(message_name(Some(CURSOR), c2s, 101), None);
        assert_eq!(message_name(None, s2c, 101), None);
        assert_eq!(
            message_name(Some(WEBDAV), s2c, 201),
            Some("SPICE_MSG_PORT_INIT")
        );
        assert_eq!(channel_type("usbredir"), Some(USBREDIR));
        assert_eq!(channel_name(12), None);
    }
}
