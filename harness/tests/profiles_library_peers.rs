//! The library profiles, `novnc` (noVNC 1.3.0 as packaged, through
//! websockify), `websocket` (a WebSocket library's client and server),
//! `vncviewer` (TigerVNC's viewer on TCP) and `spice-html5`: each behaviour
//! the lab measured, on precisely constructed timelines, and the profile
//! chosen for traffic that shows no app, reproducing the lab.

use tether::model::registry::run_timeline;
use tether::timeline::synthetic::Timeline;
use tether::triage::{TriageOptions, triage_path};
use tether::verdict::{Outcome, Verdict};

fn run(events: &str, profile: &str, sets: &[&str]) -> Verdict {
    let toml = format!("horizon = \"600s\"\n[network]\nlatency = \"0ms\"\n{events}");
    let t = Timeline::parse(&toml, "t.toml").unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    run_timeline(&t, "t.toml", profile, &sets).unwrap()
}

const KILLED_AT_10: &str = "[[event]]\nkind = \"server_killed\"\nat = \"10s\"\n";

#[test]
fn a_killed_server_is_a_clean_close_and_the_packaged_client_does_not_retry() {
    let v = run(KILLED_AT_10, "novnc@as-packaged", &[]);
    assert_eq!(v.outcome, Outcome::Disconnected);
    assert_eq!(
        (v.at, v.cause.as_deref()),
        (Some(10.0), Some("server.killed"))
    );
    assert!(v.reconnects.is_empty());
}

#[test]
fn with_reconnect_one_retry_after_the_delay_recovers_or_ends_retrying() {
    // Back before the retry at 15 s: a second generation.
    let back = format!("{KILLED_AT_10}[[event]]\nkind = \"server_restarted\"\nat = \"12s\"\n");
    let v = run(&back, "novnc@reconnect", &[]);
    assert_eq!((v.outcome, v.sessions), (Outcome::Survived, 2));
    assert_eq!(v.reconnects[0].started_at, Some(15.0));
    // Back only after it: the failed retry is unclean, and noVNC stops.
    let late = format!("{KILLED_AT_10}[[event]]\nkind = \"server_restarted\"\nat = \"16s\"\n");
    let v = run(&late, "novnc@reconnect", &[]);
    assert_eq!(v.outcome, Outcome::DeadSession);
    assert_eq!(
        (v.at, v.cause.as_deref()),
        (Some(10.0), Some("server.killed"))
    );
    assert_eq!(v.reconnects.len(), 1, "{:?}", v.reconnects);
}

#[test]
fn a_load_balancer_idle_cut_is_kept_away_only_by_websockify_heartbeat() {
    let lb = "[lb]\nidle_timeout = \"15s\"\non_expiry = \"rst\"\n";
    let v = run(lb, "novnc@as-packaged", &[]);
    assert_eq!((v.outcome, v.at), (Outcome::Disconnected, Some(15.0)));
    assert_eq!(v.cause.as_deref(), Some("lb.idle_timeout"));
    let v = run(lb, "novnc@heartbeat", &[]);
    assert_eq!(v.outcome, Outcome::Survived, "{:?}", v.cause);
    // A heartbeat slower than the idle timeout does not help.
    let v = run(lb, "novnc@heartbeat", &["websockify_heartbeat=20s"]);
    assert_eq!(v.outcome, Outcome::Disconnected);
}

#[test]
fn a_dead_path_is_found_by_chromium_keepalive_after_45_plus_9_times_45_s() {
    let dead = "[[event]]\nkind = \"blackhole\"\nfrom = \"10s\"\nto = \"590s\"\n";
    let v = run(dead, "novnc@as-packaged", &[]);
    assert_eq!(v.outcome, Outcome::Disconnected);
    // The outage killed it, from its start; keep-alive is what noticed:
    // nothing heard since the connect at 0, probes from 45 s, the ninth
    // unanswered at 405 s, the abort one interval later.
    assert_eq!(
        (v.at, v.cause.as_deref()),
        (Some(10.0), Some("network.outage"))
    );
    let noticed = v
        .chain
        .iter()
        .find(|e| e.what.contains("keep-alive probes unanswered"));
    assert_eq!(noticed.map(|e| e.at), Some(450.0));
    // A path back before the probes run out: the next probe is answered.
    let short = "[[event]]\nkind = \"blackhole\"\nfrom = \"10s\"\nto = \"200s\"\n";
    assert_eq!(
        run(short, "novnc@as-packaged", &[]).outcome,
        Outcome::Survived
    );
}

#[test]
fn a_frozen_peer_and_a_users_close() {
    let frozen = "[[event]]\nkind = \"client_stalls\"\nat = \"5s\"\nuntil = \"25s\"\n\
                  [[event]]\nkind = \"user_close\"\nat = \"30s\"\n";
    let v = run(frozen, "novnc@as-packaged", &[]);
    assert_eq!(v.outcome, Outcome::Survived);
    assert_eq!(
        (v.at, v.cause.as_deref()),
        (Some(30.0), Some("client.closed"))
    );
}

#[test]
fn websocket_rfb_without_an_app_signal_runs_the_library_profile_and_says_so() {
    for f in [
        "novnc-server-killed",
        "novnc-relay-restarted",
        "novnc-haproxy-idle-reconnect",
        "vnc2-novnc-lite-server-killed",
    ] {
        let path = format!("{}/../corpora/lab/{f}.pcap", env!("CARGO_MANIFEST_DIR"));
        let t = triage_path(std::path::Path::new(&path), &TriageOptions::default()).unwrap();
        let s = &t.sessions[0];
        assert_eq!(s.profile.as_deref(), Some("novnc@as-packaged"), "{f}");
        assert!(s.profile_basis.starts_with("guessed from the stack"), "{f}");
        let r = s.reproduction.as_ref().unwrap();
        assert!(r.reproduced, "{f}: {:?}", r.differences);
    }
}

// ---- `websocket`: a library's client and server ----

#[test]
fn library_pings_find_a_frozen_peer_one_timeout_after_the_ping_it_missed() {
    let client_frozen = "[[event]]\nkind = \"client_stalls\"\nat = \"7s\"\n";
    let pings = ["server_ping_interval=5s", "server_ping_timeout=5s"];
    let v = run(client_frozen, "websocket@as-seen", &pings);
    // The ping at 10 s goes unanswered; the server fails the connection at 15 s.
    assert_eq!((v.outcome, v.at), (Outcome::Disconnected, Some(15.0)));
    assert_eq!(v.cause.as_deref(), Some("server.closed"));
    let server_frozen = "[[event]]\nkind = \"server_stops_answering\"\nat = \"9s\"\n";
    let pings = ["client_ping_interval=4s", "client_ping_timeout=4s"];
    let v = run(server_frozen, "websocket@as-seen", &pings);
    assert_eq!(
        (v.at, v.cause.as_deref()),
        (Some(16.0), Some("client.liveness_timeout"))
    );
    // Without pings nothing notices either freeze.
    assert_eq!(
        run(server_frozen, "websocket@as-seen", &[]).outcome,
        Outcome::Survived
    );
}

#[test]
fn a_server_heartbeat_shared_by_every_client_pings_at_its_own_phase() {
    // The client freezes at 6 s. Pinged one interval after the connect
    // (5 s, answered; 10 s, not) it is dropped at 15 s; by a heartbeat
    // whose first tick came 3.5 s after the connect (3.5 s, answered;
    // 8.5 s, not) at 13.5 s. A stopped client's reconnect loop dials
    // nothing.
    let frozen = "[[event]]\nkind = \"client_stalls\"\nat = \"6s\"\n";
    let pings = ["server_ping_interval=5s", "server_ping_timeout=5s"];
    let v = run(frozen, "websocket@as-seen", &pings);
    assert_eq!(
        (v.at, v.cause.as_deref()),
        (Some(15.0), Some("server.closed"))
    );
    let phased = [pings[0], pings[1], "server_ping_first=3500ms"];
    let v = run(frozen, "websocket@as-seen", &phased);
    assert_eq!(
        (v.at, v.cause.as_deref()),
        (Some(13.5), Some("server.closed"))
    );
    let v = run(frozen, "websocket@reconnect", &phased);
    assert_eq!((v.outcome, v.sessions), (Outcome::Disconnected, 1));
    assert!(v.reconnects.is_empty(), "{:?}", v.reconnects);
}

#[test]
fn a_reconnect_loop_retries_every_delay_until_the_server_is_back() {
    let back = format!("{KILLED_AT_10}[[event]]\nkind = \"server_restarted\"\nat = \"15s\"\n");
    let v = run(&back, "websocket@reconnect", &[]);
    assert_eq!((v.outcome, v.sessions), (Outcome::Survived, 2));
    let results: Vec<(Option<f64>, bool)> = v
        .reconnects
        .iter()
        .map(|r| (r.started_at, r.result == "connected"))
        .collect();
    assert_eq!(
        results,
        [(Some(12.0), false), (Some(14.0), false), (Some(16.0), true)]
    );
    // A goodbye from a server that goes on listening: back at the first retry.
    let bye = "[[event]]\nkind = \"server_closes\"\nat = \"10s\"\n";
    let v = run(bye, "websocket@reconnect", &[]);
    assert_eq!((v.cause.as_deref(), v.sessions), (Some("server.closed"), 2));
    assert_eq!(
        run(bye, "websocket@as-seen", &[]).outcome,
        Outcome::Disconnected
    );
}

#[test]
fn an_outage_found_by_pings_is_named_at_its_start() {
    let dead = "[[event]]\nkind = \"blackhole\"\nfrom = \"12s\"\nto = \"100s\"\n";
    let pings = ["client_ping_interval=5s", "client_ping_timeout=20s"];
    let v = run(dead, "websocket@as-seen", &pings);
    assert_eq!((v.outcome, v.at), (Outcome::Disconnected, Some(12.0)));
    assert_eq!(v.cause.as_deref(), Some("network.outage"));
}

#[test]
fn a_ping_into_a_short_outage_is_retransmitted_and_its_pong_keeps_the_stream() {
    // The ping at 15 s waits in the kernel: retransmitted 200 ms, 400 ms,
    // 800 ms, 1.6 s and 3.2 s later, it gets through at 21.2 s, before its
    // 20 s deadline. The stream lives on.
    let dead = "[[event]]\nkind = \"blackhole\"\nfrom = \"12s\"\nto = \"20s\"\n";
    let pings = ["client_ping_interval=5s", "client_ping_timeout=20s"];
    let v = run(dead, "websocket@as-seen", &pings);
    assert_eq!(v.outcome, Outcome::Survived, "{:?} {:?}", v.cause, v.chain);
    assert_eq!(v.sessions, 1);
    // The same outage outlasting the deadline is found by it.
    let long = "[[event]]\nkind = \"blackhole\"\nfrom = \"12s\"\nto = \"36s\"\n";
    let v = run(long, "websocket@as-seen", &pings);
    assert_eq!(
        (v.outcome, v.at, v.cause.as_deref()),
        (Outcome::Disconnected, Some(12.0), Some("network.outage"))
    );
}

#[test]
fn a_ping_nobody_waits_for_ends_the_stream_when_the_kernel_gives_up_retransmitting() {
    // No pong deadline: only TCP notices. The ping sent at 15 s is
    // retransmitted until tcp_retries2; the socket aborts 924.6 s later.
    let toml = "horizon = \"1200s\"\n[network]\nlatency = \"0ms\"\n\
                [[event]]\nkind = \"blackhole\"\nfrom = \"12s\"\nto = \"1100s\"\n";
    let t = Timeline::parse(toml, "t.toml").unwrap();
    let sets = [
        "client_ping_interval=5s".to_string(),
        "client_ping_timeout=0s".to_string(),
    ];
    let v = run_timeline(&t, "t.toml", "websocket@as-seen", &sets).unwrap();
    assert_eq!(
        (v.outcome, v.at, v.cause.as_deref()),
        (Outcome::Disconnected, Some(12.0), Some("network.outage"))
    );
    let abort = v.chain.iter().find(|e| e.actor == "client").unwrap();
    assert_eq!(abort.at, 939.6);
    assert!(abort.what.contains("15 retransmissions"), "{}", abort.what);
    assert_eq!(
        v.channels[0].last_closed_by.as_deref(),
        Some("tcp.retransmission_timeout")
    );
}

#[test]
fn plain_websocket_runs_the_library_profile_with_what_the_capture_pins() {
    for (f, pinned) in [
        ("ws-client-frozen-long", "server_ping_timeout="),
        ("ws2-client-liveness", "client_ping_timeout="),
        ("ws2-server-killed-reconnect", "reconnect_delay="),
        ("ws2-server-goes-away", ""),
        ("ws-blackhole", "client_ping_interval="),
    ] {
        let path = format!("{}/../corpora/lab/{f}.pcap", env!("CARGO_MANIFEST_DIR"));
        let t = triage_path(std::path::Path::new(&path), &TriageOptions::default()).unwrap();
        let s = &t.sessions[0];
        assert_eq!(s.profile.as_deref(), Some("websocket@as-seen"), "{f}");
        assert!(
            pinned.is_empty()
                || s.constants_from_capture
                    .iter()
                    .any(|c| c.starts_with(pinned)),
            "{f}: {:?}",
            s.constants_from_capture
        );
        let r = s.reproduction.as_ref().unwrap();
        assert!(r.reproduced, "{f}: {:?}", r.differences);
    }
}

// ---- `vncviewer` and `spice-html5` ----

#[test]
fn a_vnc_viewer_has_no_timer_of_its_own_so_only_keepalive_would_find_a_dead_path() {
    let dead = "[[event]]\nkind = \"blackhole\"\nfrom = \"10s\"\nto = \"590s\"\n";
    assert_eq!(
        run(dead, "vncviewer@as-seen", &[]).outcome,
        Outcome::Survived
    );
    let v = run(dead, "vncviewer@keepalive", &[]);
    assert_eq!((v.outcome, v.at), (Outcome::Disconnected, Some(10.0)));
    let noticed = v
        .chain
        .iter()
        .find(|e| e.what.contains("keep-alive probes"));
    // Last heard at 0: probes from 30 s, three unanswered, the abort at 60 s.
    assert_eq!(noticed.map(|e| e.at), Some(60.0));
    let v = run(KILLED_AT_10, "vncviewer@as-seen", &[]);
    assert_eq!(
        (v.outcome, v.cause.as_deref()),
        (Outcome::Disconnected, Some("server.killed"))
    );
}

#[test]
fn spice_html5_is_dropped_by_the_servers_connectivity_timer_when_it_freezes() {
    let frozen = "[[event]]\nkind = \"client_stalls\"\nat = \"20s\"\n";
    let v = run(frozen, "spice-html5@as-packaged", &[]);
    // PINGs at 15 and 30 s: the second is left unanswered, closed 45 s on.
    assert_eq!((v.outcome, v.at), (Outcome::Disconnected, Some(75.0)));
    // spice-server's connectivity timer, named as for every SPICE client.
    assert_eq!(v.cause.as_deref(), Some("server.connectivity_timeout"));
}

/// A relay that takes every frame and forwards nothing (websockify
/// SIGSTOPped; its kernel still ACKs): the PING at 15 s is answered only
/// at the hold's end. A 20 s hold ends before the server's 45 s wait; a
/// long one does not, and the server's close, held too, reaches the client
/// when the hold ends.
#[test]
fn spice_html5_behind_a_relay_that_holds() {
    let hold =
        |to: &str| format!("[[event]]\nkind = \"relay_holds\"\nfrom = \"10s\"\nto = \"{to}\"\n");
    let short = run(&hold("30s"), "spice-html5@as-packaged", &[]);
    assert_eq!(short.outcome, Outcome::Survived, "{:?}", short.chain);
    let long = run(&hold("200s"), "spice-html5@as-packaged", &[]);
    assert_eq!(
        (long.outcome, long.at, long.cause.as_deref()),
        (
            Outcome::Disconnected,
            Some(60.0),
            Some("server.connectivity_timeout")
        )
    );
    let main = long.channels.iter().find(|c| c.channel == "main").unwrap();
    assert_eq!(main.last_closed_at, Some(200.0));
}

#[test]
fn vnc_and_spice_html5_recordings_run_their_library_profiles_and_reproduce() {
    for (f, profile) in [
        ("vnc-xvnc-server-killed", "vncviewer@as-seen"),
        ("vnc-xvnc-haproxy-idle", "vncviewer@as-seen"),
        ("vnc-xvnc-blackhole", "vncviewer@as-seen"),
        ("vnc2-x11vnc-tiger-client-frozen", "vncviewer@as-seen"),
        ("spicehtml5-server-killed", "spice-html5@as-packaged"),
        ("spicehtml5-relay-killed", "spice-html5@as-packaged"),
        ("spicehtml5-user-close", "spice-html5@as-packaged"),
    ] {
        let path = format!("{}/../corpora/lab/{f}.pcap", env!("CARGO_MANIFEST_DIR"));
        let t = triage_path(std::path::Path::new(&path), &TriageOptions::default()).unwrap();
        let s = &t.sessions[t.primary.unwrap()];
        assert_eq!(s.profile.as_deref(), Some(profile), "{f}");
        let r = s.reproduction.as_ref().unwrap();
        assert!(r.reproduced, "{f}: {:?}", r.differences);
    }
}
