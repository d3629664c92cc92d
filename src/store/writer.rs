//! Appending to a partition: the one place that writes segment data.
//!
//! Any number of processes may hold a [`PartitionWriter`] on the same partition. Each append
//! takes the partition's exclusive lock, learns the log end from the head checkpoint (one
//! positioned read and one `fstat`), writes the whole batch with one positioned write, adds index
//! entries when due, and stores the new head. A process validates the tail of the active segment
//! the first time it takes the lock, and again whenever the head disagrees with the files, so a
//! writer killed at any moment leaves nothing the next one does not repair.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, BatchHeader};
use super::config::LogConfig;
use super::error::{IoContext, Result, StoreError};
use super::fsutil;
use super::head::{Head, Stored, LOCK_FILE};
use super::index::INDEX_INTERVAL_BYTES;
use super::lock::{self, ExclusiveLock};
use super::recovery::{self, Truncation};
use super::retention::{self, SegmentStat};
use super::segment::{self, SegmentFiles, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};

/// When appended data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// The caller calls [`PartitionWriter::sync`] when done (spool produce: before exit 0).
    #[default]
    OnRequest,
    /// After every batch.
    EveryBatch,
    /// Never: the operating system writes it back in its own time.
    Never,
}

/// Starts writing the pages completed by `len` bytes appended at `position` back to disk,
/// without waiting, so that the sync that follows (at exit) finds most of the data already
/// written. The last, partial page is left for the next append to complete. Only a hint: the
/// sync still decides, so errors are left to it.
fn start_writeback(file: &File, position: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        const PAGE: u64 = 4096;
        let (from, to) = (position / PAGE * PAGE, (position + len) / PAGE * PAGE);
        if to > from {
            // SAFETY: sync_file_range on an open descriptor; it touches no memory of ours.
            unsafe {
                libc::sync_file_range(
                    file.as_raw_fd(),
                    from as libc::off64_t,
                    (to - from) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, position, len);
}

/// Offsets given to an appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
}

/// What retention did to a partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pruned {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

/// An appender on one partition directory.
#[derive(Debug)]
pub struct PartitionWriter {
    dir: PathBuf,
    config: LogConfig,
    sync_policy: SyncPolicy,
    /// Shared so that a lock guard can borrow it while `self` is mutated: no `dup` per append.
    lock_file: Arc<File>,
    active: Option<SegmentFiles>,
    /// Whether this process has validated the active segment's tail since it opened.
    validated: bool,
    /// Whether data was appended since the last sync.
    unsynced: bool,
    truncations: Vec<Truncation>,
}

impl PartitionWriter {
    pub fn open(dir: &Path, config: LogConfig, sync_policy: SyncPolicy) -> Result<Self> {
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = lock::open_lock_file(&lock_path).at("open", &lock_path)?;
        Ok(PartitionWriter {
            dir: dir.to_owned(),
            config,
            sync_policy,
            lock_file: Arc::new(lock_file),
            active: None,
            validated: false,
            unsynced: false,
            truncations: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Damage that recovery cut from the log since the last call (for the caller to report).
    pub fn take_truncations(&mut self) -> Vec<Truncation> {
        std::mem::take(&mut self.truncations)
    }

    /// Takes the lock once to make sure the active segment exists and is valid.
    pub fn initialize(&mut self, now_ms: i64) -> Result<Head> {
        let lock_file = Arc::clone(&self.lock_file);
        let _lock = ExclusiveLock::acquire(&lock_file).at("lock", &self.dir)?;
        self.current_head(now_ms)
    }

    /// Appends one encoded batch (from [`batch::encode_batch`]), patching its base offset to the
    /// log end offset. Returns the offsets it was given.
    pub fn append(&mut self, batch_bytes: &mut [u8], now_ms: i64) -> Result<Appended> {
        if batch_bytes.len() as u64 > self.config.max_message_bytes {
            return Err(StoreError::BatchTooLarge {
                size: batch_bytes.len(),
                max: self.config.max_message_bytes,
            });
        }
        let header = BatchHeader::parse(batch_bytes).map_err(|source| StoreError::Corrupt {
            path: self.dir.clone(),
            position: 0,
            source,
        })?;
        let lock_file = Arc::clone(&self.lock_file);
        let lock = ExclusiveLock::acquire(&lock_file).at("lock", &self.dir)?;
        let mut head = self.current_head(now_ms)?;
        let len = batch_bytes.len() as u64;
        let full = head.log_len + len > self.config.segment_bytes;
        let old = self.config.segment_ms.is_some_and(|ms| {
            head.first_timestamp != i64::MIN && now_ms - head.first_timestamp >= ms
        });
        let rolled = head.log_len > 0 && (full || old);
        if rolled {
            head = self.roll(head)?;
        }
        let seg = self
            .active
            .as_ref()
            .expect("current_head opens the active segment");
        let log_path = segment::path(&self.dir, seg.base, LOG_EXT);
        let position = head.log_len;
        batch::set_base_offset(batch_bytes, head.next_offset);
        let last_offset = head.next_offset + i64::from(header.last_offset_delta);
        if let Err(e) = seg.log.write_all_at(batch_bytes, position) {
            // A partial write (e.g. the disk filled up) must not stay behind as a torn tail:
            // cut it now. If even that fails, the next appender's recovery will.
            let _ = seg.log.set_len(position);
            return Err(e).at("append to", &log_path);
        }
        if header.max_timestamp > head.max_timestamp {
            head.max_timestamp = header.max_timestamp;
            head.max_timestamp_offset = last_offset;
        }
        if head.bytes_since_index > INDEX_INTERVAL_BYTES {
            recovery::add_index_entries(seg, &mut head, last_offset, position)
                .at("write the index of", &log_path)?;
        }
        head.bytes_since_index += len;
        if head.first_timestamp == i64::MIN {
            head.first_timestamp = header.max_timestamp;
        }
        let appended = Appended {
            base_offset: head.next_offset,
            last_offset,
        };
        head.log_len += len;
        head.next_offset = last_offset + 1;
        if self.sync_policy == SyncPolicy::EveryBatch {
            seg.sync().at("sync", &log_path)?;
        }
        let written = seg.base;
        head.store(&self.lock_file)
            .at("write", &self.dir.join(LOCK_FILE))?;
        self.unsynced = true;
        if rolled {
            self.enforce_retention(&mut head, now_ms)?;
        }
        drop(lock);
        if self.sync_policy == SyncPolicy::OnRequest {
            // Outside the lock: starting writeback may wait for the device's queue. (A segment
            // rolled away meanwhile was synced by the roll.)
            if let Some(seg) = self.active.as_ref().filter(|s| s.base == written) {
                start_writeback(&seg.log, position, len);
            }
        }
        Ok(appended)
    }

    /// Whether [`PartitionWriter::sync`] has anything to do.
    pub fn needs_sync(&self) -> bool {
        self.unsynced && self.sync_policy != SyncPolicy::Never
    }

    /// Forces appended data to disk (the active segment; rolled ones were synced at the roll).
    pub fn sync(&mut self) -> Result<()> {
        if !self.unsynced || self.sync_policy == SyncPolicy::Never {
            return Ok(());
        }
        if let Some(seg) = &self.active {
            seg.sync()
                .at("sync", &segment::path(&self.dir, seg.base, LOG_EXT))?;
        }
        self.unsynced = false;
        Ok(())
    }

    /// Applies retention now (`spool topic prune`).
    pub fn prune(&mut self, now_ms: i64) -> Result<Pruned> {
        let lock_file = Arc::clone(&self.lock_file);
        let _lock = ExclusiveLock::acquire(&lock_file).at("lock", &self.dir)?;
        let mut head = self.current_head(now_ms)?;
        self.enforce_retention(&mut head, now_ms)
    }

    /// The head, validated: trusted when this process has validated the tail before and the
    /// log's length agrees with it; recovered from the files otherwise. Call under the lock.
    fn current_head(&mut self, now_ms: i64) -> Result<Head> {
        // Topic deletion leaves a tombstone under every partition's lock before it renames
        // the topic away: read under ours, the partition is either still there or the append
        // is refused.
        let stored =
            match Head::load_or_tombstone(&self.lock_file).at("read", &self.dir.join(LOCK_FILE))? {
                Stored::Head(h) => Some(h),
                Stored::Nothing => None,
                Stored::Tombstone => {
                    return Err(StoreError::TopicDeleted {
                        partition_dir: self.dir.clone(),
                    })
                }
            };
        if let Some(head) = stored {
            if self.validated {
                let seg = self.open_active(head.active_base)?;
                let log_len = seg
                    .log
                    .metadata()
                    .at("read", &segment::path(&self.dir, head.active_base, LOG_EXT))?
                    .len();
                if log_len == head.log_len {
                    return Ok(head);
                }
            }
        }
        self.recover(stored, now_ms)
    }

    fn recover(&mut self, stored: Option<Head>, now_ms: i64) -> Result<Head> {
        let segments = segment::list(&self.dir).at("list", &self.dir)?;
        let listed = segments.last().copied();
        let base = match (stored, listed) {
            (Some(h), Some(l)) => h.active_base.max(l),
            (Some(h), None) => h.active_base,
            (None, Some(l)) => l,
            (None, None) => retention::read_log_start(&self.dir)?.unwrap_or(0),
        };
        self.open_active(base)?;
        let seg = self.active.as_ref().expect("opened above");
        let (mut head, mut truncation) = recovery::recover_active(&self.dir, seg, now_ms)?;
        if truncation.is_some() || listed != Some(base) {
            seg.sync().at("sync", &self.dir)?;
            fsutil::sync_dir(&self.dir).at("sync", &self.dir)?;
        }
        // Offsets are never reused: when the files end below an offset the head had handed
        // out (the log was cut by damage), the log continues after it in a new segment.
        let handed_out = stored.map_or(0, |h| h.next_offset);
        if handed_out > head.next_offset {
            let log_path = segment::path(&self.dir, base, LOG_EXT);
            let lost = recovery::record_lost_offsets(
                &log_path,
                truncation.take(),
                head.next_offset,
                handed_out,
                now_ms,
            )?;
            truncation = Some(lost);
            head.next_offset = handed_out;
            head = self.roll(head)?;
            // The new segment's name is what records the gap: make it durable whatever the
            // sync policy.
            fsutil::sync_dir(&self.dir).at("sync", &self.dir)?;
        }
        self.truncations.extend(truncation);
        head.store(&self.lock_file)
            .at("write", &self.dir.join(LOCK_FILE))?;
        self.validated = true;
        Ok(head)
    }

    fn open_active(&mut self, base: i64) -> Result<&SegmentFiles> {
        if self.active.as_ref().is_none_or(|s| s.base != base) {
            // Unsynced data in a segment another writer rolled away was synced by that roll
            // only if it was that writer's; sync ours before letting go of it.
            if self.unsynced && self.sync_policy != SyncPolicy::Never {
                self.sync()?;
            }
            let seg = SegmentFiles::open_or_create(&self.dir, base)
                .at("open", &segment::path(&self.dir, base, LOG_EXT))?;
            self.active = Some(seg);
        }
        Ok(self.active.as_ref().expect("set above"))
    }

    /// Closes the active segment (with Kafka's final time index entry) and starts a new one at
    /// the next offset. The head is stored before the new files exist, so a crash in between
    /// leaves a head naming a segment that the next appender simply creates.
    fn roll(&mut self, mut head: Head) -> Result<Head> {
        let seg = self.active.take().expect("active segment is open");
        let log_path = segment::path(&self.dir, seg.base, LOG_EXT);
        if head.max_timestamp > head.last_time_index_ts {
            recovery::append_time_entry(&seg, &mut head)
                .at("write the time index of", &log_path)?;
        }
        if self.sync_policy != SyncPolicy::Never {
            seg.sync().at("sync", &log_path)?;
        }
        let new_head = Head::empty(head.next_offset);
        new_head
            .store(&self.lock_file)
            .at("write", &self.dir.join(LOCK_FILE))?;
        let new_seg = SegmentFiles::open_or_create(&self.dir, new_head.active_base).at(
            "create",
            &segment::path(&self.dir, new_head.active_base, LOG_EXT),
        )?;
        if self.sync_policy != SyncPolicy::Never {
            fsutil::sync_dir(&self.dir).at("sync", &self.dir)?;
        }
        self.active = Some(new_seg);
        Ok(new_head)
    }

    /// Deletes the segments retention no longer keeps. Call under the lock.
    fn enforce_retention(&mut self, head: &mut Head, now_ms: i64) -> Result<Pruned> {
        if self.config.retention_ms.is_none() && self.config.retention_bytes.is_none() {
            // Keep forever: nothing to look at beyond where the log starts.
            let first = segment::list(&self.dir)
                .at("list", &self.dir)?
                .first()
                .copied();
            let checkpoint = retention::read_log_start(&self.dir)?.unwrap_or(0);
            return Ok(Pruned {
                log_start_offset: first.unwrap_or(head.active_base).max(checkpoint),
                ..Pruned::default()
            });
        }
        let mut stats = self.segment_stats(head, now_ms)?;
        let mut plan = retention::plan(&stats, &self.config, now_ms);
        if plan.roll_active {
            *head = self.roll(*head)?;
            stats.push(SegmentStat {
                base: head.active_base,
                size: 0,
                max_timestamp: None,
            });
            plan.delete = stats.len() - 1;
        }
        let log_start = stats[plan.delete].base;
        let mut pruned = Pruned {
            log_start_offset: log_start,
            ..Pruned::default()
        };
        if plan.delete == 0 {
            return Ok(pruned);
        }
        retention::write_log_start(&self.dir, log_start)?;
        for stat in &stats[..plan.delete] {
            for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
                let path = segment::path(&self.dir, stat.base, ext);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).at("delete", &path),
                }
            }
            pruned.deleted_segments += 1;
            pruned.deleted_bytes += stat.size;
        }
        fsutil::sync_dir(&self.dir).at("sync", &self.dir)?;
        Ok(pruned)
    }

    /// What retention needs of each segment. Sizes are a `stat` each; a largest timestamp
    /// reads the segment's indexes, so it is only looked up while retention could still delete:
    /// from the oldest segment on, until one is neither expired nor beyond the size limit
    /// (retention deletes only a prefix of the log).
    fn segment_stats(&self, head: &Head, now_ms: i64) -> Result<Vec<SegmentStat>> {
        let mut stats = Vec::new();
        for base in segment::list(&self.dir).at("list", &self.dir)? {
            if base >= head.active_base {
                break;
            }
            let path = segment::path(&self.dir, base, LOG_EXT);
            let size = std::fs::metadata(&path).at("read", &path)?.len();
            stats.push(SegmentStat {
                base,
                size,
                max_timestamp: None,
            });
        }
        let total: u64 = stats.iter().map(|s| s.size).sum::<u64>() + head.log_len;
        let mut excess = self
            .config
            .retention_bytes
            .map_or(0, |limit| total as i128 - limit as i128);
        for stat in &mut stats {
            let over_size =
                self.config.retention_bytes.is_some() && excess - stat.size as i128 >= 0;
            let mut expired = false;
            if let Some(ms) = self.config.retention_ms {
                let path = segment::path(&self.dir, stat.base, LOG_EXT);
                stat.max_timestamp =
                    segment::max_timestamp(&self.dir, stat.base).at("read", &path)?;
                expired = stat
                    .max_timestamp
                    .is_some_and(|ts| now_ms.saturating_sub(ts) > ms);
            }
            if !(over_size || expired) {
                break;
            }
            excess -= stat.size as i128;
        }
        stats.push(SegmentStat {
            base: head.active_base,
            size: head.log_len,
            max_timestamp: (head.max_timestamp != i64::MIN).then_some(head.max_timestamp),
        });
        Ok(stats)
    }
}
