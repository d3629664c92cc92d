//! Where a consumer starts reading: `--offset earliest|latest|N|-N|+N|@TIME`.

use std::fmt;

use super::{parse_digits, parse_time, SpecError};

/// A starting position in a partition, before it is resolved against the partition's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset: the oldest record still kept.
    Earliest,
    /// The log end offset: only records produced from now on.
    Latest,
    /// This exact offset (`N`).
    Absolute(i64),
    /// N records before the end (`-N`).
    FromEnd(u64),
    /// N records after the log start (`+N`).
    FromStart(u64),
    /// The first record with a timestamp at or after this many ms since the epoch (`@TIME`).
    Timestamp(i64),
}

impl OffsetSpec {
    /// Parses `earliest|beginning|start`, `latest|end` (case-insensitive), `N`, `-N`, `+N` or
    /// `@TIME` with TIME as [`parse_time`] takes it (so `@-1h` is an hour before `now_ms`).
    pub fn parse(s: &str, now_ms: i64) -> Result<OffsetSpec, SpecError> {
        let spec = s.trim();
        let error = |reason: String| SpecError::Offset {
            input: s.to_owned(),
            reason,
        };
        if let Some(time) = spec.strip_prefix('@') {
            // The time error already shows the time forms, which is what the user got wrong.
            return parse_time(time, now_ms).map(OffsetSpec::Timestamp);
        }
        if ["earliest", "beginning", "start"]
            .iter()
            .any(|word| spec.eq_ignore_ascii_case(word))
        {
            return Ok(OffsetSpec::Earliest);
        }
        if ["latest", "end"]
            .iter()
            .any(|word| spec.eq_ignore_ascii_case(word))
        {
            return Ok(OffsetSpec::Latest);
        }
        if let Some(count) = spec.strip_prefix('-') {
            return parse_digits(count).map(OffsetSpec::FromEnd).map_err(error);
        }
        if let Some(count) = spec.strip_prefix('+') {
            return parse_digits(count)
                .map(OffsetSpec::FromStart)
                .map_err(error);
        }
        if spec.is_empty() {
            return Err(error("it is empty".to_owned()));
        }
        if !spec.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(error("not a known word or number".to_owned()));
        }
        let offset = parse_digits(spec).map_err(error)?;
        i64::try_from(offset)
            .map(OffsetSpec::Absolute)
            .map_err(|_| error(format!("`{spec}` is too large for an offset")))
    }

    /// The offset to start at in a partition holding `log_start..log_end`, or `None` for
    /// [`OffsetSpec::Timestamp`], which needs the partition's time index.
    /// `-N` and `+N` are clamped into the partition; an [`OffsetSpec::Absolute`] offset is
    /// returned as given, so the caller decides what an out-of-range offset means.
    pub fn resolve(self, log_start: i64, log_end: i64) -> Option<i64> {
        let clamp = |offset: i64| offset.clamp(log_start, log_end.max(log_start));
        match self {
            OffsetSpec::Earliest => Some(log_start),
            OffsetSpec::Latest => Some(log_end),
            OffsetSpec::Absolute(offset) => Some(offset),
            OffsetSpec::FromEnd(n) => Some(clamp(
                log_end.saturating_sub(i64::try_from(n).unwrap_or(i64::MAX)),
            )),
            OffsetSpec::FromStart(n) => Some(clamp(
                log_start.saturating_add(i64::try_from(n).unwrap_or(i64::MAX)),
            )),
            OffsetSpec::Timestamp(_) => None,
        }
    }
}

/// Writes the spec in a form [`OffsetSpec::parse`] reads back: timestamps as `@` and epoch ms,
/// so a timestamp before 1970 (`@-5`) is the one value that does not read back.
impl fmt::Display for OffsetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffsetSpec::Earliest => f.write_str("earliest"),
            OffsetSpec::Latest => f.write_str("latest"),
            OffsetSpec::Absolute(offset) => write!(f, "{offset}"),
            OffsetSpec::FromEnd(n) => write!(f, "-{n}"),
            OffsetSpec::FromStart(n) => write!(f, "+{n}"),
            OffsetSpec::Timestamp(ms) => write!(f, "@{ms}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_514_400_000; // 2026-11-24T10:00:00Z

    fn parse(s: &str) -> Result<OffsetSpec, SpecError> {
        OffsetSpec::parse(s, NOW)
    }

    #[test]
    fn words() {
        for word in ["earliest", "beginning", "start", "EARLIEST", " Beginning "] {
            assert_eq!(parse(word), Ok(OffsetSpec::Earliest), "{word}");
        }
        for word in ["latest", "end", "End"] {
            assert_eq!(parse(word), Ok(OffsetSpec::Latest), "{word}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse("0"), Ok(OffsetSpec::Absolute(0)));
        assert_eq!(parse("42"), Ok(OffsetSpec::Absolute(42)));
        assert_eq!(
            parse("9223372036854775807"),
            Ok(OffsetSpec::Absolute(i64::MAX))
        );
        assert_eq!(parse("-10"), Ok(OffsetSpec::FromEnd(10)));
        assert_eq!(parse("+3"), Ok(OffsetSpec::FromStart(3)));
        assert_eq!(
            parse("-18446744073709551615"),
            Ok(OffsetSpec::FromEnd(u64::MAX))
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse("@1795514400000"), Ok(OffsetSpec::Timestamp(NOW)));
        assert_eq!(
            parse("@2026-11-24T10:00:00Z"),
            Ok(OffsetSpec::Timestamp(NOW))
        );
        assert_eq!(parse("@-1h"), Ok(OffsetSpec::Timestamp(NOW - 3_600_000)));
        let err = parse("@yesterday").unwrap_err();
        assert!(matches!(err, SpecError::Time { .. }), "{err}");
    }

    #[test]
    fn errors_show_the_forms() {
        for (input, reason) in [
            ("", "it is empty"),
            ("first", "not a known word or number"),
            ("1.5", "`1.5` is not a whole number"),
            ("-", "a number is missing"),
            ("+x", "`x` is not a whole number"),
            ("--1", "`-1` is not a whole number"),
            (
                "9223372036854775808",
                "`9223372036854775808` is too large for an offset",
            ),
            (
                "-18446744073709551616",
                "`18446744073709551616` is too large",
            ),
        ] {
            let message = parse(input).unwrap_err().to_string();
            assert_eq!(
                message,
                format!(
                    "invalid offset `{input}`: {reason}; expected {}",
                    super::super::OFFSET_FORMS
                )
            );
        }
    }

    #[test]
    fn resolve_against_bounds() {
        assert_eq!(OffsetSpec::Earliest.resolve(10, 20), Some(10));
        assert_eq!(OffsetSpec::Latest.resolve(10, 20), Some(20));
        assert_eq!(OffsetSpec::Absolute(5).resolve(10, 20), Some(5));
        assert_eq!(OffsetSpec::FromEnd(3).resolve(10, 20), Some(17));
        assert_eq!(OffsetSpec::FromEnd(30).resolve(10, 20), Some(10));
        assert_eq!(OffsetSpec::FromEnd(u64::MAX).resolve(10, 20), Some(10));
        assert_eq!(OffsetSpec::FromStart(3).resolve(10, 20), Some(13));
        assert_eq!(OffsetSpec::FromStart(u64::MAX).resolve(10, 20), Some(20));
        assert_eq!(OffsetSpec::FromEnd(0).resolve(0, 0), Some(0));
        assert_eq!(OffsetSpec::Timestamp(1).resolve(10, 20), None);
    }

    proptest! {
        #[test]
        fn display_parses_back(spec in prop_oneof![
            Just(OffsetSpec::Earliest),
            Just(OffsetSpec::Latest),
            (0..=i64::MAX).prop_map(OffsetSpec::Absolute),
            any::<u64>().prop_map(OffsetSpec::FromEnd),
            any::<u64>().prop_map(OffsetSpec::FromStart),
            (0..=i64::MAX).prop_map(OffsetSpec::Timestamp),
        ]) {
            prop_assert_eq!(OffsetSpec::parse(&spec.to_string(), NOW), Ok(spec));
        }

        #[test]
        fn resolved_offsets_stay_in_bounds(n: u64, start in 0i64..1000, len in 0i64..1000) {
            let end = start + len;
            for spec in [OffsetSpec::FromEnd(n), OffsetSpec::FromStart(n)] {
                let offset = spec.resolve(start, end).unwrap();
                prop_assert!((start..=end).contains(&offset));
            }
        }
    }
}
