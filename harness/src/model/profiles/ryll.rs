//! ryll (seed 002): a SPICE client with spice-gtk's sockets and its own
//! main-channel timeout, with the phase-02 work as variants.

use super::super::profile::{Profile, Variant};
use super::spice_gtk::{build_spice_client, define_spice_client, set};

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
