//! Fetch: whole stored batches from the one holding the requested offset on, as they lie in the
//! segment (clients skip the records below the offset, as they do with Kafka). Nothing is
//! decoded: a fetch costs a few reads and a CRC check per batch, never work per record.
//!
//! A fetch that finds fewer than `min_bytes` waits up to `max_wait_ms`, woken by the change
//! notifications of the partitions it asked for (a CLI producer's append wakes it in
//! milliseconds), then reads again. `max_bytes` bounds the response and `partition_max_bytes`
//! each partition, except that the first batch of a response is returned whole even when
//! larger, as Kafka does so a client can always make progress. There are no transactions, so
//! read_committed and read_uncommitted read the same records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use uuid::Uuid;

use super::{error_code, Broker, KafkaError};
use crate::store::partition::LogBounds;
use crate::store::{raw, StoreError, Topic};

/// The longest a fetch waits, whatever the client asks (Kafka clients ask for 500 ms).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The most a fetch returns of one partition, whatever the client allows (a broker may return
/// less). A client reading a backlog works through one response while the next is read and
/// sent, so moderate responses keep both sides busy: librdkafka read a backlog of 100-byte
/// records in 3.5 s with 1 MiB responses against 4.8 s with 10 MiB ones.
const PARTITION_CHUNK: usize = 1 << 20;

struct Wanted {
    name: TopicName,
    id: Uuid,
    topic: Result<Option<Arc<Topic>>, StoreError>,
    partitions: Vec<FetchPartition>,
}

pub fn fetch(broker: &Broker, request: FetchRequest, _version: i16) -> FetchResponse {
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let wanted: Vec<Wanted> = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = if t.topic.is_empty() {
                broker.topics.by_id(t.topic_id)
            } else {
                broker.topics.get(t.topic.as_str())
            };
            let (name, id) = match &topic {
                Ok(Some(topic)) => (
                    TopicName(super::str_bytes(topic.name())),
                    super::topics::topic_uuid(topic),
                ),
                _ => (t.topic, t.topic_id),
            };
            Wanted {
                name,
                id,
                topic,
                partitions: t.partitions,
            }
        })
        .collect();
    for w in &wanted {
        if let Ok(Some(topic)) = &w.topic {
            for p in &w.partitions {
                if let Ok(partition) = topic.partition(p.partition) {
                    broker.wake.watch(&partition.dir);
                }
            }
        }
    }
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    loop {
        let seen = broker.wake.generation();
        let (responses, bytes, errors) = read_all(&wanted, max_bytes);
        if bytes >= min_bytes || errors || Instant::now() >= deadline || broker.shutting_down() {
            return FetchResponse::default().with_responses(responses);
        }
        broker.wake.wait(seen, deadline);
    }
}

/// Reads every wanted partition once: the responses, the bytes of records in them, and whether
/// any partition answered an error (which is answered at once, as Kafka does).
fn read_all(wanted: &[Wanted], max_bytes: usize) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut errors = false;
    let mut responses = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut partitions = Vec::with_capacity(w.partitions.len());
        for p in &w.partitions {
            let data = match &w.topic {
                Ok(Some(topic)) => {
                    let limit = (p.partition_max_bytes.max(0) as usize)
                        .min(max_bytes - total)
                        .min(PARTITION_CHUNK);
                    // Only the first batch of the whole response may exceed the limits.
                    read_partition(topic, p, limit, total > 0)
                }
                Ok(None) if w.name.is_empty() => {
                    error_data(p.partition, KafkaError::UnknownTopicId.code())
                }
                Ok(None) => error_data(p.partition, KafkaError::UnknownTopicOrPartition.code()),
                Err(e) => error_data(p.partition, error_code(e)),
            };
            errors |= data.error_code != 0;
            total += data.records.as_ref().map_or(0, |r| r.len());
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(w.name.clone())
                .with_topic_id(w.id)
                .with_partitions(partitions),
        );
    }
    (responses, total, errors)
}

fn error_data(partition: i32, code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(code)
        .with_high_watermark(-1)
        .with_records(Some(Bytes::new()))
}

/// One partition's part of a fetch: one listing of its directory gives the log's bounds and
/// the segment to read (listed again only when retention deleted that segment meanwhile).
fn read_partition(topic: &Topic, p: &FetchPartition, limit: usize, strict: bool) -> PartitionData {
    let result = (|| {
        let partition = topic.partition(p.partition)?;
        for _ in 0..100 {
            let LogBounds {
                start,
                end,
                segments,
            } = partition.bounds()?;
            if p.fetch_offset < start || p.fetch_offset > end {
                return Ok((start, end, None));
            }
            if p.fetch_offset == end || limit == 0 {
                return Ok((start, end, Some(Vec::new())));
            }
            let dir = &partition.dir;
            if let Some(read) =
                raw::read_batches_listed(dir, &segments, p.fetch_offset, limit, strict)?
            {
                return Ok::<_, StoreError>((start, end, Some(read.bytes)));
            }
        }
        Err(StoreError::BadMetadata {
            path: partition.dir.clone(),
            reason: "its segments kept vanishing while being opened".into(),
        })
    })();
    let data = PartitionData::default().with_partition_index(p.partition);
    match result {
        Ok((start, end, Some(bytes))) => data
            .with_high_watermark(end)
            .with_last_stable_offset(end)
            .with_log_start_offset(start)
            .with_records(Some(Bytes::from(bytes))),
        Ok((start, end, None)) => data
            .with_error_code(KafkaError::OffsetOutOfRange.code())
            .with_high_watermark(end)
            .with_last_stable_offset(end)
            .with_log_start_offset(start)
            .with_records(Some(Bytes::new())),
        Err(e) => data
            .with_error_code(error_code(&e))
            .with_high_watermark(-1)
            .with_records(Some(Bytes::new())),
    }
}
