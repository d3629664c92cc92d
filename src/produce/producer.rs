//! The producer: records in, batches per partition out to the partition logs.
//!
//! Records are encoded on the caller's thread, each partition's into its own [`BatchBuilder`].
//! A full (or flushed) batch goes over a bounded channel to one appender thread, which owns the
//! partitions' [`PartitionWriter`]s, seals the batch (header and CRC) and appends it; so encoding
//! the next batches overlaps with writing this one. A batch to be compressed is compressed there
//! too, outside the partition lock, into a buffer the appender reuses. Batches are appended in the order they were
//! sent, so each partition's records keep their order. The appender hands each builder back to
//! be reused: memory stays under (partitions + batches in flight + 2) × batch size however much
//! is produced.
//!
//! The first append error stops the appender: nothing after it is appended, the producer's next
//! call returns the error, and the summary counts only what was appended. [`Producer::close`]
//! sends what is pending, waits for every append and syncs every partition written to (unless
//! the sync policy says otherwise); it returns `Ok` only when all of that succeeded.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::Serialize;

use crate::record::Header;
use crate::store::batch::{self, BatchBuilder, Measured, HEADER_LEN};
use crate::store::compression::{Compression, Compressor, MAX_DECOMPRESSED_BATCH};
use crate::store::recovery::Truncation;
use crate::store::writer::Appended;
use crate::store::{PartitionWriter, Result as StoreResult, StoreError, SyncPolicy, Topic};

/// Batches handed to the appender thread and waiting for it, at most (one more is being
/// appended). A few absorb an append that takes longer than usual (a page-cache allocation
/// stall, say) without stopping the encoder; each costs a batch of memory.
const IN_FLIGHT: usize = 4;

/// Bytes reserved up front for a batch buffer (it grows past this for a batch size above it).
const MAX_RESERVE: usize = 1 << 20;

/// Producer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerConfig {
    /// A batch is sent once it would grow past this many bytes.
    pub batch_size: usize,
    /// The largest batch (and so record) accepted; Kafka's `max.message.bytes`.
    pub max_message_bytes: u64,
    pub sync: SyncPolicy,
    /// The codec batches are written with (the topic's `compression.type` resolved against
    /// what the producer asked for).
    pub compression: Compression,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            batch_size: 1 << 20,
            max_message_bytes: crate::store::config::DEFAULT_MAX_MESSAGE_BYTES,
            sync: SyncPolicy::OnRequest,
            compression: Compression::None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the record is {size} bytes as a batch, more than max.message.bytes ({max})")]
    RecordTooLarge { size: usize, max: u64 },
    #[error("the record is {size} bytes as a batch, more than a compressed batch may hold ({max} bytes before compression)")]
    TooLargeToCompress { size: usize, max: usize },
    /// A Kafka cluster refused or failed a record (see [`crate::kafka::ClusterError`]).
    #[error(transparent)]
    Cluster(#[from] crate::kafka::ClusterError),
    /// Returned after the append error itself was: nothing more is appended.
    #[error("the producer stopped at an earlier append error")]
    Stopped,
}

/// What was appended to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionSummary {
    pub partition: i32,
    pub records: u64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What a producer appended in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Summary {
    pub topic: String,
    pub records: u64,
    /// Bytes appended to the logs (batches as stored).
    pub bytes: u64,
    pub partitions: Vec<PartitionSummary>,
}

/// What the appender thread tells the producer: what was appended, and how it failed.
#[derive(Debug, Default)]
struct Progress {
    records: u64,
    bytes: u64,
    partitions: Vec<Option<PartitionSummary>>,
    truncations: Vec<Truncation>,
    /// The first append error, until the producer reports it.
    error: Option<StoreError>,
    /// Whether an append failed (the appender appends nothing after it).
    failed: bool,
}

enum Job {
    /// Seal the batch, append it to the partition, hand the builder back. `full`: the batch
    /// was sent for being full, so input is coming in bulk and the builder will be filled again.
    Append {
        partition: i32,
        batch: BatchBuilder,
        full: bool,
    },
    /// Sync every partition written to (per the sync policy), after every append before it;
    /// the result comes back as [`Returned::Synced`], after every builder sent before it.
    Sync,
}

/// What the appender thread hands back, in order: builders it is done with, and sync results.
enum Returned {
    Builder(BatchBuilder),
    Synced(StoreResult<()>),
}

/// The appender thread's state: the partition writers, opened on first use.
struct Appender {
    topic: Topic,
    config: ProducerConfig,
    writers: Vec<Option<PartitionWriter>>,
    progress: Arc<Mutex<Progress>>,
    returned: Sender<Returned>,
    failed: bool,
    compressor: Compressor,
    /// The compressed copy of the batch being appended, reused from batch to batch.
    compressed: Vec<u8>,
}

impl Appender {
    fn run(mut self, jobs: Receiver<Job>) {
        for job in jobs {
            match job {
                Job::Append {
                    partition,
                    mut batch,
                    full,
                } => {
                    if !self.failed {
                        let count = batch.len() as u64;
                        let result = self.append(partition, &mut batch);
                        self.record(partition, count, result);
                    }
                    batch.reset();
                    if full {
                        // Fault its pages in here, off the encoder's time.
                        batch.touch_capacity();
                    }
                    // The producer may be gone (dropped after an error): nothing to hand back.
                    let _ = self.returned.send(Returned::Builder(batch));
                }
                Job::Sync => {
                    let synced = self.sync();
                    let _ = self.returned.send(Returned::Synced(synced));
                }
            }
        }
    }

    fn append(
        &mut self,
        partition: i32,
        batch: &mut BatchBuilder,
    ) -> StoreResult<(Appended, usize)> {
        let now = crate::store::fsutil::now_ms();
        let slot = &mut self.writers[partition as usize];
        if slot.is_none() {
            let mut config = self.topic.log_config;
            config.max_message_bytes = self.config.max_message_bytes;
            let p = self.topic.partition(partition)?;
            *slot = Some(PartitionWriter::open(&p.dir, config, self.config.sync)?);
        }
        let writer = slot.as_mut().expect("opened above");
        let mut bytes = batch.finish();
        if self.config.compression != Compression::None {
            batch::compress_batch(
                bytes,
                self.config.compression,
                &mut self.compressor,
                &mut self.compressed,
            )
            .map_err(|source| StoreError::Io {
                op: "compress a batch for",
                path: writer.dir().to_owned(),
                source,
            })?;
            bytes = &mut self.compressed;
        }
        let size = bytes.len();
        let appended = writer.append(bytes, now);
        let truncations = writer.take_truncations();
        if !truncations.is_empty() {
            self.lock().truncations.extend(truncations);
        }
        Ok((appended?, size))
    }

    fn record(&mut self, partition: i32, count: u64, result: StoreResult<(Appended, usize)>) {
        let mut progress = self.lock();
        match result {
            Ok((appended, size)) => {
                let summary =
                    progress.partitions[partition as usize].get_or_insert(PartitionSummary {
                        partition,
                        records: 0,
                        first_offset: appended.base_offset,
                        last_offset: appended.last_offset,
                    });
                summary.records += count;
                summary.last_offset = appended.last_offset;
                progress.records += count;
                progress.bytes += size as u64;
            }
            Err(e) => {
                progress.error = Some(e);
                progress.failed = true;
                drop(progress);
                self.failed = true;
            }
        }
    }

    fn sync(&mut self) -> StoreResult<()> {
        let mut writers: Vec<&mut PartitionWriter> = self
            .writers
            .iter_mut()
            .filter_map(Option::as_mut)
            .filter(|w| w.needs_sync())
            .collect();
        if writers.len() <= 1 {
            return writers.into_iter().try_for_each(PartitionWriter::sync);
        }
        // Each fsync waits for a journal commit; issued one after another, N partitions cost
        // N commits. Issued together, the file system commits them as one group.
        std::thread::scope(|scope| {
            let handles: Vec<_> = writers
                .iter_mut()
                .map(|w| scope.spawn(move || w.sync()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("sync thread panicked"))
                .collect::<StoreResult<Vec<()>>>()
        })?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        lock(&self.progress)
    }
}

/// Largest batch a producer with `config` builds (see [`Producer::batch_limit`]).
fn batch_limit(config: &ProducerConfig) -> usize {
    let max = config.max_message_bytes as usize;
    let limit = if config.compression == Compression::None {
        max
    } else {
        (max - max / 128)
            .saturating_sub(256)
            .min(MAX_DECOMPRESSED_BATCH)
    };
    config.batch_size.min(limit).max(HEADER_LEN + 1)
}

fn new_builder(config: &ProducerConfig) -> BatchBuilder {
    BatchBuilder::new(Vec::with_capacity(batch_limit(config).min(MAX_RESERVE)))
}

fn lock(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    // A panic on the other thread while holding the lock leaves counts that are still valid.
    progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Batches records per partition and has them appended.
#[derive(Debug)]
pub struct Producer {
    topic: Topic,
    config: ProducerConfig,
    builders: Vec<BatchBuilder>,
    /// Per partition: the largest batch for now (see [`Producer::limit_of`]), set when a batch
    /// is sent rather than worked out for every record.
    limits: Vec<usize>,
    /// `None` once the appender thread was told to finish.
    jobs: Option<SyncSender<Job>>,
    returned: Receiver<Returned>,
    /// Builders handed back while waiting for a sync, for the next batches.
    spare: Vec<BatchBuilder>,
    /// Set by [`Producer::close`]: no more batches are built, so builders handed back are freed
    /// at once, on this thread while the appender writes the last batches (rather than one by
    /// one once it is done, which cost ~100 µs an `munmap` each at the end of every run).
    closing: bool,
    progress: Arc<Mutex<Progress>>,
    appender: Option<JoinHandle<()>>,
}

impl Producer {
    pub fn new(topic: Topic, config: ProducerConfig) -> Producer {
        let partitions = topic.partition_count().max(0) as usize;
        let progress = Arc::new(Mutex::new(Progress {
            partitions: vec![None; partitions],
            ..Progress::default()
        }));
        let (jobs, job_rx) = mpsc::sync_channel(IN_FLIGHT);
        let (returned_tx, returned) = mpsc::channel();
        let appender = Appender {
            topic: topic.clone(),
            config,
            writers: (0..partitions).map(|_| None).collect(),
            progress: Arc::clone(&progress),
            returned: returned_tx,
            failed: false,
            compressor: Compressor::default(),
            compressed: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("spool-appender".into())
            .spawn(move || appender.run(job_rx))
            .expect("cannot start the appender thread");
        let mut producer = Producer {
            topic,
            config,
            builders: Vec::with_capacity(partitions),
            limits: Vec::with_capacity(partitions),
            jobs: Some(jobs),
            returned,
            spare: Vec::new(),
            closing: false,
            progress,
            appender: Some(handle),
        };
        producer.builders = (0..partitions).map(|_| producer.new_builder()).collect();
        producer.limits = (0..partitions)
            .map(|p| producer.first_limit(p, partitions))
            .collect();
        producer
    }

    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The largest batch (and so record) accepted.
    pub fn max_message_bytes(&self) -> u64 {
        self.config.max_message_bytes
    }

    /// Largest batch this producer builds. A batch to be compressed leaves room for the
    /// codec's framing around incompressible records (at most 1/255 more, lz4's worst case,
    /// plus headers), so it fits max.message.bytes compressed, and never holds more than a
    /// reader decompresses.
    #[inline]
    fn batch_limit(&self) -> usize {
        batch_limit(&self.config)
    }

    /// Largest batch of `partition` for now. Keyed records spread evenly fill every partition's
    /// batch at the same pace: all would be sent at once, and the encoder would wait for the
    /// appender, then the appender for the encoder. Partition `p`'s first batch is cut at
    /// (p + 1) / partitions of the limit, which spaces the sends evenly from then on.
    #[inline]
    fn limit_of(&self, partition: i32) -> usize {
        self.limits[partition as usize]
    }

    /// The limit of partition `partition`'s first batch, of `partitions` (see
    /// [`Producer::limit_of`]).
    fn first_limit(&self, partition: usize, partitions: usize) -> usize {
        (self.batch_limit() / partitions * (partition + 1)).max(HEADER_LEN + 1)
    }

    fn new_builder(&self) -> BatchBuilder {
        new_builder(&self.config)
    }

    /// Adds a record to its partition's batch. Returns the partition whose batch was sent to
    /// make room, if one was (for the sticky partitioner).
    #[inline]
    pub fn send(
        &mut self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<Option<i32>, ProduceError> {
        // Measured once: sizing and encoding do not walk the record again.
        let m = BatchBuilder::measure(key, value, headers);
        if self.push_if_room(partition, timestamp, key, value, headers, m)? {
            return Ok(None);
        }
        if let Some(e) = self.too_large(m) {
            return Err(e);
        }
        self.send_batch(partition, true)?;
        self.builders[partition as usize].push_measured(timestamp, key, value, headers, m);
        Ok(Some(partition))
    }

    /// Adds a record to its partition's batch unless that batch holds records and has no room
    /// for it (see [`Producer::would_send`]), in which case nothing is sent and nothing added;
    /// returns whether it was added. One measurement of the record serves both.
    #[inline]
    pub fn send_if_room(
        &mut self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<bool, ProduceError> {
        let m = BatchBuilder::measure(key, value, headers);
        self.push_if_room(partition, timestamp, key, value, headers, m)
    }

    /// [`Producer::send_if_room`] of a measured record. Inlined into both callers: as a call
    /// per record it cost 20 instructions a record more.
    #[inline(always)]
    fn push_if_room(
        &mut self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        m: Measured,
    ) -> Result<bool, ProduceError> {
        let limit = self.limit_of(partition);
        // A record that joins a batch within the limit (<= max.message.bytes) is not too large;
        // only the first record of a batch and one that does not fit need the check.
        if self.builders[partition as usize].is_empty() {
            if let Some(e) = self.too_large(m) {
                return Err(e);
            }
        }
        Ok(self.builders[partition as usize].push_within(limit, timestamp, key, value, headers, m))
    }

    /// The error for a measured record too large to be a batch on its own, if it is.
    #[inline]
    fn too_large(&self, m: Measured) -> Option<ProduceError> {
        let max = self.config.max_message_bytes;
        let alone = BatchBuilder::single_measured_size(m);
        if alone as u64 > max {
            return Some(ProduceError::RecordTooLarge { size: alone, max });
        }
        let compressed = self.config.compression != Compression::None;
        (compressed && alone > MAX_DECOMPRESSED_BATCH).then_some(ProduceError::TooLargeToCompress {
            size: alone,
            max: MAX_DECOMPRESSED_BATCH,
        })
    }

    /// Whether adding this record to its partition's batch would first send that batch.
    pub fn would_send(
        &self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> bool {
        let builder = &self.builders[partition as usize];
        !builder.is_empty()
            && builder.size_with(timestamp, key, value, headers) > self.limit_of(partition)
    }

    /// Sends the pending batch of one partition to be appended, if it has one: a batch the
    /// caller found full (see [`Producer::would_send`]).
    pub fn send_partition(&mut self, partition: i32) -> Result<bool, ProduceError> {
        if self.builders[partition as usize].is_empty() {
            return Ok(false);
        }
        self.send_batch(partition, true)?;
        Ok(true)
    }

    /// Sends every pending batch to be appended; returns the partitions that were sent.
    pub fn flush(&mut self) -> Result<Vec<i32>, ProduceError> {
        let mut sent = Vec::new();
        for p in 0..self.builders.len() as i32 {
            if !self.builders[p as usize].is_empty() {
                self.send_batch(p, false)?;
                sent.push(p);
            }
        }
        Ok(sent)
    }

    /// Records appended so far (not counting those still in a batch or on their way).
    pub fn records_appended(&self) -> u64 {
        lock(&self.progress).records
    }

    /// Records waiting in batches not yet sent.
    pub fn pending(&self) -> usize {
        self.builders.iter().map(BatchBuilder::len).sum()
    }

    /// The appender's error, if it failed: the error itself the first time, then
    /// [`ProduceError::Stopped`].
    fn check(&self) -> Result<(), ProduceError> {
        let mut progress = lock(&self.progress);
        if !progress.failed {
            return Ok(());
        }
        Err(progress
            .error
            .take()
            .map_or(ProduceError::Stopped, ProduceError::Store))
    }

    fn send_batch(&mut self, partition: i32, full: bool) -> Result<(), ProduceError> {
        self.check()?;
        let fresh = if self.closing {
            // The send below may wait for room in the queue: free what came back meanwhile.
            self.free_returned();
            // No more records come: an empty builder that holds no buffer yet.
            BatchBuilder::new(Vec::new())
        } else {
            // A builder the appender is done with, or a new one while fewer than
            // (partitions + in flight + 2) exist: the job queue holds at most IN_FLIGHT.
            match self.spare.pop() {
                Some(builder) => builder,
                None => match self.returned.try_recv() {
                    Ok(Returned::Builder(builder)) => builder,
                    // Sync results are only awaited in `sync`, which takes them.
                    _ => self.new_builder(),
                },
            }
        };
        let batch = std::mem::replace(&mut self.builders[partition as usize], fresh);
        self.limits[partition as usize] = self.batch_limit();
        self.jobs
            .as_ref()
            .expect("the producer is open")
            .send(Job::Append {
                partition,
                batch,
                full,
            })
            .expect("the appender thread is running");
        Ok(())
    }

    /// Damage recovery cut from partitions while appending, for the caller to report.
    pub fn take_truncations(&mut self) -> Vec<Truncation> {
        std::mem::take(&mut lock(&self.progress).truncations)
    }

    /// Waits for every batch sent so far to be appended, then forces everything appended to
    /// disk (per the sync policy). Fails if an append or a sync failed.
    pub fn sync(&mut self) -> Result<(), ProduceError> {
        self.jobs
            .as_ref()
            .expect("the producer is open")
            .send(Job::Sync)
            .expect("the appender thread is running");
        // Builders come back before the sync result: kept for the next batches, or freed
        // (while the appender works on the rest) once closing.
        let synced = loop {
            match self.returned.recv().expect("the appender thread answers") {
                Returned::Builder(builder) if !self.closing => self.spare.push(builder),
                Returned::Builder(builder) => drop(builder),
                Returned::Synced(result) => break result,
            }
        };
        self.check()?;
        Ok(synced?)
    }

    /// Frees the builders the appender has handed back so far (once closing).
    fn free_returned(&mut self) {
        while let Ok(returned) = self.returned.try_recv() {
            debug_assert!(
                matches!(returned, Returned::Builder(_)),
                "no sync is awaited"
            );
        }
    }

    /// Sends what is pending, waits for every append and syncs; the summary covers everything
    /// appended. What was appended before an error is synced too.
    pub fn close(&mut self) -> Result<Summary, ProduceError> {
        // The buffers are freed as they stop being needed, on this thread, which would
        // otherwise only wait for the appender.
        self.closing = true;
        self.spare.clear();
        self.free_returned();
        for builder in self.builders.iter_mut().filter(|b| b.is_empty()) {
            *builder = BatchBuilder::new(Vec::new());
        }
        let flushed = self.flush();
        let synced = self.sync();
        flushed?;
        synced?;
        Ok(self.summary())
    }

    /// What has been appended so far.
    pub fn summary(&self) -> Summary {
        let progress = lock(&self.progress);
        Summary {
            topic: self.topic.name().to_owned(),
            records: progress.records,
            bytes: progress.bytes,
            partitions: progress.partitions.iter().filter_map(|s| *s).collect(),
        }
    }
}

impl Drop for Producer {
    /// Lets the appender finish the batches already sent and waits for it.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(handle) = self.appender.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::batch::Batch;
    use crate::store::Store;

    fn producer(partitions: i32, batch_size: usize) -> (tempfile::TempDir, Store, Producer) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let topic = store
            .create_topic("t", partitions, Default::default())
            .unwrap();
        let config = ProducerConfig {
            batch_size,
            ..ProducerConfig::default()
        };
        (dir, store, Producer::new(topic, config))
    }

    fn send(p: &mut Producer, partition: i32, value: &str) -> Result<Option<i32>, ProduceError> {
        p.send(partition, 1, None, Some(value.as_bytes()), &[])
    }

    #[test]
    fn appends_in_order_and_counts_what_was_appended() {
        let (dir, _store, mut p) = producer(2, 200);
        for i in 0..500 {
            send(&mut p, i % 2, &format!("v{i}")).unwrap();
        }
        assert!(p.pending() > 0);
        let summary = p.close().unwrap();
        assert_eq!(summary.records, 500);
        assert_eq!(p.pending(), 0);
        assert_eq!(p.records_appended(), 500);
        for partition in 0..2 {
            let s = summary.partitions[partition as usize];
            assert_eq!(
                (s.partition, s.first_offset, s.last_offset),
                (partition, 0, 249)
            );
            let log = std::fs::read(
                dir.path()
                    .join(format!("topics/t/{partition}/00000000000000000000.log")),
            )
            .unwrap();
            let (mut rest, mut values) = (&log[..], Vec::new());
            while !rest.is_empty() {
                let batch = Batch::parse(rest).unwrap();
                for r in batch.records(&mut Default::default()).unwrap() {
                    values.push(String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap());
                }
                rest = &rest[batch.bytes.len()..];
            }
            let expected: Vec<String> = (0..500)
                .filter(|i| i % 2 == partition)
                .map(|i| format!("v{i}"))
                .collect();
            assert_eq!(values, expected, "partition {partition}");
        }
    }

    #[test]
    fn an_append_error_stops_the_producer_and_nothing_after_it_is_appended() {
        let (dir, _store, mut p) = producer(2, 1 << 20);
        // Partition 1 cannot be opened: its directory is gone.
        std::fs::remove_dir_all(dir.path().join("topics/t/1")).unwrap();
        send(&mut p, 0, "first").unwrap();
        p.send_partition(0).unwrap();
        send(&mut p, 1, "lost").unwrap();
        p.send_partition(1).unwrap();
        // The error is reported once, by the first call that sees it; then "stopped".
        assert!(matches!(p.sync(), Err(ProduceError::Store(_))));
        send(&mut p, 0, "after").unwrap();
        assert!(matches!(p.send_partition(0), Err(ProduceError::Stopped)));
        assert!(matches!(p.close(), Err(ProduceError::Stopped)));
        let summary = p.summary();
        assert_eq!(summary.records, 1);
        assert_eq!(summary.partitions.len(), 1);
        assert_eq!(summary.partitions[0].last_offset, 0);
    }

    #[test]
    fn builders_come_back_for_reuse_until_closing_frees_them() {
        let (_dir, _store, mut p) = producer(2, 200);
        for i in 0..100 {
            send(&mut p, i % 2, &format!("v{i}")).unwrap();
        }
        // The batches sent so far came back with the sync result and wait to be reused.
        p.sync().unwrap();
        assert!(!p.spare.is_empty());
        for i in 100..200 {
            send(&mut p, i % 2, &format!("v{i}")).unwrap();
        }
        let summary = p.close().unwrap();
        assert_eq!(summary.records, 200);
        // Nothing is kept once closed: every buffer was freed as it came back.
        assert!(p.spare.is_empty());
        assert!(p.returned.try_recv().is_err());
        assert!(p.builders.iter().all(|b| b.capacity() < 100));
    }

    #[test]
    fn send_if_room_adds_until_the_batch_is_full_and_then_neither_sends_nor_adds() {
        let (_dir, _store, mut p) = producer(1, 300);
        let mut added = 0;
        while p
            .send_if_room(0, 1, None, Some(b"0123456789"), &[])
            .unwrap()
        {
            added += 1;
            assert!(added < 100, "a 300-byte batch holds fewer");
        }
        assert!(added > 1);
        // The full batch is still pending, as `would_send` says, and the record was not added.
        assert_eq!(p.pending(), added);
        assert!(p.would_send(0, 1, None, Some(b"0123456789"), &[]));
        assert_eq!(p.records_appended(), 0);
        // An empty batch takes any record that fits max.message.bytes, and refuses the rest.
        p.send_partition(0).unwrap();
        let huge = vec![b'x'; 2 << 20];
        assert!(matches!(
            p.send_if_room(0, 1, None, Some(&huge), &[]),
            Err(ProduceError::RecordTooLarge { .. })
        ));
        assert!(p.send_if_room(0, 1, None, Some(b"last"), &[]).unwrap());
        assert_eq!(p.close().unwrap().records, added as u64 + 1);
    }

    #[test]
    fn first_batches_are_staggered_then_full() {
        let (_dir, _store, p) = producer(4, 4000);
        assert_eq!(
            (0..4).map(|i| p.limit_of(i)).collect::<Vec<_>>(),
            vec![1000, 2000, 3000, 4000]
        );
    }
}
