//! `spool topic verify`: a full check of a partition's segments and indexes, and the repair of
//! what it finds.
//!
//! Every batch of every segment is read and checked (length, magic, CRC, offsets contiguous
//! within and across segments, compressed records decompressed and decoded), and both indexes are compared with the entries Kafka's rule
//! would have written. A repair, done under the partition lock, cuts a segment at its first
//! damaged batch (the cut bytes are kept in a `.cut-<ms>` file beside it), rewrites the indexes
//! of every segment it touched or found wrong, and clears the head so the next appender
//! recovers from the files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::compression::Decompressor;
use super::error::{IoContext, Result, StoreError};
use super::fsutil;
use super::head::LOCK_FILE;
use super::index::{self, OffsetEntry, TimeEntry, INDEX_INTERVAL_BYTES};
use super::lock;
use super::segment::{self, BatchWalker, Step, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// Byte position in `file` (for an index: of the entry).
    pub position: u64,
    pub message: String,
}

/// The result of verifying one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PartitionReport {
    pub partition: i32,
    pub segments: usize,
    pub batches: u64,
    pub records: u64,
    pub problems: Vec<Problem>,
    /// What a repair did.
    pub repairs: Vec<String>,
    /// Offsets missing between segments because crash recovery or a repair cut them from a
    /// damaged log (the log continued after them: offsets are never reused). Not a problem
    /// any more, but records that were lost.
    pub lost_to_damage: Vec<LostRange>,
}

/// Offsets `from..=to` that a cut removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LostRange {
    pub from: i64,
    pub to: i64,
}

/// What one segment's walk found.
struct SegmentScan {
    base: i64,
    log_len: u64,
    /// End of the last valid batch; equals `log_len` when the segment is whole.
    valid_len: u64,
    next_offset: Option<i64>,
    expected_index: Vec<OffsetEntry>,
    expected_time_index: Vec<TimeEntry>,
    indexes_wrong: bool,
}

/// Verifies a partition directory, repairing it when `repair` is set.
pub fn verify_partition(
    dir: &Path,
    partition: i32,
    repair: bool,
    now_ms: i64,
) -> Result<PartitionReport> {
    let lock_path = dir.join(LOCK_FILE);
    // A repair rewrites files appenders use; a plain verify only needs a quiet moment to give
    // a consistent answer, so both take the lock. A plain verify of a read-only store locks
    // the lock file opened for reading (flock does not care), or, when there is none, works
    // without: nobody can be appending to a store nobody may write.
    let lock_file = match lock::open_lock_file(&lock_path) {
        Ok(f) => Some(f),
        Err(e) if super::error::is_read_only(&e) => {
            if repair {
                return Err(StoreError::ReadOnly {
                    what: "repair the partition",
                    path: dir.to_owned(),
                    source: e,
                });
            }
            File::open(&lock_path).ok()
        }
        Err(e) => return Err(e).at("open", &lock_path),
    };
    let _lock = match &lock_file {
        Some(f) => Some(lock::ExclusiveLock::acquire(f).at("lock", &lock_path)?),
        None => None,
    };
    let mut report = PartitionReport {
        partition,
        ..PartitionReport::default()
    };
    let segments = segment::list(dir).at("list", dir)?;
    report.segments = segments.len();
    let mut expected_next: Option<i64> = None;
    let mut changed = false;
    for (i, &base) in segments.iter().enumerate() {
        // Offsets missing before this segment are expected when a repair cut them from the
        // previous one (its `.cut-` file keeps them); the later segments keep their offsets,
        // as offsets are never reused.
        let gap_explained = i > 0 && has_cut_file(dir, segments[i - 1])?;
        let scan = scan_segment(dir, base, expected_next, gap_explained, &mut report)?;
        // An empty segment (one cut to nothing) still says where the next must start.
        expected_next = Some(scan.next_offset.unwrap_or(base));
        if repair && scan.valid_len < scan.log_len {
            cut_segment(dir, &scan, now_ms, &mut report)?;
            changed = true;
        }
        if repair && (scan.indexes_wrong || scan.valid_len < scan.log_len) {
            rewrite_indexes(dir, &scan)?;
            report.repairs.push(format!(
                "rebuilt the indexes of {}",
                segment::file_name(base, LOG_EXT)
            ));
            changed = true;
        }
    }
    if changed {
        // The head may describe bytes that are gone: make the next appender recover.
        let lock_file = lock_file
            .as_ref()
            .expect("a repair opened the lock file to write");
        lock_file.set_len(0).at("reset", &lock_path)?;
        fsutil::sync_dir(dir).at("sync", dir)?;
    }
    Ok(report)
}

/// Whether a repair kept bytes cut from the segment at `base` beside it.
fn has_cut_file(dir: &Path, base: i64) -> Result<bool> {
    let prefix = format!("{}.cut-", segment::file_name(base, LOG_EXT));
    for entry in std::fs::read_dir(dir).at("list", dir)? {
        if entry
            .at("list", dir)?
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn scan_segment(
    dir: &Path,
    base: i64,
    expected_next: Option<i64>,
    gap_explained: bool,
    report: &mut PartitionReport,
) -> Result<SegmentScan> {
    let log_path = segment::path(dir, base, LOG_EXT);
    let log = File::open(&log_path).at("open", &log_path)?;
    let mut walker = BatchWalker::new(&log, 0).at("read", &log_path)?;
    let mut scan = SegmentScan {
        base,
        log_len: walker.file_len(),
        valid_len: 0,
        next_offset: None,
        expected_index: Vec::new(),
        expected_time_index: Vec::new(),
        indexes_wrong: false,
    };
    let problem = |report: &mut PartitionReport, position, message: String| {
        report.problems.push(Problem {
            file: log_path.clone(),
            position,
            message,
        })
    };
    match expected_next {
        Some(n) if n < base && gap_explained => report.lost_to_damage.push(LostRange {
            from: n,
            to: base - 1,
        }),
        Some(n) if n != base => problem(
            report,
            0,
            format!("the previous segment ends at offset {n} but this one starts at {base}"),
        ),
        _ => {}
    }
    let mut decompressor = Decompressor::default();
    let mut bytes_since_index = 0u64;
    let mut max_ts = i64::MIN;
    let mut max_ts_offset = base;
    loop {
        match walker.next().at("read", &log_path)? {
            Step::Batch { position, batch } => {
                let h = batch.header;
                let expected = scan.next_offset.unwrap_or(base);
                if h.base_offset != expected {
                    problem(
                        report,
                        position,
                        format!(
                            "batch starts at offset {} where {expected} was expected",
                            h.base_offset
                        ),
                    );
                    break;
                }
                let records = match batch.records(&mut decompressor) {
                    Ok(records) => records,
                    Err(e) => {
                        problem(report, position, format!("corrupt batch: {e}"));
                        break;
                    }
                };
                if let Some((i, Err(e))) = records.enumerate().find(|(_, r)| r.is_err()) {
                    problem(report, position, format!("record {i}: {e}"));
                    break;
                }
                report.batches += 1;
                report.records += h.records_count as u64;
                if h.max_timestamp > max_ts {
                    max_ts = h.max_timestamp;
                    max_ts_offset = h.last_offset();
                }
                if bytes_since_index > INDEX_INTERVAL_BYTES {
                    scan.expected_index.push(OffsetEntry {
                        offset: h.last_offset(),
                        position: position as u32,
                    });
                    if scan
                        .expected_time_index
                        .last()
                        .is_none_or(|t| max_ts > t.timestamp)
                    {
                        scan.expected_time_index.push(TimeEntry {
                            timestamp: max_ts,
                            offset: max_ts_offset,
                        });
                    }
                    bytes_since_index = 0;
                }
                bytes_since_index += h.total_len() as u64;
                scan.next_offset = Some(h.next_offset());
                scan.valid_len = walker.position;
            }
            Step::End => break,
            Step::Incomplete => {
                problem(
                    report,
                    walker.position,
                    "incomplete batch at the end of the segment (a torn write)".into(),
                );
                break;
            }
            Step::Invalid { position, error } => {
                problem(report, position, format!("corrupt batch: {error}"));
                break;
            }
        }
    }
    check_indexes(dir, &mut scan, max_ts, max_ts_offset, report)?;
    Ok(scan)
}

/// Compares the index files with the expected entries. A final time index entry for the
/// segment's largest timestamp (written by Kafka when a segment is rolled) is accepted.
fn check_indexes(
    dir: &Path,
    scan: &mut SegmentScan,
    max_ts: i64,
    max_ts_offset: i64,
    report: &mut PartitionReport,
) -> Result<()> {
    let index_path = segment::path(dir, scan.base, INDEX_EXT);
    let actual = match File::open(&index_path) {
        Ok(f) => index::read_offset_entries(&f, scan.base).at("read", &index_path)?,
        Err(_) => Vec::new(),
    };
    let index_len = std::fs::metadata(&index_path).map_or(0, |m| m.len());
    if actual != scan.expected_index || index_len % index::OFFSET_ENTRY_LEN != 0 {
        let at = actual
            .iter()
            .zip(&scan.expected_index)
            .position(|(a, e)| a != e)
            .unwrap_or(actual.len().min(scan.expected_index.len()));
        report.problems.push(Problem {
            file: index_path,
            position: at as u64 * index::OFFSET_ENTRY_LEN,
            message: format!(
                "offset index has {} entries where {} were expected; the first difference is entry {at}",
                actual.len(),
                scan.expected_index.len()
            ),
        });
        scan.indexes_wrong = true;
    }
    let time_path = segment::path(dir, scan.base, TIME_INDEX_EXT);
    let actual = match File::open(&time_path) {
        Ok(f) => index::read_time_entries(&f, scan.base).at("read", &time_path)?,
        Err(_) => Vec::new(),
    };
    let mut with_final = scan.expected_time_index.clone();
    if max_ts != i64::MIN && with_final.last().is_none_or(|t| max_ts > t.timestamp) {
        with_final.push(TimeEntry {
            timestamp: max_ts,
            offset: max_ts_offset,
        });
    }
    if actual != scan.expected_time_index && actual != with_final {
        report.problems.push(Problem {
            file: time_path,
            position: 0,
            message: format!(
                "time index has {} entries that do not match the {} expected from the log",
                actual.len(),
                scan.expected_time_index.len()
            ),
        });
        scan.indexes_wrong = true;
    }
    Ok(())
}

fn cut_segment(
    dir: &Path,
    scan: &SegmentScan,
    now_ms: i64,
    report: &mut PartitionReport,
) -> Result<()> {
    let log_path = segment::path(dir, scan.base, LOG_EXT);
    let log = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log_path)
        .at("open", &log_path)?;
    let cut = scan.log_len - scan.valid_len;
    let mut bytes = vec![0u8; cut as usize];
    log.read_exact_at(&mut bytes, scan.valid_len)
        .at("read", &log_path)?;
    let mut saved = log_path.as_os_str().to_owned();
    saved.push(format!(".cut-{now_ms}"));
    let saved = PathBuf::from(saved);
    fsutil::write_atomic(&saved, &bytes).at("write", &saved)?;
    log.set_len(scan.valid_len).at("truncate", &log_path)?;
    log.sync_all().at("sync", &log_path)?;
    report.repairs.push(format!(
        "cut {cut} bytes from {} at byte {} (kept in {})",
        segment::file_name(scan.base, LOG_EXT),
        scan.valid_len,
        saved.display()
    ));
    Ok(())
}

fn rewrite_indexes(dir: &Path, scan: &SegmentScan) -> Result<()> {
    let index_bytes: Vec<u8> = scan
        .expected_index
        .iter()
        .flat_map(|e| index::encode_offset_entry(scan.base, *e))
        .collect();
    let time_bytes: Vec<u8> = scan
        .expected_time_index
        .iter()
        .flat_map(|e| index::encode_time_entry(scan.base, *e))
        .collect();
    let index_path = segment::path(dir, scan.base, INDEX_EXT);
    fsutil::write_atomic(&index_path, &index_bytes).at("write", &index_path)?;
    let time_path = segment::path(dir, scan.base, TIME_INDEX_EXT);
    fsutil::write_atomic(&time_path, &time_bytes).at("write", &time_path)
}
