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
//!
//! # The protocol at scale
//!
//! A group of hundreds of members on one machine behaves like a small one:
//!
//! - **Two threads per member**, whatever the group's size (see [`member`]): a heartbeat that
//!   rewrites only the member's own lease (no lock, O(1) file operations), and a watcher of one
//!   peer, the next member by id (a ring). A death is seen at once by exactly one member (a
//!   pidfd of the peer's process), which reconciles the whole group in one generation.
//! - **Liveness by observation**: a locked lease is expired only by the member watching it,
//!   after its heartbeat value stood still for a session timeout on the watcher's monotonic
//!   clock; the removal is checked against the value (rename, read back), so a member whose
//!   heartbeat succeeded is never expired by a decision taken before it.
//! - **No member waits on another**: the group lock is held for bounded sections and is
//!   breakable ([`state::GroupLock`]): a holder stopped longer than a session timeout loses it,
//!   and its later writes fail. The consuming thread only ever tries the lock, so it keeps
//!   reading while another process holds it.
//! - **Joins in batches**: a joiner's lease goes into `members/` and its name into `joining/`
//!   before it waits for the group lock; whoever gets the lock admits every waiting joiner in
//!   one generation, and the others find themselves admitted without taking it. While a large
//!   group's last generation is young, joiners let more gather first (every member reads every
//!   generation whole), so a crowd starting at once costs a few generations.
//! - **Hand-overs in batches** (cooperative): a member giving partitions up stops reading them
//!   and writes a release note (`releasing/<id>`, no lock); whoever next holds the lock commits
//!   and hands over every member's releases in one write, so a rebalance that takes a
//!   partition from each of fifty members costs a few writes, not fifty in a row.
//! - **One write per change**: joins and leaves change the generation incrementally; in a
//!   cooperative group the old owner hands a partition straight to its new owner in the write
//!   that releases it, and a generation grants free partitions, so taking a partition up takes
//!   no lock; a member with nothing to give up acknowledges a generation in its own lease.
//!   Members wake on `group.yaml` changes only and parse it only when its generation (read
//!   from its first line) changed or they wait for a partition.
//! - **Lost state**: a `group.yaml` removed or garbled while leases are locked is rebuilt with
//!   those members in quarantine: nothing is handed out until each rejoined (having stopped
//!   reading), left, or stood still for its session timeout. A member rejoining after a loss
//!   keeps its old lease locked until its admission removes it, so whoever rebuilds the state
//!   always sees that members were running (and never takes a state lost under running
//!   members for an offline group's damaged files).

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
