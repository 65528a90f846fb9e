//! Synthetic timelines: an environment script in TOML (named events at
//! virtual times, plus the horizon) that drives the model without any
//! capture. Format documented in README "Synthetic timelines and replays".

use crate::model::duration::{format_duration, parse_duration};
use crate::timeline::Micros;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A duration written with a unit (`"15s"`); in a timeline it is a virtual
/// time since the start of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Micros);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration with a unit: 250ms, 1.5s, 15m, 24h"
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A byte count written as a size (`"64KiB"`, `"10kB"`) or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Bytes(pub u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count: 4096, \"10kB\" or \"64KiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Bytes, E> {
                Ok(Bytes(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Bytes, E> {
                u64::try_from(n)
                    .map(Bytes)
                    .map_err(|_| E::custom(format!("{n} is not a byte count: it is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Bytes, E> {
                crate::model::size::parse_size(t)
                    .map(Bytes)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Bytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bytes".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "description": "A byte count: 4096, \"10kB\" (decimal), \"64KiB\" (binary)"
        })
    }
}

/// The SPICE channels a session can open (protocol-facts §1.10).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Main,
    Display,
    Inputs,
    Cursor,
    Playback,
    Record,
    Usbredir,
    Webdav,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Main => "main",
            ChannelKind::Display => "display",
            ChannelKind::Inputs => "inputs",
            ChannelKind::Cursor => "cursor",
            ChannelKind::Playback => "playback",
            ChannelKind::Record => "record",
            ChannelKind::Usbredir => "usbredir",
            ChannelKind::Webdav => "webdav",
        }
    }
}

/// The seven channels ryll runs (seed 002).
pub fn default_channels() -> Vec<ChannelKind> {
    use ChannelKind::*;
    vec![Main, Display, Inputs, Cursor, Playback, Usbredir, Webdav]
}

/// Which SPICE server liveness behaviour to model.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ServerBehaviour {
    /// spice-server as read at ee6c01a2 (protocol-facts §1.16): only main
    /// has a connectivity timer, and it needs an outstanding ping round.
    #[default]
    Source,
    /// Seed 002's belief: every channel is dropped after 30 s without a
    /// received byte. Contradicted by the source; kept to show the
    /// difference.
    #[serde(rename = "seed-002-belief")]
    Seed002Belief,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    #[serde(default)]
    pub behaviour: ServerBehaviour,
    /// The ticket is invalidated once linked (Kerbside/oVirt; `.vv`
    /// `delete-this-file=1`).
    #[serde(default)]
    pub single_use_ticket: bool,
    /// The server rejects the ticket from this virtual time on.
    #[serde(default)]
    pub ticket_valid_until: Option<Dur>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LbExpiry {
    /// Forget the flow: later packets vanish both ways (half-open).
    Silent,
    /// Send RST to both ends.
    Rst,
    /// HAProxy 2.6: FIN to the client, RST to the server at the same
    /// instant (lab: ws-haproxy-idle 14-16, novnc-haproxy-idle 91-96,
    /// vnc2-novnc-lite-haproxy-tcp-idle 83-90, spice-haproxy-idle).
    FinRst,
}

impl LbExpiry {
    /// As the timeline spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LbExpiry::Silent => "silent",
            LbExpiry::Rst => "rst",
            LbExpiry::FinRst => "fin_rst",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LbSpec {
    pub idle_timeout: Dur,
    pub on_expiry: LbExpiry,
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// One-way latency.
    #[serde(default = "default_latency")]
    pub latency: Dur,
}

fn default_latency() -> Dur {
    Dur(Micros(10_000))
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            latency: default_latency(),
        }
    }
}

/// One scripted thing that happens to the environment or the user.
/// Read through [`RawEvent`] (a flat table) so every error keeps the span
/// of the value it is about.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScriptEvent {
    /// The user types: one keystroke every `every` from `from` to `to`.
    UserActive {
        from: Dur,
        to: Dur,
        every: Dur,
    },
    Keystroke {
        at: Dur,
    },
    /// The server sends application data (display updates, audio...) on
    /// `channel` every `every`, `bytes` each (without it only the headers
    /// count, and no receive window fills).
    ServerData {
        channel: ChannelKind,
        from: Dur,
        to: Dur,
        every: Dur,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<Bytes>,
    },
    /// The server stops reading and writing `channel` (all channels when
    /// omitted): a wedged server loop. The kernel still ACKs.
    ServerStopsAnswering {
        at: Dur,
        #[serde(default)]
        channel: Option<ChannelKind>,
    },
    /// The server stops sending PINGs on `channel`; it still answers.
    ServerStopsPinging {
        at: Dur,
        channel: ChannelKind,
    },
    /// The client stops reading (App Nap, a wedged runtime) until `until`.
    ClientStalls {
        at: Dur,
        #[serde(default)]
        until: Option<Dur>,
    },
    /// The server process dies: its kernel closes every socket (FIN) and
    /// refuses new connections until a restart.
    ServerKilled {
        at: Dur,
    },
    /// The server is (re)started; a running one is killed first.
    ServerRestarted {
        at: Dur,
    },
    /// Nothing crosses the network in either direction from..to.
    Blackhole {
        from: Dur,
        to: Dur,
    },
    /// A relay between client and server (a proxy, a stalled middlebox)
    /// takes every byte both ways and forwards nothing from..to, then
    /// forwards what it held. Its kernel acknowledges and answers
    /// keep-alive probes, so to each end the other looks stopped, not gone.
    RelayHolds {
        from: Dur,
        to: Dur,
    },
    /// From `at`, the peer is gone without a trace: writes succeed into the
    /// send buffer and nothing arrives, on `channel` or on all.
    HalfOpen {
        at: Dur,
        #[serde(default)]
        channel: Option<ChannelKind>,
    },
    /// The user closes the session cleanly.
    UserClose {
        at: Dur,
    },
    /// The server ends the session on purpose (a goodbye in the protocol,
    /// e.g. a WebSocket close 1001) and goes on listening.
    ServerCloses {
        at: Dur,
    },
    /// From `at` the server refuses the client's login: a wrong password or
    /// a ticket it will not take (SPICE link error PERMISSION_DENIED, RFB
    /// SecurityResult failed), or a token its upgrade answers with HTTP
    /// 401 or 403. The server runs on; only logins from then fail.
    AuthRefused {
        at: Dur,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventName {
    UserActive,
    Keystroke,
    ServerData,
    ServerStopsAnswering,
    ServerStopsPinging,
    ClientStalls,
    ServerKilled,
    ServerRestarted,
    Blackhole,
    RelayHolds,
    HalfOpen,
    UserClose,
    ServerCloses,
    AuthRefused,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    kind: EventName,
    at: Option<Dur>,
    from: Option<Dur>,
    to: Option<Dur>,
    every: Option<Dur>,
    until: Option<Dur>,
    channel: Option<ChannelKind>,
    bytes: Option<Bytes>,
}

impl<'de> Deserialize<'de> for ScriptEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ScriptEvent, D::Error> {
        let raw = RawEvent::deserialize(d)?;
        raw.into_event().map_err(serde::de::Error::custom)
    }
}

impl RawEvent {
    fn into_event(self) -> Result<ScriptEvent, String> {
        use EventName as N;
        let kind = self.kind;
        let name = format!("{kind:?}");
        let need = |v: Option<Dur>, field: &str| {
            v.ok_or_else(|| format!("missing field `{field}` for a {name} event"))
        };
        let allowed: &[&str] = match kind {
            N::UserActive => &["from", "to", "every"],
            N::ServerData => &["from", "to", "every", "channel", "bytes"],
            N::ServerStopsAnswering | N::ServerStopsPinging | N::HalfOpen => &["at", "channel"],
            N::ClientStalls => &["at", "until"],
            N::Blackhole | N::RelayHolds => &["from", "to"],
            N::Keystroke
            | N::ServerKilled
            | N::ServerRestarted
            | N::UserClose
            | N::ServerCloses
            | N::AuthRefused => &["at"],
        };
        let present = [
            ("at", self.at.is_some()),
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("every", self.every.is_some()),
            ("until", self.until.is_some()),
            ("channel", self.channel.is_some()),
            ("bytes", self.bytes.is_some()),
        ];
        for (field, is) in present {
            if is && !allowed.contains(&field) {
                return Err(format!(
                    "unknown field `{field}` for a {name} event (it takes {})",
                    allowed.join(", ")
                ));
            }
        }
        let channel = |c: Option<ChannelKind>| {
            c.ok_or_else(|| format!("missing field `channel` for a {name} event"))
        };
        Ok(match kind {
            N::UserActive => ScriptEvent::UserActive {
                from: need(self.from, "from")?,
                to: need(self.to, "to")?,
                every: need(self.every, "every")?,
            },
            N::Keystroke => ScriptEvent::Keystroke {
                at: need(self.at, "at")?,
            },
            N::ServerData => ScriptEvent::ServerData {
                channel: channel(self.channel)?,
                from: need(self.from, "from")?,
                to: need(self.to, "to")?,
                every: need(self.every, "every")?,
                bytes: self.bytes,
            },
            N::ServerStopsAnswering => ScriptEvent::ServerStopsAnswering {
                at: need(self.at, "at")?,
                channel: self.channel,
            },
            N::ServerStopsPinging => ScriptEvent::ServerStopsPinging {
                at: need(self.at, "at")?,
                channel: channel(self.channel)?,
            },
            N::ClientStalls => ScriptEvent::ClientStalls {
                at: need(self.at, "at")?,
                until: self.until,
            },
            N::ServerKilled => ScriptEvent::ServerKilled {
                at: need(self.at, "at")?,
            },
            N::ServerRestarted => ScriptEvent::ServerRestarted {
                at: need(self.at, "at")?,
            },
            N::Blackhole => ScriptEvent::Blackhole {
                from: need(self.from, "from")?,
                to: need(self.to, "to")?,
            },
            N::RelayHolds => ScriptEvent::RelayHolds {
                from: need(self.from, "from")?,
                to: need(self.to, "to")?,
            },
            N::HalfOpen => ScriptEvent::HalfOpen {
                at: need(self.at, "at")?,
                channel: self.channel,
            },
            N::UserClose => ScriptEvent::UserClose {
                at: need(self.at, "at")?,
            },
            N::ServerCloses => ScriptEvent::ServerCloses {
                at: need(self.at, "at")?,
            },
            N::AuthRefused => ScriptEvent::AuthRefused {
                at: need(self.at, "at")?,
            },
        })
    }
}

impl ScriptEvent {
    pub fn name(&self) -> &'static str {
        match self {
            ScriptEvent::UserActive { .. } => "user_active",
            ScriptEvent::Keystroke { .. } => "keystroke",
            ScriptEvent::ServerData { .. } => "server_data",
            ScriptEvent::ServerStopsAnswering { .. } => "server_stops_answering",
            ScriptEvent::ServerStopsPinging { .. } => "server_stops_pinging",
            ScriptEvent::ClientStalls { .. } => "client_stalls",
            ScriptEvent::ServerKilled { .. } => "server_killed",
            ScriptEvent::ServerRestarted { .. } => "server_restarted",
            ScriptEvent::Blackhole { .. } => "blackhole",
            ScriptEvent::RelayHolds { .. } => "relay_holds",
            ScriptEvent::HalfOpen { .. } => "half_open",
            ScriptEvent::UserClose { .. } => "user_close",
            ScriptEvent::ServerCloses { .. } => "server_closes",
            ScriptEvent::AuthRefused { .. } => "auth_refused",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// The run ends here if nothing ended it before.
    pub horizon: Dur,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_channels")]
    pub channels: Vec<ChannelKind>,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub server: ServerSpec,
    #[serde(default)]
    pub lb: Option<LbSpec>,
    #[serde(default, rename = "event")]
    pub events: Vec<ScriptEvent>,
}

impl Timeline {
    /// Nothing happens until `horizon`: the defaults every environment
    /// constant is read against (triage reads the registry through it).
    pub fn quiet(horizon: Dur) -> Timeline {
        Timeline {
            horizon,
            description: String::new(),
            channels: default_channels(),
            network: NetworkSpec::default(),
            server: ServerSpec::default(),
            lb: None,
            events: Vec::new(),
        }
    }
}

/// A parse or validation error, located: file, 1-based line and column,
/// and the field it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for SyntheticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SyntheticError {}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

/// The key on the line an error points at (`at = "1x"` ⇒ `at`), or the
/// field a serde message names.
fn field_at(text: &str, offset: usize, message: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `", "unknown variant `"] {
        if let Some(p) = message.find(marker) {
            let rest = &message[p + marker.len()..];
            if let Some(end) = rest.find('`') {
                return Some(if marker == "unknown variant `" {
                    // The value is unknown; name the key it was given to.
                    key_of_line(text, offset).unwrap_or_else(|| rest[..end].to_string())
                } else {
                    rest[..end].to_string()
                });
            }
        }
    }
    key_of_line(text, offset)
}

fn key_of_line(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |p| offset + p);
    let line = &text[start..end];
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

/// Line of the `n`th (0-based) `[[event]]` header, for validation errors.
fn event_line(text: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[event]]"))
        .nth(n)
        .map_or(1, |(i, _)| i + 1)
}

/// Bounds on a timeline, so a hostile file cannot ask the model for
/// unbounded work. A hit is a located error whose message starts with the
/// limit's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineLimits {
    /// Scripted `[[event]]`s.
    pub max_events: usize,
    /// The run's length; the model's work grows with it.
    pub max_horizon: Micros,
}

impl Default for TimelineLimits {
    fn default() -> TimelineLimits {
        TimelineLimits {
            max_events: 100_000,
            // A month: the longest real replay is a day.
            max_horizon: Micros(31 * 24 * 3_600_000_000),
        }
    }
}

impl Timeline {
    pub fn parse(text: &str, file: &str) -> Result<Timeline, SyntheticError> {
        Timeline::parse_with(text, file, TimelineLimits::default())
    }

    pub fn parse_with(
        text: &str,
        file: &str,
        limits: TimelineLimits,
    ) -> Result<Timeline, SyntheticError> {
        let timeline: Timeline = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, column) = line_col(text, offset);
            SyntheticError {
                file: file.to_string(),
                line,
                column,
                field: field_at(text, offset, e.message()),
                message: e.message().trim().to_string(),
            }
        })?;
        timeline.validate(text, file, limits)?;
        Ok(timeline)
    }

    fn validate(
        &self,
        text: &str,
        file: &str,
        limits: TimelineLimits,
    ) -> Result<(), SyntheticError> {
        let err = |n: usize, field: &str, message: String| SyntheticError {
            file: file.to_string(),
            line: event_line(text, n),
            column: 1,
            field: Some(field.to_string()),
            message,
        };
        if self.horizon.0 == Micros::ZERO {
            return Err(SyntheticError {
                file: file.to_string(),
                line: 1,
                column: 1,
                field: Some("horizon".into()),
                message: "horizon must be positive".into(),
            });
        }
        if self.horizon.0 > limits.max_horizon {
            return Err(SyntheticError {
                file: file.to_string(),
                line: 1,
                column: 1,
                field: Some("horizon".into()),
                message: format!(
                    "limit.timeline_horizon: {} is over the limit of {}",
                    format_duration(self.horizon.0),
                    format_duration(limits.max_horizon)
                ),
            });
        }
        if self.events.len() > limits.max_events {
            return Err(err(
                limits.max_events,
                "event",
                format!(
                    "limit.timeline_events: {} events, over the limit of {}",
                    self.events.len(),
                    limits.max_events
                ),
            ));
        }
        if !self.channels.contains(&ChannelKind::Main) {
            return Err(SyntheticError {
                file: file.to_string(),
                line: 1,
                column: 1,
                field: Some("channels".into()),
                message: "a SPICE session needs the main channel".into(),
            });
        }
        for (n, ev) in self.events.iter().enumerate() {
            let span = match ev {
                ScriptEvent::UserActive { from, to, every }
                | ScriptEvent::ServerData {
                    from, to, every, ..
                } => {
                    if every.0 == Micros::ZERO {
                        return Err(err(n, "every", "must be positive".into()));
                    }
                    Some((from, to))
                }
                ScriptEvent::Blackhole { from, to } | ScriptEvent::RelayHolds { from, to } => {
                    Some((from, to))
                }
                ScriptEvent::ClientStalls { at, until: Some(u) } => Some((at, u)),
                _ => None,
            };
            let (start, start_field) = match ev {
                ScriptEvent::UserActive { from, .. }
                | ScriptEvent::ServerData { from, .. }
                | ScriptEvent::Blackhole { from, .. }
                | ScriptEvent::RelayHolds { from, .. } => (from, "from"),
                ScriptEvent::Keystroke { at }
                | ScriptEvent::ServerStopsAnswering { at, .. }
                | ScriptEvent::ServerStopsPinging { at, .. }
                | ScriptEvent::ClientStalls { at, .. }
                | ScriptEvent::ServerKilled { at }
                | ScriptEvent::ServerRestarted { at }
                | ScriptEvent::HalfOpen { at, .. }
                | ScriptEvent::UserClose { at }
                | ScriptEvent::ServerCloses { at }
                | ScriptEvent::AuthRefused { at } => (at, "at"),
            };
            if start.0 > self.horizon.0 {
                return Err(err(
                    n,
                    start_field,
                    format!(
                        "{} event starts at {}, after the horizon ({}); it could never happen",
                        ev.name(),
                        format_duration(start.0),
                        format_duration(self.horizon.0)
                    ),
                ));
            }
            if let Some((from, to)) = span
                && to < from
            {
                return Err(err(
                    n,
                    "to",
                    format!(
                        "{} event ends ({}) before it starts ({})",
                        ev.name(),
                        format_duration(to.0),
                        format_duration(from.0)
                    ),
                ));
            }
            let channel = match ev {
                ScriptEvent::ServerData { channel, .. }
                | ScriptEvent::ServerStopsPinging { channel, .. } => Some(*channel),
                ScriptEvent::ServerStopsAnswering { channel, .. }
                | ScriptEvent::HalfOpen { channel, .. } => *channel,
                _ => None,
            };
            if let Some(c) = channel
                && !self.channels.contains(&c)
            {
                return Err(err(
                    n,
                    "channel",
                    format!(
                        "channel {} is not in this timeline's `channels`",
                        c.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_timeline() {
        let t = Timeline::parse(
            r#"
horizon = "1h"
[lb]
idle_timeout = "60s"
on_expiry = "rst"
[[event]]
kind = "blackhole"
from = "10m"
to = "10m30s"
"#
            .replace("10m30s", "630s")
            .as_str(),
            "t.toml",
        )
        .unwrap();
        assert_eq!(t.horizon, Dur(Micros(3_600_000_000)));
        assert_eq!(t.channels.len(), 7);
        assert_eq!(
            t.events,
            vec![ScriptEvent::Blackhole {
                from: Dur(Micros(600_000_000)),
                to: Dur(Micros(630_000_000))
            }]
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "horizon = \"1h\"\n\n[[event]]\nkind = \"keystroke\"\nat = \"5x\"\n";
        let e = Timeline::parse(text, "bad.toml").unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_deref()),
            ("bad.toml", 5, Some("at"))
        );
        assert!(e.message.contains("unknown time unit"), "{e}");

        let text = "horizon = \"1h\"\n[[event]]\nkind = \"keystroke\"\nwhen = \"5s\"\n";
        let e = Timeline::parse(text, "bad.toml").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("when"), "{e}");

        let text = "horizon = \"1h\"\n[[event]]\nkind = \"keystroke\"\n";
        let e = Timeline::parse(text, "bad.toml").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("at"), "{e}");

        let text =
            "horizon = \"1h\"\n[[event]]\nkind = \"blackhole\"\nfrom = \"20s\"\nto = \"10s\"\n";
        let e = Timeline::parse(text, "bad.toml").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("to")), "{e}");

        let text = "horizon = \"1h\"\n[[event]]\nkind = \"server_stops_pinging\"\nat = \"1s\"\nchannel = \"dispaly\"\n";
        let e = Timeline::parse(text, "bad.toml").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (5, Some("channel")), "{e}");
    }

    #[test]
    fn server_data_sizes_are_sizes_and_bad_ones_are_located() {
        let data = |bytes: &str| {
            format!(
                "horizon = \"1h\"\n[[event]]\nkind = \"server_data\"\nchannel = \"display\"\nfrom = \"1s\"\nto = \"2s\"\nevery = \"1s\"\nbytes = {bytes}\n"
            )
        };
        for (text, want) in [("\"20kB\"", 20_000), ("\"64KiB\"", 65_536), ("4096", 4096)] {
            let t = Timeline::parse(&data(text), "t.toml").expect(text);
            assert!(
                matches!(t.events[0], ScriptEvent::ServerData { bytes: Some(Bytes(b)), .. } if b == want),
                "{text}: {:?}",
                t.events[0]
            );
        }
        for bad in ["-1", "\"4 furlongs\"", "true"] {
            let e = Timeline::parse(&data(bad), "t.toml").unwrap_err();
            assert_eq!(
                (e.line, e.field.as_deref()),
                (8, Some("bytes")),
                "{bad}: {e}"
            );
        }
        let e = Timeline::parse(
            "horizon = \"1h\"\n[[event]]\nkind = \"keystroke\"\nat = \"1s\"\nbytes = 5\n",
            "t.toml",
        )
        .unwrap_err();
        assert!(e.message.contains("unknown field `bytes`"), "{e}");
    }
}
