//! Triage of a server capture while it is read (`--summary`): a client's
//! visit to an endpoint (its host's connections there, see
//! [`session::starts_new_visit`]) is diagnosed once it is over and only its
//! summary row is kept, so memory follows the sessions open, not every
//! connection the capture held. What it finds is what the whole-capture
//! triage finds: a visit is let go of early only when nothing later in the
//! capture can change it.

use super::diagnose::Diagnosis;
use super::session::{self, Session};
use super::{SessionRow, Triage, TriageOptions};
use crate::decode::pipeline::{ConnectionReport, DecodeReport, Progress};
use crate::flow::ConnSummary;
use crate::timeline::{ConnectionId, Micros, Severity};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// How often (capture time) finished visits are looked for.
pub const LOOK_EVERY: Micros = Micros(60_000_000);

/// How far a later frame may be stamped before an earlier one (merged
/// captures, clock steps) and still join a visit looked at as over.
const CLOCK_SLACK: Micros = Micros(60_000_000);

/// A client host at one server endpoint.
type VisitKey = (IpAddr, SocketAddr);

fn key_of(f: &ConnSummary) -> VisitKey {
    (f.client.ip(), f.server)
}

/// One session as the summary needs it, small (a day holds thousands):
/// its row, with the strings sessions repeat (server, cause, channel)
/// shared.
struct Ended {
    /// A relay's upstream leg: numbered after every client-facing session.
    relay: bool,
    start: f64,
    length: f64,
    client: Box<str>,
    server: Arc<str>,
    outcome: &'static str,
    cause: Option<Arc<str>>,
    channel: Option<Arc<str>>,
    attempts: u32,
}

impl Ended {
    /// Where the whole-capture triage numbers it: client-facing first, by
    /// first packet, then client (and server, as its endpoints are read).
    fn order(&self) -> (bool, Micros, &str, &str) {
        (
            self.relay,
            Micros::from_secs_f64(self.start),
            &self.client,
            &self.server,
        )
    }

    fn row(&self, number: usize) -> SessionRow {
        SessionRow {
            number,
            client: self.client.to_string(),
            server: self.server.to_string(),
            start: self.start,
            length: self.length,
            outcome: self.outcome,
            cause: self.cause.as_deref().map(str::to_string),
            channel: self.channel.as_deref().map(str::to_string),
            attempts: self.attempts as usize,
        }
    }
}

/// A candidate headline and where its session is numbered.
type Candidate = Option<((bool, Micros, Box<str>, Arc<str>), Head)>;

/// The sessions the headline may speak of, each the first in order of its
/// kind: with a cause, client-facing, any.
#[derive(Default)]
struct Heads {
    caused: Candidate,
    client_facing: Candidate,
    any: Candidate,
}

impl Heads {
    fn offer(&mut self, e: &Ended, d: &Diagnosis) {
        let (relay, at, client, server) = e.order();
        for (slot, fits) in [
            (&mut self.caused, !relay && d.cause.is_some()),
            (&mut self.client_facing, !relay),
            (&mut self.any, true),
        ] {
            let earlier = slot
                .as_ref()
                .is_none_or(|(k, _)| (relay, at, client, server) < (k.0, k.1, &*k.2, &*k.3));
            if fits && earlier {
                *slot = Some(((relay, at, client.into(), e.server.clone()), Head::of(d)));
            }
        }
    }

    /// The primary session's headline, as the whole-capture triage picks it.
    fn primary(self) -> Option<Head> {
        self.caused
            .or(self.client_facing)
            .or(self.any)
            .map(|(_, h)| h)
    }
}

/// The diagnosis fields the headline repeats.
pub(super) struct Head {
    outcome: super::diagnose::SessionOutcome,
    at: Option<f64>,
    cause: Option<String>,
    channel: Option<String>,
    closed_by: Option<&'static str>,
    recovered_at: Option<f64>,
    outage: Option<f64>,
}

impl Head {
    pub(super) fn of(d: &Diagnosis) -> Head {
        Head {
            outcome: d.outcome,
            at: d.at,
            cause: d.cause.clone(),
            channel: d.channel.clone(),
            closed_by: d.closed_by,
            recovered_at: d.recovered_at,
            outage: d.outage,
        }
    }

    /// Puts the headline on the triage.
    pub(super) fn fill(self, t: &mut Triage) {
        t.outcome = Some(super::outcome_str(self.outcome));
        t.at = self.at;
        t.cause = self.cause;
        t.channel = self.channel;
        t.closed_by = self.closed_by;
        t.recovered_at = self.recovered_at;
        t.outage = self.outage;
    }
}

/// The reader's state between looks.
pub(super) struct Stream<'o> {
    options: &'o TriageOptions,
    origin: Option<Micros>,
    /// A finished connection's summary waits here for its report (a worker
    /// may still be decoding its last bytes), and the reverse.
    summaries: FxHashMap<ConnectionId, ConnSummary>,
    reports: FxHashMap<ConnectionId, ConnectionReport>,
    /// Finished connections, summary and report, by visit key, in the
    /// order they finished.
    finished: FxHashMap<VisitKey, Vec<(ConnSummary, ConnectionReport)>>,
    /// Hosts seen serving and seen as clients: a host that is both is a
    /// relay, whose legs pair across visits; those wait for the end.
    servers: FxHashSet<IpAddr>,
    clients: FxHashSet<IpAddr>,
    /// Per endpoint, the last frame of its visits let go of.
    ends: BTreeMap<String, Micros>,
    /// Warnings of the connections let go of, by connection.
    findings: Vec<(ConnectionId, String)>,
    ended: Vec<Ended>,
    heads: Heads,
    /// One copy of each server, cause and channel name.
    strings: std::collections::BTreeSet<Arc<str>>,
}

impl<'o> Stream<'o> {
    pub(super) fn new(options: &'o TriageOptions) -> Stream<'o> {
        Stream {
            options,
            origin: None,
            summaries: FxHashMap::default(),
            reports: FxHashMap::default(),
            finished: FxHashMap::default(),
            servers: FxHashSet::default(),
            clients: FxHashSet::default(),
            ends: BTreeMap::new(),
            findings: Vec::new(),
            ended: Vec::new(),
            heads: Heads::default(),
            strings: std::collections::BTreeSet::new(),
        }
    }

    fn note_hosts(&mut self, f: &ConnSummary) {
        self.clients.insert(f.client.ip());
        self.servers.insert(f.server.ip());
    }

    /// Takes what the decode finished, then diagnoses every visit that is
    /// over.
    pub(super) fn look(&mut self, p: Progress<'_>) {
        self.origin = self.origin.or(p.start);
        for f in p.summaries {
            self.note_hosts(&f);
            self.summaries.insert(f.id, f);
        }
        for r in p.reports {
            self.reports.insert(r.connection, r);
        }
        let both: Vec<ConnectionId> = self
            .reports
            .keys()
            .filter(|id| self.summaries.contains_key(id))
            .copied()
            .collect();
        for id in both {
            if let (Some(f), Some(r)) = (self.summaries.remove(&id), self.reports.remove(&id)) {
                self.finished.entry(key_of(&f)).or_default().push((f, r));
            }
        }
        // A visit with a connection still open (or whose report is still
        // on its way) is over only before that connection began.
        let mut open_from: FxHashMap<VisitKey, Micros> = FxHashMap::default();
        let open: Vec<&ConnSummary> = p.reassembler.open_connections().collect();
        for f in open.iter().copied().chain(self.summaries.values()) {
            let at = open_from.entry(key_of(f)).or_insert(f.start);
            *at = (*at).min(f.start);
        }
        for f in open {
            self.note_hosts(f);
        }
        let now = Micros(p.now.0.saturating_sub(CLOCK_SLACK.0));
        let keys: Vec<VisitKey> = self.finished.keys().copied().collect();
        for key in keys {
            // A relay's legs and the sessions they serve pair across
            // clients: they wait for the end.
            if self.clients.contains(&key.1.ip()) || self.servers.contains(&key.0) {
                continue;
            }
            let Some(conns) = self.finished.get_mut(&key) else {
                continue;
            };
            conns.sort_by_key(|(f, _)| (f.start, f.id));
            let over = visits_over(conns, open_from.get(&key).copied(), now);
            if over == 0 {
                continue;
            }
            let rest = conns.split_off(over);
            let done = std::mem::replace(conns, rest);
            if conns.is_empty() {
                self.finished.remove(&key);
            }
            self.diagnose(done);
        }
    }

    /// Diagnoses one client's finished visits and keeps their rows.
    fn diagnose(&mut self, conns: Vec<(ConnSummary, ConnectionReport)>) {
        let origin = self.origin.unwrap_or(Micros::ZERO);
        let mut report = DecodeReport {
            file: String::new(),
            start: self.origin,
            stats: crate::capture::CaptureStats::default(),
            diagnostics: Vec::new(),
            flows: Vec::with_capacity(conns.len()),
            connections: Vec::with_capacity(conns.len()),
        };
        for (f, r) in conns {
            let end = self.ends.entry(f.server.to_string()).or_insert(f.last);
            *end = (*end).max(f.last);
            self.findings
                .extend(warnings(&r).map(|w| (r.connection, w)));
            report.flows.push(f);
            report.connections.push(r);
        }
        let sessions = session::sessions(&mut report, origin, false);
        self.keep(&sessions);
    }

    /// Diagnoses sessions and keeps their rows (and the headline's
    /// candidates).
    fn keep(&mut self, sessions: &[Session]) {
        let mut diagnoses: Vec<Diagnosis> = (0..sessions.len())
            .map(|i| {
                let legs = super::relay_leg_closes(sessions, i);
                super::diagnosis_of(&sessions[i], &legs, &[], None, false, self.options)
            })
            .collect();
        // As the whole-capture triage does: a leg the relay cut takes its
        // front's cause.
        super::link_relay_evidence(sessions, &mut diagnoses);
        for (s, d) in sessions.iter().zip(diagnoses) {
            let row = SessionRow::of_parts(0, s, &d);
            let e = Ended {
                relay: s.relay_of.is_some(),
                start: row.start,
                length: row.length,
                client: row.client.into(),
                server: self.intern(&row.server),
                outcome: row.outcome,
                cause: row.cause.map(|c| self.intern(&c)),
                channel: row.channel.map(|c| self.intern(&c)),
                attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            };
            self.heads.offer(&e, &d);
            self.ended.push(e);
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = s.into();
        self.strings.insert(shared.clone());
        shared
    }

    /// The whole triage: what is left (`rest`, the decode's report of what
    /// was not handed over, with what still waits here) diagnosed as one
    /// capture, and every session numbered in the capture's order.
    pub(super) fn finish(mut self, input: &str, mut rest: DecodeReport) -> Triage {
        let waiting = self.finished.drain().flat_map(|(_, v)| v);
        for (f, r) in waiting {
            rest.flows.push(f);
            rest.connections.push(r);
        }
        rest.flows.extend(self.summaries.drain().map(|(_, f)| f));
        rest.connections
            .extend(self.reports.drain().map(|(_, r)| r));
        rest.flows.sort_by_key(|f| f.id);
        rest.connections.sort_by_key(|r| r.connection);
        let start = rest.start;
        let origin = start.unwrap_or(Micros::ZERO);
        let mut findings: Vec<(ConnectionId, String)> = std::mem::take(&mut self.findings);
        findings.extend(
            rest.connections
                .iter()
                .flat_map(|r| warnings(r).map(|w| (r.connection, w))),
        );
        findings.sort_by_key(|(c, _)| *c);
        let findings: Vec<String> = warnings_of(&rest.diagnostics)
            .chain(findings.into_iter().map(|(_, w)| w))
            .collect();
        let unread: Vec<String> = crate::decode::pipeline::unread_parts(&rest.diagnostics)
            .map(ToString::to_string)
            .collect();
        let sessions = session::sessions_ending(&mut rest, origin, false, &self.ends);
        drop(rest);
        self.keep(&sessions);
        drop(sessions);
        assemble(input, start, self.ended, self.heads, findings, unread)
    }
}

/// How many of one client host's finished connections (in start order)
/// make visits that are over: each followed by a new visit, or by nothing
/// while `now` is past the horizon. A visit may not reach past the start
/// of a connection still open (`open_from`).
fn visits_over(
    conns: &[(ConnSummary, ConnectionReport)],
    open_from: Option<Micros>,
    now: Micros,
) -> usize {
    let before_open = |f: &ConnSummary| open_from.is_none_or(|o| f.start < o);
    let mut over = 0;
    let mut from = 0;
    while from < conns.len() && before_open(&conns[from].0) {
        let mut to = from + 1;
        while to < conns.len()
            && before_open(&conns[to].0)
            && !session::starts_new_visit(conns[from..to].iter().map(|(f, _)| f), conns[to].0.start)
        {
            to += 1;
        }
        let visit = conns[from..to].iter().map(|(f, _)| f);
        let ended = if to < conns.len() && before_open(&conns[to].0) {
            true
        } else {
            session::starts_new_visit(visit, open_from.unwrap_or(now))
        };
        if !ended {
            break;
        }
        over = to;
        from = to;
    }
    over
}

/// A connection's warnings and errors, as the triage lists them.
fn warnings(r: &ConnectionReport) -> impl Iterator<Item = String> + '_ {
    warnings_of(&r.findings)
}

fn warnings_of(f: &[crate::timeline::Finding]) -> impl Iterator<Item = String> + '_ {
    f.iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(ToString::to_string)
}

/// The summary triage of every session: numbered as the whole-capture
/// triage numbers them, counted by ending, the headline from the first
/// with a cause.
fn assemble(
    input: &str,
    start: Option<Micros>,
    mut ended: Vec<Ended>,
    heads: Heads,
    findings: Vec<String>,
    unread: Vec<String>,
) -> Triage {
    ended.sort_by(|a, b| a.order().cmp(&b.order()));
    let summary: Vec<SessionRow> = ended
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.relay)
        .map(|(i, e)| e.row(i + 1))
        .collect();
    Triage::of_rows(input, start, summary, findings, unread, heads.primary())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::generate::server::{ServerConfig, generate_server};
    use crate::decode::pipeline::{DecodeOptions, decode_capture_parallel_streaming};
    use crate::flow::{DirStats, EndKind, TcpSide};
    use crate::timeline::OpenKind;

    const S: u64 = 1_000_000;

    fn conn(id: u32, port: u16, start: u64, last: u64, end: EndKind) -> ConnSummary {
        ConnSummary {
            id: ConnectionId(id),
            client: format!("10.0.0.1:{port}").parse().unwrap(),
            server: "10.0.9.9:5900".parse().unwrap(),
            opened: OpenKind::Syn,
            start: Micros(start * S),
            last: Micros(last * S),
            first_frame: 0,
            c2s: DirStats::default(),
            s2c: DirStats::default(),
            end,
            closed_by: None,
            tcp: [TcpSide::default(); 2],
        }
    }

    fn finished(conns: &[ConnSummary]) -> Vec<(ConnSummary, ConnectionReport)> {
        conns
            .iter()
            .map(|f| {
                let r = ConnectionReport {
                    connection: f.id,
                    client: f.client.to_string(),
                    server: f.server.to_string(),
                    protocol: crate::decode::Protocol::Unknown,
                    stack: vec!["tcp"],
                    counts: Default::default(),
                    c2s: Default::default(),
                    s2c: Default::default(),
                    findings: Vec::new(),
                    session: None,
                    events: Vec::new(),
                    folded: None,
                };
                (f.clone(), r)
            })
            .collect()
    }

    #[test]
    fn a_visit_is_over_past_the_horizon_with_nothing_open() {
        let horizon = session::RECONNECT_HORIZON.0 / S;
        // Two connections close at T+100; a reconnect 30 s later is the same
        // visit, one past the horizon a new one.
        let a = conn(0, 1000, 0, 100, EndKind::Fin);
        let b = conn(1, 1001, 130, 200, EndKind::Fin);
        let c = conn(2, 1002, 200 + horizon + 1, 900 + horizon, EndKind::Rst);
        let all = finished(&[a.clone(), b.clone(), c.clone()]);
        let at = |t: u64| Micros(t * S);
        // Nothing is over while the horizon has not passed.
        assert_eq!(visits_over(&all[..2], None, at(200 + horizon)), 0);
        assert_eq!(visits_over(&all[..2], None, at(201 + horizon)), 2);
        // A later visit ends the first at once; the last waits for the horizon.
        assert_eq!(visits_over(&all, None, at(901 + horizon)), 2);
        assert_eq!(visits_over(&all, None, at(901 + 2 * horizon)), 3);
        // A connection still open ends nothing that might reach it.
        assert_eq!(visits_over(&all[..2], Some(at(150)), at(10 * horizon)), 0);
        assert_eq!(visits_over(&all[..2], Some(c.start), at(10 * horizon)), 2);
        // A connection never closed keeps its visit open whatever follows.
        let open = conn(0, 1000, 0, 100, EndKind::Open);
        assert_eq!(
            visits_over(&finished(&[open, c]), None, at(10 * horizon)),
            0
        );
    }

    /// A generated server day, triaged as it is read and as a whole:
    /// the same rows, counts and headline, for any number of threads, and
    /// most visits let go of before the capture ends.
    #[test]
    fn streamed_summary_equals_the_whole_capture_triage() {
        let cfg = ServerConfig {
            sessions: 120,
            duration: Micros(3 * 3600 * S),
            seed: 7,
            ..ServerConfig::default()
        };
        let mut pcap = Vec::new();
        let (_, truth) = generate_server(&cfg, &mut pcap).unwrap();
        let options = TriageOptions {
            no_what_if: true,
            ..TriageOptions::default()
        };
        let whole = super::super::triage_reader(&pcap[..], "generated server day", false, &options)
            .unwrap();
        for threads in [1, 2] {
            let options = TriageOptions {
                threads,
                selection: super::super::Selection {
                    none: true,
                    ..Default::default()
                },
                ..options.clone()
            };
            let mut stream = Stream::new(&options);
            let mut look = |p: Progress<'_>| stream.look(p);
            let decode = DecodeOptions {
                fold: Some(session::ChannelFold::maker()),
                drop_counts: true,
                ..DecodeOptions::default()
            };
            let rest = decode_capture_parallel_streaming(
                &pcap[..],
                "generated server day",
                decode,
                threads,
                Some((LOOK_EVERY, &mut look)),
            )
            .unwrap();
            let early = stream.ended.len();
            assert!(
                early * 2 > truth.sessions.len(),
                "{threads} threads: only {early} of {} sessions let go of early",
                truth.sessions.len()
            );
            let streamed = stream.finish("generated server day", rest);
            let json =
                |t: &Triage| serde_json::to_string(&(&t.summary, &t.counts)).unwrap_or_default();
            assert_eq!(json(&streamed), json(&whole), "{threads} threads");
            assert_eq!(
                (
                    streamed.outcome,
                    streamed.at,
                    &streamed.cause,
                    &streamed.channel
                ),
                (whole.outcome, whole.at, &whole.cause, &whole.channel)
            );
            assert_eq!(streamed.findings, whole.findings);
        }
    }
}
