//! Durations written with units, everywhere a person reads or writes one:
//! `"250ms"`, `"1.5s"`, `"120s"`, `"15m"`, `"24h"`.

use crate::timeline::Micros;

/// Parses `<number><unit>` with the humantime crate (`250ms`, `1.5s`,
/// `15m`, `24h`, `1d`, also `1h30m`); exact, so `0.1s` is 100000 µs.
/// A unit is required, and nothing finer than a microsecond is kept.
pub fn parse_duration(text: &str) -> Result<Micros, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("duration {text:?}: {e} (e.g. 250ms, 1.5s, 15m, 2h)"))?;
    if d.subsec_nanos() % 1_000 != 0 {
        return Err(format!("duration {text:?} is finer than a microsecond"));
    }
    u64::try_from(d.as_micros())
        .map(Micros)
        .map_err(|_| format!("duration {text:?} is out of range"))
}

/// The shortest exact spelling: whole hours or minutes when exact, else
/// seconds with a trimmed fraction, else ms or µs. Round-trips through
/// [`parse_duration`].
pub fn format_duration(d: Micros) -> String {
    let us = d.0;
    if us == 0 {
        return "0s".into();
    }
    for (unit, scale) in [("h", 3_600_000_000u64), ("m", 60_000_000)] {
        if us.is_multiple_of(scale) {
            return format!("{}{unit}", us / scale);
        }
    }
    if us >= 1_000_000 || !us.is_multiple_of(1_000) {
        if us < 1_000_000 && !us.is_multiple_of(1_000) {
            return format!("{us}us");
        }
        let whole = us / 1_000_000;
        let frac = us % 1_000_000;
        if frac == 0 {
            return format!("{whole}s");
        }
        let digits = format!("{frac:06}");
        return format!("{whole}.{}s", digits.trim_end_matches('0'));
    }
    format!("{}ms", us / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_the_issue_uses() {
        assert_eq!(parse_duration("120s"), Ok(Micros(120_000_000)));
        assert_eq!(parse_duration("1.5s"), Ok(Micros(1_500_000)));
        assert_eq!(parse_duration("15m"), Ok(Micros(900_000_000)));
        assert_eq!(parse_duration("250ms"), Ok(Micros(250_000)));
        assert_eq!(parse_duration("924.6s"), Ok(Micros(924_600_000)));
        assert_eq!(parse_duration("0.1s"), Ok(Micros(100_000)));
        assert_eq!(parse_duration("24h"), Ok(Micros(86_400_000_000)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "12",
            "s",
            "1.2.3s",
            "-1s",
            "1x",
            "1.5us",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_round_trip() {
        for (us, text) in [
            (120_000_000, "2m"),
            (1_500_000, "1.5s"),
            (250_000, "250ms"),
            (924_600_000, "924.6s"),
            (15, "15us"),
            (0, "0s"),
            (90_000_000, "90s"),
        ] {
            assert_eq!(format_duration(Micros(us)), text);
            assert_eq!(parse_duration(text), Ok(Micros(us)));
        }
    }
}
