//! The HTTP/1.1 opening handshake (6455 §4): request and response heads,
//! the Sec-WebSocket-Accept check, subprotocol and extension negotiation.

use base64::Engine;
use sha1::{Digest, Sha1};

/// Longest HTTP head accepted before the decoder gives up on the handshake.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A parsed head: start line and headers (names lower-cased, repeated
/// headers joined with ", " as HTTP allows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the bytes before the blank line. `None` if a header line has no
/// colon or the start line is empty.
pub fn parse_head(head: &[u8]) -> Option<Head> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let start_line = lines.next()?.trim().to_string();
    if start_line.is_empty() {
        return None;
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    Some(Head {
        start_line,
        headers,
    })
}

/// The client's upgrade request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub version: String,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub key: Option<String>,
    pub ws_version: Option<String>,
    pub protocols: Vec<String>,
    pub extensions: Vec<Extension>,
}

pub fn request(head: &Head) -> Request {
    let mut parts = head.start_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default().to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    Request {
        method,
        path,
        query,
        version,
        host: head.get("host").map(str::to_string),
        origin: head.get("origin").map(str::to_string),
        key: head.get("sec-websocket-key").map(str::to_string),
        ws_version: head.get("sec-websocket-version").map(str::to_string),
        protocols: head
            .get("sec-websocket-protocol")
            .map(list)
            .unwrap_or_default(),
        extensions: head
            .get("sec-websocket-extensions")
            .map(extensions)
            .unwrap_or_default(),
    }
}

/// The server's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: Option<u16>,
    pub reason: String,
    pub accept: Option<String>,
    pub protocol: Option<String>,
    pub extensions: Vec<Extension>,
}

pub fn response(head: &Head) -> Response {
    let mut parts = head.start_line.splitn(3, ' ');
    let _version = parts.next();
    let status = parts.next().and_then(|s| s.trim().parse().ok());
    let reason = parts.next().unwrap_or_default().trim().to_string();
    Response {
        status,
        reason,
        accept: head.get("sec-websocket-accept").map(str::to_string),
        protocol: head
            .get("sec-websocket-protocol")
            .map(|p| p.trim().to_string()),
        extensions: head
            .get("sec-websocket-extensions")
            .map(extensions)
            .unwrap_or_default(),
    }
}

/// base64(SHA-1(key + GUID)) (6455 §4.2.2).
pub fn expected_accept(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One offered or accepted extension with its parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extension {
    pub name: String,
    pub params: Vec<(String, Option<String>)>,
}

impl Extension {
    pub fn has(&self, param: &str) -> bool {
        self.params.iter().any(|(n, _)| n == param)
    }
}

impl std::fmt::Display for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, "; {n}={v}")?,
                None => write!(f, "; {n}")?,
            }
        }
        Ok(())
    }
}

/// `permessage-deflate; client_max_window_bits, x-foo` (RFC 6455 §9.1).
pub fn extensions(v: &str) -> Vec<Extension> {
    v.split(',')
        .filter_map(|ext| {
            let mut parts = ext.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?.to_ascii_lowercase();
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((n, v)) => (
                        n.trim().to_ascii_lowercase(),
                        Some(v.trim().trim_matches('"').to_string()),
                    ),
                    None => (p.to_ascii_lowercase(), None),
                })
                .collect();
            Some(Extension { name, params })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matches_the_rfc_example() {
        assert_eq!(
            expected_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn request_fields_and_repeated_headers() {
        let head = parse_head(
            b"GET /websockify?token=abc HTTP/1.1\r\nHost: h:1\r\nSec-WebSocket-Protocol: binary\r\nsec-websocket-protocol: base64\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        )
        .unwrap();
        let r = request(&head);
        assert_eq!(r.path, "/websockify");
        assert_eq!(r.query.as_deref(), Some("token=abc"));
        assert_eq!(r.protocols, vec!["binary", "base64"]);
        assert_eq!(r.extensions[0].name, "permessage-deflate");
        assert!(r.extensions[0].has("client_max_window_bits"));
        assert!(parse_head(b"GET / HTTP/1.1\r\nno colon here\r\n").is_none());
    }
}
