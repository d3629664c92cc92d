//! `spool group`: list, describe and delete consumer groups, and delete their offsets
//! (Kafka's `kafka-consumer-groups.sh --list | --describe | --delete | --delete-offsets`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;

use super::consume_group::format_partitions;
use super::render::{self, OutputFormat};
use super::Context;
use crate::group::reset::{AdminError, DeletedOffset};
use crate::group::state::{RebalanceEvent, Trigger};
use crate::group::view::{GroupView, MemberStatus, MemberView, PartitionView, ViewOptions};
use crate::kafka::groups::GroupsError;
use crate::name::{self, NameKind};
use crate::spec;
use crate::store::fsutil;
use crate::target::groups::GroupOpError;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    List(ListArgs),
    Describe(DescribeArgs),
    Delete(DeleteArgs),
    DeleteOffsets(DeleteOffsetsArgs),
}

pub fn run(ctx: &Context, cmd: GroupCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GroupCommand::List(a) => list(ctx, a),
        GroupCommand::Describe(a) => describe(ctx, a),
        GroupCommand::Delete(a) => delete(ctx, a),
        GroupCommand::DeleteOffsets(a) => delete_offsets(ctx, a),
    }
}

/// clap value parser for `TOPIC` or `TOPIC:P,P,...` (Kafka's `--topic` of reset and
/// delete-offsets).
pub fn topic_partitions_arg(s: &str) -> Result<(String, Option<Vec<i32>>), String> {
    let (topic, parts) = match s.split_once(':') {
        Some((t, p)) => (t, Some(p)),
        None => (s, None),
    };
    name::validate(NameKind::Topic, topic).map_err(|e| e.to_string())?;
    let parts = match parts {
        None => None,
        Some(p) => {
            let mut out = Vec::new();
            for item in p.split(',') {
                let n: i32 = item.trim().parse().map_err(|_| {
                    format!("`{item}` is not a partition number; expected TOPIC or TOPIC:0,1,2")
                })?;
                if n < 0 {
                    return Err(format!("partition {n} is negative"));
                }
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            Some(out)
        }
    };
    Ok((topic.to_owned(), parts))
}

/// List consumer groups with their state, live members, topics and total lag.
///
/// A group exists from the moment its first member joins (or an offset reset creates it) until
/// it is deleted; it keeps its committed offsets while nobody consumes. TOTAL-LAG adds up, over
/// the partitions with a committed offset, how many records are left to read.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool group list\n  spool group list -o json\n  spool -b kafka1:9092 group list          # the groups of a Kafka cluster"
)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Serialize)]
struct GroupSummary {
    group: String,
    state: String,
    members: usize,
    topics: Vec<String>,
    total_lag: Option<i64>,
}

fn list(ctx: &Context, a: ListArgs) -> anyhow::Result<ExitCode> {
    let views = ctx
        .target
        .describe_all_groups(
            ViewOptions {
                offsets: true,
                history: false,
            },
            fsutil::now_ms(),
        )
        .map_err(|e| group_error(e, admin_error))?;
    let summaries: Vec<GroupSummary> = views
        .iter()
        .map(|v| GroupSummary {
            group: v.group.clone(),
            state: v.state.to_string(),
            members: v.live_members,
            topics: v.topics.clone(),
            total_lag: v.total_lag,
        })
        .collect();
    if a.output != OutputFormat::Table {
        render::print_data(a.output, &summaries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if summaries.is_empty() {
        eprintln!("No consumer groups in {}.", ctx.target.describe());
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = render::table(&["GROUP", "STATE", "MEMBERS", "TOPICS", "TOTAL-LAG"]);
    for s in &summaries {
        t.add_row(vec![
            s.group.clone(),
            s.state.clone(),
            s.members.to_string(),
            if s.topics.is_empty() {
                "-".to_owned()
            } else {
                s.topics.join(",")
            },
            render::or_dash(s.total_lag),
        ]);
    }
    render::print_table(&t)?;
    Ok(ExitCode::SUCCESS)
}

/// Describe consumer groups: committed offsets and lag (the default), members, state or
/// rebalance history.
///
/// The offsets view has Kafka's columns: per partition the committed offset (CURRENT-OFFSET,
/// the next record the group will read), the log's start and end offsets, LAG (end minus
/// committed) and the member consuming it; `-` where there is no commit or no owner. A
/// committed offset below the log start (records deleted by retention) is flagged.
///
/// Looking never changes the group: a member that crashed or stopped heartbeating is shown as
/// dead or expired (STATUS in --members), not removed; the next live member's heartbeat does
/// that. A missing group is an error (exit 1).
///
/// On a Kafka cluster (-b) the same views come from the group coordinator: what it does not
/// tell (a member's pid, last heartbeat and session timeout, the generation) is shown as `-`,
/// and --history is refused (a cluster keeps no rebalance history).
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("which").required(true).args(["groups", "all_groups"])),
    group(ArgGroup::new("view").args(["offsets", "members", "state", "history"])),
    after_help = "Examples:\n  spool group describe orders-app\n  spool group describe orders-app --members\n  spool group describe --all-groups --state -o json\n  spool group describe orders-app --watch 1s\n  spool -b kafka1:9092 group describe orders-app   # a Kafka cluster's group"
)]
pub struct DescribeArgs {
    /// The group(s) to describe.
    #[arg(value_name = "GROUP", add = super::complete::groups())]
    pub groups: Vec<String>,
    /// Describe every group.
    #[arg(long)]
    pub all_groups: bool,
    /// Committed offsets, log offsets and lag per partition (the default view).
    #[arg(long)]
    pub offsets: bool,
    /// Members: identity, liveness, assignment, last heartbeat.
    #[arg(long)]
    pub members: bool,
    /// The group's state, assignor, generation and member count.
    #[arg(long)]
    pub state: bool,
    /// Recent rebalances (the last 50, fewer in a large group): generation, time, trigger,
    /// members before and after. The table names three members a cell and counts the rest;
    /// `-o json` lists them all.
    #[arg(long)]
    pub history: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Redraw every INTERVAL (default 2s) until interrupted (put it after the group names).
    ///
    /// Like watch(1): on a terminal the screen is cleared before each redraw; otherwise each
    /// rendering follows the previous one after a blank line. As --watch takes an optional
    /// value, `--watch billing` would read "billing" as the interval: write the group names
    /// first, or use --watch=1s.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s", value_parser = super::duration_within(super::ms(100), super::ms(86_400_000)))]
    pub watch: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewKind {
    Offsets,
    Members,
    State,
    History,
}

impl DescribeArgs {
    fn kind(&self) -> ViewKind {
        if self.members {
            ViewKind::Members
        } else if self.state {
            ViewKind::State
        } else if self.history {
            ViewKind::History
        } else {
            ViewKind::Offsets
        }
    }
}

/// One rendering of the requested groups: text for stdout, notices for stderr.
struct Frame {
    out: String,
    notices: Vec<String>,
    missing: bool,
}

impl Frame {
    fn emit(&self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.flush()?;
        {
            let mut err = std::io::stderr().lock();
            for n in &self.notices {
                writeln!(err, "{n}")?;
            }
        }
        out.write_all(self.out.as_bytes())?;
        out.flush()
    }
}

fn describe(ctx: &Context, a: DescribeArgs) -> anyhow::Result<ExitCode> {
    if a.history {
        ctx.target.local_only(
            "spool group describe --history",
            "a Kafka cluster keeps no history of its groups' rebalances",
        )?;
    }
    for g in &a.groups {
        name::validate(NameKind::Group, g)?;
    }
    let Some(interval) = a.watch else {
        let frame = describe_frame(ctx, &a)?;
        frame.emit()?;
        return Ok(if frame.missing {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    };
    super::install_interrupt_handler();
    let tty = std::io::stdout().is_terminal();
    let mut first = true;
    while !super::interrupted() {
        let frame = describe_frame(ctx, &a)?;
        {
            let mut out = std::io::stdout().lock();
            if tty {
                write!(
                    out,
                    "\x1b[H\x1b[2JEvery {}: spool group describe {}    {}\n\n",
                    humantime::format_duration(interval),
                    if a.all_groups {
                        "--all-groups".to_owned()
                    } else {
                        a.groups.join(" ")
                    },
                    spec::format_rfc3339_millis(fsutil::now_ms())
                )?;
            } else if !first {
                writeln!(out)?;
            }
            out.flush()?;
        }
        frame.emit()?;
        first = false;
        let until = Instant::now() + interval;
        while !super::interrupted() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(interval));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_frame(ctx: &Context, a: &DescribeArgs) -> anyhow::Result<Frame> {
    let now = fsutil::now_ms();
    let kind = a.kind();
    let options = ViewOptions {
        offsets: kind == ViewKind::Offsets,
        history: kind == ViewKind::History,
    };
    let mut views = Vec::new();
    let mut notices = Vec::new();
    let mut missing = false;
    if a.all_groups {
        views = ctx
            .target
            .describe_all_groups(options, now)
            .map_err(|e| group_error(e, admin_error))?;
    } else {
        for g in &a.groups {
            match ctx
                .target
                .describe_group(g, options, now)
                .map_err(|e| group_error(e, admin_error))?
            {
                Some(v) => views.push(v),
                None => {
                    let colour = render::colour_stderr();
                    notices.push(format!(
                        "{} consumer group '{g}' does not exist {}",
                        render::paint(colour, render::ERROR, "error:"),
                        ctx.target.location()
                    ));
                    notices.push(format!(
                        "{} {}",
                        render::paint(colour, render::HINT, "hint:"),
                        super::unknown_group_hint(ctx.target.local(), g)
                    ));
                    missing = true;
                }
            }
        }
    }
    for v in &views {
        if matches!(kind, ViewKind::Offsets | ViewKind::Members)
            && v.live_members == 0
            && v.state != crate::group::state::GroupPhase::Dead
        {
            notices.push(format!(
                "Consumer group '{}' has no active members.",
                v.group
            ));
        }
        if v.is_rebalancing() {
            notices.push(format!(
                "Warning: Consumer group '{}' is rebalancing. Some information may be outdated.",
                v.group
            ));
        }
        if kind == ViewKind::Offsets {
            let below: Vec<&PartitionView> =
                v.partitions.iter().filter(|p| p.below_log_start).collect();
            for p in below {
                notices.push(format!(
                    "Warning: the committed offset of {}/{} in consumer group '{}' ({}) is below the log start offset ({}): records were deleted by retention, and the group will resume at {}.",
                    p.topic,
                    p.partition,
                    v.group,
                    render::or_dash(p.current_offset),
                    render::or_dash(p.log_start_offset),
                    render::or_dash(p.log_start_offset),
                ));
            }
        }
    }
    if a.all_groups && views.is_empty() && a.output == OutputFormat::Table {
        notices.push(format!("No consumer groups in {}.", ctx.target.describe()));
    }
    let single = !a.all_groups && a.groups.len() == 1;
    let out = match a.output {
        OutputFormat::Table => render_tables(kind, &views, now),
        format => render_data(kind, &views, single, now, format)?,
    };
    Ok(Frame {
        out,
        notices,
        missing,
    })
}

fn render_data(
    kind: ViewKind,
    views: &[GroupView],
    single: bool,
    now: i64,
    format: OutputFormat,
) -> anyhow::Result<String> {
    fn encode<T: Serialize>(
        items: Vec<T>,
        single: bool,
        format: OutputFormat,
    ) -> anyhow::Result<String> {
        fn text<V: Serialize + ?Sized>(v: &V, format: OutputFormat) -> anyhow::Result<String> {
            Ok(match format {
                OutputFormat::Yaml => serde_yaml::to_string(v)?,
                _ => serde_json::to_string_pretty(v)? + "\n",
            })
        }
        if single && items.len() == 1 {
            text(&items[0], format)
        } else {
            text(&items, format)
        }
    }
    match kind {
        ViewKind::Offsets => encode(
            views
                .iter()
                .map(|v| OffsetsData {
                    group: &v.group,
                    state: v.state.to_string(),
                    partitions: &v.partitions,
                })
                .collect(),
            single,
            format,
        ),
        ViewKind::Members => encode(
            views
                .iter()
                .map(|v| MembersData {
                    group: &v.group,
                    state: v.state.to_string(),
                    members: v
                        .members
                        .iter()
                        .map(|m| MemberData {
                            partitions: m.assignment.len(),
                            last_heartbeat_ago_ms: m.last_heartbeat_ms.map(|h| (now - h).max(0)),
                            member: m,
                        })
                        .collect(),
                })
                .collect(),
            single,
            format,
        ),
        ViewKind::State => encode(views.iter().map(StateData::from).collect(), single, format),
        ViewKind::History => encode(
            views
                .iter()
                .map(|v| HistoryData {
                    group: &v.group,
                    history: v.history.iter().map(HistoryRow::from).collect(),
                })
                .collect(),
            single,
            format,
        ),
    }
}

#[derive(Serialize)]
struct OffsetsData<'a> {
    group: &'a str,
    state: String,
    partitions: &'a [PartitionView],
}

#[derive(Serialize)]
struct MembersData<'a> {
    group: &'a str,
    state: String,
    members: Vec<MemberData<'a>>,
}

#[derive(Serialize)]
struct MemberData<'a> {
    #[serde(flatten)]
    member: &'a MemberView,
    partitions: usize,
    last_heartbeat_ago_ms: Option<i64>,
}

#[derive(Serialize)]
struct StateData<'a> {
    group: &'a str,
    assignor: Option<&'a str>,
    state: String,
    generation: i32,
    members: usize,
}

impl<'a> From<&'a GroupView> for StateData<'a> {
    fn from(v: &'a GroupView) -> Self {
        StateData {
            group: &v.group,
            assignor: v.assignor.as_deref(),
            state: v.state.to_string(),
            generation: v.generation,
            members: v.live_members,
        }
    }
}

#[derive(Serialize)]
struct HistoryData<'a> {
    group: &'a str,
    history: Vec<HistoryRow<'a>>,
}

#[derive(Serialize)]
struct HistoryRow<'a> {
    generation: i32,
    time: String,
    time_ms: i64,
    trigger: Trigger,
    subjects: &'a [String],
    members_before: &'a [String],
    members_after: &'a [String],
}

impl<'a> From<&'a RebalanceEvent> for HistoryRow<'a> {
    fn from(e: &'a RebalanceEvent) -> Self {
        HistoryRow {
            generation: e.generation,
            time: spec::format_rfc3339_millis(e.time_ms),
            time_ms: e.time_ms,
            trigger: e.trigger,
            subjects: &e.subjects,
            members_before: &e.members_before,
            members_after: &e.members_after,
        }
    }
}

/// `2s ago`, `1m 5s ago`, `350ms ago`.
fn ago(now: i64, then: i64) -> String {
    let d = (now - then).max(0) as u64;
    if d < 1000 {
        format!("{d}ms ago")
    } else {
        format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(d / 1000))
        )
    }
}

/// Member ids in a table cell: up to [`IDS_SHOWN`] of them, then how many more (a generation of
/// a large group names hundreds; `-o json` has them all).
fn ids(list: &[String]) -> String {
    match list.len() {
        0 => "-".to_owned(),
        n if n <= IDS_SHOWN => list.join(","),
        n => format!("{} and {} more", list[..IDS_SHOWN].join(","), n - IDS_SHOWN),
    }
}

/// Member ids a history table names in one cell before it counts the rest.
const IDS_SHOWN: usize = 3;

/// The lines of a table, trailing spaces trimmed (as `render::print_table` prints them).
fn table_text(t: &comfy_table::Table) -> String {
    let mut t = t.clone();
    render::fit(&mut t);
    let mut s = String::new();
    for line in t.lines() {
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

fn render_tables(kind: ViewKind, views: &[GroupView], now: i64) -> String {
    let mut parts: Vec<String> = Vec::new();
    match kind {
        ViewKind::State => {
            if !views.is_empty() {
                let mut t =
                    render::table(&["GROUP", "ASSIGNOR", "STATE", "GENERATION", "#MEMBERS"]);
                for v in views {
                    t.add_row(vec![
                        v.group.clone(),
                        render::or_dash(v.assignor.clone()),
                        v.state.to_string(),
                        // A Kafka coordinator does not tell the generation (-1).
                        render::or_dash((v.generation >= 0).then_some(v.generation)),
                        v.live_members.to_string(),
                    ]);
                }
                parts.push(table_text(&t));
            }
        }
        ViewKind::Offsets => {
            for v in views.iter().filter(|v| !v.partitions.is_empty()) {
                let mut t = render::table(&[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-START-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                ]);
                for p in &v.partitions {
                    let consumer = match (&p.consumer_id, p.consumer_status) {
                        (Some(id), Some(s)) if s != MemberStatus::Alive => format!("{id} ({s})"),
                        (id, _) => render::or_dash(id.clone()),
                    };
                    t.add_row(vec![
                        v.group.clone(),
                        p.topic.clone(),
                        p.partition.to_string(),
                        render::or_dash(p.current_offset),
                        render::or_dash(p.log_start_offset),
                        render::or_dash(p.log_end_offset),
                        render::or_dash(p.lag),
                        consumer,
                        render::or_dash(p.host.clone()),
                        render::or_dash(p.client_id.clone()),
                    ]);
                }
                parts.push(table_text(&t));
            }
        }
        ViewKind::Members => {
            for v in views.iter().filter(|v| !v.members.is_empty()) {
                let mut t = render::table(&[
                    "GROUP",
                    "CONSUMER-ID",
                    "INSTANCE-ID",
                    "HOST",
                    "PID",
                    "CLIENT-ID",
                    "#PARTITIONS",
                    "ASSIGNMENT",
                    "LAST-HEARTBEAT",
                    "SESSION-TIMEOUT",
                    "STATUS",
                ]);
                for m in &v.members {
                    t.add_row(vec![
                        v.group.clone(),
                        m.member_id.clone(),
                        render::or_dash(m.instance_id.clone()),
                        render::or_dash(m.host.clone()),
                        render::or_dash(m.pid),
                        m.client_id.clone(),
                        m.assignment.len().to_string(),
                        format_partitions(&m.assignment),
                        render::or_dash(m.last_heartbeat_ms.map(|h| ago(now, h))),
                        render::or_dash(m.session_timeout_ms.map(|s| {
                            humantime::format_duration(Duration::from_millis(s)).to_string()
                        })),
                        m.status.to_string(),
                    ]);
                }
                parts.push(table_text(&t));
            }
        }
        ViewKind::History => {
            for v in views.iter().filter(|v| !v.history.is_empty()) {
                let mut t = render::table(&[
                    "GROUP",
                    "GENERATION",
                    "TIME",
                    "TRIGGER",
                    "MEMBERS-BEFORE",
                    "MEMBERS-AFTER",
                ]);
                for e in &v.history {
                    let trigger = if e.subjects.is_empty() {
                        e.trigger.to_string()
                    } else {
                        format!("{}: {}", e.trigger, ids(&e.subjects))
                    };
                    t.add_row(vec![
                        v.group.clone(),
                        e.generation.to_string(),
                        spec::format_rfc3339_millis(e.time_ms),
                        trigger,
                        ids(&e.members_before),
                        ids(&e.members_after),
                    ]);
                }
                parts.push(table_text(&t));
            }
        }
    }
    parts.join("\n")
}

/// Delete consumer groups: their committed offsets, generation and history.
///
/// As in Kafka, only a group without live members can be deleted (stop its consumers first).
/// A static member that exited less than its session timeout ago still counts: it holds its
/// partitions, waiting to come back.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("which").required(true).args(["groups", "all_groups"])),
    after_help = "Examples:\n  spool group delete orders-app\n  spool group delete --all-groups\n  spool -b kafka1:9092 group delete orders-app"
)]
pub struct DeleteArgs {
    /// The group(s) to delete.
    #[arg(value_name = "GROUP", add = super::complete::groups())]
    pub groups: Vec<String>,
    /// Delete every group (each must be inactive).
    #[arg(long)]
    pub all_groups: bool,
}

fn admin_error(e: AdminError) -> anyhow::Error {
    match &e {
        AdminError::Active { group, members, .. } => {
            let away = members.iter().any(|m| m.away);
            super::Hinted {
                message: e.to_string(),
                hint: format!(
                    "stop the group's consumers first (Ctrl-C or kill them){}; `spool group describe {group} --members` lists them",
                    if away {
                        ", and wait for the session of an away static member to time out"
                    } else {
                        ""
                    }
                ),
            }
            .into()
        }
        AdminError::Subscribed { .. } => super::Hinted {
            message: e.to_string(),
            hint: "stop the consumers of that topic first (Kafka refuses it too)".into(),
        }
        .into(),
        _ => e.into(),
    }
}

/// A group operation's error as the command reports it: the local store's through `local`
/// (which adds its hints), a cluster's with the same hints.
pub(super) fn group_error(
    e: GroupOpError,
    local: fn(AdminError) -> anyhow::Error,
) -> anyhow::Error {
    use crate::group::reset::Action;
    let e = match e {
        GroupOpError::Local(e) => return local(e),
        GroupOpError::Store(e) => return e.into(),
        GroupOpError::Kafka(GroupsError::Cluster(e)) => return e.into(),
        GroupOpError::Kafka(e) => e,
    };
    let hint = match &e {
        GroupsError::Active { group, action, .. } => match action {
            Action::ResetOffsets => format!("stop the group's consumers (Ctrl-C or kill them) and run this again; `spool group describe {group} --members` lists them"),
            Action::Delete => format!("stop the group's consumers first (Ctrl-C or kill them); `spool group describe {group} --members` lists them"),
        },
        GroupsError::Subscribed { .. } => {
            "stop the consumers of that topic first (Kafka refuses it too)".into()
        }
        GroupsError::NoCommittedOffset { .. } => "--shift-by needs a committed offset; use --to-earliest, --to-latest or --to-offset for that partition".into(),
        GroupsError::NothingCommitted(_) => "name the partitions with --topic TOPIC[:P,...]".into(),
        GroupsError::NotFound { group, .. } => super::unknown_group_hint(None, group),
        GroupsError::Cluster(_) => return e.into(),
    };
    super::Hinted {
        message: e.to_string(),
        hint,
    }
    .into()
}

fn delete(ctx: &Context, a: DeleteArgs) -> anyhow::Result<ExitCode> {
    let groups = if a.all_groups {
        ctx.target
            .group_names()
            .map_err(|e| group_error(e, admin_error))?
    } else {
        a.groups.clone()
    };
    if groups.is_empty() {
        eprintln!("No consumer groups to delete.");
        return Ok(ExitCode::SUCCESS);
    }
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for g in &groups {
        match ctx.target.delete_group(g, fsutil::now_ms()) {
            Ok(()) => deleted.push(g.clone()),
            Err(e) => failed.push((g.clone(), e)),
        }
    }
    if !deleted.is_empty() {
        let names: Vec<String> = deleted.iter().map(|g| format!("'{g}'")).collect();
        outln!(
            "Deletion of requested consumer groups ({}) was successful.",
            names.join(", ")
        )?;
    }
    if failed.len() == 1 && deleted.is_empty() {
        let (_, e) = failed.pop().expect("one failure");
        return Err(group_error(e, admin_error));
    }
    if !failed.is_empty() {
        let lines: Vec<String> = failed
            .iter()
            .map(|(g, e)| format!("* Group '{g}' could not be deleted due to: {e}"))
            .collect();
        return Err(super::Hinted {
            message: format!(
                "Deletion of some consumer groups failed:\n{}",
                lines.join("\n")
            ),
            hint:
                "stop a group's consumers before deleting it; `spool group list` shows the groups"
                    .into(),
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Delete a group's committed offsets for some topics or partitions.
///
/// Afterwards the group reads those partitions as if it had never committed (from
/// --auto-offset-reset). Refused for a topic a live member of the group subscribes to, as Kafka
/// refuses it.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spool group delete-offsets orders-app --topic old-orders\n  spool group delete-offsets orders-app --topic orders:0,2\n  spool -b kafka1:9092 group delete-offsets orders-app --topic old-orders"
)]
pub struct DeleteOffsetsArgs {
    /// The group.
    #[arg(add = super::complete::groups())]
    pub group: String,
    /// A topic, or some of its partitions as TOPIC:P,P,... (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,...]", required = true, value_parser = topic_partitions_arg, add = super::complete::topics())]
    pub topics: Vec<(String, Option<Vec<i32>>)>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

fn delete_offsets(ctx: &Context, a: DeleteOffsetsArgs) -> anyhow::Result<ExitCode> {
    let deleted = ctx
        .target
        .delete_group_offsets(&a.group, &a.topics, fsutil::now_ms())
        .map_err(|e| group_error(e, admin_error))?;
    let without: Vec<&String> = a
        .topics
        .iter()
        .filter(|(t, _)| !deleted.iter().any(|d| &d.topic == t))
        .map(|(t, _)| t)
        .collect();
    if a.output != OutputFormat::Table {
        render::print_data(a.output, &deleted)?;
    } else {
        if !deleted.is_empty() {
            let mut t = render::table(&["TOPIC", "PARTITION", "STATUS"]);
            for DeletedOffset {
                topic,
                partition,
                offset,
            } in &deleted
            {
                t.add_row(vec![
                    topic.clone(),
                    partition.to_string(),
                    match offset {
                        Some(o) => format!("Successful (was {o})"),
                        None => "No committed offset".to_owned(),
                    },
                ]);
            }
            render::print_table(&t)?;
        }
    }
    for t in without {
        eprintln!(
            "Consumer group '{}' has no committed offsets for topic {t}.",
            a.group
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{ids, topic_partitions_arg};

    #[test]
    fn a_history_cell_names_three_members_and_counts_the_rest() {
        let members = |n: usize| -> Vec<String> { (0..n).map(|i| format!("m{i}")).collect() };
        assert_eq!(ids(&members(0)), "-");
        assert_eq!(ids(&members(3)), "m0,m1,m2");
        assert_eq!(ids(&members(500)), "m0,m1,m2 and 497 more");
    }

    #[test]
    fn topic_partitions() {
        assert_eq!(topic_partitions_arg("t"), Ok(("t".into(), None)));
        assert_eq!(
            topic_partitions_arg("t.x:0,2,2"),
            Ok(("t.x".into(), Some(vec![0, 2])))
        );
        assert!(topic_partitions_arg("t:").is_err());
        assert!(topic_partitions_arg("t:-1").is_err());
        assert!(topic_partitions_arg("t:a").is_err());
        assert!(topic_partitions_arg("a/b").is_err());
        assert!(topic_partitions_arg(":0").is_err());
    }
}
