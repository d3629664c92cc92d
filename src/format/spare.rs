//! Appending to an output buffer whose room the caller reserved once for a whole record: each
//! piece is stored with no capacity check of its own, and short pieces (the usual key, a
//! separator) with a few moves instead of a call to `memcpy`.

use super::line_heads::Rendered;

/// Appends a line start.
///
/// # Safety
/// `out` must have room for `head.len() + 15` more bytes (see [`Rendered::copy_to`]).
#[inline(always)]
pub(super) unsafe fn put_head(out: &mut Vec<u8>, head: Rendered<'_>) {
    let len = out.len();
    debug_assert!(out.capacity() - len >= head.len() + 15);
    let n = head.copy_to(out.as_mut_ptr().add(len));
    out.set_len(len + n);
}

/// A write position in room reserved at the end of an output buffer: pieces are stored one
/// after the other through a pointer kept in a register, and the buffer's length is set once
/// at the end ([`Cursor::finish`]).
pub(super) struct Cursor<'a> {
    out: &'a mut Vec<u8>,
    start: *mut u8,
    at: *mut u8,
}

impl<'a> Cursor<'a> {
    /// Reserves `room` bytes at the end of `out` and starts there.
    #[inline(always)]
    pub(super) fn new(out: &'a mut Vec<u8>, room: usize) -> Cursor<'a> {
        out.reserve(room);
        // SAFETY: `len` is within the allocation (at its end at most).
        let start = unsafe { out.as_mut_ptr().add(out.len()) };
        Cursor {
            out,
            start,
            at: start,
        }
    }

    /// Appends `bytes` (with a call to `memcpy`).
    ///
    /// # Safety
    /// The room reserved must hold `bytes` after what was written before.
    #[inline(always)]
    pub(super) unsafe fn put(&mut self, bytes: &[u8]) {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at, bytes.len());
        self.at = self.at.add(bytes.len());
    }

    /// Appends `bytes`, usually short: as [`write_short`].
    ///
    /// # Safety
    /// As [`Cursor::put`].
    #[inline(always)]
    pub(super) unsafe fn put_short(&mut self, bytes: &[u8]) {
        write_short(self.at, bytes);
        self.at = self.at.add(bytes.len());
    }

    /// Appends a template's literal, usually one byte.
    ///
    /// # Safety
    /// As [`Cursor::put`].
    #[inline(always)]
    pub(super) unsafe fn put_literal(&mut self, bytes: &[u8]) {
        if let [byte] = *bytes {
            *self.at = byte;
            self.at = self.at.add(1);
        } else {
            self.put_short(bytes);
        }
    }

    /// Appends `key`, `separator`, `value` and `end`: the body of a `-K` line.
    ///
    /// # Safety
    /// As [`Cursor::put`], for the four of them.
    #[inline(always)]
    pub(super) unsafe fn put_key_value(
        &mut self,
        key: &[u8],
        separator: &[u8],
        value: &[u8],
        end: &[u8],
    ) {
        self.put_short(key);
        self.put_literal(separator);
        self.put(value);
        self.put_literal(end);
    }

    /// Appends a line start.
    ///
    /// # Safety
    /// The room reserved must hold the line start and 15 bytes more after what was written
    /// before.
    #[inline(always)]
    pub(super) unsafe fn put_head(&mut self, head: Rendered<'_>) {
        self.at = self.at.add(head.copy_to(self.at));
    }

    /// Appends what `write` stores at the position it is given, and returns its count of
    /// bytes written.
    ///
    /// # Safety
    /// As [`Cursor::put`], for what `write` stores.
    #[inline(always)]
    pub(super) unsafe fn put_with(&mut self, write: impl FnOnce(*mut u8) -> usize) -> usize {
        let written = write(self.at);
        self.at = self.at.add(written);
        written
    }

    /// Makes what was written part of the buffer, and gives the buffer back.
    #[inline(always)]
    pub(super) fn finish(self) -> &'a mut Vec<u8> {
        // SAFETY: every byte from the old length to `at` was written, within the room.
        unsafe {
            let written = self.at.offset_from(self.start) as usize;
            let len = self.out.len() + written;
            debug_assert!(len <= self.out.capacity());
            self.out.set_len(len);
        }
        self.out
    }
}

/// Stores `bytes` at `dst`: up to 16 bytes with two overlapping loads and stores.
///
/// # Safety
/// `dst` must be valid for writes of `bytes.len()` bytes.
#[inline(always)]
unsafe fn write_short(dst: *mut u8, bytes: &[u8]) {
    let n = bytes.len();
    let src = bytes.as_ptr();
    if n >= 8 {
        if n > 16 {
            std::ptr::copy_nonoverlapping(src, dst, n);
        } else {
            let last = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>()
                .write_unaligned(src.cast::<u64>().read_unaligned());
            dst.add(n - 8).cast::<u64>().write_unaligned(last);
        }
    } else if n >= 4 {
        let last = src.add(n - 4).cast::<u32>().read_unaligned();
        dst.cast::<u32>()
            .write_unaligned(src.cast::<u32>().read_unaligned());
        dst.add(n - 4).cast::<u32>().write_unaligned(last);
    } else if n > 0 {
        // 1 to 3 bytes: the first, the middle and the last cover them.
        *dst = *src;
        *dst.add(n / 2) = *src.add(n / 2);
        *dst.add(n - 1) = *src.add(n - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pieces_of_every_length() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).collect();
            let mut out = b"x".to_vec();
            let mut cursor = Cursor::new(&mut out, n.into());
            // SAFETY: reserved by Cursor::new.
            unsafe { cursor.put_short(&bytes) };
            cursor.finish();
            assert_eq!(out[0], b'x');
            assert_eq!(out[1..], bytes[..]);
        }
    }
}
