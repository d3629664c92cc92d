//! Unit tests for the assignors. The cases are ported from Apache Kafka's client tests
//! (`RangeAssignorTest`, `RoundRobinAssignorTest`, `AbstractStickyAssignorTest`,
//! `StickyAssignorTest`, `CooperativeStickyAssignorTest`): their inputs and expected outputs
//! are the facts checked here. This file holds the shared builders and invariant checks.

mod cooperative;
mod props;
mod range;
mod roundrobin;
mod sticky;

use std::collections::{BTreeMap, BTreeSet};

use super::*;

pub(super) type Assignment = BTreeMap<String, Vec<TopicPartition>>;

pub(super) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// Partition counts per topic.
pub(super) fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
    counts.iter().map(|&(t, n)| (t.to_string(), n)).collect()
}

/// A dynamic member with no owned partitions and no generation.
pub(super) fn member(id: &str, subscribed: &[&str]) -> MemberSubscription {
    owning(id, subscribed, Vec::new(), -1)
}

pub(super) fn static_member(id: &str, instance: &str, subscribed: &[&str]) -> MemberSubscription {
    MemberSubscription {
        instance_id: Some(instance.to_string()),
        ..member(id, subscribed)
    }
}

pub(super) fn owning(
    id: &str,
    subscribed: &[&str],
    owned: Vec<TopicPartition>,
    generation: i32,
) -> MemberSubscription {
    MemberSubscription {
        member_id: id.to_string(),
        instance_id: None,
        topics: subscribed.iter().map(|t| t.to_string()).collect(),
        owned,
        generation,
    }
}

/// Parses Kafka's test notation, `"t1-0, t1-3, t2-0"`, into sorted partitions.
pub(super) fn parts(list: &str) -> Vec<TopicPartition> {
    let mut out: Vec<TopicPartition> = list
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (topic, p) = s.rsplit_once('-').expect("topic-partition");
            tp(topic, p.parse().expect("partition number"))
        })
        .collect();
    out.sort();
    out
}

/// The same members, now owning what `assignment` gave them, in `generation`.
pub(super) fn rejoin(
    members: &[MemberSubscription],
    assignment: &Assignment,
    generation: i32,
) -> Vec<MemberSubscription> {
    members
        .iter()
        .map(|m| MemberSubscription {
            owned: assignment[&m.member_id].clone(),
            generation,
            ..m.clone()
        })
        .collect()
}

/// Kafka's `isFullyBalanced`: all counts within one of each other.
pub(super) fn is_fully_balanced(assignment: &Assignment) -> bool {
    let counts = assignment.values().map(Vec::len);
    let (min, max) = (counts.clone().min(), counts.max());
    min.zip(max).is_none_or(|(min, max)| max - min <= 1)
}

fn subscriptions(members: &[MemberSubscription]) -> BTreeMap<&str, BTreeSet<&str>> {
    members
        .iter()
        .map(|m| {
            let topics = m.topics.iter().map(String::as_str).collect();
            (m.member_id.as_str(), topics)
        })
        .collect()
}

/// Validity: one sorted entry per member; every partition exists, goes to a subscriber of its
/// topic, and at most once. With `complete`, every partition of a subscribed known topic is
/// assigned (exactly once).
pub(super) fn verify_validity(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    assignment: &Assignment,
    complete: bool,
) {
    let subs = subscriptions(members);
    let ids: BTreeSet<&str> = subs.keys().copied().collect();
    let keys: BTreeSet<&str> = assignment.keys().map(String::as_str).collect();
    assert_eq!(ids, keys, "one entry per member: {assignment:?}");
    let mut seen = BTreeSet::new();
    for (m, partitions) in assignment {
        assert!(
            partitions.windows(2).all(|w| w[0] < w[1]),
            "sorted: {partitions:?}"
        );
        for p in partitions {
            let count = partitions_per_topic.get(&p.topic).copied().unwrap_or(0);
            assert!((0..count).contains(&p.partition), "{p} does not exist");
            assert!(
                subs[m.as_str()].contains(p.topic.as_str()),
                "{p} given to non-subscriber {m}"
            );
            assert!(seen.insert(p.clone()), "{p} assigned twice: {assignment:?}");
        }
    }
    if complete {
        for (topic, &count) in partitions_per_topic {
            if subs.values().any(|s| s.contains(topic.as_str())) {
                for p in 0..count {
                    assert!(
                        seen.contains(&tp(topic, p)),
                        "{topic}-{p} unassigned: {assignment:?}"
                    );
                }
            }
        }
    }
}

/// Kafka's `verifyValidityAndBalance` (plus completeness): valid, and whenever two members'
/// counts differ by two or more, the more loaded one holds no partition of a topic the other
/// holds partitions of.
pub(super) fn verify_validity_and_balance(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    assignment: &Assignment,
) {
    verify_validity(partitions_per_topic, members, assignment, true);
    let topics_of = |ps: &Vec<TopicPartition>| -> BTreeSet<String> {
        ps.iter().map(|p| p.topic.clone()).collect()
    };
    for (a, pa) in assignment {
        for (b, pb) in assignment {
            if pa.len() >= pb.len() + 2 {
                let common: Vec<_> = topics_of(pa)
                    .intersection(&topics_of(pb))
                    .cloned()
                    .collect();
                assert!(
                    common.is_empty(),
                    "{a} ({}) could give {common:?} to {b} ({}): {assignment:?}",
                    pa.len(),
                    pb.len()
                );
            }
        }
    }
}

/// Members with identical subscriptions have counts within one of each other.
pub(super) fn verify_equal_subscriptions_balanced(
    members: &[MemberSubscription],
    assignment: &Assignment,
) {
    let subs = subscriptions(members);
    for (a, sa) in &subs {
        for (b, sb) in &subs {
            let (na, nb) = (assignment[*a].len(), assignment[*b].len());
            assert!(
                sa != sb || na <= nb + 1,
                "{a} has {na}, {b} has {nb}: {assignment:?}"
            );
        }
    }
}

/// Kafka's `isSticky`: no two members swapped partitions of one topic, i.e. there is no
/// topic in which one partition moved from A to B and another from B to A.
pub(super) fn verify_no_swaps(before: &[MemberSubscription], assignment: &Assignment) {
    let mut owner_before = BTreeMap::new();
    for m in before {
        for p in &m.owned {
            owner_before.insert(p, m.member_id.as_str());
        }
    }
    let mut moves: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    for (to, partitions) in assignment {
        for p in partitions {
            if let Some(&from) = owner_before.get(p) {
                if from != to {
                    moves.insert((p.topic.as_str(), from, to.as_str()));
                }
            }
        }
    }
    for &(topic, from, to) in &moves {
        assert!(
            !moves.contains(&(topic, to, from)),
            "{from} and {to} swapped partitions of {topic}: {assignment:?}"
        );
    }
}

/// Stickiness for conflict-free claims: a member that lost an owned partition it still
/// subscribes to gained no partition it did not own (it was only trimmed to its quota).
pub(super) fn verify_kept_before_gaining(
    partitions_per_topic: &BTreeMap<String, i32>,
    before: &[MemberSubscription],
    assignment: &Assignment,
) {
    for m in before {
        let now: BTreeSet<&TopicPartition> = assignment[&m.member_id].iter().collect();
        let valid: BTreeSet<&TopicPartition> = m
            .owned
            .iter()
            .filter(|p| m.topics.contains(&p.topic))
            .filter(|p| {
                (0..partitions_per_topic.get(&p.topic).copied().unwrap_or(0)).contains(&p.partition)
            })
            .collect();
        let lost = valid.iter().any(|p| !now.contains(*p));
        let gained = now.iter().any(|p| !valid.contains(*p));
        assert!(
            !(lost && gained),
            "{} lost an owned partition yet gained a new one: owned {:?}, now {:?}",
            m.member_id,
            m.owned,
            now
        );
    }
}

/// A small deterministic generator for the randomized ports of Kafka's tests.
pub(super) struct Lcg(u64);

impl Lcg {
    pub(super) fn new(seed: u64) -> Self {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// A number in `0..n` (n > 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Kafka's `getCanonicalName`: `prefix` plus `i` zero-padded to the width of `max`.
pub(super) fn name(prefix: &str, i: usize, max: usize) -> String {
    format!("{prefix}{i:0width$}", width = max.to_string().len())
}

#[test]
fn by_name_knows_every_listed_assignor() {
    for &name in ASSIGNOR_NAMES {
        assert_eq!(by_name(name).expect(name).name(), name);
    }
    assert!(by_name("bogus").is_none());
    assert_eq!(
        by_name("range").unwrap().protocol(),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        by_name("roundrobin").unwrap().protocol(),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        by_name("sticky").unwrap().protocol(),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        by_name("cooperative-sticky").unwrap().protocol(),
        RebalanceProtocol::Cooperative
    );
}

/// Kafka's `AbstractPartitionAssignorTest.testMemberInfoSorting*`.
#[test]
fn member_info_ordering() {
    let sorted_ids = |members: &[MemberSubscription]| -> Vec<String> {
        sorted_members(members)
            .iter()
            .map(|m| m.member_id.clone())
            .collect()
    };
    let dynamic = [member("a", &[]), member("b", &[]), member("c", &[])];
    assert_eq!(sorted_ids(&dynamic), ["a", "b", "c"]);
    let all_static = [
        static_member("a", "y", &[]),
        static_member("b", "z", &[]),
        static_member("c", "x", &[]),
    ];
    assert_eq!(sorted_ids(&all_static), ["c", "a", "b"]);
    let some_static = [
        member("a", &[]),
        static_member("b", "y", &[]),
        static_member("c", "x", &[]),
    ];
    assert_eq!(sorted_ids(&some_static), ["c", "b", "a"]);
}

#[test]
fn topic_partition_displays_like_kafka() {
    assert_eq!(tp("orders", 3).to_string(), "orders-3");
    assert_eq!(parts("a-b-1, a-0"), vec![tp("a", 0), tp("a-b", 1)]);
}
