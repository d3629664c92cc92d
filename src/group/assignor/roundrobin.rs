//! The round robin assignor, mirroring Kafka's `RoundRobinAssignor`.
//!
//! All partitions of all subscribed topics are laid out sorted by topic name, then partition
//! number; the members are laid out in `MemberInfo` order (static members by instance id
//! first, then the rest by member id) and treated as a ring. Each partition goes to the next
//! member in the ring, skipping members not subscribed to its topic. With identical
//! subscriptions every member's count is within one of every other's; with differing ones
//! the skipping can leave it uneven, exactly as in Kafka.
//!
//! With two members C0, C1 both subscribed to t0 and t1 of three partitions each, that is
//! C0: [t0-0, t0-2, t1-1] and C1: [t0-1, t1-0, t1-2].

use std::collections::BTreeMap;

use super::{
    empty_assignment, sort_all, sorted_members, subscribed_topics, Assignor, MemberSubscription,
    RebalanceProtocol, TopicPartition,
};

/// Kafka's `roundrobin` assignor.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut assignment = empty_assignment(members);
        let ring = sorted_members(members);
        // Index of the member the ring points at; it survives from one topic to the next.
        let mut next = 0usize;
        // The map is sorted by topic name, and every topic in it has a subscriber, so the
        // skipping loop below always stops.
        for (topic, &count) in &subscribed_topics(partitions_per_topic, members) {
            for partition in 0..count {
                while !ring[next].topics.contains(topic) {
                    next = (next + 1) % ring.len();
                }
                let member = &ring[next].member_id;
                next = (next + 1) % ring.len();
                let target = assignment
                    .get_mut(member)
                    .expect("every member has an entry");
                target.push(TopicPartition::new(topic.clone(), partition));
            }
        }
        sort_all(&mut assignment);
        assignment
    }
}
