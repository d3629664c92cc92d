//! `spool topic`: create, list, describe, alter, delete, verify and prune topics.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;

use super::render::{self, OutputFormat};
use super::Context;
use crate::spec;
use crate::store::{
    config, fsutil, topic::rfc3339_ms, verify, StoreError, SyncPolicy, MAX_PARTITIONS,
};
use crate::target::topics::{NewTopicSpec, PartitionChange, TopicDescription, TopicSummary};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    Create(CreateArgs),
    List(ListArgs),
    Describe(DescribeArgs),
    Alter(AlterArgs),
    Delete(DeleteArgs),
    Verify(VerifyArgs),
    Prune(PruneArgs),
}

pub fn run(ctx: &Context, cmd: TopicCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TopicCommand::Create(a) => create(ctx, a),
        TopicCommand::List(a) => list(ctx, a),
        TopicCommand::Describe(a) => describe(ctx, a),
        TopicCommand::Alter(a) => alter(ctx, a),
        TopicCommand::Delete(a) => delete(ctx, a),
        TopicCommand::Verify(a) => verify_cmd(ctx, a),
        TopicCommand::Prune(a) => prune(ctx, a),
    }
}

/// Create a topic.
///
/// A topic is a named log split into partitions; each partition is an ordered, append-only
/// sequence of records numbered by offset from 0. Configs use Kafka's names (retention.ms,
/// retention.bytes, segment.bytes, segment.ms, max.message.bytes); by default records are kept
/// forever.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool topic create orders --partitions 3\n  spool topic create clicks -p 8 --retention 7d --segment-bytes 64MiB"
)]
pub struct CreateArgs {
    /// Topic name: 1-249 characters of letters, digits, '.', '_' and '-'.
    pub topic: String,
    /// Number of partitions.
    #[arg(short, long, default_value_t = 1, value_name = "N", value_parser = partitions_arg)]
    pub partitions: i64,
    /// Copies of each partition (a Kafka cluster's topics; a local store keeps one copy, so
    /// only 1 is accepted there) [default: the brokers' default.replication.factor].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=i64::from(i16::MAX)))]
    pub replication_factor: Option<i32>,
    /// A topic config as KEY=VALUE (repeatable), e.g. --config retention.ms=60000. A local
    /// store knows retention.ms, retention.bytes, segment.bytes, segment.ms,
    /// max.message.bytes and compression.type; a cluster takes any of Kafka's topic configs.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = super::kv_arg)]
    pub configs: Vec<(String, String)>,
    /// Delete records older than this (retention.ms), e.g. 7d or 12h; -1 keeps them forever.
    #[arg(long, value_name = "DURATION", value_parser = super::retention_arg, allow_negative_numbers = true)]
    pub retention: Option<i64>,
    /// Keep at most this much per partition (retention.bytes), e.g. 1GiB; -1 for no limit.
    #[arg(long, value_name = "SIZE", value_parser = super::retention_bytes_arg, allow_negative_numbers = true)]
    pub retention_bytes: Option<i64>,
    /// Roll to a new segment at this size (segment.bytes, at least 1KiB) [default: 1GiB].
    #[arg(long, value_name = "SIZE", value_parser = segment_bytes_arg)]
    pub segment_bytes: Option<u64>,
    /// Succeed without change when the topic already exists.
    #[arg(long)]
    pub if_not_exists: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Print nothing but data and errors (no confirmations or notices).
    #[arg(short, long)]
    pub quiet: bool,
}

fn create(ctx: &Context, a: CreateArgs) -> anyhow::Result<ExitCode> {
    let mut configs: BTreeMap<String, String> = a.configs.into_iter().collect();
    add_config_flag(&mut configs, "--retention", "retention.ms", a.retention)?;
    add_config_flag(
        &mut configs,
        "--retention-bytes",
        "retention.bytes",
        a.retention_bytes,
    )?;
    add_config_flag(
        &mut configs,
        "--segment-bytes",
        "segment.bytes",
        a.segment_bytes,
    )?;
    let partitions = i32::try_from(a.partitions).unwrap_or(i32::MAX);
    if partitions != a.partitions as i32 || a.partitions < 1 {
        return Err(StoreError::BadPartitionCount {
            requested: a.partitions,
            max: crate::store::MAX_PARTITIONS,
        }
        .into());
    }
    let spec = NewTopicSpec {
        name: a.topic.clone(),
        partitions,
        replication_factor: a.replication_factor,
        configs,
    };
    match ctx.target.create_topic(&spec) {
        Ok(()) => {}
        Err(e) if e.is_topic_exists() && a.if_not_exists => {
            if a.output == OutputFormat::Table {
                if !a.quiet {
                    outln!("Topic {} already exists.", a.topic)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        Err(e) => return Err(e.into()),
    }
    match a.output {
        OutputFormat::Table if a.quiet => {}
        OutputFormat::Table => outln!(
            "Created topic {} with {}.",
            a.topic,
            render::count(partitions, "partition")
        )?,
        f => render::print_data(f, &ctx.target.describe_topic(&a.topic)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds a config given by its own flag (`--retention 7d`), refusing the same config given
/// twice (`--config retention.ms=1000 --retention 7d`) instead of silently keeping one.
fn add_config_flag<T: ToString>(
    configs: &mut BTreeMap<String, String>,
    flag: &str,
    key: &str,
    value: Option<T>,
) -> anyhow::Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    if configs.contains_key(key) {
        return Err(super::UsageError(format!(
            "{flag} and --config {key}=... both set {key}; give one of them"
        ))
        .into());
    }
    configs.insert(key.to_owned(), value.to_string());
    Ok(())
}

/// List topics.
///
/// One line per topic: its partition count, how many records it keeps (log end offset minus
/// log start offset, summed over its partitions) and its size on disk. On a Kafka cluster
/// (-b), the replication factor instead of the size (the brokers keep the files).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  spool topic list\n  spool topic list -o json")]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Print nothing but data and errors (no confirmations or notices).
    #[arg(short, long)]
    pub quiet: bool,
}

fn list(ctx: &Context, a: ListArgs) -> anyhow::Result<ExitCode> {
    let summaries = ctx.target.list_topics()?;
    let damaged: Vec<&TopicSummary> = summaries.iter().filter(|s| s.error.is_some()).collect();
    if a.output != OutputFormat::Table {
        render::print_data(a.output, &summaries)?;
    } else if summaries.is_empty() {
        if !a.quiet {
            eprintln!("No topics in {}.", ctx.target.describe());
        }
    } else {
        // Columns only one target fills (replication on a cluster, size on disk locally)
        // appear when some topic has them.
        let replicated = summaries.iter().any(|s| s.replication_factor.is_some());
        let sized = summaries.iter().any(|s| s.size_bytes.is_some());
        let mut headers = vec!["TOPIC", "PARTITIONS"];
        if replicated {
            headers.push("REPLICATION-FACTOR");
        }
        headers.push("RECORDS");
        if sized {
            headers.push("SIZE");
        }
        let mut t = render::table(&headers);
        for s in &summaries {
            let mut name = s.name.clone();
            if s.error.is_some() {
                name.push_str(" (DAMAGED)");
            }
            let mut row = vec![name, render::or_dash(s.partitions)];
            if replicated {
                row.push(render::or_dash(s.replication_factor));
            }
            row.push(render::or_dash(s.records));
            if sized {
                row.push(render::or_dash(s.size_bytes.map(spec::format_size)));
            }
            t.add_row(row);
        }
        render::print_table(&t)?;
    }
    if damaged.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let details: Vec<String> = damaged
        .iter()
        .map(|s| format!("{}: {}", s.name, s.error.as_deref().unwrap_or_default()))
        .collect();
    Err(super::Hinted {
        message: format!(
            "{} topic{} could not be read: {}",
            damaged.len(),
            if damaged.len() == 1 { "" } else { "s" },
            details.join("; ")
        ),
        hint: format!(
            "the other topics are listed; `spool topic describe {}` shows the damage, and a damaged topic.yaml can be restored from a backup or the topic deleted",
            damaged[0].name
        ),
    }
    .into())
}

/// Describe topics: id, configs and, per partition, offsets, size and timestamps.
///
/// Per partition: the log start offset (the first record kept; retention moves it forward),
/// the log end offset (the offset the next record will get), the size on disk, the number of
/// segments and the timestamps of the first and last record. Like `kafka-topics.sh --describe`,
/// with what `kafka-log-dirs.sh` and `GetOffsetShell` would add.
///
/// On a Kafka cluster (-b): per partition its LEADER, REPLICAS and ISR (in-sync replicas) by
/// broker id, and the log start and end offsets; the replication factor; and the configs that
/// are not Kafka's defaults with their source (topic, broker, cluster, broker-static). `-o
/// json` lists every config.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool topic describe orders\n  spool topic describe orders -o json | jq '.partitions[].log_end_offset'"
)]
pub struct DescribeArgs {
    /// The topic(s) to describe.
    #[arg(required = true, value_name = "TOPIC", add = super::complete::topics())]
    pub topics: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

fn describe(ctx: &Context, a: DescribeArgs) -> anyhow::Result<ExitCode> {
    let mut descriptions = Vec::new();
    for name in &a.topics {
        descriptions.push(ctx.target.describe_topic(name)?);
    }
    if a.output != OutputFormat::Table {
        if descriptions.len() == 1 {
            render::print_data(a.output, &descriptions[0])?;
        } else {
            render::print_data(a.output, &descriptions)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for (i, d) in descriptions.iter().enumerate() {
        if i > 0 {
            outln!()?;
        }
        print_description(d)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form of a topic description: the fields, then a table of the partitions whose
/// columns are those the description fills (LEADER, REPLICAS and ISR on a cluster; size,
/// segments and timestamps locally).
fn print_description(d: &TopicDescription) -> anyhow::Result<()> {
    outln!("Topic:       {}", d.name)?;
    if let Some(id) = &d.id {
        outln!("TopicId:     {id}")?;
    }
    if let Some(created_at) = &d.created_at {
        outln!("Created:     {created_at}")?;
    }
    outln!("Partitions:  {}", d.partition_count)?;
    if let Some(rf) = d.replication_factor {
        outln!("Replication: {rf}")?;
    }
    let configs = if !d.config_sources.is_empty() {
        // A cluster's configs: those not at Kafka's default, with where they come from.
        let set: Vec<String> = d
            .config_sources
            .iter()
            .filter(|c| c.source != "default")
            .map(|c| {
                let value = match (&c.value, c.sensitive) {
                    (_, true) => "(sensitive)",
                    (Some(v), false) => v.as_str(),
                    (None, false) => "(null)",
                };
                format!("{}={value} ({})", c.name, c.source)
            })
            .collect();
        if set.is_empty() {
            d.defaults.to_owned()
        } else {
            set.join(", ")
        }
    } else if d.configs.is_empty() {
        d.defaults.to_owned()
    } else {
        d.configs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    outln!("Configs:     {configs}")?;
    outln!()?;
    let replicated = d.partitions.iter().any(|p| p.leader.is_some());
    let local = d.partitions.iter().any(|p| p.size_bytes.is_some());
    let mut headers = vec!["PARTITION"];
    if replicated {
        headers.extend(["LEADER", "REPLICAS", "ISR"]);
    }
    headers.extend(["LOG-START-OFFSET", "LOG-END-OFFSET"]);
    if local {
        headers.extend(["SIZE", "SEGMENTS", "FIRST-TIMESTAMP", "LAST-TIMESTAMP"]);
    }
    let ids = |ids: &Option<Vec<i32>>| {
        render::or_dash(ids.as_ref().map(|ids| {
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }))
    };
    let mut t = render::table(&headers);
    for p in &d.partitions {
        let mut row = vec![p.partition.to_string()];
        if replicated {
            row.push(render::or_dash(p.leader.filter(|l| *l >= 0)));
            row.push(ids(&p.replicas));
            row.push(ids(&p.isr));
        }
        row.push(p.log_start_offset.to_string());
        row.push(p.log_end_offset.to_string());
        if local {
            row.push(render::or_dash(p.size_bytes.map(spec::format_size)));
            row.push(render::or_dash(p.segments));
            row.push(render::or_dash(p.first_timestamp.get().map(rfc3339_ms)));
            row.push(render::or_dash(p.last_timestamp.get().map(rfc3339_ms)));
        }
        t.add_row(row);
    }
    render::print_table(&t)?;
    Ok(())
}

/// Change a topic: add partitions or set configs.
///
/// As in Kafka, partitions can only be added: records keep their partition, so keys hashed to a
/// partition before the change may hash elsewhere after it. `--config KEY=` (empty value)
/// removes a config, restoring its default.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool topic alter orders --partitions 6\n  spool topic alter orders --retention 1d\n  spool topic alter orders --config retention.ms=86400000",
    group(ArgGroup::new("change").required(true).multiple(true).args(["partitions", "configs", "retention", "retention_bytes"]))
)]
pub struct AlterArgs {
    /// The topic to change.
    #[arg(add = super::complete::topics())]
    pub topic: String,
    /// The new partition count (only increases are allowed).
    #[arg(short, long, value_name = "N", value_parser = partitions_arg)]
    pub partitions: Option<i64>,
    /// Set a config as KEY=VALUE, or remove it with KEY= (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = super::kv_arg)]
    pub configs: Vec<(String, String)>,
    /// Delete records older than this (retention.ms), e.g. 7d; -1 keeps them forever.
    #[arg(long, value_name = "DURATION", value_parser = super::retention_arg, allow_negative_numbers = true)]
    pub retention: Option<i64>,
    /// Keep at most this much per partition (retention.bytes), e.g. 1GiB; -1 for no limit.
    #[arg(long, value_name = "SIZE", value_parser = super::retention_bytes_arg, allow_negative_numbers = true)]
    pub retention_bytes: Option<i64>,
    /// Print nothing but data and errors (no confirmations or notices).
    #[arg(short, long)]
    pub quiet: bool,
}

fn alter(ctx: &Context, a: AlterArgs) -> anyhow::Result<ExitCode> {
    if !ctx.target.topic_exists(&a.topic)? {
        return Err(missing_topic(ctx, &a.topic));
    }
    if let Some(n) = a.partitions {
        let PartitionChange { before, after } = ctx.target.add_partitions(&a.topic, n)?;
        if !a.quiet && before != after {
            outln!(
                "Topic {} now has {} (was {before}).",
                a.topic,
                render::count(after, "partition")
            )?;
        } else if !a.quiet {
            outln!(
                "Topic {} already has {}.",
                a.topic,
                render::count(before, "partition")
            )?;
        }
    }
    let mut changes: BTreeMap<String, String> = a.configs.into_iter().collect();
    add_config_flag(&mut changes, "--retention", "retention.ms", a.retention)?;
    add_config_flag(
        &mut changes,
        "--retention-bytes",
        "retention.bytes",
        a.retention_bytes,
    )?;
    if !changes.is_empty() {
        ctx.target.alter_topic_configs(&a.topic, &changes)?;
        if !a.quiet {
            outln!("Updated the configs of topic {}.", a.topic)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Delete topics and all their records.
///
/// The topic's directory, every partition and every segment in it, is removed at once, as
/// `kafka-topics.sh --delete` does; this cannot be undone. Consumer groups keep what they had
/// committed for it (`spool group delete-offsets` removes that).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool topic delete orders\n  spool topic delete scratch --if-exists"
)]
pub struct DeleteArgs {
    /// The topic(s) to delete.
    #[arg(required = true, value_name = "TOPIC", add = super::complete::topics())]
    pub topics: Vec<String>,
    /// Succeed when a topic does not exist.
    #[arg(long)]
    pub if_exists: bool,
    /// Print nothing but data and errors (no confirmations or notices).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Checks that every named topic exists before any is acted on: `topic delete a typo` must
/// not delete `a` and then fail.
fn check_all_exist(ctx: &Context, names: &[String]) -> anyhow::Result<()> {
    for name in names {
        if !ctx.target.topic_exists(name)? {
            return Err(missing_topic(ctx, name));
        }
    }
    Ok(())
}

/// The error for a topic the target does not have.
fn missing_topic(ctx: &Context, name: &str) -> anyhow::Error {
    ctx.target.topic_not_found(name).into()
}

fn delete(ctx: &Context, a: DeleteArgs) -> anyhow::Result<ExitCode> {
    if !a.if_exists {
        check_all_exist(ctx, &a.topics)?;
    }
    for name in &a.topics {
        match ctx.target.delete_topic(name) {
            Ok(()) if a.quiet => {}
            Ok(()) => outln!("Deleted topic {name}.")?,
            Err(e) if e.is_topic_not_found() && a.if_exists => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Check every batch (CRC, offsets) and both indexes of a topic's partitions.
///
/// Reports each problem with its file and byte position, and exits 1 when any is left. With
/// --repair, a damaged segment is cut after its last valid batch (the cut bytes are kept beside
/// it in a `.cut-<ms>` file) and wrong indexes are rebuilt.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool topic verify orders\n  spool topic verify orders --repair",
    after_long_help = "Examples:\n  spool topic verify orders\n  spool topic verify orders --repair\n\nExit status:\n  0  no problem found, or every problem repaired\n  1  problems found (and not repaired), or another runtime error\n  2  usage error"
)]
pub struct VerifyArgs {
    /// The topic(s) to check.
    #[arg(required = true, value_name = "TOPIC", add = super::complete::topics())]
    pub topics: Vec<String>,
    /// Cut damaged tails and rebuild indexes.
    #[arg(long)]
    pub repair: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Print nothing but data and errors (no confirmations or notices).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Serialize)]
struct TopicVerification {
    topic: String,
    partitions: Vec<verify::PartitionReport>,
}

fn verify_cmd(ctx: &Context, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.local_store(
        "spool topic verify",
        "it checks the segment files on disk, and a cluster's brokers keep theirs to themselves (they check them on start)",
    )?;
    check_all_exist(ctx, &a.topics)?;
    let mut results = Vec::new();
    let mut unrepaired = 0;
    for name in &a.topics {
        let topic = store.topic(name)?;
        let mut reports = Vec::new();
        for p in topic.partitions() {
            let report = verify::verify_partition(&p.dir, p.id, a.repair, fsutil::now_ms())?;
            if !a.repair {
                unrepaired += report.problems.len();
            }
            reports.push(report);
        }
        results.push(TopicVerification {
            topic: name.clone(),
            partitions: reports,
        });
    }
    if a.output != OutputFormat::Table {
        render::print_data(a.output, &results)?;
    } else {
        for r in &results {
            for p in &r.partitions {
                if a.quiet
                    && p.problems.is_empty()
                    && p.repairs.is_empty()
                    && p.lost_to_damage.is_empty()
                {
                    continue;
                }
                let status = if p.problems.is_empty() {
                    "ok"
                } else {
                    "DAMAGED"
                };
                outln!(
                    "{}/{}: {status} ({}, {}, {})",
                    r.topic,
                    p.partition,
                    render::count(p.segments as u64, "segment"),
                    render::count(p.batches, "batch"),
                    render::count(p.records, "record")
                )?;
                for problem in &p.problems {
                    outln!(
                        "  {} at byte {}: {}",
                        problem.file.display(),
                        problem.position,
                        problem.message
                    )?;
                }
                for lost in &p.lost_to_damage {
                    outln!(
                        "  offsets {}..{} were lost to damage (cut by crash recovery or a repair; never reused)",
                        lost.from, lost.to
                    )?;
                }
                for repair in &p.repairs {
                    outln!("  repaired: {repair}")?;
                }
            }
        }
    }
    if unrepaired > 0 {
        return Err(super::Hinted {
            message: format!("found {}", render::count(unrepaired as u64, "problem")),
            hint: "run again with --repair to cut damaged tails and rebuild indexes".into(),
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Apply retention now: delete old segments of topics with retention.ms or retention.bytes.
///
/// As Kafka's log cleaner does in the broker, whole segments are deleted: those whose newest
/// record is older than retention.ms, and the oldest ones while a partition is larger than
/// retention.bytes. The log start offset moves forward; offsets are never reused. Producers
/// also do this whenever they roll to a new segment, so pruning by hand is only needed for a
/// topic that is no longer written to.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  spool topic prune\n  spool topic prune orders")]
pub struct PruneArgs {
    /// Only this topic (default: every topic).
    #[arg(add = super::complete::topics())]
    pub topic: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Print nothing but data and errors (no confirmations or notices).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Serialize)]
struct PruneResult {
    topic: String,
    partition: i32,
    deleted_segments: usize,
    deleted_bytes: u64,
    log_start_offset: i64,
}

fn prune(ctx: &Context, a: PruneArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.local_store(
        "spool topic prune",
        "it deletes old segment files now, and a cluster's brokers apply retention themselves (set it with `spool topic alter TOPIC --retention ...`)",
    )?;
    let names = match a.topic {
        Some(t) => vec![t],
        None => store.list_topics()?,
    };
    let mut results = Vec::new();
    for name in names {
        let topic = store.topic(&name)?;
        for p in topic.partitions() {
            let pruned = p.writer(SyncPolicy::OnRequest)?.prune(fsutil::now_ms())?;
            results.push(PruneResult {
                topic: name.clone(),
                partition: p.id,
                deleted_segments: pruned.deleted_segments,
                deleted_bytes: pruned.deleted_bytes,
                log_start_offset: pruned.log_start_offset,
            });
        }
    }
    if a.output != OutputFormat::Table {
        render::print_data(a.output, &results)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = render::table(&[
        "TOPIC",
        "PARTITION",
        "DELETED-SEGMENTS",
        "DELETED",
        "LOG-START-OFFSET",
    ]);
    for r in &results {
        t.add_row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.deleted_segments.to_string(),
            spec::format_size(r.deleted_bytes),
            r.log_start_offset.to_string(),
        ]);
    }
    render::print_table(&t)?;
    Ok(ExitCode::SUCCESS)
}

/// clap value parser for a partition count: bad counts are usage errors (exit 2).
fn partitions_arg(s: &str) -> Result<i64, String> {
    let n: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number of partitions, not {s:?}"))?;
    if !(1..=i64::from(MAX_PARTITIONS)).contains(&n) {
        return Err(format!(
            "partition count must be between 1 and {MAX_PARTITIONS}"
        ));
    }
    Ok(n)
}

/// clap value parser for `--segment-bytes`: a size Kafka's segment.bytes accepts.
fn segment_bytes_arg(s: &str) -> Result<u64, String> {
    let n = super::size_arg(s)?;
    config::validate("segment.bytes", &n.to_string()).map_err(|e| e.to_string())?;
    Ok(n)
}
