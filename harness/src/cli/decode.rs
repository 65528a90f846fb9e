//! `tether decode FILE...`: per connection, the protocol stack, message
//! counts each way, liveness and findings; `--events` lists every event.

use super::input;
use crate::decode::pipeline::{
    ConnectionReport, DecodeOptions, DecodeReport, decode_capture_parallel,
};
use crate::decode::spice::report::{ChannelRow, ZipDecode, decode_bugreport, pcap_rows};
use crate::timeline::{CloseKind, EventKind};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Captures (pcap or pcapng) or directories of them; `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also list every decoded event.
    #[arg(long)]
    pub events: bool,
    /// Decoder threads (default: all cores). Output is identical for any
    /// number.
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub select: super::select::SelectArgs,
    #[command(flatten)]
    pub keys: super::keys::KeyArgs,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// `decode --format json`: the same shape for any number of inputs.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct DecodeOutput {
    pub captures: Vec<DecodeReport>,
    pub bug_reports: Vec<ZipDecode>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// One JSON object per line, written as each input is read:
    /// `{"capture": {...}}` or `{"bug_report": {...}}`.
    Jsonl,
}

pub fn run(args: Args) -> ExitCode {
    let keylog = match args.keys.load() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = DecodeOptions {
        keep_events: args.events,
        flow: args.limits.flow(),
        messages: args.limits.messages(),
        ..DecodeOptions::default()
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut reports = Vec::new();
    let mut zips = Vec::new();
    let mut failed = false;
    let files = match input::expand_with_zips(&args.files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for path in &files {
        let name = input::display_name(path);
        if input::is_zip(path) {
            let res = input::open(path)
                .map_err(|e| format!("{name}: {e}"))
                .and_then(|r| {
                    decode_bugreport(r, name, with_keys(&options, &keylog), args.limits.zip())
                        .map_err(|e| e.to_string())
                });
            match res {
                Ok(z) => {
                    failed |= report_unread(name, &z.report.findings);
                    if let Some(p) = &z.pcap {
                        failed |= report_unread(name, &p.diagnostics);
                    }
                    if matches!(args.format, Format::Jsonl) {
                        outln!("{}", serde_json::json!({ "bug_report": z }));
                    } else {
                        zips.push(z)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
            continue;
        }
        let res = input::open(path)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|r| {
                decode_capture_parallel(r, name, with_keys(&options, &keylog), threads)
                    .map_err(|e| e.to_string())
            });
        match res {
            Ok(mut r) => {
                failed |= report_unread(name, &r.diagnostics);
                r.rebase();
                if !args.select.is_empty() {
                    select_connections(&mut r, &args.select);
                }
                if matches!(args.format, Format::Jsonl) {
                    outln!("{}", serde_json::json!({ "capture": r }));
                } else {
                    reports.push(r)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let res = match args.format {
        // One shape for any number of inputs.
        Format::Json => {
            let all = DecodeOutput {
                captures: reports,
                bug_reports: zips,
            };
            serde_json::to_writer_pretty(&mut out, &all)
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(out))
        }
        Format::Jsonl => Ok(()),
        Format::Text => zips
            .iter()
            .try_for_each(|z| render_zip(z, &mut out))
            .and_then(|_| reports.iter().try_for_each(|r| render_text(r, &mut out))),
    };
    if let Err(e) = res
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Keeps the connections (and their flow summaries) the selection names;
/// times count from the capture's first connection.
/// The options for one input, with a key store of its own.
fn with_keys(
    options: &DecodeOptions,
    keylog: &Option<crate::decode::tls::keylog::KeyLog>,
) -> DecodeOptions {
    DecodeOptions {
        keys: super::keys::store(keylog),
        ..options.clone()
    }
}

/// Keeps the selected connections of a report already re-based on its
/// first frame.
fn select_connections(r: &mut DecodeReport, sel: &super::select::SelectArgs) {
    let span = |id: crate::timeline::ConnectionId| {
        r.flows.iter().find(|f| f.id == id).map_or((0.0, 0.0), |f| {
            (f.start.as_secs_f64(), f.last.as_secs_f64())
        })
    };
    let keep: Vec<crate::timeline::ConnectionId> = r
        .connections
        .iter()
        .filter(|c| {
            let (from, to) = span(c.connection);
            let mut protocols = c.stack.clone();
            protocols.push(c.protocol.as_str());
            sel.keeps(&super::select::Candidate {
                connection: c.connection.0,
                client: &c.client,
                protocols: &protocols,
                from,
                to,
            })
        })
        .map(|c| c.connection)
        .collect();
    r.connections.retain(|c| keep.contains(&c.connection));
    r.flows.retain(|f| keep.contains(&f.id));
}

/// Says on stderr, located, each part of a capture that could not be read
/// (the report on stdout keeps everything that could); true if any.
pub(super) fn report_unread(name: &str, diagnostics: &[crate::timeline::Finding]) -> bool {
    let mut any = false;
    for f in crate::decode::pipeline::unread_parts(diagnostics) {
        eprintln!("error: {name}: not fully read: {f}");
        any = true;
    }
    any
}

fn render_conn(c: &ConnectionReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "connection {} {} → {}  {}",
        c.connection.0,
        c.client,
        c.server,
        c.stack.join("/")
    )?;
    for (label, act, counts) in [
        ("c→s", &c.c2s, &c.counts.c2s),
        ("s→c", &c.s2c, &c.counts.s2c),
    ] {
        let span = match (act.first, act.last) {
            (Some(f), Some(l)) => format!("active {f} .. {l}"),
            _ => "silent".to_string(),
        };
        let msgs: Vec<String> = counts.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        writeln!(
            out,
            "  {label}: {span}; {}",
            if msgs.is_empty() {
                "-".to_string()
            } else {
                msgs.join(" ")
            }
        )?;
    }
    for e in &c.events {
        let dir = e.direction.map(|d| d.as_str()).unwrap_or("   ");
        let what = describe(&e.kind);
        let ch = e.channel.as_deref().unwrap_or("");
        let frame = e.frame.map_or_else(String::new, |f| format!("#{f} "));
        writeln!(out, "    {} {frame}{dir} {ch} {what}", e.at)?;
    }
    for f in &c.findings {
        writeln!(out, "  {f}")?;
    }
    Ok(())
}

/// One event as a line of text: protocol, name, size and every detail
/// field as `key=value` (strings bare unless they need quotes; empty
/// values left out), for any protocol.
pub fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Open { how } => format!("open ({})", json_word(&serde_json::json!(how))),
        EventKind::Message {
            protocol,
            name,
            len,
            detail,
        } => {
            let mut s = format!("{protocol} {name} ({len} B)");
            for (k, v) in detail {
                let shown = match v {
                    serde_json::Value::Null => continue,
                    serde_json::Value::Array(a) if a.is_empty() => continue,
                    v => json_word(v),
                };
                s.push_str(&format!(" {k}={shown}"));
            }
            s
        }
        EventKind::Ping {
            protocol,
            id,
            payload_len,
        } => {
            let id = id.map(|i| format!(" id={i}")).unwrap_or_default();
            format!("{protocol} ping{id} payload={payload_len} B")
        }
        EventKind::Pong {
            protocol,
            id,
            payload_len,
            rtt,
        } => {
            let id = id.map(|i| format!(" id={i}")).unwrap_or_default();
            let rtt = match rtt {
                Some(r) => format!(" rtt={r}s"),
                None => " unsolicited".to_string(),
            };
            format!("{protocol} pong{id} payload={payload_len} B{rtt}")
        }
        EventKind::Close(c) => match c {
            CloseKind::Fin => "tcp fin".to_string(),
            CloseKind::Rst => "tcp rst".to_string(),
            CloseKind::EndOfCapture => "end of capture".to_string(),
            CloseKind::WsClose { code, reason } => {
                let code = code.map_or("none".to_string(), |c| c.to_string());
                format!(
                    "ws close code={code} reason={}",
                    json_word(&serde_json::json!(reason))
                )
            }
            CloseKind::Protocol { name } => format!("close {name}"),
        },
        EventKind::Gap { len } => format!("gap {len} B"),
        EventKind::Finding(f) => format!("{f}"),
    }
}

/// A JSON value as one word: plain strings without quotes when that is
/// unambiguous, everything else as compact JSON.
fn json_word(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s)
            if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '"') =>
        {
            s.clone()
        }
        v => v.to_string(),
    }
}

pub fn render_text(r: &DecodeReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} connections, {} frames{}",
        r.file,
        r.connections.len(),
        r.stats.frames,
        r.start
            .map(|t| format!(", first frame {} (times count from it)", t.utc()))
            .unwrap_or_default()
    )?;
    for d in &r.diagnostics {
        writeln!(out, "  {d}")?;
    }
    let rows = pcap_rows(r);
    let mut sessions: Vec<Option<u64>> = rows.iter().map(|r| r.session).collect();
    sessions.dedup();
    for session in sessions {
        match session {
            Some(id) => writeln!(out, "  spice session {id}:")?,
            None => writeln!(out, "  spice, session unknown:")?,
        }
        let mine: Vec<ChannelRow> = rows
            .iter()
            .filter(|r| r.session == session)
            .cloned()
            .collect();
        render_rows(&mine, out)?;
    }
    for c in &r.connections {
        render_conn(c, out)?;
    }
    Ok(())
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

/// The per-channel table: one row per channel and source.
pub fn render_rows(rows: &[ChannelRow], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "    {:<9} {:<6} {:>5} {:>9} {:>9} {:>7} {:>8} {:>5} {:>5} {:>21} {:>13} {:>13}  ended",
        "channel",
        "source",
        "conn",
        "bytes in",
        "bytes out",
        "msgs in",
        "msgs out",
        "pings",
        "pongs",
        "rtt min..max (s)",
        "last recv",
        "last send"
    )?;
    for r in rows {
        let rtt = match (r.rtt_min, r.rtt_max) {
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => "-".to_string(),
        };
        let secs = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |s| format!("{s:.6}"));
        writeln!(
            out,
            "    {:<9} {:<6} {:>5} {:>9} {:>9} {:>7} {:>8} {:>5} {:>5} {:>21} {:>13} {:>13}  {}",
            r.channel,
            r.source,
            opt(&r.connection),
            opt(&r.bytes_in),
            opt(&r.bytes_out),
            opt(&r.messages_in),
            opt(&r.messages_out),
            opt(&r.pings),
            opt(&r.pongs),
            rtt,
            secs(r.last_recv),
            secs(r.last_send),
            r.ended.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

/// A bug-report zip: its own diagnostics beside the pcap decode.
pub fn render_zip(z: &ZipDecode, out: &mut dyn Write) -> std::io::Result<()> {
    let r = &z.report;
    let m = r.metadata.clone().unwrap_or_default();
    let target = m.target.clone().or_else(|| {
        m.target_host
            .as_ref()
            .map(|h| format!("{h}:{}", opt(&m.target_port)))
    });
    writeln!(
        out,
        "{}: ryll bug report, channel {}, ryll {}, target {}, uptime {} s",
        r.file,
        r.channel().unwrap_or("?"),
        opt(&m.ryll_version),
        target.as_deref().unwrap_or("-"),
        opt(&m.session_uptime_secs)
    )?;
    writeln!(out, "  members: {}", r.members.join(" "))?;
    if let Some(c) = &r.disconnect_cause {
        writeln!(
            out,
            "  [zip] disconnect: channel {}, kind {}, keepalive fired {}, {:?}",
            opt(&c.channel),
            opt(&c.disconnect_kind),
            opt(&c.keepalive_timeout_fired),
            c.error_message.as_deref().unwrap_or("")
        )?;
    }
    render_rows(&z.rows, out)?;
    for f in &r.findings {
        writeln!(out, "  [zip] {f}")?;
    }
    for f in &z.disagreements {
        writeln!(out, "  [zip vs pcap] {f}")?;
    }
    if let Some(p) = &z.pcap {
        for c in &p.connections {
            for f in &c.findings {
                writeln!(out, "  [pcap] {f}")?;
            }
        }
        for d in &p.diagnostics {
            writeln!(out, "  [pcap] {d}")?;
        }
    }
    Ok(())
}
