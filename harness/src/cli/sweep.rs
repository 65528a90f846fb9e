//! `tether sweep SPEC --param A=LO..HI:STEP [--param B=...] [--shard K/N]`:
//! the verdict at every point of a grid over one or two constants, run on
//! all cores; the output is the same on any number of threads.
//! Exit status: 0 the sweep ran (whatever its verdicts), 2 bad input.

use crate::sweep::{Axis, Shard, Target, sweep};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Replay spec (TOML, as in `replays/`).
    pub spec: PathBuf,
    /// `NAME=LO..HI:STEP`, once or twice (the second varies fastest).
    #[arg(long = "param", value_name = "NAME=LO..HI:STEP", required = true)]
    pub params: Vec<String>,
    /// Run only this shard of the grid: `K/N`, 1-based.
    #[arg(long)]
    pub shard: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also draw the sweep: `.svg` or `.png` (a line for one constant, a
    /// heatmap for two). Repeat for both.
    #[arg(long)]
    pub plot: Vec<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: Args) -> ExitCode {
    let fail = |e: String| {
        eprintln!("tether sweep: {e}");
        ExitCode::from(2)
    };
    let axes: Vec<Axis> = match args.params.iter().map(|p| Axis::parse(p)).collect() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let shard = match args.shard.as_deref().map(Shard::parse).transpose() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let total = match crate::sweep::grid_size(&axes) {
        Ok(n) => n,
        Err(e) => return fail(e.0),
    };
    let target = match Target::load(&args.spec) {
        Ok(t) => t,
        Err(e) => return fail(e.0),
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
    {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    // Progress on a terminal only, on stderr, so piped output stays clean.
    let tty = std::io::stderr().is_terminal();
    let done = AtomicU64::new(0);
    let mine = shard.map_or(total, |s| total / s.n + u64::from(total % s.n >= s.k));
    let tick = || {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if tty && (n.is_multiple_of(64) || n == mine) {
            eprint!("\r{n}/{mine} points");
            if n == mine {
                eprintln!();
            }
        }
    };
    let report = match pool.install(|| sweep(&target, &axes, shard, &tick)) {
        Ok(r) => r,
        Err(e) => return fail(e.0),
    };
    for p in &args.plot {
        if let Err(e) = crate::sweep::plot::plot(&report, p) {
            return fail(e);
        }
    }
    match args.format {
        Format::Table => print!("{}", report.to_table()),
        Format::Csv => print!("{}", report.to_csv()),
        Format::Json => println!("{}", report.to_json()),
    }
    ExitCode::SUCCESS
}
