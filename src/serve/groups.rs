//! Consumer groups as Kafka clients see them. FindCoordinator: this server coordinates every
//! group. JoinGroup, SyncGroup, Heartbeat, LeaveGroup and OffsetCommit make a client a member
//! of spool's group through `super::members`; ListGroups, DescribeGroups and OffsetFetch are
//! read-only views through [`crate::group::view`], exactly what `spool group describe` shows;
//! OffsetDelete and DeleteGroups are `spool group delete-offsets` and `spool group delete`.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartition;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use std::time::Duration;

use super::members::{JoinRequest, Joined};
use crate::group::assignor::TopicPartition;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::{error_code, str_bytes, Broker, KafkaError, NODE_ID};
use crate::group::view::{self, GroupView, ViewOptions};
use crate::store::{fsutil, StoreError};

/// FindCoordinator's key type for transactions.
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn find_coordinator(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let answer = |key: StrBytes| {
        let c = Coordinator::default().with_key(key);
        if request.key_type == KEY_TYPE_TRANSACTION {
            c.with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(KafkaError::CoordinatorNotAvailable.code())
                .with_error_message(Some(str_bytes("spool serve does not provide transactions")))
        } else {
            c.with_node_id(BrokerId(NODE_ID))
                .with_host(str_bytes(broker.host.clone()))
                .with_port(i32::from(broker.port))
        }
    };
    if version >= 4 {
        let coordinators = request.coordinator_keys.into_iter().map(answer).collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = answer(request.key);
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

/// The view of a group; `offsets` adds its committed offsets (and the logs' ends, which the
/// view reads with them).
fn describe(broker: &Broker, group: &str, offsets: bool) -> Result<Option<GroupView>, StoreError> {
    view::describe_group(
        &broker.store,
        group,
        ViewOptions {
            offsets,
            history: false,
        },
        fsutil::now_ms(),
    )
}

pub fn list_groups(
    broker: &Broker,
    request: ListGroupsRequest,
    _version: i16,
) -> ListGroupsResponse {
    let views = match view::describe_all(
        &broker.store,
        ViewOptions {
            offsets: false,
            history: false,
        },
        fsutil::now_ms(),
    ) {
        Ok(v) => v,
        Err(e) => return ListGroupsResponse::default().with_error_code(error_code(&e)),
    };
    let groups = views
        .into_iter()
        .map(|v| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(v.group)))
                .with_protocol_type(str_bytes("consumer"))
                .with_group_state(str_bytes(v.state.to_string()))
                .with_group_type(str_bytes("classic"))
        })
        .filter(|g| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(g.group_state.as_str()))
        })
        .filter(|_| {
            request.types_filter.is_empty()
                || request
                    .types_filter
                    .iter()
                    .any(|t| t.as_str().eq_ignore_ascii_case("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// A member's assignment in the consumer protocol's encoding (what kafka-consumer-groups.sh
/// decodes to show it).
fn encode_assignment(assignment: &[crate::group::assignor::TopicPartition]) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in assignment {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let assigned = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            AssignedPartition::default()
                .with_topic(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect();
    let mut out = BytesMut::new();
    out.put_i16(0);
    let _ = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(assigned)
        .with_user_data(Some(Bytes::new()))
        .encode(&mut out, 0);
    out.freeze()
}

pub fn describe_groups(
    broker: &Broker,
    request: DescribeGroupsRequest,
    _version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            let described = DescribedGroup::default().with_group_id(id.clone());
            match describe(broker, id.as_str(), false) {
                Ok(Some(v)) => {
                    let members = v
                        .live()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(str_bytes(m.member_id.clone()))
                                .with_group_instance_id(m.instance_id.clone().map(str_bytes))
                                .with_client_id(str_bytes(m.client_id.clone()))
                                .with_client_host(str_bytes(m.host.clone().unwrap_or_default()))
                                .with_member_assignment(encode_assignment(&m.assignment))
                        })
                        .collect();
                    described
                        .with_group_state(str_bytes(v.state.to_string()))
                        .with_protocol_type(str_bytes("consumer"))
                        .with_protocol_data(str_bytes(v.assignor.clone().unwrap_or_default()))
                        .with_members(members)
                }
                // Kafka describes an unknown group as Dead, without an error.
                Ok(None) => described.with_group_state(str_bytes("Dead")),
                Err(StoreError::Name(_)) => {
                    described.with_error_code(KafkaError::InvalidGroupId.code())
                }
                Err(e) => described.with_error_code(error_code(&e)),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// A group's committed offsets: topic to partition to offset.
fn committed(broker: &Broker, group: &str) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, i16> {
    let mut out: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    match describe(broker, group, true) {
        Ok(Some(v)) => {
            for p in v.partitions {
                if let Some(offset) = p.current_offset {
                    out.entry(p.topic).or_default().insert(p.partition, offset);
                }
            }
            Ok(out)
        }
        Ok(None) => Ok(out),
        Err(StoreError::Name(_)) => Err(KafkaError::InvalidGroupId.code()),
        Err(e) => Err(error_code(&e)),
    }
}

/// The offsets asked for (all committed ones when `wanted` is null): (topic, [(partition,
/// offset)]), -1 where nothing is committed.
fn select(
    committed: &BTreeMap<String, BTreeMap<i32, i64>>,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
) -> Vec<(TopicName, Vec<(i32, i64)>)> {
    match wanted {
        None => committed
            .iter()
            .map(|(t, ps)| {
                (
                    TopicName(str_bytes(t.clone())),
                    ps.iter().map(|(p, o)| (*p, *o)).collect(),
                )
            })
            .collect(),
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let offsets = committed.get(name.as_str());
                let ps = partitions
                    .into_iter()
                    .map(|p| (p, offsets.and_then(|o| o.get(&p)).copied().unwrap_or(-1)))
                    .collect();
                (name, ps)
            })
            .collect(),
    }
}

pub fn offset_fetch(
    broker: &Broker,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let response =
                    OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                let committed = match committed(broker, g.group_id.as_str()) {
                    Ok(c) => c,
                    Err(code) => return response.with_error_code(code),
                };
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let topics = select(&committed, wanted)
                    .into_iter()
                    .map(|(name, ps)| {
                        let topic_id = broker
                            .topics
                            .get(name.as_str())
                            .ok()
                            .flatten()
                            .map(|t| super::topics::topic_uuid(&t))
                            .unwrap_or_default();
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_topic_id(topic_id)
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, o)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(o)
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(StrBytes::default()))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                response.with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let committed = match committed(broker, request.group_id.as_str()) {
        Ok(c) => c,
        Err(code) => return OffsetFetchResponse::default().with_error_code(code),
    };
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let topics = select(&committed, wanted)
        .into_iter()
        .map(|(name, ps)| {
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    ps.into_iter()
                        .map(|(p, o)| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                                .with_committed_leader_epoch(-1)
                                .with_metadata(Some(StrBytes::default()))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// The assignor spool uses for a protocol name a client offers (kafkajs names its round robin
/// assignor differently).
fn spool_assignor(protocol: &str) -> Option<&'static str> {
    match protocol {
        "range" => Some("range"),
        "roundrobin" | "RoundRobinAssigner" => Some("roundrobin"),
        "sticky" => Some("sticky"),
        "cooperative-sticky" => Some("cooperative-sticky"),
        _ => None,
    }
}

/// The subscription in a JoinGroup protocol's metadata (the consumer protocol's encoding,
/// which kafkajs shares for version 0): topics and, from version 1, owned partitions.
fn decode_subscription(metadata: &Bytes) -> Option<(Vec<String>, Vec<TopicPartition>)> {
    use bytes::Buf;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, 3);
    let sub = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    let topics = sub.topics.iter().map(|t| t.to_string()).collect();
    let owned = sub
        .owned_partitions
        .iter()
        .flat_map(|tp| {
            tp.partitions
                .iter()
                .map(move |p| TopicPartition::new(tp.topic.to_string(), *p))
        })
        .collect();
    Some((topics, owned))
}

/// The group's current assignor, if it has live members (their protocol must be kept).
fn group_protocol(broker: &Broker, group: &str) -> Option<String> {
    describe(broker, group, false)
        .ok()
        .flatten()
        .filter(|v| v.live_members > 0)
        .and_then(|v| v.assignor)
}

pub fn join_group(
    broker: &Broker,
    client: &super::connection::Client,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let fail = |code: i16, member_id: StrBytes| {
        JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_member_id(member_id)
    };
    if request.protocol_type.as_str() != "consumer" {
        return fail(
            KafkaError::InconsistentGroupProtocol.code(),
            request.member_id,
        );
    }
    let current = group_protocol(broker, request.group_id.as_str());
    let chosen = request.protocols.iter().find_map(|p| {
        let name = spool_assignor(p.name.as_str())?;
        match &current {
            Some(c) if c != name => None,
            _ => Some((p, name)),
        }
    });
    let Some((protocol, assignor)) = chosen else {
        return fail(
            KafkaError::InconsistentGroupProtocol.code(),
            request.member_id,
        );
    };
    let Some((topics, owned)) = decode_subscription(&protocol.metadata) else {
        return fail(KafkaError::InvalidRequest.code(), request.member_id);
    };
    let join = JoinRequest {
        group: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id.clone(),
        host: format!("/{}", client.peer.ip()),
        topics,
        assignor: assignor.to_owned(),
        owned: (assignor == "cooperative-sticky").then_some(owned),
        session_timeout: Duration::from_millis(request.session_timeout_ms.max(1) as u64),
        // JoinGroup v0 has none: Kafka uses the session timeout.
        rebalance_timeout: Duration::from_millis(if version == 0 {
            request.session_timeout_ms.max(1) as u64
        } else {
            request.rebalance_timeout_ms.max(1) as u64
        }),
        require_id: version >= 4,
    };
    match broker
        .members
        .join(&broker.store, join, &|| broker.shutting_down())
    {
        Ok(Joined::IdRequired(member_id)) => {
            fail(KafkaError::MemberIdRequired.code(), str_bytes(member_id))
        }
        Ok(Joined::Member {
            member_id,
            generation,
        }) => JoinGroupResponse::default()
            .with_generation_id(generation)
            .with_protocol_type(Some(str_bytes("consumer")))
            .with_protocol_name(Some(protocol.name.clone()))
            // Nobody is the leader: spool's assignors compute the assignment.
            .with_leader(str_bytes(SPOOL_LEADER))
            .with_member_id(str_bytes(member_id)),
        Err(e) => fail(e.code(), request.member_id),
    }
}

/// The leader id every member is told: no member's, so no client runs an assignor.
const SPOOL_LEADER: &str = "spool-assigns";

pub fn sync_group(broker: &Broker, request: SyncGroupRequest, _version: i16) -> SyncGroupResponse {
    match broker.members.sync(
        request.group_id.as_str(),
        request.member_id.as_str(),
        request.generation_id,
        &|| broker.shutting_down(),
    ) {
        Ok(assigned) => SyncGroupResponse::default()
            .with_protocol_type(request.protocol_type)
            .with_protocol_name(request.protocol_name)
            .with_assignment(encode_assignment(&assigned)),
        Err(e) => SyncGroupResponse::default().with_error_code(e.code()),
    }
}

pub fn heartbeat(broker: &Broker, request: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    let code = match broker.members.heartbeat(
        request.group_id.as_str(),
        request.member_id.as_str(),
        request.generation_id,
    ) {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
    HeartbeatResponse::default().with_error_code(code)
}

pub fn leave_group(
    broker: &Broker,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = request.group_id.as_str();
    if version < 3 {
        let code = match broker.members.leave(group, request.member_id.as_str()) {
            Ok(()) => 0,
            Err(e) => e.code(),
        };
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let members = request
        .members
        .into_iter()
        .map(|m| {
            // A static member may be named by its instance id alone (its member id is it).
            let id = if m.member_id.is_empty() {
                m.group_instance_id
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            } else {
                m.member_id.to_string()
            };
            let code = match broker.members.leave(group, &id) {
                Ok(()) => 0,
                Err(e) => e.code(),
            };
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

/// A topic of an OffsetCommit: as named in the request (name, id), its resolved name, and
/// (partition, offset) pairs.
type CommitTopic = (TopicName, uuid::Uuid, String, Vec<(i32, i64)>);

pub fn offset_commit(
    broker: &Broker,
    request: OffsetCommitRequest,
    _version: i16,
) -> OffsetCommitResponse {
    let group = request.group_id.to_string();
    // Topic names (topic ids from version 10 on).
    let topics: Vec<CommitTopic> = request
        .topics
        .iter()
        .map(|t| {
            let name = if t.name.is_empty() {
                broker
                    .topics
                    .by_id(t.topic_id)
                    .ok()
                    .flatten()
                    .map(|t| t.name().to_owned())
                    .unwrap_or_default()
            } else {
                t.name.to_string()
            };
            let ps = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.committed_offset))
                .collect();
            (t.name.clone(), t.topic_id, name, ps)
        })
        .collect();
    let offsets: Vec<(TopicPartition, i64)> = topics
        .iter()
        .flat_map(|(_, _, name, ps)| {
            ps.iter()
                .map(move |(p, o)| (TopicPartition::new(name.clone(), *p), *o))
        })
        .collect();
    let result: Result<(), i16> = if topics.iter().any(|t| t.2.is_empty()) {
        Err(KafkaError::UnknownTopicOrPartition.code())
    } else if request.member_id.is_empty() && request.generation_id_or_member_epoch < 0 {
        simple_commit(broker, &group, &offsets)
    } else {
        broker
            .members
            .commit(
                &group,
                request.member_id.as_str(),
                request.generation_id_or_member_epoch,
                &offsets,
            )
            .map_err(|e| e.code())
    };
    let code = result.err().unwrap_or(0);
    let topics = topics
        .into_iter()
        .map(|(name, id, _, ps)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_topic_id(id)
                .with_partitions(
                    ps.into_iter()
                        .map(|(p, _)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// A commit from a consumer that assigned its partitions itself (no member): accepted while
/// the group has no live members, as Kafka accepts it for an empty group.
fn simple_commit(
    broker: &Broker,
    group: &str,
    offsets: &[(TopicPartition, i64)],
) -> Result<(), i16> {
    use crate::group::reset::{self, AdminError, ResetTo, Scope};
    let explicit = offsets.iter().cloned().collect();
    match reset::execute_reset(
        &broker.store,
        group,
        &Scope::Explicit,
        &ResetTo::Explicit(explicit),
        fsutil::now_ms(),
    ) {
        Ok(_) => Ok(()),
        Err(AdminError::Active { .. }) => Err(KafkaError::UnknownMemberId.code()),
        Err(AdminError::Store(StoreError::Name(_))) => Err(KafkaError::InvalidGroupId.code()),
        Err(AdminError::Store(StoreError::TopicNotFound(_)))
        | Err(AdminError::Store(StoreError::PartitionNotFound { .. })) => {
            Err(KafkaError::UnknownTopicOrPartition.code())
        }
        Err(_) => Err(KafkaError::KafkaStorageError.code()),
    }
}

pub fn offset_delete(
    broker: &Broker,
    request: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    use crate::group::reset::{self, AdminError};
    let wanted: Vec<(String, Option<Vec<i32>>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                Some(t.partitions.iter().map(|p| p.partition_index).collect()),
            )
        })
        .collect();
    let (top, per_partition) = match reset::delete_offsets(
        &broker.store,
        request.group_id.as_str(),
        &wanted,
        fsutil::now_ms(),
    ) {
        Ok(_) => (0, 0),
        Err(AdminError::NotFound(_)) => (KafkaError::GroupIdNotFound.code(), 0),
        Err(AdminError::Subscribed { .. }) => (0, KafkaError::GroupSubscribedToTopic.code()),
        Err(AdminError::Store(StoreError::Name(_))) => (KafkaError::InvalidGroupId.code(), 0),
        Err(_) => (KafkaError::KafkaStorageError.code(), 0),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(per_partition)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteResponse::default()
        .with_error_code(top)
        .with_topics(topics)
}

pub fn delete_groups(
    broker: &Broker,
    request: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    use crate::group::reset::{self, AdminError};
    let results = request
        .groups_names
        .into_iter()
        .map(|g| {
            let code = match reset::delete_group(&broker.store, g.as_str(), fsutil::now_ms()) {
                Ok(()) => 0,
                Err(AdminError::NotFound(_)) => KafkaError::GroupIdNotFound.code(),
                Err(AdminError::Active { .. }) => KafkaError::NonEmptyGroup.code(),
                Err(AdminError::Store(StoreError::Name(_))) => KafkaError::InvalidGroupId.code(),
                Err(_) => KafkaError::KafkaStorageError.code(),
            };
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(code)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
