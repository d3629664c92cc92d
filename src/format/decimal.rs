//! Decimal integers written straight into an output buffer.
//!
//! Offsets, partitions, lengths and timestamps are printed for every record, so this avoids the
//! `fmt` machinery and never allocates.

/// Appends `n` in base 10, with a leading `-` when negative.
#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    // Partition numbers, mostly.
    if (0..10).contains(&n) {
        out.push(b'0' + n as u8);
        return;
    }
    write_long(out, n);
}

fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let start = write_digits(&mut digits, n.unsigned_abs());
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
}

/// Writes the decimal digits of `n` at the end of `digits` and returns where they start.
#[inline]
pub(crate) fn write_digits(digits: &mut [u8; 20], n: u64) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    // u64::MAX has 20 decimal digits.
    let mut start = digits.len();
    let mut rest = n;
    // Four digits per 64-bit division, then two pairs from the remainder (a 32-bit one).
    while rest >= 10_000 {
        let four = (rest % 10_000) as u32;
        rest /= 10_000;
        let (high, low) = ((four / 100) as usize * 2, (four % 100) as usize * 2);
        start -= 4;
        digits[start..start + 2].copy_from_slice(&PAIRS[high..high + 2]);
        digits[start + 2..start + 4].copy_from_slice(&PAIRS[low..low + 2]);
    }
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        digits[start] = b'0' + rest as u8;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::write_i64;
    use proptest::prelude::*;

    fn written(n: i64) -> String {
        let mut out = Vec::new();
        write_i64(&mut out, n);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn edge_values() {
        assert_eq!(written(0), "0");
        assert_eq!(written(-1), "-1");
        assert_eq!(written(10), "10");
        assert_eq!(written(i64::MAX), i64::MAX.to_string());
        assert_eq!(written(i64::MIN), i64::MIN.to_string());
        for n in [9, 99, 100, 999_999, 1_000_000, -10, -100_000] {
            assert_eq!(written(n), n.to_string());
        }
        let mut out = b"x".to_vec();
        write_i64(&mut out, 42);
        write_i64(&mut out, -7);
        write_i64(&mut out, 7);
        assert_eq!(out, b"x42-77", "appended after what was there");
    }

    proptest! {
        #[test]
        fn matches_std(n: i64) {
            prop_assert_eq!(written(n), n.to_string());
        }
    }
}
