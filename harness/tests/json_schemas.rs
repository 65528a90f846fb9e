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
    validate(cmd, &out, &format!("{all:?}"));
}

/// `out` is JSON that validates against `schemas/{cmd}.schema.json`.
fn validate(cmd: &str, out: &[u8], what: &str) {
    let value: Value = serde_json::from_slice(out).unwrap();
    let validator = jsonschema::validator_for(&schema(cmd)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

const COMMANDS: [&str; 9] = [
    "flows", "decode", "triage", "score", "run", "replay", "sweep", "bisect", "proxy",
];

#[test]
fn committed_schemas_are_the_generated_ones() {
    for cmd in COMMANDS {
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

/// replay, sweep and bisect, and `merge` of their shards, which writes
/// the shape of the command it joins. (The proxy's `--json` verdict is
/// validated where a live proxy runs, in `live_proxy.rs`.)
#[test]
fn model_command_outputs_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // A spec that cannot run is an error row of the same document.
    let bad = dir.join("bad-spec.toml");
    std::fs::write(&bad, "garbage = [\n").unwrap();
    let (code, out) = tether(&[
        "replay",
        "replays",
        bad.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(2));
    validate("replay", &out, "replay with an erroring spec");
    let value: Value = serde_json::from_slice(&out).unwrap();
    assert!(
        value["specs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["error"].is_string())
    );
    let mut shards = Vec::new();
    for k in 1..=2 {
        let shard = format!("{k}/2");
        let (code, out) = tether(&["replay", "--shard", &shard, "--format", "json"]);
        assert_eq!(code, Some(0));
        validate("replay", &out, &format!("replay --shard {shard}"));
        let f = dir.join(format!("replay-{k}.json"));
        std::fs::write(&f, out).unwrap();
        shards.push(f.display().to_string());
    }
    let (code, out) = tether(&["merge", &shards[0], &shards[1]]);
    assert_eq!(code, Some(0));
    validate("replay", &out, "merge of replay shards");

    let spec = "corpora/synthetic/bisect/spice-gtk-lb-idle.toml";
    let param = "--param=lb_idle_timeout=296s..304s:4s";
    let mut shards = Vec::new();
    for k in 1..=2 {
        let shard = format!("{k}/2");
        let (code, out) = tether(&["sweep", spec, param, "--shard", &shard, "--format", "json"]);
        assert_eq!(code, Some(0));
        validate("sweep", &out, &format!("sweep --shard {shard}"));
        let f = dir.join(format!("sweep-{k}.json"));
        std::fs::write(&f, out).unwrap();
        shards.push(f.display().to_string());
    }
    let (code, out) = tether(&["merge", &shards[0], &shards[1]]);
    assert_eq!(code, Some(0));
    validate("sweep", &out, "merge of sweep shards");

    // A boundary, and a constant that is not monotonic.
    check(
        "bisect",
        &[spec, "--param", "lb_idle_timeout", "--range", "10s..20m"],
    );
    check(
        "bisect",
        &[
            "corpora/synthetic/bisect/spice-gtk-client-stall.toml",
            "--param",
            "connectivity_timeout",
            "--range",
            "70s..100s",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One clock in every output: decode's, flows' and triage's times all
/// count from the same first frame, whose absolute time each states once;
/// every event and every listed finding names its Wireshark frame.
#[test]
fn one_clock_and_a_frame_for_every_event_and_finding() {
    let inputs = [
        "corpora/lab/ws2-several-clients-one-frozen.pcap",
        "corpora/lab/spice-user-close.pcap",
        "corpora/recorded/novnc-websockify-killed.pcap",
        "corpora/hostile/corrupt-record-usec.pcap",
    ];
    for input in inputs {
        let (_, out) = tether(&["decode", "--events", "--format", "json", input]);
        let decode: Value = serde_json::from_slice(&out).unwrap();
        let capture = &decode["captures"][0];
        let start = capture["start_abs"].as_f64().unwrap();
        let (_, out) = tether(&["flows", "--format", "json", input]);
        let flows: Value = serde_json::from_slice(&out).unwrap();
        for (row, flow) in flows
            .as_array()
            .unwrap()
            .iter()
            .zip(capture["flows"].as_array().unwrap())
        {
            let rel = row["start"].as_f64().unwrap();
            assert!(
                (row["start_abs"].as_f64().unwrap() - rel - start).abs() < 1e-5,
                "{input}"
            );
            assert!(
                (flow["start"].as_f64().unwrap() - rel).abs() < 1e-6,
                "{input}"
            );
        }
        let frames = capture["stats"]["frames"].as_u64().unwrap();
        for conn in capture["connections"].as_array().unwrap() {
            for e in conn["events"].as_array().unwrap() {
                let frame = e["frame"].as_u64().unwrap_or(0);
                assert!((1..=frames).contains(&frame), "{input}: {e}");
                assert!(e["at"].as_f64().unwrap() >= 0.0, "{input}: {e}");
            }
            for f in conn["findings"].as_array().unwrap() {
                let frame = f["location"]["frame"].as_u64().unwrap_or(0);
                assert!((1..=frames).contains(&frame), "{input}: {f}");
            }
        }
        let (_, out) = tether(&["triage", "--no-what-if", "--format", "json", input]);
        let triage: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(triage[0]["start_abs"].as_f64(), Some(start), "{input}");
        // A session starts at its first packet on that clock: the first
        // flow it holds, within the capture.
        for st in triage[0]["sessions"].as_array().unwrap() {
            let first = st["session"]["first"].as_f64().unwrap();
            assert!(first >= 0.0);
            assert!(
                capture["flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| (f["start"].as_f64().unwrap() - first).abs() < 1e-6),
                "{input}: session from {first} starts with none of the flows"
            );
        }
    }
}
