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

/// Renders one triaged session as SVG. `zip` adds a lane per channel of a
/// bug report's own record (last receive, send and ping; the end).
pub fn render(st: &SessionTriage, title: &str, zip: &[ChannelFacts]) -> String {
    let s = &st.session;
    let d = &st.diagnosis;
    let lanes: Vec<_> = s
        .generations
        .iter()
        .flat_map(|g| g.channels.iter().map(move |c| (g.index, c)))
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
        - t0)
        .max(1e-3)
        * 1.02;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + ((t - t0) / span).clamp(0.0, 1.0) * plot_w;
    // Labels near the right edge grow leftwards so they stay in the picture.
    let right_half = |px: f64| px > LEFT + plot_w * 0.6;
    let rows = lanes.len() + zip.len();
    let height = TOP + LANE * rows.max(1) as f64 + 110.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">"##
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let headline = match (&d.cause, d.at) {
        (Some(c), Some(at)) => format!(
            "{} at T+{at:.3} s: {c} on {}",
            super::outcome_str(d.outcome),
            d.channel.as_deref().unwrap_or("-")
        ),
        _ => super::outcome_str(d.outcome).to_string(),
    };
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"##,
        esc(title)
    );
    let _ = writeln!(
        o,
        r##"<text x="{LEFT}" y="42" font-size="13" fill="#b00">{}</text>"##,
        esc(&headline)
    );
    let bottom = TOP + LANE * rows.max(1) as f64;
    // Time axis with ticks.
    let step = tick_step(span);
    let mut tick = (t0 / step).ceil() * step;
    while tick <= t0 + span {
        let tx = x(tick);
        let _ = writeln!(
            o,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{bottom}" stroke="#eee"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
            bottom + 16.0,
            if step < 1.0 {
                format!("{tick:.2}")
            } else {
                format!("{tick:.0}")
            }
        );
        tick += step;
    }
    let _ = writeln!(
        o,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">seconds since {}</text>"##,
        LEFT + plot_w / 2.0,
        bottom + 34.0,
        if s.start == crate::timeline::Micros::ZERO {
            "the session clock's zero".to_string()
        } else {
            format!("the capture's first frame ({})", s.start.utc())
        }
    );
    // The timer's window the diagnosis infers (e.g. SPICE connectivity).
    for e in &d.inferences {
        if let (Some(at), Some(_)) = (e.at, e.channel.as_deref())
            && e.text.contains("connectivity timer")
        {
            let hi = at + d.timers.connectivity_tick;
            let _ = writeln!(
                o,
                r##"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#f4c542" fill-opacity="0.18"/><text x="{:.1}" y="{:.1}" fill="#a07800" font-size="11" text-anchor="{}">connectivity timer window (inferred)</text>"##,
                x(at),
                (x(hi) - x(at)).max(1.0),
                bottom - TOP,
                if right_half(x(at)) {
                    x(at) - 3.0
                } else {
                    x(at) + 3.0
                },
                TOP - 6.0,
                if right_half(x(at)) { "end" } else { "start" }
            );
        }
    }
    for (row, (generation, c)) in lanes.iter().enumerate() {
        let y0 = TOP + LANE * row as f64;
        let mid = y0 + LANE / 2.0;
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{} <tspan fill="#888">gen {} {}</tspan></text>"##,
            LEFT - 8.0,
            mid + 4.0,
            esc(&c.name),
            generation + 1,
            c.connection
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
        }
        for m in &c.marks {
            let mx = x(m.at);
            let (shape, colour) = match (m.what, m.dir) {
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
                m.dir, m.what, m.at
            );
        }
        for (k, cl) in c.closes.iter().enumerate() {
            let cx = x(cl.at);
            let colour = if cl.by == "server" { "#b00" } else { "#6a1b9a" };
            let what = format!(
                "{} {}{}",
                cl.by,
                esc(&cl.how),
                cl.code.map(|k| format!(" {k}")).unwrap_or_default()
            );
            let _ = writeln!(
                o,
                r##"<path d="M{:.1},{:.1} l10,10 m0,-10 l-10,10" stroke="{colour}" stroke-width="2.5"><title>{what} T+{:.3}</title></path>"##,
                cx - 5.0,
                mid - 5.0,
                cl.at
            );
            // Only the first close is labelled: the answer to it lands on
            // the same pixel.
            if k == 0 {
                let _ = writeln!(
                    o,
                    r##"<text x="{:.1}" y="{:.1}" fill="{colour}" font-size="10" text-anchor="{}">{what}</text>"##,
                    if right_half(cx) { cx - 8.0 } else { cx + 7.0 },
                    y0 + 11.0,
                    if right_half(cx) { "end" } else { "start" }
                );
            }
        }
    }
    for (k, f) in zip.iter().enumerate() {
        let y0 = TOP + LANE * (lanes.len() + k) as f64;
        let mid = y0 + LANE / 2.0;
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{} <tspan fill="#888">zip record</tspan></text>"##,
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
                r##"<path d="M{:.1},{:.1} l10,10 m0,-10 l-10,10" stroke="#6a1b9a" stroke-width="2.5"/><text x="{:.1}" y="{:.1}" fill="#6a1b9a" font-size="10">{}</text>"##,
                ex - 5.0,
                mid - 5.0,
                ex + 7.0,
                y0 + 11.0,
                esc(f.ended_by.as_deref().unwrap_or("ended"))
            );
        }
    }
    for a in &s.attempts {
        let ax = x(a.at);
        let _ = writeln!(
            o,
            r##"<line x1="{ax:.1}" y1="{TOP}" x2="{ax:.1}" y2="{bottom}" stroke="#b00" stroke-dasharray="3,3"/><text x="{:.1}" y="{:.1}" fill="#b00" font-size="10" text-anchor="{}">attempt {}: {}</text>"##,
            if right_half(ax) { ax - 3.0 } else { ax + 3.0 },
            bottom - 4.0,
            if right_half(ax) { "end" } else { "start" },
            a.connection,
            esc(&a.result)
        );
    }
    if let Some(at) = d.at {
        let ex = x(at);
        let _ = writeln!(
            o,
            r##"<line x1="{ex:.1}" y1="{:.1}" x2="{ex:.1}" y2="{bottom}" stroke="#b00" stroke-width="2"/><text x="{:.1}" y="{:.1}" fill="#b00" font-weight="bold" text-anchor="{}">{}</text>"##,
            TOP - 18.0,
            if right_half(ex) { ex - 4.0 } else { ex + 4.0 },
            TOP - 20.0,
            if right_half(ex) { "end" } else { "start" },
            esc(d.cause.as_deref().unwrap_or("end"))
        );
    }
    // Legend.
    let ly = bottom + 56.0;
    let legend: [(&str, &str); 7] = [
        ("#4a7fc1", "traffic (log bytes)"),
        ("#e07b00", "ping"),
        ("#2a9d3a", "pong"),
        ("#9ab", "longest server silence"),
        ("#b00", "server close / failed attempt"),
        ("#6a1b9a", "client close"),
        ("#f4c542", "inferred timer window"),
    ];
    let mut lx = LEFT;
    for (colour, label) in legend {
        let _ = writeln!(
            o,
            r##"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{ly:.1}">{label}</text>"##,
            ly - 10.0,
            lx + 16.0
        );
        lx += 24.0 + label.len() as f64 * 6.6;
    }
    o.push_str("</svg>\n");
    o
}
