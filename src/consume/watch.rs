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
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// How long a wait lasts without any notification before the caller looks again anyway: the
/// fallback for file systems that do not notify (network mounts) and for lost events.
pub const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// Waits for changes in a set of directories.
pub struct ChangeWaiter {
    /// `None` until the first wait, and where notifications are unavailable.
    watcher: Option<notify::RecommendedWatcher>,
    armed: bool,
    dirs: Vec<PathBuf>,
    tx: SyncSender<()>,
    rx: Receiver<()>,
}

impl ChangeWaiter {
    pub fn new() -> ChangeWaiter {
        let (tx, rx) = sync_channel(1);
        ChangeWaiter {
            watcher: None,
            armed: false,
            dirs: Vec::new(),
            tx,
            rx,
        }
    }

    /// Watches `dir` (not recursively) from the first wait on.
    pub fn watch(&mut self, dir: &Path) {
        self.dirs.push(dir.to_owned());
        if let Some(w) = self.watcher.as_mut() {
            // On failure this directory is covered by the polling fallback.
            let _ = w.watch(dir, RecursiveMode::NonRecursive);
        }
    }

    pub fn unwatch(&mut self, dir: &Path) {
        if let Some(i) = self.dirs.iter().position(|d| d == dir) {
            self.dirs.remove(i);
        }
        if let Some(w) = self.watcher.as_mut() {
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
    pub fn wait(&mut self, timeout: Duration) -> bool {
        if !self.armed {
            self.arm();
            return true;
        }
        match self.rx.recv_timeout(timeout.min(FALLBACK_POLL)) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    fn arm(&mut self) {
        self.armed = true;
        let signal = self.tx.clone();
        self.watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            // Full means a wake-up is already pending: nothing is lost by dropping this one.
            let _ = signal.try_send(());
        })
        .ok();
        if let Some(w) = self.watcher.as_mut() {
            for dir in &self.dirs {
                let _ = w.watch(dir, RecursiveMode::NonRecursive);
            }
        }
    }
}

impl Default for ChangeWaiter {
    fn default() -> Self {
        ChangeWaiter::new()
    }
}
