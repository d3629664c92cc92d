//! The consumer-group admin requests librdkafka has and the rdkafka crate does not wrap:
//! ListConsumerGroupOffsets (OffsetFetch), AlterConsumerGroupOffsets (OffsetCommit as an
//! administrator, accepted by Kafka only while the group is empty) and
//! DeleteConsumerGroupOffsets (OffsetDelete).
//!
//! Each call is one admin request on a queue of its own, answered within the deadline given
//! (librdkafka's request timeout, and the wait for the result event). Results come back per
//! partition, with that partition's error if it has one; an error for the whole request or
//! group is an [`GroupAdminError`].

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

/// One partition of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: i32,
    /// The offset (committed, altered), or negative where there is none.
    pub offset: i64,
    pub error: Option<RDKafkaErrorCode>,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupAdminError {
    #[error("{op} of consumer group '{group}' failed: {message}")]
    Failed {
        op: &'static str,
        group: String,
        code: RDKafkaErrorCode,
        message: String,
    },
    #[error("{op} of consumer group '{group}' got no answer within {}", humantime::format_duration(*timeout))]
    TimedOut {
        op: &'static str,
        group: String,
        timeout: Duration,
    },
    #[error("group name {0:?} contains a NUL byte")]
    BadName(String),
}

impl GroupAdminError {
    /// The Kafka error code, where the cluster answered with one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            GroupAdminError::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The committed offsets of `group`: of the partitions listed, or all of them (`None`).
pub fn list_offsets<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    partitions: Option<&TopicPartitionList>,
    timeout: Duration,
) -> Result<Vec<PartitionResult>, GroupAdminError> {
    let op = Op {
        name: "listing the offsets",
        admin: rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        event: rdsys::RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT,
    };
    run(
        client,
        &op,
        group,
        timeout,
        |rk, name, options, queue| unsafe {
            let tpl = partitions.map_or(std::ptr::null(), |t| t.ptr() as *const _);
            let mut req = rdsys::rd_kafka_ListConsumerGroupOffsets_new(name, tpl);
            rdsys::rd_kafka_ListConsumerGroupOffsets(rk, &mut req, 1, options, queue);
            rdsys::rd_kafka_ListConsumerGroupOffsets_destroy(req);
        },
    )
}

/// Commits `offsets` for `group` as an administrator (Kafka refuses it while the group has
/// members).
pub fn alter_offsets<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    offsets: &TopicPartitionList,
    timeout: Duration,
) -> Result<Vec<PartitionResult>, GroupAdminError> {
    let op = Op {
        name: "resetting the offsets",
        admin: rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
        event: rdsys::RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT,
    };
    run(
        client,
        &op,
        group,
        timeout,
        |rk, name, options, queue| unsafe {
            let mut req = rdsys::rd_kafka_AlterConsumerGroupOffsets_new(name, offsets.ptr());
            rdsys::rd_kafka_AlterConsumerGroupOffsets(rk, &mut req, 1, options, queue);
            rdsys::rd_kafka_AlterConsumerGroupOffsets_destroy(req);
        },
    )
}

/// Deletes the committed offsets of `partitions` in `group`.
pub fn delete_offsets<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    partitions: &TopicPartitionList,
    timeout: Duration,
) -> Result<Vec<PartitionResult>, GroupAdminError> {
    let op = Op {
        name: "deleting the offsets",
        admin: rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS,
        event: rdsys::RD_KAFKA_EVENT_DELETECONSUMERGROUPOFFSETS_RESULT,
    };
    run(
        client,
        &op,
        group,
        timeout,
        |rk, name, options, queue| unsafe {
            let mut req = rdsys::rd_kafka_DeleteConsumerGroupOffsets_new(name, partitions.ptr());
            rdsys::rd_kafka_DeleteConsumerGroupOffsets(rk, &mut req, 1, options, queue);
            rdsys::rd_kafka_DeleteConsumerGroupOffsets_destroy(req);
        },
    )
}

struct Op {
    name: &'static str,
    admin: rdsys::rd_kafka_admin_op_t,
    event: i32,
}

/// Owns a native pointer and frees it with `free` when dropped.
struct Owned<T> {
    ptr: *mut T,
    free: unsafe extern "C" fn(*mut T),
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the pointer came from librdkafka's matching constructor and is freed once.
            unsafe { (self.free)(self.ptr) }
        }
    }
}

fn text(ptr: *const std::os::raw::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: librdkafka hands out NUL-terminated strings that live as long as their owner.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Issues one admin request with `issue` (given the client, the group's C name, the options
/// and the result queue) and reads the one group result back.
fn run<C: ClientContext>(
    client: &Client<C>,
    op: &Op,
    group: &str,
    timeout: Duration,
    issue: impl FnOnce(
        *mut rdsys::rd_kafka_t,
        *const std::os::raw::c_char,
        *const rdsys::rd_kafka_AdminOptions_t,
        *mut rdsys::rd_kafka_queue_t,
    ),
) -> Result<Vec<PartitionResult>, GroupAdminError> {
    let name = CString::new(group).map_err(|_| GroupAdminError::BadName(group.to_owned()))?;
    let rk = client.native_ptr();
    let failed = |code: rdsys::rd_kafka_resp_err_t, message: String| GroupAdminError::Failed {
        op: op.name,
        group: group.to_owned(),
        code: code.into(),
        message,
    };
    let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: every pointer below comes from librdkafka, is checked for null where librdkafka
    // may return null, and is freed once by its `Owned` guard; the result event owns the
    // result structures read out of it, which are copied before it is destroyed.
    unsafe {
        let options = Owned {
            ptr: rdsys::rd_kafka_AdminOptions_new(rk, op.admin),
            free: rdsys::rd_kafka_AdminOptions_destroy,
        };
        let mut errstr = [0 as std::os::raw::c_char; 256];
        rdsys::rd_kafka_AdminOptions_set_request_timeout(
            options.ptr,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        let queue = Owned {
            ptr: rdsys::rd_kafka_queue_new(rk),
            free: rdsys::rd_kafka_queue_destroy,
        };
        issue(rk, name.as_ptr(), options.ptr, queue.ptr);
        // A little beyond the request timeout: librdkafka answers a timed-out request itself.
        let event = Owned {
            ptr: rdsys::rd_kafka_queue_poll(queue.ptr, timeout_ms.saturating_add(1000)),
            free: rdsys::rd_kafka_event_destroy,
        };
        if event.ptr.is_null() {
            return Err(GroupAdminError::TimedOut {
                op: op.name,
                group: group.to_owned(),
                timeout,
            });
        }
        let err = rdsys::rd_kafka_event_error(event.ptr);
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(failed(
                err,
                text(rdsys::rd_kafka_event_error_string(event.ptr)),
            ));
        }
        if rdsys::rd_kafka_event_type(event.ptr) != op.event {
            return Err(failed(
                rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__BAD_MSG,
                "unexpected answer".into(),
            ));
        }
        let mut count = 0usize;
        let groups = match op.admin {
            rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS => {
                rdsys::rd_kafka_ListConsumerGroupOffsets_result_groups(
                    rdsys::rd_kafka_event_ListConsumerGroupOffsets_result(event.ptr),
                    &mut count,
                )
            }
            rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS => {
                rdsys::rd_kafka_AlterConsumerGroupOffsets_result_groups(
                    rdsys::rd_kafka_event_AlterConsumerGroupOffsets_result(event.ptr),
                    &mut count,
                )
            }
            _ => rdsys::rd_kafka_DeleteConsumerGroupOffsets_result_groups(
                rdsys::rd_kafka_event_DeleteConsumerGroupOffsets_result(event.ptr),
                &mut count,
            ),
        };
        if groups.is_null() || count == 0 {
            return Ok(Vec::new());
        }
        let result = *groups;
        let error = rdsys::rd_kafka_group_result_error(result);
        if !error.is_null() {
            return Err(failed(
                rdsys::rd_kafka_error_code(error),
                text(rdsys::rd_kafka_error_string(error)),
            ));
        }
        let list = rdsys::rd_kafka_group_result_partitions(result);
        if list.is_null() {
            return Ok(Vec::new());
        }
        let list = &*list;
        let elems: &[rdsys::rd_kafka_topic_partition_t] = if list.cnt <= 0 || list.elems.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(list.elems, list.cnt as usize)
        };
        Ok(elems
            .iter()
            .map(|e| PartitionResult {
                topic: text(e.topic),
                partition: e.partition,
                offset: e.offset,
                error: (e.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                    .then(|| e.err.into()),
            })
            .collect())
    }
}
