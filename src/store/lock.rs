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
        let file = open_lock_file(path)?;
        fs2::FileExt::lock_exclusive(&file)?;
        Ok(OwnedLock { file })
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

/// A lock that a stopped holder cannot keep: a symlink `<dir>/<name>` naming the holder's own
/// directory `<dir>/.w-<token>`, created with symlink(2), which fails while the link exists.
///
/// Nothing waits in the kernel on it. A waiter that sees the same holder for longer than its
/// `break_after` (the holder is stopped or its disk stalled), or whose holder died (the
/// holder keeps a `flock` on `alive` in its directory, released by the kernel at its death),
/// breaks the lock: it moves the link away and removes the directory it names. A holder writes
/// only through its directory ([`BreakableLock::replace`]: a temporary file there, renamed
/// into place), so a holder resumed after its lock was broken finds its directory gone and
/// every write it attempts fails; it cannot overwrite what the next holder wrote.
///
/// Releasing moves the link into the holder's own directory before removing it, so a holder
/// whose lock was broken (its directory gone) cannot remove the next holder's link either.
#[derive(Debug)]
pub struct BreakableLock {
    dir: std::path::PathBuf,
    link: std::path::PathBuf,
    work: std::path::PathBuf,
    token: String,
    /// Whether the link was created (a failed attempt has only its directory to remove).
    held: bool,
    _alive: File,
}

/// How long a breakable lock acquisition waits.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Not at all: `None` when the lock is held.
    No,
    /// Until the lock is had, breaking it when its holder stays the same this long.
    BreakAfter(std::time::Duration),
}

impl BreakableLock {
    /// Takes the lock `<dir>/<name>`.
    pub fn acquire(dir: &Path, name: &str, wait: Wait) -> io::Result<Option<BreakableLock>> {
        Self::acquire_unless(dir, name, wait, &mut || false)
    }

    /// Takes the lock `<dir>/<name>`, or gives up (`None`) once `done` says what the lock was
    /// wanted for was done by someone else (a joiner admitted by another holder). `done` is
    /// asked before each attempt: after every release of the lock, and every few tens of
    /// milliseconds while the holder stays.
    pub fn acquire_unless(
        dir: &Path,
        name: &str,
        wait: Wait,
        done: &mut dyn FnMut() -> bool,
    ) -> io::Result<Option<BreakableLock>> {
        if done() {
            return Ok(None);
        }
        let token = format!(
            "{}-{}",
            std::process::id(),
            super::fsutil::random_bytes()[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let target = format!(".w-{token}");
        let work = dir.join(&target);
        std::fs::create_dir(&work)?;
        let alive = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(work.join("alive"));
        let alive = match alive.and_then(|f| try_lock_for_life(&f).map(|_| f)) {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                return Err(e);
            }
        };
        let mut lock = BreakableLock {
            dir: dir.to_owned(),
            link: dir.join(name),
            work,
            token: target,
            held: false,
            _alive: alive,
        };
        let wants = dir.join(format!("{name}.wants"));
        if matches!(wait, Wait::No) && wanted(&wants) {
            return Ok(None);
        }
        let mut want: Option<Want> = None;
        let mut released: Option<Released> = None;
        let mut seen: Option<(std::path::PathBuf, std::time::Instant)> = None;
        let mut backoff_ms = 1u64;
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) && done() {
                return Ok(None);
            }
            match std::os::unix::fs::symlink(&lock.token, &lock.link) {
                Ok(()) => {
                    lock.held = true;
                    return Ok(Some(lock));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e), // the work directory goes with `lock`
            }
            let Wait::BreakAfter(break_after) = wait else {
                return Ok(None);
            };
            match &mut want {
                Some(w) => w.refresh(),
                None => want = Want::new(&wants, &lock.token).ok(),
            }
            match std::fs::read_link(&lock.link) {
                Ok(holder) => {
                    let stalled = match &seen {
                        Some((h, since)) if *h == holder => since.elapsed() >= break_after,
                        _ => {
                            seen = Some((holder.clone(), std::time::Instant::now()));
                            false
                        }
                    };
                    if stalled || holder_is_gone(&dir.join(&holder)) {
                        lock.break_current();
                        seen = None;
                        continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // just released
                Err(e) => return Err(e),
            }
            // Sleep until the link goes (released or broken), or a while to look at the
            // holder again (the breaking rules need a clock, not an event).
            if released.is_none() {
                released = Released::watch(dir);
            }
            let jitter = u64::from(super::fsutil::random_bytes()[0] % 4);
            match &released {
                Some(r) => r.wait(std::time::Duration::from_millis(50 + jitter)),
                None => {
                    std::thread::sleep(std::time::Duration::from_millis(backoff_ms + jitter));
                    backoff_ms = (backoff_ms * 2).min(16);
                }
            }
        }
    }

    /// Moves the current link away and removes the directory it names, which fences its holder.
    /// The rename cannot check whom the link names: if another holder took the lock since it
    /// was looked at, that holder is the one fenced (its writes fail and it tries again), which
    /// costs it a retry but never lets two holders write.
    fn break_current(&self) {
        let grave = self.work.join("broken");
        if std::fs::rename(&self.link, &grave).is_err() {
            return; // released or broken by someone else meanwhile
        }
        if let Ok(holder) = std::fs::read_link(&grave) {
            if holder.as_os_str() != self.token.as_str() {
                let _ = std::fs::remove_dir_all(self.dir.join(holder));
            }
        }
        let _ = std::fs::remove_file(&grave);
    }

    /// The holder's own directory: temporary files go there.
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// Whether the lock was broken (this holder's directory is gone).
    pub fn is_lost(&self) -> bool {
        !self.work.is_dir()
    }

    /// An error for a write refused because the lock was broken.
    pub fn lost_error(&self) -> io::Error {
        io::Error::other(
            "the lock was taken over while this process held it (it was stopped or its disk \
             stalled for longer than the others wait)",
        )
    }

    /// Replaces `path` with `bytes` (temporary file in the holder's directory, fsync, rename,
    /// directory fsync), keeping the replaced version as `<path>.prev`; fails once the lock
    /// was broken.
    pub fn replace(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self.work.join(format!("{name}.tmp"));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            if path.exists() {
                let staging = self.work.join(format!("{name}.prev"));
                let _ = std::fs::remove_file(&staging);
                std::fs::hard_link(path, &staging)?;
                let mut prev = path.as_os_str().to_owned();
                prev.push(".prev");
                std::fs::rename(&staging, prev)?;
            }
            std::fs::rename(&tmp, path)?;
            super::fsutil::sync_dir(path.parent().unwrap_or(Path::new(".")))
        })();
        match result {
            Err(_) if self.is_lost() => Err(self.lost_error()),
            other => other,
        }
    }
}

/// Notifications of names leaving a directory (inotify): a waiter sleeps until the lock's link
/// goes rather than polling for it, so hundreds of waiters cost nothing while they wait.
struct Released {
    fd: std::os::fd::OwnedFd,
}

impl Released {
    fn watch(dir: &Path) -> Option<Released> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: inotify_init1 takes flags only; a non-negative result is a new fd we own.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just returned by inotify_init1 and is owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        use std::os::fd::AsRawFd;
        // SAFETY: a valid inotify fd and a NUL-terminated path.
        let wd = unsafe {
            libc::inotify_add_watch(
                fd.as_raw_fd(),
                path.as_ptr(),
                libc::IN_DELETE | libc::IN_MOVED_FROM,
            )
        };
        (wd >= 0).then_some(Released { fd })
    }

    /// Waits for a name to leave the directory, at most `timeout`, and drains the events.
    fn wait(&self, timeout: std::time::Duration) {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n > 0 {
            let mut buf = [0u8; 4096];
            // SAFETY: reads into a valid buffer from our own non-blocking inotify fd.
            while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0
            {
            }
        }
    }
}

/// A waiter's announcement (`<name>.wants/<token>`, its time refreshed while it waits): those
/// who only try the lock in passing (`Wait::No`) leave it to the waiters, who would otherwise
/// rarely find it free.
struct Want {
    path: std::path::PathBuf,
    file: File,
    refreshed: std::time::Instant,
}

/// How old a want may be and still count (an older one is a stopped waiter's).
const WANT_FRESH: std::time::Duration = std::time::Duration::from_millis(1000);

impl Want {
    fn new(wants: &Path, token: &str) -> io::Result<Want> {
        std::fs::create_dir_all(wants)?;
        let path = wants.join(token);
        let file = File::create(&path)?;
        Ok(Want {
            path,
            file,
            refreshed: std::time::Instant::now(),
        })
    }

    fn refresh(&mut self) {
        if self.refreshed.elapsed() >= WANT_FRESH / 4 {
            let _ = self.file.set_modified(std::time::SystemTime::now());
            self.refreshed = std::time::Instant::now();
        }
    }
}

impl Drop for Want {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a waiter announced itself recently.
fn wanted(wants: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(wants) else {
        return false;
    };
    let now = std::time::SystemTime::now();
    entries.flatten().any(|e| {
        e.metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).map_or(true, |age| age < WANT_FRESH))
    })
}

/// Whether the holder behind `work` died: its `alive` file is there and nobody holds its lock.
/// (A holder keeps that lock until its directory is removed, so a missing directory means a
/// release or a break under way: the waiter just tries again.)
fn holder_is_gone(work: &Path) -> bool {
    match File::open(work.join("alive")) {
        Ok(f) => matches!(ExclusiveLock::try_acquire(&f), Ok(Some(_))),
        Err(_) => false,
    }
}

impl Drop for BreakableLock {
    fn drop(&mut self) {
        let released = self.work.join("released");
        if self.held && std::fs::rename(&self.link, &released).is_ok() {
            // Ours unless we were broken and the directory lived on a moment: then the link
            // moved is the next holder's, whose lock is now gone, so it is fenced too.
            if let Ok(holder) = std::fs::read_link(&released) {
                if holder.as_os_str() != self.token.as_str() {
                    let _ = std::fs::remove_dir_all(self.dir.join(holder));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_breakable_lock_excludes_and_a_broken_holder_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let first = BreakableLock::acquire(d, "l", Wait::No).unwrap().unwrap();
        // Trying while it is held fails and leaves the holder alone.
        assert!(BreakableLock::acquire(d, "l", Wait::No).unwrap().is_none());
        assert!(!first.is_lost());
        first.replace(&d.join("f"), b"one").unwrap();
        // A waiter that sees the same holder longer than it allows takes the lock over.
        let second = BreakableLock::acquire(d, "l", Wait::BreakAfter(Duration::from_millis(50)))
            .unwrap()
            .unwrap();
        assert!(first.is_lost());
        let err = first.replace(&d.join("f"), b"stale").unwrap_err();
        assert!(err.to_string().contains("taken over"), "{err}");
        second.replace(&d.join("f"), b"two").unwrap();
        // The broken holder's release leaves the new holder's lock in place.
        drop(first);
        assert!(!second.is_lost());
        assert!(BreakableLock::acquire(d, "l", Wait::No).unwrap().is_none());
        assert_eq!(std::fs::read(d.join("f")).unwrap(), b"two");
        assert_eq!(std::fs::read(d.join("f.prev")).unwrap(), b"one");
        drop(second);
        assert!(BreakableLock::acquire(d, "l", Wait::No).unwrap().is_some());
    }
}
