//! The faults the live proxy injects, as a plan read from flags and/or a
//! TOML file, and the WebSocket frame filter. Sans-IO: times are
//! [`Micros`] since the proxy started, and nothing here reads a clock.

use crate::decode::ws::frame::{MAX_HEADER_LEN, header_len, parse_header};
use crate::model::duration::{format_duration, parse_duration};
use crate::timeline::Micros;
use serde::Deserialize;

/// What a load balancer does to a connection idle for too long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropHow {
    /// RST to both sides at the timeout.
    Rst,
    /// Forget the connection: nothing is sent, and whichever side speaks
    /// next gets a RST (the other stays half-open).
    Silent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillHow {
    Rst,
    Fin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WsMode {
    /// Forward only control frames (ping, pong, close): data is lost.
    ControlOnly,
    /// Forward everything but control frames: heartbeats are lost.
    DropControl,
}

impl WsMode {
    /// The cause code the verdict uses when this filter ate frames.
    pub fn cause(self) -> &'static str {
        match self {
            WsMode::ControlOnly => "relay.ws_data_dropped",
            WsMode::DropControl => "relay.ws_control_dropped",
        }
    }
}

/// A window of proxy time, optionally repeating every `every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Micros,
    /// `None`: until the proxy stops.
    pub to: Option<Micros>,
    pub every: Option<Micros>,
}

impl Window {
    pub const ALWAYS: Window = Window {
        from: Micros::ZERO,
        to: None,
        every: None,
    };

    /// The occurrence in force or next to come at `t`: `(start, end)`.
    fn occurrence(&self, t: Micros) -> (Micros, Option<Micros>) {
        let len = self.to.map(|to| to.saturating_sub(self.from));
        match self.every {
            Some(p) if p.0 > 0 && t >= self.from => {
                let k = (t.0 - self.from.0) / p.0;
                let start = Micros(self.from.0 + k * p.0);
                match len {
                    Some(l) if Micros(start.0 + l.0) <= t => {
                        (Micros(start.0 + p.0), Some(Micros(start.0 + p.0 + l.0)))
                    }
                    _ => (start, len.map(|l| Micros(start.0 + l.0))),
                }
            }
            _ => (self.from, self.to),
        }
    }

    pub fn contains(&self, t: Micros) -> bool {
        let (start, end) = self.occurrence(t);
        start <= t && end.is_none_or(|e| t < e)
    }

    /// The first start or end strictly after `t`.
    pub fn next_edge(&self, t: Micros) -> Option<Micros> {
        let (start, end) = self.occurrence(t);
        if start > t {
            Some(start)
        } else {
            end.filter(|&e| e > t)
        }
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "T+{}..{}",
            format_duration(self.from),
            self.to
                .map_or("end".to_string(), |t| format!("T+{}", format_duration(t)))
        );
        if let Some(p) = self.every {
            s.push_str(&format!(" every {}", format_duration(p)));
        }
        s
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    pub delay: Micros,
    /// Uniform in `0..=jitter`, added to `delay`, drawn from the seeded RNG.
    pub jitter: Micros,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kill {
    pub at: Micros,
    pub every: Option<Micros>,
    pub how: KillHow,
}

impl Kill {
    /// The first kill strictly after `t`.
    pub fn next_after(&self, t: Micros) -> Option<Micros> {
        if self.at > t {
            return Some(self.at);
        }
        let p = self.every.filter(|p| p.0 > 0)?;
        let k = (t.0 - self.at.0) / p.0 + 1;
        Some(Micros(self.at.0 + k * p.0))
    }
}

/// Everything the proxy does to the traffic besides forwarding it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Idle timeout, reset by data either way (as cloud load balancers do).
    pub idle: Option<(Micros, DropHow)>,
    pub blackholes: Vec<Window>,
    pub latency: Option<(Latency, Window)>,
    /// Bytes per second, each direction.
    pub bandwidth: Option<(u64, Window)>,
    pub kills: Vec<Kill>,
    pub refuse: Vec<Window>,
    pub ws: Option<(WsMode, Window)>,
}

impl FaultPlan {
    pub fn is_empty(&self) -> bool {
        *self == FaultPlan::default()
    }

    pub fn blackholed(&self, t: Micros) -> bool {
        self.blackholes.iter().any(|w| w.contains(t))
    }

    /// The blackhole in force at `t`, if any.
    pub fn blackhole_at(&self, t: Micros) -> Option<&Window> {
        self.blackholes.iter().find(|w| w.contains(t))
    }

    pub fn refusing(&self, t: Micros) -> bool {
        self.refuse.iter().any(|w| w.contains(t))
    }

    pub fn latency_at(&self, t: Micros) -> Option<Latency> {
        self.latency.filter(|(_, w)| w.contains(t)).map(|(l, _)| l)
    }

    pub fn bandwidth_at(&self, t: Micros) -> Option<u64> {
        self.bandwidth
            .filter(|(_, w)| w.contains(t))
            .map(|(b, _)| b)
    }

    pub fn ws_at(&self, t: Micros) -> Option<WsMode> {
        self.ws.filter(|(_, w)| w.contains(t)).map(|(m, _)| m)
    }

    /// The next time after `t` at which a window opens or closes, so a
    /// connection wakes up to honour it.
    pub fn next_edge(&self, t: Micros) -> Option<Micros> {
        let windows = self
            .blackholes
            .iter()
            .chain(self.refuse.iter())
            .chain(self.latency.iter().map(|(_, w)| w))
            .chain(self.bandwidth.iter().map(|(_, w)| w))
            .chain(self.ws.iter().map(|(_, w)| w));
        windows.filter_map(|w| w.next_edge(t)).min()
    }

    /// The first kill strictly after `t`.
    pub fn next_kill(&self, t: Micros) -> Option<(Micros, KillHow)> {
        self.kills
            .iter()
            .filter_map(|k| k.next_after(t).map(|at| (at, k.how)))
            .min_by_key(|(at, _)| *at)
    }

    /// One line per fault, as the proxy prints them at start.
    pub fn describe(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some((d, how)) = self.idle {
            v.push(format!(
                "idle drop after {} without data ({})",
                format_duration(d),
                match how {
                    DropHow::Rst => "RST both sides",
                    DropHow::Silent => "silent; RST to whoever speaks next",
                }
            ));
        }
        for w in &self.blackholes {
            v.push(format!("blackhole {}", w.describe()));
        }
        if let Some((l, w)) = &self.latency {
            v.push(format!(
                "latency {} + jitter 0..{} {}",
                format_duration(l.delay),
                format_duration(l.jitter),
                w.describe()
            ));
        }
        if let Some((b, w)) = &self.bandwidth {
            v.push(format!("bandwidth {b} B/s each way {}", w.describe()));
        }
        for k in &self.kills {
            let mut s = format!(
                "kill with {} at T+{}",
                match k.how {
                    KillHow::Rst => "RST",
                    KillHow::Fin => "FIN",
                },
                format_duration(k.at)
            );
            if let Some(p) = k.every {
                s.push_str(&format!(" every {}", format_duration(p)));
            }
            v.push(s);
        }
        for w in &self.refuse {
            v.push(format!("refuse new connections {}", w.describe()));
        }
        if let Some((m, w)) = &self.ws {
            v.push(format!(
                "websocket: {} {}",
                match m {
                    WsMode::ControlOnly => "only control frames pass",
                    WsMode::DropControl => "control frames dropped",
                },
                w.describe()
            ));
        }
        v
    }

    /// Adds the faults of a TOML fault file (see [`FaultFile`]).
    pub fn add_file(&mut self, text: &str, file: &str) -> Result<Option<u64>, String> {
        let f: FaultFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            format!("{file}:{line}: {}", e.message().trim())
        })?;
        for (i, entry) in f.fault.iter().enumerate() {
            self.add_entry(entry)
                .map_err(|e| format!("{file}: fault #{}: {e}", i + 1))?;
        }
        Ok(f.seed)
    }

    fn add_entry(&mut self, e: &FaultEntry) -> Result<(), String> {
        let dur = |s: &Option<String>, what: &str| -> Result<Micros, String> {
            parse_duration(s.as_deref().ok_or_else(|| format!("needs `{what}`"))?)
        };
        let opt = |s: &Option<String>| s.as_deref().map(parse_duration).transpose();
        let window = || -> Result<Window, String> {
            Ok(Window {
                from: opt(&e.from)?.unwrap_or(Micros::ZERO),
                to: opt(&e.to)?,
                every: opt(&e.every)?,
            })
        };
        match e.kind.as_str() {
            "idle_drop" => {
                self.idle = Some((dur(&e.after, "after")?, e.drop.unwrap_or(DropHow::Rst)))
            }
            "blackhole" => self.blackholes.push(window()?),
            "latency" => {
                self.latency = Some((
                    Latency {
                        delay: dur(&e.delay, "delay")?,
                        jitter: opt(&e.jitter)?.unwrap_or(Micros::ZERO),
                    },
                    window()?,
                ))
            }
            "bandwidth" => {
                let b = e.bytes_per_sec.ok_or("needs `bytes_per_sec`")?;
                if b == 0 {
                    return Err("bytes_per_sec must be positive".into());
                }
                self.bandwidth = Some((b, window()?))
            }
            "kill" => self.kills.push(Kill {
                at: dur(&e.at, "at")?,
                every: opt(&e.every)?,
                how: e.how.unwrap_or(KillHow::Rst),
            }),
            "refuse" => self.refuse.push(window()?),
            "ws" => self.ws = Some((e.mode.ok_or("needs `mode`")?, window()?)),
            other => {
                return Err(format!(
                    "unknown kind `{other}` (known: idle_drop, blackhole, latency, bandwidth, kill, refuse, ws)"
                ));
            }
        }
        Ok(())
    }
}

/// A fault file:
///
/// ```toml
/// seed = 7
/// [[fault]]
/// kind = "idle_drop"     # after = "60s", drop = "rst" | "silent"
/// after = "60s"
/// [[fault]]
/// kind = "blackhole"     # from, to (optional), every (optional)
/// from = "60s"
/// to = "90s"
/// ```
///
/// Other kinds: `latency` (delay, jitter), `bandwidth` (bytes_per_sec),
/// `kill` (at, every, how = "rst" | "fin"), `refuse` (from, to, every),
/// `ws` (mode = "control_only" | "drop_control"). Windowed kinds take
/// from/to/every.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultFile {
    pub seed: Option<u64>,
    #[serde(default)]
    pub fault: Vec<FaultEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultEntry {
    pub kind: String,
    pub after: Option<String>,
    pub drop: Option<DropHow>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub every: Option<String>,
    pub at: Option<String>,
    pub how: Option<KillHow>,
    pub delay: Option<String>,
    pub jitter: Option<String>,
    pub bytes_per_sec: Option<u64>,
    pub mode: Option<WsMode>,
}

/// `60s`, `60s:rst` or `60s:silent`.
pub fn parse_idle(s: &str) -> Result<(Micros, DropHow), String> {
    let (d, how) = s.split_once(':').unwrap_or((s, "rst"));
    let how = match how {
        "rst" => DropHow::Rst,
        "silent" => DropHow::Silent,
        o => return Err(format!("idle drop `{o}`: expected rst or silent")),
    };
    Ok((parse_duration(d)?, how))
}

/// `FROM..TO`, `FROM..` (to the end) or `FROM..TO/EVERY`.
pub fn parse_window(s: &str) -> Result<Window, String> {
    let (range, every) = match s.split_once('/') {
        Some((r, e)) => (r, Some(parse_duration(e)?)),
        None => (s, None),
    };
    let (from, to) = range
        .split_once("..")
        .ok_or_else(|| format!("window `{s}`: expected FROM..TO, FROM.. or FROM..TO/EVERY"))?;
    let from = parse_duration(from)?;
    let to = if to.trim().is_empty() {
        None
    } else {
        Some(parse_duration(to)?)
    };
    if to.is_some_and(|t| t <= from) {
        return Err(format!("window `{s}`: ends before it starts"));
    }
    Ok(Window { from, to, every })
}

/// `30s`, `30s:fin`, `30s:rst/10m` (every 10 minutes).
pub fn parse_kill(s: &str) -> Result<Kill, String> {
    let (main, every) = match s.split_once('/') {
        Some((m, e)) => (m, Some(parse_duration(e)?)),
        None => (s, None),
    };
    let (at, how) = main.split_once(':').unwrap_or((main, "rst"));
    let how = match how {
        "rst" => KillHow::Rst,
        "fin" => KillHow::Fin,
        o => return Err(format!("kill `{o}`: expected rst or fin")),
    };
    Ok(Kill {
        at: parse_duration(at)?,
        every,
        how,
    })
}

/// `100ms` or `100ms+20ms` (delay plus up to this much jitter).
pub fn parse_latency(s: &str) -> Result<Latency, String> {
    let (d, j) = s.split_once('+').unwrap_or((s, "0s"));
    Ok(Latency {
        delay: parse_duration(d)?,
        jitter: parse_duration(j)?,
    })
}

/// Bytes per second: `65536`, `64k` (64,000), `64KiB/s` (65,536); sizes as
/// everywhere ([`crate::model::size`]).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    match crate::model::size::parse_size(t) {
        Ok(0) => Err(format!("rate `{s}` must be positive")),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("rate `{s}`: {e}")),
    }
}

/// Longest HTTP upgrade head the filter waits through before deciding the
/// stream is not WebSocket and passing it all.
const MAX_HTTP_HEAD: usize = 16 * 1024;

#[derive(Debug)]
enum FilterState {
    /// Not sure yet whether this is a WebSocket stream: the HTTP head,
    /// with how far into `\r\n\r\n` we are and how long it has been.
    Http {
        matched: usize,
        seen: usize,
    },
    Header {
        buf: [u8; MAX_HEADER_LEN],
        have: usize,
    },
    Body {
        remaining: u64,
        pass: bool,
    },
    /// Not WebSocket: everything passes.
    Opaque,
}

/// Drops whole WebSocket frames of one direction of one connection,
/// according to a [`WsMode`], after the HTTP upgrade. Bounded: it holds at
/// most one frame header.
#[derive(Debug)]
pub struct WsFilter {
    state: FilterState,
    pub passed_frames: u64,
    pub dropped_frames: u64,
}

impl Default for WsFilter {
    fn default() -> Self {
        WsFilter {
            state: FilterState::Http {
                matched: 0,
                seen: 0,
            },
            passed_frames: 0,
            dropped_frames: 0,
        }
    }
}

impl WsFilter {
    /// Appends to `out` what of `input` passes. `mode` is the mode in
    /// force now (`None`: pass everything, but keep track of frames).
    pub fn filter(&mut self, mode: Option<WsMode>, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match &mut self.state {
                FilterState::Opaque => {
                    out.extend_from_slice(input);
                    return;
                }
                FilterState::Http { matched, seen } => {
                    // The first bytes must be a request or response line.
                    let start = &input[..input.len().min(5usize.saturating_sub(*seen))];
                    let fits = |w: &[u8]| {
                        w.get(*seen..)
                            .is_some_and(|rest| rest.iter().zip(start).all(|(a, b)| a == b))
                    };
                    if !start.is_empty() && !fits(b"GET /") && !fits(b"HTTP/") {
                        self.state = FilterState::Opaque;
                        continue;
                    }
                    const END: &[u8] = b"\r\n\r\n";
                    let mut used = input.len();
                    for (i, &b) in input.iter().enumerate() {
                        *matched = if b == END[*matched] {
                            *matched + 1
                        } else if b == b'\r' {
                            1
                        } else {
                            0
                        };
                        if *matched == END.len() {
                            used = i + 1;
                            break;
                        }
                    }
                    *seen += used;
                    out.extend_from_slice(&input[..used]);
                    input = &input[used..];
                    if *matched == END.len() {
                        self.state = FilterState::Header {
                            buf: [0; MAX_HEADER_LEN],
                            have: 0,
                        };
                    } else if *seen > MAX_HTTP_HEAD {
                        self.state = FilterState::Opaque;
                    }
                }
                FilterState::Header { buf, have } => {
                    let need = if *have < 2 {
                        2
                    } else {
                        header_len([buf[0], buf[1]])
                    };
                    let take = (need - *have).min(input.len());
                    buf[*have..*have + take].copy_from_slice(&input[..take]);
                    *have += take;
                    input = &input[take..];
                    if *have < need || need == 2 && header_len([buf[0], buf[1]]) > 2 {
                        continue;
                    }
                    let Some(h) = parse_header(&buf[..*have]) else {
                        continue;
                    };
                    let pass = match mode {
                        None => true,
                        Some(WsMode::ControlOnly) => h.is_control(),
                        Some(WsMode::DropControl) => !h.is_control(),
                    };
                    if pass {
                        out.extend_from_slice(&buf[..*have]);
                        self.passed_frames += 1;
                    } else {
                        self.dropped_frames += 1;
                    }
                    self.state = FilterState::Body {
                        remaining: h.payload_len,
                        pass,
                    };
                }
                FilterState::Body { remaining, pass } => {
                    let take = (*remaining).min(input.len() as u64) as usize;
                    if *pass {
                        out.extend_from_slice(&input[..take]);
                    }
                    *remaining -= take as u64;
                    input = &input[take..];
                    if *remaining == 0 {
                        self.state = FilterState::Header {
                            buf: [0; MAX_HEADER_LEN],
                            have: 0,
                        };
                    }
                }
            }
        }
        // A zero-length frame ends as soon as its header is complete.
        if let FilterState::Body { remaining: 0, .. } = self.state {
            self.state = FilterState::Header {
                buf: [0; MAX_HEADER_LEN],
                have: 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::ws::frame::{FrameSpec, OpCode};

    fn s(n: u64) -> Micros {
        Micros(n * 1_000_000)
    }

    #[test]
    fn windows_repeat_and_report_their_edges() {
        let w = parse_window("60s..90s/100s").unwrap();
        assert!(!w.contains(s(59)));
        assert!(w.contains(s(60)) && w.contains(Micros(89_999_999)));
        assert!(!w.contains(s(90)) && !w.contains(s(159)));
        assert!(w.contains(s(160)) && !w.contains(s(190)));
        assert_eq!(w.next_edge(s(0)), Some(s(60)));
        assert_eq!(w.next_edge(s(60)), Some(s(90)));
        assert_eq!(w.next_edge(s(95)), Some(s(160)));
        let open = parse_window("10s..").unwrap();
        assert!(open.contains(s(1000)) && !open.contains(s(9)));
        assert_eq!(open.next_edge(s(10)), None);
        assert!(parse_window("20s..10s").is_err());
        assert!(parse_window("20s").is_err());
    }

    #[test]
    fn kills_and_flags_parse() {
        let k = parse_kill("30s:fin/10s").unwrap();
        assert_eq!(k.how, KillHow::Fin);
        assert_eq!(k.next_after(s(0)), Some(s(30)));
        assert_eq!(k.next_after(s(30)), Some(s(40)));
        assert_eq!(parse_kill("5s").unwrap().next_after(s(5)), None);
        assert_eq!(parse_idle("2s:silent").unwrap(), (s(2), DropHow::Silent));
        assert!(parse_idle("2s:maybe").is_err());
        assert_eq!(parse_rate("64k").unwrap(), 64_000);
        assert_eq!(parse_rate("64KiB").unwrap(), 65536);
        assert_eq!(parse_rate("2MiB/s").unwrap(), 2 << 20);
        assert!(parse_rate("0").is_err() && parse_rate("fast").is_err());
        let l = parse_latency("100ms+20ms").unwrap();
        assert_eq!((l.delay, l.jitter), (Micros(100_000), Micros(20_000)));
    }

    #[test]
    fn fault_file_adds_every_kind_and_locates_errors() {
        let mut p = FaultPlan::default();
        let seed = p
            .add_file(
                r#"
seed = 9
[[fault]]
kind = "idle_drop"
after = "60s"
drop = "silent"
[[fault]]
kind = "blackhole"
from = "60s"
to = "90s"
[[fault]]
kind = "kill"
at = "5m"
how = "fin"
[[fault]]
kind = "ws"
mode = "drop_control"
"#,
                "f.toml",
            )
            .unwrap();
        assert_eq!(seed, Some(9));
        assert_eq!(p.idle, Some((s(60), DropHow::Silent)));
        assert!(p.blackholed(s(60)) && !p.blackholed(s(90)));
        assert_eq!(p.next_kill(s(0)), Some((s(300), KillHow::Fin)));
        assert_eq!(p.ws_at(s(1)), Some(WsMode::DropControl));
        assert_eq!(p.describe().len(), 4);
        let e = FaultPlan::default()
            .add_file("[[fault]]\nkind = \"teleport\"\n", "g.toml")
            .unwrap_err();
        assert!(
            e.contains("g.toml: fault #1: unknown kind `teleport`"),
            "{e}"
        );
        let e = FaultPlan::default()
            .add_file("\n[[fault]]\nkind = \"kill\"\nwhen = \"1s\"\n", "h.toml")
            .unwrap_err();
        assert!(e.starts_with("h.toml:4:"), "{e}");
    }

    fn upgrade_then(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut v = b"GET /websockify HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_vec();
        for f in frames {
            v.extend_from_slice(f);
        }
        v
    }

    fn run_filter(mode: Option<WsMode>, input: &[u8], piece: usize) -> (Vec<u8>, WsFilter) {
        let mut f = WsFilter::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            f.filter(mode, chunk, &mut out);
        }
        (out, f)
    }

    #[test]
    fn ws_filter_drops_whole_frames_whatever_the_chunking() {
        let key = [1, 2, 3, 4];
        let text = FrameSpec::new(OpCode::Text, b"hello".to_vec())
            .masked(key)
            .encode();
        let big = FrameSpec::new(OpCode::Binary, vec![7u8; 70_000])
            .masked(key)
            .encode();
        let ping = FrameSpec::new(OpCode::Ping, b"p".to_vec())
            .masked(key)
            .encode();
        let empty_pong = FrameSpec::new(OpCode::Pong, Vec::new())
            .masked(key)
            .encode();
        let input = upgrade_then(&[text.clone(), ping.clone(), big.clone(), empty_pong.clone()]);
        let head_len = input.len() - text.len() - ping.len() - big.len() - empty_pong.len();
        for piece in [1, 3, 13, 1000, input.len()] {
            let (out, f) = run_filter(Some(WsMode::ControlOnly), &input, piece);
            let mut want = input[..head_len].to_vec();
            want.extend_from_slice(&ping);
            want.extend_from_slice(&empty_pong);
            assert!(
                out == want,
                "control only, pieces of {piece}: {} bytes, want {}",
                out.len(),
                want.len()
            );
            assert_eq!((f.passed_frames, f.dropped_frames), (2, 2));
            let (out, f) = run_filter(Some(WsMode::DropControl), &input, piece);
            let mut want = input[..head_len].to_vec();
            want.extend_from_slice(&text);
            want.extend_from_slice(&big);
            assert!(
                out == want,
                "drop control, pieces of {piece}: {} bytes, want {}",
                out.len(),
                want.len()
            );
            assert_eq!((f.passed_frames, f.dropped_frames), (2, 2));
            let (out, _) = run_filter(None, &input, piece);
            assert!(out == input, "no filter, pieces of {piece}");
        }
    }

    #[test]
    fn ws_filter_passes_streams_that_are_not_websocket() {
        let rfb = b"RFB 003.008\n\x02\x01\x02\x88\x88\x88\x88".to_vec();
        let (out, f) = run_filter(Some(WsMode::ControlOnly), &rfb, 2);
        assert!(out == rfb);
        assert_eq!(f.dropped_frames, 0);
        // An HTTP head that never ends is passed once it is too long to wait for.
        let mut endless = b"GET / HTTP/1.1\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'x', MAX_HTTP_HEAD + 10));
        endless.extend_from_slice(&[0x89, 0x00]);
        let (out, _) = run_filter(Some(WsMode::DropControl), &endless, 4096);
        assert!(out == endless);
    }
}
