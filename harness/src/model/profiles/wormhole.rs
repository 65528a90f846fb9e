//! `wormhole-pane`: one terminal pane of seed 004 (PR #39, stale session
//! detection and lazy reconnect). The sandbox sleeps after 10 idle
//! minutes; its terminal socket closes and the pane shows "Disconnected —
//! press any key". A keystroke into a dead pane calls `reconnectTerminal`,
//! which wakes the sandbox and reopens the terminal at the size kept in
//! `paneSizes`. The sandbox is `env::SandboxHost`: one host wakes once,
//! so every reopen started while it wakes waits for that same wake.
//!
//! Variants:
//! - `racy`: `!reconnecting.has(pty)` is checked, then
//!   `await reconnectTerminal()`, which adds the pty to the set only after
//!   its own first await (`reconnecting_add_after`); every keystroke in
//!   that window starts another reconnect (seed 004 review, issue 1);
//! - `fixed`: the pty is added to the set before the first await.

use super::super::clock::{self, EventQueue, MAX_STEPS};
use super::super::constants::{Constants, Value};
use super::super::duration::format_duration;
use super::super::env::{SandboxHost, SandboxOutput};
use super::super::profile::Variant;
use super::OtherProfile;
use crate::timeline::Micros;
use crate::timeline::synthetic::{ScriptEvent, Timeline};
use crate::verdict::{
    Basis, ChainEntry, ChannelSummary, Outcome, ReconnectAttempt, Verdict, Violation, secs,
};
use std::collections::BTreeMap;

pub const WORMHOLE_PANE: OtherProfile = OtherProfile {
    name: "wormhole-pane",
    about: "wormhole terminal pane: sandbox sleeps after 10 idle min, keystroke-triggered lazy reconnect (seed 004)",
    variants: &[
        Variant {
            name: "racy",
            about: "check reconnecting, await, then add: a keystroke burst starts several reconnects",
            apply: |_| {},
        },
        Variant {
            name: "fixed",
            about: "pty added to reconnecting before the first await",
            apply: |c| {
                c.set("reconnecting_add_after", "0s")
                    .unwrap_or_else(|e| unreachable!("variant table: {e}"))
            },
        },
    ],
    define,
    run,
};

fn define(c: &mut Constants, t: &Timeline) {
    use Value::*;
    super::define_latency(c, t);
    c.define(
        "sandbox_idle_sleep",
        Duration(Micros(600_000_000)),
        "seed 004: wait ~10min for sandbox to sleep",
    );
    c.define(
        "reconnecting_add_after",
        Duration(Micros(50_000)),
        "model: time reconnectTerminal spends before reconnecting.add (WormholeServer.ts:556)",
    );
    c.define(
        "sandbox_wake",
        Duration(Micros(2_000_000)),
        "model: sandbox wake + terminal socket open (not stated in seed 004)",
    );
    c.define(
        "pane_cols",
        Count(120),
        "model: the pane's size kept in paneSizes",
    );
    c.define(
        "pane_rows",
        Count(40),
        "model: the pane's size kept in paneSizes",
    );
}

#[derive(Clone, Debug)]
enum Ev {
    Keystroke,
    Unmodelled(&'static str),
    /// The sandbox host's timer: idle sleep, or the end of a wake.
    HostTimer,
    AddToSet,
    Reopened {
        attempt: u64,
        asked_at: u64,
    },
}

/// One pane and the sandbox behind it, as `WormholeServer.ts` runs them.
struct Pane<'a> {
    c: &'a Constants,
    q: EventQueue<Ev>,
    host: SandboxHost,
    idle: u64,
    size: String,
    chain: Vec<ChainEntry>,
    connected: bool,
    /// `reconnecting.has(ptyId)`.
    reconnecting: bool,
    in_flight: u64,
    attempts: u64,
    reconnects: Vec<ReconnectAttempt>,
    sessions: u64,
    lost: Option<u64>,
    violation: Option<Violation>,
    summary: ChannelSummary,
}

fn run(c: &Constants, variant: &Variant, t: &Timeline, input: &str) -> Verdict {
    let horizon = t.horizon.0.0;
    let mut q = EventQueue::new();
    for e in &t.events {
        match e {
            ScriptEvent::UserActive { from, to, every } => {
                let step = every.0.0.max(1);
                let mut at = from.0.0;
                while at <= to.0.0.min(horizon) {
                    q.push(Micros(at), Ev::Keystroke);
                    at += step;
                }
            }
            ScriptEvent::Keystroke { at, .. } => q.push(at.0, Ev::Keystroke),
            other => q.push(Micros::ZERO, Ev::Unmodelled(other.name())),
        }
    }
    let idle = c.duration("sandbox_idle_sleep");
    let host = SandboxHost::new(Micros::ZERO, idle, c.duration("sandbox_wake"));
    let mut pane = Pane {
        c,
        q,
        host,
        idle: idle.0,
        size: format!("{}x{}", c.count("pane_cols"), c.count("pane_rows")),
        chain: Vec::new(),
        connected: true,
        reconnecting: false,
        in_flight: 0,
        attempts: 0,
        reconnects: Vec::new(),
        sessions: 1,
        lost: None,
        violation: None,
        summary: ChannelSummary {
            channel: "pane".into(),
            generations: 1,
            ..ChannelSummary::default()
        },
    };
    let opened = format!("pane opened at {}", pane.size);
    pane.note(0, "client", opened, false);
    pane.watch_host();
    let (steps, step_bound) = clock::drive(&mut pane, Micros(horizon), MAX_STEPS);
    pane.finish(variant, t, input, steps, step_bound)
}

impl clock::Stepper for Pane<'_> {
    type Ev = Ev;
    fn next_event(&mut self) -> Option<(Micros, Ev)> {
        self.q.pop()
    }
    fn step(&mut self, now: Micros, ev: Ev) {
        self.handle(now.0, ev);
    }
}

impl Pane<'_> {
    fn note(&mut self, at: u64, actor: &'static str, what: String, script: bool) {
        self.chain.push(ChainEntry {
            at: secs(Micros(at)),
            actor,
            what,
            basis: if script { Basis::Script } else { Basis::Model },
        })
    }

    /// The host's next timer while the pane is up (its idle sleep); a
    /// waking host is watched by the reopens waiting for it.
    fn watch_host(&mut self) {
        if let Some(at) = self.host.poll_timeout() {
            self.q.push(at, Ev::HostTimer);
        }
    }

    fn handle(&mut self, now: u64, ev: Ev) {
        match ev {
            Ev::Unmodelled(name) => self.note(
                now,
                "script",
                super::unmodelled_note(name, "wormhole-pane"),
                true,
            ),
            Ev::HostTimer => {
                if !self.connected {
                    return;
                }
                self.host.handle_timeout(Micros(now));
                if self.host.poll_output() == Some(SandboxOutput::Slept) {
                    self.connected = false;
                    self.lost = Some(now);
                    self.summary.last_closed_at = Some(secs(Micros(now)));
                    self.summary.last_closed_by = Some("sandbox.sleep".into());
                    let what = format!(
                        "sandbox sleeps after {} idle: pane disconnected, size {} kept",
                        format_duration(Micros(self.idle)),
                        self.size
                    );
                    self.note(now, "server", what, false);
                } else if self.host.poll_timeout().is_some_and(|t| t.0 > now) {
                    self.watch_host();
                }
            }
            Ev::Keystroke => self.keystroke(now),
            Ev::AddToSet => self.reconnecting = true,
            Ev::Reopened { attempt, asked_at } => {
                // The first reopen to find the host ready completes its wake.
                self.host.handle_timeout(Micros(now));
                while self.host.poll_output().is_some() {}
                self.in_flight -= 1;
                if self.in_flight == 0 {
                    self.reconnecting = false;
                }
                let result = if self.connected {
                    "terminal reopened again: replaces the live one, which is orphaned".to_string()
                } else {
                    format!("terminal reopened at {}", self.size)
                };
                self.reconnects.push(ReconnectAttempt {
                    attempt,
                    scheduled_at: secs(Micros(asked_at)),
                    delay: "0s".into(),
                    started_at: Some(secs(Micros(now))),
                    credential: None,
                    result: result.clone(),
                });
                self.note(now, "server", result, false);
                self.connected = true;
                self.host.handle_activity(Micros(now));
                self.sessions += 1;
                self.summary.generations += 1;
                self.watch_host();
            }
        }
    }

    fn keystroke(&mut self, now: u64) {
        if self.connected {
            self.host.handle_activity(Micros(now));
            self.summary.messages_received += 1;
            return;
        }
        // `else if (!this.reconnecting.has(ptyId))`
        if self.reconnecting {
            return;
        }
        self.attempts += 1;
        self.in_flight += 1;
        if self.in_flight > 1 && self.violation.is_none() {
            self.violation = Some(Violation {
                code: "wormhole.concurrent_reconnect".into(),
                at: secs(Micros(now)),
                channel: Some("pane".into()),
                message: "a second reconnect started while one was in flight for the same pane"
                    .into(),
                count: 0,
            });
        }
        if let Some(v) = self.violation.as_mut().filter(|_| self.in_flight > 1) {
            v.count += 1;
        }
        let what = format!("keystroke into the dead pane: reconnect #{}", self.attempts);
        self.note(now, "user", what, true);
        let add_after = self.c.duration("reconnecting_add_after").0;
        if add_after == 0 {
            self.reconnecting = true;
        } else {
            self.q.push(Micros(now + add_after), Ev::AddToSet);
        }
        // A sleeping host starts waking; one already waking is not woken
        // twice: every reopen waits for the same wake.
        let ready = self.host.handle_activity(Micros(now));
        let attempt = self.attempts;
        self.q.push(
            ready,
            Ev::Reopened {
                attempt,
                asked_at: now,
            },
        );
    }

    fn finish(
        self,
        variant: &Variant,
        t: &Timeline,
        input: &str,
        steps: u64,
        step_bound: Option<Violation>,
    ) -> Verdict {
        let (outcome, at, cause) = if self.connected {
            (Outcome::Survived, None, None)
        } else {
            (
                Outcome::Disconnected,
                self.lost.map(|l| secs(Micros(l))),
                Some("sandbox.sleep".to_string()),
            )
        };
        let mut environment = BTreeMap::new();
        environment.insert(
            "sandbox".into(),
            format!("sleeps after {} idle", format_duration(Micros(self.idle))),
        );
        Verdict {
            outcome,
            at,
            cause,
            channel: (outcome != Outcome::Survived).then(|| "pane".into()),
            violations: self.violation.into_iter().chain(step_bound).collect(),
            environment,
            sessions: self.sessions,
            chain: self.chain,
            reconnects: self.reconnects,
            channels: vec![self.summary],
            steps,
            ..super::run_verdict(WORMHOLE_PANE.name, self.c, variant, t, input)
        }
    }
}
