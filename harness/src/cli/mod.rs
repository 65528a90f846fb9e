//! Subcommands. Thin: parse arguments, call the library, render.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod decode;
pub mod flows;
pub mod generate;
mod input;
pub mod replay;
pub mod run;

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
    Flows(flows::Args),
    /// Decode each connection's protocol stack into events and findings.
    Decode(decode::Args),
    /// Write a deterministic large capture for streaming and throughput tests.
    Gen(generate::Args),
    /// Run a synthetic timeline against a client profile and print the verdict.
    Run(run::Args),
    /// Run replay specs and compare each verdict with its golden snapshot.
    Replay(replay::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Flows(a) => flows::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Gen(a) => generate::run(a),
        Command::Run(a) => run::run(a),
        Command::Replay(a) => replay::run(a),
    }
}
