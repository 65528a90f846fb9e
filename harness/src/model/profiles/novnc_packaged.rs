//! `novnc`: noVNC 1.3.0 as Debian packages it (vnc.html in Chromium),
//! through websockify 0.10, to a VNC server: the library and its relay,
//! with no app around them. What a WebSocket carrying RFB shows when no
//! app says more. Every behaviour below was measured on the lab's
//! recordings (corpora/lab/NOTES-novnc.md, NOTES-vnc2.md):
//!
//! - A close of a connected session, whoever sent it (a relay's or a
//!   server's kernel FIN, websockify's close 1000, a load balancer's FIN),
//!   is clean. With `reconnect=true` vnc.html retries once after
//!   `reconnect_delay`; a retry that fails (RST to its SYN, or a close
//!   while still connecting) is unclean and ends retrying: one attempt per
//!   drop (novnc-relay-killed, novnc-server-killed-reconnect,
//!   vnc2-novnc-lite-relay-restarted; app/ui.js 1.3.0 tests `clean`
//!   before reconnecting). A retry that finds the relay and the server up
//!   is a second generation (novnc-relay-restarted,
//!   novnc-haproxy-idle-reconnect).
//! - noVNC sends nothing unprompted and has no liveness timer: a frozen
//!   server or browser is silence, not an ending (novnc-server-frozen,
//!   novnc-client-frozen). Only websockify's `--heartbeat` puts data on an
//!   idle path (a ping every interval, answered at once:
//!   novnc-heartbeat-latency); websockify does not act on a missing pong.
//! - Chromium sets TCP keep-alive on the WebSocket (`chromium`): 45 s
//!   idle and 45 s between probes, 9 probes, so a dead path aborts the
//!   browser's socket 45 + 9 × 45 s after the last segment heard.
//! - websockify 0.10 sets SO_KEEPALIVE on its listening socket (accepted
//!   sockets inherit it) and on its socket to the target, and leaves the
//!   times to the kernel: 7200 s idle, 75 s, 9 probes (websockifyserver.py
//!   `WebSockifyServer.socket`, `tcp_keepalive=True`; websocketproxy.py
//!   passes no times). The browser's 45 s always finds a dead path first,
//!   so the relay's own keep-alive decides no ending this model runs.

use super::super::constants::{Constants, Value};
use super::super::profile::Variant;
use super::OtherProfile;
use super::set_variant as set;
use super::ws_peer::{self, Knobs};
use crate::timeline::Micros;
use crate::timeline::synthetic::Timeline;
use crate::verdict::Verdict;

pub const NOVNC: OtherProfile = OtherProfile {
    name: "novnc",
    about: "noVNC 1.3.0 as packaged (vnc.html, Chromium) through websockify 0.10: the library, no app",
    variants: &[
        Variant {
            name: "as-packaged",
            about: "vnc.html's defaults: no reconnect; websockify without --heartbeat",
            apply: |_| {},
        },
        Variant {
            name: "reconnect",
            about: "vnc.html reconnect=true: one retry after reconnect_delay per clean drop",
            apply: |c| set(c, "auto_reconnect", "true"),
        },
        Variant {
            name: "heartbeat",
            about: "websockify --heartbeat 5: a ping and its pong every 5 s keep the path busy",
            apply: |c| set(c, "websockify_heartbeat", "5s"),
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
        "auto_reconnect",
        Flag(false),
        "noVNC 1.3.0 app/ui.js: vnc.html's `reconnect` setting defaults to false",
    );
    c.define(
        "reconnect_delay",
        sec(5),
        "noVNC 1.3.0 app/ui.js: reconnect_delay 5000 ms (vnc2-novnc-lite-relay-restarted)",
    );
    c.define(
        "websockify_heartbeat",
        sec(0),
        "websockify --heartbeat, off unless given (novnc-heartbeat-latency: 5 s)",
    );
    super::chromium::define_keepalive(c);
}

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let heartbeat = c.duration("websockify_heartbeat").0;
    let knobs = Knobs {
        profile: NOVNC.name,
        channel: "ws/rfb",
        reconnect: c.flag("auto_reconnect"),
        reconnect_delay: c.duration("reconnect_delay").0,
        retry_once: true,
        client_ping: None,
        // websockify pings but never acts on a missing pong.
        server_ping: (heartbeat > 0).then_some((heartbeat, 0)),
        server_ping_first: 0,
        server_ping_cause: "server.closed",
        keepalive: Some(super::chromium::keepalive(c)),
    };
    ws_peer::run(knobs, c, variant, t, input)
}
