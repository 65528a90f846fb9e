//! Did the recorded client follow its profile's rules? Each violation
//! cites the events (connection, time) that show it.

use super::session::{Channel, Session};
use crate::model::constants::{Constants, Value};
use serde::Serialize;

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Violation {
    pub code: &'static str,
    pub at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub message: String,
    /// The events that show it: `connection #N T+s what`.
    pub evidence: Vec<String>,
}

fn cite(c: &Channel, at: f64, what: &str) -> String {
    format!("connection {} T+{at:.3} {what}", c.connection)
}

/// The rules a client must follow, checked on one session: which rules apply
/// follows from the constants its profile registers, never its name.
/// `constants` are the profile variant's (with overrides).
pub fn check(s: &Session, constants: &Constants) -> Vec<Violation> {
    let mut out = Vec::new();
    // Triage checks any profile, so every constant is looked up, never assumed.
    let flag = |name: &str| matches!(constants.value(name), Some(Value::Flag(true)));
    // A live client answers a server ping promptly. SPICE: before the
    // server's next connectivity tick; WebSocket: before the next ping.
    let secs = |name: &str| match constants.value(name) {
        Some(Value::Duration(d)) => Some(d.as_secs_f64()),
        _ => None,
    };
    let spice = s.app_kind() == "spice";
    let deadline = if spice {
        secs("connectivity_timeout")
    } else {
        secs("ping_interval")
    }
    .filter(|d| *d > 0.0)
    .unwrap_or(15.0);
    for c in s.channels() {
        let end = c.closes.first().map_or(s.end(), |x| x.at);
        if let Some(p) = c.unanswered_pings.first()
            && end - p > deadline
        {
            out.push(Violation {
                code: "pong.missing",
                at: *p,
                channel: Some(c.name.clone()),
                message: format!(
                    "the server's ping at T+{p:.3} was never answered, though the connection stayed open {:.1} s longer",
                    end - p
                ),
                evidence: vec![
                    cite(c, *p, "server ping"),
                    c.last_pong_c2s.map_or_else(
                        || cite(c, c.opened_at, "no pong ever sent"),
                        |l| cite(c, l, "last pong"),
                    ),
                ],
            });
        }
    }
    // Keepalive cadence: a profile that pings must not let a connection go
    // longer than its interval (plus slack) without a client ping.
    if flag("ping")
        && let Some(Value::Duration(d)) = constants.value("ping_interval")
    {
        let interval = d.as_secs_f64();
        for c in s.channels() {
            let pings: Vec<f64> = c
                .marks
                .iter()
                .filter(|m| m.what() == "ping" && m.dir() == "c2s")
                .map(|m| m.at)
                .collect();
            let mut prev = c.opened_at;
            for p in pings.iter().copied().chain(c.closes.first().map(|x| x.at)) {
                if p - prev > interval * 1.5 {
                    out.push(Violation {
                        code: "keepalive.late",
                        at: prev + interval,
                        channel: Some(c.name.clone()),
                        message: format!(
                            "{:.1} s without a client ping; the profile pings every {interval:.0} s",
                            p - prev
                        ),
                        evidence: vec![cite(c, prev, "previous ping or open"), cite(c, p, "next")],
                    });
                    break;
                }
                prev = p;
            }
        }
    }
    // Credentials on reconnect: fresh, and not past their expiry.
    let mut seen: Vec<(f64, String, u32)> = Vec::new();
    let mut upgrades: Vec<(f64, u32, &super::session::Upgrade)> = s
        .channels()
        .filter_map(|c| c.upgrade.as_ref().map(|u| (u.at, c.connection.0, u)))
        .chain(
            s.attempts
                .iter()
                .filter_map(|a| a.upgrade.as_ref().map(|u| (u.at, a.connection.0, u))),
        )
        .collect();
    upgrades.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at, conn, u) in upgrades {
        let Some(cred) = &u.credential else { continue };
        if let Some((first, _, first_conn)) = seen.iter().find(|(_, c, _)| c == cred) {
            out.push(Violation {
                code: "reconnect.stale_credential",
                at,
                channel: None,
                message: format!(
                    "the reconnect presented the same credential as the connection at T+{first:.3}{}",
                    u.credential_expires_at
                        .filter(|e| *e <= at)
                        .map(|e| format!(", expired since T+{e:.3}"))
                        .unwrap_or_default()
                ),
                evidence: vec![
                    format!("connection #{first_conn} T+{first:.3} upgrade {cred}"),
                    format!(
                        "connection #{conn} T+{at:.3} upgrade {cred} → HTTP {}",
                        u.status.map_or("?".into(), |s| s.to_string())
                    ),
                ],
            });
        } else if let Some(exp) = u.credential_expires_at
            && exp <= at
        {
            out.push(Violation {
                code: "reconnect.expired_credential",
                at,
                channel: None,
                message: format!("the credential expired at T+{exp:.3}, before it was presented"),
                evidence: vec![format!("connection #{conn} T+{at:.3} upgrade {cred}")],
            });
        }
        seen.push((at, cred.clone(), conn));
    }
    // Reconnect only where allowed: noVNC does not reconnect after a clean
    // close unless the variant says so.
    if matches!(
        constants.value("reconnect_on_clean"),
        Some(Value::Flag(false))
    ) {
        for pair in s.generations.windows(2) {
            let clean = pair[0].channels.iter().find_map(|c| {
                c.closes
                    .iter()
                    .find(|x| x.how == "ws_close" && x.code == Some(1000))
                    .map(|x| (c, x.at))
            });
            if let Some((c, at)) = clean {
                out.push(Violation {
                    code: "reconnect.after_clean_close",
                    at: pair[1].started_at,
                    channel: None,
                    message: "reconnected after a clean close (1000)".into(),
                    evidence: vec![
                        cite(c, at, "ws close 1000"),
                        format!("T+{:.3} new connection", pair[1].started_at),
                    ],
                });
            }
        }
    }
    // Backoff: attempts after a drop follow the profile's schedule.
    if flag("auto_reconnect")
        && let Some(Value::Schedule(schedule)) = constants.value("reconnect_backoff")
        && let Some(drop) = s.generations.first().and_then(|g| g.ended_at)
    {
        let mut tries: Vec<f64> = s
            .attempts
            .iter()
            .map(|a| a.at)
            .chain(s.generations.iter().skip(1).map(|g| g.started_at))
            .filter(|a| *a > drop)
            .collect();
        tries.sort_by(f64::total_cmp);
        let mut prev = drop;
        for (i, at) in tries.iter().enumerate() {
            let Some(want) = schedule.get(i).map(|d| d.as_secs_f64()) else {
                out.push(Violation {
                    code: "reconnect.too_many_attempts",
                    at: *at,
                    channel: None,
                    message: format!(
                        "attempt {} exceeds the profile's {} attempts",
                        i + 1,
                        schedule.len()
                    ),
                    evidence: vec![format!("T+{at:.3} connect")],
                });
                break;
            };
            if (at - prev) < want - 0.5 {
                out.push(Violation {
                        code: "reconnect.backoff_too_short",
                        at: *at,
                        channel: None,
                        message: format!(
                            "attempt {} came {:.1} s after the previous event; the schedule says {want:.0} s",
                            i + 1,
                            at - prev
                        ),
                        evidence: vec![format!("T+{prev:.3} previous"), format!("T+{at:.3} connect")],
                    });
            }
            prev = *at;
        }
    }
    // SPICE ACK windows: the client acknowledges every `window` messages
    // after SET_ACK; a display that never acknowledges stalls the server.
    if spice {
        for c in s.channels() {
            if let Some(v) = ack_window(c) {
                out.push(v);
            }
        }
    }
    out.sort_by(|a, b| a.at.total_cmp(&b.at).then(a.code.cmp(b.code)));
    out
}

/// Counts server messages between client ACKs against the SET_ACK window.
fn ack_window(c: &Channel) -> Option<Violation> {
    let window = c.ack_window?;
    let limit = u64::from(window) * 2;
    let (at, n) = c.unacked_peak?;
    (n > limit).then(|| Violation {
        code: "spice.ack_window",
        at,
        channel: Some(c.name.clone()),
        message: format!(
            "{n} messages received without an ACK; SET_ACK asked for one every {window}"
        ),
        evidence: vec![cite(c, at, "message past the window")],
    })
}

/// The same ping rule on a bug report's own counters: more PINGs received
/// than PONGs sent, with the last PING after the last send and the channel
/// still alive long enough to have answered.
pub fn check_zip(facts: &[super::diagnose::ChannelFacts], end: f64) -> Vec<Violation> {
    let mut out = Vec::new();
    for f in facts {
        let (Some(ping), unanswered) =
            (f.last_ping_recv, f.pings_recv.saturating_sub(f.pongs_sent))
        else {
            continue;
        };
        if unanswered == 0 || f.last_send.is_some_and(|s| s >= ping) || end - ping <= 30.0 {
            continue;
        }
        out.push(Violation {
            code: "pong.missing",
            at: ping,
            channel: Some(f.channel.clone()),
            message: format!(
                "{unanswered} PING(s) never answered; the last arrived at T+{ping:.3} and the session lasted {:.1} s more",
                end - ping
            ),
            evidence: vec![format!(
                "disconnect-cause.json per_channel.{}: ping_recv_count {}, pong_send_count {}, last_ping_recv_ts_secs {ping:.3}, last_send_ts_secs {}",
                f.channel,
                f.pings_recv,
                f.pongs_sent,
                f.last_send.map_or("null".into(), |s| format!("{s:.3}"))
            )],
        });
    }
    out
}
