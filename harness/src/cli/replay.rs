//! `tether replay [DIR|SPEC...]`: runs every replay spec, compares each
//! verdict with its golden snapshot and checks its expectations.
//! Exit status: 0 all match, 1 a verdict changed or an expectation
//! failed, 2 bad input (125 with `--git-bisect`, git's "cannot test").

use crate::model::replay::{
    BadInput, GoldenStatus, check_expectations, collect_specs, compare_golden, default_golden_dir,
    load_spec, run_spec, snapshot_name,
};
use crate::verdict::{JunitCase, junit};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
}

#[derive(clap::Args)]
pub struct Args {
    /// Spec files or directories of them (default: `replays`).
    pub paths: Vec<PathBuf>,
    /// Where the golden snapshots are (default: `golden/` beside each
    /// spec's directory).
    #[arg(long)]
    pub golden: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run only specs whose index in sorted order is K-1 modulo N (`K/N`).
    #[arg(long)]
    pub shard: Option<String>,
    /// Exit 125 instead of 2 on bad input, so `git bisect run` skips a
    /// commit it cannot test instead of aborting the bisection.
    #[arg(long)]
    pub git_bisect: bool,
}

struct Row {
    name: String,
    path: String,
    golden: GoldenStatus,
    failed: Vec<String>,
    verdict: crate::verdict::Verdict,
}

fn run_all(args: &Args) -> Result<Vec<Row>, BadInput> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("replays")]
    } else {
        args.paths.clone()
    };
    let mut files = collect_specs(&paths)?;
    if files.is_empty() {
        return Err(BadInput("no replay specs found".into()));
    }
    // An empty shard (more shards than specs) is fine: nothing to fail.
    if let Some(text) = &args.shard {
        let shard = crate::sweep::Shard::parse(text).map_err(BadInput)?;
        files = files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| shard.owns(*i as u64))
            .map(|(_, f)| f)
            .collect();
    }
    // Load and run everything first: one bad spec is bad input (exit 2)
    // whatever the others say.
    let mut rows = Vec::new();
    for f in files {
        let spec = load_spec(&f)?;
        let verdict = run_spec(&spec)?;
        let failed = check_expectations(&spec, &verdict)?;
        let dir = args
            .golden
            .clone()
            .unwrap_or_else(|| default_golden_dir(&spec.path));
        let golden = compare_golden(&dir, &snapshot_name(&spec), &verdict.to_json())
            .map_err(|e| BadInput(format!("{}: {e}", dir.display())))?;
        rows.push(Row {
            name: spec.name.clone(),
            path: spec.path.display().to_string(),
            golden,
            failed,
            verdict,
        });
    }
    Ok(rows)
}

pub fn run(args: Args) -> ExitCode {
    let rows = match run_all(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether replay: {e}");
            return ExitCode::from(if args.git_bisect { 125 } else { 2 });
        }
    };
    let bad = |r: &Row| r.golden != GoldenStatus::Matched || !r.failed.is_empty();
    match args.format {
        Format::Text => {
            for r in &rows {
                let v = &r.verdict;
                outln!(
                    "{:<8} {:<40} {}@{}: {}",
                    if bad(r) { "FAIL" } else { "ok" },
                    r.name,
                    v.profile,
                    v.variant,
                    v.to_text().lines().next().unwrap_or_default()
                );
                if r.golden != GoldenStatus::Matched {
                    outln!(
                        "         golden snapshot {}: review with `cargo insta review` (a .snap.new was written)",
                        r.golden.as_str()
                    );
                }
                for f in &r.failed {
                    outln!("         expectation: {f}");
                }
            }
            let n = rows.iter().filter(|r| bad(r)).count();
            outln!("{} specs, {} failed", rows.len(), n);
        }
        Format::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "spec": r.path,
                        "name": r.name,
                        "golden": r.golden.as_str(),
                        "matched": r.golden == GoldenStatus::Matched,
                        "expectations_failed": r.failed,
                        "verdict": r.verdict,
                    })
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
        }
        Format::Junit => {
            let cases: Vec<JunitCase> = rows
                .iter()
                .map(|r| {
                    let mut why = Vec::new();
                    if r.golden != GoldenStatus::Matched {
                        why.push(format!(
                            "verdict {} against golden snapshot",
                            r.golden.as_str()
                        ));
                    }
                    why.extend(r.failed.iter().cloned());
                    JunitCase {
                        name: r.name.clone(),
                        failure: (!why.is_empty()).then(|| why.join("\n")),
                        output: r.verdict.to_text(),
                    }
                })
                .collect();
            out!("{}", junit("tether replay", &cases));
        }
    }
    if rows.iter().any(bad) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
