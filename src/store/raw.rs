//! Whole stored batches as bytes, for `spool serve`: a Kafka Fetch returns the batches from the
//! one holding the requested offset on, exactly as they lie in the segment (compressed or not),
//! so nothing on that path decodes a record. Each batch's length, magic and CRC are checked before it
//! is handed out, as every reader of the store does; an incomplete tail is "not yet written".
//!
//! Also the few partition operations only the server needs: the producer fields of batch
//! headers (to rebuild idempotent producers' sequence windows) and moving the log start offset
//! forward (Kafka's DeleteRecords).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::batch::{BatchError, BatchHeader, HEADER_LEN};
use super::compression::Decompressor;
use super::crc;
use super::error::{IoContext, Result, StoreError};
use super::head::LOCK_FILE;
use super::index;
use super::lock::{self, ExclusiveLock};
use super::partition::Partition;
use super::retention;
use super::segment::{self, Slot, INDEX_EXT, LOG_EXT};

/// Offset of the CRC field and of the first byte it covers (`attributes`).
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;

/// Batches read for a fetch.
#[derive(Debug, Default)]
pub struct RawBatches {
    /// Whole batches, back to back; empty when there is nothing at or after the offset yet.
    pub bytes: Vec<u8>,
    /// The offset after the last batch returned.
    pub next_offset: i64,
}

/// Reads whole batches starting with the one that holds `offset`, up to `max_bytes` (the first
/// batch is returned whole even when larger, as Kafka does, unless `strict` forbids it). Reads
/// one segment per call: the caller asks again from `next_offset`.
pub fn read_batches(dir: &Path, offset: i64, max_bytes: usize, strict: bool) -> Result<RawBatches> {
    // Retention may delete the segment between the listing and the open: list again.
    for _ in 0..100 {
        let segments = segment::list(dir).at("list", dir)?;
        if let Some(read) = read_batches_listed(dir, &segments, offset, max_bytes, strict)? {
            return Ok(read);
        }
    }
    Err(StoreError::BadMetadata {
        path: dir.to_owned(),
        reason: "its segments kept vanishing while being opened".into(),
    })
}

/// [`read_batches`] in the segments `segments` (a listing the caller made, e.g. with
/// [`Partition::bounds`]); `Ok(None)` when the segment to read was deleted since (list again).
pub fn read_batches_listed(
    dir: &Path,
    segments: &[i64],
    offset: i64,
    max_bytes: usize,
    strict: bool,
) -> Result<Option<RawBatches>> {
    let Some(base) = segment::containing(segments, offset) else {
        return Ok(Some(RawBatches {
            bytes: Vec::new(),
            next_offset: offset,
        }));
    };
    let path = segment::path(dir, base, LOG_EXT);
    let Some(log) = segment::open_if_present(&path).at("open", &path)? else {
        return Ok(None);
    };
    read_from_segment(dir, &log, &path, base, offset, max_bytes, strict).map(Some)
}

fn read_from_segment(
    dir: &Path,
    log: &File,
    path: &Path,
    base: i64,
    offset: i64,
    max_bytes: usize,
    strict: bool,
) -> Result<RawBatches> {
    let len = log.metadata().at("read", path)?.len();
    let mut position = match File::open(segment::path(dir, base, INDEX_EXT)) {
        Ok(f) => index::lookup_offset(&f, base, offset)
            .at("read", &segment::path(dir, base, INDEX_EXT))?
            .map_or(0, |e| u64::from(e.position)),
        Err(_) => 0,
    };
    // Hop over the batches that end before the offset, by their headers alone.
    let first = loop {
        match segment::header_at(log, len, position).at("read", path)? {
            Slot::Header(h) if h.last_offset() < offset => position += h.total_len() as u64,
            Slot::Header(h) => break h,
            Slot::End | Slot::Incomplete => {
                return Ok(RawBatches {
                    bytes: Vec::new(),
                    next_offset: offset,
                })
            }
            Slot::Invalid(source) => return Err(corrupt(path, position, source)),
        }
    };
    let first_len = first.total_len();
    let want = if first_len > max_bytes && !strict {
        first_len
    } else {
        max_bytes
    };
    let want = want.min((len - position) as usize);
    let mut bytes = Vec::new();
    crate::store::fsutil::grow_zeroed(&mut bytes, want);
    log.read_exact_at(&mut bytes, position).at("read", path)?;
    // Keep the complete batches whose checks pass.
    let mut end = 0;
    let mut next_offset = offset;
    while end < bytes.len() {
        let header = match BatchHeader::parse(&bytes[end..]) {
            Ok(h) => h,
            Err(BatchError::Incomplete { .. }) => break,
            Err(source) => return Err(corrupt(path, position + end as u64, source)),
        };
        let total = header.total_len();
        if end + total > bytes.len() {
            break;
        }
        check_crc(&bytes[end..end + total]).map_err(|e| corrupt(path, position + end as u64, e))?;
        next_offset = header.next_offset();
        end += total;
    }
    bytes.truncate(end);
    Ok(RawBatches { bytes, next_offset })
}

/// Checks a whole batch's CRC-32C (any codec: it covers the bytes as stored).
pub fn check_crc(batch: &[u8]) -> std::result::Result<(), BatchError> {
    if batch.len() < HEADER_LEN {
        return Err(BatchError::Incomplete {
            needed: HEADER_LEN,
            available: batch.len(),
        });
    }
    let stored = u32::from_be_bytes(batch[CRC_OFFSET..CRC_OFFSET + 4].try_into().unwrap());
    let computed = crc::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    if stored != computed {
        return Err(BatchError::BadCrc { stored, computed });
    }
    Ok(())
}

fn corrupt(path: &Path, position: u64, source: BatchError) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        position,
        source,
    }
}

/// The idempotent-producer fields of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerFields {
    /// Reads them from the first [`HEADER_LEN`] bytes of a batch.
    pub fn of(batch: &[u8]) -> ProducerFields {
        let i64_at = |o: usize| i64::from_be_bytes(batch[o..o + 8].try_into().unwrap());
        ProducerFields {
            producer_id: i64_at(PRODUCER_ID_OFFSET),
            producer_epoch: i16::from_be_bytes(
                batch[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
                    .try_into()
                    .unwrap(),
            ),
            base_sequence: i32::from_be_bytes(
                batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
                    .try_into()
                    .unwrap(),
            ),
        }
    }
}

/// The batches that carry a producer id, in log order: (base offset, last offset, producer
/// fields), read by their headers alone. From the active (last) segment and the segments
/// before it written to within `recent` (a producer retries within its delivery timeout), and
/// always the one before the active segment, so that a retry right after a roll is known.
pub fn producer_batches(
    dir: &Path,
    recent: std::time::Duration,
) -> Result<Vec<(i64, i64, ProducerFields)>> {
    let segments = segment::list(dir).at("list", dir)?;
    let now = std::time::SystemTime::now();
    let mut first = segments.len().saturating_sub(2);
    while first > 0 {
        let path = segment::path(dir, segments[first - 1], LOG_EXT);
        let written = std::fs::metadata(&path).and_then(|m| m.modified());
        match written {
            Ok(t) if now.duration_since(t).unwrap_or_default() <= recent => first -= 1,
            _ => break,
        }
    }
    let mut out = Vec::new();
    for &base in &segments[first..] {
        let path = segment::path(dir, base, LOG_EXT);
        let Some(log) = segment::open_if_present(&path).at("open", &path)? else {
            continue;
        };
        let len = log.metadata().at("read", &path)?.len();
        let mut position = 0;
        let mut header = [0u8; HEADER_LEN];
        while let Slot::Header(h) = segment::header_at(&log, len, position).at("read", &path)? {
            log.read_exact_at(&mut header, position).at("read", &path)?;
            let fields = ProducerFields::of(&header);
            if fields.producer_id >= 0 {
                out.push((h.base_offset, h.last_offset(), fields));
            }
            position += h.total_len() as u64;
        }
    }
    Ok(out)
}

/// Moves a partition's log start offset forward to `offset` (Kafka's DeleteRecords): records
/// below it are no longer served, and whole segments below it are deleted. `offset` is clamped
/// to the log end; a start already past it stays. Returns the new log start offset.
pub fn delete_records_before(partition: &Partition, offset: i64) -> Result<i64> {
    let dir = &partition.dir;
    let lock_path = dir.join(LOCK_FILE);
    let lock_file = lock::open_lock_file(&lock_path).at("open", &lock_path)?;
    let _lock = ExclusiveLock::acquire(&lock_file).at("lock", dir)?;
    let end = partition.log_end_offset()?;
    let start = partition.log_start_offset()?;
    let target = offset.min(end);
    if target <= start {
        return Ok(start);
    }
    retention::write_log_start(dir, target)?;
    let segments = segment::list(dir).at("list", dir)?;
    // A segment is wholly below the target when the next one starts at or before it; the
    // last (active) segment is never deleted.
    for pair in segments.windows(2) {
        if pair[1] > target {
            break;
        }
        for ext in [LOG_EXT, INDEX_EXT, segment::TIME_INDEX_EXT] {
            let path = segment::path(dir, pair[0], ext);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at("delete", &path),
            }
        }
    }
    super::fsutil::sync_dir(dir).at("sync", dir)?;
    Ok(target)
}

/// The largest record timestamp of a partition and the offset of the first record carrying it
/// (Kafka's ListOffsets MAX_TIMESTAMP). Batches are hopped by their headers; only the batch
/// holding the largest timestamp is decoded (for a compressed batch, its last offset is given).
pub fn max_timestamp_offset(dir: &Path) -> Result<Option<(i64, i64)>> {
    // (timestamp, position, segment base, last offset of the batch)
    let mut best: Option<(i64, u64, i64, i64)> = None;
    for base in segment::list(dir).at("list", dir)? {
        let path = segment::path(dir, base, LOG_EXT);
        let Some(log) = segment::open_if_present(&path).at("open", &path)? else {
            continue;
        };
        let len = log.metadata().at("read", &path)?.len();
        let mut position = 0;
        while let Slot::Header(h) = segment::header_at(&log, len, position).at("read", &path)? {
            if best.is_none_or(|(ts, ..)| h.max_timestamp > ts) {
                best = Some((h.max_timestamp, position, base, h.last_offset()));
            }
            position += h.total_len() as u64;
        }
    }
    let Some((timestamp, position, base, last_offset)) = best else {
        return Ok(None);
    };
    let path = segment::path(dir, base, LOG_EXT);
    let log = File::open(&path).at("open", &path)?;
    let mut walker = segment::BatchWalker::new(&log, position).at("read", &path)?;
    let offset = match walker.next().at("read", &path)? {
        segment::Step::Batch { batch, .. } => {
            let mut decompressor = Decompressor::default();
            batch
                .records(&mut decompressor)
                .ok()
                .and_then(|mut records| {
                    records
                        .find(|r| r.as_ref().is_ok_and(|r| r.timestamp == timestamp))
                        .and_then(|r| r.ok().map(|r| r.offset))
                })
                .unwrap_or(batch.header.last_offset())
        }
        _ => last_offset,
    };
    Ok(Some((timestamp, offset)))
}

/// The timestamp of the record at `offset`, when it exists and its batch can be decoded.
pub fn record_timestamp(dir: &Path, offset: i64) -> Result<Option<i64>> {
    let read = read_batches(dir, offset, HEADER_LEN, false)?;
    if read.bytes.is_empty() {
        return Ok(None);
    }
    let Ok(batch) = super::batch::Batch::parse(&read.bytes) else {
        return Ok(None);
    };
    let mut decompressor = Decompressor::default();
    let Ok(records) = batch.records(&mut decompressor) else {
        return Ok(None);
    };
    let found = records
        .filter_map(std::result::Result::ok)
        .find(|r| r.offset == offset)
        .map(|r| r.timestamp);
    Ok(found)
}
