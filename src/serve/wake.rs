//! Waking long-polling fetches when a partition changes: the file notifications the CLI's
//! consumer waits on ([`crate::consume::watch`]), shared by the whole server.
//!
//! The CLI's `ChangeWaiter` is one notification instance per waiting consumer; a server with
//! hundreds of fetching connections would run into the kernel's limit on inotify instances
//! (128 per user by default). So the server keeps one watcher over every partition directory
//! fetched from, and a change anywhere bumps a generation counter that waiting fetches sleep on
//! (a condition variable). A fetch reads the generation before it looks at the log, so a change
//! that lands between "nothing to read" and "wait" is never missed. Where notifications are
//! unavailable, waits fall back to looking again every [`FALLBACK_POLL`].

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use notify::{RecursiveMode, Watcher};

pub use crate::consume::watch::FALLBACK_POLL;

#[derive(Default)]
struct Generation {
    value: Mutex<u64>,
    changed: Condvar,
}

impl Generation {
    fn bump(&self) {
        let mut v = self.value.lock().unwrap_or_else(|e| e.into_inner());
        *v = v.wrapping_add(1);
        self.changed.notify_all();
    }
}

pub(crate) struct Wake {
    generation: Arc<Generation>,
    /// `None` where notifications are unavailable.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Directories watched, with their inode: a topic deleted and created again under the same
    /// name is a new directory to watch.
    watched: Mutex<HashMap<PathBuf, u64>>,
}

impl Wake {
    pub fn new() -> Wake {
        let generation = Arc::new(Generation::default());
        let signal = Arc::clone(&generation);
        let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            signal.bump();
        })
        .ok();
        Wake {
            generation,
            watcher: Mutex::new(watcher),
            watched: Mutex::new(HashMap::new()),
        }
    }

    /// Makes sure changes in `dir` wake waiters.
    pub fn watch(&self, dir: &Path) {
        let Ok(ino) = std::fs::metadata(dir).map(|m| m.ino()) else {
            return;
        };
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if watched.get(dir) == Some(&ino) {
            return;
        }
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = watcher.as_mut() {
            let _ = w.unwatch(dir);
            // On failure this directory is covered by the polling fallback.
            if w.watch(dir, RecursiveMode::NonRecursive).is_ok() {
                watched.insert(dir.to_owned(), ino);
            }
        }
    }

    /// The current generation: read it before looking at the logs, then wait on it.
    pub fn generation(&self) -> u64 {
        *self
            .generation
            .value
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until the generation moves past `seen` or `deadline` (at most
    /// [`FALLBACK_POLL`]). Returns at once when it already moved.
    pub fn wait(&self, seen: u64, deadline: Instant) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let timeout = (deadline - now).min(FALLBACK_POLL);
        let value = self
            .generation
            .value
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _ = self
            .generation
            .changed
            .wait_timeout_while(value, timeout, |v| *v == seen);
    }

    /// Wakes every waiter (shutdown).
    pub fn wake_all(&self) {
        self.generation.bump();
    }
}
