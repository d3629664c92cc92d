//! Consumer groups on a Kafka cluster, as `spool group` shows and changes them: the same
//! [`GroupView`]s as the local store's (see [`crate::group::view`]), built from Kafka's own
//! answers, and deletion of groups and of their offsets.
//!
//! A view is built from ListGroups/DescribeGroups (state, protocol, members with their
//! subscriptions and assignments, decoded from Kafka's consumer protocol), the group's
//! committed offsets (OffsetFetch) and, for the offsets view, each partition's log start and
//! end offsets (ListOffsets). What only a local store knows (a member's pid, last heartbeat and
//! session timeout, the generation, the rebalance history) is left empty: a Kafka coordinator
//! does not tell it. A group Kafka describes as `Dead` does not exist, as for
//! kafka-consumer-groups.sh.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Decodable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::groups::GroupInfo;
use rdkafka::TopicPartitionList;

use super::group_admin::{self, GroupAdminError};
use super::{Cluster, ClusterContext, ClusterError};
use crate::group::assignor::TopicPartition;
use crate::group::reset::{Action, DeletedOffset};
use crate::group::state::GroupPhase;
use crate::group::view::{GroupView, MemberStatus, MemberView, PartitionView, ViewOptions};

/// A member that keeps a Kafka group active, as the coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveMember {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
}

impl std::fmt::Display for ActiveMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (client {} on {})",
            self.member_id, self.client_id, self.host
        )
    }
}

/// Errors of the group operations on a cluster.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("consumer group '{group}' does not exist on the Kafka cluster at {brokers}")]
    NotFound { group: String, brokers: String },
    #[error("{}", active_message(group, *action, state, members))]
    Active {
        group: String,
        action: Action,
        state: String,
        members: Vec<ActiveMember>,
    },
    #[error("cannot delete the offsets of topic '{topic}': consumer group '{group}' is subscribed to it (Kafka refuses it while a member consumes the topic)")]
    Subscribed { group: String, topic: String },
    #[error("cannot shift the offset of {topic}/{partition} in consumer group '{group}': it has no committed offset to shift")]
    NoCommittedOffset {
        group: String,
        topic: String,
        partition: i32,
    },
    #[error("consumer group '{0}' has no committed offsets, so --all-topics selects nothing")]
    NothingCommitted(String),
}

fn active_message(group: &str, action: Action, state: &str, members: &[ActiveMember]) -> String {
    let what = match action {
        Action::ResetOffsets => {
            format!(
                "offsets of consumer group '{group}' can only be reset if the group is inactive"
            )
        }
        Action::Delete => {
            format!("consumer group '{group}' can only be deleted if it has no live members")
        }
    };
    let n = members.len();
    let list: Vec<String> = members.iter().map(ToString::to_string).collect();
    format!(
        "{what}, but its state is {state} with {n} live member{}{}{}",
        if n == 1 { "" } else { "s" },
        if n == 0 { "" } else { ": " },
        list.join(", ")
    )
}

/// A client for the group requests: a consumer without a group of its own.
pub(crate) fn client(cluster: &Cluster) -> Result<BaseConsumer<ClusterContext>, ClusterError> {
    cluster.consumer(&[])
}

/// Maps an error of the group admin requests.
pub(crate) fn admin_error(cluster: &Cluster, group: &str, e: GroupAdminError) -> GroupsError {
    match e.code() {
        Some(RDKafkaErrorCode::GroupIdNotFound) => GroupsError::NotFound {
            group: group.to_owned(),
            brokers: cluster.brokers().to_owned(),
        },
        Some(code) => {
            GroupsError::Cluster(cluster.error(&e.to_string(), KafkaError::AdminOp(code)))
        }
        None => GroupsError::Cluster(cluster.unreachable()),
    }
}

/// The coordinator's description of groups: one (`Some`) or all.
fn group_infos(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    group: Option<&str>,
) -> Result<Vec<Described>, ClusterError> {
    let list = client
        .fetch_group_list(group, cluster.timeout())
        .map_err(|e| {
            // librdkafka queues its errors for the next poll: serve them, so the error can
            // say why the cluster could not be reached.
            for _ in 0..100 {
                if client.poll(std::time::Duration::ZERO).is_none() {
                    break;
                }
            }
            cluster.error("list the consumer groups", e)
        })?;
    Ok(list.groups().iter().map(Described::from).collect())
}

/// What DescribeGroups says of a group, decoded.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub name: String,
    pub state: String,
    pub protocol: String,
    pub protocol_type: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug, Clone)]
pub(crate) struct DescribedMember {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    pub topics: Vec<String>,
    pub assignment: Vec<TopicPartition>,
}

impl From<&GroupInfo> for Described {
    fn from(g: &GroupInfo) -> Self {
        Described {
            name: g.name().to_owned(),
            state: g.state().to_owned(),
            protocol: g.protocol().to_owned(),
            protocol_type: g.protocol_type().to_owned(),
            members: g
                .members()
                .iter()
                .map(|m| DescribedMember {
                    member_id: m.id().to_owned(),
                    client_id: m.client_id().to_owned(),
                    host: m.client_host().to_owned(),
                    topics: m.metadata().map(decode_subscription).unwrap_or_default(),
                    assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl Described {
    /// Kafka's `Dead` (or an empty answer) is a group that does not exist.
    pub fn exists(&self) -> bool {
        !self.state.eq_ignore_ascii_case("dead")
    }

    /// Whether the group has no members (only then may its offsets be reset, or it deleted).
    pub fn inactive(&self) -> bool {
        self.members.is_empty()
            && matches!(
                self.state.to_ascii_lowercase().as_str(),
                "empty" | "dead" | ""
            )
    }

    pub fn active_members(&self) -> Vec<ActiveMember> {
        self.members
            .iter()
            .map(|m| ActiveMember {
                member_id: m.member_id.clone(),
                client_id: m.client_id.clone(),
                host: m.host.clone(),
            })
            .collect()
    }

    fn phase(&self) -> GroupPhase {
        match self.state.to_ascii_lowercase().as_str() {
            "empty" => GroupPhase::Empty,
            "stable" => GroupPhase::Stable,
            "preparingrebalance" => GroupPhase::PreparingRebalance,
            "completingrebalance" | "awaitingsync" => GroupPhase::CompletingRebalance,
            "dead" => GroupPhase::Dead,
            _ if self.members.is_empty() => GroupPhase::Empty,
            _ => GroupPhase::Stable,
        }
    }
}

/// Decodes a consumer-protocol structure: a version, then the structure of that version.
fn decode_versioned<T: Decodable>(bytes: &[u8]) -> Option<T> {
    let mut buf = bytes::Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, 3);
    T::decode(&mut buf, version).ok()
}

fn decode_subscription(bytes: &[u8]) -> Vec<String> {
    decode_versioned::<ConsumerProtocolSubscription>(bytes)
        .map(|s| s.topics.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

fn decode_assignment(bytes: &[u8]) -> Vec<TopicPartition> {
    let Some(a) = decode_versioned::<ConsumerProtocolAssignment>(bytes) else {
        return Vec::new();
    };
    let mut out: Vec<TopicPartition> = a
        .assigned_partitions
        .iter()
        .flat_map(|tp| {
            tp.partitions
                .iter()
                .map(move |p| TopicPartition::new(tp.topic.to_string(), *p))
        })
        .collect();
    out.sort();
    out
}

/// The committed offsets of a group, all of them.
pub(crate) fn committed(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    group: &str,
) -> Result<BTreeMap<TopicPartition, i64>, GroupsError> {
    let results = group_admin::list_offsets(client.client(), group, None, cluster.timeout())
        .map_err(|e| admin_error(cluster, group, e))?;
    Ok(results
        .into_iter()
        .filter(|r| r.error.is_none() && r.offset >= 0)
        .map(|r| (TopicPartition::new(r.topic, r.partition), r.offset))
        .collect())
}

/// A partition's (log start, log end) offsets; `None` when it does not exist.
pub(crate) fn bounds(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    tp: &TopicPartition,
) -> Result<Option<(i64, i64)>, ClusterError> {
    match client.fetch_watermarks(&tp.topic, tp.partition, cluster.timeout()) {
        Ok((low, high)) => Ok(Some((low, high.max(low)))),
        Err(e)
            if matches!(
                e.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition
                        | RDKafkaErrorCode::UnknownPartition
                        | RDKafkaErrorCode::UnknownTopic
                )
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(cluster.error(
            &format!("read the offsets of {}/{}", tp.topic, tp.partition),
            e,
        )),
    }
}

/// The view of one group, or `None` when the cluster does not know it.
pub fn describe_group(
    cluster: &Cluster,
    group: &str,
    options: ViewOptions,
    now_ms: i64,
) -> Result<Option<GroupView>, GroupsError> {
    let client = client(cluster)?;
    let described = group_infos(cluster, &client, Some(group))?
        .into_iter()
        .find(|g| g.name == group);
    let Some(described) = described.filter(Described::exists) else {
        return Ok(None);
    };
    Ok(Some(build(cluster, &client, &described, options, now_ms)?))
}

/// Views of every consumer group of the cluster, sorted by name.
pub fn describe_all(
    cluster: &Cluster,
    options: ViewOptions,
    now_ms: i64,
) -> Result<Vec<GroupView>, GroupsError> {
    let client = client(cluster)?;
    let mut groups: Vec<Described> = group_infos(cluster, &client, None)?
        .into_iter()
        .filter(|g| g.exists() && (g.protocol_type.is_empty() || g.protocol_type == "consumer"))
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    groups
        .iter()
        .map(|g| build(cluster, &client, g, options, now_ms))
        .collect()
}

/// The names of the cluster's consumer groups.
pub fn list_group_names(cluster: &Cluster) -> Result<Vec<String>, GroupsError> {
    let client = client(cluster)?;
    let mut names: Vec<String> = group_infos(cluster, &client, None)?
        .into_iter()
        .filter(|g| g.exists() && (g.protocol_type.is_empty() || g.protocol_type == "consumer"))
        .map(|g| g.name)
        .collect();
    names.sort();
    Ok(names)
}

fn build(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    g: &Described,
    options: ViewOptions,
    now_ms: i64,
) -> Result<GroupView, GroupsError> {
    let assignor = (!g.protocol.is_empty()).then(|| g.protocol.clone());
    let members: Vec<MemberView> = g
        .members
        .iter()
        .map(|m| MemberView {
            member_id: m.member_id.clone(),
            instance_id: None,
            client_id: m.client_id.clone(),
            host: Some(m.host.clone()),
            pid: None,
            status: MemberStatus::Alive,
            in_generation: true,
            topics: m.topics.clone(),
            assignor: assignor.clone(),
            assignment: m.assignment.clone(),
            owned: m.assignment.clone(),
            joined_at_ms: None,
            last_heartbeat_ms: None,
            session_timeout_ms: None,
            heartbeat_interval_ms: None,
        })
        .collect();
    let mut owner: BTreeMap<&TopicPartition, &MemberView> = BTreeMap::new();
    for m in &members {
        for tp in &m.assignment {
            owner.insert(tp, m);
        }
    }
    let mut topics: BTreeSet<String> = members.iter().flat_map(|m| m.topics.clone()).collect();
    let mut partitions = Vec::new();
    // The committed offsets are needed for the offsets view and for the topics and lag of a
    // group list (which asks for offsets too).
    if options.offsets {
        let committed = committed(cluster, client, &g.name)?;
        topics.extend(committed.keys().map(|tp| tp.topic.clone()));
        let mut keys: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
        keys.extend(owner.keys().map(|tp| (*tp).clone()));
        for tp in keys {
            let current = committed.get(&tp).copied();
            let bounds = bounds(cluster, client, &tp)?;
            let member = owner.get(&tp).copied();
            partitions.push(PartitionView::new(
                tp,
                current,
                None,
                bounds,
                member.map(|m| m.member_id.clone()),
                member,
            ));
        }
    }
    let lags: Vec<i64> = partitions.iter().filter_map(|p| p.lag).collect();
    Ok(GroupView {
        group: g.name.clone(),
        state: g.phase(),
        assignor,
        // Kafka's DescribeGroups does not tell the generation.
        generation: -1,
        live_members: members.len(),
        topics: topics.into_iter().collect(),
        total_lag: (!lags.is_empty()).then(|| lags.iter().sum()),
        members,
        partitions,
        history: Vec::new(),
        as_of_ms: now_ms,
    })
}

/// The group as the coordinator describes it, or `NotFound`.
pub(crate) fn describe_existing(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    group: &str,
) -> Result<Option<Described>, GroupsError> {
    Ok(group_infos(cluster, client, Some(group))?
        .into_iter()
        .find(|g| g.name == group)
        .filter(Described::exists))
}

/// Deletes a group; Kafka refuses it while the group has members.
pub fn delete_group(cluster: &Cluster, group: &str) -> Result<(), GroupsError> {
    let client = client(cluster)?;
    let not_found = || GroupsError::NotFound {
        group: group.to_owned(),
        brokers: cluster.brokers().to_owned(),
    };
    let Some(described) = describe_existing(cluster, &client, group)? else {
        return Err(not_found());
    };
    if !described.inactive() {
        return Err(GroupsError::Active {
            group: group.to_owned(),
            action: Action::Delete,
            state: described.state.clone(),
            members: described.active_members(),
        });
    }
    let admin = cluster.admin()?;
    let results = super::block_on(admin.delete_groups(&[group], &cluster.admin_options()))
        .map_err(|e| cluster.error(&format!("delete consumer group '{group}'"), e))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::GroupIdNotFound)) => return Err(not_found()),
            Err((_, RDKafkaErrorCode::NonEmptyGroup)) => {
                // Someone joined since we looked.
                let members = describe_existing(cluster, &client, group)?
                    .map(|d| (d.state.clone(), d.active_members()))
                    .unwrap_or_else(|| ("Stable".into(), Vec::new()));
                return Err(GroupsError::Active {
                    group: group.to_owned(),
                    action: Action::Delete,
                    state: members.0,
                    members: members.1,
                });
            }
            Err((_, code)) => {
                return Err(cluster
                    .error(
                        &format!("delete consumer group '{group}'"),
                        KafkaError::AdminOp(code),
                    )
                    .into())
            }
        }
    }
    Ok(())
}

/// Deletes the committed offsets of some topics (all their partitions, or those named).
/// Kafka refuses it for a topic the group's members consume.
pub fn delete_offsets(
    cluster: &Cluster,
    group: &str,
    topics: &[(String, Option<Vec<i32>>)],
) -> Result<Vec<DeletedOffset>, GroupsError> {
    let client = client(cluster)?;
    if describe_existing(cluster, &client, group)?.is_none() {
        return Err(GroupsError::NotFound {
            group: group.to_owned(),
            brokers: cluster.brokers().to_owned(),
        });
    }
    let committed = committed(cluster, &client, group)?;
    // Whole topics: the partitions the group committed (Kafka's tool does the same).
    let mut wanted: Vec<TopicPartition> = Vec::new();
    for (topic, parts) in topics {
        match parts {
            Some(ps) => wanted.extend(ps.iter().map(|p| TopicPartition::new(topic.clone(), *p))),
            None => wanted.extend(committed.keys().filter(|tp| &tp.topic == topic).cloned()),
        }
    }
    let mut result: Vec<DeletedOffset> = Vec::new();
    let to_delete: Vec<&TopicPartition> = wanted
        .iter()
        .filter(|tp| committed.contains_key(*tp))
        .collect();
    if !to_delete.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for tp in &to_delete {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        let results = group_admin::delete_offsets(client.client(), group, &tpl, cluster.timeout())
            .map_err(|e| match e.code() {
                Some(
                    RDKafkaErrorCode::NonEmptyGroup | RDKafkaErrorCode::GroupSubscribedToTopic,
                ) => GroupsError::Subscribed {
                    group: group.to_owned(),
                    topic: to_delete[0].topic.clone(),
                },
                _ => admin_error(cluster, group, e),
            })?;
        for r in &results {
            if let Some(code) = r.error {
                return Err(match code {
                    RDKafkaErrorCode::GroupSubscribedToTopic => GroupsError::Subscribed {
                        group: group.to_owned(),
                        topic: r.topic.clone(),
                    },
                    code => cluster
                        .error(
                            &format!(
                                "delete the offset of {}/{} in consumer group '{group}'",
                                r.topic, r.partition
                            ),
                            KafkaError::AdminOp(code),
                        )
                        .into(),
                });
            }
        }
    }
    for tp in wanted {
        result.push(DeletedOffset {
            offset: committed.get(&tp).copied(),
            topic: tp.topic,
            partition: tp.partition,
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as Assigned;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn versioned<T: Encodable>(version: i16, value: &T) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        out.put_i16(version);
        value.encode(&mut out, version).unwrap();
        out.to_vec()
    }

    #[test]
    fn assignments_and_subscriptions_decode_from_the_consumer_protocol() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            Assigned::default()
                .with_topic(TopicName(StrBytes::from_static_str("b")))
                .with_partitions(vec![2, 0]),
            Assigned::default()
                .with_topic(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![1]),
        ]);
        assert_eq!(
            decode_assignment(&versioned(0, &assignment)),
            [
                TopicPartition::new("a", 1),
                TopicPartition::new("b", 0),
                TopicPartition::new("b", 2)
            ]
        );
        let subscription = ConsumerProtocolSubscription::default().with_topics(vec![
            StrBytes::from_static_str("orders"),
            StrBytes::from_static_str("refunds"),
        ]);
        for version in 0..=3 {
            assert_eq!(
                decode_subscription(&versioned(version, &subscription)),
                ["orders", "refunds"]
            );
        }
        // Garbage and empty metadata decode to nothing, never a panic.
        assert!(decode_assignment(&[]).is_empty());
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 9]).is_empty());
        assert!(decode_subscription(&[0xff]).is_empty());
    }

    fn described(state: &str, members: usize) -> Described {
        Described {
            name: "g".into(),
            state: state.into(),
            protocol: "range".into(),
            protocol_type: "consumer".into(),
            members: (0..members)
                .map(|i| DescribedMember {
                    member_id: format!("m{i}"),
                    client_id: "c".into(),
                    host: "/h".into(),
                    topics: vec![],
                    assignment: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn kafka_states_map_to_spools() {
        assert!(!described("Dead", 0).exists());
        assert!(described("Empty", 0).exists() && described("Empty", 0).inactive());
        assert!(!described("Stable", 1).inactive());
        assert!(!described("PreparingRebalance", 0).inactive());
        assert_eq!(described("Stable", 1).phase(), GroupPhase::Stable);
        assert_eq!(
            described("CompletingRebalance", 1).phase(),
            GroupPhase::CompletingRebalance
        );
        assert_eq!(described("Unknown", 0).phase(), GroupPhase::Empty);
        let message = active_message(
            "g",
            Action::ResetOffsets,
            "Stable",
            &described("Stable", 2).active_members(),
        );
        assert_eq!(message, "offsets of consumer group 'g' can only be reset if the group is inactive, but its state is Stable with 2 live members: m0 (client c on /h), m1 (client c on /h)");
    }
}
