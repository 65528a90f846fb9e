//! `tether merge SHARD.json...`: one report from the JSON of the shards
//! of a sweep (`tether sweep --shard K/N --format json`) or of a replay
//! run (`tether replay --shard K/N --format json`).
//! Exit status: 0 merged, 1 a merged replay has a failing spec, 2 bad
//! input (different sweeps, overlapping or missing points).

use crate::sweep::{SweepReport, merge};
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
    if docs.iter().all(|d| d.is_array()) {
        return merge_replays(docs);
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

/// Replay rows: concatenated, ordered by spec path, each spec once.
fn merge_replays(docs: Vec<serde_json::Value>) -> ExitCode {
    let mut rows: Vec<serde_json::Value> = docs
        .into_iter()
        .flat_map(|d| match d {
            serde_json::Value::Array(a) => a,
            _ => Vec::new(),
        })
        .collect();
    let key = |r: &serde_json::Value| r["spec"].as_str().unwrap_or_default().to_string();
    rows.sort_by_key(key);
    if let Some(w) = rows.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
        eprintln!(
            "tether merge: spec {} is in more than one shard",
            key(&w[0])
        );
        return ExitCode::from(2);
    }
    let bad = rows.iter().any(|r| {
        r["matched"] != serde_json::Value::Bool(true)
            || r["expectations_failed"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    outln!(
        "{}",
        serde_json::to_string_pretty(&rows).unwrap_or_default()
    );
    if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
