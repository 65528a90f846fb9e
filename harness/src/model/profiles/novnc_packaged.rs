//! `novnc`: noVNC 1.3.0 as Debian packages it (vnc.html in Chromium),
//! through websockify 0.10, to a VNC server: the library and its relay,
//! with no app around them. What a WebSocket carrying RFB shows when no
//! app says more. Every behaviour below was measured on the lab's
//! recordings (corpora/lab/NOTES-novnc.md, NOTES-vnc2.md):
//!
//! - A close of a connected session, whoever sent it (a relay's or a
//!   server's kernel FIN, websockify's close 1000, a load balancer's FIN),
//!   is clean. With `reconnect=true` vnc.html retries once after
//!   `reconnect_delay`; a retry that fails (RST to its SYN, or a close
//!   while still connecting) is unclean and ends retrying: one attempt per
//!   drop (novnc-relay-killed, novnc-server-killed-reconnect,
//!   vnc2-novnc-lite-relay-restarted; app/ui.js 1.3.0 tests `clean`
//!   before reconnecting). A retry that finds the relay and the server up
//!   is a second generation (novnc-relay-restarted,
//!   novnc-haproxy-idle-reconnect).
//! - noVNC sends nothing unprompted and has no liveness timer: a frozen
//!   server or browser is silence, not an ending (novnc-server-frozen,
//!   novnc-client-frozen). Only websockify's `--heartbeat` puts data on an
//!   idle path (a ping every interval, answered at once:
//!   novnc-heartbeat-latency), which is what keeps a load balancer's idle
//!   timer from firing.
//! - Chromium sets TCP keep-alive on the WebSocket, 45 s idle and 45 s
//!   between probes (novnc-blackhole 75, 77); the probe count is the
//!   kernel's `tcp_keepalive_probes`, 9 (LX Documentation/networking/
//!   ip-sysctl.rst), so a dead path aborts the socket 45 + 9 × 45 s after
//!   the last segment heard.

use super::super::constants::{Constants, Value};
use super::super::duration::format_duration;
use super::super::profile::Variant;
use super::super::sim::EventQueue;
use super::OtherProfile;
use crate::timeline::Micros;
use crate::timeline::synthetic::{Dur, ScriptEvent, Timeline};
use crate::verdict::{
    Basis, ChainEntry, ChannelSummary, Outcome, ReconnectAttempt, Verdict, Violation, secs,
};
use std::collections::BTreeMap;

pub const NOVNC: OtherProfile = OtherProfile {
    name: "novnc",
    about: "noVNC 1.3.0 as packaged (vnc.html, Chromium) through websockify 0.10: the library, no app",
    variants: &[
        Variant {
            name: "as-packaged",
            about: "vnc.html's defaults: no reconnect; websockify without --heartbeat",
            apply: |_| {},
        },
        Variant {
            name: "reconnect",
            about: "vnc.html reconnect=true: one retry after reconnect_delay per clean drop",
            apply: |c| set(c, "auto_reconnect", "true"),
        },
        Variant {
            name: "heartbeat",
            about: "websockify --heartbeat 5: a ping and its pong every 5 s keep the path busy",
            apply: |c| set(c, "websockify_heartbeat", "5s"),
        },
    ],
    define,
    run,
};

fn set(c: &mut Constants, name: &str, value: &str) {
    c.set(name, value)
        .unwrap_or_else(|e| unreachable!("variant table: {e}"));
}

fn define(c: &mut Constants, t: &Timeline) {
    use Value::*;
    let sec = |n: u64| Duration(Micros(n * 1_000_000));
    c.define(
        "latency",
        Duration(t.network.latency.0),
        "timeline [network]",
    );
    c.define(
        "auto_reconnect",
        Flag(false),
        "noVNC 1.3.0 app/ui.js: vnc.html's `reconnect` setting defaults to false",
    );
    c.define(
        "reconnect_delay",
        sec(5),
        "noVNC 1.3.0 app/ui.js: reconnect_delay 5000 ms (vnc2-novnc-lite-relay-restarted)",
    );
    c.define(
        "websockify_heartbeat",
        sec(0),
        "websockify --heartbeat, off unless given (novnc-heartbeat-latency: 5 s)",
    );
    c.define(
        "keepalive_idle",
        sec(45),
        "Chromium's WebSocket TCP keep-alive (novnc-blackhole frames 75, 77)",
    );
    c.define(
        "keepalive_interval",
        sec(45),
        "Chromium's WebSocket TCP keep-alive (novnc-blackhole frames 75, 77)",
    );
    c.define(
        "keepalive_probes",
        Count(9),
        "LX tcp_keepalive_probes default (Chromium does not set TCP_KEEPCNT)",
    );
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Unmodelled(&'static str),
    /// A fault that no timer of noVNC or websockify notices.
    Unnoticed(&'static str),
    ServerKilled,
    ServerRestarted,
    PathDown {
        until: u64,
    },
    PathUp,
    UserClose,
    Heartbeat {
        conn: u64,
    },
    LbCheck {
        conn: u64,
    },
    KeepaliveCheck {
        conn: u64,
    },
    Retry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Connected,
    /// Closed cleanly; a retry may be due.
    Closed,
    /// A retry failed: noVNC stops.
    Failed,
    UserClosed,
}

struct Run<'a> {
    c: &'a Constants,
    q: EventQueue<Ev>,
    now: u64,
    horizon: u64,
    lb_idle: Option<u64>,
    stream: Stream,
    conn: u64,
    server_up: bool,
    path_down_until: Option<u64>,
    /// Last data on the path: resets the load balancer's idle timer.
    last_data: u64,
    /// Last segment the browser heard: keep-alive counts from here.
    last_heard: u64,
    unanswered_probes: u64,
    /// The first drop: when and why.
    lost: Option<(u64, String)>,
    user_closed: Option<u64>,
    sessions: u64,
    chain: Vec<ChainEntry>,
    reconnects: Vec<ReconnectAttempt>,
    violations: Vec<Violation>,
    summary: ChannelSummary,
    steps: u64,
}

const MAX_STEPS: u64 = 5_000_000;

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let mut r = Run {
        c,
        q: EventQueue::new(),
        now: 0,
        horizon: t.horizon.0.0,
        lb_idle: t.lb.as_ref().map(|l| l.idle_timeout.0.0),
        stream: Stream::Closed,
        conn: 0,
        server_up: true,
        path_down_until: None,
        last_data: 0,
        last_heard: 0,
        unanswered_probes: 0,
        lost: None,
        user_closed: None,
        sessions: 0,
        chain: Vec::new(),
        reconnects: Vec::new(),
        violations: Vec::new(),
        summary: ChannelSummary {
            channel: "ws/rfb".into(),
            ..ChannelSummary::default()
        },
        steps: 0,
    };
    for e in &t.events {
        let (at, ev) = match *e {
            ScriptEvent::ServerKilled { at } => (at, Ev::ServerKilled),
            ScriptEvent::ServerRestarted { at } => (at, Ev::ServerRestarted),
            ScriptEvent::Blackhole { from, to } => (from, Ev::PathDown { until: to.0.0 }),
            ScriptEvent::UserClose { at } => (at, Ev::UserClose),
            ScriptEvent::ClientStalls { at, .. } => (at, Ev::Unnoticed("the browser stalls")),
            ScriptEvent::ServerStopsAnswering { at, .. } => {
                (at, Ev::Unnoticed("the server stops answering"))
            }
            // Display traffic keeps nothing alive that this model times.
            ScriptEvent::UserActive { .. }
            | ScriptEvent::Keystroke { .. }
            | ScriptEvent::ServerData { .. } => continue,
            ref other => (Dur(Micros::ZERO), Ev::Unmodelled(other.name())),
        };
        r.q.push(at.0, ev);
    }
    r.connect();
    while let Some((at, ev)) = r.q.pop() {
        if at.0 > r.horizon {
            break;
        }
        r.now = at.0;
        if r.steps >= MAX_STEPS {
            r.violations.push(Violation {
                code: "model.step_bound".into(),
                at: secs(Micros(r.now)),
                channel: None,
                message: format!("more than {MAX_STEPS} steps: livelock in the model"),
                count: 1,
            });
            break;
        }
        r.steps += 1;
        r.handle(ev);
    }
    r.finish(variant, t, input)
}

impl Run<'_> {
    fn note(&mut self, actor: &'static str, what: impl Into<String>, script: bool) {
        self.chain.push(ChainEntry {
            at: secs(Micros(self.now)),
            actor,
            what: what.into(),
            basis: if script { Basis::Script } else { Basis::Model },
        });
    }

    fn path_up(&self) -> bool {
        self.path_down_until.is_none_or(|until| self.now >= until)
    }

    fn connect(&mut self) {
        self.conn += 1;
        self.stream = Stream::Connected;
        self.sessions += 1;
        self.summary.generations += 1;
        self.last_data = self.now;
        self.last_heard = self.now;
        self.unanswered_probes = 0;
        let conn = self.conn;
        let heartbeat = self.c.duration("websockify_heartbeat").0;
        if heartbeat > 0 {
            self.q
                .push(Micros(self.now + heartbeat), Ev::Heartbeat { conn });
        }
        if let Some(idle) = self.lb_idle {
            self.q.push(Micros(self.now + idle), Ev::LbCheck { conn });
        }
        let idle = self.c.duration("keepalive_idle").0;
        self.q
            .push(Micros(self.now + idle), Ev::KeepaliveCheck { conn });
    }

    /// The connected stream ends; noVNC calls it clean, so a retry follows
    /// when reconnect is on.
    fn closed(&mut self, cause: &str, what: String, actor: &'static str) {
        self.note(actor, what, false);
        self.stream = Stream::Closed;
        self.conn += 1;
        self.summary.last_closed_at = Some(secs(Micros(self.now)));
        self.summary.last_closed_by = Some(cause.into());
        self.lost.get_or_insert((self.now, cause.into()));
        if self.c.flag("auto_reconnect") {
            let at = self.now + self.c.duration("reconnect_delay").0;
            self.q.push(Micros(at), Ev::Retry);
        }
    }

    fn handle(&mut self, ev: Ev) {
        let connected = self.stream == Stream::Connected;
        match ev {
            Ev::Unmodelled(name) => {
                self.note("model", super::unmodelled_note(name, NOVNC.name), true)
            }
            Ev::Unnoticed(what) => self.note(
                "model",
                format!("{what}: noVNC and websockify have no liveness timer to notice"),
                true,
            ),
            Ev::ServerKilled => {
                self.note("server", "the server process dies", true);
                self.server_up = false;
                if connected {
                    let what = "its kernel closes the stream (FIN): a clean close to noVNC";
                    self.closed("server.killed", what.into(), "server");
                }
            }
            Ev::ServerRestarted => {
                self.note("server", "the server is back", true);
                self.server_up = true;
            }
            Ev::PathDown { until } => {
                self.note("network", "nothing crosses the path", true);
                self.path_down_until = Some(until);
                self.q.push(Micros(until), Ev::PathUp);
            }
            Ev::PathUp => {
                if self.path_up() {
                    self.note("network", "the path carries packets again", true);
                }
            }
            Ev::UserClose => {
                if connected {
                    self.note(
                        "user",
                        "the user closes noVNC: a close frame, then FIN",
                        true,
                    );
                    self.stream = Stream::UserClosed;
                    self.user_closed = Some(self.now);
                    self.conn += 1;
                }
            }
            Ev::Heartbeat { conn } => self.heartbeat(conn),
            Ev::LbCheck { conn } => self.lb_check(conn),
            Ev::KeepaliveCheck { conn } => self.keepalive_check(conn),
            Ev::Retry => self.retry(),
        }
    }

    fn heartbeat(&mut self, conn: u64) {
        if conn != self.conn {
            return;
        }
        if self.path_up() {
            // websockify's ping and the browser's pong: data both ways.
            self.last_data = self.now;
            self.last_heard = self.now;
            self.summary.pings_received += 1;
            self.summary.pongs_sent += 1;
        }
        let next = self.now + self.c.duration("websockify_heartbeat").0;
        self.q.push(Micros(next), Ev::Heartbeat { conn });
    }

    fn lb_check(&mut self, conn: u64) {
        let Some(idle) = self.lb_idle else { return };
        if conn != self.conn {
            return;
        }
        let due = self.last_data + idle;
        if self.now < due {
            self.q.push(Micros(due), Ev::LbCheck { conn });
            return;
        }
        let what = format!(
            "load balancer idle {} expires: FIN to the browser, a clean close to noVNC",
            format_duration(Micros(idle))
        );
        self.closed("lb.idle_timeout", what, "lb");
    }

    /// Chromium's keep-alive: a probe after `keepalive_idle` without a
    /// segment heard, then one every `keepalive_interval`; the kernel
    /// aborts when `keepalive_probes` went unanswered (LX tcp_keepalive_timer).
    fn keepalive_check(&mut self, conn: u64) {
        if conn != self.conn {
            return;
        }
        let idle = self.c.duration("keepalive_idle").0;
        let interval = self.c.duration("keepalive_interval").0;
        let probes = self.c.count("keepalive_probes");
        if self.unanswered_probes == 0 && self.now < self.last_heard + idle {
            let due = self.last_heard + idle;
            self.q.push(Micros(due), Ev::KeepaliveCheck { conn });
            return;
        }
        if self.path_up() {
            // The probe (or the last one) is answered.
            self.last_heard = self.now;
            self.unanswered_probes = 0;
            self.q
                .push(Micros(self.now + idle), Ev::KeepaliveCheck { conn });
            return;
        }
        if self.unanswered_probes < probes {
            self.unanswered_probes += 1;
            self.q
                .push(Micros(self.now + interval), Ev::KeepaliveCheck { conn });
            return;
        }
        let what = format!("{probes} keep-alive probes unanswered: the kernel aborts the socket");
        self.closed("tcp.keepalive_timeout", what, "client");
    }

    fn retry(&mut self) {
        if self.stream != Stream::Closed {
            return;
        }
        let attempt = self.reconnects.len() as u64 + 1;
        let result = if !self.path_up() {
            "failed: no answer to its SYN"
        } else if !self.server_up {
            "failed: refused (RST to its SYN, or closed while connecting)"
        } else {
            "connected"
        };
        self.reconnects.push(ReconnectAttempt {
            attempt,
            scheduled_at: secs(Micros(self.now)),
            delay: format_duration(self.c.duration("reconnect_delay")),
            started_at: Some(secs(Micros(self.now))),
            credential: None,
            result: result.into(),
        });
        if result == "connected" {
            self.note("client", format!("retry #{attempt} connects"), false);
            self.connect();
        } else {
            let what = format!("retry #{attempt} {result}: unclean, so noVNC stops retrying");
            self.note("client", what, false);
            self.stream = Stream::Failed;
        }
    }

    fn finish(self, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
        let (outcome, at, cause) = match (self.stream, self.user_closed, self.lost.clone()) {
            (Stream::UserClosed, Some(u), _) => (
                Outcome::Survived,
                Some(secs(Micros(u))),
                Some("user_close".to_string()),
            ),
            // Back after a drop: the drop is what the run reports.
            (Stream::Connected, _, Some((at, cause))) => {
                (Outcome::Survived, Some(secs(Micros(at))), Some(cause))
            }
            (Stream::Connected, _, None) => (Outcome::Survived, None, None),
            (Stream::Failed, _, lost) => {
                let (at, cause) = lost.unwrap_or((self.now, "novnc.connect_failed".into()));
                (Outcome::DeadSession, Some(secs(Micros(at))), Some(cause))
            }
            (_, _, lost) => {
                let (at, cause) = lost.unwrap_or((self.now, "unknown".into()));
                (Outcome::Disconnected, Some(secs(Micros(at))), Some(cause))
            }
        };
        let mut environment = BTreeMap::new();
        environment.insert(
            "lb".into(),
            self.lb_idle.map_or("none".into(), |i| {
                format!("idle {}", format_duration(Micros(i)))
            }),
        );
        Verdict {
            outcome,
            at,
            cause,
            channel: (outcome != Outcome::Survived || self.sessions > 1).then(|| "ws/rfb".into()),
            violations: self.violations,
            profile: NOVNC.name.into(),
            variant: variant.name.into(),
            constants: self.c.snapshot(),
            input: input.into(),
            horizon: secs(t.horizon.0),
            environment,
            sessions: self.sessions,
            chain: self.chain,
            reconnects: self.reconnects,
            leases: Vec::new(),
            channels: vec![self.summary],
            steps: self.steps,
            capture: None,
        }
    }
}
