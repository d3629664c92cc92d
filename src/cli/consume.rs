//! `spool consume`: read topics back, like `cat`, a slice of them, or a live tail.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::printer::{write_out, Interrupted, Printer};
use super::Context;
use crate::consume::Clamped;
use crate::format::{Encoding, JsonLines, Template, TemplateLines};
use crate::record::RecordRef;
use crate::spec::OffsetSpec;
use crate::store::fsutil;
use crate::target::consume::Selection;

/// Read records from topics: all of them like `cat`, a slice, or a live tail like `tail -f`.
///
/// Without --group this is Kafka's "assign" mode: every partition of the topics (or those given
/// with -p) is read from the --offset on. Records of one partition come in offset order;
/// partitions are interleaved fairly. By default the consumer follows the topic and prints new
/// records as they are produced, within milliseconds; -e stops at the end instead.
#[derive(Debug, Args)]
#[command(
    override_usage = "spool consume [OPTIONS] <TOPIC>...\n       spool consume [OPTIONS] --regex <REGEX>",
    after_help = "Examples:
  spool consume orders -e                      # everything, then exit
  spool consume orders -o -10 -e               # the last 10 records of each partition
  spool consume orders --group billing         # share the partitions with the group's members",
    after_long_help = "Examples:
  spool consume orders -e                      # everything, then exit
  spool consume orders -o -10 -e               # the last 10 records of each partition
  spool consume orders -o @-1h                 # from an hour ago on, then follow
  spool consume orders -p 0 -o 42 -n 1         # the record at offset 42 of partition 0
  spool consume orders -F '%p:%o %k=%v\\n'      # partition, offset, key and value
  spool consume orders -e --output json > orders.jsonl   # spool produce --input json reads it
  spool -b kafka1:9092 consume orders -o @-1h -e         # from a Kafka cluster
  spool -b kafka1:9092 consume orders --group billing    # a member of the cluster's group

Format tokens (-F):
  %t topic, %p partition, %o offset, %k key, %v or %s value,
  %K / %V key / value length (-1 for null), %T timestamp (ms),
  %d timestamp (RFC 3339), %h headers (k=v,...), %% a percent sign;
  escapes \\n \\t \\r \\0 \\\\.

Exit status:
  0  success, also when the reader of stdout went away (`| head`)
  1  runtime error (unknown topic or partition, damaged batch)
  2  usage error (bad offset, time or template)"
)]
pub struct ConsumeArgs {
    /// The topics to read.
    #[arg(required_unless_present = "regex", value_name = "TOPIC", add = super::complete::topics())]
    pub topics: Vec<String>,

    /// Read every topic whose whole name matches this regular expression, as Kafka's pattern
    /// subscription (`kafka-console-consumer --include`, `rpk topic consume -r`): topics
    /// created later that match are read too, from their start. With --group, the group's
    /// members subscribe by the pattern: a matching topic created later joins the assignment
    /// within a heartbeat interval.
    #[arg(short = 'r', long, value_name = "REGEX", visible_alias = "include", conflicts_with = "topics", value_parser = regex_arg)]
    pub regex: Option<regex::Regex>,

    /// Read only this partition (repeatable) [default: all].
    #[arg(short, long = "partition", value_name = "N", conflicts_with = "group", value_parser = super::partition_arg, allow_negative_numbers = true)]
    pub partitions: Vec<i32>,

    /// Where to start: earliest (beginning, start), latest (end), an offset N, -N (N records
    /// before the end of each partition), +N (N after the start), or @TIME (RFC 3339, epoch
    /// ms, or a duration ago like @-1h). Out-of-range offsets are clamped with a warning.
    ///
    /// With --group, it applies only to partitions that have no committed offset yet: where
    /// the group has committed, its members resume there whatever -o says (as a Kafka
    /// consumer's auto.offset.reset does). To move a group's committed offsets, stop its
    /// members and use `spool offsets reset`.
    #[arg(short, long, value_name = "OFFSET", value_parser = parse_offset, allow_hyphen_values = true, add = super::complete::offsets())]
    pub offset: Option<OffsetSpec>,

    /// Exit once every partition has been read to its end.
    ///
    /// The end is the log end offset at the moment each partition is reached; records
    /// produced later are not waited for. With --group, a member exits once the partitions
    /// assigned to it are read to their end and no rebalance is under way; partitions other
    /// members hold are theirs to read.
    #[arg(short, long)]
    pub exit_at_end: bool,

    /// Exit after this many records.
    #[arg(short = 'n', long, value_name = "N", value_parser = max_messages_arg, allow_negative_numbers = true)]
    pub max_messages: Option<u64>,

    /// Exit after this long without a new record.
    ///
    /// The clock restarts with every record delivered, so `--timeout 5s` reads a live topic
    /// until it has been quiet for 5 seconds. Without -e, --timeout or -n, consume follows the
    /// topic until interrupted.
    #[arg(long, value_name = "DURATION", value_parser = super::duration_within(super::ms(1), super::ms(365 * 86_400_000)))]
    pub timeout: Option<Duration>,

    /// Output template (see the tokens below) [default: %v\n].
    #[arg(short = 'F', long, value_name = "TEMPLATE", conflicts_with = "output")]
    pub format: Option<String>,

    /// Write each value followed by this delimiter instead of a newline, as `spool produce -D`
    /// reads it (escapes: \n \t \r \0 \\ \xNN).
    #[arg(short = 'D', long, value_name = "DELIM", conflicts_with_all = ["format", "output"])]
    pub delimiter: Option<String>,

    /// Write each record as key, this separator, value, as `spool produce -K` reads it (a
    /// null key is written as --null-literal).
    #[arg(short = 'K', long, value_name = "SEP", conflicts_with_all = ["format", "output"])]
    pub key_separator: Option<String>,

    /// Print JSON lines {"topic","partition","offset","timestamp","key","value","headers"}
    /// instead of a template; `spool produce --input json` reads them back.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output: Option<RecordOutput>,

    /// How keys, values and headers are written in JSON: utf8 (text), base64 or hex (any bytes).
    #[arg(long, default_value = "utf8", value_parser = parse_encoding)]
    pub encoding: Encoding,

    /// What a null key or value prints as in a template.
    #[arg(long, value_name = "STR", default_value = "")]
    pub null_literal: String,

    /// No warnings and no summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub group: super::consume_group::GroupArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordOutput {
    /// JSON lines.
    Json,
}

fn parse_offset(s: &str) -> Result<OffsetSpec, String> {
    // Everywhere else -o is the output format; here it is kcat's offset.
    match s {
        "json" => return Err("`-o` is the offset here (as in kcat); did you mean `--output json`?".into()),
        "yaml" | "table" => return Err(format!("`-o` is the offset here (as in kcat); consume prints JSON lines with `--output json`, not {s}, and anything else with -F")),
        _ => {}
    }
    OffsetSpec::parse(s, fsutil::now_ms()).map_err(|e| e.to_string())
}

/// `--regex`: a pattern that must match a topic's whole name, as Kafka's Pattern.matches.
fn regex_arg(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| format!("not a valid regular expression: {e}"))?;
    regex::Regex::new(&format!("^(?:{s})$")).map_err(|e| e.to_string())
}

/// The pattern as the user gave it (without the anchors [`regex_arg`] added).
pub(super) fn pattern_text(pattern: &regex::Regex) -> &str {
    let s = pattern.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

/// `-n`: a count of records, 0 or more.
fn max_messages_arg(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("expected a count of records (0 or more), not {s:?}"))
}

fn parse_encoding(s: &str) -> Result<Encoding, String> {
    s.parse::<Encoding>().map_err(|e| e.to_string())
}

/// How records are turned into output bytes. It keeps what one record's line shares with the
/// next (the start of the last line of each partition), hence `&mut self`; a copy renders ahead
/// on the read-ahead thread (see `printer`).
#[derive(Clone)]
pub(super) enum Renderer {
    Template(TemplateLines),
    Json(JsonLines),
}

impl Renderer {
    /// Appends one record to `out`. Inlined into the read loops: a template is rendered in
    /// place, JSON (which costs far more than a call) out of line.
    #[inline(always)]
    pub(super) fn render(
        &mut self,
        out: &mut Vec<u8>,
        topic: &str,
        partition: i32,
        rec: &RecordRef<'_>,
    ) -> anyhow::Result<()> {
        match self {
            Renderer::Template(t) => {
                t.render(out, topic, partition, rec);
                Ok(())
            }
            Renderer::Json(lines) => render_json(lines, out, topic, partition, rec),
        }
    }
}

#[inline(always)]
fn render_json(
    lines: &mut JsonLines,
    out: &mut Vec<u8>,
    topic: &str,
    partition: i32,
    rec: &RecordRef<'_>,
) -> anyhow::Result<()> {
    match lines.render(out, topic, partition, rec) {
        Ok(()) => Ok(()),
        Err(e) => Err(json_error(topic, partition, e)),
    }
}

#[cold]
#[inline(never)]
fn json_error(topic: &str, partition: i32, e: crate::format::EncodeError) -> anyhow::Error {
    super::Hinted {
        message: format!("cannot print {topic}/{partition} as JSON: {e}"),
        hint: "use --encoding base64 (or hex) for keys, values or headers that are not UTF-8"
            .into(),
    }
    .into()
}

/// Output flushed to stdout past this size, and at every pause.
pub(super) const OUT_FLUSH: usize = 256 * 1024;

pub fn run(ctx: &Context, a: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let renderer = Renderer::from_args(&a)?;
    if a.group.group.is_some() {
        return super::consume_group::run(ctx, a, renderer);
    }
    run_assigned(ctx, a, renderer)
}

impl Renderer {
    pub(super) fn from_args(a: &ConsumeArgs) -> anyhow::Result<Renderer> {
        Ok(match (a.output, &a.format) {
            (Some(RecordOutput::Json), _) => Renderer::Json(JsonLines::new(a.encoding)),
            (None, Some(f)) => Renderer::Template(TemplateLines::new(
                Template::parse(f).map_err(|e| usage_error(format!("invalid --format: {e}")))?,
                a.null_literal.clone().into_bytes(),
            )),
            (None, None) if a.delimiter.is_some() || a.key_separator.is_some() => {
                let unescape = |flag: &str, s: &str| -> anyhow::Result<Vec<u8>> {
                    let bytes = super::unescape(s)
                        .map_err(|e| usage_error(format!("invalid {flag}: {e}")))?;
                    if bytes.is_empty() {
                        return Err(usage_error(format!(
                            "{flag} is empty; give at least one byte"
                        )));
                    }
                    Ok(bytes)
                };
                let delimiter = match &a.delimiter {
                    Some(d) => unescape("--delimiter", d)?,
                    None => b"\n".to_vec(),
                };
                let separator = a
                    .key_separator
                    .as_deref()
                    .map(|k| unescape("--key-separator", k))
                    .transpose()?;
                Renderer::Template(TemplateLines::new(
                    Template::key_value(separator.as_deref(), &delimiter),
                    a.null_literal.clone().into_bytes(),
                ))
            }
            (None, None) => Renderer::Template(TemplateLines::new(
                Template::parse("%v\\n").expect("the default template parses"),
                a.null_literal.clone().into_bytes(),
            )),
        })
    }
}

fn run_assigned(ctx: &Context, a: ConsumeArgs, mut renderer: Renderer) -> anyhow::Result<ExitCode> {
    let target = &ctx.target;
    let start = a.offset.unwrap_or(OffsetSpec::Earliest);
    let selection = Selection {
        partitions: &a.partitions,
        from_pattern: a.regex.is_some(),
    };
    let mut consumer = target.consumer()?;
    if renderer.worth_rendering_ahead() {
        consumer.render_ahead(super::printer::render_ahead(&renderer));
    }
    let names = match &a.regex {
        Some(pattern) => {
            let names = target.matching_topics(pattern)?;
            if names.is_empty() && !a.quiet {
                eprintln!(
                    "No topic {} matches '{}'{}.",
                    target.location(),
                    pattern_text(pattern),
                    if a.exit_at_end {
                        ""
                    } else {
                        " yet; waiting for one"
                    }
                );
            }
            // Topics created later wake the consumer: they join the subscription.
            target.watch_new_topics(&mut consumer);
            names
        }
        None => a.topics.clone(),
    };
    let assignment = target.assign_topics(&mut consumer, &names, selection, start)?;
    if !a.quiet {
        for c in &assignment.clamped {
            warn_clamped(&c.topic, c.partition, start, Some(c.clamped));
        }
    }
    // Ctrl-C and SIGTERM end the read like -n does: output finished, summary printed.
    super::install_interrupt_handler();

    // Raw stdout: records are rendered into one buffer and written with one syscall per flush.
    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
    let mut stdout = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    let mut out = Vec::with_capacity(OUT_FLUSH * 2);
    let mut count: u64 = 0;
    let limit = a.max_messages.unwrap_or(u64::MAX);
    let mut last_record = Instant::now();
    let result = (|| -> anyhow::Result<()> {
        while count < limit && !super::interrupted() {
            // Large polls: a turn cut by the budget keeps its partition's part-read batch and
            // buffer until its next turn (with 64 Ki records a poll, eight partitions took 2,133
            // page faults, now 1,620); Ctrl-C is noticed at every flush (see `Printer`).
            let budget = (limit - count).min(1 << 20) as usize;
            let printer = Printer {
                renderer: &mut renderer,
                out: &mut out,
                stdout: &mut stdout,
                count: &mut count,
                owner: None,
            };
            let polled = match consumer.poll(budget, printer) {
                Ok(polled) => polled,
                Err(e) if e.is::<Interrupted>() => break,
                Err(e) => return Err(e),
            };
            if !a.quiet {
                for s in consumer.take_skipped() {
                    eprintln!("warning: {s}");
                }
            }
            if polled.delivered > 0 {
                last_record = Instant::now();
            }
            if !polled.all_at_end {
                continue;
            }
            write_out(&mut stdout, &mut out)?;
            if a.exit_at_end {
                break;
            }
            if let Some(pattern) = &a.regex {
                // Kafka's pattern subscription: topics (and partitions) that appeared since
                // the last look join, read from their start.
                let names = target.matching_topics(pattern)?;
                let joined =
                    target.assign_topics(&mut consumer, &names, selection, OffsetSpec::Earliest)?;
                if joined.added > 0 {
                    continue;
                }
            }
            let Some(idle) = idle_wait(a.timeout, last_record)? else {
                break;
            };
            consumer.wait(idle)?;
        }
        write_out(&mut stdout, &mut out)?;
        Ok(())
    })();
    match result {
        Err(e) if super::is_broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
        Err(e) => {
            // Records read before the error are printed before it is reported.
            if write_out(&mut stdout, &mut out).is_ok() && !a.quiet {
                eprintln!(
                    "Processed {} before the error",
                    super::render::count(count, "record")
                );
            }
            return Err(e);
        }
        Ok(()) => {}
    }
    if !a.quiet {
        eprintln!(
            "Processed {count} record{}",
            if count == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn warn_clamped(topic: &str, partition: i32, spec: OffsetSpec, clamped: Option<Clamped>) {
    let Some(c) = clamped else {
        return;
    };
    let records = c.log_end - c.log_start;
    let what = match spec {
        OffsetSpec::FromEnd(n) => {
            format!(
                "-{n} ({} there) goes back past the log start",
                super::render::count(records, "record")
            )
        }
        OffsetSpec::FromStart(n) => format!(
            "+{n} ({} there) goes past the log end",
            super::render::count(records, "record")
        ),
        _ if c.below_start() => format!("offset {} is below the log start", c.requested),
        _ => format!("offset {} is past the log end", c.requested),
    };
    eprintln!(
        "warning: {topic}/{partition}: {what}; starting at {}",
        c.start()
    );
}

/// How long an idle consumer may wait for new records: `None` once `--timeout` has passed
/// since the last record. Nothing is written while following an idle topic, so a reader of
/// stdout that went away (`| head`) would only be noticed at the next record: it is looked
/// for here, and reported as a broken pipe.
pub(super) fn idle_wait(
    timeout: Option<Duration>,
    last_record: Instant,
) -> anyhow::Result<Option<Duration>> {
    if super::stdout_closed() {
        return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
    }
    Ok(match timeout {
        Some(t) => Some(t.saturating_sub(last_record.elapsed())).filter(|left| !left.is_zero()),
        None => Some(Duration::from_secs(3600)),
    })
}

/// An invalid argument found after parsing: reported like clap's usage errors, exit 2.
pub(super) fn usage_error(message: String) -> anyhow::Error {
    anyhow::Error::new(super::UsageError(message))
}
