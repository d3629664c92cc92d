//! Every file lock spool takes goes through here: RAII guards over `flock(2)` locks.
//!
//! fs2 is called fully qualified because Rust's std `File` now has lock methods of the same
//! names with different semantics on some platforms.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// An exclusive lock held until dropped. The kernel releases it when the process dies, which is
/// what lets a crashed writer never block the others.
#[derive(Debug)]
pub struct ExclusiveLock<'a> {
    file: &'a File,
}

impl<'a> ExclusiveLock<'a> {
    /// Blocks until the lock on `file` is ours.
    pub fn acquire(file: &'a File) -> io::Result<Self> {
        fs2::FileExt::lock_exclusive(file)?;
        Ok(ExclusiveLock { file })
    }

    /// Takes the lock if nobody holds it; `None` when someone does.
    pub fn try_acquire(file: &'a File) -> io::Result<Option<Self>> {
        match fs2::FileExt::try_lock_exclusive(file) {
            Ok(()) => Ok(Some(ExclusiveLock { file })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || is_contended(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn file(&self) -> &File {
        self.file
    }
}

impl Drop for ExclusiveLock<'_> {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(self.file);
    }
}

/// An exclusive lock that owns its file (for locks kept across calls, such as a lease).
#[derive(Debug)]
pub struct OwnedLock {
    file: File,
}

impl OwnedLock {
    /// Opens (creating if needed) `path` and blocks until it is locked.
    pub fn acquire_path(path: &Path) -> io::Result<Self> {
        let file = open_lock_only(path)?;
        fs2::FileExt::lock_exclusive(&file)?;
        Ok(OwnedLock { file })
    }

    /// Opens (creating if needed) `path` and locks it if nobody holds it; `None` when someone
    /// does.
    pub fn try_acquire_path(path: &Path) -> io::Result<Option<Self>> {
        let file = open_lock_only(path)?;
        if try_lock_for_life(&file)? {
            Ok(Some(OwnedLock { file }))
        } else {
            Ok(None)
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for OwnedLock {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.file);
    }
}

/// Opens a lock file for reading and writing, creating it if missing.
pub fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Opens a lock file only to lock it, creating it if missing. An existing one is opened
/// read-only (`flock` needs no more): closing a file opened for writing is a change event
/// (inotify's IN_CLOSE_WRITE) that would wake everyone watching the directory at every lock.
fn open_lock_only(path: &Path) -> io::Result<File> {
    match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path),
        other => other,
    }
}

fn is_contended(e: &io::Error) -> bool {
    e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// Locks `file` exclusively for as long as it stays open (no guard): for leases, whose lock
/// must last the life of the process. `false` when another holder has it.
pub fn try_lock_for_life(file: &File) -> io::Result<bool> {
    match fs2::FileExt::try_lock_exclusive(file) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || is_contended(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
