//! What-if: the environment a capture shows, written as a synthetic
//! timeline, re-run against other variants or constants.

use super::diagnose::EnvFacts;
use super::session::Session;
use crate::model::constants::Constants;
use crate::model::registry::run_timeline;
use crate::timeline::Micros;
use crate::timeline::synthetic::{
    ChannelKind, Dur, LbSpec, NetworkSpec, ScriptEvent, ServerSpec, Timeline,
};
use crate::verdict::{Outcome, Verdict};
use serde::Serialize;

/// What the run after the capture's end may still decide: reconnect
/// budgets and backoffs, well inside ten minutes.
const HORIZON_AFTER_END: f64 = 600.0;

fn dur(secs: f64) -> Dur {
    // Millisecond precision keeps the extracted timeline readable.
    Dur(Micros((secs.max(0.0) * 1000.0).round() as u64 * 1000))
}

fn channel_kind(name: &str) -> Option<ChannelKind> {
    use ChannelKind::*;
    Some(match name {
        "main" => Main,
        "display" => Display,
        "inputs" => Inputs,
        "cursor" => Cursor,
        "playback" => Playback,
        "record" => Record,
        "usbredir" => Usbredir,
        "webdav" => Webdav,
        _ => return None,
    })
}

/// The variant names of `profile`.
pub fn variants(profile: &str) -> Vec<&'static str> {
    crate::model::registry::variants(profile)
}

/// Every constant of `spec` (name@variant) on `timeline`, overrides applied.
pub fn constants(
    spec: &str,
    timeline: &Timeline,
    overrides: &[String],
) -> Result<Constants, String> {
    crate::model::registry::constants(spec, timeline, overrides)
}

/// Writes the capture's environment as a timeline. `channels` are the
/// SPICE channels the session ran (empty for other protocols).
pub fn extract(s: &Session, env: &EnvFacts, channels: &[String]) -> Timeline {
    // A timeline starts with its session: the environment's times move
    // from the input's clock to the session's model zero.
    let since_start = |t: f64| dur(t - s.model_zero);
    let mut events = Vec::new();
    if let Some((at, until)) = env.client_stall {
        events.push(ScriptEvent::ClientStalls {
            at: since_start(at),
            until: until.map(since_start),
        });
    }
    if let Some(at) = env.server_killed {
        events.push(ScriptEvent::ServerKilled {
            at: since_start(at),
        });
        if let Some(back) = env.server_back {
            events.push(ScriptEvent::ServerRestarted {
                at: since_start(back.max(at)),
            });
        }
    }
    if let Some((from, to)) = env.network_dead {
        events.push(ScriptEvent::Blackhole {
            from: since_start(from),
            to: since_start(to.unwrap_or(env.end + HORIZON_AFTER_END)),
        });
    }
    if let Some((from, to)) = env.relay_hold {
        events.push(ScriptEvent::RelayHolds {
            from: since_start(from),
            to: since_start(to),
        });
    }
    if let Some(at) = env.server_stall {
        events.push(ScriptEvent::ServerStopsAnswering {
            at: since_start(at),
            channel: None,
        });
    }
    if let Some(at) = env.server_close {
        events.push(ScriptEvent::ServerCloses {
            at: since_start(at),
        });
    }
    if let Some(at) = env.user_close {
        events.push(ScriptEvent::UserClose {
            at: since_start(at),
        });
    }
    if let Some(at) = env.auth_refused {
        events.push(ScriptEvent::AuthRefused {
            at: since_start(at),
        });
    }
    let mut kinds: Vec<ChannelKind> = channels.iter().filter_map(|c| channel_kind(c)).collect();
    kinds.sort();
    kinds.dedup();
    if kinds.is_empty() {
        kinds = crate::timeline::synthetic::default_channels();
    }
    if !kinds.contains(&ChannelKind::Main) {
        kinds.insert(0, ChannelKind::Main);
    }
    Timeline {
        horizon: dur((env.end - s.model_zero + HORIZON_AFTER_END).max(0.0).ceil()),
        description: format!(
            "environment of the {} session to {} as the capture shows it",
            s.kind, s.server
        ),
        channels: kinds,
        network: measured_latency(s)
            .map_or_else(NetworkSpec::default, |l| NetworkSpec { latency: Dur(l) }),
        server: ServerSpec::default(),
        lb: env.lb_idle.map(|(n, on_expiry)| LbSpec {
            idle_timeout: dur(n),
            on_expiry,
        }),
        events,
    }
}

/// One-way latency as the capture shows it: half the median round trip
/// from a ping to the pong that answers it, since a peer answers a ping at
/// once (RFC 6455 §5.5.2; SPICE, protocol-facts §1.14). `None` without
/// such a pair (the model's default stands).
fn measured_latency(s: &Session) -> Option<Micros> {
    latency_measurement(s).map(|(l, _)| l)
}

/// The measured latency and how many ping-pong pairs it is the median of.
fn latency_measurement(s: &Session) -> Option<(Micros, usize)> {
    let mut rtts: Vec<f64> = Vec::new();
    for c in s.channels() {
        let mut waiting: Option<(f64, &str)> = None;
        for m in &c.marks {
            match (m.what(), waiting) {
                ("ping", None) => waiting = Some((m.at, m.dir())),
                ("pong", Some((at, dir))) if m.dir() != dir => {
                    rtts.push(m.at - at);
                    waiting = None;
                }
                _ => {}
            }
        }
    }
    rtts.sort_by(f64::total_cmp);
    // Microseconds are the model's grain; a loopback capture can time a
    // round trip at zero, which is still a measurement.
    let rtt = rtts.get(rtts.len() / 2)?;
    Some((
        Micros(((rtt / 2.0 * 1e6).round() as u64).max(1)),
        rtts.len(),
    ))
}

/// What the environment's facts were taken from, each beside its name:
/// the diagnosis's citations, and the latency's measurement.
pub fn citations(s: &Session, env: &EnvFacts) -> Vec<EnvCitation> {
    let mut out: Vec<EnvCitation> = env
        .citations()
        .into_iter()
        .map(|(fact, because)| EnvCitation {
            fact: fact.to_string(),
            because,
        })
        .collect();
    out.push(EnvCitation {
        fact: "latency".into(),
        because: match latency_measurement(s) {
            Some((_, n)) => format!(
                "half the median round trip of {n} ping{} to the pong answering {}",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "each" }
            ),
            None => "no ping answered by a pong: the model's default".into(),
        },
    });
    out
}

/// One fact of the extracted environment and the evidence it rests on.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct EnvCitation {
    pub fact: String,
    pub because: String,
}

/// One re-run and how it ended.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct WhatIf {
    /// `name@variant`, plus what changed in the environment, if anything.
    pub run: String,
    pub outcome: &'static str,
    pub at: Option<f64>,
    pub cause: Option<String>,
    pub channel: Option<String>,
    /// Sessions that came up (1 = never reconnected).
    pub sessions: u64,
    /// When the first successful reconnect came up.
    pub recovered_at: Option<f64>,
    pub summary: String,
    /// When the client's own connection on `channel` saw the end: later
    /// than `at` when something between held the close.
    #[serde(skip)]
    pub client_saw_at: Option<f64>,
    #[serde(skip)]
    pub verdict: Option<Verdict>,
}

/// One run's outcome, its times moved from the model's clock (zero at the
/// session's model zero) onto the input's by `offset` seconds.
fn summarize(run: String, v: Verdict, offset: f64) -> WhatIf {
    let at = v.at.map(|a| a + offset);
    let client_saw_at = v
        .channels
        .iter()
        .find(|c| Some(&c.channel) == v.channel.as_ref())
        .and_then(|c| c.last_closed_at)
        .map(|a| a + offset);
    let recovered_at = v
        .reconnects
        .iter()
        .find(|r| {
            !(r.result.starts_with("failed")
                || r.result.starts_with("refused")
                || r.result.starts_with("HTTP"))
        })
        .and_then(|r| r.started_at)
        .map(|r| r + offset);
    let summary = match (v.outcome, recovered_at) {
        (Outcome::Survived, Some(r)) if v.sessions > 1 => format!(
            "recovers at T+{r:.3} after {} reconnect{}",
            v.sessions - 1,
            if v.sessions == 2 { "" } else { "s" }
        ),
        (Outcome::Survived, _) if v.cause.as_deref() == Some("client.closed") => format!(
            "survives until the user closes it at T+{:.3}",
            at.unwrap_or(0.0)
        ),
        (Outcome::Survived, _) => {
            format!("survives to the T+{:.0} horizon", v.horizon + offset)
        }
        (o, _) => format!(
            "{} at T+{:.3}: {} on {}",
            o.as_str().replace('_', " "),
            at.unwrap_or(0.0),
            v.cause.as_deref().unwrap_or("?"),
            v.channel.as_deref().unwrap_or("-")
        ),
    };
    WhatIf {
        run,
        outcome: v.outcome.as_str(),
        at,
        cause: v.cause.clone(),
        channel: v.channel.clone(),
        sessions: v.sessions,
        recovered_at,
        summary,
        client_saw_at,
        verdict: Some(v),
    }
}

/// Runs the timeline against every variant of `profile`, and, when the
/// capture shows a client fault, once more without it. `offset` is where
/// the timeline's zero is on the input's clock (`Session::model_zero`).
pub fn run_all(
    timeline: &Timeline,
    input: &str,
    (profile, variant): (&str, &str),
    overrides: &[String],
    offset: f64,
) -> Vec<WhatIf> {
    let mut out = Vec::new();
    for v in variants(profile) {
        let spec = format!("{profile}@{v}");
        match run_timeline(timeline, input, &spec, overrides) {
            Ok(verdict) => out.push(summarize(spec, verdict, offset)),
            Err(e) => out.push(WhatIf {
                run: spec,
                outcome: "error",
                at: None,
                cause: None,
                channel: None,
                sessions: 0,
                recovered_at: None,
                client_saw_at: None,
                summary: e,
                verdict: None,
            }),
        }
    }
    let stall = |e: &ScriptEvent| matches!(e, ScriptEvent::ClientStalls { .. });
    if timeline.events.iter().any(stall) {
        let mut without = timeline.clone();
        without.events.retain(|e| !stall(e));
        let spec = format!("{profile}@{variant}");
        if let Ok(verdict) = run_timeline(&without, input, &spec, overrides) {
            out.push(summarize(
                format!("{spec} without the client stall"),
                verdict,
                offset,
            ));
        }
    }
    out
}

/// Whether the model, given the capture's environment and the recorded
/// client's profile, ends the session as the recording did: the check that
/// comes before believing any what-if.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Reproduction {
    /// The run of the recorded client (`name@variant`).
    pub run: String,
    pub reproduced: bool,
    /// What the recording and the model disagree on, each with both sides.
    pub differences: Vec<String>,
}

/// Whether the model's cause is the recorded one. Model and triage share
/// one vocabulary (`verdict::cause`); the two pairs below are one fact that
/// the capture sees more of than a timeline can say.
fn same_cause(recorded: &str, model: &str) -> bool {
    recorded == model
        || matches!(
            (recorded, model),
            // A timeline's `server_killed` is whatever process the client's
            // stream ends at; the capture tells whether it was a relay.
            ("relay.killed", "server.killed")
                // An upgrade answered 401 or 403 is how a relay refuses a
                // login.
                | ("http.refused", "auth.refused")
        )
}

/// Compares the recorded client's run with the recording. `None` when
/// there is nothing to compare: no run of the recorded profile, or an
/// ending the evidence left undecided.
pub fn reproduction(
    profile: &str,
    d: &super::diagnose::Diagnosis,
    runs: &[WhatIf],
) -> Option<Reproduction> {
    use super::diagnose::SessionOutcome as S;
    let run = runs.iter().find(|w| w.run == profile)?;
    let cause = d.cause.as_deref().filter(|c| *c != "unknown")?;
    let mut differences = Vec::new();
    let model_cause = run.cause.as_deref().unwrap_or("none");
    let user_close = same_cause("client.closed", model_cause) && cause == "client.closed";
    // The SPICE model names what the client saw of a load balancer's cut
    // (a FIN or a reset, or keep-alive finding the flow gone); its chain
    // says the load balancer did it.
    let lb_cut = cause == "lb.idle_timeout"
        && matches!(
            model_cause,
            "tcp.reset" | "tcp.fin_from_server" | "tcp.keepalive_timeout"
        )
        && run.verdict.as_ref().is_some_and(|v| {
            v.chain
                .iter()
                .any(|e| e.actor == "lb" && v.at.is_none_or(|at| e.at <= at))
        });
    if !lb_cut && !same_cause(cause, model_cause) {
        differences.push(format!("cause: recorded {cause}, model {model_cause}"));
    }
    // A user's close ends the model's run as "survived": no fault ended it.
    let outcome_ok = user_close
        || match d.outcome {
            S::Recovered => run.outcome == "survived" && run.sessions > 1,
            S::Disconnected => run.outcome == "disconnected",
            // A client that never reconnects: the recorded refused
            // attempts were a new process (the user's), which the run of
            // the one client does not make; both say nothing got back in.
            S::DeadSession => {
                run.outcome == "dead_session"
                    || (run.outcome == "disconnected"
                        && run.verdict.as_ref().is_some_and(|v| {
                            v.constants.get("auto_reconnect").map(String::as_str) == Some("false")
                        }))
            }
            // Nothing came up in the recording; nor may it in the run.
            S::Refused => run.sessions == 0,
            S::Open => true,
        };
    if !outcome_ok {
        differences.push(format!(
            "outcome: recorded {}, model {}",
            super::outcome_str(d.outcome),
            run.outcome
        ));
    }
    // A timer that fires on ticks lands anywhere in its window; any other
    // ending is one instant both should agree on.
    let tolerance = if cause == "server.connectivity_timeout" {
        d.timers.connectivity_tick
    } else {
        1.0
    };
    // The capture dates the end when it crossed the capture point: the
    // model's cause, or the client's own connection seeing it, which comes
    // later when something between held the close.
    let off = |r: f64| {
        [run.at, run.client_saw_at]
            .into_iter()
            .flatten()
            .map(|m| (r - m).abs())
            .fold(f64::INFINITY, f64::min)
    };
    match (d.at, run.at) {
        (Some(r), Some(m)) if off(r) > tolerance => differences.push(format!(
            "time: recorded T+{r:.3}, model T+{m:.3} (more than {tolerance:.0} s apart)"
        )),
        (Some(r), None) => differences.push(format!(
            "time: recorded T+{r:.3}, the model's run did not end"
        )),
        _ => {}
    }
    Some(Reproduction {
        run: run.run.clone(),
        reproduced: differences.is_empty(),
        differences,
    })
}
