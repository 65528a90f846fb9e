//! One vocabulary for what ended a session and where it began: the names
//! triage gives from a capture, the model gives from a run and live mode
//! gives as it watches. A cause names what closed the connection; an
//! origin (triage's layered evidence) names what set that off. Where the
//! model and a capture name one fact differently, the fact is not the
//! same: `triage::whatif::same_cause` lists the two pairs and why.

/// A name and what it means, as a reader of a verdict needs it.
#[derive(Clone, Copy, Debug)]
pub struct Name {
    pub name: &'static str,
    pub means: &'static str,
}

const fn n(name: &'static str, means: &'static str) -> Name {
    Name { name, means }
}

/// Every cause a verdict, a diagnosis or live mode may give.
pub const CAUSES: &[Name] = &[
    // Someone ended it on purpose.
    n(
        "client.closed",
        "the client closed on purpose (a user's close)",
    ),
    n("server.closed", "the server closed the session itself"),
    // A process went away.
    n(
        "server.killed",
        "the server process died; its kernel closed its sockets",
    ),
    n(
        "relay.killed",
        "the relay between them (websockify, a proxy) died",
    ),
    // A timer of an endpoint.
    n(
        "client.liveness_timeout",
        "the client's own timer gave up on a silent server",
    ),
    n(
        "server.connectivity_timeout",
        "spice-server's connectivity timer closed a client that stopped answering",
    ),
    n(
        "server.idle_timeout_seed_belief",
        "the idle close seed 002 believed spice-server has",
    ),
    n(
        "runner.pong_deadline",
        "the runner's read deadline found no pong",
    ),
    // What the protocol refused.
    n(
        "server.unknown_client_message",
        "spice-server dropped a channel on a message type it does not know",
    ),
    n(
        "server.main_torn_down",
        "spice-server tore the channels down with main",
    ),
    n(
        "server.replaced_by_new_client",
        "a new client's main replaced this session",
    ),
    n(
        "spice.no_such_session",
        "a secondary channel for a session the server does not have (BAD_CONNECTION_ID)",
    ),
    n(
        "auth.refused",
        "the server refused the login (SPICE PERMISSION_DENIED, RFB security failure)",
    ),
    n(
        "http.refused",
        "the WebSocket upgrade was answered 401 or 403",
    ),
    n(
        "http.401_stale_token",
        "the upgrade presented a token whose expiry had passed",
    ),
    n(
        "http.error",
        "the WebSocket upgrade was answered with another error status",
    ),
    // The environment.
    n(
        "lb.idle_timeout",
        "a load balancer's idle timer forgot the flow",
    ),
    n("network.outage", "the path stopped carrying packets"),
    n(
        "lease.expired",
        "the control lease ran out and the gateway ended the session",
    ),
    n(
        "sandbox.sleep",
        "the sandbox host slept and its sockets went with it",
    ),
    n(
        "runner.attach_slot_held",
        "a vanished client's attach slot stayed held, blocking its reattach",
    ),
    // Faults tether's live proxy (the relay) carried out.
    n(
        "relay.ws_data_dropped",
        "the relay dropped WebSocket data frames, passing control frames",
    ),
    n(
        "relay.ws_control_dropped",
        "the relay dropped WebSocket control frames (pings, pongs)",
    ),
    n(
        "upstream.unreachable",
        "the relay could not reach the server: no session came up",
    ),
    // The transport's own ending.
    n("tcp.reset", "a RST ended the connection"),
    n(
        "tcp.fin_from_server",
        "a FIN from the server side ended the connection",
    ),
    n(
        "tcp.keepalive_timeout",
        "TCP keep-alive probes went unanswered and the kernel aborted",
    ),
    n(
        "tcp.retransmission_timeout",
        "the kernel gave up retransmitting (tcp_retries2)",
    ),
    n("tcp.refused", "the connect was answered with RST"),
    n("tcp.no_answer", "the connect's SYNs went unanswered"),
    // A run that could not connect and had nothing more specific.
    n("client.connect_failed", "the client's connect failed"),
    n(
        "novnc.connect_failed",
        "noVNC's socket closed while connecting",
    ),
    n("control.lost", "DisplayTab no longer holds control"),
    n("unknown", "the evidence decides nothing"),
];

/// Every origin triage's evidence may name.
pub const ORIGINS: &[Name] = &[
    n("network.outage", "the path died"),
    n(
        "client.frozen",
        "the client's process stopped while its kernel still answered",
    ),
    n(
        "server.frozen",
        "the server's process stopped while its kernel still answered",
    ),
    n(
        "client.stopped_answering",
        "the client stopped answering its peer's pings",
    ),
    n(
        "client.stopped_answering_main",
        "the client stopped answering pings on main",
    ),
    n(
        "client.stopped_reading_main",
        "the client stopped reading main",
    ),
    n(
        "tcp.dead_path",
        "segments went unacknowledged: nothing reached the peer",
    ),
];

pub fn is_cause(name: &str) -> bool {
    CAUSES.iter().any(|c| c.name == name)
}

pub fn is_origin(name: &str) -> bool {
    ORIGINS.iter().any(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once_and_says_what_it_means() {
        for list in [CAUSES, ORIGINS] {
            for (i, a) in list.iter().enumerate() {
                assert!(!a.means.is_empty(), "{}", a.name);
                assert!(
                    list[i + 1..].iter().all(|b| b.name != a.name),
                    "{} twice",
                    a.name
                );
            }
        }
        assert!(is_cause("client.closed") && !is_cause("user_close"));
        assert!(is_origin("client.frozen") && !is_origin("server.killed"));
    }
}
