//! `tether bisect` on the SPICE profiles: boundaries that follow from the
//! model's timers by arithmetic, found within the resolution; constants
//! with more than one boundary reported as non-monotonic.

use std::path::{Path, PathBuf};
use tether::model::duration::parse_duration;
use tether::replay::sweep::{BisectResult, Class, Kind, PROBES, Target, bisect, bisect_with};

fn spec(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/synthetic/bisect")
        .join(name)
}

fn us(text: &str) -> u64 {
    parse_duration(text).unwrap().0
}

const MS: u64 = 1_000;

/// Bisects `param` over `lo..hi` with `extra` overrides on top of the spec
/// and returns the bracket (below, above) in µs with its two classes.
fn bracket(
    target: &Target,
    param: &str,
    extra: &[&str],
    lo: &str,
    hi: &str,
) -> (u64, u64, Class, Class, u64) {
    let (result, runs) = bisect_with(us(lo), us(hi), MS, |x| {
        let mut sets: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        sets.push(format!("{param}={}", Kind::Duration.format(x)));
        let v = target.run(&sets)?;
        Ok((Class::of(&v), v.at))
    })
    .unwrap();
    match result {
        BisectResult::Boundary {
            below,
            below_class,
            above,
            above_class,
        } => (
            below.parse().unwrap(),
            above.parse().unwrap(),
            below_class,
            above_class,
            runs.len() as u64,
        ),
        other => panic!("{param}: expected one boundary, got {other:?}"),
    }
}

fn assert_within(param: &str, (below, above): (u64, u64), analytic: u64) {
    assert!(
        above > below && above - below <= MS,
        "{param}: bracket {below}..{above} wider than 1 ms"
    );
    assert!(
        below <= analytic && analytic <= above,
        "{param}: analytic {analytic} µs outside the bracket {below}..{above}"
    );
}

fn disconnected(cause: &str) -> Class {
    Class {
        outcome: "disconnected".into(),
        cause: Some(cause.into()),
    }
}

fn survived() -> Class {
    Class {
        outcome: "survived".into(),
        cause: None,
    }
}

/// Only data resets the LB and most channels carry a server PING every
/// long_ping_interval, which reaches the LB one latency later: the session
/// survives exactly when lb_idle_timeout > long_ping_interval + latency.
#[test]
fn lb_idle_timeout_against_the_long_ping_interval() {
    let t = Target::load(&spec("spice-gtk-lb-idle.toml")).unwrap();
    for (extra, analytic) in [
        (vec![], us("300s") + us("10ms")),
        (vec!["latency=50ms"], us("300s") + us("50ms")),
        (
            vec!["long_ping_interval=2m", "latency=5ms"],
            us("120s") + us("5ms"),
        ),
    ] {
        let (below, above, lo_class, hi_class, runs) =
            bracket(&t, "lb_idle_timeout", &extra, "10s", "20m");
        assert_within("lb_idle_timeout", (below, above), analytic);
        assert_eq!(lo_class, disconnected("tcp.reset"));
        assert_eq!(hi_class, survived());
        // 17 probes, then halving a ~70 s bracket down to 1 ms.
        assert!(runs <= PROBES + 27, "{runs} runs");
    }
}

/// ryll's 30 s mirror timeout on main: the server pings main
/// ping_interval after the previous PONG reached it, so the client sees
/// main traffic every ping_interval + 2 x latency.
#[test]
fn ryll_mirror_timeout_against_the_server_ping_interval() {
    let t = Target::load(&spec("spice-ryll-pre-phase02-idle-day.toml")).unwrap();
    for (extra, analytic) in [
        (vec![], us("15s") + 2 * us("10ms")),
        (
            vec!["ping_interval=20s", "latency=100ms"],
            us("20s") + 2 * us("100ms"),
        ),
    ] {
        let (below, above, lo_class, hi_class, _) =
            bracket(&t, "client_liveness_timeout", &extra, "1s", "10m");
        assert_within("client_liveness_timeout", (below, above), analytic);
        assert_eq!(lo_class, disconnected("client.liveness_timeout"));
        assert_eq!(hi_class, survived());
    }
    // The other way round: the server's ping interval against the fixed
    // 30 s mirror; it must stay below 30 s - 2 x latency.
    let (below, above, lo_class, hi_class, _) = bracket(&t, "ping_interval", &[], "1s", "10m");
    assert_within("ping_interval", (below, above), us("30s") - 2 * us("10ms"));
    assert_eq!(lo_class, survived());
    assert_eq!(hi_class, disconnected("client.liveness_timeout"));
}

/// A 120 s client stall against the server's connectivity ticks
/// (connectivity_timeout T): with T below (120 s - 15 s ping interval) / 2
/// two ticks always fall inside the stall and the session drops; from
/// T = 120 s on they never can. The lowest boundary lies between.
#[test]
fn client_stall_against_the_connectivity_ticks() {
    let t = Target::load(&spec("spice-gtk-client-stall.toml")).unwrap();
    let report = bisect(
        &t,
        "connectivity_timeout",
        Kind::Duration,
        us("1s"),
        us("70s"),
        MS,
    )
    .unwrap();
    let BisectResult::Boundary {
        below,
        below_class,
        above,
        above_class,
    } = &report.result
    else {
        panic!("expected a boundary: {}", report.to_text());
    };
    let (below, above) = (us(below), us(above));
    assert!(above - below <= MS);
    assert!(
        below >= us("52.5s") && above <= us("120s"),
        "{}",
        report.to_text()
    );
    assert_eq!(*below_class, disconnected("server.connectivity_timeout"));
    assert_eq!(*above_class, survived());
    assert_eq!(report.runs as usize, report.probes.len());
    // The default 30 s is well inside the always-drops side.
    let v = t.run(&["connectivity_timeout=30s".into()]).unwrap();
    assert_eq!(Class::of(&v), disconnected("server.connectivity_timeout"));
}

/// Above the lowest boundary the ticks' phase decides, so the verdict
/// alternates (85 s drops, 80 s and 90 s survive): over 70 s..100 s bisect
/// must say non-monotonic, not return a boundary.
#[test]
fn connectivity_timeout_over_a_phase_window_is_non_monotonic() {
    let t = Target::load(&spec("spice-gtk-client-stall.toml")).unwrap();
    for x in ["80s", "90s"] {
        let v = t.run(&[format!("connectivity_timeout={x}")]).unwrap();
        assert_eq!(Class::of(&v), survived(), "{x}");
    }
    let v = t.run(&["connectivity_timeout=85s".into()]).unwrap();
    assert_eq!(Class::of(&v), disconnected("server.connectivity_timeout"));

    let report = bisect(
        &t,
        "connectivity_timeout",
        Kind::Duration,
        us("70s"),
        us("100s"),
        MS,
    )
    .unwrap();
    let BisectResult::NonMonotonic { flips } = &report.result else {
        panic!("expected non-monotonic: {}", report.to_text());
    };
    assert!(flips.len() >= 2, "{}", report.to_text());
    // Neighbouring flips chain: each starts from the verdict the last ended on.
    for w in flips.windows(2) {
        assert_eq!(w[0].1.class, w[1].0.class);
    }
    for (before, after) in flips {
        assert_ne!(before.class, after.class);
        assert!(us(&before.value) < us(&after.value));
    }
    assert!(report.to_text().contains("NON-MONOTONIC"));
}

/// Precisely constructed verdict functions: a window (two boundaries), a
/// third verdict hiding inside the bracket, no flip, and one exact step.
#[test]
fn search_logic_on_constructed_functions() {
    let a = || Class {
        outcome: "a".into(),
        cause: None,
    };
    let b = || Class {
        outcome: "b".into(),
        cause: None,
    };
    let window = |x: u64| Ok(((if (400..600).contains(&x) { b() } else { a() }), None));
    let (r, _) = bisect_with(0, 1600, 1, window).unwrap();
    assert!(
        matches!(r, BisectResult::NonMonotonic { ref flips } if flips.len() == 2),
        "{r:?}"
    );

    // Probes at multiples of 100 see a and b only; c lives at 1003..=1005.
    let third = |x: u64| {
        let c = Class {
            outcome: "c".into(),
            cause: None,
        };
        Ok((
            if x < 1000 {
                a()
            } else if x < 1003 {
                c
            } else {
                b()
            },
            None,
        ))
    };
    let (r, _) = bisect_with(0, 1600, 1, third).unwrap();
    assert!(matches!(r, BisectResult::NonMonotonic { .. }), "{r:?}");

    let (r, runs) = bisect_with(0, 1600, 1, |_| Ok((a(), None))).unwrap();
    assert_eq!(r, BisectResult::NoChange { class: a() });
    assert_eq!(runs.len() as u64, PROBES);

    let (r, _) = bisect_with(0, 1600, 1, |x| Ok((if x < 777 { a() } else { b() }, None))).unwrap();
    assert_eq!(
        r,
        BisectResult::Boundary {
            below: "776".into(),
            below_class: a(),
            above: "777".into(),
            above_class: b(),
        }
    );
}

/// noVNC #2216 renews its 300 s lease every renewal_interval as the same
/// holder; a renewal lands one round trip (2 x 10 ms) after it is sent, so
/// control holds for the hour exactly when the interval is below
/// 300 s - 20 ms (the profile's own invariant).
#[test]
fn novnc_renewal_interval_against_the_lease_ttl() {
    let t = Target::load(&spec("novnc-2216-renewal.toml")).unwrap();
    let (below, above, lo_class, hi_class, _) = bracket(&t, "renewal_interval", &[], "1s", "10m");
    assert_within(
        "renewal_interval",
        (below, above),
        us("300s") - 2 * us("10ms"),
    );
    assert_eq!(lo_class, survived());
    assert_eq!(hi_class, disconnected("lease.expired"));
}

/// The runner's pings are the only data on an idle attach session, and
/// the LB's 60 s idle timer is reset only by data: both the attach and
/// every ping reach the LB one latency after they leave, so the session
/// lives exactly when ping_interval < 60 s.
#[test]
fn runner_ping_interval_against_the_lb_idle_timeout() {
    let t = Target::load(&spec("runner-ping-lb.toml")).unwrap();
    let (below, above, lo_class, hi_class, _) = bracket(&t, "ping_interval", &[], "1s", "10m");
    assert_within("ping_interval", (below, above), us("60s"));
    assert_eq!(lo_class, survived());
    assert_eq!(hi_class, disconnected("lb.idle_timeout"));
}

/// The attach slot stays held until pong_wait after the server last read
/// from the vanished client (its keystroke at 290 s); a reattach must get
/// in within the 120 s budget after the vanish at 300 s, so the boundary
/// is 300 s + 120 s - 290 s = 130 s.
#[test]
fn runner_pong_wait_against_the_attach_slot_budget() {
    let t = Target::load(&spec("runner-pong-deadline.toml")).unwrap();
    let (below, above, lo_class, hi_class, _) = bracket(&t, "pong_wait", &[], "16s", "20m");
    assert_within("pong_wait", (below, above), us("130s"));
    assert_eq!(lo_class, survived());
    assert_eq!(
        hi_class,
        Class {
            outcome: "blocked".into(),
            cause: Some("runner.attach_slot_held".into()),
        }
    );
    // The same boundary moves with the budget.
    let (below, above, _, _, _) = bracket(&t, "pong_wait", &["reconnect_budget=3m"], "16s", "20m");
    assert_within("pong_wait", (below, above), us("190s"));
}
