//! Whole sessions recorded between real peers for triage: who connected,
//! what each connection carried, who closed it, how and when, and what the
//! reconnect presented. Each capture has a tshark dump next to it
//! (`<capture>.tshark.txt`, written by its recording script); the TCP opens
//! and closes tether reports are checked against tshark's segment list, so
//! the facts asserted here are the bytes', not the decoder's opinion.
//!
//! Recipes: corpora/record/ws-stale-token.sh (+ ws-token-peers.py) and
//! corpora/record/novnc-websockify-killed.sh, novnc-browser-stalled.sh and
//! spice-killed-reconnect.sh.

use std::path::{Path, PathBuf};
use tether::decode::pipeline::{ConnectionReport, DecodeOptions, DecodeReport, decode_capture};
use tether::flow::EndKind;
use tether::timeline::{CloseKind, Direction, EventKind, Micros};

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora")
}

fn decode(rel: &str) -> DecodeReport {
    let bytes = std::fs::read(corpora().join(rel)).unwrap();
    let opts = DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    decode_capture(&bytes[..], rel, opts).unwrap()
}

fn dump(rel: &str) -> String {
    std::fs::read_to_string(corpora().join(format!("{rel}.tshark.txt"))).unwrap()
}

/// The tab-separated rows under `## title` in a tshark dump.
fn section<'a>(dump: &'a str, title: &str) -> Vec<Vec<&'a str>> {
    let start = dump
        .find(&format!("## {title}"))
        .unwrap_or_else(|| panic!("no section {title}"));
    dump[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("## "))
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
        .collect()
}

/// tshark's `frame.time_epoch` ("1795456948.605957000") in microseconds,
/// without going through a float.
fn epoch_micros(s: &str) -> Micros {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<6}");
    Micros(secs.parse::<u64>().unwrap() * 1_000_000 + frac[..6].parse::<u64>().unwrap())
}

/// One TCP segment as tshark lists it (`## TCP segments`).
#[derive(Debug)]
struct Segment {
    at: Micros,
    sport: u16,
    dport: u16,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
}

fn segments(dump: &str) -> Vec<Segment> {
    // columns: frame epoch trel stream src sport dst dport flags payload_len
    section(dump, "TCP segments")
        .into_iter()
        .map(|c| {
            let flags = c[8];
            Segment {
                at: epoch_micros(c[1]),
                sport: c[5].parse().unwrap(),
                dport: c[7].parse().unwrap(),
                syn: flags.contains('S'),
                ack: flags.contains('A'),
                fin: flags.contains('F'),
                rst: flags.contains('R'),
            }
        })
        .collect()
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// How and when one side ended its half, as the events say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TcpEnd {
    at: Micros,
    by: Direction,
    rst: bool,
}

fn tcp_ends(c: &ConnectionReport) -> Vec<TcpEnd> {
    c.events
        .iter()
        .filter_map(|e| match (&e.kind, e.direction) {
            (EventKind::Close(CloseKind::Fin), Some(by)) => Some(TcpEnd {
                at: e.at,
                by,
                rst: false,
            }),
            (EventKind::Close(CloseKind::Rst), Some(by)) => Some(TcpEnd {
                at: e.at,
                by,
                rst: true,
            }),
            _ => None,
        })
        .collect()
}

/// Every connection's SYN time and first FIN or RST per side, from tshark's
/// segment list, must be what tether reports.
fn check_tcp_against_tshark(rel: &str, report: &DecodeReport) {
    let segs = segments(&dump(rel));
    assert!(!segs.is_empty(), "{rel}: empty segment list");
    // One connection per client SYN, none missed, none made up.
    let syns = segs.iter().filter(|s| s.syn && !s.ack).count();
    assert_eq!(report.connections.len(), syns, "{rel}: connections");
    for c in &report.connections {
        let (cp, sp) = (port(&c.client), port(&c.server));
        let from_client = |s: &&Segment| s.sport == cp && s.dport == sp;
        let from_server = |s: &&Segment| s.sport == sp && s.dport == cp;
        let syn = segs
            .iter()
            .filter(from_client)
            .find(|s| s.syn)
            .unwrap_or_else(|| panic!("{rel}: no SYN from {}", c.client));
        let open_at = c
            .events
            .iter()
            .find_map(|e| matches!(e.kind, EventKind::Open { .. }).then_some(e.at));
        assert_eq!(open_at, Some(syn.at), "{rel}: {} open", c.client);
        let mut want = Vec::new();
        for (dir, pick) in [
            (
                Direction::ClientToServer,
                &from_client as &dyn Fn(&&Segment) -> bool,
            ),
            (Direction::ServerToClient, &from_server),
        ] {
            if let Some(s) = segs.iter().filter(pick).find(|s| s.fin || s.rst) {
                want.push(TcpEnd {
                    at: s.at,
                    by: dir,
                    rst: s.rst,
                });
            }
        }
        let mut got = tcp_ends(c);
        got.sort_by_key(|e| (e.at, e.by.index()));
        got.dedup_by_key(|e| e.by);
        want.sort_by_key(|e| (e.at, e.by.index()));
        assert_eq!(got, want, "{rel}: {} ends", c.client);
    }
}

/// A decoded message's detail fields.
type Detail = [(std::borrow::Cow<'static, str>, serde_json::Value)];

fn detail<'a>(d: &'a Detail, k: &str) -> &'a serde_json::Value {
    d.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v)
        .unwrap_or(&serde_json::Value::Null)
}

/// The `(at, detail)` of each decoded message called `name`.
fn messages<'a>(c: &'a ConnectionReport, name: &str) -> Vec<(Micros, &'a Detail)> {
    c.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message {
                name: n, detail, ..
            } if n == name => Some((e.at, detail.as_slice())),
            _ => None,
        })
        .collect()
}

fn secs(from: Micros, to: Micros) -> f64 {
    (to.0 as f64 - from.0 as f64) / 1e6
}

// ------------------------------------------------------------------ tokens

/// A token of ws-token-peers.py: `<exp unix seconds>.<16 hex digits>`.
fn token_expiry(token: &str) -> Micros {
    let (exp, sig) = token.split_once('.').unwrap();
    assert_eq!(sig.len(), 16, "{token}");
    assert!(sig.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    Micros(exp.parse::<u64>().unwrap() * 1_000_000)
}

/// Tokens the server issued (the `GET /token` response bodies), in order.
fn issued_tokens(dump: &str) -> Vec<(Micros, String)> {
    // columns: frame epoch stream sport dport uri response_code upgrade body
    section(dump, "HTTP requests and responses")
        .into_iter()
        .filter(|c| c[6] == "200")
        .map(|c| (epoch_micros(c[1]), c[8].to_string()))
        .collect()
}

/// `(at, token, status)` of each upgrade, with the status tether decoded.
fn upgrades(c: &ConnectionReport) -> (Micros, String, u64) {
    let req = messages(c, "upgrade_request");
    let resp = messages(c, "upgrade_response");
    assert_eq!((req.len(), resp.len()), (1, 1), "{}", c.client);
    assert_eq!(detail(req[0].1, "path"), "/ws");
    let query = detail(req[0].1, "query").as_str().unwrap();
    let token = query.strip_prefix("token=").unwrap().to_string();
    let status = detail(resp[0].1, "status").as_u64().unwrap();
    (req[0].0, token, status)
}

fn protocols(r: &DecodeReport) -> Vec<(&'static str, Vec<&'static str>)> {
    r.connections
        .iter()
        .map(|c| (c.protocol.as_str(), c.stack.clone()))
        .collect()
}

/// The first generation of both token captures: a token fetched, one
/// upgrade with it, a few seconds of echoes with server pings answered,
/// then the server drops the connection with a FIN and no close frame.
fn check_first_generation(rel: &str, r: &DecodeReport) -> (Micros, String) {
    let fetch = &r.connections[0];
    let ws = &r.connections[1];
    let issued = issued_tokens(&dump(rel));
    let (at, token, status) = upgrades(ws);
    assert_eq!(status, 101, "{rel}");
    assert_eq!(
        token, issued[0].1,
        "{rel}: the upgrade uses the issued token"
    );
    // Fetched over its own short connection just before, valid 3 to 4 s.
    assert_eq!(r.flows[0].closed_by, Some(Direction::ServerToClient));
    assert!(fetch.c2s.first.unwrap() < at);
    let exp = token_expiry(&token);
    let ttl = secs(issued[0].0, exp);
    assert!((3.0..=4.0).contains(&ttl), "{rel}: token ttl {ttl}");
    assert!(at < exp, "{rel}: first upgrade before expiry");

    // Every server ping answered by a pong with its payload, promptly.
    let pings = messages(ws, "ping");
    let pongs = messages(ws, "pong");
    assert_eq!(pings.len(), 3, "{rel}: one ping a second");
    assert_eq!(pongs.len(), 3, "{rel}");
    for (ping, pong) in pings.iter().zip(&pongs) {
        assert_eq!(detail(ping.1, "payload"), detail(pong.1, "payload"));
        assert_eq!(detail(pong.1, "masked"), true);
        assert!(secs(ping.0, pong.0) < 0.05, "{rel}: pong delay");
    }
    assert_eq!(ws.c2s.pongs, 3);
    assert_eq!(ws.s2c.pings, 3);
    // Client text echoed by the server, unmasked.
    let texts = messages(ws, "text");
    let sent = texts.iter().filter(|t| detail(t.1, "masked") == true);
    let echoed = texts.iter().filter(|t| detail(t.1, "masked") == false);
    assert_eq!(sent.count(), 8, "{rel}");
    assert_eq!(echoed.count(), 8, "{rel}");

    // The drop: server FIN ~3.75 s after the 101, no close frame either
    // way, tether calls it an abnormal closure ended by the server, and
    // the client answers with its own FIN.
    assert!(messages(ws, "close").is_empty(), "{rel}");
    let ends = tcp_ends(ws);
    assert_eq!(ends.len(), 2, "{rel}: {ends:?}");
    assert_eq!(ends[0].by, Direction::ServerToClient);
    assert!(!ends[0].rst && !ends[1].rst, "{rel}: FINs, not RSTs");
    let up_at = messages(ws, "upgrade_response")[0].0;
    let lived = secs(up_at, ends[0].at);
    assert!(
        (3.7..3.85).contains(&lived),
        "{rel}: dropped after {lived} s"
    );
    let abnormal = messages(ws, "abnormal_closure");
    assert_eq!(abnormal.len(), 1, "{rel}");
    assert_eq!(abnormal[0].0, ends[0].at);
    assert_eq!(detail(abnormal[0].1, "code"), 1006);
    assert_eq!(detail(abnormal[0].1, "tcp"), "fin");
    assert_eq!(detail(abnormal[0].1, "ended_by"), "server");
    assert_eq!(r.flows[1].closed_by, Some(Direction::ServerToClient));
    assert!(ws.findings.is_empty(), "{rel}: {:?}", ws.findings);
    (ends[0].at, token)
}

#[test]
fn stale_token_reconnect_gets_401() {
    let rel = "recorded/ws-stale-token-401.pcap";
    let r = decode(rel);
    check_tcp_against_tshark(rel, &r);
    assert_eq!(
        protocols(&r),
        vec![
            ("http", vec!["tcp"]),
            ("websocket", vec!["tcp", "ws"]),
            ("websocket", vec!["tcp", "ws"]),
        ]
    );
    let (dropped_at, first_token) = check_first_generation(rel, &r);

    // The reconnect, 1 s after the drop, presents the same token, now
    // past its expiry, and is refused; no new token was fetched.
    assert_eq!(issued_tokens(&dump(rel)).len(), 1);
    let again = &r.connections[2];
    let (at, token, status) = upgrades(again);
    assert_eq!(token, first_token, "reused");
    assert_eq!(status, 401);
    let exp = token_expiry(&token);
    assert!(at > exp, "presented {} s after expiry", secs(exp, at));
    let delay = secs(dropped_at, r.flows[2].start);
    assert!((1.0..1.1).contains(&delay), "reconnect delay {delay}");
    // tshark read the refusal body.
    let text = dump(rel);
    let refusal = section(&text, "HTTP requests and responses")
        .into_iter()
        .find(|c| c[6] == "401")
        .unwrap();
    assert_eq!(refusal[8], "token expired");
    // Nothing framed after the refusal; the server closes first, by FIN.
    assert!(messages(again, "text").is_empty());
    assert!(messages(again, "abnormal_closure").is_empty());
    let ends = tcp_ends(again);
    assert_eq!(ends[0].by, Direction::ServerToClient);
    assert!(!ends[0].rst);
    assert!(r.flows.iter().all(|f| f.end == EndKind::Fin));
    assert!(again.findings.is_empty(), "{:?}", again.findings);
}

#[test]
fn fresh_token_reconnect_gets_101_and_closes_cleanly() {
    let rel = "recorded/ws-fresh-token-reconnect.pcap";
    let r = decode(rel);
    check_tcp_against_tshark(rel, &r);
    assert_eq!(
        protocols(&r),
        vec![
            ("http", vec!["tcp"]),
            ("websocket", vec!["tcp", "ws"]),
            ("http", vec!["tcp"]),
            ("websocket", vec!["tcp", "ws"]),
        ]
    );
    let (dropped_at, first_token) = check_first_generation(rel, &r);

    // A new token fetched after the drop, then the reconnect with it.
    let issued = issued_tokens(&dump(rel));
    assert_eq!(issued.len(), 2);
    let again = &r.connections[3];
    let (at, token, status) = upgrades(again);
    assert_eq!(token, issued[1].1);
    assert_ne!(token, first_token);
    assert_eq!(status, 101);
    assert!(at < token_expiry(&token), "fresh when presented");
    assert!(at > token_expiry(&first_token), "the old one had expired");
    let delay = secs(dropped_at, r.flows[2].start);
    assert!((1.0..1.1).contains(&delay), "token fetch delay {delay}");

    // Two echoes and a ping answered, then a clean close: client 1000
    // "bye", server replies 1000, server closes TCP first.
    assert_eq!(messages(again, "text").len(), 4);
    assert_eq!((again.s2c.pings, again.c2s.pongs), (1, 1));
    let closes: Vec<_> = again
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Close(CloseKind::WsClose { code, reason }) => {
                Some((e.direction.unwrap(), *code, reason.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec![
            (Direction::ClientToServer, Some(1000), "bye"),
            (Direction::ServerToClient, Some(1000), ""),
        ]
    );
    let ends = tcp_ends(again);
    assert_eq!(ends[0].by, Direction::ServerToClient);
    assert!(messages(again, "abnormal_closure").is_empty());
    assert!(again.findings.is_empty(), "{:?}", again.findings);
    assert_eq!(r.flows[3].closed_by, Some(Direction::ServerToClient));
}

// ------------------------------------------------- noVNC through websockify

/// RFB message names each way, in order, whichever leg carried them.
fn rfb_messages(c: &ConnectionReport, dir: Direction) -> Vec<&str> {
    c.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Message {
                protocol: "rfb",
                name,
                ..
            } if e.direction == Some(dir) => Some(name.as_ref()),
            _ => None,
        })
        .collect()
}

fn ws_close_frames(c: &ConnectionReport) -> Vec<(Direction, Option<u16>)> {
    c.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Close(CloseKind::WsClose { code, .. }) => Some((e.direction?, *code)),
            _ => None,
        })
        .collect()
}

/// One generation of noVNC -> websockify -> Xvnc that websockify's SIGKILL
/// ended; returns the kill time (websockify's first FIN).
fn check_killed_generation(rel: &str, ws: &ConnectionReport, rfb: &ConnectionReport) -> Micros {
    assert_eq!(ws.stack, vec!["tcp", "ws", "rfb"], "{rel}");
    assert_eq!(rfb.stack, vec!["tcp", "rfb"], "{rel}");
    // websockify dials Xvnc once the browser's upgrade is in.
    let up = messages(ws, "upgrade_response");
    assert_eq!(detail(up[0].1, "status"), 101, "{rel}");
    let req_at = messages(ws, "upgrade_request")[0].0;
    let rfb_open = rfb.events[0].at;
    assert!(
        req_at < rfb_open,
        "{rel}: websockify dials after the upgrade"
    );

    // A live session: the same RFB bytes cross both legs, so both decode
    // to the same messages, each way.
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        assert_eq!(
            rfb_messages(ws, dir),
            rfb_messages(rfb, dir),
            "{rel}: legs differ {dir:?}"
        );
    }
    let updates = messages(rfb, "FramebufferUpdate");
    assert!(updates.len() >= 3, "{rel}: {} updates", updates.len());
    assert!(secs(up[0].0, updates[0].0) < 0.5, "{rel}: first update");
    assert!(rfb_messages(rfb, Direction::ServerToClient).contains(&"ServerInit"));
    // websockify's heartbeat, answered by the browser every time. With
    // --heartbeat 1 it pings when its proxy loop (select with a 1 s
    // timeout) wakes after the deadline: 1 to 2 s apart.
    let pings = messages(ws, "ping");
    let pongs = messages(ws, "pong");
    assert!(pings.len() >= 2, "{rel}: {} pings", pings.len());
    assert_eq!(pings.len(), pongs.len(), "{rel}");
    for (ping, pong) in pings.iter().zip(&pongs) {
        assert!(ping.0 < pong.0 && secs(ping.0, pong.0) < 0.05, "{rel}");
    }
    for pair in pings.windows(2) {
        let gap = secs(pair[0].0, pair[1].0);
        assert!((0.99..2.05).contains(&gap), "{rel}: heartbeat gap {gap}");
    }

    // The kill: websockify's sockets close at once on both legs, by FIN,
    // with no WebSocket close frame; the peers answer with their own FIN.
    let ws_ends = tcp_ends(ws);
    let rfb_ends = tcp_ends(rfb);
    assert_eq!(ws_ends.len(), 2, "{rel}: {ws_ends:?}");
    assert_eq!(rfb_ends.len(), 2, "{rel}: {rfb_ends:?}");
    // websockify is the server of the browser leg, the client of the Xvnc leg.
    assert_eq!(ws_ends[0].by, Direction::ServerToClient, "{rel}");
    assert_eq!(rfb_ends[0].by, Direction::ClientToServer, "{rel}");
    assert!(ws_ends.iter().chain(&rfb_ends).all(|e| !e.rst), "{rel}");
    let killed_at = ws_ends[0].at.min(rfb_ends[0].at);
    assert!(secs(killed_at, ws_ends[0].at.max(rfb_ends[0].at)) < 0.01);
    assert!(secs(killed_at, ws_ends[1].at) < 0.05, "{rel}: browser FIN");
    assert!(secs(killed_at, rfb_ends[1].at) < 0.05, "{rel}: Xvnc FIN");
    assert!(ws_close_frames(ws).is_empty(), "{rel}");
    let abnormal = messages(ws, "abnormal_closure");
    assert_eq!(abnormal.len(), 1, "{rel}");
    assert_eq!(abnormal[0].0, ws_ends[0].at);
    assert_eq!(detail(abnormal[0].1, "ended_by"), "server");
    assert_eq!(detail(abnormal[0].1, "tcp"), "fin");
    // The heartbeat was alive until the kill.
    assert!(secs(pings.last().unwrap().0, killed_at) < 2.05, "{rel}");
    assert!(ws.findings.is_empty(), "{rel}: {:?}", ws.findings);
    assert!(rfb.findings.is_empty(), "{rel}: {:?}", rfb.findings);
    killed_at
}

#[test]
fn novnc_websockify_killed_then_reconnect_refused() {
    let rel = "recorded/novnc-websockify-killed.pcap";
    let r = decode(rel);
    check_tcp_against_tshark(rel, &r);
    assert_eq!(r.connections.len(), 3, "one generation and one retry");
    let (ws, rfb, retry) = (&r.connections[0], &r.connections[1], &r.connections[2]);
    assert!(ws.server.ends_with(":6180") && rfb.server.ends_with(":6101"));
    let killed_at = check_killed_generation(rel, ws, rfb);

    // noVNC (1.3.0) retries once, reconnect_delay (1 s) after the close;
    // nothing listens, so the SYN is answered by RST: no data, no upgrade.
    // A failed connect is not a clean disconnect, so it does not retry
    // again (the browser stayed up 2 s more: three connections in all).
    assert_eq!(retry.server, ws.server);
    let delay = secs(killed_at, r.flows[2].start);
    assert!((1.0..1.1).contains(&delay), "retry after {delay} s");
    assert_eq!(r.flows[2].end, EndKind::Rst);
    assert_eq!(r.flows[2].closed_by, Some(Direction::ServerToClient));
    assert_eq!((r.flows[2].c2s.bytes, r.flows[2].s2c.bytes), (0, 0));
    assert_eq!((r.flows[2].c2s.segments, r.flows[2].s2c.segments), (1, 1));
    let ends = tcp_ends(retry);
    assert_eq!(ends.len(), 1);
    assert!(ends[0].rst && ends[0].by == Direction::ServerToClient);
    assert!(retry.findings.is_empty(), "{:?}", retry.findings);
}

#[test]
fn novnc_websockify_killed_restarted_and_reconnected() {
    let rel = "recorded/novnc-websockify-killed-reconnect.pcap";
    let r = decode(rel);
    check_tcp_against_tshark(rel, &r);
    assert_eq!(r.connections.len(), 4, "two generations of two legs");
    let c = &r.connections;
    assert!(c[0].server.ends_with(":6182") && c[1].server.ends_with(":6102"));
    assert_eq!((&c[2].server, &c[3].server), (&c[0].server, &c[1].server));
    let killed_at = check_killed_generation(rel, &c[0], &c[1]);

    // The single retry, reconnect_delay (3 s) after the close, finds the
    // restarted websockify: a whole new session on both legs.
    let (ws, rfb) = (&c[2], &c[3]);
    let delay = secs(killed_at, r.flows[2].start);
    assert!((3.0..3.1).contains(&delay), "retry after {delay} s");
    assert_eq!(detail(messages(ws, "upgrade_response")[0].1, "status"), 101);
    assert!(messages(ws, "upgrade_request")[0].0 < rfb.events[0].at);
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        assert_eq!(rfb_messages(ws, dir), rfb_messages(rfb, dir), "{dir:?}");
    }
    assert!(rfb_messages(rfb, Direction::ServerToClient).contains(&"ServerInit"));
    assert!(messages(rfb, "FramebufferUpdate").len() >= 2);
    assert_eq!(ws.s2c.pings, ws.c2s.pongs);
    assert!(ws.s2c.pings >= 2);

    // Then the browser is closed: it sends close 1001 (going away) and its
    // FIN at once, websockify echoes 1001 into a socket already gone, the
    // browser's kernel answers RST; websockify then closes the Xvnc leg.
    assert_eq!(
        ws_close_frames(ws),
        vec![
            (Direction::ClientToServer, Some(1001)),
            (Direction::ServerToClient, Some(1001)),
        ]
    );
    let ends = tcp_ends(ws);
    assert_eq!(
        ends.iter().map(|e| (e.by, e.rst)).collect::<Vec<_>>(),
        vec![
            (Direction::ClientToServer, false),
            (Direction::ClientToServer, true),
        ]
    );
    assert_eq!(r.flows[2].end, EndKind::Rst);
    assert_eq!(r.flows[2].closed_by, Some(Direction::ClientToServer));
    let rfb_ends = tcp_ends(rfb);
    assert_eq!(rfb_ends[0].by, Direction::ClientToServer);
    assert!(rfb_ends[0].at > ends[1].at && !rfb_ends[0].rst);
    assert!(secs(ends[0].at, rfb_ends[0].at) < 0.01);
    assert_eq!(rfb_ends[1].by, Direction::ServerToClient);
    assert!(messages(ws, "abnormal_closure").is_empty());
    assert!(ws.findings.is_empty() && rfb.findings.is_empty());
}

// ------------------------------------------------------------------- SPICE

#[test]
fn spice_server_killed_then_reconnect_refused() {
    // corpora/record/spice-killed-reconnect.sh: QEMU with sound and a USB
    // redirection slot, spicy connected, QEMU SIGKILLed, spicy started
    // again 2 s later.
    let rel = "recorded/spice-killed-reconnect.pcap";
    let r = decode(rel);
    check_tcp_against_tshark(rel, &r);
    assert_eq!(r.connections.len(), 8, "seven channels and one retry");
    let (channels, retry) = r.connections.split_at(7);
    let retry = &retry[0];

    // One session, every channel linked OK, main first.
    let sessions: Vec<_> = channels
        .iter()
        .map(|c| c.session.clone().unwrap())
        .collect();
    let mut names: Vec<&str> = sessions
        .iter()
        .map(|s| s.channel.as_deref().unwrap())
        .collect();
    assert_eq!(names[0], "main");
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "cursor", "display", "inputs", "main", "playback", "record", "usbredir"
        ]
    );
    assert!(sessions[0].session_id.is_some());
    assert!(
        sessions
            .iter()
            .all(|s| s.session_id == sessions[0].session_id)
    );
    assert!(sessions.iter().all(|s| s.disconnecting.is_none()));
    assert!(
        sessions
            .iter()
            .all(|s| s.link_result.as_deref() == Some("OK"))
    );
    // tshark read the same channel type in each client's SpiceLinkMess
    // (spice-protocol: 1 main, 2 display, 3 inputs, 4 cursor, 5 playback,
    // 6 record, 9 usbredir).
    let text = dump(rel);
    let linked: Vec<(u16, &str)> = section(&text, "SPICE messages")
        .into_iter()
        .filter(|c| c[2] != "6120" && !c[3].is_empty())
        .map(|c| (c[2].parse().unwrap(), c[3]))
        .collect();
    assert_eq!(linked.len(), 7);
    for (sport, ty) in linked {
        let c = channels.iter().find(|c| port(&c.client) == sport).unwrap();
        let name = match ty {
            "1" => "main",
            "2" => "display",
            "3" => "inputs",
            "4" => "cursor",
            "5" => "playback",
            "6" => "record",
            "9" => "usbredir",
            other => panic!("channel type {other}"),
        };
        assert_eq!(c.session.as_ref().unwrap().channel.as_deref(), Some(name));
    }
    for c in channels {
        assert_eq!(c.stack, vec!["tcp", "spice"]);
        assert!(c.findings.is_empty(), "{}: {:?}", c.client, c.findings);
    }

    // The kill: the server's FIN on all seven channels within 10 ms (the
    // kernel closes a dead process's sockets one by one), with
    // no SPICE goodbye (no DISCONNECTING) and nothing from the server
    // after it; spice-gtk answers each with its own FIN.
    let killed_at = channels.iter().map(|c| tcp_ends(c)[0].at).min().unwrap();
    for c in channels {
        let ends = tcp_ends(c);
        assert_eq!(ends.len(), 2, "{}", c.client);
        assert_eq!(ends[0].by, Direction::ServerToClient, "{}", c.client);
        assert!(!ends[0].rst && !ends[1].rst, "{}", c.client);
        assert!(secs(killed_at, ends[0].at) < 0.01, "{}", c.client);
        assert!(secs(ends[0].at, ends[1].at) < 0.01, "{}", c.client);
        assert!(c.s2c.last.unwrap() <= ends[0].at);
        assert!(
            !c.events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::Close(CloseKind::Protocol { .. }))),
            "{}: a protocol goodbye",
            c.client
        );
    }
    // The session ran ~3.7 s before the kill (spicy connected at T+0).
    let lived = secs(channels[0].events[0].at, killed_at);
    assert!((3.5..4.0).contains(&lived), "session lived {lived} s");

    // spice-gtk did not retry on its own: the only later connection is the
    // second spicy, 2.4-2.7 s after the kill, refused by RST.
    assert_eq!(retry.server, channels[0].server);
    let delay = secs(killed_at, r.flows[7].start);
    assert!((2.4..2.8).contains(&delay), "retry after {delay} s");
    assert_eq!(r.flows[7].end, EndKind::Rst);
    assert_eq!(r.flows[7].closed_by, Some(Direction::ServerToClient));
    assert_eq!((r.flows[7].c2s.bytes, r.flows[7].s2c.bytes), (0, 0));
    assert!(retry.session.is_none());
}

// --------------------------------------------------------- client stalled

/// The longest silence of one side: the times of the two decoded events
/// (messages, pings, pongs) from that side around it.
fn longest_silence(c: &ConnectionReport, dir: Direction) -> (Micros, Micros) {
    let times: Vec<Micros> = c
        .events
        .iter()
        .filter(|e| e.direction == Some(dir))
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Message { .. } | EventKind::Ping { .. } | EventKind::Pong { .. }
            )
        })
        .map(|e| e.at)
        .collect();
    times
        .windows(2)
        .map(|w| (w[0], w[1]))
        .max_by_key(|(a, b)| b.0 - a.0)
        .unwrap()
}

fn pong_rtts(c: &ConnectionReport) -> Vec<(Micros, Micros)> {
    c.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Pong { rtt: Some(rtt), .. } => Some((e.at, rtt)),
            _ => None,
        })
        .collect()
}

#[test]
fn novnc_browser_stalled_answers_pings_late() {
    // corpora/record/novnc-browser-stalled.sh: every Chromium process
    // SIGSTOPped for 3.5 s mid-session, then continued.
    let rel = "recorded/novnc-browser-stalled.pcap";
    let r = decode(rel);
    check_tcp_against_tshark(rel, &r);
    assert_eq!(r.connections.len(), 2);
    let (ws, rfb) = (&r.connections[0], &r.connections[1]);
    assert_eq!(ws.stack, vec!["tcp", "ws", "rfb"]);
    assert_eq!(rfb.stack, vec!["tcp", "rfb"]);
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        assert_eq!(rfb_messages(ws, dir), rfb_messages(rfb, dir), "{dir:?}");
    }

    // The browser fell silent for ~3.8 s on the WebSocket leg...
    let (quiet_from, quiet_to) = longest_silence(ws, Direction::ClientToServer);
    let quiet = secs(quiet_from, quiet_to);
    assert!((3.4..4.5).contains(&quiet), "browser quiet {quiet} s");
    // ...while websockify kept pinging and Xvnc kept updating the screen.
    let during = |list: &[(Micros, &Detail)]| {
        list.iter()
            .filter(|m| m.0 > quiet_from && m.0 < quiet_to)
            .count()
    };
    assert!(during(&messages(ws, "ping")) >= 3, "pings in the stall");
    assert!(during(&messages(ws, "FramebufferUpdate")) >= 2);
    assert!(during(&messages(rfb, "FramebufferUpdate")) >= 2);
    let (a, b) = longest_silence(ws, Direction::ServerToClient);
    let server_quiet = secs(a, b);
    assert!(
        server_quiet < 1.6,
        "the server never paused: {server_quiet} s"
    );
    // The RFB leg shows it too: no fence reply reaches Xvnc from before
    // the stall until websockify relays the browser's late ones.
    let (rfb_from, rfb_to) = longest_silence(rfb, Direction::ClientToServer);
    assert!(rfb_from <= quiet_from && rfb_to > quiet_to);
    assert!(secs(quiet_to, rfb_to) < 0.05);

    // Pongs: prompt before and after; in the stall, none; at its end the
    // missed pings are answered in one burst, oldest first, the oldest
    // ~2.8 s late.
    let rtts = pong_rtts(ws);
    assert_eq!(
        rtts.len(),
        messages(ws, "ping").len(),
        "every ping answered"
    );
    let late: Vec<_> = rtts.iter().filter(|(_, rtt)| rtt.0 > 50_000).collect();
    assert_eq!(late.len(), 3, "{late:?}");
    assert!(
        late.iter()
            .all(|(at, _)| *at == quiet_to || secs(quiet_to, *at) < 0.01)
    );
    assert!(late.windows(2).all(|w| w[0].1 > w[1].1), "oldest first");
    assert!(secs(Micros(0), late[0].1) > 2.5, "{:?}", late[0]);
    assert!(
        rtts.iter()
            .filter(|(_, rtt)| rtt.0 <= 50_000)
            .all(|(_, rtt)| rtt.0 < 5_000),
        "otherwise prompt"
    );
    assert!(rtts.iter().filter(|(at, _)| *at < quiet_from).count() >= 2);
    assert!(rtts.iter().filter(|(at, _)| *at > quiet_to).count() >= 3);

    // Nobody timed out on it: the session ended when the browser was closed
    // (close 1001 both ways, the browser's FIN then RST); websockify then
    // closed the Xvnc leg.
    assert_eq!(
        ws_close_frames(ws),
        vec![
            (Direction::ClientToServer, Some(1001)),
            (Direction::ServerToClient, Some(1001)),
        ]
    );
    assert_eq!(r.flows[0].closed_by, Some(Direction::ClientToServer));
    assert_eq!(r.flows[1].closed_by, Some(Direction::ClientToServer));
    assert!(secs(quiet_to, tcp_ends(ws)[0].at) > 1.5);
    assert!(messages(ws, "abnormal_closure").is_empty());
    assert!(ws.findings.is_empty() && rfb.findings.is_empty());
}
