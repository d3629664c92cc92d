//! The range assignor, mirroring Kafka's `RangeAssignor` (without rack awareness).
//!
//! It works topic by topic. For each topic, the partitions are laid out in numeric order and
//! the members subscribed to that topic in `MemberInfo` order (static members by instance id
//! first, then the rest by member id). Each member gets a contiguous range of
//! `partitions / members` partitions, and the first `partitions % members` members one more.
//!
//! With two members C0, C1 both subscribed to t0 and t1 of three partitions each, that is
//! C0: [t0-0, t0-1, t1-0, t1-1] and C1: [t0-2, t1-2]: the same members lead every topic, which
//! is what makes range co-partition topics (and also what makes it uneven across many topics).

use std::collections::BTreeMap;

use super::{
    empty_assignment, sort_all, sorted_members, subscribed_topics, Assignor, MemberSubscription,
    RebalanceProtocol, TopicPartition,
};

/// Kafka's `range` assignor (the Java client's default before 3.0).
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
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
        let ordered = sorted_members(members);
        for (topic, &count) in &subscribed_topics(partitions_per_topic, members) {
            let consumers: Vec<&str> = ordered
                .iter()
                .filter(|m| m.topics.contains(topic))
                .map(|m| m.member_id.as_str())
                .collect();
            let n = consumers.len() as i32;
            let per_consumer = count / n;
            let with_extra = count % n;
            for (i, member) in (0i32..).zip(consumers) {
                let start = per_consumer * i + i.min(with_extra);
                let len = per_consumer + i32::from(i < with_extra);
                let target = assignment
                    .get_mut(member)
                    .expect("every member has an entry");
                target.extend((start..start + len).map(|p| TopicPartition::new(topic.clone(), p)));
            }
        }
        sort_all(&mut assignment);
        assignment
    }
}
