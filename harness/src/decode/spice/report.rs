//! Per-session, per-channel SPICE tables, and a ryll bug-report zip's own
//! diagnostics set beside what tether decodes from its `traffic.pcap`,
//! each row labelled by its source; disagreements become findings.

use crate::capture::bugreport::{self, BugReport, BugReportError, ChannelDiagnostics, Limits};
use crate::capture::findings::BugReportFinding;
use crate::decode::Protocol;
use crate::decode::pipeline::{DecodeOptions, DecodeReport, decode_capture};
use crate::flow::EndKind;
use crate::timeline::kinds::FindingKind;
use crate::timeline::{Finding, Location, Micros};
use serde::Serialize;
use std::io::Read;

/// One channel as one source sees it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ChannelRow {
    pub session: Option<u64>,
    pub channel: String,
    /// `pcap` (decoded by tether) or `zip` (the client's own diagnostics).
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<u32>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub messages_in: Option<u64>,
    pub messages_out: Option<u64>,
    pub pings: Option<u64>,
    pub pongs: Option<u64>,
    pub rtt_min: Option<Micros>,
    pub rtt_max: Option<Micros>,
    pub last_recv: Option<f64>,
    pub last_send: Option<f64>,
    pub ended: Option<String>,
}

/// Client-side "in" is server-to-client.
pub fn pcap_rows(r: &DecodeReport) -> Vec<ChannelRow> {
    let mut rows = Vec::new();
    for c in &r.connections {
        if c.protocol != Protocol::Spice {
            continue;
        }
        let s = c.session.clone().unwrap_or_default();
        let flow = r.flows.iter().find(|f| f.id == c.connection);
        let ended = match (&s.disconnecting, &s.link_result) {
            (Some(reason), _) => Some(format!("DISCONNECTING ({reason})")),
            (None, Some(res)) if res != "OK" => Some(format!("link refused ({res})")),
            _ => flow.map(|f| {
                let by = f.closed_by.map(|d| d.sender()).unwrap_or("");
                match f.end {
                    EndKind::Fin => format!("FIN by {by}"),
                    EndKind::Rst => format!("RST by {by}"),
                    EndKind::Open => "open at end of capture".to_string(),
                }
            }),
        };
        // Link-stage units are not data messages.
        let data = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("SPICE_LINK_"))
                .map(|(_, v)| v)
                .sum::<u64>()
        };
        rows.push(ChannelRow {
            session: s.session_id,
            channel: s.channel.unwrap_or_else(|| "?".to_string()),
            source: "pcap",
            connection: Some(c.connection.0),
            bytes_in: flow.map(|f| f.s2c.bytes),
            bytes_out: flow.map(|f| f.c2s.bytes),
            messages_in: Some(data(&c.counts.s2c)),
            messages_out: Some(data(&c.counts.c2s)),
            pings: Some(c.s2c.pings),
            pongs: Some(c.c2s.pongs),
            rtt_min: c.c2s.rtt_min,
            rtt_max: c.c2s.rtt_max,
            last_recv: c.s2c.last.map(Micros::as_secs_f64),
            last_send: c.c2s.last.map(Micros::as_secs_f64),
            ended,
        });
    }
    rows.sort_by_key(|a| (a.session, a.connection));
    rows
}

fn zip_row(channel: &str, d: &ChannelDiagnostics) -> ChannelRow {
    ChannelRow {
        session: None,
        channel: channel.to_string(),
        source: "zip",
        connection: None,
        bytes_in: d.bytes_in,
        bytes_out: d.bytes_out,
        messages_in: None,
        messages_out: None,
        pings: d.ping_recv_count,
        pongs: d.pong_send_count,
        rtt_min: None,
        rtt_max: None,
        last_recv: d.last_recv_ts_secs,
        last_send: d.last_send_ts_secs,
        ended: match (&d.state, &d.ended_by) {
            (Some(state), Some(by)) => Some(format!("{state} ({by})")),
            (Some(state), None) => Some(state.clone()),
            (None, _) => None,
        },
    }
}

/// A bug-report zip decoded: its members, the pcap decode, both sides'
/// rows per channel, and where they disagree.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ZipDecode {
    pub report: BugReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap: Option<DecodeReport>,
    pub rows: Vec<ChannelRow>,
    /// `bugreport.disagreement` findings: the zip and the pcap differ.
    pub disagreements: Vec<Finding>,
}

/// Timestamps are the same session clock on both sides; ryll records a
/// received message after parsing it and a sent one before writing it,
/// so allow a little skew.
const TIME_SLACK_SECS: f64 = 0.05;

/// Where the zip's account of one channel and the pcap's differ.
fn channel_disagreements(
    zrow: &ChannelRow,
    prow: &ChannelRow,
    diag: &ChannelDiagnostics,
    truncated: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (what, zip, ours) in [
        ("PINGs received", zrow.pings, prow.pings),
        ("PONGs sent", zrow.pongs, prow.pongs),
        ("bytes received", zrow.bytes_in, prow.bytes_in),
        ("bytes sent", zrow.bytes_out, prow.bytes_out),
    ] {
        let (Some(zip), Some(ours)) = (zip, ours) else {
            continue;
        };
        // A truncated ring holds only the newest part of the session.
        let bad = if truncated { ours > zip } else { ours != zip };
        if bad {
            out.push(format!("the zip says {zip} {what}, the pcap shows {ours}"));
        }
    }
    for (what, zip, ours) in [
        ("last receive", zrow.last_recv, prow.last_recv),
        ("last send", zrow.last_send, prow.last_send),
    ] {
        match (zip, ours) {
            (Some(z), Some(o)) if (z - o).abs() > TIME_SLACK_SECS => out.push(format!(
                "the zip says {what} at {z:.6} s, the pcap at {o:.6} s"
            )),
            (None, Some(o)) => out.push(format!(
                "the zip has no {what}, the pcap has one at {o:.6} s"
            )),
            _ => {}
        }
    }
    if let Some(end) = diag.ended_at_secs {
        let last = [prow.last_recv, prow.last_send]
            .into_iter()
            .flatten()
            .fold(f64::MIN, f64::max);
        if last > end + TIME_SLACK_SECS {
            out.push(format!(
                "the zip says the channel ended at {end:.6} s, the pcap has traffic at {last:.6} s"
            ));
        }
    }
    out
}

pub fn decode_bugreport<R: Read>(
    src: R,
    file: &str,
    options: DecodeOptions,
    limits: Limits,
) -> Result<ZipDecode, BugReportError> {
    let mut report = bugreport::read_bugreport_from(src, file, limits)?;
    let mut options = options;
    if options.spice_channel_hint.is_none() {
        options.spice_channel_hint = report.channel().and_then(super::names::channel_type);
    }
    let pcap_name = format!("{file}:traffic.pcap");
    let pcap = match report.traffic_pcap.take() {
        Some(bytes) => match decode_capture(&bytes[..], &pcap_name, options) {
            Ok(r) => Some(r),
            Err(e) => {
                report.findings.push(BugReportFinding::BadPcap.at(
                    e.to_string(),
                    Location {
                        file: Some(pcap_name.clone()),
                        ..Location::default()
                    },
                ));
                None
            }
        },
        None => None,
    };
    let mut rows = Vec::new();
    let mut disagreements = Vec::new();
    let decoded = pcap.as_ref().map(pcap_rows).unwrap_or_default();
    let truncated = report
        .metadata
        .as_ref()
        .and_then(|m| m.traffic_capture.as_ref())
        .is_some_and(|t| t.truncated == Some(true) || t.packets_omitted.unwrap_or(0) > 0);
    let cause = report.disconnect_cause.clone().unwrap_or_default();
    let zip_loc = Location {
        file: Some(format!("{file}:disconnect-cause.json")),
        ..Location::default()
    };
    for (channel, diag) in &cause.per_channel {
        let zrow = zip_row(channel, diag);
        let prow = decoded.iter().find(|r| &r.channel == channel);
        rows.push(zrow.clone());
        let Some(prow) = prow else { continue };
        rows.push(prow.clone());
        for what in channel_disagreements(&zrow, prow, diag, truncated) {
            let mut loc = zip_loc.clone();
            loc.connection = prow.connection.map(crate::timeline::ConnectionId);
            disagreements
                .push(BugReportFinding::Disagreement.at(format!("{channel}: {what}"), loc));
        }
    }
    // Channels the pcap has but the zip does not list.
    for prow in &decoded {
        if !cause.per_channel.contains_key(&prow.channel) {
            rows.push(prow.clone());
            if report.disconnect_cause.is_some() {
                disagreements.push(BugReportFinding::Disagreement.at(
                    format!(
                        "{}: in the pcap but not in disconnect-cause.json",
                        prow.channel
                    ),
                    zip_loc.clone(),
                ));
            }
        }
    }
    Ok(ZipDecode {
        report,
        pcap,
        rows,
        disagreements,
    })
}
