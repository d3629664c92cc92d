//! The admin APIs over the store's topic operations: CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs, AlterConfigs and IncrementalAlterConfigs. Topics made
//! here are ordinary topics to the CLI and the other way round; the configs are the ones spool
//! acts on ([`crate::store::config`]), anything else is refused with INVALID_CONFIG.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::topics::topic_uuid;
use super::{error_code, str_bytes, Broker, KafkaError, DEFAULT_PARTITIONS};
use crate::store::config::{self, KNOWN_CONFIGS};
use crate::store::{StoreError, Topic};

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
/// Config types (DescribeConfigs v3+).
const TYPE_LONG: i8 = 5;
const TYPE_INT: i8 = 3;
const TYPE_STRING: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

fn message(e: &StoreError) -> Option<StrBytes> {
    Some(str_bytes(e.to_string()))
}

/// A topic config's value as Kafka shows it, and its source: the topic's own, else spool's
/// default.
fn config_value(topic: &Topic, key: &str) -> (String, i8) {
    match topic.meta.configs.get(key) {
        Some(v) => (v.clone(), SOURCE_TOPIC),
        None => (config::default_value(key), SOURCE_DEFAULT),
    }
}

pub fn create_topics(
    broker: &Broker,
    request: CreateTopicsRequest,
    _version: i16,
) -> CreateTopicsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            let fail = |code: i16, msg: String| {
                result
                    .clone()
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(msg)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            };
            if t.replication_factor > 1 {
                return fail(
                    KafkaError::InvalidReplicationFactor.code(),
                    format!(
                        "replication factor {} is larger than the one broker available",
                        t.replication_factor
                    ),
                );
            }
            if !t.assignments.is_empty() {
                return fail(
                    KafkaError::InvalidReplicaAssignment.code(),
                    "spool serve places every partition on its one broker".into(),
                );
            }
            let partitions = if t.num_partitions == -1 {
                DEFAULT_PARTITIONS
            } else {
                t.num_partitions
            };
            let mut configs = BTreeMap::new();
            for c in &t.configs {
                if let Some(v) = &c.value {
                    configs.insert(c.name.to_string(), v.to_string());
                }
            }
            let created = if request.validate_only {
                validate_new_topic(broker, t.name.as_str(), partitions, &configs)
            } else {
                broker
                    .store
                    .create_topic(t.name.as_str(), partitions, configs)
                    .and_then(|_| {
                        broker
                            .topics
                            .get(t.name.as_str())?
                            .ok_or_else(|| StoreError::TopicNotFound(t.name.to_string()))
                    })
                    .map(Some)
            };
            match created {
                Ok(topic) => {
                    let mut r = result
                        .with_num_partitions(partitions)
                        .with_replication_factor(1);
                    if let Some(topic) = topic {
                        let configs = KNOWN_CONFIGS
                            .iter()
                            .map(|(k, _)| {
                                let (v, source) = config_value(&topic, k);
                                CreatableTopicConfigs::default()
                                    .with_name(str_bytes(*k))
                                    .with_value(Some(str_bytes(v)))
                                    .with_config_source(source)
                            })
                            .collect();
                        r = r
                            .with_topic_id(topic_uuid(&topic))
                            .with_configs(Some(configs));
                    }
                    r
                }
                Err(e) => fail(error_code(&e), e.to_string()),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn validate_new_topic(
    broker: &Broker,
    name: &str,
    partitions: i32,
    configs: &BTreeMap<String, String>,
) -> Result<Option<std::sync::Arc<Topic>>, StoreError> {
    if broker.topics.get(name)?.is_some() {
        return Err(StoreError::TopicExists(name.to_owned()));
    }
    if !(1..=crate::store::MAX_PARTITIONS).contains(&partitions) {
        return Err(StoreError::BadPartitionCount {
            requested: i64::from(partitions),
            max: crate::store::MAX_PARTITIONS,
        });
    }
    for (k, v) in configs {
        config::validate(k, v)?;
    }
    Ok(None)
}

pub fn delete_topics(
    broker: &Broker,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // Version 6 names topics by name or id; earlier versions by name.
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let found = match &name {
                Some(n) => broker.topics.get(n.as_str()),
                None => broker.topics.by_id(id),
            };
            let result = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(id);
            let topic = match found {
                Ok(Some(t)) => t,
                Ok(None) if name.is_none() => {
                    return result.with_error_code(KafkaError::UnknownTopicId.code())
                }
                Ok(None) => {
                    return result.with_error_code(KafkaError::UnknownTopicOrPartition.code())
                }
                Err(e) => {
                    return result
                        .with_error_code(error_code(&e))
                        .with_error_message(message(&e))
                }
            };
            let result = result
                .with_name(Some(TopicName(str_bytes(topic.name()))))
                .with_topic_id(topic_uuid(&topic));
            match broker.store.delete_topic(topic.name()) {
                Ok(()) => {
                    broker.topics.forget(topic.name());
                    broker.writers.forget_topic(&topic.meta.id);
                    result
                }
                Err(e) => result
                    .with_error_code(error_code(&e))
                    .with_error_message(message(&e)),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub fn create_partitions(
    broker: &Broker,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let outcome = match broker.topics.get(t.name.as_str()) {
                Ok(Some(topic)) if t.count <= topic.partition_count() => Err((
                    KafkaError::InvalidPartitions.code(),
                    format!(
                        "topic '{}' has {} partitions; the count can only grow",
                        topic.name(),
                        topic.partition_count()
                    ),
                )),
                Ok(Some(_)) if request.validate_only => Ok(()),
                Ok(Some(_)) => broker
                    .store
                    .add_partitions(t.name.as_str(), i64::from(t.count))
                    .map(|_| ())
                    .map_err(|e| (error_code(&e), e.to_string())),
                Ok(None) => Err((
                    KafkaError::UnknownTopicOrPartition.code(),
                    format!("topic '{}' does not exist", t.name.as_str()),
                )),
                Err(e) => Err((error_code(&e), e.to_string())),
            };
            match outcome {
                Ok(()) => result,
                Err((code, msg)) => result
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes(msg))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

pub fn describe_configs(
    broker: &Broker,
    request: DescribeConfigsRequest,
    _version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => match broker.topics.get(r.resource_name.as_str()) {
                    Ok(Some(topic)) => {
                        let keys = r.configuration_keys.as_ref();
                        let configs = KNOWN_CONFIGS
                            .iter()
                            .filter(|(k, _)| {
                                keys.is_none_or(|keys| keys.iter().any(|w| w.as_str() == *k))
                            })
                            .map(|(k, doc)| {
                                let (v, source) = config_value(&topic, k);
                                DescribeConfigsResourceResult::default()
                                    .with_name(str_bytes(*k))
                                    .with_value(Some(str_bytes(v)))
                                    .with_config_source(source)
                                    .with_config_type(match *k {
                                        "max.message.bytes" => TYPE_INT,
                                        "compression.type" => TYPE_STRING,
                                        _ => TYPE_LONG,
                                    })
                                    .with_documentation(
                                        request.include_documentation.then(|| str_bytes(*doc)),
                                    )
                            })
                            .collect();
                        result.with_configs(configs)
                    }
                    Ok(None) => result
                        .with_error_code(KafkaError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(str_bytes(format!(
                            "topic '{}' does not exist",
                            r.resource_name.as_str()
                        )))),
                    Err(e) => result
                        .with_error_code(error_code(&e))
                        .with_error_message(message(&e)),
                },
                // The broker has no configs of its own to show.
                RESOURCE_BROKER => result,
                _ => result
                    .with_error_code(KafkaError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(
                        "spool serve describes topic and broker configs only",
                    ))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// Applies config changes (an empty value removes a config) to a topic; the error code and
/// message on failure.
fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    changes: Result<BTreeMap<String, String>, (i16, String)>,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    if resource_type != RESOURCE_TOPIC {
        return (
            KafkaError::InvalidRequest.code(),
            Some(str_bytes("spool serve alters topic configs only")),
        );
    }
    let changes = match changes {
        Ok(c) => c,
        Err((code, msg)) => return (code, Some(str_bytes(msg))),
    };
    let result = match broker.topics.get(name) {
        Ok(Some(_)) if validate_only => changes
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .try_for_each(|(k, v)| config::validate(k, v).map_err(StoreError::from)),
        Ok(Some(_)) => broker.store.alter_configs(name, &changes).map(|_| ()),
        Ok(None) => Err(StoreError::TopicNotFound(name.to_owned())),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => (0, None),
        Err(e) => (error_code(&e), message(&e)),
    }
}

pub fn alter_configs(
    broker: &Broker,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|r| {
            // AlterConfigs replaces the whole set: what is not named goes back to its default.
            let mut changes: BTreeMap<String, String> = KNOWN_CONFIGS
                .iter()
                .map(|(k, _)| ((*k).to_owned(), String::new()))
                .collect();
            for c in &r.configs {
                changes.insert(
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                );
            }
            let (code, msg) = apply(
                broker,
                r.resource_type,
                r.resource_name.as_str(),
                Ok(changes),
                request.validate_only,
            );
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(msg)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub fn incremental_alter_configs(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|r| {
            let changes = r
                .configs
                .iter()
                .map(|c| match c.config_operation {
                    OP_SET => Ok((
                        c.name.to_string(),
                        c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    )),
                    OP_DELETE => Ok((c.name.to_string(), String::new())),
                    _ => Err((
                        KafkaError::InvalidConfig.code(),
                        format!(
                            "{} is not a list config; only SET and DELETE apply",
                            c.name.as_str()
                        ),
                    )),
                })
                .collect::<Result<BTreeMap<_, _>, _>>();
            let (code, msg) = apply(
                broker,
                r.resource_type,
                r.resource_name.as_str(),
                changes,
                request.validate_only,
            );
            IncrementalResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(msg)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
