//! Any text as a replay spec, run against a small fixed timeline: parsing,
//! profile and variant lookup, constant overrides and expectations give a
//! verdict or a located error, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tether::replay::spec::{check_expectations, parse_spec};
use tether::model::registry::run_timeline;
use tether::timeline::synthetic::Timeline;

/// Ten idle minutes behind a 60 s LB: short enough to run every time,
/// with the events every profile reacts to.
const TIMELINE: &str = include_str!("../../corpora/synthetic/runner-idle.toml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = parse_spec(text, Path::new("replays/fuzz.toml")) else {
        return;
    };
    let Ok(timeline) = Timeline::parse(TIMELINE, "runner-idle.toml") else {
        panic!("the committed timeline parses");
    };
    let overrides: Vec<String> = spec
        .spec
        .set
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Ok(verdict) = run_timeline(&timeline, "runner-idle.toml", &spec.spec.profile, &overrides) {
        let _ = check_expectations(&spec, &verdict);
    }
});
