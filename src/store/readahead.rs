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

use super::batch::{Batch, BatchHeader};

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
/// `buf[..checked]` consists of whole batches that passed [`Batch::parse`].
#[derive(Debug)]
pub struct Chunk {
    pub position: u64,
    pub buf: Vec<u8>,
    pub filled: usize,
    pub checked: usize,
    pub result: io::Result<()>,
}

struct Job {
    file: Arc<File>,
    len: usize,
    buf: Vec<u8>,
    state: Arc<StreamState>,
    done: SyncSender<Chunk>,
    wanted: Arc<AtomicBool>,
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
        }
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
                give_back(chunk.buf);
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
    // The reader may have moved on (seek, next segment) or given the chunk up as late, and
    // dropped its end: the buffer goes back to the pool.
    if let Err(std::sync::mpsc::SendError(chunk)) = done.send(Chunk {
        position,
        buf,
        filled,
        checked,
        result,
    }) {
        give_back(chunk.buf);
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
