//! The JSON Schemas in `schemas/` are the ones generated from the output
//! types (`tether schema CMD`), and every command's JSON output on the
//! committed corpus, with one input and with many, validates against its
//! schema.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tether(args: &[&str]) -> (Option<i32>, Vec<u8>) {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (out.status.code(), out.stdout)
}

fn schema(cmd: &str) -> Value {
    let text = std::fs::read_to_string(root().join(format!("schemas/{cmd}.schema.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check(cmd: &str, args: &[&str]) {
    let mut all = vec![cmd];
    all.extend_from_slice(args);
    all.extend(["--format", "json"]);
    let (code, out) = tether(&all);
    assert!(matches!(code, Some(0 | 1)), "{all:?} exited {code:?}");
    let value: Value = serde_json::from_slice(&out).unwrap();
    let validator = jsonschema::validator_for(&schema(cmd)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{all:?}: {errors:#?}");
}

#[test]
fn committed_schemas_are_the_generated_ones() {
    for cmd in ["flows", "decode", "triage", "score", "run"] {
        let (code, out) = tether(&["schema", cmd]);
        assert_eq!(code, Some(0));
        let generated: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            generated,
            schema(cmd),
            "schemas/{cmd}.schema.json is stale: tether schema {cmd} > schemas/{cmd}.schema.json"
        );
    }
}

#[test]
fn outputs_validate_on_the_corpus() {
    let dirs = [
        "corpora/recorded",
        "corpora/lab",
        "corpora/bugreports",
        "corpora/public",
    ];
    for dir in dirs {
        if !root().join(dir).is_dir() {
            continue;
        }
        // flows reads captures, not bug-report zips.
        if dir != "corpora/bugreports" {
            check("flows", &[dir]);
        }
        check("decode", &[dir]);
        check("triage", &["--no-what-if", dir]);
    }
    // One input alone has the same shape.
    check("flows", &["corpora/lab/ws-user-close.pcap"]);
    check("decode", &["--events", "corpora/recorded/ws-novnc.pcap"]);
    check("decode", &["corpora/bugreports/ryll-disconnect-main.zip"]);
    check("triage", &["corpora/lab/spice-client-frozen-long.pcap"]);
    check("triage", &["corpora/bugreports/ryll-disconnect-main.zip"]);
    check("score", &["corpora/lab"]);
    for t in std::fs::read_dir(root().join("corpora/synthetic")).unwrap() {
        let t = t.unwrap().path();
        if t.extension().is_some_and(|e| e == "toml") {
            let t = t.to_str().unwrap().to_string();
            let profile = if t.contains("novnc") {
                "novnc-displaytab"
            } else if t.contains("runner") {
                "runner-ws"
            } else if t.contains("wormhole") {
                "wormhole-pane"
            } else {
                "spice-gtk"
            };
            check("run", &[&t, "--profile", profile]);
        }
    }
}
