//! Produce and InitProducerId.
//!
//! A client's RecordBatch v2 is checked (length, magic, CRC, record count, sequence for
//! idempotent producers) and appended as it came, through the same [`PartitionWriter`] as
//! `spool produce`, which writes the base offset in; the leader epoch (0) is written here.
//! Neither is covered by the CRC, and no record is decoded or re-encoded, so compressed batches
//! are stored as sent (gzip, snappy, lz4, zstd: the codecs the store's readers decode; an
//! unknown codec is refused with UNSUPPORTED_COMPRESSION_TYPE rather than stored unreadable).
//! acks=1 and acks=-1 are answered after the append (and its fsync with
//! `--fsync batch`); acks=0 is not answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};

use super::sequence::{Check, Windows};
use super::{error_code, Broker, KafkaError};
use crate::store::batch::{Batch, BatchError, BatchHeader};
use crate::store::raw::{self, ProducerFields};
use crate::store::{fsutil, PartitionWriter, StoreError, SyncPolicy, Topic};

/// How far back the sequence windows are rebuilt from the log (besides the active segment and
/// the one before it): segments written to this recently may hold a batch a producer is still
/// retrying (its `delivery.timeout.ms` is 2 minutes by default).
const RETRY_HORIZON: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Bytes 12..16 of a batch: the partition leader epoch, outside the CRC.
const LEADER_EPOCH_RANGE: std::ops::Range<usize> = 12..16;
/// Attribute bits of transactional and control batches.
const TRANSACTIONAL_OR_CONTROL: i16 = 0b11_0000;
/// Attribute bits of the compression codec; 1-4 are gzip, snappy, lz4, zstd.
const CODEC_MASK: i16 = 0b111;

/// One partition being written by the server: its writer and its producers' windows, behind
/// one lock so that a sequence check and the append it allows are one step.
struct Slot {
    writer: PartitionWriter,
    /// Loaded from the log the first time an idempotent producer writes here.
    windows: Option<Windows>,
}

/// A partition by its topic's id and its number.
type PartitionKey = (String, i32);

/// The server's open partition writers, by topic id and partition (a topic deleted and
/// created again under its name is another topic).
pub(crate) struct Writers {
    sync: SyncPolicy,
    slots: Mutex<HashMap<PartitionKey, Arc<Mutex<Slot>>>>,
    next_producer_id: AtomicI64,
}

impl Writers {
    pub fn new(sync: SyncPolicy) -> Writers {
        // Ids must not repeat across restarts (a producer of the last run may still write):
        // start from the clock, in milliseconds, with room for 4096 ids per millisecond.
        let start = fsutil::now_ms().max(0) << 12;
        Writers {
            sync,
            slots: Mutex::new(HashMap::new()),
            next_producer_id: AtomicI64::new(start),
        }
    }

    fn slot(&self, topic: &Topic, partition: i32) -> Result<Arc<Mutex<Slot>>, StoreError> {
        let key = (topic.meta.id.clone(), partition);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slots.get(&key) {
            return Ok(Arc::clone(s));
        }
        let writer = topic.partition(partition)?.writer(self.sync)?;
        let slot = Arc::new(Mutex::new(Slot {
            writer,
            windows: None,
        }));
        slots.insert(key, Arc::clone(&slot));
        Ok(slot)
    }

    /// Forces everything appended to disk (at shutdown).
    pub fn sync_all(&self) -> Result<(), StoreError> {
        let slots: Vec<_> = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            // A partition whose topic was deleted meanwhile has nothing left to sync.
            match slot.writer.sync() {
                Ok(()) => {}
                Err(e) if !slot.writer.dir().exists() => drop(e),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops the writers of a deleted topic.
    pub fn forget_topic(&self, topic_id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _), _| id != topic_id);
    }
}

pub fn produce(broker: &Broker, request: ProduceRequest, _version: i16) -> Option<ProduceResponse> {
    let acks = request.acks;
    let refusal = if request.transactional_id.is_some() {
        // Transactions are not provided (and not advertised).
        Some(KafkaError::UnsupportedVersion.code())
    } else if !matches!(acks, -1..=1) {
        Some(KafkaError::InvalidRequiredAcks.code())
    } else {
        None
    };
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let topic = if topic_data.name.is_empty() {
            broker.topics.by_id(topic_data.topic_id)
        } else {
            broker.topics.get(topic_data.name.as_str())
        };
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let result = match (&refusal, &topic) {
                (Some(code), _) => Err(*code),
                (None, Ok(Some(topic))) => append(broker, topic, data.index, data.records),
                (None, Ok(None)) => Err(KafkaError::UnknownTopicOrPartition.code()),
                (None, Err(e)) => Err(error_code(e)),
            };
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            partitions.push(match result {
                Ok(base_offset) => response.with_base_offset(base_offset),
                Err(code) => response.with_error_code(code).with_base_offset(-1),
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partitions),
        );
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// Checks and appends one partition's batch; the base offset it got, or Kafka's error code.
fn append(
    broker: &Broker,
    topic: &Topic,
    partition: i32,
    records: Option<Bytes>,
) -> Result<i64, i16> {
    if partition < 0 || partition >= topic.partition_count() {
        return Err(KafkaError::UnknownTopicOrPartition.code());
    }
    let records = records.unwrap_or_default();
    let header = check_batch(&records)?;
    let mut batch = records.to_vec();
    batch[LEADER_EPOCH_RANGE].copy_from_slice(&0i32.to_be_bytes());
    let fields = ProducerFields::of(&batch);
    let slot = broker
        .writers
        .slot(topic, partition)
        .map_err(|e| error_code(&e))?;
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    let idempotent = fields.producer_id >= 0;
    if idempotent {
        if slot.windows.is_none() {
            let batches = raw::producer_batches(slot.writer.dir(), RETRY_HORIZON)
                .map_err(|e| error_code(&e))?;
            slot.windows = Some(Windows::rebuild(&batches));
        }
        let windows = slot.windows.as_ref().expect("loaded above");
        match windows.check(fields, header.records_count) {
            Check::Append => {}
            Check::Duplicate(base_offset) => return Ok(base_offset),
            Check::OutOfOrder => return Err(KafkaError::OutOfOrderSequenceNumber.code()),
            Check::Fenced => return Err(KafkaError::InvalidProducerEpoch.code()),
        }
    }
    let appended = match slot.writer.append(&mut batch, fsutil::now_ms()) {
        Ok(a) => a,
        Err(e) => {
            drop(slot);
            if matches!(e, StoreError::TopicDeleted { .. }) {
                broker.writers.forget_topic(&topic.meta.id);
            }
            return Err(error_code(&e));
        }
    };
    if idempotent {
        if let Some(w) = slot.windows.as_mut() {
            w.record(fields, header.records_count, appended.base_offset);
        }
    }
    drop(slot);
    // Fetches waiting in this process need not wait for the file notification.
    broker.wake.wake_all();
    Ok(appended.base_offset)
}

/// The checks a broker makes of a produced batch before storing it unchanged: the store's own
/// batch check (length, magic, CRC, attributes it can read), so that the server accepts
/// exactly what spool's readers read. (A codec the store's readers cannot decode is refused
/// with UNSUPPORTED_COMPRESSION_TYPE rather than stored unreadable.)
fn check_batch(records: &[u8]) -> Result<BatchHeader, i16> {
    let corrupt = KafkaError::CorruptMessage.code();
    let header = match Batch::parse(records) {
        Ok(b) => b.header,
        Err(BatchError::BadMagic(_)) => return Err(KafkaError::UnsupportedForMessageFormat.code()),
        // Transactions are not provided.
        Err(BatchError::TransactionalBatch(_) | BatchError::ControlBatch(_)) => {
            return Err(KafkaError::UnsupportedVersion.code())
        }
        Err(BatchError::UnknownCodec { .. }) => {
            return Err(KafkaError::UnsupportedCompressionType.code())
        }
        Err(_) => return Err(corrupt),
    };
    if header.total_len() < records.len() {
        // Kafka takes exactly one batch per partition from a v2 producer.
        return Err(KafkaError::InvalidRecord.code());
    }
    if header.records_count < 1 || header.last_offset_delta != header.records_count - 1 {
        return Err(KafkaError::InvalidRecord.code());
    }
    if header.attributes & TRANSACTIONAL_OR_CONTROL != 0 {
        return Err(KafkaError::UnsupportedVersion.code());
    }
    if header.attributes & CODEC_MASK > 4 {
        return Err(KafkaError::UnsupportedCompressionType.code());
    }
    Ok(header)
}

pub fn init_producer_id(
    broker: &Broker,
    request: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
        .with_ongoing_txn_producer_id(ProducerId(-1))
        .with_ongoing_txn_producer_epoch(-1);
    if request.transactional_id.is_some() {
        return response.with_error_code(KafkaError::UnsupportedVersion.code());
    }
    // A producer asking to bump its epoch (after a timed-out batch) keeps its id.
    let (id, epoch) = if request.producer_id.0 >= 0 && request.producer_epoch < i16::MAX - 1 {
        (request.producer_id.0, request.producer_epoch + 1)
    } else {
        (
            broker
                .writers
                .next_producer_id
                .fetch_add(1, Ordering::Relaxed),
            0,
        )
    };
    response
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::store::batch::encode_batch;

    fn batch() -> Vec<u8> {
        let mut out = Vec::new();
        encode_batch(
            &mut out,
            &[Record {
                key: None,
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
                timestamp: 1,
            }],
        );
        out
    }

    #[test]
    fn batches_are_checked_as_a_broker_checks_them() {
        let good = batch();
        assert!(check_batch(&good).is_ok());
        let mut bad_crc = good.clone();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert_eq!(
            check_batch(&bad_crc),
            Err(KafkaError::CorruptMessage.code())
        );
        assert_eq!(
            check_batch(&good[..good.len() - 1]),
            Err(KafkaError::CorruptMessage.code())
        );
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert_eq!(check_batch(&two), Err(KafkaError::InvalidRecord.code()));
        let mut old_magic = good.clone();
        old_magic[16] = 1;
        assert_eq!(
            check_batch(&old_magic),
            Err(KafkaError::UnsupportedForMessageFormat.code())
        );
        assert_eq!(check_batch(&[]), Err(KafkaError::CorruptMessage.code()));
    }
}
