//! `tether decode FILE...`: per connection, the protocol stack, message
//! counts each way, liveness and findings; `--events` lists every event.

use super::input;
use crate::decode::pipeline::{
    ConnectionReport, DecodeOptions, DecodeReport, decode_capture_parallel,
};
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
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let options = DecodeOptions {
        keep_events: args.events,
        ..DecodeOptions::default()
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut reports = Vec::new();
    let mut failed = false;
    let files = input::expand(&args.files);
    for path in &files {
        let name = input::display_name(path);
        let res = input::open(path)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|r| {
                decode_capture_parallel(r, name, options, threads).map_err(|e| e.to_string())
            });
        match res {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let res = match args.format {
        Format::Json => if reports.len() == 1 && files.len() == 1 {
            serde_json::to_writer_pretty(&mut out, &reports[0])
        } else {
            serde_json::to_writer_pretty(&mut out, &reports)
        }
        .map_err(std::io::Error::from)
        .and_then(|_| writeln!(out)),
        Format::Text => reports.iter().try_for_each(|r| render_text(r, &mut out)),
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
        writeln!(out, "    {} {dir} {ch} {what}", e.at)?;
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
        "{}: {} connections, {} frames",
        r.file,
        r.connections.len(),
        r.stats.frames
    )?;
    for d in &r.diagnostics {
        writeln!(out, "  {d}")?;
    }
    for c in &r.connections {
        render_conn(c, out)?;
    }
    Ok(())
}
