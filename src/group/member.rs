//! One member of a group: its lease, its heartbeat thread and its watchers of peers.
//!
//! The heartbeat thread renews the lease every `heartbeat.interval` under the group lock, and
//! reconciles the group while it is there, so an expired peer or partitions added to a topic
//! are acted on within one interval. If the member made no progress for `max.poll.interval`
//! (its output is blocked), the thread takes it out of the group, as Kafka's consumer does.
//!
//! A peer's death is seen at once: a watcher thread per live peer blocks on that peer's lease
//! lock, which the kernel hands over the moment the peer's process dies.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::coordinator::Coordinator;
use super::lease::{self, HeldLease, Lease};
use super::state::{GroupState, Trigger};
use super::GroupError;
use crate::store::{fsutil, lock, Store};

/// A member's identity and timing.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub group: String,
    pub topics: Vec<String>,
    /// Subscribe also to every topic whose whole name matches this regular expression.
    pub pattern: Option<String>,
    pub client_id: String,
    pub instance_id: Option<String>,
    pub assignor: String,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_poll_interval: Duration,
}

/// State shared between the member's threads.
pub struct Shared {
    /// Set when the member lost its membership (lease removed, generation left, poll interval).
    pub fenced: AtomicBool,
    /// When the last heartbeat was written, on [`fsutil::monotonic_ms`]'s clock: stamped once
    /// the lease was written (after any wait for a lock), never before.
    pub last_heartbeat_ok_ms: AtomicI64,
    /// The consumer's last progress (records written, or nothing left to write).
    pub last_progress_ms: AtomicI64,
    stop: AtomicBool,
    lease: Mutex<Option<HeldLease>>,
    watched: Mutex<BTreeSet<String>>,
    waker: SyncSender<()>,
}

impl Shared {
    fn wake(&self) {
        let _ = self.waker.try_send(());
    }
}

/// A joined member.
pub struct Member {
    pub coordinator: Coordinator,
    pub config: MemberConfig,
    pub shared: Arc<Shared>,
    pub member_id: String,
    heartbeat: Option<JoinHandle<()>>,
    stop_heartbeat: Sender<()>,
}

impl Member {
    /// Joins the group and starts the heartbeat thread. `waker` is signalled whenever the
    /// member's view may have changed (a peer died, the member was fenced).
    pub fn join(
        store: &Store,
        config: MemberConfig,
        waker: SyncSender<()>,
    ) -> Result<(Member, GroupState), GroupError> {
        let coordinator = Coordinator::new(store, &config.group)?;
        let now = fsutil::now_ms();
        let (held, state) = coordinator.join(new_lease(&config, now), now)?;
        let member_id = held.lease.member_id.clone();
        let shared = Arc::new(Shared {
            fenced: AtomicBool::new(false),
            last_heartbeat_ok_ms: AtomicI64::new(fsutil::monotonic_ms()),
            last_progress_ms: AtomicI64::new(now),
            stop: AtomicBool::new(false),
            lease: Mutex::new(Some(held)),
            watched: Mutex::new(BTreeSet::new()),
            waker,
        });
        let (stop_heartbeat, stop_rx) = channel();
        let heartbeat = {
            let (coordinator, shared, config) =
                (coordinator.clone(), shared.clone(), config.clone());
            std::thread::Builder::new()
                .name("spool-heartbeat".into())
                .spawn(move || heartbeat_loop(&coordinator, &shared, &config, &stop_rx))
                .map_err(|e| {
                    GroupError::Fenced(format!("cannot start the heartbeat thread: {e}"))
                })?
        };
        let member = Member {
            coordinator,
            config,
            shared,
            member_id,
            heartbeat: Some(heartbeat),
            stop_heartbeat,
        };
        member.watch_peers(&state);
        Ok((member, state))
    }

    /// Joins again after being fenced, with a fresh lease (and, unless static, a new id).
    pub fn rejoin(&mut self) -> Result<GroupState, GroupError> {
        let now = fsutil::now_ms();
        let old = self.shared.lease.lock().expect("lease lock").take();
        drop(old); // releases the old lease's lock; its file is already gone
        let (held, state) = self.coordinator.join(new_lease(&self.config, now), now)?;
        self.member_id = held.lease.member_id.clone();
        *self.shared.lease.lock().expect("lease lock") = Some(held);
        self.shared
            .last_heartbeat_ok_ms
            .store(fsutil::monotonic_ms(), Ordering::SeqCst);
        self.shared.last_progress_ms.store(now, Ordering::SeqCst);
        self.shared.fenced.store(false, Ordering::SeqCst);
        self.watch_peers(&state);
        Ok(state)
    }

    pub fn is_fenced(&self) -> bool {
        self.shared.fenced.load(Ordering::SeqCst)
    }

    pub fn mark_fenced(&self) {
        self.shared.fenced.store(true, Ordering::SeqCst);
    }

    /// Records progress, for the max poll interval.
    pub fn note_progress(&self) {
        self.shared
            .last_progress_ms
            .store(fsutil::now_ms(), Ordering::Relaxed);
    }

    /// Whether this member may still act as a member: its last successful heartbeat is within
    /// the session timeout. After a long stop (SIGSTOP) this turns false until the heartbeat
    /// thread has either renewed the lease or found the member fenced.
    pub fn session_valid(&self) -> bool {
        self.output_gate().session_valid()
    }

    /// Blocks until the session is confirmed (true) or the member is fenced (false).
    pub fn await_session(&self) -> bool {
        self.output_gate().check()
    }

    /// What the consumer asks before every write of records (DESIGN's invariant 5).
    pub fn output_gate(&self) -> OutputGate {
        let lease = self.shared.lease.lock().expect("lease lock");
        OutputGate {
            shared: self.shared.clone(),
            lease: lease.as_ref().map(|l| (l.path.clone(), l.inode())),
            session_timeout_ms: self.config.session_timeout.as_millis() as i64,
        }
    }

    /// Starts a watcher for every live peer of `state` not watched yet.
    pub fn watch_peers(&self, state: &GroupState) {
        spawn_watchers(&self.coordinator, &self.shared, state, &self.member_id);
    }

    /// Leaves the group (committing `offsets` first) and stops the threads.
    pub fn leave(
        mut self,
        offsets: &[(super::assignor::TopicPartition, i64)],
    ) -> Result<(), GroupError> {
        self.stop_threads();
        let held = self.shared.lease.lock().expect("lease lock").take();
        match held {
            Some(held) if !self.is_fenced() => {
                self.coordinator
                    .leave(held, offsets, Trigger::Left, fsutil::now_ms())
            }
            _ => Ok(()),
        }
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.stop_heartbeat.send(());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Whether a member may still write records out: it is not fenced, its lease is still its own
/// (not removed by a peer that found it expired), and its last heartbeat is younger than its
/// session timeout on its own monotonic clock, so no peer can have expired it yet. After a
/// stop (SIGSTOP) longer than the session timeout, [`OutputGate::check`] waits until the
/// heartbeat thread has either renewed the lease or found the member fenced.
#[derive(Clone)]
pub struct OutputGate {
    shared: Arc<Shared>,
    lease: Option<(std::path::PathBuf, (u64, u64))>,
    session_timeout_ms: i64,
}

impl OutputGate {
    fn session_valid(&self) -> bool {
        let last = self.shared.last_heartbeat_ok_ms.load(Ordering::SeqCst);
        fsutil::monotonic_ms() - last < self.session_timeout_ms
    }

    fn lease_is_ours(&self) -> bool {
        let Some((path, inode)) = &self.lease else {
            return false;
        };
        fsutil::same_file(path, *inode).unwrap_or(false)
    }

    /// True when records may be written now; false when the member lost its partitions (it
    /// is then marked fenced, and what was rendered must be dropped).
    pub fn check(&self) -> bool {
        loop {
            if self.shared.fenced.load(Ordering::SeqCst) {
                return false;
            }
            if !self.lease_is_ours() {
                self.shared.fenced.store(true, Ordering::SeqCst);
                self.shared.wake();
                return false;
            }
            if self.session_valid() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn new_lease(config: &MemberConfig, now_ms: i64) -> Lease {
    let member_id = match &config.instance_id {
        Some(instance) => instance.clone(),
        None => {
            let r = fsutil::random_bytes();
            let hex: String = r[..6].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}-{hex}", config.client_id)
        }
    };
    Lease {
        member_id,
        instance_id: config.instance_id.clone(),
        client_id: config.client_id.clone(),
        host: lease::host_name(),
        pid: std::process::id(),
        topics: config.topics.clone(),
        pattern: config.pattern.clone(),
        assignor: config.assignor.clone(),
        session_timeout_ms: config.session_timeout.as_millis() as u64,
        heartbeat_interval_ms: config.heartbeat_interval.as_millis() as u64,
        max_poll_interval_ms: config.max_poll_interval.as_millis() as u64,
        joined_at_ms: now_ms,
        heartbeat_ms: now_ms,
        last_poll_ms: now_ms,
    }
}

fn heartbeat_loop(
    coordinator: &Coordinator,
    shared: &Arc<Shared>,
    config: &MemberConfig,
    stop: &Receiver<()>,
) {
    loop {
        match stop.recv_timeout(config.heartbeat_interval) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let now = fsutil::now_ms();
        let mut guard = shared.lease.lock().expect("lease lock");
        let Some(held) = guard.as_mut() else {
            continue; // fenced and not rejoined yet
        };
        let idle = now - shared.last_progress_ms.load(Ordering::Relaxed);
        if idle > config.max_poll_interval.as_millis() as i64 {
            // Stuck (e.g. blocked on a full pipe): leave so the others take over, as Kafka's
            // consumer does when max.poll.interval.ms passes.
            let held = guard.take().expect("checked above");
            let _ = coordinator.leave(held, &[], Trigger::PollInterval, now);
            shared.fenced.store(true, Ordering::SeqCst);
            shared.wake();
            continue;
        }
        let last_poll = shared.last_progress_ms.load(Ordering::Relaxed);
        // The lease's time is taken once the group lock is held (inside `heartbeat`), so a
        // long wait for it does not write an already-expired heartbeat; the monotonic stamp
        // is taken before the call, so it never claims more than was written.
        let started = fsutil::monotonic_ms();
        match coordinator.heartbeat(held, last_poll, now) {
            Ok(state) => {
                shared.last_heartbeat_ok_ms.store(started, Ordering::SeqCst);
                let me = held.lease.member_id.clone();
                drop(guard);
                if !state.members.contains_key(&me) {
                    shared.fenced.store(true, Ordering::SeqCst);
                }
                spawn_watchers(coordinator, shared, &state, &me);
                shared.wake();
            }
            Err(GroupError::Fenced(_)) => {
                shared.fenced.store(true, Ordering::SeqCst);
                shared.wake();
            }
            Err(_) => {
                // A transient failure (e.g. a disk error) is retried at the next interval; if
                // it persists the session expires and the peers take over.
            }
        }
    }
}

fn spawn_watchers(coordinator: &Coordinator, shared: &Arc<Shared>, state: &GroupState, me: &str) {
    let mut watched = shared.watched.lock().expect("watched lock");
    for peer in state.members.keys() {
        if peer == me || watched.contains(peer) {
            continue;
        }
        watched.insert(peer.clone());
        let path = Lease::path(&coordinator.group.members_dir(), peer);
        let (coordinator, shared2, peer2) = (coordinator.clone(), shared.clone(), peer.clone());
        if std::thread::Builder::new()
            .name("spool-peer-watch".into())
            .stack_size(64 * 1024)
            .spawn(move || watch_peer(&coordinator, &shared2, &peer2, &path))
            .is_err()
        {
            watched.remove(peer);
        }
    }
}

/// Blocks on a peer's lease lock; when it is handed over, the peer is gone: reconcile.
fn watch_peer(coordinator: &Coordinator, shared: &Arc<Shared>, peer: &str, path: &std::path::Path) {
    let done = |shared: &Arc<Shared>| {
        shared.watched.lock().expect("watched lock").remove(peer);
    };
    let Ok(file) = std::fs::File::open(path) else {
        return done(shared);
    };
    // An unlocked lease (a static member away, or one that already died) needs no watcher:
    // the heartbeat's reconcile deals with it.
    match lock::ExclusiveLock::try_acquire(&file) {
        Ok(Some(_)) | Err(_) => return done(shared),
        Ok(None) => {}
    }
    let got = lock::ExclusiveLock::acquire(&file).is_ok();
    done(shared);
    if !got || shared.stop.load(Ordering::SeqCst) {
        return;
    }
    if coordinator.check_members(fsutil::now_ms()).is_ok() {
        shared.wake();
    }
}
