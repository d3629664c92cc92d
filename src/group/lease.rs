//! Membership leases: `groups/<group>/members/<member-id>.yaml`.
//!
//! A member creates its lease under a temporary name, locks it, and only then renames it into
//! `members/`, so nobody ever sees an unlocked lease of a live member. It holds the lock for its
//! whole life; the kernel releases it when the process dies, however it dies. The heartbeat
//! thread rewrites the lease in place (the lock belongs to the inode, which must not change).
//!
//! A lease is *alive* while it is locked and its heartbeat moves: the member watching it
//! expires it after seeing the heartbeat value stand still for a session timeout on its own
//! monotonic clock (a lease's heartbeat older than the session timeout by the reader's clock
//! is only *shown* as expired). A static member's lease (one with an instance id) that is
//! unlocked but younger than its session timeout is *away*: its member keeps its partitions,
//! waiting for a restart.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::error::IoContext;
use crate::store::{fsutil, lock, StoreError};

/// What a lease says about its member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub member_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub pid: u32,
    pub topics: Vec<String>,
    /// A pattern subscription (`consume --regex`): every topic whose whole name matches is
    /// subscribed too, including topics created later (Kafka's pattern subscription).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    pub assignor: String,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub max_poll_interval_ms: u64,
    pub joined_at_ms: i64,
    pub heartbeat_ms: i64,
    /// When the member last made progress (delivered output or waited with nothing to read).
    pub last_poll_ms: i64,
    /// The latest generation the member took in when it had nothing to give up (a cooperative
    /// group's acknowledgement, written here rather than in `group.yaml`: no lock, no write
    /// the others wake up for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_generation: Option<i32>,
}

/// Whether a lease's member is still in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// A static member whose process is gone but whose session has not expired.
    Away,
    /// The process is gone (its lock was released).
    Dead,
    /// Locked, but no heartbeat within the session timeout (a hung process).
    Expired,
}

impl Lease {
    pub fn path(members_dir: &Path, member_id: &str) -> PathBuf {
        members_dir.join(format!("{member_id}.yaml"))
    }

    fn to_bytes(&self) -> Vec<u8> {
        serde_yaml::to_string(self)
            .expect("leases serialize")
            .into_bytes()
    }

    /// Reads a lease. An in-place rewrite may be caught half done, so a parse failure is read
    /// again a few times before it is reported.
    pub fn read(path: &Path) -> Result<Lease, StoreError> {
        let mut last = String::new();
        for _ in 0..5 {
            let mut text = String::new();
            match File::open(path).and_then(|mut f| f.read_to_string(&mut text)) {
                Ok(_) => match serde_yaml::from_str(&text) {
                    Ok(lease) => return Ok(lease),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => return Err(e).at("read", path),
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(StoreError::BadMetadata {
            path: path.to_owned(),
            reason: last,
        })
    }

    /// Liveness as shown to users. Briefly locks the lease when nobody holds it (which is
    /// harmless: the lock is released before returning).
    pub fn liveness(&self, path: &Path, now_ms: i64) -> Liveness {
        self.liveness_given(is_locked(path), now_ms)
    }

    /// Liveness given whether the lease is locked. `Expired` compares the heartbeat with this
    /// process's wall clock, so it is for display: the group expires a locked lease only on
    /// the observation of the member watching it (see `coordinator::Coordinator::expire`).
    pub fn liveness_given(&self, locked: bool, now_ms: i64) -> Liveness {
        let expired = now_ms - self.heartbeat_ms > self.session_timeout_ms as i64;
        match (locked, expired, self.instance_id.is_some()) {
            (true, false, _) => Liveness::Alive,
            (true, true, _) => Liveness::Expired,
            (false, false, true) => Liveness::Away,
            (false, true, true) => Liveness::Expired,
            (false, _, false) => Liveness::Dead,
        }
    }
}

/// Whether some process holds the lock of the lease file at `path`.
pub fn is_locked(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => matches!(lock::ExclusiveLock::try_acquire(&f), Ok(None)),
        Err(_) => false,
    }
}

/// A lease this process holds (locked).
#[derive(Debug)]
pub struct HeldLease {
    pub path: PathBuf,
    file: File,
    inode: (u64, u64),
    pub lease: Lease,
}

impl HeldLease {
    /// Creates and locks a new lease.
    pub fn create(members_dir: &Path, lease: Lease) -> Result<HeldLease, StoreError> {
        let path = Lease::path(members_dir, &lease.member_id);
        let tmp = members_dir.join(format!(".{}.tmp", lease.member_id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at("create", &tmp)?;
        if !lock::try_lock_for_life(&file).at("lock", &tmp)? {
            return Err(StoreError::BadMetadata {
                path: tmp,
                reason: "a new lease file is locked by another process".into(),
            });
        }
        file.write_all_at(&lease.to_bytes(), 0).at("write", &tmp)?;
        file.sync_all().at("sync", &tmp)?;
        std::fs::rename(&tmp, &path).at("create", &path)?;
        fsutil::sync_dir(members_dir).at("sync", members_dir)?;
        let meta = file.metadata().at("read", &path)?;
        Ok(HeldLease {
            path,
            file,
            inode: (meta.dev(), meta.ino()),
            lease,
        })
    }

    /// Takes over the lease of a static member whose process is gone. `Ok(None)` when another
    /// live process holds it.
    pub fn take_over(path: &Path, lease: Lease) -> Result<Option<HeldLease>, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .at("open", path)?;
        // A peer's watcher may hold the lock for an instant after the old process died.
        let mut locked = false;
        for _ in 0..50 {
            locked = lock::try_lock_for_life(&file).at("lock", path)?;
            if locked {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if !locked {
            return Ok(None);
        }
        let meta = file.metadata().at("read", path)?;
        let mut held = HeldLease {
            path: path.to_owned(),
            file,
            inode: (meta.dev(), meta.ino()),
            lease,
        };
        held.write().at("write", path)?;
        Ok(Some(held))
    }

    fn write(&mut self) -> io::Result<()> {
        let bytes = self.lease.to_bytes();
        self.file.write_all_at(&bytes, 0)?;
        self.file.set_len(bytes.len() as u64)
    }

    /// Refreshes the heartbeat (and last poll) time in place.
    pub fn renew(&mut self, now_ms: i64, last_poll_ms: i64) -> Result<(), StoreError> {
        self.lease.heartbeat_ms = now_ms;
        self.lease.last_poll_ms = last_poll_ms;
        let path = self.path.clone();
        self.write().at("write", &path)
    }

    /// The (device, inode) of the lease file this member holds.
    pub fn inode(&self) -> (u64, u64) {
        self.inode
    }

    /// Records that the member took in `generation` (see [`Lease::acked_generation`]).
    pub fn acknowledge(&mut self, generation: i32) -> Result<(), StoreError> {
        self.lease.acked_generation = Some(generation);
        let path = self.path.clone();
        self.write().at("write", &path)
    }

    /// Whether the lease file at our path is still ours (not removed by a peer that found us
    /// expired).
    pub fn is_current(&self) -> bool {
        fsutil::same_file(&self.path, self.inode).unwrap_or(false)
    }

    /// Leaves: removes the lease file (if still ours); the lock goes with the file handle.
    pub fn remove(self) -> Result<(), StoreError> {
        if self.is_current() {
            std::fs::remove_file(&self.path).at("remove", &self.path)?;
        }
        Ok(())
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
