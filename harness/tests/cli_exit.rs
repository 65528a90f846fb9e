//! The exit-code contract of the reading commands, one test per rule: 0
//! everything read; 2 some input could not be fully read or was refused,
//! each problem located on stderr and everything readable still reported;
//! no input found is an error that says where it looked. Inputs are
//! recognised by their first bytes (rotated, extensionless, any case,
//! gzip'd), and a reader that goes away never makes tether panic.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora")
        .join(rel)
}

fn tether(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .output()
        .unwrap()
}

/// A scratch directory, removed when the test ends.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("tether-cli-exit-{name}-"))
        .tempdir()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `cmd` on `corpora/hostile/FILE` exits 2, and stderr names the file
/// and `code` (the finding, or the reason it was refused), without a panic.
fn refused_located(cmd: &str, file: &str, code: &str) -> Output {
    let path = corpus("hostile").join(file);
    let out = tether(&[cmd, path.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{cmd} {file}: {err}");
    assert!(
        err.contains(file) && err.contains(code),
        "{cmd} {file}: {err}"
    );
    assert!(!err.contains("panicked"), "{cmd} {file}: {err}");
    out
}

/// Every hostile capture with a damaged record, block or link type exits
/// 2 and names the file and the finding; one that holds only what tether
/// reads (a header and no packets) exits 0.
#[test]
fn damaged_captures_exit_2_located() {
    let damaged = [
        (
            "corrupt-record-length.pcap",
            "capture.corrupt_record_header",
        ),
        (
            "oversize-record-header.pcap",
            "capture.corrupt_record_header",
        ),
        (
            "pcapng-corrupt-block-length.pcapng",
            "capture.corrupt_block",
        ),
        (
            "pcapng-packet-before-interface.pcapng",
            "capture.unknown_interface",
        ),
        ("pcapng-truncated.pcapng", "capture.truncated_record"),
        ("truncated-last-record.pcap", "capture.truncated_record"),
        ("unknown-linktype.pcap", "capture.unknown_link_type"),
        ("bad-magic.pcap", "not a pcap or pcapng file"),
        ("empty.pcap", "empty file"),
    ];
    for (file, code) in damaged {
        for cmd in ["decode", "flows", "triage"] {
            refused_located(cmd, file, code);
        }
    }
    let out = tether(&[
        "decode",
        corpus("hostile/header-only.pcap").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A bug-report zip whose members could not be parsed or were refused
/// (bad JSON, a hostile name, past a zip limit) exits 2 with the finding
/// located; what could be read is still reported.
#[test]
fn damaged_zips_exit_2_located() {
    for (file, code) in [
        ("zip-bad-json-metadata.zip", "bugreport.bad_json"),
        ("zip-member-dotdot.zip", "bugreport.hostile_name"),
        ("zip-bomb-ratio.zip", "limit.zip_ratio"),
        ("zip-too-many-members.zip", "limit.zip_members"),
    ] {
        for cmd in ["decode", "triage"] {
            let out = refused_located(cmd, file, code);
            assert!(!out.stdout.is_empty(), "{cmd} {file}: nothing reported");
        }
    }
    let ok = corpus("bugreports/ryll-disconnect-main.zip");
    assert_eq!(
        tether(&["decode", ok.to_str().unwrap()]).status.code(),
        Some(0)
    );
}

/// A real capture cut at 1000 bytes (`head -c 1000`): exit 2, and the
/// connection read before the cut is still reported.
#[test]
fn cut_capture_reports_what_it_read() {
    let tmp = scratch("cut");
    let d = tmp.path().to_path_buf();
    let bytes = std::fs::read(corpus("lab/spice-user-close.pcap")).unwrap();
    let cut = d.join("t.pcap");
    std::fs::write(&cut, &bytes[..1000]).unwrap();
    let out = tether(&["decode", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("frame 9, file offset 936"));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 connections, 8 frames"), "{stdout}");
    assert!(stdout.contains("main"), "{stdout}");
}

/// An empty directory, or one with no capture, is an error naming it.
#[test]
fn no_input_found_is_an_error() {
    let tmp = scratch("empty");
    let d = tmp.path().to_path_buf();
    std::fs::write(d.join("notes.txt"), "not a capture").unwrap();
    for cmd in ["decode", "flows", "triage"] {
        let out = tether(&[cmd, d.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("no input found in") && err.contains(d.to_str().unwrap()),
            "{cmd}: {err}"
        );
        assert!(out.stdout.is_empty() || text(&out.stdout).trim() == "[]");
    }
}

/// tcpdump's rotated files, upper-case and extensionless captures in a
/// directory are found by their first bytes; other files are skipped.
#[test]
fn inputs_recognised_by_magic_bytes() {
    let tmp = scratch("magic");
    let d = tmp.path().to_path_buf();
    let src = corpus("lab/spice-user-close.pcap");
    for name in ["dump.pcap1", "CAPTURE.PCAP", "noext"] {
        std::fs::copy(&src, d.join(name)).unwrap();
    }
    std::fs::write(d.join("readme.txt"), "hello").unwrap();
    let out = tether(&["flows", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in ["dump.pcap1", "CAPTURE.PCAP", "noext"] {
        assert!(stdout.contains(name), "{name} not read: {stdout}");
    }
    assert!(!stdout.contains("readme.txt"));
}

/// A gzip'd capture, named or on stdin, decodes exactly as the plain one.
#[test]
fn gzip_captures_are_read() {
    use std::io::Write;
    let tmp = scratch("gz");
    let d = tmp.path().to_path_buf();
    let src = corpus("lab/ws-user-close.pcap");
    let plain = std::fs::read(&src).unwrap();
    let gz = d.join("a.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&plain).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let a = tether(&["decode", "--format", "json", src.to_str().unwrap()]);
    let b = tether(&["decode", "--format", "json", gz.to_str().unwrap()]);
    assert_eq!(b.status.code(), Some(0), "{}", text(&b.stderr));
    let strip = |o: &Output| {
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["captures"][0]["file"] = serde_json::Value::Null;
        v
    };
    assert_eq!(strip(&a), strip(&b));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["flows", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let gz_bytes = std::fs::read(&gz).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || stdin.write_all(&gz_bytes));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("websocket"));
}

/// `tether ... | head`: the reader goes away after one line; tether
/// neither panics nor reports an error, whatever the command.
#[test]
fn closed_pipe_is_not_a_panic() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../replays");
    let lab = corpus("lab");
    let sweep = spec.join("spice-gtk-lb-idle.toml");
    let cases: Vec<Vec<&str>> = vec![
        vec!["replay", spec.to_str().unwrap()],
        vec!["run", "--list"],
        vec!["decode", "--events", lab.to_str().unwrap()],
        vec!["score", lab.to_str().unwrap()],
        vec![
            "sweep",
            sweep.to_str().unwrap(),
            "--param",
            "lb_idle_timeout=1s..300s:1s",
        ],
    ];
    for args in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(&args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

/// `triage --set` is checked as `run`'s is: a constant no profile has, or
/// a value that does not parse, is refused before any capture is read.
#[test]
fn triage_set_is_validated() {
    let cap = corpus("lab/spice-user-close.pcap");
    let out = tether(&["triage", "--set", "bogus=1s", cap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--set: unknown constant `bogus`"));
    let out = tether(&["triage", "--set", "ping_interval=xx", cap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ping_interval"));
    let out = tether(&[
        "triage",
        "--set",
        "ping_interval=20s",
        cap.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// An unknown profile lists every profile of both registries.
#[test]
fn unknown_profile_lists_all() {
    let cap = corpus("lab/spice-user-close.pcap");
    let out = tether(&["triage", "--profile", "zzz", cap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for p in [
        "spice-ryll",
        "spice-gtk",
        "novnc-displaytab",
        "runner-ws",
        "wormhole-pane",
    ] {
        assert!(err.contains(p), "{p} missing: {err}");
    }
}

/// `gen` refuses a size too small for one packet; sizes are decimal for
/// SI prefixes and binary for IEC ones, as everywhere.
#[test]
fn gen_sizes() {
    let tmp = scratch("gen");
    let d = tmp.path().to_path_buf();
    let f = d.join("g.pcap");
    let out = tether(&["gen", "--size", "0", "-o", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("too small for one packet"));
    assert!(!f.exists());
    // The generator overshoots by at most a few open connections' ends.
    for (size, lo, hi) in [
        ("20M", 20_000_000, 20_500_000),
        ("20MiB", 20_971_520, 21_471_520),
    ] {
        let out = tether(&["gen", "--size", size, "-o", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let len = std::fs::metadata(&f).unwrap().len();
        assert!((lo..hi).contains(&len), "{size}: {len} bytes");
    }
}

/// A `--plot` that cannot be written is refused before the sweep runs (no
/// results were printed), naming the flag and the path.
#[test]
fn sweep_plot_checked_first() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../replays/spice-gtk-lb-idle.toml");
    for plot in ["/nonexistent-dir/a.svg", "plot.txt"] {
        let out = tether(&[
            "sweep",
            spec.to_str().unwrap(),
            "--param",
            "lb_idle_timeout=1s..3s:1s",
            "--plot",
            plot,
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(err.contains("--plot") && err.contains(plot), "{err}");
    }
}

/// Completions and the manual page are generated from the same command
/// definition, so every subcommand is in both.
#[test]
fn completions_and_man_page_name_every_command() {
    let bash = tether(&["completions", "bash"]);
    let man = tether(&["man"]);
    assert_eq!(bash.status.code(), Some(0));
    assert_eq!(man.status.code(), Some(0));
    let (bash, man) = (text(&bash.stdout), text(&man.stdout));
    assert!(
        man.starts_with(".ie") && man.contains(".TH tether 1"),
        "{man}"
    );
    for cmd in [
        "flows", "decode", "triage", "score", "replay", "sweep", "merge",
    ] {
        assert!(bash.contains(cmd), "{cmd} missing from completions");
        assert!(man.contains(cmd), "{cmd} missing from the man page");
    }
}

/// JSON has one shape per command, whatever the number of inputs: decode
/// an object of `captures` and `bug_reports`, flows one array of rows each
/// naming its file, triage an array of triages.
#[test]
fn json_shape_does_not_depend_on_the_number_of_inputs() {
    let a = corpus("lab/ws-user-close.pcap");
    let b = corpus("lab/spice-user-close.pcap");
    let zip = corpus("bugreports/ryll-disconnect-main.zip");
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let out = tether(&all);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (a, b, zip) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        zip.to_str().unwrap(),
    );
    let one = json(&["decode", a]);
    let two = json(&["decode", a, b, zip]);
    assert_eq!(one["captures"].as_array().unwrap().len(), 1);
    assert_eq!(one["bug_reports"].as_array().unwrap().len(), 0);
    assert_eq!(two["captures"].as_array().unwrap().len(), 2);
    assert_eq!(two["bug_reports"].as_array().unwrap().len(), 1);
    assert_eq!(one["captures"][0], two["captures"][0]);
    let one = json(&["flows", a]);
    let two = json(&["flows", a, b]);
    assert_eq!(one[0]["file"], a);
    assert_eq!(one[0], two[0]);
    assert!(two.as_array().unwrap().iter().any(|r| r["file"] == b));
    let one = json(&["triage", a]);
    let two = json(&["triage", a, b]);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(two.as_array().unwrap().len(), 2);
    assert_eq!(one[0], two[0]);
}

/// A bad proxy flag is refused naming the flag and what was given.
#[test]
fn proxy_errors_name_the_flag() {
    for (flag, value) in [
        ("--blackhole", "xx"),
        ("--kill", "soon"),
        ("--bandwidth", "fast"),
        ("--duration", "1 fortnight"),
    ] {
        let out = tether(&[
            "proxy",
            "--listen",
            "127.0.0.1:6297",
            "--upstream",
            "127.0.0.1:6296",
            flag,
            value,
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains(flag), "{flag}: {err}");
    }
}

/// `run` refuses a timeline with events the profile does not model (a
/// SPICE server that stops pinging, against noVNC), naming them, rather
/// than a verdict that silently ignored them; a timeline it models runs.
#[test]
fn run_refuses_events_the_profile_cannot_use() {
    let spice = corpus("synthetic/spice-server-stops-pinging-main.toml");
    let out = tether(&[
        "run",
        spice.to_str().unwrap(),
        "--profile",
        "novnc-displaytab",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot use server_stops_pinging"));
    let out = tether(&["run", spice.to_str().unwrap(), "--profile", "spice-gtk"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let novnc = corpus("synthetic/novnc-drop-400s.toml");
    let out = tether(&[
        "run",
        novnc.to_str().unwrap(),
        "--profile",
        "novnc-displaytab",
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
}

/// Every command's `--help` ends with an example, and each example that
/// only reads committed inputs runs to a verdict (exit 0 or 1) from the
/// repository root.
#[test]
fn every_help_has_an_example_that_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let commands = [
        "flows", "decode", "gen", "run", "replay", "bisect", "sweep", "triage", "score", "merge",
        "proxy",
    ];
    let mut ran = 0;
    for cmd in commands {
        let help = text(&tether(&[cmd, "--help"]).stdout);
        let (_, examples) = help
            .split_once("Example:\n")
            .unwrap_or_else(|| panic!("{cmd} --help has no example: {help}"));
        for line in examples.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(
                line.starts_with("tether ") || line.contains("| tether"),
                "{line}"
            );
            let writes = ["--svg", "--plot", "--junit", " -o ", "|", "*"];
            if matches!(cmd, "proxy" | "merge" | "gen") || writes.iter().any(|w| line.contains(w)) {
                continue;
            }
            let args: Vec<&str> = line.split_whitespace().skip(1).collect();
            let out = Command::new(env!("CARGO_BIN_EXE_tether"))
                .args(&args)
                .current_dir(&root)
                .output()
                .unwrap();
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{line}: {}",
                text(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 8, "only {ran} examples ran");
}

/// `--connection`, `--client`, `--protocol` and `--time` narrow what flows
/// and decode report, on a real relay capture (two noVNC generations,
/// each a WebSocket leg and an RFB leg).
#[test]
fn selection_narrows_flows_and_decode() {
    let cap = corpus("lab/novnc-relay-restarted.pcap");
    let cap = cap.to_str().unwrap();
    let rows = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec!["flows", cap, "--format", "json"];
        args.extend_from_slice(extra);
        let out = tether(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["connection"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(rows(&[]), [0, 1, 2, 3]);
    assert_eq!(rows(&["--protocol", "ws"]), [0, 2]);
    assert_eq!(rows(&["--protocol", "rfb", "--time", "10s.."]), [3]);
    assert_eq!(rows(&["--connection", "1", "--connection", "2"]), [1, 2]);
    assert_eq!(rows(&["--client", "127.0.0.1:50692"]), [1]);
    assert_eq!(rows(&["--client", "127.0.0.1"]).len(), 4);
    let out = tether(&[
        "decode",
        cap,
        "--format",
        "json",
        "--protocol",
        "rfb",
        "--time",
        "0s..5s",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = v["captures"][0]["connections"].as_array().unwrap();
    // The WebSocket leg's stack carries rfb too (tcp/ws/rfb).
    let ids: Vec<u64> = conns
        .iter()
        .map(|c| c["connection"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1]);
    let out = tether(&["flows", cap, "--time", "5s..1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ends before it starts"));
}

/// `--format jsonl` is the JSON output one object per line: flows' rows,
/// decode's inputs (`capture` or `bug_report`), triage's triages, equal
/// to the same objects in `--format json`.
#[test]
fn jsonl_is_json_one_object_per_line() {
    let a = corpus("lab/ws-user-close.pcap");
    let zip = corpus("bugreports/ryll-disconnect-main.zip");
    let (a, zip) = (a.to_str().unwrap(), zip.to_str().unwrap());
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = tether(args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let whole = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&tether(args).stdout).unwrap()
    };
    let rows = lines(&["flows", a, "--format", "jsonl"]);
    assert_eq!(
        serde_json::Value::Array(rows),
        whole(&["flows", a, "--format", "json"])
    );
    let d = lines(&["decode", a, zip, "--format", "jsonl"]);
    let w = whole(&["decode", a, zip, "--format", "json"]);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["capture"], w["captures"][0]);
    assert_eq!(d[1]["bug_report"], w["bug_reports"][0]);
    let t = lines(&["triage", a, "--format", "jsonl"]);
    assert_eq!(
        serde_json::Value::Array(t),
        whole(&["triage", a, "--format", "json"])
    );
}

/// `triage --session N` and `--client ADDR` report only those sessions,
/// numbered as in the whole report; the headline is kept only while its
/// session is.
#[test]
fn triage_selects_sessions() {
    let cap = corpus("lab/ws-several-clients.pcap");
    let cap = cap.to_str().unwrap();
    let out = text(&tether(&["triage", cap, "--session", "2"]).stdout);
    assert!(out.contains("\nsession 2: "), "{out}");
    assert!(
        !out.contains("\nsession 1: ") && !out.contains("\nsession 3: "),
        "{out}"
    );
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["triage", cap, "--no-what-if", "--format", "json"];
        args.extend_from_slice(extra);
        serde_json::from_slice(&tether(&args).stdout).unwrap()
    };
    let all = json(&[]);
    let numbers = |v: &serde_json::Value| -> Vec<u64> {
        v[0]["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["number"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(numbers(&all), [1, 2, 3]);
    let two = json(&["--session", "2", "--session", "3"]);
    assert_eq!(numbers(&two), [2, 3]);
    assert_eq!(two[0]["sessions"][0], all[0]["sessions"][1]);
    assert_eq!(numbers(&json(&["--client", "127.0.0.1"])), [1, 2, 3]);
    assert_eq!(numbers(&json(&["--client", "10.9.9.9"])), Vec::<u64>::new());
}
