//! Ported from Kafka's `RoundRobinAssignorTest`.

use super::*;

fn assign(ppt: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> Assignment {
    let assignment = RoundRobinAssignor.assign(ppt, members);
    verify_validity(ppt, members, &assignment, true);
    assignment
}

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
    let a = assign(&topics(&[]), &[member("consumer", &[])]);
    assert_eq!(a, BTreeMap::from([("consumer".into(), vec![])]));
}

#[test]
fn one_consumer_nonexistent_topic() {
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
    let ppt = topics(&[("topic", 3), ("other", 3)]);
    let a = assign(&ppt, &[member("consumer", &["topic"])]);
    assert_eq!(a["consumer"], parts("topic-0, topic-1, topic-2"));
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
    assert_eq!(a["consumer1"], parts("topic-0"));
    assert_eq!(a["consumer2"], vec![]);
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
    assert_eq!(a["consumer1"], parts("topic1-0, topic1-2, topic2-1"));
    assert_eq!(a["consumer2"], parts("topic1-1, topic2-0, topic2-2"));
}

/// The example in the `RoundRobinAssignor` javadoc: differing subscriptions leave it uneven.
#[test]
fn javadoc_uneven_example() {
    let members = [
        member("C0", &["t0"]),
        member("C1", &["t0", "t1"]),
        member("C2", &["t0", "t1", "t2"]),
    ];
    let a = assign(&topics(&[("t0", 1), ("t1", 2), ("t2", 3)]), &members);
    assert_eq!(a["C0"], parts("t0-0"));
    assert_eq!(a["C1"], parts("t1-0"));
    assert_eq!(a["C2"], parts("t1-1, t2-0, t2-1, t2-2"));
}

#[test]
fn two_static_consumers_two_topics_six_partitions() {
    let both = ["topic1", "topic2"];
    let members = [
        static_member("consumer-b", "instance1", &both),
        static_member("consumer-a", "instance2", &both),
    ];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 3)]), &members);
    assert_eq!(a["consumer-b"], parts("topic1-0, topic1-2, topic2-1"));
    assert_eq!(a["consumer-a"], parts("topic1-1, topic2-0, topic2-2"));
}

#[test]
fn one_static_consumer_and_one_dynamic_consumer_two_topics_six_partitions() {
    let both = ["topic1", "topic2"];
    let members = [
        static_member("consumer-b", "instance1", &both),
        member("consumer-a", &both),
    ];
    let a = assign(&topics(&[("topic1", 3), ("topic2", 3)]), &members);
    assert_eq!(a["consumer-b"], parts("topic1-0, topic1-2, topic2-1"));
    assert_eq!(a["consumer-a"], parts("topic1-1, topic2-0, topic2-2"));
}

#[test]
fn static_member_round_robin_assignment_persistent() {
    let both = ["topic1", "topic2"];
    let ppt = topics(&[("topic1", 3), ("topic2", 3)]);
    let mut members = vec![
        static_member("consumer1", "instance1", &both),
        static_member("consumer2", "instance2", &both),
        static_member("consumer3", "instance3", &both),
        member("consumer4", &both),
    ];
    let mut expected: Assignment = BTreeMap::from([
        ("consumer1".into(), parts("topic1-0, topic2-1")),
        ("consumer2".into(), parts("topic1-1, topic2-2")),
        ("consumer3".into(), parts("topic1-2")),
        ("consumer4".into(), parts("topic2-0")),
    ]);
    assert_eq!(assign(&ppt, &members), expected);

    members[3] = member("consumer5", &both);
    let c4 = expected.remove("consumer4").unwrap();
    expected.insert("consumer5".into(), c4);
    assert_eq!(assign(&ppt, &members), expected);
}

#[test]
fn static_member_round_robin_assignment_persistent_after_member_id_changes() {
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
            parts("topic1-0, topic1-3, topic2-1, topic2-4"),
        ),
        (
            "instance2".to_string(),
            parts("topic1-1, topic1-4, topic2-2"),
        ),
        (
            "instance3".to_string(),
            parts("topic1-2, topic2-0, topic2-3"),
        ),
    ]);
    assert_eq!(by_instance(&members, &assign(&ppt, &members)), expected);

    members[2].member_id = "consumer4".into();
    members[1].member_id = "consumer5".into();
    assert_eq!(by_instance(&members, &assign(&ppt, &members)), expected);
}
