//! Topic operations on either target, and the views `spool topic` renders.
//!
//! The local side reads and changes the store ([`crate::store`]); the Kafka side is
//! [`crate::kafka::topics`]. Both fill the same views: fields that only one target knows are
//! `None` (or empty) on the other and left out of JSON and YAML, so a local store's JSON is
//! what it always was and a cluster's adds LEADER, REPLICAS and ISR.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Target, TargetError};
use crate::store::{Store, StoreError, Topic};

/// One line of `spool topic list`.
#[derive(Debug, Clone, Serialize)]
pub struct TopicSummary {
    pub name: String,
    pub partitions: Option<i32>,
    /// Copies of each partition (a cluster's topics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// Records kept: log end offset minus log start offset, summed over the partitions.
    pub records: Option<i64>,
    /// Bytes on disk (a local store's topics only: a cluster's brokers keep theirs).
    pub size_bytes: Option<u64>,
    /// Why the topic could not be read (a damaged topic.yaml), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `spool topic describe` of one topic.
#[derive(Debug, Clone, Serialize)]
pub struct TopicDescription {
    pub name: String,
    /// The topic id (base64, as Kafka prints it), where known.
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub partition_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// The configs the topic sets itself (not its defaults).
    pub configs: BTreeMap<String, String>,
    /// What the topic's configs are when it sets none, for people.
    #[serde(skip)]
    pub defaults: &'static str,
    /// On a cluster: every config with its value and where that value comes from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_sources: Vec<ConfigSetting>,
    pub partitions: Vec<PartitionDescription>,
}

/// A config of a topic on a cluster, with its source.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigSetting {
    pub name: String,
    pub value: Option<String>,
    /// `topic` (set on the topic), `broker` (a broker's setting), `default`, ...
    pub source: String,
    pub sensitive: bool,
}

/// One partition in `spool topic describe`.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionDescription {
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// Local store only: bytes on disk, segment files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
    /// Local store only: CreateTime of the first and last record (null when empty).
    #[serde(skip_serializing_if = "Timestamps::is_unknown")]
    pub first_timestamp: Timestamps,
    #[serde(skip_serializing_if = "Timestamps::is_unknown")]
    pub last_timestamp: Timestamps,
    /// Cluster only: the leader's broker id (-1 when there is none), the replicas and the
    /// in-sync replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isr: Option<Vec<i32>>,
}

/// A timestamp that is known (a value, or null for an empty log) or not known at all (a
/// cluster does not say, and the field is left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamps {
    Known(Option<i64>),
    Unknown,
}

impl Timestamps {
    fn is_unknown(&self) -> bool {
        *self == Timestamps::Unknown
    }

    /// The timestamp, if known and present.
    pub fn get(&self) -> Option<i64> {
        match self {
            Timestamps::Known(t) => *t,
            Timestamps::Unknown => None,
        }
    }
}

impl Serialize for Timestamps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopicSpec {
    pub name: String,
    pub partitions: i32,
    /// `None`: the target's default (one copy locally, the brokers' default on a cluster).
    pub replication_factor: Option<i32>,
    pub configs: BTreeMap<String, String>,
}

/// What `alter --partitions` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionChange {
    pub before: i32,
    pub after: i32,
}

impl Target {
    /// Creates a topic. An existing one is [`TargetError::is_topic_exists`].
    pub fn create_topic(&self, spec: &NewTopicSpec) -> Result<(), TargetError> {
        match self {
            Target::Local(store) => {
                if let Some(n) = spec.replication_factor.filter(|n| *n != 1) {
                    return Err(TargetError::Unsupported(format!(
                        "--replication-factor {n}: a local store keeps one copy of each partition (1 is the only factor it has); replication needs a Kafka cluster (-b HOST:PORT)"
                    )));
                }
                store.create_topic(&spec.name, spec.partitions, spec.configs.clone())?;
                Ok(())
            }
            Target::Kafka(cluster) => Ok(cluster.create_topic(spec)?),
        }
    }

    /// Every topic's summary, sorted by name. A local topic that cannot be read is listed
    /// with its error: one bad topic.yaml must not hide the others.
    pub fn list_topics(&self) -> Result<Vec<TopicSummary>, TargetError> {
        match self {
            Target::Local(store) => Ok(store
                .list_topics()?
                .into_iter()
                .map(|name| {
                    summarize_local(store, &name).unwrap_or_else(|e| TopicSummary {
                        name,
                        partitions: None,
                        replication_factor: None,
                        records: None,
                        size_bytes: None,
                        error: Some(error_chain(&e)),
                    })
                })
                .collect()),
            Target::Kafka(cluster) => Ok(cluster.list_topics()?),
        }
    }

    /// Describes one topic.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, TargetError> {
        match self {
            Target::Local(store) => describe_local(&store.topic(name)?),
            Target::Kafka(cluster) => Ok(cluster.describe_topic(name)?),
        }
    }

    /// The error for a topic the target does not have.
    pub fn topic_not_found(&self, name: &str) -> TargetError {
        match self {
            Target::Local(_) => StoreError::TopicNotFound(name.to_owned()).into(),
            Target::Kafka(cluster) => cluster.topic_not_found(name).into(),
        }
    }

    /// Whether a topic exists.
    pub fn topic_exists(&self, name: &str) -> Result<bool, TargetError> {
        match self {
            Target::Local(store) => Ok(store.topic_exists(name)?),
            Target::Kafka(cluster) => Ok(cluster.topic_exists(name)?),
        }
    }

    /// Raises a topic's partition count (a decrease is refused).
    pub fn add_partitions(&self, name: &str, count: i64) -> Result<PartitionChange, TargetError> {
        match self {
            Target::Local(store) => {
                let before = store.topic(name)?.partition_count();
                let after = store.add_partitions(name, count)?.partition_count();
                Ok(PartitionChange { before, after })
            }
            Target::Kafka(cluster) => Ok(cluster.add_partitions(name, count)?),
        }
    }

    /// Sets topic configs; an empty value removes the config (back to its default).
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: &BTreeMap<String, String>,
    ) -> Result<(), TargetError> {
        match self {
            Target::Local(store) => {
                store.alter_configs(name, changes)?;
                Ok(())
            }
            Target::Kafka(cluster) => Ok(cluster.alter_topic_configs(name, changes)?),
        }
    }

    /// Deletes a topic (locally with the groups' committed offsets for it, as Kafka does).
    pub fn delete_topic(&self, name: &str) -> Result<(), TargetError> {
        match self {
            Target::Local(store) => Ok(crate::group::reset::delete_topic(store, name)?),
            Target::Kafka(cluster) => Ok(cluster.delete_topic(name)?),
        }
    }
}

fn summarize_local(store: &Store, name: &str) -> Result<TopicSummary, StoreError> {
    let topic = store.topic(name)?;
    let infos = topic
        .partitions()
        .iter()
        .map(|p| p.info())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopicSummary {
        name: name.to_owned(),
        partitions: Some(topic.partition_count()),
        replication_factor: None,
        records: Some(
            infos
                .iter()
                .map(|i| i.log_end_offset - i.log_start_offset)
                .sum(),
        ),
        size_bytes: Some(infos.iter().map(|i| i.size_bytes).sum()),
        error: None,
    })
}

/// The description of a local topic.
pub fn describe_local(topic: &Topic) -> Result<TopicDescription, TargetError> {
    let partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            let i = p.info()?;
            Ok(PartitionDescription {
                partition: i.partition,
                log_start_offset: i.log_start_offset,
                log_end_offset: i.log_end_offset,
                size_bytes: Some(i.size_bytes),
                segments: Some(i.segments),
                first_timestamp: Timestamps::Known(i.first_timestamp),
                last_timestamp: Timestamps::Known(i.last_timestamp),
                leader: None,
                replicas: None,
                isr: None,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(TopicDescription {
        name: topic.name().to_owned(),
        id: Some(topic.meta.id.clone()),
        created_at: Some(topic.meta.created_at.clone()),
        partition_count: topic.partition_count(),
        replication_factor: None,
        configs: topic.meta.configs.clone(),
        defaults: "(defaults: keep forever, 1GiB segments)",
        config_sources: Vec::new(),
        partitions,
    })
}

/// An error and its causes, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}
