//! From a decoded capture to sessions: connections grouped into channels,
//! generations (a new set of connections after a drop) and refused
//! attempts, all on one clock relative to the session's first packet.

use crate::decode::Protocol;
use crate::decode::pipeline::{ConnectionReport, DecodeReport};
use crate::flow::{ConnSummary, EndKind};
use crate::timeline::{CloseKind, ConnectionId, Direction, Event, EventKind, Micros, OpenKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// Seconds since the session's first packet.
pub fn rel(t: Micros, start: Micros) -> f64 {
    t.saturating_sub(start).as_secs_f64()
}

/// How one side ended a connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Close {
    pub at: f64,
    /// `client` or `server`: the side that sent it.
    pub by: &'static str,
    /// `fin`, `rst`, `ws_close`, `spice_disconnecting`.
    pub how: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// A protocol-level event triage reasons about, kept in time order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    pub at: f64,
    /// `c2s` or `s2c`.
    pub dir: &'static str,
    /// `ping`, `pong`, `data`, `upgrade`, `refused`.
    pub what: &'static str,
}

/// One connection seen as a channel of a session.
#[derive(Clone, Debug, Serialize)]
pub struct Channel {
    pub connection: ConnectionId,
    /// SPICE channel name, or the stack (`ws/rfb`) for single-stream protocols.
    pub name: String,
    pub stack: String,
    pub client: String,
    pub server: String,
    pub opened_at: f64,
    /// Last byte each way, when any.
    pub last_c2s: Option<f64>,
    pub last_s2c: Option<f64>,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    pub pings_s2c: u64,
    pub pongs_c2s: u64,
    pub pings_c2s: u64,
    pub pongs_s2c: u64,
    /// Server pings the client never answered (their times).
    pub unanswered_pings: Vec<f64>,
    /// The client's last pong.
    pub last_pong_c2s: Option<f64>,
    /// Longest time nothing arrived from the server while open, and when it began.
    pub longest_s2c_silence: f64,
    pub longest_s2c_silence_from: Option<f64>,
    /// Closes in time order (at most one per side and kind).
    pub closes: Vec<Close>,
    /// Still open when the capture ended.
    pub open_at_end: bool,
    /// WebSocket upgrade: request target and response status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// Traffic density: bytes per bucket of `Session::bucket` seconds.
    #[serde(skip)]
    pub density: Vec<u64>,
    /// SPICE: the SET_ACK window, and the most server messages received
    /// between two client ACKs (with when the peak was reached).
    #[serde(skip)]
    pub ack_window: Option<u32>,
    #[serde(skip)]
    pub unacked_peak: Option<(f64, u64)>,
    #[serde(skip)]
    pub marks: Vec<Mark>,
}

/// A WebSocket upgrade as seen on the wire.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Upgrade {
    pub at: f64,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The credential the client presented (query `token`/`ticket`/..., or
    /// the subprotocol), when one is visible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Its expiry in capture-clock seconds since the session start, when
    /// the credential carries one (`<unix-seconds>.<signature>` or a JWT `exp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_expires_at: Option<f64>,
}

/// A set of connections that lived together: one SPICE session id, or one
/// WebSocket/RFB connection.
#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spice_session_id: Option<u64>,
    pub started_at: f64,
    /// The first close of any of its connections, when one was seen.
    pub ended_at: Option<f64>,
    pub channels: Vec<Channel>,
}

/// A connection attempt that carried no session: refused with RST to the
/// SYN, never answered, or an upgrade refused by HTTP status.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub at: f64,
    pub connection: ConnectionId,
    /// `rst_to_syn`, `no_answer`, `http_<status>`.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
}

/// A plain HTTP connection beside the session.
#[derive(Clone, Debug, Serialize)]
pub struct Request {
    pub at: f64,
    pub connection: ConnectionId,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
}

/// All connections of one user-visible session on one clock.
#[derive(Clone, Debug, Serialize)]
pub struct Session {
    /// `spice`, `ws/rfb`, `ws`, `rfb`, ...
    pub kind: String,
    pub server: String,
    /// Capture-clock time of T+0.
    pub start: Micros,
    /// Seconds from T+0 to the session's last packet.
    pub duration: f64,
    pub generations: Vec<Generation>,
    pub attempts: Vec<Attempt>,
    /// Plain HTTP exchanges with the same server (token or lease
    /// requests), by time: evidence of what the client did between
    /// generations.
    pub requests: Vec<Request>,
    /// Another session this one is the upstream leg of (a relay such as
    /// websockify opened it right after the client's upgrade).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_of: Option<usize>,
    /// Width of a density bucket, seconds.
    #[serde(skip)]
    pub bucket: f64,
}

impl Session {
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.generations.iter().flat_map(|g| g.channels.iter())
    }
}

const DENSITY_BUCKETS: usize = 200;

fn close_of(e: &Event, start: Micros) -> Option<Close> {
    let EventKind::Close(kind) = &e.kind else {
        return None;
    };
    let dir = e.direction?;
    let (how, code) = match kind {
        CloseKind::Fin => ("fin".to_string(), None),
        CloseKind::Rst => ("rst".to_string(), None),
        CloseKind::WsClose { code, .. } => ("ws_close".to_string(), *code),
        CloseKind::Protocol { name } => (name.to_lowercase(), None),
        CloseKind::EndOfCapture => return None,
    };
    Some(Close {
        at: rel(e.at, start),
        by: dir.sender(),
        how,
        code,
    })
}

fn detail<'a>(e: &'a Event, key: &str) -> Option<&'a serde_json::Value> {
    match &e.kind {
        EventKind::Message { detail, .. } => detail.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

/// The credential in an upgrade target or subprotocol list.
fn credential_of(query: Option<&str>, protocols: Option<&str>) -> Option<String> {
    const KEYS: [&str; 5] = ["token", "access_token", "ticket", "auth", "jwt"];
    if let Some(q) = query {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if KEYS.contains(&k) && !v.is_empty() {
                return Some(v.to_string());
            }
        }
    }
    protocols.and_then(|p| {
        p.split(',')
            .map(str::trim)
            .find(|s| s.len() >= 16 || s.contains('.'))
            .map(str::to_string)
    })
}

/// The expiry a credential carries, in unix seconds: `<digits>.<sig>` or a
/// JWT whose payload has `exp`.
pub fn credential_expiry(cred: &str) -> Option<f64> {
    let mut parts = cred.split('.');
    let first = parts.next()?;
    if !first.is_empty() && first.len() <= 12 && first.bytes().all(|b| b.is_ascii_digit()) {
        return first.parse::<f64>().ok();
    }
    let payload = parts.next()?;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_f64()
}

fn upgrade_of(events: &[Event], start: Micros) -> Option<Upgrade> {
    let req = events.iter().find(|e| {
        matches!(&e.kind, EventKind::Message { name, protocol: "ws", .. } if name == "upgrade_request")
    })?;
    let text = |e: &Event, k: &str| detail(e, k).and_then(|v| v.as_str()).map(str::to_string);
    let path = text(req, "path").unwrap_or_default();
    let query = text(req, "query");
    let protocols = detail(req, "protocols").map(|v| match v {
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(","),
        other => other.as_str().unwrap_or_default().to_string(),
    });
    let status = events
        .iter()
        .find(|e| {
            matches!(&e.kind, EventKind::Message { name, protocol: "ws", .. } if name == "upgrade_response")
        })
        .and_then(|e| detail(e, "status"))
        .and_then(|v| v.as_u64())
        .and_then(|s| u16::try_from(s).ok());
    let credential = credential_of(query.as_deref(), protocols.as_deref());
    let credential_expires_at = credential
        .as_deref()
        .and_then(credential_expiry)
        .map(|exp| exp - start.as_secs_f64());
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    Some(Upgrade {
        at: rel(req.at, start),
        target,
        status,
        credential,
        credential_expires_at,
    })
}

fn channel_name(report: &ConnectionReport) -> String {
    if let Some(ch) = report.session.as_ref().and_then(|s| s.channel.clone()) {
        return ch;
    }
    let stack: Vec<&str> = report
        .stack
        .iter()
        .copied()
        .filter(|s| *s != "tcp")
        .collect();
    if stack.is_empty() {
        format!("{:?}", report.protocol).to_lowercase()
    } else {
        stack.join("/")
    }
}

fn build_channel(
    flow: &ConnSummary,
    report: Option<&ConnectionReport>,
    start: Micros,
    end: Micros,
) -> Channel {
    let events: &[Event] = report.map_or(&[], |r| &r.events);
    let span = rel(end, start).max(1e-6);
    let bucket = span / DENSITY_BUCKETS as f64;
    let mut density = vec![0u64; DENSITY_BUCKETS];
    let mut marks = Vec::new();
    let mut closes: Vec<Close> = Vec::new();
    let mut last = [None::<f64>; 2];
    let mut bytes = [0u64; 2];
    let (mut pings, mut pongs) = ([0u64; 2], [0u64; 2]);
    let mut outstanding: Vec<f64> = Vec::new();
    let mut last_pong_c2s = None;
    let opened_at = rel(flow.start, start);
    let mut prev_s2c = opened_at;
    let mut longest = (0.0f64, None::<f64>);
    let mut ack_window = None;
    let mut unacked = 0u64;
    let mut unacked_peak = None::<(f64, u64)>;
    for e in events {
        let at = rel(e.at, start);
        let Some(dir) = e.direction else { continue };
        let d = dir.index();
        let dname = dir.as_str();
        match &e.kind {
            EventKind::Message {
                len,
                protocol,
                name,
                ..
            } => {
                if *protocol == "spice" {
                    match (dir, name.as_ref()) {
                        (Direction::ServerToClient, "SPICE_MSG_SET_ACK") => {
                            ack_window = detail(e, "window")
                                .and_then(|v| v.as_u64())
                                .and_then(|w| u32::try_from(w).ok())
                                .filter(|w| *w > 0);
                            unacked = 0;
                        }
                        (Direction::ClientToServer, "SPICE_MSGC_ACK") => unacked = 0,
                        (Direction::ServerToClient, _) if ack_window.is_some() => {
                            unacked += 1;
                            if unacked_peak.is_none_or(|(_, n)| unacked > n) {
                                unacked_peak = Some((at, unacked));
                            }
                        }
                        _ => {}
                    }
                }
                // WebSocket frames also appear as their inner protocol's
                // messages; count wire bytes once, at the outer layer.
                let outer = report.is_some_and(|r| r.stack.get(1) == Some(protocol));
                if outer || report.is_some_and(|r| r.stack.len() <= 2) {
                    bytes[d] += len;
                    let b = ((at / bucket) as usize).min(DENSITY_BUCKETS - 1);
                    density[b] += len;
                }
                if dir == Direction::ServerToClient {
                    if at - prev_s2c > longest.0 {
                        longest = (at - prev_s2c, Some(prev_s2c));
                    }
                    prev_s2c = at;
                }
                last[d] = Some(at);
            }
            EventKind::Ping { .. } => {
                pings[d] += 1;
                marks.push(Mark {
                    at,
                    dir: dname,
                    what: "ping",
                });
                if dir == Direction::ServerToClient {
                    outstanding.push(at);
                }
            }
            EventKind::Pong { .. } => {
                pongs[d] += 1;
                marks.push(Mark {
                    at,
                    dir: dname,
                    what: "pong",
                });
                if dir == Direction::ClientToServer {
                    last_pong_c2s = Some(at);
                    // A pong answers every ping before it (SPICE sends
                    // pairs; WebSocket may coalesce).
                    outstanding.clear();
                }
            }
            EventKind::Close(_) => {
                if let Some(c) = close_of(e, start)
                    && !closes.iter().any(|x| x.by == c.by && x.how == c.how)
                {
                    closes.push(c);
                }
            }
            _ => {}
        }
    }
    // Without decoded events (opaque protocols), fall back to the flow's span.
    if report.is_none_or(|r| r.events.is_empty()) {
        if flow.c2s.bytes > 0 {
            last[0] = Some(rel(flow.last, start));
        }
        if flow.s2c.bytes > 0 {
            last[1] = Some(rel(flow.last, start));
        }
        bytes = [flow.c2s.bytes, flow.s2c.bytes];
        if closes.is_empty()
            && let Some(by) = flow.closed_by
        {
            closes.push(Close {
                at: rel(flow.last, start),
                by: by.sender(),
                how: match flow.end {
                    EndKind::Rst => "rst".into(),
                    _ => "fin".into(),
                },
                code: None,
            });
        }
    }
    let end_at = closes.first().map_or(rel(end, start), |c| c.at);
    if end_at - prev_s2c > longest.0 {
        longest = (end_at - prev_s2c, Some(prev_s2c));
    }
    let upgrade = upgrade_of(events, start);
    if let Some(u) = &upgrade {
        marks.push(Mark {
            at: u.at,
            dir: "c2s",
            what: if u.status.is_some_and(|s| s != 101) {
                "refused"
            } else {
                "upgrade"
            },
        });
    }
    marks.sort_by(|a, b| a.at.total_cmp(&b.at));
    Channel {
        connection: flow.id,
        name: report.map_or_else(|| "tcp".to_string(), channel_name),
        stack: report.map_or_else(|| "tcp".to_string(), |r| r.stack.join("/")),
        client: flow.client.to_string(),
        server: flow.server.to_string(),
        opened_at,
        last_c2s: last[0],
        last_s2c: last[1],
        bytes_c2s: bytes[0],
        bytes_s2c: bytes[1],
        pings_s2c: pings[1],
        pongs_c2s: pongs[0],
        pings_c2s: pings[0],
        pongs_s2c: pongs[1],
        unanswered_pings: outstanding,
        last_pong_c2s,
        longest_s2c_silence: longest.0,
        longest_s2c_silence_from: longest.1,
        open_at_end: flow.end == EndKind::Open,
        closes,
        upgrade,
        density,
        ack_window,
        unacked_peak,
        marks,
    }
}

/// A connection that carried no session: nothing but a handshake or a
/// refusal.
fn refused(flow: &ConnSummary, ch: &Channel) -> Option<String> {
    if let Some(u) = &ch.upgrade
        && let Some(s) = u.status
        && s != 101
    {
        return Some(format!("http_{s}"));
    }
    if flow.c2s.bytes == 0 && flow.s2c.bytes == 0 {
        return Some(match (flow.opened, flow.end) {
            (_, EndKind::Rst) if flow.closed_by == Some(Direction::ServerToClient) => {
                "rst_to_syn".into()
            }
            (OpenKind::Syn, EndKind::Open) => "no_answer".into(),
            _ => "no_data".into(),
        });
    }
    None
}

/// Groups a decoded capture (kept events) into sessions, most recent
/// activity last; relay legs are linked to the session they serve. T+0 is
/// each session's first packet, or `origin` when the clock has one (a ryll
/// ring is stamped with the session clock).
pub fn sessions(report: &DecodeReport, origin: Option<Micros>) -> Vec<Session> {
    let by_id: BTreeMap<ConnectionId, &ConnectionReport> = report
        .connections
        .iter()
        .map(|c| (c.connection, c))
        .collect();
    // Key: the server endpoint; SPICE sessions and single-stream protocols
    // to one endpoint are successive generations of one session.
    let mut groups: BTreeMap<String, Vec<&ConnSummary>> = BTreeMap::new();
    for f in &report.flows {
        groups.entry(f.server.to_string()).or_default().push(f);
    }
    let mut out = Vec::new();
    for (server, mut flows) in groups {
        flows.sort_by_key(|f| (f.start, f.id));
        let start = origin.unwrap_or_else(|| flows.first().map_or(Micros::ZERO, |f| f.start));
        let end = flows.iter().map(|f| f.last).max().unwrap_or(start);
        let mut gens: Vec<Generation> = Vec::new();
        let mut attempts = Vec::new();
        let mut requests = Vec::new();
        let mut spice_gen: BTreeMap<u64, usize> = BTreeMap::new();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for f in flows {
            let rep = by_id.get(&f.id).copied();
            let ch = build_channel(f, rep, start, end);
            if rep.is_some_and(|r| r.protocol == Protocol::Http) && ch.upgrade.is_none() {
                requests.push(Request {
                    at: ch.opened_at,
                    connection: f.id,
                    bytes_c2s: f.c2s.bytes,
                    bytes_s2c: f.s2c.bytes,
                });
                continue;
            }
            if let Some(result) = refused(f, &ch) {
                attempts.push(Attempt {
                    at: ch.opened_at,
                    connection: f.id,
                    result,
                    upgrade: ch.upgrade.clone(),
                });
                continue;
            }
            *kinds
                .entry(if rep.is_some_and(|r| r.protocol == Protocol::Spice) {
                    "spice".to_string()
                } else {
                    ch.stack.trim_start_matches("tcp/").to_string()
                })
                .or_default() += 1;
            let sid = rep
                .and_then(|r| r.session.as_ref())
                .and_then(|s| s.session_id);
            // Without a session id, a connection that opens while the
            // current generation is still up belongs to it (TLS channels,
            // parallel legs); one that opens after all closed is a reconnect.
            let overlapping = sid.is_none()
                && gens.last().is_some_and(|g| {
                    g.spice_session_id.is_none()
                        && g.channels
                            .iter()
                            .any(|c| c.closes.first().is_none_or(|x| x.at > ch.opened_at))
                });
            let slot = match sid.and_then(|s| spice_gen.get(&s).copied()) {
                Some(i) => i,
                None if overlapping => gens.len() - 1,
                None => {
                    gens.push(Generation {
                        index: gens.len(),
                        spice_session_id: sid,
                        started_at: ch.opened_at,
                        ended_at: None,
                        channels: Vec::new(),
                    });
                    if let Some(s) = sid {
                        spice_gen.insert(s, gens.len() - 1);
                    }
                    gens.len() - 1
                }
            };
            gens[slot].channels.push(ch);
        }
        for g in &mut gens {
            g.ended_at = g
                .channels
                .iter()
                .filter_map(|c| c.closes.first().map(|x| x.at))
                .min_by(f64::total_cmp);
        }
        let kind = kinds
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or_else(|| "tcp".to_string(), |(k, _)| k);
        out.push(Session {
            kind,
            server,
            start,
            duration: rel(end, start),
            generations: gens,
            attempts,
            requests,
            relay_of: None,
            bucket: rel(end, start).max(1e-6) / DENSITY_BUCKETS as f64,
        });
    }
    link_relays(&mut out);
    // Client-facing sessions first, each group by start; relay links follow
    // their sessions to the new positions.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| (out[i].relay_of.is_some(), out[i].start));
    let mut new_index = vec![0; out.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut slots: Vec<Option<Session>> = out.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&old| slots[old].take())
        .map(|mut s| {
            s.relay_of = s.relay_of.map(|j| new_index[j]);
            s
        })
        .collect()
}

/// A session whose every generation opened within a second after a
/// generation of a WebSocket session carrying the same inner protocol is
/// that session's upstream leg (websockify dials the target per client).
fn link_relays(sessions: &mut [Session]) {
    for i in 0..sessions.len() {
        if sessions[i].generations.is_empty() {
            continue;
        }
        for j in 0..sessions.len() {
            if i == j || !sessions[j].kind.starts_with("ws/") {
                continue;
            }
            let inner = &sessions[j].kind[3..];
            if sessions[i].kind != inner {
                continue;
            }
            let fits = sessions[i].generations.iter().all(|g| {
                let at = sessions[i].start.as_secs_f64() + g.started_at;
                sessions[j].generations.iter().any(|h| {
                    let outer = sessions[j].start.as_secs_f64() + h.started_at;
                    at >= outer && at - outer <= 1.0
                })
            });
            if fits {
                sessions[i].relay_of = Some(j);
                break;
            }
        }
    }
}
