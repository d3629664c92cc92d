//! Parsing of the small values the command line takes: offsets to start from, points in time,
//! durations, byte sizes and `key=value` pairs, plus their human-readable display.
//!
//! Nothing here reads the clock: whatever depends on "now" takes `now_ms` (milliseconds since
//! the Unix epoch) from the caller, so every answer can be tested with a fixed clock.

mod duration;
mod key_value;
mod offset;
mod size;
mod time;

pub use duration::{format_duration_ms, parse_duration};
pub use key_value::parse_kv;
pub use offset::OffsetSpec;
pub use size::{format_size, parse_size};
pub use time::{format_rfc3339_millis, parse_time, write_rfc3339_millis};

use thiserror::Error;

const OFFSET_FORMS: &str = "earliest (or beginning, start), latest (or end), an offset N, \
    -N (N records before the end), +N (N records after the start), or @TIME";
const TIME_FORMS: &str = "RFC 3339 (2026-11-24T10:00:00Z, 2026-11-24T12:00:00.5+02:00, \
    2026-11-24 10:00:00 as UTC, 2026-11-24), epoch milliseconds (1795514400000), \
    a duration ago (-1h, -90s) or now";
const DURATION_FORMS: &str = "a number with a unit (250ms, 30s, 5m, 1h30m, 7d) \
    or ISO-8601 (PT30M, P1DT2H, PT0.5S, P2D)";
const SIZE_FORMS: &str = "bytes (1048576, 512B), binary units K/KiB, M/MiB, G/GiB, T/TiB \
    (64KiB = 65536), decimal units KB, MB, GB, TB (10KB = 10000); case-insensitive, \
    fractions allowed (1.5MiB)";
const KEY_VALUE_FORMS: &str = "KEY=VALUE (e.g. retention.ms=3600000); the value may be empty \
    and may contain `=`";

/// A command-line value that does not parse; the message shows the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    #[error("invalid offset `{input}`: {reason}; expected {OFFSET_FORMS}")]
    Offset { input: String, reason: String },
    #[error("invalid time `{input}`: {reason}; expected {TIME_FORMS}")]
    Time { input: String, reason: String },
    #[error("invalid duration `{input}`: {reason}; expected {DURATION_FORMS}")]
    Duration { input: String, reason: String },
    #[error("invalid size `{input}`: {reason}; expected {SIZE_FORMS}")]
    Size { input: String, reason: String },
    #[error("invalid `{input}`: {reason}; expected {KEY_VALUE_FORMS}")]
    KeyValue { input: String, reason: String },
}

/// Parses a run of ASCII digits (no sign, no spaces) into a u64.
fn parse_digits(digits: &str) -> Result<u64, String> {
    if digits.is_empty() {
        return Err("a number is missing".to_owned());
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{digits}` is not a whole number"));
    }
    digits
        .parse()
        .map_err(|_| format!("`{digits}` is too large"))
}

#[cfg(test)]
mod never_panic_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}", now_ms: i64) {
            let _ = OffsetSpec::parse(&s, now_ms);
            let _ = parse_time(&s, now_ms);
            let _ = parse_duration(&s);
            let _ = parse_size(&s);
            let _ = parse_kv(&s);
        }

        #[test]
        fn parsers_never_panic_on_near_misses(
            s in "[-+@]?[0-9]{0,25}([.,][0-9]{0,25})?[ ]?([PTpt]|[KMGTPE]i?B|[kmgtpe]|[HMSDhmsd]|ms|ns|y)*[0-9]*",
            now_ms in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>()],
        ) {
            let _ = OffsetSpec::parse(&s, now_ms);
            let _ = parse_time(&s, now_ms);
            let _ = parse_time(&format!("@{s}"), now_ms);
            let _ = parse_duration(&s);
            let _ = parse_size(&s);
        }

        #[test]
        fn formatters_never_panic(n: u64, ms: i64) {
            let _ = format_size(n);
            let _ = format_duration_ms(ms);
            let _ = format_rfc3339_millis(ms);
        }
    }
}
