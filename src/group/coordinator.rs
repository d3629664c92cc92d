//! Kafka's group coordinator, replaced by operations on the group directory under its lock.
//!
//! Every operation takes the group lock, reads `group.yaml` (and `offsets.yaml` when it
//! commits), checks the caller's right to do what it asks, writes the result and releases the
//! lock. [`Coordinator::reconcile`], run by whoever notices a change, compares the live leases
//! and the subscribed topics' partition counts with the generation's and starts a new
//! generation when they differ.
//!
//! The four invariants of DESIGN.md rest on two rules enforced here:
//! - a partition is taken up only when `owners` names nobody for it, and its owner clears that
//!   entry only after committing ([`Coordinator::revoke`]); a member leaving the generation loses
//!   its entries when the new generation starts;
//! - a commit is accepted only from a member of the current generation that owns the partition.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::{self, MemberSubscription, TopicPartition};
use super::lease::{self, HeldLease, Lease, Liveness};
use super::state::{Committed, GroupDir, GroupState, MemberInfo, RebalanceEvent, Trigger};
use super::GroupError;
use crate::store::{Store, StoreError};

/// A partition taken up, with its committed offset if it has one.
pub type Acquired = (TopicPartition, Option<i64>);

/// Group operations for one group of a store.
#[derive(Debug, Clone)]
pub struct Coordinator {
    pub store: Store,
    pub group: GroupDir,
}

/// One lease file found in `members/`.
#[derive(Debug, Clone)]
pub struct LeaseEntry {
    pub lease: Lease,
    pub liveness: Liveness,
}

impl Coordinator {
    pub fn new(store: &Store, group: &str) -> Result<Coordinator, StoreError> {
        Ok(Coordinator {
            store: store.clone(),
            group: GroupDir::new(store, group)?,
        })
    }

    /// Reads every lease with its liveness (without changing anything).
    pub fn scan_leases(&self, now_ms: i64) -> Result<Vec<LeaseEntry>, StoreError> {
        let dir = self.group.members_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Io {
                    op: "list",
                    path: dir,
                    source: e,
                })
            }
        };
        let mut leases = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let is_lease = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".yaml") && !n.starts_with('.'));
            if !is_lease {
                continue;
            }
            let lease = match Lease::read(&path) {
                Ok(l) => l,
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e @ StoreError::BadMetadata { .. }) => {
                    // A damaged lease nobody holds belongs to no live member: skip it (reconcile
                    // removes it). One a live process holds is an error naming the file.
                    if lease::is_locked(&path) {
                        return Err(e);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let liveness = lease.liveness(&path, now_ms);
            leases.push(LeaseEntry { lease, liveness });
        }
        leases.sort_by(|a, b| a.lease.member_id.cmp(&b.lease.member_id));
        Ok(leases)
    }

    /// Removes lease files that do not parse and that no process holds.
    fn remove_damaged_leases(&self) -> Result<(), StoreError> {
        let dir = self.group.members_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.ends_with(".yaml") || name.starts_with('.') {
                continue;
            }
            if matches!(Lease::read(&path), Err(StoreError::BadMetadata { .. }))
                && !lease::is_locked(&path)
            {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Starts a new generation if the live members or the subscribed topics' partition counts
    /// differ from the current one's. Removes the leases of dead and expired members. `hints`
    /// name members that removed their own lease, and why. Call under the group lock.
    pub fn reconcile(
        &self,
        state: &mut GroupState,
        now_ms: i64,
        hints: &[(String, Trigger)],
    ) -> Result<bool, StoreError> {
        self.remove_damaged_leases()?;
        let mut reasons: Vec<(String, Trigger)> = hints.to_vec();
        let mut live: BTreeMap<String, Lease> = BTreeMap::new();
        for entry in self.scan_leases(now_ms)? {
            let id = entry.lease.member_id.clone();
            match entry.liveness {
                Liveness::Alive | Liveness::Away => {
                    live.insert(id, entry.lease);
                }
                Liveness::Dead | Liveness::Expired => {
                    let path = Lease::path(&self.group.members_dir(), &id);
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(StoreError::Io {
                                op: "remove",
                                path,
                                source: e,
                            })
                        }
                    }
                    let trigger = if entry.liveness == Liveness::Dead {
                        Trigger::Died
                    } else {
                        Trigger::TimedOut
                    };
                    if !reasons.iter().any(|(m, _)| *m == id) {
                        reasons.push((id, trigger));
                    }
                }
            }
        }
        let counts = self.partition_counts(live.values())?;
        let before: Vec<String> = state.members.keys().cloned().collect();
        let after: Vec<String> = live.keys().cloned().collect();
        let members_changed = before != after;
        if !members_changed && counts == state.partition_counts {
            return Ok(false);
        }
        let joined: Vec<String> = after
            .iter()
            .filter(|m| !state.members.contains_key(*m))
            .cloned()
            .collect();
        reasons.retain(|(m, _)| state.members.contains_key(m) && !live.contains_key(m));
        let (trigger, subjects) = if let Some((_, t)) = reasons.first() {
            let t = *t;
            (
                t,
                reasons
                    .iter()
                    .filter(|(_, r)| *r == t)
                    .map(|(m, _)| m.clone())
                    .collect(),
            )
        } else if !joined.is_empty() {
            (Trigger::Joined, joined)
        } else if members_changed {
            (
                Trigger::Left,
                before
                    .iter()
                    .filter(|m| !live.contains_key(*m))
                    .cloned()
                    .collect(),
            )
        } else {
            (Trigger::PartitionsAdded, Vec::new())
        };

        let protocol = live
            .values()
            .next()
            .map(|l| l.assignor.clone())
            .or_else(|| state.protocol.clone());
        let previous = std::mem::take(&mut state.assignment);
        state.generation += 1;
        state.members = live
            .iter()
            .map(|(id, l)| {
                Ok((
                    id.clone(),
                    MemberInfo {
                        instance_id: l.instance_id.clone(),
                        client_id: l.client_id.clone(),
                        topics: self.subscribed_topics(l)?,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        state.drop_foreign_owners();
        state.acked.retain(|m, _| live.contains_key(m));
        state.partition_counts = counts;
        state.protocol = protocol.clone();
        state.assignment = match protocol.as_deref() {
            Some(name) if !live.is_empty() => self.compute_assignment(name, state, &previous),
            _ => BTreeMap::new(),
        };
        state.push_history(RebalanceEvent {
            generation: state.generation,
            time_ms: now_ms,
            trigger,
            subjects,
            members_before: before,
            members_after: after,
        });
        Ok(true)
    }

    fn compute_assignment(
        &self,
        protocol: &str,
        state: &GroupState,
        previous: &BTreeMap<String, Vec<TopicPartition>>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let subscriptions: Vec<MemberSubscription> = state
            .members
            .iter()
            .map(|(id, info)| {
                let mut owned: BTreeSet<TopicPartition> =
                    previous.get(id).into_iter().flatten().cloned().collect();
                owned.extend(state.owned_by(id));
                MemberSubscription {
                    member_id: id.clone(),
                    instance_id: info.instance_id.clone(),
                    topics: info.topics.clone(),
                    owned: owned.into_iter().collect(),
                    generation: state.generation - 1,
                }
            })
            .collect();
        if protocol == "cooperative-sticky" {
            // Handing a partition over waits for its owner's release (the `owners` rule), so
            // the full target is given at once instead of Kafka's follow-up rebalance.
            return assignor::sticky_target(&state.partition_counts, &subscriptions);
        }
        match assignor::by_name(protocol) {
            Some(a) => a.assign(&state.partition_counts, &subscriptions),
            None => BTreeMap::new(),
        }
    }

    /// The topics a lease subscribes to: those it names and, with a pattern, every topic of
    /// the store whose whole name matches it (so a topic created later joins at the next
    /// reconcile, within a heartbeat interval).
    fn subscribed_topics(&self, lease: &Lease) -> Result<Vec<String>, StoreError> {
        let mut topics = lease.topics.clone();
        let Some(pattern) = &lease.pattern else {
            return Ok(topics);
        };
        // Checked when the member started; a lease with a broken pattern subscribes to nothing
        // more.
        let Ok(pattern) = regex::Regex::new(&format!("^(?:{pattern})$")) else {
            return Ok(topics);
        };
        for topic in self.store.list_topics()? {
            if pattern.is_match(&topic) && !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        Ok(topics)
    }

    fn partition_counts<'a>(
        &self,
        leases: impl Iterator<Item = &'a Lease>,
    ) -> Result<BTreeMap<String, i32>, StoreError> {
        let mut topics: BTreeSet<String> = BTreeSet::new();
        for lease in leases {
            topics.extend(self.subscribed_topics(lease)?);
        }
        let mut counts = BTreeMap::new();
        for topic in &topics {
            match self.store.topic(topic) {
                Ok(t) => {
                    counts.insert(topic.to_owned(), t.partition_count());
                }
                Err(StoreError::TopicNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(counts)
    }

    /// Adds a member: creates (or, for a returning static member, takes over) its lease and
    /// starts a new generation if membership changed.
    pub fn join(&self, lease: Lease, now_ms: i64) -> Result<(HeldLease, GroupState), GroupError> {
        let _lock = self.group.lock()?;
        let mut state = self.group.load_state()?;
        let others = self.scan_leases(now_ms)?;
        if let Some(other) = others.iter().find(|e| {
            matches!(e.liveness, Liveness::Alive | Liveness::Away)
                && e.lease.member_id != lease.member_id
                && e.lease.assignor != lease.assignor
        }) {
            return Err(GroupError::ProtocolMismatch {
                group: self.group.name.clone(),
                ours: lease.assignor.clone(),
                theirs: other.lease.assignor.clone(),
                member: other.lease.member_id.clone(),
            });
        }
        let members_dir = self.group.members_dir();
        let path = Lease::path(&members_dir, &lease.member_id);
        let held = if lease.instance_id.is_some() && path.exists() {
            let existing = Lease::read(&path).ok();
            match HeldLease::take_over(&path, lease.clone())? {
                Some(h) => h,
                None => {
                    return Err(GroupError::InstanceInUse {
                        instance_id: lease.instance_id.clone().unwrap_or_default(),
                        pid: existing.as_ref().map_or(0, |l| l.pid),
                        host: existing.map(|l| l.host).unwrap_or_default(),
                    })
                }
            }
        } else {
            HeldLease::create(&members_dir, lease)?
        };
        let me = held.lease.member_id.clone();
        self.reconcile(&mut state, now_ms, &[])?;
        if state.owned_by(&me).is_empty() {
            // Nothing to revoke: the new member acknowledges its first generation at once.
            state.acked.insert(me, state.generation);
        }
        self.group.save_state(&state)?;
        Ok((held, state))
    }

    /// Heartbeat: renews the lease and reconciles. Fails with [`GroupError::Fenced`] when the
    /// lease was removed by a peer (this member had expired).
    pub fn heartbeat(
        &self,
        held: &mut HeldLease,
        last_poll_ms: i64,
        now_ms: i64,
    ) -> Result<GroupState, GroupError> {
        let _lock = self.group.lock()?;
        if !held.is_current() {
            return Err(GroupError::Fenced(
                "its lease was removed: the session timed out".into(),
            ));
        }
        // Stamped now that the lock is held: a heartbeat written after a long wait must not
        // carry the time before the wait (already expired, it would get the member removed).
        let now_ms = crate::store::fsutil::now_ms().max(now_ms);
        held.renew(now_ms, last_poll_ms)?;
        let mut state = self.group.load_state()?;
        if self.reconcile(&mut state, now_ms, &[])? {
            self.group.save_state(&state)?;
        }
        Ok(state)
    }

    /// Re-reads membership after a peer's lease lock was released (it died or left).
    pub fn check_members(&self, now_ms: i64) -> Result<(), StoreError> {
        let _lock = self.group.lock()?;
        let mut state = self.group.load_state()?;
        if self.reconcile(&mut state, now_ms, &[])? {
            self.group.save_state(&state)?;
        }
        Ok(())
    }

    /// Commits offsets and gives up the partitions in `revoked`, then acknowledges
    /// `generation`. Offsets are `None` where nothing was consumed.
    pub fn revoke(
        &self,
        me: &str,
        generation: i32,
        revoked: &[(TopicPartition, Option<i64>)],
        now_ms: i64,
    ) -> Result<GroupState, GroupError> {
        let _lock = self.group.lock()?;
        let mut state = self.group.load_state()?;
        self.check_member(&state, me)?;
        let commits: Vec<(TopicPartition, i64)> = revoked
            .iter()
            .filter_map(|(tp, o)| o.map(|o| (tp.clone(), o)))
            .collect();
        self.write_commits(&state, me, &commits, now_ms)?;
        for (tp, _) in revoked {
            if state.owner(tp) == Some(me) {
                state.set_owner(tp, None);
            }
        }
        let acked = state.acked.entry(me.to_owned()).or_insert(-1);
        *acked = (*acked).max(generation.min(state.generation));
        self.group.save_state(&state)?;
        Ok(state)
    }

    /// Takes up the partitions of our target assignment that nobody owns. With an eager
    /// protocol, only once every member acknowledged the generation. Returns each partition
    /// taken with its committed offset.
    /// Partitions the caller already holds (`held`) are not returned again; partitions it owns
    /// without holding them (a static member back after a crash) are.
    pub fn acquire(
        &self,
        me: &str,
        eager: bool,
        held: &BTreeSet<TopicPartition>,
    ) -> Result<(GroupState, Vec<Acquired>), GroupError> {
        let _lock = self.group.lock()?;
        let mut state = self.group.load_state()?;
        self.check_member(&state, me)?;
        let barrier_open = !eager
            || state
                .members
                .keys()
                .all(|m| state.acked.get(m).copied().unwrap_or(-1) >= state.generation);
        let mut taken = Vec::new();
        if barrier_open {
            let targets = state.assignment.get(me).cloned().unwrap_or_default();
            let free: Vec<TopicPartition> = targets
                .into_iter()
                .filter(|tp| match state.owner(tp) {
                    None => true,
                    Some(owner) => owner == me && !held.contains(tp),
                })
                .collect();
            if !free.is_empty() {
                let (offsets, _stale) = self.group.load_current_offsets(&self.store)?;
                for tp in free {
                    state.set_owner(&tp, Some(me));
                    let committed = offsets
                        .get(&tp.topic)
                        .and_then(|m| m.get(&tp.partition))
                        .map(|c| c.offset);
                    taken.push((tp, committed));
                }
                self.group.save_state(&state)?;
            }
        }
        Ok((state, taken))
    }

    /// Commits offsets of partitions this member owns.
    pub fn commit(
        &self,
        me: &str,
        offsets: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let _lock = self.group.lock()?;
        let state = self.group.load_state()?;
        self.check_member(&state, me)?;
        self.write_commits(&state, me, offsets, now_ms)
    }

    /// Leaves the group: commits, releases every partition, removes the lease (a static
    /// member's lease stays, so a restart within the session timeout finds its partitions) and
    /// starts a new generation for the others.
    pub fn leave(
        &self,
        held: HeldLease,
        offsets: &[(TopicPartition, i64)],
        trigger: Trigger,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let _lock = self.group.lock()?;
        let mut state = self.group.load_state()?;
        let me = held.lease.member_id.clone();
        let is_member = state.members.contains_key(&me) && held.is_current();
        if is_member {
            let owned: BTreeSet<TopicPartition> = state.owned_by(&me).into_iter().collect();
            let commits: Vec<_> = offsets
                .iter()
                .filter(|(tp, _)| owned.contains(tp))
                .cloned()
                .collect();
            self.write_commits(&state, &me, &commits, now_ms)?;
            for tp in owned {
                state.set_owner(&tp, None);
            }
        }
        let is_static = held.lease.instance_id.is_some() && trigger == Trigger::Left;
        if !is_static {
            held.remove()?;
        } else {
            drop(held);
        }
        let hints = if is_static {
            vec![]
        } else {
            vec![(me, trigger)]
        };
        self.reconcile(&mut state, now_ms, &hints)?;
        self.group.save_state(&state)?;
        Ok(())
    }

    fn check_member(&self, state: &GroupState, me: &str) -> Result<(), GroupError> {
        if state.members.contains_key(me) {
            Ok(())
        } else {
            Err(GroupError::Fenced(format!(
                "it is not a member of generation {} of group {}",
                state.generation, self.group.name
            )))
        }
    }

    fn write_commits(
        &self,
        state: &GroupState,
        me: &str,
        commits: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if commits.is_empty() {
            return Ok(());
        }
        if let Some((tp, _)) = commits.iter().find(|(tp, _)| state.owner(tp) != Some(me)) {
            return Err(GroupError::Fenced(format!(
                "partition {}:{} is not owned by it in generation {}",
                tp.topic, tp.partition, state.generation
            )));
        }
        let mut offsets = self.group.load_offsets()?;
        let mut changed = false;
        let mut topic_ids: BTreeMap<&str, String> = BTreeMap::new();
        for (tp, offset) in commits {
            let topic_id = match topic_ids.get(tp.topic.as_str()) {
                Some(id) => id.clone(),
                None => {
                    let id = self.store.topic(&tp.topic)?.meta.id;
                    topic_ids.insert(&tp.topic, id.clone());
                    id
                }
            };
            let committed = Committed {
                offset: *offset,
                committed_at_ms: now_ms,
                topic_id: Some(topic_id),
            };
            let slot = offsets.entry(tp.topic.clone()).or_default();
            let same = slot
                .get(&tp.partition)
                .is_some_and(|c| c.offset == committed.offset && c.topic_id == committed.topic_id);
            if !same {
                slot.insert(tp.partition, committed);
                changed = true;
            }
        }
        if changed {
            self.group.save_offsets(&offsets)?;
        }
        Ok(())
    }
}
