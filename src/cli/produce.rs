//! `spool produce`: append records read from stdin or a file to a topic.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use super::render::{self, OutputFormat};
use super::{unescape, Context};
use crate::format::Encoding;
use crate::kafka::produce::Acks;
use crate::produce::input::Input;
use crate::produce::partitioner::Strategy;
use crate::produce::pipeline::{
    self, InputFormat, PipelineError, PipelineOptions, RecordOptions, Route,
};
use crate::produce::producer::Summary;
use crate::record::Header;
use crate::spec;
use crate::store::compression::Compression;
use crate::store::SyncPolicy;
use crate::target::produce::{Notice, ProduceSettings};

/// Append records to a topic, one per line of stdin (or of --file).
///
/// Like Kafka's console producer: each line becomes a record; with -K a line `key<SEP>value`
/// gives the record a key, and records with the same key always land on the same partition
/// (murmur2 of the key, exactly as Kafka's Java client chooses). Keyless records go to one
/// partition per batch, changing with each batch (Kafka's sticky partitioner). Bytes pass through
/// unchanged: no encoding is assumed. A missing topic is created with 1 partition unless
/// --no-create is given.
///
/// Records are batched per partition and a batch is written as soon as the input has nothing
/// more ready, so a line typed by hand reaches consumers at once. Exit status 0 means every
/// record was appended (and, by default, synced to disk).
///
/// With -z CODEC (as kcat's and rpk's -z) batches are stored compressed with gzip, snappy, lz4 or
/// zstd, as Kafka stores them, unless the topic's compression.type config names a codec itself;
/// consumers read them back unchanged.
///
/// With -b, the records go to a Kafka cluster through librdkafka, partitioned by spool's own
/// partitioner (so keys land where Java's producer puts them), and exit status 0 means every
/// record was acknowledged (--acks all by default: by every in-sync replica).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:
  printf 'a\\nb\\nc\\n' | spool produce letters
  printf 'user1:clicked\\nuser2:scrolled\\n' | spool produce events -K :",
    after_long_help = "Examples:
  printf 'a\\nb\\nc\\n' | spool produce letters
  printf 'user1:clicked\\nuser2:scrolled\\n' | spool produce events -K :
  spool produce logs --file app.log --linger 50ms
  spool produce orders --input json --file orders.jsonl   # as spool consume --output json wrote it
  spool produce logs -z zstd --file app.log               # batches stored zstd-compressed
  find . -print0 | spool produce files -0                  # NUL-delimited records
  spool -b kafka1:9092 produce orders -K : --acks all      # to a Kafka cluster

Exit status:
  0  every record was appended under the --fsync policy
  1  an error stopped the producer; records before it stay written and the summary says how many
  130  interrupted (Ctrl-C, SIGTERM): the records read so far were appended and synced, and
       the summary says from which input record to resume
  2  usage error"
)]
pub struct ProduceArgs {
    /// The topic to write to.
    #[arg(add = super::complete::topics())]
    pub topic: String,

    /// Read records from this file instead of stdin.
    #[arg(short, long, value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Record delimiter (escapes \n \t \r \0 \\ \xNN are understood).
    #[arg(
        short = 'D',
        long,
        value_name = "DELIM",
        default_value = "\\n",
        conflicts_with = "nul"
    )]
    pub delimiter: String,

    /// Records are separated by NUL bytes (like -D '\0'), as `find -print0` writes them and
    /// `xargs -0` reads them.
    #[arg(short = '0', long = "null", alias = "null-data", id = "nul")]
    pub nul: bool,

    /// Compress batches with this codec, as Kafka's producers do (kcat's and rpk's -z). A topic
    /// whose compression.type config names a codec is written with that codec instead.
    #[arg(short = 'z', long, value_enum, value_name = "CODEC")]
    pub compression: Option<CodecArg>,

    /// Input format: raw delimited records, or JSON lines
    /// {"key","value","headers","partition","timestamp"} as `spool consume --output json`
    /// prints them.
    #[arg(long, value_enum, default_value_t = InputKind::Lines)]
    pub input: InputKind,

    /// How keys, values and headers are written in JSON input (--input json only) [default:
    /// utf8].
    #[arg(long, value_parser = parse_encoding)]
    pub encoding: Option<Encoding>,

    /// Split each record at the first SEP into key and value.
    #[arg(short = 'K', long, value_name = "SEP", conflicts_with = "key")]
    pub key_separator: Option<String>,

    /// With -K, send records without the separator with a null key instead of failing.
    #[arg(long, requires = "key_separator")]
    pub ignore_missing_key: bool,

    /// Give every record this key.
    #[arg(short, long, value_name = "KEY")]
    pub key: Option<String>,

    /// A key or value equal to STR is written as null (a value of null is a tombstone).
    #[arg(long, value_name = "STR")]
    pub null_marker: Option<String>,

    /// Add a header KEY=VALUE to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = super::header_arg)]
    pub headers: Vec<(String, String)>,

    /// Write every record to this partition.
    #[arg(short, long, value_name = "N", conflicts_with_all = ["partitioner", "partitioner_cmd"], value_parser = super::partition_arg, allow_negative_numbers = true)]
    pub partition: Option<i32>,

    /// How records without -p are spread: murmur2 (keyed records by key hash, keyless ones
    /// sticky per batch, as Kafka), round-robin or random.
    #[arg(long, value_enum, default_value_t = PartitionerKind::Murmur2)]
    pub partitioner: PartitionerKind,

    /// A command that picks partitions: it is started once, reads `<key>\t<partition count>`
    /// lines and answers one partition number per line.
    #[arg(long, value_name = "CMD", conflicts_with = "partitioner")]
    pub partitioner_cmd: Option<String>,

    /// Fail if the topic does not exist instead of creating it with 1 partition.
    #[arg(long)]
    pub no_create: bool,

    /// Largest batch written at once, per partition; 0 writes each record alone (Kafka's
    /// batch.size=0).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = batch_size_arg)]
    pub batch_size: u64,

    /// How long a record may wait for more input to join its batch.
    ///
    /// By default (0ms) a batch is written as soon as the input has nothing more ready, so
    /// records typed or piped slowly reach consumers at once, each in a small batch. A linger
    /// such as 50ms trades that latency for fewer, larger batches (Kafka's linger.ms).
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = super::duration_within(super::ms(0), super::ms(3_600_000)))]
    pub linger: std::time::Duration,

    /// Which acknowledgement of a Kafka cluster (-b) each record waits for before produce
    /// counts it: all (every in-sync replica, the default), 1 (the leader) or 0 (none). A
    /// local store acknowledges a record once it is appended (see --fsync), so --acks is
    /// refused there.
    #[arg(long, value_enum, value_name = "ACKS")]
    pub acks: Option<AcksArg>,

    /// When data is forced to disk: at exit (the default), after every batch, or never.
    ///
    /// Every batch is visible to consumers as soon as it is written, whatever this says; it
    /// only decides when spool waits for the disk (fsync).
    ///
    /// exit: once, before exiting 0. Exit 0 means every record is on disk; a power loss while
    /// producing may lose the records of this run that were already visible to consumers.
    ///
    /// batch: after every batch, before the next is written: what a consumer saw survives a
    /// power loss, at the price of one fsync per batch (slow for line-at-a-time input).
    ///
    /// never: left to the operating system. A crash of spool loses nothing, but a power loss
    /// may lose records even after exit 0.
    ///
    /// Local store only: a Kafka cluster's brokers decide when they write to disk (see --acks).
    /// [default: exit]
    #[arg(long, value_enum)]
    pub fsync: Option<FsyncPolicy>,

    /// Largest record accepted, as a batch; at most the topic's max.message.bytes, which is
    /// the default (1MiB unless the topic sets it).
    #[arg(long, value_name = "SIZE", value_parser = super::size_arg)]
    pub max_message_bytes: Option<u64>,

    /// No progress bar and no summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the summary as JSON or YAML on stdout.
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CodecArg> for Compression {
    fn from(c: CodecArg) -> Compression {
        match c {
            CodecArg::None => Compression::None,
            CodecArg::Gzip => Compression::Gzip,
            CodecArg::Snappy => Compression::Snappy,
            CodecArg::Lz4 => Compression::Lz4,
            CodecArg::Zstd => Compression::Zstd,
        }
    }
}

/// The hint for a clap error about `-z`: it used to mean NUL-delimited input, which is `-0`
/// now, so `spool produce t -z` or `spool produce -z t` is most likely the old use.
pub fn compression_flag_hint(e: &clap::Error) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue};
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if arg.starts_with("--compression") => Some(
            "-z now selects a compression codec (as in kcat and rpk); for NUL-delimited records use -0 (--null)",
        ),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputKind {
    Lines,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartitionerKind {
    Murmur2,
    RoundRobin,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcksArg {
    /// Every in-sync replica has the record (acks=all, -1).
    #[value(name = "all", alias = "-1")]
    All,
    /// The partition's leader has it (acks=1).
    #[value(name = "1")]
    Leader,
    /// Not waited for (acks=0): sent is done.
    #[value(name = "0")]
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncPolicy {
    Exit,
    Batch,
    Never,
}

/// `--batch-size`: 0 (each record alone) up to 1GiB.
fn batch_size_arg(s: &str) -> Result<u64, String> {
    let n = super::size_arg(s)?;
    if n > 1 << 30 {
        return Err("a batch is at most 1GiB (0 writes each record alone)".into());
    }
    Ok(n)
}

fn parse_encoding(s: &str) -> Result<Encoding, String> {
    s.parse::<Encoding>().map_err(|e| e.to_string())
}

pub fn run(ctx: &Context, a: ProduceArgs) -> anyhow::Result<ExitCode> {
    let delimiter = if a.nul {
        vec![0]
    } else {
        unescape(&a.delimiter).map_err(usage)?
    };
    if delimiter.is_empty() {
        return Err(usage(
            "the delimiter is empty; give at least one byte, e.g. -D '\\n'",
        ));
    }
    let record = RecordOptions {
        key_separator: a
            .key_separator
            .as_deref()
            .map(unescape)
            .transpose()
            .map_err(usage)?,
        ignore_missing_key: a.ignore_missing_key,
        fixed_key: a.key.map(String::into_bytes),
        null_marker: a.null_marker.map(String::into_bytes),
        headers: a
            .headers
            .into_iter()
            .map(|(k, v)| Header {
                key: k.into_bytes(),
                value: Some(v.into_bytes()),
            })
            .collect(),
    };
    if record.key_separator.as_deref() == Some(&[][..]) {
        return Err(usage(
            "the key separator is empty; give at least one byte, e.g. -K ':'",
        ));
    }
    if a.encoding.is_some() && a.input != InputKind::Json {
        return Err(usage(
            "--encoding applies to --input json only: lines are taken byte for byte as they are",
        ));
    }
    let (batch_size, linger, max_message_bytes) = (a.batch_size, a.linger, a.max_message_bytes);
    let route = match (a.partition, a.partitioner_cmd) {
        (Some(p), _) => Route::Partition(p),
        (None, Some(cmd)) => Route::Command(cmd),
        (None, None) => Route::Strategy(match a.partitioner {
            PartitionerKind::Murmur2 => Strategy::Murmur2,
            PartitionerKind::RoundRobin => Strategy::RoundRobin,
            PartitionerKind::Random => Strategy::Random,
        }),
    };
    let options = PipelineOptions {
        format: match a.input {
            InputKind::Lines => InputFormat::Lines,
            InputKind::Json => InputFormat::Json(a.encoding.unwrap_or_default()),
        },
        record,
        route,
        linger,
    };
    let mut input = match &a.file {
        Some(path) => Input::file(path, &delimiter)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => Input::stdin(&delimiter),
    };

    if let (Route::Partition(p), false) = (&options.route, a.no_create) {
        // Check before creating: a topic created only to refuse -p would be left behind.
        if *p > 0 && !ctx.target.topic_exists(&a.topic)? {
            return Err(super::Hinted {
                message: format!(
                    "topic '{}' does not exist {}, and a topic created by produce has 1 partition, so -p {p} cannot be written to",
                    a.topic,
                    ctx.target.location()
                ),
                hint: format!(
                    "create it first with `spool topic create {} --partitions {}`",
                    a.topic,
                    p + 1
                ),
            }
            .into());
        }
    }
    let settings = ProduceSettings {
        create: !a.no_create,
        batch_size,
        linger,
        max_message_bytes,
        compression: a.compression.map(Compression::from),
        fsync: a.fsync.map(|f| match f {
            FsyncPolicy::Exit => SyncPolicy::OnRequest,
            FsyncPolicy::Batch => SyncPolicy::EveryBatch,
            FsyncPolicy::Never => SyncPolicy::Never,
        }),
        acks: a.acks.map(|a| match a {
            AcksArg::All => Acks::All,
            AcksArg::Leader => Acks::Leader,
            AcksArg::None => Acks::None,
        }),
    };
    let quiet = a.quiet;
    let mut notice = |n: Notice| {
        if quiet {
            return;
        }
        match n {
            Notice::CreatedTopic(topic) => eprintln!("Created topic {topic} with 1 partition."),
            Notice::MaxMessageBytesAboveTopic { asked, topic_max } => eprintln!(
                "warning: --max-message-bytes {} is above the topic's max.message.bytes ({}), which applies; `spool topic alter {} --config max.message.bytes=N` raises it",
                spec::format_size(asked),
                spec::format_size(topic_max),
                a.topic
            ),
            Notice::CompressionOverridden { topic_codec, asked } => eprintln!(
                "note: topic {} has compression.type={topic_codec}: batches are written with {topic_codec}, not {asked}",
                a.topic
            ),
        }
    };
    let mut producer = match ctx.target.open_producer(&a.topic, &settings, &mut notice) {
        Ok(p) => p,
        Err(e) if e.is_topic_not_found() => {
            return Err(super::Hinted {
                message: format!(
                    "topic '{}' does not exist {}",
                    a.topic,
                    ctx.target.location()
                ),
                hint: format!(
                    "create it with `spool topic create {}`, or drop --no-create",
                    a.topic
                ),
            }
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    let max_message_bytes = producer.max_message_bytes();

    // A bar for a file, a spinner for a pipe (whose length is unknown): `cat big | spool
    // produce t` on a terminal shows it is working.
    let bar = match input.len {
        _ if !render::progress_allowed(a.quiet) => None,
        Some(len) => Some(render::byte_progress(len)),
        None if a.file.is_some() || !std::io::stdin().is_terminal() => {
            Some(render::record_spinner())
        }
        None => None,
    };
    let mut progress = |n: u64, records: u64| {
        if let Some(b) = &bar {
            b.set_position(n);
            if b.length().is_none() {
                b.set_message(render::count(records, "record"));
            }
        }
    };
    // Ctrl-C and SIGTERM stop reading: the records read so far are appended and synced, the
    // summary says how far the input got, and the exit status is 130. A second one stops at
    // once.
    super::install_interrupt_handler();
    let result = pipeline::run(
        &mut input,
        &mut producer,
        &options,
        max_message_bytes,
        &mut progress,
        &super::interrupted,
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // Whatever happened, append and sync the records accepted before it.
    let closed = producer.close();
    for t in producer.take_truncations() {
        eprintln!(
            "warning: recovered {}: cut {} bytes at byte {} ({})",
            t.segment.display(),
            t.bytes,
            t.position,
            t.reason
        );
        if let Some((from, to)) = t.lost {
            eprintln!(
                "warning: offsets {from}..{} were lost to that damage; they are not reused, and the log continues at offset {to}",
                to - 1
            );
        }
    }
    let summary = producer.summary();
    match (result, closed) {
        (Err(PipelineError::Interrupted { line }), Ok(_)) => {
            print_summary(&summary, a.quiet, a.output)?;
            if !a.quiet {
                eprintln!(
                    "Interrupted: the first {line} input record{} were produced; to resume, produce the input from record {} on",
                    if line == 1 { "" } else { "s" },
                    line + 1
                );
            }
            Ok(ExitCode::from(130))
        }
        (Ok(()), Ok(_)) => {
            print_summary(&summary, a.quiet, a.output)?;
            Ok(ExitCode::SUCCESS)
        }
        (Err(e), _) => {
            if !a.quiet {
                eprint_summary(&summary, "before the error");
            }
            Err(e.into())
        }
        (Ok(()), Err(e)) => {
            if !a.quiet {
                eprint_summary(&summary, "before the error");
            }
            Err(e.into())
        }
    }
}

fn print_summary(s: &Summary, quiet: bool, output: Option<OutputFormat>) -> anyhow::Result<()> {
    match output {
        Some(OutputFormat::Table) | None => {
            if !quiet {
                eprint_summary(s, "");
            }
        }
        Some(f) => render::print_data(f, s)?,
    }
    Ok(())
}

fn eprint_summary(s: &Summary, when: &str) {
    use std::fmt::Write;
    let when = if when.is_empty() {
        String::new()
    } else {
        format!(" {when}")
    };
    // Written whole: stderr is unbuffered, and formatted in place it took a write per piece.
    let mut text = format!(
        "Produced {} record{} ({}) to {}{when}\n",
        s.records,
        if s.records == 1 { "" } else { "s" },
        spec::format_size(s.bytes),
        s.topic
    );
    for p in &s.partitions {
        let _ = writeln!(
            text,
            "  partition {}: offsets {}..{} ({} record{})",
            p.partition,
            p.first_offset,
            p.last_offset,
            p.records,
            if p.records == 1 { "" } else { "s" }
        );
    }
    eprint!("{text}");
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    super::UsageError(e.to_string()).into()
}
