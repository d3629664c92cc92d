//! Kafka's group coordinator, replaced by operations on the group directory under its lock.
//!
//! The operations are Kafka's: [`Coordinator::join`], [`Coordinator::heartbeat`],
//! [`Coordinator::revoke`], [`Coordinator::acquire`], [`Coordinator::commit`],
//! [`Coordinator::leave`], plus [`Coordinator::expire`] and [`Coordinator::check_members`] for
//! the one member that noticed a peer die or fall silent. A member need not be a local process:
//! whoever holds a lease (e.g. a server on behalf of a remote client) calls them.
//!
//! Every operation but the heartbeat takes the group lock, reads `group.yaml` (and
//! `offsets.yaml` when it commits), checks the caller's right to do what it asks, writes the
//! result and releases the lock; the section is bounded (a few file reads and writes), and a
//! holder stopped inside it for longer than a session timeout loses the lock to the next
//! waiter, its own writes failing from then on (see [`GroupLock`]). The
//! heartbeat takes no lock: it rewrites the member's own lease only, one write whatever the
//! group's size. The consuming thread uses the `try_` forms, which return `None` instead of
//! waiting when another process holds the lock, so a member keeps reading its partitions
//! whatever another member (maybe a stopped one) does with the lock.
//!
//! Joins and leaves change the generation incrementally (the joiner or leaver knows what
//! changed); [`Coordinator::reconcile`], run by whoever noticed a death, compares every lease
//! and the subscribed topics' partition counts with the generation's. Liveness decisions never
//! compare a lease's wall-clock heartbeat with this process's clock: a locked lease is alive
//! until the member watching it saw its heartbeat value stay the same for a whole session
//! timeout on its own monotonic clock ([`Coordinator::expire`]), so a wall-clock jump expires
//! nobody.
//!
//! The four invariants of DESIGN.md rest on two rules enforced here:
//! - a partition is taken up only when `owners` names nobody for it, and its owner clears that
//!   entry only after committing ([`Coordinator::revoke`]); a member leaving the generation loses
//!   its entries when the new generation starts;
//! - a commit is accepted only from a member of the current generation that owns the partition.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::{self, MemberSubscription, TopicPartition};
use super::lease::{self, HeldLease, Lease, Liveness};
use super::state::{
    Committed, GroupDir, GroupLock, GroupState, MemberInfo, RebalanceEvent, StoredState, Trigger,
    LOCK_FILE,
};
use super::GroupError;
use crate::store::error::IoContext;
use crate::store::{fsutil, lock, Store, StoreError};

/// Why one attempt to join failed.
enum JoinError {
    Group(GroupError),
    /// The group lock was taken over while this process held it: try again.
    LockLost,
}

impl From<GroupError> for JoinError {
    fn from(e: GroupError) -> Self {
        JoinError::Group(e)
    }
}

/// One attempt of a joiner that got the group lock.
enum Attempt {
    Admitted(Box<GroupState>),
    /// The group's last generation is too young: sleep this long, then try again.
    Wait(std::time::Duration),
    /// Not admitted (its lease was not found as expected, a newer state): try again.
    Again,
}

/// Per member of the group, how long after a generation began the next join waits: every
/// member reads each new generation whole, so a crowd of joiners is admitted in a few large
/// batches rather than as many generations as there are joiners.
const JOIN_WINDOW_PER_MEMBER_MS: i64 = 2;
/// The longest a join waits for its batch.
const JOIN_WINDOW_MAX_MS: i64 = 1000;

/// How long a joiner should still wait before it admits, if the group's last generation is
/// younger than its join window (`JOIN_WINDOW_PER_MEMBER_MS` per member). The age is taken
/// by the wall clock and bounded by the window, so a clock jump delays a join by one window
/// at most.
pub fn join_window(state: &GroupState, now_ms: i64) -> Option<std::time::Duration> {
    let window = (state.members.len() as i64 * JOIN_WINDOW_PER_MEMBER_MS).min(JOIN_WINDOW_MAX_MS);
    let started = state.generation_started_ms()?;
    let age = (now_ms - started).clamp(0, window);
    (age < window).then(|| std::time::Duration::from_millis((window - age) as u64))
}

/// Writes member `me`'s note into `dir` (`releasing/`, `leaving/`): under a temporary name,
/// then renamed, so a reader never sees half of it.
fn write_note(
    dir: &std::path::Path,
    me: &str,
    note: &super::state::ReleaseNote,
) -> Result<(), GroupError> {
    let path = dir.join(me);
    let tmp = dir.join(format!(".{me}.tmp"));
    let text = serde_yaml::to_string(note).expect("notes serialize");
    std::fs::write(&tmp, text).at("write", &tmp)?;
    std::fs::rename(&tmp, &path).at("write", &path)?;
    Ok(())
}

/// Takes the members' notes out of `dir` (but those `skip` names), each moved into the lock
/// holder's directory before it is read, so a note its member writes again meanwhile (it saw
/// its note taken by a holder that then lost the lock) is not lost. Notes that do not parse are
/// dropped.
fn take_notes(
    lock: &GroupLock,
    dir: &std::path::Path,
    skip: impl Fn(&str) -> bool,
) -> Vec<(String, super::state::ReleaseNote)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if id.starts_with('.') || skip(&id) {
            continue;
        }
        let taken = lock.work_dir().join(format!("{id}.note"));
        if std::fs::rename(entry.path(), &taken).is_err() {
            continue;
        }
        let note = std::fs::read_to_string(&taken)
            .ok()
            .and_then(|t| serde_yaml::from_str(&t).ok());
        let _ = std::fs::remove_file(&taken);
        if let Some(note) = note {
            notes.push((id, note));
        }
    }
    notes
}

/// Tells a waiter for the group lock when `group.yaml` holds a new generation (by its first
/// lines, see [`super::state::peek_generation`]) whose state says what it waits for: parsed
/// only when the generation moved.
struct GenerationWatch<'a> {
    group: &'a GroupDir,
    seen: Option<(i32, u64)>,
}

impl<'a> GenerationWatch<'a> {
    fn new(group: &'a GroupDir) -> Self {
        GenerationWatch {
            group,
            seen: super::state::peek_generation(&group.group_file()),
        }
    }

    /// True when the generation moved since last asked and its state satisfies `wanted`.
    fn new_state_where(&mut self, wanted: impl Fn(&GroupState) -> bool) -> bool {
        let now = super::state::peek_generation(&self.group.group_file());
        if now == self.seen {
            return false;
        }
        self.seen = now;
        matches!(self.group.read_state(), Ok(StoredState::Found(s)) if wanted(&s))
    }
}

/// Removes the lease file of member `id` (it may be gone already).
fn remove_lease(members_dir: &std::path::Path, id: &str) -> Result<(), StoreError> {
    let path = Lease::path(members_dir, id);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at("remove", &path),
        _ => Ok(()),
    }
}

fn lock_lost() -> GroupError {
    GroupError::Fenced(
        "its hold of the group lock was taken over (it was stopped for longer than the others wait)"
            .into(),
    )
}

fn lost_state() -> GroupError {
    GroupError::Fenced("the group's state (group.yaml) was lost; rejoining".into())
}

/// Whether an eager group's members all acknowledged the generation (always, for others).
fn barrier_open(state: &GroupState, eager: bool) -> bool {
    !eager
        || state
            .members
            .keys()
            .all(|m| state.acked.get(m).copied().unwrap_or(-1) >= state.generation)
}

fn fenced_by_timeout() -> GroupError {
    GroupError::Fenced("its lease was removed: the session timed out".into())
}

/// A partition taken up, with its committed offset if it has one.
pub type Acquired = (TopicPartition, Option<i64>);

/// Group operations for one group of a store.
#[derive(Debug, Clone)]
pub struct Coordinator {
    pub store: Store,
    pub group: GroupDir,
    /// How long the group lock may stay with one holder before a waiter takes it over (the
    /// holder is then fenced: see [`GroupLock`]). A member sets its session timeout.
    pub lock_break: std::time::Duration,
}

/// One lease file found in `members/`.
#[derive(Debug, Clone)]
pub struct LeaseEntry {
    pub lease: Lease,
    /// As shown to users (heartbeat age by this process's clock included).
    pub liveness: Liveness,
    /// Whether a process holds the lease's lock.
    pub locked: bool,
}

impl LeaseEntry {
    /// Whether the member stays in the group when the group is reconciled. A locked lease
    /// stays, however old its heartbeat looks by this process's clock: only the member that
    /// watched its heartbeat stand still for a session timeout expires it
    /// ([`Coordinator::expire`]). A static member away (unlocked) stays until its session
    /// timeout by the wall clock (the skew tolerated is the clocks' difference).
    pub fn stays(&self) -> bool {
        self.locked || self.liveness == Liveness::Away
    }
}

impl Coordinator {
    pub fn new(store: &Store, group: &str) -> Result<Coordinator, StoreError> {
        Ok(Coordinator {
            store: store.clone(),
            group: GroupDir::new(store, group)?,
            lock_break: super::state::DEFAULT_LOCK_BREAK,
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
            let locked = lease::is_locked(&path);
            let liveness = lease.liveness_given(locked, now_ms);
            leases.push(LeaseEntry {
                lease,
                liveness,
                locked,
            });
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
    /// differ from the current one's. Removes the leases of dead members. `hints` name members
    /// that left or were expired, and why. Call under the group lock. Reads every lease: for
    /// whoever noticed a death (so a storm of deaths is one generation), not for heartbeats.
    pub fn reconcile(
        &self,
        state: &mut GroupState,
        now_ms: i64,
        hints: &[(String, Trigger)],
    ) -> Result<bool, StoreError> {
        self.remove_damaged_leases()?;
        let mut reasons: Vec<(String, Trigger)> = hints.to_vec();
        let mut live: BTreeMap<String, MemberInfo> = BTreeMap::new();
        let mut protocol = None;
        for entry in self.scan_leases(now_ms)? {
            let id = entry.lease.member_id.clone();
            let waiting = || !state.members.contains_key(&id) && self.group.is_joining(&id);
            if entry.stays() && (state.quarantine.contains_key(&id) || waiting()) {
                // A member of a lost state, maybe still reading what that state gave it, comes
                // back only by rejoining (see `clear_quarantine`); a joiner waiting to be
                // admitted is admitted with its batch (see `admit_waiting`).
                continue;
            }
            if entry.stays() {
                protocol.get_or_insert_with(|| entry.lease.assignor.clone());
                live.insert(id, self.member_info(&entry.lease)?);
                continue;
            }
            remove_lease(&self.group.members_dir(), &id)?;
            let trigger = if entry.liveness == Liveness::Dead {
                Trigger::Died
            } else {
                Trigger::TimedOut
            };
            if !reasons.iter().any(|(m, _)| *m == id) {
                reasons.push((id, trigger));
            }
        }
        self.advance(state, live, protocol, reasons, now_ms)
    }

    /// Starts a new generation with the members `live` if they or the subscribed topics'
    /// partition counts differ from the current generation's.
    fn advance(
        &self,
        state: &mut GroupState,
        live: BTreeMap<String, MemberInfo>,
        protocol: Option<String>,
        mut reasons: Vec<(String, Trigger)>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let counts = self.partition_counts(live.values())?;
        let before: Vec<String> = state.members.keys().cloned().collect();
        let after: Vec<String> = live.keys().cloned().collect();
        let members_changed = before != after;
        if !members_changed && counts == state.partition_counts {
            // The same generation, but members of a lost state may have gone meanwhile (a
            // dead one's lease was just removed): the last one out lets partitions move.
            if !self.clear_quarantine(state, now_ms) {
                return Ok(false);
            }
            if !state.is_eager() && state.quarantine.is_empty() {
                state.grant_free();
            }
            return Ok(true);
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

        let protocol = protocol.or_else(|| state.protocol.clone());
        let previous = std::mem::take(&mut state.assignment);
        state.generation += 1;
        state.members = live;
        state.drop_foreign_owners();
        let members = &state.members;
        state.acked.retain(|m, _| members.contains_key(m));
        state.partition_counts = counts;
        state.protocol = protocol.clone();
        state.assignment = match protocol.as_deref() {
            Some(name) if !state.members.is_empty() => {
                self.compute_assignment(name, state, &previous)
            }
            _ => BTreeMap::new(),
        };
        self.clear_quarantine(state, now_ms);
        if !state.is_eager() && state.quarantine.is_empty() {
            state.grant_free();
        }
        state.record_rebalance(RebalanceEvent {
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
    /// What makes a member part of a generation (its topics as they are in the store now).
    fn member_info(&self, lease: &Lease) -> Result<MemberInfo, StoreError> {
        Ok(MemberInfo {
            instance_id: lease.instance_id.clone(),
            client_id: lease.client_id.clone(),
            topics: self.subscribed_topics(lease)?,
        })
    }

    pub fn subscribed_topics(&self, lease: &Lease) -> Result<Vec<String>, StoreError> {
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
        members: impl Iterator<Item = &'a MemberInfo>,
    ) -> Result<BTreeMap<String, i32>, StoreError> {
        let topics: BTreeSet<&str> = members
            .flat_map(|m| m.topics.iter().map(String::as_str))
            .collect();
        let mut counts = BTreeMap::new();
        for topic in topics {
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
    /// starts a new generation if membership changed. Reads `group.yaml`, not every lease: the
    /// members that died meanwhile are the business of the members watching them.
    ///
    /// Joins are admitted in batches: the joiner's lease goes into `members/` and its name into
    /// `joining/` before it waits for the group lock, and whoever gets the lock first admits
    /// every waiting joiner in one generation (one write); the others find themselves admitted
    /// and take no lock. While the group is large and its last generation young (see
    /// [`join_window`]), the holder lets more joiners gather first, so a crowd starting at once
    /// costs a few generations, not one each. (A returning static member joins alone.)
    pub fn join(&self, lease: Lease, now_ms: i64) -> Result<(HeldLease, GroupState), GroupError> {
        self.rejoin(None, lease, now_ms)
    }

    /// [`Coordinator::join`] for a member that was fenced or found the group's state lost,
    /// and stopped reading: its old lease (`old`) is given up by whoever admits the new one,
    /// in the same locked section. Held until then, it tells whoever rebuilds a lost state that
    /// a member was running (the rebuilt state quarantines it, see [`GroupState::quarantine`]),
    /// so a state lost under running members is never mistaken for an offline group's damaged
    /// files, whichever member takes the lock first.
    pub fn rejoin(
        &self,
        old: Option<HeldLease>,
        lease: Lease,
        now_ms: i64,
    ) -> Result<(HeldLease, GroupState), GroupError> {
        if lease.instance_id.is_some() {
            return self.join_alone(old, lease, now_ms);
        }
        self.group.ensure_created()?;
        let mut held = HeldLease::create(&self.group.members_dir(), lease)?;
        let marker = self.group.joining_dir().join(&held.lease.member_id);
        let replaces = old.as_ref().map(|o| o.lease.member_id.clone());
        let result = self.wait_admitted(&mut held, &marker, replaces.as_deref(), now_ms);
        let _ = std::fs::remove_file(&marker);
        match result {
            Ok(state) => {
                drop(old); // its file went with the admission
                Ok((held, state))
            }
            Err(e) => {
                let _ = held.remove();
                Err(e)
            }
        }
    }

    /// Waits until `held`'s member is admitted, by this process (which then admits every
    /// joiner waiting) or by another holder of the group lock.
    fn wait_admitted(
        &self,
        held: &mut HeldLease,
        marker: &std::path::Path,
        replaces: Option<&str>,
        now_ms: i64,
    ) -> Result<GroupState, GroupError> {
        let me = held.lease.member_id.clone();
        let me = me.as_str();
        let lock_path = self.group.dir.join(LOCK_FILE);
        let mut lost_locks = 0;
        loop {
            if !held.is_current() {
                // Stopped while it waited, and its lease removed as a silent member's: it has
                // read nothing yet, so it waits on with a fresh lease.
                let mut lease = held.lease.clone();
                let now = fsutil::now_ms();
                (lease.heartbeat_ms, lease.last_poll_ms) = (now, now);
                *held = HeldLease::create(&self.group.members_dir(), lease)?;
            }
            // Written again after every attempt: a marker consumed by an admission that a
            // later change (a lost state) undid must be there for the next one.
            std::fs::write(marker, replaces.unwrap_or_default()).at("create", marker)?;
            // Admitted once the marker is gone, or once a new generation lists us (an admitter
            // stopped between its write and the markers' removal holds nobody up).
            let mut watch = GenerationWatch::new(&self.group);
            let lock = lock::BreakableLock::acquire_unless(
                &self.group.dir,
                LOCK_FILE,
                lock::Wait::BreakAfter(self.lock_break),
                &mut || !marker.exists() || watch.new_state_where(|s| s.members.contains_key(me)),
            )
            .at("lock", &lock_path)?;
            let Some(lock) = lock else {
                // Admitted by another holder, which wrote the generation before removing the
                // marker (a newer state without us: wait again).
                match self.group.read_state()? {
                    StoredState::Found(state) if state.members.contains_key(me) => {
                        return Ok(*state)
                    }
                    _ => continue,
                }
            };
            let attempt = (|| -> Result<Attempt, GroupError> {
                let now_ms = fsutil::now_ms().max(now_ms);
                let mut state = self.load_for_change(&lock, now_ms)?;
                if state.members.contains_key(me) {
                    return Ok(Attempt::Admitted(Box::new(state))); // between the marker check and the lock
                }
                self.check_protocol(&lock, &mut state, &held.lease, now_ms)?;
                if let Some(wait) = join_window(&state, now_ms) {
                    return Ok(Attempt::Wait(wait));
                }
                self.admit_waiting(&lock, &mut state, now_ms)?;
                Ok(match state.members.contains_key(me) {
                    true => Attempt::Admitted(Box::new(state)),
                    false => Attempt::Again,
                })
            })();
            let attempt = match attempt {
                // Taken over while this process was stopped: nothing it wrote counted.
                Err(_) if lock.is_lost() && lost_locks < 5 => {
                    lost_locks += 1;
                    Attempt::Again
                }
                Err(_) if lock.is_lost() => return Err(lock_lost()),
                other => other?,
            };
            drop(lock);
            match attempt {
                Attempt::Admitted(state) => return Ok(*state),
                Attempt::Again => {}
                // More joiners gather meanwhile (they sleep too); the lock is free for others.
                Attempt::Wait(wait) => {
                    let jitter =
                        std::time::Duration::from_millis(u64::from(fsutil::random_bytes()[0] % 8));
                    std::thread::sleep(wait + jitter);
                }
            }
        }
    }

    /// Refuses a joiner whose assignor is not the group's (checked against live leases: the
    /// generation may list members that died unnoticed).
    fn check_protocol(
        &self,
        lock: &GroupLock,
        state: &mut GroupState,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let others_protocol = state
            .protocol
            .as_ref()
            .filter(|p| **p != lease.assignor)
            .and_then(|_| state.members.keys().find(|m| **m != lease.member_id));
        if others_protocol.is_none() {
            return Ok(());
        }
        if self.reconcile(state, now_ms, &[])? {
            self.group.save_state_with(lock, state)?;
        }
        if let Some(other) = self.scan_leases(now_ms)?.iter().find(|e| {
            e.stays()
                && state.members.contains_key(&e.lease.member_id)
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
        Ok(())
    }

    /// Admits every joiner waiting in `joining/` whose lease is held and whose assignor is the
    /// group's, in one generation, writes it, and removes their markers (after the write: a
    /// joiner that finds its marker gone finds itself in `group.yaml`). A joiner's old lease
    /// (named in its marker) goes with its admission.
    fn admit_waiting(
        &self,
        lock: &GroupLock,
        state: &mut GroupState,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let joining = self.group.joining_dir();
        let entries = std::fs::read_dir(&joining).at("list", &joining)?;
        let members_dir = self.group.members_dir();
        if state.members.is_empty() {
            // The first member (again): the leases left behind (crashed, damaged) are few and
            // nobody else would clear them.
            self.reconcile(state, now_ms, &[])?;
        }
        let mut live = state.members.clone();
        let mut protocol = state.protocol.clone();
        let mut admitted = Vec::new();
        let mut markers = Vec::new();
        for entry in entries.flatten() {
            let marker = entry.path();
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            let path = Lease::path(&members_dir, &id);
            let lease = match Lease::read(&path) {
                Ok(l) if lease::is_locked(&path) => l,
                Ok(_) => {
                    let _ = std::fs::remove_file(&marker); // its joiner died waiting
                    continue;
                }
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    // A joiner writes its lease before its marker: this one gave up or died.
                    let _ = std::fs::remove_file(&marker);
                    continue;
                }
                Err(_) => continue,
            };
            if live.is_empty() {
                // An empty group takes its next member's assignor (as Kafka's empty group takes
                // the next member's protocol), whatever its last members used.
                protocol = Some(lease.assignor.clone());
            }
            if protocol.as_deref() != Some(lease.assignor.as_str()) {
                continue; // refused when it takes the lock itself
            }
            let replaces = std::fs::read_to_string(&marker).unwrap_or_default();
            let replaces = replaces.trim();
            if !replaces.is_empty() && replaces != id {
                state.quarantine.remove(replaces);
                live.remove(replaces);
                remove_lease(&members_dir, replaces)?;
            }
            live.insert(id.clone(), self.member_info(&lease)?);
            admitted.push(id);
            markers.push(marker);
        }
        if admitted.is_empty() {
            return Ok(());
        }
        self.advance(state, live, protocol, Vec::new(), now_ms)?;
        for id in admitted {
            if state.owned_by(&id).is_empty() {
                // Nothing to revoke: a new member acknowledges its first generation at once.
                state.acked.insert(id, state.generation);
            }
        }
        self.group.save_state_with(lock, state)?;
        for marker in markers {
            let _ = std::fs::remove_file(marker);
        }
        Ok(())
    }

    /// A returning static member (or one joining for the first time) joins on its own, under
    /// the group lock: its lease may have to be taken over from its previous process.
    fn join_alone(
        &self,
        old: Option<HeldLease>,
        lease: Lease,
        now_ms: i64,
    ) -> Result<(HeldLease, GroupState), GroupError> {
        let mut old = old;
        let mut attempts = 0;
        loop {
            match self.join_once(&mut old, lease.clone(), now_ms) {
                Err(JoinError::LockLost) if attempts < 5 => attempts += 1,
                Err(JoinError::LockLost) => return Err(lock_lost()),
                Err(JoinError::Group(e)) => return Err(e),
                Ok(joined) => return Ok(joined),
            }
        }
    }

    fn join_once(
        &self,
        old: &mut Option<HeldLease>,
        lease: Lease,
        now_ms: i64,
    ) -> Result<(HeldLease, GroupState), JoinError> {
        let lock = self.lock().map_err(GroupError::from)?;
        let mut created: Option<std::path::PathBuf> = None;
        let result = self.join_locked(&lock, old, lease, now_ms, &mut created);
        match result {
            Err(_) if lock.is_lost() => {
                // Taken over while this process was stopped: undo the lease and start again.
                if let Some(path) = created {
                    let _ = std::fs::remove_file(path);
                }
                Err(JoinError::LockLost)
            }
            other => other.map_err(JoinError::Group),
        }
    }

    fn join_locked(
        &self,
        lock: &GroupLock,
        old: &mut Option<HeldLease>,
        lease: Lease,
        now_ms: i64,
        created: &mut Option<std::path::PathBuf>,
    ) -> Result<(HeldLease, GroupState), GroupError> {
        let mut state = self.load_for_change(lock, now_ms)?;
        if let Some(old) = old.take() {
            // It stopped reading before it came here: out of quarantine, and its lease goes.
            state.quarantine.remove(&old.lease.member_id);
            old.remove()?;
        }
        self.check_protocol(lock, &mut state, &lease, now_ms)?;
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
            let held = HeldLease::create(&members_dir, lease)?;
            *created = Some(held.path.clone());
            held
        };
        let me = held.lease.member_id.clone();
        if state.members.is_empty() {
            // The first member (again): the leases left behind (crashed, damaged) are few and
            // nobody else would clear them.
            self.reconcile(&mut state, now_ms, &[])?;
        }
        let mut live = state.members.clone();
        live.insert(me.clone(), self.member_info(&held.lease)?);
        let protocol = state
            .protocol
            .clone()
            .or_else(|| Some(held.lease.assignor.clone()));
        self.advance(&mut state, live, protocol, Vec::new(), now_ms)?;
        if state.owned_by(&me).is_empty() {
            // Nothing to revoke: the new member acknowledges its first generation at once.
            state.acked.insert(me, state.generation);
        }
        self.group.save_state_with(lock, &mut state)?;
        Ok((held, state))
    }

    /// Heartbeat: renews the lease (one write of the member's own file, no lock, whatever the
    /// group's size) and returns the group's state as it is (read without the lock). Fails
    /// with [`GroupError::Fenced`] when the lease is no longer at its path (a peer expired this
    /// member); the check follows the write, so a member whose heartbeat succeeded was not
    /// expired before it (see [`Coordinator::expire`]). It reconciles nothing: a member that
    /// stops heartbeating is expired by the member watching it, so a server holding leases for
    /// remote clients must leave on behalf of a client that went silent, or be watched.
    pub fn heartbeat(
        &self,
        held: &mut HeldLease,
        last_poll_ms: i64,
        now_ms: i64,
    ) -> Result<GroupState, GroupError> {
        self.renew(held, last_poll_ms, now_ms)?;
        Ok(self.state()?)
    }

    /// [`Coordinator::heartbeat`] without reading the group's state: what a member's heartbeat
    /// thread does, one write of its own lease.
    pub fn renew(
        &self,
        held: &mut HeldLease,
        last_poll_ms: i64,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if !held.is_current() {
            return Err(fenced_by_timeout());
        }
        // Stamped at the write: a heartbeat written after a wait (a stop) must not carry the
        // time before it.
        let now_ms = crate::store::fsutil::now_ms().max(now_ms);
        held.renew(now_ms, last_poll_ms)?;
        if !held.is_current() {
            return Err(fenced_by_timeout());
        }
        Ok(())
    }

    /// The generations the members acknowledged in their leases (see
    /// [`Lease::acked_generation`]). Reads every lease: for `--exit-at-end` and views.
    pub fn lease_acks(&self) -> Result<BTreeMap<String, i32>, StoreError> {
        Ok(self
            .scan_leases(fsutil::now_ms())?
            .into_iter()
            .filter_map(|e| Some((e.lease.member_id, e.lease.acked_generation?)))
            .collect())
    }

    /// The group's current state (no lock: `group.yaml` is replaced whole).
    pub fn state(&self) -> Result<GroupState, StoreError> {
        self.group.load_state()
    }

    /// The state to change, under the group lock. A lost state (`group.yaml` removed or
    /// garbled) while leases are locked is rebuilt, and written, as a generation of no members
    /// after the last one known, with every member whose lease is locked in quarantine (see
    /// [`GroupState::quarantine`]): each member then finds itself out of the generation, stops
    /// reading and rejoins, and nothing is handed out meanwhile. With no live lease, the
    /// previous version serves (nobody can be reading), as for every other YAML file.
    fn load_for_change(&self, lock: &GroupLock, now_ms: i64) -> Result<GroupState, StoreError> {
        let previous_generation = match self.group.read_state()? {
            StoredState::Found(state) => return Ok(*state),
            StoredState::Missing => None,
            StoredState::Lost {
                previous_generation,
            } => Some(previous_generation.unwrap_or(0)),
        };
        // Joiners waiting to be admitted have read nothing: not in quarantine.
        let quarantine: BTreeMap<String, i64> = self
            .scan_leases(now_ms)?
            .into_iter()
            .filter(|e| e.locked && !self.group.is_joining(&e.lease.member_id))
            .map(|e| (e.lease.member_id, e.lease.heartbeat_ms))
            .collect();
        if quarantine.is_empty() {
            // Nobody may be reading: a new group, or the previous version of a damaged file
            // (an error naming the file when that is damaged too).
            let mut state = self.group.load_state()?;
            if state.incarnation == 0 {
                state.incarnation = GroupState::new_incarnation();
            }
            return Ok(state);
        }
        let mut state = GroupState {
            generation: previous_generation.unwrap_or(0) + 1,
            incarnation: GroupState::new_incarnation(),
            quarantine_since_ms: (!quarantine.is_empty()).then_some(now_ms),
            quarantine,
            ..GroupState::default()
        };
        self.group.save_state_with(lock, &mut state)?;
        Ok(state)
    }

    /// Takes out of quarantine the members that left, rejoined, or stood still for their
    /// session timeout (whose leases are then removed, which fences them). True when it
    /// changed something.
    fn clear_quarantine(&self, state: &mut GroupState, now_ms: i64) -> bool {
        if state.quarantine.is_empty() {
            return false;
        }
        let before = state.quarantine.len();
        let since = state.quarantine_since_ms.unwrap_or(now_ms);
        let dir = self.group.members_dir();
        let members = &state.members;
        state.quarantine.retain(|id, heartbeat| {
            if members.contains_key(id) {
                return false; // rejoined: it stopped reading before it did
            }
            let path = Lease::path(&dir, id);
            let Ok(lease) = Lease::read(&path) else {
                return false;
            };
            if !lease::is_locked(&path) {
                return false;
            }
            if lease.heartbeat_ms != *heartbeat {
                return true; // running: it will find itself out of the generation
            }
            if now_ms - since <= lease.session_timeout_ms as i64 {
                return true;
            }
            // Stopped all along: fence it as `expire` does.
            let grave = dir.join(format!(".{id}.expired"));
            if std::fs::rename(&path, &grave).is_err() {
                return true;
            }
            match Lease::read(&grave) {
                Ok(l) if l.heartbeat_ms != *heartbeat => {
                    let _ = std::fs::rename(&grave, &path);
                    true
                }
                _ => {
                    let _ = std::fs::remove_file(&grave);
                    false
                }
            }
        });
        if state.quarantine.is_empty() {
            state.quarantine_since_ms = None;
        }
        state.quarantine.len() != before
    }

    /// Re-reads membership after a peer's lease lock was released (it died or left): removes
    /// every dead lease at once and starts a new generation if needed.
    pub fn check_members(&self, now_ms: i64) -> Result<GroupState, StoreError> {
        let lock = self.lock()?;
        let mut state = self.load_for_change(&lock, now_ms)?;
        if self.reconcile(&mut state, now_ms, &[])? {
            self.group.save_state_with(&lock, &mut state)?;
        }
        Ok(state)
    }

    /// Expires `member`, whose heartbeat the caller saw stay at `observed_heartbeat_ms` for a
    /// whole session timeout on its own monotonic clock. `Ok(None)` when the member renewed
    /// after all.
    ///
    /// The lease is first renamed out of `members/`, then read again: a heartbeat written
    /// before the rename shows there (and the lease is put back), one written after it cannot
    /// pass the member's own check that follows its write ([`Coordinator::heartbeat`]). So a
    /// member whose heartbeat succeeded is never expired by a decision taken before it.
    pub fn expire(
        &self,
        member: &str,
        observed_heartbeat_ms: i64,
        now_ms: i64,
    ) -> Result<Option<GroupState>, StoreError> {
        let lock = self.lock()?;
        if !self.remove_lease_if_still(&lock, member, observed_heartbeat_ms)? {
            return Ok(None);
        }
        let mut state = self.load_for_change(&lock, now_ms)?;
        if self.reconcile(
            &mut state,
            now_ms,
            &[(member.to_owned(), Trigger::TimedOut)],
        )? {
            self.group.save_state_with(&lock, &mut state)?;
        }
        Ok(Some(state))
    }

    /// Removes `member`'s lease if its heartbeat is still `observed_heartbeat_ms` (see
    /// [`Coordinator::expire`]); false when it moved.
    fn remove_lease_if_still(
        &self,
        lock: &GroupLock,
        member: &str,
        observed_heartbeat_ms: i64,
    ) -> Result<bool, StoreError> {
        let dir = self.group.members_dir();
        let path = Lease::path(&dir, member);
        // Into the lock holder's own directory: if this process was stopped and its lock
        // taken over meanwhile, the rename fails and nobody is expired on a stale decision.
        let grave = lock.work_dir().join(format!("{member}.expired"));
        match std::fs::rename(&path, &grave) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at("remove", &path),
        }
        if let Ok(lease) = Lease::read(&grave) {
            if lease.heartbeat_ms != observed_heartbeat_ms {
                std::fs::rename(&grave, &path).at("restore", &path)?;
                return Ok(false);
            }
        }
        match std::fs::remove_file(&grave) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at("remove", &grave),
        }
        Ok(true)
    }

    /// For commands run from outside the group (`spool offsets reset`, which found the group
    /// inactive): removes the leases whose heartbeat is older than their session timeout by
    /// this process's clock (the skew tolerated is the clocks' difference) and ends their
    /// generation. Members never decide this way; see [`Coordinator::expire`].
    pub fn evict_expired(&self, lock: &GroupLock, now_ms: i64) -> Result<(), StoreError> {
        let mut hints = Vec::new();
        for e in self.scan_leases(now_ms)? {
            if e.locked
                && e.liveness == Liveness::Expired
                && self.remove_lease_if_still(lock, &e.lease.member_id, e.lease.heartbeat_ms)?
            {
                hints.push((e.lease.member_id, Trigger::TimedOut));
            }
        }
        let mut state = self.load_for_change(lock, now_ms)?;
        if self.reconcile(&mut state, now_ms, &hints)? {
            self.group.save_state_with(lock, &mut state)?;
        }
        Ok(())
    }

    fn lock_or_wait(&self, wait: bool) -> Result<Option<GroupLock>, StoreError> {
        if wait {
            self.lock().map(Some)
        } else {
            self.group.try_lock()
        }
    }

    /// Takes the group lock, breaking it if its holder keeps it longer than
    /// [`Coordinator::lock_break`] (see [`GroupLock`]).
    fn lock(&self) -> Result<GroupLock, StoreError> {
        self.group.lock_breaking(self.lock_break)
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
        self.revoke_if(true, me, generation, revoked, now_ms)?
            .ok_or_else(lock_lost)
    }

    /// [`Coordinator::revoke`] if the group lock is free now; `Ok(None)` when it is not.
    pub fn try_revoke(
        &self,
        me: &str,
        generation: i32,
        revoked: &[(TopicPartition, Option<i64>)],
        now_ms: i64,
    ) -> Result<Option<GroupState>, GroupError> {
        self.revoke_if(false, me, generation, revoked, now_ms)
    }

    fn revoke_if(
        &self,
        wait: bool,
        me: &str,
        generation: i32,
        revoked: &[(TopicPartition, Option<i64>)],
        now_ms: i64,
    ) -> Result<Option<GroupState>, GroupError> {
        let Some(lock) = self.lock_or_wait(wait)? else {
            return Ok(None);
        };
        let result = (|| -> Result<Option<GroupState>, GroupError> {
            let mut state = self.load_for_change(&lock, now_ms)?;
            self.check_member(&state, me)?;
            let commits: Vec<(TopicPartition, i64)> = revoked
                .iter()
                .filter_map(|(tp, o)| o.map(|o| (tp.clone(), o)))
                .collect();
            self.write_commits(&lock, &state, me, &commits, now_ms)?;
            // A cooperative group hands the partition straight to its new owner in the same
            // write: one write per partition moved, none by the taker.
            let eager = state.is_eager();
            for (tp, _) in revoked {
                if state.owner(tp) == Some(me) {
                    let next = state.target_of(tp).filter(|m| *m != me && !eager);
                    state.set_owner(tp, next.map(str::to_owned).as_deref());
                }
            }
            let acked = state.acked.entry(me.to_owned()).or_insert(-1);
            *acked = (*acked).max(generation.min(state.generation));
            self.group.save_state_with(&lock, &mut state)?;
            Ok(Some(state))
        })();
        match result {
            // Taken over while this process was stopped: nothing it wrote counted; again later.
            Err(_) if lock.is_lost() => Ok(None),
            other => other,
        }
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
        self.acquire_if(true, me, eager, held)?
            .ok_or_else(lock_lost)
    }

    /// [`Coordinator::acquire`] if the group lock is free now; `Ok(None)` when it is not.
    pub fn try_acquire(
        &self,
        me: &str,
        eager: bool,
        held: &BTreeSet<TopicPartition>,
    ) -> Result<Option<(GroupState, Vec<Acquired>)>, GroupError> {
        self.acquire_if(false, me, eager, held)
    }

    fn acquire_if(
        &self,
        wait: bool,
        me: &str,
        eager: bool,
        held: &BTreeSet<TopicPartition>,
    ) -> Result<Option<(GroupState, Vec<Acquired>)>, GroupError> {
        let Some(lock) = self.lock_or_wait(wait)? else {
            return Ok(None);
        };
        let result = (|| -> Result<Option<(GroupState, Vec<Acquired>)>, GroupError> {
            let now_ms = fsutil::now_ms();
            let mut state = self.load_for_change(&lock, now_ms)?;
            self.check_member(&state, me)?;
            let cleared = self.clear_quarantine(&mut state, now_ms);
            let barrier_open = state.quarantine.is_empty() && barrier_open(&state, eager);
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
                }
            }
            if !taken.is_empty() || cleared {
                self.group.save_state_with(&lock, &mut state)?;
            }
            Ok(Some((state, taken)))
        })();
        match result {
            // Taken over while this process was stopped: nothing it wrote counted; again later.
            Err(_) if lock.is_lost() => Ok(None),
            other => other,
        }
    }

    /// The partitions of our target that the group already gave us (a cooperative group hands
    /// a partition to its new owner when the old one releases it, or when a generation starts
    /// with it free) and that we do not read yet, each with its committed offset. Takes no lock
    /// and writes nothing: only the owner changes its own entries, and `offsets.yaml` is read
    /// after `group.yaml`, so it holds the previous owner's last commit.
    pub fn granted(
        &self,
        me: &str,
        held: &BTreeSet<TopicPartition>,
    ) -> Result<(GroupState, Vec<Acquired>), GroupError> {
        let state = match self.group.read_state()? {
            StoredState::Found(state) => *state,
            _ => return Err(lost_state()),
        };
        self.check_member(&state, me)?;
        let mine: Vec<TopicPartition> = state
            .assignment
            .get(me)
            .into_iter()
            .flatten()
            .filter(|tp| state.owner(tp) == Some(me) && !held.contains(*tp))
            .cloned()
            .collect();
        if mine.is_empty() {
            return Ok((state, Vec::new()));
        }
        let (offsets, _stale) = self.group.load_current_offsets(&self.store)?;
        let taken = mine
            .into_iter()
            .map(|tp| {
                let committed = offsets
                    .get(&tp.topic)
                    .and_then(|m| m.get(&tp.partition))
                    .map(|c| c.offset);
                (tp, committed)
            })
            .collect();
        Ok((state, taken))
    }

    /// A cooperative member gives up `released` (each with the offset to commit) in
    /// `generation`, having stopped reading them: written to `releasing/<me>` without the
    /// group lock. The next holder of the lock commits them and hands them to their new owners
    /// ([`Coordinator::try_fold_releases`]); until then the member still owns them, and writes
    /// its note again if a holder lost it.
    pub fn release(
        &self,
        me: &str,
        generation: i32,
        released: &[(TopicPartition, Option<i64>)],
    ) -> Result<(), GroupError> {
        let note = super::state::ReleaseNote {
            generation,
            released: released
                .iter()
                .map(|(tp, offset)| super::state::Release {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: *offset,
                })
                .collect(),
        };
        // Not fsynced: after a crash the group forms again, and the offsets were not committed
        // (at least once).
        write_note(&self.group.releasing_dir(), me, &note)
    }

    /// Folds every member's release note in, if the group lock is free now: `Ok(None)` when it
    /// is not. Returns the state as it is after.
    pub fn try_fold_releases(&self, now_ms: i64) -> Result<Option<GroupState>, GroupError> {
        let Some(lock) = self.group.try_lock()? else {
            return Ok(None);
        };
        let result = (|| -> Result<Option<GroupState>, GroupError> {
            let mut state = self.load_for_change(&lock, now_ms)?;
            if self.fold_releases(&lock, &mut state, now_ms)? {
                self.group.save_state_with(&lock, &mut state)?;
            }
            Ok(Some(state))
        })();
        match result {
            // Taken over while this process was stopped: the notes it took are written again
            // by their members, who see they still own the partitions.
            Err(_) if lock.is_lost() => Ok(None),
            other => other,
        }
    }

    /// Commits and hands over what the release notes in `releasing/` give up, for every member
    /// at once (one write of `offsets.yaml`, the caller writes `group.yaml`). A note is taken
    /// into the holder's own directory before it is read, so a member writing a newer one
    /// meanwhile loses nothing. Only partitions the member still owns in this generation and
    /// no longer targets move. True when the state changed.
    fn fold_releases(
        &self,
        lock: &GroupLock,
        state: &mut GroupState,
        now_ms: i64,
    ) -> Result<bool, GroupError> {
        let eager = state.is_eager();
        let mut changed = false;
        let mut offsets: Option<super::state::Offsets> = None;
        let mut topic_ids: BTreeMap<String, String> = BTreeMap::new();
        for (id, note) in take_notes(lock, &self.group.releasing_dir(), |_| false) {
            if eager || note.generation != state.generation || !state.members.contains_key(&id) {
                continue; // stale: the member gives up again for the generation it is in
            }
            for r in note.released {
                let tp = TopicPartition::new(r.topic, r.partition);
                if state.owner(&tp) != Some(id.as_str()) {
                    continue;
                }
                // Handed to its new owner, or left free for this member to take up again from
                // the offset committed here (it was given back meanwhile).
                let target = state
                    .target_of(&tp)
                    .filter(|t| *t != id.as_str())
                    .map(str::to_owned);
                if let Some(offset) = r.offset {
                    let offsets = match &mut offsets {
                        Some(o) => o,
                        None => offsets.insert(self.group.load_offsets()?),
                    };
                    let topic_id = match topic_ids.get(&tp.topic) {
                        Some(t) => t.clone(),
                        None => {
                            let t = self.store.topic(&tp.topic)?.meta.id;
                            topic_ids.insert(tp.topic.clone(), t.clone());
                            t
                        }
                    };
                    offsets.entry(tp.topic.clone()).or_default().insert(
                        tp.partition,
                        Committed {
                            offset,
                            committed_at_ms: now_ms,
                            topic_id: Some(topic_id),
                        },
                    );
                }
                state.set_owner(&tp, target.as_deref());
                changed = true;
            }
            let acked = state.acked.entry(id).or_insert(-1);
            if *acked < note.generation {
                *acked = note.generation;
                changed = true;
            }
        }
        if let Some(offsets) = offsets {
            // Before group.yaml: a new owner reads the offsets after it sees the partition.
            self.group.save_offsets_with(lock, &offsets)?;
        }
        Ok(changed)
    }

    /// Commits offsets of partitions this member owns.
    pub fn commit(
        &self,
        me: &str,
        offsets: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<(), GroupError> {
        self.commit_if(true, me, offsets, now_ms).map(|_| ())
    }

    /// [`Coordinator::commit`] if the group lock is free now; `Ok(false)` when it is not.
    pub fn try_commit(
        &self,
        me: &str,
        offsets: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<bool, GroupError> {
        self.commit_if(false, me, offsets, now_ms)
    }

    fn commit_if(
        &self,
        wait: bool,
        me: &str,
        offsets: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<bool, GroupError> {
        if offsets.is_empty() {
            return Ok(true);
        }
        let Some(lock) = self.lock_or_wait(wait)? else {
            return Ok(false);
        };
        let result = (|| -> Result<bool, GroupError> {
            let state = self.load_for_change(&lock, now_ms)?;
            self.check_member(&state, me)?;
            self.write_commits(&lock, &state, me, offsets, now_ms)?;
            Ok(true)
        })();
        match result {
            // Taken over while this process was stopped: nothing it wrote counted; again later.
            Err(_) if lock.is_lost() => Ok(false),
            other => other,
        }
    }

    /// Leaves the group: commits, releases every partition, removes the lease (a static
    /// member's lease stays, so a restart within the session timeout finds its partitions) and
    /// starts a new generation for the others. A dynamic member leaving of its own accord
    /// leaves with whoever else is leaving at that moment (`Coordinator::leave_in_batch`).
    pub fn leave(
        &self,
        held: HeldLease,
        offsets: &[(TopicPartition, i64)],
        trigger: Trigger,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if trigger == Trigger::Left && held.lease.instance_id.is_none() {
            return self.leave_in_batch(held, offsets, now_ms);
        }
        self.leave_alone(held, offsets, trigger, now_ms)
    }

    /// [`Coordinator::leave`] in a locked section of its own.
    fn leave_alone(
        &self,
        held: HeldLease,
        offsets: &[(TopicPartition, i64)],
        trigger: Trigger,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let lock = self.lock()?;
        let result = (|| -> Result<(), GroupError> {
            let mut state = self.load_for_change(&lock, now_ms)?;
            let me = held.lease.member_id.clone();
            let is_member = state.members.contains_key(&me) && held.is_current();
            if is_member {
                let owned: BTreeSet<TopicPartition> = state.owned_by(&me).into_iter().collect();
                let commits: Vec<_> = offsets
                    .iter()
                    .filter(|(tp, _)| owned.contains(tp))
                    .cloned()
                    .collect();
                self.write_commits(&lock, &state, &me, &commits, now_ms)?;
                for tp in owned {
                    state.set_owner(&tp, None);
                }
            }
            let is_static = held.lease.instance_id.is_some() && trigger == Trigger::Left;
            if is_static {
                drop(held);
                self.group.save_state_with(&lock, &mut state)?;
                return Ok(());
            }
            held.remove()?;
            if is_member {
                let mut live = state.members.clone();
                live.remove(&me);
                let protocol = state.protocol.clone();
                self.advance(&mut state, live, protocol, vec![(me, trigger)], now_ms)?;
                self.group.save_state_with(&lock, &mut state)?;
            }
            Ok(())
        })();
        match result {
            // Taken over while this process was stopped: it is gone anyway.
            Err(_) if lock.is_lost() => Ok(()),
            other => other,
        }
    }

    /// Leaves as the joins join: the member writes a leave note (`leaving/<id>`: its final
    /// offsets) and waits for the group lock; whoever gets it first takes every note there,
    /// commits all their offsets in one write, removes their leases and starts one generation
    /// without them, and the others find themselves gone without taking the lock. (SIGTERM to
    /// every member of a group of 500 was 500 generations in a row, each written with fsyncs
    /// and read whole by every member left.) A member is out once `group.yaml` no longer lists
    /// it or its lease was removed; a note taken by a holder that lost the lock is written again.
    fn leave_in_batch(
        &self,
        held: HeldLease,
        offsets: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let me = held.lease.member_id.clone();
        let me = me.as_str();
        // `leaving/` is new: a group made by an older spool may lack it.
        self.group.ensure_created()?;
        let note = self.group.leaving_dir().join(me);
        let lock_path = self.group.dir.join(LOCK_FILE);
        let out = |state: &GroupState| !state.members.contains_key(me);
        let mut lost_locks = 0;
        let result = loop {
            self.write_leave_note(me, offsets)?;
            let mut watch = GenerationWatch::new(&self.group);
            let lock = lock::BreakableLock::acquire_unless(
                &self.group.dir,
                LOCK_FILE,
                lock::Wait::BreakAfter(self.lock_break),
                // A taken note is not enough: holders take notes before they write the state.
                &mut || !held.is_current() || (!note.exists() && watch.new_state_where(out)),
            )
            .at("lock", &lock_path)?;
            let Some(lock) = lock else {
                // Taken out by another holder (or expired meanwhile); a newer state that still
                // lists us means the note was taken by a holder that then lost the lock.
                match self.group.read_state()? {
                    StoredState::Found(state) if !out(&state) && held.is_current() => continue,
                    _ => break Ok(()),
                }
            };
            let attempt = (|| -> Result<(), GroupError> {
                let now_ms = fsutil::now_ms().max(now_ms);
                let mut state = self.load_for_change(&lock, now_ms)?;
                if out(&state) || !held.is_current() {
                    return Ok(());
                }
                self.fold_leaves(&lock, &mut state, (me, offsets), now_ms)?;
                self.group.save_state_with(&lock, &mut state)?;
                Ok(())
            })();
            match attempt {
                // Taken over while this process was stopped: nothing it wrote counted.
                Err(_) if lock.is_lost() && lost_locks < 5 => lost_locks += 1,
                Err(_) if lock.is_lost() => break Err(lock_lost()),
                other => break other,
            }
        };
        let _ = std::fs::remove_file(&note);
        // A no-op when its lease went with the leave (or with an expiry).
        held.remove()?;
        result
    }

    /// Writes `leaving/<me>`: the offsets a leaving member commits (not fsynced: after a crash
    /// the member is gone anyway, and what it did not commit is read again: at least once).
    fn write_leave_note(
        &self,
        me: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), GroupError> {
        let note = super::state::ReleaseNote {
            generation: 0,
            released: offsets
                .iter()
                .map(|(tp, offset)| super::state::Release {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: Some(*offset),
                })
                .collect(),
        };
        write_note(&self.group.leaving_dir(), me, &note)
    }

    /// Takes every leave note in `leaving/` (and `mine`, the holder's own, from memory), and for
    /// those whose members are in the generation with their lease still there: commits their
    /// offsets of partitions they own in one write, clears their ownership, removes their
    /// leases (after the commit: a member whose lease is gone knows it is out) and starts one
    /// generation without them. The caller writes `group.yaml`.
    fn fold_leaves(
        &self,
        lock: &GroupLock,
        state: &mut GroupState,
        mine: (&str, &[(TopicPartition, i64)]),
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let members_dir = self.group.members_dir();
        let mut leavers: BTreeMap<String, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        leavers.insert(mine.0.to_owned(), mine.1.to_vec());
        let notes = take_notes(lock, &self.group.leaving_dir(), |id| id == mine.0);
        for (id, note) in notes {
            if !state.members.contains_key(&id) || !Lease::path(&members_dir, &id).exists() {
                continue; // gone already (expired, evicted, a lost state)
            }
            let offsets = note
                .released
                .into_iter()
                .filter_map(|r| Some((TopicPartition::new(r.topic, r.partition), r.offset?)))
                .collect();
            leavers.insert(id, offsets);
        }
        let commits: Vec<(TopicPartition, i64)> = leavers
            .iter()
            .flat_map(|(id, offsets)| {
                offsets
                    .iter()
                    .filter(|(tp, _)| state.owner(tp) == Some(id.as_str()))
                    .cloned()
            })
            .collect();
        self.save_commits(lock, &commits, now_ms)?;
        let mut live = state.members.clone();
        let mut reasons = Vec::new();
        for id in leavers.into_keys() {
            for tp in state.owned_by(&id) {
                state.set_owner(&tp, None);
            }
            remove_lease(&members_dir, &id)?;
            live.remove(&id);
            reasons.push((id, Trigger::Left));
        }
        let protocol = state.protocol.clone();
        self.advance(state, live, protocol, reasons, now_ms)?;
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
        lock: &GroupLock,
        state: &GroupState,
        me: &str,
        commits: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if let Some((tp, _)) = commits.iter().find(|(tp, _)| state.owner(tp) != Some(me)) {
            return Err(GroupError::Fenced(format!(
                "partition {}:{} is not owned by it in generation {}",
                tp.topic, tp.partition, state.generation
            )));
        }
        self.save_commits(lock, commits, now_ms)
    }

    /// Writes `commits` into `offsets.yaml` (checked by the caller), if they change it.
    fn save_commits(
        &self,
        lock: &GroupLock,
        commits: &[(TopicPartition, i64)],
        now_ms: i64,
    ) -> Result<(), GroupError> {
        if commits.is_empty() {
            return Ok(());
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
            self.group.save_offsets_with(lock, &offsets)?;
        }
        Ok(())
    }
}
