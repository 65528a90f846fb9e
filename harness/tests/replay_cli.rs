//! `tether run` and `tether replay` as a user runs them: exit codes
//! (0 match / 1 changed or failed expectation / 2 bad input), the
//! `.snap.new` left for `cargo insta review`, and the output formats.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tether(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch copy of one spec and its golden snapshot.
fn scratch(name: &str, spec_body: &str) -> tempfile::TempDir {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("tether-replay-{name}-"))
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("replays")).unwrap();
    std::fs::create_dir_all(dir.join("golden")).unwrap();
    std::fs::write(dir.join("replays").join(format!("{name}.toml")), spec_body).unwrap();
    std::fs::copy(
        root().join("golden/replay__spice-gtk-lb-idle.snap"),
        dir.join("golden").join(format!("replay__{name}.snap")),
    )
    .unwrap();
    tmp
}

/// The JUnit file validates against the schema Jenkins' xUnit plugin
/// checks reports with (`tests/junit/junit-10.xsd`), by libxml2's
/// `xmllint`. CI installs it and sets `TETHER_REQUIRE_XMLLINT`, so there
/// the check cannot be skipped; elsewhere a missing xmllint is said.
fn assert_valid_junit(path: &Path) {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit/junit-10.xsd");
    let out = match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(path)
        .output()
    {
        Ok(out) => out,
        Err(e) if std::env::var_os("TETHER_REQUIRE_XMLLINT").is_none() => {
            eprintln!("JUnit schema check skipped: xmllint: {e} (apt-get install libxml2-utils)");
            return;
        }
        Err(e) => panic!("xmllint: {e}"),
    };
    assert!(
        out.status.success(),
        "{} does not validate against junit-10.xsd:\n{}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

fn lb_spec(extra: &str) -> String {
    let input = root().join("corpora/synthetic/spice-lb-idle.toml");
    format!(
        "input = {:?}\nprofile = \"spice-gtk\"\n{extra}\n",
        input.display().to_string()
    )
}

#[test]
fn replay_of_the_committed_set_matches() {
    let (code, out, err) = tether(&["replay", "replays"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" 0 failed"), "{out}");
    let (code, out, _) = tether(&["replay", "--format", "junit", "replays"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("<?xml") && out.contains("failures=\"0\"") && !out.contains("<failure")
    );
    let (code, out, _) = tether(&[
        "replay",
        "--format",
        "json",
        "replays/spice-gtk-lb-idle.toml",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["specs"][0]["matched"], true);
    assert_eq!(v["specs"][0]["verdict"]["cause"], "tcp.reset");
}

#[test]
fn a_changed_verdict_exits_1_and_leaves_a_snap_new() {
    // Same input as the golden lb-idle verdict (its `input` field differs,
    // so first check the unchanged one matches when the input matches).
    let tmp = scratch("lb", &lb_spec("[set]\nlb_idle_timeout = \"90s\""));
    let dir = tmp.path().to_path_buf();
    let spec = dir.join("replays/lb.toml");
    let (code, out, err) = tether(&["replay", spec.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("golden snapshot changed"), "{out}");
    let new = std::fs::read_to_string(dir.join("golden/replay__lb.snap.new")).unwrap();
    assert!(new.starts_with("---\nsource: harness/tests/replay_golden.rs\n"));
    assert!(new.contains("\"lb_idle_timeout\": \"90s\""));
    let (code, out, _) = tether(&["replay", "--format", "json", spec.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            v["specs"][0]["matched"].clone(),
            v["specs"][0]["golden"].clone()
        ),
        (false.into(), "changed".into())
    );
    let (code, out, _) = tether(&["replay", "--format", "junit", spec.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("<failure message=\"verdict changed against golden snapshot\""),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failed_expectation_exits_1_even_when_the_snapshot_matches() {
    let tmp = scratch("lbx", &lb_spec("[expect]\noutcome = \"survived\""));
    let dir = tmp.path().to_path_buf();
    // Make the golden snapshot match this run exactly.
    let spec = dir.join("replays/lbx.toml");
    let _ = tether(&["replay", spec.to_str().unwrap()]);
    std::fs::rename(
        dir.join("golden/replay__lbx.snap.new"),
        dir.join("golden/replay__lbx.snap"),
    )
    .unwrap();
    let (code, out, _) = tether(&["replay", spec.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("expected outcome survived, got disconnected"),
        "{out}"
    );
    assert!(!out.contains("golden snapshot"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_input_exits_2_and_names_the_place() {
    let tmp = scratch("bad", &lb_spec("[expect]\noutcom = \"survived\""));
    let dir = tmp.path().to_path_buf();
    let (code, _, err) = tether(&["replay", dir.join("replays").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:4") && err.contains("outcom"),
        "{err}"
    );
    std::fs::write(
        dir.join("t.toml"),
        "horizon = \"1h\"\n[[event]]\nkind = \"blackhole\"\nfrom = \"1m\"\nto = \"2 parsecs\"\n",
    )
    .unwrap();
    let (code, _, err) = tether(&[
        "run",
        dir.join("t.toml").to_str().unwrap(),
        "--profile",
        "spice-gtk",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("t.toml:5:") && err.contains("field `to`"),
        "{err}"
    );
    let (code, _, err) = tether(&[
        "run",
        "corpora/synthetic/spice-lb-idle.toml",
        "--profile",
        "spice-gtk",
        "--set",
        "nope=1s",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown constant `nope`"), "{err}");
    let (code, _, _) = tether(&["replay", dir.join("missing").to_str().unwrap()]);
    assert_eq!(code, 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_prints_a_verdict_with_the_required_json_fields() {
    let (code, out, _) = tether(&[
        "run",
        "corpora/synthetic/spice-lb-idle.toml",
        "--profile",
        "spice-gtk@default",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for field in [
        "outcome",
        "at",
        "cause",
        "channel",
        "violations",
        "profile",
        "variant",
        "constants",
    ] {
        assert!(v.get(field).is_some(), "{field} missing");
    }
    assert_eq!(v["outcome"], "disconnected");
    assert_eq!(v["at"], 60.2);
    let (code, out, _) = tether(&[
        "run",
        "corpora/synthetic/spice-lb-idle.toml",
        "--profile",
        "spice-gtk",
        "--set",
        "lb_idle_timeout=15m",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["outcome"].as_str(), v["at"].is_null()),
        (Some("survived"), true)
    );
    assert_eq!(v["constants"]["lb_idle_timeout"], "15m");
    let (code, out, _) = tether(&[
        "run",
        "corpora/synthetic/spice-lb-idle.toml",
        "--profile",
        "spice-gtk",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("DISCONNECTED at T+60.200: tcp.reset on inputs\n"),
        "{out}"
    );
}

/// The README's `git bisect run` example names a spec that exists and
/// runs to a verdict (0 or 1), never to 125, which would skip every commit.
#[test]
fn readme_bisect_example_runs_to_a_verdict() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("tether replay --git-bisect "))
        .expect("README has a git bisect example");
    let spec = line
        .split("--git-bisect ")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'')
        .trim();
    assert!(root().join(spec).is_file(), "README names {spec}");
    let (code, out, err) = tether(&["replay", "--git-bisect", spec]);
    assert!(code == 0 || code == 1, "exit {code}: {out}{err}");
}

/// One spec that cannot run (its input is missing) is an `<error>` case
/// beside the others, not an abort: the JUnit file beside the console
/// output holds every spec, parses as JUnit, and the run exits 2. A
/// control character in a message does not make the XML invalid.
#[test]
fn a_spec_that_cannot_run_is_an_error_case() {
    let tmp = scratch("err", &lb_spec("[set]\nlb_idle_timeout = \"90s\""));
    let dir = tmp.path().to_path_buf();
    std::fs::write(
        dir.join("replays/missing.toml"),
        "input = \"no-such-\u{1}timeline.toml\"\nprofile = \"spice-gtk\"\n",
    )
    .unwrap();
    let junit = dir.join("report.xml");
    let (code, out, err) = tether(&[
        "replay",
        "--junit",
        junit.to_str().unwrap(),
        dir.join("replays").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("ERROR") && out.contains("FAIL"), "{out}");
    assert!(out.contains("2 specs, 2 failed"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(!xml.contains("&#1;") && !xml.contains('\u{1}'), "{xml}");
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite = &report.test_suites[0];
    assert_eq!(suite.test_cases.len(), 2);
    assert_eq!((suite.failures, suite.errors), (1, 1));
    assert!(suite.test_cases.iter().all(|c| c.time.is_some()));
    // A failing, an erroring and a control-character case, valid JUnit.
    assert_valid_junit(&junit);
    // So are `replay --format junit` (every case passing), `run --format
    // junit` (a failed verdict) and `merge --junit` of replay shards.
    let passing = dir.join("passing.xml");
    let (code, out, _) = tether(&["replay", "--format", "junit"]);
    assert_eq!(code, 0);
    std::fs::write(&passing, out).unwrap();
    assert_valid_junit(&passing);
    let run = dir.join("run.xml");
    let (code, out, _) = tether(&[
        "run",
        "corpora/synthetic/novnc-drop-400s.toml",
        "--profile",
        "spice-gtk",
        "--format",
        "junit",
    ]);
    assert_eq!(code, 1);
    std::fs::write(&run, out).unwrap();
    assert_valid_junit(&run);
    let mut shards = Vec::new();
    for k in 1..=2 {
        let (code, out, _) = tether(&["replay", "--shard", &format!("{k}/2"), "--format", "json"]);
        assert_eq!(code, 0);
        let f = dir.join(format!("shard{k}.json"));
        std::fs::write(&f, out).unwrap();
        shards.push(f.display().to_string());
    }
    let merged = dir.join("merged.xml");
    let (code, _, err) = tether(&[
        "merge",
        &shards[0],
        &shards[1],
        "--junit",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_valid_junit(&merged);
    let _ = std::fs::remove_dir_all(dir);
}

/// A changed verdict prints its diff against the golden; `--accept` takes
/// it as the golden (no `.snap.new` left, the committed header kept), and
/// the next run matches.
#[test]
fn accept_takes_a_reviewed_verdict() {
    let tmp = scratch("acc", &lb_spec("[set]\nlb_idle_timeout = \"90s\""));
    let dir = tmp.path().to_path_buf();
    let spec = dir.join("replays/acc.toml");
    let golden = dir.join("golden/replay__acc.snap");
    let before = std::fs::read_to_string(&golden).unwrap();
    let (code, out, _) = tether(&["replay", spec.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("--- golden") && out.contains("+++ this run"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with('+') && l.contains("\"lb_idle_timeout\": \"90s\"")),
        "{out}"
    );
    let new = std::fs::read_to_string(dir.join("golden/replay__acc.snap.new")).unwrap();
    let header = |t: &str| t[..t.find("\n---\n").unwrap()].to_string();
    assert_eq!(header(&new), header(&before));
    let (code, out, _) = tether(&["replay", "--accept", spec.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("accepted"), "{out}");
    assert!(!dir.join("golden/replay__acc.snap.new").exists());
    let after = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(header(&after), header(&before));
    assert!(after.contains("\"lb_idle_timeout\": \"90s\""));
    let (code, out, _) = tether(&["replay", spec.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `TETHER_UPDATE=new` writes the golden of a spec that has none and
/// leaves a changed one for review; `always` takes both; `--filter` runs
/// only the specs whose name contains the pattern.
#[test]
fn tether_update_and_filter() {
    let tmp = scratch("upd", &lb_spec("[set]\nlb_idle_timeout = \"90s\""));
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("replays/fresh.toml"), lb_spec("")).unwrap();
    let run = |update: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tether"))
            .arg("replay")
            .args(extra)
            .arg(dir.join("replays"))
            .env("TETHER_UPDATE", update)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run("new", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(dir.join("golden/replay__fresh.snap").exists());
    assert!(dir.join("golden/replay__upd.snap.new").exists());
    let (code, out) = run("no", &["--filter", "fresh"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 specs, 0 failed"), "{out}");
    let (code, out) = run("always", &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run("no", &[]);
    assert_eq!(code, 0, "{out}");
    let _ = std::fs::remove_dir_all(dir);
}
