//! Waking a consumer when a partition changes, so a produced record shows up in milliseconds.
//!
//! A file-notification watcher (inotify on Linux) on each partition directory signals a channel
//! of capacity one: any number of appends while the consumer is busy coalesce into one wake-up.
//! The watcher is set up by the first [`ChangeWaiter::wait`], which then returns at once
//! without sleeping, so the caller reads once more with the watches in place before it really
//! sleeps: a change that lands between "nothing to read" and "wait" is never missed. A reader
//! that never waits (`consume -e`, `-n` on a full topic) so never starts the notification
//! thread nor pays for its teardown at exit (closing an inotify instance waits for the
//! kernel's grace period, several milliseconds). Where notifications are unavailable, waiting
//! falls back to polling at a short interval.
//!
//! An idle consumer sleeps in `poll(2)` on an eventfd that the notifications bump, for as long as
//! its caller allows (at most [`NOTIFIED_FALLBACK`], a safety net for lost events): it costs
//! nothing while nothing changes. Other wake-ups reach it the same way: [`wake_all_waiters`],
//! which a signal handler may call (Ctrl-C, SIGTERM: the process ends promptly) and which a
//! group member calls when it was fenced or a peer died.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// How long a wait lasts without any notification before the caller looks again anyway, where
/// notifications are unavailable (network mounts).
pub const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// The longest wait while notifications work: a safety net for an event lost to an overflowing
/// queue, not a poll (an idle consumer wakes this rarely).
pub const NOTIFIED_FALLBACK: Duration = Duration::from_secs(5);

/// Waits for changes in a set of directories.
pub struct ChangeWaiter {
    /// Behind a mutex so that waiting, which sets up the watches the first time, takes `&self`.
    state: Mutex<WatchState>,
    /// Bumped by every notification that matters; the waiter sleeps in `poll` on it. `None`
    /// when no eventfd could be had: then notifications are not used and waits poll.
    changed: Option<Arc<EventFd>>,
    /// [`ChangeWaiter::notifier`]'s messages, looked at on every wake-up.
    tx: SyncSender<()>,
    rx: Receiver<()>,
}

/// An eventfd: a counter that makes a `poll` return while it is not zero.
struct EventFd(OwnedFd);

impl EventFd {
    fn new() -> Option<EventFd> {
        // SAFETY: eventfd has no pointer arguments; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        // SAFETY: fd was just returned by eventfd and is owned by nobody else.
        (fd >= 0).then(|| EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

/// Bumps the eventfd `fd` (async-signal-safe: one write(2)).
fn bump(fd: RawFd) {
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to an eventfd of this process.
        let _ = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }
}

/// The process-wide wake-up every waiter also sleeps on (created with the first waiter, never
/// closed, so a signal handler can use its number at any time).
static WAKE_ALL: OnceLock<Option<EventFd>> = OnceLock::new();
static WAKE_ALL_FD: AtomicI32 = AtomicI32::new(-1);

fn wake_all_fd() -> RawFd {
    let fd = WAKE_ALL.get_or_init(|| {
        let e = EventFd::new();
        if let Some(e) = &e {
            WAKE_ALL_FD.store(e.0.as_raw_fd(), Ordering::SeqCst);
        }
        e
    });
    fd.as_ref().map_or(-1, |e| e.0.as_raw_fd())
}

/// Wakes every [`ChangeWaiter::wait`] of this process so its caller looks again (at a flag set
/// by a signal handler, a member's fencing). Async-signal-safe: call it from a signal handler.
/// (With several waiters in one process, the first to wake takes the wake-up; the others look
/// again at their next notification or fallback.)
pub fn wake_all_waiters() {
    bump(WAKE_ALL_FD.load(Ordering::SeqCst));
}

struct WatchState {
    /// `None` until the first wait, and where notifications are unavailable.
    watcher: Option<notify::RecommendedWatcher>,
    armed: bool,
    dirs: Vec<PathBuf>,
}

impl ChangeWaiter {
    pub fn new() -> ChangeWaiter {
        let (tx, rx) = sync_channel(1);
        wake_all_fd();
        ChangeWaiter {
            state: Mutex::new(WatchState {
                watcher: None,
                armed: false,
                dirs: Vec::new(),
            }),
            changed: EventFd::new().map(Arc::new),
            tx,
            rx,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        // The state stays consistent whatever panicked while it was held.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches `dir` (not recursively) from the first wait on.
    pub fn watch(&mut self, dir: &Path) {
        let mut state = self.state();
        state.dirs.push(dir.to_owned());
        if let Some(w) = state.watcher.as_mut() {
            // On failure this directory is covered by the polling fallback.
            let _ = w.watch(dir, RecursiveMode::NonRecursive);
        }
    }

    pub fn unwatch(&mut self, dir: &Path) {
        let mut state = self.state();
        if let Some(i) = state.dirs.iter().position(|d| d == dir) {
            state.dirs.remove(i);
        }
        if let Some(w) = state.watcher.as_mut() {
            let _ = w.unwatch(dir);
        }
    }

    /// Wakes a waiter from another thread (e.g. a group membership change).
    pub fn notifier(&self) -> SyncSender<()> {
        self.tx.clone()
    }

    /// Blocks until something changed, [`wake_all_waiters`] was called, or `timeout` passed
    /// (at most [`NOTIFIED_FALLBACK`], or [`FALLBACK_POLL`] where notifications are
    /// unavailable). Returns true when woken by a change. The first call sets up the watches
    /// and returns true at once: look again before waiting.
    pub fn wait(&self, timeout: Duration) -> bool {
        let cap = {
            let mut state = self.state();
            if !state.armed {
                state.armed = true;
                state.watcher = self.changed.clone().and_then(|changed| {
                    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                        if event.is_ok_and(|e| {
                            !e.paths.is_empty() && e.paths.iter().all(|p| scratch(p))
                        }) {
                            return;
                        }
                        // Any number of changes before the waiter looks make one wake-up.
                        bump(changed.0.as_raw_fd());
                    })
                    .ok()
                });
                let WatchState { watcher, dirs, .. } = &mut *state;
                if let Some(w) = watcher.as_mut() {
                    for dir in dirs.iter() {
                        let _ = w.watch(dir, RecursiveMode::NonRecursive);
                    }
                }
                return true;
            }
            match state.watcher {
                Some(_) => NOTIFIED_FALLBACK,
                None => FALLBACK_POLL,
            }
        };
        if self.rx.try_recv().is_ok() {
            return true;
        }
        let mut fds = [
            libc::pollfd {
                fd: self.changed.as_ref().map_or(-1, |c| c.0.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake_all_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = timeout.min(cap).as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: fds is a valid array of two pollfds (a negative fd is ignored). A signal
        // interrupts it (EINTR), which is a wake-up too: its handler set something to look at.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        let mut woken = n != 0;
        if fds[0].revents != 0 {
            if let Some(c) = &self.changed {
                c.drain();
            }
        }
        if fds[1].revents != 0 {
            if let Some(Some(e)) = WAKE_ALL.get() {
                e.drain();
            }
        }
        while self.rx.try_recv().is_ok() {
            woken = true;
        }
        woken
    }
}

/// Files whose changes wake nobody: hidden ones (lock files, temporary files renamed into place
/// later, which then show under their real name), the previous versions kept of YAML files, and
/// a group's committed offsets.
/// A group directory sees several of these at every write of `group.yaml`, and every member
/// watches it.
fn scratch(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.starts_with('.')
        || name.ends_with(".prev")
        || name.contains(".prev.tmp")
        || (name == crate::group::state::OFFSETS_FILE && in_group_dir(path))
}

/// Whether `path` is a file of a group directory (`groups/<group>/<file>`). A member waits for
/// `group.yaml` (generations, partitions handed over), never for the committed offsets, which
/// every member holding partitions rewrites every auto-commit interval.
fn in_group_dir(path: &Path) -> bool {
    path.parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .is_some_and(|n| n == "groups")
}

impl Default for ChangeWaiter {
    fn default() -> Self {
        ChangeWaiter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn scratch_files_and_a_groups_offsets_wake_nobody() {
        assert!(scratch(Path::new("/s/groups/g/.lock-holder")));
        assert!(scratch(Path::new("/s/groups/g/group.yaml.prev")));
        assert!(scratch(Path::new("/s/groups/g/offsets.yaml")));
        assert!(!scratch(Path::new("/s/groups/g/group.yaml")));
        // A topic may be called offsets.yaml: its creation wakes a pattern subscriber.
        assert!(!scratch(Path::new("/s/topics/offsets.yaml")));
        assert!(!scratch(Path::new(
            "/s/topics/t/0/00000000000000000000.log"
        )));
    }

    #[test]
    fn an_idle_wait_sleeps_until_a_change_or_a_wake_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut waiter = ChangeWaiter::new();
        waiter.watch(dir.path());
        assert!(waiter.wait(Duration::from_secs(10)), "the first wait arms");
        let t = Instant::now();
        assert!(!waiter.wait(Duration::from_millis(600)));
        assert!(t.elapsed() >= Duration::from_millis(550), "woke on a timer");
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let t = Instant::now();
        assert!(waiter.wait(Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(4));
        let t = Instant::now();
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            wake_all_waiters();
        });
        assert!(waiter.wait(Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(4));
        let t = Instant::now();
        waiter.notifier().send(()).unwrap();
        assert!(waiter.wait(Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
