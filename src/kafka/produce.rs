//! `spool produce` on a Kafka cluster: the records of spool's produce pipeline, partitioned by
//! spool's partitioner (murmur2 as Java's producer), handed to librdkafka's producer with their
//! partition set, and counted from the delivery reports.
//!
//! librdkafka batches per partition itself (`linger.ms`, `batch.size`); the notional batches
//! kept here only tell the sticky partitioner when to move on, as the local producer's real
//! ones do. Records are copied into librdkafka's queue (no syscall per record); delivery reports
//! are served every few thousand records and while waiting for room in the queue. A failed
//! delivery stops the pipeline at its next record; [`ClusterProducer::close`] waits for every
//! record in flight, so exit 0 means every record was acknowledged (acks=all by default).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header as KafkaHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::{Cluster, ClusterError, LogRouting};
use crate::produce::pipeline::Sink;
use crate::produce::producer::{PartitionSummary, ProduceError, Summary};
use crate::record::Header;
use crate::store::compression::Compression;

/// How many records are sent between two polls for delivery reports.
const POLL_EVERY: u32 = 4096;

/// librdkafka's default message.max.bytes, the largest record batch a producer sends.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 1_000_000;

/// Which acknowledgement a record waits for (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// Every in-sync replica has the record (`acks=all`, `-1`).
    #[default]
    All,
    /// The leader has it (`acks=1`).
    Leader,
    /// Not waited for at all (`acks=0`): delivered means sent.
    None,
}

impl Acks {
    fn property(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

/// How records are produced to a cluster.
#[derive(Debug, Clone)]
pub struct ClusterProducerSettings {
    pub acks: Acks,
    pub compression: Option<Compression>,
    /// librdkafka's batch.size, and the size of the sticky partitioner's notional batches.
    pub batch_size: u64,
    /// librdkafka's linger.ms (its default, 5 ms, when zero).
    pub linger: Duration,
    /// librdkafka's message.max.bytes.
    pub max_message_bytes: Option<u64>,
}

/// What the delivery reports said so far.
#[derive(Debug, Default)]
struct Deliveries {
    records: u64,
    bytes: u64,
    partitions: Vec<Option<PartitionSummary>>,
    failed: u64,
    /// The first failed record: its input record number, partition and error.
    first_failure: Option<(u64, i32, KafkaError)>,
}

/// The producer's client context: logs through [`LogRouting`], delivery reports counted.
pub struct DeliveryContext {
    log: LogRouting,
    deliveries: Mutex<Deliveries>,
    failed: AtomicBool,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason)
    }
}

impl ProducerContext for DeliveryContext {
    /// The input record number.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, line: usize) {
        let mut d = self
            .deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(message) => {
                let (partition, offset) = (message.partition(), message.offset());
                d.records += 1;
                d.bytes += (message.key().map_or(0, <[u8]>::len)
                    + message.payload().map_or(0, <[u8]>::len)) as u64;
                if let Some(slot) = d.partitions.get_mut(partition as usize) {
                    let s = slot.get_or_insert(PartitionSummary {
                        partition,
                        records: 0,
                        first_offset: offset,
                        last_offset: offset,
                    });
                    s.records += 1;
                    // acks=0 reports no offset (-1).
                    if offset >= 0 {
                        if s.first_offset < 0 || offset < s.first_offset {
                            s.first_offset = offset;
                        }
                        s.last_offset = s.last_offset.max(offset);
                    }
                }
            }
            Err((error, message)) => {
                d.failed += 1;
                if d.first_failure.is_none() {
                    d.first_failure = Some((line as u64, message.partition(), error.clone()));
                }
                self.failed.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// A producer of one topic on a cluster.
pub struct ClusterProducer {
    producer: BaseProducer<DeliveryContext>,
    topic: String,
    brokers: String,
    partitions: i32,
    batch_size: usize,
    max_message_bytes: u64,
    /// Bytes in each partition's notional batch.
    pending: Vec<usize>,
    since_poll: u32,
}

impl Cluster {
    /// A producer of `topic`, which has `partitions` partitions.
    pub fn producer(
        &self,
        topic: &str,
        partitions: i32,
        settings: &ClusterProducerSettings,
    ) -> Result<ClusterProducer, ClusterError> {
        let mut config = self.client_config();
        config.set("acks", settings.acks.property());
        // Retries keep their order and never duplicate a record (KIP-98); it needs acks=all.
        if settings.acks == Acks::All {
            config.set("enable.idempotence", "true");
        }
        config.set(
            "compression.codec",
            match settings.compression {
                None | Some(Compression::None) => "none",
                Some(Compression::Gzip) => "gzip",
                Some(Compression::Snappy) => "snappy",
                Some(Compression::Lz4) => "lz4",
                Some(Compression::Zstd) => "zstd",
            },
        );
        let max_message_bytes = settings
            .max_message_bytes
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        // A batch is at most a message.max.bytes request's worth.
        let batch_size = settings
            .batch_size
            .clamp(1, i32::MAX as u64)
            .min(max_message_bytes);
        config.set("batch.size", batch_size.to_string());
        // The batch's bytes are the bound, not librdkafka's 10,000 records.
        config.set("batch.num.messages", "1000000");
        config.set("queue.buffering.max.messages", "1000000");
        if !settings.linger.is_zero() {
            config.set("linger.ms", settings.linger.as_millis().to_string());
        }
        config.set("message.max.bytes", max_message_bytes.to_string());
        // A record not acknowledged within this fails (instead of librdkafka's 5 minutes):
        // long enough for a leader election, bounded for a cluster that went away.
        let delivery = (self.timeout * 3).max(Duration::from_secs(30));
        config.set("message.timeout.ms", delivery.as_millis().to_string());
        // -X wins over spool's choices.
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        let context = DeliveryContext {
            log: self.log.clone(),
            deliveries: Mutex::new(Deliveries {
                partitions: vec![None; partitions.max(0) as usize],
                ..Deliveries::default()
            }),
            failed: AtomicBool::new(false),
        };
        let producer = config
            .create_with_context(context)
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(ClusterProducer {
            producer,
            topic: topic.to_string(),
            brokers: self.brokers.clone(),
            partitions,
            batch_size: batch_size as usize,
            max_message_bytes,
            pending: vec![0; partitions.max(0) as usize],
            since_poll: 0,
        })
    }
}

impl ClusterProducer {
    /// The largest record batch librdkafka sends (message.max.bytes).
    pub fn max_message_bytes(&self) -> u64 {
        self.max_message_bytes
    }

    fn deliveries(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.producer
            .context()
            .deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first failed delivery as an error, if a delivery failed.
    fn check(&self) -> Result<(), ProduceError> {
        if !self.producer.context().failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let d = self.deliveries();
        let Some((line, partition, error)) = &d.first_failure else {
            return Ok(());
        };
        Err(ClusterError::Delivery {
            line: *line,
            topic: self.topic.clone(),
            partition: *partition,
            brokers: self.brokers.clone(),
            cause: describe_kafka_error(error),
            failed: d.failed,
        }
        .into())
    }

    /// Waits until every record sent was acknowledged or failed, then says whether all were
    /// delivered; the summary covers those that were.
    pub fn close(&mut self) -> Result<Summary, ProduceError> {
        // Records time out after message.timeout.ms, so this ends.
        while self.producer.in_flight_count() > 0 {
            self.serve_reports();
        }
        self.check()?;
        Ok(self.summary())
    }

    /// Serves the delivery reports that came in, or, if none did, sleeps a millisecond. (A
    /// poll with a timeout would not do: rdkafka's waits out its whole timeout even when
    /// reports came, and one shorter than a millisecond spins.)
    fn serve_reports(&self) {
        let before = self.producer.in_flight_count();
        self.producer.poll(Duration::ZERO);
        if self.producer.in_flight_count() == before {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// What was acknowledged so far.
    pub fn summary(&self) -> Summary {
        let d = self.deliveries();
        Summary {
            topic: self.topic.clone(),
            records: d.records,
            bytes: d.bytes,
            partitions: d.partitions.iter().filter_map(|s| *s).collect(),
        }
    }

    fn record_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        // About a record's encoded size (lengths and deltas as varints, ~10 bytes).
        10 + key.map_or(0, <[u8]>::len)
            + value.map_or(0, <[u8]>::len)
            + headers
                .iter()
                .map(|h| 4 + h.key.len() + h.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
    }
}

impl Sink for ClusterProducer {
    fn topic_name(&self) -> &str {
        &self.topic
    }

    fn partition_count(&self) -> i32 {
        self.partitions
    }

    fn send(
        &mut self,
        line: u64,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<Option<i32>, ProduceError> {
        let size = Self::record_size(key, value, headers);
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, line as usize)
                .partition(partition)
                .timestamp(timestamp);
        record.key = key;
        record.payload = value;
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for h in headers {
                let name = std::str::from_utf8(&h.key).map_err(|_| ClusterError::BadHeader {
                    line,
                    key: String::from_utf8_lossy(&h.key).into_owned(),
                })?;
                owned = owned.insert(KafkaHeader {
                    key: name,
                    value: h.value.as_deref(),
                });
            }
            record.headers = Some(owned);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // librdkafka's queue is full: serve delivery reports until there is room.
                    record = back;
                    self.serve_reports();
                    self.check()?;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    return Err(ProduceError::RecordTooLarge {
                        size,
                        max: self.max_message_bytes,
                    })
                }
                Err((KafkaError::MessageProduction(code), _)) => {
                    return Err(ClusterError::Refused {
                        what: format!("line {line}: produce to {}/{partition}", self.topic),
                        code,
                    }
                    .into())
                }
                Err((e, _)) => {
                    return Err(ClusterError::Request {
                        what: format!("line {line}: produce to {}/{partition}", self.topic),
                        source: e,
                    }
                    .into())
                }
            }
        }
        self.since_poll += 1;
        if self.since_poll >= POLL_EVERY {
            self.since_poll = 0;
            self.producer.poll(Duration::ZERO);
            self.check()?;
        }
        let pending = &mut self.pending[partition as usize];
        if *pending > 0 && *pending + size > self.batch_size {
            *pending = size;
            return Ok(Some(partition));
        }
        *pending += size;
        Ok(None)
    }

    fn would_send(
        &self,
        partition: i32,
        _timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> bool {
        let pending = self.pending[partition as usize];
        pending > 0 && pending + Self::record_size(key, value, headers) > self.batch_size
    }

    fn send_partition(&mut self, partition: i32) -> Result<bool, ProduceError> {
        let pending = std::mem::take(&mut self.pending[partition as usize]);
        Ok(pending > 0)
    }

    fn flush(&mut self) -> Result<Vec<i32>, ProduceError> {
        // The input paused: librdkafka sends within linger.ms; serve the reports meanwhile.
        self.producer.poll(Duration::ZERO);
        self.check()?;
        let mut sent = Vec::new();
        for (p, pending) in self.pending.iter_mut().enumerate() {
            if *pending > 0 {
                *pending = 0;
                sent.push(p as i32);
            }
        }
        Ok(sent)
    }
}

/// A librdkafka error as a short sentence ("Broker: Message size too large").
fn describe_kafka_error(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => code.to_string(),
        None => e.to_string(),
    }
}
