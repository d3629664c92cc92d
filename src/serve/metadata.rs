//! ApiVersions, Metadata and DescribeCluster: what the server speaks and what the store holds.
//! The server is the only broker (id 0) of its cluster, leader of every partition, with every
//! replica in sync.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, DescribeClusterRequest,
    DescribeClusterResponse, MetadataRequest, MetadataResponse, TopicName,
};
use uuid::Uuid;

use super::topics::topic_uuid;
use super::{error_code, str_bytes, Broker, KafkaError, DEFAULT_PARTITIONS, NODE_ID};
use crate::store::{StoreError, Topic};

/// The APIs served, each at every version the `kafka-protocol` crate knows (Kafka 4's ranges).
/// Transactions (AddPartitionsToTxn, EndTxn, ...) are deliberately absent.
pub const SERVED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::CreatePartitions,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::OffsetDelete,
    ApiKey::DeleteGroups,
];

/// "Not asked for" in Kafka's authorized-operations fields.
const OPERATIONS_OMITTED: i32 = i32::MIN;

fn served_versions() -> Vec<ApiVersion> {
    SERVED
        .iter()
        .map(|key| {
            let range = key.valid_versions();
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

pub fn api_versions(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_api_keys(served_versions())
        .with_finalized_features_epoch(-1)
}

/// The answer to an ApiVersions request newer than ours (sent as version 0).
pub fn api_versions_too_new() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(KafkaError::UnsupportedVersion.code())
        .with_api_keys(served_versions())
}

/// A topic as a Metadata response describes it.
pub(crate) fn topic_metadata(topic: &Topic) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|id| {
            MetadataResponsePartition::default()
                .with_partition_index(id)
                .with_leader_id(BrokerId(NODE_ID))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name()))))
        .with_topic_id(topic_uuid(topic))
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

fn topic_error(name: Option<&str>, id: Uuid, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

/// The topic `name`, created with the default partition count when absent and `create` allows
/// it (a broker with `auto.create.topics.enable`).
pub(crate) fn get_or_create(
    broker: &Broker,
    name: &str,
    create: bool,
) -> Result<Option<std::sync::Arc<Topic>>, StoreError> {
    if let Some(t) = broker.topics.get(name)? {
        return Ok(Some(t));
    }
    if !create {
        return Ok(None);
    }
    match broker
        .store
        .create_topic(name, DEFAULT_PARTITIONS, Default::default())
    {
        Ok(_) | Err(StoreError::TopicExists(_)) => broker.topics.get(name),
        Err(e) => Err(e),
    }
}

pub fn metadata(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    // Version 0 means every topic by an empty list; later versions by a null one.
    let all = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let mut topics = Vec::new();
    if all {
        match broker.store.list_topics() {
            Ok(names) => {
                for name in names {
                    if let Ok(Some(t)) = broker.topics.get(&name) {
                        topics.push(topic_metadata(&t));
                    }
                }
            }
            Err(e) => topics.push(topic_error(None, Uuid::nil(), error_code(&e))),
        }
    } else {
        for wanted in request.topics.unwrap_or_default() {
            let found = match &wanted.name {
                Some(name) => get_or_create(broker, name, auto_create),
                None => broker.topics.by_id(wanted.topic_id),
            };
            let name = wanted.name.as_ref().map(|n| n.as_str());
            topics.push(match found {
                Ok(Some(t)) => topic_metadata(&t),
                Ok(None) if name.is_none() => {
                    topic_error(None, wanted.topic_id, KafkaError::UnknownTopicId.code())
                }
                Ok(None) => topic_error(
                    name,
                    wanted.topic_id,
                    KafkaError::UnknownTopicOrPartition.code(),
                ),
                Err(e) => topic_error(name, wanted.topic_id, error_code(&e)),
            });
        }
    }
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(str_bytes(broker.host.clone()))
            .with_port(i32::from(broker.port))])
        .with_cluster_id(Some(str_bytes(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

pub fn describe_cluster(
    broker: &Broker,
    request: DescribeClusterRequest,
    _version: i16,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(str_bytes(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(NODE_ID))
        .with_cluster_authorized_operations(OPERATIONS_OMITTED);
    // Endpoint type 1 is brokers; 2 (controllers) has no separate endpoint here.
    if request.endpoint_type > 1 {
        return response
            .with_error_code(KafkaError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes(
                "spool serve has no separate controller endpoint",
            )));
    }
    response.with_brokers(vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(NODE_ID))
        .with_host(str_bytes(broker.host.clone()))
        .with_port(i32::from(broker.port))])
}
