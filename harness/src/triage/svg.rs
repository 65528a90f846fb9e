//! The session as a picture for a bug thread: one swimlane per channel on
//! a shared time axis, with traffic density, pings and pongs, the longest
//! silence, closes, failed reconnect attempts and the end the diagnosis names.

use super::SessionTriage;
use super::diagnose::ChannelFacts;
use std::fmt::Write as _;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 30.0;
const LANE: f64 = 46.0;
const TOP: f64 = 70.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick step that gives 5–10 labels over `span` seconds.
fn tick_step(span: f64) -> f64 {
    let raw = span / 8.0;
    let mag = 10f64.powf(raw.max(1e-3).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// A label that may move: drawn last, where it overlaps no other text
/// and stays inside the picture.
struct Label {
    /// The point it labels, and the baseline it would like.
    x: f64,
    y: f64,
    text: String,
    colour: &'static str,
    size: f64,
    bold: bool,
}

/// A text's box: left, top, right, bottom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextBox(pub f64, pub f64, pub f64, pub f64);

impl TextBox {
    /// The box a text takes, estimated from its length: DejaVu Sans
    /// averages about 0.6 em a character (bold a little more), and a line
    /// runs from 0.8 em above the baseline to 0.25 below.
    fn of(left: f64, baseline: f64, text: &str, size: f64, bold: bool) -> TextBox {
        let em = if bold { 0.66 } else { 0.62 };
        let w = text.chars().count() as f64 * size * em;
        TextBox(
            left,
            baseline - 0.8 * size,
            left + w,
            baseline + 0.25 * size,
        )
    }

    pub fn overlaps(&self, o: &TextBox) -> bool {
        self.0 < o.2 && o.0 < self.2 && self.1 < o.3 && o.1 < self.3
    }
}

/// Places labels in order (the first wins its spot): beside its point, on
/// the side with room, moved down or up a line at a time until it touches
/// nothing placed before and no fixed text; never past an edge.
fn place(labels: Vec<Label>, fixed: &[TextBox], width: f64, height: f64) -> Vec<(TextBox, Label)> {
    let mut placed: Vec<(TextBox, Label)> = Vec::new();
    for l in labels {
        let probe = TextBox::of(0.0, 0.0, &l.text, l.size, l.bold);
        let w = probe.2;
        // Right of the point when it fits, else left of it; inside the edges.
        let left = if l.x + 6.0 + w <= width - 4.0 {
            l.x + 6.0
        } else {
            l.x - 6.0 - w
        }
        .clamp(4.0, (width - 4.0 - w).max(4.0));
        let line = l.size + 3.0;
        let free = |b: &TextBox| {
            b.1 >= 2.0
                && b.3 <= height - 2.0
                && !fixed.iter().any(|f| f.overlaps(b))
                && !placed.iter().any(|(p, _)| p.overlaps(b))
        };
        let spot = (0..200)
            .map(|k| {
                // 0, +1, -1, +2, -2, ... lines from where it would like to be.
                let step = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as f64;
                TextBox::of(left, l.y + step * line, &l.text, l.size, l.bold)
            })
            .find(|b| free(b))
            .unwrap_or_else(|| TextBox::of(left, l.y, &l.text, l.size, l.bold));
        placed.push((spot, l));
    }
    placed
}

/// The event that decided the diagnosis, where the capture shows it:
/// the refusal of a failed attempt, the first PING left unanswered before a
/// liveness timer fired, the middlebox's cut. (time, lane, what)
fn deciding_event(st: &SessionTriage, lanes: &[Lane<'_>]) -> Option<(f64, usize, String)> {
    let d = &st.diagnosis;
    let cause = d.cause.as_deref()?;
    let lane_of = |name: Option<&str>| {
        lanes
            .iter()
            .position(|l| l.leg.is_none() && name.is_none_or(|n| l.channel.name == n))
    };
    if d.outcome == super::diagnose::SessionOutcome::Refused {
        let a = st.session.attempts.first()?;
        return Some((a.at, usize::MAX, format!("refused: {}", a.result)));
    }
    if cause.contains("connectivity") || cause.contains("liveness") || cause.contains("ping") {
        let i = lane_of(d.channel.as_deref())?;
        let p = *lanes[i].channel.unanswered_pings.first()?;
        return Some((p, i, "first PING left unanswered".into()));
    }
    if cause == "lb.idle_timeout" {
        let (i, c) = lanes
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((i, l.channel.closes.first()?)))
            .min_by(|a, b| a.1.at.total_cmp(&b.1.at))?;
        return Some((c.at, i, format!("idle cut: {} {}", c.by, c.how)));
    }
    None
}

/// One swimlane: a channel of the session, or of a relay's upstream leg.
struct Lane<'a> {
    generation: usize,
    channel: &'a super::session::Channel,
    /// The upstream leg's server, for a relay leg's channel.
    leg: Option<&'a str>,
}

/// Renders one triaged session as SVG, with the upstream legs a relay
/// opened for it (`legs`) under its own channels.
pub fn render(
    st: &SessionTriage,
    legs: &[&SessionTriage],
    title: &str,
    zip: &[ChannelFacts],
) -> String {
    let s = &st.session;
    let d = &st.diagnosis;
    let lanes: Vec<Lane<'_>> = s
        .generations
        .iter()
        .flat_map(|g| {
            g.channels.iter().map(move |c| Lane {
                generation: g.index,
                channel: c,
                leg: None,
            })
        })
        .chain(legs.iter().flat_map(|l| {
            l.session.generations.iter().flat_map(move |g| {
                g.channels.iter().map(move |c| Lane {
                    generation: g.index,
                    channel: c,
                    leg: Some(l.session.server.as_str()),
                })
            })
        }))
        .collect();
    let zip_end = zip
        .iter()
        .flat_map(|f| [f.last_recv, f.last_send, f.ended_at])
        .flatten()
        .fold(0.0, f64::max);
    // The picture runs from where the session starts (its first packet;
    // a bug report's session clock zero) to its end, on the input's clock.
    let t0 = s.model_zero;
    let span = (s
        .end()
        .max(zip_end)
        .max(d.at.unwrap_or(0.0))
        .max(s.attempts.iter().map(|a| a.at).fold(0.0, f64::max))
        .max(legs.iter().map(|l| l.session.end()).fold(0.0, f64::max))
        - t0)
        .max(1e-3)
        * 1.02;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + ((t - t0) / span).clamp(0.0, 1.0) * plot_w;
    let rows = lanes.len() + zip.len();
    let height = TOP + LANE * rows.max(1) as f64 + 110.0;
    let mut o = String::new();
    let mut labels: Vec<Label> = Vec::new();
    let mut fixed: Vec<TextBox> = Vec::new();
    // What the picture draws, for a legend of only that.
    let mut drawn: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">"##
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let headline = match (&d.cause, d.at) {
        (Some(c), Some(at)) => format!(
            "{} at T+{at:.3}: {c} on {}",
            super::outcome_str(d.outcome),
            d.channel.as_deref().unwrap_or("-")
        ),
        _ => super::outcome_str(d.outcome).to_string(),
    };
    let _ = writeln!(
        o,
        r##"<text class="fixed" x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"##,
        esc(title)
    );
    fixed.push(TextBox::of(LEFT, 22.0, title, 15.0, true));
    let _ = writeln!(
        o,
        r##"<text class="fixed" x="{LEFT}" y="42" font-size="13" fill="#b00">{}</text>"##,
        esc(&headline)
    );
    fixed.push(TextBox::of(LEFT, 42.0, &headline, 13.0, false));
    let bottom = TOP + LANE * rows.max(1) as f64;
    axis(&mut o, &mut fixed, (t0, span), &x, bottom, s.start);
    // The timer's window the diagnosis infers (e.g. SPICE connectivity).
    for e in &d.inferences {
        if let (Some(at), Some(_)) = (e.at, e.channel.as_deref())
            && e.text.contains("connectivity timer")
        {
            let hi = at + d.timers.connectivity_tick;
            let _ = writeln!(
                o,
                r##"<rect class="timer-window" x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#f4c542" fill-opacity="0.18"/>"##,
                x(at),
                (x(hi) - x(at)).max(1.0),
                bottom - TOP,
            );
            labels.push(Label {
                x: x(at),
                y: TOP - 6.0,
                text: "connectivity timer window (inferred)".into(),
                colour: "#a07800",
                size: 11.0,
                bold: false,
            });
            drawn.insert("timer");
        }
    }
    let deciding = deciding_event(st, &lanes);
    for (row, lane) in lanes.iter().enumerate() {
        let y0 = TOP + LANE * row as f64;
        draw_lane(&mut o, &mut labels, &mut drawn, lane, (y0, &x), s, span);
    }
    for (k, f) in zip.iter().enumerate() {
        let y0 = TOP + LANE * (lanes.len() + k) as f64;
        draw_zip_lane(&mut o, &mut labels, f, y0, &x);
    }
    for a in &s.attempts {
        let ax = x(a.at);
        let _ = writeln!(
            o,
            r##"<line class="attempt" x1="{ax:.1}" y1="{TOP}" x2="{ax:.1}" y2="{bottom}" stroke="#b00" stroke-dasharray="3,3"/>"##,
        );
        labels.push(Label {
            x: ax,
            y: bottom - 4.0,
            text: format!("attempt {}: {}", a.connection, a.result),
            colour: "#b00",
            size: 10.0,
            bold: false,
        });
        drawn.insert("server");
    }
    // The cause is named where what decided it happened; the drop keeps
    // its line.
    let mut cause_x = None;
    if let Some((at, lane, what)) = &deciding {
        let dx = x(*at);
        let cy = if *lane == usize::MAX {
            bottom - 4.0
        } else {
            TOP + LANE * *lane as f64 + LANE / 2.0
        };
        let _ = writeln!(
            o,
            r##"<circle class="deciding" cx="{dx:.1}" cy="{cy:.1}" r="8" fill="none" stroke="#b00" stroke-width="2"><title>{} T+{at:.3}</title></circle>"##,
            esc(what)
        );
        cause_x = Some(dx);
        labels.insert(
            0,
            Label {
                x: dx,
                y: cy - 10.0,
                text: what.clone(),
                colour: "#b00",
                size: 10.0,
                bold: false,
            },
        );
        drawn.insert("decided");
    }
    if let Some(at) = d.at {
        let ex = x(at);
        let _ = writeln!(
            o,
            r##"<line class="end" x1="{ex:.1}" y1="{:.1}" x2="{ex:.1}" y2="{bottom}" stroke="#b00" stroke-width="2"/>"##,
            TOP - 18.0,
        );
        labels.insert(
            0,
            Label {
                x: cause_x.unwrap_or(ex),
                y: TOP - 20.0,
                text: d.cause.clone().unwrap_or_else(|| "end".into()),
                colour: "#b00",
                size: 12.0,
                bold: true,
            },
        );
    }
    legend(&mut o, &mut fixed, &drawn, bottom + 56.0);
    for (b, l) in place(labels, &fixed, WIDTH, height) {
        let _ = writeln!(
            o,
            r##"<text class="label" x="{:.1}" y="{:.1}" fill="{}" font-size="{}"{}>{}</text>"##,
            b.0,
            b.3 - 0.25 * l.size,
            l.colour,
            l.size,
            if l.bold { r#" font-weight="bold""# } else { "" },
            esc(&l.text)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// The time axis: ticks, their labels and the caption.
fn axis(
    o: &mut String,
    fixed: &mut Vec<TextBox>,
    (t0, span): (f64, f64),
    x: &dyn Fn(f64) -> f64,
    bottom: f64,
    start: crate::timeline::Micros,
) {
    let step = tick_step(span);
    let mut tick = (t0 / step).ceil() * step;
    while tick <= t0 + span {
        let tx = x(tick);
        let text = if step < 1.0 {
            format!("{tick:.2}")
        } else {
            format!("{tick:.0}")
        };
        let _ = writeln!(
            o,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{bottom}" stroke="#eee"/><text class="fixed" x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{text}</text>"##,
            bottom + 16.0,
        );
        let w = TextBox::of(0.0, 0.0, &text, 12.0, false).2;
        fixed.push(TextBox::of(tx - w / 2.0, bottom + 16.0, &text, 12.0, false));
        tick += step;
    }
    let caption = format!(
        "seconds since {}",
        if start == crate::timeline::Micros::ZERO {
            "the session clock's zero".to_string()
        } else {
            format!("the capture's first frame ({})", start.utc())
        }
    );
    let cx = LEFT + (WIDTH - LEFT - RIGHT) / 2.0;
    let _ = writeln!(
        o,
        r##"<text class="fixed" x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{caption}</text>"##,
        bottom + 34.0,
    );
    let w = TextBox::of(0.0, 0.0, &caption, 12.0, false).2;
    fixed.push(TextBox::of(
        cx - w / 2.0,
        bottom + 34.0,
        &caption,
        12.0,
        false,
    ));
}

/// One channel's lane: its name, span, traffic, pings and pongs, the
/// longest server silence and its closes.
fn draw_lane(
    o: &mut String,
    labels: &mut Vec<Label>,
    drawn: &mut std::collections::BTreeSet<&'static str>,
    lane: &Lane<'_>,
    (y0, x): (f64, &dyn Fn(f64) -> f64),
    s: &super::session::Session,
    span: f64,
) {
    let c = lane.channel;
    let mid = y0 + LANE / 2.0;
    let (name, note) = match lane.leg {
        Some(server) => (format!("↳ {}", c.name), format!("upstream {server}")),
        None => (
            c.name.clone(),
            format!("gen {} {}", lane.generation + 1, c.connection),
        ),
    };
    // The name and its note fit left of the plot: the note gives way first.
    let room = LEFT - 12.0;
    let fits = |t: &str| TextBox::of(0.0, 0.0, t, 12.0, false).2 <= room;
    let mut note = note;
    while !note.is_empty() && !fits(&format!("{name} {note}…")) {
        note.pop();
    }
    if note.chars().count() < 4 {
        note.clear();
    } else if !fits(&format!("{name} {note}")) {
        note.push('…');
    }
    let _ = writeln!(
        o,
        r##"<text class="fixed" x="{:.1}" y="{:.1}" text-anchor="end">{} <tspan fill="#888">{}</tspan></text>"##,
        LEFT - 8.0,
        mid + 4.0,
        esc(&name),
        esc(&note)
    );
    let end = c.closes.first().map_or(s.end(), |x| x.at);
    let _ = writeln!(
        o,
        r##"<line x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="#999" stroke-width="1"/>"##,
        x(c.opened_at),
        x(end)
    );
    // Longest silence from the server, shaded.
    if let Some(from) = c.longest_s2c_silence_from
        && c.longest_s2c_silence > span * 0.02
    {
        let _ = writeln!(
            o,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#9ab" fill-opacity="0.25"><title>server silent {:.1} s</title></rect>"##,
            x(from),
            y0 + 4.0,
            x(from + c.longest_s2c_silence) - x(from),
            LANE - 8.0,
            c.longest_s2c_silence
        );
        drawn.insert("silence");
    }
    // Traffic density: bar heights on a log scale of bytes per bucket.
    let density = c
        .density
        .rebin(s.start, s.bucket, super::session::DENSITY_BUCKETS);
    let peak = density.iter().copied().max().unwrap_or(0).max(1) as f64;
    for (b, bytes) in density.iter().enumerate() {
        if *bytes == 0 {
            continue;
        }
        let h = ((*bytes as f64).ln_1p() / peak.ln_1p()) * (LANE / 2.0 - 6.0);
        let bx = x(b as f64 * s.bucket);
        let _ = writeln!(
            o,
            r##"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#4a7fc1"/>"##,
            mid - h,
            (x((b + 1) as f64 * s.bucket) - bx).max(1.0)
        );
        drawn.insert("traffic");
    }
    for m in &c.marks {
        let mx = x(m.at);
        let (shape, colour) = match (m.what(), m.dir()) {
            ("ping", "s2c") => (format!("M{mx:.1},{:.1} l-4,-7 h8 z", mid + 12.0), "#e07b00"),
            ("ping", _) => (format!("M{mx:.1},{:.1} l-4,7 h8 z", mid + 4.0), "#e07b00"),
            ("pong", "c2s") => (format!("M{mx:.1},{:.1} l-4,7 h8 z", mid + 12.0), "#2a9d3a"),
            ("pong", _) => (format!("M{mx:.1},{:.1} l-4,-7 h8 z", mid + 19.0), "#2a9d3a"),
            ("refused", _) => (format!("M{mx:.1},{:.1} v14", mid - 7.0), "#b00"),
            _ => (format!("M{mx:.1},{:.1} v14", mid - 7.0), "#555"),
        };
        let _ = writeln!(
            o,
            r##"<path d="{shape}" fill="{colour}" stroke="{colour}"><title>{} {} T+{:.3}</title></path>"##,
            m.dir(),
            m.what(),
            m.at
        );
        drawn.insert(m.what());
    }
    // The answer first and faint, the first close last and on top: the
    // side that closed first is the one seen.
    for (k, cl) in c.closes.iter().enumerate().rev() {
        let cx = x(cl.at);
        let colour = if cl.by == "server" { "#b00" } else { "#6a1b9a" };
        drawn.insert(cl.by);
        let what = format!(
            "{} {}{}",
            cl.by,
            cl.how,
            cl.code.map(|k| format!(" {k}")).unwrap_or_default()
        );
        let _ = writeln!(
            o,
            r##"<path class="close{}" d="M{:.1},{:.1} l10,10 m0,-10 l-10,10" stroke="{colour}" stroke-width="{}" stroke-opacity="{}"><title>{} T+{:.3}</title></path>"##,
            if k == 0 { " first" } else { "" },
            cx - 5.0,
            mid - 5.0,
            if k == 0 { 2.5 } else { 1.5 },
            if k == 0 { 1.0 } else { 0.45 },
            esc(&what),
            cl.at
        );
        if k == 0 {
            labels.push(Label {
                x: cx,
                y: y0 + 11.0,
                text: what,
                colour,
                size: 10.0,
                bold: false,
            });
        }
    }
}

/// A bug report's own record of one channel.
fn draw_zip_lane(
    o: &mut String,
    labels: &mut Vec<Label>,
    f: &ChannelFacts,
    y0: f64,
    x: &dyn Fn(f64) -> f64,
) {
    let mid = y0 + LANE / 2.0;
    let _ = writeln!(
        o,
        r##"<text class="fixed" x="{:.1}" y="{:.1}" text-anchor="end">{} <tspan fill="#888">zip record</tspan></text>"##,
        LEFT - 8.0,
        mid + 4.0,
        esc(&f.channel)
    );
    let last = [f.last_recv, f.last_send]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    if last > 0.0 {
        let _ = writeln!(
            o,
            r##"<line x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="#4a7fc1" stroke-width="3"/>"##,
            x(0.0),
            x(last)
        );
    }
    if let Some(p) = f.last_ping_recv {
        let px = x(p);
        let _ = writeln!(
            o,
            r##"<path d="M{px:.1},{:.1} l-4,-7 h8 z" fill="#e07b00"><title>last ping received T+{p:.3}</title></path>"##,
            mid + 12.0
        );
    }
    for (t, label) in [(f.last_recv, "last recv"), (f.last_send, "last send")] {
        if let Some(t) = t {
            let _ = writeln!(
                o,
                r##"<circle cx="{:.1}" cy="{mid:.1}" r="3.5" fill="{}"><title>{label} T+{t:.3}</title></circle>"##,
                x(t),
                if label == "last recv" {
                    "#4a7fc1"
                } else {
                    "#2a9d3a"
                }
            );
        }
    }
    if let Some(end) = f.ended_at {
        let ex = x(end);
        let _ = writeln!(
            o,
            r##"<path d="M{:.1},{:.1} l10,10 m0,-10 l-10,10" stroke="#6a1b9a" stroke-width="2.5"/>"##,
            ex - 5.0,
            mid - 5.0,
        );
        labels.push(Label {
            x: ex,
            y: y0 + 11.0,
            text: f.ended_by.clone().unwrap_or_else(|| "ended".into()),
            colour: "#6a1b9a",
            size: 10.0,
            bold: false,
        });
    }
}

/// The legend: only what the picture draws.
fn legend(
    o: &mut String,
    fixed: &mut Vec<TextBox>,
    drawn: &std::collections::BTreeSet<&str>,
    mut ly: f64,
) {
    let entries: [(&str, &str, &str); 8] = [
        ("traffic", "#4a7fc1", "traffic (log bytes)"),
        ("ping", "#e07b00", "ping"),
        ("pong", "#2a9d3a", "pong"),
        ("silence", "#9ab", "longest server silence"),
        ("server", "#b00", "server close / failed attempt"),
        ("client", "#6a1b9a", "client close"),
        ("timer", "#f4c542", "inferred timer window"),
        ("decided", "#b00", "what decided it (ringed)"),
    ];
    let mut lx = LEFT;
    for (key, colour, label) in entries {
        if !drawn.contains(&key) {
            continue;
        }
        // An entry that would run past the right edge starts a new line.
        if TextBox::of(lx + 16.0, ly, label, 12.0, false).2 > WIDTH - 4.0 {
            (lx, ly) = (LEFT, ly + 18.0);
        }
        let _ = writeln!(
            o,
            r##"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text class="fixed" x="{:.1}" y="{ly:.1}">{label}</text>"##,
            ly - 10.0,
            lx + 16.0
        );
        let b = TextBox::of(lx + 16.0, ly, label, 12.0, false);
        fixed.push(b);
        lx = b.2 + 12.0;
    }
}

/// Colours of the endings in the overview: a user's close and a session
/// still open as in the session pictures, the faults in order of count;
/// the rest share the last.
const ENDING_COLOURS: [&str; 8] = [
    "#b00", "#e07b00", "#a07800", "#008b8b", "#4a7fc1", "#2a9d3a", "#c2185b", "#888",
];

fn ending_colour(counts: &[super::EndingCount], label: &str) -> &'static str {
    let place = counts.iter().position(|c| c.ending == label);
    if counts.len() > ENDING_COLOURS.len() && place.is_none_or(|p| p >= ENDING_COLOURS.len() - 1) {
        return "#888";
    }
    match label {
        "client.closed" => "#6a1b9a",
        "open" => "#9ab",
        _ => {
            let faults = counts
                .iter()
                .filter(|c| c.ending != "client.closed" && c.ending != "open");
            let i = faults.take_while(|c| c.ending != label).count();
            ENDING_COLOURS[i.min(ENDING_COLOURS.len() - 1)]
        }
    }
}

/// A server capture's sessions on one time axis, coloured by how they
/// ended (the summary's counts, most first). Up to [`OVERVIEW_BARS_MAX`]
/// sessions, a bar each from first packet to end, each ending's count in
/// the legend; past that (a day at a busy host holds thousands), a lane per
/// ending: how many of its sessions were open at once, and when they ended,
/// in bins of [`OVERVIEW_BIN_PX`] pixels, so the picture's height does not
/// grow with the sessions.
pub fn overview(
    rows: &[super::SessionRow],
    title: &str,
    start: Option<crate::timeline::Micros>,
) -> String {
    let counts = super::count_endings(rows);
    let colour_of = |label: &str| ending_colour(&counts, label);
    let binned = rows.len() > OVERVIEW_BARS_MAX;
    // Rows thin out as sessions grow in number; their clients are named
    // while there is room for a line of text each.
    let row_h: f64 = if rows.len() <= 60 { 16.0 } else { 3.0 };
    let named = rows.len() <= 60;
    let end = rows
        .iter()
        .map(|r| r.start + r.length)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.02;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + (t / end).clamp(0.0, 1.0) * plot_w;
    let shown = counts.len().min(ENDING_COLOURS.len());
    let bottom = if binned {
        TOP + ENDING_LANE * shown.max(1) as f64
    } else {
        TOP + row_h * rows.len().max(1) as f64
    };
    let legend_rows = if binned { 0 } else { shown.div_ceil(3) };
    let height = bottom + 50.0 + 18.0 * legend_rows as f64;
    let mut o = String::new();
    let mut fixed = Vec::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">"##
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let heading = format!("{title}: {} sessions", rows.len());
    let _ = writeln!(
        o,
        r##"<text class="fixed" x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"##,
        esc(&heading)
    );
    fixed.push(TextBox::of(LEFT, 22.0, &heading, 15.0, true));
    let origin = start.unwrap_or(crate::timeline::Micros::ZERO);
    axis(&mut o, &mut fixed, (0.0, end), &x, bottom, origin);
    if binned {
        let (bins, bin_s) = overview_bins(end);
        let note = format!(
            "a lane per ending: its sessions open at once (bars) and ending (ticks), {bin_s:.1} s a bin"
        );
        let _ = writeln!(
            o,
            r##"<text class="fixed" x="{LEFT}" y="42" font-size="11" fill="#555">{}</text>"##,
            esc(&note)
        );
        ending_lanes(&mut o, rows, &counts, shown, (bins, bin_s));
        o.push_str("</svg>\n");
        return o;
    }
    for (k, r) in rows.iter().enumerate() {
        let y = TOP + row_h * k as f64;
        let label = r.label();
        let colour = colour_of(&label);
        let (x0, x1) = (x(r.start), x(r.start + r.length));
        let _ = writeln!(
            o,
            r##"<rect class="session" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>session {} {}: {} {} T+{:.3} to T+{:.3}</title></rect>"##,
            y + row_h * 0.15,
            // A refused attempt lasts an instant: still seen.
            (x1 - x0).max(3.0),
            row_h * 0.7,
            r.number,
            esc(&r.client),
            r.outcome,
            esc(&label),
            r.start,
            r.start + r.length
        );
        if named {
            let _ = writeln!(
                o,
                r##"<text class="fixed" x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{} <tspan fill="#888">#{}</tspan></text>"##,
                LEFT - 8.0,
                y + row_h * 0.75,
                esc(&r.client),
                r.number
            );
        }
    }
    // The legend: each ending with its count, three to a line.
    for (k, c) in counts.iter().take(shown).enumerate() {
        let lx = LEFT + (k % 3) as f64 * 320.0;
        let ly = bottom + 56.0 + 18.0 * (k / 3) as f64;
        let rest = counts.len() > shown && k == shown - 1;
        let text = if rest {
            let n: usize = counts[k..].iter().map(|c| c.sessions).sum();
            format!("{n} sessions, {} other endings", counts.len() - k)
        } else {
            format!("{} {}", c.sessions, c.ending)
        };
        let _ = writeln!(
            o,
            r##"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text class="fixed" x="{:.1}" y="{ly:.1}">{}</text>"##,
            ly - 10.0,
            colour_of(&c.ending),
            lx + 16.0,
            esc(&text)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Above this many sessions the overview draws a lane per ending, not a
/// bar per session (5,000 sessions at 3 px would be 15,000 px tall).
pub const OVERVIEW_BARS_MAX: usize = 200;
/// Width of one time bin of the binned overview, in pixels.
pub const OVERVIEW_BIN_PX: f64 = 4.0;
const ENDING_LANE: f64 = 44.0;

/// How many bins the binned overview has, and their width in seconds.
fn overview_bins(end: f64) -> (usize, f64) {
    let bins = (((WIDTH - LEFT - RIGHT) / OVERVIEW_BIN_PX).floor() as usize).max(1);
    (bins, end / bins as f64)
}

/// The binned overview's lanes, one per ending shown (the last takes the
/// endings past the colours): each bin's bar is the sessions open in it,
/// scaled to the lane's peak, and the tick beneath darkens with the
/// sessions that ended in it. Every bar's title gives both counts.
fn ending_lanes(
    o: &mut String,
    rows: &[super::SessionRow],
    counts: &[super::EndingCount],
    shown: usize,
    (bins, bin_s): (usize, f64),
) {
    let lane_of = |label: &str| {
        let place = counts.iter().position(|c| c.ending == label).unwrap_or(0);
        place.min(shown.saturating_sub(1))
    };
    let bin_of = |t: f64| ((t / bin_s).floor().max(0.0) as usize).min(bins - 1);
    let mut open = vec![vec![0u32; bins]; shown];
    let mut ended = vec![vec![0u32; bins]; shown];
    for r in rows {
        let lane = lane_of(&r.label());
        // A length below zero (a clock that stepped back) is an instant.
        let (b0, b1) = (bin_of(r.start), bin_of(r.start + r.length.max(0.0)));
        for n in &mut open[lane][b0..=b1] {
            *n += 1;
        }
        if r.outcome != "open" {
            ended[lane][b1] += 1;
        }
    }
    for lane in 0..shown {
        let y0 = TOP + ENDING_LANE * lane as f64;
        let base = y0 + ENDING_LANE - 8.0;
        let (name, sessions) = if counts.len() > shown && lane == shown - 1 {
            let n: usize = counts[lane..].iter().map(|c| c.sessions).sum();
            (format!("{} other endings", counts.len() - lane), n)
        } else {
            (counts[lane].ending.clone(), counts[lane].sessions)
        };
        let colour = ending_colour(counts, &counts[lane].ending);
        let peak = open[lane].iter().copied().max().unwrap_or(0).max(1);
        let peak_ended = ended[lane].iter().copied().max().unwrap_or(0).max(1);
        let _ = writeln!(
            o,
            r##"<g class="ending-lane"><text class="fixed" x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" font-weight="bold">{}</text><text class="fixed" x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#555">{sessions} sessions, at most {peak} open</text>"##,
            LEFT - 8.0,
            y0 + 17.0,
            esc(&name),
            LEFT - 8.0,
            y0 + 30.0,
        );
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{base:.1}" x2="{:.1}" y2="{base:.1}" stroke="#ccc"/>"##,
            WIDTH - RIGHT
        );
        for b in 0..bins {
            let (n, e) = (open[lane][b], ended[lane][b]);
            if n == 0 {
                continue;
            }
            let bx = LEFT + b as f64 * OVERVIEW_BIN_PX;
            let h = (ENDING_LANE - 14.0) * f64::from(n) / f64::from(peak);
            let _ = write!(
                o,
                r##"<rect class="open-bin" x="{bx:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{colour}" fill-opacity="0.55"><title>T+{:.0} to T+{:.0}: {n} open, {e} ended</title></rect>"##,
                base - h,
                OVERVIEW_BIN_PX - 0.5,
                b as f64 * bin_s,
                (b + 1) as f64 * bin_s,
            );
            if e > 0 {
                let _ = write!(
                    o,
                    r##"<rect class="ended-bin" x="{bx:.1}" y="{:.1}" width="{:.1}" height="5" fill="{colour}" fill-opacity="{:.2}"/>"##,
                    base + 1.0,
                    OVERVIEW_BIN_PX - 0.5,
                    0.3 + 0.7 * f64::from(e) / f64::from(peak_ended),
                );
            }
        }
        o.push_str("</g>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::SessionRow;

    fn row(number: usize, start: f64, length: f64, cause: Option<&str>) -> SessionRow {
        SessionRow {
            number,
            client: format!("10.0.0.{number}:40000"),
            server: "10.9.9.9:6080".into(),
            start,
            length,
            outcome: if cause.is_some() {
                "disconnected"
            } else {
                "open"
            },
            cause: cause.map(str::to_string),
            channel: None,
            attempts: 0,
        }
    }

    /// Each bar's title, by lane: (open, ended).
    fn bins(svg: &str) -> Vec<Vec<(u32, u32)>> {
        svg.split(r#"<g class="ending-lane">"#)
            .skip(1)
            .map(|lane| {
                lane.split("<title>")
                    .skip(1)
                    .map(|t| {
                        let t = &t[..t.find("</title>").unwrap()];
                        let counts = t.rsplit(": ").next().unwrap();
                        let mut n = counts
                            .split(", ")
                            .map(|p| p.split(' ').next().unwrap().parse::<u32>().unwrap());
                        (n.next().unwrap(), n.next().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    /// Past the bar limit the overview's height stays that of its lanes,
    /// and its bins count exactly: every session that ended is ticked
    /// once, in its lane, and a lane's busiest bin holds the most sessions
    /// that overlapped at once there.
    #[test]
    fn a_large_overview_bins_sessions_by_ending() {
        let mut rows = Vec::new();
        for i in 0..1000 {
            let start = (i * 7) as f64;
            let (length, cause) = match i % 4 {
                0 | 1 => (600.0, Some("client.closed")),
                2 => (100.0, Some("lb.idle_timeout")),
                _ => (7000.0 - start, None),
            };
            rows.push(row(i + 1, start, length, cause));
        }
        let svg = overview(&rows, "server capture", None);
        let height: f64 = svg
            .split("height=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(height < 400.0, "{height}");
        let lanes = bins(&svg);
        // client.closed (500), then lb.idle_timeout and open (250 each,
        // in name order).
        assert_eq!(lanes.len(), 3);
        let ended: Vec<u32> = lanes.iter().map(|l| l.iter().map(|b| b.1).sum()).collect();
        assert_eq!(ended, [500, 250, 0]);
        // A client.closed session lasts 600 s and one starts every 14 s:
        // about 43 overlap, more where bins straddle.
        let peak = lanes[0].iter().map(|b| b.0).max().unwrap();
        assert!((43..=46).contains(&peak), "{peak}");
    }

    /// More endings than colours: the last lane takes the rest.
    #[test]
    fn endings_past_the_colours_share_the_last_lane() {
        let causes = [
            "a.one", "b.two", "c.three", "d.four", "e.five", "f.six", "g.seven", "h.eight",
            "i.nine", "j.ten",
        ];
        let rows: Vec<SessionRow> = (0..OVERVIEW_BARS_MAX + 10)
            .map(|i| row(i + 1, i as f64, 5.0, Some(causes[i % causes.len()])))
            .collect();
        let svg = overview(&rows, "server capture", None);
        assert_eq!(bins(&svg).len(), ENDING_COLOURS.len());
        assert!(svg.contains("3 other endings"), "{svg}");
        let last: u32 = bins(&svg)[ENDING_COLOURS.len() - 1]
            .iter()
            .map(|b| b.1)
            .sum();
        assert_eq!(last as usize, rows.len() * 3 / causes.len());
    }
}
