//! A group consumer: a [`Consumer`] over the partitions its [`Member`] owns, kept in step with
//! the group's generations and committing what was delivered.
//!
//! The caller renders records and writes them out; it tells the group consumer when output
//! was flushed ([`GroupConsumer::mark_flushed`]) or a record was processed
//! ([`GroupConsumer::mark_processed`]), and only those positions are ever committed. Before a
//! partition is released, the caller's `flush` is called so what was delivered is committed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::assignor::{self, RebalanceProtocol, TopicPartition};
use super::member::{Member, MemberConfig, OutputGate};
use super::state::{GroupPhase, GroupState};
use super::GroupError;
use crate::consume::{resolve_start, Consumer, Polled};
use crate::record::RecordRef;
use crate::spec::OffsetSpec;
use crate::store::{fsutil, Partition, Store};

/// Where a partition without a committed offset starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Refuse: an error naming the partitions.
    None,
}

#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    pub member: MemberConfig,
    pub auto_offset_reset: OffsetReset,
    /// `-o`: where partitions without a committed offset start (overrides the reset policy).
    pub start: Option<OffsetSpec>,
    pub auto_commit_interval: Duration,
    /// False with `--no-commit`.
    pub commit: bool,
}

/// Something the caller may want to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    Joined {
        member_id: String,
        generation: i32,
    },
    Rebalanced {
        generation: i32,
        assigned: Vec<TopicPartition>,
        revoked: Vec<TopicPartition>,
    },
    Started {
        partition: TopicPartition,
        offset: i64,
        committed: bool,
    },
    Clamped {
        partition: TopicPartition,
        committed: i64,
        now: i64,
    },
    Fenced,
    /// The group had committed offsets for an earlier topic of this name (deleted since, by
    /// a spool that did not delete offsets with their topic): they are ignored.
    StaleOffsets {
        topic: String,
        partitions: usize,
    },
}

pub struct GroupConsumer {
    store: Store,
    member: Member,
    consumer: Consumer,
    config: GroupConsumerConfig,
    eager: bool,
    state: GroupState,
    seen_generation: i32,
    /// Partitions this consumer reads (and owns in the group).
    held: BTreeSet<TopicPartition>,
    /// Positions safe to commit: output for them was flushed or processed.
    committable: BTreeMap<TopicPartition, i64>,
    committed: BTreeMap<TopicPartition, i64>,
    last_commit: Instant,
    /// (inode, mtime ns, len) of `group.yaml` when last read: a cheap change test.
    stamp: Option<(u64, i128, u64)>,
    last_acquire_try: Instant,
    events: Vec<GroupEvent>,
}

impl GroupConsumer {
    pub fn join(store: &Store, config: GroupConsumerConfig) -> Result<GroupConsumer, GroupError> {
        let eager = match assignor::by_name(&config.member.assignor) {
            Some(a) => a.protocol() == RebalanceProtocol::Eager,
            None => false,
        };
        let mut consumer = Consumer::new();
        let (member, state) = Member::join(store, config.member.clone(), consumer.notifier())?;
        consumer.watch(&member.coordinator.group.dir);
        consumer.watch(&member.coordinator.group.members_dir());
        let mut events = vec![GroupEvent::Joined {
            member_id: member.member_id.clone(),
            generation: state.generation,
        }];
        let (_, stale) = member
            .coordinator
            .group
            .load_current_offsets(store)
            .map_err(GroupError::from)?;
        for s in stale {
            if config.member.topics.contains(&s.topic) {
                events.push(GroupEvent::StaleOffsets {
                    topic: s.topic,
                    partitions: s.partitions,
                });
            }
        }
        Ok(GroupConsumer {
            store: store.clone(),
            member,
            consumer,
            config,
            eager,
            state,
            seen_generation: -1,
            held: BTreeSet::new(),
            committable: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_commit: Instant::now(),
            stamp: None,
            last_acquire_try: Instant::now(),
            events,
        })
    }

    pub fn member_id(&self) -> &str {
        &self.member.member_id
    }

    pub fn generation(&self) -> i32 {
        self.state.generation
    }

    pub fn take_events(&mut self) -> Vec<GroupEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn consumer_mut(&mut self) -> &mut Consumer {
        &mut self.consumer
    }

    /// Follows the group: rejoins after fencing, revokes and takes up partitions for a new
    /// generation, and auto-commits. `flush` writes out everything delivered so far.
    pub fn maintain(
        &mut self,
        flush: &mut dyn FnMut() -> std::io::Result<()>,
    ) -> Result<(), MaintainError> {
        if self.member.is_fenced() {
            self.drop_all();
            self.events.push(GroupEvent::Fenced);
            self.state = self.member.rejoin()?;
            self.seen_generation = -1;
            self.stamp = None;
        }
        let stamp = file_stamp(&self.member.coordinator.group.group_file());
        let changed = stamp != self.stamp;
        let target: BTreeSet<TopicPartition> = self.target();
        let pending = !target.is_subset(&self.held);
        let retry_due = self.last_acquire_try.elapsed() >= self.config.member.heartbeat_interval;
        if changed || (pending && retry_due) {
            self.stamp = stamp;
            self.state = self
                .member
                .coordinator
                .group
                .load_state()
                .map_err(GroupError::from)?;
            self.member.watch_peers(&self.state);
        }
        if !self.state.members.contains_key(&self.member.member_id) {
            self.member.mark_fenced();
            return Ok(());
        }
        if self.state.generation > self.seen_generation {
            self.on_new_generation(flush)?;
        }
        let target = self.target();
        if !target.is_subset(&self.held) && (changed || retry_due) {
            self.acquire()?;
        }
        if self.config.commit && self.last_commit.elapsed() >= self.config.auto_commit_interval {
            flush().map_err(MaintainError::Output)?;
            self.mark_flushed();
            self.commit()?;
        }
        Ok(())
    }

    fn target(&self) -> BTreeSet<TopicPartition> {
        self.state
            .assignment
            .get(&self.member.member_id)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn on_new_generation(
        &mut self,
        flush: &mut dyn FnMut() -> std::io::Result<()>,
    ) -> Result<(), MaintainError> {
        let target = self.target();
        let revoked: Vec<TopicPartition> = if self.eager {
            self.held.iter().cloned().collect()
        } else {
            self.held.difference(&target).cloned().collect()
        };
        if !revoked.is_empty() {
            flush().map_err(MaintainError::Output)?;
            self.mark_flushed();
        }
        let offsets: Vec<(TopicPartition, Option<i64>)> = revoked
            .iter()
            .map(|tp| {
                let o = self
                    .committable
                    .get(tp)
                    .copied()
                    .filter(|_| self.config.commit);
                (tp.clone(), o)
            })
            .collect();
        for tp in &revoked {
            if let Ok(p) = self.partition(tp) {
                self.consumer.unassign(&p);
            }
            self.held.remove(tp);
            self.committable.remove(tp);
            self.committed.remove(tp);
        }
        let generation = self.state.generation;
        match self.member.coordinator.revoke(
            &self.member.member_id,
            generation,
            &offsets,
            fsutil::now_ms(),
        ) {
            Ok(state) => self.state = state,
            Err(GroupError::Fenced(_)) => {
                self.member.mark_fenced();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        self.seen_generation = generation;
        // Our own write changed group.yaml; read it again next time rather than risk taking a
        // peer's write that landed just after ours for our own.
        self.stamp = None;
        self.events.push(GroupEvent::Rebalanced {
            generation,
            assigned: target.into_iter().collect(),
            revoked,
        });
        Ok(())
    }

    fn acquire(&mut self) -> Result<(), MaintainError> {
        self.last_acquire_try = Instant::now();
        let (state, taken) =
            match self
                .member
                .coordinator
                .acquire(&self.member.member_id, self.eager, &self.held)
            {
                Ok(r) => r,
                Err(GroupError::Fenced(_)) => {
                    self.member.mark_fenced();
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
        self.state = state;
        // Our own write changed group.yaml; read it again next time rather than risk taking a
        // peer's write that landed just after ours for our own.
        self.stamp = None;
        let mut missing = Vec::new();
        for (tp, committed) in taken {
            let partition = self.partition(&tp)?;
            let start = match committed {
                Some(c) => {
                    let log_start = partition.log_start_offset().map_err(GroupError::from)?;
                    let log_end = partition.log_end_offset().map_err(GroupError::from)?;
                    let now = c.clamp(log_start, log_end.max(log_start));
                    if now != c {
                        self.events.push(GroupEvent::Clamped {
                            partition: tp.clone(),
                            committed: c,
                            now,
                        });
                    }
                    now
                }
                None => match (self.config.start, self.config.auto_offset_reset) {
                    (Some(spec), _) => resolve_start(&partition, spec).map_err(GroupError::from)?.0,
                    (None, OffsetReset::Earliest) => {
                        partition.log_start_offset().map_err(GroupError::from)?
                    }
                    (None, OffsetReset::Latest) => {
                        partition.log_end_offset().map_err(GroupError::from)?
                    }
                    (None, OffsetReset::None) => {
                        missing.push(tp.clone());
                        continue;
                    }
                },
            };
            self.consumer
                .assign(&partition, start)
                .map_err(GroupError::from)?;
            self.events.push(GroupEvent::Started {
                partition: tp.clone(),
                offset: start,
                committed: committed.is_some(),
            });
            self.held.insert(tp.clone());
            self.committable.insert(tp, start);
        }
        if !missing.is_empty() {
            let partitions = missing
                .iter()
                .map(|tp| format!("{}/{}", tp.topic, tp.partition))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(GroupError::NoCommittedOffset { partitions }.into());
        }
        Ok(())
    }

    fn partition(&self, tp: &TopicPartition) -> Result<Partition, GroupError> {
        Ok(self.store.topic(&tp.topic)?.partition(tp.partition)?)
    }

    fn drop_all(&mut self) {
        for tp in std::mem::take(&mut self.held) {
            if let Ok(p) = self.partition(&tp) {
                self.consumer.unassign(&p);
            }
        }
        self.committable.clear();
        self.committed.clear();
    }

    /// Delivers records of the held partitions. Delivers nothing while the member's session is
    /// in doubt (after a long stop) until the heartbeat thread has settled it.
    pub fn poll<E, F>(&mut self, budget: usize, sink: F) -> Result<Polled, E>
    where
        E: From<crate::consume::ConsumeError>,
        F: FnMut(&str, i32, RecordRef<'_>) -> Result<(), E>,
    {
        if !self.member.session_valid() && !self.member.await_session() {
            return Ok(Polled {
                delivered: 0,
                all_at_end: true,
            });
        }
        self.consumer.poll(budget, sink)
    }

    /// Whether output may be written now: false once the member is known to be fenced, so
    /// records of partitions it no longer owns are not printed.
    pub fn may_output(&self) -> bool {
        self.member.await_session()
    }

    /// The check to make before every write of records (see [`OutputGate`]); it stays valid
    /// (and says no) after the member rejoined with a new lease.
    pub fn output_gate(&self) -> OutputGate {
        self.member.output_gate()
    }

    /// Everything delivered so far has been written out: those positions may be committed.
    pub fn mark_flushed(&mut self) {
        for (topic, partition, next) in self.consumer.positions() {
            let tp = TopicPartition::new(topic, partition);
            if self.held.contains(&tp) {
                self.committable.insert(tp, next);
            }
        }
        self.member.note_progress();
    }

    /// The record at `offset` was processed (for `--exec`).
    pub fn mark_processed(&mut self, topic: &str, partition: i32, offset: i64) {
        let tp = TopicPartition::new(topic, partition);
        if self.held.contains(&tp) {
            self.committable.insert(tp, offset + 1);
        }
        self.member.note_progress();
    }

    /// Nothing to read: counts as progress for the max poll interval.
    pub fn note_idle(&self) {
        self.member.note_progress();
    }

    /// Commits the committable positions that changed.
    pub fn commit(&mut self) -> Result<(), MaintainError> {
        self.last_commit = Instant::now();
        if !self.config.commit {
            return Ok(());
        }
        let offsets: Vec<(TopicPartition, i64)> = self
            .committable
            .iter()
            .filter(|(tp, o)| self.committed.get(*tp) != Some(*o))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        match self
            .member
            .coordinator
            .commit(&self.member.member_id, &offsets, fsutil::now_ms())
        {
            Ok(()) => {
                self.committed.extend(offsets);
                Ok(())
            }
            Err(GroupError::Fenced(_)) => {
                self.member.mark_fenced();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The group is stable and this member holds all its target partitions.
    pub fn settled(&self) -> bool {
        self.state.phase() == GroupPhase::Stable && self.target() == self.held
    }

    /// Sleeps until something changes (records, the group) or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let cap = self
            .config
            .member
            .heartbeat_interval
            .min(self.config.auto_commit_interval);
        self.consumer.wait(timeout.min(cap));
    }

    /// Commits what was flushed and leaves the group.
    pub fn close(self) -> Result<(), MaintainError> {
        let offsets: Vec<(TopicPartition, i64)> = if self.config.commit && !self.member.is_fenced()
        {
            self.committable
                .iter()
                .map(|(tp, o)| (tp.clone(), *o))
                .collect()
        } else {
            Vec::new()
        };
        self.member.leave(&offsets)?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
}

fn file_stamp(path: &std::path::Path) -> Option<(u64, i128, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.ino(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.len(),
    ))
}
