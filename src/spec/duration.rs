//! Durations: `--timeout 30s`, `retention.ms`-style values, `-1h` in times.
//!
//! Two notations are accepted: humantime's (`1h30m`), which people type, and ISO-8601's
//! `PnDTnHnMnS`, which Kafka tooling and Java's `Duration.toString()` print.

use std::time::Duration;

use super::SpecError;

/// Parses `30s`, `5m`, `1h30m`, `7d`, `250ms` (any humantime duration) or ISO-8601 `P2D`,
/// `PT30M`, `P1DT2H`, `PT0.5S`. A bare number is refused rather than guessing its unit.
pub fn parse_duration(s: &str) -> Result<Duration, SpecError> {
    let text = s.trim();
    let error = |reason: String| SpecError::Duration {
        input: s.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(error("it is empty".to_owned()));
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(error(format!(
            "a number needs a unit, e.g. {text}s or {text}ms"
        )));
    }
    if text.starts_with('-') {
        return Err(error("a duration cannot be negative".to_owned()));
    }
    if let Some(iso) = text.strip_prefix(['P', 'p']) {
        return parse_iso8601(iso).map_err(error);
    }
    humantime::parse_duration(text).map_err(|e| error(e.to_string()))
}

/// Displays `ms` the way humantime writes durations (`1h 30m 250ms`); negative values get a
/// leading `-`.
pub fn format_duration_ms(ms: i64) -> String {
    let magnitude = humantime::format_duration(Duration::from_millis(ms.unsigned_abs()));
    if ms < 0 {
        format!("-{magnitude}")
    } else {
        magnitude.to_string()
    }
}

/// The part of an ISO-8601 duration after `P`, with Java `Duration.parse`'s units: days, then
/// after `T` hours, minutes and seconds, each at most once and in that order; only seconds may
/// have a fraction. Signs, years, months and weeks are not accepted.
fn parse_iso8601(rest: &str) -> Result<Duration, String> {
    const SECS_PER_UNIT: [(u8, u64); 4] = [(b'D', 86_400), (b'H', 3_600), (b'M', 60), (b'S', 1)];
    let (date, time) = match rest.find(['T', 't']) {
        Some(t) => (&rest[..t], Some(&rest[t + 1..])),
        None => (rest, None),
    };
    if date.is_empty() && time.is_none_or(str::is_empty) {
        return Err(
            "an ISO-8601 duration needs at least one number and unit after P or PT".to_owned(),
        );
    }
    let mut total = Duration::ZERO;
    // Units allowed in each part, in order; each component must use a later unit than the last.
    for (part, units) in [
        (date, &SECS_PER_UNIT[..1]),
        (time.unwrap_or(""), &SECS_PER_UNIT[1..]),
    ] {
        let mut remaining_units = units;
        let mut part = part;
        while !part.is_empty() {
            let number_len = part
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
                .ok_or_else(|| format!("`{part}` has no unit after the number"))?;
            let (number, tail) = part.split_at(number_len);
            let unit = tail.as_bytes()[0].to_ascii_uppercase();
            let position = remaining_units
                .iter()
                .position(|&(u, _)| u == unit)
                .ok_or_else(|| {
                    format!(
                        "unexpected `{}` in the ISO-8601 duration: the units are D (days) \
                         before T, then H, M, S after it, each at most once and in that order",
                        tail.chars().next().unwrap_or('?')
                    )
                })?;
            let secs_per_unit = remaining_units[position].1;
            remaining_units = &remaining_units[position + 1..];
            total = total
                .checked_add(component(number, unit, secs_per_unit)?)
                .ok_or("the duration is too long")?;
            part = &tail[1..];
        }
    }
    Ok(total)
}

/// One `number unit` component of an ISO-8601 duration.
fn component(number: &str, unit: u8, secs_per_unit: u64) -> Result<Duration, String> {
    let (whole, fraction) = match number.split_once(['.', ',']) {
        Some((whole, fraction)) if unit == b'S' => (whole, fraction),
        Some(_) => {
            return Err(format!(
                "only seconds may have a fraction, not `{number}{}`",
                char::from(unit)
            ))
        }
        None => (number, ""),
    };
    if number.is_empty() {
        return Err(format!("expected a number before `{}`", char::from(unit)));
    }
    if whole.is_empty()
        || fraction.contains(['.', ','])
        || (number.len() > whole.len() && fraction.is_empty())
    {
        return Err(format!("`{number}` is not a number"));
    }
    if fraction.len() > 9 {
        return Err(format!("`{number}` has more than 9 decimal places"));
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| format!("`{number}` is too large"))?;
    let secs = whole
        .checked_mul(secs_per_unit)
        .ok_or("the duration is too long")?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        let scale = 10u32.pow(9 - fraction.len() as u32);
        fraction
            .parse::<u32>()
            .map_err(|_| format!("`{number}` is not a number"))?
            * scale
    };
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Result<Duration, SpecError> {
        Ok(Duration::from_secs(s))
    }

    #[test]
    fn humantime_forms() {
        assert_eq!(parse_duration("30s"), secs(30));
        assert_eq!(parse_duration("5m"), secs(300));
        assert_eq!(parse_duration("1h30m"), secs(5400));
        assert_eq!(parse_duration("1h 30m"), secs(5400));
        assert_eq!(parse_duration("7d"), secs(7 * 86_400));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 2 days "), secs(2 * 86_400));
    }

    #[test]
    fn iso8601_forms() {
        assert_eq!(parse_duration("P1DT2H"), secs(86_400 + 7200));
        assert_eq!(parse_duration("PT30M"), secs(1800));
        assert_eq!(parse_duration("PT0.5S"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("PT1,25S"), Ok(Duration::from_millis(1250)));
        assert_eq!(parse_duration("P2D"), secs(2 * 86_400));
        assert_eq!(parse_duration("pt1h2m3s"), secs(3723));
        assert_eq!(parse_duration("P0D"), secs(0));
        assert_eq!(
            parse_duration("PT0.000000001S"),
            Ok(Duration::from_nanos(1))
        );
        assert_eq!(parse_duration("PT168H"), secs(7 * 86_400));
    }

    #[test]
    fn errors() {
        for (input, reason) in [
            ("", "it is empty"),
            ("30", "a number needs a unit, e.g. 30s or 30ms"),
            ("1.5", "a number needs a unit, e.g. 1.5s or 1.5ms"),
            (
                "P",
                "an ISO-8601 duration needs at least one number and unit",
            ),
            (
                "PT",
                "an ISO-8601 duration needs at least one number and unit",
            ),
            (
                "P1H",
                "unexpected `H` in the ISO-8601 duration: the units are D (days) before T",
            ),
            ("PT1S2M", "unexpected `M` in the ISO-8601 duration"),
            ("PT1M1M", "unexpected `M`"),
            ("P1Y", "unexpected `Y`"),
            ("PT5", "`5` has no unit after the number"),
            ("PTS", "expected a number before `S`"),
            ("PT.5S", "`.5` is not a number"),
            ("PT1.5M", "only seconds may have a fraction, not `1.5M`"),
            ("PT1.S", "`1.` is not a number"),
            ("PT1.2.3S", "`1.2.3` is not a number"),
            ("PT0.0000000001S", "more than 9 decimal places"),
            ("P-1D", "unexpected `-`"),
            ("PT99999999999999999999S", "is too large"),
            ("P9999999999999999D", "the duration is too long"),
            ("5x", "unknown time unit \"x\""),
            ("-5s", "a duration cannot be negative"),
        ] {
            let message = parse_duration(input).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("invalid duration `{input}`: "))
                    && message.contains(reason),
                "{input}: {message}"
            );
            assert!(
                message.contains("expected a number with a unit (250ms"),
                "{message}"
            );
        }
    }

    #[test]
    fn formats_ms() {
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(5_400_250), "1h 30m 250ms");
        assert_eq!(format_duration_ms(-90_000), "-1m 30s");
        assert_eq!(format_duration_ms(7 * 86_400_000), "7days");
    }

    proptest! {
        #[test]
        fn formatted_durations_parse_back(ms in 0i64..=i64::MAX / 2) {
            let text = format_duration_ms(ms);
            prop_assert_eq!(parse_duration(&text), Ok(Duration::from_millis(ms as u64)), "{}", text);
        }

        #[test]
        fn iso_components_add_up(d in 0u64..1000, h in 0u64..1000, m in 0u64..1000, s in 0u64..1000, ms in 0u32..1000) {
            let text = format!("P{d}DT{h}H{m}M{s}.{ms:03}S");
            let expected = Duration::new(d * 86_400 + h * 3600 + m * 60 + s, ms * 1_000_000);
            prop_assert_eq!(parse_duration(&text), Ok(expected));
        }
    }
}
