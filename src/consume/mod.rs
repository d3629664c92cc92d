//! Consuming: reading several partitions at once, fairly, and waiting for more.
//!
//! A [`Consumer`] holds one [`PartitionReader`] per assigned partition. Each [`Consumer::poll`]
//! visits every partition once, starting one further each time, and takes at most a fair share
//! of records from each, so one busy partition cannot starve the others while records of one
//! partition always come in offset order. When every partition is at its end,
//! [`Consumer::wait`] sleeps until a partition directory changes.

pub mod watch;

use std::sync::Arc;

use crate::record::RecordRef;
use crate::spec::OffsetSpec;
use crate::store::batch::RecordIter;
use crate::store::readahead::RenderAhead;
use crate::store::reader::{
    deliver_each, Deliver, Gap, GapCause, Progress, ReadAhead, BUFFERS, MIN_READ_CHUNK, READ_CHUNK,
};
use crate::store::{Partition, PartitionReader, StoreError};

use watch::ChangeWaiter;

/// Records taken from one partition before moving to the next, after which its turn goes on to
/// the end of the batch it stopped in (within the poll's budget). A turn thus ends at a batch
/// boundary, as a Kafka consumer hands out a partition's fetched batches whole before the next
/// partition's: between turns a partition holds no part-read batch, so it can give its read
/// buffer back to the pool, and eight partitions of 1 MiB batches share a few buffers instead
/// of pinning one each. Fairness is per batch (at most `produce --batch-size`, 1 MiB by
/// default) rather than per thousand records.
pub const FAIR_SHARE: usize = 1000;

/// How long a partition found at its end, while others still have records, may go without a
/// full look (a newer segment, the topic deleted): between two, a visit only reads its current
/// segment ([`PartitionReader::set_quick_end`]).
const FULL_LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

/// Read buffers of all partitions together stay below this size: each partition reads
/// [`READ_CHUNK`] at once when there are few, less when there are many (one partition alone
/// holds [`BUFFERS`] chunks, the others being read ahead; one of several holds its chunk and
/// at most one more, read ahead when its chunk is about to run out), and with more than 256,
/// 64 KiB at once and nothing ahead. Buffers are shared through a pool, so what is held is
/// what the partitions being read need at once, whatever their number below that.
const READ_BUDGET: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("cannot read {topic}/{partition} at offset {offset}")]
    Read {
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How much each of `partitions` readers reads at once, and how it reads ahead. One partition:
/// chunks of [`READ_CHUNK`], [`BUFFERS`] of them. Several, read in turn: up to [`READ_CHUNK`],
/// each partition's next chunk read ahead when its buffer is about to run out. So many that
/// even the smallest chunks, two a partition, would pass [`READ_BUDGET`]: the smallest chunks
/// and nothing ahead (memory then grows with the number of partitions, by 64 KiB each).
fn read_plan(partitions: usize) -> (usize, ReadAhead) {
    if partitions <= 1 {
        return (READ_CHUNK.min(READ_BUDGET / BUFFERS), ReadAhead::Eager);
    }
    let share = READ_BUDGET / partitions;
    if share < 2 * MIN_READ_CHUNK {
        return (MIN_READ_CHUNK, ReadAhead::Off);
    }
    ((share / 2).min(READ_CHUNK), ReadAhead::OnDemand)
}

/// A requested start offset outside the log, and the log's ends it was moved between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamped {
    pub requested: i64,
    pub log_start: i64,
    pub log_end: i64,
}

impl Clamped {
    /// Whether the offset lay below the log start (else past its end).
    pub fn below_start(&self) -> bool {
        self.requested < self.log_start
    }

    /// Where reading starts instead.
    pub fn start(&self) -> i64 {
        self.requested.clamp(self.log_start, self.log_end)
    }

    /// Where `spec` points in a log of [`start`, `end`), before clamping; `offset_for_time`
    /// looks a timestamp up (the local time index, or the cluster's offsets-for-times). -N and
    /// +N are taken as given here, so that reaching past an end is clamped with the same
    /// warning as an absolute offset would be. Both targets resolve offsets through this.
    pub fn resolve<E>(
        spec: OffsetSpec,
        start: i64,
        end: i64,
        offset_for_time: impl FnOnce(i64) -> Result<Option<i64>, E>,
    ) -> Result<Clamped, E> {
        let end = end.max(start);
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let requested = match spec {
            OffsetSpec::Timestamp(ts) => offset_for_time(ts)?.unwrap_or(end),
            OffsetSpec::FromEnd(n) => end.saturating_sub(count(n)),
            OffsetSpec::FromStart(n) => start.saturating_add(count(n)),
            other => other.resolve(start, end).unwrap_or(end),
        };
        Ok(Clamped {
            requested,
            log_start: start,
            log_end: end,
        })
    }
}

/// Turns an offset spec into an offset of `partition`, clamped to [log start, log end].
pub fn resolve_start(
    partition: &Partition,
    spec: OffsetSpec,
) -> Result<(i64, Option<Clamped>), StoreError> {
    let start = partition.log_start_offset()?;
    let end = partition.log_end_offset()?;
    let clamped = Clamped::resolve(spec, start, end, |ts| partition.offset_for_timestamp(ts))?;
    let requested = clamped.requested;
    Ok((
        clamped.start(),
        (clamped.start() != requested).then_some(clamped),
    ))
}

struct Cursor {
    topic: String,
    partition: i32,
    reader: PartitionReader,
    /// The last visit found the partition at its end.
    at_end: bool,
}

/// The outcome of one [`Consumer::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub delivered: usize,
    /// Every partition was at its end during this poll.
    pub all_at_end: bool,
}

/// Records that were no longer in a partition's log when its reader got to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub topic: String,
    pub partition: i32,
    pub gap: Gap,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let records = self.gap.records();
        let s = if records == 1 { "" } else { "s" };
        let why = match self.gap.cause {
            GapCause::Retention => "were deleted by retention before they were read",
            GapCause::Damage => {
                "were lost to damage (cut from the log by crash recovery or a repair)"
            }
        };
        write!(
            f,
            "{}/{}: {records} record{s} (offsets {}..{}) {why}; continuing at offset {}",
            self.topic,
            self.partition,
            self.gap.from,
            self.gap.to - 1,
            self.gap.to
        )
    }
}

/// Where [`Consumer::poll`] delivers records: one by one with their topic and partition, or,
/// when the consumer renders ahead ([`Consumer::render_ahead`]), records already rendered.
/// Any `FnMut(&str, i32, RecordRef) -> Result` closure is a sink for a consumer that does not.
pub trait ConsumerSink<E> {
    fn record(&mut self, topic: &str, partition: i32, record: RecordRef<'_>) -> Result<(), E>;

    /// `records` consecutive records of one partition, as its [`RenderAhead`] rendered them.
    fn rendered(
        &mut self,
        topic: &str,
        partition: i32,
        bytes: &[u8],
        records: usize,
    ) -> Result<(), E>;

    /// The rest of a batch of one partition at once ([`Deliver::records`]); by default one
    /// record at a time.
    #[inline(always)]
    fn records(
        &mut self,
        topic: &str,
        partition: i32,
        records: &mut RecordIter<'_>,
        progress: &mut Progress,
    ) -> Result<(), E> {
        deliver_each(records, progress, |record| {
            self.record(topic, partition, record)
        })
    }
}

impl<E, F: FnMut(&str, i32, RecordRef<'_>) -> Result<(), E>> ConsumerSink<E> for F {
    #[inline(always)]
    fn record(&mut self, topic: &str, partition: i32, record: RecordRef<'_>) -> Result<(), E> {
        self(topic, partition, record)
    }

    fn rendered(&mut self, _: &str, _: i32, _: &[u8], _: usize) -> Result<(), E> {
        unreachable!("a consumer renders ahead only for a sink that takes renderings")
    }
}

/// Makes the [`RenderAhead`] of one partition (topic, partition).
pub type RenderAheadFor = Arc<dyn Fn(&str, i32) -> Arc<dyn RenderAhead> + Send + Sync>;

/// A [`ConsumerSink`] seen by one partition's reader.
struct PartitionSink<'s, S> {
    sink: &'s mut S,
    topic: &'s str,
    partition: i32,
}

impl<E, S: ConsumerSink<E>> Deliver<PollError<E>> for PartitionSink<'_, S> {
    #[inline(always)]
    fn record(&mut self, record: RecordRef<'_>) -> Result<(), PollError<E>> {
        self.sink
            .record(self.topic, self.partition, record)
            .map_err(PollError::Sink)
    }

    fn rendered(&mut self, bytes: &[u8], records: usize) -> Result<(), PollError<E>> {
        self.sink
            .rendered(self.topic, self.partition, bytes, records)
            .map_err(PollError::Sink)
    }

    #[inline(always)]
    fn records(
        &mut self,
        records: &mut RecordIter<'_>,
        progress: &mut Progress,
    ) -> Result<(), PollError<E>> {
        self.sink
            .records(self.topic, self.partition, records, progress)
            .map_err(PollError::Sink)
    }
}

/// Reads a set of partitions.
pub struct Consumer {
    cursors: Vec<Cursor>,
    /// Renders ahead for the partitions assigned (see [`Consumer::render_ahead`]).
    render_ahead: Option<RenderAheadFor>,
    next: usize,
    waiter: ChangeWaiter,
    /// The last poll left a partition with records to read.
    busy: bool,
    /// When the partitions at their end were last looked at in full.
    last_full_look: std::time::Instant,
}

impl Default for Consumer {
    fn default() -> Self {
        Consumer::new()
    }
}

impl Consumer {
    pub fn new() -> Consumer {
        Consumer {
            cursors: Vec::new(),
            render_ahead: None,
            next: 0,
            waiter: ChangeWaiter::new(),
            busy: false,
            last_full_look: std::time::Instant::now(),
        }
    }

    /// Starts reading `partition` at `offset`.
    pub fn assign(&mut self, partition: &Partition, offset: i64) -> Result<(), StoreError> {
        self.waiter.watch(&partition.dir);
        let mut reader = partition.reader(offset)?;
        if let Some(make) = &self.render_ahead {
            reader.set_render_ahead(Some(make(&partition.topic, partition.id)));
        }
        self.cursors.push(Cursor {
            topic: partition.topic.clone(),
            partition: partition.id,
            reader,
            at_end: false,
        });
        let (chunk, read_ahead) = read_plan(self.cursors.len());
        for cursor in &mut self.cursors {
            cursor.reader.set_chunk(chunk, read_ahead);
        }
        Ok(())
    }

    /// Has the records read ahead rendered on the read-ahead thread, by the [`RenderAhead`]
    /// `make` gives for each partition (now assigned or later): [`Consumer::poll`] then
    /// delivers the records it rendered to [`ConsumerSink::rendered`]. For a consumer whose
    /// output is a pure function of each record; the reading thread renders the rest.
    pub fn render_ahead(&mut self, make: RenderAheadFor) {
        for cursor in &mut self.cursors {
            let render = make(&cursor.topic, cursor.partition);
            cursor.reader.set_render_ahead(Some(render));
        }
        self.render_ahead = Some(make);
    }

    /// Also wakes [`Consumer::wait`] on changes in `dir` (e.g. a group directory).
    pub fn watch(&mut self, dir: &std::path::Path) {
        self.waiter.watch(dir);
    }

    /// Stops reading a partition; returns the next offset it would have delivered.
    pub fn unassign(&mut self, partition: &Partition) -> Option<i64> {
        let i = self
            .cursors
            .iter()
            .position(|c| c.topic == partition.topic && c.partition == partition.id)?;
        self.waiter.unwatch(&partition.dir);
        let cursor = self.cursors.remove(i);
        Some(cursor.reader.next_offset())
    }

    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
    }

    /// (topic, partition, next offset) of every assigned partition.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        self.cursors
            .iter()
            .map(|c| (c.topic.clone(), c.partition, c.reader.next_offset()))
            .collect()
    }

    /// Visits every partition once and delivers up to `budget` records in all.
    ///
    /// While some partitions still have records, one found at its end is only read again in
    /// its current segment, and looked at in full (for a newer segment, for the topic's
    /// deletion) every `FULL_LOOK_EVERY`; the end of them all is reported only after a full
    /// look at each. Reading many partitions of unequal sizes to their end then costs no
    /// directory listing per poll for each partition already done.
    pub fn poll<E, S>(&mut self, budget: usize, mut sink: S) -> Result<Polled, E>
    where
        E: From<ConsumeError>,
        S: ConsumerSink<E>,
    {
        let mut delivered = 0;
        let mut all_at_end = true;
        let n = self.cursors.len();
        let quick_allowed = self.busy && self.last_full_look.elapsed() < FULL_LOOK_EVERY;
        if !quick_allowed {
            self.last_full_look = std::time::Instant::now();
        }
        let mut busy = false;
        for i in 0..n {
            if delivered >= budget {
                all_at_end = false;
                busy = true;
                break;
            }
            if n > 1 {
                // The partition after this one has its chunk read while this one is decoded.
                let after = if i + 1 < n {
                    self.next + i + 1
                } else {
                    self.next + 1
                };
                self.cursors[after % n].reader.prepare_turn();
            }
            let cursor = &mut self.cursors[(self.next + i) % n];
            let (topic, partition) = (cursor.topic.as_str(), cursor.partition);
            let quick = quick_allowed && cursor.at_end;
            cursor.reader.set_quick_end(quick);
            let reader = &mut cursor.reader;
            // The partition's share, then the rest of the batch it stopped in (within the
            // budget): see `FAIR_SHARE`.
            let mut want = (budget - delivered).min(FAIR_SHARE);
            let polled = loop {
                let polled = reader
                    .poll(
                        want,
                        PartitionSink {
                            sink: &mut sink,
                            topic,
                            partition,
                        },
                    )
                    .map_err(|e| match e {
                        PollError::Store(source @ StoreError::TopicDeleted { .. }) => {
                            E::from(ConsumeError::Store(source))
                        }
                        // The reader stops in front of what it cannot read: name that offset.
                        PollError::Store(source) => E::from(ConsumeError::Read {
                            topic: topic.to_owned(),
                            partition,
                            offset: reader.next_offset(),
                            source,
                        }),
                        PollError::Sink(e) => e,
                    })?;
                delivered += polled.delivered;
                want = reader.left_in_batch().min(budget - delivered);
                if polled.at_end || want == 0 {
                    break polled;
                }
            };
            cursor.at_end = polled.at_end;
            all_at_end &= polled.at_end && !quick;
            busy |= !polled.at_end;
        }
        self.busy = busy;
        if n > 0 {
            self.next = (self.next + 1) % n;
        }
        Ok(Polled {
            delivered,
            all_at_end,
        })
    }

    /// Records that were no longer in the log when the readers got to them, since the last
    /// call.
    pub fn take_skipped(&mut self) -> Vec<Skipped> {
        let mut skipped = Vec::new();
        for c in &mut self.cursors {
            for gap in c.reader.take_gaps() {
                skipped.push(Skipped {
                    topic: c.topic.clone(),
                    partition: c.partition,
                    gap,
                });
            }
        }
        skipped
    }

    /// Sleeps until a watched partition changes or `timeout` passes; true when woken. The
    /// first wait only sets up the file notifications and returns at once, so that the next
    /// poll, with them in place, sees whatever was appended since the last one.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        self.waiter.wait(timeout)
    }

    /// A handle that wakes [`Consumer::wait`] from another thread.
    pub fn notifier(&self) -> std::sync::mpsc::SyncSender<()> {
        self.waiter.notifier()
    }
}

/// Keeps a sink's own error apart from the store's inside a reader poll.
enum PollError<E> {
    Store(StoreError),
    Sink(E),
}

impl<E> From<StoreError> for PollError<E> {
    fn from(e: StoreError) -> Self {
        PollError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reader::tests::append_values;
    use crate::store::LogConfig;

    /// A partition directory under `root` with `values` appended, one batch.
    fn partition(root: &std::path::Path, id: i32, config: LogConfig, values: &[i64]) -> Partition {
        let dir = root.join(id.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        append_values(&dir, config, values);
        Partition {
            topic: "t".into(),
            id,
            dir,
            config,
        }
    }

    /// Polls until every partition is at its end; (partition, value) of every record.
    fn poll_to_end(
        consumer: &mut Consumer,
        mut between: impl FnMut(usize),
    ) -> Result<Vec<(i32, i64)>, ConsumeError> {
        let mut got = Vec::new();
        for round in 0.. {
            let polled =
                consumer.poll(FAIR_SHARE * 4, |_: &str, partition, r: RecordRef<'_>| {
                    let value = std::str::from_utf8(r.value.unwrap()).unwrap();
                    got.push((partition, value.parse().unwrap()));
                    Ok::<_, ConsumeError>(())
                })?;
            if polled.all_at_end {
                break;
            }
            between(round);
        }
        Ok(got)
    }

    fn of(got: &[(i32, i64)], partition: i32) -> Vec<i64> {
        got.iter()
            .filter(|(p, _)| *p == partition)
            .map(|(_, v)| *v)
            .collect()
    }

    /// Partition 0 is at its end after the first poll while partition 1 has a backlog of many
    /// polls; meanwhile partition 0 gets a record in its segment and then a roll. The end of
    /// both is reported only once both were read in full, rolled segment included.
    #[test]
    fn a_partition_that_rolls_while_another_is_read_is_read_to_its_end() {
        let root = tempfile::tempdir().unwrap();
        let small = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let done = partition(root.path(), 0, small, &[0, 1, 2]);
        let backlog: Vec<i64> = (0..20_000).collect();
        let busy = partition(root.path(), 1, LogConfig::default(), &backlog);
        let mut consumer = Consumer::new();
        consumer.assign(&done, 0).unwrap();
        consumer.assign(&busy, 0).unwrap();
        let rolled: Vec<i64> = (4..300).collect();
        let got = poll_to_end(&mut consumer, |round| match round {
            0 => append_values(&done.dir, small, &[3]),
            1 => append_values(&done.dir, small, &rolled),
            _ => {}
        })
        .unwrap();
        assert_eq!(of(&got, 0), (0..300).collect::<Vec<_>>());
        assert_eq!(of(&got, 1), backlog);
        assert!(consumer.take_skipped().is_empty());
    }

    /// A topic deleted under a partition at its end, while another partition is still being
    /// read, is reported as such: never as the end of the log.
    #[test]
    fn a_partition_deleted_while_another_is_read_is_an_error_not_the_end() {
        let root = tempfile::tempdir().unwrap();
        let done = partition(root.path(), 0, LogConfig::default(), &[0, 1, 2]);
        let backlog: Vec<i64> = (0..20_000).collect();
        let busy = partition(root.path(), 1, LogConfig::default(), &backlog);
        let mut consumer = Consumer::new();
        consumer.assign(&done, 0).unwrap();
        consumer.assign(&busy, 0).unwrap();
        let err = poll_to_end(&mut consumer, |round| {
            if round == 0 {
                std::fs::remove_dir_all(&done.dir).unwrap();
            }
        })
        .unwrap_err();
        assert!(
            matches!(err, ConsumeError::Store(StoreError::TopicDeleted { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn read_buffers_stay_within_the_budget_until_the_smallest_chunks() {
        assert_eq!(read_plan(1), (READ_CHUNK, ReadAhead::Eager));
        for partitions in [1, 2, 6, 7, 50, 100, 102, 256, 257, 1000] {
            let (chunk, ahead) = read_plan(partitions);
            let per_partition = match ahead {
                ReadAhead::Eager => BUFFERS,
                ReadAhead::OnDemand => 2,
                ReadAhead::Off => 1,
            };
            let held = partitions * chunk * per_partition;
            assert!(
                (MIN_READ_CHUNK..=READ_CHUNK).contains(&chunk),
                "{partitions}"
            );
            assert!(
                held <= READ_BUDGET || (chunk == MIN_READ_CHUNK && ahead == ReadAhead::Off),
                "{partitions} partitions hold {held} bytes"
            );
        }
        assert_eq!(read_plan(8), (READ_CHUNK, ReadAhead::OnDemand));
        assert_eq!(
            read_plan(256).1,
            ReadAhead::OnDemand,
            "256 still read ahead"
        );
        assert_eq!(read_plan(1000).1, ReadAhead::Off, "a thousand do not");
    }
}
