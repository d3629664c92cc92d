//! Kafka clients as members of spool's consumer groups: the thin adapter between Kafka's classic
//! group protocol and the [`Coordinator`]'s operations (join, heartbeat, revoke, acquire,
//! commit, leave), so the mapping can be re-pointed when the file protocol changes.
//!
//! Each Kafka member is a lease held by the server (locked by this process, so it is alive while
//! the server runs) and refreshed by that client's requests; it expires like any member when the
//! client stops heartbeating for its session timeout. The group's generation is Kafka's
//! generation id. Assignments are computed by spool's assignors for CLI and Kafka members
//! together; no client is ever told it is the leader, so every client sends an empty SyncGroup
//! and receives its part of spool's assignment. A Kafka member releases partitions by rejoining
//! without them (eager protocols: any rejoin; cooperative: those not in its owned partitions),
//! by leaving or by expiring; only then may another member take them. A cooperative group
//! hands a released partition straight to its new owner, so a Kafka member can come to own
//! partitions its client does not know of: its next Heartbeat is answered
//! REBALANCE_IN_PROGRESS and its rejoin's SyncGroup gives them (Kafka's second cooperative
//! round). SyncGroup acknowledges the generation in the member's lease, as a cooperative CLI
//! member does, so the group's phase can reach Stable.
//!
//! The server is its Kafka members' coordinator, as Kafka's broker is: it hands new members
//! their ids (MEMBER_ID_REQUIRED), holds JoinGroup answers until the group's Kafka members all
//! joined the new generation (the join barrier), removes a member whose client was silent for
//! its session timeout (never while a request of it is under way), and watches the CLI members
//! of those groups, whom no CLI peer may be watching ([`KafkaMembers::check_groups`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::group::assignor::TopicPartition;
use crate::group::coordinator::Coordinator;
use crate::group::lease::{HeldLease, Lease};
use crate::group::state::{GroupState, Trigger};
use crate::group::GroupError;
use crate::store::{fsutil, Store, StoreError};

/// How a Kafka request about a group went wrong, as Kafka's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberError {
    UnknownMember,
    IllegalGeneration,
    RebalanceInProgress,
    InconsistentProtocol,
    FencedInstance,
    InvalidGroupId,
    Storage,
}

impl MemberError {
    pub fn code(self) -> i16 {
        use super::KafkaError as K;
        match self {
            MemberError::UnknownMember => K::UnknownMemberId.code(),
            MemberError::IllegalGeneration => K::IllegalGeneration.code(),
            MemberError::RebalanceInProgress => K::RebalanceInProgress.code(),
            MemberError::InconsistentProtocol => K::InconsistentGroupProtocol.code(),
            MemberError::FencedInstance => K::FencedInstanceId.code(),
            MemberError::InvalidGroupId => K::InvalidGroupId.code(),
            MemberError::Storage => K::KafkaStorageError.code(),
        }
    }
}

impl From<GroupError> for MemberError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::Fenced(_) => MemberError::UnknownMember,
            GroupError::ProtocolMismatch { .. } => MemberError::InconsistentProtocol,
            GroupError::InstanceInUse { .. } => MemberError::FencedInstance,
            GroupError::Store(e) => e.into(),
            _ => MemberError::Storage,
        }
    }
}

impl From<StoreError> for MemberError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Name(_) => MemberError::InvalidGroupId,
            _ => MemberError::Storage,
        }
    }
}

/// What a Kafka client asks for when it joins.
pub struct JoinRequest {
    pub group: String,
    /// Empty for a new member.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub topics: Vec<String>,
    /// spool's assignor name for the protocol chosen.
    pub assignor: String,
    /// Partitions the client still owns (cooperative protocols); `None` for eager ones.
    pub owned: Option<Vec<TopicPartition>>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// Whether a new member must first be given its id (JoinGroup v4 and later).
    pub require_id: bool,
}

/// What a JoinGroup gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// A member of `generation`.
    Member { member_id: String, generation: i32 },
    /// MEMBER_ID_REQUIRED: join again with this id.
    IdRequired(String),
}

/// The longest a JoinGroup waits for the other members to join, whatever the rebalance timeout
/// (a member that comes later joins the next round).
const MAX_JOIN_WAIT: Duration = Duration::from_secs(60);

/// One Kafka member, held by the server.
struct KafkaMember {
    /// `None` once the member left (a request of it still in progress then fails).
    lease: Option<HeldLease>,
    coordinator: Coordinator,
    /// The generation the client was last given (JoinGroup).
    generation: i32,
    /// The partitions the client was last told it owns (SyncGroup's answer, or what it kept
    /// at its rejoin). A cooperative group hands a partition to its new owner in the write that
    /// releases it, so the member can own more than its client knows of: its next Heartbeat is
    /// then answered REBALANCE_IN_PROGRESS, and its client rejoins and is given them.
    given: BTreeSet<TopicPartition>,
    eager: bool,
    rebalance_timeout: Duration,
}

impl KafkaMember {
    /// Joins the group's current generation as a known member: gives up the partitions it
    /// owns but does not keep (`keep`: what a cooperative client still owns; nothing for an
    /// eager one) and acknowledges the generation, which it returns.
    fn take_part(&mut self, me: &str, keep: &BTreeSet<TopicPartition>) -> Result<i32, MemberError> {
        let state = self.renew()?;
        // The client committed what it consumed before rejoining.
        let released: Vec<(TopicPartition, Option<i64>)> = state
            .owned_by(me)
            .into_iter()
            .filter(|tp| !keep.contains(tp))
            .map(|tp| (tp, None))
            .collect();
        let state = self
            .coordinator
            .revoke(me, state.generation, &released, fsutil::now_ms())?;
        self.generation = state.generation;
        self.given = state
            .owned_by(me)
            .into_iter()
            .filter(|tp| keep.contains(tp))
            .collect();
        Ok(state.generation)
    }

    /// Records in the member's lease that it took in `generation`, as a cooperative CLI member
    /// does when it has nothing to give up (see [`Lease::acked_generation`]): the group's
    /// phase counts it, which the Kafka member's first join (whose generation already granted
    /// it partitions) acknowledged nowhere else.
    fn acknowledge(&mut self, generation: i32) -> Result<(), MemberError> {
        let lease = self.lease.as_mut().ok_or(MemberError::UnknownMember)?;
        if lease.lease.acked_generation != Some(generation) {
            lease.acknowledge(generation)?;
        }
        Ok(())
    }

    /// Renews the lease and reconciles the group; the group's state.
    fn renew(&mut self) -> Result<GroupState, MemberError> {
        let now = fsutil::now_ms();
        let lease = self.lease.as_mut().ok_or(MemberError::UnknownMember)?;
        let state = self
            .coordinator
            .heartbeat(lease, now, now)
            .inspect_err(|e| trace!("renew {} failed: {e}", lease.lease.member_id))?;
        Ok(state)
    }
}

/// One Kafka member and what the session check needs to know of it without waiting for it:
/// the server is the coordinator of its Kafka members, so it removes one that stays silent for
/// its session timeout, as Kafka's coordinator does (no peer in the group watches a lease the
/// server holds for a client).
struct Slot {
    member: Mutex<KafkaMember>,
    /// The member's group (a copy of the member's own, for the session check).
    coordinator: Coordinator,
    /// Requests of this member being served, or waiting for the member or the group lock.
    /// While there is one the client is not silent, however long the server takes.
    in_flight: AtomicUsize,
    /// When the client was last heard from: the end of its last request (on this server's
    /// monotonic clock).
    heard: Mutex<Instant>,
    session_timeout: Mutex<Duration>,
    /// The generation the member last joined (its `generation`, readable without waiting for
    /// the member: the join barrier looks at every member of the group).
    joined: AtomicI32,
}

impl Slot {
    fn new(member: KafkaMember, session_timeout: Duration) -> Slot {
        Slot {
            coordinator: member.coordinator.clone(),
            member: Mutex::new(member),
            in_flight: AtomicUsize::new(0),
            heard: Mutex::new(Instant::now()),
            session_timeout: Mutex::new(session_timeout),
            joined: AtomicI32::new(-1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, KafkaMember> {
        self.member.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn heard_now(&self) {
        *self.heard.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Silent for its session timeout, with no request under way.
    fn is_silent(&self) -> bool {
        let timeout = *self
            .session_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.in_flight.load(Ordering::SeqCst) == 0
            && self
                .heard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed()
                > timeout
    }
}

/// A request of a member under way: counted from the moment the member was looked up (under
/// the members' lock, which the session check takes too, so a member is never removed for
/// silence once a request of it arrived) until its answer is ready.
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: &Arc<Slot>) -> Busy {
        slot.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(slot))
    }
}

impl std::ops::Deref for Busy {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.0
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.heard_now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

type MemberKey = (String, String);

/// The Kafka members of every group, by group and member id.
#[derive(Default)]
pub(crate) struct KafkaMembers {
    members: Mutex<HashMap<MemberKey, Arc<Slot>>>,
    /// Member ids handed out with MEMBER_ID_REQUIRED and not used yet, with when and for how
    /// long (the client's session timeout) they stay reserved.
    pending: Mutex<HashMap<MemberKey, (Instant, Duration)>>,
    /// The other members' leases in those groups (CLI members): each heartbeat value, and
    /// when it was first seen on this server's monotonic clock.
    watched: Mutex<HashMap<MemberKey, (i64, Instant)>>,
}

/// A member id safe as a file name: Kafka's `client-id-<random>`.
fn new_member_id(client_id: &str) -> String {
    let client: String = client_id
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let client = if client.is_empty() {
        "kafka".into()
    } else {
        client
    };
    let r = fsutil::random_bytes();
    let hex: String = r[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{client}-{hex}")
}

fn is_eager(assignor: &str) -> bool {
    assignor != "cooperative-sticky"
}

impl KafkaMembers {
    /// The member, marked busy until the returned guard is dropped.
    fn get(&self, group: &str, member_id: &str) -> Option<Busy> {
        self.lock()
            .get(&(group.to_owned(), member_id.to_owned()))
            .map(Busy::new)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<MemberKey, Arc<Slot>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, group: &str, member_id: &str) {
        self.lock()
            .remove(&(group.to_owned(), member_id.to_owned()));
    }

    /// JoinGroup. A client without a member id asking with JoinGroup v4 or later
    /// (`require_id`, not a static member) is given one and told to join again with it
    /// (MEMBER_ID_REQUIRED, as Kafka does), so a client that never comes back costs nothing. A
    /// new member takes a lease; a known one gives up what it no longer owns (everything, with
    /// an eager protocol). Then, as Kafka's join barrier, the answer waits (up to the rebalance
    /// timeout) until every other Kafka member of the generation joined it too, so that members
    /// joining together make one rebalance, not one each: see [`KafkaMembers::await_rejoins`].
    pub fn join(
        &self,
        store: &Store,
        req: JoinRequest,
        stopping: &dyn Fn() -> bool,
    ) -> Result<Joined, MemberError> {
        let key = (req.group.clone(), req.member_id.clone());
        let known = !req.member_id.is_empty() && self.lock().contains_key(&key);
        if known {
            return self.rejoin(&req, stopping);
        }
        if req.member_id.is_empty() && req.instance_id.is_none() && req.require_id {
            let id = new_member_id(&req.client_id);
            self.pending_ids().insert(
                (req.group.clone(), id.clone()),
                (Instant::now(), req.session_timeout),
            );
            return Ok(Joined::IdRequired(id));
        }
        if !req.member_id.is_empty() && self.pending_ids().remove(&key).is_none() {
            // Not ours (a restart, or expired): the client starts over with a new id.
            return Err(MemberError::UnknownMember);
        }
        let member_id = match (&req.instance_id, req.member_id.is_empty()) {
            (Some(i), _) => i.clone(),
            (None, true) => new_member_id(&req.client_id),
            (None, false) => req.member_id.clone(),
        };
        self.add(store, &req, &member_id)?;
        let generation = self.await_rejoins(&req.group, &member_id, &BTreeSet::new(), stopping)?;
        Ok(Joined::Member {
            member_id,
            generation,
        })
    }

    fn pending_ids(&self) -> MutexGuard<'_, HashMap<MemberKey, (Instant, Duration)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A known member's JoinGroup.
    fn rejoin(
        &self,
        req: &JoinRequest,
        stopping: &dyn Fn() -> bool,
    ) -> Result<Joined, MemberError> {
        let Some(member) = self.get(&req.group, &req.member_id) else {
            return Err(MemberError::UnknownMember);
        };
        *member
            .session_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = req.session_timeout;
        let mut m = member.lock();
        let keep: BTreeSet<TopicPartition> = match &req.owned {
            Some(o) if !m.eager => o.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        m.rebalance_timeout = req.rebalance_timeout;
        match m.take_part(&req.member_id, &keep) {
            Ok(generation) => member.joined.store(generation, Ordering::SeqCst),
            Err(e) => {
                drop(m);
                self.forget(&req.group, &req.member_id);
                return Err(e);
            }
        }
        drop(m);
        drop(member);
        let generation = self.await_rejoins(&req.group, &req.member_id, &keep, stopping)?;
        Ok(Joined::Member {
            member_id: req.member_id.clone(),
            generation,
        })
    }

    /// Kafka's join barrier: waits until every Kafka member of the group's current generation
    /// joined it (each is told of the new generation by its next Heartbeat and sends JoinGroup),
    /// or the rebalance timeout passed; meanwhile a generation started by another join is
    /// joined too, so every member of one round is answered with the same generation. CLI
    /// members are not waited for: they follow a change at once, on its file notification.
    /// Returns the generation to answer.
    fn await_rejoins(
        &self,
        group: &str,
        member_id: &str,
        keep: &BTreeSet<TopicPartition>,
        stopping: &dyn Fn() -> bool,
    ) -> Result<i32, MemberError> {
        let member = self
            .get(group, member_id)
            .ok_or(MemberError::UnknownMember)?;
        let (mut generation, timeout) = {
            let m = member.lock();
            (m.generation, m.rebalance_timeout)
        };
        let deadline = Instant::now() + timeout.min(MAX_JOIN_WAIT);
        loop {
            let state = member.coordinator.state()?;
            if state.generation != generation {
                let mut m = member.lock();
                match m.take_part(member_id, keep) {
                    Ok(g) => generation = g,
                    Err(e) => {
                        drop(m);
                        self.forget(group, member_id);
                        return Err(e);
                    }
                }
                member.joined.store(generation, Ordering::SeqCst);
                continue;
            }
            let waiting = self.lock().iter().any(|((g, id), slot)| {
                g == group
                    && state.members.contains_key(id)
                    && slot.joined.load(Ordering::SeqCst) != generation
            });
            if !waiting || Instant::now() >= deadline || stopping() {
                trace!("{group} {member_id}: joined generation {generation} (waited for others: {waiting})");
                return Ok(generation);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A new member: takes its lease (a static member coming back takes over its old one).
    fn add(&self, store: &Store, req: &JoinRequest, member_id: &str) -> Result<(), MemberError> {
        let now = fsutil::now_ms();
        let mut coordinator = Coordinator::new(store, &req.group)?;
        // As a member does: a stopped holder of the group lock keeps it from this member's
        // requests no longer than a session timeout.
        coordinator.lock_break = req.session_timeout;
        let member_id = member_id.to_owned();
        let session_ms = req.session_timeout.as_millis() as u64;
        let lease = Lease {
            acked_generation: None,
            member_id: member_id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            host: req.host.clone(),
            pid: std::process::id(),
            topics: req.topics.clone(),
            // Kafka clients resolve pattern subscriptions themselves and send the topics.
            pattern: None,
            assignor: req.assignor.clone(),
            session_timeout_ms: session_ms,
            heartbeat_interval_ms: (session_ms / 3).max(1),
            max_poll_interval_ms: req.rebalance_timeout.as_millis() as u64,
            joined_at_ms: now,
            heartbeat_ms: now,
            last_poll_ms: now,
        };
        // A static member coming back while the server still holds its old lease: drop that
        // one first (Kafka fences the old instance).
        if req.instance_id.is_some() {
            if let Some(old) = self.get(&req.group, &member_id) {
                self.forget(&req.group, &member_id);
                drop(old);
            }
        }
        let (held, state) = coordinator.join(lease, now)?;
        let generation = state.generation;
        let member = KafkaMember {
            lease: Some(held),
            coordinator,
            generation,
            given: BTreeSet::new(),
            eager: is_eager(&req.assignor),
            rebalance_timeout: req.rebalance_timeout,
        };
        let slot = Slot::new(member, req.session_timeout);
        slot.joined.store(generation, Ordering::SeqCst);
        self.lock()
            .insert((req.group.clone(), member_id), Arc::new(slot));
        Ok(())
    }

    /// SyncGroup: takes up this member's part of the assignment and returns what it now owns.
    /// With an eager protocol it waits (up to the rebalance timeout) until every member gave up
    /// its partitions, as Kafka's sync barrier does.
    pub fn sync(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        stopping: &dyn Fn() -> bool,
    ) -> Result<Vec<TopicPartition>, MemberError> {
        let member = self
            .get(group, member_id)
            .ok_or(MemberError::UnknownMember)?;
        let mut m = member.lock();
        if generation != m.generation {
            return Err(MemberError::IllegalGeneration);
        }
        let deadline = Instant::now() + m.rebalance_timeout.min(Duration::from_secs(60));
        loop {
            let state = match m.renew() {
                Ok(s) => s,
                Err(e) => {
                    drop(m);
                    self.forget(group, member_id);
                    return Err(e);
                }
            };
            if state.generation != m.generation {
                return Err(MemberError::RebalanceInProgress);
            }
            let held: BTreeSet<TopicPartition> = BTreeSet::new();
            let (state, _) = m.coordinator.acquire(member_id, m.eager, &held)?;
            if state.generation != m.generation {
                return Err(MemberError::RebalanceInProgress);
            }
            let target: BTreeSet<TopicPartition> = state
                .assignment
                .get(member_id)
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            let owned: Vec<TopicPartition> = state
                .owned_by(member_id)
                .into_iter()
                .filter(|tp| target.contains(tp))
                .collect();
            if !m.eager || owned.len() == target.len() || Instant::now() >= deadline {
                // The client takes up its assignment of this generation: it has given up what
                // it had to (at its join) and holds what it is answered.
                let generation = m.generation;
                m.acknowledge(generation)?;
                m.given = owned.iter().cloned().collect();
                return Ok(owned);
            }
            if stopping() {
                return Err(MemberError::RebalanceInProgress);
            }
            drop(m);
            // The members still to give up partitions do so within their heartbeat interval
            // (CLI members at once, on the change notification).
            std::thread::sleep(Duration::from_millis(25));
            m = member.lock();
        }
    }

    /// Heartbeat: renews the lease; REBALANCE_IN_PROGRESS when the group moved to another
    /// generation, when partitions of this member's assignment it waits for were released, or
    /// when the group handed it partitions its client was not given yet (a cooperative member
    /// releasing them hands them straight over): the client rejoins and SyncGroup gives them.
    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
    ) -> Result<(), MemberError> {
        let member = self
            .get(group, member_id)
            .ok_or(MemberError::UnknownMember)?;
        let mut m = member.lock();
        let state = match m.renew() {
            Ok(s) => s,
            Err(e) => {
                drop(m);
                self.forget(group, member_id);
                return Err(e);
            }
        };
        if generation != m.generation {
            return Err(MemberError::IllegalGeneration);
        }
        if state.generation != m.generation
            || waits_for_free(&state, member_id)
            || handed_more(&state, member_id, &m.given)
        {
            return Err(MemberError::RebalanceInProgress);
        }
        Ok(())
    }

    /// OffsetCommit from a member: fenced by generation, and by ownership in the file protocol.
    pub fn commit(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), MemberError> {
        let member = self
            .get(group, member_id)
            .ok_or(MemberError::UnknownMember)?;
        let mut m = member.lock();
        trace!(
            "commit {member_id} gen {generation} (member's {}) {offsets:?}",
            m.generation
        );
        if generation != m.generation {
            return Err(MemberError::IllegalGeneration);
        }
        let now = fsutil::now_ms();
        if let Err(e) = m.renew() {
            drop(m);
            self.forget(group, member_id);
            return Err(e);
        }
        m.coordinator
            .commit(member_id, offsets, now)
            .map_err(|e| match e {
                // The client's generation is current, but a partition it commits is no longer
                // its own: it gave it up in its rejoin and has not had SyncGroup's answer yet.
                // Kafka answers a commit in that phase (CompletingRebalance) this way, and
                // clients keep their other partitions (ILLEGAL_GENERATION makes them drop all).
                GroupError::Fenced(why) => {
                    trace!("commit refused: {why}");
                    MemberError::RebalanceInProgress
                }
                other => other.into(),
            })
    }

    /// LeaveGroup: releases the member's partitions and lease (a static member's lease stays
    /// until its session times out, as Kafka keeps a static member's place).
    pub fn leave(&self, group: &str, member_id: &str) -> Result<(), MemberError> {
        let member = self
            .lock()
            .remove(&(group.to_owned(), member_id.to_owned()))
            .ok_or(MemberError::UnknownMember)?;
        let mut m = member.lock();
        let lease = m.lease.take().ok_or(MemberError::UnknownMember)?;
        m.coordinator
            .leave(lease, &[], Trigger::Left, fsutil::now_ms())?;
        Ok(())
    }

    /// Removes the members whose clients were silent for their session timeout (crashed,
    /// partitioned, stopped): their partitions go to the group's other members. A member busy
    /// in a request right now is not silent and is skipped.
    pub fn expire_silent(&self) {
        // Chosen and removed under the members' lock: a request arriving after this finds no
        // member (UNKNOWN_MEMBER_ID: the client rejoins), one that arrived before is counted.
        let silent: Vec<(MemberKey, Arc<Slot>)> = {
            let mut members = self.lock();
            let keys: Vec<MemberKey> = members
                .iter()
                .filter(|(_, slot)| slot.is_silent())
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| members.remove(&k).map(|slot| (k, slot)))
                .collect()
        };
        self.pending_ids()
            .retain(|_, (since, timeout)| since.elapsed() <= *timeout);
        for ((group, member_id), member) in silent {
            trace!("expire_silent: {group} {member_id}");
            let mut m = member.lock();
            if let Some(lease) = m.lease.take() {
                let _ = m
                    .coordinator
                    .leave(lease, &[], Trigger::TimedOut, fsutil::now_ms());
            }
        }
    }

    /// Watches the other members of every group the server holds Kafka members of. In the file
    /// protocol a member's death or stop is noticed by the peer that watches it, and a lease the
    /// server holds for a client watches nobody, so the server does it for them: a CLI member
    /// that died is removed at once, one whose heartbeat stood still for its session timeout on
    /// this server's clock (stopped, hung) is expired ([`Coordinator::expire`], which fences it
    /// should it resume); a partition count that changed under a subscription starts a new
    /// generation. Nothing here takes the group lock unless something changed.
    pub fn check_groups(&self) {
        let mut groups: HashMap<String, (Coordinator, BTreeSet<String>)> = HashMap::new();
        for ((group, id), slot) in self.lock().iter() {
            groups
                .entry(group.clone())
                .or_insert_with(|| (slot.coordinator.clone(), BTreeSet::new()))
                .1
                .insert(id.clone());
        }
        let now = Instant::now();
        let pid = std::process::id();
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashMap::new();
        for (group, (coordinator, ours)) in &groups {
            let Ok(leases) = coordinator.scan_leases(fsutil::now_ms()) else {
                continue;
            };
            let mut dead = false;
            let mut stalled = Vec::new();
            for entry in leases {
                let (stays, locked, lease) = (entry.stays(), entry.locked, entry.lease);
                // Ours, or one of ours being let go.
                if ours.contains(&lease.member_id) || (locked && lease.pid == pid) {
                    continue;
                }
                if !stays {
                    dead = true;
                    continue;
                }
                let key = (group.clone(), lease.member_id);
                let since = match watched.get(&key) {
                    Some(&(value, since)) if value == lease.heartbeat_ms => {
                        let timeout = Duration::from_millis(lease.session_timeout_ms);
                        if now.duration_since(since) >= timeout {
                            stalled.push((key.1.clone(), value));
                        }
                        since
                    }
                    _ => now,
                };
                seen.insert(key, (lease.heartbeat_ms, since));
            }
            if dead || partitions_changed(coordinator) {
                let _ = coordinator.check_members(fsutil::now_ms());
            }
            for (id, heartbeat) in stalled {
                trace!("expiring {group} {id}: its heartbeat stood still");
                let _ = coordinator.expire(&id, heartbeat, fsutil::now_ms());
            }
        }
        *watched = seen;
    }

    /// The server itself did not run for a while (stopped, or starved of CPU): its clients
    /// were not silent meanwhile, the server was deaf. Their sessions start again now.
    pub fn server_resumed(&self) {
        for slot in self.lock().values() {
            slot.heard_now();
        }
        let now = Instant::now();
        for (_, since) in self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            *since = now;
        }
    }

    /// Releases every Kafka member (server shutdown): their partitions and leases go back to
    /// the group at once.
    pub fn release_all(&self) {
        let all: Vec<_> = self.lock().drain().map(|(_, m)| m).collect();
        for member in all {
            let mut m = member.lock();
            if let Some(lease) = m.lease.take() {
                let _ = m
                    .coordinator
                    .leave(lease, &[], Trigger::Left, fsutil::now_ms());
            }
        }
    }
}

/// Whether a topic the group's members subscribe to has another partition count in the store
/// than in the group's generation (partitions added, a topic created).
fn partitions_changed(coordinator: &Coordinator) -> bool {
    let Ok(state) = coordinator.state() else {
        return false;
    };
    let subscribed: BTreeSet<&String> = state.members.values().flat_map(|m| &m.topics).collect();
    let changed = subscribed.into_iter().any(|topic| {
        let now = coordinator
            .store
            .topic(topic)
            .ok()
            .map(|t| t.partition_count());
        now != state.partition_counts.get(topic).copied()
    });
    changed
}

/// Whether a partition of this member's target assignment has no owner (it was released and
/// the member can take it at its next rejoin).
fn waits_for_free(state: &GroupState, member_id: &str) -> bool {
    state
        .assignment
        .get(member_id)
        .into_iter()
        .flatten()
        .any(|tp| state.owner(tp).is_none())
}

/// Whether the group gave this member a partition of its target assignment that its client was
/// not told of (`given`).
fn handed_more(state: &GroupState, member_id: &str, given: &BTreeSet<TopicPartition>) -> bool {
    state
        .assignment
        .get(member_id)
        .into_iter()
        .flatten()
        .any(|tp| state.owner(tp) == Some(member_id) && !given.contains(tp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(member_id: &str, session: Duration, require_id: bool) -> JoinRequest {
        JoinRequest {
            group: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "client".into(),
            host: "/127.0.0.1".into(),
            topics: vec!["t".into()],
            assignor: "range".into(),
            owned: None,
            session_timeout: session,
            rebalance_timeout: Duration::from_secs(5),
            require_id,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_topic("t", 6, Default::default()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_new_member_is_given_its_id_first_with_join_group_v4() {
        let (_dir, store) = store();
        let members = KafkaMembers::default();
        let session = Duration::from_secs(10);
        let Ok(Joined::IdRequired(id)) =
            members.join(&store, request("", session, true), &|| false)
        else {
            panic!("no MEMBER_ID_REQUIRED");
        };
        // Nothing joined yet.
        let state = Coordinator::new(&store, "g").unwrap().state().unwrap();
        assert!(state.members.is_empty());
        let joined = members
            .join(&store, request(&id, session, true), &|| false)
            .unwrap();
        assert_eq!(
            joined,
            Joined::Member {
                member_id: id.clone(),
                generation: 1
            }
        );
        // An id nobody handed out is refused; a used one is not handed out twice.
        for unknown in ["client-0123456789abcdef", &id] {
            members.forget("g", unknown);
            assert_eq!(
                members.join(&store, request(unknown, session, true), &|| false),
                Err(MemberError::UnknownMember)
            );
        }
    }

    #[test]
    fn a_join_is_answered_once_every_kafka_member_joined_the_generation() {
        let (_dir, store) = store();
        let members = Arc::new(KafkaMembers::default());
        let session = Duration::from_secs(10);
        let a = join(&members, &store, session);
        let b = join(&members, &store, session);
        // b's join started generation 2, which a had not joined: b's answer waited for it.
        // Now a third member joins (generation 3): its answer waits for a and b to join again.
        let spawn_join = |id: &str| {
            let (members, store, id) = (Arc::clone(&members), store.clone(), id.to_owned());
            std::thread::spawn(move || {
                members.join(&store, request(&id, session, false), &|| false)
            })
        };
        let c = spawn_join("");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!c.is_finished(), "answered before the others joined");
        let a_again = spawn_join(&a);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!c.is_finished() && !a_again.is_finished());
        let b_again = spawn_join(&b);
        let generations: Vec<i32> = [c, a_again, b_again]
            .into_iter()
            .map(|t| match t.join().unwrap().unwrap() {
                Joined::Member { generation, .. } => generation,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(generations, [3, 3, 3]);
    }

    /// A new member (its answer waits at most half a second for the others to join).
    fn join(members: &KafkaMembers, store: &Store, session: Duration) -> String {
        let request = JoinRequest {
            rebalance_timeout: Duration::from_millis(500),
            ..request("", session, false)
        };
        match members.join(store, request, &|| false).unwrap() {
            Joined::Member { member_id, .. } => member_id,
            other => panic!("{other:?}"),
        }
    }

    fn is_member(members: &KafkaMembers, id: &str) -> bool {
        members
            .lock()
            .contains_key(&("g".to_owned(), id.to_owned()))
    }

    #[test]
    fn a_member_is_never_silent_while_a_request_of_it_is_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_topic("t", 2, Default::default()).unwrap();
        let members = KafkaMembers::default();
        let session = Duration::from_millis(100);
        let id = join(&members, &store, session);
        // A request that waits (for the member, the group lock, a slow disk) longer than the
        // session timeout: the client is not silent meanwhile.
        let request = members.get("g", &id).unwrap();
        std::thread::sleep(session * 3);
        members.expire_silent();
        assert!(
            is_member(&members, &id),
            "expired while its request was served"
        );
        // Its session starts again when the answer is ready.
        drop(request);
        members.expire_silent();
        assert!(is_member(&members, &id), "expired right after its answer");
        std::thread::sleep(session * 2);
        members.expire_silent();
        assert!(!is_member(&members, &id), "a silent member stays");
        let state = Coordinator::new(&store, "g").unwrap().state().unwrap();
        assert!(state.members.is_empty(), "the lease stays in the group");
    }

    #[test]
    fn time_the_server_itself_was_stopped_is_not_counted_against_its_clients() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_topic("t", 2, Default::default()).unwrap();
        let members = KafkaMembers::default();
        let session = Duration::from_millis(100);
        let id = join(&members, &store, session);
        std::thread::sleep(session * 2);
        members.server_resumed();
        members.expire_silent();
        assert!(is_member(&members, &id));
    }
}
