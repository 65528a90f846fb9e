//! `vncviewer`: a VNC viewer on plain TCP, as the lab measured TigerVNC's
//! xtigervncviewer 1.12 and vncdotool 1.4 (corpora/lab/NOTES-vnc.md,
//! NOTES-vnc2.md): what RFB over TCP shows when no app says more.
//!
//! - Neither TigerVNC end has a liveness timer and neither sets TCP
//!   keep-alive: a frozen server or viewer is silence (vnc-xvnc-server-frozen,
//!   vnc-xvnc-client-frozen), and a 120 s blackhole ends nothing
//!   (vnc-xvnc-blackhole: only the server's retransmissions cross).
//! - A killed server's kernel sends FIN; the viewer answers FIN and does not
//!   reconnect (vnc-xvnc-server-killed, vnc-x11vnc-server-killed). A
//!   refused password leaves an error dialog, with no retry of its own.
//! - A load balancer's idle cut is a FIN to the viewer
//!   (vnc-xvnc-haproxy-idle).
//!
//! The what-if variant `keepalive` is a proposal, not a measurement: TCP
//! keep-alive as an app could set it, to find a dead path.

use super::super::constants::{Constants, Value};
use super::super::profile::Variant;
use super::OtherProfile;
use super::set_variant as set;
use super::ws_peer::{self, Knobs};
use crate::timeline::Micros;
use crate::timeline::synthetic::Timeline;
use crate::verdict::Verdict;

pub const VNCVIEWER: OtherProfile = OtherProfile {
    name: "vncviewer",
    about: "a VNC viewer on TCP (TigerVNC 1.12, vncdotool 1.4 measured): no liveness timer, no reconnect",
    variants: &[
        Variant {
            name: "as-seen",
            about: "as measured: no keep-alive, no pings, no reconnect",
            apply: |_| {},
        },
        Variant {
            name: "keepalive",
            about: "proposal: SO_KEEPALIVE at 30 s idle, 10 s interval, 3 probes on the viewer's socket",
            apply: |c| {
                set(c, "keepalive_idle", "30s");
                set(c, "keepalive_interval", "10s");
                set(c, "keepalive_probes", "3");
            },
        },
    ],
    define,
    run,
};

fn define(c: &mut Constants, t: &Timeline) {
    use Value::*;
    super::define_network(c, t);
    c.define(
        "keepalive_idle",
        Duration(Micros::ZERO),
        "off: neither TigerVNC end sends a keep-alive probe (vnc-xvnc-server-frozen)",
    );
    c.define(
        "keepalive_interval",
        Duration(Micros(75_000_000)),
        "LX tcp_keepalive_intvl default, used only when keep-alive is on",
    );
    c.define(
        "keepalive_probes",
        Count(9),
        "LX tcp_keepalive_probes default, used only when keep-alive is on",
    );
}

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let idle = c.duration("keepalive_idle").0;
    let knobs = Knobs {
        profile: VNCVIEWER.name,
        channel: "rfb",
        reconnect: false,
        reconnect_delay: 0,
        retry_once: true,
        client_ping: None,
        server_ping: None,
        server_ping_first: 0,
        server_ping_cause: "server.closed",
        keepalive: (idle > 0).then(|| {
            (
                idle,
                c.duration("keepalive_interval").0,
                c.count("keepalive_probes"),
            )
        }),
    };
    ws_peer::run(knobs, c, variant, t, input)
}
