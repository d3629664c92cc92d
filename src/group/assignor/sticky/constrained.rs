//! Sticky assignment when every member has the same subscription: Kafka's
//! `AbstractStickyAssignor.ConstrainedAssignmentBuilder`.
//!
//! With `total` partitions and `n` members, every member ends with `min = total / n` or
//! `max = ceil(total / n)` partitions, and exactly `total % n` members get `max`.
//!
//! 1. Owned partitions are kept up to quota. A member owning fewer than `min` keeps them all
//!    and is "under min". One owning `max` or more keeps `max` while fewer than `total % n`
//!    members have been given `max`; otherwise it keeps `min` and, while `max` slots remain,
//!    waits "at min" for possibly one more. What is not kept is revoked.
//! 2. The remaining partitions, sorted by topic then partition, are dealt round robin to the
//!    "under min" members (sorted by member id) until each reaches `min`, and then one each to
//!    the "at min" members, in the order they reached `min`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::Claims;
use crate::group::assignor::TopicPartition;

pub(super) fn assign<'a>(
    topics: &BTreeMap<String, i32>,
    claims: Claims<'a>,
) -> BTreeMap<&'a str, Vec<TopicPartition>> {
    let members = claims.owned.len();
    let total: usize = topics.values().map(|&n| n as usize).sum();
    let min_quota = total / members;
    let max_quota = total.div_ceil(members);
    let expected_at_max = total % members;
    let mut at_max = 0;

    let mut assignment: BTreeMap<&'a str, Vec<TopicPartition>> = BTreeMap::new();
    let mut assigned: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut under_min: Vec<&'a str> = Vec::new();
    let mut at_min: VecDeque<&'a str> = VecDeque::new();

    for (member, mut owned) in claims.owned {
        owned.retain(|tp| !claims.multiply_claimed.contains(tp));
        owned.sort_by(|a, b| {
            a.partition
                .cmp(&b.partition)
                .then_with(|| a.topic.cmp(&b.topic))
        });
        let keep = if owned.len() < min_quota {
            under_min.push(member);
            owned.len()
        } else if owned.len() >= max_quota && at_max < expected_at_max {
            at_max += 1;
            if at_max == expected_at_max {
                at_min.clear();
            }
            max_quota
        } else {
            if at_max < expected_at_max {
                at_min.push_back(member);
            }
            min_quota
        };
        owned.truncate(keep);
        assigned.extend(owned.iter().cloned());
        assignment.insert(member, owned);
    }

    under_min.sort_unstable();
    at_min.make_contiguous().sort_unstable();

    // A cursor over `under_min` that, like the Java iterator it mirrors, survives removals
    // and is restarted from the front when it runs off the end.
    let mut cursor = 0;
    let unassigned = topics.iter().flat_map(|(topic, &n)| {
        (0..n)
            .map(move |p| TopicPartition::new(topic.clone(), p))
            .filter(|tp| !assigned.contains(tp))
    });
    for tp in unassigned {
        let member = if cursor < under_min.len() {
            cursor += 1;
            under_min[cursor - 1]
        } else if !under_min.is_empty() {
            cursor = 1;
            under_min[0]
        } else if let Some(member) = at_min.pop_front() {
            member
        } else {
            // The quotas add up to the partition count, so Kafka treats this as a bug
            // (IllegalStateException). Stay valid: give it to the least loaded member.
            debug_assert!(false, "no member left below quota for {tp}");
            let least = assignment.iter().min_by_key(|(_, p)| p.len());
            *least.expect("at least one member").0
        };
        let partitions = assignment.get_mut(member).expect("member");
        partitions.push(tp);
        let count = partitions.len();
        // A member reaching `min` moves from "under min" to "at min" (Kafka also counts the
        // members reaching `max` here, but only to log inconsistencies).
        if count == min_quota && cursor > 0 && under_min.get(cursor - 1) == Some(&member) {
            cursor -= 1;
            under_min.remove(cursor);
            at_min.push_back(member);
        }
    }
    assignment
}
