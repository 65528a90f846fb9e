//! `tether sweep`, `--shard` and `tether merge`: the grid's verdicts are
//! the single runs' verdicts, identical on one thread and on several, and
//! shards merge back into exactly the whole sweep.

use std::path::{Path, PathBuf};
use std::process::Command;
use tether::replay::sweep::{Axis, Shard, SweepReport, Target, merge, sweep};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target(name: &str) -> Target {
    Target::load(&root().join("corpora/synthetic/bisect").join(name)).unwrap()
}

fn run_on(threads: usize, t: &Target, axes: &[Axis], shard: Option<Shard>) -> SweepReport {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| sweep(t, axes, shard, &|| {}))
        .unwrap()
}

fn axes_2d() -> Vec<Axis> {
    vec![
        Axis::parse("connectivity_timeout=20s..120s:10s").unwrap(),
        Axis::parse("ping_interval=5s..40s:5s").unwrap(),
    ]
}

#[test]
fn a_grid_point_is_the_single_run_at_its_values() {
    let t = target("spice-gtk-client-stall.toml");
    let axes = axes_2d();
    let r = run_on(2, &t, &axes, None);
    assert_eq!(r.total_points, 11 * 8);
    assert_eq!(r.points.len(), 88);
    // Row-major: the second axis varies fastest.
    assert_eq!(r.points[1].values, ["20s", "10s"]);
    assert_eq!(r.points[8].values, ["30s", "5s"]);
    for p in r.points.iter().step_by(7) {
        let v = t
            .run(&[
                format!("connectivity_timeout={}", p.values[0]),
                format!("ping_interval={}", p.values[1]),
            ])
            .unwrap();
        assert_eq!(p.outcome, v.outcome.as_str());
        assert_eq!(p.cause, v.cause);
        assert_eq!(p.at, v.at);
    }
    // The grid is not trivially uniform: both outcomes occur.
    assert!(r.points.iter().any(|p| p.outcome == "survived"));
    assert!(r.points.iter().any(|p| p.outcome == "disconnected"));
}

#[test]
fn several_threads_give_the_bytes_of_one() {
    let t = target("spice-gtk-client-stall.toml");
    let axes = axes_2d();
    let one = run_on(1, &t, &axes, None);
    let two = run_on(2, &t, &axes, None);
    let four = run_on(4, &t, &axes, None);
    assert_eq!(one.to_json(), two.to_json());
    assert_eq!(one.to_json(), four.to_json());
    assert_eq!(one.to_csv(), four.to_csv());
}

#[test]
fn shards_merge_into_the_whole_sweep() {
    let t = target("spice-gtk-lb-idle.toml");
    let axes = vec![Axis::parse("lb_idle_timeout=250s..350s:5s").unwrap()];
    let whole = run_on(2, &t, &axes, None);
    let shards: Vec<SweepReport> = (1..=3)
        .map(|k| run_on(2, &t, &axes, Some(Shard { k, n: 3 })))
        .collect();
    assert_eq!(
        shards.iter().map(|s| s.points.len()).sum::<usize>(),
        whole.points.len()
    );
    assert!(shards[1].points.iter().all(|p| p.index % 3 == 1));
    // Any order of shards merges to the same report.
    let mut reversed = shards.clone();
    reversed.reverse();
    assert_eq!(merge(reversed, false).unwrap().to_json(), whole.to_json());

    // A shard missing, or one given twice, is refused.
    assert!(merge(shards[..2].to_vec(), false).is_err());
    assert_eq!(merge(shards[..2].to_vec(), true).unwrap().points.len(), 14);
    let mut twice = shards.clone();
    twice.push(shards[0].clone());
    assert!(merge(twice, false).is_err());
    // Reports of another sweep are refused.
    let other = run_on(
        1,
        &t,
        &[Axis::parse("lb_idle_timeout=250s..350s:10s").unwrap()],
        None,
    );
    assert!(merge(vec![shards[0].clone(), other], true).is_err());
    // The LB sweep shows the analytic flip between 300 s and 305 s.
    let at = |v: &str| whole.points.iter().find(|p| p.values[0] == v).unwrap();
    assert_eq!(at("5m").outcome, "disconnected");
    assert_eq!(at("305s").outcome, "survived");
}

#[test]
fn bad_axes_and_shards_are_refused() {
    for bad in [
        "x",
        "a=1s..2s",
        "a=2s..1s:1s",
        "a=1s..2s:0s",
        "a=1..2s:1s",
        "a=1s..2s:1",
    ] {
        assert!(Axis::parse(bad).is_err(), "{bad}");
    }
    for bad in ["0/3", "4/3", "1/0", "1-3", "a/b"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
    let huge = vec![
        Axis::parse("a=0s..1000s:1ms").unwrap(),
        Axis::parse("b=0s..1000s:1ms").unwrap(),
    ];
    assert!(tether::replay::sweep::grid_size(&huge).is_err());
}

fn tether(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_sweep_shards_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let spec = "corpora/synthetic/bisect/spice-gtk-lb-idle.toml";
    let param = "--param=lb_idle_timeout=290s..310s:2s";
    let (code, whole, err) = tether(&["sweep", spec, param, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let mut files = Vec::new();
    for k in 1..=2 {
        let shard = format!("{k}/2");
        let (code, out, err) =
            tether(&["sweep", spec, param, "--shard", &shard, "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        let f = dir.join(format!("shard{k}.json"));
        std::fs::write(&f, out).unwrap();
        files.push(f.display().to_string());
    }
    let (code, merged, err) = tether(&["merge", &files[1], &files[0]]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(merged, whole);
    let (code, csv, _) = tether(&["sweep", spec, param, "--format", "csv", "--threads", "1"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "lb_idle_timeout,outcome,cause,channel,at,sessions"
    );
    assert_eq!(lines.len(), 12);
    assert!(
        lines[6].starts_with("5m,disconnected,tcp.reset,"),
        "{}",
        lines[6]
    );
    assert!(lines[7].starts_with("302s,survived,,"), "{}", lines[7]);
    // Only one shard: merge says what is missing.
    let (code, _, err) = tether(&["merge", &files[0]]);
    assert_eq!(code, 2);
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn cli_bisect_exit_codes() {
    let (code, out, _) = tether(&[
        "bisect",
        "corpora/synthetic/bisect/spice-gtk-lb-idle.toml",
        "--param",
        "lb_idle_timeout",
        "--range",
        "10s..20m",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("boundary between 300.0"), "{out}");
    let (code, out, _) = tether(&[
        "bisect",
        "corpora/synthetic/bisect/spice-gtk-client-stall.toml",
        "--param",
        "connectivity_timeout",
        "--range",
        "70s..100s",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NON-MONOTONIC"), "{out}");
    let (code, _, err) = tether(&[
        "bisect",
        "corpora/synthetic/bisect/spice-gtk-lb-idle.toml",
        "--param",
        "no_such_constant",
        "--range",
        "1s..2s",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown constant"), "{err}");
}

#[test]
fn replay_shards_and_git_bisect_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (code, whole, err) = tether(&["replay", "replays", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let mut files = Vec::new();
    let mut names = Vec::new();
    let mut counts = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let (code, out, err) =
            tether(&["replay", "replays", "--shard", &shard, "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["shard"], shard.as_str());
        let rows = doc["specs"].as_array().unwrap();
        counts.push(rows.len());
        names.extend(rows.iter().map(|r| r["name"].as_str().unwrap().to_string()));
        let f = dir.join(format!("r{k}.json"));
        std::fs::write(&f, out).unwrap();
        files.push(f.display().to_string());
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a spec ran in two shards");
    let (code, merged, err) = tether(&["merge", &files[2], &files[0], &files[1]]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(merged, whole);

    // One shard missing, or one given twice: refused, naming it.
    let (code, _, err) = tether(&["merge", &files[0], &files[1]]);
    assert_eq!(code, 2);
    assert!(err.contains("shard 3/3 missing"), "{err}");
    let (code, _, err) = tether(&["merge", &files[0], &files[1], &files[1]]);
    assert_eq!(code, 2);
    assert!(err.contains("shard 2/3 given twice"), "{err}");
    let (code, partial, err) = tether(&["merge", "--allow-partial", &files[0], &files[1]]);
    assert_eq!(code, 0, "{err}");
    let partial: serde_json::Value = serde_json::from_str(&partial).unwrap();
    assert_eq!(
        partial["specs"].as_array().unwrap().len(),
        counts[0] + counts[1]
    );

    // Bad input: 2 by default, 125 (git bisect's "skip") on request.
    let (code, _, _) = tether(&["replay", "no/such/spec.toml"]);
    assert_eq!(code, 2);
    let (code, _, _) = tether(&["replay", "--git-bisect", "no/such/spec.toml"]);
    assert_eq!(code, 125);
}

/// The text elements of an SVG, in document order.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[1..4], b"PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// Failure outcomes present among a report's points (each gets a legend
/// entry, and on a heatmap a colour bar column).
fn failure_kinds(report: &SweepReport) -> usize {
    let mut kinds: Vec<&str> = report
        .points
        .iter()
        .filter(|p| p.at.is_some())
        .map(|p| p.outcome.as_str())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds.len()
}

#[test]
fn plots_one_mark_per_point() {
    let t = target("spice-gtk-client-stall.toml");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let heat = run_on(2, &t, &axes_2d(), None);
    let line = run_on(2, &t, &axes_2d()[..1], None);
    for (report, name) in [(&heat, "heat"), (&line, "line")] {
        let failures = failure_kinds(report);
        assert!(failures >= 1, "{name}: the sweep should cross a boundary");
        let survived = usize::from(report.points.iter().any(|p| p.at.is_none()));
        assert_eq!(survived, 1, "{name}");
        for ext in ["svg", "png"] {
            let path = dir.join(format!("{name}.{ext}"));
            tether::replay::sweep::plot::plot(report, &path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            if ext == "png" {
                assert_eq!(png_size(&bytes), (800, 600), "{name}");
            } else {
                let svg = String::from_utf8(bytes).unwrap();
                // One cell per point, plus the background, a swatch per
                // outcome and the colour bar's bands / one dot per point
                // plus a legend dot per outcome.
                let (mark, extra) = if name == "heat" {
                    (
                        "<rect",
                        1 + survived
                            + failures
                            + failures * tether::replay::sweep::plot::COLOUR_BAR_BANDS as usize,
                    )
                } else {
                    ("<circle", survived + failures)
                };
                assert_eq!(
                    svg.matches(mark).count(),
                    report.points.len() + extra,
                    "{name}"
                );
                // Both outcomes are drawn in their colours.
                assert!(svg.contains("#2EA043"), "{name}: no survivor colour");
            }
        }
    }
    assert!(tether::replay::sweep::plot::plot(&heat, &dir.join("x.jpg")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plots_carry_title_axis_labels_ticks_and_key() {
    let t = target("spice-gtk-client-stall.toml");
    let dir = std::env::temp_dir().join(format!("tether-plot-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let heat = run_on(2, &t, &axes_2d(), None);
    let line = run_on(2, &t, &axes_2d()[..1], None);
    let texts = |report: &SweepReport, name: &str| {
        let path = dir.join(name);
        tether::replay::sweep::plot::plot(report, &path).unwrap();
        svg_texts(&std::fs::read_to_string(&path).unwrap())
    };
    let has = |texts: &[String], want: &str| texts.iter().any(|t| t == want);
    let title = format!("{} (spice-gtk)", heat.spec);
    assert!(title.contains("spice-gtk-client-stall.toml"), "{title}");

    let h = texts(&heat, "heat.svg");
    for want in [
        title.as_str(),
        "connectivity_timeout (s)",
        "ping_interval (s)",
        "survived",
        "disconnected",
        "time to failure (s)",
    ] {
        assert!(has(&h, want), "heatmap lacks {want:?}: {h:?}");
    }
    // Tick numbers in seconds: both ends of each axis (20s..120s, 5s..40s).
    for tick in ["20", "120", "5", "40"] {
        assert!(has(&h, tick), "heatmap lacks tick {tick}: {h:?}");
    }
    // The colour bar's scale lies within the failures' span of times.
    let span: Vec<f64> = heat.points.iter().filter_map(|p| p.at).collect();
    let (lo, hi) = span
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &a| (l.min(a), h.max(a)));
    let after_bar = h.iter().position(|t| t == "time to failure (s)").unwrap();
    let bar_ticks: Vec<f64> = h[after_bar + 1..]
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(bar_ticks.len() >= 2, "{h:?}");
    assert!(
        bar_ticks.iter().all(|&v| v >= lo && v <= hi),
        "{bar_ticks:?} outside {lo}..{hi}"
    );

    let l = texts(&line, "line.svg");
    for want in [
        title.as_str(),
        "connectivity_timeout (s)",
        "time to failure (s)",
        "survived (drawn on the top edge)",
        "disconnected (darker = earlier)",
    ] {
        assert!(has(&l, want), "line plot lacks {want:?}: {l:?}");
    }
    for tick in ["20", "120"] {
        assert!(has(&l, tick), "line plot lacks tick {tick}: {l:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
