//! From a decoded capture to sessions: connections grouped into channels,
//! generations (a new set of connections after a drop) and refused
//! attempts, all on the input's one clock: seconds since its first frame
//! (T+0), as every time tether writes.

use crate::decode::Protocol;
use crate::decode::pipeline::{ConnectionReport, DecodeReport};
use crate::flow::{ConnSummary, EndKind};
use crate::timeline::{CloseKind, ConnectionId, Direction, Event, EventKind, Micros, OpenKind};
use serde::Serialize;

use super::evidence::SAME_INSTANT;
use std::collections::BTreeMap;

/// Seconds from `start` (T+0) to `t`.
pub fn rel(t: Micros, start: Micros) -> f64 {
    t.saturating_sub(start).as_secs_f64()
}

/// How one side ended a connection.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Close {
    pub at: f64,
    /// `client` or `server`: the side that sent it.
    pub by: &'static str,
    /// `fin`, `rst`, `ws_close`, `spice_disconnecting`.
    pub how: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// A protocol-level event triage reasons about, kept in time order: 16
/// bytes, since a long session's channel holds thousands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mark {
    pub at: f64,
    kind: u8,
}

impl Mark {
    /// Direction and kind by [`Mark::kind`]: the fold's four, then the
    /// upgrade's two.
    const KINDS: [(&'static str, &'static str); 6] = [
        ("c2s", "ping"),
        ("s2c", "ping"),
        ("c2s", "pong"),
        ("s2c", "pong"),
        ("c2s", "upgrade"),
        ("c2s", "refused"),
    ];

    /// Kinds past the fold's four: a WebSocket upgrade, accepted or refused.
    const UPGRADE: u8 = 4;
    const REFUSED: u8 = 5;

    /// `c2s` or `s2c`.
    pub fn dir(&self) -> &'static str {
        Self::KINDS[usize::from(self.kind)].0
    }

    /// `ping`, `pong`, `upgrade`, `refused`.
    pub fn what(&self) -> &'static str {
        Self::KINDS[usize::from(self.kind)].1
    }
}

/// One connection seen as a channel of a session.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
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
    /// Traffic density, drawn on `Session::bucket`-second buckets by
    /// [`Density::rebin`].
    #[serde(skip)]
    pub density: Density,
    /// SPICE: the SET_ACK window, and the most server messages received
    /// between two client ACKs (with when the peak was reached).
    #[serde(skip)]
    pub ack_window: Option<u32>,
    #[serde(skip)]
    pub unacked_peak: Option<(f64, u64)>,
    #[serde(skip)]
    pub marks: Vec<Mark>,
    /// Each ping, with the last message its receiver had sent before it:
    /// a process that sent something was running then.
    #[serde(skip)]
    pub peer_last_before_ping: Vec<(f64, Option<f64>)>,
    /// The login refused on this connection (SPICE link result, RFB
    /// SecurityResult), with the server's reason when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_refused: Option<String>,
    /// What TCP says about each sender: `[client, server]`.
    pub tcp: [TcpFacts; 2],
}

impl Channel {
    /// When the path died under a connection still open at the end: a side
    /// has bytes the other never acknowledged, retransmitted with backoff
    /// (RFC 6298 §5) until the capture ended. A process that closed its
    /// socket then leaves no FIN on the wire: it queues behind the data.
    pub fn dead_path_from(&self) -> Option<f64> {
        if !self.open_at_end {
            return None;
        }
        (0..2)
            .filter_map(|i| {
                let me = &self.tcp[i];
                let peer = &self.tcp[1 - i];
                let since = me.unacked_since?;
                let retransmitted =
                    me.retransmissions > 0 && me.last_retransmission.is_some_and(|r| r > since);
                let never_acked = peer.last_ack_advance.is_none_or(|a| a < since);
                (retransmitted && never_acked).then_some(since)
            })
            .min_by(f64::total_cmp)
    }
}

/// [`crate::flow::TcpSide`] on the session clock (T+ seconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TcpFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fin: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rst: Option<f64>,
    pub retransmissions: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_retransmission: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_retransmission: Option<f64>,
    pub keepalives: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_keepalive: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_keepalive_answered: Option<f64>,
    pub zero_windows: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_zero_window: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_zero_window: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ack_advance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_segment: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_payload: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked_since: Option<f64>,
    /// The longest spell of unacknowledged, retransmitted bytes that were
    /// acknowledged in the end: (from, seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_stall: Option<(f64, f64)>,
}

impl TcpFacts {
    fn from_side(t: &crate::flow::TcpSide, start: Micros) -> TcpFacts {
        let r = |m: Option<Micros>| m.map(|m| rel(m, start));
        TcpFacts {
            fin: r(t.first_fin),
            rst: r(t.first_rst),
            retransmissions: t.retransmissions,
            first_retransmission: r(t.first_retransmission),
            last_retransmission: r(t.last_retransmission),
            keepalives: t.keepalives,
            last_keepalive: r(t.last_keepalive),
            last_keepalive_answered: r(t.last_keepalive_answered),
            zero_windows: t.zero_windows,
            first_zero_window: r(t.first_zero_window),
            last_zero_window: r(t.last_zero_window),
            last_ack_advance: r(t.last_ack_advance),
            last_segment: r(t.last_segment),
            last_payload: r(t.last_payload),
            unacked_since: r(t.unacked_since),
            longest_stall: t
                .longest_stall
                .map(|(a, b)| (rel(a, start), b.0.saturating_sub(a.0) as f64 / 1e6)),
        }
    }
}

/// A WebSocket upgrade as seen on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Generation {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spice_session_id: Option<u64>,
    pub started_at: f64,
    /// The first close of any of its connections, when one was seen.
    pub ended_at: Option<f64>,
    pub channels: Vec<Channel>,
}

impl Generation {
    /// The first close of every connection that ended with the generation,
    /// by time. A SPICE client session lives as long as its main channel:
    /// spice-server tears the client down when main disconnects
    /// (`main_channel_client_on_disconnect` -> `reds_client_disconnect`) and
    /// drops only the channel otherwise; spicy quits on main's close only.
    /// So a channel closed while main went on carrying new bytes (HAProxy
    /// cutting idle cursor and inputs, `spicy-haproxy-idle`) was lost on its
    /// own and says nothing about how the session ended; see
    /// [`Self::lost_channels`]. A main that carried nothing after the close
    /// (a dead path, `spice-blackhole`) did not go on.
    pub fn ending_closes(&self) -> Vec<(&Channel, &Close)> {
        let main = self.main_last_payload();
        self.first_closes(|at| main.is_none_or(|m| m <= at + SAME_INSTANT))
    }

    /// Channels closed on their own while main carried on, by time.
    pub fn lost_channels(&self) -> Vec<(&Channel, &Close)> {
        let main = self.main_last_payload();
        self.first_closes(|at| main.is_some_and(|m| m > at + SAME_INSTANT))
    }

    /// The last new payload either way on main before main's own first
    /// close (a thawed client's late PONG on a closed main does not count),
    /// when there is a main.
    fn main_last_payload(&self) -> Option<f64> {
        let m = self.channels.iter().find(|c| c.name == "main")?;
        let last = super::evidence::last_payload(m);
        Some(m.closes.first().map_or(last, |x| last.min(x.at)))
    }

    fn first_closes(&self, keep: impl Fn(f64) -> bool) -> Vec<(&Channel, &Close)> {
        let mut v: Vec<_> = self
            .channels
            .iter()
            .filter_map(|c| c.closes.first().map(|x| (c, x)))
            .filter(|(_, x)| keep(x.at))
            .collect();
        v.sort_by(|a, b| a.1.at.total_cmp(&b.1.at));
        v
    }
}

/// A connection attempt that carried no session: refused with RST to the
/// SYN, never answered, or an upgrade refused by HTTP status.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Attempt {
    pub at: f64,
    pub connection: ConnectionId,
    pub client: String,
    /// `auth.refused`, `rst_to_syn`, `no_answer`, `http_<status>`.
    pub result: String,
    /// What the server said, when it said why (a login refusal's reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// What the refused connection was decoded as (`spice`, `rfb`, `ws`,
    /// or `tcp` when nothing was): a session that never came up is of this
    /// kind.
    #[serde(skip)]
    pub kind: String,
}

/// A plain HTTP connection beside the session.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Request {
    pub at: f64,
    pub connection: ConnectionId,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
}

/// All connections of one user-visible session on one clock.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Session {
    /// `spice`, `ws/rfb`, `ws`, `rfb`, ...
    pub kind: String,
    pub server: String,
    /// The client address of the session's first connection.
    pub client: String,
    /// Capture-clock time of T+0, the same for every session of an input
    /// (its first frame; a bug report's session clock zero): written once,
    /// as the triage's `start_abs`.
    #[serde(skip)]
    pub start: Micros,
    /// The session's first packet, seconds since T+0.
    pub first: f64,
    /// Seconds from the session's first packet to the last packet to its server.
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
    /// Where a model run of the session starts, T+ seconds: its first
    /// packet on a capture's clock; zero on a bug report's session clock,
    /// which starts with the client's session, before its first packet.
    #[serde(skip)]
    pub model_zero: f64,
}

impl Session {
    /// The application's stack without TLS (`tls/spice` is `spice`,
    /// `rfb/vencrypt-tls/rfb` is `rfb`): TLS changes what the wire shows,
    /// not the peers' behaviour the rules read.
    pub fn app_kind(&self) -> String {
        let mut layers: Vec<&str> = self
            .kind
            .split('/')
            .filter(|l| !matches!(*l, "tls" | "vencrypt-tls"))
            .collect();
        layers.dedup();
        layers.join("/")
    }

    /// The session's last packet, seconds since T+0.
    pub fn end(&self) -> f64 {
        self.first + self.duration
    }

    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.generations.iter().flat_map(|g| g.channels.iter())
    }

    /// The session's own last packet (a close, the last byte either way,
    /// a failed attempt), T+ seconds; `end` is its endpoint's.
    pub fn last_seen(&self) -> f64 {
        self.channels()
            .flat_map(|c| {
                let last_close = c.closes.iter().map(|x| x.at).fold(f64::MIN, f64::max);
                [c.last_c2s, c.last_s2c, Some(last_close)]
            })
            .flatten()
            .chain(self.attempts.iter().map(|a| a.at))
            .chain(self.requests.iter().map(|r| r.at))
            .fold(self.first, f64::max)
    }

    /// Client ports of every connection of the session, attempts included.
    pub fn client_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.channels()
            .map(|c| c.client.as_str())
            .chain(self.attempts.iter().map(|a| a.client.as_str()))
            .filter_map(|c| c.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.port())
    }
}

/// Buckets of a picture's density lanes, over T+0 to the capture's end.
pub const DENSITY_BUCKETS: usize = 200;

/// A close the sender's application said: a WebSocket close, SPICE's
/// DISCONNECTING, TLS's close_notify or an alert. A killed process's kernel
/// only closes the socket (FIN), so none of these comes from one.
pub fn is_goodbye(how: &str) -> bool {
    how == "ws_close" || how.contains("disconnecting") || how.starts_with("tls_")
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

fn upgrade_of(req: &Event, status: Option<u16>, start: Micros) -> Upgrade {
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
    let credential = credential_of(query.as_deref(), protocols.as_deref());
    let credential_expires_at = credential
        .as_deref()
        .and_then(credential_expiry)
        .map(|exp| exp - start.as_secs_f64());
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    Upgrade {
        at: rel(req.at, start),
        target,
        status,
        credential,
        credential_expires_at,
    }
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

/// Bytes by time at a resolution that adapts to the connection's length:
/// a fixed number of buckets from its first byte, each doubling in width
/// when the connection outlasts them. Bounded per connection however long
/// it runs; drawn onto the picture's grid by [`Density::rebin`].
#[derive(Clone, Debug, Default)]
pub struct Density {
    from: Option<Micros>,
    /// Bucket width, microseconds (a power of two).
    width: u64,
    /// Bytes, saturating: a picture's log scale needs no more.
    buckets: Vec<u32>,
}

impl Density {
    const BUCKETS: usize = 128;

    fn add(&mut self, at: Micros, bytes: u64) {
        let from = *self.from.get_or_insert(at);
        if self.width == 0 {
            self.width = 1024;
        }
        let mut i = at.saturating_sub(from).0 / self.width;
        while i >= Self::BUCKETS as u64 {
            for k in 0..Self::BUCKETS / 2 {
                let pair = self
                    .buckets
                    .get(2 * k)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(self.buckets.get(2 * k + 1).copied().unwrap_or(0));
                if k < self.buckets.len() {
                    self.buckets[k] = pair;
                }
            }
            self.buckets.truncate(self.buckets.len().div_ceil(2));
            self.width *= 2;
            i = at.saturating_sub(from).0 / self.width;
        }
        let i = i as usize;
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.buckets[i] = self.buckets[i].saturating_add(bytes);
    }

    /// Both densities in one: `other`'s buckets are added at their starts.
    fn merge(self, other: &Density) -> Density {
        let (mut base, more) = match (self.from, other.from) {
            (Some(a), Some(b)) if b < a => (other.clone(), &self),
            (None, _) => return other.clone(),
            _ => (self.clone(), other),
        };
        if let Some(from) = more.from {
            for (i, &bytes) in more.buckets.iter().enumerate() {
                let at = (i as u64).saturating_mul(more.width).saturating_add(from.0);
                base.add(Micros(at), u64::from(bytes));
            }
        }
        base
    }

    /// The bytes on `n` buckets of `bucket` seconds from `origin` (T+0),
    /// each of this connection's buckets shared by overlap.
    pub fn rebin(&self, origin: Micros, bucket: f64, n: usize) -> Vec<u64> {
        let mut out = vec![0u64; n];
        let Some(from) = self.from.filter(|_| n > 0) else {
            return out;
        };
        let width = self.width as f64 / 1e6;
        let base = rel(from, origin);
        for (i, bytes) in self.buckets.iter().enumerate().filter(|(_, b)| **b > 0) {
            let bytes = u64::from(*bytes);
            let (t0, t1) = (base + i as f64 * width, base + (i + 1) as f64 * width);
            let first = ((t0 / bucket) as usize).min(n - 1);
            let last = ((t1 / bucket) as usize).min(n - 1);
            if first == last {
                out[first] += bytes;
                continue;
            }
            for (k, slot) in out.iter_mut().enumerate().take(last + 1).skip(first) {
                let lo = t0.max(k as f64 * bucket);
                let hi = t1.min((k + 1) as f64 * bucket);
                *slot += (bytes as f64 * ((hi - lo).max(0.0) / width)).round() as u64;
            }
        }
        out
    }
}

/// What triage keeps of one connection's events, folded as they are
/// decoded: times stay on the capture's clock until [`ChannelFold::finish`]
/// puts them on T+0, when the flow's own facts are known too.
#[derive(Clone, Debug, Default)]
pub struct ChannelFold {
    /// Pings and pongs: when, and which (an index of [`Mark::KINDS`]).
    marks: Vec<(Micros, u8)>,
    /// Each ping and the last message its receiver had sent by then.
    peer_last_before_ping: Vec<(Micros, Option<Micros>)>,
    closes: Vec<(Micros, Direction, String, Option<u16>)>,
    last: [Option<Micros>; 2],
    /// Wire bytes per protocol layer, each way, and their density: which
    /// layer is the outer one is known once the connection's stack is.
    bytes: Vec<(&'static str, [u64; 2], Density)>,
    /// Server messages: the first, and the longest gap between two.
    first_s2c: Option<Micros>,
    last_s2c: Option<Micros>,
    longest_s2c_gap: Option<(Micros, Micros)>,
    ack_window: Option<u32>,
    unacked: u64,
    unacked_peak: Option<(Micros, u64)>,
    auth_refused: Option<String>,
    upgrade_request: Option<Event>,
    upgrade_status: Option<Option<u16>>,
}

impl crate::decode::pipeline::EventFold for ChannelFold {
    fn event(&mut self, e: &Event) {
        self.fold(e);
    }

    fn finish(self: Box<Self>) -> crate::decode::pipeline::Folded {
        crate::decode::pipeline::Folded::new(*self)
    }
}

impl ChannelFold {
    /// A fold per connection, for [`crate::decode::pipeline::DecodeOptions::fold`].
    pub fn maker() -> crate::decode::pipeline::FoldWith {
        crate::decode::pipeline::FoldWith(std::sync::Arc::new(|| {
            Box::new(ChannelFold::default()) as Box<dyn crate::decode::pipeline::EventFold>
        }))
    }

    fn of_events(events: &[Event]) -> ChannelFold {
        let mut f = ChannelFold::default();
        for e in events {
            f.fold(e);
        }
        f
    }

    pub fn fold(&mut self, e: &Event) {
        if let EventKind::Message {
            name,
            protocol: "ws",
            ..
        } = &e.kind
        {
            if name == "upgrade_request" && self.upgrade_request.is_none() {
                self.upgrade_request = Some(e.clone());
            }
            if name == "upgrade_response" && self.upgrade_status.is_none() {
                self.upgrade_status = Some(
                    detail(e, "status")
                        .and_then(|v| v.as_u64())
                        .and_then(|s| u16::try_from(s).ok()),
                );
            }
        }
        let Some(dir) = e.direction else { return };
        match &e.kind {
            EventKind::Message {
                len,
                protocol,
                name,
                ..
            } => self.message(e, dir, protocol, name, *len),
            EventKind::Ping { .. } => {
                self.marks.push((e.at, dir.index() as u8));
                let receiver = 1 - dir.index();
                self.peer_last_before_ping.push((e.at, self.last[receiver]));
            }
            EventKind::Pong { .. } => self.marks.push((e.at, 2 + dir.index() as u8)),
            EventKind::Close(kind) => {
                let (how, code) = match kind {
                    CloseKind::Fin => ("fin".to_string(), None),
                    CloseKind::Rst => ("rst".to_string(), None),
                    CloseKind::WsClose { code, .. } => ("ws_close".to_string(), *code),
                    CloseKind::Protocol { name } => (name.to_lowercase(), None),
                    CloseKind::EndOfCapture => return,
                };
                if !self.closes.iter().any(|x| x.1 == dir && x.2 == how) {
                    self.closes.push((e.at, dir, how, code));
                }
            }
            _ => {}
        }
    }

    fn message(&mut self, e: &Event, dir: Direction, protocol: &'static str, name: &str, len: u64) {
        let at = e.at;
        if dir == Direction::ServerToClient && self.auth_refused.is_none() {
            self.auth_refused = login_refusal(e, name);
        }
        if protocol == "spice" {
            match (dir, name) {
                (Direction::ServerToClient, "SPICE_MSG_SET_ACK") => {
                    self.ack_window = detail(e, "window")
                        .and_then(|v| v.as_u64())
                        .and_then(|w| u32::try_from(w).ok())
                        .filter(|w| *w > 0);
                    self.unacked = 0;
                }
                (Direction::ClientToServer, "SPICE_MSGC_ACK") => self.unacked = 0,
                (Direction::ServerToClient, _) if self.ack_window.is_some() => {
                    self.unacked += 1;
                    if self.unacked_peak.is_none_or(|(_, n)| self.unacked > n) {
                        self.unacked_peak = Some((at, self.unacked));
                    }
                }
                _ => {}
            }
        }
        let layer = match self.bytes.iter().position(|(p, _, _)| *p == protocol) {
            Some(i) => i,
            None => {
                self.bytes.push((protocol, [0; 2], Density::default()));
                self.bytes.len() - 1
            }
        };
        self.bytes[layer].1[dir.index()] += len;
        self.bytes[layer].2.add(at, len);
        if dir == Direction::ServerToClient {
            if let Some(prev) = self.last_s2c {
                let gap = at.saturating_sub(prev);
                if self.longest_s2c_gap.is_none_or(|(g, _)| gap > g) {
                    self.longest_s2c_gap = Some((gap, prev));
                }
            }
            self.first_s2c.get_or_insert(at);
            self.last_s2c = Some(at);
        }
        self.last[dir.index()] = Some(at);
    }
}

/// The channel a connection was: its fold put on T+0 (`start`) with the
/// flow's own facts; `end` is the capture's last frame.
fn build_channel(
    flow: &ConnSummary,
    report: Option<&ConnectionReport>,
    fold: Option<ChannelFold>,
    start: Micros,
    end: Micros,
) -> Channel {
    // Without decoded events (opaque protocols), the flow's span stands in.
    let no_events =
        fold.is_none() && report.is_none_or(|r| r.folded.is_none() && r.events.is_empty());
    let fold = fold
        .or_else(|| {
            report
                .and_then(|r| r.folded.as_ref()?.get::<ChannelFold>())
                .cloned()
        })
        .unwrap_or_else(|| ChannelFold::of_events(report.map_or(&[], |r| &r.events)));
    let fold = &fold;
    let opened_at = rel(flow.start, start);
    let mut closes: Vec<Close> = fold
        .closes
        .iter()
        .map(|(at, dir, how, code)| Close {
            at: rel(*at, start),
            by: dir.sender(),
            how: how.clone(),
            code: *code,
        })
        .collect();
    let mut last = fold.last.map(|t| t.map(|t| rel(t, start)));
    // WebSocket frames also appear as their inner protocol's messages;
    // count wire bytes once, at the outer layer.
    let outer = report
        .filter(|r| r.stack.len() > 2)
        .and_then(|r| r.stack.get(1).copied());
    let mut bytes = [0u64; 2];
    let mut density = Density::default();
    for (p, b, d) in &fold.bytes {
        if outer.is_none_or(|o| o == *p) {
            bytes = [bytes[0] + b[0], bytes[1] + b[1]];
            density = density.merge(d);
        }
    }
    if no_events {
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
    let longest = longest_s2c_silence(fold, opened_at, end_at, start);
    let server_closed_at = [flow.tcp[1].first_fin, flow.tcp[1].first_rst]
        .into_iter()
        .flatten()
        .min()
        .map(|m| rel(m, start));
    let mut marks: Vec<Mark> = fold
        .marks
        .iter()
        .map(|&(at, kind)| Mark {
            at: rel(at, start),
            kind,
        })
        .collect();
    let (outstanding, last_pong_c2s) = unanswered(&marks, server_closed_at);
    let count = |dir: &str, what: &str| {
        marks
            .iter()
            .filter(|m| m.dir() == dir && m.what() == what)
            .count() as u64
    };
    let (pings, pongs) = (
        [count("c2s", "ping"), count("s2c", "ping")],
        [count("c2s", "pong"), count("s2c", "pong")],
    );
    let upgrade = fold
        .upgrade_request
        .as_ref()
        .map(|req| upgrade_of(req, fold.upgrade_status.flatten(), start));
    if let Some(u) = &upgrade {
        let kind = if u.status.is_some_and(|s| s != 101) {
            Mark::REFUSED
        } else {
            Mark::UPGRADE
        };
        marks.push(Mark { at: u.at, kind });
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
        ack_window: fold.ack_window,
        unacked_peak: fold.unacked_peak.map(|(at, n)| (rel(at, start), n)),
        marks,
        peer_last_before_ping: fold
            .peer_last_before_ping
            .iter()
            .map(|&(at, last)| (rel(at, start), last.map(|l| rel(l, start))))
            .collect(),
        auth_refused: fold.auth_refused.clone(),
        tcp: [
            TcpFacts::from_side(&flow.tcp[0], start),
            TcpFacts::from_side(&flow.tcp[1], start),
        ],
    }
}

/// The longest time nothing came from the server while the connection was
/// open (until `end_at`, its first close or the capture's end), and when it
/// began: before the first server message, between two, or after the last.
fn longest_s2c_silence(
    fold: &ChannelFold,
    opened_at: f64,
    end_at: f64,
    start: Micros,
) -> (f64, Option<f64>) {
    let mut longest = (0.0f64, None::<f64>);
    let mut consider = |from: f64, to: f64| {
        if to - from > longest.0 {
            longest = (to - from, Some(from));
        }
    };
    if let Some(first) = fold.first_s2c {
        consider(opened_at, rel(first, start));
    }
    if let Some((gap, from)) = fold.longest_s2c_gap {
        consider(rel(from, start), rel(Micros(from.0 + gap.0), start));
    }
    consider(fold.last_s2c.map_or(opened_at, |t| rel(t, start)), end_at);
    longest
}

/// Server pings the client never answered, and the client's last pong: a
/// pong answers every ping before it (SPICE sends pairs; WebSocket may
/// coalesce), unless the server had already closed: a thawed client
/// answering a dead connection.
fn unanswered(marks: &[Mark], server_closed_at: Option<f64>) -> (Vec<f64>, Option<f64>) {
    let mut outstanding = Vec::new();
    let mut last_pong_c2s = None;
    for m in marks {
        match (m.dir(), m.what()) {
            ("s2c", "ping") => outstanding.push(m.at),
            ("c2s", "pong") if server_closed_at.is_none_or(|c| m.at < c) => {
                last_pong_c2s = Some(m.at);
                outstanding.clear();
            }
            _ => {}
        }
    }
    (outstanding, last_pong_c2s)
}

/// A refused login, as the protocol says it: SPICE's link result or link
/// reply error (spice-protocol `SpiceLinkErr`, e.g. PERMISSION_DENIED for a
/// wrong ticket) and RFB's failed SecurityResult with its reason string
/// (RFC 6143 §7.1.3).
fn login_refusal(e: &Event, name: &str) -> Option<String> {
    match name {
        "SPICE_LINK_RESULT" | "SPICE_LINK_REPLY" => {
            let code = detail(e, "result")
                .or_else(|| detail(e, "error"))
                .and_then(|v| v.as_u64())?;
            (code != 0).then(|| {
                detail(e, "name")
                    .and_then(|v| v.as_str())
                    .map_or_else(|| format!("SPICE link error {code}"), |n| n.to_string())
            })
        }
        "SecurityResult" => {
            let ok = detail(e, "ok").and_then(|v| v.as_bool())?;
            (!ok).then(|| {
                detail(e, "reason").and_then(|v| v.as_str()).map_or_else(
                    || "SecurityResult failed".to_string(),
                    |r| format!("SecurityResult failed: \"{r}\""),
                )
            })
        }
        _ => None,
    }
}

/// How long a SYN goes unanswered before its client retransmits it: the
/// initial retransmission timeout (RFC 6298 §2.1, Linux `TCP_TIMEOUT_INIT`).
/// A SYN the capture ends sooner after has not been refused yet.
const SYN_RTO: Micros = Micros(1_000_000);

/// A connection that carried no session: nothing but a handshake or a
/// refusal, and how; `end` is its endpoint's last frame.
fn refused(flow: &ConnSummary, ch: &Channel, end: Micros) -> Option<String> {
    if ch.auth_refused.is_some() {
        return Some("auth.refused".into());
    }
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
            (OpenKind::Syn, EndKind::Open)
                if end.saturating_sub(flow.start) >= SYN_RTO || flow.c2s.segments > 1 =>
            {
                "no_answer".into()
            }
            _ => "no_data".into(),
        });
    }
    None
}

/// Groups a decoded capture (kept events) into sessions, one per client,
/// most recent activity last; relay legs are linked to the session they
/// serve. Every time is seconds since `origin` (T+0): the capture's first
/// frame, or zero for a ryll ring, which is stamped with the session clock
/// (`session_clock`).
pub fn sessions(report: &mut DecodeReport, origin: Micros, session_clock: bool) -> Vec<Session> {
    sessions_ending(report, origin, session_clock, &BTreeMap::new())
}

/// [`sessions`] of part of a capture: an endpoint's last frame is at
/// least `ends` says (its connections already diagnosed and let go of
/// ended then).
pub fn sessions_ending(
    report: &mut DecodeReport,
    origin: Micros,
    session_clock: bool,
    ends: &BTreeMap<String, Micros>,
) -> Vec<Session> {
    // Each fold is taken as its channel is built: what triage keeps of a
    // connection is never held twice.
    let mut folds: BTreeMap<ConnectionId, ChannelFold> = report
        .connections
        .iter_mut()
        .filter_map(|c| Some((c.connection, c.folded.take()?.into_inner()?)))
        .collect();
    let report = &*report;
    let by_id: BTreeMap<ConnectionId, &ConnectionReport> = report
        .connections
        .iter()
        .map(|c| (c.connection, c))
        .collect();
    let mut groups: BTreeMap<String, Vec<&ConnSummary>> = BTreeMap::new();
    for f in &report.flows {
        groups.entry(f.server.to_string()).or_default().push(f);
    }
    let mut out = Vec::new();
    for (server, mut flows) in groups {
        flows.sort_by_key(|f| (f.start, f.id));
        let group_start = flows.first().map_or(Micros::ZERO, |f| f.start);
        let end = flows
            .iter()
            .map(|f| f.last)
            .chain(ends.get(&server).copied())
            .max()
            .unwrap_or(group_start);
        for visit in client_visits(&flows) {
            let parts = endpoint_parts(&visit, &by_id, &mut folds, origin, end);
            for lane in split_by_client(parts) {
                let mut s = lane.into_session(&server, origin, end);
                s.model_zero = if session_clock { 0.0 } else { s.first };
                out.push(s);
            }
        }
    }
    link_relays(&mut out);
    fold_refused_relay_generations(&mut out);
    // Client-facing sessions first, each group by start; relay links follow
    // their sessions to the new positions.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| {
        (
            out[i].relay_of.is_some(),
            Micros::from_secs_f64(out[i].first),
            out[i].client.clone(),
        )
    });
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

/// How long a client host may be gone from a server, with none of its
/// connections to it left open, and still come back in the same session:
/// past it, it is a new visit. Longer than any reconnect back-off of the
/// clients modelled (seconds to tens of seconds: noVNC's and the runner's
/// `reconnect_delay`, spice-gtk's none) by an order of magnitude; short
/// enough that a server capture's sessions can be diagnosed and let go of
/// while it is still read (see [`super::stream`]).
pub const RECONNECT_HORIZON: Micros = Micros(600_000_000);

/// Whether `next` starts a new visit of its client host after `visit`
/// (that host's connections to one endpoint so far): every one of them
/// closed or given up by its TCP ([`crate::flow::abandoned`]), and the host
/// gone longer than [`RECONNECT_HORIZON`].
pub fn starts_new_visit<'a>(
    visit: impl IntoIterator<Item = &'a ConnSummary>,
    next_start: Micros,
) -> bool {
    let mut last = None::<Micros>;
    for f in visit {
        if f.end == EndKind::Open && !crate::flow::abandoned(f) {
            return false;
        }
        last = last.max(Some(f.last));
    }
    last.is_some_and(|l| next_start.0 > l.0.saturating_add(RECONNECT_HORIZON.0))
}

/// An endpoint's connections (in start order) as visits: one client
/// host's connections, split where [`starts_new_visit`]. A client's
/// session never spans two, so each is split into sessions on its own,
/// and a visit can be diagnosed once it is over, without the rest of the
/// capture.
fn client_visits<'a>(flows: &[&'a ConnSummary]) -> Vec<Vec<&'a ConnSummary>> {
    let mut visits: Vec<Vec<&ConnSummary>> = Vec::new();
    let mut current: BTreeMap<std::net::IpAddr, usize> = BTreeMap::new();
    for f in flows {
        let host = f.client.ip();
        let i = match current.get(&host) {
            Some(&i) if !starts_new_visit(visits[i].iter().copied(), f.start) => i,
            _ => {
                visits.push(Vec::new());
                current.insert(host, visits.len() - 1);
                visits.len() - 1
            }
        };
        visits[i].push(f);
    }
    visits
}

/// What one server endpoint's connections are, before they are split by
/// client: generations (times since T+0), failed attempts and side
/// requests.
struct EndpointParts {
    gens: Vec<Generation>,
    attempts: Vec<Attempt>,
    requests: Vec<Request>,
    kinds: BTreeMap<String, usize>,
}

fn endpoint_parts(
    flows: &[&ConnSummary],
    by_id: &BTreeMap<ConnectionId, &ConnectionReport>,
    folds: &mut BTreeMap<ConnectionId, ChannelFold>,
    start: Micros,
    end: Micros,
) -> EndpointParts {
    let mut gens: Vec<Generation> = Vec::new();
    let mut attempts = Vec::new();
    let mut requests = Vec::new();
    let mut spice_gen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for f in flows {
        let rep = by_id.get(&f.id).copied();
        let ch = build_channel(f, rep, folds.remove(&f.id), start, end);
        if rep.is_some_and(|r| r.protocol == Protocol::Http) && ch.upgrade.is_none() {
            requests.push(Request {
                at: ch.opened_at,
                connection: f.id,
                bytes_c2s: f.c2s.bytes,
                bytes_s2c: f.s2c.bytes,
            });
            continue;
        }
        let kind = if rep.is_some_and(|r| r.protocol == Protocol::Spice) {
            "spice".to_string()
        } else {
            ch.stack.trim_start_matches("tcp/").to_string()
        };
        if let Some(result) = refused(f, &ch, end) {
            // A handshake that carried nothing either way is a browser's
            // speculative pre-connect (Chromium opens one before it knows it
            // needs it), not an attempt that failed.
            if result != "no_data" {
                attempts.push(Attempt {
                    at: ch.opened_at,
                    connection: f.id,
                    client: ch.client.clone(),
                    result,
                    detail: ch.auth_refused.clone(),
                    upgrade: ch.upgrade.clone(),
                    kind,
                });
            }
            continue;
        }
        *kinds.entry(kind).or_default() += 1;
        let sid = rep
            .and_then(|r| r.session.as_ref())
            .and_then(|s| s.session_id);
        // One client's single-stream protocol (RFB, WebSocket) has one
        // connection at a time: an overlapping one is another client. Without
        // a session id (SPICE in TLS), a connection that opens while the
        // current generation is up belongs to it.
        // (SPICE inside WebSocket is one connection per channel.)
        let single_stream = matches!(
            rep.map(|r| r.protocol),
            Some(Protocol::Rfb | Protocol::WebSocket)
        ) && !ch.stack.contains("spice");
        let overlapping = sid.is_none()
            && !single_stream
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
        let closed = g.ending_closes().first().map(|(_, x)| x.at);
        let dead = g
            .channels
            .iter()
            .filter_map(Channel::dead_path_from)
            .min_by(f64::total_cmp);
        g.ended_at = match (closed, dead) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    EndpointParts {
        gens,
        attempts,
        requests,
        kinds,
    }
}

/// One client's share of an endpoint.
struct Lane {
    /// The client host: every connection of a lane comes from it.
    host: Option<std::net::IpAddr>,
    gens: Vec<Generation>,
    attempts: Vec<Attempt>,
    requests: Vec<Request>,
    kinds: BTreeMap<String, usize>,
}

impl Lane {
    /// The lane's last generation was over by `at` (closed, or never
    /// closed but every channel quiet: then it is still up).
    fn free_at(&self, at: f64) -> bool {
        self.gens.last().is_none_or(|g| {
            g.channels
                .iter()
                .all(|c| c.closes.first().is_some_and(|x| x.at <= at))
        })
    }

    fn host(&self) -> Option<std::net::IpAddr> {
        self.host
    }

    fn ended_at(&self) -> Option<f64> {
        self.gens.last().and_then(|g| g.ended_at)
    }

    fn into_session(mut self, server: &str, origin: Micros, end: Micros) -> Session {
        let first = self
            .gens
            .iter()
            .map(|g| g.started_at)
            .chain(self.attempts.iter().map(|a| a.at))
            .chain(self.requests.iter().map(|r| r.at))
            .fold(f64::INFINITY, f64::min);
        let first = if first.is_finite() { first } else { 0.0 };
        for (i, g) in self.gens.iter_mut().enumerate() {
            g.index = i;
        }
        let client = self
            .gens
            .first()
            .and_then(|g| g.channels.first().map(|c| c.client.clone()))
            .or_else(|| self.attempts.first().map(|a| a.client.clone()))
            .unwrap_or_default();
        // A session that never came up is what its refused logins were
        // decoded as: the server's refusal named the protocol.
        let mut kinds = self.kinds;
        if kinds.is_empty() {
            for a in self.attempts.iter().filter(|a| a.kind != "tcp") {
                *kinds.entry(a.kind.clone()).or_default() += 1;
            }
        }
        let kind = kinds
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or_else(|| "tcp".to_string(), |(k, _)| k);
        // Density buckets span T+0 to the end, as the channels' do.
        let span = rel(end, origin);
        Session {
            kind,
            server: server.to_string(),
            client,
            start: origin,
            first,
            duration: (span - first).max(0.0),
            generations: self.gens,
            attempts: self.attempts,
            requests: self.requests,
            relay_of: None,
            bucket: span.max(1e-6) / DENSITY_BUCKETS as f64,
            model_zero: first,
        }
    }
}

/// Splits an endpoint's generations into one lane per client: a generation
/// that opens while every lane is still up is another client (a client has
/// one session with a server at a time); one that opens after a lane's
/// generation ended continues the lane that ended last before it (a
/// reconnect). Failed attempts go to the lane they interrupt: after its drop,
/// or before its first generation (a retry after a refused login).
fn split_by_client(p: EndpointParts) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    let new_lane = |host: Option<std::net::IpAddr>| Lane {
        host,
        gens: Vec::new(),
        attempts: Vec::new(),
        requests: Vec::new(),
        kinds: BTreeMap::new(),
    };
    let host = |c: &str| c.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
    for g in p.gens {
        let at = g.started_at;
        let from = g.channels.first().and_then(|c| host(&c.client));
        // Another host is another client, whenever it connects.
        let slot = lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.host() == from)
            .filter(|(_, l)| l.free_at(at))
            .max_by(|a, b| {
                a.1.ended_at()
                    .unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&b.1.ended_at().unwrap_or(f64::NEG_INFINITY))
            })
            .map(|(i, _)| i);
        let i = slot.unwrap_or_else(|| {
            lanes.push(new_lane(from));
            lanes.len() - 1
        });
        lanes[i].gens.push(g);
    }
    if lanes.is_empty() {
        let first = p.attempts.first().and_then(|a| host(&a.client));
        lanes.push(new_lane(first));
    }
    for a in p.attempts {
        // The lane that dropped last before the attempt, else the first
        // lane whose first generation follows it.
        let from = host(&a.client);
        let after_drop = lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.host() == from)
            .filter_map(|(i, l)| {
                let e = l
                    .gens
                    .iter()
                    .filter_map(|g| g.ended_at)
                    .filter(|e| *e <= a.at)
                    .fold(f64::NEG_INFINITY, f64::max);
                e.is_finite().then_some((i, e))
            })
            .max_by(|x, y| x.1.total_cmp(&y.1))
            .map(|(i, _)| i);
        let before_first = || {
            lanes
                .iter()
                .enumerate()
                .filter(|(_, l)| l.host() == from)
                .filter_map(|(i, l)| l.gens.first().map(|g| (i, g.started_at)))
                .filter(|(_, s)| *s >= a.at)
                .min_by(|x, y| x.1.total_cmp(&y.1))
                .map(|(i, _)| i)
        };
        let i = after_drop
            .or_else(before_first)
            .or_else(|| lanes.iter().position(|l| l.host() == from))
            .unwrap_or_else(|| {
                lanes.push(new_lane(from));
                lanes.len() - 1
            });
        lanes[i].attempts.push(a);
    }
    // Side requests (token fetches) belong to the lane active around them.
    for r in p.requests {
        let i = lanes
            .iter()
            .position(|l| {
                l.gens.first().is_some_and(|g| g.started_at >= r.at - 5.0)
                    || l.gens
                        .iter()
                        .any(|g| g.started_at <= r.at && g.ended_at.is_none_or(|e| e >= r.at))
            })
            .unwrap_or(0);
        lanes[i].requests.push(r);
    }
    for l in &mut lanes {
        l.kinds = p.kinds.clone();
        l.attempts.sort_by(|a, b| a.at.total_cmp(&b.at));
    }
    lanes
}

/// A WebSocket generation whose relay was refused upstream (RST to the
/// relay's SYN within a second of the upgrade) and that closed within two
/// seconds never carried the session: websockify accepts the upgrade, then
/// fails to reach its target. It is a failed attempt with the upstream's
/// refusal.
fn fold_refused_relay_generations(sessions: &mut [Session]) {
    let host = |a: &str| a.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
    let refusals: Vec<(f64, Option<std::net::IpAddr>, String)> = sessions
        .iter()
        .flat_map(|s| {
            s.attempts
                .iter()
                .filter(|a| a.result == "rst_to_syn")
                .map(|a| {
                    (
                        s.start.as_secs_f64() + a.at,
                        host(&a.client),
                        s.server.clone(),
                    )
                })
        })
        .collect();
    for s in sessions.iter_mut().filter(|s| s.kind.starts_with("ws")) {
        let relay_host = host(&s.server);
        let base = s.start.as_secs_f64();
        let mut kept = Vec::new();
        for g in std::mem::take(&mut s.generations) {
            let at = base + g.started_at;
            let refusal = refusals
                .iter()
                .find(|(r, h, _)| *h == relay_host && *r >= at && *r - at <= 1.0);
            let short = g.ended_at.is_some_and(|e| e - g.started_at <= 2.0);
            match (refusal, g.channels.first()) {
                (Some((_, _, upstream)), Some(c)) if short => s.attempts.push(Attempt {
                    at: g.started_at,
                    connection: c.connection,
                    client: c.client.clone(),
                    result: "rst_to_syn".into(),
                    detail: Some(format!(
                        "the relay's connect to {upstream} was refused (RST to its SYN)"
                    )),
                    upgrade: c.upgrade.clone(),
                    kind: s.kind.clone(),
                }),
                _ => kept.push(g),
            }
        }
        for (i, g) in kept.iter_mut().enumerate() {
            g.index = i;
        }
        s.generations = kept;
        s.attempts.sort_by(|a, b| a.at.total_cmp(&b.at));
    }
}

/// A session whose every generation opened within a second after a
/// generation of another session, from the host that session's server runs
/// on, and carrying the same protocol (or the inner protocol of its
/// WebSocket) is that session's upstream leg: a relay (websockify, HAProxy)
/// dials the target per client. The closest such session in time wins, so a
/// chain of relays links leg to leg.
fn link_relays(sessions: &mut [Session]) {
    let host = |a: &str| a.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
    // Read once: a server capture pairs thousands of sessions.
    let kinds: Vec<String> = sessions.iter().map(Session::app_kind).collect();
    let clients: Vec<_> = sessions.iter().map(|s| host(&s.client)).collect();
    let servers: Vec<_> = sessions.iter().map(|s| host(&s.server)).collect();
    for i in 0..sessions.len() {
        if sessions[i].generations.is_empty() {
            continue;
        }
        let mut best: Option<(usize, f64)> = None;
        for j in 0..sessions.len() {
            // Clients of one endpoint are lanes of one server, not a relay.
            if i == j
                || sessions[j].generations.is_empty()
                || clients[i] != servers[j]
                || sessions[i].server == sessions[j].server
            {
                continue;
            }
            // A relay (websockify, wss included) carries what it was given.
            let (leg, front) = (&kinds[i], &kinds[j]);
            let carries = leg == front || front.strip_prefix("ws/") == Some(leg.as_str());
            if !carries {
                continue;
            }
            let mut worst = 0.0f64;
            let fits = sessions[i].generations.iter().all(|g| {
                let at = sessions[i].start.as_secs_f64() + g.started_at;
                let lag = sessions[j]
                    .generations
                    .iter()
                    .map(|h| at - (sessions[j].start.as_secs_f64() + h.started_at))
                    .filter(|d| *d > 0.0 && *d <= 1.0)
                    .fold(f64::INFINITY, f64::min);
                worst = worst.max(lag);
                lag.is_finite()
            });
            if fits && best.is_none_or(|(_, b)| worst < b) {
                best = Some((j, worst));
            }
        }
        sessions[i].relay_of = best.map(|(j, _)| j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{DirStats, TcpSide};

    fn syn_only(segments: u64) -> ConnSummary {
        ConnSummary {
            id: ConnectionId(0),
            client: "10.0.0.1:40000".parse().unwrap(),
            server: "10.0.9.9:5930".parse().unwrap(),
            opened: OpenKind::Syn,
            start: Micros(10_000_000),
            last: Micros(10_000_000),
            first_frame: 1,
            c2s: DirStats {
                segments,
                ..DirStats::default()
            },
            s2c: DirStats::default(),
            end: EndKind::Open,
            closed_by: None,
            tcp: [TcpSide::default(); 2],
        }
    }

    #[test]
    fn an_unanswered_syn_fails_only_once_its_client_could_have_retried() {
        let refused_at = |f: &ConnSummary, end: u64| {
            let ch = build_channel(f, None, None, Micros::ZERO, Micros(end));
            refused(f, &ch, Micros(end))
        };
        let once = syn_only(1);
        // The capture ends half a second after the SYN: nothing is known yet.
        assert_eq!(refused_at(&once, 10_500_000).as_deref(), Some("no_data"));
        // A second later the client would have retransmitted: no answer.
        assert_eq!(refused_at(&once, 11_000_000).as_deref(), Some("no_answer"));
        // A retransmitted SYN says so whenever the capture ends.
        assert_eq!(
            refused_at(&syn_only(2), 10_500_000).as_deref(),
            Some("no_answer")
        );
    }
}
