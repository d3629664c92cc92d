//! A large consumer group built directly through the library (no consumer processes): for the
//! `group describe` timing test and benchmark.

use std::collections::BTreeMap;
use std::path::Path;

use spool::group::assignor::TopicPartition;
use spool::group::lease::{HeldLease, Lease};
use spool::group::state::{Committed, GroupDir, GroupState, MemberInfo, Offsets};
use spool::record::Record;
use spool::store::{batch, fsutil, Store, SyncPolicy};

/// Builds group `group` in the store at `root`: `topics` topics of `partitions` partitions, each
/// with `records` records, and `members` live members (their leases are locked by this process
/// through the returned handles) sharing the partitions, all committed halfway.
pub fn build_group(
    root: &Path,
    group: &str,
    members: usize,
    topics: usize,
    partitions: i32,
    records: usize,
) -> Vec<HeldLease> {
    let store = Store::open(root).unwrap();
    let now = fsutil::now_ms();
    let mut all = Vec::new();
    let mut counts = BTreeMap::new();
    let batch_records: Vec<Record> = (0..records)
        .map(|i| Record {
            timestamp: now,
            key: None,
            value: Some(format!("record {i}").into_bytes()),
            headers: Vec::new(),
        })
        .collect();
    let mut encoded = Vec::new();
    if records > 0 {
        batch::encode_batch(&mut encoded, &batch_records);
    }
    for t in 0..topics {
        let name = format!("topic-{t}");
        let topic = store
            .create_topic(&name, partitions, BTreeMap::new())
            .unwrap();
        counts.insert(name.clone(), partitions);
        for p in topic.partitions() {
            if records > 0 {
                let mut bytes = encoded.clone();
                p.writer(SyncPolicy::OnRequest)
                    .unwrap()
                    .append(&mut bytes, now)
                    .unwrap();
            }
            all.push(TopicPartition::new(name.clone(), p.id));
        }
    }
    let dir = GroupDir::new(&store, group).unwrap();
    dir.ensure_created().unwrap();
    let topic_names: Vec<String> = counts.keys().cloned().collect();
    let ids: Vec<String> = (0..members).map(|m| format!("consumer-{m:04}")).collect();
    let mut state = GroupState {
        generation: 1,
        protocol: Some("range".into()),
        partition_counts: counts,
        ..GroupState::default()
    };
    let mut leases = Vec::new();
    for id in &ids {
        state.members.insert(
            id.clone(),
            MemberInfo {
                instance_id: None,
                client_id: "bench".into(),
                topics: topic_names.clone(),
            },
        );
        state.acked.insert(id.clone(), 1);
        leases.push(
            HeldLease::create(
                &dir.members_dir(),
                Lease {
                    member_id: id.clone(),
                    instance_id: None,
                    client_id: "bench".into(),
                    host: "localhost".into(),
                    pid: std::process::id(),
                    topics: topic_names.clone(),
                    pattern: None,
                    assignor: "range".into(),
                    session_timeout_ms: 3_600_000,
                    heartbeat_interval_ms: 3_000,
                    max_poll_interval_ms: 300_000,
                    joined_at_ms: now,
                    heartbeat_ms: now,
                    last_poll_ms: now,
                    acked_generation: None,
                },
            )
            .unwrap(),
        );
    }
    let mut offsets = Offsets::new();
    for (i, tp) in all.iter().enumerate() {
        let owner = &ids[i % members];
        state
            .assignment
            .entry(owner.clone())
            .or_default()
            .push(tp.clone());
        state.set_owner(tp, Some(owner));
        offsets.entry(tp.topic.clone()).or_default().insert(
            tp.partition,
            Committed {
                offset: (records / 2) as i64,
                committed_at_ms: now,
                topic_id: None,
            },
        );
    }
    dir.save_state(&state).unwrap();
    dir.save_offsets(&offsets).unwrap();
    leases
}
