//! `spool consume` without a group on either target: partitions assigned from an offset spec,
//! records delivered to the caller's renderer.
//!
//! Locally the partition logs are read by [`crate::consume::Consumer`]; on a cluster by
//! [`crate::kafka::consume::ClusterReader`]. Both hand out the same [`RecordRef`](crate::record::RecordRef)s, so what a
//! command prints for a record is the same byte for byte on both.

use std::collections::HashSet;
use std::time::Duration;

use super::{Target, TargetError};
use crate::consume::{
    resolve_start, Clamped, ConsumeError, Consumer, ConsumerSink, Polled, RenderAheadFor, Skipped,
};
use crate::kafka::consume::ClusterReader;
use crate::kafka::ClusterError;
use crate::spec::OffsetSpec;
use crate::store::StoreError;

/// A reader of assigned partitions on either target.
pub enum TargetConsumer {
    Local(Consumer, HashSet<(String, i32)>),
    Kafka(ClusterReader),
}

/// Which partitions of the named topics to assign.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// Only these partitions (`-p`); all when empty.
    pub partitions: &'a [i32],
    /// Topics come from a pattern: one deleted meanwhile, or without the `-p` partitions, is
    /// skipped rather than an error.
    pub from_pattern: bool,
}

/// A partition assigned from an offset outside its log.
#[derive(Debug, Clone)]
pub struct ClampedStart {
    pub topic: String,
    pub partition: i32,
    pub clamped: Clamped,
}

impl Target {
    /// A consumer with nothing assigned yet.
    pub fn consumer(&self) -> Result<TargetConsumer, TargetError> {
        match self {
            Target::Local(_) => Ok(TargetConsumer::Local(Consumer::new(), HashSet::new())),
            Target::Kafka(cluster) => Ok(TargetConsumer::Kafka(cluster.reader()?)),
        }
    }

    /// The topics whose whole name matches `pattern`, sorted.
    pub fn matching_topics(&self, pattern: &regex::Regex) -> Result<Vec<String>, TargetError> {
        let names = match self {
            Target::Local(store) => store.list_topics()?,
            Target::Kafka(cluster) => cluster.topic_names()?,
        };
        Ok(names.into_iter().filter(|t| pattern.is_match(t)).collect())
    }

    /// Makes `consumer` wake up for topics created later (a pattern subscription). A cluster
    /// is asked again at every idle pause instead.
    pub fn watch_new_topics(&self, consumer: &mut TargetConsumer) {
        if let (Target::Local(store), TargetConsumer::Local(c, _)) = (self, consumer) {
            c.watch(&store.topics_dir());
        }
    }

    /// Assigns the partitions of `names` that are not assigned yet, from `start`.
    pub fn assign_topics(
        &self,
        consumer: &mut TargetConsumer,
        names: &[String],
        selection: Selection<'_>,
        start: OffsetSpec,
    ) -> Result<Assignment, TargetError> {
        let mut clamps = Vec::new();
        let mut added = 0;
        match (self, consumer) {
            (Target::Local(store), TargetConsumer::Local(consumer, assigned)) => {
                for name in names {
                    let topic = match store.topic(name) {
                        Ok(t) => t,
                        Err(StoreError::TopicNotFound(_)) if selection.from_pattern => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let partitions = if selection.partitions.is_empty() {
                        topic.partitions()
                    } else if selection.from_pattern {
                        topic
                            .partitions()
                            .into_iter()
                            .filter(|p| selection.partitions.contains(&p.id))
                            .collect()
                    } else {
                        selection
                            .partitions
                            .iter()
                            .map(|&p| topic.partition(p))
                            .collect::<Result<_, _>>()?
                    };
                    for p in partitions {
                        // A topic or partition named twice is read once.
                        if !assigned.insert((p.topic.clone(), p.id)) {
                            continue;
                        }
                        let (offset, clamped) = resolve_start(&p, start)?;
                        consumer.assign(&p, offset)?;
                        added += 1;
                        if let Some(clamped) = clamped {
                            clamps.push(ClampedStart {
                                topic: p.topic.clone(),
                                partition: p.id,
                                clamped,
                            });
                        }
                    }
                }
            }
            (Target::Kafka(cluster), TargetConsumer::Kafka(reader)) => {
                for name in names {
                    let all = match cluster.partitions_of(name) {
                        Ok(all) => all,
                        Err(ClusterError::TopicNotFound { .. }) if selection.from_pattern => {
                            continue
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let partitions: Vec<i32> = if selection.partitions.is_empty() {
                        all
                    } else if selection.from_pattern {
                        all.into_iter()
                            .filter(|p| selection.partitions.contains(p))
                            .collect()
                    } else {
                        for &p in selection.partitions {
                            if !all.contains(&p) {
                                return Err(ClusterError::PartitionNotFound {
                                    topic: name.clone(),
                                    partition: p,
                                    brokers: cluster.brokers().to_string(),
                                }
                                .into());
                            }
                        }
                        selection.partitions.to_vec()
                    };
                    for p in partitions {
                        if reader.is_assigned(name, p) {
                            continue;
                        }
                        let clamped = reader.assign(name, p, start)?;
                        added += 1;
                        if let Some(clamped) = clamped {
                            clamps.push(ClampedStart {
                                topic: name.clone(),
                                partition: p,
                                clamped,
                            });
                        }
                    }
                }
            }
            _ => unreachable!("a consumer is made by its own target"),
        }
        Ok(Assignment {
            added,
            clamped: clamps,
        })
    }
}

/// What [`Target::assign_topics`] did.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// Partitions newly assigned.
    pub added: usize,
    /// Those whose start was clamped to their log.
    pub clamped: Vec<ClampedStart>,
}

impl TargetConsumer {
    /// Delivers up to `budget` records of the assigned partitions, fairly.
    #[inline]
    pub fn poll<E, S>(&mut self, budget: usize, mut sink: S) -> Result<Polled, E>
    where
        E: From<ConsumeError> + From<ClusterError>,
        S: ConsumerSink<E>,
    {
        match self {
            TargetConsumer::Local(c, _) => c.poll(budget, sink),
            TargetConsumer::Kafka(r) => r.poll(budget, |topic: &str, partition, record| {
                sink.record(topic, partition, record)
            }),
        }
    }

    /// Has records rendered ahead on a helper thread by the [`RenderAhead`](crate::store::readahead::RenderAhead) `make` gives for
    /// each partition (see [`Consumer::render_ahead`]); a cluster's records are rendered as
    /// they come.
    pub fn render_ahead(&mut self, make: RenderAheadFor) {
        if let TargetConsumer::Local(c, _) = self {
            c.render_ahead(make);
        }
    }

    /// Records that were no longer in a local log when the reader got to them (retention,
    /// damage), since the last call. A cluster's consumer says nothing of the kind.
    pub fn take_skipped(&mut self) -> Vec<Skipped> {
        match self {
            TargetConsumer::Local(c, _) => c.take_skipped(),
            TargetConsumer::Kafka(_) => Vec::new(),
        }
    }

    /// Waits until there may be new records, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, TargetError> {
        match self {
            TargetConsumer::Local(c, _) => Ok(c.wait(timeout)),
            // Bounded, so a pattern subscription looks for new topics and a closed stdout is
            // noticed while the cluster is quiet.
            TargetConsumer::Kafka(r) => Ok(r.wait(timeout.min(Duration::from_secs(1)))?),
        }
    }
}
