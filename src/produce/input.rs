//! Reading producer input: a byte stream cut into records at a delimiter.
//!
//! A regular file (`--file`, or stdin redirected from one) is mapped into memory and cut in
//! place: the bytes are not copied before they are encoded into batches, and the pages already
//! cut are handed back as the cursor moves on, so memory stays flat however large the file.
//! Anything else (a pipe, a terminal, a file that cannot be mapped) is read in large chunks into
//! one reusable buffer. Either way records are cut with `memchr`/`memmem`: no syscall and no
//! allocation per record. A final record without a delimiter is a record. For a pipe or terminal,
//! [`Input::ready`] asks the kernel whether more bytes are waiting, which is how the producer
//! knows to send what it has instead of waiting for more.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::scan::LineScanner;

/// Bytes read at once, and bytes of a mapped file made available at once.
const READ_CHUNK: usize = 1 << 20;
/// Pages of a mapped file already cut are given back once this many bytes are behind.
const RELEASE_CHUNK: usize = 1 << 20;
/// Pages of a mapped file are mapped this far ahead of the cursor.
const PAGE_AHEAD: usize = 2 << 20;
/// The cutting thread gives pages back itself when the pager is this far behind.
const MAX_BEHIND: usize = 4 << 20;

/// A source of delimited records.
pub struct Input {
    reader: Box<dyn Read>,
    /// The descriptor to poll for readiness; `None` for regular files, which are always ready.
    poll_fd: Option<RawFd>,
    delimiter: Needle,
    delimiter_len: usize,
    /// The delimiter, when it is one byte (for [`Input::next_line`]).
    delimiter_byte: Option<u8>,
    /// The rest of a regular file, mapped; once it is used up, `reader` takes over (for what
    /// was appended to the file since it was mapped).
    map: Option<Mapping>,
    buf: Vec<u8>,
    /// Unconsumed data is `data()[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    bytes_read: u64,
    /// Input size when known (a file), for progress.
    pub len: Option<u64>,
}

impl Input {
    pub fn stdin(delimiter: &[u8]) -> Input {
        let stdin = io::stdin();
        let fd = stdin.as_raw_fd();
        // SAFETY: fd 0 stays open for the life of the process; ManuallyDrop never closes it.
        let borrowed = std::mem::ManuallyDrop::new(unsafe {
            <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
        });
        if borrowed.metadata().is_ok_and(|m| m.is_file()) {
            return Input::regular(Box::new(stdin), fd, delimiter, None);
        }
        Input::new(Box::new(stdin), Some(fd), delimiter, None)
    }

    pub fn file(path: &Path, delimiter: &[u8]) -> io::Result<Input> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        let fd = file.as_raw_fd();
        if meta.is_file() {
            return Ok(Input::regular(
                Box::new(file),
                fd,
                delimiter,
                Some(meta.len()),
            ));
        }
        Ok(Input::new(Box::new(file), Some(fd), delimiter, None))
    }

    /// A regular file open at `fd` (which `reader` reads and keeps open), mapped from its
    /// current position when it can be; never polled (it is always ready).
    fn regular(reader: Box<dyn Read>, fd: RawFd, delimiter: &[u8], len: Option<u64>) -> Input {
        let mut input = Input::new(reader, None, delimiter, len);
        input.map = Mapping::of(fd);
        input
    }

    /// Any reader, read as is (for tests and embedding): never mapped, and polled through
    /// `poll_fd` when one is given.
    pub fn new(
        reader: Box<dyn Read>,
        poll_fd: Option<RawFd>,
        delimiter: &[u8],
        len: Option<u64>,
    ) -> Input {
        assert!(!delimiter.is_empty(), "a delimiter has at least one byte");
        Input {
            reader,
            poll_fd,
            delimiter: Needle::new(delimiter),
            delimiter_len: delimiter.len(),
            delimiter_byte: match delimiter {
                [b] => Some(*b),
                _ => None,
            },
            map: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            bytes_read: 0,
            len,
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    pub fn is_eof(&self) -> bool {
        self.eof
    }

    #[inline]
    fn data(&self) -> &[u8] {
        match &self.map {
            Some(map) => map.bytes(),
            None => &self.buf,
        }
    }

    /// The next complete record in the buffer, without its delimiter; at end of input, the
    /// unterminated rest. `None` when more input must be read first (or none is left).
    #[inline]
    pub fn next_record(&mut self) -> Option<&[u8]> {
        let (start, end) = (self.start, self.end);
        let record = match self.delimiter.find(&self.data()[start..end]) {
            Some(i) => {
                self.start += i + self.delimiter_len;
                start..start + i
            }
            None if self.eof && start < end => {
                self.start = end;
                start..end
            }
            None => return None,
        };
        Some(&self.data()[record])
    }

    /// A scanner for lines cut at this input's delimiter and keys ending at `separator`, when
    /// both are single bytes that differ (else lines are cut with [`Input::next_record`] and
    /// keys found in them).
    pub(crate) fn line_scanner(&self, separator: &[u8]) -> Option<LineScanner> {
        match (self.delimiter_byte, separator) {
            (Some(delimiter), [separator]) => LineScanner::new(delimiter, *separator),
            _ => None,
        }
    }

    /// [`Input::next_record`] that also finds where the record's key ends: the record, and the
    /// position in it of the first key separator, found in the same pass (see
    /// [`Input::line_scanner`]).
    #[inline]
    pub(crate) fn next_line(&mut self, scanner: &LineScanner) -> Option<(&[u8], Option<usize>)> {
        debug_assert_eq!(self.delimiter_byte, Some(scanner.delimiter()));
        let (start, end) = (self.start, self.end);
        let found = scanner.find(&self.data()[start..end]);
        let record = match found.delimiter {
            Some(i) => {
                self.start += i + 1;
                start..start + i
            }
            None if self.eof && start < end => {
                self.start = end;
                start..end
            }
            None => return None,
        };
        Some((&self.data()[record], found.separator))
    }

    /// Bytes buffered that do not yet form a complete record.
    pub fn partial_len(&self) -> usize {
        self.end - self.start
    }

    /// Reads more input (blocking). Returns false at end of input.
    pub fn read_more(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if let Some(map) = &mut self.map {
            map.advance(self.start);
            let available = map.available();
            if self.end < available {
                let more = (available - self.end).min(READ_CHUNK);
                self.end += more;
                self.bytes_read += more as u64;
                return Ok(true);
            }
            // The mapping is used up (or the file shrank): go on reading the file from where
            // the mapping ends, keeping the unfinished record.
            let map = self.map.take().expect("checked above");
            let end = self.end.min(available);
            self.buf.clear();
            self.buf
                .extend_from_slice(&map.bytes()[self.start.min(end)..end]);
            self.end = self.buf.len();
            self.start = 0;
            map.seek_to_end()?;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < READ_CHUNK {
            // Zeroed by the allocator rather than by writing, so pages are touched only when
            // read into (after a mapped file, often never).
            let mut buf = vec![0; READ_CHUNK];
            buf[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = buf;
        } else if self.end == self.buf.len() {
            // One record larger than the buffer: grow (the caller bounds record size).
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether input is waiting to be read, waiting up to `timeout` for it.
    pub fn ready(&self, timeout: Duration) -> bool {
        let Some(fd) = self.poll_fd else {
            return true;
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        // Interrupted by a signal (EINTR): not ready, so the caller looks at why.
        n > 0
    }
}

/// A searcher for a delimiter or key separator, built once. One byte (the usual case) is found
/// with memchr's AVX2 searcher when the CPU has it, called directly rather than through the
/// per-call dispatch of `memchr::memchr`; several bytes with a prebuilt `memmem` searcher.
pub(crate) enum Needle {
    #[cfg(target_arch = "x86_64")]
    Avx2(memchr::arch::x86_64::avx2::memchr::One),
    Byte(u8),
    Bytes(Box<memchr::memmem::Finder<'static>>),
}

impl Needle {
    pub(crate) fn new(needle: &[u8]) -> Needle {
        match needle {
            [b] => {
                #[cfg(target_arch = "x86_64")]
                if let Some(one) = memchr::arch::x86_64::avx2::memchr::One::new(*b) {
                    return Needle::Avx2(one);
                }
                Needle::Byte(*b)
            }
            _ => Needle::Bytes(Box::new(memchr::memmem::Finder::new(needle).into_owned())),
        }
    }

    /// Where the needle first occurs in `haystack`.
    #[inline]
    pub(crate) fn find(&self, haystack: &[u8]) -> Option<usize> {
        match self {
            #[cfg(target_arch = "x86_64")]
            Needle::Avx2(one) => one.find(haystack),
            Needle::Byte(b) => memchr::memchr(*b, haystack),
            Needle::Bytes(finder) => finder.find(haystack),
        }
    }
}

/// A regular file mapped read-only from its current position to its size at the time.
///
/// The bytes are read in place. A helper thread maps the pages ahead of the cursor into the
/// page table and gives back those behind it ([`Pager`]), so the cutting thread neither takes a
/// page fault per few pages nor pays for unmapping, and memory stays flat. If the file is
/// truncated while it is read, touching a page past its new end raises SIGBUS, as for any mapped
/// file: [`Mapping::available`] checks the size before each chunk is cut, which narrows that to
/// a truncation racing the cutting of one chunk (a crash at any moment leaves the logs valid,
/// and the exit status is then not 0).
struct Mapping {
    fd: RawFd,
    /// Start of the mapping (page-aligned) and its length.
    base: NonNull<u8>,
    map_len: usize,
    /// The data starts `skip` bytes into the mapping (the file position is not page-aligned).
    skip: usize,
    /// File offset of the start of the mapping.
    offset: u64,
    /// Bytes of data that may be cut: `map_len - skip`, less if the file shrank.
    usable: usize,
    /// The cursor and how much was given back, shared with the pager.
    state: Arc<PagerState>,
    pager: Option<Pager>,
}

impl Mapping {
    /// Maps the rest of the regular file open at `fd`, from its current position; `None` when
    /// there is nothing to map or mapping fails (the caller then reads the file).
    fn of(fd: RawFd) -> Option<Mapping> {
        // SAFETY: plain syscalls on a descriptor the caller keeps open; `stat` is written by
        // fstat before it is read.
        let (pos, size) = unsafe {
            let pos = libc::lseek(fd, 0, libc::SEEK_CUR);
            let mut stat: libc::stat = std::mem::zeroed();
            if pos < 0 || libc::fstat(fd, &mut stat) != 0 {
                return None;
            }
            (pos as u64, stat.st_size as u64)
        };
        if size <= pos || usize::try_from(size).is_err() {
            return None;
        }
        let page = page_size() as u64;
        let offset = pos - pos % page;
        let map_len = (size - offset) as usize;
        // SAFETY: a new private read-only mapping; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                fd,
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        let base = NonNull::new(ptr.cast()).expect("mmap does not return null on success");
        let skip = (pos - offset) as usize;
        let state = Arc::new(PagerState {
            consumed: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        Some(Mapping {
            fd,
            base,
            map_len,
            skip,
            offset,
            usable: map_len - skip,
            state: Arc::clone(&state),
            pager: Pager::start(base, map_len, state),
        })
    }

    /// The mapped data, from the file position the mapping started at.
    #[inline]
    fn bytes(&self) -> &[u8] {
        // SAFETY: `skip + usable <= map_len` bytes are mapped readable for as long as `self`
        // lives; pages given back read again from the file if touched. Bytes another process
        // writes to the file meanwhile may change under this slice; they are only copied out,
        // as with any mapped file.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(self.skip), self.usable) }
    }

    /// Data bytes that may be cut: the file's current size, if it shrank, bounds them.
    fn available(&mut self) -> usize {
        // SAFETY: fstat into a zeroed struct on an open descriptor.
        let size = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            (libc::fstat(self.fd, &mut stat) == 0).then_some(stat.st_size as u64)
        };
        if let Some(size) = size {
            let end = size.saturating_sub(self.offset + self.skip as u64);
            self.usable = self.usable.min(usize::try_from(end).unwrap_or(usize::MAX));
        }
        self.usable
    }

    /// Everything before data byte `pos` has been cut and copied out: its pages may go, and
    /// the pages after it will be needed. The pager gives them back; this thread does when the
    /// pager falls behind (starved of CPU, say), so memory stays bounded regardless.
    fn advance(&mut self, pos: usize) {
        let pos = self.skip + pos;
        self.state.consumed.store(pos, Ordering::Release);
        let upto = pos / page_size() * page_size();
        let behind = match &self.pager {
            Some(pager) => {
                pager.wake();
                MAX_BEHIND
            }
            None => RELEASE_CHUNK,
        };
        if upto >= self.state.released.load(Ordering::Acquire) + behind {
            // SAFETY: within the mapping, and nothing borrows that range any more.
            unsafe { release_upto(self.base.as_ptr() as usize, &self.state.released, upto) };
        }
    }

    /// Moves the descriptor's position to the end of the mapped data, where reading goes on.
    fn seek_to_end(&self) -> io::Result<()> {
        let end = self.offset + (self.skip + self.usable) as u64;
        // SAFETY: lseek on an open descriptor.
        if unsafe { libc::lseek(self.fd, end as libc::off_t, libc::SEEK_SET) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // The pager must be done with the range before it is unmapped (and maybe reused).
        drop(self.pager.take());
        // SAFETY: unmaps exactly the mapping made in `Mapping::of`; nothing borrows it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.map_len);
        }
    }
}

/// Gives back the pages before `upto` (an offset into the mapping at `base`, page-aligned)
/// that `released` does not count yet, and counts them: whichever thread moves `released`
/// releases that range, so no range is released twice. MADV_DONTNEED on a private read-only
/// file mapping only drops page table entries.
///
/// # Safety
/// `[0, upto)` lies within a live mapping that nothing borrows any more.
unsafe fn release_upto(base: usize, released: &AtomicUsize, upto: usize) {
    let from = released.fetch_max(upto, Ordering::AcqRel);
    if upto > from {
        libc::madvise(
            (base + from) as *mut libc::c_void,
            upto - from,
            libc::MADV_DONTNEED,
        );
    }
}

/// A helper thread that keeps the page table of a [`Mapping`] a few chunks ahead of the cursor
/// (so the cutting thread takes no page faults) and gives back the pages behind it.
struct Pager {
    shared: Arc<PagerState>,
    thread: Option<JoinHandle<()>>,
}

struct PagerState {
    /// Offset into the mapping before which everything was copied out.
    consumed: AtomicUsize,
    /// Offset into the mapping before which the pages were given back.
    released: AtomicUsize,
    stop: AtomicBool,
}

impl Pager {
    fn start(base: NonNull<u8>, map_len: usize, state: Arc<PagerState>) -> Option<Pager> {
        let shared = Arc::clone(&state);
        // The address crosses to the thread as a number: the mapping outlives the thread, which
        // `Mapping::drop` joins before unmapping.
        let base = base.as_ptr() as usize;
        let thread = std::thread::Builder::new()
            .name("spool-input".into())
            .spawn(move || page(base, map_len, &state))
            .ok()?;
        Some(Pager {
            shared,
            thread: Some(thread),
        })
    }

    fn wake(&self) {
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The pager's loop: populate up to `PAGE_AHEAD` bytes past the cursor, chunk by chunk, and
/// release what is more than `RELEASE_CHUNK` behind it; sleep when there is nothing to do.
fn page(base: usize, map_len: usize, state: &PagerState) {
    let page = page_size();
    let mut populated = 0usize;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let mut can_populate = true;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let can_populate = false;
    while !state.stop.load(Ordering::Acquire) {
        let consumed = state.consumed.load(Ordering::Acquire);
        let upto = consumed / page * page;
        if upto >= state.released.load(Ordering::Acquire) + RELEASE_CHUNK {
            // SAFETY: within the mapping (it outlives this thread), and everything before
            // `consumed` was copied out.
            unsafe { release_upto(base, &state.released, upto) };
        }
        populated = populated.max(upto);
        // Page-aligned, so that every populated range starts on a page.
        let target = map_len.min(consumed.saturating_add(PAGE_AHEAD).next_multiple_of(page));
        if !can_populate || populated >= target {
            std::thread::park();
            continue;
        }
        let to = target.min(populated + READ_CHUNK);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: populating page tables of a range within the mapping. A file truncated
            // meanwhile fails the call (no signal); the cutting thread then takes its own faults.
            let start = (base + populated) as *mut libc::c_void;
            if unsafe { libc::madvise(start, to - populated, libc::MADV_POPULATE_READ) } != 0 {
                can_populate = false;
            }
        }
        populated = to;
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|p| *p > 0)
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8], delimiter: &[u8]) -> Vec<Vec<u8>> {
        drain(Input::new(
            Box::new(io::Cursor::new(input.to_vec())),
            None,
            delimiter,
            None,
        ))
    }

    fn drain(mut inp: Input) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            while let Some(r) = inp.next_record() {
                out.push(r.to_vec());
            }
            if !inp.read_more().unwrap() {
                while let Some(r) = inp.next_record() {
                    out.push(r.to_vec());
                }
                return out;
            }
        }
    }

    /// Lines of many lengths, one longer than two read chunks, with no final delimiter.
    fn varied(delimiter: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..40_000usize {
            let len = if i == 20_000 {
                READ_CHUNK * 2 + 17
            } else {
                i * 7 % 300
            };
            data.extend((0..len).map(|j| b'a' + ((i + j) % 26) as u8));
            data.extend_from_slice(delimiter);
        }
        data.extend_from_slice(b"unterminated");
        data
    }

    #[test]
    fn a_mapped_file_is_cut_as_a_read_one() {
        for delimiter in [&b"\n"[..], b"||"] {
            let data = varied(delimiter);
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &data).unwrap();
            let input = Input::file(file.path(), delimiter).unwrap();
            assert!(input.map.is_some(), "a regular file is mapped");
            assert_eq!(input.len, Some(data.len() as u64));
            assert_eq!(drain(input), records(&data, delimiter));
        }
    }

    #[test]
    fn a_mapping_starts_at_the_file_position_and_leaves_it_at_the_end() {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = tempfile::tempfile().unwrap();
        let data = varied(b"\n");
        file.write_all(&data).unwrap();
        // Not page-aligned, as stdin left by a `read` before spool runs.
        file.seek(SeekFrom::Start(5_000)).unwrap();
        let mut position = file.try_clone().unwrap();
        let fd = file.as_raw_fd();
        let input = Input::regular(Box::new(file), fd, b"\n", None);
        assert!(input.map.is_some());
        assert_eq!(drain(input), records(&data[5_000..], b"\n"));
        assert_eq!(position.stream_position().unwrap(), data.len() as u64);
    }

    #[test]
    fn bytes_appended_after_mapping_are_read_too() {
        use std::io::Write;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"a\nb").unwrap();
        let input = Input::file(file.path(), b"\n").unwrap();
        assert!(input.map.is_some());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(file.path())
            .unwrap();
        f.write_all(b"c\nd\n").unwrap();
        assert_eq!(
            drain(input),
            vec![b"a".to_vec(), b"bc".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn a_file_shrinking_under_its_mapping_ends_where_it_now_ends() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), varied(b"\n")).unwrap();
        let input = Input::file(file.path(), b"\n").unwrap();
        assert!(input.map.is_some());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(file.path())
            .unwrap();
        f.set_len(5).unwrap();
        // The first line is empty, the second `bcdefg...`: cut at the new end.
        assert_eq!(drain(input), vec![b"".to_vec(), b"bcde".to_vec()]);
    }

    /// Records and their key separators as `next_line` gives them, reading more as needed.
    fn drain_lines(mut inp: Input, separator: u8) -> Vec<(Vec<u8>, Option<usize>)> {
        let scanner = inp
            .line_scanner(&[separator])
            .expect("single distinct bytes");
        let mut out = Vec::new();
        loop {
            while let Some((r, at)) = inp.next_line(&scanner) {
                out.push((r.to_vec(), at));
            }
            if !inp.read_more().unwrap() {
                while let Some((r, at)) = inp.next_line(&scanner) {
                    out.push((r.to_vec(), at));
                }
                return out;
            }
        }
    }

    #[test]
    fn lines_cut_with_their_keys_are_the_records_cut_alone() {
        // Keys of many lengths (some lines without one, some with several separators), lines
        // crossing read chunks, one longer than two chunks, and no final delimiter.
        let mut data = varied(b"\n");
        for (i, b) in data.iter_mut().enumerate() {
            if *b != b'\n' && i % 37 == 0 {
                *b = b':';
            }
        }
        let expected: Vec<(Vec<u8>, Option<usize>)> = records(&data, b"\n")
            .into_iter()
            .map(|r| {
                let at = memchr::memchr(b':', &r);
                (r, at)
            })
            .collect();
        let read = Input::new(Box::new(io::Cursor::new(data.clone())), None, b"\n", None);
        assert_eq!(drain_lines(read, b':'), expected);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &data).unwrap();
        let mapped = Input::file(file.path(), b"\n").unwrap();
        assert!(mapped.map.is_some());
        assert_eq!(drain_lines(mapped, b':'), expected);
    }

    #[test]
    fn lines_and_keys_are_cut_in_one_pass_only_for_single_distinct_bytes() {
        let input = |delimiter: &[u8]| Input::new(Box::new(io::empty()), None, delimiter, None);
        assert!(input(b"\n").line_scanner(b":").is_some());
        assert!(input(b"\n").line_scanner(b"\n").is_none());
        assert!(input(b"\n").line_scanner(b"::").is_none());
        assert!(input(b"||").line_scanner(b":").is_none());
    }

    #[test]
    fn cuts_at_delimiters_and_keeps_an_unterminated_last_record() {
        assert_eq!(
            records(b"a\nb\n\nc", b"\n"),
            vec![b"a".to_vec(), b"b".to_vec(), vec![], b"c".to_vec()]
        );
        assert_eq!(records(b"a\n", b"\n"), vec![b"a".to_vec()]);
        assert_eq!(
            records(b"x||y||", b"||"),
            vec![b"x".to_vec(), b"y".to_vec()]
        );
        assert_eq!(
            records(b"\xff\x00\n\x01", b"\x00"),
            vec![b"\xff".to_vec(), b"\n\x01".to_vec()]
        );
        assert!(records(b"", b"\n").is_empty());
    }

    #[test]
    fn records_larger_than_the_buffer_survive() {
        let big = vec![b'x'; READ_CHUNK * 3 + 5];
        let mut input = big.clone();
        input.push(b'\n');
        input.extend_from_slice(b"tail");
        assert_eq!(records(&input, b"\n"), vec![big, b"tail".to_vec()]);
    }
}
