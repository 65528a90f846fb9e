//! `tether proxy --listen ADDR --upstream HOST:PORT [faults...]`: forward a
//! real session, record it, inject faults, print findings and a status
//! line as it runs, and a verdict on Ctrl-C or after `--duration`.
//! Exit status: 0 after a run (whatever the verdict), 2 on bad arguments
//! or when the proxy cannot start.

use crate::live::faults::{
    FaultPlan, Window, WsMode, parse_idle, parse_kill, parse_latency, parse_rate, parse_window,
};
use crate::live::{Line, LiveConfig};
use crate::model::duration::parse_duration;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Address to accept clients on, e.g. 127.0.0.1:6200.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The real server, HOST:PORT.
    #[arg(long)]
    pub upstream: String,
    /// Where the recording goes (pcap, synthetic TCP/IP headers, real timestamps).
    #[arg(long, default_value = "tether-live.pcap")]
    pub record: PathBuf,
    /// Client profile whose timers the status line shows, e.g. runner-ws@ping-only.
    #[arg(long)]
    pub profile: Option<String>,
    /// Override a profile constant, e.g. `--set ping_interval=10s`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Drop a connection after this long without data either way:
    /// `60s` (RST both sides), `60s:silent` (RST whoever speaks next).
    #[arg(long, value_name = "DUR[:rst|:silent]")]
    pub idle_drop: Option<String>,
    /// Stop forwarding both ways, sockets kept open: `60s..90s`, `60s..`, `60s..70s/5m`.
    #[arg(long, value_name = "FROM..TO[/EVERY]")]
    pub blackhole: Vec<String>,
    /// Added delay per chunk, with optional jitter: `100ms` or `100ms+50ms`.
    #[arg(long, value_name = "DELAY[+JITTER]")]
    pub latency: Option<String>,
    /// Bytes per second each way: `65536`, `64k`, `1m`.
    #[arg(long, value_name = "RATE")]
    pub bandwidth: Option<String>,
    /// Kill every open connection: `30s`, `30s:fin`, `30s:rst/10m`.
    #[arg(long, value_name = "AT[:rst|:fin][/EVERY]")]
    pub kill: Vec<String>,
    /// Refuse new connections (listener closed) in a window: `10s..20s`.
    #[arg(long, value_name = "FROM..TO[/EVERY]")]
    pub refuse: Vec<String>,
    /// Pass only WebSocket control frames (ping, pong, close).
    #[arg(long, value_name = "FROM..TO", num_args = 0..=1, default_missing_value = "0s..")]
    pub ws_control_only: Option<String>,
    /// Drop WebSocket control frames (heartbeats lost, data passes).
    #[arg(long, value_name = "FROM..TO", num_args = 0..=1, default_missing_value = "0s..")]
    pub ws_drop_control: Option<String>,
    /// A TOML fault file (see `live::faults::FaultFile`); adds to the flags.
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    /// Seed of the jitter RNG (printed; default from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop by itself after this long, e.g. `90s`.
    #[arg(long)]
    pub duration: Option<String>,
    /// Write the verdict as JSON here too.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How often the status line is printed when not on a terminal.
    #[arg(long, default_value = "10s")]
    pub status_every: String,
}

fn plan(args: &Args) -> Result<(FaultPlan, Option<u64>), String> {
    let mut p = FaultPlan::default();
    let mut seed = None;
    if let Some(f) = &args.faults {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("--faults {}: {e}", f.display()))?;
        seed = p.add_file(&text, &f.display().to_string())?;
    }
    if let Some(s) = &args.idle_drop {
        p.idle = Some(parse_idle(s).map_err(|e| format!("--idle-drop {s}: {e}"))?);
    }
    for b in &args.blackhole {
        p.blackholes
            .push(parse_window(b).map_err(|e| format!("--blackhole {b}: {e}"))?);
    }
    if let Some(l) = &args.latency {
        let lat = parse_latency(l).map_err(|e| format!("--latency {l}: {e}"))?;
        p.latency = Some((lat, Window::ALWAYS));
    }
    if let Some(b) = &args.bandwidth {
        let rate = parse_rate(b).map_err(|e| format!("--bandwidth {b}: {e}"))?;
        p.bandwidth = Some((rate, Window::ALWAYS));
    }
    for k in &args.kill {
        p.kills
            .push(parse_kill(k).map_err(|e| format!("--kill {k}: {e}"))?);
    }
    for r in &args.refuse {
        p.refuse
            .push(parse_window(r).map_err(|e| format!("--refuse {r}: {e}"))?);
    }
    match (&args.ws_control_only, &args.ws_drop_control) {
        (Some(_), Some(_)) => {
            return Err("--ws-control-only and --ws-drop-control exclude each other".into());
        }
        (Some(w), None) => {
            let win = parse_window(w).map_err(|e| format!("--ws-control-only {w}: {e}"))?;
            p.ws = Some((WsMode::ControlOnly, win));
        }
        (None, Some(w)) => {
            let win = parse_window(w).map_err(|e| format!("--ws-drop-control {w}: {e}"))?;
            p.ws = Some((WsMode::DropControl, win));
        }
        (None, None) => {}
    }
    Ok((p, seed))
}

pub fn run(args: Args) -> ExitCode {
    let fail = |m: String| {
        eprintln!("tether proxy: {m}");
        ExitCode::from(2)
    };
    let (plan, file_seed) = match plan(&args) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let profile_timers = match &args.profile {
        Some(p) => match crate::live::profile_timers(p, &args.set, plan.idle.map(|(d, _)| d)) {
            Ok(t) => t,
            Err(e) => return fail(format!("--profile {p} / --set: {e}")),
        },
        None if !args.set.is_empty() => return fail("--set needs --profile".into()),
        None => Vec::new(),
    };
    let duration = match args.duration.as_deref().map(parse_duration).transpose() {
        Ok(d) => d.map(|d| Duration::from_micros(d.0)),
        Err(e) => return fail(format!("--duration: {e}")),
    };
    let status_every = match parse_duration(&args.status_every) {
        Ok(d) if d.0 > 0 => Duration::from_micros(d.0),
        Ok(_) => return fail("--status-every must be positive".into()),
        Err(e) => return fail(format!("--status-every: {e}")),
    };
    // The one place a seed may come from the clock; it is printed.
    let seed = args.seed.or(file_seed).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let tty = std::io::stderr().is_terminal();
    let cfg = LiveConfig {
        listen: args.listen,
        upstream: args.upstream.clone(),
        pcap: args.record.clone(),
        plan,
        seed,
        profile_timers,
        duration,
        // On a terminal the status line is redrawn every second.
        status_every: if tty {
            Duration::from_secs(1)
        } else {
            status_every
        },
    };
    let printer: crate::live::Printer = Arc::new(move |line: Line| {
        let mut err = std::io::stderr().lock();
        if tty {
            // Clear the status line before anything else is printed.
            let _ = write!(err, "\r\x1b[J");
        }
        match line {
            Line::Info(s) => {
                let _ = writeln!(err, "{s}");
            }
            Line::Finding(at, f) => {
                let _ = writeln!(err, "T+{:.3} finding {f}", at.as_secs_f64());
            }
            Line::Status(lines) if tty => {
                let text = lines.join("\n");
                let _ = write!(err, "{text}");
                // Back to the first status line, so the next print replaces it.
                if lines.len() > 1 {
                    let _ = write!(err, "\x1b[{}A", lines.len() - 1);
                }
                let _ = write!(err, "\r");
            }
            Line::Status(lines) => {
                for l in lines {
                    let _ = writeln!(err, "status {l}");
                }
            }
        }
        let _ = err.flush();
    });
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let report = rt.block_on(crate::live::run(
        cfg,
        printer.clone(),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        None,
    ));
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    printer(Line::Info(String::new()));
    out!("{}", report.verdict.to_text());
    outln!("recording: {}", report.pcap.display());
    if let Some(path) = &args.json
        && let Err(e) = std::fs::write(path, report.verdict.to_json())
    {
        return fail(format!("{}: {e}", path.display()));
    }
    ExitCode::SUCCESS
}
