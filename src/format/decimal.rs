//! Decimal integers written straight into an output buffer.
//!
//! Offsets, partitions, lengths and timestamps are printed for every record, so this avoids the
//! `fmt` machinery and never allocates.

/// Appends `n` in base 10, with a leading `-` when negative.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    // u64::MAX has 20 decimal digits; the sign is pushed separately.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
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
    }

    proptest! {
        #[test]
        fn matches_std(n: i64) {
            prop_assert_eq!(written(n), n.to_string());
        }
    }
}
