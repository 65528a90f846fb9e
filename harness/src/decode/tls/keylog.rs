//! TLS secrets from an NSS key log (`SSLKEYLOGFILE`, as Chromium, Firefox,
//! curl, Python's `ssl` and GnuTLS write it) or from pcapng Decryption
//! Secrets Blocks (`editcap --inject-secrets`), which carry the same text.
//!
//! Format (NSS, "Key Log Format"): one `LABEL <client_random hex>
//! <secret hex>` per line; `#` starts a comment. TLS 1.2 logs
//! `CLIENT_RANDOM` (the 48-byte master secret); TLS 1.3 logs the traffic
//! secrets of each epoch (RFC 8446 §7.1).

use super::findings::TlsFinding;
use crate::timeline::kinds::FindingKind;
use crate::timeline::{Finding, Location};
use std::collections::HashMap;
use std::sync::RwLock;

/// The secrets one connection's client random names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS 1.2 (and earlier): the master secret.
    pub master: Option<Vec<u8>>,
    pub client_handshake: Option<Vec<u8>>,
    pub server_handshake: Option<Vec<u8>>,
    /// The first application traffic secrets; later ones follow by
    /// KeyUpdate (RFC 8446 §7.2).
    pub client_traffic0: Option<Vec<u8>>,
    pub server_traffic0: Option<Vec<u8>>,
}

/// Secrets by client random.
#[derive(Clone, Debug, Default)]
pub struct KeyLog {
    by_random: HashMap<[u8; 32], Secrets>,
}

/// Lines longer than this are not key log lines (the longest real one is
/// a label, 64 hex digits and 96 for a SHA-384 secret).
const MAX_LINE: usize = 512;

impl KeyLog {
    /// Reads a key log's text. Lines that are not key log lines (garbage,
    /// bad hex, unknown labels are kept apart: unknown labels such as
    /// `EXPORTER_SECRET` are skipped silently) are reported with their
    /// line number in `source` and skipped; the rest is used.
    pub fn parse(text: &[u8], source: &str, findings: &mut Vec<Finding>) -> KeyLog {
        let mut log = KeyLog::default();
        log.add(text, source, findings);
        log
    }

    /// Adds the secrets of another key log text.
    pub fn add(&mut self, text: &[u8], source: &str, findings: &mut Vec<Finding>) {
        let mut bad = 0usize;
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            // A Decryption Secrets Block pads its text with NULs to 4 bytes.
            let end = line.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
            let trimmed = line[..end].trim_ascii();
            if trimmed.is_empty() || trimmed.starts_with(b"#") {
                continue;
            }
            match parse_line(trimmed) {
                Ok(Some((label, random, secret))) => {
                    let s = self.by_random.entry(random).or_default();
                    let slot = match label {
                        Label::ClientRandom => &mut s.master,
                        Label::ClientHandshake => &mut s.client_handshake,
                        Label::ServerHandshake => &mut s.server_handshake,
                        Label::ClientTraffic0 => &mut s.client_traffic0,
                        Label::ServerTraffic0 => &mut s.server_traffic0,
                    };
                    *slot = Some(secret);
                }
                Ok(None) => {}
                Err(why) => {
                    bad += 1;
                    // One finding per bad line would let a garbage file
                    // flood the report; the first few locate the problem.
                    if bad <= 3 {
                        findings.push(TlsFinding::KeylogBadLine.at(
                            format!("{source}:{}: {why}; line skipped", n + 1),
                            Location {
                                file: Some(source.to_string()),
                                ..Location::default()
                            },
                        ));
                    }
                }
            }
        }
        if bad > 3 {
            findings.push(TlsFinding::KeylogBadLine.at(
                format!("{source}: {} more lines are not key log lines", bad - 3),
                Location {
                    file: Some(source.to_string()),
                    ..Location::default()
                },
            ));
        }
    }

    pub fn get(&self, client_random: &[u8]) -> Option<&Secrets> {
        let key: [u8; 32] = client_random.try_into().ok()?;
        self.by_random.get(&key)
    }

    pub fn len(&self) -> usize {
        self.by_random.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_random.is_empty()
    }
}

#[derive(Clone, Copy)]
enum Label {
    ClientRandom,
    ClientHandshake,
    ServerHandshake,
    ClientTraffic0,
    ServerTraffic0,
}

/// One key log line: which secret, the client random, the secret.
type Line = (Label, [u8; 32], Vec<u8>);

/// `Ok(None)` for a well-formed line with a label tether has no use for.
fn parse_line(line: &[u8]) -> Result<Option<Line>, String> {
    if line.len() > MAX_LINE {
        return Err(format!("line of {} bytes is too long", line.len()));
    }
    let text = std::str::from_utf8(line).map_err(|_| "not text".to_string())?;
    let mut parts = text.split_ascii_whitespace();
    let (Some(label), Some(random), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected LABEL CLIENT_RANDOM SECRET".into());
    };
    let label = match label {
        "CLIENT_RANDOM" => Label::ClientRandom,
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshake,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshake,
        "CLIENT_TRAFFIC_SECRET_0" => Label::ClientTraffic0,
        "SERVER_TRAFFIC_SECRET_0" => Label::ServerTraffic0,
        l if l
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            return Ok(None);
        }
        l => return Err(format!("label {l:?} is not a key log label")),
    };
    let random = hex::decode(random).map_err(|_| "client random is not hex")?;
    let random: [u8; 32] = random
        .try_into()
        .map_err(|r: Vec<u8>| format!("client random has {} bytes, not 32", r.len()))?;
    let secret = hex::decode(secret).map_err(|_| "secret is not hex")?;
    if !matches!(secret.len(), 32 | 48 | 64) {
        return Err(format!(
            "secret has {} bytes (32, 48 or 64 expected)",
            secret.len()
        ));
    }
    Ok(Some((label, random, secret)))
}

/// The key log a decode shares between its connections (and worker
/// threads): the one given, and the secrets of Decryption Secrets Blocks
/// as the capture is read. A block's secrets serve only the frames after
/// it, so whether a connection finds its keys depends on the capture's
/// order alone, never on how far the reading thread has run ahead of a
/// worker.
#[derive(Debug, Default)]
pub struct KeyStore {
    log: RwLock<KeyLog>,
    /// Each block's secrets with the first frame they serve.
    blocks: RwLock<Vec<(u64, KeyLog)>>,
}

impl KeyStore {
    pub fn new(log: KeyLog) -> KeyStore {
        KeyStore {
            log: RwLock::new(log),
            blocks: RwLock::default(),
        }
    }

    /// Secrets for the frames from `from` on (a block read before it).
    pub fn add_from_frame(
        &self,
        from: u64,
        text: &[u8],
        source: &str,
        findings: &mut Vec<Finding>,
    ) {
        let block = KeyLog::parse(text, source, findings);
        if let Ok(mut blocks) = self.blocks.write() {
            blocks.push((from, block));
        }
    }

    /// The secrets of `client_random` known at `frame`.
    pub fn get(&self, client_random: &[u8], frame: u64) -> Option<Secrets> {
        let mut found = self.log.read().ok()?.get(client_random).cloned();
        for (from, block) in self.blocks.read().ok()?.iter() {
            if *from <= frame
                && let Some(more) = block.get(client_random)
            {
                found.get_or_insert_with(Secrets::default).take_from(more);
            }
        }
        found
    }

    /// No secret known at `frame`: TLS then shows only what the wire does,
    /// and a connection without keys is no finding.
    pub fn is_empty_at(&self, frame: u64) -> bool {
        self.log.read().map_or(true, |l| l.is_empty())
            && self.blocks.read().map_or(true, |b| {
                b.iter().all(|(from, l)| *from > frame || l.is_empty())
            })
    }
}

impl Secrets {
    /// Each secret `more` has replaces this one's: a later line wins, as
    /// in one key log.
    fn take_from(&mut self, more: &Secrets) {
        for (mine, theirs) in [
            (&mut self.master, &more.master),
            (&mut self.client_handshake, &more.client_handshake),
            (&mut self.server_handshake, &more.server_handshake),
            (&mut self.client_traffic0, &more.client_traffic0),
            (&mut self.server_traffic0, &more.server_traffic0),
        ] {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_versions_and_locates_garbage() {
        let r = "ab".repeat(32);
        let text = format!(
            "# comment\nCLIENT_RANDOM {r} {}\r\nSERVER_TRAFFIC_SECRET_0 {r} {}\nEXPORTER_SECRET {r} {}\nnot a key log line\nCLIENT_RANDOM zz {}\n",
            "11".repeat(48),
            "22".repeat(32),
            "33".repeat(32),
            "44".repeat(48)
        );
        let mut findings = Vec::new();
        let log = KeyLog::parse(text.as_bytes(), "keys.txt", &mut findings);
        let s = log.get(&[0xab; 32]).unwrap();
        assert_eq!(s.master.as_deref(), Some(&[0x11; 48][..]));
        assert_eq!(s.server_traffic0.as_deref(), Some(&[0x22; 32][..]));
        assert_eq!(s.client_traffic0, None);
        let lines: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("keys.txt:5: "), "{lines:?}");
        assert!(lines[1].starts_with("keys.txt:6: client random is not hex"));
    }

    #[test]
    fn a_flood_of_garbage_is_summarised() {
        let text = "x\n".repeat(100);
        let mut findings = Vec::new();
        let log = KeyLog::parse(text.as_bytes(), "k", &mut findings);
        assert!(log.is_empty());
        assert_eq!(findings.len(), 4);
        assert!(findings[3].message.contains("97 more lines"));
    }
}
