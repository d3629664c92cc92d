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

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Mutex;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// How long a wait lasts without any notification before the caller looks again anyway: the
/// fallback for file systems that do not notify (network mounts) and for lost events.
pub const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// Waits for changes in a set of directories.
pub struct ChangeWaiter {
    /// Behind a mutex so that waiting, which sets up the watches the first time, takes `&self`.
    state: Mutex<WatchState>,
    tx: SyncSender<()>,
    rx: Receiver<()>,
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
        ChangeWaiter {
            state: Mutex::new(WatchState {
                watcher: None,
                armed: false,
                dirs: Vec::new(),
            }),
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

    /// Blocks until something changed or `timeout` passed (at most [`FALLBACK_POLL`]).
    /// Returns true when woken by a change. The first call sets up the watches and returns
    /// true at once: look again before waiting.
    pub fn wait(&self, timeout: Duration) -> bool {
        {
            let mut state = self.state();
            if !state.armed {
                state.armed = true;
                let signal = self.tx.clone();
                state.watcher =
                    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                        if event.is_ok_and(|e| {
                            !e.paths.is_empty() && e.paths.iter().all(|p| scratch(p))
                        }) {
                            return;
                        }
                        // Full means a wake-up is already pending: nothing is lost by dropping
                        // this one.
                        let _ = signal.try_send(());
                    })
                    .ok();
                let WatchState { watcher, dirs, .. } = &mut *state;
                if let Some(w) = watcher.as_mut() {
                    for dir in dirs.iter() {
                        let _ = w.watch(dir, RecursiveMode::NonRecursive);
                    }
                }
                return true;
            }
        }
        match self.rx.recv_timeout(timeout.min(FALLBACK_POLL)) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }
}

/// Files whose changes wake nobody: hidden ones (lock files, temporary files renamed into place
/// later, which then show under their real name) and the previous versions kept of YAML files.
/// A group directory sees several of these at every write of `group.yaml`, and every member
/// watches it.
fn scratch(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.starts_with('.') || name.ends_with(".prev") || name.contains(".prev.tmp")
}

impl Default for ChangeWaiter {
    fn default() -> Self {
        ChangeWaiter::new()
    }
}
