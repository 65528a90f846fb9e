//! wormhole-pane (seed 004): the check-then-await-then-add race on the
//! reconnecting set, and the pane's size kept across the reconnect.

use proptest::prelude::*;
use tether::model::registry::run_timeline;
use tether::timeline::synthetic::Timeline;
use tether::verdict::{Outcome, Verdict};

/// Sandbox asleep at 610 s; a burst of `n` keystrokes `gap_ms` apart at 700 s.
fn burst(profile: &str, n: u64, gap_ms: u64) -> Verdict {
    let to_ms = 700_000 + (n - 1) * gap_ms;
    let text = format!(
        "horizon = \"20m\"\n[[event]]\nkind = \"keystroke\"\nat = \"10s\"\n\
         [[event]]\nkind = \"user_active\"\nfrom = \"700s\"\nto = \"{to_ms}ms\"\nevery = \"{gap_ms}ms\"\n"
    );
    let t = Timeline::parse(&text, "t.toml").unwrap();
    run_timeline(&t, "t.toml", profile, &[]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn racy_starts_one_reconnect_per_keystroke_inside_the_window(
        n in 1u64..8,
        gap_ms in 1u64..120,
    ) {
        let v = burst("wormhole-pane@racy", n, gap_ms);
        // Keystrokes up to the add at +50 ms each start a reconnect (on an
        // exact tie the script's keystroke was queued first, so it wins).
        let inside = (0..n).filter(|k| k * gap_ms <= 50).count();
        prop_assert_eq!(v.reconnects.len(), inside);
        prop_assert_eq!(v.violations.len(), usize::from(inside > 1));
        prop_assert_eq!(v.outcome, Outcome::Survived);
        // One sandbox wakes once: every reopen of the burst lands when the
        // wake the first keystroke started (700 s + 2 s) is done, each
        // keeping the time its keystroke asked.
        for (k, r) in v.reconnects.iter().enumerate() {
            prop_assert_eq!(r.started_at, Some(702.0));
            prop_assert_eq!(r.scheduled_at, (700_000 + k as u64 * gap_ms) as f64 / 1000.0);
        }
    }

    #[test]
    fn fixed_reconnects_once_whatever_the_burst(n in 1u64..8, gap_ms in 1u64..120) {
        let v = burst("wormhole-pane@fixed", n, gap_ms);
        prop_assert_eq!(v.reconnects.len(), 1);
        prop_assert!(v.violations.is_empty());
        prop_assert_eq!(v.reconnects[0].result.as_str(), "terminal reopened at 120x40");
    }
}

#[test]
fn without_a_keystroke_the_pane_stays_disconnected() {
    let t = Timeline::parse(
        "horizon = \"20m\"\n[[event]]\nkind = \"keystroke\"\nat = \"10s\"\n",
        "t.toml",
    )
    .unwrap();
    let v = run_timeline(&t, "t.toml", "wormhole-pane@fixed", &[]).unwrap();
    assert_eq!(v.outcome, Outcome::Disconnected);
    assert_eq!(v.cause.as_deref(), Some("sandbox.sleep"));
    assert_eq!(v.at, Some(610.0));
}
