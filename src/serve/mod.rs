//! `spool serve`: Kafka's wire protocol over the local store, so that any Kafka client produces
//! and fetches on the same topics as the CLI, at the same time.
//!
//! The store is the state: the server keeps nothing the files do not, apart from connections,
//! open partition writers and idempotent producers' sequence windows (rebuilt from the log's
//! batch headers). Records pass through untouched: a produced batch is checked and appended as
//! it came, a fetch returns stored batches as they lie on disk.
//!
//! One thread per connection. Requests on a connection are answered in order, one at a time, as
//! a Kafka broker does; everything the store offers blocks (file locks, reads, change
//! notifications), so a thread that simply waits is the plainest fit. Idle connections cost a
//! thread parked in `read` with a small stack (reserved, not touched), so a thousand of them
//! are a few megabytes.
//!
//! - [`codec`]: size-prefixed frames, request headers, responses.
//! - `connection`: one client's connection: read a frame, dispatch, answer.
//! - [`metadata`]: ApiVersions, Metadata (with auto-creation), DescribeCluster.
//! - [`produce`]: Produce and InitProducerId, with idempotent producers' sequence checks.
//! - [`fetch`]: Fetch, long-polling on change notifications.
//! - [`offsets`]: ListOffsets and DeleteRecords.
//! - [`groups`]: the group APIs: Kafka clients as members of spool's groups (JoinGroup,
//!   SyncGroup, Heartbeat, LeaveGroup, OffsetCommit) through the `members` adapter over the
//!   group coordinator's operations, read-only views (ListGroups, DescribeGroups,
//!   OffsetFetch), OffsetDelete and DeleteGroups.
//! - `trace`: `SPOOL_SERVE_TRACE=FILE` writes what each client request got, with timings
//!   (for finding out what a client does).
//! - [`admin`]: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
//!   IncrementalAlterConfigs.

// First: its `trace!` macro is used by the modules below.
#[macro_use]
mod trace;
pub mod admin;
mod alloc;
pub mod codec;
mod connection;
pub mod fetch;
pub mod groups;
mod members;
pub mod metadata;
pub mod offsets;
pub mod produce;
mod sequence;
mod topics;
mod wake;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::{Store, StoreError, SyncPolicy};

/// The broker id the server answers as: it is the only broker of its cluster.
pub const NODE_ID: i32 = 0;

/// Partitions of a topic created by a client that named no count (Metadata's auto-creation,
/// CreateTopics with -1): Kafka's `num.partitions` default, and `spool produce`'s.
pub const DEFAULT_PARTITIONS: i32 = 1;

/// Kafka's `socket.request.max.bytes` default.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 100 * 1024 * 1024;

/// When appended batches are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// When the server exits (a kill loses nothing: the data is in the page cache).
    #[default]
    Exit,
    /// After every batch, before it is acknowledged (survives power loss).
    Batch,
    /// Never: the operating system writes back in its own time.
    Never,
}

impl FsyncPolicy {
    fn sync_policy(self) -> SyncPolicy {
        match self {
            FsyncPolicy::Exit => SyncPolicy::OnRequest,
            FsyncPolicy::Batch => SyncPolicy::EveryBatch,
            FsyncPolicy::Never => SyncPolicy::Never,
        }
    }
}

/// How the server listens and writes.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The host and port clients are told to connect to (Metadata); the listening address when
    /// absent.
    pub advertise: Option<(String, u16)>,
    pub fsync: FsyncPolicy,
    /// Frames larger than this are refused (and the connection closed) before any allocation.
    pub max_request_size: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("accepting connections failed")]
    Accept(#[source] std::io::Error),
}

/// What every connection shares: the store and the server's few pieces of state.
pub struct Broker {
    pub store: Store,
    pub cluster_id: String,
    pub host: String,
    pub port: u16,
    pub fsync: FsyncPolicy,
    pub max_request_size: usize,
    pub(crate) topics: topics::TopicCache,
    pub(crate) writers: produce::Writers,
    pub(crate) wake: wake::Wake,
    pub(crate) members: members::KafkaMembers,
    shutting_down: AtomicBool,
}

impl Broker {
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// Connections being served, so that shutdown can stop them reading: their descriptors, each
/// removed (under the lock) before its socket is closed, so a descriptor here is always the
/// connection's own.
#[derive(Default)]
struct Connections {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, RawFd>>,
}

impl Connections {
    /// Shuts every open connection down both ways: a thread blocked writing an answer to a
    /// client that no longer reads gets an error and ends.
    fn cut_all(&self) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for &fd in open.values() {
            // SAFETY: the descriptor is open (see `Connections`).
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }
}

/// How long a shutting-down server waits for the requests in progress before it cuts the
/// connections still open (see [`Server::run`]).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Stops a running [`Server`] from another thread (a signal handler's thread).
#[derive(Clone)]
pub struct ShutdownHandle {
    broker: Arc<Broker>,
    connections: Arc<Connections>,
    listener_fd: i32,
}

impl ShutdownHandle {
    /// Stops accepting, lets each connection finish the request it is handling (a long-polling
    /// fetch answers with what it has), then closes it.
    pub fn shutdown(&self) {
        if self.broker.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        // SAFETY: shutting down a socket we own; accept() then returns with an error.
        unsafe {
            libc::shutdown(self.listener_fd, libc::SHUT_RDWR);
        }
        let open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for &fd in open.values() {
            // Reading ends; the response being prepared can still be written.
            // SAFETY: the descriptor is open (see `Connections`).
            unsafe {
                libc::shutdown(fd, libc::SHUT_RD);
            }
        }
        self.broker.wake.wake_all();
    }
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    broker: Arc<Broker>,
    connections: Arc<Connections>,
}

impl Server {
    /// Opens the store (choosing its cluster id on first use) and binds the listening socket.
    pub fn bind(store: Store, options: ServeOptions) -> Result<Server, ServeError> {
        let cluster_id = store.cluster_id()?;
        let listener = TcpListener::bind(options.listen).map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
        let local = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
        let (host, port) = options.advertise.clone().unwrap_or_else(|| {
            let ip = if local.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                local.ip().to_string()
            };
            (ip, local.port())
        });
        let broker = Broker {
            topics: topics::TopicCache::new(store.clone()),
            writers: produce::Writers::new(options.fsync.sync_policy()),
            wake: wake::Wake::new(),
            members: members::KafkaMembers::default(),
            store,
            cluster_id,
            host,
            port,
            fsync: options.fsync,
            max_request_size: options.max_request_size,
            shutting_down: AtomicBool::new(false),
        };
        Ok(Server {
            listener,
            broker: Arc::new(broker),
            connections: Arc::new(Connections::default()),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The host and port clients are told to connect to.
    pub fn advertised(&self) -> (String, u16) {
        (self.broker.host.clone(), self.broker.port)
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            broker: Arc::clone(&self.broker),
            connections: Arc::clone(&self.connections),
            listener_fd: self.listener.as_raw_fd(),
        }
    }

    /// Serves until [`ShutdownHandle::shutdown`], then waits for the connections to finish
    /// and forces what was appended to disk (unless `--fsync never`).
    pub fn run(self) -> Result<(), ServeError> {
        let mut threads = Vec::new();
        // The coordinator's session check: Kafka members silent for their session timeout
        // are removed from their groups, and dead members of their groups noticed.
        let reaper = {
            let broker = Arc::clone(&self.broker);
            std::thread::Builder::new()
                .name("sessions".into())
                .spawn(move || {
                    let mut tick = 0u32;
                    let mut last = std::time::Instant::now();
                    while !broker.shutting_down() {
                        std::thread::sleep(SESSION_CHECK);
                        if last.elapsed() > SESSION_CHECK + SERVER_STALL {
                            broker.members.server_resumed();
                        }
                        last = std::time::Instant::now();
                        broker.members.expire_silent();
                        tick = tick.wrapping_add(1);
                        if tick % 4 == 0 {
                            broker.members.check_groups();
                        }
                    }
                })
                .ok()
        };
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(_) if self.broker.shutting_down() => break,
                // Out of descriptors, a connection reset before accept: the listener is fine.
                Err(e) if is_transient_accept_error(&e) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Err(e) => return Err(ServeError::Accept(e)),
            };
            if self.broker.shutting_down() {
                break;
            }
            let _ = stream.set_nodelay(true);
            let id = self.connections.next_id.fetch_add(1, Ordering::Relaxed);
            self.connections
                .open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, stream.as_raw_fd());
            let broker = Arc::clone(&self.broker);
            let connections = Arc::clone(&self.connections);
            let spawned = std::thread::Builder::new()
                .name(format!("conn-{id}"))
                .stack_size(256 << 10)
                .spawn(move || {
                    connection::serve(&broker, &stream, peer);
                    connections
                        .open
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    drop(stream);
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(_) => {
                    self.connections
                        .open
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                }
            }
            threads.retain(|t| !t.is_finished());
        }
        // Requests in progress finish (a long-polling fetch answers at once), but a client
        // that stops reading can leave an answer's write blocked for good: after the grace
        // period, the connections still open are cut, which fails such writes.
        let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
        while threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if threads.iter().any(|t| !t.is_finished()) {
            self.connections.cut_all();
        }
        for t in threads {
            let _ = t.join();
        }
        if let Some(reaper) = reaper {
            let _ = reaper.join();
        }
        // Kafka members' partitions go back to the group at once, for CLI members to take.
        self.broker.members.release_all();
        self.broker.writers.sync_all()?;
        Ok(())
    }
}

/// How often the server looks for Kafka members whose session timed out.
const SESSION_CHECK: Duration = Duration::from_millis(250);

/// A session check this much later than due means the server itself was stopped or starved:
/// the time is not counted against its clients.
const SERVER_STALL: Duration = Duration::from_secs(1);

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED)
    ) || e.kind() == std::io::ErrorKind::Interrupted
}

/// Kafka's error codes, by name (from the `kafka-protocol` crate).
pub(crate) use kafka_protocol::ResponseError as KafkaError;

/// The error code a Kafka broker answers for a store error.
pub(crate) fn error_code(e: &StoreError) -> i16 {
    match e {
        StoreError::TopicNotFound(_)
        | StoreError::PartitionNotFound { .. }
        | StoreError::TopicDeleted { .. } => KafkaError::UnknownTopicOrPartition.code(),
        StoreError::Name(_) => KafkaError::InvalidTopicException.code(),
        StoreError::Config(_) => KafkaError::InvalidConfig.code(),
        StoreError::TopicExists(_) => KafkaError::TopicAlreadyExists.code(),
        StoreError::BadPartitionCount { .. } | StoreError::PartitionDecrease { .. } => {
            KafkaError::InvalidPartitions.code()
        }
        StoreError::BatchTooLarge { .. } => KafkaError::MessageTooLarge.code(),
        StoreError::Io { .. } | StoreError::Corrupt { .. } | StoreError::BadMetadata { .. } => {
            KafkaError::KafkaStorageError.code()
        }
        _ => KafkaError::UnknownServerError.code(),
    }
}

/// A string for the crate's message types.
pub(crate) fn str_bytes(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}
