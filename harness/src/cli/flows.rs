//! `tether flows FILE...`: one row per TCP connection.

use super::input;
use crate::decode::pipeline::{FlowTable, flow_table, flow_table_decoded};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Captures (pcap or pcapng) or directories of them; `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub select: super::select::SelectArgs,
    /// With a key log each connection is decoded (slower) and its row names
    /// the stack inside TLS (`tcp/tls/ws/rfb`).
    #[command(flatten)]
    pub keys: super::keys::KeyArgs,
    #[command(flatten)]
    pub limits: super::limits::FlowLimitArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// One row per line, each naming its file, written as each input is read.
    Jsonl,
}

/// A flow row with the capture it came from: one element of
/// `flows --format json`.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct FileRow<'a> {
    file: &'a str,
    #[serde(flatten)]
    row: &'a crate::decode::pipeline::FlowRow,
}

pub fn run(args: Args) -> ExitCode {
    let keylog = match args.keys.load() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut tables = Vec::new();
    let mut failed = false;
    let files = match input::expand(&args.files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for path in &files {
        let name = input::display_name(path);
        let table = input::open(path)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|r| {
                match &keylog {
                    None => flow_table(r, name, args.limits.flow()),
                    Some(_) => flow_table_decoded(
                        r,
                        name,
                        crate::decode::pipeline::DecodeOptions {
                            flow: args.limits.flow(),
                            keys: super::keys::store(&keylog),
                            ..Default::default()
                        },
                    ),
                }
                .map_err(|e| e.to_string())
            });
        match table {
            Ok(mut t) => {
                failed |= super::decode::report_unread(name, &t.diagnostics);
                if !args.select.is_empty() {
                    t.rows.retain(|r| {
                        args.select.keeps(&super::select::Candidate {
                            connection: r.connection.0,
                            client: &r.client,
                            protocols: &[r.protocol.as_str()],
                            from: r.start,
                            to: r.start + r.duration,
                        })
                    });
                }
                if matches!(args.format, Format::Jsonl) {
                    for row in &t.rows {
                        let line = serde_json::to_string(&FileRow { file: &t.file, row });
                        outln!("{}", line.unwrap_or_default());
                    }
                } else {
                    tables.push(t)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    let res = match args.format {
        // One flat array of rows for any number of inputs, each naming its file.
        Format::Json => {
            let rows: Vec<FileRow> = tables
                .iter()
                .flat_map(|t| t.rows.iter().map(|row| FileRow { file: &t.file, row }))
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows)
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(out))
        }
        Format::Jsonl => Ok(()),
        Format::Text => tables.iter().try_for_each(|t| render_text(t, &mut out)),
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

fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

pub fn render_text(t: &FlowTable, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} connections, {} frames ({} TCP, {} other, {} IP fragments, {} malformed)",
        t.file,
        t.rows.len(),
        t.stats.frames,
        t.stats.tcp_segments,
        t.stats.not_tcp,
        t.stats.ip_fragments,
        t.stats.malformed
    )?;
    writeln!(
        out,
        "{:>4}  {:<22} {:<22} {:>10} {:>10} {:>10} {:>10} {:>6} {:>4}  {:<13} protocol",
        "#", "client", "server", "start", "duration", "c→s", "s→c", "segs", "gaps", "end"
    )?;
    for r in &t.rows {
        let end = match r.closed_by {
            Some(who) => format!("{} by {who}", serde_plain(&r.end)),
            None => serde_plain(&r.end),
        };
        writeln!(
            out,
            "{:>4}  {:<22} {:<22} {:>10.3} {:>10.3} {:>10} {:>10} {:>6} {:>4}  {:<13} {}",
            r.connection.0,
            r.client,
            r.server,
            r.start,
            r.duration,
            human_bytes(r.bytes_c2s),
            human_bytes(r.bytes_s2c),
            r.segments,
            r.gaps,
            end,
            r.stack
                .as_deref()
                .map_or(r.protocol.as_str(), |s| s.strip_prefix("tcp/").unwrap_or(s))
        )?;
    }
    for d in &t.diagnostics {
        writeln!(out, "  {d}")?;
    }
    Ok(())
}

fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
