//! ListOffsets (earliest, latest, by timestamp through the time index, max timestamp) and
//! DeleteRecords (moves a partition's log start offset forward).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
};

use super::{error_code, Broker, KafkaError};
use crate::store::{raw, Partition, StoreError};

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

fn partition_of(broker: &Broker, topic: &str, id: i32) -> Result<Partition, StoreError> {
    match broker.topics.get(topic)? {
        Some(t) => t.partition(id),
        None => Err(StoreError::TopicNotFound(topic.to_owned())),
    }
}

/// (timestamp, offset) for a ListOffsets query; (-1, -1) when no record qualifies.
fn lookup(partition: &Partition, timestamp: i64) -> Result<(i64, i64), StoreError> {
    Ok(match timestamp {
        LATEST => (-1, partition.log_end_offset()?),
        EARLIEST | EARLIEST_LOCAL => (-1, partition.log_start_offset()?),
        MAX_TIMESTAMP => raw::max_timestamp_offset(&partition.dir)?.unwrap_or((-1, -1)),
        t if t >= 0 => match partition.offset_for_timestamp(t)? {
            // Retention or DeleteRecords may have moved the start past what the index found.
            Some(offset) => {
                let offset = offset.max(partition.log_start_offset()?);
                let found = raw::record_timestamp(&partition.dir, offset)?.unwrap_or(t);
                (found, offset)
            }
            None => (-1, -1),
        },
        // Tiered storage's special timestamps: nothing is tiered.
        _ => (-1, -1),
    })
}

pub fn list_offsets(
    broker: &Broker,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    // The leader epoch exists from version 4 on.
    let leader_epoch = if version >= 4 { 0 } else { -1 };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    match partition_of(broker, t.name.as_str(), p.partition_index)
                        .and_then(|part| lookup(&part, p.timestamp))
                    {
                        Ok((timestamp, offset)) => response
                            .with_timestamp(timestamp)
                            .with_offset(offset)
                            .with_leader_epoch(leader_epoch),
                        Err(e) => response
                            .with_error_code(error_code(&e))
                            .with_timestamp(-1)
                            .with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub fn delete_records(
    broker: &Broker,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let response = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let result =
                        partition_of(broker, t.name.as_str(), p.partition_index).and_then(|part| {
                            let end = part.log_end_offset()?;
                            // -1 means the high watermark.
                            let target = if p.offset == -1 { end } else { p.offset };
                            if target < 0 || target > end {
                                return Ok(Err(KafkaError::OffsetOutOfRange.code()));
                            }
                            raw::delete_records_before(&part, target).map(Ok)
                        });
                    match result {
                        Ok(Ok(low)) => response.with_low_watermark(low),
                        Ok(Err(code)) => response.with_error_code(code).with_low_watermark(-1),
                        Err(e) => response
                            .with_error_code(error_code(&e))
                            .with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
