//! Property tests: for random topics, partition counts, members, subscriptions, owned sets
//! and generations (including claims on unknown topics, out-of-range partitions, unsubscribed
//! topics and conflicting claims), every assignor yields a valid assignment.

use proptest::prelude::*;

use super::*;

const TOPICS: [&str; 4] = ["t0", "t1", "t2", "t3"];

#[derive(Debug, Clone)]
struct Case {
    partitions_per_topic: BTreeMap<String, i32>,
    members: Vec<MemberSubscription>,
}

fn case() -> impl Strategy<Value = Case> {
    // Per topic: its partition count, or None when the topic is unknown.
    let counts = prop::collection::vec(prop::option::weighted(0.85, 0..7i32), TOPICS.len());
    let member = (
        any::<bool>(),                                           // static?
        1u8..16,                                                 // subscription bitmask
        prop::collection::vec((0..TOPICS.len(), 0..8i32), 0..7), // owned
        -1..4i32,                                                // generation
    );
    (counts, prop::collection::vec(member, 1..7)).prop_map(|(counts, members)| {
        let partitions_per_topic = TOPICS
            .iter()
            .zip(counts)
            .filter_map(|(t, n)| n.map(|n| (t.to_string(), n)))
            .collect();
        let n = members.len();
        let members = members
            .into_iter()
            .enumerate()
            .map(
                |(i, (is_static, mask, owned, generation))| MemberSubscription {
                    member_id: format!("m{i}"),
                    // Instance ids sort in the opposite order to member ids.
                    instance_id: is_static.then(|| format!("i{}", n - i)),
                    topics: (0..TOPICS.len())
                        .filter(|b| mask & (1 << b) != 0)
                        .map(|b| TOPICS[b].to_string())
                        .collect(),
                    owned: owned.into_iter().map(|(t, p)| tp(TOPICS[t], p)).collect(),
                    generation,
                },
            )
            .collect();
        Case {
            partitions_per_topic,
            members,
        }
    })
}

fn all_subscriptions_identical(members: &[MemberSubscription]) -> bool {
    let set = |m: &MemberSubscription| m.topics.iter().cloned().collect::<BTreeSet<_>>();
    members.iter().all(|m| set(m) == set(&members[0]))
}

fn reversed(members: &[MemberSubscription]) -> Vec<MemberSubscription> {
    members.iter().rev().cloned().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn eager_assignors_are_valid_and_complete(c in case()) {
        for assignor in [&RangeAssignor as &dyn Assignor, &RoundRobinAssignor, &StickyAssignor] {
            let a = assignor.assign(&c.partitions_per_topic, &c.members);
            verify_validity(&c.partitions_per_topic, &c.members, &a, true);
            prop_assert_eq!(&a, &assignor.assign(&c.partitions_per_topic, &reversed(&c.members)));
        }
    }

    #[test]
    fn roundrobin_is_balanced_for_identical_subscriptions(c in case()) {
        let a = RoundRobinAssignor.assign(&c.partitions_per_topic, &c.members);
        if all_subscriptions_identical(&c.members) {
            prop_assert!(is_fully_balanced(&a), "{:?}", a);
        }
    }

    #[test]
    fn sticky_is_balanced(c in case()) {
        let a = StickyAssignor.assign(&c.partitions_per_topic, &c.members);
        verify_validity_and_balance(&c.partitions_per_topic, &c.members, &a);
        verify_equal_subscriptions_balanced(&c.members, &a);
        if all_subscriptions_identical(&c.members) {
            prop_assert!(is_fully_balanced(&a), "{:?}", a);
        }
    }

    /// With conflict-free claims, no two members swap partitions of a topic (Kafka's
    /// `isSticky`); with identical subscriptions too, a member only loses owned partitions
    /// when trimmed to its quota, never to make room for new ones.
    #[test]
    fn sticky_keeps_owned_partitions(c in case()) {
        let mut seen = BTreeSet::new();
        let disjoint = c.members.iter().flat_map(|m| &m.owned).all(|p| seen.insert(p.clone()));
        if disjoint {
            let a = StickyAssignor.assign(&c.partitions_per_topic, &c.members);
            verify_no_swaps(&c.members, &a);
            if all_subscriptions_identical(&c.members) {
                verify_kept_before_gaining(&c.partitions_per_topic, &c.members, &a);
            }
        }
    }

    /// Cooperative: a subset of the sticky target; nothing is given to a member while another
    /// member still claims it (unless the receiver's own claim is of a newer generation); and
    /// rebalancing again with what was handed out converges on the full target.
    #[test]
    fn cooperative_sticky_is_safe_and_converges(c in case()) {
        let ppt = &c.partitions_per_topic;
        let a = CooperativeStickyAssignor.assign(ppt, &c.members);
        prop_assert_eq!(&a, &CooperativeStickyAssignor.assign(ppt, &reversed(&c.members)));
        verify_validity(ppt, &c.members, &a, false);
        let target = sticky_target(ppt, &c.members);
        for (m, partitions) in &a {
            prop_assert!(partitions.iter().all(|p| target[m].contains(p)));
        }
        for receiver in &c.members {
            for p in &a[&receiver.member_id] {
                for other in &c.members {
                    if other.member_id != receiver.member_id && other.owned.contains(p) {
                        prop_assert!(
                            receiver.owned.contains(p) && receiver.generation > other.generation,
                            "{} handed to {} while {} claims it: {:?}", p, receiver.member_id, other.member_id, a
                        );
                    }
                }
            }
        }

        let mut members = c.members.clone();
        let mut assignment = a;
        for generation in 10..14 {
            let revoking = members.iter().any(|m| m.owned.iter().any(|p| !assignment[&m.member_id].contains(p)));
            if !revoking {
                break;
            }
            members = rejoin(&members, &assignment, generation);
            assignment = CooperativeStickyAssignor.assign(ppt, &members);
        }
        prop_assert_eq!(&assignment, &sticky_target(ppt, &members), "did not converge");
        verify_validity_and_balance(ppt, &members, &assignment);
    }
}
