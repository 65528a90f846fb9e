//! What ended a session: observations from the bytes (and the zip), the
//! inferences drawn from the environment's real rules, and competing
//! explanations ranked by how much of the evidence each one fits.

use super::session::{Channel, Session};
use crate::timeline::synthetic::LbExpiry;
use serde::Serialize;
use std::collections::BTreeMap;

/// The SPICE server's timers the rules read, taken from the model's
/// registry (`model::sim::constants_for`, sources in protocol-facts §1.16),
/// never re-typed: display and main are pinged every `ping` seconds, every
/// other channel every `long_ping`; main's connectivity timer ticks every
/// `connectivity_tick` and drops a client with a ping round outstanding at
/// two ticks. `client_keepalive` is how long after the last segment the
/// client's socket aborts when its keep-alive probes go unanswered (idle +
/// interval × count), if it sets keep-alive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpiceTimers {
    pub ping: f64,
    pub long_ping: f64,
    pub connectivity_tick: f64,
    pub client_keepalive: Option<f64>,
}

impl SpiceTimers {
    /// The timers of the profile `spec` (`name@variant`), or of the first
    /// SPICE profile when `spec` is not a SPICE profile.
    pub fn from_registry(spec: Option<&str>) -> SpiceTimers {
        use crate::model::registry::{PROFILES, resolve_spice as resolve};
        let (p, v) = spec
            .and_then(|s| resolve(s).ok())
            .unwrap_or((&PROFILES[0], &PROFILES[0].variants[0]));
        let quiet = crate::timeline::synthetic::Timeline::quiet(crate::timeline::synthetic::Dur(
            crate::timeline::Micros(1_000_000),
        ));
        let c = crate::model::sim::constants_for(p, v, &quiet);
        let secs = |name: &str| match c.value(name) {
            Some(crate::model::constants::Value::Duration(d)) => d.as_secs_f64(),
            _ => f64::NAN,
        };
        let idle = secs("client_tcp_keepalive_idle");
        let probes = match c.value("client_tcp_keepalive_count") {
            Some(crate::model::constants::Value::Count(n)) => *n as f64,
            _ => f64::NAN,
        };
        let keepalive = idle + secs("client_tcp_keepalive_interval") * probes;
        SpiceTimers {
            ping: secs("ping_interval"),
            long_ping: secs("long_ping_interval"),
            connectivity_tick: secs("connectivity_timeout"),
            client_keepalive: (idle > 0.0 && keepalive.is_finite()).then_some(keepalive),
        }
    }

    /// How often the server pings `channel`.
    pub fn interval(&self, channel: &str) -> f64 {
        match channel {
            "main" | "display" => self.ping,
            _ => self.long_ping,
        }
    }
}

impl Default for SpiceTimers {
    fn default() -> Self {
        SpiceTimers::from_registry(None)
    }
}

/// Idle timeouts load balancers and proxies ship with (AWS ALB/nginx 60 s,
/// GCP 30 s, Azure 4 min, HAProxy/ELB classic 350 s, 5 and 10 min, 1 h).
const LB_TIMEOUTS: [f64; 9] = [30.0, 60.0, 100.0, 120.0, 240.0, 300.0, 350.0, 600.0, 3600.0];

use super::evidence::{LegClose, SAME_INSTANT};

/// What one channel's record says, from the capture or from the zip.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct ChannelFacts {
    pub channel: String,
    /// `capture` or `zip`.
    pub source: &'static str,
    pub last_recv: Option<f64>,
    pub last_send: Option<f64>,
    pub pings_recv: u64,
    pub pongs_sent: u64,
    pub last_ping_recv: Option<f64>,
    /// The first server ping the client never answered.
    pub first_unanswered_ping: Option<f64>,
    pub ended_at: Option<f64>,
    pub ended_by: Option<String>,
    /// The longest spell without a byte from the server: (from, seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_silence: Option<(f64, f64)>,
}

impl ChannelFacts {
    pub fn from_channel(c: &Channel) -> ChannelFacts {
        let first_close = c.closes.first();
        ChannelFacts {
            channel: c.name.clone(),
            source: "capture",
            last_recv: c.last_s2c,
            last_send: c.last_c2s,
            pings_recv: c.pings_s2c,
            pongs_sent: c.pongs_c2s,
            last_ping_recv: c
                .marks
                .iter()
                .rev()
                .find(|m| m.what() == "ping" && m.dir() == "s2c")
                .map(|m| m.at),
            // A ping that arrived with the close had no time to be answered.
            first_unanswered_ping: c
                .unanswered_pings
                .iter()
                .copied()
                .find(|p| first_close.is_none_or(|x| *p < x.at - 1.0)),
            ended_at: first_close.map(|x| x.at),
            ended_by: first_close.map(|x| format!("{} {}", x.by, x.how)),
            longest_silence: c
                .longest_s2c_silence_from
                .map(|f| (f, c.longest_s2c_silence)),
        }
    }
}

/// A fact with its time and where it comes from.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub text: String,
    /// `capture`, `zip`, or `rule` (a fact about the environment, with its source).
    pub source: &'static str,
}

/// One candidate explanation and how the evidence bears on it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Explanation {
    pub rank: usize,
    pub cause: String,
    /// What set the cause in motion, when that is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub summary: String,
    pub supports: Vec<String>,
    pub against: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionOutcome {
    /// Still open when the capture ended.
    Open,
    /// Dropped, then a later generation came up and was still open.
    Recovered,
    /// Dropped and never came back.
    Disconnected,
    /// Dropped, and every reconnect attempt failed.
    DeadSession,
    /// Never came up: every attempt was refused.
    Refused,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Diagnosis {
    pub outcome: SessionOutcome,
    /// When the session (its first lost generation) ended, T+ seconds.
    pub at: Option<f64>,
    /// The rule or timer that ended it, in the model's vocabulary.
    pub cause: Option<String>,
    pub channel: Option<String>,
    /// What set it in motion, when that differs from the cause (e.g. a
    /// client that stopped answering, for a server timer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Who closed first and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<String>,
    /// `client`, `server`, or `both` (a middlebox cut both ends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<&'static str>,
    /// When service was back: the next generation came up (T+ seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<f64>,
    /// From the drop to the recovery, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<f64>,
    /// Connection attempts that failed, with their reasons.
    pub failed_attempts: Vec<FailedAttempt>,
    /// Each generation after the first: a reconnect or a new client.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub later_generations: Vec<LaterGeneration>,
    /// The channel a bug report's own record names, where it differs from
    /// the one the evidence points at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_channel: Option<String>,
    pub observations: Vec<Evidence>,
    pub inferences: Vec<Evidence>,
    pub explanations: Vec<Explanation>,
    /// Facts the what-if needs, in seconds since T+0.
    #[serde(skip)]
    pub env: EnvFacts,
    /// The timers the rules read.
    #[serde(skip)]
    pub timers: SpiceTimers,
}

/// A generation after the first: the same client reconnecting, or a new
/// client process (the user starting it again), as the profile's own
/// reconnect rules decide.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct LaterGeneration {
    pub index: usize,
    pub at: f64,
    /// `reconnect`, `new_client` or `unknown`.
    pub kind: &'static str,
    pub why: String,
}

/// What the detected profile says about reconnecting, from its registered
/// constants: `auto_reconnect` and its backoff (`reconnect_backoff`, or a
/// fixed `reconnect_delay`).
#[derive(Clone, Debug, Default)]
pub struct ReconnectRules {
    pub profile: String,
    /// `None` when the profile does not register `auto_reconnect`.
    pub auto: Option<bool>,
    /// The longest wait its schedule allows before an attempt, seconds.
    pub longest_wait: Option<f64>,
}

impl ReconnectRules {
    pub fn from_constants(profile: &str, c: &crate::model::constants::Constants) -> ReconnectRules {
        use crate::model::constants::Value;
        let auto = match c.value("auto_reconnect") {
            Some(Value::Flag(b)) => Some(*b),
            _ => None,
        };
        let longest_wait = match (c.value("reconnect_backoff"), c.value("reconnect_delay")) {
            (Some(Value::Schedule(v)), _) => v.iter().max().map(|m| m.as_secs_f64()),
            (_, Some(Value::Duration(d))) => Some(d.as_secs_f64()),
            _ => None,
        };
        ReconnectRules {
            profile: profile.to_string(),
            auto,
            longest_wait,
        }
    }

    fn judge(&self, gap: f64) -> (&'static str, String) {
        match (self.auto, self.longest_wait) {
            (Some(false), _) => (
                "new_client",
                format!(
                    "{} does not reconnect (auto_reconnect=false): a new client process",
                    self.profile
                ),
            ),
            (Some(true), Some(w)) if gap > 2.0 * w + 5.0 => (
                "new_client",
                format!(
                    "{gap:.1} s after the drop, far past {}'s longest reconnect wait of {w:.1} s: a new client process",
                    self.profile
                ),
            ),
            (Some(true), _) => (
                "reconnect",
                format!("{} reconnects; {gap:.1} s after the drop", self.profile),
            ),
            (None, _) if self.profile.is_empty() => (
                "unknown",
                "the client's reconnect rules are not known (no profile given); its log or reconnect setting, or `--profile`, would decide".into(),
            ),
            (None, _) => (
                "unknown",
                format!(
                    "{} does not say whether it reconnects; its log or reconnect setting would decide",
                    self.profile
                ),
            ),
        }
    }
}

/// An attempt that failed: `auth.refused`, `rst_to_syn`, `no_answer`,
/// `http_<status>`, with what the server said.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct FailedAttempt {
    pub at: f64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The first ping sent in direction `dir` (`c2s`, `s2c`) that no pong
/// answered before the channel closed.
pub(super) fn unanswered_ping(c: &super::session::Channel, dir: &str) -> Option<f64> {
    let mut waiting: Option<f64> = None;
    for m in &c.marks {
        match (m.what(), m.dir() == dir) {
            ("ping", true) => {
                waiting.get_or_insert(m.at);
            }
            ("pong", false) => waiting = None,
            _ => {}
        }
    }
    waiting
}

/// What a load balancer did at its cut, from the close the client saw: a
/// FIN is HAProxy's (FIN to the client, RST to the server), a RST a reset
/// of both ends; told nothing, it forgot the flow.
fn lb_expiry(told: bool, to_client: Option<&super::session::Close>) -> LbExpiry {
    match to_client {
        _ if !told => LbExpiry::Silent,
        Some(x) if x.how == "fin" => LbExpiry::FinRst,
        _ => LbExpiry::Rst,
    }
}

/// The environment as the capture shows it, for re-running it.
#[derive(Clone, Debug, Default)]
pub struct EnvFacts {
    pub client_stall: Option<(f64, Option<f64>)>,
    pub server_killed: Option<f64>,
    pub server_back: Option<f64>,
    pub network_dead: Option<(f64, Option<f64>)>,
    /// Something between took every byte both ways and forwarded nothing
    /// from..to, acknowledging it (a stalled relay).
    pub relay_hold: Option<(f64, f64)>,
    /// When the server process stopped answering (its kernel still ACKing).
    pub server_stall: Option<f64>,
    /// The server ended the session on purpose and went on listening.
    pub server_close: Option<f64>,
    /// A load balancer's idle timeout, and what it did at the cut.
    pub lb_idle: Option<(f64, LbExpiry)>,
    pub token_lifetime: Option<f64>,
    /// When the user closed the session on purpose (every connection
    /// closed by the client at once): the model closes it there too, rather
    /// than running on past what really ended it.
    pub user_close: Option<f64>,
    /// When the server refused the client's login, on a session that never
    /// came up: from then on the model's server refuses it too.
    pub auth_refused: Option<f64>,
    /// The end of what the capture can tell.
    pub end: f64,
    /// Why each fact was taken from the capture, by field name: what the
    /// what-if's environment rests on, said beside it.
    pub because: BTreeMap<&'static str, String>,
}

impl EnvFacts {
    fn cite(&mut self, fact: &'static str, why: impl Into<String>) {
        self.because.insert(fact, why.into());
    }

    /// Each fact the environment holds, as the timeline names it, with
    /// the evidence it was taken from.
    pub fn citations(&self) -> Vec<(&'static str, String)> {
        let held = [
            ("client_stall", "client_stalls", self.client_stall.is_some()),
            (
                "server_killed",
                "server_killed",
                self.server_killed.is_some(),
            ),
            (
                "server_back",
                "server_restarted",
                self.server_killed.is_some() && self.server_back.is_some(),
            ),
            ("network_dead", "blackhole", self.network_dead.is_some()),
            ("relay_hold", "relay_holds", self.relay_hold.is_some()),
            (
                "server_stall",
                "server_stops_answering",
                self.server_stall.is_some(),
            ),
            ("server_close", "server_closes", self.server_close.is_some()),
            ("user_close", "user_close", self.user_close.is_some()),
            ("auth_refused", "auth_refused", self.auth_refused.is_some()),
            ("lb_idle", "lb idle_timeout", self.lb_idle.is_some()),
            (
                "token_lifetime",
                "token lifetime",
                self.token_lifetime.is_some(),
            ),
        ];
        held.into_iter()
            .filter(|(_, _, held)| *held)
            .filter_map(|(field, name, _)| Some((name, self.because.get(field)?.clone())))
            .collect()
    }
}

struct Candidate {
    cause: &'static str,
    origin: Option<&'static str>,
    summary: String,
    supports: Vec<String>,
    against: Vec<String>,
    /// Fits the timing the rule predicts.
    fits: bool,
    /// Decided by the layered evidence rules (`evidence::ending`).
    decisive: bool,
}

fn obs(at: Option<f64>, channel: Option<&str>, text: String, source: &'static str) -> Evidence {
    Evidence {
        at,
        channel: channel.map(str::to_string),
        text,
        source,
    }
}

/// What an ending decided by the layered evidence says, in words.
fn decided_summary(cause: &str, origin: Option<&str>) -> String {
    match (cause, origin) {
        ("server.connectivity_timeout", Some("network.outage")) => "the path to the client \
            stopped delivering (it died, or something between held every byte); the server's \
            connectivity timer dropped the client it could no longer hear"
            .to_string(),
        (cause, _) => format!("the evidence from every layer decides it: {cause}"),
    }
}

pub(super) fn t(s: f64) -> String {
    crate::verdict::t_plus(s)
}

/// Diagnoses one session. `zip` carries the bug report's per-channel
/// record when the input was a zip; `zip_end` its disconnect (time,
/// kind, message).
pub fn diagnose(
    s: &Session,
    timers: &SpiceTimers,
    reconnect: &ReconnectRules,
    legs: &[LegClose],
    zip: &[ChannelFacts],
    zip_end: Option<(f64, String, String)>,
) -> Diagnosis {
    let mut observations = Vec::new();
    let mut inferences = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut env = EnvFacts {
        end: s.end(),
        ..EnvFacts::default()
    };

    // Which generation was lost: the first that ended.
    let lost = s.generations.iter().find(|g| g.ended_at.is_some());
    let last = s.generations.last();
    let mut end_at = lost.and_then(|g| g.ended_at);
    if let Some((at, kind, msg)) = &zip_end {
        observations.push(obs(
            Some(*at),
            None,
            format!("the client recorded the disconnect: {kind} \"{msg}\""),
            "zip",
        ));
        end_at = Some(end_at.map_or(*at, |e: f64| e.min(*at)));
    }
    let outcome = match (lost, last) {
        (None, None) if !s.attempts.is_empty() => SessionOutcome::Refused,
        (None, _) if zip_end.is_none() => SessionOutcome::Open,
        (Some(l), Some(last)) if last.index > l.index => SessionOutcome::Recovered,
        _ if !s.attempts.is_empty()
            && s.attempts.iter().all(|a| end_at.is_none_or(|e| a.at >= e)) =>
        {
            SessionOutcome::DeadSession
        }
        _ => SessionOutcome::Disconnected,
    };

    // Observed closes of the lost generation.
    let mut closed = None;
    if let Some(g) = lost {
        let how = |x: &super::session::Close| match x.code {
            Some(code) => format!("{} {code}", x.how),
            None => x.how.clone(),
        };
        let lost_channels = g.lost_channels();
        for (c, x) in &lost_channels {
            observations.push(obs(
                Some(x.at),
                Some(&c.name),
                format!(
                    "closed by the {} ({}) while main carried on: the channel was lost, not the session",
                    x.by,
                    how(x)
                ),
                "capture",
            ));
        }
        let closes: Vec<(f64, &str, &str, String)> = g
            .ending_closes()
            .into_iter()
            .map(|(c, x)| (x.at, x.by, c.name.as_str(), how(x)))
            .collect();
        if let Some((at, by, ch, how)) = closes.first() {
            closed = Some(format!("{by} {how} on {ch} at {}", t(*at)));
            let same: Vec<&str> = closes
                .iter()
                .filter(|c| c.1 == *by && c.0 - at <= SAME_INSTANT)
                .map(|c| c.2)
                .collect();
            observations.push(obs(
                Some(*at),
                Some(ch),
                format!(
                    "the {by} closed first ({how}); {} of {} connections closed by the {by} within {} ms: {}",
                    same.len(),
                    g.channels.len() - lost_channels.len(),
                    (SAME_INSTANT * 1000.0) as u32,
                    same.join(", ")
                ),
                "capture",
            ));
        }
        for c in &g.channels {
            if c.closes.is_empty() && c.open_at_end {
                observations.push(obs(
                    None,
                    Some(&c.name),
                    "still open when the capture ended".into(),
                    "capture",
                ));
            }
        }
    }
    for a in &s.attempts {
        let what = match a.result.as_str() {
            "auth.refused" => format!(
                "login refused: {}",
                a.detail.as_deref().unwrap_or("no reason given")
            ),
            "rst_to_syn" => "refused: RST to the SYN (nothing listening)".to_string(),
            "no_answer" => "SYN never answered".to_string(),
            r => match &a.upgrade {
                Some(u) => format!(
                    "upgrade {} refused with HTTP {}",
                    u.target,
                    u.status.unwrap_or(0)
                ),
                None => r.to_string(),
            },
        };
        observations.push(obs(
            Some(a.at),
            None,
            format!("connection {} {what}", a.connection),
            "capture",
        ));
    }
    if outcome == SessionOutcome::Recovered
        && let Some(last) = last
    {
        let state = match last.ended_at {
            None => "was still open at the end".to_string(),
            Some(e) => format!("closed at {}", t(e)),
        };
        observations.push(obs(
            Some(last.started_at),
            None,
            format!("generation {} came up and {state}", last.index + 1),
            "capture",
        ));
    }

    let facts: Vec<ChannelFacts> = if zip.is_empty() {
        lost.or(last)
            .map(|g| g.channels.iter().map(ChannelFacts::from_channel).collect())
            .unwrap_or_default()
    } else {
        zip.to_vec()
    };

    let ending = lost.and_then(|g| super::evidence::ending(s, timers, g, legs));
    // A path that died before the server's timer closed the session: the
    // generation went quiet at the outage, and ended at the close.
    if let Some(e) = &ending
        && e.closed_by == "server"
        && zip_end.is_none()
        && end_at.is_some_and(|t| t < e.at)
    {
        end_at = Some(e.at);
    }
    if s.app_kind() == "spice" {
        spice_rules(
            s,
            timers,
            &facts,
            end_at,
            &zip_end,
            &mut observations,
            &mut inferences,
            &mut candidates,
            &mut env,
        );
    }
    generic_rules(
        s,
        timers,
        end_at,
        &mut observations,
        &mut candidates,
        &mut env,
    );
    // A session that died of a refused reconnect is named by that refusal.
    let refused_reconnect = candidates
        .iter()
        .any(|c| c.cause == "http.401_stale_token" && c.fits);
    if let Some(e) = &ending
        && zip_end.is_none()
        && !refused_reconnect
    {
        match candidates.iter_mut().find(|c| c.cause == e.cause) {
            // The same story told by the older rules: keep its words, put
            // the deciding evidence first.
            Some(c) => {
                c.decisive = true;
                c.fits = true;
                // The older rule's words name its own origin; evidence that
                // found another (a dead path, not a client that stopped
                // reading) needs words of its own.
                if e.origin == Some("network.outage")
                    && c.origin.is_some_and(|o| o.starts_with("client."))
                {
                    c.summary = decided_summary(e.cause, e.origin);
                }
                c.origin = e.origin.or(c.origin);
                let mut supports = e.because.clone();
                supports.append(&mut c.supports);
                c.supports = supports;
            }
            None => candidates.push(Candidate {
                cause: e.cause,
                origin: e.origin,
                summary: decided_summary(e.cause, e.origin),
                supports: e.because.clone(),
                against: Vec::new(),
                fits: true,
                decisive: true,
            }),
        }
    }

    // Rank: the layered evidence first, then timing fits, then fewest
    // contradictions, then most support.
    candidates.sort_by_key(|c| {
        (
            !c.decisive,
            !c.fits,
            c.against.len(),
            std::cmp::Reverse(c.supports.len()),
        )
    });
    let explanations_decisive = candidates.first().is_some_and(|c| c.decisive);
    let explanations: Vec<Explanation> = candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| Explanation {
            rank: i + 1,
            cause: c.cause.to_string(),
            origin: c.origin.map(str::to_string),
            summary: c.summary,
            supports: c.supports,
            against: c.against,
        })
        .collect();
    // The environment the what-if replays follows the leading explanation:
    // a reset from a load balancer or a close by the server's own timer is
    // not the server dying.
    if let Some(top) = explanations.first()
        && !matches!(
            top.cause.as_str(),
            "server.killed" | "relay.killed" | "http.401_stale_token"
        )
    {
        env.server_killed = None;
        env.server_back = None;
    }
    if explanations
        .first()
        .is_none_or(|e| e.cause != "network.outage")
    {
        env.network_dead = None;
    }
    // A hold is the environment only of the ending it explains.
    if explanations.first().is_none_or(|e| {
        (e.cause.as_str(), e.origin.as_deref())
            != ("server.connectivity_timeout", Some("network.outage"))
    }) {
        env.relay_hold = None;
    }
    // An idle timeout that only fit the quiet spell, while something else
    // explains the ending, is a guess about the path, not part of it.
    if explanations
        .first()
        .is_none_or(|e| e.cause != "lb.idle_timeout")
    {
        env.lb_idle = None;
    }
    if let Some(e) = &ending
        && explanations.first().is_some_and(|x| x.cause == e.cause)
        && e.because
            .iter()
            .any(|b| b.starts_with("timing.deliberate_close"))
    {
        env.user_close = Some(e.at);
        let why = e
            .because
            .iter()
            .find(|b| b.starts_with("timing.deliberate_close"))
            .cloned()
            .unwrap_or_default();
        env.cite("user_close", why);
    }
    // After a recovery the session ends where its last generation did: a
    // deliberate close there is the user's, and the model stops there too.
    if env.user_close.is_none()
        && let (Some(l), Some(g)) = (last, lost)
        && l.index != g.index
        && l.ended_at.is_some()
        && let Some(e) = super::evidence::ending(s, timers, l, legs)
        && let Some(why) = e
            .because
            .iter()
            .find(|b| b.starts_with("timing.deliberate_close"))
    {
        env.user_close = Some(e.at);
        let why = format!("the last generation's end: {why}");
        env.cite("user_close", why);
    }
    // A server or relay process ending decided by the evidence (its leg's
    // close, a relay's goodbye for a backend that went away): the process
    // the client dials dies there, for the model, and is back when a later
    // generation came up.
    if let Some(e) = &ending
        && matches!(e.cause, "server.killed" | "relay.killed")
        && env.server_killed.is_none()
        && explanations.first().is_some_and(|x| x.cause == e.cause)
    {
        env.server_killed = Some(e.at);
        env.cite(
            "server_killed",
            format!("{} at {}: {}", e.cause, t(e.at), e.because.join("; ")),
        );
        env.server_back = s
            .generations
            .iter()
            .find(|g| g.started_at > e.at)
            .map(|g| g.started_at);
        if let Some(back) = env.server_back {
            env.cite(
                "server_back",
                format!("a later generation came up at {}", t(back)),
            );
        }
    }
    // What the leading explanation says of the peers, for the model: a
    // path that died, a frozen peer found by the other's keep-alive (from
    // its first unanswered ping), a server's own goodbye.
    if let (Some(top), Some(g)) = (explanations.first(), lost) {
        // The frozen side was last alive at its last sign before the ping
        // it never answered, a pong or any message it sent (a stopped
        // process sends nothing): the freeze is taken to start just after.
        let first_unanswered = |dir: &str| {
            g.channels
                .iter()
                .filter_map(|c| {
                    let ping = unanswered_ping(c, dir)?;
                    let sent_before = c
                        .peer_last_before_ping
                        .iter()
                        .find(|(at, _)| *at == ping)
                        .and_then(|(_, last)| *last);
                    let last_sign = c
                        .marks
                        .iter()
                        .filter(|m| m.dir() != dir && m.at < ping)
                        .map(|m| m.at)
                        .chain(sent_before)
                        .max_by(f64::total_cmp)
                        .map(|at| at + 0.001);
                    Some(last_sign.unwrap_or(ping))
                })
                .min_by(f64::total_cmp)
        };
        let leading = format!("the leading explanation, {}: {}", top.cause, top.summary);
        match (top.cause.as_str(), top.origin.as_deref()) {
            ("network.outage", _) if env.network_dead.is_none() && env.relay_hold.is_none() => {
                env.network_dead = end_at.map(|at| (at, None));
                env.cite("network_dead", leading);
            }
            ("server.closed", Some("client.frozen")) if env.client_stall.is_none() => {
                env.client_stall = first_unanswered("s2c").map(|at| (at, None));
                env.cite(
                    "client_stall",
                    format!("from its last sign (a pong or a message it sent) before the first server PING it left unanswered; {leading}"),
                );
            }
            ("client.liveness_timeout", Some("server.frozen")) => {
                env.server_stall = first_unanswered("c2s");
                env.cite(
                    "server_stall",
                    format!("from its last sign (a pong or a message it sent) before the first client PING it left unanswered; {leading}"),
                );
            }
            // The timer fired because the path died, not the client: the
            // client's kernel acknowledged nothing the server retransmitted
            // (a frozen process's kernel still would, RFC 9293 §3.8.6.1), so
            // what stopped at the client's last sign is the path.
            ("server.connectivity_timeout", Some("network.outage")) => {
                // A relay that held the traffic, seen on both of its legs:
                // the last bytes it forwarded date the hold better than
                // main's silence, which began before the hold did.
                let held = ending
                    .as_ref()
                    .filter(|e| e.cause == top.cause && e.origin == Some("network.outage"))
                    .and_then(|e| super::evidence::passed_on(g, legs, e.at))
                    .and_then(|(_, held)| held);
                if let Some((from, to)) = held {
                    env.client_stall = None;
                    env.relay_hold = Some((from, to));
                    env.cite(
                        "relay_hold",
                        format!(
                            "the relay forwarded nothing to the client from {} until it passed the server's close on at {}: {leading}",
                            t(from),
                            t(to)
                        ),
                    );
                } else if let Some((from, _)) = env.client_stall.take() {
                    env.network_dead = Some((from, None));
                    let dead = top
                        .supports
                        .iter()
                        .find_map(|x| x.split("; ").find(|p| p.starts_with("tcp.dead_path")))
                        .map_or(leading.clone(), str::to_string);
                    env.cite(
                        "network_dead",
                        format!(
                            "from the client's last sign at {}, then the server's timer (origin network.outage): {dead}",
                            t(from)
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    // The server's own goodbye, with nothing that made it: the server ends
    // the session there and goes on listening. A bug report's record may
    // hold no closed connection, only the client's word for the ending.
    if let Some(top) = explanations.first()
        && top.cause == "server.closed"
        && top.origin.is_none()
        && env.server_close.is_none()
    {
        env.server_close = end_at;
        env.cite(
            "server_close",
            format!("the leading explanation, {}: {}", top.cause, top.summary),
        );
    }
    // A relay's idle cut decided by the evidence (both legs at once) at a
    // timeout no usual default matched: the quiet spell before the cut on
    // the channel it cut is the timeout, for the model's load balancer.
    if let Some(e) = &ending
        && e.cause == "lb.idle_timeout"
        && env.lb_idle.is_none()
        && explanations.first().is_some_and(|x| x.cause == e.cause)
        && let Some(c) = lost
            .into_iter()
            .flat_map(|g| g.channels.iter())
            .find(|c| e.channel.as_deref() == Some(c.name.as_str()))
    {
        let last_data = [c.last_c2s, c.last_s2c]
            .into_iter()
            .flatten()
            .filter(|l| *l < e.at - 0.5)
            .fold(c.opened_at, f64::max);
        let idle = e.at - last_data;
        if idle >= 1.0 {
            // The ends were told (a FIN or a RST at the cut, as HAProxy
            // does), not left to find out by keep-alive: the model's
            // expiry that closes both ends at once.
            let told = c.closes.iter().any(|x| (x.at - e.at).abs() <= 1.0);
            let to_client = c
                .closes
                .iter()
                .find(|x| (x.at - e.at).abs() <= 1.0 && x.by != "client");
            env.lb_idle = Some(((idle * 10.0).round() / 10.0, lb_expiry(told, to_client)));
            env.cite(
                "lb_idle",
                format!(
                    "{} quiet {idle:.1} s before the cut at {}, {}; {}",
                    c.name,
                    t(e.at),
                    if told {
                        "both ends told at once"
                    } else {
                        "neither end told"
                    },
                    e.because.join("; ")
                ),
            );
        }
    }
    let (cause, channel, origin) = match explanations.first() {
        Some(e) if outcome != SessionOutcome::Open => {
            // No evidence rule decided and the best story has evidence
            // against it, or a rival fits as well: say unknown, and what
            // would decide, rather than guess.
            let rival = explanations.get(1).is_some_and(|r| {
                r.against.is_empty() && e.against.is_empty() && r.cause != e.cause
            });
            // A refused reconnect that presented a stale credential is
            // protocol evidence too (the 401 and the credential it reused).
            let decided = explanations_decisive || zip_end.is_some() || refused_reconnect;
            let (cause, origin) = if !decided && (!e.against.is_empty() || rival) {
                let text = match (e.cause.as_str(), explanations.get(1)) {
                    ("server.killed", None) => "undecided: the server side closed idle connections with nothing after the close: a server killed while idle, or a load balancer or proxy in front of it cutting idle connections (lb.idle_timeout), look the same from here; a reconnect (refused with RST: nothing listens, the server died) or a capture behind the middlebox would decide".to_string(),
                    (top, rival) => format!(
                        "undecided: {top} and {} both fit what the capture shows; a capture at the other end (whose segments reached it, who sent first) or the peers' logs would decide",
                        rival.map_or("another ending", |r| r.cause.as_str())
                    ),
                };
                inferences.push(obs(end_at, None, text, "rule"));
                ("unknown".to_string(), None)
            } else {
                (e.cause.clone(), e.origin.clone())
            };
            // A SPICE session lives and dies with main: name it when it
            // closed with the rest.
            let main_closed = lost.is_some_and(|g| {
                g.channels.iter().any(|c| {
                    c.name == "main"
                        && c.closes
                            .first()
                            .zip(end_at)
                            .is_some_and(|(x, e)| x.at - e <= SAME_INSTANT)
                })
            });
            let channel = if cause.starts_with("server.connectivity") || main_closed {
                Some("main".to_string())
            } else {
                lost.and_then(|g| g.ending_closes().first().map(|(c, _)| c.name.clone()))
            };
            (Some(cause), channel, origin)
        }
        _ => (None, None, None),
    };
    let closed_by = match &ending {
        Some(e) => (e.closed_by != "none").then_some(e.closed_by),
        None => lost.and_then(|g| g.ending_closes().first().map(|(_, x)| x.by)),
    };
    // Service was back when a later generation came up.
    let recovered_at = match (outcome, lost) {
        (SessionOutcome::Recovered, Some(l)) => s
            .generations
            .iter()
            .find(|g| g.index > l.index)
            .map(|g| g.started_at),
        _ => None,
    };
    // Without a reconnect, the outage is the longest spell in which the
    // path delivered nothing and came back (tcp.dead_path, then an ACK).
    // It came back at the first acknowledgement on any of the session's
    // connections: one stalled longer was waiting out its sender's
    // doubled retransmission timeout (RFC 6298 §5.5), not the path
    // (holdout spicy-blackhole-short: main's PONG came 1.2 s before
    // display's retransmission).
    let stalls: Vec<(f64, f64)> = s
        .channels()
        .flat_map(|c| c.tcp.iter())
        .filter_map(|t| t.longest_stall)
        .collect();
    let stall = stalls
        .iter()
        .map(|&(from, len)| {
            stalls
                .iter()
                // To the microsecond the capture's clock has.
                .map(|&(other, other_len)| ((other + other_len - from) * 1e6).round() / 1e6)
                .filter(|back| *back > 0.0 && *back < len)
                .fold(len, f64::min)
        })
        .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))))
        .filter(|l| *l >= 1.0);
    let outage = recovered_at
        .zip(end_at)
        .map(|(r, e)| (r - e).max(0.0))
        .or(stall);
    let failed_attempts = s
        .attempts
        .iter()
        .map(|a| FailedAttempt {
            at: a.at,
            reason: a.result.clone(),
            detail: a.detail.clone(),
        })
        .collect();
    // A session that never came up ended with its last refusal, which the
    // server gave (a login refused, a RST, an HTTP status).
    let (end_at, closed_by) = match (outcome, s.attempts.last()) {
        (SessionOutcome::Refused, Some(a)) => (
            end_at.or(Some(a.at)),
            closed_by.or((a.result != "no_answer").then_some("server")),
        ),
        _ => (end_at, closed_by),
    };
    let later_generations: Vec<LaterGeneration> = s
        .generations
        .iter()
        .skip(1)
        .map(|g| {
            let drop = s
                .generations
                .iter()
                .filter(|h| h.index < g.index)
                .filter_map(|h| h.ended_at)
                .fold(f64::NEG_INFINITY, f64::max);
            let gap = if drop.is_finite() {
                g.started_at - drop
            } else {
                0.0
            };
            let (kind, why) = reconnect.judge(gap);
            LaterGeneration {
                index: g.index,
                at: g.started_at,
                kind,
                why,
            }
        })
        .collect();
    for l in &later_generations {
        observations.push(obs(
            Some(l.at),
            None,
            format!(
                "generation {} is {}: {}",
                l.index + 1,
                l.kind.replace('_', " "),
                l.why
            ),
            "rule",
        ));
    }
    Diagnosis {
        outcome,
        at: if outcome == SessionOutcome::Open {
            None
        } else {
            end_at
        },
        cause,
        channel,
        origin,
        closed,
        closed_by: if outcome == SessionOutcome::Open {
            None
        } else {
            closed_by
        },
        recovered_at,
        outage,
        failed_attempts,
        later_generations,
        zip_channel: None,
        timers: *timers,
        observations,
        inferences,
        explanations,
        env,
    }
}

#[allow(clippy::too_many_arguments)]
fn spice_rules(
    s: &Session,
    timers: &SpiceTimers,
    facts: &[ChannelFacts],
    end_at: Option<f64>,
    zip_end: &Option<(f64, String, String)>,
    observations: &mut Vec<Evidence>,
    inferences: &mut Vec<Evidence>,
    candidates: &mut Vec<Candidate>,
    env: &mut EnvFacts,
) {
    let Some(end) = end_at else { return };
    let src = facts.first().map_or("capture", |f| f.source);
    let mut idle_normal = Vec::new();
    for f in facts {
        let Some(last) = f.last_recv else { continue };
        let quiet = end - last;
        let interval = timers.interval(&f.channel);
        // Seconds of quiet are not worth a word; minutes are.
        if f.channel != "main" && f.channel != "display" && quiet > timers.ping {
            if quiet < interval {
                idle_normal.push(format!("{} ({:.1} s)", f.channel, quiet));
            } else {
                observations.push(obs(
                    Some(last),
                    Some(&f.channel),
                    format!(
                        "quiet for {quiet:.1} s before the end, longer than the server's {interval:.0} s ping interval"
                    ),
                    src,
                ));
            }
        }
        observations.push(obs(
            Some(last),
            Some(&f.channel),
            format!(
                "last received {}; last sent {}; {} PINGs received, {} PONGs sent",
                t(last),
                f.last_send.map_or("never".into(), t),
                f.pings_recv,
                f.pongs_sent
            ),
            src,
        ));
    }
    if !idle_normal.is_empty() {
        inferences.push(obs(
            None,
            None,
            format!(
                "silence on {} is expected: the server pings channels other than main and display only every {:.0} s (PING_TEST_LONG_TIMEOUT_MS, server/red-channel-client.cpp:239) and has no connectivity timer on them (main only, main-channel-client.cpp:155-163)",
                idle_normal.join(", "),
                timers.long_ping
            ),
            "rule",
        ));
    }

    let main = facts.iter().find(|f| f.channel == "main");
    // The client stopped answering main: a ping it received and never
    // answered (capture), or more pings than pongs with the last ping
    // after the last send (zip).
    let answered_stall = main.and_then(|m| {
        m.first_unanswered_ping.or_else(|| {
            (m.pings_recv > m.pongs_sent)
                .then_some(())
                .and(m.last_ping_recv)
                .filter(|p| m.last_send.is_none_or(|s| s < *p))
        })
    });
    // A client that stopped reading main never counts the PINGs it did not
    // read, so its own PINGs == PONGs; but main, pinged every interval by a
    // live server, heard nothing for over two intervals before the end while
    // another channel still received: the server and the path were alive,
    // main's reader was not.
    let main_interval = timers.interval("main");
    let unread_main = main.and_then(|m| {
        let last = m.last_recv?;
        let others_later = facts
            .iter()
            .filter(|f| f.channel != "main")
            .any(|f| f.last_recv.is_some_and(|l| l > last + main_interval));
        (answered_stall.is_none() && end - last > 2.0 * main_interval && others_later)
            .then_some(last)
    });
    let stall_at = answered_stall.or(unread_main);
    let main_quiet_from = main.and_then(|m| m.last_recv);
    let others_after: Vec<(String, f64)> = facts
        .iter()
        .filter(|f| f.channel != "main")
        .filter_map(|f| Some((f.channel.clone(), f.last_recv?)))
        .filter(|(_, l)| main_quiet_from.is_some_and(|m| *l > m + 1.0))
        .collect();

    if let Some(p) = stall_at {
        // Unread, the first PING the client missed came within an interval
        // after the last byte it read.
        let unread_slack = if unread_main.is_some() {
            main_interval
        } else {
            0.0
        };
        let (lo, hi) = (
            p + timers.connectivity_tick,
            p + unread_slack + 2.0 * timers.connectivity_tick,
        );
        observations.push(obs(
            Some(p),
            Some("main"),
            if unread_main.is_some() {
                format!(
                    "main received nothing after {} though a live server pings it every {main_interval:.0} s, while other channels kept receiving; its PINGs == PONGs only because a client that stopped reading main never counts the PINGs it did not read",
                    t(p)
                )
            } else {
                format!("the server's PING at {} on main was never answered", t(p))
            },
            src,
        ));
        inferences.push(obs(
            Some(lo),
            Some("main"),
            format!(
                "the server's connectivity timer on main ({:.0} s ticks, CLIENT_CONNECTIVITY_TIMEOUT) drops a client whose ping round is outstanding at two ticks: between {} and {}",
                timers.connectivity_tick,
                t(lo),
                t(hi)
            ),
            "rule",
        ));
        let server_close = s
            .generations
            .iter()
            .flat_map(|g| g.channels.iter())
            .flat_map(|c| c.closes.iter())
            .filter(|x| x.by == "server")
            .map(|x| x.at)
            .min_by(f64::total_cmp);
        let mut supports = vec![format!(
            "main: PING at {} unanswered; the server pings main every {:.0} s, so a client that reads main answers within milliseconds",
            t(p),
            timers.ping
        )];
        let mut against = Vec::new();
        let mut fits = true;
        match server_close {
            Some(c) if c >= lo - 1.0 && c <= hi + 1.0 => supports.push(format!(
                "the server closed at {}, inside the timer's window",
                t(c)
            )),
            Some(c) => {
                fits = false;
                against.push(format!(
                    "the server closed at {}, outside the timer's window {}..{}",
                    t(c),
                    t(lo),
                    t(hi)
                ));
            }
            None if end >= lo - 1.0 => supports.push(format!(
                "the client noticed the end at {}, after the window opened (a client that is not reading sees the close late)",
                t(end)
            )),
            None => {
                fits = false;
                against.push(format!("the session ended at {} before the timer could fire", t(end)));
            }
        }
        if !others_after.is_empty() {
            supports.push(format!(
                "other channels kept receiving after main went quiet ({}), so the server and the network were alive: only main's reader stopped",
                others_after
                    .iter()
                    .map(|(c, l)| format!("{c} until {}", t(*l)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        candidates.push(Candidate {
            cause: "server.connectivity_timeout",
            origin: Some(if unread_main.is_some() {
                "client.stopped_reading_main"
            } else {
                "client.stopped_answering_main"
            }),
            summary: format!(
                "the client stopped reading or answering main at ≈{}; the server's connectivity timer dropped it",
                t(p)
            ),
            supports,
            against,
            fits,
            decisive: false,
        });
        let stall_end = zip_end.as_ref().map(|z| z.0).or_else(|| {
            s.generations
                .iter()
                .flat_map(|g| g.channels.iter())
                .flat_map(|c| c.closes.iter())
                .filter(|x| x.by == "client")
                .map(|x| x.at)
                .min_by(f64::total_cmp)
        });
        // The client was last alive at its last message on any channel
        // before the PING it left unanswered: the stall starts just after
        // (when exactly between the two, the capture cannot say).
        let last_alive = s
            .generations
            .iter()
            .flat_map(|g| g.channels.iter())
            .filter_map(|c| {
                // A channel quiet since before the PING: its last byte; one
                // heard again after it (a thawed client): its last pong or
                // ping before it.
                c.last_c2s.filter(|l| *l < p).or_else(|| {
                    c.marks
                        .iter()
                        .filter(|m| m.dir() == "c2s" && m.at < p)
                        .map(|m| m.at)
                        .max_by(f64::total_cmp)
                })
            })
            // A bug report's own record of each channel's last send.
            .chain(facts.iter().filter_map(|f| f.last_send.filter(|l| *l < p)))
            .map(|t| t + 0.001)
            .max_by(f64::total_cmp);
        env.client_stall = Some((last_alive.unwrap_or(p), stall_end));
        env.cite(
            "client_stall",
            format!(
                "the client's last sign before the PING at {} it left unanswered{}",
                t(p),
                stall_end.map_or(String::new(), |e| format!(", until its close at {}", t(e)))
            ),
        );

        // Competing: the network died at the stall.
        let mut against = Vec::new();
        if !others_after.is_empty() {
            against.push(format!(
                "{} still received after {}: the network delivered",
                others_after[0].0,
                t(p)
            ));
        }
        candidates.push(Candidate {
            cause: "network.outage",
            origin: None,
            summary: format!("the network stopped delivering at ≈{}", t(p)),
            supports: vec!["main went quiet and its PING went unanswered".into()],
            against,
            fits: true,
            decisive: false,
        });
    }

    // Main went quiet for longer than two of the server's ping intervals
    // while the connection stayed up: nothing crossed, though a connected
    // server pings it every 15 s.
    if stall_at.is_none()
        && let Some(m) = main
        && let Some((from, len)) = m.longest_silence
        && len > 2.0 * timers.interval("main") + 5.0
    {
        let to = from + len;
        let quiet_too: Vec<String> = facts
            .iter()
            .filter(|f| f.channel != "main")
            .filter_map(|f| {
                let (g, l) = f.longest_silence?;
                (g <= from + timers.ping && g + l >= to - 1.0).then(|| f.channel.clone())
            })
            .collect();
        observations.push(obs(
            Some(from),
            Some("main"),
            format!(
                "nothing from the server on main for {len:.1} s ({}..{}), though a connected server pings main every {:.0} s",
                t(from),
                t(to),
                timers.ping
            ),
            src,
        ));
        let mut supports = vec![format!("main silent {len:.1} s from {}", t(from))];
        if !quiet_too.is_empty() {
            supports.push(format!(
                "silent over the same spell: {}",
                quiet_too.join(", ")
            ));
        }
        supports.push(format!(
            "the server's connectivity timer would drop a client it cannot reach between {} and {}; its close reached the capture at {}",
            t(from + timers.connectivity_tick),
            t(from + 2.0 * timers.connectivity_tick + timers.ping),
            t(to)
        ));
        // A dead path stops keep-alive probes too: the client's socket
        // aborts `client_keepalive` after main's last segment (LX
        // tcp_keepalive_timer) and answers what comes later with a RST. A
        // client that outlived that and closed main with a FIN had its
        // probes answered: something between took the bytes and held them.
        let main_outlived = timers.client_keepalive.filter(|&budget| {
            to - from > budget + 1.0
                && s.generations.last().is_some_and(|g| {
                    g.channels.iter().any(|c| {
                        c.name == "main"
                            && c.closes
                                .iter()
                                .any(|x| x.by == "client" && x.how == "fin" && x.at >= to)
                    })
                })
        });
        // A probe answered inside the spell says so directly: a dead path
        // answers none (RFC 9293 §3.8.4). With the server's close at its
        // end, after the timer could first fire, the server was running
        // and its timer dropped the client whose bytes were held.
        let gen_channels = || {
            s.generations
                .last()
                .into_iter()
                .flat_map(|g| g.channels.iter())
        };
        let probe_answered = gen_channels()
            .filter_map(|c| c.tcp[0].last_keepalive_answered)
            .filter(|&a| a > from && a < to)
            .max_by(f64::total_cmp);
        let server_closed_main = gen_channels().any(|c| {
            c.name == "main"
                && c.closes
                    .first()
                    .is_some_and(|x| x.by == "server" && (x.at - to).abs() <= 1.0)
        });
        let held_by_probe =
            probe_answered.filter(|_| server_closed_main && to - from >= timers.connectivity_tick);
        // Held, the server's PINGs went unanswered as across a dead path,
        // and its close was held with the rest.
        let held = main_outlived.is_some() || held_by_probe.is_some();
        // What was held began with the last bytes any channel carried
        // before it (main's own silence may have begun earlier).
        let hold_from = gen_channels()
            .filter_map(|c| {
                let quiet = c.longest_s2c_silence_from?;
                (quiet + c.longest_s2c_silence >= to - 1.0).then_some(quiet)
            })
            .fold(from, f64::max);
        let (cause, origin, summary) = if held {
            if let Some(budget) = main_outlived {
                supports.push(format!(
                    "the client's main socket outlived its keep-alive ({budget:.0} s after the last segment, at {}) and answered the close with a FIN: its probes were answered, so the bytes were taken and held, not lost",
                    t(from + budget)
                ));
            }
            if let Some(a) = held_by_probe {
                supports.push(format!(
                    "tcp.keepalive_answered: the client's keep-alive probe was answered at {} while nothing else crossed, so the path held the connection open and took the bytes; the server's close came at the spell's end",
                    t(a)
                ));
            }
            (
                "server.connectivity_timeout",
                Some("network.outage"),
                format!(
                    "something between took every byte both ways from ≈{} and forwarded nothing; the server's connectivity timer dropped the client it could no longer hear, and its close was held with the rest until {}",
                    t(hold_from),
                    t(to)
                ),
            )
        } else {
            (
                "network.outage",
                None,
                format!(
                    "traffic stopped both ways at ≈{} and resumed only with the close",
                    t(from)
                ),
            )
        };
        candidates.push(Candidate {
            cause,
            origin,
            summary,
            supports,
            against: vec![],
            fits: true,
            decisive: false,
        });
        if held {
            env.relay_hold = Some((hold_from, to));
            env.cite(
                "relay_hold",
                format!(
                    "nothing crossed both ways from ≈{} to the close at {}, yet the client's keep-alive never gave up: the bytes were held",
                    t(hold_from),
                    t(to)
                ),
            );
        } else {
            env.network_dead = Some((from, Some(to)));
            env.cite(
                "network_dead",
                format!(
                    "traffic stopped both ways at ≈{} and resumed only with the close at {}",
                    t(from),
                    t(to)
                ),
            );
        }
    }

    // The seed-002 belief: idle channels are dropped after a quiet spell.
    if !idle_normal.is_empty() {
        candidates.push(Candidate {
            cause: "server.idle_timeout_seed_belief",
            origin: None,
            summary: "the server dropped channels that were idle (seed 002's first hypothesis)".into(),
            supports: vec![format!("{} were quiet before the end", idle_normal.join(", "))],
            against: vec![
                "spice-server has no connectivity timer on non-main channels (main-channel-client.cpp:155-163 is the only caller)".into(),
                "their silence is shorter than the 300 s interval at which the server pings them".into(),
            ],
            fits: false,
            decisive: false,
        });
    }

    if let Some((at, kind, msg)) = zip_end
        && (kind == "ServerClosed" || kind == "ServerAnnounced")
        && stall_at.is_none()
    {
        candidates.push(Candidate {
            cause: "server.closed",
            origin: None,
            summary: if kind == "ServerAnnounced" {
                "the server announced the disconnect (SPICE DISCONNECTING)".into()
            } else {
                "the server closed the connection; the client's record shows nothing that would make it".into()
            },
            supports: vec![format!("disconnect_kind {kind} at {}: \"{msg}\"", t(*at))],
            against: vec![],
            fits: true,
            decisive: false,
        });
    }
    if let Some((_, kind, _)) = zip_end
        && kind == "KeepaliveTimeout"
    {
        candidates.push(Candidate {
            cause: "client.liveness_timeout",
            origin: None,
            summary: "the client's own main-channel timeout fired".into(),
            supports: vec!["disconnect_kind KeepaliveTimeout".into()],
            against: vec![],
            fits: true,
            decisive: false,
        });
    }
}

/// Rules that hold for any protocol: a server gone at once, refused
/// reconnects, stale credentials, load-balancer idle drops, clean closes.
fn generic_rules(
    s: &Session,
    timers: &SpiceTimers,
    end_at: Option<f64>,
    observations: &mut Vec<Evidence>,
    candidates: &mut Vec<Candidate>,
    env: &mut EnvFacts,
) {
    if s.generations.is_empty()
        && let Some(a) = s.attempts.first()
    {
        let (cause, summary) = match a.result.as_str() {
            "auth.refused" => (
                "auth.refused",
                format!(
                    "the login was refused ({})",
                    a.detail.as_deref().unwrap_or("no reason given")
                ),
            ),
            "rst_to_syn" => ("tcp.refused", "nothing was listening".to_string()),
            "no_answer" => ("tcp.no_answer", "the SYN was never answered".to_string()),
            r => (
                if r == "http_401" || r == "http_403" {
                    "http.refused"
                } else {
                    "http.error"
                },
                format!(
                    "the server refused the upgrade with HTTP {}",
                    r.trim_start_matches("http_")
                ),
            ),
        };
        candidates.push(Candidate {
            cause,
            origin: None,
            summary: format!("the session never came up: {summary}"),
            supports: vec![format!(
                "connection {} at {}: {}",
                a.connection,
                t(a.at),
                a.result
            )],
            against: vec![],
            fits: true,
            decisive: false,
        });
        // A refused login is the server's word on the credential, not on
        // the path: the model's server refuses it from then on.
        if cause == "auth.refused" || cause == "http.refused" {
            env.auth_refused = Some(a.at);
            env.cite(
                "auth_refused",
                format!(
                    "connection {} at {} was refused at login: {}",
                    a.connection,
                    t(a.at),
                    a.detail.as_deref().unwrap_or(a.result.as_str())
                ),
            );
        }
        return;
    }
    let Some(end) = end_at else { return };
    let Some(lost) = s.generations.iter().find(|g| g.ended_at.is_some()) else {
        return;
    };
    let first_closes = lost.ending_closes();
    let server_first: Vec<_> = first_closes
        .iter()
        .filter(|(_, x)| x.by == "server" && x.at - end <= SAME_INSTANT)
        .collect();
    let goodbye = first_closes
        .iter()
        .find(|(_, x)| super::session::is_goodbye(&x.how));
    let refused_after: Vec<_> = s.attempts.iter().filter(|a| a.at >= end).collect();
    let back = s
        .generations
        .iter()
        .find(|g| g.started_at > end)
        .map(|g| g.started_at);

    // Server gone: every connection closed by the server at one instant,
    // with no goodbye and nothing unanswered before it.
    let all_server = !server_first.is_empty() && server_first.len() == lost.channels.len();
    let unanswered_before = lost
        .channels
        .iter()
        .any(|c| c.unanswered_pings.iter().any(|p| *p < end - 1.0));
    if all_server && goodbye.is_none() {
        let mut supports = vec![if lost.channels.len() == 1 {
            format!(
                "the server closed the connection at {} without a protocol goodbye",
                t(end)
            )
        } else {
            format!(
                "the server closed all {} connections within {} ms at {}, without a protocol goodbye",
                lost.channels.len(),
                (SAME_INSTANT * 1000.0) as u32,
                t(end)
            )
        }];
        let mut against = Vec::new();
        if refused_after.iter().any(|a| a.result == "rst_to_syn") {
            supports.push("later connects were refused with RST: nothing was listening".into());
        }
        if unanswered_before {
            against.push(
                "a server PING was unanswered before the close: a liveness timer fits too".into(),
            );
        }
        // The server's last payload as TCP saw it (a decoder may date a
        // message by the segment that closed it).
        let last_s2c = lost
            .channels
            .iter()
            .filter_map(|c| c.tcp[1].last_payload.or(c.last_s2c))
            .fold(0.0f64, f64::max);
        let main_quiet = lost
            .channels
            .iter()
            .find(|c| c.name == "main")
            .filter(|c| c.longest_s2c_silence > 2.0 * timers.ping + 5.0)
            .map(|c| c.longest_s2c_silence);
        if let Some(q) = main_quiet {
            against.push(format!(
                "main had heard nothing from the server for {q:.1} s before the close, though a connected server pings it every {:.0} s",
                timers.ping
            ));
        }
        if end - last_s2c > 5.0 {
            against.push(format!(
                "the server had been silent for {:.1} s before closing",
                end - last_s2c
            ));
        }
        candidates.push(Candidate {
            cause: "server.killed",
            origin: None,
            summary: format!(
                "the server process ended at {} (its kernel closed every socket)",
                t(end)
            ),
            supports,
            against,
            fits: true,
            decisive: false,
        });
        env.server_killed = Some(end);
        env.cite(
            "server_killed",
            format!(
                "the server process ended at {} (its kernel closed every socket)",
                t(end)
            ),
        );
        env.server_back = back.or_else(|| {
            refused_after
                .iter()
                .find(|a| a.result.starts_with("http_"))
                .map(|a| a.at)
        });
        if let Some(b) = env.server_back {
            env.cite(
                "server_back",
                format!("the server answered again at {}", t(b)),
            );
        }
    }

    // Upgrades refused after the drop: stale or expired credentials.
    let presented: Vec<(f64, String, Option<f64>)> = s
        .generations
        .iter()
        .flat_map(|g| g.channels.iter())
        .filter_map(|c| {
            let u = c.upgrade.as_ref()?;
            Some((u.at, u.credential.clone()?, u.credential_expires_at))
        })
        .collect();
    if let Some(first) = presented.first()
        && let Some(exp) = first.2
    {
        env.token_lifetime = Some((exp - first.0).max(1.0).ceil());
        env.cite(
            "token_lifetime",
            format!(
                "read from the token presented at {}: it expires at {}",
                t(first.0),
                t(exp)
            ),
        );
    }
    for a in &refused_after {
        let Some(u) = &a.upgrade else { continue };
        let Some(status) = u.status else { continue };
        if status != 401 && status != 403 {
            continue;
        }
        let mut supports = vec![format!(
            "connection {} at {}: upgrade refused with HTTP {status}",
            a.connection,
            t(a.at)
        )];
        let mut against = Vec::new();
        let reused = u
            .credential
            .as_ref()
            .and_then(|c| presented.iter().find(|p| &p.1 == c && p.0 < a.at));
        if let Some((at, cred, _)) = reused {
            supports.push(format!(
                "it presented the credential {cred} first used at {}",
                t(*at)
            ));
        }
        if let Some(exp) = u.credential_expires_at {
            if exp <= a.at {
                supports.push(format!(
                    "the credential expired at {}, before the attempt",
                    t(exp)
                ));
            } else {
                against.push(format!("the credential was valid until {}", t(exp)));
            }
        }
        if u.credential.is_none() {
            against.push("no credential visible in the upgrade".into());
        }
        candidates.push(Candidate {
            cause: "http.401_stale_token",
            origin: None,
            summary: "the reconnect presented a stale credential and was refused".into(),
            supports,
            against,
            fits: reused.is_some() || u.credential_expires_at.is_some_and(|e| e <= a.at),
            decisive: false,
        });
        if env.server_back.is_none() {
            env.server_back = Some(a.at);
            env.cite(
                "server_back",
                format!("a reconnect was answered (HTTP {status}) at {}", t(a.at)),
            );
        }
        break;
    }

    // Load balancer: a reset (or both sides' closes) after exactly one of
    // the usual idle timeouts without data either way.
    for (c, x) in &first_closes {
        let last_data = [c.last_c2s, c.last_s2c]
            .into_iter()
            .flatten()
            .filter(|l| *l < x.at - 0.5)
            .fold(c.opened_at, f64::max);
        let idle = x.at - last_data;
        let rst_both = c.closes.iter().filter(|y| y.how == "rst").count() >= 2
            && c.closes
                .iter()
                .all(|y| y.how == "rst" && (y.at - x.at).abs() <= SAME_INSTANT);
        // A usual product default, or, when both ends were reset at once
        // (no peer does that), whatever the quiet spell measured.
        let n = match LB_TIMEOUTS.iter().find(|n| (idle - **n).abs() <= 1.0) {
            Some(n) => *n,
            None if rst_both && idle >= 1.0 => {
                if idle >= 10.0 {
                    idle.round()
                } else {
                    (idle * 10.0).round() / 10.0
                }
            }
            None => continue,
        };
        let mut supports = vec![format!(
            "{} was idle both ways for {idle:.1} s, then {} {} at {}",
            c.name,
            x.by,
            x.how,
            t(x.at)
        )];
        if rst_both {
            supports.push(
                "both ends received a reset at the same instant: a middlebox, not either peer"
                    .into(),
            );
        }
        let pings = c
            .marks
            .iter()
            .any(|m| m.what() == "ping" && m.at > last_data);
        let mut against = Vec::new();
        if pings {
            against.push("pings crossed during the quiet spell".into());
        }
        // A SPICE session ends with main (spice-server drops any other
        // channel alone), so a cut that ended it cut main; main that
        // carried the server's bytes with the close was not idle.
        let main_busy = first_closes
            .iter()
            .find(|(m, _)| m.name == "main")
            .and_then(|(m, _)| m.last_s2c)
            .filter(|&l| l >= x.at - 1.0 && l <= x.at + SAME_INSTANT);
        if let Some(l) = main_busy {
            against.push(format!(
                "main carried the server's bytes at {}, with the close: the connection the session ends with was not idle",
                t(l)
            ));
        }
        candidates.push(Candidate {
            cause: "lb.idle_timeout",
            origin: None,
            summary: format!(
                "an idle timeout of {n:.0} s between client and server dropped the connection"
            ),
            supports,
            against,
            fits: true,
            decisive: false,
        });
        env.lb_idle = Some((n, lb_expiry(true, Some(x))));
        env.cite(
            "lb_idle",
            format!(
                "{} quiet {n:.0} s, then closed ({}) at {}",
                c.name,
                x.how,
                t(x.at)
            ),
        );
        break;
    }

    if let Some((c, x)) = goodbye {
        let cause = if x.by == "client" {
            "client.closed"
        } else {
            "server.closed"
        };
        candidates.push(Candidate {
            cause,
            origin: None,
            summary: format!(
                "the {} said goodbye on {} ({}{})",
                x.by,
                c.name,
                x.how,
                x.code.map(|k| format!(" {k}")).unwrap_or_default()
            ),
            supports: vec![format!("{} {} at {}", x.by, x.how, t(x.at))],
            against: vec![],
            fits: true,
            decisive: false,
        });
    } else if let Some((c, x)) = first_closes
        .iter()
        .filter(|(_, x)| x.by == "client")
        .min_by(|a, b| a.1.at.total_cmp(&b.1.at))
        && (x.at - end).abs() <= SAME_INSTANT
    {
        let quiet = c.last_s2c.map_or(0.0, |l| x.at - l);
        candidates.push(Candidate {
            cause: if quiet > 10.0 {
                "client.liveness_timeout"
            } else {
                "client.closed"
            },
            origin: None,
            summary: format!(
                "the client closed {} first ({}) after {quiet:.1} s without hearing from the server",
                c.name, x.how
            ),
            supports: vec![format!("client {} at {}", x.how, t(x.at))],
            against: vec![],
            fits: true,
            decisive: false,
        });
    }
    if candidates.is_empty() {
        observations.push(obs(
            Some(end),
            None,
            "no rule tether knows fits this end".into(),
            "rule",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Micros;
    use crate::timeline::synthetic::{Dur, Timeline};

    fn rules(spec: &str) -> ReconnectRules {
        let c =
            super::super::whatif::constants(spec, &Timeline::quiet(Dur(Micros(1_000_000))), &[])
                .unwrap();
        ReconnectRules::from_constants(spec, &c)
    }

    /// The profile's registered reconnect rules decide, not its name.
    #[test]
    fn later_generations_are_judged_by_the_profiles_reconnect_rules() {
        assert_eq!(rules("spice-gtk@default").judge(2.0).0, "new_client");
        let ryll = rules("spice-ryll@phase02");
        assert_eq!(ryll.longest_wait, Some(16.0));
        assert_eq!(ryll.judge(4.2).0, "reconnect");
        assert_eq!(ryll.judge(120.0).0, "new_client");
        assert_eq!(ReconnectRules::default().judge(1.0).0, "unknown");
    }

    /// The SPICE timers come from the model's registry.
    #[test]
    fn spice_timers_are_the_registrys() {
        let t = SpiceTimers::from_registry(Some("spice-gtk@default"));
        assert_eq!(
            (t.ping, t.long_ping, t.connectivity_tick),
            (15.0, 300.0, 30.0)
        );
        assert_eq!(t.interval("display"), 15.0);
        assert_eq!(t.interval("cursor"), 300.0);
    }
}
