//! The pictures as a browser draws them: every SVG `tether triage --svg`
//! writes for the lab recordings, a bug report and a generated server
//! capture's overview is laid out by headless Chromium, and the boxes it
//! measures must hold: no two texts overlap, none runs past an edge, and
//! the marks the diagnosis rests on are drawn.
//!
//! Chromium is found as `$CHROMIUM` or `chromium` on the PATH. Without it
//! the test says so and passes, unless `TETHER_REQUIRE_CHROMIUM=1` (CI
//! installs it and sets that).

use std::path::{Path, PathBuf};
use std::process::Command;
use tether::capture::generate::server::{ServerConfig, generate_server};
use tether::timeline::Micros;
use tether::triage::{TriageOptions, svg, triage_reader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> Option<String> {
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(bin);
    }
    if std::env::var("TETHER_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
        panic!("TETHER_REQUIRE_CHROMIUM=1 but {bin} does not run");
    }
    eprintln!("skipped: {bin} not found (set CHROMIUM, or TETHER_REQUIRE_CHROMIUM=1 to fail)");
    None
}

/// Every picture to check, by name: each lab recording's sessions (with
/// their relay legs), a bug report's, and a server capture's overview.
fn pictures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(root().join("corpora/lab"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    inputs.sort();
    inputs.push(root().join("corpora/bugreports/ryll-session-001b-inputs.zip"));
    for path in inputs {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let zip = tether::capture::bugreport::looks_like_zip(&bytes);
        let tr = triage_reader(&bytes[..], &name, zip, &TriageOptions::default()).unwrap();
        let per_channel = tr.zip.as_ref().map_or(&[][..], |z| &z.per_channel);
        for st in tr.sessions.iter().filter(|s| s.session.relay_of.is_none()) {
            let title = format!("{name} · session {}", st.number);
            out.push((
                title.clone(),
                svg::render(st, &tr.legs_of(st), &title, per_channel),
            ));
        }
    }
    let cfg = ServerConfig {
        sessions: 60,
        duration: Micros(1_200_000_000),
        seed: 3,
        size_cap: None,
        capture_name: "server.pcap".into(),
        script: "tests/triage_pictures.rs".into(),
    };
    let mut capture = Vec::new();
    generate_server(&cfg, &mut capture).unwrap();
    let tr = triage_reader(
        &capture[..],
        "server.pcap",
        false,
        &TriageOptions::default(),
    )
    .unwrap();
    out.push((
        "overview".into(),
        svg::overview(&tr.summary, "server.pcap", tr.start),
    ));
    // Past the bar limit: a lane per ending, with the longest names
    // triage gives and more endings than colours.
    let causes = [
        "client.closed",
        "server.connectivity_timeout",
        "client.liveness_timeout",
        "http.401_stale_token",
        "lb.idle_timeout",
        "network.outage",
        "relay.killed",
        "server.killed",
        "auth.refused",
        "unknown",
    ];
    let rows: Vec<tether::triage::SessionRow> = (0..svg::OVERVIEW_BARS_MAX * 3)
        .map(|i| tether::triage::SessionRow {
            number: i + 1,
            client: format!("10.1.{}.{}:40000", i / 250, i % 250 + 1),
            server: "10.0.0.1:6080".into(),
            start: i as f64 * 5.0,
            length: 60.0 + (i % 17) as f64 * 40.0,
            outcome: "disconnected",
            cause: Some(causes[i % 7 + i % 3].to_string()),
            channel: None,
            attempts: 0,
        })
        .collect();
    out.push((
        "binned overview".into(),
        svg::overview(&rows, "server-day.pcap", None),
    ));
    out
}

/// What the page reports for one picture: its size, each text's box, and
/// the boxes of the marks that must be there.
#[derive(serde::Deserialize, Debug)]
struct Measured {
    name: String,
    width: f64,
    height: f64,
    texts: Vec<(String, [f64; 4])>,
    first_closes_on_top: bool,
    deciding: usize,
    timer_windows: usize,
}

const MEASURE: &str = r#"
const out = [];
for (const div of document.querySelectorAll('div.picture')) {
  const svg = div.querySelector('svg');
  const texts = [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBBox();
    return [t.textContent, [b.x, b.y, b.x + b.width, b.y + b.height]];
  });
  // A lane's closes are drawn together, the first one last (on top).
  const onTop = [...svg.querySelectorAll('path.close.first')]
    .every(f => !(f.nextElementSibling && f.nextElementSibling.matches('path.close')));
  out.push({name: div.dataset.name, width: +svg.getAttribute('width'), height: +svg.getAttribute('height'),
            texts, first_closes_on_top: onTop,
            deciding: svg.querySelectorAll('circle.deciding').length,
            timer_windows: svg.querySelectorAll('rect.timer-window').length});
}
document.body.setAttribute('data-measured', JSON.stringify(out));
"#;

fn measure(bin: &str, pictures: &[(String, String)]) -> Vec<Measured> {
    let dir = tempfile::tempdir().unwrap();
    let mut html = String::from("<!doctype html><html><body>");
    for (name, svg) in pictures {
        html.push_str(&format!(
            "<div class=\"picture\" data-name=\"{}\">{svg}</div>",
            name.replace('"', "&quot;")
        ));
    }
    html.push_str(&format!("<script>{MEASURE}</script></body></html>"));
    let page = dir.path().join("pictures.html");
    std::fs::write(&page, html).unwrap();
    let profile = dir.path().join("profile");
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("data-measured=\"")
        .expect("the page measured nothing")
        + 15;
    let end = start + dom[start..].find('"').unwrap();
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap()
}

#[test]
fn labels_never_overlap_nor_leave_the_picture() {
    let Some(bin) = chromium() else { return };
    let pictures = pictures();
    let measured = measure(&bin, &pictures);
    assert_eq!(measured.len(), pictures.len());
    let mut problems = Vec::new();
    for m in &measured {
        assert!(
            m.texts.len() >= 3,
            "{}: only {} texts measured",
            m.name,
            m.texts.len()
        );
        for (i, (a, ab)) in m.texts.iter().enumerate() {
            if ab[0] < -0.5 || ab[1] < -0.5 || ab[2] > m.width + 0.5 || ab[3] > m.height + 0.5 {
                problems.push(format!("{}: \"{a}\" runs past an edge: {ab:?}", m.name));
            }
            for (b, bb) in &m.texts[i + 1..] {
                // Half a pixel of slack: glyph boxes of adjacent lines touch.
                let overlap = ab[0] < bb[2] - 0.5
                    && bb[0] < ab[2] - 0.5
                    && ab[1] < bb[3] - 0.5
                    && bb[1] < ab[3] - 0.5;
                if overlap {
                    problems.push(format!(
                        "{}: \"{a}\" {ab:?} overlaps \"{b}\" {bb:?}",
                        m.name
                    ));
                }
            }
        }
        if !m.first_closes_on_top {
            problems.push(format!(
                "{}: a first close is drawn under its answer",
                m.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_deciding_event_and_timer_window_are_drawn() {
    let Some(bin) = chromium() else { return };
    let pictures: Vec<(String, String)> = pictures()
        .into_iter()
        .filter(|(n, _)| {
            n.starts_with("spice-client-frozen-long") || n.starts_with("spice-haproxy-idle")
        })
        .collect();
    let measured = measure(&bin, &pictures);
    let get = |prefix: &str| {
        measured
            .iter()
            .find(|m| m.name.starts_with(prefix))
            .unwrap()
    };
    // The unanswered PING that started spice-server's connectivity timer,
    // and the timer's window after it.
    let frozen = get("spice-client-frozen-long");
    assert_eq!((frozen.deciding, frozen.timer_windows), (1, 1));
    assert!(
        frozen
            .texts
            .iter()
            .any(|(t, _)| t == "first PING left unanswered")
    );
    // HAProxy's cut of the idle main channel, ringed where it happened.
    let idle = get("spice-haproxy-idle");
    assert!(idle.texts.iter().any(|(t, _)| t.starts_with("idle cut: ")));
}
