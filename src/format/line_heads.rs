//! The start of an output line, rendered once per partition and moved along record by record.
//!
//! Consecutive records of one partition print mostly the same bytes before their key: the
//! topic, the partition, an offset one above the last one's and usually the same timestamp (a
//! batch's records share it). [`LineHeads`] keeps that start rendered for each (topic,
//! partition) it has seen. The next record's start is the last one's with the offset's decimal
//! digits counted up in place, like an odometer, and the timestamp rewritten only when it
//! changed; anything else (an offset that jumps or gains a digit, another partition's first
//! record) renders the start anew.

use super::decimal::{write_digits, write_i64};
use crate::spec::write_rfc3339_millis;

/// One piece of a line's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadPart {
    Literal(Box<[u8]>),
    /// The topic's name as it is.
    Topic,
    /// The topic's name as a quoted JSON string.
    JsonTopic,
    Partition,
    Offset,
    TimestampMs,
    TimestampRfc3339,
}

impl HeadPart {
    fn uses_offset(&self) -> bool {
        matches!(self, HeadPart::Offset)
    }

    fn uses_timestamp(&self) -> bool {
        matches!(self, HeadPart::TimestampMs | HeadPart::TimestampRfc3339)
    }
}

/// Zero bytes kept after a head, so that [`Rendered::copy_to`] may copy it in whole 16-byte
/// blocks.
const PAD: usize = 16;

/// More partitions than this at once (a group member with hundreds) take over the slots of the
/// oldest: a miss costs one rendering, and a search of this many slots.
const SLOTS: usize = 64;

/// The rendered line starts of the partitions seen last, for one list of [`HeadPart`]s.
#[derive(Debug, Clone)]
pub(crate) struct LineHeads {
    parts: Box<[HeadPart]>,
    uses_offset: bool,
    uses_timestamp: bool,
    /// Index of the first part that depends on the timestamp (`parts.len()` if none): a new
    /// timestamp renders the parts from there on.
    timestamp_from: usize,
    /// The timestamp is in one `%T` part (no `%d`): a new one of as many digits is written
    /// over the old one, nothing else rendered anew.
    timestamp_in_place: bool,
    heads: Vec<Head>,
    /// The slot of the last record: records come a batch of one partition at a time.
    last: usize,
    /// The slot the next new partition takes once all are in use.
    next_victim: usize,
}

/// One partition's line start, as rendered for `offset` and `timestamp`.
#[derive(Debug, Clone)]
struct Head {
    topic: Box<str>,
    partition: i32,
    /// The offset and timestamp rendered in `bytes` (0 for whichever the parts do not use).
    offset: i64,
    timestamp: i64,
    bytes: Vec<u8>,
    /// Where each offset's digits are in `bytes` (start, end); empty for a negative offset.
    offset_digits: Vec<(usize, usize)>,
    /// Where the part at `timestamp_from` starts in `bytes`.
    timestamp_at: usize,
    /// Where the timestamp's digits are, with `timestamp_in_place` and a timestamp of 0 or
    /// more.
    timestamp_digits: (usize, usize),
}

impl LineHeads {
    pub(crate) fn new(parts: Vec<HeadPart>) -> LineHeads {
        let timestamp_from = parts
            .iter()
            .position(HeadPart::uses_timestamp)
            .unwrap_or(parts.len());
        let count = |kind: &HeadPart| parts.iter().filter(|&part| part == kind).count();
        let timestamp_in_place =
            count(&HeadPart::TimestampMs) == 1 && count(&HeadPart::TimestampRfc3339) == 0;
        LineHeads {
            timestamp_in_place,
            uses_offset: parts.iter().any(HeadPart::uses_offset),
            uses_timestamp: timestamp_from < parts.len(),
            timestamp_from,
            parts: parts.into_boxed_slice(),
            heads: Vec::new(),
            last: 0,
            next_victim: 0,
        }
    }

    /// The start of the line of the record at `offset` of `topic`/`partition`.
    #[inline(always)]
    pub(crate) fn head(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp: i64,
    ) -> Rendered<'_> {
        let offset = if self.uses_offset { offset } else { 0 };
        let timestamp = if self.uses_timestamp { timestamp } else { 0 };
        let slot = match self.heads.get(self.last) {
            Some(head) if head.partition == partition && same_text(&head.topic, topic) => self.last,
            _ => self.find(topic, partition, offset, timestamp),
        };
        let head = &mut self.heads[slot];
        // The usual next offset changes one digit, which is stored into `bytes` only after
        // they were copied out (by `Rendered::copy_to`): a byte stored just before the
        // copy's 16-byte loads of the same memory would stall them (a narrow store is not
        // forwarded to a wider load). Until then the patch is a byte written over itself.
        let mut patch = None;
        if head.offset != offset {
            let next = head.offset >= 0 && head.offset.checked_add(1) == Some(offset);
            match next.then(|| head.last_digit_up()) {
                Some(Some(last_digit)) => {
                    patch = Some(last_digit);
                    head.offset = offset;
                }
                Some(None) if head.count_up_carrying() => head.offset = offset,
                _ => head.render_from(&self.parts, 0, self.timestamp_from, offset, timestamp),
            }
        }
        if head.timestamp != timestamp
            && !(self.timestamp_in_place && head.rewrite_timestamp(timestamp))
        {
            // The parts from the timestamp on are rendered anew after the patched digit.
            if let Some((at, digit)) = patch.take() {
                head.bytes[at] = digit;
            }
            head.render_from(
                &self.parts,
                self.timestamp_from,
                self.timestamp_from,
                offset,
                timestamp,
            );
        }
        let (patch_at, patch) = patch.unwrap_or((0, head.bytes[0]));
        Rendered {
            padded: &mut head.bytes,
            patch_at,
            patch,
        }
    }

    /// The slot of `topic`/`partition`, rendered for the record when it is new there.
    #[inline(never)]
    #[cold]
    fn find(&mut self, topic: &str, partition: i32, offset: i64, timestamp: i64) -> usize {
        let found = self
            .heads
            .iter()
            .position(|head| head.partition == partition && same_text(&head.topic, topic));
        let slot = match found {
            Some(slot) => slot,
            None => {
                let head = Head {
                    topic: topic.into(),
                    partition,
                    offset: 0,
                    timestamp: 0,
                    bytes: Vec::new(),
                    offset_digits: Vec::new(),
                    timestamp_at: 0,
                    timestamp_digits: (0, 0),
                };
                let slot = if self.heads.len() < SLOTS {
                    self.heads.push(head);
                    self.heads.len() - 1
                } else {
                    let slot = self.next_victim;
                    self.next_victim = (slot + 1) % SLOTS;
                    self.heads[slot] = head;
                    slot
                };
                self.heads[slot].render_from(
                    &self.parts,
                    0,
                    self.timestamp_from,
                    offset,
                    timestamp,
                );
                slot
            }
        };
        self.last = slot;
        slot
    }
}

/// A line start, followed in memory by [`PAD`] zero bytes, but for one byte still to be
/// written (at `patch_at`) once it has been copied.
#[derive(Debug)]
#[must_use = "the line start is complete only once copied"]
pub(crate) struct Rendered<'a> {
    padded: &'a mut [u8],
    patch_at: usize,
    patch: u8,
}

impl<'a> Rendered<'a> {
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.padded.len() - PAD
    }

    #[cfg(test)]
    pub(crate) fn bytes(self) -> &'a [u8] {
        let len = self.len();
        self.padded[self.patch_at] = self.patch;
        &self.padded[..len]
    }

    /// Copies the line start to `dst` in 16-byte blocks (no call to `memcpy` for a few dozen
    /// bytes) and returns its length.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `self.len() + 15` bytes: up to 15 bytes past the
    /// line start are overwritten with its padding.
    #[inline(always)]
    pub(crate) unsafe fn copy_to(self, dst: *mut u8) -> usize {
        let len = self.len();
        let src = self.padded.as_ptr();
        let mut at = 0;
        while at < len {
            // Within `padded`: `at < len`, and PAD bytes follow `len`.
            std::ptr::copy_nonoverlapping(src.add(at), dst.add(at), 16);
            at += 16;
        }
        // `patch_at` is below `len`, or 0 (within the room past an empty start).
        *dst.add(self.patch_at) = self.patch;
        self.padded[self.patch_at] = self.patch;
        len
    }
}

/// `a == b`, without a call to `bcmp` for the usual short topic name.
#[inline(always)]
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if (8..=16).contains(&n) {
        let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap());
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    if (4..8).contains(&n) {
        let word = |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().unwrap());
        return word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4);
    }
    a == b
}

impl Head {
    /// Where the usual next offset changes the line start, and to what: one offset, whose
    /// last digit is not a 9.
    #[inline(always)]
    fn last_digit_up(&self) -> Option<(usize, u8)> {
        if let [(_, end)] = self.offset_digits[..] {
            let digit = self.bytes[end - 1];
            if digit != b'9' {
                return Some((end - 1, digit + 1));
            }
        }
        None
    }

    /// Writes the digits of `timestamp` over those of the last one, when both are 0 or more
    /// and have as many digits (false, with nothing done, otherwise).
    #[inline(never)]
    fn rewrite_timestamp(&mut self, timestamp: i64) -> bool {
        if self.timestamp < 0 || timestamp < 0 {
            return false;
        }
        let mut digits = [0; 20];
        let from = write_digits(&mut digits, timestamp as u64);
        let (start, end) = self.timestamp_digits;
        if end - start != digits.len() - from {
            return false;
        }
        self.bytes[start..end].copy_from_slice(&digits[from..]);
        self.timestamp = timestamp;
        true
    }

    /// Adds one to every offset rendered in `bytes`, digit by digit from the last; false when
    /// one of them would gain a digit (999 to 1000), which takes a new rendering.
    #[inline(never)]
    fn count_up_carrying(&mut self) -> bool {
        for &(start, end) in &self.offset_digits {
            let mut at = end;
            loop {
                at -= 1;
                let digit = self.bytes[at];
                if digit != b'9' {
                    self.bytes[at] = digit + 1;
                    break;
                }
                self.bytes[at] = b'0';
                if at == start {
                    return false;
                }
            }
        }
        true
    }

    /// Renders `parts[from..]` in place of what stood there before, for `offset` and
    /// `timestamp`. `from` is 0 or `timestamp_from`.
    #[cold]
    #[inline(never)]
    fn render_from(
        &mut self,
        parts: &[HeadPart],
        from: usize,
        timestamp_from: usize,
        offset: i64,
        timestamp: i64,
    ) {
        if from == 0 {
            self.bytes.clear();
            self.offset_digits.clear();
        } else {
            self.bytes.truncate(self.timestamp_at);
            let cut = self.timestamp_at;
            self.offset_digits.retain(|&(start, _)| start < cut);
        }
        for (index, part) in parts.iter().enumerate().skip(from) {
            if index == timestamp_from {
                self.timestamp_at = self.bytes.len();
            }
            let out = &mut self.bytes;
            match part {
                HeadPart::Literal(bytes) => out.extend_from_slice(bytes),
                HeadPart::Topic => out.extend_from_slice(self.topic.as_bytes()),
                HeadPart::JsonTopic => {
                    super::json_output::write_json_string(out, self.topic.as_bytes())
                }
                HeadPart::Partition => write_i64(out, self.partition.into()),
                HeadPart::Offset => {
                    let start = out.len();
                    write_i64(out, offset);
                    if offset >= 0 {
                        self.offset_digits.push((start, out.len()));
                    }
                }
                HeadPart::TimestampMs => {
                    let start = out.len();
                    write_i64(out, timestamp);
                    self.timestamp_digits = (start, out.len());
                }
                HeadPart::TimestampRfc3339 => write_rfc3339_millis(out, timestamp),
            }
        }
        self.bytes.extend_from_slice(&[0; PAD]);
        self.offset = offset;
        self.timestamp = timestamp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `%t/%p@%o %T %o %d ` (two offsets), or with `twice` false, `%t/%p@%o %T %d `.
    fn parts(twice: bool) -> Vec<HeadPart> {
        let mut parts = vec![
            HeadPart::Topic,
            HeadPart::Literal(b"/".as_slice().into()),
            HeadPart::Partition,
            HeadPart::Literal(b"@".as_slice().into()),
            HeadPart::Offset,
            HeadPart::Literal(b" ".as_slice().into()),
            HeadPart::TimestampMs,
            HeadPart::Literal(b" ".as_slice().into()),
            HeadPart::Offset,
            HeadPart::Literal(b" ".as_slice().into()),
            HeadPart::TimestampRfc3339,
            HeadPart::Literal(b" ".as_slice().into()),
        ];
        if !twice {
            parts.drain(7..9);
        }
        parts
    }

    /// What [`parts`] render to, from scratch.
    fn plain(twice: bool, topic: &str, partition: i32, offset: i64, timestamp: i64) -> Vec<u8> {
        let ts = crate::spec::format_rfc3339_millis(timestamp);
        let again = if twice {
            format!(" {offset}")
        } else {
            String::new()
        };
        format!("{topic}/{partition}@{offset} {timestamp}{again} {ts} ").into_bytes()
    }

    #[test]
    fn counts_offsets_up_across_digits_and_rewrites_timestamps() {
        for twice in [false, true] {
            counts_offsets_up(twice);
        }
    }

    fn counts_offsets_up(twice: bool) {
        let mut heads = LineHeads::new(parts(twice));
        let records = [
            ("t", 0, 8, 5),
            ("t", 0, 9, 5),
            ("t", 0, 10, 5),
            ("t", 0, 11, 6),
            ("t", 0, 99, 6),
            ("t", 0, 100, 6),
            ("t", 0, 119, 6),
            ("t", 0, 120, 6),
            ("t", 0, 1299, 6),
            ("t", 0, 1300, 6),
            ("t", 0, 1_999_999_999, 6),
            ("t", 0, 2_000_000_000, 6),
            ("t", 0, 2_000_000_001, 6),
            ("t", 1, 101, 6),
            ("t", 0, 101, 6),
            ("u", 0, 102, 6),
            ("t", 0, 102, -1),
            ("t", 0, -1, -1),
            ("t", 0, 0, -1),
            ("t", 0, 1, 1_795_514_400_123),
            ("t", 0, i64::MAX, 0),
            ("t", 0, i64::MIN, 0),
        ];
        for (topic, partition, offset, timestamp) in records {
            assert_eq!(
                String::from_utf8_lossy(heads.head(topic, partition, offset, timestamp).bytes()),
                String::from_utf8_lossy(&plain(twice, topic, partition, offset, timestamp)),
            );
        }
    }

    #[test]
    fn timestamps_rewritten_in_place_or_anew() {
        let literal = |text: &str| HeadPart::Literal(text.as_bytes().into());
        let mut heads = LineHeads::new(vec![
            HeadPart::Offset,
            literal(" "),
            HeadPart::TimestampMs,
            literal(" "),
            HeadPart::Partition,
        ]);
        let timestamps = [
            5,
            6,
            9,
            10,
            99,
            1_700_000_000_000,
            1_700_000_000_001,
            1_799_999_999_999,
            -1,
            -2,
            5,
            0,
        ];
        for (offset, timestamp) in timestamps.into_iter().enumerate() {
            let offset = offset as i64 + 98;
            assert_eq!(
                String::from_utf8_lossy(heads.head("t", 3, offset, timestamp).bytes()),
                format!("{offset} {timestamp} 3")
            );
        }
    }

    #[test]
    fn more_partitions_than_slots() {
        let mut heads = LineHeads::new(parts(true));
        for round in 0..3 {
            for partition in 0..(SLOTS as i32 + 5) {
                let offset = round * 10;
                assert_eq!(
                    heads.head("topic", partition, offset, 7).bytes(),
                    plain(true, "topic", partition, offset, 7)
                );
            }
        }
    }

    #[test]
    fn topics_told_apart_at_every_length() {
        for len in 0..40 {
            let a = "a".repeat(len);
            let mut heads = LineHeads::new(vec![HeadPart::Topic]);
            assert_eq!(heads.head(&a, 0, 0, 0).bytes(), a.as_bytes());
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] = b'b';
                let b = String::from_utf8(b).unwrap();
                assert_eq!(heads.head(&b, 0, 0, 0).bytes(), b.as_bytes());
                assert_eq!(heads.head(&a, 0, 0, 0).bytes(), a.as_bytes());
            }
        }
    }

    proptest! {
        #[test]
        fn same_as_rendered_from_scratch(
            records in proptest::collection::vec(
                (0..3i32, prop_oneof![Just("t"), Just("topic-one")], 0..4i64, any::<bool>(), any::<i64>()),
                1..200,
            ),
            start in prop_oneof![
                0..20i64,
                990..1010i64,
                99_999_900..100_000_010i64,
                i64::MAX - 300..=i64::MAX,
                any::<i64>(),
            ],
            twice: bool,
        ) {
            let mut heads = LineHeads::new(parts(twice));
            let mut offset = start;
            let mut timestamp = 0;
            for (partition, topic, step, new_timestamp, ts) in records {
                offset = offset.wrapping_add(step);
                if new_timestamp {
                    timestamp = ts;
                }
                prop_assert_eq!(
                    heads.head(topic, partition, offset, timestamp).bytes(),
                    plain(twice, topic, partition, offset, timestamp)
                );
            }
        }
    }
}
