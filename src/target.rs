//! Which store a command works on: the local store directory or a Kafka cluster.
//!
//! A command resolves its [`Target`] once, from `--dir`/`$SPOOL_DIR` or `-b`/`$SPOOL_BROKERS`,
//! and calls one operation per action. Each operation has a local implementation (over
//! [`crate::store`], [`crate::group`]) and a Kafka one (over [`crate::kafka`]) side by side,
//! and both return the same view types, which the command line renders without knowing which
//! target produced them. An option that only one target can honour is refused on the other.

pub mod consume;
pub mod groups;
pub mod produce;
pub mod topics;

use std::path::Path;

use crate::group::reset::AdminError;
use crate::kafka::{Cluster, ClusterError};
use crate::store::{Store, StoreError};

/// The local store or a Kafka cluster.
#[derive(Debug)]
pub enum Target {
    Local(Store),
    Kafka(Cluster),
}

impl Target {
    /// The local store, if that is the target.
    pub fn local(&self) -> Option<&Store> {
        match self {
            Target::Local(store) => Some(store),
            Target::Kafka(_) => None,
        }
    }

    /// The cluster, if that is the target.
    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Target::Local(_) => None,
            Target::Kafka(cluster) => Some(cluster),
        }
    }

    /// The store's directory or `the Kafka cluster at HOST:PORT`, for messages ("No topics in
    /// ...").
    pub fn describe(&self) -> String {
        match self {
            Target::Local(store) => display(store.root()),
            Target::Kafka(cluster) => format!("the Kafka cluster at {}", cluster.brokers()),
        }
    }

    /// `in the store at DIR` or `on the Kafka cluster at HOST:PORT`, for messages about
    /// something missing there.
    pub fn location(&self) -> String {
        match self {
            Target::Local(store) => format!("in the store at {}", display(store.root())),
            Target::Kafka(cluster) => format!("on the Kafka cluster at {}", cluster.brokers()),
        }
    }

    /// The local store, or [`LocalOnly`] for `command` (e.g. `spool topic verify`) with the
    /// reason it cannot run on a cluster.
    pub fn local_only(&self, command: &str, why: &str) -> Result<&Store, LocalOnly> {
        match self {
            Target::Local(store) => Ok(store),
            Target::Kafka(cluster) => Err(LocalOnly {
                command: command.to_string(),
                why: why.to_string(),
                brokers: cluster.brokers().to_string(),
            }),
        }
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// A local-only command or option given with `-b`.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` works on a local store only: {why} (-b {brokers} selects a Kafka cluster; drop -b and $SPOOL_BROKERS to work on a store directory)")]
pub struct LocalOnly {
    pub command: String,
    pub why: String,
    pub brokers: String,
}

/// A Kafka-only option given without `-b`.
#[derive(Debug, thiserror::Error)]
#[error("{option} needs a Kafka cluster: {why} (select one with -b HOST:PORT or $SPOOL_BROKERS)")]
pub struct KafkaOnly {
    pub option: String,
    pub why: String,
}

/// The errors of operations on either target, each keeping its source.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// An option the target cannot honour (a usage error).
    #[error("{0}")]
    Unsupported(String),
}

impl TargetError {
    /// The store error this is, directly or inside an admin error.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            TargetError::Store(e) | TargetError::Admin(AdminError::Store(e)) => Some(e),
            _ => None,
        }
    }

    /// The cluster error this is.
    pub fn cluster_error(&self) -> Option<&ClusterError> {
        match self {
            TargetError::Cluster(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the topic asked for does not exist (on either target).
    pub fn is_topic_not_found(&self) -> bool {
        matches!(self.store_error(), Some(StoreError::TopicNotFound(_)))
            || matches!(
                self.cluster_error(),
                Some(ClusterError::TopicNotFound { .. })
            )
    }

    /// Whether a topic to create exists already (on either target).
    pub fn is_topic_exists(&self) -> bool {
        matches!(self.store_error(), Some(StoreError::TopicExists(_)))
            || self.cluster_error().and_then(ClusterError::code)
                == Some(rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)
    }
}
