//! TLS decryption on recorded sessions (`corpora/record/tls/`, scripts and
//! README there): noVNC in Chromium over wss (TLS 1.3, TLS 1.2 AES-GCM and
//! ChaCha20-Poly1305, and a pcapng with the keys in a Decryption Secrets
//! Block), SPICE over QEMU's tls-port (TLS 1.3, 1.2, 1.3 and 1.2 resumption,
//! and a client that hangs until the server's connectivity timer drops it),
//! and VeNCrypt X509None (TLS 1.3, 1.2, and 1.3 with a HelloRetryRequest
//! and KeyUpdates both ways), each beside its plaintext twin.
//!
//! Checked: every TLS record tshark lists (`-o tls.keylog_file`), frame for
//! frame, with the same content and handshake types; the plaintext bytes
//! each way equal to what tshark follows; the protocol inside decodes
//! message for message as the plaintext twin of the same scripted session;
//! triage gives the twin's verdict; a wrong key and a garbage key log are
//! located findings, never a panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tether::decode::pipeline::{ConnectionReport, DecodeOptions, DecodeReport, decode_capture};
use tether::decode::tls::keylog::{KeyLog, KeyStore};
use tether::timeline::{Direction, EventKind};
use tether::triage::{TriageOptions, triage_reader};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/record/tls")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn keylog(name: &str) -> Option<KeyLog> {
    let path = dir().join(format!("{name}.keys"));
    let text = std::fs::read(&path).ok()?;
    let mut findings = Vec::new();
    let log = KeyLog::parse(&text, name, &mut findings);
    assert!(findings.is_empty(), "{name}: {findings:?}");
    Some(log)
}

fn decode_with(file: &str, log: Option<KeyLog>) -> DecodeReport {
    let options = DecodeOptions {
        keep_events: true,
        keys: log.map(|l| Arc::new(KeyStore::new(l))),
        ..DecodeOptions::default()
    };
    decode_capture(&read(file)[..], file, options).unwrap()
}

fn decode(name: &str) -> DecodeReport {
    decode_with(&format!("{name}.pcap"), keylog(name))
}

/// Rows of one `## TITLE` section of a `.tshark.txt`, tab-split.
fn section(name: &str, title: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir().join(format!("{name}.tshark.txt"))).unwrap();
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("## ") {
            inside = t.starts_with(title);
            continue;
        }
        if inside && !line.starts_with('#') && !line.trim().is_empty() {
            rows.push(line.split('\t').map(str::to_string).collect());
        }
    }
    assert!(!rows.is_empty(), "{name}: no section {title}");
    rows
}

fn split(cell: &str) -> Vec<u32> {
    cell.split(',').filter_map(|v| v.parse().ok()).collect()
}

/// A TLS record's identity as tshark and tether can both name it: a
/// handshake message type, or a record content type.
fn tshark_records(name: &str) -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for row in section(name, "TLS records") {
        let frame: u64 = row[0].parse().unwrap();
        let outer = split(&row[5]);
        let inner = split(&row[6]);
        // TLS 1.3: `opaque_type` is the outer 23 of each protected record,
        // `content_type` lists every record with its real type.
        let types = if inner.is_empty() { outer } else { inner };
        let v = out.entry(frame).or_default();
        for t in types {
            if t != 22 {
                v.push(format!("type {t}"));
            }
        }
        for h in split(&row[8]) {
            v.push(format!("handshake {h}"));
        }
        v.sort();
    }
    out
}

fn handshake_type(name: &str) -> Option<u32> {
    Some(match name {
        "ClientHello" => 1,
        "ServerHello" | "HelloRetryRequest" => 2,
        "NewSessionTicket" => 4,
        "EncryptedExtensions" => 8,
        "Certificate" => 11,
        "ServerKeyExchange" => 12,
        "CertificateRequest" => 13,
        "ServerHelloDone" => 14,
        "CertificateVerify" => 15,
        "ClientKeyExchange" => 16,
        "Finished" => 20,
        "KeyUpdate" => 24,
        _ => return None,
    })
}

fn tether_records(c: &ConnectionReport) -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for e in &c.events {
        let EventKind::Message {
            protocol: "tls",
            name,
            ..
        } = &e.kind
        else {
            continue;
        };
        let id = match name.as_ref() {
            "ChangeCipherSpec" => "type 20".to_string(),
            "Alert" | "encrypted_alert" => "type 21".to_string(),
            "application_data" => "type 23".to_string(),
            n => match handshake_type(n) {
                Some(h) => format!("handshake {h}"),
                // Not a record (the inferred close_notify).
                None => continue,
            },
        };
        out.entry(e.frame.unwrap()).or_default().push(id);
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Plaintext bytes each way, as tshark's `follow,tls` counts them.
fn tshark_plaintext(name: &str) -> Vec<(u64, u64)> {
    section(name, "Streams")
        .into_iter()
        .filter(|r| r[1] == "tls")
        .map(|r| (r[2].parse().unwrap(), r[4].parse().unwrap()))
        .collect()
}

fn tether_plaintext(c: &ConnectionReport) -> (u64, u64) {
    let mut bytes = [0u64; 2];
    for e in &c.events {
        if let EventKind::Message {
            protocol: "tls",
            name,
            detail,
            ..
        } = &e.kind
            && name == "application_data"
            && let Some((_, v)) = detail.iter().find(|(k, _)| k == "plaintext")
        {
            bytes[e.direction.unwrap().index()] += v.as_u64().unwrap();
        }
    }
    (bytes[0], bytes[1])
}

const ENCRYPTED: [&str; 11] = [
    "novnc-wss-tls13",
    "novnc-wss-tls12",
    "novnc-wss-tls12-chacha",
    "spice-tls",
    "spice-tls12",
    "spice-tls13-resume",
    "spice-tls12-resume",
    "spice-tls12-frozen",
    "vencrypt-tls",
    "vencrypt-tls12",
    "vencrypt-tls13-hrr-keyupdate",
];

#[test]
fn every_record_matches_tshark_and_no_record_fails() {
    for name in ENCRYPTED {
        let r = decode(name);
        let theirs = tshark_records(name);
        let mut ours = BTreeMap::new();
        for c in &r.connections {
            let codes: Vec<&str> = c.findings.iter().map(|f| f.code.as_ref()).collect();
            assert!(
                !codes
                    .iter()
                    .any(|c| c.starts_with("tls.decrypt") || *c == "tls.no_key"),
                "{name}: {codes:?}"
            );
            ours.extend(tether_records(c));
        }
        // tshark's TLS sections of the VeNCrypt recordings start at the
        // ClientHello (its VNC dissector loses TLS otherwise).
        let first = *theirs.keys().next().unwrap();
        ours.retain(|f, _| *f >= first);
        assert_eq!(ours, theirs, "{name}");
        let plain: Vec<(u64, u64)> = r.connections.iter().map(tether_plaintext).collect();
        assert_eq!(plain, tshark_plaintext(name), "{name}");
    }
}

#[test]
fn each_layer_is_named_in_the_stack() {
    let stacks = |name: &str| -> Vec<String> {
        decode(name)
            .connections
            .iter()
            .map(|c| c.stack.join("/"))
            .collect()
    };
    assert_eq!(stacks("novnc-wss-tls13"), ["tcp/tls/ws/rfb"]);
    assert_eq!(stacks("spice-tls12"), ["tcp/tls/spice"; 3]);
    assert_eq!(
        stacks("vencrypt-tls13-hrr-keyupdate"),
        ["tcp/rfb/vencrypt-tls/rfb"]
    );
    // Without keys: the handshake, and nothing inside TLS.
    let r = decode_with("novnc-wss-tls13.pcap", None);
    assert_eq!(r.connections[0].stack, ["tcp", "tls"]);
    assert_eq!(r.connections[0].counts.c2s.get("ClientHello"), Some(&1));
}

/// The inner protocol's messages, by channel (SPICE) and direction.
fn inner(r: &DecodeReport, protocol: &str) -> BTreeMap<(String, Direction), Vec<String>> {
    let mut out: BTreeMap<(String, Direction), Vec<String>> = BTreeMap::new();
    for c in &r.connections {
        for e in &c.events {
            let name = match &e.kind {
                EventKind::Message {
                    protocol: p, name, ..
                } if *p == protocol => name.to_string(),
                EventKind::Ping { protocol: p, .. } if *p == protocol => "ping".into(),
                EventKind::Pong { protocol: p, .. } if *p == protocol => "pong".into(),
                _ => continue,
            };
            let channel = e.channel.as_deref().unwrap_or("-").to_string();
            out.entry((channel, e.direction.unwrap()))
                .or_default()
                .push(name);
        }
    }
    out
}

/// The recording scripts drive each twin the same way; the README says
/// where the runs may differ (the server's timing), so the client's side
/// is compared whole and the server's as the messages it sends.
#[test]
fn decrypted_sessions_decode_like_their_plaintext_twins() {
    let c2s = Direction::ClientToServer;
    for (twin, protocol, encrypted) in [
        (
            "novnc-ws-plain",
            "rfb",
            &[
                "novnc-wss-tls13",
                "novnc-wss-tls12",
                "novnc-wss-tls12-chacha",
            ][..],
        ),
        (
            "spice-plain",
            "spice",
            &[
                "spice-tls",
                "spice-tls12",
                "spice-tls13-resume",
                "spice-tls12-resume",
            ][..],
        ),
    ] {
        let plain = inner(&decode_with(&format!("{twin}.pcap"), None), protocol);
        for name in encrypted {
            let ours = inner(&decode(name), protocol);
            let client = |m: &BTreeMap<(String, Direction), Vec<String>>| {
                m.iter()
                    .filter(|((_, d), _)| *d == c2s)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(client(&ours), client(&plain), "{name} against {twin}");
            let kinds = |m: &BTreeMap<(String, Direction), Vec<String>>| {
                let mut s: Vec<(String, String)> = m
                    .iter()
                    .filter(|((_, d), _)| *d != c2s)
                    .flat_map(|((ch, _), v)| v.iter().map(move |n| (ch.clone(), n.clone())))
                    .collect();
                s.sort();
                s.dedup();
                // spice-server tells a plaintext client its keyboard channel is
                // insecure (README: the twin's one extra message).
                s.retain(|(_, n)| n != "SPICE_MSG_NOTIFY");
                s
            };
            assert_eq!(kinds(&ours), kinds(&plain), "{name} against {twin}");
        }
    }
    // VeNCrypt: the RFB inside TLS is the twin's from SecurityResult on;
    // how many 0.3 s rounds fit differs, so the kinds are compared.
    let plain = inner(&decode_with("vnc-plain.pcap", None), "rfb");
    let after_security = |m: &BTreeMap<(String, Direction), Vec<String>>| {
        let mut out = BTreeMap::new();
        for ((_, d), v) in m {
            let from = v
                .iter()
                .position(|n| n == "SecurityResult" || n == "ClientInit")
                .unwrap_or(v.len());
            let mut kinds: Vec<String> = v[from..].to_vec();
            kinds.sort();
            kinds.dedup();
            out.insert(*d, kinds);
        }
        out
    };
    for name in [
        "vencrypt-tls",
        "vencrypt-tls12",
        "vencrypt-tls13-hrr-keyupdate",
    ] {
        let ours = inner(&decode(name), "rfb");
        assert_eq!(after_security(&ours), after_security(&plain), "{name}");
    }
}

#[test]
fn decryption_secrets_blocks_need_no_key_log() {
    let with_keys = decode("novnc-wss-tls13");
    // The DSB copy is the same capture with the key log inside it.
    let dsb = decode_with("novnc-wss-tls13.dsb.pcapng", None);
    assert!(dsb.diagnostics.is_empty(), "{:?}", dsb.diagnostics);
    assert_eq!(dsb.connections[0].stack, with_keys.connections[0].stack);
    assert_eq!(dsb.connections[0].counts, with_keys.connections[0].counts);
}

#[test]
fn triage_of_encrypted_sessions_gives_their_twins_verdicts() {
    let verdict = |file: &str, keys: Option<KeyLog>| {
        let options = TriageOptions {
            no_what_if: true,
            keys,
            ..TriageOptions::default()
        };
        let t = triage_reader(&read(file)[..], file, false, &options).unwrap();
        let head = &t.sessions[t.primary.unwrap()];
        (
            t.outcome,
            t.cause.clone(),
            t.closed_by,
            head.profile.clone(),
        )
    };
    for (twin, encrypted) in [
        (
            "novnc-ws-plain",
            &[
                "novnc-wss-tls13",
                "novnc-wss-tls12",
                "novnc-wss-tls12-chacha",
            ][..],
        ),
        (
            "spice-plain",
            &[
                "spice-tls",
                "spice-tls12",
                "spice-tls13-resume",
                "spice-tls12-resume",
            ][..],
        ),
        (
            "vnc-plain",
            &[
                "vencrypt-tls",
                "vencrypt-tls12",
                "vencrypt-tls13-hrr-keyupdate",
            ][..],
        ),
    ] {
        let expected = verdict(&format!("{twin}.pcap"), None);
        for name in encrypted {
            assert_eq!(
                verdict(&format!("{name}.pcap"), keylog(name)),
                expected,
                "{name} against {twin}"
            );
        }
    }
}

#[test]
fn a_wrong_key_and_a_garbage_key_log_are_located() {
    // Every secret off by one bit: each direction says, once, where its
    // first record failed; the handshake before it is still read.
    let text = std::fs::read_to_string(dir().join("spice-tls12.keys")).unwrap();
    let wrong: String = text
        .lines()
        .map(|l| {
            let mut l = l.to_string();
            if let Some(last) = l.pop() {
                l.push(if last == '0' { '1' } else { '0' });
            }
            l + "\n"
        })
        .collect();
    let mut findings = Vec::new();
    let log = KeyLog::parse(
        format!("garbage line\n{wrong}\u{0}\u{0}").as_bytes(),
        "wrong.keys",
        &mut findings,
    );
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0].message.starts_with("wrong.keys:1: "),
        "{findings:?}"
    );
    let r = decode_with("spice-tls12.pcap", Some(log));
    for c in &r.connections {
        let failed: Vec<_> = c
            .findings
            .iter()
            .filter(|f| f.code == "tls.decrypt_failed")
            .collect();
        // Each record is tried on its own: the first three each way are
        // located one by one, the rest counted.
        let located = |side: &str| {
            failed
                .iter()
                .filter(|f| f.message.starts_with(&format!("{side} record ")))
                .count()
        };
        assert_eq!((located("client"), located("server")), (3, 3), "{failed:?}");
        assert!(failed.iter().all(|f| f.location.stream_offset.is_some()));
        assert!(
            failed
                .iter()
                .any(|f| f.message.contains("more server records did not decrypt"))
        );
        assert_eq!(c.stack, ["tcp", "tls"]);
        assert_eq!(c.counts.c2s.get("ClientHello"), Some(&1));
    }
    // One damaged record spoils no other: the right key with one record's
    // tag flipped fails that record only.
    let mut bytes = read("spice-tls12.pcap");
    let keys = keylog("spice-tls12");
    let clean = decode_with("spice-tls12.pcap", keys.clone());
    // A byte inside the ciphertext of an application-data record halfway
    // through the capture (a record header: 23, 3, 3, then a length).
    let at = (bytes.len() / 2..bytes.len() - 64)
        .find(|&i| {
            bytes[i..i + 3] == [23, 3, 3] && u16::from_be_bytes([bytes[i + 3], bytes[i + 4]]) > 40
        })
        .unwrap();
    bytes[at + 5 + 20] ^= 1;
    let options = DecodeOptions {
        keep_events: true,
        keys: keys.map(|l| Arc::new(KeyStore::new(l))),
        ..DecodeOptions::default()
    };
    let damaged = decode_capture(&bytes[..], "damaged", options).unwrap();
    let failures = |r: &DecodeReport| -> usize {
        r.connections
            .iter()
            .flat_map(|c| &c.findings)
            .filter(|f| f.code == "tls.decrypt_failed")
            .count()
    };
    assert_eq!(failures(&clean), 0);
    assert_eq!(failures(&damaged), 1);
    // Records after it still decrypt: the SPICE decoder saw the hole and
    // carried on, only that record's messages lost.
    let spice = |r: &DecodeReport| -> usize {
        r.connections
            .iter()
            .map(|c| {
                c.counts
                    .s2c
                    .keys()
                    .filter(|k| k.starts_with("SPICE_MSG"))
                    .count()
            })
            .sum()
    };
    assert!(spice(&damaged) > 0);
    let stacks: Vec<String> = damaged
        .connections
        .iter()
        .map(|c| c.stack.join("/"))
        .collect();
    assert_eq!(stacks, ["tcp/tls/spice"; 3]);
    // A key log for other connections: said once per connection.
    let other = keylog("spice-tls").unwrap();
    let r = decode_with("spice-tls12.pcap", Some(other));
    for c in &r.connections {
        let codes: Vec<&str> = c.findings.iter().map(|f| f.code.as_ref()).collect();
        assert!(codes.contains(&"tls.no_key"), "{codes:?}");
    }
}

/// Without keys the hellos and, in TLS 1.2, the certificate are still read;
/// TLS 1.3 encrypts the certificate, which the key log then shows.
#[test]
fn the_handshake_says_versions_suite_and_certificate() {
    let detail = |r: &DecodeReport, name: &str| -> Vec<(String, serde_json::Value)> {
        r.connections[0]
            .events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Message {
                    protocol: "tls",
                    name: n,
                    detail,
                    ..
                } if n == name => Some(
                    detail
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let get = |d: &[(String, serde_json::Value)], k: &str| {
        d.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone())
    };
    let r = decode_with("novnc-wss-tls12-chacha.pcap", None);
    let sh = detail(&r, "ServerHello");
    assert_eq!(get(&sh, "version"), Some("TLS 1.2".into()));
    assert_eq!(
        get(&sh, "cipher"),
        Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into())
    );
    let cert = detail(&r, "Certificate");
    assert_eq!(get(&cert, "subject"), Some("CN=127.0.0.1".into()));
    assert_eq!(get(&cert, "expired"), Some(false.into()));
    let ch = detail(&decode_with("novnc-wss-tls13.pcap", None), "ClientHello");
    assert_eq!(get(&ch, "alpn"), Some(serde_json::json!(["http/1.1"])));
    assert_eq!(
        get(&ch, "versions"),
        Some(serde_json::json!(["TLS 1.3", "TLS 1.2"]))
    );
    let r = decode("vencrypt-tls");
    assert!(get(&detail(&r, "Certificate"), "subject").is_some());
    assert!(
        !decode_with("vencrypt-tls.pcap", None).connections[0]
            .counts
            .s2c
            .contains_key("Certificate")
    );
}

/// `flows --keylog` decodes and names each connection's stack inside TLS;
/// the rows keep the flows schema.
#[test]
fn flows_with_a_key_log_name_the_stack_inside() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["flows", "--format", "json", "--keylog"])
        .arg(dir().join("spice-tls.keys"))
        .arg(dir().join("spice-tls.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stacks: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stack"].as_str().unwrap())
        .collect();
    assert_eq!(stacks, ["tcp/tls/spice"; 3]);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/flows.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(jsonschema::is_valid(&schema, &rows));
    // A key log that cannot be read is an error naming the flag.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["flows", "--keylog", "/nonexistent.keys"])
        .arg(dir().join("spice-tls.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keylog /nonexistent.keys"));
}

/// A finding from the protocol inside TLS says its offset counts the
/// plaintext; TLS's own findings count the TCP stream.
#[test]
fn offsets_say_which_stream_they_count() {
    let r = decode("novnc-wss-tls13");
    let c = &r.connections[0];
    let inside = c
        .findings
        .iter()
        .find(|f| f.code == "ws.close_code_never_sent")
        .expect("websockify's close code 1005 (README there)");
    assert_eq!(inside.location.offset_in, Some("tls_plaintext"));
    assert!(
        inside.to_string().contains("tls plaintext offset "),
        "{inside}"
    );
    let own = c
        .findings
        .iter()
        .find(|f| f.code == "tls.no_close_notify")
        .unwrap();
    assert_eq!(own.location.offset_in, None);
    assert!(own.location.stream_offset.is_some());
}

/// Ping and pong events of one protocol as (frame, direction, kind, rtt).
fn rounds(
    r: &DecodeReport,
    protocol: &str,
) -> Vec<(u64, Option<Direction>, &'static str, Option<u64>)> {
    let mut v = Vec::new();
    // The SPICE net test's PING carries 256,000 bytes over many records:
    // its id, to leave it and its pong out.
    let mut data_ping = None;
    for e in r.connections.iter().flat_map(|c| &c.events) {
        let (frame, dir) = (e.frame.unwrap_or(0), e.direction);
        match &e.kind {
            EventKind::Ping {
                protocol: p,
                id,
                payload_len,
            } if *p == protocol => {
                if *payload_len > 0 && protocol == "spice" {
                    data_ping = *id;
                    continue;
                }
                v.push((frame, dir, "ping", None));
            }
            EventKind::Pong {
                protocol: p,
                id,
                rtt,
                ..
            } if *p == protocol => {
                if protocol == "spice" && *id == data_ping {
                    continue;
                }
                v.push((frame, dir, "pong", rtt.map(|r| r.0)));
            }
            _ => {}
        }
    }
    v.sort();
    v
}

#[test]
fn without_keys_spice_ping_rounds_are_read_from_record_sizes() {
    // Every SPICE PING pair and PONG without data, at its frame and with
    // its round trip, is found from record sizes alone; nothing else is.
    for name in ENCRYPTED {
        let keyless = decode_with(&format!("{name}.pcap"), None);
        let inferred = rounds(&keyless, "tls");
        let truth = rounds(&decode(name), "spice");
        assert_eq!(inferred, truth, "{name}");
        if name.starts_with("spice") {
            assert!(inferred.len() >= 8, "{name}: {inferred:?}");
        }
    }
}

#[test]
fn a_hung_client_over_tls_is_told_with_and_without_keys() {
    let file = "spice-tls12-frozen.pcap";
    let triage = |keys| {
        let options = TriageOptions {
            no_what_if: true,
            keys,
            ..TriageOptions::default()
        };
        triage_reader(&read(file)[..], file, false, &options).unwrap()
    };
    let keyed = triage(keylog("spice-tls12-frozen"));
    assert_eq!(keyed.cause.as_deref(), Some("server.connectivity_timeout"));
    let keyless = triage(None);
    // Without keys the protocol is unknown, so no SPICE timer is named; the
    // unanswered ping pair and the kernel that still acknowledged say who
    // stopped.
    for t in [&keyed, &keyless] {
        assert_eq!(t.closed_by, Some("server"));
        let d = &t.sessions[t.primary.unwrap()].diagnosis;
        assert_eq!(d.origin.as_deref(), Some("client.frozen"), "{d:?}");
        let first = &d.explanations[0];
        assert!(
            first
                .supports
                .iter()
                .any(|b| b.contains("was never answered")),
            "{first:?}"
        );
    }
}
