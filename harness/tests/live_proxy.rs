//! `tether proxy` end to end on loopback: a real WebSocket echo server and
//! client (tokio-tungstenite, with pings) talk through the live proxy while
//! it injects a fault; the verdict must name the fault, the peers must
//! have seen what it says they saw, and the recording must decode (as
//! `tether decode` would) to the same thing the live decode saw, with the
//! RSTs at the fault time.
//!
//! Ports: 6210-6219 and 6235-6243 on 127.0.0.1 (this area's range is
//! 6200-6299; the live-*.sh recording scripts use 6220-6232).

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether::decode::pipeline::{DecodeOptions, decode_capture, flow_table};
use tether::flow::EndKind;
use tether::live::faults::{DropHow, FaultPlan, KillHow, Latency, Window, parse_window};
use tether::live::monitor::Basis;
use tether::live::{Line, LiveConfig, LiveReport};
use tether::timeline::{CloseKind, EventKind, Micros};
use tether::verdict::Outcome;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn pcap_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// What the echo server saw of its one connection.
#[derive(Debug, Default, Clone)]
struct ServerSaw {
    texts: usize,
    pings: usize,
    /// How the connection ended for it: "reset", "closed", "eof", or None
    /// while still open.
    end: Option<String>,
}

/// A WebSocket echo server: text back as text, pings answered by
/// tungstenite itself. Serves one connection.
async fn echo_server(port: u16) -> Arc<Mutex<ServerSaw>> {
    let saw = Arc::new(Mutex::new(ServerSaw::default()));
    let listener = TcpListener::bind(addr(port)).await.unwrap();
    let s = saw.clone();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    s.lock().unwrap().texts += 1;
                    if ws.send(Message::Text(t)).await.is_err() {
                        s.lock().unwrap().end = Some("reset".into());
                        break;
                    }
                }
                Some(Ok(Message::Ping(_))) => s.lock().unwrap().pings += 1,
                Some(Ok(Message::Close(_))) => {
                    s.lock().unwrap().end = Some("closed".into());
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    s.lock().unwrap().end = Some(classify(&e));
                    break;
                }
                None => {
                    s.lock().unwrap().end = Some("eof".into());
                    break;
                }
            }
        }
    });
    saw
}

fn classify(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => "reset".into(),
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => "eof".into(),
        Error::ConnectionClosed | Error::AlreadyClosed => "closed".into(),
        other => format!("error: {other}"),
    }
}

/// Runs the proxy in the background; returns its address, the lines it
/// printed, a stop trigger and its report.
async fn start_proxy(
    listen: u16,
    upstream: u16,
    pcap: PathBuf,
    plan: FaultPlan,
) -> (
    SocketAddr,
    Arc<Mutex<Vec<String>>>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<LiveReport>,
) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    let printer: tether::live::Printer = Arc::new(move |line: Line| {
        let text = match line {
            Line::Info(s) => s,
            Line::Finding(at, f) => format!("T+{:.3}s finding {f}", at.as_secs_f64()),
            Line::Status(v) => v.join("\n"),
        };
        l.lock().unwrap().push(text);
    });
    let cfg = LiveConfig {
        listen: addr(listen),
        upstream: format!("127.0.0.1:{upstream}"),
        pcap,
        plan,
        seed: 7,
        profile_timers: vec![("ping_interval".into(), Micros(15_000_000))],
        duration: Some(Duration::from_secs(30)),
        status_every: Duration::from_millis(200),
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        tether::live::run(
            cfg,
            printer,
            async {
                let _ = stop_rx.await;
            },
            Some(ready_tx),
        )
        .await
        .unwrap()
    });
    let bound = ready_rx.await.unwrap();
    (bound, lines, stop_tx, task)
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connect(proxy: SocketAddr) -> Ws {
    let sock = TcpStream::connect(proxy).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{proxy}/echo"), sock)
        .await
        .unwrap();
    ws
}

/// Three rounds of a text echo and a ping, as a chatty client does.
/// Returns when the last answer arrived.
async fn chat(ws: &mut Ws) -> Instant {
    let mut last = Instant::now();
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        ws.send(Message::Ping(vec![i as u8].into())).await.unwrap();
        let mut got_text = false;
        let mut got_pong = false;
        while !(got_text && got_pong) {
            match timeout(Duration::from_secs(2), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    assert_eq!(t.as_str(), format!("hello {i}"));
                    got_text = true;
                }
                Ok(Some(Ok(Message::Pong(p)))) => {
                    assert_eq!(&p[..], &[i as u8]);
                    got_pong = true;
                }
                other => panic!("round {i}: unexpected {other:?}"),
            }
            last = Instant::now();
        }
        sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Reads until the connection ends; how it ended and when.
async fn read_to_end(ws: &mut Ws, limit: Duration) -> (String, Instant) {
    loop {
        match timeout(limit, ws.next()).await {
            Err(_) => return ("still open".into(), Instant::now()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return (classify(&e), Instant::now()),
            Ok(None) => return ("eof".into(), Instant::now()),
        }
    }
}

fn rst_times(file: &[u8]) -> Vec<Micros> {
    let report = decode_capture(
        file,
        "live.pcap",
        DecodeOptions {
            keep_events: true,
            ..Default::default()
        },
    )
    .unwrap();
    report.connections[0]
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Close(CloseKind::Rst)))
        .map(|e| e.at)
        .collect()
}

/// The recording decodes, as a file, exactly as the live decode saw it.
fn assert_file_matches_live(report: &LiveReport) -> Vec<u8> {
    let file = std::fs::read(&report.pcap).unwrap();
    let from_file = decode_capture(&file[..], "live.pcap", DecodeOptions::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&report.decoded).unwrap(),
        serde_json::to_value(&from_file.connections).unwrap(),
        "live decode and file decode differ"
    );
    assert!(
        from_file.diagnostics.is_empty(),
        "{:?}",
        from_file.diagnostics
    );
    file
}

#[tokio::test]
async fn idle_drop_with_rst_is_named_and_recorded_at_the_fault_time() {
    let server = echo_server(6211).await;
    let plan = FaultPlan {
        idle: Some((Micros(2_000_000), DropHow::Rst)),
        ..FaultPlan::default()
    };
    let (proxy, lines, stop, task) =
        start_proxy(6210, 6211, pcap_path("idle-rst.pcap"), plan).await;
    let mut ws = connect(proxy).await;
    // The client now goes quiet; the proxy's idle timer must end it.
    let quiet_from = chat(&mut ws).await;
    let (how, when) = read_to_end(&mut ws, Duration::from_secs(6)).await;
    assert_eq!(how, "reset", "the client saw {how}");
    let waited = when - quiet_from;
    assert!(
        waited >= Duration::from_millis(1950) && waited < Duration::from_millis(3000),
        "reset after {waited:?} of quiet"
    );
    sleep(Duration::from_millis(200)).await;
    assert_eq!(server.lock().unwrap().end.as_deref(), Some("reset"));
    assert_eq!(server.lock().unwrap().texts, 3);
    assert_eq!(server.lock().unwrap().pings, 3);
    let _ = stop.send(());
    let report = task.await.unwrap();

    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Disconnected, "{}", v.to_text());
    assert_eq!(
        v.cause.as_deref(),
        Some("lb.idle_timeout"),
        "{}",
        v.to_text()
    );
    assert_eq!(v.basis, Basis::Observed);
    let c = &v.connections[0];
    assert_eq!(c.stack, "tcp/ws", "{}", v.to_text());
    let at = v.at.unwrap();
    let last = c.last_heard_c2s.unwrap().max(c.last_heard_s2c.unwrap());
    assert!(
        (at - last - 2.0).abs() < 0.2,
        "fired at {at}, last data {last}"
    );
    assert!(
        c.client_saw
            .iter()
            .any(|s| s.what.starts_with("RST") && s.at == at)
    );
    assert!(
        c.server_saw
            .iter()
            .any(|s| s.what.starts_with("RST") && s.at == at)
    );
    let text = v.to_text();
    assert!(text.starts_with("DISCONNECTED at T+"), "{text}");
    assert!(
        text.contains("lb.idle_timeout on connection #0 (observed)"),
        "{text}"
    );
    let printed = lines.lock().unwrap().join("\n");
    assert!(
        printed.contains("idle drop fired (lb.idle_timeout, Rst)"),
        "{printed}"
    );
    assert!(
        printed.contains("idle_drop in "),
        "no status line: {printed}"
    );
    assert!(
        printed.contains("ping_interval"),
        "no profile timer: {printed}"
    );

    let file = assert_file_matches_live(&report);
    let decoded = &report.decoded[0];
    assert_eq!(decoded.stack, vec!["tcp", "ws"]);
    assert_eq!((decoded.c2s.pings, decoded.s2c.pongs), (3, 3));
    assert_eq!(decoded.counts.c2s.get("text"), Some(&3));
    assert_eq!(decoded.counts.s2c.get("text"), Some(&3));
    // Both RSTs (one to each side) at the fault time, on the file's clock.
    let fault_abs = report.start_epoch.0 + (at * 1e6).round() as u64;
    let rsts = rst_times(&file);
    assert_eq!(rsts.len(), 2, "{rsts:?}");
    for r in rsts {
        assert!(
            r.0.abs_diff(fault_abs) <= 1,
            "RST at {r:?}, fault at {fault_abs}"
        );
    }
    let flows = flow_table(&file[..], "live.pcap", Default::default()).unwrap();
    assert_eq!(flows.rows.len(), 1);
    assert_eq!(flows.rows[0].end, EndKind::Rst);
    assert_eq!(flows.rows[0].server, "127.0.0.1:6211");
    // The recording, triaged like any capture, names the same cause.
    let tr = tether::triage::triage_reader(
        &file[..],
        "live.pcap",
        false,
        &tether::triage::TriageOptions::default(),
    )
    .unwrap();
    assert_eq!(tr.cause.as_deref(), Some("lb.idle_timeout"));
    let st = &tr.sessions[tr.primary.unwrap()];
    let lb = st.environment.as_ref().unwrap().lb.as_ref().unwrap();
    assert_eq!(
        lb.idle_timeout.0,
        Micros(2_000_000),
        "the fitted idle timeout"
    );
}

#[tokio::test]
async fn silent_idle_drop_resets_whoever_speaks_next_and_leaves_the_other_half_open() {
    let server = echo_server(6213).await;
    let plan = FaultPlan {
        idle: Some((Micros(1_000_000), DropHow::Silent)),
        ..FaultPlan::default()
    };
    let (proxy, _lines, stop, task) =
        start_proxy(6212, 6213, pcap_path("idle-silent.pcap"), plan).await;
    let mut ws = connect(proxy).await;
    chat(&mut ws).await;
    // Quiet past the timeout: nothing tells the client anything.
    let (how, _) = read_to_end(&mut ws, Duration::from_millis(1800)).await;
    assert_eq!(how, "still open");
    // Now it speaks, and a forgotten connection answers with a RST.
    ws.send(Message::text("anyone?")).await.unwrap();
    let (how, _) = read_to_end(&mut ws, Duration::from_secs(3)).await;
    assert_eq!(how, "reset");
    sleep(Duration::from_millis(200)).await;
    // The server was never told: half-open from its side.
    assert_eq!(server.lock().unwrap().end, None);
    assert_eq!(server.lock().unwrap().texts, 3);
    let _ = stop.send(());
    let report = task.await.unwrap();
    let v = &report.verdict;
    assert_eq!(
        v.cause.as_deref(),
        Some("lb.idle_timeout"),
        "{}",
        v.to_text()
    );
    let c = &v.connections[0];
    assert!(
        c.client_saw
            .iter()
            .any(|s| s.what.starts_with("RST in answer to its") && s.at > v.at.unwrap()),
        "{}",
        v.to_text()
    );
    assert!(c.server_saw.is_empty(), "{}", v.to_text());
    let file = assert_file_matches_live(&report);
    // One RST, toward the client, when it spoke — not at the timeout.
    let rsts = rst_times(&file);
    assert_eq!(rsts.len(), 1);
    let fault_abs = report.start_epoch.0 + (v.at.unwrap() * 1e6).round() as u64;
    assert!(rsts[0].0 > fault_abs + 500_000, "{rsts:?} vs {fault_abs}");
}

#[tokio::test]
async fn blackhole_holds_traffic_then_lets_it_through_and_latency_delays_it() {
    let _server = echo_server(6215).await;
    let plan = FaultPlan {
        blackholes: vec![parse_window("1500ms..2500ms").unwrap()],
        latency: Some((
            Latency {
                delay: Micros(150_000),
                jitter: Micros(20_000),
            },
            Window::ALWAYS,
        )),
        ..FaultPlan::default()
    };
    let (proxy, lines, stop, task) =
        start_proxy(6214, 6215, pcap_path("blackhole.pcap"), plan).await;
    let t0 = Instant::now();
    let mut ws = connect(proxy).await;
    // Each way is delayed 150-170 ms: an echo takes at least 300 ms.
    let sent = Instant::now();
    ws.send(Message::text("slow")).await.unwrap();
    let got = timeout(Duration::from_secs(2), ws.next()).await.unwrap();
    assert!(matches!(got, Some(Ok(Message::Text(_)))), "{got:?}");
    let rtt = sent.elapsed();
    assert!(rtt >= Duration::from_millis(300), "echo in {rtt:?}");
    // Inside the blackhole nothing comes back until it ends.
    sleep((t0 + Duration::from_millis(1700)).saturating_duration_since(Instant::now())).await;
    ws.send(Message::text("into the hole")).await.unwrap();
    let got = timeout(Duration::from_secs(3), ws.next()).await.unwrap();
    assert!(matches!(got, Some(Ok(Message::Text(_)))), "{got:?}");
    let back = t0.elapsed();
    assert!(back >= Duration::from_millis(2500), "answer at {back:?}");
    let _ = stop.send(());
    let report = task.await.unwrap();
    let v = &report.verdict;
    assert_eq!(v.outcome, Outcome::Survived, "{}", v.to_text());
    let c = &v.connections[0];
    assert!(c.why.contains("survived network.outage"), "{}", c.why);
    assert!(
        c.client_saw.iter().any(|s| s.what.contains("half-open")),
        "{}",
        v.to_text()
    );
    let printed = lines.lock().unwrap().join("\n");
    assert!(printed.contains("blackhole on"), "{printed}");
    assert!(printed.contains("blackhole off"), "{printed}");
    assert_file_matches_live(&report);
}

#[tokio::test]
async fn kill_with_fin_closes_both_sides_and_is_named() {
    let server = echo_server(6217).await;
    let plan = FaultPlan {
        kills: vec![tether::live::faults::Kill {
            at: Micros(1_000_000),
            every: None,
            how: KillHow::Fin,
        }],
        ..FaultPlan::default()
    };
    let (proxy, _lines, stop, task) = start_proxy(6216, 6217, pcap_path("kill.pcap"), plan).await;
    let mut ws = connect(proxy).await;
    chat(&mut ws).await;
    let (how, _) = read_to_end(&mut ws, Duration::from_secs(3)).await;
    // A FIN with no close frame: tungstenite calls that a reset without
    // closing handshake, which `classify` names eof.
    assert_eq!(how, "eof");
    sleep(Duration::from_millis(200)).await;
    assert_eq!(server.lock().unwrap().end.as_deref(), Some("eof"));
    let _ = stop.send(());
    let report = task.await.unwrap();
    let v = &report.verdict;
    assert_eq!(v.cause.as_deref(), Some("relay.killed"), "{}", v.to_text());
    assert!((v.at.unwrap() - 1.0).abs() < 0.1, "{}", v.to_text());
    let file = assert_file_matches_live(&report);
    let flows = flow_table(&file[..], "live.pcap", Default::default()).unwrap();
    assert_eq!(flows.rows[0].end, EndKind::Fin);
}

#[tokio::test]
async fn dropping_ws_control_frames_loses_pongs_but_not_data_and_is_named() {
    let server = echo_server(6219).await;
    let plan = FaultPlan {
        ws: Some((tether::live::faults::WsMode::DropControl, Window::ALWAYS)),
        ..FaultPlan::default()
    };
    let (proxy, _lines, stop, task) =
        start_proxy(6218, 6219, pcap_path("ws-drop-control.pcap"), plan).await;
    let mut ws = connect(proxy).await;
    ws.send(Message::Ping(vec![1].into())).await.unwrap();
    ws.send(Message::text("data")).await.unwrap();
    let got = timeout(Duration::from_secs(2), ws.next()).await.unwrap();
    assert!(matches!(got, Some(Ok(Message::Text(_)))), "{got:?}");
    // No pong ever comes: the server never even saw the ping.
    let more = timeout(Duration::from_millis(500), ws.next()).await;
    assert!(more.is_err(), "{more:?}");
    assert_eq!(server.lock().unwrap().pings, 0);
    assert_eq!(server.lock().unwrap().texts, 1);
    // The client gives up the way a pong deadline does: it drops the
    // socket (a close frame would be eaten too: it is a control frame).
    drop(ws);
    sleep(Duration::from_millis(300)).await;
    assert_eq!(server.lock().unwrap().end.as_deref(), Some("eof"));
    let _ = stop.send(());
    let report = task.await.unwrap();
    let v = &report.verdict;
    assert_eq!(
        v.cause.as_deref(),
        Some("relay.ws_control_dropped"),
        "{}",
        v.to_text()
    );
    assert_eq!(v.basis, Basis::Inferred, "{}", v.to_text());
    // The recording holds what was delivered: the ping is not in it.
    assert_file_matches_live(&report);
    assert_eq!(report.decoded[0].c2s.pings, 0);
    assert_eq!(report.decoded[0].counts.c2s.get("text"), Some(&1));
}

#[tokio::test]
async fn a_refuse_window_closes_the_listener_then_accepts_again() {
    let _server = echo_server(6236).await;
    let plan = FaultPlan {
        refuse: vec![parse_window("0s..1s").unwrap()],
        ..FaultPlan::default()
    };
    let (proxy, lines, stop, task) = start_proxy(6235, 6236, pcap_path("refuse.pcap"), plan).await;
    let e = TcpStream::connect(proxy).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    sleep(Duration::from_millis(1300)).await;
    let mut ws = connect(proxy).await;
    ws.send(Message::text("back")).await.unwrap();
    let got = timeout(Duration::from_secs(2), ws.next()).await.unwrap();
    assert!(matches!(got, Some(Ok(Message::Text(_)))), "{got:?}");
    let _ = stop.send(());
    let report = task.await.unwrap();
    let printed = lines.lock().unwrap().join("\n");
    assert!(
        printed.contains("refusing new connections from T+0.000 until T+1.000"),
        "{printed}"
    );
    assert!(printed.contains("accepting again at T+1.0"), "{printed}");
    assert_eq!(report.verdict.refused_windows.len(), 1);
    assert_eq!(report.verdict.connections.len(), 1);
}

/// The binary: flags parsed, `--duration` ends it, the verdict printed and
/// written as JSON.
#[tokio::test]
async fn the_cli_runs_for_its_duration_and_prints_the_verdict() {
    let _server = echo_server(6238).await;
    let pcap = pcap_path("cli.pcap");
    let json = pcap_path("cli.json");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.args([
        "proxy",
        "--listen",
        "127.0.0.1:6237",
        "--upstream",
        "127.0.0.1:6238",
    ])
    .args(["--idle-drop", "1s", "--duration", "2500ms", "--seed", "3"])
    .args([
        "--profile",
        "runner-ws@ping-only",
        "--status-every",
        "500ms",
    ])
    .arg("--record")
    .arg(&pcap)
    .arg("--json")
    .arg(&json);
    let child = tokio::task::spawn_blocking(move || cmd.output());
    let client = async {
        sleep(Duration::from_millis(500)).await;
        let mut ws = connect(addr(6237)).await;
        chat(&mut ws).await;
        read_to_end(&mut ws, Duration::from_secs(3)).await.0
    };
    let (out, how) = tokio::join!(child, client);
    let out = out.unwrap().unwrap();
    assert_eq!(how, "reset");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("DISCONNECTED at T+"), "{stdout}");
    assert!(
        stdout.contains("lb.idle_timeout on connection #0 (observed)"),
        "{stdout}"
    );
    assert!(stderr.contains("seed 3"), "{stderr}");
    assert!(stderr.contains("pong_wait in"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // The verdict file has the shape its published schema says.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("schemas/proxy.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(v["cause"], "lb.idle_timeout");
    assert_eq!(v["seed"], 3);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:6239",
            "--upstream",
            "127.0.0.1:1",
        ])
        .args(["--blackhole", "10s"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected FROM..TO"));
}

/// One row of a `live-*.pcap.tshark.txt` dump.
struct TsharkRow {
    time: f64,
    src_port: u16,
    flags: String,
    len: u64,
}

fn tshark_rows(path: &str) -> Vec<TsharkRow> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            TsharkRow {
                time: f[1].parse().unwrap(),
                src_port: f[2].parse().unwrap(),
                flags: f[4].to_string(),
                len: f[5].parse().unwrap(),
            }
        })
        .collect()
}

/// The recording of a real noVNC session (headless Chromium → proxy →
/// websockify → Xvnc, corpora/record/live-novnc-idle.sh) with a 60 s idle
/// drop: tshark and tether agree on it frame for frame, and its RSTs sit
/// where the live verdict put the fault, 60 s after the last data.
#[test]
fn recorded_novnc_idle_drop_agrees_with_tshark_and_the_live_verdict() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/recorded/");
    let pcap = std::fs::read(format!("{dir}live-novnc-idle.pcap")).unwrap();
    let rows = tshark_rows(&format!("{dir}live-novnc-idle.pcap.tshark.txt"));
    let verdict: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}live-novnc-idle.verdict.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(verdict["cause"], "lb.idle_timeout");
    assert_eq!(verdict["outcome"], "disconnected");
    let fault_at = verdict["started_at_epoch"].as_f64().unwrap() + verdict["at"].as_f64().unwrap();

    let report =
        decode_capture(&pcap[..], "live-novnc-idle.pcap", DecodeOptions::default()).unwrap();
    assert_eq!(report.stats.frames as usize, rows.len());
    assert_eq!(report.connections.len(), 1);
    let c = &report.connections[0];
    assert_eq!(c.stack, vec!["tcp", "ws", "rfb"]);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    let flows = flow_table(&pcap[..], "live-novnc-idle.pcap", Default::default()).unwrap();
    let row = &flows.rows[0];
    let server_port = 6221;
    let bytes = |from_server: bool| -> u64 {
        rows.iter()
            .filter(|r| (r.src_port == server_port) == from_server)
            .map(|r| r.len)
            .sum()
    };
    assert_eq!((row.bytes_c2s, row.bytes_s2c), (bytes(false), bytes(true)));
    assert_eq!(row.end, EndKind::Rst);
    // Both RSTs, one to each side, at the fault time (the dump has ns, the
    // verdict µs).
    let rsts: Vec<&TsharkRow> = rows.iter().filter(|r| r.flags.contains('R')).collect();
    assert_eq!(rsts.len(), 2);
    for r in &rsts {
        assert!(
            (r.time - fault_at).abs() < 2e-6,
            "RST at {} vs fault {fault_at}",
            r.time
        );
    }
    let last_data = rows
        .iter()
        .filter(|r| r.len > 0)
        .map(|r| r.time)
        .fold(0.0, f64::max);
    let idle = rsts[0].time - last_data;
    assert!(
        (60.0..60.1).contains(&idle),
        "idle for {idle} s before the drop"
    );
}

/// The recording of a real SPICE session (remote-viewer → proxy → QEMU,
/// corpora/record/live-spice-blackhole.sh) blackholed from T+60 s to
/// T+150 s: nothing crosses inside the window, all four channels decode as
/// SPICE without findings, and the server's FINs, which the proxy heard at
/// the verdict's time (its main-channel connectivity timer, ≈75 s after
/// the last client byte, protocol-facts §1.16), were delivered only when
/// the path came back.
#[test]
fn recorded_spice_blackhole_holds_everything_inside_the_window() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/recorded/");
    let pcap = std::fs::read(format!("{dir}live-spice-blackhole.pcap")).unwrap();
    let rows = tshark_rows(&format!("{dir}live-spice-blackhole.pcap.tshark.txt"));
    let verdict: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}live-spice-blackhole.verdict.json")).unwrap(),
    )
    .unwrap();
    // Recorded before live mode took the one vocabulary: its
    // `network.blackhole` is today's `network.outage`.
    assert_eq!(verdict["cause"], "network.blackhole");
    assert_eq!(verdict["basis"], "inferred");
    let start = verdict["started_at_epoch"].as_f64().unwrap();
    let heard_close = start + verdict["at"].as_f64().unwrap();
    assert!((start + 60.0..start + 150.0).contains(&heard_close));

    let report = decode_capture(
        &pcap[..],
        "live-spice-blackhole.pcap",
        DecodeOptions::default(),
    )
    .unwrap();
    assert_eq!(report.stats.frames as usize, rows.len());
    assert_eq!(report.connections.len(), 4);
    for c in &report.connections {
        assert_eq!(c.stack, vec!["tcp", "spice"]);
        assert!(c.findings.is_empty(), "{:?}", c.findings);
    }
    let inside = |r: &&TsharkRow| r.time >= start + 60.0 && r.time < start + 150.0;
    assert_eq!(
        rows.iter().filter(inside).count(),
        0,
        "frames inside the blackhole"
    );
    let server_fins: Vec<&TsharkRow> = rows
        .iter()
        .filter(|r| r.src_port == 6232 && r.flags.contains('F'))
        .collect();
    assert_eq!(server_fins.len(), 4);
    for f in server_fins {
        assert!(
            f.time >= start + 150.0 && f.time > heard_close + 25.0,
            "{}",
            f.time
        );
    }
}

#[tokio::test]
async fn a_bandwidth_cap_paces_delivery() {
    let _server = echo_server(6241).await;
    let plan = FaultPlan {
        bandwidth: Some((16 * 1024, Window::ALWAYS)),
        ..FaultPlan::default()
    };
    let (proxy, _lines, stop, task) =
        start_proxy(6240, 6241, pcap_path("bandwidth.pcap"), plan).await;
    let mut ws = connect(proxy).await;
    // 8 KiB each way at 16 KiB/s: half a second each way.
    let big = "x".repeat(8 * 1024);
    let sent = Instant::now();
    ws.send(Message::text(big.clone())).await.unwrap();
    let got = timeout(Duration::from_secs(5), ws.next()).await.unwrap();
    let rtt = sent.elapsed();
    assert!(matches!(&got, Some(Ok(Message::Text(t))) if t.len() == big.len()));
    assert!(rtt >= Duration::from_millis(800), "8 KiB echoed in {rtt:?}");
    assert!(rtt < Duration::from_millis(2500), "8 KiB echoed in {rtt:?}");
    let _ = stop.send(());
    let report = task.await.unwrap();
    assert_file_matches_live(&report);
}

/// Ctrl-C (SIGINT) ends the proxy gracefully: verdict printed, recording
/// complete.
#[test]
fn sigint_stops_the_cli_with_a_verdict_and_a_readable_recording() {
    let pcap = pcap_path("sigint.pcap");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:6242",
            "--upstream",
            "127.0.0.1:6243",
        ])
        .arg("--record")
        .arg(&pcap)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("SURVIVED"), "{stdout}");
    let file = std::fs::read(&pcap).unwrap();
    // A pcap header and nothing else: no connection came.
    assert_eq!(file.len(), 24);
    let report = decode_capture(&file[..], "sigint.pcap", DecodeOptions::default()).unwrap();
    assert!(report.connections.is_empty());
}

/// A proxy whose upstream refuses every connect forwards nothing: the
/// client is reset and the verdict is a dead session caused by the
/// unreachable upstream, naming the address, never "survived".
#[tokio::test]
async fn an_unreachable_upstream_is_a_dead_session() {
    // Nothing listens on 6245.
    let (proxy, _lines, stop, task) = start_proxy(
        6244,
        6245,
        pcap_path("unreachable.pcap"),
        FaultPlan::default(),
    )
    .await;
    let mut client = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let mut buf = [0u8; 8];
    let got = tokio::io::AsyncReadExt::read(&mut client, &mut buf).await;
    assert!(matches!(got, Ok(0) | Err(_)), "{got:?}");
    let _ = stop.send(());
    let v = task.await.unwrap().verdict;
    assert_eq!(v.outcome, Outcome::DeadSession, "{}", v.to_text());
    assert_eq!(v.cause.as_deref(), Some("upstream.unreachable"));
    assert_eq!(v.upstream_unreachable.len(), 1);
    assert!(v.upstream_unreachable[0].error.contains("127.0.0.1:6245"));
    assert!(v.to_text().contains("could not reach the upstream"));
}
