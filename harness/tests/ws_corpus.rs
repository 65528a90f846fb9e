//! WebSocket captures from the public corpus and our own recording: every
//! frame tether decodes (direction, FIN, RSV, opcode, mask, payload length,
//! close code) equals tshark's decode of the same file, in order, and the
//! handshake fields agree. The tshark dumps are committed next to the
//! captures, so tshark is not needed to run this.
//!
//! Per-capture stacks, counts and findings are golden snapshots
//! (`golden/ws__corpus__*.snap`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tether::decode::pipeline::{ConnectionReport, DecodeOptions, DecodeReport, decode_capture};
use tether::timeline::{EventKind, Micros};

const CAPTURES: &[&str] = &[
    "public/zeek-websocket/broker-websocket.pcap",
    "public/zeek-websocket/fragmented-http-reply.pcap",
    "public/zeek-websocket/jupyter-websocket.pcap",
    "public/zeek-websocket/message-too-big-status.pcap",
    "public/zeek-websocket/oversized-close-frame.pcapng",
    "public/zeek-websocket/reply-ping-coalesced.pcap",
    "public/zeek-websocket/reply-ping-separate.pcap",
    "public/zeek-websocket/two-binary-fragments.pcap",
    "public/zeek-websocket/websocket.pcap",
    "public/zeek-websocket/wrong-accept-header.pcap",
    "public/zeek-websocket/wstunnel-http.pcap",
    "public/zeek-websocket/wstunnel-https.pcap",
    "public/zeek-websocket/wstunnel-ssh.pcap",
    "public/suricata-verify/websocket/basic_websockets.pcap",
    "public/suricata-verify/websocket-compressed/example_websocket.pcap",
    "public/suricata-verify/websocket-control-frag/input.pcap",
    "public/suricata-verify/websocket-ping/input.pcap",
    "public/wireshark-wiki/websocket.pcap",
    // Recorded here: noVNC in headless Chromium -> websockify -> Xvnc
    // (corpora/record/ws-novnc.sh).
    "recorded/ws-novnc.pcap",
];

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora")
}

fn decode(rel: &str) -> DecodeReport {
    let bytes = std::fs::read(corpora().join(rel)).unwrap();
    let opts = DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    decode_capture(&bytes[..], rel, opts).unwrap()
}

/// One WebSocket frame as both decoders describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    /// "ip:port" of the sender.
    from: String,
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload_len: u64,
    close_code: Option<u16>,
}

/// A section of a tshark dump: the tab-separated rows under `## title`.
fn section<'a>(dump: &'a str, title: &str) -> Vec<Vec<&'a str>> {
    let Some(start) = dump.find(&format!("## {title}")) else {
        return Vec::new();
    };
    dump[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("## "))
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
        .collect()
}

fn split(field: &str) -> Vec<&str> {
    if field.is_empty() {
        Vec::new()
    } else {
        field.split(',').collect()
    }
}

fn tshark_frames(dump: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for cols in section(dump, "WebSocket frames") {
        let from = format!("{}:{}", cols[2], cols[3]);
        let fin = split(cols[6]);
        let rsv = split(cols[7]);
        let opcode = split(cols[9]);
        let mask = split(cols[10]);
        let plen = split(cols[11]);
        // Extended lengths and close codes are listed only for the frames
        // that have them, in frame order.
        let mut len16 = split(cols[12]).into_iter();
        let mut len64 = split(cols[13]).into_iter();
        let mut codes = split(cols.get(14).copied().unwrap_or("")).into_iter();
        for i in 0..fin.len() {
            let short: u64 = plen[i].parse().unwrap();
            let payload_len = match short {
                126 => len16.next().unwrap().parse().unwrap(),
                127 => len64.next().unwrap().parse().unwrap(),
                n => n,
            };
            let opcode: u8 = opcode[i].parse().unwrap();
            let close_code = if opcode == 8 && payload_len >= 2 {
                codes.next().map(|c| c.parse().unwrap())
            } else {
                None
            };
            rows.push(Row {
                from: from.clone(),
                fin: fin[i] == "1",
                rsv: u8::from_str_radix(rsv[i].trim_start_matches("0x"), 16).unwrap() & 0x7,
                opcode,
                masked: mask[i] == "1",
                payload_len,
                close_code,
            });
        }
    }
    rows
}

const FRAME_NAMES: &[&str] = &[
    "text",
    "binary",
    "continuation",
    "ping",
    "pong",
    "close",
    "reserved_opcode",
];

fn detail<'a>(
    d: &'a [(std::borrow::Cow<'static, str>, serde_json::Value)],
    k: &str,
) -> &'a serde_json::Value {
    d.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v)
        .unwrap_or(&serde_json::Value::Null)
}

fn our_frames(c: &ConnectionReport) -> Vec<(Micros, Row)> {
    c.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message {
                protocol: "ws",
                name,
                detail: d,
                ..
            } if FRAME_NAMES.contains(&name.as_ref()) => {
                let from = match e.direction? {
                    tether::timeline::Direction::ClientToServer => c.client.clone(),
                    tether::timeline::Direction::ServerToClient => c.server.clone(),
                };
                Some((
                    e.at,
                    Row {
                        from,
                        fin: detail(d, "fin").as_bool().unwrap(),
                        rsv: detail(d, "rsv").as_u64().unwrap() as u8,
                        opcode: detail(d, "opcode").as_u64().unwrap() as u8,
                        masked: detail(d, "masked").as_bool().unwrap(),
                        payload_len: detail(d, "payload_len").as_u64().unwrap(),
                        close_code: detail(d, "code").as_u64().map(|c| c as u16),
                    },
                ))
            }
            _ => None,
        })
        .collect()
}

fn check_against_tshark(rel: &str) -> DecodeReport {
    let report = decode(rel);
    let dump = std::fs::read_to_string(corpora().join(format!("{rel}.tshark.txt"))).unwrap();
    let want = tshark_frames(&dump);
    assert!(!want.is_empty(), "{rel}: no frames in the tshark dump");
    // tshark lists packets in capture order; we compare per sender, in
    // order, since the two directions interleave differently by design
    // (we emit a frame when its last byte arrives, as tshark does).
    let mut got: Vec<Row> = Vec::new();
    let mut per_conn: Vec<(Micros, Row)> = Vec::new();
    for c in &report.connections {
        per_conn.extend(our_frames(c));
    }
    per_conn.sort_by_key(|(at, _)| *at);
    got.extend(per_conn.into_iter().map(|(_, r)| r));
    let by_sender = |rows: &[Row]| {
        let mut m: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for r in rows {
            m.entry(r.from.clone()).or_default().push(r.clone());
        }
        m
    };
    assert_eq!(
        by_sender(&got),
        by_sender(&want),
        "{rel}: frames differ from tshark"
    );
    check_handshake(rel, &report, &dump);
    report
}

/// Request URI and key, response status, as tshark has them.
fn check_handshake(rel: &str, report: &DecodeReport, dump: &str) {
    let hs = section(dump, "WebSocket handshake");
    assert!(!hs.is_empty(), "{rel}: no handshake in the tshark dump");
    for cols in hs {
        let from = format!("{}:{}", cols[2], cols[3]);
        let conn = report
            .connections
            .iter()
            .find(|c| c.client == from || c.server == from)
            .unwrap_or_else(|| panic!("{rel}: no connection for {from}"));
        let names: Vec<&str> = conn
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Message {
                    name, detail: d, ..
                } if name == "upgrade_request" && conn.client == from => {
                    let path = detail(d, "path").as_str().unwrap().to_string();
                    let uri = match detail(d, "query").as_str() {
                        Some(q) => format!("{path}?{q}"),
                        None => path,
                    };
                    assert_eq!(uri, cols[6], "{rel}: request uri");
                    assert_eq!(
                        detail(d, "key").as_str().unwrap_or(""),
                        cols[10],
                        "{rel}: key"
                    );
                    Some("upgrade_request")
                }
                EventKind::Message {
                    name, detail: d, ..
                } if name == "upgrade_response" && conn.server == from => {
                    assert_eq!(detail(d, "status").to_string(), cols[7], "{rel}: status");
                    Some("upgrade_response")
                }
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), 1, "{rel}: one handshake message from {from}");
    }
}

#[test]
fn public_websocket_captures_match_tshark_frame_by_frame() {
    for rel in CAPTURES {
        let report = check_against_tshark(rel);
        let summary: Vec<serde_json::Value> = report
            .connections
            .iter()
            .map(|c| {
                serde_json::json!({
                    "connection": c.connection,
                    "stack": c.stack,
                    "counts": c.counts,
                    "pings": [c.c2s.pings, c.s2c.pings],
                    "pongs": [c.c2s.pongs, c.s2c.pongs],
                    "findings": c.findings,
                })
            })
            .collect();
        let name = rel.replace('/', "__");
        insta::with_settings!({ snapshot_path => "../../golden", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!(format!("ws__corpus__{name}"), summary);
        });
    }
}

fn messages<'a>(c: &'a ConnectionReport, name: &str) -> Vec<&'a EventKind> {
    c.events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Message { name: n, .. } if n == name))
        .map(|e| &e.kind)
        .collect()
}

fn detail_of<'a>(k: &'a EventKind, key: &str) -> &'a serde_json::Value {
    match k {
        EventKind::Message { detail: d, .. } => detail(d, key),
        _ => &serde_json::Value::Null,
    }
}

#[test]
fn compressed_messages_are_inflated_with_context_takeover() {
    let r = decode("public/suricata-verify/websocket-compressed/example_websocket.pcap");
    let texts: Vec<String> = messages(&r.connections[0], "text")
        .iter()
        .map(|k| detail_of(k, "text").as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 10);
    assert!(
        texts[0].starts_with("KEY=07cb9559eff21e3e34f3bbd18240bac3"),
        "{texts:?}"
    );
    // Suricata's oracle: exactly one message carries this decompressed text.
    let hits = texts
        .iter()
        .filter(|t| t.contains("TOGGLE=5659131662f54334"))
        .count();
    assert_eq!(hits, 1, "{texts:?}");
    assert!(
        r.connections[0].findings.is_empty(),
        "{:?}",
        r.connections[0].findings
    );
}

#[test]
fn control_frame_between_fragments_keeps_the_message_whole() {
    let r = decode("public/suricata-verify/websocket-control-frag/input.pcap");
    let c = &r.connections[0];
    let last = messages(c, "continuation");
    assert_eq!(last.len(), 1);
    let text = detail_of(last[0], "text").as_str().unwrap();
    assert!(
        text.contains("MALWARE_DOWNLOAD cmd.exe /c powershell"),
        "{text}"
    );
    assert_eq!(detail_of(last[0], "fragments"), &serde_json::json!(2));
    assert_eq!(detail_of(last[0], "message_len"), &serde_json::json!(48));
    // The ping in the middle got its pong, paired, with a round trip.
    let rtt = c.events.iter().find_map(|e| match &e.kind {
        EventKind::Pong { rtt, .. } => Some(*rtt),
        _ => None,
    });
    // Ping in frame 10 at 0.090 s, pong in frame 14 at 0.130 s (tshark dump).
    assert_eq!(rtt, Some(Some(Micros(40_000))));
}

#[test]
fn close_codes_reasons_and_inner_http() {
    let r = decode("public/zeek-websocket/message-too-big-status.pcap");
    let c = &r.connections[0];
    let closes: Vec<_> = c
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Close(tether::timeline::CloseKind::WsClose { code, reason }) => {
                Some((e.direction.unwrap().as_str(), *code, reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec![
            (
                "c2s",
                Some(1009),
                "over size limit (4 > 2 bytes)".to_string()
            ),
            ("s2c", Some(1000), String::new()),
        ]
    );
    // Tunnelled HTTP: the inner stream is sniffed from the binary messages.
    let r = decode("public/zeek-websocket/wstunnel-http.pcap");
    assert_eq!(r.connections[0].stack, vec!["tcp", "ws", "http"]);
    let r = decode("public/zeek-websocket/wstunnel-https.pcap");
    assert_eq!(r.connections[0].stack, vec!["tcp", "ws", "tls"]);
}

#[test]
fn refused_upgrade_and_wrong_accept() {
    let r = decode("public/zeek-websocket/wrong-accept-header.pcap");
    let c = &r.connections[0];
    let codes: Vec<&str> = c.findings.iter().map(|f| f.code.as_ref()).collect();
    assert_eq!(codes, vec!["ws.bad_accept"]);
    let resp = messages(c, "upgrade_response");
    assert_eq!(
        detail_of(resp[0], "accept_valid"),
        &serde_json::json!(false)
    );
}

#[test]
fn recorded_refused_upgrade_is_a_401_on_the_timeline() {
    // websockify with an auth plugin refusing noVNC's upgrade
    // (corpora/record/ws-refused.sh): the stale-token reconnect on the wire.
    let rel = "recorded/ws-refused.pcap";
    let report = decode(rel);
    let dump = std::fs::read_to_string(corpora().join(format!("{rel}.tshark.txt"))).unwrap();
    assert!(tshark_frames(&dump).is_empty());
    check_handshake(rel, &report, &dump);
    let c = &report.connections[0];
    let resp = messages(c, "upgrade_response");
    assert_eq!(detail_of(resp[0], "status"), &serde_json::json!(401));
    let req = messages(c, "upgrade_request");
    assert_eq!(
        detail_of(req[0], "query"),
        &serde_json::json!("token=expired")
    );
    // Nothing is framed after a refusal, and a refusal is not a finding.
    assert!(our_frames(c).is_empty());
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    assert!(messages(c, "abnormal_closure").is_empty());
}
