//! The files of a group directory and their formats.
//!
//! ```text
//! groups/<group>/.lock-holder          the group lock: every change below is made under it; a
//!                                      symlink to its holder's directory .w-<token>/ (see
//!                                      [`GroupLock`])
//! groups/<group>/group.yaml            generation, members, target assignment, owners
//! groups/<group>/history.yaml          the rebalances, one YAML document each, appended
//! groups/<group>/offsets.yaml          committed offsets
//! groups/<group>/members/<id>.yaml     one lease per member (see `lease`)
//! groups/<group>/releasing/<id>        partitions a cooperative member gave up, with offsets
//!                                      to commit, until the next lock holder folds them in
//!                                      (see `coordinator::Coordinator::try_fold_releases`)
//! groups/<group>/leaving/<id>          a member leaving, with the offsets to commit, until the
//!                                      next lock holder lets it out (see
//!                                      `coordinator::Coordinator::leave_in_batch`)
//! groups/<group>/joining/<id>          a member waiting to be admitted (its lease is already
//!                                      in members/); holds the id of the lease it replaces,
//!                                      if any (see `coordinator::Coordinator::rejoin`)
//! ```
//!
//! `group.yaml` and `offsets.yaml` are replaced whole (temporary file, fsync, rename, directory
//! fsync), so a crash leaves the previous state or the new one, never a mix.
//!
//! The history lives beside the state, not in it: every member reads `group.yaml` after every
//! change, and a long-lived group's fifty remembered rebalances made it four times as long (a
//! join of a group joined a hundred times took 20.6 million instructions against 5.9 million
//! for a new group, two thirds of them parsing and writing the history). A rebalance is
//! appended to `history.yaml` once the state that began it is saved; only `group describe
//! --history` reads it. It is a record for people, not a promise: appends are not fsynced (a
//! power loss may forget the last rebalances, never the state), and a document torn by a crash
//! is skipped when it is read.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::assignor::TopicPartition;
use crate::name::{self, NameKind};
use crate::store::error::IoContext;
use crate::store::{fsutil, lock, Store, StoreError, TopicMeta};

pub const GROUP_FILE: &str = "group.yaml";
pub const OFFSETS_FILE: &str = "offsets.yaml";
pub const HISTORY_FILE: &str = "history.yaml";
/// Past this size, `history.yaml` is rewritten with the rebalances [`bound_history`] keeps.
const HISTORY_FILE_MAX: u64 = 256 * 1024;
pub const MEMBERS_DIR: &str = "members";
/// Members waiting to be admitted: whoever holds the group lock admits them all at once.
pub const JOINING_DIR: &str = "joining";
/// Partitions given up and not yet handed over: whoever holds the group lock folds them all in.
pub const RELEASING_DIR: &str = "releasing";
/// Members leaving, with their last offsets: whoever holds the group lock lets them all out.
pub const LEAVING_DIR: &str = "leaving";

/// What a cooperative member gave up in a generation (it stopped reading them first), written
/// to `releasing/<member-id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseNote {
    pub generation: i32,
    pub released: Vec<Release>,
}

/// A partition given up, with the next offset to read if anything was consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub topic: String,
    pub partition: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}
/// The group lock: a symlink naming its holder's directory (see [`GroupLock`]).
pub const LOCK_FILE: &str = ".lock-holder";
/// How long one holder may keep the group lock before a waiter that is not a member (a
/// command such as `spool offsets reset`) takes it over; members use their session timeout.
pub const DEFAULT_LOCK_BREAK: std::time::Duration = std::time::Duration::from_secs(30);

/// The group lock, held for bounded sections (read `group.yaml`, decide, write). A holder
/// stopped inside one (SIGSTOP, a stalled disk) for longer than the waiters allow loses it,
/// and its writes fail from then on: see [`lock::BreakableLock`].
pub type GroupLock = lock::BreakableLock;
/// Rebalances remembered for `group describe --history`.
pub const HISTORY_LEN: usize = 50;
/// At most this many member ids over the history's `members_before`/`members_after` lists:
/// a group of hundreds keeps fewer events, so `group.yaml`, which every member reads after
/// every change, stays small.
pub const HISTORY_IDS: usize = 500;

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
    /// Drawn at random when the state is created, or rebuilt after it was lost: a rebuilt
    /// state may restart the generations, and a member must not take generation N of the
    /// new state for the N it knew. (Second field: read with the generation from the file's
    /// first lines.)
    #[serde(default)]
    pub incarnation: u64,
    /// When the generation began (ms since the epoch, the wall clock of the process that
    /// began it). Absent in stores written before the history left `group.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_started_ms: Option<i64>,
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
    /// Rebalances kept in `group.yaml` by stores written before the history moved to
    /// `history.yaml`: moved there at the next save.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RebalanceEvent>,
    /// Rebalances of the change being made, appended to `history.yaml` once the state that
    /// holds them is saved ([`GroupDir::save_state_with`]).
    #[serde(skip)]
    pub unsaved_history: Vec<RebalanceEvent>,
    /// Members of a state that was lost (`group.yaml` removed or garbled while they ran), with
    /// the heartbeat value their lease showed then. They may still be reading partitions the
    /// lost state gave them, so no partition is handed out until each has left, rejoined (a
    /// member that finds itself out of the generation stops reading first), or stood still for
    /// its session timeout (its lease is then removed, which fences it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quarantine: BTreeMap<String, i64>,
    /// When the state was found lost (this process's wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_since_ms: Option<i64>,
}

/// What `group.yaml` itself holds (its previous version is not looked at: an older state
/// would give partitions back to members that have handed them over since).
#[derive(Debug)]
pub enum StoredState {
    Found(Box<GroupState>),
    /// Neither `group.yaml` nor its previous version exists.
    Missing,
    /// `group.yaml` is missing while its previous version exists, or does not parse; the
    /// previous version's generation, if it parses.
    Lost {
        previous_generation: Option<i32>,
    },
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

    /// The member whose target assignment holds `tp`.
    pub fn target_of(&self, tp: &TopicPartition) -> Option<&str> {
        self.assignment
            .iter()
            .find(|(_, tps)| tps.contains(tp))
            .map(|(m, _)| m.as_str())
    }

    /// Gives every partition nobody owns to the member whose target holds it (cooperative
    /// groups: the member takes it up when it reads the state, without a write of its own).
    pub fn grant_free(&mut self) {
        let grants: Vec<(TopicPartition, String)> = self
            .assignment
            .iter()
            .flat_map(|(m, tps)| tps.iter().map(move |tp| (tp, m)))
            .filter(|(tp, _)| self.owner(tp).is_none())
            .map(|(tp, m)| (tp.clone(), m.clone()))
            .collect();
        for (tp, m) in grants {
            self.set_owner(&tp, Some(&m));
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

    /// Whether the group's protocol makes every member give up everything at each generation
    /// (range, roundrobin, sticky) rather than only what moves (cooperative-sticky).
    pub fn is_eager(&self) -> bool {
        self.protocol
            .as_deref()
            .and_then(super::assignor::by_name)
            .is_some_and(|a| a.protocol() == super::assignor::RebalanceProtocol::Eager)
    }

    /// A fresh state's incarnation.
    pub fn new_incarnation() -> u64 {
        u64::from_le_bytes(
            crate::store::fsutil::random_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        )
    }

    /// The group's phase by `group.yaml` alone. A cooperative group's members acknowledge a
    /// generation in their leases when they have nothing to give up (see
    /// [`GroupState::phase_with`]), so here such a group is rebalancing until every target
    /// partition is owned by its target member.
    pub fn phase(&self) -> GroupPhase {
        let eager = self.is_eager();
        self.phase_given(|m| !eager || self.acked.get(m).copied().unwrap_or(-1) >= self.generation)
    }

    /// The group's phase given the acknowledgements the members wrote in their leases: every
    /// member must have taken in the generation (in `group.yaml` or in its lease) and every
    /// target partition must be owned by its target member.
    pub fn phase_with(&self, lease_acks: &BTreeMap<String, i32>) -> GroupPhase {
        self.phase_given(|m| {
            let acked = self.acked.get(m).copied().unwrap_or(-1);
            acked.max(lease_acks.get(m).copied().unwrap_or(-1)) >= self.generation
        })
    }

    fn phase_given(&self, acked: impl Fn(&str) -> bool) -> GroupPhase {
        if self.members.is_empty() {
            return GroupPhase::Empty;
        }
        if self.members.keys().any(|m| !acked(m)) {
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

    /// Records that a rebalance began a generation: when (for the join window), and the event,
    /// for the history once the state is saved.
    pub fn record_rebalance(&mut self, event: RebalanceEvent) {
        self.generation_started_ms = Some(event.time_ms);
        self.unsaved_history.push(event);
    }

    /// When the generation began, if known.
    pub fn generation_started_ms(&self) -> Option<i64> {
        self.generation_started_ms
            .or_else(|| self.history.last().map(|e| e.time_ms))
    }
}

/// Keeps the rebalances `group describe --history` shows: the last [`HISTORY_LEN`], fewer if
/// their member lists would name more than [`HISTORY_IDS`] ids.
pub fn bound_history(history: &mut Vec<RebalanceEvent>) {
    if history.len() > HISTORY_LEN {
        let excess = history.len() - HISTORY_LEN;
        history.drain(..excess);
    }
    let ids = |e: &RebalanceEvent| e.members_before.len() + e.members_after.len();
    let mut total: usize = history.iter().map(ids).sum();
    let mut first = 0;
    while first + 1 < history.len() && total > HISTORY_IDS {
        total -= ids(&history[first]);
        first += 1;
    }
    history.drain(..first);
}

/// The rebalances of a `history.yaml` text, in order; a document that does not parse (torn by
/// a crash) is skipped.
fn parse_history(text: &str) -> Vec<RebalanceEvent> {
    text.split("---\n")
        .filter(|doc| !doc.trim().is_empty())
        .filter_map(|doc| serde_yaml::from_str(doc).ok())
        .collect()
}

/// `events` as `history.yaml` documents.
fn history_documents<'a>(events: impl IntoIterator<Item = &'a RebalanceEvent>) -> String {
    let mut text = String::new();
    for event in events {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(event).expect("rebalance serializes"));
    }
    text
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

    pub fn joining_dir(&self) -> PathBuf {
        self.dir.join(JOINING_DIR)
    }

    pub fn releasing_dir(&self) -> PathBuf {
        self.dir.join(RELEASING_DIR)
    }

    pub fn leaving_dir(&self) -> PathBuf {
        self.dir.join(LEAVING_DIR)
    }

    /// Whether `member` waits in `joining/` to be admitted.
    pub fn is_joining(&self, member: &str) -> bool {
        self.joining_dir().join(member).exists()
    }

    pub fn group_file(&self) -> PathBuf {
        self.dir.join(GROUP_FILE)
    }

    /// Creates the directories (idempotent).
    pub fn ensure_created(&self) -> Result<(), StoreError> {
        let members = self.members_dir();
        fsutil::create_dir_all_synced(&members).at("create", &members)?;
        for dir in [self.joining_dir(), self.releasing_dir(), self.leaving_dir()] {
            fsutil::create_dir_all_synced(&dir).at("create", &dir)?;
        }
        Ok(())
    }

    /// Takes the group lock, breaking it if one holder keeps it [`DEFAULT_LOCK_BREAK`].
    pub fn lock(&self) -> Result<GroupLock, StoreError> {
        self.lock_breaking(DEFAULT_LOCK_BREAK)
    }

    /// Takes the group lock, breaking it if one holder keeps it `after` (it is stopped or its
    /// disk stalled: see [`GroupLock`]).
    pub fn lock_breaking(&self, after: std::time::Duration) -> Result<GroupLock, StoreError> {
        self.ensure_created()?;
        let path = self.dir.join(LOCK_FILE);
        lock::BreakableLock::acquire(&self.dir, LOCK_FILE, lock::Wait::BreakAfter(after))
            .at("lock", &path)
            .map(|l| l.expect("waits until had"))
    }

    /// Takes the group lock if nobody holds it: `None` when another process does. For the
    /// consuming thread, which must keep reading its partitions whatever another member (maybe
    /// a stopped one) does with the lock.
    pub fn try_lock(&self) -> Result<Option<GroupLock>, StoreError> {
        self.ensure_created()?;
        let path = self.dir.join(LOCK_FILE);
        lock::BreakableLock::acquire(&self.dir, LOCK_FILE, lock::Wait::No).at("lock", &path)
    }

    /// Replaces `group.yaml` as the holder of `lock` (refused once the lock was broken), then
    /// appends the rebalances the change began to `history.yaml`.
    pub fn save_state_with(
        &self,
        lock: &GroupLock,
        state: &mut GroupState,
    ) -> Result<(), StoreError> {
        let path = self.group_file();
        let legacy = std::mem::take(&mut state.history);
        let text = serde_yaml::to_string(state).expect("group state serializes");
        if let Err(e) = lock.replace(&path, text.as_bytes()) {
            state.history = legacy;
            return Err(e).at("write", &path);
        }
        let events: Vec<RebalanceEvent> = legacy
            .into_iter()
            .chain(state.unsaved_history.drain(..))
            .collect();
        if !events.is_empty() {
            let history = self.history_file();
            // The state is saved: a history that cannot be written is reported, not an error
            // of the change.
            if let Err(e) = self.append_history(lock, &events) {
                eprintln!(
                    "warning: could not record a rebalance of group {} in {}: {e}",
                    self.name,
                    history.display()
                );
            }
        }
        Ok(())
    }

    pub fn history_file(&self) -> PathBuf {
        self.dir.join(HISTORY_FILE)
    }

    /// Appends `events` to `history.yaml`, rewriting it with what [`bound_history`] keeps once
    /// it outgrows [`HISTORY_FILE_MAX`].
    fn append_history(&self, lock: &GroupLock, events: &[RebalanceEvent]) -> io::Result<()> {
        use std::io::Write;
        let path = self.history_file();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)?;
        file.write_all(history_documents(events).as_bytes())?;
        if file.metadata()?.len() > HISTORY_FILE_MAX {
            let mut kept = parse_history(&std::fs::read_to_string(&path)?);
            bound_history(&mut kept);
            lock.replace(&path, history_documents(&kept).as_bytes())?;
        }
        Ok(())
    }

    /// The rebalances `group describe --history` shows: those of `history.yaml` after any a
    /// state written by an older spool still holds (`legacy`), bounded by [`bound_history`].
    pub fn load_history(
        &self,
        legacy: &[RebalanceEvent],
    ) -> Result<Vec<RebalanceEvent>, StoreError> {
        let path = self.history_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).at("read", &path),
        };
        let mut history = legacy.to_vec();
        history.extend(parse_history(&text));
        bound_history(&mut history);
        Ok(history)
    }

    /// Replaces `offsets.yaml` as the holder of `lock` (refused once the lock was broken).
    pub fn save_offsets_with(&self, lock: &GroupLock, offsets: &Offsets) -> Result<(), StoreError> {
        let path = self.dir.join(OFFSETS_FILE);
        let text = serde_yaml::to_string(offsets).expect("offsets serialize");
        lock.replace(&path, text.as_bytes()).at("write", &path)
    }

    /// Reads `group.yaml` (or its previous version if it is damaged): for display.
    pub fn load_state(&self) -> Result<GroupState, StoreError> {
        load_yaml(&self.group_file())
    }

    /// Reads `group.yaml` itself, for decisions (see [`StoredState`]).
    pub fn read_state(&self) -> Result<StoredState, StoreError> {
        let path = self.group_file();
        let previous_generation = || {
            std::fs::read_to_string(crate::store::yaml::prev_path(&path))
                .ok()
                .and_then(|t| serde_yaml::from_str::<GroupState>(&t).ok())
                .map(|s| s.generation)
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => match serde_yaml::from_str::<GroupState>(&text) {
                Ok(state) if !text.trim().is_empty() => Ok(StoredState::Found(Box::new(state))),
                _ => Ok(StoredState::Lost {
                    previous_generation: previous_generation(),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if crate::store::yaml::prev_path(&path).exists() {
                    Ok(StoredState::Lost {
                        previous_generation: previous_generation(),
                    })
                } else {
                    Ok(StoredState::Missing)
                }
            }
            Err(e) => Err(e).at("read", &path),
        }
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

/// The generation and incarnation of a `group.yaml`, from its first lines (the first two
/// fields written), without parsing the rest; `None` if the file is missing or starts otherwise.
pub fn peek_generation(path: &std::path::Path) -> Option<(i32, u64)> {
    use std::io::Read;
    let mut head = [0u8; 96];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    let mut lines = text.lines();
    let generation = lines
        .next()?
        .strip_prefix("generation:")?
        .trim()
        .parse()
        .ok()?;
    let incarnation = lines
        .next()?
        .strip_prefix("incarnation:")?
        .trim()
        .parse()
        .ok()?;
    Some((generation, incarnation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(generation: i32, members: usize) -> RebalanceEvent {
        let ids: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
        RebalanceEvent {
            generation,
            time_ms: 1_000 + i64::from(generation),
            trigger: Trigger::Joined,
            subjects: ids[..1.min(members)].to_vec(),
            members_before: ids.clone(),
            members_after: ids,
        }
    }

    fn group_dir() -> (tempfile::TempDir, GroupDir) {
        let root = tempfile::tempdir().unwrap();
        let dir = GroupDir {
            name: "g".into(),
            dir: root.path().join("g"),
        };
        dir.ensure_created().unwrap();
        (root, dir)
    }

    #[test]
    fn a_saved_rebalance_goes_to_the_history_file_and_not_into_the_state() {
        let (_root, dir) = group_dir();
        let lock = dir.lock().unwrap();
        let mut state = GroupState {
            generation: 1,
            ..GroupState::default()
        };
        state.record_rebalance(event(1, 2));
        dir.save_state_with(&lock, &mut state).unwrap();
        assert!(state.unsaved_history.is_empty(), "appended once only");
        state.generation = 2;
        state.record_rebalance(event(2, 3));
        dir.save_state_with(&lock, &mut state).unwrap();
        dir.save_state_with(&lock, &mut state).unwrap();

        let text = std::fs::read_to_string(dir.group_file()).unwrap();
        assert!(!text.contains("history"), "{text}");
        assert!(text.contains("generation_started_ms: 1002"), "{text}");
        let history = dir.load_history(&[]).unwrap();
        let generations: Vec<i32> = history.iter().map(|e| e.generation).collect();
        assert_eq!(generations, [1, 2]);
        assert_eq!(
            dir.load_state().unwrap().generation_started_ms(),
            Some(1002)
        );
    }

    #[test]
    fn a_history_an_older_spool_kept_in_the_state_moves_to_the_history_file() {
        let (_root, dir) = group_dir();
        let legacy = GroupState {
            generation: 2,
            history: vec![event(1, 1), event(2, 2)],
            ..GroupState::default()
        };
        std::fs::write(dir.group_file(), serde_yaml::to_string(&legacy).unwrap()).unwrap();
        let mut state = dir.load_state().unwrap();
        assert_eq!(
            state.generation_started_ms(),
            Some(1002),
            "from the last event"
        );
        assert_eq!(dir.load_history(&state.history).unwrap().len(), 2);

        state.generation = 3;
        state.record_rebalance(event(3, 1));
        let lock = dir.lock().unwrap();
        dir.save_state_with(&lock, &mut state).unwrap();
        let saved = dir.load_state().unwrap();
        assert!(saved.history.is_empty());
        let generations: Vec<i32> = dir
            .load_history(&saved.history)
            .unwrap()
            .iter()
            .map(|e| e.generation)
            .collect();
        assert_eq!(generations, [1, 2, 3]);
    }

    #[test]
    fn a_torn_document_is_skipped() {
        let (_root, dir) = group_dir();
        let whole = history_documents(&[event(1, 1), event(2, 1)]);
        let torn = &history_documents(&[event(3, 1)])[..30];
        let after = history_documents(&[event(4, 1)]);
        std::fs::write(dir.history_file(), format!("{whole}{torn}{after}")).unwrap();
        let generations: Vec<i32> = dir
            .load_history(&[])
            .unwrap()
            .iter()
            .map(|e| e.generation)
            .collect();
        assert_eq!(generations, [1, 2, 4]);
    }

    #[test]
    fn the_history_file_is_rewritten_with_what_is_shown_once_it_outgrows_its_bound() {
        let (_root, dir) = group_dir();
        let lock = dir.lock().unwrap();
        let mut state = GroupState::default();
        let mut largest = 0;
        let mut all = Vec::new();
        for generation in 1..=600 {
            state.generation = generation;
            state.record_rebalance(event(generation, 100));
            all.push(event(generation, 100));
            dir.save_state_with(&lock, &mut state).unwrap();
            largest = largest.max(std::fs::metadata(dir.history_file()).unwrap().len());
        }
        let one = history_documents(&all[..1]).len() as u64;
        assert!(600 * one > 2 * HISTORY_FILE_MAX, "rewritten at least once");
        assert!(largest <= HISTORY_FILE_MAX + one, "{largest}");
        bound_history(&mut all);
        assert_eq!(dir.load_history(&[]).unwrap(), all);
    }

    #[test]
    fn the_history_shown_is_bounded_in_events_and_in_member_ids() {
        let mut few = (1..=80).map(|g| event(g, 1)).collect();
        bound_history(&mut few);
        assert_eq!(few.len(), HISTORY_LEN);
        assert_eq!(few[0].generation, 31);

        let mut crowded: Vec<RebalanceEvent> = (1..=5).map(|g| event(g, 100)).collect();
        bound_history(&mut crowded);
        assert_eq!(crowded.len(), 2, "200 ids each");
        assert_eq!(crowded[0].generation, 4);

        let mut one_huge = vec![event(1, 1000)];
        bound_history(&mut one_huge);
        assert_eq!(one_huge.len(), 1, "the last is always kept");
    }
}
