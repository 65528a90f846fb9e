//! ryll bug-report zips (`shared/ryll-bugreport.md` §1): the JSON members
//! and `traffic.pcap` read straight out of the zip, in memory, with size
//! limits. A zip bomb or a hostile member name refuses the whole zip; a
//! damaged member becomes a located finding and the rest is still read.
//!
//! Also a fixture generator that writes a zip in ryll's documented format
//! from a list of SPICE messages, so tests never depend on hand-edited
//! bytes.

use crate::capture::findings::BugReportFinding;
use crate::timeline::kinds::FindingKind;
use crate::timeline::{Finding, Location, Micros};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};

/// Bounds on what a zip may make tether read. ryll aims its zips at 24 MB
/// (GitHub's attachment limit is 25 MB), so these leave room without
/// letting a hostile zip exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_zip_bytes: u64,
    pub max_members: usize,
    /// Uncompressed bytes of any one member.
    pub max_member_bytes: u64,
    /// Uncompressed bytes of all members read together.
    pub max_total_bytes: u64,
    /// Uncompressed / compressed, for members big enough to matter. ryll
    /// stores members uncompressed (ratio 1).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_zip_bytes: 64 << 20,
            max_members: 64,
            max_member_bytes: 48 << 20,
            max_total_bytes: 96 << 20,
            max_ratio: 100,
        }
    }
}

/// Why a zip was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum BugReportError {
    #[error("{file}: not a readable zip: {why}")]
    NotAZip { file: String, why: String },
    #[error("{file}: {size} bytes is over the {limit}-byte limit for a bug-report zip")]
    TooBig { file: String, size: u64, limit: u64 },
    #[error("{file}: {source_text}")]
    Io { file: String, source_text: String },
}

/// `metadata.json`, current and older field sets (§1.3, §1.9).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(default)]
pub struct Metadata {
    pub ryll_version: Option<String>,
    pub ryll_git_sha: Option<String>,
    pub report_type: Option<serde_json::Value>,
    pub channel: Option<String>,
    pub description: Option<String>,
    pub timestamp: Option<String>,
    pub target: Option<String>,
    /// Older ryll: `target_host` + `target_port` instead of `target`.
    pub target_host: Option<String>,
    pub target_port: Option<u16>,
    pub session_uptime_secs: Option<f64>,
    pub traffic_capture: Option<TrafficCapture>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(default)]
pub struct TrafficCapture {
    pub budget_bytes: Option<u64>,
    pub written_bytes: Option<u64>,
    pub packets_written: Option<u64>,
    pub packets_omitted: Option<u64>,
    pub bytes_omitted: Option<u64>,
    pub oldest_packet_secs: Option<f64>,
    pub truncated: Option<bool>,
}

/// `disconnect-cause.json` (§1.6).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(default)]
pub struct DisconnectCause {
    pub channel: Option<String>,
    pub error_message: Option<String>,
    pub error_kind: Option<String>,
    /// Missing in older ryll.
    pub disconnect_kind: Option<String>,
    pub keepalive_timeout_fired: Option<bool>,
    pub session_uptime_secs: Option<f64>,
    pub per_channel: BTreeMap<String, ChannelDiagnostics>,
}

/// One `per_channel` entry; older ryll lacks `state`, `ended_by`,
/// `ended_at_secs`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(default)]
pub struct ChannelDiagnostics {
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub last_recv_ts_secs: Option<f64>,
    pub last_send_ts_secs: Option<f64>,
    pub ping_recv_count: Option<u64>,
    pub pong_send_count: Option<u64>,
    pub last_ping_recv_ts_secs: Option<f64>,
    pub state: Option<String>,
    pub ended_by: Option<String>,
    pub ended_at_secs: Option<f64>,
}

/// The few `session.json` fields tether uses; the rest is kept raw.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(default)]
pub struct SessionSnapshot {
    pub connected: Option<bool>,
    pub uptime_secs: Option<f64>,
    pub auto_reconnect_count: Option<u64>,
    pub last_ping_interval_ms: Option<f64>,
}

/// What could be read from a bug-report zip.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct BugReport {
    pub file: String,
    pub members: Vec<String>,
    pub metadata: Option<Metadata>,
    pub session: Option<SessionSnapshot>,
    pub channel_state: Option<serde_json::Value>,
    pub disconnect_cause: Option<DisconnectCause>,
    #[serde(skip)]
    pub traffic_pcap: Option<Vec<u8>>,
    /// Damaged or missing members, each located by member name and zip
    /// offset.
    pub findings: Vec<Finding>,
}

impl BugReport {
    /// The channel the report is about (`metadata.channel`, else the
    /// disconnect cause's channel).
    pub fn channel(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.channel.as_deref())
            .or_else(|| {
                self.disconnect_cause
                    .as_ref()
                    .and_then(|d| d.channel.as_deref())
            })
    }
}

/// Zip files start with a local file header (or an empty archive's end
/// record).
pub fn looks_like_zip(prefix: &[u8]) -> bool {
    prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06")
}

fn hostile(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.contains('\0') {
        return Some("contains NUL");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("absolute path");
    }
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return Some("drive-letter path");
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Some("parent-directory component");
    }
    None
}

/// Reads a bug-report zip from a byte source, at most `limits.max_zip_bytes`.
pub fn read_bugreport_from<R: Read>(
    src: R,
    file: &str,
    limits: Limits,
) -> Result<BugReport, BugReportError> {
    let mut bytes = Vec::new();
    src.take(limits.max_zip_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| BugReportError::Io {
            file: file.to_string(),
            source_text: e.to_string(),
        })?;
    if bytes.len() as u64 > limits.max_zip_bytes {
        return Err(BugReportError::TooBig {
            file: file.to_string(),
            size: bytes.len() as u64,
            limit: limits.max_zip_bytes,
        });
    }
    read_bugreport(Cursor::new(bytes), file, limits)
}

/// Reads every member tether knows from a bug-report zip.
pub fn read_bugreport<R: Read + Seek>(
    src: R,
    file: &str,
    limits: Limits,
) -> Result<BugReport, BugReportError> {
    let mut zip = zip::ZipArchive::new(src).map_err(|e| BugReportError::NotAZip {
        file: file.to_string(),
        why: e.to_string(),
    })?;
    let mut report = BugReport {
        file: file.to_string(),
        ..BugReport::default()
    };
    let at_member = |name: &str, offset: Option<u64>| Location {
        file: Some(format!("{file}:{name}")),
        file_offset: offset,
        ..Location::default()
    };
    // A limit hit skips members, never the report: whatever else the zip
    // holds is still read.
    let considered = zip.len().min(limits.max_members);
    if zip.len() > limits.max_members {
        report.findings.push(BugReportFinding::TooManyMembers.at(
            format!(
                "{} members, over the limit of {}; only the first {considered} are looked at",
                zip.len(),
                limits.max_members
            ),
            Location {
                file: Some(file.to_string()),
                ..Location::default()
            },
        ));
    }
    // Names and declared sizes first: refuse a member before reading it.
    let mut declared_total = 0u64;
    let mut readable = Vec::new();
    for index in 0..considered {
        // Names come from the central directory, so a damaged local
        // header still leaves the member named.
        let name = zip.name_for_index(index).unwrap_or("").to_string();
        if let Some(why) = hostile(&name) {
            // tether never writes members out, but a report that names one
            // so was not written by ryll: say so and leave it alone.
            report.findings.push(BugReportFinding::HostileName.at(
                format!("member {index} has a hostile name {name:?} ({why}); skipped"),
                Location {
                    file: Some(file.to_string()),
                    ..Location::default()
                },
            ));
            continue;
        }
        let entry = match zip.by_index_raw(index) {
            Ok(e) => e,
            Err(e) => {
                report.findings.push(
                    BugReportFinding::DamagedMember
                        .at(format!("{name}: {e}; skipped"), at_member(&name, None)),
                );
                report.members.push(name);
                continue;
            }
        };
        let (size, packed, header) = (entry.size(), entry.compressed_size(), entry.header_start());
        drop(entry);
        let refused = if size > limits.max_member_bytes {
            Some((
                BugReportFinding::MemberTooLarge,
                format!(
                    "{name}: declares {size} bytes uncompressed, over the {}-byte member limit; skipped",
                    limits.max_member_bytes
                ),
            ))
        } else if size > 1 << 20 && size / packed.max(1) > limits.max_ratio {
            Some((
                BugReportFinding::RatioTooHigh,
                format!(
                    "{name}: declares {size} bytes from {packed} compressed, a ratio over {}; skipped",
                    limits.max_ratio
                ),
            ))
        } else if declared_total.saturating_add(size) > limits.max_total_bytes {
            Some((
                BugReportFinding::MemberTooLarge,
                format!(
                    "{name}: would take the members over {} bytes uncompressed in all; skipped",
                    limits.max_total_bytes
                ),
            ))
        } else {
            None
        };
        if let Some((kind, message)) = refused {
            report
                .findings
                .push(kind.at(message, at_member(&name, Some(header))));
            report.members.push(name);
            continue;
        }
        declared_total += size;
        readable.push((index, report.members.len()));
        report.members.push(name);
    }
    let mut read_total = 0u64;
    for (index, member) in readable {
        let name = report.members[member].clone();
        let wanted = matches!(
            name.as_str(),
            "metadata.json"
                | "session.json"
                | "channel-state.json"
                | "disconnect-cause.json"
                | "traffic.pcap"
        );
        if !wanted {
            continue;
        }
        let (data, damage) = read_member(&mut zip, index, limits, &mut read_total);
        let loc = Location {
            file: Some(format!("{file}:{name}")),
            file_offset: damage.as_ref().map(|d| d.2),
            ..Location::default()
        };
        if let Some((kind, why, _)) = damage {
            report.findings.push(kind.at(
                format!("{name}: {why}; what could be read is used"),
                loc.clone(),
            ));
        }
        let Some(data) = data else { continue };
        match name.as_str() {
            "traffic.pcap" => report.traffic_pcap = Some(data),
            "metadata.json" => {
                report.metadata = parse_json(&data, &name, &loc, &mut report.findings)
            }
            "session.json" => report.session = parse_json(&data, &name, &loc, &mut report.findings),
            "channel-state.json" => {
                report.channel_state = parse_json(&data, &name, &loc, &mut report.findings)
            }
            "disconnect-cause.json" => {
                report.disconnect_cause = parse_json(&data, &name, &loc, &mut report.findings)
            }
            _ => {}
        }
    }
    for required in ["metadata.json", "session.json", "channel-state.json"] {
        if !report.members.iter().any(|m| m == required) {
            report.findings.push(BugReportFinding::MissingMember.at(
                format!("{required} is missing; every ryll report has one"),
                Location {
                    file: Some(file.to_string()),
                    ..Location::default()
                },
            ));
        }
    }
    Ok(report)
}

/// Why a member was not read whole: finding code, message, zip offset.
type Damage = (BugReportFinding, String, u64);

/// Reads one member with the limits enforced on the bytes actually
/// inflated (a header can lie about sizes). Returns what was read and,
/// when the member is damaged, why and the zip offset of its data.
fn read_member<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    index: usize,
    limits: Limits,
    read_total: &mut u64,
) -> (Option<Vec<u8>>, Option<Damage>) {
    let mut entry = match zip.by_index(index) {
        Ok(e) => e,
        Err(e) => {
            return (
                None,
                Some((BugReportFinding::DamagedMember, e.to_string(), 0)),
            );
        }
    };
    let offset = entry.data_start();
    let cap = limits
        .max_member_bytes
        .min(limits.max_total_bytes.saturating_sub(*read_total));
    let mut data = Vec::new();
    let res = (&mut entry).take(cap + 1).read_to_end(&mut data);
    *read_total += data.len() as u64;
    if data.len() as u64 > cap {
        data.truncate(cap as usize);
        return (
            Some(data),
            Some((
                BugReportFinding::MemberTooLarge,
                format!("inflates past the {cap}-byte limit; cut there"),
                offset,
            )),
        );
    }
    match res {
        Ok(_) => (Some(data), None),
        Err(e) => (
            Some(data),
            Some((BugReportFinding::DamagedMember, e.to_string(), offset)),
        ),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    data: &[u8],
    name: &str,
    loc: &Location,
    findings: &mut Vec<Finding>,
) -> Option<T> {
    match serde_json::from_slice(data) {
        Ok(v) => Some(v),
        Err(e) => {
            findings.push(BugReportFinding::BadJson.at(
                // serde_json's message ends "at line L column C".
                format!("{name}: {e}"),
                loc.clone(),
            ));
            None
        }
    }
}

/// The ryll ring's client port for a channel (§2.2).
pub fn ryll_client_port(channel: &str) -> u16 {
    match channel {
        "main" => 10001,
        "display" => 10002,
        "inputs" => 10003,
        "cursor" => 10004,
        "usbredir" => 10009,
        _ => 10099,
    }
}

/// The fixture generator: one SPICE message of a ring.
#[derive(Clone, Debug)]
pub struct RingMessage {
    /// Session-clock time.
    pub at: Micros,
    pub channel: &'static str,
    /// `true` when the server sent it.
    pub from_server: bool,
    /// The whole message, mini header included.
    pub bytes: Vec<u8>,
}

/// Which ryll field set to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// v0.3.0: `target`, `traffic_capture`, `disconnect_kind`, per-channel
    /// `state` / `ended_by` / `ended_at_secs`.
    Current,
    /// Older ryll: `target_host`/`target_port`, no `disconnect_kind`, no
    /// per-channel end fields, an extra `client_keepalive_send_count`.
    Older,
}

/// What the generated report says about how the session ended.
#[derive(Clone, Debug)]
pub struct FixtureEnd {
    pub channel: &'static str,
    pub disconnect_kind: &'static str,
    pub at: Micros,
    /// Client port of the ring, when not ryll's convention (to test that
    /// the zip's channel names a ring the ports do not).
    pub client_port: Option<u16>,
    /// ryll's error text; `channel <name> disconnected` when `None`.
    pub error_message: Option<&'static str>,
}

/// Writes a ryll disconnect zip: `traffic.pcap` is the ring of
/// `end.channel` in ryll's pcap format (big-endian, Ethernet, 10.0.0.1:port
/// ↔ 10.0.0.2:5900, ACK-only, seq from 1000/2000), and
/// `disconnect-cause.json` is computed from the same messages as ryll
/// counts them. Deterministic: same inputs, same bytes.
pub fn write_fixture(messages: &[RingMessage], end: &FixtureEnd, flavor: Flavor) -> Vec<u8> {
    use crate::capture::writer::{Flags, PcapWriter, tcp_frame};
    use std::net::SocketAddr;
    const CHANNELS: [&str; 7] = [
        "cursor", "display", "inputs", "main", "playback", "usbredir", "webdav",
    ];
    let server = SocketAddr::from(([10, 0, 0, 2], 5900));
    // Writing into a Vec cannot fail.
    let Ok(mut pcap) = PcapWriter::new(Vec::new(), 1, true, false) else {
        return Vec::new();
    };
    let (mut cseq, mut sseq) = (1000u32, 2000u32);
    let mut frames = 0u64;
    let mut per: BTreeMap<&str, ChannelDiagnostics> = BTreeMap::new();
    for m in messages {
        let d = per.entry(m.channel).or_default();
        let secs = Some(m.at.as_secs_f64());
        if m.from_server {
            *d.bytes_in.get_or_insert(0) += m.bytes.len() as u64;
            d.last_recv_ts_secs = secs;
            if m.bytes.get(..2) == Some(&4u16.to_le_bytes()[..]) {
                *d.ping_recv_count.get_or_insert(0) += 1;
                d.last_ping_recv_ts_secs = secs;
            }
        } else {
            *d.bytes_out.get_or_insert(0) += m.bytes.len() as u64;
            d.last_send_ts_secs = secs;
            if m.bytes.get(..2) == Some(&3u16.to_le_bytes()[..]) {
                *d.pong_send_count.get_or_insert(0) += 1;
            }
        }
        if m.channel != end.channel {
            continue;
        }
        let port = end
            .client_port
            .unwrap_or_else(|| ryll_client_port(m.channel));
        let client = SocketAddr::from(([10, 0, 0, 1], port));
        // ryll splits messages into frames of at most 65495 payload bytes.
        for part in m.bytes.chunks(65_495) {
            let frame = if m.from_server {
                let f = tcp_frame(
                    server,
                    client,
                    sseq,
                    cseq,
                    Flags {
                        ack: true,
                        ..Flags::default()
                    },
                    part,
                );
                sseq = sseq.wrapping_add(part.len() as u32);
                f
            } else {
                let f = tcp_frame(
                    client,
                    server,
                    cseq,
                    sseq,
                    Flags {
                        ack: true,
                        ..Flags::default()
                    },
                    part,
                );
                cseq = cseq.wrapping_add(part.len() as u32);
                f
            };
            let _ = pcap.write_packet(m.at, &frame);
            frames += 1;
        }
    }
    let pcap = pcap.into_inner();
    let mut per_channel = serde_json::Map::new();
    for ch in CHANNELS {
        let d = per.get(ch).cloned().unwrap_or_default();
        let mut v = serde_json::json!({
            "bytes_in": d.bytes_in.unwrap_or(0),
            "bytes_out": d.bytes_out.unwrap_or(0),
            "last_recv_ts_secs": d.last_recv_ts_secs,
            "last_send_ts_secs": d.last_send_ts_secs,
            "ping_recv_count": d.ping_recv_count.unwrap_or(0),
            "pong_send_count": d.pong_send_count.unwrap_or(0),
            "last_ping_recv_ts_secs": d.last_ping_recv_ts_secs,
        });
        match flavor {
            Flavor::Current => {
                let ended = ch == end.channel;
                let state = if ended {
                    "ended"
                } else if d.bytes_in.is_none() {
                    "no_traffic"
                } else {
                    "open"
                };
                v["state"] = state.into();
                v["ended_by"] = if ended {
                    end.disconnect_kind.into()
                } else {
                    serde_json::Value::Null
                };
                v["ended_at_secs"] = if ended {
                    end.at.as_secs_f64().into()
                } else {
                    serde_json::Value::Null
                };
            }
            Flavor::Older => {
                v["client_keepalive_send_count"] = 0.into();
                v["last_client_keepalive_send_ts_secs"] = serde_json::Value::Null;
            }
        }
        per_channel.insert(ch.to_string(), v);
    }
    let uptime = end.at.as_secs_f64();
    let mut cause = serde_json::json!({
        "channel": end.channel,
        "error_message": end.error_message.map_or_else(|| format!("channel {} disconnected", end.channel), str::to_string),
        "error_kind": null,
        "keepalive_timeout_fired": end.disconnect_kind == "KeepaliveTimeout",
        "session_uptime_secs": uptime,
        "per_channel": per_channel,
    });
    let mut metadata = serde_json::json!({
        "ryll_version": "0.3.0",
        "ryll_git_sha": "f12d9b2",
        "platform_os": "linux",
        "platform_arch": "x86_64",
        "report_type": { "Disconnect": { "channel": end.channel } },
        "channel": end.channel,
        "description": format!("auto: connection lost on {} (channel {} disconnected)", end.channel, end.channel),
        "region": null,
        "timestamp": "2026-01-02T03:04:05Z",
        "session_uptime_secs": uptime,
        "triggered_at": "2026-01-02T03:04:05Z",
        "triggered_uptime_secs": uptime,
    });
    match flavor {
        Flavor::Current => {
            cause["disconnect_kind"] = end.disconnect_kind.into();
            metadata["target"] = "spice.example:5900".into();
            metadata["traffic_capture"] = serde_json::json!({
                "budget_bytes": 23_000_000u64,
                "written_bytes": pcap.len(),
                "packets_written": frames,
                "packets_omitted": 0,
                "bytes_omitted": 0,
                "oldest_packet_secs": messages.iter().find(|m| m.channel == end.channel).map(|m| m.at.as_secs_f64()),
                "truncated": false,
            });
        }
        Flavor::Older => {
            metadata["target_host"] = "spice.example".into();
            metadata["target_port"] = 5900.into();
        }
    }
    let session = serde_json::json!({
        "fps": 0.0, "bandwidth_history": [], "bandwidth_current": 0.0,
        "last_ping_interval_ms": null, "last_input_rtt_ms": null, "frames_received": 0,
        "surfaces": [], "cursor_pos": [0, 0], "cursor_visible": true, "connected": true,
        "mouse_mode": 2, "uptime_secs": uptime, "auto_reconnect_count": 0,
    });
    let channel_state = serde_json::json!({ "bytes_in": per.get(end.channel).and_then(|d| d.bytes_in).unwrap_or(0) });
    let members: Vec<(&str, Vec<u8>)> = vec![
        ("metadata.json", pretty(&metadata)),
        ("session.json", pretty(&session)),
        ("channel-state.json", pretty(&channel_state)),
        ("traffic.pcap", pcap),
        ("notifications.json", b"[]".to_vec()),
        (
            "runtime-metrics.json",
            pretty(
                &serde_json::json!({"platform": "linux", "available": false, "reason": "disconnect report"}),
            ),
        ),
        ("disconnect-cause.json", pretty(&cause)),
    ];
    write_zip(&members)
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// A zip of stored members with a fixed timestamp, as ryll writes them.
pub fn write_zip(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, data) in members {
        // Writing into memory fails only on a zip-format limit we never reach.
        let _ = w.start_file(*name, options);
        let _ = w.write_all(data);
    }
    w.finish().map(Cursor::into_inner).unwrap_or_default()
}
