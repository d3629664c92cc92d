//! Ported from Kafka's `AbstractStickyAssignorTest` and `StickyAssignorTest` (the cases
//! without racks), run against the eager `sticky` assignor, i.e. the full sticky target.
//! Kafka's "partitionsTransferringOwnership" expectations are checked in `cooperative.rs`.

use super::*;

const GEN: i32 = 1;

/// Assign with the sticky assignor and check Kafka's invariants on the result.
fn assign(ppt: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> Assignment {
    let assignment = StickyAssignor.assign(ppt, members);
    assert_eq!(assignment, sticky_target(ppt, members));
    verify_validity_and_balance(ppt, members, &assignment);
    verify_equal_subscriptions_balanced(members, &assignment);
    if claims_are_disjoint(members) {
        verify_no_swaps(members, &assignment);
        let first = members.first().map(|m| &m.topics);
        if members.iter().all(|m| Some(&m.topics) == first) {
            verify_kept_before_gaining(ppt, members, &assignment);
        }
    }
    assignment
}

fn claims_are_disjoint(members: &[MemberSubscription]) -> bool {
    let mut seen = BTreeSet::new();
    members
        .iter()
        .flat_map(|m| &m.owned)
        .all(|p| seen.insert(p))
}

fn set(partitions: &[TopicPartition]) -> BTreeSet<TopicPartition> {
    partitions.iter().cloned().collect()
}

fn contains_all(outer: &[TopicPartition], inner: &[TopicPartition]) -> bool {
    set(inner).is_subset(&set(outer))
}

#[test]
fn one_consumer_no_topic() {
    let a = assign(&topics(&[]), &[member("consumer", &[])]);
    assert_eq!(a, BTreeMap::from([("consumer".into(), vec![])]));
}

#[test]
fn one_consumer_nonexistent_topic() {
    let a = assign(&topics(&[("topic", 0)]), &[member("consumer", &["topic"])]);
    assert_eq!(a, BTreeMap::from([("consumer".into(), vec![])]));
    let a = assign(&topics(&[]), &[member("consumer", &["topic"])]);
    assert_eq!(a, BTreeMap::from([("consumer".into(), vec![])]));
}

#[test]
fn one_consumer_one_topic() {
    let a = assign(&topics(&[("topic", 3)]), &[member("consumer", &["topic"])]);
    assert_eq!(a["consumer"], parts("topic-0, topic-1, topic-2"));
}

#[test]
fn only_assigns_partitions_from_subscribed_topics() {
    let owned = parts("topic-0, topic-1, other-0, other-1");
    let members = [owning("consumer", &["topic"], owned, GEN)];
    let a = assign(&topics(&[("topic", 2)]), &members);
    assert_eq!(a["consumer"], parts("topic-0, topic-1"));
}

#[test]
fn one_consumer_multiple_topics() {
    let ppt = topics(&[("topic1", 1), ("topic2", 2)]);
    let a = assign(&ppt, &[member("consumer", &["topic1", "topic2"])]);
    assert_eq!(a["consumer"], parts("topic1-0, topic2-0, topic2-1"));
}

#[test]
fn two_consumers_one_topic_one_partition() {
    let members = [
        member("consumer1", &["topic"]),
        member("consumer2", &["topic"]),
    ];
    let a = assign(&topics(&[("topic", 1)]), &members);
    assert_eq!(a.values().map(Vec::len).sum::<usize>(), 1);
    assert!(is_fully_balanced(&a));
}

#[test]
fn two_consumers_one_topic_two_partitions() {
    let members = [
        member("consumer1", &["topic"]),
        member("consumer2", &["topic"]),
    ];
    let a = assign(&topics(&[("topic", 2)]), &members);
    assert_eq!(a["consumer1"], parts("topic-0"));
    assert_eq!(a["consumer2"], parts("topic-1"));
}

#[test]
fn multiple_consumers_mixed_topic_subscriptions() {
    let members = [
        member("consumer1", &["topic1"]),
        member("consumer2", &["topic1", "topic2"]),
        member("consumer3", &["topic1"]),
    ];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 2)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0, topic1-2"));
    assert_eq!(a["consumer2"], parts("topic2-0, topic2-1"));
    assert_eq!(a["consumer3"], parts("topic1-1"));
}

#[test]
fn two_consumers_two_topics_six_partitions() {
    let both = ["topic1", "topic2"];
    let members = [member("consumer1", &both), member("consumer2", &both)];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 3)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0, topic1-2, topic2-1"));
    assert_eq!(a["consumer2"], parts("topic1-1, topic2-0, topic2-2"));
}

#[test]
fn consumer_owning_min_quota_expected_max_quota() {
    let both = ["topic1", "topic2"];
    let members = [
        owning("consumer1", &both, parts("topic1-0, topic2-1"), GEN),
        owning("consumer2", &both, parts("topic1-1, topic2-2"), GEN),
    ];
    let a = assign(&topics(&[("topic1", 2), ("topic2", 3)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0, topic2-1, topic2-0"));
    assert_eq!(a["consumer2"], parts("topic1-1, topic2-2"));
}

/// Kafka expects consumer2 to keep its two partitions and consumer1 to be trimmed to one,
/// because Java's HashMap happens to visit consumer2 first. spool visits members by id, so
/// the roles of consumer1 and consumer2 are mirrored; everything else is as in Kafka.
#[test]
fn max_quota_consumer_more_than_num_expected_max_capacity_members() {
    let both = ["topic1", "topic2"];
    let members = [
        owning("consumer1", &both, parts("topic1-0, topic2-0"), GEN),
        owning("consumer2", &both, parts("topic1-1, topic2-1"), GEN),
        owning("consumer3", &both, vec![], GEN),
    ];
    let a = assign(&topics(&[("topic1", 2), ("topic2", 2)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0, topic2-0"));
    assert_eq!(a["consumer2"], parts("topic1-1"));
    assert_eq!(a["consumer3"], parts("topic2-1"));
}

#[test]
fn all_consumers_are_under_min_quota() {
    let both = ["topic1", "topic2"];
    let members = [
        owning("consumer1", &both, parts("topic1-0"), GEN),
        owning("consumer2", &both, parts("topic1-1"), GEN),
        owning("consumer3", &both, vec![], GEN),
    ];
    let a = assign(&topics(&[("topic1", 2), ("topic2", 3)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0, topic2-1"));
    assert_eq!(a["consumer2"], parts("topic1-1, topic2-2"));
    assert_eq!(a["consumer3"], parts("topic2-0"));
}

#[test]
fn add_remove_consumer_one_topic() {
    let ppt = topics(&[("topic", 3)]);
    let members = vec![member("consumer1", &["topic"])];
    let a = assign(&ppt, &members);
    assert_eq!(a["consumer1"], parts("topic-0, topic-1, topic-2"));

    let mut members = rejoin(&members, &a, GEN);
    members.push(owning("consumer2", &["topic"], vec![], GEN));
    let a = assign(&ppt, &members);
    assert_eq!(a["consumer1"], parts("topic-0, topic-1"));
    assert_eq!(a["consumer2"], parts("topic-2"));

    let members = rejoin(&members[1..], &a, GEN);
    let a = assign(&ppt, &members);
    assert_eq!(a["consumer2"], parts("topic-0, topic-1, topic-2"));
}

#[test]
fn topic_balance_after_reassignment() {
    let all = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 12), ("topic2", 12)]);
    let per_topic = |a: &Assignment, expected: usize| {
        for partitions in a.values() {
            for t in all {
                assert_eq!(partitions.iter().filter(|p| p.topic == t).count(), expected);
            }
        }
    };
    let members = vec![member("consumer1", &all)];
    let a = assign(&ppt, &members);
    per_topic(&a, 12);

    let mut members = rejoin(&members, &a, GEN);
    members.push(owning("consumer2", &all, vec![], GEN));
    let a = assign(&ppt, &members);
    per_topic(&a, 6);

    let mut members = rejoin(&members, &a, GEN);
    members.push(owning("consumer3", &all, vec![], GEN));
    members.push(owning("consumer4", &all, vec![], GEN));
    let a = assign(&ppt, &members);
    per_topic(&a, 3);

    let members = rejoin(&members[2..], &a, GEN);
    let a = assign(&ppt, &members);
    per_topic(&a, 6);
}

#[test]
fn add_remove_two_consumers_two_topics() {
    let all = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 3), ("topic2", 4)]);
    let members = vec![member("consumer1", &all), member("consumer2", &all)];
    let a = assign(&ppt, &members);
    assert_eq!(
        a["consumer1"],
        parts("topic1-0, topic1-2, topic2-1, topic2-3")
    );
    assert_eq!(a["consumer2"], parts("topic1-1, topic2-0, topic2-2"));

    let mut members = rejoin(&members, &a, GEN);
    members.push(owning("consumer3", &all, vec![], GEN));
    members.push(owning("consumer4", &all, vec![], GEN));
    let a = assign(&ppt, &members);
    assert_eq!(a["consumer1"], parts("topic1-0, topic2-1"));
    assert_eq!(a["consumer2"], parts("topic2-0, topic1-1"));
    assert_eq!(a["consumer3"], parts("topic1-2, topic2-3"));
    assert_eq!(a["consumer4"], parts("topic2-2"));

    let members = rejoin(&members[2..], &a, GEN);
    let a = assign(&ppt, &members);
    assert_eq!(
        a["consumer3"],
        parts("topic1-2, topic2-3, topic1-0, topic2-1")
    );
    assert_eq!(a["consumer4"], parts("topic2-2, topic1-1, topic2-0"));
}

#[test]
fn poor_round_robin_assignment_scenario() {
    let ppt: BTreeMap<String, i32> = (1..=5).map(|i| (format!("topic{i}"), i % 2 + 1)).collect();
    let all = ["topic1", "topic2", "topic3", "topic4", "topic5"];
    let odd = ["topic1", "topic3", "topic5"];
    let members = [
        member("consumer1", &all),
        member("consumer2", &odd),
        member("consumer3", &odd),
        member("consumer4", &all),
    ];
    assign(&ppt, &members);
}

#[test]
fn add_remove_topic_two_consumers() {
    let mut ppt = topics(&[("topic", 3)]);
    let members = vec![
        member("consumer1", &["topic"]),
        member("consumer2", &["topic"]),
    ];
    let a1 = assign(&ppt, &members);
    assert!(is_fully_balanced(&a1));

    ppt.insert("topic2".into(), 3);
    let mut members = rejoin(&members, &a1, GEN);
    for m in &mut members {
        m.topics.push("topic2".into());
    }
    let a2 = assign(&ppt, &members);
    assert_eq!((a2["consumer1"].len(), a2["consumer2"].len()), (3, 3));
    assert!(contains_all(&a2["consumer1"], &a1["consumer1"]));
    assert!(contains_all(&a2["consumer2"], &a1["consumer2"]));

    ppt.remove("topic");
    let mut members = rejoin(&members, &a2, GEN);
    for m in &mut members {
        m.topics = vec!["topic2".into()];
    }
    let a3 = assign(&ppt, &members);
    assert!(is_fully_balanced(&a3));
    assert!(contains_all(&a2["consumer1"], &a3["consumer1"]));
    assert!(contains_all(&a2["consumer2"], &a3["consumer2"]));
}

#[test]
fn reassignment_after_one_consumer_leaves() {
    let ppt: BTreeMap<String, i32> = (1..20).map(|i| (name("t", i, 20), i as i32)).collect();
    let members: Vec<MemberSubscription> = (1..20)
        .map(|i| {
            let subscribed: Vec<String> = (1..=i).map(|j| name("t", j, 20)).collect();
            let subscribed: Vec<&str> = subscribed.iter().map(String::as_str).collect();
            member(&name("c", i, 20), &subscribed)
        })
        .collect();
    let a = assign(&ppt, &members);
    let members: Vec<_> = rejoin(&members, &a, GEN)
        .into_iter()
        .filter(|m| m.member_id != "c10")
        .collect();
    assign(&ppt, &members);
}

#[test]
fn reassignment_after_one_consumer_added() {
    let ppt = topics(&[("topic", 20)]);
    let mut members: Vec<_> = (1..10)
        .map(|i| member(&name("c", i, 10), &["topic"]))
        .collect();
    assign(&ppt, &members);
    members.push(member(&name("c", 10, 10), &["topic"]));
    assign(&ppt, &members);
}

#[test]
fn same_subscriptions() {
    let ppt: BTreeMap<String, i32> = (1..15).map(|i| (name("t", i, 15), i as i32)).collect();
    let all: Vec<&str> = ppt.keys().map(String::as_str).collect();
    let members: Vec<_> = (1..9).map(|i| member(&name("c", i, 9), &all)).collect();
    let a = assign(&ppt, &members);
    let members: Vec<_> = rejoin(&members, &a, GEN)
        .into_iter()
        .filter(|m| m.member_id != name("c", 5, 9))
        .collect();
    assign(&ppt, &members);
}

/// A scaled-down `testLargeAssignmentAndGroupWithUniformSubscription` /
/// `...WithNonEqualSubscription`: large enough to catch accidental blow-ups.
#[test]
fn larger_groups_finish() {
    let ppt: BTreeMap<String, i32> = (0..20).map(|i| (name("t", i, 20), 100)).collect();
    let all: Vec<&str> = ppt.keys().map(String::as_str).collect();
    for non_equal in [false, true] {
        let members: Vec<_> = (0..100)
            .map(|i| {
                let subscribed = if non_equal && i == 99 {
                    &all[..1]
                } else {
                    &all[..]
                };
                member(&name("c", i, 100), subscribed)
            })
            .collect();
        let a = assign(&ppt, &members);
        let members = rejoin(&members[1..], &a, GEN);
        assign(&ppt, &members);
    }
}

#[test]
fn subscription_not_equal_and_assign_same_partition_with_3_generation() {
    let ppt = topics(&[("topic", 6), ("topic1", 1)]);
    let sequences = [
        [1, 2, 3],
        [1, 3, 2],
        [2, 1, 3],
        [2, 3, 1],
        [3, 1, 2],
        [3, 2, 1],
    ];
    for g in sequences {
        let members = [
            owning("consumer1", &["topic"], parts("topic-0, topic-2"), g[0]),
            owning(
                "consumer2",
                &["topic"],
                parts("topic-1, topic-2, topic-3"),
                g[1],
            ),
            owning(
                "consumer3",
                &["topic"],
                parts("topic-2, topic-4, topic-5"),
                g[2],
            ),
            owning("consumer4", &["topic1"], parts("topic1-0"), 2),
        ];
        let a = assign(&ppt, &members);
        for partitions in a.values() {
            assert!((1..=2).contains(&partitions.len()), "{a:?}");
        }
    }
}

/// `testLargeAssignmentWithMultipleConsumersLeavingAndRandomSubscription`, seeded.
#[test]
fn multiple_consumers_leaving_with_random_subscriptions() {
    let mut rng = Lcg::new(7);
    let ppt: BTreeMap<String, i32> = (0..40)
        .map(|i| (name("t", i, 40), rng.below(10) as i32 + 1))
        .collect();
    let members: Vec<MemberSubscription> = (0..200)
        .map(|i| {
            let count = rng.below(20);
            let subscribed: Vec<String> =
                (0..count).map(|_| name("t", rng.below(40), 40)).collect();
            let subscribed: Vec<&str> = subscribed.iter().map(String::as_str).collect();
            member(&name("c", i, 200), &subscribed)
        })
        .collect();
    let a = assign(&ppt, &members);
    let mut members = rejoin(&members, &a, GEN);
    for _ in 0..50 {
        let gone = name("c", rng.below(200), 200);
        members.retain(|m| m.member_id != gone);
    }
    assign(&ppt, &members);
}

#[test]
fn new_subscription() {
    let ppt: BTreeMap<String, i32> = (1..5).map(|i| (name("t", i, 5), 1)).collect();
    let mut members: Vec<MemberSubscription> = (0..3)
        .map(|i: i32| {
            let subscribed: Vec<String> =
                (i..=3 * i - 2).map(|j| name("t", j as usize, 5)).collect();
            let subscribed: Vec<&str> = subscribed.iter().map(String::as_str).collect();
            member(&name("c", i as usize, 3), &subscribed)
        })
        .collect();
    assign(&ppt, &members);
    members[0].topics.push(name("t", 1, 5));
    assign(&ppt, &members);
}

#[test]
fn move_existing_assignments() {
    let ppt: BTreeMap<String, i32> = (1..=6).map(|i| (format!("topic{i}"), 1)).collect();
    let members = [
        owning("consumer1", &["topic1", "topic2"], parts("topic1-0"), GEN),
        owning(
            "consumer2",
            &["topic1", "topic2", "topic3", "topic4"],
            parts("topic2-0, topic3-0"),
            GEN,
        ),
        owning(
            "consumer3",
            &["topic2", "topic3", "topic4", "topic5", "topic6"],
            parts("topic4-0, topic5-0, topic6-0"),
            GEN,
        ),
    ];
    assign(&ppt, &members);
}

#[test]
fn stickiness() {
    let ppt = topics(&[("topic1", 3)]);
    let members: Vec<_> = (1..=4)
        .map(|i| member(&format!("consumer{i}"), &["topic1"]))
        .collect();
    let a = assign(&ppt, &members);
    assert!(a.values().all(|p| p.len() <= 1));

    // Remove the potential group leader.
    let rejoined = rejoin(&members[1..], &a, GEN);
    let b = assign(&ppt, &rejoined);
    for (m, partitions) in &b {
        assert_eq!(partitions.len(), 1);
        assert!(
            contains_all(partitions, &a[m]),
            "stickiness not honoured for {m}"
        );
    }
}

#[test]
fn assignment_updated_for_deleted_topic() {
    let ppt = topics(&[("topic1", 1), ("topic3", 100)]);
    let a = assign(&ppt, &[member("consumer", &["topic1", "topic2", "topic3"])]);
    assert_eq!(a["consumer"].len(), 101);
}

#[test]
fn no_exception_thrown_when_only_subscribed_topic_deleted() {
    let members = [member("consumer", &["topic"])];
    let a = assign(&topics(&[("topic", 3)]), &members);
    let a = assign(&topics(&[]), &rejoin(&members, &a, GEN));
    assert_eq!(a, BTreeMap::from([("consumer".into(), vec![])]));
}

/// `testReassignmentWithRandomSubscriptionsAndChanges`, seeded.
#[test]
fn reassignment_with_random_subscriptions_and_changes() {
    let mut rng = Lcg::new(42);
    for _round in 0..100 {
        let num_topics = 10 + rng.below(10);
        let ppt: BTreeMap<String, i32> = (0..num_topics)
            .map(|i| (name("t", i, 20), i as i32 + 1))
            .collect();
        let all: Vec<String> = ppt.keys().cloned().collect();
        let num_consumers = 20 + rng.below(20);
        let random_sublist = |rng: &mut Lcg| -> Vec<String> {
            let mut list = all.clone();
            for _ in 0..rng.below(list.len()) {
                list.remove(rng.below(list.len()));
            }
            list
        };
        let members: Vec<MemberSubscription> = (0..num_consumers)
            .map(|i| MemberSubscription {
                topics: random_sublist(&mut rng),
                ..member(&name("c", i, 40), &[])
            })
            .collect();
        let a = assign(&ppt, &members);
        let members: Vec<MemberSubscription> = rejoin(&members, &a, GEN)
            .into_iter()
            .map(|m| MemberSubscription {
                topics: random_sublist(&mut rng),
                ..m
            })
            .collect();
        assign(&ppt, &members);
    }
}

#[test]
fn all_consumers_reach_expected_quota_and_are_considered_filled() {
    let members = [
        owning("consumer1", &["topic"], parts("topic-0, topic-1"), GEN),
        owning("consumer2", &["topic"], parts("topic-2"), GEN),
        owning("consumer3", &["topic"], vec![], GEN),
    ];
    let a = assign(&topics(&[("topic", 4)]), &members);
    assert_eq!(a["consumer1"], parts("topic-0, topic-1"));
    assert_eq!(a["consumer2"], parts("topic-2"));
    assert_eq!(a["consumer3"], parts("topic-3"));
}

#[test]
fn owned_partitions_are_invalidated_for_consumer_with_stale_generation() {
    let both = ["topic", "topic2"];
    let owned = parts("topic-0, topic-2, topic2-1");
    for stale in [9, -1] {
        let members = [
            owning("consumer1", &both, owned.clone(), 10),
            owning("consumer2", &both, owned.clone(), stale),
        ];
        let a = assign(&topics(&[("topic", 3), ("topic2", 3)]), &members);
        assert_eq!(a["consumer1"], owned);
        assert_eq!(a["consumer2"], parts("topic-1, topic2-0, topic2-2"));
    }
}

#[test]
fn partitions_claimed_by_multiple_consumers_in_same_generation_are_invalidated() {
    let members = [
        owning("consumer1", &["topic"], parts("topic-0, topic-1"), GEN),
        owning("consumer2", &["topic"], parts("topic-0, topic-2"), GEN),
        owning("consumer3", &["topic"], vec![], GEN),
    ];
    let a = assign(&topics(&[("topic", 3)]), &members);
    assert_eq!(a["consumer1"], parts("topic-1"));
    assert_eq!(a["consumer2"], parts("topic-2"));
    assert_eq!(a["consumer3"], parts("topic-0"));

    // StickyAssignorTest: the same with four partitions.
    let a = assign(&topics(&[("topic", 4)]), &members);
    assert_eq!(a["consumer1"], parts("topic-1, topic-3"));
    assert_eq!(a["consumer2"], parts("topic-2"));
    assert_eq!(a["consumer3"], parts("topic-0"));
}

#[test]
fn ensure_partitions_assigned_to_highest_generation() {
    let all = ["topic", "topic2", "topic3"];
    let members = [
        owning("consumer1", &all, parts("topic-0, topic2-0, topic3-0"), 10),
        owning("consumer2", &all, parts("topic-1, topic2-1, topic3-1"), 9),
        owning("consumer3", &all, parts("topic2-1, topic3-0, topic3-2"), 8),
    ];
    let a = assign(
        &topics(&[("topic", 3), ("topic2", 3), ("topic3", 3)]),
        &members,
    );
    assert_eq!(a["consumer1"], parts("topic-0, topic2-0, topic3-0"));
    assert_eq!(a["consumer2"], parts("topic-1, topic2-1, topic3-1"));
    assert_eq!(a["consumer3"], parts("topic-2, topic2-2, topic3-2"));
}

#[test]
fn no_reassignment_on_current_members() {
    let all = ["topic", "topic2", "topic3", "topic1"];
    let ppt = topics(&[("topic", 3), ("topic1", 3), ("topic2", 3), ("topic3", 3)]);
    let members = [
        owning("consumer1", &all, vec![], -1),
        owning("consumer2", &all, parts("topic-0, topic2-0, topic1-0"), 9),
        owning("consumer3", &all, parts("topic3-2, topic2-2, topic1-1"), 8),
        owning("consumer4", &all, parts("topic3-1, topic-1, topic-2"), 7),
    ];
    let a = assign(&ppt, &members);
    assert_eq!(a["consumer1"], parts("topic1-2, topic2-1, topic3-0"));
    for m in &members[1..] {
        assert_eq!(
            a[&m.member_id],
            parts(
                &m.owned
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        );
    }
}

#[test]
fn owned_partitions_are_invalidated_for_consumer_with_multiple_generation() {
    let both = ["topic", "topic2"];
    let members = [
        owning("consumer1", &both, parts("topic-0, topic2-1, topic-1"), 10),
        owning("consumer2", &both, parts("topic-0, topic2-1, topic2-2"), 8),
    ];
    let a = assign(&topics(&[("topic", 3), ("topic2", 3)]), &members);
    assert_eq!(a["consumer1"], parts("topic-0, topic2-1, topic-1"));
    assert_eq!(a["consumer2"], parts("topic-2, topic2-2, topic2-0"));
}

/// The non-rack-aware expectations of `testRackAwareAssignmentWithUniformSubscription`,
/// from scratch and with the expected assignment already owned.
#[test]
fn uniform_subscription_expected_assignment() {
    let ppt = topics(&[("t1", 6), ("t2", 7), ("t3", 2)]);
    let all = ["t1", "t2", "t3"];
    let expected = [
        "t1-0, t1-3, t2-0, t2-3, t2-6",
        "t1-1, t1-4, t2-1, t2-4, t3-0",
        "t1-2, t1-5, t2-2, t2-5, t3-1",
    ];
    let fresh: Vec<_> = (0..3)
        .map(|i| member(&format!("consumer{i}"), &all))
        .collect();
    let owned: Vec<_> = (0..3)
        .map(|i| owning(&format!("consumer{i}"), &all, parts(expected[i]), -1))
        .collect();
    for members in [fresh, owned] {
        let a = assign(&ppt, &members);
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(a[&format!("consumer{i}")], parts(e));
        }
    }
}

/// The non-rack-aware expectations of `testRackAwareAssignmentWithNonEqualSubscription`,
/// from scratch and with the expected assignment already owned.
#[test]
fn non_equal_subscription_expected_assignment() {
    let ppt = topics(&[("t1", 6), ("t2", 7), ("t3", 2)]);
    let subs: [&[&str]; 3] = [&["t1", "t2", "t3"], &["t1", "t2", "t3"], &["t1", "t3"]];
    let expected = [
        "t1-5, t2-0, t2-2, t2-4, t2-6",
        "t1-3, t2-1, t2-3, t2-5, t3-0",
        "t1-0, t1-1, t1-2, t1-4, t3-1",
    ];
    let fresh: Vec<_> = (0..3)
        .map(|i| member(&format!("consumer{i}"), subs[i]))
        .collect();
    let owned: Vec<_> = (0..3)
        .map(|i| owning(&format!("consumer{i}"), subs[i], parts(expected[i]), -1))
        .collect();
    for members in [fresh, owned] {
        let a = assign(&ppt, &members);
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(a[&format!("consumer{i}")], parts(e));
        }
    }
}

#[test]
fn assignment_with_multiple_generations_1() {
    for all_equal in [true, false] {
        let all = ["topic", "topic2"];
        let c2_topics: &[&str] = if all_equal { &all } else { &["topic"] };
        let ppt = topics(&[("topic", 6), ("topic2", 6)]);
        let members = vec![
            member("consumer1", &all),
            member("consumer2", c2_topics),
            member("consumer3", &all),
        ];
        let r1 = assign(&ppt, &members);
        assert!(r1.values().all(|p| p.len() == 4));

        let round2 = rejoin(&members[..2], &r1, GEN);
        let r2 = assign(&ppt, &round2);
        assert!(r2.values().all(|p| p.len() == 6));
        if all_equal {
            assert!(contains_all(&r2["consumer1"], &r1["consumer1"]));
        }
        assert!(contains_all(&r2["consumer2"], &r1["consumer2"]));
        assert!(!set(&r2["consumer2"]).is_disjoint(&set(&r1["consumer3"])));

        let round3 = [
            owning("consumer2", c2_topics, r2["consumer2"].clone(), 2),
            owning("consumer3", &all, r1["consumer3"].clone(), 1),
        ];
        let r3 = assign(&ppt, &round3);
        assert!(r3.values().all(|p| p.len() == 6));
    }
}

#[test]
fn assignment_with_multiple_generations_2() {
    for all_equal in [true, false] {
        let all = ["topic", "topic2", "topic3"];
        let c1_topics: &[&str] = if all_equal { &all } else { &["topic"] };
        let c3_topics: &[&str] = if all_equal {
            &all
        } else {
            &["topic", "topic2"]
        };
        let ppt = topics(&[("topic", 4), ("topic2", 4), ("topic3", 4)]);
        let members = vec![
            member("consumer1", c1_topics),
            member("consumer2", &all),
            member("consumer3", c3_topics),
        ];
        let r1 = assign(&ppt, &members);
        assert!(r1.values().all(|p| p.len() == 4));

        let round2 = [owning("consumer2", &all, r1["consumer2"].clone(), 1)];
        let r2 = assign(&ppt, &round2);
        assert_eq!(r2["consumer2"].len(), 12);

        let round3 = [
            owning("consumer1", c1_topics, r1["consumer1"].clone(), 1),
            owning("consumer2", &all, r2["consumer2"].clone(), 2),
            owning("consumer3", c3_topics, r1["consumer3"].clone(), 1),
        ];
        let r3 = assign(&ppt, &round3);
        assert!(r3.values().all(|p| p.len() == 4));
    }
}

#[test]
fn assignment_with_conflicting_previous_generations() {
    for all_equal in [true, false] {
        let all = ["topic", "topic2", "topic3"];
        let c1_topics: &[&str] = if all_equal { &all } else { &["topic"] };
        let c2_topics: &[&str] = if all_equal {
            &all
        } else {
            &["topic", "topic2"]
        };
        let ppt = topics(&[("topic", 4), ("topic2", 4), ("topic3", 4)]);
        let c1_owned = if all_equal {
            parts("topic-0, topic-1, topic-2, topic2-2, topic2-3, topic3-0")
        } else {
            parts("topic-0, topic-1, topic-2, topic-3")
        };
        let c2_owned = parts("topic-0, topic-1, topic2-0, topic2-1, topic2-2, topic2-3");
        let c3_owned = parts("topic-2, topic-3, topic3-0, topic3-1, topic3-2, topic3-3");
        let members = [
            owning("consumer1", c1_topics, c1_owned, 1),
            owning("consumer2", c2_topics, c2_owned.clone(), 2),
            owning("consumer3", &all, c3_owned.clone(), 2),
        ];
        let a = assign(&ppt, &members);
        assert!(a.values().all(|p| p.len() == 4));
        assert!(contains_all(&c2_owned, &a["consumer2"]));
        assert!(contains_all(&c3_owned, &a["consumer3"]));
    }
}

#[test]
fn schema_backward_compatibility() {
    // consumer2's claim comes without a generation (Kafka's V0 user data).
    let members = [
        owning("consumer1", &["topic"], parts("topic-0, topic-2"), 1),
        owning("consumer2", &["topic"], parts("topic-1"), -1),
        member("consumer3", &["topic"]),
    ];
    let a = assign(&topics(&[("topic", 3)]), &members);
    assert!(a.values().all(|p| p.len() == 1));
    assert!(contains_all(&parts("topic-0, topic-2"), &a["consumer1"]));
    assert_eq!(a["consumer2"], parts("topic-1"));
}

#[test]
fn assignor_with_old_version_subscriptions() {
    let members = [
        owning("consumer1", &["topic1"], parts("topic1-0"), GEN),
        owning("consumer2", &["topic1"], parts("topic1-1"), GEN),
        owning("consumer3", &["topic1"], vec![], GEN),
    ];
    let a = assign(&topics(&[("topic1", 3)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0"));
    assert_eq!(a["consumer2"], parts("topic1-1"));
    assert_eq!(a["consumer3"], parts("topic1-2"));
}

#[test]
fn input_order_does_not_matter() {
    let all = ["a", "b"];
    let ppt = topics(&[("a", 5), ("b", 4)]);
    let members = vec![
        owning("m2", &all, parts("a-0, a-1, b-3"), 3),
        owning("m1", &["a"], parts("a-1, a-2"), 2),
        owning("m3", &all, parts("b-0, b-1, b-2, a-4"), 3),
    ];
    let mut reversed = members.clone();
    reversed.reverse();
    assert_eq!(assign(&ppt, &members), assign(&ppt, &reversed));
}
