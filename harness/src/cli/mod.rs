//! Subcommands. Thin: parse arguments, call the library, render.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout is gone (a reader such as `head` closed the pipe): no
/// further output is attempted, and the command still ends with the exit
/// code its work earned.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Set when a write to stdout failed for another reason than a closed pipe.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout without panicking on a closed pipe (`print!` does).
fn write_out(args: std::fmt::Arguments) {
    use std::io::Write;
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: writing to stdout: {e}");
            STDOUT_FAILED.store(true, Ordering::Relaxed);
        }
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
}

/// `print!` for command output: see [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!($($arg)*)) };
}

/// `println!` for command output: see [`write_out`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

pub mod bisect;
pub mod decode;
pub mod flows;
pub mod generate;
mod input;
pub mod keys;
pub mod limits;
pub mod merge;
pub mod proxy;
pub mod replay;
pub mod run;
pub mod schema;
pub mod score;
pub mod select;
pub mod sweep;
pub mod triage;

#[derive(Parser)]
#[command(
    name = "tether",
    version,
    about = "Protocol conformance and replay harness for SPICE, RFB/VNC and WebSocket sessions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One row per TCP connection in a capture.
    #[command(
        after_help = "Example:\n  tether flows corpora/recorded/spice-plain.pcap\n  tcpdump -i lo -w - port 5900 | tether flows -"
    )]
    Flows(flows::Args),
    /// Decode each connection's protocol stack into events and findings.
    #[command(
        after_help = "Example:\n  tether decode corpora/recorded/ws-novnc.pcap --events\n  tether decode corpora/bugreports --format json"
    )]
    Decode(decode::Args),
    /// Write a deterministic large capture for streaming and throughput tests.
    #[command(after_help = "Example:\n  tether gen --size 200MB --content spice -o big.pcap")]
    Gen(generate::Args),
    /// Run a synthetic timeline against a client profile and print the verdict.
    #[command(
        after_help = "Example:\n  tether run corpora/synthetic/spice-lb-idle.toml --profile spice-gtk --set lb_idle_timeout=301s\n  tether run --list"
    )]
    Run(run::Args),
    /// Run replay specs and compare each verdict with its golden snapshot.
    #[command(
        after_help = "Example:\n  tether replay\n  tether replay --junit replay.xml --shard 1/4 replays/"
    )]
    Replay(replay::Args),
    /// Binary-search one constant of a replay spec for where its verdict flips.
    #[command(
        after_help = "Example:\n  tether bisect replays/spice-gtk-lb-idle.toml --param lb_idle_timeout --range 1s..20m"
    )]
    Bisect(bisect::Args),
    /// Run a replay spec over a grid of one or two constants, on all cores.
    #[command(
        after_help = "Example:\n  tether sweep replays/spice-gtk-lb-idle.toml --param lb_idle_timeout=1s..20m:1s --plot sweep.svg"
    )]
    Sweep(sweep::Args),
    /// What ended the session in a capture or bug-report zip, and would a fix have saved it.
    #[command(
        after_help = "Example:\n  tether triage corpora/lab/spice-client-frozen-long.pcap\n  tether triage corpora/bugreports/ryll-disconnect-main.zip --svg session.svg"
    )]
    Triage(triage::Args),
    /// Triage every lab recording against its truth file: right, wrong, and a confusion table.
    #[command(after_help = "Example:\n  tether score corpora/lab --format json")]
    Score(score::Args),
    /// Merge the JSON of `sweep --shard` or `replay --shard` runs into one report.
    #[command(
        after_help = "Example:\n  tether merge sweep-1.json sweep-2.json --format csv\n  tether merge replay-*.json --junit replay.xml"
    )]
    Merge(merge::Args),
    /// Forward a live session, record it, inject faults and judge it as it runs.
    #[command(
        after_help = "Example:\n  tether proxy --listen 127.0.0.1:6200 --upstream 127.0.0.1:5900 --blackhole 60s..90s --duration 5m"
    )]
    Proxy(Box<proxy::Args>),
    /// Print a shell completion script, e.g. `tether completions bash > /etc/bash_completion.d/tether`.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), e.g. `tether man > tether.1`.
    Man,
    /// Print the JSON Schema of a command's `--format json` output (also in `schemas/`).
    #[command(after_help = "Example:\n  tether schema triage > triage.schema.json")]
    Schema { command: schema::Output },
}

/// Writes a command's whole output to stdout through [`write_out`]; `Err`
/// when stdout failed for another reason than a reader that went away
/// (`| head`), and the caller exits 2.
fn print(body: &str) -> Result<(), ()> {
    write_out(format_args!("{body}"));
    if STDOUT_FAILED.load(Ordering::Relaxed) {
        Err(())
    } else {
        Ok(())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Flows(a) => flows::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Gen(a) => generate::run(a),
        Command::Run(a) => run::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Bisect(a) => bisect::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Triage(a) => triage::run(a),
        Command::Score(a) => score::run(a),
        Command::Proxy(a) => proxy::run(*a),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "tether",
                &mut buf,
            );
            out!("{}", String::from_utf8_lossy(&buf));
            ExitCode::SUCCESS
        }
        Command::Schema { command } => {
            outln!("{}", schema::json(command));
            ExitCode::SUCCESS
        }
        Command::Man => {
            let mut buf = Vec::new();
            match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut buf) {
                Ok(()) => {
                    out!("{}", String::from_utf8_lossy(&buf));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
