//! `spool consume --group`: the group half of `spool consume` (Kafka's "subscribe" mode).

use std::fs::File;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::consume::{ConsumeArgs, Renderer, OUT_FLUSH};
use super::printer::{Interrupted, LostPartitions, Owner, Printer, SliceOver};
use super::Context;
use crate::group::assignor::{TopicPartition, ASSIGNOR_NAMES};
use crate::group::consumer::{GroupConsumer, GroupConsumerConfig, GroupEvent, OffsetReset};
use crate::group::member::{MemberConfig, OutputGate};
use crate::kafka::group_consumer::{KafkaGroupConsumer, KafkaGroupError};
use crate::kafka::Cluster;
use crate::name::{self, NameKind};
use crate::record::RecordRef;
use crate::store::Store;
use crate::target::Target;

/// Consumer group flags of `spool consume`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Consumer group")]
pub struct GroupArgs {
    /// Join consumer group GROUP: the group's members share the topics' partitions, and the
    /// group remembers (commits) how far it has read.
    ///
    /// With -b, the group is the Kafka cluster's, joined through librdkafka's consumer with
    /// the flags below as its properties; its members print their assignments and commit
    /// what they printed as a local member does.
    #[arg(short, long, value_name = "GROUP", add = super::complete::groups())]
    pub group: Option<String>,

    /// This consumer's client id, shown by `spool group describe`.
    #[arg(
        long,
        value_name = "ID",
        default_value = "spool-consumer",
        requires = "group"
    )]
    pub client_id: String,

    /// Static membership (Kafka's group.instance.id): a restart within the session timeout
    /// gets the same partitions back without a rebalance. Two live consumers cannot share one.
    #[arg(long, value_name = "ID", requires = "group")]
    pub instance_id: Option<String>,

    /// How partitions are spread over the members; every member of a group must use the same.
    ///
    /// Kafka's partition.assignment.strategy. On a Kafka cluster (-b): range, roundrobin or
    /// cooperative-sticky (librdkafka has no eager sticky assignor).
    #[arg(long, value_name = "NAME", default_value = "cooperative-sticky", value_parser = clap::builder::PossibleValuesParser::new(ASSIGNOR_NAMES), requires = "group")]
    pub assignor: String,

    /// How often the member proves it is alive.
    ///
    /// A background thread refreshes the member's lease file at this interval (Kafka's
    /// heartbeat.interval.ms). Between 10ms and 1h, and at most half of --session-timeout; a
    /// third of it is usual.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = super::duration_within(super::ms(10), super::ms(3_600_000)), requires = "group")]
    pub heartbeat_interval: Duration,

    /// A member silent for this long (hung, stopped) is removed and its partitions move.
    ///
    /// Kafka's session.timeout.ms. A member that exits or crashes (even kill -9) releases the
    /// lock on its lease, so the others notice at once, whatever this says: the timeout only
    /// matters for a member that is alive but silent (stopped with SIGSTOP, stuck on a disk).
    /// For a static member (--instance-id) it is also how long its partitions wait for it to
    /// come back.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::duration_within(super::ms(100), super::ms(3_600_000)), requires = "group")]
    pub session_timeout: Duration,

    /// A member whose output has not moved for this long leaves the group and rejoins later.
    ///
    /// Kafka's max.poll.interval.ms: the time allowed between two polls. A member blocked on a
    /// full pipe (its reader stopped reading) or on a slow --exec command for this long gives
    /// its partitions up so others can read them, and rejoins when it can write again. On a
    /// Kafka cluster (-b) it must be at least --session-timeout, as librdkafka requires.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::duration_within(super::ms(1000), super::ms(24 * 86_400_000)), requires = "group")]
    pub max_poll_interval: Duration,

    /// How often the offsets of records written out are committed.
    ///
    /// Kafka's auto.commit.interval.ms. Offsets are also committed before a partition is
    /// handed over and on a clean exit (end of input, -n, --timeout, Ctrl-C). A member killed
    /// with kill -9 loses at most this much progress: its successor re-delivers the records
    /// after the last commit (at-least-once).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = super::duration_within(super::ms(10), super::ms(3_600_000)), requires = "group")]
    pub auto_commit_interval: Duration,

    /// Where partitions without a committed offset start, unless -o says otherwise.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = ResetPolicy::Earliest, requires = "group")]
    pub auto_offset_reset: ResetPolicy,

    /// Never commit: read the group's partitions without moving its offsets.
    #[arg(long, requires = "group")]
    pub no_commit: bool,

    /// Run CMD once per record (value on stdin; SPOOL_TOPIC, SPOOL_PARTITION, SPOOL_OFFSET,
    /// SPOOL_KEY, SPOOL_TIMESTAMP in its environment) and commit a record only after CMD
    /// exited 0. A failing CMD stops the consumer (exit 1) after committing what succeeded.
    ///
    /// CMD's output goes to spool's stdout as CMD writes it, and spool adds nothing: values
    /// carry no newline, so `--exec cat` runs the records together on one line (and `| head`
    /// waits for a line that does not end). End each with one: `--exec 'cat; echo'`.
    #[arg(long, value_name = "CMD", requires = "group", conflicts_with_all = ["format", "output"])]
    pub exec: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResetPolicy {
    Earliest,
    Latest,
    None,
}

pub(super) fn run(ctx: &Context, a: ConsumeArgs, renderer: Renderer) -> anyhow::Result<ExitCode> {
    let g = &a.group;
    let group = g.group.clone().expect("checked by the caller");
    name::validate(NameKind::Group, &group)?;
    name::validate(NameKind::Group, &g.client_id)
        .map_err(|e| super::consume::usage_error(format!("invalid --client-id: {e}")))?;
    if let Some(id) = &g.instance_id {
        name::validate(NameKind::Group, id)
            .map_err(|e| super::consume::usage_error(format!("invalid --instance-id: {e}")))?;
    }
    // Kafka's rule of thumb, enforced: a member must be able to miss a heartbeat without
    // being expired, and must not be removed for slow output before it could heartbeat.
    if g.session_timeout < 2 * g.heartbeat_interval {
        return Err(super::consume::usage_error(format!(
            "--session-timeout ({}) must be at least twice --heartbeat-interval ({}); a third is usual",
            humantime::format_duration(g.session_timeout),
            humantime::format_duration(g.heartbeat_interval)
        )));
    }
    if g.max_poll_interval < g.heartbeat_interval {
        return Err(super::consume::usage_error(format!(
            "--max-poll-interval ({}) must be at least --heartbeat-interval ({})",
            humantime::format_duration(g.max_poll_interval),
            humantime::format_duration(g.heartbeat_interval)
        )));
    }
    let config = GroupConsumerConfig {
        member: MemberConfig {
            group: group.clone(),
            topics: a.topics.clone(),
            pattern: a
                .regex
                .as_ref()
                .map(|r| super::consume::pattern_text(r).to_owned()),
            client_id: g.client_id.clone(),
            instance_id: g.instance_id.clone(),
            assignor: g.assignor.clone(),
            session_timeout: g.session_timeout,
            heartbeat_interval: g.heartbeat_interval,
            max_poll_interval: g.max_poll_interval,
        },
        auto_offset_reset: match g.auto_offset_reset {
            ResetPolicy::Earliest => OffsetReset::Earliest,
            ResetPolicy::Latest => OffsetReset::Latest,
            ResetPolicy::None => OffsetReset::None,
        },
        start: a.offset,
        auto_commit_interval: g.auto_commit_interval,
        commit: !g.no_commit,
    };
    super::install_interrupt_handler();
    match &ctx.target {
        Target::Local(store) => run_local(store, &a, renderer, config),
        Target::Kafka(cluster) => run_kafka(cluster, &a, renderer, config),
    }
}

/// How long a group member's poll may print before it ends at its next write: the member
/// follows its group (rebalances, auto-commits, progress for --max-poll-interval) between
/// polls, and a poll of a million records into a slow pipe could otherwise keep it from its
/// group for seconds. Into a fast reader a million records take some 15 ms.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// A member of a group of the local store.
fn run_local(
    store: &Store,
    a: &ConsumeArgs,
    mut renderer: Renderer,
    config: GroupConsumerConfig,
) -> anyhow::Result<ExitCode> {
    for topic in &a.topics {
        store.topic(topic)?;
    }
    let g = &a.group;
    let group = config.member.group.clone();
    let mut gc = GroupConsumer::join(store, config)?;
    if g.exec.is_none() && renderer.worth_rendering_ahead() {
        // JSON and templates rendered on the read-ahead thread, as for a plain read.
        gc.consumer_mut()
            .render_ahead(super::printer::render_ahead(&renderer));
    }
    let quiet = a.quiet;
    // -o names where partitions without a committed offset start: say so, once, when it is
    // overridden by a committed offset (else `-o earliest -e` silently reads nothing).
    let mut offset_note = OffsetNote::new(a);
    report(&group, gc.take_events(), quiet, &mut offset_note);

    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
    let mut stdout = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    let mut out: Vec<u8> = Vec::with_capacity(OUT_FLUSH * 2);
    let mut count: u64 = 0;
    let limit = a.max_messages.unwrap_or(u64::MAX);
    let mut last_record = Instant::now();
    let exec = g.exec.clone();
    // A poll ends at its first write after this long, so the member follows its group
    // (rebalances, commits) at least this often while it prints (see `POLL_SLICE`).
    let slice = POLL_SLICE.min(g.auto_commit_interval);

    let result = (|| -> anyhow::Result<()> {
        loop {
            if super::interrupted() {
                return Ok(());
            }
            let gate = gc.output_gate();
            gc.maintain(&mut || write_if_owner(&gate, &mut stdout, &mut out).map(drop))?;
            report(&group, gc.take_events(), quiet, &mut offset_note);
            if count >= limit {
                return Ok(());
            }
            // Every write of records below is preceded by this member's check that it still
            // owns its partitions (DESIGN's invariant 5), however much output is buffered.
            let polled = match &exec {
                Some(cmd) => {
                    let gate = gc.output_gate();
                    let budget = (limit - count).min(100) as usize;
                    let mut processed: Vec<(String, i32, i64)> = Vec::new();
                    let polled = gc.poll(
                        budget,
                        |topic: &str, partition: i32, rec: RecordRef<'_>| -> anyhow::Result<()> {
                            if !gate.check() {
                                return Err(LostPartitions.into());
                            }
                            run_exec(cmd, topic, partition, &rec)?;
                            processed.push((topic.to_owned(), partition, rec.offset));
                            Ok(())
                        },
                    );
                    for (topic, partition, offset) in &processed {
                        gc.mark_processed(topic, *partition, *offset);
                    }
                    if let Ok(p) = &polled {
                        count += p.delivered as u64;
                    }
                    polled
                }
                None => {
                    // As many records a poll as a plain read: the slice, not the budget,
                    // bounds how long a poll keeps the member from its group.
                    let budget = (limit - count).min(1 << 20) as usize;
                    let mut owner = Owner::new(gc.output_gate(), count, slice);
                    let printer = Printer {
                        renderer: &mut renderer,
                        out: &mut out,
                        stdout: &mut stdout,
                        count: &mut count,
                        owner: Some(&mut owner),
                    };
                    match gc.poll(budget, printer) {
                        // What the poll left rendered, written if the member still owns its
                        // partitions (else dropped: another member owns them now).
                        Ok(p) => {
                            if (!out.is_empty() || p.delivered > 0)
                                && owner.write_rest(&mut stdout, &mut out, &mut count)?
                            {
                                gc.mark_flushed();
                            }
                            Ok(p)
                        }
                        // Ended at a write (Ctrl-C or SIGTERM, or the slice is over): every
                        // record delivered was printed, and its position may be committed.
                        Err(e) if e.is::<Interrupted>() || e.is::<SliceOver>() => {
                            gc.mark_flushed();
                            last_record = Instant::now();
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if !quiet {
                for s in gc.consumer_mut().take_skipped() {
                    eprintln!("warning: {s}");
                }
            }
            let polled = match polled {
                Ok(p) => p,
                // Rendered records of partitions this member may no longer own were dropped
                // (left to their new owner); the next `maintain` rejoins.
                Err(e) if e.is::<LostPartitions>() => {
                    out.clear();
                    continue;
                }
                Err(e) => {
                    if exec.is_some() {
                        let _ = gc.commit();
                    }
                    return Err(e);
                }
            };
            if polled.delivered > 0 {
                last_record = Instant::now();
            }
            if !polled.all_at_end {
                continue;
            }
            gc.note_idle();
            if a.exit_at_end && gc.settled() {
                return Ok(());
            }
            let Some(idle) = super::consume::idle_wait(a.timeout, last_record)? else {
                return Ok(());
            };
            gc.wait(idle);
        }
    })();

    let broken_pipe = matches!(&result, Err(e) if super::is_broken_pipe(e));
    if !broken_pipe && result.is_ok() && write_if_owner(&gc.output_gate(), &mut stdout, &mut out)? {
        gc.mark_flushed();
    }
    let closed = gc.close();
    match result {
        Err(e) if !broken_pipe => return Err(e),
        _ => closed?,
    }
    if !quiet && !broken_pipe {
        eprintln!(
            "Processed {count} record{}",
            if count == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A member of a group of a Kafka cluster: the same loop, with librdkafka's consumer
/// following the group (its rebalances happen inside `poll`).
fn run_kafka(
    cluster: &Cluster,
    a: &ConsumeArgs,
    mut renderer: Renderer,
    config: GroupConsumerConfig,
) -> anyhow::Result<ExitCode> {
    let group = config.member.group.clone();
    let quiet = a.quiet;
    let exec = a.group.exec.clone();
    // --exec: each record is committable once its command succeeded (nothing is buffered).
    let flush_bytes = if exec.is_some() { 0 } else { OUT_FLUSH };
    let mut kc = KafkaGroupConsumer::join(
        cluster,
        config,
        a.exit_at_end,
        Box::new(RawStdout::new()),
        flush_bytes,
    )
    .map_err(kafka_error)?;
    let mut offset_note = OffsetNote::new(a);
    let mut count: u64 = 0;
    let limit = a.max_messages.unwrap_or(u64::MAX);
    let mut last_record = Instant::now();
    let result = (|| -> anyhow::Result<()> {
        loop {
            if super::interrupted() || count >= limit {
                return Ok(());
            }
            let budget = (limit - count).min(if exec.is_some() { 100 } else { 64 * 1024 }) as usize;
            // Short waits: Ctrl-C and -e are looked at between them.
            let polled = kc.poll(
                budget,
                Duration::from_millis(100),
                |out, topic, partition, rec| -> anyhow::Result<()> {
                    match &exec {
                        Some(cmd) => run_exec(cmd, topic, partition, rec),
                        None => renderer.render(out, topic, partition, rec),
                    }
                },
            );
            report(&group, kc.take_events(), quiet, &mut offset_note);
            let polled = polled?;
            count += polled.delivered as u64;
            if polled.delivered > 0 {
                last_record = Instant::now();
                continue;
            }
            if a.exit_at_end && kc.at_end() {
                return Ok(());
            }
            if super::consume::idle_wait(a.timeout, last_record)?.is_none() {
                return Ok(());
            }
        }
    })();
    let broken_pipe = matches!(&result, Err(e) if super::is_broken_pipe(e));
    // Output rendered before an error is dropped (and not committed), as locally.
    let closed = kc.close(result.is_ok());
    match result {
        Err(e) if !broken_pipe => return Err(e),
        _ if broken_pipe => {}
        _ => closed.map_err(kafka_error)?,
    }
    if !quiet && !broken_pipe {
        eprintln!(
            "Processed {count} record{}",
            if count == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A Kafka group consumer's error: a cluster error as itself (for its hints), a flag the
/// cluster cannot honour as a usage error.
fn kafka_error(e: KafkaGroupError) -> anyhow::Error {
    match e {
        KafkaGroupError::Cluster(c) => c.into(),
        e if e.is_usage() => super::consume::usage_error(e.to_string()),
        e => e.into(),
    }
}

/// Standard output as the Kafka group consumer writes it: unbuffered (the consumer buffers).
struct RawStdout(ManuallyDrop<File>);

impl RawStdout {
    fn new() -> RawStdout {
        // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
        RawStdout(ManuallyDrop::new(unsafe { File::from_raw_fd(1) }))
    }
}

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the rendered records if this member still owns its partitions (true), else drops
/// them (false).
fn write_if_owner(
    gate: &OutputGate,
    stdout: &mut File,
    out: &mut Vec<u8>,
) -> std::io::Result<bool> {
    if out.is_empty() {
        return Ok(true);
    }
    if !gate.check() {
        out.clear();
        return Ok(false);
    }
    stdout.write_all(out)?;
    out.clear();
    Ok(true)
}

fn run_exec(cmd: &str, topic: &str, partition: i32, rec: &RecordRef<'_>) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .env("SPOOL_TOPIC", topic)
        .env("SPOOL_PARTITION", partition.to_string())
        .env("SPOOL_OFFSET", rec.offset.to_string())
        .env("SPOOL_TIMESTAMP", rec.timestamp.to_string());
    match rec.key {
        Some(k) => command.env("SPOOL_KEY", std::ffi::OsStr::from_bytes(k)),
        None => command.env_remove("SPOOL_KEY"),
    };
    let mut child = command
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run --exec command {cmd:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(rec.value.unwrap_or_default());
    }
    let status = child.wait()?;
    if !status.success() {
        anyhow::bail!(
            "--exec command {cmd:?} failed for {topic}/{partition} offset {} ({status}); the records before it were committed",
            rec.offset
        );
    }
    Ok(())
}

/// What `-o` was, for the note that a committed offset overrides it.
struct OffsetNote {
    spec: String,
    topics: String,
}

impl OffsetNote {
    fn new(a: &ConsumeArgs) -> Option<OffsetNote> {
        a.offset.map(|spec| OffsetNote {
            spec: spec.to_string(),
            topics: if a.topics.is_empty() {
                "<TOPIC>".to_owned()
            } else {
                a.topics.join(",")
            },
        })
    }
}

fn report(group: &str, events: Vec<GroupEvent>, quiet: bool, offset_note: &mut Option<OffsetNote>) {
    for event in events {
        if quiet {
            continue;
        }
        match event {
            GroupEvent::Joined { member_id, generation } => {
                eprintln!("Joined group {group} as {member_id} (generation {generation})")
            }
            GroupEvent::Rebalanced {
                generation,
                assigned,
                revoked,
            } => {
                let revoked = if revoked.is_empty() {
                    String::new()
                } else {
                    format!("; revoked {}", format_partitions(&revoked))
                };
                eprintln!(
                    "Generation {generation}: assigned {}{revoked}",
                    format_partitions(&assigned)
                );
            }
            GroupEvent::Started {
                partition,
                offset,
                committed,
            } => {
                eprintln!(
                    "Reading {}/{} from offset {offset}{}",
                    partition.topic,
                    partition.partition,
                    if committed { " (committed)" } else { "" }
                );
                if let Some(note) = offset_note.take_if(|_| committed) {
                    eprintln!(
                        "note: -o {} applies only to partitions where group {group} has no committed offset; to read from elsewhere, stop the group's members and move its offsets: `spool offsets reset --group {group} --topic {} --to-earliest --execute`",
                        note.spec, note.topics
                    );
                }
            }
            GroupEvent::Clamped {
                partition,
                committed,
                now,
            } => eprintln!(
                "warning: {}/{}: committed offset {committed} is outside the log; starting at {now}",
                partition.topic, partition.partition
            ),
            GroupEvent::StaleOffsets { topic, partitions } => eprintln!(
                "warning: group {group} has committed offsets for {partitions} partition{} of an earlier topic named {topic}, deleted since; ignoring them",
                if partitions == 1 { "" } else { "s" }
            ),
            GroupEvent::Fenced => eprintln!(
                "warning: this member was removed from group {group} (session expired or output blocked); rejoining"
            ),
        }
    }
}

/// `t:0,1;u:3`, or `-` for none.
pub fn format_partitions(tps: &[TopicPartition]) -> String {
    if tps.is_empty() {
        return "-".into();
    }
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
    for tp in tps {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            let ps: Vec<String> = ps.iter().map(ToString::to_string).collect();
            format!("{t}:{}", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}
