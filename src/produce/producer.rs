//! The producer: records in, batches per partition out to the partition logs.
//!
//! Each partition has one [`BatchBuilder`] whose buffer is reused for every batch, so memory
//! stays at (partitions × batch size) however much is produced. A batch is appended when it is
//! full, when the caller flushes (its input has nothing more ready), and on close, which also
//! syncs every partition written to (unless the sync policy says otherwise).

use serde::Serialize;

use crate::record::Header;
use crate::store::batch::{BatchBuilder, HEADER_LEN};
use crate::store::{PartitionWriter, Result as StoreResult, StoreError, SyncPolicy, Topic};

/// Producer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerConfig {
    /// A batch is sent once it would grow past this many bytes.
    pub batch_size: usize,
    /// The largest batch (and so record) accepted; Kafka's `max.message.bytes`.
    pub max_message_bytes: u64,
    pub sync: SyncPolicy,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            batch_size: 1 << 20,
            max_message_bytes: crate::store::config::DEFAULT_MAX_MESSAGE_BYTES,
            sync: SyncPolicy::OnRequest,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the record is {size} bytes as a batch, more than max.message.bytes ({max})")]
    RecordTooLarge { size: usize, max: u64 },
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

#[derive(Debug)]
struct PartitionSlot {
    writer: Option<PartitionWriter>,
    builder: BatchBuilder,
    summary: Option<PartitionSummary>,
}

/// Batches records per partition and appends them.
#[derive(Debug)]
pub struct Producer {
    topic: Topic,
    config: ProducerConfig,
    slots: Vec<PartitionSlot>,
    records: u64,
    bytes: u64,
    now_ms: fn() -> i64,
}

impl Producer {
    pub fn new(topic: Topic, config: ProducerConfig) -> Producer {
        let slots = (0..topic.partition_count())
            .map(|_| PartitionSlot {
                writer: None,
                builder: BatchBuilder::new(Vec::new()),
                summary: None,
            })
            .collect();
        Producer {
            topic,
            config,
            slots,
            records: 0,
            bytes: 0,
            now_ms: crate::store::fsutil::now_ms,
        }
    }

    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// Largest batch this producer builds.
    fn batch_limit(&self) -> usize {
        self.config
            .batch_size
            .min(self.config.max_message_bytes as usize)
            .max(HEADER_LEN + 1)
    }

    /// Adds a record to its partition's batch. Returns the partition whose batch was sent to
    /// make room, if one was (for the sticky partitioner).
    pub fn send(
        &mut self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<Option<i32>, ProduceError> {
        let limit = self.batch_limit();
        let max = self.config.max_message_bytes;
        // Measured once: sizing and encoding do not walk the record again.
        let m = BatchBuilder::measure(key, value, headers);
        let too_large = |m| {
            let alone = BatchBuilder::single_measured_size(m);
            (alone as u64 > max).then_some(ProduceError::RecordTooLarge { size: alone, max })
        };
        let builder = &mut self.slots[partition as usize].builder;
        // A record that joins a batch within the limit (<= max.message.bytes) is not too large;
        // only the first record of a batch and one that does not fit need the check.
        if builder.is_empty() {
            if let Some(e) = too_large(m) {
                return Err(e);
            }
        }
        if builder.push_within(limit, timestamp, key, value, headers, m) {
            return Ok(None);
        }
        if let Some(e) = too_large(m) {
            return Err(e);
        }
        self.send_batch(partition)?;
        self.slots[partition as usize]
            .builder
            .push_measured(timestamp, key, value, headers, m);
        Ok(Some(partition))
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
        let builder = &self.slots[partition as usize].builder;
        !builder.is_empty()
            && builder.size_with(timestamp, key, value, headers) > self.batch_limit()
    }

    /// Appends the pending batch of one partition, if it has one.
    pub fn send_partition(&mut self, partition: i32) -> StoreResult<bool> {
        if self.slots[partition as usize].builder.is_empty() {
            return Ok(false);
        }
        self.send_batch(partition)?;
        Ok(true)
    }

    /// Appends every pending batch; returns the partitions that were sent.
    pub fn flush(&mut self) -> StoreResult<Vec<i32>> {
        let mut sent = Vec::new();
        for p in 0..self.slots.len() as i32 {
            if !self.slots[p as usize].builder.is_empty() {
                self.send_batch(p)?;
                sent.push(p);
            }
        }
        Ok(sent)
    }

    /// Records appended so far (not counting those still in a batch).
    pub fn records_appended(&self) -> u64 {
        self.records
    }

    /// Records waiting in batches.
    pub fn pending(&self) -> usize {
        self.slots.iter().map(|s| s.builder.len()).sum()
    }

    fn send_batch(&mut self, partition: i32) -> StoreResult<()> {
        let now = (self.now_ms)();
        let slot = &mut self.slots[partition as usize];
        if slot.writer.is_none() {
            let mut config = self.topic.log_config;
            config.max_message_bytes = self.config.max_message_bytes;
            let p = self.topic.partition(partition)?;
            slot.writer = Some(PartitionWriter::open(&p.dir, config, self.config.sync)?);
        }
        let count = slot.builder.len() as u64;
        let bytes = slot.builder.finish();
        let size = bytes.len() as u64;
        let appended = slot
            .writer
            .as_mut()
            .expect("opened above")
            .append(bytes, now)?;
        slot.builder.reset();
        let summary = slot.summary.get_or_insert(PartitionSummary {
            partition,
            records: 0,
            first_offset: appended.base_offset,
            last_offset: appended.last_offset,
        });
        summary.records += count;
        summary.last_offset = appended.last_offset;
        self.records += count;
        self.bytes += size;
        Ok(())
    }

    /// Damage recovery cut from partitions while appending, for the caller to report.
    pub fn take_truncations(&mut self) -> Vec<crate::store::recovery::Truncation> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.writer.as_mut())
            .flat_map(|w| w.take_truncations())
            .collect()
    }

    /// Forces everything appended so far to disk (per the sync policy).
    pub fn sync(&mut self) -> StoreResult<()> {
        let mut writers: Vec<&mut PartitionWriter> = self
            .slots
            .iter_mut()
            .filter_map(|s| s.writer.as_mut())
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

    /// Flushes and syncs; the summary covers everything appended.
    pub fn close(&mut self) -> StoreResult<Summary> {
        self.flush()?;
        self.sync()?;
        Ok(self.summary())
    }

    /// What has been appended so far.
    pub fn summary(&self) -> Summary {
        Summary {
            topic: self.topic.name().to_owned(),
            records: self.records,
            bytes: self.bytes,
            partitions: self.slots.iter().filter_map(|s| s.summary).collect(),
        }
    }
}
