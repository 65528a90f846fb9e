//! `runner-ws`: the runner's WebSocket attach session of seed 003 (PR #516),
//! behind a load balancer whose idle timer only data resets (AWS: "Sending
//! a TCP keep-alive does not prevent this timeout"), with a single attach
//! slot: a second attach is refused while the first is held.
//!
//! Variants (seed 003):
//! - `no-keepalive`: no ticker, no pings, no deadlines;
//! - `ping-only`: a WS ping every 15 s via WriteControl with a 20 s write
//!   deadline; the write lands in the kernel send buffer, so on a
//!   half-open peer it "succeeds" until TCP gives up retransmitting;
//! - `pong-deadline`: as ping-only, plus a 45 s read deadline that pongs
//!   (or any frame) reset; the reader trips it and frees the slot.
//!
//! The path runner → client is one connection of `net`: data the
//! vanished peer never acknowledges is retransmitted until `tcp_retries2`
//! (≈ 924.6 s, protocol-facts §4.5), then the socket aborts and the
//! handler tears down. The load balancer's idle timer is the network's. The client's SDK retries the attach every
//! `reconnect_delay`; the user is blocked when no retry gets in within
//! `reconnect_budget` (seed 003 only says "within retry budget").

use super::super::clock::{self, EventQueue, MAX_STEPS};
use super::super::constants::{Constants, Value};
use super::super::duration::format_duration;
use super::super::net::{CLIENT, Frame, Keepalive, Net, NetTimer, Retransmit, SERVER, Sent};
use super::super::profile::Variant;
use super::OtherProfile;
use super::set_variant as set;
use crate::timeline::Micros;
use crate::timeline::synthetic::{LbExpiry, ScriptEvent, Timeline};
use crate::verdict::{
    ChainEntry, ChannelSummary, Outcome, ReconnectAttempt, Verdict, Violation, secs,
};
use std::collections::BTreeMap;

pub const RUNNER_WS: OtherProfile = OtherProfile {
    name: "runner-ws",
    about: "runner WebSocket attach session behind a 60 s idle LB, single attach slot (seed 003)",
    variants: &[
        Variant {
            name: "no-keepalive",
            about: "no pings, no deadlines (before #516)",
            apply: |_| {},
        },
        Variant {
            name: "ping-only",
            about: "WS ping every 15 s, 20 s write deadline; liveness = the write succeeding",
            apply: |c| set(c, "ping", "true"),
        },
        Variant {
            name: "pong-deadline",
            about: "ping every 15 s plus a 45 s read deadline reset by pongs (#516)",
            apply: |c| {
                set(c, "ping", "true");
                set(c, "pong_deadline", "true");
            },
        },
    ],
    define,
    run,
};

fn define(c: &mut Constants, t: &Timeline) {
    use Value::*;
    let sec = |n: u64| Duration(Micros(n * 1_000_000));
    super::define_network(c, t);
    c.define("ping", Flag(false), "seed 003 (PR #505 runKeepalive)");
    c.define("ping_interval", sec(15), "seed 003: PingMessage every 15s");
    c.define(
        "write_deadline",
        sec(20),
        "seed 003: WriteControl with a 20s write deadline",
    );
    c.define("pong_deadline", Flag(false), "seed 003 (#516)");
    c.define(
        "pong_wait",
        sec(45),
        "seed 003: pongWait = 3 x keepalive interval",
    );
    c.define(
        "reconnect_delay",
        sec(5),
        "model: SDK retry spacing (not stated in seed 003)",
    );
    c.define(
        "reconnect_budget",
        sec(120),
        "model: SDK retry budget (seed 003: 'within retry budget')",
    );
}

#[derive(Clone, Debug)]
enum Ev {
    Data,
    PeerVanishes,
    Unmodelled(&'static str),
    Ping { conn: u64 },
    Pong { conn: u64 },
    ReadDeadline { conn: u64 },
    Retry { attempt: u64 },
    UserClose,
}

/// What is due next: an event (first at equal times) or the network.
enum Due {
    Ev(Ev),
    Net,
}

struct Run<'a> {
    c: &'a Constants,
    q: EventQueue<Ev>,
    net: Net<(), Frame>,
    /// The attach stream's connection in `net`.
    link: Option<usize>,
    now: u64,
    horizon: u64,
    /// When the user closed the attach session on purpose.
    user_closed: Option<u64>,
    conn: u64,
    slot_held: bool,
    peer_alive: bool,
    last_read: u64,
    first_unacked: Option<u64>,
    vanished_at: Option<u64>,
    sessions: u64,
    lost: Option<(u64, String)>,
    got_back_in: Option<u64>,
    /// The vanished client's reattach did not get in within the budget.
    blocked: bool,
    chain: Vec<ChainEntry>,
    reconnects: Vec<ReconnectAttempt>,
    refused_unrecorded: u64,
    violations: Vec<Violation>,
    summary: ChannelSummary,
    steps: u64,
}

const RECORDED_ATTEMPTS: usize = 5;

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let mut net = Net::new(c, t, Keepalive::OFF, Keepalive::OFF);
    // The client vanishes from its own attach stream (`PeerVanishes`); a
    // reattach comes over a path of its own.
    net.half_open_all = None;
    let mut r = Run {
        c,
        q: EventQueue::new(),
        net,
        link: None,
        now: 0,
        horizon: t.horizon.0.0,
        user_closed: None,
        conn: 0,
        slot_held: false,
        peer_alive: true,
        last_read: 0,
        first_unacked: None,
        vanished_at: None,
        sessions: 0,
        lost: None,
        got_back_in: None,
        blocked: false,
        chain: Vec::new(),
        reconnects: Vec::new(),
        refused_unrecorded: 0,
        violations: Vec::new(),
        summary: ChannelSummary {
            channel: "attach".into(),
            ..ChannelSummary::default()
        },
        steps: 0,
    };
    if c.flag("pong_deadline") && c.duration("pong_wait") <= c.duration("ping_interval") {
        r.violations.push(Violation {
            code: "runner.pong_wait_not_above_ping_interval".into(),
            at: 0.0,
            channel: Some("attach".into()),
            message: "a healthy peer's pong cannot arrive before the read deadline".into(),
            count: 1,
        });
    }
    for e in &t.events {
        match e {
            ScriptEvent::UserActive { from, to, every } => {
                let step = every.0.0.max(1);
                let mut at = from.0.0;
                while at <= to.0.0.min(r.horizon) {
                    r.q.push(Micros(at), Ev::Data);
                    at += step;
                }
            }
            ScriptEvent::Keystroke { at, .. } => r.q.push(at.0, Ev::Data),
            ScriptEvent::HalfOpen { at, .. } => r.q.push(at.0, Ev::PeerVanishes),
            ScriptEvent::UserClose { at } => r.q.push(at.0, Ev::UserClose),
            other => r.q.push(Micros::ZERO, Ev::Unmodelled(other.name())),
        }
    }
    r.attach(0);
    let horizon = r.horizon;
    let (steps, bound) = clock::drive(&mut r, Micros(horizon), MAX_STEPS);
    r.steps = steps;
    r.violations.extend(bound);
    r.finish(variant, t, input)
}

impl clock::Stepper for Run<'_> {
    type Ev = Due;
    fn next_event(&mut self) -> Option<(Micros, Due)> {
        // At equal times the network goes first: a flow idle to the instant
        // is cut before a retry queued for that instant looks at the slot.
        let net = self.net.next_deadline().map(|t| t.max(Micros(self.now)));
        match (self.q.peek_time(), net) {
            (Some(e), n) if n.is_none_or(|n| e < n) => {
                self.q.pop().map(|(at, ev)| (at, Due::Ev(ev)))
            }
            (_, n) => n.map(|n| (n, Due::Net)),
        }
    }
    fn step(&mut self, now: Micros, due: Due) {
        self.now = now.0;
        match due {
            Due::Ev(ev) => self.handle(ev),
            Due::Net => self.handle_net_timeout(),
        }
    }
}

impl Run<'_> {
    fn note(&mut self, actor: &'static str, what: impl Into<String>, script: bool) {
        let entry = super::chain_entry(self.now, actor, what.into(), script);
        self.chain.push(entry);
    }

    fn latency(&self) -> u64 {
        self.c.duration("latency").0
    }

    fn attach(&mut self, attempt: u64) {
        self.conn += 1;
        self.close_link();
        self.link = Some(self.net.open_established((), Micros(self.now)));
        self.slot_held = true;
        self.peer_alive = true;
        self.first_unacked = None;
        self.sessions += 1;
        self.summary.generations += 1;
        self.last_read = self.now;
        let conn = self.conn;
        let what = if attempt == 0 {
            "attach session opened (slot taken)".to_string()
        } else {
            format!("reattach #{attempt} takes the free slot")
        };
        self.note("client", what, false);
        if self.c.flag("ping") {
            let at = self.now + self.c.duration("ping_interval").0;
            self.q.push(Micros(at), Ev::Ping { conn });
        }
        if self.c.flag("pong_deadline") {
            let at = self.now + self.c.duration("pong_wait").0;
            self.q.push(Micros(at), Ev::ReadDeadline { conn });
        }
    }

    /// The attach stream's sockets are gone: the network forgets it.
    fn close_link(&mut self) {
        self.net.close_link(&mut self.link);
    }

    fn teardown(&mut self, cause: &str, what: String) {
        self.note("runner", what, false);
        self.slot_held = false;
        self.conn += 1;
        self.close_link();
        self.summary.last_closed_at = Some(secs(Micros(self.now)));
        self.summary.last_closed_by = Some(cause.into());
        if self.peer_alive {
            // The client saw it too: the session is lost.
            self.lost.get_or_insert((self.now, cause.into()));
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Data => {
                let Some(k) = self.link.filter(|_| self.slot_held && self.peer_alive) else {
                    return;
                };
                if self.net.transmit(Micros(self.now), k, CLIENT, Frame::Data) {
                    self.last_read = self.now;
                    self.summary.messages_received += 1;
                }
            }
            Ev::PeerVanishes => {
                self.note("network", "the client vanishes: half-open TCP", true);
                if let Some(k) = self.link {
                    self.net.conns[k].dead_path = true;
                }
                self.peer_alive = false;
                self.vanished_at = Some(self.now);
                self.lost = Some((self.now, "runner.attach_slot_held".into()));
                let at = self.now + self.c.duration("reconnect_delay").0;
                self.q.push(Micros(at), Ev::Retry { attempt: 1 });
            }
            Ev::UserClose => {
                if !self.slot_held || self.lost.is_some() {
                    return;
                }
                // The client closes the WebSocket on purpose: the slot is
                // freed, and every timer of this connection is moot.
                self.note("user", "closes the attach session", true);
                self.slot_held = false;
                self.conn += 1;
                self.close_link();
                self.user_closed = Some(self.now);
                self.summary.last_closed_at = Some(secs(Micros(self.now)));
                self.summary.last_closed_by = Some("user".into());
            }
            Ev::Unmodelled(name) => {
                let what = super::unmodelled_note(name, "runner-ws");
                self.note("script", what, true);
            }
            Ev::Ping { conn } => {
                let Some(k) = self.link.filter(|_| conn == self.conn) else {
                    return;
                };
                // Into the send buffer: WriteControl returns success well
                // within the 20 s write deadline either way.
                self.summary.keepalives_sent += 1;
                match self.net.send(Micros(self.now), k, SERVER, Frame::Ping) {
                    Sent::Arrives(..) => {
                        let at = self.now + 2 * self.latency();
                        self.q.push(Micros(at), Ev::Pong { conn });
                    }
                    Sent::Held { first } => {
                        // The balancer sits in front of the vanished client:
                        // the runner's write still reaches it.
                        self.net.conns[k].lb_last_data = Micros(self.now);
                        if first {
                            self.first_unacked = Some(self.now);
                        }
                    }
                }
                let at = self.now + self.c.duration("ping_interval").0;
                self.q.push(Micros(at), Ev::Ping { conn });
            }
            Ev::Pong { conn } => {
                if let Some(k) = self.link.filter(|_| conn == self.conn) {
                    self.net.conns[k].lb_last_data = Micros(self.now);
                    self.net.delivered(Micros(self.now), k);
                    self.last_read = self.now;
                    self.summary.messages_received += 1;
                }
            }
            Ev::ReadDeadline { conn } => {
                if conn != self.conn {
                    return;
                }
                let due = self.last_read + self.c.duration("pong_wait").0;
                if self.now < due {
                    self.q.push(Micros(due), Ev::ReadDeadline { conn });
                    return;
                }
                let what = format!(
                    "read deadline: nothing read for {}, handler tears down and frees the slot",
                    format_duration(self.c.duration("pong_wait"))
                );
                self.teardown("runner.pong_deadline", what);
            }
            Ev::Retry { attempt } => {
                if self.got_back_in.is_some() {
                    return;
                }
                if !self.slot_held {
                    self.got_back_in = Some(self.now);
                    let waited = self.now - self.vanished_at.unwrap_or(self.now);
                    self.blocked = waited > self.c.duration("reconnect_budget").0;
                    // A fresh session: what happens to it from here counts.
                    self.lost = None;
                    if self.refused_unrecorded > 0 {
                        let what = format!(
                            "{} more attempts were refused before this one (slot held)",
                            self.refused_unrecorded
                        );
                        self.note("client", what, false);
                    }
                    self.record(attempt, "attached".into());
                    self.attach(attempt);
                    return;
                }
                self.record(attempt, "refused: attach slot held".into());
                let at = self.now + self.c.duration("reconnect_delay").0;
                self.q.push(
                    Micros(at),
                    Ev::Retry {
                        attempt: attempt + 1,
                    },
                );
            }
        }
    }

    /// The network's timers: the load balancer's idle cut, the kernel
    /// giving up on a ping the vanished client never acknowledged.
    fn handle_net_timeout(&mut self) {
        let now = Micros(self.now);
        let mut due = self.net.due_timers();
        while let Some((k, timer)) = due.next(&self.net, now) {
            self.net_timer(k, timer);
        }
    }

    fn net_timer(&mut self, k: usize, timer: NetTimer) {
        let now = Micros(self.now);
        let current = self.link == Some(k);
        match timer {
            NetTimer::LbIdle => {
                if let Some((idle, how)) = self.net.lb_expire(k)
                    && current
                {
                    let what = format!(
                        "load balancer idle {}: {}",
                        format_duration(idle),
                        match how {
                            LbExpiry::FinRst => "FIN to the client, RST to the runner",
                            LbExpiry::Rst | LbExpiry::Silent => "RST both ways",
                        }
                    );
                    self.teardown("lb.idle_timeout", what);
                }
            }
            NetTimer::Retransmit(from) => {
                if matches!(self.net.retransmit(now, k, from), Retransmit::GaveUp) && current {
                    let what = format!(
                        "TCP gives up retransmitting the ping sent at T+{:.3}: the next write fails, slot freed",
                        secs(Micros(self.first_unacked.unwrap_or(self.now)))
                    );
                    self.teardown("tcp.retransmission_timeout", what);
                }
            }
            // Neither socket sets SO_KEEPALIVE.
            NetTimer::Keepalive(e) => {
                let _ = self.net.keepalive_probe(now, k, e);
            }
        }
    }

    fn record(&mut self, attempt: u64, result: String) {
        if self.reconnects.len() >= RECORDED_ATTEMPTS && result != "attached" {
            self.refused_unrecorded += 1;
            return;
        }
        self.reconnects.push(ReconnectAttempt {
            attempt,
            scheduled_at: secs(Micros(self.now)),
            delay: format_duration(self.c.duration("reconnect_delay")),
            started_at: Some(secs(Micros(self.now))),
            credential: None,
            result,
        });
    }

    fn finish(mut self, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
        if self.got_back_in.is_none() && self.refused_unrecorded > 0 {
            let what = format!(
                "{} more attempts refused until the horizon (slot held)",
                self.refused_unrecorded
            );
            self.note("client", what, false);
        }
        let stuck = self.vanished_at.is_some() && self.got_back_in.is_none();
        let (outcome, at, cause) =
            match (self.blocked || stuck, self.vanished_at, self.lost.clone()) {
                (true, Some(v), _) => (
                    Outcome::Blocked,
                    Some(secs(Micros(v))),
                    Some("runner.attach_slot_held".to_string()),
                ),
                (_, _, Some((at, cause))) => {
                    (Outcome::Disconnected, Some(secs(Micros(at))), Some(cause))
                }
                // Ended as the user asked: no fault, but no longer running.
                _ => match self.user_closed {
                    Some(t) => (
                        Outcome::Survived,
                        Some(secs(Micros(t))),
                        Some("client.closed".to_string()),
                    ),
                    None => (Outcome::Survived, None, None),
                },
            };
        let mut environment = BTreeMap::new();
        environment.insert(
            "lb".into(),
            self.net.lb.map_or("none".into(), |(idle, _)| {
                format!("idle {} (data only)", format_duration(idle))
            }),
        );
        environment.insert("attach_slots".into(), "1".into());
        Verdict {
            outcome,
            at,
            cause,
            channel: (outcome != Outcome::Survived).then(|| "attach".into()),
            violations: self.violations,
            environment,
            sessions: self.sessions,
            chain: self.chain,
            reconnects: self.reconnects,
            channels: vec![self.summary],
            steps: self.steps,
            ..super::run_verdict(RUNNER_WS.name, self.c, variant, t, input)
        }
    }
}
