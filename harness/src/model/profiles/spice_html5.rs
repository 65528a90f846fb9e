//! `spice-html5`: spice-html5 0.3.0 as Debian packages it
//! (spice_auto.html in Chromium), one WebSocket per SPICE channel through
//! websockify 0.10, to QEMU's spice-server (corpora/lab/NOTES-spicehtml5.md).
//!
//! - It does not reconnect: a killed QEMU (websockify's close 1000 on
//!   every channel) or a killed websockify (FIN) ends the session
//!   (spicehtml5-server-killed, spicehtml5-relay-killed).
//! - It answers spice-server's PINGs; the server pings main every 15 s
//!   (SS red-channel-client.cpp PING_TEST_TIMEOUT_MS) and its connectivity
//!   timer drops a client whose round is still outstanding at two 30 s
//!   ticks: 30 to 60 s after the PING (CLIENT_CONNECTIVITY_TIMEOUT). This
//!   loop has one timeout, not ticks: 45 s, the middle of that window, as
//!   spice-server 0.15.1 closed 44.9 s after the unanswered pair in the
//!   lab (spice-tls12-frozen). A time from it is within ±15 s.
//! - Chromium's WebSocket TCP keep-alive (`chromium`): 45 s idle, 45 s
//!   interval, 9 probes.
//!
//! The session is modelled as main alone: every channel shares its fate
//! (spice-html5 closes the others itself when one drops).

use super::super::constants::{Constants, Value};
use super::super::profile::Variant;
use super::OtherProfile;
use super::ws_peer::{self, Knobs};
use crate::timeline::Micros;
use crate::timeline::synthetic::Timeline;
use crate::verdict::Verdict;

pub const SPICE_HTML5: OtherProfile = OtherProfile {
    name: "spice-html5",
    about: "spice-html5 0.3.0 as packaged (Chromium) through websockify to spice-server: no reconnect",
    variants: &[Variant {
        name: "as-packaged",
        about: "as measured: answers PINGs, no reconnect",
        apply: |_| {},
    }],
    define,
    run,
};

fn define(c: &mut Constants, t: &Timeline) {
    use Value::*;
    let sec = |n: u64| Duration(Micros(n * 1_000_000));
    super::define_network(c, t);
    c.define(
        "ping_interval",
        sec(15),
        "SS red-channel-client.cpp PING_TEST_TIMEOUT_MS",
    );
    c.define(
        "connectivity_close_after",
        sec(45),
        "SS CLIENT_CONNECTIVITY_TIMEOUT 30 s ticks: 30..60 s after the PING; 44.9 s in spice-tls12-frozen",
    );
    super::chromium::define_keepalive(c);
}

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let knobs = Knobs {
        profile: SPICE_HTML5.name,
        channel: "main",
        reconnect: false,
        reconnect_delay: 0,
        retry_once: true,
        client_ping: None,
        server_ping: Knobs::pings(c, "ping_interval", "connectivity_close_after"),
        server_ping_first: 0,
        server_ping_cause: "server.connectivity_timeout",
        keepalive: Some(super::chromium::keepalive(c)),
    };
    ws_peer::run(knobs, c, variant, t, input)
}
