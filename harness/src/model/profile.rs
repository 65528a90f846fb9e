//! The profile registry: `name@variant` → the constants it defines and the
//! client actor it builds. Adding a profile is one more entry in
//! [`PROFILES`] with a `define` function (constants with defaults and
//! sources) and a `build` function (constants → client config).

use super::client::{KeepaliveKind, ReconnectPolicy, SpiceClientConfig};
use super::constants::{Constants, Value};
use crate::timeline::Micros;
use crate::timeline::synthetic::{ChannelKind, Timeline};

pub struct Variant {
    pub name: &'static str,
    pub about: &'static str,
    /// Overrides of the profile's defaults that make this variant.
    pub apply: fn(&mut Constants),
}

pub struct Profile {
    pub name: &'static str,
    pub about: &'static str,
    pub variants: &'static [Variant],
    pub define: fn(&mut Constants),
    pub build: fn(&Constants, &Timeline) -> SpiceClientConfig,
}

pub const PROFILES: &[Profile] = &[RYLL, SPICE_GTK];

/// Every profile of both registries (the SPICE one first) as (name,
/// about, variants): for listings and for checks across all profiles.
pub fn every_profile() -> impl Iterator<Item = (&'static str, &'static str, &'static [Variant])> {
    PROFILES
        .iter()
        .map(|p| (p.name, p.about, p.variants))
        .chain(
            super::profiles::OTHER_PROFILES
                .iter()
                .map(|p| (p.name, p.about, p.variants)),
        )
}

/// Looks up `name@variant` (`name` alone picks the first variant).
pub fn resolve(spec: &str) -> Result<(&'static Profile, &'static Variant), String> {
    let (name, variant) = spec.split_once('@').unwrap_or((spec, ""));
    let profile = PROFILES.iter().find(|p| p.name == name).ok_or_else(|| {
        // Both registries: the caller tries the other one first.
        let known: Vec<&str> = every_profile().map(|(name, _, _)| name).collect();
        format!("unknown profile `{name}` (known: {})", known.join(", "))
    })?;
    let v = if variant.is_empty() {
        &profile.variants[0]
    } else {
        profile
            .variants
            .iter()
            .find(|v| v.name == variant)
            .ok_or_else(|| {
                let known: Vec<&str> = profile.variants.iter().map(|v| v.name).collect();
                format!(
                    "profile `{name}` has no variant `{variant}` (known: {})",
                    known.join(", ")
                )
            })?
    };
    Ok((profile, v))
}

fn s(n: u64) -> Micros {
    Micros(n * 1_000_000)
}

/// Client constants every SPICE profile has.
fn define_spice_client(c: &mut Constants) {
    use Value::*;
    c.define(
        "client_tcp_keepalive_idle",
        Duration(s(30)),
        "SG spice-session.c:2299-2302",
    );
    c.define(
        "client_tcp_keepalive_interval",
        Duration(s(15)),
        "SG spice-session.c:2299-2302",
    );
    c.define(
        "client_tcp_keepalive_count",
        Count(3),
        "SG spice-session.c:2299-2302",
    );
    c.define(
        "client_liveness_timeout",
        Duration(Micros::ZERO),
        "0s = none",
    );
    c.define("auto_reconnect", Flag(false), "profile");
    c.define(
        "reconnect_backoff",
        Schedule(vec![s(1), s(4), s(16)]),
        "seed 002 block A",
    );
    c.define("reconnect_attempts", Count(3), "seed 002 block A");
    c.define(
        "reconnect_cluster_window",
        Duration(s(300)),
        "seed 002 block A",
    );
    c.define("honour_ticket_limits", Flag(false), "seed 002 A.4/A.5");
    c.define(
        "idle_keepalive",
        Flag(false),
        "seed 002 C.1 / landed mitigations",
    );
    c.define("idle_keepalive_after", Duration(s(15)), "seed 002 C.1");
    c.define(
        "idle_keepalive_uses_client_ping",
        Flag(false),
        "seed 002 C.1 as planned",
    );
}

fn build_spice_client(c: &Constants, t: &Timeline) -> SpiceClientConfig {
    let liveness = c.duration("client_liveness_timeout");
    let idle = c.duration("idle_keepalive_after");
    let idle_keepalive = if !c.flag("idle_keepalive") {
        Vec::new()
    } else if c.flag("idle_keepalive_uses_client_ping") {
        // C.1 as planned: a client PING on every idle channel.
        t.channels
            .iter()
            .map(|&k| (k, KeepaliveKind::ClientPing, idle))
            .collect()
    } else {
        // What landed: a spurious PONG on main, KEY_MODIFIERS on inputs.
        vec![
            (ChannelKind::Main, KeepaliveKind::SpuriousPong, idle),
            (ChannelKind::Inputs, KeepaliveKind::KeyModifiers, idle),
        ]
    };
    SpiceClientConfig {
        channels: t.channels.clone(),
        main_liveness_timeout: (liveness > Micros::ZERO).then_some(liveness),
        idle_keepalive,
        reconnect: c.flag("auto_reconnect").then(|| ReconnectPolicy {
            backoff: c.schedule("reconnect_backoff"),
            budget: c.count("reconnect_attempts"),
            cluster_window: c.duration("reconnect_cluster_window"),
        }),
        honours_ticket_limits: c.flag("honour_ticket_limits"),
        ticket_single_use: t.server.single_use_ticket,
        ticket_valid_until: t.server.ticket_valid_until.map(|d| d.0),
    }
}

fn set(c: &mut Constants, name: &str, value: &str) {
    c.set(name, value)
        .unwrap_or_else(|e| unreachable!("variant table: {e}"));
}

/// ryll (seed 002): a SPICE client with its own main-channel timeout, and
/// the phase-02 work as variants.
pub const RYLL: Profile = Profile {
    name: "spice-ryll",
    about: "ryll SPICE client (seed 002)",
    variants: &[
        Variant {
            name: "pre-phase02",
            about: "30 s mirror timeout on main, reactive PONG only, manual reconnect",
            apply: |c| set(c, "client_liveness_timeout", "30s"),
        },
        Variant {
            name: "proactive-ping",
            about: "seed 002 as planned: client PING on idle channels (SPICE has none), 90 s mirror, auto-reconnect",
            apply: |c| {
                set(c, "client_liveness_timeout", "90s");
                set(c, "idle_keepalive", "true");
                set(c, "idle_keepalive_uses_client_ping", "true");
                set(c, "auto_reconnect", "true");
                set(c, "honour_ticket_limits", "true");
            },
        },
        Variant {
            name: "phase02",
            about: "what landed: spurious PONG on main and KEY_MODIFIERS on inputs when idle, 90 s mirror, auto-reconnect 1/4/16 s x3 per 5 min, no retry on doomed tickets",
            apply: |c| {
                set(c, "client_liveness_timeout", "90s");
                set(c, "idle_keepalive", "true");
                set(c, "auto_reconnect", "true");
                set(c, "honour_ticket_limits", "true");
            },
        },
    ],
    define: define_spice_client,
    build: build_spice_client,
};

/// spice-gtk / virt-viewer: reactive PONG and TCP keepalive only.
pub const SPICE_GTK: Profile = Profile {
    name: "spice-gtk",
    about: "spice-gtk / remote-viewer: no application keepalive, no auto-reconnect",
    variants: &[Variant {
        name: "default",
        about: "reactive PONG, TCP keepalive 30+15x3",
        apply: |_| {},
    }],
    define: define_spice_client,
    build: build_spice_client,
};
