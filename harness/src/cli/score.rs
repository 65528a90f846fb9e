//! `tether score DIR`: triage every lab recording against its truth file.

use crate::replay::score::{render_text, score_dir};
use crate::triage::TriageOptions;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A directory of recordings, each `NAME.pcap` with `NAME.truth.toml`.
    #[arg(default_value = "corpora/lab")]
    pub dir: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Worker threads (default: all cores); the output is the same for any.
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Exit 0 when every recording is right, 1 when any is wrong, 2 when the
/// directory or a truth file could not be read.
pub fn run(args: Args) -> ExitCode {
    // What-ifs run too: the score says how often the recorded client's
    // model run reproduces the recording.
    let options = TriageOptions::default();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let score = match score_dir(std::path::Path::new(&args.dir), &options, threads.max(1)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let body = match args.format {
        Format::Text => render_text(&score),
        Format::Json => match serde_json::to_string_pretty(&score) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if super::print(&body).is_err() {
        return ExitCode::from(2);
    }
    for r in score.results.iter().filter(|r| r.error.is_some()) {
        eprintln!(
            "error: {}: {}",
            r.recording,
            r.error.as_deref().unwrap_or("")
        );
    }
    if score.results.iter().any(|r| r.error.is_some()) {
        ExitCode::from(2)
    } else if score.right == score.recordings {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
