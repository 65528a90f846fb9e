//! `wormhole-pane`: one terminal pane of seed 004 (PR #39, stale session
//! detection and lazy reconnect). The sandbox sleeps after 10 idle
//! minutes; its terminal socket closes and the pane shows "Disconnected —
//! press any key". A keystroke into a dead pane calls `reconnectTerminal`,
//! which wakes the sandbox and reopens the terminal at the size kept in
//! `paneSizes`.
//!
//! Variants:
//! - `racy`: `!reconnecting.has(pty)` is checked, then
//!   `await reconnectTerminal()`, which adds the pty to the set only after
//!   its own first await (`reconnecting_add_after`); every keystroke in
//!   that window starts another reconnect (seed 004 review, issue 1);
//! - `fixed`: the pty is added to the set before the first await.

use super::super::constants::{Constants, Value};
use super::super::duration::format_duration;
use super::super::profile::Variant;
use super::super::sim::EventQueue;
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

/// Livelock guard, as in sim.rs.
const MAX_STEPS: u64 = 5_000_000;

#[derive(Clone, Debug)]
enum Ev {
    Keystroke,
    Unmodelled(&'static str),
    SleepCheck,
    AddToSet,
    Reopened { attempt: u64 },
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
    let idle = c.duration("sandbox_idle_sleep").0;
    let size = format!("{}x{}", c.count("pane_cols"), c.count("pane_rows"));
    let mut chain = Vec::new();
    let mut note = |at: u64, actor: &'static str, what: String, script: bool| {
        chain.push(ChainEntry {
            at: secs(Micros(at)),
            actor,
            what,
            basis: if script { Basis::Script } else { Basis::Model },
        })
    };
    note(0, "client", format!("pane opened at {size}"), false);
    let mut connected = true;
    let mut last_activity = 0u64;
    q.push(Micros(idle), Ev::SleepCheck);
    let mut reconnecting = false;
    let mut in_flight = 0u64;
    let mut attempts = 0u64;
    let mut reconnects = Vec::new();
    let mut sessions = 1u64;
    let mut lost: Option<u64> = None;
    let mut steps = 0u64;
    let mut violation: Option<Violation> = None;
    let mut step_bound: Option<Violation> = None;
    let mut summary = ChannelSummary {
        channel: "pane".into(),
        generations: 1,
        ..ChannelSummary::default()
    };
    while let Some((at, ev)) = q.pop() {
        let now = at.0;
        if now > horizon {
            break;
        }
        steps += 1;
        if steps > MAX_STEPS {
            step_bound = Some(Violation {
                code: "model.step_bound".into(),
                at: secs(Micros(now)),
                channel: None,
                message: format!("more than {MAX_STEPS} steps: livelock in the model"),
                count: 1,
            });
            break;
        }
        match ev {
            Ev::Unmodelled(name) => note(
                now,
                "script",
                super::unmodelled_note(name, "wormhole-pane"),
                true,
            ),
            Ev::SleepCheck => {
                if connected && now >= last_activity + idle {
                    connected = false;
                    lost = Some(now);
                    summary.last_closed_at = Some(secs(Micros(now)));
                    summary.last_closed_by = Some("sandbox.sleep".into());
                    note(
                        now,
                        "server",
                        format!(
                            "sandbox sleeps after {} idle: pane disconnected, size {size} kept",
                            format_duration(Micros(idle))
                        ),
                        false,
                    );
                } else if connected {
                    q.push(Micros(last_activity + idle), Ev::SleepCheck);
                }
            }
            Ev::Keystroke => {
                if connected {
                    last_activity = now;
                    summary.messages_received += 1;
                    continue;
                }
                // `else if (!this.reconnecting.has(ptyId))`
                if reconnecting {
                    continue;
                }
                attempts += 1;
                in_flight += 1;
                if in_flight > 1 && violation.is_none() {
                    violation = Some(Violation {
                        code: "wormhole.concurrent_reconnect".into(),
                        at: secs(Micros(now)),
                        channel: Some("pane".into()),
                        message:
                            "a second reconnect started while one was in flight for the same pane"
                                .into(),
                        count: 0,
                    });
                }
                if let Some(v) = violation.as_mut().filter(|_| in_flight > 1) {
                    v.count += 1;
                }
                note(
                    now,
                    "user",
                    format!("keystroke into the dead pane: reconnect #{attempts}"),
                    true,
                );
                let add_after = c.duration("reconnecting_add_after").0;
                if add_after == 0 {
                    reconnecting = true;
                } else {
                    q.push(Micros(now + add_after), Ev::AddToSet);
                }
                let wake = c.duration("sandbox_wake").0;
                q.push(Micros(now + wake), Ev::Reopened { attempt: attempts });
            }
            Ev::AddToSet => reconnecting = true,
            Ev::Reopened { attempt } => {
                in_flight -= 1;
                if in_flight == 0 {
                    reconnecting = false;
                }
                let result = if connected {
                    "terminal reopened again: replaces the live one, which is orphaned".to_string()
                } else {
                    format!("terminal reopened at {size}")
                };
                reconnects.push(ReconnectAttempt {
                    attempt,
                    scheduled_at: secs(Micros(now - c.duration("sandbox_wake").0)),
                    delay: "0s".into(),
                    started_at: Some(secs(Micros(now))),
                    credential: None,
                    result: result.clone(),
                });
                note(now, "server", result, false);
                connected = true;
                last_activity = now;
                sessions += 1;
                summary.generations += 1;
                q.push(Micros(now + idle), Ev::SleepCheck);
            }
        }
    }
    let (outcome, at, cause) = if connected {
        (Outcome::Survived, None, None)
    } else {
        (
            Outcome::Disconnected,
            lost.map(|l| secs(Micros(l))),
            Some("sandbox.sleep".to_string()),
        )
    };
    let mut environment = BTreeMap::new();
    environment.insert(
        "sandbox".into(),
        format!("sleeps after {} idle", format_duration(Micros(idle))),
    );
    Verdict {
        outcome,
        at,
        cause,
        channel: (outcome != Outcome::Survived).then(|| "pane".into()),
        violations: violation.into_iter().chain(step_bound).collect(),
        profile: WORMHOLE_PANE.name.into(),
        variant: variant.name.into(),
        constants: c.snapshot(),
        input: input.into(),
        horizon: secs(t.horizon.0),
        environment,
        sessions,
        chain,
        reconnects,
        leases: Vec::new(),
        channels: vec![summary],
        steps,
        capture: None,
    }
}
