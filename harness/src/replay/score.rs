//! `tether score DIR`: triage every lab recording and compare its verdict
//! with the recording's truth file (`corpora/lab/README.md`).

use crate::triage::{Triage, TriageOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A truth file: what the recording script did and the verdict it implies.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Truth {
    pub capture: String,
    #[serde(default)]
    pub peers: Vec<String>,
    #[serde(default)]
    pub script: Option<String>,
    pub fault: String,
    #[serde(default)]
    pub recorded: Option<String>,
    /// Epoch seconds of the capture's first frame: truth times count from it.
    pub capture_start: f64,
    #[serde(default)]
    pub actions: Vec<Action>,
    pub sessions: Vec<TruthSession>,
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub at: f64,
    pub did: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TruthSession {
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    pub outcome: String,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub at: Option<[f64; 2]>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub closed_by: Option<String>,
    #[serde(default)]
    pub recovered_at: Option<[f64; 2]>,
    #[serde(default)]
    pub outage: Option<[f64; 2]>,
    #[serde(default)]
    pub attempts: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// One property of one session, expected against found.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub what: &'static str,
    pub expected: String,
    pub found: String,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SessionScore {
    /// The truth's client port, or `primary`.
    pub session: String,
    pub expected_cause: String,
    pub found_cause: String,
    pub ok: bool,
    pub checks: Vec<Check>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct RecordingScore {
    pub recording: String,
    pub fault: String,
    pub ok: bool,
    /// Why the recording could not be scored (bad truth, unreadable capture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub sessions: Vec<SessionScore>,
    /// Whether the primary session's recorded client, re-run by the model
    /// in the capture's environment, ends as the recording did (absent when
    /// there is no such run to compare).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduced: Option<bool>,
    /// Where it does not: what differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reproduction_differences: Vec<String>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Score {
    pub recordings: usize,
    pub right: usize,
    pub sessions: usize,
    pub sessions_right: usize,
    /// expected cause → found cause → count, over every truth session.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// Recordings whose recorded client's model run could be compared with
    /// the recording, and those where it reproduced the ending.
    pub reproducible: usize,
    pub reproduced: usize,
    pub results: Vec<RecordingScore>,
}

const NONE: &str = "(none)";

/// Every `*.truth.toml` under `dir`, sorted by name.
pub fn truth_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".truth.toml"))
        })
        .collect();
    out.sort();
    Ok(out)
}

pub fn parse_truth(text: &str) -> Result<Truth, String> {
    let t: Truth = toml::from_str(text).map_err(|e| e.to_string())?;
    if t.sessions.is_empty() {
        return Err("no [[sessions]]".into());
    }
    Ok(t)
}

fn window(w: &[f64; 2]) -> String {
    format!("{:.3}..{:.3}", w[0], w[1])
}

fn opt(s: Option<&str>) -> String {
    s.unwrap_or(NONE).to_string()
}

/// The triaged session a truth session speaks of: by client port, else the
/// primary session.
fn find_session(tr: &Triage, ts: &TruthSession) -> Option<usize> {
    match ts.port {
        Some(port) => tr
            .sessions
            .iter()
            .position(|s| s.session.client_ports().any(|p| p == port)),
        None => tr.primary,
    }
}

/// Compares one truth session with triage's verdict.
pub fn score_session(tr: &Triage, truth: &Truth, ts: &TruthSession) -> SessionScore {
    let label = ts
        .port
        .map_or_else(|| "primary".to_string(), |p| format!("port {p}"));
    let expected_cause = opt(ts.cause.as_deref());
    let Some(i) = find_session(tr, ts) else {
        return SessionScore {
            session: label,
            expected_cause,
            found_cause: "(no session)".into(),
            ok: false,
            checks: vec![Check {
                what: "session",
                expected: ts
                    .port
                    .map_or("a primary session".into(), |p| format!("client port {p}")),
                found: "none".into(),
                ok: false,
            }],
        };
    };
    let st = &tr.sessions[i];
    let d = &st.diagnosis;
    // Triage times count from the capture's first frame as truth times do;
    // the two clocks' zeros are compared rather than assumed equal.
    let shift = st.session.start.as_secs_f64() - truth.capture_start;
    let mut checks = Vec::new();
    let mut check = |what, expected: String, found: String, ok: bool| {
        checks.push(Check {
            what,
            expected,
            found,
            ok,
        })
    };
    let outcome = crate::triage::outcome_str(d.outcome);
    check(
        "outcome",
        ts.outcome.clone(),
        outcome.into(),
        ts.outcome == outcome,
    );
    let found_cause = opt(d.cause.as_deref());
    check(
        "cause",
        expected_cause.clone(),
        found_cause.clone(),
        expected_cause == found_cause,
    );
    if let Some(o) = &ts.origin {
        let f = opt(d.origin.as_deref());
        check("origin", o.clone(), f.clone(), *o == f);
    }
    let in_window = |w: &[f64; 2], at: Option<f64>| at.is_some_and(|a| a >= w[0] && a <= w[1]);
    if let Some(w) = &ts.at {
        let at = d.at.map(|a| a + shift);
        check(
            "at",
            window(w),
            at.map_or(NONE.into(), |a| format!("{a:.3}")),
            in_window(w, at),
        );
    }
    if let Some(c) = &ts.channel {
        let f = opt(d.channel.as_deref());
        check("channel", c.clone(), f.clone(), *c == f);
    }
    if let Some(c) = &ts.closed_by {
        let f = opt(d.closed_by);
        check("closed_by", c.clone(), f.clone(), *c == f);
    }
    if let Some(w) = &ts.recovered_at {
        let at = d.recovered_at.map(|a| a + shift);
        check(
            "recovered_at",
            window(w),
            at.map_or(NONE.into(), |a| format!("{a:.3}")),
            in_window(w, at),
        );
    }
    if let Some(w) = &ts.outage {
        check(
            "outage",
            window(w),
            d.outage.map_or(NONE.into(), |a| format!("{a:.3}")),
            in_window(w, d.outage),
        );
    }
    let found_attempts: Vec<String> = d.failed_attempts.iter().map(|a| a.reason.clone()).collect();
    check(
        "attempts",
        format!("{:?}", ts.attempts),
        format!("{found_attempts:?}"),
        ts.attempts == found_attempts,
    );
    SessionScore {
        session: label,
        ok: checks.iter().all(|c| c.ok),
        expected_cause,
        found_cause,
        checks,
    }
}

/// Scores one truth file: reads it, triages its capture.
pub fn score_recording(truth_path: &Path, options: &TriageOptions) -> RecordingScore {
    let name = truth_path
        .file_name()
        .and_then(|n| n.to_str())
        .map_or_else(String::new, |n| {
            n.trim_end_matches(".truth.toml").to_string()
        });
    let fail = |fault: String, e: String| RecordingScore {
        recording: name.clone(),
        fault,
        ok: false,
        error: Some(e),
        sessions: Vec::new(),
        reproduced: None,
        reproduction_differences: Vec::new(),
    };
    let truth = match std::fs::read_to_string(truth_path)
        .map_err(|e| e.to_string())
        .and_then(|t| parse_truth(&t))
    {
        Ok(t) => t,
        Err(e) => return fail(String::new(), format!("{}: {e}", truth_path.display())),
    };
    let capture = truth_path.with_file_name(&truth.capture);
    let tr = match crate::triage::triage_path(&capture, options) {
        Ok(t) => t,
        Err(e) => return fail(truth.fault.clone(), e),
    };
    let sessions: Vec<SessionScore> = truth
        .sessions
        .iter()
        .map(|ts| score_session(&tr, &truth, ts))
        .collect();
    let reproduction = tr
        .primary
        .and_then(|i| tr.sessions[i].reproduction.as_ref());
    RecordingScore {
        recording: name,
        fault: truth.fault.clone(),
        ok: sessions.iter().all(|s| s.ok),
        error: None,
        sessions,
        reproduced: reproduction.map(|r| r.reproduced),
        reproduction_differences: reproduction
            .map(|r| r.differences.clone())
            .unwrap_or_default(),
    }
}

/// Scores every recording in `dir`, in name order whatever `threads` is.
pub fn score_dir(dir: &Path, options: &TriageOptions, threads: usize) -> Result<Score, String> {
    use rayon::prelude::*;
    let files = truth_files(dir)?;
    if files.is_empty() {
        return Err(format!("{}: no *.truth.toml files", dir.display()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let results: Vec<RecordingScore> = pool.install(|| {
        files
            .par_iter()
            .map(|f| score_recording(f, options))
            .collect()
    });
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for s in results.iter().flat_map(|r| r.sessions.iter()) {
        *confusion
            .entry(s.expected_cause.clone())
            .or_default()
            .entry(s.found_cause.clone())
            .or_default() += 1;
    }
    let sessions = results.iter().map(|r| r.sessions.len().max(1)).sum();
    let sessions_right = results
        .iter()
        .flat_map(|r| r.sessions.iter())
        .filter(|s| s.ok)
        .count();
    Ok(Score {
        recordings: results.len(),
        right: results.iter().filter(|r| r.ok).count(),
        sessions,
        sessions_right,
        confusion,
        reproducible: results.iter().filter(|r| r.reproduced.is_some()).count(),
        reproduced: results
            .iter()
            .filter(|r| r.reproduced == Some(true))
            .count(),
        results,
    })
}

/// The score as a reader wants it: the total, the confusion table, then
/// each miss with what was expected.
pub fn render_text(s: &Score) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let _ = writeln!(
        o,
        "{}/{} recordings right ({:.0} %), {}/{} sessions",
        s.right,
        s.recordings,
        pct(s.right, s.recordings),
        s.sessions_right,
        s.sessions
    );
    let found: std::collections::BTreeSet<&String> =
        s.confusion.values().flat_map(|m| m.keys()).collect();
    let width = s
        .confusion
        .keys()
        .chain(found.iter().copied())
        .map(String::len)
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(o, "\nexpected cause × found cause:");
    for (exp, row) in &s.confusion {
        let cells: Vec<String> = row
            .iter()
            .map(|(f, n)| {
                if f == exp {
                    format!("{n} right")
                } else {
                    format!("{n} as {f}")
                }
            })
            .collect();
        let _ = writeln!(o, "  {exp:<width$}  {}", cells.join(", "));
    }
    let _ = writeln!(
        o,
        "\nthe recorded client, re-run by the model in the capture's environment, ends as the recording did for {}/{} recordings ({:.0} %; {} have no such run to compare)",
        s.reproduced,
        s.reproducible,
        pct(s.reproduced, s.reproducible),
        s.recordings - s.reproducible
    );
    for r in s.results.iter().filter(|r| r.reproduced == Some(false)) {
        let _ = writeln!(
            o,
            "  not reproduced: {}: {}",
            r.recording,
            r.reproduction_differences.join("; ")
        );
    }
    let misses: Vec<&RecordingScore> = s.results.iter().filter(|r| !r.ok).collect();
    if !misses.is_empty() {
        let _ = writeln!(o, "\nmisses:");
    }
    for r in misses {
        if let Some(e) = &r.error {
            let _ = writeln!(o, "  {} ({}): error: {e}", r.recording, r.fault);
            continue;
        }
        for ss in r.sessions.iter().filter(|x| !x.ok) {
            let wrong: Vec<String> = ss
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{} {} (expected {})", c.what, c.found, c.expected))
                .collect();
            let _ = writeln!(
                o,
                "  {} ({}, {}): {}",
                r.recording,
                r.fault,
                ss.session,
                wrong.join("; ")
            );
        }
    }
    o
}
