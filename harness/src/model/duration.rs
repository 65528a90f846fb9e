//! Durations written with units, everywhere a person reads or writes one:
//! `"250ms"`, `"1.5s"`, `"120s"`, `"15m"`, `"24h"`.

use crate::timeline::Micros;

const UNITS: &[(&str, u64)] = &[
    ("us", 1),
    ("ms", 1_000),
    ("s", 1_000_000),
    ("m", 60_000_000),
    ("h", 3_600_000_000),
    ("d", 86_400_000_000),
];

/// Parses `<number><unit>`; the number may have a fraction (`1.5s`). Exact:
/// no floating point, so `0.1s` is 100000 µs, not 99999.
pub fn parse_duration(text: &str) -> Result<Micros, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("duration {text:?} has no unit (write e.g. 250ms, 1.5s, 15m, 2h)")
        })?;
    let (number, unit) = s.split_at(split);
    let scale = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            format!("duration {text:?}: unknown unit {unit:?} (units: us, ms, s, m, h, d)")
        })?;
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return Err(format!("duration {text:?}: bad number {number:?}"));
    }
    let bad = || format!("duration {text:?} is out of range or malformed");
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| bad())?
    };
    let mut total = int.checked_mul(scale as u128).ok_or_else(bad)?;
    if !frac_part.is_empty() {
        if frac_part.len() > 12 {
            return Err(bad());
        }
        let frac: u128 = frac_part.parse().map_err(|_| bad())?;
        let denom = 10u128.pow(frac_part.len() as u32);
        let scaled = frac * scale as u128;
        if !scaled.is_multiple_of(denom) {
            return Err(format!("duration {text:?} is finer than a microsecond"));
        }
        total += scaled / denom;
    }
    u64::try_from(total).map(Micros).map_err(|_| bad())
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
