//! Topic configs under Kafka's names, with Kafka's defaults where spool follows them.
//!
//! Only the configs spool acts on are accepted, so a typo (`retention.msec`) is an error instead
//! of a silently ignored setting.

use std::collections::BTreeMap;

use super::compression::Compression;

/// The configs a topic may set, with a one-line description each (shown by `topic describe`
/// and in errors).
pub const KNOWN_CONFIGS: &[(&str, &str)] = &[
    (
        "retention.ms",
        "delete segments older than this (ms; -1 = keep forever)",
    ),
    (
        "retention.bytes",
        "delete old segments beyond this many bytes per partition (-1 = no limit)",
    ),
    (
        "segment.bytes",
        "roll to a new segment at this size (bytes)",
    ),
    (
        "segment.ms",
        "roll to a new segment after this long (ms; -1 = never by time)",
    ),
    (
        "max.message.bytes",
        "largest record batch a producer may append (bytes)",
    ),
    (
        "compression.type",
        "codec batches are written with: producer (what `produce -z` says; the default), uncompressed, gzip, snappy, lz4 or zstd",
    ),
];

pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 1 << 20;
/// The smallest segment size accepted (Kafka's minimum is 14 bytes; spool needs a header).
pub const MIN_SEGMENT_BYTES: u64 = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config '{0}'; known configs: {known}", known = known_names())]
    Unknown(String),
    #[error("config {key}={value} is invalid: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: &'static str,
    },
}

fn known_names() -> String {
    KNOWN_CONFIGS
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a topic config is when the topic does not set it, as Kafka shows it (`-1`: keep
/// forever, no size limit, no time-based roll).
pub fn default_value(key: &str) -> String {
    match key {
        "segment.bytes" => DEFAULT_SEGMENT_BYTES.to_string(),
        "max.message.bytes" => DEFAULT_MAX_MESSAGE_BYTES.to_string(),
        "compression.type" => "producer".to_owned(),
        _ => "-1".to_owned(),
    }
}

/// The settings a partition log acts on, resolved from a topic's configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: Option<i64>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<u64>,
    pub max_message_bytes: u64,
    /// `compression.type`: the codec every batch is written with, or `None` for `producer`
    /// (what the producer asks for).
    pub compression: Option<Compression>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: None,
            retention_ms: None,
            retention_bytes: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            compression: None,
        }
    }
}

impl LogConfig {
    /// Resolves configs (already validated by [`validate`]) over the defaults.
    pub fn from_configs(configs: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
        let mut c = LogConfig::default();
        for (key, value) in configs {
            if key == "compression.type" {
                c.compression = parse_compression_type(value)?;
                continue;
            }
            let n = parse_number(key, value)?;
            match key.as_str() {
                "retention.ms" => c.retention_ms = (n >= 0).then_some(n),
                "retention.bytes" => c.retention_bytes = (n >= 0).then_some(n as u64),
                "segment.bytes" => c.segment_bytes = n as u64,
                "segment.ms" => c.segment_ms = (n > 0).then_some(n),
                "max.message.bytes" => c.max_message_bytes = n as u64,
                _ => return Err(ConfigError::Unknown(key.clone())),
            }
        }
        Ok(c)
    }
}

/// Checks one `key=value` pair: a known key and a value in range.
pub fn validate(key: &str, value: &str) -> Result<(), ConfigError> {
    if !KNOWN_CONFIGS.iter().any(|(k, _)| *k == key) {
        return Err(ConfigError::Unknown(key.to_owned()));
    }
    if key == "compression.type" {
        return parse_compression_type(value).map(drop);
    }
    let n = parse_number(key, value)?;
    let invalid = |reason| ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    match key {
        "retention.ms" | "retention.bytes" | "segment.ms" if n < -1 => {
            Err(invalid("must be -1 or a non-negative number"))
        }
        "segment.bytes" if (n as u64) < MIN_SEGMENT_BYTES || n < 0 => {
            Err(invalid("must be at least 1024 bytes"))
        }
        "segment.bytes" if n > i64::from(i32::MAX) => Err(invalid(
            "must fit Kafka's 32-bit positions (at most 2147483647)",
        )),
        "max.message.bytes" if n < 64 || n > i64::from(i32::MAX) => {
            Err(invalid("must be between 64 and 2147483647 bytes"))
        }
        _ => Ok(()),
    }
}

/// Kafka's `compression.type` values (and `none`, `produce -z`'s word for uncompressed):
/// `None` for `producer`.
fn parse_compression_type(value: &str) -> Result<Option<Compression>, ConfigError> {
    if value.trim().eq_ignore_ascii_case("producer") {
        return Ok(None);
    }
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| ConfigError::Invalid {
            key: "compression.type".to_owned(),
            value: value.to_owned(),
            reason: "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
        })
}

fn parse_number(key: &str, value: &str) -> Result<i64, ConfigError> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: "expected a whole number",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_validates() {
        let mut m = BTreeMap::new();
        m.insert("retention.ms".to_owned(), "60000".to_owned());
        m.insert("segment.bytes".to_owned(), "4096".to_owned());
        let c = LogConfig::from_configs(&m).unwrap();
        assert_eq!(c.retention_ms, Some(60000));
        assert_eq!(c.segment_bytes, 4096);
        assert_eq!(c.retention_bytes, None);
        assert!(validate("retention.msec", "1").is_err());
        assert!(validate("segment.bytes", "10").is_err());
        assert!(validate("retention.ms", "abc").is_err());
        assert!(validate("retention.ms", "-1").is_ok());
    }

    #[test]
    fn compression_type_takes_kafkas_values() {
        for (value, codec) in [
            ("producer", None),
            ("uncompressed", Some(Compression::None)),
            ("none", Some(Compression::None)),
            ("gzip", Some(Compression::Gzip)),
            ("snappy", Some(Compression::Snappy)),
            ("lz4", Some(Compression::Lz4)),
            ("zstd", Some(Compression::Zstd)),
        ] {
            assert_eq!(validate("compression.type", value), Ok(()), "{value}");
            let m = BTreeMap::from([("compression.type".to_owned(), value.to_owned())]);
            assert_eq!(LogConfig::from_configs(&m).unwrap().compression, codec);
        }
        let err = validate("compression.type", "brotli").unwrap_err();
        assert!(
            err.to_string().contains("expected producer, uncompressed"),
            "{err}"
        );
        assert_eq!(LogConfig::default().compression, None);
    }
}
