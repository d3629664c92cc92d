//! Consumer groups without a coordinator: several processes share a topic's partitions through
//! files in `groups/<group>/`, as DESIGN.md lays out.
//!
//! - [`state`]: the group directory's files (`group.yaml`, `offsets.yaml`) and their formats.
//! - [`lease`]: membership leases, locked for a member's whole life, with heartbeats.
//! - [`coordinator`]: what Kafka's group coordinator does (generations, assignment, ownership,
//!   fenced commits), as operations under the group lock.
//! - [`member`]: one member's side: joining, the heartbeat thread, watching peers die.
//! - [`consumer`]: a consumer that reads the partitions its member owns and commits them.
//! - [`assignor`]: Kafka's partition assignors.
//! - [`view`]: read-only views of groups (state, members, offsets and lags, history) for
//!   `spool group list|describe`; looking never changes a group.
//! - [`reset`]: changes made from outside an inactive group: offset resets, offset deletion,
//!   group deletion.

pub mod assignor;
pub mod consumer;
pub mod coordinator;
pub mod lease;
pub mod member;
pub mod reset;
pub mod state;
pub mod view;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("group {group} uses the {theirs} assignor (member {member}), but this consumer asks for {ours}; all members of a group must use the same assignor")]
    ProtocolMismatch {
        group: String,
        ours: String,
        theirs: String,
        member: String,
    },
    #[error("instance id {instance_id} is already in use by a live member (pid {pid} on {host})")]
    InstanceInUse {
        instance_id: String,
        pid: u32,
        host: String,
    },
    #[error("this member was fenced: {0}")]
    Fenced(String),
    #[error("no committed offset for {partitions}, and --auto-offset-reset is none")]
    NoCommittedOffset { partitions: String },
}
