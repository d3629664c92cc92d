//! The files of a group directory and their formats.
//!
//! ```text
//! groups/<group>/.lock                 the group lock: every change below is made under it
//! groups/<group>/group.yaml            generation, members, target assignment, owners, history
//! groups/<group>/offsets.yaml          committed offsets
//! groups/<group>/members/<id>.yaml     one lease per member (see `lease`)
//! ```
//!
//! `group.yaml` and `offsets.yaml` are replaced whole (temporary file, fsync, rename, directory
//! fsync), so a crash leaves the previous state or the new one, never a mix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::assignor::TopicPartition;
use crate::name::{self, NameKind};
use crate::store::error::IoContext;
use crate::store::{fsutil, lock, Store, StoreError, TopicMeta};

pub const GROUP_FILE: &str = "group.yaml";
pub const OFFSETS_FILE: &str = "offsets.yaml";
pub const MEMBERS_DIR: &str = "members";
pub const LOCK_FILE: &str = ".lock";
/// Rebalances remembered for `group describe --history`.
pub const HISTORY_LEN: usize = 50;

/// A member as the group's generation knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub client_id: String,
    pub topics: Vec<String>,
}

/// Why a generation began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Joined,
    Left,
    Died,
    TimedOut,
    PollInterval,
    PartitionsAdded,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Trigger::Joined => "joined",
            Trigger::Left => "left",
            Trigger::Died => "died",
            Trigger::TimedOut => "timed out",
            Trigger::PollInterval => "poll interval",
            Trigger::PartitionsAdded => "partitions added",
        })
    }
}

/// One rebalance, for the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceEvent {
    pub generation: i32,
    pub time_ms: i64,
    pub trigger: Trigger,
    /// The members the trigger is about (who joined, left, died...).
    #[serde(default)]
    pub subjects: Vec<String>,
    pub members_before: Vec<String>,
    pub members_after: Vec<String>,
}

/// The content of `group.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GroupState {
    pub generation: i32,
    /// The assignor every member must use (the group's protocol).
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub members: BTreeMap<String, MemberInfo>,
    /// The target assignment of this generation, member id to partitions.
    #[serde(default)]
    pub assignment: BTreeMap<String, Vec<TopicPartition>>,
    /// Who consumes each partition right now: topic to partition to member id. A partition is
    /// taken up only when it has no owner here, and released (after a commit) by its owner.
    #[serde(default)]
    pub owners: BTreeMap<String, BTreeMap<i32, String>>,
    /// The latest generation each member has acknowledged (revoked what it had to).
    #[serde(default)]
    pub acked: BTreeMap<String, i32>,
    /// Partition counts of the subscribed topics when the assignment was computed.
    #[serde(default)]
    pub partition_counts: BTreeMap<String, i32>,
    #[serde(default)]
    pub history: Vec<RebalanceEvent>,
}

/// Kafka's names for a group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GroupPhase {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl std::fmt::Display for GroupPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl GroupState {
    pub fn owner(&self, tp: &TopicPartition) -> Option<&str> {
        self.owners
            .get(&tp.topic)
            .and_then(|m| m.get(&tp.partition))
            .map(String::as_str)
    }

    pub fn set_owner(&mut self, tp: &TopicPartition, member: Option<&str>) {
        match member {
            Some(m) => {
                self.owners
                    .entry(tp.topic.clone())
                    .or_default()
                    .insert(tp.partition, m.to_owned());
            }
            None => {
                if let Some(m) = self.owners.get_mut(&tp.topic) {
                    m.remove(&tp.partition);
                    if m.is_empty() {
                        self.owners.remove(&tp.topic);
                    }
                }
            }
        }
    }

    /// Partitions owned by `member`.
    pub fn owned_by(&self, member: &str) -> Vec<TopicPartition> {
        self.owners
            .iter()
            .flat_map(|(t, m)| {
                m.iter()
                    .filter(|(_, owner)| owner.as_str() == member)
                    .map(move |(p, _)| TopicPartition::new(t.clone(), *p))
            })
            .collect()
    }

    /// Removes every ownership held by members not in the generation.
    pub fn drop_foreign_owners(&mut self) {
        let members = &self.members;
        for m in self.owners.values_mut() {
            m.retain(|_, owner| members.contains_key(owner));
        }
        self.owners.retain(|_, m| !m.is_empty());
    }

    /// The group's phase, derived from the generation's acknowledgements and owners.
    pub fn phase(&self) -> GroupPhase {
        if self.members.is_empty() {
            return GroupPhase::Empty;
        }
        if self
            .members
            .keys()
            .any(|m| self.acked.get(m).copied().unwrap_or(-1) < self.generation)
        {
            return GroupPhase::PreparingRebalance;
        }
        let settled = self
            .assignment
            .iter()
            .all(|(m, tps)| tps.iter().all(|tp| self.owner(tp) == Some(m.as_str())));
        if settled {
            GroupPhase::Stable
        } else {
            GroupPhase::CompletingRebalance
        }
    }

    pub fn push_history(&mut self, event: RebalanceEvent) {
        self.history.push(event);
        if self.history.len() > HISTORY_LEN {
            let excess = self.history.len() - HISTORY_LEN;
            self.history.drain(..excess);
        }
    }
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The next offset to read (last processed + 1).
    pub offset: i64,
    pub committed_at_ms: i64,
    /// The id of the topic the offset was committed for: a topic is its identity, not its
    /// name, so a topic deleted and created again does not inherit the old one's offsets.
    /// Absent in stores written before spool remembered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}

impl Committed {
    /// Whether this offset was committed for `topic` as it exists now: its id matches, or,
    /// without an id, it was committed after the topic was created.
    pub fn belongs_to(&self, topic: &TopicMeta) -> bool {
        match &self.topic_id {
            Some(id) => *id == topic.id,
            None => humantime::parse_rfc3339_weak(&topic.created_at)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .is_none_or(|created| self.committed_at_ms >= created.as_millis() as i64),
        }
    }
}

/// The content of `offsets.yaml`: topic to partition to committed offset.
pub type Offsets = BTreeMap<String, BTreeMap<i32, Committed>>;

/// Committed offsets of a topic that no longer exists as it was (deleted, or deleted and
/// created again), found in a group's offsets and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleOffsets {
    pub topic: String,
    pub partitions: usize,
}

/// Splits a group's offsets into those of topics as they exist now and those left by topics
/// that were deleted (by a spool that did not delete them with the topic).
pub fn current_offsets(
    store: &Store,
    offsets: Offsets,
) -> Result<(Offsets, Vec<StaleOffsets>), StoreError> {
    let mut current = Offsets::new();
    let mut stale = Vec::new();
    for (topic, partitions) in offsets {
        let meta = match store.topic(&topic) {
            Ok(t) => Some(t.meta),
            Err(StoreError::TopicNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let (keep, drop): (BTreeMap<i32, Committed>, BTreeMap<i32, Committed>) = partitions
            .into_iter()
            .partition(|(_, c)| meta.as_ref().is_some_and(|m| c.belongs_to(m)));
        if !drop.is_empty() {
            stale.push(StaleOffsets {
                topic: topic.clone(),
                partitions: drop.len(),
            });
        }
        if !keep.is_empty() {
            current.insert(topic, keep);
        }
    }
    Ok((current, stale))
}

/// A group's directory.
#[derive(Debug, Clone)]
pub struct GroupDir {
    pub name: String,
    pub dir: PathBuf,
}

impl GroupDir {
    pub fn new(store: &Store, group: &str) -> Result<GroupDir, StoreError> {
        name::validate(NameKind::Group, group)?;
        let dir = store.groups_dir().join(group);
        crate::store::refuse_symlink(&dir)?;
        Ok(GroupDir {
            name: group.to_owned(),
            dir,
        })
    }

    pub fn exists(&self) -> bool {
        self.dir.join(GROUP_FILE).exists() || self.dir.join(OFFSETS_FILE).exists()
    }

    pub fn members_dir(&self) -> PathBuf {
        self.dir.join(MEMBERS_DIR)
    }

    pub fn group_file(&self) -> PathBuf {
        self.dir.join(GROUP_FILE)
    }

    /// Creates the directories (idempotent).
    pub fn ensure_created(&self) -> Result<(), StoreError> {
        let members = self.members_dir();
        fsutil::create_dir_all_synced(&members).at("create", &members)
    }

    /// Takes the group lock (blocking).
    pub fn lock(&self) -> Result<lock::OwnedLock, StoreError> {
        self.ensure_created()?;
        let path = self.dir.join(LOCK_FILE);
        lock::OwnedLock::acquire_path(&path).at("lock", &path)
    }

    pub fn load_state(&self) -> Result<GroupState, StoreError> {
        load_yaml(&self.group_file())
    }

    pub fn save_state(&self, state: &GroupState) -> Result<(), StoreError> {
        save_yaml(&self.group_file(), state)
    }

    pub fn load_offsets(&self) -> Result<Offsets, StoreError> {
        load_yaml(&self.dir.join(OFFSETS_FILE))
    }

    /// The committed offsets of topics as they exist now (see [`current_offsets`]).
    pub fn load_current_offsets(
        &self,
        store: &Store,
    ) -> Result<(Offsets, Vec<StaleOffsets>), StoreError> {
        current_offsets(store, self.load_offsets()?)
    }

    pub fn save_offsets(&self, offsets: &Offsets) -> Result<(), StoreError> {
        save_yaml(&self.dir.join(OFFSETS_FILE), offsets)
    }
}

/// Reads a YAML file (or its previous version, see [`crate::store::yaml`]); a missing file is
/// the default value.
pub fn load_yaml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, StoreError> {
    Ok(crate::store::yaml::load(path)?.unwrap_or_default())
}

fn save_yaml<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    crate::store::yaml::save(path, value)
}

/// Lists the groups of a store, sorted.
pub fn list_groups(store: &Store) -> Result<Vec<String>, StoreError> {
    crate::store::list_names(&store.groups_dir(), NameKind::Group, Path::is_dir)
}
