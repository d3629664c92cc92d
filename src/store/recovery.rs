//! Crash recovery of the active segment, run by the appender that takes the partition lock and
//! finds the head missing or disagreeing with the files.
//!
//! As Kafka's log recovery does, it trusts the offset index up to its second-to-last entry that
//! points at a batch ending at that entry's offset (the last one may lack its time index entry,
//! written just after it), walks and validates every batch after that point (length, magic, CRC,
//! contiguous offsets), re-adds the index entries of both indexes for them, and truncates
//! whatever follows the last valid batch: a torn tail left by a crash, or damaged bytes. Damaged bytes (a
//! complete batch that fails its checks) are kept aside in a `.cut-<ms>` file beside the segment.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{IoContext, Result};
use super::head::Head;
use super::index::{self, OffsetEntry, TimeEntry, INDEX_INTERVAL_BYTES};
use super::segment::{self, BatchWalker, SegmentFiles, Slot, Step, LOG_EXT};

/// What recovery had to cut from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub segment: PathBuf,
    /// Where the last valid batch ended; everything from here on was cut.
    pub position: u64,
    pub bytes: u64,
    /// Why the bytes were cut: an incomplete tail or a description of the damage.
    pub reason: String,
    /// Where the cut bytes were kept, when they were damage rather than a torn tail, or when
    /// the cut went below offsets already handed out.
    pub saved_to: Option<PathBuf>,
    /// Offsets `[from, to)` that had been handed out and were cut: the log continues at `to`
    /// in a new segment, so they are never given to other records.
    pub lost: Option<(i64, i64)>,
}

/// Validates the active segment's tail and indexes, truncating what is not valid, and returns
/// the head that describes the result.
pub fn recover_active(
    dir: &Path,
    seg: &SegmentFiles,
    now_ms: i64,
) -> Result<(Head, Option<Truncation>)> {
    let log_path = segment::path(dir, seg.base, LOG_EXT);
    let log_len = seg.log.metadata().at("read", &log_path)?.len();
    let mut entries = valid_offset_entries(seg, log_len).at("read the index of", &log_path)?;
    // The last offset entry is written together with a time index entry; a crash between the
    // two leaves one without the other. Walking again from the entry before it writes both
    // anew, as the append did.
    entries.pop();
    let time_entries =
        valid_time_entries(seg, entries.last()).at("read the time index of", &log_path)?;

    let mut head = Head::empty(seg.base);
    head.index_len = entries.len() as u64 * index::OFFSET_ENTRY_LEN;
    head.time_index_len = time_entries.len() as u64 * index::TIME_ENTRY_LEN;
    if let Some(last) = time_entries.last() {
        head.max_timestamp = last.timestamp;
        head.max_timestamp_offset = last.offset;
        head.last_time_index_ts = last.timestamp;
    }
    seg.index
        .set_len(head.index_len)
        .at("truncate the index of", &log_path)?;
    seg.time_index
        .set_len(head.time_index_len)
        .at("truncate the time index of", &log_path)?;

    let resume_at = entries.last().copied();
    let mut walker = BatchWalker::new(&seg.log, resume_at.map_or(0, |e| u64::from(e.position)))
        .at("read", &log_path)?;
    let mut first = true;
    let stop_reason = loop {
        match walker.next().at("read", &log_path)? {
            Step::Batch { position, batch } => {
                let h = batch.header;
                if first && position == 0 {
                    head.first_timestamp = h.max_timestamp;
                }
                let resumed = first && resume_at.is_some();
                let expected = if resumed {
                    h.base_offset
                } else {
                    head.next_offset
                };
                if h.base_offset != expected {
                    break Some(format!(
                        "batch at byte {position} starts at offset {} where {expected} was expected",
                        h.base_offset
                    ));
                }
                first = false;
                head.next_offset = h.next_offset();
                if h.max_timestamp > head.max_timestamp {
                    head.max_timestamp = h.max_timestamp;
                    head.max_timestamp_offset = h.last_offset();
                }
                if !resumed && head.bytes_since_index > INDEX_INTERVAL_BYTES {
                    add_index_entries(seg, &mut head, h.last_offset(), position)
                        .at("write the index of", &log_path)?;
                }
                head.bytes_since_index += h.total_len() as u64;
                head.log_len = walker.position;
            }
            Step::End | Step::Incomplete => break None,
            Step::Invalid { error, .. } => break Some(error.to_string()),
        }
    };
    if head.first_timestamp == i64::MIN && head.log_len > 0 {
        if let Ok(Slot::Header(h)) = segment::header_at(&seg.log, log_len, 0) {
            head.first_timestamp = h.max_timestamp;
        }
    }

    let truncation = if log_len > head.log_len {
        let cut = log_len - head.log_len;
        let saved_to = match &stop_reason {
            Some(_) => Some(save_cut_bytes(
                &log_path,
                &seg.log,
                head.log_len,
                cut,
                now_ms,
            )?),
            None => None,
        };
        seg.log.set_len(head.log_len).at("truncate", &log_path)?;
        Some(Truncation {
            segment: log_path,
            position: head.log_len,
            bytes: cut,
            reason: stop_reason
                .unwrap_or_else(|| "incomplete batch at the end (torn write)".into()),
            saved_to,
            lost: None,
        })
    } else {
        None
    };
    Ok((head, truncation))
}

/// Marks offsets `[from, to)` as lost to damage: recovery cut a log back below offsets that had
/// been handed out. The cut bytes are kept in a `.cut-<ms>` file (empty when nothing was left
/// to keep), which also tells `topic verify` that the gap before the next segment is explained.
pub fn record_lost_offsets(
    log_path: &Path,
    truncation: Option<Truncation>,
    from: i64,
    to: i64,
    now_ms: i64,
) -> Result<Truncation> {
    let mut t = truncation.unwrap_or_else(|| Truncation {
        segment: log_path.to_owned(),
        position: 0,
        bytes: 0,
        reason: "the log is shorter than the offsets it had handed out".into(),
        saved_to: None,
        lost: None,
    });
    if t.saved_to.is_none() {
        let mut name = log_path.as_os_str().to_owned();
        name.push(format!(".cut-{now_ms}"));
        let saved = PathBuf::from(name);
        super::fsutil::write_atomic(&saved, &[]).at("write", &saved)?;
        t.saved_to = Some(saved);
    }
    t.lost = Some((from, to));
    Ok(t)
}

/// Appends the offset index entry for a batch and, when the largest timestamp grew, a time index
/// entry: Kafka's rule in `LogSegment.append`.
pub fn add_index_entries(
    seg: &SegmentFiles,
    head: &mut Head,
    last_offset: i64,
    position: u64,
) -> std::io::Result<()> {
    let entry = OffsetEntry {
        offset: last_offset,
        position: position as u32,
    };
    seg.index
        .write_all_at(&index::encode_offset_entry(seg.base, entry), head.index_len)?;
    head.index_len += index::OFFSET_ENTRY_LEN;
    if head.max_timestamp > head.last_time_index_ts {
        append_time_entry(seg, head)?;
    }
    head.bytes_since_index = 0;
    Ok(())
}

/// Appends (largest timestamp so far, its offset) to the time index.
pub fn append_time_entry(seg: &SegmentFiles, head: &mut Head) -> std::io::Result<()> {
    let entry = TimeEntry {
        timestamp: head.max_timestamp,
        offset: head.max_timestamp_offset,
    };
    seg.time_index.write_all_at(
        &index::encode_time_entry(seg.base, entry),
        head.time_index_len,
    )?;
    head.time_index_len += index::TIME_ENTRY_LEN;
    head.last_time_index_ts = head.max_timestamp;
    Ok(())
}

/// The prefix of the offset index that is well formed, ending with an entry that points at a
/// batch whose last offset is the entry's offset.
fn valid_offset_entries(seg: &SegmentFiles, log_len: u64) -> std::io::Result<Vec<OffsetEntry>> {
    let mut entries = index::read_offset_entries(&seg.index, seg.base)?;
    let well_formed = entries
        .iter()
        .enumerate()
        .take_while(|(i, e)| {
            e.offset >= seg.base
                && u64::from(e.position) < log_len
                && (*i == 0
                    || (e.offset > entries[i - 1].offset && e.position > entries[i - 1].position))
        })
        .count();
    entries.truncate(well_formed);
    while let Some(last) = entries.last() {
        match segment::header_at(&seg.log, log_len, u64::from(last.position))? {
            Slot::Header(h) if h.last_offset() == last.offset => break,
            _ => {
                entries.pop();
            }
        }
    }
    Ok(entries)
}

/// The prefix of the time index that is well formed and not past the last trusted offset entry.
fn valid_time_entries(
    seg: &SegmentFiles,
    last_offset_entry: Option<&OffsetEntry>,
) -> std::io::Result<Vec<TimeEntry>> {
    let Some(limit) = last_offset_entry else {
        return Ok(Vec::new());
    };
    let mut entries = index::read_time_entries(&seg.time_index, seg.base)?;
    let keep = entries
        .iter()
        .enumerate()
        .take_while(|(i, e)| {
            e.offset >= seg.base
                && e.offset <= limit.offset
                && (*i == 0
                    || (e.timestamp > entries[i - 1].timestamp
                        && e.offset >= entries[i - 1].offset))
        })
        .count();
    entries.truncate(keep);
    Ok(entries)
}

fn save_cut_bytes(
    log_path: &Path,
    log: &std::fs::File,
    from: u64,
    len: u64,
    now_ms: i64,
) -> Result<PathBuf> {
    let mut name = log_path.as_os_str().to_owned();
    name.push(format!(".cut-{now_ms}"));
    let saved = PathBuf::from(name);
    let mut bytes = vec![0u8; len as usize];
    log.read_exact_at(&mut bytes, from).at("read", log_path)?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&saved)
        .at("create", &saved)?;
    out.write_all(&bytes).at("write", &saved)?;
    out.sync_all().at("sync", &saved)?;
    Ok(saved)
}
