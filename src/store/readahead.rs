//! Reading and checking the next chunks of a segment on a helper thread while the current one
//! is decoded, as a Kafka consumer's fetcher does.
//!
//! A reader catching up on a backlog would otherwise alternate between waiting for `pread` to
//! copy a chunk out of the page cache, checking the CRCs of its batches, and decoding them; the
//! first two take about as long as the third. With the next chunks read and checked on another
//! core while one is decoded, the two halves overlap (on an idle 2-core machine a 100 MiB
//! backlog reads in about 60% of the time one thread takes).
//!
//! One helper thread serves the whole process (started by the first read-ahead). A reader keeps
//! a [`Stream`] of up to [`DEPTH`] chunks requested: each chunk starts where the complete
//! batches of the one before it end, which the helper finds as it reads, so the helper always
//! has the next chunk to read while the reader decodes, and a chunk is usually ready before the
//! reader asks for it (waking a parked thread costs more than reading a chunk takes). A chunk
//! that is late by more than [`PATIENCE`] (the helper not scheduled) is read by the reader
//! itself; the ones after it stay requested. (A reader of one of many partitions read in turn
//! keeps one chunk requested, and only when its buffer is about to run out: see
//! [`super::reader::ReadAhead`].)
//!
//! Bytes read ahead are no different from bytes read a moment earlier into a larger buffer. The
//! helper checks the complete batches at the start of the chunk exactly as the reader would
//! ([`Batch::parse`]: length, magic, attributes, CRC) and says how far that went; the reader
//! checks whatever lies beyond itself, so damage is reported by the reader, as always, and an
//! incomplete batch at the end is read again. The helper stops checking as soon as the reader
//! waits for the chunk: when reading is the slow part (a cold page cache), the reader, which
//! would otherwise wait, checks the rest.
//!
//! Chunk buffers come from one pool for the whole process ([`take_buffer`], [`give_back`]): a
//! buffer a reader is done with, or that a chunk given up or dropped held, is the next chunk's,
//! whichever partition that is for. A buffer is allocated (and its pages faulted in) once, not
//! per chunk or per partition; glibc serves allocations of a chunk's size with `mmap` and would
//! otherwise unmap them at each `free`.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use super::batch::{Batch, BatchHeader, RecordIter};
use crate::record::RecordRef;

/// Chunks a stream keeps requested ahead of the reader. Two: the helper always has the next
/// one to read while the reader takes one, and a chunk is still in a cache shared by both
/// cores when the reader gets to it (four ahead measured slower: 25.8 against 24.5 ms for
/// 100 MiB, the data pushed further out of the caches).
pub const DEPTH: usize = 2;

/// The chunks of one segment being read ahead, in file order.
#[derive(Debug)]
pub struct Stream {
    /// Base offset of the segment.
    pub segment: i64,
    file: Arc<File>,
    len: usize,
    pending: VecDeque<Pending>,
    state: Arc<StreamState>,
    render: Option<Arc<dyn RenderAhead>>,
}

/// What the helper and the reader share about a stream.
#[derive(Debug)]
struct StreamState {
    /// Where the next chunk starts: set by the reader for the first, then by the helper after
    /// each chunk (the end of its complete batches).
    next: AtomicU64,
    /// The reader dropped the stream: requests still queued are not read.
    cancelled: AtomicBool,
}

#[derive(Debug)]
struct Pending {
    done: Receiver<Chunk>,
    /// Set when the reader waits for the chunk: the helper then stops checking batches.
    wanted: Arc<AtomicBool>,
}

/// A chunk read ahead: `buf[..filled]` holds the file's bytes from `position`, and
/// `buf[..checked]` consists of whole batches that passed [`Batch::parse`]; `rendered`, what
/// the stream's [`RenderAhead`] made of the first of those records.
#[derive(Debug)]
pub struct Chunk {
    pub position: u64,
    pub buf: Vec<u8>,
    pub filled: usize,
    pub checked: usize,
    pub result: io::Result<()>,
    pub rendered: Option<Rendered>,
}

struct Job {
    file: Arc<File>,
    len: usize,
    buf: Vec<u8>,
    state: Arc<StreamState>,
    done: SyncSender<Chunk>,
    wanted: Arc<AtomicBool>,
    render: Option<Arc<dyn RenderAhead>>,
}

/// Renders records on the read-ahead thread, in the time it would otherwise wait for the
/// reader: a consumer whose output is a pure function of each record (a template, JSON) gives
/// its readers one, and the records the helper rendered are handed to it as rendered bytes
/// instead of being decoded again ([`super::reader::Deliver::rendered`]). The helper stops as
/// soon as the reader waits for the chunk; the reader decodes and renders the rest itself, so
/// the two threads share the rendering whichever is the busier.
pub trait RenderAhead: Send + Sync {
    /// Renders the records `batch` hands out, calling [`AheadBatch::rendered`] after each,
    /// until it hands out no more; stops early at a record it cannot render (the reader then
    /// renders that one itself, and reports what is wrong with it).
    fn render_batch(&self, batch: &mut AheadBatch<'_, '_>);
}

impl std::fmt::Debug for dyn RenderAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenderAhead")
    }
}

/// The records of one batch, as [`RenderAhead::render_batch`] takes them: it renders each
/// [`AheadBatch::next_record`] hands out into [`AheadBatch::out`], then says so.
pub struct AheadBatch<'a, 'r> {
    records: RecordIter<'a>,
    base_offset: i64,
    index: i64,
    wanted: &'r AtomicBool,
    rendered: &'r mut Rendered,
    /// Rendering stops once this many bytes are rendered (see [`render_ahead`]).
    limit: usize,
}

impl<'a> AheadBatch<'a, '_> {
    /// The next record, or `None`: the end of the batch, the reader waiting for the chunk, or a
    /// record the reader must look at itself (malformed, or not at the offset its place says).
    #[inline]
    pub fn next_record(&mut self) -> Option<RecordRef<'a>> {
        if self.wanted.load(Ordering::Relaxed) || self.rendered.bytes.len() >= self.limit {
            return None;
        }
        match self.records.next()? {
            Ok(record) if record.offset == self.base_offset + self.index => Some(record),
            _ => None,
        }
    }

    /// Where the rendered bytes go.
    #[inline]
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.rendered.bytes
    }

    /// The record [`AheadBatch::next_record`] handed out last was rendered in full into
    /// [`AheadBatch::out`].
    #[inline]
    pub fn rendered(&mut self) {
        self.index += 1;
        self.rendered.marks.push(Mark {
            out_end: self.rendered.bytes.len(),
            records_end: self.records.cursor().position(),
        });
    }
}

/// Records of a chunk rendered ahead: `bytes`, and for each record, where its rendering and
/// its encoding end.
#[derive(Debug, Default)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub marks: Vec<Mark>,
    /// The batches rendered (the last perhaps in part), in file order.
    pub batches: Vec<RenderedBatch>,
}

/// One record rendered ahead.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// End of the record's rendering in [`Rendered::bytes`].
    pub out_end: usize,
    /// End of the record's encoding, in bytes from the batch's first record.
    pub records_end: usize,
}

/// A batch whose first `records` records were rendered ahead.
#[derive(Debug, Clone, Copy)]
pub struct RenderedBatch {
    /// File position of the batch.
    pub position: u64,
    /// Its first record's [`Mark`] in [`Rendered::marks`].
    pub first_mark: usize,
    pub records: usize,
    /// Where its first record's rendering starts in [`Rendered::bytes`].
    pub out_start: usize,
}

impl Rendered {
    /// The batch at file position `position`, if some of its records were rendered.
    pub fn batch_at(&self, position: u64) -> Option<RenderedBatch> {
        self.batches
            .iter()
            .find(|b| b.position == position)
            .copied()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.marks.clear();
        self.batches.clear();
    }
}

/// Renderings the pool keeps for reuse (their buffers are as large as a chunk's records).
const RENDERED_POOL_MAX: usize = 4;

static RENDERED_POOL: Mutex<Vec<Rendered>> = Mutex::new(Vec::new());

/// Returns a rendering the reader is done with to the pool.
pub fn give_back_rendered(mut rendered: Rendered) {
    rendered.clear();
    if let Ok(mut pool) = RENDERED_POOL.lock() {
        if pool.len() < RENDERED_POOL_MAX {
            pool.push(rendered);
        }
    }
}

/// A rendering from the pool, or a new one with room for the records of a `len`-byte chunk
/// rendered about as long as they are encoded: grown a doubling at a time, each rendering
/// would touch (and fault in) fresh pages on its way to a chunk's size.
fn take_rendered(len: usize) -> Rendered {
    RENDERED_POOL
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_else(|| Rendered {
            bytes: Vec::with_capacity(len + len / 4),
            marks: Vec::with_capacity(len / 64),
            batches: Vec::new(),
        })
}

/// Renders the whole batches at the start of `bytes` (checked, at file position `position`)
/// with `render` until the reader wants the chunk, or the rendering is as long as the chunk
/// (the reading thread renders about a third of a chunk's records ahead when both are busy;
/// more, when it is far ahead, would only keep more memory per chunk in flight); `None` when
/// nothing was rendered.
fn render_ahead(
    render: &dyn RenderAhead,
    bytes: &[u8],
    position: u64,
    wanted: &AtomicBool,
) -> Option<Rendered> {
    let mut rendered = take_rendered(bytes.len());
    let mut at = 0;
    while at < bytes.len() && !wanted.load(Ordering::Relaxed) {
        let Ok(header) = BatchHeader::parse(&bytes[at..]) else {
            break;
        };
        let total = header.total_len();
        let batch = Batch {
            header,
            bytes: &bytes[at..at + total],
        };
        let Some(records) = batch.plain_records() else {
            break;
        };
        let start = (rendered.bytes.len(), rendered.marks.len());
        let mut ahead = AheadBatch {
            records,
            base_offset: header.base_offset,
            index: 0,
            wanted,
            rendered: &mut rendered,
            limit: bytes.len(),
        };
        render.render_batch(&mut ahead);
        let records = rendered.marks.len() - start.1;
        // Whatever was rendered past the last whole record goes.
        let out_end = rendered.marks.last().map_or(0, |m| m.out_end).max(start.0);
        rendered.bytes.truncate(out_end);
        if records > 0 {
            rendered.batches.push(RenderedBatch {
                position: position + at as u64,
                first_mark: start.1,
                records,
                out_start: start.0,
            });
        }
        if records < usize::try_from(header.records_count).unwrap_or(0) {
            break;
        }
        at += total;
    }
    if rendered.batches.is_empty() {
        give_back_rendered(rendered);
        return None;
    }
    Some(rendered)
}

impl Stream {
    /// A stream of `len`-byte chunks of `file` (the log of segment `segment`) from `position`
    /// on. Nothing is requested before [`Stream::top_up`].
    pub fn new(file: Arc<File>, segment: i64, position: u64, len: usize) -> Stream {
        Stream {
            segment,
            file,
            len,
            pending: VecDeque::with_capacity(DEPTH),
            state: Arc::new(StreamState {
                next: AtomicU64::new(position),
                cancelled: AtomicBool::new(false),
            }),
            render: None,
        }
    }

    /// Has the records of the chunks read from now on rendered ahead with `render`.
    pub fn render_with(&mut self, render: Option<Arc<dyn RenderAhead>>) {
        self.render = render;
    }

    /// Requests chunks until `depth` are pending, reading into buffers from the pool. False
    /// when no helper thread can be started; the caller then reads itself.
    pub fn top_up(&mut self, depth: usize) -> bool {
        if self.pending.len() > depth / 2 {
            return true;
        }
        let Some(helper) = helper() else {
            return false;
        };
        while self.pending.len() < depth {
            let (done, rx) = sync_channel(1);
            let wanted = Arc::new(AtomicBool::new(false));
            let job = Job {
                file: Arc::clone(&self.file),
                len: self.len,
                buf: take_buffer(),
                state: Arc::clone(&self.state),
                done,
                wanted: Arc::clone(&wanted),
                render: self.render.clone(),
            };
            if helper.send(job).is_err() {
                return false;
            }
            self.pending.push_back(Pending { done: rx, wanted });
        }
        true
    }

    /// Whether a chunk is requested and not yet taken.
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next chunk, waiting for it up to [`PATIENCE`]. A helper that is not running (its
    /// CPU busy with something else) must not hold the reader up: a late chunk is given up
    /// ([`Next::Late`]) and the reader reads it itself, while the chunks after it stay requested
    /// (they start where this one's complete batches end, whoever reads it).
    pub fn next_chunk(&mut self) -> Next {
        let Some(pending) = self.pending.pop_front() else {
            return Next::Gone;
        };
        pending.wanted.store(true, Ordering::Relaxed);
        match receive_within(&pending.done, PATIENCE) {
            Received::Value(chunk) => Next::Chunk(chunk),
            // Sent just now, after all: take it rather than drop it with its buffer.
            Received::TimedOut => match pending.done.try_recv() {
                Ok(chunk) => Next::Chunk(chunk),
                Err(_) => Next::Late,
            },
            Received::Disconnected => Next::Gone,
        }
    }
}

/// What [`Stream::next_chunk`] found.
#[derive(Debug)]
pub enum Next {
    Chunk(Chunk),
    /// Not read yet after [`PATIENCE`].
    Late,
    /// Nothing requested, or the helper thread is gone.
    Gone,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.state.cancelled.store(true, Ordering::Relaxed);
        // Chunks already read and not taken: their buffers go back to the pool (those still
        // being read are given back by the helper when it finds nobody waiting).
        for pending in self.pending.drain(..) {
            if let Ok(chunk) = pending.done.try_recv() {
                give_back_chunk(chunk);
            }
        }
    }
}

/// Idle buffers the pool keeps; more are freed. A reader of one partition holds one buffer
/// and has [`DEPTH`] read ahead, and needs four at most; readers of several partitions give
/// their buffers back between turns and at their end, and take them again a turn later: a
/// buffer freed there would be allocated (and its pages faulted in) again at once. (With four,
/// 3,000,000 records produced from a pipe into eight partitions, batches of 47 KB to 1 MiB,
/// read in 5,700–7,200 minor faults against 3,940 with eight.)
const POOL_MAX: usize = 8;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer from the pool (empty when the pool is: it is grown where it is filled).
pub fn take_buffer() -> Vec<u8> {
    POOL.lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_default()
}

/// A buffer of at least `len` zeroed (or already written) bytes, from the pool when it has one
/// that large, else new with room for `capacity` bytes, so that growing it up to there later
/// neither moves it nor zeroes it twice (pages past `len` are not touched yet).
pub fn buffer_of(len: usize, capacity: usize) -> Vec<u8> {
    let mut buf = take_buffer();
    if buf.capacity() < len {
        // Too small for this reader's chunks (a smaller chunk's, or a start-up read's).
        buf = Vec::with_capacity(capacity.max(len));
    }
    super::fsutil::grow_zeroed(&mut buf, len);
    buf
}

/// Returns a chunk's buffers to their pools.
pub fn give_back_chunk(chunk: Chunk) {
    give_back(chunk.buf);
    if let Some(rendered) = chunk.rendered {
        give_back_rendered(rendered);
    }
}

/// Returns a buffer to the pool (freed when the pool is full, or when it holds nothing).
pub fn give_back(buf: Vec<u8>) {
    if buf.capacity() == 0 {
        return;
    }
    if let Ok(mut pool) = POOL.lock() {
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    }
}

/// The helper thread's queue, started on first use; `None` if the thread cannot be spawned.
fn helper() -> Option<Sender<Job>> {
    static HELPER: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    let queue = HELPER.get_or_init(|| {
        // Unbounded, but each stream has at most DEPTH requests in it.
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("spool-readahead".into())
            .spawn(move || {
                while let Some(job) = receive(&rx) {
                    run(job);
                }
            })
            .ok()?;
        Some(Mutex::new(tx))
    });
    queue.as_ref()?.lock().ok().map(|tx| tx.clone())
}

/// How long a thread about to wait for the other spins first: waking a parked thread costs tens
/// of microseconds, which a backlog would pay a hundred times per 100 MiB.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// How long a reader waits for a chunk read ahead before it reads the chunk itself. Reading a
/// chunk from the page cache takes a fraction of this; a chunk that is later than this is held
/// up by the helper not being scheduled, or by a disk read the reader would wait for anyway.
pub const PATIENCE: std::time::Duration = if cfg!(test) {
    // Unit tests check what the helper read; on a loaded machine it may not run within 1 ms.
    std::time::Duration::from_secs(10)
} else {
    std::time::Duration::from_millis(1)
};

/// Receives from `rx`, spinning for [`SPIN`] before blocking; `None` once the sender is gone.
fn receive<T>(rx: &Receiver<T>) -> Option<T> {
    match receive_within(rx, std::time::Duration::MAX) {
        Received::Value(value) => Some(value),
        Received::TimedOut | Received::Disconnected => None,
    }
}

enum Received<T> {
    Value(T),
    TimedOut,
    Disconnected,
}

/// [`receive`], giving up after `limit`.
fn receive_within<T>(rx: &Receiver<T>, limit: std::time::Duration) -> Received<T> {
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
    let start = std::time::Instant::now();
    loop {
        match rx.try_recv() {
            Ok(value) => return Received::Value(value),
            Err(TryRecvError::Disconnected) => return Received::Disconnected,
            Err(TryRecvError::Empty) if start.elapsed() < SPIN => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => {
                let left = limit.saturating_sub(start.elapsed());
                let received = match std::time::Instant::now().checked_add(left) {
                    Some(_) => rx.recv_timeout(left),
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                return match received {
                    Ok(value) => Received::Value(value),
                    Err(RecvTimeoutError::Timeout) => Received::TimedOut,
                    Err(RecvTimeoutError::Disconnected) => Received::Disconnected,
                };
            }
        }
    }
}

fn run(job: Job) {
    let Job {
        file,
        len,
        mut buf,
        state,
        done,
        wanted,
        render,
    } = job;
    if state.cancelled.load(Ordering::Relaxed) {
        give_back(buf);
        return;
    }
    let position = state.next.load(Ordering::Relaxed);
    super::fsutil::grow_zeroed(&mut buf, len);
    let mut filled = 0;
    let mut result = Ok(());
    while filled < len {
        match file.read_at(&mut buf[filled..len], position + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let complete = complete_prefix(&buf[..filled]);
    if complete == 0 && filled == len {
        // A batch larger than a chunk: the reader reads it itself, and the stream ends here
        // (the next chunk would start at the same place).
        state.cancelled.store(true, Ordering::Relaxed);
    }
    state
        .next
        .store(position + complete as u64, Ordering::Relaxed);
    let checked = checked_prefix(&buf[..complete], || wanted.load(Ordering::Relaxed));
    let rendered = render
        .as_deref()
        .and_then(|render| render_ahead(render, &buf[..checked], position, &wanted));
    // The reader may have moved on (seek, next segment) or given the chunk up as late, and
    // dropped its end: the buffers go back to the pools.
    if let Err(std::sync::mpsc::SendError(chunk)) = done.send(Chunk {
        position,
        buf,
        filled,
        checked,
        result,
        rendered,
    }) {
        give_back_chunk(chunk);
    }
}

/// How many bytes at the start of `bytes` are whole batches, by their length fields alone.
pub fn complete_prefix(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(total) = BatchHeader::length_at(&bytes[at..]) {
        if at + total > bytes.len() {
            break;
        }
        at += total;
    }
    at
}

/// How many bytes at the start of `bytes` are whole batches that check out, looking no further
/// once `stop` says so.
fn checked_prefix(bytes: &[u8], stop: impl Fn() -> bool) -> usize {
    let mut at = 0;
    while let Some(total) = BatchHeader::length_at(&bytes[at..]) {
        if stop() {
            break;
        }
        if at + total > bytes.len() || Batch::parse(&bytes[at..at + total]).is_err() {
            break;
        }
        at += total;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_the_requested_range_and_stops_at_the_end_of_the_file() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        f.write_all(&data).unwrap();
        let file = Arc::new(f);

        let mut stream = Stream::new(file.clone(), 0, 100, 500);
        assert!(stream.top_up(DEPTH));
        let Next::Chunk(chunk) = stream.next_chunk() else {
            panic!("no chunk")
        };
        chunk.result.unwrap();
        assert_eq!(chunk.position, 100);
        assert_eq!(chunk.filled, 500);
        assert_eq!(chunk.checked, 0, "no batches in there");
        assert_eq!(&chunk.buf[..500], &data[100..600]);

        // Past the end: only what the file holds, into a reused (larger) buffer.
        give_back(vec![7; 2000]);
        let mut stream = Stream::new(file, 0, 9_900, 500);
        assert!(stream.top_up(DEPTH));
        let Next::Chunk(chunk) = stream.next_chunk() else {
            panic!("no chunk")
        };
        assert_eq!(chunk.position, 9_900);
        assert_eq!(chunk.filled, 100);
        assert_eq!(&chunk.buf[..100], &data[9_900..]);
    }

    #[test]
    fn only_the_whole_batches_that_check_out_are_vouched_for() {
        use crate::record::Record;
        use crate::store::batch::encode_batch;
        let record = Record {
            value: Some(b"value".to_vec()),
            ..Record::default()
        };
        let mut batch = Vec::new();
        encode_batch(&mut batch, &[record.clone(), record]);
        let one = batch.len();
        let mut bytes = [batch.clone(), batch.clone(), batch.clone()].concat();
        assert_eq!(checked_prefix(&bytes, || false), 3 * one);
        assert_eq!(
            checked_prefix(&bytes[..3 * one - 1], || false),
            2 * one,
            "last one incomplete"
        );
        bytes[one + one / 2] ^= 1;
        assert_eq!(
            checked_prefix(&bytes, || false),
            one,
            "the second one is damaged"
        );
        assert_eq!(checked_prefix(&[], || false), 0);
        assert_eq!(checked_prefix(&bytes, || true), 0, "asked to stop");
    }
}
