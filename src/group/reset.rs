//! Changing a group from outside it, as Kafka's `kafka-consumer-groups.sh` does: resetting its
//! committed offsets, deleting some of them, or deleting the whole group.
//!
//! Each is allowed only while the group is inactive, as in Kafka: no member alive and no static
//! member away within its session (an away static member still holds its partitions, waiting
//! for its process to come back, so it counts as live). Changes are made under the group lock,
//! so no member can join half-way; dead and expired members' leases are cleared first (as any
//! member noticing them would), so a hung member waking up later finds itself fenced instead of
//! committing over the reset.
//!
//! A reset computes a plan first (the prior and the new offset of each partition), which is
//! what a dry run shows; executing it recomputes the plan under the lock and writes it to
//! `offsets.yaml`. New offsets are clamped into `[log start, log end]`, with a note saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::assignor::TopicPartition;
use super::coordinator::{Coordinator, LeaseEntry};
use super::lease::Liveness;
use super::state::{Committed, GroupDir, Offsets};
use crate::store::error::IoContext;
use crate::store::{fsutil, Store, StoreError};

/// Where a reset moves each partition's committed offset (Kafka's `--to-*`, `--shift-by`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetTo {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// The committed offset (the log end where nothing was committed).
    Current,
    /// This offset.
    Offset(i64),
    /// The committed offset plus this (negative to go back); needs a committed offset.
    ShiftBy(i64),
    /// The first offset whose timestamp is at or after this (ms since the epoch); the log end
    /// where every record is older.
    Timestamp(i64),
    /// Offsets given one by one (`--from-file`).
    Explicit(BTreeMap<TopicPartition, i64>),
}

/// Which partitions a reset touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These topics, each with the partitions named (`None`: all of its partitions).
    Topics(Vec<(String, Option<Vec<i32>>)>),
    /// Every partition the group has committed offsets for.
    AllTopics,
    /// The partitions of a [`ResetTo::Explicit`] plan.
    Explicit,
}

/// One partition of a reset plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOffset {
    pub topic: String,
    pub partition: i32,
    pub prior_offset: Option<i64>,
    pub new_offset: i64,
}

/// Something the user should know about a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResetNote {
    /// The requested offset was past the log end.
    ClampedToEnd {
        topic: String,
        partition: i32,
        requested: i64,
        offset: i64,
    },
    /// The requested offset was before the log start.
    ClampedToStart {
        topic: String,
        partition: i32,
        requested: i64,
        offset: i64,
    },
    /// No record at or after the timestamp: the log end is used.
    NoRecordSince {
        topic: String,
        partition: i32,
        timestamp_ms: i64,
        offset: i64,
    },
    /// A committed topic no longer exists (`--all-topics`): its offsets are left alone.
    TopicGone { topic: String },
}

impl fmt::Display for ResetNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetNote::ClampedToEnd {
                topic,
                partition,
                requested,
                offset,
            } => write!(
                f,
                "New offset ({requested}) is higher than latest offset for topic partition {topic}-{partition}. Value will be set to {offset}"
            ),
            ResetNote::ClampedToStart {
                topic,
                partition,
                requested,
                offset,
            } => write!(
                f,
                "New offset ({requested}) is lower than earliest offset for topic partition {topic}-{partition}. Value will be set to {offset}"
            ),
            ResetNote::NoRecordSince {
                topic,
                partition,
                timestamp_ms,
                offset,
            } => write!(
                f,
                "No record of topic partition {topic}-{partition} has a timestamp at or after {}. Value will be set to the latest offset, {offset}",
                crate::spec::format_rfc3339_millis(*timestamp_ms)
            ),
            ResetNote::TopicGone { topic } => write!(
                f,
                "Topic {topic} no longer exists; its committed offsets are left as they are"
            ),
        }
    }
}

/// A reset of one group: what would change (a dry run) or what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetPlan {
    pub group: String,
    /// The group did not exist: executing the plan creates it.
    pub new_group: bool,
    pub offsets: Vec<PlannedOffset>,
    pub notes: Vec<ResetNote>,
    /// Whether the plan was written.
    pub executed: bool,
}

/// A member that keeps a group active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveMember {
    pub member_id: String,
    pub pid: u32,
    pub host: String,
    /// A static member whose process is gone but whose session has not expired.
    pub away: bool,
    /// For an away member: ms until its session expires.
    pub session_left_ms: i64,
}

impl fmt::Display for LiveMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.away {
            write!(
                f,
                "{} (static member away: pid {} on {} is gone, but it keeps its partitions until its session times out in {})",
                self.member_id,
                self.pid,
                self.host,
                crate::spec::format_duration_ms((self.session_left_ms / 1000 + 1) * 1000)
            )
        } else {
            write!(f, "{} (pid {} on {})", self.member_id, self.pid, self.host)
        }
    }
}

fn list_members(members: &[LiveMember]) -> String {
    members
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What the refused operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ResetOffsets,
    Delete,
}

/// Errors of the operations of this module.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("consumer group '{0}' does not exist")]
    NotFound(String),
    #[error("{}", active_message(group, *action, members))]
    Active {
        group: String,
        action: Action,
        members: Vec<LiveMember>,
    },
    #[error("cannot delete the offsets of topic '{topic}': consumer group '{group}' is subscribed to it (by {})", list_members(members))]
    Subscribed {
        group: String,
        topic: String,
        members: Vec<LiveMember>,
    },
    #[error("cannot shift the offset of {topic}/{partition} in consumer group '{group}': it has no committed offset to shift")]
    NoCommittedOffset {
        group: String,
        topic: String,
        partition: i32,
    },
    #[error("consumer group '{0}' has no committed offsets, so --all-topics selects nothing")]
    NothingCommitted(String),
}

fn active_message(group: &str, action: Action, members: &[LiveMember]) -> String {
    let n = members.len();
    let what = match action {
        Action::ResetOffsets => {
            format!(
                "offsets of consumer group '{group}' can only be reset if the group is inactive"
            )
        }
        Action::Delete => {
            format!("consumer group '{group}' can only be deleted if it has no live members")
        }
    };
    format!(
        "{what}, but it has {n} live member{}: {}",
        plural(n),
        list_members(members)
    )
}

/// Refuses `action` while the group has live members, naming them.
fn ensure_inactive(
    coordinator: &Coordinator,
    group: &str,
    action: Action,
    now_ms: i64,
) -> Result<(), AdminError> {
    let live = live_members(&coordinator.scan_leases(now_ms)?, now_ms);
    if live.is_empty() {
        Ok(())
    } else {
        Err(AdminError::Active {
            group: group.to_owned(),
            action,
            members: live,
        })
    }
}

fn live_members(leases: &[LeaseEntry], now_ms: i64) -> Vec<LiveMember> {
    leases
        .iter()
        .filter(|e| matches!(e.liveness, Liveness::Alive | Liveness::Away))
        .map(|e| LiveMember {
            member_id: e.lease.member_id.clone(),
            pid: e.lease.pid,
            host: e.lease.host.clone(),
            away: e.liveness == Liveness::Away,
            session_left_ms: (e.lease.heartbeat_ms + e.lease.session_timeout_ms as i64 - now_ms)
                .max(0),
        })
        .collect()
}

/// Computes a reset without changing anything (a dry run). Refused, as the reset itself would
/// be, while the group has live members.
pub fn plan_reset(
    store: &Store,
    group: &str,
    scope: &Scope,
    to: &ResetTo,
    now_ms: i64,
) -> Result<ResetPlan, AdminError> {
    let coordinator = Coordinator::new(store, group)?;
    ensure_inactive(&coordinator, group, Action::ResetOffsets, now_ms)?;
    let (offsets, _stale) = coordinator.group.load_current_offsets(store)?;
    let new_group = !coordinator.group.dir.is_dir();
    compute(store, group, &offsets, scope, to, new_group)
}

/// Resets the group's offsets under the group lock (creating the group if needed) and returns
/// what was written.
pub fn execute_reset(
    store: &Store,
    group: &str,
    scope: &Scope,
    to: &ResetTo,
    now_ms: i64,
) -> Result<ResetPlan, AdminError> {
    let coordinator = Coordinator::new(store, group)?;
    let new_group = !coordinator.group.dir.is_dir();
    // Check before taking the lock, so a refused reset does not create the group.
    ensure_inactive(&coordinator, group, Action::ResetOffsets, now_ms)?;
    store.ensure_created()?;
    let lock = coordinator.group.lock()?;
    ensure_inactive(&coordinator, group, Action::ResetOffsets, now_ms)?;
    clear_departed(&coordinator, &lock, now_ms)?;
    let (mut offsets, _stale) = coordinator.group.load_current_offsets(store)?;
    let mut plan = compute(store, group, &offsets, scope, to, new_group)?;
    for p in &plan.offsets {
        let topic_id = store.topic(&p.topic)?.meta.id;
        offsets.entry(p.topic.clone()).or_default().insert(
            p.partition,
            Committed {
                offset: p.new_offset,
                committed_at_ms: now_ms,
                topic_id: Some(topic_id),
            },
        );
    }
    coordinator.group.save_offsets_with(&lock, &offsets)?;
    plan.executed = true;
    Ok(plan)
}

/// Under the group lock, with no live member: removes the leases of dead and expired members
/// and ends their generation, as the next member to heartbeat would.
fn clear_departed(
    coordinator: &Coordinator,
    lock: &super::state::GroupLock,
    now_ms: i64,
) -> Result<(), StoreError> {
    coordinator.evict_expired(lock, now_ms)?;
    Ok(())
}

fn compute(
    store: &Store,
    group: &str,
    offsets: &Offsets,
    scope: &Scope,
    to: &ResetTo,
    new_group: bool,
) -> Result<ResetPlan, AdminError> {
    let mut notes = Vec::new();
    let mut partitions: BTreeSet<TopicPartition> = BTreeSet::new();
    match scope {
        Scope::Topics(topics) => {
            for (name, parts) in topics {
                let topic = store.topic(name)?;
                match parts {
                    None => partitions.extend(
                        (0..topic.partition_count()).map(|p| TopicPartition::new(name.clone(), p)),
                    ),
                    Some(ps) => {
                        for &p in ps {
                            topic.partition(p)?;
                            partitions.insert(TopicPartition::new(name.clone(), p));
                        }
                    }
                }
            }
        }
        Scope::AllTopics => {
            if offsets.values().all(BTreeMap::is_empty) {
                return Err(AdminError::NothingCommitted(group.to_owned()));
            }
            for (name, parts) in offsets {
                match store.topic(name) {
                    Ok(topic) => partitions.extend(
                        parts
                            .keys()
                            .filter(|p| **p < topic.partition_count())
                            .map(|p| TopicPartition::new(name.clone(), *p)),
                    ),
                    Err(StoreError::TopicNotFound(_)) => notes.push(ResetNote::TopicGone {
                        topic: name.clone(),
                    }),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Scope::Explicit => {
            if let ResetTo::Explicit(map) = to {
                for tp in map.keys() {
                    store.topic(&tp.topic)?.partition(tp.partition)?;
                    partitions.insert(tp.clone());
                }
            }
        }
    }

    let mut planned_offsets = Vec::with_capacity(partitions.len());
    let mut topics: BTreeMap<String, crate::store::Topic> = BTreeMap::new();
    for tp in partitions {
        if !topics.contains_key(&tp.topic) {
            topics.insert(tp.topic.clone(), store.topic(&tp.topic)?);
        }
        let partition = topics[&tp.topic].partition(tp.partition)?;
        let start = partition.log_start_offset()?;
        let end = partition.log_end_offset()?.max(start);
        let prior = offsets
            .get(&tp.topic)
            .and_then(|m| m.get(&tp.partition))
            .map(|c| c.offset);
        let planned = plan_partition(
            &tp,
            prior,
            (start, end),
            to,
            |ts| partition.offset_for_timestamp(ts),
            &mut notes,
        )?;
        match planned {
            Some(p) => planned_offsets.push(p),
            None => {
                return Err(AdminError::NoCommittedOffset {
                    group: group.to_owned(),
                    topic: tp.topic,
                    partition: tp.partition,
                })
            }
        }
    }
    Ok(ResetPlan {
        group: group.to_owned(),
        new_group,
        offsets: planned_offsets,
        notes,
        executed: false,
    })
}

/// One partition's line of a reset plan: where `to` moves it from `prior` (its committed
/// offset), clamped into `bounds` (log start, log end), with a note where it was clamped or no
/// record was found. `Ok(None)` for a shift of a partition without a committed offset.
/// `offset_for_timestamp` answers [`ResetTo::Timestamp`]: the first offset at or after it,
/// `None` when every record is older. Shared by the local store and a Kafka cluster, which
/// differ only in where the offsets come from.
pub fn plan_partition<E>(
    tp: &TopicPartition,
    prior: Option<i64>,
    (start, end): (i64, i64),
    to: &ResetTo,
    offset_for_timestamp: impl FnOnce(i64) -> Result<Option<i64>, E>,
    notes: &mut Vec<ResetNote>,
) -> Result<Option<PlannedOffset>, E> {
    let requested = match to {
        ResetTo::Earliest => start,
        ResetTo::Latest => end,
        ResetTo::Current => prior.unwrap_or(end),
        ResetTo::Offset(n) => *n,
        ResetTo::ShiftBy(n) => match prior {
            Some(c) => c.saturating_add(*n),
            None => return Ok(None),
        },
        ResetTo::Timestamp(ts) => match offset_for_timestamp(*ts)? {
            Some(o) => o,
            None => {
                notes.push(ResetNote::NoRecordSince {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    timestamp_ms: *ts,
                    offset: end,
                });
                end
            }
        },
        ResetTo::Explicit(map) => map.get(tp).copied().unwrap_or(end),
    };
    let new_offset = requested.clamp(start, end);
    if requested > end {
        notes.push(ResetNote::ClampedToEnd {
            topic: tp.topic.clone(),
            partition: tp.partition,
            requested,
            offset: new_offset,
        });
    } else if requested < start {
        notes.push(ResetNote::ClampedToStart {
            topic: tp.topic.clone(),
            partition: tp.partition,
            requested,
            offset: new_offset,
        });
    }
    Ok(Some(PlannedOffset {
        topic: tp.topic.clone(),
        partition: tp.partition,
        prior_offset: prior,
        new_offset,
    }))
}

/// Deletes a group (its committed offsets, generation and history). Refused while it has live
/// members.
pub fn delete_group(store: &Store, group: &str, now_ms: i64) -> Result<(), AdminError> {
    let coordinator = Coordinator::new(store, group)?;
    let dir = coordinator.group.dir.clone();
    if !dir.is_dir() {
        return Err(AdminError::NotFound(group.to_owned()));
    }
    store.ensure_created()?;
    let lock = coordinator.group.lock()?;
    ensure_inactive(&coordinator, group, Action::Delete, now_ms)?;
    // The group vanishes with one rename (into the store's tmp/ on the same file system), then
    // its files are removed; a member joining afterwards starts a new group.
    let doomed = store.root().join("tmp").join(format!(
        "delete-group-{group}-{}-{}",
        std::process::id(),
        fsutil::now_ms()
    ));
    std::fs::rename(&dir, &doomed).at("delete", &dir)?;
    let groups = store.groups_dir();
    fsutil::sync_dir(&groups).at("sync", &groups)?;
    drop(lock);
    std::fs::remove_dir_all(&doomed).at("delete", &doomed)?;
    Ok(())
}

/// What happened to one partition's offset in [`delete_offsets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedOffset {
    pub topic: String,
    pub partition: i32,
    /// The committed offset removed; `None` when there was none.
    pub offset: Option<i64>,
}

/// Deletes the committed offsets of some topics (all their partitions, or those named).
/// Refused for a topic a live member subscribes to, as Kafka refuses it.
pub fn delete_offsets(
    store: &Store,
    group: &str,
    topics: &[(String, Option<Vec<i32>>)],
    now_ms: i64,
) -> Result<Vec<DeletedOffset>, AdminError> {
    let dir = GroupDir::new(store, group)?;
    if !dir.dir.is_dir() {
        return Err(AdminError::NotFound(group.to_owned()));
    }
    let coordinator = Coordinator::new(store, group)?;
    let lock = dir.lock()?;
    let leases = coordinator.scan_leases(now_ms)?;
    let live = live_members(&leases, now_ms);
    for (topic, _) in topics {
        let subscribers: Vec<LiveMember> = live
            .iter()
            .filter(|m| {
                leases
                    .iter()
                    .any(|e| e.lease.member_id == m.member_id && e.lease.topics.contains(topic))
            })
            .cloned()
            .collect();
        if !subscribers.is_empty() {
            return Err(AdminError::Subscribed {
                group: group.to_owned(),
                topic: topic.clone(),
                members: subscribers,
            });
        }
    }
    let mut offsets = dir.load_offsets()?;
    let mut result = Vec::new();
    for (topic, parts) in topics {
        let committed = offsets.get_mut(topic);
        match (committed, parts) {
            (Some(m), None) => {
                for (p, c) in std::mem::take(m) {
                    result.push(DeletedOffset {
                        topic: topic.clone(),
                        partition: p,
                        offset: Some(c.offset),
                    });
                }
            }
            (Some(m), Some(ps)) => {
                for p in ps {
                    result.push(DeletedOffset {
                        topic: topic.clone(),
                        partition: *p,
                        offset: m.remove(p).map(|c| c.offset),
                    });
                }
            }
            (None, None) => {}
            (None, Some(ps)) => result.extend(ps.iter().map(|p| DeletedOffset {
                topic: topic.clone(),
                partition: *p,
                offset: None,
            })),
        }
    }
    offsets.retain(|_, m| !m.is_empty());
    if result.iter().any(|d| d.offset.is_some()) {
        dir.save_offsets_with(&lock, &offsets)?;
    }
    Ok(result)
}

/// The offsets of a `--from-file` plan: per group (`None`: for every group reset).
pub type PlanFile = BTreeMap<Option<String>, BTreeMap<TopicPartition, i64>>;

/// What is wrong with a plan file.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} line {line}: {reason}", path.display())]
    Line {
        path: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{} has no offsets", path.display())]
    Empty { path: std::path::PathBuf },
}

/// Reads a plan as `--export` writes it: `topic,partition,offset` lines, or
/// `group,topic,partition,offset` when several groups are reset. Blank lines and `#` comments
/// are skipped.
pub fn read_plan_file(path: &std::path::Path) -> Result<PlanFile, PlanFileError> {
    let bytes = std::fs::read(path).map_err(|source| PlanFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_plan(&String::from_utf8_lossy(&bytes)).map_err(|e| match e {
        PlanFileError::Line { line, reason, .. } => PlanFileError::Line {
            path: path.to_owned(),
            line,
            reason,
        },
        PlanFileError::Empty { .. } => PlanFileError::Empty {
            path: path.to_owned(),
        },
        other => other,
    })
}

/// Parses plan text (see [`read_plan_file`]); errors carry an empty path.
pub fn parse_plan(text: &str) -> Result<PlanFile, PlanFileError> {
    use crate::name::{self, NameKind};
    let mut plan: PlanFile = BTreeMap::new();
    let mut columns = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| PlanFileError::Line {
            path: Default::default(),
            line: i + 1,
            reason,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 3 && fields.len() != 4 {
            return Err(bad(format!(
                "expected 3 or 4 comma-separated fields, found {}",
                fields.len()
            )));
        }
        if *columns.get_or_insert(fields.len()) != fields.len() {
            return Err(bad("every line must have the same number of fields".into()));
        }
        let (group, rest) = if fields.len() == 4 {
            name::validate(NameKind::Group, fields[0]).map_err(|e| bad(e.to_string()))?;
            (Some(fields[0].to_owned()), &fields[1..])
        } else {
            (None, &fields[..])
        };
        name::validate(NameKind::Topic, rest[0]).map_err(|e| bad(e.to_string()))?;
        let partition: i32 = rest[1]
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| bad(format!("`{}` is not a partition number", rest[1])))?;
        let offset: i64 = rest[2]
            .parse()
            .map_err(|_| bad(format!("`{}` is not an offset", rest[2])))?;
        plan.entry(group)
            .or_default()
            .insert(TopicPartition::new(rest[0], partition), offset);
    }
    if plan.is_empty() {
        return Err(PlanFileError::Empty {
            path: Default::default(),
        });
    }
    Ok(plan)
}

/// Deletes a topic and, as Kafka does, its committed offsets in every group, so a topic
/// created later under the same name starts with none. (Offsets a member commits for the
/// deleted topic afterwards carry its id and are ignored, see [`Committed::belongs_to`].)
pub fn delete_topic(store: &Store, name: &str) -> Result<(), AdminError> {
    let id = store.topic(name)?.meta.id;
    store.delete_topic(name)?;
    for group in super::state::list_groups(store)? {
        let dir = GroupDir::new(store, &group)?;
        let forget = |offsets: &Offsets| {
            offsets.get(name).is_some_and(|parts| {
                parts
                    .values()
                    .any(|c| c.topic_id.as_deref().is_none_or(|i| i == id))
            })
        };
        if !forget(&dir.load_offsets()?) {
            continue;
        }
        let lock = dir.lock()?;
        let mut offsets = dir.load_offsets()?;
        if let Some(parts) = offsets.get_mut(name) {
            parts.retain(|_, c| c.topic_id.as_deref().is_some_and(|i| i != id));
            if parts.is_empty() {
                offsets.remove(name);
            }
        }
        dir.save_offsets_with(&lock, &offsets)?;
    }
    Ok(())
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_export_writes() {
        let plan = parse_plan("# plan\nt,0,5\n\nt,2,9\n").unwrap();
        assert_eq!(plan[&None][&TopicPartition::new("t", 2)], 9);
        let plan = parse_plan("g,t,1,3\n").unwrap();
        assert_eq!(plan[&Some("g".into())][&TopicPartition::new("t", 1)], 3);
        assert!(matches!(
            parse_plan("t,0\n"),
            Err(PlanFileError::Line { line: 1, .. })
        ));
        assert!(matches!(
            parse_plan("t,0,1\ng,t,0,1\n"),
            Err(PlanFileError::Line { line: 2, .. })
        ));
        assert!(matches!(
            parse_plan("t,-1,1\n"),
            Err(PlanFileError::Line { .. })
        ));
        assert!(matches!(
            parse_plan("../x,0,1\n"),
            Err(PlanFileError::Line { .. })
        ));
        assert!(matches!(parse_plan(""), Err(PlanFileError::Empty { .. })));
    }

    proptest! {
        #[test]
        fn never_panics(text in "(?s).{0,300}") {
            let _ = parse_plan(&text);
        }

        #[test]
        fn round_trips(rows in proptest::collection::btree_map(("[a-z]{1,5}", 0i32..100), any::<i64>(), 1..20)) {
            let text: String = rows.iter().map(|((t, p), o)| format!("{t},{p},{o}\n")).collect();
            let plan = parse_plan(&text).unwrap();
            prop_assert_eq!(plan[&None].len(), rows.len());
            for ((t, p), o) in &rows {
                prop_assert_eq!(plan[&None][&TopicPartition::new(t.clone(), *p)], *o);
            }
        }
    }
}

#[cfg(test)]
mod plan_partition_tests {
    use super::*;

    fn plan(prior: Option<i64>, to: ResetTo, at: Option<i64>) -> (Option<i64>, Vec<ResetNote>) {
        let mut notes = Vec::new();
        let tp = TopicPartition::new("t", 0);
        let planned = plan_partition::<()>(&tp, prior, (10, 20), &to, |_| Ok(at), &mut notes)
            .unwrap()
            .map(|p| p.new_offset);
        (planned, notes)
    }

    #[test]
    fn every_mode_lands_inside_the_log_with_a_note_when_clamped() {
        assert_eq!(plan(Some(15), ResetTo::Earliest, None).0, Some(10));
        assert_eq!(plan(Some(15), ResetTo::Latest, None).0, Some(20));
        assert_eq!(plan(Some(15), ResetTo::Current, None).0, Some(15));
        assert_eq!(plan(None, ResetTo::Current, None).0, Some(20));
        assert_eq!(plan(Some(15), ResetTo::ShiftBy(-3), None).0, Some(12));
        assert_eq!(plan(None, ResetTo::ShiftBy(-3), None).0, None);
        assert_eq!(plan(None, ResetTo::Timestamp(5), Some(13)).0, Some(13));
        let (offset, notes) = plan(None, ResetTo::Timestamp(5), None);
        assert_eq!(offset, Some(20));
        assert!(matches!(
            notes[..],
            [ResetNote::NoRecordSince { offset: 20, .. }]
        ));
        let (offset, notes) = plan(None, ResetTo::Offset(99), None);
        assert_eq!(offset, Some(20));
        assert!(matches!(
            notes[..],
            [ResetNote::ClampedToEnd { requested: 99, .. }]
        ));
        let (offset, notes) = plan(Some(15), ResetTo::ShiftBy(i64::MIN), None);
        assert_eq!(offset, Some(10));
        assert!(matches!(notes[..], [ResetNote::ClampedToStart { .. }]));
        let map = BTreeMap::from([(TopicPartition::new("t", 0), 17)]);
        assert_eq!(plan(None, ResetTo::Explicit(map), None).0, Some(17));
    }
}
