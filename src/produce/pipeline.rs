//! The produce loop: input records → keys, values, headers → partition → batches.
//!
//! Pending batches are sent as soon as the input has nothing more ready (so a line typed by hand
//! reaches consumers at once), after `linger` at most when it trickles, and whenever a batch is
//! full. Errors name the 1-based record ("line") number they happened at.

use std::time::{Duration, Instant};

use crate::format::{parse_json_record, DecodeError, Encoding};
use crate::record::Header;
use crate::store::StoreError;

use super::input::{Input, Needle};
use super::partitioner::{CommandPartitioner, Partitioner, PartitionerError, Strategy};
use super::producer::{ProduceError, Producer};

/// How input records are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputFormat {
    /// Raw bytes between delimiters, optionally `key SEP value`.
    Lines,
    /// JSON lines `{"key","value","headers","partition","timestamp"}`.
    Json(Encoding),
}

/// How each input record becomes a Kafka record.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    pub key_separator: Option<Vec<u8>>,
    pub ignore_missing_key: bool,
    pub fixed_key: Option<Vec<u8>>,
    /// A key or value equal to this is written as null.
    pub null_marker: Option<Vec<u8>>,
    /// Added to every record.
    pub headers: Vec<Header>,
}

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Partition(i32),
    Strategy(Strategy),
    Command(String),
}

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub format: InputFormat,
    pub record: RecordOptions,
    pub route: Route,
    /// Longest a record waits in a batch for more input before the batch is sent.
    pub linger: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read the input")]
    Input(#[source] std::io::Error),
    #[error("line {line} has no key separator {separator:?}; add one, or pass --ignore-missing-key to send such lines with a null key")]
    MissingKey { line: u64, separator: String },
    #[error("line {line} is not a valid JSON record")]
    Json {
        line: u64,
        #[source]
        source: DecodeError,
    },
    #[error("line {line} asks for partition {partition}, but the topic has {count} partition{} (0 to {})", if *count == 1 { "" } else { "s" }, count - 1)]
    NoSuchPartition {
        line: u64,
        partition: i32,
        count: i32,
    },
    #[error(
        "line {line} is too large: {size} bytes as a batch, more than the {max} bytes allowed (the topic's max.message.bytes, or --max-message-bytes if lower)"
    )]
    TooLarge { line: u64, size: usize, max: u64 },
    #[error(
        "line {line} is too large: {read} bytes were read without reaching its end, more than the {max} bytes a record may have (the topic's max.message.bytes, or --max-message-bytes if lower)"
    )]
    LineTooLong { line: u64, read: usize, max: u64 },
    #[error("line {line}: no partition for the record")]
    Partitioner {
        line: u64,
        #[source]
        source: PartitionerError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Producer(ProduceError),
    /// Asked to stop (Ctrl-C, SIGTERM) after `line` input records were read and handed over.
    #[error("interrupted after line {line} of the input")]
    Interrupted { line: u64 },
}

impl From<ProduceError> for PipelineError {
    fn from(e: ProduceError) -> Self {
        match e {
            ProduceError::Store(e) => PipelineError::Store(e),
            e => PipelineError::Producer(e),
        }
    }
}

/// Where the pipeline sends records: the local [`Producer`], or a Kafka cluster's producer
/// ([`crate::kafka::produce::ClusterProducer`]). Both batch per partition; the pipeline's
/// sticky partitioner moves on when a batch is full or sent.
pub trait Sink {
    /// The topic's name.
    fn topic_name(&self) -> &str;
    /// The topic's partition count.
    fn partition_count(&self) -> i32;
    /// Adds a record (input record number `line`) to its partition's batch. Returns the
    /// partition whose batch was sent to make room, if one was.
    fn send(
        &mut self,
        line: u64,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<Option<i32>, ProduceError>;
    /// Whether adding this record to its partition's batch would first send that batch.
    fn would_send(
        &self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> bool;
    /// Adds a record to its partition's batch unless [`Sink::would_send`] says that batch is
    /// full, in which case nothing is sent and nothing added; returns whether it was added.
    /// The sticky partitioner's step: it moves on to the next partition instead.
    fn send_if_room(
        &mut self,
        line: u64,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<bool, ProduceError> {
        if self.would_send(partition, timestamp, key, value, headers) {
            return Ok(false);
        }
        self.send(line, partition, timestamp, key, value, headers)?;
        Ok(true)
    }
    /// Sends the pending batch of one partition, if it has one.
    fn send_partition(&mut self, partition: i32) -> Result<bool, ProduceError>;
    /// Sends every pending batch; returns the partitions that were sent.
    fn flush(&mut self) -> Result<Vec<i32>, ProduceError>;
}

impl Sink for Producer {
    fn topic_name(&self) -> &str {
        self.topic().name()
    }

    fn partition_count(&self) -> i32 {
        self.topic().partition_count()
    }

    #[inline]
    fn send(
        &mut self,
        _line: u64,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<Option<i32>, ProduceError> {
        Producer::send(self, partition, timestamp, key, value, headers)
    }

    #[inline]
    fn would_send(
        &self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> bool {
        Producer::would_send(self, partition, timestamp, key, value, headers)
    }

    #[inline]
    fn send_if_room(
        &mut self,
        _line: u64,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<bool, ProduceError> {
        // Measures the record once, where `would_send` and `send` would measure it twice.
        Producer::send_if_room(self, partition, timestamp, key, value, headers)
    }

    fn send_partition(&mut self, partition: i32) -> Result<bool, ProduceError> {
        Producer::send_partition(self, partition)
    }

    fn flush(&mut self) -> Result<Vec<i32>, ProduceError> {
        Producer::flush(self)
    }
}

/// How often idle input waits look at `stop`.
const STOP_CHECK: Duration = Duration::from_millis(50);

enum Router {
    Fixed(i32),
    Partitioner(Partitioner),
    Command(CommandPartitioner),
}

/// Reads `input` to its end, sending every record through `producer`. `progress` is told the
/// number of input bytes read and of records taken so far before each read. Records already
/// handed to the producer stay there on error: the caller closes the producer to append and
/// sync them.
///
/// `stop` is asked between reads of the input (and while waiting for input that trickles): when
/// it says so, reading ends with [`PipelineError::Interrupted`], every record read so far having
/// been handed to the producer.
pub fn run<S: Sink>(
    input: &mut Input,
    producer: &mut S,
    options: &PipelineOptions,
    max_message_bytes: u64,
    progress: &mut dyn FnMut(u64, u64),
    stop: &dyn Fn() -> bool,
) -> Result<(), PipelineError> {
    let partitions = producer.partition_count();
    let mut router = match &options.route {
        Route::Partition(p) => {
            if *p < 0 || *p >= partitions {
                return Err(StoreError::PartitionNotFound {
                    topic: producer.topic_name().to_owned(),
                    partition: *p,
                    count: partitions,
                }
                .into());
            }
            Router::Fixed(*p)
        }
        Route::Strategy(s) => Router::Partitioner(Partitioner::new(*s, partitions)),
        Route::Command(cmd) => Router::Command(
            CommandPartitioner::spawn(cmd, partitions)
                .map_err(|source| PipelineError::Partitioner { line: 0, source })?,
        ),
    };
    // Built once: a memmem searcher costs more to build than to run on one line.
    let key_finder = options.record.key_separator.as_deref().map(Needle::new);
    // Lines and their keys cut in one pass, for single-byte delimiters and separators.
    let scanner = match (&options.format, &options.record.key_separator) {
        (InputFormat::Lines, Some(separator)) => input.line_scanner(separator),
        _ => None,
    };
    let mut line: u64 = 0;
    let mut pending_since: Option<Instant> = None;
    let mut timestamp = crate::store::fsutil::now_ms();
    loop {
        loop {
            let (bytes, key_end) = match &scanner {
                Some(scanner) => match input.next_line(scanner) {
                    Some((bytes, separator)) => (bytes, KeyEnd::Found(separator)),
                    None => break,
                },
                None => match input.next_record() {
                    Some(bytes) => (bytes, KeyEnd::Search),
                    None => break,
                },
            };
            line += 1;
            // Lines borrow from the input buffer; a JSON record is decoded into `json`, which
            // outlives the borrowed view of it. Nothing is allocated or dropped per line.
            let json;
            let record = match &options.format {
                InputFormat::Lines => {
                    parse_line(bytes, &options.record, key_finder.as_ref(), key_end, line)?
                }
                InputFormat::Json(encoding) => {
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let mut parsed = parse_json_record(bytes, *encoding)
                        .map_err(|source| PipelineError::Json { line, source })?;
                    let mut headers = options.record.headers.clone();
                    headers.append(&mut parsed.headers);
                    parsed.headers = headers;
                    json = parsed;
                    Parsed {
                        key: json.key.as_deref(),
                        value: json.value.as_deref(),
                        headers: &json.headers,
                        partition: json.partition,
                        timestamp: json.timestamp,
                    }
                }
            };
            let (key, value, headers) = (record.key, record.value, record.headers);
            let ts = record.timestamp.unwrap_or(timestamp);
            let partition = match (record.partition, &mut router) {
                (Some(p), _) if p < 0 || p >= partitions => {
                    return Err(PipelineError::NoSuchPartition {
                        line,
                        partition: p,
                        count: partitions,
                    })
                }
                (Some(p), _) => p,
                (None, Router::Fixed(p)) => *p,
                (None, Router::Partitioner(p)) if p.is_sticky(key) => {
                    let sticky = p.partition(key);
                    if producer
                        .send_if_room(line, sticky, ts, key, value, headers)
                        .map_err(|e| send_error(line, e))?
                    {
                        pending_since.get_or_insert_with(Instant::now);
                        continue;
                    }
                    // The sticky batch is full: send it and start the next batch on the next
                    // sticky partition with this record (Kafka's onNewBatch).
                    producer.send_partition(sticky)?;
                    p.batch_sent(sticky);
                    p.partition(key)
                }
                (None, Router::Partitioner(p)) => p.partition(key),
                (None, Router::Command(c)) => c
                    .partition(key)
                    .map_err(|source| PipelineError::Partitioner { line, source })?,
            };
            let sent = producer
                .send(line, partition, ts, key, value, headers)
                .map_err(|e| send_error(line, e))?;
            if let (Some(p), Router::Partitioner(part)) = (sent, &mut router) {
                part.batch_sent(p);
            }
            pending_since.get_or_insert_with(Instant::now);
        }
        if input.is_eof() {
            return Ok(());
        }
        if let Some(since) = pending_since {
            let wait = options.linger.saturating_sub(since.elapsed());
            if !input.ready(wait) {
                for p in producer.flush()? {
                    if let Router::Partitioner(part) = &mut router {
                        part.batch_sent(p);
                    }
                }
                pending_since = None;
            }
        }
        if input.partial_len() as u64 > max_message_bytes + 64 {
            return Err(PipelineError::LineTooLong {
                line: line + 1,
                read: input.partial_len(),
                max: max_message_bytes,
            });
        }
        // Everything read so far has been taken: both counts are current before the wait.
        progress(input.bytes_read(), line);
        // Wait for input in slices, so a request to stop is seen while the input is idle.
        while !input.ready(Duration::ZERO) {
            if stop() {
                return Err(PipelineError::Interrupted { line });
            }
            if input.ready(STOP_CHECK) {
                break;
            }
        }
        if stop() {
            return Err(PipelineError::Interrupted { line });
        }
        input.read_more().map_err(PipelineError::Input)?;
        timestamp = crate::store::fsutil::now_ms();
    }
}

/// The error of sending input record `line`.
fn send_error(line: u64, e: ProduceError) -> PipelineError {
    match e {
        ProduceError::RecordTooLarge { size, max } => PipelineError::TooLarge { line, size, max },
        e => e.into(),
    }
}

/// One input record, borrowed from the input buffer or from a decoded JSON line.
struct Parsed<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [Header],
    partition: Option<i32>,
    timestamp: Option<i64>,
}

/// Where a line's key ends: found while the line was cut, or to be searched for.
#[derive(Debug, Clone, Copy)]
enum KeyEnd {
    Found(Option<usize>),
    Search,
}

#[inline]
fn parse_line<'a>(
    bytes: &'a [u8],
    options: &'a RecordOptions,
    key_finder: Option<&Needle>,
    key_end: KeyEnd,
    line: u64,
) -> Result<Parsed<'a>, PipelineError> {
    let (key, value) = match (&options.key_separator, key_finder) {
        (Some(sep), Some(finder)) => match match key_end {
            KeyEnd::Found(at) => at,
            KeyEnd::Search => finder.find(bytes),
        } {
            Some(i) => (Some(&bytes[..i]), &bytes[i + sep.len()..]),
            None if options.ignore_missing_key => (None, bytes),
            None => {
                return Err(PipelineError::MissingKey {
                    line,
                    separator: String::from_utf8_lossy(sep).into_owned(),
                })
            }
        },
        _ => (options.fixed_key.as_deref(), bytes),
    };
    let is_null = |b: &[u8]| options.null_marker.as_deref() == Some(b);
    Ok(Parsed {
        key: key.filter(|k| !is_null(k)),
        value: (!is_null(value)).then_some(value),
        headers: &options.headers,
        partition: None,
        timestamp: None,
    })
}
