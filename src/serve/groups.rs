//! Consumer groups as Kafka clients see them: FindCoordinator (this server coordinates every
//! group), and read-only views of spool's groups through [`crate::group::view`]: ListGroups,
//! DescribeGroups and OffsetFetch show the groups of `spool consume --group` members, their
//! members and committed offsets, exactly as `spool group describe` does.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartition;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolAssignment, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, ListGroupsRequest,
    ListGroupsResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
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

fn describe(broker: &Broker, group: &str) -> Result<Option<GroupView>, StoreError> {
    view::describe_group(
        &broker.store,
        group,
        ViewOptions { offsets: false },
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
        ViewOptions { offsets: false },
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
            match describe(broker, id.as_str()) {
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
    match describe(broker, group) {
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
