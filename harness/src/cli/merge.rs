//! `tether merge SHARD.json...`: one report from the JSON of the shards
//! of a sweep (`tether sweep --shard K/N --format json`) or of a replay
//! run (`tether replay --shard K/N --format json`).
//! Exit status: 0 merged, 1 a merged replay has a failing spec, 2 bad
//! input (different sweeps, overlapping or missing points).

use crate::replay::sweep::{SweepReport, merge};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// JSON files written by the shards.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Accept a sweep with points missing (a shard failed).
    #[arg(long)]
    pub allow_partial: bool,
    /// Output format for a merged sweep.
    #[arg(long, value_enum, default_value_t = super::sweep::Format::Json)]
    pub format: super::sweep::Format,
    /// For replay shards: also write a JUnit report of every spec here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let fail = |e: String| {
        eprintln!("tether merge: {e}");
        ExitCode::from(2)
    };
    let mut docs = Vec::new();
    for f in &args.files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return fail(format!("{}: {e}", f.display())),
        };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => docs.push(v),
            Err(e) => return fail(format!("{}: {e}", f.display())),
        }
    }
    if docs
        .iter()
        .all(|d| d.get("specs").is_some_and(|s| s.is_array()))
    {
        return match merge_replays(docs, &args) {
            Ok(code) => code,
            Err(e) => fail(e),
        };
    }
    let mut reports = Vec::new();
    for (d, f) in docs.into_iter().zip(&args.files) {
        match serde_json::from_value::<SweepReport>(d) {
            Ok(r) => reports.push(r),
            Err(e) => return fail(format!("{}: not a sweep report: {e}", f.display())),
        }
    }
    let merged = match merge(reports, args.allow_partial) {
        Ok(m) => m,
        Err(e) => return fail(e.0),
    };
    match args.format {
        super::sweep::Format::Table => out!("{}", merged.to_table()),
        super::sweep::Format::Csv => out!("{}", merged.to_csv()),
        super::sweep::Format::Json => outln!("{}", merged.to_json()),
    }
    ExitCode::SUCCESS
}

/// Replay shards (`tether replay --shard K/N --format json`): every shard
/// of one run exactly once (unless `--allow-partial`), rows concatenated
/// and ordered by spec, each spec once. Exit 2 if a spec could not run, 1
/// if one failed.
fn merge_replays(docs: Vec<serde_json::Value>, args: &Args) -> Result<ExitCode, String> {
    let name = |i: usize| args.files[i].display().to_string();
    let mut seen: Vec<(u64, usize)> = Vec::new();
    let mut of: Option<(u64, u64)> = None;
    for (i, d) in docs.iter().enumerate() {
        let (k, n) = match d["shard"].as_str() {
            Some(t) => {
                let sh = crate::replay::sweep::Shard::parse(t)
                    .map_err(|e| format!("{}: {e}", name(i)))?;
                (sh.k, sh.n)
            }
            None => (1, 1),
        };
        let total = d["total_specs"].as_u64().unwrap_or(0);
        match of {
            None => of = Some((n, total)),
            Some(o) if o != (n, total) => {
                return Err(format!(
                    "{} is shard {k}/{n} of {total} specs, {} one of {} shards of {} specs: not one run",
                    name(i),
                    name(0),
                    o.0,
                    o.1
                ));
            }
            Some(_) => {}
        }
        if let Some((_, j)) = seen.iter().find(|(kk, _)| *kk == k) {
            return Err(format!(
                "shard {k}/{n} given twice: {} and {}",
                name(*j),
                name(i)
            ));
        }
        seen.push((k, i));
    }
    let (n, total) = of.unwrap_or((1, 0));
    let missing: Vec<String> = (1..=n)
        .filter(|k| !seen.iter().any(|(kk, _)| kk == k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() && !args.allow_partial {
        return Err(format!(
            "shard {} missing (pass --allow-partial to merge what is there)",
            missing.join(", ")
        ));
    }
    let mut rows: Vec<serde_json::Value> = docs
        .into_iter()
        .flat_map(|mut d| match d["specs"].take() {
            serde_json::Value::Array(a) => a,
            _ => Vec::new(),
        })
        .collect();
    let key = |r: &serde_json::Value| r["spec"].as_str().unwrap_or_default().to_string();
    rows.sort_by_key(key);
    if let Some(w) = rows.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
        return Err(format!("spec {} is in more than one shard", key(&w[0])));
    }
    let errored = rows.iter().any(|r| r.get("error").is_some());
    let bad = rows.iter().any(|r| {
        r["matched"] != serde_json::Value::Bool(true)
            || r["expectations_failed"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    if let Some(path) = &args.junit {
        std::fs::write(path, junit_of_rows(&rows))
            .map_err(|e| format!("--junit {}: {e}", path.display()))?;
    }
    let doc = serde_json::json!({ "shard": null, "total_specs": total, "specs": rows });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(if errored {
        ExitCode::from(2)
    } else if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// JUnit from merged replay rows: a spec that could not run is an error,
/// a changed verdict or failed expectation a failure.
fn junit_of_rows(rows: &[serde_json::Value]) -> String {
    use crate::verdict::{JunitCase, junit};
    let cases: Vec<JunitCase> = rows
        .iter()
        .map(|r| {
            let expectations: Vec<String> = r["expectations_failed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect();
            JunitCase {
                name: r["name"].as_str().unwrap_or_default().to_string(),
                error: r["error"].as_str().map(str::to_string),
                // A spec that could not run has no golden comparison.
                failure: r["golden"]
                    .as_str()
                    .and_then(|g| super::replay::failure_text(g, &expectations)),
                output: serde_json::to_string_pretty(&r["verdict"]).unwrap_or_default(),
                time: None,
            }
        })
        .collect();
    junit("tether replay", &cases)
}
