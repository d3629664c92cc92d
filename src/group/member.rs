//! One member of a group: its lease, its heartbeat thread and its watcher of one peer.
//!
//! Two threads per member, whatever the group's size:
//!
//! - The heartbeat thread rewrites the member's own lease every `heartbeat.interval`: one
//!   write, no group lock, nothing read. If the member made no progress for
//!   `max.poll.interval` (its output is blocked), it takes the member out of the group, as
//!   Kafka's consumer does.
//! - The watcher thread watches one peer: the next member of the generation in member-id order
//!   (the last watches the first), so every member is watched by exactly one other, and a
//!   change is handled by that one member instead of every member racing for the group lock.
//!   The watcher waits on a pidfd of the peer's process (a local peer) or looks at the peer's
//!   lease lock at a short interval (a peer on another host), so a crash (even kill -9) is
//!   seen at once; it then reconciles the whole group, which removes every dead member in one
//!   generation (a storm of deaths needs no chain of handlers). It also reads the peer's
//!   heartbeat value every heartbeat interval: when that value stayed the same for a whole
//!   session timeout by this process's monotonic clock, the peer is hung (SIGSTOP, a stalled
//!   disk) and is expired. No wall clock is compared with another process's, so a clock jump
//!   expires nobody. The member with the smallest id (the leader) also looks, every heartbeat
//!   interval, whether a subscribed topic gained partitions, and every session timeout sweeps
//!   every lease (a safety net for a peer whose watcher is itself stopped).
//!
//! A member's own session is valid for a session timeout from the start of its last successful
//! heartbeat, by its monotonic clock; a watcher expires a peer only after seeing its heartbeat
//! unchanged for a session timeout from a moment after it was written. A member stopped and
//! resumed therefore delivers nothing until its heartbeat thread has renewed the lease (and
//! checked it is still in place) or found it removed.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::coordinator::Coordinator;
use super::lease::{self, HeldLease, Lease};
use super::state::{GroupState, Trigger};
use super::GroupError;
use crate::store::{fsutil, Store, StoreError};

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

/// Milliseconds on this process's monotonic clock (never jumps, runs while stopped).
fn mono_ms() -> i64 {
    fsutil::monotonic_ms()
}

/// What the watcher needs to know of the generation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ring {
    /// The peer this member watches.
    successor: Option<String>,
    /// Whether this member has the smallest id of the generation.
    leader: bool,
    partition_counts: BTreeMap<String, i32>,
}

impl Ring {
    fn of(state: &GroupState, me: &str) -> Ring {
        let ids = &state.members;
        if !ids.contains_key(me) {
            return Ring::default();
        }
        let successor = ids
            .range::<str, _>((std::ops::Bound::Excluded(me), std::ops::Bound::Unbounded))
            .next()
            .or_else(|| ids.iter().next())
            .map(|(id, _)| id.clone())
            .filter(|id| id != me);
        Ring {
            successor,
            leader: ids.keys().next().is_some_and(|id| id == me),
            partition_counts: state.partition_counts.clone(),
        }
    }
}

/// State shared between the member's threads.
pub struct Shared {
    /// Set when the member lost its membership (lease removed, generation left, poll interval).
    pub fenced: AtomicBool,
    /// [`mono_ms`] when the last successful heartbeat began.
    last_renewed_mono: AtomicI64,
    /// [`mono_ms`] of the consumer's last progress (records written, or nothing to write).
    last_progress_mono: AtomicI64,
    stop: AtomicBool,
    lease: Mutex<Option<HeldLease>>,
    ring: Mutex<Ring>,
    /// Wakes the watcher when its peer changes or the member stops.
    nudge: EventFd,
    waker: SyncSender<()>,
}

impl Shared {
    fn wake(&self) {
        let _ = self.waker.try_send(());
        // The consuming thread may sleep in `poll` for seconds: wake it.
        crate::consume::watch::wake_all_waiters();
    }

    fn set_ring(&self, state: &GroupState, me: &str) {
        let ring = Ring::of(state, me);
        let mut current = self.ring.lock().expect("ring lock");
        if *current != ring {
            let moved = current.successor != ring.successor;
            *current = ring;
            if moved {
                self.nudge.signal();
            }
        }
    }

    fn me(&self) -> Option<String> {
        self.lease
            .lock()
            .expect("lease lock")
            .as_ref()
            .map(|h| h.lease.member_id.clone())
    }
}

/// A joined member.
pub struct Member {
    pub coordinator: Coordinator,
    pub config: MemberConfig,
    pub shared: Arc<Shared>,
    pub member_id: String,
    threads: Vec<JoinHandle<()>>,
    stop_heartbeat: Sender<()>,
}

impl Member {
    /// Joins the group and starts the heartbeat and watcher threads. `waker` is signalled
    /// whenever the member's view may have changed (a peer died, the member was fenced).
    pub fn join(
        store: &Store,
        config: MemberConfig,
        waker: SyncSender<()>,
    ) -> Result<(Member, GroupState), GroupError> {
        let mut coordinator = Coordinator::new(store, &config.group)?;
        // A holder of the group lock stopped for longer than a session loses it (and is
        // fenced), as it would lose its membership.
        coordinator.lock_break = config.session_timeout;
        let now = fsutil::now_ms();
        let started = mono_ms();
        let (held, state) = coordinator.join(new_lease(&config, now), now)?;
        let member_id = held.lease.member_id.clone();
        let nudge = EventFd::new()
            .map_err(|e| GroupError::Fenced(format!("cannot create an eventfd: {e}")))?;
        let shared = Arc::new(Shared {
            fenced: AtomicBool::new(false),
            last_renewed_mono: AtomicI64::new(started),
            last_progress_mono: AtomicI64::new(started),
            stop: AtomicBool::new(false),
            lease: Mutex::new(Some(held)),
            ring: Mutex::new(Ring::default()),
            nudge,
            waker,
        });
        shared.set_ring(&state, &member_id);
        let (stop_heartbeat, stop_rx) = channel();
        let spawn_error =
            |e: std::io::Error| GroupError::Fenced(format!("cannot start a member thread: {e}"));
        let heartbeat = {
            let (coordinator, shared, config) =
                (coordinator.clone(), shared.clone(), config.clone());
            std::thread::Builder::new()
                .name("spool-heartbeat".into())
                .stack_size(256 * 1024)
                .spawn(move || heartbeat_loop(&coordinator, &shared, &config, &stop_rx))
                .map_err(spawn_error)?
        };
        let watcher = {
            let (coordinator, shared, config) =
                (coordinator.clone(), shared.clone(), config.clone());
            std::thread::Builder::new()
                .name("spool-watch".into())
                .stack_size(256 * 1024)
                .spawn(move || Watcher::new(coordinator, shared, config).run())
                .map_err(spawn_error)?
        };
        let member = Member {
            coordinator,
            config,
            shared,
            member_id,
            threads: vec![heartbeat, watcher],
            stop_heartbeat,
        };
        Ok((member, state))
    }

    /// Joins again after being fenced, with a fresh lease (and, unless static, a new id).
    pub fn rejoin(&mut self) -> Result<GroupState, GroupError> {
        let now = fsutil::now_ms();
        let started = mono_ms();
        // The old lease (its file is gone if a peer expired us) is given up by the join itself,
        // under the group lock: see `Coordinator::rejoin`.
        let old = self.shared.lease.lock().expect("lease lock").take();
        let (held, state) = self
            .coordinator
            .rejoin(old, new_lease(&self.config, now), now)?;
        self.member_id = held.lease.member_id.clone();
        *self.shared.lease.lock().expect("lease lock") = Some(held);
        self.shared
            .last_renewed_mono
            .store(started, Ordering::SeqCst);
        self.shared
            .last_progress_mono
            .store(started, Ordering::SeqCst);
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
            .last_progress_mono
            .store(mono_ms(), Ordering::Relaxed);
    }

    /// Whether this member may still act as a member: its last successful heartbeat began
    /// within the session timeout (monotonic clock). After a long stop (SIGSTOP) this turns
    /// false until the heartbeat thread has either renewed the lease or found the member
    /// fenced.
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

    /// Acknowledges `generation` in the lease (a cooperative member with nothing to give up).
    pub fn acknowledge(&self, generation: i32) -> Result<(), GroupError> {
        if let Some(held) = self.shared.lease.lock().expect("lease lock").as_mut() {
            held.acknowledge(generation)?;
        }
        Ok(())
    }

    /// Tells the watcher the generation `state` (which peer to watch).
    pub fn watch_peers(&self, state: &GroupState) {
        self.shared.set_ring(state, &self.member_id);
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
        self.shared.nudge.signal();
        let _ = self.stop_heartbeat.send(());
        for h in self.threads.drain(..) {
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
/// (not removed by a peer that found it expired), and its last heartbeat began less than a
/// session timeout ago on its own monotonic clock, so no peer can have expired it yet (a peer
/// expires it only after seeing its heartbeat value unchanged for a session timeout on the
/// peer's clock, from a moment after that value was written). After a stop (SIGSTOP) longer
/// than the session timeout, [`OutputGate::check`] waits until the heartbeat thread has either
/// renewed the lease or found the member fenced.
#[derive(Clone)]
pub struct OutputGate {
    shared: Arc<Shared>,
    lease: Option<(std::path::PathBuf, (u64, u64))>,
    session_timeout_ms: i64,
}

impl OutputGate {
    fn session_valid(&self) -> bool {
        let last = self.shared.last_renewed_mono.load(Ordering::SeqCst);
        mono_ms() - last < self.session_timeout_ms
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
        acked_generation: None,
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
        let started = mono_ms();
        let now = fsutil::now_ms();
        let mut guard = shared.lease.lock().expect("lease lock");
        let Some(held) = guard.as_mut() else {
            continue; // fenced and not rejoined yet
        };
        let idle = started - shared.last_progress_mono.load(Ordering::Relaxed);
        if idle > config.max_poll_interval.as_millis() as i64 {
            // Stuck (e.g. blocked on a full pipe): leave so the others take over, as Kafka's
            // consumer does when max.poll.interval.ms passes.
            let held = guard.take().expect("checked above");
            let _ = coordinator.leave(held, &[], Trigger::PollInterval, now);
            shared.fenced.store(true, Ordering::SeqCst);
            shared.wake();
            continue;
        }
        let last_poll = now - idle;
        match coordinator.renew(held, last_poll, now) {
            Ok(()) => shared.last_renewed_mono.store(started, Ordering::SeqCst),
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

/// How often a peer whose process cannot be waited on (another host, no pidfd) has its lease
/// lock looked at.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// The peer being watched.
struct Watched {
    id: String,
    /// Readable when the peer's process exits; `None` when it cannot be had or already fired.
    pidfd: Option<OwnedFd>,
    /// The heartbeat value last read and when (monotonic) it was first seen.
    heartbeat: Option<(i64, Instant)>,
    next_read: Instant,
}

/// The watcher thread's state.
struct Watcher {
    coordinator: Coordinator,
    shared: Arc<Shared>,
    config: MemberConfig,
    host: String,
    watched: Option<Watched>,
    next_partition_check: Instant,
    next_sweep: Instant,
    /// The leader's sweeps: lease heartbeat values and when each was first seen.
    swept: HashMap<String, (i64, Instant)>,
}

impl Watcher {
    fn new(coordinator: Coordinator, shared: Arc<Shared>, config: MemberConfig) -> Watcher {
        let now = Instant::now();
        Watcher {
            coordinator,
            shared,
            next_partition_check: now + config.heartbeat_interval,
            next_sweep: now + config.session_timeout,
            config,
            host: lease::host_name(),
            watched: None,
            swept: HashMap::new(),
        }
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn run(mut self) {
        while !self.stopped() {
            let ring = self.shared.ring.lock().expect("ring lock").clone();
            if ring.leader {
                self.leader_duties(&ring);
            } else {
                self.swept.clear();
            }
            if self.watched.as_ref().map(|w| &w.id) != ring.successor.as_ref() {
                self.watched = ring.successor.as_ref().map(|id| self.start_watching(id));
            }
            let timeout = match self.watched.is_some() {
                true => self.check_peer(),
                false => self.config.heartbeat_interval,
            };
            let timeout = if ring.leader {
                timeout.min(
                    self.next_partition_check
                        .saturating_duration_since(Instant::now()),
                )
            } else {
                timeout
            };
            let pidfd = self
                .watched
                .as_ref()
                .and_then(|w| w.pidfd.as_ref().map(AsRawFd::as_raw_fd));
            if wait(&self.shared.nudge, pidfd, timeout) == Woken::Exited {
                // The process is gone; its lock may live on in a child that inherited it, so
                // from now on the lock itself is looked at.
                if let Some(w) = self.watched.as_mut() {
                    w.pidfd = None;
                    w.next_read = Instant::now();
                }
            }
        }
    }

    fn start_watching(&self, id: &str) -> Watched {
        let path = Lease::path(&self.coordinator.group.members_dir(), id);
        let pidfd = match Lease::read(&path) {
            Ok(l) if l.host == self.host => pidfd_open(l.pid),
            _ => None,
        };
        Watched {
            id: id.to_owned(),
            pidfd,
            heartbeat: None,
            next_read: Instant::now(),
        }
    }

    /// Looks at the watched peer if due; acts if it is dead or hung. Returns how long to wait
    /// before looking again.
    fn check_peer(&mut self) -> Duration {
        let now = Instant::now();
        let Some(w) = self.watched.as_mut() else {
            return self.config.heartbeat_interval;
        };
        if now < w.next_read {
            return w.next_read - now;
        }
        let poll = if w.pidfd.is_some() {
            self.config.heartbeat_interval
        } else {
            LOCK_POLL.min(self.config.heartbeat_interval)
        };
        w.next_read = now + poll;
        let path = Lease::path(&self.coordinator.group.members_dir(), &w.id);
        let peer = Lease::read(&path);
        let locked = lease::is_locked(&path);
        let is_static = peer.as_ref().is_ok_and(|l| l.instance_id.is_some());
        enum Act {
            Reconcile,
            Expire(String, i64),
            Nothing,
        }
        let act = match peer {
            Err(StoreError::Io { ref source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // Gone without a new generation (a crash mid-leave, a removed file).
                Act::Reconcile
            }
            _ if !locked && !is_static => Act::Reconcile,
            Ok(l) => {
                let stalled = match w.heartbeat {
                    Some((value, since)) if value == l.heartbeat_ms => {
                        now.duration_since(since) >= self.config.session_timeout
                    }
                    _ => {
                        w.heartbeat = Some((l.heartbeat_ms, now));
                        false
                    }
                };
                if stalled {
                    Act::Expire(l.member_id, l.heartbeat_ms)
                } else {
                    if let Some((_, since)) = w.heartbeat {
                        // Look again when the session would run out, or at the next interval.
                        let due = since + self.config.session_timeout;
                        w.next_read = w.next_read.min(due.max(now + Duration::from_millis(1)));
                    }
                    Act::Nothing
                }
            }
            Err(_) => Act::Nothing, // a damaged lease a live process holds: looked at again later
        };
        match act {
            Act::Reconcile => self.handle(|c| c.check_members(fsutil::now_ms()).map(Some)),
            Act::Expire(id, value) => self.handle(|c| c.expire(&id, value, fsutil::now_ms())),
            Act::Nothing => {}
        }
        self.watched.as_ref().map_or(poll, |w| {
            w.next_read.saturating_duration_since(Instant::now())
        })
    }

    /// Runs a change of the group and follows the generation it leaves.
    fn handle(
        &mut self,
        change: impl FnOnce(&Coordinator) -> Result<Option<GroupState>, StoreError>,
    ) {
        if let Ok(Some(state)) = change(&self.coordinator) {
            if let Some(me) = self.shared.me() {
                if !state.members.contains_key(&me) {
                    self.shared.fenced.store(true, Ordering::SeqCst);
                }
                self.shared.set_ring(&state, &me);
            }
            self.shared.wake();
        }
        // Whatever happened, the peer is looked at afresh (a new pidfd if it is still there).
        if let Some(w) = self.watched.take() {
            let mut fresh = self.start_watching(&w.id);
            fresh.next_read = Instant::now() + LOCK_POLL;
            self.watched = Some(fresh);
        }
    }

    /// The leader notices partitions added to subscribed topics, and sweeps every lease once
    /// per session timeout in case a watcher is itself stopped.
    fn leader_duties(&mut self, ring: &Ring) {
        let now = Instant::now();
        if now >= self.next_partition_check {
            self.next_partition_check = now + self.config.heartbeat_interval;
            // A pattern subscription: a topic created since that matches it.
            let matched = self.config.pattern.as_ref().is_some_and(|p| {
                let Ok(re) = regex::Regex::new(&format!("^(?:{p})$")) else {
                    return false;
                };
                self.coordinator.store.list_topics().is_ok_and(|topics| {
                    topics
                        .iter()
                        .any(|t| re.is_match(t) && !ring.partition_counts.contains_key(t))
                })
            });
            let grown = matched
                || self.config.topics.iter().any(|t| {
                    self.coordinator.store.topic(t).is_ok_and(|topic| {
                        ring.partition_counts.get(t) != Some(&topic.partition_count())
                    })
                });
            if grown {
                self.handle(|c| c.check_members(fsutil::now_ms()).map(Some));
            }
        }
        if now >= self.next_sweep {
            self.next_sweep = now + self.config.session_timeout;
            self.sweep();
        }
    }

    fn sweep(&mut self) {
        let Ok(leases) = self.coordinator.scan_leases(fsutil::now_ms()) else {
            return;
        };
        let me = self.shared.me();
        let now = Instant::now();
        let mut seen = HashMap::new();
        let mut stalled = Vec::new();
        let mut dead = false;
        for e in leases {
            if !e.stays() {
                dead = true;
                continue;
            }
            let id = e.lease.member_id;
            if Some(&id) == me.as_ref() {
                continue;
            }
            let since = match self.swept.get(&id) {
                Some(&(value, since)) if value == e.lease.heartbeat_ms => {
                    if now.duration_since(since) >= self.config.session_timeout {
                        stalled.push((id.clone(), value));
                    }
                    since
                }
                _ => now,
            };
            seen.insert(id, (e.lease.heartbeat_ms, since));
        }
        self.swept = seen;
        if dead {
            self.handle(|c| c.check_members(fsutil::now_ms()).map(Some));
        }
        for (id, value) in stalled {
            self.handle(|c| c.expire(&id, value, fsutil::now_ms()));
        }
    }
}

/// An eventfd: a counter another thread bumps to wake a `poll`.
struct EventFd(OwnedFd);

impl EventFd {
    fn new() -> std::io::Result<EventFd> {
        // SAFETY: eventfd has no pointer arguments; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by eventfd and is owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

/// A pidfd for `pid` (Linux 5.3+); `None` where unavailable or the process is gone.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; a non-negative result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[derive(Debug, PartialEq, Eq)]
enum Woken {
    Timeout,
    Nudged,
    Exited,
}

/// Sleeps until `nudge` is signalled, the process behind `pidfd` exits, or `timeout` passes.
fn wait(nudge: &EventFd, pidfd: Option<RawFd>, timeout: Duration) -> Woken {
    let mut fds = [
        libc::pollfd {
            fd: nudge.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pidfd.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: fds is a valid array of two pollfds (a negative fd is ignored by poll).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if n <= 0 {
        return Woken::Timeout;
    }
    if fds[0].revents != 0 {
        nudge.drain();
        return Woken::Nudged;
    }
    if fds[1].revents != 0 {
        return Woken::Exited;
    }
    Woken::Timeout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::state::MemberInfo;

    fn state(ids: &[&str]) -> GroupState {
        let mut s = GroupState::default();
        for id in ids {
            s.members.insert(
                (*id).into(),
                MemberInfo {
                    instance_id: None,
                    client_id: "c".into(),
                    topics: vec![],
                },
            );
        }
        s
    }

    #[test]
    fn every_member_is_watched_by_exactly_one_other() {
        let s = state(&["a", "b", "c", "d"]);
        let successors: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|m| Ring::of(&s, m).successor.unwrap())
            .collect();
        assert_eq!(successors, ["b", "c", "d", "a"]);
        assert!(Ring::of(&s, "a").leader);
        assert!(!Ring::of(&s, "b").leader);
        assert_eq!(Ring::of(&state(&["a"]), "a").successor, None);
        assert_eq!(
            Ring::of(&s, "x"),
            Ring::default(),
            "not a member: watches nobody"
        );
    }

    #[test]
    fn a_nudge_wakes_the_watcher_and_an_exit_is_seen() {
        let nudge = EventFd::new().unwrap();
        assert_eq!(wait(&nudge, None, Duration::from_millis(1)), Woken::Timeout);
        nudge.signal();
        assert_eq!(wait(&nudge, None, Duration::from_secs(5)), Woken::Nudged);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let fd = pidfd_open(child.id()).expect("pidfd_open");
        let t = Instant::now();
        assert_eq!(
            wait(&nudge, Some(fd.as_raw_fd()), Duration::from_secs(5)),
            Woken::Exited
        );
        assert!(t.elapsed() < Duration::from_secs(4));
        child.wait().unwrap();
    }
}
