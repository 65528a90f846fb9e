//! Guessing a connection's protocol from its first bytes (and, for
//! bug-report captures with no handshake, from the port convention).

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Spice,
    Rfb,
    /// An HTTP/1.1 request asking to upgrade to WebSocket.
    #[serde(rename = "websocket")]
    WebSocket,
    /// Plain HTTP with no upgrade.
    Http,
    Tls,
    Unknown,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Spice => "spice",
            Protocol::Rfb => "rfb",
            Protocol::WebSocket => "websocket",
            Protocol::Http => "http",
            Protocol::Tls => "tls",
            Protocol::Unknown => "unknown",
        }
    }
}

/// What sniffing concluded so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    Known(Protocol),
    /// Not enough bytes yet to tell.
    NeedMore,
}

/// Longest prefix sniffing ever looks at; past it the answer is `Unknown`.
pub const MAX_SNIFF_BYTES: usize = 2048;

/// The SPICE server port and client ports of ryll's bug-report pcaps
/// (`shared/ryll-bugreport.md` §2.2): server always 5900, client port per
/// channel. Returns the SPICE channel type number.
pub fn ryll_port_channel(client_port: u16, server_port: u16) -> Option<u8> {
    if server_port != 5900 {
        return None;
    }
    match client_port {
        10001 => Some(1), // main
        10002 => Some(2), // display
        10003 => Some(3), // inputs
        10004 => Some(4), // cursor
        10009 => Some(9), // usbredir
        10099 => Some(5), // "anything else": playback in the ring
        _ => None,
    }
}

/// Sniff from the first bytes each side sent. `client` / `server` are the
/// prefixes seen so far in each direction.
pub fn sniff(client: &[u8], server: &[u8]) -> Sniff {
    if client.len() >= 4 {
        if client.starts_with(b"REDQ") {
            return Sniff::Known(Protocol::Spice);
        }
        if client[0] == 0x16 && client[1] == 0x03 && client[2] <= 0x04 {
            return Sniff::Known(Protocol::Tls);
        }
        if let Some(p) = sniff_http(client) {
            return p;
        }
    }
    // RFB: the server speaks first with "RFB xxx.yyy\n".
    if server.len() >= 12 {
        if is_rfb_version(&server[..12]) {
            return Sniff::Known(Protocol::Rfb);
        }
    } else if !server.is_empty() && b"RFB ".starts_with(&server[..server.len().min(4)]) {
        return Sniff::NeedMore;
    }
    if client.len() < 4 && (client.is_empty() || could_be_known_prefix(client)) {
        if server.len() >= 12 || (client.len() + server.len()) >= MAX_SNIFF_BYTES {
            return Sniff::Known(Protocol::Unknown);
        }
        return Sniff::NeedMore;
    }
    Sniff::Known(Protocol::Unknown)
}

fn could_be_known_prefix(client: &[u8]) -> bool {
    let n = client.len();
    b"REDQ".starts_with(client)
        || b"GET ".starts_with(client)
        || (client[0] == 0x16 && (n < 2 || client[1] == 0x03))
        || client.iter().all(|b| b.is_ascii_uppercase())
}

/// `RFB 003.008\n`: digits in the version fields, newline at the end.
pub fn is_rfb_version(b: &[u8]) -> bool {
    b.len() >= 12
        && &b[..4] == b"RFB "
        && b[4..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'.'
        && b[8..11].iter().all(u8::is_ascii_digit)
        && b[11] == b'\n'
}

fn sniff_http(client: &[u8]) -> Option<Sniff> {
    const METHODS: [&[u8]; 8] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"OPTIONS ",
        b"DELETE ",
        b"PATCH ",
        b"CONNECT ",
    ];
    let is_http = METHODS
        .iter()
        .any(|m| client.len() >= m.len() && client.starts_with(m));
    if !is_http {
        return None;
    }
    let head_end = find(client, b"\r\n\r\n");
    let head = match head_end {
        Some(end) => &client[..end],
        None if client.len() < MAX_SNIFF_BYTES => return Some(Sniff::NeedMore),
        None => client,
    };
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let upgrade = lower
        .split(|&b| b == b'\n')
        .any(|line| line.starts_with(b"upgrade:") && find(line, b"websocket").is_some());
    Some(Sniff::Known(if upgrade {
        Protocol::WebSocket
    } else {
        Protocol::Http
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_protocol_from_its_first_bytes() {
        assert_eq!(sniff(b"REDQ\x02\0\0\0", b""), Sniff::Known(Protocol::Spice));
        assert_eq!(sniff(b"", b"RFB 003.008\n"), Sniff::Known(Protocol::Rfb));
        assert_eq!(sniff(b"", b"RFB 003.889\n"), Sniff::Known(Protocol::Rfb));
        assert_eq!(
            sniff(b"\x16\x03\x01\x02\x00", b""),
            Sniff::Known(Protocol::Tls)
        );
        let upgrade = b"GET /websockify HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(sniff(upgrade, b""), Sniff::Known(Protocol::WebSocket));
        let plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(sniff(plain, b""), Sniff::Known(Protocol::Http));
        assert_eq!(
            sniff(b"SSH-2.0-OpenSSH\r\n", b""),
            Sniff::Known(Protocol::Unknown)
        );
    }

    #[test]
    fn waits_for_more_bytes_on_a_partial_prefix() {
        assert_eq!(sniff(b"", b""), Sniff::NeedMore);
        assert_eq!(sniff(b"RE", b""), Sniff::NeedMore);
        assert_eq!(sniff(b"", b"RFB 00"), Sniff::NeedMore);
        assert_eq!(sniff(b"GET /x HTTP/1.1\r\nHost", b""), Sniff::NeedMore);
    }

    #[test]
    fn ryll_port_convention_names_channels() {
        assert_eq!(ryll_port_channel(10001, 5900), Some(1));
        assert_eq!(ryll_port_channel(10002, 5900), Some(2));
        assert_eq!(ryll_port_channel(10001, 5901), None);
        assert_eq!(ryll_port_channel(12345, 5900), None);
    }
}
