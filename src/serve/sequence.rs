//! Idempotent producers' sequence windows, per partition: Kafka's rule that a producer's
//! batches carry consecutive sequence numbers, so a batch sent again after a lost answer is
//! recognised (and acknowledged with its first offset, without a second append) and a gap is
//! refused. As Kafka does, the last five batches of each producer are remembered. The windows
//! are rebuilt from the batch headers of the partition's recent segments (the active one, the
//! one before it, and any written to in the last minutes) when the server first writes to it,
//! so a restart keeps recognising retries, also of a batch in a segment that rolled since.

use std::collections::{HashMap, VecDeque};

use crate::store::raw::ProducerFields;

/// Batches remembered per producer (Kafka's `max.in.flight.requests.per.connection` limit
/// for idempotence).
const WINDOW: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    recent: VecDeque<Entry>,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Append,
    /// Already appended at this base offset: acknowledge it again.
    Duplicate(i64),
    /// Not the next sequence number (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrder,
    /// An older epoch than the producer's current one (INVALID_PRODUCER_EPOCH).
    Fenced,
}

#[derive(Debug, Default)]
pub struct Windows {
    producers: HashMap<i64, Producer>,
}

/// The sequence number of the last record of a batch, wrapping as Kafka's do.
pub fn last_sequence(base_sequence: i32, records: i32) -> i32 {
    let increment = records - 1;
    if base_sequence > i32::MAX - increment {
        increment - (i32::MAX - base_sequence) - 1
    } else {
        base_sequence + increment
    }
}

impl Windows {
    /// The windows as the batches of a log (in log order) leave them.
    pub fn rebuild(batches: &[(i64, i64, ProducerFields)]) -> Windows {
        let mut w = Windows::default();
        for &(base, last, fields) in batches {
            w.record(fields, (last - base + 1) as i32, base);
        }
        w
    }

    pub fn check(&self, fields: ProducerFields, records: i32) -> Check {
        let Some(p) = self.producers.get(&fields.producer_id) else {
            // A producer not seen on this partition (new, or older than the segments read).
            return Check::Append;
        };
        if fields.producer_epoch < p.epoch {
            return Check::Fenced;
        }
        if fields.producer_epoch > p.epoch {
            return if fields.base_sequence == 0 {
                Check::Append
            } else {
                Check::OutOfOrder
            };
        }
        let last = last_sequence(fields.base_sequence, records);
        if let Some(e) = p
            .recent
            .iter()
            .find(|e| e.first_seq == fields.base_sequence && e.last_seq == last)
        {
            return Check::Duplicate(e.base_offset);
        }
        let expected = match p.recent.back() {
            Some(e) if e.last_seq == i32::MAX => 0,
            Some(e) => e.last_seq + 1,
            None => return Check::Append,
        };
        if fields.base_sequence == expected {
            Check::Append
        } else {
            Check::OutOfOrder
        }
    }

    /// Remembers an appended batch.
    pub fn record(&mut self, fields: ProducerFields, records: i32, base_offset: i64) {
        let p = self.producers.entry(fields.producer_id).or_default();
        if fields.producer_epoch != p.epoch {
            p.epoch = fields.producer_epoch;
            p.recent.clear();
        }
        if p.recent.len() == WINDOW {
            p.recent.pop_front();
        }
        p.recent.push_back(Entry {
            first_seq: fields.base_sequence,
            last_seq: last_sequence(fields.base_sequence, records),
            base_offset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pid: i64, epoch: i16, seq: i32) -> ProducerFields {
        ProducerFields {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
        }
    }

    #[test]
    fn consecutive_batches_append_retries_are_duplicates_gaps_are_refused() {
        let mut w = Windows::default();
        assert_eq!(w.check(f(7, 0, 0), 3), Check::Append);
        w.record(f(7, 0, 0), 3, 100);
        assert_eq!(w.check(f(7, 0, 3), 2), Check::Append);
        w.record(f(7, 0, 3), 2, 103);
        assert_eq!(w.check(f(7, 0, 0), 3), Check::Duplicate(100));
        assert_eq!(w.check(f(7, 0, 3), 2), Check::Duplicate(103));
        assert_eq!(w.check(f(7, 0, 6), 1), Check::OutOfOrder);
        assert_eq!(w.check(f(7, 0, 5), 1), Check::Append);
        // Another producer is independent.
        assert_eq!(w.check(f(8, 0, 42), 1), Check::Append);
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut w = Windows::default();
        w.record(f(7, 1, 0), 1, 0);
        assert_eq!(w.check(f(7, 0, 1), 1), Check::Fenced);
        assert_eq!(w.check(f(7, 2, 5), 1), Check::OutOfOrder);
        assert_eq!(w.check(f(7, 2, 0), 1), Check::Append);
        w.record(f(7, 2, 0), 1, 1);
        assert_eq!(w.check(f(7, 2, 1), 1), Check::Append);
    }

    #[test]
    fn only_five_batches_are_remembered_and_sequences_wrap() {
        let mut w = Windows::default();
        for i in 0..6 {
            w.record(f(1, 0, i), 1, i64::from(i));
        }
        assert_eq!(w.check(f(1, 0, 0), 1), Check::OutOfOrder);
        assert_eq!(w.check(f(1, 0, 1), 1), Check::Duplicate(1));
        assert_eq!(last_sequence(i32::MAX - 1, 4), 1);
        let rebuilt = Windows::rebuild(&[(10, 12, f(3, 0, 0)), (13, 13, f(3, 0, 3))]);
        assert_eq!(rebuilt.check(f(3, 0, 0), 3), Check::Duplicate(10));
        assert_eq!(rebuilt.check(f(3, 0, 4), 1), Check::Append);
    }
}
