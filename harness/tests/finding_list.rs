//! Findings are typed: one enum per layer, each kind with its code,
//! severity, meaning and the rule it rests on. The README's list is
//! generated from those enums (`TETHER_UPDATE_README=1 cargo test --test
//! finding_list` rewrites it), and every finding the decoders emit on the
//! whole corpus is one of the listed kinds with the listed severity.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tether::capture::bugreport::Limits;
use tether::decode::pipeline::{DecodeOptions, decode_capture};
use tether::decode::spice::report::decode_bugreport;
use tether::timeline::kinds::{self, KindInfo};
use tether::timeline::{EventKind, Finding, Severity};

const BEGIN: &str =
    "<!-- findings: generated from the finding kinds by harness/tests/finding_list.rs -->\n";
const END: &str = "<!-- findings: end -->";

fn readme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

#[test]
fn the_readme_lists_every_finding_kind() {
    let text = std::fs::read_to_string(readme()).unwrap();
    let start = text.find(BEGIN).expect("README has the findings marker") + BEGIN.len();
    let end = start + text[start..].find(END).expect("README has the end marker");
    let table = kinds::markdown_table();
    if text[start..end] != table {
        if std::env::var_os("TETHER_UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &text[..start], &text[end..]);
            std::fs::write(readme(), updated).unwrap();
        } else {
            panic!(
                "README's list of findings differs from the finding kinds; rerun with TETHER_UPDATE_README=1 and review the diff"
            );
        }
    }
}

#[test]
fn codes_are_namespaced_and_each_code_and_severity_is_one_kind_per_layer() {
    let all = kinds::all();
    assert!(all.len() > 90, "{}", all.len());
    let mut seen = BTreeSet::new();
    for k in &all {
        let (space, rule) = k.code.split_once('.').expect("a code has a namespace");
        assert!(
            space == k.layer || space == "limit",
            "{} in layer {}",
            k.code,
            k.layer
        );
        assert!(
            !rule.is_empty()
                && rule
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            k.code
        );
        assert!(!k.meaning.is_empty() && !k.source.is_empty(), "{}", k.code);
        assert!(
            seen.insert((k.layer, k.code, k.severity)),
            "{} twice in {}",
            k.code,
            k.layer
        );
    }
}

#[test]
fn every_finding_on_the_corpus_is_a_listed_kind() {
    let listed: BTreeSet<(&str, Severity)> = kinds::all()
        .iter()
        .map(|k: &KindInfo| (k.code, k.severity))
        .collect();
    let mut emitted = BTreeSet::new();
    let options = || DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    for path in support::corpus_files() {
        let bytes = std::fs::read(&path).unwrap();
        let mut findings: Vec<Finding> = Vec::new();
        if path.extension().is_some_and(|x| x == "zip") {
            if let Ok(z) = decode_bugreport(&bytes[..], "input", options(), Limits::default()) {
                let v = serde_json::to_value(&z).unwrap();
                // The zip's own findings and its pcap's, by code and severity.
                collect_json(&v, &mut |code, sev| {
                    assert!(
                        listed
                            .iter()
                            .any(|(c, s)| *c == code && sev_name(*s) == sev),
                        "{}: {code} ({sev}) is not a listed kind",
                        path.display()
                    );
                    emitted.insert(code.to_string());
                });
            }
            continue;
        }
        let Ok(r) = decode_capture(&bytes[..], "input", options()) else {
            continue;
        };
        findings.extend(r.diagnostics.iter().cloned());
        for c in &r.connections {
            findings.extend(c.findings.iter().cloned());
            for e in &c.events {
                if let EventKind::Finding(f) = &e.kind {
                    findings.push(f.clone());
                }
            }
        }
        for f in &findings {
            assert!(
                listed.contains(&(f.code.as_ref(), f.severity)),
                "{}: {f} is not a listed kind",
                path.display()
            );
            emitted.insert(f.code.to_string());
        }
    }
    // The corpus exercises the layers: each has findings on it (its SPICE
    // captures are clean; the SPICE kinds are met in decode/spice's tests).
    for space in ["capture", "bugreport", "flow", "limit", "ws", "rfb", "tls"] {
        assert!(
            emitted.iter().any(|c| c.starts_with(&format!("{space}."))),
            "no {space}.* finding on the corpus: {emitted:?}"
        );
    }
}

fn sev_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// Every object with a `code` and a `severity` in a JSON tree.
fn collect_json(v: &serde_json::Value, f: &mut dyn FnMut(&str, &str)) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(serde_json::Value::String(c)), Some(serde_json::Value::String(s))) =
                (m.get("code"), m.get("severity"))
            {
                f(c, s);
            }
            for x in m.values() {
                collect_json(x, f);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_json(x, f)),
        _ => {}
    }
}
