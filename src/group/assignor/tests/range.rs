//! Ported from Kafka's `RangeAssignorTest` (the cases without racks).

use super::*;

fn assign(ppt: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> Assignment {
    let assignment = RangeAssignor.assign(ppt, members);
    verify_validity(ppt, members, &assignment, true);
    assignment
}

/// Assignment keyed by instance id (Kafka's `checkStaticAssignment`).
fn by_instance(
    members: &[MemberSubscription],
    assignment: &Assignment,
) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .filter_map(|m| {
            m.instance_id
                .clone()
                .map(|i| (i, assignment[&m.member_id].clone()))
        })
        .collect()
}

#[test]
fn one_consumer_no_topic() {
    let a = assign(&topics(&[]), &[member("consumer1", &[])]);
    assert_eq!(a, BTreeMap::from([("consumer1".into(), vec![])]));
}

#[test]
fn one_consumer_nonexistent_topic() {
    let a = assign(&topics(&[]), &[member("consumer1", &["topic1"])]);
    assert_eq!(a, BTreeMap::from([("consumer1".into(), vec![])]));
}

#[test]
fn one_consumer_one_topic() {
    let a = assign(
        &topics(&[("topic1", 3)]),
        &[member("consumer1", &["topic1"])],
    );
    assert_eq!(a["consumer1"], parts("topic1-0, topic1-1, topic1-2"));
}

#[test]
fn only_assigns_partitions_from_subscribed_topics() {
    let ppt = topics(&[("topic1", 3), ("other", 3)]);
    let a = assign(&ppt, &[member("consumer1", &["topic1"])]);
    assert_eq!(a["consumer1"], parts("topic1-0, topic1-1, topic1-2"));
}

#[test]
fn one_consumer_multiple_topics() {
    let ppt = topics(&[("topic1", 1), ("topic2", 2)]);
    let a = assign(&ppt, &[member("consumer1", &["topic1", "topic2"])]);
    assert_eq!(a["consumer1"], parts("topic1-0, topic2-0, topic2-1"));
}

#[test]
fn two_consumers_one_topic_one_partition() {
    let members = [
        member("consumer1", &["topic1"]),
        member("consumer2", &["topic1"]),
    ];
    let a = assign(&topics(&[("topic1", 1)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0"));
    assert_eq!(a["consumer2"], vec![]);
}

#[test]
fn two_consumers_one_topic_two_partitions() {
    let members = [
        member("consumer1", &["topic1"]),
        member("consumer2", &["topic1"]),
    ];
    let a = assign(&topics(&[("topic1", 2)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0"));
    assert_eq!(a["consumer2"], parts("topic1-1"));
}

#[test]
fn multiple_consumers_mixed_topics() {
    let members = [
        member("consumer1", &["topic1"]),
        member("consumer2", &["topic1", "topic2"]),
        member("consumer3", &["topic1"]),
    ];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 2)]), &members);
    assert_eq!(a["consumer1"], parts("topic1-0"));
    assert_eq!(a["consumer2"], parts("topic1-1, topic2-0, topic2-1"));
    assert_eq!(a["consumer3"], parts("topic1-2"));
}

#[test]
fn two_consumers_two_topics_six_partitions() {
    let both = ["topic1", "topic2"];
    let members = [member("consumer1", &both), member("consumer2", &both)];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 3)]), &members);
    assert_eq!(
        a["consumer1"],
        parts("topic1-0, topic1-1, topic2-0, topic2-1")
    );
    assert_eq!(a["consumer2"], parts("topic1-2, topic2-2"));
}

#[test]
fn two_static_consumers_two_topics_six_partitions() {
    // consumer-a sorts before consumer-b, but instance ids decide.
    let both = ["topic1", "topic2"];
    let members = [
        static_member("consumer-b", "instance1", &both),
        static_member("consumer-a", "instance2", &both),
    ];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 3)]), &members);
    assert_eq!(
        a["consumer-b"],
        parts("topic1-0, topic1-1, topic2-0, topic2-1")
    );
    assert_eq!(a["consumer-a"], parts("topic1-2, topic2-2"));
}

#[test]
fn one_static_consumer_and_one_dynamic_consumer_two_topics_six_partitions() {
    // The static member comes first whatever the member ids.
    let both = ["topic1", "topic2"];
    let members = [
        static_member("consumer-b", "instance1", &both),
        member("consumer-a", &both),
    ];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 3)]), &members);
    assert_eq!(
        a["consumer-b"],
        parts("topic1-0, topic1-1, topic2-0, topic2-1")
    );
    assert_eq!(a["consumer-a"], parts("topic1-2, topic2-2"));
}

#[test]
fn static_member_range_assignment_persistent() {
    let both = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 5), ("topic2", 4)]);
    let mut members = vec![
        static_member("consumer1", "instance1", &both),
        static_member("consumer2", "instance2", &both),
        static_member("consumer3", "instance3", &both),
        member("consumer4", &both),
    ];
    let mut expected: Assignment = BTreeMap::from([
        ("consumer1".into(), parts("topic1-0, topic1-1, topic2-0")),
        ("consumer2".into(), parts("topic1-2, topic2-1")),
        ("consumer3".into(), parts("topic1-3, topic2-2")),
        ("consumer4".into(), parts("topic1-4, topic2-3")),
    ]);
    assert_eq!(assign(&ppt, &members), expected);

    // Replace dynamic member 4 with a new dynamic member 5.
    members[3] = member("consumer5", &both);
    let c4 = expected.remove("consumer4").unwrap();
    expected.insert("consumer5".into(), c4);
    assert_eq!(assign(&ppt, &members), expected);
}

#[test]
fn static_member_range_assignment_persistent_after_member_id_changes() {
    let both = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 5), ("topic2", 5)]);
    let mut members = vec![
        static_member("consumer1", "instance1", &both),
        static_member("consumer2", "instance2", &both),
        static_member("consumer3", "instance3", &both),
    ];
    let expected = BTreeMap::from([
        (
            "instance1".to_string(),
            parts("topic1-0, topic1-1, topic2-0, topic2-1"),
        ),
        (
            "instance2".to_string(),
            parts("topic1-2, topic1-3, topic2-2, topic2-3"),
        ),
        ("instance3".to_string(), parts("topic1-4, topic2-4")),
    ]);
    assert_eq!(by_instance(&members, &assign(&ppt, &members)), expected);

    // Same instances under new member ids: same assignment per instance.
    members[2].member_id = "consumer4".into();
    members[1].member_id = "consumer5".into();
    assert_eq!(by_instance(&members, &assign(&ppt, &members)), expected);
}

#[test]
fn input_order_does_not_matter() {
    let both = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 5), ("topic2", 3)]);
    let members = vec![
        member("b", &both),
        member("c", &["topic1"]),
        member("a", &both),
    ];
    let mut reversed = members.clone();
    reversed.reverse();
    assert_eq!(assign(&ppt, &members), assign(&ppt, &reversed));
}
