//! Triage as text: the headline first, then the per-channel liveness
//! table, observations and inferences (labelled), ranked explanations,
//! violations and what-if runs.

use super::{SessionTriage, Triage, outcome_str};
use std::fmt::Write as _;

fn t(s: Option<f64>) -> String {
    s.map_or_else(|| "-".to_string(), super::diagnose::t)
}

pub fn text(tr: &Triage) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "triage {}; {}",
        tr.input,
        match tr.start {
            Some(at) => format!("T+0 = its first frame, {}", at.utc()),
            None => "T+0 = the session clock's zero".to_string(),
        }
    );
    if let (Some(i), Some("open")) = (tr.primary, tr.outcome) {
        let _ = writeln!(
            o,
            "{} OPEN: nothing ended the session before the capture did",
            tr.sessions[i].session.kind
        );
    } else if let (Some(i), Some(outcome)) = (tr.primary, tr.outcome) {
        // Recovered: when service was back and how long it was out first.
        let recovered = match (tr.recovered_at, tr.outage) {
            (Some(r), Some(len)) => format!(" at {} after {len:.3} s out; dropped", t(Some(r))),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "{} {}{recovered} at {}: {} on {}{}",
            tr.sessions[i].session.kind,
            outcome.to_uppercase().replace('_', " "),
            t(tr.at),
            tr.cause.as_deref().unwrap_or("cause unknown"),
            match (&tr.channel, &tr.sessions[i].diagnosis.zip_channel) {
                (Some(c), Some(z)) => format!("{c} (the zip's record: {z})"),
                (Some(c), None) => c.clone(),
                (None, _) => "-".into(),
            },
            tr.sessions[i]
                .diagnosis
                .origin
                .as_deref()
                .map(|x| format!(" (origin: {x})"))
                .unwrap_or_default()
        );
    }
    // Several clients, or none diagnosed below (`--summary`): the overview.
    if tr.summary.len() > 1 || (tr.sessions.is_empty() && !tr.summary.is_empty()) {
        summary(&mut o, tr);
    }
    if let Some(z) = &tr.zip {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "bug report {} (the client's own record, disconnect-cause.json): channel {}, {} at {}: {}",
            z.file,
            z.channel.as_deref().unwrap_or("?"),
            z.disconnect_kind.as_deref().unwrap_or("?"),
            t(z.ended_at),
            z.error_message.as_deref().unwrap_or("")
        );
        let _ = writeln!(
            o,
            "  {:<10} {:>12} {:>12} {:>6} {:>6} {:>12}  ended",
            "channel", "last recv", "last send", "pings", "pongs", "last ping"
        );
        for f in &z.per_channel {
            let _ = writeln!(
                o,
                "  {:<10} {:>12} {:>12} {:>6} {:>6} {:>12}  {}",
                f.channel,
                t(f.last_recv),
                t(f.last_send),
                f.pings_recv,
                f.pongs_sent,
                t(f.last_ping_recv),
                match (&f.ended_by, f.ended_at) {
                    (Some(b), at) => format!("{b} {}", t(at)),
                    (None, _) => "-".into(),
                }
            );
        }
        for f in &z.findings {
            let _ = writeln!(o, "  {f}");
        }
    }
    for st in &tr.sessions {
        let _ = writeln!(o);
        session(&mut o, st.number, st);
    }
    if !tr.findings.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "decode findings: {}", tr.findings.len());
        for f in tr.findings.iter().take(10) {
            let _ = writeln!(o, "  {f}");
        }
    }
    o
}

/// The server-side view: sessions counted by ending, then one row each.
pub fn summary(o: &mut String, tr: &Triage) {
    let counts: Vec<String> = tr
        .counts
        .iter()
        .map(|c| format!("{} {}", c.sessions, c.ending))
        .collect();
    let _ = writeln!(o);
    let _ = writeln!(o, "{} sessions: {}", tr.summary.len(), counts.join(", "));
    let _ = writeln!(
        o,
        "  {:>4}  {:<22} {:>11} {:>10}  {:<13} {:<30} {:<10} {:>8}",
        "#", "client", "start", "length", "outcome", "cause", "channel", "attempts"
    );
    for r in &tr.summary {
        let _ = writeln!(
            o,
            "  {:>4}  {:<22} {:>11} {:>10.3}  {:<13} {:<30} {:<10} {:>8}",
            r.number,
            r.client,
            t(Some(r.start)),
            r.length,
            r.outcome,
            r.cause.as_deref().unwrap_or("-"),
            r.channel.as_deref().unwrap_or("-"),
            r.attempts
        );
    }
}

fn session(o: &mut String, number: usize, st: &SessionTriage) {
    let s = &st.session;
    let d = &st.diagnosis;
    let relay = s
        .relay_of
        .map(|j| format!(", upstream leg of session {}", j + 1))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "session {}: {} to {}{relay}; from T+{:.3}, {:.3} s, {} generation{}, {} failed attempt{}",
        number,
        s.kind,
        s.server,
        s.first,
        s.duration,
        s.generations.len(),
        if s.generations.len() == 1 { "" } else { "s" },
        s.attempts.len(),
        if s.attempts.len() == 1 { "" } else { "s" },
    );
    // The numbers asked first: when service was back and how long it was
    // out, then what ended it, who closed, and every failed attempt.
    let recovered = match (d.recovered_at, d.outage) {
        (Some(r), Some(len)) => format!(" at {} after {len:.3} s out; dropped", t(Some(r))),
        _ => String::new(),
    };
    let _ = writeln!(
        o,
        "  {}{recovered}{}",
        outcome_str(d.outcome).to_uppercase().replace('_', " "),
        match (&d.cause, d.at) {
            (Some(c), at) => format!(
                " at {}: {}{c} on {}",
                t(at),
                if c == "client.closed" {
                    "deliberate close, "
                } else {
                    ""
                },
                d.channel.as_deref().unwrap_or("-")
            ),
            (None, Some(at)) => format!(" at {}", t(Some(at))),
            _ => String::new(),
        }
    );
    if d.recovered_at.is_none()
        && let Some(len) = d.outage
    {
        let _ = writeln!(
            o,
            "  outage survived: the path delivered nothing for {len:.3} s and came back"
        );
    }
    if let Some(by) = d.closed_by {
        let _ = writeln!(o, "  closed by: {by}");
    }
    for a in &d.failed_attempts {
        let _ = writeln!(
            o,
            "  failed attempt at {}: {}{}",
            t(Some(a.at)),
            a.reason,
            a.detail
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        );
    }
    if let Some(c) = &d.closed {
        let _ = writeln!(o, "  first close: {c}");
    }
    let _ = writeln!(
        o,
        "  {:<4} {:<10} {:>5} {:>10} {:>10} {:>10} {:>7} {:>7} {:>9}  ended",
        "gen", "channel", "conn", "opened", "last c→s", "last s→c", "ping↓", "pong↑", "silence"
    );
    for g in &s.generations {
        for c in &g.channels {
            let ended = match c.closes.first() {
                Some(x) => format!(
                    "{} {}{} {}",
                    x.by,
                    x.how,
                    x.code.map(|k| format!(" {k}")).unwrap_or_default(),
                    t(Some(x.at))
                ),
                None if c.open_at_end => "open at end".into(),
                None => "-".into(),
            };
            let _ = writeln!(
                o,
                "  {:<4} {:<10} {:>5} {:>10} {:>10} {:>10} {:>7} {:>7} {:>8.1}s  {ended}",
                g.index + 1,
                c.name,
                c.connection.to_string(),
                t(Some(c.opened_at)),
                t(c.last_c2s),
                t(c.last_s2c),
                c.pings_s2c,
                c.pongs_c2s,
                c.longest_s2c_silence,
            );
            if let Some(u) = &c.upgrade {
                let _ = writeln!(
                    o,
                    "       upgrade {} → {}{}",
                    u.target,
                    u.status.map_or("no response".into(), |s| s.to_string()),
                    u.credential_expires_at
                        .map(|e| format!(" (credential expires {})", t(Some(e))))
                        .unwrap_or_default()
                );
            }
        }
    }
    for a in &s.attempts {
        let _ = writeln!(
            o,
            "  attempt {} at {}: {}{}",
            a.connection,
            t(Some(a.at)),
            a.result,
            a.upgrade
                .as_ref()
                .map(|u| format!(" ({})", u.target))
                .unwrap_or_default()
        );
    }
    for r in &s.requests {
        let _ = writeln!(
            o,
            "  http request {} at {}: {} B sent, {} B received",
            r.connection,
            t(Some(r.at)),
            r.bytes_c2s,
            r.bytes_s2c
        );
    }
    if !d.observations.is_empty() {
        let _ = writeln!(o, "  observed:");
        for e in &d.observations {
            let _ = writeln!(
                o,
                "    {:>11} {:<8} {} [{}]",
                t(e.at),
                e.channel.as_deref().unwrap_or(""),
                e.text,
                e.source
            );
        }
    }
    if !d.inferences.is_empty() {
        let _ = writeln!(o, "  inferred:");
        for e in &d.inferences {
            let _ = writeln!(
                o,
                "    {:>11} {:<8} {}",
                t(e.at),
                e.channel.as_deref().unwrap_or(""),
                e.text
            );
        }
    }
    if !d.explanations.is_empty() {
        let _ = writeln!(o, "  explanations, most likely first:");
        for e in &d.explanations {
            let _ = writeln!(
                o,
                "    {}. {}{}: {}",
                e.rank,
                e.cause,
                e.origin
                    .as_deref()
                    .map(|x| format!(" (origin: {x})"))
                    .unwrap_or_default(),
                e.summary
            );
            for s in &e.supports {
                let _ = writeln!(o, "       + {s}");
            }
            for s in &e.against {
                let _ = writeln!(o, "       - {s}");
            }
        }
    }
    if let Some(p) = &st.profile {
        let _ = writeln!(
            o,
            "  conformance to {p} ({}): {}",
            st.profile_basis,
            if st.violations.is_empty() {
                "no violation seen".to_string()
            } else {
                format!("{} violation(s)", st.violations.len())
            }
        );
        for v in &st.violations {
            let _ = writeln!(
                o,
                "    {} {} {}: {}",
                t(Some(v.at)),
                v.code,
                v.channel.as_deref().unwrap_or(""),
                v.message
            );
            for e in &v.evidence {
                let _ = writeln!(o, "       · {e}");
            }
        }
    }
    if !st.what_if.is_empty() {
        let env = st
            .environment
            .as_ref()
            .map(|tl| {
                let mut parts: Vec<String> = tl
                    .events
                    .iter()
                    .map(|e| {
                        serde_json::to_value(e)
                            .ok()
                            .and_then(|v| {
                                v.as_object().map(|m| {
                                    let kind = m.get("kind").and_then(|k| k.as_str());
                                    let args = m
                                        .iter()
                                        .filter(|(k, v)| k.as_str() != "kind" && !v.is_null())
                                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")));
                                    kind.into_iter()
                                        .map(str::to_string)
                                        .chain(args)
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                })
                            })
                            .unwrap_or_default()
                    })
                    .collect();
                if let Some(lb) = &tl.lb {
                    parts.push(format!(
                        "lb idle_timeout={}",
                        crate::model::duration::format_duration(lb.idle_timeout.0)
                    ));
                }
                parts.push(format!(
                    "latency={}",
                    crate::model::duration::format_duration(tl.network.latency.0)
                ));
                parts.join("; ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  what-if (environment from the capture: {}{}):",
            if env.is_empty() { "no events" } else { &env },
            if st.constants_from_capture.is_empty() {
                String::new()
            } else {
                format!(
                    "; constants from the capture: {}",
                    st.constants_from_capture.join(", ")
                )
            }
        );
        for c in &st.environment_evidence {
            let _ = writeln!(o, "    · {}: {}", c.fact, c.because);
        }
        if let Some(r) = &st.reproduction {
            if r.reproduced {
                let _ = writeln!(
                    o,
                    "    the recorded client's run ({}) reproduces the recording",
                    r.run
                );
            } else {
                let _ = writeln!(
                    o,
                    "    UNRELIABLE: the recorded client's run ({}) does not reproduce the recording: {}",
                    r.run,
                    r.differences.join("; ")
                );
            }
        }
        for w in &st.what_if {
            let _ = writeln!(o, "    {:<48} {}", w.run, w.summary);
        }
    }
}
