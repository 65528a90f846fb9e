//! The tokio edge: accepts clients, dials the upstream, forwards bytes
//! both ways while applying the fault plan, and hands every forwarded
//! chunk with its real timestamp to the recorder and the monitor. This is
//! the only place in tether that reads the real clock for a session.

use super::faults::{DropHow, FaultPlan, KillHow, WsFilter};
use super::monitor::{LiveVerdict, Monitor};
use super::recorder::{RecId, Recorder};
use crate::decode::pipeline::ConnectionReport;
use crate::timeline::{Direction, Finding, Micros};
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Bytes read and not yet delivered, per direction, before the proxy
/// stops reading (backpressure instead of unbounded buffering).
const MAX_QUEUED: usize = 1 << 20;
const READ_BUF: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub listen: SocketAddr,
    /// `host:port`, resolved at each connection.
    pub upstream: String,
    pub pcap: PathBuf,
    pub plan: FaultPlan,
    pub seed: u64,
    /// The profile's timers shown on the status line, counted from the
    /// last data either way.
    pub profile_timers: Vec<(String, Micros)>,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    pub status_every: Duration,
}

/// What the proxy tells the terminal.
#[derive(Clone, Debug)]
pub enum Line {
    Info(String),
    /// A decoder finding, as it happens.
    Finding(Micros, Finding),
    /// One line per open connection.
    Status(Vec<String>),
}

pub type Printer = Arc<dyn Fn(Line) + Send + Sync>;

/// The result of a live run.
#[derive(Debug)]
pub struct LiveReport {
    pub verdict: LiveVerdict,
    /// Wall-clock time of T+0, as the recording's timestamps count.
    pub start_epoch: Micros,
    /// The live decode of the recording.
    pub decoded: Vec<ConnectionReport>,
    pub diagnostics: Vec<Finding>,
    pub pcap: PathBuf,
    /// The address the proxy listened on (useful with port 0).
    pub listened: SocketAddr,
}

/// Real time at the edge: T+ since start, and the wall clock of T+0.
#[derive(Clone, Copy, Debug)]
struct Clock {
    start: Instant,
    epoch: Micros,
}

impl Clock {
    fn new() -> Clock {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(Micros::ZERO, |d| Micros(d.as_micros() as u64));
        Clock {
            start: Instant::now(),
            epoch,
        }
    }
    fn rel(&self) -> Micros {
        Micros(self.start.elapsed().as_micros() as u64)
    }
    fn abs(&self, rel: Micros) -> Micros {
        Micros(self.epoch.0 + rel.0)
    }
    fn instant(&self, rel: Micros) -> Instant {
        self.start + Duration::from_micros(rel.0)
    }
}

struct Hub {
    clock: Clock,
    recorder: Option<Recorder<File>>,
    monitor: Monitor,
    printer: Printer,
    write_failed: bool,
}

impl Hub {
    fn record(&mut self, f: impl FnOnce(&mut Recorder<File>) -> io::Result<()>) {
        if let Some(r) = self.recorder.as_mut()
            && let Err(e) = f(r)
            && !self.write_failed
        {
            self.write_failed = true;
            (self.printer)(Line::Info(format!(
                "recording failed: {e}; forwarding goes on"
            )));
        }
    }

    /// After bytes were recorded: print new findings, update the stack.
    fn after_data(&mut self, id: RecId, now: Micros) {
        let Some(r) = self.recorder.as_mut() else {
            return;
        };
        let findings = r.new_findings(id);
        let stack = r.stack(id);
        self.monitor.set_stack(id, stack);
        for f in findings {
            self.monitor.finding(id);
            (self.printer)(Line::Finding(now, f));
        }
    }
}

type SharedHub = Arc<Mutex<Hub>>;

fn lock(hub: &SharedHub) -> std::sync::MutexGuard<'_, Hub> {
    // A panicking connection task must not stop the recording.
    hub.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the proxy until `stop` resolves or the configured duration ends,
/// then closes every connection, finishes the recording and returns the
/// verdict. `ready` gets the bound address once the proxy listens.
pub async fn run(
    cfg: LiveConfig,
    printer: Printer,
    stop: impl Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> io::Result<LiveReport> {
    let file = File::create(&cfg.pcap)?;
    let name = cfg.pcap.display().to_string();
    let clock = Clock::new();
    let hub: SharedHub = Arc::new(Mutex::new(Hub {
        clock,
        recorder: Some(Recorder::new(file, &name)?),
        monitor: Monitor::default(),
        printer: printer.clone(),
        write_failed: false,
    }));
    let mut listener = Some(TcpListener::bind(cfg.listen).await?);
    let listened = listener
        .as_ref()
        .map_or(Ok(cfg.listen), |l| l.local_addr())?;
    printer(Line::Info(format!(
        "listening on {listened}, upstream {}, recording to {name}, seed {}",
        cfg.upstream, cfg.seed
    )));
    for f in cfg.plan.describe() {
        printer(Line::Info(format!("fault: {f}")));
    }
    if let Some(tx) = ready {
        let _ = tx.send(listened);
    }
    let cfg = Arc::new(cfg);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_conn = 0u64;
    let deadline = cfg.duration.map(|d| clock.start + d);
    let mut status = tokio::time::interval(cfg.status_every);
    status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        let now = clock.rel();
        let refusing = cfg.plan.refusing(now);
        if refusing && listener.is_some() {
            listener = None;
            let until = cfg
                .plan
                .refuse
                .iter()
                .filter_map(|w| w.next_edge(now))
                .min()
                .map_or("the end".to_string(), |e| {
                    format!("T+{:.3}", e.as_secs_f64())
                });
            let what = format!(
                "refusing new connections from T+{:.3} until {until} (listener closed: tcp.refused)",
                now.as_secs_f64()
            );
            printer(Line::Info(what.clone()));
            lock(&hub).monitor.refused_window(what);
        } else if !refusing && listener.is_none() {
            match TcpListener::bind(listened).await {
                Ok(l) => {
                    printer(Line::Info(format!(
                        "accepting again at T+{:.3}",
                        now.as_secs_f64()
                    )));
                    listener = Some(l);
                }
                Err(e) => printer(Line::Info(format!("cannot listen again yet: {e}"))),
            }
        }
        let wake = cfg
            .plan
            .refuse
            .iter()
            .filter_map(|w| w.next_edge(now))
            .min()
            .map_or(now.0 + 3_600_000_000, |e| e.0)
            .min(if listener.is_none() && !refusing {
                now.0 + 100_000
            } else {
                u64::MAX
            });
        tokio::select! {
            _ = &mut stop => break,
            _ = sleep_opt(deadline) => break,
            _ = tokio::time::sleep_until(clock.instant(Micros(wake))) => {}
            _ = status.tick() => {
                let h = lock(&hub);
                let lines = h.monitor.status(clock.rel(), &cfg.plan, &cfg.profile_timers);
                if !lines.is_empty() {
                    printer(Line::Status(lines));
                }
            }
            accepted = accept_opt(listener.as_ref()) => match accepted {
                Ok((sock, peer)) => {
                    let seed = cfg.seed ^ next_conn.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    next_conn += 1;
                    tasks.spawn(serve(sock, peer, cfg.clone(), hub.clone(), stop_rx.clone(), seed));
                }
                Err(e) => printer(Line::Info(format!("accept failed: {e}"))),
            },
        }
    }
    let _ = stop_tx.send(true);
    // Connections close at once on stop; this only bounds a stuck write.
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let ran_for = clock.rel();
    let mut h = lock(&hub);
    let recorder = h.recorder.take();
    let (decoded, diagnostics) = match recorder {
        Some(r) => {
            let (file, reports, diags) = r.finish();
            file.sync_all()?;
            (reports, diags)
        }
        None => (Vec::new(), Vec::new()),
    };
    let verdict = h.monitor.verdict(clock.epoch, ran_for, &cfg.plan, cfg.seed);
    Ok(LiveReport {
        verdict,
        start_epoch: clock.epoch,
        decoded,
        diagnostics,
        pcap: cfg.pcap.clone(),
        listened,
    })
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn accept_opt(l: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn readable(s: Option<&TcpStream>) {
    match s {
        Some(s) => {
            let _ = s.readable().await;
        }
        None => std::future::pending().await,
    }
}

async fn writable(s: Option<&TcpStream>) {
    match s {
        Some(s) => {
            let _ = s.writable().await;
        }
        None => std::future::pending().await,
    }
}

async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    cfg: Arc<LiveConfig>,
    hub: SharedHub,
    stop: watch::Receiver<bool>,
    seed: u64,
) {
    let clock = lock(&hub).clock;
    let upstream = match TcpStream::connect(&cfg.upstream).await {
        Ok(s) => s,
        Err(e) => {
            let mut h = lock(&hub);
            let now = clock.rel();
            (h.printer)(Line::Info(format!(
                "T+{:.3} {peer}: cannot reach upstream {}: {e}; resetting the client",
                now.as_secs_f64(),
                cfg.upstream
            )));
            h.monitor
                .upstream_unreachable(now, peer.to_string(), format!("{}: {e}", cfg.upstream));
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let server = upstream.peer_addr().unwrap_or(peer);
    let now = clock.rel();
    let id = {
        let mut h = lock(&hub);
        let mut id = RecId(usize::MAX);
        let at = clock.abs(now);
        h.record(|r| {
            id = r.open(at, peer, server)?;
            Ok(())
        });
        if id.0 == usize::MAX {
            return;
        }
        h.monitor.opened(id, now, peer, server);
        (h.printer)(Line::Info(format!(
            "T+{:.3} #{} opened {peer} → {server}",
            now.as_secs_f64(),
            id.0
        )));
        id
    };
    let mut conn = Conn {
        id,
        socks: [Some(client), Some(upstream)],
        queue: [VecDeque::new(), VecDeque::new()],
        queued: [0, 0],
        eof: [false, false],
        fin_sent: [false, false],
        filters: [WsFilter::default(), WsFilter::default()],
        ws_reported: [0, 0],
        last_data: now,
        last_due: [now, now],
        bw_free: [now, now],
        rng: XorShiftRng::seed_from_u64(seed),
        dropped: false,
        idle_fired: false,
        blackhole_noted: false,
        next_kill: cfg.plan.next_kill(now),
        cfg,
        hub,
        clock,
        buf: vec![0u8; READ_BUF],
    };
    conn.run(stop).await;
    let at = conn.clock.rel();
    let mut h = lock(&conn.hub);
    h.monitor.ended(id, at);
}

struct Pending {
    due: Micros,
    bytes: Vec<u8>,
    off: usize,
}

/// Socket index of the sender and receiver of a direction.
fn src(dir: Direction) -> usize {
    dir.index()
}
fn dst(dir: Direction) -> usize {
    1 - dir.index()
}

const C2S: Direction = Direction::ClientToServer;
const S2C: Direction = Direction::ServerToClient;

enum Ev {
    Stop,
    Read(Direction),
    Write(Direction),
    Tick,
}

struct Conn {
    id: RecId,
    /// `[client, upstream]`; `None` once closed.
    socks: [Option<TcpStream>; 2],
    /// Per direction: read, waiting for its delivery time.
    queue: [VecDeque<Pending>; 2],
    queued: [usize; 2],
    /// The sender of this direction sent FIN.
    eof: [bool; 2],
    /// The proxy passed that FIN on.
    fin_sent: [bool; 2],
    filters: [WsFilter; 2],
    ws_reported: [u64; 2],
    last_data: Micros,
    /// Latest delivery time queued each way: jitter never reorders bytes.
    last_due: [Micros; 2],
    /// Bandwidth cap: no delivery before this.
    bw_free: [Micros; 2],
    rng: XorShiftRng,
    /// A silent idle drop happened: the "load balancer" forgot us.
    dropped: bool,
    idle_fired: bool,
    blackhole_noted: bool,
    next_kill: Option<(Micros, KillHow)>,
    cfg: Arc<LiveConfig>,
    hub: SharedHub,
    clock: Clock,
    buf: Vec<u8>,
}

impl Conn {
    fn done(&self) -> bool {
        self.socks.iter().all(Option::is_none) || (self.fin_sent[0] && self.fin_sent[1])
    }

    fn can_read(&self, dir: Direction) -> bool {
        // Reading goes on in a blackhole (the data is held, not delivered):
        // the peers' kernels acknowledge it either way, and the proxy gets
        // to see when a peer gives up.
        self.socks[src(dir)].is_some()
            && !self.eof[dir.index()]
            && self.queued[dir.index()] < MAX_QUEUED
    }

    fn can_write(&self, dir: Direction, now: Micros) -> bool {
        self.socks[dst(dir)].is_some()
            && !self.dropped
            && !self.cfg.plan.blackholed(now)
            && self.bw_free[dir.index()] <= now
            && self.queue[dir.index()]
                .front()
                .is_some_and(|p| p.due <= now)
    }

    fn next_wake(&self, now: Micros) -> Micros {
        let mut wake = Micros(now.0 + 3_600_000_000);
        let mut at = |t: Micros| {
            if t > now && t < wake {
                wake = t;
            }
        };
        if let Some((d, _)) = self.cfg.plan.idle
            && !self.idle_fired
        {
            at(Micros(self.last_data.0 + d.0));
        }
        if let Some((k, _)) = self.next_kill {
            at(k);
        }
        if let Some(e) = self.cfg.plan.next_edge(now) {
            at(e);
        }
        for d in [C2S, S2C] {
            if let Some(p) = self.queue[d.index()].front() {
                at(p.due);
                at(self.bw_free[d.index()]);
            }
        }
        // Never sleep past a deadline that is already due.
        if wake <= now { Micros(now.0 + 1) } else { wake }
    }

    async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        loop {
            let now = self.clock.rel();
            self.on_time(now).await;
            if self.done() {
                return;
            }
            let wake = self.clock.instant(self.next_wake(now));
            let ev = {
                let (a, b) = (self.socks[0].as_ref(), self.socks[1].as_ref());
                tokio::select! {
                    biased;
                    _ = stop.changed() => Ev::Stop,
                    _ = readable(a), if self.can_read(C2S) => Ev::Read(C2S),
                    _ = readable(b), if self.can_read(S2C) => Ev::Read(S2C),
                    _ = writable(b), if self.can_write(C2S, now) => Ev::Write(C2S),
                    _ = writable(a), if self.can_write(S2C, now) => Ev::Write(S2C),
                    _ = tokio::time::sleep_until(wake) => Ev::Tick,
                }
            };
            match ev {
                Ev::Stop => return,
                Ev::Read(d) => self.read(d).await,
                Ev::Write(d) => self.write(d).await,
                Ev::Tick => {}
            }
        }
    }

    /// Closes one socket with a RST.
    fn abort(&mut self, sock: usize) {
        if let Some(s) = self.socks[sock].take() {
            let _ = s.set_zero_linger();
        }
    }

    fn record_rst(&self, now: Micros, dir: Direction) {
        let at = self.clock.abs(now);
        let id = self.id;
        lock(&self.hub).record(|r| r.rst(id, at, dir));
    }

    fn record_fin(&self, now: Micros, dir: Direction) {
        let at = self.clock.abs(now);
        let id = self.id;
        lock(&self.hub).record(|r| r.fin(id, at, dir));
    }

    fn info(&self, now: Micros, what: String) {
        let h = lock(&self.hub);
        (h.printer)(Line::Info(format!(
            "T+{:.3} #{} {what}",
            now.as_secs_f64(),
            self.id.0
        )));
    }

    async fn on_time(&mut self, now: Micros) {
        // A FIN heard during a blackhole goes on once it ends.
        for d in [C2S, S2C] {
            let i = d.index();
            if self.eof[i]
                && !self.fin_sent[i]
                && self.queue[i].is_empty()
                && !self.dropped
                && !self.cfg.plan.blackholed(now)
            {
                self.send_fin(d, now).await;
            }
        }
        let plan = &self.cfg.plan;
        if plan.blackholed(now) && !self.blackhole_noted && !self.done() {
            self.blackhole_noted = true;
            let w = plan
                .blackhole_at(now)
                .map(|w| w.describe())
                .unwrap_or_default();
            let mut h = lock(&self.hub);
            h.monitor.fired(
                self.id,
                now,
                "network.outage",
                format!("blackholed the path ({w}); sockets kept open"),
                false,
            );
            for client_side in [true, false] {
                h.monitor.saw(
                    self.id,
                    now,
                    client_side,
                    "silence: nothing delivered (half-open)".into(),
                );
            }
            drop(h);
            self.info(now, format!("blackhole on ({w})"));
        } else if !plan.blackholed(now) && self.blackhole_noted {
            self.blackhole_noted = false;
            self.info(now, "blackhole off: forwarding again".into());
        }
        if let Some((d, how)) = plan.idle
            && !self.idle_fired
            && now.0 >= self.last_data.0 + d.0
        {
            self.idle_fired = true;
            let last = self.last_data;
            let mut h = lock(&self.hub);
            match how {
                DropHow::Rst => {
                    drop(h);
                    // As a load balancer does it: a RST to each side, each
                    // looking as if it came from the other.
                    self.record_rst(now, S2C);
                    self.record_rst(now, C2S);
                    self.abort(0);
                    self.abort(1);
                    let mut h = lock(&self.hub);
                    h.monitor.fired(
                        self.id,
                        now,
                        "lb.idle_timeout",
                        format!(
                            "dropped the connection after {} without data (last data T+{:.3}) with a RST to each side",
                            super::monitor::dur(d),
                            last.as_secs_f64()
                        ),
                        true,
                    );
                    h.monitor.saw(
                        self.id,
                        now,
                        true,
                        "RST (sent by the proxy's idle timeout)".into(),
                    );
                    h.monitor.saw(
                        self.id,
                        now,
                        false,
                        "RST (sent by the proxy's idle timeout)".into(),
                    );
                }
                DropHow::Silent => {
                    self.dropped = true;
                    self.queue = [VecDeque::new(), VecDeque::new()];
                    self.queued = [0, 0];
                    h.monitor.fired(
                        self.id,
                        now,
                        "lb.idle_timeout",
                        format!(
                            "forgot the connection after {} without data (last data T+{:.3}), telling neither side",
                            super::monitor::dur(d),
                            last.as_secs_f64()
                        ),
                        true,
                    );
                    drop(h);
                }
            }
            self.info(now, format!("idle drop fired (lb.idle_timeout, {how:?})"));
        }
        if let Some((k, how)) = self.next_kill
            && now >= k
            && !self.done()
        {
            self.next_kill = None;
            match how {
                KillHow::Rst => {
                    self.record_rst(now, S2C);
                    self.record_rst(now, C2S);
                    self.abort(0);
                    self.abort(1);
                }
                KillHow::Fin => {
                    for d in [S2C, C2S] {
                        if !self.fin_sent[d.index()]
                            && let Some(s) = self.socks[dst(d)].as_mut()
                        {
                            let _ = s.shutdown().await;
                            self.fin_sent[d.index()] = true;
                            self.record_fin(now, d);
                        }
                    }
                    self.socks = [None, None];
                }
            }
            let mut h = lock(&self.hub);
            let what = format!("{how:?}").to_uppercase();
            h.monitor.fired(
                self.id,
                now,
                "relay.killed",
                format!("killed the connection with a {what} to each side"),
                true,
            );
            h.monitor
                .saw(self.id, now, true, format!("{what} (proxy kill)"));
            h.monitor
                .saw(self.id, now, false, format!("{what} (proxy kill)"));
            drop(h);
            self.info(now, format!("killed with {what} (relay.killed)"));
        }
    }

    async fn read(&mut self, dir: Direction) {
        let Some(sock) = self.socks[src(dir)].as_ref() else {
            return;
        };
        let r = sock.try_read(&mut self.buf);
        let now = self.clock.rel();
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Ok(0) if self.dropped => self.reset_forgotten(dir, now, 0),
            Ok(0) => {
                self.eof[dir.index()] = true;
                lock(&self.hub)
                    .monitor
                    .peer_closed(self.id, now, dir, "FIN");
                if self.queue[dir.index()].is_empty() && !self.cfg.plan.blackholed(now) {
                    self.send_fin(dir, now).await;
                }
            }
            Ok(n) => {
                self.last_data = now;
                lock(&self.hub).monitor.heard(self.id, now, dir, n);
                if self.dropped {
                    self.reset_forgotten(dir, now, n);
                    return;
                }
                let mode = self.cfg.plan.ws_at(now);
                let mut out = Vec::with_capacity(n);
                let f = &mut self.filters[dir.index()];
                f.filter(mode, &self.buf[..n], &mut out);
                let dropped = f.dropped_frames;
                if dropped > self.ws_reported[dir.index()] {
                    let first = self.ws_reported[dir.index()] == 0;
                    self.ws_reported[dir.index()] = dropped;
                    if first && let Some(m) = mode {
                        lock(&self.hub).monitor.fired(
                            self.id,
                            now,
                            m.cause(),
                            format!("dropped WebSocket frames from the {} ({m:?})", dir.sender()),
                            false,
                        );
                    }
                }
                if out.is_empty() {
                    return;
                }
                let mut due = now;
                if let Some(l) = self.cfg.plan.latency_at(now) {
                    let jitter = if l.jitter.0 > 0 {
                        self.rng.random_range(0..=l.jitter.0)
                    } else {
                        0
                    };
                    due = Micros(now.0 + l.delay.0 + jitter);
                }
                let due = due.max(self.last_due[dir.index()]);
                self.last_due[dir.index()] = due;
                self.queued[dir.index()] += out.len();
                self.queue[dir.index()].push_back(Pending {
                    due,
                    bytes: out,
                    off: 0,
                });
            }
            Err(e) => self.peer_reset(dir, now, e),
        }
    }

    /// After a silent idle drop, the side that speaks (or closes) gets a
    /// RST, as from a load balancer that no longer knows the connection.
    fn reset_forgotten(&mut self, dir: Direction, now: Micros, n: usize) {
        self.record_rst(now, dir.reverse());
        self.abort(src(dir));
        let mut h = lock(&self.hub);
        let what = if n > 0 {
            format!("RST in answer to its {n} bytes (the proxy had forgotten the connection)")
        } else {
            "RST in answer to its FIN (the proxy had forgotten the connection)".to_string()
        };
        h.monitor.saw(self.id, now, dir == C2S, what);
    }

    /// The sender of `dir` reset its socket: pass the RST on.
    fn peer_reset(&mut self, dir: Direction, now: Micros, e: io::Error) {
        self.record_rst(now, dir);
        {
            let mut h = lock(&self.hub);
            h.monitor.peer_closed(self.id, now, dir, "RST");
            h.monitor.saw(
                self.id,
                now,
                dir == S2C,
                format!("RST from the {}", dir.sender()),
            );
        }
        self.abort(dst(dir));
        self.socks[src(dir)] = None;
        self.info(now, format!("{} reset the connection ({e})", dir.sender()));
    }

    async fn send_fin(&mut self, dir: Direction, now: Micros) {
        if self.fin_sent[dir.index()] {
            return;
        }
        if let Some(s) = self.socks[dst(dir)].as_mut() {
            let _ = s.shutdown().await;
        }
        self.fin_sent[dir.index()] = true;
        self.record_fin(now, dir);
        lock(&self.hub).monitor.saw(
            self.id,
            now,
            dir == S2C,
            format!("FIN from the {}", dir.sender()),
        );
    }

    async fn write(&mut self, dir: Direction) {
        let now = self.clock.rel();
        let i = dir.index();
        let Some(sock) = self.socks[dst(dir)].as_ref() else {
            return;
        };
        let Some(p) = self.queue[i].front_mut() else {
            return;
        };
        let rate = self.cfg.plan.bandwidth_at(now);
        // Under a cap, write a twentieth of a second's worth at a time.
        let allowed = rate.map_or(usize::MAX, |r| ((r / 20).max(1)) as usize);
        let end = p.bytes.len().min(p.off.saturating_add(allowed));
        match sock.try_write(&p.bytes[p.off..end]) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Ok(n) => {
                let at = self.clock.abs(now);
                let id = self.id;
                let chunk = &p.bytes[p.off..p.off + n];
                {
                    let mut h = lock(&self.hub);
                    h.record(|r| r.data(id, at, dir, chunk));
                    h.after_data(id, now);
                }
                p.off += n;
                self.queued[i] -= n;
                if p.off == p.bytes.len() {
                    self.queue[i].pop_front();
                }
                if let Some(r) = rate {
                    self.bw_free[i] = Micros(now.0 + (n as u64).saturating_mul(1_000_000) / r);
                }
                if self.queue[i].is_empty() && self.eof[i] {
                    self.send_fin(dir, now).await;
                }
            }
            Err(e) => {
                // The receiver reset: pass its RST back to the sender.
                let back = dir.reverse();
                self.record_rst(now, back);
                {
                    let mut h = lock(&self.hub);
                    h.monitor.peer_closed(self.id, now, back, "RST");
                    h.monitor.saw(
                        self.id,
                        now,
                        back == S2C,
                        format!("RST from the {}", back.sender()),
                    );
                }
                self.socks[dst(dir)] = None;
                self.abort(src(dir));
                self.info(now, format!("{} reset the connection ({e})", back.sender()));
            }
        }
    }
}
