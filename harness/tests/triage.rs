//! `tether triage` on real captures and on a bug-report zip of seed 002's
//! session-001b shape: the right cause, at the right time, with the
//! evidence; what-if re-runs of the extracted environment; golden text.

use std::path::{Path, PathBuf};
use tether::capture::bugreport::{FixtureEnd, Flavor, RingMessage, write_fixture};
use tether::decode::spice::wire::build;
use tether::timeline::Micros;
use tether::timeline::synthetic::ScriptEvent;
use tether::triage::{Triage, TriageOptions, render, svg, triage_path, triage_reader};

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn ms(n: u64) -> Micros {
    Micros(n * 1000)
}

/// Named by its path from the repository root, so goldens do not depend
/// on where the checkout lives.
fn run(rel: &str) -> Triage {
    let bytes = std::fs::read(corpus(rel)).unwrap();
    let zip = tether::capture::bugreport::looks_like_zip(&bytes);
    triage_reader(&bytes[..], rel, zip, &TriageOptions::default()).unwrap()
}

#[test]
fn triage_path_reads_zips_and_captures_alike() {
    for rel in [
        "corpora/bugreports/ryll-session-001b-inputs.zip",
        "corpora/recorded/spice-killed.pcap",
    ] {
        let by_path = triage_path(&corpus(rel), &TriageOptions::default()).unwrap();
        let by_reader = run(rel);
        assert_eq!(by_path.cause, by_reader.cause);
        assert_eq!(by_path.at, by_reader.at);
    }
}

/// Seed 002, session-001b (zip 3): ryll on an idle desktop. The server
/// pings main and display every 15 s and the other channels at start-up and
/// again at T+300; every ping is answered until main's reader wedges after
/// the PING at T+465 (the client-side deadlock the seed's resolution names).
/// Display keeps receiving until T+509.6, when the server's connectivity
/// timer drops the client; ryll notices on inputs at T+540. The zip holds
/// the inputs ring, as ryll writes it for the channel that errored.
fn session_001b() -> (Vec<RingMessage>, FixtureEnd) {
    let mut m = Vec::new();
    let mut push = |at: Micros, channel: &'static str, from_server: bool, bytes: Vec<u8>| {
        m.push(RingMessage {
            at,
            channel,
            from_server,
            bytes,
        })
    };
    let mut init = 0x0001_B00Bu32.to_le_bytes().to_vec();
    init.resize(32, 0);
    push(ms(500), "main", true, build::mini(103, &init));
    push(ms(502), "main", false, build::mini(104, &[]));
    push(
        ms(520),
        "display",
        true,
        build::mini(3, &build::set_ack_body(1, 20)),
    );
    push(
        ms(521),
        "display",
        false,
        build::mini(1, &1u32.to_le_bytes()),
    );
    let mut id = 1u32;
    let mut ping_pair = |push: &mut dyn FnMut(Micros, &'static str, bool, Vec<u8>),
                         channel: &'static str,
                         at_ms: u64,
                         answered: bool| {
        for dt in [0u64, 1] {
            let body = build::ping_body(id, at_ms * 1000, 0);
            push(ms(at_ms + dt), channel, true, build::mini(4, &body));
            if answered {
                push(ms(at_ms + dt + 2), channel, false, build::mini(3, &body));
            }
            id += 1;
        }
    };
    for k in 1..=31u64 {
        ping_pair(&mut push, "main", k * 15_000, k < 31);
    }
    for k in 0..=33u64 {
        ping_pair(&mut push, "display", 7_000 + k * 15_000, true);
    }
    for k in 0..50u64 {
        push(
            ms(1_000 + k * 10_000),
            "display",
            true,
            build::mini(304, &[k as u8; 300]),
        );
    }
    push(ms(509_600), "display", true, build::mini(304, &[7; 300]));
    for (channel, last) in [
        ("inputs", 300_300u64),
        ("cursor", 300_000),
        ("playback", 300_000),
        ("usbredir", 300_000),
    ] {
        ping_pair(&mut push, channel, 700, true);
        ping_pair(&mut push, channel, last, true);
    }
    m.sort_by_key(|r| r.at);
    (
        m,
        FixtureEnd {
            channel: "inputs",
            disconnect_kind: "Error",
            at: ms(540_000),
            client_port: None,
            error_message: Some(
                "inputs: read error: peer closed connection without sending TLS close_notify",
            ),
        },
    )
}

#[test]
fn committed_session_001b_fixture_is_what_the_generator_writes() {
    let (msgs, end) = session_001b();
    let bytes = write_fixture(&msgs, &end, Flavor::Current);
    let path = corpus("corpora/bugreports/ryll-session-001b-inputs.zip");
    if std::env::var_os("TETHER_REGEN").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "TETHER_REGEN=1 rewrites it"
    );
}

#[test]
fn session_001b_names_the_client_not_answering_main() {
    let tr = run("corpora/bugreports/ryll-session-001b-inputs.zip");
    assert_eq!(tr.cause.as_deref(), Some("server.connectivity_timeout"));
    assert_eq!(tr.channel.as_deref(), Some("main"));
    assert_eq!(tr.at, Some(540.0));
    let st = &tr.sessions[tr.primary.unwrap()];
    let d = &st.diagnosis;
    assert_eq!(d.origin.as_deref(), Some("client.stopped_answering_main"));
    // The zip's own record, labelled as such.
    let zip = tr.zip.as_ref().unwrap();
    let main = zip
        .per_channel
        .iter()
        .find(|f| f.channel == "main")
        .unwrap();
    assert_eq!((main.pings_recv, main.pongs_sent), (62, 60));
    assert_eq!(main.last_recv, Some(465.001));
    // The idle channels' silence is expected, and said so as an inference.
    let idle = d
        .inferences
        .iter()
        .find(|e| e.text.starts_with("silence on"))
        .expect("an inference about the idle channels");
    for ch in ["inputs", "cursor", "playback", "usbredir"] {
        assert!(idle.text.contains(ch), "{ch} in {}", idle.text);
    }
    assert!(!idle.text.contains("main ("));
    // Ranked: the stall first; the seed's idle-channel belief contradicted;
    // a network outage contradicted by display's traffic after T+465.
    assert_eq!(d.explanations[0].cause, "server.connectivity_timeout");
    assert!(d.explanations[0].against.is_empty());
    assert!(
        d.explanations[0]
            .supports
            .iter()
            .any(|s| s.contains("display until T+509.600"))
    );
    let outage = d
        .explanations
        .iter()
        .find(|e| e.cause == "network.outage")
        .unwrap();
    assert!(!outage.against.is_empty());
    let belief = d
        .explanations
        .iter()
        .find(|e| e.cause == "server.idle_timeout_seed_belief")
        .unwrap();
    assert!(belief.rank > 1 && belief.against.len() == 2);
    // Conformance: the recorded client broke the ping rule, cited from the zip.
    let v = &st.violations;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].code, v[0].channel.as_deref()),
        ("pong.missing", Some("main"))
    );
    assert!(v[0].evidence[0].contains("ping_recv_count 62, pong_send_count 60"));
    // The PING at T+465 is the first unanswered one.
    assert!(d.observations.iter().any(|e| {
        e.text
            .contains("PING at T+465.001 on main was never answered")
    }));
}

#[test]
fn session_001b_what_if_survives_without_the_stall_and_recovers_with_phase02() {
    let tr = run("corpora/bugreports/ryll-session-001b-inputs.zip");
    let st = &tr.sessions[tr.primary.unwrap()];
    assert_eq!(st.profile.as_deref(), Some("spice-ryll@pre-phase02"));
    let find = |run: &str| st.what_if.iter().find(|w| w.run == run).unwrap();
    let pre = find("spice-ryll@pre-phase02");
    assert_eq!(pre.outcome, "disconnected");
    assert_eq!(pre.cause.as_deref(), Some("server.connectivity_timeout"));
    let at = pre.at.unwrap();
    assert!((495.0..=526.0).contains(&at), "dropped at {at}");
    let without = find("spice-ryll@pre-phase02 without the client stall");
    assert_eq!(without.outcome, "survived");
    let phase02 = find("spice-ryll@phase02");
    assert_eq!(phase02.outcome, "survived", "{}", phase02.summary);
    assert!(phase02.sessions >= 2);
    let back = phase02.recovered_at.unwrap();
    assert!((540.0..=542.0).contains(&back), "recovered at {back}");
}

#[test]
fn spice_server_killed_mid_session() {
    let tr = run("corpora/recorded/spice-killed.pcap");
    assert_eq!(tr.outcome, Some("disconnected"));
    assert_eq!(tr.cause.as_deref(), Some("server.killed"));
    assert_eq!(tr.channel.as_deref(), Some("main"));
    let st = &tr.sessions[0];
    assert_eq!(st.session.generations.len(), 1);
    assert_eq!(st.session.generations[0].channels.len(), 4);
    // qemu died at one instant: every channel closed by the server.
    for c in st.session.channels() {
        assert_eq!(c.closes[0].by, "server", "{}", c.name);
        assert_eq!(c.closes[0].how, "fin");
    }
    let at = tr.at.unwrap();
    assert!((3.78..3.79).contains(&at), "{at}");
    // The model, given the same environment, agrees.
    let w = &st.what_if[0];
    assert_eq!(w.cause.as_deref(), Some("server.killed"));
}

#[test]
fn a_deliberate_close_ends_the_what_if_where_the_user_closed() {
    // A user's close is an event of the environment: the model closes the
    // session there instead of running on to the horizon, and the run of
    // the recorded client reproduces the recording's end.
    for rel in [
        "corpora/lab/spice-user-close.pcap",
        "corpora/lab/spicy-user-close.pcap",
    ] {
        let tr = run(rel);
        assert_eq!(tr.cause.as_deref(), Some("client.closed"), "{rel}");
        let end = tr.at.unwrap();
        let st = &tr.sessions[tr.primary.unwrap()];
        let env = st.environment.as_ref().unwrap();
        let closes: Vec<f64> = env
            .events
            .iter()
            .filter_map(|e| match e {
                ScriptEvent::UserClose { at } => Some(at.0.as_secs_f64()),
                _ => None,
            })
            .collect();
        assert_eq!(closes.len(), 1, "{rel}: {:?}", env.events);
        let recorded = st
            .what_if
            .iter()
            .find(|w| w.run == "spice-gtk@default")
            .unwrap();
        assert_eq!(recorded.outcome, "survived", "{rel}: {}", recorded.summary);
        assert_eq!(recorded.cause.as_deref(), Some("client.closed"), "{rel}");
        let at = recorded.at.unwrap();
        assert!(
            (at - end).abs() < 0.002,
            "{rel}: the model closed at {at}, the capture at {end}"
        );
    }
    // A close the evidence does not call deliberate is no user's.
    let tr = run("corpora/recorded/spice-killed.pcap");
    let st = &tr.sessions[tr.primary.unwrap()];
    assert!(
        !st.environment
            .as_ref()
            .unwrap()
            .events
            .iter()
            .any(|e| matches!(e, ScriptEvent::UserClose { .. }))
    );
}

#[test]
fn the_recorded_clients_run_is_checked_against_the_recording_first() {
    // spice-server killed: the model, given the capture's environment and
    // spice-gtk's profile, ends the session at the same instant, the same way.
    let tr = run("corpora/recorded/spice-killed.pcap");
    let r = tr.sessions[tr.primary.unwrap()]
        .reproduction
        .as_ref()
        .unwrap();
    assert!(r.reproduced, "{r:?}");
    assert_eq!(r.run, "spice-gtk@default");
    // A blackhole ended by the server's connectivity timer at 60 s: the
    // server retransmitted and the client acknowledged nothing, so the
    // environment is a dead path, not a frozen client, and the model's
    // spice-gtk, its server closing across the dead path at 60 s, ends
    // where the recording did though it learns of it only by keep-alive.
    let tr = run("corpora/lab/spice-blackhole.pcap");
    let st = &tr.sessions[tr.primary.unwrap()];
    // Its words say so too: the path died, not the client's reading.
    let top = &st.diagnosis.explanations[0];
    assert_eq!(top.origin.as_deref(), Some("network.outage"));
    assert!(
        top.summary
            .starts_with("the path to the client stopped delivering"),
        "{}",
        top.summary
    );
    let events = &st.environment.as_ref().unwrap().events;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ScriptEvent::Blackhole { .. }))
            && !events
                .iter()
                .any(|e| matches!(e, ScriptEvent::ClientStalls { .. })),
        "{events:?}"
    );
    assert!(
        st.reproduction.as_ref().unwrap().reproduced,
        "{:?}",
        st.reproduction
    );
    // Run with a 120 s timer instead, the model cannot end where the recording
    // did (spice-gtk's own keep-alive gives up on the dead path first), so
    // the what-ifs are marked unreliable and the text says why.
    let bytes = std::fs::read(corpus("corpora/lab/spice-blackhole.pcap")).unwrap();
    let slow_timer = TriageOptions {
        overrides: vec!["connectivity_timeout=120s".into()],
        ..TriageOptions::default()
    };
    let tr = triage_reader(&bytes[..], "spice-blackhole.pcap", false, &slow_timer).unwrap();
    let st = &tr.sessions[tr.primary.unwrap()];
    let r = st.reproduction.as_ref().unwrap();
    assert!(!r.reproduced);
    assert!(
        r.differences.iter().any(
            |d| d == "cause: recorded server.connectivity_timeout, model tcp.keepalive_timeout"
        ),
        "{r:?}"
    );
    let text = render::text(&tr);
    assert!(text.contains("UNRELIABLE: the recorded client's run (spice-gtk@default)"));
    // HAProxy's 10 s idle cut, decided by both legs closing at once: the
    // environment carries a 10 s load balancer that tells both ends, and
    // the model's spice-gtk, reset by it, ends where the recording did.
    let tr = run("corpora/lab/spice-haproxy-idle.pcap");
    let st = &tr.sessions[tr.primary.unwrap()];
    let lb = st.environment.as_ref().unwrap().lb.as_ref().unwrap();
    assert_eq!(lb.idle_timeout.0.as_secs_f64(), 10.0);
    assert!(
        st.reproduction.as_ref().unwrap().reproduced,
        "{:?}",
        st.reproduction
    );
}

#[test]
fn a_servers_own_close_in_a_bug_report_is_part_of_the_environment() {
    // ryll's record says the server closed main at T+47.5 and nothing the
    // client did made it; its connections are all still open in the zip.
    // The environment carries the server's close, so the recorded client's
    // run ends there too instead of surviving to the horizon, and the
    // reconnecting variant recovers one reconnect later.
    let tr = run("corpora/bugreports/ryll-disconnect-main.zip");
    let st = &tr.sessions[tr.primary.unwrap()];
    let events = &st.environment.as_ref().unwrap().events;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ScriptEvent::ServerCloses { at } if at.0 == Micros(47_500_000))),
        "{events:?}"
    );
    let r = st.reproduction.as_ref().unwrap();
    assert!(r.reproduced, "{r:?}");
    let own = st.what_if.iter().find(|w| w.run == r.run).unwrap();
    assert_eq!(own.cause.as_deref(), Some("server.closed"));
    let fixed = st
        .what_if
        .iter()
        .find(|w| w.run == "spice-ryll@phase02")
        .unwrap();
    assert_eq!(
        (fixed.outcome, fixed.sessions),
        ("survived", 2),
        "{fixed:?}"
    );
}

#[test]
fn a_refused_login_is_part_of_the_environment_and_reproduced() {
    // Sessions that never came up, each refused at login by a real server:
    // spice-server's PERMISSION_DENIED to remote-viewer's wrong password
    // (lab), a VNC server's SecurityResult failed (Zeek's scanner capture),
    // websockify's HTTP 401 to a stale token. The refusal names the
    // protocol, the environment carries it with its evidence, and the
    // recorded client's run is refused too: nothing comes up in either.
    for (rel, kind, profile) in [
        (
            "corpora/lab/spice-wrong-ticket.pcap",
            "spice",
            "spice-gtk@default",
        ),
        (
            "corpora/public/zeek-rfb/vnc-scanner.pcap",
            "rfb",
            "vncviewer@as-seen",
        ),
        (
            "corpora/recorded/ws-refused.pcap",
            "ws",
            "websocket@as-seen",
        ),
    ] {
        let tr = run(rel);
        let st = &tr.sessions[tr.primary.unwrap()];
        assert!(st.session.generations.is_empty(), "{rel}");
        assert_eq!(st.session.kind, kind, "{rel}");
        let events = &st.environment.as_ref().unwrap().events;
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ScriptEvent::AuthRefused { .. })),
            "{rel}: {events:?}"
        );
        assert!(
            st.environment_evidence
                .iter()
                .any(|c| c.fact == "auth_refused" && c.because.contains("refused at login")),
            "{rel}"
        );
        let r = st.reproduction.as_ref().unwrap();
        assert_eq!(r.run, profile, "{rel}");
        assert!(r.reproduced, "{rel}: {r:?}");
        let own = st.what_if.iter().find(|w| w.run == profile).unwrap();
        assert_eq!((own.outcome, own.sessions), ("refused", 0), "{rel}");
    }
    // A SYN nobody answered is no login: no protocol, no profile to run.
    let tr = run("corpora/hostile/oversize-record-header.pcap");
    let st = &tr.sessions[tr.primary.unwrap()];
    assert_eq!(st.session.kind, "tcp");
    assert!(st.reproduction.is_none() && st.what_if.is_empty());
}

#[test]
fn a_frozen_client_is_dated_by_its_last_message_and_the_servers_heartbeat_by_its_phase() {
    // ws2-several-clients-one-frozen, client 2 (connected at T+0.526):
    // SIGSTOP at T+7.833 after its message at T+6.537; the ws server's one
    // heartbeat timer for every client pinged it at T+4.382 (answered) and
    // T+9.382 (not), and terminated it at T+14.383.
    let t = run("corpora/lab/ws2-several-clients-one-frozen.pcap");
    let st = t
        .sessions
        .iter()
        .find(|st| st.session.client.ends_with(":35616"))
        .unwrap();
    let stall = st
        .environment
        .as_ref()
        .unwrap()
        .events
        .iter()
        .find_map(|e| match e {
            ScriptEvent::ClientStalls { at, .. } => Some(at.0),
            _ => None,
        })
        .unwrap();
    // Its last message, 6.011 s after the connect (+1 ms), not its last
    // pong at 3.857 s.
    assert_eq!(stall, ms(6_011));
    assert!(
        st.constants_from_capture
            .contains(&"server_ping_first=3855ms".to_string()),
        "{:?}",
        st.constants_from_capture
    );
    let r = st.reproduction.as_ref().unwrap();
    assert!(r.reproduced, "{r:?}");
    // A stopped client dials nothing: its reconnect loop does not bring it back.
    let reconnect = st
        .what_if
        .iter()
        .find(|w| w.run == "websocket@reconnect")
        .unwrap();
    assert_eq!(reconnect.outcome, "disconnected");
}

#[test]
fn a_reconnect_with_a_fresh_token_and_the_users_close_are_part_of_the_environment() {
    // The server drops the stream at T+3.757 and lives; the client fetches
    // a fresh token, reconnects at T+4.760 and later closes with 1000 "bye".
    let t = run("corpora/recorded/ws-fresh-token-reconnect.pcap");
    let st = &t.sessions[0];
    assert!(
        st.constants_from_capture
            .contains(&"reacquire_before_dial=true".to_string()),
        "{:?}",
        st.constants_from_capture
    );
    let events = &st.environment.as_ref().unwrap().events;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ScriptEvent::ServerCloses { at } if at.0 == ms(3_757)))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ScriptEvent::UserClose { at } if at.0 == ms(5_805)))
    );
    let r = st.reproduction.as_ref().unwrap();
    assert!(r.reproduced, "{r:?}");
    // The stale-token recording reuses its token: nothing to pin, and the
    // fix (re-acquire) is what saves it.
    let t = run("corpora/recorded/ws-stale-token-401.pcap");
    let st = &t.sessions[0];
    assert!(
        !st.constants_from_capture
            .iter()
            .any(|c| c.starts_with("reacquire"))
    );
    assert!(st.reproduction.as_ref().unwrap().reproduced);
    let fix = st
        .what_if
        .iter()
        .find(|w| w.run == "novnc-displaytab@2216")
        .unwrap();
    assert_eq!((fix.outcome, fix.sessions), ("survived", 2));
}

#[test]
fn a_haproxy_cut_is_extracted_as_fin_to_the_client_and_reset_to_the_server() {
    // ws-haproxy-idle: 10.0 s after the 101, haproxy FINs the client (and
    // RSTs the server, which this capture does not show).
    let t = run("corpora/lab/ws-haproxy-idle.pcap");
    let lb = t.sessions[0]
        .environment
        .as_ref()
        .unwrap()
        .lb
        .as_ref()
        .unwrap();
    assert_eq!(lb.on_expiry, tether::timeline::synthetic::LbExpiry::FinRst);
    assert!(t.sessions[0].reproduction.as_ref().unwrap().reproduced);
}

#[test]
fn svg_draws_every_channel_and_the_end() {
    let tr = run("corpora/recorded/spice-killed.pcap");
    let svg = svg::render(&tr.sessions[0], &[], "spice-killed.pcap", &[]);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for ch in ["main", "display", "inputs", "cursor"] {
        assert!(svg.contains(&format!(">{ch} <tspan")), "{ch}");
    }
    assert!(svg.contains("server.killed"));
    assert!(svg.contains("seconds since the capture's first frame (20"));
    // Pings and pongs are drawn with their times.
    assert!(svg.matches("s2c ping T+").count() >= 11);
    assert!(svg.matches("c2s pong T+").count() >= 11);
}

#[test]
fn stale_token_reconnect_is_diagnosed_with_the_violation_cited() {
    let tr = run("corpora/recorded/ws-stale-token-401.pcap");
    assert_eq!(tr.outcome, Some("dead_session"));
    assert_eq!(tr.cause.as_deref(), Some("http.401_stale_token"));
    let st = &tr.sessions[0];
    // The token fetch is a side request, not a generation.
    assert_eq!(st.session.generations.len(), 1);
    assert_eq!(st.session.requests.len(), 1);
    let a = &st.session.attempts[0];
    assert_eq!(a.result, "http_401");
    let u = a.upgrade.as_ref().unwrap();
    let first = st.session.generations[0].channels[0]
        .upgrade
        .as_ref()
        .unwrap();
    assert_eq!(u.credential, first.credential);
    // The token says when it expires: 3.626 s after the first packet, a
    // second before the reconnect at 4.757.
    let exp = u.credential_expires_at.unwrap();
    assert!((3.62..3.63).contains(&exp), "{exp}");
    let v = st
        .violations
        .iter()
        .find(|v| v.code == "reconnect.stale_credential")
        .expect("the stale credential is a violation");
    assert_eq!(v.evidence.len(), 2);
    assert!(v.evidence[1].contains("HTTP 401"));
    assert!(v.message.contains("expired since T+3.626"));
    // The what-if: re-acquiring before dialling (#2216) saves it; the first
    // cut does not.
    let find = |run: &str| st.what_if.iter().find(|w| w.run == run).unwrap();
    assert_eq!(
        find("novnc-displaytab@2216-first-cut").outcome,
        "dead_session"
    );
    assert_eq!(find("novnc-displaytab@2216").outcome, "survived");
}

#[test]
fn fresh_token_reconnect_recovers_without_violation() {
    let tr = run("corpora/recorded/ws-fresh-token-reconnect.pcap");
    assert_eq!(tr.outcome, Some("recovered"));
    // The server dropped the session and answered the token request 1 s
    // later with no refusal in between: it lived, so it closed on purpose.
    assert_eq!(tr.cause.as_deref(), Some("server.closed"));
    assert_eq!(
        tr.recovered_at,
        Some(4.759714),
        "the second upgrade's connection opened"
    );
    let outage = tr.outage.unwrap();
    assert!((1.0..1.01).contains(&outage), "{outage}");
    let st = &tr.sessions[0];
    assert_eq!(st.session.generations.len(), 2);
    assert_eq!(
        st.session.requests.len(),
        2,
        "a token fetch before each upgrade"
    );
    assert!(st.violations.is_empty(), "{:?}", st.violations);
    let creds: Vec<_> = st
        .session
        .channels()
        .map(|c| c.upgrade.as_ref().unwrap().credential.clone().unwrap())
        .collect();
    assert_ne!(creds[0], creds[1]);
}

#[test]
fn websockify_killed_names_the_relay_and_the_refused_retry() {
    let tr = run("corpora/recorded/novnc-websockify-killed.pcap");
    assert_eq!(tr.outcome, Some("dead_session"));
    // websockify itself was killed: both its legs closed at once, the retry
    // to it refused with RST.
    assert_eq!(tr.cause.as_deref(), Some("relay.killed"));
    let at = tr.at.unwrap();
    assert!((3.42..3.44).contains(&at), "{at}");
    let front = &tr.sessions[0];
    assert_eq!(front.session.kind, "ws/rfb");
    assert_eq!(front.session.attempts[0].result, "rst_to_syn");
    // The RFB leg behind websockify is linked and its close is evidence.
    let leg = &tr.sessions[1];
    assert_eq!(leg.session.relay_of, Some(0));
    let best = &front.diagnosis.explanations[0];
    assert!(best.supports.iter().any(|s| s.contains("relay.both_legs")));
    assert!(best.supports.iter().any(|s| s.contains("nothing listened")));
}

#[test]
fn extracted_environment_round_trips_through_toml() {
    let tr = run("corpora/bugreports/ryll-session-001b-inputs.zip");
    let tl = tr.sessions[0].environment.as_ref().unwrap();
    let text = toml::to_string(tl).unwrap();
    let back = tether::timeline::synthetic::Timeline::parse(&text, "extracted.toml").unwrap();
    assert_eq!(toml::to_string(&back).unwrap(), text);
    assert!(text.contains("kind = \"client_stalls\""));
    // The stall from just after the client's last send on main (its own
    // record: 450.003), before the PING it left unanswered at 465.001.
    assert!(text.contains("at = \"450.004s\""));
}

fn golden(name: &str, tr: &Triage) {
    insta::with_settings!({snapshot_path => "../../golden", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, render::text(tr));
    });
}

#[test]
fn golden_triage_text() {
    golden(
        "triage__session_001b",
        &run("corpora/bugreports/ryll-session-001b-inputs.zip"),
    );
    golden(
        "triage__spice_killed",
        &run("corpora/recorded/spice-killed.pcap"),
    );
    golden(
        "triage__ws_stale_token_401",
        &run("corpora/recorded/ws-stale-token-401.pcap"),
    );
    golden(
        "triage__novnc_websockify_killed",
        &run("corpora/recorded/novnc-websockify-killed.pcap"),
    );
}

#[test]
fn live_proxy_recordings_name_the_injected_faults() {
    // `tether proxy` with a 60 s idle drop in front of websockify: both
    // ends reset at once after 60 s without data.
    let tr = run("corpora/recorded/live-novnc-idle.pcap");
    assert_eq!(tr.cause.as_deref(), Some("lb.idle_timeout"));
    let st = &tr.sessions[tr.primary.unwrap()];
    let env = st.environment.as_ref().unwrap();
    assert_eq!(env.lb.as_ref().unwrap().idle_timeout.0, Micros(60_000_000));
    assert!(
        env.events.is_empty(),
        "the reset is the LB's, not a server death"
    );
    // A blackhole from T+60 in front of QEMU: main hears nothing for far
    // longer than its 15 s pings; the server's close arrives with the end
    // of the blackhole. The proxy held the sockets open and read on, so its
    // kernel answered spice-gtk's keep-alive probes: main outlived the
    // 75 s keep-alive budget and closed with a FIN. That is a hold, not a
    // dead path, and the model, with it, reproduces the server's
    // connectivity timer and the close seen at the hold's end.
    let tr = run("corpora/recorded/live-spice-blackhole.pcap");
    assert_eq!(tr.cause.as_deref(), Some("server.connectivity_timeout"));
    assert_eq!(
        tr.sessions[tr.primary.unwrap()].diagnosis.origin.as_deref(),
        Some("network.outage")
    );
    let st = &tr.sessions[tr.primary.unwrap()];
    let killed = st
        .diagnosis
        .explanations
        .iter()
        .find(|e| e.cause == "server.killed")
        .unwrap();
    assert!(killed.rank > 1 && !killed.against.is_empty());
    assert_held_and_reproduced(st);
}

/// The environment extracted is one relay hold, and the recorded client's
/// run in it ends as the recording did.
fn assert_held_and_reproduced(st: &tether::triage::SessionTriage) {
    let env = st.environment.as_ref().unwrap();
    assert!(
        matches!(env.events[..], [ScriptEvent::RelayHolds { .. }]),
        "{:?}",
        env.events
    );
    let r = st.reproduction.as_ref().expect("a reproduction check");
    assert!(r.reproduced, "{:?}", r.differences);
}

/// haproxy SIGSTOPped between remote-viewer and QEMU: both kernels ACK, so
/// the server's PINGs sit in haproxy's buffer and its connectivity timer
/// drops the client (upstream leg, T+60.016); the client leg sees nothing
/// until haproxy resumes and passes the close on with everything it held
/// (T+63.071). Both legs name the held relay (origin network.outage), not a
/// frozen client, and the model, given the hold, reproduces the ending.
#[test]
fn a_frozen_relay_is_a_hold_on_both_legs() {
    let tr = run("corpora/lab/spice-haproxy-frozen.pcap");
    let front = &tr.sessions[tr.primary.unwrap()];
    assert_eq!(
        (
            front.diagnosis.cause.as_deref(),
            front.diagnosis.origin.as_deref(),
            front.diagnosis.at.map(|a| (a * 1000.0).round() / 1000.0)
        ),
        (
            Some("server.connectivity_timeout"),
            Some("network.outage"),
            Some(63.071)
        )
    );
    let top = &front.diagnosis.explanations[0];
    assert!(
        top.supports.iter().any(|x| x.starts_with("relay.held:")),
        "{:?}",
        top.supports
    );
    let env = front.environment.as_ref().unwrap();
    let [ScriptEvent::RelayHolds { from, to }] = &env.events[..] else {
        panic!("{:?}", env.events)
    };
    // From the last bytes haproxy forwarded (display, T+11.663) to the
    // close it passed on.
    assert_eq!(
        (from.0.0 / 1000, to.0.0 / 1000),
        (11_663, 63_071),
        "{from:?}..{to:?}"
    );
    let r = front.reproduction.as_ref().expect("a reproduction check");
    assert!(r.reproduced, "{:?}", r.differences);
    let legs = tr.legs_of(front);
    let [leg] = &legs[..] else {
        panic!("one upstream leg, found {}", legs.len())
    };
    assert_eq!(
        (
            leg.diagnosis.cause.as_deref(),
            leg.diagnosis.origin.as_deref()
        ),
        (Some("server.connectivity_timeout"), Some("network.outage"))
    );

    // The viewer's leg alone, as a user there captures it: spice-gtk's
    // keep-alive probes answered inside the silence (a dead path answers
    // none) and the server's close at its end tell the same story.
    let tr = run("corpora/lab/spice-haproxy-frozen-client-leg.pcap");
    let st = &tr.sessions[tr.primary.unwrap()];
    assert_eq!(
        (
            st.diagnosis.cause.as_deref(),
            st.diagnosis.origin.as_deref()
        ),
        (Some("server.connectivity_timeout"), Some("network.outage"))
    );
    let top = &st.diagnosis.explanations[0];
    assert!(
        top.supports
            .iter()
            .any(|x| x.starts_with("tcp.keepalive_answered:")),
        "{:?}",
        top.supports
    );
    let lb = st
        .diagnosis
        .explanations
        .iter()
        .find(|e| e.cause == "lb.idle_timeout")
        .expect("the idle cut is weighed");
    assert!(
        lb.against.iter().any(|x| x.starts_with("main carried")),
        "{:?}",
        lb.against
    );
    assert_held_and_reproduced(st);
}

/// Seed 002's K1 shape from the zip alone: ryll stopped reading main at
/// T+100 (a client-side deadlock), so it never counted the PINGs it did not
/// read and its own counters show PINGs == PONGs; display kept receiving
/// until the server's connectivity timer dropped the client, which ryll
/// noticed on display. The headline names main, and the zip's display.
#[test]
fn zip_with_main_unread_and_equal_counters_is_the_client_not_reading_main() {
    let mut m = Vec::new();
    let mut push = |at: Micros, channel: &'static str, from_server: bool, bytes: Vec<u8>| {
        m.push(RingMessage {
            at,
            channel,
            from_server,
            bytes,
        })
    };
    let mut init = 0x0000_0C1Au32.to_le_bytes().to_vec();
    init.resize(32, 0);
    push(ms(500), "main", true, build::mini(103, &init));
    push(ms(502), "main", false, build::mini(104, &[]));
    let mut id = 1u32;
    for k in 1..=6u64 {
        for ch in ["main", "display"] {
            let body = build::ping_body(id, k * 15_000_000, 0);
            push(ms(k * 15_000), ch, true, build::mini(4, &body));
            push(ms(k * 15_000 + 2), ch, false, build::mini(3, &body));
            id += 1;
        }
    }
    for k in 0..17u64 {
        push(
            ms(1_000 + k * 10_000),
            "display",
            true,
            build::mini(304, &[k as u8; 200]),
        );
    }
    m.sort_by_key(|r| r.at);
    let end = FixtureEnd {
        channel: "display",
        disconnect_kind: "Error",
        at: ms(175_000),
        client_port: None,
        error_message: Some("display: read error: connection reset by peer"),
    };
    let bytes = write_fixture(&m, &end, Flavor::Current);
    let tr = triage_reader(&bytes[..], "k1.zip", true, &TriageOptions::default()).unwrap();
    let zip = tr.zip.as_ref().unwrap();
    let main = zip
        .per_channel
        .iter()
        .find(|f| f.channel == "main")
        .unwrap();
    assert_eq!(
        main.pings_recv, main.pongs_sent,
        "the client's own counters agree"
    );
    assert_eq!(tr.cause.as_deref(), Some("server.connectivity_timeout"));
    assert_eq!(tr.channel.as_deref(), Some("main"));
    let d = &tr.sessions[tr.primary.unwrap()].diagnosis;
    assert_eq!(d.origin.as_deref(), Some("client.stopped_reading_main"));
    assert_eq!(d.zip_channel.as_deref(), Some("display"));
    assert!(
        d.observations
            .iter()
            .any(|e| e.text.contains("never counts the PINGs it did not read")),
        "{:#?}",
        d.observations
    );
}
