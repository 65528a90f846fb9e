//! The whole model (client profile + SPICE server + network + load
//! balancer) on precisely constructed timelines, checked against the
//! primary-source behaviour in protocol-facts.md §1.16 and §4.5.

use tether::model::registry::run_timeline;
use tether::timeline::synthetic::Timeline;
use tether::verdict::{Outcome, Verdict};

fn run(toml: &str, profile: &str, set: &[&str]) -> Verdict {
    let t = Timeline::parse(toml, "test.toml").expect("timeline");
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    run_timeline(&t, "test.toml", profile, &set).expect("run")
}

#[test]
fn a_client_that_stops_answering_is_dropped_by_main_30_to_75s_later() {
    // The unanswered PING pair comes at most 15 s (+ a round trip) after
    // the client stops; the drop is 30-60 s after that pair.
    for stop in [1000u64, 1003, 1007, 1011, 1014, 2500] {
        let v = run(
            &format!(
                "horizon = \"2h\"\n[[event]]\nkind = \"client_stalls\"\nat = \"{stop}s\"\nuntil = \"{}s\"\n",
                stop + 200
            ),
            "spice-gtk",
            &[],
        );
        assert_eq!(v.outcome, Outcome::Disconnected, "{}", v.to_text());
        assert_eq!(v.cause.as_deref(), Some("server.connectivity_timeout"));
        assert_eq!(v.channel.as_deref(), Some("main"));
        let delay = v.at.unwrap() - stop as f64;
        assert!(
            delay > 30.0 && delay <= 75.1,
            "stop {stop}: dropped after {delay}"
        );
    }
}

#[test]
fn a_client_that_answers_is_never_dropped_and_idle_channels_stay() {
    let v = run("horizon = \"24h\"\n", "spice-gtk", &[]);
    assert_eq!(v.outcome, Outcome::Survived, "{}", v.to_text());
    assert_eq!(v.sessions, 1);
    for c in &v.channels {
        assert_eq!(c.generations, 1, "{}", c.channel);
        assert_eq!(c.last_closed_at, None, "{}", c.channel);
        // Idle non-main channels hear from the server every 300 s only.
        let expect = if c.channel == "main" || c.channel == "display" {
            15.1
        } else {
            300.1
        };
        assert!(
            c.longest_silence <= expect,
            "{}: {}",
            c.channel,
            c.longest_silence
        );
    }
}

#[test]
fn the_seed_belief_variant_drops_idle_channels_the_source_keeps() {
    let v = run(
        "horizon = \"1h\"\n[server]\nbehaviour = \"seed-002-belief\"\n",
        "spice-gtk",
        &[],
    );
    assert_eq!(v.outcome, Outcome::Disconnected);
    assert_eq!(v.cause.as_deref(), Some("server.idle_timeout_seed_belief"));
    // 30 s after the 100 ms ping pair was answered.
    assert!((v.at.unwrap() - 30.2).abs() < 0.05, "{:?}", v.at);
    assert_eq!(v.environment["server"], "spice-server@seed-002-belief");
}

#[test]
fn unacked_data_into_a_half_open_connection_dies_at_the_retransmission_limit() {
    // Keepalive off so only retransmission can notice; the user types every
    // second on inputs into a peer that is gone from T+100 s.
    let v = run(
        r#"horizon = "2h"
channels = ["main", "inputs"]
[[event]]
kind = "user_active"
from = "1s"
to = "2h"
every = "1s"
[[event]]
kind = "half_open"
at = "100.5s"
"#,
        "spice-gtk",
        &["client_tcp_keepalive_idle=0s"],
    );
    assert_eq!(
        v.cause.as_deref(),
        Some("tcp.retransmission_timeout"),
        "{}",
        v.to_text()
    );
    assert_eq!(v.channel.as_deref(), Some("inputs"));
    // First unacked keystroke at 101 s; RTO 0.2 s doubling to 120 s,
    // 15 retransmissions: 924.6 s (LX tcp_retries2).
    assert!((v.at.unwrap() - (101.0 + 924.6)).abs() < 1e-6, "{:?}", v.at);
}

#[test]
fn keepalive_detects_a_vanished_idle_peer_after_idle_plus_interval_times_count() {
    let v = run(
        "horizon = \"1h\"\nchannels = [\"main\"]\n[[event]]\nkind = \"half_open\"\nat = \"1000s\"\n",
        "spice-gtk",
        &[],
    );
    assert_eq!(
        v.cause.as_deref(),
        Some("tcp.keepalive_timeout"),
        "{}",
        v.to_text()
    );
    // Last segment received at most 15 s before (main is pinged every
    // 15 s); dead 30 + 15 x 3 = 75 s after it.
    let delay = v.at.unwrap() - 1000.0;
    assert!(delay > 59.0 && delay <= 75.0, "{delay}");
}

#[test]
fn load_balancer_idle_timer_is_reset_by_data_only() {
    // Client keepalive probes every 30 s on idle channels do not count:
    // the first channel idle for 60 s of data is reset at 60 s.
    let v = run(
        "horizon = \"1h\"\n[lb]\nidle_timeout = \"60s\"\non_expiry = \"rst\"\n",
        "spice-gtk",
        &[],
    );
    assert_eq!(v.cause.as_deref(), Some("tcp.reset"), "{}", v.to_text());
    // Idle channels' last data was the answered 100 ms ping pair (+ link).
    assert!((v.at.unwrap() - 60.2).abs() < 0.1, "{:?}", v.at);
    // Raising the LB timeout above the 300 s ping cadence keeps it alive.
    let v = run(
        "horizon = \"1h\"\n[lb]\nidle_timeout = \"60s\"\non_expiry = \"rst\"\n",
        "spice-gtk",
        &["lb_idle_timeout=301s"],
    );
    assert_eq!(v.outcome, Outcome::Survived, "{}", v.to_text());
}

#[test]
fn silent_load_balancer_expiry_leaves_a_half_open_connection() {
    let v = run(
        "horizon = \"1h\"\nchannels = [\"main\", \"inputs\"]\n[lb]\nidle_timeout = \"60s\"\non_expiry = \"silent\"\n",
        "spice-gtk",
        &[],
    );
    // Inputs' flow is forgotten at 60.2 s; the client's keepalive notices
    // 30 + 15 x 3 s after the last answered probe.
    assert_eq!(
        v.cause.as_deref(),
        Some("tcp.keepalive_timeout"),
        "{}",
        v.to_text()
    );
    assert_eq!(v.channel.as_deref(), Some("inputs"));
    assert!(
        v.at.unwrap() > 60.2 && v.at.unwrap() <= 60.2 + 75.0,
        "{:?}",
        v.at
    );
}

#[test]
fn reconnect_with_backoff_recovers_a_server_restart() {
    let timeline = "horizon = \"1h\"\n[[event]]\nkind = \"server_killed\"\nat = \"1800s\"\n[[event]]\nkind = \"server_restarted\"\nat = \"1803s\"\n";
    let v = run(timeline, "spice-ryll@phase02", &[]);
    assert_eq!(v.outcome, Outcome::Survived, "{}", v.to_text());
    assert_eq!(v.sessions, 2);
    // 1 s: refused (server down); 4 s later: linked.
    let r: Vec<(&str, &str)> = v
        .reconnects
        .iter()
        .map(|r| (r.delay.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(
        r,
        vec![("1s", "failed: connection refused"), ("4s", "session up")]
    );
    assert_eq!(
        v.reconnects[0].credential.as_deref(),
        Some("vv-ticket, reused from generation 1")
    );
    // Without auto-reconnect the same timeline ends the session.
    let v = run(timeline, "spice-ryll@pre-phase02", &[]);
    assert_eq!(v.outcome, Outcome::Disconnected);
    assert_eq!(v.cause.as_deref(), Some("server.killed"));
    assert_eq!(v.at, Some(1800.0));
}

#[test]
fn a_single_use_ticket_forbids_retry_and_retrying_anyway_is_a_dead_session() {
    let timeline = "horizon = \"1h\"\n[server]\nsingle_use_ticket = true\n[[event]]\nkind = \"server_restarted\"\nat = \"600s\"\n";
    let v = run(timeline, "spice-ryll@phase02", &[]);
    assert_eq!(v.outcome, Outcome::Disconnected);
    assert!(v.reconnects.is_empty());
    assert!(v.violations.is_empty());
    let v = run(
        timeline,
        "spice-ryll@phase02",
        &["honour_ticket_limits=false"],
    );
    assert_eq!(v.outcome, Outcome::DeadSession, "{}", v.to_text());
    assert_eq!(v.reconnects.len(), 3);
    assert_eq!(v.violations[0].code, "client.retry_with_consumed_ticket");
    assert_eq!(v.violations[0].count, 3);
}

#[test]
fn a_client_ping_is_an_unknown_message_and_takes_the_session() {
    let v = run(
        "horizon = \"10m\"\n",
        "spice-ryll@proactive-ping",
        &["auto_reconnect=false"],
    );
    assert_eq!(v.outcome, Outcome::Disconnected, "{}", v.to_text());
    assert_eq!(v.cause.as_deref(), Some("server.unknown_client_message"));
    assert_eq!(v.channel.as_deref(), Some("main"));
    assert!(
        v.violations
            .iter()
            .any(|x| x.code == "client.unknown_message")
    );
}

#[test]
fn the_mirror_timeout_fires_when_the_server_stops_pinging_main() {
    let t = "horizon = \"1h\"\n[[event]]\nkind = \"server_stops_pinging\"\nat = \"600s\"\nchannel = \"main\"\n";
    let v = run(t, "spice-ryll@pre-phase02", &[]);
    assert_eq!(v.cause.as_deref(), Some("client.liveness_timeout"));
    // Last main PING at most 15 s before 600 s; the mirror is 30 s.
    assert!(
        v.at.unwrap() > 615.0 && v.at.unwrap() <= 630.1,
        "{:?}",
        v.at
    );
    // spice-gtk has no such timer and the server never drops main while
    // no round is outstanding.
    assert_eq!(run(t, "spice-gtk", &[]).outcome, Outcome::Survived);
    // An override moves it.
    let v = run(
        t,
        "spice-ryll@pre-phase02",
        &["client_liveness_timeout=45s"],
    );
    assert!(v.at.unwrap() > 630.0, "{:?}", v.at);
    assert_eq!(v.constants["client_liveness_timeout"], "45s");
}

#[test]
fn bad_profile_or_constant_is_an_error_not_a_verdict() {
    let t = Timeline::parse("horizon = \"1h\"\n", "t").unwrap();
    assert!(
        run_timeline(&t, "t", "spice-ryll@nope", &[])
            .unwrap_err()
            .contains("no variant")
    );
    assert!(
        run_timeline(&t, "t", "nope", &[])
            .unwrap_err()
            .contains("unknown profile")
    );
    let e = run_timeline(&t, "t", "spice-ryll@phase02", &["ping_intervall=1s".into()]).unwrap_err();
    assert!(e.contains("unknown constant"), "{e}");
}

#[test]
fn extreme_constants_give_an_error_or_a_verdict_never_a_panic() {
    let t = Timeline::parse(
        "horizon = \"1h\"\n[[event]]\nkind = \"blackhole\"\nfrom = \"10m\"\nto = \"20m\"\n",
        "t",
    )
    .unwrap();
    for name in [
        "ping_interval",
        "connectivity_timeout",
        "latency",
        "tcp_rto_max",
        "client_tcp_keepalive_idle",
        "lb_idle_timeout",
        "reconnect_cluster_window",
    ] {
        // The largest duration there is: timers saturate instead of wrapping.
        let v = run_timeline(
            &t,
            "t",
            "spice-ryll@phase02",
            &[format!("{name}=213503982d")],
        )
        .unwrap();
        assert!(
            v.violations.iter().all(|x| !x.code.starts_with("model.")),
            "{name}"
        );
    }
    let e = run_timeline(
        &t,
        "t",
        "spice-ryll@phase02",
        &["connectivity_timeout=0s".into()],
    )
    .unwrap_err();
    assert_eq!(e, "connectivity_timeout must be positive");
}

/// A refused login (`auth_refused`): the server runs on and answers every
/// login from then with a refusal (PERMISSION_DENIED for SPICE,
/// protocol-facts §1.7; SecurityResult failed for RFB, §3).
const REFUSED_AT_ONCE: &str =
    "horizon = \"10m\"\n[[event]]\nkind = \"auth_refused\"\nat = \"0s\"\n";

#[test]
fn a_login_refused_from_the_start_never_brings_a_session_up() {
    let v = run(REFUSED_AT_ONCE, "spice-gtk", &[]);
    assert_eq!(v.outcome, Outcome::Refused, "{}", v.to_text());
    assert_eq!(v.sessions, 0);
    assert_eq!(v.cause.as_deref(), Some("auth.refused"));
    // Refused at the link reply: two round trips after the dial.
    assert!(v.at.unwrap() < 1.0, "{}", v.to_text());
    for profile in ["vncviewer", "novnc@reconnect", "websocket@reconnect"] {
        let v = run(REFUSED_AT_ONCE, profile, &[]);
        assert_eq!(v.outcome, Outcome::Refused, "{profile}: {}", v.to_text());
        assert_eq!(v.sessions, 0, "{profile}");
        assert_eq!(v.cause.as_deref(), Some("auth.refused"), "{profile}");
        assert!(v.reconnects.is_empty(), "{profile}: no retry of a refusal");
    }
}

#[test]
fn a_login_refused_later_refuses_only_the_reconnect() {
    // The session comes up; the server is restarted with another password
    // while it runs, then drops the client. The drop ends the session, and
    // the client's retry is refused: a dead session, not a refused one.
    let t = "horizon = \"10m\"\n\
        [[event]]\nkind = \"auth_refused\"\nat = \"20s\"\n\
        [[event]]\nkind = \"server_killed\"\nat = \"30s\"\n\
        [[event]]\nkind = \"server_restarted\"\nat = \"31s\"\n";
    let v = run(t, "spice-ryll@phase02", &[]);
    assert_eq!(v.sessions, 1, "{}", v.to_text());
    assert_eq!(v.outcome, Outcome::DeadSession, "{}", v.to_text());
    assert_eq!(v.cause.as_deref(), Some("server.killed"));
    assert!(
        v.reconnects
            .iter()
            .any(|r| r.result.contains("PERMISSION_DENIED")),
        "{}",
        v.to_text()
    );
    let v = run(t, "novnc@reconnect", &[]);
    assert_eq!(v.sessions, 1, "{}", v.to_text());
    assert_eq!(v.outcome, Outcome::DeadSession, "{}", v.to_text());
    assert_eq!(v.cause.as_deref(), Some("server.killed"));
    assert!(
        v.reconnects[0].result.starts_with("refused"),
        "{}",
        v.to_text()
    );
}

#[test]
fn haproxy_idle_cut_sends_the_client_a_fin_and_the_server_a_reset() {
    // HAProxy 2.6 at its idle timeout (lab spice-haproxy-idle: main cut,
    // FIN to the viewer, RST to QEMU): spice-gtk sees main end with a FIN.
    let lb = "horizon = \"60s\"\n[lb]\nidle_timeout = \"10s\"\non_expiry = \"fin_rst\"\n";
    let v = run(lb, "spice-gtk", &[]);
    assert_eq!(v.outcome, Outcome::Disconnected);
    assert_eq!(v.cause.as_deref(), Some("tcp.fin_from_server"));
    assert_eq!(v.channel.as_deref(), Some("main"));
    assert_eq!(v.environment["lb"], "idle 10s then fin_rst");
    assert!(
        v.chain
            .iter()
            .any(|e| e.actor == "lb" && e.what.contains("FIN to the client, RST to the server"))
    );
    // A reset of both ends is what the client sees with `rst`.
    let v = run(&lb.replace("fin_rst", "rst"), "spice-gtk", &[]);
    assert_eq!(v.cause.as_deref(), Some("tcp.reset"));
}

/// The display streams 20 kB every 100 ms until 25 min; `stall` is a
/// client_stalls event, if any.
fn display_stream(stall: &str) -> Verdict {
    display_stream_until("30m", stall)
}

fn display_stream_until(horizon: &str, stall: &str) -> Verdict {
    run(
        &format!(
            r#"horizon = "{horizon}"
[[event]]
kind = "server_data"
channel = "display"
from = "1m"
to = "25m"
every = "100ms"
bytes = "20kB"
{stall}"#
        ),
        "spice-gtk",
        &[],
    )
}

fn display_rx(v: &Verdict) -> u64 {
    v.channels
        .iter()
        .find(|c| c.channel == "display")
        .expect("display")
        .messages_received
}

#[test]
fn a_short_stall_held_by_flow_control_loses_nothing() {
    // Flow control, not loss: while the client reads nothing its kernel
    // takes a window's worth, the server's socket fills and its writes
    // wait; once the client reads, every update still arrives.
    let steady = display_stream("");
    let stalled =
        display_stream("[[event]]\nkind = \"client_stalls\"\nat = \"300s\"\nuntil = \"320s\"\n");
    assert_eq!(steady.outcome, Outcome::Survived, "{}", steady.to_text());
    assert_eq!(stalled.outcome, Outcome::Survived, "{}", stalled.to_text());
    assert_eq!(display_rx(&stalled), display_rx(&steady));
    assert_eq!(display_rx(&steady), 14_450);
}

#[test]
fn a_stalled_reader_keeps_only_a_window_and_a_send_buffer_in_flight() {
    // The client stops reading at 300 s and reads again at 1000 s. Its
    // kernel takes a window's worth (65,535 bytes: four 20 kB updates),
    // the server's socket holds one more (its writes then block), and
    // every later update waits in the server, which main's connectivity
    // timer tears down meanwhile. Reading again, the client finds the four
    // and main's FIN, and closes before the fifth comes. Unbounded, it
    // would read every update the ACK window let out, 40 of them.
    let v =
        display_stream("[[event]]\nkind = \"client_stalls\"\nat = \"300s\"\nuntil = \"1000s\"\n");
    assert_eq!(v.outcome, Outcome::Disconnected, "{}", v.to_text());
    assert_eq!(v.cause.as_deref(), Some("server.connectivity_timeout"));
    let before = display_rx(&display_stream_until("300s", ""));
    assert_eq!(display_rx(&v) - before, 4, "{}", v.to_text());
}

#[test]
fn writes_that_fill_the_send_buffer_block_and_main_drops_the_vanished_client() {
    // The client vanishes while main carries 2 kB a second. The data
    // waits unacknowledged; once a send buffer's worth (16 KiB) waits,
    // the server's writes block and nothing more is written, so main's
    // connectivity timer, state BLOCKED with no byte sent or received,
    // disconnects it (SS red-channel-client.cpp:638-731). Counting every
    // write as sent, it never fired and only TCP's 924.6 s give-up did.
    let v = run(
        r#"horizon = "30m"
[[event]]
kind = "server_data"
channel = "main"
from = "1m"
to = "30m"
every = "1s"
bytes = "2kB"
[[event]]
kind = "half_open"
at = "5m"
"#,
        "spice-gtk",
        &["client_tcp_keepalive_idle=0s"],
    );
    let text = v.to_text();
    let drop = text
        .lines()
        .find(|l| l.contains("main unresponsive for more than 30s"))
        .unwrap_or_else(|| panic!("main never dropped:\n{text}"));
    let at: f64 = drop
        .trim()
        .trim_start_matches("T+")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Blocked after nine 2 kB writes (309 s); the tick that sees BLOCKED
    // with nothing written since disconnects, within 60 s of that.
    assert!(at > 309.0 && at <= 369.1, "{at}\n{text}");
}

#[test]
fn a_relay_that_holds_is_a_stopped_peer_to_each_end_and_a_blackhole_is_not() {
    // Nothing crosses from 100 s to 400 s. Across a dead path spice-gtk's
    // keep-alive (30 s + 3 × 15 s) finds the idle inputs channel gone. A
    // relay that takes the bytes and holds them answers those probes, so
    // the client waits; the server hears no PONG, its connectivity timer
    // drops the client, and the client sees that close when the hold ends.
    let span = |kind: &str| {
        run(
            &format!(
                "horizon = \"30m\"\n[[event]]\nkind = \"{kind}\"\nfrom = \"100s\"\nto = \"400s\"\n"
            ),
            "spice-gtk",
            &[],
        )
    };
    let keepalive_gave_up = |v: &Verdict| {
        v.channels
            .iter()
            .any(|c| c.last_closed_by.as_deref() == Some("tcp.keepalive_timeout"))
    };
    let dead = span("blackhole");
    assert!(keepalive_gave_up(&dead), "{}", dead.to_text());
    let held = span("relay_holds");
    assert_eq!(held.outcome, Outcome::Disconnected, "{}", held.to_text());
    assert_eq!(held.cause.as_deref(), Some("server.connectivity_timeout"));
    assert_eq!(held.channel.as_deref(), Some("main"));
    let at = held.at.unwrap();
    assert!(at > 130.0 && at <= 175.1, "{at}");
    let main = held.channels.iter().find(|c| c.channel == "main").unwrap();
    assert_eq!(main.last_closed_by.as_deref(), Some("tcp.fin_from_server"));
    assert!(
        (main.last_closed_at.unwrap() - 400.0).abs() < 0.1,
        "{:?}",
        main.last_closed_at
    );
    assert!(!keepalive_gave_up(&held), "{}", held.to_text());
}
