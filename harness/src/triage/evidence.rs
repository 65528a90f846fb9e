//! Evidence from every layer about how a generation ended, each rule named
//! and resting on kernel or protocol behaviour (README, "Triage rules"):
//!
//! - `tcp.first_close`: the side whose FIN or RST came first closed; a
//!   kernel sends FIN (RST when unread bytes were pending) for every socket
//!   of a process that exits or is killed (RFC 9293 §3.6, RFC 2525 §2.17).
//! - `tcp.alive_kernel`: a side that sends no payload but whose ACK number
//!   still advances, or that advertises a zero window, is a process that
//!   stopped reading on a live host: the kernel acknowledges on its own
//!   behalf (RFC 9293 §3.8.6.2 zero window; keep-alive answers §3.8.4).
//! - `tcp.dead_path`: a sender that retransmits while the other side's ACK
//!   never advances is on a path that delivers nothing (RFC 6298 §5:
//!   retransmission with backoff).
//! - `timing.deliberate_close`: every connection of a generation closed by
//!   the client within 50 ms, without a client liveness close code and
//!   without bytes it could not get acknowledged, is the client (user or
//!   application) closing on purpose: no timer of the real peers closes
//!   every channel at once (spice-gtk, remote-viewer, TigerVNC, noVNC have
//!   none; a WebSocket client's keep-alive closes with 1011, RFC 6455 §7.4.1).
//! - `tcp.abort_after_idle`: every connection reset from the client's side
//!   after a spell with no payload either way is a proxy's idle cut: a
//!   peer's own close sends FIN, RST only over unread bytes (RFC 2525
//!   §2.17); an idle reset is an ABORT (RFC 9293 §3.10.7.1).
//! - `relay.both_legs`: a relay that closes its client leg and its upstream
//!   leg within 50 ms acted itself: after an idle spell that is its idle
//!   timeout (HAProxy `timeout client/server/tunnel`); with traffic flowing,
//!   it died.

use super::session::{Channel, Generation, Session};

/// Closes this close to each other were done by one act.
pub const SAME_INSTANT: f64 = 0.05;

/// An upstream leg's first close, on the front session's clock.
#[derive(Clone, Debug)]
pub struct LegClose {
    pub at: f64,
    /// `client` is the relay's side, `server` the real server.
    pub by: &'static str,
    pub how: String,
    /// The last payload either way on the leg before the close.
    pub last_data: f64,
    pub server: String,
    /// How the leg itself ended, by these same rules.
    pub ending: Option<Ending>,
    /// The relay's side sent a RST on the leg: an abort, not a process exit
    /// (an exiting process's kernel closes with FIN unless unread bytes are
    /// pending, RFC 2525 §2.17).
    pub relay_rst: bool,
}

/// How one generation ended, as the evidence decides it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    pub cause: &'static str,
    pub origin: Option<&'static str>,
    /// `client`, `server` or `both` (a middlebox).
    pub closed_by: &'static str,
    pub at: f64,
    pub channel: Option<String>,
    /// Rule name and the facts it read, for the report.
    pub because: Vec<String>,
}

/// What the silent side of a connection was doing over `[from, to]`, as
/// TCP shows it. `side` 0 is the client, 1 the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// Its kernel took the peer's bytes (ACK advanced or zero window).
    AliveKernel,
    /// The peer retransmitted and nothing was acknowledged.
    DeadPath,
    /// TCP says neither.
    Unknown,
}

pub fn silence(c: &Channel, side: usize, from: f64, to: f64) -> Silence {
    let me = &c.tcp[side];
    let peer = &c.tcp[1 - side];
    let in_span = |t: Option<f64>| t.is_some_and(|t| t > from && t <= to + SAME_INSTANT);
    // Retransmissions that overlap the span (backoff may carry them past it).
    let peer_retrans = peer.retransmissions > 0
        && peer
            .first_retransmission
            .is_some_and(|f| f <= to + SAME_INSTANT)
        && peer.last_retransmission.is_some_and(|l| l > from);
    // Only the last ACK advance is kept: one after `from` shows the host
    // took bytes sent after the silence began (a later one overwrites an
    // earlier, so no upper bound; a path that died would show the peer's
    // retransmissions, checked first).
    let acked_late = me.last_ack_advance.is_some_and(|a| a > from);
    let zero = in_span(me.last_zero_window) || in_span(me.first_zero_window);
    if peer_retrans
        && !me
            .last_ack_advance
            .is_some_and(|a| a > peer.unacked_since.unwrap_or(from).max(from))
    {
        return Silence::DeadPath;
    }
    if acked_late || zero {
        return Silence::AliveKernel;
    }
    Silence::Unknown
}

/// The upstream close a server-side close of the client leg at `end` passed
/// on, and the spell the relay held the traffic when it passed it on late.
/// A relay passes a close on as it reads it (within milliseconds in every
/// lab recording); one passed on seconds later was held with the rest.
pub fn passed_on<'a>(
    g: &Generation,
    legs: &'a [LegClose],
    end: f64,
) -> Option<(&'a LegClose, Option<(f64, f64)>)> {
    legs.iter()
        .filter(|l| l.by == "server" && l.at <= end + SAME_INSTANT)
        .filter_map(|l| {
            if end - l.at <= 2.0 {
                Some((l, None))
            } else {
                relay_held(g, l.at, end).map(|held| (l, Some(held)))
            }
        })
        .min_by(|a, b| a.0.at.total_cmp(&b.0.at))
}

/// The spell a relay held a generation's traffic, when it did: from the
/// last bytes it forwarded to the client on any channel to `end`, with
/// nothing forwarded after `since` and the client's window open all along
/// (a client that stopped reading shuts its window, RFC 9293 §3.8.6.2; the
/// relay then has bytes it cannot send, which is not holding). A relay
/// forwards what it reads at once, so silence on every channel across an
/// upstream close means it was not reading.
fn relay_held(g: &Generation, since: f64, end: f64) -> Option<(f64, f64)> {
    let mut from = f64::NEG_INFINITY;
    for c in &g.channels {
        let quiet = c.longest_s2c_silence_from?;
        let covers = quiet <= since && quiet + c.longest_s2c_silence >= end - SAME_INSTANT;
        let window_open = c.tcp[0].last_zero_window.is_none_or(|z| z < quiet);
        if !covers || !window_open {
            return None;
        }
        from = from.max(quiet);
    }
    from.is_finite().then_some((from, end))
}

/// The last segment carrying new payload either way, as TCP saw it (a
/// decoder may date a message by the segment that completed it).
pub fn last_payload(c: &Channel) -> f64 {
    [c.tcp[0].last_payload, c.tcp[1].last_payload]
        .into_iter()
        .flatten()
        .fold(c.opened_at, f64::max)
}

/// A WebSocket close code a peer's keep-alive sends when its peer stopped
/// answering (RFC 6455 §7.4.1: 1011 internal error, as python-websockets and
/// others send on a ping timeout; 1006 is never sent on the wire).
fn liveness_code(code: Option<u16>) -> bool {
    matches!(code, Some(1011 | 1001))
}

/// A SPICE path that died under the session, seen from the server's side:
/// main's PING went unanswered, and spice-server's connectivity timer
/// closed every channel 30-60 s later (protocol-facts §1.16). Only the
/// channels with nothing unacknowledged show their FIN: a closed socket's
/// FIN is sent after the data queued before it (RFC 9293 §3.6), which the
/// dead path never delivers. The timer ended the session; the outage was
/// its origin.
fn spice_timer_on_dead_path(
    s: &Session,
    g: &Generation,
    closes: &[(&Channel, &super::session::Close)],
    (dead_on, died_at): (&Channel, f64),
) -> Option<Ending> {
    if s.app_kind() != "spice" {
        return None;
    }
    let main = g.channels.iter().find(|c| c.name == "main")?;
    let ping = *main.unanswered_pings.first()?;
    let (_, close) = closes
        .iter()
        .find(|(_, x)| x.by == "server" && x.at > died_at && x.at > ping)?;
    Some(Ending {
        cause: "server.connectivity_timeout",
        origin: Some("network.outage"),
        closed_by: "server",
        at: close.at,
        channel: Some(main.name.clone()),
        because: vec![
            format!(
                "tcp.dead_path: from T+{died_at:.3} nothing sent on {} was acknowledged; retransmitted with backoff",
                dead_on.name
            ),
            format!(
                "the server's PING on main at T+{ping:.3} was never answered, and the server closed at T+{:.3}: its connectivity timer, whose FINs on channels with unacknowledged bytes queue behind them",
                close.at
            ),
        ],
    })
}

/// Decides how `g` ended from TCP, protocol and timing evidence, or `None`
/// where the evidence does not decide (the older heuristics then rank).
pub fn ending(
    s: &Session,
    timers: &super::diagnose::SpiceTimers,
    g: &Generation,
    legs: &[LegClose],
) -> Option<Ending> {
    let dead = g
        .channels
        .iter()
        .filter_map(|c| c.dead_path_from().map(|d| (c, d)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let closes = g.ending_closes();
    if let Some((c, at)) = dead
        && closes.first().is_none_or(|(_, x)| x.at > at)
    {
        if let Some(e) = spice_timer_on_dead_path(s, g, &closes, (c, at)) {
            return Some(e);
        }
        return Some(Ending {
            cause: "network.outage",
            origin: None,
            closed_by: "none",
            at,
            channel: Some(c.name.clone()),
            because: vec![format!(
                "tcp.dead_path: from T+{at:.3} nothing sent on {} was acknowledged; retransmitted with backoff until the capture ended, no FIN or RST crossed",
                c.name
            )],
        });
    }
    let (c0, x0) = *closes.first()?;
    let end = x0.at;
    let by = x0.by;
    let together: Vec<&(&Channel, &super::session::Close)> = closes
        .iter()
        .filter(|(_, x)| x.by == by && x.at - end <= SAME_INSTANT)
        .collect();
    let lost = g.lost_channels();
    let with_session = g.channels.len() - lost.len();
    let all_at_once = together.len() == with_session;
    let channel = Some(
        g.channels
            .iter()
            .find(|c| c.name == "main")
            .map_or_else(|| c0.name.clone(), |m| m.name.clone()),
    );
    let mut because = vec![format!(
        "tcp.first_close: the {by} closed first ({}) on {} at T+{end:.3}; {} of {} connections by the {by} within 50 ms",
        x0.how,
        c0.name,
        together.len(),
        with_session
    )];
    if !lost.is_empty() {
        because.push(format!(
            "spice.main_lives: {} closed earlier while main carried on; a SPICE session ends with main (spice-server drops only the channel otherwise)",
            lost.iter()
                .map(|(c, x)| format!("{} ({} {} at T+{:.3})", c.name, x.by, x.how, x.at))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    // A relay between them: did it close both legs itself?
    if by == "server"
        && let Some(leg) = legs
            .iter()
            .filter(|l| (l.at - end).abs() <= SAME_INSTANT)
            .min_by(|a, b| a.at.total_cmp(&b.at))
    {
        // An idle timer cuts only connections idle for its length; a relay
        // that dies cuts every leg at once, busy ones too. The legs the relay
        // closed itself (not those the server closed through it) tell.
        // An idle timer runs per connection: legs idle for different spans
        // cut at one instant were not cut by it.
        let cut_legs: Vec<&LegClose> = legs
            .iter()
            .filter(|l| l.by == "client" && (l.at - end).abs() <= SAME_INSTANT)
            .collect();
        let cut: Vec<f64> = cut_legs.iter().map(|l| l.at - l.last_data).collect();
        let aborted = cut_legs.iter().any(|l| l.relay_rst);
        let cut_idle = cut.iter().copied().fold(f64::INFINITY, f64::min);
        let spread = cut.iter().copied().fold(f64::NEG_INFINITY, f64::max) - cut_idle;
        if leg.by == "client" {
            let idle = cut_idle;
            because.push(format!(
                "relay.both_legs: the relay closed its upstream leg to {} ({}) at T+{:.3} too; the busiest leg it cut had been idle {idle:.1} s",
                leg.server, leg.how, leg.at
            ));
            // A killed relay's listener died with it: a reconnect is refused.
            let relay_refused = s
                .attempts
                .iter()
                .any(|a| a.at >= end && a.result == "rst_to_syn");
            if relay_refused {
                because.push(
                    "later connects to the relay were refused with RST: nothing listened".into(),
                );
            }
            because.push(if aborted {
                "the relay reset its upstream leg: an abort by policy (a load balancer's timeout), not a process exit, which closes with FIN".into()
            } else {
                "the relay closed its upstream legs with FIN only, as the kernel does for a process that exits".into()
            });
            let cause = if idle >= 1.0 && spread <= 1.0 && !relay_refused && aborted {
                "lb.idle_timeout"
            } else {
                "relay.killed"
            };
            if spread > 1.0 {
                because.push(format!(
                    "it cut {} legs idle for spans {spread:.1} s apart at one instant: no per-connection idle timer does that",
                    cut.len()
                ));
            }
            return Some(Ending {
                cause,
                origin: None,
                closed_by: "both",
                at: end,
                channel,
                because,
            });
        }
    }

    // The real server ended the upstream leg first and the relay passed the
    // close on: the leg's own ending is the session's.
    if by == "server"
        && let Some((leg, held)) = passed_on(g, legs, end)
        && let Some(e) = &leg.ending
    {
        because.push(format!(
            "relay.passes_on: the server behind the relay ({}) closed the upstream leg first ({}) at T+{:.3}",
            leg.server, leg.how, leg.at
        ));
        // The upstream leg's client is the relay: a relay that held
        // everything is what stopped between the two peers, not the client
        // behind it.
        let mut origin = e.origin;
        if let Some((from, _)) = held {
            because.push(format!(
                "relay.held: the relay forwarded nothing to the client from T+{from:.3} until it passed that close on at T+{end:.3}, and the client's window stayed open: the relay took every byte and held it, the close with the rest"
            ));
            if origin.is_some_and(|o| o.starts_with("client.")) {
                origin = Some("network.outage");
            }
        }
        because.extend(e.because.iter().cloned());
        return Some(Ending {
            cause: e.cause,
            origin,
            closed_by: "server",
            at: end,
            channel,
            because,
        });
    }

    // Both ends reset at one instant on one leg: a middlebox in between.
    let rst_both = c0.tcp[0].rst.zip(c0.tcp[1].rst).is_some_and(|(a, b)| {
        (a - b).abs() <= SAME_INSTANT && c0.tcp[0].fin.is_none_or(|f| f >= a.min(b))
    });
    if rst_both && end - last_payload(c0) >= 1.0 {
        because.push(
            "relay.both_legs: both ends received a reset at one instant: neither peer sent both"
                .into(),
        );
        return Some(Ending {
            cause: "lb.idle_timeout",
            origin: None,
            closed_by: "both",
            at: end,
            channel,
            because,
        });
    }

    let code = x0.code;
    if by == "client" {
        // The client's data unacknowledged and retransmitted: it gave up on
        // a dead path.
        // The silence began with the client's last ping the server never
        // answered before the close, else its last byte before the close.
        let last_answered = c0
            .marks
            .iter()
            .filter(|m| m.what() == "pong" && m.dir() == "s2c" && m.at <= end)
            .map(|m| m.at)
            .fold(f64::NEG_INFINITY, f64::max);
        let quiet_from = c0
            .marks
            .iter()
            .find(|m| m.what() == "ping" && m.dir() == "c2s" && m.at > last_answered && m.at < end)
            .map(|m| m.at)
            .or(c0.last_s2c.filter(|l| *l < end))
            .unwrap_or(c0.opened_at);
        let dead = g
            .channels
            .iter()
            .any(|c| silence(c, 1, quiet_from, end) == Silence::DeadPath);
        if dead {
            because.push(format!(
                "tcp.dead_path: the client's segments went unacknowledged and were retransmitted from T+{:.3}",
                c0.tcp[0].first_retransmission.unwrap_or(quiet_from)
            ));
            return Some(Ending {
                cause: "network.outage",
                origin: None,
                closed_by: "client",
                at: end,
                channel,
                because,
            });
        }
        if liveness_code(code) && x0.how == "ws_close" && code == Some(1011) {
            let origin = match silence(c0, 1, quiet_from, end) {
                Silence::AliveKernel => Some("server.frozen"),
                _ => None,
            };
            because.push(
                "the client closed with 1011: its keep-alive found the server unresponsive".into(),
            );
            return Some(Ending {
                cause: "client.liveness_timeout",
                origin,
                closed_by: "client",
                at: end,
                channel,
                because,
            });
        }
        // An abort with nothing unread: every connection reset from the
        // client's side at the close, after a spell with no payload either
        // way. A peer's own close, a user's or a killed process's kernel's,
        // sends FIN, RST only when bytes it never read were pending
        // (RFC 2525 §2.17); resetting idle connections is an ABORT
        // (RFC 9293 §3.10.7.1, SO_LINGER 0), what a proxy does when its
        // idle timer cuts them (HAProxy's server leg: a RST, or FIN then RST).
        let idle_for = end
            - g.channels
                .iter()
                .map(last_payload)
                .fold(f64::NEG_INFINITY, f64::max);
        let aborted = g.channels.iter().all(|c| {
            c.closes
                .iter()
                .any(|x| x.by == "client" && x.how == "rst" && x.at - end <= SAME_INSTANT)
        });
        if aborted && idle_for >= 1.0 && code.is_none() {
            because.push(format!(
                "tcp.abort_after_idle: every connection reset from the client's side at T+{end:.3} with no payload either way for {idle_for:.1} s: a proxy's idle cut, not a peer's close"
            ));
            return Some(Ending {
                cause: "lb.idle_timeout",
                origin: None,
                closed_by: "client",
                at: end,
                channel,
                because,
            });
        }
        if all_at_once {
            because.push(
                "timing.deliberate_close: every connection closed by the client at once, none of its bytes left unacknowledged"
                    .into(),
            );
            return Some(Ending {
                cause: "client.closed",
                origin: None,
                closed_by: "client",
                at: end,
                channel,
                because,
            });
        }
        return None;
    }

    // The server closed first.
    let spice = s.app_kind() == "spice";
    let main = g.channels.iter().find(|c| c.name == "main");
    let unanswered = main
        .or(Some(c0))
        .and_then(|m| m.unanswered_pings.first().copied())
        .filter(|p| *p < end - 1.0);
    if let Some(p) = unanswered {
        let m = main.unwrap_or(c0);
        let origin = match silence(m, 0, p, end) {
            Silence::DeadPath => "network.outage",
            Silence::AliveKernel => "client.frozen",
            Silence::Unknown => "client.stopped_answering",
        };
        because.push(format!(
            "the server's PING on {} at T+{p:.3} was never answered; {}",
            m.name,
            match origin {
                "network.outage" =>
                    "tcp.dead_path: the server retransmitted and the client acknowledged nothing",
                "client.frozen" =>
                    "tcp.alive_kernel: the client's kernel still acknowledged the server's bytes",
                _ => "TCP does not say whether the client or the path stopped",
            }
        ));
        return Some(Ending {
            cause: if spice {
                "server.connectivity_timeout"
            } else {
                "server.closed"
            },
            origin: Some(origin),
            closed_by: "server",
            at: end,
            channel,
            because,
        });
    }
    let goodbye = closes
        .iter()
        .any(|(_, x)| x.by == "server" && super::session::is_goodbye(&x.how));
    // A killed process's listener dies with it: connects are refused until
    // it is restarted. A server that answers a later connection (an upgrade,
    // a token request) with no refusal in between kept its listener: the
    // simplest reading is that it lived and closed on purpose. (A restart
    // that no connect happened to probe reads the same; the second
    // explanation says so.)
    let refused_after = s
        .attempts
        .iter()
        .any(|a| a.at >= end && a.result == "rst_to_syn");
    let answered_soon = !refused_after
        && (s.generations.iter().any(|h| h.started_at > end)
            || s.requests.iter().any(|r| r.at > end)
            || s.attempts
                .iter()
                .any(|a| a.at > end && a.result.starts_with("http_")));
    // SPICE main is pinged every interval by a live server: a main that heard
    // nothing for over two intervals before the close was cut off from the
    // server (frozen, or a dead path), not a server killed while talking.
    // The timing heuristics weigh that.
    if spice
        && main.is_some_and(|m| {
            m.longest_s2c_silence > 2.0 * timers.ping + 5.0
                && m.longest_s2c_silence_from
                    .is_some_and(|f| f + m.longest_s2c_silence >= end - 1.0)
        })
    {
        return None;
    }
    if all_at_once && !goodbye && answered_soon {
        because.push(
            "the server closed every connection without a goodbye, then answered a later connection with no refusal in between: its listener, so its process, lived"
                .into(),
        );
        return Some(Ending {
            cause: "server.closed",
            origin: None,
            closed_by: "server",
            at: end,
            channel,
            because,
        });
    }
    // Every connection idle when the "server" closed it, and nothing after
    // to tell whether its listener lived: a killed server and a middlebox
    // in front of it that cut idle connections look the same from here.
    let all_idle = together.iter().all(|(c, x)| x.at - last_payload(c) >= 1.0);
    let after = refused_after || answered_soon;
    if all_at_once && !goodbye && all_idle && !after && legs.is_empty() {
        return None;
    }
    if all_at_once && !goodbye {
        because.push(format!(
            "every connection closed by the server at once without a protocol goodbye{}",
            if refused_after {
                "; later connects were refused with RST: nothing listened"
            } else {
                ""
            }
        ));
        return Some(Ending {
            cause: "server.killed",
            origin: None,
            closed_by: "server",
            at: end,
            channel,
            because,
        });
    }
    if goodbye {
        because.push("the server said goodbye in the protocol".into());
        return Some(Ending {
            cause: "server.closed",
            origin: None,
            closed_by: "server",
            at: end,
            channel,
            because,
        });
    }
    None
}
