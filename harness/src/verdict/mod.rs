//! Verdict types and renderers (text, JSON, JUnit XML).

pub mod cause;

use crate::timeline::Micros;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Survived,
    Disconnected,
    /// The session is gone and reconnecting it failed (budget spent, or
    /// every attempt refused).
    DeadSession,
    /// The user cannot get back in although the session could be (an
    /// attach slot or lease held by a ghost).
    Blocked,
    /// The session never came up: the client's login or connect was
    /// refused, and it did not get in later.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Survived => "survived",
            Outcome::Disconnected => "disconnected",
            Outcome::DeadSession => "dead_session",
            Outcome::Blocked => "blocked",
            Outcome::Refused => "refused",
        }
    }
}

/// Seconds as the verdict prints them: a number, exact for µs values.
pub fn secs(t: Micros) -> f64 {
    t.as_secs_f64()
}

/// How an entry of the causal chain is known. Script entries are the
/// input as given; model entries are what the simulation derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Script,
    Model,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChainEntry {
    pub at: f64,
    /// `client`, `server`, `network`, `lb`, `user`.
    pub actor: &'static str,
    pub what: String,
    pub basis: Basis,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ReconnectAttempt {
    pub attempt: u64,
    pub scheduled_at: f64,
    pub delay: String,
    pub started_at: Option<f64>,
    pub credential: Option<String>,
    pub result: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LeaseEvent {
    pub at: f64,
    pub what: String,
    pub expires_at: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Violation {
    pub code: String,
    pub at: f64,
    pub channel: Option<String>,
    pub message: String,
    /// How many times it happened (the first is `at`).
    pub count: u64,
}

/// What the client saw on one channel over the whole run (all
/// generations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChannelSummary {
    pub channel: String,
    pub generations: u64,
    pub messages_received: u64,
    pub pings_received: u64,
    pub pongs_sent: u64,
    pub keepalives_sent: u64,
    /// Longest time the client received nothing on this channel while it
    /// was open, in seconds.
    pub longest_silence: f64,
    pub last_closed_at: Option<f64>,
    pub last_closed_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    pub outcome: Outcome,
    /// When the session was lost, in seconds; null when it survived.
    pub at: Option<f64>,
    pub cause: Option<String>,
    pub channel: Option<String>,
    pub violations: Vec<Violation>,
    pub profile: String,
    pub variant: String,
    pub constants: BTreeMap<String, String>,
    pub input: String,
    pub horizon: f64,
    pub environment: BTreeMap<String, String>,
    /// Sessions that came up (the first connect plus successful reconnects).
    pub sessions: u64,
    pub chain: Vec<ChainEntry>,
    pub reconnects: Vec<ReconnectAttempt>,
    pub leases: Vec<LeaseEvent>,
    pub channels: Vec<ChannelSummary>,
    /// Simulation steps taken (a livelock guard bounds them).
    pub steps: u64,
    /// For a replay of a capture: what triage said of the recorded session
    /// whose environment this run re-played.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureDiagnosis>,
}

/// The recorded session's diagnosis, as a replay of its capture carries it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CaptureDiagnosis {
    pub outcome: String,
    pub at: Option<f64>,
    pub cause: Option<String>,
    pub channel: Option<String>,
    pub origin: Option<String>,
    /// Every explanation considered, most likely first.
    pub explanations: Vec<String>,
    /// Codes of the recorded client's conformance violations.
    pub violations: Vec<String>,
}

/// The one way a time is written for a reader, by triage, the model and
/// live mode alike: seconds since the input's zero, to the millisecond.
pub fn t_plus(secs: f64) -> String {
    format!("T+{secs:.3}")
}

impl Verdict {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("verdict serialises")
    }

    /// One screen a person reads at a glance: the outcome line first.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let headline = match self.outcome {
            Outcome::Survived => match (self.cause.as_deref(), self.at) {
                (Some("client.closed"), Some(at)) => {
                    format!("SURVIVED until the user closed it at {}", t_plus(at))
                }
                _ => format!("SURVIVED the {} horizon", t_plus(self.horizon)),
            },
            o => format!(
                "{} at {}: {} on {}",
                o.as_str().to_uppercase().replace('_', " "),
                self.at.map_or("?".into(), t_plus),
                self.cause.as_deref().unwrap_or("?"),
                self.channel.as_deref().unwrap_or("?"),
            ),
        };
        let _ = writeln!(s, "{headline}");
        let _ = writeln!(
            s,
            "  profile {}@{}  input {}  sessions {}  steps {}",
            self.profile, self.variant, self.input, self.sessions, self.steps
        );
        let env: Vec<String> = self
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(s, "  environment {}", env.join(" "));
        if !self.violations.is_empty() {
            let _ = writeln!(s, "violations:");
            for v in &self.violations {
                let _ = writeln!(
                    s,
                    "  {} {} {}{} (x{})",
                    t_plus(v.at),
                    v.code,
                    v.channel
                        .as_deref()
                        .map(|c| format!("[{c}] "))
                        .unwrap_or_default(),
                    v.message,
                    v.count
                );
            }
        }
        let _ = writeln!(s, "chain:");
        for c in &self.chain {
            let basis = match c.basis {
                Basis::Script => "script",
                Basis::Model => "model ",
            };
            let _ = writeln!(
                s,
                "  {:>14} {basis} {:<7} {}",
                t_plus(c.at),
                c.actor,
                c.what
            );
        }
        if !self.reconnects.is_empty() {
            let _ = writeln!(s, "reconnects:");
            for r in &self.reconnects {
                let _ = writeln!(
                    s,
                    "  #{} after {} at {}: {} [{}]",
                    r.attempt,
                    r.delay,
                    r.started_at.map_or("-".into(), t_plus),
                    r.result,
                    r.credential.as_deref().unwrap_or("-")
                );
            }
        }
        if !self.leases.is_empty() {
            let _ = writeln!(s, "leases:");
            for l in &self.leases {
                let _ = writeln!(s, "  {} {}", t_plus(l.at), l.what);
            }
        }
        let _ = writeln!(
            s,
            "channels:  rx  pings  pongs  keepalives  longest-silence  closed"
        );
        for c in &self.channels {
            let _ = writeln!(
                s,
                "  {:<9} {:>5} {:>6} {:>6} {:>10} {:>15.3}s  {}",
                c.channel,
                c.messages_received,
                c.pings_received,
                c.pongs_sent,
                c.keepalives_sent,
                c.longest_silence,
                match (&c.last_closed_at, &c.last_closed_by) {
                    (Some(t), Some(by)) => format!("{} {by}", t_plus(*t)),
                    _ => "open".into(),
                }
            );
        }
        let consts: Vec<String> = self
            .constants
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(s, "constants: {}", consts.join(" "));
        s
    }
}

/// One JUnit test case: a name, a failure (the verdict or an expectation
/// did not hold) or an error (the case could not run), its output and how
/// long it took.
#[derive(Default)]
pub struct JunitCase {
    pub name: String,
    pub failure: Option<String>,
    pub error: Option<String>,
    pub output: String,
    pub time: Option<std::time::Duration>,
}

/// A JUnit report of one suite, as CI reporters read it (Jenkins schema),
/// written by quick-junit, which also drops the characters XML 1.0 cannot
/// carry (control bytes in a message or an output).
pub fn junit(suite: &str, cases: &[JunitCase]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut ts = TestSuite::new(suite);
    for c in cases {
        let status = match (&c.error, &c.failure) {
            (Some(e), _) => non_success(NonSuccessKind::Error, e),
            (None, Some(f)) => non_success(NonSuccessKind::Failure, f),
            (None, None) => TestCaseStatus::success(),
        };
        let mut tc = TestCase::new(c.name.as_str(), status);
        tc.set_classname(suite);
        tc.set_system_out(c.output.as_str());
        if let Some(t) = c.time {
            tc.set_time(t);
        }
        ts.add_test_case(tc);
    }
    let mut report = Report::new(suite);
    report.add_test_suite(ts);
    // Serialising owned strings to memory cannot fail.
    let xml = report.to_string().unwrap_or_default();
    // quick-junit always writes `disabled` on <testsuite>, which the JUnit
    // schema Jenkins' xUnit plugin validates against (junit-10.xsd) does
    // not allow; tether disables nothing. The suite's tag comes before any
    // text, and a quote inside an attribute is escaped, so the first match
    // is that attribute.
    xml.replacen(" disabled=\"0\"", "", 1)
}

/// A failure or error whose message is the first line and whose body is all.
fn non_success(kind: quick_junit::NonSuccessKind, text: &str) -> quick_junit::TestCaseStatus {
    let mut st = quick_junit::TestCaseStatus::non_success(kind);
    st.set_message(text.lines().next().unwrap_or(""));
    st.set_description(text);
    st
}

impl Verdict {
    pub fn to_junit(&self, name: &str) -> String {
        let failure =
            (self.outcome != Outcome::Survived || !self.violations.is_empty()).then(|| {
                self.to_text()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
        junit(
            "tether run",
            &[JunitCase {
                name: name.to_string(),
                failure,
                output: self.to_text(),
                ..JunitCase::default()
            }],
        )
    }
}
