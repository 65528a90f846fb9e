//! Any text as a synthetic timeline, and as a replay spec: a located
//! parse error or a timeline the model runs to an end, never a panic or a
//! hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tether::replay::spec::ReplaySpec;
use tether::model::registry::run_timeline;
use tether::timeline::synthetic::{ScriptEvent, Timeline};

/// Scripted occurrences (keystrokes, server bursts) the model is run on.
/// Its work is linear in them and in the horizon, and its 5-million-step
/// bound caps any real input (about 2 s in a release build), but under the
/// sanitizers a few hundred thousand exceed libFuzzer's 2 s: the fuzzer
/// explores event scripts, not their length.
const MAX_OCCURRENCES: u64 = 20_000;

fn occurrences(t: &Timeline) -> u64 {
    t.events
        .iter()
        .map(|e| match e {
            ScriptEvent::UserActive { from, to, every }
            | ScriptEvent::ServerData {
                from, to, every, ..
            } => {
                let end = to.0.0.min(t.horizon.0.0);
                end.saturating_sub(from.0.0) / every.0.0.max(1) + 1
            }
            _ => 1,
        })
        .fold(0u64, u64::saturating_add)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = toml::from_str::<ReplaySpec>(text);
    if let Ok(timeline) = Timeline::parse(text, "fuzz.toml") {
        // A day idle is ~25 ms in release, far more under the sanitizers.
        if timeline.horizon.0.0 <= 2 * 3_600_000_000 && occurrences(&timeline) <= MAX_OCCURRENCES {
            let _ = run_timeline(&timeline, "fuzz.toml", "spice-ryll", &[]);
        }
    }
});
