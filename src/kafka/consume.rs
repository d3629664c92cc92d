//! `spool consume` without a group on a Kafka cluster: partitions assigned from resolved
//! offsets (Kafka's assign mode), records handed to the same renderers as local records.
//!
//! Start offsets are resolved as locally: from the partition's log start and end offsets
//! (ListOffsets), `@TIME` through offsets-for-times, and clamped to the log with the same
//! warning. A partition is at its end when the next offset to read has reached the log end
//! offset that the broker last reported (librdkafka's cached high watermark), so `-e` stops
//! at "the end at the moment it is reached", as the local consumer does.

use std::collections::HashMap;
use std::ffi::CString;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{Cluster, ClusterContext, ClusterError};
use crate::consume::{Clamped, Polled};
use crate::record::{HeaderRef, Headers, RecordRef};
use crate::spec::OffsetSpec;

/// How long a poll waits for the first record of a fetch under way.
const FETCH_WAIT: Duration = Duration::from_millis(100);

/// librdkafka's "no offset" (RD_KAFKA_OFFSET_INVALID).
const OFFSET_INVALID: i64 = -1001;

struct Assigned {
    c_topic: CString,
    partition: i32,
    /// The next offset to deliver.
    position: i64,
    /// The log end offset when the partition was assigned.
    end_at_assign: i64,
}

/// A consumer of assigned partitions of a cluster.
pub struct ClusterReader {
    cluster: Cluster,
    consumer: BaseConsumer<ClusterContext>,
    assigned: Vec<Assigned>,
    /// topic → partition → index in `assigned`.
    index: HashMap<String, HashMap<i32, usize>>,
    /// A record received while waiting, delivered by the next poll.
    stashed: Option<OwnedMessage>,
}

impl Cluster {
    /// A reader with no partitions yet; large fetches, as a reader of backlogs wants.
    pub fn reader(&self) -> Result<ClusterReader, ClusterError> {
        let consumer = self.backlog_consumer(&[
            // assign() needs librdkafka's group machinery, though nothing is committed.
            ("group.id", "spool-assigned"),
            // Records deleted by retention under the reader: go on from the log start.
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
        ])?;
        Ok(ClusterReader {
            cluster: self.clone(),
            consumer,
            assigned: Vec::new(),
            index: HashMap::new(),
            stashed: None,
        })
    }

    /// The partitions of a topic (sorted), or [`ClusterError::TopicNotFound`].
    pub fn partitions_of(&self, topic: &str) -> Result<Vec<i32>, ClusterError> {
        let consumer = self.consumer(&[])?;
        Ok(self
            .topic_metadata(&consumer, topic)?
            .partitions
            .iter()
            .map(|p| p.id)
            .collect())
    }

    /// The names of the cluster's topics, sorted.
    pub fn topic_names(&self) -> Result<Vec<String>, ClusterError> {
        let consumer = self.consumer(&[])?;
        let metadata = self.metadata(&consumer, None)?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        Ok(names)
    }
}

impl ClusterReader {
    /// Whether `topic`/`partition` is assigned.
    pub fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        self.index
            .get(topic)
            .is_some_and(|p| p.contains_key(&partition))
    }

    /// Assigns a partition from `spec`, resolved and clamped as locally. Returns the clamp, if
    /// the offset asked for lay outside the log.
    pub fn assign(
        &mut self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<Option<Clamped>, ClusterError> {
        let (start, end) = self.cluster.watermarks(&self.consumer, topic, partition)?;
        let clamped = Clamped::resolve(spec, start, end, |ts| {
            self.offset_for_time(topic, partition, ts)
        })?;
        let (requested, end) = (clamped.requested, clamped.log_end);
        let offset = clamped.start();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| self.cluster.error("assign", e))?;
        self.consumer.incremental_assign(&tpl).map_err(|e| {
            self.cluster
                .error(&format!("assign {topic}/{partition}"), e)
        })?;
        self.index
            .entry(topic.to_string())
            .or_default()
            .insert(partition, self.assigned.len());
        self.assigned.push(Assigned {
            c_topic: CString::new(topic).expect("topic names have no NUL"),
            partition,
            position: offset,
            end_at_assign: end,
        });
        Ok((offset != requested).then_some(clamped))
    }

    /// The first offset whose timestamp is at or after `ts`, or `None` past the last record.
    fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        ts: i64,
    ) -> Result<Option<i64>, ClusterError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(ts))
            .map_err(|e| self.cluster.error("offsets for times", e))?;
        let what = format!("offset of {topic}/{partition} at a time");
        let found = self
            .consumer
            .offsets_for_times(tpl, self.cluster.timeout())
            .map_err(|e| self.cluster.error(&what, e))?;
        let offset = found
            .find_partition(topic, partition)
            .map(|e| e.offset())
            .unwrap_or(Offset::End);
        Ok(match offset {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        })
    }

    /// The log end offset of an assigned partition as last reported by the broker.
    fn log_end(&self, a: &Assigned) -> i64 {
        let (mut low, mut high) = (OFFSET_INVALID, OFFSET_INVALID);
        // SAFETY: the client pointer is valid while the consumer lives; the topic is a valid
        // C string; low and high are valid out-pointers. The call only reads librdkafka's
        // cache.
        unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                a.c_topic.as_ptr(),
                a.partition,
                &mut low,
                &mut high,
            );
        }
        if high < 0 {
            a.end_at_assign
        } else {
            high
        }
    }

    fn at_end(&self) -> bool {
        self.assigned.iter().all(|a| a.position >= self.log_end(a))
    }

    /// Delivers up to `budget` records. When a partition is behind its end and no record has
    /// arrived yet, waits a little for the fetch under way (rather than have the caller spin).
    pub fn poll<E, F>(&mut self, budget: usize, mut sink: F) -> Result<Polled, E>
    where
        E: From<ClusterError>,
        F: FnMut(&str, i32, RecordRef<'_>) -> Result<(), E>,
    {
        let mut delivered = 0;
        if let Some(message) = self.stashed.take() {
            self.deliver(&message, &mut sink)?;
            delivered += 1;
        }
        let first_wait = if delivered > 0 || self.at_end() {
            Duration::ZERO
        } else {
            FETCH_WAIT
        };
        while delivered < budget {
            let wait = if delivered == 0 {
                first_wait
            } else {
                Duration::ZERO
            };
            let message = match self.consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    self.check(e)?;
                    continue;
                }
            };
            deliver_borrowed(&self.index, &mut self.assigned, &message, &mut sink)?;
            delivered += 1;
        }
        Ok(Polled {
            delivered,
            all_at_end: delivered < budget && self.at_end(),
        })
    }

    fn deliver<E, F>(&mut self, message: &OwnedMessage, sink: &mut F) -> Result<(), E>
    where
        F: FnMut(&str, i32, RecordRef<'_>) -> Result<(), E>,
    {
        let headers: Vec<HeaderRef<'_>> = message.headers().map_or_else(Vec::new, |h| {
            h.iter()
                .map(|h| HeaderRef {
                    key: h.key.as_bytes(),
                    value: h.value,
                })
                .collect()
        });
        let record = RecordRef {
            offset: message.offset(),
            timestamp: message.timestamp().to_millis().unwrap_or(-1),
            key: message.key(),
            value: message.payload(),
            headers: Headers::List(&headers),
        };
        advance(
            &self.index,
            &mut self.assigned,
            message.topic(),
            message.partition(),
            message.offset(),
        );
        sink(message.topic(), message.partition(), record)
    }

    /// Waits up to `timeout` for a record (kept for the next poll); true when one came.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, ClusterError> {
        if self.stashed.is_some() {
            return Ok(true);
        }
        match self.consumer.poll(timeout) {
            None => Ok(false),
            Some(Ok(m)) => {
                self.stashed = Some(m.detach());
                Ok(true)
            }
            Some(Err(e)) => {
                self.check(e)?;
                Ok(false)
            }
        }
    }

    /// An error event of the consumer: fatal for the read when the topic or partition went
    /// away or may not be read; otherwise (a broker connection lost, a group coordinator the
    /// reader does not need) librdkafka retries, and `-v` shows it.
    fn check(&self, e: KafkaError) -> Result<(), ClusterError> {
        match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::Fatal,
            ) => Err(self.cluster.error("read", e)),
            _ if matches!(e, KafkaError::MessageConsumptionFatal(_)) => {
                Err(self.cluster.error("read", e))
            }
            _ => Ok(()),
        }
    }
}

/// Moves an assigned partition's position past `offset`.
fn advance(
    index: &HashMap<String, HashMap<i32, usize>>,
    assigned: &mut [Assigned],
    topic: &str,
    partition: i32,
    offset: i64,
) {
    if let Some(&i) = index.get(topic).and_then(|p| p.get(&partition)) {
        assigned[i].position = offset + 1;
    }
}

fn deliver_borrowed<E, F>(
    index: &HashMap<String, HashMap<i32, usize>>,
    assigned: &mut [Assigned],
    message: &BorrowedMessage<'_>,
    sink: &mut F,
) -> Result<(), E>
where
    F: FnMut(&str, i32, RecordRef<'_>) -> Result<(), E>,
{
    let owned_headers: Vec<HeaderRef<'_>>;
    let headers = match message.headers() {
        None => Headers::NONE,
        Some(h) => {
            owned_headers = h
                .iter()
                .map(|h| HeaderRef {
                    key: h.key.as_bytes(),
                    value: h.value,
                })
                .collect();
            Headers::List(&owned_headers)
        }
    };
    let record = RecordRef {
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().unwrap_or(-1),
        key: message.key(),
        value: message.payload(),
        headers,
    };
    let (topic, partition) = (message.topic(), message.partition());
    advance(index, assigned, topic, partition, message.offset());
    sink(topic, partition, record)
}
