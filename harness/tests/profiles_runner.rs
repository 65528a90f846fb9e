//! runner-ws (seed 003): how long a half-open client holds the single
//! attach slot under each variant, and the load balancer's idle drop.

use proptest::prelude::*;
use tether::model::registry::run_timeline;
use tether::timeline::synthetic::Timeline;
use tether::verdict::{Outcome, Verdict};

fn run(timeline: &str, profile: &str) -> Verdict {
    let t = Timeline::parse(timeline, "t.toml").unwrap();
    run_timeline(&t, "t.toml", profile, &[]).unwrap()
}

/// Idle behind a 60 s LB; the client vanishes at `vanish_s`.
fn half_open_at(vanish_s: u64) -> String {
    format!(
        "horizon = \"1h\"\n[network]\nlatency = \"10ms\"\n[lb]\nidle_timeout = \"60s\"\n\
         on_expiry = \"rst\"\n[[event]]\nkind = \"half_open\"\nat = \"{vanish_s}s\"\n"
    )
}

/// When the runner freed the slot (the chain entry that says so).
fn slot_freed_at(v: &Verdict) -> f64 {
    v.chain
        .iter()
        .find(|c| c.actor == "runner")
        .map(|c| c.at)
        .unwrap_or_else(|| panic!("slot never freed: {:?}", v.chain))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn pong_deadline_frees_the_slot_within_45s(vanish in 20u64..2000) {
        let v = run(&half_open_at(vanish), "runner-ws@pong-deadline");
        let freed = slot_freed_at(&v);
        prop_assert!(freed > vanish as f64 && freed <= vanish as f64 + 45.0, "{freed}");
        prop_assert_eq!(v.outcome, Outcome::Survived);
        prop_assert_eq!(v.sessions, 2);
    }

    #[test]
    fn ping_only_holds_the_slot_until_tcp_gives_up(vanish in 20u64..2000) {
        let v = run(&half_open_at(vanish), "runner-ws@ping-only");
        // The first ping into the dead peer, then tcp_retries2's 924.6 s.
        let first_ping = vanish.div_ceil(15) * 15;
        let freed = slot_freed_at(&v);
        if first_ping as f64 + 924.6 <= 3600.0 {
            prop_assert!((freed - (first_ping as f64 + 924.6)).abs() < 1e-6, "{freed}");
        }
        prop_assert_eq!(v.outcome, Outcome::Blocked);
        prop_assert_eq!(v.at, Some(vanish as f64));
    }
}

#[test]
fn no_keepalive_is_dropped_by_the_lb_and_pings_keep_it() {
    let idle = "horizon = \"10m\"\n[lb]\nidle_timeout = \"60s\"\non_expiry = \"rst\"\n";
    let none = run(idle, "runner-ws@no-keepalive");
    assert_eq!(none.outcome, Outcome::Disconnected);
    assert_eq!(none.cause.as_deref(), Some("lb.idle_timeout"));
    assert_eq!(none.at, Some(60.0));
    assert_eq!(run(idle, "runner-ws@ping-only").outcome, Outcome::Survived);
    assert_eq!(
        run(idle, "runner-ws@pong-deadline").outcome,
        Outcome::Survived
    );
}

#[test]
fn a_pong_wait_below_the_ping_interval_is_flagged_and_kills_healthy_peers() {
    let t = Timeline::parse("horizon = \"10m\"\n", "t.toml").unwrap();
    let v = run_timeline(
        &t,
        "t.toml",
        "runner-ws@pong-deadline",
        &["pong_wait=10s".into()],
    )
    .unwrap();
    let codes: Vec<&str> = v.violations.iter().map(|x| x.code.as_str()).collect();
    assert_eq!(codes, vec!["runner.pong_wait_not_above_ping_interval"]);
    assert_eq!(v.outcome, Outcome::Disconnected);
    assert_eq!(v.cause.as_deref(), Some("runner.pong_deadline"));
    assert_eq!(v.at, Some(10.0));
}

#[test]
fn a_user_close_ends_the_run_there_in_every_variant() {
    // The user closes at 25 s, before a 60 s LB could cut the idle session:
    // every variant stops there, with nothing to blame.
    let t = "horizon = \"1h\"\n[network]\nlatency = \"10ms\"\n[lb]\nidle_timeout = \"60s\"\n\
             on_expiry = \"rst\"\n[[event]]\nkind = \"user_close\"\nat = \"25s\"\n";
    for variant in ["no-keepalive", "ping-only", "pong-deadline"] {
        let v = run(t, &format!("runner-ws@{variant}"));
        assert_eq!(v.outcome, Outcome::Survived, "{variant}");
        assert_eq!(v.cause.as_deref(), Some("client.closed"), "{variant}");
        assert_eq!(v.at, Some(25.0), "{variant}");
        assert!(
            !v.chain.iter().any(|c| c.what.contains("not modelled")),
            "{variant}: {:?}",
            v.chain
        );
    }
}
