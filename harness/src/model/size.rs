//! Byte sizes, everywhere a person writes one (`gen --size`, the decode
//! limits, the proxy's bandwidth): one convention, the standard one. SI
//! prefixes are decimal (`64k` and `64kB` are 64,000 bytes, `4M` is
//! 4,000,000), IEC prefixes binary (`64KiB` is 65,536, `4MiB` 4,194,304);
//! the unit is case-insensitive and the `B` optional. Parsed by the
//! parse-size crate.

/// Parses a size; the error says what was given and what is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text).map_err(|e| {
        format!(
            "{text:?} is not a size ({e}): a number with an optional unit, decimal k, M, G (powers of 1000) or binary KiB, MiB, GiB (powers of 1024)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn si_is_decimal_and_iec_is_binary() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64_000));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("4M"), Ok(4_000_000));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("12B"), Ok(12));
        assert!(parse_size("").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert!(parse_size("4 furlongs").is_err());
    }
}
