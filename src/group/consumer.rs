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
use super::state::{GroupPhase, GroupState, StoredState};
use super::GroupError;
use crate::consume::{resolve_start, Consumer, ConsumerSink, Polled};
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

/// A partition given up, with the offset to commit if anything was consumed.
type Revoked = (TopicPartition, Option<i64>);

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
    /// When an operation found the group lock busy: when to try again (soon, with jitter, so
    /// the members that found it busy do not all come back at once).
    retry_at: Option<Instant>,
    /// Partitions given up (cooperative) whose release is not folded in yet: the generation
    /// and each partition with the offset to commit.
    releasing: Option<(i32, Vec<Revoked>)>,
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
        // The group directory only: `group.yaml` changes with every generation and ownership
        // change. Leases change with every heartbeat of every member, which is the watcher
        // thread's business (see `member`), not the consuming thread's.
        consumer.watch(&member.coordinator.group.dir);
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
            retry_at: None,
            releasing: None,
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
            self.releasing = None;
            self.events.push(GroupEvent::Fenced);
            self.state = self.member.rejoin()?;
            self.seen_generation = -1;
            self.stamp = None;
        }
        let stamp = file_stamp(&self.member.coordinator.group.group_file());
        let changed = stamp != self.stamp;
        let pending = !self.target().is_subset(&self.held);
        let busy_retry = self.retry_at.is_some_and(|t| Instant::now() >= t);
        if busy_retry {
            self.retry_at = None;
        }
        // A look now and then whatever the notifications said (one may have been missed).
        let periodic = self.last_acquire_try.elapsed() >= self.config.member.heartbeat_interval;
        if periodic {
            self.last_acquire_try = Instant::now();
        }
        if changed || (pending && periodic) {
            self.stamp = stamp;
            // Every member wakes at every write of group.yaml; only a new generation, or
            // partitions still to take up, need the whole file read and parsed.
            let group_file = self.member.coordinator.group.group_file();
            let known = (self.state.generation, self.state.incarnation);
            if pending || super::state::peek_generation(&group_file) != Some(known) {
                match self
                    .member
                    .coordinator
                    .group
                    .read_state()
                    .map_err(GroupError::from)?
                {
                    StoredState::Found(state) => self.state = *state,
                    // Lost (removed, garbled): stop reading everything and rejoin; the join
                    // rebuilds it without handing out what live members may still read.
                    _ => {
                        self.drop_all();
                        self.member.mark_fenced();
                        return Ok(());
                    }
                }
                self.member.watch_peers(&self.state);
            }
        }
        if !self.state.members.contains_key(&self.member.member_id) {
            self.member.mark_fenced();
            return Ok(());
        }
        let look = changed || busy_retry || periodic;
        if self.state.generation > self.seen_generation && (look || self.seen_generation < 0) {
            self.on_new_generation(flush)?;
        }
        // The lock is taken only when a target partition is free to take: a member waiting
        // for another to release one waits for group.yaml to change, not on the lock.
        if look && self.releasing.is_some() && self.state.generation <= self.seen_generation {
            self.release_pending()?;
        }
        if look && self.state.generation <= self.seen_generation {
            if self.granted_waiting() {
                self.take_granted()?;
            }
            if self.can_take() {
                self.acquire()?;
            }
        }
        if self.config.commit && self.last_commit.elapsed() >= self.config.auto_commit_interval {
            flush().map_err(MaintainError::Output)?;
            self.mark_flushed();
            self.commit()?;
        }
        Ok(())
    }

    /// Whether, by the state last read, the group gave us a partition we do not read yet.
    fn granted_waiting(&self) -> bool {
        let me = self.member.member_id.as_str();
        let not_taken = self.not_taken();
        self.target()
            .iter()
            .any(|tp| self.state.owner(tp) == Some(me) && !not_taken.contains(tp))
    }

    /// Partitions not to take up as granted: those read already, and those given up whose
    /// release is not folded in yet (their last position is not committed).
    fn not_taken(&self) -> BTreeSet<TopicPartition> {
        let mut set = self.held.clone();
        if let Some((_, r)) = &self.releasing {
            set.extend(r.iter().map(|(tp, _)| tp.clone()));
        }
        set
    }

    /// Takes up what the group gave us (no lock, no write).
    fn take_granted(&mut self) -> Result<(), MaintainError> {
        let (state, taken) = match self
            .member
            .coordinator
            .granted(&self.member.member_id, &self.not_taken())
        {
            Ok(r) => r,
            Err(GroupError::Fenced(_)) => {
                self.member.mark_fenced();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.state = state;
        self.start(taken)
    }

    /// Whether, by the state last read, a target partition nobody owns can be taken up now.
    fn can_take(&self) -> bool {
        let me = self.member.member_id.as_str();
        let barrier_open =
            !self.eager
                || self.state.members.keys().all(|m| {
                    self.state.acked.get(m).copied().unwrap_or(-1) >= self.state.generation
                });
        barrier_open
            && self.target().iter().any(|tp| match self.state.owner(tp) {
                None => true,
                Some(owner) => self.eager && owner == me && !self.held.contains(tp),
            })
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
        // What the group says we own counts as much as what we read: a partition handed to us
        // that we had not taken up yet when the generation moved it elsewhere must be given
        // back too, or its new owner would wait for it forever.
        let mut ours: BTreeSet<TopicPartition> = self.held.clone();
        ours.extend(self.state.owned_by(&self.member.member_id));
        // Given up earlier and not handed over yet: given up again (its offset kept), also if
        // this generation gives it back to us, so it is committed before we read it again.
        let earlier: BTreeMap<TopicPartition, Option<i64>> = self
            .releasing
            .take()
            .map(|(_, r)| r.into_iter().collect())
            .unwrap_or_default();
        let mut revoked: Vec<TopicPartition> = if self.eager {
            ours.iter().cloned().collect()
        } else {
            ours.difference(&target).cloned().collect()
        };
        revoked.extend(
            earlier
                .keys()
                .filter(|tp| ours.contains(*tp) && !revoked.contains(*tp))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let generation = self.state.generation;
        if revoked.is_empty() && !self.eager {
            // Cooperative, nothing to give up: acknowledged in the lease, no group lock.
            self.member.acknowledge(generation)?;
            self.seen_generation = generation;
            self.events.push(GroupEvent::Rebalanced {
                generation,
                assigned: target.into_iter().collect(),
                revoked,
            });
            return Ok(());
        }
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
                    .or_else(|| earlier.get(tp).copied().flatten())
                    .filter(|_| self.config.commit);
                (tp.clone(), o)
            })
            .collect();
        if !self.eager {
            // Cooperative: stop reading them, then say so in a release note; whoever next
            // holds the group lock (this member if it can) commits and hands over every
            // member's releases at once.
            let given_up = self.stop_reading(&revoked);
            self.seen_generation = generation;
            self.releasing = Some((generation, offsets));
            self.events.push(GroupEvent::Rebalanced {
                generation,
                assigned: target.into_iter().collect(),
                revoked: given_up,
            });
            return self.release_pending();
        }
        // Nothing is read between here and the release (this thread does both), and what was
        // read is flushed above; if another process holds the group lock (it may be stopped),
        // the partitions are kept, still read, and given up at a later call.
        match self.member.coordinator.try_revoke(
            &self.member.member_id,
            generation,
            &offsets,
            fsutil::now_ms(),
        ) {
            Ok(Some(state)) => self.state = state,
            Ok(None) => {
                self.lock_busy();
                return Ok(());
            }
            Err(GroupError::Fenced(_)) => {
                self.member.mark_fenced();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let given_up = self.stop_reading(&revoked);
        self.seen_generation = generation;
        // Our own write changed group.yaml; read it again next time rather than risk taking a
        // peer's write that landed just after ours for our own.
        self.stamp = None;
        self.events.push(GroupEvent::Rebalanced {
            generation,
            assigned: target.into_iter().collect(),
            revoked: given_up,
        });
        Ok(())
    }

    /// Writes the release note of partitions given up (again, if a lock holder lost it) and
    /// folds every member's notes in if the group lock is free; done once the state shows the
    /// partitions gone from this member or a newer generation (which gives up again what it
    /// must).
    fn release_pending(&mut self) -> Result<(), MaintainError> {
        let Some((generation, offsets)) = &self.releasing else {
            return Ok(());
        };
        let me = self.member.member_id.clone();
        let still: Vec<(TopicPartition, Option<i64>)> = offsets
            .iter()
            .filter(|(tp, _)| self.state.owner(tp) == Some(me.as_str()))
            .cloned()
            .collect();
        if still.is_empty() {
            self.releasing = None;
            return Ok(());
        }
        let generation = *generation;
        let folded = self
            .member
            .coordinator
            .release(&me, generation, &still)
            .and_then(|()| self.member.coordinator.try_fold_releases(fsutil::now_ms()));
        match folded {
            Ok(Some(state)) => {
                self.state = state;
                // Our own write changed group.yaml; read it again next time rather than risk
                // taking a peer's write that landed just after ours for our own.
                self.stamp = None;
                if still
                    .iter()
                    .all(|(tp, _)| self.state.owner(tp) != Some(me.as_str()))
                {
                    self.releasing = None;
                }
            }
            Ok(None) => self.lock_busy(),
            Err(GroupError::Fenced(_)) => self.member.mark_fenced(),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn acquire(&mut self) -> Result<(), MaintainError> {
        self.last_acquire_try = Instant::now();
        let (state, taken) = match self.member.coordinator.try_acquire(
            &self.member.member_id,
            self.eager,
            &self.held,
        ) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.lock_busy();
                return Ok(());
            }
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
        self.start(taken)
    }

    /// Starts reading partitions just taken up, each from its committed offset or where the
    /// reset policy says.
    fn start(&mut self, taken: Vec<super::coordinator::Acquired>) -> Result<(), MaintainError> {
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

    /// Another process holds the group lock: try again in a few milliseconds.
    fn lock_busy(&mut self) {
        let jitter = u64::from(fsutil::random_bytes()[0] % 16);
        let at = Instant::now() + Duration::from_millis(2 + jitter);
        self.retry_at = Some(self.retry_at.map_or(at, |t| t.min(at)));
    }

    fn partition(&self, tp: &TopicPartition) -> Result<Partition, GroupError> {
        Ok(self.store.topic(&tp.topic)?.partition(tp.partition)?)
    }

    /// Stops reading `revoked` and forgets their positions; returns those of them this member
    /// was reading (the revocation it reports).
    fn stop_reading(&mut self, revoked: &[TopicPartition]) -> Vec<TopicPartition> {
        let given_up = revoked
            .iter()
            .filter(|tp| self.held.contains(*tp))
            .cloned()
            .collect();
        for tp in revoked {
            if let Ok(p) = self.partition(tp) {
                self.consumer.unassign(&p);
            }
            self.held.remove(tp);
            self.committable.remove(tp);
            self.committed.remove(tp);
        }
        given_up
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
    /// The sink takes a batch's records at once where it can ([`ConsumerSink::records`]); a
    /// closure taking one record at a time is a sink too.
    pub fn poll<E, S>(&mut self, budget: usize, sink: S) -> Result<Polled, E>
    where
        E: From<crate::consume::ConsumeError>,
        S: ConsumerSink<E>,
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
            .try_commit(&self.member.member_id, &offsets, fsutil::now_ms())
        {
            Ok(true) => {
                self.committed.extend(offsets);
                Ok(())
            }
            // The lock is busy: committed at the next interval (or on the way out).
            Ok(false) => Ok(()),
            Err(GroupError::Fenced(_)) => {
                self.member.mark_fenced();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The group is stable and this member holds all its target partitions.
    pub fn settled(&self) -> bool {
        if self.target() != self.held || self.state.phase() != GroupPhase::Stable {
            return false;
        }
        // Every member took the generation in (a blocked one has not: its partitions may move).
        self.member
            .coordinator
            .lease_acks()
            .is_ok_and(|acks| self.state.phase_with(&acks) == GroupPhase::Stable)
    }

    /// Sleeps until something changes (records, the group) or `timeout` passes. An idle member
    /// with nothing to take up or commit sleeps until a notification: it wakes on a timer only
    /// while a partition is still to be taken up (a look every heartbeat interval, in case a
    /// notification was missed), a position is still to be committed, or the lock was busy.
    pub fn wait(&self, timeout: Duration) {
        let mut cap = Duration::MAX;
        if !self.target().is_subset(&self.held) || self.releasing.is_some() {
            cap = self.config.member.heartbeat_interval;
        }
        let uncommitted = self.config.commit
            && self
                .committable
                .iter()
                .any(|(tp, o)| self.committed.get(tp) != Some(o));
        if uncommitted {
            let due = self
                .config
                .auto_commit_interval
                .saturating_sub(self.last_commit.elapsed());
            cap = cap.min(due.max(Duration::from_millis(1)));
        }
        let cap = match self.retry_at {
            Some(t) => cap.min(t.saturating_duration_since(Instant::now())),
            None => cap,
        };
        self.consumer.wait(timeout.min(cap));
    }

    /// Commits what was flushed and leaves the group.
    pub fn close(self) -> Result<(), MaintainError> {
        let offsets: Vec<(TopicPartition, i64)> = if self.config.commit && !self.member.is_fenced()
        {
            // Given up but not handed over yet: committed with the rest (still ours).
            let releasing = self.releasing.iter().flat_map(|(_, r)| r.iter());
            self.committable
                .iter()
                .map(|(tp, o)| (tp.clone(), *o))
                .chain(releasing.filter_map(|(tp, o)| o.map(|o| (tp.clone(), o))))
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
