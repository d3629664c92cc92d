//! One partition of a topic: its offsets, its description, and the readers and writers on it.
//!
//! Everything here reads without the partition lock. The log end offset comes from the head
//! checkpoint, extended over any complete batches a writer appended after it (a writer killed
//! between writing a batch and storing the head), so it never lags what readers can see.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::batch::{Batch, HEADER_LEN};
use super::compression::Decompressor;
use super::config::LogConfig;
use super::error::{IoContext, Result};
use super::head::{Head, LOCK_FILE};
use super::index;
use super::reader::PartitionReader;
use super::retention;
use super::segment::{self, BatchWalker, Slot, Step, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
use super::writer::{PartitionWriter, SyncPolicy};

/// A partition's log start and end offsets and its segments' base offsets, as one listing of
/// its directory found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBounds {
    pub start: i64,
    pub end: i64,
    pub segments: Vec<i64>,
}

/// A partition of a topic.
#[derive(Debug, Clone)]
pub struct Partition {
    pub topic: String,
    pub id: i32,
    pub dir: PathBuf,
    pub config: LogConfig,
}

/// What `topic describe` shows of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub size_bytes: u64,
    pub segments: usize,
    /// CreateTime of the first and last record, in ms (absent when the log is empty).
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
}

impl Partition {
    pub fn reader(&self, offset: i64) -> Result<PartitionReader> {
        PartitionReader::open(&self.dir, offset)
    }

    pub fn writer(&self, sync: SyncPolicy) -> Result<PartitionWriter> {
        PartitionWriter::open(&self.dir, self.config, sync)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> Result<i64> {
        let segments = segment::list(&self.dir).at("list", &self.dir)?;
        let checkpoint = retention::read_log_start(&self.dir)?.unwrap_or(0);
        match segments.first() {
            Some(&first) => Ok(first.max(checkpoint)),
            None => Ok(checkpoint.max(self.log_end_offset()?)),
        }
    }

    /// The offset the next record will get.
    pub fn log_end_offset(&self) -> Result<i64> {
        // Retention may roll and delete the segment looked at: look again.
        retry_vanished(|| self.try_log_end_offset())
    }

    fn try_log_end_offset(&self) -> Result<i64> {
        let head = self.head()?;
        let segments = segment::list(&self.dir).at("list", &self.dir)?;
        self.log_end_given(head, &segments)
    }

    /// The log's bounds from one listing of the directory, for a reader that needs both
    /// offsets and the segments (a Kafka fetch): see [`LogBounds`].
    pub fn bounds(&self) -> Result<LogBounds> {
        retry_vanished(|| {
            // The head before the listing, as `log_end_offset` reads them.
            let head = self.head()?;
            let segments = segment::list(&self.dir).at("list", &self.dir)?;
            let end = self.log_end_given(head, &segments)?;
            let checkpoint = retention::read_log_start(&self.dir)?.unwrap_or(0);
            let start = match segments.first() {
                Some(&first) => first.max(checkpoint),
                None => checkpoint.max(end),
            };
            Ok(LogBounds {
                start,
                end,
                segments,
            })
        })
    }

    fn head(&self) -> Result<Option<Head>> {
        let lock_path = self.dir.join(LOCK_FILE);
        match File::open(&lock_path) {
            Ok(f) => Head::load(&f).at("read", &lock_path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at("open", &lock_path),
        }
    }

    fn log_end_given(&self, head: Option<Head>, segments: &[i64]) -> Result<i64> {
        let Some(&last) = segments.last() else {
            return Ok(head.map_or(0, |h| h.next_offset));
        };
        let (base, position, mut next) = match head {
            Some(h) if h.active_base >= last => (h.active_base, h.log_len, h.next_offset),
            _ => {
                let start = last_indexed_position(&self.dir, last)?;
                (last, start, last)
            }
        };
        if base > last {
            return Ok(next);
        }
        let path = segment::path(&self.dir, base, LOG_EXT);
        let log = File::open(&path).at("open", &path)?;
        let len = log.metadata().at("read", &path)?.len();
        let mut pos = position;
        while let Slot::Header(h) = segment::header_at(&log, len, pos).at("read", &path)? {
            next = h.next_offset();
            pos += h.total_len() as u64;
        }
        Ok(next)
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, found through the
    /// time and offset indexes; `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<i64>> {
        // A segment deleted by retention during the search: search what is left.
        retry_vanished(|| self.try_offset_for_timestamp(timestamp_ms))
    }

    fn try_offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<i64>> {
        let segments = segment::list(&self.dir).at("list", &self.dir)?;
        for (i, &base) in segments.iter().enumerate() {
            let is_last = i + 1 == segments.len();
            let path = segment::path(&self.dir, base, LOG_EXT);
            if !is_last {
                let max = segment::max_timestamp(&self.dir, base).at("read", &path)?;
                if max.is_none_or(|m| m < timestamp_ms) {
                    continue;
                }
            }
            if let Some(offset) = self.search_segment(base, timestamp_ms)? {
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }

    fn search_segment(&self, base: i64, timestamp_ms: i64) -> Result<Option<i64>> {
        let path = segment::path(&self.dir, base, LOG_EXT);
        let time_index = File::open(segment::path(&self.dir, base, TIME_INDEX_EXT)).ok();
        let older = match &time_index {
            Some(f) => index::lookup_time(f, base, timestamp_ms).at("read", &path)?,
            None => None,
        };
        let start = match (older, File::open(segment::path(&self.dir, base, INDEX_EXT))) {
            (Some(entry), Ok(f)) => index::lookup_offset(&f, base, entry.offset)
                .at("read", &path)?
                .map_or(0, |e| u64::from(e.position)),
            _ => 0,
        };
        let log = File::open(&path).at("open", &path)?;
        let len = log.metadata().at("read", &path)?.len();
        let mut pos = start;
        // Hop over whole batches by their headers; decode only the first that may qualify.
        while let Slot::Header(h) = segment::header_at(&log, len, pos).at("read", &path)? {
            if h.max_timestamp >= timestamp_ms {
                let mut walker = BatchWalker::new(&log, pos).at("read", &path)?;
                if let Step::Batch { batch, .. } = walker.next().at("read", &path)? {
                    if let Some(offset) = first_at_or_after(&batch, timestamp_ms) {
                        return Ok(Some(offset));
                    }
                }
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Offsets, size, segment count and first/last timestamps.
    pub fn info(&self) -> Result<PartitionInfo> {
        retry_vanished(|| self.try_info())
    }

    fn try_info(&self) -> Result<PartitionInfo> {
        let segments = segment::list(&self.dir).at("list", &self.dir)?;
        let mut size_bytes = 0;
        for &base in &segments {
            let path = segment::path(&self.dir, base, LOG_EXT);
            size_bytes += std::fs::metadata(&path).at("read", &path)?.len();
        }
        let first_timestamp = match segments.first() {
            Some(&base) => first_batch_timestamp(&self.dir, base)?,
            None => None,
        };
        let mut last_timestamp = None;
        for &base in segments.iter().rev() {
            let path = segment::path(&self.dir, base, LOG_EXT);
            last_timestamp = segment::max_timestamp(&self.dir, base).at("read", &path)?;
            if last_timestamp.is_some() {
                break;
            }
        }
        Ok(PartitionInfo {
            partition: self.id,
            log_start_offset: self.log_start_offset()?,
            log_end_offset: self.log_end_offset()?,
            size_bytes,
            segments: segments.len(),
            first_timestamp,
            last_timestamp,
        })
    }
}

/// Runs `f` again while it fails because a file it opened had just been deleted (retention
/// deletes whole segments at any moment; a fresh listing no longer names them).
fn retry_vanished<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempts = 0;
    loop {
        match f() {
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) && attempts < 100 => {
                attempts += 1;
            }
            result => return result,
        }
    }
}

/// The first record of `batch` at or after `timestamp_ms`. A batch whose records cannot be
/// decompressed gives its base offset: the reader that starts there reports the damage,
/// rather than the search skipping it.
fn first_at_or_after(batch: &Batch<'_>, timestamp_ms: i64) -> Option<i64> {
    let mut decompressor = Decompressor::default();
    let Ok(records) = batch.records(&mut decompressor) else {
        return Some(batch.header.base_offset);
    };
    records
        .filter_map(Result::ok)
        .find(|r| r.timestamp >= timestamp_ms)
        .map(|r| r.offset)
}

fn first_batch_timestamp(dir: &Path, base: i64) -> Result<Option<i64>> {
    let path = segment::path(dir, base, LOG_EXT);
    let log = File::open(&path).at("open", &path)?;
    let len = log.metadata().at("read", &path)?.len();
    if len < HEADER_LEN as u64 {
        return Ok(None);
    }
    match segment::header_at(&log, len, 0).at("read", &path)? {
        Slot::Header(h) => Ok(Some(h.base_timestamp)),
        _ => Ok(None),
    }
}

/// Position of the last offset index entry of a segment (0 without one).
fn last_indexed_position(dir: &Path, base: i64) -> Result<u64> {
    let path = segment::path(dir, base, INDEX_EXT);
    match File::open(&path) {
        Ok(f) => Ok(index::lookup_offset(&f, base, i64::MAX)
            .at("read", &path)?
            .map_or(0, |e| u64::from(e.position))),
        Err(_) => Ok(0),
    }
}
