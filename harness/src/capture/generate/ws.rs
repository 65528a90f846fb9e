//! WebSocket as noVNC and websockify put it on the wire: a browser upgrade
//! with the `binary` subprotocol, masked client frames one per flush,
//! unmasked server frames one per `recv()` from the VNC socket (so RFB
//! message boundaries are not kept), websockify's empty heartbeat pings.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngExt;
use rand_xorshift::XorShiftRng;
use sha1::{Digest, Sha1};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The client's upgrade request and the server's 101 answer.
pub fn upgrade(rng: &mut XorShiftRng, port: u16) -> (Vec<u8>, Vec<u8>) {
    let key_bytes: [u8; 16] = rng.random();
    let key = BASE64.encode(key_bytes);
    let token: u64 = rng.random();
    let request = format!(
        "GET /websockify?token={token:016x} HTTP/1.1\r\n\
         Host: 127.0.0.1:{port}\r\n\
         Connection: Upgrade\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36\r\n\
         Upgrade: websocket\r\n\
         Origin: http://127.0.0.1:{port}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Accept-Encoding: gzip, deflate, br\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    );
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Server: WebSockify Python/3.11.2\r\n\
         Date: Mon, 23 Nov 2026 12:00:00 GMT\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n",
        accept_key(&key)
    );
    (request.into_bytes(), response.into_bytes())
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// Appends one final frame with the shortest length encoding; `mask` is
/// applied as a client must.
pub fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
    }
}

/// Client side: one masked binary frame per write, as the browser sends a
/// flush of noVNC's send queue.
pub fn client_frames(rng: &mut XorShiftRng, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    frame(opcode, payload, Some(rng.random()), &mut out);
    out
}

/// Server side: websockify forwards each `recv()` of up to 64 KiB from the
/// VNC socket as one binary frame, wherever RFB messages begin or end.
pub fn server_frames(rng: &mut XorShiftRng, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 1024 + 14);
    let mut rest = bytes;
    while !rest.is_empty() {
        let cap = if rng.random_bool(0.5) {
            65536
        } else {
            rng.random_range(1024..=65536usize)
        };
        let (now, later) = rest.split_at(cap.min(rest.len()));
        frame(OP_BINARY, now, None, &mut out);
        rest = later;
    }
    out
}

/// The close handshake noVNC starts on disconnect: 1000 both ways.
pub fn close_pair(rng: &mut XorShiftRng) -> (Vec<u8>, Vec<u8>) {
    let code = 1000u16.to_be_bytes();
    let client = client_frames(rng, OP_CLOSE, &code);
    let mut server = Vec::new();
    frame(OP_CLOSE, &code, None, &mut server);
    (client, server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_use_the_shortest_length_encoding() {
        let mut out = Vec::new();
        frame(OP_BINARY, &[7; 125], None, &mut out);
        assert_eq!(&out[..2], &[0x82, 125]);
        out.clear();
        frame(OP_BINARY, &[7; 126], None, &mut out);
        assert_eq!(&out[..4], &[0x82, 126, 0, 126]);
        out.clear();
        frame(OP_BINARY, &vec![7; 65536], Some([1, 2, 3, 4]), &mut out);
        assert_eq!(&out[..2], &[0x82, 0x80 | 127]);
        assert_eq!(&out[2..10], &65536u64.to_be_bytes());
        assert_eq!(&out[10..14], &[1, 2, 3, 4]);
        assert_eq!(&out[14..18], &[6, 5, 4, 3]);
    }
}
