//! The `spool` command line: clap definitions and the glue from arguments to library calls.
//!
//! One file per command group, each with a doc-commented clap `Args` struct beside its `run`
//! function. Commands never touch store files themselves: they call [`crate::store`] and
//! [`crate::produce`], and render what comes back with [`render`].
//!
//! Errors travel as `anyhow::Error`; [`main`] prints `error: <cause chain>` and, where there is
//! an obvious next step, a `hint:` line (naming close matches for an unknown topic or group).
//! Exit codes: 0 success (also when stdout's reader went away), 1 runtime error, 2 usage error
//! (clap's own, [`UsageError`], bad names and configs).
//!
//! [`docs`] renders the man pages (`man/`) and completion scripts (`completions/`) from these
//! definitions; [`complete`] is `spool completions` and answers the shells' completion requests,
//! with topic and group names from the store.

/// `println!` that returns the write's `io::Result` instead of panicking: a closed stdout
/// (`spool topic describe t | true`) becomes a broken-pipe error, which [`main`] turns into a
/// quiet exit 0, as for `spool consume | head`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub mod complete;
pub mod consume;
pub mod consume_group;
pub mod docs;
pub mod group;
pub mod habits;
pub mod offsets;
mod printer;
pub mod produce;
pub mod render;
pub mod serve;
pub mod topic;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::kafka::{Cluster, ClusterError, ClusterSettings};
use crate::store::{Store, StoreError};
use crate::target::{Target, TargetError};

/// Apache Kafka's model on local disk: topics, partitions, offsets and consumer groups, with no
/// server.
///
/// spool keeps a store directory of topics whose partitions are logs in Kafka's own segment
/// format. `spool produce` appends lines to a topic (records with the same key go to the same
/// partition), `spool consume` reads them back by offset or follows them, and `spool consume
/// --group` shares a topic's partitions among the members of a consumer group that commits how
/// far it has read; `spool group` and `spool offsets` inspect and rewind groups. Any number of
/// spool processes may work on one store at once: they coordinate through file locks and
/// lease files, with no server.
///
/// With -b HOST:PORT (or $SPOOL_BROKERS) the same commands work on a Kafka cluster instead,
/// through librdkafka: the same flags and output, with what only a cluster has (leaders,
/// replicas, in-sync replicas) added.
#[derive(Debug, Parser)]
#[command(
    name = "spool",
    version,
    propagate_version = true,
    after_help = "Examples:\n  printf 'hello\\nworld\\n' | spool produce greetings\n  spool consume greetings -e\n  spool topic describe greetings",
    after_long_help = "Examples:\n  printf 'hello\\nworld\\n' | spool produce greetings\n  spool consume greetings -e\n  spool topic describe greetings\n  spool consume greetings --group app   # a consumer group member; run it in several terminals\n  spool group describe app\n  spool -b kafka1:9092 topic describe greetings   # the same commands on a Kafka cluster\n\nExit status:\n  0  success, also when the reader of stdout went away (as with `| head`)\n  1  runtime error: unknown topic or group, damaged log, refused operation, I/O error\n  2  usage error: unknown flag, bad or missing value, conflicting flags"
)]
pub struct Cli {
    /// The store directory [default: $XDG_DATA_HOME/spool, i.e. ~/.local/share/spool].
    #[arg(
        long,
        global = true,
        env = "SPOOL_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub dir: Option<PathBuf>,

    /// Work on the Kafka cluster at these bootstrap servers instead of a local store, through
    /// librdkafka: the same commands, flags and output. Not with --dir.
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        global = true,
        env = "SPOOL_BROKERS",
        hide_env_values = true,
        value_name = "HOST:PORT[,...]",
        alias = "broker-list",
        help_heading = "Kafka cluster (-b)"
    )]
    pub brokers: Option<String>,

    /// A librdkafka client property for the cluster (repeatable), e.g. -X
    /// security.protocol=SASL_SSL; it wins over --command-config.
    #[arg(
        short = 'X',
        global = true,
        hide_short_help = true,
        value_name = "KEY=VALUE",
        value_parser = kv_arg,
        help_heading = "Kafka cluster (-b)"
    )]
    pub properties: Vec<(String, String)>,

    /// A Java properties file of client settings (TLS, SASL), as Kafka's tools take it;
    /// sasl.jaas.config's username and password become sasl.username and sasl.password.
    #[arg(
        long,
        global = true,
        hide_short_help = true,
        value_name = "FILE",
        help_heading = "Kafka cluster (-b)"
    )]
    pub command_config: Option<PathBuf>,

    /// How long to wait for the cluster's answer to each request before giving up [default:
    /// 10s].
    #[arg(
        long,
        global = true,
        hide_short_help = true,
        value_name = "DURATION",
        value_parser = duration_within(ms(100), ms(86_400_000)),
        help_heading = "Kafka cluster (-b)"
    )]
    pub cluster_timeout: Option<std::time::Duration>,

    /// Show librdkafka's log on stderr (otherwise it is swallowed; errors are spool's own).
    #[arg(
        short,
        long,
        global = true,
        hide_short_help = true,
        help_heading = "Kafka cluster (-b)"
    )]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, alter, delete, verify and prune topics.
    ///
    /// A topic is a named stream of records split into partitions. Each partition is an
    /// append-only log, stored as Kafka's own segment files, whose records are numbered by
    /// offset from 0. These are the operations of Kafka's kafka-topics.sh and kafka-configs.sh,
    /// plus `verify` (check every batch) and `prune` (apply retention now).
    #[command(
        subcommand,
        after_help = "Examples:\n  spool topic create orders --partitions 3\n  spool topic list\n  spool topic describe orders\n  spool topic alter orders --partitions 6"
    )]
    Topic(topic::TopicCommand),
    Produce(produce::ProduceArgs),
    Consume(consume::ConsumeArgs),
    /// List, describe (offsets and lag, members, state, history) and delete consumer groups.
    ///
    /// A consumer group is a set of `spool consume --group GROUP` processes that share the
    /// partitions of their topics: each partition is read by one member at a time, and the group
    /// commits how far it has read. These are kafka-consumer-groups.sh's --list, --describe,
    /// --delete and --delete-offsets; looking at a group never changes it.
    #[command(
        subcommand,
        after_help = "Examples:\n  spool group list\n  spool group describe billing            # committed offsets and lag\n  spool group describe billing --members\n  spool group delete billing"
    )]
    Group(group::GroupCommand),
    /// Reset consumer groups' committed offsets.
    ///
    /// A group's committed offset for a partition is the next record the group reads there.
    /// Resetting it replays records (move it back) or skips them (move it forward), as
    /// kafka-consumer-groups.sh --reset-offsets does: only while the group has no live members,
    /// and only with --execute (otherwise it is a dry run that shows the plan).
    #[command(
        subcommand,
        after_help = "Examples:\n  spool offsets reset --group billing --topic orders --to-earliest             # dry run\n  spool offsets reset --group billing --topic orders --to-earliest --execute\n  spool offsets reset --group billing --all-topics --shift-by -10 --execute"
    )]
    Offsets(offsets::OffsetsCommand),
    Serve(serve::ServeArgs),
    Completions(complete::CompletionsArgs),
}

/// Everything a command needs from the global flags.
pub struct Context {
    /// The local store or the Kafka cluster, resolved once.
    pub target: Target,
}

impl Context {
    /// Resolves the target: `-b`/`$SPOOL_BROKERS` selects a Kafka cluster (and nothing local
    /// is opened), else the store at `--dir`/`$SPOOL_DIR` or the default directory.
    pub fn new(cli: &Cli) -> anyhow::Result<Context> {
        let target = match &cli.brokers {
            Some(brokers) => {
                if let Some(dir) = &cli.dir {
                    let from_env = std::env::var_os("SPOOL_DIR").is_some_and(|v| v == *dir);
                    let from_env_b = std::env::var_os("SPOOL_BROKERS")
                        .is_some_and(|v| v.to_str() == Some(brokers.as_str()));
                    let (dir_flag, brokers_flag) = (
                        if from_env { "$SPOOL_DIR" } else { "--dir" },
                        if from_env_b { "$SPOOL_BROKERS" } else { "-b" },
                    );
                    let drop = match (from_env, from_env_b) {
                        (true, _) => "unset SPOOL_DIR to work on the cluster",
                        (false, true) => "unset SPOOL_BROKERS to work on the store",
                        (false, false) => "drop one of them",
                    };
                    return Err(UsageError(format!(
                        "{dir_flag} selects a local store and {brokers_flag} a Kafka cluster: give only one ({drop})"
                    ))
                    .into());
                }
                let settings = ClusterSettings {
                    brokers: brokers.clone(),
                    properties: cli.properties.clone(),
                    command_config: cli.command_config.clone(),
                    timeout: cli.cluster_timeout,
                    verbose: cli.verbose,
                };
                Target::Kafka(Cluster::new(settings)?)
            }
            None => {
                let kafka_only = if !cli.properties.is_empty() {
                    Some("-X")
                } else if cli.command_config.is_some() {
                    Some("--command-config")
                } else if cli.cluster_timeout.is_some() {
                    Some("--cluster-timeout")
                } else {
                    None
                };
                if let Some(option) = kafka_only {
                    return Err(crate::target::KafkaOnly {
                        option: option.to_string(),
                        why: "it is a setting of the client that talks to the cluster".into(),
                    }
                    .into());
                }
                let root = cli.dir.clone().unwrap_or_else(Store::default_root);
                Target::Local(Store::open(root)?)
            }
        };
        Ok(Context { target })
    }

    /// The local store for a command that only works on one, or an error saying `command`
    /// (e.g. `spool topic verify`) works on a local store only and `why`.
    pub fn local_store(&self, command: &str, why: &str) -> anyhow::Result<&Store> {
        Ok(self.target.local_only(command, why)?)
    }
}

/// Runs spool with the process's arguments.
pub fn main() -> ExitCode {
    complete::complete_from_env();
    main_with_args(std::env::args_os())
}

pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    // `SPOOL_DIR=` (set but empty) means unset, as for XDG_DATA_HOME, not "--dir needs a value";
    // the same for `SPOOL_BROKERS=`.
    for var in ["SPOOL_DIR", "SPOOL_BROKERS"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            if let Some((message, hint)) = habit_error(&args, &e) {
                let colour = render::colour_stderr();
                eprintln!(
                    "{} {message}",
                    render::paint(colour, render::ERROR, "error:")
                );
                eprintln!("{} {hint}", render::paint(colour, render::HINT, "hint:"));
                return ExitCode::from(2);
            }
            let _ = e.print();
            if let Some(hint) = produce::compression_flag_hint(&e) {
                eprintln!("hint: {hint}");
            }
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Hints that name what exists ("did you mean") look in the local store only.
    let local_dir = cli.brokers.is_none().then(|| cli.dir.clone());
    let ctx = match &cli.command {
        Command::Completions(_) => None,
        _ => match Context::new(&cli) {
            Ok(ctx) => Some(ctx),
            Err(e) => return report_and_exit(&e, local_dir),
        },
    };
    let result = match (cli.command, ctx) {
        (Command::Completions(args), _) => complete::run(args),
        (command, Some(ctx)) => dispatch(&ctx, command),
        (_, None) => unreachable!("every command but completions has a context"),
    };
    match result {
        Ok(code) => code,
        Err(e) => report_and_exit(&e, local_dir),
    }
}

/// Runs a command on its resolved target.
fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Topic(cmd) => topic::run(ctx, cmd),
        Command::Produce(args) => produce::run(ctx, args),
        Command::Consume(args) => consume::run(ctx, args),
        Command::Group(cmd) => group::run(ctx, cmd),
        Command::Offsets(cmd) => offsets::run(ctx, cmd),
        Command::Serve(args) => serve::run(ctx, args),
        Command::Completions(_) => unreachable!("handled before a target is resolved"),
    }
}

/// Reports a command's error and returns its exit code. `local_dir` is `Some` when the target
/// is the local store (`--dir`, if given): the store is opened again, read-only, for hints
/// that name what exists ("did you mean").
fn report_and_exit(e: &anyhow::Error, local_dir: Option<Option<PathBuf>>) -> ExitCode {
    if is_broken_pipe(e) {
        return ExitCode::SUCCESS;
    }
    let store = local_dir.and_then(|dir| Store::open(dir.unwrap_or_else(Store::default_root)).ok());
    report_error_in(e, store.as_ref());
    ExitCode::from(if is_usage_error(e) { 2 } else { 1 })
}

/// The error and hint for a command line typed from kcat, rpk or Kafka-console habit.
fn habit_error(args: &[OsString], e: &clap::Error) -> Option<(String, String)> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::InvalidSubcommand => habits::topic_subcommand(args),
        ErrorKind::UnknownArgument => match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(bad)) => {
                let flag = bad.split_once('=').map_or(bad.as_str(), |(f, _)| f);
                habits::suggest(args, flag)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether an error is a bad argument (exit 2) rather than a failure of the work (exit 1).
pub fn is_usage_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<crate::name::NameError>()
            || c.is::<crate::target::LocalOnly>()
            || c.is::<crate::target::KafkaOnly>()
            || matches!(
                c.downcast_ref::<TargetError>(),
                Some(TargetError::Unsupported(_))
            )
            || cluster_error(c).is_some_and(ClusterError::is_usage)
            || matches!(
                store_error(c),
                Some(
                    StoreError::Name(_)
                        | StoreError::Config(_)
                        | StoreError::BadPartitionCount { .. }
                )
            )
    })
}

/// The store error a cause is or wraps transparently.
fn store_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
    use crate::group::reset::AdminError;
    cause
        .downcast_ref::<StoreError>()
        .or_else(|| match cause.downcast_ref::<AdminError>() {
            Some(AdminError::Store(e)) => Some(e),
            _ => None,
        })
        .or_else(|| {
            cause
                .downcast_ref::<TargetError>()
                .and_then(TargetError::store_error)
        })
}

/// The cluster error a cause is or wraps transparently.
fn cluster_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a ClusterError> {
    cause.downcast_ref::<ClusterError>().or_else(|| {
        cause
            .downcast_ref::<TargetError>()
            .and_then(TargetError::cluster_error)
    })
}

/// A bad argument found after clap's parsing; exits 2 like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// clap value parser for sizes (`64KiB`, `1GiB`, `1048576`).
pub fn size_arg(s: &str) -> Result<u64, String> {
    crate::spec::parse_size(s).map_err(|e| e.to_string())
}

/// clap value parser for durations (`30s`, `5m`, `PT1H`).
pub fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration(s).map_err(|e| e.to_string())
}

/// clap value parser for a partition number (`-p`): 0 or more, said plainly when it is not.
pub fn partition_arg(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n as i32),
        Ok(_) => Err("partitions are numbered from 0 (0 to the partition count - 1)".into()),
        Err(_) => Err(format!(
            "expected a partition number (0, 1, 2, ...), not {s:?}"
        )),
    }
}

/// clap value parser for `--retention`: a duration in milliseconds, or -1 (also `forever`) for
/// no time limit, as Kafka's retention.ms=-1.
pub fn retention_arg(s: &str) -> Result<i64, String> {
    if matches!(s.trim(), "-1" | "forever" | "infinite") {
        return Ok(-1);
    }
    if s.trim().starts_with('-') {
        return Err("expected a duration like 7d or 12h, or -1 (forever)".into());
    }
    let d = duration_arg(s)?;
    i64::try_from(d.as_millis()).map_err(|_| {
        format!(
            "--retention {} is too long: retention.ms is at most {} ms (about 292 million years); -1 keeps records forever",
            humantime::format_duration(d),
            i64::MAX
        )
    })
}

/// clap value parser for `--retention-bytes`: a size, or -1 (also `unlimited`) for no size
/// limit, as Kafka's retention.bytes=-1.
pub fn retention_bytes_arg(s: &str) -> Result<i64, String> {
    if matches!(s.trim(), "-1" | "unlimited") {
        return Ok(-1);
    }
    if s.trim().starts_with('-') {
        return Err("expected a size like 1GiB, or -1 (no limit)".into());
    }
    let n = size_arg(s)?;
    i64::try_from(n).map_err(|_| format!("{s} is too large"))
}

/// clap value parser for a duration between `min` and `max` (inclusive): zero and absurd
/// values of a timing flag are usage errors naming the range, not a spinning or useless
/// process.
pub fn duration_within(
    min: std::time::Duration,
    max: std::time::Duration,
) -> impl Fn(&str) -> Result<std::time::Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let d = duration_arg(s)?;
        if d < min || d > max {
            return Err(format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ));
        }
        Ok(d)
    }
}

/// Milliseconds.
pub const fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

/// clap value parser for `KEY=VALUE`.
pub fn kv_arg(s: &str) -> Result<(String, String), String> {
    crate::spec::parse_kv(s).map_err(|e| e.to_string())
}

/// clap value parser for a record header, `KEY=VALUE`.
pub fn header_arg(s: &str) -> Result<(String, String), String> {
    kv_arg(s).map_err(|_| {
        format!("expected a header as KEY=VALUE, e.g. -H trace-id=abc (the value may be empty, as in -H flag=), not {s:?}")
    })
}

/// An error with a suggestion of what to do next.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

/// Prints `error: a: b: c` and a hint when one is known.
pub fn report_error(e: &anyhow::Error) {
    report_error_in(e, None)
}

/// Prints `error: a: b: c` and a hint, which may name close matches among the store's topics.
pub fn report_error_in(e: &anyhow::Error, store: Option<&Store>) {
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    let mut message = String::new();
    for part in &chain {
        // thiserror's transparent variants repeat their source: print each cause once.
        if !message.ends_with(part.as_str()) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(part);
        }
    }
    if let Some(store) = store {
        message = name_the_store(message, e, store);
    }
    let colour = render::colour_stderr();
    eprintln!(
        "{} {message}",
        render::paint(colour, render::ERROR, "error:")
    );
    if let Some(hint) = hint_for(e, store) {
        eprintln!("{} {hint}", render::paint(colour, render::HINT, "hint:"));
    }
}

/// Adds the store to a "does not exist" message: a terminal that forgot `$SPOOL_DIR` looks in
/// another store, and the message should say which one was searched.
fn name_the_store(message: String, e: &anyhow::Error, store: &Store) -> String {
    let missing = e.chain().find(|c| {
        matches!(store_error(*c), Some(StoreError::TopicNotFound(_)))
            || matches!(
                c.downcast_ref::<crate::group::reset::AdminError>(),
                Some(crate::group::reset::AdminError::NotFound(_))
            )
    });
    match missing {
        Some(cause) => {
            let text = cause.to_string();
            message.replacen(&text, &format!("{text} {}", in_store(store)), 1)
        }
        None => message,
    }
}

/// `in the store at DIR`, for messages about something missing.
pub fn in_store(store: &Store) -> String {
    format!("in the store at {}", store.root().display())
}

/// Up to three names of `candidates` close to `name` (edit distance), closest first.
pub fn close_names(name: &str, candidates: &[String]) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .filter(|c| c.as_str() != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= limit || (name.len() >= 3 && c.starts_with(name)))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// Levenshtein distance, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `did you mean 'a' or 'b'? ` for the close names, or nothing.
fn did_you_mean(close: &[String]) -> String {
    let quoted: Vec<String> = close.iter().map(|c| format!("'{c}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("did you mean {one}? "),
        [init @ .., last] => format!("did you mean {} or {last}? ", init.join(", ")),
    }
}

/// The hint for a topic that does not exist: close names, else how to create one.
pub fn unknown_topic_hint(store: Option<&Store>, name: &str) -> String {
    let topics = store.and_then(|s| s.list_topics().ok()).unwrap_or_default();
    let close = close_names(name, &topics);
    if close.is_empty() {
        format!("create it with `spool topic create {name}`; `spool topic list` shows the topics")
    } else {
        format!(
            "{}`spool topic list` shows the topics",
            did_you_mean(&close)
        )
    }
}

/// The hint for a consumer group that does not exist: close names, else where to look.
pub fn unknown_group_hint(store: Option<&Store>, name: &str) -> String {
    let groups = store
        .and_then(|s| crate::group::state::list_groups(s).ok())
        .unwrap_or_default();
    let close = close_names(name, &groups);
    if close.is_empty() {
        format!("`spool group list` shows the groups; a group exists once a consumer joined it (`spool consume TOPIC --group {name}`)")
    } else {
        format!(
            "{}`spool group list` shows the groups",
            did_you_mean(&close)
        )
    }
}

fn hint_for(e: &anyhow::Error, store: Option<&Store>) -> Option<String> {
    for cause in e.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        if let Some(store_error) = store_error(cause) {
            match store_error {
                StoreError::TopicNotFound(name) => return Some(unknown_topic_hint(store, name)),
                StoreError::TopicExists(_) => {
                    return Some("pass --if-not-exists to accept an existing topic".into())
                }
                StoreError::Corrupt { .. } => {
                    let topic = e.chain().find_map(|c| match c.downcast_ref() {
                        Some(crate::consume::ConsumeError::Read { topic, .. }) => Some(topic.clone()),
                        _ => None,
                    });
                    let topic = topic.as_deref().unwrap_or("<TOPIC>");
                    return Some(format!("run `spool topic verify {topic}` to locate the damage, and `spool topic verify {topic} --repair` to cut it"));
                }
                StoreError::PartitionNotFound { topic, .. } => {
                    return Some(format!("`spool topic describe {topic}` lists its partitions; `spool topic alter {topic} --partitions N` adds some"))
                }
                StoreError::NotADirectory { .. } => {
                    return Some("point --dir or $SPOOL_DIR at a directory: a missing or empty one becomes a new store".into())
                }
                StoreError::NotAStore { path } => {
                    return Some(format!("spool creates a store only in a missing or empty directory: use a new one, e.g. --dir {}", path.join("spool").display()))
                }
                StoreError::FormatTooNew { .. } => {
                    return Some("install a newer spool, or use another store with --dir".into())
                }
                _ => {}
            }
        }
        if let Some(ClusterError::TopicNotFound { topic, .. }) = cluster_error(cause) {
            return Some(format!("`spool topic list` (with the same -b) shows the cluster's topics; `spool topic create {topic}` creates it"));
        }
        if let Some(crate::produce::pipeline::PipelineError::NoSuchPartition { .. }) =
            cause.downcast_ref::<crate::produce::pipeline::PipelineError>()
        {
            return Some("JSON records keep the partition they were read from: give this topic as many partitions as the source had (`spool topic alter TOPIC --partitions N`), or drop the field with `jq -c 'del(.partition)'`".into());
        }
        if let Some(crate::group::reset::AdminError::NotFound(group)) =
            cause.downcast_ref::<crate::group::reset::AdminError>()
        {
            return Some(unknown_group_hint(store, group));
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc::ENOSPC) {
                return Some("the disk is full: free some space and run the command again; what was written before is intact".into());
            }
            if io.kind() == std::io::ErrorKind::PermissionDenied {
                return Some(
                    "check the permissions of the store directory (--dir, $SPOOL_DIR)".into(),
                );
            }
        }
    }
    None
}

/// Whether the error is stdout's reader having gone away (`spool consume | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    // A --partitioner-cmd that died is not stdout's reader going away.
    if e.chain()
        .any(|c| c.is::<crate::produce::partitioner::PartitionerError>())
    {
        return false;
    }
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Turns `\n`, `\t`, `\r`, `\0`, `\\` and `\xNN` in a command-line separator into bytes.
pub fn unescape(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let esc = bytes.get(i + 1).copied();
        i += 2;
        out.push(match esc {
            Some(b'n') => b'\n',
            Some(b't') => b'\t',
            Some(b'r') => b'\r',
            Some(b'0') => 0,
            Some(b'\\') => b'\\',
            Some(b'x') => {
                let hex = s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
                i += 2;
                hex.ok_or_else(|| {
                    anyhow::anyhow!("'\\x' in {s:?} must be followed by two hex digits")
                })?
            }
            _ => anyhow::bail!("unknown escape in {s:?}; use \\n, \\t, \\r, \\0, \\\\ or \\xNN"),
        });
    }
    Ok(out)
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    // A second Ctrl-C stops at once (_exit is async-signal-safe).
    if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // SAFETY: _exit ends the process without running anything else.
        unsafe { libc::_exit(130) };
    }
    // A consumer sleeping until something changes looks at the flag now (one write(2)).
    crate::consume::watch::wake_all_waiters();
}

/// Makes Ctrl-C and SIGTERM set a flag instead of killing the process, so a long-running
/// command can finish cleanly (commit, leave its group, print its summary); a second one ends
/// the process at once with status 130.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

/// Whether Ctrl-C or SIGTERM arrived since [`install_interrupt_handler`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether stdout is a pipe whose reader has gone away, checked without writing: lets a
/// following consumer that has nothing to print exit like `| head` expects.
pub fn stdout_closed() -> bool {
    let mut pfd = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

#[cfg(test)]
mod tests {
    use super::{close_names, edit_distance};

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("orders", "orders"), 0);
        assert_eq!(edit_distance("ordrs", "orders"), 1);
        assert_eq!(edit_distance("oredrs", "orders"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn close_names_are_few_and_closest_first() {
        let names: Vec<String> = ["orders", "orders-copy", "order", "billing", "clicks"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(close_names("ordrs", &names), ["orders"]);
        assert_eq!(close_names("orders", &names), ["order", "orders-copy"]);
        assert_eq!(close_names("billign", &names), ["billing"]);
        assert!(close_names("zzz", &names).is_empty());
    }
}
