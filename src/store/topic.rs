//! Topic metadata (`topics/<topic>/topic.yaml`) and the topic handle that gives out partitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::LogConfig;
use super::error::{Result, StoreError};
use super::fsutil;
use super::partition::Partition;

pub const TOPIC_FILE: &str = "topic.yaml";

/// The content of `topic.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    /// Kafka-style topic id: 16 random bytes, URL-safe base64 without padding.
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    pub partitions: i32,
    /// Kafka config names to values, only those set explicitly.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    pub fn load(path: &Path) -> Result<TopicMeta> {
        let meta: TopicMeta = super::yaml::load(path)?.ok_or_else(|| StoreError::BadMetadata {
            path: path.to_owned(),
            reason: "the file is missing".into(),
        })?;
        if meta.partitions < 1 {
            return Err(StoreError::BadMetadata {
                path: path.to_owned(),
                reason: format!("partitions is {}, it must be at least 1", meta.partitions),
            });
        }
        LogConfig::from_configs(&meta.configs).map_err(|e| StoreError::BadMetadata {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(meta)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        super::yaml::save(path, self)
    }
}

/// An existing topic.
#[derive(Debug, Clone)]
pub struct Topic {
    pub meta: TopicMeta,
    pub dir: PathBuf,
    pub log_config: LogConfig,
}

impl Topic {
    pub fn load(dir: &Path) -> Result<Topic> {
        let meta = TopicMeta::load(&dir.join(TOPIC_FILE))?;
        let log_config = LogConfig::from_configs(&meta.configs)?;
        Ok(Topic {
            meta,
            dir: dir.to_owned(),
            log_config,
        })
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn partition_count(&self) -> i32 {
        self.meta.partitions
    }

    pub fn partition(&self, id: i32) -> Result<Partition> {
        if id < 0 || id >= self.meta.partitions {
            return Err(StoreError::PartitionNotFound {
                topic: self.meta.name.clone(),
                partition: id,
                count: self.meta.partitions,
            });
        }
        Ok(Partition {
            topic: self.meta.name.clone(),
            id,
            dir: self.dir.join(id.to_string()),
            config: self.log_config,
        })
    }

    pub fn partitions(&self) -> Vec<Partition> {
        (0..self.meta.partitions)
            .map(|id| self.partition(id).expect("id in range"))
            .collect()
    }
}

/// A new topic id, in Kafka's form.
pub fn new_topic_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(fsutil::random_bytes())
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}
