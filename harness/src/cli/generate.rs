//! `tether gen`: a deterministic large capture for streaming and
//! throughput tests; with `--content server`, a server host's capture of
//! many client sessions and their truth file beside it.

use crate::capture::generate::server::{ServerConfig, generate_server};
use crate::capture::generate::{Content, GenConfig, generate};
use crate::model::duration::parse_duration;
use crate::model::size::parse_size;
use crate::timeline::Micros;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Approximate capture size, e.g. `200MB` (decimal), `1GiB` (binary);
    /// 100MB unless given. With `--content server`, an optional cap.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Connections open at once.
    #[arg(long, default_value_t = 32)]
    pub concurrent: usize,
    /// What the connections carry.
    #[arg(long, value_enum, default_value_t = Content::Realistic)]
    pub content: Content,
    /// Output file; `-` for standard output (never a terminal).
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
    /// `--content server`: client sessions in the capture.
    #[arg(long, default_value_t = 100)]
    pub sessions: u64,
    /// `--content server`: how long the capture runs, e.g. `20m`, `2h`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub duration: Micros,
    /// `--content server`: the truth file (default: beside the capture,
    /// `OUT.truth.toml`; required with `-o -`).
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

/// `OUT.pcap` → `OUT.truth.toml`, in the same directory.
pub fn truth_path_for(capture: &Path) -> PathBuf {
    let stem = capture
        .file_stem()
        .map_or_else(|| "capture".into(), |s| s.to_string_lossy().into_owned());
    capture.with_file_name(format!("{stem}.truth.toml"))
}

/// The command line a truth file records: what regenerates the capture.
fn script(args: &Args) -> String {
    let mut s = format!(
        "tether gen --content server --sessions {} --duration {} --seed {}",
        args.sessions,
        crate::model::duration::format_duration(args.duration),
        args.seed
    );
    if let Some(size) = args.size {
        s.push_str(&format!(" --size {size}"));
    }
    s
}

fn run_server(args: &Args) -> ExitCode {
    let truth_path = match (&args.truth, args.output.as_str()) {
        (Some(p), _) => p.clone(),
        (None, "-") => {
            eprintln!("error: --content server -o - needs --truth PATH for the truth file");
            return ExitCode::from(2);
        }
        (None, o) => truth_path_for(Path::new(o)),
    };
    if args.sessions == 0 {
        eprintln!("error: --sessions 0: nothing to generate");
        return ExitCode::from(2);
    }
    let capture_name = if args.output == "-" {
        "-".to_string()
    } else {
        Path::new(&args.output)
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let cfg = ServerConfig {
        sessions: args.sessions,
        duration: args.duration,
        seed: args.seed,
        size_cap: args.size,
        capture_name,
        script: script(args),
    };
    let res = if args.output == "-" {
        let stdout = std::io::stdout();
        generate_server(&cfg, BufWriter::with_capacity(1 << 20, stdout.lock()))
    } else {
        std::fs::File::create(&args.output)
            .and_then(|f| generate_server(&cfg, BufWriter::with_capacity(1 << 20, f)))
    };
    let (stats, truth) = match res {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", args.output);
            return ExitCode::from(2);
        }
    };
    let text = match toml::to_string(&truth) {
        Ok(t) => format!(
            "# Written by {}; the truth of every generated session.\n{t}",
            truth.script.as_deref().unwrap_or("tether gen")
        ),
        Err(e) => {
            eprintln!("error: truth: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(&truth_path, text) {
        eprintln!("error: {}: {e}", truth_path.display());
        return ExitCode::from(2);
    }
    eprintln!(
        "wrote {} bytes: {} packets, {} sessions; truth in {}",
        stats.bytes,
        stats.packets,
        truth.sessions.len(),
        truth_path.display()
    );
    ExitCode::SUCCESS
}

/// The smallest capture that holds one packet: the pcap file header (24
/// bytes), one record header (16) and an Ethernet, IPv4 and TCP header
/// (14 + 20 + 20).
const MIN_SIZE: u64 = 24 + 16 + 54;

pub fn run(args: Args) -> ExitCode {
    let size = args.size.unwrap_or(100_000_000);
    if size < MIN_SIZE {
        eprintln!(
            "error: --size {size}: too small for one packet (at least {MIN_SIZE} bytes: file header, record header, Ethernet, IPv4 and TCP headers)"
        );
        return ExitCode::from(2);
    }
    if args.output == "-" && std::io::stdout().is_terminal() {
        eprintln!(
            "error: refusing to write a binary capture to a terminal: give -o FILE, or redirect or pipe standard output"
        );
        return ExitCode::from(2);
    }
    if args.content == Content::Server {
        return run_server(&args);
    }
    let cfg = GenConfig {
        size,
        seed: args.seed,
        concurrent: args.concurrent,
        content: args.content,
        ..GenConfig::default()
    };
    let res = if args.output == "-" {
        let stdout = std::io::stdout();
        generate(cfg, BufWriter::with_capacity(1 << 20, stdout.lock()))
    } else {
        std::fs::File::create(&args.output)
            .and_then(|f| generate(cfg, BufWriter::with_capacity(1 << 20, f)))
    };
    match res {
        Ok(stats) => {
            eprintln!(
                "wrote {} bytes: {} packets, {} connections, {} payload bytes",
                stats.bytes, stats.packets, stats.connections, stats.payload_bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", args.output);
            let _ = std::io::stderr().flush();
            ExitCode::from(2)
        }
    }
}
