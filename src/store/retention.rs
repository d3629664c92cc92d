//! Retention: which whole old segments to delete under `retention.ms` and `retention.bytes`, and
//! the `log-start-offset` checkpoint that remembers how far the log start has moved.
//!
//! As in Kafka, only a prefix of the log is ever deleted, and a partition always keeps an active
//! segment: when every segment has expired, the active one is rolled first, so the next offset
//! stays where it was and offsets are never reused.

use std::path::Path;

use super::config::LogConfig;
use super::error::{IoContext, Result};
use super::fsutil;

pub const LOG_START_FILE: &str = "log-start-offset";

/// What retention needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStat {
    pub base: i64,
    pub size: u64,
    /// Largest record timestamp in the segment; `None` when it holds no records.
    pub max_timestamp: Option<i64>,
}

/// The decision for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// How many segments from the oldest on to delete (never the active one).
    pub delete: usize,
    /// Whether the active segment has expired too and must be rolled so it can go next time.
    pub roll_active: bool,
}

/// Decides what to delete. `segments` is ascending and ends with the active segment.
pub fn plan(segments: &[SegmentStat], config: &LogConfig, now_ms: i64) -> Plan {
    let Some((active, old)) = segments.split_last() else {
        return Plan::default();
    };
    let expired = |s: &SegmentStat| match (config.retention_ms, s.max_timestamp) {
        (Some(ms), Some(ts)) => now_ms.saturating_sub(ts) > ms,
        _ => false,
    };
    let mut excess = match config.retention_bytes {
        Some(limit) => segments.iter().map(|s| s.size).sum::<u64>() as i128 - limit as i128,
        None => 0,
    };
    let mut delete = 0;
    for s in old {
        let over_size = config.retention_bytes.is_some() && excess - s.size as i128 >= 0;
        if !(expired(s) || over_size) {
            break;
        }
        excess -= s.size as i128;
        delete += 1;
    }
    let roll_active = delete == old.len()
        && active.size > 0
        && (expired(active)
            || (config.retention_bytes.is_some() && excess - active.size as i128 >= 0));
    Plan {
        delete,
        roll_active,
    }
}

/// The log start offset recorded by retention, if any.
pub fn read_log_start(dir: &Path) -> Result<Option<i64>> {
    let path = dir.join(LOG_START_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("read", &path),
    }
}

/// Records a new log start offset durably before segments below it are deleted.
pub fn write_log_start(dir: &Path, offset: i64) -> Result<()> {
    let path = dir.join(LOG_START_FILE);
    fsutil::write_atomic(&path, format!("{offset}\n").as_bytes()).at("write", &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, size: u64, ts: i64) -> SegmentStat {
        SegmentStat {
            base,
            size,
            max_timestamp: Some(ts),
        }
    }

    #[test]
    fn time_retention_deletes_an_expired_prefix() {
        let config = LogConfig {
            retention_ms: Some(1000),
            ..LogConfig::default()
        };
        let segs = [
            seg(0, 10, 100),
            seg(5, 10, 5000),
            seg(9, 10, 200),
            seg(12, 10, 9000),
        ];
        assert_eq!(
            plan(&segs, &config, 6000),
            Plan {
                delete: 1,
                roll_active: false
            }
        );
        assert_eq!(
            plan(&segs, &config, 20_000),
            Plan {
                delete: 3,
                roll_active: true
            }
        );
    }

    #[test]
    fn size_retention_keeps_at_most_the_limit() {
        let config = LogConfig {
            retention_bytes: Some(25),
            ..LogConfig::default()
        };
        let segs = [seg(0, 10, 1), seg(5, 10, 1), seg(9, 10, 1), seg(12, 5, 1)];
        // 35 bytes, limit 25: deleting the first (10) leaves 25.
        assert_eq!(
            plan(&segs, &config, 0),
            Plan {
                delete: 1,
                roll_active: false
            }
        );
        let none = LogConfig::default();
        assert_eq!(plan(&segs, &none, i64::MAX), Plan::default());
    }

    #[test]
    fn empty_active_segment_is_never_rolled() {
        let config = LogConfig {
            retention_ms: Some(1),
            ..LogConfig::default()
        };
        let segs = [
            seg(0, 10, 1),
            SegmentStat {
                base: 3,
                size: 0,
                max_timestamp: None,
            },
        ];
        assert_eq!(
            plan(&segs, &config, 100),
            Plan {
                delete: 1,
                roll_active: false
            }
        );
    }
}
