//! `tether gen`: a deterministic large capture for streaming and
//! throughput tests.

use crate::capture::generate::{Content, GenConfig, generate};
use std::io::{BufWriter, Write};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Approximate capture size, e.g. `200MB`, `1GB`, `500KiB`.
    #[arg(long, default_value = "100MB", value_parser = parse_size)]
    pub size: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Connections open at once.
    #[arg(long, default_value_t = 32)]
    pub concurrent: usize,
    /// What the connections carry.
    #[arg(long, value_enum, default_value_t = Content::Realistic)]
    pub content: Content,
    /// Output file; `-` for standard output.
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1048576.0,
        "gib" => 1073741824.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, kB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    Ok((n * mult) as u64)
}

pub fn run(args: Args) -> ExitCode {
    let cfg = GenConfig {
        size: args.size,
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
