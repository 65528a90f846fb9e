//! Triage: a capture or bug-report zip → sessions on one clock, the
//! recorded client's conformance to its profile, a diagnosis of what ended
//! the session, and what-if re-runs of the same environment.

pub mod conformance;
pub mod diagnose;
pub mod evidence;
pub mod render;
pub mod session;
mod stream;
pub mod svg;
pub mod whatif;

use crate::decode::pipeline::DecodeReport;
use crate::decode::spice::report::ZipDecode;
use crate::timeline::Micros;
use crate::timeline::synthetic::Timeline;
use conformance::Violation;
use diagnose::{ChannelFacts, Diagnosis};
use serde::Serialize;
use session::Session;
use std::collections::BTreeMap;
use whatif::WhatIf;

#[derive(Clone, Debug, Default)]
pub struct TriageOptions {
    /// `name@variant`; detected from the capture when `None`.
    pub profile: Option<String>,
    /// `name=value` constant overrides for conformance and what-if.
    pub overrides: Vec<String>,
    /// Skip the what-if runs.
    pub no_what_if: bool,
    /// Reassembly and message limits for the decode.
    pub flow: crate::flow::FlowConfig,
    pub messages: crate::decode::MessageLimits,
    /// Bug-report zip limits.
    pub zip: crate::capture::bugreport::Limits,
    /// TLS secrets (`--keylog`); each input gets a store of its own.
    pub keys: Option<crate::decode::tls::keylog::KeyLog>,
    /// The sessions to diagnose in full; the others get a summary row and
    /// no what-if runs (an operator's capture of thousands of clients).
    pub selection: Selection,
    /// Decoder threads for a capture (0 or 1: this thread); the triage is
    /// the same for any number.
    pub threads: usize,
}

/// Which sessions a triage reports in full: all of them unless one of
/// these is set; a session must pass every one that is.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Session numbers, as the summary numbers them.
    pub sessions: Vec<usize>,
    /// A client address, or its host alone.
    pub client: Option<String>,
    /// An outcome (`open`, `recovered`, `disconnected`, `dead_session`,
    /// `refused`).
    pub outcome: Option<String>,
    /// The summary only: no session in full.
    pub none: bool,
}

impl Selection {
    pub fn keeps(&self, number: usize, client: &str, outcome: diagnose::SessionOutcome) -> bool {
        let host = match client.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h,
            _ => client,
        };
        !self.none
            && (self.sessions.is_empty() || self.sessions.contains(&number))
            && self
                .outcome
                .as_deref()
                .is_none_or(|o| outcome_str(outcome) == o)
            && self
                .client
                .as_deref()
                .is_none_or(|c| client == c || host == c)
    }
}

/// One session triaged.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SessionTriage {
    /// 1-based, as the text says "session N"; kept when a selection
    /// leaves sessions out (`relay_of` is `number - 1` of the other leg).
    pub number: usize,
    pub session: Session,
    pub diagnosis: Diagnosis,
    /// `name@variant`, and whether it was given or detected.
    pub profile: Option<String>,
    pub profile_basis: &'static str,
    pub violations: Vec<Violation>,
    /// The environment extracted for the what-if runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Timeline>,
    /// What each fact of `environment` was taken from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment_evidence: Vec<whatif::EnvCitation>,
    /// Profile constants set from what the capture shows (`name=value`).
    pub constants_from_capture: Vec<String>,
    /// Whether the recorded client's run reproduces the recorded ending;
    /// when it does not, the what-ifs are not to be trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduction: Option<whatif::Reproduction>,
    pub what_if: Vec<WhatIf>,
}

/// One client session in a capture's summary: what an operator scans
/// first when one capture holds many clients.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SessionRow {
    /// As `SessionTriage::number`.
    pub number: usize,
    pub client: String,
    pub server: String,
    /// The session's first packet, seconds since T+0.
    pub start: f64,
    /// From the first packet to the last (its close, or the capture's end
    /// while it is open), seconds.
    pub length: f64,
    pub outcome: &'static str,
    pub cause: Option<String>,
    pub channel: Option<String>,
    /// Connection attempts that failed.
    pub attempts: usize,
}

impl SessionRow {
    fn of(st: &SessionTriage) -> SessionRow {
        SessionRow::of_parts(st.number, &st.session, &st.diagnosis)
    }

    fn of_parts(number: usize, s: &Session, d: &Diagnosis) -> SessionRow {
        SessionRow {
            number,
            client: s.client.clone(),
            server: s.server.clone(),
            start: s.first,
            length: s.last_seen() - s.first,
            outcome: outcome_str(d.outcome),
            cause: d.cause.clone(),
            channel: d.channel.clone(),
            attempts: d.failed_attempts.len(),
        }
    }

    /// How the summary's counts name this ending: the cause, or the
    /// outcome when no cause was named (a session still open). A client's
    /// close stays `client.closed`: a killed process's kernel closes its
    /// sockets as a user's close does (lab: vnc-xvnc-two-clients-one-dies).
    pub fn label(&self) -> String {
        self.cause
            .clone()
            .unwrap_or_else(|| self.outcome.replace('_', " "))
    }
}

/// How many sessions ended one way.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct EndingCount {
    pub ending: String,
    pub sessions: usize,
}

/// The bug report's own per-channel record, labelled as such.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ZipRecord {
    pub file: String,
    pub channel: Option<String>,
    pub disconnect_kind: Option<String>,
    pub error_message: Option<String>,
    pub ended_at: Option<f64>,
    pub per_channel: Vec<ChannelFacts>,
    /// Where the zip and its own pcap disagree, and damaged members.
    pub findings: Vec<String>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Triage {
    pub input: String,
    /// T+0 of every time below: the capture's first frame (in JSON, seconds
    /// since the Unix epoch). Absent for a bug report, whose times are its
    /// session clock.
    #[serde(rename = "start_abs", skip_serializing_if = "Option::is_none")]
    pub start: Option<Micros>,
    /// The session the headline is about (index into `sessions`).
    pub primary: Option<usize>,
    /// The primary session's outcome, time, cause and channel, for machines.
    pub outcome: Option<&'static str>,
    pub at: Option<f64>,
    pub cause: Option<String>,
    pub channel: Option<String>,
    /// The primary session's closing side, recovery time and outage length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<f64>,
    /// Every client-facing session (relay legs are under theirs), in
    /// order, before any selection: the server-side view.
    pub summary: Vec<SessionRow>,
    /// The summary counted by ending (`SessionRow::label`), most first.
    pub counts: Vec<EndingCount>,
    pub sessions: Vec<SessionTriage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<ZipRecord>,
    /// Decode diagnostics (errors and warnings) from the capture.
    pub findings: Vec<String>,
    /// The input could not be fully read (truncated or corrupt records):
    /// the verdict stands on what was read, and the command exits 2.
    #[serde(skip)]
    pub unread: Vec<String>,
}

/// The profile to run a session with, and how sure detection is: what in
/// the capture named it. A stack alone names a library, never an app
/// built on it.
fn detect_profile(s: &Session, from_zip: bool) -> Option<(&'static str, &'static str)> {
    if from_zip {
        return Some(("spice-ryll@pre-phase02", "detected: a ryll bug-report zip"));
    }
    // A relay's upstream leg has the relay for its client: no viewer runs it.
    if s.relay_of.is_some() {
        return None;
    }
    // A credential that carries its expiry (`<unix-seconds>.<signature>`,
    // a JWT's `exp`) is the display tab's signed session token. noVNC as
    // packaged attaches without one, or with websockify's token plugin's
    // `?token=NAME`, which only names the target (websockify's TokenFile
    // and friends) and expires with nothing.
    let signed = s.channels().any(|c| {
        c.upgrade
            .as_ref()
            .is_some_and(|u| u.credential_expires_at.is_some())
    });
    match s.app_kind().as_str() {
        "spice" => Some(("spice-gtk@default", "detected: SPICE link messages")),
        "ws/rfb" | "ws" if signed => Some((
            "novnc-displaytab@pre-2216",
            "detected: a signed session token in the upgrade URL",
        )),
        "ws/rfb" => Some((
            "novnc@as-packaged",
            "guessed from the stack (RFB in WebSocket): noVNC as packaged, the app unknown",
        )),
        "rfb" => Some((
            "vncviewer@as-seen",
            "guessed from the stack (RFB over TCP): a VNC viewer as TigerVNC's was measured, the app unknown",
        )),
        "ws/spice" => Some((
            "spice-html5@as-packaged",
            "guessed from the stack (SPICE in WebSocket): spice-html5 as packaged",
        )),
        "ws" => Some((
            "websocket@as-seen",
            "guessed from the stack (plain WebSocket): a library's client, the app unknown",
        )),
        _ => None,
    }
}

fn zip_record(z: &ZipDecode) -> Option<ZipRecord> {
    let cause = z.report.disconnect_cause.as_ref()?;
    let channel = z.report.channel().map(str::to_string);
    let per_channel = cause
        .per_channel
        .iter()
        .map(|(name, d)| {
            ChannelFacts {
                channel: name.clone(),
                source: "zip",
                last_recv: d.last_recv_ts_secs,
                last_send: d.last_send_ts_secs,
                pings_recv: d.ping_recv_count.unwrap_or(0),
                pongs_sent: d.pong_send_count.unwrap_or(0),
                last_ping_recv: d.last_ping_recv_ts_secs,
                // The zip counts pings and pongs; diagnosis compares them.
                first_unanswered_ping: None,
                ended_at: d.ended_at_secs,
                ended_by: d.ended_by.clone(),
                longest_silence: None,
            }
        })
        .collect();
    let ended_at = channel
        .as_ref()
        .and_then(|c| cause.per_channel.get(c))
        .and_then(|d| d.ended_at_secs)
        .or(cause.session_uptime_secs);
    Some(ZipRecord {
        file: z.report.file.clone(),
        channel,
        disconnect_kind: cause.disconnect_kind.clone(),
        error_message: cause.error_message.clone(),
        ended_at,
        per_channel,
        findings: z
            .report
            .findings
            .iter()
            .chain(&z.disagreements)
            .map(ToString::to_string)
            .collect(),
    })
}

impl Triage {
    /// A triage of these client-facing rows, counted by ending, with the
    /// primary session's headline (`head`) and no session in full.
    fn of_rows(
        input: &str,
        start: Option<Micros>,
        summary: Vec<SessionRow>,
        findings: Vec<String>,
        unread: Vec<String>,
        head: Option<stream::Head>,
    ) -> Triage {
        let mut t = Triage {
            input: input.to_string(),
            start,
            counts: count_endings(&summary),
            summary,
            primary: None,
            outcome: None,
            at: None,
            cause: None,
            channel: None,
            closed_by: None,
            recovered_at: None,
            outage: None,
            sessions: Vec::new(),
            zip: None,
            findings,
            unread,
        };
        if let Some(h) = head {
            h.fill(&mut t);
        }
        t
    }

    /// Keeps the sessions `keep` selects. The headline fields still speak
    /// of the capture's primary session; `primary` points at it only while
    /// it is kept.
    pub fn select(&mut self, keep: impl Fn(&SessionTriage) -> bool) {
        let primary_number = self
            .primary
            .and_then(|i| self.sessions.get(i))
            .map(|s| s.number);
        self.sessions.retain(|s| keep(s));
        self.primary =
            primary_number.and_then(|n| self.sessions.iter().position(|s| s.number == n));
    }
}

/// The diagnosis of one session, with the timers and reconnect rules of
/// its client's profile (given, or detected); `zip_end` is a bug report's
/// recorded ending (`from_zip`: the session is a bug report's).
fn diagnosis_of(
    s: &Session,
    legs: &[evidence::LegClose],
    zip_facts: &[ChannelFacts],
    zip_end: Option<&(f64, String, String)>,
    from_zip: bool,
    options: &TriageOptions,
) -> Diagnosis {
    let spec = options
        .profile
        .clone()
        .or_else(|| detect_profile(s, from_zip).map(|(p, _)| p.to_string()));
    let timers = diagnose::SpiceTimers::from_registry(spec.as_deref());
    let quiet = crate::timeline::synthetic::Timeline::quiet(crate::timeline::synthetic::Dur(
        Micros(1_000_000),
    ));
    // Whether a later generation is a reconnect rests on the client's
    // reconnect rules: trusted from a given profile, or from SPICE's
    // detection (link ids name SPICE clients); a profile guessed from the
    // stack alone (noVNC's many apps) cannot say.
    let trusted = options.profile.is_some() || s.app_kind() == "spice";
    let reconnect = spec
        .as_deref()
        .filter(|_| trusted)
        .and_then(|p| {
            whatif::constants(p, &quiet, &options.overrides)
                .ok()
                .map(|c| diagnose::ReconnectRules::from_constants(p, &c))
        })
        .unwrap_or_default();
    let mut d = diagnose::diagnose(s, &timers, &reconnect, legs, zip_facts, zip_end.cloned());
    if let Some(z) = zip_end {
        d.env.end = d.env.end.max(z.0);
    }
    d
}

/// Triage of a decoded capture (events kept or folded), or of a bug-report
/// zip's decode (`zip`), whose pcap is then `report`. `report` is used up:
/// its connections' folds are taken as their channels are built, and its
/// connections and flows are emptied once the sessions stand.
pub fn triage(
    input: &str,
    report: Option<&mut DecodeReport>,
    zip: Option<&ZipDecode>,
    options: &TriageOptions,
) -> Triage {
    let zip_rec = zip.and_then(zip_record);
    // T+0 is the capture's first frame; a ryll zip's timestamps are its
    // session clock, so there T+0 is zero.
    let mut report = report;
    let start = report
        .as_ref()
        .filter(|_| zip.is_none())
        .and_then(|r| r.start);
    let origin = start.unwrap_or(Micros::ZERO);
    let mut sessions = report
        .as_mut()
        .map_or_else(Vec::new, |r| session::sessions(r, origin, zip.is_some()));
    // What triage reads of the decode besides the sessions, taken now: the
    // connections' reports go before the sessions are diagnosed.
    let findings = report
        .as_ref()
        .map(|r| {
            r.diagnostics
                .iter()
                .chain(r.connections.iter().flat_map(|c| c.findings.iter()))
                .filter(|f| f.severity >= crate::timeline::Severity::Warning)
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    let unread: Vec<String> = report
        .as_ref()
        .map(|r| &r.diagnostics[..])
        .into_iter()
        .chain(zip.map(|z| &z.report.findings[..]))
        .flat_map(crate::decode::pipeline::unread_parts)
        .map(ToString::to_string)
        .collect();
    if let Some(r) = report {
        r.connections = Vec::new();
        r.flows = Vec::new();
    }
    if sessions.is_empty()
        && let Some(z) = &zip_rec
    {
        sessions.push(Session {
            kind: "spice".into(),
            server: "(zip: no traffic.pcap)".into(),
            client: String::new(),
            start: Micros::ZERO,
            first: 0.0,
            duration: z.ended_at.unwrap_or(0.0),
            generations: Vec::new(),
            attempts: Vec::new(),
            requests: Vec::new(),
            relay_of: None,
            bucket: 1.0,
            model_zero: 0.0,
        });
    }
    let zip_facts: Vec<ChannelFacts> = zip_rec
        .as_ref()
        .map(|z| z.per_channel.clone())
        .unwrap_or_default();
    let zip_end = zip_rec.as_ref().and_then(|z| {
        Some((
            z.ended_at?,
            z.disconnect_kind
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            z.error_message.clone().unwrap_or_default(),
        ))
    });
    let legs: Vec<Vec<evidence::LegClose>> = (0..sessions.len())
        .map(|i| relay_leg_closes(&sessions, i))
        .collect();
    let mut triaged: Vec<SessionTriage> = Vec::new();
    for (s, legs) in sessions.into_iter().zip(legs) {
        let mut d = diagnosis_of(
            &s,
            &legs,
            &zip_facts,
            zip_end.as_ref(),
            zip.is_some(),
            options,
        );
        // A bug report names the channel its client saw fail: the headline
        // keeps the one the evidence points at, and names both when they differ.
        if let Some(zc) = zip_rec.as_ref().and_then(|z| z.channel.clone())
            && d.outcome != diagnose::SessionOutcome::Open
        {
            match &d.channel {
                None => d.channel = Some(zc),
                Some(c) if *c != zc => d.zip_channel = Some(zc),
                Some(_) => {}
            }
        }
        let (profile, basis) = match &options.profile {
            Some(p) => (Some(p.clone()), "given"),
            None => match detect_profile(&s, zip.is_some()) {
                Some((p, basis)) => (Some(p.to_string()), basis),
                None => (None, "none"),
            },
        };
        let channels: Vec<String> = if zip_facts.is_empty() {
            s.generations
                .first()
                .map(|g| g.channels.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default()
        } else {
            zip_facts
                .iter()
                .filter(|f| f.last_recv.is_some())
                .map(|f| f.channel.clone())
                .collect()
        };
        let timeline = whatif::extract(&s, &d.env, &channels);
        let observed = profile
            .as_deref()
            .and_then(|p| whatif::constants(p, &timeline, &[]).ok())
            .map(|c| observed_constants(&|n| c.value(n).is_some(), &s, &d.env))
            .unwrap_or_default();
        // The user's overrides win over what the capture suggests.
        let overrides: Vec<String> = observed
            .iter()
            .cloned()
            .chain(options.overrides.iter().cloned())
            .collect();
        let mut violations = match &profile {
            Some(p) => match whatif::constants(p, &timeline, &overrides) {
                Ok(c) => conformance::check(&s, &c),
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        };
        if let Some((end, _, _)) = &zip_end {
            violations.extend(conformance::check_zip(&zip_facts, *end));
            violations.sort_by(|a, b| a.at.total_cmp(&b.at).then(a.code.cmp(b.code)));
        }
        // A relay leg's number is its place among every session, as in the text.
        let wanted = options
            .selection
            .keeps(triaged.len() + 1, &s.client, d.outcome);
        let what_if = match (&profile, d.outcome) {
            (Some(p), o)
                if wanted && !options.no_what_if && o != diagnose::SessionOutcome::Open =>
            {
                let (name, variant) = p.split_once('@').unwrap_or((p, ""));
                whatif::run_all(&timeline, input, (name, variant), &overrides, s.model_zero)
            }
            _ => Vec::new(),
        };
        let reproduction = profile
            .as_deref()
            .and_then(|p| whatif::reproduction(p, &d, &what_if));
        let environment_evidence = whatif::citations(&s, &d.env);
        triaged.push(SessionTriage {
            number: triaged.len() + 1,
            session: s,
            diagnosis: d,
            profile,
            profile_basis: basis,
            violations,
            environment: Some(timeline),
            environment_evidence,
            constants_from_capture: observed,
            reproduction,
            what_if,
        });
    }
    // Relay legs are few; most captures have none and copy nothing.
    if triaged.iter().any(|t| t.session.relay_of.is_some()) {
        let sessions: Vec<Session> = triaged.iter().map(|t| t.session.clone()).collect();
        let mut diagnoses: Vec<Diagnosis> = triaged.iter().map(|t| t.diagnosis.clone()).collect();
        link_relay_evidence(&sessions, &mut diagnoses);
        for (t, d) in triaged.iter_mut().zip(diagnoses) {
            t.diagnosis = d;
        }
    }
    let primary = triaged
        .iter()
        .position(|t| t.session.relay_of.is_none() && t.diagnosis.cause.is_some())
        .or_else(|| triaged.iter().position(|t| t.session.relay_of.is_none()))
        .or(if triaged.is_empty() { None } else { Some(0) });
    let head = primary.map(|i| stream::Head::of(&triaged[i].diagnosis));
    let summary: Vec<SessionRow> = triaged
        .iter()
        .filter(|t| t.session.relay_of.is_none())
        .map(SessionRow::of)
        .collect();
    let mut t = Triage::of_rows(input, start, summary, findings, unread, head);
    t.primary = primary;
    t.sessions = triaged;
    t.zip = zip_rec;
    let sel = &options.selection;
    // A relay's upstream leg stays with the session it serves.
    let kept: Vec<usize> = t
        .sessions
        .iter()
        .filter(|st| st.session.relay_of.is_none())
        .filter(|st| sel.keeps(st.number, &st.session.client, st.diagnosis.outcome))
        .map(|st| st.number)
        .collect();
    t.select(|st| {
        st.session
            .relay_of
            .is_some_and(|front| kept.contains(&(front + 1)))
            || sel.keeps(st.number, &st.session.client, st.diagnosis.outcome)
    });
    t
}

impl Triage {
    /// The upstream legs a relay opened for session `st`.
    pub fn legs_of(&self, st: &SessionTriage) -> Vec<&SessionTriage> {
        self.sessions
            .iter()
            .filter(|l| l.session.relay_of == Some(st.number - 1))
            .collect()
    }
}

/// Sessions by ending, most first, then by name: the line an operator
/// reads first ("30 closed by the user, 4 lb.idle_timeout").
pub(crate) fn count_endings(rows: &[SessionRow]) -> Vec<EndingCount> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        *counts.entry(r.label()).or_default() += 1;
    }
    let mut counts: Vec<EndingCount> = counts
        .into_iter()
        .map(|(ending, sessions)| EndingCount { ending, sessions })
        .collect();
    // Stable: equal counts stay in name order.
    counts.sort_by_key(|c| std::cmp::Reverse(c.sessions));
    counts
}

/// Constants the capture pins down for the what-if: the display tab's
/// token lifetime (bound to its lease, so the renewal keeps the profile's
/// 120-of-300 ratio), the delay before its reconnect, and that it did
/// reconnect after a close without a close frame.
fn observed_constants(
    registered: &dyn Fn(&str) -> bool,
    s: &Session,
    env: &diagnose::EnvFacts,
) -> Vec<String> {
    let mut out = Vec::new();
    // Each pins only what the profile has: a token bound to a lease, a
    // reconnect after a delay.
    if registered("lease_ttl")
        && registered("renewal_interval")
        && let Some(life) = env.token_lifetime.filter(|l| *l < 300.0)
    {
        out.push(format!("lease_ttl={life}s"));
        out.push(format!("renewal_interval={}s", (life * 0.4).max(1.0)));
    }
    if registered("client_ping_interval") && registered("server_ping_interval") {
        out.extend(observed_pings(s, registered("server_ping_first")));
    }
    let drop = s.generations.first().and_then(|g| {
        let c = g.channels.iter().find_map(|c| c.closes.first())?;
        Some((c.at, c.how != "ws_close"))
    });
    let retry = s
        .attempts
        .iter()
        .map(|a| a.at)
        .chain(s.generations.iter().skip(1).map(|g| g.started_at))
        .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.min(a))));
    if let (Some((at, no_frame)), Some(r)) = (drop, retry)
        && r > at
        && registered("auto_reconnect")
        && registered("reconnect_delay")
    {
        out.push("auto_reconnect=true".to_string());
        out.push(format!("reconnect_delay={}ms", ((r - at) * 1000.0).round()));
        // The reconnect presented a credential other than the first: the
        // client fetched a fresh one before dialling.
        let credential = |g: Option<&session::Generation>| {
            g.and_then(|g| g.channels.iter().find_map(|c| c.upgrade.as_ref()))
                .and_then(|u| u.credential.clone())
        };
        let (first, again) = (
            credential(s.generations.first()),
            credential(s.generations.get(1)),
        );
        if first.is_some()
            && again.is_some()
            && first != again
            && registered("reacquire_before_dial")
        {
            out.push("reacquire_before_dial=true".into());
        }
        if no_frame && registered("pr_clean_assumption") {
            out.push("pr_clean_assumption=true".into());
        }
    }
    out
}

/// Each side's pings as the first generation shows them: the interval
/// (between pings, or from the connect to the only one), the server's
/// first ping when its heartbeat does not start at the connect, and the
/// timeout when that side closed after a ping nobody answered.
fn observed_pings(s: &Session, server_phase: bool) -> Vec<String> {
    let mut out = Vec::new();
    let Some(g) = s.generations.first() else {
        return out;
    };
    for (dir, side) in [("c2s", "client"), ("s2c", "server")] {
        let Some(c) = g
            .channels
            .iter()
            .find(|c| c.marks.iter().any(|m| m.what() == "ping" && m.dir() == dir))
        else {
            continue;
        };
        let pings: Vec<f64> = c
            .marks
            .iter()
            .filter(|m| m.what() == "ping" && m.dir() == dir)
            .map(|m| m.at)
            .collect();
        let mut gaps: Vec<f64> = pings.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        // One ping alone: it came an interval after the connect.
        let interval = gaps
            .get(gaps.len() / 2)
            .copied()
            .or_else(|| pings.first().map(|p| p - c.opened_at));
        if let Some(interval) = interval.filter(|i| *i > 0.0) {
            out.push(format!(
                "{side}_ping_interval={}ms",
                (interval * 1000.0).round()
            ));
            // A heartbeat timer shared by every client (ws's setInterval)
            // meets a connection at its own phase; 10 ms is timer jitter.
            let first = pings.first().map(|p| p - c.opened_at);
            if let Some(first) = first.filter(|f| {
                side == "server" && server_phase && (f - interval).abs() > 0.010 && *f > 0.0
            }) {
                out.push(format!("server_ping_first={}ms", (first * 1000.0).round()));
            }
        }
        let closed_by_it = c.closes.first().filter(|x| x.by == side);
        if let (Some(x), Some(p)) = (closed_by_it, diagnose::unanswered_ping(c, dir))
            && x.at > p
        {
            out.push(format!(
                "{side}_ping_timeout={}ms",
                ((x.at - p) * 1000.0).round()
            ));
        }
    }
    out
}

pub fn outcome_str(o: diagnose::SessionOutcome) -> &'static str {
    use diagnose::SessionOutcome::*;
    match o {
        Open => "open",
        Recovered => "recovered",
        Disconnected => "disconnected",
        DeadSession => "dead_session",
        Refused => "refused",
    }
}

/// A relay that closed its upstream leg at the instant its client-facing
/// side died was itself the thing that died.
/// The first close of every upstream leg of session `front`, on its clock.
fn relay_leg_closes(sessions: &[Session], front: usize) -> Vec<evidence::LegClose> {
    let base = sessions[front].start.as_secs_f64();
    sessions
        .iter()
        .filter(|s| s.relay_of == Some(front))
        .flat_map(|s| {
            let shift = s.start.as_secs_f64() - base;
            let ending = s
                .generations
                .iter()
                .find(|g| g.ended_at.is_some())
                .and_then(|g| {
                    let timers = diagnose::SpiceTimers::from_registry(None);
                    evidence::ending(s, &timers, g, &[])
                });
            s.channels().filter_map(move |c| {
                let x = c.closes.first()?;
                let last_data = evidence::last_payload(c);
                Some(evidence::LegClose {
                    at: x.at + shift,
                    by: x.by,
                    how: x.how.clone(),
                    last_data: last_data + shift,
                    server: s.server.clone(),
                    ending: ending.clone(),
                    relay_rst: c.tcp[0].rst.is_some(),
                })
            })
        })
        .collect()
}

fn link_relay_evidence(sessions: &[Session], diagnoses: &mut [Diagnosis]) {
    for i in 0..sessions.len() {
        let Some(j) = sessions[i].relay_of else {
            continue;
        };
        let (leg_start, leg_close) = {
            let s = &sessions[i];
            let close = s
                .channels()
                .filter_map(|c| c.closes.first())
                .min_by(|a, b| a.at.total_cmp(&b.at))
                .cloned();
            (s.start.as_secs_f64(), close)
        };
        let Some(close) = leg_close else { continue };
        let at = leg_start + close.at - sessions[j].start.as_secs_f64();
        let text = format!(
            "its upstream leg to {} was closed by the relay's side ({} {}) at T+{at:.3}",
            sessions[i].server, close.by, close.how
        );
        // A leg the relay cut itself ended as its front did: the same act
        // (an idle timeout, the relay's death) seen from the server side.
        let front_cause = diagnoses[j].cause.clone();
        let front_at = diagnoses[j].at;
        if close.by == "client"
            && front_at.is_some_and(|e| (e - at).abs() <= evidence::SAME_INSTANT)
            && let Some(cause) =
                front_cause.filter(|c| c == "lb.idle_timeout" || c == "relay.killed")
        {
            let leg = &mut diagnoses[i];
            leg.inferences.push(diagnose::Evidence {
                at: leg.at,
                channel: None,
                text: format!(
                    "the relay cut this leg and its client leg at one instant: {cause}, as diagnosed on the client leg"
                ),
                source: "rule",
            });
            leg.cause = Some(cause);
            leg.origin = None;
            leg.closed_by = Some("both");
        }
        // The leg's client is the relay: when the client leg shows the relay
        // held everything, what stopped reading this leg is the relay, and
        // the leg ended as its front did.
        let front_held = diagnoses[j].explanations.first().is_some_and(|e| {
            e.origin.as_deref() == Some("network.outage")
                && e.supports.iter().any(|x| x.starts_with("relay.held:"))
        });
        if front_held
            && diagnoses[i].cause == diagnoses[j].cause
            && diagnoses[i]
                .origin
                .as_deref()
                .is_some_and(|o| o.starts_with("client."))
        {
            let held = "relay.held: the client leg shows the relay held every byte both ways: the client that stopped on this leg is the relay, and nothing past it stopped (origin network.outage, as diagnosed on the client leg)";
            let leg = &mut diagnoses[i];
            leg.inferences.push(diagnose::Evidence {
                at: leg.at,
                channel: None,
                text: held.into(),
                source: "rule",
            });
            leg.origin = Some("network.outage".into());
            if let Some(top) = leg.explanations.first_mut()
                && leg.cause.as_deref() == Some(top.cause.as_str())
            {
                top.origin = leg.origin.clone();
                top.supports.push(held.into());
            }
        }
        let front = &mut diagnoses[j];
        let near = front.at.is_some_and(|e| (e - at).abs() <= 0.05);
        front.observations.push(diagnose::Evidence {
            at: Some(at),
            channel: None,
            text: text.clone(),
            source: "capture",
        });
        if near && close.by == "client" {
            for e in &mut front.explanations {
                if e.cause == "server.killed" {
                    e.supports.push(format!(
                        "{text}: the relay in between (websockify) ended both legs at once"
                    ));
                }
            }
        }
    }
}

/// Decodes a capture or bug-report zip (`zip` says which) with every event
/// kept, and triages it.
pub fn triage_reader<R: std::io::Read>(
    src: R,
    name: &str,
    zip: bool,
    options: &TriageOptions,
) -> Result<Triage, String> {
    use crate::decode::pipeline::{DecodeOptions, decode_capture_parallel};
    // Each connection's events are folded into what triage reads of them as
    // they are decoded, and dropped: memory grows with connections, not
    // with events.
    let decode = DecodeOptions {
        keep_events: false,
        fold: Some(session::ChannelFold::maker()),
        // A bug report's channel table compares its message counts.
        drop_counts: !zip,
        flow: options.flow,
        messages: options.messages,
        keys: options
            .keys
            .clone()
            .map(|k| std::sync::Arc::new(crate::decode::tls::keylog::KeyStore::new(k))),
        ..DecodeOptions::default()
    };
    if zip {
        let z = crate::decode::spice::report::decode_bugreport(src, name, decode, options.zip)
            .map_err(|e| e.to_string())?;
        let mut z = z;
        let mut pcap = z.pcap.take();
        Ok(triage(name, pcap.as_mut(), Some(&z), options))
    } else if options.selection.none {
        // The summary alone: each client's visit is diagnosed once it is
        // over and only its row kept.
        let mut stream = stream::Stream::new(options);
        let mut look = |p: crate::decode::pipeline::Progress<'_>| stream.look(p);
        let rest = crate::decode::pipeline::decode_capture_parallel_streaming(
            src,
            name,
            decode,
            options.threads,
            Some((stream::LOOK_EVERY, &mut look)),
        )
        .map_err(|e| e.to_string())?;
        Ok(stream.finish(name, rest))
    } else {
        let r = decode_capture_parallel(src, name, decode, options.threads)
            .map_err(|e| e.to_string())?;
        let mut r = r;
        Ok(triage(name, Some(&mut r), None, options))
    }
}

/// A file by path: zips are recognised by their first bytes.
pub fn triage_path(path: &std::path::Path, options: &TriageOptions) -> Result<Triage, String> {
    let name = path.display().to_string();
    let mut f = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut magic = [0u8; 4];
    let zip = std::io::Read::read_exact(&mut f, &mut magic)
        .is_ok_and(|_| crate::capture::bugreport::looks_like_zip(&magic));
    let f = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    triage_reader(std::io::BufReader::new(f), &name, zip, options)
}
