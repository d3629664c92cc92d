//! Waking a consumer when a partition changes, so a produced record shows up in milliseconds.
//!
//! A file-notification watcher (inotify on Linux) on each partition directory signals a channel
//! of capacity one: any number of appends while the consumer is busy coalesce into one wake-up,
//! and a change that lands between "nothing to read" and "wait" is never missed, because the
//! watcher is set up before the first read. Where notifications are unavailable, waiting falls
//! back to polling at a short interval.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// How long a wait lasts without any notification before the caller looks again anyway: the
/// fallback for file systems that do not notify (network mounts) and for lost events.
pub const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// Waits for changes in a set of directories.
pub struct ChangeWaiter {
    watcher: Option<notify::RecommendedWatcher>,
    tx: SyncSender<()>,
    rx: Receiver<()>,
}

impl ChangeWaiter {
    pub fn new() -> ChangeWaiter {
        let (tx, rx) = sync_channel(1);
        let signal = tx.clone();
        let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            // Full means a wake-up is already pending: nothing is lost by dropping this one.
            let _ = signal.try_send(());
        })
        .ok();
        ChangeWaiter { watcher, tx, rx }
    }

    /// A waiter that watches nothing: for readers that never wait (`consume -e`), which so
    /// neither start the notification thread nor pay for tearing it down at exit (closing an
    /// inotify instance waits for the kernel's grace period, several milliseconds).
    /// [`ChangeWaiter::wait`] still works, by polling.
    pub fn polling() -> ChangeWaiter {
        let (tx, rx) = sync_channel(1);
        ChangeWaiter {
            watcher: None,
            tx,
            rx,
        }
    }

    /// Watches `dir` (not recursively). Without notifications this is a no-op and waits poll.
    pub fn watch(&mut self, dir: &Path) {
        if let Some(w) = self.watcher.as_mut() {
            if w.watch(dir, RecursiveMode::NonRecursive).is_err() {
                // Keep the other watches; this directory is covered by the polling fallback.
            }
        }
    }

    pub fn unwatch(&mut self, dir: &Path) {
        if let Some(w) = self.watcher.as_mut() {
            let _ = w.unwatch(dir);
        }
    }

    /// Wakes a waiter from another thread (e.g. a group membership change).
    pub fn notifier(&self) -> SyncSender<()> {
        self.tx.clone()
    }

    /// Blocks until something changed or `timeout` passed (at most [`FALLBACK_POLL`]).
    /// Returns true when woken by a change.
    pub fn wait(&self, timeout: Duration) -> bool {
        match self.rx.recv_timeout(timeout.min(FALLBACK_POLL)) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }
}

impl Default for ChangeWaiter {
    fn default() -> Self {
        ChangeWaiter::new()
    }
}
