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
        // The model's cost is linear in the horizon (a day is ~25 ms in a
        // release build, far more under the sanitizers), and its step bound
        // caps any horizon; the fuzzer explores event scripts, not length.
        if timeline.horizon.0.0 <= 2 * 3_600_000_000 {
            let _ = run_timeline(&timeline, "fuzz.toml", "spice-ryll", &[]);
        }
    }
});
