//! Live mode (`tether proxy`): a recording, fault-injecting TCP proxy that
//! judges a real session while it runs.
//!
//! Only [`proxy`] does I/O and reads the real clock; it turns what passes
//! into `(time, bytes)` and hands it to [`recorder`], which writes the pcap
//! and feeds the very same frames to the sans-IO reassembly and decoders
//! that replays use, and to [`monitor`], which draws the verdict. The
//! [`faults`] plan is plain data with plain functions of time.

pub mod faults;
pub mod monitor;
pub mod proxy;
pub mod recorder;

pub use faults::FaultPlan;
pub use monitor::LiveVerdict;
pub use proxy::{Line, LiveConfig, LiveReport, Printer, run};

use crate::model::constants::{Constants, Value};
use crate::timeline::Micros;

/// Constants whose names say they are liveness timers; the status line
/// counts each down from the last data either way.
fn is_timer_name(name: &str) -> bool {
    ["interval", "timeout", "wait", "ttl", "deadline"]
        .iter()
        .any(|w| name.contains(w))
        && !name.starts_with("tcp_")
        && !name.starts_with("reconnect")
}

/// The liveness timers of `profile@variant` (with `--set` overrides), as
/// the status line shows them. The idle-drop fault stands for the load
/// balancer, so it becomes the timeline's `[lb] idle_timeout`.
pub fn profile_timers(
    spec: &str,
    overrides: &[String],
    idle: Option<Micros>,
) -> Result<Vec<(String, Micros)>, String> {
    let mut text = "horizon = \"1h\"\n".to_string();
    if let Some(d) = idle.filter(|d| d.0 > 0) {
        text.push_str(&format!(
            "[lb]\nidle_timeout = \"{}\"\non_expiry = \"rst\"\n",
            crate::model::duration::format_duration(d)
        ));
    }
    let timeline =
        crate::timeline::synthetic::Timeline::parse(&text, "live").map_err(|e| e.to_string())?;
    let c: Constants = crate::model::registry::constants(spec, &timeline, overrides)?;
    Ok(c.iter()
        .filter_map(|(name, value, _)| match value {
            Value::Duration(d) if d.0 > 0 && is_timer_name(name) => Some((name.to_string(), *d)),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_timers_come_from_the_profile_and_the_idle_fault() {
        let t = super::profile_timers(
            "runner-ws@ping-only",
            &["ping_interval=10s".to_string()],
            Some(super::Micros(2_000_000)),
        );
        let t = t.unwrap_or_else(|e| panic!("{e}"));
        let get = |n: &str| t.iter().find(|(k, _)| k == n).map(|(_, d)| d.0);
        assert_eq!(get("ping_interval"), Some(10_000_000));
        assert_eq!(get("pong_wait"), Some(45_000_000));
        assert!(super::profile_timers("nope@x", &[], None).is_err());
        let spice =
            super::profile_timers("spice-ryll@phase02", &[], Some(super::Micros(60_000_000)))
                .unwrap();
        assert!(
            spice
                .iter()
                .any(|(k, d)| k == "lb_idle_timeout" && d.0 == 60_000_000),
            "{spice:?}"
        );
    }
}
