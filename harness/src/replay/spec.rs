//! Replay specs (`replays/*.toml`): an input, a profile@variant, constant
//! overrides and expectations. Each verdict is compared with its golden
//! snapshot `golden/replay__<spec stem>.snap`, which is an insta snapshot
//! (written by `harness/tests/replay_golden.rs`), so updates go through
//! `cargo insta review`; `tether replay` reads the same file without insta
//! and leaves a `.snap.new` beside it when the verdict differs.

use crate::model::duration::{format_duration, parse_duration};
use crate::model::registry::run_timeline;
use crate::timeline::synthetic::Timeline;
use crate::verdict::Verdict;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: Option<String>,
    pub cause: Option<String>,
    pub channel: Option<String>,
    /// Earliest acceptable `at`, with a unit.
    pub at_min: Option<String>,
    pub at_max: Option<String>,
    /// Exact number of distinct violations.
    pub violations: Option<usize>,
    pub min_sessions: Option<u64>,
    /// For a capture input: the cause triage must name for the recording.
    pub capture_cause: Option<String>,
    /// For a capture input: the recorded session's outcome.
    pub capture_outcome: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySpec {
    #[serde(default)]
    pub description: String,
    /// Timeline, capture (pcap, pcapng) or bug-report zip, relative to the
    /// spec file.
    pub input: String,
    /// For a TLS capture: its NSS key log, relative to the spec file.
    #[serde(default)]
    pub keylog: Option<String>,
    pub profile: String,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Expect,
}

/// A spec ready to run: where it came from and what it names.
#[derive(Clone, Debug)]
pub struct LoadedSpec {
    pub path: PathBuf,
    pub name: String,
    pub spec: ReplaySpec,
    pub input_path: PathBuf,
}

/// Bad input: the spec or its timeline could not be read or understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl LoadedSpec {
    /// The spec's `[set]` table as `name=value` assignments.
    pub fn overrides(&self) -> Vec<String> {
        self.spec
            .set
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

pub fn load_spec(path: &Path) -> Result<LoadedSpec, BadInput> {
    let text =
        std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    parse_spec(&text, path)
}

/// A spec's text, as if read from `path` (which names it and anchors its
/// input).
pub fn parse_spec(text: &str, path: &Path) -> Result<LoadedSpec, BadInput> {
    let spec: ReplaySpec = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        BadInput(format!("{}:{line}: {}", path.display(), e.message().trim()))
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let input_path = path.parent().unwrap_or(Path::new(".")).join(&spec.input);
    Ok(LoadedSpec {
        path: path.to_path_buf(),
        name,
        spec,
        input_path,
    })
}

/// Every `*.toml` under the given directories (sorted) and the given files.
pub fn collect_specs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, BadInput> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| BadInput(format!("{}: {e}", p.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(BadInput(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    Ok(out)
}

/// A capture or bug-report zip, by its extension.
fn is_capture(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pcap" | "pcapng" | "cap" | "zip")
    )
}

/// Runs a loaded spec's timeline with its profile and overrides. A capture
/// input is triaged first; the environment of its primary session is then
/// re-played with the spec's profile, and the verdict carries the diagnosis.
pub fn run_spec(spec: &LoadedSpec) -> Result<Verdict, BadInput> {
    if is_capture(&spec.input_path) {
        return run_capture_spec(spec);
    }
    let text = std::fs::read_to_string(&spec.input_path).map_err(|e| {
        BadInput(format!(
            "{}: input {}: {e}",
            spec.path.display(),
            spec.input_path.display()
        ))
    })?;
    let timeline = Timeline::parse(&text, &spec.spec.input).map_err(|e| BadInput(e.to_string()))?;
    let overrides = spec.overrides();
    run_timeline(&timeline, &spec.spec.input, &spec.spec.profile, &overrides)
        .map_err(|e| BadInput(format!("{}: {e}", spec.path.display())))
}

fn run_capture_spec(spec: &LoadedSpec) -> Result<Verdict, BadInput> {
    use crate::triage::{TriageOptions, triage_path};
    let overrides = spec.overrides();
    let bad = |e: String| {
        BadInput(format!(
            "{}: input {}: {e}",
            spec.path.display(),
            spec.spec.input
        ))
    };
    let keys = match &spec.spec.keylog {
        Some(k) => {
            let path = spec.path.parent().unwrap_or(Path::new(".")).join(k);
            let text = std::fs::read(&path)
                .map_err(|e| BadInput(format!("{}: keylog {k}: {e}", spec.path.display())))?;
            let mut findings = Vec::new();
            let log = crate::decode::tls::keylog::KeyLog::parse(&text, k, &mut findings);
            if let Some(f) = findings.first() {
                return Err(BadInput(format!(
                    "{}: keylog {}",
                    spec.path.display(),
                    f.message
                )));
            }
            Some(log)
        }
        None => None,
    };
    let tr = triage_path(
        &spec.input_path,
        &TriageOptions {
            profile: Some(spec.spec.profile.clone()),
            overrides: overrides.clone(),
            no_what_if: true,
            keys,
            ..TriageOptions::default()
        },
    )
    .map_err(bad)?;
    let st = tr
        .primary
        .map(|i| &tr.sessions[i])
        .ok_or_else(|| bad("no session in the capture".into()))?;
    let timeline = st
        .environment
        .as_ref()
        .ok_or_else(|| bad("no environment extracted".into()))?;
    let all: Vec<String> = st
        .constants_from_capture
        .iter()
        .cloned()
        .chain(overrides)
        .collect();
    let mut v = run_timeline(timeline, &spec.spec.input, &spec.spec.profile, &all)
        .map_err(|e| BadInput(format!("{}: {e}", spec.path.display())))?;
    let d = &st.diagnosis;
    v.capture = Some(crate::verdict::CaptureDiagnosis {
        outcome: crate::triage::outcome_str(d.outcome).to_string(),
        at: d.at.map(|a| (a * 1e6).round() / 1e6),
        cause: d.cause.clone(),
        channel: d.channel.clone(),
        origin: d.origin.clone(),
        explanations: d
            .explanations
            .iter()
            .map(|e| format!("{}. {}", e.rank, e.cause))
            .collect(),
        violations: st.violations.iter().map(|v| v.code.to_string()).collect(),
    });
    Ok(v)
}

/// Expectations that do not hold, one message each.
pub fn check_expectations(spec: &LoadedSpec, v: &Verdict) -> Result<Vec<String>, BadInput> {
    let e = &spec.spec.expect;
    let mut failed = Vec::new();
    let mut want = |field: &str, want: &Option<String>, got: Option<&str>| {
        if let Some(w) = want
            && got != Some(w.as_str())
        {
            failed.push(format!(
                "expected {field} {w}, got {}",
                got.unwrap_or("none")
            ));
        }
    };
    want("outcome", &e.outcome, Some(v.outcome.as_str()));
    want("cause", &e.cause, v.cause.as_deref());
    want("channel", &e.channel, v.channel.as_deref());
    let capture = v.capture.as_ref();
    want(
        "capture cause",
        &e.capture_cause,
        capture.and_then(|c| c.cause.as_deref()),
    );
    want(
        "capture outcome",
        &e.capture_outcome,
        capture.map(|c| c.outcome.as_str()),
    );
    let bound = |s: &Option<String>| -> Result<Option<f64>, BadInput> {
        s.as_deref()
            .map(|t| {
                parse_duration(t)
                    .map(|d| d.as_secs_f64())
                    .map_err(|m| BadInput(format!("{}: expect: {m}", spec.path.display())))
            })
            .transpose()
    };
    if let Some(min) = bound(&e.at_min)?
        && v.at.is_none_or(|a| a < min)
    {
        failed.push(format!(
            "expected at >= {}, got {:?}",
            format_secs(min),
            v.at
        ));
    }
    if let Some(max) = bound(&e.at_max)?
        && v.at.is_none_or(|a| a > max)
    {
        failed.push(format!(
            "expected at <= {}, got {:?}",
            format_secs(max),
            v.at
        ));
    }
    if let Some(n) = e.violations
        && v.violations.len() != n
    {
        failed.push(format!(
            "expected {n} violations, got {}",
            v.violations.len()
        ));
    }
    if let Some(n) = e.min_sessions
        && v.sessions < n
    {
        failed.push(format!(
            "expected at least {n} sessions, got {}",
            v.sessions
        ));
    }
    Ok(failed)
}

fn format_secs(s: f64) -> String {
    format_duration(crate::timeline::Micros::from_secs_f64(s))
}

/// The golden directory for a spec: `golden/` beside its `replays/`.
pub fn default_golden_dir(spec_path: &Path) -> PathBuf {
    let dir = spec_path.parent().unwrap_or(Path::new("."));
    dir.join("..").join("golden")
}

pub fn snapshot_name(spec: &LoadedSpec) -> String {
    format!("replay__{}", spec.name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoldenStatus {
    Matched,
    Changed,
    Missing,
}

impl GoldenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GoldenStatus::Matched => "matched",
            GoldenStatus::Changed => "changed",
            GoldenStatus::Missing => "missing",
        }
    }
}

/// The body of an insta `.snap` file (after its `---` metadata header).
pub fn snap_body(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("---\n") else {
        return text;
    };
    match rest.find("\n---\n") {
        Some(p) => &rest[p + 5..],
        None => text,
    }
}

/// What the golden comparison found, with the committed body for a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldenCheck {
    pub status: GoldenStatus,
    /// The committed snapshot's body, when there is one.
    pub golden: Option<String>,
    /// `--accept` wrote the new verdict as the golden.
    pub accepted: bool,
}

impl GoldenCheck {
    /// A unified diff from the golden to `body` (empty when they match).
    pub fn diff(&self, body: &str) -> String {
        let old = self.golden.as_deref().unwrap_or("");
        similar::TextDiff::from_lines(old.trim_end(), body.trim_end())
            .unified_diff()
            .context_radius(3)
            .header("golden", "this run")
            .to_string()
    }
}

/// The header insta writes for a replay snapshot (`tests/replay_golden.rs`),
/// so a `.snap.new` from `tether replay` is byte-compatible with the
/// committed goldens and `cargo insta review` also works.
fn snap_header(description: &str) -> String {
    let mut h = String::from("---\nsource: harness/tests/replay_golden.rs\n");
    if !description.is_empty() {
        let value = if yaml_needs_quotes(description) {
            // A JSON string is a valid YAML double-quoted scalar.
            serde_json::Value::String(description.to_string()).to_string()
        } else {
            description.to_string()
        };
        h.push_str(&format!("description: {value}\n"));
    }
    h.push_str("expression: json\n---\n");
    h
}

/// When insta's YAML writer quotes a scalar: one that would read as
/// another type (a bool or null word, a number), that starts with an
/// indicator character, space or `.`, ends with a space, or holds a flow or
/// comment character, a quote, a backslash or a control character.
fn yaml_needs_quotes(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
    ];
    s.is_empty()
        || s.starts_with([
            ' ', '.', '&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@',
        ])
        || s.starts_with("0x")
        || s.ends_with(' ')
        || s.contains([':', '{', '}', '[', ']', ',', '#', '`', '"', '\'', '\\'])
        || s.chars().any(
            |c| matches!(c, '\0'..='\x06' | '\t' | '\n' | '\r' | '\x0e'..='\x1a' | '\x1c'..='\x1f'),
        )
        || WORDS.contains(&s)
        || s.parse::<i64>().is_ok()
        || s.parse::<f64>().is_ok()
}

/// Compares `body` with the golden snapshot. On a difference writes
/// `<name>.snap.new` with the committed snapshot's header (or insta's for a
/// new one) for review, or with `accept` replaces the golden itself.
pub fn compare_golden(
    golden_dir: &Path,
    name: &str,
    body: &str,
    description: &str,
    accept: bool,
) -> std::io::Result<GoldenCheck> {
    let path = golden_dir.join(format!("{name}.snap"));
    let (status, golden, header) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let old = snap_body(&text);
            let header = text[..text.len() - old.len()].to_string();
            let status = if old.trim_end() == body.trim_end() {
                GoldenStatus::Matched
            } else {
                GoldenStatus::Changed
            };
            (status, Some(old.to_string()), header)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (GoldenStatus::Missing, None, snap_header(description))
        }
        Err(e) => return Err(e),
    };
    let new_path = golden_dir.join(format!("{name}.snap.new"));
    let text = format!("{header}{}\n", body.trim_end());
    let accepted = status != GoldenStatus::Matched && accept;
    if accepted {
        std::fs::write(&path, &text)?;
    } else if status != GoldenStatus::Matched {
        std::fs::write(&new_path, &text)?;
    }
    if (status == GoldenStatus::Matched || accepted) && new_path.exists() {
        std::fs::remove_file(&new_path)?;
    }
    Ok(GoldenCheck {
        status,
        golden,
        accepted,
    })
}

#[cfg(test)]
mod golden_header_tests {
    use super::*;

    /// A new spec's `.snap.new` carries the header insta writes: for every
    /// committed replay golden, the header built from its spec's
    /// description is byte for byte the committed one.
    #[test]
    fn new_snapshot_headers_are_insta_s() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let specs = collect_specs(&[root.join("replays")]).unwrap();
        assert!(!specs.is_empty());
        for path in specs {
            let spec = load_spec(&path).unwrap();
            let text = std::fs::read_to_string(
                root.join("golden")
                    .join(format!("{}.snap", snapshot_name(&spec))),
            )
            .unwrap();
            let header = &text[..text.len() - snap_body(&text).len()];
            assert_eq!(snap_header(&spec.spec.description), header, "{}", spec.name);
        }
    }
}
