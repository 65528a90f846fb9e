//! The ground-truth lab (corpora/lab): every recording of real peers under
//! an injected fault, triaged and compared with the truth its script wrote.

use std::path::Path;
use tether::replay::score::{parse_truth, render_text, score_dir, score_recording, truth_files};
use tether::triage::TriageOptions;

fn lab() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/lab"))
}

/// Second runs of lab scenarios, recorded after the rules were written
/// (corpora/holdout/README.md).
fn holdout() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/holdout"))
}

/// What-ifs included: the score also says how often the recorded client's
/// model run reproduces the recording, and the snapshot holds that rate.
fn options() -> TriageOptions {
    TriageOptions::default()
}

/// Every truth file parses, names a capture beside it under 5 MB, and the
/// lab holds at least 40 recordings.
#[test]
fn truth_files_are_complete() {
    let files = truth_files(lab()).unwrap();
    assert!(files.len() >= 40, "only {} recordings", files.len());
    let held_out = truth_files(holdout()).unwrap();
    assert!(held_out.len() >= 18, "only {} held out", held_out.len());
    for f in files.iter().chain(&held_out) {
        let t = parse_truth(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let cap = f.with_file_name(&t.capture);
        let len = std::fs::metadata(&cap)
            .unwrap_or_else(|e| panic!("{}: {e}", cap.display()))
            .len();
        assert!(len < 5 << 20, "{} is {len} bytes", cap.display());
        assert!(!t.actions.is_empty(), "{}: no actions", f.display());
    }
}

/// The score, recording by recording, against the committed one: any
/// verdict that changes (worse or better) shows here for review.
#[test]
fn lab_score_matches_committed() {
    score_matches_committed(lab(), "lab_score");
}

/// The holdout's score: what triage made of recordings it was not tuned
/// on, kept so that a later change that costs one shows here.
#[test]
fn holdout_score_matches_committed() {
    score_matches_committed(holdout(), "holdout_score");
}

fn score_matches_committed(dir: &Path, name: &str) {
    let score = score_dir(dir, &options(), 2).unwrap();
    let rows: Vec<String> = score
        .results
        .iter()
        .flat_map(|r| {
            r.sessions.iter().map(move |s| {
                format!(
                    "{:<40} {:<14} {} {} (expected {})",
                    r.recording,
                    s.session,
                    if s.ok { "right" } else { "WRONG" },
                    s.found_cause,
                    s.expected_cause
                )
            })
        })
        .collect();
    insta::with_settings!({snapshot_path => "../../golden", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, format!("{}\n{}", render_text(&score), rows.join("\n")));
    });
}

/// Every recording is right: the goal the lab exists for.
#[test]
fn every_lab_recording_is_right() {
    let score = score_dir(lab(), &options(), 2).unwrap();
    assert_eq!(score.right, score.recordings, "{}", render_text(&score));
}

/// A recording's verdict depends on its own capture alone: scored on its
/// own it is what it is among all the others, so removing any recording
/// changes no other verdict.
#[test]
fn verdicts_do_not_depend_on_other_recordings() {
    let all = score_dir(lab(), &options(), 1).unwrap();
    for (f, in_dir) in truth_files(lab()).unwrap().iter().zip(&all.results) {
        let alone = score_recording(f, &options());
        assert_eq!(
            serde_json::to_string(&alone).unwrap(),
            serde_json::to_string(in_dir).unwrap(),
            "{}",
            f.display()
        );
    }
}
