//! `spool offsets reset` on a Kafka cluster: the same plans as the local store's
//! ([`crate::group::reset`]), with the log start and end offsets and the offsets for times
//! asked of the cluster, written with Kafka's AlterConsumerGroupOffsets.
//!
//! As with kafka-consumer-groups.sh, a reset is allowed only while the group has no members
//! (the coordinator would refuse the commit otherwise); a dry run is refused the same way, so
//! it shows what --execute would do. Each partition's new offset is clamped into its log, with
//! the same notes as locally ([`plan_partition`]).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::group_admin;
use super::groups::{self, Described, GroupsError};
use super::{Cluster, ClusterContext, ClusterError};
use crate::group::assignor::TopicPartition;
use crate::group::reset::{plan_partition, Action, ResetNote, ResetPlan, ResetTo, Scope};

/// Computes a reset without changing anything (a dry run); refused while the group has
/// members, as the reset itself would be.
pub fn plan_reset(
    cluster: &Cluster,
    group: &str,
    scope: &Scope,
    to: &ResetTo,
) -> Result<ResetPlan, GroupsError> {
    let client = groups::client(cluster)?;
    let described = groups::describe_existing(cluster, &client, group)?;
    ensure_inactive(group, described.as_ref())?;
    compute(cluster, &client, group, described.is_none(), scope, to)
}

/// Resets the group's offsets (creating the group if needed) and returns what was written.
pub fn execute_reset(
    cluster: &Cluster,
    group: &str,
    scope: &Scope,
    to: &ResetTo,
) -> Result<ResetPlan, GroupsError> {
    let client = groups::client(cluster)?;
    let described = groups::describe_existing(cluster, &client, group)?;
    ensure_inactive(group, described.as_ref())?;
    let mut plan = compute(cluster, &client, group, described.is_none(), scope, to)?;
    if plan.offsets.is_empty() {
        plan.executed = true;
        return Ok(plan);
    }
    let mut tpl = TopicPartitionList::new();
    for p in &plan.offsets {
        tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.new_offset))
            .map_err(|e| cluster.error("reset the offsets", e))?;
    }
    let refused = |cluster: &Cluster, client: &BaseConsumer<ClusterContext>| {
        // A member joined between the check and the commit.
        match groups::describe_existing(cluster, client, group) {
            Ok(Some(d)) if !d.inactive() => active(group, &d),
            Ok(_) => GroupsError::Cluster(cluster.error(
                &format!("reset the offsets of consumer group '{group}'"),
                KafkaError::AdminOp(RDKafkaErrorCode::UnknownMemberId),
            )),
            Err(e) => e,
        }
    };
    let results = group_admin::alter_offsets(client.client(), group, &tpl, cluster.timeout())
        .map_err(|e| match e.code() {
            Some(
                RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::NonEmptyGroup,
            ) => refused(cluster, &client),
            _ => groups::admin_error(cluster, group, e),
        })?;
    for r in &results {
        match r.error {
            None => {}
            Some(
                RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::NonEmptyGroup,
            ) => return Err(refused(cluster, &client)),
            Some(code) => {
                return Err(cluster
                    .error(
                        &format!(
                            "reset the offset of {}/{} in consumer group '{group}'",
                            r.topic, r.partition
                        ),
                        KafkaError::AdminOp(code),
                    )
                    .into())
            }
        }
    }
    plan.executed = true;
    Ok(plan)
}

fn active(group: &str, d: &Described) -> GroupsError {
    GroupsError::Active {
        group: group.to_owned(),
        action: Action::ResetOffsets,
        state: d.state.clone(),
        members: d.active_members(),
    }
}

fn ensure_inactive(group: &str, described: Option<&Described>) -> Result<(), GroupsError> {
    match described {
        Some(d) if !d.inactive() => Err(active(group, d)),
        _ => Ok(()),
    }
}

/// The partition count of a topic; `None` when the cluster does not have it.
fn partition_count(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    topic: &str,
) -> Result<Option<i32>, ClusterError> {
    let metadata = cluster.metadata(client, Some(topic))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len() as i32))
}

fn topic_not_found(cluster: &Cluster, topic: &str) -> ClusterError {
    ClusterError::TopicNotFound {
        topic: topic.to_owned(),
        brokers: cluster.brokers().to_owned(),
    }
}

fn compute(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    group: &str,
    new_group: bool,
    scope: &Scope,
    to: &ResetTo,
) -> Result<ResetPlan, GroupsError> {
    let committed = if new_group {
        Default::default()
    } else {
        groups::committed(cluster, client, group)?
    };
    let mut notes = Vec::new();
    let mut partitions: std::collections::BTreeSet<TopicPartition> = Default::default();
    let check = |topic: &str, partition: Option<i32>| -> Result<i32, ClusterError> {
        let count = partition_count(cluster, client, topic)?
            .ok_or_else(|| topic_not_found(cluster, topic))?;
        if let Some(p) = partition.filter(|p| *p >= count) {
            return Err(ClusterError::PartitionNotFound {
                topic: topic.to_owned(),
                partition: p,
                brokers: cluster.brokers().to_owned(),
            });
        }
        Ok(count)
    };
    match scope {
        Scope::Topics(topics) => {
            for (name, parts) in topics {
                match parts {
                    None => {
                        let count = check(name, None)?;
                        partitions.extend((0..count).map(|p| TopicPartition::new(name.clone(), p)));
                    }
                    Some(ps) => {
                        for &p in ps {
                            check(name, Some(p))?;
                            partitions.insert(TopicPartition::new(name.clone(), p));
                        }
                    }
                }
            }
        }
        Scope::AllTopics => {
            if committed.is_empty() {
                return Err(GroupsError::NothingCommitted(group.to_owned()));
            }
            let mut topics: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
            for tp in committed.keys() {
                topics.entry(&tp.topic).or_default().push(tp.partition);
            }
            for (name, ps) in topics {
                match partition_count(cluster, client, name)? {
                    Some(count) => partitions.extend(
                        ps.into_iter()
                            .filter(|p| *p < count)
                            .map(|p| TopicPartition::new(name, p)),
                    ),
                    None => notes.push(ResetNote::TopicGone {
                        topic: name.to_owned(),
                    }),
                }
            }
        }
        Scope::Explicit => {
            if let ResetTo::Explicit(map) = to {
                for tp in map.keys() {
                    check(&tp.topic, Some(tp.partition))?;
                    partitions.insert(tp.clone());
                }
            }
        }
    }

    let mut offsets = Vec::with_capacity(partitions.len());
    for tp in partitions {
        let bounds = groups::bounds(cluster, client, &tp)?.ok_or_else(|| {
            ClusterError::PartitionNotFound {
                topic: tp.topic.clone(),
                partition: tp.partition,
                brokers: cluster.brokers().to_owned(),
            }
        })?;
        let prior = committed.get(&tp).copied();
        let planned = plan_partition(
            &tp,
            prior,
            bounds,
            to,
            |ts| offset_for_time(cluster, client, &tp, ts),
            &mut notes,
        )?;
        match planned {
            Some(p) => offsets.push(p),
            None => {
                return Err(GroupsError::NoCommittedOffset {
                    group: group.to_owned(),
                    topic: tp.topic,
                    partition: tp.partition,
                })
            }
        }
    }
    Ok(ResetPlan {
        group: group.to_owned(),
        new_group,
        offsets,
        notes,
        executed: false,
    })
}

/// The first offset of `tp` whose timestamp is at or after `ts`; `None` when every record is
/// older (Kafka answers the log end, -1, for that).
pub(crate) fn offset_for_time(
    cluster: &Cluster,
    client: &BaseConsumer<ClusterContext>,
    tp: &TopicPartition,
    ts: i64,
) -> Result<Option<i64>, ClusterError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(ts))
        .map_err(|e| cluster.error("look up offsets by time", e))?;
    let answer = client
        .offsets_for_times(tpl, cluster.timeout())
        .map_err(|e| cluster.error("look up offsets by time", e))?;
    let found = answer
        .find_partition(&tp.topic, tp.partition)
        .map(|e| (e.offset(), e.error()));
    match found {
        Some((Offset::Offset(o), Ok(()))) if o >= 0 => Ok(Some(o)),
        Some((_, Err(e))) => Err(cluster.error(
            &format!("look up offsets by time in {}/{}", tp.topic, tp.partition),
            e,
        )),
        _ => Ok(None),
    }
}
