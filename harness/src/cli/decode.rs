//! `tether decode` (placeholder until its issue lands).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("tether decode: not implemented yet");
    ExitCode::from(2)
}
