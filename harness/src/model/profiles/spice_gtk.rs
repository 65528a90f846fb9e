//! spice-gtk (remote-viewer, spicy): the SPICE client library every SPICE
//! app profile builds on. Its constants and what each rests on; the
//! client actor it configures is `client::spice`.

use super::super::client::{KeepaliveKind, ReconnectPolicy, SpiceClientConfig};
use super::super::constants::{Constants, Value};
use super::super::profile::{Profile, Variant};
use crate::timeline::Micros;
use crate::timeline::synthetic::{ChannelKind, Timeline};

fn s(n: u64) -> Micros {
    Micros(n * 1_000_000)
}

/// Client constants every SPICE profile has.
pub fn define_spice_client(c: &mut Constants) {
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

pub fn build_spice_client(c: &Constants, t: &Timeline) -> SpiceClientConfig {
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

pub(super) fn set(c: &mut Constants, name: &str, value: &str) {
    c.set(name, value)
        .unwrap_or_else(|e| unreachable!("variant table: {e}"));
}

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
