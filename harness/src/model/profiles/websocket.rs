//! `websocket`: a client of a WebSocket library and its server, with no
//! app known around them: what a plain WebSocket shows. Measured on the
//! lab's recordings of Python `websockets` 17 and Node `ws` 8
//! (corpora/lab/NOTES-ws.md, NOTES-ws2.md):
//!
//! - Keep-alive is the library's: a ping every `ping_interval`, the
//!   connection failed with close 1011 when no pong comes within
//!   `ping_timeout` (websockets 17: 20 s and 20 s by default, the lab ran
//!   4 s and 5 s; ws-client-frozen-long, ws2-client-liveness). Node's `ws`
//!   has no client pings; its server heartbeat pattern terminates a client
//!   that missed one interval's ping (ws2-several-clients-one-frozen). A
//!   frozen peer's kernel still ACKs, so only these pings notice it.
//! - A server killed: its kernel's FIN, the client sees 1006; a client
//!   that reconnects on close retries every delay until one gets in
//!   (ws2-server-killed-reconnect: refused twice, the third in).
//! - A server's goodbye (close 1001, "going away") ends the session with
//!   the server still listening (ws2-server-goes-away).
//! - Neither library sets TCP keep-alive on its socket: a dead path is
//!   found by the pings alone, or not at all (ws2-blackhole-long).
//!
//! The capture pins what it shows: the ping intervals each side used, a
//! timeout it saw fire, and a reconnect's delay.

use super::super::constants::{Constants, Value};
use super::super::profile::Variant;
use super::OtherProfile;
use super::set_variant as set;
use super::ws_peer::{self, Knobs};
use crate::timeline::Micros;
use crate::timeline::synthetic::Timeline;
use crate::verdict::Verdict;

pub const WEBSOCKET: OtherProfile = OtherProfile {
    name: "websocket",
    about: "a WebSocket library's client and server (websockets 17, Node ws 8): no app known",
    variants: &[
        Variant {
            name: "as-seen",
            about: "what the capture shows of pings and reconnects; nothing else on",
            apply: |_| {},
        },
        Variant {
            name: "client-keepalive",
            about: "client pings every 20 s, fails after 20 s without a pong (websockets' defaults)",
            apply: |c| {
                set(c, "client_ping_interval", "20s");
                set(c, "client_ping_timeout", "20s");
            },
        },
        Variant {
            name: "reconnect",
            about: "the client reconnects on every close, every reconnect_delay until it gets in",
            apply: |c| set(c, "auto_reconnect", "true"),
        },
    ],
    define,
    run,
};

fn define(c: &mut Constants, t: &Timeline) {
    use Value::*;
    let sec = |n: u64| Duration(Micros(n * 1_000_000));
    super::define_network(c, t);
    c.define(
        "client_ping_interval",
        sec(0),
        "off unless the capture shows the client's pings (websockets 17 ping_interval)",
    );
    c.define(
        "client_ping_timeout",
        sec(20),
        "websockets 17 ping_timeout default 20 s, or the one the capture saw fire",
    );
    c.define(
        "server_ping_interval",
        sec(0),
        "off unless the capture shows the server's pings",
    );
    c.define(
        "server_ping_first",
        sec(0),
        "0: one interval after the connect; else the capture's first server ping (ws's heartbeat is one setInterval over every client, ws README 'How to detect and close broken connections')",
    );
    c.define(
        "server_ping_timeout",
        sec(20),
        "websockets 17 ping_timeout default 20 s, or the one the capture saw fire",
    );
    c.define(
        "auto_reconnect",
        Flag(false),
        "neither library reconnects by itself; the capture shows when the app does",
    );
    c.define(
        "reconnect_delay",
        sec(2),
        "ws2-server-killed-reconnect's loop: 2 s (the capture's own when it shows one)",
    );
}

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let knobs = Knobs {
        profile: WEBSOCKET.name,
        channel: "ws",
        reconnect: c.flag("auto_reconnect"),
        reconnect_delay: c.duration("reconnect_delay").0,
        retry_once: false,
        client_ping: Knobs::pings(c, "client_ping_interval", "client_ping_timeout"),
        server_ping: Knobs::pings(c, "server_ping_interval", "server_ping_timeout"),
        server_ping_first: c.duration("server_ping_first").0,
        server_ping_cause: "server.closed",
        keepalive: None,
    };
    ws_peer::run(knobs, c, variant, t, input)
}
