//! Topic operations on a Kafka cluster: the cluster side of [`crate::target::topics`].
//!
//! Metadata (partitions, leaders, replicas, ISR) comes from a Metadata request through a
//! consumer (whose `allow.auto.create.topics` is off, so looking at a topic never creates it),
//! log start and end offsets from ListOffsets (`fetch_watermarks`), configs from
//! DescribeConfigs, changes through the admin API. Kafka's AlterConfigs replaces a topic's
//! whole set of configs, so a change is applied to the configs the topic sets now.

use std::collections::BTreeMap;

use rdkafka::admin::{
    AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
    TopicResult,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::MetadataTopic;
use rdkafka::types::RDKafkaErrorCode;

use super::{block_on, Cluster, ClusterContext, ClusterError};
use crate::target::topics::{
    ConfigSetting, NewTopicSpec, PartitionChange, PartitionDescription, Timestamps,
    TopicDescription, TopicSummary,
};

impl Cluster {
    /// A consumer for metadata and offsets queries.
    fn query_consumer(&self) -> Result<BaseConsumer<ClusterContext>, ClusterError> {
        self.consumer(&[])
    }

    /// The metadata of one topic, or [`ClusterError::TopicNotFound`].
    pub fn topic_metadata(
        &self,
        consumer: &BaseConsumer<ClusterContext>,
        name: &str,
    ) -> Result<TopicMetadata, ClusterError> {
        let metadata = self.metadata(consumer, Some(name))?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| self.topic_not_found(name))?;
        self.check_topic(topic)?;
        Ok(TopicMetadata::of(topic))
    }

    fn check_topic(&self, topic: &MetadataTopic) -> Result<(), ClusterError> {
        match topic.error().map(RDKafkaErrorCode::from) {
            None => Ok(()),
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownTopicId,
            ) => Err(self.topic_not_found(topic.name())),
            Some(code) => Err(ClusterError::Refused {
                what: format!("metadata of topic {}", topic.name()),
                code,
            }),
        }
    }

    /// The error for a topic the cluster does not have.
    pub fn topic_not_found(&self, name: &str) -> ClusterError {
        ClusterError::TopicNotFound {
            topic: name.to_string(),
            brokers: self.brokers.clone(),
        }
    }

    /// Whether the cluster has the topic.
    pub fn topic_exists(&self, name: &str) -> Result<bool, ClusterError> {
        let consumer = self.query_consumer()?;
        match self.topic_metadata(&consumer, name) {
            Ok(_) => Ok(true),
            Err(ClusterError::TopicNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The log start and end offsets of a partition.
    pub fn watermarks(
        &self,
        consumer: &BaseConsumer<ClusterContext>,
        topic: &str,
        partition: i32,
    ) -> Result<(i64, i64), ClusterError> {
        consumer
            .fetch_watermarks(topic, partition, self.timeout)
            .map_err(|e| self.error(&format!("offsets of {topic}/{partition}"), e))
    }

    /// `spool topic list` on the cluster.
    pub fn list_topics(&self) -> Result<Vec<TopicSummary>, ClusterError> {
        let consumer = self.query_consumer()?;
        let metadata = self.metadata(&consumer, None)?;
        let mut summaries = Vec::new();
        for topic in metadata.topics() {
            let meta = TopicMetadata::of(topic);
            let summary = match self.check_topic(topic) {
                Ok(()) => {
                    let mut records = 0;
                    for p in &meta.partitions {
                        let (low, high) = self.watermarks(&consumer, &meta.name, p.id)?;
                        records += high - low;
                    }
                    TopicSummary {
                        name: meta.name.clone(),
                        partitions: Some(meta.partitions.len() as i32),
                        replication_factor: Some(meta.replication_factor()),
                        records: Some(records),
                        size_bytes: None,
                        error: None,
                    }
                }
                Err(e) => TopicSummary {
                    name: meta.name.clone(),
                    partitions: None,
                    replication_factor: None,
                    records: None,
                    size_bytes: None,
                    error: Some(e.to_string()),
                },
            };
            summaries.push(summary);
        }
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(summaries)
    }

    /// `spool topic describe` of one topic on the cluster.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClusterError> {
        let consumer = self.query_consumer()?;
        let meta = self.topic_metadata(&consumer, name)?;
        let mut partitions = Vec::with_capacity(meta.partitions.len());
        for p in &meta.partitions {
            let (low, high) = self.watermarks(&consumer, name, p.id)?;
            partitions.push(PartitionDescription {
                partition: p.id,
                log_start_offset: low,
                log_end_offset: high,
                size_bytes: None,
                segments: None,
                first_timestamp: Timestamps::Unknown,
                last_timestamp: Timestamps::Unknown,
                leader: Some(p.leader),
                replicas: Some(p.replicas.clone()),
                isr: Some(p.isr.clone()),
            });
        }
        let config_sources = self.topic_configs(name)?;
        let configs = config_sources
            .iter()
            .filter(|c| c.source == "topic")
            .filter_map(|c| Some((c.name.clone(), c.value.clone()?)))
            .collect();
        Ok(TopicDescription {
            name: name.to_string(),
            id: None,
            created_at: None,
            partition_count: meta.partitions.len() as i32,
            replication_factor: Some(meta.replication_factor()),
            configs,
            defaults: "(the cluster's defaults)",
            config_sources,
            partitions,
        })
    }

    /// Every config of a topic with its source (DescribeConfigs), sorted by name.
    pub fn topic_configs(&self, name: &str) -> Result<Vec<ConfigSetting>, ClusterError> {
        let admin = self.admin()?;
        let what = format!("describe the configs of topic {name}");
        let results = block_on(
            admin.describe_configs(&[ResourceSpecifier::Topic(name)], &self.admin_options()),
        )
        .map_err(|e| self.error(&what, e))?;
        let mut settings = Vec::new();
        for result in results {
            let resource = result.map_err(|code| match code {
                RDKafkaErrorCode::UnknownTopicOrPartition => self.topic_not_found(name),
                code => ClusterError::Refused {
                    what: what.clone(),
                    code,
                },
            })?;
            for entry in resource.entries {
                settings.push(ConfigSetting {
                    source: source_name(entry.source).to_string(),
                    value: if entry.is_sensitive {
                        None
                    } else {
                        entry.value
                    },
                    sensitive: entry.is_sensitive,
                    name: entry.name,
                });
            }
        }
        settings.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(settings)
    }

    /// Creates a topic (CreateTopics), and waits until the cluster's metadata shows it, so
    /// the next command finds it.
    pub fn create_topic(&self, spec: &NewTopicSpec) -> Result<(), ClusterError> {
        // A metadata request first: an unreachable cluster is reported with its reason.
        self.topic_exists(&spec.name)?;
        let admin = self.admin()?;
        // -1: the brokers' default.replication.factor (KIP-464), as kafka-topics.sh sends.
        let mut topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication_factor.unwrap_or(-1)),
        );
        for (key, value) in &spec.configs {
            topic = topic.set(key, value);
        }
        let what = format!("create topic {}", spec.name);
        let results = block_on(admin.create_topics(&[topic], &self.admin_options()))
            .map_err(|e| self.error(&what, e))?;
        self.check_topic_results(&what, results)?;
        self.await_metadata(&spec.name, |m| {
            m.is_some_and(|m| m.partitions.len() as i32 >= spec.partitions)
        })
    }

    /// Raises the partition count (CreatePartitions).
    pub fn add_partitions(&self, name: &str, count: i64) -> Result<PartitionChange, ClusterError> {
        let consumer = self.query_consumer()?;
        let before = self.topic_metadata(&consumer, name)?.partitions.len() as i32;
        let after = i32::try_from(count).unwrap_or(i32::MAX);
        if after < before {
            return Err(ClusterError::Refused {
                what: format!(
                    "topic '{name}' has {before} partitions and cannot have fewer ({after} asked); partitions can only be added"
                ),
                code: RDKafkaErrorCode::InvalidPartitions,
            });
        }
        if after == before {
            return Ok(PartitionChange { before, after });
        }
        let admin = self.admin()?;
        let what = format!("add partitions to topic {name}");
        let results = block_on(admin.create_partitions(
            &[NewPartitions::new(name, after as usize)],
            &self.admin_options(),
        ))
        .map_err(|e| self.error(&what, e))?;
        self.check_topic_results(&what, results)?;
        self.await_metadata(name, |m| {
            m.is_some_and(|m| m.partitions.len() as i32 >= after)
        })?;
        Ok(PartitionChange { before, after })
    }

    /// Sets (and with an empty value removes) topic configs. Kafka's AlterConfigs replaces the
    /// whole set, so the change is applied to the configs the topic sets now.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: &BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        let mut configs: BTreeMap<String, String> = self
            .topic_configs(name)?
            .into_iter()
            .filter(|c| c.source == "topic")
            .filter_map(|c| Some((c.name, c.value?)))
            .collect();
        for (key, value) in changes {
            if value.is_empty() {
                configs.remove(key);
            } else {
                configs.insert(key.clone(), value.clone());
            }
        }
        let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name));
        for (key, value) in &configs {
            alter = alter.set(key, value);
        }
        let admin = self.admin()?;
        let what = format!("alter the configs of topic {name}");
        let results = block_on(admin.alter_configs(&[alter], &self.admin_options()))
            .map_err(|e| self.error(&what, e))?;
        for result in results {
            if let Err((_, code)) = result {
                return Err(match code {
                    RDKafkaErrorCode::UnknownTopicOrPartition => self.topic_not_found(name),
                    code => ClusterError::Refused {
                        what: what.clone(),
                        code,
                    },
                });
            }
        }
        Ok(())
    }

    /// Deletes a topic (DeleteTopics).
    pub fn delete_topic(&self, name: &str) -> Result<(), ClusterError> {
        if !self.topic_exists(name)? {
            return Err(self.topic_not_found(name));
        }
        let admin = self.admin()?;
        let what = format!("delete topic {name}");
        let results = block_on(admin.delete_topics(&[name], &self.admin_options()))
            .map_err(|e| self.error(&what, e))?;
        self.check_topic_results(&what, results)?;
        self.await_metadata(name, |m| m.is_none())
    }

    fn check_topic_results(
        &self,
        what: &str,
        results: Vec<TopicResult>,
    ) -> Result<(), ClusterError> {
        for result in results {
            match result {
                Ok(_) => {}
                Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    return Err(self.topic_not_found(&name))
                }
                Err((_, code)) => {
                    return Err(ClusterError::Refused {
                        what: what.to_string(),
                        code,
                    })
                }
            }
        }
        Ok(())
    }

    /// Waits (within the timeout) until the metadata of `name` satisfies `done`: an admin
    /// request returns once the controller acted, before every broker's metadata says so.
    /// Past the timeout it returns anyway: the change was made.
    fn await_metadata(
        &self,
        name: &str,
        done: impl Fn(Option<&TopicMetadata>) -> bool,
    ) -> Result<(), ClusterError> {
        let consumer = self.query_consumer()?;
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            let meta = match self.topic_metadata(&consumer, name) {
                Ok(m) => Some(m),
                Err(ClusterError::TopicNotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            if done(meta.as_ref()) || std::time::Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Kafka's config sources as `topic describe` names them.
fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::DynamicBroker => "broker",
        ConfigSource::DynamicDefaultBroker => "cluster",
        ConfigSource::StaticBroker => "broker-static",
        ConfigSource::Default => "default",
        ConfigSource::Unknown => "unknown",
    }
}

/// What a Metadata answer says of a topic, owned.
#[derive(Debug, Clone)]
pub struct TopicMetadata {
    pub name: String,
    pub partitions: Vec<PartitionMetadata>,
}

/// What a Metadata answer says of a partition.
#[derive(Debug, Clone)]
pub struct PartitionMetadata {
    pub id: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl TopicMetadata {
    fn of(topic: &MetadataTopic) -> TopicMetadata {
        let mut partitions: Vec<PartitionMetadata> = topic
            .partitions()
            .iter()
            .map(|p| PartitionMetadata {
                id: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
            })
            .collect();
        partitions.sort_by_key(|p| p.id);
        TopicMetadata {
            name: topic.name().to_string(),
            partitions,
        }
    }

    /// The partition count.
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// The replication factor: the most replicas any partition has.
    pub fn replication_factor(&self) -> i32 {
        self.partitions
            .iter()
            .map(|p| p.replicas.len() as i32)
            .max()
            .unwrap_or(0)
    }
}
