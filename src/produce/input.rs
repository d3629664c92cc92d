//! Reading producer input: a byte stream cut into records at a delimiter.
//!
//! Input is read in large chunks into one reusable buffer and cut with `memchr`/`memmem`, so
//! there is no syscall and no allocation per record. A final record without a delimiter is a
//! record. For a pipe or terminal, [`Input::ready`] asks the kernel whether more bytes are
//! waiting, which is how the producer knows to send what it has instead of waiting for more.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::Duration;

const READ_CHUNK: usize = 1 << 20;

/// A source of delimited records.
pub struct Input {
    reader: Box<dyn Read>,
    /// The descriptor to poll for readiness; `None` for regular files, which are always ready.
    poll_fd: Option<RawFd>,
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    /// Unconsumed data is `buf[start..end]`.
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
        let is_file = borrowed.metadata().map(|m| m.is_file()).unwrap_or(false);
        Input::new(Box::new(stdin), (!is_file).then_some(fd), delimiter, None)
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
        let len = meta.is_file().then_some(meta.len());
        let poll_fd = (!meta.is_file()).then_some(file.as_raw_fd());
        Ok(Input::new(Box::new(file), poll_fd, delimiter, len))
    }

    /// Any reader (for tests and embedding); never polled.
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
            delimiter: delimiter.to_vec(),
            buf: vec![0; READ_CHUNK],
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

    /// The next complete record in the buffer, without its delimiter; at end of input, the
    /// unterminated rest. `None` when more input must be read first (or none is left).
    pub fn next_record(&mut self) -> Option<&[u8]> {
        let data = &self.buf[self.start..self.end];
        let found = if self.delimiter.len() == 1 {
            memchr::memchr(self.delimiter[0], data)
        } else {
            memchr::memmem::find(data, &self.delimiter)
        };
        match found {
            Some(i) => {
                let record = self.start..self.start + i;
                self.start += i + self.delimiter.len();
                Some(&self.buf[record])
            }
            None if self.eof && self.start < self.end => {
                let record = self.start..self.end;
                self.start = self.end;
                Some(&self.buf[record])
            }
            None => None,
        }
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
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
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
        n != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8], delimiter: &[u8]) -> Vec<Vec<u8>> {
        let mut inp = Input::new(
            Box::new(io::Cursor::new(input.to_vec())),
            None,
            delimiter,
            None,
        );
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
