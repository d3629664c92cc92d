//! Appending to an output buffer whose room the caller reserved once for a whole record: each
//! piece is stored with no capacity check of its own, and short pieces (the usual key, a
//! separator) with a few moves instead of a call to `memcpy`.

use super::line_heads::Rendered;

/// Appends `bytes`.
///
/// # Safety
/// `out` must have room for `bytes.len()` more bytes.
#[inline(always)]
pub(super) unsafe fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = out.len();
    debug_assert!(out.capacity() - len >= bytes.len());
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().add(len), bytes.len());
    out.set_len(len + bytes.len());
}

/// Appends `bytes`, which are usually short: up to 16 bytes take two overlapping loads and
/// stores.
///
/// # Safety
/// `out` must have room for `bytes.len()` more bytes.
#[inline(always)]
pub(super) unsafe fn put_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = out.len();
    let n = bytes.len();
    debug_assert!(out.capacity() - len >= n);
    let (src, dst) = (bytes.as_ptr(), out.as_mut_ptr().add(len));
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
    out.set_len(len + n);
}

/// Appends a template's literal, usually one byte (a space, a newline).
///
/// # Safety
/// `out` must have room for `bytes.len()` more bytes.
#[inline(always)]
pub(super) unsafe fn put_literal(out: &mut Vec<u8>, bytes: &[u8]) {
    if let [byte] = *bytes {
        let len = out.len();
        debug_assert!(out.capacity() > len);
        *out.as_mut_ptr().add(len) = byte;
        out.set_len(len + 1);
    } else {
        put_short(out, bytes);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pieces_of_every_length() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).collect();
            let mut out = b"x".to_vec();
            out.reserve(n.into());
            // SAFETY: reserved above.
            unsafe { put_short(&mut out, &bytes) };
            assert_eq!(out[0], b'x');
            assert_eq!(out[1..], bytes[..]);
        }
    }
}
