//! Any text as a synthetic timeline, and as a replay spec: a located
//! parse error or a timeline the model runs to an end, never a panic or a
//! hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tether::model::replay::ReplaySpec;
use tether::model::sim::run_timeline;
use tether::timeline::synthetic::Timeline;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = toml::from_str::<ReplaySpec>(text);
    if let Ok(timeline) = Timeline::parse(text, "fuzz.toml") {
        let _ = run_timeline(&timeline, "fuzz.toml", "spice-ryll", &[]);
    }
});
