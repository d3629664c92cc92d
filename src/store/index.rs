//! Kafka's sparse indexes beside each segment.
//!
//! `.index`: 8-byte entries (offset relative to the segment's base i32, byte position i32), one
//! added when more than `index.interval.bytes` (4096) were appended since the last one, naming
//! the *last* offset of the batch that starts at that position (as Kafka's `LogSegment.append`).
//! `.timeindex`: 12-byte entries (timestamp i64, relative offset i32) holding the largest
//! timestamp seen so far in the segment, added with each offset index entry when it grew.
//!
//! Lookups are binary searches with positioned reads, so seeking costs a few syscalls however
//! large the segment is. Entries are only trusted as hints: callers validate the batch found at
//! a position and fall back to the segment start when an index is damaged.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const OFFSET_ENTRY_LEN: u64 = 8;
pub const TIME_ENTRY_LEN: u64 = 12;
/// Kafka's `index.interval.bytes` default.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;

/// One `.index` entry with its offset made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: i64,
    pub position: u32,
}

/// One `.timeindex` entry with its offset made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub offset: i64,
}

pub fn encode_offset_entry(base: i64, entry: OffsetEntry) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&((entry.offset - base) as i32).to_be_bytes());
    b[4..].copy_from_slice(&entry.position.to_be_bytes());
    b
}

pub fn encode_time_entry(base: i64, entry: TimeEntry) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&entry.timestamp.to_be_bytes());
    b[8..].copy_from_slice(&((entry.offset - base) as i32).to_be_bytes());
    b
}

fn decode_offset_entry(base: i64, b: &[u8]) -> OffsetEntry {
    OffsetEntry {
        offset: base + i64::from(i32::from_be_bytes(b[..4].try_into().expect("4 bytes"))),
        position: u32::from_be_bytes(b[4..8].try_into().expect("4 bytes")),
    }
}

fn decode_time_entry(base: i64, b: &[u8]) -> TimeEntry {
    TimeEntry {
        timestamp: i64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
        offset: base + i64::from(i32::from_be_bytes(b[8..12].try_into().expect("4 bytes"))),
    }
}

/// Reads every whole entry of an offset index (a trailing partial entry is ignored).
pub fn read_offset_entries(file: &File, base: i64) -> io::Result<Vec<OffsetEntry>> {
    let bytes = read_whole(file, OFFSET_ENTRY_LEN)?;
    Ok(bytes
        .chunks_exact(OFFSET_ENTRY_LEN as usize)
        .map(|c| decode_offset_entry(base, c))
        .collect())
}

/// Reads every whole entry of a time index (a trailing partial entry is ignored).
pub fn read_time_entries(file: &File, base: i64) -> io::Result<Vec<TimeEntry>> {
    let bytes = read_whole(file, TIME_ENTRY_LEN)?;
    Ok(bytes
        .chunks_exact(TIME_ENTRY_LEN as usize)
        .map(|c| decode_time_entry(base, c))
        .collect())
}

fn read_whole(file: &File, entry_len: u64) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let mut bytes = vec![0u8; (len - len % entry_len) as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// The entry with the largest offset `<= target`, by binary search over the file.
pub fn lookup_offset(file: &File, base: i64, target: i64) -> io::Result<Option<OffsetEntry>> {
    let count = file.metadata()?.len() / OFFSET_ENTRY_LEN;
    let mut entry = [0u8; 8];
    let read = |i: u64, entry: &mut [u8; 8]| -> io::Result<OffsetEntry> {
        file.read_exact_at(entry, i * OFFSET_ENTRY_LEN)?;
        Ok(decode_offset_entry(base, entry))
    };
    binary_search_last(count, |i| Ok(read(i, &mut entry)?.offset <= target))?
        .map(|i| read(i, &mut entry))
        .transpose()
}

/// The entry with the largest timestamp strictly below `target`: every record up to its offset
/// is older than `target`, so the first record at or after `target` comes later.
pub fn lookup_time(file: &File, base: i64, target: i64) -> io::Result<Option<TimeEntry>> {
    let count = file.metadata()?.len() / TIME_ENTRY_LEN;
    let mut entry = [0u8; 12];
    let read = |i: u64, entry: &mut [u8; 12]| -> io::Result<TimeEntry> {
        file.read_exact_at(entry, i * TIME_ENTRY_LEN)?;
        Ok(decode_time_entry(base, entry))
    };
    binary_search_last(count, |i| Ok(read(i, &mut entry)?.timestamp < target))?
        .map(|i| read(i, &mut entry))
        .transpose()
}

/// The last entry of a time index, if any.
pub fn last_time_entry(file: &File, base: i64) -> io::Result<Option<TimeEntry>> {
    let count = file.metadata()?.len() / TIME_ENTRY_LEN;
    if count == 0 {
        return Ok(None);
    }
    let mut entry = [0u8; 12];
    file.read_exact_at(&mut entry, (count - 1) * TIME_ENTRY_LEN)?;
    Ok(Some(decode_time_entry(base, &entry)))
}

/// Index of the last element for which `pred` holds, given that `pred` holds for a prefix.
fn binary_search_last(
    count: u64,
    mut pred: impl FnMut(u64) -> io::Result<bool>,
) -> io::Result<Option<u64>> {
    let (mut lo, mut hi) = (0u64, count); // invariant: pred(< lo) holds, pred(>= hi) fails
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo.checked_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lookups_find_the_largest_lower_entry() {
        let mut idx = tempfile::tempfile().unwrap();
        let mut tidx = tempfile::tempfile().unwrap();
        let base = 100;
        for (i, off) in [105i64, 110, 120].iter().enumerate() {
            let e = OffsetEntry {
                offset: *off,
                position: (i as u32 + 1) * 5000,
            };
            idx.write_all(&encode_offset_entry(base, e)).unwrap();
            let t = TimeEntry {
                timestamp: 1000 * (i as i64 + 1),
                offset: *off,
            };
            tidx.write_all(&encode_time_entry(base, t)).unwrap();
        }
        assert_eq!(lookup_offset(&idx, base, 104).unwrap(), None);
        assert_eq!(
            lookup_offset(&idx, base, 105).unwrap().unwrap().position,
            5000
        );
        assert_eq!(lookup_offset(&idx, base, 119).unwrap().unwrap().offset, 110);
        assert_eq!(lookup_offset(&idx, base, 500).unwrap().unwrap().offset, 120);
        assert_eq!(lookup_time(&tidx, base, 1000).unwrap(), None);
        assert_eq!(lookup_time(&tidx, base, 1001).unwrap().unwrap().offset, 105);
        assert_eq!(lookup_time(&tidx, base, 3000).unwrap().unwrap().offset, 110);
        assert_eq!(last_time_entry(&tidx, base).unwrap().unwrap().offset, 120);
        assert_eq!(read_offset_entries(&idx, base).unwrap().len(), 3);
        assert_eq!(read_time_entries(&tidx, base).unwrap()[2].timestamp, 3000);
    }

    proptest::proptest! {
        /// Index files are hints read from disk: any bytes at all must never panic a lookup.
        #[test]
        fn garbage_indexes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), base in 0i64..1 << 40, target in proptest::prelude::any::<i64>()) {
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(&bytes).unwrap();
            let _ = read_offset_entries(&f, base).unwrap();
            let _ = read_time_entries(&f, base).unwrap();
            let _ = lookup_offset(&f, base, target).unwrap();
            let _ = lookup_time(&f, base, target).unwrap();
            let _ = last_time_entry(&f, base).unwrap();
        }
    }
}
