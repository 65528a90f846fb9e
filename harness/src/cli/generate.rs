//! `tether gen`: a deterministic large capture for streaming and
//! throughput tests.

use crate::capture::generate::{Content, GenConfig, generate};
use crate::model::size::parse_size;
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Approximate capture size, e.g. `200MB` (decimal), `1GiB` (binary).
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
    /// Output file; `-` for standard output (never a terminal).
    #[arg(short = 'o', long, default_value = "-")]
    pub output: String,
}

/// The smallest capture that holds one packet: the pcap file header (24
/// bytes), one record header (16) and an Ethernet, IPv4 and TCP header
/// (14 + 20 + 20).
const MIN_SIZE: u64 = 24 + 16 + 54;

pub fn run(args: Args) -> ExitCode {
    if args.size < MIN_SIZE {
        eprintln!(
            "error: --size {}: too small for one packet (at least {MIN_SIZE} bytes: file header, record header, Ethernet, IPv4 and TCP headers)",
            args.size
        );
        return ExitCode::from(2);
    }
    if args.output == "-" && std::io::stdout().is_terminal() {
        eprintln!(
            "error: refusing to write a binary capture to a terminal: give -o FILE, or redirect or pipe standard output"
        );
        return ExitCode::from(2);
    }
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
