//! spool: Apache Kafka's model — topics, partitions, producers, offsets, consumer groups — as a
//! library over a directory on local disk, with no server. The `spool` binary is a thin layer
//! of commands over it.
//!
//! # Layout
//!
//! - [`store`]: the log. The store directory, topic metadata, partition logs made of Kafka
//!   RecordBatch v2 segments (uncompressed or with Kafka's four codecs) with their sparse
//!   indexes, the partition lock, crash recovery,
//!   retention and verification, and readers that read and check ahead on a helper thread.
//! - [`produce`]: turning input (lines, delimited bytes, JSON lines) into records, choosing their
//!   partitions as Kafka's producer does, and batching them into partition logs.
//! - [`consume`]: reading several partitions fairly and waiting for new records through file
//!   notifications.
//! - [`group`]: consumer groups without a coordinator: leases, heartbeats, rebalancing with
//!   Kafka's assignors, fenced commits, and the read-only views and offset resets of `spool group`
//!   and `spool offsets`.
//! - [`serve`]: `spool serve`, Kafka's wire protocol over the store, for Kafka clients.
//! - [`kafka`]: the Kafka-cluster target (`spool -b`): librdkafka clients, their settings
//!   and errors, and the cluster side of each operation.
//! - [`target`]: which store a command works on, the local directory or a Kafka cluster, and
//!   the operations both implement with the same views.
//! - [`record`]: the record types shared by producers and consumers.
//! - [`format`](mod@format): records as text: output templates (`-F`) and JSON lines in both directions.
//! - [`spec`]: parsing of offset specs, times, durations, sizes and `key=value` pairs.
//! - [`name`]: Kafka's rule for topic and group names, checked before any path is built.
//! - [`cli`]: the command-line interface (clap definitions and rendering), and the man pages and
//!   shell completions generated from it; only the binary uses it.

pub mod cli;
pub mod consume;
pub mod format;
pub mod group;
pub mod kafka;
pub mod name;
pub mod produce;
pub mod record;
pub mod serve;
pub mod spec;
pub mod store;
pub mod target;
