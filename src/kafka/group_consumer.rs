//! `spool -b … consume --group`: a member of a Kafka consumer group through librdkafka's
//! consumer, with spool's flags mapped to Kafka's properties and the same events
//! ([`GroupEvent`]) and delivery guarantee as the local group consumer
//! ([`crate::group::consumer`]).
//!
//! At-least-once, as locally: offsets are stored only for records whose output was written
//! (or whose `--exec` command succeeded), with `enable.auto.offset.store=false`; librdkafka
//! commits the stored offsets every `--auto-commit-interval`, and they are committed at once
//! when partitions are revoked (after the output of their records was written) and on exit.
//! Rendered records wait in one buffer, written with one syscall per flush; the buffer lives
//! in the consumer context, so the rebalance callback (run by librdkafka inside `poll`) writes
//! it out before it gives partitions up, or drops it when the partitions were lost (the
//! member was removed from the group: another member may read them now).
//!
//! Where each partition starts is decided here, so it can be said ("Reading t/0 from offset
//! 42 (committed)"): its committed offset, else `-o`, else `--auto-offset-reset`, resolved
//! against the partition's offsets on the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::io::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::{Cluster, ClusterError, LogRouting};
use crate::consume::Polled;
use crate::group::assignor::TopicPartition;
use crate::group::consumer::{GroupConsumerConfig, GroupEvent, OffsetReset};
use crate::record::{HeaderRef, Headers, RecordRef};
use crate::spec::OffsetSpec;

/// The assignors librdkafka has (Java's eager `sticky` it has not).
pub const KAFKA_ASSIGNORS: &[&str] = &["range", "roundrobin", "cooperative-sticky"];

#[derive(Debug, thiserror::Error)]
pub enum KafkaGroupError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    #[error("no committed offset for {partitions}, and --auto-offset-reset is none")]
    NoCommittedOffset { partitions: String },
    /// A flag the cluster's client cannot honour (a usage error).
    #[error("{0}")]
    Unsupported(String),
    #[error("the consumer of group '{group}' failed: {source}")]
    Consumer {
        group: String,
        #[source]
        source: KafkaError,
    },
}

impl KafkaGroupError {
    pub fn is_usage(&self) -> bool {
        matches!(self, KafkaGroupError::Unsupported(_))
            || matches!(self, KafkaGroupError::Cluster(e) if e.is_usage())
    }
}

/// Everything the rebalance callback and the consuming loop share.
struct Shared {
    /// Rendered records not written yet.
    out: Vec<u8>,
    output: Box<dyn Write + Send>,
    /// Next offsets of the records in `out`.
    pending: BTreeMap<TopicPartition, i64>,
    /// Next offsets of the records written out or processed, not stored yet.
    done: BTreeMap<TopicPartition, i64>,
    /// Next offsets of the records written out or processed, stored or not: what is
    /// committed when a partition is revoked.
    flushed: BTreeMap<TopicPartition, i64>,
    assigned: BTreeSet<TopicPartition>,
    /// Partitions given up since the last "Generation" line.
    revoked: Vec<TopicPartition>,
    /// Partitions read to their end (since their last record).
    at_end: BTreeSet<TopicPartition>,
    /// The next offset of each assigned partition, as far as delivered.
    next: BTreeMap<TopicPartition, i64>,
    events: Vec<GroupEvent>,
    joined: bool,
    closing: bool,
    /// An error in the rebalance callback, returned by the next poll.
    error: Option<KafkaGroupError>,
}

/// The consumer's context: librdkafka's logs where `-v` says, and the rebalance callback.
pub struct GroupContext {
    log: LogRouting,
    cluster: Cluster,
    config: GroupConsumerConfig,
    shared: Mutex<Shared>,
}

impl GroupContext {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason)
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.assign(consumer, tpl, cooperative)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoke(consumer, tpl, cooperative)
            }
            _ => {
                // librdkafka's own recovery: drop the assignment, and rejoin.
                let _ = consumer.unassign();
            }
        }
    }
}

impl GroupContext {
    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList, cooperative: bool) {
        let revoked = partitions_of(tpl);
        let mut shared = self.lock();
        if consumer.assignment_lost() {
            // Removed from the group (session expired, max poll interval passed): another
            // member may own these partitions now, so nothing of them is written or committed.
            shared.out.clear();
            shared.pending.clear();
            shared.done.clear();
            shared.flushed.clear();
            if !shared.closing {
                shared.events.push(GroupEvent::Fenced);
            }
        } else {
            // Ours until the unassign below: what was read is written out and committed first.
            if let Err(e) = flush(&mut shared) {
                shared.error.get_or_insert(e);
            }
            if self.config.commit {
                let mut offsets = TopicPartitionList::new();
                for tp in &revoked {
                    if let Some(next) = shared.flushed.get(tp) {
                        let _ = offsets.add_partition_offset(
                            &tp.topic,
                            tp.partition,
                            Offset::Offset(*next),
                        );
                    }
                }
                if offsets.count() > 0 {
                    // A refused commit (the group moved on) leaves the records to the next
                    // owner: at-least-once.
                    let _ = consumer.commit(&offsets, CommitMode::Sync);
                }
            }
        }
        for tp in &revoked {
            shared.done.remove(tp);
            shared.flushed.remove(tp);
            shared.pending.remove(tp);
            shared.at_end.remove(tp);
            shared.next.remove(tp);
            if shared.assigned.remove(tp) && !shared.closing {
                shared.revoked.push(tp.clone());
            }
        }
        drop(shared);
        let _ = if cooperative {
            consumer.incremental_unassign(tpl)
        } else {
            consumer.unassign()
        };
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList, cooperative: bool) {
        let added = partitions_of(tpl);
        let mut starts = TopicPartitionList::new();
        let mut started = Vec::new();
        let mut missing = Vec::new();
        let mut failure = None;
        let committed = if added.is_empty() {
            Ok(TopicPartitionList::new())
        } else {
            consumer.committed_offsets(tpl.clone(), self.cluster.timeout())
        };
        match committed {
            Ok(committed) => {
                for tp in &added {
                    let c = committed
                        .find_partition(&tp.topic, tp.partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) if o >= 0 => Some(o),
                            _ => None,
                        });
                    let start = match c {
                        Some(o) => Ok(Some(o)),
                        None => self.start_without_commit(consumer, tp),
                    };
                    match start {
                        Ok(Some(offset)) => {
                            let _ = starts.add_partition_offset(
                                &tp.topic,
                                tp.partition,
                                Offset::Offset(offset),
                            );
                            started.push((tp.clone(), offset, c.is_some()));
                        }
                        Ok(None) => missing.push(tp.clone()),
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
            }
            Err(e) => {
                failure = Some(KafkaGroupError::Cluster(
                    self.cluster.error("read the committed offsets", e),
                ))
            }
        }
        let result = if cooperative {
            consumer.incremental_assign(&starts)
        } else {
            consumer.assign(&starts)
        };
        let generation = generation(consumer);
        let mut shared = self.lock();
        if let Err(e) = result {
            failure.get_or_insert(KafkaGroupError::Consumer {
                group: self.config.member.group.clone(),
                source: e,
            });
        }
        if !shared.joined {
            shared.joined = true;
            let member_id = member_id(consumer);
            shared.events.push(GroupEvent::Joined {
                member_id,
                generation,
            });
        }
        for (tp, offset, _) in &started {
            shared.assigned.insert(tp.clone());
            shared.next.insert(tp.clone(), *offset);
            // Committed as the start, as a Java consumer's position is (and the local
            // consumer's): the group shows the partition, with its lag, from the first commit.
            shared.done.insert(tp.clone(), *offset);
            shared.flushed.insert(tp.clone(), *offset);
        }
        let assigned: Vec<TopicPartition> = shared.assigned.iter().cloned().collect();
        let revoked = std::mem::take(&mut shared.revoked);
        shared.events.push(GroupEvent::Rebalanced {
            generation,
            assigned,
            revoked,
        });
        for (tp, offset, committed) in started {
            shared.events.push(GroupEvent::Started {
                partition: tp,
                offset,
                committed,
            });
        }
        if !missing.is_empty() {
            let partitions = missing
                .iter()
                .map(|tp| format!("{}/{}", tp.topic, tp.partition))
                .collect::<Vec<_>>()
                .join(", ");
            failure.get_or_insert(KafkaGroupError::NoCommittedOffset { partitions });
        }
        if let Some(e) = failure {
            shared.error.get_or_insert(e);
        }
    }

    /// Where a partition without a committed offset starts: `-o`, else the reset policy;
    /// `None` for the policy `none`.
    fn start_without_commit(
        &self,
        consumer: &BaseConsumer<Self>,
        tp: &TopicPartition,
    ) -> Result<Option<i64>, KafkaGroupError> {
        let spec = match (self.config.start, self.config.auto_offset_reset) {
            (Some(spec), _) => spec,
            (None, OffsetReset::Earliest) => OffsetSpec::Earliest,
            (None, OffsetReset::Latest) => OffsetSpec::Latest,
            (None, OffsetReset::None) => return Ok(None),
        };
        let (low, high) = consumer
            .fetch_watermarks(&tp.topic, tp.partition, self.cluster.timeout())
            .map_err(|e| {
                self.cluster.error(
                    &format!("read the offsets of {}/{}", tp.topic, tp.partition),
                    e,
                )
            })?;
        let high = high.max(low);
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let requested = match spec {
            OffsetSpec::Timestamp(ts) => {
                let mut q = TopicPartitionList::new();
                let _ = q.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(ts));
                let answer = consumer
                    .offsets_for_times(q, self.cluster.timeout())
                    .map_err(|e| self.cluster.error("look up offsets by time", e))?;
                match answer
                    .find_partition(&tp.topic, tp.partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) if o >= 0 => o,
                    _ => high,
                }
            }
            OffsetSpec::FromEnd(n) => high.saturating_sub(count(n)),
            OffsetSpec::FromStart(n) => low.saturating_add(count(n)),
            other => other.resolve(low, high).unwrap_or(high),
        };
        Ok(Some(requested.clamp(low, high)))
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

/// `map[tp] = value`, without allocating a key when `tp` is there already.
fn set(map: &mut BTreeMap<TopicPartition, i64>, tp: &TopicPartition, value: i64) {
    match map.get_mut(tp) {
        Some(v) => *v = value,
        None => {
            map.insert(tp.clone(), value);
        }
    }
}

/// Writes out the rendered records; their offsets become committable (and are stored, for
/// librdkafka's next commit, by the caller).
fn flush(shared: &mut Shared) -> Result<(), KafkaGroupError> {
    if !shared.out.is_empty() {
        let Shared { out, output, .. } = shared;
        let written = output.write_all(out).and_then(|()| output.flush());
        out.clear();
        if let Err(e) = written {
            shared.pending.clear();
            return Err(KafkaGroupError::Output(e));
        }
    }
    let pending = std::mem::take(&mut shared.pending);
    shared
        .flushed
        .extend(pending.iter().map(|(tp, o)| (tp.clone(), *o)));
    shared.done.extend(pending);
    Ok(())
}

/// The group generation librdkafka is in (-1 before the first join).
fn generation<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> i32 {
    // SAFETY: the metadata handle is checked for null and destroyed once.
    unsafe {
        let md = rdsys::rd_kafka_consumer_group_metadata(consumer.client().native_ptr());
        if md.is_null() {
            return -1;
        }
        let generation = rdsys::rd_kafka_consumer_group_metadata_generation_id(md);
        rdsys::rd_kafka_consumer_group_metadata_destroy(md);
        generation
    }
}

/// This member's id in its group.
fn member_id<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> String {
    let rk = consumer.client().native_ptr();
    // SAFETY: librdkafka returns a copy (or null) that is freed with rd_kafka_mem_free.
    unsafe {
        let id = rdsys::rd_kafka_memberid(rk);
        if id.is_null() {
            return String::new();
        }
        let s = CStr::from_ptr(id).to_string_lossy().into_owned();
        rdsys::rd_kafka_mem_free(rk, id.cast());
        s
    }
}

/// A member of a consumer group on a Kafka cluster.
pub struct KafkaGroupConsumer {
    consumer: BaseConsumer<GroupContext>,
    /// Output past this size is written at once (0: after every record, for --exec).
    flush_bytes: usize,
    exit_at_end: bool,
}

impl KafkaGroupConsumer {
    /// Joins the group (librdkafka joins in the background, at the first polls). Records are
    /// written to `output`.
    pub fn join(
        cluster: &Cluster,
        config: GroupConsumerConfig,
        exit_at_end: bool,
        output: Box<dyn Write + Send>,
        flush_bytes: usize,
    ) -> Result<KafkaGroupConsumer, KafkaGroupError> {
        let m = &config.member;
        if !KAFKA_ASSIGNORS.contains(&m.assignor.as_str()) {
            return Err(KafkaGroupError::Unsupported(format!(
                "--assignor {} is not available on a Kafka cluster: librdkafka's assignors are {} (Java's eager sticky assignor it does not have)",
                m.assignor,
                KAFKA_ASSIGNORS.join(", ")
            )));
        }
        if m.max_poll_interval < m.session_timeout {
            return Err(KafkaGroupError::Unsupported(format!(
                "on a Kafka cluster --max-poll-interval ({}) must be at least --session-timeout ({}), as librdkafka requires",
                humantime::format_duration(m.max_poll_interval),
                humantime::format_duration(m.session_timeout)
            )));
        }
        let ms = |d: Duration| d.as_millis().min(i32::MAX as u128).to_string();
        let mut props = cluster.client_config();
        props
            .set("group.id", &m.group)
            .set("client.id", &m.client_id)
            .set("session.timeout.ms", ms(m.session_timeout))
            .set("heartbeat.interval.ms", ms(m.heartbeat_interval))
            .set("max.poll.interval.ms", ms(m.max_poll_interval))
            .set("partition.assignment.strategy", &m.assignor)
            .set(
                "auto.offset.reset",
                match config.auto_offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                    OffsetReset::None => "error",
                },
            )
            .set("enable.auto.offset.store", "false")
            .set(
                "enable.auto.commit",
                if config.commit { "true" } else { "false" },
            )
            .set("auto.commit.interval.ms", ms(config.auto_commit_interval))
            .set(
                "enable.partition.eof",
                if exit_at_end { "true" } else { "false" },
            );
        if let Some(id) = &m.instance_id {
            props.set("group.instance.id", id);
        }
        super::set_unless_given(&mut props, &super::BACKLOG_FETCH);
        let context = GroupContext {
            log: cluster.log_routing(),
            cluster: cluster.clone(),
            config: config.clone(),
            shared: Mutex::new(Shared {
                out: Vec::with_capacity(flush_bytes.max(4096) * 2),
                output,
                pending: BTreeMap::new(),
                done: BTreeMap::new(),
                flushed: BTreeMap::new(),
                assigned: BTreeSet::new(),
                revoked: Vec::new(),
                at_end: BTreeSet::new(),
                next: BTreeMap::new(),
                events: Vec::new(),
                joined: false,
                closing: false,
                error: None,
            }),
        };
        let consumer: BaseConsumer<GroupContext> = props
            .create_with_context(context)
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        // The topics must exist (a Kafka consumer would wait for them silently).
        for topic in &m.topics {
            let metadata = cluster.metadata(&consumer, Some(topic))?;
            let found = metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
            if !found {
                return Err(ClusterError::TopicNotFound {
                    topic: topic.clone(),
                    brokers: cluster.brokers().to_owned(),
                }
                .into());
            }
        }
        let subscription: Vec<String> = match &m.pattern {
            // librdkafka subscribes to every topic a `^` pattern matches, now and later.
            Some(p) => vec![format!("^({p})$")],
            None => m.topics.clone(),
        };
        let names: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| KafkaGroupError::Consumer {
                group: m.group.clone(),
                source: e,
            })?;
        Ok(KafkaGroupConsumer {
            consumer,
            flush_bytes,
            exit_at_end,
        })
    }

    /// What happened in the group since the last call.
    pub fn take_events(&mut self) -> Vec<GroupEvent> {
        std::mem::take(&mut self.consumer.context().lock().events)
    }

    /// Delivers up to `budget` records to `sink`, which renders a record into the buffer it is
    /// given (or processes it and leaves the buffer alone). Waits up to `wait` for the first.
    pub fn poll<E, F>(&mut self, budget: usize, wait: Duration, mut sink: F) -> Result<Polled, E>
    where
        E: From<KafkaGroupError>,
        F: FnMut(&mut Vec<u8>, &str, i32, &RecordRef<'_>) -> Result<(), E>,
    {
        let deadline = Instant::now() + wait;
        let mut delivered = 0usize;
        let mut seen: Vec<TopicPartition> = Vec::new();
        while delivered < budget {
            let timeout = if delivered > 0 {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            let Some(polled) = self.consumer.poll(timeout) else {
                break;
            };
            let message = match polled {
                Ok(m) => m,
                Err(KafkaError::PartitionEOF(partition)) => {
                    self.note_eof(partition);
                    continue;
                }
                Err(e) => {
                    if let Some(fatal) = self.fatal(e) {
                        return Err(fatal.into());
                    }
                    continue;
                }
            };
            // The partition's name, allocated once per poll rather than per record.
            let (topic, partition) = (message.topic(), message.partition());
            let at = match seen
                .iter()
                .position(|tp| tp.partition == partition && tp.topic == topic)
            {
                Some(at) => at,
                None => {
                    seen.push(TopicPartition::new(topic, partition));
                    seen.len() - 1
                }
            };
            let tp = &seen[at];
            let mut record_headers: Vec<HeaderRef<'_>> = Vec::new();
            read_headers(&message, &mut record_headers);
            let record = RecordRef {
                offset: message.offset(),
                timestamp: message.timestamp().to_millis().unwrap_or(-1),
                key: message.key(),
                value: message.payload(),
                headers: Headers::List(&record_headers),
            };
            let mut shared = self.consumer.context().lock();
            sink(&mut shared.out, &tp.topic, tp.partition, &record)?;
            let next = record.offset + 1;
            set(&mut shared.pending, tp, next);
            set(&mut shared.next, tp, next);
            shared.at_end.remove(tp);
            delivered += 1;
            if shared.out.len() >= self.flush_bytes {
                flush(&mut shared)?;
            }
        }
        let mut shared = self.consumer.context().lock();
        flush(&mut shared)?;
        if let Some(e) = shared.error.take() {
            return Err(e.into());
        }
        let all_at_end = shared.assigned.iter().all(|tp| shared.at_end.contains(tp));
        drop(shared);
        self.store_done();
        Ok(Polled {
            delivered,
            all_at_end,
        })
    }

    /// Hands the offsets of what was written or processed to librdkafka, whose auto-commit
    /// commits them.
    fn store_done(&mut self) {
        let mut shared = self.consumer.context().lock();
        if shared.done.is_empty() || !self.consumer.context().config.commit {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (tp, next) in &shared.done {
            let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next));
        }
        shared.done.clear();
        drop(shared);
        // A partition revoked meanwhile is refused, which is right: it is not ours.
        let _ = self.consumer.store_offsets(&tpl);
    }

    /// An end-of-partition event: the partitions of that number this member reads are at
    /// their end if their cached log end says so (one of them: it is that one).
    fn note_eof(&mut self, partition: i32) {
        if !self.exit_at_end {
            return;
        }
        let rk = self.consumer.client().native_ptr();
        let mut shared = self.consumer.context().lock();
        let candidates: Vec<TopicPartition> = shared
            .assigned
            .iter()
            .filter(|tp| tp.partition == partition)
            .cloned()
            .collect();
        let only = candidates.len() == 1;
        for tp in candidates {
            let next = shared.next.get(&tp).copied().unwrap_or(-1);
            let at_end = only || cached_high_watermark(rk, &tp).is_some_and(|hw| next >= hw);
            if at_end {
                shared.at_end.insert(tp);
            }
        }
    }

    /// The error to stop for, or `None` for one librdkafka recovers from by itself.
    fn fatal(&self, e: KafkaError) -> Option<KafkaGroupError> {
        let group = &self.consumer.context().config.member.group;
        let cluster = &self.consumer.context().cluster;
        match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::InvalidSessionTimeout
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InconsistentGroupProtocol
                | RDKafkaErrorCode::InvalidGroupId
                | RDKafkaErrorCode::GroupMaxSizeReached
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::UnsupportedVersion,
            ) => Some(KafkaGroupError::Consumer {
                group: group.clone(),
                source: e,
            }),
            Some(RDKafkaErrorCode::AllBrokersDown) => Some(cluster.unreachable().into()),
            _ if matches!(e, KafkaError::MessageConsumptionFatal(_)) => {
                Some(KafkaGroupError::Consumer {
                    group: group.clone(),
                    source: e,
                })
            }
            _ => None,
        }
    }

    /// Whether every partition this member was assigned has been read to its end (after the
    /// member got its first assignment).
    pub fn at_end(&self) -> bool {
        let shared = self.consumer.context().lock();
        shared.joined && shared.assigned.iter().all(|tp| shared.at_end.contains(tp))
    }

    /// Writes out what was rendered (when `flush_output`), commits what was written and
    /// processed, and leaves the group.
    pub fn close(mut self, flush_output: bool) -> Result<(), KafkaGroupError> {
        let written = {
            let mut shared = self.consumer.context().lock();
            shared.closing = true;
            if flush_output {
                flush(&mut shared)
            } else {
                shared.out.clear();
                shared.pending.clear();
                Ok(())
            }
        };
        self.store_done();
        if self.consumer.context().config.commit {
            // Nothing stored since the last commit is not an error.
            let _ = self.consumer.commit_consumer_state(CommitMode::Sync);
        }
        // Dropping the consumer leaves the group (its revocation is served by the callback,
        // which writes nothing more: `closing`).
        drop(self.consumer);
        written
    }
}

/// The log end offset librdkafka last saw for a partition, without asking the cluster.
fn cached_high_watermark(rk: *mut rdsys::rd_kafka_t, tp: &TopicPartition) -> Option<i64> {
    let topic = std::ffi::CString::new(tp.topic.as_str()).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: valid client handle and C string; librdkafka writes two i64s.
    let err = unsafe {
        rdsys::rd_kafka_get_watermark_offsets(rk, topic.as_ptr(), tp.partition, &mut low, &mut high)
    };
    (err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// The headers of a message as bytes (the rdkafka crate insists on UTF-8 keys).
fn read_headers<'m>(
    message: &'m rdkafka::message::BorrowedMessage<'_>,
    out: &mut Vec<HeaderRef<'m>>,
) {
    // SAFETY: the headers belong to the message, which outlives `out`'s borrowed values; each
    // name is a NUL-terminated string and each value `size` bytes (or null).
    unsafe {
        let mut headers: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
        if rdsys::rd_kafka_message_headers(message.ptr(), &mut headers)
            != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            || headers.is_null()
        {
            return;
        }
        let mut idx = 0;
        loop {
            let mut name = std::ptr::null();
            let mut value = std::ptr::null();
            let mut size = 0usize;
            if rdsys::rd_kafka_header_get_all(headers, idx, &mut name, &mut value, &mut size)
                != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                break;
            }
            out.push(HeaderRef {
                key: CStr::from_ptr(name).to_bytes(),
                value: (!value.is_null())
                    .then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)),
            });
            idx += 1;
        }
    }
}
