//! `tether bisect SPEC --param NAME --range LO..HI [--resolution R]`:
//! the value of one constant where the spec's verdict flips.
//! Exit status: 0 a boundary was found, 1 no boundary or a non-monotonic
//! constant, 2 bad input.

use crate::replay::sweep::{BisectResult, Target, bisect, parse_range};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Replay spec (TOML, as in `replays/`).
    pub spec: PathBuf,
    /// The constant to search, e.g. `lb_idle_timeout`.
    #[arg(long)]
    pub param: String,
    /// `LO..HI`: durations with units (`10s..10m`) or whole numbers.
    #[arg(long)]
    pub range: String,
    /// Stop when the bracket is this narrow (default: 1 ms, or 1 for counts).
    #[arg(long)]
    pub resolution: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: Args) -> ExitCode {
    let fail = |e: String| {
        eprintln!("tether bisect: {e}");
        ExitCode::from(2)
    };
    let (kind, lo, hi) = match parse_range(&args.range) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let resolution = match &args.resolution {
        None if kind == crate::replay::sweep::Kind::Duration => 1_000,
        None => 1,
        Some(r) => match kind.parse(r) {
            Ok(v) => v,
            Err(e) => return fail(format!("--resolution: {e}")),
        },
    };
    let target = match Target::load(&args.spec) {
        Ok(t) => t,
        Err(e) => return fail(e.0),
    };
    let report = match bisect(&target, &args.param, kind, lo, hi, resolution) {
        Ok(r) => r,
        Err(e) => return fail(e.0),
    };
    match args.format {
        Format::Text => out!("{}", report.to_text()),
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
    }
    match report.result {
        BisectResult::Boundary { .. } => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}
