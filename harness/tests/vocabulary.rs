//! One vocabulary: every cause and origin that triage gives on the corpus
//! and every cause the model gives on every synthetic timeline, with every
//! profile and variant, is a name `verdict::cause` lists and explains.

use std::path::{Path, PathBuf};
use tether::model::registry::{every_profile, run_timeline};
use tether::timeline::synthetic::Timeline;
use tether::triage::{TriageOptions, triage_path};
use tether::verdict::cause::{is_cause, is_origin};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    v.sort();
    v
}

/// Every string under a `cause` or `origin` key, anywhere in `v`.
fn names(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if let ("cause" | "origin", serde_json::Value::String(s)) = (k.as_str(), x) {
                    out.push((k.clone(), s.clone()));
                }
                names(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| names(x, out)),
        _ => {}
    }
}

fn unknown(found: Vec<(String, String)>) -> Vec<(String, String)> {
    found
        .into_iter()
        .filter(|(k, s)| {
            if k == "cause" {
                !is_cause(s)
            } else {
                !is_origin(s)
            }
        })
        .collect()
}

#[test]
fn the_model_names_every_ending_in_the_one_vocabulary() {
    let mut found = Vec::new();
    for path in files("corpora/synthetic", &["toml"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        let t = Timeline::parse(&text, "t.toml").unwrap();
        for (name, _, variants) in every_profile() {
            for v in variants {
                let spec = format!("{name}@{}", v.name);
                let verdict = run_timeline(&t, "t.toml", &spec, &[]).unwrap();
                if let Some(c) = verdict.cause {
                    found.push(("cause".to_string(), c));
                }
            }
        }
    }
    assert!(found.len() > 100, "{}", found.len());
    assert_eq!(unknown(found), []);
}

#[test]
fn triage_names_every_ending_and_origin_in_the_one_vocabulary() {
    let mut found = Vec::new();
    let inputs = [
        files("corpora/lab", &["pcap", "pcapng"]),
        files("corpora/recorded", &["pcap", "pcapng", "zip"]),
        files("corpora/bugreports", &["zip"]),
    ];
    for path in inputs.iter().flatten() {
        let t = triage_path(path, &TriageOptions::default()).unwrap();
        names(&serde_json::to_value(&t).unwrap(), &mut found);
    }
    // The what-ifs' runs are in there too: the model's names next to triage's.
    assert!(found.iter().any(|(k, _)| k == "origin"));
    assert!(found.len() > 300, "{}", found.len());
    assert_eq!(unknown(found), []);
}

#[test]
fn live_modes_fault_causes_are_in_the_one_vocabulary() {
    for c in tether::live::monitor::FAULT_CAUSES {
        assert!(is_cause(c), "{c}");
    }
}
