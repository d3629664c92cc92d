//! Points in time: parsing `--from`/`@TIME` style arguments and printing timestamps as RFC 3339.
//!
//! The calendar arithmetic is done here (Howard Hinnant's days-from-civil algorithms) rather
//! than through a date crate: it is a few lines, covers every i64 millisecond value including
//! times before 1970, and accepts UTC offsets, which `humantime` does not.

use super::{parse_duration, SpecError};

const MS_PER_DAY: i64 = 86_400_000;

/// Parses a point in time to ms since the Unix epoch:
/// - RFC 3339: `2026-11-24T10:00:00Z`, with fractional seconds (`.123`, kept to the ms) or an
///   offset (`+02:00`, `-0530`); without a zone, or with a space for `T`, it is UTC
///   (`2026-11-24 10:00:00`); seconds may be left out, and a bare date is midnight UTC;
/// - epoch milliseconds: all digits (`1795514400000`);
/// - a duration ago: `-` and a [`parse_duration`] duration (`-1h`, `-90s`, `-PT15M`);
/// - `now`.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, SpecError> {
    let time = s.trim();
    let error = |reason: String| SpecError::Time {
        input: s.to_owned(),
        reason,
    };
    if time.is_empty() {
        return Err(error("it is empty".to_owned()));
    }
    if time.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(ago) = time.strip_prefix('-') {
        if !ago.is_empty() && ago.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error(format!(
                "a time ago needs a unit (-{ago}s, -{ago}ms, ...); epoch milliseconds cannot be negative"
            )));
        }
        let ago = parse_duration(ago).map_err(|e| match e {
            SpecError::Duration { reason, .. } => {
                error(format!("a time ago needs a duration: {reason}"))
            }
            other => other,
        })?;
        return i64::try_from(ago.as_millis())
            .ok()
            .and_then(|ago_ms| now_ms.checked_sub(ago_ms))
            .ok_or_else(|| error("that is too far in the past".to_owned()));
    }
    if time.bytes().all(|b| b.is_ascii_digit()) {
        return time
            .parse()
            .map_err(|_| error("too large for epoch milliseconds".to_owned()));
    }
    parse_rfc3339(time).map_err(error)
}

/// Appends `ms` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-24T10:00:00.123Z`.
/// Years outside 0000..=9999, which RFC 3339 cannot express, are written in full with their sign.
pub fn write_rfc3339_millis(out: &mut Vec<u8>, ms: i64) {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let ms_of_day = ms.rem_euclid(MS_PER_DAY);
    if (0..=9999).contains(&year) {
        push_padded(out, year as u64, 4);
    } else {
        if year < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(year.unsigned_abs().to_string().as_bytes());
    }
    out.push(b'-');
    push_padded(out, month.into(), 2);
    out.push(b'-');
    push_padded(out, day.into(), 2);
    out.push(b'T');
    push_padded(out, (ms_of_day / 3_600_000) as u64, 2);
    out.push(b':');
    push_padded(out, (ms_of_day / 60_000 % 60) as u64, 2);
    out.push(b':');
    push_padded(out, (ms_of_day / 1000 % 60) as u64, 2);
    out.push(b'.');
    push_padded(out, (ms_of_day % 1000) as u64, 3);
    out.push(b'Z');
}

/// [`write_rfc3339_millis`] into a new String, for messages and tables.
pub fn format_rfc3339_millis(ms: i64) -> String {
    let mut out = Vec::with_capacity(24);
    write_rfc3339_millis(&mut out, ms);
    String::from_utf8(out).expect("RFC 3339 text is ASCII")
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads an RFC 3339 date-time, leniently (see [`parse_time`]); the error is the reason only.
fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = cursor.number(4, "a 4-digit year")?;
    cursor.expect(b'-', "`-` after the year")?;
    let month = cursor.number(2, "a 2-digit month")?;
    cursor.expect(b'-', "`-` after the month")?;
    let day = cursor.number(2, "a 2-digit day")?;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} is not 01 to 12"));
    }
    let year = i64::from(year);
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!("day {day} does not exist in {year:04}-{month:02}"));
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    if cursor.at_end() {
        return Ok(ms);
    }

    if !cursor.eat_any(b"Tt ") {
        return Err("expected `T` or a space between the date and the time".to_owned());
    }
    let hour = cursor.number(2, "a 2-digit hour")?;
    cursor.expect(b':', "`:` after the hour")?;
    let minute = cursor.number(2, "2-digit minutes")?;
    let mut second = 0;
    let mut millis = 0;
    if cursor.eat(b':') {
        second = cursor.number(2, "2-digit seconds")?;
        if cursor.eat_any(b".,") {
            millis = cursor.fraction_millis()?;
        }
    }
    // 60 is a leap second, which RFC 3339 allows; it lands on the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!(
            "{hour:02}:{minute:02}:{second:02} is not a time of day"
        ));
    }
    ms += (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1000
        + i64::from(millis);

    if cursor.at_end() || cursor.eat_any(b"Zz") {
        // No zone: UTC, like humantime's parse_rfc3339_weak.
    } else if let Some(sign) = cursor.eat_sign() {
        let offset_hours = cursor.number(2, "a 2-digit hour in the UTC offset")?;
        cursor.eat(b':');
        let offset_minutes = cursor.number(2, "2-digit minutes in the UTC offset")?;
        if offset_hours > 23 || offset_minutes > 59 {
            return Err(format!(
                "UTC offset {offset_hours:02}:{offset_minutes:02} is out of range"
            ));
        }
        // Local time = UTC + offset, so UTC = local - offset.
        ms -= sign * (i64::from(offset_hours) * 60 + i64::from(offset_minutes)) * 60_000;
    } else {
        return Err("expected `Z`, `+HH:MM` or `-HH:MM` after the time".to_owned());
    }
    if !cursor.at_end() {
        return Err(format!(
            "unexpected `{}` after the date-time",
            &text[cursor.pos..]
        ));
    }
    Ok(ms)
}

/// A read position in ASCII date-time text.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.eat_any(&[byte])
    }

    fn eat_any(&mut self, choices: &[u8]) -> bool {
        match self.bytes.get(self.pos) {
            Some(b) if choices.contains(b) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn eat_sign(&mut self) -> Option<i64> {
        if self.eat(b'+') {
            Some(1)
        } else if self.eat(b'-') {
            Some(-1)
        } else {
            None
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!("expected {what}"))
        }
    }

    /// Exactly `width` ASCII digits.
    fn number(&mut self, width: usize, what: &str) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + width)
            .filter(|digits| digits.iter().all(u8::is_ascii_digit))
            .ok_or_else(|| format!("expected {what}"))?;
        self.pos += width;
        Ok(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    }

    /// The digits after a decimal point, as whole milliseconds (further digits are dropped).
    fn fraction_millis(&mut self) -> Result<u32, String> {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        if digits.is_empty() {
            return Err("expected digits after the decimal point".to_owned());
        }
        Ok(digits
            .iter()
            .chain(b"00")
            .take(3)
            .fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_514_400_000; // 2026-11-24T10:00:00Z

    fn parse(s: &str) -> Result<i64, SpecError> {
        parse_time(s, NOW)
    }

    #[test]
    fn rfc3339_forms() {
        for (text, ms) in [
            ("2026-11-24T10:00:00Z", NOW),
            ("2026-11-24t10:00:00z", NOW),
            ("2026-11-24T10:00:00.123Z", NOW + 123),
            ("2026-11-24T10:00:00.5Z", NOW + 500),
            ("2026-11-24T10:00:00,25Z", NOW + 250),
            ("2026-11-24T10:00:00.123999999Z", NOW + 123),
            ("2026-11-24T12:00:00+02:00", NOW),
            ("2026-11-24T12:00:00.5+0200", NOW + 500),
            ("2026-11-24T04:30:00-05:30", NOW),
            ("2026-11-24 10:00:00", NOW),
            ("2026-11-24T10:00:00", NOW),
            ("2026-11-24 10:00", NOW),
            ("2026-11-24", NOW - 10 * 3_600_000),
            ("  2026-11-24T10:00:00Z ", NOW),
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("2016-12-31T23:59:60Z", 1_483_228_800_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000),
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ] {
            assert_eq!(parse(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn epoch_ms_now_and_ago() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("1795514400000"), Ok(NOW));
        assert_eq!(parse("now"), Ok(NOW));
        assert_eq!(parse("NOW"), Ok(NOW));
        assert_eq!(parse("-1h"), Ok(NOW - 3_600_000));
        assert_eq!(parse("-90s"), Ok(NOW - 90_000));
        assert_eq!(parse("-1h30m"), Ok(NOW - 5_400_000));
        assert_eq!(parse("-PT15M"), Ok(NOW - 900_000));
        assert_eq!(parse("-0s"), Ok(NOW));
    }

    #[test]
    fn errors() {
        for (text, reason) in [
            ("", "it is empty"),
            (
                "-5",
                "a time ago needs a unit (-5s, -5ms, ...); epoch milliseconds cannot be negative",
            ),
            ("-", "a time ago needs a duration: it is empty"),
            (
                "-1x",
                "a time ago needs a duration: unknown time unit \"x\"",
            ),
            ("99999999999999999999", "too large for epoch milliseconds"),
            ("yesterday", "expected a 4-digit year"),
            ("2026-13-01", "month 13 is not 01 to 12"),
            ("2026-02-29", "day 29 does not exist in 2026-02"),
            ("2026-11-00", "day 0 does not exist in 2026-11"),
            ("2026/11/24", "expected `-` after the year"),
            (
                "2026-11-24X10:00",
                "expected `T` or a space between the date and the time",
            ),
            ("2026-11-24T25:00", "25:00:00 is not a time of day"),
            ("2026-11-24T10", "expected `:` after the hour"),
            (
                "2026-11-24T10:00:00.Z",
                "expected digits after the decimal point",
            ),
            (
                "2026-11-24T10:00:00+2",
                "expected a 2-digit hour in the UTC offset",
            ),
            (
                "2026-11-24T10:00:00+24:00",
                "UTC offset 24:00 is out of range",
            ),
            (
                "2026-11-24T10:00:00 UTC",
                "expected `Z`, `+HH:MM` or `-HH:MM` after the time",
            ),
            (
                "2026-11-24T10:00:00Zjunk",
                "unexpected `junk` after the date-time",
            ),
        ] {
            let err = parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("invalid time `{text}`: {reason}")),
                "{text}: {message}"
            );
            assert!(message.contains("expected RFC 3339"), "{message}");
        }
        let err = parse_time("-1h", i64::MIN).unwrap_err().to_string();
        assert!(err.contains("too far in the past"), "{err}");
    }

    #[test]
    fn writes_rfc3339_millis() {
        assert_eq!(format_rfc3339_millis(NOW + 123), "2026-11-24T10:00:00.123Z");
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339_millis(1_709_164_800_000),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
        assert!(format_rfc3339_millis(i64::MIN).starts_with("-292275055-"));
        assert!(format_rfc3339_millis(i64::MAX).starts_with("292278994-"));
    }

    proptest! {
        #[test]
        fn written_times_parse_back(ms in -62_167_219_200_000i64..=253_402_300_799_999) {
            let text = format_rfc3339_millis(ms);
            prop_assert_eq!(parse(&text), Ok(ms), "{}", text);
        }

        /// Cross-check the calendar against humantime where both apply (1970 to 9999).
        #[test]
        fn agrees_with_humantime(ms in 0i64..=253_402_300_799_999) {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
            let theirs = humantime::format_rfc3339_millis(time).to_string();
            prop_assert_eq!(format_rfc3339_millis(ms), theirs.clone());
            let weak = theirs.replace('T', " ").replace('Z', "");
            let parsed = humantime::parse_rfc3339_weak(&weak).unwrap();
            prop_assert_eq!(
                parse(&weak),
                Ok(parsed.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
            );
        }

        #[test]
        fn ago_is_now_minus_the_duration(secs in 0u64..10_000_000) {
            prop_assert_eq!(parse(&format!("-{secs}s")), Ok(NOW - secs as i64 * 1000));
        }
    }
}
