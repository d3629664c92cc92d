//! Reading a partition from an offset on, without any lock.
//!
//! A [`PartitionReader`] keeps one segment open and a large read buffer over it. It hands out
//! records of complete batches whose length and CRC check out; an incomplete batch at the end is
//! "not yet written" and is looked at again on the next poll. A segment deleted while it is being
//! read stays readable through the open file. A compressed batch is decompressed once into a
//! buffer the reader reuses, and its records are handed out from there, also across polls that
//! stop inside it; an uncompressed batch's records are decoded straight from the read buffer.
//! The rest of a batch that a poll's budget holds goes to the sink at once ([`Deliver::records`]),
//! for a sink that renders a batch in one loop.
//!
//! Moving on to the next segment is decided only once the current one is sealed: a newer
//! segment exists only after a roll completed under the partition lock, after which nothing
//! more is appended to the older one, so the reader reads the current segment once more after
//! it has seen the newer one, and moves on only when that read finds nothing. (A single read
//! that found nothing proves nothing: a batch may be appended and the segment rolled between
//! that read and the listing.) Offsets missing between the end of one segment and the start of
//! the next are reported as a [`Gap`]: deleted by retention when the log start offset says so,
//! lost to damage otherwise (crash recovery that cut a log back never reuses its offsets).
//!
//! Reads start small after a seek (64 KiB, so fetching a record or two is cheap) and double up
//! to a chunk (1 MiB) while each fills the buffer. A reader catching up on a backlog of whole
//! chunks has the next ones read and CRC-checked ahead on a helper thread ([`super::readahead`])
//! and trusts the checks only for the batches the helper vouched for. Nothing is memory-mapped:
//! `topic verify --repair` and crash recovery may cut a segment while it is read, which a
//! mapping would turn into SIGBUS.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{Batch, BatchError, BatchHeader, RecordCursor, RecordIter, HEADER_LEN};
use super::compression::Decompressor;
use super::error::{IoContext, Result, StoreError};
use super::fsutil;
use super::head::{Head, LOCK_FILE};
use super::index;
use super::readahead::{self, Next, RenderAhead, Rendered, Stream};
use super::retention;
use super::segment::{self, Slot, INDEX_EXT, LOG_EXT};
use crate::record::RecordRef;

/// How much is read from a segment at once, unless [`PartitionReader::set_chunk`] says less.
pub const READ_CHUNK: usize = 1 << 20;

/// The smallest chunk [`PartitionReader::set_chunk`] accepts.
pub const MIN_READ_CHUNK: usize = 64 << 10;

/// Chunks a reader catching up on a backlog holds: its own and those read ahead.
pub const BUFFERS: usize = 1 + readahead::DEPTH;

/// Whether and when a reader has the chunks after its buffer read ahead
/// ([`PartitionReader::set_chunk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAhead {
    /// Never: each chunk is read when it is needed.
    Off,
    /// [`readahead::DEPTH`] chunks ahead as soon as a backlog shows: a reader on its own, which
    /// decodes its chunks back to back.
    Eager,
    /// One chunk ahead, requested only when the buffer is about to run out: one of many
    /// partitions read in turn, whose buffer lasts several turns. The chunk is read while the
    /// other partitions take theirs, and no partition holds chunks read long before it needs
    /// them.
    OnDemand,
}

/// A sequential reader over one partition.
#[derive(Debug)]
pub struct PartitionReader {
    dir: PathBuf,
    segment: Option<OpenSegment>,
    /// Next offset to deliver.
    next_offset: i64,
    buf: Vec<u8>,
    /// File position of `buf[0]` and how many bytes of `buf` hold data.
    buf_pos: u64,
    filled: usize,
    /// Offsets jumped over since the last [`PartitionReader::take_gaps`].
    gaps: Vec<Gap>,
    /// Base offsets of the segments as last listed: segments are only ever added after the
    /// last and deleted from the first, so the next one is known without listing the
    /// directory at every segment change (a listing is taken again when it is not).
    listed: Vec<i64>,
    /// Where the last poll stopped inside a batch that is still in `buf` and was checked.
    resume: Option<Resume>,
    /// Where compressed batches' records are decompressed, one batch at a time, into one
    /// buffer reused from batch to batch; a poll that stops inside a compressed batch leaves
    /// its records here for the next poll ([`Resume`]). Uncompressed batches never touch it.
    decompressor: Decompressor,
    /// Bytes read from a segment at once.
    chunk: usize,
    /// Bytes the next read asks for: from [`MIN_READ_CHUNK`] after a seek, doubling with each
    /// read that fills the buffer up to `chunk`, so that reading a record or two costs a small
    /// read and a backlog soon gets whole chunks (and read-ahead, once at `chunk`).
    read_len: usize,
    /// The chunks after `buf`, being read on the helper thread while `buf` is decoded.
    read_ahead: Option<Stream>,
    /// Whether and when a backlog is read ahead (see [`PartitionReader::set_chunk`]).
    read_ahead_mode: ReadAhead,
    /// File position up to which the batches in `buf` were already checked by the read-ahead
    /// thread (0 when nothing was).
    checked_until: u64,
    /// Chunks that came from the read-ahead thread.
    chunks_read_ahead: u64,
    /// The partition directory's identity when opened (see [`PartitionReader::check_topic`]).
    identity: (u64, u64),
    /// See [`PartitionReader::set_quick_end`].
    quick_end: bool,
    /// The buffer was given back to the pool at the end of a turn, in the middle of a backlog
    /// (see [`PartitionReader::prepare_turn`]).
    drained: bool,
    /// Nothing was read since the reader was positioned in its segment: its first chunk can
    /// be read ahead before its first turn (see [`PartitionReader::prepare_turn`]).
    unread: bool,
    /// Renders the records of the chunks read ahead, on the read-ahead thread.
    render_ahead: Option<Arc<dyn RenderAhead>>,
    /// What it rendered of the chunk in `buf`.
    rendered: Option<Rendered>,
    /// Runs between a read that found nothing more in the segment and the listing of the
    /// directory: lets a test append and roll exactly there.
    #[cfg(test)]
    before_listing: tests::Hook,
}

/// A batch that a poll left half delivered: the next poll continues at `cursor` without
/// checking the CRC or decoding the earlier records again.
#[derive(Debug, Clone, Copy)]
struct Resume {
    base: i64,
    position: u64,
    cursor: RecordCursor,
    /// Records of the batch after the cursor.
    left: usize,
    /// The cursor counts in the batch's decompressed records.
    compressed: bool,
}

#[derive(Debug)]
struct OpenSegment {
    base: i64,
    /// Shared with the read-ahead thread.
    file: Arc<File>,
    path: PathBuf,
    /// Position of the next batch to look at.
    position: u64,
    /// The offset the batch at `position` must start at: the segment's base at its start, the
    /// next offset of the batch before, or what the offset index vouched for. A batch that
    /// starts elsewhere has a damaged base offset (which its CRC does not cover).
    expected: i64,
}

/// Outcome of [`PartitionReader::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub delivered: usize,
    /// The reader is at the end of the log (nothing more is written yet).
    pub at_end: bool,
}

/// Where [`PartitionReader::poll`] delivers records: one by one, or, for records the reader's
/// [`RenderAhead`] rendered on the read-ahead thread, as their rendering. Any
/// `FnMut(RecordRef) -> Result` closure is a sink for a reader that renders nothing ahead.
pub trait Deliver<E> {
    fn record(&mut self, record: RecordRef<'_>) -> std::result::Result<(), E>;

    /// `records` consecutive records, as the reader's [`RenderAhead`] rendered them.
    fn rendered(&mut self, bytes: &[u8], records: usize) -> std::result::Result<(), E>;

    /// Every record `records` has left, all of them at or after the reader's position and
    /// within the poll's budget: a sink that renders a batch faster at once than record by
    /// record (the plain value) takes them here. It counts each record in `progress` before
    /// it hands it on, and stops at a malformed one (kept in `progress`) or at its own error.
    #[inline(always)]
    fn records(
        &mut self,
        records: &mut RecordIter<'_>,
        progress: &mut Progress,
    ) -> std::result::Result<(), E> {
        deliver_each(records, progress, |record| self.record(record))
    }
}

/// How far [`Deliver::records`] got: records delivered, the offset after the last, and the
/// malformed record it stopped at.
#[derive(Debug)]
pub struct Progress {
    pub delivered: usize,
    pub next_offset: i64,
    pub malformed: Option<BatchError>,
}

/// Hands each record of `records` to `deliver`, counting it in `progress` first (the default
/// [`Deliver::records`]).
#[inline(always)]
pub fn deliver_each<E>(
    records: &mut RecordIter<'_>,
    progress: &mut Progress,
    mut deliver: impl FnMut(RecordRef<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    for record in records {
        match record {
            Ok(record) => {
                progress.next_offset = record.offset + 1;
                progress.delivered += 1;
                deliver(record)?;
            }
            Err(source) => {
                progress.malformed = Some(source);
                break;
            }
        }
    }
    Ok(())
}

impl<E, F: FnMut(RecordRef<'_>) -> std::result::Result<(), E>> Deliver<E> for F {
    #[inline(always)]
    fn record(&mut self, record: RecordRef<'_>) -> std::result::Result<(), E> {
        self(record)
    }

    fn rendered(&mut self, _: &[u8], _: usize) -> std::result::Result<(), E> {
        unreachable!("a reader renders ahead only for a sink that takes renderings")
    }
}

impl PartitionReader {
    /// A reader whose first record is `offset` (or the first one after it that still exists).
    pub fn open(dir: &Path, offset: i64) -> Result<PartitionReader> {
        let identity = fsutil::file_identity(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::TopicDeleted {
                partition_dir: dir.to_owned(),
            },
            _ => StoreError::Io {
                op: "open",
                path: dir.to_owned(),
                source: e,
            },
        })?;
        let mut reader = PartitionReader {
            identity,
            dir: dir.to_owned(),
            segment: None,
            next_offset: offset,
            buf: Vec::new(),
            buf_pos: 0,
            filled: 0,
            gaps: Vec::new(),
            resume: None,
            decompressor: Decompressor::default(),
            listed: Vec::new(),
            chunk: READ_CHUNK,
            read_len: MIN_READ_CHUNK,
            read_ahead: None,
            read_ahead_mode: ReadAhead::Eager,
            checked_until: 0,
            chunks_read_ahead: 0,
            quick_end: false,
            drained: false,
            unread: true,
            render_ahead: None,
            rendered: None,
            #[cfg(test)]
            before_listing: tests::Hook::default(),
        };
        reader.seek(offset)?;
        Ok(reader)
    }

    /// Reads `chunk` bytes at once (at least [`MIN_READ_CHUNK`]) instead of [`READ_CHUNK`]:
    /// a consumer of many partitions keeps its buffers small. A reader catching up on a backlog
    /// holds [`BUFFERS`] chunks with [`ReadAhead::Eager`] (the others being read ahead), at most
    /// two with [`ReadAhead::OnDemand`], else one. Unless eager, it gives back the buffer a
    /// compressed batch was decompressed into (when larger than a chunk) once the batch is
    /// delivered, instead of keeping it for the next.
    pub fn set_chunk(&mut self, chunk: usize, read_ahead: ReadAhead) {
        self.chunk = chunk.max(MIN_READ_CHUNK);
        self.read_len = self.read_len.min(self.chunk);
        self.read_ahead_mode = read_ahead;
        if read_ahead != ReadAhead::Eager {
            self.read_ahead = None;
        }
    }

    /// With `quick`, a poll that finds nothing more in the current segment stops there: it
    /// neither lists the directory for a newer segment nor checks that the topic still exists
    /// (a `read` instead of seven system calls). For a consumer of several partitions that
    /// visits one found at its end before while others still have records: it looks again in
    /// full soon, and before it reports the end of them all. Records appended to the current
    /// segment are read either way; only moving on to the next segment waits for a full look.
    pub fn set_quick_end(&mut self, quick: bool) {
        self.quick_end = quick;
    }

    /// Has the records of the chunks read ahead rendered on the read-ahead thread by `render`
    /// (from the next chunk requested on, when read ahead eagerly: see
    /// [`PartitionReader::set_chunk`]); [`PartitionReader::poll`] then hands the records it
    /// rendered to [`Deliver::rendered`].
    pub fn set_render_ahead(&mut self, render: Option<Arc<dyn RenderAhead>>) {
        self.render_ahead = render;
    }

    /// Records left in the batch the last poll stopped in (0 when it stopped between batches):
    /// a consumer of several partitions read in turn takes them in the same turn, see
    /// [`PartitionReader::poll`].
    pub fn left_in_batch(&self) -> usize {
        self.resume.map_or(0, |r| r.left)
    }

    /// How many chunks were read (and checked) ahead on the helper thread.
    pub fn chunks_read_ahead(&self) -> u64 {
        self.chunks_read_ahead
    }

    /// The next offset this reader will deliver.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Offsets jumped over since the last call, because they were no longer in the log when the
    /// reader reached them.
    pub fn take_gaps(&mut self) -> Vec<Gap> {
        std::mem::take(&mut self.gaps)
    }

    /// Fails with [`StoreError::TopicDeleted`] when the partition directory is no longer the
    /// one this reader opened: the topic was deleted (and perhaps created again).
    pub fn check_topic(&self) -> Result<()> {
        if fsutil::same_file(&self.dir, self.identity).at("open", &self.dir)? {
            Ok(())
        } else {
            Err(StoreError::TopicDeleted {
                partition_dir: self.dir.clone(),
            })
        }
    }

    /// Repositions the reader at `offset`, found through the offset index.
    pub fn seek(&mut self, offset: i64) -> Result<()> {
        self.next_offset = offset;
        self.segment = None;
        self.forget_buffer();
        self.read_len = MIN_READ_CHUNK.min(self.chunk);
        // Retention may delete the segment between the listing and the open: list again.
        for _ in 0..OPEN_ATTEMPTS {
            let segments = segment::list(&self.dir).at("list", &self.dir)?;
            let Some(base) = segment::containing(&segments, offset) else {
                return Ok(());
            };
            let Some(mut seg) = self.open_segment(base)? else {
                continue;
            };
            (seg.position, seg.expected) = indexed_position(&self.dir, &seg, offset)?;
            self.segment = Some(seg);
            return Ok(());
        }
        Err(vanishing_segments(&self.dir))
    }

    /// Forgets what the buffer holds and what was read ahead: the segment changed.
    fn forget_buffer(&mut self) {
        self.filled = 0;
        self.resume = None;
        self.read_ahead = None;
        self.checked_until = 0;
        self.drained = false;
        self.unread = true;
        self.drop_rendered();
    }

    /// Gives back what was rendered ahead of the buffer's chunk: the buffer changed.
    fn drop_rendered(&mut self) {
        if let Some(rendered) = self.rendered.take() {
            readahead::give_back_rendered(rendered);
        }
    }

    /// Opens a segment's log; `None` when it no longer exists (deleted by retention).
    fn open_segment(&self, base: i64) -> Result<Option<OpenSegment>> {
        let path = segment::path(&self.dir, base, LOG_EXT);
        let Some(file) = segment::open_if_present(&path).at("open", &path)? else {
            return Ok(None);
        };
        Ok(Some(OpenSegment {
            base,
            file: Arc::new(file),
            path,
            position: 0,
            expected: base,
        }))
    }

    /// Delivers up to `budget` records, in offset order, to `sink`. Stops early at the end of
    /// the log. An error from `sink` stops the poll and is returned as is.
    ///
    /// With [`ReadAhead::OnDemand`] (one of several partitions read in turn), a poll that ends
    /// at a batch boundary with its buffer drained gives the buffer back to the pool
    /// ([`PartitionReader::prepare_turn`] has the next chunk read just before the next turn):
    /// a consumer that has its turns finish the batch they stop in
    /// ([`PartitionReader::left_in_batch`]) keeps no part-read batch, and no buffer, per
    /// partition between turns.
    pub fn poll<E, D>(&mut self, budget: usize, mut sink: D) -> std::result::Result<Polled, E>
    where
        E: From<StoreError>,
        D: Deliver<E>,
    {
        let mut delivered = 0;
        let started_at = self.consumed_until();
        while delivered < budget {
            let header = match self.next_header() {
                Ok(Some(header)) => header,
                other => {
                    self.stop_polling(other.map(|_| ()))?;
                    if self.read_ahead_mode == ReadAhead::OnDemand {
                        self.release_at_end();
                    }
                    return Ok(Polled {
                        delivered,
                        at_end: true,
                    });
                }
            };
            let seg = self
                .segment
                .as_mut()
                .expect("next_header keeps a segment open");
            let start = (seg.position - self.buf_pos) as usize;
            let total = header.total_len();
            if header.base_offset != seg.expected {
                return Err(StoreError::Corrupt {
                    path: seg.path.clone(),
                    position: seg.position,
                    source: BatchError::UnexpectedOffset {
                        expected: seg.expected,
                        found: header.base_offset,
                    },
                }
                .into());
            }
            if header.last_offset() < self.next_offset {
                seg.position += total as u64;
                seg.expected = header.next_offset();
                continue;
            }
            if self.rendered.is_some() {
                match self.deliver_rendered(&header, budget - delivered, &mut sink) {
                    Ok(0) => {}
                    Ok(n) => {
                        delivered += n;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let seg = self
                .segment
                .as_mut()
                .expect("next_header keeps a segment open");
            let bytes = &self.buf[start..start + total];
            let records = match self.resume.take() {
                // Checked (and decompressed) when the previous poll started it, and still in
                // the buffer (and the decompressor: nothing was decompressed since).
                Some(r) if r.base == seg.base && r.position == seg.position => {
                    Ok(Batch { header, bytes }.records_from(&self.decompressor, r.cursor))
                }
                // Checked by the read-ahead thread.
                _ if seg.position + total as u64 <= self.checked_until => {
                    Batch { header, bytes }.records(&mut self.decompressor)
                }
                _ => parse_batch(bytes, seg)?.records(&mut self.decompressor),
            };
            let mut records = records.map_err(|source| StoreError::Corrupt {
                path: seg.path.clone(),
                position: seg.position,
                source,
            })?;
            let resumed = records.remaining() < usize::try_from(header.records_count).unwrap_or(0);
            let malformed = if records.remaining() <= budget - delivered
                && (resumed || header.base_offset >= self.next_offset)
            {
                // The rest of the batch at once: nothing in it to skip, and the budget holds it.
                let mut progress = Progress {
                    delivered,
                    next_offset: self.next_offset,
                    malformed: None,
                };
                let outcome = sink.records(&mut records, &mut progress);
                delivered = progress.delivered;
                self.next_offset = progress.next_offset;
                outcome?;
                progress.malformed
            } else {
                // The record loop: the next offset kept in a local (stored back on every way
                // out), a malformed record reported after the loop.
                let mut next_offset = self.next_offset;
                let mut malformed = None;
                while delivered < budget {
                    let record = match records.next() {
                        Some(Ok(record)) => record,
                        Some(Err(source)) => {
                            malformed = Some(source);
                            break;
                        }
                        None => break,
                    };
                    if record.offset < next_offset {
                        continue;
                    }
                    next_offset = record.offset + 1;
                    delivered += 1;
                    if let Err(e) = sink.record(record) {
                        self.next_offset = next_offset;
                        return Err(e);
                    }
                }
                self.next_offset = next_offset;
                malformed
            };
            if let Some(source) = malformed {
                return Err(StoreError::Corrupt {
                    path: seg.path.clone(),
                    position: seg.position,
                    source,
                }
                .into());
            }
            if records.remaining() > 0 {
                self.resume = Some(Resume {
                    base: seg.base,
                    position: seg.position,
                    cursor: records.cursor(),
                    left: records.remaining(),
                    compressed: header.attributes & 0b111 != 0,
                });
            } else {
                self.next_offset = self.next_offset.max(header.next_offset());
                seg.position += total as u64;
                seg.expected = header.next_offset();
                if self.read_ahead_mode != ReadAhead::Eager {
                    // One of many partitions read at once: no decompressed batch kept per
                    // partition between batches (see `set_chunk`).
                    self.decompressor.release_above(self.chunk);
                }
            }
        }
        if self.read_ahead_mode == ReadAhead::OnDemand && !self.release_drained() {
            self.read_ahead_on_demand(started_at);
        }
        Ok(Polled {
            delivered,
            at_end: false,
        })
    }

    /// Hands `sink` the records of the batch at the segment's position (whose header is
    /// `header`) that were rendered ahead, from the first one not delivered yet, at most
    /// `budget`, and moves past them; how many it delivered (0: none of them was rendered).
    #[inline(never)]
    fn deliver_rendered<E, D>(
        &mut self,
        header: &BatchHeader,
        budget: usize,
        sink: &mut D,
    ) -> std::result::Result<usize, E>
    where
        D: Deliver<E>,
    {
        let (Some(rendered), Some(seg)) = (self.rendered.as_ref(), self.segment.as_mut()) else {
            return Ok(0);
        };
        let Some(ahead) = rendered.batch_at(seg.position) else {
            return Ok(0);
        };
        let resumed = match self.resume {
            Some(r) if r.base == seg.base && r.position == seg.position => {
                r.cursor.index() as usize
            }
            _ => 0,
        };
        let skipped = usize::try_from(self.next_offset - header.base_offset).unwrap_or(0);
        let from = resumed.max(skipped);
        let n = ahead.records.saturating_sub(from).min(budget);
        if n == 0 {
            return Ok(0);
        }
        let marks = &rendered.marks[ahead.first_mark..ahead.first_mark + ahead.records];
        let out_start = match from {
            0 => ahead.out_start,
            _ => marks[from - 1].out_end,
        };
        let last = marks[from + n - 1];
        self.next_offset = header.base_offset + (from + n) as i64;
        sink.rendered(&rendered.bytes[out_start..last.out_end], n)?;
        let left = usize::try_from(header.records_count).unwrap_or(0) - (from + n);
        if left > 0 {
            self.resume = Some(Resume {
                base: seg.base,
                position: seg.position,
                cursor: RecordCursor::new(last.records_end, (from + n) as i32),
                left,
                compressed: false,
            });
        } else {
            self.resume = None;
            self.next_offset = self.next_offset.max(header.next_offset());
            seg.position += header.total_len() as u64;
            seg.expected = header.next_offset();
        }
        Ok(n)
    }

    /// The segment and file position up to which the records were delivered, as far as the
    /// buffer tells (inside a compressed batch: its start).
    fn consumed_until(&self) -> Option<(i64, u64)> {
        let seg = self.segment.as_ref()?;
        let inside = match self.resume {
            Some(r) if r.base == seg.base && r.position == seg.position && !r.compressed => {
                (HEADER_LEN + r.cursor.position()) as u64
            }
            _ => 0,
        };
        Some((seg.base, seg.position + inside))
    }

    /// Where a poll ends at the end of the log (`Ok`) or in front of what it cannot read: the
    /// moment to notice that the topic is gone (one `stat` per poll that reaches the end, none
    /// per record). Out of line, so the record loop of [`PartitionReader::poll`] stays small
    /// enough to be inlined into its caller.
    #[cold]
    #[inline(never)]
    fn stop_polling(&self, outcome: Result<()>) -> Result<()> {
        if !self.quick_end {
            self.check_topic()?;
        }
        outcome
    }

    /// Makes the buffer hold the whole batch at the current position and returns its header;
    /// `None` at the end of the log.
    fn next_header(&mut self) -> Result<Option<BatchHeader>> {
        loop {
            if self.segment.is_none() {
                self.seek(self.next_offset)?;
                if self.segment.is_none() {
                    return Ok(None);
                }
            }
            let position = self.segment.as_ref().map_or(0, |s| s.position);
            let available = self.fill(position, HEADER_LEN)?;
            if available == 0 {
                if !self.quick_end && self.advance_segment()? {
                    continue;
                }
                return Ok(None);
            }
            let start = (position - self.buf_pos) as usize;
            match BatchHeader::parse(&self.buf[start..start + available]) {
                Ok(h) => {
                    let total = h.total_len();
                    let available = self.fill(position, total)?;
                    if available >= total {
                        return Ok(Some(h));
                    }
                    self.check_length_against_head(position, &h, available)?;
                    return self.incomplete_tail(position);
                }
                Err(BatchError::Incomplete { .. }) => return self.incomplete_tail(position),
                Err(source) => {
                    let seg = self.segment.as_ref().expect("checked above");
                    return Err(StoreError::Corrupt {
                        path: seg.path.clone(),
                        position,
                        source,
                    });
                }
            }
        }
    }

    /// An incomplete batch is "not yet written" only where a writer may be writing: at or after
    /// the end of the log as the head checkpoint records it. A batch that starts before that
    /// end but claims to run past it, while the file holds everything up to it, has a damaged
    /// length field. (A file cut short below the head is read up to the cut, as a torn tail.)
    fn check_length_against_head(
        &self,
        position: u64,
        header: &BatchHeader,
        available: usize,
    ) -> Result<()> {
        let seg = self.segment.as_ref().expect("called with a segment");
        let lock_path = self.dir.join(LOCK_FILE);
        let head = match File::open(&lock_path) {
            Ok(f) => Head::load(&f).at("read", &lock_path)?,
            Err(_) => None,
        };
        let Some(head) = head.filter(|h| h.active_base == seg.base) else {
            return Ok(());
        };
        let end = head.log_len;
        let file_holds_it = position + available as u64 >= end;
        if position < end && position + header.total_len() as u64 > end && file_holds_it {
            return Err(StoreError::Corrupt {
                path: seg.path.clone(),
                position,
                source: BatchError::PastLogEnd {
                    length: header.batch_length,
                    end,
                },
            });
        }
        Ok(())
    }

    /// An incomplete batch at the end is normally one being written. In a segment that is no
    /// longer the active one it can only be damage.
    fn incomplete_tail(&mut self, position: u64) -> Result<Option<BatchHeader>> {
        let base = self.segment.as_ref().map_or(0, |s| s.base);
        let segments = segment::list(&self.dir).at("list", &self.dir)?;
        if segments.iter().any(|&b| b > base) {
            // Read once more: the batch may have been completed or cut just before the roll.
            self.filled = 0;
            let available = self.fill(position, HEADER_LEN)?;
            if available == 0 {
                return Ok(None);
            }
            let start = (position - self.buf_pos) as usize;
            if let Ok(h) = BatchHeader::parse(&self.buf[start..start + available]) {
                if self.fill(position, h.total_len())? >= h.total_len() {
                    return Ok(Some(h));
                }
            }
            return Err(StoreError::Corrupt {
                path: segment::path(&self.dir, base, LOG_EXT),
                position,
                source: BatchError::Incomplete {
                    needed: HEADER_LEN,
                    available,
                },
            });
        }
        // Forget the partial bytes: a crashed writer's torn batch is cut and written anew by
        // the next appender, so what lies here must be read afresh next time.
        self.filled = self.filled.min((position - self.buf_pos) as usize);
        Ok(None)
    }

    /// At the end of a segment: moves to the next one once this one is known to be sealed.
    /// True when there is more to read (in this segment or the next).
    fn advance_segment(&mut self) -> Result<bool> {
        let (current, position) = {
            let seg = self.segment.as_ref().expect("called with a segment");
            (seg.base, seg.position)
        };
        #[cfg(test)]
        self.before_listing.run();
        for attempt in 0..OPEN_ATTEMPTS {
            if attempt > 0 || self.listed.last().is_none_or(|&b| b <= current) {
                self.listed = segment::list(&self.dir).at("list", &self.dir)?;
            }
            let Some(&next) = self
                .listed
                .get(self.listed.partition_point(|&b| b <= current))
            else {
                return Ok(false);
            };
            // A newer segment exists, so this one is sealed: whatever was appended to it
            // before the roll is visible now. Read it once more before leaving it.
            self.filled = 0;
            if self.fill(position, 1)? > 0 {
                return Ok(true);
            }
            // Deleted by retention since the listing: look again.
            let Some(seg) = self.open_segment(next)? else {
                continue;
            };
            if next > self.next_offset {
                let cause = match retention::read_log_start(&self.dir)? {
                    Some(start) if start >= next => GapCause::Retention,
                    _ => GapCause::Damage,
                };
                self.gaps.push(Gap {
                    from: self.next_offset,
                    to: next,
                    cause,
                });
                self.next_offset = next;
            }
            self.segment = Some(seg);
            self.forget_buffer();
            return Ok(true);
        }
        Err(vanishing_segments(&self.dir))
    }

    /// Makes `buf` cover at least `need` bytes from `position` when the file has them; returns
    /// how many bytes from `position` it covers.
    fn fill(&mut self, position: u64, need: usize) -> Result<usize> {
        let in_buf = position >= self.buf_pos && position <= self.buf_pos + self.filled as u64;
        if in_buf {
            let have = (self.buf_pos + self.filled as u64 - position) as usize;
            if have >= need {
                return Ok(have);
            }
        }
        // Bytes are read anew: a half-delivered batch is checked again before it is trusted.
        self.resume = None;
        self.drained = false;
        self.unread = false;
        if !self.take_read_ahead(position)? {
            // What was rendered ahead stays valid for the batches still in the buffer, which
            // a read behind them keeps; a read elsewhere does not.
            if !in_buf {
                self.drop_rendered();
            }
            if in_buf {
                // Keep what we have, read the rest behind it.
                let start = (position - self.buf_pos) as usize;
                self.buf.copy_within(start..self.filled, 0);
                self.filled -= start;
            } else {
                self.filled = 0;
            }
            self.buf_pos = position;
            // What is read from here on has not been checked (the file may have been cut and
            // written anew since the buffer held those positions).
            self.checked_until = self.checked_until.min(position + self.filled as u64);
        }
        let seg = self.segment.as_ref().expect("called with a segment");
        let mut want = need.max(self.read_len);
        if self.buf.len() < want {
            if need > self.read_len {
                // Never more than the file holds: a damaged length field must not make the
                // reader allocate the gigabytes it claims.
                let len = seg.file.metadata().at("read", &seg.path)?.len();
                let in_file = usize::try_from(len.saturating_sub(position)).unwrap_or(usize::MAX);
                want = want.min(in_file.max(self.read_len));
            }
            if self.buf.capacity() < want {
                // From the pool, with room for whole chunks: reads growing from a small
                // start-up read to `chunk` move nothing after this.
                let mut grown = readahead::buffer_of(want, self.chunk);
                grown[..self.filled].copy_from_slice(&self.buf[..self.filled]);
                self.buf = grown;
            }
            fsutil::grow_zeroed(&mut self.buf, want);
        }
        if self.buf.len() > want && self.filled <= want {
            // Back to a small read after a seek; the capacity stays for the reads to come.
            self.buf.truncate(want);
        }
        while self.filled < need {
            let n = seg
                .file
                .read_at(&mut self.buf[self.filled..], position + self.filled as u64)
                .at("read", &seg.path)?;
            if n == 0 {
                break;
            }
            self.filled += n;
        }
        self.read_ahead_more();
        Ok(self.filled)
    }

    /// Makes the next chunk read ahead the buffer, if it starts at `position`; false when there
    /// was none (read-ahead from elsewhere is dropped).
    fn take_read_ahead(&mut self, position: u64) -> Result<bool> {
        let Some(stream) = self.read_ahead.as_mut() else {
            return Ok(false);
        };
        let seg = self.segment.as_ref().expect("called with a segment");
        let chunk = match stream.next_chunk() {
            Next::Chunk(chunk) if stream.segment == seg.base && chunk.position == position => chunk,
            // Read here instead; the chunks after it are still good.
            Next::Late => return Ok(false),
            Next::Chunk(_) | Next::Gone => {
                self.read_ahead = None;
                return Ok(false);
            }
        };
        chunk.result.at("read", &seg.path)?;
        readahead::give_back(std::mem::replace(&mut self.buf, chunk.buf));
        self.drop_rendered();
        self.rendered = chunk.rendered;
        self.buf_pos = position;
        self.filled = chunk.filled;
        self.checked_until = position + chunk.checked as u64;
        self.chunks_read_ahead += 1;
        Ok(true)
    }

    /// After a read that filled the whole buffer (a backlog), keeps the next chunks being read
    /// on the helper thread, the first from the first batch the buffer does not hold
    /// completely: that is where the next fill will ask for. After a short read (the end of the
    /// log), stops reading ahead.
    fn read_ahead_more(&mut self) {
        if self.filled < self.buf.len() || self.read_ahead_mode == ReadAhead::Off {
            self.read_ahead = None;
            return;
        }
        if self.read_len < self.chunk {
            // Doubling what was read: a read that had to hold a batch larger than `read_len`
            // was the batch's size (1 MiB batches from `produce -f` go to whole chunks read
            // ahead after the first batch, rather than after three more read here).
            self.read_len = (self.read_len.max(self.filled) * 2).min(self.chunk);
            if self.read_len < self.chunk {
                return;
            }
        }
        if self.read_ahead_mode == ReadAhead::Eager {
            self.request_read_ahead(readahead::DEPTH);
        }
    }

    /// At the end of a turn that stopped at a batch boundary of a backlog with no whole batch
    /// left in its buffer (1 MiB batches in 1 MiB chunks: the turn finished the one batch the
    /// buffer held; or a start-up read that held just one batch): gives the buffer back to the pool, so that partitions waiting for their
    /// turn hold no buffers and the ones being read share a few. The part-batch it ended in is
    /// read again with the next chunk, which [`PartitionReader::prepare_turn`] has read ahead.
    /// True when the buffer was given back.
    fn release_drained(&mut self) -> bool {
        if self.resume.is_some()
            || self.filled == 0
            || self.filled < self.buf.len()
            || self.read_ahead.as_ref().is_some_and(Stream::is_pending)
        {
            return false;
        }
        let Some(position) = self.segment.as_ref().map(|s| s.position) else {
            return false;
        };
        let end = self.buf_pos + self.filled as u64;
        if position < self.buf_pos
            || position > end
            || readahead::complete_prefix(
                &self.buf[(position - self.buf_pos) as usize..self.filled],
            ) > 0
        {
            return false;
        }
        readahead::give_back(std::mem::take(&mut self.buf));
        self.drop_rendered();
        self.buf_pos = position;
        self.filled = 0;
        // A backlog (the read filled the buffer): its next read is a whole chunk, read ahead.
        self.read_len = self.chunk;
        self.checked_until = self.checked_until.min(position);
        self.drained = true;
        true
    }

    /// At the end of the log with nothing past the position in the buffer: gives the buffer
    /// back to the pool, so that partitions read to their end (the smaller ones of a topic,
    /// or all of them while a consumer waits) do not each keep one. The next look reads into
    /// a buffer from the pool.
    #[cold]
    fn release_at_end(&mut self) {
        let Some(position) = self.segment.as_ref().map(|s| s.position) else {
            return;
        };
        if self.resume.is_none()
            && self.buf.capacity() > 0
            && self.buf_pos + self.filled as u64 == position
        {
            readahead::give_back(std::mem::take(&mut self.buf));
            self.drop_rendered();
            self.buf_pos = position;
            self.filled = 0;
        }
    }

    /// Called just before the turn of the partition read before this one: a reader that gave
    /// its drained buffer back has its next chunk read ahead now, while that turn is taken,
    /// rather than at the end of its own turn (when it would hold the chunk through all the
    /// other partitions' turns). So has a reader that has read nothing yet: its first chunk
    /// (a whole chunk, not the small start-up read a lone reader begins with) is read on the
    /// helper thread like the ones after it, instead of by the consumer at its first turn,
    /// when its segment holds a whole chunk past its position.
    pub fn prepare_turn(&mut self) {
        if self.read_ahead_mode != ReadAhead::OnDemand
            || !(self.drained || self.unread)
            || self.read_ahead.as_ref().is_some_and(Stream::is_pending)
        {
            return;
        }
        let Some(seg) = self.segment.as_ref() else {
            return;
        };
        let position = seg.position;
        if self.unread {
            // Not read yet: its first chunk starts where the reader was positioned, if a whole
            // chunk is there to read (a partition near its end, the usual case for a consumer
            // that follows, starts with its own small read, and no helper thread is started
            // nor a chunk buffer allocated for it).
            let backlog = seg
                .file
                .metadata()
                .map_or(0, |m| m.len().saturating_sub(position));
            if backlog < self.chunk as u64 {
                return;
            }
            self.buf_pos = position;
            self.filled = 0;
        }
        self.request_read_ahead(1);
    }

    /// At the end of a poll that stopped in the middle of a backlog (having started at
    /// `started_at`): with [`ReadAhead::OnDemand`], requests the next chunk once what is left in
    /// the buffer would last no more than one more poll like this one (and a part-batch).
    fn read_ahead_on_demand(&mut self, started_at: Option<(i64, u64)>) {
        if self.read_len < self.chunk || self.read_ahead.as_ref().is_some_and(Stream::is_pending) {
            return;
        }
        let Some((base, now)) = self.consumed_until() else {
            return;
        };
        let taken = match started_at {
            Some((b, then)) if b == base && then <= now => now - then,
            // A new segment: its first chunk was just read.
            _ => return,
        };
        let left = (self.buf_pos + self.filled as u64).saturating_sub(now);
        // What is left ends in part of a batch, which the chunk read ahead starts with: an
        // eighth of a chunk for it (without it, a buffer whose last part-batch is larger than
        // what a poll takes would never have its next chunk read ahead).
        let tail = (self.chunk / 8) as u64;
        // Only a buffer that a full read filled: a short one ended at the end of the log.
        if self.filled == self.buf.len() && left <= taken + tail {
            self.request_read_ahead(1);
        }
    }

    /// Keeps `depth` chunks after the buffer requested from the helper thread.
    fn request_read_ahead(&mut self, depth: usize) {
        let seg = self.segment.as_ref().expect("called with a segment");
        let stream = self.read_ahead.get_or_insert_with(|| {
            let complete = readahead::complete_prefix(&self.buf[..self.filled]);
            let mut stream = Stream::new(
                Arc::clone(&seg.file),
                seg.base,
                self.buf_pos + complete as u64,
                self.chunk,
            );
            // Only for a reader read ahead eagerly (one partition): with many, a chunk is
            // requested a turn ahead, and rendering it measured slower (eight partitions'
            // JSON, 29.8 against 32.4 ms: the renderings of the partitions in flight cost
            // more page faults than the rendering they took off the consuming thread).
            if self.read_ahead_mode == ReadAhead::Eager {
                stream.render_with(self.render_ahead.clone());
            }
            stream
        });
        if !stream.top_up(depth) {
            self.read_ahead = None;
        }
    }
}

impl Drop for PartitionReader {
    /// The buffer goes back to the pool, for the readers that remain.
    fn drop(&mut self) {
        readahead::give_back(std::mem::take(&mut self.buf));
        self.drop_rendered();
    }
}

/// Offsets a reader jumped over: they were no longer in the log when it got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first offset missing.
    pub from: i64,
    /// Where reading continued (one past the last offset missing).
    pub to: i64,
    pub cause: GapCause,
}

impl Gap {
    pub fn records(&self) -> u64 {
        (self.to - self.from) as u64
    }
}

/// Why offsets were missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapCause {
    /// Retention deleted them: the log start offset moved past them.
    Retention,
    /// Crash recovery or a repair cut them from a damaged log; offsets after them were never
    /// reused.
    Damage,
}

/// How often a segment is looked up again when retention deletes it between the listing of the
/// directory and the open, before giving up.
const OPEN_ATTEMPTS: usize = 1000;

fn vanishing_segments(dir: &Path) -> StoreError {
    StoreError::Io {
        op: "open a segment of",
        path: dir.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "segments keep being deleted before they can be opened",
        ),
    }
}

/// Validates a complete batch (length, magic, CRC); damage is an error naming file and byte.
fn parse_batch<'b>(bytes: &'b [u8], seg: &OpenSegment) -> Result<Batch<'b>> {
    Batch::parse(bytes).map_err(|source| StoreError::Corrupt {
        path: seg.path.clone(),
        position: seg.position,
        source,
    })
}

/// The position to start scanning for `offset` in a segment, and the offset the batch there
/// starts at: from the offset index, checked against the batch it points at, else the
/// segment's start.
fn indexed_position(dir: &Path, seg: &OpenSegment, offset: i64) -> Result<(u64, i64)> {
    let start = (0, seg.base);
    let Ok(index_file) = File::open(segment::path(dir, seg.base, INDEX_EXT)) else {
        return Ok(start);
    };
    let Some(entry) = index::lookup_offset(&index_file, seg.base, offset)
        .at("read", &segment::path(dir, seg.base, INDEX_EXT))?
    else {
        return Ok(start);
    };
    let len = seg.file.metadata().at("read", &seg.path)?.len();
    match segment::header_at(&seg.file, len, u64::from(entry.position)).at("read", &seg.path)? {
        // The entry names the last offset of the batch at its position, so the batch often
        // ends before `offset` (Kafka's lookup gives where to start scanning): start at the
        // batch after it, whose position the header gives, rather than read this one only to
        // skip it.
        Slot::Header(h) if h.last_offset() == entry.offset && h.last_offset() < offset => Ok((
            u64::from(entry.position) + h.total_len() as u64,
            h.next_offset(),
        )),
        Slot::Header(h) if h.last_offset() == entry.offset && h.base_offset <= offset => {
            Ok((u64::from(entry.position), h.base_offset))
        }
        _ => Ok(start),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::Record;
    use crate::store::batch::encode_batch;
    use crate::store::{LogConfig, PartitionWriter, SyncPolicy};

    /// A partition of `batches` batches of `per_batch` records; values are the offsets.
    fn partition(batches: usize, per_batch: usize) -> tempfile::TempDir {
        partition_of(batches, per_batch, |offset| offset.to_string())
    }

    /// A partition of `batches` batches of `per_batch` records, valued `value(offset)`.
    fn partition_of(
        batches: usize,
        per_batch: usize,
        value: impl Fn(usize) -> String,
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut writer =
            PartitionWriter::open(dir.path(), LogConfig::default(), SyncPolicy::Never).unwrap();
        writer.initialize(0).unwrap();
        let mut bytes = Vec::new();
        for b in 0..batches {
            let records: Vec<Record> = (0..per_batch)
                .map(|i| Record {
                    timestamp: 1,
                    value: Some(value(b * per_batch + i).into_bytes()),
                    ..Record::default()
                })
                .collect();
            encode_batch(&mut bytes, &records);
            writer.append(&mut bytes, 1).unwrap();
        }
        dir
    }

    /// Code a test runs at one point of a reader's work.
    #[derive(Default)]
    pub(super) struct Hook(Option<Box<dyn FnOnce() + Send>>);

    impl Hook {
        pub(super) fn run(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }

    impl std::fmt::Debug for Hook {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Hook")
        }
    }

    fn read_all(reader: &mut PartitionReader, budget: usize) -> Vec<i64> {
        let mut got = Vec::new();
        loop {
            let polled = reader
                .poll::<StoreError, _>(budget, |r: RecordRef<'_>| {
                    let value: i64 = std::str::from_utf8(r.value.unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert_eq!(value, r.offset);
                    got.push(r.offset);
                    Ok(())
                })
                .unwrap();
            assert!(polled.delivered <= budget);
            if polled.at_end {
                return got;
            }
        }
    }

    #[test]
    fn any_budget_delivers_every_record_once_in_order() {
        let dir = partition(7, 13);
        for budget in [1, 2, 5, 13, 14, 100] {
            for start in [0, 1, 12, 13, 50, 90] {
                let mut reader = PartitionReader::open(dir.path(), start).unwrap();
                let got = read_all(&mut reader, budget);
                assert_eq!(got, (start..91).collect::<Vec<_>>(), "budget {budget}");
                assert_eq!(reader.next_offset(), 91);
            }
        }
    }

    /// Appends one batch of records whose values are `values` as text (also used by the
    /// consumer's tests).
    pub(crate) fn append_values(dir: &Path, config: LogConfig, values: &[i64]) {
        let mut writer = PartitionWriter::open(dir, config, SyncPolicy::Never).unwrap();
        let records: Vec<Record> = values
            .iter()
            .map(|v| Record {
                timestamp: 1,
                value: Some(v.to_string().into_bytes()),
                ..Record::default()
            })
            .collect();
        let mut bytes = Vec::new();
        encode_batch(&mut bytes, &records);
        writer.append(&mut bytes, 1).unwrap();
    }

    /// The race of a live reader at a roll: its read of the current segment finds nothing, then
    /// a batch is appended to that segment and another rolls it, then the reader lists the
    /// directory and sees the newer segment. It must read the batch, not take it for a gap.
    #[test]
    fn a_batch_appended_just_before_a_roll_is_read_before_moving_on() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        append_values(dir.path(), config, &[0, 1, 2]);
        let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
        assert_eq!(read_all(&mut reader, 100), [0, 1, 2]);
        let path = dir.path().to_owned();
        reader.before_listing = Hook(Some(Box::new(move || {
            // One more batch into the same segment, then one big enough to roll it.
            append_values(&path, config, &[3]);
            let big: Vec<i64> = (4..200).collect();
            append_values(&path, config, &big);
        })));
        let got = read_all(&mut reader, 1000);
        assert_eq!(got, (3..200).collect::<Vec<_>>());
        assert!(reader.take_gaps().is_empty());
    }

    #[test]
    fn compressed_batches_deliver_every_record_once_in_order_at_any_budget() {
        use crate::store::batch::compress_batch;
        use crate::store::compression::{Compression, Compressor};
        for codec in Compression::ALL {
            let dir = tempfile::tempdir().unwrap();
            let mut writer =
                PartitionWriter::open(dir.path(), LogConfig::default(), SyncPolicy::Never).unwrap();
            let (mut plain, mut compressed) = (Vec::new(), Vec::new());
            let mut compressor = Compressor::default();
            for b in 0..7 {
                let records: Vec<Record> = (0..13)
                    .map(|i| Record {
                        timestamp: 1,
                        value: Some((b * 13 + i).to_string().into_bytes()),
                        ..Record::default()
                    })
                    .collect();
                encode_batch(&mut plain, &records);
                compress_batch(&plain, codec, &mut compressor, &mut compressed).unwrap();
                writer.append(&mut compressed, 1).unwrap();
            }
            for budget in [1, 5, 13, 14, 100] {
                for start in [0, 1, 12, 13, 50, 90] {
                    let mut reader = PartitionReader::open(dir.path(), start).unwrap();
                    // As one of many partitions: the decompressed batch is not kept between
                    // batches (but is within one, across polls).
                    reader.set_chunk(
                        MIN_READ_CHUNK,
                        [ReadAhead::Eager, ReadAhead::OnDemand, ReadAhead::Off][start as usize % 3],
                    );
                    let got = read_all(&mut reader, budget);
                    assert_eq!(
                        got,
                        (start..91).collect::<Vec<_>>(),
                        "{codec}, budget {budget}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_seek_in_the_middle_of_a_batch_forgets_where_the_last_poll_stopped() {
        let dir = partition(3, 10);
        let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
        let mut first = Vec::new();
        reader
            .poll::<StoreError, _>(4, |r: RecordRef<'_>| {
                first.push(r.offset);
                Ok(())
            })
            .unwrap();
        assert_eq!(first, [0, 1, 2, 3]);
        reader.seek(2).unwrap();
        assert_eq!(read_all(&mut reader, 3), (2..30).collect::<Vec<_>>());
    }

    /// A partition of `batches` batches of `per_batch` records whose values are their offsets,
    /// zero-padded to 200 bytes: a few hundred KiB, several small chunks.
    fn large_partition(batches: usize, per_batch: usize) -> tempfile::TempDir {
        partition_of(batches, per_batch, |offset| format!("{offset:0>200}"))
    }

    #[test]
    fn a_backlog_read_in_chunks_ahead_delivers_every_record_once_in_order() {
        let dir = large_partition(100, 20);
        for budget in [1, 7, 20, 1000] {
            for start in [0, 19, 20, 1001] {
                let mut reader = PartitionReader::open(dir.path(), start).unwrap();
                reader.set_chunk(MIN_READ_CHUNK, ReadAhead::Eager);
                let got = read_all(&mut reader, budget);
                assert_eq!(got, (start..2000).collect::<Vec<_>>(), "budget {budget}");
                assert!(
                    reader.chunks_read_ahead() >= 2,
                    "the ~420 KiB log is read in 64 KiB chunks, most of them ahead"
                );
            }
        }
    }

    /// Batches just smaller than a chunk (as `produce -f` writes 1 MiB batches for 1 MiB
    /// chunks): the first read holds a whole batch, so the reads after it are whole chunks read
    /// ahead at once, not after the start-up read's size has doubled up to a chunk.
    #[test]
    fn batches_as_large_as_a_chunk_are_read_ahead_from_the_second_on() {
        let dir = partition_of(20, 1200, |offset| format!("{offset:0>200}"));
        let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
        reader.set_chunk(4 * MIN_READ_CHUNK, ReadAhead::Eager);
        assert_eq!(read_all(&mut reader, 1000), (0..24_000).collect::<Vec<_>>());
        assert_eq!(
            reader.chunks_read_ahead(),
            19,
            "all but the first of the 20 batches of ~250 KB in 256 KiB chunks"
        );
    }

    #[test]
    fn a_reader_read_in_turns_has_its_next_chunk_read_ahead_on_demand() {
        let dir = large_partition(100, 20);
        for budget in [7, 20, 50] {
            let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
            reader.set_chunk(MIN_READ_CHUNK, ReadAhead::OnDemand);
            let got = read_all(&mut reader, budget);
            assert_eq!(got, (0..2000).collect::<Vec<_>>(), "budget {budget}");
            assert!(
                reader.chunks_read_ahead() >= 2,
                "budget {budget}: the ~420 KiB log in 64 KiB chunks, {} read ahead",
                reader.chunks_read_ahead()
            );
        }
    }

    /// Batches of ~42 KB in 64 KiB chunks: a chunk holds one whole batch and part of the next,
    /// so each turn delivers one batch and gives the drained buffer back; the next chunk is
    /// read ahead when the turn before this partition's is prepared.
    #[test]
    fn a_turn_finishes_its_batch_and_gives_the_drained_buffer_back() {
        let dir = partition_of(20, 200, |offset| format!("{offset:0>200}"));
        let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
        reader.set_chunk(MIN_READ_CHUNK, ReadAhead::OnDemand);
        let mut got = Vec::new();
        let mut released = 0;
        loop {
            reader.prepare_turn();
            let before = got.len();
            let mut polled = reader
                .poll::<StoreError, _>(10, |r: RecordRef<'_>| {
                    got.push(r.offset);
                    Ok(())
                })
                .unwrap();
            assert_eq!(reader.left_in_batch(), 190 * usize::from(!polled.at_end));
            if reader.left_in_batch() > 0 {
                polled = reader
                    .poll::<StoreError, _>(reader.left_in_batch(), |r: RecordRef<'_>| {
                        got.push(r.offset);
                        Ok(())
                    })
                    .unwrap();
            }
            if polled.at_end {
                break;
            }
            assert_eq!(got.len() - before, 200, "one whole batch a turn");
            if reader.buf.capacity() == 0 {
                released += 1;
            }
        }
        assert_eq!(got, (0..4000).collect::<Vec<_>>());
        assert!(
            released >= 10,
            "{released} of 20 turns gave their buffer back"
        );
        assert!(
            reader.chunks_read_ahead() >= 10,
            "{} chunks read ahead",
            reader.chunks_read_ahead()
        );
    }

    /// Renders a record as its value and a newline, except values ending in "149" or "649"
    /// (so that some batches are rendered only in part on the helper).
    struct ValueLines;

    impl RenderAhead for ValueLines {
        fn render_batch(&self, batch: &mut readahead::AheadBatch<'_, '_>) {
            while let Some(record) = batch.next_record() {
                let value = record.value.unwrap();
                if value.ends_with(b"149") || value.ends_with(b"649") {
                    return;
                }
                batch.out().extend_from_slice(value);
                batch.out().push(b'\n');
                batch.rendered();
            }
        }
    }

    /// Collects the records a poll delivers as the lines [`ValueLines`] renders, whichever
    /// thread rendered them.
    struct Lines<'a> {
        out: &'a mut Vec<u8>,
        rendered: &'a mut usize,
    }

    impl Deliver<StoreError> for Lines<'_> {
        fn record(&mut self, record: RecordRef<'_>) -> Result<()> {
            self.out.extend_from_slice(record.value.unwrap());
            self.out.push(b'\n');
            Ok(())
        }

        fn rendered(&mut self, bytes: &[u8], records: usize) -> Result<()> {
            assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), records);
            self.out.extend_from_slice(bytes);
            *self.rendered += records;
            Ok(())
        }
    }

    #[test]
    fn records_rendered_ahead_are_delivered_once_in_order_at_any_budget() {
        let dir = large_partition(100, 20);
        let expected: Vec<u8> = (0..2000)
            .flat_map(|o| format!("{o:0>200}\n").into_bytes())
            .collect();
        for mode in [ReadAhead::Eager, ReadAhead::OnDemand] {
            for (start, budget) in [(0, 1), (0, 7), (0, 20), (0, 1000), (1001, 7), (19, 33)] {
                let mut reader = PartitionReader::open(dir.path(), start).unwrap();
                reader.set_chunk(MIN_READ_CHUNK, mode);
                reader.set_render_ahead(Some(Arc::new(ValueLines)));
                let (mut out, mut rendered) = (Vec::new(), 0);
                let mut slept_after = None;
                loop {
                    reader.prepare_turn();
                    let polled = reader
                        .poll(
                            budget,
                            Lines {
                                out: &mut out,
                                rendered: &mut rendered,
                            },
                        )
                        .unwrap();
                    assert!(polled.delivered <= budget);
                    if polled.at_end {
                        break;
                    }
                    // The helper renders what it reads while the reader is not waiting: give
                    // it the time to, whenever a chunk is requested.
                    if reader.read_ahead.as_ref().is_some_and(Stream::is_pending)
                        && slept_after != Some(reader.chunks_read_ahead())
                    {
                        slept_after = Some(reader.chunks_read_ahead());
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
                let want = &expected[start as usize * 201..];
                assert!(out == want, "{mode:?} from {start}, budget {budget}");
                // Only a reader read ahead eagerly renders ahead.
                assert_eq!(
                    rendered > 0,
                    mode == ReadAhead::Eager,
                    "{mode:?} from {start}, budget {budget}: {rendered} rendered ahead"
                );
            }
        }
    }

    /// One of many partitions: its first chunk is read on the helper thread when the turn
    /// before its first is prepared, from wherever it was positioned, not by the consumer.
    #[test]
    fn a_partition_not_read_yet_has_its_first_chunk_read_ahead_before_its_first_turn() {
        let dir = large_partition(100, 20);
        for start in [0, 1001] {
            let mut reader = PartitionReader::open(dir.path(), start).unwrap();
            reader.set_chunk(MIN_READ_CHUNK, ReadAhead::OnDemand);
            reader.prepare_turn();
            let mut first = Vec::new();
            reader
                .poll::<StoreError, _>(5, |r: RecordRef<'_>| {
                    first.push(r.offset);
                    Ok(())
                })
                .unwrap();
            assert_eq!(first, (start..start + 5).collect::<Vec<_>>());
            assert_eq!(reader.chunks_read_ahead(), 1, "start {start}");
            // After a seek the reader is positioned anew: read ahead again from there.
            reader.seek(1500).unwrap();
            reader.prepare_turn();
            assert_eq!(read_all(&mut reader, 20), (1500..2000).collect::<Vec<_>>());
            assert!(reader.chunks_read_ahead() >= 2, "start {start}");
        }
        // A lone reader (read ahead eagerly) starts with its own small read, as before.
        let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
        reader.prepare_turn();
        assert!(reader.read_ahead.is_none());
        // So does one with less than a chunk to read (a consumer that follows the partition):
        // no helper thread started, no chunk buffer taken for it.
        let mut reader = PartitionReader::open(dir.path(), 1990).unwrap();
        reader.set_chunk(MIN_READ_CHUNK, ReadAhead::OnDemand);
        reader.prepare_turn();
        assert!(reader.read_ahead.is_none());
        assert_eq!(read_all(&mut reader, 20), (1990..2000).collect::<Vec<_>>());
    }

    #[test]
    fn a_quick_look_at_the_end_reads_the_segment_and_leaves_the_roll_for_a_full_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        append_values(dir.path(), config, &[0, 1, 2]);
        let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
        assert_eq!(read_all(&mut reader, 100), [0, 1, 2]);
        reader.set_quick_end(true);
        // Appended to the same segment: read at once.
        append_values(dir.path(), config, &[3]);
        assert_eq!(read_all(&mut reader, 100), [3]);
        // Rolled: a quick look stays in the sealed segment, a full one moves on.
        let big: Vec<i64> = (4..200).collect();
        append_values(dir.path(), config, &big);
        assert_eq!(read_all(&mut reader, 1000), Vec::<i64>::new());
        reader.set_quick_end(false);
        assert_eq!(read_all(&mut reader, 1000), big);
        assert!(reader.take_gaps().is_empty());
    }

    /// A record that does not decode, in a batch whose CRC checks out (written so): the records
    /// before it are delivered and the damage reported at its batch, whether the poll takes the
    /// rest of the batch at once or record by record.
    #[test]
    fn a_malformed_record_is_reported_after_the_records_before_it_at_any_budget() {
        let dir = tempfile::tempdir().unwrap();
        append_values(dir.path(), LogConfig::default(), &[10, 11, 12]);
        append_values(dir.path(), LogConfig::default(), &[13, 14, 15, 16, 17]);
        let log = segment::path(dir.path(), 0, LOG_EXT);
        let mut bytes = std::fs::read(&log).unwrap();
        let second = BatchHeader::length_at(&bytes).unwrap();
        // The third record of the second batch claims a length its fields do not fill.
        let mut records = Batch::parse(&bytes[second..])
            .unwrap()
            .plain_records()
            .unwrap();
        records.next();
        records.next();
        let third = second + HEADER_LEN + records.cursor().position();
        bytes[third] = 0x7e;
        let crc = crate::store::crc::crc32c(&bytes[second + 21..]);
        bytes[second + 17..second + 21].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(&log, &bytes).unwrap();
        for budget in [1, 2, 4, 1000] {
            let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
            let mut got = Vec::new();
            let err = loop {
                match reader.poll::<StoreError, _>(budget, |r: RecordRef<'_>| {
                    got.push(r.offset);
                    Ok(())
                }) {
                    Ok(polled) => assert!(!polled.at_end, "budget {budget}: never reported"),
                    Err(e) => break e,
                }
            };
            assert_eq!(got, [0, 1, 2, 3, 4], "budget {budget}");
            assert_eq!(reader.next_offset(), 5, "budget {budget}");
            match err {
                StoreError::Corrupt {
                    position,
                    source: BatchError::BadRecord { index: 2, .. },
                    ..
                } => assert_eq!(position, second as u64, "budget {budget}"),
                other => panic!("budget {budget}: {other}"),
            }
        }
    }

    #[test]
    fn damage_in_a_chunk_read_ahead_is_reported_where_it_is() {
        let dir = large_partition(100, 20);
        let log = segment::path(dir.path(), 0, LOG_EXT);
        // Batch 60 lies well past the first 64 KiB chunk: flip a byte inside one of its values.
        let bytes = std::fs::read(&log).unwrap();
        let mut position = 0;
        for _ in 0..60 {
            position += BatchHeader::length_at(&bytes[position..]).unwrap();
        }
        let mut damaged = bytes.clone();
        damaged[position + HEADER_LEN + 100] ^= 0x10;
        std::fs::write(&log, &damaged).unwrap();

        let mut reader = PartitionReader::open(dir.path(), 0).unwrap();
        reader.set_chunk(MIN_READ_CHUNK, ReadAhead::Eager);
        let mut got = Vec::new();
        let err = loop {
            match reader.poll::<StoreError, _>(50, |r: RecordRef<'_>| {
                got.push(r.offset);
                Ok(())
            }) {
                Ok(polled) => assert!(!polled.at_end, "the damage was never reported"),
                Err(e) => break e,
            }
        };
        assert_eq!(
            got,
            (0..1200).collect::<Vec<_>>(),
            "everything before the damage"
        );
        assert!(reader.chunks_read_ahead() >= 1);
        match err {
            StoreError::Corrupt {
                position: at,
                source: BatchError::BadCrc { .. },
                ..
            } => assert_eq!(at, position as u64),
            other => panic!("expected a CRC error at byte {position}, got {other:?}"),
        }
    }
}
