//! Partition assignors: given every member's subscription, decide which member of a consumer
//! group consumes which partition.
//!
//! These mirror the assignors shipped with Apache Kafka's Java client
//! (`org.apache.kafka.clients.consumer.RangeAssignor`, `RoundRobinAssignor`, `StickyAssignor`
//! and `CooperativeStickyAssignor`), so that a group run by spool hands out partitions the
//! way a Kafka group with the same members would. Rack awareness is left out: spool has no
//! brokers and so no replica racks, which is the case in which Kafka's assignors fall back
//! to the algorithms implemented here.
//!
//! This module is pure: no I/O, no clocks, no randomness. Every assignor is deterministic
//! for a given input, whatever the order of `members`.

mod range;
mod roundrobin;
mod sticky;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;
pub use sticky::{sticky_target, CooperativeStickyAssignor, StickyAssignor};

/// One partition of one topic.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// Kafka's own spelling, `topic-partition`.
impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What one member tells the assignor.
///
/// Member ids are expected to be unique within one call to [`Assignor::assign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    /// Static membership (`group.instance.id`).
    pub instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions it owns now (for sticky / cooperative).
    pub owned: Vec<TopicPartition>,
    /// Generation in which `owned` was assigned (-1 if none); sticky uses it to resolve
    /// conflicting claims as Kafka does.
    pub generation: i32,
}

/// How a group moves partitions between members on a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member gives up everything it owns before the new assignment is computed.
    Eager,
    /// Members keep what they own; a partition that changes owner is first revoked by the old
    /// owner and handed to the new one only in a follow-up rebalance.
    Cooperative,
}

pub trait Assignor: Send + Sync {
    /// "range", "roundrobin", "sticky" or "cooperative-sticky".
    fn name(&self) -> &'static str;
    fn protocol(&self) -> RebalanceProtocol;
    /// partitions_per_topic: topic -> partition count (topics missing from the map are ignored
    /// as Kafka does for unknown topics). Returns member_id -> sorted assigned partitions, with an
    /// entry (possibly empty) for EVERY member.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> BTreeMap<String, Vec<TopicPartition>>;
}

/// Names accepted on the command line, in this order.
pub const ASSIGNOR_NAMES: &[&str] = &["range", "roundrobin", "sticky", "cooperative-sticky"];

/// The assignor called `name` (one of [`ASSIGNOR_NAMES`]), if there is one.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        "sticky" => Some(Box::new(StickyAssignor)),
        "cooperative-sticky" => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// Kafka's `AbstractPartitionAssignor.MemberInfo` order: static members (those with an
/// instance id) first, ordered by instance id, then dynamic members ordered by member id.
/// Range and round robin walk members in this order, so a static member that rejoins under a
/// new member id gets the same partitions back.
pub(crate) fn member_info_order(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
    // Only equal for two static members sharing an instance id, which a group never has;
    // fall back to the member id so the order stays total.
    .then_with(|| a.member_id.cmp(&b.member_id))
}

/// The members sorted by [`member_info_order`].
pub(crate) fn sorted_members(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| member_info_order(a, b));
    sorted
}

/// The topics that at least one member subscribes to and whose partition count is known,
/// with that count (negative counts read as zero). This is the `partitionsPerTopic` map that
/// Kafka's `AbstractPartitionAssignor` hands to its subclasses.
pub(crate) fn subscribed_topics(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
) -> BTreeMap<String, i32> {
    let subscribed: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.topics.iter().map(String::as_str))
        .collect();
    subscribed
        .into_iter()
        .filter_map(|t| {
            partitions_per_topic
                .get(t)
                .map(|&n| (t.to_string(), n.max(0)))
        })
        .collect()
}

/// An empty assignment holding an entry for every member.
pub(crate) fn empty_assignment(
    members: &[MemberSubscription],
) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

/// Sorts every member's partitions, as the [`Assignor::assign`] contract promises.
pub(crate) fn sort_all(assignment: &mut BTreeMap<String, Vec<TopicPartition>>) {
    for partitions in assignment.values_mut() {
        partitions.sort();
    }
}

#[cfg(test)]
mod tests;
