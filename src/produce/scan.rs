//! Cutting a line and finding its key separator in one pass.
//!
//! `spool produce -K :` needs, for every line, where it ends (the delimiter) and where its key
//! ends (the first separator before that). Two searches (one for the delimiter, one for the
//! separator in the line found) each pay a call and a set-up for a haystack of about a hundred
//! bytes; one pass looks at every block of 16 bytes for both bytes at once, and only for the
//! delimiter once the separator was found. Used when both are single bytes (the usual `\n` and
//! `:`) and differ; [`find_both_plain`] is the same answer from two plain searches, which the
//! tests compare it with.

/// A one-pass searcher for a line delimiter and a key separator, both single bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineScanner {
    delimiter: u8,
    separator: u8,
}

/// Where a line ends and where its key ends, in a haystack that starts with the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// The first separator before `delimiter` (before the end of the haystack when there is no
    /// delimiter).
    pub separator: Option<usize>,
    /// The first delimiter.
    pub delimiter: Option<usize>,
}

impl LineScanner {
    /// `None` when the two bytes are the same (a separator can then never be inside a line,
    /// which the plain searches handle).
    pub(crate) fn new(delimiter: u8, separator: u8) -> Option<LineScanner> {
        (delimiter != separator).then_some(LineScanner {
            delimiter,
            separator,
        })
    }

    pub(crate) fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The first delimiter in `haystack`, and the first separator before it.
    #[inline]
    pub(crate) fn find(&self, haystack: &[u8]) -> Found {
        #[cfg(target_arch = "x86_64")]
        {
            // SSE2 is part of x86_64: always there.
            sse2::find(self.delimiter, self.separator, haystack)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            find_both_plain(self.delimiter, self.separator, haystack)
        }
    }
}

/// The answer of [`LineScanner::find`] from two plain searches: the delimiter, then the
/// separator in what comes before it.
pub(crate) fn find_both_plain(delimiter: u8, separator: u8, haystack: &[u8]) -> Found {
    let delimiter_at = memchr::memchr(delimiter, haystack);
    let line = &haystack[..delimiter_at.unwrap_or(haystack.len())];
    Found {
        separator: memchr::memchr(separator, line),
        delimiter: delimiter_at,
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };

    use super::Found;

    const BLOCK: usize = 16;

    /// The 16 bytes at `at`.
    ///
    /// # Safety
    /// `at + 16 <= haystack.len()`.
    #[inline(always)]
    unsafe fn block(haystack: &[u8], at: usize) -> __m128i {
        debug_assert!(at + BLOCK <= haystack.len());
        _mm_loadu_si128(haystack.as_ptr().add(at).cast())
    }

    #[inline(always)]
    fn mask(eq: __m128i) -> u32 {
        // SAFETY: SSE2 is baseline on x86_64.
        unsafe { _mm_movemask_epi8(eq) as u32 }
    }

    #[inline]
    pub(super) fn find(delimiter: u8, separator: u8, haystack: &[u8]) -> Found {
        let len = haystack.len();
        if len < BLOCK {
            return super::find_both_plain(delimiter, separator, haystack);
        }
        // The last block of a haystack that is not a multiple of 16 bytes starts at
        // `len - 16`, overlapping bytes already looked at. Those hold neither byte (phase
        // one) or no delimiter (phase two), so their bits need no masking.
        let last = len - BLOCK;
        // SAFETY: SSE2 is baseline on x86_64; every load is of 16 bytes at `at <= last`.
        unsafe {
            let d = _mm_set1_epi8(delimiter as i8);
            let s = _mm_set1_epi8(separator as i8);
            // Phase one: the first of either byte.
            let mut at = 0;
            let (first, v) = loop {
                let v = block(haystack, at);
                let either = mask(_mm_or_si128(_mm_cmpeq_epi8(v, d), _mm_cmpeq_epi8(v, s)));
                if either != 0 {
                    break (at + either.trailing_zeros() as usize, v);
                }
                if at == last {
                    return Found {
                        separator: None,
                        delimiter: None,
                    };
                }
                at = (at + BLOCK).min(last);
            };
            if haystack[first] == delimiter {
                return Found {
                    separator: None,
                    delimiter: Some(first),
                };
            }
            // Phase two: the delimiter after the separator, first in the same block (where
            // none comes before the separator), then 32 bytes at a time (a value is most of a
            // line), then what is left.
            let found = |delimiter: Option<usize>| Found {
                separator: Some(first),
                delimiter,
            };
            let dm = mask(_mm_cmpeq_epi8(v, d));
            if dm != 0 {
                return found(Some(at + dm.trailing_zeros() as usize));
            }
            while at + 3 * BLOCK <= len {
                let dm = mask(_mm_cmpeq_epi8(block(haystack, at + BLOCK), d))
                    | mask(_mm_cmpeq_epi8(block(haystack, at + 2 * BLOCK), d)) << BLOCK;
                if dm != 0 {
                    return found(Some(at + BLOCK + dm.trailing_zeros() as usize));
                }
                at += 2 * BLOCK;
            }
            while at < last {
                at = (at + BLOCK).min(last);
                let dm = mask(_mm_cmpeq_epi8(block(haystack, at), d));
                if dm != 0 {
                    return found(Some(at + dm.trailing_zeros() as usize));
                }
            }
            found(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn both(haystack: &[u8]) -> (Found, Found) {
        let scanner = LineScanner::new(b'\n', b':').unwrap();
        (
            scanner.find(haystack),
            find_both_plain(b'\n', b':', haystack),
        )
    }

    #[test]
    fn finds_the_separator_before_the_delimiter_only() {
        let (fast, plain) = both(b"user-000001:value of the record, long enough\nnext:line\n");
        assert_eq!(fast, plain);
        assert_eq!(
            fast,
            Found {
                separator: Some(11),
                delimiter: Some(44)
            }
        );
        // A separator after the delimiter belongs to the next line.
        let (fast, plain) = both(b"a line without any key at all....\nkey:value\n");
        assert_eq!(fast, plain);
        assert_eq!(fast.separator, None);
        // Neither, or only one, in short and long haystacks; at the very start and end.
        for h in [
            &b""[..],
            b":",
            b"\n",
            b":\n",
            b"\n:",
            b"0123456789abcdef:",
            b"0123456789abcdef\n",
            b"0123456789abcde:\n",
            b"0123456789abcdefghijklmnopqrstu:",
            b"0123456789abcdefghijklmnopqrstuv",
        ] {
            let (fast, plain) = both(h);
            assert_eq!(fast, plain, "{:?}", String::from_utf8_lossy(h));
        }
    }

    #[test]
    fn the_same_bytes_are_left_to_the_plain_searches() {
        assert!(LineScanner::new(b'\n', b'\n').is_none());
    }

    proptest! {
        /// Haystacks of every length up to a few blocks, mostly of the two bytes searched
        /// for and one other, so that every position of each is tried.
        #[test]
        fn agrees_with_two_plain_searches(
            haystack in proptest::collection::vec(
                prop_oneof![3 => Just(b'x'), 1 => Just(b':'), 1 => Just(b'\n'), 1 => any::<u8>()],
                0..80,
            ),
            start in 0usize..20,
        ) {
            let start = start.min(haystack.len());
            let (fast, plain) = both(&haystack[start..]);
            prop_assert_eq!(fast, plain);
        }

        /// Lines of the bench's shape: a key, sometimes a separator, a value, a delimiter.
        #[test]
        fn agrees_on_keyed_lines(
            key in proptest::collection::vec(b'a'..=b'z', 0..40),
            sep in any::<bool>(),
            value in proptest::collection::vec(prop_oneof![9 => b'a'..=b'z', 1 => Just(b':')], 0..200),
            end in any::<bool>(),
        ) {
            let mut line = key;
            if sep {
                line.push(b':');
            }
            line.extend_from_slice(&value);
            if end {
                line.push(b'\n');
                line.extend_from_slice(b"next:line\n");
            }
            let (fast, plain) = both(&line);
            prop_assert_eq!(fast, plain);
        }
    }
}
