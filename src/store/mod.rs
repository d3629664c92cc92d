//! The log: a store directory of topics, each a set of partition logs in Kafka's segment format.
//!
//! ```text
//! spool.yaml                          format version
//! topics/<topic>/topic.yaml           partitions, configs, id, created-at
//! topics/<topic>/<partition>/         segments (.log/.index/.timeindex), log-start-offset, .lock
//! tmp/                                topics being created or deleted (same file system, so
//!                                     they appear and vanish with one rename)
//! ```
//!
//! Topic creation builds the whole topic in `tmp/` and renames it into place, so a topic is
//! either complete or absent, and two processes creating the same topic cannot both succeed.

pub mod batch;
pub mod compression;
pub mod config;
pub mod crc;
pub mod error;
pub mod fsutil;
pub mod head;
pub mod index;
pub mod lock;
pub mod partition;
pub mod raw;
pub mod readahead;
pub mod reader;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod topic;
pub mod verify;
pub mod writer;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use config::LogConfig;
pub use error::{Result, StoreError};
pub use partition::{Partition, PartitionInfo};
pub use reader::PartitionReader;
pub use topic::{Topic, TopicMeta};
pub use writer::{PartitionWriter, SyncPolicy};

use crate::name::{self, NameKind};
use error::IoContext;

/// The store format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
pub const STORE_FILE: &str = "spool.yaml";
/// Taken while `spool.yaml` is rewritten (the cluster id is chosen once).
const STORE_LOCK_FILE: &str = ".spool.lock";
/// Kafka's limit is far higher, but a local directory with more partitions than this is a typo.
pub const MAX_PARTITIONS: i32 = 10_000;

#[derive(Debug, Serialize, Deserialize)]
struct StoreMeta {
    format_version: u32,
    #[serde(default)]
    created_at: Option<String>,
    /// The cluster id `spool serve` reports (Kafka's form: 16 random bytes, URL-safe base64),
    /// chosen by the first server on this store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_id: Option<String>,
}

/// A store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, which need not exist yet (it is created on first write).
    /// A store written by a newer spool is refused.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        let meta_path = store.root.join(STORE_FILE);
        match std::fs::read_to_string(&meta_path) {
            Ok(text) => {
                let meta: StoreMeta =
                    serde_yaml::from_str(&text).map_err(|e| StoreError::BadMetadata {
                        path: meta_path.clone(),
                        reason: e.to_string(),
                    })?;
                if meta.format_version > FORMAT_VERSION {
                    return Err(StoreError::FormatTooNew {
                        path: store.root.clone(),
                        found: meta.format_version,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => store.check_may_become_store()?,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(StoreError::NotADirectory { path: store.root })
            }
            Err(e) => return Err(e).at("read", &meta_path),
        }
        Ok(store)
    }

    /// A root without `spool.yaml` is a store only if it is missing, empty or holds nothing
    /// but a store's own entries (one being created by another process right now): `--dir /etc`
    /// must not scatter `topics/` and `groups/` among someone else's files.
    fn check_may_become_store(&self) -> Result<()> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(StoreError::NotADirectory {
                    path: self.root.clone(),
                })
            }
            Err(e) => return Err(e).at("list", &self.root),
        };
        for entry in entries {
            let entry = entry.at("list", &self.root)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // `.spool.yaml.tmp-<pid>` while spool.yaml is written, `.spool.lock` beside it.
            let own = matches!(name.as_ref(), "topics" | "groups" | "tmp" | STORE_FILE)
                || name.starts_with(".spool.");
            if !own {
                return Err(StoreError::NotAStore {
                    path: self.root.clone(),
                });
            }
        }
        Ok(())
    }

    /// `$SPOOL_DIR` is read by the CLI; this is the fallback: the per-user data directory.
    pub fn default_root() -> PathBuf {
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("spool")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn topics_dir(&self) -> PathBuf {
        self.root.join("topics")
    }

    pub fn groups_dir(&self) -> PathBuf {
        self.root.join("groups")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Creates the store's directories and `spool.yaml` if missing.
    pub fn ensure_created(&self) -> Result<()> {
        for dir in [self.topics_dir(), self.groups_dir(), self.tmp_dir()] {
            fsutil::create_dir_all_synced(&dir).at("create", &dir)?;
        }
        let meta_path = self.root.join(STORE_FILE);
        if !meta_path.exists() {
            let meta = StoreMeta {
                format_version: FORMAT_VERSION,
                created_at: Some(topic::rfc3339_ms(fsutil::now_ms())),
                cluster_id: None,
            };
            let text = serde_yaml::to_string(&meta).expect("store metadata serializes");
            fsutil::write_atomic(&meta_path, text.as_bytes()).at("write", &meta_path)?;
        }
        Ok(())
    }

    /// The store's cluster id (for `spool serve`), chosen and recorded in `spool.yaml` the
    /// first time it is asked for.
    pub fn cluster_id(&self) -> Result<String> {
        self.ensure_created()?;
        let meta_path = self.root.join(STORE_FILE);
        let _lock = lock::OwnedLock::acquire_path(&self.root.join(STORE_LOCK_FILE))
            .at("lock", &meta_path)?;
        let text = std::fs::read_to_string(&meta_path).at("read", &meta_path)?;
        let mut meta: StoreMeta =
            serde_yaml::from_str(&text).map_err(|e| StoreError::BadMetadata {
                path: meta_path.clone(),
                reason: e.to_string(),
            })?;
        if let Some(id) = &meta.cluster_id {
            return Ok(id.clone());
        }
        let id = topic::new_topic_id();
        meta.cluster_id = Some(id.clone());
        let text = serde_yaml::to_string(&meta).expect("store metadata serializes");
        fsutil::write_atomic(&meta_path, text.as_bytes()).at("write", &meta_path)?;
        Ok(id)
    }

    /// The directory of a topic, after checking its name and that it is no symbolic link.
    pub fn topic_dir(&self, name: &str) -> Result<PathBuf> {
        name::validate(NameKind::Topic, name)?;
        let dir = self.topics_dir().join(name);
        refuse_symlink(&dir)?;
        Ok(dir)
    }

    pub fn topic_exists(&self, name: &str) -> Result<bool> {
        Ok(self.topic_dir(name)?.join(topic::TOPIC_FILE).exists())
    }

    /// Loads a topic's metadata.
    pub fn topic(&self, name: &str) -> Result<Topic> {
        let dir = self.topic_dir(name)?;
        if !dir.join(topic::TOPIC_FILE).exists() {
            return Err(StoreError::TopicNotFound(name.to_owned()));
        }
        Topic::load(&dir)
    }

    /// Names of all topics, sorted.
    pub fn list_topics(&self) -> Result<Vec<String>> {
        list_names(&self.topics_dir(), NameKind::Topic, |dir| {
            dir.join(topic::TOPIC_FILE).exists()
        })
    }

    /// Creates a topic with `partitions` partitions and the given (validated) configs.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Topic> {
        let dir = self.topic_dir(name)?;
        check_partition_count(i64::from(partitions))?;
        for (k, v) in &configs {
            config::validate(k, v)?;
        }
        self.ensure_created()?;
        if dir.exists() {
            return Err(StoreError::TopicExists(name.to_owned()));
        }
        let staging = self.tmp_dir().join(staging_name("create", name));
        let meta = TopicMeta {
            name: name.to_owned(),
            id: topic::new_topic_id(),
            created_at: topic::rfc3339_ms(fsutil::now_ms()),
            partitions,
            configs,
        };
        let result = self.stage_topic(&staging, &meta).and_then(|()| {
            match std::fs::rename(&staging, &dir) {
                Ok(()) => Ok(()),
                Err(e) if dir.exists() || e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                    Err(StoreError::TopicExists(name.to_owned()))
                }
                Err(e) => Err(e).at("create", &dir),
            }
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result?;
        fsutil::sync_dir(&self.topics_dir()).at("sync", &self.topics_dir())?;
        Topic::load(&dir)
    }

    fn stage_topic(&self, staging: &Path, meta: &TopicMeta) -> Result<()> {
        std::fs::create_dir_all(staging).at("create", staging)?;
        let log_config = LogConfig::from_configs(&meta.configs)?;
        for id in 0..meta.partitions {
            init_partition_dir(&staging.join(id.to_string()), log_config)?;
        }
        meta.save(&staging.join(topic::TOPIC_FILE))
    }

    /// Raises a topic's partition count (a decrease is refused, as Kafka refuses it).
    pub fn add_partitions(&self, name: &str, partitions: i64) -> Result<Topic> {
        let topic = self.topic(name)?;
        check_partition_count(partitions)?;
        let partitions = partitions as i32;
        let _lock = lock::OwnedLock::acquire_path(&topic.dir.join(head::LOCK_FILE))
            .at("lock", &topic.dir)?;
        let mut topic = Topic::load(&topic.dir)?;
        let current = topic.meta.partitions;
        if partitions < current {
            return Err(StoreError::PartitionDecrease {
                topic: name.to_owned(),
                current,
                requested: partitions,
            });
        }
        for id in current..partitions {
            init_partition_dir(&topic.dir.join(id.to_string()), topic.log_config)?;
        }
        fsutil::sync_dir(&topic.dir).at("sync", &topic.dir)?;
        topic.meta.partitions = partitions;
        topic.meta.save(&topic.dir.join(topic::TOPIC_FILE))?;
        Topic::load(&topic.dir)
    }

    /// Sets (or, with an empty value, removes) topic configs.
    pub fn alter_configs(&self, name: &str, changes: &BTreeMap<String, String>) -> Result<Topic> {
        let topic = self.topic(name)?;
        for (k, v) in changes {
            if !v.is_empty() {
                config::validate(k, v)?;
            } else if !config::KNOWN_CONFIGS.iter().any(|(known, _)| known == k) {
                return Err(config::ConfigError::Unknown(k.clone()).into());
            }
        }
        let _lock = lock::OwnedLock::acquire_path(&topic.dir.join(head::LOCK_FILE))
            .at("lock", &topic.dir)?;
        let mut topic = Topic::load(&topic.dir)?;
        for (k, v) in changes {
            if v.is_empty() {
                topic.meta.configs.remove(k);
            } else {
                topic.meta.configs.insert(k.clone(), v.clone());
            }
        }
        topic.meta.save(&topic.dir.join(topic::TOPIC_FILE))?;
        Topic::load(&topic.dir)
    }

    /// Deletes a topic: it vanishes with one rename, then its files are removed.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let dir = self.topic_dir(name)?;
        if !dir.join(topic::TOPIC_FILE).exists() {
            return Err(StoreError::TopicNotFound(name.to_owned()));
        }
        self.ensure_created()?;
        // Under every partition's lock, a tombstone where the head was: an append is either
        // complete before the topic goes (and counted by its producer) or finds the tombstone
        // (and fails): none lands in a topic already deleted.
        let topic = Topic::load(&dir)?;
        let mut locks = Vec::new();
        for p in topic.partitions() {
            let path = p.dir.join(head::LOCK_FILE);
            match lock::OwnedLock::acquire_path(&path) {
                Ok(l) => {
                    head::Head::store_tombstone(l.file()).at("write", &path)?;
                    locks.push(l);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at("lock", &path),
            }
        }
        let doomed = self.tmp_dir().join(staging_name("delete", name));
        std::fs::rename(&dir, &doomed).at("delete", &dir)?;
        drop(locks);
        fsutil::sync_dir(&self.topics_dir()).at("sync", &self.topics_dir())?;
        std::fs::remove_dir_all(&doomed).at("delete", &doomed)
    }
}

/// A unique name in `tmp/` for a topic being created or deleted. Only a prefix of the topic's
/// name is used: a 249-character name plus the rest would pass the 255-byte file name limit.
fn staging_name(what: &str, topic: &str) -> String {
    format!(
        "{what}-{}-{}-{:.64}",
        std::process::id(),
        fsutil::now_ms(),
        topic
    )
}

/// Sorted names of the entries of `dir` (topics or groups) that are valid names of `kind` and
/// pass `keep`; a missing `dir` has none.
pub fn list_names(dir: &Path, kind: NameKind, keep: impl Fn(&Path) -> bool) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at("list", dir),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.at("list", dir)?;
        if let Some(name) = entry.file_name().to_str() {
            if name::validate(kind, name).is_ok() && keep(&entry.path()) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Refuses a path that is a symbolic link: a topic or group directory linked elsewhere would let
/// spool write outside its store.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::BadMetadata {
            path: path.to_owned(),
            reason: "it is a symbolic link; spool does not follow links inside its store".into(),
        }),
        _ => Ok(()),
    }
}

fn check_partition_count(n: i64) -> Result<()> {
    if n < 1 || n > i64::from(MAX_PARTITIONS) {
        return Err(StoreError::BadPartitionCount {
            requested: n,
            max: MAX_PARTITIONS,
        });
    }
    Ok(())
}

/// Creates a partition directory with its first, empty segment.
fn init_partition_dir(dir: &Path, config: LogConfig) -> Result<()> {
    std::fs::create_dir_all(dir).at("create", dir)?;
    PartitionWriter::open(dir, config, SyncPolicy::OnRequest)?.initialize(fsutil::now_ms())?;
    Ok(())
}
