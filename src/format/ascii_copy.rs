//! Copying text into a JSON string while checking that it needs no escape, in one pass.
//!
//! The usual key or value is plain ASCII with no `"`, `\` or control character: its bytes go
//! into the output as they are. Checking a block and storing it in the same step reads the
//! text once (a check pass, then a copy pass, read it twice).

/// Copies the leading bytes of `text` that need nothing done to them to `dst` and returns how
/// many: `text.len()` when all of `text` is plain ASCII (printable, or DEL) without `"` or
/// `\`, else a count of bytes before the first one that is not (possibly fewer than all of
/// them: the rest is for the escaping writer, which starts over from there).
///
/// With `AVX2`, text of 32 bytes or more goes 32 bytes a step.
///
/// # Safety
/// `dst` must be valid for writes of `text.len()` bytes; with `AVX2`, the CPU must have AVX2
/// (and the caller be compiled for it, for the instructions to be inlined).
#[inline(always)]
pub(super) unsafe fn copy_plain<const AVX2: bool>(dst: *mut u8, text: &[u8]) -> usize {
    let n = text.len();
    let src = text.as_ptr();
    #[cfg(target_arch = "x86_64")]
    if AVX2 && n >= 32 {
        return copy_plain_avx2(dst, text);
    }
    if n >= 16 {
        return copy_plain_blocks(dst, text);
    }
    if n >= 8 {
        // Two words that overlap cover 8 to 16 bytes.
        let first = src.cast::<u64>().read_unaligned();
        let last = src.add(n - 8).cast::<u64>().read_unaligned();
        if special_bytes(first) | special_bytes(last) != 0 {
            return 0;
        }
        dst.cast::<u64>().write_unaligned(first);
        dst.add(n - 8).cast::<u64>().write_unaligned(last);
        return n;
    }
    if n >= 4 {
        let first = src.cast::<u32>().read_unaligned();
        let last = src.add(n - 4).cast::<u32>().read_unaligned();
        if special_bytes(u64::from(first) | u64::from(last) << 32) != 0 {
            return 0;
        }
        dst.cast::<u32>().write_unaligned(first);
        dst.add(n - 4).cast::<u32>().write_unaligned(last);
        return n;
    }
    for (at, &b) in text.iter().enumerate() {
        if is_special(b) {
            return at;
        }
        *dst.add(at) = b;
    }
    n
}

/// Whether JSON needs `b` escaped, or it is not ASCII (and so may not be UTF-8).
#[inline(always)]
pub(super) fn is_special(b: u8) -> bool {
    !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\'
}

/// Nonzero when one of the eight bytes of `word` [`is_special`] (the classic tests for a byte
/// below a value and for a zero byte, which say whether there is one exactly, not which).
#[inline(always)]
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let not_ascii = word & HIGH;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    not_ascii
        | control
        | zero_byte(word ^ (ONES * u64::from(b'"')))
        | zero_byte(word ^ (ONES * u64::from(b'\\')))
}

/// [`copy_plain`] of 16 bytes or more: 16-byte blocks (SSE2, which every x86-64 CPU has), the
/// last one overlapping the one before so that no byte is left for a loop.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn copy_plain_blocks(dst: *mut u8, text: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_storeu_si128,
    };
    let n = text.len();
    let src = text.as_ptr();
    // 0xff in each byte that is special. Signed: bytes from 0x80 on are negative, so below
    // 0x20 too.
    let special = |v: __m128i| {
        let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        _mm_or_si128(low, _mm_or_si128(quote, backslash))
    };
    let mut at = 0;
    // Two blocks a step, one test for both.
    while at + 32 <= n {
        let a = _mm_loadu_si128(src.add(at).cast::<__m128i>());
        let b = _mm_loadu_si128(src.add(at + 16).cast::<__m128i>());
        if _mm_movemask_epi8(_mm_or_si128(special(a), special(b))) != 0 {
            return at;
        }
        _mm_storeu_si128(dst.add(at).cast::<__m128i>(), a);
        _mm_storeu_si128(dst.add(at + 16).cast::<__m128i>(), b);
        at += 32;
    }
    if at + 16 <= n {
        let v = _mm_loadu_si128(src.add(at).cast::<__m128i>());
        if _mm_movemask_epi8(special(v)) != 0 {
            return at;
        }
        _mm_storeu_si128(dst.add(at).cast::<__m128i>(), v);
        at += 16;
    }
    if at < n {
        let v = _mm_loadu_si128(src.add(n - 16).cast::<__m128i>());
        if _mm_movemask_epi8(special(v)) != 0 {
            return at;
        }
        _mm_storeu_si128(dst.add(n - 16).cast::<__m128i>(), v);
    }
    n
}

/// [`copy_plain`] of 32 bytes or more with AVX2: 32-byte blocks, the last one overlapping the
/// one before.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn copy_plain_avx2(dst: *mut u8, text: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_storeu_si256,
    };
    let n = text.len();
    let src = text.as_ptr();
    // Nonzero when a byte is special: below 0x20 (signed, so 0x80 and up too), `"` or `\`.
    let special = |v: __m256i| {
        let low = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v);
        let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
        let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
        _mm256_movemask_epi8(_mm256_or_si256(low, _mm256_or_si256(quote, backslash)))
    };
    let mut at = 0;
    while at + 32 <= n {
        let v = _mm256_loadu_si256(src.add(at).cast::<__m256i>());
        if special(v) != 0 {
            return at;
        }
        _mm256_storeu_si256(dst.add(at).cast::<__m256i>(), v);
        at += 32;
    }
    if at < n {
        let v = _mm256_loadu_si256(src.add(n - 32).cast::<__m256i>());
        if special(v) != 0 {
            return at;
        }
        _mm256_storeu_si256(dst.add(n - 32).cast::<__m256i>(), v);
    }
    n
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn copy_plain_blocks(dst: *mut u8, text: &[u8]) -> usize {
    let n = text.len();
    let src = text.as_ptr();
    let mut at = 0;
    while at + 8 <= n {
        let word = src.add(at).cast::<u64>().read_unaligned();
        if special_bytes(word) != 0 {
            return at;
        }
        dst.add(at).cast::<u64>().write_unaligned(word);
        at += 8;
    }
    if at < n {
        let word = src.add(n - 8).cast::<u64>().read_unaligned();
        if special_bytes(word) != 0 {
            return at;
        }
        dst.add(n - 8).cast::<u64>().write_unaligned(word);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `copy_plain` into a fresh buffer: the count, and the bytes it wrote.
    fn copied(text: &[u8]) -> (usize, Vec<u8>) {
        let mut out = vec![0xaa; text.len()];
        // SAFETY: `out` holds text.len() bytes.
        let n = unsafe { copy_plain::<false>(out.as_mut_ptr(), text) };
        (n, out)
    }

    /// The same with AVX2, where the CPU has it.
    fn copied_avx2(text: &[u8]) -> Option<(usize, Vec<u8>)> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            unsafe fn copy(dst: *mut u8, text: &[u8]) -> usize {
                copy_plain::<true>(dst, text)
            }
            let mut out = vec![0xaa; text.len()];
            // SAFETY: `out` holds text.len() bytes; the CPU has AVX2.
            let n = unsafe { copy(out.as_mut_ptr(), text) };
            return Some((n, out));
        }
        None
    }

    fn check(text: &[u8]) {
        if let Some((n, out)) = copied_avx2(text) {
            assert!(n == text.len() || n <= text.iter().position(|&b| is_special(b)).unwrap());
            assert_eq!(out[..n], text[..n]);
            assert_eq!(n == text.len(), copied(text).0 == text.len(), "{text:?}");
        }
        let (n, out) = copied(text);
        let first_special = text.iter().position(|&b| is_special(b));
        match first_special {
            None => assert_eq!(n, text.len(), "{text:?}"),
            Some(at) => assert!(n <= at, "{n} past the special byte at {at}: {text:?}"),
        }
        assert_eq!(out[..n], text[..n], "{text:?}");
    }

    #[test]
    fn every_special_byte_at_every_position() {
        for len in 0..=70 {
            let plain = vec![b'a'; len];
            check(&plain);
            for at in 0..len {
                for special in [0x00, 0x1f, b'"', b'\\', 0x80, 0xc3, 0xff] {
                    let mut text = plain.clone();
                    text[at] = special;
                    check(&text);
                }
                for fine in [0x20, 0x7f, b'!', b'#', b'[', b']', b'~'] {
                    let mut text = plain.clone();
                    text[at] = fine;
                    let (n, _) = copied(&text);
                    assert_eq!(n, len, "{text:?}");
                    if let Some((n, _)) = copied_avx2(&text) {
                        assert_eq!(n, len, "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn words_agree_with_the_byte_test() {
        for b in 0..=255u8 {
            for filler in [b'a', 0x20, 0x7f, b'#'] {
                for at in 0..8 {
                    let mut bytes = [filler; 8];
                    bytes[at] = b;
                    let found = special_bytes(u64::from_ne_bytes(bytes)) != 0;
                    assert_eq!(found, is_special(b), "{b:#x} at {at} among {filler:#x}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn never_copies_past_a_special_byte(
            text in proptest::collection::vec(
                prop_oneof![8 => 0x20..0x7fu8, 1 => any::<u8>()], 0..100,
            )
        ) {
            check(&text);
        }
    }
}
