//! The store's error type. Every variant says what was wrong; I/O errors keep the path and the
//! operation that failed.

use std::io;
use std::path::{Path, PathBuf};

use super::batch::BatchError;
use super::config::ConfigError;
use crate::name::NameError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("topic '{0}' does not exist")]
    TopicNotFound(String),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("partition {partition} of topic '{topic}' does not exist (the topic has {count} partition{}: 0 to {})", if *count == 1 { "" } else { "s" }, count - 1)]
    PartitionNotFound {
        topic: String,
        partition: i32,
        count: i32,
    },
    #[error("topic '{topic}' has {current} partitions; it cannot go down to {requested} (Kafka only allows increasing the partition count)")]
    PartitionDecrease {
        topic: String,
        current: i32,
        requested: i32,
    },
    #[error("partition count must be between 1 and {max}, not {requested}")]
    BadPartitionCount { requested: i64, max: i32 },
    #[error("the store at {} has format version {found}, but this spool understands versions up to {supported}; upgrade spool to use it", path.display())]
    FormatTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the store directory {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} is not a spool store (it has no {} and is not empty)", path.display(), super::STORE_FILE)]
    NotAStore { path: PathBuf },
    #[error("{} is not valid: {reason}", path.display())]
    BadMetadata { path: PathBuf, reason: String },
    #[error("corrupt record batch in {} at byte {position}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        position: u64,
        #[source]
        source: BatchError,
    },
    #[error("a record batch of {size} bytes exceeds max.message.bytes ({max})")]
    BatchTooLarge { size: usize, max: u64 },
    #[error("topic '{}' was deleted (its partition directory {} is gone)", topic_of(partition_dir), partition_dir.display())]
    TopicDeleted { partition_dir: PathBuf },
    #[error("cannot {what}: {} is read-only", path.display())]
    ReadOnly {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches the operation and path to an I/O error.
pub trait IoContext<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            op,
            path: path.to_owned(),
            source,
        })
    }
}

/// The topic name of a partition directory (`.../topics/<topic>/<partition>`).
fn topic_of(partition_dir: &Path) -> String {
    partition_dir
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether an I/O error means the file or its file system may not be written.
pub fn is_read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

impl StoreError {
    /// The underlying I/O error kind, if this is an I/O error (e.g. to spot a full disk).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            StoreError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}
