//! Read-only views of consumer groups, for `spool group list` and `spool group describe`.
//!
//! A view is built from the group's files as they are: one read of `group.yaml` and
//! `offsets.yaml`, one pass over the leases (with their liveness, see [`Lease::liveness`]) and
//! the log start and end offsets of each partition shown. Nothing is changed: a dead or expired
//! member is shown as such, not evicted, and no new generation is started by looking. (The
//! next member to heartbeat does that.)
//!
//! The group's state is Kafka's, derived from what the files say and what the leases show:
//! `Empty` without live members, `PreparingRebalance` when the live members (or the subscribed
//! topics' partition counts) differ from the generation's, else the generation's own phase
//! ([`GroupState::phase`]); `Dead` for a group directory with no group files at all.
//!
//! [`Lease::liveness`]: super::lease::Lease::liveness

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::assignor::TopicPartition;
use super::coordinator::{Coordinator, LeaseEntry};
use super::lease::Liveness;
use super::state::{GroupDir, GroupPhase, GroupState, Offsets, RebalanceEvent};
use crate::store::{Store, StoreError, Topic};

/// A member's status as its lease shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Its process holds the lease and heartbeats.
    Alive,
    /// A static member whose process is gone, within its session timeout: it keeps its
    /// partitions until it comes back or the session expires.
    Away,
    /// Its process is gone; the next heartbeat of a peer removes it.
    Dead,
    /// No heartbeat within its session timeout (a hung or stopped process); it is removed at
    /// the next heartbeat of a peer.
    Expired,
    /// In the generation, but its lease is gone (it left and nobody reconciled yet).
    Gone,
}

impl MemberStatus {
    /// Still a member: alive, or a static member away within its session.
    pub fn is_live(self) -> bool {
        matches!(self, MemberStatus::Alive | MemberStatus::Away)
    }
}

impl From<Liveness> for MemberStatus {
    fn from(l: Liveness) -> Self {
        match l {
            Liveness::Alive => MemberStatus::Alive,
            Liveness::Away => MemberStatus::Away,
            Liveness::Dead => MemberStatus::Dead,
            Liveness::Expired => MemberStatus::Expired,
        }
    }
}

impl std::fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Away => "away",
            MemberStatus::Dead => "dead",
            MemberStatus::Expired => "expired",
            MemberStatus::Gone => "gone",
        })
    }
}

/// One member, from its lease and the generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub status: MemberStatus,
    /// Whether the current generation counts it as a member.
    pub in_generation: bool,
    pub topics: Vec<String>,
    pub assignor: Option<String>,
    /// Its target assignment in the current generation.
    pub assignment: Vec<TopicPartition>,
    /// The partitions it consumes right now (differs from `assignment` during a handover).
    pub owned: Vec<TopicPartition>,
    pub joined_at_ms: Option<i64>,
    pub last_heartbeat_ms: Option<i64>,
    pub session_timeout_ms: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
}

/// One partition of the offsets view (Kafka's `--describe --offsets` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    /// The committed offset (the next to read), if any.
    pub current_offset: Option<i64>,
    pub committed_at_ms: Option<i64>,
    /// `None` when the topic or partition no longer exists.
    pub log_start_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - current_offset`.
    pub lag: Option<i64>,
    /// The committed offset points at records deleted by retention: the group resumes at the
    /// log start offset.
    pub below_log_start: bool,
    /// The member consuming it now, else the member it is assigned to.
    pub consumer_id: Option<String>,
    pub consumer_status: Option<MemberStatus>,
    pub host: Option<String>,
    pub client_id: Option<String>,
}

impl PartitionView {
    /// The row of `tp` from its committed offset (`current`, committed at `committed_at_ms`),
    /// its log bounds (start, end; `None` when the partition no longer exists) and the member
    /// consuming it (`consumer`, whose view is `member` when it is known): lag and "below the
    /// log start" are derived here, for either target.
    pub fn new(
        tp: TopicPartition,
        current: Option<i64>,
        committed_at_ms: Option<i64>,
        bounds: Option<(i64, i64)>,
        consumer: Option<String>,
        member: Option<&MemberView>,
    ) -> PartitionView {
        PartitionView {
            current_offset: current,
            committed_at_ms,
            log_start_offset: bounds.map(|b| b.0),
            log_end_offset: bounds.map(|b| b.1),
            lag: match (current, bounds) {
                (Some(c), Some((_, end))) => Some(end - c),
                _ => None,
            },
            below_log_start: matches!((current, bounds), (Some(c), Some((start, _))) if c < start),
            consumer_id: consumer,
            consumer_status: member.map(|m| m.status),
            host: member.and_then(|m| m.host.clone()),
            client_id: member.map(|m| m.client_id.clone()),
            topic: tp.topic,
            partition: tp.partition,
        }
    }
}

/// Everything `group list` and `group describe` show of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    pub group: String,
    pub state: GroupPhase,
    /// The assignor (Kafka's protocol) of the group.
    pub assignor: Option<String>,
    pub generation: i32,
    /// Alive members plus static members away within their session.
    pub live_members: usize,
    /// Topics subscribed by a member or with committed offsets.
    pub topics: Vec<String>,
    /// Sum of the known lags (`None` when no partition has a committed offset).
    pub total_lag: Option<i64>,
    pub members: Vec<MemberView>,
    /// Empty unless the view was built with offsets.
    pub partitions: Vec<PartitionView>,
    pub history: Vec<RebalanceEvent>,
    /// When the view was taken (ms since the epoch).
    pub as_of_ms: i64,
}

impl GroupView {
    /// Members that are still members (alive, or static and away).
    pub fn live(&self) -> impl Iterator<Item = &MemberView> {
        self.members.iter().filter(|m| m.status.is_live())
    }

    /// Whether the group is between generations.
    pub fn is_rebalancing(&self) -> bool {
        matches!(
            self.state,
            GroupPhase::PreparingRebalance | GroupPhase::CompletingRebalance
        )
    }
}

/// What to read besides the group's own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewOptions {
    /// Read the log start and end offset of each partition (for lags).
    pub offsets: bool,
    /// Read the rebalance history (`history.yaml`).
    pub history: bool,
}

/// Whether a group exists: its directory is there (created by its first member, by an offset
/// reset, ...).
pub fn group_exists(store: &Store, group: &str) -> Result<bool, StoreError> {
    Ok(GroupDir::new(store, group)?.dir.is_dir())
}

/// Builds the view of a group, or `None` when it does not exist. Changes nothing.
pub fn describe_group(
    store: &Store,
    group: &str,
    options: ViewOptions,
    now_ms: i64,
) -> Result<Option<GroupView>, StoreError> {
    let coordinator = Coordinator::new(store, group)?;
    let dir = &coordinator.group;
    if !dir.dir.is_dir() {
        return Ok(None);
    }
    let has_files = dir.exists();
    let state = dir.load_state()?;
    let (offsets, _stale) = dir.load_current_offsets(store)?;
    let leases = coordinator.scan_leases(now_ms)?;
    let mut topics = TopicCache::new(store);
    let mut view = build(
        group,
        has_files,
        &state,
        &offsets,
        leases,
        &mut topics,
        options,
        now_ms,
    )?;
    if options.history {
        view.history = dir.load_history(&state.history)?;
    }
    Ok(Some(view))
}

/// Views of every group of the store, sorted by name.
pub fn describe_all(
    store: &Store,
    options: ViewOptions,
    now_ms: i64,
) -> Result<Vec<GroupView>, StoreError> {
    let mut views = Vec::new();
    for name in super::state::list_groups(store)? {
        if let Some(v) = describe_group(store, &name, options, now_ms)? {
            views.push(v);
        }
    }
    Ok(views)
}

/// Topic metadata loaded once per view.
struct TopicCache<'a> {
    store: &'a Store,
    topics: BTreeMap<String, Option<Topic>>,
}

impl<'a> TopicCache<'a> {
    fn new(store: &'a Store) -> Self {
        TopicCache {
            store,
            topics: BTreeMap::new(),
        }
    }

    fn get(&mut self, name: &str) -> Result<Option<&Topic>, StoreError> {
        if !self.topics.contains_key(name) {
            let topic = match self.store.topic(name) {
                Ok(t) => Some(t),
                Err(StoreError::TopicNotFound(_) | StoreError::Name(_)) => None,
                Err(e) => return Err(e),
            };
            self.topics.insert(name.to_owned(), topic);
        }
        Ok(self.topics[name].as_ref())
    }

    /// (log start, log end) of a partition; `None` when it does not exist.
    fn bounds(&mut self, topic: &str, partition: i32) -> Result<Option<(i64, i64)>, StoreError> {
        let Some(t) = self.get(topic)? else {
            return Ok(None);
        };
        let Ok(p) = t.partition(partition) else {
            return Ok(None);
        };
        let start = p.log_start_offset()?;
        let end = p.log_end_offset()?;
        Ok(Some((start, end.max(start))))
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    group: &str,
    has_files: bool,
    state: &GroupState,
    offsets: &Offsets,
    leases: Vec<LeaseEntry>,
    topics: &mut TopicCache<'_>,
    options: ViewOptions,
    now_ms: i64,
) -> Result<GroupView, StoreError> {
    // Members: every lease, and every member of the generation without one.
    let mut members: BTreeMap<String, MemberView> = BTreeMap::new();
    let lease_acks: BTreeMap<String, i32> = leases
        .iter()
        .filter_map(|e| Some((e.lease.member_id.clone(), e.lease.acked_generation?)))
        .collect();
    for entry in leases {
        let l = entry.lease;
        let id = l.member_id.clone();
        members.insert(
            id.clone(),
            MemberView {
                in_generation: state.members.contains_key(&id),
                assignment: state.assignment.get(&id).cloned().unwrap_or_default(),
                owned: Vec::new(),
                member_id: id,
                instance_id: l.instance_id,
                client_id: l.client_id,
                host: Some(l.host),
                pid: Some(l.pid),
                status: entry.liveness.into(),
                topics: l.topics,
                assignor: Some(l.assignor),
                joined_at_ms: Some(l.joined_at_ms),
                last_heartbeat_ms: Some(l.heartbeat_ms),
                session_timeout_ms: Some(l.session_timeout_ms),
                heartbeat_interval_ms: Some(l.heartbeat_interval_ms),
            },
        );
    }
    for (id, info) in &state.members {
        members.entry(id.clone()).or_insert_with(|| MemberView {
            member_id: id.clone(),
            instance_id: info.instance_id.clone(),
            client_id: info.client_id.clone(),
            host: None,
            pid: None,
            status: MemberStatus::Gone,
            in_generation: true,
            topics: info.topics.clone(),
            assignor: state.protocol.clone(),
            assignment: state.assignment.get(id).cloned().unwrap_or_default(),
            owned: Vec::new(),
            joined_at_ms: None,
            last_heartbeat_ms: None,
            session_timeout_ms: None,
            heartbeat_interval_ms: None,
        });
    }
    // Who consumes what now, and the target assignment, partition to member.
    let mut owner_of: BTreeMap<TopicPartition, &str> = BTreeMap::new();
    for (topic, parts) in &state.owners {
        for (p, m) in parts {
            let tp = TopicPartition::new(topic.clone(), *p);
            if let Some(mv) = members.get_mut(m) {
                mv.owned.push(tp.clone());
            }
            owner_of.insert(tp, m.as_str());
        }
    }
    let mut target_of: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
    for (m, tps) in &state.assignment {
        for tp in tps {
            target_of.insert(tp, m.as_str());
        }
    }

    let live: BTreeSet<&str> = members
        .values()
        .filter(|m| m.status.is_live())
        .map(|m| m.member_id.as_str())
        .collect();
    let mut subscribed: BTreeSet<String> = BTreeSet::new();
    for m in members.values().filter(|m| m.status.is_live()) {
        subscribed.extend(m.topics.iter().cloned());
    }
    for info in state.members.values() {
        subscribed.extend(info.topics.iter().cloned());
    }

    let generation_members: BTreeSet<&str> = state.members.keys().map(String::as_str).collect();
    let state_phase = if !has_files && members.is_empty() {
        GroupPhase::Dead
    } else if live.is_empty() {
        GroupPhase::Empty
    } else if live != generation_members || partitions_added(state, &live, &members, topics)? {
        GroupPhase::PreparingRebalance
    } else {
        state.phase_with(&lease_acks)
    };

    let mut partitions = Vec::new();
    if options.offsets {
        let mut keys: BTreeSet<TopicPartition> = BTreeSet::new();
        for (topic, parts) in offsets {
            keys.extend(parts.keys().map(|p| TopicPartition::new(topic.clone(), *p)));
        }
        keys.extend(owner_of.keys().cloned());
        keys.extend(target_of.keys().map(|tp| (*tp).clone()));
        for tp in keys {
            let committed = offsets.get(&tp.topic).and_then(|m| m.get(&tp.partition));
            let bounds = topics.bounds(&tp.topic, tp.partition)?;
            let current = committed.map(|c| c.offset);
            let consumer = owner_of
                .get(&tp)
                .copied()
                .or_else(|| target_of.get(&tp).copied());
            let member = consumer.and_then(|c| members.get(c));
            partitions.push(PartitionView::new(
                tp,
                current,
                committed.map(|c| c.committed_at_ms),
                bounds,
                consumer.map(str::to_owned),
                member,
            ));
        }
    }
    let lags: Vec<i64> = partitions.iter().filter_map(|p| p.lag).collect();
    let mut topic_names: BTreeSet<String> = offsets.keys().cloned().collect();
    topic_names.extend(subscribed);

    Ok(GroupView {
        group: group.to_owned(),
        state: state_phase,
        assignor: state
            .protocol
            .clone()
            .or_else(|| members.values().find_map(|m| m.assignor.clone())),
        generation: state.generation,
        live_members: live.len(),
        topics: topic_names.into_iter().collect(),
        total_lag: if lags.is_empty() {
            None
        } else {
            Some(lags.iter().sum())
        },
        members: members.into_values().collect(),
        partitions,
        history: Vec::new(),
        as_of_ms: now_ms,
    })
}

/// Whether a topic the live members subscribe to has a partition count other than the one the
/// generation's assignment was computed for (a rebalance is due).
fn partitions_added(
    state: &GroupState,
    live: &BTreeSet<&str>,
    members: &BTreeMap<String, MemberView>,
    topics: &mut TopicCache<'_>,
) -> Result<bool, StoreError> {
    let subscribed: BTreeSet<&String> = live
        .iter()
        .filter_map(|m| members.get(*m))
        .flat_map(|m| m.topics.iter())
        .collect();
    for topic in subscribed {
        let count = topics.get(topic)?.map(Topic::partition_count);
        if count != state.partition_counts.get(topic).copied() {
            return Ok(true);
        }
    }
    Ok(false)
}
