//! `tether replay [DIR|SPEC...]`: runs every replay spec, compares each
//! verdict with its golden snapshot and checks its expectations.
//! Exit status: 0 all match, 1 a verdict changed or an expectation
//! failed, 2 bad input (125 with `--git-bisect`, git's "cannot test").

use crate::replay::spec::{
    BadInput, GoldenStatus, check_expectations, collect_specs, compare_golden, default_golden_dir,
    load_spec, run_spec, snapshot_name,
};
use crate::verdict::{JunitCase, junit};
use std::path::PathBuf;
use std::process::ExitCode;

/// `replay --format json`, and `merge` of replay shards (then `shard` is
/// null): the shard and the number of specs in all let `merge` find a
/// missing or repeated shard.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ReplayOutput<'a> {
    /// `K/N` for one shard; null for the whole set.
    pub shard: Option<String>,
    pub total_specs: usize,
    pub specs: Vec<ReplaySpec<'a>>,
}

/// One spec of a replay run: its verdict against the golden, or why it
/// could not run.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ReplaySpec<'a> {
    Ran {
        spec: &'a str,
        name: &'a str,
        /// `matched`, `changed`, `missing` or `accepted`.
        golden: &'static str,
        matched: bool,
        expectations_failed: &'a [String],
        verdict: &'a crate::verdict::Verdict,
    },
    Error {
        spec: &'a str,
        name: &'a str,
        error: &'a str,
    },
}

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
    /// Also write a JUnit report to this file (the console output is kept).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Run only specs whose index in sorted order is K-1 modulo N (`K/N`).
    #[arg(long)]
    pub shard: Option<String>,
    /// Accept every changed or new verdict as the golden snapshot (review
    /// the diff first: without this flag a changed verdict prints it and
    /// leaves a `.snap.new`). `TETHER_UPDATE` as insta's `INSTA_UPDATE`:
    /// `always` accepts every change, `new` only specs with no golden yet,
    /// `no` (the default) none.
    #[arg(long)]
    pub accept: bool,
    /// Run only specs whose name contains this text.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Exit 125 instead of 2 on bad input, so `git bisect run` skips a
    /// commit it cannot test instead of aborting the bisection.
    #[arg(long)]
    pub git_bisect: bool,
}

/// One spec's result: it ran (golden and expectations checked), or it
/// could not run, and why.
struct Row {
    name: String,
    path: String,
    outcome: Result<Ran, String>,
    /// Wall time spent on the spec, for CI reports only (the model itself
    /// runs on its virtual clock).
    time: std::time::Duration,
}

struct Ran {
    check: crate::replay::spec::GoldenCheck,
    failed: Vec<String>,
    verdict: crate::verdict::Verdict,
}

impl Ran {
    /// The comparison as it stands after the run: an accepted verdict is
    /// the golden now.
    fn golden(&self) -> GoldenStatus {
        if self.check.accepted {
            GoldenStatus::Matched
        } else {
            self.check.status
        }
    }
}

impl Row {
    fn bad(&self) -> bool {
        match &self.outcome {
            Ok(r) => r.golden() != GoldenStatus::Matched || !r.failed.is_empty(),
            Err(_) => true,
        }
    }
}

/// A replay case's JUnit failure text, from its golden comparison
/// (`matched`, `changed`, `missing`) and failed expectations; `None` when
/// it passed. `merge` builds its report with it too.
pub(super) fn failure_text(golden: &str, expectations: &[String]) -> Option<String> {
    let why: Vec<String> = (golden != GoldenStatus::Matched.as_str())
        .then(|| format!("verdict {golden} against golden snapshot"))
        .into_iter()
        .chain(expectations.iter().cloned())
        .collect();
    (!why.is_empty()).then(|| why.join("\n"))
}

/// Which changed verdicts become goldens: `--accept`, or `TETHER_UPDATE`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Update {
    No,
    New,
    Always,
}

fn update_mode(accept: bool) -> Result<Update, BadInput> {
    if accept {
        return Ok(Update::Always);
    }
    match std::env::var("TETHER_UPDATE").as_deref() {
        Err(_) | Ok("" | "no") => Ok(Update::No),
        Ok("new") => Ok(Update::New),
        Ok("always") => Ok(Update::Always),
        Ok(other) => Err(BadInput(format!(
            "TETHER_UPDATE={other}: expected always, new or no"
        ))),
    }
}

fn run_one(args: &Args, f: &std::path::Path, update: Update) -> Result<Ran, BadInput> {
    let spec = load_spec(f)?;
    let verdict = run_spec(&spec)?;
    let failed = check_expectations(&spec, &verdict)?;
    let dir = args
        .golden
        .clone()
        .unwrap_or_else(|| default_golden_dir(&spec.path));
    let name = snapshot_name(&spec);
    let accept = match update {
        Update::Always => true,
        Update::New => !dir.join(format!("{name}.snap")).exists(),
        Update::No => false,
    };
    let check = compare_golden(
        &dir,
        &name,
        &verdict.to_json(),
        &spec.spec.description,
        accept,
    )
    .map_err(|e| BadInput(format!("{}: {e}", dir.display())))?;
    Ok(Ran {
        check,
        failed,
        verdict,
    })
}

/// The run's place in a sharded run: which shard, of how many specs in all.
struct RunInfo {
    shard: Option<crate::replay::sweep::Shard>,
    total: usize,
}

fn run_all(args: &Args) -> Result<(RunInfo, Vec<Row>), BadInput> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("replays")]
    } else {
        args.paths.clone()
    };
    let mut files = collect_specs(&paths)?;
    if files.is_empty() {
        return Err(BadInput(format!(
            "no replay specs (*.toml) found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let update = update_mode(args.accept)?;
    if let Some(pat) = &args.filter {
        files.retain(|f| {
            f.file_stem()
                .is_some_and(|s| s.to_string_lossy().contains(pat.as_str()))
        });
        if files.is_empty() {
            return Err(BadInput(format!(
                "--filter {pat}: no spec's name contains it"
            )));
        }
    }
    let total = files.len();
    let mut shard = None;
    // An empty shard (more shards than specs) is fine: nothing to fail.
    if let Some(text) = &args.shard {
        let sh = crate::replay::sweep::Shard::parse(text).map_err(BadInput)?;
        shard = Some(sh);
        files = files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| sh.owns(*i as u64))
            .map(|(_, f)| f)
            .collect();
    }
    // A spec that cannot run is reported as such (exit 2); the others
    // still run and are reported.
    let rows = files
        .iter()
        .map(|f| {
            let began = std::time::Instant::now();
            let outcome = run_one(args, f, update).map_err(|e| e.to_string());
            Row {
                name: f
                    .file_stem()
                    .map_or_else(|| f.display().to_string(), |s| s.to_string_lossy().into()),
                path: f.display().to_string(),
                outcome,
                time: began.elapsed(),
            }
        })
        .collect();
    Ok((RunInfo { shard, total }, rows))
}

fn junit_report(rows: &[Row]) -> String {
    let cases: Vec<JunitCase> = rows
        .iter()
        .map(|r| match &r.outcome {
            Ok(ran) => JunitCase {
                name: r.name.clone(),
                failure: failure_text(ran.golden().as_str(), &ran.failed),
                output: ran.verdict.to_text(),
                time: Some(r.time),
                ..JunitCase::default()
            },
            Err(e) => JunitCase {
                name: r.name.clone(),
                error: Some(e.clone()),
                time: Some(r.time),
                ..JunitCase::default()
            },
        })
        .collect();
    junit("tether replay", &cases)
}

pub fn run(args: Args) -> ExitCode {
    let bad_input = ExitCode::from(if args.git_bisect { 125 } else { 2 });
    let (info, rows) = match run_all(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether replay: {e}");
            return bad_input;
        }
    };
    match args.format {
        Format::Text => {
            for r in &rows {
                let ran = match &r.outcome {
                    Ok(ran) => ran,
                    Err(e) => {
                        outln!("{:<8} {:<40} {e}", "ERROR", r.name);
                        continue;
                    }
                };
                let v = &ran.verdict;
                outln!(
                    "{:<8} {:<40} {}@{}: {}",
                    if r.bad() { "FAIL" } else { "ok" },
                    r.name,
                    v.profile,
                    v.variant,
                    v.to_text().lines().next().unwrap_or_default()
                );
                if ran.check.accepted {
                    outln!(
                        "         golden snapshot {}: accepted",
                        ran.check.status.as_str()
                    );
                } else if ran.golden() != GoldenStatus::Matched {
                    outln!(
                        "         golden snapshot {}: a .snap.new was written; `tether replay --accept` (or `cargo insta review`) takes it",
                        ran.golden().as_str()
                    );
                    for line in ran.check.diff(&v.to_json()).lines() {
                        outln!("         {line}");
                    }
                }
                for f in &ran.failed {
                    outln!("         expectation: {f}");
                }
            }
            let n = rows.iter().filter(|r| r.bad()).count();
            outln!("{} specs, {} failed", rows.len(), n);
        }
        Format::Json => {
            let specs: Vec<ReplaySpec> = rows
                .iter()
                .map(|r| match &r.outcome {
                    Ok(ran) => ReplaySpec::Ran {
                        spec: &r.path,
                        name: &r.name,
                        golden: ran.golden().as_str(),
                        matched: ran.golden() == GoldenStatus::Matched,
                        expectations_failed: &ran.failed,
                        verdict: &ran.verdict,
                    },
                    Err(e) => ReplaySpec::Error {
                        spec: &r.path,
                        name: &r.name,
                        error: e,
                    },
                })
                .collect();
            let doc = ReplayOutput {
                shard: info.shard.map(|s| format!("{}/{}", s.k, s.n)),
                total_specs: info.total,
                specs,
            };
            // Through a JSON value, whose keys are sorted, as `merge`'s
            // re-read shards are: a merged run is byte-identical to a whole one.
            let doc = serde_json::to_value(&doc).unwrap_or_default();
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Junit => out!("{}", junit_report(&rows)),
    }
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, junit_report(&rows))
    {
        eprintln!("tether replay: --junit {}: {e}", path.display());
        return bad_input;
    }
    for r in &rows {
        if let Err(e) = &r.outcome {
            eprintln!("tether replay: {e}");
        }
    }
    if rows.iter().any(|r| r.outcome.is_err()) {
        bad_input
    } else if rows.iter().any(Row::bad) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
