//! Byte sizes: `--segment-bytes 64MiB`, `retention.bytes=1GB`, and their display.

use super::SpecError;

/// Suffixes, lowercase. A bare letter is binary, like Kafka's and the JVM's `-Xmx64m`.
const UNITS: [(&str, u64); 26] = [
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("ki", 1 << 10),
    ("kib", 1 << 10),
    ("kb", 1_000),
    ("m", 1 << 20),
    ("mi", 1 << 20),
    ("mib", 1 << 20),
    ("mb", 1_000_000),
    ("g", 1 << 30),
    ("gi", 1 << 30),
    ("gib", 1 << 30),
    ("gb", 1_000_000_000),
    ("t", 1 << 40),
    ("ti", 1 << 40),
    ("tib", 1 << 40),
    ("tb", 1_000_000_000_000),
    ("p", 1 << 50),
    ("pi", 1 << 50),
    ("pib", 1 << 50),
    ("pb", 1_000_000_000_000_000),
    ("e", 1 << 60),
    ("ei", 1 << 60),
    ("eib", 1 << 60),
    ("eb", 1_000_000_000_000_000_000),
];

/// Units [`format_size`] writes, largest last.
const DISPLAY_UNITS: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("EiB", 1 << 60),
];

/// Parses a byte count with an optional case-insensitive unit: `1048576`, `512B`, `64KiB` or
/// `64K` (binary), `10KB` (decimal), `1.5 MiB`. A fraction that does not come to a whole
/// number of bytes is rounded down.
pub fn parse_size(s: &str) -> Result<u64, SpecError> {
    let text = s.trim();
    let error = |reason: String| SpecError::Size {
        input: s.to_owned(),
        reason,
    };
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    if number.is_empty() {
        return Err(error("expected a number of bytes first".to_owned()));
    }
    let unit = unit.trim_start().to_ascii_lowercase();
    let multiplier = UNITS
        .iter()
        .find(|&&(name, _)| name == unit)
        .map(|&(_, multiplier)| multiplier)
        .ok_or_else(|| error(format!("unknown unit `{}`", unit)))?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error("expected a number of bytes first".to_owned()));
    }
    if number.len() > whole.len() && (fraction.is_empty() || fraction.contains('.')) {
        return Err(error(format!("`{number}` is not a number")));
    }
    if fraction.len() > 18 {
        return Err(error("more than 18 decimal places".to_owned()));
    }
    let too_large = || error(format!("more than {} bytes (16 EiB)", u64::MAX));
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    // u128 holds u64::MAX * 2^60 and 10^18 * 2^60, so none of this can overflow.
    let fraction_bytes = if fraction.is_empty() {
        0
    } else {
        let numerator: u128 = fraction.parse().expect("1 to 18 digits");
        numerator * u128::from(multiplier) / 10u128.pow(fraction.len() as u32)
    };
    let bytes = u128::from(whole) * u128::from(multiplier) + fraction_bytes;
    u64::try_from(bytes).map_err(|_| too_large())
}

/// Displays a byte count with binary units and at most one decimal: `512 B`, `1.5 MiB`, `2 GiB`.
pub fn format_size(bytes: u64) -> String {
    let mut unit = DISPLAY_UNITS
        .iter()
        .rposition(|&(_, size)| bytes >= size)
        .unwrap_or(0);
    let tenths = |unit: usize| {
        let size = u128::from(DISPLAY_UNITS[unit].1);
        (u128::from(bytes) * 10 + size / 2) / size
    };
    // Rounding may reach 1024 of a unit: show 1 of the next one instead of "1024.0 KiB".
    if tenths(unit) >= 10 * 1024 && unit + 1 < DISPLAY_UNITS.len() {
        unit += 1;
    }
    let (name, _) = DISPLAY_UNITS[unit];
    let tenths = tenths(unit);
    if tenths % 10 == 0 {
        format!("{} {name}", tenths / 10)
    } else {
        format!("{}.{} {name}", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units() {
        for (text, bytes) in [
            ("0", 0),
            ("1048576", 1_048_576),
            ("512B", 512),
            ("512 b", 512),
            ("64KiB", 65_536),
            ("64k", 65_536),
            ("64Ki", 65_536),
            ("1MiB", 1 << 20),
            ("1m", 1 << 20),
            ("1GiB", 1 << 30),
            ("1TiB", 1 << 40),
            ("10KB", 10_000),
            ("10kb", 10_000),
            ("1MB", 1_000_000),
            ("1GB", 1_000_000_000),
            ("1TB", 1_000_000_000_000),
            ("1.5MiB", 1_572_864),
            ("1.5 MiB", 1_572_864),
            ("0.5KB", 500),
            ("0.0001KiB", 0),
            (" 2 GiB ", 2 << 30),
            ("15EiB", 15 << 60),
            ("18446744073709551615", u64::MAX),
            ("16383.999999999999999999PiB", u64::MAX),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn errors() {
        for (text, reason) in [
            ("", "expected a number of bytes first"),
            ("MiB", "expected a number of bytes first"),
            ("-1", "expected a number of bytes first"),
            (".5K", "expected a number of bytes first"),
            ("10 XB", "unknown unit `xb`"),
            ("10MiBs", "unknown unit `mibs`"),
            ("1.K", "`1.` is not a number"),
            ("1.2.3K", "`1.2.3` is not a number"),
            ("1.0000000000000000000K", "more than 18 decimal places"),
            (
                "18446744073709551616",
                "more than 18446744073709551615 bytes (16 EiB)",
            ),
            ("16EiB", "more than 18446744073709551615 bytes"),
            (
                "99999999999999999999999K",
                "more than 18446744073709551615 bytes",
            ),
        ] {
            let message = parse_size(text).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("invalid size `{text}`: {reason}")),
                "{text}: {message}"
            );
            assert!(message.contains("binary units K/KiB"), "{message}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1024), "1 KiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(1_572_864), "1.5 MiB");
        assert_eq!(format_size((1 << 20) - 1), "1 MiB");
        assert_eq!(format_size(5 << 30), "5 GiB");
        assert_eq!(format_size(u64::MAX), "16 EiB");
    }

    proptest! {
        #[test]
        fn every_suffix_round_trips(count in 0u64..100_000, unit in 0..UNITS.len()) {
            let (suffix, multiplier) = UNITS[unit];
            let lower = parse_size(&format!("{count}{suffix}"));
            let upper = parse_size(&format!("{count} {}", suffix.to_uppercase()));
            match count.checked_mul(multiplier) {
                Some(expected) => {
                    prop_assert_eq!(lower, Ok(expected));
                    prop_assert_eq!(upper, Ok(expected));
                }
                None => prop_assert!(lower.is_err() && upper.is_err()),
            }
        }

        #[test]
        fn display_parses_back_within_rounding(bytes: u64) {
            let shown = format_size(bytes);
            if shown == "16 EiB" {
                // The top of the range rounds to 2^64, one past u64::MAX.
                prop_assert!(parse_size(&shown).is_err());
                return Ok(());
            }
            let parsed = parse_size(&shown).unwrap();
            // One decimal of a unit at least 1/1024 of the value: within 5% (exact below 1 KiB).
            prop_assert!(parsed.abs_diff(bytes) <= bytes / 20, "{} -> {} -> {}", bytes, shown, parsed);
        }
    }
}
