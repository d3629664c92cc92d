//! `spool offsets`: move a consumer group's committed offsets (Kafka's
//! `kafka-consumer-groups.sh --reset-offsets`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;

use super::group::{group_error, topic_partitions_arg};
use super::render::{self, OutputFormat};
use super::{Context, UsageError};
use crate::group::reset::{AdminError, ResetPlan, ResetTo, Scope};
use crate::name::{self, NameKind};
use crate::store::fsutil;

#[derive(Debug, Subcommand)]
pub enum OffsetsCommand {
    Reset(ResetArgs),
}

pub fn run(ctx: &Context, cmd: OffsetsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OffsetsCommand::Reset(a) => reset_cmd(ctx, a),
    }
}

/// Reset a consumer group's committed offsets: rewind to replay records, or skip ahead.
///
/// The committed offset of a partition is the next record the group reads there; changing it
/// changes where the group's consumers start the next time they take the partition up. As in
/// Kafka, this is only possible while the group is inactive (no live consumers; a static member
/// that exited within its session timeout still counts), and it is a dry run unless --execute
/// is given: both print each partition's prior and new offset. New offsets are clamped into the
/// partition's [log start, log end] with a warning. A group that does not exist yet is created.
///
/// The partitions are those of --topic (a whole topic, or TOPIC:P,P,...; repeatable), or with
/// --all-topics those the group has committed offsets for, or those listed in --from-file.
///
/// On a Kafka cluster (-b) the plan is made from the cluster's offsets and written with
/// Kafka's AlterConsumerGroupOffsets, which the coordinator accepts only while the group has
/// no members, as kafka-consumer-groups.sh --reset-offsets.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("which").required(true).args(["groups", "all_groups"])),
    after_help = "Examples:
  spool offsets reset --group app --topic orders --to-earliest            # dry run
  spool offsets reset --group app --topic orders --to-earliest --execute
  spool offsets reset --group app --all-topics --shift-by -100 --execute
  spool offsets reset --group app --topic orders:0,2 --to-offset 42 --execute
  spool offsets reset --group app --all-topics --to-datetime 2026-11-24T10:00:00Z --execute
  spool offsets reset --group app --all-topics --by-duration 1h30m --execute
  spool offsets reset --group app --all-topics --to-current --export > plan.csv
  spool offsets reset --group app --from-file plan.csv --execute
  spool -b kafka1:9092 offsets reset --group app --topic orders --to-earliest --execute"
)]
pub struct ResetArgs {
    /// The group whose offsets to reset (repeatable).
    #[arg(short, long = "group", value_name = "GROUP", add = super::complete::groups())]
    pub groups: Vec<String>,
    /// Reset every group.
    #[arg(long)]
    pub all_groups: bool,
    /// A topic, or some of its partitions as TOPIC:P,P,... (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,...]", value_parser = topic_partitions_arg, add = super::complete::topics())]
    pub topics: Vec<(String, Option<Vec<i32>>)>,
    /// Every partition the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    pub all_topics: bool,
    #[command(flatten)]
    pub to: ResetToArgs,
    /// Write the new offsets (without it, nothing is changed).
    #[arg(long)]
    pub execute: bool,
    /// Only show what would change (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Print the plan as CSV lines `topic,partition,offset` (with the group first when several
    /// groups are reset), which --from-file reads back.
    #[arg(long, conflicts_with = "output")]
    pub export: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Where the offsets go: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResetToArgs {
    /// To the log start offset (the oldest record kept).
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset (skip everything produced so far).
    #[arg(long)]
    pub to_latest: bool,
    /// To the committed offset (the log end where nothing was committed).
    #[arg(long)]
    pub to_current: bool,
    /// To this offset.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub to_offset: Option<i64>,
    /// Move the committed offset by N (negative to go back, e.g. --shift-by -10).
    #[arg(long, value_name = "±N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// To the first record at or after TIME (RFC 3339 like 2026-11-24T10:00:00Z, epoch ms, or
    /// a duration ago like -1h); the log end where every record is older.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = time_arg)]
    pub to_datetime: Option<i64>,
    /// To the first record at or after DURATION ago (1h30m, 7d, or Kafka's PT1H30M).
    #[arg(long, value_name = "DURATION", value_parser = super::duration_arg)]
    pub by_duration: Option<Duration>,
    /// To the offsets in a CSV file of `topic,partition,offset` lines (with the group first
    /// for several groups), as --export writes them.
    #[arg(long, value_name = "CSV")]
    pub from_file: Option<PathBuf>,
}

fn time_arg(s: &str) -> Result<i64, String> {
    crate::spec::parse_time(s, fsutil::now_ms()).map_err(|e| e.to_string())
}

/// One line of the plan, as the table, JSON and CSV show it.
#[derive(Debug, Serialize)]
struct PlanRow<'a> {
    group: &'a str,
    topic: &'a str,
    partition: i32,
    prior_offset: Option<i64>,
    new_offset: i64,
}

/// `--from-file` contents: offsets per group (`None`: for every group reset).
type FilePlan = crate::group::reset::PlanFile;

fn read_plan_file(path: &std::path::Path) -> anyhow::Result<FilePlan> {
    crate::group::reset::read_plan_file(path).map_err(|e| match e {
        crate::group::reset::PlanFileError::Read { .. } => anyhow::Error::new(e),
        other => super::Hinted {
            message: other.to_string(),
            hint: "each line is topic,partition,offset (or group,topic,partition,offset), as --export writes them".into(),
        }
        .into(),
    })
}

fn reset_error(e: AdminError) -> anyhow::Error {
    match &e {
        AdminError::Active {
            group, members, ..
        } => {
            let away = members.iter().any(|m| m.away);
            super::Hinted {
                message: e.to_string(),
                hint: format!(
                    "stop the group's consumers (Ctrl-C or kill them){} and run this again; `spool group describe {group} --members` lists them",
                    if away {
                        ", wait for an away static member's session to time out,"
                    } else {
                        ""
                    }
                ),
            }
            .into()
        }
        AdminError::NoCommittedOffset { .. } => super::Hinted {
            message: e.to_string(),
            hint: "--shift-by needs a committed offset; use --to-earliest, --to-latest or --to-offset for that partition".into(),
        }
        .into(),
        AdminError::NothingCommitted(_) => super::Hinted {
            message: e.to_string(),
            hint: "name the partitions with --topic TOPIC[:P,...]".into(),
        }
        .into(),
        _ => e.into(),
    }
}

fn reset_cmd(ctx: &Context, a: ResetArgs) -> anyhow::Result<ExitCode> {
    for g in &a.groups {
        name::validate(NameKind::Group, g)
            .map_err(|e| UsageError(format!("invalid --group: {e}")))?;
    }
    let now = fsutil::now_ms();
    let scoped = a.all_topics || !a.topics.is_empty();
    let file_plan = match &a.to.from_file {
        Some(path) => {
            if scoped {
                return Err(UsageError(
                    "--from-file takes its partitions from the file; leave out --topic and --all-topics".into(),
                )
                .into());
            }
            Some(read_plan_file(path)?)
        }
        None => {
            if !scoped {
                return Err(UsageError(
                    "say which partitions to reset: --topic TOPIC[:P,...] (repeatable) or --all-topics".into(),
                )
                .into());
            }
            None
        }
    };

    // The groups, each with what to do.
    let mut jobs: Vec<(String, Scope, ResetTo)> = Vec::new();
    match &file_plan {
        Some(plan) => {
            let per_group = plan.keys().any(Option::is_some);
            let groups = if a.all_groups && per_group {
                plan.keys().flatten().cloned().collect()
            } else if a.all_groups {
                ctx.target
                    .group_names()
                    .map_err(|e| group_error(e, reset_error))?
            } else {
                a.groups.clone()
            };
            if per_group {
                if let Some(other) = plan.keys().flatten().find(|g| !groups.contains(g)) {
                    return Err(UsageError(format!(
                        "the file has offsets for group '{other}', which is not among the groups to reset (add --group {other}, or use --all-groups)"
                    ))
                    .into());
                }
            }
            for g in groups {
                let map = if per_group {
                    plan.get(&Some(g.clone())).cloned().ok_or_else(|| {
                        UsageError(format!("the file has no offsets for group '{g}'"))
                    })?
                } else {
                    plan[&None].clone()
                };
                jobs.push((g, Scope::Explicit, ResetTo::Explicit(map)));
            }
        }
        None => {
            let groups = if a.all_groups {
                ctx.target
                    .group_names()
                    .map_err(|e| group_error(e, reset_error))?
            } else {
                a.groups.clone()
            };
            let scope = if a.all_topics {
                Scope::AllTopics
            } else {
                Scope::Topics(a.topics.clone())
            };
            let to = if a.to.to_earliest {
                ResetTo::Earliest
            } else if a.to.to_latest {
                ResetTo::Latest
            } else if a.to.to_current {
                ResetTo::Current
            } else if let Some(n) = a.to.to_offset {
                ResetTo::Offset(n)
            } else if let Some(n) = a.to.shift_by {
                ResetTo::ShiftBy(n)
            } else if let Some(ts) = a.to.to_datetime {
                ResetTo::Timestamp(ts)
            } else if let Some(d) = a.to.by_duration {
                ResetTo::Timestamp(now.saturating_sub(d.as_millis().min(i64::MAX as u128) as i64))
            } else {
                unreachable!("clap requires one reset option")
            };
            for g in groups {
                jobs.push((g, scope.clone(), to.clone()));
            }
        }
    }
    if jobs.is_empty() {
        eprintln!("No consumer groups to reset.");
        return Ok(ExitCode::SUCCESS);
    }
    let many = jobs.len() > 1;

    // Plan every group first: a refusal anywhere changes nothing anywhere.
    let mut plans: Vec<ResetPlan> = Vec::new();
    for (g, scope, to) in &jobs {
        match ctx.target.plan_reset(g, scope, to, now) {
            Ok(p) => plans.push(p),
            // With --all-groups and --all-topics, a group without commits has nothing to do.
            Err(e) if a.all_groups && e.is_nothing_committed() => {}
            Err(e) => return Err(group_error(e, reset_error)),
        }
    }
    if a.execute {
        let mut done = Vec::new();
        for (g, scope, to) in &jobs {
            if !plans.iter().any(|p| &p.group == g) {
                continue;
            }
            done.push(
                ctx.target
                    .execute_reset(g, scope, to, fsutil::now_ms())
                    .map_err(|e| group_error(e, reset_error))?,
            );
        }
        plans = done;
    }

    for p in &plans {
        for note in &p.notes {
            eprintln!("Warning: {note}");
        }
    }
    let rows: Vec<PlanRow> = plans
        .iter()
        .flat_map(|p| {
            p.offsets.iter().map(|o| PlanRow {
                group: &p.group,
                topic: &o.topic,
                partition: o.partition,
                prior_offset: o.prior_offset,
                new_offset: o.new_offset,
            })
        })
        .collect();
    if a.export {
        let mut out = String::new();
        for r in &rows {
            if many {
                out.push_str(&format!("{},", r.group));
            }
            out.push_str(&format!("{},{},{}\n", r.topic, r.partition, r.new_offset));
        }
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
    } else if a.output != OutputFormat::Table {
        render::print_data(a.output, &rows)?;
    } else if !rows.is_empty() {
        let mut t = render::table(&["GROUP", "TOPIC", "PARTITION", "PRIOR-OFFSET", "NEW-OFFSET"]);
        for r in &rows {
            t.add_row(vec![
                r.group.to_owned(),
                r.topic.to_owned(),
                r.partition.to_string(),
                render::or_dash(r.prior_offset),
                r.new_offset.to_string(),
            ]);
        }
        render::print_table(&t)?;
    }
    if a.execute {
        for p in plans.iter().filter(|p| p.new_group) {
            eprintln!("Created consumer group '{}'.", p.group);
        }
    } else {
        eprintln!(
            "Dry run: nothing was changed, as --execute is missing. Add --execute to reset these offsets."
        );
    }
    Ok(ExitCode::SUCCESS)
}
