//! Every profile, each a file that reads like the system it models. The
//! SPICE ones (`spice_gtk`, `ryll`) configure the SPICE client actor that
//! `sim` runs; the others are listed in [`OTHER_PROFILES`] and run their
//! own actors on the same clock (`clock::drive`): the WebSocket library
//! peers share `ws_peer`. `model::registry` looks
//! a name up here first, so a profile name found in [`OTHER_PROFILES`]
//! never reaches the SPICE table.

pub mod chromium;
pub mod novnc;
pub mod novnc_packaged;
pub mod runner;
pub mod ryll;
pub mod spice_gtk;
pub mod spice_html5;
pub mod vncviewer;
pub mod websocket;
pub mod wormhole;
pub mod ws_peer;

use super::constants::Constants;
use super::profile::Variant;
use crate::timeline::Micros;
use crate::timeline::synthetic::Timeline;
use crate::verdict::{Basis, ChainEntry, Verdict, secs};

pub struct OtherProfile {
    pub name: &'static str,
    pub about: &'static str,
    pub variants: &'static [Variant],
    pub define: fn(&mut Constants, &Timeline),
    pub run: fn(&Constants, &Variant, &Timeline, &str) -> Verdict,
}

/// The chain note a profile writes for a timeline event it does not
/// model; [`unmodelled_events`] reads them back, so the wording lives here.
pub fn unmodelled_note(event: &str, profile: &str) -> String {
    format!("`{event}` {UNMODELLED}{profile}; ignored")
}

const UNMODELLED: &str = "is not modelled for ";

/// The timeline events a run ignored because its profile does not model
/// them (each once, in order).
pub fn unmodelled_events(v: &crate::verdict::Verdict) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in &v.chain {
        if let Some((event, _)) = e.what.split_once(UNMODELLED) {
            let event = event.trim().trim_matches('`').to_string();
            if !out.contains(&event) {
                out.push(event);
            }
        }
    }
    out
}

pub const OTHER_PROFILES: &[OtherProfile] = &[
    novnc::NOVNC_DISPLAYTAB,
    novnc_packaged::NOVNC,
    websocket::WEBSOCKET,
    vncviewer::VNCVIEWER,
    spice_html5::SPICE_HTML5,
    runner::RUNNER_WS,
    wormhole::WORMHOLE_PANE,
];

/// `name@variant` for a profile of this module, or `None` for any other name.
pub fn resolve(spec: &str) -> Option<Result<(&'static OtherProfile, &'static Variant), String>> {
    let (name, variant) = spec.split_once('@').unwrap_or((spec, ""));
    let profile = OTHER_PROFILES.iter().find(|p| p.name == name)?;
    let found = if variant.is_empty() {
        profile.variants.first()
    } else {
        profile.variants.iter().find(|v| v.name == variant)
    };
    Some(found.map(|v| (profile, v)).ok_or_else(|| {
        let known: Vec<&str> = profile.variants.iter().map(|v| v.name).collect();
        format!(
            "profile `{name}` has no variant `{variant}` (known: {})",
            known.join(", ")
        )
    }))
}

/// Every constant of a run: the profile's defaults, then the variant's.
pub fn constants_for(profile: &OtherProfile, variant: &Variant, t: &Timeline) -> Constants {
    let mut c = Constants::default();
    (profile.define)(&mut c, t);
    (variant.apply)(&mut c);
    c
}

/// Sets a constant a variant's table names; the table is written here, so
/// a bad entry is a bug, not an input.
pub fn set_variant(c: &mut Constants, name: &str, value: &str) {
    c.set(name, value)
        .unwrap_or_else(|e| unreachable!("variant table: {e}"));
}

/// Every profile's first constant: the timeline's one-way latency.
pub fn define_latency(c: &mut Constants, t: &Timeline) {
    c.define(
        "latency",
        super::constants::Value::Duration(t.network.latency.0),
        "timeline [network]",
    );
}

/// The timeline's latency and the kernel's TCP constants: what every
/// profile whose connections run on `net` needs.
pub fn define_network(c: &mut Constants, t: &Timeline) {
    define_latency(c, t);
    super::net::define_tcp(c);
}

/// A line of a verdict's causal chain at `at` (µs): what the script did
/// (`script`), or what the model inferred.
pub fn chain_entry(at: u64, actor: &'static str, what: String, script: bool) -> ChainEntry {
    ChainEntry {
        at: secs(Micros(at)),
        actor,
        what,
        basis: if script { Basis::Script } else { Basis::Model },
    }
}

/// A run's verdict before its ending is known: which profile and variant
/// ran, with what constants, on which input, to which horizon. Each
/// profile's `finish` fills in how it ended.
pub fn run_verdict(
    profile: &str,
    c: &Constants,
    variant: &Variant,
    t: &Timeline,
    input: &str,
) -> Verdict {
    Verdict {
        outcome: crate::verdict::Outcome::Survived,
        at: None,
        cause: None,
        channel: None,
        violations: Vec::new(),
        profile: profile.into(),
        variant: variant.name.into(),
        constants: c.snapshot(),
        input: input.into(),
        horizon: secs(t.horizon.0),
        environment: Default::default(),
        sessions: 0,
        chain: Vec::new(),
        reconnects: Vec::new(),
        leases: Vec::new(),
        channels: Vec::new(),
        steps: 0,
        capture: None,
    }
}
