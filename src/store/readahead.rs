//! Reading and checking the next chunk of a segment on a helper thread while the current one is
//! decoded, as a Kafka consumer's fetcher does.
//!
//! A reader catching up on a backlog would otherwise alternate between waiting for `pread` to
//! copy a chunk out of the page cache, checking the CRCs of its batches, and decoding them; the
//! first two take about as long as the third. With chunk N+1 read and checked on another core
//! while chunk N is decoded, reading a large log costs about the decoding alone. One helper
//! thread serves the whole process (started by the first read-ahead); a reader has at most one
//! chunk in flight and waits for it only when it gets there.
//!
//! Bytes read ahead are no different from bytes read a moment earlier into a larger buffer. The
//! helper checks the complete batches at the start of the chunk exactly as the reader would
//! ([`Batch::parse`]: length, magic, attributes, CRC) and says how far that went; the reader
//! checks whatever lies beyond itself, so damage is reported by the reader, as always, and an
//! incomplete batch at the end is read again.
//!
//! The helper stops checking as soon as the reader asks for the chunk: when reading is the slow
//! part (a cold page cache), the reader, which would otherwise wait, checks the rest, and the two
//! threads share the work whichever of them is the busier.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use super::batch::{Batch, BatchHeader};

/// A chunk being read ahead.
#[derive(Debug)]
pub struct ReadAhead {
    /// Base offset of the segment and file position the chunk starts at.
    pub segment: i64,
    pub position: u64,
    done: Receiver<Chunk>,
    /// Set when the reader waits for the chunk: the helper then stops checking batches.
    wanted: Arc<AtomicBool>,
}

/// A chunk read ahead: `buf[..filled]` holds the file's bytes from the requested position, and
/// `buf[..checked]` consists of whole batches that passed [`Batch::parse`].
#[derive(Debug)]
pub struct Chunk {
    pub buf: Vec<u8>,
    pub filled: usize,
    pub checked: usize,
    pub result: io::Result<()>,
}

struct Job {
    file: Arc<File>,
    position: u64,
    len: usize,
    buf: Vec<u8>,
    done: SyncSender<Chunk>,
    wanted: Arc<AtomicBool>,
}

impl ReadAhead {
    /// Starts reading `len` bytes of `file` from `position` into `buf` (grown as needed) on the
    /// helper thread. `None` when no helper thread can be started; the caller reads itself.
    pub fn start(
        file: Arc<File>,
        segment: i64,
        position: u64,
        len: usize,
        buf: Vec<u8>,
    ) -> Option<ReadAhead> {
        let (done, rx) = sync_channel(1);
        let wanted = Arc::new(AtomicBool::new(false));
        let job = Job {
            file,
            position,
            len,
            buf,
            done,
            wanted: Arc::clone(&wanted),
        };
        helper()?.lock().ok()?.send(job).ok()?;
        Some(ReadAhead {
            segment,
            position,
            done: rx,
            wanted,
        })
    }

    /// Waits for the chunk; `None` if the helper thread is gone.
    pub fn wait(self) -> Option<Chunk> {
        self.wanted.store(true, Ordering::Relaxed);
        receive(&self.done)
    }
}

/// The helper thread's queue, started on first use; `None` if the thread cannot be spawned.
fn helper() -> Option<&'static Mutex<SyncSender<Job>>> {
    static HELPER: OnceLock<Option<Mutex<SyncSender<Job>>>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            // Readers have at most one chunk in flight each; a short queue is plenty.
            let (tx, rx) = sync_channel::<Job>(64);
            std::thread::Builder::new()
                .name("spool-readahead".into())
                .spawn(move || {
                    while let Some(job) = receive(&rx) {
                        run(job);
                    }
                })
                .ok()?;
            Some(Mutex::new(tx))
        })
        .as_ref()
}

/// How long a thread about to wait for the other spins first. The next chunk or job is usually
/// a few microseconds away while a backlog is read, and waking a parked thread costs tens of
/// microseconds, a hundred times per 100 MiB.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Receives from `rx`, spinning for [`SPIN`] before blocking; `None` once the sender is gone.
fn receive<T>(rx: &Receiver<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        match rx.try_recv() {
            Ok(value) => return Some(value),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) if start.elapsed() < SPIN => {
                std::hint::spin_loop();
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => return rx.recv().ok(),
        }
    }
}

fn run(job: Job) {
    let Job {
        file,
        position,
        len,
        mut buf,
        done,
        wanted,
    } = job;
    if buf.len() < len {
        buf.resize(len, 0);
    }
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
    let checked = checked_prefix(&buf[..filled], || wanted.load(Ordering::Relaxed));
    // The reader may have moved on (seek, next segment) and dropped its end: nothing to do.
    let _ = done.send(Chunk {
        buf,
        filled,
        checked,
        result,
    });
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

        let chunk = ReadAhead::start(file.clone(), 0, 100, 500, Vec::new())
            .unwrap()
            .wait()
            .unwrap();
        chunk.result.unwrap();
        assert_eq!(chunk.filled, 500);
        assert_eq!(chunk.checked, 0, "no batches in there");
        assert_eq!(&chunk.buf[..500], &data[100..600]);

        // Past the end: only what the file holds, into a reused (larger) buffer.
        let chunk = ReadAhead::start(file, 0, 9_900, 500, vec![7; 2000])
            .unwrap()
            .wait()
            .unwrap();
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
