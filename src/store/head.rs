//! The partition's head: the lock file every appender takes, and the checkpoint of the active
//! segment's end that it holds.
//!
//! `<partition>/.lock` is locked exclusively around each append. Its 88 bytes record where the
//! log ends (active segment, next offset, byte lengths of the three files, the index-interval
//! counter and the largest timestamp so far), protected by a CRC. The appender that takes the
//! lock next trusts it only when it agrees with the log file's length; otherwise it recovers from
//! the segment files themselves. Readers use it, without the lock, for a cheap log end offset.
//! It is a hint that makes appends cheap, never the source of truth: the segment files are.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::crc;

pub const LOCK_FILE: &str = ".lock";
const MAGIC: &[u8; 4] = b"SPH1";
const TOMBSTONE: &[u8; 8] = b"SPHDELTD";

/// What a partition's lock file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Head(Head),
    /// Missing, torn or corrupt: recover from the segment files.
    Nothing,
    /// The topic was deleted.
    Tombstone,
}
const LEN: usize = 88;

/// Where the active segment ends and what its indexes need to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub active_base: i64,
    pub next_offset: i64,
    pub log_len: u64,
    pub index_len: u64,
    pub time_index_len: u64,
    /// Bytes appended since the last offset index entry.
    pub bytes_since_index: u64,
    /// Largest timestamp in the active segment and the (last) offset of its batch; `i64::MIN`
    /// while the segment is empty.
    pub max_timestamp: i64,
    pub max_timestamp_offset: i64,
    /// Timestamp of the last time index entry (`i64::MIN` when there is none).
    pub last_time_index_ts: i64,
    /// Timestamp of the segment's first batch, for `segment.ms` (`i64::MIN` while empty).
    pub first_timestamp: i64,
}

impl Head {
    /// An empty active segment starting at `base`.
    pub fn empty(base: i64) -> Head {
        Head {
            active_base: base,
            next_offset: base,
            log_len: 0,
            index_len: 0,
            time_index_len: 0,
            bytes_since_index: 0,
            max_timestamp: i64::MIN,
            max_timestamp_offset: base,
            last_time_index_ts: i64::MIN,
            first_timestamp: i64::MIN,
        }
    }

    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..4].copy_from_slice(MAGIC);
        let fields: [i64; 10] = [
            self.active_base,
            self.next_offset,
            self.log_len as i64,
            self.index_len as i64,
            self.time_index_len as i64,
            self.bytes_since_index as i64,
            self.max_timestamp,
            self.max_timestamp_offset,
            self.last_time_index_ts,
            self.first_timestamp,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[4 + i * 8..12 + i * 8].copy_from_slice(&f.to_be_bytes());
        }
        let crc = crc::crc32c(&b[..84]);
        b[84..].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Head> {
        if b.len() < LEN || &b[..4] != MAGIC {
            return None;
        }
        let crc = u32::from_be_bytes(b[84..88].try_into().ok()?);
        if crc::crc32c(&b[..84]) != crc {
            return None;
        }
        let f = |i: usize| i64::from_be_bytes(b[4 + i * 8..12 + i * 8].try_into().expect("8"));
        let head = Head {
            active_base: f(0),
            next_offset: f(1),
            log_len: f(2) as u64,
            index_len: f(3) as u64,
            time_index_len: f(4) as u64,
            bytes_since_index: f(5) as u64,
            max_timestamp: f(6),
            max_timestamp_offset: f(7),
            last_time_index_ts: f(8),
            first_timestamp: f(9),
        };
        (head.active_base >= 0 && head.next_offset >= head.active_base).then_some(head)
    }

    /// Reads the head from the lock file; `None` when missing, torn or corrupt (or the topic
    /// was deleted).
    pub fn load(lock_file: &File) -> io::Result<Option<Head>> {
        Ok(match Head::load_or_tombstone(lock_file)? {
            Stored::Head(h) => Some(h),
            Stored::Nothing | Stored::Tombstone => None,
        })
    }

    /// Reads the lock file: a head, nothing usable, or the tombstone that topic deletion
    /// leaves for appenders waiting on the lock.
    pub fn load_or_tombstone(lock_file: &File) -> io::Result<Stored> {
        let mut b = [0u8; LEN];
        let mut read = 0;
        while read < LEN {
            match lock_file.read_at(&mut b[read..], read as u64)? {
                0 => break,
                n => read += n,
            }
        }
        if read >= TOMBSTONE.len() && &b[..TOMBSTONE.len()] == TOMBSTONE {
            return Ok(Stored::Tombstone);
        }
        Ok(Head::decode(&b[..read]).map_or(Stored::Nothing, Stored::Head))
    }

    /// Marks the partition deleted (under its lock, before its topic is renamed away): an
    /// appender that takes the lock next finds this instead of a head and fails, so nothing
    /// is appended to a deleted topic, at no cost to appends.
    pub fn store_tombstone(lock_file: &File) -> io::Result<()> {
        lock_file.write_all_at(TOMBSTONE, 0)
    }

    /// Writes the head into the lock file (one positioned write).
    pub fn store(&self, lock_file: &File) -> io::Result<()> {
        lock_file.write_all_at(&self.encode(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let file = tempfile::tempfile().unwrap();
        assert_eq!(Head::load(&file).unwrap(), None);
        let mut head = Head::empty(40);
        head.next_offset = 77;
        head.log_len = 9000;
        head.max_timestamp = 12345;
        head.store(&file).unwrap();
        assert_eq!(Head::load(&file).unwrap(), Some(head));
        file.write_all_at(&[0xff], 30).unwrap();
        assert_eq!(Head::load(&file).unwrap(), None);
    }
}
