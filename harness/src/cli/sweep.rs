//! `tether sweep SPEC --param A=LO..HI:STEP [--param B=...] [--shard K/N]`:
//! the verdict at every point of a grid over one or two constants, run on
//! all cores; the output is the same on any number of threads.
//! Exit status: 0 the sweep ran (whatever its verdicts), 2 bad input.

use crate::replay::sweep::{Axis, Shard, Target, sweep};
use std::path::PathBuf;
use std::process::ExitCode;

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
    let total = match crate::replay::sweep::grid_size(&axes) {
        Ok(n) => n,
        Err(e) => return fail(e.0),
    };
    let target = match Target::load(&args.spec) {
        Ok(t) => t,
        Err(e) => return fail(e.0),
    };
    // A plot that cannot be written is found now, not after the sweep ran.
    for p in &args.plot {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("svg" | "png")) {
            return fail(format!(
                "--plot {}: the name must end in .svg or .png",
                p.display()
            ));
        }
        if let Err(e) = std::fs::File::create(p) {
            return fail(format!("--plot {}: {e}", p.display()));
        }
    }
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
    {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let mine = shard.map_or(total, |s| total / s.n + u64::from(total % s.n >= s.k));
    // indicatif draws only on a terminal, on stderr, so piped output stays
    // clean; ProgressBar is shared across rayon's workers.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(mine),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} points, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let tick = || bar.inc(1);
    let report = match pool.install(|| sweep(&target, &axes, shard, &tick)) {
        Ok(r) => r,
        Err(e) => return fail(e.0),
    };
    bar.finish_and_clear();
    // The results first: a plot that fails late does not lose them.
    match args.format {
        Format::Table => out!("{}", report.to_table()),
        Format::Csv => out!("{}", report.to_csv()),
        Format::Json => outln!("{}", report.to_json()),
    }
    for p in &args.plot {
        if let Err(e) = crate::replay::sweep::plot::plot(&report, p) {
            return fail(format!("--plot {}: {e}", p.display()));
        }
    }
    ExitCode::SUCCESS
}
