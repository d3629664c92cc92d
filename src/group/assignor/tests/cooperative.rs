//! The cooperative-sticky assignor: Kafka's `AbstractStickyAssignorTest` expectations on
//! `partitionsTransferringOwnership` (the partitions withheld in the first round), and
//! `CooperativeStickyAssignorTest`'s check that no partition is handed to a new owner in the
//! same round its old owner must revoke it, with follow-up rebalances converging on a valid,
//! balanced assignment.

use super::*;

const GEN: i32 = 1;

fn coop(ppt: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> Assignment {
    let a = CooperativeStickyAssignor.assign(ppt, members);
    verify_validity(ppt, members, &a, false);
    a
}

/// The partitions the sticky target gives a member but the cooperative round withholds.
fn withheld(
    ppt: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
) -> BTreeMap<TopicPartition, String> {
    let target = sticky_target(ppt, members);
    let round = coop(ppt, members);
    let mut out = BTreeMap::new();
    for (m, partitions) in &target {
        assert!(
            contains(partitions, &round[m]),
            "cooperative round is a subset of the target"
        );
        for p in partitions {
            if !round[m].contains(p) {
                out.insert(p.clone(), m.clone());
            }
        }
    }
    out
}

fn contains(outer: &[TopicPartition], inner: &[TopicPartition]) -> bool {
    inner.iter().all(|p| outer.contains(p))
}

fn transfers(list: &[(&str, i32, &str)]) -> BTreeMap<TopicPartition, String> {
    list.iter()
        .map(|&(t, p, m)| (tp(t, p), m.to_string()))
        .collect()
}

/// Port of `CooperativeStickyAssignorTest.verifyValidityAndBalance`: rebalance until nobody
/// has anything to revoke (at most four follow-ups), checking every round that nothing is
/// given to one member while revoked from another; then the result must be valid, balanced
/// and equal to the sticky target.
fn converge(ppt: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> Assignment {
    let mut members = members.to_vec();
    let mut generation = members
        .iter()
        .map(|m| m.generation)
        .max()
        .unwrap_or(0)
        .max(0);
    for _ in 0..=4 {
        let a = coop(ppt, &members);
        let mut added = BTreeSet::new();
        let mut revoked = BTreeSet::new();
        for m in &members {
            let now = &a[&m.member_id];
            revoked.extend(m.owned.iter().filter(|p| !now.contains(p)).cloned());
            added.extend(now.iter().filter(|p| !m.owned.contains(p)).cloned());
        }
        let both: Vec<_> = added.intersection(&revoked).collect();
        assert!(both.is_empty(), "assigned while being revoked: {both:?}");
        if revoked.is_empty() {
            verify_validity_and_balance(ppt, &members, &a);
            verify_equal_subscriptions_balanced(&members, &a);
            assert_eq!(a, sticky_target(ppt, &members));
            return a;
        }
        generation += 1;
        members = rejoin(&members, &a, generation);
    }
    panic!("cooperative rebalancing did not converge within four follow-ups");
}

#[test]
fn fresh_group_gets_everything_at_once() {
    let all = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 3), ("topic2", 4)]);
    let members = [member("consumer1", &all), member("consumer2", &all)];
    assert!(withheld(&ppt, &members).is_empty());
    assert_eq!(coop(&ppt, &members), sticky_target(&ppt, &members));
}

#[test]
fn add_remove_consumer_one_topic() {
    let ppt = topics(&[("topic", 3)]);
    let members = [
        owning(
            "consumer1",
            &["topic"],
            parts("topic-0, topic-1, topic-2"),
            GEN,
        ),
        owning("consumer2", &["topic"], vec![], GEN),
    ];
    assert_eq!(
        withheld(&ppt, &members),
        transfers(&[("topic", 2, "consumer2")])
    );
    let a = coop(&ppt, &members);
    assert_eq!(a["consumer1"], parts("topic-0, topic-1"));
    assert_eq!(a["consumer2"], vec![]);

    // The follow-up, after consumer1 revoked topic-2.
    let a = coop(&ppt, &rejoin(&members, &a, GEN + 1));
    assert_eq!(a["consumer1"], parts("topic-0, topic-1"));
    assert_eq!(a["consumer2"], parts("topic-2"));
    converge(&ppt, &members);
}

#[test]
fn max_quota_consumer_more_than_num_expected_max_capacity_members() {
    let both = ["topic1", "topic2"];
    let members = [
        owning("consumer1", &both, parts("topic1-0, topic2-0"), GEN),
        owning("consumer2", &both, parts("topic1-1, topic2-1"), GEN),
        owning("consumer3", &both, vec![], GEN),
    ];
    let ppt = topics(&[("topic1", 2), ("topic2", 2)]);
    // Kafka: {topic2-0: consumer3}; mirrored roles of consumer1/2, see tests/sticky.rs.
    assert_eq!(
        withheld(&ppt, &members),
        transfers(&[("topic2", 1, "consumer3")])
    );
    converge(&ppt, &members);
}

#[test]
fn add_remove_two_consumers_two_topics() {
    let all = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 3), ("topic2", 4)]);
    let members = [
        owning(
            "consumer1",
            &all,
            parts("topic1-0, topic1-2, topic2-1, topic2-3"),
            GEN,
        ),
        owning(
            "consumer2",
            &all,
            parts("topic1-1, topic2-0, topic2-2"),
            GEN,
        ),
        owning("consumer3", &all, vec![], GEN),
        owning("consumer4", &all, vec![], GEN),
    ];
    let expected = transfers(&[
        ("topic1", 2, "consumer3"),
        ("topic2", 3, "consumer3"),
        ("topic2", 2, "consumer4"),
    ]);
    assert_eq!(withheld(&ppt, &members), expected);
    converge(&ppt, &members);
}

#[test]
fn partition_claimed_by_multiple_consumers_in_same_generation_is_withheld() {
    let members = [
        owning("consumer1", &["topic"], parts("topic-0, topic-1"), GEN),
        owning("consumer2", &["topic"], parts("topic-0, topic-2"), GEN),
        owning("consumer3", &["topic"], vec![], GEN),
    ];
    let ppt = topics(&[("topic", 3)]);
    assert_eq!(
        withheld(&ppt, &members),
        transfers(&[("topic", 0, "consumer3")])
    );
    converge(&ppt, &members);
}

#[test]
fn stale_claims_are_not_withheld() {
    let both = ["topic", "topic2"];
    let owned = parts("topic-0, topic-2, topic2-1");
    let ppt = topics(&[("topic", 3), ("topic2", 3)]);
    for stale in [9, -1] {
        let members = [
            owning("consumer1", &both, owned.clone(), 10),
            owning("consumer2", &both, owned.clone(), stale),
        ];
        assert!(withheld(&ppt, &members).is_empty());
    }
    let all = ["topic", "topic2", "topic3"];
    let ppt = topics(&[("topic", 3), ("topic2", 3), ("topic3", 3)]);
    let members = [
        owning("consumer1", &all, parts("topic-0, topic2-0, topic3-0"), 10),
        owning("consumer2", &all, parts("topic-1, topic2-1, topic3-1"), 9),
        owning("consumer3", &all, parts("topic2-1, topic3-0, topic3-2"), 8),
    ];
    assert!(withheld(&ppt, &members).is_empty());
}

#[test]
fn no_reassignment_on_current_members_withholds_nothing() {
    let all = ["topic", "topic2", "topic3", "topic1"];
    let ppt = topics(&[("topic", 3), ("topic1", 3), ("topic2", 3), ("topic3", 3)]);
    let members = [
        owning("consumer1", &all, vec![], -1),
        owning("consumer2", &all, parts("topic-0, topic2-0, topic1-0"), 9),
        owning("consumer3", &all, parts("topic3-2, topic2-2, topic1-1"), 8),
        owning("consumer4", &all, parts("topic3-1, topic-1, topic-2"), 7),
    ];
    assert!(withheld(&ppt, &members).is_empty());
}

/// `testRackAwareAssignmentWithNonEqualSubscription`, cooperative branch with all racks
/// matching: the first round withholds what changes owner, the second completes it.
#[test]
fn non_equal_subscription_two_rounds() {
    let ppt = topics(&[("t1", 6), ("t2", 7), ("t3", 2)]);
    let subs: [&[&str]; 3] = [&["t1", "t2", "t3"], &["t1", "t2", "t3"], &["t1", "t3"]];
    let owned = [
        "t1-0, t1-1, t1-2, t1-3, t1-4",
        "t1-5, t2-0, t2-1, t2-2, t2-3",
        "t2-4, t2-5, t2-6, t3-0, t3-1",
    ];
    let intermediate = ["t1-2, t1-3, t1-4", "t2-0, t2-1, t2-2, t2-3", "t3-0, t3-1"];
    let expected = [
        "t1-2, t1-3, t1-4, t2-4, t2-5",
        "t2-0, t2-1, t2-2, t2-3, t2-6",
        "t1-0, t1-1, t1-5, t3-0, t3-1",
    ];
    let round = |owned: [&str; 3]| -> Assignment {
        let members: Vec<_> = (0..3)
            .map(|i| owning(&format!("consumer{i}"), subs[i], parts(owned[i]), -1))
            .collect();
        coop(&ppt, &members)
    };
    let a = round(owned);
    for (i, e) in intermediate.iter().enumerate() {
        assert_eq!(a[&format!("consumer{i}")], parts(e));
    }
    let a = round(intermediate);
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(a[&format!("consumer{i}")], parts(e));
    }
}

#[test]
fn stickiness_converges() {
    let ppt = topics(&[("topic1", 3)]);
    let members: Vec<_> = (1..=4)
        .map(|i| member(&format!("consumer{i}"), &["topic1"]))
        .collect();
    let a = converge(&ppt, &members);
    let b = converge(&ppt, &rejoin(&members[1..], &a, GEN));
    for (m, partitions) in &b {
        assert_eq!(partitions.len(), 1);
        assert!(contains(partitions, &a[m]));
    }
}

#[test]
fn topic_balance_after_reassignment_converges() {
    let all = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 12), ("topic2", 12)]);
    let mut members = vec![member("consumer1", &all)];
    let mut a = converge(&ppt, &members);
    for added in ["consumer2", "consumer3", "consumer4"] {
        members = rejoin(&members, &a, GEN);
        members.push(owning(added, &all, vec![], GEN));
        a = converge(&ppt, &members);
    }
    members = rejoin(&members[2..], &a, GEN);
    converge(&ppt, &members);
}

/// `testReassignmentWithRandomSubscriptionsAndChanges` under the cooperative protocol.
#[test]
fn random_subscriptions_and_changes_converge() {
    let mut rng = Lcg::new(1234);
    for _round in 0..30 {
        let num_topics = 3 + rng.below(6);
        let ppt: BTreeMap<String, i32> = (0..num_topics)
            .map(|i| (name("t", i, 20), i as i32 + 1))
            .collect();
        let all: Vec<String> = ppt.keys().cloned().collect();
        let random_sublist = |rng: &mut Lcg| -> Vec<String> {
            let mut list = all.clone();
            for _ in 0..rng.below(list.len()) {
                list.remove(rng.below(list.len()));
            }
            list
        };
        let members: Vec<MemberSubscription> = (0..3 + rng.below(8))
            .map(|i| MemberSubscription {
                topics: random_sublist(&mut rng),
                ..member(&name("c", i, 40), &[])
            })
            .collect();
        let a = converge(&ppt, &members);
        let members: Vec<MemberSubscription> = rejoin(&members, &a, GEN)
            .into_iter()
            .map(|m| MemberSubscription {
                topics: random_sublist(&mut rng),
                ..m
            })
            .collect();
        converge(&ppt, &members);
    }
}
