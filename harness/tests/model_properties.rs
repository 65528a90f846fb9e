//! Properties of the model on random timelines: the same timeline gives
//! the same verdict bytes; time never goes backwards; every run ends.
//! And the model reads no real clock: its sources do not name one.

use proptest::prelude::*;
use tether::model::registry::run_timeline;
use tether::timeline::Micros;
use tether::timeline::synthetic::{
    ChannelKind, Dur, LbExpiry, LbSpec, NetworkSpec, ScriptEvent, ServerBehaviour, ServerSpec,
    Timeline, default_channels,
};

const HORIZON_S: u64 = 3 * 3600;

fn d(ms: u64) -> Dur {
    Dur(Micros(ms * 1_000))
}

fn channel() -> impl Strategy<Value = ChannelKind> {
    prop::sample::select(default_channels())
}

fn event() -> impl Strategy<Value = ScriptEvent> {
    let t = 0..HORIZON_S * 1000;
    prop_oneof![
        (t.clone(), 1..600_000u64, 200..60_000u64).prop_map(|(a, len, every)| {
            ScriptEvent::UserActive {
                from: d(a),
                to: d(a + len),
                every: d(every),
            }
        }),
        t.clone().prop_map(|a| ScriptEvent::Keystroke { at: d(a) }),
        (t.clone(), 1..600_000u64, 50..10_000u64, channel()).prop_map(
            |(a, len, every, channel)| {
                ScriptEvent::ServerData {
                    channel,
                    from: d(a),
                    to: d(a + len),
                    every: d(every),
                    bytes: None,
                }
            }
        ),
        (t.clone(), prop::option::of(channel()))
            .prop_map(|(a, channel)| ScriptEvent::ServerStopsAnswering { at: d(a), channel }),
        (t.clone(), channel())
            .prop_map(|(a, channel)| ScriptEvent::ServerStopsPinging { at: d(a), channel }),
        (t.clone(), prop::option::of(1..900_000u64)).prop_map(|(a, len)| {
            ScriptEvent::ClientStalls {
                at: d(a),
                until: len.map(|l| d(a + l)),
            }
        }),
        t.clone()
            .prop_map(|a| ScriptEvent::ServerKilled { at: d(a) }),
        t.clone()
            .prop_map(|a| ScriptEvent::ServerRestarted { at: d(a) }),
        (t.clone(), 1..1_200_000u64).prop_map(|(a, len)| ScriptEvent::Blackhole {
            from: d(a),
            to: d(a + len)
        }),
        (t.clone(), prop::option::of(channel()))
            .prop_map(|(a, channel)| ScriptEvent::HalfOpen { at: d(a), channel }),
        t.prop_map(|a| ScriptEvent::UserClose { at: d(a) }),
    ]
}

fn timeline() -> impl Strategy<Value = Timeline> {
    (
        prop::collection::vec(event(), 0..8),
        any::<bool>(),
        prop::option::of((10_000..200_000u64, any::<bool>())),
        any::<bool>(),
        0..300u64,
    )
        .prop_map(|(events, belief, lb, single_use, latency_ms)| Timeline {
            horizon: Dur(Micros(HORIZON_S * 1_000_000)),
            description: String::new(),
            channels: default_channels(),
            network: NetworkSpec {
                latency: d(latency_ms),
            },
            server: ServerSpec {
                behaviour: if belief {
                    ServerBehaviour::Seed002Belief
                } else {
                    ServerBehaviour::Source
                },
                single_use_ticket: single_use,
                ticket_valid_until: None,
            },
            lb: lb.map(|(ms, silent)| LbSpec {
                idle_timeout: d(ms),
                on_expiry: if silent {
                    LbExpiry::Silent
                } else {
                    LbExpiry::Rst
                },
            }),
            events,
        })
}

fn profile() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "spice-gtk",
        "spice-ryll@pre-phase02",
        "spice-ryll@proactive-ping",
        "spice-ryll@phase02",
    ])
}

proptest! {
    // PROPTEST_CASES raises the count for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_timeline_same_verdict_bytes(t in timeline(), p in profile()) {
        let a = run_timeline(&t, "p", p, &[]).unwrap();
        let b = run_timeline(&t, "p", p, &[]).unwrap();
        prop_assert_eq!(a.to_json(), b.to_json());
        prop_assert_eq!(a.to_text(), b.to_text());
    }

    #[test]
    fn time_never_goes_backwards_and_every_run_ends(t in timeline(), p in profile()) {
        let v = run_timeline(&t, "p", p, &[]).unwrap();
        prop_assert!(v.violations.iter().all(|x| !x.code.starts_with("model.")), "{:?}", v.violations);
        let times: Vec<f64> = v.chain.iter().map(|c| c.at).collect();
        prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        prop_assert!(times.iter().all(|&x| x <= HORIZON_S as f64));
        if let Some(at) = v.at {
            prop_assert!(at <= HORIZON_S as f64);
        }
        for r in &v.reconnects {
            if let Some(s) = r.started_at {
                prop_assert!(s >= r.scheduled_at);
            }
        }
        // A 3 h run with pings every 15 s and user input stays far below
        // the livelock bound.
        prop_assert!(v.steps < 5_000_000, "{}", v.steps);
    }
}

#[test]
fn a_livelock_is_caught_by_the_step_bound() {
    // 1 µs user input for an hour: the bound stops it and says so.
    let t = Timeline::parse(
        "horizon = \"1h\"\n[[event]]\nkind = \"user_active\"\nfrom = \"0s\"\nto = \"1h\"\nevery = \"1us\"\n",
        "t",
    )
    .unwrap();
    let (profile, variant) = tether::model::registry::resolve_spice("spice-gtk").unwrap();
    let c = tether::model::sim::constants_for(profile, variant, &t);
    let v = tether::model::sim::Sim::new(profile, variant, &c, &t, "t")
        .with_max_steps(10_000)
        .run();
    assert_eq!(v.violations[0].code, "model.step_bound");
    // The steps taken: the one the bound refused is not counted.
    assert_eq!(v.steps, 10_000);
}

#[test]
fn the_model_never_names_a_real_clock() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root.join("timeline/synthetic.rs")];
    // Subdirectories too (model/profiles/).
    let mut dirs = vec![root.join("model"), root.join("verdict")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for banned in [
            "Instant",
            "SystemTime",
            "UNIX_EPOCH",
            "thread::sleep",
            "std::thread",
            "rand::",
            "tokio",
            "chrono",
        ] {
            assert!(!text.contains(banned), "{} names {banned}", f.display());
        }
    }
}

#[test]
fn every_time_is_written_one_way() {
    // Triage, the model and live mode print a time as `verdict::t_plus`
    // does: seconds since the input's zero, to the millisecond, no unit.
    assert_eq!(tether::verdict::t_plus(17.0893), "T+17.089");
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut checked = 0;
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                let mut rest = line;
                while let Some(at) = rest.find("T+{") {
                    rest = &rest[at + 3..];
                    let Some(close) = rest.find('}') else { break };
                    let (spec, after) = (&rest[..close], &rest[close + 1..]);
                    checked += 1;
                    // A duration written as the user gave it (`T+{}` with
                    // format_duration, a fault's schedule) carries its unit.
                    if spec.is_empty() {
                        continue;
                    }
                    assert!(
                        !(after.starts_with('s') || after.starts_with(" s")),
                        "{}:{}: a time with a unit after it: {line}",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
    }
    assert!(checked > 50, "{checked}");
}
