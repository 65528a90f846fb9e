//! `novnc-displaytab`: the canvas DisplayTab "take control" of seeds 000
//! and 001 (PR #2216 and its e2e #2335).
//!
//! The user clicks take control: DisplayTab POSTs `acquire` with
//! `ttl_seconds: 300`; the control service grants a 300 s lease and mints a
//! signed session URL whose token is bound to the lease's `expires_at`;
//! DisplayTab opens noVNC on it through websockify. When the lease expires
//! the gateway ends the session (seed 000: "disconnects every ~5 minutes").
//!
//! Variants (seed 000):
//! - `pre-2216`: no renewal, no reconnect;
//! - `2216-first-cut`: 120 s renewal, reconnect on an unclean disconnect
//!   dialing the cached signed URL (the token minted on click);
//! - `2216`: 120 s renewal as the same holder, reconnect re-acquires a
//!   fresh lease and token first, generation guard, no reconnect after a
//!   clean disconnect.
//!
//! What noVNC calls clean (protocol-facts §4.1): a socket that closes while
//! `connected` is clean whatever the close code (NV core/rfb.js:669-677);
//! only `_fail()` (e.g. a socket closed while `connecting`) is unclean. PR
//! #2216 reconnects on `!clean`, so by noVNC's own rule a dropped stream
//! is not reconnected; `pr_clean_assumption=true` models what the PR
//! assumed (a close other than 1000 is unclean). The verdict says when the
//! two differ.
//!
//! Modelling choices not stated in the seeds, each a named constant: the
//! renewal interval starts when the click's acquire answers (so the first
//! renewal reaches the service at rtt + interval + latency after the
//! click, against a lease ending at latency + TTL: hence the invariant
//! interval < TTL − rtt); the gateway closes the stream with
//! `lease_expiry_close_code` when the lease runs out; the stream is bound
//! to the lease, not to the token it was dialed with (seed 001's TODO
//! expects the same socket to live on through renewals).

use super::super::client::LeaseRenewal;
use super::super::clock::{self, EventQueue, MAX_STEPS};
use super::super::constants::{Constants, Value};
use super::super::duration::format_duration;
use super::super::env::{LeaseError, LeaseService, Token, WsProxy, WsProxyOutput};
use super::super::net::{CLIENT, Frame, Keepalive, Net, NetTimer, Probe, Retransmit, SERVER, Sent};
use super::super::profile::Variant;
use super::OtherProfile;
use super::set_variant as set;
use crate::timeline::Micros;
use crate::timeline::synthetic::{ScriptEvent, Timeline};
use crate::verdict::{
    ChainEntry, ChannelSummary, LeaseEvent, Outcome, ReconnectAttempt, Verdict, Violation, secs,
    t_plus,
};
use std::collections::BTreeMap;

pub const NOVNC_DISPLAYTAB: OtherProfile = OtherProfile {
    name: "novnc-displaytab",
    about: "canvas DisplayTab take-control over noVNC + websockify (seeds 000, 001)",
    variants: &[
        Variant {
            name: "pre-2216",
            about: "300 s lease acquired on click only, no renewal, no reconnect",
            apply: |_| {},
        },
        Variant {
            name: "2216-first-cut",
            about: "120 s renewal; reconnect on unclean disconnect with the cached signed URL",
            apply: |c| {
                set(c, "renewal", "true");
                set(c, "auto_reconnect", "true");
            },
        },
        Variant {
            name: "2216",
            about: "120 s renewal as the same holder; reconnect re-acquires a fresh lease+token; generation guard; no reconnect after a clean disconnect",
            apply: |c| {
                set(c, "renewal", "true");
                set(c, "auto_reconnect", "true");
                set(c, "reacquire_before_dial", "true");
            },
        },
    ],
    define,
    run,
};

const fn sec(n: u64) -> Micros {
    Micros(n * 1_000_000)
}

fn define(c: &mut Constants, t: &Timeline) {
    use Value::*;
    super::define_network(c, t);
    // DisplayTab runs in the browser: its WebSocket is Chromium's socket.
    super::chromium::define_keepalive(c);
    c.define(
        "lease_ttl",
        Duration(sec(300)),
        "seed 000: acquireControl posts ttl_seconds: 300",
    );
    c.define("renewal", Flag(false), "seed 000 (added by #2216)");
    c.define(
        "renewal_interval",
        Duration(sec(120)),
        "seed 001: RENEWAL_INTERVAL_MS 120 s",
    );
    c.define("auto_reconnect", Flag(false), "seed 000 (added by #2216)");
    c.define(
        "reacquire_before_dial",
        Flag(false),
        "seed 000: reacquireSession() before reconnecting (the BLOCKER fix)",
    );
    c.define(
        "reconnect_on_clean",
        Flag(false),
        "seed 000: no reconnect after a clean disconnect (noVNC ui.js itself reconnects on every disconnect, §4.2)",
    );
    c.define(
        "reconnect_delay",
        Duration(sec(5)),
        "NV app/ui.js:196-197 reconnect_delay (DisplayTab's own delay is not in seed 000)",
    );
    c.define(
        "pr_clean_assumption",
        Flag(false),
        "false = noVNC 1.7 (§4.1: close while connected is clean); true = PR #2216's belief (close code != 1000 is unclean)",
    );
    c.define(
        "websockify_heartbeat",
        Duration(Micros::ZERO),
        "WSF websocketproxy.py:565-566 (0 = off; seed 000 companion CP#522 sets 30 s)",
    );
    c.define(
        "proxy_kill_close_code",
        Count(1006),
        "websockify gone without a close frame (1006); 1000 = VNC target closed, WSF websocketproxy.py:280-294",
    );
    c.define(
        "lease_expiry_close_code",
        Count(1000),
        "model assumption: the gateway ends an expired session normally",
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Click,
    Renewal,
    Reacquire { attempt: u64 },
}

#[derive(Clone, Debug)]
enum Ev {
    ClientData,
    ServerData,
    ProxyKilled,
    ProxyRestarted,
    ServerCloses,
    UserClose,
    Unmodelled(&'static str),
    AcquireArrives {
        app_gen: u64,
        purpose: Purpose,
    },
    AcquireAnswered {
        app_gen: u64,
        purpose: Purpose,
        token: Option<usize>,
    },
    RenewTick,
    DialArrives {
        attempt: u64,
        token: usize,
    },
    DialAnswered {
        attempt: u64,
        token: usize,
        refusal: Option<String>,
    },
    LeaseCheck,
    Heartbeat {
        stream_gen: u64,
    },
    ReconnectDue {
        app_gen: u64,
    },
}

/// What is due next: an event (first at equal times) or the network.
enum Due {
    Ev(Ev),
    Net,
}

/// The control service's one holder: the user's DisplayTab.
const HOLDER: &str = "displaytab";

fn token_name(t: &Token) -> String {
    format!("signed{}", t.id)
}

#[derive(PartialEq, Eq)]
enum Stream {
    Idle,
    Connecting,
    Connected,
}

/// Reconnect attempts kept in the verdict; the rest are counted.
const RECORDED_ATTEMPTS: usize = 5;

struct Run<'a> {
    c: &'a Constants,
    latency: u64,
    ttl: u64,
    horizon: u64,
    net: Net<(), Frame>,
    /// The display stream's connection in `net`.
    link: Option<usize>,
    q: EventQueue<Ev>,
    now: u64,
    steps: u64,
    // control service: the lease and the tokens it signed
    service: LeaseService,
    tokens: Vec<Token>,
    // DisplayTab
    app_gen: u64,
    click_token: Option<usize>,
    latest_token: Option<usize>,
    renewal: LeaseRenewal,
    inhibited: bool,
    attempt: u64,
    // stream
    proxy_up: bool,
    stream: Stream,
    stream_gen: u64,
    /// websockify's side of the connected stream (its heartbeat).
    proxy: Option<WsProxy>,
    last_rx: u64,
    // verdict material
    sessions: u64,
    lost: Option<(u64, String)>,
    /// The first drop of a connected stream, kept through a recovery: what
    /// a recovered run reports.
    first_drop: Option<(u64, String)>,
    /// When the user closed a connected session on purpose.
    user_closed: Option<u64>,
    chain: Vec<ChainEntry>,
    reconnects: Vec<ReconnectAttempt>,
    failed_attempts_unrecorded: u64,
    leases: Vec<LeaseEvent>,
    violations: BTreeMap<&'static str, Violation>,
    summary: ChannelSummary,
}

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let mut r = Run::new(c, t);
    r.check_renewal_invariant();
    r.schedule_script(t);
    r.note(0, "user", "clicks take control: POST acquire", true);
    r.send_acquire(Purpose::Click);
    let horizon = r.horizon;
    let (steps, bound) = clock::drive(&mut r, Micros(horizon), MAX_STEPS);
    r.steps = steps;
    if let Some(v) = bound {
        r.violations.insert("model.step_bound", v);
    }
    r.finish(variant, t, input)
}

impl clock::Stepper for Run<'_> {
    type Ev = Due;
    fn next_event(&mut self) -> Option<(Micros, Due)> {
        let net = self.net.next_deadline().map(|t| t.max(Micros(self.now)));
        match (self.q.peek_time(), net) {
            (Some(e), n) if n.is_none_or(|n| e <= n) => {
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

impl<'a> Run<'a> {
    fn new(c: &'a Constants, t: &Timeline) -> Self {
        let ttl = c.duration("lease_ttl");
        let browser = super::chromium::socket_keepalive(c);
        let mut net = Net::new(c, t, browser, Keepalive::OFF);
        // A half-open path is not modelled here (the chain says so).
        net.half_open_all = None;
        Run {
            c,
            latency: c.duration("latency").0,
            ttl: ttl.0,
            horizon: t.horizon.0.0,
            net,
            link: None,
            q: EventQueue::new(),
            now: 0,
            steps: 0,
            // A token is bound to the lease's expiry at signing (seed 000).
            service: LeaseService::new(ttl, ttl),
            tokens: Vec::new(),
            app_gen: 0,
            click_token: None,
            latest_token: None,
            renewal: LeaseRenewal::new(c.duration("renewal_interval")),
            inhibited: false,
            attempt: 0,
            proxy_up: true,
            stream: Stream::Idle,
            stream_gen: 0,
            proxy: None,
            last_rx: 0,
            sessions: 0,
            lost: None,
            first_drop: None,
            user_closed: None,
            chain: Vec::new(),
            reconnects: Vec::new(),
            failed_attempts_unrecorded: 0,
            leases: Vec::new(),
            violations: BTreeMap::new(),
            summary: ChannelSummary {
                channel: "display".into(),
                ..ChannelSummary::default()
            },
        }
    }

    fn note(&mut self, at: u64, actor: &'static str, what: impl Into<String>, script: bool) {
        let entry = super::chain_entry(at, actor, what.into(), script);
        self.chain.push(entry);
    }

    fn violate(&mut self, code: &'static str, message: String) {
        let at = secs(Micros(self.now));
        self.violations
            .entry(code)
            .and_modify(|v| v.count += 1)
            .or_insert(Violation {
                code: code.into(),
                at,
                channel: Some("display".into()),
                message,
                count: 1,
            });
    }

    fn rtt(&self) -> u64 {
        2 * self.latency
    }

    /// Renewal interval < lease TTL − round trip: the interval starts when
    /// the click's acquire answers, one round trip after the lease began.
    fn check_renewal_invariant(&mut self) {
        if !self.c.flag("renewal") {
            return;
        }
        let interval = self.c.duration("renewal_interval").0;
        let margin = self.ttl.saturating_sub(self.rtt());
        if interval >= margin {
            self.violate(
                "novnc.renewal_interval_not_below_ttl_minus_rtt",
                format!(
                    "renewal every {} but the {} lease minus the {} round trip leaves {}",
                    format_duration(Micros(interval)),
                    format_duration(Micros(self.ttl)),
                    format_duration(Micros(self.rtt())),
                    format_duration(Micros(margin)),
                ),
            );
        }
    }

    fn schedule_script(&mut self, t: &Timeline) {
        let horizon = self.horizon;
        let series = |q: &mut EventQueue<Ev>, from: u64, to: u64, every: u64, ev: Ev| {
            // A zero period would never advance; the parser should refuse
            // it, and here it means one occurrence.
            let step = every.max(1);
            let mut at = from;
            while at <= to.min(horizon) {
                q.push(Micros(at), ev.clone());
                if every == 0 {
                    break;
                }
                at += step;
            }
        };
        for e in &t.events {
            match e {
                ScriptEvent::UserActive { from, to, every } => {
                    series(&mut self.q, from.0.0, to.0.0, every.0.0, Ev::ClientData)
                }
                ScriptEvent::Keystroke { at, .. } => self.q.push(at.0, Ev::ClientData),
                ScriptEvent::ServerData {
                    from, to, every, ..
                } => series(&mut self.q, from.0.0, to.0.0, every.0.0, Ev::ServerData),
                ScriptEvent::ServerKilled { at } => self.q.push(at.0, Ev::ProxyKilled),
                ScriptEvent::ServerCloses { at } => self.q.push(at.0, Ev::ServerCloses),
                ScriptEvent::ServerRestarted { at } => self.q.push(at.0, Ev::ProxyRestarted),
                ScriptEvent::UserClose { at } => self.q.push(at.0, Ev::UserClose),
                // The network's (`Net::new` read it); the chain notes it.
                ScriptEvent::Blackhole { .. } => {}
                other => {
                    let at = match other {
                        ScriptEvent::ServerStopsAnswering { at, .. }
                        | ScriptEvent::ServerStopsPinging { at, .. }
                        | ScriptEvent::ClientStalls { at, .. }
                        | ScriptEvent::HalfOpen { at, .. } => at.0,
                        _ => Micros::ZERO,
                    };
                    self.q.push(at, Ev::Unmodelled(other.name()));
                }
            }
        }
    }

    fn network_down(&self, at: u64) -> bool {
        !self.net.path_clear(Micros(at))
    }

    /// Sends a frame on the display stream: it gets through now, or waits
    /// in the sender's socket for the path to come back.
    fn send(&mut self, from: usize, frame: Frame) -> bool {
        let Some(k) = self.link.filter(|_| self.stream == Stream::Connected) else {
            return false;
        };
        match self.net.send(Micros(self.now), k, from, frame) {
            Sent::Arrives(..) if !self.net.conns[k].open[1 - from] => {
                // The peer's socket is gone: its kernel answers RST.
                let what = "a segment finds the peer's socket gone: RST";
                self.note(self.now, "network", what, false);
                self.stream_closed(1006, "tcp.reset");
                false
            }
            Sent::Arrives(..) => {
                self.net.delivered(Micros(self.now), k);
                true
            }
            Sent::Held { .. } => false,
        }
    }

    /// The display stream's sockets are gone: the network forgets it.
    fn close_link(&mut self) {
        self.net.close_link(&mut self.link);
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::ClientData => {
                self.send(CLIENT, Frame::Data);
            }
            Ev::ServerData => {
                if self.send(SERVER, Frame::Data) {
                    self.received();
                }
            }
            Ev::ProxyKilled => {
                self.proxy_up = false;
                let code = self.c.count("proxy_kill_close_code");
                self.note(self.now, "server", "websockify/VNC side goes away", true);
                if self.stream == Stream::Connected {
                    self.stream_closed(code, "server.killed");
                }
            }
            Ev::ServerCloses => {
                self.note(
                    self.now,
                    "server",
                    "the server ends the session (goodbye) and goes on listening",
                    true,
                );
                if self.stream == Stream::Connected {
                    self.stream_closed(1001, "server.closed");
                }
            }
            Ev::ProxyRestarted => {
                self.proxy_up = true;
                self.note(self.now, "server", "websockify accepts again", true);
            }
            Ev::UserClose => {
                self.note(self.now, "user", "disconnects (releases control)", true);
                // The generation guard: answers to requests made before this
                // are ignored, and the renewal timer stops.
                self.app_gen += 1;
                self.renewal.stop();
                self.inhibited = true;
                self.service.release(Micros(self.now), HOLDER);
                if self.stream == Stream::Connected {
                    self.user_closed = Some(self.now);
                }
                if self.stream != Stream::Idle {
                    self.stream = Stream::Idle;
                    self.stream_gen += 1;
                    self.proxy = None;
                    self.close_link();
                    self.summary.last_closed_at = Some(secs(Micros(self.now)));
                    self.summary.last_closed_by = Some("user".into());
                }
                self.lost.get_or_insert((self.now, "client.closed".into()));
            }
            Ev::Unmodelled(name) => {
                let what = super::unmodelled_note(name, "novnc-displaytab");
                self.note(self.now, "script", what, true);
            }
            Ev::AcquireArrives { app_gen, purpose } => self.acquire_arrives(app_gen, purpose),
            Ev::AcquireAnswered {
                app_gen,
                purpose,
                token,
            } => self.acquire_answered(app_gen, purpose, token),
            Ev::RenewTick => {
                let (renew, _stale) = self.renewal.handle_timeout(Micros(self.now), true);
                if renew == 0 {
                    return;
                }
                self.send_acquire(Purpose::Renewal);
                self.schedule_renewal();
            }
            Ev::DialArrives { attempt, token } => {
                let refusal = if self.network_down(self.now) {
                    Some("no route (blackhole)".to_string())
                } else if !self.proxy_up {
                    Some("connection refused".to_string())
                } else if let Err(LeaseError::StaleToken { expired_at }) =
                    self.service.check(Micros(self.now), &self.tokens[token])
                {
                    Some(format!(
                        "HTTP 401: token {} expired at {}",
                        token_name(&self.tokens[token]),
                        t_plus(secs(expired_at))
                    ))
                } else {
                    None
                };
                let back = self.now + self.latency;
                self.q.push(
                    Micros(back),
                    Ev::DialAnswered {
                        attempt,
                        token,
                        refusal,
                    },
                );
            }
            Ev::DialAnswered {
                attempt,
                token,
                refusal,
            } => self.dial_answered(attempt, token, refusal),
            Ev::LeaseCheck => {
                let held = self.service.poll_timeout().is_some();
                self.service.handle_timeout(Micros(self.now));
                if held && self.service.poll_timeout().is_none() {
                    self.leases.push(LeaseEvent {
                        at: secs(Micros(self.now)),
                        what: "lease expired".into(),
                        expires_at: Some(secs(Micros(self.now))),
                    });
                    self.note(self.now, "server", "control lease expired", false);
                    if self.stream == Stream::Connected {
                        let code = self.c.count("lease_expiry_close_code");
                        self.stream_closed(code, "lease.expired");
                    }
                }
            }
            Ev::Heartbeat { stream_gen } => {
                if stream_gen != self.stream_gen || self.stream != Stream::Connected {
                    return;
                }
                let Some(proxy) = self.proxy.as_mut() else {
                    return;
                };
                proxy.handle_timeout(Micros(self.now));
                let mut pings = 0;
                while let Some(out) = proxy.poll_output() {
                    pings += u64::from(out == WsProxyOutput::Ping);
                }
                let next = proxy.poll_timeout();
                // Ping out, the browser's pong back: data both ways.
                if pings > 0 && self.send(SERVER, Frame::Ping) {
                    self.send(CLIENT, Frame::Ping);
                    self.summary.pings_received += pings;
                    self.summary.pongs_sent += pings;
                    self.received();
                }
                if let Some(next) = next {
                    self.q.push(next, Ev::Heartbeat { stream_gen });
                }
            }
            Ev::ReconnectDue { app_gen } => {
                if app_gen != self.app_gen {
                    return;
                }
                self.attempt += 1;
                let attempt = self.attempt;
                if self.c.flag("reacquire_before_dial") {
                    self.send_acquire(Purpose::Reacquire { attempt });
                } else {
                    let token = self.click_token.unwrap_or(0);
                    self.dial(attempt, token);
                }
            }
        }
    }

    /// The network's timers: the load balancer's idle cut, the kernel's
    /// retransmission of what either side sent into a dead path.
    fn handle_net_timeout(&mut self) {
        let now = Micros(self.now);
        let mut due = self.net.due_timers();
        while let Some((k, timer)) = due.next(&self.net, now) {
            self.net_timer(k, timer);
        }
    }

    fn net_timer(&mut self, k: usize, timer: NetTimer) {
        let now = Micros(self.now);
        let current = self.link == Some(k) && self.stream == Stream::Connected;
        match timer {
            NetTimer::LbIdle => {
                if let Some((idle, how)) = self.net.lb_expire(k)
                    && current
                {
                    let what = format!(
                        "load balancer idle {} expires ({})",
                        format_duration(idle),
                        how.as_str()
                    );
                    self.note(self.now, "lb", what, false);
                    // Either way the browser's socket ends without a close
                    // frame (a silent expiry surfaces on the next write).
                    self.stream_closed(1006, "lb.idle_timeout");
                }
            }
            NetTimer::Retransmit(from) => match self.net.retransmit(now, k, from) {
                Retransmit::GaveUp if current && from == CLIENT => {
                    let what = format!(
                        "the browser gives up retransmitting after {} tries",
                        self.net.retries2
                    );
                    self.note(self.now, "network", what, false);
                    self.stream_closed(1006, "tcp.retransmission_timeout");
                }
                // websockify's socket aborts; across the dead path the
                // browser learns only by its own keep-alive or a RST later.
                Retransmit::GaveUp if current => {
                    self.net.conns[k].open[SERVER] = false;
                    let what = format!(
                        "websockify gives up retransmitting after {} tries: its socket aborts",
                        self.net.retries2
                    );
                    self.note(self.now, "network", what, false);
                }
                Retransmit::Flushed(_, held) if current => {
                    self.net.delivered(now, k);
                    if from == SERVER {
                        for _ in held {
                            self.received();
                        }
                    }
                }
                _ => {}
            },
            NetTimer::Keepalive(e) => match self.net.keepalive_probe(now, k, e) {
                Probe::Exhausted if current => {
                    let what = format!(
                        "{} keep-alive probes unanswered: the browser's kernel aborts the socket",
                        self.net.client_ka.count
                    );
                    self.note(self.now, "network", what, false);
                    self.stream_closed(1006, "tcp.keepalive_timeout");
                }
                Probe::PeerClosed if current => {
                    let what = "a keep-alive probe finds websockify's socket gone: RST";
                    self.note(self.now, "network", what, false);
                    self.stream_closed(1006, "tcp.reset");
                }
                _ => {}
            },
        }
    }

    fn received(&mut self) {
        self.summary.messages_received += 1;
        let gap = secs(Micros(self.now - self.last_rx));
        if gap > self.summary.longest_silence {
            self.summary.longest_silence = gap;
        }
        self.last_rx = self.now;
    }

    fn send_acquire(&mut self, purpose: Purpose) {
        if self.network_down(self.now) {
            // A failed fetch: DisplayTab swallows a renewal failure; a
            // reconnect tries again after its delay.
            let what = format!("{purpose:?} acquire lost in the blackhole").to_lowercase();
            self.note(self.now, "network", what, false);
            if let Purpose::Reacquire { attempt } = purpose {
                self.record_attempt(attempt, None, "acquire failed (network)".into());
                self.schedule_reconnect();
            }
            return;
        }
        let at = self.now + self.latency;
        self.q.push(
            Micros(at),
            Ev::AcquireArrives {
                app_gen: self.app_gen,
                purpose,
            },
        );
    }

    /// The service's upsert: same holder ⇒ the lease is extended and a
    /// fresh token bound to the new `expires_at` is minted.
    fn acquire_arrives(&mut self, app_gen: u64, purpose: Purpose) {
        let minted = match self.service.acquire(Micros(self.now), HOLDER) {
            Ok(t) => t,
            // DisplayTab is the only holder, so the service has no one
            // else to answer "held by"; a refusal would end the click.
            Err(e) => {
                let what = format!("acquire refused: {e:?}");
                self.note(self.now, "server", what, false);
                return;
            }
        };
        let expires = minted.expires_at.0;
        self.tokens.push(minted);
        let token = self.tokens.len() - 1;
        let what = match purpose {
            Purpose::Click => "lease granted",
            Purpose::Renewal => "lease renewed (same holder)",
            Purpose::Reacquire { .. } => "lease re-acquired for reconnect",
        };
        self.leases.push(LeaseEvent {
            at: secs(Micros(self.now)),
            what: format!("{what}, token {}", token_name(&self.tokens[token])),
            expires_at: Some(secs(Micros(expires))),
        });
        self.q.push(Micros(expires), Ev::LeaseCheck);
        let back = self.now + self.latency;
        self.q.push(
            Micros(back),
            Ev::AcquireAnswered {
                app_gen,
                purpose,
                token: Some(token),
            },
        );
    }

    fn acquire_answered(&mut self, app_gen: u64, purpose: Purpose, token: Option<usize>) {
        if app_gen != self.app_gen {
            self.note(
                self.now,
                "client",
                "stale acquire answer ignored (generation guard)",
                false,
            );
            return;
        }
        let Some(token) = token else { return };
        self.latest_token = Some(token);
        match purpose {
            Purpose::Click => {
                self.click_token = Some(token);
                if self.c.flag("renewal") {
                    self.renewal.acquired(Micros(self.now), false);
                    self.schedule_renewal();
                }
                self.dial(0, token);
            }
            // The live stream keeps its URL; the fresh one waits in a ref.
            Purpose::Renewal => {}
            Purpose::Reacquire { attempt } => self.dial(attempt, token),
        }
    }

    /// The renewal timer's next tick, if it runs.
    fn schedule_renewal(&mut self) {
        if let Some(at) = self.renewal.poll_timeout() {
            self.q.push(at, Ev::RenewTick);
        }
    }

    fn dial(&mut self, attempt: u64, token: usize) {
        let expires = self.tokens[token].expires_at;
        if Micros(self.now) >= expires {
            self.violate(
                "novnc.dial_expired_token",
                format!(
                    "reconnect dials token {} which expired at {}",
                    token_name(&self.tokens[token]),
                    t_plus(secs(expires))
                ),
            );
        }
        self.stream = Stream::Connecting;
        let at = self.now + self.latency;
        self.q.push(Micros(at), Ev::DialArrives { attempt, token });
    }

    fn dial_answered(&mut self, attempt: u64, token: usize, refusal: Option<String>) {
        if self.stream != Stream::Connecting {
            return;
        }
        let name = token_name(&self.tokens[token]);
        match refusal {
            None => {
                self.stream = Stream::Connected;
                self.stream_gen += 1;
                self.sessions += 1;
                self.summary.generations += 1;
                self.close_link();
                self.link = Some(self.net.open_established((), Micros(self.now)));
                self.last_rx = self.now;
                let what = format!("noVNC connected with token {name}");
                self.note(self.now, "client", what, false);
                if attempt > 0 {
                    self.record_attempt(attempt, Some(name), "connected".into());
                    self.lost = None;
                }
                let mut proxy = WsProxy::new(self.c.duration("websockify_heartbeat"));
                proxy.handle_connect(Micros(self.now));
                if let Some(at) = proxy.poll_timeout() {
                    let stream_gen = self.stream_gen;
                    self.q.push(at, Ev::Heartbeat { stream_gen });
                }
                self.proxy = Some(proxy);
            }
            Some(why) => {
                // noVNC: the socket closed while `connecting` ⇒ _fail ⇒
                // clean = false (rfb.js:670-671).
                self.stream = Stream::Idle;
                self.record_attempt(attempt, Some(name), why.clone());
                self.lost
                    .get_or_insert((self.now, "novnc.connect_failed".into()));
                if attempt > 0 && why.starts_with("HTTP 401") {
                    self.lost = Some((self.lost_at(), "http.401_stale_token".into()));
                }
                self.after_disconnect(false, false);
            }
        }
    }

    fn lost_at(&self) -> u64 {
        self.lost.as_ref().map_or(self.now, |l| l.0)
    }

    fn record_attempt(&mut self, attempt: u64, credential: Option<String>, result: String) {
        if self.reconnects.len() >= RECORDED_ATTEMPTS && result != "connected" {
            self.failed_attempts_unrecorded += 1;
            return;
        }
        let delay = self.c.duration("reconnect_delay");
        self.reconnects.push(ReconnectAttempt {
            attempt,
            scheduled_at: secs(Micros(self.now)),
            delay: format_duration(delay),
            started_at: Some(secs(Micros(self.now))),
            credential,
            result,
        });
    }

    /// The stream closes while `connected`.
    fn stream_closed(&mut self, code: u64, cause: &str) {
        self.stream = Stream::Idle;
        self.stream_gen += 1;
        self.proxy = None;
        self.close_link();
        self.summary.last_closed_at = Some(secs(Micros(self.now)));
        self.summary.last_closed_by = Some(cause.into());
        self.lost.get_or_insert((self.now, cause.into()));
        self.first_drop.get_or_insert((self.now, cause.into()));
        let novnc_clean = true;
        let pr_clean = code == 1000;
        let what = format!(
            "WebSocket closed ({code}) while connected: noVNC reports clean=true (rfb.js:669-677){}",
            if novnc_clean != pr_clean {
                "; PR #2216 assumed unclean here and a reconnect"
            } else {
                ""
            }
        );
        self.note(self.now, "client", what, false);
        let clean = if self.c.flag("pr_clean_assumption") {
            pr_clean
        } else {
            novnc_clean
        };
        self.after_disconnect(clean, novnc_clean != pr_clean);
    }

    fn after_disconnect(&mut self, clean: bool, differs: bool) {
        if self.inhibited {
            return;
        }
        let wants = self.c.flag("auto_reconnect") && (!clean || self.c.flag("reconnect_on_clean"));
        if wants && clean {
            self.violate(
                "novnc.reconnect_after_clean_disconnect",
                "reconnecting after a clean disconnect".into(),
            );
        }
        if wants {
            self.schedule_reconnect();
            return;
        }
        if self.c.flag("auto_reconnect") && clean && differs {
            self.note(
                self.now,
                "client",
                "no reconnect: DisplayTab reconnects on !clean only, and noVNC said clean",
                false,
            );
        }
        // The control session is over: DisplayTab stops renewing.
        if self.renewal.is_running() {
            self.renewal.stop();
            self.note(self.now, "client", "renewal timer stopped", false);
        }
    }

    fn schedule_reconnect(&mut self) {
        let at = self.now + self.c.duration("reconnect_delay").0;
        self.q.push(
            Micros(at),
            Ev::ReconnectDue {
                app_gen: self.app_gen,
            },
        );
    }

    fn finish(mut self, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
        let holding = self.stream == Stream::Connected && self.lease_valid_at_horizon();
        if self.failed_attempts_unrecorded > 0 {
            let what = format!(
                "{} further reconnect attempts until the horizon, none connected",
                self.failed_attempts_unrecorded
            );
            let end = self.horizon.min(self.now.max(self.lost_at()));
            self.note(end, "client", what, false);
        }
        let recovered = self.first_drop.clone().filter(|_| self.sessions > 1);
        let (outcome, at, cause) = if holding || self.user_closed.is_some() {
            // Up to the end, or to the user's close: a recovered run reports
            // its drop, as every profile does.
            match (recovered, self.user_closed) {
                (Some((at, cause)), _) => (Outcome::Survived, Some(secs(Micros(at))), Some(cause)),
                (None, Some(u)) => (
                    Outcome::Survived,
                    Some(secs(Micros(u))),
                    Some("client.closed".to_string()),
                ),
                (None, None) => (Outcome::Survived, None, None),
            }
        } else {
            let (at, cause) = self
                .lost
                .clone()
                .unwrap_or((self.now, "control.lost".into()));
            let any_attempt = !self.reconnects.is_empty();
            let outcome = if any_attempt {
                Outcome::DeadSession
            } else {
                Outcome::Disconnected
            };
            (outcome, Some(secs(Micros(at))), Some(cause))
        };
        let mut environment = BTreeMap::new();
        let hb = self.c.duration("websockify_heartbeat");
        environment.insert(
            "websockify".into(),
            if hb > Micros::ZERO {
                format!("--heartbeat {}", format_duration(hb))
            } else {
                "no heartbeat".into()
            },
        );
        environment.insert(
            "lb".into(),
            match self.net.lb {
                None => "none".into(),
                Some((i, e)) => format!("idle {} then {}", format_duration(i), e.as_str()),
            },
        );
        environment.insert(
            "control".into(),
            format!(
                "lease ttl {}, same-holder upsert extends",
                format_duration(Micros(self.ttl))
            ),
        );
        environment.insert(
            "novnc_clean_rule".into(),
            if self.c.flag("pr_clean_assumption") {
                "PR #2216 assumption: close code != 1000 is unclean".into()
            } else {
                "noVNC 1.7: close while connected is clean (rfb.js:669-677)".into()
            },
        );
        Verdict {
            outcome,
            at,
            cause,
            channel: (outcome != Outcome::Survived).then(|| "display".into()),
            violations: self.violations.into_values().collect(),
            environment,
            sessions: self.sessions,
            chain: self.chain,
            reconnects: self.reconnects,
            leases: self.leases,
            channels: vec![self.summary],
            steps: self.steps,
            ..super::run_verdict(NOVNC_DISPLAYTAB.name, self.c, variant, t, input)
        }
    }

    fn lease_valid_at_horizon(&mut self) -> bool {
        self.now = self.horizon;
        self.service.holder(Micros(self.horizon)).is_some()
    }
}
