//! What the live proxy saw and did, per connection, and the verdict it
//! draws from that: the fault that ended a connection by name (in the one
//! cause vocabulary, `verdict::cause`), and what each side saw. Sans-IO: every call
//! carries its time, in [`Micros`] since the proxy started.

use super::faults::FaultPlan;
use super::recorder::RecId;
use crate::model::duration::format_duration;
use crate::timeline::{Direction, Micros};
use crate::verdict::Outcome;
use serde::Serialize;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The causes of faults the proxy carries out: a connection that ended by
/// one heads the verdict.
pub const FAULT_CAUSES: &[&str] = &[
    "lb.idle_timeout",
    "network.outage",
    "relay.killed",
    "relay.ws_data_dropped",
    "relay.ws_control_dropped",
];

/// How a connection's end is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The proxy did it (an injected fault) or a peer did it on the wire.
    Observed,
    /// A peer closed while a fault was in force: the fault is the likely
    /// reason, but the peer's own timer is not visible from here.
    Inferred,
}

/// A fault the proxy carried out on one connection.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Fired {
    pub cause: &'static str,
    pub at: f64,
    pub detail: String,
    /// Whether this action ended the connection.
    pub ended: bool,
}

/// One thing a side of the connection experienced, at a time.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Saw {
    pub at: f64,
    pub what: String,
}

#[derive(Clone, Debug)]
struct Watch {
    id: RecId,
    client: SocketAddr,
    server: SocketAddr,
    opened: Micros,
    /// Last data read from each sender, by [`Direction::index`].
    heard: [Option<Micros>; 2],
    bytes: [u64; 2],
    client_saw: Vec<Saw>,
    server_saw: Vec<Saw>,
    /// The first close: time, sending side, FIN or RST, by a peer (not the proxy).
    peer_close: Option<(Micros, Direction, &'static str)>,
    fired: Vec<Fired>,
    ended: Option<Micros>,
    stack: Vec<&'static str>,
    findings: u64,
}

/// The verdict on one connection.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ConnVerdict {
    /// The proxy's connection number (also the recording's, in order).
    pub connection: usize,
    pub client: String,
    pub server: String,
    pub stack: String,
    pub opened_at: f64,
    pub outcome: Outcome,
    pub at: Option<f64>,
    pub cause: Option<String>,
    pub basis: Basis,
    pub why: String,
    pub last_heard_c2s: Option<f64>,
    pub last_heard_s2c: Option<f64>,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    pub faults: Vec<Fired>,
    pub client_saw: Vec<Saw>,
    pub server_saw: Vec<Saw>,
    pub findings: u64,
}

/// The verdict of a whole live run.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LiveVerdict {
    pub outcome: Outcome,
    pub at: Option<f64>,
    pub cause: Option<String>,
    /// The connection the headline is about.
    pub connection: Option<usize>,
    pub basis: Basis,
    pub ran_for: f64,
    /// Wall-clock seconds of T+0: the recording's timestamps are this plus T.
    pub started_at_epoch: f64,
    pub seed: u64,
    pub faults: Vec<String>,
    /// Connections refused while a refuse window was in force.
    pub refused_windows: Vec<String>,
    /// Clients the proxy reset because it could not reach the upstream.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream_unreachable: Vec<Unreachable>,
    pub connections: Vec<ConnVerdict>,
}

/// A client the proxy accepted but could not connect to the upstream.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Unreachable {
    pub at: f64,
    pub client: String,
    pub error: String,
}

fn t(m: Micros) -> f64 {
    m.as_secs_f64()
}

fn fmt_t(m: Micros) -> String {
    crate::verdict::t_plus(m.as_secs_f64())
}

fn side(dir: Direction) -> &'static str {
    match dir {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    }
}

#[derive(Default)]
pub struct Monitor {
    watches: Vec<Watch>,
    refused_windows: Vec<String>,
    unreachable: Vec<Unreachable>,
}

impl Monitor {
    fn w(&mut self, id: RecId) -> Option<&mut Watch> {
        self.watches.iter_mut().find(|w| w.id == id)
    }

    pub fn opened(&mut self, id: RecId, at: Micros, client: SocketAddr, server: SocketAddr) {
        self.watches.push(Watch {
            id,
            client,
            server,
            opened: at,
            heard: [None, None],
            bytes: [0, 0],
            client_saw: Vec::new(),
            server_saw: Vec::new(),
            peer_close: None,
            fired: Vec::new(),
            ended: None,
            stack: vec!["tcp"],
            findings: 0,
        });
    }

    /// `n` bytes arrived from the `dir` sender.
    pub fn heard(&mut self, id: RecId, at: Micros, dir: Direction, n: usize) {
        if let Some(w) = self.w(id) {
            w.heard[dir.index()] = Some(at);
            w.bytes[dir.index()] += n as u64;
        }
    }

    pub fn set_stack(&mut self, id: RecId, stack: Vec<&'static str>) {
        if let Some(w) = self.w(id) {
            w.stack = stack;
        }
    }

    pub fn finding(&mut self, id: RecId) {
        if let Some(w) = self.w(id) {
            w.findings += 1;
        }
    }

    /// The proxy heard the `dir` sender, a real peer, close with `how`
    /// ("FIN" or "RST"). When the other side got it is a [`Monitor::saw`].
    pub fn peer_closed(&mut self, id: RecId, at: Micros, dir: Direction, how: &'static str) {
        if let Some(w) = self.w(id) {
            w.peer_close.get_or_insert((at, dir, how));
        }
    }

    /// The proxy carried out a fault on this connection.
    pub fn fired(
        &mut self,
        id: RecId,
        at: Micros,
        cause: &'static str,
        detail: String,
        ended: bool,
    ) {
        if let Some(w) = self.w(id) {
            w.fired.push(Fired {
                cause,
                at: t(at),
                detail,
                ended,
            });
        }
    }

    /// Something one side experienced because of the proxy.
    pub fn saw(&mut self, id: RecId, at: Micros, client_side: bool, what: String) {
        if let Some(w) = self.w(id) {
            let saw = Saw { at: t(at), what };
            if client_side {
                w.client_saw.push(saw);
            } else {
                w.server_saw.push(saw);
            }
        }
    }

    pub fn ended(&mut self, id: RecId, at: Micros) {
        if let Some(w) = self.w(id) {
            w.ended.get_or_insert(at);
        }
    }

    pub fn refused_window(&mut self, what: String) {
        self.refused_windows.push(what);
    }

    /// A client that could not be forwarded: the upstream refused or
    /// never answered the proxy's connect.
    pub fn upstream_unreachable(&mut self, at: Micros, client: String, error: String) {
        self.unreachable.push(Unreachable {
            at: t(at),
            client,
            error,
        });
    }

    pub fn open_connections(&self) -> usize {
        self.watches.iter().filter(|w| w.ended.is_none()).count()
    }

    /// One status line per open connection: stack, last heard each way,
    /// and the timers armed on it (the proxy's faults and, when a profile
    /// was given, its timers counted from the last data).
    pub fn status(
        &self,
        now: Micros,
        plan: &FaultPlan,
        profile_timers: &[(String, Micros)],
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for w in self.watches.iter().filter(|w| w.ended.is_none()) {
            let ago = |h: Option<Micros>| {
                h.map_or("never".to_string(), |h| {
                    format!("{:.1}s ago", now.saturating_sub(h).as_secs_f64())
                })
            };
            let mut s = format!(
                "{} #{} {} {}→{} heard c→s {}, s→c {}",
                fmt_t(now),
                w.id.0,
                w.stack.join("/"),
                w.client,
                w.server,
                ago(w.heard[0]),
                ago(w.heard[1]),
            );
            let last_data = w.heard[0].max(w.heard[1]).unwrap_or(w.opened).max(w.opened);
            let mut timers = Vec::new();
            if w.fired.iter().any(|f| f.cause == "lb.idle_timeout") {
                timers.push("idle drop fired".to_string());
            } else if let Some((d, _)) = plan.idle {
                let due = Micros(last_data.0 + d.0);
                timers.push(format!(
                    "idle_drop in {:.1}s",
                    due.saturating_sub(now).as_secs_f64()
                ));
            }
            if let Some(b) = plan.blackhole_at(now) {
                let end = b.next_edge(now).map_or("end".into(), |e| {
                    format!("{:.1}s", e.saturating_sub(now).as_secs_f64())
                });
                timers.push(format!("BLACKHOLE on (ends in {end})"));
            } else if let Some(e) = plan
                .blackholes
                .iter()
                .filter_map(|b| b.next_edge(now))
                .min()
            {
                timers.push(format!(
                    "blackhole in {:.1}s",
                    e.saturating_sub(now).as_secs_f64()
                ));
            }
            if let Some((at, _)) = plan.next_kill(now) {
                timers.push(format!(
                    "kill in {:.1}s",
                    at.saturating_sub(now).as_secs_f64()
                ));
            }
            if let Some(m) = plan.ws_at(now) {
                timers.push(format!("ws filter {m:?}"));
            }
            for (name, d) in profile_timers {
                let due = Micros(last_data.0 + d.0);
                if due > now {
                    timers.push(format!(
                        "{name} in {:.1}s",
                        due.saturating_sub(now).as_secs_f64()
                    ));
                } else {
                    timers.push(format!(
                        "{name} due {:.1}s ago",
                        now.saturating_sub(due).as_secs_f64()
                    ));
                }
            }
            if !timers.is_empty() {
                s.push_str(" | ");
                s.push_str(&timers.join(", "));
            }
            lines.push(s);
        }
        lines
    }

    fn conn_verdict(&self, w: &Watch, plan: &FaultPlan) -> ConnVerdict {
        let ending = w.fired.iter().find(|f| f.ended);
        let conditions: Vec<&Fired> = w.fired.iter().filter(|f| !f.ended).collect();
        let (outcome, at, cause, basis, why) = if let Some(f) = ending {
            (
                Outcome::Disconnected,
                Some(f.at),
                Some(f.cause.to_string()),
                Basis::Observed,
                format!("the proxy {} at T+{:.3}", f.detail, f.at),
            )
        } else if let Some((at, dir, how)) = w.peer_close {
            let by = side(dir);
            let in_blackhole = plan.blackhole_at(at);
            let condition = conditions.last();
            if let Some(b) = in_blackhole {
                (
                    Outcome::Disconnected,
                    Some(t(at)),
                    Some("network.outage".to_string()),
                    Basis::Inferred,
                    format!(
                        "the {by} closed ({how}) at {} while the proxy blackholed the path ({}); \
                         its own liveness timer most likely fired (not visible from here)",
                        fmt_t(at),
                        b.describe()
                    ),
                )
            } else if let Some(f) = condition {
                (
                    Outcome::Disconnected,
                    Some(t(at)),
                    Some(f.cause.to_string()),
                    Basis::Inferred,
                    format!(
                        "the {by} closed ({how}) at {} after the proxy {} (from T+{:.3})",
                        fmt_t(at),
                        f.detail,
                        f.at
                    ),
                )
            } else {
                let cause = match (dir, how) {
                    (_, "RST") => "tcp.reset",
                    (Direction::ClientToServer, _) => "client.closed",
                    (Direction::ServerToClient, _) => "tcp.fin_from_server",
                };
                (
                    Outcome::Disconnected,
                    Some(t(at)),
                    Some(cause.to_string()),
                    Basis::Observed,
                    format!("the {by} closed ({how}) at {}", fmt_t(at)),
                )
            }
        } else {
            let mut why = "open until the proxy stopped".to_string();
            for f in &conditions {
                let _ = write!(
                    why,
                    "; survived {} ({} from T+{:.3})",
                    f.cause, f.detail, f.at
                );
            }
            (Outcome::Survived, None, None, Basis::Observed, why)
        };
        ConnVerdict {
            connection: w.id.0,
            client: w.client.to_string(),
            server: w.server.to_string(),
            stack: w.stack.join("/"),
            opened_at: t(w.opened),
            outcome,
            at,
            cause,
            basis,
            why,
            last_heard_c2s: w.heard[0].map(t),
            last_heard_s2c: w.heard[1].map(t),
            bytes_c2s: w.bytes[0],
            bytes_s2c: w.bytes[1],
            faults: w.fired.clone(),
            client_saw: w.client_saw.clone(),
            server_saw: w.server_saw.clone(),
            findings: w.findings,
        }
    }

    /// The verdict: the earliest connection a fault ended (or that died
    /// while one was in force), else the earliest that closed, else survived.
    pub fn verdict(
        &self,
        start: Micros,
        ran_for: Micros,
        plan: &FaultPlan,
        seed: u64,
    ) -> LiveVerdict {
        let connections: Vec<ConnVerdict> = self
            .watches
            .iter()
            .map(|w| self.conn_verdict(w, plan))
            .collect();
        let by_time = |c: &&ConnVerdict| c.at.map(|a| (a * 1e6) as u64).unwrap_or(u64::MAX);
        let head = connections
            .iter()
            .filter(|c| {
                c.cause
                    .as_deref()
                    .is_some_and(|k| FAULT_CAUSES.contains(&k))
            })
            .min_by_key(by_time)
            .or_else(|| {
                connections
                    .iter()
                    .filter(|c| c.outcome != Outcome::Survived)
                    .min_by_key(by_time)
            });
        // No connection ended, but a client could not be forwarded at all:
        // that is a session that never came up, not a survival.
        let unreachable = self.unreachable.first().filter(|_| head.is_none());
        LiveVerdict {
            outcome: match (head, unreachable) {
                (Some(c), _) => c.outcome,
                (None, Some(_)) => Outcome::DeadSession,
                (None, None) => Outcome::Survived,
            },
            at: head.and_then(|c| c.at).or(unreachable.map(|u| u.at)),
            cause: head
                .and_then(|c| c.cause.clone())
                .or(unreachable.map(|_| "upstream.unreachable".to_string())),
            connection: head.map(|c| c.connection),
            basis: head.map_or(Basis::Observed, |c| c.basis),
            ran_for: t(ran_for),
            started_at_epoch: t(start),
            seed,
            faults: plan.describe(),
            refused_windows: self.refused_windows.clone(),
            upstream_unreachable: self.unreachable.clone(),
            connections,
        }
    }
}

impl LiveVerdict {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("verdict serialises")
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        match self.outcome {
            Outcome::Survived => {
                let _ = writeln!(s, "SURVIVED {:.3}s of proxying", self.ran_for);
            }
            o => {
                let _ = writeln!(
                    s,
                    "{} at T+{:.3}: {}{} ({})",
                    o.as_str().to_uppercase().replace('_', " "),
                    self.at.unwrap_or_default(),
                    self.cause.as_deref().unwrap_or("?"),
                    self.connection
                        .map_or(String::new(), |c| format!(" on connection #{c}")),
                    match self.basis {
                        Basis::Observed => "observed",
                        Basis::Inferred => "inferred",
                    }
                );
            }
        }
        let _ = writeln!(
            s,
            "  ran {:.3}s, seed {}, faults: {}",
            self.ran_for,
            self.seed,
            if self.faults.is_empty() {
                "none".to_string()
            } else {
                self.faults.join("; ")
            }
        );
        for r in &self.refused_windows {
            let _ = writeln!(s, "  {r}");
        }
        for u in &self.upstream_unreachable {
            let _ = writeln!(
                s,
                "  T+{:.3} {}: could not reach the upstream ({}); the client was reset",
                u.at, u.client, u.error
            );
        }
        for c in &self.connections {
            let _ = writeln!(
                s,
                "#{} {} {}→{} opened T+{:.3}: {}{} — {}",
                c.connection,
                c.stack,
                c.client,
                c.server,
                c.opened_at,
                c.outcome.as_str(),
                c.cause
                    .as_deref()
                    .map(|k| format!(" by {k}"))
                    .unwrap_or_default(),
                c.why
            );
            let heard = |h: Option<f64>| h.map_or("never".into(), |h| format!("T+{h:.3}"));
            let _ = writeln!(
                s,
                "    last heard: client {} ({} B), server {} ({} B); {} findings",
                heard(c.last_heard_c2s),
                c.bytes_c2s,
                heard(c.last_heard_s2c),
                c.bytes_s2c,
                c.findings
            );
            for x in &c.client_saw {
                let _ = writeln!(s, "    client saw: {} at T+{:.3}", x.what, x.at);
            }
            for x in &c.server_saw {
                let _ = writeln!(s, "    server saw: {} at T+{:.3}", x.what, x.at);
            }
        }
        s
    }
}

/// `60s` as the status line and verdict print durations.
pub fn dur(m: Micros) -> String {
    format_duration(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::faults::parse_window;

    fn s(n: f64) -> Micros {
        Micros::from_secs_f64(n)
    }

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn a_fault_that_ended_a_connection_heads_the_verdict() {
        let mut m = Monitor::default();
        m.opened(RecId(0), s(0.0), addr(40000), addr(5900));
        m.opened(RecId(1), s(1.0), addr(40001), addr(5900));
        m.heard(RecId(0), s(0.5), Direction::ClientToServer, 10);
        m.peer_closed(RecId(0), s(1.5), Direction::ClientToServer, "FIN");
        m.fired(
            RecId(1),
            s(3.0),
            "lb.idle_timeout",
            "dropped it idle".into(),
            true,
        );
        m.saw(RecId(1), s(3.0), true, "RST from the proxy".into());
        let v = m.verdict(Micros::ZERO, s(5.0), &FaultPlan::default(), 1);
        assert_eq!(v.outcome, Outcome::Disconnected);
        assert_eq!(v.cause.as_deref(), Some("lb.idle_timeout"));
        assert_eq!(
            (v.connection, v.at, v.basis),
            (Some(1), Some(3.0), Basis::Observed)
        );
        assert_eq!(v.connections[0].cause.as_deref(), Some("client.closed"));
        let text = v.to_text();
        assert!(
            text.starts_with(
                "DISCONNECTED at T+3.000: lb.idle_timeout on connection #1 (observed)"
            ),
            "{text}"
        );
        assert!(
            text.contains("client saw: RST from the proxy at T+3.000"),
            "{text}"
        );
    }

    #[test]
    fn a_peer_giving_up_inside_a_blackhole_is_blamed_on_it_as_an_inference() {
        let mut m = Monitor::default();
        let plan = FaultPlan {
            blackholes: vec![parse_window("60s..120s").unwrap()],
            ..FaultPlan::default()
        };
        m.opened(RecId(0), s(0.0), addr(40000), addr(5900));
        m.peer_closed(RecId(0), s(95.0), Direction::ServerToClient, "FIN");
        let v = m.verdict(Micros::ZERO, s(130.0), &plan, 1);
        assert_eq!(v.cause.as_deref(), Some("network.outage"));
        assert_eq!(v.basis, Basis::Inferred);
        assert!(
            v.connections[0]
                .why
                .contains("the server closed (FIN) at T+95.000")
        );
        // The same close outside the window is the server's own doing.
        let v = m.verdict(Micros::ZERO, s(130.0), &FaultPlan::default(), 1);
        assert_eq!(v.cause.as_deref(), Some("tcp.fin_from_server"));
        assert_eq!(v.basis, Basis::Observed);
    }

    #[test]
    fn status_counts_down_the_armed_timers() {
        let mut m = Monitor::default();
        let plan = FaultPlan {
            idle: Some((s(60.0), super::super::faults::DropHow::Rst)),
            blackholes: vec![parse_window("100s..").unwrap()],
            ..FaultPlan::default()
        };
        m.opened(RecId(0), s(0.0), addr(40000), addr(5900));
        m.heard(RecId(0), s(10.0), Direction::ServerToClient, 4);
        let lines = m.status(s(30.0), &plan, &[("ping_interval".into(), s(15.0))]);
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert!(l.contains("heard c→s never, s→c 20.0s ago"), "{l}");
        assert!(l.contains("idle_drop in 40.0s"), "{l}");
        assert!(l.contains("blackhole in 70.0s"), "{l}");
        assert!(l.contains("ping_interval due 5.0s ago"), "{l}");
        m.ended(RecId(0), s(31.0));
        assert!(m.status(s(32.0), &plan, &[]).is_empty());
    }
}
