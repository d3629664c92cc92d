//! Segment files of one partition: naming, listing, and walking the batches of a `.log` file.
//!
//! A segment is `<base offset, 20 digits>.log` with its `.index` and `.timeindex`. The segment
//! with the highest base offset is the active one; only it is ever appended to.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch::{Batch, BatchError, BatchHeader, HEADER_LEN};

pub const LOG_EXT: &str = "log";
pub const INDEX_EXT: &str = "index";
pub const TIME_INDEX_EXT: &str = "timeindex";

/// `00000000000000000042.log` and friends.
pub fn file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

pub fn path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(file_name(base, ext))
}

/// Opens a segment file for reading; `None` when it no longer exists (a segment deleted by
/// retention since it was listed).
pub fn open_if_present(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The segment of `segments` (base offsets, ascending) that holds `offset`: the last one
/// starting at or before it, else the first (an offset below the log start reads from there).
pub fn containing(segments: &[i64], offset: i64) -> Option<i64> {
    segments
        .iter()
        .rev()
        .find(|&&b| b <= offset)
        .or(segments.first())
        .copied()
}

/// Base offsets of the partition's segments, ascending.
pub fn list(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(base) = stem.parse() {
                    bases.push(base);
                }
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// What lies at a position of a log file.
#[derive(Debug)]
pub enum Slot {
    /// A complete batch with a valid header; the CRC has not been checked.
    Header(BatchHeader),
    /// The file ends here.
    End,
    /// The file ends inside a batch: not yet written, or torn by a crash.
    Incomplete,
    /// The bytes here are not a batch.
    Invalid(BatchError),
}

/// Reads the batch header at `position` (no CRC check): enough to hop from batch to batch.
pub fn header_at(file: &File, file_len: u64, position: u64) -> io::Result<Slot> {
    if position >= file_len {
        return Ok(Slot::End);
    }
    let mut buf = [0u8; HEADER_LEN];
    let available = (file_len - position).min(HEADER_LEN as u64) as usize;
    file.read_exact_at(&mut buf[..available], position)?;
    Ok(slot(&buf[..available], position, file_len))
}

/// What the bytes at `position` of a file `file_len` long are, from `head`: the file's bytes
/// from there, as many as a header takes or as the file has.
fn slot(head: &[u8], position: u64, file_len: u64) -> Slot {
    match BatchHeader::parse(head) {
        Ok(h) if position + h.total_len() as u64 > file_len => Slot::Incomplete,
        Ok(h) => Slot::Header(h),
        Err(BatchError::Incomplete { .. }) => Slot::Incomplete,
        Err(e) => Slot::Invalid(e),
    }
}

/// Walks the batches of a log file from a position, reading in large chunks and validating each
/// batch completely (length, magic, CRC). Used by recovery, verification and retention. Headers
/// are read from the chunk too: a log of small batches is walked in a read per chunk, not one
/// per batch (a `spool produce` of one record walked its segment's last 8 KiB of one-record
/// batches in 116 reads).
pub struct BatchWalker<'f> {
    file: &'f File,
    file_len: u64,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_pos: u64,
    /// Bytes of `buf` holding file data.
    filled: usize,
    /// Position of the next batch.
    pub position: u64,
}

/// One step of a [`BatchWalker`].
pub enum Step<'b> {
    Batch { position: u64, batch: Batch<'b> },
    End,
    Incomplete,
    Invalid { position: u64, error: BatchError },
}

const WALK_CHUNK: usize = 1 << 20;

impl<'f> BatchWalker<'f> {
    pub fn new(file: &'f File, position: u64) -> io::Result<Self> {
        Ok(BatchWalker {
            file,
            file_len: file.metadata()?.len(),
            buf: Vec::new(),
            buf_pos: position,
            filled: 0,
            position,
        })
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Step<'_>> {
        if self.position >= self.file_len {
            return Ok(Step::End);
        }
        // The header from the buffer (one read for many small batches, not one each).
        let available = (self.file_len - self.position).min(HEADER_LEN as u64) as usize;
        self.fill(available)?;
        let start = (self.position - self.buf_pos) as usize;
        let head = &self.buf[start..start + available];
        let header = match slot(head, self.position, self.file_len) {
            Slot::Header(h) => h,
            Slot::End => return Ok(Step::End),
            Slot::Incomplete => return Ok(Step::Incomplete),
            Slot::Invalid(error) => {
                return Ok(Step::Invalid {
                    position: self.position,
                    error,
                })
            }
        };
        let total = header.total_len();
        self.fill(total)?;
        let start = (self.position - self.buf_pos) as usize;
        let position = self.position;
        match Batch::parse(&self.buf[start..start + total]) {
            Ok(batch) => {
                self.position += total as u64;
                Ok(Step::Batch { position, batch })
            }
            Err(error) => Ok(Step::Invalid { position, error }),
        }
    }

    /// Makes `buf` hold `len` bytes from `self.position` on.
    fn fill(&mut self, len: usize) -> io::Result<()> {
        let start = self.position - self.buf_pos;
        if self.position >= self.buf_pos && start as usize + len <= self.filled {
            return Ok(());
        }
        let want = len
            .max(WALK_CHUNK)
            .min((self.file_len - self.position) as usize);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.file
            .read_exact_at(&mut self.buf[..want], self.position)?;
        self.buf_pos = self.position;
        self.filled = want;
        Ok(())
    }
}

/// The three open files of a segment, for appending.
#[derive(Debug)]
pub struct SegmentFiles {
    pub base: i64,
    pub log: File,
    pub index: File,
    pub time_index: File,
}

impl SegmentFiles {
    /// Opens the segment's files for reading and writing, creating any that are missing.
    pub fn open_or_create(dir: &Path, base: i64) -> io::Result<SegmentFiles> {
        let open = |ext| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path(dir, base, ext))
        };
        Ok(SegmentFiles {
            base,
            log: open(LOG_EXT)?,
            index: open(INDEX_EXT)?,
            time_index: open(TIME_INDEX_EXT)?,
        })
    }

    pub fn sync(&self) -> io::Result<()> {
        self.log.sync_data()?;
        self.index.sync_data()?;
        self.time_index.sync_data()
    }
}

/// Largest record timestamp of a segment, from its time index's last entry and the batch
/// headers after its last offset index entry (so a missing final time index entry, left by a
/// crash during a roll, does not hide newer records). `None` when the segment has no records.
pub fn max_timestamp(dir: &Path, base: i64) -> io::Result<Option<i64>> {
    let log = File::open(path(dir, base, LOG_EXT))?;
    let log_len = log.metadata()?.len();
    let from_time_index = match File::open(path(dir, base, TIME_INDEX_EXT)) {
        Ok(f) => super::index::last_time_entry(&f, base)?.map(|e| e.timestamp),
        Err(_) => None,
    };
    let start = match File::open(path(dir, base, INDEX_EXT)) {
        Ok(f) => {
            let count = f.metadata()?.len() / super::index::OFFSET_ENTRY_LEN;
            if count > 0 {
                super::index::lookup_offset(&f, base, i64::MAX)?
                    .map_or(0, |e| u64::from(e.position))
            } else {
                0
            }
        }
        Err(_) => 0,
    };
    let mut max = from_time_index;
    let mut position = if start < log_len { start } else { 0 };
    while let Slot::Header(h) = header_at(&log, log_len, position)? {
        max = Some(max.map_or(h.max_timestamp, |m: i64| m.max(h.max_timestamp)));
        position += h.total_len() as u64;
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::store::batch::encode_batch;
    use std::io::Write;

    /// Read system calls this thread has made (`syscr` of `/proc/thread-self/io`).
    fn reads_so_far() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("syscr: "))
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn a_walk_over_small_batches_reads_in_chunks_not_a_batch_at_a_time() {
        let mut file = tempfile::tempfile().unwrap();
        let mut log = Vec::new();
        for i in 0..10_000i64 {
            let mut batch = Vec::new();
            let record = Record {
                value: Some(format!("v{i}").into_bytes()),
                ..Record::default()
            };
            encode_batch(&mut batch, &[record]);
            batch[..8].copy_from_slice(&i.to_be_bytes());
            log.extend_from_slice(&batch);
        }
        let torn = log.len() + 20;
        log.extend_from_within(..20);
        file.write_all(&log).unwrap();

        let before = reads_so_far();
        let mut walker = BatchWalker::new(&file, 0).unwrap();
        let mut batches = 0;
        let end = loop {
            match walker.next().unwrap() {
                Step::Batch { batch, .. } => {
                    assert_eq!(batch.header.base_offset, batches);
                    batches += 1;
                }
                other => break other,
            }
        };
        let reads = reads_so_far() - before;
        assert_eq!(batches, 10_000);
        assert!(matches!(end, Step::Incomplete), "a torn tail");
        assert_eq!(walker.position as usize, torn - 20);
        // One chunk, the torn tail again, and reading the counter itself: not 10,000.
        assert!(reads <= 10, "{reads} reads for 10,000 batches");
    }
}
