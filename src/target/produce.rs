//! `spool produce` on either target: open a producer of a topic (creating the topic when
//! asked), which the produce pipeline ([`crate::produce::pipeline`]) feeds, and which closes
//! with the same summary on both targets.
//!
//! Locally the records are appended to the partition logs ([`crate::produce::producer`]); on a
//! cluster they go through librdkafka ([`crate::kafka::produce`]). Options only one target
//! honours (`--fsync` here, `--acks` there) are refused on the other.

use std::time::Duration;

use super::{Target, TargetError};
use crate::kafka::produce::{Acks, ClusterProducer, ClusterProducerSettings};
use crate::produce::pipeline::Sink;
use crate::produce::producer::{ProduceError, Producer, ProducerConfig, Summary};
use crate::record::Header;
use crate::store::compression::Compression;
use crate::store::recovery::Truncation;
use crate::store::{StoreError, SyncPolicy};
use crate::target::topics::NewTopicSpec;

/// How to produce, as the command line says.
#[derive(Debug, Clone)]
pub struct ProduceSettings {
    /// Create a missing topic with one partition.
    pub create: bool,
    pub batch_size: u64,
    pub linger: Duration,
    /// `--max-message-bytes`, if given.
    pub max_message_bytes: Option<u64>,
    /// `-z`, if given.
    pub compression: Option<Compression>,
    /// `--fsync`, if given (local store only).
    pub fsync: Option<SyncPolicy>,
    /// `--acks`, if given (cluster only).
    pub acks: Option<Acks>,
}

/// Something the command should tell its user while producing.
#[derive(Debug)]
pub enum Notice {
    /// The topic did not exist and was created with one partition.
    CreatedTopic(String),
    /// `--max-message-bytes` is above the topic's own limit, which applies.
    MaxMessageBytesAboveTopic { asked: u64, topic_max: u64 },
    /// The topic's compression.type names another codec than `-z`.
    CompressionOverridden {
        topic_codec: Compression,
        asked: Compression,
    },
}

/// A producer of one topic on either target.
// One per command: boxing the larger variant would only add a pointer to the hot path.
#[allow(clippy::large_enum_variant)]
pub enum TargetProducer {
    Local(Producer),
    Kafka(ClusterProducer),
}

impl Target {
    /// Opens a producer of `topic`: the topic is created (one partition) if it is missing and
    /// `settings.create` says so; `notice` hears about that and about settings overridden by
    /// the topic's configs.
    pub fn open_producer(
        &self,
        topic: &str,
        settings: &ProduceSettings,
        notice: &mut dyn FnMut(Notice),
    ) -> Result<TargetProducer, TargetError> {
        match self {
            Target::Local(store) => {
                if settings.acks.is_some() {
                    return Err(TargetError::Unsupported(
                        "--acks applies to a Kafka cluster (-b): a local store acknowledges a record once it is appended, and --fsync says when it is on disk".into(),
                    ));
                }
                let topic = match store.topic(topic) {
                    Ok(t) => t,
                    Err(StoreError::TopicNotFound(_)) if settings.create => {
                        match store.create_topic(topic, 1, Default::default()) {
                            Ok(t) => {
                                notice(Notice::CreatedTopic(topic.to_string()));
                                t
                            }
                            // Another producer created it at the same moment.
                            Err(StoreError::TopicExists(_)) => store.topic(topic)?,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                };
                // The topic's max.message.bytes is the log's limit (Kafka's broker enforces it
                // whatever the client says): --max-message-bytes can only lower it.
                let topic_max = topic.log_config.max_message_bytes;
                if let Some(asked) = settings.max_message_bytes.filter(|m| *m > topic_max) {
                    notice(Notice::MaxMessageBytesAboveTopic { asked, topic_max });
                }
                let max_message_bytes = settings
                    .max_message_bytes
                    .map_or(topic_max, |m| m.min(topic_max));
                // The topic's compression.type wins over -z, as a Kafka broker recompresses
                // what a producer sent with another codec.
                let compression = match (topic.log_config.compression, settings.compression) {
                    (Some(topic_codec), Some(asked)) if topic_codec != asked => {
                        notice(Notice::CompressionOverridden { topic_codec, asked });
                        topic_codec
                    }
                    (Some(topic_codec), _) => topic_codec,
                    (None, asked) => asked.unwrap_or(Compression::None),
                };
                let config = ProducerConfig {
                    batch_size: settings.batch_size.clamp(1, usize::MAX as u64) as usize,
                    max_message_bytes,
                    sync: settings.fsync.unwrap_or(SyncPolicy::OnRequest),
                    compression,
                };
                Ok(TargetProducer::Local(Producer::new(topic, config)))
            }
            Target::Kafka(cluster) => {
                if settings.fsync.is_some() {
                    return Err(TargetError::Unsupported(
                        "--fsync applies to a local store: a Kafka cluster's brokers decide when they write to disk, and --acks all (the default) waits until every in-sync replica has each record".into(),
                    ));
                }
                let consumer = cluster.consumer(&[])?;
                let partitions = match cluster.topic_metadata(&consumer, topic) {
                    Ok(meta) => meta.partition_count(),
                    Err(crate::kafka::ClusterError::TopicNotFound { .. }) if settings.create => {
                        let spec = NewTopicSpec {
                            name: topic.to_string(),
                            partitions: 1,
                            replication_factor: None,
                            configs: Default::default(),
                        };
                        match cluster.create_topic(&spec) {
                            Ok(()) => notice(Notice::CreatedTopic(topic.to_string())),
                            Err(e)
                                if e.code()
                                    == Some(
                                        rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                                    ) => {}
                            Err(e) => return Err(e.into()),
                        }
                        cluster.topic_metadata(&consumer, topic)?.partition_count()
                    }
                    Err(e) => return Err(e.into()),
                };
                let producer = cluster.producer(
                    topic,
                    partitions,
                    &ClusterProducerSettings {
                        acks: settings.acks.unwrap_or_default(),
                        compression: settings.compression,
                        batch_size: settings.batch_size,
                        linger: settings.linger,
                        max_message_bytes: settings.max_message_bytes,
                    },
                )?;
                Ok(TargetProducer::Kafka(producer))
            }
        }
    }
}

impl TargetProducer {
    /// The largest record accepted, as a batch.
    pub fn max_message_bytes(&self) -> u64 {
        match self {
            TargetProducer::Local(p) => p.max_message_bytes(),
            TargetProducer::Kafka(p) => p.max_message_bytes(),
        }
    }

    /// Sends what is pending and waits until every record was appended (and synced) or
    /// acknowledged; `Ok` only if all were.
    pub fn close(&mut self) -> Result<Summary, ProduceError> {
        match self {
            TargetProducer::Local(p) => p.close(),
            TargetProducer::Kafka(p) => p.close(),
        }
    }

    /// What was appended or acknowledged so far.
    pub fn summary(&self) -> Summary {
        match self {
            TargetProducer::Local(p) => p.summary(),
            TargetProducer::Kafka(p) => p.summary(),
        }
    }

    /// Damage that crash recovery cut from local partitions while appending.
    pub fn take_truncations(&mut self) -> Vec<Truncation> {
        match self {
            TargetProducer::Local(p) => p.take_truncations(),
            TargetProducer::Kafka(_) => Vec::new(),
        }
    }
}

impl Sink for TargetProducer {
    fn topic_name(&self) -> &str {
        match self {
            TargetProducer::Local(p) => Sink::topic_name(p),
            TargetProducer::Kafka(p) => p.topic_name(),
        }
    }

    fn partition_count(&self) -> i32 {
        match self {
            TargetProducer::Local(p) => Sink::partition_count(p),
            TargetProducer::Kafka(p) => p.partition_count(),
        }
    }

    #[inline]
    fn send(
        &mut self,
        line: u64,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<Option<i32>, ProduceError> {
        match self {
            TargetProducer::Local(p) => p.send(partition, timestamp, key, value, headers),
            TargetProducer::Kafka(p) => p.send(line, partition, timestamp, key, value, headers),
        }
    }

    #[inline]
    fn would_send(
        &self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> bool {
        match self {
            TargetProducer::Local(p) => p.would_send(partition, timestamp, key, value, headers),
            TargetProducer::Kafka(p) => p.would_send(partition, timestamp, key, value, headers),
        }
    }

    #[inline]
    fn send_if_room(
        &mut self,
        line: u64,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<bool, ProduceError> {
        match self {
            TargetProducer::Local(p) => p.send_if_room(partition, timestamp, key, value, headers),
            TargetProducer::Kafka(p) => {
                p.send_if_room(line, partition, timestamp, key, value, headers)
            }
        }
    }

    fn send_partition(&mut self, partition: i32) -> Result<bool, ProduceError> {
        match self {
            TargetProducer::Local(p) => p.send_partition(partition),
            TargetProducer::Kafka(p) => p.send_partition(partition),
        }
    }

    fn flush(&mut self) -> Result<Vec<i32>, ProduceError> {
        match self {
            TargetProducer::Local(p) => p.flush(),
            TargetProducer::Kafka(p) => p.flush(),
        }
    }
}
