//! Small file-system helpers with the durability rules of DESIGN.md: whole-file replacement
//! through a fsynced temporary file, a rename and a fsync of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` atomically: a reader sees the old or the new content, never a
/// mix, and after a crash the old content survives unless the rename was durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The temporary name used while replacing `path`: hidden, and unique per process so two
/// writers never share one.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its parents, then makes the new entries durable.
pub fn create_dir_all_synced(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Milliseconds on this process's monotonic clock (from an arbitrary start): for durations a
/// process measures itself, which wall-clock jumps must not disturb. It keeps running while
/// the process is stopped (SIGSTOP), which is what a member needs to know how stale its own
/// last heartbeat is.
pub fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as i64
        + 1
}

/// 16 random bytes from the kernel, for ids.
pub fn random_bytes() -> [u8; 16] {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        // No /dev/urandom: fall back to time and pid, which is unique enough for ids.
        let seed = (now_ms() as u128) << 32 | u128::from(std::process::id());
        bytes = seed.to_le_bytes();
    }
    bytes
}

/// Makes `buf` at least `len` bytes long. A buffer that must grow by a lot is allocated anew,
/// zeroed (keeping its first `buf.len()` bytes): a large zeroed allocation comes from the kernel
/// already zero, page by page as it is first written, instead of being filled with zeros here.
pub fn grow_zeroed(buf: &mut Vec<u8>, len: usize) {
    if buf.len() >= len {
        return;
    }
    if buf.capacity() >= len {
        buf.resize(len, 0);
        return;
    }
    let mut grown = vec![0u8; len];
    grown[..buf.len()].copy_from_slice(buf);
    *buf = grown;
}

/// The identity (device, inode) of a file or directory: a topic deleted and created again under
/// the same name has new directories, and a lease removed and created again is a new file, so
/// whoever opened one can tell that it is gone.
pub fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Whether `path` is still the file or directory whose identity was `identity`.
pub fn same_file(path: &Path, identity: (u64, u64)) -> std::io::Result<bool> {
    match file_identity(path) {
        Ok(now) => Ok(now == identity),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::grow_zeroed;

    #[test]
    fn growing_keeps_the_bytes_there_and_zeroes_the_rest() {
        let mut buf = vec![7u8; 10];
        grow_zeroed(&mut buf, 5);
        assert_eq!(buf, [7; 10], "never shrinks");
        grow_zeroed(&mut buf, 1 << 20);
        assert_eq!(buf.len(), 1 << 20);
        assert_eq!(&buf[..10], &[7; 10]);
        assert!(buf[10..].iter().all(|&b| b == 0));
        buf.truncate(100);
        buf[99] = 9;
        grow_zeroed(&mut buf, 200);
        assert_eq!(buf[99], 9);
        assert!(
            buf[100..].iter().all(|&b| b == 0),
            "within capacity: zeroed too"
        );
    }
}
